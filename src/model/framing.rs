//! Message boundaries in a byte stream: TCP delivers bytes, not messages, so a
//! receiver that wants messages must cut the stream itself — at newlines, or
//! by a length prefix. These pure functions show a stream each way.

use std::ops::Range;

/// How a received byte stream is cut into messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Framing {
    /// As the reads came: one row per read (boundaries are wherever the network put them).
    #[default]
    Reads,
    /// One message per line, ended by `\n`.
    Lines,
    /// Each message starts with its length: 2 bytes, big-endian.
    LengthU16,
    /// Each message starts with its length: 4 bytes, big-endian.
    LengthU32,
}

impl Framing {
    pub const ALL: [Framing; 4] = [
        Framing::Reads,
        Framing::Lines,
        Framing::LengthU16,
        Framing::LengthU32,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Framing::Reads => "raw reads",
            Framing::Lines => "lines",
            Framing::LengthU16 => "frames, 2-byte length",
            Framing::LengthU32 => "frames, 4-byte length",
        }
    }

    fn prefix_len(self) -> usize {
        match self {
            Framing::LengthU16 => 2,
            Framing::LengthU32 => 4,
            _ => 0,
        }
    }

    /// Puts a length prefix in front of `payload` (for the framings that have one).
    pub fn frame(self, payload: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(payload.len() + 4);
        match self {
            Framing::LengthU16 => {
                let len = u16::try_from(payload.len()).map_err(|_| {
                    format!(
                        "{} bytes do not fit a 2-byte length (65535 at most)",
                        payload.len()
                    )
                })?;
                out.extend_from_slice(&len.to_be_bytes());
            }
            Framing::LengthU32 => {
                let len = u32::try_from(payload.len())
                    .map_err(|_| format!("{} bytes do not fit a 4-byte length", payload.len()))?;
                out.extend_from_slice(&len.to_be_bytes());
            }
            Framing::Reads | Framing::Lines => {}
        }
        out.extend_from_slice(payload);
        Ok(out)
    }
}

/// A stream cut into messages: the complete ones, and what is left over (an
/// incomplete last line or frame, still waiting for its end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// Ranges of the stream: the message bodies (without newline or length prefix).
    pub messages: Vec<Range<usize>>,
    /// The bytes of an unfinished message at the end.
    pub rest: Range<usize>,
}

/// Cuts a stream by `framing`. For [`Framing::Reads`], pass the read lengths as `reads`.
pub fn cut(stream: &[u8], framing: Framing, reads: &[usize]) -> Cut {
    let mut messages = Vec::new();
    let mut at = 0;
    match framing {
        Framing::Reads => {
            for &len in reads {
                let end = (at + len).min(stream.len());
                messages.push(at..end);
                at = end;
            }
        }
        Framing::Lines => {
            while let Some(nl) = memchr::memchr(b'\n', &stream[at..]) {
                messages.push(at..at + nl);
                at += nl + 1;
            }
        }
        Framing::LengthU16 | Framing::LengthU32 => {
            let prefix = framing.prefix_len();
            while stream.len() - at >= prefix {
                let len = stream[at..at + prefix]
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | *b as usize);
                if stream.len() - at - prefix < len {
                    break;
                }
                messages.push(at + prefix..at + prefix + len);
                at += prefix + len;
            }
        }
    }
    Cut {
        messages,
        rest: at..stream.len(),
    }
}

/// The longest message a receiver keeps by default (1 MiB): a longer one is cut.
pub const DEFAULT_MAX_MESSAGE: usize = 1 << 20;

/// How an endpoint cuts each connection's received stream into messages
/// before its rules look at them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ReceiveFraming {
    /// Each read is a message, as the network delivered it.
    #[default]
    Raw,
    /// Lines ended by `\n`; a `\r` before it is dropped too.
    Line,
    /// Lines ended by `\r\n` only.
    Crlf,
    /// Messages ended by these bytes (never empty; boxed, so an endpoint's
    /// settings stay small).
    Delimiter(Box<super::payload::Payload>),
    /// Each message starts with its length in `width` bytes (1, 2 or 4).
    Length {
        width: u8,
        #[serde(default, skip_serializing_if = "is_false")]
        little_endian: bool,
        /// The length counts the prefix itself.
        #[serde(default, skip_serializing_if = "is_false")]
        includes_prefix: bool,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ReceiveFraming {
    pub fn is_raw(&self) -> bool {
        matches!(self, ReceiveFraming::Raw)
    }

    /// Reads the command-line notation: `raw`, `line`, `crlf`, `delim:HEX`,
    /// `len:1`, `len:2be`, `len:4le`, … with `+incl` when the length counts its prefix.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let known = "give raw, line, crlf, delim:HEX or len:1|2|4[be|le][+incl]";
        Ok(match t {
            "raw" => ReceiveFraming::Raw,
            "line" => ReceiveFraming::Line,
            "crlf" => ReceiveFraming::Crlf,
            _ => {
                if let Some(hex) = t.strip_prefix("delim:") {
                    let bytes = super::payload::parse_hex(hex)
                        .map_err(|e| format!("framing \"{t}\": delimiter {e}"))?;
                    if bytes.is_empty() {
                        return Err(format!(
                            "framing \"{t}\": the delimiter needs at least one byte (hex)"
                        ));
                    }
                    if bytes.len() > 64 {
                        return Err(format!("framing \"{t}\": a delimiter has at most 64 bytes"));
                    }
                    ReceiveFraming::Delimiter(Box::new(bytes.into()))
                } else if let Some(rest) = t.strip_prefix("len:") {
                    let (rest, includes_prefix) = match rest.strip_suffix("+incl") {
                        Some(r) => (r, true),
                        None => (rest, false),
                    };
                    let (digits, little_endian) = if let Some(d) = rest.strip_suffix("le") {
                        (d, true)
                    } else if let Some(d) = rest.strip_suffix("be") {
                        (d, false)
                    } else {
                        (rest, false)
                    };
                    let width = match digits {
                        "1" => 1,
                        "2" => 2,
                        "4" => 4,
                        _ => {
                            return Err(format!(
                                "framing \"{t}\": the length has 1, 2 or 4 bytes; {known}"
                            ));
                        }
                    };
                    ReceiveFraming::Length {
                        width,
                        little_endian,
                        includes_prefix,
                    }
                } else {
                    return Err(format!("unknown framing \"{t}\": {known}"));
                }
            }
        })
    }

    /// The command-line notation, as [`ReceiveFraming::parse`] reads it.
    pub fn notation(&self) -> String {
        match self {
            ReceiveFraming::Raw => "raw".into(),
            ReceiveFraming::Line => "line".into(),
            ReceiveFraming::Crlf => "crlf".into(),
            ReceiveFraming::Delimiter(d) => format!(
                "delim:{}",
                super::payload::to_hex(d.bytes()).replace(' ', "")
            ),
            ReceiveFraming::Length {
                width,
                little_endian,
                includes_prefix,
            } => format!(
                "len:{width}{}{}",
                if *width == 1 {
                    ""
                } else if *little_endian {
                    "le"
                } else {
                    "be"
                },
                if *includes_prefix { "+incl" } else { "" }
            ),
        }
    }
}

/// A message cut from a stream by a [`Deframer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The body (without delimiter or length prefix), at most the maximum long.
    pub bytes: Vec<u8>,
    /// Set when the message was longer than the maximum: its whole length
    /// (for a delimited message, the length seen when it was cut).
    pub cut_from: Option<u64>,
}

/// Cuts one connection's stream into messages as reads arrive, keeping at most
/// the maximum message length buffered: a longer message is cut at the
/// maximum (the cut is marked) and the rest of it skipped.
#[derive(Clone, Debug)]
pub struct Deframer {
    framing: ReceiveFraming,
    max: usize,
    buf: Vec<u8>,
    /// Delimited framings: where the search for the delimiter goes on.
    scanned: usize,
    /// Bytes of a cut message still to skip (length-prefixed), or `u64::MAX`
    /// while skipping up to the next delimiter.
    skip: u64,
}

impl Deframer {
    pub fn new(framing: ReceiveFraming, max: usize) -> Self {
        Self {
            framing,
            max: max.max(1),
            buf: Vec::new(),
            scanned: 0,
            skip: 0,
        }
    }

    /// Bytes held for an unfinished message (never more than the maximum plus a prefix or delimiter).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds one read; complete messages are pushed to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Message>) {
        match self.framing.clone() {
            ReceiveFraming::Raw => {
                for chunk in data.chunks(self.max) {
                    out.push(Message {
                        bytes: chunk.to_vec(),
                        cut_from: (data.len() > self.max).then_some(data.len() as u64),
                    });
                }
            }
            ReceiveFraming::Line => self.delimited(data, b"\n", true, out),
            ReceiveFraming::Crlf => self.delimited(data, b"\r\n", false, out),
            ReceiveFraming::Delimiter(d) => self.delimited(data, d.bytes(), false, out),
            ReceiveFraming::Length {
                width,
                little_endian,
                includes_prefix,
            } => {
                let width = width as usize;
                loop {
                    if self.skip > 0 {
                        let n = (self.skip.min(data.len() as u64)) as usize;
                        data = &data[n..];
                        self.skip -= n as u64;
                        if self.skip > 0 {
                            return;
                        }
                    }
                    let take = data.len().min(width.saturating_sub(self.buf.len()));
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.buf.len() < width {
                        return;
                    }
                    let prefix = &self.buf[..width];
                    let fold = |acc: u64, b: &u8| (acc << 8) | *b as u64;
                    let mut len = if little_endian {
                        prefix.iter().rev().fold(0, fold)
                    } else {
                        prefix.iter().fold(0, fold)
                    };
                    if includes_prefix {
                        len = len.saturating_sub(width as u64);
                    }
                    let keep = len.min(self.max as u64) as usize;
                    let have = self.buf.len() - width;
                    let take = data.len().min(keep - have);
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.buf.len() - width < keep {
                        return;
                    }
                    out.push(Message {
                        bytes: self.buf[width..].to_vec(),
                        cut_from: (len > keep as u64).then_some(len),
                    });
                    self.buf.clear();
                    self.skip = len - keep as u64;
                    if data.is_empty() && self.skip == 0 {
                        return;
                    }
                }
            }
        }
    }

    fn delimited(&mut self, mut data: &[u8], delim: &[u8], strip_cr: bool, out: &mut Vec<Message>) {
        let finder = memchr::memmem::Finder::new(delim);
        while !data.is_empty() {
            if self.skip > 0 {
                // Skipping the rest of a cut message, up to its delimiter (which
                // may straddle reads: the held tail is at most the delimiter long).
                self.buf
                    .extend_from_slice(&data[..data.len().min(delim.len() + 4096)]);
                let consumed = data.len().min(delim.len() + 4096);
                data = &data[consumed..];
                if let Some(at) = finder.find(&self.buf) {
                    let after = self.buf.split_off(at + delim.len());
                    self.buf = after;
                    self.skip = 0;
                    self.scanned = 0;
                    // What followed the delimiter is the next message's start: feed it again.
                    let rest = std::mem::take(&mut self.buf);
                    self.delimited(&rest, delim, strip_cr, out);
                    continue;
                }
                let keep_from = self.buf.len().saturating_sub(delim.len() - 1);
                self.buf.drain(..keep_from);
                continue;
            }
            let room = (self.max + delim.len()).saturating_sub(self.buf.len());
            let take = data.len().min(room.max(1));
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            // Messages are taken from `start` on and the buffer shifted once
            // per read, not once per message (many small messages in one read
            // would otherwise move the buffer once each).
            let mut start = 0;
            loop {
                let from = start.max(self.scanned.saturating_sub(delim.len() - 1));
                match finder.find(&self.buf[from..]) {
                    Some(at) => {
                        let end = from + at;
                        let mut body = &self.buf[start..end];
                        if strip_cr && body.last() == Some(&b'\r') {
                            body = &body[..body.len() - 1];
                        }
                        let cut = body.len() > self.max;
                        out.push(Message {
                            bytes: body[..body.len().min(self.max)].to_vec(),
                            cut_from: cut.then_some(body.len() as u64),
                        });
                        start = end + delim.len();
                    }
                    None => break,
                }
            }
            self.buf.drain(..start);
            self.scanned = self.buf.len();
            if self.buf.len() >= self.max + delim.len() {
                // No delimiter within the maximum: the message is cut here and
                // the rest of it, up to its delimiter, skipped.
                let seen = self.buf.len() as u64;
                out.push(Message {
                    bytes: self.buf[..self.max].to_vec(),
                    cut_from: Some(seen),
                });
                let tail = self.buf.split_off(self.buf.len() - (delim.len() - 1));
                self.buf = tail;
                self.scanned = 0;
                self.skip = u64::MAX;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(framing: ReceiveFraming, max: usize, reads: &[&[u8]]) -> Vec<Message> {
        let mut d = Deframer::new(framing, max);
        let mut out = Vec::new();
        for r in reads {
            d.push(r, &mut out);
            assert!(
                d.buffered() <= max + 8,
                "bounded: {} buffered",
                d.buffered()
            );
        }
        out
    }

    fn bodies(m: &[Message]) -> Vec<&[u8]> {
        m.iter().map(|m| &m.bytes[..]).collect()
    }

    #[test]
    fn receive_framings_join_split_messages() {
        let lines = feed(ReceiveFraming::Line, 100, &[b"LOG", b"IN a\r", b"\nb\nc"]);
        assert_eq!(bodies(&lines), [&b"LOGIN a"[..], b"b"]);
        let crlf = feed(ReceiveFraming::Crlf, 100, &[b"a\nb\r", b"\nc\r\n"]);
        assert_eq!(bodies(&crlf), [&b"a\nb"[..], b"c"]);
        let delim = ReceiveFraming::parse("delim:0d0a00").unwrap();
        let d = feed(delim, 100, &[b"x\r", b"\n", b"\0y\r\n\0"]);
        assert_eq!(bodies(&d), [&b"x"[..], b"y"]);
        let le = ReceiveFraming::parse("len:2le").unwrap();
        let m = feed(le, 100, &[&[3], &[0, b'a', b'b'], &[b'c', 1, 0, b'z']]);
        assert_eq!(bodies(&m), [&b"abc"[..], b"z"]);
        let incl = ReceiveFraming::parse("len:4be+incl").unwrap();
        let m = feed(incl, 100, &[&[0, 0, 0, 6, b'h'], &[b'i', 0, 0, 0, 4]]);
        assert_eq!(bodies(&m), [&b"hi"[..], b""]);
        let one = ReceiveFraming::parse("len:1").unwrap();
        let m = feed(one, 100, &[&[2, b'o'], b"k"]);
        assert_eq!(bodies(&m), [&b"ok"[..]]);
        let raw = feed(ReceiveFraming::Raw, 100, &[b"ab", b"c"]);
        assert_eq!(bodies(&raw), [&b"ab"[..], b"c"]);
    }

    #[test]
    fn a_message_over_the_maximum_is_cut_and_the_stream_goes_on() {
        let long = [b'x'; 50];
        let mut reads: Vec<&[u8]> = long.chunks(7).collect();
        reads.push(b"\nnext\n");
        let m = feed(ReceiveFraming::Line, 10, &reads);
        assert_eq!(bodies(&m), [&b"xxxxxxxxxx"[..], b"next"]);
        assert!(m[0].cut_from.is_some());
        assert_eq!(m[1].cut_from, None);

        let mut framed = vec![0, 40];
        framed.extend(vec![b'y'; 40]);
        framed.extend([0, 2, b'o', b'k']);
        let reads: Vec<&[u8]> = framed.chunks(3).collect();
        let m = feed(ReceiveFraming::parse("len:2").unwrap(), 8, &reads);
        assert_eq!(bodies(&m), [&b"yyyyyyyy"[..], b"ok"]);
        assert_eq!(m[0].cut_from, Some(40));

        let m = feed(ReceiveFraming::Raw, 4, &[b"abcdef"]);
        assert_eq!(bodies(&m), [&b"abcd"[..], b"ef"]);
        assert_eq!(m[0].cut_from, Some(6));
    }

    #[test]
    fn framing_notation_round_trips_and_rejects_nonsense() {
        for t in [
            "raw",
            "line",
            "crlf",
            "delim:00ff",
            "len:1",
            "len:2be",
            "len:4le+incl",
        ] {
            assert_eq!(ReceiveFraming::parse(t).unwrap().notation(), t);
        }
        for bad in ["", "lines", "len:3", "len:2xx", "delim:", "delim:zz"] {
            assert!(ReceiveFraming::parse(bad).is_err(), "{bad}");
        }
    }

    fn texts<'a>(stream: &'a [u8], c: &Cut) -> Vec<&'a [u8]> {
        c.messages.iter().map(|r| &stream[r.clone()]).collect()
    }

    #[test]
    fn lines_come_back_from_any_split() {
        let stream = b"one\r\ntwo\nthr";
        let c = cut(stream, Framing::Lines, &[]);
        assert_eq!(texts(stream, &c), [&b"one\r"[..], b"two"]);
        assert_eq!(&stream[c.rest], b"thr");
    }

    #[test]
    fn reads_are_as_they_came() {
        let stream = b"onetwo";
        let c = cut(stream, Framing::Reads, &[2, 4]);
        assert_eq!(texts(stream, &c), [&b"on"[..], b"etwo"]);
        assert!(c.rest.is_empty());
    }

    #[test]
    fn length_prefixed_frames() {
        let mut stream = Framing::LengthU16.frame(b"hello").unwrap();
        stream.extend(Framing::LengthU16.frame(b"").unwrap());
        stream.extend(Framing::LengthU16.frame(b"world").unwrap());
        stream.extend_from_slice(&[0, 9, b'x']);
        let c = cut(&stream, Framing::LengthU16, &[]);
        assert_eq!(texts(&stream, &c), [&b"hello"[..], b"", b"world"]);
        assert_eq!(&stream[c.rest], &[0, 9, b'x']);

        let framed = Framing::LengthU32.frame(b"abc").unwrap();
        assert_eq!(framed, [0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(
            texts(&framed, &cut(&framed, Framing::LengthU32, &[])),
            [&b"abc"[..]]
        );
        assert!(Framing::LengthU16.frame(&vec![0; 70_000]).is_err());
    }

    proptest::proptest! {
        /// However a stream of many small lines is split into reads, the
        /// messages are the lines, in order (one read often holds many).
        #[test]
        fn many_lines_in_any_split_come_out_whole(
            lines in proptest::collection::vec("[a-z]{0,12}", 1..200),
            cuts in proptest::collection::vec(0usize..4000, 0..8),
        ) {
            let stream: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\r\n").into_bytes()).collect();
            let mut at: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            at.sort_unstable();
            let mut reads = Vec::new();
            let mut from = 0;
            for c in at.into_iter().chain([stream.len()]) {
                reads.push(&stream[from..c]);
                from = c;
            }
            for framing in [ReceiveFraming::Line, ReceiveFraming::Crlf] {
                let out = feed(framing, 64, &reads);
                let got: Vec<&[u8]> = bodies(&out);
                let want: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
                proptest::prop_assert_eq!(got, want);
            }
        }
    }
}
