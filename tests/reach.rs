//! Reach (issue 14 §4): UDP multicast and broadcast, a client's local
//! address, sessions that keep them. Every packet stays on the loopback:
//! multicast goes out on 127.0.0.1's interface (IP_MULTICAST_IF) or lo,
//! broadcast goes to 127.255.255.255 (the loopback's broadcast address, routed
//! to lo by the kernel's local table).
//!
//! The receivers of group or broadcast datagrams are bound to that group or
//! broadcast address: a socket bound to 127.0.0.1 never hears a datagram sent
//! to a group, and one bound to a group hears nothing else.

mod common;
use common::{BIN, LIMIT, free_port, sockbench, wait_bounded};

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::process::{Command as Process, Stdio};

use sockbench::engine::{Command, EndpointId, Engine, Event, EventKind, Events, Target, no_wake};
use sockbench::model::multicast::{Interface, Multicast};
use sockbench::model::{Direction, EndpointKind, EndpointSpec, ErrorKind, HostPort};

/// An IPv4 group of the organisation-local scope (239/8), unlikely to be in use.
const GROUP_V4: &str = "239.255.77.1";

struct Rig {
    engine: Engine,
    events: Events,
    seen: Vec<Event>,
}

impl Rig {
    fn new() -> Rig {
        let (engine, events) = Engine::start(&tokio::runtime::Handle::current(), no_wake());
        Rig {
            engine,
            events,
            seen: Vec::new(),
        }
    }

    fn open(&self, id: u64, spec: EndpointSpec) {
        self.engine.send(Command::Open {
            id: EndpointId(id),
            spec: Box::new(spec),
        });
    }

    /// The first event of `id` after those already matched that `pred`
    /// accepts, read within [`LIMIT`].
    async fn until(&mut self, id: u64, pred: impl Fn(&EventKind) -> bool) -> EventKind {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no matching event of e{id}; seen {:#?}", self.seen))
                .expect("the engine stopped");
            self.seen.push(event.clone());
            if event.id == EndpointId(id) && pred(&event.kind) {
                return event.kind;
            }
        }
    }

    async fn bound(&mut self, id: u64) -> SocketAddr {
        match self
            .until(id, |k| {
                matches!(k, EventKind::Bound { .. } | EventKind::Failed { .. })
            })
            .await
        {
            EventKind::Bound { local } => local,
            other => panic!("e{id} did not bind: {other:?}"),
        }
    }

    /// The note or failure of `id` whose text begins with `prefix`.
    async fn setsockopt(&mut self, id: u64, prefix: &str) -> Result<String, String> {
        let prefix = prefix.to_owned();
        match self
            .until(id, move |k| match k {
                EventKind::Note { text, .. } => text.starts_with(&prefix),
                EventKind::Failed { error, .. } => error.message.starts_with(&prefix),
                _ => false,
            })
            .await
        {
            EventKind::Note { text, .. } => Ok(text),
            EventKind::Failed { error, .. } => Err(error.message),
            _ => unreachable!(),
        }
    }

    async fn received(&mut self, id: u64) -> Vec<u8> {
        match self
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
            EventKind::Traffic { bytes, .. } => bytes.to_vec(),
            _ => unreachable!(),
        }
    }
}

fn udp(bind: Option<&str>, remote: Option<&str>) -> EndpointKind {
    EndpointKind::Udp {
        bind: bind.map(|b| b.parse().unwrap()),
        remote: remote.map(|r| r.parse().unwrap()),
    }
}

fn on_loopback(groups: &[&str]) -> Multicast {
    Multicast {
        groups: groups.iter().map(|g| g.parse().unwrap()).collect(),
        iface: Some(Interface::Address("127.0.0.1".parse().unwrap())),
        ttl: Some(1),
        loopback: Some(true),
    }
}

/// A plain socket that sends to `group` out of the loopback interface.
fn loopback_sender() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sock = socket2::SockRef::from(&s);
    sock.set_multicast_if_v4(&"127.0.0.1".parse().unwrap())
        .unwrap();
    sock.set_multicast_loop_v4(true).unwrap();
    s
}

#[tokio::test]
async fn a_group_joined_on_the_loopback_hears_a_sockbench_sender() {
    let mut rig = Rig::new();
    let mut receiver = EndpointSpec::new("members", udp(Some(&format!("{GROUP_V4}:0")), None));
    receiver.options.multicast = on_loopback(&[GROUP_V4]);
    rig.open(1, receiver);
    let local = rig.bound(1).await;
    match rig.setsockopt(1, "setsockopt(IP_ADD_MEMBERSHIP)").await {
        Ok(note) => assert!(
            note.contains(&format!("group {GROUP_V4} on interface 127.0.0.1: joined")),
            "{note}"
        ),
        // Only where the operating system refuses a join on the loopback.
        Err(e) => {
            eprintln!("SKIPPED: the kernel refused a multicast join on the loopback: {e}");
            return;
        }
    }
    // The sender's options are said as rows too, before its datagram.
    let mut sender = EndpointSpec::new("sender", udp(None, Some(&local.to_string())));
    sender.options.multicast = on_loopback(&[]);
    rig.open(2, sender);
    rig.bound(2).await;
    let note = rig
        .setsockopt(2, "setsockopt(IP_MULTICAST_IF)")
        .await
        .unwrap();
    assert!(note.contains("127.0.0.1"), "{note}");
    rig.setsockopt(2, "setsockopt(IP_MULTICAST_TTL) 1")
        .await
        .unwrap();
    rig.setsockopt(2, "setsockopt(IP_MULTICAST_LOOP) 1")
        .await
        .unwrap();
    rig.engine.send(Command::Send {
        id: EndpointId(2),
        to: Target::Default,
        bytes: b"to the group".to_vec(),
    });
    assert_eq!(rig.received(1).await, b"to the group");
}

#[tokio::test]
async fn groups_are_joined_and_left_while_the_socket_runs() {
    let mut rig = Rig::new();
    let mut spec = EndpointSpec::new("members", udp(Some(&format!("{GROUP_V4}:0")), None));
    spec.options.multicast.iface = Some(Interface::Address("127.0.0.1".parse().unwrap()));
    rig.open(1, spec);
    let local = rig.bound(1).await;
    let group: IpAddr = GROUP_V4.parse().unwrap();
    let membership = |join| Command::Multicast {
        id: EndpointId(1),
        group,
        join,
    };
    rig.engine.send(membership(true));
    if let Err(e) = rig.setsockopt(1, "setsockopt(IP_ADD_MEMBERSHIP)").await {
        eprintln!("SKIPPED: the kernel refused a multicast join on the loopback: {e}");
        return;
    }
    loopback_sender().send_to(b"joined now", local).unwrap();
    assert_eq!(rig.received(1).await, b"joined now");

    // Joined twice, left, left again: each said with the group and the reason.
    rig.engine.send(membership(true));
    let e = rig
        .setsockopt(1, "setsockopt(IP_ADD_MEMBERSHIP)")
        .await
        .unwrap_err();
    assert!(
        e.contains(GROUP_V4) && e.contains("joined that group already"),
        "{e}"
    );
    rig.engine.send(membership(false));
    let note = rig
        .setsockopt(1, "setsockopt(IP_DROP_MEMBERSHIP)")
        .await
        .unwrap();
    assert!(note.ends_with(": left"), "{note}");
    rig.engine.send(membership(false));
    let e = rig
        .setsockopt(1, "setsockopt(IP_DROP_MEMBERSHIP)")
        .await
        .unwrap_err();
    assert!(e.contains("not a member"), "{e}");

    // Not a group, or a group of the other family: refused with the group named.
    rig.engine.send(Command::Multicast {
        id: EndpointId(1),
        group: "127.0.0.1".parse().unwrap(),
        join: true,
    });
    let error = rig
        .until(1, |k| matches!(k, EventKind::Failed { .. }))
        .await;
    let EventKind::Failed { error, .. } = error else {
        unreachable!()
    };
    assert!(
        error
            .message
            .contains("group 127.0.0.1: not a multicast address"),
        "{error:?}"
    );
    rig.engine.send(Command::Multicast {
        id: EndpointId(1),
        group: "ff15::77".parse().unwrap(),
        join: true,
    });
    let e = rig
        .setsockopt(1, "setsockopt(IPV6_JOIN_GROUP)")
        .await
        .unwrap_err();
    assert!(e.contains("IPv6 group on an IPv4 socket"), "{e}");
    // The socket still runs: a failed join is no failed endpoint.
    rig.engine.send(membership(true));
    rig.setsockopt(1, "setsockopt(IP_ADD_MEMBERSHIP)")
        .await
        .unwrap();
    loopback_sender().send_to(b"still here", local).unwrap();
    assert_eq!(rig.received(1).await, b"still here");
}

#[tokio::test]
async fn ipv6_multicast_on_lo_where_the_kernel_routes_it() {
    let mut rig = Rig::new();
    let group = "ff15::77:1";
    let mut receiver = EndpointSpec::new("members", udp(Some(&format!("[{group}]:0")), None));
    receiver.options.multicast = Multicast {
        groups: vec![group.parse().unwrap()],
        iface: Some(Interface::Name("lo".into())),
        ttl: None,
        loopback: Some(true),
    };
    rig.open(1, receiver);
    let local = match rig
        .until(1, |k| {
            matches!(k, EventKind::Bound { .. } | EventKind::Failed { .. })
        })
        .await
    {
        EventKind::Bound { local } => local,
        other => {
            eprintln!("SKIPPED: no IPv6 socket bound to a group here: {other:?}");
            return;
        }
    };
    match rig.setsockopt(1, "setsockopt(IPV6_JOIN_GROUP)").await {
        Ok(note) => assert!(note.contains("on interface lo: joined"), "{note}"),
        Err(e) => {
            eprintln!("SKIPPED: the kernel refused an IPv6 join on lo: {e}");
            return;
        }
    }
    let mut sender = EndpointSpec::new("sender", udp(Some("[::1]:0"), None));
    sender.options.connected = false;
    sender.options.multicast = Multicast {
        iface: Some(Interface::Name("lo".into())),
        loopback: Some(true),
        ..Multicast::default()
    };
    rig.open(2, sender);
    rig.bound(2).await;
    rig.engine.send(Command::Send {
        id: EndpointId(2),
        to: Target::Address(HostPort::new(group, local.port())),
        bytes: b"v6 group".to_vec(),
    });
    // Linux keeps IPv6 multicast routes off lo (it has no MULTICAST flag):
    // the send then fails as unreachable, and nothing left the machine.
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let event = tokio::time::timeout_at(deadline, rig.events.recv())
            .await
            .expect("neither the datagram nor a failure came")
            .expect("the engine stopped");
        match (event.id, event.kind) {
            (
                EndpointId(1),
                EventKind::Traffic {
                    dir: Direction::Received,
                    bytes,
                    ..
                },
            ) => {
                assert_eq!(&bytes[..], b"v6 group");
                return;
            }
            (EndpointId(2), EventKind::Failed { error, .. }) => {
                assert_eq!(error.kind, ErrorKind::Unreachable, "{error:?}");
                eprintln!(
                    "SKIPPED: the kernel has no IPv6 multicast route on lo (the join worked): {}",
                    error.message
                );
                return;
            }
            _ => {}
        }
    }
}

/// The loopback's broadcast address: the kernel's local table routes it to lo.
const LOOPBACK_BROADCAST: &str = "127.255.255.255";

#[tokio::test]
async fn broadcast_needs_so_broadcast_and_says_so() {
    let mut rig = Rig::new();
    // A receiver on the loopback's broadcast address hears what is broadcast there.
    let receiver = UdpSocket::bind((LOOPBACK_BROADCAST, 0)).unwrap();
    let port = receiver.local_addr().unwrap().port();
    let mut off = EndpointSpec::new("off", udp(Some("127.0.0.1:0"), None));
    off.options.connected = false;
    rig.open(1, off);
    rig.bound(1).await;
    rig.engine.send(Command::Send {
        id: EndpointId(1),
        to: Target::Address(HostPort::new(LOOPBACK_BROADCAST, port)),
        bytes: b"refused".to_vec(),
    });
    let EventKind::Failed { error, .. } = rig
        .until(1, |k| matches!(k, EventKind::Failed { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(error.kind, ErrorKind::PermissionDenied, "{error:?}");
    assert!(
        error
            .message
            .contains("broadcast is off: turn on SO_BROADCAST")
            && error.message.contains("--broadcast"),
        "{error:?}"
    );

    let mut on = EndpointSpec::new("on", udp(Some("127.0.0.1:0"), None));
    on.options.connected = false;
    on.options.broadcast = true;
    rig.open(2, on);
    rig.bound(2).await;
    rig.setsockopt(2, "setsockopt(SO_BROADCAST) 1")
        .await
        .unwrap();
    rig.engine.send(Command::Send {
        id: EndpointId(2),
        to: Target::Address(HostPort::new(LOOPBACK_BROADCAST, port)),
        bytes: b"to everyone on lo".to_vec(),
    });
    receiver.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = [0u8; 64];
    let (got, from) = tokio::task::spawn_blocking(move || {
        let (n, from) = receiver.recv_from(&mut buf).unwrap();
        (buf[..n].to_vec(), from)
    })
    .await
    .unwrap();
    assert_eq!(got, b"to everyone on lo");
    assert!(from.ip().is_loopback(), "{from}");
}

/// Reads `sockbench listen` output lines until one contains `needle`.
fn line_with(out: &mut BufReader<std::process::ChildStdout>, needle: &str) -> String {
    let mut all = String::new();
    for _ in 0..50 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        all.push_str(&line);
        if line.contains(needle) {
            return line;
        }
    }
    panic!("no line with {needle:?} in:\n{all}");
}

#[test]
fn the_command_line_joins_a_group_and_sends_to_it() {
    let mut child = Process::new(BIN)
        .args([
            "listen",
            "udp",
            &format!("{GROUP_V4}:0"),
            "--join",
            GROUP_V4,
            "--iface",
            "127.0.0.1",
            "--once",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let bound = line_with(&mut out, "bound");
    let addr = bound
        .split_whitespace()
        .find(|w| w.starts_with(GROUP_V4))
        .unwrap()
        .to_owned();
    let joined = line_with(&mut out, "IP_ADD_MEMBERSHIP");
    if !joined.contains("joined") {
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("SKIPPED: the kernel refused a multicast join on the loopback: {joined}");
        return;
    }
    let o = sockbench(&[
        "connect",
        "udp",
        &addr,
        "--iface",
        "127.0.0.1",
        "--multicast-ttl",
        "1",
        "--multicast-loop",
        "on",
        "--send",
        "hello group",
        "--wait",
        "0.2",
    ]);
    let sent = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{sent}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        sent.contains("setsockopt(IP_MULTICAST_IF) 127.0.0.1"),
        "{sent}"
    );
    // --once: the listener ends after the first datagram.
    wait_bounded(&mut child);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("\"hello group\""), "{rest}");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn multicast_flags_are_checked_before_anything_runs() {
    for (args, expected) in [
        (
            vec!["listen", "udp", "127.0.0.1:0", "--join", "10.1.2.3"],
            "--join: group 10.1.2.3: not a multicast address",
        ),
        (
            vec!["listen", "tcp", "127.0.0.1:0", "--join", GROUP_V4],
            "are for udp",
        ),
        (
            vec!["listen", "udp", "127.0.0.1:0", "--join", "ff15::1"],
            "--join ff15::1: an IPv6 group, and the socket's address 127.0.0.1 is IPv4",
        ),
        (
            vec!["connect", "udp", "239.1.1.1:9", "--multicast-ttl", "256"],
            "--multicast-ttl \"256\": give a whole number of routers, 0 to 255",
        ),
        (
            vec!["connect", "udp", "239.1.1.1:9", "--iface", "0"],
            "--iface: interface index 0",
        ),
        (
            vec!["connect", "tcp", "127.0.0.1:9", "--bind", "localhost:5"],
            "--bind: \"localhost\" is not an IP address",
        ),
        (
            vec!["connect", "tcp", "127.0.0.1:9", "--broadcast"],
            "are for udp",
        ),
    ] {
        let o = sockbench(&args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn bind_gives_a_tcp_client_its_local_port() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let port = free_port();
    let accepted = std::thread::spawn(move || {
        let (mut s, peer) = server.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        (peer, buf)
    });
    let o = sockbench(&[
        "connect",
        "tcp",
        &addr.to_string(),
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--send",
        "hi",
        "--wait",
        "0.1",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (peer, bytes) = accepted.join().unwrap();
    assert_eq!(peer, SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(bytes, b"hi");

    // A local port another socket holds: the reason, in words, and exit 3.
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let o = sockbench(&[
        "connect",
        "tcp",
        &addr.to_string(),
        "--bind",
        &taken.to_string(),
        "--send",
        "hi",
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("address in use"), "{err}");
    assert!(
        err.contains("another socket holds this local address and port"),
        "{err}"
    );
}

#[test]
fn bind_gives_a_udp_client_its_local_port() {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let port = free_port();
    let o = sockbench(&[
        "connect",
        "udp",
        &peer.local_addr().unwrap().to_string(),
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--send",
        "x",
        "--wait",
        "0.1",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut buf = [0u8; 8];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"x");
    assert_eq!(from, SocketAddr::from(([127, 0, 0, 1], port)));
}

#[test]
fn a_session_keeps_groups_and_a_client_bind() {
    let mut session = sockbench::model::Session::default();
    let mut members = EndpointSpec::new("members", udp(Some("239.255.77.1:5000"), None));
    members.options.multicast = Multicast {
        groups: vec![GROUP_V4.parse().unwrap(), "239.255.77.2".parse().unwrap()],
        iface: Some(Interface::Address("127.0.0.1".parse().unwrap())),
        ttl: Some(3),
        loopback: Some(false),
    };
    members.options.broadcast = true;
    let mut client = EndpointSpec::new(
        "client",
        EndpointKind::TcpClient {
            remote: "127.0.0.1:7000".parse().unwrap(),
        },
    );
    client.options.bind = Some("127.0.0.1:5001".parse().unwrap());
    let mut server = EndpointSpec::new(
        "server",
        EndpointKind::TcpServer {
            listen: "127.0.0.1:7000".parse().unwrap(),
        },
    );
    server.options.max_peers = Some(3);
    session.endpoints = vec![members, client, server];
    let text = sockbench::persist::to_string(&session).unwrap();
    assert!(
        text.contains(
            "options: (broadcast: true, multicast: (groups: [\"239.255.77.1\", \"239.255.77.2\"], iface: \"127.0.0.1\", ttl: 3, loopback: false))"
        ),
        "{text}"
    );
    assert!(
        text.contains("options: (bind: \"127.0.0.1:5001\")"),
        "{text}"
    );
    assert!(text.contains("options: (max_peers: 3)"), "{text}");
    let back = sockbench::persist::from_str(&text, std::path::Path::new("t.ron")).unwrap();
    assert_eq!(back.endpoints, session.endpoints);

    // A unicast address among the groups is refused with its place.
    let bad = text.replace("239.255.77.2", "10.0.0.2");
    let e = sockbench::persist::from_str(&bad, std::path::Path::new("t.ron"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("group 10.0.0.2: not a multicast address"), "{e}");
    assert!(e.contains("t.ron"), "{e}");
}

#[test]
fn the_python_export_joins_the_group_like_sockbench() {
    if !common::python3() {
        return;
    }
    let group = "239.255.77.3";
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("members.ron");
    std::fs::write(
        &file,
        format!(
            r#"(format: 1, endpoints: [(name: "members", kind: Udp(bind: "{group}:{port}"),
                options: (multicast: (groups: ["{group}"], iface: "127.0.0.1", ttl: 1, loopback: true)))],
            log: (peers: [(endpoint: "members", peer: 1, remote: "127.0.0.1:5000")], entries: [
                (at: "2026-01-01T00:00:00.000000Z", endpoint: "members", peer: 1, event: Received(Text("ping"))),
                (at: "2026-01-01T00:00:00.000100Z", endpoint: "members", peer: 1, event: Sent(Text("pong"))),
            ]))"#
        ),
    )
    .unwrap();
    let program = dir.path().join("members.py");
    let o = sockbench(&[
        "export",
        file.to_str().unwrap(),
        "--to",
        "python",
        "-o",
        program.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let source = std::fs::read_to_string(&program).unwrap();
    for line in [
        "import struct\n",
        "sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(\"127.0.0.1\"))",
        "sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)",
        "sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)",
        "sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack(\"4s4s\", socket.inet_aton(\"239.255.77.3\"), socket.inet_aton(\"127.0.0.1\")))",
    ] {
        assert!(source.contains(line), "{line}\n{source}");
    }
    let mut python = Process::new("python3")
        .arg(&program)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sender = loopback_sender();
    sender
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    // The program may not have joined yet: send again until it answers.
    let n = loop {
        sender.send_to(b"ping", (group, port)).unwrap();
        if let Ok((n, _)) = sender.recv_from(&mut buf) {
            break n;
        }
        if started.elapsed() > LIMIT {
            let _ = python.kill();
            let out = python.wait_with_output().unwrap();
            panic!(
                "the Python member never answered: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    assert_eq!(&buf[..n], b"pong");
    wait_bounded(&mut python);
    assert!(python.wait().unwrap().success());
}

/// The tests' free ports lie below the kernel's ephemeral range, so no other
/// test's `bind(…:0)` and no outgoing connection can be handed one between
/// the moment it is picked and the moment a test binds it; and no two
/// callers get the same port.
#[test]
fn free_ports_are_outside_the_ephemeral_range_and_never_repeat() {
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768);
    let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
    for &port in &ports {
        assert!(port < low, "{port} lies in the ephemeral range ({low}..)");
        let taken = TcpListener::bind(("127.0.0.1", port)).unwrap();
        assert_eq!(taken.local_addr().unwrap().port(), port);
    }
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ports.len(), "a port given twice: {ports:?}");
}
