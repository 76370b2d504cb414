//! A session's log as a sequence diagram: a lifeline per endpoint and per
//! outside peer, an arrow per payload and per connection event. The window
//! draws it; [`super::mermaid`] writes it as text.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::model::log::{Entry, EntryKind, TrafficLog};
use crate::model::payload::preview;

/// What an arrow or note stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// A payload, from its sender to its receiver.
    Payload,
    /// A connection event between two lifelines (connect, FIN, RST).
    Control,
    /// An event of one endpoint only (listening, stopped), shown on its lifeline.
    Note,
    /// A failure, shown on the endpoint's lifeline.
    Failure,
}

/// One arrow (or note, when `from == to`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub kind: MessageKind,
    /// The log row it shows.
    pub row: usize,
}

/// Lifelines and messages, in log order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sequence {
    pub participants: Vec<String>,
    pub messages: Vec<Message>,
}

/// The addresses each endpoint of the log owns (where it listens or is bound,
/// and the local end of its connections), to join both ends of a conversation
/// between two endpoints of the same session.
fn owned_addresses(log: &TrafficLog) -> Vec<(SocketAddr, u32)> {
    let mut owned = Vec::new();
    for e in log.entries() {
        if !matches!(
            e.kind,
            EntryKind::Listening | EntryKind::Bound | EntryKind::Connected
        ) {
            continue;
        }
        let detail = String::from_utf8_lossy(log.bytes_of(e));
        let address = match e.kind {
            EntryKind::Listening | EntryKind::Bound => detail.trim().parse().ok(),
            EntryKind::Connected => detail
                .trim()
                .strip_prefix("from ")
                .and_then(|a| a.parse().ok()),
            _ => None,
        };
        if let Some(a) = address {
            owned.push((a, e.endpoint));
        }
    }
    owned
}

fn owner(owned: &[(SocketAddr, u32)], remote: &SocketAddr) -> Option<u32> {
    owned
        .iter()
        .find(|(a, _)| a == remote || (a.ip().is_unspecified() && a.port() == remote.port()))
        .map(|(_, e)| *e)
}

/// Bytes of a payload a label looks at: enough for 40 characters however
/// they are escaped, and never the whole of a large payload (a label is made
/// for every row each time the diagram is built).
const LABEL_LOOK: usize = 4096;

/// The label of a payload arrow: a preview of its first bytes and its length.
pub fn payload_label(log: &TrafficLog, e: &Entry) -> String {
    let data = log.bytes_of(e);
    let data = &data[..data.len().min(LABEL_LOOK)];
    format!(
        "{} ({} byte{})",
        preview(data, 40),
        e.len(),
        if e.len() == 1 { "" } else { "s" }
    )
}

/// Builds the diagram of a log.
pub fn sequence(log: &TrafficLog) -> Sequence {
    sequence_with(log, &mut |_, e| payload_label(log, e))
}

/// Builds the diagram of a log, asking `label` for each payload arrow's label
/// (with the row's index), so a caller that builds the diagram again as the
/// log grows can keep the labels it made and read no payload twice.
pub fn sequence_with(log: &TrafficLog, label: &mut dyn FnMut(usize, &Entry) -> String) -> Sequence {
    let owned = owned_addresses(log);
    let mut seq = Sequence {
        participants: log.endpoints().to_vec(),
        messages: Vec::new(),
    };
    let mut outside: HashMap<String, usize> = HashMap::new();
    for (row, e) in log.entries().iter().enumerate() {
        let me = e.endpoint as usize;
        let peer = log.peer_of(e);
        let remote: Option<SocketAddr> = peer.and_then(|p| p.remote.parse().ok());
        // The other lifeline: an endpoint of ours, or the outside address.
        let ours = remote
            .as_ref()
            .and_then(|r| owner(&owned, r))
            .map(|i| i as usize);
        let other = match (ours, peer) {
            (Some(i), _) => Some(i),
            (None, Some(p)) => {
                let name = if p.remote.is_empty() {
                    format!("{} peer #{}", log.endpoint_name(e), p.number)
                } else {
                    p.remote.clone()
                };
                let next = seq.participants.len();
                let i = *outside.entry(name.clone()).or_insert(next);
                if i == next {
                    seq.participants.push(name);
                }
                Some(i)
            }
            (None, None) => None,
        };
        // Payload rows need no detail (their label looks at a few bytes):
        // copying every payload each time the diagram is built cost a frame
        // its time, and made spilled bytes resident again.
        let detail = if e.kind.is_traffic() {
            String::new()
        } else {
            String::from_utf8_lossy(log.bytes_of(e)).into_owned()
        };
        let mut push = |from: usize, to: usize, label: String, kind: MessageKind| {
            seq.messages.push(Message {
                from,
                to,
                label,
                kind,
                row,
            });
        };
        match (e.kind, other) {
            (EntryKind::Sent, Some(o)) => push(me, o, label(row, e), MessageKind::Payload),
            // Between two of our endpoints the sender's row already shows it.
            (EntryKind::Received, Some(o)) if ours.is_none() => {
                push(o, me, label(row, e), MessageKind::Payload)
            }
            (EntryKind::Connected, Some(o)) => push(
                me,
                o,
                "connect (SYN, SYN-ACK, ACK)".into(),
                MessageKind::Control,
            ),
            (EntryKind::Accepted, Some(o)) if ours.is_none() => {
                push(o, me, "connect (accepted)".into(), MessageKind::Control)
            }
            (EntryKind::HalfClosed, Some(o)) => {
                push(me, o, "FIN (shutdown)".into(), MessageKind::Control)
            }
            (EntryKind::PeerClosed, Some(o)) if ours.is_none() => {
                push(o, me, "FIN".into(), MessageKind::Control)
            }
            (EntryKind::TlsHandshake, Some(o)) => {
                // Version, cipher suite, ALPN; the certificate stays in the log row.
                let label = format!(
                    "TLS handshake ({})",
                    detail.split(';').next().unwrap_or_default().trim()
                );
                // A client's row names the server's certificate; a server of ours
                // drawing it too would show the same handshake twice.
                if detail.contains("peer certificate") {
                    push(me, o, label, MessageKind::Control)
                } else if ours.is_none() {
                    push(o, me, label, MessageKind::Control)
                }
            }
            (EntryKind::Reset, Some(o)) => push(o, me, "RST (reset)".into(), MessageKind::Control),
            (EntryKind::Closed, Some(o)) if detail.starts_with("aborted") => {
                push(me, o, "RST (abort)".into(), MessageKind::Control)
            }
            (
                EntryKind::Received
                | EntryKind::Accepted
                | EntryKind::PeerClosed
                | EntryKind::Closed,
                _,
            ) => {}
            (EntryKind::Failed(k), _) => push(
                me,
                me,
                format!("{}: {detail}", k.label()),
                MessageKind::Failure,
            ),
            (
                EntryKind::Listening
                | EntryKind::Bound
                | EntryKind::Stopped
                | EntryKind::Note
                | EntryKind::Resolving,
                _,
            ) => {
                let text = format!("{} {detail}", e.kind.label());
                push(me, me, text.trim().to_owned(), MessageKind::Note)
            }
            _ => {}
        }
    }
    seq
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::log::NO_PEER;
    use chrono::Utc;

    #[test]
    fn two_endpoints_of_a_session_talk_to_each_other() {
        let mut log = TrafficLog::new();
        let s = log.endpoint_index("server");
        let c = log.endpoint_index("client");
        let now = Utc::now();
        log.push(now, s, NO_PEER, EntryKind::Listening, b"127.0.0.1:7007");
        let cp = log.peer_index(c, 0, "127.0.0.1:7007");
        let sp = log.peer_index(s, 1, "127.0.0.1:50000");
        log.push(now, c, cp, EntryKind::Connected, b"from 127.0.0.1:50000");
        log.push(now, s, sp, EntryKind::Accepted, b"on 127.0.0.1:7007");
        log.push(
            now,
            s,
            sp,
            EntryKind::TlsHandshake,
            b"TLS 1.3, TLS13_AES_128_GCM_SHA256, no ALPN",
        );
        log.push(
            now,
            c,
            cp,
            EntryKind::TlsHandshake,
            b"TLS 1.3, TLS13_AES_128_GCM_SHA256, no ALPN; peer certificate subject CN=x",
        );
        log.push(now, c, cp, EntryKind::Sent, b"hi\n");
        log.push(now, s, sp, EntryKind::Received, b"hi\n");
        log.push(now, s, sp, EntryKind::Sent, b"hi\n");
        log.push(now, c, cp, EntryKind::Received, b"hi\n");
        let seq = sequence(&log);
        assert_eq!(seq.participants, ["server", "client"]);
        let arrows: Vec<(usize, usize, &str)> = seq
            .messages
            .iter()
            .map(|m| (m.from, m.to, m.label.as_str()))
            .collect();
        assert_eq!(
            arrows,
            [
                (0, 0, "listening 127.0.0.1:7007"),
                (1, 0, "connect (SYN, SYN-ACK, ACK)"),
                (
                    1,
                    0,
                    "TLS handshake (TLS 1.3, TLS13_AES_128_GCM_SHA256, no ALPN)"
                ),
                (1, 0, "\"hi\\n\" (3 bytes)"),
                (0, 1, "\"hi\\n\" (3 bytes)"),
            ]
        );
        assert_eq!(seq.messages[3].row, 5);
    }

    #[test]
    fn outside_peers_get_their_own_lifeline() {
        let mut log = TrafficLog::new();
        let c = log.endpoint_index("client");
        let p = log.peer_index(c, 0, "192.0.2.1:80");
        let now = Utc::now();
        log.push(now, c, p, EntryKind::Sent, b"GET");
        log.push(now, c, p, EntryKind::Received, &[0, 1]);
        log.push(now, c, p, EntryKind::Reset, b"");
        let seq = sequence(&log);
        assert_eq!(seq.participants, ["client", "192.0.2.1:80"]);
        assert_eq!(seq.messages[1].from, 1);
        assert_eq!(seq.messages[1].label, "[00 01] (2 bytes)");
        assert_eq!(seq.messages[2].label, "RST (reset)");
    }
}
