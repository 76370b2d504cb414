//! Helpers shared by the integration tests: the built binary (or another
//! program) run with a time limit, free loopback ports, whether python3 is
//! here, and the window under test ([`gui`]). Each test binary uses its own
//! part of them (hence no dead-code warnings here).
#![allow(dead_code)]

pub mod gui;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sockbench");
/// The longest a child process may run before the test kills it and fails.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Runs `program` to its end (at most [`LIMIT`]) and returns what it printed.
pub fn run(program: &str, args: &[&str]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    wait_bounded(&mut child);
    child.wait_with_output().unwrap()
}

/// Runs the built `sockbench` with `args`.
pub fn sockbench(args: &[&str]) -> Output {
    run(BIN, args)
}

/// Waits for a child, killing it (and failing) if it outlives [`LIMIT`].
pub fn wait_bounded(child: &mut Child) {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("a child process did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A loopback port on which nothing listens, for a test to listen on (or
/// to find refused) a moment later.
///
/// Taken from below the kernel's ephemeral range (`ip_local_port_range`),
/// which the kernel never hands out by itself: a port 0 probe, released,
/// could be handed meanwhile to another test's `bind(…:0)` or to an outgoing
/// connection as its local port; these cannot. The tests of one binary get
/// different ports (a counter), binaries apart start elsewhere (the process
/// id), and a port still bound by anything (TIME_WAIT included: the probe
/// does not reuse addresses) is skipped.
pub fn free_port() -> u16 {
    use socket2::{Domain, Socket, Type};
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    const BOTTOM: u64 = 10_000;
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(32_768);
    let span = ephemeral.saturating_sub(BOTTOM);
    let free = |port: u16, kind: Type| {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        Socket::new(Domain::IPV4, kind, None).is_ok_and(|s| s.bind(&addr.into()).is_ok())
    };
    let start = u64::from(std::process::id()) * 7_919;
    for _ in 0..span.min(5_000) * u64::from(span >= 1_000) {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (BOTTOM + (start + n) % span) as u16;
        if free(port, Type::STREAM) && free(port, Type::DGRAM) {
            return port;
        }
    }
    // A machine whose ephemeral range starts low (or a crowded one) leaves
    // no room below it: a port 0 probe, released, as the last resort.
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// Whether python3 is here; says so when it is not (the test then skips).
pub fn python3() -> bool {
    match Command::new("python3").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            eprintln!("skipped: python3 is not installed here");
            false
        }
    }
}

/// A TCP peer on `listener` for one connection: it reads `len` bytes, echoes
/// them, waits for the other side to close (at most [`LIMIT`]), then resets
/// the connection (SO_LINGER 0).
pub fn echo_then_reset(listener: std::net::TcpListener, len: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let got = read_at_least(&mut s, len);
        if got.len() < len {
            return;
        }
        s.write_all(&got).unwrap();
        let mut buf = [0u8; 64];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    })
}

/// Reads from `s` until `len` bytes came (fewer if it ends first or
/// [`LIMIT`] passes without a byte).
pub fn read_at_least(s: &mut std::net::TcpStream, len: usize) -> Vec<u8> {
    use std::io::Read;
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < len {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}
