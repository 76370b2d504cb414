//! UDP sockets: bound once, then either connected to their default remote
//! (the kernel delivers only its datagrams and reports an ICMP "port
//! unreachable" as refused) or unconnected (datagrams to and from any
//! address). Each remote address the socket talks to becomes a numbered peer
//! (from 1), so the log and replies can name it.
//!
//! Receiving keeps up with a flood as far as UDP allows: the socket asks a
//! large receive buffer ([`RECV_BUFFER`]), every wake drains all the
//! datagrams waiting (up to [`DRAIN_PER_TURN`]) into one batch of events, and
//! a peer is found by its address without formatting it. What is lost anyway
//! is counted and reported ([`EventKind::Dropped`]): the kernel's drops
//! (SO_RXQ_OVFL, on Linux) and ours, when the event budget is full.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::conn::READ_BUFFER;
use super::multicast;
use super::net::{EndpointCtx, apply_common, resolve, unspecified_for};
use super::reply::Reaction;
use super::{DropCause, EndpointCommand, EventKind, NetError, Operation, PeerId, Split, Target};
use crate::model::{Direction, ErrorKind, HostPort};

/// The receive buffer a UDP socket asks for (unless its options say), so a
/// burst waits in the kernel instead of being dropped. The kernel may grant
/// less (Linux: `net.core.rmem_max`); the socket says what it got.
pub(crate) const RECV_BUFFER: usize = 8 * 1024 * 1024;

/// The most datagrams taken in one turn, so sends and commands still get theirs.
pub(crate) const DRAIN_PER_TURN: usize = 512;

/// Datagrams land in blocks this big, each shared by many datagrams' events.
const BLOCK: usize = 1024 * 1024;

/// How often drops are reported while they go on.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(1);

/// The remote addresses a socket has talked to, numbered in order of first contact.
#[derive(Default)]
struct Peers {
    by_addr: HashMap<SocketAddr, PeerId>,
    by_id: Vec<SocketAddr>,
}

impl Peers {
    fn id(&mut self, addr: SocketAddr) -> PeerId {
        *self.by_addr.entry(addr).or_insert_with(|| {
            self.by_id.push(addr);
            self.by_id.len() as PeerId
        })
    }

    fn addr(&self, peer: PeerId) -> Option<SocketAddr> {
        self.by_id.get((peer as usize).checked_sub(1)?).copied()
    }
}

/// A UDP socket of `addr`'s family with the endpoint's options, bound to
/// `addr` when `bind` (else left for connect() to bind).
pub(crate) fn bind_socket(
    ctx: &EndpointCtx,
    addr: SocketAddr,
    bind: bool,
) -> Result<UdpSocket, NetError> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| NetError::from_io(Operation::Configure, "a UDP socket", &e))?;
    let configure =
        |e: std::io::Error, what: &str| NetError::from_io(Operation::Configure, what, &e);
    if ctx.options.reuse_address {
        socket
            .set_reuse_address(true)
            .map_err(|e| configure(e, "SO_REUSEADDR"))?;
    }
    if ctx.options.broadcast {
        socket
            .set_broadcast(true)
            .map_err(|e| configure(e, "SO_BROADCAST"))?;
    }
    if ctx.options.recv_buffer.is_none() {
        // Asked, not required: the kernel grants what its limit allows.
        let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    }
    apply_common(&SockRef::from(&socket), &ctx.options, addr.is_ipv6())?;
    #[cfg(target_os = "linux")]
    overflow::enable(&socket);
    if bind {
        socket
            .bind(&addr.into())
            .map_err(|e| super::net::bind_error(addr, &e))?;
    }
    socket
        .set_nonblocking(true)
        .map_err(|e| configure(e, "O_NONBLOCK"))?;
    UdpSocket::from_std(socket.into()).map_err(|e| NetError::from_io(Operation::Bind, addr, &e))
}

/// An IPv4 destination seen from an IPv6 socket becomes its v4-mapped form.
pub(crate) fn fit_family(local: &SocketAddr, dest: SocketAddr) -> SocketAddr {
    match (local, dest) {
        (SocketAddr::V6(_), SocketAddr::V4(v4)) => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        _ => dest,
    }
}

/// Picks the resolved address that suits a socket bound to `local`.
fn pick(local: Option<&SocketAddr>, addrs: &[SocketAddr]) -> SocketAddr {
    match local {
        Some(l) => addrs
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == l.is_ipv4())
            .unwrap_or(addrs[0]),
        None => addrs[0],
    }
}

pub(crate) async fn socket(
    ctx: EndpointCtx,
    bind: Option<HostPort>,
    remote: Option<HostPort>,
    mut commands: mpsc::UnboundedReceiver<EndpointCommand>,
) {
    let resolved = async {
        let bind_addr = match &bind {
            Some(b) => Some(resolve(&ctx, b).await?[0]),
            None => None,
        };
        let remote_addr = match &remote {
            Some(r) => Some(pick(bind_addr.as_ref(), &resolve(&ctx, r).await?)),
            None => None,
        };
        Ok::<_, NetError>((bind_addr, remote_addr))
    };
    let (bind_addr, remote_addr) = tokio::select! {
        _ = ctx.token.cancelled() => return,
        r = resolved => match r {
            Ok(pair) => pair,
            Err(e) => return ctx.failed(None, e),
        },
    };
    let explicit = bind_addr.is_some();
    let bind_addr = bind_addr
        .or(remote_addr.as_ref().map(unspecified_for))
        .unwrap_or_else(|| "0.0.0.0:0".parse().expect("a literal address"));
    let connect_to = remote_addr.filter(|_| ctx.options.connected);
    // Without a bind address, a socket to be connected is bound by connect()
    // itself, to the address its route uses (127.0.0.1 towards loopback), not
    // to every interface.
    let socket = match bind_socket(&ctx, bind_addr, explicit || connect_to.is_none()) {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => return ctx.failed(None, e),
    };
    // Before connect(): connecting to a group picks its source address from
    // the multicast interface.
    let mut option_notes = Vec::new();
    if ctx.options.broadcast {
        option_notes
            .push("setsockopt(SO_BROADCAST) 1: datagrams may go to broadcast addresses".to_owned());
    }
    match multicast::configure(
        &SockRef::from(&*socket),
        &ctx.options.multicast,
        bind_addr.is_ipv6(),
    ) {
        Ok(notes) => option_notes.extend(notes),
        Err(e) => return ctx.failed(None, e),
    }
    if let Some(remote) = connect_to
        && let Err(e) = socket.connect(fit_family(&bind_addr, remote)).await
    {
        return ctx.failed(
            None,
            NetError::from_io(Operation::Connect, format!("to {remote}"), &e),
        );
    }
    let local = socket.local_addr().unwrap_or(bind_addr);
    ctx.emit(EventKind::Bound { local });
    for text in option_notes {
        ctx.emit(EventKind::Note { peer: None, text });
    }
    for &group in &ctx.options.multicast.groups {
        match multicast::membership(
            &SockRef::from(&*socket),
            &ctx.options.multicast,
            group,
            local.is_ipv6(),
            true,
        ) {
            Ok(text) => ctx.emit(EventKind::Note { peer: None, text }),
            Err(e) => return ctx.failed(None, e),
        }
    }
    if let Ok(granted) = SockRef::from(&*socket).recv_buffer_size() {
        let asked = ctx.options.recv_buffer.map_or(RECV_BUFFER, |b| b as usize);
        ctx.emit(EventKind::Note {
            peer: None,
            text: format!(
                "receive buffer: {} asked, {} granted by the kernel{}",
                size_text(asked),
                size_text(granted),
                if granted < asked {
                    " (its limit, net.core.rmem_max on Linux): a burst beyond it is dropped and counted"
                } else {
                    ""
                }
            ),
        });
    }

    let mut peers = Peers::default();
    let mut conversations: HashMap<PeerId, super::reply::Conversation> = HashMap::new();
    let mut reactions = Vec::new();
    // The one address a connected socket talks to.
    let connected = match connect_to {
        Some(remote) => {
            peers.id(remote);
            ctx.emit(EventKind::Note {
                peer: None,
                text: format!(
                    "{}{remote}: no packet goes out (UDP has no handshake), but from now on \
                     this socket receives only {remote}'s datagrams, and an ICMP \"port unreachable\" \
                     from there is reported as connection refused",
                    crate::model::lifecycle::UDP_CONNECT_NOTE
                ),
            });
            Some(remote)
        }
        _ => None,
    };
    let mut buf = BytesMut::new();
    let mut drops = Drops::new();
    loop {
        let mut turn = None;
        tokio::select! {
            _ = ctx.token.cancelled() => break,
            _ = tokio::time::sleep_until(drops.next_report()), if drops.pending() => {
                drops.report(&ctx);
            }
            ready = socket.readable() => turn = Some((ready, Interest::READABLE)),
            // An ICMP error (port unreachable) makes the socket report an
            // error with nothing to read: it is received as one.
            ready = socket.ready(Interest::ERROR) => turn = Some((ready.map(|_| ()), Interest::ERROR)),
            command = commands.recv() => match command {
                None | Some(EndpointCommand::Close { .. }) => break,
                Some(command) => {
                    send_command(&ctx, &socket, &mut peers, connected, remote_addr, local, command).await;
                }
            },
        }
        if let Some((ready, interest)) = turn {
            if let Err(e) = ready {
                ctx.failed(
                    None,
                    NetError::from_io(Operation::Receive, format!("on {local}"), &e),
                );
                break;
            }
            let mut batch = Vec::new();
            let mut answers = Vec::new();
            for _ in 0..DRAIN_PER_TURN {
                if buf.capacity() - buf.len() < READ_BUFFER {
                    buf.reserve(BLOCK);
                }
                match receive(&socket, &mut buf, interest) {
                    Ok((from, kernel_drops)) => {
                        drops.kernel_counter(kernel_drops);
                        let bytes = buf.split().freeze();
                        // UDP cannot wait: a datagram that finds the budget full is dropped, counted.
                        let Some(charge) = ctx.emitter.try_charge(bytes.len()) else {
                            drops.ours(bytes.len());
                            continue;
                        };
                        let peer = peers.id(from);
                        // A datagram is one message; rule states are kept per peer address.
                        if !conversations.contains_key(&peer)
                            && let Some(c) = ctx.reply.conversation()
                        {
                            conversations.insert(peer, c);
                        }
                        ctx.reply
                            .react(conversations.get_mut(&peer), &bytes, true, &mut reactions);
                        batch.push((
                            EventKind::Traffic {
                                peer,
                                remote: from,
                                dir: Direction::Received,
                                bytes,
                            },
                            charge,
                        ));
                        for reaction in reactions.drain(..) {
                            match reaction {
                                Reaction::Send { bytes, delay } => {
                                    answers.push((peer, from, bytes, delay))
                                }
                                Reaction::Note(text) => batch.push((
                                    EventKind::Note {
                                        peer: Some(peer),
                                        text,
                                    },
                                    0,
                                )),
                                Reaction::Matched { rule, text } => {
                                    batch.push((EventKind::RuleMatched { peer, rule, text }, 0))
                                }
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        // An ICMP error for an earlier datagram (port unreachable, …):
                        // reported (a connected socket hears them), then go on.
                        let error = match connected {
                            Some(remote) => {
                                NetError::from_io(Operation::Receive, format!("from {remote}"), &e)
                            }
                            None => {
                                NetError::from_io(Operation::Receive, format!("on {local}"), &e)
                            }
                        };
                        let peer = connected.map(|r| peers.id(r));
                        batch.push((EventKind::Failed { peer, error }, 0));
                        break;
                    }
                }
            }
            ctx.emitter.send_batch(ctx.id, batch);
            for (peer, from, answer, delay) in answers {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                send_datagram(&ctx, &socket, connected, peer, from, answer).await;
            }
            if drops.due() {
                drops.report(&ctx);
            }
        }
    }
    // What was lost is said, even at the end.
    drops.report(&ctx);
}

/// Carries out one command of the socket's caller (Close is handled by the loop).
async fn send_command(
    ctx: &EndpointCtx,
    socket: &std::sync::Arc<UdpSocket>,
    peers: &mut Peers,
    connected: Option<SocketAddr>,
    remote_addr: Option<SocketAddr>,
    local: SocketAddr,
    command: EndpointCommand,
) {
    match command {
        EndpointCommand::Close { .. } => {}
        EndpointCommand::Hold { .. } | EndpointCommand::Decide { .. } => {
            super::refuse_intercept(ctx)
        }
        EndpointCommand::SetNoDelay(_) => {
            ctx.failed(
                None,
                NetError::new(
                    ErrorKind::Other,
                    Operation::Configure,
                    "TCP_NODELAY is a TCP option: a UDP socket sends every datagram at once anyway",
                ),
            );
        }
        EndpointCommand::PauseReads(_) => {
            ctx.failed(
                None,
                NetError::new(
                    ErrorKind::Other,
                    Operation::Configure,
                    "pausing reads is for TCP connections: a UDP socket reads one datagram at a time anyway",
                ),
            );
        }
        EndpointCommand::Send {
            to, bytes, split, ..
        } => {
            let destinations: Vec<SocketAddr> = match to {
                Target::Default => {
                    match remote_addr {
                        Some(r) => vec![r],
                        None => {
                            ctx.failed(None, NetError::new(ErrorKind::Other, Operation::Send,
                                    "this UDP socket has no default remote: give an address to send to"));
                            return;
                        }
                    }
                }
                Target::Peer(p) => match peers.addr(p) {
                    Some(a) => vec![a],
                    None => {
                        ctx.failed(
                            Some(p),
                            NetError::new(
                                ErrorKind::Other,
                                Operation::Send,
                                format!("peer {p} is unknown to this socket"),
                            ),
                        );
                        return;
                    }
                },
                Target::AllPeers => peers.by_id.clone(),
                Target::Address(hp) => match resolve(ctx, &hp).await {
                    Ok(addrs) => vec![pick(Some(&local), &addrs)],
                    Err(e) => {
                        ctx.failed(None, e);
                        return;
                    }
                },
                Target::UnixPath(p) => {
                    ctx.failed(
                        None,
                        NetError::new(
                            ErrorKind::Other,
                            Operation::Send,
                            format!(
                                "a UDP socket sends to IP addresses, not to the Unix socket {p}"
                            ),
                        ),
                    );
                    return;
                }
            };
            let targets: Vec<(PeerId, SocketAddr)> =
                destinations.into_iter().map(|d| (peers.id(d), d)).collect();
            if split == Split::WHOLE {
                for (peer, dest) in targets {
                    send_datagram(ctx, socket, connected, peer, dest, bytes.clone()).await;
                }
            } else {
                // Pieces, each its own datagram, gap apart: off this loop,
                // so receiving goes on meanwhile.
                let (ctx, socket) = (ctx.clone(), socket.clone());
                tokio::spawn(super::net::guarded(ctx.clone(), async move {
                    let pieces: Vec<Bytes> = split
                        .pieces(&bytes)
                        .into_iter()
                        .map(|p| bytes.slice_ref(p))
                        .collect();
                    for (i, piece) in pieces.iter().enumerate() {
                        if i > 0 && !split.gap.is_zero() {
                            tokio::time::sleep(split.gap).await;
                        }
                        for &(peer, dest) in &targets {
                            send_datagram(&ctx, &socket, connected, peer, dest, piece.clone())
                                .await;
                        }
                    }
                }));
            }
        }
        EndpointCommand::Membership { group, join } => {
            match multicast::membership(
                &SockRef::from(&**socket),
                &ctx.options.multicast,
                group,
                local.is_ipv6(),
                join,
            ) {
                Ok(text) => ctx.emit(EventKind::Note { peer: None, text }),
                Err(e) => ctx.failed(None, e),
            }
        }
        EndpointCommand::HalfClose { peer } | EndpointCommand::Disconnect { peer, .. } => {
            ctx.failed(
                Some(peer),
                NetError::new(
                    ErrorKind::Other,
                    Operation::Shutdown,
                    "UDP has no connection to close: datagrams just stop",
                ),
            );
        }
    }
}

/// `1.5 MiB`, `208 KiB`, `512 bytes`.
fn size_text(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else if bytes >= KIB {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Received datagrams lost since the last report.
struct Drops {
    /// The kernel's running count (SO_RXQ_OVFL) as last seen.
    kernel_seen: u32,
    kernel: u64,
    ours: u64,
    ours_bytes: u64,
    reported_at: tokio::time::Instant,
}

impl Drops {
    fn new() -> Self {
        Self {
            kernel_seen: 0,
            kernel: 0,
            ours: 0,
            ours_bytes: 0,
            reported_at: tokio::time::Instant::now(),
        }
    }

    /// The kernel's count of datagrams it dropped on this socket so far, as
    /// it came with a datagram (it wraps at 2^32).
    fn kernel_counter(&mut self, counter: Option<u32>) {
        if let Some(counter) = counter {
            self.kernel += u64::from(counter.wrapping_sub(self.kernel_seen));
            self.kernel_seen = counter;
        }
    }

    fn ours(&mut self, len: usize) {
        self.ours += 1;
        self.ours_bytes += len as u64;
    }

    fn pending(&self) -> bool {
        self.kernel > 0 || self.ours > 0
    }

    fn next_report(&self) -> tokio::time::Instant {
        self.reported_at + DROP_REPORT_EVERY
    }

    fn due(&self) -> bool {
        self.pending() && tokio::time::Instant::now() >= self.next_report()
    }

    /// Emits what was dropped since the last report, if anything.
    fn report(&mut self, ctx: &EndpointCtx) {
        if self.kernel > 0 {
            ctx.emit(EventKind::Dropped {
                cause: DropCause::Kernel,
                datagrams: std::mem::take(&mut self.kernel),
                bytes: None,
            });
        }
        if self.ours > 0 {
            ctx.emit(EventKind::Dropped {
                cause: DropCause::Budget,
                datagrams: std::mem::take(&mut self.ours),
                bytes: Some(std::mem::take(&mut self.ours_bytes)),
            });
        }
        self.reported_at = tokio::time::Instant::now();
    }
}

/// Takes one waiting datagram into `buf` (whose spare room holds any
/// datagram), without waiting: its sender, and the kernel's running count of
/// datagrams it dropped on this socket when it tells.
/// `interest` is what woke us: readable, or an error (an ICMP "port
/// unreachable"), which the receive returns.
#[cfg(target_os = "linux")]
fn receive(
    socket: &UdpSocket,
    buf: &mut BytesMut,
    interest: Interest,
) -> std::io::Result<(SocketAddr, Option<u32>)> {
    socket.try_io(interest, || overflow::recv(socket, buf))
}

#[cfg(not(target_os = "linux"))]
fn receive(
    socket: &UdpSocket,
    buf: &mut BytesMut,
    interest: Interest,
) -> std::io::Result<(SocketAddr, Option<u32>)> {
    socket.try_io(interest, || {
        let spare = buf.spare_capacity_mut();
        let (n, from) = SockRef::from(socket).recv_from(spare)?;
        // SAFETY: recv_from initialised the first n bytes of the spare room.
        unsafe { buf.set_len(buf.len() + n) };
        let from = from.as_socket().ok_or_else(|| {
            std::io::Error::other("a datagram from an address of an unknown family")
        })?;
        Ok((from, None))
    })
}

/// SO_RXQ_OVFL: the kernel attaches to each datagram its running count of
/// datagrams dropped on the socket. socket2 has no setter and tokio no
/// `recvmsg` with control messages, hence libc, kept to these two calls.
#[cfg(target_os = "linux")]
mod overflow {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;

    use bytes::{BufMut, BytesMut};

    /// Asks the kernel for drop counts; where it cannot, drops are not known.
    pub(super) fn enable(socket: &socket2::Socket) {
        let on: libc::c_int = 1;
        // SAFETY: a valid descriptor, and a pointer to an int with its size.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RXQ_OVFL,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }

    /// One `recvmsg` into the spare room of `buf` (the datagram's bytes are
    /// appended), non-blocking.
    pub(super) fn recv<S: AsRawFd>(
        socket: &S,
        buf: &mut BytesMut,
    ) -> std::io::Result<(SocketAddr, Option<u32>)> {
        let spare = buf.chunk_mut();
        let mut iov = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        };
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // Room for one control message of a u32, aligned as cmsghdr needs.
        let mut control = [0u64; 8];
        // SAFETY: all-zero is a valid msghdr; its pointers are set below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut from as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: every pointer in msg points to live memory of the stated size;
        // the kernel writes at most iov_len bytes into the spare room.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the kernel initialised n bytes of the spare room.
        unsafe { buf.advance_mut(n as usize) };
        let mut dropped = None;
        // SAFETY: the CMSG macros walk the control buffer the kernel filled,
        // within msg_controllen.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_RXQ_OVFL
                {
                    dropped = Some(std::ptr::read_unaligned(
                        libc::CMSG_DATA(cmsg).cast::<u32>(),
                    ));
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        let from = address(&from).ok_or_else(|| {
            std::io::Error::other("recvmsg returned an address of an unknown family")
        })?;
        Ok((from, dropped))
    }

    fn address(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match storage.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let a = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let a = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    u32::from_be(a.sin6_flowinfo),
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// Sends one datagram to `dest`. Reported as it is handed to the socket (so
/// its answer, read by another task, can never be logged before it); a
/// failure event with [`Operation::Send`] follows when the send fails.
async fn send_datagram(
    ctx: &EndpointCtx,
    socket: &UdpSocket,
    connected: Option<SocketAddr>,
    peer: PeerId,
    dest: SocketAddr,
    bytes: Bytes,
) {
    let local = socket.local_addr().ok();
    let target = local.map_or(dest, |l| fit_family(&l, dest));
    if let Some(remote) = connected
        && local.map_or(remote, |l| fit_family(&l, remote)) != target
    {
        return ctx.failed(
            Some(peer),
            NetError::new(
                ErrorKind::Other,
                Operation::Connect,
                format!(
                    "send to {dest}: this UDP socket is connected to {remote} and talks only to it; \
                     make it unconnected to send to any address"
                ),
            ),
        );
    }
    ctx.emit(EventKind::Traffic {
        peer,
        remote: dest,
        dir: Direction::Sent,
        bytes: bytes.clone(),
    });
    let sent = match connected {
        Some(_) => socket.send(&bytes).await,
        None => socket.send_to(&bytes, target).await,
    };
    match sent {
        Ok(n) if n == bytes.len() => {}
        Ok(n) => ctx.failed(
            Some(peer),
            NetError::new(
                ErrorKind::Other,
                Operation::Send,
                format!("send to {dest}: only {n} of {} bytes went out", bytes.len()),
            )
            .of_reported_write(),
        ),
        Err(e) => {
            let mut error = NetError::from_io(Operation::Send, format!("to {dest}"), &e);
            // Linux refuses a datagram to a broadcast address (EACCES) unless
            // SO_BROADCAST is on: nothing left the machine.
            if e.kind() == std::io::ErrorKind::PermissionDenied
                && dest.is_ipv4()
                && !ctx.options.broadcast
            {
                error.message.push_str(": ");
                error.message.push_str(BROADCAST_OFF);
            }
            ctx.failed(Some(peer), error.of_reported_write())
        }
    }
}

/// What a send refused for want of SO_BROADCAST adds to its error.
pub(crate) const BROADCAST_OFF: &str = "broadcast is off: turn on SO_BROADCAST in the endpoint's settings (--broadcast on the command line) to send to a broadcast address";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_numbered_from_one() {
        let mut p = Peers::default();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        assert_eq!(p.id(a), 1);
        assert_eq!(p.id(b), 2);
        assert_eq!(p.id(a), 1);
        assert_eq!(p.addr(2), Some(b));
        assert_eq!(p.addr(0), None);
        assert_eq!(p.addr(3), None);
    }

    #[test]
    fn v4_destinations_fit_v6_sockets() {
        let local: SocketAddr = "[::]:5000".parse().unwrap();
        let dest: SocketAddr = "127.0.0.1:7".parse().unwrap();
        assert_eq!(
            fit_family(&local, dest),
            "[::ffff:127.0.0.1]:7".parse::<SocketAddr>().unwrap()
        );
    }
}
