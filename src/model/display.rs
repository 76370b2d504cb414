//! Showing text that a peer or a file controls: endpoint names, notes,
//! certificate subjects, error details, addresses, file names.
//!
//! Such text reaches a terminal (every line the command line prints) and the
//! window (every label). Raw, it can carry escape sequences that rewrite the
//! terminal, a BEL, bidi overrides that reorder what is read, and newlines that
//! forge whole event lines. [`escape_controls`] shows every such character as a
//! visible escape in the payload text notation (`\n`, `\x1b`, `\u{202e}`), so
//! one event is always one line and what is shown can be typed back into a
//! composer to get the same character.
//!
//! Backslashes are left as they are, so ordinary text (a Windows path, a
//! regular expression) reads unchanged: the function is the identity on text
//! without dangerous characters.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for the characters that must never reach a terminal or a label as
/// themselves: C0 controls, DEL and C1 controls (which include U+0085, the
/// next-line character), the bidi embeddings, overrides, isolates and marks
/// (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C), and the line and
/// paragraph separators U+2028 and U+2029.
pub fn is_unsafe_for_display(c: char) -> bool {
    c.is_control()
        || matches!(
            c as u32,
            0x061C | 0x200E | 0x200F | 0x2028 | 0x2029 | 0x202A..=0x202E | 0x2066..=0x2069
        )
}

/// Appends `c` in the payload text notation's escape: `\r \n \t \0` by name,
/// other ASCII controls as `\xNN` (one byte, which is the character's UTF-8),
/// anything else as `\u{..}`.
pub(crate) fn push_char_escape(s: &mut String, c: char) {
    match c {
        '\r' => s.push_str("\\r"),
        '\n' => s.push_str("\\n"),
        '\t' => s.push_str("\\t"),
        '\0' => s.push_str("\\0"),
        c if c.is_ascii() => {
            let _ = write!(s, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(s, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `text` with every character for which [`is_unsafe_for_display`] holds
/// written as a visible escape; borrowed (no copy) when there is none.
///
/// ```
/// use sockbench::model::display::escape_controls;
/// assert_eq!(escape_controls("a\n\x1b[31m\u{202e}b"), "a\\n\\x1b[31m\\u{202e}b");
/// assert_eq!(escape_controls("C:\\ok é"), "C:\\ok é");
/// ```
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    escape_where(text, is_unsafe_for_display)
}

/// Like [`escape_controls`], but keeps line feeds: for text that is several
/// lines by nature (a session's notes, a lesson's text), shown where a line
/// break cannot pass for an event line (a label of its own in the window).
/// Carriage returns, every other control and the bidi characters are escaped.
pub fn escape_controls_keep_lines(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c != '\n' && is_unsafe_for_display(c))
}

/// Bytes from the network or a file as one line of text: invalid UTF-8 becomes
/// U+FFFD, dangerous characters are escaped.
pub fn escape_bytes_lossy(bytes: &[u8]) -> String {
    escape_controls(&String::from_utf8_lossy(bytes)).into_owned()
}

fn escape_where(text: &str, unsafe_char: impl Fn(char) -> bool) -> Cow<'_, str> {
    let Some(first) = text.find(&unsafe_char) else {
        return Cow::Borrowed(text);
    };
    let mut s = String::with_capacity(text.len() + 8);
    s.push_str(&text[..first]);
    for c in text[first..].chars() {
        if unsafe_char(c) {
            push_char_escape(&mut s, c);
        } else {
            s.push(c);
        }
    }
    Cow::Owned(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::payload::parse_text;
    use proptest::prelude::*;

    /// The dangerous set, spelled out once more independently of the predicate.
    fn dangerous(c: char) -> bool {
        let u = c as u32;
        u < 0x20
            || (0x7F..=0x9F).contains(&u)
            || (0x202A..=0x202E).contains(&u)
            || (0x2066..=0x2069).contains(&u)
            || matches!(u, 0x200E | 0x200F | 0x061C | 0x2028 | 0x2029 | 0x0085)
    }

    #[test]
    fn controls_and_bidi_become_visible_escapes() {
        assert_eq!(escape_controls("line\nFAKE"), "line\\nFAKE");
        assert_eq!(escape_controls("a\r\n\t\0b"), "a\\r\\n\\t\\0b");
        assert_eq!(escape_controls("\x1b[31mred\x07"), "\\x1b[31mred\\x07");
        assert_eq!(escape_controls("del\x7f"), "del\\x7f");
        assert_eq!(escape_controls("c1\u{9b}31m"), "c1\\u{9b}31m");
        assert_eq!(escape_controls("nel\u{85}x"), "nel\\u{85}x");
        assert_eq!(escape_controls("\u{202e}evil"), "\\u{202e}evil");
        assert_eq!(
            escape_controls("\u{2066}\u{2067}\u{2068}\u{2069}\u{200e}\u{200f}\u{61c}"),
            "\\u{2066}\\u{2067}\\u{2068}\\u{2069}\\u{200e}\\u{200f}\\u{61c}"
        );
        assert_eq!(escape_controls("\u{2028}\u{2029}"), "\\u{2028}\\u{2029}");
    }

    #[test]
    fn safe_text_is_borrowed_unchanged() {
        for s in [
            "",
            "client",
            "grüße 😀 שלום مرحبا",
            "C:\\path\\n.ron",
            "a b",
        ] {
            assert!(
                matches!(escape_controls(s), Cow::Borrowed(t) if t == s),
                "{s:?}"
            );
        }
    }

    #[test]
    fn lines_kept_where_asked() {
        assert_eq!(
            escape_controls_keep_lines("one\ntwo\r\n\x1b[2J\u{202e}"),
            "one\ntwo\\r\n\\x1b[2J\\u{202e}"
        );
    }

    #[test]
    fn bytes_become_one_line() {
        assert_eq!(
            escape_bytes_lossy(b"ok\n2026-01-01 FAKE\xff"),
            "ok\\n2026-01-01 FAKE\u{fffd}"
        );
    }

    #[test]
    fn escapes_type_back_into_the_same_characters() {
        let hostile = "\u{202e}evil\n\x1b[31m\x07\u{85}\u{2028}\u{61c}";
        let shown = escape_controls(hostile);
        assert_eq!(parse_text(&shown).unwrap(), hostile.as_bytes());
    }

    /// Strings mixing any characters with plenty of the dangerous ones.
    fn hostile_text() -> impl Strategy<Value = String> {
        let picked = prop_oneof![
            prop::sample::select(vec![
                0x0Au32, 0x0D, 0x1B, 0x07, 0x85, 0x9B, 0x202E, 0x2069, 0x061C, 0x2028, 0x2029,
            ]),
            0x00u32..0x20,
            0x7Fu32..0xA0,
            0x2000u32..0x2070,
        ]
        .prop_map(|c| char::from_u32(c).unwrap_or('?'));
        let any_char = prop_oneof![any::<char>(), picked];
        proptest::collection::vec(any_char, 0..48).prop_map(String::from_iter)
    }

    proptest! {
        #[test]
        fn output_never_holds_a_dangerous_character(s in hostile_text()) {
            let shown = escape_controls(&s);
            prop_assert!(!shown.chars().any(dangerous), "{:?} -> {:?}", s, shown);
            let kept = escape_controls_keep_lines(&s);
            prop_assert!(!kept.chars().any(|c| c != '\n' && dangerous(c)), "{:?}", kept);
        }

        #[test]
        fn dangerous_characters_are_always_caught(c in any::<char>()) {
            prop_assert_eq!(is_unsafe_for_display(c), dangerous(c));
        }

        #[test]
        fn identity_without_dangerous_characters(s in hostile_text()) {
            let safe: String = s.chars().filter(|c| !dangerous(*c)).collect();
            prop_assert_eq!(escape_controls(&safe), Cow::Borrowed(safe.as_str()));
        }

        #[test]
        fn backslash_free_text_types_back(s in hostile_text()) {
            // Without backslashes in the input, the shown form is exactly the
            // payload notation of the text.
            let s: String = s.chars().filter(|c| *c != '\\').collect();
            prop_assert_eq!(parse_text(&escape_controls(&s)).unwrap(), s.as_bytes());
        }
    }
}
