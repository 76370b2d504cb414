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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
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

/// Emits events and wakes the caller once per batch.
#[derive(Clone)]
pub(crate) struct Emitter {
    tx: mpsc::UnboundedSender<Event>,
    wake: Wake,
    pending: Arc<AtomicBool>,
}

impl Emitter {
    pub(crate) fn emit(&self, id: EndpointId, kind: EventKind) {
        let event = Event {
            id,
            at: Utc::now(),
            kind,
        };
        if self.tx.send(event).is_ok() && !self.pending.swap(true, Ordering::AcqRel) {
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

    while let Some(command) = commands.recv().await {
        let (id, routed) = match command {
            Command::Shutdown => break,
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
                    continue;
                }
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
                tracker.spawn(async move {
                    match command {
                        Command::Open { spec, .. } => {
                            run_endpoint(id, spec, rx, token, emitter.clone()).await
                        }
                        Command::Replay { plan, options, .. } => {
                            let ctx = net::EndpointCtx {
                                id,
                                options: plan.spec.options.clone(),
                                reply: Arc::new(reply::Responder::new(
                                    &crate::model::AutoReply::Off,
                                )),
                                emitter: emitter.clone(),
                                token,
                            };
                            replay::run(ctx, *plan, options, rx).await;
                        }
                        _ => {}
                    }
                    emitter.emit(id, EventKind::Stopped);
                });
                continue;
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
