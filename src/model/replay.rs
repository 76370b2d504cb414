//! Replay, the pure part: turning a recorded log into scripts to play again,
//! and comparing what came back with what was recorded.
//!
//! An endpoint is replayed in the role it had: a TCP client (or a UDP socket
//! that spoke first) as a **client** that connects and sends the recorded
//! payloads; a TCP server (or a UDP socket that was spoken to first) as a
//! **mock server** that answers every peer as recorded. Either way, each send
//! waits until the bytes (TCP) or datagrams (UDP) received before it in the
//! recording have arrived, and then for its recorded gap divided by the speed.

use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

use super::display::escape_controls;
use super::endpoint::{EndpointKind, EndpointSpec};
use super::ignore::{IgnoreRule, Span, Suggestion, spans, suggest};
use super::log::{Direction, EntryKind, TrafficLog};
use super::payload::{to_hex, to_text_notation};
use super::{HostPort, Session};

/// How an endpoint is replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Connects (or sends first) and plays its recorded sends.
    Client,
    /// Listens (or waits for datagrams) and answers as recorded: a mock.
    Server,
}

/// One recorded step of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub dir: Direction,
    pub bytes: Vec<u8>,
    /// Time since the previous step (or the start of the conversation) in the recording.
    pub gap: Duration,
}

/// One recorded connection (TCP) or exchange with one remote address (UDP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    pub steps: Vec<Step>,
    /// The peer closed its side before we closed ours (so the replay waits for that).
    pub peer_closed: bool,
    /// The recorded peer address, for messages.
    pub remote: String,
    /// Payload bytes the recording did not keep (dropped beyond its log
    /// budget): the steps hold only their first bytes, so the conversation
    /// cannot be checked, and its sends are not the recorded ones.
    pub dropped: u64,
}

impl Conversation {
    pub fn sends(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.dir == Direction::Sent)
            .count()
    }

    pub fn received(&self) -> impl Iterator<Item = &[u8]> {
        self.steps
            .iter()
            .filter(|s| s.dir == Direction::Received)
            .map(|s| s.bytes.as_slice())
    }

    /// The recorded duration: the sum of its gaps (saturating: a crafted
    /// file's gaps must not overflow the sum).
    pub fn duration(&self) -> Duration {
        self.steps
            .iter()
            .fold(Duration::ZERO, |total, s| total.saturating_add(s.gap))
    }
}

/// What to replay for one endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointPlan {
    /// The endpoint's settings, with the address to use (the recorded one or the given target).
    pub spec: EndpointSpec,
    pub role: Role,
    pub conversations: Vec<Conversation>,
    /// What a check does not compare: the session's rules for this endpoint
    /// (and for every endpoint), then the command line's.
    pub ignore: Vec<IgnoreRule>,
}

impl EndpointPlan {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// A datagram endpoint (UDP, Unix datagram): each datagram is one message.
    pub fn is_udp(&self) -> bool {
        self.spec.kind.tag().is_datagram()
    }

    pub fn sends(&self) -> usize {
        self.conversations.iter().map(Conversation::sends).sum()
    }

    /// The recorded duration: client conversations one after the other, a
    /// server's at once (their peers came in parallel).
    pub fn duration(&self) -> Duration {
        match self.role {
            Role::Client => self.conversations.iter().fold(Duration::ZERO, |total, c| {
                total.saturating_add(c.duration())
            }),
            Role::Server => self
                .conversations
                .iter()
                .map(Conversation::duration)
                .max()
                .unwrap_or_default(),
        }
    }
}

/// Why a session cannot be replayed as asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the session has no endpoint named \"{0}\" (it has: {1})")]
    NoSuchEndpoint(String, String),
    #[error("nothing to replay: the session's log has no payloads{0}")]
    NothingRecorded(String),
    #[error("--target needs --endpoint when the session has several endpoints to replay ({0})")]
    AmbiguousTarget(String),
    #[error(
        "{0}: a relay's recording replays as one side: --as upstream (a mock of the upstream) or --as client (against a real upstream)"
    )]
    RelayNeedsAs(String),
    #[error("--as is for a relay's recording, and this session has no relay")]
    NoRelay,
    #[error(
        "the session has {0} endpoints to replay; a replay starts at most {MAX_REPLAY_ENDPOINTS} at once (choose one with --endpoint)"
    )]
    TooManyEndpoints(usize),
    #[error(
        "--target is a host and port, and {0} is a Unix-domain socket endpoint: it replays at its recorded path"
    )]
    TargetForUnix(String),
}

/// A relay's recording as a plan for one side.
///
/// The relay logged each client as a server logs a peer: `Received` is what
/// the client sent, `Sent` what the upstream answered. As the upstream, that
/// is a mock server's script as it stands; as the client, the directions
/// turn around, and "the peer closed first" means the upstream did.
fn plan_relay(
    session: &Session,
    spec: &EndpointSpec,
    target: Option<&HostPort>,
    rows: &[usize],
    relay_as: RelayAs,
) -> Option<EndpointPlan> {
    let EndpointKind::Relay {
        transport,
        listen,
        upstream,
        tls_server,
        tls_client,
        ..
    } = &spec.kind
    else {
        return None;
    };
    let udp = *transport == super::RelayTransport::Udp;
    let mut conversations: Vec<Conversation> = conversations_of(&session.log, rows, udp)
        .into_iter()
        .map(|(_, mut c, we_closed)| {
            if relay_as == RelayAs::Client {
                for step in &mut c.steps {
                    step.dir = match step.dir {
                        Direction::Sent => Direction::Received,
                        Direction::Received => Direction::Sent,
                    };
                }
                c.peer_closed = we_closed;
                // The first step's gap counted from the client's connect; the
                // client spoke first, so it stays.
            }
            c
        })
        .collect();
    if conversations.is_empty() {
        return None;
    }
    use super::RelayTransport as T;
    let (role, kind) = match (relay_as, transport) {
        (RelayAs::Upstream, T::Tcp) => (
            Role::Server,
            EndpointKind::TcpServer {
                listen: target.unwrap_or(listen).clone(),
            },
        ),
        (RelayAs::Upstream, T::Tls) => (
            Role::Server,
            EndpointKind::TlsServer {
                listen: target.unwrap_or(listen).clone(),
                tls: (**tls_server).clone(),
            },
        ),
        (RelayAs::Upstream, T::Udp) => (
            Role::Server,
            EndpointKind::Udp {
                bind: Some(target.unwrap_or(listen).clone()),
                remote: None,
            },
        ),
        (RelayAs::Client, T::Tcp) => (
            Role::Client,
            EndpointKind::TcpClient {
                remote: target.unwrap_or(upstream).clone(),
            },
        ),
        (RelayAs::Client, T::Tls) => (
            Role::Client,
            EndpointKind::TlsClient {
                remote: target.unwrap_or(upstream).clone(),
                tls: (**tls_client).clone(),
            },
        ),
        (RelayAs::Client, T::Udp) => {
            // A UDP client replays one exchange, as any UDP client does.
            conversations.truncate(1);
            (
                Role::Client,
                EndpointKind::Udp {
                    bind: None,
                    remote: Some(target.unwrap_or(upstream).clone()),
                },
            )
        }
    };
    let ignore = session
        .ignore
        .iter()
        .filter(|r| r.applies_to(&spec.name))
        .cloned()
        .collect();
    let mut spec = spec.clone();
    spec.kind = kind;
    Some(EndpointPlan {
        spec,
        role,
        conversations,
        ignore,
    })
}

/// The most endpoints one replay starts (each at once, each with its sockets
/// and tasks): a session file naming more is refused, not started.
pub const MAX_REPLAY_ENDPOINTS: usize = 64;

/// The longest a replay waits for one recorded gap, whatever the speed.
pub const MAX_SCALED_GAP: Duration = Duration::from_secs(24 * 3600);

/// `gap` at `speed` (2 halves it), converted without panicking: a speed of 0,
/// below 0, not a number or infinite means no wait at all; a speed so small
/// that the wait would not fit a `Duration` (`1e-300`) waits [`MAX_SCALED_GAP`].
pub fn scaled_gap(gap: Duration, speed: f64) -> Duration {
    if speed.is_nan() || speed <= 0.0 || speed.is_infinite() {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(gap.as_secs_f64() / speed)
        .map_or(MAX_SCALED_GAP, |d| d.min(MAX_SCALED_GAP))
}

fn micros_between(a: i64, b: i64) -> Duration {
    Duration::from_micros(b.saturating_sub(a).max(0) as u64)
}

/// The conversations of one endpoint in the log, grouped by peer.
/// The entry indices of each endpoint (by log endpoint index), in log order:
/// one pass over the log, so planning many endpoints stays linear.
fn entries_by_endpoint(log: &TrafficLog) -> std::collections::HashMap<u32, Vec<usize>> {
    let mut by: std::collections::HashMap<u32, Vec<usize>> = std::collections::HashMap::new();
    for (i, e) in log.entries().iter().enumerate() {
        by.entry(e.endpoint).or_default().push(i);
    }
    by
}

/// The entry indices of the endpoint named `endpoint`.
fn entries_of(log: &TrafficLog, endpoint: &str) -> Vec<usize> {
    let Some(index) = log.find_endpoint(endpoint) else {
        return Vec::new();
    };
    log.entries()
        .iter()
        .enumerate()
        .filter(|(_, e)| e.endpoint == index)
        .map(|(i, _)| i)
        .collect()
}

/// Each conversation with its peer number, and whether we closed our side
/// before the peer closed its own (a relay's upstream closed first).
fn conversations_of(log: &TrafficLog, rows: &[usize], udp: bool) -> Vec<(u32, Conversation, bool)> {
    struct Open {
        number: u32,
        conversation: Conversation,
        last: i64,
        we_closed: bool,
    }
    let mut done: Vec<(u32, Conversation, bool)> = Vec::new();
    // Open conversations in the order they began, found by peer number.
    let mut open: Vec<Option<Open>> = Vec::new();
    let mut slot_of: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    for &row in rows {
        let Some(e) = log.entry(row) else {
            continue;
        };
        let Some(peer) = log.peer_of(e) else {
            continue;
        };
        let number = peer.number;
        let starts = matches!(e.kind, EntryKind::Connected | EntryKind::Accepted);
        if starts && let Some(i) = slot_of.remove(&number) {
            // A new connection with a reused peer number (a client that reconnected).
            if let Some(o) = open[i].take() {
                done.push((o.number, o.conversation, o.we_closed));
            }
        }
        let slot = match slot_of.get(&number) {
            Some(&i) => i,
            None => {
                if !(starts || e.kind.is_traffic()) {
                    continue;
                }
                open.push(Some(Open {
                    number,
                    conversation: Conversation {
                        steps: Vec::new(),
                        peer_closed: false,
                        remote: peer.remote.clone(),
                        dropped: 0,
                    },
                    last: e.at_micros,
                    we_closed: false,
                }));
                slot_of.insert(number, open.len() - 1);
                open.len() - 1
            }
        };
        let Some(o) = open[slot].as_mut() else {
            continue;
        };
        match e.kind.direction() {
            Some(dir) => {
                o.conversation.steps.push(Step {
                    dir,
                    bytes: log.bytes_of(e).to_vec(),
                    gap: micros_between(o.last, e.at_micros),
                });
                o.last = e.at_micros;
                o.conversation.dropped += e.dropped() as u64;
            }
            // Whoever sent the first FIN closed first: the peer (PeerClosed) or we (HalfClosed).
            None if e.kind == EntryKind::PeerClosed && !o.we_closed => {
                o.conversation.peer_closed = true
            }
            None if e.kind == EntryKind::HalfClosed && !o.conversation.peer_closed => {
                o.we_closed = true
            }
            None if !udp && matches!(e.kind, EntryKind::Closed | EntryKind::Reset) => {
                slot_of.remove(&number);
                if let Some(o) = open[slot].take() {
                    done.push((o.number, o.conversation, o.we_closed));
                }
            }
            None => {}
        }
    }
    done.extend(
        open.into_iter()
            .flatten()
            .map(|o| (o.number, o.conversation, o.we_closed)),
    );
    done.retain(|(_, c, _)| !c.steps.is_empty());
    done
}

/// The replay plan of one endpoint, or `None` when it recorded no payloads.
pub fn plan_endpoint(
    session: &Session,
    spec: &EndpointSpec,
    target: Option<&HostPort>,
) -> Option<EndpointPlan> {
    plan_endpoint_rows(
        session,
        spec,
        target,
        &entries_of(&session.log, &spec.name),
        None,
    )
}

/// [`plan_endpoint`] with the endpoint's entry indices already found.
fn plan_endpoint_rows(
    session: &Session,
    spec: &EndpointSpec,
    target: Option<&HostPort>,
    rows: &[usize],
    relay_as: Option<RelayAs>,
) -> Option<EndpointPlan> {
    if let EndpointKind::Relay { .. } = spec.kind {
        return plan_relay(session, spec, target, rows, relay_as?);
    }
    let udp = spec.kind.tag().is_datagram();
    let mut conversations: Vec<(u32, Conversation)> = conversations_of(&session.log, rows, udp)
        .into_iter()
        .map(|(n, c, _)| (n, c))
        .collect();
    if conversations.is_empty() {
        return None;
    }
    let role = match spec.kind {
        EndpointKind::Relay { .. } => return None,
        EndpointKind::UnixClient { .. } => Role::Client,
        EndpointKind::UnixServer { .. } => Role::Server,
        EndpointKind::UnixDatagram {
            bind: None,
            remote: Some(_),
            ..
        } => Role::Client,
        EndpointKind::UnixDatagram { .. } => {
            if conversations[0].1.steps[0].dir == Direction::Sent {
                Role::Client
            } else {
                Role::Server
            }
        }
        EndpointKind::TcpClient { .. } | EndpointKind::TlsClient { .. } => Role::Client,
        EndpointKind::TcpServer { .. } | EndpointKind::TlsServer { .. } => Role::Server,
        // A socket with only a default remote is a client, whatever order the
        // log shows. (A bound socket may have spoken first to a typed address:
        // the log decides for it.)
        EndpointKind::Udp {
            bind: None,
            remote: Some(_),
        } => Role::Client,
        EndpointKind::Udp { .. } => {
            // Whoever spoke first: the first step of the earliest conversation.
            if conversations[0].1.steps[0].dir == Direction::Sent {
                Role::Client
            } else {
                Role::Server
            }
        }
    };
    let mut spec = spec.clone();
    match (&mut spec.kind, role) {
        (
            EndpointKind::TcpClient { .. }
            | EndpointKind::TcpServer { .. }
            | EndpointKind::TlsClient { .. }
            | EndpointKind::TlsServer { .. },
            _,
        ) => {
            if let Some(t) = target {
                spec.kind.retarget(t);
            }
        }
        (EndpointKind::Udp { remote, .. }, Role::Client) => {
            // A UDP client replays its exchange with one remote: the target, its
            // default remote, or the first address it talked to.
            let recorded: Option<HostPort> = conversations[0].1.remote.parse().ok();
            *remote = target.cloned().or(remote.clone()).or(recorded);
            conversations.truncate(1);
        }
        (EndpointKind::Udp { bind, .. }, Role::Server) => {
            if let Some(t) = target {
                *bind = Some(t.clone());
            }
        }
        (EndpointKind::UnixDatagram { remote, .. }, Role::Client) => {
            // As a UDP client: one exchange, with its default remote or the
            // first name it talked to.
            // An unnamed peer is shown "(unnamed)" (or "(unnamed #1)"): no path.
            let shown = conversations[0].1.remote.as_str();
            let recorded = Some(shown)
                .filter(|r| !r.starts_with("(unnamed"))
                .and_then(|r| crate::model::UnixPath::parse(r).ok());
            *remote = remote.clone().or(recorded);
            conversations.truncate(1);
        }
        // Named by paths: a host and port target does not apply.
        (
            EndpointKind::UnixClient { .. }
            | EndpointKind::UnixServer { .. }
            | EndpointKind::UnixDatagram { .. },
            _,
        ) => {}
        (EndpointKind::Relay { .. }, _) => return None,
    }
    let ignore = session
        .ignore
        .iter()
        .filter(|r| r.applies_to(&spec.name))
        .cloned()
        .collect();
    Some(EndpointPlan {
        spec,
        role,
        conversations: conversations.into_iter().map(|(_, c)| c).collect(),
        ignore,
    })
}

/// The plans for a session: every endpoint with recorded payloads, or only
/// `only`; mock servers first, so clients find them listening. Relays are
/// left out: they replay as one side or the other ([`plan_session_as`]).
pub fn plan_session(
    session: &Session,
    only: Option<&str>,
    target: Option<&HostPort>,
) -> Result<Vec<EndpointPlan>, PlanError> {
    plan_session_as(session, only, target, None)
}

/// How a relay's recording replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayAs {
    /// A mock of the upstream: listens where the relay listened and answers
    /// each client as the upstream did.
    Upstream,
    /// The client: connects to the upstream and sends what the clients sent,
    /// expecting what the upstream answered.
    Client,
}

/// [`plan_session`], with relays replayed `relay_as` (and then only relays).
/// Unix-domain endpoints replay at their recorded paths (a `--target`
/// host and port does not apply to them).
pub fn plan_session_as(
    session: &Session,
    only: Option<&str>,
    target: Option<&HostPort>,
    relay_as: Option<RelayAs>,
) -> Result<Vec<EndpointPlan>, PlanError> {
    plan_all(session, only, target, relay_as)
}

/// The plans for programs written from a session (the Python export): as
/// [`plan_session`].
pub fn plan_session_for_programs(
    session: &Session,
    only: Option<&str>,
) -> Result<Vec<EndpointPlan>, PlanError> {
    plan_all(session, only, None, None)
}

fn plan_all(
    session: &Session,
    only: Option<&str>,
    target: Option<&HostPort>,
    relay_as: Option<RelayAs>,
) -> Result<Vec<EndpointPlan>, PlanError> {
    let names = || {
        session
            .endpoints
            .iter()
            .map(|e| format!("\"{}\"", e.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen: Vec<&EndpointSpec> = match only {
        Some(name) => vec![
            session
                .endpoint(name)
                .ok_or_else(|| PlanError::NoSuchEndpoint(name.to_owned(), names()))?,
        ],
        None => session.endpoints.iter().collect(),
    };
    let is_relay = |spec: &EndpointSpec| matches!(spec.kind, EndpointKind::Relay { .. });
    let relays: Vec<String> = chosen
        .iter()
        .filter(|s| is_relay(s))
        .map(|e| format!("\"{}\"", escape_controls(&e.name)))
        .collect();
    let chosen: Vec<&EndpointSpec> = match relay_as {
        Some(_) if relays.is_empty() => return Err(PlanError::NoRelay),
        Some(_) => chosen.into_iter().filter(|s| is_relay(s)).collect(),
        None => chosen,
    };
    let by_endpoint = entries_by_endpoint(&session.log);
    let mut plans: Vec<EndpointPlan> = chosen
        .iter()
        .filter_map(|spec| {
            let rows = session
                .log
                .find_endpoint(&spec.name)
                .and_then(|i| by_endpoint.get(&i))
                .map_or(&[][..], Vec::as_slice);
            plan_endpoint_rows(session, spec, target, rows, relay_as)
        })
        .collect();
    if plans.is_empty() && relay_as.is_none() && !relays.is_empty() {
        return Err(PlanError::RelayNeedsAs(relays.join(", ")));
    }
    if plans.is_empty() {
        let which = only.map(|n| format!(" for \"{n}\"")).unwrap_or_default();
        return Err(PlanError::NothingRecorded(which));
    }
    if plans.len() > MAX_REPLAY_ENDPOINTS {
        return Err(PlanError::TooManyEndpoints(plans.len()));
    }
    if target.is_some()
        && let Some(unix) = plans.iter().find(|p| p.spec.kind.tag().is_unix())
    {
        return Err(PlanError::TargetForUnix(format!(
            "\"{}\"",
            escape_controls(unix.name())
        )));
    }
    if target.is_some() && plans.len() > 1 {
        let names = plans
            .iter()
            .map(|p| format!("\"{}\"", p.name()))
            .collect::<Vec<_>>();
        return Err(PlanError::AmbiguousTarget(names.join(", ")));
    }
    plans.sort_by_key(|p| p.role == Role::Client);
    Ok(plans)
}

/// How the replayed bytes differ from the recorded ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    /// The bytes differ at this offset of the stream (TCP) or datagram (UDP).
    Differs { offset: usize },
    /// Fewer bytes came than were recorded.
    Missing { offset: usize, missing: usize },
    /// More bytes came than were recorded.
    Extra { offset: usize, extra: usize },
    /// A recorded datagram never came.
    MissingDatagram,
    /// A datagram came that the recording does not have.
    ExtraDatagram,
    /// A recorded connection was never made.
    NeverConnected,
    /// The recording did not keep every byte of its payloads (dropped beyond
    /// its log budget), so what came back cannot be compared with it.
    NotCheckable { dropped: u64 },
}

/// The first difference of one conversation, with what was expected and what came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub endpoint: String,
    /// 1-based number of the recorded conversation.
    pub conversation: usize,
    /// For UDP: 1-based number of the datagram.
    pub datagram: Option<usize>,
    pub difference: Difference,
    /// The expected and received bytes around the difference.
    pub expected: Vec<u8>,
    pub received: Vec<u8>,
    /// Where the expected context starts (the offset of `expected[0]`).
    pub context_start: usize,
    /// Where the received context starts (the offset of `received[0]`); the
    /// same as `context_start` unless ignored spans of different lengths
    /// came before the difference.
    pub received_start: usize,
    /// The offset of the difference in the recording's bytes (the
    /// [`Difference`]'s offset is the received side's).
    pub expected_offset: usize,
    /// Why the bytes at the difference were not ignored, when an ignore
    /// rule matched on one side only.
    pub note: Option<String>,
    /// The ignore rules that applied before the difference: label, spans.
    pub ignored: Vec<(String, usize)>,
    /// What the window offers to ignore in future checks.
    pub suggestion: Option<Suggestion>,
    /// The log row (of the replay's log) holding the first differing byte, if any.
    pub row: Option<usize>,
}

/// The check of one recorded conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationCheck {
    pub endpoint: String,
    /// 1-based number of the recorded conversation.
    pub conversation: usize,
    /// A UDP exchange rather than a connection.
    pub udp: bool,
    /// The first difference, `None` when it matched.
    pub mismatch: Option<Mismatch>,
    /// The ignore rules that applied (before the difference, if any): label, spans.
    pub ignored: Vec<(String, usize)>,
}

impl ConversationCheck {
    /// `"client", connection 2` / `"u", exchange 1`.
    pub fn title(&self) -> String {
        format!(
            "\"{}\", {} {}",
            escape_controls(&self.endpoint),
            if self.udp { "exchange" } else { "connection" },
            self.conversation
        )
    }
}

/// `field `date` (2), bytes 4..8 (1)`.
pub fn ignored_text(ignored: &[(String, usize)]) -> String {
    ignored
        .iter()
        .map(|(label, n)| format!("{label} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bytes of context shown before and after a difference.
const CONTEXT: usize = 24;

/// Where the context before offset `at` starts: `CONTEXT` bytes back, moved to
/// the start of a UTF-8 character so the excerpt does not open mid-character.
fn context_start(bytes: &[u8], at: usize) -> usize {
    let mut start = at.saturating_sub(CONTEXT);
    for _ in 0..3 {
        match bytes.get(start) {
            Some(b) if start > 0 && b & 0xC0 == 0x80 => start -= 1,
            _ => break,
        }
    }
    start
}

/// Whether bytes read as text: at least 60 % of them are printable UTF-8 (or
/// `\r \n \t`), as in a text protocol with a few binary bytes. Binary data is
/// shown as hex only, where a text rendering of stray characters would mislead.
fn reads_as_text(bytes: &[u8]) -> bool {
    let readable: usize = bytes
        .utf8_chunks()
        .flat_map(|chunk| chunk.valid().chars())
        .filter(|c| !c.is_control() || matches!(c, '\r' | '\n' | '\t'))
        .map(char::len_utf8)
        .sum();
    readable * 5 >= bytes.len() * 3
}

/// The bytes in text notation, quoted, and the display column (from the
/// opening quote) at which byte `at` starts: counted in characters as a
/// terminal shows them, so the caret sits under the right one even after
/// multi-byte and double-width characters.
fn quoted_with_column(bytes: &[u8], at: usize) -> (String, Option<usize>) {
    use unicode_width::UnicodeWidthStr as _;
    let mut s = String::from("\"");
    let mut column = None;
    let mut offset = 0;
    let mut mark = |s: &String, offset: usize, len: usize| {
        if column.is_none() && at < offset + len {
            column = Some(s.width());
        }
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            mark(&s, offset, c.len_utf8());
            s.push_str(&to_text_notation(c.encode_utf8(&mut [0; 4]).as_bytes()));
            offset += c.len_utf8();
        }
        for b in chunk.invalid() {
            mark(&s, offset, 1);
            s.push_str(&to_text_notation(&[*b]));
            offset += 1;
        }
    }
    mark(&s, offset, usize::MAX - offset);
    s.push('"');
    (s, column)
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The name comes from a file: escaped, so the report keeps its lines.
        let name = escape_controls(&self.endpoint);
        let what = match &self.datagram {
            Some(n) => format!("\"{name}\", exchange {}, datagram {n}", self.conversation),
            None => format!("\"{name}\", connection {}", self.conversation),
        };
        let shifted = match self.difference {
            Difference::Differs { offset }
            | Difference::Missing { offset, .. }
            | Difference::Extra { offset, .. }
                if offset != self.expected_offset =>
            {
                format!(" (offset {} of the recording)", self.expected_offset)
            }
            _ => String::new(),
        };
        let summary = match &self.difference {
            Difference::Differs { offset } => format!("received bytes differ at offset {offset}"),
            Difference::Missing { offset, missing } => {
                format!(
                    "{missing} expected byte{} missing from offset {offset}",
                    plural(*missing)
                )
            }
            Difference::Extra { offset, extra } => {
                format!(
                    "{extra} unexpected byte{} from offset {offset}",
                    plural(*extra)
                )
            }
            Difference::MissingDatagram => "the datagram never came".into(),
            Difference::ExtraDatagram => "a datagram came that the recording does not have".into(),
            Difference::NeverConnected => "the recorded connection was never made".into(),
            Difference::NotCheckable { dropped } => format!(
                "not checkable: the recording dropped {dropped} byte{} of its payloads (beyond its log budget), so it has no whole payloads to compare with",
                plural(*dropped as usize)
            ),
        };
        writeln!(f, "{what}: {summary}{shifted}")?;
        if let Some(note) = &self.note {
            writeln!(f, "  why: {}", escape_controls(note))?;
        }
        if !self.ignored.is_empty() {
            writeln!(f, "  ignored before it: {}", ignored_text(&self.ignored))?;
        }
        if matches!(
            self.difference,
            Difference::NeverConnected | Difference::NotCheckable { .. }
        ) {
            return Ok(());
        }
        let caret = match self.difference {
            Difference::Differs { offset }
            | Difference::Missing { offset, .. }
            | Difference::Extra { offset, .. } => Some(offset.saturating_sub(self.received_start)),
            _ => None,
        };
        let elead = if self.context_start > 0 { "…" } else { "" };
        let lead = if self.received_start > 0 { "…" } else { "" };
        let at = caret.unwrap_or(usize::MAX);
        if reads_as_text(&self.expected) && reads_as_text(&self.received) {
            let (expected, _) = quoted_with_column(&self.expected, usize::MAX);
            let (received, column) = quoted_with_column(&self.received, at);
            let empty = |b: &[u8], text: String| {
                if b.is_empty() {
                    "(nothing)".into()
                } else {
                    text
                }
            };
            writeln!(f, "  expected: {elead}{}", empty(&self.expected, expected))?;
            writeln!(f, "  received: {lead}{}", empty(&self.received, received))?;
            if let (Some(column), Some(_)) = (column, caret) {
                // Under the first differing character of the received line.
                let indent = "  received: ".len() + lead.chars().count() + column;
                writeln!(f, "{}^", " ".repeat(indent))?;
            }
            writeln!(f, "  expected hex: {elead}{}", to_hex(&self.expected))?;
            write!(f, "  received hex: {lead}{}", to_hex(&self.received))
        } else {
            // Binary: hex only, the caret under the first differing byte.
            writeln!(
                f,
                "  expected hex: {elead}{}",
                hex_or_nothing(&self.expected)
            )?;
            write!(
                f,
                "  received hex: {lead}{}",
                hex_or_nothing(&self.received)
            )?;
            if caret.is_some() {
                let indent = "  received hex: ".len() + lead.chars().count() + 3 * at;
                write!(f, "\n{}^", " ".repeat(indent))?;
            }
            Ok(())
        }
    }
}

fn hex_or_nothing(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        "(nothing)".into()
    } else {
        to_hex(bytes)
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn context(bytes: &[u8], start: usize) -> Vec<u8> {
    bytes[start.min(bytes.len())..(start + 2 * CONTEXT).min(bytes.len())].to_vec()
}

/// Compares one byte stream (TCP) or one datagram (UDP) with its recording.
pub fn compare_bytes(expected: &[u8], received: &[u8]) -> Option<(Difference, usize)> {
    compare_masked(expected, received, &[])
        .0
        .map(|found| (found.difference, found.received_at))
}

/// A difference [`compare_masked`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Its offsets are the received side's.
    pub difference: Difference,
    pub expected_at: usize,
    pub received_at: usize,
    /// Why an ignored span did not cover it, when one side had one there.
    pub note: Option<String>,
}

/// Counts `n` applied spans of `label`.
fn count(applied: &mut Vec<(String, usize)>, label: &str, n: usize) {
    match applied.iter_mut().find(|(l, _)| l == label) {
        Some((_, total)) => *total += n,
        None => applied.push((label.to_owned(), n)),
    }
}

/// Compares `received` with `expected`, skipping the spans `rules` ignore
/// (see [`super::ignore`] for how spans pair up): the first difference, if
/// any, and the rules that applied before it, with how many spans each.
pub fn compare_masked(
    expected: &[u8],
    received: &[u8],
    rules: &[IgnoreRule],
) -> (Option<Found>, Vec<(String, usize)>) {
    let (he, hr) = if rules.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (spans(expected, rules), spans(received, rules))
    };
    let mut applied = Vec::new();
    let (mut i, mut j, mut a, mut b) = (0, 0, 0, 0);
    let labels = |s: &Span| s.labels.join(" or ");
    let found = |difference, i, j, note| {
        Some(Found {
            difference,
            expected_at: i,
            received_at: j,
            note,
        })
    };
    loop {
        // Literal bytes up to the next span (or the end) on each side.
        let e_end = he.get(a).map_or(expected.len(), |s: &Span| s.range.start);
        let r_end = hr.get(b).map_or(received.len(), |s: &Span| s.range.start);
        let n = (e_end - i).min(r_end - j);
        if let Some(k) = expected[i..i + n]
            .iter()
            .zip(&received[j..j + n])
            .position(|(x, y)| x != y)
        {
            let (i, j) = (i + k, j + k);
            return (
                found(Difference::Differs { offset: j }, i, j, None),
                applied,
            );
        }
        i += n;
        j += n;
        let span_e = he.get(a).filter(|s| s.range.start == i);
        let span_r = hr.get(b).filter(|s| s.range.start == j);
        let result = match (span_e, span_r) {
            (Some(se), Some(sr)) => match se.pairs_with(sr) {
                Some(label) => {
                    count(&mut applied, label, 1);
                    i = se.range.end;
                    j = sr.range.end;
                    a += 1;
                    b += 1;
                    continue;
                }
                None => found(
                    Difference::Differs { offset: j },
                    i,
                    j,
                    Some(format!(
                        "the recording has {} here, the received bytes {}",
                        labels(se),
                        labels(sr)
                    )),
                ),
            },
            (Some(se), None) if j == received.len() => found(
                Difference::Missing {
                    offset: j,
                    missing: expected.len() - i,
                },
                i,
                j,
                Some(format!("the recording has {} here", labels(se))),
            ),
            (Some(se), None) => found(
                Difference::Differs { offset: j },
                i,
                j,
                Some(format!(
                    "the recording has {} here; the received bytes do not match it",
                    labels(se)
                )),
            ),
            (None, Some(sr)) if i == expected.len() => found(
                Difference::Extra {
                    offset: j,
                    extra: received.len() - j,
                },
                i,
                j,
                Some(format!(
                    "the received bytes have {} here; the recording has ended",
                    labels(sr)
                )),
            ),
            (None, Some(sr)) => found(
                Difference::Differs { offset: j },
                i,
                j,
                Some(format!(
                    "the received bytes match {} here; the recording does not",
                    labels(sr)
                )),
            ),
            (None, None) if i == expected.len() && j == received.len() => None,
            (None, None) if i == expected.len() => found(
                Difference::Extra {
                    offset: j,
                    extra: received.len() - j,
                },
                i,
                j,
                None,
            ),
            (None, None) => found(
                Difference::Missing {
                    offset: j,
                    missing: expected.len() - i,
                },
                i,
                j,
                None,
            ),
        };
        return (result, applied);
    }
}

/// What one replayed conversation received: its payloads, each with its log row.
pub type Received<'a> = [(usize, &'a [u8])];

/// The mismatch of a difference `found` between `expected` and `received`.
fn mismatch_at(base: Mismatch, expected: &[u8], received: &[u8], found: Found) -> Mismatch {
    let start = context_start(expected, found.expected_at);
    let received_start = context_start(received, found.received_at);
    Mismatch {
        difference: found.difference,
        expected: context(expected, start),
        received: context(received, received_start),
        context_start: start,
        received_start,
        expected_offset: found.expected_at,
        note: found.note,
        suggestion: Some(suggest(
            expected,
            found.expected_at,
            received,
            found.received_at,
        )),
        ..base
    }
}

/// Compares what one conversation received with its recording: TCP as one
/// stream (how it was split into reads does not matter), UDP datagram by
/// datagram; the plan's ignore rules applied to both sides.
pub fn check_conversation(
    plan: &EndpointPlan,
    index: usize,
    received: Option<&Received<'_>>,
) -> Option<Mismatch> {
    check_one(plan, index, received).mismatch
}

/// [`check_conversation`], with the ignore rules that applied.
pub fn check_one(
    plan: &EndpointPlan,
    index: usize,
    received: Option<&Received<'_>>,
) -> ConversationCheck {
    let mut check = ConversationCheck {
        endpoint: plan.name().to_owned(),
        conversation: index + 1,
        udp: plan.is_udp(),
        mismatch: None,
        ignored: Vec::new(),
    };
    let conversation = &plan.conversations[index];
    let base = Mismatch {
        endpoint: plan.name().to_owned(),
        conversation: index + 1,
        datagram: None,
        difference: Difference::NeverConnected,
        expected: Vec::new(),
        received: Vec::new(),
        context_start: 0,
        received_start: 0,
        expected_offset: 0,
        note: None,
        ignored: Vec::new(),
        suggestion: None,
        row: None,
    };
    if conversation.dropped > 0 {
        check.mismatch = Some(Mismatch {
            difference: Difference::NotCheckable {
                dropped: conversation.dropped,
            },
            ..base
        });
        return check;
    }
    let Some(received) = received else {
        check.mismatch = Some(base);
        return check;
    };
    if plan.is_udp() {
        let expected: Vec<&[u8]> = conversation.received().collect();
        for i in 0..expected.len().max(received.len()) {
            let datagram = Some(i + 1);
            let mismatch = match (expected.get(i), received.get(i)) {
                (Some(e), Some((row, r))) => {
                    let (found, applied) = compare_masked(e, r, &plan.ignore);
                    for (label, n) in applied {
                        count(&mut check.ignored, &label, n);
                    }
                    found.map(|found| Mismatch {
                        datagram,
                        row: Some(*row),
                        ..mismatch_at(base.clone(), e, r, found)
                    })
                }
                (Some(e), None) => Some(Mismatch {
                    datagram,
                    difference: Difference::MissingDatagram,
                    expected: context(e, 0),
                    ..base.clone()
                }),
                (None, Some((row, r))) => Some(Mismatch {
                    datagram,
                    difference: Difference::ExtraDatagram,
                    received: context(r, 0),
                    row: Some(*row),
                    ..base.clone()
                }),
                (None, None) => None,
            };
            if let Some(m) = mismatch {
                check.mismatch = Some(Mismatch {
                    ignored: check.ignored.clone(),
                    ..m
                });
                return check;
            }
        }
        return check;
    }
    let expected: Vec<u8> = conversation.received().flatten().copied().collect();
    let stream: Vec<u8> = received
        .iter()
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    let (found, applied) = compare_masked(&expected, &stream, &plan.ignore);
    check.ignored = applied;
    let Some(found) = found else {
        return check;
    };
    let at = found.received_at;
    // The row whose bytes hold the offset (or the last row, for missing bytes).
    let mut offset = 0;
    let mut row = received.last().map(|(r, _)| *r);
    for (r, bytes) in received {
        if at < offset + bytes.len() {
            row = Some(*r);
            break;
        }
        offset += bytes.len();
    }
    check.mismatch = Some(Mismatch {
        row,
        ignored: check.ignored.clone(),
        ..mismatch_at(base, &expected, &stream, found)
    });
    check
}

/// A whole report: one paragraph per mismatch.
pub fn report(mismatches: &[Mismatch]) -> String {
    let mut s = String::new();
    for m in mismatches {
        let _ = writeln!(s, "{m}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_gaps_never_panic_and_stay_bounded() {
        let second = Duration::from_secs(1);
        assert_eq!(scaled_gap(second, 2.0), Duration::from_millis(500));
        assert_eq!(scaled_gap(second, 1.0), second);
        // Tiny speeds once panicked in Duration::div_f64 ("cannot convert float
        // seconds to Duration"); they wait the longest allowed instead.
        assert_eq!(scaled_gap(second, 1e-300), MAX_SCALED_GAP);
        assert_eq!(scaled_gap(second, f64::MIN_POSITIVE), MAX_SCALED_GAP);
        assert_eq!(scaled_gap(Duration::MAX, 1.0), MAX_SCALED_GAP);
        assert_eq!(scaled_gap(Duration::MAX, 1e-9), MAX_SCALED_GAP);
        for speed in [0.0, -1.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(scaled_gap(second, speed), Duration::ZERO, "{speed}");
        }
        assert_eq!(scaled_gap(Duration::ZERO, 1e-300), Duration::ZERO);
    }

    #[test]
    fn durations_of_crafted_gaps_saturate() {
        let step = Step {
            dir: Direction::Sent,
            bytes: vec![],
            gap: Duration::MAX,
        };
        let conversation = Conversation {
            steps: vec![step.clone(), step],
            peer_closed: false,
            remote: String::new(),
            dropped: 0,
        };
        assert_eq!(conversation.duration(), Duration::MAX);
    }
    use crate::model::log::NO_PEER;
    use chrono::DateTime;

    fn at(ms: i64) -> chrono::DateTime<chrono::Utc> {
        DateTime::from_timestamp_micros(ms * 1000).unwrap()
    }

    /// A client that connected twice, and the server that served it.
    fn recorded() -> Session {
        let mut s = Session::default();
        s.endpoints.push(EndpointSpec::new(
            "client",
            EndpointKind::TcpClient {
                remote: "127.0.0.1:7".parse().unwrap(),
            },
        ));
        s.endpoints.push(EndpointSpec::new(
            "server",
            EndpointKind::TcpServer {
                listen: "127.0.0.1:7".parse().unwrap(),
            },
        ));
        let log = &mut s.log;
        let c = log.endpoint_index("client");
        let v = log.endpoint_index("server");
        let p0 = log.peer_index(c, 0, "127.0.0.1:7");
        let p1 = log.peer_index(v, 1, "127.0.0.1:5001");
        let p2 = log.peer_index(v, 2, "127.0.0.1:5002");
        log.push(at(0), c, p0, EntryKind::Connected, b"");
        log.push(at(0), v, p1, EntryKind::Accepted, b"");
        log.push(at(100), c, p0, EntryKind::Sent, b"GET");
        log.push(at(101), v, p1, EntryKind::Received, b"GET");
        log.push(at(150), v, p1, EntryKind::Sent, b"OK 1");
        log.push(at(151), c, p0, EntryKind::Received, b"OK ");
        log.push(at(152), c, p0, EntryKind::Received, b"1");
        log.push(at(300), c, p0, EntryKind::PeerClosed, b"");
        log.push(at(300), c, p0, EntryKind::Closed, b"");
        log.push(at(300), v, p1, EntryKind::Closed, b"");
        log.push(at(1000), c, p0, EntryKind::Connected, b"");
        log.push(at(1000), v, p2, EntryKind::Accepted, b"");
        log.push(at(1500), c, p0, EntryKind::Sent, b"BYE");
        log.push(at(1501), v, p2, EntryKind::Received, b"BYE");
        log.push(at(1600), c, NO_PEER, EntryKind::Stopped, b"");
        s
    }

    /// Unix endpoints plan in the roles they had, at their recorded paths
    /// (once refused as "not supported yet"); a host and port target is refused.
    #[test]
    fn unix_endpoints_plan_at_their_paths_in_the_roles_they_had() {
        let path = |p: &str| crate::model::UnixPath::parse(p).unwrap();
        let mut s = Session::default();
        s.endpoints.push(EndpointSpec::new(
            "srv",
            EndpointKind::UnixServer {
                path: path("/run/app.sock"),
                unlink: false,
            },
        ));
        s.endpoints.push(EndpointSpec::new(
            "cli",
            EndpointKind::UnixClient {
                path: path("/run/app.sock"),
            },
        ));
        s.endpoints.push(EndpointSpec::new(
            "d",
            EndpointKind::UnixDatagram {
                bind: Some(path("/run/me.sock")),
                remote: None,
                unlink: false,
            },
        ));
        let log = &mut s.log;
        let (v, c, d) = (
            log.endpoint_index("srv"),
            log.endpoint_index("cli"),
            log.endpoint_index("d"),
        );
        let pv = log.peer_index(v, 1, "(unnamed #1)");
        let pc = log.peer_index(c, 0, "/run/app.sock");
        let pd = log.peer_index(d, 1, "/run/peer.sock");
        log.push(at(0), c, pc, EntryKind::Connected, b"");
        log.push(at(0), v, pv, EntryKind::Accepted, b"");
        log.push(at(1), c, pc, EntryKind::Sent, b"ping");
        log.push(at(2), v, pv, EntryKind::Received, b"ping");
        log.push(at(3), v, pv, EntryKind::Sent, b"pong");
        log.push(at(4), c, pc, EntryKind::Received, b"pong");
        log.push(at(5), d, pd, EntryKind::Sent, b"hi");
        log.push(at(6), d, pd, EntryKind::Received, b"back");
        let plans = plan_session(&s, None, None).unwrap();
        let roles: Vec<(&str, Role)> = plans.iter().map(|p| (p.name(), p.role)).collect();
        assert_eq!(
            roles,
            [
                ("srv", Role::Server),
                ("cli", Role::Client),
                ("d", Role::Client)
            ]
        );
        // The datagram client sends to the name it talked to.
        let EndpointKind::UnixDatagram { remote, .. } = &plans[2].spec.kind else {
            panic!()
        };
        assert_eq!(remote.as_ref(), Some(&path("/run/peer.sock")));
        assert_eq!(plans[0].spec.kind, s.endpoints[0].kind);
        // A peer recorded without a name gives no path to send to.
        let mut unnamed = s.clone();
        unnamed.log = TrafficLog::default();
        let d = unnamed.log.endpoint_index("d");
        let pd = unnamed.log.peer_index(d, 1, "(unnamed)");
        unnamed.log.push(at(5), d, pd, EntryKind::Sent, b"hi");
        let plans = plan_session(&unnamed, Some("d"), None).unwrap();
        let EndpointKind::UnixDatagram { remote, .. } = &plans[0].spec.kind else {
            panic!()
        };
        assert_eq!(remote, &None);
        let target: HostPort = "127.0.0.1:9".parse().unwrap();
        let e = plan_session(&s, Some("cli"), Some(&target)).unwrap_err();
        assert_eq!(e, PlanError::TargetForUnix("\"cli\"".into()));
        assert!(
            e.to_string().contains("replays at its recorded path"),
            "{e}"
        );
    }

    /// A hostile file with 100,000 client endpoints is refused with a clear
    /// error, not started at once.
    #[test]
    fn a_replay_starts_a_bounded_number_of_endpoints() {
        let mut s = Session::default();
        for i in 0..100_000u32 {
            let name = format!("c{i}");
            s.endpoints.push(EndpointSpec::new(
                &name,
                EndpointKind::TcpClient {
                    remote: "127.0.0.1:7".parse().unwrap(),
                },
            ));
            let ep = s.log.endpoint_index(&name);
            let p = s.log.peer_index(ep, 0, "127.0.0.1:7");
            s.log.push(at(0), ep, p, EntryKind::Sent, b"x");
        }
        let err = plan_session(&s, None, None).unwrap_err();
        assert_eq!(err, PlanError::TooManyEndpoints(100_000));
        assert!(err.to_string().contains("at most 64"), "{err}");
        // One of them, chosen, replays.
        assert_eq!(plan_session(&s, Some("c7"), None).unwrap().len(), 1);
    }

    #[test]
    fn conversations_follow_connections() {
        let s = recorded();
        let plans = plan_session(&s, None, None).unwrap();
        assert_eq!(plans.len(), 2);
        // The mock server comes first.
        assert_eq!(plans[0].name(), "server");
        assert_eq!(plans[0].role, Role::Server);
        let client = &plans[1];
        assert_eq!(client.role, Role::Client);
        assert_eq!(client.conversations.len(), 2);
        let first = &client.conversations[0];
        assert_eq!(
            first.steps,
            vec![
                Step {
                    dir: Direction::Sent,
                    bytes: b"GET".to_vec(),
                    gap: Duration::from_millis(100)
                },
                Step {
                    dir: Direction::Received,
                    bytes: b"OK ".to_vec(),
                    gap: Duration::from_millis(51)
                },
                Step {
                    dir: Direction::Received,
                    bytes: b"1".to_vec(),
                    gap: Duration::from_millis(1)
                },
            ]
        );
        assert!(first.peer_closed);
        assert_eq!(
            client.conversations[1].steps[0].gap,
            Duration::from_millis(500)
        );
        assert_eq!(client.sends(), 2);
        assert_eq!(client.duration(), Duration::from_millis(652));
        let server = &plans[0];
        assert_eq!(server.conversations.len(), 2);
        assert_eq!(server.conversations[0].steps[1].bytes, b"OK 1");
        assert_eq!(server.conversations[1].remote, "127.0.0.1:5002");
    }

    /// A TLS relay's recording: one client, the upstream closing first.
    fn relayed() -> Session {
        let mut s = Session::default();
        s.endpoints.push(EndpointSpec::new(
            "relay",
            EndpointKind::Relay {
                transport: crate::model::RelayTransport::Tls,
                listen: "127.0.0.1:8443".parse().unwrap(),
                upstream: "device:443".parse().unwrap(),
                tls_server: Default::default(),
                tls_client: Box::new(crate::model::TlsClientSettings {
                    insecure: true,
                    ..Default::default()
                }),
                impair: Default::default(),
            },
        ));
        let log = &mut s.log;
        let r = log.endpoint_index("relay");
        let p = log.peer_index(r, 1, "127.0.0.1:5001");
        log.push(at(0), r, p, EntryKind::Accepted, b"");
        log.push(at(0), r, p, EntryKind::Note, b"upstream: connected");
        log.push(at(10), r, p, EntryKind::Received, b"GET");
        log.push(at(20), r, p, EntryKind::Sent, b"OK");
        log.push(at(30), r, p, EntryKind::HalfClosed, b"");
        log.push(at(31), r, p, EntryKind::PeerClosed, b"");
        log.push(at(31), r, p, EntryKind::Closed, b"");
        s
    }

    #[test]
    fn a_relay_replays_as_either_side_and_only_when_told_which() {
        let s = relayed();
        let e = plan_session(&s, None, None).unwrap_err();
        assert!(matches!(e, PlanError::RelayNeedsAs(_)), "{e}");
        assert!(e.to_string().contains("--as upstream"), "{e}");
        assert_eq!(
            plan_session_as(&recorded(), None, None, Some(RelayAs::Client)).unwrap_err(),
            PlanError::NoRelay
        );

        let upstream = plan_session_as(&s, None, None, Some(RelayAs::Upstream)).unwrap();
        let [mock] = upstream.as_slice() else {
            panic!("{upstream:?}")
        };
        assert_eq!(mock.role, Role::Server);
        assert!(matches!(
            &mock.spec.kind,
            EndpointKind::TlsServer { listen, .. } if listen.to_string() == "127.0.0.1:8443"
        ));
        let dirs: Vec<Direction> = mock.conversations[0].steps.iter().map(|s| s.dir).collect();
        assert_eq!(dirs, [Direction::Received, Direction::Sent]);
        assert!(
            !mock.conversations[0].peer_closed,
            "the upstream closed first"
        );

        let target: HostPort = "127.0.0.1:9443".parse().unwrap();
        let client = plan_session_as(&s, None, Some(&target), Some(RelayAs::Client)).unwrap();
        let [client] = client.as_slice() else {
            panic!("{client:?}")
        };
        assert_eq!(client.role, Role::Client);
        let EndpointKind::TlsClient { remote, tls } = &client.spec.kind else {
            panic!("{:?}", client.spec.kind)
        };
        assert_eq!(remote, &target);
        assert!(tls.insecure, "the relay's upstream TLS settings");
        let steps = &client.conversations[0].steps;
        assert_eq!(
            (steps[0].dir, steps[0].bytes.as_slice()),
            (Direction::Sent, &b"GET"[..])
        );
        assert_eq!(
            (steps[1].dir, steps[1].bytes.as_slice()),
            (Direction::Received, &b"OK"[..])
        );
        assert!(
            client.conversations[0].peer_closed,
            "as the client, the peer (the upstream) closed first"
        );
    }

    #[test]
    fn targets_and_choices() {
        let s = recorded();
        let t: HostPort = "10.0.0.1:80".parse().unwrap();
        let plans = plan_session(&s, Some("client"), Some(&t)).unwrap();
        assert_eq!(plans[0].spec.kind.remote(), Some(&t));
        assert_eq!(
            plan_session(&s, None, Some(&t)).unwrap_err(),
            PlanError::AmbiguousTarget("\"client\", \"server\"".into())
        );
        assert_eq!(
            plan_session(&s, Some("nobody"), None)
                .unwrap_err()
                .to_string(),
            "the session has no endpoint named \"nobody\" (it has: \"client\", \"server\")"
        );
        assert!(matches!(
            plan_session(&Session::default(), None, None),
            Err(PlanError::NothingRecorded(_))
        ));
    }

    #[test]
    fn tcp_is_compared_as_a_stream() {
        let s = recorded();
        let plans = plan_session(&s, Some("client"), None).unwrap();
        let plan = &plans[0];
        // Split differently into reads: still a match.
        assert_eq!(
            check_conversation(plan, 0, Some(&[(7, b"O"), (8, b"K 1")])),
            None
        );
        let m = check_conversation(plan, 0, Some(&[(7, b"OK "), (9, b"2")])).unwrap();
        assert_eq!(m.difference, Difference::Differs { offset: 3 });
        assert_eq!(m.row, Some(9));
        let text = m.to_string();
        assert!(
            text.starts_with("\"client\", connection 1: received bytes differ at offset 3\n"),
            "{text}"
        );
        assert!(
            text.contains("  expected: \"OK 1\"\n  received: \"OK 2\"\n                ^\n"),
            "{text}"
        );
        assert!(text.contains("expected hex: 4f 4b 20 31"), "{text}");
        let m = check_conversation(plan, 0, Some(&[(7, b"OK")])).unwrap();
        assert_eq!(
            m.difference,
            Difference::Missing {
                offset: 2,
                missing: 2
            }
        );
        let m = check_conversation(plan, 0, Some(&[(7, b"OK 1!!")])).unwrap();
        assert_eq!(
            m.difference,
            Difference::Extra {
                offset: 4,
                extra: 2
            }
        );
        let m = check_conversation(plan, 1, None).unwrap();
        assert_eq!(
            m.to_string().trim(),
            "\"client\", connection 2: the recorded connection was never made"
        );
    }

    #[test]
    fn a_recording_with_dropped_bytes_is_not_checkable() {
        let mut s = recorded();
        let c = s.log.find_endpoint("client").unwrap();
        // A third connection whose answer was recorded beyond a drop budget.
        s.log.push(at(2000), c, 0, EntryKind::Connected, b"");
        s.log.push(at(2001), c, 0, EntryKind::Sent, b"BIG?");
        s.log
            .push_kept(at(2002), c, 0, EntryKind::Received, b"first bytes", 5000);
        let plans = plan_session(&s, Some("client"), None).unwrap();
        let plan = &plans[0];
        assert_eq!(plan.conversations[2].dropped, 5000);
        assert_eq!(plan.conversations[0].dropped, 0);
        // Even the very bytes the recording kept are not a match.
        let m = check_conversation(plan, 2, Some(&[(9, b"first bytes")])).unwrap();
        assert_eq!(m.difference, Difference::NotCheckable { dropped: 5000 });
        assert_eq!(
            m.to_string().trim_end(),
            "\"client\", connection 3: not checkable: the recording dropped 5000 bytes of its payloads (beyond its log budget), so it has no whole payloads to compare with"
        );
        assert_eq!(check_conversation(plan, 0, Some(&[(7, b"OK 1")])), None);
    }

    #[test]
    fn udp_is_compared_datagram_by_datagram() {
        let mut s = Session::default();
        s.endpoints.push(EndpointSpec::new(
            "u",
            EndpointKind::Udp {
                bind: None,
                remote: None,
            },
        ));
        let ep = s.log.endpoint_index("u");
        let p = s.log.peer_index(ep, 1, "127.0.0.1:53");
        s.log.push(at(0), ep, p, EntryKind::Sent, b"q1");
        s.log.push(at(5), ep, p, EntryKind::Received, b"a1");
        s.log.push(at(9), ep, p, EntryKind::Received, b"a2");
        let plans = plan_session(&s, None, None).unwrap();
        let plan = &plans[0];
        assert_eq!(plan.role, Role::Client);
        assert_eq!(plan.spec.kind.remote().unwrap().to_string(), "127.0.0.1:53");
        // Merged datagrams are not the same datagrams.
        let m = check_conversation(plan, 0, Some(&[(3, b"a1a2")])).unwrap();
        assert_eq!(m.datagram, Some(1));
        assert_eq!(
            m.difference,
            Difference::Extra {
                offset: 2,
                extra: 2
            }
        );
        let m = check_conversation(plan, 0, Some(&[(3, b"a1")])).unwrap();
        assert_eq!(
            (m.datagram, m.difference),
            (Some(2), Difference::MissingDatagram)
        );
        assert_eq!(
            check_conversation(plan, 0, Some(&[(3, b"a1"), (4, b"a2")])),
            None
        );
        let m = check_conversation(plan, 0, Some(&[(3, b"a1"), (4, b"a2"), (5, b"a3")])).unwrap();
        assert_eq!(
            (m.datagram, m.difference, m.row),
            (Some(3), Difference::ExtraDatagram, Some(5))
        );
    }

    #[test]
    fn long_streams_show_context_not_a_dump() {
        let expected: Vec<u8> = (0..200).map(|i| b'a' + (i % 26) as u8).collect();
        let mut received = expected.clone();
        received[150] = b'#';
        let (difference, at) = compare_bytes(&expected, &received).unwrap();
        assert_eq!(difference, Difference::Differs { offset: 150 });
        let start = at - CONTEXT;
        assert_eq!(context(&received, start).len(), 2 * CONTEXT);
    }

    /// A client whose recorded answer carries a date and a counter.
    fn stamped(answer: &[u8], ignore: Vec<IgnoreRule>) -> EndpointPlan {
        let mut s = Session::default();
        s.endpoints.push(EndpointSpec::new(
            "device client",
            EndpointKind::TcpClient {
                remote: "127.0.0.1:7".parse().unwrap(),
            },
        ));
        s.ignore = ignore;
        let c = s.log.endpoint_index("device client");
        let p = s.log.peer_index(c, 0, "127.0.0.1:7");
        s.log.push(at(0), c, p, EntryKind::Connected, b"");
        s.log.push(at(1), c, p, EntryKind::Sent, b"GET");
        s.log.push(at(2), c, p, EntryKind::Received, answer);
        plan_session(&s, None, None).unwrap().remove(0)
    }

    const RECORDED: &[u8] =
        b"HTTP/1.0 200 OK\r\nDate: Fri, 27 Nov 2026 18:29:06 GMT\r\nX-Count: 7\r\n\r\nhello";
    const LATER: &[u8] =
        b"HTTP/1.0 200 OK\r\nDate: Sat, 28 Nov 2026 09:00:00 GMT\r\nX-Count: 1234\r\n\r\nhello";

    #[test]
    fn ignored_spans_of_different_lengths_pair_up() {
        let rules = || {
            vec![
                IgnoreRule::regex("Date: [^\\r\\n]*").unwrap(),
                IgnoreRule::regex("X-Count: (?<count>[0-9]+)").unwrap(),
            ]
        };
        // Without rules: the date differs.
        let plan = stamped(RECORDED, Vec::new());
        let m = check_conversation(&plan, 0, Some(&[(5, LATER)])).unwrap();
        assert_eq!(m.difference, Difference::Differs { offset: 23 });
        // With them: a match, and the ignores that applied are said.
        let plan = stamped(RECORDED, rules());
        let check = check_one(&plan, 0, Some(&[(5, &LATER[..30]), (6, &LATER[30..])]));
        assert_eq!(check.mismatch, None);
        assert_eq!(
            check.ignored,
            vec![
                ("regex \"Date: [^\\r\\n]*\"".to_owned(), 1),
                ("field `count`".to_owned(), 1)
            ]
        );
        // A difference after a longer counter: offsets on each side, and the
        // report says the ignores that applied before it.
        let mut changed = LATER.to_vec();
        *changed.last_mut().unwrap() = b'!';
        let m = check_conversation(&plan, 0, Some(&[(5, &changed)])).unwrap();
        assert_eq!(
            m.difference,
            Difference::Differs {
                offset: changed.len() - 1
            }
        );
        assert_eq!(m.expected_offset, RECORDED.len() - 1);
        let text = m.to_string();
        assert!(
            text.starts_with(&format!(
                "\"device client\", connection 1: received bytes differ at offset {} (offset {} of the recording)\n",
                changed.len() - 1,
                RECORDED.len() - 1
            )),
            "{text}"
        );
        assert!(
            text.contains(
                "  ignored before it: regex \"Date: [^\\r\\n]*\" (1), field `count` (1)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  expected: …\" GMT\\r\\nX-Count: 7\\r\\n\\r\\nhello\""),
            "{text}"
        );
        assert!(
            text.contains("  received: …\"T\\r\\nX-Count: 1234\\r\\n\\r\\nhell!\""),
            "{text}"
        );
        // The caret stands under the `!`.
        let caret = text.lines().find(|l| l.trim() == "^").unwrap();
        let received = text
            .lines()
            .find(|l| l.starts_with("  received: "))
            .unwrap();
        assert_eq!(received.chars().nth(caret.len() - 1), Some('!'), "{text}");
    }

    #[test]
    fn a_field_on_one_side_only_is_a_difference_that_says_so() {
        let plan = stamped(
            RECORDED,
            vec![IgnoreRule::regex("X-Count: (?<count>[0-9]+)").unwrap()],
        );
        let missing =
            b"HTTP/1.0 200 OK\r\nDate: Fri, 27 Nov 2026 18:29:06 GMT\r\nX-Count: none\r\n\r\nhello";
        let m = check_conversation(&plan, 0, Some(&[(5, missing)])).unwrap();
        assert_eq!(m.difference, Difference::Differs { offset: 63 });
        assert_eq!(
            m.note.as_deref(),
            Some("the recording has field `count` here; the received bytes do not match it")
        );
        assert!(
            m.to_string()
                .contains("\n  why: the recording has field `count` here")
        );
        // The received stream ends where the recording has a field: missing bytes.
        let m = check_conversation(&plan, 0, Some(&[(5, &missing[..63])])).unwrap();
        assert_eq!(
            m.difference,
            Difference::Missing {
                offset: 63,
                missing: RECORDED.len() - 63
            }
        );
    }

    #[test]
    fn byte_ranges_and_named_ranges_mask_datagrams() {
        let mut s = Session::default();
        s.endpoints.push(EndpointSpec::new(
            "u",
            EndpointKind::Udp {
                bind: None,
                remote: None,
            },
        ));
        let ep = s.log.endpoint_index("u");
        let p = s.log.peer_index(ep, 1, "127.0.0.1:53");
        s.log.push(at(0), ep, p, EntryKind::Sent, b"q");
        s.log
            .push(at(5), ep, p, EntryKind::Received, &[1, 2, 0, 0, 0, 7, 9]);
        s.log
            .push(at(6), ep, p, EntryKind::Received, &[1, 2, 0, 0, 0, 8, 9]);
        let got: &Received<'_> = &[
            (3, &[1, 2, 0xaa, 0xbb, 0xcc, 0xdd, 9]),
            (4, &[1, 2, 0, 1, 0, 0, 9]),
        ];
        let plan = plan_session(&s, None, None).unwrap().remove(0);
        let m = check_conversation(&plan, 0, Some(got)).unwrap();
        assert_eq!(
            (m.datagram, m.difference),
            (Some(1), Difference::Differs { offset: 2 })
        );
        s.ignore = vec![IgnoreRule::bytes("seq=2..6").unwrap()];
        let plan = plan_session(&s, None, None).unwrap().remove(0);
        let check = check_one(&plan, 0, Some(got));
        assert_eq!(check.mismatch, None);
        assert_eq!(check.ignored, vec![("field `seq`".to_owned(), 2)]);
        // The last byte is still compared.
        let m = check_conversation(
            &plan,
            0,
            Some(&[(3, &[1, 2, 0, 0, 0, 0, 9]), (4, &[1, 2, 0, 0, 0, 0, 8])]),
        )
        .unwrap();
        assert_eq!(
            (m.datagram, m.difference.clone()),
            (Some(2), Difference::Differs { offset: 6 })
        );
        assert!(
            m.to_string().contains("ignored before it: field `seq` (2)"),
            "{m}"
        );
        // A rule for another endpoint does not apply.
        s.ignore[0].endpoint = Some("other".into());
        let plan = plan_session(&s, None, None).unwrap().remove(0);
        assert!(plan.ignore.is_empty());
        assert!(check_conversation(&plan, 0, Some(got)).is_some());
    }

    #[test]
    fn the_mismatch_suggests_what_to_ignore() {
        let plan = stamped(RECORDED, Vec::new());
        let m = check_conversation(&plan, 0, Some(&[(5, LATER)])).unwrap();
        let s = m.suggestion.unwrap();
        assert_eq!(s.line.as_deref(), Some("Date: [^\\r\\n]*"));
        // Applied, the suggestion moves the check on to the counter.
        let plan = stamped(
            RECORDED,
            vec![IgnoreRule::regex(s.line.as_deref().unwrap()).unwrap()],
        );
        let m = check_conversation(&plan, 0, Some(&[(5, LATER)])).unwrap();
        assert_eq!(
            m.suggestion.unwrap().line.as_deref(),
            Some("X\\-Count: [^\\r\\n]*")
        );
    }

    mod masked {
        use super::*;
        use proptest::prelude::*;

        /// A few rules of each kind, some overlapping, some matching empty text.
        fn rule_pool() -> Vec<IgnoreRule> {
            vec![
                IgnoreRule::regex("[0-9]+").unwrap(),
                IgnoreRule::regex("a(?<x>b*)c").unwrap(),
                IgnoreRule::regex("x*").unwrap(),
                IgnoreRule::bytes("2..5").unwrap(),
                IgnoreRule::bytes("n=4..").unwrap(),
            ]
        }

        fn data() -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(
                prop_oneof![
                    Just(b'a'),
                    Just(b'b'),
                    Just(b'c'),
                    Just(b'1'),
                    Just(b'9'),
                    Just(b'x'),
                    any::<u8>()
                ],
                0..24,
            )
        }

        proptest! {
            #[test]
            fn never_panics_and_stays_in_bounds(
                e in data(),
                r in data(),
                pick in proptest::collection::vec(0usize..5, 0..4),
            ) {
                let pool = rule_pool();
                let rules: Vec<IgnoreRule> = pick.iter().map(|&i| pool[i].clone()).collect();
                // Identical sides always match, whatever the rules.
                prop_assert_eq!(compare_masked(&e, &e, &rules).0, None);
                // Ignoring never turns a match into a difference.
                if compare_bytes(&e, &r).is_none() {
                    prop_assert_eq!(compare_masked(&e, &r, &rules).0, None);
                }
                if let (Some(found), _) = compare_masked(&e, &r, &rules) {
                    prop_assert!(found.expected_at <= e.len());
                    prop_assert!(found.received_at <= r.len());
                    let start = context_start(&e, found.expected_at);
                    let m = mismatch_at(
                        Mismatch {
                            endpoint: "p".into(),
                            conversation: 1,
                            datagram: None,
                            difference: Difference::NeverConnected,
                            expected: Vec::new(),
                            received: Vec::new(),
                            context_start: start,
                            received_start: 0,
                            expected_offset: 0,
                            note: None,
                            ignored: Vec::new(),
                            suggestion: None,
                            row: None,
                        },
                        &e,
                        &r,
                        found,
                    );
                    let _ = m.to_string();
                }
            }
        }
    }

    fn mismatch_of(expected: &[u8], received: &[u8]) -> Mismatch {
        let (difference, at) = compare_bytes(expected, received).unwrap();
        let start = context_start(expected, at);
        Mismatch {
            endpoint: "client".into(),
            conversation: 1,
            datagram: None,
            difference,
            expected: context(expected, start),
            received: context(received, start),
            context_start: start,
            received_start: start,
            expected_offset: at,
            note: None,
            ignored: Vec::new(),
            suggestion: None,
            row: None,
        }
    }

    /// The column of the caret line's `^`, and the report's lines.
    fn caret_under(report: &str, line: &str) -> char {
        let lines: Vec<&str> = report.lines().collect();
        let caret = lines
            .iter()
            .find(|l| l.trim() == "^")
            .expect("a caret line");
        let column = caret.len() - 1;
        let target = lines.iter().find(|l| l.starts_with(line)).unwrap();
        // Columns count characters as shown (all test text is single-width here).
        target.chars().nth(column).unwrap()
    }

    #[test]
    fn the_caret_points_at_the_first_different_character() {
        let report = mismatch_of("café au lait".as_bytes(), "cafè au lait".as_bytes()).to_string();
        assert!(report.contains("  received: \"cafè au lait\""), "{report}");
        assert_eq!(caret_under(&report, "  received: "), 'è', "{report}");

        let report = mismatch_of(b"HTTP/1.0 200 OK\r\n", b"HTTP/1.0 404 OK\r\n").to_string();
        assert_eq!(caret_under(&report, "  received: "), '4', "{report}");
    }

    #[test]
    fn the_context_never_opens_mid_character() {
        let expected = "日本語".repeat(20);
        let mut received = expected.clone().into_bytes();
        let at = received.len() - 3;
        received[at..].copy_from_slice("x!!".as_bytes());
        let m = mismatch_of(expected.as_bytes(), &received);
        assert!(std::str::from_utf8(&m.expected).is_ok(), "{m}");
        let report = m.to_string();
        assert!(!report.contains("\\x"), "no cut characters: {report}");
        assert!(report.contains("  received: …\"日本語"), "{report}");
    }

    #[test]
    fn binary_differences_are_shown_in_hex_with_the_caret() {
        let report = mismatch_of(&[0xde, 0xad, 0xbe, 0xef], &[0xde, 0xad, 0xbf, 0xef]).to_string();
        assert!(
            !report.contains("expected: "),
            "no text line for binary: {report}"
        );
        assert!(report.contains("  expected hex: de ad be ef"), "{report}");
        assert!(report.contains("  received hex: de ad bf ef"), "{report}");
        let lines: Vec<&str> = report.lines().collect();
        let caret = lines.last().unwrap();
        assert_eq!(caret.len() - 1, "  received hex: de ad ".len(), "{report}");
    }
}
