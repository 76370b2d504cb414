//! The payload notation: parsing any text never panics, and every byte
//! string round-trips through text and hex notation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockbench::model::Notation;
use sockbench::model::payload::{
    hex_dump_by, parse_hex, parse_text, preview, to_hex, to_text_notation,
};

fuzz_target!(|data: &[u8]| {
    // The bytes as a payload.
    assert_eq!(parse_text(&to_text_notation(data)).as_deref(), Ok(data));
    assert_eq!(parse_hex(&to_hex(data)).as_deref(), Ok(data));
    let _ = preview(data, 40);
    let _ = hex_dump_by(data, 1 + data.first().copied().unwrap_or(0) as usize % 32);

    // The bytes as typed text.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for notation in [Notation::Text, Notation::Hex] {
        match notation.parse(text) {
            Ok(bytes) => {
                let again = notation.format(&bytes);
                assert_eq!(notation.parse(&again), Ok(bytes), "{notation:?} {again:?}");
            }
            Err(e) => {
                // The position names a character of the input (or just past its end).
                assert!(
                    e.position >= 1 && e.position <= text.chars().count() + 1,
                    "{e:?}"
                );
                let _ = e.line_col(text);
                let _ = e.to_string();
            }
        }
    }
});
