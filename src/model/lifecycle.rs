//! The socket API steps of an endpoint, as a learner draws them — server:
//! socket, bind, listen, accept, recv/send, shutdown, close; client: socket,
//! connect, send/recv, shutdown, close; UDP: socket, bind, sendto/recvfrom,
//! close — and how far the endpoint's last run got, read from the log.

use super::KindTag;
use super::log::{EntryKind, ErrorKind, TrafficLog};
use super::proxy::{PROXY_CONNECTED_NOTE, RECONNECT_NOTE, TUNNEL_NOTE};

/// One call of the sockets API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    GetAddrInfo,
    Socket,
    Bind,
    Listen,
    Accept,
    Connect,
    TlsHandshake,
    SendRecv,
    SendToRecvFrom,
    /// setsockopt(IP_ADD_MEMBERSHIP): a UDP socket joins an IPv4 multicast group.
    JoinGroup,
    /// setsockopt(IPV6_JOIN_GROUP): the same for an IPv6 group.
    JoinGroupV6,
    Shutdown,
    Close,
}

impl Call {
    pub fn name(self) -> &'static str {
        match self {
            Call::GetAddrInfo => "getaddrinfo()",
            Call::Socket => "socket()",
            Call::Bind => "bind()",
            Call::Listen => "listen()",
            Call::Accept => "accept()",
            Call::Connect => "connect()",
            Call::TlsHandshake => "TLS handshake",
            Call::SendRecv => "send() / recv()",
            Call::SendToRecvFrom => "sendto() / recvfrom()",
            Call::JoinGroup => "setsockopt(IP_ADD_MEMBERSHIP)",
            Call::JoinGroupV6 => "setsockopt(IPV6_JOIN_GROUP)",
            Call::Shutdown => "shutdown()",
            Call::Close => "close()",
        }
    }

    /// What the call does, for a tooltip.
    pub fn meaning(self) -> &'static str {
        match self {
            Call::GetAddrInfo => {
                "Look the host name up: the name service returns its IP addresses."
            }
            Call::Socket => {
                "Create the socket: an endpoint of communication, not yet connected to anything."
            }
            Call::Bind => "Give the socket its local address and port.",
            Call::Listen => {
                "Mark the socket passive: the system now completes handshakes and queues new connections."
            }
            Call::Accept => "Take the next completed connection: a new socket for that peer.",
            Call::Connect => "Start TCP's three-way handshake (SYN, SYN-ACK, ACK) with the server.",
            Call::TlsHandshake => {
                "Agree on keys over the connection: the server shows its certificate, the client checks it, then everything is encrypted."
            }
            Call::SendRecv => {
                "Write bytes to the connection and read what arrives: a stream, without message boundaries."
            }
            Call::SendToRecvFrom => {
                "Send a datagram to an address, and read datagrams with the address they came from."
            }
            Call::JoinGroup | Call::JoinGroupV6 => {
                "Join a multicast group on an interface: the kernel announces it (IGMP, MLD) and delivers the group's datagrams to this socket."
            }
            Call::Shutdown => {
                "End one direction: shutdown(SHUT_WR) sends a FIN, the peer reads end-of-stream."
            }
            Call::Close => {
                "Release the socket; an open connection ends (FIN, or RST with unread data or linger 0)."
            }
        }
    }
}

impl Call {
    /// The call as an endpoint of `kind` makes it: a Unix socket's
    /// `socket(AF_UNIX, SOCK_STREAM)`; the others as [`Call::name`].
    pub fn name_for(self, kind: KindTag) -> &'static str {
        match (self, kind) {
            (Call::Socket, KindTag::UnixClient | KindTag::UnixServer) => {
                "socket(AF_UNIX, SOCK_STREAM)"
            }
            (Call::Socket, KindTag::UnixDatagram) => "socket(AF_UNIX, SOCK_DGRAM)",
            _ => self.name(),
        }
    }

    /// What the call does for an endpoint of `kind`, for a tooltip.
    pub fn meaning_for(self, kind: KindTag) -> &'static str {
        if !kind.is_unix() {
            return self.meaning();
        }
        match self {
            Call::Socket => {
                "Create a Unix-domain socket: it talks only to sockets on this machine, named by file paths (or @names on Linux), not IP addresses."
            }
            Call::Bind => {
                "Give the socket its name: a filesystem path creates the socket file there (an @name lives in the kernel only)."
            }
            Call::Listen => "Mark the socket passive: the system now queues connecting clients.",
            Call::Accept => {
                "Take the next connected client: a new socket for that peer (most clients have no name)."
            }
            Call::Connect => {
                "Connect to the server's socket by its path: no packets, the kernel joins the two sockets at once."
            }
            Call::Close => {
                "Release the socket; a server's socket file stays until it is removed (sockbench removes the one it made)."
            }
            other => other.meaning(),
        }
    }
}

/// How far a step got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepState {
    /// Not reached (yet).
    Pending,
    /// Under way (connecting, resolving).
    Active,
    Done,
    /// Failed, with the kind and the detail line of the failure.
    Failed(ErrorKind, String),
}

/// One step of the diagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepStatus {
    pub call: Call,
    pub state: StepState,
    /// When it last happened (µs since the epoch), if it did.
    pub at: Option<i64>,
    /// A short count or address shown under the step ("3 sent, 2 received").
    pub note: String,
}

/// The calls of an endpoint kind, in order.
pub fn calls(kind: KindTag, resolves: bool) -> Vec<Call> {
    let mut calls = Vec::new();
    if resolves {
        calls.push(Call::GetAddrInfo);
    }
    calls.push(Call::Socket);
    match kind {
        KindTag::TcpServer => calls.extend([
            Call::Bind,
            Call::Listen,
            Call::Accept,
            Call::SendRecv,
            Call::Shutdown,
        ]),
        KindTag::TcpClient => calls.extend([Call::Connect, Call::SendRecv, Call::Shutdown]),
        KindTag::TlsClient => calls.extend([
            Call::Connect,
            Call::TlsHandshake,
            Call::SendRecv,
            Call::Shutdown,
        ]),
        // A relay is a server toward its clients (its upstream side is in notes).
        KindTag::TlsServer | KindTag::Relay => calls.extend([
            Call::Bind,
            Call::Listen,
            Call::Accept,
            Call::TlsHandshake,
            Call::SendRecv,
            Call::Shutdown,
        ]),
        KindTag::Udp => calls.extend([Call::Bind, Call::SendToRecvFrom]),
        KindTag::UnixServer => calls.extend([
            Call::Bind,
            Call::Listen,
            Call::Accept,
            Call::SendRecv,
            Call::Shutdown,
        ]),
        KindTag::UnixClient => calls.extend([Call::Connect, Call::SendRecv, Call::Shutdown]),
        KindTag::UnixDatagram => calls.extend([Call::Bind, Call::SendToRecvFrom]),
    }
    calls.push(Call::Close);
    calls
}

/// The call a failure belongs to, from its detail line ("connect to …", "bind …").
fn failed_call(detail: &str, kind: ErrorKind) -> Call {
    // The proxy's refusals and silences belong to the connect of a client through it.
    if detail.starts_with("proxy ")
        || detail.starts_with("the proxy")
        || detail.contains(" (proxy ")
    {
        return Call::Connect;
    }
    let verb = detail.split_whitespace().next().unwrap_or_default();
    match verb {
        "resolve" => Call::GetAddrInfo,
        "bind" => Call::Bind,
        "listen" => Call::Listen,
        "accept" => Call::Accept,
        "connect" => Call::Connect,
        "send" | "receive" => Call::SendRecv,
        "shutdown" => Call::Shutdown,
        "TLS" => Call::TlsHandshake,
        "set" => Call::Socket,
        v if v.starts_with("setsockopt(IP_ADD_MEMBERSHIP)") => Call::JoinGroup,
        v if v.starts_with("setsockopt(IPV6_JOIN_GROUP)") => Call::JoinGroupV6,
        v if v.starts_with("setsockopt(") => Call::Socket,
        _ => match kind {
            ErrorKind::NotResolved => Call::GetAddrInfo,
            ErrorKind::AddressInUse | ErrorKind::AddressNotAvailable => Call::Bind,
            ErrorKind::Refused | ErrorKind::TimedOut | ErrorKind::Unreachable => Call::Connect,
            ErrorKind::Tls => Call::TlsHandshake,
            _ => Call::SendRecv,
        },
    }
}

/// How the engine's note begins when it connects a UDP socket to its remote
/// (the log shows it; the lifecycle then draws connect() and send()/recv()).
pub const UDP_CONNECT_NOTE: &str = "connect() to ";

/// The calls of a connected UDP socket: connect() after bind(), then
/// send()/recv() with its one remote instead of sendto()/recvfrom().
fn connected_udp(calls: Vec<Call>) -> Vec<Call> {
    calls
        .into_iter()
        .flat_map(|c| match c {
            Call::Bind => vec![Call::Bind, Call::Connect],
            Call::SendToRecvFrom => vec![Call::SendRecv],
            other => vec![other],
        })
        .collect()
}

/// The steps of `endpoint`'s last run in `log`.
pub fn lifecycle(log: &TrafficLog, endpoint: &str, kind: KindTag) -> Vec<StepStatus> {
    let Some(ep) = log.find_endpoint(endpoint) else {
        return calls(kind, false).into_iter().map(pending).collect();
    };
    // The last run: runs end at each Stopped; the last one with entries counts.
    let entries = log.entries();
    let mut runs: Vec<Vec<usize>> = vec![Vec::new()];
    for (i, e) in entries.iter().enumerate() {
        if e.endpoint != ep {
            continue;
        }
        if let Some(current) = runs.last_mut() {
            current.push(i);
        }
        if e.kind == EntryKind::Stopped {
            runs.push(Vec::new());
        }
    }
    let run = runs
        .into_iter()
        .rev()
        .find(|r| !r.is_empty())
        .unwrap_or_default();
    let resolves = run.iter().any(|&i| entries[i].kind == EntryKind::Resolving);
    let connected_udp_run = kind == KindTag::Udp
        && run.iter().any(|&i| {
            let e = &entries[i];
            (e.kind == EntryKind::Note && log.bytes_of(e).starts_with(UDP_CONNECT_NOTE.as_bytes()))
                || (matches!(e.kind, EntryKind::Failed(_))
                    && log.bytes_of(e).starts_with(b"connect "))
        });
    let mut calls = if connected_udp_run {
        connected_udp(calls(kind, resolves))
    } else {
        calls(kind, resolves)
    };
    // A UDP socket that joined (or tried to join) groups: the join comes
    // after bind() (and connect()), before the datagrams.
    if kind == KindTag::Udp {
        for join in [Call::JoinGroup, Call::JoinGroupV6] {
            let tried = run.iter().any(|&i| {
                let e = &entries[i];
                matches!(e.kind, EntryKind::Note | EntryKind::Failed(_))
                    && log.bytes_of(e).starts_with(join.name().as_bytes())
            });
            if tried {
                let at = calls
                    .iter()
                    .position(|c| matches!(c, Call::SendRecv | Call::SendToRecvFrom))
                    .unwrap_or(calls.len());
                calls.insert(at, join);
            }
        }
    }
    let mut steps: Vec<StepStatus> = calls.into_iter().map(pending).collect();
    let set = |steps: &mut Vec<StepStatus>, call: Call, state: StepState, at: i64| {
        if let Some(s) = steps.iter_mut().find(|s| s.call == call) {
            s.state = state;
            s.at = Some(at);
        }
    };
    let (mut sent, mut received, mut accepted) = (0u64, 0u64, 0u64);
    // A client through a proxy: the proxy as its note says it, whether the
    // tunnel is up; and how many times it connected again.
    let mut via: Option<String> = None;
    let mut tunnel = false;
    let mut attempts = 0u32;
    for &i in &run {
        let e = &entries[i];
        let at = e.at_micros;
        match e.kind {
            EntryKind::Resolving => set(&mut steps, Call::GetAddrInfo, StepState::Active, at),
            EntryKind::Connecting => {
                set(&mut steps, Call::GetAddrInfo, StepState::Done, at);
                set(&mut steps, Call::Socket, StepState::Done, at);
                set(&mut steps, Call::Connect, StepState::Active, at);
            }
            EntryKind::Connected => {
                // A Unix client has no Connecting step before (no handshake).
                set(&mut steps, Call::Socket, StepState::Done, at);
                set(&mut steps, Call::Connect, StepState::Done, at);
            }
            EntryKind::TlsHandshake => set(&mut steps, Call::TlsHandshake, StepState::Done, at),
            EntryKind::Listening | EntryKind::Bound => {
                set(&mut steps, Call::GetAddrInfo, StepState::Done, at);
                set(&mut steps, Call::Socket, StepState::Done, at);
                set(&mut steps, Call::Bind, StepState::Done, at);
                set(&mut steps, Call::Listen, StepState::Done, at);
            }
            EntryKind::Accepted => {
                accepted += 1;
                set(&mut steps, Call::Accept, StepState::Done, at);
            }
            EntryKind::Sent | EntryKind::Received => {
                if e.kind == EntryKind::Sent {
                    sent += 1;
                } else {
                    received += 1;
                }
                set(&mut steps, Call::SendRecv, StepState::Done, at);
                set(&mut steps, Call::SendToRecvFrom, StepState::Done, at);
            }
            EntryKind::HalfClosed => set(&mut steps, Call::Shutdown, StepState::Done, at),
            EntryKind::Closed if kind.is_client() => {
                set(&mut steps, Call::Close, StepState::Done, at)
            }
            EntryKind::Stopped => set(&mut steps, Call::Close, StepState::Done, at),
            EntryKind::Note if log.bytes_of(e).starts_with(UDP_CONNECT_NOTE.as_bytes()) => {
                set(&mut steps, Call::Connect, StepState::Done, at)
            }
            EntryKind::Note
                if log
                    .bytes_of(e)
                    .starts_with(Call::JoinGroup.name().as_bytes()) =>
            {
                set(&mut steps, Call::JoinGroup, StepState::Done, at)
            }
            EntryKind::Note
                if log
                    .bytes_of(e)
                    .starts_with(Call::JoinGroupV6.name().as_bytes()) =>
            {
                set(&mut steps, Call::JoinGroupV6, StepState::Done, at)
            }
            EntryKind::Note if log.bytes_of(e).starts_with(PROXY_CONNECTED_NOTE.as_bytes()) => {
                let text = String::from_utf8_lossy(&log.bytes_of(e)[PROXY_CONNECTED_NOTE.len()..]);
                via = Some(text.split(" at ").next().unwrap_or_default().to_owned());
                tunnel = false;
            }
            EntryKind::Note if log.bytes_of(e).starts_with(TUNNEL_NOTE.as_bytes()) => tunnel = true,
            EntryKind::Note
                if log
                    .bytes_of(e)
                    .starts_with(format!("{RECONNECT_NOTE}attempt").as_bytes()) =>
            {
                attempts += 1;
            }
            EntryKind::Failed(k) => {
                let detail = String::from_utf8_lossy(log.bytes_of(e)).into_owned();
                let call = match failed_call(&detail, k) {
                    // An unconnected UDP socket's send or receive.
                    Call::SendRecv if !steps.iter().any(|s| s.call == Call::SendRecv) => {
                        Call::SendToRecvFrom
                    }
                    call => call,
                };
                if call == Call::Bind
                    || call == Call::Listen
                    || call == Call::Connect
                    || call == Call::GetAddrInfo
                {
                    // The socket was made before a bind or connect could fail.
                    if !matches!(call, Call::GetAddrInfo) {
                        set(&mut steps, Call::Socket, StepState::Done, at);
                    }
                }
                set(&mut steps, call, StepState::Failed(k, detail), at);
            }
            EntryKind::Reset => set(
                &mut steps,
                Call::SendRecv,
                StepState::Failed(ErrorKind::Reset, "the peer reset the connection".into()),
                at,
            ),
            _ => {}
        }
    }
    // close() releases a socket: a run that never made one (its name lookup
    // failed) closed nothing either.
    let made = steps
        .iter()
        .any(|s| s.call == Call::Socket && s.state == StepState::Done);
    let ended = !run.is_empty() && entries[run[run.len() - 1]].kind == EntryKind::Stopped;
    for s in &mut steps {
        if s.call == Call::Close && !made {
            s.state = StepState::Pending;
            s.at = None;
        }
        s.note = match s.call {
            Call::Close if !made && ended => "nothing to close: no socket was made".into(),
            Call::SendRecv | Call::SendToRecvFrom if sent + received > 0 => {
                format!("{sent} sent, {received} received")
            }
            Call::Accept if accepted > 0 => {
                format!("{accepted} peer{}", if accepted == 1 { "" } else { "s" })
            }
            Call::Connect if via.is_some() || attempts > 0 => {
                let mut note = match &via {
                    Some(p) if tunnel => format!("to proxy {p}, tunnel established"),
                    Some(p) => format!("to proxy {p}, tunnel asked for"),
                    None => String::new(),
                };
                if attempts > 0 {
                    if !note.is_empty() {
                        note.push_str("; ");
                    }
                    note.push_str(&format!("reconnect attempt {attempts}"));
                }
                note
            }
            _ => String::new(),
        };
    }
    steps
}

fn pending(call: Call) -> StepStatus {
    StepStatus {
        call,
        state: StepState::Pending,
        at: None,
        note: String::new(),
    }
}

/// The TCP states of the operating system (as in `/proc/net/tcp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
}

impl TcpState {
    pub fn from_code(code: u8) -> Option<TcpState> {
        Some(match code {
            0x01 => TcpState::Established,
            0x02 => TcpState::SynSent,
            0x03 => TcpState::SynRecv,
            0x04 => TcpState::FinWait1,
            0x05 => TcpState::FinWait2,
            0x06 => TcpState::TimeWait,
            0x07 => TcpState::Close,
            0x08 => TcpState::CloseWait,
            0x09 => TcpState::LastAck,
            0x0A => TcpState::Listen,
            0x0B => TcpState::Closing,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }

    pub fn meaning(self) -> &'static str {
        match self {
            TcpState::Established => "the connection is open both ways",
            TcpState::SynSent => "our SYN is out; waiting for the SYN-ACK",
            TcpState::SynRecv => "a SYN came in and was answered; waiting for the last ACK",
            TcpState::FinWait1 => "we sent our FIN; waiting for it to be acknowledged",
            TcpState::FinWait2 => "our FIN was acknowledged; waiting for the peer's FIN",
            TcpState::TimeWait => {
                "both FINs done; the system waits a while so late packets die out"
            }
            TcpState::Close => "closed",
            TcpState::CloseWait => "the peer sent its FIN; this side has not closed yet",
            TcpState::LastAck => "we sent our FIN after the peer's; waiting for its ACK",
            TcpState::Listen => "waiting for connections",
            TcpState::Closing => "both sides sent a FIN at once",
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn unix_sockets_name_their_family_and_type() {
        let names: Vec<&str> = calls(KindTag::UnixServer, false)
            .into_iter()
            .map(|c| c.name_for(KindTag::UnixServer))
            .collect();
        assert_eq!(
            names,
            [
                "socket(AF_UNIX, SOCK_STREAM)",
                "bind()",
                "listen()",
                "accept()",
                "send() / recv()",
                "shutdown()",
                "close()"
            ]
        );
        let client: Vec<&str> = calls(KindTag::UnixClient, false)
            .into_iter()
            .map(|c| c.name_for(KindTag::UnixClient))
            .collect();
        assert_eq!(client[..2], ["socket(AF_UNIX, SOCK_STREAM)", "connect()"]);
        assert_eq!(
            Call::Socket.name_for(KindTag::UnixDatagram),
            "socket(AF_UNIX, SOCK_DGRAM)"
        );
        assert_eq!(Call::Socket.name_for(KindTag::TcpClient), "socket()");
        // A Unix client's run has no Connecting row: Connected makes the socket too.
        let mut log = TrafficLog::default();
        let ep = log.endpoint_index("c");
        let at = chrono::DateTime::from_timestamp(1, 0).unwrap();
        log.push(
            at,
            ep,
            crate::model::NO_PEER,
            EntryKind::Connected,
            b"from (unnamed)",
        );
        log.push(at, ep, crate::model::NO_PEER, EntryKind::Stopped, b"");
        let steps = lifecycle(&log, "c", KindTag::UnixClient);
        assert!(
            steps
                .iter()
                .all(|s| matches!(s.call, Call::SendRecv | Call::Shutdown)
                    || s.state == StepState::Done),
            "{steps:?}"
        );
    }

    use super::*;
    use crate::model::log::NO_PEER;
    use chrono::DateTime;

    fn push(log: &mut TrafficLog, ep: u32, micros: i64, kind: EntryKind, data: &[u8]) {
        log.push(
            DateTime::from_timestamp_micros(micros).unwrap(),
            ep,
            NO_PEER,
            kind,
            data,
        );
    }

    fn states(steps: &[StepStatus]) -> Vec<(Call, bool, bool)> {
        steps
            .iter()
            .map(|s| {
                (
                    s.call,
                    s.state == StepState::Done,
                    matches!(s.state, StepState::Failed(..)),
                )
            })
            .collect()
    }

    #[test]
    fn a_refused_client_fails_at_connect() {
        let mut log = TrafficLog::new();
        let c = log.endpoint_index("client");
        push(&mut log, c, 1, EntryKind::Connecting, b"127.0.0.1:7000");
        push(
            &mut log,
            c,
            2,
            EntryKind::Failed(ErrorKind::Refused),
            b"connect to 127.0.0.1:7000: Connection refused",
        );
        push(&mut log, c, 3, EntryKind::Stopped, b"");
        let steps = lifecycle(&log, "client", KindTag::TcpClient);
        assert_eq!(
            states(&steps),
            [
                (Call::Socket, true, false),
                (Call::Connect, false, true),
                (Call::SendRecv, false, false),
                (Call::Shutdown, false, false),
                (Call::Close, true, false),
            ]
        );
        assert!(
            matches!(&steps[1].state, StepState::Failed(ErrorKind::Refused, d) if d.contains("127.0.0.1:7000"))
        );
    }

    #[test]
    fn a_server_goes_through_its_calls_and_only_the_last_run_counts() {
        let mut log = TrafficLog::new();
        let s = log.endpoint_index("server");
        push(
            &mut log,
            s,
            1,
            EntryKind::Failed(ErrorKind::AddressInUse),
            b"bind 127.0.0.1:7: Address in use",
        );
        push(&mut log, s, 2, EntryKind::Stopped, b"");
        push(&mut log, s, 3, EntryKind::Listening, b"127.0.0.1:7");
        push(&mut log, s, 4, EntryKind::Accepted, b"on 127.0.0.1:7");
        push(&mut log, s, 5, EntryKind::Received, b"hi");
        push(&mut log, s, 6, EntryKind::Sent, b"hi");
        let steps = lifecycle(&log, "server", KindTag::TcpServer);
        let done: Vec<bool> = steps.iter().map(|s| s.state == StepState::Done).collect();
        assert_eq!(done, [true, true, true, true, true, false, false]);
        assert_eq!(steps[4].note, "1 sent, 1 received");
        assert_eq!(steps[3].note, "1 peer");
        assert_eq!(steps[4].at, Some(6));

        // Before any run: all pending.
        let fresh = lifecycle(&log, "nobody", KindTag::Udp);
        assert!(fresh.iter().all(|s| s.state == StepState::Pending));
        assert_eq!(
            fresh.iter().map(|s| s.call).collect::<Vec<_>>(),
            calls(KindTag::Udp, false)
        );
    }

    #[test]
    fn a_joined_group_is_a_step_after_bind() {
        let mut log = TrafficLog::new();
        let u = log.endpoint_index("u");
        push(&mut log, u, 1, EntryKind::Bound, b"239.1.2.3:5000");
        push(
            &mut log,
            u,
            2,
            EntryKind::Note,
            b"setsockopt(IP_ADD_MEMBERSHIP) group 239.1.2.3 on interface 127.0.0.1: joined",
        );
        push(&mut log, u, 3, EntryKind::Received, b"x");
        let steps = lifecycle(&log, "u", KindTag::Udp);
        let calls: Vec<Call> = steps.iter().map(|s| s.call).collect();
        assert_eq!(
            calls,
            [
                Call::Socket,
                Call::Bind,
                Call::JoinGroup,
                Call::SendToRecvFrom,
                Call::Close
            ]
        );
        assert_eq!(steps[2].state, StepState::Done);
        assert_eq!(steps[2].at, Some(2));

        // A failed IPv6 join is drawn on its own step.
        let mut log = TrafficLog::new();
        let u = log.endpoint_index("u");
        push(&mut log, u, 1, EntryKind::Bound, b"[ff15::1]:5000");
        push(
            &mut log,
            u,
            2,
            EntryKind::Failed(ErrorKind::Other),
            b"setsockopt(IPV6_JOIN_GROUP) group ff15::1 on interface nope: join failed",
        );
        let steps = lifecycle(&log, "u", KindTag::Udp);
        let join = steps.iter().find(|s| s.call == Call::JoinGroupV6).unwrap();
        assert!(
            matches!(join.state, StepState::Failed(ErrorKind::Other, _)),
            "{steps:?}"
        );
    }

    #[test]
    fn a_connected_udp_socket_draws_connect_and_its_refusal() {
        let mut log = TrafficLog::new();
        let u = log.endpoint_index("u");
        push(&mut log, u, 1, EntryKind::Bound, b"127.0.0.1:5000");
        let note = format!("{UDP_CONNECT_NOTE}127.0.0.1:9: no packet goes out");
        push(&mut log, u, 2, EntryKind::Note, note.as_bytes());
        push(&mut log, u, 3, EntryKind::Sent, b"x");
        push(
            &mut log,
            u,
            4,
            EntryKind::Failed(ErrorKind::Refused),
            b"receive from 127.0.0.1:9: Connection refused (os error 111)",
        );
        let steps = lifecycle(&log, "u", KindTag::Udp);
        let calls: Vec<Call> = steps.iter().map(|s| s.call).collect();
        assert_eq!(
            calls,
            [
                Call::Socket,
                Call::Bind,
                Call::Connect,
                Call::SendRecv,
                Call::Close
            ]
        );
        assert_eq!(steps[2].state, StepState::Done);
        assert!(
            matches!(steps[3].state, StepState::Failed(ErrorKind::Refused, _)),
            "{steps:?}"
        );

        // Unconnected: sendto()/recvfrom(), and a failed send shows there.
        let mut log = TrafficLog::new();
        let u = log.endpoint_index("u");
        push(&mut log, u, 1, EntryKind::Bound, b"127.0.0.1:5000");
        push(
            &mut log,
            u,
            2,
            EntryKind::Failed(ErrorKind::PermissionDenied),
            b"send to 255.255.255.255:9: Permission denied (os error 13)",
        );
        let steps = lifecycle(&log, "u", KindTag::Udp);
        assert_eq!(steps[2].call, Call::SendToRecvFrom);
        assert!(matches!(steps[2].state, StepState::Failed(..)), "{steps:?}");
    }

    #[test]
    fn address_in_use_fails_at_bind() {
        let mut log = TrafficLog::new();
        let s = log.endpoint_index("server");
        push(
            &mut log,
            s,
            1,
            EntryKind::Failed(ErrorKind::AddressInUse),
            b"bind 127.0.0.1:7: Address in use",
        );
        push(&mut log, s, 2, EntryKind::Stopped, b"");
        let steps = lifecycle(&log, "server", KindTag::TcpServer);
        assert!(
            matches!(
                steps[1].state,
                StepState::Failed(ErrorKind::AddressInUse, _)
            ),
            "{steps:?}"
        );
        assert_eq!(steps[0].state, StepState::Done);
    }

    #[test]
    fn a_failed_name_lookup_makes_and_closes_nothing() {
        let mut log = TrafficLog::new();
        let c = log.endpoint_index("unknown host");
        push(
            &mut log,
            c,
            1,
            EntryKind::Resolving,
            b"no-such-host.invalid:80",
        );
        push(
            &mut log,
            c,
            2,
            EntryKind::Failed(ErrorKind::NotResolved),
            b"resolve no-such-host.invalid:80: failed to lookup address information",
        );
        push(&mut log, c, 3, EntryKind::Stopped, b"");
        for kind in [KindTag::TcpClient, KindTag::TlsClient, KindTag::Udp] {
            let steps = lifecycle(&log, "unknown host", kind);
            assert_eq!(steps[0].call, Call::GetAddrInfo);
            assert!(
                matches!(steps[0].state, StepState::Failed(ErrorKind::NotResolved, _)),
                "{steps:?}"
            );
            // Nothing after the lookup happened: no socket, so no close either.
            for s in &steps[1..] {
                assert_eq!(s.state, StepState::Pending, "{kind:?}: {s:?}");
            }
            let close = steps.last().unwrap();
            assert_eq!(close.call, Call::Close);
            assert_eq!(close.note, "nothing to close: no socket was made");
        }

        // A lookup that worked, then a refused connect: the socket was made and closed.
        let mut log = TrafficLog::new();
        let c = log.endpoint_index("c");
        push(&mut log, c, 1, EntryKind::Resolving, b"localhost:1");
        push(&mut log, c, 2, EntryKind::Connecting, b"127.0.0.1:1");
        push(
            &mut log,
            c,
            3,
            EntryKind::Failed(ErrorKind::Refused),
            b"connect to 127.0.0.1:1: Connection refused",
        );
        push(&mut log, c, 4, EntryKind::Stopped, b"");
        let steps = lifecycle(&log, "c", KindTag::TcpClient);
        assert_eq!(steps[1].state, StepState::Done);
        assert_eq!(steps.last().unwrap().state, StepState::Done);
        assert!(steps.last().unwrap().note.is_empty());
    }

    #[test]
    fn a_client_through_a_proxy_shows_the_tunnel_at_connect() {
        let mut log = TrafficLog::new();
        let c = log.endpoint_index("c");
        push(&mut log, c, 1, EntryKind::Connecting, b"127.0.0.1:1080");
        let note = format!(
            "{PROXY_CONNECTED_NOTE}socks5://127.0.0.1:1080 at 127.0.0.1:1080; asking for a tunnel to example.com:80"
        );
        push(&mut log, c, 2, EntryKind::Note, note.as_bytes());
        let steps = lifecycle(&log, "c", KindTag::TcpClient);
        assert_eq!(steps[1].call, Call::Connect);
        assert_eq!(steps[1].state, StepState::Active);
        assert_eq!(
            steps[1].note,
            "to proxy socks5://127.0.0.1:1080, tunnel asked for"
        );
        push(
            &mut log,
            c,
            3,
            EntryKind::Note,
            format!("{TUNNEL_NOTE}example.com:80 through the proxy (SOCKS5)").as_bytes(),
        );
        push(&mut log, c, 4, EntryKind::Connected, b"127.0.0.1:1080");
        let steps = lifecycle(&log, "c", KindTag::TcpClient);
        assert_eq!(steps[1].state, StepState::Done);
        assert_eq!(
            steps[1].note,
            "to proxy socks5://127.0.0.1:1080, tunnel established"
        );

        // The proxy's refusal fails the connect, and the attempts are counted.
        let mut log = TrafficLog::new();
        let c = log.endpoint_index("c");
        push(&mut log, c, 1, EntryKind::Connecting, b"127.0.0.1:1080");
        push(&mut log, c, 2, EntryKind::Note, note.as_bytes());
        push(
            &mut log,
            c,
            3,
            EntryKind::Failed(ErrorKind::Other),
            b"proxy refused: SOCKS5 reply 05 connection refused by the target (proxy socks5://127.0.0.1:1080)",
        );
        push(
            &mut log,
            c,
            4,
            EntryKind::Note,
            format!("{RECONNECT_NOTE}attempt 1 of 3 in 100 ms").as_bytes(),
        );
        let steps = lifecycle(&log, "c", KindTag::TcpClient);
        assert!(
            matches!(steps[1].state, StepState::Failed(..)),
            "{:?}",
            steps[1]
        );
        assert_eq!(
            steps[1].note,
            "to proxy socks5://127.0.0.1:1080, tunnel asked for; reconnect attempt 1"
        );
    }

    #[test]
    fn tcp_states_by_code() {
        assert_eq!(TcpState::from_code(0x06), Some(TcpState::TimeWait));
        assert_eq!(TcpState::from_code(0x0A).unwrap().name(), "LISTEN");
        assert_eq!(TcpState::from_code(0x42), None);
    }
}
