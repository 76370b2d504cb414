//! `connect --stats` and `listen --stats`: a line of totals and rates on
//! stderr every second, and none without the flag.

mod common;
use common::{BIN, LIMIT, run, text};

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};

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
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut args = vec![
            "listen",
            "udp",
            addr.as_str(),
            "--echo",
            "--for",
            "1.6",
            "-q",
        ];
        if stats {
            args.push("--stats");
        }
        let server = std::thread::spawn({
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                run(BIN, &args)
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
            assert!(answered, "the server never answered");
        }
        let o = server.join().unwrap();
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{stderr}");
        let lines = stats_lines(&stderr);
        if stats {
            assert_eq!(lines.len(), 1, "{stderr}");
            assert!(lines[0].starts_with("stats 1s: sent "), "{stderr}");
            assert!(lines[0].ends_with(" peers"), "{stderr}");
        } else {
            assert_eq!(lines, Vec::<&str>::new(), "{stderr}");
        }
    }
}
