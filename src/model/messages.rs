//! The log's received reads cut into messages, for the log view's "one row
//! per message": each endpoint with a receive framing has its reads fed,
//! connection by connection, through the same [`Deframer`] its rules use.
//!
//! Built incrementally (only entries added since the last refresh are read,
//! at most a budget of them per call) and bounded: a message keeps its first
//! [`MESSAGE_PREVIEW`] bytes, and at most [`MAX_MESSAGES`] messages are kept.

use std::collections::HashMap;

use super::framing::{DEFAULT_MAX_MESSAGE, Deframer, Message, ReceiveFraming};
use super::log::{EntryKind, TrafficLog};

/// The bytes of a message kept for its row (the row says the whole length).
pub const MESSAGE_PREVIEW: usize = 256;

/// The most messages indexed; later ones are counted, not kept.
pub const MAX_MESSAGES: usize = 2_000_000;

/// One message cut from a connection's received reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRow {
    /// The read (log entry) that completed the message: its row stands there.
    pub entry: u32,
    /// The read the message began in (earlier than `entry` when it was split).
    pub first: u32,
    /// The message's length (without delimiter or length prefix).
    pub len: u64,
    /// Its first [`MESSAGE_PREVIEW`] bytes.
    pub preview: Box<[u8]>,
}

/// One connection's stream being cut.
struct Stream {
    deframer: Deframer,
    /// Where the unfinished message began.
    start: Option<u32>,
}

/// Messages of the received reads of the endpoints that have a framing.
#[derive(Default)]
pub struct MessageIndex {
    /// The framing of each endpoint by name, as last given.
    framings: Vec<(String, ReceiveFraming)>,
    /// The same, by the log's endpoint index (resolved as names appear).
    by_endpoint: Vec<Option<ReceiveFraming>>,
    streams: HashMap<(u32, u32), Stream>,
    messages: Vec<MessageRow>,
    scanned: usize,
    generation: u64,
    /// Messages not kept beyond [`MAX_MESSAGES`].
    pub skipped: u64,
    out: Vec<Message>,
}

impl MessageIndex {
    /// Sets the endpoints' framings (by name; raw ones are left out); a
    /// change starts the index over.
    /// Returns true when it started over.
    pub fn set_framings(&mut self, mut framings: Vec<(String, ReceiveFraming)>) -> bool {
        framings.retain(|(_, f)| !f.is_raw());
        if framings == self.framings {
            return false;
        }
        *self = MessageIndex {
            framings,
            ..MessageIndex::default()
        };
        true
    }

    /// Whether any endpoint cuts its reads into messages.
    pub fn is_active(&self) -> bool {
        !self.framings.is_empty()
    }

    /// Whether entry `index`'s reads are shown as messages (a received read
    /// of an endpoint with a framing).
    pub fn frames(&self, log: &TrafficLog, index: usize) -> bool {
        log.entry(index).is_some_and(|e| {
            e.kind == EntryKind::Received
                && matches!(self.by_endpoint.get(e.endpoint as usize), Some(Some(_)))
        })
    }

    /// Entries read so far: rows up to here are final.
    pub fn scanned(&self) -> usize {
        self.scanned
    }

    /// Reads at most `budget` entries added since the last call; true when
    /// the index has caught up with the log.
    pub fn refresh(&mut self, log: &TrafficLog, budget: usize) -> bool {
        if self.generation != log.generation() || self.scanned > log.len() {
            let framings = std::mem::take(&mut self.framings);
            *self = MessageIndex {
                framings,
                generation: log.generation(),
                ..MessageIndex::default()
            };
        }
        if self.framings.is_empty() {
            self.scanned = log.len();
            return true;
        }
        if self.by_endpoint.len() < log.endpoints().len() {
            self.by_endpoint = log
                .endpoints()
                .iter()
                .map(|name| {
                    self.framings
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, f)| f.clone())
                })
                .collect();
        }
        let end = log.len().min(self.scanned.saturating_add(budget));
        let mut read_spilled = false;
        for index in self.scanned..end {
            if !self.frames(log, index) {
                // A closed connection's unfinished message will never end.
                if let Some(e) = log.entry(index)
                    && matches!(e.kind, EntryKind::Closed | EntryKind::Reset)
                {
                    self.streams.remove(&(e.endpoint, e.peer));
                }
                continue;
            }
            let Some(e) = log.entry(index) else { continue };
            let Some(Some(framing)) = self.by_endpoint.get(e.endpoint as usize) else {
                continue;
            };
            let at = index as u32;
            let stream = self
                .streams
                .entry((e.endpoint, e.peer))
                .or_insert_with(|| Stream {
                    deframer: Deframer::new(framing.clone(), DEFAULT_MAX_MESSAGE),
                    start: None,
                });
            if !e.is_complete() {
                // Bytes of this read were dropped by the budget: the stream
                // cannot be cut across the gap, so it starts over after it.
                stream.deframer = Deframer::new(framing.clone(), DEFAULT_MAX_MESSAGE);
                stream.start = None;
                continue;
            }
            read_spilled |= !log.bytes_of(e).is_empty();
            let began = stream.start.unwrap_or(at);
            stream.deframer.push(log.bytes_of(e), &mut self.out);
            let produced = !self.out.is_empty();
            for (i, message) in self.out.drain(..).enumerate() {
                if self.messages.len() >= MAX_MESSAGES {
                    self.skipped += 1;
                    continue;
                }
                let len = message.cut_from.unwrap_or(message.bytes.len() as u64);
                let keep = message.bytes.len().min(MESSAGE_PREVIEW);
                self.messages.push(MessageRow {
                    entry: at,
                    first: if i == 0 { began } else { at },
                    len,
                    preview: message.bytes[..keep].into(),
                });
            }
            stream.start = if stream.deframer.buffered() > 0 {
                Some(if produced { at } else { began })
            } else {
                None
            };
        }
        self.scanned = end;
        if read_spilled {
            log.release_spilled_pages();
        }
        self.scanned == log.len()
    }

    /// The messages completed by entry `index`, in order.
    pub fn of_entry(&self, index: u32) -> &[MessageRow] {
        &self.messages[self.range_of_entry(index)]
    }

    /// Where the messages completed by entry `index` are in [`MessageIndex::messages`].
    pub fn range_of_entry(&self, index: u32) -> std::ops::Range<usize> {
        let from = self.messages.partition_point(|m| m.entry < index);
        let to = from + self.messages[from..].partition_point(|m| m.entry <= index);
        from..to
    }

    /// Every message kept, in log order.
    pub fn messages(&self) -> &[MessageRow] {
        &self.messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::log::NO_PEER;

    fn log_of(reads: &[(&str, u32, &[u8])]) -> TrafficLog {
        let mut log = TrafficLog::new();
        let at = chrono::Utc::now();
        for (endpoint, peer, bytes) in reads {
            let ep = log.endpoint_index(endpoint);
            let p = log.peer_index(ep, *peer, "127.0.0.1:9");
            log.push(at, ep, p, EntryKind::Received, bytes);
        }
        log
    }

    fn texts(rows: &[MessageRow]) -> Vec<(u32, u32, String)> {
        rows.iter()
            .map(|m| {
                (
                    m.first,
                    m.entry,
                    String::from_utf8_lossy(&m.preview).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_split_message_is_one_row_and_a_read_of_three_lines_is_three() {
        let log = log_of(&[
            ("server", 1, b"hel"),
            ("server", 1, b"lo\n"),
            ("server", 1, b"a\nb\r\nc\nrest"),
            ("server", 1, b"!\n"),
        ]);
        let mut index = MessageIndex::default();
        index.set_framings(vec![("server".into(), ReceiveFraming::Line)]);
        assert!(index.refresh(&log, 100));
        assert_eq!(
            texts(index.messages()),
            [
                (0, 1, "hello".into()),
                (2, 2, "a".into()),
                (2, 2, "b".into()),
                (2, 2, "c".into()),
                (2, 3, "rest!".into()),
            ]
        );
        assert!(
            index.of_entry(0).is_empty(),
            "the first half ends no message"
        );
        assert_eq!(index.of_entry(2).len(), 3);
    }

    #[test]
    fn connections_and_endpoints_are_cut_apart_and_raw_ones_not_at_all() {
        let log = log_of(&[
            ("server", 1, b"one from 1 "),
            ("server", 2, b"two\n"),
            ("other", 1, b"x\ny\n"),
            ("server", 1, b"done\n"),
        ]);
        let mut index = MessageIndex::default();
        index.set_framings(vec![
            ("server".into(), ReceiveFraming::Line),
            ("other".into(), ReceiveFraming::Raw),
        ]);
        index.refresh(&log, 100);
        assert_eq!(
            texts(index.messages()),
            [(1, 1, "two".into()), (0, 3, "one from 1 done".into())]
        );
        assert!(!index.frames(&log, 2), "a raw endpoint's reads stay reads");
    }

    #[test]
    fn the_index_grows_with_the_log_within_its_budget_and_starts_over_when_cleared() {
        let mut log = log_of(&[("s", 1, b"\x00\x02hi\x00")]);
        let mut index = MessageIndex::default();
        index.set_framings(vec![(
            "s".into(),
            ReceiveFraming::parse("len:2be").unwrap(),
        )]);
        index.refresh(&log, 100);
        assert_eq!(texts(index.messages()), [(0, 0, "hi".into())]);
        let ep = log.find_endpoint("s").unwrap();
        let p = log.find_peer(ep, 1).unwrap();
        for _ in 0..10 {
            log.push(chrono::Utc::now(), ep, p, EntryKind::Received, b"\x01x\x00");
        }
        assert!(!index.refresh(&log, 4), "four entries a call");
        assert_eq!(index.scanned(), 5);
        while !index.refresh(&log, 4) {}
        assert_eq!(index.messages().len(), 11);
        assert!(index.messages()[1..].iter().all(|m| &m.preview[..] == b"x"));
        log.push(chrono::Utc::now(), ep, NO_PEER, EntryKind::Note, b"note");
        index.refresh(&log, 100);
        assert_eq!(index.messages().len(), 11, "notes are not messages");
        log.clear();
        index.refresh(&log, 100);
        assert!(index.messages().is_empty());
    }

    #[test]
    fn a_closed_connection_forgets_its_unfinished_message() {
        let mut log = log_of(&[("s", 1, b"no end yet")]);
        let ep = log.find_endpoint("s").unwrap();
        let p = log.find_peer(ep, 1).unwrap();
        let mut index = MessageIndex::default();
        index.set_framings(vec![("s".into(), ReceiveFraming::Line)]);
        index.refresh(&log, 100);
        assert_eq!(index.streams.len(), 1);
        log.push(chrono::Utc::now(), ep, p, EntryKind::Closed, b"closed");
        index.refresh(&log, 100);
        assert!(index.streams.is_empty());
        assert!(index.messages().is_empty());
    }

    #[test]
    fn a_long_message_keeps_its_length_and_a_preview() {
        let mut long = vec![b'a'; 5000];
        long.push(b'\n');
        let log = log_of(&[("s", 1, &long)]);
        let mut index = MessageIndex::default();
        index.set_framings(vec![("s".into(), ReceiveFraming::Line)]);
        index.refresh(&log, 100);
        let m = &index.messages()[0];
        assert_eq!((m.len, m.preview.len()), (5000, MESSAGE_PREVIEW));
    }
}
