//! Engine events become log rows: the one map from the engine's endpoint ids
//! to the log's endpoints, and the totals of what went out and came in.

use std::collections::HashMap;

use crate::engine::{EndpointId, Event, EventKind};
use crate::model::log::{EntryKind, Totals, TrafficLog};

/// Records the events of named endpoints in a [`TrafficLog`] the caller owns
/// (the window's document, a command's session).
#[derive(Debug, Default)]
pub struct Recorder {
    /// The log's endpoint index of each engine endpoint named so far.
    endpoints: HashMap<EndpointId, u32>,
    /// Payloads and bytes of every named endpoint: only payloads written
    /// whole count as sent (a write whose failure followed is taken back).
    totals: Totals,
    /// The same, per engine endpoint.
    per_endpoint: HashMap<EndpointId, Totals>,
    /// Events of endpoints never named: not recorded, but counted, so a
    /// front end that forgot a name sees that it lost rows.
    unnamed: u64,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Names engine endpoint `id` in `log` (an existing name is reused, as a
    /// restarted endpoint continues its rows); returns its log index.
    pub fn name(&mut self, log: &mut TrafficLog, id: EndpointId, name: &str) -> u32 {
        let index = log.endpoint_index(name);
        self.endpoints.insert(id, index);
        index
    }

    /// The log index of engine endpoint `id`, if it was named.
    pub fn log_endpoint(&self, id: EndpointId) -> Option<u32> {
        self.endpoints.get(&id).copied()
    }

    /// Endpoint `id` starts again: its own totals start from zero (the
    /// totals of every endpoint keep counting).
    pub fn restart(&mut self, id: EndpointId) {
        self.per_endpoint.remove(&id);
    }

    /// Forgets engine endpoint `id` (removed): its later events are unnamed.
    pub fn forget(&mut self, id: EndpointId) {
        self.endpoints.remove(&id);
        self.per_endpoint.remove(&id);
    }

    /// Appends `event` to `log` as a row of its endpoint and returns the row,
    /// or `None` for progress reports and endpoints never named.
    pub fn record(&mut self, log: &mut TrafficLog, event: &Event) -> Option<usize> {
        let Some(&endpoint) = self.endpoints.get(&event.id) else {
            if !matches!(event.kind, EventKind::ReplayProgress { .. }) {
                self.unnamed += 1;
            }
            return None;
        };
        let index = event.record(log, endpoint)?;
        let entry = log.entry(index)?;
        let (kind, len) = (entry.kind, entry.len());
        let mine = self.per_endpoint.entry(event.id).or_default();
        self.totals.add(kind, len);
        mine.add(kind, len);
        if let EventKind::Failed { error, .. } = &event.kind
            && error.failed_write
        {
            // The payload reported as sent just before did not (all) go out:
            // the log marked its row unsent; the totals count only payloads
            // written whole.
            let unsent = (0..index)
                .rev()
                .take(4096)
                .filter_map(|i| log.entry(i))
                .find(|e| e.endpoint == endpoint && e.kind == EntryKind::Unsent)
                .map(|e| e.len() as u64);
            if let Some(len) = unsent {
                for t in [&mut self.totals, mine] {
                    t.sent = t.sent.saturating_sub(1);
                    t.sent_bytes = t.sent_bytes.saturating_sub(len);
                }
            }
        }
        Some(index)
    }

    /// Payloads and bytes of every endpoint so far.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Payloads and bytes of engine endpoint `id` so far.
    pub fn totals_of(&self, id: EndpointId) -> Totals {
        self.per_endpoint.get(&id).copied().unwrap_or_default()
    }

    /// Events that came for endpoints never named.
    pub fn unnamed(&self) -> u64 {
        self.unnamed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{NetError, Operation};
    use crate::model::Direction;
    use crate::model::log::ErrorKind;

    fn event(id: u64, kind: EventKind) -> Event {
        Event {
            id: EndpointId(id),
            at: crate::engine::now(),
            kind,
        }
    }

    fn traffic(peer: u32, port: u16, dir: Direction, bytes: &'static [u8]) -> EventKind {
        EventKind::Traffic {
            peer,
            remote: format!("127.0.0.1:{port}").parse().unwrap(),
            dir,
            bytes: bytes::Bytes::from_static(bytes),
        }
    }

    #[test]
    fn ids_map_to_log_endpoints_and_peers_are_numbered_per_endpoint() {
        let mut log = TrafficLog::new();
        let mut r = Recorder::new();
        // The engine's ids are not the log's indices.
        assert_eq!(r.name(&mut log, EndpointId(7), "server"), 0);
        assert_eq!(r.name(&mut log, EndpointId(3), "client"), 1);
        assert_eq!(r.log_endpoint(EndpointId(7)), Some(0));
        let rows: Vec<usize> = [
            event(7, traffic(1, 5001, Direction::Received, b"ab")),
            event(3, traffic(0, 7000, Direction::Sent, b"ab")),
            event(7, traffic(2, 5002, Direction::Received, b"cde")),
            event(7, traffic(1, 5001, Direction::Sent, b"ab")),
            event(3, traffic(0, 7000, Direction::Received, b"ab")),
        ]
        .iter()
        .map(|e| r.record(&mut log, e).expect("recorded"))
        .collect();
        assert_eq!(rows, vec![0, 1, 2, 3, 4]);
        let endpoint_of = |row: usize| log.endpoint_name(log.entry(row).unwrap()).to_owned();
        assert_eq!(endpoint_of(0), "server");
        assert_eq!(endpoint_of(1), "client");
        assert_eq!(endpoint_of(3), "server");
        // One peer record per (endpoint, engine peer), with its address.
        let peers: Vec<(u32, u32, String)> = log
            .peers()
            .iter()
            .map(|p| (p.endpoint, p.number, p.remote.clone()))
            .collect();
        assert_eq!(
            peers,
            vec![
                (0, 1, "127.0.0.1:5001".to_owned()),
                (1, 0, "127.0.0.1:7000".to_owned()),
                (0, 2, "127.0.0.1:5002".to_owned()),
            ]
        );
        assert_eq!(log.entry(0).unwrap().peer, log.entry(3).unwrap().peer);
        let t = r.totals();
        assert_eq!(
            (t.sent, t.sent_bytes, t.received, t.received_bytes),
            (2, 4, 3, 7)
        );
        let s = r.totals_of(EndpointId(7));
        assert_eq!((s.sent, s.received, s.received_bytes), (1, 2, 5));
        assert_eq!(r.unnamed(), 0);
    }

    #[test]
    fn nothing_is_lost_quietly() {
        let mut log = TrafficLog::new();
        let mut r = Recorder::new();
        r.name(&mut log, EndpointId(1), "a");
        // Every kind of event of a named endpoint is one row.
        let kinds = [
            EventKind::Listening {
                local: "127.0.0.1:1".parse().unwrap(),
            },
            EventKind::Accepted {
                peer: 1,
                remote: "127.0.0.1:2".parse().unwrap(),
                local: "127.0.0.1:1".parse().unwrap(),
            },
            EventKind::PeerClosed { peer: 1 },
            EventKind::Closed {
                peer: 1,
                aborted: false,
            },
            EventKind::Note {
                peer: None,
                text: "n".into(),
            },
            EventKind::Stopped,
        ];
        for k in kinds.iter().cloned() {
            assert!(r.record(&mut log, &event(1, k)).is_some());
        }
        assert_eq!(log.len(), kinds.len());
        // An endpoint never named: no row, but counted.
        assert_eq!(r.record(&mut log, &event(9, EventKind::Stopped)), None);
        assert_eq!(r.unnamed(), 1);
        assert_eq!(log.len(), kinds.len());
        // Progress reports are not rows, and not lost either.
        assert_eq!(
            r.record(&mut log, &event(1, EventKind::ReplayProgress { sent: 1 })),
            None
        );
        assert_eq!(r.unnamed(), 1);
        // A forgotten endpoint's late events are counted as unnamed.
        r.forget(EndpointId(1));
        assert_eq!(r.record(&mut log, &event(1, EventKind::Stopped)), None);
        assert_eq!(r.unnamed(), 2);
    }

    #[test]
    fn a_write_that_failed_is_taken_back_from_the_totals() {
        let mut log = TrafficLog::new();
        let mut r = Recorder::new();
        r.name(&mut log, EndpointId(1), "client");
        r.record(
            &mut log,
            &event(1, traffic(0, 7, Direction::Sent, b"hello")),
        );
        r.record(&mut log, &event(1, traffic(0, 7, Direction::Sent, b"xyz")));
        let failed = EventKind::Failed {
            peer: Some(0),
            error: NetError::new(ErrorKind::BrokenPipe, Operation::Send, "broken pipe")
                .of_reported_write(),
        };
        r.record(&mut log, &event(1, failed));
        let t = r.totals();
        assert_eq!((t.sent, t.sent_bytes), (1, 5));
        let mine = r.totals_of(EndpointId(1));
        assert_eq!((mine.sent, mine.sent_bytes), (1, 5));
        assert_eq!(log.entry(1).unwrap().kind, EntryKind::Unsent);
    }
}
