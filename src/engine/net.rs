//! What every endpoint task needs: its context, name resolution, socket options.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use socket2::SockRef;
use tokio_util::sync::CancellationToken;

use super::reply::Responder;
use super::{Emitter, EndpointId, EventKind, NetError, Operation};
use crate::model::{ErrorKind, HostPort, SocketOptions};

/// How long a name lookup may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything an endpoint task shares with its connections.
#[derive(Clone)]
pub(crate) struct EndpointCtx {
    pub id: EndpointId,
    pub options: SocketOptions,
    /// Compiled auto-reply rules, shared by every connection of the endpoint.
    pub reply: Arc<Responder>,
    pub emitter: Emitter,
    /// Cancelled when the endpoint must stop at once (engine shutdown).
    pub token: CancellationToken,
}

impl EndpointCtx {
    pub fn emit(&self, kind: EventKind) {
        self.emitter.emit(self.id, kind);
    }

    pub fn failed(&self, peer: Option<u32>, error: NetError) {
        self.emitter.failed(self.id, peer, error);
    }
}

/// Runs `task` to its end, catching a panic inside it: `Err` carries the
/// panic's message, on one line. The engine's tasks are wrapped in this, so a
/// bug ends one endpoint with a `Failed` event instead of leaving the caller
/// waiting for events that never come.
///
/// A future written by hand, not an `async fn`: an `async fn` keeps its
/// argument and the future it awaits side by side, so every wrapper doubled
/// the size of each connection's task (14 KiB a connection before).
pub(crate) fn catch_panic<F: Future<Output = ()>>(task: F) -> CatchPanic<F> {
    CatchPanic { task }
}

pub(crate) struct CatchPanic<F> {
    task: F,
}

impl<F: Future<Output = ()>> Future for CatchPanic<F> {
    type Output = Result<(), String>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        // SAFETY: `task` is pinned structurally: it is never moved out of
        // `self`, and `CatchPanic` has no Drop of its own nor an Unpin impl
        // that would let it move.
        let task = unsafe { self.map_unchecked_mut(|s| &mut s.task) };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.poll(cx))) {
            Ok(poll) => poll.map(Ok),
            Err(payload) => {
                let text = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a task panicked".to_owned());
                std::task::Poll::Ready(Err(text.split_whitespace().collect::<Vec<_>>().join(" ")))
            }
        }
    }
}

/// The error a panic inside the engine becomes.
pub(crate) fn internal_error(message: &str) -> NetError {
    NetError::new(
        ErrorKind::Other,
        Operation::Configure,
        format!(
            "{}{message} (a bug in sockbench; the endpoint stopped)",
            super::event::INTERNAL
        ),
    )
}

/// A task of the endpoint `ctx` (a connection, a replay player): a panic inside
/// it fails the endpoint with one `Failed` event and cancels the endpoint's
/// token, so the endpoint stops as after any fatal error. Written by hand for
/// the same reason as [`catch_panic`]: the task is held once, not twice.
pub(crate) fn guarded<F: Future<Output = ()>>(ctx: EndpointCtx, task: F) -> Guarded<F> {
    Guarded {
        ctx,
        task: catch_panic(task),
    }
}

pub(crate) struct Guarded<F> {
    ctx: EndpointCtx,
    task: CatchPanic<F>,
}

impl<F: Future<Output = ()>> Future for Guarded<F> {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        // SAFETY: `task` is pinned structurally (never moved out of `self`,
        // no Drop or Unpin impl here); `ctx` is only read.
        let this = unsafe { self.get_unchecked_mut() };
        let task = unsafe { std::pin::Pin::new_unchecked(&mut this.task) };
        match task.poll(cx) {
            std::task::Poll::Pending => std::task::Poll::Pending,
            std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(()),
            std::task::Poll::Ready(Err(message)) => {
                this.ctx.failed(None, internal_error(&message));
                this.ctx.token.cancel();
                std::task::Poll::Ready(())
            }
        }
    }
}

/// Resolves `target` to socket addresses. IP literals need no lookup; a host
/// name emits `Resolving` first. Fails as `NotResolved` when the name has no address.
pub(crate) async fn resolve(
    ctx: &EndpointCtx,
    target: &HostPort,
) -> Result<Vec<SocketAddr>, NetError> {
    if let Some(addr) = target.socket_addr() {
        return Ok(vec![addr]);
    }
    ctx.emit(EventKind::Resolving {
        host: target.host.clone(),
    });
    let not_resolved = |why: String| {
        NetError::new(
            ErrorKind::NotResolved,
            Operation::Resolve,
            format!("resolve {}: {why}", target.host),
        )
    };
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Err(_) => Err(not_resolved(format!(
            "no answer from the name service within {} s",
            RESOLVE_TIMEOUT.as_secs()
        ))),
        Ok(Err(e)) => Err(not_resolved(e.to_string())),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(not_resolved("the name has no address".into()))
            } else {
                Ok(addrs)
            }
        }
    }
}

/// The unspecified address of the same family as `addr` (to bind a socket that talks to it).
pub(crate) fn unspecified_for(addr: &SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

/// A failed bind(), with the usual reasons said in words.
pub(crate) fn bind_error(addr: SocketAddr, e: &std::io::Error) -> NetError {
    let mut error = NetError::from_io(super::Operation::Bind, addr, e);
    let why = match e.kind() {
        std::io::ErrorKind::AddrInUse => Some(
            "another socket holds this local address and port: choose another port, or 0 to let the system choose",
        ),
        std::io::ErrorKind::AddrNotAvailable => Some(
            "no interface of this machine has that address: give one of its own (127.0.0.1; `ip addr` lists them)",
        ),
        std::io::ErrorKind::PermissionDenied => {
            Some("ports below 1024 need privileges: choose a higher port")
        }
        _ => None,
    };
    if let Some(why) = why {
        error.message.push_str(": ");
        error.message.push_str(why);
    }
    error
}

fn configure_error(e: &std::io::Error, what: &str) -> NetError {
    NetError::from_io(Operation::Configure, what, e)
}

/// Options that apply to any socket: buffer sizes and TTL.
pub(crate) fn apply_common(
    sock: &SockRef<'_>,
    options: &SocketOptions,
    v6: bool,
) -> Result<(), NetError> {
    if let Some(size) = options.recv_buffer {
        sock.set_recv_buffer_size(size as usize)
            .map_err(|e| configure_error(&e, "SO_RCVBUF"))?;
    }
    if let Some(size) = options.send_buffer {
        sock.set_send_buffer_size(size as usize)
            .map_err(|e| configure_error(&e, "SO_SNDBUF"))?;
    }
    if let Some(ttl) = options.ttl {
        if v6 {
            sock.set_unicast_hops_v6(ttl)
        } else {
            sock.set_ttl_v4(ttl)
        }
        .map_err(|e| configure_error(&e, "TTL"))?;
    }
    Ok(())
}

/// Options of a TCP connection: no-delay, keepalive, linger.
pub(crate) fn apply_stream(sock: &SockRef<'_>, options: &SocketOptions) -> Result<(), NetError> {
    if options.nodelay {
        sock.set_tcp_nodelay(true)
            .map_err(|e| configure_error(&e, "TCP_NODELAY"))?;
    }
    if let Some(secs) = options.keepalive_secs {
        let keepalive =
            socket2::TcpKeepalive::new().with_time(Duration::from_secs(secs.max(1) as u64));
        sock.set_tcp_keepalive(&keepalive)
            .map_err(|e| configure_error(&e, "SO_KEEPALIVE"))?;
    }
    if let Some(secs) = options.linger_secs {
        sock.set_linger(Some(Duration::from_secs(secs as u64)))
            .map_err(|e| configure_error(&e, "SO_LINGER"))?;
    }
    Ok(())
}
