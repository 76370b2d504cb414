//! TCP reassembly of one direction of a connection: segments in, the byte
//! stream out in order. Retransmissions and overlaps are dropped,
//! out-of-order segments wait for the gap before them, and a gap that never
//! fills is said, never papered over. Pure and bounded; fuzzed.

use std::collections::BTreeMap;

/// The most bytes held waiting for a gap before the gap is given up on.
pub const PENDING_LIMIT: usize = 16 * 1024 * 1024;

/// What came out of one direction, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Bytes of the stream, delivered when the segment that completed them came.
    Data { at_micros: i64, bytes: Vec<u8> },
    /// Bytes the capture never had (lost before the capture, or cut off).
    Missing { at_micros: i64, len: u64 },
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub struct Stream {
    /// The sequence number of the stream's first byte, once known.
    base: Option<u32>,
    /// The stream offset of the next byte expected.
    next: u64,
    /// Segments that came ahead of a gap, by stream offset.
    pending: BTreeMap<u64, (i64, Vec<u8>)>,
    pending_bytes: usize,
    /// Segments that carried only bytes already delivered.
    pub retransmitted: u64,
    /// Segments that came ahead of a gap.
    pub out_of_order: u64,
    /// The stream started before the capture did (no SYN was seen).
    pub began_mid_stream: bool,
    /// Pieces ready to be taken.
    out: Vec<Piece>,
}

impl Stream {
    /// A SYN (or SYN-ACK) with sequence number `seq`: the stream starts at `seq + 1`.
    pub fn syn(&mut self, seq: u32) {
        if self.base.is_none() {
            self.base = Some(seq.wrapping_add(1));
        }
    }

    /// The stream offset of sequence number `seq`, near the offset expected next
    /// (so a stream longer than 4 GiB keeps counting).
    fn offset_of(&self, seq: u32, base: u32) -> u64 {
        let rel = u64::from(seq.wrapping_sub(base));
        let epoch = self.next & !0xffff_ffff;
        [
            epoch.wrapping_sub(1 << 32),
            epoch,
            epoch.wrapping_add(1 << 32),
        ]
        .into_iter()
        .map(|e| e.wrapping_add(rel))
        .filter(|o| *o < (1u64 << 63))
        .min_by_key(|o| o.abs_diff(self.next))
        .unwrap_or(rel)
    }

    /// A segment with sequence number `seq` carrying `payload`, captured at `at_micros`.
    pub fn segment(&mut self, at_micros: i64, seq: u32, payload: &[u8]) {
        if payload.is_empty() {
            return;
        }
        let base = *self.base.get_or_insert_with(|| {
            self.began_mid_stream = true;
            seq
        });
        let offset = self.offset_of(seq, base);
        let end = offset + payload.len() as u64;
        if end <= self.next {
            self.retransmitted += 1;
            return;
        }
        if offset > self.next {
            self.out_of_order += 1;
            // Keep the longer of two segments at one offset.
            let keep = self
                .pending
                .get(&offset)
                .is_none_or(|(_, b)| b.len() < payload.len());
            if keep {
                if let Some((_, old)) = self.pending.insert(offset, (at_micros, payload.to_vec())) {
                    self.pending_bytes -= old.len();
                }
                self.pending_bytes += payload.len();
            }
            if self.pending_bytes > PENDING_LIMIT {
                self.skip_gap(at_micros);
            }
            return;
        }
        // Starts at or before the next byte: deliver the new part.
        let skip = (self.next - offset) as usize;
        self.deliver(at_micros, &payload[skip..]);
        self.drain(at_micros);
    }

    fn deliver(&mut self, at_micros: i64, bytes: &[u8]) {
        self.next += bytes.len() as u64;
        self.out.push(Piece::Data {
            at_micros,
            bytes: bytes.to_vec(),
        });
    }

    /// Delivers the waiting segments that the stream has now reached.
    fn drain(&mut self, now: i64) {
        while let Some((&offset, _)) = self.pending.first_key_value() {
            if offset > self.next {
                break;
            }
            let Some((at, bytes)) = self.pending.remove(&offset) else {
                break;
            };
            self.pending_bytes -= bytes.len();
            let end = offset + bytes.len() as u64;
            if end <= self.next {
                self.retransmitted += 1;
                continue;
            }
            let skip = (self.next - offset) as usize;
            // Readable once the gap before it filled, not before.
            self.deliver(at.max(now), &bytes[skip..]);
        }
    }

    /// Gives up on the gap before the first waiting segment: says how many
    /// bytes are missing, and goes on from there.
    fn skip_gap(&mut self, at_micros: i64) {
        if let Some((&offset, _)) = self.pending.first_key_value()
            && offset > self.next
        {
            self.out.push(Piece::Missing {
                at_micros,
                len: offset - self.next,
            });
            self.next = offset;
            self.drain(at_micros);
        }
    }

    /// The end of the capture or of the connection: every gap still open is
    /// said as missing bytes and the segments after it are delivered.
    pub fn finish(&mut self, at_micros: i64) {
        while !self.pending.is_empty() {
            let before = self.pending.len();
            self.skip_gap(at_micros);
            if self.pending.len() == before {
                break;
            }
        }
    }

    /// The pieces ready so far, in stream order.
    pub fn take(&mut self) -> Vec<Piece> {
        std::mem::take(&mut self.out)
    }

    /// Bytes delivered or said missing so far.
    pub fn position(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pieces: &[Piece]) -> Vec<u8> {
        pieces
            .iter()
            .flat_map(|p| match p {
                Piece::Data { bytes, .. } => bytes.clone(),
                Piece::Missing { len, .. } => vec![b'?'; *len as usize],
            })
            .collect()
    }

    #[test]
    fn in_order_retransmitted_and_out_of_order_segments_make_one_stream() {
        let mut s = Stream::default();
        s.syn(999);
        s.segment(1, 1000, b"hello ");
        s.segment(2, 1000, b"hello "); // retransmission
        s.segment(3, 1012, b"rld"); // ahead of a gap
        s.segment(4, 1006, b"wo"); // still a gap of 4 bytes at 1008
        s.segment(5, 1003, b"lo wo"); // overlaps what came
        s.segment(6, 1008, b"\x00ldXX"); // fills the gap, overlaps "rld"
        let out = s.take();
        assert_eq!(data(&out), b"hello wo\x00ldXXld");
        assert_eq!(s.retransmitted, 2);
        assert_eq!(s.out_of_order, 1);
        assert!(!s.began_mid_stream);
    }

    #[test]
    fn a_gap_that_never_fills_is_said() {
        let mut s = Stream::default();
        s.segment(1, 50, b"ab");
        s.segment(2, 56, b"gh");
        assert_eq!(data(&s.take()), b"ab");
        s.finish(9);
        let out = s.take();
        assert_eq!(
            out,
            vec![
                Piece::Missing {
                    at_micros: 9,
                    len: 4
                },
                Piece::Data {
                    at_micros: 9,
                    bytes: b"gh".to_vec()
                }
            ]
        );
        assert!(s.began_mid_stream);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = Stream::default();
        s.syn(u32::MAX - 2);
        s.segment(1, u32::MAX - 1, b"ab");
        s.segment(2, 0, b"cd");
        s.segment(3, 2, b"ef");
        assert_eq!(data(&s.take()), b"abcdef");
    }

    #[test]
    fn waiting_bytes_are_bounded() {
        let mut s = Stream::default();
        s.syn(0);
        let chunk = vec![7u8; 1 << 20];
        for i in 0..20u32 {
            s.segment(1, 1 + (i + 1) * (1 << 20), &chunk);
        }
        assert!(s.pending_bytes <= PENDING_LIMIT);
        let out = s.take();
        assert!(matches!(out[0], Piece::Missing { len, .. } if len == 1 << 20));
    }
}
