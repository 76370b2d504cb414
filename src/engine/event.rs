//! What the engine reports: one [`Event`] per thing that happened on a socket.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::model::log::{Direction, EntryKind, ErrorKind, NO_PEER, TrafficLog};
use crate::model::unix::UnixName;

/// The `remote` of a `Traffic` event of a Unix-domain endpoint, whose peers
/// have no IP address: the peer's name came with its `UnixConnected`,
/// `UnixAccepted` or `UnixPeer` event (an unspecified address with port 0 is
/// never a real peer's). [`EventKind::remote`] gives `None` for it.
pub const UNIX_PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// Identifies an endpoint to the engine; chosen by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub u64);

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "endpoint {}", self.0)
    }
}

/// A peer within an endpoint: a TCP client's connection is peer 0, a TCP
/// server's accepted peers and a UDP socket's remote addresses count from 1.
pub type PeerId = u32;

/// Something that happened, stamped when it happened (when the bytes were read
/// or written, not when the caller drained the event).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: EndpointId,
    pub at: DateTime<Utc>,
    pub kind: EventKind,
}

/// The kinds of event, in the order an endpoint's life usually produces them.
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// Looking up a host name.
    Resolving { host: String },
    /// A TCP connect to this address is under way (one per address tried).
    Connecting { remote: SocketAddr },
    /// A TCP client's connection is established.
    Connected {
        peer: PeerId,
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// A TCP server listens on this address.
    Listening { local: SocketAddr },
    /// A UDP socket is bound to this address.
    Bound { local: SocketAddr },
    /// A TCP server accepted a peer.
    Accepted {
        peer: PeerId,
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// A payload was written or read. One read is one event, reported after the
    /// read. A write (a stream's or a datagram's) is reported as it is handed
    /// to the socket, so it never follows the answer it provoked; when the
    /// write fails, a `Failed` event whose error has `failed_write` follows it.
    /// The bytes are shared (not copied) with the echo that answers them.
    Traffic {
        peer: PeerId,
        remote: SocketAddr,
        dir: Direction,
        bytes: Bytes,
    },
    /// Received datagrams that were lost, counted since the previous such event
    /// of the endpoint (add them up). UDP cannot slow its sender: the kernel
    /// drops what its receive buffer cannot hold, and sockbench drops what its
    /// event budget cannot hold when the caller falls behind. Reported at most
    /// about once a second while drops go on, and once more when the socket stops.
    Dropped {
        cause: DropCause,
        datagrams: u64,
        /// Their payload bytes, when known (the kernel does not say).
        bytes: Option<u64>,
    },
    /// The peer closed its sending side in order (we read end-of-stream).
    PeerClosed { peer: PeerId },
    /// We shut down our sending side; the peer reads end-of-stream.
    HalfClosed { peer: PeerId },
    /// The peer reset the connection.
    Reset { peer: PeerId },
    /// A connection ended on our side; `aborted` when we sent a reset.
    Closed { peer: PeerId, aborted: bool },
    /// An operation failed. Without a peer, the endpoint itself failed (and stops).
    Failed {
        peer: Option<PeerId>,
        error: NetError,
    },
    /// A TLS handshake finished: version, cipher suite, ALPN, the peer's certificate.
    TlsHandshake { peer: PeerId, detail: String },
    /// A remark from sockbench itself (a replay waiting in vain, …).
    Note { peer: Option<PeerId>, text: String },
    /// A replay plays recorded conversation `conversation` (0-based) with this peer.
    ReplayAssigned { peer: PeerId, conversation: usize },
    /// A reply rule matched a message from `peer`: `rule` is its index in the
    /// endpoint's list as started (the window counts hits per rule), `text`
    /// the log's note.
    RuleMatched {
        peer: PeerId,
        rule: u32,
        text: String,
    },
    /// A replay has sent this many payloads so far (not logged).
    ReplayProgress { sent: usize },
    /// A relay's intercept held a read, or passed on or dropped a held one
    /// (logged as a note that says which way and what was done).
    Intercept {
        peer: PeerId,
        way: crate::model::impair::Way,
        item: u64,
        change: super::intercept::HeldChange,
    },
    /// The endpoint stopped; always its last event.
    Stopped,
    /// A Unix stream server listens on this name.
    UnixListening { local: UnixName },
    /// A Unix datagram socket is bound to this name (or unnamed).
    UnixBound { local: UnixName },
    /// A Unix stream client's connection is established.
    UnixConnected {
        peer: PeerId,
        local: UnixName,
        remote: UnixName,
    },
    /// A Unix stream server accepted a peer (most clients are unnamed).
    UnixAccepted {
        peer: PeerId,
        local: UnixName,
        remote: UnixName,
    },
    /// A Unix datagram socket met a peer: the first datagram from (or to) this name.
    UnixPeer { peer: PeerId, remote: UnixName },
}

/// Who dropped received datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropCause {
    /// The kernel: the socket's receive buffer was full (SO_RXQ_OVFL).
    Kernel,
    /// sockbench: received bytes waiting for the caller filled the event budget.
    Budget,
}

/// The socket operation that was under way, named as in the sockets API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Resolve,
    Configure,
    Bind,
    Listen,
    Connect,
    Accept,
    Send,
    Receive,
    Shutdown,
    Tls,
}

impl Operation {
    pub fn verb(self) -> &'static str {
        match self {
            Operation::Resolve => "resolve",
            Operation::Configure => "set socket options",
            Operation::Bind => "bind",
            Operation::Listen => "listen",
            Operation::Connect => "connect",
            Operation::Accept => "accept",
            Operation::Send => "send",
            Operation::Receive => "receive",
            Operation::Shutdown => "shutdown",
            Operation::Tls => "TLS handshake",
        }
    }
}

/// A failure with a kind a person can look up and a message saying exactly what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", kind_prefix(*kind))]
pub struct NetError {
    pub kind: ErrorKind,
    pub operation: Operation,
    /// The operation, its address, and the operating system's words:
    /// `connect to 127.0.0.1:1: Connection refused (os error 111)`.
    pub message: String,
    /// This is the failure of a write that a `Traffic` event (sent) reported
    /// just before: that payload did not (all) go out. Every other failure to
    /// send (refused before any write) leaves this false, so a caller can
    /// count exactly how many payloads went out.
    pub failed_write: bool,
}

/// How the message of an internal error (a caught panic) begins.
pub(crate) const INTERNAL: &str = "internal error: ";

/// `connection refused: …`; an error of no particular kind needs no label
/// (its message says what happened, and callers write `error: ` already).
fn kind_prefix(kind: ErrorKind) -> String {
    match kind {
        ErrorKind::Other => String::new(),
        kind => format!("{}: ", kind.label()),
    }
}

impl NetError {
    pub fn new(kind: ErrorKind, operation: Operation, message: impl Into<String>) -> Self {
        Self {
            kind,
            operation,
            message: message.into(),
            failed_write: false,
        }
    }

    /// A bug inside sockbench (a caught panic), not a network failure: the
    /// endpoint stopped because of it.
    pub fn is_internal(&self) -> bool {
        self.message.starts_with(INTERNAL)
    }

    /// Marks this as the failure of a write already reported as sent.
    pub fn of_reported_write(mut self) -> Self {
        self.failed_write = true;
        self
    }

    /// Classifies an I/O error from `operation` on `target`.
    pub fn from_io(operation: Operation, target: impl fmt::Display, e: &std::io::Error) -> Self {
        Self::new(
            classify(e),
            operation,
            format!("{} {}: {}", operation.verb(), target, e),
        )
    }
}

/// The kind of an I/O error, by the operating system's error code.
pub fn classify(e: &std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => ErrorKind::Refused,
        K::ConnectionReset => ErrorKind::Reset,
        K::ConnectionAborted => ErrorKind::Aborted,
        K::TimedOut => ErrorKind::TimedOut,
        K::HostUnreachable | K::NetworkUnreachable | K::NetworkDown => ErrorKind::Unreachable,
        K::AddrInUse => ErrorKind::AddressInUse,
        K::AddrNotAvailable => ErrorKind::AddressNotAvailable,
        K::PermissionDenied => ErrorKind::PermissionDenied,
        K::BrokenPipe => ErrorKind::BrokenPipe,
        _ => ErrorKind::Other,
    }
}

impl EventKind {
    /// The peer this event concerns, if any.
    pub fn peer(&self) -> Option<PeerId> {
        match self {
            EventKind::Connected { peer, .. }
            | EventKind::Accepted { peer, .. }
            | EventKind::Traffic { peer, .. }
            | EventKind::PeerClosed { peer }
            | EventKind::HalfClosed { peer }
            | EventKind::Reset { peer }
            | EventKind::Closed { peer, .. } => Some(*peer),
            EventKind::Failed { peer, .. } | EventKind::Note { peer, .. } => *peer,
            EventKind::ReplayAssigned { peer, .. }
            | EventKind::TlsHandshake { peer, .. }
            | EventKind::Intercept { peer, .. }
            | EventKind::RuleMatched { peer, .. } => Some(*peer),
            EventKind::UnixConnected { peer, .. }
            | EventKind::UnixAccepted { peer, .. }
            | EventKind::UnixPeer { peer, .. } => Some(*peer),
            _ => None,
        }
    }

    /// The log entry kind this event becomes.
    pub fn entry_kind(&self) -> EntryKind {
        match self {
            EventKind::Resolving { .. } => EntryKind::Resolving,
            EventKind::Connecting { .. } => EntryKind::Connecting,
            EventKind::Connected { .. } => EntryKind::Connected,
            EventKind::Listening { .. } => EntryKind::Listening,
            EventKind::Bound { .. } => EntryKind::Bound,
            EventKind::Accepted { .. } => EntryKind::Accepted,
            EventKind::Traffic {
                dir: Direction::Sent,
                ..
            } => EntryKind::Sent,
            EventKind::Traffic {
                dir: Direction::Received,
                ..
            } => EntryKind::Received,
            EventKind::PeerClosed { .. } => EntryKind::PeerClosed,
            EventKind::HalfClosed { .. } => EntryKind::HalfClosed,
            EventKind::Reset { .. } => EntryKind::Reset,
            EventKind::Closed { .. } => EntryKind::Closed,
            EventKind::Failed { error, .. } => EntryKind::Failed(error.kind),
            EventKind::TlsHandshake { .. } => EntryKind::TlsHandshake,
            EventKind::Note { .. }
            | EventKind::RuleMatched { .. }
            | EventKind::Dropped { .. }
            | EventKind::ReplayAssigned { .. }
            | EventKind::ReplayProgress { .. }
            | EventKind::Intercept { .. } => EntryKind::Note,
            EventKind::Stopped => EntryKind::Stopped,
            EventKind::UnixListening { .. } => EntryKind::Listening,
            EventKind::UnixBound { .. } => EntryKind::Bound,
            EventKind::UnixConnected { .. } => EntryKind::Connected,
            EventKind::UnixAccepted { .. } => EntryKind::Accepted,
            EventKind::UnixPeer { .. } => EntryKind::Note,
        }
    }

    /// The detail line stored with a lifecycle entry.
    pub fn detail(&self) -> String {
        match self {
            EventKind::Resolving { host } => host.clone(),
            EventKind::Connecting { remote } => remote.to_string(),
            EventKind::Connected { local, .. } => format!("from {local}"),
            EventKind::Listening { local } | EventKind::Bound { local } => local.to_string(),
            EventKind::Accepted { local, .. } => format!("on {local}"),
            EventKind::Traffic { .. } => String::new(),
            EventKind::PeerClosed { .. } => "the peer closed its sending side".into(),
            EventKind::HalfClosed { .. } => "we shut down our sending side (FIN)".into(),
            EventKind::Reset { .. } => "the peer reset the connection".into(),
            EventKind::Closed { aborted: true, .. } => "aborted: we sent a reset".into(),
            EventKind::Closed { aborted: false, .. } => "connection closed".into(),
            EventKind::Failed { error, .. } => error.message.clone(),
            EventKind::Note { text, .. }
            | EventKind::RuleMatched { text, .. }
            | EventKind::TlsHandshake { detail: text, .. } => text.clone(),
            EventKind::ReplayAssigned { conversation, .. } => {
                format!("replaying recorded conversation {}", conversation + 1)
            }
            EventKind::ReplayProgress { sent } => format!("{sent} payloads sent"),
            EventKind::Intercept {
                way, item, change, ..
            } => change.note(*way, *item),
            EventKind::Dropped {
                cause,
                datagrams,
                bytes,
            } => {
                let size = bytes.map(|b| format!(" ({b} bytes)")).unwrap_or_default();
                match cause {
                    DropCause::Kernel => format!(
                        "{datagrams} datagrams dropped by the kernel{size}: the socket's receive \
                         buffer was full (raise it with the receive buffer option, or \
                         net.core.rmem_max)"
                    ),
                    DropCause::Budget => format!(
                        "{datagrams} datagrams dropped{size}: received data waiting to be shown \
                         or logged filled sockbench's budget, and UDP cannot slow its sender"
                    ),
                }
            }
            EventKind::Stopped => String::new(),
            EventKind::UnixListening { local } | EventKind::UnixBound { local } => {
                local.to_string()
            }
            EventKind::UnixConnected { local, .. } => format!("from {local}"),
            EventKind::UnixAccepted { local, .. } => format!("on {local}"),
            EventKind::UnixPeer { remote, .. } => format!("new peer {remote}"),
        }
    }

    /// The peer's name, for events of Unix-domain endpoints that tell it.
    pub fn unix_remote(&self) -> Option<&UnixName> {
        match self {
            EventKind::UnixConnected { remote, .. }
            | EventKind::UnixAccepted { remote, .. }
            | EventKind::UnixPeer { remote, .. } => Some(remote),
            _ => None,
        }
    }

    /// The peer's address, for events that know it.
    pub fn remote(&self) -> Option<SocketAddr> {
        match self {
            EventKind::Connected { remote, .. }
            | EventKind::Accepted { remote, .. }
            | EventKind::Traffic { remote, .. }
                if *remote != UNIX_PEER =>
            {
                Some(*remote)
            }
            _ => None,
        }
    }

    /// The peer's address or name as the log shows it, for events that know it.
    pub fn remote_text(&self) -> Option<String> {
        self.remote()
            .map(|r| r.to_string())
            .or_else(|| self.unix_remote().map(|n| n.to_string()))
    }
}

impl Event {
    /// Appends this event to `log` as one entry of `endpoint`, and returns the
    /// entry's index; progress reports are not logged.
    pub fn record(&self, log: &mut TrafficLog, endpoint: u32) -> Option<usize> {
        if matches!(self.kind, EventKind::ReplayProgress { .. }) {
            return None;
        }
        let peer = match self.kind.peer() {
            // A known peer with its address needs no formatting of the address
            // (one per datagram would cost more than the datagram).
            Some(p) => match log.find_peer(endpoint, p) {
                Some(i)
                    if (self.kind.remote().is_none() && self.kind.unix_remote().is_none())
                        || log
                            .peers()
                            .get(i as usize)
                            .is_some_and(|record| !record.remote.is_empty()) =>
                {
                    i
                }
                _ => {
                    // Unnamed Unix peers are told apart by their number.
                    let remote = match self.kind.unix_remote() {
                        Some(UnixName::Unnamed) => format!("(unnamed #{p})"),
                        _ => self.kind.remote_text().unwrap_or_default(),
                    };
                    log.peer_index(endpoint, p, &remote)
                }
            },
            None => NO_PEER,
        };
        let kind = self.kind.entry_kind();
        let index = match &self.kind {
            EventKind::Traffic { bytes, .. } => log.push(self.at, endpoint, peer, kind, bytes),
            other => log.push(self.at, endpoint, peer, kind, other.detail().as_bytes()),
        };
        if let EventKind::Failed { error, .. } = &self.kind
            && error.failed_write
        {
            // The payload reported as sent just before did not (all) go out:
            // its row must never read, save or replay as sent.
            log.mark_unsent(endpoint, peer, index);
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write reported as sent whose failure followed: the saved session
    /// says Unsent, the totals do not count it, and a replay never sends it.
    #[test]
    fn a_failed_write_is_saved_unsent_and_never_replayed() {
        use crate::model::Session;
        use crate::model::endpoint::{EndpointKind, EndpointSpec};
        let remote: SocketAddr = "127.0.0.1:7".parse().unwrap();
        let mut session = Session::default();
        session.endpoints.push(EndpointSpec::new(
            "client",
            EndpointKind::TcpClient {
                remote: remote.into(),
            },
        ));
        let ep = session.log.endpoint_index("client");
        let id = EndpointId(1);
        let at = |s| DateTime::from_timestamp(s, 0).unwrap();
        let events = [
            EventKind::Connected {
                peer: 0,
                local: "127.0.0.1:5000".parse().unwrap(),
                remote,
            },
            EventKind::Traffic {
                peer: 0,
                remote,
                dir: Direction::Sent,
                bytes: Bytes::from_static(b"went out"),
            },
            EventKind::Traffic {
                peer: 0,
                remote,
                dir: Direction::Sent,
                bytes: Bytes::from_static(b"never went out"),
            },
            EventKind::Failed {
                peer: Some(0),
                error: NetError::new(ErrorKind::BrokenPipe, Operation::Send, "send: broken pipe")
                    .of_reported_write(),
            },
        ];
        for (i, kind) in events.into_iter().enumerate() {
            Event {
                id,
                at: at(i as i64),
                kind,
            }
            .record(&mut session.log, ep);
        }
        let t = session.log.totals();
        assert_eq!((t.sent, t.sent_bytes), (1, 8));
        let mut out = Vec::new();
        crate::persist::encode_to(&session, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Unsent(Text(\"never went out\"))"), "{text}");
        assert_eq!(text.matches("Sent(").count(), 1, "{text}");
        let back = crate::persist::from_str(&text, std::path::Path::new("s.sockbench"))
            .expect("the saved session loads");
        assert_eq!(back.log.totals(), t);
        let plans = crate::model::replay::plan_session(&back, None, None).unwrap();
        let steps: Vec<&[u8]> = plans[0].conversations[0]
            .steps
            .iter()
            .map(|s| s.bytes.as_slice())
            .collect();
        assert_eq!(steps, [b"went out".as_slice()]);
    }

    #[test]
    fn io_errors_are_classified() {
        use std::io::{Error, ErrorKind as K};
        assert_eq!(
            classify(&Error::from(K::ConnectionRefused)),
            ErrorKind::Refused
        );
        assert_eq!(
            classify(&Error::from(K::AddrInUse)),
            ErrorKind::AddressInUse
        );
        assert_eq!(
            classify(&Error::from_raw_os_error(113)),
            ErrorKind::Unreachable
        );
        assert_eq!(
            classify(&Error::from_raw_os_error(13)),
            ErrorKind::PermissionDenied
        );
        assert_eq!(classify(&Error::other("x")), ErrorKind::Other);
        let e = NetError::from_io(
            Operation::Connect,
            "to 127.0.0.1:1",
            &Error::from_raw_os_error(111),
        );
        assert_eq!(e.kind, ErrorKind::Refused);
        assert!(
            e.message
                .starts_with("connect to 127.0.0.1:1: Connection refused"),
            "{}",
            e.message
        );
    }
}
