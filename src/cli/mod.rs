//! The headless face of sockbench: the same engine and model, no window.
//!
//! # Layout
//!
//! The command line goes through three stages, as ripgrep's flags do:
//!
//! 1. [`flags`]: clap's structs, raw strings only.
//! 2. [`request`]: [`parse`] gives the words meaning — addresses, payload
//!    notation, times, speeds — with no disk access; every mistake is one line
//!    and exit status 2, tested as a plain function.
//! 3. [`prepare`]: what needs the disk — session files, certificate files,
//!    `--save` and `-o` targets — is read and checked before any socket opens.
//!
//! Then [`run`] drives the engine (`drive`, `replay`) or prints (`check`,
//! `export`). Output goes through `console` (stdout, with its failures kept) and
//! the `note!` macro (stderr); a run ends with exactly one `error:` line when
//! something failed, and then the summary line. For scripts and CI, [`json`]
//! makes an event one JSON object (`--json`) and [`junit`] a check's results
//! JUnit XML (`replay --report junit`).

/// `eprintln!` that never panics: a closed or broken stderr (`2>&1 | head`)
/// must not turn a finished run into a crash.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod check;
mod console;
mod drive;
mod flags;
pub mod json;
pub mod junit;
pub mod output;
mod prepare;
mod replay;
mod request;
mod session_run;
mod stats;

pub use flags::Proto;
pub use prepare::{
    ConnectJob, ExportJob, ImportJob, Job, ListenJob, RelayJob, ReplayJob, RunJob, prepare,
};
pub use request::{
    Answer, ConnectRequest, ExportRequest, ListenRequest, Output, RelayRequest, ReplayRequest,
    Request, RunRequest, UsageError, parse,
};

/// Exit status: everything went as asked.
pub const EXIT_OK: i32 = 0;
/// Exit status: a replay check found a difference.
pub const EXIT_MISMATCH: i32 = 1;
/// Exit status: bad input (arguments, address, payload notation, session file).
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit status: the network said no (refused, unreachable, not resolved, reset, …).
pub const EXIT_NETWORK: i32 = 3;
/// Exit status: the run's output was lost: stdout or the `--save` file could
/// not be written.
pub const EXIT_OUTPUT: i32 = 4;

/// The errors of one run, said as one line, with the status of the worst.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    messages: Vec<String>,
    status: i32,
}

impl Errors {
    /// Adds an error with the exit status it calls for.
    pub fn add(&mut self, status: i32, message: impl Into<String>) {
        let message = message.into();
        if !self.messages.contains(&message) {
            self.messages.push(message);
        }
        self.status = self.status.max(status);
    }

    /// Raises the exit status without a message of its own.
    pub fn raise(&mut self, status: i32) {
        self.status = self.status.max(status);
    }

    /// The failure of stdout, if printing failed.
    pub fn add_console(&mut self) {
        if let Some(message) = console::failure() {
            self.add(EXIT_OUTPUT, message);
        }
    }

    /// Prints the one `error:` line (if any) and returns the exit status.
    pub fn finish(self) -> i32 {
        if !self.messages.is_empty() {
            note!("error: {}", escape(&self.messages.join("; ")));
        }
        self.status
    }
}

/// Text for a terminal line: control characters and bidi overrides escaped.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    crate::model::escape_controls(text)
}

/// Runs a prepared request on `runtime` and returns the exit status.
pub fn run(job: Job, runtime: &tokio::runtime::Runtime) -> i32 {
    match job {
        Job::Print(text) => {
            console::write(text.as_bytes());
            let mut errors = Errors::default();
            errors.add_console();
            errors.finish()
        }
        Job::Check(files) => check::run(&files),
        Job::Import(job) => {
            let mut errors = Errors::default();
            // The session itself may be going to stdout: the listing then goes to stderr.
            let to_stdout = job.output == crate::persist::SaveTarget::Stdout;
            for line in &job.listing {
                if to_stdout {
                    note!("{}", escape(line));
                } else {
                    console::line(escape(line));
                }
            }
            for note in &job.notes {
                note!("{}", escape(note));
            }
            if let Err(e) = job.output.save(&job.session) {
                errors.add(EXIT_OUTPUT, e.to_string());
            }
            errors.add_console();
            errors.finish()
        }
        Job::Connect(r) => runtime.block_on(drive::connect(r)),
        // On a worker, beside the connections: an event then wakes a task of
        // the same thread instead of unparking the main thread (a futex call
        // and a context switch per read under a flood).
        Job::Listen(r) => match runtime.block_on(runtime.spawn(drive::listen(r))) {
            Ok(status) => status,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => EXIT_NETWORK,
        },
        Job::Relay(r) => runtime.block_on(drive::relay(*r)),
        Job::Replay(r) => runtime.block_on(replay::replay(r)),
        Job::Run(r) => runtime.block_on(session_run::run(*r)),
        Job::Export(r) => {
            let mut errors = Errors::default();
            let write = |out: &mut dyn std::io::Write| {
                crate::export::write_to(&r.session, &r.name, r.format, r.endpoint.as_deref(), out)
            };
            match &r.output {
                crate::persist::SaveTarget::File(_) => {
                    if let Err(e) = crate::export::save(
                        &r.session,
                        &r.name,
                        r.format,
                        r.endpoint.as_deref(),
                        &r.output,
                    ) {
                        errors.add(EXIT_OUTPUT, e.to_string());
                    }
                }
                crate::persist::SaveTarget::Stdout => {
                    // Through the console, so a reader that went away (`| head`)
                    // ends the export quietly and a full disk is an error.
                    let mut out = std::io::BufWriter::with_capacity(256 * 1024, console::Writer);
                    let _ = write(&mut out);
                    errors.add_console();
                }
            }
            errors.finish()
        }
    }
}

/// Parses and prepares the command line; `Err` is the exit status after the
/// error line was printed. `Ok(None)`: the window is asked for, on that file.
pub fn parse_and_prepare(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<Result<Job, Option<std::path::PathBuf>>, i32> {
    let request = parse(args).map_err(|e| {
        report_usage_error(&e);
        EXIT_BAD_INPUT
    })?;
    if let Request::Window(file) = request {
        return Ok(Err(file));
    }
    prepare(request).map(Ok).map_err(|e| {
        report_usage_error(&e);
        EXIT_BAD_INPUT
    })
}

/// Prints a usage error the way every command does: one line, then the summary
/// line where the command promises one.
pub fn report_usage_error(e: &UsageError) {
    note!("error: {}", escape(&e.message));
    if e.summary {
        note!("{}", output::summary_line(&Default::default()));
    }
}
