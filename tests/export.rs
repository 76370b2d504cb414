//! `sockbench export`: Mermaid and CSV against expected text, and the Python
//! program run with python3 against a loopback peer.

mod common;
use common::{BIN, LIMIT, python3, run, text};

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RECORDING: &str = r#"(format: 1, endpoints: [(name: "client", kind: TcpClient(remote: "127.0.0.1:PORT"))],
    log: (peers: [(endpoint: "client", peer: 0, remote: "127.0.0.1:PORT")], entries: [
        (at: "2026-01-01T00:00:00.000000Z", endpoint: "client", event: Connecting("127.0.0.1:PORT")),
        (at: "2026-01-01T00:00:00.000100Z", endpoint: "client", peer: 0, event: Connected("from 127.0.0.1:50000")),
        (at: "2026-01-01T00:00:00.000200Z", endpoint: "client", peer: 0, event: Sent(Text("GET /; a \"quote\"\r\n"))),
        (at: "2026-01-01T00:00:00.000300Z", endpoint: "client", peer: 0, event: Received(Hex("48 49 00 ff"))),
        (at: "2026-01-01T00:00:00.000400Z", endpoint: "client", peer: 0, event: HalfClosed("we shut down our sending side (FIN)")),
        (at: "2026-01-01T00:00:00.000500Z", endpoint: "client", event: Stopped("")),
    ]))"#;

fn recording(dir: &std::path::Path, port: u16) -> String {
    let path = dir.join("talk.ron");
    std::fs::write(&path, RECORDING.replace("PORT", &port.to_string())).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn mermaid_and_csv_are_the_expected_text() {
    let dir = tempfile::tempdir().unwrap();
    let file = recording(dir.path(), 7007);
    let o = run(BIN, &["export", &file, "--to", "mermaid"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "sequenceDiagram\n\
         \x20   participant P0 as client\n\
         \x20   participant P1 as 127.0.0.1:7007\n\
         \x20   P0-->>P1: connect (SYN, SYN-ACK, ACK)\n\
         \x20   P0->>P1: #quot;GET /#59; a #quot;quote#quot;\\r\\n#quot; (18 bytes)\n\
         \x20   P1->>P0: [48 49 00 ff] (4 bytes)\n\
         \x20   P0-->>P1: FIN (shutdown)\n\
         \x20   Note over P0: stopped\n"
    );

    let out = dir.path().join("talk.csv");
    let o = run(
        BIN,
        &["export", &file, "--to", "csv", "-o", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(o.stdout, b"");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "time,endpoint,event,peer,length,data\n\
         2026-01-01T00:00:00.000000Z,client,connecting,,,127.0.0.1:7007\n\
         2026-01-01T00:00:00.000100Z,client,connected,127.0.0.1:7007,,from 127.0.0.1:50000\n\
         2026-01-01T00:00:00.000200Z,client,sent,127.0.0.1:7007,18,\"GET /; a \"\"quote\"\"\\r\\n\"\n\
         2026-01-01T00:00:00.000300Z,client,received,127.0.0.1:7007,4,HI\\0\\xff\n\
         2026-01-01T00:00:00.000400Z,client,half-closed,127.0.0.1:7007,,we shut down our sending side (FIN)\n\
         2026-01-01T00:00:00.000500Z,client,stopped,,,\n"
    );
}

#[test]
fn bad_export_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = recording(dir.path(), 7007);
    let o = run(BIN, &["export", &file, "--to", "java"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("java"), "{}", text(&o.stderr));
    let o = run(
        BIN,
        &["export", &file, "--to", "python", "--endpoint", "nobody"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("has no endpoint named \"nobody\""),
        "{}",
        text(&o.stderr)
    );
    let o = run(
        BIN,
        &[
            "export",
            &file,
            "--to",
            "csv",
            "-o",
            dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("is a directory"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn the_python_client_talks_to_the_same_peer() {
    if !python3() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let file = recording(dir.path(), port);
    let program = dir.path().join("client.py");
    let o = run(
        BIN,
        &[
            "export",
            &file,
            "--to",
            "python",
            "-o",
            program.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut request = [0u8; 18];
        s.read_exact(&mut request).unwrap();
        s.write_all(&[0x48, 0x49, 0x00, 0xff]).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        (request, rest)
    });
    let o = run("python3", &[program.to_str().unwrap()]);
    let (request, rest) = peer.join().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert_eq!(&request, b"GET /; a \"quote\"\r\n");
    assert!(rest.is_empty(), "the program half-closed after its request");
    let out = text(&o.stdout);
    assert!(
        out.contains("sent     b'GET /; a \"quote\"\\r\\n'"),
        "{out}"
    );
    assert!(out.contains("received b'HI\\x00\\xff'"), "{out}");
}

#[test]
fn the_python_udp_server_answers_as_recorded() {
    if !python3() {
        return;
    }
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("udp.ron");
    std::fs::write(
        &file,
        format!(
            r#"(format: 1, endpoints: [(name: "responder", kind: Udp(bind: "127.0.0.1:{port}"))],
            log: (peers: [(endpoint: "responder", peer: 1, remote: "127.0.0.1:5000")], entries: [
                (at: "2026-01-01T00:00:00.000000Z", endpoint: "responder", peer: 1, event: Received(Text("ping"))),
                (at: "2026-01-01T00:00:00.000100Z", endpoint: "responder", peer: 1, event: Sent(Text("pong"))),
            ]))"#
        ),
    )
    .unwrap();
    let program = dir.path().join("server.py");
    let o = run(
        BIN,
        &[
            "export",
            file.to_str().unwrap(),
            "--to",
            "python",
            "-o",
            program.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let mut server = Command::new("python3")
        .arg(&program)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 16];
    let started = Instant::now();
    // The server may not be bound yet: ask again until it answers.
    let n = loop {
        client.send_to(b"ping", ("127.0.0.1", port)).unwrap();
        if let Ok((n, _)) = client.recv_from(&mut buf) {
            break n;
        }
        if started.elapsed() > LIMIT {
            // Not left running after the test.
            let _ = server.kill();
            let _ = server.wait();
            panic!("the Python server did not answer");
        }
    };
    assert_eq!(&buf[..n], b"pong");
    // Killed (and failed) if it outlives LIMIT.
    common::wait_bounded(&mut server);
    assert!(server.wait().unwrap().success());
}

// ---------------------------------------------------------------------------
// Issue 10: a session file never adds code to the exported program, lines to
// the diagram or formulas to the sheet, whatever its strings hold.

use proptest::prelude::*;
use sockbench::export::{Format, export};
use sockbench::model::{
    EndpointKind, EndpointSpec, EntryKind, HostPort, NO_PEER, Session, TlsClientSettings,
    TlsServerSettings,
};

/// Parses both programs with Python's own `ast` and `tokenize`, compares their
/// token streams with every string literal blanked (the hostile program must
/// have exactly the benign one's code), and prints the values of the literals
/// that carry session text, as UTF-8 hex.
const PYTHON_CHECK: &str = r#"
import ast, io, sys, tokenize

def skeleton(source):
    return [(t.type, "" if t.type == tokenize.STRING else t.string)
            for t in tokenize.generate_tokens(io.StringIO(source).readline)]

hostile = open(sys.argv[1], encoding="utf-8").read()
benign = open(sys.argv[2], encoding="utf-8").read()
tree = ast.parse(hostile)
a, b = skeleton(hostile), skeleton(benign)
if a != b:
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    sys.exit(f"the code differs at token {i}: {a[i:i + 3]!r} where {b[i:i + 3]!r}")
for node in tree.body:
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
        name = node.targets[0].id
        if name in ("ENDPOINT", "SESSION"):
            print(name, ast.literal_eval(node.value).encode("utf-8").hex())
        if name == "CONVERSATIONS":
            for steps in ast.literal_eval(node.value):
                for action, value in steps:
                    if action == "send":
                        print("SEND", value.hex())
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple):
        names = [n.id for n in node.targets[0].elts]
        if names == ["HOST", "PORT"]:
            print("HOST", ast.literal_eval(node.value)[0].encode("utf-8").hex())
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The strings of a session that reach exported text.
#[derive(Clone, Debug)]
struct Strings {
    name: String,
    /// The host as the program uses it (a parsed address, or raw text).
    host: String,
    peer: String,
    note: String,
    path: String,
    alpn: String,
    file_name: String,
    payload: Vec<u8>,
}

/// One endpoint of `kind` (0..6: TCP client, TCP server, UDP client, UDP
/// server, TLS client, TLS server) with one recorded exchange.
fn session_of(kind: u8, s: &Strings) -> Session {
    let host = HostPort::new(s.host.clone(), 7007);
    let tls_client = TlsClientSettings {
        ca: vec![s.path.clone().into()],
        insecure: false,
        pin: None,
        sni: Some(s.name.clone()),
        alpn: vec![s.alpn.clone(), "http/1.1".into()],
    };
    let tls_server = TlsServerSettings {
        cert: Some(s.path.clone().into()),
        key: Some(s.path.clone().into()),
        alpn: vec![s.alpn.clone()],
    };
    let (endpoint_kind, client) = match kind % 6 {
        0 => (EndpointKind::TcpClient { remote: host }, true),
        1 => (EndpointKind::TcpServer { listen: host }, false),
        2 => (
            EndpointKind::Udp {
                bind: None,
                remote: Some(host),
            },
            true,
        ),
        3 => (
            EndpointKind::Udp {
                bind: Some(host),
                remote: None,
            },
            false,
        ),
        4 => (
            EndpointKind::TlsClient {
                remote: host,
                tls: tls_client,
            },
            true,
        ),
        _ => (
            EndpointKind::TlsServer {
                listen: host,
                tls: tls_server,
            },
            false,
        ),
    };
    let mut session = Session {
        notes: s.note.clone(),
        ..Session::default()
    };
    session
        .endpoints
        .push(EndpointSpec::new(s.name.clone(), endpoint_kind));
    let log = &mut session.log;
    let at = chrono::DateTime::from_timestamp_micros(1_000_000).unwrap();
    let e = log.endpoint_index(&s.name);
    let p = log.peer_index(e, u32::from(!client), &s.peer);
    log.push(at, e, NO_PEER, EntryKind::Note, s.note.as_bytes());
    let (first, second) = if client {
        (EntryKind::Sent, EntryKind::Received)
    } else {
        (EntryKind::Received, EntryKind::Sent)
    };
    log.push(at, e, p, first, &s.payload);
    log.push(at, e, p, second, &s.payload);
    session
}

/// Exports `strings` as Python and has python3 check it against the same
/// session with harmless strings: it parses, its code is the harmless
/// program's code, and its literals hold exactly the session's strings.
fn check_python(kind: u8, s: &Strings, dir: &std::path::Path) {
    let benign = Strings {
        name: "endpoint".into(),
        host: if s.host.contains(':') {
            "::1"
        } else {
            "localhost"
        }
        .into(),
        peer: "127.0.0.1:9".into(),
        note: "note".into(),
        path: "cert.pem".into(),
        alpn: "h2".into(),
        file_name: "session".into(),
        payload: vec![b'x'; s.payload.len()],
    };
    let hostile = export(&session_of(kind, s), &s.file_name, Format::Python, None).unwrap();
    let harmless = export(&session_of(kind, &benign), "session", Format::Python, None).unwrap();
    assert!(hostile.is_ascii(), "not ASCII:\n{hostile}");
    let (a, b) = (dir.join("hostile.py"), dir.join("benign.py"));
    std::fs::write(&a, &hostile).unwrap();
    std::fs::write(&b, &harmless).unwrap();
    let o = run(
        "python3",
        &["-c", PYTHON_CHECK, a.to_str().unwrap(), b.to_str().unwrap()],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n--- the program:\n{hostile}",
        text(&o.stderr)
    );
    let out = text(&o.stdout);
    let expected = [
        format!("ENDPOINT {}", hex(s.name.as_bytes())),
        format!("SESSION {}", hex(s.file_name.as_bytes())),
        format!("HOST {}", hex(s.host.as_bytes())),
        format!("SEND {}", hex(&s.payload)),
    ];
    for line in expected {
        assert!(out.lines().any(|l| l == line), "no {line} in\n{out}");
    }
}

/// The Mermaid diagram has one line per lifeline and message, and the CSV one
/// record of six cells per log entry, none of them a formula.
fn check_mermaid_and_csv(kind: u8, s: &Strings) {
    let session = session_of(kind, s);
    let diagram = export(&session, &s.file_name, Format::Mermaid, None).unwrap();
    let seq = sockbench::export::sequence::sequence(&session.log);
    assert_eq!(
        diagram.lines().count(),
        1 + seq.participants.len() + seq.messages.len(),
        "{diagram}"
    );
    let entity = regex::Regex::new("#[a-z0-9]+;").unwrap();
    for line in diagram.lines().skip(1) {
        let (_, label) = line
            .split_once(" as ")
            .or_else(|| line.split_once(": "))
            .unwrap();
        let rest = entity.replace_all(label, "");
        assert!(
            !rest.contains([
                '#', '%', ';', '"', '<', '>', '\r', '\u{85}', '\u{2028}', '\u{202e}'
            ]),
            "{line}"
        );
    }
    let sheet = export(&session, &s.file_name, Format::Csv, None).unwrap();
    let mut reader = csv::ReaderBuilder::new().from_reader(sheet.as_bytes());
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap();
        assert_eq!(record.len(), 6, "{sheet}");
        for cell in &record {
            let formula =
                cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && cell.parse::<f64>().is_err();
            assert!(!formula, "a formula cell {cell:?} in\n{sheet}");
            assert!(!cell.contains(|c: char| c.is_control()), "{cell:?}");
        }
        rows += 1;
    }
    assert_eq!(rows, session.log.len());
}

/// Characters that break out of literals, labels and cells, among others.
fn hostile_text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        3 => any::<char>(),
        3 => prop::sample::select(vec![
            '"', '\'', '\\', '\n', '\r', '\t', '#', '%', ';', '{', '}', '<', '>', '=', '+', '-',
            '@', '\0', '\x1b', '\x7f', '\u{85}', '\u{2028}', '\u{2029}', '\u{202e}', '\u{feff}',
        ]),
        2 => prop::char::range('a', 'z'),
    ];
    prop::collection::vec(c, 0..24).prop_map(String::from_iter)
}

/// Address text: what the parser accepts becomes the host; what it refuses is
/// used raw anyway (a host set by code rather than typed), so the exporter is
/// tried with both.
fn host_text() -> impl Strategy<Value = String> {
    prop_oneof![
        hostile_text().prop_map(|z| format!("[fe80::1%{z}]:80")),
        hostile_text().prop_map(|h| format!("{h}:80")),
        hostile_text(),
        Just("[fe80::1%eth0]:80".to_owned()),
        Just("127.0.0.1:80".to_owned()),
    ]
    .prop_map(|text| match text.parse::<HostPort>() {
        Ok(hp) => hp.host,
        Err(_) => text,
    })
}

fn strings() -> impl Strategy<Value = Strings> {
    (
        (hostile_text(), host_text(), hostile_text(), hostile_text()),
        (hostile_text(), hostile_text(), hostile_text()),
        prop::collection::vec(any::<u8>(), 1..40),
    )
        .prop_map(
            |((name, host, peer, note), (path, alpn, file_name), payload)| Strings {
                name,
                host,
                peer,
                note,
                path,
                alpn,
                file_name,
                payload,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn session_strings_stay_inside_literals(kind in 0u8..6, s in strings()) {
        check_mermaid_and_csv(kind, &s);
        if python3() {
            let dir = tempfile::tempdir().unwrap();
            check_python(kind, &s, dir.path());
        }
    }
}

#[test]
fn hostile_strings_stay_inside_literals() {
    if !python3() {
        return;
    }
    let zone = "[fe80::1%\"\"\"\nimport os\nos.system(\"id\")\n\"\"\"]:80";
    assert!(
        zone.parse::<HostPort>().is_err(),
        "a zone id is an interface name"
    );
    let hostile = [
        "\"\"\"",
        "x\"\"\"\nimport os\n\"\"\"",
        "a\nimport os",
        "a\rimport os",
        "a\u{85}b",
        "a\u{2028}b",
        "a\u{202e}b",
        "# comment\n",
        "\\",
        "'''",
        "{x}",
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, text) in hostile.iter().enumerate() {
        let s = Strings {
            name: text.to_string(),
            host: format!("fe80::1%{}", &zone[9..zone.len() - 4]),
            peer: text.to_string(),
            note: text.to_string(),
            path: text.to_string(),
            alpn: text.to_string(),
            file_name: text.to_string(),
            payload: text.as_bytes().to_vec(),
        };
        for kind in 0..6 {
            check_mermaid_and_csv(kind, &s);
            check_python(
                kind,
                &Strings {
                    host: if i % 2 == 0 {
                        s.host.clone()
                    } else {
                        text.to_string()
                    },
                    ..s.clone()
                },
                dir.path(),
            );
        }
    }
}

/// A recorded `connect udp` (connected by default) as a Python program: it
/// hears its peer, and a closed port is said as refused, as sockbench says it.
#[test]
fn the_python_udp_client_is_connected_like_sockbench() {
    if !python3() {
        return;
    }
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = peer.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let write_session = |port: u16| {
        let file = dir.path().join(format!("udp-{port}.ron"));
        std::fs::write(
            &file,
            format!(
                r#"(format: 1, endpoints: [(name: "client", kind: Udp(remote: "127.0.0.1:{port}"))],
                log: (peers: [(endpoint: "client", peer: 1, remote: "127.0.0.1:{port}")], entries: [
                    (at: "2026-01-01T00:00:00.000000Z", endpoint: "client", peer: 1, event: Sent(Text("ping"))),
                    (at: "2026-01-01T00:00:00.000100Z", endpoint: "client", peer: 1, event: Received(Text("pong"))),
                ]))"#
            ),
        )
        .unwrap();
        let program = dir.path().join(format!("client-{port}.py"));
        let o = run(
            BIN,
            &[
                "export",
                file.to_str().unwrap(),
                "--to",
                "python",
                "-o",
                program.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        program
    };
    let program = write_session(port);
    assert!(
        std::fs::read_to_string(&program)
            .unwrap()
            .contains("sock.connect((HOST, PORT))")
    );
    let answer = std::thread::spawn(move || {
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        peer.send_to(b"pong", from).unwrap();
        buf[..n].to_vec()
    });
    let o = run("python3", &[program.to_str().unwrap()]);
    assert_eq!(answer.join().unwrap(), b"ping");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("received b'pong'"),
        "{}",
        text(&o.stdout)
    );

    // A closed port (one nobody else is handed meanwhile).
    let closed = common::free_port();
    let program = write_session(closed);
    let o = run("python3", &[program.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o.stderr).contains("refused"), "{}", text(&o.stderr));
}
