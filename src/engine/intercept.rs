//! A relay's intercept: a "hold" switch per direction. While a direction
//! holds, what the relay reads that way waits in a [`Gate`] (one per client
//! and direction) until the caller forwards it (as read, or edited) or drops
//! it. Order within a direction is kept: an item passes on only after every
//! item before it was decided, and a FIN or a reset read behind held items
//! waits behind them. Turning the hold off forwards what is held, in order.
//!
//! Bounded: a gate holds at most [`HOLD_ITEMS`] items and [`HOLD_BYTES`]
//! bytes. When it is full, a stream relay stops taking that direction's reads,
//! so its queue fills, its reader stops reading, and TCP's flow control slows
//! the sender; a UDP relay drops the datagram and counts it.

use std::collections::VecDeque;

use bytes::Bytes;

use super::PeerId;
use crate::model::impair::Way;

/// The bytes one gate (a client, a direction) holds at most.
pub const HOLD_BYTES: usize = 1 << 20;

/// The items one gate holds at most.
pub const HOLD_ITEMS: usize = 256;

/// What becomes of held items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Passed on as read.
    Forward,
    /// Passed on as these bytes instead (one item only).
    Edited(Bytes),
    /// Never passed on.
    Drop,
}

/// Which held items a decision is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Every item held that way, of every client.
    All,
    /// One item of one client.
    One { peer: PeerId, item: u64 },
}

/// What happened to a held item (an event; the log records it as a note).
#[derive(Clone, Debug, PartialEq)]
pub enum HeldChange {
    /// Read and held: it waits for a decision.
    Held(Bytes),
    Forwarded,
    /// Passed on as these bytes instead of those read.
    Edited(Bytes),
    Dropped,
    /// Never passed on: its connection ended (or the relay stopped) while it
    /// was still held or waiting behind a held item.
    Abandoned,
}

/// The most of an edited payload a log note spells out.
const NOTE_BYTES: usize = 64 * 1024;

impl HeldChange {
    /// The note the log keeps, beginning with the direction's word (`up: held #3: …`),
    /// as [`crate::model::impair::note_mark`] reads it.
    pub fn note(&self, way: Way, item: u64) -> String {
        use crate::model::impair::{DROPPED, EDITED, FORWARDED, HELD};
        let w = way.word();
        match self {
            HeldChange::Held(b) => format!(
                "{w}: {HELD}{item}: {} bytes held ({}): forward, edit or drop them in the relay's pane",
                b.len(),
                way.arrow()
            ),
            HeldChange::Forwarded => format!("{w}: {FORWARDED}{item}: passed on as read"),
            HeldChange::Edited(b) => {
                let shown = &b[..b.len().min(NOTE_BYTES)];
                format!(
                    "{w}: {EDITED}{item}: passed on as {} bytes instead of those read: \"{}\"{}",
                    b.len(),
                    crate::model::payload::to_text_notation(shown),
                    if shown.len() < b.len() { " …" } else { "" }
                )
            }
            HeldChange::Dropped => format!("{w}: {DROPPED}{item}: never passed on"),
            HeldChange::Abandoned => format!(
                "{w}: {DROPPED}{item}: never passed on: its connection ended while it was held"
            ),
        }
    }
}

/// Told to one client's gate.
#[derive(Clone, Debug)]
pub(crate) enum GateCommand {
    Hold(bool),
    Decide {
        /// None: every item held.
        item: Option<u64>,
        verdict: Verdict,
    },
}

/// What a gate passes: a read (held while holding), or how a direction ended
/// (never held itself, but waits behind held reads).
pub(crate) trait Holdable: Sized {
    fn payload(&self) -> Option<&Bytes>;
    fn with_payload(self, bytes: Bytes) -> Self;
}

impl Holdable for Bytes {
    fn payload(&self) -> Option<&Bytes> {
        Some(self)
    }
    fn with_payload(self, bytes: Bytes) -> Self {
        bytes
    }
}

struct Pending<T> {
    /// Held items have a number; a read passed while not holding, or an end, has none.
    item: Option<u64>,
    msg: T,
    verdict: Option<Verdict>,
}

/// One client's one direction: what waits, in order.
pub(crate) struct Gate<T> {
    pub way: Way,
    holding: bool,
    queue: VecDeque<Pending<T>>,
    bytes: usize,
    /// Told of each held item still here when the gate goes (its connection
    /// ended): nothing held is lost without a word.
    abandon: Option<Box<dyn Fn(u64) + Send + Sync>>,
}

impl<T> Drop for Gate<T> {
    fn drop(&mut self) {
        if let Some(abandon) = &self.abandon {
            for item in self.queue.iter().filter_map(|p| p.item) {
                abandon(item);
            }
        }
    }
}

impl<T: Holdable> Gate<T> {
    pub fn new(way: Way, holding: bool) -> Self {
        Gate {
            way,
            holding,
            queue: VecDeque::new(),
            bytes: 0,
            abandon: None,
        }
    }

    /// Says `abandon(item)` for each held item the gate still has when it goes.
    pub fn on_abandon(mut self, abandon: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.abandon = Some(Box::new(abandon));
        self
    }

    /// True while it can take another read.
    pub fn has_room(&self) -> bool {
        self.queue.len() < HOLD_ITEMS && self.bytes < HOLD_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Takes a read (or an end): returns it at once when nothing holds it,
    /// else keeps it; `next_item` numbers a read that is held, `said` tells of it.
    pub fn admit(
        &mut self,
        msg: T,
        next_item: impl FnOnce() -> u64,
        said: &mut impl FnMut(u64, HeldChange),
    ) -> Option<T> {
        if !self.holding && self.queue.is_empty() {
            return Some(msg);
        }
        let item = match msg.payload() {
            Some(b) if self.holding => {
                let item = next_item();
                self.bytes += b.len();
                said(item, HeldChange::Held(b.clone()));
                Some(item)
            }
            _ => None,
        };
        self.queue.push_back(Pending {
            item,
            msg,
            verdict: None,
        });
        None
    }

    /// Applies a command; returns what may pass on now, in order.
    pub fn command(
        &mut self,
        command: GateCommand,
        said: &mut impl FnMut(u64, HeldChange),
    ) -> Vec<T> {
        match command {
            GateCommand::Hold(on) => {
                self.holding = on;
                if !on {
                    self.decide(None, Verdict::Forward);
                }
            }
            GateCommand::Decide { item, verdict } => self.decide(item, verdict),
        }
        self.ready(said)
    }

    fn decide(&mut self, item: Option<u64>, verdict: Verdict) {
        for p in self.queue.iter_mut() {
            if p.item.is_some() && p.verdict.is_none() && (item.is_none() || p.item == item) {
                // An edit is for one item; "all" with an edit forwards as read.
                p.verdict = Some(match (&verdict, item) {
                    (Verdict::Edited(_), None) => Verdict::Forward,
                    (v, _) => v.clone(),
                });
            }
        }
    }

    /// What may pass on: the items at the front that are decided, and what
    /// waited behind them without being held.
    fn ready(&mut self, said: &mut impl FnMut(u64, HeldChange)) -> Vec<T> {
        let mut out = Vec::new();
        while let Some(front) = self.queue.front() {
            if front.item.is_some() && front.verdict.is_none() {
                break;
            }
            let Some(p) = self.queue.pop_front() else {
                break;
            };
            let Some(item) = p.item else {
                out.push(p.msg);
                continue;
            };
            self.bytes -= p.msg.payload().map_or(0, Bytes::len);
            match p.verdict {
                Some(Verdict::Drop) => said(item, HeldChange::Dropped),
                Some(Verdict::Edited(b)) => {
                    said(item, HeldChange::Edited(b.clone()));
                    out.push(p.msg.with_payload(b));
                }
                _ => {
                    said(item, HeldChange::Forwarded);
                    out.push(p.msg);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn a_later_item_decided_first_waits_for_the_one_before_it() {
        let mut gate = Gate::<Bytes>::new(Way::Up, true);
        let mut n = 0;
        let mut log = Vec::new();
        let mut said = |item, change| log.push((item, change));
        for s in ["a", "b", "c"] {
            assert!(
                gate.admit(
                    b(s),
                    || {
                        n += 1;
                        n
                    },
                    &mut said
                )
                .is_none()
            );
        }
        let decide = |item, verdict| GateCommand::Decide {
            item: Some(item),
            verdict,
        };
        assert!(
            gate.command(decide(2, Verdict::Edited(b("B"))), &mut said)
                .is_empty()
        );
        assert_eq!(
            gate.command(decide(1, Verdict::Drop), &mut said),
            vec![b("B")]
        );
        // Hold off forwards the rest in order; a read after it passes at once
        // only once nothing waits.
        assert_eq!(
            gate.command(GateCommand::Hold(false), &mut said),
            vec![b("c")]
        );
        assert!(gate.is_empty());
        assert_eq!(gate.admit(b("d"), || 99, &mut said), Some(b("d")));
        assert_eq!(
            log.iter().map(|(i, c)| (*i, c.clone())).collect::<Vec<_>>(),
            vec![
                (1, HeldChange::Held(b("a"))),
                (2, HeldChange::Held(b("b"))),
                (3, HeldChange::Held(b("c"))),
                (1, HeldChange::Dropped),
                (2, HeldChange::Edited(b("B"))),
                (3, HeldChange::Forwarded),
            ]
        );
    }

    #[test]
    fn a_gate_that_goes_with_items_held_tells_of_each() {
        let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = told.clone();
        let mut gate = Gate::new(Way::Up, true).on_abandon(move |i| sink.lock().unwrap().push(i));
        let mut n = 0;
        let mut said = |_, _| {};
        for word in ["a", "b", "c"] {
            assert!(
                gate.admit(
                    b(word),
                    || {
                        n += 1;
                        n
                    },
                    &mut said
                )
                .is_none()
            );
        }
        // The first passes on; the other two are still held when it goes.
        let out = gate.command(
            GateCommand::Decide {
                item: Some(1),
                verdict: Verdict::Forward,
            },
            &mut said,
        );
        assert_eq!(out, vec![b("a")]);
        drop(gate);
        assert_eq!(*told.lock().unwrap(), vec![2, 3]);
    }

    #[test]
    fn a_gate_is_full_at_its_bytes() {
        let mut gate = Gate::<Bytes>::new(Way::Down, true);
        let big = Bytes::from(vec![0u8; HOLD_BYTES / 2]);
        let mut said = |_, _| {};
        gate.admit(big.clone(), || 1, &mut said);
        assert!(gate.has_room());
        gate.admit(big, || 2, &mut said);
        assert!(!gate.has_room());
        gate.command(
            GateCommand::Decide {
                item: None,
                verdict: Verdict::Drop,
            },
            &mut said,
        );
        assert!(gate.has_room() && gate.is_empty());
    }
}
