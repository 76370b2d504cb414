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

/// Standard output as a [`std::io::Write`] for streamed output (an export):
/// each write goes through [`write`], and once the reader went away or a
/// write failed, writes fail, so the writer stops making output nobody gets.
pub struct Writer;

impl std::io::Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        write(bytes);
        let state = STATE.lock().unwrap_or_else(|p| p.into_inner());
        if state.closed || state.failure.is_some() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "standard output is closed",
            ));
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
