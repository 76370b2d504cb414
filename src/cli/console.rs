//! Standard output for the command line: every line it prints, with the first
//! write failure kept, so a full disk (`> /dev/full`) is an error the run
//! reports, while a reader that went away (`| head`) ends the printing quietly.

use std::io::Write as _;
use std::sync::Mutex;

#[derive(Default)]
struct State {
    /// The reader closed the pipe: print nothing more, and that is no error.
    closed: bool,
    /// The first failure to write that is not a closed pipe.
    failure: Option<String>,
}

static STATE: Mutex<State> = Mutex::new(State {
    closed: false,
    failure: None,
});

/// Writes `bytes` to stdout and flushes; a failure is kept for [`failure`].
pub fn write(bytes: &[u8]) {
    let mut state = STATE.lock().unwrap_or_else(|p| p.into_inner());
    if state.closed || state.failure.is_some() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let result = out.write_all(bytes).and_then(|()| out.flush());
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            state.closed = true;
        } else {
            state.failure = Some(format!("cannot write to standard output: {e}"));
        }
    }
}

/// Prints one line on stdout.
pub fn line(text: impl std::fmt::Display) {
    write(format!("{text}\n").as_bytes());
}

/// Why stdout could not be written, if it could not (a closed pipe is not a failure).
pub fn failure() -> Option<String> {
    STATE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .failure
        .clone()
}
