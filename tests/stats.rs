//! `connect --stats` and `listen --stats`: a line of totals and rates on
//! stderr every second, and none without the flag.

mod common;
use common::{BIN, LIMIT, free_port, run, text, wait_bounded};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Instant;

/// A loopback peer that echoes one TCP payload and holds the connection
/// until the client closes.
fn echo_once() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    (addr, peer)
}

fn stats_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("stats ")).collect()
}

#[test]
fn connect_stats_says_totals_every_second() {
    let (addr, peer) = echo_once();
    // The exchange is over at once; the run then waits 2.5 s quietly, so
    // lines at 1 s and 2 s come after it.
    let o = run(
        BIN,
        &[
            "connect", "tcp", &addr, "--send", "hello", "--wait", "2.5", "--stats", "-q",
        ],
    );
    peer.join().unwrap();
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let lines = stats_lines(&stderr);
    assert!((2..=4).contains(&lines.len()), "{stderr}");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.starts_with(&format!("stats {}s: sent ", i + 1)),
            "{line}"
        );
    }
    let last = lines.last().unwrap();
    assert!(
        last.contains("sent 1 payload 5 bytes (")
            && last.contains("received 1 payload 5 bytes (")
            && last.ends_with("; 1 connection"),
        "{last}"
    );
    // Nothing moved in the last second.
    assert!(
        last.contains("(0 bytes/s, 0 payloads/s); received"),
        "{last}"
    );
}

#[test]
fn listen_stats_counts_udp_peers_and_nothing_is_said_without_the_flag() {
    for stats in [true, false] {
        let addr = format!("127.0.0.1:{}", free_port());
        // With --stats the run lasts until a line counts both peers (a line
        // comes every second, whenever the peers came: a slow start must not
        // leave the first line with one); without, 1.6 s in which none may come.
        let run_for = if stats { "20" } else { "1.6" };
        let mut args = vec!["listen", "udp", &addr, "--echo", "--for", run_for, "-q"];
        if stats {
            args.push("--stats");
        }
        let mut server = Command::new(BIN)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = server.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Two peers, each asking until answered (the server may not be bound yet).
        for _ in 0..2 {
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client
                .set_read_timeout(Some(std::time::Duration::from_millis(100)))
                .unwrap();
            let mut answered = false;
            for _ in 0..50 {
                client.send_to(b"ping", &addr).unwrap();
                let mut buf = [0u8; 8];
                if client.recv_from(&mut buf).is_ok() {
                    answered = true;
                    break;
                }
            }
            if !answered {
                let _ = server.kill();
                let _ = server.wait();
                panic!("the server never answered");
            }
        }
        let mut seen = Vec::new();
        if stats {
            let deadline = Instant::now() + LIMIT;
            while !seen
                .last()
                .is_some_and(|l: &String| l.ends_with(" 2 peers"))
            {
                let left = deadline.saturating_duration_since(Instant::now());
                match lines.recv_timeout(left) {
                    Ok(line) if line.starts_with("stats ") => seen.push(line),
                    Ok(_) => {}
                    Err(_) => {
                        let _ = server.kill();
                        let _ = server.wait();
                        panic!("no stats line counted both peers: {seen:#?}");
                    }
                }
            }
            let _ = server.kill();
            let _ = server.wait();
            for line in &seen {
                assert!(
                    line.starts_with("stats ") && line.contains("s: sent "),
                    "{line}"
                );
            }
            assert!(seen[0].starts_with("stats 1s: sent "), "{seen:#?}");
        } else {
            wait_bounded(&mut server);
            assert_eq!(server.wait().unwrap().code(), Some(0));
            reader.join().unwrap();
            let said: Vec<String> = lines.try_iter().collect();
            assert!(said.iter().all(|l| !l.starts_with("stats ")), "{said:#?}");
            assert!(
                said.last().is_some_and(|l| l.starts_with("summary: ")),
                "{said:#?}"
            );
        }
    }
}

/// `run --stats` of a session whose only endpoint is a Unix datagram socket
/// counts the peers heard from, as `listen unix-dgram --stats` does (it
/// counted connections, which datagram sockets never have: always 0).
#[test]
fn run_stats_counts_unix_datagram_peers() {
    if !common::python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bound = dir.path().join("srv.sock");
    let session = dir.path().join("dgram.ron");
    std::fs::write(
        &session,
        format!(
            r#"(format: 1, endpoints: [(name: "sink", kind: UnixDatagram(bind: Some("{}")))])"#,
            bound.display()
        ),
    )
    .unwrap();
    let mut server = Command::new(BIN)
        .args([
            "run",
            session.to_str().unwrap(),
            "--for",
            "20",
            "-q",
            "--stats",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Two python peers, each bound to its own path, send until the socket is there.
    let script = format!(
        r#"
import socket, os, time
for name in ("a.sock", "b.sock"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(os.path.join({dir:?}, name))
    for _ in range(100):
        try:
            s.sendto(b"hi", {bound:?})
            break
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.05)
    else:
        raise SystemExit("the socket never appeared")
"#,
        dir = dir.path().display().to_string(),
        bound = bound.display().to_string(),
    );
    let peers = run("python3", &["-c", &script]);
    if !peers.status.success() {
        let _ = server.kill();
        let _ = server.wait();
        panic!("{}", text(&peers.stderr));
    }
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while !seen.last().is_some_and(|l| l.ends_with(" 2 peers")) && Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(LIMIT / 100)
            && line.starts_with("stats ")
        {
            seen.push(line);
        }
    }
    let _ = server.kill();
    wait_bounded(&mut server);
    let _ = reader.join();
    assert!(
        seen.last().is_some_and(|l| l.ends_with(" 2 peers")),
        "{seen:#?}"
    );
}
