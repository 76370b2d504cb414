//! `connect --stats` and `listen --stats`: one line a second on stderr with
//! the payloads and bytes that went each way, their rates over the last
//! second, and the connections (TCP) or peers (UDP). Pure arithmetic on the
//! run's totals, so it costs nothing between lines and nothing when off.

use std::time::Duration;

use crate::model::budget::size_text;
use crate::model::log::Totals;

/// How often a line is printed.
pub(super) const EVERY: Duration = Duration::from_secs(1);

/// What the previous line counted, so the next says the rates since.
#[derive(Debug, Default)]
pub(super) struct Stats {
    /// Time since the run started, at the previous line.
    last_at: Duration,
    last: Totals,
}

/// The peers part of a line: open connections or peers seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Peers {
    Connections(usize),
    Datagram(usize),
}

impl Stats {
    /// The line for `totals` at `at` since the start (say `stats 3s: …`).
    pub fn line(&mut self, at: Duration, totals: &Totals, peers: Peers) -> String {
        let span = at.saturating_sub(self.last_at).as_secs_f64();
        let rate = |now: u64, before: u64| -> f64 {
            if span > 0.0 {
                now.saturating_sub(before) as f64 / span
            } else {
                0.0
            }
        };
        let way = |payloads: u64, bytes: u64, payloads_before: u64, bytes_before: u64| {
            format!(
                "{payloads} payload{} {} ({}/s, {:.0} payloads/s)",
                if payloads == 1 { "" } else { "s" },
                size_text(bytes),
                size_text(rate(bytes, bytes_before).round() as u64),
                rate(payloads, payloads_before),
            )
        };
        let peers = match peers {
            Peers::Connections(n) => format!("{n} connection{}", if n == 1 { "" } else { "s" }),
            Peers::Datagram(n) => format!("{n} peer{}", if n == 1 { "" } else { "s" }),
        };
        let line = format!(
            "stats {}s: sent {}; received {}; {peers}",
            at.as_secs(),
            way(
                totals.sent,
                totals.sent_bytes,
                self.last.sent,
                self.last.sent_bytes
            ),
            way(
                totals.received,
                totals.received_bytes,
                self.last.received,
                self.last.received_bytes
            ),
        );
        self.last_at = at;
        self.last = *totals;
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_totals_and_the_rates_since_the_line_before() {
        let mut stats = Stats::default();
        let mut totals = Totals {
            sent: 2,
            sent_bytes: 2048,
            received: 1,
            received_bytes: 10,
        };
        assert_eq!(
            stats.line(Duration::from_secs(1), &totals, Peers::Connections(1)),
            "stats 1s: sent 2 payloads 2 KiB (2 KiB/s, 2 payloads/s); \
             received 1 payload 10 bytes (10 bytes/s, 1 payloads/s); 1 connection"
        );
        totals.sent += 4;
        totals.sent_bytes += 4096;
        assert_eq!(
            stats.line(Duration::from_secs(3), &totals, Peers::Datagram(3)),
            "stats 3s: sent 6 payloads 6 KiB (2 KiB/s, 2 payloads/s); \
             received 1 payload 10 bytes (0 bytes/s, 0 payloads/s); 3 peers"
        );
        // Two lines at one moment (a clock that did not move) divide by nothing.
        assert!(
            stats
                .line(Duration::from_secs(3), &totals, Peers::Connections(0))
                .contains("(0 bytes/s, 0 payloads/s)")
        );
    }
}
