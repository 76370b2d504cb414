//! Stage three of the command line: a validated [`Request`] meets the disk.
//! Session files are loaded, certificate files read, `--save` and `-o`
//! targets proved writable, and export text made — all before any socket
//! opens, so bad input is still exit 2 and one line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::flags::Proto;
use super::request::{
    ConnectRequest, ExportRequest, ListenRequest, Output, ReplayRequest, Request, UsageError, quote,
};

/// A `replay` ready to run: the plans made from the recording.
#[derive(Debug)]
pub struct ReplayJob {
    pub plans: Vec<crate::model::replay::EndpointPlan>,
    pub speed: f64,
    pub check: bool,
    pub timeout: Duration,
    pub save: Option<PathBuf>,
    pub quiet: bool,
}

/// An `export` ready to write: the text is made already.
#[derive(Debug)]
pub struct ExportJob {
    pub text: String,
    pub output: Output,
}

/// A request whose files have been read and checked.
#[derive(Debug)]
pub enum Job {
    Connect(ConnectRequest),
    Listen(ListenRequest),
    Replay(ReplayJob),
    Export(ExportJob),
    Check(Vec<PathBuf>),
    Print(String),
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
        Request::Replay(r) => replay(r).map(Job::Replay).map_err(summary),
        Request::Export(r) => export(r).map(Job::Export).map_err(|message| UsageError {
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

fn check_save(save: Option<&Path>) -> Result<(), String> {
    if let Some(path) = save {
        crate::persist::check_writable(path).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn connect(r: ConnectRequest) -> Result<ConnectRequest, String> {
    check_save(r.save.as_deref())?;
    if r.proto == Proto::Tls {
        // Unreadable or malformed certificate files are bad input, found before connecting.
        crate::engine::tls::check_ca_files(&r.tls.ca).map_err(|e| e.message)?;
    }
    Ok(r)
}

fn listen(r: ListenRequest) -> Result<ListenRequest, String> {
    check_save(r.save.as_deref())?;
    if r.proto == Proto::Tls && r.tls.cert.is_some() {
        // A key that is not the certificate's, or a file that is no PEM: bad input.
        crate::engine::tls::server(&r.tls).map_err(|e| e.message)?;
    }
    Ok(r)
}

fn replay(r: ReplayRequest) -> Result<ReplayJob, String> {
    if let Some(path) = &r.save {
        check_save(Some(path))?;
        if same_file(path, &r.file) {
            return Err(format!(
                "--save {}: that is the recording being replayed; save the replay to another file",
                path.display()
            ));
        }
    }
    let session = crate::persist::load(&r.file).map_err(|e| e.to_string())?;
    let plans =
        crate::model::replay::plan_session(&session, r.endpoint.as_deref(), r.target.as_ref())
            .map_err(|e| format!("{}: {e}", r.file.display()))?;
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
    Ok(ReplayJob {
        plans,
        speed: r.speed,
        check: r.check,
        timeout: r.timeout,
        save: r.save,
        quiet: r.quiet,
    })
}

fn export(r: ExportRequest) -> Result<ExportJob, String> {
    if let Output::File(path) = &r.output {
        crate::persist::check_writable(path).map_err(|e| e.to_string())?;
    }
    let session = crate::persist::load(&r.file).map_err(|e| e.to_string())?;
    let name = r
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "session".into());
    let text = crate::export::export(&session, &name, r.to, r.endpoint.as_deref())
        .map_err(|e| format!("{}: {e}", r.file.display()))?;
    Ok(ExportJob {
        text,
        output: r.output,
    })
}

/// Whether `a` and `b` name the same existing file (however they are spelled).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
