//! The headless face of sockbench: the same engine and model, no window.
//!
//! Raw input (flags, addresses, payload notation) becomes a validated
//! [`Request`] in one place, [`parse`]; every mistake there is one line on
//! stderr and exit status 2.

/// `eprintln!` that never panics: a closed or broken stderr (`2>&1 | head`)
/// must not turn a finished run into a crash.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod check;
mod drive;
pub mod output;
mod replay;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::model::{AddressError, HostPort, Notation, Payload};

/// Exit status: everything went as asked.
pub const EXIT_OK: i32 = 0;
/// Exit status: a replay check found a difference.
pub const EXIT_MISMATCH: i32 = 1;
/// Exit status: bad input (arguments, address, payload notation, session file).
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit status: the network said no (refused, unreachable, not resolved, reset, …).
pub const EXIT_NETWORK: i32 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "sockbench",
    version,
    about = "A workbench for sockets: TCP and UDP endpoints, a timestamped traffic log, replayable session files.",
    long_about = None,
    args_conflicts_with_subcommands = true,
)]
struct Cli {
    /// A session file to open in the workbench window (without a command).
    file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Connect to ADDR, send payloads in order, print everything that happens.
    Connect(ConnectArgs),
    /// Listen on ADDR, print everything that happens, optionally answer.
    Listen(ListenArgs),
    /// Replay a recorded session: clients send again, servers answer as recorded.
    Replay(ReplayArgs),
    /// Export a session: an endpoint as a Python program, the log as Mermaid or CSV.
    Export(ExportArgs),
    /// Check session files: each is read and validated, nothing runs.
    Check {
        /// Session files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// The transport of a command-line endpoint.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    /// TLS over TCP.
    Tls,
}

#[derive(clap::Args, Debug)]
struct ConnectArgs {
    /// tcp, udp or tls.
    proto: Proto,
    /// host:port or [v6addr]:port to connect (or send datagrams) to.
    #[arg(value_name = "ADDR")]
    addr: String,
    /// A payload in text notation (escapes \r \n \t \0 \\ \xNN \u{...}); repeatable.
    #[arg(long = "send", value_name = "TEXT", allow_hyphen_values = true)]
    send: Vec<String>,
    /// A payload in hex (48 65 6c, 0x48,0x65 or 48656C); repeatable.
    #[arg(long = "send-hex", value_name = "HEX", allow_hyphen_values = true)]
    send_hex: Vec<String>,
    /// TLS: also trust the certificates in this PEM file (an authority, or the
    /// server's own self-signed certificate); repeatable.
    #[arg(long = "ca", value_name = "FILE.pem")]
    ca: Vec<PathBuf>,
    /// TLS: do not verify the server's certificate at all (testing only).
    #[arg(long)]
    insecure: bool,
    /// TLS: the server name to send and check (default: the host of ADDR).
    #[arg(long, value_name = "NAME")]
    sni: Option<String>,
    /// TLS: application protocols to offer, comma-separated (h2,http/1.1).
    #[arg(long, value_name = "LIST")]
    alpn: Option<String>,
    /// After the last send, stop once this many seconds pass with no data.
    #[arg(
        long,
        value_name = "SECS",
        default_value = "1",
        allow_negative_numbers = true
    )]
    wait: String,
    /// Write a session file with the endpoint and its whole log.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Print no event lines (the summary line still goes to stderr).
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("answer").args(["echo", "reply", "reply_hex"])))]
struct ListenArgs {
    /// tcp, udp or tls.
    proto: Proto,
    /// host:port or [v6addr]:port to listen on (port 0 picks a free port).
    #[arg(value_name = "ADDR")]
    addr: String,
    /// Send every received payload back to its sender.
    #[arg(long)]
    echo: bool,
    /// Answer each received payload with this payload (text notation).
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    reply: Option<String>,
    /// Answer each received payload with this payload (hex).
    #[arg(long = "reply-hex", value_name = "HEX", allow_hyphen_values = true)]
    reply_hex: Option<String>,
    /// TLS: the certificate chain to present (PEM); without it, a self-signed
    /// certificate for localhost, 127.0.0.1 and ::1 is made.
    #[arg(long, value_name = "FILE.pem")]
    cert: Option<PathBuf>,
    /// TLS: the private key of --cert (PEM).
    #[arg(long, value_name = "FILE.pem")]
    key: Option<PathBuf>,
    /// TLS: application protocols to accept, comma-separated (h2,http/1.1).
    #[arg(long, value_name = "LIST")]
    alpn: Option<String>,
    /// Stop after this many seconds.
    #[arg(long = "for", value_name = "SECS", allow_negative_numbers = true)]
    for_secs: Option<String>,
    /// Stop after the first peer has gone (TCP) or the first datagram is answered (UDP).
    #[arg(long)]
    once: bool,
    /// Write a session file with the endpoint and its whole log.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Print no event lines (the summary line still goes to stderr).
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// The session file with the recording.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Connect to (client) or listen on (server) this address instead of the recorded one.
    #[arg(long, value_name = "ADDR")]
    target: Option<String>,
    /// Replay only this endpoint of the session.
    #[arg(long, value_name = "NAME")]
    endpoint: Option<String>,
    /// 1 plays the recorded timing, 2 twice as fast, 0 without waiting.
    #[arg(
        long,
        value_name = "X",
        default_value = "1",
        allow_negative_numbers = true
    )]
    speed: String,
    /// Compare what comes back with the recording; exit 1 on a difference.
    #[arg(long)]
    check: bool,
    /// How long to wait for data the recording says comes next.
    #[arg(
        long,
        value_name = "SECS",
        default_value = "5",
        allow_negative_numbers = true
    )]
    timeout: String,
    /// Write a session file with the replayed endpoints and the new log.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Print no event lines (the summary line still goes to stderr).
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct ExportArgs {
    /// The session file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// python: an endpoint as a program (standard socket module); mermaid: the
    /// log as a sequence diagram; csv: the log as a table.
    #[arg(long = "to", value_enum, value_name = "FORMAT")]
    to: crate::export::Format,
    /// Write here instead of to stdout.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<PathBuf>,
    /// The endpoint of a Python program (default: the first client with recorded payloads).
    #[arg(long, value_name = "NAME")]
    endpoint: Option<String>,
}

/// A validated `export`: the text is made already; only writing it is left.
#[derive(Debug)]
pub struct ExportRequest {
    pub text: String,
    pub output: Option<PathBuf>,
}

/// A validated `replay`.
#[derive(Debug)]
pub struct ReplayRequest {
    pub plans: Vec<crate::model::replay::EndpointPlan>,
    pub speed: f64,
    pub check: bool,
    pub timeout: Duration,
    pub save: Option<PathBuf>,
    pub quiet: bool,
}

/// A validated `connect`.
#[derive(Debug)]
pub struct ConnectRequest {
    pub proto: Proto,
    pub remote: HostPort,
    /// For `tls`: how the server is checked.
    pub tls: crate::model::TlsClientSettings,
    /// Payloads in command-line order.
    pub payloads: Vec<Vec<u8>>,
    pub wait: Duration,
    pub save: Option<PathBuf>,
    pub quiet: bool,
}

/// How `listen` answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    None,
    Echo,
    Reply(Payload),
}

/// A validated `listen`.
#[derive(Debug)]
pub struct ListenRequest {
    pub proto: Proto,
    pub local: HostPort,
    /// For `tls`: what the server presents.
    pub tls: crate::model::TlsServerSettings,
    pub answer: Answer,
    pub run_for: Option<Duration>,
    pub once: bool,
    pub save: Option<PathBuf>,
    pub quiet: bool,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Request {
    /// Open the workbench window, on a file if given.
    Window(Option<PathBuf>),
    Connect(ConnectRequest),
    Listen(ListenRequest),
    Replay(ReplayRequest),
    Export(ExportRequest),
    Check(Vec<PathBuf>),
    /// Print this text to stdout and exit 0 (help, version).
    Print(String),
}

/// A command-line mistake: one line for stderr. `summary` says whether the
/// command was one that always ends with a summary line.
#[derive(Debug)]
pub struct UsageError {
    pub message: String,
    pub summary: bool,
}

fn parse_secs(flag: &str, value: &str) -> Result<Duration, String> {
    let secs: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{flag} \"{value}\" is not a number of seconds"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{flag} {value}: give zero or more seconds"));
    }
    if secs > 366.0 * 24.0 * 3600.0 {
        return Err(format!(
            "{flag} {value}: more than a year is not a useful time"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `h2,http/1.1` → the protocol names, in order.
fn parse_alpn(value: Option<&str>) -> Result<Vec<String>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = value.split(',').map(|s| s.trim().to_owned()).collect();
    if let Some(bad) = names
        .iter()
        .find(|n| n.is_empty() || n.len() > 255 || !n.is_ascii())
    {
        return Err(format!(
            "--alpn \"{value}\": \"{bad}\" is not a protocol name (ASCII, 1 to 255 bytes, comma-separated)"
        ));
    }
    Ok(names)
}

fn parse_addr(value: &str, connecting: bool) -> Result<HostPort, String> {
    let hp: HostPort = value
        .parse()
        .map_err(|e: AddressError| format!("address \"{value}\": {e}"))?;
    if connecting {
        hp.require_port()
            .map_err(|e| format!("address \"{value}\": {e}"))
    } else {
        Ok(hp)
    }
}

fn parse_payload(flag: &str, n: usize, notation: Notation, value: &str) -> Result<Vec<u8>, String> {
    notation
        .parse(value)
        .map_err(|e| format!("{flag} #{n} \"{value}\": {e}"))
}

/// Turns the command line into a validated request.
pub fn parse<I, T>(args: I) -> Result<Request, UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let command = args
        .get(1)
        .and_then(|a| a.to_str())
        .unwrap_or_default()
        .to_owned();
    let summary = matches!(command.as_str(), "connect" | "listen" | "replay");
    let usage = |message: String| UsageError { message, summary };

    if matches!(command.as_str(), "connect" | "listen") {
        flag_as_value(&command, &args).map_err(usage)?;
    }

    // `sockbench FILE` opens the window; anything after a word that is not a
    // command means a mistyped command, which clap would explain confusingly.
    let known = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .chain(["help".to_owned()])
        .collect::<Vec<_>>();
    if args.len() > 2 && !command.starts_with('-') && !known.contains(&command) {
        return Err(usage(format!(
            "\"{command}\" is not a command (the commands are {}); to open a session file in the window, give only its path",
            known[..known.len() - 1].join(", ")
        )));
    }

    let matches = match Cli::command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind as K;
            if matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
                return Ok(Request::Print(e.render().to_string()));
            }
            if e.kind() == K::DisplayHelpOnMissingArgumentOrSubcommand {
                return Err(usage(format!(
                    "{command}: missing arguments; see sockbench {command} --help"
                )));
            }
            // clap explains over several lines, then shows usage; what is wrong
            // comes before the usage, and fits on one line.
            let rendered = e.render().to_string();
            let what: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.starts_with("Usage:"))
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
                .collect();
            let line = what.join(" ");
            let line = line.trim_start_matches("error: ");
            return Err(usage(if line.is_empty() {
                "invalid arguments".into()
            } else {
                line.to_owned()
            }));
        }
    };
    let cli = Cli::from_arg_matches(&matches).map_err(|e| usage(e.to_string()))?;

    match cli.command {
        None => Ok(Request::Window(cli.file)),
        Some(Command::Check { files }) => Ok(Request::Check(files)),
        Some(Command::Connect(a)) => {
            let sub = matches
                .subcommand_matches("connect")
                .ok_or_else(|| usage("connect: arguments missing".into()))?;
            let remote = parse_addr(&a.addr, true).map_err(usage)?;
            // --send and --send-hex interleave in command-line order.
            let mut ordered: Vec<(usize, Vec<u8>)> = Vec::new();
            let text_at = sub
                .indices_of("send")
                .map(|i| i.collect::<Vec<_>>())
                .unwrap_or_default();
            let hex_at = sub
                .indices_of("send_hex")
                .map(|i| i.collect::<Vec<_>>())
                .unwrap_or_default();
            for (n, (value, at)) in a.send.iter().zip(text_at).enumerate() {
                ordered.push((
                    at,
                    parse_payload("--send", n + 1, Notation::Text, value).map_err(usage)?,
                ));
            }
            for (n, (value, at)) in a.send_hex.iter().zip(hex_at).enumerate() {
                ordered.push((
                    at,
                    parse_payload("--send-hex", n + 1, Notation::Hex, value).map_err(usage)?,
                ));
            }
            ordered.sort_by_key(|(at, _)| *at);
            let wait = parse_secs("--wait", &a.wait).map_err(usage)?;
            if let Some(path) = &a.save {
                crate::persist::check_writable(path).map_err(|e| usage(e.to_string()))?;
            }
            let tls_flags = !a.ca.is_empty() || a.insecure || a.sni.is_some() || a.alpn.is_some();
            if tls_flags && a.proto != Proto::Tls {
                return Err(usage(
                    "--ca, --insecure, --sni and --alpn are for tls: write connect tls ADDR".into(),
                ));
            }
            if let Some(sni) = &a.sni
                && rustls::pki_types::ServerName::try_from(sni.as_str()).is_err()
            {
                return Err(usage(format!(
                    "--sni \"{sni}\": not a server name (a DNS name or an IP address)"
                )));
            }
            if let Some(missing) = a.ca.iter().find(|p| !p.is_file()) {
                return Err(usage(format!("--ca {}: no such file", missing.display())));
            }
            let tls = crate::model::TlsClientSettings {
                ca: a.ca,
                insecure: a.insecure,
                sni: a.sni,
                alpn: parse_alpn(a.alpn.as_deref()).map_err(usage)?,
                pin: None,
            };
            if a.proto == Proto::Tls {
                // Unreadable or malformed certificate files are bad input, found before connecting.
                crate::engine::tls::check_ca_files(&tls.ca).map_err(|e| usage(e.message))?;
            }
            Ok(Request::Connect(ConnectRequest {
                proto: a.proto,
                remote,
                tls,
                payloads: ordered.into_iter().map(|(_, p)| p).collect(),
                wait,
                save: a.save,
                quiet: a.quiet,
            }))
        }
        Some(Command::Export(a)) => {
            if let Some(path) = &a.output {
                crate::persist::check_writable(path).map_err(|e| usage(e.to_string()))?;
            }
            let session = crate::persist::load(&a.file).map_err(|e| usage(e.to_string()))?;
            let name = a
                .file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "session".into());
            let text = crate::export::export(&session, &name, a.to, a.endpoint.as_deref())
                .map_err(|e| usage(format!("{}: {e}", a.file.display())))?;
            Ok(Request::Export(ExportRequest {
                text,
                output: a.output,
            }))
        }
        Some(Command::Replay(a)) => {
            let target = a
                .target
                .as_deref()
                .map(|t| parse_addr(t, false))
                .transpose()
                .map_err(usage)?;
            let speed: f64 = a
                .speed
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && (0.0..=1000.0).contains(s))
                .ok_or_else(|| {
                    usage(format!(
                        "--speed {}: give a number from 0 (no waits) to 1000",
                        a.speed
                    ))
                })?;
            let timeout = parse_secs("--timeout", &a.timeout).map_err(usage)?;
            if let Some(path) = &a.save {
                crate::persist::check_writable(path).map_err(|e| usage(e.to_string()))?;
                if same_file(path, &a.file) {
                    return Err(usage(format!(
                        "--save {}: that is the recording being replayed; save the replay to another file",
                        path.display()
                    )));
                }
            }
            let session = crate::persist::load(&a.file).map_err(|e| usage(e.to_string()))?;
            let plans = crate::model::replay::plan_session(
                &session,
                a.endpoint.as_deref(),
                target.as_ref(),
            )
            .map_err(|e| usage(format!("{}: {e}", a.file.display())))?;
            if let (Some(t), Some(client)) = (
                &target,
                plans
                    .iter()
                    .find(|p| p.role == crate::model::replay::Role::Client),
            ) && t.port == 0
            {
                return Err(usage(format!(
                    "--target {}: \"{}\" replays as a client and needs the port to connect to (port 0 only suits a mock server)",
                    a.target.as_deref().unwrap_or_default(),
                    client.name()
                )));
            }
            Ok(Request::Replay(ReplayRequest {
                plans,
                speed,
                check: a.check,
                timeout,
                save: a.save,
                quiet: a.quiet,
            }))
        }
        Some(Command::Listen(a)) => {
            let local = parse_addr(&a.addr, false).map_err(usage)?;
            let answer = if a.echo {
                Answer::Echo
            } else if let Some(text) = &a.reply {
                Answer::Reply(Payload::new(
                    parse_payload("--reply", 1, Notation::Text, text).map_err(usage)?,
                ))
            } else if let Some(hex) = &a.reply_hex {
                Answer::Reply(Payload::new(
                    parse_payload("--reply-hex", 1, Notation::Hex, hex).map_err(usage)?,
                ))
            } else {
                Answer::None
            };
            let run_for = a
                .for_secs
                .as_deref()
                .map(|v| parse_secs("--for", v))
                .transpose()
                .map_err(usage)?;
            if let Some(path) = &a.save {
                crate::persist::check_writable(path).map_err(|e| usage(e.to_string()))?;
            }
            let tls_flags = a.cert.is_some() || a.key.is_some() || a.alpn.is_some();
            if tls_flags && a.proto != Proto::Tls {
                return Err(usage(
                    "--cert, --key and --alpn are for tls: write listen tls ADDR".into(),
                ));
            }
            if a.cert.is_some() != a.key.is_some() {
                return Err(usage(if a.cert.is_some() {
                    "--cert needs --key: the private key of the certificate".into()
                } else {
                    "--key needs --cert: the certificate of the key".into()
                }));
            }
            if let Some(missing) = [&a.cert, &a.key]
                .into_iter()
                .flatten()
                .find(|p| !p.is_file())
            {
                return Err(usage(format!("{}: no such file", missing.display())));
            }
            let tls = crate::model::TlsServerSettings {
                cert: a.cert,
                key: a.key,
                alpn: parse_alpn(a.alpn.as_deref()).map_err(usage)?,
            };
            if a.proto == Proto::Tls && tls.cert.is_some() {
                // A key that is not the certificate's, or a file that is no PEM: bad input.
                crate::engine::tls::server(&tls).map_err(|e| usage(e.message))?;
            }
            Ok(Request::Listen(ListenRequest {
                proto: a.proto,
                local,
                tls,
                answer,
                run_for,
                once: a.once,
                save: a.save,
                quiet: a.quiet,
            }))
        }
    }
}

/// Payload flags take values starting with `-` (`--send -x`), so a forgotten
/// value would swallow the next flag (`--send --wait 2` sending "--wait").
/// A payload flag followed by one of the command's own flags, as two words,
/// is taken as that mistake; `--send=--wait` still sends the text.
fn flag_as_value(command: &str, args: &[OsString]) -> Result<(), String> {
    let cli = Cli::command();
    let Some(sub) = cli.find_subcommand(command) else {
        return Ok(());
    };
    let is_flag = |v: &str| {
        v.strip_prefix("--")
            .is_some_and(|name| sub.get_arguments().any(|a| a.get_long() == Some(name)))
    };
    for pair in args.windows(2) {
        let (flag, value) = (pair[0].to_string_lossy(), pair[1].to_string_lossy());
        if matches!(&*flag, "--send" | "--send-hex" | "--reply" | "--reply-hex") && is_flag(&value)
        {
            return Err(format!(
                "{flag} needs a value, but the next word is the flag {value} (to send that very text, write {flag}={value})"
            ));
        }
    }
    Ok(())
}

/// Whether `a` and `b` name the same existing file (however they are spelled).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Runs a headless request on `runtime` and returns the exit status.
pub fn run(request: Request, runtime: &tokio::runtime::Runtime) -> i32 {
    match request {
        Request::Print(text) => {
            use std::io::Write as _;
            let _ = std::io::stdout().write_all(text.as_bytes());
            EXIT_OK
        }
        Request::Check(files) => check::run(&files),
        Request::Connect(r) => runtime.block_on(drive::connect(r)),
        Request::Listen(r) => runtime.block_on(drive::listen(r)),
        Request::Replay(r) => runtime.block_on(replay::replay(r)),
        Request::Export(r) => match &r.output {
            Some(path) => match crate::persist::write_atomic(path, r.text.as_bytes()) {
                Ok(()) => EXIT_OK,
                Err(e) => {
                    note!("error: {e}");
                    EXIT_BAD_INPUT
                }
            },
            None => {
                use std::io::Write as _;
                let _ = std::io::stdout().write_all(r.text.as_bytes());
                EXIT_OK
            }
        },
        Request::Window(file) => run_window(file, runtime),
    }
}

/// Opens the workbench window and returns when it is closed.
fn run_window(file: Option<PathBuf>, runtime: &tokio::runtime::Runtime) -> i32 {
    if let Some(path) = &file
        && !path.exists()
    {
        note!("error: {}: no such file", path.display());
        return EXIT_BAD_INPUT;
    }
    let config = crate::app::AppConfig::for_desktop(runtime.handle().clone(), file);
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("sockbench")
            .with_app_id(crate::app::APP_ID)
            .with_inner_size([1400.0, 900.0])
            .with_min_inner_size([800.0, 500.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    let result = eframe::run_native(
        crate::app::APP_ID,
        options,
        Box::new(move |cc| Ok(Box::new(crate::app::App::new(cc, config)))),
    );
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            note!("error: the window could not open (is there a display?): {e}");
            EXIT_BAD_INPUT
        }
    }
}

/// Prints a usage error the way every command does: one line, then the summary
/// line where the command promises one.
pub fn report_usage_error(e: &UsageError) {
    note!("error: {}", e.message);
    if e.summary {
        note!("{}", output::summary_line(&Default::default()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(args: &[&str]) -> Request {
        let mut all = vec!["sockbench"];
        all.extend_from_slice(args);
        parse(all).unwrap()
    }

    fn parse_err(args: &[&str]) -> String {
        let mut all = vec!["sockbench"];
        all.extend_from_slice(args);
        parse(all).unwrap_err().message
    }

    #[test]
    fn payloads_may_start_with_a_hyphen_but_a_forgotten_value_is_caught() {
        let Request::Connect(r) = parse_ok(&[
            "connect",
            "tcp",
            "127.0.0.1:7",
            "--send",
            "-x",
            "--send=--wait",
        ]) else {
            panic!("not a connect")
        };
        assert_eq!(r.payloads, vec![b"-x".to_vec(), b"--wait".to_vec()]);
        let e = parse_err(&["connect", "tcp", "127.0.0.1:7", "--send", "--wait", "2"]);
        assert!(e.contains("--send needs a value"), "{e}");
        let e = parse_err(&["listen", "tcp", "127.0.0.1:7", "--reply", "--once"]);
        assert!(e.contains("--reply needs a value"), "{e}");
    }

    #[test]
    fn sends_keep_command_line_order() {
        let Request::Connect(r) = parse_ok(&[
            "connect",
            "tcp",
            "127.0.0.1:7",
            "--send",
            "a",
            "--send-hex",
            "62",
            "--send",
            "c\\n",
        ]) else {
            panic!("not a connect")
        };
        assert_eq!(
            r.payloads,
            vec![b"a".to_vec(), b"b".to_vec(), b"c\n".to_vec()]
        );
        assert_eq!(r.wait, Duration::from_secs(1));
    }

    #[test]
    fn window_and_check() {
        assert!(matches!(parse_ok(&[]), Request::Window(None)));
        assert!(matches!(parse_ok(&["x.ron"]), Request::Window(Some(_))));
        assert!(
            matches!(parse_ok(&["check", "a.ron", "b.ron"]), Request::Check(f) if f.len() == 2)
        );
        assert!(matches!(parse_ok(&["--help"]), Request::Print(_)));
    }

    #[test]
    fn bad_input_is_one_clear_line() {
        assert_eq!(
            parse_err(&["connect", "tcp", "127.0.0.1:70000"]),
            "address \"127.0.0.1:70000\": port 70000 is out of range: ports go from 0 to 65535"
        );
        assert_eq!(
            parse_err(&["connect", "tcp", "127.0.0.1:0"]),
            "address \"127.0.0.1:0\": port 0 only makes sense for listening: give the port to connect to"
        );
        assert_eq!(
            parse_err(&["connect", "tcp", "127.0.0.1:7", "--send-hex", "4g"]),
            "--send-hex #1 \"4g\": at position 2: 'g' is not a hex digit"
        );
        assert_eq!(
            parse_err(&[
                "connect",
                "tcp",
                "127.0.0.1:7",
                "--send",
                "ok",
                "--send",
                "\\q"
            ]),
            "--send #2 \"\\q\": at position 2: \"\\q\" is not a known escape (use \\r \\n \\t \\0 \\\\ \\xNN or \\u{...})"
        );
        assert_eq!(
            parse_err(&["connect", "tcp", "127.0.0.1:7", "--wait", "-1"]),
            "--wait -1: give zero or more seconds"
        );
        assert!(parse_err(&["connect", "sctp", "127.0.0.1:7"]).contains("sctp"));
        assert!(
            parse_err(&["listen", "tcp", "127.0.0.1:7", "--echo", "--reply", "x"])
                .contains("cannot be used with")
        );
        let e = parse(["sockbench", "connect", "tcp", "nohost"]).unwrap_err();
        assert!(e.summary);
        assert_eq!(
            e.message,
            "address \"nohost\": \"nohost\" has no port: write host:port, for example nohost:7000"
        );
        let e = parse(["sockbench", "check"]).unwrap_err();
        assert!(!e.summary);
    }

    #[test]
    fn listen_answers() {
        let Request::Listen(r) = parse_ok(&[
            "listen",
            "udp",
            "[::1]:0",
            "--reply-hex",
            "0x41",
            "--for",
            "2.5",
        ]) else {
            panic!("not a listen")
        };
        assert_eq!(r.answer, Answer::Reply(Payload::from("A")));
        assert_eq!(r.run_for, Some(Duration::from_millis(2500)));
        assert_eq!(r.local, HostPort::new("::1", 0));
    }
}
