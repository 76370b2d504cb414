//! The engine: real sockets on tokio, driven by [`Command`]s, reporting [`Event`]s.
//!
//! ```text
//!  caller ── Command (never blocks; payloads bounded in bytes) ──▶ supervisor ──▶ one task per endpoint
//!  caller ◀── Event (batches; received bytes bounded) + wake() ── every task      └─▶ one task per peer
//! ```
//!
//! Every queue is bounded in bytes, so a flood never outgrows memory:
//!
//! - Received payloads waiting for the caller hold at most [`EVENT_BUDGET`]
//!   bytes. When the caller falls behind, a TCP connection stops reading its
//!   socket until the caller catches up, and TCP's own flow control slows the
//!   peer; UDP cannot be slowed, so a datagram that finds the budget full is
//!   dropped and counted ([`EventKind::Dropped`]), as are the kernel's drops
//!   where the system tells them.
//! - Each connection's outgoing queue holds at most [`OUT_QUEUE`] bytes. An
//!   echo to a peer that does not read waits for room, so the connection stops
//!   reading that peer; a payload the caller sends to a full queue fails with
//!   an event.
//! - Payloads the caller hands over with `Send` hold at most [`COMMAND_BUDGET`]
//!   bytes until a connection queues them; beyond it the send fails with an event.
//!
//! A read lands in one buffer ([`bytes::Bytes`]) that the event, the caller's
//! log and an echo share: one copy per byte.
//!
//! A relay ([`relay`]) is one more endpoint task: it accepts clients and
//! connects each to its upstream with the same connect, accept and TLS
//! functions as the TCP endpoints, and reports both directions as one peer.
//!
//! The engine knows nothing of egui. Whoever starts it passes a [`Wake`]
//! callback, called when events are waiting after the caller last looked (so a
//! flood of events costs one wake, not one per event): the window asks for a
//! repaint, tests count calls, the command line passes a no-op.

mod conn;
pub mod event;
pub mod intercept;
mod multicast;
mod net;
pub mod os_tcp;
pub mod proxy;
pub mod relay;
pub mod replay;
mod reply;
mod tcp;
pub mod tls;
mod udp;
mod unix;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use event::{
    DropCause, EndpointId, Event, EventKind, NetError, Operation, PeerId, UNIX_PEER, classify,
};
pub use replay::{ReplayOptions, ReplayPace};
pub use tcp::RECONNECT_NOTE;

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

/// How the note of a peer refused over `max_peers` begins (it is accepted and
/// closed at once, unserved).
pub const REFUSED_PEER: &str = "refused: ";

/// How long an orderly close waits for the peer to close its side too.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long clients started together with servers (the window's Start all,
/// a replay in the window or on the command line) wait for those servers to
/// listen before they start anyway and report what they find. One value for
/// every front end: it was written three times, as 3 and 5 seconds.
pub const SERVERS_GRACE: Duration = Duration::from_secs(5);

/// Received payload bytes that may wait for the caller to take their events.
/// Past it, TCP connections stop reading (the peer is slowed by TCP's flow
/// control) and UDP datagrams are dropped and counted.
pub const EVENT_BUDGET: usize = 16 * 1024 * 1024;

/// Payload bytes one connection's outgoing queue may hold. An echo to a peer
/// that does not read waits for room (and stops reading that peer meanwhile);
/// a payload the caller sends to a full queue fails with an event.
pub const OUT_QUEUE: usize = 4 * 1024 * 1024;

/// Payload bytes the caller's `Send` commands may hold inside the engine
/// before a connection (or a UDP socket) takes them.
pub const COMMAND_BUDGET: usize = 64 * 1024 * 1024;

/// What the engine is asked to do.
#[derive(Clone, Debug)]
pub enum Command {
    /// Start an endpoint. If one with this id still runs, the request fails with
    /// a `Failed` event and the running one is left alone.
    /// (The spec is boxed: every queued Send would otherwise be as large.)
    Open {
        id: EndpointId,
        spec: Box<EndpointSpec>,
    },
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
    /// Stop reading the endpoint's open TCP connections for `pause` (zero:
    /// read again now). What arrives meanwhile waits in the kernel's receive
    /// buffer, so several writes come back as one read (a teaching demo that
    /// works every time). Each connection says so in a note, and again when
    /// it reads again.
    PauseReads { id: EndpointId, pause: Duration },
    /// Join (`join`) or leave a multicast group on a running UDP socket, on
    /// the interface its options name; a note or a failure says how it went.
    Multicast {
        id: EndpointId,
        group: std::net::IpAddr,
        join: bool,
    },
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
    /// Hold (or stop holding) what a relay reads in direction `way`: held
    /// reads wait for [`Command::Decide`]; turning the hold off forwards
    /// them in order (see [`intercept`]).
    SetHold {
        id: EndpointId,
        way: crate::model::impair::Way,
        on: bool,
    },
    /// Forward (as read or edited) or drop held reads of a relay.
    Decide {
        id: EndpointId,
        way: crate::model::impair::Way,
        pick: intercept::Pick,
        verdict: intercept::Verdict,
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
    /// Any socket name (a path or `@name`), from a Unix datagram socket.
    UnixPath(crate::model::UnixPath),
}

/// The caller's handle: send commands, never blocking.
pub struct Engine {
    commands: mpsc::UnboundedSender<(Command, Option<OwnedSemaphorePermit>)>,
    /// [`COMMAND_BUDGET`]: the bytes of payloads sent but not yet queued by a connection.
    budget: Arc<Semaphore>,
    /// Reports a send refused for want of room.
    emitter: Emitter,
    supervisor: Option<tokio::task::JoinHandle<()>>,
}

/// Events as they travel: a batch (many reads of one turn) costs one channel
/// message and one wake. Each event carries the budget it holds (the bytes of
/// a received payload), given back when the caller takes the event.
enum Batch {
    One(Event, u32),
    Many(Vec<(Event, u32)>),
}

/// The caller's end of the event stream.
pub struct Events {
    rx: mpsc::UnboundedReceiver<Batch>,
    /// Events of a batch not yet taken.
    ready: VecDeque<(Event, u32)>,
    pending: Arc<AtomicBool>,
    /// [`EVENT_BUDGET`]: permits are the received bytes that may wait here.
    budget: Arc<Semaphore>,
}

impl Events {
    /// The next waiting event, if any. Never blocks.
    pub fn try_recv(&mut self) -> Option<Event> {
        // Cleared before looking, so an event sent after this look wakes again.
        self.pending.store(false, Ordering::Release);
        if self.ready.is_empty() {
            let batch = self.rx.try_recv().ok()?;
            self.unpack(batch);
        }
        self.take()
    }

    /// Waits for the next event; `None` once the engine has stopped and every
    /// event has been read.
    pub async fn recv(&mut self) -> Option<Event> {
        self.pending.store(false, Ordering::Release);
        if self.ready.is_empty() {
            let batch = self.rx.recv().await?;
            self.unpack(batch);
        }
        self.take()
    }

    /// Received payload bytes whose events wait to be taken (at most
    /// [`EVENT_BUDGET`]; when it is reached, the engine stops reading).
    pub fn queued_bytes(&self) -> usize {
        EVENT_BUDGET.saturating_sub(self.budget.available_permits())
    }

    fn unpack(&mut self, batch: Batch) {
        match batch {
            Batch::One(event, charge) => self.ready.push_back((event, charge)),
            Batch::Many(events) => self.ready.extend(events),
        }
    }

    /// The next ready event; its bytes leave the budget, so reading resumes.
    fn take(&mut self) -> Option<Event> {
        let (event, charge) = self.ready.pop_front()?;
        if charge > 0 {
            self.budget.add_permits(charge as usize);
        }
        Some(event)
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        // Nobody reads any more: readers waiting for room must not wait forever.
        self.budget.close();
    }
}

/// Raises this process's soft limit of open descriptors to its hard limit, as
/// servers do, so thousands of peers (one descriptor each) do not fail on the
/// default soft limit (often 1024). Returns the limit now in force (soft, hard),
/// or `None` where the system does not say. Failing to raise it is no error:
/// accept failures are then backed off and reported.
pub fn raise_open_files_limit() -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        // libc rather than a crate for two calls: getrlimit and setrlimit.
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a valid pointer to an rlimit.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return None;
        }
        // macOS refuses a soft limit above OPEN_MAX even when the hard one is unlimited.
        #[cfg(target_os = "macos")]
        let wanted = limit.rlim_max.min(libc::OPEN_MAX as libc::rlim_t);
        #[cfg(not(target_os = "macos"))]
        let wanted = limit.rlim_max;
        if limit.rlim_cur < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: limit.rlim_max,
            };
            // SAFETY: a valid pointer to an rlimit.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                limit.rlim_cur = wanted;
            }
        }
        #[allow(clippy::unnecessary_cast)]
        Some((limit.rlim_cur as u64, limit.rlim_max as u64))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Asks the C allocator (glibc) to keep memory it was given back instead of
/// returning it to the kernel at once: a flowing connection frees and asks
/// for read buffers of up to 256 KiB all the time, and
/// memory the kernel hands out anew costs a page fault per page on the
/// first read into it (an echo spent a fifth of its time there). Read
/// buffers come from the heap, not one `mmap` each, and up to 64 MiB of freed
/// heap is kept for reuse. Call once at start, before threads; elsewhere a no-op.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets the allocator's tuning parameters.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        }
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
    tx: mpsc::UnboundedSender<Batch>,
    wake: Wake,
    pending: Arc<AtomicBool>,
    /// Held while an event is stamped and queued, so events reach the caller
    /// in the order of their stamps, whichever tasks emit them.
    order: Arc<Mutex<()>>,
    /// [`EVENT_BUDGET`], shared with [`Events`].
    budget: Arc<Semaphore>,
}

impl Emitter {
    fn new(tx: mpsc::UnboundedSender<Batch>, wake: Wake) -> (Emitter, Arc<AtomicBool>) {
        let pending = Arc::new(AtomicBool::new(false));
        let emitter = Emitter {
            tx,
            wake,
            pending: pending.clone(),
            order: Arc::new(Mutex::new(())),
            budget: Arc::new(Semaphore::new(EVENT_BUDGET)),
        };
        (emitter, pending)
    }

    /// An event that holds no budget (anything but received payload bytes).
    pub(crate) fn emit(&self, id: EndpointId, kind: EventKind) {
        self.send_batch(id, vec![(kind, 0)]);
    }

    /// Emits events of one endpoint as one batch: one message, one wake. Each
    /// comes with the budget it holds (taken with [`Emitter::charge`] or
    /// [`Emitter::try_charge`]), given back when the caller takes it.
    pub(crate) fn send_batch(&self, id: EndpointId, mut kinds: Vec<(EventKind, u32)>) {
        if kinds.is_empty() {
            return;
        }
        let sent = {
            // A panic elsewhere while holding this lock leaves nothing half-done.
            let _order = self.order.lock().unwrap_or_else(|p| p.into_inner());
            let at = now();
            let batch = if kinds.len() == 1 {
                let (kind, charge) = kinds.pop().expect("one event");
                Batch::One(Event { id, at, kind }, charge)
            } else {
                Batch::Many(
                    kinds
                        .into_iter()
                        .map(|(kind, charge)| (Event { id, at, kind }, charge))
                        .collect(),
                )
            };
            self.tx.send(batch).is_ok()
        };
        if sent && !self.pending.swap(true, Ordering::AcqRel) {
            (self.wake)();
        }
    }

    /// Waits until `len` received bytes fit the event budget and takes them;
    /// returns the charge to emit with their event. When nobody reads events
    /// any more, nothing is charged and nothing waits.
    pub(crate) async fn charge(&self, len: usize) -> u32 {
        let n = charge_of(len);
        if n == 0 {
            return 0;
        }
        match self.budget.acquire_many(n).await {
            Ok(permit) => {
                permit.forget();
                n
            }
            Err(_) => 0,
        }
    }

    /// Takes `len` bytes of the event budget if they fit now (UDP, which
    /// cannot wait): `None` when the budget is full.
    pub(crate) fn try_charge(&self, len: usize) -> Option<u32> {
        let n = charge_of(len);
        if n == 0 || self.budget.is_closed() {
            return Some(0);
        }
        match self.budget.try_acquire_many(n) {
            Ok(permit) => {
                permit.forget();
                Some(n)
            }
            Err(tokio::sync::TryAcquireError::Closed) => Some(0),
            Err(tokio::sync::TryAcquireError::NoPermits) => None,
        }
    }

    /// Emits a received payload's event, waiting first for room in the event
    /// budget: a TCP reader that waits here reads no more from its socket.
    pub(crate) async fn emit_received(&self, id: EndpointId, kind: EventKind) {
        let len = match &kind {
            EventKind::Traffic { bytes, .. } => bytes.len(),
            _ => 0,
        };
        let charge = self.charge(len).await;
        self.send_batch(id, vec![(kind, charge)]);
    }

    pub(crate) fn failed(&self, id: EndpointId, peer: Option<PeerId>, error: NetError) {
        self.emit(id, EventKind::Failed { peer, error });
    }
}

/// The budget a payload of `len` bytes holds: its length, at most the whole
/// budget (a payload bigger than a budget still goes, alone).
fn charge_of(len: usize) -> u32 {
    len.min(EVENT_BUDGET) as u32
}

/// The payload bytes a command carries.
fn payload_len(command: &Command) -> usize {
    match command {
        Command::Send { bytes, .. } | Command::SendSplit { bytes, .. } => bytes.len(),
        Command::Batch(commands) => commands.iter().map(payload_len).sum(),
        _ => 0,
    }
}

impl Engine {
    /// Starts the engine on `runtime`. Events come out of the returned [`Events`].
    pub fn start(runtime: &tokio::runtime::Handle, wake: Wake) -> (Engine, Events) {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let (emitter, pending) = Emitter::new(event_tx, wake);
        let budget = emitter.budget.clone();
        let supervisor = runtime.spawn(supervise(command_rx, emitter.clone()));
        (
            Engine {
                commands,
                budget: Arc::new(Semaphore::new(COMMAND_BUDGET)),
                emitter,
                supervisor: Some(supervisor),
            },
            Events {
                rx: event_rx,
                ready: VecDeque::new(),
                pending,
                budget,
            },
        )
    }

    /// Queues a command. Never blocks; after shutdown, commands are dropped.
    /// Payloads wait inside the engine up to [`COMMAND_BUDGET`] bytes; a send
    /// beyond it fails at once with a `Failed` event (nothing is dropped unsaid).
    pub fn send(&self, command: Command) {
        let len = payload_len(&command);
        let permit = if len == 0 {
            None
        } else {
            let n = len.min(COMMAND_BUDGET) as u32;
            match self.budget.clone().try_acquire_many_owned(n) {
                Ok(permit) => Some(permit),
                Err(_) => {
                    let waiting = COMMAND_BUDGET.saturating_sub(self.budget.available_permits());
                    let id = match &command {
                        Command::Send { id, .. } | Command::SendSplit { id, .. } => *id,
                        Command::Batch(commands) => commands
                            .iter()
                            .find_map(|c| match c {
                                Command::Open { id, .. } | Command::Send { id, .. } => Some(*id),
                                _ => None,
                            })
                            .unwrap_or(EndpointId(0)),
                        _ => EndpointId(0),
                    };
                    self.emitter.failed(
                        id,
                        None,
                        NetError::new(
                            ErrorKind::Other,
                            Operation::Send,
                            format!(
                                "send {len} bytes: not queued, {waiting} bytes of earlier payloads \
                                 still wait to be written (the peers read slower than we send)"
                            ),
                        ),
                    );
                    return;
                }
            }
        };
        let _ = self.commands.send((command, permit));
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
        bytes: Bytes,
        split: Split,
        /// The [`COMMAND_BUDGET`] this payload holds until a queue takes it
        /// (held for its drop).
        _held: Option<OwnedSemaphorePermit>,
    },
    SetNoDelay(bool),
    PauseReads(Duration),
    /// Join (or leave) a multicast group on a UDP socket.
    Membership {
        group: std::net::IpAddr,
        join: bool,
    },
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
    /// For a relay's intercept; other endpoints refuse it.
    Hold {
        way: crate::model::impair::Way,
        on: bool,
    },
    Decide {
        way: crate::model::impair::Way,
        pick: intercept::Pick,
        verdict: intercept::Verdict,
    },
}

/// What an endpoint other than a relay answers to the intercept's commands.
pub(crate) fn refuse_intercept(ctx: &net::EndpointCtx) {
    ctx.failed(
        None,
        NetError::new(
            ErrorKind::Other,
            Operation::Configure,
            "only a relay holds what passes through it",
        ),
    );
}

async fn supervise(
    mut commands: mpsc::UnboundedReceiver<(Command, Option<OwnedSemaphorePermit>)>,
    emitter: Emitter,
) {
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
        while let Some((command, mut held)) = next.take().or_else(|| commands.try_recv().ok()) {
            if !route(
                command,
                &mut held,
                &mut endpoints,
                &root,
                &emitter,
                &mut starting,
            ) {
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

/// Handles one command; false on Shutdown. `held` is the budget the
/// command's payloads hold: each Send takes its share along.
fn route(
    command: Command,
    held: &mut Option<OwnedSemaphorePermit>,
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
                    .all(|c| route(c, held, endpoints, root, emitter, starting));
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
                                run_endpoint(id, *spec, rx, token, emitter).await
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
                    _held: share(held, bytes.len()),
                    to,
                    bytes: Bytes::from(bytes),
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
                    _held: share(held, bytes.len()),
                    to,
                    bytes: Bytes::from(bytes),
                    split: Split {
                        writes: writes.max(1),
                        gap,
                    },
                },
            ),
            Command::SetNoDelay { id, on } => (id, EndpointCommand::SetNoDelay(on)),
            Command::PauseReads { id, pause } => (id, EndpointCommand::PauseReads(pause)),
            Command::Multicast { id, group, join } => {
                (id, EndpointCommand::Membership { group, join })
            }
            Command::HalfClose { id, peer } => (id, EndpointCommand::HalfClose { peer }),
            Command::Disconnect { id, peer, abort } => {
                (id, EndpointCommand::Disconnect { peer, abort })
            }
            Command::Close { id, abort } => (id, EndpointCommand::Close { abort }),
            Command::SetHold { id, way, on } => (id, EndpointCommand::Hold { way, on }),
            Command::Decide {
                id,
                way,
                pick,
                verdict,
            } => (id, EndpointCommand::Decide { way, pick, verdict }),
        };
        // Closing an endpoint that already ended on its own (a client whose
        // server hung up, while a Stop all was on its way) is done, not a
        // failure: its own Stopped event says it ended.
        let closing = matches!(routed, EndpointCommand::Close { .. });
        let delivered = endpoints
            .get(&id)
            .is_some_and(|running| running.commands.send(routed).is_ok());
        if !delivered {
            endpoints.remove(&id);
            if closing {
                return true;
            }
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

/// The share of `held` a payload of `len` bytes takes along (the rest stays
/// for the batch's other payloads; the last one takes what is left).
fn share(held: &mut Option<OwnedSemaphorePermit>, len: usize) -> Option<OwnedSemaphorePermit> {
    let n = len.min(COMMAND_BUDGET);
    let permit = held.as_mut()?;
    if permit.num_permits() > n {
        permit.split(n)
    } else {
        held.take()
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
        reply: Arc::new(reply::Responder::for_endpoint(&spec)),
        emitter,
        token,
    };
    let way = tcp::ClientWay {
        proxy: spec.proxy,
        reconnect: spec.reconnect,
    };
    if (way.proxy.is_some() || way.reconnect.is_some()) && !spec.kind.tag().is_client() {
        return ctx.failed(
            None,
            NetError::new(
                ErrorKind::Other,
                Operation::Configure,
                "a proxy and reconnecting are for TCP and TLS clients",
            ),
        );
    }
    match spec.kind {
        EndpointKind::TcpClient { remote } => tcp::client(ctx, remote, None, way, commands).await,
        EndpointKind::TcpServer { listen } => tcp::server(ctx, listen, None, commands).await,
        EndpointKind::TlsClient { remote, tls } => {
            tcp::client(ctx, remote, Some(tls), way, commands).await
        }
        EndpointKind::TlsServer { listen, tls } => {
            tcp::server(ctx, listen, Some(tls), commands).await
        }
        EndpointKind::Udp { bind, remote } => udp::socket(ctx, bind, remote, commands).await,
        kind @ EndpointKind::Relay { .. } => relay::run(ctx, kind, commands).await,
        EndpointKind::UnixClient { path } => unix::client(ctx, path, commands).await,
        EndpointKind::UnixServer { path, unlink } => {
            unix::server(ctx, path, unlink, commands).await
        }
        EndpointKind::UnixDatagram {
            bind,
            remote,
            unlink,
        } => unix::datagram(ctx, bind, remote, unlink, commands).await,
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
        engine.send(Command::Open {
            id,
            spec: Box::new(spec),
        });
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
            emitter: Emitter::new(tx, no_wake()).0,
            token: CancellationToken::new(),
        };
        let token = ctx.token.clone();
        let task = tokio::spawn(net::guarded(ctx, async {
            panic!("boom");
        }));
        task.await.expect("the panic is caught, not passed on");
        assert!(token.is_cancelled(), "the endpoint is told to stop");
        let Ok(Batch::One(event, 0)) = rx.try_recv() else {
            panic!("a failure event");
        };
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

    /// A context whose events land in the returned receiver.
    fn test_ctx() -> (net::EndpointCtx, mpsc::UnboundedReceiver<Batch>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let ctx = net::EndpointCtx {
            id: EndpointId(5),
            options: Default::default(),
            reply: Arc::new(reply::Responder::new(&crate::model::AutoReply::Off)),
            emitter: Emitter::new(tx, no_wake()).0,
            token: CancellationToken::new(),
        };
        (ctx, rx)
    }

    fn failures(rx: &mut mpsc::UnboundedReceiver<Batch>) -> Vec<(Option<PeerId>, String)> {
        let mut got = Vec::new();
        while let Ok(batch) = rx.try_recv() {
            let events = match batch {
                Batch::One(event, _) => vec![event],
                Batch::Many(many) => many.into_iter().map(|(e, _)| e).collect(),
            };
            for event in events {
                if let EventKind::Failed { peer, error } = event.kind {
                    got.push((peer, error.message));
                }
            }
        }
        got
    }

    /// A Disconnect (or half-close) that reaches a server after that peer
    /// left on its own is done, not "peer 2 is not connected": the person
    /// pressed it while the peer was still listed. A peer that never was is
    /// still an error, and so is a payload for a peer that left.
    #[tokio::test]
    async fn ending_a_peer_that_already_left_is_no_failure() {
        let (ctx, mut rx) = test_ctx();
        let peers = HashMap::new();
        // Peers 1 to 3 were handed out; none is connected any more.
        for command in [
            EndpointCommand::Disconnect {
                peer: 2,
                abort: false,
            },
            EndpointCommand::Disconnect {
                peer: 3,
                abort: true,
            },
            EndpointCommand::HalfClose { peer: 1 },
        ] {
            tcp::route_server(&ctx, &peers, 4, command);
        }
        assert_eq!(failures(&mut rx), []);
        tcp::route_server(
            &ctx,
            &peers,
            4,
            EndpointCommand::Disconnect {
                peer: 9,
                abort: false,
            },
        );
        tcp::route_server(
            &ctx,
            &peers,
            4,
            EndpointCommand::Send {
                _held: None,
                to: Target::Peer(2),
                bytes: Bytes::from_static(b"late"),
                split: Split::WHOLE,
            },
        );
        assert_eq!(
            failures(&mut rx),
            [
                (Some(9), "peer 9 is not connected".to_owned()),
                (Some(2), "peer 2 is not connected".to_owned())
            ]
        );
    }

    /// A payload routed to a connection in the moment it ended (its queue
    /// already drained and closed, the server not yet told) is said not sent,
    /// never dropped unsaid.
    #[tokio::test]
    async fn a_payload_for_a_connection_that_just_ended_is_said_not_sent() {
        let (ctx, mut rx) = test_ctx();
        let remote: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
        let (handle, queue) = conn::ConnHandle::new(remote);
        drop(queue);
        let mut peers = HashMap::new();
        peers.insert(2, handle);
        tcp::route_server(
            &ctx,
            &peers,
            3,
            EndpointCommand::Send {
                _held: None,
                to: Target::Peer(2),
                bytes: Bytes::from_static(b"late"),
                split: Split::WHOLE,
            },
        );
        assert_eq!(
            failures(&mut rx),
            [(
                Some(2),
                "send 4 bytes to 127.0.0.1:9: not sent, the connection ended first".to_owned()
            )]
        );
    }
}
