//! The command line's output: one line per log entry, and the summary line.
//!
//! Every part of a line that a peer or a file controls (endpoint names, peer
//! addresses, details, certificate names) goes through
//! [`escape_controls`]: one event is one line, and no byte from outside
//! reaches the terminal as a control.

use crate::model::budget::size_text;
use crate::model::display::{escape_bytes_lossy, escape_controls};
use crate::model::log::{Entry, EntryKind, LogBudget, LogCounters, Overflow, Totals, TrafficLog};
use crate::model::payload::preview;
use crate::persist::format_timestamp;

/// How many characters of a payload a line shows.
const PREVIEW_CHARS: usize = 60;

/// The peer column: its address when known, else its number, else `-`
/// (escaped: a recorded address is text from a file).
pub fn peer_label(log: &TrafficLog, e: &Entry) -> String {
    match log.peer_of(e) {
        Some(p) if !p.remote.is_empty() => escape_controls(&p.remote).into_owned(),
        Some(p) => format!("#{}", p.number),
        None => "-".into(),
    }
}

/// One log entry as a line:
/// `TIME ENDPOINT -> PEER LENGTH PREVIEW` for payloads,
/// `TIME ENDPOINT EVENT PEER DETAIL` for everything else.
pub fn entry_line(log: &TrafficLog, index: usize) -> String {
    let Some(e) = log.entry(index) else {
        return String::new();
    };
    let time = format_timestamp(&e.at());
    let endpoint = escape_controls(log.endpoint_name(e));
    let peer = peer_label(log, e);
    let data = log.bytes_of(e);
    match e.kind {
        // The true length, even when only the first bytes were kept.
        EntryKind::Sent | EntryKind::Received | EntryKind::Unsent => format!(
            "{time} {endpoint} {} {peer} {} {}",
            e.kind.label(),
            e.len(),
            preview(data, PREVIEW_CHARS)
        ),
        other => {
            let mut detail = escape_bytes_lossy(data);
            if let EntryKind::Failed(kind) = other {
                detail = format!("{}: {detail}", kind.label());
            }
            let mut line = format!("{time} {endpoint} {}", other.word());
            for part in [peer.as_str(), &detail] {
                if !part.is_empty() && part != "-" {
                    line.push(' ');
                    line.push_str(part);
                }
            }
            line
        }
    }
}

/// A relay's log entry as a line: payloads name their direction
/// (`client->upstream`, `upstream->client`); other entries as [`entry_line`].
pub fn relay_line(log: &TrafficLog, index: usize) -> String {
    let Some(e) = log.entry(index) else {
        return String::new();
    };
    let way = match e.kind {
        EntryKind::Received => "client->upstream",
        EntryKind::Sent => "upstream->client",
        _ => return entry_line(log, index),
    };
    format!(
        "{} {} {way} {} {} {}",
        format_timestamp(&e.at()),
        escape_controls(log.endpoint_name(e)),
        peer_label(log, e),
        e.len(),
        preview(log.bytes_of(e), PREVIEW_CHARS)
    )
}

/// `summary: sent N payloads (B bytes), received M payloads (C bytes)`.
pub fn summary_line(t: &Totals) -> String {
    format!(
        "summary: sent {} payloads ({} bytes), received {} payloads ({} bytes)",
        t.sent, t.sent_bytes, t.received, t.received_bytes
    )
}

/// A relay's summary: the payloads of each direction.
pub fn relay_summary_line(t: &Totals) -> String {
    // A relay logs what the client sent as received, what the upstream sent as sent.
    format!(
        "summary: client->upstream {} payloads ({} bytes), upstream->client {} payloads ({} bytes)",
        t.received, t.received_bytes, t.sent, t.sent_bytes
    )
}

/// [`summary_line`], then what the log's budget did, when it did something:
/// `summary: …; 1.2 GiB spilled to disk` or `…; 3.4 GiB of payload dropped (counts only)`.
pub fn summary_with_log(t: &Totals, c: &LogCounters, budget: LogBudget) -> String {
    let mut line = summary_line(t);
    if c.spilled_bytes > 0 {
        line.push_str(&format!(
            "; {} spilled to disk ({} payloads)",
            size_text(c.spilled_bytes),
            c.spilled_entries
        ));
    }
    if c.dropped_bytes > 0 {
        let why = if budget == LogBudget::counts_only() {
            "counts only".to_owned()
        } else if budget.overflow == Overflow::Drop {
            format!("beyond the {} log budget", size_text(budget.memory))
        } else {
            "the spill file failed".to_owned()
        };
        line.push_str(&format!(
            "; {} of payload dropped in {} payloads ({why})",
            size_text(c.dropped_bytes),
            c.dropped_entries
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::log::{ErrorKind, NO_PEER};
    use chrono::DateTime;

    #[test]
    fn relay_lines_name_the_direction() {
        let mut log = TrafficLog::new();
        let r = log.endpoint_index("relay");
        let p = log.peer_index(r, 1, "127.0.0.1:5000");
        let at = DateTime::from_timestamp(0, 0).unwrap();
        log.push(at, r, p, EntryKind::Received, b"GET");
        log.push(at, r, p, EntryKind::Sent, b"OK");
        log.push(at, r, p, EntryKind::Note, b"upstream: connected");
        assert!(relay_line(&log, 0).ends_with(" relay client->upstream 127.0.0.1:5000 3 \"GET\""));
        assert!(relay_line(&log, 1).ends_with(" relay upstream->client 127.0.0.1:5000 2 \"OK\""));
        assert_eq!(relay_line(&log, 2), entry_line(&log, 2));
        let mut t = Totals::default();
        t.add(EntryKind::Received, 3);
        t.add(EntryKind::Sent, 2);
        assert_eq!(
            relay_summary_line(&t),
            "summary: client->upstream 1 payloads (3 bytes), upstream->client 1 payloads (2 bytes)"
        );
    }

    #[test]
    fn lines() {
        let mut log = TrafficLog::new();
        let ep = log.endpoint_index("client");
        let p = log.peer_index(ep, 0, "127.0.0.1:7000");
        let at = DateTime::from_timestamp_micros(1_764_064_800_123_456).unwrap();
        log.push(at, ep, p, EntryKind::Connected, b"from 127.0.0.1:50000");
        log.push(at, ep, p, EntryKind::Sent, b"hi\r\n");
        log.push(at, ep, p, EntryKind::Received, &[0, 1]);
        log.push(
            at,
            ep,
            NO_PEER,
            EntryKind::Failed(ErrorKind::Refused),
            b"connect to x: no",
        );
        log.push(at, ep, p, EntryKind::PeerClosed, b"");
        assert_eq!(
            entry_line(&log, 0),
            "2025-11-25T10:00:00.123456Z client connected 127.0.0.1:7000 from 127.0.0.1:50000"
        );
        assert_eq!(
            entry_line(&log, 1),
            "2025-11-25T10:00:00.123456Z client -> 127.0.0.1:7000 4 \"hi\\r\\n\""
        );
        assert_eq!(
            entry_line(&log, 2),
            "2025-11-25T10:00:00.123456Z client <- 127.0.0.1:7000 2 [00 01]"
        );
        assert_eq!(
            entry_line(&log, 3),
            "2025-11-25T10:00:00.123456Z client failed connection refused: connect to x: no"
        );
        assert_eq!(
            entry_line(&log, 4),
            "2025-11-25T10:00:00.123456Z client peer-closed 127.0.0.1:7000"
        );
        assert_eq!(
            summary_line(&log.totals()),
            "summary: sent 1 payloads (4 bytes), received 1 payloads (2 bytes)"
        );
    }

    #[test]
    fn the_summary_says_what_the_budget_did() {
        let t = Totals {
            received: 3,
            received_bytes: 3 << 30,
            ..Totals::default()
        };
        let prefix = "summary: sent 0 payloads (0 bytes), received 3 payloads (3221225472 bytes)";
        assert_eq!(
            summary_with_log(&t, &LogCounters::default(), LogBudget::default()),
            prefix
        );
        let spilled = LogCounters {
            memory_bytes: 256 << 20,
            spilled_bytes: (3 << 30) - (256 << 20),
            spilled_entries: 2,
            ..Default::default()
        };
        assert_eq!(
            summary_with_log(&t, &spilled, LogBudget::default()),
            format!("{prefix}; 2.8 GiB spilled to disk (2 payloads)")
        );
        let dropped = LogCounters {
            dropped_bytes: 3 << 30,
            dropped_entries: 3,
            ..Default::default()
        };
        assert_eq!(
            summary_with_log(&t, &dropped, LogBudget::counts_only()),
            format!("{prefix}; 3 GiB of payload dropped in 3 payloads (counts only)")
        );
        assert_eq!(
            summary_with_log(&t, &dropped, LogBudget::new(1 << 20, Overflow::Drop)),
            format!(
                "{prefix}; 3 GiB of payload dropped in 3 payloads (beyond the 1 MiB log budget)"
            )
        );
    }

    #[test]
    fn a_line_gives_the_true_length_of_a_payload_not_kept_whole() {
        let mut log = TrafficLog::with_budget(LogBudget::new(0, Overflow::Drop));
        let ep = log.endpoint_index("server");
        let at = DateTime::from_timestamp_micros(1_764_064_800_123_456).unwrap();
        log.push(
            at,
            ep,
            crate::model::NO_PEER,
            EntryKind::Received,
            &[b'a'; 5000],
        );
        let line = entry_line(&log, 0);
        assert!(line.contains(" <- - 5000 \"aaaa"), "{line}");
    }

    #[test]
    fn hostile_text_stays_on_one_escaped_line() {
        let mut log = TrafficLog::new();
        let ep = log.endpoint_index("\u{202e}evil\n\x1b[31m");
        let p = log.peer_index(ep, 0, "10.0.0.1:1\n2026-01-01T00:00:00Z server connected");
        let at = DateTime::from_timestamp_micros(1_764_064_800_123_456).unwrap();
        log.push(
            at,
            ep,
            p,
            EntryKind::Received,
            b"\x1b]0;pwned\x07\n2026 FAKE",
        );
        log.push(at, ep, p, EntryKind::Received, "\u{202e}txt".as_bytes());
        log.push(
            at,
            ep,
            p,
            EntryKind::Note,
            "note\nFAKE line\u{9b}2J".as_bytes(),
        );
        log.push(
            at,
            ep,
            p,
            EntryKind::TlsHandshake,
            "TLSv1.3, subject CN=\x1b[2Jx\u{2066}, issuer CN=\r\nFAKE".as_bytes(),
        );
        log.push(
            at,
            ep,
            NO_PEER,
            EntryKind::Failed(ErrorKind::Tls),
            b"bad certificate\nFAKE client connected",
        );
        for i in 0..log.len() {
            let line = entry_line(&log, i);
            assert!(
                !line
                    .chars()
                    .any(crate::model::display::is_unsafe_for_display),
                "{line:?}"
            );
            assert!(line.contains("\\u{202e}evil\\n\\x1b[31m"), "{line:?}");
        }
        assert!(entry_line(&log, 2).ends_with("note\\nFAKE line\\u{9b}2J"));
        assert!(entry_line(&log, 3).contains("subject CN=\\x1b[2Jx\\u{2066}"));
    }
}
