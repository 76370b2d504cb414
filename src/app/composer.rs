//! The composer: where a person types a payload, as text or hex — its
//! state per endpoint and its view.

use std::collections::VecDeque;
use std::sync::Arc;

use egui::Ui;

use super::document::SendTo;
use super::{App, AppCommand};
use crate::model::display::escape_controls;
use crate::model::framing::Framing;
use crate::model::payload::to_hex;
use crate::model::placeholder::{Context, Scope, Template, escape_literal};
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

/// What a send builds its bytes from: fixed when a Send or a repeat begins,
/// so every round of a repeat comes from the same source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadSource {
    /// The composer as typed: its text in its notation, the line ending
    /// (text only) and the length prefix.
    Typed {
        text: String,
        notation: Notation,
        line_ending: LineEnding,
        framing: Framing,
    },
    /// Bytes as they are (a file), with a length prefix or none.
    Bytes { bytes: Arc<[u8]>, framing: Framing },
    /// A library entry: a template as stored, filled in each round.
    Stored { template: Arc<[u8]> },
}

impl PayloadSource {
    /// The bytes of round `round` (numbered from 1; a single Send is round
    /// 1), or what is wrong: a notation mistake with its line and column, or
    /// a payload too long for its length prefix. Every send of the window —
    /// Send, each round of a repeat, the composer's status — builds its bytes
    /// here, so whatever a payload expands to per round (a counter, the
    /// time) is expanded in this one place.
    ///
    /// Typed text and library entries are templates: their placeholders are
    /// filled in here, `${counter}` counting from the round (round 1 is 1).
    pub fn round_bytes(&self, round: u64) -> Result<Vec<u8>, String> {
        let ctx = Context::now(round.saturating_sub(1));
        match self {
            PayloadSource::Typed {
                text,
                notation,
                line_ending,
                framing,
            } => {
                let template = typed_template(text, *notation, *line_ending)
                    .map_err(|e| describe_error(text, &e))?;
                let bytes = template
                    .expand(&ctx)
                    .map_err(|e| describe_error(text, &e.in_text(text)))?;
                framing.frame(&bytes)
            }
            PayloadSource::Bytes { bytes, framing } => framing.frame(bytes),
            PayloadSource::Stored { template } => Template::parse(template, &Scope::Plain)
                .and_then(|t| t.expand(&ctx))
                .map_err(|e| e.to_string()),
        }
    }
}

/// What is typed as a template: text notation (its escapes decoded, the
/// line ending added) may hold placeholders; hex is the exact bytes.
fn typed_template(
    text: &str,
    notation: Notation,
    line_ending: LineEnding,
) -> Result<Template, PayloadError> {
    match notation {
        Notation::Text => crate::model::payload::parse_text(text).and_then(|mut b| {
            b.extend_from_slice(line_ending.bytes());
            Template::parse(&b, &Scope::Plain).map_err(|e| e.in_text(text))
        }),
        Notation::Hex => Notation::Hex.parse(text).map(|b| Template::literal(&b)),
    }
}

/// A file's bytes held by the composer instead of typed text: files too
/// large to edit as text ([`EDIT_LIMIT`]) are sent as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachedFile {
    /// The file's name (no folder), for the window.
    pub name: String,
    pub bytes: Arc<[u8]>,
}

/// Files up to this size load into the payload box, as text when they are
/// printable text, else as hex; larger ones are attached and sent as they are.
pub const EDIT_LIMIT: usize = 16 * 1024;

/// How often a payload is repeated, as the composer holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepeatSettings {
    /// Milliseconds from the start of one round to the next.
    pub every_ms: u64,
    /// Rounds in all, unless `until_stopped`.
    pub times: u64,
    pub until_stopped: bool,
}

impl Default for RepeatSettings {
    fn default() -> Self {
        RepeatSettings {
            every_ms: 1000,
            times: 10,
            until_stopped: false,
        }
    }
}

impl RepeatSettings {
    /// Rounds in all (`None`: until stopped).
    pub fn rounds(&self) -> Option<u64> {
        (!self.until_stopped).then_some(self.times.max(1))
    }

    pub fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.every_ms)
            .clamp(super::repeat::MIN_INTERVAL, super::repeat::MAX_INTERVAL)
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
    /// How often Repeat sends the payload.
    pub repeat: RepeatSettings,
    /// A file's bytes sent in place of the typed text (a file too large to
    /// edit); the text stays for when the file is removed.
    pub file: Option<AttachedFile>,
    /// What became of the last file loaded: what was loaded, or why not
    /// (`Err`), shown beside the payload.
    pub file_note: Option<Result<String, String>>,
    /// The "File…" row is open: a path to type (and a dialog where there is one).
    pub file_prompt: Option<String>,
    /// How many times Send sent the composer's payload: the next Send is
    /// round `sends + 1`, so its `${counter}` counts single sends too.
    pub sends: u64,
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
            repeat: RepeatSettings::default(),
            file: None,
            file_note: None,
            file_prompt: None,
            sends: 0,
            cache: None,
        }
    }
}

impl Composer {
    /// The bytes the composer holds (line ending and length prefix included), or
    /// what is wrong: a notation mistake with its line and column, or a payload
    /// too long for its length prefix.
    pub fn bytes(&mut self) -> Result<Vec<u8>, String> {
        if self.file.is_some() {
            return self.source().round_bytes(1);
        }
        let fresh = matches!(&self.cache, Some((t, n, l, f, _))
            if *t == self.text && *n == self.notation && *l == self.line_ending && *f == self.framing);
        if !fresh {
            let parsed = self.source().round_bytes(1);
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

    /// How many bytes the attached file sends (its length prefix included),
    /// or why it cannot go; `None` without a file. Found without copying a
    /// large file every frame.
    pub fn file_len(&self) -> Option<Result<usize, String>> {
        let file = self.file.as_ref()?;
        let len = file.bytes.len();
        Some(match self.framing {
            Framing::Reads => Ok(len),
            // Files are far below 4 GiB (persist::PAYLOAD_FILE_LIMIT).
            Framing::LengthU32 => Ok(len + 4),
            // Refused before it copies anything past 64 KiB.
            other => other.frame(&file.bytes).map(|b| b.len()),
        })
    }

    /// True when the composer would send no bytes at all.
    pub fn is_empty(&mut self) -> bool {
        match self.file_len() {
            Some(len) => len.is_ok_and(|n| n == 0),
            None => self.bytes().is_ok_and(|b| b.is_empty()),
        }
    }

    /// Whether the composer holds a payload that can go.
    pub fn is_valid(&mut self) -> bool {
        match self.file_len() {
            Some(len) => len.is_ok(),
            None => self.bytes().is_ok(),
        }
    }

    /// What a send of the composer's payload builds its bytes from: the
    /// attached file, else the text as typed.
    pub fn source(&self) -> PayloadSource {
        match &self.file {
            Some(file) => PayloadSource::Bytes {
                bytes: file.bytes.clone(),
                framing: self.framing,
            },
            None => PayloadSource::Typed {
                text: self.text.clone(),
                notation: self.notation,
                line_ending: self.line_ending,
                framing: self.framing,
            },
        }
    }

    /// Takes a file's bytes: a small file into the payload box (as text when
    /// it is printable text, else as hex), a larger one attached and sent as
    /// it is. The note beside the payload says which, and the size.
    pub fn load_file(&mut self, name: &str, bytes: Vec<u8>) {
        let size = size_words(bytes.len());
        if bytes.len() <= EDIT_LIMIT {
            self.file = None;
            self.load_bytes(&bytes);
            let how = match self.notation {
                Notation::Text => "as text",
                Notation::Hex => "as hex",
            };
            self.file_note = Some(Ok(format!("Loaded {name} ({size}) {how}")));
        } else {
            self.file = Some(AttachedFile {
                name: name.to_owned(),
                bytes: Arc::from(bytes),
            });
            self.file_note = None;
        }
    }

    /// A one-line status: the byte count, or what is wrong and where. When
    /// the composer adds to what is typed (a line ending, a length prefix),
    /// the exact bytes that go out follow in hex, so nothing is sent unseen.
    pub fn status(&mut self) -> Result<String, String> {
        if let Some(len) = self.file_len() {
            let prefix = if self.framing == Framing::Reads {
                ""
            } else {
                ", its length in front"
            };
            return len.map(|n| format!("{} go out: the file{prefix}", size_words(n)));
        }
        // Placeholders: the preview is the next Send's exact bytes, and it
        // says what changes from send to send.
        let (placeholders, varying) = if self.notation == Notation::Text && self.text.contains('$')
        {
            match typed_template(&self.text, self.notation, self.line_ending) {
                Ok(t) => (t.has_placeholders(), t.varying_parts()),
                Err(e) => return Err(describe_error(&self.text, &e)),
            }
        } else {
            (false, Vec::new())
        };
        let adds = placeholders
            || self.framing != Framing::Reads
            || (self.notation == Notation::Text && self.line_ending != LineEnding::None);
        let writes = self.writes;
        let next = if placeholders {
            self.source().round_bytes(self.sends + 1)
        } else {
            self.bytes()
        };
        next.map(|b| {
            let mut s = format!("{} byte{}", b.len(), if b.len() == 1 { "" } else { "s" });
            if adds {
                s.push_str(if varying.is_empty() {
                    " go out: "
                } else {
                    " go out next: "
                });
                s.push_str(&to_hex(&b[..b.len().min(PREVIEW_BYTES)]));
                if b.len() > PREVIEW_BYTES {
                    s.push_str(" …");
                }
            }
            if writes > 1 {
                s.push_str(&format!(", in {writes} writes"));
            }
            if !varying.is_empty() {
                s.push_str(&format!(
                    " (changes with every send: {})",
                    varying.join(", ")
                ));
            }
            s
        })
    }

    /// Switches notation, converting what is typed when it is valid.
    pub fn switch_notation(&mut self, to: Notation) {
        if to == self.notation {
            return;
        }
        // The exact bytes carry over: a `$` from hex is doubled in text (where
        // `$$` is one `$`). A template with placeholders has no hex form; its
        // text stays, and hex says what it cannot read.
        let exact = match self.notation {
            Notation::Hex => self.notation.parse(&self.text).ok(),
            Notation::Text => crate::model::placeholder::parse_text(&self.text, &Scope::Plain)
                .ok()
                .and_then(|t| t.as_literal()),
        };
        if let Some(bytes) = exact {
            self.text = match to {
                Notation::Hex => to_hex(&bytes),
                Notation::Text => text_for_bytes(&escape_literal(&bytes)),
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

    /// Loads exact bytes (a log row, a file) in their natural notation; in
    /// text a `$` is written `$$`, so they are sent as they are.
    pub fn load_bytes(&mut self, bytes: &[u8]) {
        self.notation = crate::model::payload::natural_notation(bytes);
        self.text = match self.notation {
            Notation::Text => Notation::Text.format(&escape_literal(bytes)),
            Notation::Hex => to_hex(bytes),
        };
        self.line_ending = LineEnding::None;
    }

    /// Loads a library entry: a template with a `$` in text notation, where
    /// its placeholders (and `$$`) read as written; exact bytes as
    /// [`Composer::load_bytes`] does.
    pub fn load_template(&mut self, template: &[u8]) {
        if template.contains(&b'$') {
            self.notation = Notation::Text;
            self.text = text_for_bytes(template);
            self.line_ending = LineEnding::None;
            self.framing = Framing::Reads;
        } else {
            self.load_bytes(template);
        }
    }

    /// What the library keeps of the composer's payload: its template as
    /// written (hex made exact with its `$` doubled), the length prefix as
    /// a `${len}` placeholder, so each send from the library fills it in.
    pub fn library_payload(&mut self) -> Result<Vec<u8>, String> {
        self.bytes()?;
        let bytes = match self.notation {
            Notation::Text => {
                let mut b = crate::model::payload::parse_text(&self.text)
                    .map_err(|e| describe_error(&self.text, &e))?;
                b.extend_from_slice(self.line_ending.bytes());
                b
            }
            Notation::Hex => escape_literal(
                &Notation::Hex
                    .parse(&self.text)
                    .map_err(|e| describe_error(&self.text, &e))?,
            ),
        };
        let prefix: &[u8] = match self.framing {
            Framing::LengthU16 => b"${len:u16be,2..}",
            Framing::LengthU32 => b"${len:u32be,4..}",
            Framing::Reads | Framing::Lines => b"",
        };
        Ok([prefix, &bytes].concat())
    }
}

/// "1 byte", "300 bytes", "2.5 KiB (2560 bytes)", "3.0 MiB (3145728 bytes)".
pub fn size_words(len: usize) -> String {
    const KIB: f64 = 1024.0;
    let n = len as f64;
    if len == 1 {
        "1 byte".into()
    } else if len < 1024 {
        format!("{len} bytes")
    } else if n < KIB * KIB {
        format!("{:.1} KiB ({len} bytes)", n / KIB)
    } else {
        format!("{:.1} MiB ({len} bytes)", n / KIB / KIB)
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
        let composer_top = ui.cursor().top();
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
                    "Type characters; escapes \\r \\n \\t \\0 \\\\ \\xNN \\u{...} stand for bytes; \
                     placeholders ${counter} ${time} ${random:N} ${len} ${crc16_modbus} ${crc32} \
                     ${sum8} ${xor8} … are filled in at each send ($$ for a $)",
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
            let mut load_template = None;
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
                        load_template = Some(item.payload.bytes().to_vec());
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
                    && let Ok(bytes) = self.composer.library_payload()
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
            if let Some(template) = load_template {
                self.composer.file = None;
                self.composer.load_template(&template);
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
        if let Some(file) = &self.composer.file {
            let mut remove = false;
            ui.horizontal_wrapped(|ui| {
                ui.label(format!(
                    "📎 Payload: the file {} ({}), sent as it is",
                    escape_controls(&file.name),
                    size_words(file.bytes.len())
                ))
                .on_hover_text(crate::model::payload::preview(&file.bytes, 60));
                remove = ui
                    .button("✖ Remove file")
                    .on_hover_text("Send the typed payload again instead of the file")
                    .clicked();
            });
            if remove {
                self.composer.file = None;
            }
        } else {
            let label = ui
                .horizontal(|ui| {
                    let label = ui.label("Payload");
                    if ui
                    .small_button("📂 File…")
                    .on_hover_text(format!(
                        "Load a file's bytes into the composer (or drop a file on it); at most {}",
                        crate::persist::read::size_text(crate::persist::PAYLOAD_FILE_LIMIT)
                    ))
                    .clicked()
                {
                    self.composer.file_prompt = match self.composer.file_prompt {
                        Some(_) => None,
                        None => Some(String::new()),
                    };
                }
                    label
                })
                .inner;
            self.file_prompt_ui(ui, commands);
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
            .on_hover_text(
                "The payload to send (Ctrl+Enter sends it); drop a file here to load it",
            );
        }
        match &self.composer.file_note {
            Some(Ok(note)) => {
                ui.label(egui::RichText::new(escape_controls(note)).weak());
            }
            Some(Err(why)) => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("⚠ {}", escape_controls(why)),
                );
            }
            None => {}
        }
        ui.horizontal(|ui| {
            let status = self.composer.status();
            let valid = status.is_ok();
            let empty = self.composer.is_empty();
            let why_not = if !up {
                Some("Start the endpoint first")
            } else if !valid {
                Some("Fix the payload first")
            } else if empty && kind.is_tcp() {
                Some("Type something to send (TCP has no empty messages)")
            } else {
                None
            };
            // The button first: a long preview or error wraps beside it
            // instead of pushing it past the pane's edge.
            let send = ui
                .add_enabled(why_not.is_none(), egui::Button::new("➤ Send"))
                .on_hover_text("Send the payload (Ctrl+Enter)")
                .on_disabled_hover_text(why_not.unwrap_or_default());
            match status {
                Ok(count) => ui.add(egui::Label::new(count).wrap()),
                Err(e) => ui.add(
                    egui::Label::new(
                        egui::RichText::new(format!("⚠ {}", escape_controls(&e.to_string())))
                            .color(ui.visuals().error_fg_color),
                    )
                    .wrap(),
                ),
            };
            if send.clicked() {
                commands.push(AppCommand::Send);
            }
        });
        self.repeat_ui(ui, index, up, commands);
        // A file dropped here loads into this composer (see chrome.rs).
        let all = ui.min_rect();
        let rect =
            egui::Rect::from_min_max(egui::pos2(all.left(), composer_top.max(all.top())), all.max);
        self.composer_rect = Some(rect);
    }

    /// The "File…" row: a path to type, Load, and the system's dialog where
    /// there is one.
    fn file_prompt_ui(&mut self, ui: &mut Ui, commands: &mut Vec<AppCommand>) {
        let Some(typed) = &mut self.composer.file_prompt else {
            return;
        };
        let mut close = false;
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("File to send");
            let field = ui
                .add(
                    egui::TextEdit::singleline(typed)
                        .hint_text("/path/to/file")
                        .desired_width(220.0),
                )
                .labelled_by(label.id)
                .on_hover_text("The path of a file whose bytes to send");
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let path = typed.trim();
            if (ui
                .add_enabled(!path.is_empty(), egui::Button::new("Load"))
                .on_hover_text("Read the file into the composer")
                .clicked()
                || enter)
                && !path.is_empty()
            {
                commands.push(AppCommand::LoadPayloadFile(std::path::PathBuf::from(path)));
            }
            if self.config.native_dialogs
                && ui
                    .button("Browse…")
                    .on_hover_text("Choose the file in the system's dialog")
                    .clicked()
            {
                commands.push(AppCommand::BrowsePayloadFile);
            }
            close = ui.button("✖").on_hover_text("Close this row").clicked();
        });
        if close {
            self.composer.file_prompt = None;
        }
    }

    /// The repeat row: every N ms, M times or until stopped, and Repeat; while
    /// a repeat runs, its round and Stop.
    fn repeat_ui(&mut self, ui: &mut Ui, index: usize, up: bool, commands: &mut Vec<AppCommand>) {
        let Some(id) = self.doc.endpoints.get(index).map(|e| e.id) else {
            return;
        };
        if let Some(repeat) = self.repeats.of(id) {
            ui.horizontal_wrapped(|ui| {
                // Stop first: the round number beside it grows, and must
                // never move the button away from the pointer.
                if ui
                    .button("⏹ Stop repeat")
                    .on_hover_text("Send no more rounds")
                    .clicked()
                {
                    commands.push(AppCommand::StopRepeat(id));
                }
                ui.spinner();
                ui.label(format!(
                    "🔁 Repeating {}: {}, {}",
                    repeat.what,
                    repeat.progress(std::time::Instant::now()),
                    super::repeat::every_text(repeat.schedule.interval())
                ));
            });
            // The round number moves on without events of its own.
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
            return;
        }
        ui.horizontal_wrapped(|ui| {
            let settings = &mut self.composer.repeat;
            let label = ui.label("Repeat every");
            ui.add(
                egui::DragValue::new(&mut settings.every_ms)
                    .range(1..=86_400_000)
                    .suffix(" ms"),
            )
            .labelled_by(label.id)
            .on_hover_text(
                "From the start of one round to the next (1 ms at least). A late round goes \
                 once, as soon as it can; missed rounds are not sent in a burst",
            );
            ui.add_enabled_ui(!settings.until_stopped, |ui| {
                let label = ui.label("times");
                ui.add(egui::DragValue::new(&mut settings.times).range(1..=1_000_000_000))
                    .labelled_by(label.id)
                    .on_hover_text("How many rounds in all");
            });
            ui.checkbox(&mut settings.until_stopped, "until stopped")
                .on_hover_text("Repeat until Stop is pressed or the endpoint stops");
            let valid = self.composer.is_valid();
            let empty = self.composer.is_empty();
            let kind = self.doc.endpoints[index].kind();
            let why_not = if !up {
                Some("Start the endpoint first")
            } else if !valid {
                Some("Fix the payload first")
            } else if empty && kind.is_tcp() {
                Some("Type something to send (TCP has no empty messages)")
            } else {
                None
            };
            if ui
                .add_enabled(why_not.is_none(), egui::Button::new("🔁 Repeat"))
                .on_hover_text("Send the payload every N ms, M times or until stopped")
                .on_disabled_hover_text(why_not.unwrap_or_default())
                .clicked()
            {
                commands.push(AppCommand::Repeat);
            }
        });
        if let Some(ended) = self.repeats.ended(id) {
            ui.label(egui::RichText::new(ended).weak());
        }
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
    fn placeholders_are_previewed_counted_and_kept_as_written() {
        let mut c = Composer {
            text: "n=${counter}${sum8:0..3}".into(),
            line_ending: LineEnding::Lf,
            ..Default::default()
        };
        assert_eq!(
            c.status(),
            Ok("5 bytes go out next: 6e 3d 31 dc 0a (changes with every send: counter)".into())
        );
        assert_eq!(c.source().round_bytes(2).unwrap(), b"n=2\xdd\n");
        c.sends = 9;
        assert!(
            c.status().unwrap().contains(": 6e 3d 31 30 dc 0a "),
            "the next Send's counter"
        );
        assert_eq!(c.source().round_bytes(10).unwrap(), b"n=10\xdc\n");
        // Without placeholders nothing new is said.
        c.text = "plain $5".into();
        c.line_ending = LineEnding::None;
        assert_eq!(c.status(), Ok("8 bytes".into()));
        // Errors name line and column of what was typed.
        c.text = "ok\n${time:%Q}".into();
        assert!(
            c.status()
                .unwrap_err()
                .starts_with("line 2, column 1: time:")
        );
        c.text = "ab${crc32:0..9}".into();
        assert_eq!(
            c.status(),
            Err("line 1, column 3: the range 0..9 goes past the payload's end (6 bytes)".into())
        );
    }

    #[test]
    fn the_library_keeps_templates_and_exact_hex() {
        let mut c = Composer {
            text: "\\x01${counter:u8}".into(),
            framing: Framing::LengthU16,
            ..Default::default()
        };
        let kept = c.library_payload().unwrap();
        assert_eq!(kept, b"${len:u16be,2..}\x01${counter:u8}");
        let t = Template::parse(&kept, &Scope::Plain).unwrap();
        assert_eq!(t.expand(&Context::now(4)).unwrap(), [0, 2, 1, 5]);
        assert_eq!(
            c.source().round_bytes(5).unwrap(),
            [0, 2, 1, 5],
            "as the composer sends it"
        );
        // Hex is exact: its `$` bytes are doubled, so they expand to themselves.
        let mut h = Composer {
            notation: Notation::Hex,
            text: "24 7b 24".into(),
            ..Default::default()
        };
        let kept = h.library_payload().unwrap();
        assert_eq!(kept, b"$${$$");
        let t = Template::parse(&kept, &Scope::Plain).unwrap();
        assert_eq!(t.expand(&Context::now(0)).unwrap(), b"${$");
        // Loaded back, a template reads as written, in text notation.
        let mut back = Composer::default();
        back.load_template(b"\x01${counter:u8}");
        assert_eq!(
            (back.notation, back.text.as_str()),
            (Notation::Text, "\\x01${counter:u8}")
        );
        back.load_template(b"\x01\x02");
        assert_eq!(
            (back.notation, back.text.as_str()),
            (Notation::Hex, "01 02")
        );
        // A log row is exact bytes: its `$` doubled in text, so it is sent as it was.
        back.load_bytes(b"${x} $5");
        assert_eq!(back.text, "$${x} $$5");
        assert_eq!(back.bytes().unwrap(), b"${x} $5");
        // Notation switches keep the exact bytes; a template stays as typed.
        back.switch_notation(Notation::Hex);
        assert_eq!(back.text, "24 7b 78 7d 20 24 35");
        back.text = "n=${counter}".into();
        back.notation = Notation::Text;
        back.switch_notation(Notation::Hex);
        assert_eq!(back.text, "n=${counter}");
        assert!(back.bytes().is_err(), "hex cannot read a placeholder");
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
            proptest::prop_assert_eq!(c.bytes().unwrap(), bytes.clone());
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
            proptest::prop_assert_eq!(c.bytes().unwrap(), bytes);
        }
    }

    #[test]
    fn every_send_builds_its_bytes_from_one_source() {
        let mut c = Composer {
            text: "ping".into(),
            line_ending: LineEnding::CrLf,
            framing: Framing::LengthU16,
            ..Default::default()
        };
        let source = c.source();
        // What Send, the status and each round of a repeat send is the same.
        assert_eq!(source.round_bytes(1).unwrap(), b"\x00\x06ping\r\n");
        assert_eq!(source.round_bytes(7).unwrap(), c.bytes().unwrap());
        // Fixed when taken: editing the composer changes the next source only.
        c.text = "pong".into();
        assert_eq!(source.round_bytes(2).unwrap(), b"\x00\x06ping\r\n");
        let bytes = PayloadSource::Bytes {
            bytes: Arc::from(&b"\x01\x02"[..]),
            framing: Framing::Reads,
        };
        assert_eq!(bytes.round_bytes(1).unwrap(), b"\x01\x02");
        let bad = PayloadSource::Typed {
            text: "4g".into(),
            notation: Notation::Hex,
            line_ending: LineEnding::None,
            framing: Framing::Reads,
        };
        assert_eq!(
            bad.round_bytes(1),
            Err("line 1, column 2: 'g' is not a hex digit".into())
        );
    }

    #[test]
    fn a_small_file_loads_as_text_or_hex_a_large_one_is_attached() {
        let mut c = Composer::default();
        c.load_file("hello.txt", b"hello\r\n".to_vec());
        assert_eq!(
            (c.notation, c.text.as_str()),
            (Notation::Text, "hello\\r\\n")
        );
        assert_eq!(c.bytes().unwrap(), b"hello\r\n");
        assert_eq!(
            c.file_note,
            Some(Ok("Loaded hello.txt (7 bytes) as text".into()))
        );
        c.load_file("blob.bin", vec![0, 1, 0xff]);
        assert_eq!((c.notation, c.text.as_str()), (Notation::Hex, "00 01 ff"));
        assert!(c.file.is_none());

        let big: Vec<u8> = (0..EDIT_LIMIT + 1).map(|i| i as u8).collect();
        c.text = "kept".into();
        c.load_file("big.bin", big.clone());
        assert_eq!(c.file.as_ref().map(|f| f.name.as_str()), Some("big.bin"));
        assert_eq!(c.text, "kept", "the typed text waits for the file to go");
        assert_eq!(c.bytes().unwrap(), big);
        assert_eq!(c.file_len(), Some(Ok(EDIT_LIMIT + 1)));
        assert_eq!(
            c.status(),
            Ok("16.0 KiB (16385 bytes) go out: the file".into())
        );
        assert!(c.is_valid() && !c.is_empty());
        c.framing = Framing::LengthU32;
        assert_eq!(c.file_len(), Some(Ok(EDIT_LIMIT + 5)));
        assert_eq!(&c.bytes().unwrap()[..5], &[0, 0, 0x40, 0x01, 0]);
        // Too long for a 2-byte length: said, not sent.
        c.file = Some(AttachedFile {
            name: "huge".into(),
            bytes: Arc::from(vec![0u8; 70_000]),
        });
        c.framing = Framing::LengthU16;
        assert!(
            c.status()
                .unwrap_err()
                .contains("do not fit a 2-byte length")
        );
        assert!(!c.is_valid());
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size_words(1), "1 byte");
        assert_eq!(size_words(1000), "1000 bytes");
        assert_eq!(size_words(2560), "2.5 KiB (2560 bytes)");
        assert_eq!(size_words(3 << 20), "3.0 MiB (3145728 bytes)");
    }

    #[test]
    fn repeat_settings_keep_within_bounds() {
        let mut r = RepeatSettings::default();
        assert_eq!(r.rounds(), Some(10));
        r.times = 0;
        assert_eq!(
            r.rounds(),
            Some(1),
            "0 times is no repeat: at least one round"
        );
        r.until_stopped = true;
        assert_eq!(r.rounds(), None);
        r.every_ms = 0;
        assert_eq!(r.interval(), super::super::repeat::MIN_INTERVAL);
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
