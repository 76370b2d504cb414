//! The session loader: any text loads or gives an error, never a panic; a
//! loaded session saves as text that loads again to the same text; and it
//! exports to Python, Mermaid and CSV that keep its strings in their place.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sockbench::export::{Format, export};
use sockbench::{check, persist};

fuzz_target!(|text: &str| {
    let path = Path::new("fuzz.ron");
    let session = match persist::from_str(text, path) {
        Ok(s) => s,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    if let Ok(saved) = persist::to_string(&session) {
        let again = persist::from_str(&saved, path)
            .unwrap_or_else(|e| panic!("a saved session does not load: {e}\n{saved}"));
        let resaved = persist::to_string(&again).expect("a loaded session saves");
        assert_eq!(saved, resaved);
    }
    if let Ok(program) = export(&session, "fuzz", Format::Python, None) {
        assert!(program.is_ascii(), "{program}");
        check::scan_python(&program).unwrap_or_else(|e| panic!("{e}:\n{program}"));
    }
    check::check_mermaid(&session);
    check::check_csv(&session);
});
