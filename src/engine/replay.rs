//! Replay, the running part: plays an [`EndpointPlan`] over real sockets.
//!
//! A client plan connects (or sends, over UDP) and plays each recorded
//! conversation in turn; a server plan listens and plays recorded conversation
//! `k` to its `k`-th peer, a mock of the recorded server. Every send waits for
//! what was received before it in the recording (up to the timeout), then for
//! its recorded gap divided by the speed; paused, a Step lets one send go.
//! Traffic is reported with the usual events, so callers log it as any other.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::EndpointId;
use super::conn::READ_BUFFER;
use super::net::{EndpointCtx, apply_stream, resolve, unspecified_for};
use super::{
    CLOSE_GRACE, EndpointCommand, EventKind, NetError, Operation, PeerId, UNIX_PEER, classify,
};
use crate::model::replay::{
    Conversation, ConversationCheck, EndpointPlan, Mismatch, Role, check_one,
};
use crate::model::{Direction, EndpointKind, ErrorKind, UnixName};

/// The most connections a replayed TCP server plays at once, however many the
/// session recorded; the others wait to be accepted until one finishes.
pub const MAX_REPLAY_PEERS: usize = 256;

/// A UDP mock remembers at most this many source addresses; past it, those
/// that were never answered are forgotten (a flood of new addresses must not
/// grow the table without end). A forgotten address that comes back gets a
/// new peer number.
pub const MAX_UDP_ADDRESSES: usize = 65_536;

/// How a replay runs.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// How long to wait for data the recording says comes next.
    pub timeout: Duration,
    /// The pace, shared by every endpoint of one replay run.
    pub pace: ReplayPace,
}

impl ReplayOptions {
    pub fn new(speed: f64, timeout: Duration, paused: bool) -> Self {
        Self {
            timeout,
            pace: ReplayPace::new(speed, paused),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Pace {
    paused: bool,
    speed: f64,
}

fn clamp_speed(speed: f64) -> f64 {
    if speed.is_finite() {
        speed.clamp(0.0, 1000.0)
    } else {
        1.0
    }
}

/// Steers a replay run: pause, resume, step, speed. One pace is shared by all
/// the endpoints of a run (a handle, like a cancellation token), so that a
/// Step sends exactly one payload in the whole run: the next one that may go,
/// as in the recording (a server's answer only once the request has arrived).
#[derive(Clone, Debug)]
pub struct ReplayPace {
    inner: Arc<PaceInner>,
}

#[derive(Debug)]
struct PaceInner {
    state: watch::Sender<Pace>,
    /// One permit per Step click, taken by the first send ready to go.
    permits: Semaphore,
}

impl ReplayPace {
    /// `speed` 1 keeps the recorded gaps, 2 halves them, 0 sends without waiting.
    pub fn new(speed: f64, paused: bool) -> Self {
        let (state, _) = watch::channel(Pace {
            paused,
            speed: clamp_speed(speed),
        });
        ReplayPace {
            inner: Arc::new(PaceInner {
                state,
                permits: Semaphore::new(0),
            }),
        }
    }

    pub fn pause(&self) {
        self.inner.state.send_modify(|p| p.paused = true);
    }

    pub fn resume(&self) {
        // Steps not taken are not kept for a later pause.
        self.inner.permits.forget_permits(usize::MAX);
        self.inner.state.send_modify(|p| p.paused = false);
    }

    /// Pauses, and lets the next payload of the run go.
    pub fn step(&self) {
        self.pause();
        self.inner.permits.add_permits(1);
    }

    pub fn set_speed(&self, speed: f64) {
        self.inner
            .state
            .send_modify(|p| p.speed = clamp_speed(speed));
    }

    pub fn is_paused(&self) -> bool {
        self.inner.state.borrow().paused
    }

    pub fn speed(&self) -> f64 {
        self.inner.state.borrow().speed
    }

    fn pacer(&self) -> Pacer {
        Pacer {
            pace: self.inner.state.subscribe(),
            shared: self.inner.clone(),
        }
    }
}

/// One conversation's view of the pace.
struct Pacer {
    pace: watch::Receiver<Pace>,
    shared: Arc<PaceInner>,
}

impl Pacer {
    /// Waits until a send may go: `gap` after `since`, scaled by the speed; or,
    /// while paused, until a step lets it.
    async fn wait(&mut self, since: Instant, gap: Duration) {
        loop {
            let pace = *self.pace.borrow_and_update();
            if pace.paused {
                tokio::select! {
                    permit = self.shared.permits.acquire() => {
                        if let Ok(permit) = permit {
                            permit.forget();
                        }
                        return;
                    }
                    changed = self.pace.changed() => if changed.is_err() { return },
                }
                continue;
            }
            let wait = crate::model::replay::scaled_gap(gap, pace.speed);
            let deadline = after(since, wait);
            // Timers tick in milliseconds: a shorter wait would become a whole one.
            if deadline.saturating_duration_since(Instant::now()) < Duration::from_millis(1) {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                changed = self.pace.changed() => if changed.is_err() { return },
            }
        }
    }
}

/// `wait` after `since`; `+` would panic where the clock cannot count so far
/// (a timeout or gap from a crafted file), so a wait that does not fit is cut
/// to the longest replay wait.
fn after(since: Instant, wait: Duration) -> Instant {
    since
        .checked_add(wait)
        .unwrap_or_else(|| since + crate::model::replay::MAX_SCALED_GAP)
}

/// What a conversation has received so far: bytes (TCP) or datagrams (UDP).
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    units: usize,
    /// The peer closed its side (TCP).
    ended: bool,
}

/// Who a conversation talks with: the address its events carry (for a Unix
/// socket, [`UNIX_PEER`]: its name came with the connection's event) and how
/// messages name it.
#[derive(Clone, Debug)]
struct Remote {
    addr: SocketAddr,
    shown: Arc<str>,
}

impl Remote {
    fn ip(addr: SocketAddr) -> Self {
        Remote {
            addr,
            shown: addr.to_string().into(),
        }
    }

    fn unix(name: &UnixName) -> Self {
        Remote {
            addr: UNIX_PEER,
            shown: name.to_string().into(),
        }
    }
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Where a conversation's sends go.
enum Link {
    /// The writing half of a stream, plain TCP or TLS.
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
    Udp {
        socket: Arc<UdpSocket>,
        to: SocketAddr,
    },
    UnixDatagram {
        socket: Arc<UnixDatagram>,
        to: socket2::SockAddr,
    },
}

impl Link {
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Link::Stream(w) => {
                w.write_all(bytes).await?;
                w.flush().await
            }
            // A connected socket sends with send(): some systems refuse sendto() on it.
            Link::Udp { socket, to } if socket.peer_addr().is_ok() => {
                let _ = to;
                socket.send(bytes).await.map(|_| ())
            }
            Link::Udp { socket, to } => socket.send_to(bytes, *to).await.map(|_| ()),
            Link::UnixDatagram { socket, to } => {
                match super::unix::send_datagram_to(socket, to, bytes).await? {
                    n if n == bytes.len() => Ok(()),
                    n => Err(std::io::Error::other(format!(
                        "only {n} of {} bytes went out",
                        bytes.len()
                    ))),
                }
            }
        }
    }
}

/// What a replay task shares with its conversations.
#[derive(Clone)]
struct Shared {
    ctx: EndpointCtx,
    pace: ReplayPace,
    timeout: Duration,
    /// Payloads sent so far, over every conversation.
    sent: Arc<AtomicUsize>,
    udp: bool,
}

impl Shared {
    fn note(&self, peer: Option<PeerId>, text: String) {
        self.ctx.emit(EventKind::Note { peer, text });
    }

    /// Waits until `units` have been seen; false when the wait ran out or the peer ended first.
    async fn wait_for(
        &self,
        seen: &mut watch::Receiver<Seen>,
        units: usize,
        limit: Duration,
    ) -> bool {
        let deadline = after(Instant::now(), limit);
        loop {
            let now = *seen.borrow_and_update();
            if now.units >= units {
                return true;
            }
            if now.ended {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return false,
                changed = seen.changed() => if changed.is_err() { return false },
            }
        }
    }

    /// Waits until nothing new arrives for a moment (so extra bytes are caught).
    async fn settle(&self, seen: &mut watch::Receiver<Seen>) {
        let quiet = self.timeout.min(Duration::from_millis(300));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(quiet) => return,
                changed = seen.changed() => if changed.is_err() || seen.borrow().ended { return },
            }
        }
    }

    /// Plays a conversation's steps over `link`; false if the link broke.
    async fn play(
        &self,
        peer: PeerId,
        remote: &Remote,
        conversation: &Conversation,
        link: &mut Link,
        seen: &mut watch::Receiver<Seen>,
    ) -> bool {
        let mut pacer = self.pace.pacer();
        let mut expected = 0usize;
        let mut last = Instant::now();
        for step in &conversation.steps {
            match step.dir {
                Direction::Received => {
                    expected += if self.udp { 1 } else { step.bytes.len() };
                    if !self.wait_for(seen, expected, self.timeout).await {
                        let got = seen.borrow().units;
                        let (unit, ended) = (
                            if self.udp { "datagram" } else { "byte" },
                            seen.borrow().ended,
                        );
                        if ended {
                            self.note(
                                Some(peer),
                                format!(
                                    "the peer closed after {got} of the {expected} {unit}s recorded"
                                ),
                            );
                            break;
                        }
                        self.note(
                            Some(peer),
                            format!(
                                "waited {:.1} s for {} more {unit}{} the recording has here; going on",
                                self.timeout.as_secs_f64(),
                                expected - got,
                                if expected - got == 1 { "" } else { "s" }
                            ),
                        );
                    }
                    last = Instant::now();
                }
                Direction::Sent => {
                    tokio::select! {
                        _ = self.ctx.token.cancelled() => return false,
                        _ = pacer.wait(last, step.gap) => {}
                    }
                    // Logged before the write, as in every connection: the answer
                    // must not appear in the log before the payload that asked for it.
                    self.ctx.emit(EventKind::Traffic {
                        peer,
                        remote: remote.addr,
                        dir: Direction::Sent,
                        bytes: bytes::Bytes::copy_from_slice(&step.bytes),
                    });
                    // Bounded, and a stop ends it: a peer that never reads
                    // (a full socket buffer, a Unix datagram queue) must not
                    // hold the replay forever. A write may wait as long as a
                    // connect or an answer may (`--timeout 0`, no wait for
                    // answers, must not fail every write that waits at all).
                    let bound = self.timeout.max(self.ctx.options.connect_timeout());
                    let sent = tokio::select! {
                        _ = self.ctx.token.cancelled() => return false,
                        r = tokio::time::timeout(bound, link.send(&step.bytes)) => r,
                    };
                    let Ok(sent) = sent else {
                        self.ctx.failed(
                            Some(peer),
                            NetError::new(
                                ErrorKind::TimedOut,
                                Operation::Send,
                                format!(
                                    "send to {remote}: the write did not finish in {:.1} s (the peer does not read)",
                                    bound.as_secs_f64()
                                ),
                            )
                            .of_reported_write(),
                        );
                        return false;
                    };
                    if let Err(e) = sent {
                        if classify(&e) == ErrorKind::Reset {
                            self.ctx.emit(EventKind::Reset { peer });
                        } else {
                            self.ctx.failed(
                                Some(peer),
                                NetError::from_io(Operation::Send, format!("to {remote}"), &e)
                                    .of_reported_write(),
                            );
                        }
                        return false;
                    }
                    let sent = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
                    self.ctx.emit(EventKind::ReplayProgress { sent });
                    last = Instant::now();
                }
            }
        }
        true
    }

    /// Plays one TCP connection to its end and reports `Closed`.
    async fn stream_conversation<S>(
        &self,
        peer: PeerId,
        remote: Remote,
        stream: S,
        conversation: &Conversation,
    ) where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, wr) = tokio::io::split(stream);
        let (seen_tx, mut seen) = watch::channel(Seen::default());
        let reader = {
            let ctx = self.ctx.clone();
            let remote = remote.clone();
            async move {
                let mut buf = bytes::BytesMut::new();
                let mut total = 0;
                loop {
                    if buf.capacity() - buf.len() < READ_BUFFER / 4 {
                        buf.reserve(READ_BUFFER);
                    }
                    match rd.read_buf(&mut buf).await {
                        Ok(0) => {
                            ctx.emit(EventKind::PeerClosed { peer });
                            break;
                        }
                        Ok(n) => {
                            total += n;
                            // Waits while the caller is a budget behind, as any connection.
                            ctx.emitter
                                .emit_received(
                                    ctx.id,
                                    EventKind::Traffic {
                                        peer,
                                        remote: remote.addr,
                                        dir: Direction::Received,
                                        bytes: buf.split().freeze(),
                                    },
                                )
                                .await;
                            seen_tx.send_replace(Seen {
                                units: total,
                                ended: false,
                            });
                        }
                        Err(e) => {
                            if classify(&e) == ErrorKind::Reset {
                                ctx.emit(EventKind::Reset { peer });
                            } else {
                                ctx.failed(
                                    Some(peer),
                                    NetError::from_io(
                                        Operation::Receive,
                                        format!("from {remote}"),
                                        &e,
                                    ),
                                );
                            }
                            break;
                        }
                    }
                }
                seen_tx.send_replace(Seen {
                    units: total,
                    ended: true,
                });
            }
        };
        // Aborted with the conversation, too, when a stop drops it: the
        // reader holds the socket open until it ends.
        let reading = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(super::net::guarded(
            self.ctx.clone(),
            reader,
        )));
        let mut link = Link::Stream(Box::new(wr));
        let played = self
            .play(peer, &remote, conversation, &mut link, &mut seen)
            .await;
        if played {
            if conversation.peer_closed {
                // The recorded peer closed first: give this one the time to do so too.
                self.wait_for_end(&mut seen, self.timeout).await;
            } else {
                self.settle(&mut seen).await;
            }
        }
        if let Link::Stream(mut w) = link {
            if w.shutdown().await.is_ok() {
                self.ctx.emit(EventKind::HalfClosed { peer });
            }
            self.wait_for_end(&mut seen, CLOSE_GRACE).await;
        }
        reading.abort();
        self.ctx.emit(EventKind::Closed {
            peer,
            aborted: false,
        });
    }

    async fn wait_for_end(&self, seen: &mut watch::Receiver<Seen>, limit: Duration) {
        let deadline = after(Instant::now(), limit);
        while !seen.borrow_and_update().ended {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                changed = seen.changed() => if changed.is_err() { return },
            }
        }
    }
}

/// Why a Unix datagram client cannot replay without a remote.
const NO_UNIX_REMOTE: &str = "nothing to send to: neither the endpoint nor its recording names \
     the socket path it sent to (give it a remote path)";

/// A Unix datagram client with no path to send to (bad input).
pub fn check_unix_remotes(plans: &[EndpointPlan]) -> Result<(), NetError> {
    for plan in plans {
        if let EndpointKind::UnixDatagram { remote: None, .. } = &plan.spec.kind
            && plan.role == Role::Client
        {
            return Err(NetError::new(
                ErrorKind::Other,
                Operation::Configure,
                format!(
                    "\"{}\": {NO_UNIX_REMOTE}",
                    crate::model::escape_controls(plan.name())
                ),
            ));
        }
    }
    Ok(())
}

/// The socket paths `plans` bind (a Unix mock server, a bound Unix datagram
/// socket), checked before anything opens, as `listen unix` checks its own:
/// a socket in use, a stale socket file (fine when the plan says `unlink`:
/// the bind removes it) or any other file is refused with the reason (an
/// address in use: a network failure, not bad input).
pub fn check_bind_paths(plans: &[EndpointPlan]) -> Result<(), NetError> {
    for plan in plans {
        let (path, unlink) = match &plan.spec.kind {
            EndpointKind::UnixServer { path, unlink } => (path, *unlink),
            EndpointKind::UnixDatagram {
                bind: Some(path),
                unlink,
                ..
            } => (path, *unlink),
            _ => continue,
        };
        super::unix::check_bind_path(path, unlink).map_err(|mut e| {
            e.message = format!(
                "\"{}\": {}",
                crate::model::escape_controls(plan.name()),
                e.message
            );
            e
        })?;
    }
    Ok(())
}

/// Lets every plan that binds a socket path remove a stale socket file
/// there (`--unlink`); false when no plan binds one.
pub fn allow_unlink(plans: &mut [EndpointPlan]) -> bool {
    let mut any = false;
    for plan in plans {
        match &mut plan.spec.kind {
            EndpointKind::UnixServer { unlink, .. }
            | EndpointKind::UnixDatagram {
                bind: Some(_),
                unlink,
                ..
            } => {
                *unlink = true;
                any = true;
            }
            _ => {}
        }
    }
    any
}

/// Runs `plan` until it is done, stopped or cancelled.
pub(crate) async fn run(
    ctx: EndpointCtx,
    plan: EndpointPlan,
    options: ReplayOptions,
    mut commands: mpsc::UnboundedReceiver<EndpointCommand>,
) {
    let stop = ctx.token.child_token();
    let shared = Shared {
        ctx: EndpointCtx {
            token: stop.clone(),
            ..ctx.clone()
        },
        pace: options.pace,
        timeout: options.timeout,
        sent: Arc::new(AtomicUsize::new(0)),
        udp: plan.is_udp(),
    };
    let playing = play_plan(shared, plan);
    tokio::pin!(playing);
    let mut listening = true;
    loop {
        tokio::select! {
            _ = &mut playing => break,
            _ = stop.cancelled() => {
                // Give the connections a moment to report how they ended.
                let _ = tokio::time::timeout(Duration::from_millis(200), &mut playing).await;
                break;
            }
            command = commands.recv(), if listening => match command {
                Some(EndpointCommand::Close { .. }) => stop.cancel(),
                Some(_) => ctx.failed(None, NetError::new(ErrorKind::Other, Operation::Send,
                    "a replay sends what was recorded; stop it to send by hand")),
                None => listening = false,
            },
        }
    }
}

async fn play_plan(shared: Shared, plan: EndpointPlan) {
    let ctx = shared.ctx.clone();
    match (&plan.spec.kind, plan.role) {
        // The model's plan turns a relay into the mock or the client it replays as.
        (EndpointKind::Relay { .. }, _) => ctx.failed(
            None,
            NetError::new(
                ErrorKind::Other,
                Operation::Configure,
                "a relay replays as its upstream (a mock) or as its client: plan it with --as",
            ),
        ),
        (EndpointKind::UnixClient { path }, _) => {
            for (i, conversation) in plan.conversations.iter().enumerate() {
                let peer = i as PeerId;
                let connected = tokio::select! {
                    _ = ctx.token.cancelled() => return,
                    r = super::unix::connect_stream(&ctx, path) => r,
                };
                let stream = match connected {
                    Ok(s) => s,
                    Err(e) => return ctx.failed(None, e),
                };
                let (local, remote) = super::unix::stream_names(&stream, path);
                ctx.emit(EventKind::UnixConnected {
                    peer,
                    local,
                    remote: remote.clone(),
                });
                ctx.emit(EventKind::ReplayAssigned {
                    peer,
                    conversation: i,
                });
                if let Err(e) = super::unix::apply_buffers(&SockRef::from(&stream), &ctx.options) {
                    ctx.failed(Some(peer), e);
                }
                tokio::select! {
                    _ = ctx.token.cancelled() => return,
                    _ = shared.stream_conversation(peer, Remote::unix(&remote), stream, conversation) => {}
                }
            }
        }
        (EndpointKind::UnixServer { path, unlink }, _) => {
            let (listener, owned, local) = match super::unix::listen_stream(&ctx, path, *unlink) {
                Ok(l) => l,
                Err(e) => return ctx.failed(None, e),
            };
            // The socket file the mock made goes when it ends, however it ends.
            let _owned = owned;
            ctx.emit(EventKind::UnixListening {
                local: local.clone(),
            });
            mock_server(
                shared,
                plan.conversations,
                MockListener::Unix { listener, local },
            )
            .await;
        }
        (
            EndpointKind::UnixDatagram {
                bind,
                remote,
                unlink,
            },
            role,
        ) => {
            // A mock needs a name to be sent to; a client needs one to be answered.
            if role == Role::Server && bind.is_none() {
                return ctx.failed(
                    None,
                    NetError::new(
                        ErrorKind::Other,
                        Operation::Bind,
                        "this Unix datagram socket was bound to no name, so nothing can reach a mock of it",
                    ),
                );
            }
            if role == Role::Client && remote.is_none() {
                return ctx.failed(
                    None,
                    NetError::new(ErrorKind::Other, Operation::Configure, NO_UNIX_REMOTE),
                );
            }
            let (socket, owned, local) =
                match super::unix::open_datagram(&ctx, bind.as_ref(), *unlink) {
                    Ok(s) => s,
                    Err(e) => return ctx.failed(None, e),
                };
            let _owned = owned;
            ctx.emit(EventKind::UnixBound { local });
            if bind.is_none() {
                ctx.emit(EventKind::Note {
                    peer: None,
                    text: super::unix::UNNAMED_NOTE.into(),
                });
            }
            let remote = match remote {
                Some(path) if role == Role::Client => Some(Peer::Unix(UnixName::from(path))),
                _ => None,
            };
            datagram_plan(
                shared,
                plan.conversations,
                role,
                Datagrams::Unix(Arc::new(socket)),
                remote,
            )
            .await;
        }
        (EndpointKind::TcpClient { remote }, _) | (EndpointKind::TlsClient { remote, .. }, _) => {
            let tls = match &plan.spec.kind {
                EndpointKind::TlsClient { tls, .. } => {
                    match super::tls::client(tls, &remote.host) {
                        Ok(t) => Some(t),
                        Err(e) => return ctx.failed(None, e),
                    }
                }
                _ => None,
            };
            let addrs = match resolve(&ctx, remote).await {
                Ok(a) => a,
                Err(e) => return ctx.failed(None, e),
            };
            for (i, conversation) in plan.conversations.iter().enumerate() {
                let peer = i as PeerId;
                let connected = tokio::select! {
                    _ = ctx.token.cancelled() => return,
                    r = super::tcp::connect_any(&ctx, &addrs) => r,
                };
                let (stream, remote) = match connected {
                    Ok(pair) => pair,
                    Err(error) => {
                        if let Some(e) = error {
                            ctx.failed(None, e);
                        }
                        return;
                    }
                };
                let local = stream
                    .local_addr()
                    .unwrap_or_else(|_| unspecified_for(&remote));
                ctx.emit(EventKind::Connected {
                    peer,
                    local,
                    remote,
                });
                ctx.emit(EventKind::ReplayAssigned {
                    peer,
                    conversation: i,
                });
                let _ = apply_stream(&SockRef::from(&stream), &ctx.options);
                let Some(tls) = &tls else {
                    tokio::select! {
                        _ = ctx.token.cancelled() => return,
                        _ = shared.stream_conversation(peer, Remote::ip(remote), stream, conversation) => {}
                    }
                    continue;
                };
                let Some(stream) = super::tcp::tls_connect(&ctx, peer, remote, stream, tls).await
                else {
                    return;
                };
                tokio::select! {
                    _ = ctx.token.cancelled() => return,
                    _ = shared.stream_conversation(peer, Remote::ip(remote), stream, conversation) => {}
                }
            }
        }
        (EndpointKind::TcpServer { listen }, _) | (EndpointKind::TlsServer { listen, .. }, _) => {
            let acceptor = match &plan.spec.kind {
                EndpointKind::TlsServer { tls, .. } => match super::tls::server(tls) {
                    Ok((config, about)) => Some((tokio_rustls::TlsAcceptor::from(config), about)),
                    Err(e) => return ctx.failed(None, e),
                },
                _ => None,
            };
            let addr = match resolve(&ctx, listen).await {
                Ok(a) => a[0],
                Err(e) => return ctx.failed(None, e),
            };
            let listener = match super::tcp::bind_listener(&ctx, addr) {
                Ok(l) => l,
                Err(e) => return ctx.failed(None, e),
            };
            let local = listener.local_addr().unwrap_or(addr);
            ctx.emit(EventKind::Listening { local });
            let acceptor = acceptor.map(|(acceptor, about)| {
                ctx.emit(EventKind::Note {
                    peer: None,
                    text: format!("TLS: {about}"),
                });
                acceptor
            });
            mock_server(
                shared,
                plan.conversations,
                MockListener::Tcp {
                    listener,
                    local,
                    acceptor,
                },
            )
            .await;
        }
        (EndpointKind::Udp { bind, remote }, role) => {
            let remote = match remote {
                Some(r) if role == Role::Client => match resolve(&ctx, r).await {
                    Ok(a) => Some(a[0]),
                    Err(e) => return ctx.failed(None, e),
                },
                _ => None,
            };
            let bind_addr = match bind {
                Some(b) if role == Role::Server => match resolve(&ctx, b).await {
                    Ok(a) => a[0],
                    Err(e) => return ctx.failed(None, e),
                },
                _ => remote
                    .as_ref()
                    .map(unspecified_for)
                    .unwrap_or_else(|| "0.0.0.0:0".parse().expect("literal")),
            };
            // As the live socket: a client with a remote is connected to it unless
            // the endpoint says otherwise, so a stranger's datagram is not taken
            // for the answer and a closed port is reported as refused; connect()
            // binds it (to the route's address, not every interface).
            let connect_to = remote.filter(|_| role == Role::Client && ctx.options.connected);
            let socket = match super::udp::bind_socket(&ctx, bind_addr, connect_to.is_none()) {
                Ok(s) => Arc::new(s),
                Err(e) => return ctx.failed(None, e),
            };
            if let Some(to) = connect_to
                && let Err(e) = socket.connect(super::udp::fit_family(&bind_addr, to)).await
            {
                return ctx.failed(
                    None,
                    NetError::from_io(Operation::Connect, format!("to {to}"), &e),
                );
            }
            let local = socket.local_addr().unwrap_or(bind_addr);
            ctx.emit(EventKind::Bound { local });
            datagram_plan(
                shared,
                plan.conversations,
                role,
                Datagrams::Udp(socket),
                remote.map(Peer::Ip),
            )
            .await;
        }
    }
}

/// What a mock server accepts its peers on.
enum MockListener {
    Tcp {
        listener: TcpListener,
        local: SocketAddr,
        acceptor: Option<tokio_rustls::TlsAcceptor>,
    },
    Unix {
        listener: UnixListener,
        local: UnixName,
    },
}

/// One accepted peer of a mock server.
enum Accepted {
    Tcp(TcpStream, SocketAddr),
    Unix(UnixStream, UnixName),
}

impl MockListener {
    async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            MockListener::Tcp { listener, .. } => listener
                .accept()
                .await
                .map(|(stream, remote)| Accepted::Tcp(stream, remote)),
            MockListener::Unix { listener, .. } => {
                listener.accept().await.map(|(stream, remote)| {
                    Accepted::Unix(stream, super::unix::name_of_tokio(&remote))
                })
            }
        }
    }

    /// Where it listens, for messages.
    fn shown(&self) -> String {
        match self {
            MockListener::Tcp { local, .. } => local.to_string(),
            MockListener::Unix { local, .. } => local.to_string(),
        }
    }
}

/// A mock server: accepts as many peers as were recorded and plays recorded
/// conversation `k` to the `k`-th, then finishes what runs; at most
/// [`MAX_REPLAY_PEERS`] at once (later peers wait in the listen backlog
/// until one finishes).
async fn mock_server(shared: Shared, conversations: Vec<Conversation>, listener: MockListener) {
    let ctx = shared.ctx.clone();
    let conversations = Arc::new(conversations);
    let tasks = TaskTracker::new();
    let mut accepted = 0usize;
    let live = Arc::new(Semaphore::new(MAX_REPLAY_PEERS));
    let acceptor = match &listener {
        MockListener::Tcp { acceptor, .. } => acceptor.clone(),
        MockListener::Unix { .. } => None,
    };
    while accepted < conversations.len() {
        let permit = tokio::select! {
            _ = ctx.token.cancelled() => break,
            p = live.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let peer_stream = tokio::select! {
            _ = ctx.token.cancelled() => break,
            r = listener.accept() => match r {
                Ok(peer_stream) => peer_stream,
                Err(e) => {
                    ctx.failed(None, NetError::from_io(Operation::Accept, format!("on {}", listener.shown()), &e));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let peer = accepted as PeerId + 1;
        let index = accepted % conversations.len();
        accepted += 1;
        match (&peer_stream, &listener) {
            (Accepted::Tcp(_, remote), MockListener::Tcp { local, .. }) => {
                ctx.emit(EventKind::Accepted {
                    peer,
                    local: *local,
                    remote: *remote,
                })
            }
            (Accepted::Unix(_, remote), MockListener::Unix { local, .. }) => {
                ctx.emit(EventKind::UnixAccepted {
                    peer,
                    local: local.clone(),
                    remote: remote.clone(),
                })
            }
            // Each listener accepts its own kind only.
            _ => continue,
        }
        ctx.emit(EventKind::ReplayAssigned {
            peer,
            conversation: index,
        });
        let shared = shared.clone();
        let conversations = conversations.clone();
        let acceptor = acceptor.clone();
        tasks.spawn(super::net::guarded(shared.ctx.clone(), async move {
            let _permit = permit;
            let conversation = &conversations[index];
            let (stream, remote) = match peer_stream {
                Accepted::Unix(stream, remote) => {
                    if let Err(e) =
                        super::unix::apply_buffers(&SockRef::from(&stream), &shared.ctx.options)
                    {
                        shared.ctx.failed(Some(peer), e);
                    }
                    return shared
                        .stream_conversation(peer, Remote::unix(&remote), stream, conversation)
                        .await;
                }
                Accepted::Tcp(stream, remote) => (stream, remote),
            };
            let _ = apply_stream(&SockRef::from(&stream), &shared.ctx.options);
            let Some(acceptor) = acceptor else {
                return shared
                    .stream_conversation(peer, Remote::ip(remote), stream, conversation)
                    .await;
            };
            let token = shared.ctx.token.clone();
            if let Some(stream) =
                super::tcp::tls_accept(&shared.ctx, peer, remote, stream, &acceptor, &token).await
            {
                shared
                    .stream_conversation(peer, Remote::ip(remote), stream, conversation)
                    .await;
            }
        }));
    }
    drop(listener);
    tasks.close();
    tokio::select! {
        _ = ctx.token.cancelled() => {}
        _ = tasks.wait() => {}
    }
}

/// A datagram socket a replay plays over: UDP or Unix datagram.
enum Datagrams {
    Udp(Arc<UdpSocket>),
    Unix(Arc<UnixDatagram>),
}

/// Who sent a datagram: an address (UDP) or a name (Unix).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Peer {
    Ip(SocketAddr),
    Unix(UnixName),
}

impl Datagrams {
    async fn recv(&self, buf: &mut bytes::BytesMut) -> std::io::Result<Peer> {
        match self {
            Datagrams::Udp(socket) => socket
                .recv_buf_from(buf)
                .await
                .map(|(_, from)| Peer::Ip(from)),
            Datagrams::Unix(socket) => socket
                .recv_buf_from(buf)
                .await
                .map(|(_, from)| Peer::Unix(super::unix::name_of_tokio(&from))),
        }
    }

    /// Where sends to `to` go; an unnamed Unix peer cannot be answered.
    fn link(&self, to: &Peer) -> Result<Link, NetError> {
        match (self, to) {
            (Datagrams::Udp(socket), Peer::Ip(to)) => Ok(Link::Udp {
                socket: socket.clone(),
                to: *to,
            }),
            (Datagrams::Unix(socket), Peer::Unix(name)) => Ok(Link::UnixDatagram {
                socket: socket.clone(),
                to: super::unix::name_sock_addr(name)?,
            }),
            _ => Err(NetError::new(
                ErrorKind::Other,
                Operation::Send,
                "a datagram of the other kind of socket",
            )),
        }
    }
}

impl Peer {
    fn remote(&self) -> Remote {
        match self {
            Peer::Ip(addr) => Remote::ip(*addr),
            Peer::Unix(name) => Remote::unix(name),
        }
    }
}

/// UDP or Unix datagram: one socket; each remote address (or name) is a
/// conversation with its own player.
async fn datagram_plan(
    shared: Shared,
    conversations: Vec<Conversation>,
    role: Role,
    socket: Datagrams,
    remote: Option<Peer>,
) {
    let ctx = shared.ctx.clone();
    let conversations = Arc::new(conversations);
    let tasks = TaskTracker::new();
    // Per remote address: its peer number and the channel that tells its player what came.
    let mut peers: HashMap<Peer, (PeerId, Option<watch::Sender<Seen>>)> = HashMap::new();
    let mut next_peer: PeerId = 1;
    let mut started = 0usize;
    // At most MAX_REPLAY_PEERS players at once, as the TCP mock: an address
    // that comes while all are busy is answered when a later datagram of it
    // finds a free player (UDP cannot be made to wait).
    let live = Arc::new(Semaphore::new(MAX_REPLAY_PEERS));
    let mut busy_said = false;
    let mut unanswerable_said = false;
    let spawn_player = |to: &Peer,
                        peer: PeerId,
                        index: usize,
                        seen: watch::Receiver<Seen>,
                        permit: tokio::sync::OwnedSemaphorePermit|
     -> Result<(), NetError> {
        let shared = shared.clone();
        let conversations = conversations.clone();
        let mut link = socket.link(to)?;
        let remote = to.remote();
        tasks.spawn(super::net::guarded(shared.ctx.clone(), async move {
            let _permit = permit;
            let mut seen = seen;
            if shared
                .play(peer, &remote, &conversations[index], &mut link, &mut seen)
                .await
            {
                shared.settle(&mut seen).await;
            }
        }));
        Ok(())
    };
    // A Unix peer is named by an event of its own (UDP's by its address).
    let name_event = |peer: PeerId, who: &Peer| match who {
        Peer::Unix(name) => Some(EventKind::UnixPeer {
            peer,
            remote: name.clone(),
        }),
        Peer::Ip(_) => None,
    };
    if let (Role::Client, Some(to)) = (role, &remote) {
        let (tx, rx) = watch::channel(Seen::default());
        peers.insert(to.clone(), (1, Some(tx)));
        next_peer = 2;
        if let Some(event) = name_event(1, to) {
            ctx.emit(event);
        }
        ctx.emit(EventKind::ReplayAssigned {
            peer: 1,
            conversation: 0,
        });
        if let Ok(permit) = live.clone().try_acquire_owned()
            && let Err(e) = spawn_player(to, 1, 0, rx, permit)
        {
            ctx.failed(Some(1), e);
        }
        started = conversations.len();
    }
    let mut buf = bytes::BytesMut::new();
    loop {
        if buf.capacity() - buf.len() < READ_BUFFER {
            buf.reserve(4 * READ_BUFFER);
        }
        // Done once every conversation has started and every player finished.
        let all_started = started >= conversations.len();
        if all_started {
            tasks.close();
        }
        tokio::select! {
            _ = ctx.token.cancelled() => break,
            _ = tasks.wait(), if all_started => break,
            received = socket.recv(&mut buf) => match received {
                Ok(from) => {
                    if peers.len() >= MAX_UDP_ADDRESSES && !peers.contains_key(&from) {
                        peers.retain(|_, (_, seen)| seen.is_some());
                    }
                    let mut batch = Vec::new();
                    let (peer, seen) = peers.entry(from.clone()).or_insert_with(|| {
                        next_peer = next_peer.saturating_add(1);
                        if let Some(event) = name_event(next_peer - 1, &from) {
                            batch.push((event, 0));
                        }
                        (next_peer - 1, None)
                    });
                    let peer = *peer;
                    if !batch.is_empty() {
                        ctx.emitter.send_batch(ctx.id, std::mem::take(&mut batch));
                    }
                    if seen.is_none() && role == Role::Server && started < conversations.len() {
                        match live.clone().try_acquire_owned() {
                            Ok(permit) => {
                                let (tx, rx) = watch::channel(Seen::default());
                                match spawn_player(&from, peer, started, rx, permit) {
                                    Ok(()) => {
                                        *seen = Some(tx);
                                        ctx.emit(EventKind::ReplayAssigned { peer, conversation: started });
                                        started += 1;
                                    }
                                    // Not answerable (an unnamed Unix socket): said, and
                                    // the recorded conversation waits for another peer.
                                    Err(e) if !unanswerable_said => {
                                        unanswerable_said = true;
                                        ctx.failed(Some(peer), e);
                                    }
                                    Err(_) => {}
                                }
                            }
                            Err(_) if !busy_said => {
                                busy_said = true;
                                ctx.emit(EventKind::Note {
                                    peer: Some(peer),
                                    text: format!(
                                        "{MAX_REPLAY_PEERS} recorded conversations are playing at once: \
                                         {} is answered when one of them ends and it sends again",
                                        from.remote()
                                    ),
                                });
                            }
                            Err(_) => {}
                        }
                    }
                    let bytes = buf.split().freeze();
                    match ctx.emitter.try_charge(bytes.len()) {
                        Some(charge) => ctx.emitter.send_batch(
                            ctx.id,
                            vec![(
                                EventKind::Traffic {
                                    peer,
                                    remote: from.remote().addr,
                                    dir: Direction::Received,
                                    bytes,
                                },
                                charge,
                            )],
                        ),
                        // UDP cannot wait for the caller: dropped, and said.
                        None => ctx.emit(EventKind::Dropped {
                            cause: super::DropCause::Budget,
                            datagrams: 1,
                            bytes: Some(bytes.len() as u64),
                        }),
                    }
                    if let Some(tx) = seen {
                        tx.send_modify(|s| s.units += 1);
                    }
                }
                Err(e) => ctx.failed(None, NetError::from_io(Operation::Receive, "a datagram", &e)),
            },
        }
    }
}

/// What a replay run has seen of each replayed endpoint.
pub struct Tally {
    /// (endpoint, peer) → the recorded conversation the peer plays.
    assigned: HashMap<(EndpointId, u32), usize>,
    /// (endpoint, conversation) → the log rows it received.
    received: HashMap<(EndpointId, usize), Vec<usize>>,
}

impl Tally {
    pub fn new() -> Self {
        Tally {
            assigned: HashMap::new(),
            received: HashMap::new(),
        }
    }

    /// Notes an event and the log row it became.
    pub fn note(&mut self, id: EndpointId, kind: &EventKind, row: Option<usize>) {
        match kind {
            EventKind::ReplayAssigned { peer, conversation } => {
                self.assigned.insert((id, *peer), *conversation);
                self.received.entry((id, *conversation)).or_default();
            }
            EventKind::Traffic { peer, dir, .. } if *dir == crate::model::Direction::Received => {
                if let (Some(c), Some(row)) = (self.assigned.get(&(id, *peer)), row) {
                    self.received.entry((id, *c)).or_default().push(row);
                }
            }
            _ => {}
        }
    }

    /// Compares every recorded conversation of `plans` (run as ids 1, 2, …) with what came back.
    pub fn check(
        &self,
        plans: &[EndpointPlan],
        ids: &[EndpointId],
        log: &crate::model::TrafficLog,
    ) -> Vec<Mismatch> {
        self.check_all(plans, ids, log)
            .into_iter()
            .filter_map(|c| c.mismatch)
            .collect()
    }

    /// [`Tally::check`] for every conversation, matched or not, with the
    /// ignore rules that applied (a report for CI lists them all).
    pub fn check_all(
        &self,
        plans: &[EndpointPlan],
        ids: &[EndpointId],
        log: &crate::model::TrafficLog,
    ) -> Vec<ConversationCheck> {
        let mut checks = Vec::new();
        for (plan, id) in plans.iter().zip(ids) {
            for index in 0..plan.conversations.len() {
                let rows = self.received.get(&(*id, index));
                let received: Option<Vec<(usize, &[u8])>> =
                    rows.map(|rows| rows.iter().map(|&r| (r, log.data(r))).collect());
                checks.push(check_one(plan, index, received.as_deref()));
            }
        }
        checks
    }
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn huge_waits_and_tiny_speeds_do_not_panic() {
        let now = Instant::now();
        assert!(after(now, Duration::MAX) > now);
        let pace = ReplayPace::new(1e-300, false);
        let mut pacer = pace.pacer();
        // Once a panic in div_f64 that left `replay --speed 1e-300` hanging.
        let waited = tokio::time::timeout(
            Duration::from_secs(3600),
            pacer.wait(Instant::now(), Duration::from_secs(1)),
        )
        .await;
        assert!(
            waited.is_err(),
            "a tiny speed waits long, and does not panic"
        );
        pace.set_speed(f64::MIN_POSITIVE);
        pace.set_speed(f64::NAN);
        pacer.wait(Instant::now(), Duration::from_millis(5)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_pacer_scales_gaps_and_steps_when_paused() {
        let pace = ReplayPace::new(2.0, false);
        let mut pacer = pace.pacer();
        let start = Instant::now();
        pacer.wait(start, Duration::from_secs(10)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));

        pace.set_speed(0.0);
        let start = Instant::now();
        pacer.wait(start, Duration::from_secs(10)).await;
        assert_eq!(start.elapsed(), Duration::ZERO);

        // Paused: only a step lets a send go, whatever the gap; one step, one send.
        pace.pause();
        pace.set_speed(1.0);
        let mut second = pace.pacer();
        let waiting = tokio::spawn(async move {
            let start = Instant::now();
            pacer.wait(start, Duration::from_secs(1)).await;
            start.elapsed()
        });
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!waiting.is_finished());
        pace.step();
        assert_eq!(waiting.await.unwrap(), Duration::from_secs(30));
        let blocked = tokio::time::timeout(
            Duration::from_secs(60),
            second.wait(Instant::now(), Duration::ZERO),
        )
        .await;
        assert!(
            blocked.is_err(),
            "the step was taken by the first send only"
        );
        pace.resume();
        tokio::time::timeout(
            Duration::from_secs(1),
            second.wait(Instant::now(), Duration::ZERO),
        )
        .await
        .unwrap();
    }
}
