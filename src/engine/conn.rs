//! One stream connection (a TCP client's, or one peer of a TCP server): reads
//! and writes run side by side, so a peer that sends while we write never
//! deadlocks us, and every read and write becomes an event.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::net::EndpointCtx;
use super::{CLOSE_GRACE, EventKind, NetError, Operation, PeerId, Split, classify};
use crate::model::{Direction, ErrorKind};

/// The size of the reusable read buffer; one read becomes one `Traffic` event.
pub(crate) const READ_BUFFER: usize = 64 * 1024;

/// What a connection is asked to do, in order.
#[derive(Debug)]
pub(crate) enum ConnCommand {
    Send(Vec<u8>, Split),
    SetNoDelay(bool),
    HalfClose,
    /// Write what is queued before this, send FIN, wait briefly for the peer's FIN.
    Close,
    /// Close at once with a reset (SO_LINGER 0).
    Abort,
}

/// The handle an endpoint keeps for each of its connections.
pub(crate) struct ConnHandle {
    pub commands: mpsc::UnboundedSender<ConnCommand>,
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

/// Runs the connection until it is over, then emits `Closed`. `socket` is a
/// duplicate of the stream's socket, used for the abort (linger 0).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<S>(
    ctx: EndpointCtx,
    peer: PeerId,
    remote: SocketAddr,
    stream: S,
    socket: socket2::Socket,
    commands_tx: mpsc::UnboundedSender<ConnCommand>,
    mut commands: mpsc::UnboundedReceiver<ConnCommand>,
    token: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);

    let reader = {
        let ctx = ctx.clone();
        let commands_tx = commands_tx.clone();
        async move {
            let mut buf = vec![0u8; READ_BUFFER];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) => return ReadEnd::Eof,
                    Ok(n) => {
                        let bytes = buf[..n].to_vec();
                        let answer = ctx.reply.answer(&bytes);
                        ctx.emit(EventKind::Traffic {
                            peer,
                            remote,
                            dir: Direction::Received,
                            bytes,
                        });
                        if let Some(answer) = answer {
                            let _ = commands_tx.send(ConnCommand::Send(answer, Split::WHOLE));
                        }
                    }
                    // A TLS peer that closes without close_notify (as many do) has still ended.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return ReadEnd::Eof,
                    Err(e) => return ReadEnd::Error(e),
                }
            }
        }
    };

    // The writer sets options on a duplicate of the socket (the stream may be TLS).
    let options = match socket.try_clone() {
        Ok(dup) => dup,
        Err(e) => {
            ctx.failed(
                Some(peer),
                NetError::from_io(Operation::Configure, "the socket", &e),
            );
            return;
        }
    };
    // The payload being written, if any: when the connection ends before that
    // write finished, its `Sent` event needs a failure after it.
    let in_flight: std::sync::Arc<std::sync::Mutex<Option<usize>>> = Default::default();
    let writer = {
        let ctx = ctx.clone();
        let in_flight = in_flight.clone();
        let commands = &mut commands;
        async move {
            let mut half_closed = false;
            while let Some(command) = commands.recv().await {
                match command {
                    ConnCommand::Send(bytes, _) if half_closed => ctx.failed(
                        Some(peer),
                        NetError::new(
                            ErrorKind::Other,
                            Operation::Send,
                            format!(
                                "send {} bytes to {remote}: our sending side is shut down (half-closed)",
                                bytes.len()
                            ),
                        ),
                    ),
                    ConnCommand::Send(bytes, split) => {
                        let pieces = split.pieces(&bytes);
                        let last = pieces.len() - 1;
                        for (i, piece) in pieces.into_iter().enumerate() {
                            // Reported as the write is handed to the socket: the reader
                            // task may log the answer before this write call returns,
                            // and a log where the answer comes first misleads. A failed
                            // write is reported by the failure event that follows.
                            ctx.emit(EventKind::Traffic {
                                peer,
                                remote,
                                dir: Direction::Sent,
                                bytes: piece.to_vec(),
                            });
                            swap_in_flight(&in_flight, Some(piece.len()));
                            if let Err(e) = write_all_flush(&mut wr, piece).await {
                                return WriteEnd::Error(e);
                            }
                            swap_in_flight(&in_flight, None);
                            if i < last && !split.gap.is_zero() {
                                tokio::time::sleep(split.gap).await;
                            }
                        }
                    }
                    ConnCommand::SetNoDelay(on) => match options.set_tcp_nodelay(on) {
                        Ok(()) => ctx.emit(EventKind::Note {
                            peer: Some(peer),
                            text: format!(
                                "TCP_NODELAY {}: small writes go out {}",
                                if on { "on" } else { "off" },
                                if on { "at once" } else { "coalesced while data is unacknowledged (Nagle)" }
                            ),
                        }),
                        Err(e) => ctx.failed(Some(peer), NetError::from_io(Operation::Configure, "TCP_NODELAY", &e)),
                    },
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
                    ConnCommand::Abort => return WriteEnd::Aborted,
                }
            }
            WriteEnd::Orphaned
        }
    };
    // A weak sender, so the queue still closes when the endpoint drops its handle
    // and the reader is done.
    let queue = commands_tx.downgrade();
    drop(commands_tx);

    // Boxed, not stack-pinned, so the halves can be dropped (the socket closed)
    // before `Closed` is reported.
    let mut reader = Box::pin(reader);
    let mut writer = Box::pin(writer);
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
                        report_error(&ctx, peer, Operation::Receive, remote, &e);
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
                                Ok(ReadEnd::Error(e)) => report_error(&ctx, peer, Operation::Receive, remote, &e),
                                Err(_) => {}
                            }
                        }
                    }
                    WriteEnd::Aborted => {
                        let _ = socket.set_linger(Some(std::time::Duration::ZERO));
                        aborted = true;
                    }
                    WriteEnd::Error(e) => {
                        // The failed write's payload was reported sent: say it did not go out.
                        let len = swap_in_flight(&in_flight, None).unwrap_or_default();
                        if classify(&e) == ErrorKind::Reset {
                            ctx.emit(EventKind::Reset { peer });
                        }
                        let error = super::tls::session_error(&e, Operation::Send, remote)
                            .unwrap_or_else(|| {
                                NetError::from_io(Operation::Send, format!("{len} bytes to {remote}"), &e)
                            });
                        ctx.failed(Some(peer), error.of_reported_write());
                    }
                    WriteEnd::ShutdownError(e) => report_error(&ctx, peer, Operation::Shutdown, remote, &e),
                    WriteEnd::Orphaned => {}
                }
                break;
            }
        }
    }
    // Dropping the halves and the duplicate closes the socket (with a reset when aborted).
    drop(reader);
    drop(writer);
    drop(socket);
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
        if let ConnCommand::Send(bytes, _) = command {
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

fn report_error(
    ctx: &EndpointCtx,
    peer: PeerId,
    op: Operation,
    remote: SocketAddr,
    e: &std::io::Error,
) {
    if classify(e) == ErrorKind::Reset {
        ctx.emit(EventKind::Reset { peer });
    } else if let Some(error) = super::tls::session_error(e, op, remote) {
        ctx.failed(Some(peer), error);
    } else {
        let target = match op {
            Operation::Send => format!("to {remote}"),
            _ => format!("from {remote}"),
        };
        ctx.failed(Some(peer), NetError::from_io(op, target, e));
    }
}
