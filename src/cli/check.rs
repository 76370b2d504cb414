//! `sockbench check FILE...`: read and validate session files, run nothing.

use std::path::PathBuf;

use super::{EXIT_BAD_INPUT, Errors};
use crate::model::escape_controls;

pub fn run(files: &[PathBuf]) -> i32 {
    let mut errors = Errors::default();
    for path in files {
        match crate::persist::load(path) {
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
            Err(e) => errors.add(EXIT_BAD_INPUT, e.to_string()),
        }
    }
    errors.add_console();
    errors.finish()
}
