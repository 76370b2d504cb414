//! The engine over real sockets on loopback: bytes and events asserted.

mod common;
use common::free_port;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sockbench::engine::{Command, EndpointId, Engine, Event, EventKind, Events, Target, no_wake};
use sockbench::model::{
    AutoReply, Direction, EndpointKind, EndpointSpec, ErrorKind, HostPort, Rule, Trigger,
};

const LIMIT: Duration = Duration::from_secs(10);

struct Rig {
    engine: Engine,
    events: Events,
    seen: Vec<Event>,
    /// Events already returned by `until`, so each is matched once.
    taken: Vec<bool>,
}

impl Rig {
    fn new() -> Rig {
        let (engine, events) = Engine::start(&tokio::runtime::Handle::current(), no_wake());
        Rig {
            engine,
            events,
            seen: Vec::new(),
            taken: Vec::new(),
        }
    }

    fn open(&self, id: u64, kind: EndpointKind, reply: AutoReply) {
        self.engine.send(Command::Open {
            id: EndpointId(id),
            spec: EndpointSpec::new(format!("e{id}"), kind).with_reply(reply),
        });
    }

    fn send(&self, id: u64, to: Target, bytes: &[u8]) {
        self.engine.send(Command::Send {
            id: EndpointId(id),
            to,
            bytes: bytes.to_vec(),
        });
    }

    /// The first event of endpoint `id` that matches and was not matched before,
    /// reading more events as needed, bounded in time.
    async fn until(&mut self, id: u64, pred: impl Fn(&EventKind) -> bool) -> EventKind {
        for (i, event) in self.seen.iter().enumerate() {
            if !self.taken[i] && event.id == EndpointId(id) && pred(&event.kind) {
                self.taken[i] = true;
                return event.kind.clone();
            }
        }
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no matching event for e{id} in time; seen: {:#?}",
                        self.seen
                    )
                })
                .expect("the engine stopped");
            self.seen.push(event.clone());
            let matched = event.id == EndpointId(id) && pred(&event.kind);
            self.taken.push(matched);
            if matched {
                return event.kind;
            }
        }
    }

    /// Bytes received by endpoint `id` until `want` bytes have come (TCP may split reads).
    async fn received(&mut self, id: u64, want: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < want {
            if let EventKind::Traffic { bytes, .. } = self
                .until(id, |k| {
                    matches!(
                        k,
                        EventKind::Traffic {
                            dir: Direction::Received,
                            ..
                        }
                    )
                })
                .await
            {
                got.extend_from_slice(&bytes);
            }
        }
        got
    }

    async fn local_addr(&mut self, id: u64) -> SocketAddr {
        match self
            .until(id, |k| {
                matches!(k, EventKind::Listening { .. } | EventKind::Bound { .. })
            })
            .await
        {
            EventKind::Listening { local } | EventKind::Bound { local } => local,
            _ => unreachable!(),
        }
    }

    fn kinds(&self, id: u64) -> Vec<String> {
        self.seen
            .iter()
            .filter(|e| e.id == EndpointId(id))
            .map(|e| format!("{:?}", e.kind.entry_kind()))
            .collect()
    }
}

fn hp(addr: SocketAddr) -> HostPort {
    HostPort::from(addr)
}

fn tcp_server(listen: &str) -> EndpointKind {
    EndpointKind::TcpServer {
        listen: listen.parse().unwrap(),
    }
}

fn tcp_client(remote: SocketAddr) -> EndpointKind {
    EndpointKind::TcpClient { remote: hp(remote) }
}

fn ipv6_available() -> bool {
    match StdListener::bind("[::1]:0") {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipped: IPv6 loopback is not available here ({e})");
            false
        }
    }
}

async fn echo_pair(listen: &str) {
    let mut rig = Rig::new();
    rig.open(1, tcp_server(listen), AutoReply::Echo);
    let addr = rig.local_addr(1).await;
    rig.open(2, tcp_client(addr), AutoReply::Off);
    let connected = rig
        .until(2, |k| matches!(k, EventKind::Connected { .. }))
        .await;
    let EventKind::Connected {
        peer,
        remote,
        local,
    } = connected
    else {
        unreachable!()
    };
    assert_eq!((peer, remote), (0, addr));
    let accepted = rig
        .until(1, |k| matches!(k, EventKind::Accepted { .. }))
        .await;
    assert!(matches!(accepted, EventKind::Accepted { peer: 1, remote, .. } if remote == local));

    rig.send(2, Target::Default, b"hello\r\n");
    rig.send(2, Target::Default, &[0, 1, 2, 255]);
    assert_eq!(rig.received(1, 11).await, b"hello\r\n\x00\x01\x02\xff");
    assert_eq!(rig.received(2, 11).await, b"hello\r\n\x00\x01\x02\xff");

    rig.engine.send(Command::Close {
        id: EndpointId(2),
        abort: false,
    });
    rig.until(2, |k| matches!(k, EventKind::Stopped)).await;
    rig.until(1, |k| matches!(k, EventKind::PeerClosed { peer: 1 }))
        .await;
    rig.until(1, |k| {
        matches!(
            k,
            EventKind::Closed {
                peer: 1,
                aborted: false
            }
        )
    })
    .await;
    let client = rig.kinds(2);
    assert_eq!(client.first().map(String::as_str), Some("Connecting"));
    assert!(client.contains(&"Sent".to_string()));
    assert_eq!(client.last().map(String::as_str), Some("Stopped"));
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_echo_over_ipv4() {
    echo_pair("127.0.0.1:0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_echo_over_ipv6() {
    if ipv6_available() {
        echo_pair("[::1]:0").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_client_resolves_a_host_name() {
    let mut rig = Rig::new();
    rig.open(1, tcp_server("127.0.0.1:0"), AutoReply::Off);
    let addr = rig.local_addr(1).await;
    rig.open(
        2,
        EndpointKind::TcpClient {
            remote: HostPort::new("localhost", addr.port()),
        },
        AutoReply::Off,
    );
    // localhost may resolve to ::1 first, where nothing listens; the client tries each address.
    rig.until(
        2,
        |k| matches!(k, EventKind::Resolving { host } if host == "localhost"),
    )
    .await;
    rig.until(2, |k| matches!(k, EventKind::Connected { .. }))
        .await;
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sends_to_one_peer_or_all() {
    let mut rig = Rig::new();
    rig.open(1, tcp_server("127.0.0.1:0"), AutoReply::Off);
    let addr = rig.local_addr(1).await;
    let mut a = StdStream::connect(addr).unwrap();
    rig.until(1, |k| matches!(k, EventKind::Accepted { peer: 1, .. }))
        .await;
    let mut b = StdStream::connect(addr).unwrap();
    rig.until(1, |k| matches!(k, EventKind::Accepted { peer: 2, .. }))
        .await;
    for s in [&a, &b] {
        s.set_read_timeout(Some(LIMIT)).unwrap();
    }

    rig.send(1, Target::Peer(2), b"to b");
    rig.until(1, |k| {
        matches!(
            k,
            EventKind::Traffic {
                peer: 2,
                dir: Direction::Sent,
                ..
            }
        )
    })
    .await;
    rig.send(1, Target::AllPeers, b"to all");
    let mut buf = [0u8; 10];
    b.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"to bto all");
    let mut buf = [0u8; 6];
    a.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"to all");

    // With two peers, "the default peer" is ambiguous: the engine says so.
    rig.send(1, Target::Default, b"?");
    let failed = rig
        .until(1, |k| matches!(k, EventKind::Failed { .. }))
        .await;
    assert!(
        matches!(failed, EventKind::Failed { error, .. } if error.message.contains("2 peers are connected"))
    );

    // Peers write to us; each read is tagged with its peer.
    a.write_all(b"from a").unwrap();
    let from_a = rig
        .until(1, |k| {
            matches!(
                k,
                EventKind::Traffic {
                    dir: Direction::Received,
                    ..
                }
            )
        })
        .await;
    assert!(
        matches!(from_a, EventKind::Traffic { peer: 1, bytes, .. } if bytes[..] == b"from a"[..])
    );

    // Disconnect one peer with an abort: it reads a reset.
    rig.engine.send(Command::Disconnect {
        id: EndpointId(1),
        peer: 2,
        abort: true,
    });
    rig.until(1, |k| {
        matches!(
            k,
            EventKind::Closed {
                peer: 2,
                aborted: true
            }
        )
    })
    .await;
    let mut rest = Vec::new();
    let err = b.read_to_end(&mut rest).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_sockets_talk_both_ways() {
    for host in ["127.0.0.1", "[::1]"] {
        if host == "[::1]" && !ipv6_available() {
            continue;
        }
        let mut rig = Rig::new();
        rig.open(
            1,
            EndpointKind::Udp {
                bind: Some(format!("{host}:0").parse().unwrap()),
                remote: None,
            },
            AutoReply::always("pong".into()),
        );
        let server = rig.local_addr(1).await;
        rig.open(
            2,
            EndpointKind::Udp {
                bind: None,
                remote: Some(hp(server)),
            },
            AutoReply::Off,
        );
        let client = rig.local_addr(2).await;
        rig.send(2, Target::Default, b"ping");
        let got = rig
            .until(1, |k| {
                matches!(
                    k,
                    EventKind::Traffic {
                        dir: Direction::Received,
                        ..
                    }
                )
            })
            .await;
        assert!(
            matches!(&got, EventKind::Traffic { peer: 1, bytes, .. } if bytes[..] == b"ping"[..]),
            "{got:?}"
        );
        assert_eq!(rig.received(2, 4).await, b"pong");

        // Send to a typed address, and reply to a known peer.
        rig.send(1, Target::Peer(1), b"again");
        assert_eq!(rig.received(2, 5).await, b"again");
        rig.send(2, Target::Address(hp(server)), b"typed");
        assert_eq!(rig.received(1, 5).await, b"typed");
        let _ = client;
        rig.engine.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_explained() {
    let mut rig = Rig::new();
    let port = free_port();
    rig.open(
        2,
        tcp_client(format!("127.0.0.1:{port}").parse().unwrap()),
        AutoReply::Off,
    );
    let failed = rig
        .until(2, |k| matches!(k, EventKind::Failed { .. }))
        .await;
    let EventKind::Failed { peer: None, error } = failed else {
        panic!("{failed:?}")
    };
    assert_eq!(error.kind, ErrorKind::Refused);
    assert!(
        error
            .message
            .contains(&format!("connect to 127.0.0.1:{port}")),
        "{}",
        error.message
    );
    rig.until(2, |k| matches!(k, EventKind::Stopped)).await;
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_by_peer_is_its_own_event() {
    let mut rig = Rig::new();
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    rig.open(2, tcp_client(addr), AutoReply::Off);
    let (stream, _) = listener.accept().unwrap();
    rig.until(2, |k| matches!(k, EventKind::Connected { .. }))
        .await;
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
    rig.until(2, |k| matches!(k, EventKind::Reset { peer: 0 }))
        .await;
    rig.until(2, |k| matches!(k, EventKind::Stopped)).await;
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_in_use_is_explained() {
    let mut rig = Rig::new();
    let taken = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    rig.open(1, tcp_server(&addr.to_string()), AutoReply::Off);
    let failed = rig
        .until(1, |k| matches!(k, EventKind::Failed { .. }))
        .await;
    assert!(
        matches!(&failed, EventKind::Failed { error, .. } if error.kind == ErrorKind::AddressInUse),
        "{failed:?}"
    );
    // And for UDP.
    let taken_udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    rig.open(
        3,
        EndpointKind::Udp {
            bind: Some(hp(taken_udp.local_addr().unwrap())),
            remote: None,
        },
        AutoReply::Off,
    );
    let failed = rig
        .until(3, |k| matches!(k, EventKind::Failed { .. }))
        .await;
    assert!(
        matches!(&failed, EventKind::Failed { error, .. } if error.kind == ErrorKind::AddressInUse)
    );
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolvable_name_is_explained() {
    let mut rig = Rig::new();
    rig.open(
        2,
        EndpointKind::TcpClient {
            remote: HostPort::new("no-such-host.invalid", 80),
        },
        AutoReply::Off,
    );
    let failed = rig
        .until(2, |k| matches!(k, EventKind::Failed { .. }))
        .await;
    let EventKind::Failed { error, .. } = failed else {
        unreachable!()
    };
    assert_eq!(error.kind, ErrorKind::NotResolved);
    assert!(error.message.contains("no-such-host.invalid"));
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_lets_the_peer_answer() {
    let mut rig = Rig::new();
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    rig.open(2, tcp_client(addr), AutoReply::Off);
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    rig.send(2, Target::Default, b"request");
    rig.engine.send(Command::HalfClose {
        id: EndpointId(2),
        peer: 0,
    });
    rig.until(2, |k| matches!(k, EventKind::HalfClosed { peer: 0 }))
        .await;
    let mut request = Vec::new();
    stream.read_to_end(&mut request).unwrap();
    assert_eq!(request, b"request");
    stream.write_all(b"answer").unwrap();
    drop(stream);
    assert_eq!(rig.received(2, 6).await, b"answer");
    rig.until(2, |k| matches!(k, EventKind::PeerClosed { .. }))
        .await;
    rig.until(2, |k| matches!(k, EventKind::Stopped)).await;
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_payloads_do_not_deadlock() {
    let mut rig = Rig::new();
    rig.open(1, tcp_server("127.0.0.1:0"), AutoReply::Echo);
    let addr = rig.local_addr(1).await;
    rig.open(2, tcp_client(addr), AutoReply::Off);
    rig.until(2, |k| matches!(k, EventKind::Connected { .. }))
        .await;
    let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    rig.send(2, Target::Default, &big);
    let back = rig.received(2, big.len()).await;
    assert_eq!(back.len(), big.len());
    assert!(back == big);
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_answer_matching_payloads() {
    let mut rig = Rig::new();
    let rules = AutoReply::Rules(vec![Rule {
        when: Trigger::Contains("ping".into()),
        reply: "pong\n".into(),
    }]);
    rig.open(1, tcp_server("127.0.0.1:0"), rules);
    let addr = rig.local_addr(1).await;
    let mut s = StdStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(b"ping?").unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong\n");
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_prompt_with_open_connections() {
    let mut rig = Rig::new();
    rig.open(1, tcp_server("127.0.0.1:0"), AutoReply::Off);
    let addr = rig.local_addr(1).await;
    let _held: Vec<StdStream> = (0..5).map(|_| StdStream::connect(addr).unwrap()).collect();
    rig.until(1, |k| matches!(k, EventKind::Accepted { peer: 5, .. }))
        .await;
    let started = std::time::Instant::now();
    rig.engine.shutdown().await;
    // Not a timing assertion on the network: shutdown has its own bound of one second.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Every endpoint ended with Stopped.
    let mut stopped = false;
    while let Some(event) = rig.events.try_recv() {
        stopped |= event.kind == EventKind::Stopped;
    }
    assert!(stopped);
}

#[tokio::test(flavor = "current_thread")]
async fn wakes_are_coalesced() {
    let wakes = Arc::new(AtomicUsize::new(0));
    let counter = wakes.clone();
    let (engine, mut events) = Engine::start(
        &tokio::runtime::Handle::current(),
        Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        }),
    );
    engine.send(Command::Open {
        id: EndpointId(1),
        spec: EndpointSpec::new(
            "u",
            EndpointKind::Udp {
                bind: Some("127.0.0.1:0".parse().unwrap()),
                remote: None,
            },
        ),
    });
    let bound = tokio::time::timeout(LIMIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    let EventKind::Bound { local } = bound.kind else {
        panic!("{bound:?}")
    };
    assert_eq!(wakes.load(Ordering::Relaxed), 1);
    // Many events while nobody drains: still one more wake, not one per event.
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..200 {
        sender.send_to(b"x", local).unwrap();
    }
    let mut received = 0;
    let deadline = tokio::time::Instant::now() + LIMIT;
    while received < 50 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let before = wakes.load(Ordering::Relaxed);
        while let Some(e) = events.try_recv() {
            if matches!(e.kind, EventKind::Traffic { .. }) {
                received += 1;
            }
        }
        assert!(wakes.load(Ordering::Relaxed) <= before + 1);
    }
    assert!(received >= 50);
    assert!(
        wakes.load(Ordering::Relaxed) < received,
        "{} wakes for {received} events",
        wakes.load(Ordering::Relaxed)
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_for_stopped_endpoints_are_answered() {
    let mut rig = Rig::new();
    rig.send(9, Target::Default, b"x");
    let failed = rig
        .until(9, |k| matches!(k, EventKind::Failed { .. }))
        .await;
    assert!(
        matches!(failed, EventKind::Failed { error, .. } if error.message.contains("not running"))
    );
    // Opening the same id twice while running is refused, the first keeps running.
    rig.open(1, tcp_server("127.0.0.1:0"), AutoReply::Off);
    rig.local_addr(1).await;
    rig.open(1, tcp_server("127.0.0.1:0"), AutoReply::Off);
    let failed = rig
        .until(1, |k| matches!(k, EventKind::Failed { .. }))
        .await;
    assert!(
        matches!(failed, EventKind::Failed { error, .. } if error.message.contains("already running"))
    );
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_split_into_writes_goes_out_in_pieces() {
    let mut rig = Rig::new();
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    rig.open(2, tcp_client(addr), AutoReply::Off);
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    rig.until(2, |k| matches!(k, EventKind::Connected { .. }))
        .await;
    rig.engine.send(Command::SendSplit {
        id: EndpointId(2),
        to: Target::Default,
        bytes: b"abcdefg".to_vec(),
        writes: 3,
        gap: Duration::from_millis(30),
    });
    let mut pieces = Vec::new();
    for _ in 0..3 {
        if let EventKind::Traffic { bytes, .. } = rig
            .until(2, |k| {
                matches!(
                    k,
                    EventKind::Traffic {
                        dir: Direction::Sent,
                        ..
                    }
                )
            })
            .await
        {
            pieces.push(bytes);
        }
    }
    assert_eq!(pieces, [b"abc".to_vec(), b"def".to_vec(), b"g".to_vec()]);
    let mut all = [0u8; 7];
    stream.read_exact(&mut all).unwrap();
    assert_eq!(&all, b"abcdefg");

    // TCP_NODELAY switches on the open connection, and says so.
    rig.engine.send(Command::SetNoDelay {
        id: EndpointId(2),
        on: true,
    });
    let note = rig.until(2, |k| matches!(k, EventKind::Note { .. })).await;
    assert!(matches!(note, EventKind::Note { text, .. } if text.starts_with("TCP_NODELAY on")));
    rig.engine.shutdown().await;
}

fn udp(bind: Option<&str>, remote: Option<SocketAddr>) -> EndpointKind {
    EndpointKind::Udp {
        bind: bind.map(|b| b.parse().unwrap()),
        remote: remote.map(hp),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_client_hears_only_its_remote() {
    let mut rig = Rig::new();
    let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    server.set_read_timeout(Some(LIMIT)).unwrap();
    rig.open(
        2,
        udp(None, Some(server.local_addr().unwrap())),
        AutoReply::Off,
    );
    let client = rig.local_addr(2).await;
    // Bound by connect() to the loopback address, not to every interface.
    assert_eq!(client.ip().to_string(), "127.0.0.1");
    rig.send(2, Target::Default, b"question");
    let mut buf = [0u8; 64];
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"question"[..], client));

    // A third party sends to the client's port first; then the real answer.
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger.send_to(b"forged answer", client).unwrap();
    server.send_to(b"answer", client).unwrap();
    assert_eq!(rig.received(2, 6).await, b"answer");
    rig.engine.send(Command::Close {
        id: EndpointId(2),
        abort: false,
    });
    rig.until(2, |k| matches!(k, EventKind::Stopped)).await;
    let heard: Vec<&Event> = rig
        .seen
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Traffic {
                    dir: Direction::Received,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(heard.len(), 1, "only the remote is heard: {heard:#?}");
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconnected_udp_socket_hears_anyone() {
    let mut rig = Rig::new();
    let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut spec = EndpointSpec::new(
        "e2",
        udp(Some("127.0.0.1:0"), Some(server.local_addr().unwrap())),
    );
    spec.options.connected = false;
    rig.engine.send(Command::Open {
        id: EndpointId(2),
        spec,
    });
    let client = rig.local_addr(2).await;
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger.send_to(b"anyone", client).unwrap();
    assert_eq!(rig.received(2, 6).await, b"anyone");
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_client_to_a_closed_port_is_refused() {
    let mut rig = Rig::new();
    // A loopback UDP port with nothing on it (bound, then released).
    let closed = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    rig.open(2, udp(None, Some(closed)), AutoReply::Off);
    rig.local_addr(2).await;
    rig.send(2, Target::Default, b"anyone there?");
    let failed = rig
        .until(2, |k| matches!(k, EventKind::Failed { .. }))
        .await;
    assert!(
        matches!(&failed, EventKind::Failed { peer: Some(1), error } if error.kind == ErrorKind::Refused),
        "{failed:?}"
    );
    rig.engine.shutdown().await;
}

/// Sends `rounds` payloads one at a time from endpoint 2 to the echo endpoint
/// 1, each after the previous answer, and checks the stamps: in the order the
/// events came, time never runs backwards, and every byte is received (by
/// the echo, then back at the client) no earlier than it was sent.
async fn check_causal_stamps(rig: &mut Rig, rounds: usize) {
    for i in 0..rounds {
        let payload = format!("round {i:04}");
        rig.send(2, Target::Default, payload.as_bytes());
        assert_eq!(rig.received(2, payload.len()).await, payload.as_bytes());
    }
    for pair in rig.seen.windows(2) {
        assert!(
            pair[0].at <= pair[1].at,
            "stamps run backwards: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    // Byte by byte: the stamp of the write that carried it, then of the read.
    let stamps = |id: u64, dir: Direction| -> Vec<chrono::DateTime<chrono::Utc>> {
        rig.seen
            .iter()
            .filter(|e| e.id == EndpointId(id))
            .filter_map(|e| match &e.kind {
                EventKind::Traffic { dir: d, bytes, .. } if *d == dir => {
                    Some(std::iter::repeat_n(e.at, bytes.len()))
                }
                _ => None,
            })
            .flatten()
            .collect()
    };
    for (from, to) in [(2, 1), (1, 2)] {
        let sent = stamps(from, Direction::Sent);
        let received = stamps(to, Direction::Received);
        assert_eq!(sent.len(), received.len());
        for (k, (s, r)) in sent.iter().zip(&received).enumerate() {
            assert!(
                r >= s,
                "byte {k} from e{from} was received at {r} before it was sent at {s}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_is_never_stamped_before_its_question_over_udp() {
    let mut rig = Rig::new();
    rig.open(1, udp(Some("127.0.0.1:0"), None), AutoReply::Echo);
    let server = rig.local_addr(1).await;
    rig.open(2, udp(Some("127.0.0.1:0"), Some(server)), AutoReply::Off);
    rig.local_addr(2).await;
    check_causal_stamps(&mut rig, 300).await;
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_is_never_stamped_before_its_question_over_tcp() {
    let mut rig = Rig::new();
    rig.open(1, tcp_server("127.0.0.1:0"), AutoReply::Echo);
    let server = rig.local_addr(1).await;
    rig.open(2, tcp_client(server), AutoReply::Off);
    rig.until(2, |k| matches!(k, EventKind::Connected { .. }))
        .await;
    check_causal_stamps(&mut rig, 300).await;
    rig.engine.shutdown().await;
}
