//! The RON shape of format 1 and its conversion to and from [`Session`].
//!
//! ```ron
//! (
//!     format: 1,
//!     notes: "A TCP echo server and a client of it.",
//!     endpoints: [
//!         (name: "echo server", kind: TcpServer(listen: "127.0.0.1:7000"), reply: Echo),
//!         (name: "client", kind: TcpClient(remote: "127.0.0.1:7000")),
//!     ],
//!     library: [(name: "hello", payload: Text("hello\n"))],
//!     log: (
//!         peers: [(endpoint: "client", peer: 0, remote: "127.0.0.1:7000")],
//!         entries: [
//!             (at: "2026-11-25T10:00:00.000100Z", endpoint: "client", peer: 0, event: Connected("127.0.0.1:7000")),
//!             (at: "2026-11-25T10:00:00.000200Z", endpoint: "client", peer: 0, event: Sent(Text("hello\n"))),
//!         ],
//!     ),
//! )
//! ```

use std::borrow::Cow;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeSeq as _;

use super::LoadError;
use crate::model::log::{Entry, EntryKind, ErrorKind, LogBudget, NO_PEER, TrafficLog};
use crate::model::{EndpointSpec, LibraryItem, Payload, Session};

/// The session format this build reads and writes.
pub const FORMAT: u32 = 1;

#[derive(serde::Deserialize)]
#[serde(rename = "Session", deny_unknown_fields)]
struct SessionFile {
    format: u32,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    endpoints: Vec<EndpointSpec>,
    #[serde(default)]
    library: Vec<LibraryItem>,
    #[serde(default)]
    lesson: Option<crate::model::lesson::Lesson>,
    #[serde(default)]
    log_budget: Option<LogBudget>,
    #[serde(default)]
    ignore: Vec<crate::model::ignore::IgnoreRule>,
    /// Built entry by entry while the file is read (see [`LogIn`]).
    #[serde(default)]
    log: LogIn,
}

/// [`SessionFile`] for writing: borrowed from the session, the log's entries
/// serialized one by one as the writer takes them.
#[derive(serde::Serialize)]
#[serde(rename = "Session")]
struct SessionOut<'a> {
    format: u32,
    notes: &'a str,
    endpoints: &'a [EndpointSpec],
    library: &'a [LibraryItem],
    #[serde(skip_serializing_if = "Option::is_none")]
    lesson: Option<&'a crate::model::lesson::Lesson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_budget: Option<LogBudget>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    ignore: &'a [crate::model::ignore::IgnoreRule],
    log: LogOut<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename = "Log")]
struct LogOut<'a> {
    peers: Vec<PeerFile>,
    entries: EntriesOut<'a>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename = "Peer", deny_unknown_fields)]
struct PeerFile {
    endpoint: String,
    peer: u32,
    remote: String,
}

#[derive(serde::Deserialize)]
#[serde(rename = "Entry", deny_unknown_fields)]
struct EntryFile {
    at: Timestamp,
    endpoint: String,
    #[serde(default)]
    peer: Option<u32>,
    event: EventFile,
    /// Payload bytes not kept (beyond the log's budget): the payload given
    /// is only the first bytes of one this many bytes longer.
    #[serde(default)]
    dropped: Option<u64>,
}

#[derive(serde::Serialize)]
#[serde(rename = "Entry")]
struct EntryOut<'a> {
    at: Timestamp,
    endpoint: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<u32>,
    event: EventOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped: Option<u64>,
}

/// One log entry's event. Payloads carry their bytes, the rest a detail line.
#[derive(serde::Deserialize)]
#[serde(rename = "Event")]
enum EventFile {
    Sent(Payload),
    Received(Payload),
    /// A payload whose write failed: it did not (all) go out.
    Unsent(Payload),
    Resolving(String),
    Connecting(String),
    Connected(String),
    Listening(String),
    Bound(String),
    Accepted(String),
    TlsHandshake(String),
    PeerClosed(String),
    HalfClosed(String),
    Reset(String),
    Closed(String),
    Stopped(String),
    Failed(ErrorKind, String),
    Note(String),
}

/// [`EventFile`] for writing, borrowing the log's bytes.
#[derive(serde::Serialize)]
#[serde(rename = "Event")]
enum EventOut<'a> {
    Sent(PayloadOut<'a>),
    Received(PayloadOut<'a>),
    Unsent(PayloadOut<'a>),
    Resolving(Cow<'a, str>),
    Connecting(Cow<'a, str>),
    Connected(Cow<'a, str>),
    Listening(Cow<'a, str>),
    Bound(Cow<'a, str>),
    Accepted(Cow<'a, str>),
    TlsHandshake(Cow<'a, str>),
    PeerClosed(Cow<'a, str>),
    HalfClosed(Cow<'a, str>),
    Reset(Cow<'a, str>),
    Closed(Cow<'a, str>),
    Stopped(Cow<'a, str>),
    Failed(ErrorKind, Cow<'a, str>),
    Note(Cow<'a, str>),
}

/// A [`Payload`] as written, without copying printable text.
#[derive(serde::Serialize)]
#[serde(rename = "Payload")]
enum PayloadOut<'a> {
    Text(&'a str),
    Hex(String),
}

impl<'a> PayloadOut<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) if crate::model::payload::is_printable_text(bytes) => PayloadOut::Text(text),
            _ => PayloadOut::Hex(crate::model::payload::to_hex(bytes)),
        }
    }
}

/// RFC 3339 UTC with microseconds: `2026-11-25T10:00:00.123456Z`.
struct Timestamp(DateTime<Utc>);

pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_timestamp(&self.0))
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| Timestamp(t.with_timezone(&Utc)))
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "time \"{s}\" is not RFC 3339 (like 2026-11-25T10:00:00.123456Z): {e}"
                ))
            })
    }
}

/// Only the format field, read first; everything else is skipped unread.
#[derive(serde::Deserialize)]
struct Probe {
    format: Option<u64>,
}

fn syntax_error(path: &Path, e: ron::error::SpannedError) -> LoadError {
    LoadError::Syntax {
        path: path.to_owned(),
        line: e.span.start.line,
        col: e.span.start.col,
        message: describe(&e.code),
    }
}

/// The part of a session a RON struct name stands for, in the words of the README.
fn part_named(outer: &Option<String>) -> &'static str {
    match outer.as_deref() {
        Some("Session" | "Probe") | None => "the session",
        Some("Log") => "the log",
        Some("Peer") => "a peer of the log",
        Some("Entry") => "a log entry",
        Some("EndpointSpec") => "an endpoint",
        Some("TlsClientSettings" | "TlsServerSettings") => "the TLS settings",
        Some("SocketOptions") => "the socket options",
        Some("Impairments") => "a relay's impairments",
        Some("Toxics") => "the impairments of one direction",
        Some("LibraryItem") => "a library payload",
        Some("Rule") => "a rule",
        Some("Lesson") => "the lesson",
        Some("LessonStep") => "a lesson step",
        Some("Checkpoint") => "a step's check",
        Some(_) => "this part of the file",
    }
}

/// The kind of value a RON enum name stands for, in the words of the README.
fn choice_named(outer: &Option<String>) -> &'static str {
    match outer.as_deref() {
        Some("EndpointKind") => "an endpoint's kind",
        Some("Payload") => "a payload",
        Some("Event") => "a log event",
        Some("EntryKind") => "an event to check for",
        Some("ErrorKind") => "a failure's kind",
        Some("AutoReply") => "a reply",
        Some("Trigger") => "a rule's condition",
        Some("RelayTransport") => "a relay's transport",
        _ => "this value",
    }
}

/// `a`, `b`, or `c`: the names a place in the file takes.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => "nothing".into(),
        [one] => format!("`{one}`"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|n| format!("`{n}`")).collect();
            format!("{} or `{last}`", init.join(", "))
        }
    }
}

/// A RON error in the words of a session file: no internal type names.
fn describe(code: &ron::Error) -> String {
    match code {
        ron::Error::DuplicateStructField { field, outer } => format!(
            "the field `{field}` is given twice in {}; keep one of them",
            part_named(outer)
        ),
        ron::Error::NoSuchStructField {
            expected,
            found,
            outer,
        } => format!(
            "there is no field `{found}` in {}; the fields are {}",
            part_named(outer),
            one_of(expected)
        ),
        ron::Error::MissingStructField { field, outer } => {
            format!("the field `{field}` is missing in {}", part_named(outer))
        }
        ron::Error::NoSuchEnumVariant {
            expected,
            found,
            outer,
        } => format!(
            "`{found}` is not {}; write one of {}",
            choice_named(outer),
            one_of(expected)
        ),
        ron::Error::ExceededRecursionLimit => {
            "the brackets nest too deeply here for a session file".into()
        }
        ron::Error::SuggestRawIdentifier(name) | ron::Error::InvalidIdentifier(name) => {
            format!("`{name}` is not a name a session file uses here")
        }
        // The probe is ours; the person wrote (or meant) a session.
        other => other.to_string().replace(
            "struct `Probe`",
            "a session: `(format: 1, endpoints: [...], ...)`",
        ),
    }
}

/// The 1-based line of the first occurrence of `needle` after the first
/// occurrence, used to point at a duplicated name.
fn line_of_second(text: &str, needle: &str) -> Option<usize> {
    let first = text.find(needle)?;
    let second = first + needle.len() + text[first + needle.len()..].find(needle)?;
    Some(text[..second].matches('\n').count() + 1)
}

/// The line and column of the `sends:` field that comes after `before`
/// others (the endpoints before it with sends), else 1:1.
fn sends_position(text: &str, before: usize) -> (usize, usize) {
    let at = text
        .match_indices("sends")
        .map(|(i, _)| i)
        .filter(|&i| {
            let after = text[i + 5..].trim_start();
            after.starts_with(':')
                && !text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
        })
        .nth(before);
    match at {
        Some(i) => {
            let line = text[..i].matches('\n').count() + 1;
            let col = text[..i]
                .rsplit('\n')
                .next()
                .map_or(0, |l| l.chars().count())
                + 1;
            (line, col)
        }
        None => (1, 1),
    }
}

/// RON options shared by reading and writing: `peer: 1` rather than `peer: Some(1)`.
fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

pub fn decode(text: &str, path: &Path) -> Result<Session, LoadError> {
    // Editors on Windows start UTF-8 files with a byte-order mark; it is not text.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = ron_options();
    // One pass over the text when it is a good session (the common case, and
    // the costly one for a big recording); the probe runs only when the
    // session does not parse or is of another format, so a file from a newer
    // sockbench says so instead of failing on some field it does not know.
    let file = match options.from_str::<SessionFile>(text) {
        Ok(file) if file.format == FORMAT => file,
        parsed => {
            let probe: Probe = options.from_str(text).map_err(|e| syntax_error(path, e))?;
            return Err(match (probe.format, parsed) {
                (None, _) => LoadError::MissingFormat {
                    path: path.to_owned(),
                },
                (Some(found), _) if found != FORMAT as u64 => LoadError::UnknownFormat {
                    path: path.to_owned(),
                    found,
                },
                (Some(_), Err(e)) => syntax_error(path, e),
                // The probe and the session disagree on the format: cannot happen.
                (Some(found), Ok(_)) => LoadError::UnknownFormat {
                    path: path.to_owned(),
                    found,
                },
            });
        }
    };

    let mut session = Session {
        notes: file.notes,
        endpoints: file.endpoints,
        library: file.library,
        log: file.log.0,
        lesson: file.lesson,
        log_budget: file.log_budget,
        ignore: file.ignore,
    };
    if let Err((endpoint, message)) = session.validate_sends() {
        // Read again with the library's names known, so an unknown name is
        // refused where it is written (its line and column).
        let names = session.library.iter().map(|l| l.name.clone()).collect();
        if let Err(e) = crate::model::schedule::with_library_names(names, || {
            options.from_str::<SessionFile>(text)
        }) {
            return Err(syntax_error(path, e));
        }
        // Not a name: the endpoint's kind. Point at its `sends`.
        let before = session.endpoints[..endpoint.min(session.endpoints.len())]
            .iter()
            .filter(|e| !e.sends.is_empty())
            .count();
        let (line, col) = sends_position(text, before);
        return Err(LoadError::Syntax {
            path: path.to_owned(),
            line,
            col,
            message,
        });
    }
    if let Err(message) = session.validate() {
        let mut seen = std::collections::HashSet::new();
        let line = session
            .endpoints
            .iter()
            .find(|e| !seen.insert(e.name.as_str()))
            .and_then(|e| line_of_second(text, &format!("name: \"{}\"", e.name)));
        return Err(LoadError::Invalid {
            path: path.to_owned(),
            line,
            message,
        });
    }
    // The log's endpoint order follows the session's, then the log's own.
    session
        .log
        .order_endpoints(session.endpoints.iter().map(|e| e.name.as_str()));
    if let Some(budget) = session.log_budget {
        session.log.set_budget(budget);
    }
    Ok(session)
}

/// The log as read: built entry by entry while the file is parsed, so a big
/// recording is never held twice (once as parsed entries, once as the log).
#[derive(Default)]
struct LogIn(TrafficLog);

impl<'de> serde::Deserialize<'de> for LogIn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct("Log", LOG_FIELDS, LogVisitor)
    }
}

const LOG_FIELDS: &[&str] = &["peers", "entries"];

struct LogVisitor;

impl<'de> Visitor<'de> for LogVisitor {
    type Value = LogIn;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the log: (peers: [...], entries: [...])")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LogIn, A::Error> {
        let mut log = TrafficLog::new();
        let (mut peers, mut entries) = (false, false);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "peers" => {
                    if std::mem::replace(&mut peers, true) {
                        return Err(A::Error::duplicate_field("peers"));
                    }
                    for p in map.next_value::<Vec<PeerFile>>()? {
                        let ep = log.endpoint_index(&p.endpoint);
                        log.peer_index(ep, p.peer, &p.remote);
                    }
                }
                "entries" => {
                    if std::mem::replace(&mut entries, true) {
                        return Err(A::Error::duplicate_field("entries"));
                    }
                    map.next_value_seed(EntriesIn(&mut log))?;
                }
                other => return Err(A::Error::unknown_field(other, LOG_FIELDS)),
            }
        }
        Ok(LogIn(log))
    }
}

/// Pushes each entry into the log as it is read.
struct EntriesIn<'a>(&'a mut TrafficLog);

impl<'de> DeserializeSeed<'de> for EntriesIn<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesIn<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of log entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let log = self.0;
        while let Some(e) = seq.next_element::<EntryFile>()? {
            let ep = log.endpoint_index(&e.endpoint);
            let peer = match e.peer {
                Some(n) => log.peer_index(ep, n, ""),
                None => NO_PEER,
            };
            let (kind, data): (EntryKind, Vec<u8>) = match e.event {
                EventFile::Sent(p) => (EntryKind::Sent, p.0),
                EventFile::Received(p) => (EntryKind::Received, p.0),
                EventFile::Unsent(p) => (EntryKind::Unsent, p.0),
                EventFile::Resolving(s) => (EntryKind::Resolving, s.into_bytes()),
                EventFile::Connecting(s) => (EntryKind::Connecting, s.into_bytes()),
                EventFile::Connected(s) => (EntryKind::Connected, s.into_bytes()),
                EventFile::Listening(s) => (EntryKind::Listening, s.into_bytes()),
                EventFile::Bound(s) => (EntryKind::Bound, s.into_bytes()),
                EventFile::Accepted(s) => (EntryKind::Accepted, s.into_bytes()),
                EventFile::TlsHandshake(s) => (EntryKind::TlsHandshake, s.into_bytes()),
                EventFile::PeerClosed(s) => (EntryKind::PeerClosed, s.into_bytes()),
                EventFile::HalfClosed(s) => (EntryKind::HalfClosed, s.into_bytes()),
                EventFile::Reset(s) => (EntryKind::Reset, s.into_bytes()),
                EventFile::Closed(s) => (EntryKind::Closed, s.into_bytes()),
                EventFile::Stopped(s) => (EntryKind::Stopped, s.into_bytes()),
                EventFile::Failed(k, s) => (EntryKind::Failed(k), s.into_bytes()),
                EventFile::Note(s) => (EntryKind::Note, s.into_bytes()),
            };
            let dropped = e.dropped.unwrap_or(0);
            if dropped > 0 && !kind.has_payload() {
                return Err(A::Error::custom(
                    "`dropped` belongs to Sent, Received and Unsent payloads only",
                ));
            }
            log.push_kept(e.at.0, ep, peer, kind, &data, dropped);
        }
        Ok(())
    }
}

/// The log's entries, serialized one at a time from the log itself.
struct EntriesOut<'a> {
    log: &'a TrafficLog,
    /// The file number of each peer of the log.
    numbers: Vec<u32>,
}

impl serde::Serialize for EntriesOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let log = self.log;
        let mut seq = s.serialize_seq(Some(log.len()))?;
        for e in log.entries() {
            seq.serialize_element(&entry_out(log, e, &self.numbers))?;
        }
        seq.end()
    }
}

fn entry_out<'a>(log: &'a TrafficLog, e: &Entry, numbers: &[u32]) -> EntryOut<'a> {
    let data = log.bytes_of(e);
    let detail = || String::from_utf8_lossy(data);
    let event = match e.kind {
        EntryKind::Sent => EventOut::Sent(PayloadOut::new(data)),
        EntryKind::Received => EventOut::Received(PayloadOut::new(data)),
        EntryKind::Unsent => EventOut::Unsent(PayloadOut::new(data)),
        EntryKind::Resolving => EventOut::Resolving(detail()),
        EntryKind::Connecting => EventOut::Connecting(detail()),
        EntryKind::Connected => EventOut::Connected(detail()),
        EntryKind::Listening => EventOut::Listening(detail()),
        EntryKind::Bound => EventOut::Bound(detail()),
        EntryKind::Accepted => EventOut::Accepted(detail()),
        EntryKind::TlsHandshake => EventOut::TlsHandshake(detail()),
        EntryKind::PeerClosed => EventOut::PeerClosed(detail()),
        EntryKind::HalfClosed => EventOut::HalfClosed(detail()),
        EntryKind::Reset => EventOut::Reset(detail()),
        EntryKind::Closed => EventOut::Closed(detail()),
        EntryKind::Stopped => EventOut::Stopped(detail()),
        EntryKind::Failed(k) => EventOut::Failed(k, detail()),
        EntryKind::Note => EventOut::Note(detail()),
    };
    EntryOut {
        at: Timestamp(e.at()),
        endpoint: log.endpoint_name(e),
        peer: (e.peer != NO_PEER)
            .then(|| numbers.get(e.peer as usize).copied())
            .flatten(),
        event,
        dropped: (!e.is_complete()).then_some(e.dropped() as u64),
    }
}

/// The file number of each peer of the log. A peer's number in the file must
/// name one peer of its endpoint. Runs of an endpoint each number their peers
/// from 1 again, so a later run's peer whose number is taken gets the next free one.
fn peer_numbers(log: &TrafficLog) -> Vec<u32> {
    let mut taken: std::collections::HashSet<(u32, u32)> = std::collections::HashSet::new();
    let mut next_free: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    for p in log.peers() {
        let top = next_free.entry(p.endpoint).or_insert(0);
        *top = (*top).max(p.number.saturating_add(1));
    }
    log.peers()
        .iter()
        .map(|p| {
            if taken.insert((p.endpoint, p.number)) {
                p.number
            } else {
                let top = next_free.entry(p.endpoint).or_insert(0);
                let n = *top;
                *top += 1;
                taken.insert((p.endpoint, n));
                n
            }
        })
        .collect()
}

/// The first line of every session file.
const HEADER: &str =
    "// sockbench session. Hand edits are welcome; README.md describes the fields.\n";

/// Writes the session as file text to `out`, entry by entry: payloads are
/// read from the log (spilled ones from the spill file) as they are written,
/// never gathered in memory first. Give a buffered writer.
pub fn encode_to<W: std::io::Write>(session: &Session, mut out: W) -> std::io::Result<()> {
    let log = &session.log;
    let numbers = peer_numbers(log);
    let peers = log
        .peers()
        .iter()
        .zip(&numbers)
        .map(|(p, &number)| PeerFile {
            endpoint: log.endpoints()[p.endpoint as usize].clone(),
            peer: number,
            remote: p.remote.clone(),
        })
        .collect();
    let file = SessionOut {
        format: FORMAT,
        notes: &session.notes,
        endpoints: &session.endpoints,
        library: &session.library,
        lesson: session.lesson.as_ref(),
        log_budget: session.log_budget,
        ignore: &session.ignore,
        log: LogOut {
            peers,
            entries: EntriesOut { log, numbers },
        },
    };
    // Nested values past the third level stay on one line: one peer and one
    // log entry per line reads well and diffs well.
    let pretty = ron::ser::PrettyConfig::new()
        .depth_limit(3)
        .struct_names(false)
        .separate_tuple_members(false);
    out.write_all(HEADER.as_bytes())?;
    let mut kept = KeepError {
        out: &mut out,
        error: None,
    };
    let encoded = ron_options().to_io_writer_pretty(&mut kept, &file, pretty);
    if let Some(e) = kept.error {
        return Err(e);
    }
    encoded.map_err(|e| std::io::Error::other(format!("could not encode the session: {e}")))?;
    out.write_all(b"\n")?;
    out.flush()
}

/// A writer that keeps the first I/O error whole (ron's keeps only its text),
/// so a full disk is still said as one.
struct KeepError<W> {
    out: W,
    error: Option<std::io::Error>,
}

impl<W: std::io::Write> std::io::Write for KeepError<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf).map_err(|e| {
            let kind = e.kind();
            self.error.get_or_insert(e);
            std::io::Error::from(kind)
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush().map_err(|e| {
            let kind = e.kind();
            self.error.get_or_insert(e);
            std::io::Error::from(kind)
        })
    }
}

/// The session as file text (see [`encode_to`]).
pub fn encode(session: &Session) -> String {
    let mut text = Vec::new();
    if let Err(e) = encode_to(session, &mut text) {
        return format!("// could not encode the session: {e}\n");
    }
    String::from_utf8(text).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::log::{Direction, Overflow};
    use crate::model::{AutoReply, EndpointKind};
    use proptest::prelude::*;
    use std::path::PathBuf;

    fn p() -> PathBuf {
        PathBuf::from("test.ron")
    }

    fn at(micros: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(micros).unwrap()
    }

    fn sample() -> Session {
        let mut s = Session {
            notes: "two lines\nof notes".into(),
            ..Default::default()
        };
        s.endpoints.push(
            EndpointSpec::new(
                "echo server",
                EndpointKind::TcpServer {
                    listen: "127.0.0.1:7000".parse().unwrap(),
                },
            )
            .with_reply(AutoReply::Echo),
        );
        s.endpoints.push(EndpointSpec::new(
            "client",
            EndpointKind::TcpClient {
                remote: "127.0.0.1:7000".parse().unwrap(),
            },
        ));
        s.library.push(LibraryItem {
            name: "hello".into(),
            payload: "hello\r\n".into(),
        });
        let log = &mut s.log;
        let c = log.endpoint_index("client");
        let srv = log.endpoint_index("echo server");
        let p0 = log.peer_index(c, 0, "127.0.0.1:7000");
        let p1 = log.peer_index(srv, 1, "127.0.0.1:50000");
        log.push(
            at(1_000_001),
            c,
            p0,
            EntryKind::Connected,
            b"127.0.0.1:7000",
        );
        log.push(at(1_000_002), c, p0, EntryKind::Sent, b"hello\r\n");
        log.push(at(1_000_003), srv, p1, EntryKind::Received, &[0, 1, 2, 255]);
        log.push(
            at(1_000_004),
            c,
            NO_PEER,
            EntryKind::Failed(ErrorKind::Refused),
            b"connect: refused",
        );
        s
    }

    fn same_log(a: &TrafficLog, b: &TrafficLog) {
        assert_eq!(a.len(), b.len());
        for i in 0..a.len() {
            let (x, y) = (a.entry(i).unwrap(), b.entry(i).unwrap());
            assert_eq!(x.at_micros, y.at_micros);
            assert_eq!(x.kind, y.kind);
            assert_eq!(a.endpoint_name(x), b.endpoint_name(y));
            let peer = |l: &TrafficLog, e| l.peer_of(e).map(|p| (p.number, p.remote.clone()));
            assert_eq!(peer(a, x), peer(b, y));
            assert_eq!(a.data(i), b.data(i));
        }
    }

    #[test]
    fn round_trip() {
        let s = sample();
        let text = encode(&s);
        let back = decode(&text, &p()).unwrap();
        assert_eq!(back.notes, s.notes);
        assert_eq!(back.endpoints, s.endpoints);
        assert_eq!(back.library, s.library);
        same_log(&s.log, &back.log);
        // And the text is stable through a second trip.
        assert_eq!(encode(&back), text);
    }

    /// The sample session's log pushed again into a log with `budget`, plus a
    /// few payloads large enough to go over it.
    fn with_budget(budget: LogBudget, spill: &Path) -> Session {
        let s = sample();
        let mut log = TrafficLog::with_budget(budget).spill_in(vec![spill.to_owned()]);
        for name in s.log.endpoints() {
            log.endpoint_index(name);
        }
        for p in s.log.peers() {
            log.peer_index(p.endpoint, p.number, &p.remote);
        }
        for e in s.log.entries() {
            log.push(e.at(), e.endpoint, e.peer, e.kind, s.log.bytes_of(e));
        }
        let c = log.find_endpoint("client").unwrap();
        // 9 MiB: more than one spill segment, so some are read from the mapping.
        for i in 0..9u32 {
            let big: Vec<u8> = (0..(1 << 20))
                .map(|j: u32| b'a' + ((j * 7 + i) % 26) as u8)
                .collect();
            log.push(at(2_000_000 + i as i64), c, 0, EntryKind::Received, &big);
            log.push(at(2_000_000 + i as i64), c, 0, EntryKind::Sent, b"next\n");
        }
        Session { log, ..s }
    }

    #[test]
    fn a_spilled_log_saves_the_same_text_as_one_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let in_memory = with_budget(LogBudget::new(u64::MAX, Overflow::Spill), dir.path());
        let spilled = with_budget(LogBudget::new(100_000, Overflow::Spill), dir.path());
        assert_eq!(in_memory.log.counters().spilled_bytes, 0);
        assert!(spilled.log.counters().spilled_bytes >= 8 << 20);
        let text = encode(&in_memory);
        assert_eq!(encode(&spilled), text);
        // Through the streamed atomic save, too.
        let file = dir.path().join("s.ron");
        crate::persist::save(&file, &spilled).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
        let back = crate::persist::load(&file).unwrap();
        same_log(&back.log, &in_memory.log);
    }

    #[test]
    fn a_dropped_payload_is_marked_and_never_saved_as_whole() {
        let dir = tempfile::tempdir().unwrap();
        let s = with_budget(LogBudget::new(100_000, Overflow::Drop), dir.path());
        let text = encode(&s);
        let marked: Vec<&str> = text.lines().filter(|l| l.contains("dropped:")).collect();
        assert_eq!(marked.len(), 9, "{}", &text[..2000]);
        let preview = crate::model::budget::PREVIEW_BYTES as usize;
        assert!(
            marked[0].ends_with(&format!("), dropped: {}),", (1 << 20) - preview)),
            "{}",
            marked[0]
        );
        // Read back: the same true length, not complete, the same text again.
        let back = decode(&text, &p()).unwrap();
        let e = back
            .log
            .entries()
            .iter()
            .find(|e| !e.is_complete())
            .unwrap();
        assert_eq!(e.len(), 1 << 20);
        assert_eq!(back.log.bytes_of(e).len(), preview);
        assert_eq!(back.log.counters().dropped_entries, 9);
        assert_eq!(encode(&back), text);
        // A file without the field reads as before: whole payloads.
        assert!(sample().log.entries().iter().all(|e| e.is_complete()));
        assert!(!encode(&sample()).contains("dropped"));
    }

    #[test]
    fn dropped_bytes_belong_to_payloads_only() {
        let err = decode(
            "(format: 1, log: (entries: [(at: \"2026-11-25T10:00:00.000100Z\", endpoint: \"x\", event: Note(\"n\"), dropped: 5)]))",
            &p(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("`dropped` belongs to Sent, Received and Unsent"),
            "{err}"
        );
        // A hand-written length beyond 4 GiB is kept as a drop, not a wrap.
        let s = decode(
            "(format: 1, log: (entries: [(at: \"2026-11-25T10:00:00.000100Z\", endpoint: \"x\", event: Sent(Text(\"abc\")), dropped: 99999999999)]))",
            &p(),
        )
        .unwrap();
        let e = s.log.entry(0).unwrap();
        assert!(!e.is_complete());
        assert_eq!(s.log.bytes_of(e), b"abc");
    }

    #[test]
    fn ignore_rules_round_trip_and_a_bad_one_is_named() {
        use crate::model::ignore::IgnoreRule;
        let mut s = sample();
        assert!(!encode(&s).contains("ignore"), "no field without rules");
        s.ignore = vec![
            IgnoreRule::regex("Date: [^\\r\\n]*\r\n").unwrap(),
            IgnoreRule {
                endpoint: Some("client".into()),
                ..IgnoreRule::bytes("seq=4..8").unwrap()
            },
        ];
        let text = encode(&s);
        let back = decode(&text, &p()).unwrap();
        assert_eq!(back.ignore, s.ignore);
        let err = decode("(format: 1,\n ignore: [(regex: \"Date: (\")])", &p())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular expression"), "{err}");
        assert!(err.contains(":2:"), "names the line: {err}");
        let err = decode("(format: 1, ignore: [(bytes: \"8..4\")])", &p())
            .unwrap_err()
            .to_string();
        assert!(err.contains("the end must come after the start"), "{err}");
    }

    #[test]
    fn scheduled_sends_round_trip_and_a_bad_one_is_placed() {
        use crate::model::schedule::{Repeat, ScheduledSend, SendPayload};
        let mut s = sample();
        s.endpoints[1].sends = vec![
            ScheduledSend::text("hi\\n"),
            ScheduledSend {
                payload: SendPayload::Library(s.library[0].name.clone()),
                delay: std::time::Duration::from_millis(250),
                repeat: Repeat::UntilStopped,
                interval: std::time::Duration::from_secs(2),
            },
        ];
        let text = encode(&s);
        assert!(text.contains("repeat: \"until stopped\""), "{text}");
        let back = decode(&text, &p()).unwrap();
        assert_eq!(back.endpoints[1].sends, s.endpoints[1].sends);
        // An unknown library name: its own line and column, even when the
        // library comes after the endpoints.
        let bad = "(format: 1,\n endpoints: [(name: \"c\", kind: TcpClient(remote: \"127.0.0.1:9\"),\n  sends: [(text: \"a\"),\n   (library: \"nope\")])],\n library: [(name: \"x\", payload: Text(\"x\"))])";
        let err = decode(bad, &p()).unwrap_err();
        assert!(matches!(err, LoadError::Syntax { line: 4, .. }), "{err}");
        assert!(err.to_string().contains("library \"nope\""), "{err}");
        // The library's own names are fine, wherever the library is written.
        let good = bad.replace("\"nope\"", "\"x\"");
        assert!(decode(&good, &p()).is_ok());
    }

    #[test]
    fn a_session_budget_round_trips_and_applies_to_its_log() {
        let mut s = sample();
        s.log_budget = Some(LogBudget::new(64 << 20, Overflow::Drop));
        let text = encode(&s);
        assert!(
            text.contains(
                "    log_budget: (\n        memory: \"64 MiB\",\n        overflow: Drop,\n    ),\n"
            ),
            "{text}"
        );
        let back = decode(&text, &p()).unwrap();
        assert_eq!(back.log_budget, s.log_budget);
        assert_eq!(back.log.budget(), LogBudget::new(64 << 20, Overflow::Drop));
        let err = decode("(format: 1, log_budget: (memory: \"lots\"))", &p()).unwrap_err();
        assert!(
            err.to_string().contains("log budget memory \"lots\""),
            "{err}"
        );
    }

    #[test]
    fn the_log_is_read_in_any_field_order_with_the_session_order_of_endpoints() {
        let text = encode(&sample());
        let back = decode(&text, &p()).unwrap();
        assert_eq!(back.log.endpoints(), ["echo server", "client"]);
        // Entries before peers (a hand edit): the same log.
        let swapped = "(format: 1, endpoints: [(name: \"b\", kind: Udp()), (name: \"a\", kind: Udp())], log: (entries: [(at: \"2026-11-25T10:00:00.000100Z\", endpoint: \"a\", peer: 1, event: Sent(Text(\"x\")))], peers: [(endpoint: \"a\", peer: 1, remote: \"127.0.0.1:9\")]))";
        let s = decode(swapped, &p()).unwrap();
        assert_eq!(s.log.endpoints(), ["b", "a"]);
        assert_eq!(
            s.log.peer_of(s.log.entry(0).unwrap()).unwrap().remote,
            "127.0.0.1:9"
        );
        let err = decode("(format: 1, log: (entries: [], extra: 1))", &p()).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }

    #[test]
    fn a_failing_writer_is_reported_with_its_own_error() {
        struct Full(usize);
        impl std::io::Write for Full {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::StorageFull,
                        "disk full",
                    ));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let err = encode_to(&sample(), Full(300)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
        assert_eq!(err.to_string(), "disk full");
    }

    #[test]
    fn peers_of_two_runs_stay_apart_through_a_file() {
        let mut s = sample();
        let at = s.log.entry(0).unwrap().at();
        let server = s.log.endpoint_index("echo server");
        s.log.new_run(server);
        let first = s.log.peer_index(server, 1, "127.0.0.1:50001");
        s.log.push(at, server, first, EntryKind::Received, b"one");
        s.log.new_run(server);
        let second = s.log.peer_index(server, 1, "127.0.0.1:50002");
        s.log.push(at, server, second, EntryKind::Received, b"two");
        let back = decode(&encode(&s), &p()).unwrap();
        let remote_of = |data: &[u8]| {
            (0..back.log.len())
                .find(|&i| back.log.data(i) == data)
                .and_then(|i| back.log.peer_of(back.log.entry(i).unwrap()))
                .map(|p| p.remote.clone())
        };
        assert_eq!(remote_of(b"one").as_deref(), Some("127.0.0.1:50001"));
        assert_eq!(remote_of(b"two").as_deref(), Some("127.0.0.1:50002"));
    }

    #[test]
    fn file_text_is_readable() {
        let text = encode(&sample());
        assert!(text.contains("format: 1,"), "{text}");
        assert!(
            text.contains("            name: \"echo server\",\n            kind: TcpServer(listen: \"127.0.0.1:7000\"),\n            reply: Echo,\n"),
            "{text}"
        );
        assert!(
            text.contains("event: Sent(Text(\"hello\\r\\n\"))"),
            "{text}"
        );
        assert!(
            text.contains("event: Received(Hex(\"00 01 02 ff\"))"),
            "{text}"
        );
        assert!(
            text.contains("at: \"1970-01-01T00:00:01.000002Z\""),
            "{text}"
        );
        assert!(
            text.contains("event: Failed(Refused, \"connect: refused\")"),
            "{text}"
        );
    }

    #[test]
    fn broken_files_name_line_and_column() {
        let text = "(\n    format: 1,\n    endpoints: [\n        (name: \"x\", kind: TcpClient(remote: \"127.0.0.1:99999\")),\n    ],\n)";
        let err = decode(text, &p()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("test.ron:4:"), "{msg}");
        assert!(msg.contains("port 99999 is out of range"), "{msg}");

        let err = decode("(format: 1, endpoints: [", &p()).unwrap_err();
        assert!(matches!(err, LoadError::Syntax { line: 1, .. }), "{err}");

        let err = decode("(format: 1, nots: \"typo\")", &p()).unwrap_err();
        assert!(err.to_string().contains("nots"), "{err}");

        let err = decode("(format: 1, endpoints: [], log: (entries: [(at: \"yesterday\", endpoint: \"x\", event: Note(\"\"))]))", &p()).unwrap_err();
        assert!(err.to_string().contains("not RFC 3339"), "{err}");
    }

    #[test]
    fn versions() {
        let err = decode("(format: 2, whatever: [1, 2, 3])", &p()).unwrap_err();
        assert!(matches!(err, LoadError::UnknownFormat { found: 2, .. }));
        assert_eq!(
            err.to_string(),
            "test.ron: session format 2 is not one this sockbench reads (it reads format 1); it was written by a newer sockbench"
        );
        let err = decode("(endpoints: [])", &p()).unwrap_err();
        assert!(matches!(err, LoadError::MissingFormat { .. }), "{err}");
        let err = decode("[1, 2]", &p()).unwrap_err();
        assert!(matches!(err, LoadError::Syntax { .. }), "{err}");
    }

    #[test]
    fn duplicate_names_point_at_the_line() {
        let text = "(\n format: 1,\n endpoints: [\n  (name: \"a\", kind: Udp()),\n  (name: \"a\", kind: Udp()),\n ],\n)";
        let err = decode(text, &p()).unwrap_err();
        assert_eq!(err.to_string(), "test.ron:5: two endpoints are named \"a\"");
    }

    #[test]
    fn duplicated_fields_are_named_with_their_place() {
        // Before: "Unexpected duplicate field named `format` in `Probe`".
        let err = decode("(\n  format: 1,\n  format: 1,\n)", &p()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("test.ron:3:"), "{msg}");
        assert!(
            msg.ends_with("the field `format` is given twice in the session; keep one of them"),
            "{msg}"
        );
        assert!(!msg.contains("Probe"), "{msg}");
        let err = decode(
            "(format: 1,\n endpoints: [],\n notes: \"a\",\n notes: \"b\")",
            &p(),
        )
        .unwrap_err();
        assert!(matches!(err, LoadError::Syntax { line: 4, .. }), "{err}");
        assert!(
            err.to_string()
                .ends_with("the field `notes` is given twice in the session; keep one of them"),
            "{err}"
        );
        let err = decode(
            "(format: 1, endpoints: [\n  (name: \"a\", name: \"b\", kind: Udp()),\n])",
            &p(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("the field `name` is given twice in an endpoint; keep one of them"),
            "{err}"
        );
    }

    #[test]
    fn no_error_names_an_internal_type_or_ron_setting() {
        // Before: "Unexpected missing field named `name` in `EndpointSpec`",
        // "… in enum `EndpointKind` …", and for deep nesting "try increasing
        // `ron::Options::recursion_limit` and using `serde_stacker`".
        let deep = format!(
            "(format: 1, notes: {}{})",
            "[".repeat(5000),
            "]".repeat(5000)
        );
        let cases = [
            (
                "(format: 1, endpoints: [(kind: TcpClient(remote: \"127.0.0.1:1\"))])",
                "the field `name` is missing in an endpoint",
            ),
            (
                "(format: 1, endpoints: [(name: \"a\", kind: TcpKlient(remote: \"127.0.0.1:1\"))])",
                "`TcpKlient` is not an endpoint's kind; write one of `TcpClient`, `TcpServer`, `Udp`, `TlsClient`, `TlsServer`, `Relay`, `UnixClient`, `UnixServer` or `UnixDatagram`",
            ),
            (
                "(format: 1, endpoints: [(name: \"a\", kind: Udp(), options: (nodelai: true))])",
                "there is no field `nodelai` in the socket options; the fields are `nodelay`,",
            ),
            (
                "(format: 1, log: (entries: [(endpoint: \"x\", event: Note(\"a\"))]))",
                "the field `at` is missing in a log entry",
            ),
            (
                "(format: 1, log: (entries: [(at: \"2026-11-25T10:00:00.000000Z\", endpoint: \"x\", event: Sent(Txt(\"a\")))]))",
                "`Txt` is not a payload; write one of `Text` or `Hex`",
            ),
            (
                "(format: 1, endpoints: [(name: \"r\", kind: Relay(transport: Sctp, listen: \"127.0.0.1:1\", upstream: \"127.0.0.1:2\"))])",
                "`Sctp` is not a relay's transport; write one of `Tcp`, `Tls` or `Udp`",
            ),
            (
                "(format: 1, endpoints: [(name: \"r\", kind: Relay(transport: Tcp, listen: \"127.0.0.1:1\", upstream: \"127.0.0.1:2\", impair: (up: (latensy: Some(\"5ms\")))))])",
                "there is no field `latensy` in the impairments of one direction",
            ),
            (
                &deep,
                "the brackets nest too deeply here for a session file",
            ),
        ];
        for (text, expected) in cases {
            let msg = decode(text, &p()).unwrap_err().to_string();
            assert!(msg.contains(expected), "{msg}");
            for internal in [
                "EndpointSpec",
                "EndpointKind",
                "SocketOptions",
                "Impairments",
                "Toxics",
                "RelayTransport",
                "Entry`",
                "enum `",
                "ron::",
                "serde",
            ] {
                assert!(!msg.contains(internal), "{internal} in {msg}");
            }
        }
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let s = decode("\u{feff}(format: 1, notes: \"n\")", &p()).unwrap();
        assert_eq!(s.notes, "n");
    }

    #[test]
    fn minimal_file() {
        let s = decode("(format: 1)", &p()).unwrap();
        assert!(s.endpoints.is_empty() && s.log.is_empty());
    }

    proptest! {
        #[test]
        fn any_payload_survives_save_and_load(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8),
            micros in 0i64..4_000_000_000_000_000,
        ) {
            let mut s = Session::default();
            let ep = s.log.endpoint_index("e");
            for (i, bytes) in payloads.iter().enumerate() {
                let dir = if i % 2 == 0 { Direction::Sent } else { Direction::Received };
                let kind = if dir == Direction::Sent { EntryKind::Sent } else { EntryKind::Received };
                s.log.push(at(micros + i as i64), ep, NO_PEER, kind, bytes);
            }
            let back = decode(&encode(&s), &p()).unwrap();
            prop_assert_eq!(back.log.len(), payloads.len());
            for (i, bytes) in payloads.iter().enumerate() {
                prop_assert_eq!(back.log.data(i), &bytes[..]);
                prop_assert_eq!(back.log.entry(i).unwrap().at_micros, micros + i as i64);
            }
        }
    }
}
