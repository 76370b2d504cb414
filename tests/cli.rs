//! The command line, run as the built binary against loopback peers.

mod common;
use common::{BIN, LIMIT, free_port, sockbench, wait_bounded};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn last_stderr_line(o: &Output) -> String {
    stderr(o).lines().last().unwrap_or_default().to_owned()
}

/// A TCP peer that echoes everything on one connection, then closes.
fn echo_peer() -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    all.extend_from_slice(&buf[..n]);
                    s.write_all(&buf[..n]).unwrap();
                }
            }
        }
        all
    });
    (addr, handle)
}

/// Starts `sockbench listen ...` and returns it with the address it listens on,
/// read from its first output line.
fn start_listen(args: &[&str]) -> (Child, String, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(BIN)
        .arg("listen")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let fields: Vec<&str> = first.split_whitespace().collect();
    assert!(
        matches!(fields.get(2), Some(&"listening") | Some(&"bound")),
        "{first}"
    );
    (child, fields[3].to_owned(), out)
}

fn finish(
    mut child: Child,
    mut out: BufReader<std::process::ChildStdout>,
) -> (i32, String, String) {
    wait_bounded(&mut child);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap().code().unwrap(), rest, err)
}

#[test]
fn connect_sends_in_order_and_saves() {
    let (addr, peer) = echo_peer();
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("run.ron");
    let o = sockbench(&[
        "connect",
        "tcp",
        &addr.to_string(),
        "--send",
        "hello\\n",
        "--send-hex",
        "00 01 ff",
        "--send",
        "bye",
        "--wait",
        "0.5",
        "--save",
        save.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(peer.join().unwrap(), b"hello\n\x00\x01\xffbye");
    let out = stdout(&o);
    let sent: Vec<&str> = out.lines().filter(|l| l.contains(" client -> ")).collect();
    assert_eq!(sent.len(), 3, "{out}");
    assert!(
        sent[0].ends_with(&format!("-> {addr} 6 \"hello\\n\"")),
        "{}",
        sent[0]
    );
    assert!(
        sent[1].ends_with(&format!("-> {addr} 3 [00 01 ff]")),
        "{}",
        sent[1]
    );
    assert!(out.lines().any(|l| l.contains(" client connected ")));
    assert!(out.lines().any(|l| l.contains(" client <- ")));
    // The echo comes back whole, in however many reads.
    let summary = last_stderr_line(&o);
    assert!(
        summary.starts_with("summary: sent 3 payloads (12 bytes), received "),
        "{summary}"
    );
    assert!(summary.ends_with(" payloads (12 bytes)"), "{summary}");

    let text = std::fs::read_to_string(&save).unwrap();
    assert!(text.contains("event: Sent(Text(\"hello\\n\"))"), "{text}");
    assert!(text.contains("event: Sent(Hex(\"00 01 ff\"))"), "{text}");
    assert!(
        text.contains("kind: TcpClient(remote: \"127.0.0.1:"),
        "{text}"
    );
    let check = sockbench(&["check", save.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(stdout(&check).contains(": ok"));
}

#[test]
fn connect_stops_when_the_peer_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"banner\r\n").unwrap();
    });
    // A long --wait: the peer closing is what ends the run.
    let started = Instant::now();
    let o = sockbench(&["connect", "tcp", &addr.to_string(), "--wait", "30"]);
    peer.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(stdout(&o).contains("<- "), "{}", stdout(&o));
    assert!(stdout(&o).contains("peer-closed"));
    assert_eq!(
        last_stderr_line(&o),
        "summary: sent 0 payloads (0 bytes), received 1 payloads (8 bytes)"
    );
}

#[test]
fn listen_echoes_once_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("server.ron");
    let (child, addr, out) = start_listen(&[
        "tcp",
        "127.0.0.1:0",
        "--echo",
        "--once",
        "--save",
        save.to_str().unwrap(),
    ]);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(b"ping\n").unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping\n");
    drop(s);
    let (code, rest, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");
    assert!(rest.contains(" server accepted "), "{rest}");
    assert!(rest.contains(" server <- "), "{rest}");
    assert!(rest.contains(" server -> "), "{rest}");
    assert_eq!(
        err.lines().last().unwrap(),
        "summary: sent 1 payloads (5 bytes), received 1 payloads (5 bytes)"
    );
    let text = std::fs::read_to_string(&save).unwrap();
    assert!(text.contains("reply: Echo"), "{text}");
    assert!(text.contains("Received(Text(\"ping\\n\"))"), "{text}");
}

#[test]
fn listen_replies_once_over_udp() {
    let (child, addr, out) =
        start_listen(&["udp", "127.0.0.1:0", "--reply-hex", "6f 6b", "--once"]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.send_to(b"hi", &addr).unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = s.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ok");
    let (code, _, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.lines().last().unwrap(),
        "summary: sent 1 payloads (2 bytes), received 1 payloads (2 bytes)"
    );
}

#[test]
fn connect_udp_reads_answers() {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let addr = peer.local_addr().unwrap();
    let answer = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        peer.send_to(&buf[..n].to_ascii_uppercase(), from).unwrap();
    });
    let o = sockbench(&[
        "connect",
        "udp",
        &addr.to_string(),
        "--send",
        "abc",
        "--wait",
        "0.5",
    ]);
    answer.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("<- 127.0.0.1:"), "{}", stdout(&o));
    assert!(stdout(&o).contains("3 \"ABC\""), "{}", stdout(&o));
}

#[test]
fn listen_for_stops_by_itself_and_quiet_prints_only_its_port() {
    let o = sockbench(&["listen", "tcp", "127.0.0.1:0", "--for", "0.3", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    // Port 0 picked a port: a quiet run still says which, on stderr.
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    let port: u16 = lines[0]
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert_ne!(port, 0);
    assert_eq!(
        lines[1],
        "summary: sent 0 payloads (0 bytes), received 0 payloads (0 bytes)"
    );
}

#[test]
fn output_that_cannot_be_written_is_an_error_a_closed_pipe_is_not() {
    // A full disk behind stdout: the run says so and exits 4.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
    if let Ok(full) = full {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_sockbench"))
            .args(["--help"])
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        assert!(stderr(&o).starts_with("error: cannot write to standard output"));
        let dir = tempfile::tempdir().unwrap();
        let session = dir.path().join("s.ron");
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/sessions/tcp-echo-pair.ron"),
            &session,
        )
        .unwrap();
        for args in [
            vec!["check", session.to_str().unwrap()],
            vec!["export", session.to_str().unwrap(), "--to", "csv"],
        ] {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_sockbench"))
                .args(&args)
                .stdout(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open("/dev/full")
                        .unwrap(),
                )
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(4), "{args:?}: {}", stderr(&o));
            assert_eq!(
                stderr(&o)
                    .lines()
                    .filter(|l| l.starts_with("error:"))
                    .count(),
                1
            );
        }
    } else {
        eprintln!("skipped the /dev/full half: no /dev/full here");
    }
    // A reader that goes away early is no failure.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sockbench"))
        .args(["--help"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn interrupt_stops_listen_cleanly_and_still_saves() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("interrupted.ron");
    let (child, _addr, out) =
        start_listen(&["tcp", "127.0.0.1:0", "--save", save.to_str().unwrap()]);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (code, _, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");
    assert!(err.ends_with("received 0 payloads (0 bytes)\n"), "{err}");
    assert!(
        std::fs::read_to_string(&save)
            .unwrap()
            .contains("Listening(")
    );
}

#[test]
fn sigterm_stops_listen_cleanly_and_still_saves() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("terminated.ron");
    let (child, _addr, out) =
        start_listen(&["udp", "127.0.0.1:0", "--save", save.to_str().unwrap()]);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (code, _, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("listening on 127.0.0.1:"), "{err}");
    assert!(
        err.lines().last().unwrap().starts_with("summary: "),
        "{err}"
    );
    assert!(std::fs::read_to_string(&save).unwrap().contains("Bound("));
}

#[test]
fn a_closed_stdout_is_no_crash() {
    let dir = tempfile::tempdir().unwrap();
    let session = dir.path().join("s.ron");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/sessions/tcp-echo-pair.ron"),
        &session,
    )
    .unwrap();
    let (addr, peer) = echo_peer();
    let save = dir.path().join("run.ron");
    for args in [
        vec![
            "check",
            session.to_str().unwrap(),
            session.to_str().unwrap(),
        ],
        vec![
            "connect",
            "tcp",
            &addr.to_string(),
            "--send",
            "-x",
            "--wait",
            "0.3",
            "--save",
            save.to_str().unwrap(),
        ],
    ] {
        let mut child = Command::new(BIN)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before anything is printed, like `| true`.
        drop(child.stdout.take());
        wait_bounded(&mut child);
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    peer.join().unwrap();
    assert!(save.is_file(), "the run still saved");
    // `--send -x` is a payload starting with a hyphen, not a flag.
    assert!(
        std::fs::read_to_string(&save)
            .unwrap()
            .contains("Text(\"-x\")")
    );
}

#[test]
fn a_failed_run_does_not_replace_a_saved_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let existing = dir.path().join("good.ron");
    std::fs::write(&existing, "a good recording").unwrap();
    let o = sockbench(&[
        "connect",
        "tcp",
        &format!("127.0.0.1:{port}"),
        "--save",
        existing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("nothing saved to"), "{err}");
    assert!(last_stderr_line(&o).starts_with("summary: "), "{err}");
    assert_eq!(
        std::fs::read_to_string(&existing).unwrap(),
        "a good recording"
    );
}

#[test]
fn network_failures_exit_3_with_the_reason() {
    let port = free_port();
    let o = sockbench(&[
        "connect",
        "tcp",
        &format!("127.0.0.1:{port}"),
        "--send",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("error: connection refused: connect to 127.0.0.1:"),
        "{err}"
    );
    assert_eq!(
        lines[1],
        "summary: sent 0 payloads (0 bytes), received 0 payloads (0 bytes)"
    );

    let o = sockbench(&["connect", "tcp", "nothing-here.invalid:80"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).starts_with("error: name not resolved: resolve nothing-here.invalid"),
        "{}",
        stderr(&o)
    );

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let o = sockbench(&[
        "listen",
        "tcp",
        &taken.local_addr().unwrap().to_string(),
        "--for",
        "5",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).starts_with("error: address in use: bind 127.0.0.1:"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn reset_exits_3() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        // The client's byte: its connect() has completed (a reset that beats
        // it, as a pause could let it, fails the connect itself).
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut byte = [0u8; 1];
        s.read_exact(&mut byte).unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    });
    let o = sockbench(&[
        "connect",
        "tcp",
        &addr.to_string(),
        "--send",
        "x",
        "--wait",
        "10",
    ]);
    peer.join().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("error: sent 1 of 1 payload: connection reset"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains(" client reset "), "{}", stdout(&o));
}

fn assert_bad_input(args: &[&str], expected: &str) {
    let o = sockbench(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    let err = stderr(&o);
    let first = err.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: "), "{args:?}: {err}");
    assert!(
        first.contains(expected),
        "{args:?}: expected {expected:?} in {first:?}"
    );
    assert_eq!(stdout(&o), "", "{args:?}");
}

#[test]
fn bad_input_exits_2_with_one_clear_line() {
    assert_bad_input(
        &["connect", "tcp", "127.0.0.1:65536"],
        "port 65536 is out of range",
    );
    assert_bad_input(&["connect", "tcp", "127.0.0.1"], "has no port");
    assert_bad_input(&["connect", "tcp", "::1:80"], "needs brackets");
    assert_bad_input(&["listen", "udp", "300.1.1.1:80"], "not one");
    assert_bad_input(
        &["connect", "tcp", "127.0.0.1:9", "--send-hex", "41 4"],
        "has no partner",
    );
    assert_bad_input(
        &["connect", "tcp", "127.0.0.1:9", "--send-hex", "zz"],
        "'z' is not a hex digit",
    );
    assert_bad_input(
        &["connect", "tcp", "127.0.0.1:9", "--send", "a\\yb"],
        "\"\\y\" is not a known escape",
    );
    assert_bad_input(
        &["connect", "tcp", "127.0.0.1:9", "--wait", "soon"],
        "not a number of seconds",
    );
    assert_bad_input(&["connect", "bogus", "127.0.0.1:9"], "bogus");
    assert_bad_input(
        &["frobnicate", "x", "y"],
        "\"frobnicate\" is not a command (the commands are connect, listen, relay, replay, run, export, import, check)",
    );

    // Every connect/listen mistake still ends with the summary line.
    let o = sockbench(&["connect", "tcp", "127.0.0.1:65536"]);
    assert_eq!(
        last_stderr_line(&o),
        "summary: sent 0 payloads (0 bytes), received 0 payloads (0 bytes)"
    );
}

#[test]
fn save_targets_are_checked_first_and_never_clobbered() {
    let dir = tempfile::tempdir().unwrap();
    // A directory as the file to save: refused before any connection is made.
    assert_bad_input(
        &[
            "listen",
            "tcp",
            "127.0.0.1:0",
            "--for",
            "5",
            "--save",
            dir.path().to_str().unwrap(),
        ],
        "is a directory",
    );
    let missing_folder = dir.path().join("nope").join("x.ron");
    assert_bad_input(
        &[
            "connect",
            "tcp",
            "127.0.0.1:9",
            "--save",
            missing_folder.to_str().unwrap(),
        ],
        "does not exist",
    );
    // Bad input leaves an existing file as it was.
    let existing = dir.path().join("keep.ron");
    std::fs::write(&existing, "precious").unwrap();
    assert_bad_input(
        &[
            "connect",
            "tcp",
            "127.0.0.1:9",
            "--send-hex",
            "xx",
            "--save",
            existing.to_str().unwrap(),
        ],
        "not a hex digit",
    );
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "precious");
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn check_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let malformed = write(
        dir.path(),
        "malformed.ron",
        "(\n    format: 1,\n    endpoints: [\n        (name: \"x\" kind: Udp()),\n    ],\n)\n",
    );
    let o = sockbench(&["check", &malformed]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with(&format!("error: {malformed}:4:")),
        "{}",
        stderr(&o)
    );

    let future = write(dir.path(), "future.ron", "(format: 7, endpoints: [])");
    let o = sockbench(&["check", &future]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("session format 7 is not one this sockbench reads"),
        "{}",
        stderr(&o)
    );

    let bad_port = write(
        dir.path(),
        "port.ron",
        "(format: 1, endpoints: [(name: \"c\", kind: TcpClient(remote: \"h:99999\"))])",
    );
    let o = sockbench(&["check", &bad_port]);
    assert!(stderr(&o).contains(":1:"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("port 99999 is out of range"),
        "{}",
        stderr(&o)
    );

    let o = sockbench(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is a directory"), "{}", stderr(&o));

    let o = sockbench(&["check", &dir.path().join("absent.ron").to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));

    // A good file next to bad ones: each is reported, the status is still 2.
    let good = write(dir.path(), "good.ron", "(format: 1)");
    let o = sockbench(&["check", &good, &future]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("good.ron: ok"));
}

#[test]
fn example_sessions_pass_check() {
    let mut files: Vec<String> = ["/sessions", "/sessions/lessons"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(format!("{}{dir}", env!("CARGO_MANIFEST_DIR"))).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert!(
        files.len() >= 9,
        "four examples and five lessons: {files:?}"
    );
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let o = sockbench(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), files.len());
}

/// Interoperability with a peer written with Python's `socket` module.
#[test]
fn talks_to_a_python_peer() {
    let Ok(probe) = Command::new("python3").arg("--version").output() else {
        eprintln!("skipped: python3 is not installed");
        return;
    };
    if !probe.status.success() {
        eprintln!("skipped: python3 does not run");
        return;
    }
    let script = r#"
import socket, sys
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(srv.getsockname()[1], flush=True)
srv.settimeout(10)
conn, _ = srv.accept()
conn.settimeout(10)
data = b""
while not data.endswith(b"\n"):
    chunk = conn.recv(1024)
    if not chunk:
        break
    data += chunk
conn.sendall(b"python got " + data)
conn.close()
"#;
    let mut py = Command::new("python3")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    BufReader::new(py.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let o = sockbench(&[
        "connect",
        "tcp",
        &format!("127.0.0.1:{}", port.trim()),
        "--send",
        "hi\\n",
        "--wait",
        "5",
    ]);
    wait_bounded(&mut py);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("\"python got hi\\n\""),
        "{}",
        stdout(&o)
    );
}

/// The session file shown in the README is a real one.
#[test]
fn readme_session_example_passes_check() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("```ron\n").expect("a ron block in the README") + "```ron\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "readme.ron", &readme[start..end]);
    let o = sockbench(&["check", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("ok, format 1, 3 endpoints, 2 library payloads, 4 log entries"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_bad_regex_in_a_session_is_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad-regex.ron");
    std::fs::write(
        &path,
        "(format: 1, endpoints: [(name: \"s\", kind: TcpServer(listen: \"127.0.0.1:0\"),\n reply: Rules([(when: Regex(\"ab(c\"), reply: Text(\"x\"))]))])\n",
    )
    .unwrap();
    let o = sockbench(&["check", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(":2:"), "{err}");
    assert!(err.contains("unclosed group (at character 3)"), "{err}");
}

/// Characters that must never reach the terminal as themselves.
fn is_dangerous(c: char) -> bool {
    let u = c as u32;
    u < 0x20
        || (0x7F..=0x9F).contains(&u)
        || (0x202A..=0x202E).contains(&u)
        || (0x2066..=0x2069).contains(&u)
        || matches!(u, 0x200E | 0x200F | 0x061C | 0x2028 | 0x2029)
}

/// Every line of stdout and stderr is one clean line: nothing but its final
/// line feed is a control or bidi character, and no line is forged (starts
/// with `forged`).
fn assert_clean_lines(o: &Output, forged: &[&str]) {
    for (stream, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        let text = std::str::from_utf8(bytes)
            .unwrap_or_else(|e| panic!("{stream} is not UTF-8: {e}: {bytes:?}"));
        for line in text.split_terminator('\n') {
            assert!(
                !line.chars().any(is_dangerous),
                "a raw control or bidi character on {stream}: {line:?}"
            );
            for f in forged {
                assert!(
                    !line.starts_with(f),
                    "a forged line on {stream}: {line:?}\nall of it:\n{text}"
                );
            }
        }
    }
}

#[test]
fn hostile_bytes_from_a_peer_never_forge_a_line() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let pieces: [&[u8]; 5] = [
            // Printable text with a line break that looks like an event line.
            b"hello\n2026-11-27T00:00:00.000000Z client connected 127.0.0.1:1\n",
            // Text whose only odd character is the Arabic letter mark (bidi).
            "arabic \u{061c}mark\n".as_bytes(),
            // Escape sequences, BEL, a C1 CSI, a bidi override.
            "\x1b[2J\x1b]0;owned\x07\u{9b}31m \u{202e}evil\n2026 FAKE".as_bytes(),
            // Only bidi and separators, otherwise text.
            "\u{2066}isolated\u{2069} \u{061c}mark \u{2028}line\u{2029}para\u{85}".as_bytes(),
            b"\r2026-11-27T00:00:00.000000Z client stopped\r\n",
        ];
        for piece in pieces {
            s.write_all(piece).unwrap();
            std::thread::sleep(Duration::from_millis(80));
        }
    });
    let o = sockbench(&["connect", "tcp", &addr.to_string(), "--wait", "0.5"]);
    peer.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.lines().filter(|l| l.contains(" client <- ")).count() >= 3,
        "{out}"
    );
    assert!(
        out.contains("\"hello\\n2026-11-27T00:00:00.000000Z client connected"),
        "the forged line stays inside its payload, escaped: {out}"
    );
    assert_clean_lines(&o, &["2026-11-27T00:00:00.000000Z", "2026 FAKE"]);
}

#[test]
fn hostile_certificate_names_and_alpn_are_escaped() {
    use rcgen::{CertificateParams, DnType, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.distinguished_name.push(
        DnType::CommonName,
        "evil\x1b[31m\u{202e}\n2026-11-27T00:00:00.000000Z client connected",
    );
    params
        .distinguished_name
        .push(DnType::OrganizationName, "org\x07\u{2067}\r\nFAKE");
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let cert_path = dir.path().join("hostile.pem");
    let key_path = dir.path().join("hostile-key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    // Protocol names with control characters are refused as bad input, said escaped.
    let hostile_alpn = "h2\x1b[31m\x07";
    let o = sockbench(&["connect", "tls", "127.0.0.1:9", "--alpn", hostile_alpn]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("h2\\x1b[31m\\x07"), "{}", stderr(&o));
    assert_clean_lines(&o, &[]);
    let alpn = "h2";

    let mut server = Command::new(BIN)
        .args(["listen", "tls", "127.0.0.1:0", "--echo", "--for", "10"])
        .args(["--cert", cert_path.to_str().unwrap()])
        .args(["--key", key_path.to_str().unwrap()])
        .args(["--alpn", alpn])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    // Ends the server and returns what else it printed.
    let stop = |mut server: Child, mut out: BufReader<std::process::ChildStdout>| {
        let _ = server.kill();
        wait_bounded(&mut server);
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
        let mut err = String::new();
        let _ = server.stderr.take().unwrap().read_to_string(&mut err);
        (rest, err)
    };
    if !first.contains("server listening") {
        let (_, err) = stop(server, out);
        panic!("the server did not start: {first}{err}");
    }
    let addr = first.split_whitespace().nth(3).unwrap().to_owned();
    let o = sockbench(&[
        "connect",
        "tls",
        &addr,
        "--insecure",
        "--alpn",
        alpn,
        "--send",
        "hi",
        "--wait",
        "0.3",
    ]);
    let (rest, err) = stop(server, out);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let client = stdout(&o);
    let tls_line = client
        .lines()
        .find(|l| l.contains(" client tls "))
        .unwrap_or_else(|| panic!("no TLS line: {client}"));
    assert!(
        tls_line.contains("evil\\x1b[31m\\u{202e}\\n2026-11-27T00:00:00.000000Z client connected"),
        "the subject escaped, on the TLS line: {tls_line}"
    );
    assert!(tls_line.contains("h2"), "{tls_line}");
    assert_clean_lines(&o, &["2026-11-27T00:00:00.000000Z", "FAKE"]);
    let server_output = Output {
        status: o.status,
        stdout: format!("{first}{rest}").into_bytes(),
        stderr: err.into_bytes(),
    };
    assert_clean_lines(&server_output, &["2026-11-27T00:00:00.000000Z", "FAKE"]);
}

/// A session whose names, notes, recorded peer and file name are hostile:
/// one client that talked to `remote` and heard `answer`.
fn hostile_session(dir: &Path, remote: std::net::SocketAddr, answer: &[u8]) -> String {
    use sockbench::model::{EndpointKind, EndpointSpec, EntryKind, NO_PEER, Session};
    let name = "\u{202e}evil\n2026-11-27T00:00:00.000000Z client connected\x1b[31m";
    let mut session = Session {
        notes: "notes\n2026-11-27T00:00:00.000000Z FAKE\x1b]0;t\x07".into(),
        ..Session::default()
    };
    session.endpoints.push(EndpointSpec::new(
        name,
        EndpointKind::TcpClient {
            remote: remote.to_string().parse().unwrap(),
        },
    ));
    let log = &mut session.log;
    let ep = log.endpoint_index(name);
    let peer = log.peer_index(
        ep,
        0,
        "10.0.0.1:1\n2026-11-27T00:00:00.000000Z FAKE\u{2067}",
    );
    let at = chrono::Utc::now();
    log.push(
        at,
        ep,
        NO_PEER,
        EntryKind::Connecting,
        remote.to_string().as_bytes(),
    );
    log.push(
        at,
        ep,
        peer,
        EntryKind::Connected,
        b"from 127.0.0.1:2\n2026 FAKE\x07",
    );
    log.push(at, ep, peer, EntryKind::Sent, b"ping\n");
    log.push(at, ep, peer, EntryKind::Received, answer);
    log.push(
        at,
        ep,
        NO_PEER,
        EntryKind::Note,
        "a note\n2026 FAKE\u{9b}2J".as_bytes(),
    );
    log.push(at, ep, peer, EntryKind::Closed, b"closed\r\n2026 FAKE");
    let path = dir.join("hostile\u{202e}\x1b[31m\nFAKE.ron");
    sockbench::persist::save(&path, &session).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn hostile_session_files_are_escaped_by_check_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    // A peer that answers differently from the recording, with escapes of its own.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf);
        let _ = s.write_all("pong\x1b[31m\u{202e}\n2026 FAKE\n".as_bytes());
        std::thread::sleep(Duration::from_millis(300));
    });
    let file = hostile_session(dir.path(), addr, b"pong\n");
    let forged = ["2026-11-27T00:00:00.000000Z", "2026 FAKE", "FAKE"];

    let o = sockbench(&["check", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("hostile\\u{202e}\\x1b[31m\\nFAKE.ron: ok"),
        "{}",
        stdout(&o)
    );
    assert_clean_lines(&o, &forged);

    let o = sockbench(&["replay", &file, "--check", "--speed", "0", "--timeout", "1"]);
    peer.join().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    let shown = "\\u{202e}evil\\n2026-11-27T00:00:00.000000Z client connected\\x1b[31m";
    assert!(
        stderr(&o).contains(&format!("replaying client \"{shown}\"")),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains(&format!("\"{shown}\", connection 1: ")),
        "the mismatch report names the endpoint escaped: {}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("pong\\x1b[31m\\u{202e}\\n2026 FAKE"),
        "{}",
        stdout(&o)
    );
    assert_clean_lines(&o, &forged);

    // A broken file whose error quotes hostile text: one escaped error line.
    let text = std::fs::read_to_string(&file).unwrap();
    let endpoints = text.find("endpoints: [").unwrap();
    let duplicated = format!(
        "{}endpoints: [\n        (name: \"a\\u{{202e}}\\n\\u{{1b}}[31m\", kind: Udp()),\n        (name: \"a\\u{{202e}}\\n\\u{{1b}}[31m\", kind: Udp()),{}",
        &text[..endpoints],
        &text[endpoints + "endpoints: [".len()..]
    );
    let broken = write(dir.path(), "dup\x07.ron", &duplicated);
    let o = sockbench(&["check", &broken]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
    assert_clean_lines(&o, &forged);
}

#[test]
fn save_and_export_never_replace_what_is_not_a_file() {
    use std::os::unix::fs::FileTypeExt as _;
    // Before: a regular file was renamed over /dev/null (as root, the system's).
    assert_bad_input(
        &["connect", "tcp", "127.0.0.1:9", "--save", "/dev/null"],
        "/dev/null: is a character device, not a regular file",
    );
    assert_bad_input(
        &[
            "listen",
            "udp",
            "127.0.0.1:0",
            "--for",
            "5",
            "--save",
            "/dev/null",
        ],
        "is a character device",
    );
    let dir = tempfile::tempdir().unwrap();
    let session = write(dir.path(), "s.ron", "(format: 1)");
    let o = sockbench(&["export", &session, "--to", "csv", "-o", "/dev/null"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is a character device"),
        "{}",
        stderr(&o)
    );
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    let fifo = dir.path().join("fifo");
    if Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        assert_bad_input(
            &[
                "connect",
                "tcp",
                "127.0.0.1:9",
                "--save",
                fifo.to_str().unwrap(),
            ],
            "is a fifo (named pipe), not a regular file",
        );
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }
}

#[test]
fn save_targets_that_cannot_work_are_found_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // Before, each of these passed the check and the recording was lost after the run.
    let slash = format!("{}/new/", dir.path().display());
    assert_bad_input(
        &["connect", "tcp", "127.0.0.1:9", "--save", &slash],
        "ends with /, which names a folder; give a file name",
    );
    let long = dir.path().join(format!("{}.ron", "n".repeat(296)));
    assert_bad_input(
        &[
            "connect",
            "tcp",
            "127.0.0.1:9",
            "--save",
            long.to_str().unwrap(),
        ],
        "cannot write",
    );
    // Before: "the folder afile does not exist".
    let afile = write(dir.path(), "afile", "x");
    assert_bad_input(
        &[
            "connect",
            "tcp",
            "127.0.0.1:9",
            "--save",
            &format!("{afile}/x.ron"),
        ],
        &format!("{afile} is a file, not a folder"),
    );
    // Nothing was left behind by the checks.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn check_refuses_files_it_must_not_read() {
    // Before: /dev/zero was read until the allocator aborted.
    let o = sockbench(&["check", "/dev/zero"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "/dev/zero: is a character device, not a regular file; give the session file as a file"
        ),
        "{}",
        stderr(&o)
    );
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.ron");
    if Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        // No writer ever comes: the check must not wait for one (bounded by the helper).
        let o = sockbench(&["check", fifo.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("is a fifo"), "{}", stderr(&o));
    }
    let huge = dir.path().join("huge.ron");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(256 * 1024 * 1024 + 1)
        .unwrap();
    let o = sockbench(&["check", huge.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("the session file is larger than 256 MiB"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_reads_a_bom_and_names_a_duplicated_field() {
    let dir = tempfile::tempdir().unwrap();
    let bom = write(
        dir.path(),
        "bom.ron",
        "\u{feff}(format: 1, endpoints: [])\n",
    );
    let o = sockbench(&["check", &bom]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let twice = write(
        dir.path(),
        "twice.ron",
        "(\n    format: 1,\n    endpoints: [],\n    endpoints: [],\n)\n",
    );
    let o = sockbench(&["check", &twice]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.starts_with(&format!("error: {twice}:4:")), "{err}");
    assert!(
        err.contains("the field `endpoints` is given twice in the session; keep one of them"),
        "{err}"
    );
    assert!(!err.contains("Probe"), "{err}");
}

#[test]
fn connect_udp_to_a_closed_port_exits_3() {
    // A loopback UDP port with nothing on it (bound, then released).
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = sockbench(&[
        "connect",
        "udp",
        &closed.to_string(),
        "--send",
        "anyone?",
        "--wait",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let error = stderr(&o).lines().next().unwrap_or_default().to_owned();
    assert!(
        error.starts_with("error: sent 1 of 1 payload: connection refused: "),
        "{error}"
    );
}

#[test]
fn listening_on_loopback_warns_of_nothing() {
    // Binding a wildcard address is not done in tests: the warning's words are
    // unit-tested in cli::drive; here, loopback must stay quiet about it.
    for proto in ["tcp", "udp", "tls"] {
        let o = sockbench(&["listen", proto, "127.0.0.1:0", "--for", "0.2"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(!stderr(&o).contains("warning"), "{proto}: {}", stderr(&o));
        assert!(!stderr(&o).contains("every interface"), "{}", stderr(&o));
    }
}

#[test]
fn payloads_are_written_to_a_peer_that_half_closes_at_once() {
    // Once 15 runs in 20 sent nothing and exited 0: the peer's FIN closed our
    // side before the payloads were queued. A FIN ends our reading only.
    for run in 0..20 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            s.set_read_timeout(Some(LIMIT)).unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            all
        });
        let o = sockbench(&[
            "connect",
            "tcp",
            &addr.to_string(),
            "--send",
            "one;",
            "--send",
            "two;",
            "--send",
            "three",
            "--wait",
            "5",
        ]);
        let got = peer.join().unwrap();
        assert_eq!(o.status.code(), Some(0), "run {run}: {}", stderr(&o));
        assert_eq!(got, b"one;two;three", "run {run}");
        assert!(
            last_stderr_line(&o).starts_with("summary: sent 3 payloads (13 bytes)"),
            "run {run}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_peer_that_resets_at_once_is_an_error_that_counts_the_payloads() {
    for run in 0..5 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            // Mostly after our connect() completed; a reset that beats it
            // (a busy machine) fails the connect itself, before any payload.
            std::thread::sleep(Duration::from_millis(20));
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        });
        let o = sockbench(&[
            "connect",
            "tcp",
            &addr.to_string(),
            "--send",
            "a",
            "--send",
            "b",
            "--send",
            "c",
            "--wait",
            "5",
        ]);
        peer.join().unwrap();
        assert_eq!(o.status.code(), Some(3), "run {run}: {}", stderr(&o));
        let error = stderr(&o)
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_default()
            .to_owned();
        let counted = if error.starts_with("error: connection reset: connect to ") {
            Some(0)
        } else {
            (0..=3).find(|k| error.starts_with(&format!("error: sent {k} of 3 payloads: ")))
        };
        assert!(counted.is_some(), "run {run}: {}", stderr(&o));
        // The summary counts what the error line counts: a write that failed
        // is not a payload sent.
        let summary = stderr(&o).lines().last().unwrap_or_default().to_owned();
        let k = counted.unwrap_or_default();
        assert!(
            summary.starts_with(&format!("summary: sent {k} payloads (")),
            "run {run}: {}",
            stderr(&o)
        );
    }
}

/// The hostile review's case: a peer that closes at once, three payloads of
/// ten bytes: whatever the kernel lets through, the error line and the
/// summary agree.
#[test]
fn a_peer_that_closes_at_once_gets_a_summary_that_agrees_with_the_error() {
    for run in 0..10 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || drop(listener.accept().unwrap()));
        let o = sockbench(&[
            "connect",
            "tcp",
            &addr.to_string(),
            "--send",
            "aaaaaaaaaa",
            "--send",
            "bbbbbbbbbb",
            "--send",
            "cccccccccc",
            "--wait",
            "2",
        ]);
        peer.join().unwrap();
        let err = stderr(&o);
        let summary = err.lines().last().unwrap_or_default();
        match err.lines().find(|l| l.starts_with("error: sent ")) {
            Some(line) => {
                let k: u64 = line["error: sent ".len()..]
                    .split(' ')
                    .next()
                    .and_then(|k| k.parse().ok())
                    .unwrap_or(99);
                assert!(
                    summary.starts_with(&format!("summary: sent {k} payloads ({} bytes)", k * 10)),
                    "run {run}: {err}"
                );
            }
            None => assert!(
                o.status.code() == Some(0)
                    && summary.starts_with("summary: sent 3 payloads (30 bytes)")
                    || o.status.code() == Some(3),
                "run {run}: {err}"
            ),
        }
    }
}

#[test]
fn listen_tls_once_is_not_ended_by_a_port_probe() {
    let (child, addr, out) = start_listen(&["tls", "127.0.0.1:0", "--once"]);
    // A port probe: connect, and leave without a handshake.
    drop(TcpStream::connect(&addr).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    let client = sockbench(&[
        "connect",
        "tls",
        &addr,
        "--insecure",
        "--send",
        "served",
        "--wait",
        "0.3",
    ]);
    assert_eq!(client.status.code(), Some(0), "{}", stderr(&client));
    let (code, rest, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");
    assert!(
        rest.contains("served"),
        "the real client was served: {rest}"
    );
    assert!(rest.contains(" server tls "), "{rest}");
}

/// A run that fails (the peer resets) and whose save then fails too (its
/// folder went away) says both in one error line, keeps the recording in a
/// recovery file, and exits with the worse status (4: output lost).
#[test]
fn a_failed_run_whose_save_fails_says_both_in_one_line() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("gone");
    std::fs::create_dir(&folder).unwrap();
    let cache = dir.path().join("cache");
    let save = folder.join("x.ron");
    let mut child = Command::new(BIN)
        .args(["connect", "tcp", &addr, "--send", "hello", "--wait", "5"])
        .args(["--save", save.to_str().unwrap()])
        .env("XDG_CACHE_HOME", &cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let mut got = [0u8; 5];
    peer.read_exact(&mut got).unwrap();
    // The payload is out and recorded: take the folder away, then reset.
    std::fs::remove_dir_all(&folder).unwrap();
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    wait_bounded(&mut child);
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("reset"), "{err}");
    assert!(errors[0].contains("not saved"), "{err}");
    assert!(
        err.lines().last().unwrap().starts_with("summary: "),
        "{err}"
    );
    let kept: Vec<_> = std::fs::read_dir(cache.join("sockbench"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let text = std::fs::read_to_string(&kept[0]).unwrap();
    assert!(text.contains("Sent(Text(\"hello\"))"), "{text}");
}

/// `--once` with `--max-peers`: a refused peer is not the served one, so its
/// end does not end the run; the served peer's end does.
#[test]
fn a_refused_peer_does_not_end_a_once_run() {
    let (mut child, addr, out) =
        start_listen(&["tcp", "127.0.0.1:0", "--once", "--max-peers", "1", "--echo"]);
    let mut first = TcpStream::connect(&addr).unwrap();
    first.set_read_timeout(Some(LIMIT)).unwrap();
    first.write_all(b"one").unwrap();
    let mut echo = [0u8; 3];
    first.read_exact(&mut echo).unwrap();
    // The second peer is over the cap: accepted and closed at once.
    let mut second = TcpStream::connect(&addr).unwrap();
    second.set_read_timeout(Some(LIMIT)).unwrap();
    let mut rest = Vec::new();
    let _ = second.read_to_end(&mut rest);
    assert!(rest.is_empty());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the refused peer ended the --once run"
    );
    // The first peer is still served, and its end ends the run.
    first.write_all(b"two").unwrap();
    first.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"two");
    drop(first);
    let (code, stdout, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("refused: 1 peers are connected"),
        "{stdout}"
    );
}

#[test]
fn listen_rules_answer_a_request_split_across_writes() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("rules.ron");
    let (child, addr, out) = start_listen(&[
        "tcp",
        "127.0.0.1:0",
        "--framing",
        "crlf",
        "--rule",
        r"re:^GET (\S+)",
        r"got $1\n",
        "--once",
        "--save",
        save.to_str().unwrap(),
    ]);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(b"GET /a").unwrap();
    std::thread::sleep(Duration::from_millis(60));
    s.write_all(b"bc HTTP/1.0\r\n").unwrap();
    let mut buf = [0u8; 9];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"got /abc\n");
    drop(s);
    let (code, rest, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");
    assert!(rest.contains(" rule 1 matched (hit 1)"), "{rest}");
    let text = std::fs::read_to_string(&save).unwrap();
    assert!(text.contains("framing: Crlf"), "{text}");
    let o = sockbench(&["check", save.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn bad_rules_exit_2_with_one_line() {
    fn listen<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["listen", "tcp", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        args
    }
    assert_bad_input(
        &listen(&["--rule", "re:(", "x"]),
        "--rule #1 \"(\": bad regex",
    );
    assert_bad_input(
        &listen(&["--rule", "after=login,any", "x"]),
        "no rule has that name",
    );
    assert_bad_input(
        &listen(&["--rule", "any", "x", "--framing", "len:3"]),
        "1, 2 or 4 bytes",
    );
    assert_bad_input(&listen(&["--framing", "line"]), "give a rule too");
}

#[test]
fn connect_repeat_sends_each_round_and_stops() {
    let (addr, peer) = echo_peer();
    let o = sockbench(&[
        "connect",
        "tcp",
        &addr.to_string(),
        "--send",
        "a",
        "--send",
        "b\\n",
        "--repeat",
        "3",
        "--interval",
        "20",
        "--wait",
        "0.3",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(peer.join().unwrap(), b"ab\nab\nab\n");
    // The echoes may come back in any number of reads.
    assert!(
        last_stderr_line(&o).starts_with("summary: sent 6 payloads (9 bytes), received "),
        "{}",
        last_stderr_line(&o)
    );
}

/// CRC-16/MODBUS bit by bit, as the specification gives it: the test's own
/// oracle, independent of the crc crate the program uses.
fn modbus_crc(bytes: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[test]
fn connect_repeat_sends_a_counter_and_a_crc_the_peer_checks() {
    assert_eq!(modbus_crc(b"123456789"), 0x4B37, "the oracle itself");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The peer reads three 8-byte frames and checks each one's CRC itself.
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut frames = Vec::new();
        for _ in 0..3 {
            let mut frame = [0u8; 8];
            s.read_exact(&mut frame).unwrap();
            let crc = modbus_crc(&frame[..6]).to_le_bytes();
            assert_eq!(frame[6..], crc, "frame {frame:02x?}: its CRC");
            frames.push(frame);
        }
        frames
    });
    let o = sockbench(&[
        "connect",
        "tcp",
        &addr.to_string(),
        "--send",
        "\\x01\\x03${counter:u16be,start=7}${len:u8}\\x00${crc16_modbus}",
        "--repeat",
        "3",
        "--interval",
        "0",
        "--wait",
        "0.2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let frames = peer.join().unwrap();
    for (round, frame) in frames.iter().enumerate() {
        let n = 7 + round as u8;
        let body = [0x01, 0x03, 0x00, n, 0x08, 0x00];
        let mut want = body.to_vec();
        want.extend_from_slice(&modbus_crc(&body).to_le_bytes());
        assert_eq!(frame[..], want[..], "round {}", round + 1);
    }
    assert!(
        last_stderr_line(&o).starts_with("summary: sent 3 payloads (24 bytes)"),
        "{}",
        last_stderr_line(&o)
    );
    // A placeholder mistake is named with its position, before connecting.
    let o = sockbench(&[
        "connect",
        "tcp",
        &addr.to_string(),
        "--send",
        "ab${crc16:0..2}",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("at position 3: \"crc16\" is not a placeholder"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn connect_repeat_0_runs_until_interrupted() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut child = Command::new(BIN)
        .args(["connect", "tcp", &addr.to_string(), "--send", "tick\\n"])
        .args(["--repeat", "0", "--interval", "10", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let mut lines = BufReader::new(s);
    for _ in 0..5 {
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        assert_eq!(line, "tick\n");
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_bounded(&mut child);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The rest of the stream ends cleanly: whole ticks, then the close.
    let mut rest = String::new();
    lines.read_to_string(&mut rest).unwrap();
    assert!(rest.lines().all(|l| l == "tick"), "{rest:?}");
}

#[test]
fn bad_repeats_exit_2_with_one_line() {
    let c = |extra: &[&'static str]| {
        let mut args: Vec<&'static str> = vec!["connect", "tcp", "127.0.0.1:9"];
        args.extend_from_slice(extra);
        args
    };
    assert_bad_input(&c(&["--send", "x", "--repeat", "-1"]), "--repeat");
    assert_bad_input(
        &c(&["--send", "x", "--repeat", "2", "--interval", "soon"]),
        "--interval \"soon\"",
    );
    assert_bad_input(
        &c(&["--repeat", "2"]),
        "give --send, --send-hex or --send-file too",
    );
    assert_bad_input(
        &c(&["--send", "x", "--interval", "5"]),
        "give --repeat N too",
    );
    assert_bad_input(
        &c(&["--send", "x", "--repeat", "0", "--interval", "0"]),
        "--interval 1 or more",
    );
}

/// A TCP peer that reads one connection to its end and returns every byte.
fn reading_peer() -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        all
    });
    (addr, handle)
}

#[test]
fn send_file_sends_the_file_byte_for_byte_in_command_line_order() {
    let dir = tempfile::tempdir().unwrap();
    // Every byte value, and more than one read's worth.
    let binary: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let path = dir.path().join("payload.bin");
    std::fs::write(&path, &binary).unwrap();
    let text = dir.path().join("hello.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let (addr, peer) = reading_peer();
    let o = sockbench(&[
        "connect",
        "tcp",
        &addr.to_string(),
        "--send",
        "<",
        "--send-file",
        path.to_str().unwrap(),
        "--send-hex",
        "3e",
        "--send-file",
        text.to_str().unwrap(),
        "--wait",
        "0.2",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut expected = b"<".to_vec();
    expected.extend_from_slice(&binary);
    expected.extend_from_slice(b">hello\n");
    let got = peer.join().unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the peer got other bytes");
    assert!(
        last_stderr_line(&o).starts_with("summary: sent 4 payloads (200008 bytes)"),
        "{}",
        last_stderr_line(&o)
    );

    // Over UDP, and repeated: each round sends the file again.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    let o = sockbench(&[
        "connect",
        "udp",
        &socket.local_addr().unwrap().to_string(),
        "--send-file",
        text.to_str().unwrap(),
        "--repeat",
        "3",
        "--interval",
        "1",
        "--wait",
        "0.1",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut buf = [0u8; 64];
    for _ in 0..3 {
        let (n, _) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello\n");
    }
}

#[test]
fn send_file_refuses_what_is_not_a_readable_regular_file_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let c = |path: &Path| -> Vec<String> {
        vec![
            "connect".into(),
            "tcp".into(),
            "127.0.0.1:9".into(),
            "--send".into(),
            "x".into(),
            "--send-file".into(),
            path.to_str().unwrap().into(),
        ]
    };
    let check = |path: &Path, expected: &str| {
        let args = c(path);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_bad_input(&args, expected);
        let o = sockbench(&args);
        let err = stderr(&o);
        // One error line, naming the path (the summary line follows, as for every connect).
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(
            errors[0].starts_with(&format!("error: --send-file {}", path.display())),
            "{err}"
        );
    };
    check(&dir.path().join("missing.bin"), "no such file");
    check(dir.path(), "is a directory, not a regular file");
    let big = dir.path().join("big.bin");
    // Sparse: one byte over the limit costs no disk.
    std::fs::File::create(&big)
        .unwrap()
        .set_len(64 * 1024 * 1024 + 1)
        .unwrap();
    check(&big, "larger than 64 MiB");
    let empty = dir.path().join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    check(&empty, "the file is empty (TCP has no empty messages)");
    let fifo = dir.path().join("fifo");
    if Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        // Never opened, so nothing blocks waiting for a writer.
        check(&fifo, "is a fifo (named pipe), not a regular file");
    }
}
