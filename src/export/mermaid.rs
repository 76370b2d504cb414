//! A session's log as a Mermaid `sequenceDiagram`.

use std::fmt::Write as _;

use super::sequence::{MessageKind, sequence};
use crate::model::TrafficLog;

/// Mermaid reads `;` and `#` specially in message text; they become entity codes.
fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' => s.push_str("#35;"),
            ';' => s.push_str("#59;"),
            '\n' | '\r' => s.push(' '),
            c => s.push(c),
        }
    }
    s
}

pub fn to_mermaid(log: &TrafficLog) -> String {
    let seq = sequence(log);
    let mut out = String::from("sequenceDiagram\n");
    for (i, name) in seq.participants.iter().enumerate() {
        let _ = writeln!(out, "    participant P{i} as {}", escape(name));
    }
    for m in &seq.messages {
        let label = escape(&m.label);
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
             \x20   P0->>P1: \"a#35;b#59;\\n\" (5 bytes)\n"
        );
    }
}
