//! Ignore rules: parts of the expected answers a replay check does not
//! compare, so a device that stamps times, counters or session ids still
//! passes `replay --check`.
//!
//! A rule is one of:
//!
//! - a **regular expression** over the bytes (Rust `regex` syntax, matched on
//!   the bytes of a TCP stream or of one datagram): every match is ignored; or,
//!   when the pattern has named groups (`Date: (?<date>[^\r\n]*)`), only those
//!   groups are, and the rest of the match must still be there;
//! - a **byte range** `A..B` (or `A..` to the end): offsets within a
//!   connection's received stream (TCP, TLS) or within each datagram (UDP).
//!
//! A rule may carry a `name` (the report then says "field `name`") and an
//! `endpoint` (it applies to that endpoint's conversations only; without one,
//! to every endpoint's).
//!
//! # How ignored spans are compared
//!
//! The rules are applied to the expected bytes and to the received bytes
//! separately; each side becomes literal bytes and *ignored spans* (spans
//! that overlap on one side merge into one). The two sides are then walked
//! together: literal bytes must be equal, and an ignored span on one side must
//! meet an ignored span **of the same rule** (or field) at the corresponding
//! place on the other side — after equal bytes — whatever the two spans hold
//! and however long each is. A span on one side alone is a difference: the
//! report says which rule expected it. Byte ranges are taken on each side's
//! own offsets (use them for fixed layouts; use a regular expression where an
//! earlier field's length varies).

use std::fmt;
use std::ops::Range;

/// The longest compiled program a rule's regular expression may make, so a
/// crafted session file cannot make a check use unbounded memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The most characters of a pattern a label quotes.
const LABEL_CHARS: usize = 40;

/// A rule of what a check does not compare.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "IgnoreFile", into = "IgnoreFile")]
pub struct IgnoreRule {
    /// A name for the report ("ignored field `date`").
    pub name: Option<String>,
    /// Only this endpoint's conversations; `None`: every endpoint's.
    pub endpoint: Option<String>,
    pub what: IgnoreWhat,
}

/// What a rule ignores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IgnoreWhat {
    Regex(Pattern),
    Bytes(ByteRange),
}

/// A compiled regular expression that remembers how it was written (files and
/// reports show the text; equality is the text's).
#[derive(Clone, Debug)]
pub struct Pattern {
    text: String,
    regex: regex::bytes::Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for Pattern {}

impl Pattern {
    /// Compiles `text`; the error is one line.
    pub fn new(text: &str) -> Result<Pattern, String> {
        let regex = regex::bytes::RegexBuilder::new(text)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                // The regex crate's message spans lines (the pattern, a caret);
                // its last line says what is wrong.
                let full = e.to_string();
                let why = full
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("not a regular expression")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_owned();
                format!(
                    "not a regular expression ({why}): {}",
                    crate::model::escape_controls(&excerpt(text))
                )
            })?;
        Ok(Pattern {
            text: text.to_owned(),
            regex,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The names of its named groups.
    fn group_names(&self) -> Vec<&str> {
        self.regex.capture_names().flatten().collect()
    }
}

/// Bytes `start..end` (`end` `None`: to the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: usize,
    pub end: Option<usize>,
}

impl ByteRange {
    /// `A..B` or `A..` (decimal offsets, B greater than A).
    pub fn parse(text: &str) -> Result<ByteRange, String> {
        let bad = || {
            format!(
                "{} is not a byte range: write START..END (such as 4..8, the end not included) or START.. (to the end)",
                crate::model::escape_controls(&excerpt(text))
            )
        };
        let (a, b) = text.trim().split_once("..").ok_or_else(bad)?;
        let start: usize = a.trim().parse().map_err(|_| bad())?;
        let end = match b.trim() {
            "" => None,
            b => Some(b.parse::<usize>().map_err(|_| bad())?),
        };
        if end.is_some_and(|e| e <= start) {
            return Err(format!(
                "{}: the end must come after the start (the end is not included)",
                crate::model::escape_controls(&excerpt(text))
            ));
        }
        Ok(ByteRange { start, end })
    }

    /// The range within `len` bytes, if any of it is there.
    fn within(&self, len: usize) -> Option<Range<usize>> {
        let end = self.end.unwrap_or(usize::MAX).min(len);
        (self.start < end).then_some(self.start..end)
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            Some(end) => write!(f, "{}..{end}", self.start),
            None => write!(f, "{}..", self.start),
        }
    }
}

fn excerpt(text: &str) -> String {
    if text.chars().count() <= LABEL_CHARS {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(LABEL_CHARS).collect();
        format!("{cut}…")
    }
}

impl IgnoreRule {
    /// A rule ignoring what `pattern` matches (only its named groups, when it has some).
    pub fn regex(pattern: &str) -> Result<IgnoreRule, String> {
        Ok(IgnoreRule {
            name: None,
            endpoint: None,
            what: IgnoreWhat::Regex(Pattern::new(pattern)?),
        })
    }

    /// A rule ignoring a byte range, from `A..B` or `NAME=A..B`.
    pub fn bytes(text: &str) -> Result<IgnoreRule, String> {
        let (name, range) = match text.split_once('=') {
            Some((name, range)) if !name.trim().is_empty() => (Some(name.trim().to_owned()), range),
            Some((_, _)) => {
                return Err(format!(
                    "{}: the name before = is empty",
                    crate::model::escape_controls(&excerpt(text))
                ));
            }
            None => (None, text),
        };
        Ok(IgnoreRule {
            name,
            endpoint: None,
            what: IgnoreWhat::Bytes(ByteRange::parse(range)?),
        })
    }

    /// Whether the rule applies to the endpoint named `endpoint`.
    pub fn applies_to(&self, endpoint: &str) -> bool {
        self.endpoint.as_deref().is_none_or(|e| e == endpoint)
    }

    /// How the report names the rule: `field `date``, `regex "Date: .*"`, `bytes 4..8`.
    pub fn label(&self) -> String {
        if let Some(name) = &self.name {
            return field_label(name);
        }
        match &self.what {
            IgnoreWhat::Regex(p) => format!(
                "regex \"{}\"",
                crate::model::escape_controls(&excerpt(p.as_str()))
            ),
            IgnoreWhat::Bytes(r) => format!("bytes {r}"),
        }
    }

    /// The spans of `data` this rule ignores, each with the label of its
    /// field, in order. Empty matches are no spans (a pattern such as `x*`
    /// matches nothing everywhere); an empty named group of a match is one.
    fn spans(&self, data: &[u8], out: &mut Vec<Span>) {
        match &self.what {
            IgnoreWhat::Bytes(r) => {
                if let Some(range) = r.within(data.len()) {
                    out.push(Span {
                        range,
                        labels: vec![self.label()],
                    });
                }
            }
            IgnoreWhat::Regex(p) => {
                let groups = p.group_names();
                if groups.is_empty() {
                    for m in p.regex.find_iter(data) {
                        if !m.range().is_empty() {
                            out.push(Span {
                                range: m.range(),
                                labels: vec![self.label()],
                            });
                        }
                    }
                    return;
                }
                for caps in p.regex.captures_iter(data) {
                    if caps.get(0).is_none_or(|m| m.range().is_empty()) {
                        continue;
                    }
                    for name in &groups {
                        if let Some(m) = caps.name(name) {
                            out.push(Span {
                                range: m.range(),
                                labels: vec![field_label(name)],
                            });
                        }
                    }
                }
            }
        }
    }
}

fn field_label(name: &str) -> String {
    format!("field `{}`", crate::model::escape_controls(&excerpt(name)))
}

impl fmt::Display for IgnoreRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.what {
            IgnoreWhat::Regex(p) => write!(
                f,
                "regex \"{}\"",
                crate::model::escape_controls(&excerpt(p.as_str()))
            )?,
            IgnoreWhat::Bytes(r) => write!(f, "bytes {r}")?,
        }
        if let Some(name) = &self.name {
            write!(f, " as field `{}`", crate::model::escape_controls(name))?;
        }
        if let Some(endpoint) = &self.endpoint {
            write!(f, " for \"{}\"", crate::model::escape_controls(endpoint))?;
        }
        Ok(())
    }
}

/// An ignored span of one side, with the labels of the rules that made it
/// (several when spans overlapped and merged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub range: Range<usize>,
    pub labels: Vec<String>,
}

impl Span {
    /// Whether two spans (one per side) come from the same rule or field.
    pub fn pairs_with(&self, other: &Span) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| other.labels.contains(l))
            .map(String::as_str)
    }
}

/// The ignored spans of `data` under `rules`: sorted, overlapping ones merged.
pub fn spans(data: &[u8], rules: &[IgnoreRule]) -> Vec<Span> {
    let mut all = Vec::new();
    for rule in rules {
        rule.spans(data, &mut all);
    }
    all.sort_by_key(|s| (s.range.start, s.range.end));
    let mut merged: Vec<Span> = Vec::with_capacity(all.len());
    for span in all {
        match merged.last_mut() {
            // Overlapping, or the same empty place.
            Some(last)
                if span.range.start < last.range.end
                    || (span.range.start == last.range.start
                        && (span.range.is_empty() || last.range.is_empty())) =>
            {
                last.range.end = last.range.end.max(span.range.end);
                for l in span.labels {
                    if !last.labels.contains(&l) {
                        last.labels.push(l);
                    }
                }
            }
            _ => merged.push(span),
        }
    }
    merged
}

/// What the window offers to ignore after a difference: the differing line
/// as a regular expression, and the differing bytes as a range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    /// The expected line's key (up to its first `:` or `=`, or its text up to
    /// the difference) written literally, then the rest of the line as any
    /// text. `None` when the bytes do not read as a text line.
    pub line: Option<String>,
    /// The differing bytes on the received side's offsets: from the first
    /// difference to the last one before the two sides agree again for a while.
    pub bytes: ByteRange,
}

/// Equal bytes after a difference that end the suggested byte range.
const RESYNC: usize = 4;

/// The suggestion for a difference at `e_at` in `expected` and `r_at` in `received`.
pub fn suggest(expected: &[u8], e_at: usize, received: &[u8], r_at: usize) -> Suggestion {
    // The range: differing bytes from r_at, compared position by position.
    let mut end = r_at + 1;
    let mut same = 0;
    let mut k = 0;
    loop {
        let (e, r) = (expected.get(e_at + k), received.get(r_at + k));
        match (e, r) {
            (Some(a), Some(b)) if a == b => {
                same += 1;
                if same >= RESYNC {
                    break;
                }
            }
            (None, None) => break,
            (_, None) => break,
            _ => {
                same = 0;
                end = r_at + k + 1;
            }
        }
        k += 1;
    }
    let bytes = ByteRange {
        start: r_at,
        end: Some(end.max(r_at + 1)),
    };
    Suggestion {
        line: suggest_line(expected, e_at),
        bytes,
    }
}

fn suggest_line(expected: &[u8], at: usize) -> Option<String> {
    let at = at.min(expected.len());
    let start = expected[..at]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let end = expected[at..]
        .iter()
        .position(|b| *b == b'\n' || *b == b'\r')
        .map_or(expected.len(), |i| at + i);
    let line = std::str::from_utf8(&expected[start..end]).ok()?;
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return None;
    }
    // The difference may fall inside a character: the text before it stops
    // at that character's start.
    let mut cut = at - start;
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    let before = &line[..cut];
    // A header or a key=value: the key stays, the value goes.
    let key_end = line
        .find([':', '='])
        .filter(|i| *i < before.len().max(1))
        .map(|i| {
            let rest = &line[i + 1..];
            i + 1 + (rest.len() - rest.trim_start_matches([' ', '\t']).len())
        });
    let literal = match key_end {
        Some(k) => &line[..k],
        None => {
            // The text before the difference, cut back to a word's start so a
            // number is not split ("count 17" → "count ").
            let cut = before
                .char_indices()
                .rev()
                .find(|(_, c)| !c.is_alphanumeric())
                .map_or(0, |(i, c)| i + c.len_utf8());
            &before[..cut]
        }
    };
    if literal.trim().is_empty() {
        // Nothing to anchor on: the whole line would match any line.
        return None;
    }
    // The rest of the line, whatever it holds; the line break stays compared.
    Some(format!("{}[^\\r\\n]*", regex::escape(literal)))
}

/// The rule file shape: `(regex: "...")` or `(bytes: "4..8")`, with optional
/// `name` and `endpoint`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename = "Ignore", deny_unknown_fields)]
struct IgnoreFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
}

impl TryFrom<IgnoreFile> for IgnoreRule {
    type Error = String;

    fn try_from(f: IgnoreFile) -> Result<Self, String> {
        let what = match (f.regex, f.bytes) {
            (Some(r), None) => IgnoreWhat::Regex(Pattern::new(&r)?),
            (None, Some(b)) => IgnoreWhat::Bytes(ByteRange::parse(&b)?),
            _ => {
                return Err(
                    "an ignore rule has either regex: \"...\" or bytes: \"START..END\"".into(),
                );
            }
        };
        if f.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err("an ignore rule's name is empty".into());
        }
        Ok(IgnoreRule {
            name: f.name,
            endpoint: f.endpoint,
            what,
        })
    }
}

impl From<IgnoreRule> for IgnoreFile {
    fn from(r: IgnoreRule) -> Self {
        let (regex, bytes) = match r.what {
            IgnoreWhat::Regex(p) => (Some(p.text), None),
            IgnoreWhat::Bytes(b) => (None, Some(b.to_string())),
        };
        IgnoreFile {
            regex,
            bytes,
            name: r.name,
            endpoint: r.endpoint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_refuse() {
        assert_eq!(
            ByteRange::parse("4..8").unwrap(),
            ByteRange {
                start: 4,
                end: Some(8)
            }
        );
        assert_eq!(
            ByteRange::parse(" 10.. ").unwrap(),
            ByteRange {
                start: 10,
                end: None
            }
        );
        for bad in [
            "",
            "4",
            "8..4",
            "4..4",
            "a..b",
            "-1..3",
            "1...3",
            "99999999999999999999999..1",
        ] {
            assert!(ByteRange::parse(bad).is_err(), "{bad}");
        }
        let rule = IgnoreRule::bytes("seq=4..8").unwrap();
        assert_eq!(rule.label(), "field `seq`");
        assert!(IgnoreRule::bytes("=4..8").is_err());
        assert_eq!(IgnoreRule::bytes("4..").unwrap().label(), "bytes 4..");
    }

    #[test]
    fn a_bad_pattern_is_one_line() {
        let e = IgnoreRule::regex("Date: (").unwrap_err();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.starts_with("not a regular expression ("), "{e}");
    }

    #[test]
    fn named_groups_are_the_ignored_fields() {
        let rule = IgnoreRule::regex("Date: (?<date>[^\\r\\n]*)\\r\\n").unwrap();
        let s = spans(b"HTTP/1.0 200 OK\r\nDate: Mon\r\n\r\n", &[rule]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].range, 23..26);
        assert_eq!(s[0].labels, vec!["field `date`".to_owned()]);
        // An empty group of a real match is still a span (the date may be empty).
        let rule = IgnoreRule::regex("Date: (?<date>[^\\r\\n]*)\\r\\n").unwrap();
        let s = spans(b"Date: \r\n", &[rule]);
        assert_eq!(s[0].range, 6..6);
        // A pattern matching nothing everywhere makes no spans.
        assert!(spans(b"abc", &[IgnoreRule::regex("x*").unwrap()]).is_empty());
    }

    #[test]
    fn overlapping_spans_merge_with_both_labels() {
        let a = IgnoreRule::bytes("0..4").unwrap();
        let b = IgnoreRule::regex("[0-9]+").unwrap();
        let s = spans(b"12345678 x", &[a, b]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].range, 0..8);
        assert_eq!(s[0].labels.len(), 2);
    }

    #[test]
    fn suggestions_keep_the_key_and_drop_the_value() {
        let e = b"HTTP/1.0 200 OK\r\nDate: Fri, 27 Nov 2026 18:29:06 GMT\r\n\r\n";
        let r = b"HTTP/1.0 200 OK\r\nDate: Fri, 27 Nov 2026 18:29:07 GMT\r\n\r\n";
        let at = 17 + "Date: Fri, 27 Nov 2026 18:29:0".len();
        let s = suggest(e, at, r, at);
        assert_eq!(s.line.as_deref(), Some("Date: [^\\r\\n]*"));
        assert_eq!(
            s.bytes,
            ByteRange {
                start: at,
                end: Some(at + 1)
            }
        );
        let rule = IgnoreRule::regex(s.line.as_deref().unwrap()).unwrap();
        assert_eq!(spans(e, std::slice::from_ref(&rule))[0].range.start, 17);

        // No key: the words before the difference.
        let s = suggest(b"count 17\n", 7, b"count 18\n", 7);
        assert_eq!(s.line.as_deref(), Some("count [^\\r\\n]*"));
        // Binary: no line to offer; the range covers the differing bytes.
        let s = suggest(
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
            2,
            &[0, 1, 9, 3, 9, 5, 6, 7, 8, 9, 10, 11],
            2,
        );
        assert_eq!(s.line, None);
        assert_eq!(
            s.bytes,
            ByteRange {
                start: 2,
                end: Some(5)
            }
        );
        // A difference inside a character, after a character of several bytes.
        let s = suggest("a…b café".as_bytes(), 10, "a…b cafè".as_bytes(), 10);
        assert_eq!(s.line.as_deref(), Some("a…b [^\\r\\n]*"));
        // Nothing before the difference on its line: nothing to anchor on.
        assert_eq!(suggest(b"abc\nxyz", 4, b"abc\nXyz", 4).line, None);
    }

    #[test]
    fn rules_round_trip_through_ron() {
        let rules = vec![
            IgnoreRule::regex("Date: .*\r\n").unwrap(),
            IgnoreRule {
                endpoint: Some("device".into()),
                ..IgnoreRule::bytes("counter=4..8").unwrap()
            },
        ];
        // As session files are read: `name: "x"` for an optional field.
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let text = options.to_string(&rules).unwrap();
        let back: Vec<IgnoreRule> = options.from_str(&text).unwrap();
        assert_eq!(back, rules);
        let back: Vec<IgnoreRule> = options.from_str("[(regex: \"Date: .*\\r\\n\")]").unwrap();
        assert_eq!(back, rules[..1]);
        let e = options
            .from_str::<Vec<IgnoreRule>>("[(regex: \"(\")]")
            .unwrap_err();
        assert!(e.to_string().contains("not a regular expression"), "{e}");
        assert!(
            options
                .from_str::<Vec<IgnoreRule>>("[(name: \"x\")]")
                .is_err()
        );
        assert!(
            options
                .from_str::<Vec<IgnoreRule>>("[(regex: \"a\", bytes: \"1..2\")]")
                .is_err()
        );
    }
}
