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
use super::endpoint::{EndpointKind, EndpointSpec, KindTag};
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
}

impl EndpointPlan {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn is_udp(&self) -> bool {
        self.spec.kind.tag() == KindTag::Udp
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
        "the session has {0} endpoints to replay; a replay starts at most {MAX_REPLAY_ENDPOINTS} at once (choose one with --endpoint)"
    )]
    TooManyEndpoints(usize),
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

fn conversations_of(log: &TrafficLog, rows: &[usize], udp: bool) -> Vec<(u32, Conversation)> {
    struct Open {
        number: u32,
        conversation: Conversation,
        last: i64,
        we_closed: bool,
    }
    let mut done: Vec<(u32, Conversation)> = Vec::new();
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
                done.push((o.number, o.conversation));
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
            None if e.kind == EntryKind::HalfClosed => o.we_closed = true,
            None if !udp && matches!(e.kind, EntryKind::Closed | EntryKind::Reset) => {
                slot_of.remove(&number);
                if let Some(o) = open[slot].take() {
                    done.push((o.number, o.conversation));
                }
            }
            None => {}
        }
    }
    done.extend(
        open.into_iter()
            .flatten()
            .map(|o| (o.number, o.conversation)),
    );
    done.retain(|(_, c)| !c.steps.is_empty());
    done
}

/// The replay plan of one endpoint, or `None` when it recorded no payloads.
pub fn plan_endpoint(
    session: &Session,
    spec: &EndpointSpec,
    target: Option<&HostPort>,
) -> Option<EndpointPlan> {
    plan_endpoint_rows(session, spec, target, &entries_of(&session.log, &spec.name))
}

/// [`plan_endpoint`] with the endpoint's entry indices already found.
fn plan_endpoint_rows(
    session: &Session,
    spec: &EndpointSpec,
    target: Option<&HostPort>,
    rows: &[usize],
) -> Option<EndpointPlan> {
    let udp = spec.kind.tag() == KindTag::Udp;
    let mut conversations = conversations_of(&session.log, rows, udp);
    if conversations.is_empty() {
        return None;
    }
    let role = match spec.kind {
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
    }
    Some(EndpointPlan {
        spec,
        role,
        conversations: conversations.into_iter().map(|(_, c)| c).collect(),
    })
}

/// The plans for a session: every endpoint with recorded payloads, or only
/// `only`; mock servers first, so clients find them listening.
pub fn plan_session(
    session: &Session,
    only: Option<&str>,
    target: Option<&HostPort>,
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
    let by_endpoint = entries_by_endpoint(&session.log);
    let mut plans: Vec<EndpointPlan> = chosen
        .iter()
        .filter_map(|spec| {
            let rows = session
                .log
                .find_endpoint(&spec.name)
                .and_then(|i| by_endpoint.get(&i))
                .map_or(&[][..], Vec::as_slice);
            plan_endpoint_rows(session, spec, target, rows)
        })
        .collect();
    if plans.is_empty() {
        let which = only.map(|n| format!(" for \"{n}\"")).unwrap_or_default();
        return Err(PlanError::NothingRecorded(which));
    }
    if plans.len() > MAX_REPLAY_ENDPOINTS {
        return Err(PlanError::TooManyEndpoints(plans.len()));
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
    /// Where the context starts (offset of `expected[0]` and `received[0]`).
    pub context_start: usize,
    /// The log row (of the replay's log) holding the first differing byte, if any.
    pub row: Option<usize>,
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
        writeln!(f, "{what}: {summary}")?;
        if matches!(
            self.difference,
            Difference::NeverConnected | Difference::NotCheckable { .. }
        ) {
            return Ok(());
        }
        let caret = match self.difference {
            Difference::Differs { offset }
            | Difference::Missing { offset, .. }
            | Difference::Extra { offset, .. } => Some(offset - self.context_start),
            _ => None,
        };
        let lead = if self.context_start > 0 { "…" } else { "" };
        let at = caret.unwrap_or(usize::MAX);
        if reads_as_text(&self.expected) && reads_as_text(&self.received) {
            let (expected, _) = quoted_with_column(&self.expected, at);
            let (received, column) = quoted_with_column(&self.received, at);
            let empty = |b: &[u8], text: String| {
                if b.is_empty() {
                    "(nothing)".into()
                } else {
                    text
                }
            };
            writeln!(f, "  expected: {lead}{}", empty(&self.expected, expected))?;
            writeln!(f, "  received: {lead}{}", empty(&self.received, received))?;
            if let (Some(column), Some(_)) = (column, caret) {
                // Under the first differing character of the received line.
                let indent = "  received: ".len() + lead.chars().count() + column;
                writeln!(f, "{}^", " ".repeat(indent))?;
            }
            writeln!(f, "  expected hex: {lead}{}", to_hex(&self.expected))?;
            write!(f, "  received hex: {lead}{}", to_hex(&self.received))
        } else {
            // Binary: hex only, the caret under the first differing byte.
            writeln!(
                f,
                "  expected hex: {lead}{}",
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
    let common = expected
        .iter()
        .zip(received)
        .take_while(|(a, b)| a == b)
        .count();
    if common < expected.len() && common < received.len() {
        Some((Difference::Differs { offset: common }, common))
    } else if received.len() < expected.len() {
        Some((
            Difference::Missing {
                offset: common,
                missing: expected.len() - received.len(),
            },
            common,
        ))
    } else if received.len() > expected.len() {
        Some((
            Difference::Extra {
                offset: common,
                extra: received.len() - expected.len(),
            },
            common,
        ))
    } else {
        None
    }
}

/// What one replayed conversation received: its payloads, each with its log row.
pub type Received<'a> = [(usize, &'a [u8])];

/// Compares what one conversation received with its recording: TCP as one
/// stream (how it was split into reads does not matter), UDP datagram by datagram.
pub fn check_conversation(
    plan: &EndpointPlan,
    index: usize,
    received: Option<&Received<'_>>,
) -> Option<Mismatch> {
    let conversation = &plan.conversations[index];
    let base = Mismatch {
        endpoint: plan.name().to_owned(),
        conversation: index + 1,
        datagram: None,
        difference: Difference::NeverConnected,
        expected: Vec::new(),
        received: Vec::new(),
        context_start: 0,
        row: None,
    };
    if conversation.dropped > 0 {
        return Some(Mismatch {
            difference: Difference::NotCheckable {
                dropped: conversation.dropped,
            },
            ..base
        });
    }
    let Some(received) = received else {
        return Some(base);
    };
    if plan.is_udp() {
        let expected: Vec<&[u8]> = conversation.received().collect();
        for i in 0..expected.len().max(received.len()) {
            let datagram = Some(i + 1);
            match (expected.get(i), received.get(i)) {
                (Some(e), Some((row, r))) => {
                    if let Some((difference, at)) = compare_bytes(e, r) {
                        let start = context_start(e, at);
                        return Some(Mismatch {
                            datagram,
                            difference,
                            expected: context(e, start),
                            received: context(r, start),
                            context_start: start,
                            row: Some(*row),
                            ..base
                        });
                    }
                }
                (Some(e), None) => {
                    return Some(Mismatch {
                        datagram,
                        difference: Difference::MissingDatagram,
                        expected: context(e, 0),
                        ..base
                    });
                }
                (None, Some((row, r))) => {
                    return Some(Mismatch {
                        datagram,
                        difference: Difference::ExtraDatagram,
                        received: context(r, 0),
                        row: Some(*row),
                        ..base
                    });
                }
                (None, None) => {}
            }
        }
        return None;
    }
    let expected: Vec<u8> = conversation.received().flatten().copied().collect();
    let stream: Vec<u8> = received
        .iter()
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    let (difference, at) = compare_bytes(&expected, &stream)?;
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
    let start = context_start(&expected, at);
    Some(Mismatch {
        difference,
        expected: context(&expected, start),
        received: context(&stream, start),
        context_start: start,
        row,
        ..base
    })
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
