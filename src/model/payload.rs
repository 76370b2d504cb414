//! The payload notation: the one codec for what people type and what files store.
//!
//! Two notations turn typed text into bytes:
//!
//! - **text** with escapes: `\r \n \t \0 \\ \xNN` (one raw byte) and `\u{1F600}`
//!   (the UTF-8 encoding of a code point); every other character stands for its
//!   own UTF-8 bytes.
//! - **hex**: pairs of hex digits in any case, with or without `0x`, separated by
//!   spaces, commas, colons, dashes or nothing: `48 65 6c`, `0x48,0x65`, `48656C`.
//!
//! A parse error names the position (1-based, in characters) and the offending
//! character. [`to_text_notation`] and [`to_hex`] go the other way and always
//! round-trip through the parsers.

use std::fmt;
use std::fmt::Write as _;

use super::display::{escape_controls, is_unsafe_for_display, push_char_escape};

/// How typed text is turned into bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Notation {
    /// Characters with backslash escapes.
    #[default]
    Text,
    /// Hex digit pairs.
    Hex,
}

impl Notation {
    /// Parses `input` in this notation.
    pub fn parse(self, input: &str) -> Result<Vec<u8>, PayloadError> {
        match self {
            Notation::Text => parse_text(input),
            Notation::Hex => parse_hex(input),
        }
    }

    /// Writes `bytes` in this notation, so that [`Notation::parse`] gives them back.
    pub fn format(self, bytes: &[u8]) -> String {
        match self {
            Notation::Text => to_text_notation(bytes),
            Notation::Hex => to_hex(bytes),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Notation::Text => "Text",
            Notation::Hex => "Hex",
        }
    }
}

/// What went wrong while reading a payload, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {problem}")]
pub struct PayloadError {
    /// 1-based position of the offending character, counted in characters
    /// (what a person counts in the field), not bytes.
    pub position: usize,
    /// What is wrong there.
    pub problem: Problem,
}

impl PayloadError {
    /// The 1-based line and column of the error within `input` (composers are
    /// multi-line, and "line 3, column 7" is what a person looks for).
    pub fn line_col(&self, input: &str) -> (usize, usize) {
        let mut line = 1;
        let mut col = 1;
        for c in input.chars().take(self.position.saturating_sub(1)) {
            if c == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
        }
        (line, col)
    }
}

/// The kinds of payload error, each naming the character involved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("{} is not a hex digit", show_char(*.0))]
    NotHexDigit(char),
    #[error("the hex digit {} has no partner: a byte needs two digits", show_char(*.0))]
    LoneHexDigit(char),
    #[error("\"0x\" must be followed by hex digits")]
    EmptyHexPrefix,
    #[error("\"\\{}\" is not a known escape (use \\r \\n \\t \\0 \\\\ \\xNN or \\u{{...}})", .0)]
    UnknownEscape(char),
    #[error("the text ends with a lone backslash (write \\\\ for a backslash)")]
    TrailingBackslash,
    #[error("\\x needs two hex digits, found {}", show_found(*.0))]
    BadByteEscape(Option<char>),
    #[error("\\u needs a code point in braces like \\u{{e9}}, found {}", show_found(*.0))]
    BadUnicodeEscape(Option<char>),
    #[error("\\u{{{0}}} is not a Unicode scalar value")]
    InvalidCodePoint(String),
    /// A placeholder (`${...}`) that cannot be read or filled in.
    #[error("{0}")]
    Placeholder(String),
}

fn show_char(c: char) -> String {
    if c.is_whitespace() || !is_printable_char(c) {
        // By number, never as itself: the message reaches a terminal and a
        // label. Debug escapes most such characters; `escape_controls` makes
        // sure of every dangerous one.
        escape_controls(&format!("{:?} (U+{:04X})", c, c as u32)).into_owned()
    } else {
        format!("'{c}'")
    }
}

fn show_found(c: Option<char>) -> String {
    match c {
        Some(c) => show_char(c),
        None => "the end of the text".to_owned(),
    }
}

/// Parses text notation: characters with backslash escapes.
pub fn parse_text(input: &str) -> Result<Vec<u8>, PayloadError> {
    parse_text_from(input, None)
}

/// The 1-based position, in characters of `input` (text notation), of the
/// character or escape that gave byte `byte` of its bytes; one past the
/// last character for the end. Placeholder errors, found in the bytes, are
/// shown where the person typed them.
pub fn text_position(input: &str, byte: usize) -> usize {
    let mut from = Vec::new();
    match parse_text_from(input, Some(&mut from)) {
        Ok(_) => from.get(byte).map_or(input.chars().count() + 1, |i| i + 1),
        Err(e) => e.position,
    }
}

/// [`parse_text`], noting for each byte the index of the character that
/// began it when `from` is given.
fn parse_text_from(
    input: &str,
    mut from: Option<&mut Vec<usize>>,
) -> Result<Vec<u8>, PayloadError> {
    let mut out = Vec::with_capacity(input.len());
    let mut chars = input.chars().enumerate().peekable();
    let err = |index: usize, problem| PayloadError {
        position: index + 1,
        problem,
    };
    let mut began = 0;
    while let Some((i, c)) = chars.next() {
        if let Some(from) = from.as_deref_mut() {
            from.resize(out.len(), began);
        }
        began = i;
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some((j, e)) = chars.next() else {
            return Err(err(i, Problem::TrailingBackslash));
        };
        match e {
            'r' => out.push(b'\r'),
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            '0' => out.push(0),
            '\\' => out.push(b'\\'),
            '"' => out.push(b'"'),
            '\'' => out.push(b'\''),
            'x' => {
                let mut value = 0u8;
                for k in 0..2 {
                    match chars.next() {
                        Some((_, d)) if d.is_ascii_hexdigit() => {
                            value = value * 16 + d.to_digit(16).unwrap_or(0) as u8
                        }
                        Some((p, d)) => return Err(err(p, Problem::BadByteEscape(Some(d)))),
                        None => return Err(err(j + k, Problem::BadByteEscape(None))),
                    }
                }
                out.push(value);
            }
            'u' => {
                match chars.next() {
                    Some((_, '{')) => {}
                    Some((p, d)) => return Err(err(p, Problem::BadUnicodeEscape(Some(d)))),
                    None => return Err(err(j, Problem::BadUnicodeEscape(None))),
                }
                let mut digits = String::new();
                let mut last = j + 1;
                loop {
                    match chars.next() {
                        Some((_, '}')) if !digits.is_empty() => break,
                        Some((p, d)) if d.is_ascii_hexdigit() && digits.len() < 6 => {
                            digits.push(d);
                            last = p;
                        }
                        Some((p, d)) => return Err(err(p, Problem::BadUnicodeEscape(Some(d)))),
                        None => return Err(err(last, Problem::BadUnicodeEscape(None))),
                    }
                }
                let code = u32::from_str_radix(&digits, 16).unwrap_or(u32::MAX);
                let Some(ch) = char::from_u32(code) else {
                    return Err(err(j, Problem::InvalidCodePoint(digits)));
                };
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            other => return Err(err(j, Problem::UnknownEscape(other))),
        }
    }
    if let Some(from) = from {
        from.resize(out.len(), began);
    }
    Ok(out)
}

/// Separators allowed between hex bytes.
fn is_hex_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ':' | '-' | ';')
}

/// Parses hex notation: `48 65 6c`, `0x48,0x65`, `48656C`, any case.
pub fn parse_hex(input: &str) -> Result<Vec<u8>, PayloadError> {
    let mut out = Vec::with_capacity(input.len() / 2);
    let chars: Vec<char> = input.chars().collect();
    let err = |index: usize, problem| PayloadError {
        position: index + 1,
        problem,
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_hex_separator(c) {
            i += 1;
            continue;
        }
        // One token: an optional 0x prefix and then digits up to the next separator.
        if c == '0' && matches!(chars.get(i + 1), Some('x' | 'X')) {
            let start = i;
            i += 2;
            if chars.get(i).is_none_or(|d| !d.is_ascii_hexdigit()) {
                return match chars.get(i) {
                    Some(&d) if !is_hex_separator(d) => Err(err(i, Problem::NotHexDigit(d))),
                    _ => Err(err(start, Problem::EmptyHexPrefix)),
                };
            }
        }
        let mut pending: Option<(usize, u8)> = None;
        while i < chars.len() && !is_hex_separator(chars[i]) {
            let d = chars[i];
            let Some(v) = d.to_digit(16) else {
                return Err(err(i, Problem::NotHexDigit(d)));
            };
            match pending.take() {
                None => pending = Some((i, v as u8)),
                Some((_, hi)) => out.push(hi * 16 + v as u8),
            }
            i += 1;
        }
        if let Some((at, _)) = pending {
            return Err(err(at, Problem::LoneHexDigit(chars[at])));
        }
    }
    Ok(out)
}

/// Writes bytes as spaced lower-case hex pairs: `48 65 6c`.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Writes bytes in text notation: printable characters as themselves, the rest
/// escaped, so that [`parse_text`] returns exactly `bytes`.
pub fn to_text_notation(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped_char(&mut s, c);
        }
        for b in chunk.invalid() {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s
}

fn push_escaped_char(s: &mut String, c: char) {
    match c {
        '\\' => s.push_str("\\\\"),
        c if !is_printable_char(c) => push_char_escape(s, c),
        c => s.push(c),
    }
}

/// A character a person can read as itself (letters, digits, punctuation,
/// symbols, spaces): not a control, bidi or separator character (see
/// [`is_unsafe_for_display`]) and not an invisible format character.
fn is_printable_char(c: char) -> bool {
    !is_unsafe_for_display(c)
        && !matches!(c as u32,
            0x00AD | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB)
}

/// True when the bytes are UTF-8 text made of printable characters and the
/// whitespace of text protocols (`\r`, `\n`, `\t`): such a payload is shown and
/// stored as text, anything else as hex.
pub fn is_printable_text(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(s) => s
            .chars()
            .all(|c| matches!(c, '\r' | '\n' | '\t') || is_printable_char(c)),
        Err(_) => false,
    }
}

/// The notation a payload is best shown in.
pub fn natural_notation(bytes: &[u8]) -> Notation {
    if is_printable_text(bytes) {
        Notation::Text
    } else {
        Notation::Hex
    }
}

/// A one-line preview of at most about `max_chars` characters: printable text
/// quoted with escapes (`"GET /\r\n"`), anything else as hex (`[00 01 ff]`), with
/// `…` where it was cut.
pub fn preview(bytes: &[u8], max_chars: usize) -> String {
    let mut s = String::new();
    if is_printable_text(bytes) {
        s.push('"');
        let mut cut = false;
        for (count, c) in std::str::from_utf8(bytes).unwrap_or("").chars().enumerate() {
            if count >= max_chars {
                cut = true;
                break;
            }
            push_escaped_char(&mut s, c);
        }
        s.push('"');
        if cut {
            s.push('…');
        }
    } else {
        let shown = (max_chars / 3).max(1);
        s.push('[');
        s.push_str(&to_hex(&bytes[..bytes.len().min(shown)]));
        if bytes.len() > shown {
            s.push_str(" …");
        }
        s.push(']');
    }
    s
}

/// A classic hex dump: offset, 16 hex bytes, ASCII with dots for the rest.
pub fn hex_dump(bytes: &[u8]) -> String {
    hex_dump_by(bytes, 16)
}

/// The characters one line of [`hex_dump_by`] takes for `per_line` bytes.
pub fn hex_dump_line_chars(per_line: usize) -> usize {
    10 + 3 * per_line + usize::from(per_line > 8) + 3 + per_line
}

/// A hex dump with `per_line` bytes a line (16 as `hexdump -C`; fewer for a
/// narrow pane, so the ASCII column stays in view).
pub fn hex_dump_by(bytes: &[u8], per_line: usize) -> String {
    let per_line = per_line.max(1);
    let mut s = String::with_capacity(bytes.len() * 4 + 16);
    for (line, chunk) in bytes.chunks(per_line).enumerate() {
        let _ = write!(s, "{:08x}  ", line * per_line);
        for i in 0..per_line {
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(s, "{b:02x} ");
                }
                None => s.push_str("   "),
            }
            if per_line > 8 && i == per_line / 2 - 1 {
                s.push(' ');
            }
        }
        s.push(' ');
        s.push('|');
        for &b in chunk {
            s.push(if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            });
        }
        s.push('|');
        s.push('\n');
    }
    s
}

/// A payload as stored in session files: `Text("...")` when the bytes are
/// printable UTF-8, `Hex("...")` otherwise; never an array of numbers.
///
/// In files, `Text` holds the characters themselves (RON's own string escapes
/// apply), and `Hex` holds hex notation.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Payload(pub Vec<u8>);

impl Payload {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({})", preview(&self.0, 60))
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

/// The file shape of a [`Payload`].
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename = "Payload")]
enum PayloadFile {
    Text(String),
    Hex(String),
}

impl serde::Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let file = if is_printable_text(&self.0) {
            PayloadFile::Text(String::from_utf8_lossy(&self.0).into_owned())
        } else {
            PayloadFile::Hex(to_hex(&self.0))
        };
        file.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match PayloadFile::deserialize(deserializer)? {
            PayloadFile::Text(s) => Ok(Payload(s.into_bytes())),
            PayloadFile::Hex(h) => parse_hex(&h)
                .map(Payload)
                .map_err(|e| serde::de::Error::custom(format!("in Hex payload {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_escapes() {
        assert_eq!(parse_text("GET /\\r\\n").unwrap(), b"GET /\r\n");
        assert_eq!(parse_text("a\\tb\\0c\\\\").unwrap(), b"a\tb\0c\\");
        assert_eq!(parse_text("\\x00\\xFF\\x7f").unwrap(), [0, 255, 127]);
        assert_eq!(parse_text("\\u{e9}").unwrap(), "é".as_bytes());
        assert_eq!(parse_text("\\u{1F600}").unwrap(), "😀".as_bytes());
        assert_eq!(parse_text("ünïcödé").unwrap(), "ünïcödé".as_bytes());
        assert_eq!(parse_text("").unwrap(), b"");
    }

    #[test]
    fn text_errors_name_position_and_character() {
        let e = parse_text("ab\\q").unwrap_err();
        assert_eq!(e.position, 4);
        assert_eq!(e.problem, Problem::UnknownEscape('q'));
        assert_eq!(
            e.to_string(),
            "at position 4: \"\\q\" is not a known escape (use \\r \\n \\t \\0 \\\\ \\xNN or \\u{...})"
        );

        let e = parse_text("abc\\").unwrap_err();
        assert_eq!((e.position, e.problem), (4, Problem::TrailingBackslash));

        let e = parse_text("\\x4g").unwrap_err();
        assert_eq!(e.position, 4);
        assert_eq!(e.problem, Problem::BadByteEscape(Some('g')));
        assert_eq!(
            e.to_string(),
            "at position 4: \\x needs two hex digits, found 'g'"
        );

        let e = parse_text("\\x4").unwrap_err();
        assert_eq!(e.problem, Problem::BadByteEscape(None));

        let e = parse_text("\\u{d800}").unwrap_err();
        assert_eq!(e.problem, Problem::InvalidCodePoint("d800".into()));
        let e = parse_text("\\u41").unwrap_err();
        assert_eq!(
            (e.position, e.problem),
            (3, Problem::BadUnicodeEscape(Some('4')))
        );
        let e = parse_text("\\u{}").unwrap_err();
        assert_eq!(
            (e.position, e.problem),
            (4, Problem::BadUnicodeEscape(Some('}')))
        );
        let e = parse_text("\\u{41").unwrap_err();
        assert_eq!(e.problem, Problem::BadUnicodeEscape(None));
        // Positions count characters, not bytes.
        let e = parse_text("é\\z").unwrap_err();
        assert_eq!(e.position, 3);
    }

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex("48 65 6c").unwrap(), b"Hel");
        assert_eq!(parse_hex("0x48,0x65").unwrap(), b"He");
        assert_eq!(parse_hex("48656C").unwrap(), b"Hel");
        assert_eq!(parse_hex("48656c6C6f").unwrap(), b"Hello");
        assert_eq!(parse_hex("0X4865, 6c\n6c:6f").unwrap(), b"Hello");
        assert_eq!(parse_hex("de-ad-be-ef").unwrap(), [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(parse_hex("  ").unwrap(), b"");
    }

    #[test]
    fn hex_errors_name_position_and_character() {
        let e = parse_hex("48 6g").unwrap_err();
        assert_eq!(
            (e.position, e.problem.clone()),
            (5, Problem::NotHexDigit('g'))
        );
        assert_eq!(e.to_string(), "at position 5: 'g' is not a hex digit");
        let e = parse_hex("48 656").unwrap_err();
        assert_eq!((e.position, e.problem), (6, Problem::LoneHexDigit('6')));
        let e = parse_hex("0x").unwrap_err();
        assert_eq!((e.position, e.problem), (1, Problem::EmptyHexPrefix));
        let e = parse_hex("0xzz").unwrap_err();
        assert_eq!((e.position, e.problem), (3, Problem::NotHexDigit('z')));
        let e = parse_hex("4").unwrap_err();
        assert_eq!(e.position, 1);
    }

    #[test]
    fn line_and_column() {
        let input = "48 65\n6c zz";
        let e = parse_hex(input).unwrap_err();
        assert_eq!(e.line_col(input), (2, 4));
    }

    #[test]
    fn display_choice() {
        assert!(is_printable_text(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(is_printable_text("grüße".as_bytes()));
        assert!(!is_printable_text(b"a\0b"));
        assert!(!is_printable_text(&[0xff, 0xfe]));
        assert_eq!(natural_notation(b"hi"), Notation::Text);
        assert_eq!(natural_notation(&[1, 2]), Notation::Hex);
        assert_eq!(preview(b"hi\r\n", 40), "\"hi\\r\\n\"");
        assert_eq!(preview(b"abcdef", 3), "\"abc\"…");
        assert_eq!(preview(&[0, 1, 255], 40), "[00 01 ff]");
        assert_eq!(preview(&[0; 10], 6), "[00 00 …]");
    }

    #[test]
    fn notation_output() {
        assert_eq!(to_hex(b"Hel"), "48 65 6c");
        assert_eq!(
            to_text_notation(b"a\r\n\0\\\x01\xff"),
            "a\\r\\n\\0\\\\\\x01\\xff"
        );
        assert_eq!(to_text_notation("é\u{200b}".as_bytes()), "é\\u{200b}");
    }

    #[test]
    fn narrow_hex_dumps_keep_their_ascii_column() {
        let dump = hex_dump_by(b"Hello, world!", 8);
        let lines: Vec<&str> = dump.lines().collect();
        assert_eq!(lines[0], "00000000  48 65 6c 6c 6f 2c 20 77  |Hello, w|");
        assert_eq!(lines[1], "00000008  6f 72 6c 64 21           |orld!|");
        assert_eq!(lines[0].len(), hex_dump_line_chars(8));
        let wide = hex_dump(&[0; 16]);
        assert_eq!(wide.lines().next().unwrap().len(), hex_dump_line_chars(16));
    }

    #[test]
    fn hex_dump_layout() {
        let dump = hex_dump(b"Hello, world!\r\n\x00\x01");
        let lines: Vec<&str> = dump.lines().collect();
        assert_eq!(
            lines[0],
            "00000000  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 0d 0a 00  |Hello, world!...|"
        );
        assert_eq!(
            lines[1],
            "00000010  01                                                |.|"
        );
    }

    #[test]
    fn payload_file_form() {
        let text = ron::to_string(&Payload::from("hi\n")).unwrap();
        assert_eq!(text, "Text(\"hi\\n\")");
        let hex = ron::to_string(&Payload::new(vec![0u8, 255])).unwrap();
        assert_eq!(hex, "Hex(\"00 ff\")");
        let back: Payload = ron::from_str("Hex(\"0x00,0xff\")").unwrap();
        assert_eq!(back.bytes(), [0, 255]);
        let bad = ron::from_str::<Payload>("Hex(\"0g\")").unwrap_err();
        assert!(bad.to_string().contains("'g' is not a hex digit"), "{bad}");
    }

    #[test]
    fn errors_name_bidi_and_control_characters_by_number() {
        for c in [
            '\u{202e}', '\u{85}', '\x1b', '\u{2028}', '\u{61c}', '\u{200b}',
        ] {
            let input = format!("\\x4{c}");
            let message = parse_text(&input).unwrap_err().to_string();
            assert!(
                !message.chars().any(is_unsafe_for_display) && !message.contains(c),
                "{message:?}"
            );
            assert!(
                message.contains(&format!("U+{:04X}", c as u32)),
                "{message}"
            );
        }
    }

    #[test]
    fn previews_show_bidi_and_c1_characters_escaped() {
        for hostile in [
            "\u{202e}evil",
            "a\u{61c}b",
            "x\u{85}y",
            "\u{2066}l\u{2069}",
            "p\u{2029}",
        ] {
            let shown = preview(hostile.as_bytes(), 60);
            assert!(
                !shown
                    .chars()
                    .any(crate::model::display::is_unsafe_for_display),
                "{hostile:?} -> {shown:?}"
            );
        }
        assert_eq!(
            to_text_notation("\u{202e}a\u{61c}".as_bytes()),
            "\\u{202e}a\\u{61c}"
        );
    }

    proptest! {
        #[test]
        fn previews_never_hold_a_dangerous_character(bytes in proptest::collection::vec(any::<u8>(), 0..64), text in "\\PC*[\u{0}-\u{1f}\u{7f}-\u{9f}\u{202a}-\u{202e}\u{2066}-\u{2069}\u{61c}\u{2028}]\\PC*") {
            for b in [bytes.as_slice(), text.as_bytes()] {
                let shown = preview(b, 40);
                prop_assert!(!shown.chars().any(crate::model::display::is_unsafe_for_display), "{:?}", shown);
                let notation = to_text_notation(b);
                prop_assert!(!notation.chars().any(crate::model::display::is_unsafe_for_display), "{:?}", notation);
            }
        }

        #[test]
        fn any_bytes_survive_text_notation(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(parse_text(&to_text_notation(&bytes)).unwrap(), bytes);
        }

        #[test]
        fn any_bytes_survive_hex_notation(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(parse_hex(&to_hex(&bytes)).unwrap(), bytes);
        }

        #[test]
        fn any_text_survives_text_notation(s in "\\PC*") {
            prop_assert_eq!(parse_text(&to_text_notation(s.as_bytes())).unwrap(), s.as_bytes());
        }

        #[test]
        fn any_bytes_survive_the_file_form(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let file = ron::to_string(&Payload::new(bytes.clone())).unwrap();
            let back: Payload = ron::from_str(&file).unwrap();
            prop_assert_eq!(back.0, bytes);
        }

        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse_text(&s);
            let _ = parse_hex(&s);
        }
    }
}
