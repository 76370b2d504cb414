//! The traffic log store: every payload and lifecycle event of a session.
//!
//! Append-only. Each entry is a small fixed-size record (time, endpoint, peer,
//! kind, where its bytes are); the bytes of all entries live in large shared
//! chunks, so a million rows cost a million small records and a few big buffers,
//! not a million allocations. Filters are lists of entry indices that grow as
//! entries arrive ([`FilteredView`]).
//!
//! Payload bytes are kept in memory up to a [`LogBudget`]. Beyond it they are
//! spilled to a file on disk ([`super::spill`]) and read back through a
//! read-only mapping, or dropped: a dropped payload keeps its true length and
//! its first bytes (for its row's preview), and says it is not whole
//! ([`Entry::is_complete`]). Lifecycle details always stay in memory. Full
//! chunks are immutable and shared, so [`TrafficLog::snapshot`] costs the
//! entries and the chunks still being filled, not the bytes.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use super::budget::{LogBudget, Overflow};
use super::spill::SpillFile;

/// Bytes are appended to chunks of this size; a larger payload gets a chunk of its own.
const CHUNK_SIZE: usize = 1 << 20;
/// Spilled bytes collect in memory up to this size, then are written and mapped
/// as one segment (so memory holds at most the budget plus one segment).
const SPILL_SEGMENT: usize = 8 << 20;

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
    /// A payload we handed to the socket whose write then failed: it did not
    /// (all) go out. The entry's bytes are the payload. It was recorded as
    /// [`EntryKind::Sent`] when handed over (so it never follows the answer it
    /// provoked) and becomes `Unsent` when the failure arrives
    /// ([`TrafficLog::mark_unsent`]); totals, replays and exports never count
    /// it as sent.
    Unsent,
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

    /// Whether the entry's bytes are a payload (sent, received, or not sent),
    /// not a detail line.
    pub fn has_payload(self) -> bool {
        self.is_traffic() || self == EntryKind::Unsent
    }

    /// The word printed in the log's direction column.
    pub fn label(self) -> &'static str {
        match self {
            EntryKind::Sent => "->",
            EntryKind::Received => "<-",
            EntryKind::Unsent => "unsent",
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
    /// False when the payload's bytes beyond `kept` were dropped (over budget).
    complete: bool,
    /// For an incomplete entry, how many of its first bytes are kept.
    kept: u8,
    /// Index into [`TrafficLog::peers`], or [`NO_PEER`].
    pub peer: u32,
    chunk: u32,
    offset: u32,
    /// The payload's true length, kept or not.
    len: u32,
}

impl Entry {
    pub fn at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.at_micros).unwrap_or_default()
    }

    /// The payload's (or detail's) true length, whether all of it is kept or not.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether every byte of the entry is kept (in memory or in the spill
    /// file). An incomplete entry's bytes ([`TrafficLog::bytes_of`]) are only
    /// its first bytes: never compare, send or save them as the whole payload.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// How many bytes of the entry were dropped (0 when complete).
    pub fn dropped(&self) -> usize {
        if self.complete {
            0
        } else {
            self.len as usize - self.kept as usize
        }
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

/// Where a chunk's bytes are.
#[derive(Clone, Debug)]
enum Chunk {
    /// Being filled: the open memory chunk, or the spill segment still in memory.
    Open(Vec<u8>),
    /// Full, in memory, shared with snapshots.
    Memory(Arc<Vec<u8>>),
    /// Full, written to the spill file and mapped read-only.
    Mapped(Arc<memmap2::Mmap>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Open(v) => v,
            Chunk::Memory(v) => v,
            Chunk::Mapped(m) => m,
        }
    }

    /// Bytes this chunk holds in memory (a mapping is the file's, paged in on demand).
    fn in_memory(&self) -> usize {
        match self {
            Chunk::Open(v) => v.len(),
            Chunk::Memory(v) => v.len(),
            Chunk::Mapped(_) => 0,
        }
    }
}

/// What the budget did with the payload bytes of a log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogCounters {
    /// Payload bytes kept in memory within the budget.
    pub memory_bytes: u64,
    /// Payload bytes written (or about to be written) to the spill file, and their entries.
    pub spilled_bytes: u64,
    pub spilled_entries: u64,
    /// Payload bytes not kept at all, and the entries that lost bytes.
    pub dropped_bytes: u64,
    pub dropped_entries: u64,
    /// First bytes of dropped payloads kept for their previews.
    pub preview_bytes: u64,
}

/// The traffic log of a session.
#[derive(Clone, Debug, Default)]
pub struct TrafficLog {
    entries: Vec<Entry>,
    chunks: Vec<Chunk>,
    /// The chunk being filled with bytes kept in memory.
    open_memory: Option<u32>,
    /// The spill segment being filled (in memory until full).
    open_spill: Option<u32>,
    budget: LogBudget,
    counters: LogCounters,
    /// Made at the first spill; shared with snapshots.
    spill: Option<Arc<SpillFile>>,
    /// Why spilling stopped (no cache folder, a full disk): bytes are dropped since.
    spill_error: Option<String>,
    /// Where the spill file goes, when not the usual cache folders.
    spill_folders: Option<Arc<[std::path::PathBuf]>>,
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
    /// A log with the default budget (256 MiB in memory, the rest spilled).
    pub fn new() -> Self {
        Self::default()
    }

    /// A log with `budget`.
    pub fn with_budget(budget: LogBudget) -> Self {
        TrafficLog {
            budget,
            ..Self::default()
        }
    }

    /// Makes the spill file in the first of `folders` that takes one,
    /// instead of the usual cache folders ([`super::spill::cache_folders`]).
    pub fn spill_in(mut self, folders: Vec<std::path::PathBuf>) -> Self {
        self.spill_folders = Some(folders.into());
        self
    }

    pub fn budget(&self) -> LogBudget {
        self.budget
    }

    /// Changes the budget for the payloads that arrive from now on (bytes
    /// already kept stay where they are).
    pub fn set_budget(&mut self, budget: LogBudget) {
        self.budget = budget;
    }

    /// What the budget did so far: bytes in memory, spilled, dropped.
    pub fn counters(&self) -> LogCounters {
        self.counters
    }

    /// Why spilling stopped, when it did (payloads are dropped since).
    pub fn spill_error(&self) -> Option<&str> {
        self.spill_error.as_deref()
    }

    /// A copy to read on another thread (a background autosave): it shares
    /// the full chunks and the spill file, and copies only the entries and
    /// the chunks still being filled (at most a few MiB), never the payloads.
    pub fn snapshot(&self) -> TrafficLog {
        self.clone()
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

    /// The bytes an entry refers to: all of them, or for an incomplete entry
    /// (see [`Entry::is_complete`]) the first bytes kept for its preview.
    /// Spilled bytes are read from the spill file's mapping.
    pub fn bytes_of(&self, e: &Entry) -> &[u8] {
        let stored = if e.complete {
            e.len as usize
        } else {
            e.kept as usize
        };
        self.chunks
            .get(e.chunk as usize)
            .and_then(|c| c.bytes().get(e.offset as usize..e.offset as usize + stored))
            .unwrap_or_default()
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

    /// Numbers the endpoints so that `first` (a session's endpoints, in its
    /// order) come first, added when new, and the others follow in their
    /// order. Costs one pass over the entries when the order changes.
    pub fn order_endpoints<'a>(&mut self, first: impl IntoIterator<Item = &'a str>) {
        let first: Vec<u32> = first.into_iter().map(|n| self.endpoint_index(n)).collect();
        let mut order: Vec<u32> = Vec::with_capacity(self.endpoints.len());
        let mut placed = vec![false; self.endpoints.len()];
        for i in first.into_iter().chain(0..self.endpoints.len() as u32) {
            if !std::mem::replace(&mut placed[i as usize], true) {
                order.push(i);
            }
        }
        if order
            .iter()
            .enumerate()
            .all(|(new, &old)| new as u32 == old)
        {
            return;
        }
        let mut renumber = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            renumber[old as usize] = new as u32;
        }
        let mut names: Vec<Option<String>> = self.endpoints.drain(..).map(Some).collect();
        self.endpoints = order
            .iter()
            .map(|&old| names[old as usize].take().unwrap_or_default())
            .collect();
        for index in self.endpoint_lookup.values_mut() {
            *index = renumber[*index as usize];
        }
        for e in &mut self.entries {
            e.endpoint = renumber
                .get(e.endpoint as usize)
                .copied()
                .unwrap_or(e.endpoint);
        }
        for p in &mut self.peers {
            p.endpoint = renumber[p.endpoint as usize];
        }
        self.peer_lookup = self
            .peer_lookup
            .drain()
            .map(|((ep, n), i)| ((renumber[ep as usize], n), i))
            .collect();
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

    /// Marks the latest [`EntryKind::Sent`] row of `endpoint`'s `peer` before
    /// row `before` as [`EntryKind::Unsent`]: its write failed. Looks back at
    /// most 4096 rows (the write is reported just before its failure); returns
    /// the row marked. A filtered view that already lists the row keeps it
    /// (the row then reads as not sent).
    pub fn mark_unsent(&mut self, endpoint: u32, peer: u32, before: usize) -> Option<usize> {
        let end = before.min(self.entries.len());
        let start = end.saturating_sub(4096);
        let index = (start..end).rev().find(|&i| {
            let e = &self.entries[i];
            e.endpoint == endpoint && e.peer == peer && e.kind == EntryKind::Sent
        })?;
        self.entries[index].kind = EntryKind::Unsent;
        Some(index)
    }

    /// Appends an entry and returns its index. A payload is kept in memory
    /// within the budget; beyond it, spilled or dropped as the budget says.
    pub fn push(
        &mut self,
        at: DateTime<Utc>,
        endpoint: u32,
        peer: u32,
        kind: EntryKind,
        data: &[u8],
    ) -> usize {
        self.push_kept(at, endpoint, peer, kind, data, 0)
    }

    /// Appends an entry of which only the first bytes, `kept`, are known and
    /// `dropped` more bytes were not kept (a session file's `dropped: N`).
    /// With `dropped` 0 this is [`TrafficLog::push`].
    pub fn push_kept(
        &mut self,
        at: DateTime<Utc>,
        endpoint: u32,
        peer: u32,
        kind: EntryKind,
        kept: &[u8],
        dropped: u64,
    ) -> usize {
        // One read or one datagram is far below 4 GiB; a longer payload (from a
        // crafted file) keeps what fits and counts the rest as dropped.
        let whole = (kept.len() as u64).saturating_add(dropped);
        let len = u32::try_from(whole).unwrap_or(u32::MAX);
        let (chunk, offset, complete, kept_len) = if dropped > 0 || whole > u32::MAX as u64 {
            self.drop_payload(kept, whole)
        } else if !kind.has_payload() {
            let (c, o) = self.store_in_memory(kept);
            (c, o, true, 0)
        } else {
            self.store_payload(kept)
        };
        self.entries.push(Entry {
            at_micros: at.timestamp_micros(),
            endpoint,
            kind,
            complete,
            kept: kept_len,
            peer,
            chunk,
            offset,
            len,
        });
        self.entries.len() - 1
    }

    /// Stores a whole payload under the budget: (chunk, offset, complete, kept).
    fn store_payload(&mut self, data: &[u8]) -> (u32, u32, bool, u8) {
        let n = data.len() as u64;
        if self.counters.memory_bytes.saturating_add(n) <= self.budget.memory {
            self.counters.memory_bytes += n;
            let (c, o) = self.store_in_memory(data);
            return (c, o, true, 0);
        }
        if self.budget.overflow == Overflow::Spill
            && self.spill_error.is_none()
            && let Some((c, o)) = self.store_spilled(data)
        {
            self.counters.spilled_bytes += n;
            self.counters.spilled_entries += 1;
            return (c, o, true, 0);
        }
        self.drop_payload(data, n)
    }

    /// Keeps the first bytes of a payload of `whole` bytes for its preview.
    fn drop_payload(&mut self, data: &[u8], whole: u64) -> (u32, u32, bool, u8) {
        let keep = data.len().min(self.budget.preview as usize);
        let (c, o) = self.store_in_memory(&data[..keep]);
        self.counters.preview_bytes += keep as u64;
        if keep as u64 == whole {
            // A payload no longer than a preview is kept whole.
            return (c, o, true, 0);
        }
        self.counters.dropped_bytes += whole - keep as u64;
        self.counters.dropped_entries += 1;
        (c, o, false, keep as u8)
    }

    fn store_in_memory(&mut self, data: &[u8]) -> (u32, u32) {
        let open = self
            .open_memory
            .and_then(|i| match &self.chunks[i as usize] {
                Chunk::Open(v) if v.capacity() - v.len() >= data.len() => Some(i),
                _ => None,
            });
        let index = match open {
            Some(i) => i,
            None => {
                // The previous chunk keeps its unused tail and becomes shared; a
                // chunk never reallocates, which keeps pushes cheap and the
                // memory bounded by CHUNK_SIZE slack.
                self.freeze(self.open_memory);
                self.chunks
                    .push(Chunk::Open(Vec::with_capacity(CHUNK_SIZE.max(data.len()))));
                let i = (self.chunks.len() - 1) as u32;
                self.open_memory = Some(i);
                i
            }
        };
        let Chunk::Open(chunk) = &mut self.chunks[index as usize] else {
            unreachable!("the open chunk is open")
        };
        let offset = chunk.len();
        chunk.extend_from_slice(data);
        (index, offset as u32)
    }

    /// Puts a payload in the spill segment being filled; `None` when there is
    /// no spill file to be had (the reason is kept in `spill_error`).
    fn store_spilled(&mut self, data: &[u8]) -> Option<(u32, u32)> {
        let open = self
            .open_spill
            .and_then(|i| match &self.chunks[i as usize] {
                Chunk::Open(v) if v.capacity() - v.len() >= data.len() => Some(i),
                _ => None,
            });
        let index = match open {
            Some(i) => i,
            None => {
                if self.spill.is_none() {
                    let made = match &self.spill_folders {
                        Some(folders) => SpillFile::create_in(folders),
                        None => SpillFile::create(),
                    };
                    match made {
                        Ok(file) => self.spill = Some(Arc::new(file)),
                        Err(e) => {
                            self.spill_error = Some(format!("cannot make a spill file: {e}"));
                            return None;
                        }
                    }
                }
                self.write_spill_segment();
                self.chunks.push(Chunk::Open(Vec::with_capacity(
                    SPILL_SEGMENT.max(data.len()),
                )));
                let i = (self.chunks.len() - 1) as u32;
                self.open_spill = Some(i);
                i
            }
        };
        let Chunk::Open(chunk) = &mut self.chunks[index as usize] else {
            unreachable!("the open segment is open")
        };
        let offset = chunk.len();
        chunk.extend_from_slice(data);
        Some((index, offset as u32))
    }

    /// Writes the spill segment being filled to the spill file and maps it.
    /// When the write fails (a full disk), its bytes stay in memory, counted
    /// as kept there, and later payloads beyond the budget are dropped.
    fn write_spill_segment(&mut self) {
        let Some(index) = self.open_spill.take() else {
            return;
        };
        let slot = &mut self.chunks[index as usize];
        let Chunk::Open(bytes) = std::mem::replace(slot, Chunk::Open(Vec::new())) else {
            return;
        };
        if bytes.is_empty() {
            *slot = Chunk::Memory(Arc::new(bytes));
            return;
        }
        let written = match &self.spill {
            Some(file) => file.append(&bytes),
            None => Err(std::io::Error::other("no spill file")),
        };
        *slot = match written {
            Ok(map) => Chunk::Mapped(Arc::new(map)),
            Err(e) => {
                self.spill_error = Some(format!("cannot write the spill file: {e}"));
                self.counters.spilled_bytes -= bytes.len() as u64;
                self.counters.memory_bytes += bytes.len() as u64;
                Chunk::Memory(Arc::new(bytes))
            }
        };
    }

    /// Makes an open memory chunk shared and immutable.
    fn freeze(&mut self, index: Option<u32>) {
        let Some(i) = index else { return };
        if let Some(slot) = self.chunks.get_mut(i as usize)
            && let Chunk::Open(v) = slot
        {
            *slot = Chunk::Memory(Arc::new(std::mem::take(v)));
        }
        if self.open_memory == Some(i) {
            self.open_memory = None;
        }
    }

    /// Removes every entry. Endpoint names stay (views keep their endpoint filter).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.chunks.clear();
        self.open_memory = None;
        self.open_spill = None;
        self.counters = LogCounters::default();
        // Snapshots keep their share of the old file; this log starts a new one.
        self.spill = None;
        self.spill_error = None;
        self.peers.clear();
        self.peer_lookup.clear();
        self.generation += 1;
    }

    /// Bytes held in memory for entry data (for memory figures); spilled
    /// bytes are the file's and not counted.
    pub fn data_bytes(&self) -> usize {
        self.chunks.iter().map(Chunk::in_memory).sum()
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
    /// ASCII letters of `needle` match either case (`host` finds `Host:`).
    pub ignore_case: bool,
}

impl LogFilter {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Whether `hay` holds `needle` with ASCII letters compared in either case.
/// Candidates are found with memchr on the first byte's two cases, so a long
/// payload costs about what a case-sensitive search does.
pub fn contains_ignore_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else {
        return true;
    };
    if hay.len() < needle.len() {
        return false;
    }
    let last_start = hay.len() - needle.len();
    let head = &hay[..=last_start];
    memchr::memchr2_iter(first.to_ascii_lowercase(), first.to_ascii_uppercase(), head)
        .any(|i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
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
        let finder = (!filter.needle.is_empty() && !filter.ignore_case)
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
            _ if self.filter.needle.is_empty() => true,
            _ if self.filter.ignore_case => {
                contains_ignore_ascii_case(log.bytes_of(e), &self.filter.needle)
            }
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

    #[test]
    fn either_case_search_finds_ascii_letters_only_in_either_case() {
        assert!(contains_ignore_ascii_case(
            b"GET / HTTP/1.1\r\nHost: x",
            b"host:"
        ));
        assert!(contains_ignore_ascii_case(b"abc", b""));
        assert!(contains_ignore_ascii_case(b"xxABC", b"abc"));
        assert!(!contains_ignore_ascii_case(b"ab", b"abc"));
        // Bytes that are not letters compare exactly: '[' is not '{'.
        assert!(!contains_ignore_ascii_case(b"a[", b"a{"));
        assert!(contains_ignore_ascii_case(b"\x00\x01\xffA", b"\xffa"));
    }

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
    fn endpoints_are_put_in_a_given_order() {
        let mut log = sample();
        log.order_endpoints(["server", "third", "client"]);
        assert_eq!(log.endpoints(), ["server", "third", "client"]);
        assert_eq!(log.endpoint_name(log.entry(0).unwrap()), "client");
        assert_eq!(log.endpoint_name(log.entry(2).unwrap()), "server");
        assert_eq!(log.find_endpoint("client"), Some(2));
        let server = log.find_endpoint("server").unwrap();
        assert_eq!(
            log.peers()[log.find_peer(server, 1).unwrap() as usize].endpoint,
            0
        );
        assert_eq!(
            log.peer_of(log.entry(2).unwrap()).unwrap().remote,
            "127.0.0.1:50000"
        );
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

    fn payload(i: u32, len: usize) -> Vec<u8> {
        (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
    }

    #[test]
    fn payloads_beyond_the_budget_spill_and_read_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = TrafficLog::with_budget(LogBudget::new(10_000, Overflow::Spill))
            .spill_in(vec![dir.path().to_owned()]);
        let ep = log.endpoint_index("e");
        // 3 × 8 MiB segments and some: the first segments are written and mapped.
        let sizes = [
            4_000usize,
            5_000,
            3_000,
            1 << 20,
            100,
            0,
            9 << 20,
            7 << 20,
            50,
        ];
        for (i, &n) in sizes.iter().enumerate() {
            log.push(
                t(i as i64),
                ep,
                NO_PEER,
                EntryKind::Received,
                &payload(i as u32, n),
            );
            log.push(t(i as i64), ep, NO_PEER, EntryKind::Note, b"detail");
        }
        for (i, &n) in sizes.iter().enumerate() {
            let e = log.entry(2 * i).unwrap();
            assert_eq!(e.len(), n);
            assert!(e.is_complete());
            assert_eq!(log.bytes_of(e), &payload(i as u32, n)[..], "payload {i}");
            assert_eq!(log.data(2 * i + 1), b"detail");
        }
        let c = log.counters();
        // A payload that does not fit spills; later ones that fit stay.
        assert_eq!(c.memory_bytes, 9_000 + 100 + 50);
        let spilled: u64 = 3_000 + (1 << 20) + (9 << 20) + (7 << 20);
        assert_eq!(c.spilled_bytes, spilled);
        assert_eq!(c.spilled_entries, 4);
        assert_eq!((c.dropped_bytes, c.dropped_entries), (0, 0));
        assert!(log.chunks.iter().any(|c| matches!(c, Chunk::Mapped(_))));
        // Mapped bytes are the file's, not memory's.
        assert!(log.data_bytes() < 9 << 20, "{}", log.data_bytes());
        assert_eq!(log.totals().received_bytes, 9_150 + spilled);
        // No file is left with a name in the spill folder.
        #[cfg(unix)]
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn dropped_payloads_keep_their_length_and_preview_and_say_so() {
        let mut log = TrafficLog::with_budget(LogBudget::new(100, Overflow::Drop));
        let ep = log.endpoint_index("e");
        let big = payload(1, 1000);
        log.push(t(0), ep, NO_PEER, EntryKind::Sent, &payload(0, 100));
        log.push(t(1), ep, NO_PEER, EntryKind::Received, &big);
        log.push(t(2), ep, NO_PEER, EntryKind::Received, b"short");
        log.push(t(3), ep, NO_PEER, EntryKind::Closed, &[b'x'; 500]);
        let e = log.entry(1).unwrap();
        assert!(!e.is_complete());
        assert_eq!(e.len(), 1000);
        assert_eq!(e.dropped(), 1000 - PREVIEW as usize);
        assert_eq!(log.bytes_of(e), &big[..PREVIEW as usize]);
        // Within the budget, or no longer than a preview: whole.
        assert!(log.entry(0).unwrap().is_complete());
        assert!(log.entry(2).unwrap().is_complete());
        assert_eq!(log.data(2), b"short");
        // Details are never dropped.
        assert_eq!(log.data(3).len(), 500);
        let c = log.counters();
        assert_eq!(c.memory_bytes, 100);
        assert_eq!(c.preview_bytes, PREVIEW as u64 + 5);
        assert_eq!(
            (c.dropped_bytes, c.dropped_entries),
            (1000 - PREVIEW as u64, 1)
        );
        assert_eq!(c.spilled_bytes, 0);
        assert_eq!(log.totals().received_bytes, 1005);
    }

    const PREVIEW: u8 = super::super::budget::PREVIEW_BYTES;

    #[test]
    fn counts_only_keeps_no_payload_bytes() {
        let mut log = TrafficLog::with_budget(LogBudget::counts_only());
        let ep = log.endpoint_index("e");
        for i in 0..100 {
            log.push(t(i), ep, NO_PEER, EntryKind::Received, &[1; 64]);
        }
        assert_eq!(log.len(), 100);
        assert_eq!(log.data_bytes(), 0);
        assert!(log.data(5).is_empty() && !log.entry(5).unwrap().is_complete());
        let c = log.counters();
        assert_eq!((c.dropped_bytes, c.dropped_entries), (6_400, 100));
        assert_eq!(log.totals().received_bytes, 6_400);
    }

    #[test]
    fn a_spill_folder_that_cannot_be_used_drops_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, "x").unwrap();
        let mut log =
            TrafficLog::with_budget(LogBudget::new(0, Overflow::Spill)).spill_in(vec![blocked]);
        let ep = log.endpoint_index("e");
        log.push(t(0), ep, NO_PEER, EntryKind::Received, &[1; 1000]);
        assert!(!log.entry(0).unwrap().is_complete());
        assert_eq!(log.counters().dropped_entries, 1);
        assert!(
            log.spill_error()
                .unwrap()
                .starts_with("cannot make a spill file"),
            "{:?}",
            log.spill_error()
        );
    }

    #[test]
    fn snapshots_share_full_chunks_and_stay_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = TrafficLog::with_budget(LogBudget::new(3 << 20, Overflow::Spill))
            .spill_in(vec![dir.path().to_owned()]);
        let ep = log.endpoint_index("e");
        for i in 0..40u32 {
            log.push(
                t(i as i64),
                ep,
                NO_PEER,
                EntryKind::Received,
                &payload(i, 500_000),
            );
        }
        let snapshot = log.snapshot();
        let shared = |a: &Chunk, b: &Chunk| match (a, b) {
            (Chunk::Memory(x), Chunk::Memory(y)) => Arc::ptr_eq(x, y),
            (Chunk::Mapped(x), Chunk::Mapped(y)) => Arc::ptr_eq(x, y),
            _ => false,
        };
        let full = log
            .chunks
            .iter()
            .filter(|c| !matches!(c, Chunk::Open(_)))
            .count();
        assert!(full >= 3, "{full}");
        let same = log
            .chunks
            .iter()
            .zip(&snapshot.chunks)
            .filter(|(a, b)| shared(a, b))
            .count();
        assert_eq!(same, full);
        // Both go on independently: the snapshot keeps what it saw.
        for i in 40..60u32 {
            log.push(
                t(i as i64),
                ep,
                NO_PEER,
                EntryKind::Received,
                &payload(i, 500_000),
            );
        }
        assert_eq!(snapshot.len(), 40);
        for i in 0..60u32 {
            assert_eq!(log.data(i as usize), &payload(i, 500_000)[..]);
        }
        for i in 0..40u32 {
            assert_eq!(snapshot.data(i as usize), &payload(i, 500_000)[..]);
        }
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
        // Either case, when asked: both directions of the echo.
        assert_eq!(
            rows(LogFilter {
                needle: b"HeLLo".to_vec(),
                ignore_case: true,
                ..Default::default()
            }),
            [1, 2, 3, 4]
        );
        assert!(
            rows(LogFilter {
                needle: b"HeLLo".to_vec(),
                ..Default::default()
            })
            .is_empty()
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
