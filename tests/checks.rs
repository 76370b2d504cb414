//! Checks that survive real devices, and results CI reads, over loopback:
//! ignore rules (regular expressions, named fields, byte ranges) on
//! `replay --check`, the junit report parsed by python's xml.etree, and
//! `--json` lines of connect, listen and replay parsed by python's json.

mod common;
use common::{BIN, LIMIT, python3, sockbench, text, wait_bounded};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Command, Stdio};

use sockbench::model::ignore::IgnoreRule;

/// A device that answers every connection with an HTTP-like answer stamped
/// with a date (of varying length) and a counter, `connections` times.
fn stamping_device(connections: usize, first: u64) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        for n in 0..connections as u64 {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(LIMIT)).unwrap();
            let mut buf = [0u8; 256];
            let got = s.read(&mut buf).unwrap_or(0);
            // A date that moves on with the counter, and whose length changes
            // with it, as "1 Dec" and "10 Dec" do.
            let date = format!(
                "{}.{}",
                1_700_000_000 + (first + n) * 3 * 86_400,
                "9".repeat((first + n) as usize % 7)
            );
            let body = [b"echo ".as_slice(), &buf[..got]].concat();
            let answer = format!(
                "HTTP/1.0 200 OK\r\nDate: {date}\r\nX-Count: {}\r\nContent-Length: {}\r\n\r\n",
                first + n,
                body.len()
            );
            let _ = s.write_all(&[answer.as_bytes(), &body].concat());
        }
    });
    (addr, handle)
}

fn record_client(addr: SocketAddr, file: &std::path::Path) {
    let o = sockbench(&[
        "connect",
        "tcp",
        &addr.to_string(),
        "--send",
        "GET / HTTP/1.0\\r\\n\\r\\n",
        "--wait",
        "0.3",
        "--save",
        file.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

fn replay(file: &std::path::Path, addr: SocketAddr, extra: &[&str]) -> std::process::Output {
    let target = addr.to_string();
    let mut args = vec![
        "replay",
        file.to_str().unwrap(),
        "--target",
        &target,
        "--check",
        "--speed",
        "0",
    ];
    args.extend_from_slice(extra);
    sockbench(&args)
}

#[test]
fn a_stamping_device_passes_with_ignores_and_fails_without() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("device.ron");
    let (addr, device) = stamping_device(1, 7);
    record_client(addr, &file);
    device.join().unwrap();

    let (addr, device) = stamping_device(5, 1234);
    // Without ignores: the date differs.
    let o = replay(&file, addr, &[]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("\"client\", connection 1: received bytes differ at offset 23"),
        "{out}"
    );
    // Only the date ignored: the counter still differs, and the report says
    // which ignore applied before it, and both offsets (the dates' lengths differ).
    let o = replay(&file, addr, &["--ignore", "Date: [^\\r\\n]*"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("  ignored before it: regex \"Date: [^\\r\\n]*\" (1)"),
        "{out}"
    );
    assert!(out.contains("of the recording)"), "{out}");
    // Both ignored (the counter as a named field): a pass, and it says what it ignored.
    let o = replay(
        &file,
        addr,
        &[
            "--ignore",
            "Date: [^\\r\\n]*",
            "--ignore",
            "X-Count: (?<count>[0-9]+)",
        ],
    );
    let out = text(&o.stdout);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains(
            "check: every conversation matched the recording (1 conversation; ignored: regex \"Date: [^\\r\\n]*\" (1), field `count` (1))"
        ),
        "{out}"
    );
    assert!(
        err.contains("check ignores regex \"X-Count: (?<count>[0-9]+)\""),
        "{err}"
    );

    // The same rules kept in the session file, one for this endpoint only.
    let mut session = sockbench::persist::load(&file).unwrap();
    session.ignore = vec![
        IgnoreRule::regex("Date: [^\\r\\n]*").unwrap(),
        IgnoreRule {
            endpoint: Some("client".into()),
            ..IgnoreRule::regex("X-Count: (?<count>[0-9]+)").unwrap()
        },
    ];
    sockbench::persist::save(&file, &session).unwrap();
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("ignore: ["), "{saved}");
    let o = replay(&file, addr, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    // A rule for an endpoint the session lacks applies to nothing, and says so.
    session.ignore[1].endpoint = Some("renamed".into());
    sockbench::persist::save(&file, &session).unwrap();
    let o = replay(&file, addr, &[]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("warning: the session has no such endpoint, so this ignore rule applies to nothing: regex \"X-Count: (?<count>[0-9]+)\" for \"renamed\""),
        "{err}"
    );
    device.join().unwrap();
}

/// A UDP device: answers each datagram with a magic, a 4-byte sequence
/// number and the datagram back.
fn sequencing_device(datagrams: u32, first: u32) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    let addr = socket.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        for n in 0..datagrams {
            let Ok((got, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            let mut answer = vec![0xca, 0xfe];
            answer.extend_from_slice(&(first + n).to_be_bytes());
            answer.extend_from_slice(&buf[..got]);
            socket.send_to(&answer, from).unwrap();
        }
    });
    (addr, handle)
}

#[test]
fn byte_ranges_and_named_ranges_ignore_a_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("udp.ron");
    let (addr, device) = sequencing_device(2, 1);
    let o = sockbench(&[
        "connect",
        "udp",
        &addr.to_string(),
        "--send-hex",
        "01 02 03",
        "--send-hex",
        "04 05",
        "--wait",
        "0.3",
        "--save",
        file.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    device.join().unwrap();

    let (addr, device) = sequencing_device(6, 0x0102_0304);
    let o = replay(&file, addr, &[]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("\"client\", exchange 1, datagram 1: received bytes differ at offset 2"),
        "{out}"
    );
    // A range that misses one byte of the number still fails.
    let o = replay(&file, addr, &["--ignore-bytes", "2..5"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let o = replay(&file, addr, &["--ignore-bytes", "seq=2..6"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(out.contains("ignored: field `seq` (2))"), "{out}");
    device.join().unwrap();

    // Bad rules are bad input, said in one line before anything runs.
    for (args, says) in [
        (
            vec!["--ignore-bytes", "6..2"],
            "the end must come after the start",
        ),
        (
            vec!["--ignore", "Date: ("],
            "--ignore: not a regular expression",
        ),
        (
            vec!["--report", "xml", "r.xml"],
            "the report formats are: junit",
        ),
    ] {
        let o = replay(&file, addr, &args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.lines().next().unwrap().contains(says), "{err}");
    }
    let o = sockbench(&["replay", file.to_str().unwrap(), "--ignore", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("are for --check"));
}

/// Runs `script` with python3, `input` on its stdin; returns its stdout.
fn python(script: &str, input: &[u8]) -> String {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    wait_bounded(&mut child);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "python: {}", text(&o.stderr));
    text(&o.stdout)
}

/// A peer that answers each of `connections` connections with `answer`.
fn answering(
    connections: usize,
    answer: &'static [u8],
) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        for _ in 0..connections {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(LIMIT)).unwrap();
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf);
            let _ = s.write_all(answer);
        }
    });
    (addr, handle)
}

#[test]
fn junit_has_one_case_per_connection_and_escapes_everything() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Two clients of one session, one per connection; the names and the
    // answers carry what XML must escape, and what it cannot carry at all.
    let (addr, peer) = answering(2, b"fine\n");
    let session = format!(
        r#"(format: 1, endpoints: [
            (name: "good <client>", kind: TcpClient(remote: "{addr}")),
            (name: "bad & \"worse\"", kind: TcpClient(remote: "{addr}")),
        ], log: (peers: [
            (endpoint: "good <client>", peer: 0, remote: "{addr}"),
            (endpoint: "bad & \"worse\"", peer: 0, remote: "{addr}"),
        ], entries: [
            (at: "2026-01-01T00:00:00.000000Z", endpoint: "good <client>", peer: 0, event: Connected("")),
            (at: "2026-01-01T00:00:00.001000Z", endpoint: "good <client>", peer: 0, event: Sent(Text("a"))),
            (at: "2026-01-01T00:00:00.002000Z", endpoint: "good <client>", peer: 0, event: Received(Text("fine\n"))),
            (at: "2026-01-01T00:00:00.003000Z", endpoint: "good <client>", peer: 0, event: Closed("")),
            (at: "2026-01-01T00:00:01.000000Z", endpoint: "bad & \"worse\"", peer: 0, event: Connected("")),
            (at: "2026-01-01T00:00:01.001000Z", endpoint: "bad & \"worse\"", peer: 0, event: Sent(Text("b"))),
            (at: "2026-01-01T00:00:01.002000Z", endpoint: "bad & \"worse\"", peer: 0, event: Received(Hex("3c 2f 74 65 73 74 63 61 73 65 3e 5d 5d 3e 00 1b 26"))),
            (at: "2026-01-01T00:00:01.003000Z", endpoint: "bad & \"worse\"", peer: 0, event: Closed("")),
        ]))"#
    );
    let file = dir.path().join("two.ron");
    std::fs::write(&file, session).unwrap();
    let report = dir.path().join("report.xml");
    let o = sockbench(&[
        "replay",
        file.to_str().unwrap(),
        "--check",
        "--speed",
        "0",
        "--report",
        "junit",
        report.to_str().unwrap(),
    ]);
    peer.join().unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let xml = std::fs::read(&report).unwrap();
    let parsed = python(
        r#"
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
suite = root.find("testsuite")
print(root.tag, suite.get("tests"), suite.get("failures"), suite.get("errors"))
for case in suite.findall("testcase"):
    failure = case.find("failure")
    print(repr(case.get("classname")), repr(case.get("name")),
          repr(failure.get("message")) if failure is not None else "passed",
          repr(failure.text) if failure is not None else "")
"#,
        &xml,
    );
    let lines: Vec<&str> = parsed.lines().collect();
    assert_eq!(lines[0], "testsuites 2 1 0", "{parsed}");
    assert!(
        lines[1].starts_with("'good <client>' 'connection 1' passed"),
        "{parsed}"
    );
    assert!(
        lines[2].starts_with(
            "'bad & \"worse\"' 'connection 1' '\"bad & \"worse\"\", connection 1: received bytes differ at offset 0' "
        ),
        "{parsed}"
    );
    // The failure text is the whole report, line breaks kept.
    assert!(
        lines[2].contains("\\n  expected hex: 3c 2f 74 65"),
        "{parsed}"
    );

    // A report path that is the recording is refused before anything runs.
    let o = sockbench(&[
        "replay",
        file.to_str().unwrap(),
        "--check",
        "--report",
        "junit",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let o = sockbench(&[
        "replay",
        file.to_str().unwrap(),
        "--report",
        "junit",
        "x.xml",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--report is for --check"));
}

/// Parses every stdout line as one JSON object with python; prints
/// `kind hex` per line (hex `-` for events without bytes), after checking
/// that `text` is the bytes of `hex` as UTF-8.
const JSON_LINES: &str = r#"
import sys, json
for line in sys.stdin.buffer.read().decode("utf-8").split("\n"):
    if line == "":
        continue
    o = json.loads(line)
    assert isinstance(o, dict), line
    for field in ("time", "endpoint", "peer", "kind"):
        assert field in o, (field, line)
    if o["kind"] in ("sent", "received"):
        data = bytes.fromhex(o["hex"])
        assert o["length"] == len(data), line
        assert data.decode("utf-8", "replace") == o["text"], line
        print(o["kind"], o["hex"])
    else:
        print(o["kind"], "-")
"#;

#[test]
fn json_lines_of_connect_listen_and_replay_parse_whatever_the_bytes() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let recorded = dir.path().join("json.ron");
    // Hostile bytes both ways: quotes, backslashes, line breaks, escape
    // sequences, a bidi override, invalid UTF-8.
    let mut server = Command::new(BIN)
        .args([
            "listen",
            "tcp",
            "127.0.0.1:0",
            "--reply-hex",
            "22 5c 0a 7d 1b 5b 32 4a e2 80 ae ff 00",
            "--once",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let listening: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(listening["kind"], "listening", "{first}");
    let addr = listening["detail"].as_str().unwrap().to_owned();
    let o = sockbench(&[
        "connect",
        "tcp",
        &addr,
        "--send-hex",
        "7b 22 0a 5c 75 30 30 30 30 ff fe",
        "--wait",
        "0.3",
        "--save",
        recorded.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let client = python(JSON_LINES, &o.stdout);
    assert!(client.contains("sent 7b220a5c7530303030fffe"), "{client}");
    assert!(
        client.contains("received 225c0a7d1b5b324ae280aeff00"),
        "{client}"
    );
    assert!(
        client.starts_with("connecting -\nconnected -\n"),
        "{client}"
    );
    // The summary stays on stderr.
    assert!(text(&o.stderr).contains("summary: sent 1 payloads"));
    wait_bounded(&mut server);
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).unwrap();
    let listened = python(JSON_LINES, &[first.as_bytes(), &rest].concat());
    assert!(
        listened.starts_with("listening -\naccepted -\n"),
        "{listened}"
    );
    assert!(
        listened.contains("received 7b220a5c7530303030fffe"),
        "{listened}"
    );
    assert!(
        listened.contains("sent 225c0a7d1b5b324ae280aeff00"),
        "{listened}"
    );

    // The recording replayed against a peer with the same answer, checked:
    // the events, then one check object per conversation and a summary.
    let (peer, answered) = answering(1, b"\"\\\n}\x1b[2J\xe2\x80\xae\xff\x00");
    let o = sockbench(&[
        "replay",
        recorded.to_str().unwrap(),
        "--target",
        &peer.to_string(),
        "--check",
        "--speed",
        "0",
        "--json",
    ]);
    answered.join().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let replayed = python(JSON_LINES, &o.stdout);
    assert!(
        replayed.contains("sent 7b220a5c7530303030fffe"),
        "{replayed}"
    );
    assert!(
        replayed.ends_with("check -\ncheck-summary -\n"),
        "{replayed}"
    );
    let last: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .rev()
        .take(2)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(last[0]["passed"], true);
    assert_eq!(last[0]["conversations"], 1);
    assert_eq!(last[1]["conversation"], 1);
    assert_eq!(last[1]["conversation_kind"], "connection");
    // The human result went to stderr, not between the JSON lines.
    assert!(text(&o.stderr).contains("check: every conversation matched"));
}
