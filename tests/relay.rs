//! `sockbench relay` between real peers written elsewhere (python's socket
//! module, openssl), over loopback: both legs byte for byte, the recording
//! replayed as the upstream and as the client, TLS on both sides, and each
//! impairment seen by the receiver.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use common::{BIN, LIMIT, python3, wait_bounded};
use sockbench::model::EntryKind;

/// A running sockbench (relay or mock) whose stdout is collected by a thread.
struct Running {
    child: Child,
    /// The address it listens on, from its first line.
    port: u16,
    out: std::thread::JoinHandle<String>,
    err: std::thread::JoinHandle<String>,
}

fn collect(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut all = String::new();
        let _ = from.read_to_string(&mut all);
        all
    })
}

/// Starts `sockbench ARGS` and waits for the line that says where it listens.
fn start(args: &[&str]) -> Running {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let out = std::thread::spawn(move || {
        let mut all = String::new();
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if matches!(fields.get(2), Some(&"listening") | Some(&"bound"))
                && let Some(port) = fields
                    .get(3)
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok())
            {
                let _ = tx.send(port);
            }
            all.push_str(&line);
            line.clear();
        }
        all
    });
    let err = collect(child.stderr.take().unwrap());
    let port = match rx.recv_timeout(LIMIT) {
        Ok(p) => p,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sockbench {args:?} did not listen: {}", err.join().unwrap());
        }
    };
    Running {
        child,
        port,
        out,
        err,
    }
}

impl Drop for Running {
    /// A test that fails midway leaves no relay behind.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    /// Stops it as Ctrl-C does and returns (status, stdout, stderr).
    fn stop(self) -> (i32, String, String) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        self.wait()
    }

    /// Waits for it to end by itself.
    fn wait(mut self) -> (i32, String, String) {
        wait_bounded(&mut self.child);
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        let out = std::mem::replace(&mut self.out, std::thread::spawn(String::new));
        let err = std::mem::replace(&mut self.err, std::thread::spawn(String::new));
        (code, out.join().unwrap(), err.join().unwrap())
    }
}

/// Runs a python program that prints a port on its first line, and returns it with that port.
fn python(script: &str, args: &[&str]) -> (Child, u16, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let port = first
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("python said {first:?}"));
    (child, port, out)
}

/// Runs a python program to its end and returns its stdout.
fn python_run(script: &str, args: &[&str]) -> String {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(&mut child);
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(child.wait().unwrap().success(), "python failed: {out}");
    out
}

/// The rest of a python program's stdout (read to its end first, so a big
/// output never blocks it), once it has ended.
fn rest(mut out: BufReader<std::process::ChildStdout>, mut child: Child) -> String {
    let mut s = String::new();
    out.read_to_string(&mut s).unwrap();
    wait_bounded(&mut child);
    s
}

/// A server that answers each line with `ECHO:` and the line, and after the
/// client's FIN says `BYE` and closes; it prints (in hex) everything it got
/// and everything it sent.
const LINE_SERVER: &str = r#"
import socket, sys
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(srv.getsockname()[1], flush=True)
srv.settimeout(15)
conn, _ = srv.accept()
conn.settimeout(15)
got = b""; sent = b""; pending = b""
while True:
    chunk = conn.recv(4096)
    if not chunk:
        break
    got += chunk; pending += chunk
    while b"\n" in pending:
        line, pending = pending.split(b"\n", 1)
        answer = b"ECHO:" + line + b"\n"
        conn.sendall(answer); sent += answer
conn.sendall(b"BYE\n"); sent += b"BYE\n"
conn.close()
print(got.hex()); print(sent.hex())
"#;

/// A client that sends two lines (one binary), reads each answer, half-closes,
/// and reads to the end; it prints (in hex) what it sent and what it got.
const LINE_CLIENT: &str = r#"
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
sent = b""; got = b""
for line in [b"hello relay\n", b"\x00\x01\xfe\xff binary\n"]:
    c.sendall(line); sent += line
    while not got.endswith(b"\n") or got.count(b"\n") < sent.count(b"\n"):
        chunk = c.recv(4096)
        if not chunk:
            break
        got += chunk
c.shutdown(socket.SHUT_WR)
while True:
    chunk = c.recv(4096)
    if not chunk:
        break
    got += chunk
print(sent.hex()); print(got.hex())
"#;

fn unhex(line: &str) -> Vec<u8> {
    let line = line.trim();
    (0..line.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
        .collect()
}

/// The payload bytes of a saved relay, by entry kind, joined.
fn legs(path: &Path) -> (Vec<u8>, Vec<u8>) {
    let session = sockbench::persist::load(path).unwrap();
    let log = &session.log;
    let mut up = Vec::new();
    let mut down = Vec::new();
    for (i, e) in log.entries().iter().enumerate() {
        match e.kind {
            EntryKind::Received => up.extend_from_slice(log.data(i)),
            EntryKind::Sent => down.extend_from_slice(log.data(i)),
            _ => {}
        }
    }
    (up, down)
}

#[test]
fn a_python_client_through_the_relay_to_a_python_server_and_both_replays() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("relay.ron");
    let (server, server_port, server_out) = python(LINE_SERVER, &[]);
    let relay = start(&[
        "relay",
        "tcp",
        "127.0.0.1:0",
        "--to",
        &format!("127.0.0.1:{server_port}"),
        "--save",
        save.to_str().unwrap(),
    ]);
    let client = python_run(LINE_CLIENT, &[&relay.port.to_string()]);
    let server = rest(server_out, server);
    let (code, out, err) = relay.stop();
    assert_eq!(code, 0, "{err}");

    let client: Vec<Vec<u8>> = client.lines().map(unhex).collect();
    let server: Vec<Vec<u8>> = server.lines().map(unhex).collect();
    // Client → upstream, byte for byte, and back.
    assert_eq!(
        client[0], server[0],
        "what the client sent reached the server"
    );
    assert_eq!(
        server[1], client[1],
        "what the server sent reached the client"
    );
    assert!(
        client[1].ends_with(b"BYE\n"),
        "the client's FIN went through, and the answer to it came back"
    );
    // The log holds both legs, each in its direction.
    let (up, down) = legs(&save);
    assert_eq!(up, client[0]);
    assert_eq!(down, server[1]);
    assert!(out.contains(" client->upstream "), "{out}");
    assert!(out.contains(" upstream->client "), "{out}");
    assert!(out.contains("client's FIN passed on"), "{out}");

    // As the upstream: a mock answers the same client as the server did.
    let mock = start(&[
        "replay",
        save.to_str().unwrap(),
        "--as",
        "upstream",
        "--target",
        "127.0.0.1:0",
    ]);
    let again = python_run(LINE_CLIENT, &[&mock.port.to_string()]);
    let (code, _, err) = mock.wait();
    assert_eq!(code, 0, "{err}");
    let again: Vec<Vec<u8>> = again.lines().map(unhex).collect();
    assert_eq!(again[1], client[1], "the mock answers as the upstream did");

    // As the client, checked against the real server.
    let (server, server_port, server_out) = python(LINE_SERVER, &[]);
    let o = common::sockbench(&[
        "replay",
        save.to_str().unwrap(),
        "--as",
        "client",
        "--target",
        &format!("127.0.0.1:{server_port}"),
        "--check",
    ]);
    let server = rest(server_out, server);
    assert_eq!(o.status.code(), Some(0), "{}", common::text(&o.stderr));
    assert!(
        common::text(&o.stdout).contains("check: every conversation matched"),
        "{}",
        common::text(&o.stdout)
    );
    let server: Vec<Vec<u8>> = server.lines().map(unhex).collect();
    assert_eq!(server[0], client[0], "the server got the recorded requests");

    // Without --as, one line says what to give.
    let o = common::sockbench(&["replay", save.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(common::text(&o.stderr).contains("--as upstream"));
}

#[test]
fn a_tls_relay_between_openssl_client_and_server_logs_plaintext() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipped: openssl is not installed here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", common::text(&made.stderr));
    let port = common::free_port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-rev"])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // It says ACCEPT once it listens (a probe connection would count as its client).
    let (tx, rx) = mpsc::channel();
    let server_out = server.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(server_out).lines();
        while let Some(Ok(line)) = lines.next() {
            if line.starts_with("ACCEPT") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(LIMIT).is_err() {
        let _ = server.kill();
        panic!("openssl s_server did not listen on 127.0.0.1:{port}");
    }
    let save = dir.path().join("tls.ron");
    let relay = start(&[
        "relay",
        "tls",
        "127.0.0.1:0",
        "--to",
        &format!("127.0.0.1:{port}"),
        "--ca",
        cert.to_str().unwrap(),
        "--save",
        save.to_str().unwrap(),
    ]);
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", relay.port),
            "-quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    client
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"hello tls\n")
        .unwrap();
    let stdout = client.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let answer = rx.recv_timeout(LIMIT).unwrap_or_default();
    let _ = client.kill();
    let _ = client.wait();
    let (code, out, err) = relay.stop();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(answer, "slt olleh\n", "{out}{err}");
    assert_eq!(code, 0, "{err}");
    // Both legs in plaintext, the upstream's TLS checked with --ca.
    let (up, down) = legs(&save);
    assert_eq!(up, b"hello tls\n");
    assert_eq!(down, b"slt olleh\n");
    assert!(out.contains("upstream: TLS TLS 1.3"), "{out}");
}

/// A server that records the size of each read and answers every read with
/// `ok`; at the client's end it prints the sizes and the bytes (hex).
const READS_SERVER: &str = r#"
import socket
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(srv.getsockname()[1], flush=True)
srv.settimeout(15)
conn, _ = srv.accept()
conn.settimeout(15)
sizes = []; got = b""; how = "eof"
try:
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        sizes.append(len(chunk)); got += chunk
except ConnectionResetError:
    how = "reset"
conn.close()
print(" ".join(map(str, sizes))); print(got.hex()); print(how)
"#;

/// Relays `payload` from a python client to [`READS_SERVER`] with `flags`;
/// returns the server's read sizes, its bytes, how it ended, the client's
/// seconds from first send to end, and the relay's output.
fn through(flags: &[&str], payload: &[u8]) -> (Vec<usize>, Vec<u8>, String, f64, String) {
    let (server, port, server_out) = python(READS_SERVER, &[]);
    let mut args = vec!["relay", "tcp", "127.0.0.1:0", "--to"];
    let to = format!("127.0.0.1:{port}");
    args.push(&to);
    args.extend_from_slice(flags);
    let relay = start(&args);
    let client = python_run(
        r#"
import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
t = time.monotonic()
try:
    c.sendall(bytes.fromhex(sys.argv[2]))
    c.shutdown(socket.SHUT_WR)
    while c.recv(65536):
        pass
except (ConnectionResetError, BrokenPipeError, OSError):
    # A reset may come before our own FIN goes (ENOTCONN on shutdown).
    pass
print(time.monotonic() - t)
"#,
        &[&relay.port.to_string(), &hex(payload)],
    );
    let server = rest(server_out, server);
    let (_, out, _) = relay.stop();
    let mut lines = server.lines();
    let sizes = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    let bytes = unhex(lines.next().unwrap_or_default());
    let how = lines.next().unwrap_or_default().to_owned();
    (sizes, bytes, how, client.trim().parse().unwrap(), out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn slices_reach_the_receiver_as_separate_reads() {
    if !python3() {
        return;
    }
    let payload: Vec<u8> = (0..24).collect();
    let (sizes, bytes, _, _, out) = through(&["--slice", "up:4/80ms"], &payload);
    assert_eq!(bytes, payload, "{out}");
    // Each read is whole slices (a busy receiver may read two at once), and
    // the 80 ms gaps keep them apart.
    assert!(sizes.iter().all(|s| s % 4 == 0), "{sizes:?}");
    assert!(sizes.len() >= 3, "{sizes:?}\n{out}");
    assert!(
        out.contains("24 bytes written in 6 slices of at most 4 bytes"),
        "{out}"
    );
}

#[test]
fn a_reset_after_n_bytes_passes_n_bytes_then_resets_both_sides() {
    if !python3() {
        return;
    }
    let payload = vec![b'x'; 100];
    let (_, bytes, how, _, out) = through(&["--reset-after", "up:10"], &payload);
    assert_eq!(bytes, vec![b'x'; 10], "{out}");
    assert_eq!(how, "reset", "{out}");
    assert!(out.contains("up: reset after 10 bytes reached"), "{out}");
    assert!(out.contains("aborted: we sent a reset"), "{out}");

    let (_, bytes, how, _, out) = through(&["--close-after", "up:10"], &payload);
    assert_eq!(bytes, vec![b'x'; 10], "{out}");
    assert_eq!(how, "eof", "{out}");
}

#[test]
fn latency_and_bandwidth_slow_a_transfer_at_least_as_set() {
    if !python3() {
        return;
    }
    // Only the floor is asserted: a loaded machine may be slower, never faster.
    let (_, bytes, _, secs, out) = through(&["--latency", "up:300ms"], b"ping");
    assert_eq!(bytes, b"ping");
    assert!(secs >= 0.3, "{secs} s\n{out}");
    assert!(out.contains("up: 4 bytes held"), "{out}");

    let payload = vec![7u8; 60 * 1024];
    let (_, bytes, _, secs, out) = through(&["--bandwidth", "up:40KiB/s"], &payload);
    assert_eq!(bytes, payload);
    let rate = payload.len() as f64 / secs;
    eprintln!(
        "bandwidth: 40 KiB/s set, {:.1} KiB/s measured",
        rate / 1024.0
    );
    assert!(rate <= 40.0 * 1024.0 * 1.2, "{rate} bytes/s\n{out}");
    assert!(out.contains("paced to 40KiB/s"), "{out}");
}

/// A UDP server that records the numbers of the datagrams it gets until 1 s
/// passes without one.
const UDP_COUNTER: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
s.settimeout(1.5)
got = []
try:
    while True:
        d, a = s.recvfrom(100)
        got.append(int(d))
except socket.timeout:
    pass
print(" ".join(map(str, got)))
"#;

fn lost_with_seed(seed: &str) -> (Vec<u32>, String) {
    let (server, port, server_out) = python(UDP_COUNTER, &[]);
    let relay = start(&[
        "relay",
        "udp",
        "127.0.0.1:0",
        "--to",
        &format!("127.0.0.1:{port}"),
        "--loss",
        "up:30%",
        "--seed",
        seed,
    ]);
    python_run(
        r#"
import socket, sys, time
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(60):
    c.sendto(str(i).encode(), ("127.0.0.1", int(sys.argv[1])))
    time.sleep(0.005)
"#,
        &[&relay.port.to_string()],
    );
    let got: Vec<u32> = rest(server_out, server)
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let (_, out, _) = relay.stop();
    let lost = (0..60).filter(|n| !got.contains(n)).collect();
    (lost, out)
}

#[test]
fn udp_loss_with_a_seed_drops_the_same_datagrams_every_run() {
    if !python3() {
        return;
    }
    let (first, out) = lost_with_seed("7");
    let (second, _) = lost_with_seed("7");
    assert_eq!(first, second, "the same seed, the same losses");
    assert!((5..35).contains(&first.len()), "{first:?}");
    // The log names each one (datagram numbers count from 1).
    for n in &first {
        assert!(
            out.contains(&format!("up: datagram {} dropped (loss 30%)", n + 1)),
            "{out}"
        );
    }
    let (other, _) = lost_with_seed("8");
    assert_ne!(first, other, "another seed, other losses");
}

#[test]
fn bad_impairments_are_one_line_and_exit_2() {
    for (args, says) in [
        (
            &["--latency", "50"][..],
            "--latency \"50\": give the time a unit",
        ),
        (&["--bandwidth", "100KiB"][..], "write bytes a second"),
        (&["--loss", "10%"][..], "--loss is for udp relays"),
        (
            &["--latency", "up:5ms", "--latency", "both:5ms"][..],
            "--latency is given twice for up",
        ),
        (&["--seed", "x"][..], "--seed \"x\": give a whole number"),
    ] {
        let mut all = vec!["relay", "tcp", "127.0.0.1:0", "--to", "127.0.0.1:9"];
        all.extend_from_slice(args);
        let o = common::sockbench(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = common::text(&o.stderr);
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && first.contains(says),
            "{args:?}: {err}"
        );
    }
    let o = common::sockbench(&[
        "relay",
        "udp",
        "127.0.0.1:0",
        "--to",
        "127.0.0.1:9",
        "--slice",
        "4",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(common::text(&o.stderr).contains("--slice is for tcp and tls relays"));
}

#[test]
fn an_upstream_reset_reaches_the_client_as_a_reset() {
    if !python3() {
        return;
    }
    let (server, port, server_out) = python(
        r#"
import socket, struct
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(srv.getsockname()[1], flush=True)
srv.settimeout(15)
conn, _ = srv.accept()
conn.settimeout(15)
conn.recv(10)
conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
conn.close()
print("reset sent")
"#,
        &[],
    );
    let relay = start(&[
        "relay",
        "tcp",
        "127.0.0.1:0",
        "--to",
        &format!("127.0.0.1:{port}"),
    ]);
    let client = python_run(
        r#"
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
c.sendall(b"x")
try:
    print("eof" if c.recv(10) == b"" else "data")
except ConnectionResetError:
    print("reset")
"#,
        &[&relay.port.to_string()],
    );
    assert_eq!(rest(server_out, server).trim(), "reset sent");
    let (_, out, _) = relay.stop();
    assert_eq!(client.trim(), "reset", "{out}");
    assert!(
        out.contains("upstream: the upstream reset the connection"),
        "{out}"
    );
    assert!(out.contains("down: the client is reset too"), "{out}");
    assert!(out.contains("aborted: we sent a reset"), "{out}");
}

/// A UDP server that answers each datagram with `R`, the datagram and the
/// sender's port, until 1.5 s pass without one; it prints the ports it saw.
const UDP_ANSWERER: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
s.settimeout(1.5)
ports = set()
try:
    while True:
        d, a = s.recvfrom(100)
        ports.add(a[1])
        s.sendto(b"R" + d, a)
except socket.timeout:
    pass
print(len(ports))
"#;

/// Two UDP clients, each sending `a` then `b` with its name, each printing what came back.
const TWO_UDP_CLIENTS: &str = r#"
import socket, sys
out = []
for name in [b"one", b"two"]:
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(5)
    got = []
    for d in [b"a-" + name, b"b-" + name]:
        c.sendto(d, ("127.0.0.1", int(sys.argv[1])))
        got.append(c.recv(100).decode())
    out.append(" ".join(got))
print("\n".join(out))
"#;

#[test]
fn udp_clients_get_their_own_upstream_sockets_and_the_recording_mocks_the_upstream() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("udp.ron");
    let (server, port, server_out) = python(UDP_ANSWERER, &[]);
    let relay = start(&[
        "relay",
        "udp",
        "127.0.0.1:0",
        "--to",
        &format!("127.0.0.1:{port}"),
        "--save",
        save.to_str().unwrap(),
    ]);
    let answers = python_run(TWO_UDP_CLIENTS, &[&relay.port.to_string()]);
    assert_eq!(answers, "Ra-one Rb-one\nRa-two Rb-two\n");
    assert_eq!(
        rest(server_out, server).trim(),
        "2",
        "one upstream socket a client"
    );
    let (code, _, err) = relay.stop();
    assert_eq!(code, 0, "{err}");
    let (up, down) = legs(&save);
    assert_eq!(up, b"a-oneb-onea-twob-two");
    assert_eq!(down, b"Ra-oneRb-oneRa-twoRb-two");

    // The recording answers both clients as the upstream did.
    let mock = start(&[
        "replay",
        save.to_str().unwrap(),
        "--as",
        "upstream",
        "--target",
        "127.0.0.1:0",
    ]);
    let again = python_run(TWO_UDP_CLIENTS, &[&mock.port.to_string()]);
    let (code, _, err) = mock.wait();
    assert_eq!(code, 0, "{err}");
    assert_eq!(again, answers);
}
