//! `sockbench import`: captures made here on loopback with dumpcap (where it
//! is installed and may capture), and small captures built in the test for
//! the link types, turned into sessions that replay.

mod common;
use common::{BIN, LIMIT, sockbench, text, wait_bounded};

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts dumpcap on loopback for `filter`, writing `file`; `None` (with a
/// message) where dumpcap is missing or may not capture here.
fn dumpcap(filter: &str, file: &std::path::Path) -> Option<std::process::Child> {
    let child = Command::new("dumpcap")
        .args(["-q", "-i", "lo", "-f", filter, "-w"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("skipped: dumpcap is not installed (Debian package tshark)");
        return None;
    };
    // dumpcap creates its file once it captures.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            eprintln!("skipped: dumpcap may not capture here: {err}");
            return None;
        }
        if file.metadata().is_ok_and(|m| m.len() > 0) {
            std::thread::sleep(Duration::from_millis(300));
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    eprintln!("skipped: dumpcap did not start capturing");
    None
}

fn stop(mut child: std::process::Child) {
    // dumpcap writes out what it holds on SIGINT.
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    wait_bounded(&mut child);
}

#[test]
fn a_captured_tcp_conversation_replays_as_a_mock_and_a_check() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let capture = dir.path().join("talk.pcapng");
    let Some(dumpcap) = dumpcap(&format!("tcp port {port}"), &capture) else {
        return;
    };
    // A real exchange, larger than one segment, between two plain sockets.
    let answer: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let served = answer.clone();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut request = [0u8; 14];
        s.read_exact(&mut request).unwrap();
        s.write_all(&served).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(LIMIT)).unwrap();
    c.write_all(b"GET /big HTTP").unwrap();
    c.write_all(b"\n").unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    drop(c);
    server.join().unwrap();
    assert_eq!(got, answer);
    stop(dumpcap);

    let session = dir.path().join("talk.ron");
    let o = sockbench(&[
        "import",
        capture.to_str().unwrap(),
        "-o",
        session.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let listing = text(&o.stdout);
    assert!(listing.starts_with("#1 TCP 127.0.0.1:"), "{listing}");
    assert!(listing.contains("14 bytes →, 200000 bytes ←"), "{listing}");
    assert!(listing.contains("importing #1 (the conversation with the most bytes"));

    // The recording replays against itself: a mock server and a client, checked.
    let o = sockbench(&[
        "replay",
        session.to_str().unwrap(),
        "--check",
        "--speed",
        "0",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("every conversation matched"));

    // The mock of the server answers a new client byte for byte.
    let mock_port = common::free_port();
    let mut mock = Command::new(BIN)
        .args(["replay", session.to_str().unwrap(), "--endpoint", "server"])
        .args(["--target", &format!("127.0.0.1:{mock_port}"), "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut c = loop {
        match std::net::TcpStream::connect(("127.0.0.1", mock_port)) {
            Ok(c) => break c,
            Err(_) if started.elapsed() < LIMIT => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("the mock did not listen: {e}"),
        }
    };
    c.set_read_timeout(Some(LIMIT)).unwrap();
    c.write_all(b"GET /big HTTP\n").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, answer);
    wait_bounded(&mut mock);
}

#[test]
fn bad_captures_and_choices_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    let out = dir.path().join("o.ron");
    for (args, expected) in [
        (
            vec![
                "import",
                junk.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
            "not a capture file",
        ),
        (
            vec!["import", "/dev/zero", "-o", out.to_str().unwrap()],
            "not a regular file",
        ),
        (
            vec![
                "import",
                junk.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--port",
                "0",
            ],
            "--port 0: give a port from 1 to 65535",
        ),
        (
            vec![
                "import",
                junk.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--conversation",
                "x",
            ],
            "--conversation x",
        ),
        (
            vec!["import", junk.to_str().unwrap(), "-o", "/dev/null"],
            "is a character device",
        ),
    ] {
        let o = sockbench(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!out.exists());
    }
}
