//! One stream connection (a TCP or Unix-domain client's, or one peer of such
//! a server): reads
//! and writes run side by side, so a peer that sends while we write never
//! deadlocks us, and every read and write becomes an event.
//!
//! Bounded both ways: a read waits for room in the engine's event budget
//! before the next read (so a caller that falls behind slows the peer through
//! TCP's flow control), and an echo waits for room in the connection's
//! outgoing queue ([`OUT_QUEUE`](super::OUT_QUEUE)), so a peer that sends but
//! never reads is no longer read either.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::net::EndpointCtx;
use super::reply::Reaction;
use super::{CLOSE_GRACE, EventKind, NetError, OUT_QUEUE, Operation, PeerId, Split, classify};
use crate::model::{Direction, ErrorKind, UnixName};

/// Who is at the other end of a connection: an IP address and port, or a
/// Unix-domain socket's name (escaped when shown: the peer chose it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PeerAddr {
    Inet(SocketAddr),
    Unix(UnixName),
}

impl PeerAddr {
    /// The `remote` of this connection's `Traffic` events.
    fn event_addr(&self) -> SocketAddr {
        match self {
            PeerAddr::Inet(a) => *a,
            PeerAddr::Unix(_) => super::UNIX_PEER,
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> Self {
        PeerAddr::Inet(a)
    }
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAddr::Inet(a) => a.fmt(f),
            PeerAddr::Unix(UnixName::Unnamed) => f.write_str("the unnamed peer"),
            PeerAddr::Unix(n) => n.fmt(f),
        }
    }
}

/// Room for any datagram (UDP and the replay player read into this much).
pub(crate) const READ_BUFFER: usize = 64 * 1024;

/// The largest read of a stream; one read becomes one `Traffic` event. As
/// large as python asyncio's reads: a flood costs a quarter of the reads,
/// events and echo writes that 64 KiB reads cost.
pub(crate) const STREAM_READ: usize = 256 * 1024;

/// The first reads of a connection ask this much room; the room doubles (up
/// to [`STREAM_READ`]) while reads fill it, so a quiet connection stays small.
const FIRST_READ: usize = 8 * 1024;

/// A stream over one socket (TCP, plain or with TLS on top, or Unix-domain),
/// whose socket options can be set without duplicating its descriptor.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    fn sock(&self) -> SockRef<'_>;

    /// Ready when a read may find data, so the reader asks for room only
    /// then. A TLS stream may hold decrypted bytes the socket no longer
    /// shows, so it is always ready (its reads wait inside).
    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Transport for TcpStream {
    fn sock(&self) -> SockRef<'_> {
        SockRef::from(self)
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }
}

impl Transport for UnixStream {
    fn sock(&self) -> SockRef<'_> {
        SockRef::from(self)
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        UnixStream::poll_read_ready(self, cx)
    }
}

impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    fn sock(&self) -> SockRef<'_> {
        SockRef::from(self.get_ref().0)
    }
}

impl Transport for tokio_rustls::client::TlsStream<TcpStream> {
    fn sock(&self) -> SockRef<'_> {
        SockRef::from(self.get_ref().0)
    }
}

/// A payload in a connection's outgoing queue, holding its share of the queue.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub bytes: Bytes,
    pub split: Split,
    /// Released when the payload is written (or dropped), making room.
    pub held: Option<OwnedSemaphorePermit>,
}

/// What a connection is asked to do, in order.
#[derive(Debug)]
pub(crate) enum ConnCommand {
    /// Boxed: a queue's slots are as large as its largest command, and every
    /// connection has a queue (32 slots of 16 bytes, not of 72).
    Send(Box<Outgoing>),
    SetNoDelay(bool),
    /// Read nothing for this long (zero: read again now).
    PauseReads(std::time::Duration),
    HalfClose,
    /// Write what is queued before this, send FIN, wait briefly for the peer's FIN.
    Close,
    /// Close at once with a reset (SO_LINGER 0).
    Abort,
}

/// The handle an endpoint keeps for each of its connections.
#[derive(Clone)]
pub(crate) struct ConnHandle {
    pub commands: mpsc::UnboundedSender<ConnCommand>,
    /// [`OUT_QUEUE`]: the payload bytes queued and not yet written.
    room: Arc<Semaphore>,
    remote: PeerAddr,
}

/// The share of the outgoing queue a payload holds (a payload bigger than the
/// queue still goes, alone).
fn out_charge(len: usize) -> u32 {
    len.min(OUT_QUEUE) as u32
}

impl ConnHandle {
    pub fn new(remote: impl Into<PeerAddr>) -> (ConnHandle, mpsc::UnboundedReceiver<ConnCommand>) {
        let (commands, rx) = mpsc::unbounded_channel();
        let handle = ConnHandle {
            commands,
            room: Arc::new(Semaphore::new(OUT_QUEUE)),
            remote: remote.into(),
        };
        (handle, rx)
    }

    /// Queues a command that carries no payload.
    pub fn send(&self, command: ConnCommand) {
        let _ = self.commands.send(command);
    }

    /// Queues a payload the caller sent, if the queue has room for it; a full
    /// queue fails the send with an event (the peer reads slower than we send),
    /// and so does a connection that has just ended (its end drained the queue
    /// and told of what waited there; this payload came after).
    pub fn send_payload(&self, ctx: &EndpointCtx, peer: PeerId, bytes: Bytes, split: Split) {
        let len = bytes.len();
        match self.room.clone().try_acquire_many_owned(out_charge(len)) {
            Ok(held) => {
                let queued = self.commands.send(ConnCommand::Send(Box::new(Outgoing {
                    bytes,
                    split,
                    held: Some(held),
                })));
                if queued.is_err() {
                    ctx.failed(
                        Some(peer),
                        NetError::new(
                            ErrorKind::Other,
                            Operation::Send,
                            format!(
                                "send {len} bytes to {}: not sent, the connection ended first",
                                self.remote
                            ),
                        ),
                    );
                }
            }
            Err(_) => {
                let waiting = OUT_QUEUE.saturating_sub(self.room.available_permits());
                ctx.failed(
                    Some(peer),
                    NetError::new(
                        ErrorKind::Other,
                        Operation::Send,
                        format!(
                            "send {len} bytes to {}: not queued, {waiting} bytes already wait \
                             to be written to this peer (it reads slower than we send)",
                            self.remote
                        ),
                    ),
                );
            }
        }
    }
}

/// One half of a stream shared by the connection's reader and writer (both
/// polled by the connection's one task), which can still reach the socket to
/// set options: one descriptor per connection, no duplicate.
pub(crate) struct Half<S>(Arc<Mutex<S>>);

impl<S> Clone for Half<S> {
    fn clone(&self) -> Self {
        Half(self.0.clone())
    }
}

impl<S> Half<S> {
    fn lock(&self) -> std::sync::MutexGuard<'_, S> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<S: Transport> Half<S> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.lock().poll_read_ready(cx)
    }

    pub(crate) fn socket<R>(&self, f: impl FnOnce(SockRef<'_>) -> R) -> R {
        let stream = self.lock();
        f(stream.sock())
    }
}

pub(crate) fn halves<S>(stream: S) -> (Half<S>, Half<S>) {
    let shared = Arc::new(Mutex::new(stream));
    (Half(shared.clone()), Half(shared))
}

impl<S: AsyncRead + Unpin> AsyncRead for Half<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Half<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.lock()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_shutdown(cx)
    }
}

enum ReadEnd {
    Eof,
    Error(std::io::Error),
}

enum WriteEnd {
    /// Our side is closed in order (FIN sent).
    Closed,
    Aborted,
    /// A payload's write failed.
    Error(std::io::Error),
    /// shutdown(SHUT_WR) failed.
    ShutdownError(std::io::Error),
    /// Nobody can send us commands any more.
    Orphaned,
}

/// The room a connection reads into. None while the connection is quiet:
/// room is asked for only once the socket has data, and given back when a
/// read finds the socket empty again, so thousands of idle connections hold
/// no read buffers. While reads fill it, the room doubles from
/// [`FIRST_READ`] up to [`STREAM_READ`].
///
/// While data flows, a few buffers rotate: a buffer whose reads' bytes are
/// all gone (logged, echoed) is taken again as it is, not freed and
/// allocated anew — fresh memory costs a page fault per page on the first
/// read into it, and the allocator hands freed large blocks back to the
/// kernel (most of an echo's time went there).
struct ReadRoom {
    buf: BytesMut,
    /// Full buffers whose reads may still be held; taken again once they are not.
    spare: Vec<BytesMut>,
    /// `buf` is part of an allocation (not the empty buffer of a quiet connection).
    allocated: bool,
    want: usize,
}

/// Buffers a flowing connection keeps besides the one it reads into.
const SPARE_BUFFERS: usize = 16;

impl ReadRoom {
    fn new() -> ReadRoom {
        ReadRoom {
            buf: BytesMut::new(),
            spare: Vec::new(),
            allocated: false,
            want: FIRST_READ,
        }
    }

    /// Makes room for the next read (reusing a buffer whose earlier reads'
    /// bytes are gone) and returns how much there is.
    fn prepare(&mut self) -> usize {
        if self.buf.capacity() - self.buf.len() < self.want / 4 && !self.buf.try_reclaim(self.want)
        {
            let full = std::mem::take(&mut self.buf);
            self.buf = match self.spare.iter_mut().position(|b| b.try_reclaim(self.want)) {
                Some(i) => self.spare.swap_remove(i),
                None => BytesMut::with_capacity(self.want),
            };
            if self.allocated {
                if self.spare.len() >= SPARE_BUFFERS {
                    self.spare.remove(0);
                }
                self.spare.push(full);
            }
            self.allocated = true;
        }
        self.buf.capacity() - self.buf.len()
    }

    /// The `n` bytes just read into `room`, split off to be shared by the
    /// event, the log and an echo.
    fn take(&mut self, n: usize, room: usize) -> Bytes {
        if n == room {
            self.want = (self.want * 2).min(STREAM_READ);
        }
        self.buf.split().freeze()
    }

    /// The socket has nothing to read: the room goes (bytes already taken
    /// keep their share of it until they are dropped).
    fn release(&mut self) {
        self.buf = BytesMut::new();
        self.allocated = false;
        self.spare.clear();
    }

    /// Bytes of room held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.buf.capacity() + self.spare.iter().map(BytesMut::capacity).sum::<usize>()
    }
}

/// Runs the connection until it is over, then emits `Closed`. `handle` is
/// the endpoint's handle of this connection (echoes are queued through it),
/// `commands` its queue.
pub(crate) async fn run<S: Transport>(
    ctx: EndpointCtx,
    peer: PeerId,
    remote: impl Into<PeerAddr>,
    stream: S,
    handle: ConnHandle,
    mut commands: mpsc::UnboundedReceiver<ConnCommand>,
    token: CancellationToken,
) {
    let remote: PeerAddr = remote.into();
    let (rd, wr) = halves(stream);
    let commands_tx = handle.commands.clone();
    // The payload being written, if any: when the connection ends before that
    // write finished, its `Sent` event needs a failure after it.
    let in_flight: std::sync::Arc<std::sync::Mutex<Option<usize>>> = Default::default();
    // Until when the reader reads nothing (a pause asked for through the queue).
    let (pause_tx, pause_rx) = tokio::sync::watch::channel::<Option<Instant>>(None);
    // Boxed, not stack-pinned, so the halves can be dropped (the socket closed)
    // before `Closed` is reported; built inside their boxes (separate
    // functions), so this future does not carry a second copy of each.
    let mut reader = Box::pin(read_loop(
        ctx.clone(),
        peer,
        remote.event_addr(),
        rd,
        commands_tx.clone(),
        handle.room.clone(),
        pause_rx,
    ));
    let mut writer = Box::pin(write_loop(
        ctx.clone(),
        peer,
        remote.clone(),
        wr,
        &mut commands,
        in_flight.clone(),
        pause_tx,
    ));
    // A weak sender, so the queue still closes when the endpoint drops its handle
    // and the reader is done.
    let queue = commands_tx.downgrade();
    drop(commands_tx);
    drop(handle);

    let mut reading = true;
    let mut aborted = false;
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            end = &mut reader, if reading => {
                reading = false;
                match end {
                    ReadEnd::Eof => {
                        ctx.emit(EventKind::PeerClosed { peer });
                        // The peer is done: finish the writes queued so far (replies
                        // included), then close our side too.
                        if let Some(queue) = queue.upgrade() {
                            let _ = queue.send(ConnCommand::Close);
                        }
                    }
                    ReadEnd::Error(e) => {
                        report_error(&ctx, peer, Operation::Receive, &remote, &e);
                        break;
                    }
                }
            }
            end = &mut writer => {
                match end {
                    WriteEnd::Closed => {
                        if reading {
                            // Read what the peer still sends until it closes too.
                            match tokio::time::timeout(CLOSE_GRACE, &mut reader).await {
                                Ok(ReadEnd::Eof) => ctx.emit(EventKind::PeerClosed { peer }),
                                Ok(ReadEnd::Error(e)) => report_error(&ctx, peer, Operation::Receive, &remote, &e),
                                Err(_) => {}
                            }
                        }
                    }
                    WriteEnd::Aborted => aborted = true,
                    WriteEnd::Error(e) => {
                        // The failed write's payload was reported sent: say it did not go out.
                        let len = swap_in_flight(&in_flight, None).unwrap_or_default();
                        if classify(&e) == ErrorKind::Reset {
                            ctx.emit(EventKind::Reset { peer });
                        }
                        let error = tls_error(&e, Operation::Send, &remote)
                            .unwrap_or_else(|| {
                                NetError::from_io(Operation::Send, format!("{len} bytes to {remote}"), &e)
                            });
                        ctx.failed(Some(peer), error.of_reported_write());
                    }
                    WriteEnd::ShutdownError(e) => report_error(&ctx, peer, Operation::Shutdown, &remote, &e),
                    WriteEnd::Orphaned => {}
                }
                break;
            }
        }
    }
    // Dropping the halves closes the socket (with a reset when aborted).
    drop(reader);
    drop(writer);
    // A write cut short (the peer reset us, the engine stopped) did not go out
    // whole; payloads still queued did not go out at all. Nothing is dropped unsaid.
    if let Some(len) = swap_in_flight(&in_flight, None) {
        ctx.failed(
            Some(peer),
            NetError::new(
                ErrorKind::Other,
                Operation::Send,
                format!(
                    "send {len} bytes to {remote}: cut short, the connection ended during the write"
                ),
            )
            .of_reported_write(),
        );
    }
    commands.close();
    while let Ok(command) = commands.try_recv() {
        if let ConnCommand::Send(outgoing) = command {
            let bytes = &outgoing.bytes;
            ctx.failed(
                Some(peer),
                NetError::new(
                    ErrorKind::Other,
                    Operation::Send,
                    format!(
                        "send {} bytes to {remote}: not sent, the connection ended first",
                        bytes.len()
                    ),
                ),
            );
        }
    }
    ctx.emit(EventKind::Closed { peer, aborted });
}

/// The note for the end of a pause of reads.
fn reads_again(peer: PeerId) -> EventKind {
    EventKind::Note {
        peer: Some(peer),
        text: "reads again: the next read takes everything that waited in the receive buffer"
            .into(),
    }
}

/// Reads until the peer closes or a read fails; queues an echo (or a rule's
/// answer) for each read.
async fn read_loop<S: Transport>(
    ctx: EndpointCtx,
    peer: PeerId,
    remote: SocketAddr,
    mut rd: Half<S>,
    commands_tx: mpsc::UnboundedSender<ConnCommand>,
    room: Arc<Semaphore>,
    mut pause_rx: tokio::sync::watch::Receiver<Option<Instant>>,
) -> ReadEnd {
    // Reads land in one buffer; each read is split off and frozen, shared
    // by its event, the caller's log and an echo (one copy per byte).
    let mut space = ReadRoom::new();
    let mut conversation = ctx.reply.conversation();
    let mut reactions = Vec::new();
    // False once nobody can ask for a pause any more.
    let mut watching = true;
    loop {
        let until = *pause_rx.borrow_and_update();
        if let Some(until) = until.filter(|u| *u > Instant::now()) {
            space.release();
            tokio::select! {
                // The pause ran out by itself; a pause ended early is said by
                // the writer, which carries out that command.
                _ = tokio::time::sleep_until(until) => ctx.emit(reads_again(peer)),
                changed = pause_rx.changed(), if watching => watching = changed.is_ok(),
            }
            continue;
        }
        // A quiet connection holds no room while it waits for data; a pause
        // asked for meanwhile stops the wait.
        let ready = tokio::select! {
            biased;
            changed = pause_rx.changed(), if watching => {
                watching = changed.is_ok();
                continue;
            }
            ready = std::future::poll_fn(|cx| {
                let ready = rd.poll_read_ready(cx);
                if ready.is_pending() {
                    space.release();
                }
                ready
            }) => ready,
        };
        if let Err(e) = ready {
            return ReadEnd::Error(e);
        }
        let room_before = space.prepare();
        // A read is cancel-safe: nothing read is lost when a pause stops it.
        let read = tokio::select! {
            biased;
            changed = pause_rx.changed(), if watching => {
                watching = changed.is_ok();
                continue;
            }
            read = rd.read_buf(&mut space.buf) => read,
        };
        match read {
            Ok(0) => return ReadEnd::Eof,
            Ok(n) => {
                let bytes = space.take(n, room_before);
                ctx.reply
                    .react(conversation.as_mut(), &bytes, false, &mut reactions);
                // Waits while the caller is a budget behind: no read meanwhile.
                ctx.emitter
                    .emit_received(
                        ctx.id,
                        EventKind::Traffic {
                            peer,
                            remote,
                            dir: Direction::Received,
                            bytes,
                        },
                    )
                    .await;
                for reaction in reactions.drain(..) {
                    let (answer, delay) = match reaction {
                        Reaction::Send { bytes, delay } => (bytes, delay),
                        Reaction::Note(text) => {
                            ctx.emit(EventKind::Note {
                                peer: Some(peer),
                                text,
                            });
                            continue;
                        }
                        Reaction::Matched { rule, text } => {
                            ctx.emit(EventKind::RuleMatched { peer, rule, text });
                            continue;
                        }
                    };
                    // A rule's delay holds this connection's later messages too,
                    // so its answers keep their order.
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    // Waits for room in the outgoing queue: a peer that does
                    // not read what we echo is not read either.
                    let Ok(held) = room
                        .clone()
                        .acquire_many_owned(out_charge(answer.len()))
                        .await
                    else {
                        continue;
                    };
                    let _ = commands_tx.send(ConnCommand::Send(Box::new(Outgoing {
                        bytes: answer,
                        split: Split::WHOLE,
                        held: Some(held),
                    })));
                }
            }
            // A TLS peer that closes without close_notify (as many do) has still ended.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return ReadEnd::Eof,
            Err(e) => return ReadEnd::Error(e),
        }
    }
}

/// Carries out the connection's commands in order until it is closed.
async fn write_loop<S: Transport>(
    ctx: EndpointCtx,
    peer: PeerId,
    remote: PeerAddr,
    mut wr: Half<S>,
    commands: &mut mpsc::UnboundedReceiver<ConnCommand>,
    in_flight: Arc<Mutex<Option<usize>>>,
    pause: tokio::sync::watch::Sender<Option<Instant>>,
) -> WriteEnd {
    let mut half_closed = false;
    while let Some(command) = commands.recv().await {
        match command {
            ConnCommand::Send(outgoing) if half_closed => ctx.failed(
                Some(peer),
                NetError::new(
                    ErrorKind::Other,
                    Operation::Send,
                    format!(
                        "send {} bytes to {remote}: our sending side is shut down (half-closed)",
                        outgoing.bytes.len()
                    ),
                ),
            ),
            ConnCommand::Send(outgoing) => {
                let Outgoing { bytes, split, held } = *outgoing;
                let pieces = split.pieces(&bytes);
                let last = pieces.len() - 1;
                for (i, piece) in pieces.into_iter().enumerate() {
                    let piece = bytes.slice_ref(piece);
                    // Reported as the write is handed to the socket: the reader
                    // task may log the answer before this write call returns,
                    // and a log where the answer comes first misleads. A failed
                    // write is reported by the failure event that follows.
                    ctx.emit(EventKind::Traffic {
                        peer,
                        remote: remote.event_addr(),
                        dir: Direction::Sent,
                        bytes: piece.clone(),
                    });
                    swap_in_flight(&in_flight, Some(piece.len()));
                    if let Err(e) = write_all_flush(&mut wr, &piece).await {
                        return WriteEnd::Error(e);
                    }
                    swap_in_flight(&in_flight, None);
                    if i < last && !split.gap.is_zero() {
                        tokio::time::sleep(split.gap).await;
                    }
                }
                // Written: its room in the queue is free again.
                drop(held);
            }
            ConnCommand::SetNoDelay(on) => match wr.socket(|s| s.set_tcp_nodelay(on)) {
                Ok(()) => ctx.emit(EventKind::Note {
                    peer: Some(peer),
                    text: format!(
                        "TCP_NODELAY {}: small writes go out {}",
                        if on { "on" } else { "off" },
                        if on {
                            "at once"
                        } else {
                            "coalesced while data is unacknowledged (Nagle)"
                        }
                    ),
                }),
                Err(e) => ctx.failed(
                    Some(peer),
                    NetError::from_io(Operation::Configure, "TCP_NODELAY", &e),
                ),
            },
            ConnCommand::PauseReads(time) => {
                // Said here, not by the reader: a pause asked for and ended
                // before the reader ran has still been in force (nothing was
                // read meanwhile), and its end is still news.
                // Said before the reader may read again, so the note comes
                // before what it reads.
                if time.is_zero() && pause.borrow().is_some_and(|until| until > Instant::now()) {
                    ctx.emit(reads_again(peer));
                }
                pause.send_replace(Some(Instant::now() + time));
                if !time.is_zero() {
                    ctx.emit(EventKind::Note {
                        peer: Some(peer),
                        text: format!(
                            "reads paused for {} ms: what {remote} sends meanwhile waits in \
                             this machine's receive buffer (the kernel's), and the next read \
                             takes all of it at once",
                            time.as_millis()
                        ),
                    });
                }
            }
            ConnCommand::HalfClose if half_closed => {}
            ConnCommand::HalfClose => {
                if let Err(e) = wr.shutdown().await {
                    return WriteEnd::ShutdownError(e);
                }
                half_closed = true;
                ctx.emit(EventKind::HalfClosed { peer });
            }
            ConnCommand::Close => {
                // Our FIN goes out now; the log shows who closed first.
                if !half_closed && wr.shutdown().await.is_ok() {
                    ctx.emit(EventKind::HalfClosed { peer });
                }
                return WriteEnd::Closed;
            }
            ConnCommand::Abort => {
                // Linger 0 while the socket is surely open: its close sends a reset.
                let _ = wr.socket(|s| s.set_linger(Some(std::time::Duration::ZERO)));
                return WriteEnd::Aborted;
            }
        }
    }
    WriteEnd::Orphaned
}

/// Replaces the in-flight mark, returning the old one.
fn swap_in_flight(
    in_flight: &std::sync::Mutex<Option<usize>>,
    value: Option<usize>,
) -> Option<usize> {
    let mut slot = in_flight.lock().unwrap_or_else(|p| p.into_inner());
    std::mem::replace(&mut *slot, value)
}

async fn write_all_flush<W: AsyncWrite + Unpin>(wr: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    wr.write_all(bytes).await?;
    wr.flush().await
}

/// A TLS failure inside a connection's stream, said as one (TCP peers only).
fn tls_error(e: &std::io::Error, op: Operation, remote: &PeerAddr) -> Option<NetError> {
    match remote {
        PeerAddr::Inet(a) => super::tls::session_error(e, op, *a),
        PeerAddr::Unix(_) => None,
    }
}

fn report_error(
    ctx: &EndpointCtx,
    peer: PeerId,
    op: Operation,
    remote: &PeerAddr,
    e: &std::io::Error,
) {
    if classify(e) == ErrorKind::Reset {
        ctx.emit(EventKind::Reset { peer });
    } else if let Some(error) = tls_error(e, op, remote) {
        ctx.failed(Some(peer), error);
    } else {
        let target = match op {
            Operation::Send => format!("to {remote}"),
            _ => format!("from {remote}"),
        };
        ctx.failed(Some(peer), NetError::from_io(op, target, e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_room_is_held_only_while_data_flows() {
        let mut room = ReadRoom::new();
        assert_eq!(room.held(), 0, "no room before the socket has data");
        let asked = room.prepare();
        assert!(asked >= FIRST_READ);
        // A short read: the socket is drained, the reader lets the room go.
        room.buf.extend_from_slice(b"hello");
        let bytes = room.take(5, asked);
        assert_eq!(&bytes[..], b"hello");
        room.release();
        assert_eq!(room.held(), 0, "a quiet connection holds no read room");
        assert_eq!(room.want, FIRST_READ, "a short read does not grow the room");
    }

    #[test]
    fn read_room_grows_while_reads_fill_it_and_stops_at_the_stream_read() {
        let mut room = ReadRoom::new();
        for _ in 0..16 {
            let asked = room.prepare();
            room.buf.resize(room.buf.len() + asked, 0);
            let _ = room.take(asked, asked);
        }
        assert_eq!(room.want, STREAM_READ);
        assert!(room.prepare() <= 2 * STREAM_READ);
    }

    #[test]
    fn a_flowing_connection_rotates_a_few_buffers_instead_of_allocating_per_read() {
        let mut room = ReadRoom::new();
        let mut starts = std::collections::HashSet::new();
        // Each read fills its room; the read before stays held (in the
        // event queue, or being echoed) while the next one is read.
        let mut held: Option<Bytes> = None;
        for _ in 0..200 {
            let asked = room.prepare();
            room.buf.resize(room.buf.len() + asked, 7);
            let bytes = room.take(asked, asked);
            if room.want == STREAM_READ && asked == STREAM_READ {
                starts.insert(bytes.as_ptr() as usize);
            }
            held = Some(bytes);
        }
        drop(held);
        assert!(
            (2..=SPARE_BUFFERS + 1).contains(&starts.len()),
            "full-size reads landed in {} buffers",
            starts.len()
        );
        assert!(room.held() <= (SPARE_BUFFERS + 1) * STREAM_READ);
        room.release();
        assert_eq!(room.held(), 0);
    }

    #[test]
    fn read_room_is_reused_once_its_bytes_are_gone() {
        let mut room = ReadRoom::new();
        let asked = room.prepare();
        room.buf.extend_from_slice(&[1u8; 100]);
        let first = room.take(100, asked);
        let start = first.as_ptr();
        drop(first);
        // Room left over from the same buffer: the next read lands after the first.
        room.prepare();
        room.buf.extend_from_slice(&[2u8; 10]);
        let second = room.take(10, asked - 100);
        assert_eq!(second.as_ptr(), start.wrapping_add(100));
    }
}
