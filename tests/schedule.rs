//! Scheduled sends over loopback: `sockbench run` of a client that sends
//! to a python3 server, the shipped scheduled-chat session, a bad schedule
//! refused with its line and column, and the window's form adding a send
//! that a started client sends to a peer. Bytes and counts are asserted,
//! never times.

mod common;
use common::{BIN, LIMIT, free_port, python3, text, wait_bounded};

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use sockbench::app::{App, AppConfig};
use sockbench::model::EntryKind;

/// A python3 server on a free loopback port: accepts one connection, reads
/// until `lines` lines came (or 10 s), prints them and closes. Returns the
/// port and the running process.
fn python_server(
    lines: usize,
) -> (
    u16,
    std::process::Child,
    BufReader<std::process::ChildStdout>,
) {
    let script = format!(
        r#"
import socket, sys
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
srv.settimeout(10)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
conn.settimeout(10)
data = b""
while data.count(b"\n") < {lines}:
    chunk = conn.recv(1024)
    if not chunk:
        break
    data += chunk
conn.close()
sys.stdout.write(repr(data) + "\n")
"#
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut port = String::new();
    out.read_line(&mut port).unwrap();
    (port.trim().parse().unwrap(), child, out)
}

fn write_session(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("s.ron");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn run_sends_a_clients_scheduled_pings_to_a_python_server_in_order() {
    if !python3() {
        return;
    }
    let (port, mut server, mut out) = python_server(3);
    let dir = tempfile::tempdir().unwrap();
    let file = write_session(
        dir.path(),
        &format!(
            r#"(
    format: 1,
    endpoints: [
        (
            name: "pinger",
            kind: TcpClient(remote: "127.0.0.1:{port}"),
            sends: [(text: "ping ${{counter}}\n", repeat: 3, interval: "50ms")],
        ),
    ],
)"#
        ),
    );
    // The server closes after three lines: the client's connection ends and
    // the run with it (--for only bounds a broken run).
    let o = common::sockbench(&["run", &file, "--for", "15"]);
    wait_bounded(&mut server);
    let mut got = String::new();
    out.read_to_string(&mut got).unwrap();
    assert_eq!(got.trim(), r#"b'ping 1\nping 2\nping 3\n'"#);
    let stdout = text(&o.stdout);
    let sent: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" pinger -> "))
        .collect();
    assert_eq!(sent.len(), 3, "{stdout}");
    for (n, line) in sent.iter().enumerate() {
        assert!(
            line.ends_with(&format!(" 7 \"ping {}\\n\"", n + 1)),
            "{line}"
        );
    }
    let stderr = text(&o.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("summary: sent 3 payloads (21 bytes)")),
        "{stderr}"
    );
    assert_eq!(o.status.code(), Some(0), "{stderr}");
}

#[test]
fn a_bad_schedule_is_refused_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // A repeat without an interval.
        (
            "(\n    format: 1,\n    endpoints: [\n        (\n            name: \"c\",\n            kind: TcpClient(remote: \"127.0.0.1:9\"),\n            sends: [(text: \"x\", repeat: 3)],\n        ),\n    ],\n)",
            ":7:",
            "needs an interval of at least 1ms",
        ),
        // A library name the library does not hold.
        (
            "(\n    format: 1,\n    endpoints: [\n        (\n            name: \"c\",\n            kind: TcpClient(remote: \"127.0.0.1:9\"),\n            sends: [\n                (text: \"ok\"),\n                (library: \"nope\"),\n            ],\n        ),\n    ],\n    library: [(name: \"hello\", payload: Text(\"hi\"))],\n)",
            ":9:",
            "library \"nope\": the session's library has no payload of that name",
        ),
        // Beyond the bound.
        (
            "(format: 1, endpoints: [(name: \"c\", kind: TcpClient(remote: \"127.0.0.1:9\"),\n sends: [(text: \"x\", repeat: 1000001, interval: \"1ms\")])])",
            ":2:",
            "give 1 to 1000000 times",
        ),
        // A UDP socket without a remote has nowhere to send.
        (
            "(format: 1,\n endpoints: [(name: \"u\", kind: Udp(),\n  sends: [(text: \"x\")])])",
            ":3:3:",
            "nowhere to send",
        ),
    ];
    for (session, place, why) in cases {
        let file = write_session(dir.path(), session);
        let o = common::sockbench(&["run", &file, "--for", "1"]);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{session}: {stderr}");
        let line = stderr.lines().next().unwrap_or_default();
        assert!(
            line.contains(&format!("s.ron{place}")),
            "{session}: {stderr}"
        );
        assert!(line.contains(why), "{session}: {stderr}");
        // The column is there too: `file:LINE:COL: message`.
        let after = &line[line.find("s.ron:").unwrap() + 6..];
        let mut parts = after.splitn(3, ':');
        assert!(parts.next().unwrap().parse::<u32>().is_ok(), "{line}");
        assert!(parts.next().unwrap().parse::<u32>().is_ok(), "{line}");
    }
}

/// The shipped scheduled-chat session: the server greets each peer, alice's
/// three pings are answered in order, bob's library payload too; Ctrl+C ends
/// it with every payload counted.
#[test]
fn the_shipped_scheduled_chat_holds_its_conversation() {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sessions/scheduled-chat.ron"
    ))
    .unwrap();
    assert!(
        shipped.contains("\"127.0.0.1:7011\""),
        "the shipped session moved"
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let file = write_session(dir.path(), &shipped.replace("127.0.0.1:7011", &addr));
    let mut child = Command::new(BIN)
        .args(["run", &file])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let done = |seen: &[String]| {
        seen.iter()
            .any(|l| l.contains(" alice <- ") && l.ends_with("\"pong 3\\n\""))
            && seen
                .iter()
                .any(|l| l.contains(" bob <- ") && l.ends_with("\"server: got your line\\n\""))
    };
    let began = Instant::now();
    while !done(&seen) {
        assert!(began.elapsed() < LIMIT, "{seen:#?}");
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push(line);
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_bounded(&mut child);
    seen.extend(rx.iter());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0), "{err}");
    let payloads = |who: &str| -> Vec<String> {
        seen.iter()
            .filter(|l| l.contains(&format!(" {who} ")))
            .filter_map(|l| {
                l.rsplit_once(" \"")
                    .map(|(_, p)| p.trim_end_matches('"').to_owned())
            })
            .collect()
    };
    assert_eq!(
        payloads("alice ->"),
        [
            "hi, this is alice\\n",
            "ping 1\\n",
            "ping 2\\n",
            "ping 3\\n"
        ]
    );
    // What a client receives is a stream: two answers may come in one read
    // on a busy machine, so the bytes are compared, not the reads.
    assert_eq!(
        payloads("alice <-").concat(),
        [
            "server: welcome, say something\\n",
            "server: got your line\\n",
            "pong 1\\n",
            "pong 2\\n",
            "pong 3\\n"
        ]
        .concat()
    );
    assert_eq!(payloads("bob ->"), ["bob here, hello everyone\\n"]);
    // Every send is counted as one payload; received payloads are reads.
    let summary = err.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("summary: sent 12 payloads (191 bytes), received ")
            && summary.ends_with(" payloads (191 bytes)"),
        "{err}"
    );
}

/// A window on a private runtime and an empty sessions folder.
struct Gui {
    harness: Harness<'static, App>,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

impl Gui {
    fn new() -> Gui {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = AppConfig {
            runtime: runtime.handle().clone(),
            sessions_dir: dir.path().to_owned(),
            recovery_dir: None,
            open: None,
            native_dialogs: false,
            autosave_every: Duration::from_secs(3600),
        };
        let harness = Harness::builder()
            .with_size([1400.0, 1200.0])
            .build_eframe(move |cc| App::new(cc, config));
        let mut gui = Gui {
            harness,
            _dir: dir,
            _runtime: runtime,
        };
        gui.harness.step();
        gui
    }

    fn step(&mut self) {
        self.harness.step();
    }

    /// Steps frames until `done` holds, at most LIMIT.
    fn wait_for(&mut self, what: &str, done: impl Fn(&Gui) -> bool) {
        let started = Instant::now();
        loop {
            self.harness.step();
            if done(self) {
                self.harness.step();
                return;
            }
            assert!(started.elapsed() < LIMIT, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn click(&mut self, label: &str) {
        self.harness.get_by_label(label).click();
        self.step();
        self.step();
    }

    fn retype(&mut self, label: &str, text: &str) {
        self.harness.get_by_label(label).focus();
        self.step();
        self.harness.key_press_modifiers(Modifiers::COMMAND, Key::A);
        self.step();
        self.harness.key_press(Key::Backspace);
        self.step();
        self.harness.get_by_label(label).type_text(text);
        self.step();
        self.step();
    }

    fn sent_rows(&self) -> Vec<Vec<u8>> {
        let log = &self.harness.state().doc().session.log;
        (0..log.len())
            .filter(|&i| log.entry(i).unwrap().kind == EntryKind::Sent)
            .map(|i| log.data(i).to_vec())
            .collect()
    }
}

impl Drop for Gui {
    /// Every screen a test leaves behind must name every input it shows.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.harness.check_accessibility();
        }
    }
}

#[test]
fn a_send_added_in_the_form_goes_out_when_the_client_starts() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        all
    });
    let mut gui = Gui::new();
    gui.click("➕ Add endpoint");
    gui.click("TCP client");
    gui.retype("Connect to", &addr);
    gui.click("Scheduled sends (0)");
    gui.click("➕ Add scheduled send");
    gui.retype("bytes", "hello ${counter}\\n");
    gui.retype("repeat", "3");
    // An interval the notation does not know is said beside its field.
    gui.retype("interval", "20");
    assert!(
        gui.harness
            .query_all_by_label_contains("give the time a unit")
            .next()
            .is_some(),
        "the interval's error stands by it"
    );
    gui.retype("interval", "20ms");
    let spec = gui.harness.state().doc().validate(0).unwrap();
    assert_eq!(
        sockbench::model::schedule::ScheduledSend {
            payload: sockbench::model::schedule::SendPayload::Text("hello ${counter}\\n".into()),
            delay: Duration::ZERO,
            repeat: sockbench::model::schedule::Repeat::Times(3),
            interval: Duration::from_millis(20),
        },
        spec.sends[0],
        "the form makes the send the session saves"
    );
    gui.click("▶ Start");
    gui.wait_for("three Sent rows", |g| g.sent_rows().len() >= 3);
    // Nothing more goes once the three are out.
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(5));
        gui.step();
    }
    assert_eq!(
        gui.sent_rows(),
        [
            b"hello 1\n".to_vec(),
            b"hello 2\n".to_vec(),
            b"hello 3\n".to_vec()
        ]
    );
    gui.click("⏹ Stop");
    gui.wait_for("the client stopped", |g| {
        !g.harness.state().doc().endpoints[0].state.is_running()
    });
    assert_eq!(peer.join().unwrap(), b"hello 1\nhello 2\nhello 3\n");
}

/// The Python export of a client with scheduled sends sends the same
/// payloads, counters filled in per send, to a peer; placeholders it
/// cannot fill in again are said in an escaped comment.
#[test]
fn the_python_export_of_a_scheduled_client_sends_the_same_payloads() {
    if !python3() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let file = write_session(
        dir.path(),
        &format!(
            r#"(
    format: 1,
    endpoints: [
        (
            name: "pinger",
            kind: TcpClient(remote: "127.0.0.1:{port}"),
            sends: [
                (library: "hello\n\"\"\"x", delay: "10ms"),
                (text: "ping ${{counter:u8}}${{counter:width=3}}\n", delay: "20ms", repeat: 3, interval: "30ms"),
            ],
        ),
        (
            name: "stamper",
            kind: TcpClient(remote: "127.0.0.1:{port}"),
            sends: [(text: "at ${{time:unix}}\n")],
        ),
    ],
    library: [(name: "hello\n\"\"\"x", payload: Text("hi\n"))],
)"#
        ),
    );
    let program = dir.path().join("pinger.py");
    let o = common::sockbench(&[
        "export",
        &file,
        "--to",
        "python",
        "--endpoint",
        "pinger",
        "-o",
        program.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        all
    });
    let run = common::run("python3", &[program.to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(
        peer.join().unwrap(),
        b"hi\nping \x01001\nping \x02002\nping \x03003\n"
    );
    // A time placeholder: filled in once, and said so in a comment.
    let o = common::sockbench(&["export", &file, "--to", "python", "--endpoint", "stamper"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stamper = text(&o.stdout);
    assert!(
        stamper.contains("# Send 1: sockbench fills in its time for each send; this program sends the values filled in once"),
        "{stamper}"
    );
}

/// The Python export of a server with a greeting sends it to each peer it
/// accepts; a connected UDP client's program with sends is valid Python.
#[test]
fn the_python_export_of_a_greeting_server_greets_its_peer() {
    if !python3() {
        return;
    }
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sessions/scheduled-chat.ron"
    ))
    .unwrap();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let file = write_session(
        dir.path(),
        &shipped.replace("127.0.0.1:7011", &format!("127.0.0.1:{port}")),
    );
    let program = dir.path().join("server.py");
    let o = common::sockbench(&[
        "export",
        &file,
        "--to",
        "python",
        "--endpoint",
        "chat server",
        "-o",
        program.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut server = Command::new("python3")
        .arg(&program)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: the server may not listen yet.
    let began = Instant::now();
    let mut conn = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(e) => {
                assert!(began.elapsed() < LIMIT, "the program never listened: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    let greeting = b"server: welcome, say something\n";
    let mut got = vec![0; greeting.len()];
    conn.read_exact(&mut got).unwrap();
    assert_eq!(got, greeting);
    drop(conn);
    wait_bounded(&mut server);

    // A connected UDP client: its program parses.
    let udp = write_session(
        dir.path(),
        r#"(format: 1, endpoints: [(name: "u", kind: Udp(remote: "127.0.0.1:9"),
            sends: [(text: "tick ${counter:u16be}", repeat: "until stopped", interval: "1s")])])"#,
    );
    let o = common::sockbench(&["export", &udp, "--to", "python"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let source = dir.path().join("udp.py");
    std::fs::write(&source, &o.stdout).unwrap();
    let parsed = common::run(
        "python3",
        &[
            "-c",
            "import ast, sys; ast.parse(open(sys.argv[1]).read())",
            source.to_str().unwrap(),
        ],
    );
    assert!(parsed.status.success(), "{}", text(&parsed.stderr));
    assert!(text(&o.stdout).contains("run_schedule(sock)"));
}
