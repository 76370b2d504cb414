//! Placeholders in payloads: parts of a payload filled in when it is sent.
//!
//! A payload written in text notation is first decoded (escapes `\r \n \xNN
//! \u{..}`), then read as a *template*: `$` starts a placeholder or a capture,
//! everything else stands for itself.
//!
//! | written | sends |
//! |---|---|
//! | `$$` | one `$` |
//! | `${counter}` | the send number, from 1: `1`, `2`, … (`start=N`, `width=N`, `hex`, `u8`, `u16be`, `u32le`, …) |
//! | `${time}` | the UTC time, ISO 8601 (`iso`, `unix`, `unix_ms`, or a strftime pattern `%H:%M:%S`) |
//! | `${random:N}` | N random bytes (1 to 4096; `hex` for hex digits) |
//! | `${len}` | the payload's length in decimal (`u8`, `u16be`, `u16le`, `u32be`, `u32le`; a range `A..B`) |
//! | `${crc16_modbus}` … | a checksum of the bytes before it (or of a range `A..B`, `A..`) |
//! | `$1`, `${1}`, `${name}` | a regex rule's captures (in a rule's reply only) |
//!
//! Checksums: `crc16_modbus` (CRC-16/MODBUS, sent low byte first as Modbus
//! does), `crc16_ccitt_false` (CRC-16/IBM-3740, alias CCITT-FALSE),
//! `crc16_xmodem` (CRC-16/XMODEM), `crc16_kermit` (CRC-16/KERMIT), `crc32`
//! (CRC-32/ISO-HDLC), `sum8` (the bytes' sum mod 256) and `xor8`; each `be`
//! (big-endian, the default but for Modbus), `le`, or `hex`/`HEX` digits.
//! Ranges count bytes of the expanded payload from 0, the end excluded.
//!
//! A `$` followed by anything else stays a `$` (`$5.00` is `$5.00`), so text
//! written before placeholders existed keeps its meaning unless it holds `${`.
//! [`Template::parse`] reads a template once; [`Template::expand`] fills it
//! for one send. Neither panics: bad templates and ranges outside the payload
//! are errors that name the byte where the placeholder starts.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};

use super::payload::{PayloadError, Problem};

/// The most random bytes one placeholder gives.
pub const MAX_RANDOM: usize = 4096;
/// The longest payload an expansion may make (captures repeated many times
/// could otherwise grow a reply without end).
pub const MAX_EXPANDED: usize = 16 << 20;
/// The most placeholders and captures one template may hold.
pub const MAX_PLACEHOLDERS: usize = 1024;

/// The placeholder names, as the error for an unknown one lists them.
const NAMES: &str = "counter, time, random, len, crc16_modbus, crc16_ccitt_false, crc16_xmodem, \
                     crc16_kermit, crc32, sum8, xor8";

/// Where a template is used: only a regex rule's reply has captures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// A payload sent as it is (composer, library, `--send`).
    #[default]
    Plain,
    /// A regex rule's reply: `$1`, `${1}` and `${name}` take the captures.
    /// `names` are the regex's group names: a group named like a
    /// placeholder (`(?P<counter>..)`) is still the capture, as before.
    Captures { names: Vec<String> },
}

/// What a template cannot be, or cannot expand to, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at byte {at}: {problem}")]
pub struct TemplateError {
    /// The byte of the template (0-based, after escapes are decoded) where
    /// the placeholder in question starts.
    pub at: usize,
    pub problem: String,
}

impl TemplateError {
    /// This error placed in the text it came from: positions in characters
    /// of what the person typed, as every payload error gives them.
    pub fn in_text(self, text: &str) -> PayloadError {
        PayloadError {
            position: super::payload::text_position(text, self.at),
            problem: Problem::Placeholder(self.problem),
        }
    }
}

/// What one send fills in.
pub struct Context<'a> {
    /// How many sends of this payload came before this one (0 for the first).
    pub send: u64,
    pub now: DateTime<Utc>,
    /// Where the random bytes come from (one seed, the same bytes).
    pub seed: u64,
    /// A regex match's groups, for a rule's reply.
    pub captures: Option<&'a dyn CaptureSource>,
}

impl Context<'_> {
    /// The context of send number `send` (from 0), now, with a fresh seed.
    pub fn now(send: u64) -> Context<'static> {
        Context {
            send,
            now: Utc::now(),
            seed: fresh_seed(send),
            captures: None,
        }
    }
}

/// A seed nobody chose: the process's random hash keys mixed with the send
/// number. Random bytes for tests of a peer, not for secrets.
pub fn fresh_seed(send: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(send);
    h.finish()
}

/// A regex match's groups.
pub trait CaptureSource {
    fn group(&self, n: usize) -> Option<&[u8]>;
    fn named(&self, name: &str) -> Option<&[u8]>;
}

impl CaptureSource for regex::bytes::Captures<'_> {
    fn group(&self, n: usize) -> Option<&[u8]> {
        self.get(n).map(|m| m.as_bytes())
    }
    fn named(&self, name: &str) -> Option<&[u8]> {
        self.name(name).map(|m| m.as_bytes())
    }
}

/// How a number is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NumberFormat {
    /// Decimal digits, zero-padded to `width`.
    Decimal { width: usize },
    /// Hex digits, zero-padded to `width`.
    Hex { width: usize, upper: bool },
    /// `bytes` bytes, big-endian unless `little`.
    Binary { bytes: usize, little: bool },
}

impl NumberFormat {
    /// Reads a binary format word (`u8`, `u16be`, …).
    fn binary(word: &str) -> Option<NumberFormat> {
        let (bytes, little) = match word {
            "u8" => (1, false),
            "u16be" => (2, false),
            "u16le" => (2, true),
            "u32be" => (4, false),
            "u32le" => (4, true),
            "u64be" => (8, false),
            "u64le" => (8, true),
            _ => return None,
        };
        Some(NumberFormat::Binary { bytes, little })
    }

    /// The width of this number's output when it is fixed.
    fn fixed_width(self) -> Option<usize> {
        match self {
            NumberFormat::Binary { bytes, .. } => Some(bytes),
            _ => None,
        }
    }

    /// Writes `value`; `wrap` keeps the low bytes of a binary number that
    /// does not fit (a counter wraps), else it is an error (a length).
    fn write(self, value: u64, wrap: bool, out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            NumberFormat::Decimal { width } => {
                let _ = write!(Bytes(out), "{value:0width$}");
            }
            NumberFormat::Hex {
                width,
                upper: false,
            } => {
                let _ = write!(Bytes(out), "{value:0width$x}");
            }
            NumberFormat::Hex { width, upper: true } => {
                let _ = write!(Bytes(out), "{value:0width$X}");
            }
            NumberFormat::Binary { bytes, little } => {
                if !wrap && bytes < 8 && value >> (bytes * 8) != 0 {
                    return Err(format!(
                        "{value} does not fit in {} byte{}",
                        bytes,
                        if bytes == 1 { "" } else { "s" }
                    ));
                }
                let all = value.to_be_bytes();
                let mut field = all[8 - bytes..].to_vec();
                if little {
                    field.reverse();
                }
                out.extend_from_slice(&field);
            }
        }
        Ok(())
    }
}

/// `fmt::Write` into a byte vector.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TimeFormat {
    Iso,
    Unix,
    UnixMs,
    /// A strftime pattern, checked when parsed.
    Pattern(String),
}

/// A stated range of the expanded payload: `start..end`, `start..` (to the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    end: Option<usize>,
}

/// The checksums a placeholder can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// CRC-16/MODBUS: poly 0x8005 reflected, init 0xFFFF; check 0x4B37.
    Crc16Modbus,
    /// CRC-16/IBM-3740, alias CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF; check 0x29B1.
    Crc16CcittFalse,
    /// CRC-16/XMODEM: poly 0x1021, init 0; check 0x31C3.
    Crc16Xmodem,
    /// CRC-16/KERMIT: poly 0x1021 reflected, init 0; check 0x2189.
    Crc16Kermit,
    /// CRC-32/ISO-HDLC (zip, Ethernet): check 0xCBF43926.
    Crc32,
    /// The sum of the bytes, mod 256.
    Sum8,
    /// The bytes XORed together (NMEA's checksum).
    Xor8,
}

const MODBUS: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_MODBUS);
const CCITT_FALSE: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);
const XMODEM: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);
const KERMIT: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_KERMIT);
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

impl Checksum {
    fn by_name(name: &str) -> Option<Checksum> {
        Some(match name {
            "crc16_modbus" => Checksum::Crc16Modbus,
            "crc16_ccitt_false" => Checksum::Crc16CcittFalse,
            "crc16_xmodem" => Checksum::Crc16Xmodem,
            "crc16_kermit" => Checksum::Crc16Kermit,
            "crc32" => Checksum::Crc32,
            "sum8" => Checksum::Sum8,
            "xor8" => Checksum::Xor8,
            _ => return None,
        })
    }

    /// The width of the value in bytes.
    pub fn width(self) -> usize {
        match self {
            Checksum::Sum8 | Checksum::Xor8 => 1,
            Checksum::Crc32 => 4,
            _ => 2,
        }
    }

    /// The checksum of `bytes`.
    pub fn compute(self, bytes: &[u8]) -> u32 {
        match self {
            Checksum::Crc16Modbus => MODBUS.checksum(bytes).into(),
            Checksum::Crc16CcittFalse => CCITT_FALSE.checksum(bytes).into(),
            Checksum::Crc16Xmodem => XMODEM.checksum(bytes).into(),
            Checksum::Crc16Kermit => KERMIT.checksum(bytes).into(),
            Checksum::Crc32 => CRC32.checksum(bytes),
            Checksum::Sum8 => bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)).into(),
            Checksum::Xor8 => bytes.iter().fold(0u8, |a, b| a ^ b).into(),
        }
    }
}

/// How a checksum is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CheckOutput {
    Big,
    Little,
    Hex { upper: bool },
}

/// One part of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Group(usize),
    Named(String),
    Counter {
        start: u64,
        format: NumberFormat,
    },
    Time(TimeFormat),
    Random {
        count: usize,
        hex: bool,
    },
    Len {
        format: NumberFormat,
        span: Option<Span>,
    },
    Check {
        sum: Checksum,
        span: Option<Span>,
        output: CheckOutput,
    },
}

/// A part of a template made of literals and counters only ([`Template::counter_parts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CounterPart {
    Literal(Vec<u8>),
    /// The send number (from 0) plus `start`.
    Counter {
        start: u64,
        format: CounterFormat,
    },
}

/// How a counter is written: decimal or hex digits zero-padded to `width`,
/// or `bytes` binary bytes (the counter wraps), big-endian unless `little`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterFormat {
    Decimal { width: usize },
    Hex { width: usize, upper: bool },
    Binary { bytes: usize, little: bool },
}

/// A parsed template: literal bytes, placeholders and captures in order,
/// each with the byte of the template where it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<(usize, Piece)>,
}

impl Template {
    /// A template of exactly these bytes (no placeholders: a `$` is a `$`).
    pub fn literal(bytes: &[u8]) -> Template {
        Template {
            pieces: vec![(0, Piece::Literal(bytes.to_vec()))],
        }
    }

    /// True when some part is filled in at send time.
    pub fn has_placeholders(&self) -> bool {
        self.pieces
            .iter()
            .any(|(_, p)| !matches!(p, Piece::Literal(_)))
    }

    /// True when two sends may differ: a counter, the time or random bytes
    /// (or a length or checksum over them).
    pub fn varies(&self) -> bool {
        self.pieces.iter().any(|(_, p)| {
            matches!(
                p,
                Piece::Counter { .. } | Piece::Time(_) | Piece::Random { .. }
            )
        })
    }

    /// What changes from send to send, in words: `["counter", "time"]`.
    pub fn varying_parts(&self) -> Vec<&'static str> {
        let mut parts = Vec::new();
        for (_, p) in &self.pieces {
            let part = match p {
                Piece::Counter { .. } => "counter",
                Piece::Time(_) => "time",
                Piece::Random { .. } => "random bytes",
                _ => continue,
            };
            if !parts.contains(&part) {
                parts.push(part);
            }
        }
        parts
    }

    /// The template as literal bytes and counters, for a program that fills
    /// in counters itself (the Python export); `None` when it holds any
    /// other placeholder or capture.
    pub fn counter_parts(&self) -> Option<Vec<CounterPart>> {
        self.pieces
            .iter()
            .map(|(_, p)| match p {
                Piece::Literal(b) => Some(CounterPart::Literal(b.clone())),
                Piece::Counter { start, format } => Some(CounterPart::Counter {
                    start: *start,
                    format: match *format {
                        NumberFormat::Decimal { width } => CounterFormat::Decimal { width },
                        NumberFormat::Hex { width, upper } => CounterFormat::Hex { width, upper },
                        NumberFormat::Binary { bytes, little } => {
                            CounterFormat::Binary { bytes, little }
                        }
                    },
                }),
                _ => None,
            })
            .collect()
    }

    /// The kinds of placeholder other than counters, in words, each once:
    /// `["time", "checksum"]`.
    pub fn other_placeholders(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        for (_, p) in &self.pieces {
            let kind = match p {
                Piece::Time(_) => "time",
                Piece::Random { .. } => "random bytes",
                Piece::Len { .. } => "length",
                Piece::Check { .. } => "checksum",
                Piece::Group(_) | Piece::Named(_) => "capture",
                Piece::Literal(_) | Piece::Counter { .. } => continue,
            };
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        kinds
    }

    /// The bytes when the template has no placeholders.
    pub fn as_literal(&self) -> Option<Vec<u8>> {
        if self.has_placeholders() {
            return None;
        }
        Some(
            self.pieces
                .iter()
                .flat_map(|(_, p)| match p {
                    Piece::Literal(b) => b.clone(),
                    _ => Vec::new(),
                })
                .collect(),
        )
    }

    /// Reads a template (the bytes after escapes are decoded).
    pub fn parse(bytes: &[u8], scope: &Scope) -> Result<Template, TemplateError> {
        let mut pieces: Vec<(usize, Piece)> = Vec::new();
        let mut lit = Vec::new();
        let mut lit_at = 0;
        let mut i = 0;
        let captures = matches!(scope, Scope::Captures { .. });
        while i < bytes.len() {
            if bytes[i] != b'$' || i + 1 >= bytes.len() {
                if lit.is_empty() {
                    lit_at = i;
                }
                lit.push(bytes[i]);
                i += 1;
                continue;
            }
            let next = bytes[i + 1];
            let (piece, end) = if next == b'$' {
                if lit.is_empty() {
                    lit_at = i;
                }
                lit.push(b'$');
                i += 2;
                continue;
            } else if next.is_ascii_digit() && captures {
                let end = bytes[i + 1..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .map_or(bytes.len(), |p| i + 1 + p);
                (Piece::Group(number(&bytes[i + 1..end])), end)
            } else if next == b'{' {
                let Some(close) = bytes[i + 2..].iter().position(|&b| b == b'}') else {
                    return Err(TemplateError {
                        at: i,
                        problem: "\"${\" is not closed with \"}\" (write $$ for a $)".into(),
                    });
                };
                let inside = &bytes[i + 2..i + 2 + close];
                let piece = read_placeholder(inside, scope)
                    .map_err(|problem| TemplateError { at: i, problem })?;
                (piece, i + 3 + close)
            } else {
                if lit.is_empty() {
                    lit_at = i;
                }
                lit.push(b'$');
                i += 1;
                continue;
            };
            if pieces.len() >= MAX_PLACEHOLDERS {
                return Err(TemplateError {
                    at: i,
                    problem: format!("more than {MAX_PLACEHOLDERS} placeholders"),
                });
            }
            if !lit.is_empty() {
                pieces.push((lit_at, Piece::Literal(std::mem::take(&mut lit))));
            }
            pieces.push((i, piece));
            i = end;
        }
        if !lit.is_empty() {
            pieces.push((lit_at, Piece::Literal(lit)));
        }
        Ok(Template { pieces })
    }

    /// The bytes of one send.
    pub fn expand(&self, ctx: &Context) -> Result<Vec<u8>, TemplateError> {
        // The pieces' bytes, with lengths and checksums as placeholders of
        // their width (a decimal length's width is found below).
        let mut parts: Vec<Vec<u8>> = Vec::with_capacity(self.pieces.len());
        let mut total = 0usize;
        let mut rng = SplitMix(ctx.seed);
        for (at, piece) in &self.pieces {
            let mut out = Vec::new();
            match piece {
                Piece::Literal(b) => out.extend_from_slice(b),
                Piece::Group(n) => {
                    if let Some(b) = ctx.captures.and_then(|c| c.group(*n)) {
                        out.extend_from_slice(b)
                    }
                }
                Piece::Named(name) => {
                    if let Some(b) = ctx.captures.and_then(|c| c.named(name)) {
                        out.extend_from_slice(b)
                    }
                }
                Piece::Counter { start, format } => {
                    let _ = format.write(start.wrapping_add(ctx.send), true, &mut out);
                }
                Piece::Time(format) => write_time(ctx.now, format, &mut out),
                Piece::Random { count, hex } => {
                    for _ in 0..*count {
                        let b = rng.next() as u8;
                        if *hex {
                            let _ = write!(Bytes(&mut out), "{b:02x}");
                        } else {
                            out.push(b);
                        }
                    }
                }
                Piece::Len { format, .. } => {
                    out.resize(format.fixed_width().unwrap_or(1), 0);
                }
                Piece::Check { sum, output, .. } => {
                    let width = match output {
                        CheckOutput::Hex { .. } => sum.width() * 2,
                        _ => sum.width(),
                    };
                    out.resize(width, 0);
                }
            }
            total = total.saturating_add(out.len());
            if total > MAX_EXPANDED {
                return Err(TemplateError {
                    at: *at,
                    problem: format!(
                        "the payload would be longer than {} MiB",
                        MAX_EXPANDED >> 20
                    ),
                });
            }
            parts.push(out);
        }
        // A decimal length's digits count in the length they state: widen
        // them until every one holds its own value (at most 20 digits each,
        // so this ends).
        let decimal_lens: Vec<usize> = (0..self.pieces.len())
            .filter(|&k| {
                matches!(&self.pieces[k].1, Piece::Len { format, .. } if format.fixed_width().is_none())
            })
            .collect();
        for _ in 0..=(decimal_lens.len() * 20) {
            let starts = starts_of(&parts);
            let total = starts.last().copied().unwrap_or(0);
            let mut changed = false;
            for &k in &decimal_lens {
                let (at, Piece::Len { format, span }) = &self.pieces[k] else {
                    continue;
                };
                let (from, to) = resolve(*span, (0, total), total, *at)?;
                let mut digits = Vec::new();
                let _ = format.write((to - from) as u64, false, &mut digits);
                if digits.len() != parts[k].len() {
                    parts[k] = digits;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let starts = starts_of(&parts);
        let total = starts.last().copied().unwrap_or(0);
        let mut out: Vec<u8> = parts.concat();
        // Lengths, then checksums (a checksum may cover a length).
        for (k, (at, piece)) in self.pieces.iter().enumerate() {
            if let Piece::Len { format, span } = piece {
                let (from, to) = resolve(*span, (0, total), total, *at)?;
                let mut field = Vec::new();
                format
                    .write((to - from) as u64, false, &mut field)
                    .map_err(|e| TemplateError {
                        at: *at,
                        problem: format!("the length {e}"),
                    })?;
                // The widths settled above; a field of another width would be a bug, said, not a panic.
                match out.get_mut(starts[k]..starts[k + 1]) {
                    Some(slot) if slot.len() == field.len() => slot.copy_from_slice(&field),
                    _ => {
                        return Err(TemplateError {
                            at: *at,
                            problem: "the length's digits did not settle".into(),
                        });
                    }
                }
            }
        }
        let mut pending: Vec<usize> = (0..self.pieces.len())
            .filter(|&k| matches!(self.pieces[k].1, Piece::Check { .. }))
            .collect();
        while !pending.is_empty() {
            let mut done = Vec::new();
            for &k in &pending {
                let (at, Piece::Check { sum, span, output }) = &self.pieces[k] else {
                    continue;
                };
                let field = (starts[k], starts[k + 1]);
                let (from, to) = resolve(*span, (0, field.0), total, *at)?;
                if from < field.1 && field.0 < to {
                    return Err(TemplateError {
                        at: *at,
                        problem: format!(
                            "the range {from}..{to} covers the checksum itself (bytes {}..{})",
                            field.0, field.1
                        ),
                    });
                }
                // Wait for checksums inside the range to be written first.
                let waits = pending.iter().any(|&o| {
                    o != k && !done.contains(&o) && from < starts[o + 1] && starts[o] < to
                });
                if waits {
                    continue;
                }
                let value = sum.compute(&out[from..to]);
                let width = sum.width();
                let be = &value.to_be_bytes()[4 - width..];
                let written: Vec<u8> = match output {
                    CheckOutput::Big => be.to_vec(),
                    CheckOutput::Little => be.iter().rev().copied().collect(),
                    CheckOutput::Hex { upper } => be
                        .iter()
                        .flat_map(|b| {
                            let s = if *upper {
                                format!("{b:02X}")
                            } else {
                                format!("{b:02x}")
                            };
                            s.into_bytes()
                        })
                        .collect(),
                };
                out[field.0..field.1].copy_from_slice(&written);
                done.push(k);
            }
            if done.is_empty() {
                let at = self.pieces[pending[0]].0;
                return Err(TemplateError {
                    at,
                    problem: "these checksums cover each other: none can be computed first".into(),
                });
            }
            pending.retain(|k| !done.contains(k));
        }
        Ok(out)
    }
}

/// Where each part starts, and the total length last.
fn starts_of(parts: &[Vec<u8>]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(parts.len() + 1);
    let mut at = 0;
    for p in parts {
        starts.push(at);
        at += p.len();
    }
    starts.push(at);
    starts
}

/// A range in the payload of `total` bytes (`default` when none is stated).
fn resolve(
    span: Option<Span>,
    default: (usize, usize),
    total: usize,
    at: usize,
) -> Result<(usize, usize), TemplateError> {
    let (from, to) = match span {
        None => default,
        Some(Span { start, end }) => (start, end.unwrap_or(total)),
    };
    if from > to {
        return Err(TemplateError {
            at,
            problem: format!("the range {from}..{to} ends before it starts"),
        });
    }
    if to > total {
        return Err(TemplateError {
            at,
            problem: format!(
                "the range {from}..{to} goes past the payload's end ({total} byte{})",
                if total == 1 { "" } else { "s" }
            ),
        });
    }
    Ok((from, to))
}

fn number(digits: &[u8]) -> usize {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX)
}

fn write_time(now: DateTime<Utc>, format: &TimeFormat, out: &mut Vec<u8>) {
    let _ = match format {
        TimeFormat::Iso => write!(
            Bytes(out),
            "{}",
            now.to_rfc3339_opts(SecondsFormat::Millis, true)
        ),
        TimeFormat::Unix => write!(Bytes(out), "{}", now.timestamp()),
        TimeFormat::UnixMs => write!(Bytes(out), "{}", now.timestamp_millis()),
        TimeFormat::Pattern(p) => write!(Bytes(out), "{}", now.format(p)),
    };
}

/// Reads what stands between `${` and `}`.
fn read_placeholder(inside: &[u8], scope: &Scope) -> Result<Piece, String> {
    let Ok(inside) = std::str::from_utf8(inside) else {
        return Err("a placeholder holds text, not raw bytes".into());
    };
    let (name, args) = match inside.split_once(':') {
        Some((n, a)) => (n.trim(), Some(a)),
        None => (inside.trim(), None),
    };
    let shown = super::display::escape_controls(name);
    if name.is_empty() {
        return Err("\"${}\" names no placeholder (write $$ for a $)".into());
    }
    if let Scope::Captures { names } = scope {
        if name.bytes().all(|b| b.is_ascii_digit()) && args.is_none() {
            return Ok(Piece::Group(number(name.as_bytes())));
        }
        if args.is_none() && names.iter().any(|n| n == name) {
            return Ok(Piece::Named(name.to_owned()));
        }
    } else if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "\"${{{shown}}}\" is a capture, and only a regex rule's reply has captures (write $$ for a $)"
        ));
    }
    let words: Vec<&str> = args
        .map(|a| a.split(',').map(str::trim).collect())
        .unwrap_or_default();
    match name {
        "counter" => {
            let mut start = 1u64;
            let mut width = 0usize;
            let mut format = None;
            for w in &words {
                if let Some(v) = w.strip_prefix("start=") {
                    start = v
                        .parse()
                        .map_err(|_| format!("counter: start={v} is not a whole number"))?;
                } else if let Some(v) = w.strip_prefix("width=") {
                    width = v
                        .parse()
                        .ok()
                        .filter(|w| (1..=20).contains(w))
                        .ok_or_else(|| format!("counter: width={v}: give 1 to 20 digits"))?;
                } else if let Some(f) = number_format(w) {
                    format = Some(f);
                } else {
                    return Err(format!(
                        "counter: \"{}\" is not start=N, width=N, dec, hex, HEX, u8, u16be, u16le, u32be, u32le, u64be or u64le",
                        super::display::escape_controls(w)
                    ));
                }
            }
            let format = match format.unwrap_or(NumberFormat::Decimal { width: 0 }) {
                NumberFormat::Decimal { .. } => NumberFormat::Decimal { width },
                NumberFormat::Hex { upper, .. } => NumberFormat::Hex { width, upper },
                binary if width > 0 => {
                    let _ = binary;
                    return Err("counter: width= is for decimal and hex, not binary".into());
                }
                binary => binary,
            };
            Ok(Piece::Counter { start, format })
        }
        "time" => {
            let format = match args.map(str::trim) {
                None | Some("iso") => TimeFormat::Iso,
                Some("unix") => TimeFormat::Unix,
                Some("unix_ms") => TimeFormat::UnixMs,
                Some(p) if p.contains('%') => {
                    let bad = chrono::format::StrftimeItems::new(p)
                        .any(|item| matches!(item, chrono::format::Item::Error));
                    if bad {
                        return Err(format!(
                            "time: \"{}\" is not a strftime pattern chrono knows (like %Y-%m-%d %H:%M:%S)",
                            super::display::escape_controls(p)
                        ));
                    }
                    TimeFormat::Pattern(p.to_owned())
                }
                Some(other) => {
                    return Err(format!(
                        "time: \"{}\" is not iso, unix, unix_ms or a strftime pattern with %",
                        super::display::escape_controls(other)
                    ));
                }
            };
            Ok(Piece::Time(format))
        }
        "random" => {
            let mut count = None;
            let mut hex = false;
            for w in &words {
                if *w == "hex" {
                    hex = true;
                } else {
                    count = Some(
                        w.parse::<usize>()
                            .ok()
                            .filter(|n| (1..=MAX_RANDOM).contains(n))
                            .ok_or_else(|| {
                                format!(
                                    "random: \"{}\" is not a count of bytes from 1 to {MAX_RANDOM}",
                                    super::display::escape_controls(w)
                                )
                            })?,
                    );
                }
            }
            let count =
                count.ok_or("random needs a count of bytes: ${random:8} (or ${random:8,hex})")?;
            Ok(Piece::Random { count, hex })
        }
        "len" => {
            let mut format = NumberFormat::Decimal { width: 0 };
            let mut span = None;
            for w in &words {
                if w.contains("..") {
                    span = Some(read_span(w)?);
                } else if let Some(f) = NumberFormat::binary(w) {
                    format = f;
                } else if *w != "dec" {
                    return Err(format!(
                        "len: \"{}\" is not dec, u8, u16be, u16le, u32be, u32le, u64be, u64le or a range A..B",
                        super::display::escape_controls(w)
                    ));
                }
            }
            Ok(Piece::Len { format, span })
        }
        other => {
            let Some(sum) = Checksum::by_name(other) else {
                // In a regex rule's reply an unknown name is a capture that is
                // never there, as it was before placeholders existed: it sends nothing.
                if matches!(scope, Scope::Captures { .. })
                    && args.is_none()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Ok(Piece::Named(name.to_owned()));
                }
                return Err(format!(
                    "\"{shown}\" is not a placeholder (they are: {NAMES}; write $$ for a $)"
                ));
            };
            let mut span = None;
            let mut output = if sum == Checksum::Crc16Modbus {
                CheckOutput::Little
            } else {
                CheckOutput::Big
            };
            for w in &words {
                match *w {
                    "be" => output = CheckOutput::Big,
                    "le" => output = CheckOutput::Little,
                    "hex" => output = CheckOutput::Hex { upper: false },
                    "HEX" => output = CheckOutput::Hex { upper: true },
                    w if w.contains("..") => span = Some(read_span(w)?),
                    w => {
                        return Err(format!(
                            "{other}: \"{}\" is not a range A..B, be, le, hex or HEX",
                            super::display::escape_controls(w)
                        ));
                    }
                }
            }
            Ok(Piece::Check { sum, span, output })
        }
    }
}

fn number_format(word: &str) -> Option<NumberFormat> {
    match word {
        "dec" => Some(NumberFormat::Decimal { width: 0 }),
        "hex" => Some(NumberFormat::Hex {
            width: 0,
            upper: false,
        }),
        "HEX" => Some(NumberFormat::Hex {
            width: 0,
            upper: true,
        }),
        w => NumberFormat::binary(w),
    }
}

/// Reads `A..B` or `A..`.
fn read_span(word: &str) -> Result<Span, String> {
    let (a, b) = word.split_once("..").unwrap_or((word, ""));
    let bad = || {
        format!(
            "\"{}\" is not a range: write START..END or START.. in bytes from 0 (the end excluded)",
            super::display::escape_controls(word)
        )
    };
    let start = a.trim().parse::<usize>().map_err(|_| bad())?;
    let end = match b.trim() {
        "" => None,
        b => Some(b.parse::<usize>().map_err(|_| bad())?),
    };
    if end.is_some_and(|e| e < start) {
        return Err(format!("the range {word} ends before it starts"));
    }
    Ok(Span { start, end })
}

/// splitmix64: a small, well-known generator; the same seed, the same bytes.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Parses text notation (escapes) and then the template in it, with errors
/// at the character the person typed.
pub fn parse_text(text: &str, scope: &Scope) -> Result<Template, PayloadError> {
    let bytes = super::payload::parse_text(text)?;
    Template::parse(&bytes, scope).map_err(|e| e.in_text(text))
}

/// Writes exact bytes as a template that expands to them: every `$` doubled.
pub fn escape_literal(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        out.push(b);
        if b == b'$' {
            out.push(b'$');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(send: u64) -> Context<'static> {
        Context {
            send,
            now: DateTime::from_timestamp_millis(1_764_288_000_123).unwrap(),
            seed: 7,
            captures: None,
        }
    }

    fn expand(text: &str) -> Result<Vec<u8>, String> {
        expand_at(text, 0)
    }

    fn expand_at(text: &str, send: u64) -> Result<Vec<u8>, String> {
        parse_text(text, &Scope::Plain)
            .map_err(|e| e.to_string())?
            .expand(&at(send))
            .map_err(|e| e.in_text(text).to_string())
    }

    #[test]
    fn checksums_give_their_published_check_values() {
        let check = b"123456789";
        assert_eq!(Checksum::Crc16Modbus.compute(check), 0x4B37);
        assert_eq!(Checksum::Crc16CcittFalse.compute(check), 0x29B1);
        assert_eq!(Checksum::Crc16Xmodem.compute(check), 0x31C3);
        assert_eq!(Checksum::Crc16Kermit.compute(check), 0x2189);
        assert_eq!(Checksum::Crc32.compute(check), 0xCBF4_3926);
        // 0x31 + … + 0x39 = 477 = 0x1DD; 0x31 ^ … ^ 0x39 = 0x31.
        assert_eq!(Checksum::Sum8.compute(check), 0xDD);
        assert_eq!(Checksum::Xor8.compute(check), 0x31);
        assert_eq!(Checksum::Sum8.compute(&[0xff, 0x02]), 0x01);
        assert_eq!(Checksum::Xor8.compute(&[]), 0);
    }

    #[test]
    fn checksum_placeholders_write_their_byte_order() {
        assert_eq!(
            expand("123456789${crc16_modbus}").unwrap(),
            b"123456789\x37\x4b",
            "Modbus sends the low byte first"
        );
        assert_eq!(
            expand("123456789${crc16_modbus:be}").unwrap(),
            b"123456789\x4b\x37"
        );
        assert_eq!(
            expand("123456789${crc32}").unwrap(),
            b"123456789\xcb\xf4\x39\x26"
        );
        assert_eq!(
            expand("123456789${crc32:le}").unwrap(),
            b"123456789\x26\x39\xf4\xcb"
        );
        assert_eq!(
            expand("123456789${crc16_ccitt_false}").unwrap(),
            b"123456789\x29\xb1"
        );
        assert_eq!(
            expand("123456789${crc16_xmodem:hex}").unwrap(),
            b"12345678931c3"
        );
        assert_eq!(expand("123456789${sum8}").unwrap(), b"123456789\xdd");
        // NMEA: the xor of what lies between $ and *, as two hex digits.
        assert_eq!(
            expand("$$GPGLL,4916.45,N*${xor8:1..16,HEX}").unwrap(),
            b"$GPGLL,4916.45,N*3B"
        );
        // A range after the checksum: a header's checksum over its body.
        assert_eq!(expand("${sum8:1..}\\x01\\x02").unwrap(), b"\x03\x01\x02");
    }

    #[test]
    fn the_modbus_request_of_the_specification() {
        // Read holding registers: slave 1, address 0, count 10; the CRC is
        // 0xCDC5, sent low byte first.
        let frame = expand("\\x01\\x03\\x00\\x00\\x00\\x0a${crc16_modbus}").unwrap();
        assert_eq!(frame, [0x01, 0x03, 0x00, 0x00, 0x00, 0x0a, 0xc5, 0xcd]);
    }

    #[test]
    fn checksums_over_checksums_are_computed_in_order() {
        // The second covers the first, wherever they stand.
        let a = expand("ab${sum8:0..2}${xor8:0..3}").unwrap();
        assert_eq!(a, [b'a', b'b', 0xc3, b'a' ^ b'b' ^ 0xc3]);
        let b = expand("${xor8:1..4}ab${sum8:1..3}").unwrap();
        assert_eq!(b, [b'a' ^ b'b' ^ 0xc3, b'a', b'b', 0xc3]);
        let e = expand("${sum8:1..2}${xor8:0..1}").unwrap_err();
        assert!(e.contains("cover each other"), "{e}");
    }

    #[test]
    fn ranges_outside_the_payload_are_errors() {
        let e = expand("abc${crc32:0..10}").unwrap_err();
        assert_eq!(
            e,
            "at position 4: the range 0..10 goes past the payload's end (7 bytes)"
        );
        let e = expand("abc${sum8:2..}").unwrap_err();
        assert!(e.contains("covers the checksum itself"), "{e}");
        let e = expand("ab${len:u8,5..9}").unwrap_err();
        assert!(e.contains("goes past the payload's end (3 bytes)"), "{e}");
        let e = expand("${sum8:3..1}").unwrap_err();
        assert!(e.contains("ends before it starts"), "{e}");
        let e = expand(&format!("{}${{len:u8}}", "x".repeat(300))).unwrap_err();
        assert!(e.contains("the length 301 does not fit in 1 byte"), "{e}");
    }

    #[test]
    fn parse_errors_name_the_position_and_the_problem() {
        let err = |t: &str| parse_text(t, &Scope::Plain).unwrap_err();
        let e = err("ab${counter");
        assert_eq!(e.position, 3);
        assert_eq!(
            e.to_string(),
            "at position 3: \"${\" is not closed with \"}\" (write $$ for a $)"
        );
        // Positions count typed characters: an escape is four of them.
        let e = err("\\x01é${countr}");
        assert_eq!(e.position, 6);
        assert!(
            e.to_string().contains("\"countr\" is not a placeholder"),
            "{e}"
        );
        let e = err("${random:0}");
        assert!(e.to_string().contains("from 1 to 4096"), "{e}");
        assert!(err("${random:5000}").to_string().contains("4096"));
        assert!(err("${random}").to_string().contains("needs a count"));
        assert!(err("${time:%Q}").to_string().contains("strftime"));
        assert!(err("${time:week}").to_string().contains("iso, unix"));
        assert!(err("${counter:width=0}").to_string().contains("1 to 20"));
        assert!(
            err("${counter:u16be,width=4}")
                .to_string()
                .contains("binary")
        );
        assert!(err("${crc32:1..x}").to_string().contains("not a range"));
        assert!(err("${crc32:big}").to_string().contains("be, le"));
        assert!(err("${len:u24}").to_string().contains("u16be"));
        assert!(
            err("${1}")
                .to_string()
                .contains("only a regex rule's reply")
        );
        assert!(err("${}").to_string().contains("names no placeholder"));
        // A placeholder is text; the message names a control character by number.
        let e = err("${\\x1b[31m}").to_string();
        assert!(!e.contains('\x1b'), "{e:?}");
    }

    #[test]
    fn counters_count_sends() {
        assert_eq!(expand_at("n=${counter}", 0).unwrap(), b"n=1");
        assert_eq!(expand_at("n=${counter}", 9).unwrap(), b"n=10");
        assert_eq!(
            expand_at("${counter:start=100,width=5}", 2).unwrap(),
            b"00102"
        );
        assert_eq!(expand_at("${counter:hex,width=4}", 254).unwrap(), b"00ff");
        assert_eq!(expand_at("${counter:HEX}", 254).unwrap(), b"FF");
        assert_eq!(expand_at("${counter:u16be}", 0).unwrap(), [0, 1]);
        assert_eq!(expand_at("${counter:u16le,start=0}", 258).unwrap(), [2, 1]);
        // Binary counters wrap.
        assert_eq!(expand_at("${counter:u8}", 255).unwrap(), [0]);
        assert_eq!(
            expand_at("${counter:start=18446744073709551615}", 1).unwrap(),
            b"0"
        );
    }

    #[test]
    fn time_formats() {
        assert_eq!(expand("${time}").unwrap(), b"2025-11-28T00:00:00.123Z");
        assert_eq!(expand("${time:iso}").unwrap(), b"2025-11-28T00:00:00.123Z");
        assert_eq!(expand("${time:unix}").unwrap(), b"1764288000");
        assert_eq!(expand("${time:unix_ms}").unwrap(), b"1764288000123");
        assert_eq!(
            expand("${time:%d.%m.%Y %H:%M}").unwrap(),
            b"28.11.2025 00:00"
        );
    }

    #[test]
    fn random_bytes_follow_the_seed() {
        let t = parse_text("${random:16}", &Scope::Plain).unwrap();
        let a = t.expand(&at(0)).unwrap();
        assert_eq!(a.len(), 16);
        assert_eq!(a, t.expand(&at(0)).unwrap(), "one seed, the same bytes");
        let mut other = at(0);
        other.seed = 8;
        assert_ne!(a, t.expand(&other).unwrap());
        let hex = expand("${random:3,hex}").unwrap();
        assert_eq!(hex.len(), 6);
        assert!(hex.iter().all(u8::is_ascii_hexdigit));
        assert!(t.varies());
        let t = parse_text(
            "${time}${counter}${random:1}${counter}${crc32}",
            &Scope::Plain,
        )
        .unwrap();
        assert_eq!(t.varying_parts(), ["time", "counter", "random bytes"]);
    }

    #[test]
    fn lengths_as_text_and_binary() {
        assert_eq!(expand("abc${len:u8}").unwrap(), b"abc\x04");
        assert_eq!(expand("${len:u16be,2..}abc").unwrap(), b"\x00\x03abc");
        assert_eq!(expand("${len:u32le}").unwrap(), [4, 0, 0, 0]);
        // A decimal length counts its own digits.
        assert_eq!(expand("12345678${len}").unwrap(), b"123456789");
        assert_eq!(expand("123456789${len}").unwrap(), b"12345678911");
        assert_eq!(expand("len=${len:0..3}").unwrap(), b"len=3");
        // Two decimal lengths that count each other still settle.
        let two = expand(&format!("{}${{len}}${{len}}", "x".repeat(95))).unwrap();
        assert_eq!(&two[95..], b"9999");
    }

    #[test]
    fn dollars_stay_writable_and_old_text_keeps_its_meaning() {
        assert_eq!(expand("$$").unwrap(), b"$");
        assert_eq!(expand("$${counter}").unwrap(), b"${counter}");
        assert_eq!(expand("costs $5.00, $x $").unwrap(), b"costs $5.00, $x $");
        assert_eq!(
            expand("\\x24\\x24").unwrap(),
            b"$",
            "escapes are decoded first"
        );
        let t = Template::parse(&escape_literal(b"a$$b${c}$"), &Scope::Plain).unwrap();
        assert_eq!(t.expand(&at(0)).unwrap(), b"a$$b${c}$");
        assert!(!t.has_placeholders());
    }

    #[test]
    fn captures_in_a_rule_reply() {
        let re = regex::bytes::Regex::new(r"^GET (\S+) (?P<v>\S+) (?P<counter>\d+)").unwrap();
        let scope = Scope::Captures {
            names: re.capture_names().flatten().map(str::to_owned).collect(),
        };
        let caps = re.captures(b"GET /a HTTP/1.0 42").unwrap();
        let t = parse_text("$1 ${v} ${1}x $9 ${counter} $$ ${len:u8} ${nope}", &scope).unwrap();
        let ctx = Context {
            captures: Some(&caps),
            ..at(0)
        };
        // A group named like a placeholder stays the capture; an unknown
        // name is a capture that is not there, as before.
        assert_eq!(t.expand(&ctx).unwrap(), b"/a HTTP/1.0 /ax  42 $ \x18 ");
    }

    #[test]
    fn expansions_are_bounded() {
        let re = regex::bytes::Regex::new("(.*)").unwrap();
        let scope = Scope::Captures { names: vec![] };
        let t = Template::parse(&b"$1".repeat(1000), &scope).unwrap();
        let big = vec![b'x'; 1 << 16];
        let caps = re.captures(&big).unwrap();
        let ctx = Context {
            captures: Some(&caps),
            ..at(0)
        };
        let e = t.expand(&ctx).unwrap_err();
        assert!(e.problem.contains("longer than 16 MiB"), "{e}");
        let many = "${counter}".repeat(MAX_PLACEHOLDERS + 1);
        assert!(parse_text(&many, &Scope::Plain).is_err());
    }

    proptest! {
        #[test]
        fn text_without_placeholders_expands_to_what_it_always_was(s in "[^$]*|\\PC*") {
            // Any text notation without "${" (and without "$$", the one new escape).
            prop_assume!(!s.contains("${") && !s.contains("$$"));
            if let Ok(before) = crate::model::payload::parse_text(&s) {
                let t = parse_text(&s, &Scope::Plain).unwrap();
                prop_assert!(!t.has_placeholders());
                prop_assert_eq!(t.expand(&at(3)).unwrap(), before);
            }
        }

        #[test]
        fn escaped_bytes_expand_to_themselves(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let t = Template::parse(&escape_literal(&bytes), &Scope::Plain).unwrap();
            prop_assert_eq!(t.expand(&at(0)).unwrap(), bytes);
        }

        #[test]
        fn templates_never_panic(s in "(\\PC|\\$\\{[a-z0-9_:,.]{0,12}\\}?)*", send in any::<u64>()) {
            if let Ok(t) = parse_text(&s, &Scope::Plain) {
                let _ = t.expand(&at(send));
            }
        }
    }
}
