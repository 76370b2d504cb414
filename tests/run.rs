//! `sockbench run FILE`: a shipped session's endpoints headless, answered by
//! python3 peers over loopback; `--endpoint`, `--for`, `--save`; and
//! `replay --stats`.

mod common;
use common::{BIN, LIMIT, free_port, python3, sockbench, text, wait_bounded};

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

/// The shipped line-chat session (a server with a rule, clients alice and
/// bob) with its address moved to `addr`, written in `dir`.
fn line_chat(dir: &std::path::Path, addr: &str) -> String {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sessions/line-chat.ron"
    ))
    .unwrap();
    assert!(
        shipped.contains("\"127.0.0.1:7010\""),
        "the shipped session moved"
    );
    let path = dir.join("chat.ron");
    std::fs::write(&path, shipped.replace("127.0.0.1:7010", addr)).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A running `sockbench run`, its stdout and stderr read line by line.
struct Running {
    child: Child,
    out: Receiver<String>,
    err: Receiver<String>,
    out_seen: Vec<String>,
    err_seen: Vec<String>,
}

fn lines(from: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .arg("run")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = lines(child.stdout.take().unwrap());
        let err = lines(child.stderr.take().unwrap());
        Running {
            child,
            out,
            err,
            out_seen: Vec::new(),
            err_seen: Vec::new(),
        }
    }

    /// Waits (at most [`LIMIT`]) for a stdout line that `wanted` accepts,
    /// among the lines seen so far too (alice and bob connect in either order).
    fn stdout_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.out_seen.iter().find(|l| wanted(l)) {
            return line.clone();
        }
        let began = Instant::now();
        while began.elapsed() < LIMIT {
            if let Ok(line) = self.out.recv_timeout(LIMIT / 100) {
                self.out_seen.push(line.clone());
                if wanted(&line) {
                    return line;
                }
            }
        }
        panic!("no such line on stdout: {:#?}", self.out_seen);
    }

    /// Waits (at most [`LIMIT`]) for a stderr line that `wanted` accepts.
    fn stderr_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let began = Instant::now();
        while began.elapsed() < LIMIT {
            if let Ok(line) = self.err.recv_timeout(LIMIT / 100) {
                self.err_seen.push(line.clone());
                if wanted(&line) {
                    return line;
                }
            }
        }
        panic!("no such line on stderr: {:#?}", self.err_seen);
    }

    /// Asks the run to stop (SIGINT, as Ctrl+C does).
    fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the end; returns the exit status and every line of each stream.
    fn finish(mut self) -> (i32, Vec<String>, Vec<String>) {
        wait_bounded(&mut self.child);
        let code = self.child.wait().unwrap().code().unwrap();
        let (mut out, mut err) = (
            std::mem::take(&mut self.out_seen),
            std::mem::take(&mut self.err_seen),
        );
        out.extend(self.out.iter());
        err.extend(self.err.iter());
        (code, out, err)
    }
}

/// A test that fails midway must not leave `sockbench run` running (it runs
/// until stopped, and holds whatever the test's parent handed it).
impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A python3 client: connects to `addr`, sends `hello\n`, prints what came back.
fn python_client(addr: &str) -> Vec<u8> {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let script = format!(
        r#"
import socket, sys
s = socket.create_connection(("{host}", {port}), timeout=10)
s.sendall(b"hello\n")
data = b""
while not data.endswith(b"\n"):
    chunk = s.recv(1024)
    if not chunk:
        break
    data += chunk
s.close()
sys.stdout.buffer.write(data)
"#
    );
    let o = common::run("python3", &["-c", &script]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    o.stdout
}

/// The whole shipped session: the server listens before alice and bob
/// connect, its rule answers a python client byte for byte, Ctrl+C ends the
/// run with a summary, and `--save` writes the whole session with the run's
/// traffic, which loads back.
#[test]
fn the_shipped_line_chat_runs_headless_and_answers_a_python_client() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let file = line_chat(dir.path(), &addr);
    let save = dir.path().join("saved.ron");
    let mut run = Running::start(&[&file, "--save", save.to_str().unwrap()]);
    let said = run.stderr_line(|l| l.starts_with("listening on "));
    assert_eq!(said, format!("listening on {addr} (chat server)"));
    // Both clients connect, and only after the server listened.
    run.stdout_line(|l| l.contains(" alice connected "));
    run.stdout_line(|l| l.contains(" bob connected "));
    let listened = run
        .out_seen
        .iter()
        .position(|l| l.contains(" chat server listening "))
        .expect("the server's listening line");
    let first_client = run
        .out_seen
        .iter()
        .position(|l| l.contains(" alice connecting ") || l.contains(" bob connecting "))
        .expect("a client's connecting line");
    assert!(listened < first_client, "{:#?}", run.out_seen);

    assert_eq!(python_client(&addr), b"server: got your line\n");
    run.stdout_line(|l| {
        l.contains(" chat server -> ") && l.ends_with(" 22 \"server: got your line\\n\"")
    });
    run.interrupt();
    let (code, out, err) = run.finish();
    assert_eq!(code, 0, "{err:#?}");
    assert!(
        out.iter()
            .any(|l| l.contains(" chat server <- ") && l.ends_with(" 6 \"hello\\n\"")),
        "{out:#?}"
    );
    assert_eq!(
        err.last().map(String::as_str),
        Some("summary: sent 1 payloads (22 bytes), received 1 payloads (6 bytes)")
    );
    // On stop the clients close first: on each client's connection the
    // server hears the client's FIN before it sends its own (both told by the
    // server's own task, so their order is the order they happened), and the
    // server stops last.
    let at = |what: &str| out.iter().position(|l| l.contains(what));
    for client in ["alice", "bob"] {
        let connected = &out[at(&format!(" {client} connected "))
            .unwrap_or_else(|| panic!("{client} connects: {out:#?}"))];
        let from = connected
            .rsplit_once(" from ")
            .map(|(_, local)| local.trim())
            .expect("the client's own address");
        let heard = at(&format!(" chat server peer-closed {from} "))
            .unwrap_or_else(|| panic!("the server hears {client}'s FIN: {out:#?}"));
        let fin = at(&format!(" chat server half-closed {from} "))
            .unwrap_or_else(|| panic!("the server closes {client}'s connection: {out:#?}"));
        assert!(heard < fin, "{client} closes first: {out:#?}");
        let stopped = at(&format!(" {client} stopped")).expect("the client stops");
        let server_stopped = at(" chat server stopped").expect("the server stops");
        assert!(stopped < server_stopped, "{out:#?}");
    }

    let saved = sockbench::persist::load(&save).unwrap();
    let names: Vec<&str> = saved.endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["chat server", "alice", "bob"]);
    assert_eq!(saved.library.len(), 1, "the library is kept");
    let log = &saved.log;
    let payloads: Vec<(String, String, Vec<u8>)> = log
        .entries()
        .iter()
        .filter(|e| {
            !e.is_empty()
                && matches!(
                    e.kind,
                    sockbench::model::log::EntryKind::Sent
                        | sockbench::model::log::EntryKind::Received
                )
        })
        .map(|e| {
            (
                log.endpoint_name(e).to_owned(),
                e.kind.label().to_owned(),
                log.bytes_of(e).to_vec(),
            )
        })
        .collect();
    assert_eq!(payloads.len(), 2, "{payloads:?}");
    assert_eq!(payloads[0].0, "chat server");
    assert_eq!(payloads[0].2, b"hello\n");
    assert_eq!(payloads[1].2, b"server: got your line\n");
    assert_ne!(payloads[0].1, payloads[1].1);
    // The run's own log: the session's alice and bob connected in it.
    assert!(log.endpoints().iter().any(|n| n == "alice"));
}

/// `--endpoint` runs only the named endpoints (here the server, on port 0:
/// stderr says the port), `--for` ends the run with its summary, and
/// `--stats` says the counts every second meanwhile.
#[test]
fn endpoint_picks_what_runs_and_for_ends_the_run() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = line_chat(dir.path(), "127.0.0.1:0");
    let mut run = Running::start(&[&file, "--endpoint", "chat server", "--for", "3", "--stats"]);
    let said = run.stderr_line(|l| l.starts_with("listening on "));
    let addr = said
        .strip_prefix("listening on ")
        .and_then(|s| s.strip_suffix(" (chat server)"))
        .unwrap()
        .to_owned();
    assert_eq!(python_client(&addr), b"server: got your line\n");
    // No Ctrl+C: --for ends it.
    let (code, out, err) = run.finish();
    assert_eq!(code, 0, "{err:#?}");
    assert!(
        !out.iter().any(|l| l.contains("alice") || l.contains("bob")),
        "{out:#?}"
    );
    assert!(
        out.last().unwrap().ends_with(" chat server stopped"),
        "{out:#?}"
    );
    let stats: Vec<&String> = err.iter().filter(|l| l.starts_with("stats ")).collect();
    assert!(
        stats
            .first()
            .is_some_and(|l| l.starts_with("stats 1s: sent ")),
        "{err:#?}"
    );
    assert_eq!(
        err.last().map(String::as_str),
        Some("summary: sent 1 payloads (22 bytes), received 1 payloads (6 bytes)")
    );
}

/// A client of the shipped echo pair, alone, against a python3 server: what
/// the server says reaches the log byte for byte.
#[test]
fn a_client_of_a_session_talks_to_a_python_server() {
    if !python3() {
        return;
    }
    let script = r#"
import socket
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(srv.getsockname()[1], flush=True)
srv.settimeout(10)
conn, _ = srv.accept()
conn.sendall(b"hello from python\n")
conn.settimeout(10)
while conn.recv(1024):
    pass
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
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sessions/tcp-echo-pair.ron"
    ))
    .unwrap();
    assert!(shipped.contains("TcpClient(remote: \"127.0.0.1:7007\")"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pair.ron");
    let moved = shipped.replace(
        "TcpClient(remote: \"127.0.0.1:7007\")",
        &format!("TcpClient(remote: \"127.0.0.1:{}\")", port.trim()),
    );
    std::fs::write(&file, moved).unwrap();
    let mut run = Running::start(&[file.to_str().unwrap(), "--endpoint", "client", "--json"]);
    let line = run.stdout_line(|l| l.contains("\"received\""));
    assert!(line.contains("hello from python\\n"), "{line}");
    run.interrupt();
    let (code, _, err) = run.finish();
    wait_bounded(&mut py);
    assert_eq!(code, 0, "{err:#?}");
    assert_eq!(
        err.last().map(String::as_str),
        Some("summary: sent 0 payloads (0 bytes), received 1 payloads (18 bytes)")
    );
}

#[test]
fn an_unknown_endpoint_is_bad_input_that_lists_the_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = line_chat(dir.path(), "127.0.0.1:0");
    let o = sockbench(&["run", &file, "--endpoint", "alice", "--endpoint", "carol"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert_eq!(
        lines[0],
        format!(
            "error: --endpoint \"carol\": {file} has no endpoint of that name; its endpoints are \"chat server\", \"alice\", \"bob\""
        )
    );
    assert!(lines[1].starts_with("summary: "), "{err}");
    assert!(o.stdout.is_empty());
    // A --save target that cannot be written is found before anything runs.
    let o = sockbench(&["run", &file, "--save", "/nonexistent/dir/x.ron"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());
    // Saving over the session being run would lose its recording.
    let o = sockbench(&["run", &file, "--save", &file]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("that is the session being run"),
        "{}",
        text(&o.stderr)
    );
}

/// A client whose server is not there: the run fails with the network's
/// status and names the endpoint.
#[test]
fn a_client_that_cannot_connect_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let file = line_chat(dir.path(), &format!("127.0.0.1:{}", free_port()));
    let o = sockbench(&["run", &file, "--endpoint", "alice", "--for", "10"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("error: \"alice\": "), "{err}");
    assert!(
        err.lines().last().unwrap().starts_with("summary: "),
        "{err}"
    );
}

/// `replay --stats`: a line of counts every second while the replay plays,
/// none without the flag.
#[test]
fn replay_stats_says_counts_every_second() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(LIMIT)).unwrap();
            let mut buf = [0u8; 64];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => s.write_all(&buf[..n]).unwrap(),
                }
            }
        }
    });
    // Two sends 1.5 s apart: the replay lasts past the first stats line.
    let session = format!(
        r#"(
    format: 1,
    endpoints: [(name: "c", kind: TcpClient(remote: "{addr}"))],
    log: (
        peers: [(endpoint: "c", peer: 0, remote: "{addr}")],
        entries: [
            (at: "2026-01-01T00:00:00.000000Z", endpoint: "c", peer: 0, event: Connected("")),
            (at: "2026-01-01T00:00:00.100000Z", endpoint: "c", peer: 0, event: Sent(Text("one"))),
            (at: "2026-01-01T00:00:01.600000Z", endpoint: "c", peer: 0, event: Sent(Text("two"))),
        ],
    ),
)"#
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.ron");
    std::fs::write(&file, session).unwrap();
    for stats in [true, false] {
        let mut args = vec!["replay", file.to_str().unwrap(), "--timeout", "1", "-q"];
        if stats {
            args.push("--stats");
        }
        let o = sockbench(&args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("stats ")).collect();
        if stats {
            assert!(!lines.is_empty(), "{err}");
            assert!(lines[0].starts_with("stats 1s: sent "), "{err}");
            assert!(lines[0].contains("connection"), "{err}");
        } else {
            assert!(lines.is_empty(), "{err}");
        }
    }
    echo.join().unwrap();
}
