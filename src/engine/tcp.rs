//! TCP endpoints: a client holding one connection, a server accepting many.

use std::collections::HashMap;
use std::net::SocketAddr;

use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::conn::{self, ConnCommand, ConnHandle, PeerAddr, Transport};
use super::net::{EndpointCtx, apply_common, apply_stream, resolve};
use super::proxy;
use super::tls;
use super::{CLOSE_GRACE, EndpointCommand, EventKind, NetError, Operation, PeerId, Target};
use crate::model::proxy::{Proxy, Reconnect, show_ms};
use crate::model::{ErrorKind, HostPort, TlsClientSettings, TlsServerSettings};

fn other(op: Operation, message: impl Into<String>) -> NetError {
    NetError::new(ErrorKind::Other, op, message)
}

/// bind() before connect(): a client's chosen local address and/or port.
fn bind_local(socket: &TcpSocket, local: &HostPort, remote: SocketAddr) -> Result<(), NetError> {
    let Some(ip) = local.ip() else {
        return Err(other(
            Operation::Bind,
            format!("bind {local}: a client binds an IP address of this machine, not a name"),
        ));
    };
    // An IPv4 local address for an IPv6 remote (or the reverse) cannot work;
    // the unspecified address of a port alone follows the remote.
    let ip = match (ip, remote) {
        (ip, _) if ip.is_unspecified() && ip.is_ipv4() != remote.is_ipv4() => {
            super::net::unspecified_for(&remote).ip()
        }
        (ip, _) if ip.is_ipv4() != remote.is_ipv4() => {
            return Err(other(
                Operation::Bind,
                format!(
                    "bind {local}: the local address is IPv{} and the remote {remote} IPv{}: give a local address of the remote's family",
                    if ip.is_ipv4() { 4 } else { 6 },
                    if remote.is_ipv4() { 4 } else { 6 },
                ),
            ));
        }
        (ip, _) => ip,
    };
    let addr = SocketAddr::new(ip, local.port);
    if local.port != 0 {
        // A fixed port is taken again at once, though its last connection
        // still waits out TIME_WAIT.
        let _ = socket.set_reuseaddr(true);
    }
    socket
        .bind(addr)
        .map_err(|e| super::net::bind_error(addr, &e))
}

/// A multicast group asked of a TCP endpoint.
fn not_multicast() -> NetError {
    other(
        Operation::Configure,
        "multicast groups are for UDP sockets: TCP connects one peer to another",
    )
}

/// Connects to one address, with the endpoint's options and connect timeout.
pub(crate) async fn connect_one(
    ctx: &EndpointCtx,
    addr: SocketAddr,
) -> Result<TcpStream, NetError> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| NetError::from_io(Operation::Configure, "a TCP socket", &e))?;
    {
        let sock = SockRef::from(&socket);
        apply_common(&sock, &ctx.options, addr.is_ipv6())?;
        apply_stream(&sock, &ctx.options)?;
    }
    if let Some(local) = &ctx.options.bind {
        bind_local(&socket, local, addr)?;
    }
    let limit = ctx.options.connect_timeout();
    match tokio::time::timeout(limit, socket.connect(addr)).await {
        Err(_) => Err(NetError::new(
            ErrorKind::TimedOut,
            Operation::Connect,
            format!(
                "connect to {addr}: no answer within {:.1} s",
                limit.as_secs_f64()
            ),
        )),
        Ok(Err(e)) => Err(NetError::from_io(
            Operation::Connect,
            format!("to {addr}"),
            &e,
        )),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// How a client reaches its remote: through a proxy, and again after a
/// failure (the endpoint's `proxy` and `reconnect` settings).
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientWay {
    pub proxy: Option<Proxy>,
    pub reconnect: Option<Reconnect>,
}

/// How one connection of a client ended.
enum Outcome {
    /// Stopped (cancelled, closed by the person, or nobody left to command
    /// it): never connect again.
    Done,
    /// Connecting (or the proxy, or the TLS handshake) failed.
    Failed(NetError),
    /// The connection was up and ended without the person asking; `lasting`
    /// when it stayed up long enough to count as a good connection.
    Lost { lasting: bool },
}

/// Tries each of `addrs` in turn (a `Connecting` event each) and returns the
/// first connection with its address, or the last failure (`None` when there
/// was no address). The caller races it against its cancellation.
pub(crate) async fn connect_any(
    ctx: &EndpointCtx,
    addrs: &[SocketAddr],
) -> Result<(TcpStream, SocketAddr), Option<NetError>> {
    let mut last_error = None;
    for addr in addrs {
        ctx.emit(EventKind::Connecting { remote: *addr });
        match connect_one(ctx, *addr).await {
            Ok(stream) => return Ok((stream, *addr)),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error)
}

/// The client's TLS handshake on connection `peer`, within the connect
/// timeout: the settings' warning first (a loosened check), then a
/// `TlsHandshake` event, or the failure reported as the endpoint's. `None`
/// when it failed or `ctx` was cancelled.
pub(crate) async fn tls_connect(
    ctx: &EndpointCtx,
    peer: PeerId,
    remote: SocketAddr,
    stream: TcpStream,
    tls: &tls::ClientTls,
) -> Option<tokio_rustls::client::TlsStream<TcpStream>> {
    if let Some(warning) = &tls.warning {
        ctx.emit(EventKind::Note {
            peer: Some(peer),
            text: warning.clone(),
        });
    }
    let name = tls.server_name.to_str().into_owned();
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    let limit = ctx.options.connect_timeout();
    let handshake = tokio::time::timeout(limit, connector.connect(tls.server_name.clone(), stream));
    let result = tokio::select! {
        _ = ctx.token.cancelled() => return None,
        r = handshake => r,
    };
    match result {
        Err(_) => {
            ctx.failed(
                None,
                NetError::new(
                    ErrorKind::TimedOut,
                    Operation::Tls,
                    format!(
                        "TLS handshake with {remote}: no answer within {:.1} s",
                        limit.as_secs_f64()
                    ),
                ),
            );
            None
        }
        Ok(Err(e)) => {
            ctx.failed(None, tls::handshake_error(&e, remote, &name));
            None
        }
        Ok(Ok(stream)) => {
            ctx.emit(EventKind::TlsHandshake {
                peer,
                detail: tls::describe(stream.get_ref().1),
            });
            Some(stream)
        }
    }
}

/// A server's TLS handshake with peer `peer`, within the connect timeout:
/// a `TlsHandshake` event, or the peer's failure and its `Closed`. `None`
/// when it failed or `token` was cancelled.
pub(crate) async fn tls_accept(
    ctx: &EndpointCtx,
    peer: PeerId,
    remote: SocketAddr,
    stream: TcpStream,
    acceptor: &tokio_rustls::TlsAcceptor,
    token: &tokio_util::sync::CancellationToken,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let limit = ctx.options.connect_timeout();
    let handshake = tokio::time::timeout(limit, acceptor.accept(stream));
    let result = tokio::select! {
        _ = token.cancelled() => None,
        r = handshake => Some(r),
    };
    match result {
        Some(Ok(Ok(stream))) => {
            ctx.emit(EventKind::TlsHandshake {
                peer,
                detail: tls::describe(stream.get_ref().1),
            });
            Some(stream)
        }
        failed => {
            let error = match failed {
                Some(Ok(Err(e))) => tls::handshake_error(&e, remote, ""),
                _ => NetError::new(
                    ErrorKind::TimedOut,
                    Operation::Tls,
                    format!("TLS handshake with {remote}: no answer in time"),
                ),
            };
            ctx.failed(Some(peer), error);
            ctx.emit(EventKind::Closed {
                peer,
                aborted: false,
            });
            None
        }
    }
}

/// A TCP client (with TLS on top when `tls` is given): resolve, try each
/// address in turn (through the proxy when one is set), shake hands, then run
/// the connection; with `reconnect`, the same again after a growing wait when
/// it fails or ends, until the attempts run out or the person stops it.
pub(crate) async fn client(
    ctx: EndpointCtx,
    remote: HostPort,
    tls: Option<TlsClientSettings>,
    way: ClientWay,
    mut commands: mpsc::UnboundedReceiver<EndpointCommand>,
) {
    // A mistake in the TLS settings (a missing CA file) shows before any packet.
    let tls = match tls.map(|t| tls::client(&t, &remote.host)).transpose() {
        Ok(t) => t,
        Err(e) => return ctx.failed(None, e),
    };
    // Sends that arrive while connecting (or waiting to reconnect) wait for the connection.
    let mut early = Vec::new();
    // Attempts since the last good connection.
    let mut attempt: u32 = 0;
    loop {
        let outcome =
            connect_and_serve(&ctx, &remote, tls.as_ref(), &way, &mut early, &mut commands).await;
        let error = match outcome {
            Outcome::Done => return,
            Outcome::Failed(e) => Some(e),
            Outcome::Lost { lasting } => {
                if lasting {
                    attempt = 0;
                }
                None
            }
        };
        let Some(reconnect) = way.reconnect else {
            if let Some(e) = error {
                ctx.failed(None, e);
            }
            return;
        };
        attempt = attempt.saturating_add(1);
        if let Some(n) = reconnect.attempts
            && attempt > n
        {
            let gave_up = format!(
                "reconnect: gave up after {n} attempt{}",
                if n == 1 { "" } else { "s" }
            );
            // Payloads that waited for a connection will not go out: said, not dropped.
            commands.close();
            while let Ok(command) = commands.try_recv() {
                early.push(command);
            }
            for command in early.drain(..) {
                if let EndpointCommand::Send { bytes, .. } = command {
                    ctx.failed(
                        Some(0),
                        other(
                            Operation::Send,
                            format!(
                                "send {} bytes to {remote}: not sent, {gave_up}",
                                bytes.len()
                            ),
                        ),
                    );
                }
            }
            match error {
                Some(mut e) => {
                    e.message = format!("{}; {gave_up}", e.message);
                    ctx.failed(None, e);
                }
                None => ctx.emit(EventKind::Note {
                    peer: None,
                    text: gave_up,
                }),
            }
            return;
        }
        if let Some(e) = error {
            // Not the endpoint's end: it tries again.
            ctx.failed(Some(0), e);
        }
        let wait = reconnect.delay(attempt, random_unit());
        let of = reconnect
            .attempts
            .map_or(String::new(), |n| format!(" of {n}"));
        ctx.emit(EventKind::Note {
            peer: None,
            text: format!(
                "{RECONNECT_NOTE}attempt {attempt}{of} in {}",
                show_ms(wait.as_millis() as u64)
            ),
        });
        let pause = tokio::time::sleep(wait);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = ctx.token.cancelled() => return,
                _ = &mut pause => break,
                command = commands.recv() => match command {
                    None => return,
                    Some(EndpointCommand::Close { .. } | EndpointCommand::Disconnect { .. }) => {
                        ctx.emit(EventKind::Note {
                            peer: None,
                            text: format!("{RECONNECT_NOTE}stopped while waiting"),
                        });
                        return;
                    }
                    Some(other) => early.push(other),
                },
            }
        }
    }
}

pub use crate::model::proxy::RECONNECT_NOTE;
use crate::model::proxy::{PROXY_CONNECTED_NOTE, TUNNEL_NOTE};

/// A number from 0 to 1 for jitter (1 when the system has no randomness to give).
fn random_unit() -> f64 {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 4];
    match ring::rand::SystemRandom::new().fill(&mut b) {
        Ok(()) => f64::from(u32::from_be_bytes(b)) / f64::from(u32::MAX),
        Err(_) => 1.0,
    }
}

/// Runs `task` while taking the endpoint's commands: sends wait in `early`;
/// `None` when the endpoint is cancelled or closed before the task is done.
async fn while_taking<F: std::future::Future>(
    ctx: &EndpointCtx,
    commands: &mut mpsc::UnboundedReceiver<EndpointCommand>,
    early: &mut Vec<EndpointCommand>,
    task: F,
) -> Option<F::Output> {
    tokio::pin!(task);
    loop {
        tokio::select! {
            _ = ctx.token.cancelled() => return None,
            command = commands.recv() => match command {
                None | Some(EndpointCommand::Close { .. }) => return None,
                Some(other) => early.push(other),
            },
            result = &mut task => return Some(result),
        }
    }
}

/// One connection of a client, from resolving to its end.
async fn connect_and_serve(
    ctx: &EndpointCtx,
    remote: &HostPort,
    tls: Option<&tls::ClientTls>,
    way: &ClientWay,
    early: &mut Vec<EndpointCommand>,
    commands: &mut mpsc::UnboundedReceiver<EndpointCommand>,
) -> Outcome {
    // Through a proxy, only the proxy's name is resolved here: the target's
    // name goes to the proxy as it is.
    let dial = way.proxy.as_ref().map_or(remote, |p| &p.server);
    // A failure to reach the proxy says it was the proxy.
    let about_proxy = |mut e: NetError| {
        if let Some(p) = &way.proxy {
            e.message = format!("{} (the proxy {p})", e.message);
        }
        e
    };
    let addrs = match while_taking(ctx, commands, early, resolve(ctx, dial)).await {
        None => return Outcome::Done,
        Some(Ok(a)) => a,
        Some(Err(e)) => return Outcome::Failed(about_proxy(e)),
    };

    let mut last_error = None;
    let mut connected = None;
    for addr in addrs {
        ctx.emit(EventKind::Connecting { remote: addr });
        match while_taking(ctx, commands, early, connect_one(ctx, addr)).await {
            None => return Outcome::Done,
            Some(Ok(stream)) => {
                connected = Some((stream, addr));
                break;
            }
            Some(Err(e)) => last_error = Some(about_proxy(e)),
        }
    }
    let Some((mut stream, peer_addr)) = connected else {
        return match last_error {
            Some(e) => Outcome::Failed(e),
            None => Outcome::Done,
        };
    };

    if let Some(proxy) = &way.proxy {
        ctx.emit(EventKind::Note {
            peer: None,
            text: format!(
                "{PROXY_CONNECTED_NOTE}{proxy} at {peer_addr}; asking for a tunnel to {remote}"
            ),
        });
        let limit = ctx.options.connect_timeout();
        let handshake = tokio::time::timeout(limit, proxy::handshake(&mut stream, proxy, remote));
        match while_taking(ctx, commands, early, handshake).await {
            None => return Outcome::Done,
            Some(Err(_)) => {
                return Outcome::Failed(NetError::new(
                    ErrorKind::TimedOut,
                    Operation::Connect,
                    format!(
                        "proxy {proxy}: no tunnel to {remote} within {:.1} s",
                        limit.as_secs_f64()
                    ),
                ));
            }
            Some(Ok(Err(mut e))) => {
                e.message = format!("{} (proxy {proxy})", e.message);
                return Outcome::Failed(e);
            }
            Some(Ok(Ok(tunnel))) => ctx.emit(EventKind::Note {
                peer: None,
                text: format!(
                    "{TUNNEL_NOTE}{remote} through the proxy ({})",
                    tunnel.detail
                ),
            }),
        }
    }

    let local = stream.local_addr().unwrap_or(peer_addr);
    ctx.emit(EventKind::Connected {
        peer: 0,
        local,
        remote: peer_addr,
    });
    let reconnecting = way.reconnect.is_some();
    let began = tokio::time::Instant::now();
    let lasting = |by_person: bool| -> Outcome {
        if by_person {
            return Outcome::Done;
        }
        let lasting = way
            .reconnect
            .is_some_and(|r| began.elapsed() >= Duration::from_millis(r.max_ms));
        Outcome::Lost { lasting }
    };
    let Some(tls) = tls else {
        let early = std::mem::take(early);
        let by_person =
            serve_client(ctx, peer_addr.into(), stream, early, commands, reconnecting).await;
        return lasting(by_person);
    };
    if let Some(warning) = &tls.warning {
        ctx.emit(EventKind::Note {
            peer: Some(0),
            text: warning.clone(),
        });
    }
    let name = tls.server_name.to_str().into_owned();
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    let handshake = tokio::time::timeout(
        ctx.options.connect_timeout(),
        connector.connect(tls.server_name.clone(), stream),
    );
    // Sends asked for meanwhile stay in `early` if the handshake fails (for the next attempt).
    let result = match while_taking(ctx, commands, early, handshake).await {
        None => return Outcome::Done,
        Some(r) => r,
    };
    match result {
        Err(_) => Outcome::Failed(NetError::new(
            ErrorKind::TimedOut,
            Operation::Tls,
            format!(
                "TLS handshake with {remote}: no answer within {:.1} s",
                ctx.options.connect_timeout().as_secs_f64()
            ),
        )),
        Ok(Err(e)) => Outcome::Failed(tls::handshake_error(&e, peer_addr, &name)),
        Ok(Ok(stream)) => {
            ctx.emit(EventKind::TlsHandshake {
                peer: 0,
                detail: tls::describe(stream.get_ref().1),
            });
            let early = std::mem::take(early);
            let by_person =
                serve_client(ctx, peer_addr.into(), stream, early, commands, reconnecting).await;
            lasting(by_person)
        }
    }
}

/// Runs a client's one connection (TCP, TLS or Unix-domain), routing the
/// endpoint's commands to it; true when it ended because the person asked (a
/// close, a half-close, or nobody left to ask). Unless the client reconnects
/// after a connection it did not end itself, sends still queued fail with an event.
pub(crate) async fn serve_client<S: Transport>(
    ctx: &EndpointCtx,
    remote: PeerAddr,
    stream: S,
    early: Vec<EndpointCommand>,
    commands: &mut mpsc::UnboundedReceiver<EndpointCommand>,
    reconnecting: bool,
) -> bool {
    let (tx, rx) = ConnHandle::new(remote.clone());
    let connection = conn::run(
        ctx.clone(),
        0,
        remote.clone(),
        stream,
        tx.clone(),
        rx,
        ctx.token.child_token(),
    );
    tokio::pin!(connection);
    let mut by_person = false;
    // Everything asked before the connection was up is queued before the
    // connection reads anything: a peer that closes at once (its FIN queues our
    // close) must not cut off payloads that were asked for first.
    for command in early {
        by_person |= ends_connection(&command);
        route_client(ctx, &tx, command);
    }
    while let Ok(command) = commands.try_recv() {
        by_person |= ends_connection(&command);
        route_client(ctx, &tx, command);
    }
    let mut listening = true;
    loop {
        tokio::select! {
            _ = &mut connection => break,
            command = commands.recv(), if listening => match command {
                Some(command) => {
                    by_person |= ends_connection(&command);
                    route_client(ctx, &tx, command);
                }
                None => {
                    listening = false;
                    by_person = true;
                }
            },
        }
    }
    if ctx.token.is_cancelled() {
        by_person = true;
    }
    if reconnecting && !by_person {
        // What waits in the queue goes out on the next connection.
        return false;
    }
    // Sends that came while the connection ended are not lost unsaid.
    commands.close();
    while let Ok(command) = commands.try_recv() {
        if let EndpointCommand::Send { bytes, .. } = command {
            ctx.failed(
                Some(0),
                other(
                    Operation::Send,
                    format!(
                        "send {} bytes to {remote}: not sent, the connection has ended",
                        bytes.len()
                    ),
                ),
            );
        }
    }
    true
}

/// True for the commands by which the person ends the connection.
fn ends_connection(command: &EndpointCommand) -> bool {
    matches!(
        command,
        EndpointCommand::Close { .. }
            | EndpointCommand::Disconnect { .. }
            | EndpointCommand::HalfClose { .. }
    )
}

fn route_client(ctx: &EndpointCtx, tx: &ConnHandle, command: EndpointCommand) {
    let conn_command = match command {
        EndpointCommand::Hold { .. } | EndpointCommand::Decide { .. } => {
            return super::refuse_intercept(ctx);
        }
        EndpointCommand::Membership { .. } => return ctx.failed(None, not_multicast()),
        EndpointCommand::SetNoDelay(on) => ConnCommand::SetNoDelay(on),
        EndpointCommand::PauseReads(pause) => ConnCommand::PauseReads(pause),
        EndpointCommand::Send {
            to, bytes, split, ..
        } => match to {
            Target::Default | Target::AllPeers | Target::Peer(0) => {
                return tx.send_payload(ctx, 0, bytes, split);
            }
            Target::Peer(p) => {
                return ctx.failed(
                    Some(p),
                    other(
                        Operation::Send,
                        format!("a TCP client has one connection (peer 0), not peer {p}"),
                    ),
                );
            }
            Target::Address(a) => {
                return ctx.failed(
                    None,
                    other(
                        Operation::Send,
                        format!("a TCP client sends on its connection; it cannot send to {a}"),
                    ),
                );
            }
            Target::UnixPath(p) => {
                return ctx.failed(
                    None,
                    other(
                        Operation::Send,
                        format!("a stream client sends on its connection; it cannot send to {p}"),
                    ),
                );
            }
        },
        EndpointCommand::HalfClose { .. } => ConnCommand::HalfClose,
        EndpointCommand::Disconnect { abort, .. } | EndpointCommand::Close { abort } => {
            if abort {
                ConnCommand::Abort
            } else {
                ConnCommand::Close
            }
        }
    };
    tx.send(conn_command);
}

/// Creates, binds and starts a listening socket with socket2.
pub(crate) fn bind_listener(ctx: &EndpointCtx, addr: SocketAddr) -> Result<TcpListener, NetError> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| NetError::from_io(Operation::Configure, "a TCP socket", &e))?;
    // As servers do: rebinding right after a restart must not fail on TIME_WAIT.
    socket
        .set_reuse_address(true)
        .map_err(|e| NetError::from_io(Operation::Configure, "SO_REUSEADDR", &e))?;
    apply_common(&SockRef::from(&socket), &ctx.options, addr.is_ipv6())?;
    socket
        .bind(&addr.into())
        .map_err(|e| NetError::from_io(Operation::Bind, addr, &e))?;
    socket
        .listen(1024)
        .map_err(|e| NetError::from_io(Operation::Listen, format!("on {addr}"), &e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| NetError::from_io(Operation::Configure, "O_NONBLOCK", &e))?;
    TcpListener::from_std(socket.into())
        .map_err(|e| NetError::from_io(Operation::Listen, format!("on {addr}"), &e))
}

/// A TCP server: listen, accept peers (one task each), route sends to them.
pub(crate) async fn server(
    mut ctx: EndpointCtx,
    listen: HostPort,
    tls: Option<TlsServerSettings>,
    mut commands: mpsc::UnboundedReceiver<EndpointCommand>,
) {
    let tls = match tls.map(|t| tls::server(&t)).transpose() {
        Ok(t) => t,
        Err(e) => return ctx.failed(None, e),
    };
    let addrs = tokio::select! {
        _ = ctx.token.cancelled() => return,
        r = resolve(&ctx, &listen) => r,
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
    let acceptor = tls.map(|(config, about)| {
        ctx.emit(EventKind::Note {
            peer: None,
            text: format!("TLS: {about}"),
        });
        tokio_rustls::TlsAcceptor::from(config)
    });

    let mut peers: HashMap<PeerId, ConnHandle> = HashMap::new();
    let mut next_peer: PeerId = 1;
    let connections = TaskTracker::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<PeerId>();
    let mut failures = AcceptFailures::default();
    let max_peers = ctx.options.max_peers;

    loop {
        tokio::select! {
            _ = ctx.token.cancelled() => break,
            // While accept fails (out of descriptors), wait before trying again.
            _ = tokio::time::sleep_until(failures.retry_at), if failures.backing_off() => {
                failures.retry();
            }
            accepted = listener.accept(), if !failures.backing_off() => match accepted {
                Ok((stream, remote)) => {
                    failures.accepted(&ctx, local);
                    let peer = next_peer;
                    next_peer += 1;
                    if let Some(max) = max_peers
                        && peers.len() >= max as usize
                    {
                        // Accepted only to be closed at once: the peer sees the
                        // connection end instead of waiting in the backlog.
                        let local = stream.local_addr().unwrap_or(local);
                        ctx.emit(EventKind::Accepted { peer, local, remote });
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
                    if let Err(e) = apply_stream(&SockRef::from(&stream), &ctx.options) {
                        ctx.failed(Some(peer), e);
                    }
                    let local = stream.local_addr().unwrap_or(local);
                    ctx.emit(EventKind::Accepted { peer, local, remote });
                    let (tx, rx) = ConnHandle::new(remote);
                    peers.insert(peer, tx.clone());
                    let task_ctx = ctx.clone();
                    let token = ctx.token.child_token();
                    let done = done_tx.clone();
                    let acceptor = acceptor.clone();
                    connections.spawn(super::net::guarded(
                        ctx.clone(),
                        serve_peer(task_ctx, peer, remote, stream, tx, rx, token, acceptor, done),
                    ));
                }
                // Running out of descriptors and the like: back off, report
                // at most once a second, go on.
                Err(e) => failures.failed(&ctx, local, &e),
            },
            command = commands.recv() => match command {
                None => break,
                Some(EndpointCommand::Close { abort }) => {
                    // Stop accepting (below), end every connection and wait for them.
                    for handle in peers.values() {
                        handle.send(if abort { ConnCommand::Abort } else { ConnCommand::Close });
                    }
                    break;
                }
                Some(command) => {
                    if let EndpointCommand::SetNoDelay(on) = command {
                        // Peers accepted from now on get it too.
                        ctx.options.nodelay = on;
                    }
                    route_server(&ctx, &peers, next_peer, command);
                }
            },
            Some(peer) = done_rx.recv() => {
                peers.remove(&peer);
            }
        }
    }
    failures.report(&ctx, local);
    drop(listener);
    drop(peers);
    connections.close();
    let grace = CLOSE_GRACE + std::time::Duration::from_millis(500);
    tokio::select! {
        _ = ctx.token.cancelled() => {}
        _ = tokio::time::timeout(grace, connections.wait()) => {}
    }
}

/// One accepted peer, plain or TLS, until its connection ends; then tells
/// the server (`done`). A plain peer's connection runs inline; the TLS
/// handshake and stream are boxed, so a plain peer's task is not as large as
/// a TLS one (every connection's task is as large as its largest branch).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve_peer(
    ctx: EndpointCtx,
    peer: PeerId,
    remote: SocketAddr,
    stream: TcpStream,
    tx: ConnHandle,
    rx: mpsc::UnboundedReceiver<ConnCommand>,
    token: tokio_util::sync::CancellationToken,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    done: mpsc::UnboundedSender<PeerId>,
) {
    match acceptor {
        None => conn::run(ctx, peer, remote, stream, tx, rx, token).await,
        Some(acceptor) => {
            Box::pin(serve_tls_peer(
                ctx, peer, remote, stream, tx, rx, token, acceptor,
            ))
            .await
        }
    }
    let _ = done.send(peer);
}

#[allow(clippy::too_many_arguments)]
async fn serve_tls_peer(
    ctx: EndpointCtx,
    peer: PeerId,
    remote: SocketAddr,
    stream: TcpStream,
    tx: ConnHandle,
    rx: mpsc::UnboundedReceiver<ConnCommand>,
    token: tokio_util::sync::CancellationToken,
    acceptor: tokio_rustls::TlsAcceptor,
) {
    if let Some(stream) = tls_accept(&ctx, peer, remote, stream, &acceptor, &token).await {
        conn::run(ctx, peer, remote, stream, tx, rx, token).await;
    }
}

/// Why accepting failed lately: the next try waits (100 ms, doubling to 1 s),
/// and the failures are reported at most once a second, with their count.
pub(crate) struct AcceptFailures {
    /// Failures since the last report.
    unreported: u64,
    last: Option<std::io::Error>,
    reported_at: Option<tokio::time::Instant>,
    /// The wait before the next try, while accept keeps failing.
    delay: Duration,
    pub(crate) retry_at: tokio::time::Instant,
    waiting: bool,
}

impl Default for AcceptFailures {
    fn default() -> Self {
        Self {
            unreported: 0,
            last: None,
            reported_at: None,
            delay: Duration::ZERO,
            retry_at: tokio::time::Instant::now(),
            waiting: false,
        }
    }
}

impl AcceptFailures {
    const FIRST_DELAY: Duration = Duration::from_millis(100);
    const MAX_DELAY: Duration = Duration::from_secs(1);
    const REPORT_EVERY: Duration = Duration::from_secs(1);

    pub(crate) fn backing_off(&self) -> bool {
        self.waiting
    }

    pub(crate) fn retry(&mut self) {
        self.waiting = false;
    }

    pub(crate) fn failed(
        &mut self,
        ctx: &EndpointCtx,
        local: impl std::fmt::Display,
        e: &std::io::Error,
    ) {
        self.unreported += 1;
        self.last = Some(std::io::Error::new(e.kind(), e.to_string()));
        self.delay = (self.delay * 2).clamp(Self::FIRST_DELAY, Self::MAX_DELAY);
        let now = tokio::time::Instant::now();
        self.retry_at = now + self.delay;
        self.waiting = true;
        if self
            .reported_at
            .is_none_or(|at| now.duration_since(at) >= Self::REPORT_EVERY)
        {
            self.report(ctx, local);
            self.reported_at = Some(now);
        }
    }

    /// A connection came: the next failure starts the back-off afresh.
    pub(crate) fn accepted(&mut self, ctx: &EndpointCtx, local: impl std::fmt::Display) {
        self.delay = Duration::ZERO;
        self.report(ctx, local);
    }

    /// Says how many accepts failed since the last report, if any.
    pub(crate) fn report(&mut self, ctx: &EndpointCtx, local: impl std::fmt::Display) {
        let Some(e) = self.last.take() else {
            return;
        };
        let count = std::mem::take(&mut self.unreported);
        let mut error = NetError::from_io(Operation::Accept, format!("on {local}"), &e);
        if count > 1 {
            error.message = format!(
                "{} ({count} times since the last report; trying again after {} ms)",
                error.message,
                self.delay.as_millis()
            );
        } else {
            error.message = format!(
                "{} (trying again after {} ms)",
                error.message,
                self.delay.as_millis()
            );
        }
        // Not fatal: the listener goes on. A peer-less failure would stop the
        // endpoint in callers' eyes, so it is said as a note of the listener.
        ctx.emit(EventKind::Note {
            peer: None,
            text: error.to_string(),
        });
    }
}

/// Routes a command to a server's peers. `given`: the next peer id, so the
/// ids below it were handed out.
pub(crate) fn route_server(
    ctx: &EndpointCtx,
    peers: &HashMap<PeerId, ConnHandle>,
    given: PeerId,
    command: EndpointCommand,
) {
    let send_to = |peer: PeerId, command: ConnCommand| match peers.get(&peer) {
        Some(handle) => handle.send(command),
        // Ending (or half-closing) a connection that already ended on its own
        // (the peer left while the Disconnect was on its way) is done, not a
        // failure: its own Closed event says it ended.
        None if (1..given).contains(&peer) => {}
        None => ctx.failed(
            Some(peer),
            other(Operation::Send, format!("peer {peer} is not connected")),
        ),
    };
    match command {
        EndpointCommand::Hold { .. } | EndpointCommand::Decide { .. } => {
            super::refuse_intercept(ctx)
        }
        EndpointCommand::Membership { .. } => ctx.failed(None, not_multicast()),
        EndpointCommand::SetNoDelay(on) => {
            for handle in peers.values() {
                handle.send(ConnCommand::SetNoDelay(on));
            }
        }
        EndpointCommand::PauseReads(_) if peers.is_empty() => ctx.failed(
            None,
            other(
                Operation::Configure,
                "no peer is connected yet: reads pause on open connections",
            ),
        ),
        EndpointCommand::PauseReads(pause) => {
            for handle in peers.values() {
                handle.send(ConnCommand::PauseReads(pause));
            }
        }
        EndpointCommand::Send {
            to, bytes, split, ..
        } => match to {
            Target::Peer(p) => match peers.get(&p) {
                Some(handle) => handle.send_payload(ctx, p, bytes, split),
                None => ctx.failed(
                    Some(p),
                    other(Operation::Send, format!("peer {p} is not connected")),
                ),
            },
            Target::AllPeers if peers.is_empty() => {
                ctx.failed(None, other(Operation::Send, "no peer is connected yet"))
            }
            Target::AllPeers => {
                for (&peer, handle) in peers {
                    handle.send_payload(ctx, peer, bytes.clone(), split);
                }
            }
            Target::Default => match peers.len() {
                0 => ctx.failed(None, other(Operation::Send, "no peer is connected yet")),
                1 => {
                    if let Some((&peer, handle)) = peers.iter().next() {
                        handle.send_payload(ctx, peer, bytes, split);
                    }
                }
                n => ctx.failed(
                    None,
                    other(
                        Operation::Send,
                        format!("{n} peers are connected: choose one, or send to all"),
                    ),
                ),
            },
            Target::Address(a) => ctx.failed(
                None,
                other(
                    Operation::Send,
                    format!("a TCP server sends to its connected peers, not to {a}"),
                ),
            ),
            Target::UnixPath(p) => ctx.failed(
                None,
                other(
                    Operation::Send,
                    format!("a stream server sends to its connected peers, not to {p}"),
                ),
            ),
        },
        EndpointCommand::HalfClose { peer } => send_to(peer, ConnCommand::HalfClose),
        EndpointCommand::Disconnect { peer, abort } => send_to(
            peer,
            if abort {
                ConnCommand::Abort
            } else {
                ConnCommand::Close
            },
        ),
        EndpointCommand::Close { .. } => {}
    }
}
