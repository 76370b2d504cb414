//! The composer: where a person types a payload, as text or hex — its
//! state per endpoint and its view.

use std::collections::VecDeque;

use egui::Ui;

use super::document::SendTo;
use super::{App, AppCommand};
use crate::model::display::escape_controls;
use crate::model::framing::Framing;
use crate::model::payload::to_hex;
use crate::model::{KindTag, LibraryItem, Payload};
use crate::model::{Notation, PayloadError};

/// What is appended to a text payload when it is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LineEnding {
    #[default]
    None,
    Lf,
    CrLf,
}

impl LineEnding {
    pub const ALL: [LineEnding; 3] = [LineEnding::None, LineEnding::Lf, LineEnding::CrLf];

    pub fn label(self) -> &'static str {
        match self {
            LineEnding::None => "no line ending",
            LineEnding::Lf => "LF (\\n)",
            LineEnding::CrLf => "CRLF (\\r\\n)",
        }
    }

    pub fn bytes(self) -> &'static [u8] {
        match self {
            LineEnding::None => b"",
            LineEnding::Lf => b"\n",
            LineEnding::CrLf => b"\r\n",
        }
    }
}

/// A payload sent before, to pick again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recent {
    pub notation: Notation,
    pub text: String,
    pub line_ending: LineEnding,
}

impl Recent {
    /// One line for the recent-payloads menu.
    pub fn label(&self) -> String {
        let mut shown: String = self.text.chars().take(40).collect();
        if self.text.chars().count() > 40 {
            shown.push('…');
        }
        // The text may come from a file (a library payload put back): a line
        // break shows as ⏎, any other control or bidi character escaped.
        format!(
            "{}: {}",
            self.notation.label(),
            crate::model::display::escape_controls(&shown.replace('\n', "⏎"))
        )
    }
}

/// The composer's last parse: its inputs and its result.
type Parsed = (
    String,
    Notation,
    LineEnding,
    Framing,
    Result<Vec<u8>, String>,
);

/// How many recent payloads are kept.
const RECENT: usize = 20;

/// The composer's state.
#[derive(Clone, Debug)]
pub struct Composer {
    pub text: String,
    pub notation: Notation,
    pub line_ending: LineEnding,
    /// A length prefix put in front of the payload (2 or 4 bytes), or none.
    pub framing: Framing,
    /// Write the payload in this many pieces (a TCP-is-a-stream demo).
    pub writes: u32,
    /// Milliseconds between the pieces.
    pub gap_ms: u32,
    /// Most recent first, no duplicates.
    pub recent: VecDeque<Recent>,
    /// The last text parsed, and its result (parsing runs once per change, not per frame).
    cache: Option<Parsed>,
}

impl Default for Composer {
    fn default() -> Self {
        Composer {
            text: String::new(),
            notation: Notation::Text,
            line_ending: LineEnding::None,
            framing: Framing::Reads,
            writes: 1,
            gap_ms: 100,
            recent: VecDeque::new(),
            cache: None,
        }
    }
}

impl Composer {
    /// The bytes the composer holds (line ending and length prefix included), or
    /// what is wrong: a notation mistake with its line and column, or a payload
    /// too long for its length prefix.
    pub fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let fresh = matches!(&self.cache, Some((t, n, l, f, _))
            if *t == self.text && *n == self.notation && *l == self.line_ending && *f == self.framing);
        if !fresh {
            let parsed = match self.notation.parse(&self.text) {
                Ok(mut b) => {
                    if self.notation == Notation::Text {
                        b.extend_from_slice(self.line_ending.bytes());
                    }
                    self.framing.frame(&b)
                }
                Err(e) => Err(describe_error(&self.text, &e)),
            };
            self.cache = Some((
                self.text.clone(),
                self.notation,
                self.line_ending,
                self.framing,
                parsed,
            ));
        }
        match &self.cache {
            Some((_, _, _, _, result)) => result.clone(),
            None => Ok(Vec::new()),
        }
    }

    /// A one-line status: the byte count, or what is wrong and where. When
    /// the composer adds to what is typed (a line ending, a length prefix),
    /// the exact bytes that go out follow in hex, so nothing is sent unseen.
    pub fn status(&mut self) -> Result<String, String> {
        let adds = self.framing != Framing::Reads
            || (self.notation == Notation::Text && self.line_ending != LineEnding::None);
        let writes = self.writes;
        self.bytes().map(|b| {
            let mut s = format!("{} byte{}", b.len(), if b.len() == 1 { "" } else { "s" });
            if adds {
                s.push_str(" go out: ");
                s.push_str(&to_hex(&b[..b.len().min(PREVIEW_BYTES)]));
                if b.len() > PREVIEW_BYTES {
                    s.push_str(" …");
                }
            }
            if writes > 1 {
                s.push_str(&format!(", in {writes} writes"));
            }
            s
        })
    }

    /// Switches notation, converting what is typed when it is valid.
    pub fn switch_notation(&mut self, to: Notation) {
        if to == self.notation {
            return;
        }
        if let Ok(bytes) = self.notation.parse(&self.text) {
            self.text = match to {
                Notation::Hex => to_hex(&bytes),
                Notation::Text => text_for_bytes(&bytes),
            };
        }
        self.notation = to;
    }

    /// A fresh composer for another endpoint or session: nothing typed, no
    /// line ending, no frame, one write; only the recent payloads go along.
    pub fn fresh(&self) -> Composer {
        Composer {
            recent: self.recent.clone(),
            ..Composer::default()
        }
    }

    /// Remembers what was just sent.
    pub fn remember(&mut self) {
        let entry = Recent {
            notation: self.notation,
            text: self.text.clone(),
            line_ending: self.line_ending,
        };
        self.recent.retain(|r| *r != entry);
        self.recent.push_front(entry);
        self.recent.truncate(RECENT);
    }

    pub fn load(&mut self, recent: &Recent) {
        self.notation = recent.notation;
        self.text = recent.text.clone();
        self.line_ending = recent.line_ending;
    }

    /// Loads bytes (from the library or a log row) in their natural notation.
    pub fn load_bytes(&mut self, bytes: &[u8]) {
        self.notation = crate::model::payload::natural_notation(bytes);
        self.text = self.notation.format(bytes);
        self.line_ending = LineEnding::None;
    }
}

/// How many bytes the status previews in hex.
const PREVIEW_BYTES: usize = 24;

/// `bytes` in text notation for the composer, so that parsing it gives the
/// same bytes back. Text that is UTF-8 as a whole keeps its characters, but
/// for right-to-left scripts and combining marks (which reorder or join the
/// characters around them); bytes that are not UTF-8 as a whole are binary:
/// every non-ASCII byte becomes `\xNN` (`de ad be ef` is four escapes, not a
/// Thaana letter and three escapes).
pub fn text_for_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let mut s = String::with_capacity(text.len());
            for c in text.chars() {
                if c.is_ascii() || !(is_right_to_left(c) || is_combining(c)) {
                    s.push_str(&crate::model::payload::to_text_notation(
                        c.encode_utf8(&mut [0; 4]).as_bytes(),
                    ));
                } else {
                    s.push_str(&format!("\\u{{{:x}}}", c as u32));
                }
            }
            s
        }
        Err(_) => {
            let mut s = String::with_capacity(bytes.len() * 2);
            for &b in bytes {
                if b.is_ascii() {
                    s.push_str(&crate::model::payload::to_text_notation(&[b]));
                } else {
                    s.push_str(&format!("\\x{b:02x}"));
                }
            }
            s
        }
    }
}

/// Characters of the right-to-left scripts (Hebrew, Arabic, Syriac, Thaana,
/// N'Ko, …, and their presentation forms).
fn is_right_to_left(c: char) -> bool {
    matches!(c as u32,
        0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFF | 0x10800..=0x10FFF | 0x1E800..=0x1EFFF)
}

/// Combining marks, which draw on the character before them.
fn is_combining(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// A notation mistake with its line and column.
fn describe_error(text: &str, e: &PayloadError) -> String {
    let (line, col) = e.line_col(text);
    format!("line {line}, column {col}: {}", e.problem)
}

impl App {
    pub(super) fn composer_ui(
        &mut self,
        ui: &mut Ui,
        index: usize,
        commands: &mut Vec<AppCommand>,
    ) {
        if self.doc.endpoints.get(index).map(|e| e.kind()) == Some(KindTag::Relay) {
            // A relay forwards what its clients and its upstream send; the
            // window has no way to inject into it yet, so no composer.
            ui.label(
                "A relay forwards what its clients and its upstream send; it takes no payloads \
                 from here. Its rows show each client's traffic both ways.",
            );
            return;
        }
        self.sync_composer();
        let e = &self.doc.endpoints[index];
        let up = e.state.is_up();
        let kind = e.kind();
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Send to");
            let e = &mut self.doc.endpoints[index];
            let default_text = match kind {
                KindTag::TcpClient | KindTag::TlsClient | KindTag::UnixClient => {
                    "the connection".to_owned()
                }
                KindTag::TcpServer | KindTag::TlsServer | KindTag::UnixServer => {
                    "all peers".to_owned()
                }
                KindTag::Relay => "(a relay forwards; it takes no payloads here)".to_owned(),
                KindTag::Udp | KindTag::UnixDatagram => match e.form.remote.trim() {
                    "" => "(no default remote)".to_owned(),
                    r => format!("default remote {}", escape_controls(r)),
                },
            };
            let current = match &e.send_to {
                SendTo::Default => default_text.clone(),
                SendTo::Peer(p) => match e.peers.get(p) {
                    Some(info) => format!("peer #{p} {}", info.remote),
                    None => format!("peer #{p}"),
                },
                SendTo::Address if kind.is_unix() => "a socket path…".to_owned(),
                SendTo::Address => "an address…".to_owned(),
            };
            egui::ComboBox::from_id_salt(("send to", e.id.0))
                .selected_text(current)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut e.send_to, SendTo::Default, default_text);
                    if !kind.is_client() {
                        for (peer, info) in &e.peers {
                            ui.selectable_value(
                                &mut e.send_to,
                                SendTo::Peer(*peer),
                                format!("peer #{peer} {}", info.remote),
                            );
                        }
                    }
                    if kind == KindTag::Udp {
                        ui.selectable_value(&mut e.send_to, SendTo::Address, "an address…");
                    }
                    if kind == KindTag::UnixDatagram {
                        ui.selectable_value(&mut e.send_to, SendTo::Address, "a socket path…");
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("Where the payload goes");
            if e.send_to == SendTo::Address && kind.is_unix() {
                let label = ui.label("socket path");
                ui.add(
                    egui::TextEdit::singleline(&mut e.send_address)
                        .hint_text("/path/to/peer.sock or @name")
                        .desired_width(150.0),
                )
                .labelled_by(label.id)
                .on_hover_text("The socket to send this datagram to");
                if let Err(err) = crate::model::UnixPath::parse(&e.send_address) {
                    ui.colored_label(
                        ui.visuals().error_fg_color,
                        format!("⚠ {}", escape_controls(&err.to_string())),
                    );
                }
            } else if e.send_to == SendTo::Address {
                let label = ui.label("address");
                ui.add(
                    egui::TextEdit::singleline(&mut e.send_address)
                        .hint_text("host:port")
                        .desired_width(150.0),
                )
                .labelled_by(label.id)
                .on_hover_text("The address to send this datagram to");
                let checked = e
                    .send_address
                    .parse::<crate::model::HostPort>()
                    .and_then(crate::model::HostPort::require_port);
                if let Err(err) = checked {
                    ui.colored_label(
                        ui.visuals().error_fg_color,
                        format!("⚠ {}", escape_controls(&err.to_string())),
                    );
                }
            }
        });
        ui.horizontal_wrapped(|ui| {
            let mut notation = self.composer.notation;
            ui.selectable_value(&mut notation, Notation::Text, "Text")
                .on_hover_text(
                    "Type characters; escapes \\r \\n \\t \\0 \\\\ \\xNN \\u{...} stand for bytes",
                );
            ui.selectable_value(&mut notation, Notation::Hex, "Hex")
                .on_hover_text("Type hex bytes: 48 65 6c, 0x48,0x65 or 48656C");
            if notation != self.composer.notation {
                self.composer.switch_notation(notation);
            }
            // The line ending and the frame on a row of their own, each label
            // beside its box.
            ui.end_row();
            ui.add_enabled_ui(self.composer.notation == Notation::Text, |ui| {
                let label = ui.label("ending");
                egui::ComboBox::from_id_salt("line ending")
                    .selected_text(self.composer.line_ending.label())
                    .show_ui(ui, |ui| {
                        for ending in LineEnding::ALL {
                            ui.selectable_value(
                                &mut self.composer.line_ending,
                                ending,
                                ending.label(),
                            );
                        }
                    })
                    .response
                    .labelled_by(label.id)
                    .on_hover_text("Added to the end of a text payload when it is sent");
            });
            let label = ui.label("frame");
            egui::ComboBox::from_id_salt("composer framing")
                .selected_text(match self.composer.framing {
                    Framing::LengthU16 => "2-byte length",
                    Framing::LengthU32 => "4-byte length",
                    _ => "no prefix",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.composer.framing, Framing::Reads, "no prefix");
                    ui.selectable_value(&mut self.composer.framing, Framing::LengthU16, "2-byte length");
                    ui.selectable_value(&mut self.composer.framing, Framing::LengthU32, "4-byte length");
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("Put the payload's length in front of it (big-endian), so the receiver can find where it ends");
            let mut load = None;
            ui.menu_button("Recent", |ui| {
                if self.composer.recent.is_empty() {
                    ui.label("Nothing sent yet");
                }
                for recent in &self.composer.recent {
                    if ui
                        .button(recent.label())
                        .on_hover_text("Put this payload back in the composer")
                        .clicked()
                    {
                        load = Some(recent.clone());
                    }
                }
            })
            .response
            .on_hover_text("Payloads you sent before");
            if let Some(recent) = load {
                self.composer.load(&recent);
            }
            let mut load_bytes = None;
            ui.menu_button("Library", |ui| {
                if self.doc.session.library.is_empty() {
                    ui.label("The session's library is empty");
                }
                for item in &self.doc.session.library {
                    if ui
                        .button(escape_controls(&item.name))
                        .on_hover_text(crate::model::payload::preview(item.payload.bytes(), 60))
                        .clicked()
                    {
                        load_bytes = Some(item.payload.bytes().to_vec());
                    }
                }
                if ui
                    .button("✏ Rename, delete, reorder…")
                    .on_hover_text("The library window: rename, delete and move entries")
                    .clicked()
                {
                    commands.push(AppCommand::OpenLibrary);
                }
                ui.separator();
                let label = ui.label("Name");
                ui.add(
                    egui::TextEdit::singleline(&mut self.library_name)
                        .hint_text("name")
                        .desired_width(120.0),
                )
                .labelled_by(label.id)
                .on_hover_text("A name for the composer's payload in the library");
                let valid = self.composer.bytes().is_ok() && !self.library_name.trim().is_empty();
                if ui
                    .add_enabled(valid, egui::Button::new("Add the composer's payload"))
                    .on_hover_text("Keep the payload in the session's library, to send again later")
                    .clicked()
                    && let Ok(bytes) = self.composer.bytes()
                {
                    let name = self.library_name.trim().to_owned();
                    self.doc.session.library.retain(|i| i.name != name);
                    self.doc.session.library.push(LibraryItem {
                        name,
                        payload: Payload::new(bytes),
                    });
                    self.library_name.clear();
                    self.doc.touch();
                }
            })
            .response
            .on_hover_text("Named payloads kept with the session");
            if let Some(bytes) = load_bytes {
                self.composer.load_bytes(&bytes);
            }
        });
        // A row of its own, so it never hides past the pane's edge.
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Write it in");
            ui.add(
                egui::DragValue::new(&mut self.composer.writes)
                    .range(1..=64)
                    .custom_formatter(|n, _| if n == 1.0 { "1 write".into() } else { format!("{n} writes") })
                    .custom_parser(|s| s.split_whitespace().next()?.parse().ok()),
            )
            .labelled_by(label.id)
            .on_hover_text("Write the payload in this many pieces: TCP may join or split them again on the way");
            if self.composer.writes > 1 {
                let label = ui.label("every");
                ui.add(egui::DragValue::new(&mut self.composer.gap_ms).range(0..=10_000).suffix(" ms"))
                    .labelled_by(label.id)
                    .on_hover_text("The pause between the pieces");
            }
        });
        let label = ui.label("Payload");
        ui.add(
            egui::TextEdit::multiline(&mut self.composer.text)
                .code_editor()
                .desired_rows(3)
                .desired_width(f32::INFINITY)
                .hint_text(match self.composer.notation {
                    Notation::Text => "Type text; \\r\\n for a line break, \\x00 for a byte",
                    Notation::Hex => "Type hex bytes, like 48 65 6c 6c 6f",
                }),
        )
        .labelled_by(label.id)
        .on_hover_text("The payload to send (Ctrl+Enter sends it)");
        ui.horizontal(|ui| {
            let status = self.composer.status();
            let valid = status.is_ok();
            match status {
                Ok(count) => ui.label(count),
                Err(e) => ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("⚠ {}", escape_controls(&e.to_string())),
                ),
            };
            let empty = self.composer.bytes().is_ok_and(|b| b.is_empty());
            let why_not = if !up {
                Some("Start the endpoint first")
            } else if !valid {
                Some("Fix the payload first")
            } else if empty && kind.is_tcp() {
                Some("Type something to send (TCP has no empty messages)")
            } else {
                None
            };
            let send = ui
                .add_enabled(why_not.is_none(), egui::Button::new("➤ Send"))
                .on_hover_text("Send the payload (Ctrl+Enter)")
                .on_disabled_hover_text(why_not.unwrap_or_default());
            if send.clicked() {
                commands.push(AppCommand::Send);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_status() {
        let mut c = Composer {
            text: "GET /".into(),
            line_ending: LineEnding::CrLf,
            ..Default::default()
        };
        assert_eq!(c.bytes().unwrap(), b"GET /\r\n");
        assert_eq!(
            c.status(),
            Ok("7 bytes go out: 47 45 54 20 2f 0d 0a".into())
        );
        c.notation = Notation::Hex;
        c.text = "41 42\n4g".into();
        assert_eq!(
            c.status(),
            Err("line 2, column 2: 'g' is not a hex digit".into())
        );
        c.text = "41".into();
        // Line endings apply to text only.
        assert_eq!(c.bytes().unwrap(), b"A");
    }

    #[test]
    fn switching_notation_converts() {
        let mut c = Composer {
            text: "hi\\n".into(),
            ..Default::default()
        };
        c.switch_notation(Notation::Hex);
        assert_eq!(c.text, "68 69 0a");
        c.switch_notation(Notation::Text);
        assert_eq!(c.text, "hi\\n");
    }

    #[test]
    fn binary_bytes_become_escapes_not_letters() {
        let mut c = Composer {
            notation: Notation::Hex,
            text: "de ad be ef".into(),
            ..Default::default()
        };
        c.switch_notation(Notation::Text);
        assert_eq!(c.text, "\\xde\\xad\\xbe\\xef");
        c.switch_notation(Notation::Hex);
        assert_eq!(c.text, "de ad be ef");
        // UTF-8 text keeps its letters; right-to-left ones are escaped.
        assert_eq!(text_for_bytes("é ok".as_bytes()), "é ok");
        assert_eq!(text_for_bytes("\u{7ad}".as_bytes()), "\\u{7ad}");
        assert_eq!(text_for_bytes(b"a\\b\r\n"), "a\\\\b\\r\\n");
    }

    #[test]
    fn the_status_shows_the_exact_bytes_when_the_composer_adds_to_them() {
        let mut c = Composer {
            text: "ping".into(),
            line_ending: LineEnding::Lf,
            framing: Framing::LengthU16,
            ..Default::default()
        };
        assert_eq!(
            c.status(),
            Ok("7 bytes go out: 00 05 70 69 6e 67 0a".into())
        );
        c.framing = Framing::Reads;
        c.line_ending = LineEnding::None;
        assert_eq!(c.status(), Ok("4 bytes".into()));
        c.writes = 2;
        assert_eq!(c.status(), Ok("4 bytes, in 2 writes".into()));
        c.writes = 1;
        c.text = "x".repeat(30);
        c.line_ending = LineEnding::CrLf;
        let status = c.status().unwrap();
        assert!(status.starts_with("32 bytes go out: 78 78"), "{status}");
        assert!(status.ends_with(" …"), "{status}");
    }

    proptest::proptest! {
        #[test]
        fn hex_and_text_round_trip_exactly(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let mut c = Composer {
                notation: Notation::Hex,
                text: to_hex(&bytes),
                ..Default::default()
            };
            c.switch_notation(Notation::Text);
            proptest::prop_assert_eq!(Notation::Text.parse(&c.text).unwrap(), bytes.clone());
            // Nothing unsafe to draw reaches the text box.
            proptest::prop_assert!(!c.text.chars().any(|ch| crate::model::display::is_unsafe_for_display(ch) || is_right_to_left(ch)));
            c.switch_notation(Notation::Hex);
            proptest::prop_assert_eq!(c.text.clone(), to_hex(&bytes));
            proptest::prop_assert_eq!(c.bytes().unwrap(), bytes);
        }

        #[test]
        fn text_round_trips_through_hex(text in "\\PC{0,24}") {
            let bytes = text.as_bytes().to_vec();
            let mut c = Composer {
                notation: Notation::Hex,
                text: to_hex(&bytes),
                ..Default::default()
            };
            c.switch_notation(Notation::Text);
            proptest::prop_assert_eq!(Notation::Text.parse(&c.text).unwrap(), bytes);
        }
    }

    #[test]
    fn recent_is_unique_and_bounded() {
        let mut c = Composer::default();
        for i in 0..30 {
            c.text = format!("p{i}");
            c.remember();
        }
        c.text = "p25".into();
        c.remember();
        assert_eq!(c.recent.len(), RECENT);
        assert_eq!(c.recent[0].text, "p25");
        assert_eq!(c.recent.iter().filter(|r| r.text == "p25").count(), 1);
    }
}
