//! Rules answer messages, not reads: over loopback, a request written in two
//! pieces with a pause between still meets its rule under every framing;
//! captures, states, hit counts and the maximum message length.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockbench::engine::{Command, EndpointId, Engine, Event, EventKind, no_wake};
use sockbench::model::endpoint::RegexText;
use sockbench::model::framing::ReceiveFraming;
use sockbench::model::{AutoReply, EndpointKind, EndpointSpec, Rule, Trigger};

const LIMIT: Duration = Duration::from_secs(10);

/// A TCP server on loopback with `spec`'s rules; every event is kept.
struct Server {
    engine: Engine,
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Event>>>,
}

impl Server {
    async fn start(mut spec: EndpointSpec) -> Server {
        spec.kind = EndpointKind::TcpServer {
            listen: "127.0.0.1:0".parse().unwrap(),
        };
        let (engine, mut events) = Engine::start(&tokio::runtime::Handle::current(), no_wake());
        engine.send(Command::Open {
            id: EndpointId(1),
            spec: Box::new(spec),
        });
        let addr = tokio::time::timeout(LIMIT, async {
            loop {
                let event = events.recv().await.expect("the engine stopped");
                match event.kind {
                    EventKind::Listening { local } => return local,
                    EventKind::Failed { error, .. } => panic!("no listen: {error:?}"),
                    _ => {}
                }
            }
        })
        .await
        .expect("listening in time");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = seen.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                keep.lock().unwrap().push(event);
            }
        });
        Server { engine, addr, seen }
    }

    /// The notes the server wrote so far.
    fn notes(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Note { text, .. } | EventKind::RuleMatched { text, .. } => {
                    Some(text.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// Waits (bounded) until a note contains `text`.
    async fn note(&self, text: &str) -> String {
        for _ in 0..200 {
            if let Some(n) = self.notes().into_iter().find(|n| n.contains(text)) {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no note with {text:?}; notes: {:#?}", self.notes())
    }
}

fn spec(framing: &str, rules: Vec<Rule>) -> EndpointSpec {
    let mut spec = EndpointSpec::new(
        "server",
        EndpointKind::TcpServer {
            listen: "127.0.0.1:0".parse().unwrap(),
        },
    )
    .with_reply(AutoReply::Rules(rules));
    spec.framing = ReceiveFraming::parse(framing).unwrap();
    spec
}

fn regex(re: &str) -> Trigger {
    Trigger::Regex(RegexText::new(re).unwrap())
}

/// A client that writes each piece in its own write (a pause between, Nagle
/// off), then reads exactly `want` bytes back.
async fn exchange(addr: SocketAddr, pieces: Vec<Vec<u8>>, want: usize) -> Vec<u8> {
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        for piece in pieces {
            s.write_all(&piece).unwrap();
            std::thread::sleep(Duration::from_millis(60));
        }
        let mut got = vec![0; want];
        s.read_exact(&mut got).unwrap();
        got
    })
    .await
    .unwrap()
}

/// The request framed for `framing`.
fn framed(framing: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let len = body.len();
    match framing {
        "line" => return [body, b"\n"].concat(),
        "crlf" => return [body, b"\r\n"].concat(),
        "delim:00" => return [body, b"\0"].concat(),
        "len:1" => out.push(len as u8),
        "len:2be" => out.extend((len as u16).to_be_bytes()),
        "len:2le" => out.extend((len as u16).to_le_bytes()),
        "len:4be" => out.extend((len as u32).to_be_bytes()),
        "len:4le+incl" => out.extend((len as u32 + 4).to_le_bytes()),
        other => panic!("{other}"),
    }
    out.extend_from_slice(body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_split_across_writes_meets_its_rule_under_each_framing() {
    for framing in [
        "line",
        "crlf",
        "delim:00",
        "len:1",
        "len:2be",
        "len:2le",
        "len:4be",
        "len:4le+incl",
    ] {
        let server = Server::start(spec(
            framing,
            vec![Rule::new(regex(r"^GET (\S+) HTTP/1\.0$"), "got $1\n")],
        ))
        .await;
        let request = framed(framing, b"GET /index.html HTTP/1.0");
        // Split inside the prefix or the word, so neither read alone is a message.
        let (a, b) = request.split_at(if framing.starts_with("len:4") { 2 } else { 6 });
        let got = exchange(server.addr, vec![a.to_vec(), b.to_vec()], 16).await;
        assert_eq!(got, b"got /index.html\n", "under {framing}");
        server.engine.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_framing_still_answers_each_read() {
    let server = Server::start(spec("raw", vec![Rule::new(Trigger::Always, "ok\n")])).await;
    let got = exchange(server.addr, vec![b"one".to_vec(), b"two".to_vec()], 6).await;
    assert_eq!(got, b"ok\nok\n");
    server.engine.shutdown().await;
}

/// CRC-32 (ISO-HDLC) bit by bit: the test's own oracle.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_with_a_capture_and_placeholders_over_loopback() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926, "the oracle itself");
    let rule = Rule::new(
        regex(r"^GET (?P<key>\w+)$"),
        "${key}=$$${counter:width=3} ${crc32:HEX}\n",
    );
    let server = Server::start(spec("line", vec![rule])).await;
    let line = |key: &str, n: u32| {
        let head = format!("{key}=${n:03} ");
        format!("{head}{:08X}\n", crc32(head.as_bytes())).into_bytes()
    };
    let want = [line("alpha", 1), line("be", 2)].concat();
    let got = exchange(
        server.addr,
        vec![b"GET al".to_vec(), b"pha\nGET be\n".to_vec()],
        want.len(),
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    server.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_then_command_with_hits_counted() {
    let mut login = Rule::new(regex(r"^LOGIN (?P<user>\w+)$"), "hello ${user}\n");
    login.name = "login".into();
    let mut list = Rule::new(Trigger::Exact("LIST".into()), "a b c\n");
    list.after = Some("login".into());
    let first = Rule::new(Trigger::Always, "login first\n");
    let server = Server::start(spec("line", vec![login, list, first])).await;

    let got = exchange(
        server.addr,
        vec![
            b"LIST\nLOG".to_vec(),
            b"IN bob\nLI".to_vec(),
            b"ST\n".to_vec(),
        ],
        "login first\nhello bob\na b c\n".len(),
    )
    .await;
    assert_eq!(got, b"login first\nhello bob\na b c\n");
    // A new connection has not logged in.
    let got = exchange(server.addr, vec![b"LIST\n".to_vec()], 12).await;
    assert_eq!(got, b"login first\n");
    assert!(
        server
            .note("rule 3 matched (hit 2)")
            .await
            .contains("hit 2")
    );
    server.note("rule 1 \"login\" matched (hit 1)").await;
    server.note("rule 2 matched (hit 1)").await;
    server.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_maximum_is_cut_and_noted() {
    let mut spec = spec(
        "line",
        vec![
            Rule::new(Trigger::Exact("ping".into()), "pong\n"),
            Rule::new(Trigger::StartsWith("xxxx".into()), "cut\n"),
        ],
    );
    spec.max_message = std::num::NonZeroU32::new(16);
    let server = Server::start(spec).await;
    let long = [vec![b'x'; 5000], b"\nping\n".to_vec()].concat();
    let (a, b) = long.split_at(3000);
    let got = exchange(server.addr, vec![a.to_vec(), b.to_vec()], 9).await;
    assert_eq!(got, b"cut\npong\n");
    let note = server.note("longer than the 16-byte maximum").await;
    assert!(note.contains("first 16 bytes"), "{note}");
    server.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_reply_keeps_its_order() {
    let mut slow = Rule::new(Trigger::Exact("slow".into()), "1\n");
    slow.delay_ms = Some(100);
    let fast = Rule::new(Trigger::Exact("fast".into()), "2\n");
    let server = Server::start(spec("line", vec![slow, fast])).await;
    let got = exchange(server.addr, vec![b"slow\nfast\n".to_vec()], 4).await;
    assert_eq!(got, b"1\n2\n");
    server.engine.shutdown().await;
}

#[test]
fn sessions_keep_rules_and_older_files_load_unchanged() {
    let path = std::path::Path::new("old.ron");
    let old = "(format: 1, endpoints: [(name: \"s\", kind: TcpServer(listen: \"127.0.0.1:0\"),\n reply: Rules([(when: Contains(Text(\"ping\")), reply: Text(\"pong\"))]))])\n";
    let session = sockbench::persist::from_str(old, path).unwrap();
    let s = &session.endpoints[0];
    assert_eq!(
        s.reply,
        AutoReply::Rules(vec![Rule::new(Trigger::Contains("ping".into()), "pong")])
    );
    assert!(s.framing.is_raw());
    assert_eq!(s.max_message, None);
    // Saved again, it is written as it was read: none of the new fields appear.
    let again = sockbench::persist::to_string(&session).unwrap();
    for field in ["framing", "max_message", "after", "delay_ms", "name: \"\""] {
        assert!(!again.contains(field), "{field} in {again}");
    }

    let mut login = Rule::new(regex(r"^LOGIN (\w+)"), "hi $1");
    login.name = "login".into();
    let mut cmd = Rule::new(
        Trigger::StartsWith(sockbench::model::Payload::new(vec![0, 0xff])),
        "",
    );
    cmd.after = Some("login".into());
    cmd.delay_ms = Some(20);
    let mut new = spec(
        "len:4le+incl",
        vec![login, cmd, Rule::new(Trigger::Exact("x".into()), "y")],
    );
    new.max_message = std::num::NonZeroU32::new(512);
    let mut session = session;
    session.endpoints = vec![new.clone()];
    let text = sockbench::persist::to_string(&session).unwrap();
    let back = sockbench::persist::from_str(&text, path).unwrap();
    assert_eq!(back.endpoints[0], new, "{text}");
}
