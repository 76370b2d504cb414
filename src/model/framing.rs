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

#[cfg(test)]
mod tests {
    use super::*;

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
}
