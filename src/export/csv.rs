//! A session's log as CSV: one row per entry, for spreadsheets and scripts.

use super::encode::{csv_cell, csv_payload_cell};
use crate::model::{EntryKind, TrafficLog};
use crate::persist::format_timestamp;

/// The event column: a word, never an arrow (a cell `->` is a formula to a
/// spreadsheet).
fn event_word(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Sent => "sent",
        EntryKind::Received => "received",
        EntryKind::Unsent => "unsent",
        other => other.word(),
    }
}

/// Columns: time (RFC 3339 UTC, µs), endpoint, event, peer, length, data.
/// `data` is the payload in text notation (escapes for what is not printable),
/// or the event's detail line. Every cell from the session is encoded by
/// [`csv_cell`]: controls escaped, and a leading `'` where a spreadsheet would
/// otherwise read a formula.
pub fn to_csv(log: &TrafficLog) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(["time", "endpoint", "event", "peer", "length", "data"]);
    for e in log.entries() {
        let data = log.bytes_of(e);
        let peer = log
            .peer_of(e)
            .map(|p| csv_cell(&p.remote))
            .unwrap_or_default();
        let (length, text) = if e.kind.has_payload() {
            // The true length, also for a payload of which only the first bytes were kept.
            (e.len().to_string(), csv_payload_cell(data))
        } else {
            let detail = String::from_utf8_lossy(data);
            let detail = match e.kind {
                EntryKind::Failed(k) => format!("{}: {detail}", k.label()),
                _ => detail.into_owned(),
            };
            (String::new(), csv_cell(&detail))
        };
        let _ = writer.write_record([
            format_timestamp(&e.at()),
            csv_cell(log.endpoint_name(e)),
            event_word(e.kind).to_owned(),
            peer,
            length,
            text,
        ]);
    }
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::log::{ErrorKind, NO_PEER};
    use chrono::DateTime;

    #[test]
    fn csv_text() {
        let mut log = TrafficLog::new();
        let c = log.endpoint_index("client, one");
        let p = log.peer_index(c, 0, "127.0.0.1:7");
        let at = DateTime::from_timestamp_micros(1_000_001).unwrap();
        log.push(at, c, p, EntryKind::Sent, b"say \"hi\"\r\n");
        log.push(at, c, p, EntryKind::Received, &[0, 255]);
        log.push(at, c, NO_PEER, EntryKind::Stopped, b"");
        assert_eq!(
            to_csv(&log),
            "time,endpoint,event,peer,length,data\n\
             1970-01-01T00:00:01.000001Z,\"client, one\",sent,127.0.0.1:7,10,\"say \"\"hi\"\"\\r\\n\"\n\
             1970-01-01T00:00:01.000001Z,\"client, one\",received,127.0.0.1:7,2,\\0\\xff\n\
             1970-01-01T00:00:01.000001Z,\"client, one\",stopped,,,\n"
        );
    }

    /// Cells from a session never start a formula and never break a row.
    #[test]
    fn session_text_is_never_a_formula() {
        let mut log = TrafficLog::new();
        let c = log.endpoint_index("=cmd|' /C calc'!A0");
        let p = log.peer_index(c, 0, "@SUM(1+1)");
        let at = DateTime::from_timestamp_micros(0).unwrap();
        log.push(at, c, p, EntryKind::Sent, b"+1+1\r\n");
        log.push(at, c, p, EntryKind::Received, b"-1");
        log.push(
            at,
            c,
            NO_PEER,
            EntryKind::Note,
            "-2+3\nforged,row\r\u{85}\u{202e}".as_bytes(),
        );
        log.push(at, c, NO_PEER, EntryKind::Failed(ErrorKind::Other), b"=1");
        let text = to_csv(&log);
        assert_eq!(
            text,
            "time,endpoint,event,peer,length,data\n\
             1970-01-01T00:00:00.000000Z,'=cmd|' /C calc'!A0,sent,'@SUM(1+1),6,'+1+1\\r\\n\n\
             1970-01-01T00:00:00.000000Z,'=cmd|' /C calc'!A0,received,'@SUM(1+1),2,-1\n\
             1970-01-01T00:00:00.000000Z,'=cmd|' /C calc'!A0,note,,,\"'-2+3\\nforged,row\\r\\u{85}\\u{202e}\"\n\
             1970-01-01T00:00:00.000000Z,'=cmd|' /C calc'!A0,failed,,,error: =1\n"
        );
    }
}
