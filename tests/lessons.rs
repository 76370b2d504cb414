//! The shipped lessons 1–5, followed step by step over loopback five times in
//! a row: the real engine, the lesson's own checkpoints. Each step's action is
//! what the window does for the learner (the same engine commands); every
//! checkpoint must be earned by its own step and none early.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::free_port;
use sockbench::engine::{
    Command, EndpointId, Engine, Event, EventKind, Events, PeerId, Target, no_wake,
};
use sockbench::model::lesson::{Lesson, LessonAction};
use sockbench::model::log::TrafficLog;
use sockbench::model::{Direction, EndpointKind, EndpointSpec, Session};

/// The longest wait for one step's checkpoint.
const STEP_LIMIT: Duration = Duration::from_secs(20);

/// How long the events must stay quiet before "nothing more came" is believed.
const QUIET: Duration = Duration::from_millis(80);

/// What the learner does for a step.
enum Act {
    /// Start these endpoints, in order; each server is up before the next starts.
    Start(&'static [&'static str]),
    /// Stop the endpoint (in order) and wait until it has stopped.
    Stop(&'static str),
    /// Stop it, then start it again: a fresh connection.
    Restart(&'static str),
    /// Abort it (every connection reset).
    Abort(&'static str),
    /// These, one after the other.
    Many(Vec<Act>),
    /// Send these bytes from the endpoint, in `writes` writes `gap_ms` apart.
    Send {
        from: &'static str,
        bytes: Vec<u8>,
        writes: u32,
        gap_ms: u64,
    },
    /// Answer the last datagram the endpoint received, to its sender.
    Reply(&'static str, Vec<u8>),
    HalfClose(&'static str),
    NoDelay(&'static str),
    /// The step's own button (its [`LessonAction`]).
    Button,
    /// A program outside sockbench connects to the endpoint's address, sends, reads the echo.
    Program(&'static str),
    /// A step that shows what the previous action caused: its checkpoint may
    /// already be met by then, and needs no action of its own.
    Observe,
    /// The learner looks and ticks the step off.
    Tick,
}

struct Runner {
    engine: Engine,
    events: Events,
    log: TrafficLog,
    lesson: Lesson,
    ticked: Vec<Option<usize>>,
    specs: HashMap<String, EndpointSpec>,
    ids: HashMap<String, EndpointId>,
    names: HashMap<EndpointId, (String, u32)>,
    /// Where each server listens or socket is bound.
    local: HashMap<String, SocketAddr>,
    /// The last peer each endpoint received from.
    last_from: HashMap<String, PeerId>,
    stopped: HashMap<String, usize>,
    /// Listening, bound or connected since it last started.
    up: HashMap<String, bool>,
    next_id: u64,
}

impl Runner {
    /// Opens a shipped lesson with its fixed loopback port moved to a free one.
    fn open(file: &str) -> Runner {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sessions/lessons")
            .join(file);
        let session: Session = sockbench::persist::load(&path).expect("the lesson loads");
        let lesson = session.lesson.clone().expect("a lesson");
        let port = free_port();
        let mut specs = HashMap::new();
        let mut ids = HashMap::new();
        let mut names = HashMap::new();
        let mut log = TrafficLog::new();
        let mut next_id = 1;
        for (n, mut spec) in session.endpoints.into_iter().enumerate() {
            let moved = |hp: &mut sockbench::model::HostPort| {
                if hp.host == "127.0.0.1" && (7100..7200).contains(&hp.port) {
                    hp.port = port;
                }
            };
            match &mut spec.kind {
                EndpointKind::TcpClient { remote } | EndpointKind::TlsClient { remote, .. } => {
                    moved(remote)
                }
                EndpointKind::TcpServer { listen } | EndpointKind::TlsServer { listen, .. } => {
                    moved(listen)
                }
                EndpointKind::Udp { bind, remote } => {
                    bind.iter_mut().for_each(moved);
                    remote.iter_mut().for_each(moved);
                }
                EndpointKind::Relay {
                    listen, upstream, ..
                } => {
                    moved(listen);
                    moved(upstream);
                }
                // Lessons use no socket paths.
                EndpointKind::UnixClient { .. }
                | EndpointKind::UnixServer { .. }
                | EndpointKind::UnixDatagram { .. } => {}
            }
            let id = EndpointId(n as u64 + 1);
            let index = log.endpoint_index(&spec.name);
            names.insert(id, (spec.name.clone(), index));
            ids.insert(spec.name.clone(), id);
            specs.insert(spec.name.clone(), spec);
            next_id = n as u64 + 2;
        }
        let (engine, events) = Engine::start(&tokio::runtime::Handle::current(), no_wake());
        Runner {
            engine,
            events,
            log,
            ticked: vec![None; lesson.steps.len()],
            lesson,
            specs,
            ids,
            names,
            local: HashMap::new(),
            last_from: HashMap::new(),
            stopped: HashMap::new(),
            up: HashMap::new(),
            next_id,
        }
    }

    fn id(&self, name: &str) -> EndpointId {
        self.ids[name]
    }

    fn record(&mut self, event: Event) {
        let Some((name, index)) = self.names.get(&event.id).cloned() else {
            return;
        };
        match &event.kind {
            EventKind::Listening { local } | EventKind::Bound { local } => {
                self.local.insert(name.clone(), *local);
                self.up.insert(name.clone(), true);
            }
            EventKind::Connected { .. } => {
                self.up.insert(name.clone(), true);
            }
            EventKind::Traffic {
                peer,
                dir: Direction::Received,
                ..
            } => {
                self.last_from.insert(name.clone(), *peer);
            }
            EventKind::Stopped => {
                *self.stopped.entry(name.clone()).or_default() += 1;
                self.up.insert(name.clone(), false);
            }
            _ => {}
        }
        event.record(&mut self.log, index);
    }

    /// Takes events until `done` holds (bounded by [`STEP_LIMIT`]).
    async fn until(&mut self, what: &str, mut done: impl FnMut(&Runner) -> bool) {
        let deadline = tokio::time::Instant::now() + STEP_LIMIT;
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: waited too long for {what} (steps done: {:?}); the log:\n{}",
                self.lesson.title,
                self.done(),
                self.dump()
            );
            if let Ok(Some(event)) =
                tokio::time::timeout(Duration::from_millis(50), self.events.recv()).await
            {
                self.record(event);
            }
        }
    }

    /// Takes events until none came for [`QUIET`] (bounded).
    async fn settle(&mut self) {
        for _ in 0..200 {
            match tokio::time::timeout(QUIET, self.events.recv()).await {
                Ok(Some(event)) => self.record(event),
                _ => return,
            }
        }
    }

    fn done(&self) -> Vec<bool> {
        self.lesson.done(&self.log, &self.ticked)
    }

    fn dump(&self) -> String {
        (0..self.log.len())
            .filter_map(|i| self.log.entry(i).map(|e| (i, e)))
            .map(|(i, e)| {
                format!(
                    "{i:3} {:14} {:?} {:?}\n",
                    self.log.endpoint_name(e),
                    e.kind,
                    String::from_utf8_lossy(self.log.bytes_of(e))
                )
            })
            .collect()
    }

    /// Starts the endpoint (as the window does, under a fresh engine id) and
    /// waits until it is up, or has failed and stopped.
    async fn start(&mut self, name: &str) {
        let spec = self.specs[name].clone();
        let id = EndpointId(self.next_id);
        self.next_id += 1;
        let index = self.log.endpoint_index(name);
        self.names.insert(id, (name.to_owned(), index));
        self.ids.insert(name.to_owned(), id);
        let stops = self.stopped.get(name).copied().unwrap_or(0);
        self.up.insert(name.to_owned(), false);
        self.engine.send(Command::Open {
            id,
            spec: Box::new(spec),
        });
        let name = name.to_owned();
        self.until("the endpoint to start, or to fail and stop", |r| {
            r.up.get(&name).copied().unwrap_or(false)
                || r.stopped.get(&name).copied().unwrap_or(0) > stops
        })
        .await;
    }

    async fn stop(&mut self, name: &str, abort: bool) {
        let stops = self.stopped.get(name).copied().unwrap_or(0);
        self.engine.send(Command::Close {
            id: self.id(name),
            abort,
        });
        let name = name.to_owned();
        self.until("the endpoint to stop", |r| {
            r.stopped.get(&name).copied().unwrap_or(0) > stops
        })
        .await;
    }

    async fn act(&mut self, step: usize, act: &Act) {
        match act {
            Act::Many(acts) => {
                for act in acts {
                    Box::pin(self.act(step, act)).await;
                }
            }
            Act::Start(names) => {
                for name in names.iter() {
                    self.start(name).await;
                }
            }
            Act::Stop(name) => self.stop(name, false).await,
            Act::Abort(name) => self.engine.send(Command::Close {
                id: self.id(name),
                abort: true,
            }),
            Act::Restart(name) => {
                self.stop(name, false).await;
                self.start(name).await;
            }
            Act::Send {
                from,
                bytes,
                writes,
                gap_ms,
            } => {
                let id = self.id(from);
                let to = match self.specs[*from].kind {
                    EndpointKind::TcpServer { .. } | EndpointKind::TlsServer { .. } => {
                        Target::AllPeers
                    }
                    _ => Target::Default,
                };
                self.engine.send(if *writes > 1 {
                    Command::SendSplit {
                        id,
                        to,
                        bytes: bytes.clone(),
                        writes: *writes,
                        gap: Duration::from_millis(*gap_ms),
                    }
                } else {
                    Command::Send {
                        id,
                        to,
                        bytes: bytes.clone(),
                    }
                });
            }
            Act::Reply(name, bytes) => {
                let peer = self.last_from[*name];
                self.engine.send(Command::Send {
                    id: self.id(name),
                    to: Target::Peer(peer),
                    bytes: bytes.clone(),
                });
            }
            Act::HalfClose(name) => self.engine.send(Command::HalfClose {
                id: self.id(name),
                peer: 0,
            }),
            Act::NoDelay(name) => self.engine.send(Command::SetNoDelay {
                id: self.id(name),
                on: true,
            }),
            Act::Button => match self.lesson.steps[step].action.clone() {
                Some(LessonAction::PauseReads { endpoint, millis }) => {
                    self.engine.send(Command::PauseReads {
                        id: self.id(&endpoint),
                        pause: Duration::from_millis(u64::from(millis)),
                    })
                }
                None => panic!("step {} has no button", step + 1),
            },
            Act::Program(server) => {
                let address = self.local[*server];
                let program = tokio::task::spawn_blocking(move || {
                    let mut s = std::net::TcpStream::connect(address).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    s.write_all(b"hello from a program\n").unwrap();
                    let mut echo = [0u8; 21];
                    s.read_exact(&mut echo).unwrap();
                    echo
                });
                assert_eq!(&program.await.unwrap(), b"hello from a program\n");
            }
            Act::Observe => {}
            Act::Tick => self.ticked[step] = Some(self.log.len()),
        }
    }

    /// Follows the lesson: each step's action, then its checkpoint; no step
    /// that needs an action of its own is done before that action.
    async fn follow(mut self, acts: Vec<Act>) {
        assert_eq!(
            acts.len(),
            self.lesson.steps.len(),
            "{}: one action per step",
            self.lesson.title
        );
        for (i, act) in acts.iter().enumerate() {
            self.settle().await;
            let before = self.done();
            assert!(
                before[..i].iter().all(|d| *d),
                "{}: steps before {} undone: {before:?}",
                self.lesson.title,
                i + 1
            );
            // Not earned early: the steps before are done (and steps are
            // followed in order), so only this step's action may earn it.
            if !matches!(act, Act::Observe) {
                assert!(
                    !before[i],
                    "{}: step {} was done before its action:\n{}",
                    self.lesson.title,
                    i + 1,
                    self.dump()
                );
            }
            self.act(i, act).await;
            self.until(&format!("step {}", i + 1), |r| r.done()[i])
                .await;
        }
        self.settle().await;
        assert!(self.done().iter().all(|d| *d));
        self.engine.shutdown().await;
    }
}

fn send(from: &'static str, bytes: &[u8]) -> Act {
    Act::Send {
        from,
        bytes: bytes.to_vec(),
        writes: 1,
        gap_ms: 0,
    }
}

const THREE_LINES: &[u8] = b"first line\nsecond line\nthird line\n";

fn lesson_1() -> Vec<Act> {
    vec![
        Act::Start(&["server"]),
        Act::Start(&["client"]),
        Act::Observe,
        send("client", b"hello, server\n"),
        Act::Observe,
        Act::HalfClose("client"),
        Act::Program("server"),
    ]
}

fn lesson_2() -> Vec<Act> {
    vec![
        Act::Start(&["receiver", "sender"]),
        Act::Button,
        Act::Send {
            from: "sender",
            bytes: THREE_LINES.to_vec(),
            writes: 6,
            gap_ms: 0,
        },
        Act::Observe,
        Act::Tick,
        Act::Send {
            from: "sender",
            bytes: THREE_LINES.to_vec(),
            writes: 6,
            gap_ms: 300,
        },
        Act::NoDelay("sender"),
        Act::Restart("sender"),
        // Sent twice, each framed: 00 04 "ping".
        Act::Many(vec![
            send("sender", b"\x00\x04ping"),
            send("sender", b"\x00\x04ping"),
        ]),
    ]
}

fn lesson_3() -> Vec<Act> {
    vec![
        Act::Many(vec![Act::Start(&["sender"]), send("sender", b"ping\n")]),
        Act::Start(&["receiver"]),
        send("sender", b"ping\n"),
        Act::Reply("receiver", b"pong\n".to_vec()),
        Act::Stop("receiver"),
        send("sender", b"ping\n"),
    ]
}

fn lesson_4() -> Vec<Act> {
    vec![
        Act::Start(&["client"]),
        Act::Start(&["server", "second server"]),
        Act::Start(&["unknown host"]),
        Act::Start(&["client"]),
        Act::Abort("server"),
    ]
}

fn lesson_5() -> Vec<Act> {
    vec![
        Act::Start(&["web server", "you"]),
        send("you", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
        Act::Observe,
        send("you", b"HELLO\r\n"),
        Act::Tick,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lessons_one_to_five_five_times_every_checkpoint_earned_by_its_step() {
    for round in 0..5 {
        for (file, acts) in [
            ("1-first-tcp-echo.ron", lesson_1()),
            ("2-tcp-is-a-stream.ron", lesson_2()),
            ("3-udp-has-no-connection.ron", lesson_3()),
            ("4-when-things-fail.ron", lesson_4()),
            ("5-text-protocol-by-hand.ron", lesson_5()),
        ] {
            eprintln!("round {}: {file}", round + 1);
            Runner::open(file).follow(acts).await;
        }
    }
}
