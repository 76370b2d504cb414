//! The recording relay: clients connect to us, we connect to the upstream for
//! each, pass bytes both ways, and report both directions as one conversation.
//!
//! ```text
//!  client ──▶ read ──▶ [queue up]   ──▶ impair ──▶ write ──▶ upstream
//!  client ◀── write ◀── impair ◀── [queue down] ◀── read ◀── upstream
//! ```
//!
//! In the log a relay is one endpoint; each client is one peer, and the
//! conversation reads like a server's: `Received` rows are what the client
//! sent (client → upstream), `Sent` rows what the upstream sent (upstream →
//! client), both recorded when read, before any impairment. The upstream's
//! side of things (its connect, TLS, FIN, reset) are notes beginning
//! `upstream:`; what an impairment did is a note beginning `up:` or `down:`.
//!
//! Bounded: each direction's queue holds at most [`QUEUE_CHUNKS`] reads; while
//! the writer lags (a slow peer, latency, a bandwidth cap), the reader stops
//! reading, so TCP's flow control slows the sender. UDP cannot be slowed: a
//! datagram that finds its queue full is dropped and counted.
//!
//! Mirroring: a FIN from one side is passed on as a FIN (after the bytes
//! before it); a reset or a broken connection on one side resets the other.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::conn::{Half, READ_BUFFER, Transport, halves};
use super::intercept::{Gate, GateCommand, HeldChange, Holdable, Pick};
use super::net::{EndpointCtx, apply_stream, resolve, unspecified_for};
use super::tcp::{AcceptFailures, bind_listener, connect_one};
use super::{
    CLOSE_GRACE, DropCause, EndpointCommand, EventKind, NetError, Operation, PeerId, classify, tls,
    udp,
};
use crate::model::impair::{Dice, Impairments, Limit, Toxics, Way, duration_text};
use crate::model::{Direction, EndpointKind, ErrorKind, HostPort, RelayTransport};

/// Reads one direction's queue holds while its writer lags (each at most
/// [`READ_BUFFER`] bytes, so at most 1 MiB a direction).
pub(crate) const QUEUE_CHUNKS: usize = 16;

/// Datagrams one UDP client's queue (each way) holds; beyond it they are dropped and counted.
pub(crate) const QUEUE_DATAGRAMS: usize = 256;

/// How many UDP clients a relay serves at once unless max peers says otherwise.
pub const UDP_CLIENTS: u32 = 256;

/// A UDP client that sends nothing for this long is forgotten, its upstream socket closed.
pub const UDP_IDLE: Duration = Duration::from_secs(60);

/// How long a datagram held back for reordering waits for one to go before it.
const REORDER_WAIT: Duration = Duration::from_millis(50);

/// What a relay's clients see: the endpoint's settings.
struct Plan {
    transport: RelayTransport,
    listen: HostPort,
    upstream: HostPort,
    tls_server: crate::model::TlsServerSettings,
    tls_client: crate::model::TlsClientSettings,
    impair: Arc<Impairments>,
    seed: u64,
}

/// A seed when none is given: drawn from the process's random hasher keys.
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(super::now().timestamp_micros() as u64);
    h.finish() % 1_000_000_000
}

fn note(ctx: &EndpointCtx, peer: PeerId, text: impl Into<String>) {
    ctx.emit(EventKind::Note {
        peer: Some(peer),
        text: text.into(),
    });
}

/// Runs a relay endpoint until it is closed or the engine stops.
pub(crate) async fn run(
    ctx: EndpointCtx,
    kind: EndpointKind,
    commands: mpsc::UnboundedReceiver<EndpointCommand>,
) {
    let EndpointKind::Relay {
        transport,
        listen,
        upstream,
        tls_server,
        tls_client,
        impair,
    } = kind
    else {
        return;
    };
    let seed = impair.seed.unwrap_or_else(fresh_seed);
    let plan = Plan {
        transport,
        listen,
        upstream,
        tls_server: *tls_server,
        tls_client: *tls_client,
        impair: Arc::new(*impair),
        seed,
    };
    if let Some(misfit) = plan.impair.misfit(plan.transport == RelayTransport::Udp) {
        return ctx.failed(
            None,
            NetError::new(
                ErrorKind::Other,
                Operation::Configure,
                format!(
                    "impairment {misfit} does not apply to a {} relay",
                    plan.transport.word()
                ),
            ),
        );
    }
    match plan.transport {
        RelayTransport::Udp => udp_relay(ctx, plan, commands).await,
        RelayTransport::Tcp | RelayTransport::Tls => stream_relay(ctx, plan, commands).await,
    }
}

/// The note that opens a relay's log: where it relays to, and its impairments.
fn opening_notes(ctx: &EndpointCtx, plan: &Plan) {
    ctx.emit(EventKind::Note {
        peer: None,
        text: format!(
            "{} relay: each client is relayed to {}",
            plan.transport.word(),
            plan.upstream
        ),
    });
    for way in [Way::Up, Way::Down] {
        let toxics = plan.impair.way(way);
        if !toxics.is_none() {
            ctx.emit(EventKind::Note {
                peer: None,
                text: format!(
                    "impairments {} ({}): {}",
                    way.word(),
                    way.arrow(),
                    toxics.describe()
                ),
            });
        }
    }
    if !plan.impair.up.is_none() || !plan.impair.down.is_none() {
        ctx.emit(EventKind::Note {
            peer: None,
            text: format!(
                "impairments seed {} (give --seed {} to repeat this run's chances)",
                plan.seed, plan.seed
            ),
        });
    }
}

/// What the relay answers to commands meant for endpoints that send.
fn refuse_command(ctx: &EndpointCtx, command: &EndpointCommand) {
    if let EndpointCommand::Send { bytes, .. } = command {
        ctx.failed(
            None,
            NetError::new(
                ErrorKind::Other,
                Operation::Send,
                format!(
                    "send {} bytes: a relay passes on what its clients and the upstream send; it sends nothing of its own",
                    bytes.len()
                ),
            ),
        );
    }
}

// ---------------------------------------------------------------- intercept

/// A relay's hold switches and how it reaches each client's gates.
struct Intercept {
    /// Up, down: whether reads that way are held (new clients start so).
    holding: [bool; 2],
    /// Numbers held items across the relay's clients.
    items: Arc<AtomicU64>,
    /// Each client's gates: up, down.
    gates: HashMap<PeerId, [mpsc::UnboundedSender<GateCommand>; 2]>,
}

fn slot(way: Way) -> usize {
    match way {
        Way::Up => 0,
        Way::Down => 1,
    }
}

/// One client's receiving ends of its gates' commands: up, down.
type GateInbox = [mpsc::UnboundedReceiver<GateCommand>; 2];

impl Intercept {
    fn new() -> Self {
        Intercept {
            holding: [false; 2],
            items: Arc::new(AtomicU64::new(0)),
            gates: HashMap::new(),
        }
    }

    /// A new client's gates, holding as the relay holds now.
    fn join<T: Holdable>(&mut self, ctx: &EndpointCtx, peer: PeerId) -> ([Gate<T>; 2], GateInbox) {
        let (up_tx, up_rx) = mpsc::unbounded_channel();
        let (down_tx, down_rx) = mpsc::unbounded_channel();
        self.gates.insert(peer, [up_tx, down_tx]);
        let gate = |way: Way, holding: bool| {
            let ctx = ctx.clone();
            Gate::new(way, holding).on_abandon(move |item| {
                intercept_event(&ctx, peer, way, item, HeldChange::Abandoned)
            })
        };
        (
            [
                gate(Way::Up, self.holding[0]),
                gate(Way::Down, self.holding[1]),
            ],
            [up_rx, down_rx],
        )
    }

    fn leave(&mut self, peer: PeerId) {
        self.gates.remove(&peer);
    }

    /// Carries out a command of the intercept; false for other commands.
    fn command(&mut self, ctx: &EndpointCtx, command: &EndpointCommand) -> bool {
        match command {
            EndpointCommand::Hold { way, on } => {
                self.holding[slot(*way)] = *on;
                for gates in self.gates.values() {
                    let _ = gates[slot(*way)].send(GateCommand::Hold(*on));
                }
                ctx.emit(EventKind::Note {
                    peer: None,
                    text: if *on {
                        format!(
                            "hold {} ({}) on: what is read that way waits to be forwarded, edited or dropped",
                            way.word(),
                            way.arrow()
                        )
                    } else {
                        format!(
                            "hold {} ({}) off: what was held is forwarded in order",
                            way.word(),
                            way.arrow()
                        )
                    },
                });
            }
            EndpointCommand::Decide { way, pick, verdict } => match pick {
                Pick::All => {
                    for gates in self.gates.values() {
                        let _ = gates[slot(*way)].send(GateCommand::Decide {
                            item: None,
                            verdict: verdict.clone(),
                        });
                    }
                }
                Pick::One { peer, item } => {
                    let sent = self.gates.get(peer).is_some_and(|gates| {
                        gates[slot(*way)]
                            .send(GateCommand::Decide {
                                item: Some(*item),
                                verdict: verdict.clone(),
                            })
                            .is_ok()
                    });
                    if !sent {
                        note(
                            ctx,
                            *peer,
                            format!("held item #{item} is gone: the client's connection has ended"),
                        );
                    }
                }
            },
            _ => return false,
        }
        true
    }
}

impl Holdable for Msg {
    fn payload(&self) -> Option<&Bytes> {
        match self {
            Msg::Data { bytes, .. } => Some(bytes),
            _ => None,
        }
    }

    fn with_payload(self, bytes: Bytes) -> Self {
        match self {
            Msg::Data { at, .. } => Msg::Data { bytes, at },
            other => other,
        }
    }
}

/// Tells of a held item as an event.
fn intercept_event(ctx: &EndpointCtx, peer: PeerId, way: Way, item: u64, change: HeldChange) {
    ctx.emit(EventKind::Intercept {
        peer,
        way,
        item,
        change,
    });
}

// ---------------------------------------------------------------- TCP, TLS

async fn stream_relay(
    ctx: EndpointCtx,
    plan: Plan,
    mut commands: mpsc::UnboundedReceiver<EndpointCommand>,
) {
    let tls = plan.transport == RelayTransport::Tls;
    // Mistakes in either side's TLS settings show before anything listens.
    let acceptor = if tls {
        match tls::server(&plan.tls_server) {
            Ok(a) => Some(a),
            Err(e) => return ctx.failed(None, e),
        }
    } else {
        None
    };
    let connector = if tls {
        match tls::client(&plan.tls_client, &plan.upstream.host) {
            Ok(c) => Some(c),
            Err(e) => return ctx.failed(None, e),
        }
    } else {
        None
    };
    let addrs = tokio::select! {
        _ = ctx.token.cancelled() => return,
        r = resolve(&ctx, &plan.listen) => r,
    };
    let addr = match addrs {
        Ok(a) => a[0],
        Err(e) => return ctx.failed(None, e),
    };
    let listener = match bind_listener(&ctx, addr) {
        Ok(l) => l,
        Err(e) => return ctx.failed(None, e),
    };
    let local = listener.local_addr().unwrap_or(addr);
    ctx.emit(EventKind::Listening { local });
    opening_notes(&ctx, &plan);
    let acceptor = acceptor.map(|(config, about)| {
        ctx.emit(EventKind::Note {
            peer: None,
            text: format!("TLS toward clients: {about}"),
        });
        tokio_rustls::TlsAcceptor::from(config)
    });
    let plan = Arc::new(plan);

    let mut conversations: HashMap<PeerId, mpsc::UnboundedSender<bool>> = HashMap::new();
    let mut intercept = Intercept::new();
    let mut next_peer: PeerId = 1;
    let tracker = TaskTracker::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<PeerId>();
    let mut failures = AcceptFailures::default();
    let max_peers = ctx.options.max_peers;
    loop {
        tokio::select! {
            _ = ctx.token.cancelled() => break,
            _ = tokio::time::sleep_until(failures.retry_at), if failures.backing_off() => failures.retry(),
            accepted = listener.accept(), if !failures.backing_off() => match accepted {
                Ok((stream, remote)) => {
                    failures.accepted(&ctx, local);
                    let peer = next_peer;
                    next_peer += 1;
                    let here = stream.local_addr().unwrap_or(local);
                    ctx.emit(EventKind::Accepted { peer, local: here, remote });
                    if let Some(max) = max_peers
                        && conversations.len() >= max as usize
                    {
                        note(&ctx, peer, format!(
                            "{}{} clients are relayed, the most this relay takes (max peers {max}); the connection is closed at once",
                            super::REFUSED_PEER,
                            conversations.len()
                        ));
                        drop(stream);
                        ctx.emit(EventKind::Closed { peer, aborted: false });
                        continue;
                    }
                    let (stop_tx, stop_rx) = mpsc::unbounded_channel();
                    conversations.insert(peer, stop_tx);
                    let (gates, inbox) = intercept.join(&ctx, peer);
                    let task = Conversation {
                        ctx: ctx.clone(),
                        peer,
                        client_addr: remote,
                        plan: plan.clone(),
                        token: ctx.token.child_token(),
                        hold: Some((gates, inbox)),
                        items: intercept.items.clone(),
                    };
                    let acceptor = acceptor.clone();
                    let connector = connector.clone();
                    let done = done_tx.clone();
                    tracker.spawn(super::net::guarded(ctx.clone(), async move {
                        task.run(stream, acceptor, connector, stop_rx).await;
                        let _ = done.send(peer);
                    }));
                }
                Err(e) => failures.failed(&ctx, local, &e),
            },
            command = commands.recv() => match command {
                None => break,
                Some(EndpointCommand::Close { abort }) => {
                    for stop in conversations.values() {
                        let _ = stop.send(abort);
                    }
                    break;
                }
                Some(EndpointCommand::Disconnect { peer, abort }) => {
                    if let Some(stop) = conversations.get(&peer) {
                        let _ = stop.send(abort);
                    }
                }
                Some(other) => {
                    if !intercept.command(&ctx, &other) {
                        refuse_command(&ctx, &other);
                    }
                }
            },
            Some(peer) = done_rx.recv() => {
                conversations.remove(&peer);
                intercept.leave(peer);
            }
        }
    }
    failures.report(&ctx, local);
    drop(listener);
    drop(conversations);
    tracker.close();
    tokio::select! {
        _ = ctx.token.cancelled() => {}
        _ = tokio::time::timeout(CLOSE_GRACE + Duration::from_millis(500), tracker.wait()) => {}
    }
}

/// One client and its upstream connection.
struct Conversation {
    ctx: EndpointCtx,
    peer: PeerId,
    client_addr: SocketAddr,
    plan: Arc<Plan>,
    token: CancellationToken,
    /// The intercept's gates (up, down) and their commands, taken by the pump.
    hold: Option<([Gate<Msg>; 2], GateInbox)>,
    /// Numbers held items across the relay's clients.
    items: Arc<AtomicU64>,
}

/// A read of one direction, or how that direction ended.
enum Msg {
    Data {
        bytes: Bytes,
        at: Instant,
    },
    /// The sender closed its side in order (FIN).
    Eof,
    /// The sender's connection broke (a reset when `reset`).
    Broken {
        reset: bool,
    },
}

/// How a direction's writer ended.
enum WriterEnd {
    /// The FIN was passed on; the other direction may go on.
    HalfClosed,
    /// Close both connections in order (a close-after limit).
    Close,
    /// Reset both connections (a reset passed on, a broken connection, a reset-after limit).
    Abort,
}

impl Conversation {
    fn note(&self, text: impl Into<String>) {
        note(&self.ctx, self.peer, text);
    }

    fn upstream_failed(&self, mut error: NetError) {
        error.message = format!("upstream: {}", error.message);
        self.ctx.failed(Some(self.peer), error);
    }

    /// Resets a connection we are done with (SO_LINGER 0, then close).
    fn reset(&self, stream: TcpStream) {
        let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        drop(stream);
        self.ctx.emit(EventKind::Closed {
            peer: self.peer,
            aborted: true,
        });
    }

    async fn run(
        mut self,
        client: TcpStream,
        acceptor: Option<tokio_rustls::TlsAcceptor>,
        connector: Option<tls::ClientTls>,
        stop: mpsc::UnboundedReceiver<bool>,
    ) {
        let Some(hold) = self.hold.take() else {
            return;
        };
        let ctx = &self.ctx;
        if let Err(e) = apply_stream(&SockRef::from(&client), &ctx.options) {
            ctx.failed(Some(self.peer), e);
        }
        let Some(upstream) = self.connect_upstream().await else {
            self.note("nothing to relay to: the client's connection is reset");
            return self.reset(client);
        };
        let limit = ctx.options.connect_timeout();
        match (acceptor, connector) {
            (Some(acceptor), Some(connector)) => {
                if let Some(warning) = &connector.warning {
                    self.note(format!("upstream: {warning}"));
                }
                let remote = upstream.peer_addr().ok();
                let name = connector.server_name.to_str().into_owned();
                let shake = tokio_rustls::TlsConnector::from(connector.config.clone())
                    .connect(connector.server_name.clone(), upstream);
                let upstream = tokio::select! {
                    _ = self.token.cancelled() => return,
                    r = tokio::time::timeout(limit, shake) => r,
                };
                let upstream = match upstream {
                    Ok(Ok(s)) => s,
                    failed => {
                        let shown = remote.map(|r| r.to_string()).unwrap_or_default();
                        self.upstream_failed(match failed {
                            Ok(Err(e)) => tls::handshake_error(&e, &shown, &name),
                            _ => NetError::new(
                                ErrorKind::TimedOut,
                                Operation::Tls,
                                format!("TLS handshake with {shown}: no answer in time"),
                            ),
                        });
                        self.note("the upstream's TLS failed: the client's connection is reset");
                        return self.reset(client);
                    }
                };
                self.note(format!(
                    "upstream: TLS {}",
                    tls::describe(upstream.get_ref().1)
                ));
                let shake = tokio::select! {
                    _ = self.token.cancelled() => return,
                    r = tokio::time::timeout(limit, acceptor.accept(client)) => r,
                };
                match shake {
                    Ok(Ok(client)) => {
                        ctx.emit(EventKind::TlsHandshake {
                            peer: self.peer,
                            detail: tls::describe(client.get_ref().1),
                        });
                        self.pump(client, upstream, stop, hold).await;
                    }
                    failed => {
                        ctx.failed(
                            Some(self.peer),
                            match failed {
                                Ok(Err(e)) => tls::handshake_error(&e, self.client_addr, ""),
                                _ => NetError::new(
                                    ErrorKind::TimedOut,
                                    Operation::Tls,
                                    format!(
                                        "TLS handshake with {}: no answer in time",
                                        self.client_addr
                                    ),
                                ),
                            },
                        );
                        self.note("the client's TLS failed: the upstream connection is closed");
                        drop(upstream);
                        ctx.emit(EventKind::Closed {
                            peer: self.peer,
                            aborted: false,
                        });
                    }
                }
            }
            _ => self.pump(client, upstream, stop, hold).await,
        }
    }

    /// Connects to the upstream (each address in turn), saying so in notes.
    async fn connect_upstream(&self) -> Option<TcpStream> {
        let addrs = tokio::select! {
            _ = self.token.cancelled() => return None,
            r = resolve(&self.ctx, &self.plan.upstream) => r,
        };
        let addrs = match addrs {
            Ok(a) => a,
            Err(e) => {
                self.upstream_failed(e);
                return None;
            }
        };
        let mut last = None;
        for addr in addrs {
            self.note(format!("upstream: connecting to {addr}"));
            let attempt = tokio::select! {
                _ = self.token.cancelled() => return None,
                r = connect_one(&self.ctx, addr) => r,
            };
            match attempt {
                Ok(stream) => {
                    let local = stream
                        .local_addr()
                        .map(|l| l.to_string())
                        .unwrap_or_default();
                    self.note(format!("upstream: connected to {addr} from {local}"));
                    return Some(stream);
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            self.upstream_failed(e);
        }
        None
    }

    /// Passes bytes both ways until both directions end (or one breaks).
    async fn pump<C: Transport, U: Transport>(
        &self,
        client: C,
        upstream: U,
        mut stop: mpsc::UnboundedReceiver<bool>,
        hold: ([Gate<Msg>; 2], GateInbox),
    ) {
        let started = Instant::now();
        let (c_rd, c_wr) = halves(client);
        let (u_rd, u_wr) = halves(upstream);
        let (c_ctl, u_ctl) = (c_wr.clone(), u_wr.clone());
        let (up_tx, up_rx) = mpsc::channel(QUEUE_CHUNKS);
        let (down_tx, down_rx) = mpsc::channel(QUEUE_CHUNKS);
        let impair = &self.plan.impair;
        let seed = self.plan.seed;
        let ([up_gate, down_gate], [up_inbox, down_inbox]) = hold;
        let mut up_read = Box::pin(self.read(Way::Up, c_rd, up_tx));
        let mut down_read = Box::pin(self.read(Way::Down, u_rd, down_tx));
        let mut up_write = Box::pin(self.write(
            u_wr,
            up_rx,
            (up_gate, up_inbox),
            &impair.up,
            Dice::new(seed, self.peer as u64, Way::Up),
        ));
        let mut down_write = Box::pin(self.write(
            c_wr,
            down_rx,
            (down_gate, down_inbox),
            &impair.down,
            Dice::new(seed, self.peer as u64, Way::Down),
        ));
        // Time limits run from the moment the client connected.
        let timer = |pick: fn(&Toxics) -> Option<Limit>| {
            [Way::Up, Way::Down]
                .into_iter()
                .filter_map(|w| match pick(impair.way(w)) {
                    Some(Limit::After(d)) => Some((started + d, w, d)),
                    _ => None,
                })
                .min_by_key(|(at, _, _)| *at)
        };
        let close_at = timer(|t| t.close_after);
        let reset_at = timer(|t| t.reset_after);
        let (mut up_reading, mut down_reading) = (true, true);
        let (mut up_open, mut down_open) = (true, true);
        let mut end: Option<WriterEnd> = None;
        while end.is_none() && (up_open || down_open) {
            tokio::select! {
                _ = self.token.cancelled() => end = Some(WriterEnd::Close),
                asked = stop.recv() => end = Some(if asked == Some(true) { WriterEnd::Abort } else { WriterEnd::Close }),
                _ = up_read.as_mut(), if up_reading => up_reading = false,
                _ = down_read.as_mut(), if down_reading => down_reading = false,
                e = up_write.as_mut(), if up_open => {
                    up_open = false;
                    if !matches!(e, WriterEnd::HalfClosed) { end = Some(e) }
                }
                e = down_write.as_mut(), if down_open => {
                    down_open = false;
                    if !matches!(e, WriterEnd::HalfClosed) { end = Some(e) }
                }
                _ = until(close_at.map(|(at, _, _)| at)) => {
                    let (_, way, after) = close_at.unwrap_or((started, Way::Up, Duration::ZERO));
                    self.note(format!("{}: close after {} reached: both connections are closed", way.word(), duration_text(after)));
                    end = Some(WriterEnd::Close);
                }
                _ = until(reset_at.map(|(at, _, _)| at)) => {
                    let (_, way, after) = reset_at.unwrap_or((started, Way::Up, Duration::ZERO));
                    self.note(format!("{}: reset after {} reached: both connections are reset", way.word(), duration_text(after)));
                    end = Some(WriterEnd::Abort);
                }
            }
        }
        drop((up_read, down_read, up_write, down_write));
        let aborted = matches!(end, Some(WriterEnd::Abort));
        if aborted {
            let _ = c_ctl.socket(|s| s.set_linger(Some(Duration::ZERO)));
            let _ = u_ctl.socket(|s| s.set_linger(Some(Duration::ZERO)));
        } else if end.is_some() {
            // In order: FIN both ways (a side already half-closed just closes).
            let (mut c, mut u) = (c_ctl.clone(), u_ctl.clone());
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                let _ = u.shutdown().await;
                let _ = c.shutdown().await;
            })
            .await;
        }
        drop((c_ctl, u_ctl));
        self.ctx.emit(EventKind::Closed {
            peer: self.peer,
            aborted,
        });
    }

    /// Reads one side and queues what it reads for the other side's writer.
    async fn read<R: Transport>(&self, way: Way, mut rd: Half<R>, tx: mpsc::Sender<Msg>) {
        let ctx = &self.ctx;
        let peer = self.peer;
        let mut buf = BytesMut::new();
        loop {
            if buf.capacity() - buf.len() < READ_BUFFER / 4 {
                buf.reserve(READ_BUFFER);
            }
            let end = match rd.read_buf(&mut buf).await {
                Ok(0) => Msg::Eof,
                Ok(_) => {
                    let at = Instant::now();
                    let bytes = buf.split().freeze();
                    let dir = match way {
                        Way::Up => Direction::Received,
                        Way::Down => Direction::Sent,
                    };
                    // Waits while the caller is a budget behind: no read meanwhile.
                    ctx.emitter
                        .emit_received(
                            ctx.id,
                            EventKind::Traffic {
                                peer,
                                remote: self.client_addr,
                                dir,
                                bytes: bytes.clone(),
                            },
                        )
                        .await;
                    // Waits while the other side's writer lags: no read meanwhile.
                    if tx.send(Msg::Data { bytes, at }).await.is_err() {
                        return;
                    }
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Msg::Eof,
                Err(e) => {
                    let reset = classify(&e) == ErrorKind::Reset;
                    match (way, reset) {
                        (Way::Up, true) => ctx.emit(EventKind::Reset { peer }),
                        (Way::Down, true) => {
                            self.note("upstream: the upstream reset the connection")
                        }
                        (Way::Up, false) => ctx.failed(
                            Some(peer),
                            tls::session_error(&e, Operation::Receive, self.client_addr)
                                .unwrap_or_else(|| {
                                    NetError::from_io(
                                        Operation::Receive,
                                        format!("from {}", self.client_addr),
                                        &e,
                                    )
                                }),
                        ),
                        (Way::Down, false) => self.upstream_failed(NetError::from_io(
                            Operation::Receive,
                            format!("from {}", self.plan.upstream),
                            &e,
                        )),
                    }
                    Msg::Broken { reset }
                }
            };
            if matches!(end, Msg::Eof) {
                match way {
                    Way::Up => ctx.emit(EventKind::PeerClosed { peer }),
                    Way::Down => self.note(
                        "upstream: the upstream closed its sending side (FIN); passed on to the client after the bytes before it",
                    ),
                }
            }
            let _ = tx.send(end).await;
            return;
        }
    }

    /// Writes one direction's queue to its side, through the intercept's
    /// gate, impaired as asked. While the gate is full, the queue is not
    /// taken, so its reader stops reading (TCP's flow control slows the sender).
    async fn write<W: Transport>(
        &self,
        mut wr: Half<W>,
        mut rx: mpsc::Receiver<Msg>,
        (mut gate, mut inbox): (Gate<Msg>, mpsc::UnboundedReceiver<GateCommand>),
        toxics: &Toxics,
        mut dice: Dice,
    ) -> WriterEnd {
        let way = gate.way;
        let side = match way {
            Way::Up => "the upstream",
            Way::Down => "the client",
        };
        if toxics.slice.is_some() {
            // Each slice its own segment, not coalesced by Nagle.
            let _ = wr.socket(|s| s.set_tcp_nodelay(true));
        }
        let mut passed: u64 = 0;
        let mut last_due = Instant::now();
        let mut next_free = Instant::now();
        let mut ready: VecDeque<Msg> = VecDeque::new();
        let (mut rx_open, mut inbox_open) = (true, true);
        let mut said = |item, change| intercept_event(&self.ctx, self.peer, way, item, change);
        loop {
            let Some(msg) = ready.pop_front() else {
                if !rx_open && gate.is_empty() {
                    break;
                }
                tokio::select! {
                    msg = rx.recv(), if rx_open && gate.has_room() => match msg {
                        Some(msg) => {
                            let next = || self.items.fetch_add(1, Ordering::Relaxed) + 1;
                            ready.extend(gate.admit(msg, next, &mut said));
                        }
                        None => rx_open = false,
                    },
                    command = inbox.recv(), if inbox_open => match command {
                        Some(c) => ready.extend(gate.command(c, &mut said)),
                        None => inbox_open = false,
                    },
                    // Held items with no one left to decide them, and nothing more to read.
                    else => break,
                }
                continue;
            };
            let (mut bytes, at) = match msg {
                Msg::Data { bytes, at } => (bytes, at),
                Msg::Eof => {
                    if let Err(e) = wr.shutdown().await {
                        self.write_failed(way, &e);
                        return WriterEnd::Abort;
                    }
                    match way {
                        Way::Up => {
                            self.note("client's FIN passed on: the upstream reads end-of-stream")
                        }
                        Way::Down => self.ctx.emit(EventKind::HalfClosed { peer: self.peer }),
                    }
                    return WriterEnd::HalfClosed;
                }
                Msg::Broken { reset } => {
                    let _ = wr.socket(|s| s.set_linger(Some(Duration::ZERO)));
                    self.note(format!(
                        "{}: {side} is reset too (the other side's connection {})",
                        way.word(),
                        if reset { "was reset" } else { "broke" }
                    ));
                    return WriterEnd::Abort;
                }
            };
            // A byte limit cuts the read where it is reached.
            let mut then = None;
            for (limit, end, word) in [
                (toxics.close_after, WriterEnd::Close, "close"),
                (toxics.reset_after, WriterEnd::Abort, "reset"),
            ] {
                if let Some(Limit::Bytes(n)) = limit {
                    let room = n.saturating_sub(passed);
                    if bytes.len() as u64 >= room && then.as_ref().is_none_or(|(r, _, _)| room < *r)
                    {
                        then = Some((room, end, word));
                    }
                }
            }
            if let Some((room, _, _)) = &then {
                bytes = bytes.slice(..*room as usize);
            }
            if let Some(latency) = &toxics.latency {
                let due = (at + dice.delay(latency)).max(last_due);
                tokio::time::sleep_until(due).await;
                last_due = due;
                self.note(format!(
                    "{}: {} bytes held {} (latency {latency})",
                    way.word(),
                    bytes.len(),
                    duration_text(Duration::from_millis(
                        due.saturating_duration_since(at).as_millis() as u64
                    ))
                ));
            }
            let piece = match (&toxics.slice, &toxics.bandwidth) {
                (Some(s), _) => s.size as usize,
                // 50 ms worth at a time, so the pace is smooth.
                (None, Some(b)) => (b.0 / 20).clamp(1, READ_BUFFER as u64) as usize,
                (None, None) => bytes.len().max(1),
            };
            let pieces = bytes.len().div_ceil(piece).max(1);
            let mut waited = Duration::ZERO;
            for (i, chunk) in bytes.chunks(piece).enumerate() {
                if i > 0
                    && let Some(s) = &toxics.slice
                {
                    tokio::time::sleep(s.gap).await;
                }
                if let Some(rate) = &toxics.bandwidth {
                    let now = Instant::now();
                    if next_free > now {
                        waited += next_free - now;
                        tokio::time::sleep_until(next_free).await;
                    }
                    let start = next_free.max(now);
                    next_free = start + Duration::from_secs_f64(chunk.len() as f64 / rate.0 as f64);
                }
                let written = async {
                    wr.write_all(chunk).await?;
                    wr.flush().await
                };
                if let Err(e) = written.await {
                    self.write_failed(way, &e);
                    return WriterEnd::Abort;
                }
            }
            passed += bytes.len() as u64;
            if let Some(s) = &toxics.slice
                && pieces > 1
            {
                self.note(format!(
                    "{}: {} bytes written in {pieces} slices of at most {} bytes, {} apart (slice {s})",
                    way.word(),
                    bytes.len(),
                    s.size,
                    duration_text(s.gap)
                ));
            }
            if let Some(rate) = &toxics.bandwidth
                && !waited.is_zero()
            {
                self.note(format!(
                    "{}: {} bytes paced to {rate} (waited {})",
                    way.word(),
                    bytes.len(),
                    duration_text(Duration::from_millis(waited.as_millis() as u64))
                ));
            }
            if let Some((_, end, word)) = then {
                self.note(format!(
                    "{}: {word} after {passed} bytes reached: both connections are {}",
                    way.word(),
                    if word == "close" { "closed" } else { "reset" }
                ));
                return end;
            }
        }
        WriterEnd::HalfClosed
    }

    fn write_failed(&self, way: Way, e: &std::io::Error) {
        match way {
            Way::Up if classify(e) == ErrorKind::Reset => {
                self.note("upstream: the upstream reset the connection")
            }
            Way::Up => self.upstream_failed(NetError::from_io(
                Operation::Send,
                format!("to {}", self.plan.upstream),
                e,
            )),
            Way::Down if classify(e) == ErrorKind::Reset => {
                self.ctx.emit(EventKind::Reset { peer: self.peer })
            }
            Way::Down => self.ctx.failed(
                Some(self.peer),
                NetError::from_io(Operation::Send, format!("to {}", self.client_addr), e),
            ),
        }
    }
}

async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

// ---------------------------------------------------------------- UDP

/// One direction's datagrams on their way, impaired: dropped, doubled, held
/// back, delayed and paced, in order of their due time.
struct DelayLine {
    way: Way,
    toxics: Toxics,
    dice: Dice,
    queue: VecDeque<(Instant, Bytes)>,
    last_due: Instant,
    next_free: Instant,
    /// A datagram held back to go after the next one, and when it goes anyway.
    held: Option<(Bytes, Instant)>,
    seen: u64,
    lost: u64,
    doubled: u64,
    reordered: u64,
    /// Dropped because the line was full.
    overflow: u64,
}

impl DelayLine {
    fn new(way: Way, toxics: Toxics, dice: Dice) -> Self {
        let now = Instant::now();
        DelayLine {
            way,
            toxics,
            dice,
            queue: VecDeque::new(),
            last_due: now,
            next_free: now,
            held: None,
            seen: 0,
            lost: 0,
            doubled: 0,
            reordered: 0,
            overflow: 0,
        }
    }

    /// Takes a datagram in; returns what an impairment did to it, for the log.
    fn push(&mut self, bytes: Bytes, now: Instant) -> Option<String> {
        self.seen += 1;
        let n = self.seen;
        let way = self.way.word();
        if let Some(p) = self.toxics.loss
            && self.dice.chance(p)
        {
            self.lost += 1;
            return Some(format!("{way}: datagram {n} dropped (loss {p})"));
        }
        let mut said = None;
        let copies = match self.toxics.duplicate {
            Some(p) if self.dice.chance(p) => {
                self.doubled += 1;
                said = Some(format!("{way}: datagram {n} sent twice (duplicate {p})"));
                2
            }
            _ => 1,
        };
        if let Some(p) = self.toxics.reorder
            && self.held.is_none()
            && self.dice.chance(p)
        {
            self.reordered += 1;
            self.held = Some((bytes, now + REORDER_WAIT));
            return Some(format!(
                "{way}: datagram {n} held back to go after the next one (reorder {p})"
            ));
        }
        for _ in 0..copies {
            self.schedule(bytes.clone(), now);
        }
        if let Some((held, _)) = self.held.take() {
            self.schedule(held, now);
        }
        said
    }

    fn schedule(&mut self, bytes: Bytes, now: Instant) {
        if self.queue.len() >= QUEUE_DATAGRAMS {
            self.overflow += 1;
            return;
        }
        let mut due = match &self.toxics.latency {
            Some(l) => now + self.dice.delay(l),
            None => now,
        }
        .max(self.last_due);
        if let Some(rate) = &self.toxics.bandwidth {
            due = due.max(self.next_free);
            self.next_free = due + Duration::from_secs_f64(bytes.len() as f64 / rate.0 as f64);
        }
        self.last_due = due;
        self.queue.push_back((due, bytes));
    }

    /// When something is next due: a queued datagram, or a held one's wait.
    fn next_due(&self) -> Option<Instant> {
        let queued = self.queue.front().map(|(at, _)| *at);
        let held = self.held.as_ref().map(|(_, at)| *at);
        match (queued, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The datagrams due by `now`, in order.
    fn due(&mut self, now: Instant) -> Vec<Bytes> {
        if let Some((_, at)) = &self.held
            && *at <= now
            && let Some((held, _)) = self.held.take()
        {
            self.schedule(held, now);
        }
        let mut out = Vec::new();
        while let Some((at, _)) = self.queue.front() {
            if *at > now {
                break;
            }
            if let Some((_, b)) = self.queue.pop_front() {
                out.push(b);
            }
        }
        out
    }

    /// The counts, when an impairment did anything.
    fn summary(&self) -> Option<String> {
        if self.lost + self.doubled + self.reordered + self.overflow == 0 {
            return None;
        }
        Some(format!(
            "{}: of {} datagrams, {} dropped, {} sent twice, {} reordered, {} dropped for a full queue",
            self.way.word(),
            self.seen,
            self.lost,
            self.doubled,
            self.reordered,
            self.overflow
        ))
    }
}

/// A UDP client the relay knows.
struct UdpClient {
    peer: PeerId,
    tx: mpsc::Sender<Bytes>,
    last: Instant,
    stop: CancellationToken,
}

async fn udp_relay(
    ctx: EndpointCtx,
    plan: Plan,
    mut commands: mpsc::UnboundedReceiver<EndpointCommand>,
) {
    let addrs = tokio::select! {
        _ = ctx.token.cancelled() => return,
        r = resolve(&ctx, &plan.listen) => r,
    };
    let addr = match addrs {
        Ok(a) => a[0],
        Err(e) => return ctx.failed(None, e),
    };
    let upstream = tokio::select! {
        _ = ctx.token.cancelled() => return,
        r = resolve(&ctx, &plan.upstream) => r,
    };
    let upstream = match upstream {
        Ok(a) => a[0],
        Err(e) => return ctx.failed(None, e),
    };
    let socket = match udp::bind_socket(&ctx, addr, true) {
        Ok(s) => Arc::new(s),
        Err(e) => return ctx.failed(None, e),
    };
    let local = socket.local_addr().unwrap_or(addr);
    ctx.emit(EventKind::Bound { local });
    opening_notes(&ctx, &plan);
    let plan = Arc::new(plan);
    let max = ctx.options.max_peers.unwrap_or(UDP_CLIENTS) as usize;
    let mut clients: HashMap<SocketAddr, UdpClient> = HashMap::new();
    let mut intercept = Intercept::new();
    let mut next_peer: PeerId = 1;
    let tracker = TaskTracker::new();
    let mut buf = vec![0u8; 65536];
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut refused, mut unlogged, mut queue_full) = (0u64, 0u64, 0u64);
    loop {
        tokio::select! {
            _ = ctx.token.cancelled() => break,
            received = socket.recv_from(&mut buf) => {
                let (n, from) = match received {
                    Ok(r) => r,
                    // An ICMP error for an earlier answer to a client: not fatal.
                    Err(e) if matches!(classify(&e), ErrorKind::Refused | ErrorKind::Reset) => continue,
                    Err(e) => {
                        ctx.failed(None, NetError::from_io(Operation::Receive, format!("on {local}"), &e));
                        break;
                    }
                };
                let bytes = Bytes::copy_from_slice(&buf[..n]);
                if !clients.contains_key(&from) {
                    if clients.len() >= max {
                        refused += 1;
                        if refused == 1 {
                            ctx.emit(EventKind::Note { peer: None, text: format!(
                                "datagrams from new clients are dropped while {max} clients are relayed (max peers); counted below"
                            )});
                        }
                        continue;
                    }
                    let peer = next_peer;
                    next_peer += 1;
                    let (tx, rx) = mpsc::channel(QUEUE_DATAGRAMS);
                    let stop = ctx.token.child_token();
                    clients.insert(from, UdpClient { peer, tx, last: Instant::now(), stop: stop.clone() });
                    let hold = intercept.join(&ctx, peer);
                    let task = UdpConversation {
                        ctx: ctx.clone(),
                        peer,
                        client: from,
                        upstream,
                        listen: socket.clone(),
                        plan: plan.clone(),
                        items: intercept.items.clone(),
                    };
                    tracker.spawn(super::net::guarded(ctx.clone(), task.run(rx, stop, hold)));
                }
                let Some(client) = clients.get_mut(&from) else { continue };
                client.last = Instant::now();
                let Some(charge) = ctx.emitter.try_charge(bytes.len()) else {
                    unlogged += 1;
                    continue;
                };
                ctx.emitter.send_batch(ctx.id, vec![(EventKind::Traffic {
                    peer: client.peer,
                    remote: from,
                    dir: Direction::Received,
                    bytes: bytes.clone(),
                }, charge)]);
                if client.tx.try_send(bytes).is_err() {
                    queue_full += 1;
                }
            }
            _ = sweep.tick() => {
                let now = Instant::now();
                clients.retain(|_, c| {
                    let idle = now.saturating_duration_since(c.last) >= UDP_IDLE;
                    if idle {
                        note(&ctx, c.peer, format!(
                            "no datagram from the client for {} s: it is forgotten, its upstream socket closed",
                            UDP_IDLE.as_secs()
                        ));
                    }
                    let gone = idle || c.tx.is_closed();
                    if gone {
                        c.stop.cancel();
                        intercept.leave(c.peer);
                    }
                    !gone
                });
                report_udp_drops(&ctx, &mut refused, &mut unlogged, &mut queue_full);
            }
            command = commands.recv() => match command {
                None | Some(EndpointCommand::Close { .. }) => break,
                Some(EndpointCommand::Disconnect { peer, .. }) => {
                    clients.retain(|_, c| {
                        if c.peer == peer { c.stop.cancel(); }
                        c.peer != peer
                    });
                    intercept.leave(peer);
                }
                Some(other) => {
                    if !intercept.command(&ctx, &other) {
                        refuse_command(&ctx, &other);
                    }
                }
            },
        }
    }
    for c in clients.values() {
        c.stop.cancel();
    }
    report_udp_drops(&ctx, &mut refused, &mut unlogged, &mut queue_full);
    tracker.close();
    tokio::select! {
        _ = ctx.token.cancelled() => {}
        _ = tokio::time::timeout(CLOSE_GRACE, tracker.wait()) => {}
    }
}

fn report_udp_drops(
    ctx: &EndpointCtx,
    refused: &mut u64,
    unlogged: &mut u64,
    queue_full: &mut u64,
) {
    if *unlogged > 0 {
        ctx.emit(EventKind::Dropped {
            cause: DropCause::Budget,
            datagrams: std::mem::take(unlogged),
            bytes: None,
        });
    }
    if *refused > 0 {
        ctx.emit(EventKind::Note {
            peer: None,
            text: format!(
                "{} datagrams from new clients dropped: the relay already serves its most clients",
                std::mem::take(refused)
            ),
        });
    }
    if *queue_full > 0 {
        ctx.emit(EventKind::Note {
            peer: None,
            text: format!(
                "up: {} datagrams dropped: the queue toward the upstream was full",
                std::mem::take(queue_full)
            ),
        });
    }
}

/// One UDP client and its own socket toward the upstream.
struct UdpConversation {
    ctx: EndpointCtx,
    peer: PeerId,
    client: SocketAddr,
    upstream: SocketAddr,
    listen: Arc<UdpSocket>,
    plan: Arc<Plan>,
    /// Numbers held items across the relay's clients.
    items: Arc<AtomicU64>,
}

impl UdpConversation {
    async fn run(
        self,
        mut rx: mpsc::Receiver<Bytes>,
        stop: CancellationToken,
        ([mut up_gate, mut down_gate], [mut up_inbox, mut down_inbox]): (
            [Gate<Bytes>; 2],
            GateInbox,
        ),
    ) {
        let ctx = &self.ctx;
        let peer = self.peer;
        let said = |way| move |item, change| intercept_event(ctx, peer, way, item, change);
        let next = || self.items.fetch_add(1, Ordering::Relaxed) + 1;
        // Datagrams that found a full hold queue: UDP cannot be slowed, so they are dropped.
        let mut held_full = [0u64; 2];
        let (mut up_inbox_open, mut down_inbox_open) = (true, true);
        let own = match udp::bind_socket(ctx, unspecified_for(&self.upstream), true) {
            Ok(s) => s,
            Err(e) => return self.failed(e),
        };
        if let Err(e) = own.connect(self.upstream).await {
            return self.failed(NetError::from_io(
                Operation::Connect,
                format!("to {}", self.upstream),
                &e,
            ));
        }
        let from = own.local_addr().map(|a| a.to_string()).unwrap_or_default();
        note(
            ctx,
            peer,
            format!("upstream: datagrams go to {} from {from}", self.upstream),
        );
        let seed = self.plan.seed;
        let mut up = DelayLine::new(
            Way::Up,
            self.plan.impair.up.clone(),
            Dice::new(seed, peer as u64, Way::Up),
        );
        let mut down = DelayLine::new(
            Way::Down,
            self.plan.impair.down.clone(),
            Dice::new(seed, peer as u64, Way::Down),
        );
        let mut buf = vec![0u8; 65536];
        let mut unlogged = 0u64;
        loop {
            let up_due = up.next_due();
            let down_due = down.next_due();
            tokio::select! {
                _ = stop.cancelled() => break,
                datagram = rx.recv() => match datagram {
                    Some(_) if !up_gate.has_room() => held_full[0] += 1,
                    Some(bytes) => {
                        if let Some(bytes) = up_gate.admit(bytes, next, &mut said(Way::Up))
                            && let Some(said) = up.push(bytes, Instant::now())
                        {
                            note(ctx, peer, said);
                        }
                    }
                    None => break,
                },
                command = up_inbox.recv(), if up_inbox_open => match command {
                    Some(c) => {
                        for bytes in up_gate.command(c, &mut said(Way::Up)) {
                            if let Some(said) = up.push(bytes, Instant::now()) {
                                note(ctx, peer, said);
                            }
                        }
                    }
                    None => up_inbox_open = false,
                },
                command = down_inbox.recv(), if down_inbox_open => match command {
                    Some(c) => {
                        for bytes in down_gate.command(c, &mut said(Way::Down)) {
                            if let Some(said) = down.push(bytes, Instant::now()) {
                                note(ctx, peer, said);
                            }
                        }
                    }
                    None => down_inbox_open = false,
                },
                received = own.recv(&mut buf) => match received {
                    Ok(n) => {
                        let bytes = Bytes::copy_from_slice(&buf[..n]);
                        let Some(charge) = ctx.emitter.try_charge(n) else {
                            unlogged += 1;
                            continue;
                        };
                        ctx.emitter.send_batch(ctx.id, vec![(EventKind::Traffic {
                            peer,
                            remote: self.client,
                            dir: Direction::Sent,
                            bytes: bytes.clone(),
                        }, charge)]);
                        if !down_gate.has_room() {
                            held_full[1] += 1;
                            continue;
                        }
                        if let Some(bytes) = down_gate.admit(bytes, next, &mut said(Way::Down))
                            && let Some(said) = down.push(bytes, Instant::now())
                        {
                            note(ctx, peer, said);
                        }
                    }
                    Err(e) if classify(&e) == ErrorKind::Refused => note(
                        ctx,
                        peer,
                        format!("upstream: {} says no one listens on that port (ICMP port unreachable)", self.upstream),
                    ),
                    Err(e) => {
                        self.failed(NetError::from_io(Operation::Receive, format!("from {}", self.upstream), &e));
                        break;
                    }
                },
                _ = until(up_due) => {
                    for bytes in up.due(Instant::now()) {
                        if let Err(e) = own.send(&bytes).await
                            && classify(&e) != ErrorKind::Refused
                        {
                            self.failed(NetError::from_io(Operation::Send, format!("to {}", self.upstream), &e));
                        }
                    }
                }
                _ = until(down_due) => {
                    for bytes in down.due(Instant::now()) {
                        if let Err(e) = self.listen.send_to(&bytes, self.client).await {
                            ctx.failed(Some(peer), NetError::from_io(Operation::Send, format!("to {}", self.client), &e));
                        }
                    }
                }
            }
        }
        for line in [&up, &down] {
            if let Some(said) = line.summary() {
                note(ctx, peer, said);
            }
        }
        for (way, n) in [(Way::Up, held_full[0]), (Way::Down, held_full[1])] {
            if n > 0 {
                note(
                    ctx,
                    peer,
                    format!(
                        "{}: {n} datagrams dropped: the hold queue was full ({} items or {} bytes)",
                        way.word(),
                        super::intercept::HOLD_ITEMS,
                        super::intercept::HOLD_BYTES
                    ),
                );
            }
        }
        if unlogged > 0 {
            ctx.emit(EventKind::Dropped {
                cause: DropCause::Budget,
                datagrams: unlogged,
                bytes: None,
            });
        }
    }

    fn failed(&self, mut e: NetError) {
        e.message = format!("upstream: {}", e.message);
        self.ctx.failed(Some(self.peer), e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(toxics: &str) -> DelayLine {
        let toxics: Toxics = ron::from_str(toxics).unwrap();
        DelayLine::new(Way::Up, toxics, Dice::new(9, 1, Way::Up))
    }

    #[tokio::test(start_paused = true)]
    async fn datagrams_held_back_go_after_the_next_one() {
        let mut l = line("(reorder:Some(\"100%\"))");
        let now = Instant::now();
        assert!(l.push(Bytes::from_static(b"1"), now).is_some());
        assert!(l.due(now).is_empty(), "held back");
        l.push(Bytes::from_static(b"2"), now);
        assert_eq!(
            l.due(now),
            vec![Bytes::from_static(b"2"), Bytes::from_static(b"1")]
        );
        // Alone, a held datagram still goes after its wait.
        l.push(Bytes::from_static(b"3"), now);
        assert!(l.due(now).is_empty());
        assert_eq!(l.due(now + REORDER_WAIT), vec![Bytes::from_static(b"3")]);
    }

    #[tokio::test(start_paused = true)]
    async fn duplicates_and_delays_keep_order() {
        let mut l = line("(duplicate:Some(\"100%\"),latency:Some(\"10ms\"))");
        let now = Instant::now();
        l.push(Bytes::from_static(b"a"), now);
        l.push(Bytes::from_static(b"b"), now);
        assert!(l.due(now).is_empty());
        let out = l.due(now + Duration::from_millis(10));
        assert_eq!(out, [b"a", b"a", b"b", b"b"].map(|b| Bytes::from_static(b)));
        assert_eq!(l.doubled, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_line_drops_and_counts() {
        let mut l = line("(latency:Some(\"1s\"))");
        let now = Instant::now();
        for _ in 0..QUEUE_DATAGRAMS + 3 {
            l.push(Bytes::from_static(b"x"), now);
        }
        assert_eq!(l.overflow, 3);
        assert!(l.summary().unwrap().contains("3 dropped for a full queue"));
    }
}
