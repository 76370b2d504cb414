//! `--json`: one JSON object per event on stdout, for scripts that must never
//! parse the human lines. Every string goes through serde_json, so a peer's
//! bytes, a name or an address from a file cannot break a line or an object.
//!
//! Every object has `time` (RFC 3339 UTC, microseconds), `endpoint` (its name,
//! or null), `peer` (the remote address, `#N` when unknown, or null) and
//! `kind`. Payloads (`sent`, `received`) add `length` (the true length),
//! `hex` (the bytes the log kept, lowercase, no spaces), `text` (those bytes
//! as UTF-8, invalid sequences as U+FFFD) and `complete` (false when the log
//! kept only the first bytes). Other events add `detail`, and `failed` adds
//! `error` (its kind: `connection refused`, `timed out`, …). A replay check
//! adds one `check` object per conversation and one `check-summary`.

use serde::Serialize;

use crate::model::log::{EntryKind, TrafficLog};
use crate::model::replay::ConversationCheck;
use crate::persist::format_timestamp;

#[derive(Serialize)]
struct EventJson<'a> {
    time: String,
    endpoint: Option<&'a str>,
    peer: Option<String>,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    complete: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

/// The `kind` of a log entry: one word, as the event lines name it.
pub fn kind_word(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Sent => "sent",
        EntryKind::Received => "received",
        other => other.word(),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn line(value: &impl Serialize) -> String {
    // Serializing these plain structs cannot fail; an empty object is still
    // one valid line if it ever did.
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

/// Log entry `index` as one JSON object (one line, no line break in it).
pub fn entry(log: &TrafficLog, index: usize) -> String {
    let Some(e) = log.entry(index) else {
        return String::new();
    };
    let data = log.bytes_of(e);
    let peer = log.peer_of(e).map(|p| {
        if p.remote.is_empty() {
            format!("#{}", p.number)
        } else {
            p.remote.clone()
        }
    });
    let traffic = e.kind.is_traffic();
    let object = EventJson {
        time: format_timestamp(&e.at()),
        endpoint: Some(log.endpoint_name(e)),
        peer,
        kind: kind_word(e.kind),
        length: traffic.then(|| e.len()),
        hex: traffic.then(|| hex(data)),
        text: traffic.then(|| String::from_utf8_lossy(data).into_owned()),
        complete: traffic.then(|| e.is_complete()),
        detail: (!traffic).then(|| String::from_utf8_lossy(data).into_owned()),
        error: match e.kind {
            EntryKind::Failed(kind) => Some(kind.label()),
            _ => None,
        },
    };
    line(&object)
}

#[derive(Serialize)]
struct IgnoredJson<'a> {
    rule: &'a str,
    spans: usize,
}

#[derive(Serialize)]
struct CheckJson<'a> {
    time: String,
    endpoint: &'a str,
    peer: Option<String>,
    kind: &'static str,
    /// `connection` (TCP, TLS) or `exchange` (UDP).
    conversation_kind: &'static str,
    /// 1-based, as the report numbers it.
    conversation: usize,
    passed: bool,
    ignored: Vec<IgnoredJson<'a>>,
    /// The mismatch report (several lines), when it did not pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<String>,
}

/// One checked conversation as a `check` object.
pub fn check(c: &ConversationCheck) -> String {
    line(&CheckJson {
        time: format_timestamp(&crate::engine::now()),
        endpoint: &c.endpoint,
        peer: None,
        kind: "check",
        conversation_kind: if c.udp { "exchange" } else { "connection" },
        conversation: c.conversation,
        passed: c.mismatch.is_none(),
        ignored: c
            .ignored
            .iter()
            .map(|(rule, spans)| IgnoredJson {
                rule,
                spans: *spans,
            })
            .collect(),
        report: c
            .mismatch
            .as_ref()
            .map(|m| m.to_string().trim_end().to_owned()),
    })
}

#[derive(Serialize)]
struct SummaryJson<'a> {
    time: String,
    endpoint: Option<&'a str>,
    peer: Option<String>,
    kind: &'static str,
    /// False when the run could not be compared (interrupted, bytes lost).
    checked: bool,
    passed: bool,
    conversations: usize,
    failed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// The check's outcome as a `check-summary` object; `reason` says why it was
/// not checked, when it was not.
pub fn check_summary(conversations: usize, failed: usize, reason: Option<&str>) -> String {
    line(&SummaryJson {
        time: format_timestamp(&crate::engine::now()),
        endpoint: None,
        peer: None,
        kind: "check-summary",
        checked: reason.is_none(),
        passed: reason.is_none() && failed == 0,
        conversations,
        failed,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::log::{ErrorKind, NO_PEER};
    use chrono::DateTime;

    #[test]
    fn hostile_bytes_stay_inside_one_object() {
        let mut log = TrafficLog::new();
        let ep = log.endpoint_index("\"evil\"\n{\u{202e}");
        let p = log.peer_index(ep, 0, "10.0.0.1:1\n\"}");
        let at = DateTime::from_timestamp_micros(1_764_064_800_123_456).unwrap();
        log.push(
            at,
            ep,
            p,
            EntryKind::Received,
            b"\x00\"\\\n\x1b[2J\xff\xfe}",
        );
        log.push(
            at,
            ep,
            NO_PEER,
            EntryKind::Failed(ErrorKind::Refused),
            b"no \"way\"\n",
        );
        let first = entry(&log, 0);
        assert!(!first.contains('\n'), "{first}");
        let v: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(v["time"], "2025-11-25T10:00:00.123456Z");
        assert_eq!(v["endpoint"], "\"evil\"\n{\u{202e}");
        assert_eq!(v["peer"], "10.0.0.1:1\n\"}");
        assert_eq!(v["kind"], "received");
        assert_eq!(v["length"], 11);
        assert_eq!(v["hex"], "00225c0a1b5b324afffe7d");
        assert_eq!(v["text"], "\u{0}\"\\\n\u{1b}[2J\u{fffd}\u{fffd}}");
        assert_eq!(v["complete"], true);
        let second: serde_json::Value = serde_json::from_str(&entry(&log, 1)).unwrap();
        assert_eq!(second["kind"], "failed");
        assert_eq!(second["error"], "connection refused");
        assert_eq!(second["detail"], "no \"way\"\n");
        assert_eq!(second["peer"], serde_json::Value::Null);
        assert!(second.get("hex").is_none());
    }
}
