//! The composer: where a person types a payload, as text or hex.

use std::collections::VecDeque;

use crate::model::framing::Framing;
use crate::model::payload::to_hex;
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

    /// A one-line status: the byte count, or what is wrong and where.
    pub fn status(&mut self) -> Result<String, String> {
        self.bytes()
            .map(|b| format!("{} byte{}", b.len(), if b.len() == 1 { "" } else { "s" }))
    }

    /// Switches notation, converting what is typed when it is valid.
    pub fn switch_notation(&mut self, to: Notation) {
        if to == self.notation {
            return;
        }
        if let Ok(bytes) = self.notation.parse(&self.text) {
            self.text = match to {
                Notation::Hex => to_hex(&bytes),
                Notation::Text => Notation::Text.format(&bytes),
            };
        }
        self.notation = to;
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

/// A notation mistake with its line and column.
fn describe_error(text: &str, e: &PayloadError) -> String {
    let (line, col) = e.line_col(text);
    format!("line {line}, column {col}: {}", e.problem)
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
        assert_eq!(c.status(), Ok("7 bytes".into()));
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
