//! Stage three of the command line: a validated [`Request`] meets the disk.
//! Session files are loaded, certificate files read, `--save` and `-o`
//! targets proved writable, and export text made — all before any socket
//! opens, so bad input is still exit 2 and one line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::flags::Proto;
use crate::persist::SaveTarget;

/// A `connect` ready to run: its `--save` target proved writable.
#[derive(Debug)]
pub struct ConnectJob {
    pub request: ConnectRequest,
    pub save: Option<SaveTarget>,
}

/// A `listen` ready to run: its `--save` target proved writable.
#[derive(Debug)]
pub struct ListenJob {
    pub request: ListenRequest,
    pub save: Option<SaveTarget>,
}
use super::request::{
    ConnectRequest, ExportRequest, ListenRequest, Output, RelayRequest, ReplayRequest, Request,
    RunRequest, UsageError, quote,
};

/// A `relay` ready to run: its certificate files read, its `--save` target proved writable.
#[derive(Debug)]
pub struct RelayJob {
    pub request: RelayRequest,
    pub save: Option<SaveTarget>,
}

/// A `replay` ready to run: the plans made from the recording.
#[derive(Debug)]
pub struct ReplayJob {
    pub plans: Vec<crate::model::replay::EndpointPlan>,
    pub speed: f64,
    pub check: bool,
    /// `--report junit FILE`, proved writable: the check's results for CI.
    pub junit: Option<std::path::PathBuf>,
    /// The session file, for the report's suite name.
    pub file: std::path::PathBuf,
    pub timeout: Duration,
    pub save: Option<SaveTarget>,
    pub quiet: bool,
    pub json: bool,
    /// A line of counts and rates on stderr every second.
    pub stats: bool,
    /// Said on stderr before the run: ignore rules that apply to no endpoint.
    pub warnings: Vec<String>,
    /// The replay log's budget: the flags, else the recording's own.
    pub budget: crate::model::LogBudget,
}

/// A `run` ready to start: the session read and its certificate files
/// checked, the endpoints to run chosen, the `--save` target proved writable.
#[derive(Debug)]
pub struct RunJob {
    /// The whole session (saved with the run's log in place of its own).
    pub session: Box<crate::model::Session>,
    /// Indices into `session.endpoints` of the endpoints to run, in order.
    pub selected: Vec<usize>,
    pub run_for: Option<Duration>,
    pub save: Option<SaveTarget>,
    pub quiet: bool,
    pub json: bool,
    pub stats: bool,
    /// The run's log budget: the flags, else the session's own.
    pub budget: crate::model::LogBudget,
}

/// An `export` ready to write: the session read and checked for the format,
/// the target proved writable. The export is written as it is made.
#[derive(Debug)]
pub struct ExportJob {
    /// Boxed: a whole session is much larger than the other jobs.
    pub session: Box<crate::model::Session>,
    /// The session's name (its file's stem), which a Python program keeps.
    pub name: String,
    pub format: crate::export::Format,
    pub endpoint: Option<String>,
    pub output: SaveTarget,
}

/// A request whose files have been read and checked.
#[derive(Debug)]
pub enum Job {
    Connect(ConnectJob),
    Listen(ListenJob),
    /// Boxed: a relay's settings are much larger than the other jobs.
    Relay(Box<RelayJob>),
    Replay(ReplayJob),
    /// Boxed: a whole session is much larger than the other jobs.
    Run(Box<RunJob>),
    Export(ExportJob),
    Check(Vec<PathBuf>),
    /// Boxed: a whole session is much larger than the other jobs.
    Import(Box<ImportJob>),
    Print(String),
}

/// An `import` ready to write: the capture read, the session made.
#[derive(Debug)]
pub struct ImportJob {
    /// One line per conversation found, then what was chosen.
    pub listing: Vec<String>,
    /// Said on stderr: what was imported, and anything left out.
    pub notes: Vec<String>,
    pub session: crate::model::Session,
    pub output: SaveTarget,
}

/// Reads and checks what `request` names on disk.
pub fn prepare(request: Request) -> Result<Job, UsageError> {
    match request {
        Request::Window(_) => Err(UsageError {
            message: "the window is launched by main, not the command line".into(),
            summary: false,
        }),
        Request::Print(text) => Ok(Job::Print(text)),
        Request::Check(files) => Ok(Job::Check(files)),
        Request::Connect(r) => connect(r).map(Job::Connect).map_err(summary),
        Request::Listen(r) => listen(r).map(Job::Listen).map_err(summary),
        Request::Relay(r) => relay(*r).map(|j| Job::Relay(Box::new(j))).map_err(summary),
        Request::Replay(r) => replay(r).map(Job::Replay).map_err(summary),
        Request::Run(r) => run(r).map(|j| Job::Run(Box::new(j))).map_err(summary),
        Request::Export(r) => export(r).map(Job::Export).map_err(|message| UsageError {
            message,
            summary: false,
        }),
        Request::Import(r) => import(r)
            .map(|j| Job::Import(Box::new(j)))
            .map_err(|message| UsageError {
                message,
                summary: false,
            }),
    }
}

fn summary(message: String) -> UsageError {
    UsageError {
        message,
        summary: true,
    }
}

/// Proves a `--save` target writable before the run (a real temporary file
/// is made beside it and removed); `-` and `/dev/stdout` write through.
fn check_save(save: Option<&Path>) -> Result<Option<SaveTarget>, String> {
    save.map(|path| crate::persist::prepare_save(path).map_err(|e| e.to_string()))
        .transpose()
}

fn connect(mut request: ConnectRequest) -> Result<ConnectJob, String> {
    let save = check_save(request.save.as_deref())?;
    // --send-file: regular files only, within the limit, read before any
    // socket opens (a directory, a fifo, a missing or a too large file is bad
    // input); each goes to its place among the payloads.
    for (at, path) in std::mem::take(&mut request.send_files) {
        let bytes =
            crate::persist::read_bounded(&path, crate::persist::PAYLOAD_FILE_LIMIT, "payload file")
                .map_err(|e| format!("--send-file {e}"))?;
        if bytes.is_empty() && request.proto != Proto::Udp {
            return Err(format!(
                "--send-file {}: the file is empty (TCP has no empty messages)",
                path.display()
            ));
        }
        request.payloads.insert(
            at.min(request.payloads.len()),
            crate::model::placeholder::Template::literal(&bytes),
        );
    }
    if request.proto == Proto::Tls {
        // Unreadable, malformed or non-file certificate files are bad input,
        // found before connecting.
        crate::engine::tls::check_ca_files(&request.tls.ca)
            .map_err(|e| format!("--ca {}", e.message))?;
    }
    Ok(ConnectJob { request, save })
}

fn listen(request: ListenRequest) -> Result<ListenJob, String> {
    let save = check_save(request.save.as_deref())?;
    if request.proto == Proto::Tls && request.tls.cert.is_some() {
        // A key that is not the certificate's, or a file that is no PEM: bad input.
        crate::engine::tls::server(&request.tls).map_err(|e| e.message)?;
    }
    Ok(ListenJob { request, save })
}

fn relay(request: RelayRequest) -> Result<RelayJob, String> {
    let save = check_save(request.save.as_deref())?;
    if request.proto == Proto::Tls {
        crate::engine::tls::check_ca_files(&request.tls_client.ca)
            .map_err(|e| format!("--ca {}", e.message))?;
        if request.tls_server.cert.is_some() {
            crate::engine::tls::server(&request.tls_server).map_err(|e| e.message)?;
        }
    }
    Ok(RelayJob { request, save })
}

fn replay(r: ReplayRequest) -> Result<ReplayJob, String> {
    let save = check_save(r.save.as_deref())?;
    if let Some(path) = &r.save
        && same_file(path, &r.file)
    {
        return Err(format!(
            "--save {}: that is the recording being replayed; save the replay to another file",
            path.display()
        ));
    }
    let junit = match &r.junit {
        None => None,
        Some(path) => {
            if same_file(path, &r.file)
                || r.save
                    .as_ref()
                    .is_some_and(|s| same_file(path, s) || s == path)
            {
                return Err(format!(
                    "--report {}: that is the recording or the --save file; write the report to a file of its own",
                    quote(&path.display().to_string())
                ));
            }
            match crate::persist::prepare_save(path).map_err(|e| e.to_string())? {
                SaveTarget::File(p) => Some(p),
                SaveTarget::Stdout => {
                    return Err(format!(
                        "--report {}: write the report to a file (standard output carries the events)",
                        quote(&path.display().to_string())
                    ));
                }
            }
        }
    };
    let mut session = crate::persist::load(&r.file).map_err(|e| e.to_string())?;
    session.ignore.extend(r.ignore);
    // A rule for an endpoint the session does not have (renamed by hand?)
    // would quietly check nothing: said before the run.
    let warnings: Vec<String> = session
        .ignore
        .iter()
        .filter(|rule| {
            rule.endpoint
                .as_deref()
                .is_some_and(|e| session.endpoint(e).is_none())
        })
        .map(|rule| format!("warning: the session has no such endpoint, so this ignore rule applies to nothing: {rule}"))
        .collect();
    // Certificate and key files the endpoints name are read now, bounded, so a
    // bad one is bad input before any socket opens.
    crate::engine::tls::check_session_files(&session)
        .map_err(|e| format!("{}: {}", r.file.display(), e.message))?;
    let mut plans = crate::model::replay::plan_session_as(
        &session,
        r.endpoint.as_deref(),
        r.target.as_ref(),
        r.relay_as,
    )
    .map_err(|e| format!("{}: {e}", r.file.display()))?;
    if r.unlink && !crate::engine::replay::allow_unlink(&mut plans) {
        return Err(
            "--unlink is for replaying a Unix server or a bound unix-dgram socket: it removes a stale socket file at the recorded path"
                .into(),
        );
    }
    // A Unix datagram client with nothing to send to is bad input. (A
    // socket path in use is an address in use: replay says it, exit 3,
    // before any socket opens.)
    crate::engine::replay::check_unix_remotes(&plans)
        .map_err(|e| format!("{}: {}", r.file.display(), e.message))?;
    if let (Some(t), Some(client)) = (
        &r.target,
        plans
            .iter()
            .find(|p| p.role == crate::model::replay::Role::Client),
    ) && t.port == 0
    {
        return Err(format!(
            "--target {}: {} replays as a client and needs the port to connect to (port 0 only suits a mock server)",
            quote(&t.to_string()),
            quote(client.name())
        ));
    }
    let budget = r
        .log
        .budget(r.quiet, save.is_some(), r.check, session.log_budget);
    Ok(ReplayJob {
        budget,
        plans,
        speed: r.speed,
        check: r.check,
        junit,
        file: r.file,
        timeout: r.timeout,
        save,
        quiet: r.quiet,
        json: r.json,
        stats: r.stats,
        warnings,
    })
}

fn run(r: RunRequest) -> Result<RunJob, String> {
    let save = check_save(r.save.as_deref())?;
    if let Some(path) = &r.save
        && same_file(path, &r.file)
    {
        return Err(format!(
            "--save {}: that is the session being run (its recording would be replaced); save the run to another file",
            quote(&path.display().to_string())
        ));
    }
    let mut session = crate::persist::load(&r.file).map_err(|e| e.to_string())?;
    crate::engine::tls::check_session_files(&session)
        .map_err(|e| format!("{}: {}", r.file.display(), e.message))?;
    let names = || {
        session
            .endpoints
            .iter()
            .map(|e| quote(&e.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if session.endpoints.is_empty() {
        return Err(format!(
            "{}: the session has no endpoints to run",
            r.file.display()
        ));
    }
    let mut selected = Vec::new();
    for name in &r.endpoints {
        match session.endpoints.iter().position(|e| &e.name == name) {
            Some(i) if !selected.contains(&i) => selected.push(i),
            Some(_) => {}
            None => {
                return Err(format!(
                    "--endpoint {}: {} has no endpoint of that name; its endpoints are {}",
                    quote(name),
                    r.file.display(),
                    names()
                ));
            }
        }
    }
    if selected.is_empty() {
        selected = (0..session.endpoints.len()).collect();
    }
    let budget = r
        .log
        .budget(r.quiet, save.is_some(), false, session.log_budget);
    // The run records a log of its own; the file's recording is not replayed.
    session.log = crate::model::log::TrafficLog::with_budget(budget);
    Ok(RunJob {
        session: Box::new(session),
        selected,
        run_for: r.run_for,
        save,
        quiet: r.quiet,
        json: r.json,
        stats: r.stats,
        budget,
    })
}

fn export(r: ExportRequest) -> Result<ExportJob, String> {
    let output = match &r.output {
        Output::Stdout => {
            use std::io::IsTerminal as _;
            if r.to.is_binary() && std::io::stdout().is_terminal() {
                return Err(format!(
                    "{} is binary: write it to a file with -o FILE, or pipe it (| tshark -r -)",
                    r.to.name()
                ));
            }
            SaveTarget::Stdout
        }
        Output::File(path) => crate::persist::prepare_save(path).map_err(|e| e.to_string())?,
    };
    let session = crate::persist::load(&r.file).map_err(|e| e.to_string())?;
    let name = r
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "session".into());
    crate::export::check(&session, r.to, r.endpoint.as_deref())
        .map_err(|e| format!("{}: {e}", r.file.display()))?;
    for line in crate::export::notes(&session, r.to) {
        note!("{line}");
    }
    Ok(ExportJob {
        session: Box::new(session),
        name,
        format: r.to,
        endpoint: r.endpoint,
        output,
    })
}

fn import(r: super::request::ImportRequest) -> Result<ImportJob, String> {
    use crate::capture::{self, Choice};
    let output = crate::persist::prepare_save(&r.output).map_err(|e| e.to_string())?;
    let (packets, stats) = capture::read_file(&r.capture).map_err(|e| e.to_string())?;
    let (found, left_out) = capture::conversations(&packets);
    let mut listing: Vec<String> = found
        .iter()
        .enumerate()
        .map(|(i, c)| format!("#{} {}", i + 1, c.describe()))
        .collect();
    let mut notes = Vec::new();
    if left_out > 0 {
        notes.push(format!(
            "note: {left_out} more conversations were not told apart (at most {} are)",
            capture::CONVERSATION_LIMIT
        ));
    }
    let name = r.capture.display().to_string();
    let chosen = capture::choose(&found, r.choice).map_err(|e| {
        let what = if found.is_empty() {
            format!(
                " ({} frame{} read, {} not TCP or UDP{})",
                stats.frames,
                if stats.frames == 1 { "" } else { "s" },
                stats.skipped + stats.fragments + stats.malformed,
                stats
                    .stopped
                    .as_deref()
                    .map(|s| format!("; {s}"))
                    .unwrap_or_default()
            )
        } else {
            String::new()
        };
        format!("{name}: {e}{what}")
    })?;
    let numbers: Vec<String> = chosen.iter().map(|i| format!("#{}", i + 1)).collect();
    listing.push(match r.choice {
        Choice::Largest => format!(
            "importing {} (the conversation with the most bytes; pick another with --conversation N)",
            numbers.join(", ")
        ),
        Choice::Number(_) => format!("importing {}", numbers.join(", ")),
        Choice::Port(p) => format!("importing {} (every conversation on port {p})", numbers.join(", ")),
    });
    let (session, report) = capture::to_session(&packets, &found, &chosen, &name);
    if let Some(stopped) = &stats.stopped {
        notes.push(format!(
            "note: {stopped}; the session holds what came before"
        ));
    }
    if stats.malformed > 0 || stats.fragments > 0 {
        notes.push(format!(
            "note: {} frame{} skipped: {} malformed or cut short, {} IP fragments (not reassembled)",
            stats.malformed + stats.fragments,
            if stats.malformed + stats.fragments == 1 { "" } else { "s" },
            stats.malformed,
            stats.fragments
        ));
    }
    if report.missing_bytes > 0 {
        notes.push(format!(
            "note: {} bytes were never captured; the session's notes and rows say where",
            report.missing_bytes
        ));
    }
    if report.left_out_bytes > 0 {
        notes.push(format!(
            "note: {} payload bytes beyond the import limit ({} MiB) were left out",
            report.left_out_bytes,
            capture::IMPORT_BYTES_LIMIT >> 20
        ));
    }
    Ok(ImportJob {
        listing,
        notes,
        session,
        output,
    })
}

/// Whether `a` and `b` name the same existing file (however they are spelled).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
