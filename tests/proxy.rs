//! Clients through proxies (SOCKS5 and HTTP CONNECT, small ones written here,
//! loopback only) and clients that reconnect: bytes asserted both ways, the
//! proxy's refusals and the attempts read from the log.

mod common;
use common::free_port;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockbench::engine::{
    Command, EndpointId, Engine, Event, EventKind, Events, RECONNECT_NOTE, Target, no_wake,
};
use sockbench::model::proxy::{Proxy, Reconnect};
use sockbench::model::{
    AutoReply, Direction, EndpointKind, EndpointSpec, EntryKind, HostPort, TlsClientSettings,
    TlsServerSettings, TrafficLog,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(10);

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

    fn send(&self, id: u64, bytes: &[u8]) {
        self.engine.send(Command::Send {
            id: EndpointId(id),
            to: Target::Default,
            bytes: bytes.to_vec(),
        });
    }

    /// Reads events until one of endpoint `id` matches, bounded in time.
    async fn until(&mut self, id: u64, pred: impl Fn(&EventKind) -> bool) -> EventKind {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no matching event for e{id}; seen: {:#?}", self.seen))
                .expect("the engine stopped");
            self.seen.push(event.clone());
            if event.id == EndpointId(id) && pred(&event.kind) {
                return event.kind;
            }
        }
    }

    /// An echo server on loopback (endpoint `id`); its address.
    async fn echo_server(&mut self, id: u64) -> SocketAddr {
        self.open(
            id,
            EndpointSpec::new(
                format!("server{id}"),
                EndpointKind::TcpServer {
                    listen: "127.0.0.1:0".parse().unwrap(),
                },
            )
            .with_reply(AutoReply::Echo),
        );
        match self
            .until(id, |k| matches!(k, EventKind::Listening { .. }))
            .await
        {
            EventKind::Listening { local } => local,
            _ => unreachable!(),
        }
    }

    /// Every received byte of endpoint `id` until `want` bytes came (bounded).
    async fn received(&mut self, id: u64, want: usize) -> Vec<u8> {
        let mut got: Vec<u8> = self
            .seen
            .iter()
            .filter(|e| e.id == EndpointId(id))
            .filter_map(|e| match &e.kind {
                EventKind::Traffic {
                    dir: Direction::Received,
                    bytes,
                    ..
                } => Some(bytes.to_vec()),
                _ => None,
            })
            .flatten()
            .collect();
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

    /// The notes of endpoint `id` seen so far.
    fn notes(&self, id: u64) -> Vec<String> {
        self.seen
            .iter()
            .filter(|e| e.id == EndpointId(id))
            .filter_map(|e| match &e.kind {
                EventKind::Note { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }
}

fn client(remote: &str, proxy: &str) -> EndpointSpec {
    let mut spec = EndpointSpec::new(
        "client",
        EndpointKind::TcpClient {
            remote: remote.parse().unwrap(),
        },
    );
    spec.proxy = Some(Proxy::parse(proxy).unwrap());
    spec.options.connect_timeout_secs = 5.0;
    spec
}

/// What the test proxy does with a client.
#[derive(Clone)]
enum Socks {
    /// Tunnels, asking for these credentials when given.
    Open(Option<(&'static str, &'static str)>),
    /// Answers the request with this reply code.
    Refuse(u8),
}

/// A SOCKS5 proxy on loopback; every target it was asked for is pushed to
/// `asked` as `ATYP host:port`. Host names resolve to loopback only.
async fn socks5_proxy(mode: Socks, asked: Arc<Mutex<Vec<String>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // A bounded number of clients: enough for every test here.
        for _ in 0..8 {
            let Ok((mut c, _)) = listener.accept().await else {
                return;
            };
            let mode = mode.clone();
            let asked = asked.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(LIMIT, socks5_serve(&mut c, mode, asked)).await;
            });
        }
    });
    addr
}

async fn socks5_serve(
    c: &mut TcpStream,
    mode: Socks,
    asked: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    c.read_exact(&mut head).await?;
    let mut methods = vec![0u8; head[1] as usize];
    c.read_exact(&mut methods).await?;
    if let Socks::Open(Some((user, pass))) = &mode {
        if !methods.contains(&2) {
            c.write_all(&[5, 0xff]).await?;
            return Ok(());
        }
        c.write_all(&[5, 2]).await?;
        let mut v = [0u8; 2];
        c.read_exact(&mut v).await?;
        let mut u = vec![0u8; v[1] as usize];
        c.read_exact(&mut u).await?;
        let mut plen = [0u8; 1];
        c.read_exact(&mut plen).await?;
        let mut p = vec![0u8; plen[0] as usize];
        c.read_exact(&mut p).await?;
        let ok = u == user.as_bytes() && p == pass.as_bytes();
        c.write_all(&[1, if ok { 0 } else { 1 }]).await?;
        if !ok {
            return Ok(());
        }
    } else {
        c.write_all(&[5, 0]).await?;
    }
    let mut req = [0u8; 4];
    c.read_exact(&mut req).await?;
    let (label, host) = match req[3] {
        1 => {
            let mut b = [0u8; 4];
            c.read_exact(&mut b).await?;
            ("ipv4", std::net::Ipv4Addr::from(b).to_string())
        }
        4 => {
            let mut b = [0u8; 16];
            c.read_exact(&mut b).await?;
            ("ipv6", std::net::Ipv6Addr::from(b).to_string())
        }
        _ => {
            let mut len = [0u8; 1];
            c.read_exact(&mut len).await?;
            let mut b = vec![0u8; len[0] as usize];
            c.read_exact(&mut b).await?;
            ("domain", String::from_utf8_lossy(&b).into_owned())
        }
    };
    let mut port = [0u8; 2];
    c.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    asked
        .lock()
        .unwrap()
        .push(format!("{label} {}", HostPort::new(host.clone(), port)));
    if let Socks::Refuse(code) = mode {
        c.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    }
    let ip: std::net::IpAddr = if host == "localhost" {
        [127, 0, 0, 1].into()
    } else {
        host.parse().expect("the test proxy reaches loopback only")
    };
    assert!(ip.is_loopback(), "the test proxy reaches loopback only");
    let mut upstream = TcpStream::connect((ip, port)).await?;
    let bound = upstream.local_addr()?;
    let mut reply = vec![5, 0, 0];
    match bound {
        SocketAddr::V4(a) => {
            reply.push(1);
            reply.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            reply.push(4);
            reply.extend_from_slice(&a.ip().octets());
        }
    }
    reply.extend_from_slice(&bound.port().to_be_bytes());
    c.write_all(&reply).await?;
    tokio::io::copy_bidirectional(c, &mut upstream).await?;
    Ok(())
}

#[tokio::test]
async fn a_client_talks_through_a_socks5_proxy_both_ways() {
    let mut rig = Rig::new();
    let server = rig.echo_server(1).await;
    let asked = Arc::new(Mutex::new(Vec::new()));
    let proxy = socks5_proxy(Socks::Open(None), asked.clone()).await;
    rig.open(2, client(&server.to_string(), &format!("socks5://{proxy}")));
    rig.send(2, b"through the proxy\n");
    assert_eq!(rig.received(2, 18).await, b"through the proxy\n");
    assert_eq!(rig.received(1, 18).await, b"through the proxy\n");
    assert_eq!(*asked.lock().unwrap(), [format!("ipv4 {server}")]);
    let notes = rig.notes(2);
    assert!(
        notes[0].starts_with(&format!("connected to proxy socks5://{proxy}")),
        "{notes:?}"
    );
    assert!(
        notes[1].starts_with(&format!("tunnel established to {server}")),
        "{notes:?}"
    );

    // A host name goes to the proxy as a name (ATYP domain), with credentials.
    let asked = Arc::new(Mutex::new(Vec::new()));
    let proxy = socks5_proxy(Socks::Open(Some(("al@ice", "s3cret"))), asked.clone()).await;
    let target = format!("localhost:{}", server.port());
    rig.open(
        3,
        client(&target, &format!("socks5://al%40ice:s3cret@{proxy}")),
    );
    rig.send(3, b"named");
    assert_eq!(rig.received(3, 5).await, b"named");
    assert_eq!(*asked.lock().unwrap(), [format!("domain {target}")]);
    assert!(
        rig.notes(3).iter().all(|n| !n.contains("s3cret")),
        "the password is never logged"
    );
}

#[tokio::test]
async fn socks5_refusals_say_it_was_the_proxy() {
    let mut rig = Rig::new();
    let server = rig.echo_server(1).await;
    let asked = Arc::new(Mutex::new(Vec::new()));
    let cases = [
        (
            Socks::Open(Some(("user", "right"))),
            "socks5://user:wrong@",
            "proxy refused the user name and password",
        ),
        (
            Socks::Open(Some(("user", "right"))),
            "socks5://",
            "proxy asked for authentication",
        ),
        (
            Socks::Refuse(5),
            "socks5://",
            "proxy refused: SOCKS5 reply 05 connection refused by the target",
        ),
        (
            Socks::Refuse(2),
            "socks5://",
            "proxy refused: SOCKS5 reply 02 connection not allowed",
        ),
    ];
    for (i, (mode, scheme, want)) in cases.into_iter().enumerate() {
        let id = 10 + i as u64;
        let proxy = socks5_proxy(mode, asked.clone()).await;
        rig.open(id, client(&server.to_string(), &format!("{scheme}{proxy}")));
        let EventKind::Failed { peer: None, error } = rig
            .until(id, |k| matches!(k, EventKind::Failed { .. }))
            .await
        else {
            panic!("expected the endpoint to fail");
        };
        assert!(error.to_string().contains(want), "{want}: {error}");
        rig.until(id, |k| *k == EventKind::Stopped).await;
    }
    // The right password gets through.
    let proxy = socks5_proxy(Socks::Open(Some(("user", "right"))), asked).await;
    rig.open(
        20,
        client(&server.to_string(), &format!("socks5://user:right@{proxy}")),
    );
    rig.send(20, b"ok");
    assert_eq!(rig.received(20, 2).await, b"ok");
}

#[tokio::test]
async fn a_socks5_proxy_reaches_an_ipv6_target() {
    let Ok(probe) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    };
    drop(probe);
    let mut rig = Rig::new();
    rig.open(
        1,
        EndpointSpec::new(
            "server",
            EndpointKind::TcpServer {
                listen: "[::1]:0".parse().unwrap(),
            },
        )
        .with_reply(AutoReply::Echo),
    );
    let EventKind::Listening { local } = rig
        .until(1, |k| matches!(k, EventKind::Listening { .. }))
        .await
    else {
        unreachable!()
    };
    let asked = Arc::new(Mutex::new(Vec::new()));
    let proxy = socks5_proxy(Socks::Open(None), asked.clone()).await;
    rig.open(2, client(&local.to_string(), &format!("socks5://{proxy}")));
    rig.send(2, b"v6");
    assert_eq!(rig.received(2, 2).await, b"v6");
    assert_eq!(*asked.lock().unwrap(), [format!("ipv6 {local}")]);
}

/// What the test HTTP proxy answers to CONNECT.
#[derive(Clone, Copy)]
enum Http {
    /// 200 and a tunnel, when the request carries `Proxy-Authorization: Basic dTpw` (u:p).
    NeedsBasicUP,
    /// A header that never ends.
    Endless,
}

async fn http_proxy(mode: Http) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..8 {
            let Ok((mut c, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = tokio::time::timeout(LIMIT, http_serve(&mut c, mode)).await;
            });
        }
    });
    addr
}

async fn http_serve(c: &mut TcpStream, mode: Http) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") && request.len() < 8192 {
        c.read_exact(&mut byte).await?;
        request.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&request).into_owned();
    match mode {
        Http::Endless => {
            c.write_all(b"HTTP/1.1 200 OK\r\n").await?;
            let junk = format!("X-Junk: {}\r\n", "a".repeat(1000));
            // Far more than any client should read; ends when the client hangs up.
            for _ in 0..1000 {
                c.write_all(junk.as_bytes()).await?;
            }
            Ok(())
        }
        Http::NeedsBasicUP => {
            if !text.contains("\r\nProxy-Authorization: Basic dTpw\r\n") {
                c.write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\n\r\n",
                )
                .await?;
                return Ok(());
            }
            let target = text
                .strip_prefix("CONNECT ")
                .and_then(|t| t.split(' ').next())
                .unwrap()
                .to_owned();
            let target: SocketAddr = target.parse().unwrap();
            assert!(target.ip().is_loopback());
            let mut upstream = TcpStream::connect(target).await?;
            c.write_all(b"HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n")
                .await?;
            tokio::io::copy_bidirectional(c, &mut upstream).await?;
            Ok(())
        }
    }
}

#[tokio::test]
async fn http_connect_tunnels_asks_for_credentials_and_bounds_the_reply() {
    let mut rig = Rig::new();
    let server = rig.echo_server(1).await;
    let proxy = http_proxy(Http::NeedsBasicUP).await;

    rig.open(
        2,
        client(&server.to_string(), &format!("http://u:p@{proxy}")),
    );
    rig.send(2, b"connect me");
    assert_eq!(rig.received(2, 10).await, b"connect me");
    assert_eq!(rig.received(1, 10).await, b"connect me");
    let notes = rig.notes(2);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("HTTP/1.1 200 Connection established")),
        "{notes:?}"
    );

    for (id, url, want) in [
        (
            3,
            format!("http://{proxy}"),
            "proxy asked for authentication (\"HTTP/1.1 407 Proxy Authentication Required\")",
        ),
        (
            4,
            format!("http://u:wrong@{proxy}"),
            "the user name or password was refused",
        ),
    ] {
        rig.open(id, client(&server.to_string(), &url));
        let EventKind::Failed { peer: None, error } = rig
            .until(id, |k| matches!(k, EventKind::Failed { .. }))
            .await
        else {
            unreachable!()
        };
        assert!(error.to_string().contains(want), "{error}");
    }

    let endless = http_proxy(Http::Endless).await;
    rig.open(5, client(&server.to_string(), &format!("http://{endless}")));
    let EventKind::Failed { peer: None, error } = rig
        .until(5, |k| matches!(k, EventKind::Failed { .. }))
        .await
    else {
        unreachable!()
    };
    assert!(
        error
            .to_string()
            .contains("reply header is longer than 16384 bytes"),
        "{error}"
    );
    assert!(error.to_string().contains("HTTP/1.1 200 OK"), "{error}");
}

#[tokio::test]
async fn tls_goes_through_the_socks5_tunnel_to_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();

    let mut rig = Rig::new();
    rig.open(
        1,
        EndpointSpec::new(
            "tls server",
            EndpointKind::TlsServer {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls: TlsServerSettings {
                    cert: Some(cert.clone()),
                    key: Some(key),
                    alpn: Vec::new(),
                },
            },
        )
        .with_reply(AutoReply::Echo),
    );
    let EventKind::Listening { local } = rig
        .until(1, |k| matches!(k, EventKind::Listening { .. }))
        .await
    else {
        unreachable!()
    };
    let asked = Arc::new(Mutex::new(Vec::new()));
    let proxy = socks5_proxy(Socks::Open(None), asked.clone()).await;
    // The target by name: the proxy resolves it, the certificate is checked for it.
    let target = format!("localhost:{}", local.port());
    let mut spec = EndpointSpec::new(
        "tls client",
        EndpointKind::TlsClient {
            remote: target.parse().unwrap(),
            tls: TlsClientSettings {
                ca: vec![cert],
                ..Default::default()
            },
        },
    );
    spec.proxy = Some(Proxy::parse(&format!("socks5://{proxy}")).unwrap());
    rig.open(2, spec);
    rig.until(2, |k| matches!(k, EventKind::TlsHandshake { .. }))
        .await;
    rig.send(2, b"secret through socks");
    assert_eq!(rig.received(2, 20).await, b"secret through socks");
    assert_eq!(rig.received(1, 20).await, b"secret through socks");
    assert_eq!(*asked.lock().unwrap(), [format!("domain {target}")]);
}

fn reconnecting(
    remote: SocketAddr,
    attempts: Option<u32>,
    min_ms: u64,
    max_ms: u64,
) -> EndpointSpec {
    let mut spec = EndpointSpec::new(
        "client",
        EndpointKind::TcpClient {
            remote: remote.into(),
        },
    );
    spec.reconnect = Some(Reconnect {
        attempts,
        min_ms,
        max_ms,
        jitter: true,
    });
    spec
}

/// The log rows of endpoint `id` that are reconnect attempts.
fn attempt_rows(seen: &[Event], id: u64) -> usize {
    let mut log = TrafficLog::new();
    let endpoint = log.endpoint_index("client");
    for event in seen.iter().filter(|e| e.id == EndpointId(id)) {
        event.record(&mut log, endpoint);
    }
    (0..log.len())
        .filter_map(|i| log.entry(i))
        .filter(|e| {
            e.kind == EntryKind::Note
                && log
                    .bytes_of(e)
                    .starts_with(format!("{RECONNECT_NOTE}attempt").as_bytes())
        })
        .count()
}

#[tokio::test]
async fn a_client_reconnects_until_the_server_keeps_it() {
    // Closes the first two connections at once, then echoes on the third.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for n in 1..=3 {
            let Ok((mut c, _)) = listener.accept().await else {
                return;
            };
            if n < 3 {
                drop(c);
                continue;
            }
            let mut buf = [0u8; 64];
            let _ = tokio::time::timeout(LIMIT, async {
                let n = c.read(&mut buf).await?;
                c.write_all(&buf[..n]).await?;
                c.read(&mut buf).await
            })
            .await;
        }
    });

    let mut rig = Rig::new();
    rig.open(1, reconnecting(server, Some(5), 5, 40));
    for _ in 0..3 {
        rig.until(1, |k| matches!(k, EventKind::Connected { .. }))
            .await;
    }
    rig.send(1, b"third time");
    assert_eq!(rig.received(1, 10).await, b"third time");
    assert_eq!(attempt_rows(&rig.seen, 1), 2);

    // A close by the person is the end: no attempt follows.
    rig.engine.send(Command::Close {
        id: EndpointId(1),
        abort: false,
    });
    rig.until(1, |k| *k == EventKind::Stopped).await;
    assert_eq!(attempt_rows(&rig.seen, 1), 2);
}

#[tokio::test]
async fn attempts_run_out_and_a_stop_during_the_wait_is_prompt() {
    // Nothing listens: each attempt is refused, then the client gives up.
    let port = free_port();
    let nowhere: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut rig = Rig::new();
    rig.open(1, reconnecting(nowhere, Some(2), 1, 4));
    rig.send(1, b"never");
    let EventKind::Failed { peer: None, error } = rig
        .until(1, |k| matches!(k, EventKind::Failed { peer: None, .. }))
        .await
    else {
        unreachable!()
    };
    assert!(
        error.to_string().contains("gave up after 2 attempts"),
        "{error}"
    );
    rig.until(1, |k| *k == EventKind::Stopped).await;
    assert_eq!(attempt_rows(&rig.seen, 1), 2);
    let refusals = rig
        .seen
        .iter()
        .filter(|e| {
            e.id == EndpointId(1)
                && matches!(&e.kind, EventKind::Failed { peer: Some(0), error } if error.operation == sockbench::engine::Operation::Connect)
        })
        .count();
    assert_eq!(refusals, 2, "each attempt's failure is logged");
    // The payload that waited for a connection is said to be lost.
    assert!(
        rig.seen.iter().any(|e| e.id == EndpointId(1)
            && matches!(&e.kind, EventKind::Failed { peer: Some(0), error }
                if error.message.contains("send 5 bytes") && error.message.contains("gave up"))),
        "{:#?}",
        rig.seen
    );

    // A wait of an hour: Stop ends it at once (the bounded wait of `until`).
    rig.open(2, reconnecting(nowhere, None, 3_600_000, 3_600_000));
    rig.until(
        2,
        |k| matches!(k, EventKind::Note { text, .. } if text.starts_with(RECONNECT_NOTE)),
    )
    .await;
    rig.engine.send(Command::Close {
        id: EndpointId(2),
        abort: false,
    });
    rig.until(2, |k| *k == EventKind::Stopped).await;
    assert!(
        rig.notes(2)
            .iter()
            .any(|n| n == "reconnect: stopped while waiting"),
        "{:?}",
        rig.notes(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_goes_through_a_proxy_and_gives_up_reconnecting() {
    let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((mut c, _)) = echo.accept().await {
            let (mut r, mut w) = c.split();
            let _ = tokio::time::timeout(LIMIT, tokio::io::copy(&mut r, &mut w)).await;
        }
    });
    let asked = Arc::new(Mutex::new(Vec::new()));
    let proxy = socks5_proxy(Socks::Open(None), asked).await;
    let args = [
        "connect".to_owned(),
        "tcp".into(),
        echo_addr.to_string(),
        "--proxy".into(),
        format!("socks5://{proxy}"),
        "--send".into(),
        "hello via cli".into(),
        "--wait".into(),
        "0.5".into(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        common::sockbench(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("tunnel established to {echo_addr}")),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("hello via cli").count(),
        2,
        "sent and echoed: {stdout}"
    );

    let nowhere = format!("127.0.0.1:{}", free_port());
    let out = tokio::task::spawn_blocking(move || {
        common::sockbench(&[
            "connect",
            "tcp",
            &nowhere,
            "--reconnect",
            "2",
            "--backoff",
            "1ms..2ms",
        ])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert_eq!(stdout.matches("reconnect: attempt").count(), 2, "{stdout}");
    assert!(stderr.contains("gave up after 2 attempts"), "{stderr}");
}

/// An echo server on loopback for a few connections, each its own task.
async fn echo_many() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..8 {
            let Ok((mut c, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = c.split();
                let _ = tokio::time::timeout(LIMIT, tokio::io::copy(&mut r, &mut w)).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_export_goes_through_the_same_proxy() {
    if !common::python3() {
        return;
    }
    let echo = echo_many().await;
    let socks = socks5_proxy(
        Socks::Open(Some(("py", "th@n"))),
        Arc::new(Mutex::new(Vec::new())),
    )
    .await;
    let http = http_proxy(Http::NeedsBasicUP).await;
    let dir = tempfile::tempdir().unwrap();
    for (name, url) in [
        ("socks", format!("socks5://py:th%40n@{socks}")),
        ("http", format!("http://u:p@{http}")),
    ] {
        let file = dir.path().join(format!("{name}.ron"));
        let program = dir.path().join(format!("{name}.py"));
        let args: Vec<String> = [
            "connect",
            "tcp",
            &echo.to_string(),
            "--proxy",
            &url,
            "--send",
            "hello python\\n",
            "--wait",
            "0.3",
            "--save",
            file.to_str().unwrap(),
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let export: Vec<String> = [
            "export",
            file.to_str().unwrap(),
            "--to",
            "python",
            "-o",
            program.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let py = program.to_str().unwrap().to_owned();
        let out = tokio::task::spawn_blocking(move || {
            let strs = |v: &[String]| v.iter().map(|s| s.to_owned()).collect::<Vec<_>>();
            let a = strs(&args);
            let o = common::sockbench(&a.iter().map(String::as_str).collect::<Vec<_>>());
            assert_eq!(o.status.code(), Some(0), "{}", common::text(&o.stderr));
            let e = strs(&export);
            let o = common::sockbench(&e.iter().map(String::as_str).collect::<Vec<_>>());
            assert_eq!(o.status.code(), Some(0), "{}", common::text(&o.stderr));
            common::run("python3", &[&py])
        })
        .await
        .unwrap();
        let stdout = common::text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {stdout}{}",
            common::text(&out.stderr)
        );
        assert!(stdout.contains("connected to proxy"), "{name}: {stdout}");
        assert!(stdout.contains("tunnel established to"), "{name}: {stdout}");
        assert!(
            stdout.contains("received b'hello python\\n'"),
            "{name}: {stdout}"
        );
    }
}
