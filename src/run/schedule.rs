//! Scheduled sends on the engine: [`Scheduler`] turns an endpoint's
//! [`ScheduledSend`]s, its connection events and the time into the
//! [`Command::Send`]s that are due, and says when it next needs waking. The
//! window and `sockbench run` both feed it and do what it returns; it does no
//! I/O and reads no clock ([`Schedules`] holds one per running endpoint).
//!
//! - A connection starts every schedule afresh: a client's `Connected`, a
//!   server's `Accepted` (each peer its own schedule, sent to that peer), a
//!   datagram socket's `Bound` (sent to its remote). A reconnect is a new
//!   connection: counters start again from 1.
//! - The connection's end (`Closed`, `Reset`) ends its schedules; the
//!   endpoint's `Stopped` ends them all.
//! - A send is due `delay` after the connection, then every `interval`. A
//!   send that comes late (a busy window) goes once, as soon as it can, and
//!   the next is an interval after it: late sends are never sent in a burst,
//!   and never skipped.
//! - `${counter}` counts the sends of one entry on one connection, from 1.
//!   A payload that cannot be filled in (`${len:u8}` of a longer payload) is
//!   not sent: [`Action::NotSent`] is an error row for the log, never counted
//!   as sent.

use std::time::{Duration, Instant};

use crate::engine::{Command, EndpointId, Event, EventKind, NetError, Operation, PeerId, Target};
use crate::model::placeholder::{Context, Template};
use crate::model::schedule::ScheduledSend;
use crate::model::{ErrorKind, LibraryItem};

/// What is due now.
#[derive(Debug)]
pub enum Action {
    /// Hand this to the engine.
    Send(Command),
    /// A payload that was due and could not be made: record this event (a
    /// failure of the connection it was for) so the log says so.
    NotSent(Event),
}

/// One entry, ready to expand.
#[derive(Clone, Debug)]
struct Entry {
    template: Template,
    delay: Duration,
    /// `None`: until stopped.
    count: Option<u64>,
    interval: Duration,
    /// "send 2", for the log.
    label: String,
}

/// Where an entry stands on one connection.
#[derive(Clone, Debug)]
struct Progress {
    sent: u64,
    next: Instant,
}

/// One connection's schedules.
#[derive(Clone, Debug)]
struct Connection {
    /// `None` for a datagram socket (no connection: its remote).
    peer: Option<PeerId>,
    target: Target,
    progress: Vec<Progress>,
}

/// The scheduled sends of one running endpoint.
#[derive(Clone, Debug)]
pub struct Scheduler {
    id: EndpointId,
    entries: Vec<Entry>,
    connections: Vec<Connection>,
}

impl Scheduler {
    /// The scheduler of endpoint `id` sending `sends`, library names taken
    /// from `library`; `None` when there is nothing to send. An error names
    /// the first send that cannot be made (a library name not found).
    pub fn new(
        id: EndpointId,
        sends: &[ScheduledSend],
        library: &[LibraryItem],
    ) -> Result<Option<Scheduler>, String> {
        if sends.is_empty() {
            return Ok(None);
        }
        let entries = sends
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.check()
                    .and_then(|()| s.template(library))
                    .map(|template| Entry {
                        template,
                        delay: s.delay,
                        count: s.repeat.count().map(u64::from),
                        interval: s.interval,
                        label: format!("scheduled send {}", i + 1),
                    })
                    .map_err(|e| format!("scheduled send {}: {e}", i + 1))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Some(Scheduler {
            id,
            entries,
            connections: Vec::new(),
        }))
    }

    pub fn id(&self) -> EndpointId {
        self.id
    }

    /// Connections whose schedules run now.
    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    /// Takes an event of this endpoint at `now`: a connection starts its
    /// schedules, an end stops them. Other events change nothing.
    pub fn on_event(&mut self, kind: &EventKind, now: Instant) {
        match kind {
            EventKind::Connected { peer, .. } | EventKind::UnixConnected { peer, .. } => {
                // A client holds one connection: a new one (a reconnect)
                // replaces whatever was left of the last.
                self.connections.clear();
                self.begin(Some(*peer), Target::Default, now);
            }
            EventKind::Accepted { peer, .. } | EventKind::UnixAccepted { peer, .. } => {
                self.connections.retain(|c| c.peer != Some(*peer));
                self.begin(Some(*peer), Target::Peer(*peer), now);
            }
            EventKind::Bound { .. } | EventKind::UnixBound { .. } => {
                self.connections.clear();
                self.begin(None, Target::Default, now);
            }
            EventKind::Closed { peer, .. } | EventKind::Reset { peer } => {
                self.connections.retain(|c| c.peer != Some(*peer));
            }
            // The endpoint's own end. A payload that failed (one of ours
            // that could not be made, or a write refused) ends nothing: the
            // connection, if it ended too, says so with its own event.
            EventKind::Stopped => self.connections.clear(),
            EventKind::Failed { peer: None, error } if error.operation != Operation::Send => {
                self.connections.clear();
            }
            _ => {}
        }
    }

    fn begin(&mut self, peer: Option<PeerId>, target: Target, now: Instant) {
        let progress = self
            .entries
            .iter()
            .map(|e| Progress {
                sent: 0,
                next: now + e.delay,
            })
            .collect();
        self.connections.push(Connection {
            peer,
            target,
            progress,
        });
    }

    /// The sends due at `now`, in the order they fell due (entries due at
    /// the same time in their list order), at most one per entry and
    /// connection; each counted as sent.
    pub fn due(&mut self, now: Instant) -> Vec<Action> {
        let mut due: Vec<(Instant, usize, usize)> = Vec::new();
        for (c, conn) in self.connections.iter().enumerate() {
            for (e, p) in conn.progress.iter().enumerate() {
                let entry = &self.entries[e];
                if p.next <= now && entry.count.is_none_or(|n| p.sent < n) {
                    due.push((p.next, c, e));
                }
            }
        }
        due.sort();
        let mut actions = Vec::with_capacity(due.len());
        for (_, c, e) in due {
            let entry = &self.entries[e];
            let conn = &mut self.connections[c];
            let p = &mut conn.progress[e];
            let number = p.sent;
            p.sent += 1;
            let on_time = p.next + entry.interval;
            p.next = if on_time > now {
                on_time
            } else {
                now + entry.interval
            };
            let not_sent = |why: String| {
                Action::NotSent(Event {
                    id: self.id,
                    at: crate::engine::now(),
                    kind: EventKind::Failed {
                        peer: conn.peer,
                        error: NetError::new(
                            ErrorKind::Other,
                            Operation::Send,
                            format!("{}, send {}: not sent: {why}", entry.label, number + 1),
                        ),
                    },
                })
            };
            actions.push(match entry.template.expand(&Context::now(number)) {
                Ok(bytes) if bytes.is_empty() => {
                    not_sent("the payload is empty (a stream has no empty messages)".into())
                }
                Ok(bytes) => Action::Send(Command::Send {
                    id: self.id,
                    to: conn.target.clone(),
                    bytes,
                }),
                Err(e) => not_sent(e.to_string()),
            });
        }
        actions
    }

    /// When a send is next due (it may be now or past); `None` when nothing
    /// more is due until a connection is made.
    pub fn next_wake(&self) -> Option<Instant> {
        self.connections
            .iter()
            .flat_map(|c| {
                c.progress
                    .iter()
                    .zip(&self.entries)
                    .filter(|(p, e)| e.count.is_none_or(|n| p.sent < n))
                    .map(|(p, _)| p.next)
            })
            .min()
    }
}

/// The schedulers of the running endpoints, one per endpoint id.
#[derive(Debug, Default)]
pub struct Schedules {
    running: Vec<Scheduler>,
}

impl Schedules {
    pub fn new() -> Schedules {
        Schedules::default()
    }

    /// Runs `scheduler` (replacing the one of its endpoint, started before).
    pub fn start(&mut self, scheduler: Scheduler) {
        self.forget(scheduler.id);
        self.running.push(scheduler);
    }

    /// Drops endpoint `id`'s schedules (removed, or started without any).
    pub fn forget(&mut self, id: EndpointId) {
        self.running.retain(|s| s.id != id);
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    pub fn get(&self, id: EndpointId) -> Option<&Scheduler> {
        self.running.iter().find(|s| s.id == id)
    }

    /// Takes an engine event at `now` (events of endpoints without
    /// schedules change nothing).
    pub fn on_event(&mut self, event: &Event, now: Instant) {
        if let Some(s) = self.running.iter_mut().find(|s| s.id == event.id) {
            s.on_event(&event.kind, now);
        }
    }

    /// Every endpoint's sends due at `now`.
    pub fn due(&mut self, now: Instant) -> Vec<Action> {
        self.running.iter_mut().flat_map(|s| s.due(now)).collect()
    }

    /// When a send of any endpoint is next due.
    pub fn next_wake(&self) -> Option<Instant> {
        self.running.iter().filter_map(Scheduler::next_wake).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schedule::{Repeat, SendPayload};
    use crate::model::{Payload, escape_controls};

    const ID: EndpointId = EndpointId(4);

    fn send(text: &str, delay: u64, repeat: Repeat, interval: u64) -> ScheduledSend {
        ScheduledSend {
            payload: SendPayload::Text(text.into()),
            delay: Duration::from_millis(delay),
            repeat,
            interval: Duration::from_millis(interval),
        }
    }

    fn connected(peer: PeerId) -> EventKind {
        EventKind::Connected {
            peer,
            local: "127.0.0.1:5000".parse().unwrap(),
            remote: "127.0.0.1:7000".parse().unwrap(),
        }
    }

    fn accepted(peer: PeerId) -> EventKind {
        EventKind::Accepted {
            peer,
            local: "127.0.0.1:7000".parse().unwrap(),
            remote: format!("127.0.0.1:{}", 5000 + peer).parse().unwrap(),
        }
    }

    /// The sends as (target, text) pairs; a payload not sent as ("error", message).
    fn shown(actions: Vec<Action>) -> Vec<(String, String)> {
        actions
            .into_iter()
            .map(|a| match a {
                Action::Send(Command::Send { id, to, bytes }) => {
                    assert_eq!(id, ID);
                    (
                        format!("{to:?}"),
                        escape_controls(&String::from_utf8_lossy(&bytes)).into_owned(),
                    )
                }
                Action::NotSent(Event {
                    kind: EventKind::Failed { error, .. },
                    ..
                }) => ("error".into(), error.message),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn nothing_is_due_before_the_connection_and_then_at_its_times() {
        let t0 = Instant::now();
        let sends = [send("ping ${counter}\\n", 100, Repeat::Times(3), 50)];
        let mut s = Scheduler::new(ID, &sends, &[]).unwrap().unwrap();
        assert!(s.due(ms(t0, 10_000)).is_empty(), "no connection, no send");
        assert_eq!(s.next_wake(), None);
        s.on_event(&connected(0), t0);
        assert_eq!(s.next_wake(), Some(ms(t0, 100)));
        assert!(s.due(ms(t0, 99)).is_empty());
        assert_eq!(
            shown(s.due(ms(t0, 100))),
            vec![("Default".into(), "ping 1\\n".into())]
        );
        assert_eq!(s.next_wake(), Some(ms(t0, 150)));
        assert!(s.due(ms(t0, 149)).is_empty());
        // A little late: the cadence is kept.
        assert_eq!(shown(s.due(ms(t0, 160))).len(), 1);
        assert_eq!(s.next_wake(), Some(ms(t0, 200)));
        assert_eq!(
            shown(s.due(ms(t0, 200))),
            vec![("Default".into(), "ping 3\\n".into())]
        );
        assert_eq!(s.next_wake(), None, "three sends, then done");
        assert!(s.due(ms(t0, 10_000)).is_empty());
    }

    #[test]
    fn a_late_send_goes_once_and_the_next_is_an_interval_later() {
        let t0 = Instant::now();
        let sends = [send("x${counter}", 0, Repeat::UntilStopped, 10)];
        let mut s = Scheduler::new(ID, &sends, &[]).unwrap().unwrap();
        s.on_event(&connected(0), t0);
        assert_eq!(shown(s.due(t0))[0].1, "x1");
        // A stall of a second: one send, not a hundred.
        assert_eq!(
            shown(s.due(ms(t0, 1000))),
            vec![("Default".into(), "x2".into())]
        );
        assert_eq!(s.next_wake(), Some(ms(t0, 1010)));
        assert_eq!(shown(s.due(ms(t0, 1010)))[0].1, "x3");
        // Until stopped: the endpoint's stop ends it.
        s.on_event(&EventKind::Stopped, ms(t0, 1011));
        assert_eq!(s.next_wake(), None);
        assert!(s.due(ms(t0, 5000)).is_empty());
    }

    #[test]
    fn a_reconnect_starts_over_and_a_closed_connection_sends_nothing() {
        let t0 = Instant::now();
        let sends = [
            send("hello\\n", 0, Repeat::Times(1), 0),
            send("n=${counter}", 20, Repeat::Times(5), 20),
        ];
        let mut s = Scheduler::new(ID, &sends, &[]).unwrap().unwrap();
        s.on_event(&connected(0), t0);
        assert_eq!(
            shown(s.due(t0)),
            vec![("Default".into(), "hello\\n".into())]
        );
        assert_eq!(shown(s.due(ms(t0, 20)))[0].1, "n=1");
        assert_eq!(shown(s.due(ms(t0, 40)))[0].1, "n=2");
        s.on_event(
            &EventKind::Closed {
                peer: 0,
                aborted: false,
            },
            ms(t0, 41),
        );
        assert!(s.due(ms(t0, 60)).is_empty(), "the connection ended");
        assert_eq!(s.next_wake(), None);
        // Reconnected (a new peer number): everything again, counters from 1.
        s.on_event(&connected(1), ms(t0, 100));
        assert_eq!(
            shown(s.due(ms(t0, 120))),
            vec![
                ("Default".into(), "hello\\n".into()),
                ("Default".into(), "n=1".into())
            ]
        );
        // A reset ends it too.
        s.on_event(&EventKind::Reset { peer: 1 }, ms(t0, 121));
        assert!(s.due(ms(t0, 1000)).is_empty());
    }

    #[test]
    fn sends_due_together_go_in_their_order_and_earlier_first() {
        let t0 = Instant::now();
        let sends = [
            send("b", 30, Repeat::Times(1), 0),
            send("a", 10, Repeat::Times(1), 0),
            send("c", 30, Repeat::Times(1), 0),
        ];
        let mut s = Scheduler::new(ID, &sends, &[]).unwrap().unwrap();
        s.on_event(&connected(0), t0);
        let texts: Vec<String> = shown(s.due(ms(t0, 50))).into_iter().map(|x| x.1).collect();
        assert_eq!(texts, ["a", "b", "c"]);
    }

    #[test]
    fn a_server_greets_each_peer_on_its_own() {
        let t0 = Instant::now();
        let sends = [send("220 ready #${counter}\\r\\n", 0, Repeat::Times(2), 5)];
        let mut s = Scheduler::new(ID, &sends, &[]).unwrap().unwrap();
        s.on_event(
            &EventKind::Listening {
                local: "127.0.0.1:25".parse().unwrap(),
            },
            t0,
        );
        assert!(s.due(t0).is_empty(), "listening is not a peer");
        s.on_event(&accepted(1), t0);
        s.on_event(&accepted(2), ms(t0, 1));
        assert_eq!(
            shown(s.due(ms(t0, 1))),
            vec![
                ("Peer(1)".into(), "220 ready #1\\r\\n".into()),
                ("Peer(2)".into(), "220 ready #1\\r\\n".into())
            ]
        );
        assert_eq!(s.connections(), 2);
        s.on_event(
            &EventKind::Closed {
                peer: 1,
                aborted: false,
            },
            ms(t0, 2),
        );
        assert_eq!(
            shown(s.due(ms(t0, 10))),
            vec![("Peer(2)".into(), "220 ready #2\\r\\n".into())]
        );
    }

    #[test]
    fn a_datagram_socket_sends_once_bound() {
        let t0 = Instant::now();
        let sends = [send("hi", 0, Repeat::Times(1), 0)];
        let mut s = Scheduler::new(ID, &sends, &[]).unwrap().unwrap();
        s.on_event(
            &EventKind::Bound {
                local: "127.0.0.1:9".parse().unwrap(),
            },
            t0,
        );
        assert_eq!(shown(s.due(t0)), vec![("Default".into(), "hi".into())]);
    }

    /// The window feeds every event back, the scheduler's own "not sent"
    /// ones too: on a datagram socket (no peer) one payload that cannot be
    /// made stopped every later send of the endpoint, without a word.
    #[test]
    fn a_payload_not_sent_ends_no_schedule() {
        let t0 = Instant::now();
        let long = format!("{}${{len:u8}}", "x".repeat(300));
        let sends = [
            send(&long, 0, Repeat::Times(1), 0),
            send("tick", 0, Repeat::UntilStopped, 10),
        ];
        let mut s = Scheduler::new(ID, &sends, &[]).unwrap().unwrap();
        s.on_event(
            &EventKind::Bound {
                local: "127.0.0.1:9".parse().unwrap(),
            },
            t0,
        );
        let mut failures = Vec::new();
        for action in s.due(t0) {
            if let Action::NotSent(event) = action {
                failures.push(event);
            }
        }
        assert_eq!(failures.len(), 1);
        for event in &failures {
            s.on_event(&event.kind, t0);
        }
        assert_eq!(
            shown(s.due(ms(t0, 10))),
            vec![("Default".into(), "tick".into())]
        );
        // The endpoint's own end still ends it.
        s.on_event(&EventKind::Stopped, ms(t0, 10));
        assert_eq!(s.next_wake(), None);
    }

    #[test]
    fn a_payload_that_cannot_be_made_is_an_error_not_a_send() {
        let t0 = Instant::now();
        // 300 bytes and their length as one byte: cannot be.
        let long = format!("{}${{len:u8}}", "x".repeat(300));
        let sends = [send(&long, 0, Repeat::Times(2), 1)];
        let mut s = Scheduler::new(ID, &sends, &[]).unwrap().unwrap();
        s.on_event(&connected(3), t0);
        let out = shown(s.due(t0));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "error");
        assert!(
            out[0].1.starts_with("scheduled send 1, send 1: not sent:"),
            "{}",
            out[0].1
        );
        // The schedule goes on: the next is due (and fails alike).
        assert_eq!(s.next_wake(), Some(ms(t0, 1)));
        // An empty library payload is not sent either.
        let library = vec![LibraryItem {
            name: "empty".into(),
            payload: Payload::from(Vec::new()),
        }];
        let sends = [ScheduledSend {
            payload: SendPayload::Library("empty".into()),
            ..send("", 0, Repeat::Times(1), 0)
        }];
        let mut s = Scheduler::new(ID, &sends, &library).unwrap().unwrap();
        s.on_event(&connected(0), t0);
        assert!(shown(s.due(t0))[0].1.contains("empty"));
    }

    #[test]
    fn library_payloads_are_sent_as_they_are_and_unknown_names_refused() {
        let library = vec![LibraryItem {
            name: "price".into(),
            payload: Payload::from(b"${counter} costs $5".to_vec()),
        }];
        let sends = [ScheduledSend {
            payload: SendPayload::Library("price".into()),
            ..send("", 0, Repeat::Times(1), 0)
        }];
        let t0 = Instant::now();
        let mut s = Scheduler::new(ID, &sends, &library).unwrap().unwrap();
        s.on_event(&connected(0), t0);
        assert_eq!(shown(s.due(t0))[0].1, "${counter} costs $5");
        let e = Scheduler::new(ID, &sends, &[]).unwrap_err();
        assert!(e.starts_with("scheduled send 1: library \"price\""), "{e}");
        assert!(Scheduler::new(ID, &[], &[]).unwrap().is_none());
    }

    #[test]
    fn schedules_route_events_by_endpoint() {
        let t0 = Instant::now();
        let mut all = Schedules::new();
        let sends = [send("a", 0, Repeat::Times(1), 0)];
        all.start(Scheduler::new(ID, &sends, &[]).unwrap().unwrap());
        let other = Event {
            id: EndpointId(9),
            at: crate::engine::now(),
            kind: connected(0),
        };
        all.on_event(&other, t0);
        assert!(all.due(t0).is_empty(), "another endpoint's connection");
        all.on_event(
            &Event {
                id: ID,
                at: crate::engine::now(),
                kind: connected(0),
            },
            t0,
        );
        assert_eq!(all.next_wake(), Some(t0));
        assert_eq!(all.due(t0).len(), 1);
        all.forget(ID);
        assert!(all.is_empty());
    }
}
