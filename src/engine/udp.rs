//! UDP sockets: bound once, then either connected to their default remote
//! (the kernel delivers only its datagrams and reports an ICMP "port
//! unreachable" as refused) or unconnected (datagrams to and from any
//! address). Each remote address the socket talks to becomes a numbered peer
//! (from 1), so the log and replies can name it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::conn::READ_BUFFER;
use super::net::{EndpointCtx, apply_common, resolve, unspecified_for};
use super::{EndpointCommand, EventKind, NetError, Operation, PeerId, Split, Target};
use crate::model::{Direction, ErrorKind, HostPort};

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
    apply_common(&SockRef::from(&socket), &ctx.options, addr.is_ipv6())?;
    if bind {
        socket
            .bind(&addr.into())
            .map_err(|e| NetError::from_io(Operation::Bind, addr, &e))?;
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

    let mut peers = Peers::default();
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
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        tokio::select! {
            _ = ctx.token.cancelled() => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, from)) => {
                    let peer = peers.id(from);
                    let bytes = buf[..n].to_vec();
                    let answer = ctx.reply.answer(&bytes);
                    ctx.emit(EventKind::Traffic { peer, remote: from, dir: Direction::Received, bytes });
                    if let Some(answer) = answer {
                        send_datagram(&ctx, &socket, connected, peer, from, answer).await;
                    }
                }
                Err(e) => {
                    // An ICMP error for an earlier datagram (port unreachable, …):
                    // reported (a connected socket hears them), then go on.
                    let error = match connected {
                        Some(remote) => NetError::from_io(Operation::Receive, format!("from {remote}"), &e),
                        None => NetError::from_io(Operation::Receive, format!("on {local}"), &e),
                    };
                    ctx.failed(connected.map(|r| peers.id(r)), error);
                }
            },
            command = commands.recv() => match command {
                None | Some(EndpointCommand::Close { .. }) => break,
                Some(EndpointCommand::SetNoDelay(_)) => {
                    ctx.failed(None, NetError::new(ErrorKind::Other, Operation::Configure,
                        "TCP_NODELAY is a TCP option: a UDP socket sends every datagram at once anyway"));
                }
                Some(EndpointCommand::Send { to, bytes, split }) => {
                    let destinations: Vec<SocketAddr> = match to {
                        Target::Default => match remote_addr {
                            Some(r) => vec![r],
                            None => {
                                ctx.failed(None, NetError::new(ErrorKind::Other, Operation::Send,
                                    "this UDP socket has no default remote: give an address to send to"));
                                continue;
                            }
                        },
                        Target::Peer(p) => match peers.addr(p) {
                            Some(a) => vec![a],
                            None => {
                                ctx.failed(Some(p), NetError::new(ErrorKind::Other, Operation::Send,
                                    format!("peer {p} is unknown to this socket")));
                                continue;
                            }
                        },
                        Target::AllPeers => peers.by_id.clone(),
                        Target::Address(hp) => match resolve(&ctx, &hp).await {
                            Ok(addrs) => vec![pick(Some(&local), &addrs)],
                            Err(e) => {
                                ctx.failed(None, e);
                                continue;
                            }
                        },
                    };
                    let targets: Vec<(PeerId, SocketAddr)> =
                        destinations.into_iter().map(|d| (peers.id(d), d)).collect();
                    if split == Split::WHOLE {
                        for (peer, dest) in targets {
                            send_datagram(&ctx, &socket, connected, peer, dest, bytes.clone()).await;
                        }
                    } else {
                        // Pieces, each its own datagram, gap apart: off this loop,
                        // so receiving goes on meanwhile.
                        let (ctx, socket) = (ctx.clone(), socket.clone());
                        tokio::spawn(super::net::guarded(ctx.clone(), async move {
                            let pieces: Vec<Vec<u8>> = split.pieces(&bytes).into_iter().map(<[u8]>::to_vec).collect();
                            for (i, piece) in pieces.iter().enumerate() {
                                if i > 0 && !split.gap.is_zero() {
                                    tokio::time::sleep(split.gap).await;
                                }
                                for &(peer, dest) in &targets {
                                    send_datagram(&ctx, &socket, connected, peer, dest, piece.clone()).await;
                                }
                            }
                        }));
                    }
                }
                Some(EndpointCommand::HalfClose { peer } | EndpointCommand::Disconnect { peer, .. }) => {
                    ctx.failed(Some(peer), NetError::new(ErrorKind::Other, Operation::Shutdown,
                        "UDP has no connection to close: datagrams just stop"));
                }
            },
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
    bytes: Vec<u8>,
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
        Err(e) => ctx.failed(
            Some(peer),
            NetError::from_io(Operation::Send, format!("to {dest}"), &e).of_reported_write(),
        ),
    }
}

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
