//! Capture import: any bytes as a capture file never panic, and what is
//! imported holds only bytes the capture carried; any segments through TCP
//! reassembly give a stream whose delivered bytes are in order and whose
//! gaps are said.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockbench::capture::{self, stream::Piece, stream::Stream};

fuzz_target!(|input: (Vec<u8>, Vec<(u32, u16, Vec<u8>)>)| {
    let (file, segments) = input;
    if let Ok((packets, _stats)) = capture::read_bytes(&file, "fuzz") {
        let (found, _) = capture::conversations(&packets);
        if let Ok(chosen) = capture::choose(&found, capture::Choice::Largest) {
            let (session, _) = capture::to_session(&packets, &found, &chosen, "fuzz");
            let captured: u64 = packets.iter().map(|p| p.payload.len() as u64).sum();
            let sent: u64 = (0..session.log.len())
                .filter_map(|i| session.log.entry(i))
                .filter(|e| e.kind == sockbench::model::log::EntryKind::Sent)
                .map(|e| e.len() as u64)
                .sum();
            assert!(sent <= captured, "imported {sent} bytes of {captured} captured");
        }
    }
    let mut stream = Stream::default();
    stream.syn(1000);
    for (i, (seq, len, fill)) in segments.iter().enumerate() {
        let payload: Vec<u8> = fill.iter().copied().cycle().take(*len as usize % 4096).collect();
        stream.segment(i as i64, 1001u32.wrapping_add(*seq % 65536), &payload);
    }
    stream.finish(i64::MAX);
    let mut total = 0u64;
    for piece in stream.take() {
        total += match piece {
            Piece::Data { bytes, .. } => bytes.len() as u64,
            Piece::Missing { len, .. } => len,
        };
    }
    assert_eq!(total, stream.position());
});
