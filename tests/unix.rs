//! Unix-domain sockets over the command line, against python3's
//! `socket.AF_UNIX` peers, every socket path in a temporary folder.

mod common;
use common::{BIN, LIMIT, python3, sockbench, text, wait_bounded};

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

/// Starts a python3 script; returns it once it printed its first line ("ready").
fn python_peer(script: &str, args: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "ready", "python did not start: {first}");
    (child, out)
}

/// Waits for the python peer and returns the rest of its output.
fn python_done(mut child: Child, mut out: BufReader<ChildStdout>) -> String {
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
    assert!(child.wait().unwrap().success(), "python failed: {err}");
    rest
}

/// Starts `sockbench listen ARGS`; returns it once its first line says it
/// listens (or is bound), with that line.
fn start_listen(args: &[&str]) -> (Child, BufReader<ChildStdout>, String) {
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
    assert!(
        first.contains(" listening ") || first.contains(" bound "),
        "{first}"
    );
    (child, out, first)
}

fn finish(mut child: Child, mut out: BufReader<ChildStdout>) -> (i32, String, String) {
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
    (child.wait().unwrap().code().unwrap_or(-1), rest, err)
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn last_line(o: &Output) -> String {
    text(&o.stderr)
        .lines()
        .rfind(|l| l.starts_with("error:"))
        .unwrap_or_default()
        .to_owned()
}

fn saved(file: &Path) -> String {
    std::fs::read_to_string(file).unwrap()
}

const STREAM_SERVER: &str = r#"
import socket, sys
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sys.argv[1].encode())
srv.listen()
srv.settimeout(15)
print("ready", flush=True)
conn, _ = srv.accept()
conn.settimeout(15)
got = b""
while not got.endswith(b"\n"):
    chunk = conn.recv(100)
    if not chunk:
        break
    got += chunk
conn.sendall(b"world\n")
while True:
    chunk = conn.recv(100)
    if not chunk:
        break
    got += chunk
print(repr(got))
"#;

#[test]
fn a_stream_client_talks_to_a_python_unix_server() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("app.sock");
    let file = dir.path().join("client.sockbench");
    let (py, py_out) = python_peer(STREAM_SERVER, &[path_str(&sock)]);
    let o = sockbench(&[
        "connect",
        "unix",
        path_str(&sock),
        "--send",
        "hello\\n",
        "--wait",
        "0.5",
        "--save",
        path_str(&file),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // Both ways: python read what sockbench sent, sockbench logged the answer.
    assert_eq!(python_done(py, py_out).trim(), "b'hello\\n'");
    let out = text(&o.stdout);
    assert!(out.contains(" connected "), "{out}");
    assert!(out.contains("<- ") && out.contains("\"world\\n\""), "{out}");
    // The session file keeps the kind and its path, and loads again.
    let session = saved(&file);
    assert!(
        session.contains(&format!("kind: UnixClient(path: \"{}\")", path_str(&sock))),
        "{session}"
    );
    assert!(
        session.contains("Received(Text(\"world\\n\"))"),
        "{session}"
    );
    let check = sockbench(&["check", path_str(&file)]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
}

const STREAM_CLIENT: &str = r#"
import socket, sys
print("ready", flush=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(15)
s.connect(sys.argv[1].encode() if not sys.argv[1].startswith("@") else b"\0" + sys.argv[1][1:].encode())
s.sendall(b"ping\n")
got = b""
while len(got) < 5:
    chunk = s.recv(100)
    if not chunk:
        break
    got += chunk
s.shutdown(socket.SHUT_WR)
while True:
    chunk = s.recv(100)
    if not chunk:
        break
    got += chunk
print(repr(got))
"#;

#[test]
fn a_stream_server_echoes_to_a_python_client_and_removes_its_socket_file() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("srv.sock");
    let (child, out, first) = start_listen(&["unix", path_str(&sock), "--echo", "--once"]);
    assert!(first.contains(path_str(&sock)), "{first}");
    assert!(sock.exists(), "the socket file is made");
    let (py, py_out) = python_peer(STREAM_CLIENT, &[path_str(&sock)]);
    assert_eq!(python_done(py, py_out).trim(), "b'ping\\n'");
    let (code, rest, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");
    assert!(rest.contains("accepted (unnamed #1)"), "{rest}");
    assert!(rest.contains("\"ping\\n\""), "{rest}");
    assert!(!sock.exists(), "the server removes the socket file it made");
}

#[cfg(target_os = "linux")]
#[test]
fn an_abstract_name_needs_no_file() {
    if !python3() {
        return;
    }
    let name = format!(
        "@sockbench-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "@-".contains(*c))
        .collect();
    let (child, out, first) = start_listen(&["unix", &name, "--echo", "--once"]);
    assert!(first.contains(&name), "{first}");
    let (py, py_out) = python_peer(STREAM_CLIENT, &[&name]);
    assert_eq!(python_done(py, py_out).trim(), "b'ping\\n'");
    let (code, rest, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");
    assert!(rest.contains("\"ping\\n\""), "{rest}");
}

const DATAGRAM_ECHO_CLIENT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[2].encode())
s.settimeout(15)
print("ready", flush=True)
s.sendto(b"dgram", sys.argv[1].encode())
data, sender = s.recvfrom(1000)
print(repr(data), sender)
"#;

const DATAGRAM_SERVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1].encode())
s.settimeout(15)
print("ready", flush=True)
data, sender = s.recvfrom(1000)
s.sendto(b"back", sender)
print(repr(data), sender)
"#;

#[test]
fn datagrams_go_both_ways() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // sockbench receives and echoes; python sends from a bound name.
    let srv = dir.path().join("srv.sock");
    let py_name = dir.path().join("py.sock");
    let (child, out, _) = start_listen(&["unix-dgram", path_str(&srv), "--echo", "--once"]);
    let (py, py_out) = python_peer(DATAGRAM_ECHO_CLIENT, &[path_str(&srv), path_str(&py_name)]);
    assert_eq!(
        python_done(py, py_out).trim(),
        format!("b'dgram' {}", path_str(&srv))
    );
    let (code, rest, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");
    assert!(
        rest.contains(&format!("<- {} 5 \"dgram\"", path_str(&py_name))),
        "{rest}"
    );
    assert!(!srv.exists(), "the bound socket's file goes when it stops");

    // sockbench sends from --bind; python answers to that name.
    let py_srv = dir.path().join("py-srv.sock");
    let me = dir.path().join("me.sock");
    let (py, py_out) = python_peer(DATAGRAM_SERVER, &[path_str(&py_srv)]);
    let o = sockbench(&[
        "connect",
        "unix-dgram",
        path_str(&py_srv),
        "--bind",
        path_str(&me),
        "--send",
        "hi",
        "--wait",
        "0.5",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        python_done(py, py_out).trim(),
        format!("b'hi' {}", path_str(&me))
    );
    assert!(
        text(&o.stdout).contains("4 \"back\""),
        "{}",
        text(&o.stdout)
    );
    assert!(!me.exists());
}

#[test]
fn a_stale_socket_file_is_removed_only_when_asked_and_a_regular_file_never() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file at the path: refused, with or without --unlink, untouched.
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, b"keep").unwrap();
    for extra in [&[][..], &["--unlink"][..]] {
        let mut args = vec!["listen", "unix", path_str(&file), "--for", "1"];
        args.extend_from_slice(extra);
        let o = sockbench(&args);
        assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
        let line = last_line(&o);
        assert!(line.contains("is a regular file, not a socket"), "{line}");
        assert!(line.contains("never deletes"), "{line}");
        assert_eq!(std::fs::read(&file).unwrap(), b"keep");
    }
    // A stale socket file (its listener gone): said clearly, kept.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let o = sockbench(&["listen", "unix", path_str(&stale), "--for", "1"]);
    assert_eq!(o.status.code(), Some(3));
    let line = last_line(&o);
    assert!(
        line.contains("a stale socket file is at this path"),
        "{line}"
    );
    assert!(line.contains("--unlink"), "{line}");
    assert!(stale.exists());
    // With --unlink it goes, the server runs, and its own file goes at the end.
    let o = sockbench(&[
        "listen",
        "unix",
        path_str(&stale),
        "--unlink",
        "--for",
        "0.3",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("removed the stale socket file"),
        "{}",
        text(&o.stdout)
    );
    assert!(!stale.exists());
}

#[test]
fn client_errors_are_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sock");
    let o = sockbench(&["connect", "unix", path_str(&missing), "--send", "x"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(last_line(&o).contains("no such file"), "{}", last_line(&o));

    let regular = dir.path().join("file");
    std::fs::write(&regular, b"x").unwrap();
    let o = sockbench(&["connect", "unix", path_str(&regular), "--send", "x"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        last_line(&o).contains("not a socket: this path is a regular file"),
        "{}",
        last_line(&o)
    );

    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let o = sockbench(&["connect", "unix", path_str(&stale), "--send", "x"]);
    assert_eq!(o.status.code(), Some(3));
    let line = last_line(&o);
    assert!(line.starts_with("error: connection refused:"), "{line}");
    assert!(line.contains("nobody listens"), "{line}");

    // A stream client at a datagram socket: the wrong kind, said so.
    let dgram = dir.path().join("dgram.sock");
    let _bound = std::os::unix::net::UnixDatagram::bind(&dgram).unwrap();
    let o = sockbench(&["connect", "unix", path_str(&dgram), "--send", "x"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        last_line(&o).contains("wrong socket type"),
        "{}",
        last_line(&o)
    );

    // Permission denied (root is let in anyway: only checked as another user).
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| text(&o.stdout).trim() == "0");
    if matches!(root, Ok(false)) {
        use std::os::unix::fs::PermissionsExt;
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        let inside = locked.join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&inside).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        let o = sockbench(&["connect", "unix", path_str(&inside), "--send", "x"]);
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(o.status.code(), Some(3));
        assert!(
            last_line(&o).contains("permission denied"),
            "{}",
            last_line(&o)
        );
    } else {
        eprintln!("permission check skipped: root passes every permission");
    }
}

#[test]
fn a_path_too_long_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let long: PathBuf = dir.path().join("x".repeat(120));
    for args in [
        vec!["connect", "unix", path_str(&long)],
        vec!["listen", "unix", path_str(&long)],
        vec!["listen", "unix-dgram", path_str(&long)],
    ] {
        let o = sockbench(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let line = last_line(&o);
        assert!(line.contains("path too long"), "{line}");
        assert!(line.contains("at most 107"), "{line}");
    }
    let o = sockbench(&[
        "connect",
        "unix-dgram",
        "/tmp/x.sock",
        "--bind",
        &format!("/tmp/{}", "y".repeat(110)),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(last_line(&o).contains("--bind"), "{}", last_line(&o));
    // Unix flags on other protocols are mistakes, said as such.
    let o = sockbench(&["listen", "tcp", "127.0.0.1:0", "--unlink"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        last_line(&o).contains("--unlink is for unix"),
        "{}",
        last_line(&o)
    );
}

/// A session of one Unix endpoint with one recorded exchange.
fn session_of(kind: &str, name: &str, sent: &str, received: &str, remote: &str) -> String {
    format!(
        r#"(format: 1, endpoints: [(name: "{name}", kind: {kind})],
        log: (peers: [(endpoint: "{name}", peer: 1, remote: "{remote}")], entries: [
            (at: "2026-01-01T00:00:00.000000Z", endpoint: "{name}", peer: 1, event: {sent}),
            (at: "2026-01-01T00:00:00.001000Z", endpoint: "{name}", peer: 1, event: {received}),
        ]))"#
    )
}

fn export_python(dir: &Path, stem: &str, session: &str) -> PathBuf {
    let file = dir.join(format!("{stem}.sockbench"));
    std::fs::write(&file, session).unwrap();
    let program = dir.join(format!("{stem}.py"));
    let o = sockbench(&[
        "export",
        path_str(&file),
        "--to",
        "python",
        "-o",
        path_str(&program),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    program
}

#[test]
fn python_exports_of_every_unix_kind_parse_and_run_against_sockbench() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let srv = d.join("srv.sock");
    let dsrv = d.join("dsrv.sock");
    // A hostile path: quotes, a backslash, a newline and a non-ASCII letter.
    let hostile = d.join("we\"ird'\\\n é.sock");
    let hostile_ron = path_str(&hostile)
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    let sent = "Sent(Text(\"ping\\n\"))";
    let recv = "Received(Text(\"ping\\n\"))";
    let programs = [
        export_python(
            d,
            "client",
            &session_of(
                &format!("UnixClient(path: \"{}\")", path_str(&srv)),
                "c",
                sent,
                recv,
                "x",
            ),
        ),
        export_python(
            d,
            "server",
            &session_of(
                &format!("UnixServer(path: \"{hostile_ron}\")"),
                "s",
                recv,
                sent,
                "(unnamed #1)",
            ),
        ),
        export_python(
            d,
            "dclient",
            &session_of(
                &format!("UnixDatagram(remote: Some(\"{}\"))", path_str(&dsrv)),
                "dc",
                sent,
                recv,
                path_str(&dsrv),
            ),
        ),
        export_python(
            d,
            "dserver",
            &session_of(
                "UnixDatagram(bind: Some(\"@sockbench-export\"))",
                "ds",
                recv,
                sent,
                "/tmp/peer.sock",
            ),
        ),
    ];
    // Every program is valid Python, whatever its path held.
    for program in &programs {
        let o = common::run(
            "python3",
            &[
                "-c",
                "import ast, sys; ast.parse(open(sys.argv[1], 'rb').read())",
                path_str(program),
            ],
        );
        assert!(
            o.status.success(),
            "{}: {}",
            program.display(),
            text(&o.stderr)
        );
    }
    let server_program = std::fs::read_to_string(&programs[1]).unwrap();
    assert!(
        server_program.contains("socket.AF_UNIX, socket.SOCK_STREAM"),
        "{server_program}"
    );
    let abstract_program = std::fs::read_to_string(&programs[3]).unwrap();
    assert!(
        abstract_program.contains("PATH = b\"\\0\" + b\"sockbench-export\""),
        "{abstract_program}"
    );

    // The stream client, run against a sockbench echo server.
    let (child, out, _) = start_listen(&["unix", path_str(&srv), "--echo", "--once"]);
    let o = common::run("python3", &[path_str(&programs[0])]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("received b'ping\\n'"),
        "{}",
        text(&o.stdout)
    );
    let (code, _, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");

    // The datagram client, against a sockbench echoing datagram socket.
    let (child, out, _) = start_listen(&["unix-dgram", path_str(&dsrv), "--echo", "--once"]);
    let o = common::run("python3", &[path_str(&programs[2])]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("received b'ping\\n'"),
        "{}",
        text(&o.stdout)
    );
    let (code, _, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");

    // The stream server at the hostile path, answered by a sockbench client.
    let mut py = Command::new("python3")
        .arg(&programs[1])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !hostile.exists() {
        assert!(
            started.elapsed() < LIMIT,
            "the python server never bound its path"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = sockbench(&[
        "connect",
        "unix",
        path_str(&hostile),
        "--send",
        "ping\\n",
        "--wait",
        "0.5",
    ]);
    wait_bounded(&mut py);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("\"ping\\n\""),
        "{}",
        text(&o.stdout)
    );
    assert!(!hostile.exists(), "the program removes its socket file");
}

/// A stream server for replays: reads a line, answers `argv[2]`, reads to
/// the end, prints what it read.
const ANSWERING_SERVER: &str = r#"
import socket, sys
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sys.argv[1].encode())
srv.listen()
srv.settimeout(15)
print("ready", flush=True)
conn, _ = srv.accept()
conn.settimeout(15)
got = b""
while not got.endswith(b"\n"):
    chunk = conn.recv(100)
    if not chunk:
        break
    got += chunk
conn.sendall(sys.argv[2].encode())
while True:
    chunk = conn.recv(100)
    if not chunk:
        break
    got += chunk
print(repr(got))
"#;

/// Waits (bounded) until a socket file is at `path`.
fn wait_for_socket(path: &Path, child: &mut Child) {
    use std::os::unix::fs::FileTypeExt;
    let started = std::time::Instant::now();
    while !std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        if started.elapsed() > LIMIT || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("no socket appeared at {}", path.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Starts `sockbench replay ARGS` in the background.
fn start_replay(args: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new(BIN)
        .arg("replay")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

#[test]
fn a_recorded_unix_client_replays_against_a_python_server_and_checks_its_answer() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("app.sock");
    let file = dir.path().join("client.sockbench");
    // Recorded against a server that answers "world\n".
    let (py, py_out) = python_peer(ANSWERING_SERVER, &[path_str(&sock), "world\n"]);
    let o = sockbench(&[
        "connect",
        "unix",
        path_str(&sock),
        "--send",
        "hello\\n",
        "--wait",
        "0.5",
        "--save",
        path_str(&file),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(python_done(py, py_out).trim(), "b'hello\\n'");
    // Python leaves its socket file; the next server binds the path again.
    std::fs::remove_file(&sock).unwrap();

    // Replayed against the same answer: the server reads the recorded bytes, the check matches.
    let (py, py_out) = python_peer(ANSWERING_SERVER, &[path_str(&sock), "world\n"]);
    let o = sockbench(&["replay", path_str(&file), "--check", "--timeout", "2"]);
    assert_eq!(python_done(py, py_out).trim(), "b'hello\\n'");
    // Python leaves its socket file; the next server binds the path again.
    std::fs::remove_file(&sock).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("replaying client \"client\""), "{err}");
    assert!(
        err.contains("check: every conversation matched the recording")
            || text(&o.stdout).contains("check: every conversation matched the recording"),
        "{err}"
    );
    assert!(
        text(&o.stdout).contains(" connected "),
        "{}",
        text(&o.stdout)
    );

    // A server that answers otherwise: the mismatch exit code, and where.
    let (py, py_out) = python_peer(ANSWERING_SERVER, &[path_str(&sock), "wrong\n"]);
    let o = sockbench(&["replay", path_str(&file), "--check", "--timeout", "2"]);
    assert_eq!(python_done(py, py_out).trim(), "b'hello\\n'");
    // Python leaves its socket file; the next server binds the path again.
    std::fs::remove_file(&sock).unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let line = last_line(&o);
    assert!(
        line.contains("the replay differs from the recording in 1 conversation"),
        "{line}"
    );
}

/// A recorded Unix stream server: "ping\n" came, "pong\n" went.
fn recorded_server(path: &Path) -> String {
    format!(
        r#"(format: 1, endpoints: [(name: "srv", kind: UnixServer(path: "{}"))],
        log: (peers: [(endpoint: "srv", peer: 1, remote: "(unnamed)")], entries: [
            (at: "2026-01-01T00:00:00.000000Z", endpoint: "srv", peer: 1, event: Accepted("")),
            (at: "2026-01-01T00:00:00.001000Z", endpoint: "srv", peer: 1, event: Received(Text("ping\n"))),
            (at: "2026-01-01T00:00:00.002000Z", endpoint: "srv", peer: 1, event: Sent(Text("pong\n"))),
            (at: "2026-01-01T00:00:00.003000Z", endpoint: "srv", peer: 1, event: PeerClosed("")),
        ]))"#,
        path_str(path)
    )
}

#[test]
fn a_recorded_unix_server_replays_as_a_mock_that_a_python_client_talks_to() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("srv.sock");
    let file = dir.path().join("srv.sockbench");
    std::fs::write(&file, recorded_server(&sock)).unwrap();
    let (mut child, out) = start_replay(&[path_str(&file), "--check", "--timeout", "2"]);
    wait_for_socket(&sock, &mut child);
    let (py, py_out) = python_peer(STREAM_CLIENT, &[path_str(&sock)]);
    // The mock answered as recorded.
    assert_eq!(python_done(py, py_out).trim(), "b'pong\\n'");
    let (code, rest, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("replaying mock server \"srv\""), "{err}");
    assert!(
        rest.contains(&format!("listening {}", path_str(&sock))),
        "{rest}"
    );
    assert!(rest.contains("accepted (unnamed #1)"), "{rest}");
    assert!(
        rest.contains("\"ping\\n\"") && rest.contains("\"pong\\n\""),
        "{rest}"
    );
    assert!(
        err.contains("check: every conversation matched") || rest.contains("check: every"),
        "{err}"
    );
    assert!(!sock.exists(), "the mock removes the socket file it made");
}

#[test]
fn a_mock_refuses_a_path_in_use_or_any_file_and_removes_a_stale_one_only_when_asked() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("srv.sock");
    let file = dir.path().join("srv.sockbench");
    std::fs::write(&file, recorded_server(&sock)).unwrap();

    // Somebody listens there: exit 3 (address in use, as `listen unix`
    // says) with the reason, before any socket opens.
    let live = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    for extra in [&[][..], &["--unlink"][..]] {
        let mut args = vec!["replay", path_str(&file)];
        args.extend_from_slice(extra);
        let o = sockbench(&args);
        assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
        let line = last_line(&o);
        assert!(
            line.contains("another program's socket listens at this path"),
            "{line}"
        );
        assert!(line.contains("\"srv\""), "{line}");
        assert_eq!(
            text(&o.stderr)
                .lines()
                .filter(|l| l.starts_with("error:"))
                .count(),
            1
        );
    }
    drop(live);

    // Left stale: refused and kept without --unlink.
    let o = sockbench(&["replay", path_str(&file)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let line = last_line(&o);
    assert!(
        line.contains("a stale socket file is at this path"),
        "{line}"
    );
    assert!(line.contains("--unlink"), "{line}");
    assert!(sock.exists());

    // With --unlink: removed, the mock listens there, answers, and cleans up.
    let (child, out) = start_replay(&[path_str(&file), "--unlink", "--timeout", "2"]);
    // The stale file is there all along, so its being there says nothing:
    // the python client retries (bounded) until the mock listens.
    let (py, py_out) = python_peer(RETRYING_CLIENT, &[path_str(&sock)]);
    assert_eq!(python_done(py, py_out).trim(), "b'pong\\n'");
    let (code, rest, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");
    assert!(rest.contains("removed the stale socket file"), "{rest}");
    assert!(!sock.exists());

    // Any other file: never touched, with or without --unlink.
    std::fs::write(&sock, b"keep").unwrap();
    for extra in [&[][..], &["--unlink"][..]] {
        let mut args = vec!["replay", path_str(&file)];
        args.extend_from_slice(extra);
        let o = sockbench(&args);
        assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
        assert!(
            last_line(&o).contains("is a regular file, not a socket"),
            "{}",
            last_line(&o)
        );
        assert_eq!(std::fs::read(&sock).unwrap(), b"keep");
    }

    // --unlink where nothing binds a path, and --target on a Unix endpoint: usage mistakes.
    let client = dir.path().join("c.sockbench");
    std::fs::write(
        &client,
        session_of(
            &format!("UnixClient(path: \"{}\")", path_str(&sock)),
            "c",
            "Sent(Text(\"a\"))",
            "Received(Text(\"b\"))",
            path_str(&sock),
        ),
    )
    .unwrap();
    let o = sockbench(&["replay", path_str(&client), "--unlink"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(last_line(&o).contains("--unlink is for replaying a Unix server"));
    let o = sockbench(&["replay", path_str(&client), "--target", "127.0.0.1:9"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        last_line(&o).contains("replays at its recorded path"),
        "{}",
        last_line(&o)
    );

    // A datagram client whose peer had no name has nowhere to send: exit 2.
    let nowhere = dir.path().join("nowhere.sockbench");
    std::fs::write(
        &nowhere,
        session_of(
            &format!(
                "UnixDatagram(bind: Some(\"{}\"))",
                path_str(&dir.path().join("me.sock"))
            ),
            "d",
            "Sent(Text(\"a\"))",
            "Received(Text(\"b\"))",
            "(unnamed)",
        ),
    )
    .unwrap();
    let o = sockbench(&["replay", path_str(&nowhere)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        last_line(&o).contains("nothing to send to"),
        "{}",
        last_line(&o)
    );
    assert!(!dir.path().join("(unnamed)").exists());
}

#[test]
fn unix_datagram_sessions_replay_as_a_mock_and_as_a_checked_client() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A mock of a bound datagram socket: python sends "dgram" from its own name,
    // the mock answers "back" to that name, as recorded.
    let srv = dir.path().join("srv.sock");
    let py_name = dir.path().join("py.sock");
    let file = dir.path().join("dgram-srv.sockbench");
    std::fs::write(
        &file,
        session_of(
            &format!("UnixDatagram(bind: Some(\"{}\"))", path_str(&srv)),
            "d",
            "Received(Text(\"dgram\"))",
            "Sent(Text(\"back\"))",
            "/elsewhere/recorded.sock",
        ),
    )
    .unwrap();
    let (mut child, out) = start_replay(&[path_str(&file), "--check", "--timeout", "2"]);
    wait_for_socket(&srv, &mut child);
    let (py, py_out) = python_peer(DATAGRAM_ECHO_CLIENT, &[path_str(&srv), path_str(&py_name)]);
    assert_eq!(
        python_done(py, py_out).trim(),
        format!("b'back' {}", path_str(&srv))
    );
    let (code, rest, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("replaying mock server \"d\""), "{err}");
    assert!(
        rest.contains(&format!("<- {} 5 \"dgram\"", path_str(&py_name))),
        "{rest}"
    );
    assert!(!srv.exists(), "the mock's socket file goes when it ends");

    // A client bound to a name of its own sends "hi" to the python server and
    // checks the answer: "back" matches, "nope" is a mismatch.
    let py_srv = dir.path().join("py-srv.sock");
    let me = dir.path().join("me.sock");
    let file = dir.path().join("dgram-client.sockbench");
    std::fs::write(
        &file,
        session_of(
            &format!(
                "UnixDatagram(bind: Some(\"{}\"), remote: Some(\"{}\"))",
                path_str(&me),
                path_str(&py_srv)
            ),
            "d",
            "Sent(Text(\"hi\"))",
            "Received(Text(\"back\"))",
            path_str(&py_srv),
        ),
    )
    .unwrap();
    for (answer, code) in [("back", 0), ("nope", 1)] {
        let (py, py_out) = python_peer(ANSWERING_DATAGRAM_SERVER, &[path_str(&py_srv), answer]);
        let o = sockbench(&["replay", path_str(&file), "--check", "--timeout", "2"]);
        assert_eq!(
            python_done(py, py_out).trim(),
            format!("b'hi' {}", path_str(&me))
        );
        assert_eq!(o.status.code(), Some(code), "{}", text(&o.stderr));
        assert!(!me.exists(), "the client's socket file goes when it ends");
        let _ = std::fs::remove_file(&py_srv);
    }
}

const ANSWERING_DATAGRAM_SERVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1].encode())
s.settimeout(15)
print("ready", flush=True)
data, sender = s.recvfrom(1000)
s.sendto(sys.argv[2].encode(), sender)
print(repr(data), sender)
"#;

/// STREAM_CLIENT that retries a refused connect (at most 300 times, 50 ms apart).
const RETRYING_CLIENT: &str = r#"
import socket, sys, time
print("ready", flush=True)
for attempt in range(300):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    try:
        s.connect(sys.argv[1].encode())
        break
    except (ConnectionRefusedError, FileNotFoundError):
        s.close()
        time.sleep(0.05)
s.sendall(b"ping\n")
got = b""
while len(got) < 5:
    chunk = s.recv(100)
    if not chunk:
        break
    got += chunk
s.shutdown(socket.SHUT_WR)
while True:
    chunk = s.recv(100)
    if not chunk:
        break
    got += chunk
print(repr(got))
"#;

/// A replayed unix-dgram client whose receiver never reads: its queue fills
/// and a send would wait forever. The wait is bounded (by the longer of
/// `--timeout` and the endpoint's connect timeout): one error line, exit 3,
/// never a hang.
#[test]
fn a_replayed_datagram_send_to_a_receiver_that_never_reads_ends_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("sink.sock");
    let _sink = std::os::unix::net::UnixDatagram::bind(&sink).unwrap();
    let payload = "x".repeat(4096);
    // More bytes than any queue or socket buffer holds.
    let entries: String = (0..400)
        .map(|i| {
            format!(
                "(at: \"2026-01-01T00:00:{:02}.{:06}Z\", endpoint: \"d\", peer: 1, event: Sent(Text(\"{payload}\"))),\n",
                i / 100,
                i % 100 * 1000
            )
        })
        .collect();
    let file = dir.path().join("flood.sockbench");
    std::fs::write(
        &file,
        format!(
            r#"(format: 1, endpoints: [(name: "d", kind: UnixDatagram(remote: Some("{sink}")), options: (connect_timeout_secs: 0.5))],
            log: (peers: [(endpoint: "d", peer: 1, remote: "{sink}")], entries: [{entries}]))"#,
            sink = path_str(&sink)
        ),
    )
    .unwrap();
    let (child, out) = start_replay(&[path_str(&file), "--speed", "0", "--timeout", "0.5", "-q"]);
    let (code, _, err) = finish(child, out);
    assert_eq!(code, 3, "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("the peer does not read"), "{err}");

    // A receiver that reads, only late: `--timeout 0` (no wait for answers)
    // does not fail the writes that wait for it; all 400 go out.
    drop(_sink);
    std::fs::remove_file(&sink).unwrap();
    let late = std::os::unix::net::UnixDatagram::bind(&sink).unwrap();
    late.set_read_timeout(Some(LIMIT)).unwrap();
    let reader = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut buf = vec![0u8; 8192];
        (0..400).take_while(|_| late.recv(&mut buf).is_ok()).count()
    });
    let (child, out) = start_replay(&[path_str(&file), "--speed", "0", "--timeout", "0", "-q"]);
    let (code, _, err) = finish(child, out);
    assert_eq!(code, 0, "{err}");
    assert_eq!(reader.join().unwrap(), 400, "{err}");
}
