//! The exporters: whatever a session's names, addresses, notes, paths and
//! payloads hold, the Python program has the same code as a harmless one
//! (session text only inside literals, which read back exactly), the
//! Mermaid diagram one label per line, and the CSV no formula.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockbench::check::{Strings, check_csv, check_mermaid, check_python};

fuzz_target!(|s: Strings| {
    check_python(&s);
    let session = s.session();
    check_mermaid(&session);
    check_csv(&session);
});
