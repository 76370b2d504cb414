//! The traffic log store: every payload and lifecycle event of a session.
//!
//! Append-only. Each entry is a small fixed-size record (time, endpoint, peer,
//! kind, where its bytes are); the bytes of all entries live in large shared
//! chunks, so a million rows cost a million small records and a few big buffers,
//! not a million allocations. Filters are lists of entry indices that grow as
//! entries arrive ([`FilteredView`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

/// Bytes are appended to chunks of this size; a larger payload gets a chunk of its own.
const CHUNK_SIZE: usize = 1 << 20;

/// The direction of a payload, seen from our endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    /// We wrote it (`->`).
    Sent,
    /// We read it (`<-`).
    Received,
}

impl Direction {
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::Sent => "->",
            Direction::Received => "<-",
        }
    }
}

/// What kind of socket error happened, in the words a person can look up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// Nothing listens at the address: the peer answered with a reset.
    Refused,
    /// The connection was reset by the peer.
    Reset,
    /// No answer within the time allowed.
    TimedOut,
    /// No route to the host or network.
    Unreachable,
    /// The host name could not be resolved.
    NotResolved,
    /// The local address is taken by another socket.
    AddressInUse,
    /// The local address does not belong to this machine.
    AddressNotAvailable,
    /// The operating system refused (a port below 1024, a firewall, broadcast without permission).
    PermissionDenied,
    /// The connection was aborted locally.
    Aborted,
    /// Writing to a connection the peer has closed.
    BrokenPipe,
    /// A TLS handshake or record failed.
    Tls,
    /// Anything else; the message says what.
    Other,
}

impl ErrorKind {
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Refused => "connection refused",
            ErrorKind::Reset => "connection reset",
            ErrorKind::TimedOut => "timed out",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::NotResolved => "name not resolved",
            ErrorKind::AddressInUse => "address in use",
            ErrorKind::AddressNotAvailable => "address not available",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Aborted => "aborted",
            ErrorKind::BrokenPipe => "broken pipe",
            ErrorKind::Tls => "TLS failure",
            ErrorKind::Other => "error",
        }
    }

    /// True for the failures the command line reports with exit status 3.
    pub fn is_network_failure(self) -> bool {
        !matches!(self, ErrorKind::Other)
    }
}

/// What a log entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum EntryKind {
    /// A payload we wrote; the entry's bytes are the payload.
    Sent,
    /// A payload we read; the entry's bytes are the payload.
    Received,
    /// Looking up a host name. For this and every kind below, the entry's bytes
    /// are a UTF-8 detail line (addresses, the error message).
    Resolving,
    /// A TCP connect is under way.
    Connecting,
    /// A TCP connection is established (client side).
    Connected,
    /// A TCP server listens.
    Listening,
    /// A UDP socket is bound.
    Bound,
    /// A TCP server accepted a peer.
    Accepted,
    /// A TLS handshake finished; the detail says with what.
    TlsHandshake,
    /// The peer closed its side in order (FIN).
    PeerClosed,
    /// We shut down our sending side (half-close).
    HalfClosed,
    /// The peer reset the connection.
    Reset,
    /// A connection was closed by us.
    Closed,
    /// The endpoint stopped.
    Stopped,
    /// Something failed.
    Failed(ErrorKind),
    /// A remark added by sockbench itself (a replay check, a note).
    Note,
}

impl EntryKind {
    pub fn direction(self) -> Option<Direction> {
        match self {
            EntryKind::Sent => Some(Direction::Sent),
            EntryKind::Received => Some(Direction::Received),
            _ => None,
        }
    }

    pub fn is_traffic(self) -> bool {
        self.direction().is_some()
    }

    /// The word printed in the log's direction column.
    pub fn label(self) -> &'static str {
        match self {
            EntryKind::Sent => "->",
            EntryKind::Received => "<-",
            EntryKind::Resolving => "resolving",
            EntryKind::Connecting => "connecting",
            EntryKind::Connected => "connected",
            EntryKind::Listening => "listening",
            EntryKind::Bound => "bound",
            EntryKind::Accepted => "accepted",
            EntryKind::TlsHandshake => "tls",
            EntryKind::PeerClosed => "peer closed",
            EntryKind::HalfClosed => "half-closed",
            EntryKind::Reset => "reset",
            EntryKind::Closed => "closed",
            EntryKind::Stopped => "stopped",
            EntryKind::Failed(_) => "failed",
            EntryKind::Note => "note",
        }
    }

    /// The event's name as one word, so lines and table cells split on spaces.
    pub fn word(self) -> &'static str {
        match self {
            EntryKind::PeerClosed => "peer-closed",
            EntryKind::HalfClosed => "half-closed",
            EntryKind::TlsHandshake => "tls",
            other => other.label(),
        }
    }
}

/// The peer index meaning "no peer" (an endpoint-level event).
pub const NO_PEER: u32 = u32::MAX;

/// One row of the log, 32 bytes. Its bytes are found through [`TrafficLog::data`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Microseconds since the Unix epoch, UTC.
    pub at_micros: i64,
    /// Index into [`TrafficLog::endpoints`]. 32 bits: a file may name more
    /// than 65,536 endpoints, and a narrower index wrapped silently.
    pub endpoint: u32,
    pub kind: EntryKind,
    /// Index into [`TrafficLog::peers`], or [`NO_PEER`].
    pub peer: u32,
    chunk: u32,
    offset: u32,
    len: u32,
}

impl Entry {
    pub fn at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.at_micros).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn has_peer(&self) -> bool {
        self.peer != NO_PEER
    }
}

/// A peer some endpoint talked to: a connection of a TCP endpoint, or a remote
/// address of a UDP socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    /// Index into [`TrafficLog::endpoints`].
    pub endpoint: u32,
    /// The peer's number within its endpoint, as the engine gave it
    /// (a TCP client's one connection is 0, a server's peers count from 1).
    pub number: u32,
    /// The peer's address as text.
    pub remote: String,
}

/// The traffic log of a session.
#[derive(Clone, Debug, Default)]
pub struct TrafficLog {
    entries: Vec<Entry>,
    chunks: Vec<Vec<u8>>,
    endpoints: Vec<String>,
    /// Name → index into `endpoints`, so finding an endpoint costs the same
    /// for the 100,000th as for the first.
    endpoint_lookup: HashMap<String, u32>,
    peers: Vec<PeerRecord>,
    peer_lookup: HashMap<(u32, u32), u32>,
    /// Bumped by [`TrafficLog::clear`], so views know to start over.
    generation: u64,
}

impl TrafficLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entry(&self, index: usize) -> Option<&Entry> {
        self.entries.get(index)
    }

    /// The bytes of entry `index`: its payload, or for lifecycle events the detail line.
    pub fn data(&self, index: usize) -> &[u8] {
        match self.entries.get(index) {
            Some(e) => self.bytes_of(e),
            None => &[],
        }
    }

    /// The bytes an entry refers to.
    pub fn bytes_of(&self, e: &Entry) -> &[u8] {
        let chunk = &self.chunks[e.chunk as usize];
        &chunk[e.offset as usize..e.offset as usize + e.len as usize]
    }

    /// The detail line of a lifecycle entry (lossy for payload entries).
    pub fn detail(&self, index: usize) -> String {
        String::from_utf8_lossy(self.data(index)).into_owned()
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn endpoint_name(&self, e: &Entry) -> &str {
        self.endpoints
            .get(e.endpoint as usize)
            .map_or("?", String::as_str)
    }

    pub fn peers(&self) -> &[PeerRecord] {
        &self.peers
    }

    pub fn peer_of(&self, e: &Entry) -> Option<&PeerRecord> {
        self.peers.get(e.peer as usize)
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The endpoint index for `name`, added when new.
    pub fn endpoint_index(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.endpoint_lookup.get(name) {
            return i;
        }
        // Names live in memory (and sessions are at most 256 MiB), so the
        // count stays far below u32::MAX.
        let i = u32::try_from(self.endpoints.len()).unwrap_or(u32::MAX);
        self.endpoints.push(name.to_owned());
        self.endpoint_lookup.insert(name.to_owned(), i);
        i
    }

    /// The endpoint index for `name`, when the log knows it.
    pub fn find_endpoint(&self, name: &str) -> Option<u32> {
        self.endpoint_lookup.get(name).copied()
    }

    /// Gives an endpoint a new name in every row that names it.
    pub fn rename_endpoint(&mut self, old: &str, new: &str) {
        if self.endpoint_lookup.contains_key(new) {
            return;
        }
        if let Some(i) = self.endpoint_lookup.remove(old) {
            self.endpoints[i as usize] = new.to_owned();
            self.endpoint_lookup.insert(new.to_owned(), i);
        }
    }

    /// The peer index for peer `number` of `endpoint`, added when new. A known
    /// peer keeps its index; a new address replaces an empty one.
    pub fn peer_index(&mut self, endpoint: u32, number: u32, remote: &str) -> u32 {
        if let Some(&i) = self.peer_lookup.get(&(endpoint, number)) {
            let record = &mut self.peers[i as usize];
            if record.remote.is_empty() && !remote.is_empty() {
                record.remote = remote.to_owned();
            }
            return i;
        }
        let i = self.peers.len() as u32;
        self.peers.push(PeerRecord {
            endpoint,
            number,
            remote: remote.to_owned(),
        });
        self.peer_lookup.insert((endpoint, number), i);
        i
    }

    /// Starts a new run of `endpoint`: the engine numbers its peers from 1
    /// again, and those are new connections, so later rows get new peer
    /// records instead of joining the earlier run's peers with the same number.
    pub fn new_run(&mut self, endpoint: u32) {
        self.peer_lookup.retain(|(e, _), _| *e != endpoint);
    }

    /// The peer index of peer `number` of `endpoint`, when known.
    pub fn find_peer(&self, endpoint: u32, number: u32) -> Option<u32> {
        self.peer_lookup.get(&(endpoint, number)).copied()
    }

    /// Appends an entry and returns its index.
    pub fn push(
        &mut self,
        at: DateTime<Utc>,
        endpoint: u32,
        peer: u32,
        kind: EntryKind,
        data: &[u8],
    ) -> usize {
        let (chunk, offset) = self.store(data);
        self.entries.push(Entry {
            at_micros: at.timestamp_micros(),
            endpoint,
            kind,
            peer,
            chunk,
            offset,
            len: data.len() as u32,
        });
        self.entries.len() - 1
    }

    fn store(&mut self, data: &[u8]) -> (u32, u32) {
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= data.len());
        if !fits {
            // The previous chunk keeps its unused tail; a chunk never reallocates,
            // which keeps pushes cheap and the memory bounded by CHUNK_SIZE slack.
            self.chunks
                .push(Vec::with_capacity(CHUNK_SIZE.max(data.len())));
        }
        let index = self.chunks.len() - 1;
        let chunk = &mut self.chunks[index];
        let offset = chunk.len();
        chunk.extend_from_slice(data);
        (index as u32, offset as u32)
    }

    /// Removes every entry. Endpoint names stay (views keep their endpoint filter).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.chunks.clear();
        self.peers.clear();
        self.peer_lookup.clear();
        self.generation += 1;
    }

    /// Bytes held for entry data (for memory figures).
    pub fn data_bytes(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    /// Totals of payload entries: (sent count, sent bytes, received count, received bytes).
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for e in &self.entries {
            match e.kind {
                EntryKind::Sent => {
                    t.sent += 1;
                    t.sent_bytes += e.len as u64;
                }
                EntryKind::Received => {
                    t.received += 1;
                    t.received_bytes += e.len as u64;
                }
                _ => {}
            }
        }
        t
    }
}

/// Payload counts and byte counts in each direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub sent: u64,
    pub sent_bytes: u64,
    pub received: u64,
    pub received_bytes: u64,
}

impl Totals {
    pub fn add(&mut self, kind: EntryKind, len: usize) {
        match kind {
            EntryKind::Sent => {
                self.sent += 1;
                self.sent_bytes += len as u64;
            }
            EntryKind::Received => {
                self.received += 1;
                self.received_bytes += len as u64;
            }
            _ => {}
        }
    }
}

/// Which kinds of row a filter keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KindFilter {
    #[default]
    All,
    Sent,
    Received,
    /// Payloads in both directions, no lifecycle rows.
    Traffic,
    /// Lifecycle and error rows only.
    Events,
}

impl KindFilter {
    pub const ALL: [KindFilter; 5] = [
        KindFilter::All,
        KindFilter::Sent,
        KindFilter::Received,
        KindFilter::Traffic,
        KindFilter::Events,
    ];

    pub fn label(self) -> &'static str {
        match self {
            KindFilter::All => "all rows",
            KindFilter::Sent => "sent ->",
            KindFilter::Received => "received <-",
            KindFilter::Traffic => "payloads only",
            KindFilter::Events => "events only",
        }
    }

    fn keeps(self, kind: EntryKind) -> bool {
        match self {
            KindFilter::All => true,
            KindFilter::Sent => kind == EntryKind::Sent,
            KindFilter::Received => kind == EntryKind::Received,
            KindFilter::Traffic => kind.is_traffic(),
            KindFilter::Events => !kind.is_traffic(),
        }
    }
}

/// Which rows to show. Empty fields keep everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only rows of this endpoint name.
    pub endpoint: Option<String>,
    pub kinds: KindFilter,
    /// Only rows of this peer (endpoint name and peer number).
    pub peer: Option<(String, u32)>,
    /// Only rows whose bytes contain this sequence (a payload, or an event's detail).
    pub needle: Vec<u8>,
}

impl LogFilter {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The rows of a log that pass a filter, kept up to date incrementally: only
/// entries added since the last [`FilteredView::refresh`] are examined.
#[derive(Debug, Default)]
pub struct FilteredView {
    filter: LogFilter,
    indices: Vec<u32>,
    scanned: usize,
    generation: u64,
    /// The filter's names resolved against the log's tables (resolved lazily,
    /// because the endpoint may appear in the log after the filter was set).
    resolved_endpoint: Option<u32>,
    resolved_peer: Option<u32>,
    finder: Option<memchr::memmem::Finder<'static>>,
}

impl Clone for FilteredView {
    fn clone(&self) -> Self {
        let mut v = FilteredView::new(self.filter.clone());
        v.indices = self.indices.clone();
        v.scanned = self.scanned;
        v.generation = self.generation;
        v.resolved_endpoint = self.resolved_endpoint;
        v.resolved_peer = self.resolved_peer;
        v
    }
}

impl FilteredView {
    pub fn new(filter: LogFilter) -> Self {
        let finder = (!filter.needle.is_empty())
            .then(|| memchr::memmem::Finder::new(&filter.needle).into_owned());
        Self {
            filter,
            finder,
            ..Default::default()
        }
    }

    pub fn filter(&self) -> &LogFilter {
        &self.filter
    }

    /// Changes the filter; the next refresh rebuilds the list.
    pub fn set_filter(&mut self, filter: LogFilter) {
        if filter != self.filter {
            *self = FilteredView::new(filter);
        }
    }

    /// Brings the list up to date with `log`, examining at most `budget` new
    /// entries (so a huge log is filtered over several frames). Returns true when
    /// the view has caught up.
    pub fn refresh(&mut self, log: &TrafficLog, budget: usize) -> bool {
        if self.generation != log.generation() || self.scanned > log.len() {
            self.indices.clear();
            self.scanned = 0;
            self.generation = log.generation();
            self.resolved_endpoint = None;
            self.resolved_peer = None;
        }
        if let Some(name) = &self.filter.endpoint
            && self.resolved_endpoint.is_none()
        {
            self.resolved_endpoint = log.find_endpoint(name);
        }
        if let Some((name, number)) = &self.filter.peer
            && self.resolved_peer.is_none()
            && let Some(ep) = log.find_endpoint(name)
        {
            self.resolved_peer = log.find_peer(ep, *number);
        }
        let end = log.len().min(self.scanned.saturating_add(budget));
        for (i, e) in log.entries()[self.scanned..end].iter().enumerate() {
            if self.keeps(log, e) {
                self.indices.push((self.scanned + i) as u32);
            }
        }
        self.scanned = end;
        self.scanned == log.len()
    }

    fn keeps(&self, log: &TrafficLog, e: &Entry) -> bool {
        if !self.filter.kinds.keeps(e.kind) {
            return false;
        }
        if self.filter.endpoint.is_some() && self.resolved_endpoint != Some(e.endpoint) {
            return false;
        }
        if self.filter.peer.is_some() && self.resolved_peer != Some(e.peer) {
            return false;
        }
        match &self.finder {
            Some(f) => f.find(log.bytes_of(e)).is_some(),
            None => true,
        }
    }

    /// Entry indices of the rows that pass, in log order.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(micros: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(micros).unwrap()
    }

    fn sample() -> TrafficLog {
        let mut log = TrafficLog::new();
        let client = log.endpoint_index("client");
        let server = log.endpoint_index("server");
        let p0 = log.peer_index(client, 0, "127.0.0.1:7000");
        let p1 = log.peer_index(server, 1, "127.0.0.1:50000");
        log.push(t(1), client, p0, EntryKind::Connected, b"127.0.0.1:7000");
        log.push(t(2), client, p0, EntryKind::Sent, b"hello\n");
        log.push(t(3), server, p1, EntryKind::Received, b"hello\n");
        log.push(t(4), server, p1, EntryKind::Sent, b"HELLO\n");
        log.push(t(5), client, p0, EntryKind::Received, b"HELLO\n");
        log.push(
            t(6),
            client,
            NO_PEER,
            EntryKind::Failed(ErrorKind::Reset),
            b"reset",
        );
        log
    }

    #[test]
    fn a_new_run_gives_peers_of_the_same_number_new_records() {
        let mut log = sample();
        let server = log.endpoint_index("server");
        let first = log.peer_index(server, 1, "127.0.0.1:50000");
        assert_eq!(log.peer_index(server, 1, "127.0.0.1:50000"), first);
        log.new_run(server);
        let second = log.peer_index(server, 1, "127.0.0.1:50002");
        assert_ne!(second, first);
        assert_eq!(log.peers()[first as usize].remote, "127.0.0.1:50000");
        assert_eq!(log.peers()[second as usize].remote, "127.0.0.1:50002");
        // The other endpoint's peers are untouched.
        let client = log.endpoint_index("client");
        assert_eq!(log.find_peer(client, 0), Some(0));
    }

    #[test]
    fn rows_of_the_70000th_endpoint_stay_its_own() {
        // Before: u16 indices wrapped after 65,536 names, and the row of
        // endpoint 65,536 was shown as endpoint 0's.
        let mut log = TrafficLog::new();
        for i in 0..70_000u32 {
            let ep = log.endpoint_index(&format!("endpoint {i}"));
            assert_eq!(ep, i);
            log.push(t(i as i64), ep, NO_PEER, EntryKind::Note, &i.to_le_bytes());
        }
        assert_eq!(log.endpoints().len(), 70_000);
        for i in [0u32, 65_535, 65_536, 65_537, 69_999] {
            let e = log.entry(i as usize).unwrap();
            assert_eq!(log.endpoint_name(e), format!("endpoint {i}"));
            assert_eq!(log.data(i as usize), i.to_le_bytes());
        }
        assert_eq!(log.endpoint_index("endpoint 65536"), 65_536);
        assert_eq!(log.find_endpoint("endpoint 69999"), Some(69_999));
        let mut v = FilteredView::new(LogFilter {
            endpoint: Some("endpoint 65536".into()),
            ..Default::default()
        });
        v.refresh(&log, usize::MAX);
        assert_eq!(v.indices(), [65_536]);
    }

    #[test]
    fn renamed_endpoints_are_found_by_their_new_name() {
        let mut log = sample();
        log.rename_endpoint("server", "echo");
        assert_eq!(log.find_endpoint("server"), None);
        assert_eq!(log.find_endpoint("echo"), Some(1));
        assert_eq!(log.endpoint_name(log.entry(2).unwrap()), "echo");
        // A name already taken is not given twice.
        log.rename_endpoint("echo", "client");
        assert_eq!(log.find_endpoint("echo"), Some(1));
        assert_eq!(log.endpoint_index("server"), 2);
    }

    #[test]
    fn entries_are_small() {
        assert!(std::mem::size_of::<Entry>() <= 32);
    }

    #[test]
    fn push_and_read_back() {
        let log = sample();
        assert_eq!(log.len(), 6);
        assert_eq!(log.data(1), b"hello\n");
        assert_eq!(log.data(3), b"HELLO\n");
        assert_eq!(log.entry(2).unwrap().at_micros, 3);
        assert_eq!(log.endpoint_name(log.entry(2).unwrap()), "server");
        assert_eq!(
            log.peer_of(log.entry(2).unwrap()).unwrap().remote,
            "127.0.0.1:50000"
        );
        assert_eq!(log.detail(5), "reset");
        assert_eq!(
            log.totals(),
            Totals {
                sent: 2,
                sent_bytes: 12,
                received: 2,
                received_bytes: 12
            }
        );
    }

    #[test]
    fn bytes_share_chunks() {
        let mut log = TrafficLog::new();
        let ep = log.endpoint_index("e");
        for i in 0..10_000u32 {
            log.push(t(i as i64), ep, NO_PEER, EntryKind::Sent, &i.to_le_bytes());
        }
        assert_eq!(log.chunks.len(), 1);
        assert_eq!(log.data(9_999), 9_999u32.to_le_bytes());
        // A payload larger than a chunk gets its own and stays whole.
        let big = vec![7u8; CHUNK_SIZE + 10];
        let i = log.push(t(0), ep, NO_PEER, EntryKind::Received, &big);
        assert_eq!(log.data(i), &big[..]);
        assert_eq!(log.data(0), 0u32.to_le_bytes());
        assert_eq!(log.chunks.len(), 2);
    }

    #[test]
    fn filters() {
        let log = sample();
        let rows = |f: LogFilter| {
            let mut v = FilteredView::new(f);
            assert!(v.refresh(&log, usize::MAX));
            v.indices().to_vec()
        };
        assert_eq!(rows(LogFilter::default()), [0, 1, 2, 3, 4, 5]);
        assert_eq!(
            rows(LogFilter {
                endpoint: Some("server".into()),
                ..Default::default()
            }),
            [2, 3]
        );
        assert_eq!(
            rows(LogFilter {
                kinds: KindFilter::Received,
                ..Default::default()
            }),
            [2, 4]
        );
        assert_eq!(
            rows(LogFilter {
                kinds: KindFilter::Events,
                ..Default::default()
            }),
            [0, 5]
        );
        assert_eq!(
            rows(LogFilter {
                needle: b"HELLO".to_vec(),
                ..Default::default()
            }),
            [3, 4]
        );
        assert_eq!(
            rows(LogFilter {
                peer: Some(("server".into(), 1)),
                ..Default::default()
            }),
            [2, 3]
        );
        assert_eq!(
            rows(LogFilter {
                endpoint: Some("nobody".into()),
                ..Default::default()
            }),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn views_follow_appends_and_clears() {
        let mut log = sample();
        let mut v = FilteredView::new(LogFilter {
            kinds: KindFilter::Sent,
            ..Default::default()
        });
        // A budget splits the work over several refreshes.
        assert!(!v.refresh(&log, 2));
        assert!(v.refresh(&log, 100));
        assert_eq!(v.indices(), [1, 3]);
        let ep = log.endpoint_index("client");
        log.push(t(9), ep, NO_PEER, EntryKind::Sent, b"more");
        v.refresh(&log, 100);
        assert_eq!(v.indices(), [1, 3, 6]);
        log.clear();
        v.refresh(&log, 100);
        assert!(v.is_empty());
        log.push(t(10), ep, NO_PEER, EntryKind::Sent, b"again");
        v.refresh(&log, 100);
        assert_eq!(v.indices(), [0]);
    }

    #[test]
    fn endpoint_filter_set_before_endpoint_exists() {
        let mut log = TrafficLog::new();
        let mut v = FilteredView::new(LogFilter {
            endpoint: Some("late".into()),
            ..Default::default()
        });
        v.refresh(&log, 100);
        let ep = log.endpoint_index("late");
        log.push(t(1), ep, NO_PEER, EntryKind::Note, b"x");
        v.refresh(&log, 100);
        assert_eq!(v.indices(), [0]);
    }
}
