//! Replay over loopback: against an echo peer, against a changed peer, as a
//! mock server, over UDP, and its timing with tokio's paused clock.

mod common;
use common::{BIN, LIMIT, free_port, sockbench, text, wait_bounded};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use sockbench::engine::{self, EndpointId, Engine, EventKind, ReplayOptions};
use sockbench::model::replay::{Conversation, EndpointPlan, Role, Step};
use sockbench::model::{Direction, EndpointKind, EndpointSpec};

/// A TCP peer that answers every read with `answer(read)`, for `connections` connections.
fn peer(
    connections: usize,
    answer: fn(&[u8]) -> Vec<u8>,
) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        for _ in 0..connections {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(LIMIT)).unwrap();
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let reply = answer(&buf[..n]);
                        if s.write_all(&reply).is_err() {
                            break;
                        }
                    }
                }
            }
        }
    });
    (addr, handle)
}

fn echo(read: &[u8]) -> Vec<u8> {
    read.to_vec()
}

fn shout(read: &[u8]) -> Vec<u8> {
    read.to_ascii_uppercase()
}

/// Records a conversation with `peer` through `connect --save`.
fn record(addr: SocketAddr, file: &std::path::Path) {
    let o = sockbench(&[
        "connect",
        "tcp",
        &addr.to_string(),
        "--send",
        "hello\\n",
        "--send-hex",
        "00 01 02",
        "--wait",
        "0.3",
        "--save",
        file.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn replay_matches_the_same_peer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recorded.ron");
    let (addr, first) = peer(1, echo);
    record(addr, &file);
    first.join().unwrap();

    // The same kind of peer, on another port: --target points the replay at it.
    let (addr, second) = peer(1, echo);
    let saved = dir.path().join("replayed.ron");
    let o = sockbench(&[
        "replay",
        file.to_str().unwrap(),
        "--target",
        &addr.to_string(),
        "--check",
        "--save",
        saved.to_str().unwrap(),
    ]);
    second.join().unwrap();
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(
        out.contains(&format!("client -> {addr} 6 \"hello\\n\"")),
        "{out}"
    );
    assert!(
        out.contains("check: every conversation matched the recording (1 conversation)"),
        "{out}"
    );
    let err = text(&o.stderr);
    assert_eq!(
        err.lines().last().unwrap(),
        "summary: sent 2 payloads (9 bytes), received ".to_owned()
            + &err.lines().last().unwrap()[45..]
    );
    assert!(err.lines().last().unwrap().ends_with("(9 bytes)"), "{err}");
    // The new log is a session of its own, and can itself be replayed.
    let check = sockbench(&["check", saved.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
}

#[test]
fn replay_refuses_to_save_over_its_recording_and_a_client_target_of_port_0() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recorded.ron");
    let (addr, first) = peer(1, echo);
    record(addr, &file);
    first.join().unwrap();
    let before = std::fs::read_to_string(&file).unwrap();
    let spelled_otherwise = dir.path().join(".").join("recorded.ron");
    for (args, why) in [
        (
            vec!["--save", spelled_otherwise.to_str().unwrap()],
            "that is the recording being replayed",
        ),
        (
            vec!["--target", "127.0.0.1:0"],
            "replays as a client and needs the port",
        ),
    ] {
        let mut all = vec!["replay", file.to_str().unwrap()];
        all.extend(args);
        let o = sockbench(&all);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.lines().next().unwrap().contains(why), "{err}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
}

#[test]
fn a_changed_peer_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recorded.ron");
    let (addr, first) = peer(1, echo);
    record(addr, &file);
    first.join().unwrap();

    let (addr, changed) = peer(1, shout);
    let o = sockbench(&[
        "replay",
        file.to_str().unwrap(),
        "--target",
        &addr.to_string(),
        "--check",
        "--speed",
        "0",
    ]);
    changed.join().unwrap();
    let out = text(&o.stdout);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    // The report names the endpoint and the offset, and shows both sides as text and hex.
    assert!(
        out.contains("\"client\", connection 1: received bytes differ at offset 0"),
        "{out}"
    );
    assert!(
        out.contains("  expected: \"hello\\n\\0\\x01\\x02\""),
        "{out}"
    );
    assert!(
        out.contains("  received: \"HELLO\\n\\0\\x01\\x02\""),
        "{out}"
    );
    assert!(
        out.contains("  expected hex: 68 65 6c 6c 6f 0a 00 01 02"),
        "{out}"
    );
    assert!(
        out.contains("  received hex: 48 45 4c 4c 4f 0a 00 01 02"),
        "{out}"
    );
    let lines: Vec<&str> = err.lines().collect();
    let n = lines.len();
    assert!(
        lines[n - 2].starts_with("error: the replay differs from the recording in 1 conversation: \"client\", connection 1"),
        "{err}"
    );
    assert!(lines[n - 1].starts_with("summary: "), "{err}");
}

/// Records a server with `listen` answering "OK 42\r\n", and a client
/// talking to it ("HELLO device\r\n"), into `file`.
fn record_server(file: &std::path::Path) {
    // Record a server with `listen`, and a client talking to it.
    let mut server = Command::new(BIN)
        .args([
            "listen",
            "tcp",
            "127.0.0.1:0",
            "--reply",
            "OK 42\\r\\n",
            "--once",
            "--save",
        ])
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first.split_whitespace().nth(3).unwrap().to_owned();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(b"HELLO device\r\n").unwrap();
    let mut answer = [0u8; 7];
    s.read_exact(&mut answer).unwrap();
    drop(s);
    wait_bounded(&mut server);
}

/// Replays a recorded server (see [`record_server`]) as a mock with
/// `--check` on a port of our choosing; a client gets the recorded answer,
/// then closes (or resets, with `reset`). Returns the exit status and what
/// the mock printed on stdout and stderr.
fn mock_answers(reset: bool) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.ron");
    record_server(&file);
    let port = free_port();
    let target = format!("127.0.0.1:{port}");
    let mut mock = Command::new(BIN)
        .args([
            "replay",
            file.to_str().unwrap(),
            "--target",
            &target,
            "--check",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(mock.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.contains(&format!("server listening {target}")),
        "{line}"
    );
    let mut s = TcpStream::connect(&target).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(b"HELLO device\r\n").unwrap();
    let mut got = [0u8; 7];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"OK 42\r\n");
    if reset {
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
    drop(s);
    wait_bounded(&mut mock);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    mock.stderr
        .take()
        .unwrap()
        .read_to_string(&mut rest)
        .unwrap();
    (mock.wait().unwrap().code(), rest)
}

#[test]
fn a_recorded_server_answers_as_a_mock() {
    let (code, out) = mock_answers(false);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("check: every conversation matched the recording"),
        "{out}"
    );
}

#[test]
fn a_mock_whose_peer_resets_after_the_recorded_answer_still_matches() {
    // As in `run`, a peer that resets a server's connection is the peer's
    // business: the mock answered as recorded, so the check passes. (A
    // replayed client's reset fails the run: `replay_reports_a_reset`.)
    let (code, out) = mock_answers(true);
    assert!(out.contains("reset"), "the log shows the reset: {out}");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("check: every conversation matched the recording"),
        "{out}"
    );
}

#[test]
fn replay_reports_a_reset() {
    // A peer that echoes as recorded, then resets when the replayed client closes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client.ron");
    std::fs::write(
        &file,
        format!(
            r#"(format: 1, endpoints: [(name: "client", kind: TcpClient(remote: "{addr}"))],
            log: (peers: [(endpoint: "client", peer: 0, remote: "{addr}")], entries: [
                (at: "2026-01-01T00:00:00.000000Z", endpoint: "client", peer: 0, event: Connected("from 127.0.0.1:1")),
                (at: "2026-01-01T00:00:00.010000Z", endpoint: "client", peer: 0, event: Sent(Text("hello\n"))),
                (at: "2026-01-01T00:00:00.020000Z", endpoint: "client", peer: 0, event: Received(Text("hello\n"))),
            ]))"#
        ),
    )
    .unwrap();
    let peer = common::echo_then_reset(listener, 6);
    let o = sockbench(&["replay", file.to_str().unwrap(), "--check"]);
    peer.join().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("error: connection reset: the peer reset the connection"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn udp_replay_checks_datagram_by_datagram() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("udp.ron");
    let answering = |reply: &'static [u8], count: usize| {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(LIMIT)).unwrap();
        let addr = socket.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            for _ in 0..count {
                let (_, from) = socket.recv_from(&mut buf).unwrap();
                socket.send_to(reply, from).unwrap();
            }
        });
        (addr, handle)
    };
    let (addr, first) = answering(b"ack", 2);
    let o = sockbench(&[
        "connect",
        "udp",
        &addr.to_string(),
        "--send",
        "one",
        "--send",
        "two",
        "--wait",
        "0.3",
        "--save",
        file.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(0));
    first.join().unwrap();

    let (addr, same) = answering(b"ack", 2);
    let o = sockbench(&[
        "replay",
        file.to_str().unwrap(),
        "--target",
        &addr.to_string(),
        "--check",
    ]);
    same.join().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );

    let (addr, other) = answering(b"nak", 2);
    let o = sockbench(&[
        "replay",
        file.to_str().unwrap(),
        "--target",
        &addr.to_string(),
        "--check",
    ]);
    other.join().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stdout)
            .contains("\"client\", exchange 1, datagram 1: received bytes differ at offset 0"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn bad_replay_input_exits_2_and_refusal_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recorded.ron");
    let (addr, first) = peer(1, echo);
    record(addr, &file);
    first.join().unwrap();
    let f = file.to_str().unwrap();
    let bad = |args: &[&str], expected: &str| {
        let o = sockbench(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.lines().next().unwrap().contains(expected),
            "{args:?}: {err}"
        );
        assert!(
            err.lines().last().unwrap().starts_with("summary: "),
            "{err}"
        );
    };
    bad(
        &["replay", f, "--endpoint", "nobody"],
        "has no endpoint named \"nobody\" (it has: \"client\")",
    );
    bad(
        &["replay", f, "--speed", "fast"],
        "--speed fast: not a number; give 0 (no waits) or a factor from 0.001 to 1000",
    );
    bad(&["replay", f, "--speed", "-1"], "--speed -1");
    bad(
        &["replay", f, "--timeout", "-2"],
        "--timeout -2: give zero or more seconds",
    );
    bad(&["replay", f, "--target", "nowhere"], "has no port");
    bad(
        &["replay", &dir.path().join("absent.ron").to_string_lossy()],
        "cannot read",
    );
    let empty = dir.path().join("empty.ron");
    std::fs::write(
        &empty,
        "(format: 1, endpoints: [(name: \"c\", kind: TcpClient(remote: \"127.0.0.1:9\"))])",
    )
    .unwrap();
    bad(
        &["replay", empty.to_str().unwrap()],
        "nothing to replay: the session's log has no payloads",
    );

    // Nothing listens at the recorded address any more: a network failure.
    let port = free_port();
    let o = sockbench(&[
        "replay",
        f,
        "--target",
        &format!("127.0.0.1:{port}"),
        "--check",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("error: connection refused"),
        "{}",
        text(&o.stderr)
    );
}

/// Speed scaling, on tokio's paused clock: the engine's sleeps are virtual, so
/// the test measures the gaps the replay keeps, not the machine's speed.
#[tokio::test(start_paused = true)]
async fn speed_divides_the_recorded_gaps() {
    let sink = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = sink.local_addr().unwrap();
    let sends = |gaps: &[u64]| Conversation {
        steps: gaps
            .iter()
            .map(|g| Step {
                dir: Direction::Sent,
                bytes: b"x".to_vec(),
                gap: Duration::from_millis(*g),
            })
            .collect(),
        peer_closed: false,
        remote: target.to_string(),
        dropped: 0,
    };
    for (speed, expected) in [
        (1.0, [400, 1000, 2000]),
        (2.0, [200, 500, 1000]),
        (0.0, [0, 0, 0]),
    ] {
        let (engine, mut events) =
            Engine::start(&tokio::runtime::Handle::current(), engine::no_wake());
        let plan = EndpointPlan {
            spec: EndpointSpec::new(
                "client",
                EndpointKind::Udp {
                    bind: None,
                    remote: Some(target.into()),
                },
            ),
            role: Role::Client,
            conversations: vec![sends(&[400, 1000, 2000])],
            ignore: Vec::new(),
        };
        engine.send(engine::Command::Replay {
            id: EndpointId(1),
            plan: Box::new(plan),
            options: ReplayOptions::new(speed, Duration::from_secs(60), false),
        });
        let mut sent_at = Vec::new();
        let mut start = None;
        while let Some(event) = events.recv().await {
            match event.kind {
                EventKind::Bound { .. } => start = Some(tokio::time::Instant::now()),
                EventKind::Traffic {
                    dir: Direction::Sent,
                    ..
                } => sent_at.push(tokio::time::Instant::now()),
                EventKind::Stopped => break,
                _ => {}
            }
        }
        let mut previous = start.unwrap();
        let gaps: Vec<u64> = sent_at
            .iter()
            .map(|t| {
                let gap = t.duration_since(previous).as_millis() as u64;
                previous = *t;
                gap
            })
            .collect();
        // The paused clock makes these exact, give or take the timer's millisecond.
        for (got, want) in gaps.iter().zip(expected) {
            assert!(
                got.abs_diff(want) <= 2,
                "speed {speed}: gaps {gaps:?}, expected {expected:?}"
            );
        }
        assert_eq!(gaps.len(), 3);
        engine.shutdown().await;
    }
}

/// A UDP mock plays at most MAX_REPLAY_PEERS recorded conversations at once:
/// 300 senders that each start a conversation which then waits for a second
/// datagram get 256 players, one note that says why, and the others wait.
#[tokio::test]
async fn a_udp_mock_plays_a_bounded_number_of_conversations_at_once() {
    const SENDERS: usize = 300;
    let cap = engine::replay::MAX_REPLAY_PEERS;
    let conversation = Conversation {
        steps: vec![
            Step {
                dir: Direction::Received,
                bytes: b"q".to_vec(),
                gap: Duration::ZERO,
            },
            // Never comes: the player stays busy until the run ends.
            Step {
                dir: Direction::Received,
                bytes: b"again".to_vec(),
                gap: Duration::ZERO,
            },
        ],
        peer_closed: false,
        remote: "127.0.0.1:9".into(),
        dropped: 0,
    };
    let (engine, mut events) = Engine::start(&tokio::runtime::Handle::current(), engine::no_wake());
    let plan = EndpointPlan {
        spec: EndpointSpec::new(
            "mock",
            EndpointKind::Udp {
                bind: Some("127.0.0.1:0".parse::<SocketAddr>().unwrap().into()),
                remote: None,
            },
        ),
        role: Role::Server,
        conversations: vec![conversation; SENDERS],
        ignore: Vec::new(),
    };
    engine.send(engine::Command::Replay {
        id: EndpointId(1),
        plan: Box::new(plan),
        options: ReplayOptions::new(1.0, Duration::from_secs(60), false),
    });
    let deadline = tokio::time::Instant::now() + LIMIT;
    macro_rules! next {
        () => {
            tokio::time::timeout_at(deadline, events.recv())
                .await
                .expect("the mock's events in time")
                .expect("the engine runs")
        };
    }
    let local = loop {
        if let EventKind::Bound { local } = next!().kind {
            break local;
        }
    };
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.send_to(b"q", local).await.unwrap();
        senders.push(s);
    }
    let (mut received, mut assigned, mut notes) = (0, 0, 0);
    while received < SENDERS {
        match next!().kind {
            EventKind::Traffic {
                dir: Direction::Received,
                ..
            } => received += 1,
            EventKind::ReplayAssigned { .. } => assigned += 1,
            EventKind::Note { text, .. } if text.contains("at once") => notes += 1,
            _ => {}
        }
    }
    assert_eq!(assigned, cap, "players at once");
    assert_eq!(notes, 1, "said once");
    engine.shutdown().await;
}

/// A replayed client stopped while it waits for an answer closes its
/// connection: the peer reads the end at once, not when it gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_replay_closes_its_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The peer reads the request, never answers, and reports how the connection ended.
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        assert_eq!(common::read_at_least(&mut s, 6), b"hello\n");
        s.read(&mut [0u8; 64]).map_err(|e| e.kind())
    });
    let step = |dir, bytes: &[u8]| Step {
        dir,
        bytes: bytes.to_vec(),
        gap: Duration::ZERO,
    };
    let plan = EndpointPlan {
        spec: EndpointSpec::new(
            "client",
            EndpointKind::TcpClient {
                remote: addr.into(),
            },
        ),
        role: Role::Client,
        conversations: vec![Conversation {
            steps: vec![
                step(Direction::Sent, b"hello\n"),
                step(Direction::Received, b"answer\n"),
            ],
            peer_closed: false,
            remote: addr.to_string(),
            dropped: 0,
        }],
        ignore: Vec::new(),
    };
    let (engine, mut events) = Engine::start(&tokio::runtime::Handle::current(), engine::no_wake());
    engine.send(engine::Command::Replay {
        id: EndpointId(1),
        plan: Box::new(plan),
        // It waits for the answer far longer than the peer waits.
        options: ReplayOptions::new(0.0, Duration::from_secs(3600), false),
    });
    let mut stopped = false;
    while let Ok(Some(event)) = tokio::time::timeout(LIMIT, events.recv()).await {
        match event.kind {
            EventKind::Traffic {
                dir: Direction::Sent,
                ..
            } => engine.send(engine::Command::Close {
                id: EndpointId(1),
                abort: false,
            }),
            EventKind::Stopped => {
                stopped = true;
                break;
            }
            _ => {}
        }
    }
    assert!(stopped, "the replay stops");
    let ended = tokio::task::spawn_blocking(move || peer.join().unwrap())
        .await
        .unwrap();
    assert_eq!(ended, Ok(0), "the peer reads the end of the connection");
    engine.shutdown().await;
}
