//! The framing decoder: any stream cuts into in-bounds, ordered messages
//! that, with their separators or length prefixes, make up the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockbench::model::framing::{Framing, cut};

fuzz_target!(|input: (u8, Vec<u16>, Vec<u8>)| {
    let (which, reads, stream) = input;
    let framing = Framing::ALL[which as usize % Framing::ALL.len()];
    let reads: Vec<usize> = reads.into_iter().map(usize::from).collect();
    let c = cut(&stream, framing, &reads);
    assert!(c.rest.start <= c.rest.end && c.rest.end == stream.len());
    let mut rebuilt = Vec::new();
    let mut at = 0;
    for m in &c.messages {
        assert!(m.start <= m.end && m.end <= stream.len(), "{m:?}");
        assert!(m.start >= at, "messages overlap: {:?}", c.messages);
        let body = &stream[m.clone()];
        match framing {
            Framing::Reads => rebuilt.extend_from_slice(body),
            Framing::Lines => {
                assert!(!body.contains(&b'\n'));
                rebuilt.extend_from_slice(body);
                rebuilt.push(b'\n');
            }
            Framing::LengthU16 | Framing::LengthU32 => {
                rebuilt.extend(framing.frame(body).expect("a cut frame fits its prefix"))
            }
        }
        at = m.end;
    }
    rebuilt.extend_from_slice(&stream[c.rest.clone()]);
    assert_eq!(rebuilt, stream, "{framing:?}");

    // Framing a payload and cutting it gives the payload back.
    if let Ok(framed) = framing.frame(&stream) {
        if matches!(framing, Framing::LengthU16 | Framing::LengthU32) {
            let again = cut(&framed, framing, &[]);
            assert_eq!(again.messages.len(), 1);
            assert_eq!(&framed[again.messages[0].clone()], &stream[..]);
            assert!(again.rest.is_empty());
        }
    }
});
