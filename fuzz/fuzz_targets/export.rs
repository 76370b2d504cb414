//! The exporters: whatever a session's names, addresses, notes, paths and
//! payloads hold, the Python program has the same code as a harmless one
//! (session text only inside literals, which read back exactly), the
//! Mermaid diagram one label per line, the CSV no formula, the pcapng
//! only packets that read back with one clean comment each, and the hex dump
//! only its header lines and `xxd` lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockbench::check::{
    Strings, check_csv, check_hexdump, check_mermaid, check_pcapng, check_python,
};

fuzz_target!(|s: Strings| {
    check_python(&s);
    let session = s.session();
    check_mermaid(&session);
    check_csv(&session);
    check_pcapng(&session);
    check_hexdump(&session);
});
