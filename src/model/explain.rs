//! Plain-words explanations of log events, for learners. The text lives in
//! `assets/explanations.ron`, not in the code, so it can be read and improved
//! as prose.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;

use super::display::escape_controls;
use super::log::{EntryKind, ErrorKind};

const SOURCE: &str = include_str!("../../assets/explanations.ron");

fn table() -> &'static HashMap<String, String> {
    static TABLE: OnceLock<HashMap<String, String>> = OnceLock::new();
    TABLE.get_or_init(|| ron::from_str(SOURCE).unwrap_or_default())
}

/// The key of an entry kind in the explanations table.
pub fn key(kind: EntryKind) -> String {
    match kind {
        EntryKind::Failed(e) => format!("Failed.{e:?}"),
        other => format!("{other:?}"),
    }
}

/// The first socket address named in a detail line (`connect to 127.0.0.1:1: …`).
fn address_in(detail: &str) -> Option<String> {
    detail
        .split_whitespace()
        .map(|w| w.trim_end_matches([':', ',', '.']))
        .find(|w| w.parse::<SocketAddr>().is_ok())
        .map(str::to_owned)
}

/// Explains an event of `kind` at `endpoint` with `peer` (an address, or empty)
/// and its detail line, in a sentence or two.
///
/// The name, peer and detail come from peers and files: they are shown
/// escaped ([`escape_controls`]) and put in in one pass, so a name that reads
/// `{detail}` stays those characters and never pulls in other text.
pub fn explain(kind: EntryKind, endpoint: &str, peer: &str, detail: &str) -> String {
    let template = table().get(&key(kind)).map_or("{detail}", String::as_str);
    let peer = if peer.is_empty() {
        "the peer".into()
    } else {
        escape_controls(peer)
    };
    let address = address_in(detail).unwrap_or_else(|| "that address".to_owned());
    let endpoint = format!("\"{}\"", escape_controls(endpoint));
    let detail = escape_controls(detail);
    let mut out = String::with_capacity(template.len() + detail.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        let filled = [
            ("{endpoint}", endpoint.as_str()),
            ("{peer}", &peer),
            ("{detail_address}", &address),
            ("{detail}", &detail),
        ]
        .into_iter()
        .find(|(name, _)| tail.starts_with(name));
        match filled {
            Some((name, value)) => {
                out.push_str(value);
                rest = &tail[name.len()..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The prefix of the keys that explain settings rather than events.
const SETTING: &str = "Setting.";

/// A one-line explanation of a setting (`UdpConnected`, `UdpUnconnected`), as
/// the window shows it next to the choice.
pub fn setting(name: &str) -> String {
    table()
        .get(&format!("{SETTING}{name}"))
        .cloned()
        .unwrap_or_default()
}

/// Every entry kind there is, for completeness checks and lesson texts.
pub fn all_kinds() -> Vec<EntryKind> {
    let mut kinds = vec![
        EntryKind::Sent,
        EntryKind::Received,
        EntryKind::Resolving,
        EntryKind::Connecting,
        EntryKind::Connected,
        EntryKind::Listening,
        EntryKind::Bound,
        EntryKind::Accepted,
        EntryKind::TlsHandshake,
        EntryKind::PeerClosed,
        EntryKind::HalfClosed,
        EntryKind::Reset,
        EntryKind::Closed,
        EntryKind::Stopped,
        EntryKind::Note,
    ];
    kinds.extend(
        [
            ErrorKind::Refused,
            ErrorKind::Reset,
            ErrorKind::TimedOut,
            ErrorKind::Unreachable,
            ErrorKind::NotResolved,
            ErrorKind::AddressInUse,
            ErrorKind::AddressNotAvailable,
            ErrorKind::PermissionDenied,
            ErrorKind::Aborted,
            ErrorKind::BrokenPipe,
            ErrorKind::Tls,
            ErrorKind::Other,
        ]
        .map(EntryKind::Failed),
    );
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The address-in-use advice fits what each kind shows: a TCP server sets
    /// SO_REUSEADDR itself and has no such box, only UDP sockets do.
    #[test]
    fn address_in_use_names_only_options_the_form_offers() {
        let text = explain(
            EntryKind::Failed(ErrorKind::AddressInUse),
            "second server",
            "",
            "bind 127.0.0.1:7104: Address already in use (os error 98)",
        );
        assert!(text.contains("127.0.0.1:7104"), "{text}");
        for sentence in text.split(". ") {
            if sentence.contains("Socket options") {
                assert!(
                    sentence.starts_with("For UDP"),
                    "a box TCP servers lack: {sentence}"
                );
            }
        }
        assert!(text.contains("A TCP server here sets SO_REUSEADDR itself"));
    }

    #[test]
    fn the_asset_parses_and_covers_every_kind() {
        let parsed: HashMap<String, String> =
            ron::from_str(SOURCE).expect("assets/explanations.ron parses");
        for kind in all_kinds() {
            assert!(
                parsed.contains_key(&key(kind)),
                "no explanation for {}",
                key(kind)
            );
        }
        let events = parsed.keys().filter(|k| !k.starts_with(SETTING)).count();
        assert_eq!(
            events,
            all_kinds().len(),
            "explanations for kinds that do not exist"
        );
        for name in ["UdpConnected", "UdpUnconnected"] {
            let text = setting(name);
            assert!(!text.is_empty() && !text.contains('\n'), "{name}: {text:?}");
        }
    }

    #[test]
    fn refused_names_the_address() {
        let text = explain(
            EntryKind::Failed(ErrorKind::Refused),
            "client",
            "",
            "connect to 127.0.0.1:7000: Connection refused (os error 111)",
        );
        assert_eq!(
            text,
            "connection refused: nothing listens on 127.0.0.1:7000, so that machine answered the connection request with a reset (RST), or a datagram with an ICMP \"port unreachable\" (only a connected UDP socket hears that). Start the server first, or check the port."
        );
    }

    #[test]
    fn placeholders_are_filled() {
        let text = explain(
            EntryKind::Accepted,
            "server",
            "127.0.0.1:5000",
            "on 127.0.0.1:7",
        );
        assert!(text.starts_with("accept() returned a new connection from 127.0.0.1:5000"));
        assert!(!text.contains('{'));
    }

    #[test]
    fn hostile_text_is_escaped_and_never_expands() {
        let text = explain(
            EntryKind::Failed(ErrorKind::Refused),
            "{detail}\u{202e}x\n",
            "{endpoint}\x1b[2J",
            "connect to 127.0.0.1:7000: no\nFAKE {peer}",
        );
        assert!(
            !text
                .chars()
                .any(crate::model::display::is_unsafe_for_display),
            "{text}"
        );
        let text = explain(
            EntryKind::TlsHandshake,
            "{detail}\u{202e}x\n",
            "{endpoint}\x1b[2J",
            "TLSv1.3\n{peer}",
        );
        assert_eq!(
            text,
            "\"{detail}\\u{202e}x\\n\" and {endpoint}\\x1b[2J finished the TLS handshake: \
             they agreed on a version and a cipher suite, the server proved it holds the key of \
             its certificate, and from now on every byte is encrypted and authenticated. \
             Negotiated: TLSv1.3\\n{peer}."
        );
        assert!(
            !text
                .chars()
                .any(crate::model::display::is_unsafe_for_display),
            "{text}"
        );
    }
}
