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
            spec: Box::new(EndpointSpec::new(format!("e{id}"), kind).with_reply(reply)),
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
    let rules = AutoReply::Rules(vec![Rule::new(Trigger::Contains("ping".into()), "pong\n")]);
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
    let held: Vec<StdStream> = (0..5).map(|_| StdStream::connect(addr).unwrap()).collect();
    rig.until(1, |k| matches!(k, EventKind::Accepted { peer: 5, .. }))
        .await;
    // Shutdown has its own bound (SHUTDOWN_GRACE); what the test asserts is
    // that the endpoint really ended within it, not how long that took (a
    // busy machine makes any duration here a guess).
    rig.engine.shutdown().await;
    // Every endpoint ended with Stopped.
    let mut stopped = false;
    while let Some(event) = rig.events.try_recv() {
        stopped |= event.kind == EventKind::Stopped;
    }
    assert!(
        stopped,
        "the endpoint did not end within the shutdown's bound"
    );
    // And every connection was closed, not left open.
    for mut s in held {
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0u8; 1];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("a connection outlived the shutdown: {other:?}"),
        }
    }
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
        spec: Box::new(EndpointSpec::new(
            "u",
            EndpointKind::Udp {
                bind: Some("127.0.0.1:0".parse().unwrap()),
                remote: None,
            },
        )),
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

/// A Stop (Close) that reaches a client after its server hung up and it
/// ended on its own is no failure: `sockbench run` stopped by Ctrl+C exited 3
/// with "the endpoint is not running" when a client ended just before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_an_endpoint_that_ended_on_its_own_is_no_failure() {
    let mut rig = Rig::new();
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    rig.open(2, tcp_client(addr), AutoReply::Off);
    let (stream, _) = listener.accept().unwrap();
    rig.until(2, |k| matches!(k, EventKind::Connected { .. }))
        .await;
    drop(stream);
    rig.until(2, |k| matches!(k, EventKind::Stopped)).await;
    rig.engine.send(Command::Close {
        id: EndpointId(2),
        abort: false,
    });
    // A send to the same stopped endpoint is still an error.
    rig.send(2, Target::Default, b"x");
    // Commands are routed in order: once a server opened after both is
    // listening, every failure they caused has been told.
    rig.open(3, tcp_server("127.0.0.1:0"), AutoReply::Off);
    rig.local_addr(3).await;
    let failures: Vec<&EventKind> = rig
        .seen
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Failed { .. }))
        .map(|e| &e.kind)
        .collect();
    assert_eq!(failures.len(), 1, "only the send fails: {failures:#?}");
    assert!(
        matches!(failures[0], EventKind::Failed { error, .. } if error.message.contains("not running")),
        "{failures:?}"
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
        spec: Box::new(spec),
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

// ---- Bounded: backpressure, one descriptor per connection, counted drops ----

/// More than the engine may hold for one run of these tests: its event
/// budget, a connection's queue and the kernel's buffers on both sides.
const HELD_AT_MOST: usize = 64 * 1024 * 1024;

/// Writes to `stream` (non-blocking) until the kernel takes nothing more for
/// a while (the receiver stopped reading), or `HELD_AT_MOST` bytes went in.
/// `between` runs at each pause (to drain events, or not). Returns the bytes taken.
async fn write_until_stuck(stream: &mut StdStream, mut between: impl FnMut()) -> usize {
    stream.set_nonblocking(true).unwrap();
    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut total = 0;
    let mut stuck = 0;
    let deadline = tokio::time::Instant::now() + 2 * LIMIT;
    // Stuck: no byte taken over 25 pauses in a row.
    while stuck < 25 && total < HELD_AT_MOST && tokio::time::Instant::now() < deadline {
        match stream.write(&chunk) {
            Ok(n) => {
                total += n;
                stuck = 0;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                stuck += 1;
                between();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_stops_taking_events_slows_the_sending_peer() {
    let mut rig = Rig::new();
    rig.open(1, tcp_server("127.0.0.1:0"), AutoReply::Off);
    let addr = rig.local_addr(1).await;
    let mut client = StdStream::connect(addr).unwrap();
    rig.until(1, |k| matches!(k, EventKind::Accepted { .. }))
        .await;
    // Nobody takes events while the peer writes.
    let taken = write_until_stuck(&mut client, || {}).await;
    assert!(
        taken < HELD_AT_MOST,
        "the peer wrote {taken} bytes unhindered: nothing pushed back"
    );
    let queued = rig.events.queued_bytes();
    assert!(
        queued > 0 && queued <= sockbench::engine::EVENT_BUDGET,
        "{queued} bytes wait for the caller"
    );
    // Taking the events lets the reading go on: every byte arrives.
    assert_eq!(rig.received(1, taken).await.len(), taken);
    client.set_nonblocking(false).unwrap();
    client.write_all(b"end").unwrap();
    assert_eq!(rig.received(1, 3).await, b"end");
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_to_a_peer_that_never_reads_stops_reading_it() {
    let mut rig = Rig::new();
    rig.open(1, tcp_server("127.0.0.1:0"), AutoReply::Echo);
    let addr = rig.local_addr(1).await;
    let mut client = StdStream::connect(addr).unwrap();
    rig.until(1, |k| matches!(k, EventKind::Accepted { .. }))
        .await;
    // Events are taken (the caller keeps up); the client never reads the echo.
    let events = &mut rig.events;
    let taken = write_until_stuck(&mut client, || while events.try_recv().is_some() {}).await;
    assert!(
        taken < HELD_AT_MOST,
        "the echo took {taken} bytes from a peer that reads nothing"
    );
    // Reading the echo lets the rest through.
    client.set_nonblocking(false).unwrap();
    client.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut echoed = 0;
    while echoed < taken {
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0, "the echo ended after {echoed} of {taken} bytes");
        echoed += n;
        while rig.events.try_recv().is_some() {}
    }
    assert_eq!(echoed, taken);
    rig.engine.shutdown().await;
}

/// The socket inodes of established TCP connections whose local port is `port`
/// (IPv4 loopback), from /proc/net/tcp.
#[cfg(target_os = "linux")]
fn established_inodes(port: u16) -> std::collections::HashSet<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit(':').next()?;
            let state = fields.get(3)?;
            let inode = fields.get(9)?;
            (u16::from_str_radix(local_port, 16).ok()? == port && *state == "01")
                .then(|| inode.to_string())
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_descriptor_per_accepted_connection() {
    const PEERS: usize = 50;
    let mut rig = Rig::new();
    rig.open(1, tcp_server("127.0.0.1:0"), AutoReply::Echo);
    let addr = rig.local_addr(1).await;
    let mut clients = Vec::new();
    for _ in 0..PEERS {
        let mut client = StdStream::connect(addr).unwrap();
        client.write_all(b"x").unwrap();
        clients.push(client);
    }
    // Every connection is served: its byte was read (and echoed).
    for _ in 0..PEERS {
        rig.until(1, |k| {
            matches!(
                k,
                EventKind::Traffic {
                    dir: Direction::Sent,
                    ..
                }
            )
        })
        .await;
    }
    // Descriptors of this process that refer to the server's sockets of these
    // connections (other tests' sockets have other ports): one each, no duplicate.
    let inodes = established_inodes(addr.port());
    assert_eq!(inodes.len(), PEERS, "{inodes:?}");
    let descriptors = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            let inode = target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .to_owned();
            inodes.contains(&inode).then_some(inode)
        })
        .count();
    assert_eq!(descriptors, PEERS, "descriptors for {PEERS} connections");
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_the_cap_is_closed_with_a_reason() {
    let mut rig = Rig::new();
    let mut spec = EndpointSpec::new("capped", tcp_server("127.0.0.1:0"));
    spec.options.max_peers = Some(1);
    rig.engine.send(Command::Open {
        id: EndpointId(1),
        spec: Box::new(spec),
    });
    let addr = rig.local_addr(1).await;
    let mut first = StdStream::connect(addr).unwrap();
    rig.until(1, |k| matches!(k, EventKind::Accepted { peer: 1, .. }))
        .await;
    let mut second = StdStream::connect(addr).unwrap();
    let note = rig
        .until(1, |k| matches!(k, EventKind::Note { peer: Some(2), .. }))
        .await;
    assert!(
        note.detail().contains("refused") && note.detail().contains("max peers 1"),
        "{note:?}"
    );
    rig.until(1, |k| matches!(k, EventKind::Closed { peer: 2, .. }))
        .await;
    // The refused peer reads the end of the stream; the first one is still served.
    second.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(second.read(&mut buf), Ok(0) | Err(_)));
    first.write_all(b"still here").unwrap();
    assert_eq!(rig.received(1, 10).await, b"still here");
    // When the first one leaves, a new peer is taken.
    drop(first);
    rig.until(1, |k| matches!(k, EventKind::Closed { peer: 1, .. }))
        .await;
    let mut third = StdStream::connect(addr).unwrap();
    third.write_all(b"third").unwrap();
    assert_eq!(rig.received(1, 5).await, b"third");
    rig.engine.shutdown().await;
}

/// Sums what endpoint `id` received and dropped, taking events until every
/// datagram of `sent` is accounted for, sending a marker (counted in `sent`)
/// now and then: the kernel tells its drops with the next datagram.
async fn account_for_datagrams(
    rig: &mut Rig,
    id: u64,
    sender: &std::net::UdpSocket,
    to: SocketAddr,
    mut sent: u64,
) -> (u64, u64, u64) {
    let (mut received, mut kernel, mut ours) = (0u64, 0u64, 0u64);
    let deadline = tokio::time::Instant::now() + 2 * LIMIT;
    while received + kernel + ours < sent && tokio::time::Instant::now() < deadline {
        sender.send_to(b"marker", to).unwrap();
        sent += 1;
        let pause = tokio::time::Instant::now() + Duration::from_millis(200);
        while let Ok(Some(event)) = tokio::time::timeout_at(pause, rig.events.recv()).await {
            if event.id != EndpointId(id) {
                continue;
            }
            match event.kind {
                EventKind::Traffic {
                    dir: Direction::Received,
                    ..
                } => received += 1,
                EventKind::Dropped {
                    cause, datagrams, ..
                } => match cause {
                    sockbench::engine::DropCause::Kernel => kernel += datagrams,
                    sockbench::engine::DropCause::Budget => ours += datagrams,
                },
                _ => {}
            }
        }
    }
    assert_eq!(
        received + kernel + ours,
        sent,
        "{sent} datagrams: {received} received, {kernel} dropped by the kernel, {ours} by sockbench"
    );
    eprintln!(
        "{sent} datagrams: {received} received, {kernel} dropped by the kernel, {ours} by us"
    );
    (received, kernel, ours)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_burst_is_received_or_its_losses_counted() {
    let mut rig = Rig::new();
    let mut spec = EndpointSpec::new("u", udp(Some("127.0.0.1:0"), None));
    // A small receive buffer, so the kernel drops some of the burst (on Linux
    // it says how many; elsewhere the buffer stays large and nothing is lost).
    if cfg!(target_os = "linux") {
        spec.options.recv_buffer = Some(4096);
    }
    rig.engine.send(Command::Open {
        id: EndpointId(1),
        spec: Box::new(spec),
    });
    let to = rig.local_addr(1).await;
    let note = rig.until(1, |k| matches!(k, EventKind::Note { .. })).await;
    assert!(note.detail().starts_with("receive buffer: "), "{note:?}");
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    const BURST: u64 = 20_000;
    for i in 0..BURST {
        let mut datagram = [0u8; 64];
        datagram[..8].copy_from_slice(&i.to_be_bytes());
        sender.send_to(&datagram, to).unwrap();
    }
    account_for_datagrams(&mut rig, 1, &sender, to, BURST).await;
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_beyond_the_event_budget_is_dropped_and_counted() {
    let mut rig = Rig::new();
    rig.open(1, udp(Some("127.0.0.1:0"), None), AutoReply::Off);
    let to = rig.local_addr(1).await;
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagram = vec![7u8; 60_000];
    let budget = sockbench::engine::EVENT_BUDGET;
    let mut sent = 0u64;
    // Nobody takes events: fill the budget, one datagram at a time.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while rig.events.queued_bytes() + datagram.len() <= budget
        && tokio::time::Instant::now() < deadline
    {
        sender.send_to(&datagram, to).unwrap();
        sent += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(rig.events.queued_bytes() + datagram.len() > budget);
    // These find the budget full: dropped by sockbench, and said.
    for _ in 0..5 {
        sender.send_to(&datagram, to).unwrap();
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, _, ours) = account_for_datagrams(&mut rig, 1, &sender, to, sent).await;
    assert!(ours >= 1, "no drop counted");
    assert!(rig.events.queued_bytes() <= budget);
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_reads_take_every_waiting_write_in_one_read() {
    let mut rig = Rig::new();
    rig.open(1, tcp_server("127.0.0.1:0"), AutoReply::Off);
    let addr = rig.local_addr(1).await;
    // Not before a peer is there: the pause is for open connections.
    rig.engine.send(Command::PauseReads {
        id: EndpointId(1),
        pause: Duration::from_secs(60),
    });
    let failed = rig
        .until(1, |k| matches!(k, EventKind::Failed { .. }))
        .await;
    assert!(
        matches!(&failed, EventKind::Failed { error, .. } if error.message.contains("no peer")),
        "{failed:?}"
    );
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    rig.until(1, |k| matches!(k, EventKind::Accepted { .. }))
        .await;
    // Paused for longer than the test: it reads again only when told.
    rig.engine.send(Command::PauseReads {
        id: EndpointId(1),
        pause: Duration::from_secs(60),
    });
    let note = rig.until(1, |k| matches!(k, EventKind::Note { .. })).await;
    assert!(
        matches!(&note, EventKind::Note { text, .. } if text.starts_with("reads paused for 60000 ms")),
        "{note:?}"
    );
    // Six writes, then our FIN: all of them are in the server's receive buffer.
    for piece in [
        &b"first "[..],
        b"line\ns",
        b"econd ",
        b"line\nt",
        b"hird l",
        b"ine\n",
    ] {
        client.write_all(piece).unwrap();
    }
    client.shutdown(std::net::Shutdown::Write).unwrap();
    rig.engine.send(Command::PauseReads {
        id: EndpointId(1),
        pause: Duration::ZERO,
    });
    let again = rig.until(1, |k| matches!(k, EventKind::Note { .. })).await;
    assert!(
        matches!(&again, EventKind::Note { text, .. } if text.starts_with("reads again")),
        "{again:?}"
    );
    // One read holds all six writes.
    match rig
        .until(1, |k| {
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
        EventKind::Traffic { bytes, .. } => {
            assert_eq!(&bytes[..], b"first line\nsecond line\nthird line\n")
        }
        _ => unreachable!(),
    }
    rig.until(1, |k| matches!(k, EventKind::PeerClosed { .. }))
        .await;

    // A UDP socket says a pause is not for it.
    rig.open(3, udp(Some("127.0.0.1:0"), None), AutoReply::Off);
    rig.local_addr(3).await;
    rig.engine.send(Command::PauseReads {
        id: EndpointId(3),
        pause: Duration::from_secs(1),
    });
    let failed = rig
        .until(3, |k| matches!(k, EventKind::Failed { .. }))
        .await;
    assert!(
        matches!(&failed, EventKind::Failed { error, .. } if error.message.contains("TCP")),
        "{failed:?}"
    );
    rig.engine.shutdown().await;
}

// ---------------------------------------------------------------- relay

use sockbench::engine::intercept::{HOLD_BYTES, HeldChange, Pick, Verdict};
use sockbench::model::RelayTransport;
use sockbench::model::impair::{Impairments, Way};

fn relay(transport: RelayTransport, upstream: SocketAddr, impair: Impairments) -> EndpointKind {
    EndpointKind::Relay {
        transport,
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: hp(upstream),
        tls_server: Box::default(),
        tls_client: Box::default(),
        impair: Box::new(impair),
    }
}

impl Rig {
    fn hold(&self, id: u64, way: Way, on: bool) {
        self.engine.send(Command::SetHold {
            id: EndpointId(id),
            way,
            on,
        });
    }

    fn decide(&self, id: u64, way: Way, pick: Pick, verdict: Verdict) {
        self.engine.send(Command::Decide {
            id: EndpointId(id),
            way,
            pick,
            verdict,
        });
    }

    /// The next intercept event of `id`: (peer, item, change).
    async fn intercepted(&mut self, id: u64) -> (u32, u64, HeldChange) {
        match self
            .until(id, |k| matches!(k, EventKind::Intercept { .. }))
            .await
        {
            EventKind::Intercept {
                peer, item, change, ..
            } => (peer, item, change),
            _ => unreachable!(),
        }
    }

    /// The note of `id` whose text contains `words`.
    async fn note(&mut self, id: u64, words: &str) -> String {
        match self
            .until(
                id,
                |k| matches!(k, EventKind::Note { text, .. } if text.contains(words)),
            )
            .await
        {
            EventKind::Note { text, .. } => text,
            _ => unreachable!(),
        }
    }
}

/// A client → relay (holding client → upstream) → server over loopback: the
/// server gets nothing while held, then exactly what was decided, in order.
/// What is still held when the relay stops is said, item by item: never
/// lost without a word.
#[tokio::test]
async fn held_payloads_left_when_the_relay_stops_are_said_to_be_lost() {
    let mut rig = Rig::new();
    rig.open(2, tcp_server("127.0.0.1:0"), AutoReply::Off);
    let server = rig.local_addr(2).await;
    rig.open(
        1,
        relay(RelayTransport::Tcp, server, Impairments::default()),
        AutoReply::Off,
    );
    let at = rig.local_addr(1).await;
    rig.hold(1, Way::Up, true);
    rig.note(1, "hold up (client → upstream) on").await;
    let mut client = StdStream::connect(at).unwrap();
    client.set_nodelay(true).unwrap();
    let mut held = Vec::new();
    for word in ["kept", "back"] {
        client.write_all(word.as_bytes()).unwrap();
        let (_, item, change) = rig.intercepted(1).await;
        assert_eq!(change, HeldChange::Held(bytes::Bytes::from(word)));
        held.push(item);
    }
    rig.engine.send(Command::Close {
        id: EndpointId(1),
        abort: false,
    });
    let mut lost = Vec::new();
    while lost.len() < held.len() {
        let (_, item, change) = rig.intercepted(1).await;
        assert_eq!(change, HeldChange::Abandoned, "item {item}");
        lost.push(item);
    }
    lost.sort_unstable();
    assert_eq!(lost, held);
    rig.until(1, |k| matches!(k, EventKind::Stopped)).await;
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_relay_passes_on_only_what_is_forwarded_edited_or_left_in_order() {
    let mut rig = Rig::new();
    rig.open(2, tcp_server("127.0.0.1:0"), AutoReply::Off);
    let server = rig.local_addr(2).await;
    rig.open(
        1,
        relay(RelayTransport::Tcp, server, Impairments::default()),
        AutoReply::Off,
    );
    let at = rig.local_addr(1).await;
    rig.hold(1, Way::Up, true);
    rig.note(1, "hold up (client → upstream) on").await;
    let mut client = StdStream::connect(at).unwrap();
    client.set_nodelay(true).unwrap();
    let mut items = Vec::new();
    for word in ["one", "two", "three"] {
        client.write_all(word.as_bytes()).unwrap();
        let (peer, item, change) = rig.intercepted(1).await;
        assert_eq!(change, HeldChange::Held(bytes::Bytes::from(word)));
        items.push((peer, item));
    }
    // Held, nothing reached the server (the events of all it read so far).
    while let Some(e) = rig.events.try_recv() {
        assert!(
            !(e.id == EndpointId(2) && matches!(e.kind, EventKind::Traffic { .. })),
            "the server read {e:?} while it was held"
        );
        rig.seen.push(e);
        rig.taken.push(false);
    }
    let one = |(peer, item): (u32, u64)| Pick::One { peer, item };
    // The second dropped, the first edited (decided after: order stays), the rest on hold off.
    rig.decide(1, Way::Up, one(items[1]), Verdict::Drop);
    rig.decide(
        1,
        Way::Up,
        one(items[0]),
        Verdict::Edited(bytes::Bytes::from_static(b"ONE!")),
    );
    rig.hold(1, Way::Up, false);
    client.write_all(b"four").unwrap();
    let want = b"ONE!threefour";
    assert_eq!(rig.received(2, want.len()).await, want);
    // ("four" may come before the hold is off, then it is held and forwarded too.)
    let mut decided = Vec::new();
    while decided.len() < 3 {
        let (_, item, change) = rig.intercepted(1).await;
        if !matches!(change, HeldChange::Held(_)) {
            decided.push((item, change));
        }
    }
    assert_eq!(
        decided,
        vec![
            (
                items[0].1,
                HeldChange::Edited(bytes::Bytes::from_static(b"ONE!"))
            ),
            (items[1].1, HeldChange::Dropped),
            (items[2].1, HeldChange::Forwarded),
        ]
    );
    // The log holds the original (the read) and the edited bytes (the note).
    let rows: Vec<String> = rig
        .seen
        .iter()
        .filter(|e| e.id == EndpointId(1))
        .map(|e| match &e.kind {
            EventKind::Traffic { bytes, .. } => String::from_utf8_lossy(bytes).into_owned(),
            other => other.detail(),
        })
        .collect();
    let original = rows.iter().position(|r| r == "one").expect("the read");
    let edited = rows
        .iter()
        .position(|r| r.starts_with("up: edited #") && r.ends_with("\"ONE!\""))
        .unwrap_or_else(|| panic!("no note of the edit: {rows:#?}"));
    assert!(original < edited);
    rig.engine.shutdown().await;
}

/// A UDP relay holds datagrams the same way: the upstream gets the edited one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_udp_relay_sends_the_edited_datagram() {
    let mut rig = Rig::new();
    let upstream = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    upstream.set_read_timeout(Some(LIMIT)).unwrap();
    rig.open(
        1,
        relay(
            RelayTransport::Udp,
            upstream.local_addr().unwrap(),
            Impairments::default(),
        ),
        AutoReply::Off,
    );
    let at = rig.local_addr(1).await;
    rig.hold(1, Way::Up, true);
    rig.note(1, "hold up").await;
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to(b"ping", at).unwrap();
    client.send_to(b"drop me", at).unwrap();
    let (peer, first, _) = rig.intercepted(1).await;
    let (_, second, _) = rig.intercepted(1).await;
    rig.decide(1, Way::Up, Pick::One { peer, item: second }, Verdict::Drop);
    rig.decide(
        1,
        Way::Up,
        Pick::One { peer, item: first },
        Verdict::Edited(bytes::Bytes::from_static(b"PONG")),
    );
    rig.hold(1, Way::Up, false);
    rig.note(1, "hold up (client → upstream) off").await;
    client.send_to(b"after", at).unwrap();
    let mut buf = [0u8; 64];
    let n = upstream.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"PONG");
    let n = upstream.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after", "the dropped datagram never went");
    rig.engine.shutdown().await;
}

/// While the hold queue is full the relay stops reading the client: the
/// client's writes stall with the relay holding bounded bytes; hold off lets
/// every byte through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hold_queue_pushes_back_on_the_client() {
    let mut rig = Rig::new();
    rig.open(2, tcp_server("127.0.0.1:0"), AutoReply::Off);
    let server = rig.local_addr(2).await;
    rig.open(
        1,
        relay(RelayTransport::Tcp, server, Impairments::default()),
        AutoReply::Off,
    );
    let at = rig.local_addr(1).await;
    rig.hold(1, Way::Up, true);
    rig.note(1, "hold up").await;
    let mut client = StdStream::connect(at).unwrap();
    let seen = std::cell::RefCell::new(Vec::new());
    let events = &mut rig.events;
    let taken = write_until_stuck(&mut client, || {
        while let Some(e) = events.try_recv() {
            seen.borrow_mut().push(e);
        }
    })
    .await;
    assert!(
        taken < HELD_AT_MOST,
        "the client wrote {taken} bytes into a relay that holds them: nothing pushed back"
    );
    let held: usize = seen
        .borrow()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Intercept {
                change: HeldChange::Held(b),
                ..
            } => Some(b.len()),
            _ => None,
        })
        .sum();
    assert!(held > 0, "nothing was held");
    // A gate takes a read while under its bound: at most one read beyond it.
    assert!(
        held <= HOLD_BYTES + 1024 * 1024,
        "{held} bytes held, beyond the bound"
    );
    for e in seen.into_inner() {
        rig.seen.push(e);
        rig.taken.push(false);
    }
    rig.hold(1, Way::Up, false);
    assert_eq!(rig.received(2, taken).await.len(), taken);
    rig.engine.shutdown().await;
}

/// An upstream that never reads: the relay stops reading the client, so it
/// holds bounded bytes, not all the client writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_to_an_upstream_that_never_reads_pushes_back_on_the_client() {
    let mut rig = Rig::new();
    let upstream = StdListener::bind("127.0.0.1:0").unwrap();
    rig.open(
        1,
        relay(
            RelayTransport::Tcp,
            upstream.local_addr().unwrap(),
            Impairments::default(),
        ),
        AutoReply::Off,
    );
    let at = rig.local_addr(1).await;
    let mut client = StdStream::connect(at).unwrap();
    // Accepted and kept open, never read.
    let (_never_read, _) = upstream.accept().unwrap();
    let events = &mut rig.events;
    let taken = write_until_stuck(&mut client, || while events.try_recv().is_some() {}).await;
    assert!(
        taken < HELD_AT_MOST,
        "the relay took {taken} bytes for an upstream that reads nothing"
    );
    rig.engine.shutdown().await;
}

/// Close after a time, and reset after a time: both legs end without a byte sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_limit_closes_or_resets_both_legs() {
    for (limit, reset) in [("close", false), ("reset", true)] {
        let mut rig = Rig::new();
        let upstream = StdListener::bind("127.0.0.1:0").unwrap();
        let mut impair = Impairments::default();
        let after = Some("200ms".parse().unwrap());
        if reset {
            impair.up.reset_after = after;
        } else {
            impair.up.close_after = after;
        }
        rig.open(
            1,
            relay(RelayTransport::Tcp, upstream.local_addr().unwrap(), impair),
            AutoReply::Off,
        );
        let at = rig.local_addr(1).await;
        let mut client = StdStream::connect(at).unwrap();
        client.set_read_timeout(Some(LIMIT)).unwrap();
        let (mut up, _) = upstream.accept().unwrap();
        up.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0u8; 16];
        for (side, stream) in [("client", &mut client), ("upstream", &mut up)] {
            match stream.read(&mut buf) {
                Ok(0) if !reset => {}
                Err(e) if reset && e.kind() == std::io::ErrorKind::ConnectionReset => {}
                other => panic!("{limit} after 200ms: the {side} read {other:?}"),
            }
        }
        let note = rig.note(1, "after 200ms reached").await;
        assert!(note.starts_with(&format!("up: {limit} after")), "{note}");
        rig.engine.shutdown().await;
    }
}

/// Only a relay holds: a UDP socket and a Unix datagram socket answer Hold
/// and Decide with a Failed event that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_other_than_relays_refuse_the_intercept() {
    let mut rig = Rig::new();
    rig.open(1, udp(Some("127.0.0.1:0"), None), AutoReply::Off);
    rig.local_addr(1).await;
    let mut ids = vec![1];
    #[cfg(unix)]
    {
        ids.push(2);
        rig.open(
            2,
            EndpointKind::UnixDatagram {
                bind: None,
                remote: None,
                unlink: false,
            },
            AutoReply::Off,
        );
        rig.until(2, |k| matches!(k, EventKind::UnixBound { .. }))
            .await;
    }
    for id in ids {
        rig.hold(id, Way::Up, true);
        rig.decide(id, Way::Down, Pick::All, Verdict::Drop);
        for _ in 0..2 {
            let failed = rig
                .until(id, |k| matches!(k, EventKind::Failed { .. }))
                .await;
            assert!(
                matches!(&failed, EventKind::Failed { error, .. } if error.message.contains("only a relay holds")),
                "endpoint {id}: {failed:?}"
            );
        }
    }
    rig.engine.shutdown().await;
}
