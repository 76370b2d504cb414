//! A session's log as CSV: one row per entry, for spreadsheets and scripts.

use crate::model::TrafficLog;
use crate::model::payload::to_text_notation;
use crate::persist::format_timestamp;

/// Columns: time (RFC 3339 UTC, µs), endpoint, event, peer, length, data.
/// `data` is the payload in text notation (escapes for what is not printable),
/// or the event's detail line.
pub fn to_csv(log: &TrafficLog) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(["time", "endpoint", "event", "peer", "length", "data"]);
    for e in log.entries() {
        let data = log.bytes_of(e);
        let peer = log.peer_of(e).map(|p| p.remote.clone()).unwrap_or_default();
        let (length, text) = if e.kind.is_traffic() {
            (data.len().to_string(), to_text_notation(data))
        } else {
            let detail = String::from_utf8_lossy(data).into_owned();
            let detail = match e.kind {
                crate::model::EntryKind::Failed(k) => format!("{}: {detail}", k.label()),
                _ => detail,
            };
            (String::new(), detail)
        };
        let _ = writer.write_record([
            format_timestamp(&e.at()),
            log.endpoint_name(e).to_owned(),
            e.kind.word().to_owned(),
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
    use crate::model::log::{EntryKind, NO_PEER};
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
             1970-01-01T00:00:01.000001Z,\"client, one\",->,127.0.0.1:7,10,\"say \"\"hi\"\"\\r\\n\"\n\
             1970-01-01T00:00:01.000001Z,\"client, one\",<-,127.0.0.1:7,2,\\0\\xff\n\
             1970-01-01T00:00:01.000001Z,\"client, one\",stopped,,,\n"
        );
    }
}
