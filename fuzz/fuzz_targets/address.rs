//! The address parser: any text gives an address or an error, never a
//! panic; an address prints as text that parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockbench::model::HostPort;

fuzz_target!(|text: &str| {
    match text.parse::<HostPort>() {
        Ok(hp) => {
            let shown = hp.to_string();
            assert_eq!(shown.parse::<HostPort>().as_ref(), Ok(&hp), "{shown:?}");
            let _ = hp.socket_addr();
            // A host is an IP literal or a name: nothing a program or a log
            // line could read as more than an address.
            assert!(
                hp.host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '_' | '%')),
                "{:?}",
                hp.host
            );
            let _ = hp.require_port();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
