//! The stats view: per endpoint and per peer, the payloads and bytes that went
//! each way, their rates over the last second, the connections, and a plot of
//! the selected endpoint's bytes a second over the last [`RING_SECONDS`].
//!
//! The numbers come from a [`Sampler`] fed each engine event as the window
//! drains it: O(1) per event, a bounded ring of per-second samples per
//! endpoint and a bounded number of peers, so a frame never scans the log.
//! An endpoint's numbers start over when it starts again after it stopped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use egui::Ui;

use crate::engine::{EndpointId, Event, EventKind, PeerId};
use crate::model::KindTag;
use crate::model::budget::size_text;
use crate::model::log::Direction;

/// How many seconds of samples an endpoint keeps for its plot.
pub const RING_SECONDS: usize = 300;
/// How many peers of one endpoint are counted one by one; the ones after
/// are counted together (a UDP socket may hear from any number of addresses).
pub const MAX_PEERS: usize = 1024;

/// Payloads and bytes each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub payloads_in: u64,
    pub bytes_in: u64,
    pub payloads_out: u64,
    pub bytes_out: u64,
}

impl Counts {
    fn add(&mut self, dir: Direction, len: u64) {
        match dir {
            Direction::Received => {
                self.payloads_in += 1;
                self.bytes_in += len;
            }
            Direction::Sent => {
                self.payloads_out += 1;
                self.bytes_out += len;
            }
        }
    }
}

/// What went each way in one second of an endpoint's run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Second {
    /// Whole seconds since the endpoint started.
    pub second: u64,
    pub counts: Counts,
}

/// The counts of the second under way and of the one before it: enough for
/// a rate over the last second without a ring (a peer's).
#[derive(Clone, Copy, Debug, Default)]
struct Recent {
    second: u64,
    this: Counts,
    before: Counts,
}

impl Recent {
    fn add(&mut self, second: u64, dir: Direction, len: u64) {
        if second > self.second {
            self.before = if second == self.second + 1 {
                self.this
            } else {
                Counts::default()
            };
            self.this = Counts::default();
            self.second = second;
        }
        if second == self.second {
            self.this.add(dir, len);
        } else if second + 1 == self.second {
            self.before.add(dir, len);
        }
    }

    /// The counts of the last whole second before `now` (a second number).
    fn last_second(&self, now: u64) -> Counts {
        if self.second + 1 == now {
            self.this
        } else if self.second == now {
            self.before
        } else {
            Counts::default()
        }
    }
}

/// One peer of an endpoint.
#[derive(Clone, Debug)]
pub struct PeerStats {
    pub remote: Option<SocketAddr>,
    /// A Unix-domain peer's name, as shown (it has no IP address).
    pub name: Option<String>,
    pub counts: Counts,
    /// A connection that is open (TCP); UDP peers are never "open".
    pub open: bool,
    recent: Recent,
}

/// One endpoint's numbers since it last started.
#[derive(Clone, Debug)]
pub struct EndpointStats {
    /// When this run of the endpoint began (its first event).
    pub started: DateTime<Utc>,
    pub totals: Counts,
    peers: BTreeMap<PeerId, PeerStats>,
    /// The peers past [`MAX_PEERS`], together.
    pub other_peers: Counts,
    /// Connections open now.
    pub open: usize,
    /// Connections made in this run (accepted or connected).
    pub connections: u64,
    /// Peers seen in this run, counted or not one by one.
    pub peers_seen: u64,
    /// Per-second samples, one per second without gaps, at most [`RING_SECONDS`].
    ring: VecDeque<Second>,
    stopped: bool,
}

impl EndpointStats {
    fn new(started: DateTime<Utc>) -> Self {
        EndpointStats {
            started,
            totals: Counts::default(),
            peers: BTreeMap::new(),
            other_peers: Counts::default(),
            open: 0,
            connections: 0,
            peers_seen: 0,
            ring: VecDeque::new(),
            stopped: false,
        }
    }

    /// The whole seconds from the start to `at` (0 for a time before it).
    pub fn second_of(&self, at: DateTime<Utc>) -> u64 {
        (at - self.started).num_milliseconds().max(0) as u64 / 1000
    }

    /// The peers counted one by one, by number.
    pub fn peers(&self) -> impl Iterator<Item = (PeerId, &PeerStats)> {
        self.peers.iter().map(|(n, p)| (*n, p))
    }

    /// The per-second samples, oldest first, without gaps.
    pub fn samples(&self) -> impl Iterator<Item = &Second> {
        self.ring.iter()
    }

    /// Whether the endpoint has stopped (its next event starts it over).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// What went each way in the last whole second before `now`.
    pub fn rate(&self, now: DateTime<Utc>) -> Counts {
        let Some(wanted) = self.second_of(now).checked_sub(1) else {
            return Counts::default();
        };
        let Some(back) = self.ring.back() else {
            return Counts::default();
        };
        if wanted > back.second {
            return Counts::default();
        }
        let behind = (back.second - wanted) as usize;
        if behind >= self.ring.len() {
            return Counts::default();
        }
        self.ring[self.ring.len() - 1 - behind].counts
    }

    /// A peer's counts in the last whole second before `now`.
    pub fn peer_rate(&self, peer: &PeerStats, now: DateTime<Utc>) -> Counts {
        peer.recent.last_second(self.second_of(now))
    }

    fn peer(&mut self, peer: PeerId, remote: Option<SocketAddr>) -> Option<&mut PeerStats> {
        if !self.peers.contains_key(&peer) {
            self.peers_seen += 1;
            if self.peers.len() >= MAX_PEERS {
                return None;
            }
            self.peers.insert(
                peer,
                PeerStats {
                    remote,
                    name: None,
                    counts: Counts::default(),
                    open: false,
                    recent: Recent::default(),
                },
            );
        }
        let stats = self.peers.get_mut(&peer)?;
        if stats.remote.is_none() {
            stats.remote = remote;
        }
        Some(stats)
    }

    fn traffic(
        &mut self,
        at: DateTime<Utc>,
        peer: PeerId,
        remote: SocketAddr,
        dir: Direction,
        len: u64,
    ) {
        let second = self.second_of(at);
        self.totals.add(dir, len);
        // A Unix peer's traffic carries no address (its name came before).
        let remote = Some(remote).filter(|r| *r != crate::engine::UNIX_PEER);
        match self.peer(peer, remote) {
            Some(p) => {
                p.counts.add(dir, len);
                p.recent.add(second, dir, len);
            }
            None => self.other_peers.add(dir, len),
        }
        if let Some(s) = self.sample(second) {
            s.counts.add(dir, len);
        }
    }

    /// The ring's sample for `second`, appended (gaps filled with empty
    /// seconds, at most the ring's length of them) when it is new; `None` for
    /// a second older than the ring holds.
    fn sample(&mut self, second: u64) -> Option<&mut Second> {
        match self.ring.back() {
            Some(back) if second <= back.second => {
                let behind = (back.second - second) as usize;
                let len = self.ring.len();
                if behind >= len {
                    return None;
                }
                return self.ring.get_mut(len - 1 - behind);
            }
            Some(back) => {
                let gap = second - back.second - 1;
                if gap as usize >= RING_SECONDS {
                    self.ring.clear();
                } else {
                    for s in back.second + 1..second {
                        self.ring.push_back(Second {
                            second: s,
                            counts: Counts::default(),
                        });
                    }
                }
            }
            None => {}
        }
        self.ring.push_back(Second {
            second,
            counts: Counts::default(),
        });
        while self.ring.len() > RING_SECONDS {
            self.ring.pop_front();
        }
        self.ring.back_mut()
    }

    fn connection_ended(&mut self, peer: PeerId) {
        if let Some(p) = self.peers.get_mut(&peer)
            && p.open
        {
            p.open = false;
            self.open = self.open.saturating_sub(1);
        }
    }
}

/// Every endpoint's numbers, fed the engine's events as they are drained.
#[derive(Debug, Default)]
pub struct Sampler {
    endpoints: HashMap<EndpointId, EndpointStats>,
}

impl Sampler {
    /// Counts one event: O(1).
    pub fn record(&mut self, event: &Event) {
        let stats = self
            .endpoints
            .entry(event.id)
            .or_insert_with(|| EndpointStats::new(event.at));
        // A new run (its first event is one of these) starts from nothing;
        // anything else after Stopped (a late note or error) belongs to the
        // run that stopped and must not wipe its numbers.
        let starts_a_run = matches!(
            event.kind,
            EventKind::Resolving { .. }
                | EventKind::Connecting { .. }
                | EventKind::Listening { .. }
                | EventKind::Bound { .. }
                // A Unix client's run begins connected (it has no Connecting).
                | EventKind::UnixListening { .. }
                | EventKind::UnixBound { .. }
                | EventKind::UnixConnected { .. }
        );
        if stats.stopped && starts_a_run {
            *stats = EndpointStats::new(event.at);
        }
        match &event.kind {
            EventKind::Traffic {
                peer,
                remote,
                dir,
                bytes,
            } => stats.traffic(event.at, *peer, *remote, *dir, bytes.len() as u64),
            EventKind::UnixPeer { peer, remote } => {
                if let Some(p) = stats.peer(*peer, None) {
                    p.name.get_or_insert_with(|| remote.to_string());
                }
            }
            EventKind::Connected { peer, .. }
            | EventKind::Accepted { peer, .. }
            | EventKind::UnixConnected { peer, .. }
            | EventKind::UnixAccepted { peer, .. } => {
                stats.connections += 1;
                let remote = event.kind.remote();
                let name = event.kind.unix_remote().map(ToString::to_string);
                let opened = match stats.peer(*peer, remote) {
                    Some(p) if !p.open => {
                        p.open = true;
                        if p.name.is_none() {
                            p.name = name;
                        }
                        true
                    }
                    Some(_) => false,
                    None => true,
                };
                if opened {
                    stats.open += 1;
                }
            }
            EventKind::Closed { peer, .. } | EventKind::Reset { peer } => {
                stats.connection_ended(*peer);
            }
            EventKind::Stopped => {
                stats.stopped = true;
                stats.open = 0;
                for p in stats.peers.values_mut() {
                    p.open = false;
                }
            }
            _ => {}
        }
    }

    /// The numbers of endpoint `id`'s current (or last) run.
    pub fn get(&self, id: EndpointId) -> Option<&EndpointStats> {
        self.endpoints.get(&id)
    }

    /// Forgets the endpoints `keep` says no to (ones no longer in the session).
    pub fn retain(&mut self, keep: impl Fn(EndpointId) -> bool) {
        self.endpoints.retain(|id, _| keep(*id));
    }

    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }
}

/// "1 payload" or "3 payloads".
fn payloads(n: u64) -> String {
    format!("{n} payload{}", if n == 1 { "" } else { "s" })
}

/// Bytes, exact below a KiB and rounded above (the exact count on hover).
fn bytes(n: u64) -> String {
    size_text(n)
}

fn rate(n: u64) -> String {
    format!("{}/s", size_text(n))
}

/// The view's choices.
#[derive(Default)]
pub struct StatsView;

impl StatsView {
    /// Draws the table of `endpoints` (id, name, kind) and the selected one's
    /// peers and plot; `now` says which second "the last second" is.
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        sampler: &Sampler,
        endpoints: &[(EndpointId, String, KindTag)],
        selected: Option<EndpointId>,
        now: DateTime<Utc>,
    ) {
        egui::ScrollArea::both()
            .id_salt("stats scroll")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.label("Since each endpoint last started; rates are of the last whole second.");
                table_header(ui, "stats endpoints", "Endpoint", |ui| {
                    for (id, name, kind) in endpoints {
                        let Some(stats) = sampler.get(*id) else {
                            ui.label(crate::model::display::escape_controls(name));
                            ui.label("not started");
                            ui.end_row();
                            continue;
                        };
                        ui.label(crate::model::display::escape_controls(name));
                        let peers = if kind.is_datagram() {
                            format!(
                                "{} peer{}",
                                stats.peers_seen,
                                if stats.peers_seen == 1 { "" } else { "s" }
                            )
                        } else {
                            format!("{} open, {} in all", stats.open, stats.connections)
                        };
                        ui.label(peers);
                        counts_cells(ui, stats.totals, stats.rate(now));
                        ui.end_row();
                    }
                });
                let Some((id, name, _)) =
                    selected.and_then(|s| endpoints.iter().find(|e| e.0 == s))
                else {
                    return;
                };
                let Some(stats) = sampler.get(*id) else {
                    return;
                };
                let name = crate::model::display::escape_controls(name);
                ui.separator();
                ui.strong(format!(
                    "{name}: bytes a second, the last {RING_SECONDS} s at most"
                ));
                rate_plot(ui, stats);
                ui.separator();
                ui.strong(format!("Peers of {name}"));
                table_header(ui, "stats peers", "Peer", |ui| {
                    for (n, peer) in stats.peers() {
                        let remote = peer
                            .remote
                            .map(|r| r.to_string())
                            .or_else(|| peer.name.clone())
                            .unwrap_or_default();
                        ui.label(format!("#{n} {remote}"));
                        ui.label(if peer.open { "open" } else { "" });
                        counts_cells(ui, peer.counts, stats.peer_rate(peer, now));
                        ui.end_row();
                    }
                    if stats.peers_seen > stats.peers.len() as u64 {
                        ui.label(format!(
                            "{} more",
                            stats.peers_seen - stats.peers.len() as u64
                        ));
                        ui.label("");
                        counts_cells(ui, stats.other_peers, Counts::default());
                        ui.end_row();
                    }
                });
            });
    }
}

fn table_header(ui: &mut Ui, id: &str, first: &str, rows: impl FnOnce(&mut Ui)) {
    egui::Grid::new(id).striped(true).show(ui, |ui| {
        for title in [
            first,
            "Connections",
            "Received",
            "bytes",
            "Sent",
            "bytes",
            "In/s",
            "Out/s",
        ] {
            ui.strong(title);
        }
        ui.end_row();
        rows(ui);
    });
}

fn counts_cells(ui: &mut Ui, total: Counts, last: Counts) {
    ui.label(payloads(total.payloads_in));
    ui.label(bytes(total.bytes_in))
        .on_hover_text(format!("{} bytes", total.bytes_in));
    ui.label(payloads(total.payloads_out));
    ui.label(bytes(total.bytes_out))
        .on_hover_text(format!("{} bytes", total.bytes_out));
    ui.label(rate(last.bytes_in))
        .on_hover_text(format!("{} payloads/s", last.payloads_in));
    ui.label(rate(last.bytes_out))
        .on_hover_text(format!("{} payloads/s", last.payloads_out));
}

/// Bytes in and out a second, over the ring's seconds.
fn rate_plot(ui: &mut Ui, stats: &EndpointStats) {
    let points = |f: fn(&Counts) -> u64| -> Vec<[f64; 2]> {
        stats
            .samples()
            .map(|s| [s.second as f64, f(&s.counts) as f64])
            .collect()
    };
    let received = points(|c| c.bytes_in);
    let sent = points(|c| c.bytes_out);
    egui_plot::Plot::new("stats rate plot")
        .height(180.0)
        .width(ui.available_width().max(320.0))
        .legend(egui_plot::Legend::default())
        .x_axis_label("seconds since start")
        .y_axis_label("bytes/s")
        .include_y(0.0)
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.line(egui_plot::Line::new("received bytes/s", received));
            plot.line(egui_plot::Line::new("sent bytes/s", sent));
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use chrono::TimeDelta;

    const ID: EndpointId = EndpointId(7);

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn at(ms: i64) -> DateTime<Utc> {
        t0() + TimeDelta::milliseconds(ms)
    }

    fn remote() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    fn event(ms: i64, kind: EventKind) -> Event {
        Event {
            id: ID,
            at: at(ms),
            kind,
        }
    }

    fn traffic(ms: i64, peer: PeerId, dir: Direction, len: usize) -> Event {
        event(
            ms,
            EventKind::Traffic {
                peer,
                remote: remote(),
                dir,
                bytes: Bytes::from(vec![b'x'; len]),
            },
        )
    }

    fn accepted(ms: i64, peer: PeerId) -> Event {
        event(
            ms,
            EventKind::Accepted {
                peer,
                local: remote(),
                remote: remote(),
            },
        )
    }

    #[test]
    fn totals_per_endpoint_and_peer_count_payloads_and_bytes_each_way() {
        let mut s = Sampler::default();
        s.record(&event(0, EventKind::Listening { local: remote() }));
        s.record(&accepted(10, 1));
        s.record(&accepted(20, 2));
        s.record(&traffic(100, 1, Direction::Received, 10));
        s.record(&traffic(200, 1, Direction::Sent, 10));
        s.record(&traffic(300, 2, Direction::Received, 5));
        let e = s.get(ID).unwrap();
        assert_eq!(
            e.totals,
            Counts {
                payloads_in: 2,
                bytes_in: 15,
                payloads_out: 1,
                bytes_out: 10
            }
        );
        let peers: Vec<_> = e.peers().map(|(n, p)| (n, p.counts, p.open)).collect();
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].1.bytes_out, 10);
        assert_eq!(peers[1].1.bytes_in, 5);
        assert_eq!((e.open, e.connections), (2, 2));
        s.record(&event(
            400,
            EventKind::Closed {
                peer: 1,
                aborted: false,
            },
        ));
        // A reset and a close of one connection end it once.
        s.record(&event(410, EventKind::Reset { peer: 2 }));
        s.record(&event(
            420,
            EventKind::Closed {
                peer: 2,
                aborted: false,
            },
        ));
        let e = s.get(ID).unwrap();
        assert_eq!((e.open, e.connections), (0, 2));
    }

    #[test]
    fn the_rate_is_the_last_whole_second_and_quiet_seconds_are_zero() {
        let mut s = Sampler::default();
        s.record(&event(0, EventKind::Bound { local: remote() }));
        s.record(&traffic(1_100, 1, Direction::Sent, 100));
        s.record(&traffic(1_900, 1, Direction::Sent, 50));
        s.record(&traffic(2_500, 1, Direction::Received, 7));
        let e = s.get(ID).unwrap();
        // During second 2, the last whole second is second 1.
        assert_eq!(e.rate(at(2_600)).bytes_out, 150);
        assert_eq!(e.rate(at(2_600)).payloads_out, 2);
        assert_eq!(e.rate(at(3_000)).bytes_in, 7);
        assert_eq!(e.rate(at(3_000)).bytes_out, 0);
        // Long after, nothing went: zero, not the last busy second.
        assert_eq!(e.rate(at(9_000)), Counts::default());
        // Before the first whole second there is no rate.
        assert_eq!(e.rate(at(500)), Counts::default());
        let peer = e.peers().next().unwrap().1;
        assert_eq!(e.peer_rate(peer, at(2_600)).bytes_out, 150);
        assert_eq!(e.peer_rate(peer, at(3_100)).bytes_in, 7);
        assert_eq!(e.peer_rate(peer, at(5_000)), Counts::default());
        // The ring has no gaps: seconds 1 and 2 (0 had no traffic yet).
        let seconds: Vec<u64> = e.samples().map(|s| s.second).collect();
        assert_eq!(seconds, [1, 2]);
    }

    #[test]
    fn a_late_event_counts_in_its_own_second() {
        let mut s = Sampler::default();
        s.record(&event(0, EventKind::Bound { local: remote() }));
        s.record(&traffic(1_000, 1, Direction::Sent, 1));
        s.record(&traffic(4_000, 1, Direction::Sent, 4));
        // Stamped before the one drained before it.
        s.record(&traffic(2_200, 1, Direction::Sent, 2));
        let e = s.get(ID).unwrap();
        let seconds: Vec<(u64, u64)> = e
            .samples()
            .map(|s| (s.second, s.counts.bytes_out))
            .collect();
        assert_eq!(seconds, [(1, 1), (2, 2), (3, 0), (4, 4)]);
        assert_eq!(e.rate(at(3_500)).bytes_out, 2);
    }

    #[test]
    fn the_ring_keeps_the_last_seconds_only() {
        let mut s = Sampler::default();
        for second in 0..(RING_SECONDS as i64 + 50) {
            s.record(&traffic(second * 1_000, 1, Direction::Received, 1));
        }
        let e = s.get(ID).unwrap();
        assert_eq!(e.samples().count(), RING_SECONDS);
        assert_eq!(e.samples().next().unwrap().second, 50);
        assert_eq!(e.totals.bytes_in, RING_SECONDS as u64 + 50);
        // A gap longer than the ring starts it afresh, one sample long.
        s.record(&traffic(10_000_000, 1, Direction::Received, 1));
        let e = s.get(ID).unwrap();
        assert_eq!(e.samples().count(), 1);
        // An event older than the ring counts in the totals only.
        s.record(&traffic(1_000, 1, Direction::Received, 1));
        let e = s.get(ID).unwrap();
        assert_eq!(e.samples().count(), 1);
        assert_eq!(e.totals.bytes_in, RING_SECONDS as u64 + 52);
    }

    #[test]
    fn peers_past_the_cap_are_counted_together() {
        let mut s = Sampler::default();
        for peer in 1..=(MAX_PEERS as u32 + 3) {
            s.record(&traffic(0, peer, Direction::Received, 2));
        }
        let e = s.get(ID).unwrap();
        assert_eq!(e.peers().count(), MAX_PEERS);
        assert_eq!(e.peers_seen, MAX_PEERS as u64 + 3);
        assert_eq!(e.other_peers.bytes_in, 6);
        assert_eq!(e.totals.bytes_in, 2 * (MAX_PEERS as u64 + 3));
    }

    #[test]
    fn a_restart_starts_the_numbers_and_the_clock_over() {
        let mut s = Sampler::default();
        s.record(&accepted(0, 1));
        s.record(&traffic(1_500, 1, Direction::Received, 9));
        s.record(&event(2_000, EventKind::Stopped));
        let e = s.get(ID).unwrap();
        assert!(e.stopped());
        assert_eq!((e.open, e.totals.bytes_in), (0, 9));
        // Started again 60 s later.
        s.record(&event(60_000, EventKind::Listening { local: remote() }));
        s.record(&traffic(61_200, 1, Direction::Received, 3));
        let e = s.get(ID).unwrap();
        assert!(!e.stopped());
        assert_eq!(e.started, at(60_000));
        assert_eq!(e.totals.bytes_in, 3);
        assert_eq!(e.connections, 0);
        let seconds: Vec<u64> = e.samples().map(|s| s.second).collect();
        assert_eq!(seconds, [1]);
        assert_eq!(e.rate(at(62_100)).bytes_in, 3);
    }

    #[test]
    fn a_late_note_after_stopped_keeps_the_numbers_of_that_run() {
        let mut s = Sampler::default();
        s.record(&accepted(0, 1));
        s.record(&traffic(500, 1, Direction::Received, 9));
        s.record(&event(1_000, EventKind::Stopped));
        s.record(&event(
            1_100,
            EventKind::Note {
                peer: None,
                text: "late".into(),
            },
        ));
        let e = s.get(ID).unwrap();
        assert!(e.stopped());
        assert_eq!((e.totals.bytes_in, e.connections), (9, 1));
        assert_eq!(e.started, at(0));
    }

    #[test]
    fn retain_forgets_endpoints_no_longer_there() {
        let mut s = Sampler::default();
        s.record(&traffic(0, 1, Direction::Sent, 1));
        s.record(&Event {
            id: EndpointId(8),
            at: at(0),
            kind: EventKind::Stopped,
        });
        s.retain(|id| id == ID);
        assert_eq!(s.len(), 1);
        assert!(s.get(EndpointId(8)).is_none());
    }
}
