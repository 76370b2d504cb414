//! Every string an export writes is encoded here, for its target.
//!
//! A session file is data from anyone: its endpoint names, addresses, notes,
//! payloads, log details and certificate paths may hold quotes, newlines,
//! escape sequences or bidi overrides. None of it may ever change what the
//! generated text *is*:
//!
//! - **Python**: session text only ever appears inside a literal built by
//!   [`python_str`] or [`python_bytes`], never in a docstring or a comment.
//!   Literals are pure ASCII: quotes, backslashes, every control character
//!   (C0, C1, DEL) and everything beyond ASCII (so bidi overrides and line
//!   separators too) are written as Python escapes.
//! - **Mermaid**: [`mermaid_text`] writes the characters Mermaid reads as
//!   syntax (`#`, `;`, `%`, quotes, `<`, `>`, `&`) as its entity codes
//!   (`#35;`, `#quot;`), and control and bidi characters as visible escapes, so
//!   a label stays one label on one line.
//! - **CSV**: [`csv_cell`] escapes control and bidi characters, and a cell
//!   that a spreadsheet would read as a formula (it starts with `=`, `+`, `-`,
//!   `@`, a tab or a carriage return) gets a leading `'`, as OWASP recommends;
//!   a plain number such as `-1` stays as it is. Quoting is the CSV writer's.

use std::fmt::Write as _;

use crate::model::payload::to_text_notation;

/// A Python `str` literal that reads back as exactly `text`. Pure ASCII:
/// printable ASCII stands for itself (except `"` and `\`), everything else is
/// a Python escape (`\n`, `\x85`, `\u202e`, `\U0001f600`).
pub fn python_str(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    push_python_escaped(&mut s, text, true);
    s.push('"');
    s
}

/// A one-line Python comment saying `text`, escaped as in [`python_str`]
/// (quotes and backslashes may stand for themselves in a comment): no
/// newline, control or non-ASCII character can end it or hide in it.
pub fn python_comment(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push_str("# ");
    push_python_escaped(&mut s, text, false);
    s
}

fn push_python_escaped(s: &mut String, text: &str, in_literal: bool) {
    for c in text.chars() {
        match c {
            '"' | '\\' if in_literal => {
                s.push('\\');
                s.push(c);
            }
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            ' '..='~' => s.push(c),
            c => {
                let n = c as u32;
                let _ = match n {
                    0..=0xff => write!(s, "\\x{n:02x}"),
                    0x100..=0xffff => write!(s, "\\u{n:04x}"),
                    _ => write!(s, "\\U{n:08x}"),
                };
            }
        }
    }
}

/// A Python `bytes` literal that reads back as exactly `bytes`: `b"GET /\r\n"`,
/// `b"\x00\xff"`. Pure ASCII, like [`python_str`].
pub fn python_bytes(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 3);
    s.push_str("b\"");
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            b' '..=b'~' => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
    s
}

/// A character that changes how text around it is shown or read without
/// showing itself: controls (C0, C1, DEL), bidi marks, overrides and isolates,
/// line and paragraph separators, zero-width and invisible formatting.
pub fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

/// `c` as the payload text notation writes it: `\n`, `\x1b`, `\u{202e}`.
fn push_visible_escape(s: &mut String, c: char) {
    let _ = match c {
        '\n' => write!(s, "\\n"),
        '\r' => write!(s, "\\r"),
        '\t' => write!(s, "\\t"),
        '\0' => write!(s, "\\0"),
        c if (c as u32) < 0x80 => write!(s, "\\x{:02x}", c as u32),
        c => write!(s, "\\u{{{:x}}}", c as u32),
    };
}

/// Text for a Mermaid label (a participant's name, a message, a note): one
/// line, with nothing Mermaid reads as syntax. `#`, `;`, `%`, `"`, `<`, `>`
/// and `&` become entity codes (`%%` starts comments and `%%{init}%%`
/// directives anywhere in a diagram; `<`, `>` and `&` would be HTML);
/// controls and bidi characters become visible escapes (`\n`, `\u{202e}`).
pub fn mermaid_text(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' => s.push_str("#35;"),
            ';' => s.push_str("#59;"),
            '%' => s.push_str("#37;"),
            '"' => s.push_str("#quot;"),
            '<' => s.push_str("#lt;"),
            '>' => s.push_str("#gt;"),
            '&' => s.push_str("#amp;"),
            c if is_hidden_char(c) => push_visible_escape(&mut s, c),
            c => s.push(c),
        }
    }
    // Mermaid reads a label that starts (after spaces) with `wrap:` or
    // `nowrap:`, with or without a colon before, as a line-wrapping switch.
    let text = s.trim_start();
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    if ["wrap:", "nowrap:", ":wrap:", ":nowrap:"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        let at = s.len() - text.len();
        let first = u32::from(s.as_bytes()[at]);
        s.replace_range(at..at + 1, &format!("#{first};"));
    }
    s
}

/// True for a cell a spreadsheet would not read as a formula although it
/// starts with `+` or `-`: a plain decimal number such as `-1` or `+2.5`.
fn is_plain_number(cell: &str) -> bool {
    let digits = cell.strip_prefix(['+', '-']).unwrap_or(cell);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "1"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// A CSV cell that shows `text` and is never run as a formula.
///
/// Controls and bidi characters are escaped as in the payload text notation
/// (as is `\`, so the escapes stay unambiguous). A cell starting with `=`,
/// `+`, `-`, `@` (or their full-width forms, which some spreadsheets read the
/// same way), a tab or a carriage return gets a leading `'`, unless it is a
/// plain number. The quote is not part of the value.
pub fn csv_cell(text: &str) -> String {
    let mut cell = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => cell.push_str("\\\\"),
            c if is_hidden_char(c) => push_visible_escape(&mut cell, c),
            c => cell.push(c),
        }
    }
    neutralise_formula(cell)
}

/// A CSV cell for payload bytes: the payload text notation (which already
/// escapes controls, bidi characters and `\`), never run as a formula.
pub fn csv_payload_cell(bytes: &[u8]) -> String {
    neutralise_formula(to_text_notation(bytes))
}

fn neutralise_formula(cell: String) -> String {
    let formula = cell.starts_with([
        '=', '+', '-', '@', '\t', '\r', '\u{ff1d}', '\u{ff0b}', '\u{ff0d}', '\u{ff20}',
    ]);
    if formula && !is_plain_number(&cell) {
        format!("'{cell}")
    } else {
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_literals_are_ascii_and_escape_everything_else() {
        assert_eq!(python_str("plain"), "\"plain\"");
        assert_eq!(python_str("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            python_str("\"\"\"\nimport os"),
            "\"\\\"\\\"\\\"\\nimport os\""
        );
        assert_eq!(python_str("del\u{7f} nel\u{85}"), "\"del\\x7f nel\\x85\"");
        assert_eq!(
            python_str("ls\u{2028} rlo\u{202e}"),
            "\"ls\\u2028 rlo\\u202e\""
        );
        assert_eq!(python_str("café 😀"), "\"caf\\xe9 \\U0001f600\"");
        assert_eq!(python_str("{x}'"), "\"{x}'\"");
        assert_eq!(
            python_comment("a \"b\"\nimport os\r\u{202e}\\"),
            "# a \"b\"\\nimport os\\r\\u202e\\"
        );
        assert_eq!(
            python_bytes(b"GET / HTTP/1.0\r\n"),
            "b\"GET / HTTP/1.0\\r\\n\""
        );
        assert_eq!(
            python_bytes(&[0, 0x7f, 0xff, b'"', b'\\']),
            "b\"\\x00\\x7f\\xff\\\"\\\\\""
        );
    }

    #[test]
    fn mermaid_labels_stay_one_label() {
        assert_eq!(mermaid_text("a#b;c"), "a#35;b#59;c");
        assert_eq!(
            mermaid_text("x\nNote over P0: forged"),
            "x\\nNote over P0: forged"
        );
        assert_eq!(
            mermaid_text("%%{init: {\"theme\": \"dark\"}}%%"),
            "#37;#37;{init: {#quot;theme#quot;: #quot;dark#quot;}}#37;#37;"
        );
        assert_eq!(
            mermaid_text("a-->>b <br> &amp"),
            "a--#gt;#gt;b #lt;br#gt; #amp;amp"
        );
        assert_eq!(
            mermaid_text("\r\u{85}\u{2028}\u{202e}\u{1b}"),
            "\\r\\u{85}\\u{2028}\\u{202e}\\x1b"
        );
        assert_eq!(mermaid_text("café 127.0.0.1:7"), "café 127.0.0.1:7");
        assert_eq!(mermaid_text("wrap:x"), "#119;rap:x");
        assert_eq!(mermaid_text("  NoWrap: x"), "  #78;oWrap: x");
        assert_eq!(mermaid_text(":wrap:"), "#58;wrap:");
        assert_eq!(mermaid_text("a wrap:"), "a wrap:");
    }

    #[test]
    fn csv_cells_are_never_formulas() {
        for formula in ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "＝1+1"] {
            assert_eq!(csv_cell(formula), format!("'{formula}"));
        }
        assert_eq!(csv_cell("\t=1"), "\\t=1");
        assert_eq!(csv_cell("\r=1"), "\\r=1");
        for number in ["-1", "+2.5", "0", "65535", "-0.75"] {
            assert_eq!(csv_cell(number), number);
        }
        for not_number in ["-", "-.5", "-1.", "+1e5", "-1-1"] {
            assert_eq!(csv_cell(not_number), format!("'{not_number}"));
        }
        assert_eq!(
            csv_cell("a\nb\u{85}\u{202e}\\"),
            "a\\nb\\u{85}\\u{202e}\\\\"
        );
        assert_eq!(csv_cell("plain, text"), "plain, text");
        assert_eq!(
            csv_payload_cell(b"=HYPERLINK(\"x\")\r\n"),
            "'=HYPERLINK(\"x\")\\r\\n"
        );
        assert_eq!(csv_payload_cell(&[0, 255]), "\\0\\xff");
    }
}
