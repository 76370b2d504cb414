//! Helpers shared by the integration tests: the built binary (or another
//! program) run with a time limit, free loopback ports, whether python3 is
//! here, and the window under test ([`gui`]). Each test binary uses its own
//! part of them (hence no dead-code warnings here).
#![allow(dead_code)]

pub mod gui;

use std::net::TcpListener;
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

/// A loopback port on which nothing listens (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
