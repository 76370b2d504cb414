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
         \x20   P0->>P1: \"GET /#59; a \"quote\"\\r\\n\" (18 bytes)\n\
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
         2026-01-01T00:00:00.000200Z,client,->,127.0.0.1:7007,18,\"GET /; a \"\"quote\"\"\\r\\n\"\n\
         2026-01-01T00:00:00.000300Z,client,<-,127.0.0.1:7007,4,HI\\0\\xff\n\
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
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
        assert!(
            started.elapsed() < LIMIT,
            "the Python server did not answer"
        );
    };
    assert_eq!(&buf[..n], b"pong");
    let started = Instant::now();
    while server.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < LIMIT,
            "the Python server did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.wait().unwrap().success());
}
