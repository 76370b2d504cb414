//! `sockbench check FILE...`: read and validate session files, run nothing.

use std::path::PathBuf;

use super::{EXIT_BAD_INPUT, Errors};
use crate::model::escape_controls;

pub fn run(files: &[PathBuf]) -> i32 {
    let mut errors = Errors::default();
    for path in files {
        let loaded = crate::persist::load(path)
            .map_err(|e| e.to_string())
            .and_then(|session| {
                // The certificate and key files it names are read as a run would.
                crate::engine::tls::check_session_files(&session)
                    .map(|()| session)
                    .map_err(|e| format!("{}: {}", path.display(), e.message))
            });
        match loaded {
            Ok(session) => super::drive::say(format_args!(
                "{}: ok, format {}, {} endpoint{}, {} library payload{}, {} log entr{}",
                escape_controls(&path.display().to_string()),
                crate::persist::FORMAT,
                session.endpoints.len(),
                if session.endpoints.len() == 1 {
                    ""
                } else {
                    "s"
                },
                session.library.len(),
                if session.library.len() == 1 { "" } else { "s" },
                session.log.len(),
                if session.log.len() == 1 { "y" } else { "ies" },
            )),
            Err(e) => errors.add(EXIT_BAD_INPUT, e),
        }
    }
    errors.add_console();
    errors.finish()
}
