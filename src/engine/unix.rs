//! Unix-domain sockets: a stream client and server (the same connections as
//! TCP's: [`conn`](super::conn) reads, writes, half-closes and answers), and a
//! datagram socket.
//!
//! A name is a filesystem path or, on Linux, an abstract name (`@name`). A
//! server (or a bound datagram socket) finds what is at its path first:
//! nothing (it binds), a socket somebody uses (address in use), a stale socket
//! file (left by a program that ended without removing it: reported, and
//! removed only when the endpoint says `unlink`), or any other file (never
//! touched). The socket file it created goes when it stops.
//!
//! What the system says about a peer (its name) is the peer's choice: it
//! travels as a [`UnixName`] and is shown escaped and bounded.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use socket2::{Domain, SockAddr, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::net::{UnixDatagram, UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::conn::{self, ConnCommand, ConnHandle, PeerAddr};
use super::net::EndpointCtx;
use super::reply::Reaction;
use super::tcp::{AcceptFailures, route_server, serve_client};
use super::{
    CLOSE_GRACE, EndpointCommand, EventKind, NetError, Operation, PeerId, Split, Target, UNIX_PEER,
};
use crate::model::{Direction, ErrorKind, SocketOptions, UnixName, UnixPath};

/// Room for one received datagram: a Unix datagram may be as large as the
/// sender's buffer (about 208 KiB by default on Linux).
const DATAGRAM_ROOM: usize = 256 * 1024;

/// Received datagrams land in blocks this big, each shared by many datagrams.
const BLOCK: usize = 1024 * 1024;

/// The most datagrams taken in one turn, so commands still get theirs.
const DRAIN_PER_TURN: usize = 256;

fn other(op: Operation, message: impl Into<String>) -> NetError {
    NetError::new(ErrorKind::Other, op, message)
}

/// The socket address of a name (abstract names on Linux and Android only).
fn sock_addr(path: &UnixPath, op: Operation) -> Result<SockAddr, NetError> {
    if path.abstract_name().is_some() && !cfg!(any(target_os = "linux", target_os = "android")) {
        return Err(other(
            op,
            format!(
                "{} {path}: abstract names (@name) exist on Linux only; use a file path",
                op.verb()
            ),
        ));
    }
    let bytes = path.socket_bytes();
    SockAddr::unix(OsStr::from_bytes(&bytes))
        .map_err(|e| NetError::from_io(op, path, &e).with_hint(&too_long_hint(path)))
}

fn too_long_hint(path: &UnixPath) -> String {
    format!(
        "{} bytes; a Unix socket name has at most {}",
        path.socket_bytes().len(),
        crate::model::MAX_UNIX_PATH
    )
}

/// A name the system reported, as a [`UnixName`].
fn name_of_std(addr: &std::os::unix::net::SocketAddr) -> UnixName {
    if let Some(p) = addr.as_pathname() {
        return UnixName::Path(p.as_os_str().as_bytes().to_vec());
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        if let Some(n) = addr.as_abstract_name() {
            return UnixName::Abstract(n.to_vec());
        }
    }
    UnixName::Unnamed
}

fn name_of_tokio(addr: &tokio::net::unix::SocketAddr) -> UnixName {
    if let Some(p) = addr.as_pathname() {
        UnixName::Path(p.as_os_str().as_bytes().to_vec())
    } else if let Some(n) = addr.as_abstract_name() {
        UnixName::Abstract(n.to_vec())
    } else {
        UnixName::Unnamed
    }
}

fn name_of_sock(addr: &SockAddr) -> UnixName {
    match addr.as_unix() {
        Some(a) => name_of_std(&a),
        None => UnixName::Unnamed,
    }
}

/// An error of a Unix socket operation on `path`, in one line a person can act on.
pub(crate) fn unix_error(op: Operation, path: &UnixPath, e: &std::io::Error) -> NetError {
    let what = format!("{} {path}", op.verb());
    let raw = e.raw_os_error();
    let kind = super::classify(e);
    let message = match (raw, e.kind()) {
        (_, std::io::ErrorKind::NotFound) => format!(
            "{what}: no such file: no socket exists at this path (is the server running, \
             and is the path right?)"
        ),
        (_, std::io::ErrorKind::PermissionDenied) => format!(
            "{what}: permission denied: the socket file or a folder on its path does not let \
             this user in (see ls -l and the folders' x bits)"
        ),
        (Some(libc::ECONNREFUSED), _) => match path.fs_path().map(std::fs::symlink_metadata) {
            Some(Ok(m)) if !m.file_type().is_socket() => {
                return NetError::new(
                    ErrorKind::Other,
                    op,
                    format!("{what}: not a socket: this path is {}", file_kind(&m)),
                );
            }
            Some(Ok(_)) => format!(
                "{what}: the socket file exists but nobody listens on it (a stale file left by \
                 a program that ended)"
            ),
            _ => format!("{what}: nobody listens on this name"),
        },
        (Some(libc::EPROTOTYPE), _) => format!(
            "{what}: wrong socket type: the socket at this path is of the other kind (stream \
             vs datagram: unix or unix-dgram)"
        ),
        (Some(libc::ENOTSOCK), _) => format!("{what}: not a socket"),
        (Some(libc::ENAMETOOLONG), _) => format!("{what}: path too long ({})", too_long_hint(path)),
        (Some(libc::ENOTDIR), _) => {
            format!("{what}: a part of the path is not a folder")
        }
        (Some(libc::EADDRINUSE), _) => {
            format!("{what}: another socket is bound to this name")
        }
        _ => format!("{what}: {e}"),
    };
    NetError::new(kind, op, message)
}

/// What a file is, for a message: `a regular file`, `a folder`, …
fn file_kind(m: &std::fs::Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a folder"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a socket"
    }
}

impl NetError {
    /// Adds `hint` in parentheses to the message.
    fn with_hint(mut self, hint: &str) -> Self {
        self.message = format!("{} ({hint})", self.message);
        self
    }
}

/// Whether somebody uses the socket file at `path`: a connect (stream, or
/// datagram when the socket is of that type) is answered, or refused (stale).
fn socket_in_use(path: &Path) -> bool {
    for ty in [Type::STREAM, Type::DGRAM] {
        let Ok(socket) = Socket::new(Domain::UNIX, ty, None) else {
            return true;
        };
        let _ = socket.set_nonblocking(true);
        let Ok(addr) = SockAddr::unix(path) else {
            return true;
        };
        match socket.connect(&addr) {
            Ok(()) => return true,
            Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => return false,
            // Busy (a full backlog), or anything else: somebody may be there.
            Err(_) => return true,
        }
    }
    false
}

/// Makes the way free for a bind at `path`: nothing is there (fine), a stale
/// socket file (removed when `unlink`, else an error saying so), a socket in
/// use or any other file (an error; never removed). Returns a note to emit.
fn clear_path(path: &UnixPath, unlink: bool) -> Result<Option<String>, NetError> {
    let Some(fs) = path.fs_path() else {
        return Ok(None);
    };
    let meta = match std::fs::symlink_metadata(fs) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // Bind will say what is wrong (a missing folder, permission).
        Err(_) => return Ok(None),
        Ok(m) => m,
    };
    if !meta.file_type().is_socket() {
        return Err(NetError::new(
            ErrorKind::AddressInUse,
            Operation::Bind,
            format!(
                "bind {path}: the path exists and is {}, not a socket; sockbench never deletes \
                 it: choose another path",
                file_kind(&meta)
            ),
        ));
    }
    if socket_in_use(fs) {
        return Err(NetError::new(
            ErrorKind::AddressInUse,
            Operation::Bind,
            format!("bind {path}: another program's socket listens at this path"),
        ));
    }
    if !unlink {
        return Err(NetError::new(
            ErrorKind::AddressInUse,
            Operation::Bind,
            format!(
                "bind {path}: a stale socket file is at this path (nobody listens on it: left by \
                 a program that ended); remove it with --unlink (in the window: \"Remove a stale \
                 socket file\")"
            ),
        ));
    }
    // Checked again right before: only a socket file is ever removed.
    match std::fs::symlink_metadata(fs) {
        Ok(m) if m.file_type().is_socket() => {}
        _ => return Ok(None),
    }
    std::fs::remove_file(fs).map_err(|e| {
        NetError::from_io(
            Operation::Bind,
            format!("{path}: removing the stale socket file"),
            &e,
        )
    })?;
    Ok(Some(format!(
        "removed the stale socket file at {path} (nobody listened on it), as asked"
    )))
}

/// The socket file an endpoint created, removed when the endpoint stops
/// (only if it is still that file: same device and inode).
struct OwnedFile {
    path: PathBuf,
    id: Option<(u64, u64)>,
}

impl OwnedFile {
    fn after_bind(path: &UnixPath) -> Option<OwnedFile> {
        let fs = path.fs_path()?;
        let id = std::fs::symlink_metadata(fs)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        Some(OwnedFile {
            path: fs.to_owned(),
            id,
        })
    }
}

impl Drop for OwnedFile {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path)
            && m.file_type().is_socket()
            && self.id == Some((m.dev(), m.ino()))
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Buffer sizes (the options that mean something for a Unix socket).
fn apply_buffers(sock: &SockRef<'_>, options: &SocketOptions) -> Result<(), NetError> {
    if let Some(size) = options.recv_buffer {
        sock.set_recv_buffer_size(size as usize)
            .map_err(|e| NetError::from_io(Operation::Configure, "SO_RCVBUF", &e))?;
    }
    if let Some(size) = options.send_buffer {
        sock.set_send_buffer_size(size as usize)
            .map_err(|e| NetError::from_io(Operation::Configure, "SO_SNDBUF", &e))?;
    }
    Ok(())
}

/// A socket of type `ty` bound to `path` (after [`clear_path`]), non-blocking.
fn bound_socket(
    ctx: &EndpointCtx,
    path: &UnixPath,
    ty: Type,
    unlink: bool,
) -> Result<(Socket, Option<OwnedFile>), NetError> {
    let addr = sock_addr(path, Operation::Bind)?;
    if let Some(note) = clear_path(path, unlink)? {
        ctx.emit(EventKind::Note {
            peer: None,
            text: note,
        });
    }
    let socket = Socket::new(Domain::UNIX, ty, None)
        .map_err(|e| NetError::from_io(Operation::Configure, "a Unix socket", &e))?;
    apply_buffers(&SockRef::from(&socket), &ctx.options)?;
    socket
        .bind(&addr)
        .map_err(|e| unix_error(Operation::Bind, path, &e))?;
    let owned = OwnedFile::after_bind(path);
    socket
        .set_nonblocking(true)
        .map_err(|e| NetError::from_io(Operation::Configure, "O_NONBLOCK", &e))?;
    Ok((socket, owned))
}

/// A Unix stream client: connect, then run the connection as TCP's are run.
pub(crate) async fn client(
    ctx: EndpointCtx,
    path: UnixPath,
    mut commands: mpsc::UnboundedReceiver<EndpointCommand>,
) {
    let addr = match sock_addr(&path, Operation::Connect) {
        Ok(a) => a,
        Err(e) => return ctx.failed(None, e),
    };
    let Some(std_addr) = addr.as_unix() else {
        return ctx.failed(None, other(Operation::Connect, "not a Unix socket name"));
    };
    let limit = ctx.options.connect_timeout();
    let tokio_addr = tokio::net::unix::SocketAddr::from(std_addr);
    let attempt = tokio::time::timeout(limit, UnixStream::connect_addr(&tokio_addr));
    tokio::pin!(attempt);
    let mut early = Vec::new();
    let stream = loop {
        tokio::select! {
            _ = ctx.token.cancelled() => return,
            command = commands.recv() => match command {
                None | Some(EndpointCommand::Close { .. }) => return,
                Some(other) => early.push(other),
            },
            result = &mut attempt => match result {
                Err(_) => return ctx.failed(None, NetError::new(
                    ErrorKind::TimedOut,
                    Operation::Connect,
                    format!("connect to {path}: no answer within {:.1} s (the server's backlog is full?)",
                        limit.as_secs_f64()),
                )),
                Ok(Err(e)) => return ctx.failed(None, unix_error(Operation::Connect, &path, &e)),
                Ok(Ok(s)) => break s,
            },
        }
    };
    if let Err(e) = apply_buffers(&SockRef::from(&stream), &ctx.options) {
        ctx.failed(Some(0), e);
    }
    let local = stream
        .local_addr()
        .map(|a| name_of_tokio(&a))
        .unwrap_or(UnixName::Unnamed);
    let remote = stream
        .peer_addr()
        .map(|a| name_of_tokio(&a))
        .unwrap_or_else(|_| UnixName::from(&path));
    ctx.emit(EventKind::UnixConnected {
        peer: 0,
        local,
        remote: remote.clone(),
    });
    serve_client(
        &ctx,
        PeerAddr::Unix(remote),
        stream,
        early,
        &mut commands,
        false,
    )
    .await;
}

/// A Unix stream server: bind (after looking at the path), listen, accept
/// peers (one task each), route sends to them; removes its socket file when done.
pub(crate) async fn server(
    ctx: EndpointCtx,
    path: UnixPath,
    unlink: bool,
    mut commands: mpsc::UnboundedReceiver<EndpointCommand>,
) {
    let (socket, owned) = match bound_socket(&ctx, &path, Type::STREAM, unlink) {
        Ok(s) => s,
        Err(e) => return ctx.failed(None, e),
    };
    // Removed when this function ends, however it ends.
    let _owned = owned;
    if let Err(e) = socket.listen(1024) {
        return ctx.failed(None, unix_error(Operation::Listen, &path, &e));
    }
    let listener = match UnixListener::from_std(socket.into()) {
        Ok(l) => l,
        Err(e) => return ctx.failed(None, unix_error(Operation::Listen, &path, &e)),
    };
    let local = listener
        .local_addr()
        .map(|a| name_of_tokio(&a))
        .unwrap_or_else(|_| UnixName::from(&path));
    ctx.emit(EventKind::UnixListening {
        local: local.clone(),
    });

    let mut peers: HashMap<PeerId, ConnHandle> = HashMap::new();
    let mut next_peer: PeerId = 1;
    let connections = TaskTracker::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<PeerId>();
    let mut failures = AcceptFailures::default();
    let max_peers = ctx.options.max_peers;
    let shown = path.to_string();

    loop {
        tokio::select! {
            _ = ctx.token.cancelled() => break,
            _ = tokio::time::sleep_until(failures.retry_at), if failures.backing_off() => {
                failures.retry();
            }
            accepted = listener.accept(), if !failures.backing_off() => match accepted {
                Ok((stream, from)) => {
                    failures.accepted(&ctx, &shown);
                    let peer = next_peer;
                    next_peer += 1;
                    let remote = name_of_tokio(&from);
                    ctx.emit(EventKind::UnixAccepted { peer, local: local.clone(), remote: remote.clone() });
                    if let Some(max) = max_peers
                        && peers.len() >= max as usize
                    {
                        ctx.emit(EventKind::Note {
                            peer: Some(peer),
                            text: format!(
                                "{}{} peers are connected, the most this endpoint \
                                 takes (max peers {max}); the connection is closed at once",
                                super::REFUSED_PEER,
                                peers.len()
                            ),
                        });
                        drop(stream);
                        ctx.emit(EventKind::Closed { peer, aborted: false });
                        continue;
                    }
                    if let Err(e) = apply_buffers(&SockRef::from(&stream), &ctx.options) {
                        ctx.failed(Some(peer), e);
                    }
                    let (tx, rx) = ConnHandle::new(PeerAddr::Unix(remote.clone()));
                    peers.insert(peer, tx.clone());
                    let token = ctx.token.child_token();
                    let done = done_tx.clone();
                    let task_ctx = ctx.clone();
                    connections.spawn(super::net::guarded(ctx.clone(), async move {
                        conn::run(task_ctx, peer, PeerAddr::Unix(remote), stream, tx, rx, token).await;
                        let _ = done.send(peer);
                    }));
                }
                Err(e) => failures.failed(&ctx, &shown, &e),
            },
            command = commands.recv() => match command {
                None => break,
                Some(EndpointCommand::Close { abort }) => {
                    for handle in peers.values() {
                        handle.send(if abort { ConnCommand::Abort } else { ConnCommand::Close });
                    }
                    break;
                }
                Some(EndpointCommand::SetNoDelay(_)) => ctx.failed(None, other(
                    Operation::Configure,
                    "TCP_NODELAY is a TCP option: a Unix socket has no Nagle delay",
                )),
                Some(command) => route_server(&ctx, &peers, next_peer, command),
            },
            Some(peer) = done_rx.recv() => {
                peers.remove(&peer);
            }
        }
    }
    failures.report(&ctx, &shown);
    // No new peer from here on; the file goes with `_owned` at the end.
    drop(listener);
    drop(peers);
    connections.close();
    let grace = CLOSE_GRACE + std::time::Duration::from_millis(500);
    tokio::select! {
        _ = ctx.token.cancelled() => {}
        _ = tokio::time::timeout(grace, connections.wait()) => {}
    }
}

/// The names a datagram socket has talked to, numbered from 1 in order of
/// first contact. Every unnamed sender is one peer, `(unnamed)`: the system
/// gives them no name to tell apart, nor to answer.
#[derive(Default)]
struct Peers {
    by_name: HashMap<UnixName, PeerId>,
    by_id: Vec<UnixName>,
}

impl Peers {
    /// The peer's number, and whether it is new.
    fn id(&mut self, name: &UnixName) -> (PeerId, bool) {
        if let Some(&p) = self.by_name.get(name) {
            return (p, false);
        }
        self.by_id.push(name.clone());
        let p = self.by_id.len() as PeerId;
        self.by_name.insert(name.clone(), p);
        (p, true)
    }

    fn name(&self, peer: PeerId) -> Option<&UnixName> {
        self.by_id.get((peer as usize).checked_sub(1)?)
    }
}

/// Where a datagram goes: its peer number and socket address.
struct Destination {
    peer: PeerId,
    name: UnixName,
    addr: SockAddr,
}

/// A Unix datagram socket: bound to `bind` (unnamed without), sending to
/// `remote` by default, receiving from anyone; removes its socket file when done.
pub(crate) async fn datagram(
    ctx: EndpointCtx,
    bind: Option<UnixPath>,
    remote: Option<UnixPath>,
    unlink: bool,
    mut commands: mpsc::UnboundedReceiver<EndpointCommand>,
) {
    let (socket, owned) = match &bind {
        Some(path) => match bound_socket(&ctx, path, Type::DGRAM, unlink) {
            Ok(s) => s,
            Err(e) => return ctx.failed(None, e),
        },
        None => {
            let made = Socket::new(Domain::UNIX, Type::DGRAM, None)
                .and_then(|s| s.set_nonblocking(true).map(|()| s));
            match made {
                Ok(s) => (s, None),
                Err(e) => {
                    return ctx.failed(
                        None,
                        NetError::from_io(Operation::Configure, "a Unix socket", &e),
                    );
                }
            }
        }
    };
    let _owned = owned;
    if bind.is_none()
        && let Err(e) = apply_buffers(&SockRef::from(&socket), &ctx.options)
    {
        return ctx.failed(None, e);
    }
    let default = match &remote {
        Some(r) => match sock_addr(r, Operation::Send) {
            Ok(a) => Some((r.clone(), a)),
            Err(e) => return ctx.failed(None, e),
        },
        None => None,
    };
    let socket = match UnixDatagram::from_std(std::os::unix::net::UnixDatagram::from(
        std::os::fd::OwnedFd::from(socket),
    )) {
        Ok(s) => s,
        Err(e) => {
            return ctx.failed(
                None,
                NetError::from_io(Operation::Configure, "a Unix socket", &e),
            );
        }
    };
    let local = socket
        .local_addr()
        .map(|a| name_of_tokio(&a))
        .unwrap_or(UnixName::Unnamed);
    ctx.emit(EventKind::UnixBound {
        local: local.clone(),
    });
    if bind.is_none() {
        ctx.emit(EventKind::Note {
            peer: None,
            text: "unnamed: this socket is bound to no name, so it can send but nobody can \
                   answer it (bind it to a path to receive answers)"
                .into(),
        });
    }

    let mut peers = Peers::default();
    let mut conversations: HashMap<PeerId, super::reply::Conversation> = HashMap::new();
    let mut reactions = Vec::new();
    let mut buf = BytesMut::new();
    loop {
        tokio::select! {
            _ = ctx.token.cancelled() => break,
            ready = socket.readable() => {
                if let Err(e) = ready {
                    ctx.failed(None, NetError::from_io(Operation::Receive, format!("on {local}"), &e));
                    break;
                }
                for _ in 0..DRAIN_PER_TURN {
                    if buf.capacity() - buf.len() < DATAGRAM_ROOM {
                        buf.reserve(BLOCK.max(DATAGRAM_ROOM));
                    }
                    let received = socket.try_io(Interest::READABLE, || {
                        let spare = buf.spare_capacity_mut();
                        let (n, from) = SockRef::from(&socket).recv_from(spare)?;
                        // SAFETY: recv_from initialised the first n bytes of the spare room.
                        unsafe { buf.set_len(buf.len() + n) };
                        Ok(from)
                    });
                    let from = match received {
                        Ok(from) => name_of_sock(&from),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            ctx.failed(None, NetError::from_io(Operation::Receive, format!("on {local}"), &e));
                            break;
                        }
                    };
                    let bytes = buf.split().freeze();
                    let (peer, new) = peers.id(&from);
                    let mut batch = Vec::new();
                    if new {
                        batch.push((EventKind::UnixPeer { peer, remote: from.clone() }, 0));
                    }
                    if !conversations.contains_key(&peer)
                        && let Some(c) = ctx.reply.conversation()
                    {
                        conversations.insert(peer, c);
                    }
                    ctx.reply.react(conversations.get_mut(&peer), &bytes, true, &mut reactions);
                    // A Unix datagram's sender waits when we fall behind (its
                    // send blocks once our receive queue is full): wait for room.
                    let charge = ctx.emitter.charge(bytes.len()).await;
                    batch.push((EventKind::Traffic { peer, remote: UNIX_PEER, dir: Direction::Received, bytes }, charge));
                    let mut answers = Vec::new();
                    for reaction in reactions.drain(..) {
                        match reaction {
                            Reaction::Send { bytes, delay } => answers.push((bytes, delay)),
                            Reaction::Note(text) => batch.push((EventKind::Note { peer: Some(peer), text }, 0)),
                            Reaction::Matched { rule, text } => {
                                batch.push((EventKind::RuleMatched { peer, rule, text }, 0))
                            }
                        }
                    }
                    ctx.emitter.send_batch(ctx.id, batch);
                    for (answer, delay) in answers {
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        match destination_of(&peers, peer) {
                            Ok(dest) => send_datagram(&ctx, &socket, &dest, answer).await,
                            Err(e) => ctx.failed(Some(peer), e),
                        }
                    }
                }
            }
            command = commands.recv() => match command {
                None | Some(EndpointCommand::Close { .. }) => break,
                Some(command) => {
                    datagram_command(&ctx, &socket, &mut peers, default.as_ref(), command).await;
                }
            },
        }
    }
}

/// Where an answer to `peer` goes; an unnamed peer cannot be answered.
fn destination_of(peers: &Peers, peer: PeerId) -> Result<Destination, NetError> {
    let name = peers.name(peer).ok_or_else(|| {
        other(
            Operation::Send,
            format!("peer {peer} is unknown to this socket"),
        )
    })?;
    let path = match name {
        UnixName::Unnamed => {
            return Err(other(
                Operation::Send,
                "send to the unnamed peer: it did not bind its socket to a name, so nothing \
                 can be sent back to it (bind it, e.g. --bind PATH)",
            ));
        }
        UnixName::Path(p) => OsStr::from_bytes(p).to_owned(),
        UnixName::Abstract(n) => OsStr::from_bytes(&[&[0u8][..], n.as_slice()].concat()).to_owned(),
    };
    let addr = SockAddr::unix(&path)
        .map_err(|e| NetError::from_io(Operation::Send, format!("to {name}"), &e))?;
    Ok(Destination {
        peer,
        name: name.clone(),
        addr,
    })
}

/// Carries out one command of the socket's caller (Close is handled by the loop).
async fn datagram_command(
    ctx: &EndpointCtx,
    socket: &UnixDatagram,
    peers: &mut Peers,
    default: Option<&(UnixPath, SockAddr)>,
    command: EndpointCommand,
) {
    let to_path = |peers: &mut Peers, path: &UnixPath, addr: SockAddr| {
        let name = UnixName::from(path);
        let (peer, new) = peers.id(&name);
        if new {
            ctx.emit(EventKind::UnixPeer {
                peer,
                remote: name.clone(),
            });
        }
        Destination { peer, name, addr }
    };
    match command {
        EndpointCommand::Close { .. } => {}
        EndpointCommand::Hold { .. } | EndpointCommand::Decide { .. } => {
            super::refuse_intercept(ctx)
        }
        EndpointCommand::SetNoDelay(_) => ctx.failed(
            None,
            other(
                Operation::Configure,
                "TCP_NODELAY is a TCP option: a datagram socket sends every datagram at once anyway",
            ),
        ),
        EndpointCommand::PauseReads(_) => ctx.failed(
            None,
            other(
                Operation::Configure,
                "pausing reads is for stream connections: a datagram socket reads one datagram at a time anyway",
            ),
        ),
        EndpointCommand::Membership { group, .. } => ctx.failed(
            None,
            other(
                Operation::Configure,
                format!(
                    "multicast group {group}: groups are for UDP sockets; a Unix datagram socket has no multicast"
                ),
            ),
        ),
        EndpointCommand::HalfClose { peer } | EndpointCommand::Disconnect { peer, .. } => ctx
            .failed(
                Some(peer),
                other(
                    Operation::Shutdown,
                    "a datagram socket has no connection to close: datagrams just stop",
                ),
            ),
        EndpointCommand::Send {
            to, bytes, split, ..
        } => {
            let destinations: Vec<Destination> = match to {
                Target::Default => match default {
                    Some((path, addr)) => vec![to_path(peers, path, addr.clone())],
                    None => {
                        return ctx.failed(
                            None,
                            other(
                                Operation::Send,
                                "this Unix datagram socket has no default remote: give a socket path to send to",
                            ),
                        );
                    }
                },
                Target::UnixPath(path) => match sock_addr(&path, Operation::Send) {
                    Ok(addr) => vec![to_path(peers, &path, addr)],
                    Err(e) => return ctx.failed(None, e),
                },
                Target::Peer(p) => match destination_of(peers, p) {
                    Ok(d) => vec![d],
                    Err(e) => return ctx.failed(Some(p), e),
                },
                Target::AllPeers => (1..=peers.by_id.len() as PeerId)
                    .filter_map(|p| destination_of(peers, p).ok())
                    .collect(),
                Target::Address(a) => {
                    return ctx.failed(
                        None,
                        other(
                            Operation::Send,
                            format!(
                                "a Unix datagram socket sends to socket paths, not to the IP address {a}"
                            ),
                        ),
                    );
                }
            };
            let pieces: Vec<Bytes> = if split == Split::WHOLE {
                vec![bytes]
            } else {
                split
                    .pieces(&bytes)
                    .into_iter()
                    .map(|p| bytes.slice_ref(p))
                    .collect()
            };
            for (i, piece) in pieces.into_iter().enumerate() {
                if i > 0 && !split.gap.is_zero() {
                    tokio::time::sleep(split.gap).await;
                }
                for dest in &destinations {
                    send_datagram(ctx, socket, dest, piece.clone()).await;
                }
            }
        }
    }
}

/// Sends one datagram; reported as it is handed to the socket, with a
/// failure after it when the send fails.
async fn send_datagram(ctx: &EndpointCtx, socket: &UnixDatagram, dest: &Destination, bytes: Bytes) {
    ctx.emit(EventKind::Traffic {
        peer: dest.peer,
        remote: UNIX_PEER,
        dir: Direction::Sent,
        bytes: bytes.clone(),
    });
    // A receiver whose queue is full makes the send wait (bounded: the
    // connect timeout), as a Unix datagram socket does.
    let send = socket.async_io(Interest::WRITABLE, || {
        SockRef::from(socket).send_to(&bytes, &dest.addr)
    });
    let sent = tokio::select! {
        _ = ctx.token.cancelled() => return,
        r = tokio::time::timeout(ctx.options.connect_timeout(), send) => r,
    };
    let error = match sent {
        Ok(Ok(n)) if n == bytes.len() => return,
        Ok(Ok(n)) => other(
            Operation::Send,
            format!(
                "send to {}: only {n} of {} bytes went out",
                dest.name,
                bytes.len()
            ),
        ),
        Ok(Err(e)) => match dest.name.to_unix_path() {
            Some(path) => unix_error(Operation::Send, &path, &e),
            None => NetError::from_io(Operation::Send, format!("to {}", dest.name), &e),
        },
        Err(_) => NetError::new(
            ErrorKind::TimedOut,
            Operation::Send,
            format!(
                "send to {}: the receiver's queue stayed full for {:.1} s (it does not read)",
                dest.name,
                ctx.options.connect_timeout().as_secs_f64()
            ),
        ),
    };
    ctx.failed(Some(dest.peer), error.of_reported_write());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram_peers_are_numbered_and_unnamed_ones_cannot_be_answered() {
        let mut p = Peers::default();
        let a = UnixName::Path(b"/tmp/a".to_vec());
        assert_eq!(p.id(&a), (1, true));
        assert_eq!(p.id(&UnixName::Unnamed), (2, true));
        assert_eq!(p.id(&a), (1, false));
        assert!(destination_of(&p, 1).is_ok());
        let e = destination_of(&p, 2).err().unwrap();
        assert!(e.message.contains("unnamed peer"), "{}", e.message);
        assert!(destination_of(&p, 3).is_err());
    }

    #[test]
    fn only_a_stale_socket_file_is_ever_removed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("regular");
        std::fs::write(&file, b"keep me").unwrap();
        let path = UnixPath::parse(file.to_str().unwrap()).unwrap();
        for unlink in [false, true] {
            let e = clear_path(&path, unlink).unwrap_err();
            assert!(
                e.message.contains("a regular file, not a socket"),
                "{}",
                e.message
            );
            assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
        }
        // A stale socket: a listener bound, then dropped (its file stays).
        let sock = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        let path = UnixPath::parse(sock.to_str().unwrap()).unwrap();
        let e = clear_path(&path, false).unwrap_err();
        assert!(e.message.contains("stale socket file"), "{}", e.message);
        assert!(e.message.contains("--unlink"), "{}", e.message);
        assert!(sock.exists());
        let note = clear_path(&path, true).unwrap().unwrap();
        assert!(note.contains("removed the stale socket file"), "{note}");
        assert!(!sock.exists());
        // A socket in use is never removed, even when asked.
        let live = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let e = clear_path(&path, true).unwrap_err();
        assert!(e.message.contains("listens at this path"), "{}", e.message);
        assert!(sock.exists());
        drop(live);
    }
}
