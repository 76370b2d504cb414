//! The engine: real sockets on tokio, driven by [`Command`]s, reporting [`Event`]s.
//!
//! ```text
//!  caller ── Command (unbounded, never blocks) ──▶ supervisor ──▶ one task per endpoint
//!  caller ◀── Event (unbounded) + wake() ────────── every task      └─▶ one task per peer
//! ```
//!
//! The engine knows nothing of egui. Whoever starts it passes a [`Wake`]
//! callback, called when events are waiting after the caller last looked (so a
//! flood of events costs one wake, not one per event): the window asks for a
//! repaint, tests count calls, the command line passes a no-op.

mod conn;
pub mod event;
mod net;
pub mod os_tcp;
pub mod replay;
mod reply;
mod tcp;
pub mod tls;
mod udp;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use event::{EndpointId, Event, EventKind, NetError, Operation, PeerId, classify};
pub use replay::{ReplayOptions, ReplayPace};

use crate::model::replay::EndpointPlan;
use crate::model::{EndpointKind, EndpointSpec, ErrorKind, HostPort};

/// Called by the engine when new events wait to be drained.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// A wake that does nothing (the command line reads events with `recv().await`).
pub fn no_wake() -> Wake {
    Arc::new(|| {})
}

/// How long shutdown waits for endpoint tasks before giving up on them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(800);

/// How long an orderly close waits for the peer to close its side too.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What the engine is asked to do.
#[derive(Clone, Debug)]
pub enum Command {
    /// Start an endpoint. If one with this id still runs, the request fails with
    /// a `Failed` event and the running one is left alone.
    Open { id: EndpointId, spec: EndpointSpec },
    /// These commands, routed in order before any endpoint they open starts:
    /// an Open with the Sends behind it queues its payloads before the
    /// endpoint connects, so a peer that closes at once cannot cut them off.
    Batch(Vec<Command>),
    /// Write a payload. Writes to one peer happen in the order they were sent.
    Send {
        id: EndpointId,
        to: Target,
        bytes: Vec<u8>,
    },
    /// Write a payload in `writes` pieces, `gap` apart (a teaching demo: TCP
    /// is a byte stream, the receiver's reads need not match the writes).
    /// Over UDP each piece is its own datagram.
    SendSplit {
        id: EndpointId,
        to: Target,
        bytes: Vec<u8>,
        writes: u32,
        gap: Duration,
    },
    /// Turn TCP_NODELAY on or off on the endpoint's connections, now and for new ones.
    SetNoDelay { id: EndpointId, on: bool },
    /// Shut down the sending side of one TCP connection (half-close): the peer
    /// reads end-of-stream and can still send to us.
    HalfClose { id: EndpointId, peer: PeerId },
    /// End one connection of a TCP server: in order (queued writes first, then
    /// FIN), or abort it with a reset.
    Disconnect {
        id: EndpointId,
        peer: PeerId,
        abort: bool,
    },
    /// Stop an endpoint: in order (flush queued writes, close every connection,
    /// wait briefly for peers to close theirs), or abort every connection.
    Close { id: EndpointId, abort: bool },
    /// Replay a recorded endpoint (see [`replay`]); it runs as endpoint `id` and
    /// stops by itself when the plan is played. Pause, step and speed go
    /// through the options' [`ReplayPace`], shared by the run's endpoints.
    Replay {
        id: EndpointId,
        plan: Box<EndpointPlan>,
        options: ReplayOptions,
    },
    /// Stop everything; the engine ends within [`SHUTDOWN_GRACE`].
    Shutdown,
    /// Starts endpoint `id` as a task that panics at once: tests check that a
    /// bug in a task becomes a `Failed` event, not a hang.
    #[cfg(test)]
    InjectPanic { id: EndpointId },
}

/// Where a payload goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A TCP client's connection, a UDP socket's default remote, or a TCP
    /// server's only peer.
    Default,
    /// One peer of the endpoint.
    Peer(PeerId),
    /// Every connected peer of a TCP server, or every known peer of a UDP socket.
    AllPeers,
    /// Any address, from a UDP socket.
    Address(HostPort),
}

/// The caller's handle: send commands, never blocking.
pub struct Engine {
    commands: mpsc::UnboundedSender<Command>,
    supervisor: Option<tokio::task::JoinHandle<()>>,
}

/// The caller's end of the event stream.
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
    pending: Arc<AtomicBool>,
}

impl Events {
    /// The next waiting event, if any. Never blocks.
    pub fn try_recv(&mut self) -> Option<Event> {
        // Cleared before looking, so an event sent after this look wakes again.
        self.pending.store(false, Ordering::Release);
        self.rx.try_recv().ok()
    }

    /// Waits for the next event; `None` once the engine has stopped and every
    /// event has been read.
    pub async fn recv(&mut self) -> Option<Event> {
        self.pending.store(false, Ordering::Release);
        self.rx.recv().await
    }
}

/// The time now, from one monotonic clock for the whole process: the wall
/// clock read once, at the first call, plus the time elapsed since on a
/// monotonic `Instant`. Stamps taken in different tasks therefore never run
/// backwards (the wall clock itself can, when it is set or slewed), so an
/// answer is never stamped before the payload that caused it.
pub fn now() -> DateTime<Utc> {
    static ANCHOR: OnceLock<(std::time::Instant, DateTime<Utc>)> = OnceLock::new();
    let (instant, wall) = ANCHOR.get_or_init(|| (std::time::Instant::now(), Utc::now()));
    let elapsed = chrono::TimeDelta::from_std(instant.elapsed()).unwrap_or(chrono::TimeDelta::MAX);
    wall.checked_add_signed(elapsed).unwrap_or(*wall)
}

/// Emits events and wakes the caller once per batch.
#[derive(Clone)]
pub(crate) struct Emitter {
    tx: mpsc::UnboundedSender<Event>,
    wake: Wake,
    pending: Arc<AtomicBool>,
    /// Held while an event is stamped and queued, so events reach the caller
    /// in the order of their stamps, whichever tasks emit them.
    order: Arc<Mutex<()>>,
}

impl Emitter {
    pub(crate) fn emit(&self, id: EndpointId, kind: EventKind) {
        let sent = {
            // A panic elsewhere while holding this lock leaves nothing half-done.
            let _order = self.order.lock().unwrap_or_else(|p| p.into_inner());
            let event = Event {
                id,
                at: now(),
                kind,
            };
            self.tx.send(event).is_ok()
        };
        if sent && !self.pending.swap(true, Ordering::AcqRel) {
            (self.wake)();
        }
    }

    pub(crate) fn failed(&self, id: EndpointId, peer: Option<PeerId>, error: NetError) {
        self.emit(id, EventKind::Failed { peer, error });
    }
}

impl Engine {
    /// Starts the engine on `runtime`. Events come out of the returned [`Events`].
    pub fn start(runtime: &tokio::runtime::Handle, wake: Wake) -> (Engine, Events) {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicBool::new(false));
        let emitter = Emitter {
            tx: event_tx,
            wake,
            pending: pending.clone(),
            order: Arc::new(Mutex::new(())),
        };
        let supervisor = runtime.spawn(supervise(command_rx, emitter));
        (
            Engine {
                commands,
                supervisor: Some(supervisor),
            },
            Events {
                rx: event_rx,
                pending,
            },
        )
    }

    /// Queues a command. Never blocks; after shutdown, commands are dropped.
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// Asks the engine to stop everything, without waiting.
    pub fn request_shutdown(&self) {
        self.send(Command::Shutdown);
    }

    /// Stops everything and waits (at most about a second) until it has stopped.
    pub async fn shutdown(mut self) {
        self.send(Command::Shutdown);
        if let Some(handle) = self.supervisor.take() {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_millis(200), handle).await;
        }
    }
}

/// A running endpoint, as the supervisor sees it.
struct Running {
    commands: mpsc::UnboundedSender<EndpointCommand>,
    token: CancellationToken,
}

/// How a payload is written: in how many pieces, how far apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Split {
    pub writes: u32,
    pub gap: Duration,
}

impl Split {
    pub const WHOLE: Split = Split {
        writes: 1,
        gap: Duration::ZERO,
    };

    /// The pieces of `bytes`: `writes` nearly equal parts (none empty).
    pub fn pieces(self, bytes: &[u8]) -> Vec<&[u8]> {
        let n = (self.writes as usize).clamp(1, bytes.len().max(1));
        let size = bytes.len().div_ceil(n).max(1);
        if bytes.is_empty() {
            return vec![bytes];
        }
        bytes.chunks(size).collect()
    }
}

/// What an endpoint task is asked to do; the supervisor routes [`Command`]s here.
#[derive(Debug)]
pub(crate) enum EndpointCommand {
    Send {
        to: Target,
        bytes: Vec<u8>,
        split: Split,
    },
    SetNoDelay(bool),
    HalfClose {
        peer: PeerId,
    },
    Disconnect {
        peer: PeerId,
        abort: bool,
    },
    Close {
        abort: bool,
    },
}

async fn supervise(mut commands: mpsc::UnboundedReceiver<Command>, emitter: Emitter) {
    let root = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut endpoints: HashMap<EndpointId, Running> = HashMap::new();

    // Commands are taken in batches of what has arrived, and the endpoints a
    // batch opens start after the whole batch is routed: an Open and the Sends
    // queued right behind it reach the endpoint before it can connect, so its
    // first payloads are queued before anything the peer does (a FIN at once).
    let mut starting: Vec<Starting> = Vec::new();
    'batches: while let Some(first) = commands.recv().await {
        let mut next = Some(first);
        while let Some(command) = next.take().or_else(|| commands.try_recv().ok()) {
            if !route(command, &mut endpoints, &root, &emitter, &mut starting) {
                break 'batches;
            }
        }
        for task in starting.drain(..) {
            tracker.spawn(task);
        }
        // Forget endpoints whose tasks have ended, so the map stays small.
        endpoints.retain(|_, running| !running.commands.is_closed());
    }

    root.cancel();
    for running in endpoints.values() {
        running.token.cancel();
    }
    tracker.close();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await;
}

/// An endpoint task made by a batch of commands, spawned once the batch is routed.
type Starting = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Handles one command; false on Shutdown.
fn route(
    command: Command,
    endpoints: &mut HashMap<EndpointId, Running>,
    root: &CancellationToken,
    emitter: &Emitter,
    starting: &mut Vec<Starting>,
) -> bool {
    {
        let (id, routed) = match command {
            Command::Shutdown => return false,
            Command::Batch(commands) => {
                return commands
                    .into_iter()
                    .all(|c| route(c, endpoints, root, emitter, starting));
            }
            #[cfg(test)]
            Command::InjectPanic { id } => {
                start(endpoints, root, starting, emitter, id, |_, _, _| async {
                    panic!("injected by a test\nsecond line")
                });
                return true;
            }
            Command::Open { id, .. } | Command::Replay { id, .. } => {
                if let Some(running) = endpoints.get(&id)
                    && !running.commands.is_closed()
                {
                    emitter.failed(
                        id,
                        None,
                        NetError::new(
                            ErrorKind::Other,
                            Operation::Configure,
                            "this endpoint is already running; stop it first",
                        ),
                    );
                    return true;
                }
                start(
                    endpoints,
                    root,
                    starting,
                    emitter,
                    id,
                    move |rx, token, emitter| async move {
                        match command {
                            Command::Open { spec, .. } => {
                                run_endpoint(id, spec, rx, token, emitter).await
                            }
                            Command::Replay { plan, options, .. } => {
                                let ctx = net::EndpointCtx {
                                    id,
                                    options: plan.spec.options.clone(),
                                    reply: Arc::new(reply::Responder::new(
                                        &crate::model::AutoReply::Off,
                                    )),
                                    emitter,
                                    token,
                                };
                                replay::run(ctx, *plan, options, rx).await;
                            }
                            _ => {}
                        }
                    },
                );
                return true;
            }
            Command::Send { id, to, bytes } => (
                id,
                EndpointCommand::Send {
                    to,
                    bytes,
                    split: Split::WHOLE,
                },
            ),
            Command::SendSplit {
                id,
                to,
                bytes,
                writes,
                gap,
            } => (
                id,
                EndpointCommand::Send {
                    to,
                    bytes,
                    split: Split {
                        writes: writes.max(1),
                        gap,
                    },
                },
            ),
            Command::SetNoDelay { id, on } => (id, EndpointCommand::SetNoDelay(on)),
            Command::HalfClose { id, peer } => (id, EndpointCommand::HalfClose { peer }),
            Command::Disconnect { id, peer, abort } => {
                (id, EndpointCommand::Disconnect { peer, abort })
            }
            Command::Close { id, abort } => (id, EndpointCommand::Close { abort }),
        };
        let delivered = endpoints
            .get(&id)
            .is_some_and(|running| running.commands.send(routed).is_ok());
        if !delivered {
            endpoints.remove(&id);
            emitter.failed(
                id,
                None,
                NetError::new(
                    ErrorKind::Other,
                    Operation::Configure,
                    "the endpoint is not running: start it first",
                ),
            );
        }
        true
    }
}

/// Starts endpoint `id` as a task of `tracker`. A panic inside it (a bug) ends
/// the endpoint with one `Failed` event ("internal error: …") and cancels
/// what it started; `Stopped` follows in every case, so nobody waits forever.
fn start<F, Fut>(
    endpoints: &mut HashMap<EndpointId, Running>,
    root: &CancellationToken,
    starting: &mut Vec<Starting>,
    emitter: &Emitter,
    id: EndpointId,
    run: F,
) where
    F: FnOnce(mpsc::UnboundedReceiver<EndpointCommand>, CancellationToken, Emitter) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let token = root.child_token();
    endpoints.insert(
        id,
        Running {
            commands: tx,
            token: token.clone(),
        },
    );
    let emitter = emitter.clone();
    let task = run(rx, token.clone(), emitter.clone());
    starting.push(Box::pin(async move {
        if let Err(message) = net::catch_panic(task).await {
            token.cancel();
            emitter.failed(id, None, net::internal_error(&message));
        }
        emitter.emit(id, EventKind::Stopped);
    }));
}

async fn run_endpoint(
    id: EndpointId,
    spec: EndpointSpec,
    commands: mpsc::UnboundedReceiver<EndpointCommand>,
    token: CancellationToken,
    emitter: Emitter,
) {
    let ctx = net::EndpointCtx {
        id,
        options: spec.options.clone(),
        reply: Arc::new(reply::Responder::new(&spec.reply)),
        emitter,
        token,
    };
    match spec.kind {
        EndpointKind::TcpClient { remote } => tcp::client(ctx, remote, None, commands).await,
        EndpointKind::TcpServer { listen } => tcp::server(ctx, listen, None, commands).await,
        EndpointKind::TlsClient { remote, tls } => {
            tcp::client(ctx, remote, Some(tls), commands).await
        }
        EndpointKind::TlsServer { listen, tls } => {
            tcp::server(ctx, listen, Some(tls), commands).await
        }
        EndpointKind::Udp { bind, remote } => udp::socket(ctx, bind, remote, commands).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events of endpoint `id` up to its `Stopped`, bounded in time.
    async fn until_stopped(events: &mut Events, id: EndpointId) -> Vec<EventKind> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let event = tokio::time::timeout_at(deadline, events.recv())
                .await
                .expect("the endpoint stops in time, it does not hang")
                .expect("the engine runs");
            if event.id == id {
                let stopped = event.kind == EventKind::Stopped;
                seen.push(event.kind);
                if stopped {
                    return seen;
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_endpoint_fails_with_one_line_and_the_engine_goes_on() {
        let (engine, mut events) = Engine::start(&tokio::runtime::Handle::current(), no_wake());
        let id = EndpointId(7);
        engine.send(Command::InjectPanic { id });
        let seen = until_stopped(&mut events, id).await;
        let [EventKind::Failed { peer: None, error }, EventKind::Stopped] = seen.as_slice() else {
            panic!("expected a failure, then Stopped: {seen:?}");
        };
        assert!(
            error
                .message
                .starts_with("internal error: injected by a test second line"),
            "{}",
            error.message
        );
        assert!(!error.message.contains('\n'));
        assert!(error.is_internal());
        // A failure that ends a command-line run (exit 3), as any start failure.
        assert_eq!(error.operation, Operation::Configure);

        // The same id can start again, and the engine serves other endpoints.
        let spec = EndpointSpec::new(
            "u",
            EndpointKind::Udp {
                bind: Some("127.0.0.1:0".parse().unwrap()),
                remote: None,
            },
        );
        engine.send(Command::Open { id, spec });
        engine.send(Command::Close { id, abort: false });
        let seen = until_stopped(&mut events, id).await;
        assert!(
            matches!(seen.first(), Some(EventKind::Bound { .. })),
            "{seen:?}"
        );
        engine.shutdown().await;
    }

    #[tokio::test]
    async fn a_panicking_task_of_an_endpoint_stops_the_endpoint() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let ctx = net::EndpointCtx {
            id: EndpointId(3),
            options: Default::default(),
            reply: Arc::new(reply::Responder::new(&crate::model::AutoReply::Off)),
            emitter: Emitter {
                tx,
                wake: no_wake(),
                pending: Arc::new(AtomicBool::new(false)),
                order: Arc::new(Mutex::new(())),
            },
            token: CancellationToken::new(),
        };
        let token = ctx.token.clone();
        let task = tokio::spawn(net::guarded(ctx, async {
            panic!("boom");
        }));
        task.await.expect("the panic is caught, not passed on");
        assert!(token.is_cancelled(), "the endpoint is told to stop");
        let event = rx.try_recv().expect("a failure event");
        let EventKind::Failed { peer: None, error } = event.kind else {
            panic!("{event:?}");
        };
        assert!(
            error.message.starts_with("internal error: boom"),
            "{}",
            error.message
        );
    }

    #[test]
    fn stamps_never_run_backwards() {
        let mut last = now();
        for _ in 0..10_000 {
            let next = now();
            assert!(next >= last);
            last = next;
        }
        // Anchored to the wall clock.
        let drift = (Utc::now() - now()).num_seconds().abs();
        assert!(drift < 5, "{drift}");
    }
}
