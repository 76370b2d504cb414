//! A session's log as a Mermaid `sequenceDiagram`.

use std::fmt::Write as _;

use super::encode::mermaid_text;
use super::sequence::{MessageKind, sequence};
use crate::model::TrafficLog;

/// The diagram as Mermaid text. Every name and label goes through
/// [`mermaid_text`]; the lifelines are `P0`, `P1`, … so no name is ever syntax.
pub fn to_mermaid(log: &TrafficLog) -> String {
    let seq = sequence(log);
    let mut out = String::from("sequenceDiagram\n");
    for (i, name) in seq.participants.iter().enumerate() {
        let _ = writeln!(out, "    participant P{i} as {}", mermaid_text(name));
    }
    for m in &seq.messages {
        let label = mermaid_text(&m.label);
        let _ = match m.kind {
            MessageKind::Payload => writeln!(out, "    P{}->>P{}: {label}", m.from, m.to),
            MessageKind::Control => writeln!(out, "    P{}-->>P{}: {label}", m.from, m.to),
            MessageKind::Note => writeln!(out, "    Note over P{}: {label}", m.from),
            MessageKind::Failure => writeln!(out, "    Note over P{}: ✖ {label}", m.from),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::log::{EntryKind, ErrorKind, NO_PEER};
    use chrono::Utc;

    #[test]
    fn mermaid_text() {
        let mut log = TrafficLog::new();
        let c = log.endpoint_index("my client");
        let p = log.peer_index(c, 0, "127.0.0.1:7");
        let now = Utc::now();
        log.push(
            now,
            c,
            NO_PEER,
            EntryKind::Failed(ErrorKind::Refused),
            b"connect to 127.0.0.1:8; refused",
        );
        log.push(now, c, p, EntryKind::Connected, b"from 127.0.0.1:5000");
        log.push(now, c, p, EntryKind::Sent, b"a#b;\n");
        assert_eq!(
            to_mermaid(&log),
            "sequenceDiagram\n\
             \x20   participant P0 as my client\n\
             \x20   participant P1 as 127.0.0.1:7\n\
             \x20   Note over P0: ✖ connection refused: connect to 127.0.0.1:8#59; refused\n\
             \x20   P0-->>P1: connect (SYN, SYN-ACK, ACK)\n\
             \x20   P0->>P1: #quot;a#35;b#59;\\n#quot; (5 bytes)\n"
        );
    }

    /// Names, addresses, notes and details from a session file stay labels:
    /// one line each, no statement separator, comment, directive or HTML.
    #[test]
    fn session_text_cannot_add_to_the_diagram() {
        let hostile = "x\nNote over P0: forged; %%{init: {\"securityLevel\": \"loose\"}}%% #c <img src=x> -->> P1\r\u{85}\u{2028}\u{202e}";
        let mut log = TrafficLog::new();
        let c = log.endpoint_index(hostile);
        let p = log.peer_index(c, 0, hostile);
        let now = Utc::now();
        log.push(now, c, NO_PEER, EntryKind::Note, hostile.as_bytes());
        log.push(
            now,
            c,
            NO_PEER,
            EntryKind::Failed(ErrorKind::Other),
            hostile.as_bytes(),
        );
        log.push(now, c, p, EntryKind::Sent, hostile.as_bytes());
        let text = to_mermaid(&log);
        let lines: Vec<&str> = text.lines().collect();
        // The header, two lifelines (the endpoint, the outside peer), three messages.
        assert_eq!(lines.len(), 6, "{text}");
        for line in &lines[1..] {
            let (_, label) = line
                .split_once(" as ")
                .or_else(|| line.split_once(": "))
                .unwrap();
            let mut rest = label.to_owned();
            for entity in ["#35;", "#59;", "#37;", "#quot;", "#lt;", "#gt;", "#amp;"] {
                rest = rest.replace(entity, "");
            }
            for forbidden in [
                '#', ';', '%', '"', '<', '>', '&', '\r', '\u{85}', '\u{2028}', '\u{202e}',
            ] {
                assert!(!rest.contains(forbidden), "{forbidden:?} in {line}");
            }
        }
        assert!(
            lines[1]
                .starts_with("    participant P0 as x\\nNote over P0: forged#59; #37;#37;{init"),
            "{text}"
        );
    }
}
