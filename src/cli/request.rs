//! Stage two of the command line: the raw words become a validated
//! [`Request`], with no disk access and no network, so every mistake a person
//! can type is found here, said in one line, and tested as a plain function.
//!
//! What needs the disk (loading a session, reading certificates, proving a
//! `--save` folder writable) happens in [`super::prepare`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};

use super::flags::{
    AsArg, Cli, Command, LogArgs, OnOff, OverflowArg, Proto, RelayArgs, UdpArgs, WayArg,
};
use crate::model::endpoint::{RegexText, Rule, Trigger};
use crate::model::framing::ReceiveFraming;
use crate::model::placeholder::{self, Template};
use crate::model::{AutoReply, HostPort, LogBudget, Notation, Overflow, Payload, UnixPath};

/// A command-line mistake: one line for stderr. `summary` says whether the
/// command was one that always ends with a summary line.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageError {
    pub message: String,
    pub summary: bool,
}

/// A validated `connect`.
#[derive(Debug)]
pub struct ConnectRequest {
    pub proto: Proto,
    /// Where to connect (IP protocols; empty for unix and unix-dgram).
    pub remote: HostPort,
    /// unix, unix-dgram: the socket to connect (or send) to, and for
    /// unix-dgram the name to bind (`--bind`).
    /// (Boxed: it would make every request as large.)
    pub unix: Option<Box<(UnixPath, Option<UnixPath>)>>,
    /// For `tls`: how the server is checked.
    pub tls: crate::model::TlsClientSettings,
    /// Payloads in command-line order, as templates: `--send` text may hold
    /// placeholders (a counter counts the `--repeat` rounds), `--send-hex` and
    /// `--send-file` are exact. `--send-file` payloads are read by
    /// [`super::prepare`] (this stage has no disk access) and put in their place.
    pub payloads: Vec<Template>,
    /// `--send-file` paths, each with the place in `payloads` its bytes take
    /// (in increasing order); empty once prepared.
    pub send_files: Vec<(usize, PathBuf)>,
    /// How many times the payloads go out (`None`: until stopped).
    pub repeat: Option<u64>,
    /// From the start of one round to the next.
    pub interval: Duration,
    pub wait: Duration,
    /// UDP: an unconnected socket (hears anyone, never told of a closed port).
    pub unconnected: bool,
    /// `--bind`: the local address (and port) bound before connecting.
    pub bind: Option<HostPort>,
    /// UDP: SO_BROADCAST and multicast (boxed: most connects are not UDP).
    pub udp: Box<UdpFlags>,
    /// How long connecting and the TLS handshake may take (the endpoint's default when absent).
    pub connect_timeout: Option<Duration>,
    /// TCP and TLS: the proxy to go through.
    pub proxy: Option<crate::model::proxy::Proxy>,
    /// TCP and TLS: connect again after a failure or an end.
    pub reconnect: Option<crate::model::proxy::Reconnect>,
    pub save: Option<PathBuf>,
    pub quiet: bool,
    /// One JSON object per event on stdout instead of the event lines.
    pub json: bool,
    pub log: LogFlags,
    /// A line of totals and rates on stderr every second.
    pub stats: bool,
}

/// How `listen` answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    None,
    Echo,
    Reply(Payload),
    /// `--rule`s, with the framing that cuts messages for them.
    Rules {
        rules: Vec<Rule>,
        framing: ReceiveFraming,
        max_message: Option<std::num::NonZeroU32>,
    },
}

/// A validated `listen`.
#[derive(Debug)]
pub struct ListenRequest {
    pub proto: Proto,
    /// Where to listen (IP protocols; empty for unix and unix-dgram).
    pub local: HostPort,
    /// unix, unix-dgram: the socket path to listen on.
    pub unix: Option<UnixPath>,
    /// unix, unix-dgram: remove a stale socket file at the path first.
    pub unlink: bool,
    /// For `tls`: what the server presents.
    pub tls: crate::model::TlsServerSettings,
    pub answer: Answer,
    pub run_for: Option<Duration>,
    pub once: bool,
    /// TCP, TLS: the most peers connected at once.
    pub max_peers: Option<u32>,
    /// UDP: SO_BROADCAST, and the multicast groups joined at start.
    pub udp: UdpFlags,
    pub save: Option<PathBuf>,
    pub quiet: bool,
    /// One JSON object per event on stdout instead of the event lines.
    pub json: bool,
    pub log: LogFlags,
    /// A line of totals and rates on stderr every second.
    pub stats: bool,
}

/// A validated `relay`.
#[derive(Debug)]
pub struct RelayRequest {
    pub proto: Proto,
    pub listen: HostPort,
    pub upstream: HostPort,
    /// For `tls`: what the relay presents to clients.
    pub tls_server: crate::model::TlsServerSettings,
    /// For `tls`: how the relay checks the upstream.
    pub tls_client: crate::model::TlsClientSettings,
    pub impair: crate::model::impair::Impairments,
    /// One JSON object per event instead of the lines.
    pub json: bool,
    pub connect_timeout: Option<Duration>,
    pub max_peers: Option<u32>,
    pub run_for: Option<Duration>,
    pub save: Option<PathBuf>,
    pub quiet: bool,
    pub log: LogFlags,
}

/// A validated `replay`; the file is read by [`super::prepare`].
#[derive(Debug)]
pub struct ReplayRequest {
    pub file: PathBuf,
    pub target: Option<HostPort>,
    pub endpoint: Option<String>,
    /// A relay's recording: which side to replay.
    pub relay_as: Option<crate::model::replay::RelayAs>,
    pub speed: f64,
    pub check: bool,
    /// `--unlink`: a Unix mock may remove a stale socket file at its path.
    pub unlink: bool,
    /// `--ignore` and `--ignore-bytes`: rules added to the session's own.
    pub ignore: Vec<crate::model::ignore::IgnoreRule>,
    /// `--report junit FILE`: where the check's results go for CI.
    pub junit: Option<PathBuf>,
    pub timeout: Duration,
    pub save: Option<PathBuf>,
    pub quiet: bool,
    /// One JSON object per event (and per checked conversation) on stdout.
    pub json: bool,
    /// A line of counts and rates on stderr every second.
    pub stats: bool,
    pub log: LogFlags,
}

/// A validated `run`; the session file is read by [`super::prepare`].
#[derive(Debug)]
pub struct RunRequest {
    pub file: PathBuf,
    /// `--endpoint`: the names to run (empty: every endpoint).
    pub endpoints: Vec<String>,
    pub run_for: Option<Duration>,
    pub save: Option<PathBuf>,
    pub quiet: bool,
    pub json: bool,
    pub stats: bool,
    pub log: LogFlags,
}

/// A UDP socket's `--broadcast` and multicast flags, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UdpFlags {
    pub broadcast: bool,
    pub multicast: crate::model::multicast::Multicast,
}

impl UdpFlags {
    /// Puts the flags into an endpoint's options.
    pub fn apply(&self, options: &mut crate::model::SocketOptions) {
        options.broadcast = self.broadcast;
        options.multicast = self.multicast.clone();
    }
}

/// `--broadcast`, `--join`, `--iface`, `--multicast-ttl`, `--multicast-loop`:
/// only for udp; groups of the local address's family when it is an IP.
fn udp_flags(
    a: &UdpArgs,
    join: &[String],
    proto: Proto,
    local: Option<&HostPort>,
) -> Result<UdpFlags, String> {
    use crate::model::multicast::{Interface, MAX_TTL, Multicast, parse_group};
    let given = a.broadcast
        || a.iface.is_some()
        || a.multicast_ttl.is_some()
        || a.multicast_loop.is_some()
        || !join.is_empty();
    if given && proto != Proto::Udp {
        return Err(
            "--broadcast, --join, --iface, --multicast-ttl and --multicast-loop are for udp: TCP has no broadcast or multicast"
                .into(),
        );
    }
    let mut groups = Vec::new();
    for g in join {
        let group = parse_group(g).map_err(|e| format!("--join: {}", super::escape(&e)))?;
        if let Some(ip) = local.and_then(HostPort::ip)
            && !ip.is_unspecified()
            && ip.is_ipv4() != group.is_ipv4()
        {
            return Err(format!(
                "--join {group}: an IPv{} group, and the socket's address {ip} is IPv{}: give an address of the group's family",
                if group.is_ipv4() { 4 } else { 6 },
                if ip.is_ipv4() { 4 } else { 6 },
            ));
        }
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    let iface = a
        .iface
        .as_deref()
        .map(|i| Interface::parse(i).map_err(|e| format!("--iface: {}", super::escape(&e))))
        .transpose()?;
    let ttl = match a.multicast_ttl.as_deref().map(str::trim) {
        None => None,
        Some(t) => match t.parse::<u32>() {
            Ok(n) if n <= MAX_TTL => Some(n),
            _ => {
                return Err(format!(
                    "--multicast-ttl {}: give a whole number of routers, 0 to {MAX_TTL}",
                    quote(t)
                ));
            }
        },
    };
    Ok(UdpFlags {
        broadcast: a.broadcast,
        multicast: Multicast {
            groups,
            iface,
            ttl,
            loopback: a.multicast_loop.map(|l| l == OnOff::On),
        },
    })
}

/// `--log-budget` and `--log-overflow`, each absent when not given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogFlags {
    pub budget: Option<u64>,
    pub overflow: Option<Overflow>,
}

impl LogFlags {
    /// The log budget of a headless run. A run that never reads its payloads
    /// again (`--quiet`, no `--save`, no `--check`) keeps counts only; else
    /// the flags, then `base` (a session's own budget), then the default.
    /// A check compares every received byte, so it spills rather than drops.
    pub fn budget(
        self,
        quiet: bool,
        save: bool,
        check: bool,
        base: Option<LogBudget>,
    ) -> LogBudget {
        if quiet && !save && !check {
            return LogBudget::counts_only();
        }
        let base = base.unwrap_or_default();
        let overflow = if check {
            Overflow::Spill
        } else {
            self.overflow.unwrap_or(base.overflow)
        };
        LogBudget::new(self.budget.unwrap_or(base.memory), overflow)
    }
}

/// `--log-budget SIZE`: payload bytes the log keeps in memory (`256MiB`, `1GiB`, `0`).
pub fn parse_log_budget(value: &str) -> Result<u64, String> {
    crate::model::budget::parse_size(value)
        .map_err(|why| format!("--log-budget {}: {why}", quote(value)))
}

fn log_flags(a: LogArgs) -> Result<LogFlags, String> {
    Ok(LogFlags {
        budget: a.log_budget.as_deref().map(parse_log_budget).transpose()?,
        overflow: a.log_overflow.map(|o| match o {
            OverflowArg::Spill => Overflow::Spill,
            OverflowArg::Drop => Overflow::Drop,
        }),
    })
}

/// Where generated text goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Stdout,
    File(PathBuf),
}

/// A validated `export`; the file is read by [`super::prepare`].
#[derive(Debug)]
pub struct ExportRequest {
    pub file: PathBuf,
    pub to: crate::export::Format,
    pub output: Output,
    pub endpoint: Option<String>,
}

/// A validated `import`; the capture is read by [`super::prepare`].
#[derive(Debug)]
pub struct ImportRequest {
    pub capture: PathBuf,
    pub output: PathBuf,
    pub choice: crate::capture::Choice,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Request {
    /// Open the workbench window, on a file if given.
    Window(Option<PathBuf>),
    Connect(ConnectRequest),
    Listen(ListenRequest),
    Relay(Box<RelayRequest>),
    Replay(ReplayRequest),
    Run(RunRequest),
    Export(ExportRequest),
    Check(Vec<PathBuf>),
    Import(ImportRequest),
    /// Print this text to stdout and exit 0 (help, version).
    Print(String),
}

/// How many characters of a person's own text an error message quotes.
const EXCERPT_CHARS: usize = 48;

/// A value as an error quotes it: escaped, and cut to a short excerpt (with its
/// length) when long, so a 100 KB mistake is one readable line.
pub fn quote(value: &str) -> String {
    let count = value.chars().count();
    if count <= EXCERPT_CHARS {
        format!("\"{}\"", super::escape(value))
    } else {
        let head: String = value.chars().take(EXCERPT_CHARS).collect();
        format!("\"{}…\" ({count} characters)", super::escape(&head))
    }
}

/// A value as an error shows it unquoted (numbers): escaped, cut when long.
pub fn excerpt(value: &str) -> String {
    let count = value.chars().count();
    if count <= EXCERPT_CHARS {
        super::escape(value).into_owned()
    } else {
        let head: String = value.chars().take(EXCERPT_CHARS).collect();
        format!("{}… ({count} characters)", super::escape(&head))
    }
}

/// The longest address text worth parsing: a 253-character host name, brackets and a port.
const MAX_ADDRESS_CHARS: usize = 300;

/// Seconds as a duration: zero or more, at most a year.
pub fn parse_secs(flag: &str, value: &str) -> Result<Duration, String> {
    let secs: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{flag} {}: not a number of seconds", excerpt(value)))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!(
            "{flag} {}: give zero or more seconds",
            excerpt(value)
        ));
    }
    if secs > 366.0 * 24.0 * 3600.0 {
        return Err(format!(
            "{flag} {}: more than a year is not a useful time",
            excerpt(value)
        ));
    }
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{flag} {}: not a usable time", excerpt(value)))
}

/// The slowest replay speed: a thousand times slower than recorded.
pub const MIN_SPEED: f64 = 0.001;
/// The fastest replay speed short of "no waits" (0).
pub const MAX_SPEED: f64 = 1000.0;

/// `--speed`: 0 (no waits) or a factor from [`MIN_SPEED`] to [`MAX_SPEED`].
pub fn parse_speed(value: &str) -> Result<f64, String> {
    let speed: f64 = value.trim().parse().map_err(|_| {
        format!(
            "--speed {}: not a number; give 0 (no waits) or a factor from {MIN_SPEED} to {MAX_SPEED}",
            excerpt(value)
        )
    })?;
    if speed == 0.0 || (speed.is_finite() && (MIN_SPEED..=MAX_SPEED).contains(&speed)) {
        Ok(speed)
    } else {
        Err(format!(
            "--speed {}: give 0 (no waits) or a factor from {MIN_SPEED} (slower) to {MAX_SPEED} (faster)",
            excerpt(value)
        ))
    }
}

/// `h2,http/1.1` → the protocol names, in order.
pub fn parse_alpn(value: Option<&str>) -> Result<Vec<String>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = value.split(',').map(|s| s.trim().to_owned()).collect();
    if let Some(bad) = names
        .iter()
        .find(|n| n.is_empty() || n.len() > 255 || !n.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(format!(
            "--alpn {}: {} is not a protocol name (printable ASCII, 1 to 255 bytes, comma-separated)",
            quote(value),
            quote(bad)
        ));
    }
    Ok(names)
}

/// An address flag or argument.
/// `--reconnect [N]`, `--backoff MIN..MAX` and `--jitter` as one setting.
fn client_reconnect(
    count: &Option<String>,
    backoff: &Option<String>,
    jitter: bool,
) -> Result<Option<crate::model::proxy::Reconnect>, String> {
    use crate::model::proxy::{MAX_ATTEMPTS, Reconnect, parse_backoff};
    let Some(count) = count else {
        if backoff.is_some() || jitter {
            return Err(
                "--backoff and --jitter shape the waits of --reconnect: give --reconnect too"
                    .into(),
            );
        }
        return Ok(None);
    };
    let attempts = match count.trim().parse::<u32>() {
        Ok(0) => None,
        Ok(n) if n <= MAX_ATTEMPTS => Some(n),
        _ => {
            return Err(format!(
                "--reconnect {}: give a count of attempts, 1 to {MAX_ATTEMPTS} (0 or none: until stopped)",
                quote(count)
            ));
        }
    };
    let mut reconnect = Reconnect {
        attempts,
        jitter,
        ..Reconnect::default()
    };
    if let Some(b) = backoff {
        let (min, max) = parse_backoff(b).map_err(|e| format!("--{e}"))?;
        reconnect.min_ms = min;
        reconnect.max_ms = max;
    }
    Ok(Some(reconnect))
}

pub fn parse_addr(value: &str, connecting: bool) -> Result<HostPort, String> {
    if value.chars().count() > MAX_ADDRESS_CHARS {
        return Err(format!(
            "address {}: too long for host:port (at most {MAX_ADDRESS_CHARS} characters)",
            quote(value)
        ));
    }
    let hp: HostPort = value
        .parse()
        .map_err(|e: crate::model::AddressError| format!("address {}: {e}", quote(value)))?;
    if connecting {
        hp.require_port()
            .map_err(|e| format!("address {}: {e}", quote(value)))
    } else {
        Ok(hp)
    }
}

fn parse_payload(flag: &str, n: usize, notation: Notation, value: &str) -> Result<Vec<u8>, String> {
    notation
        .parse(value)
        .map_err(|e| format!("{flag} #{n} {}: {e}", quote(value)))
}

/// A payload that goes out as written: text notation is a template (its
/// placeholders checked now, with their position), hex the exact bytes.
fn parse_template(
    flag: &str,
    n: usize,
    notation: Notation,
    value: &str,
) -> Result<Template, String> {
    let template = match notation {
        Notation::Text => placeholder::parse_text(value, &placeholder::Scope::Plain),
        Notation::Hex => Notation::Hex.parse(value).map(|b| Template::literal(&b)),
    }
    // A range past the end shows in the first send already: said now, with its place.
    .and_then(|t| match t.expand(&placeholder::Context::now(0)) {
        Ok(_) => Ok(t),
        Err(e) => Err(e.in_text(value)),
    })
    .map_err(|e| format!("{flag} #{n} {}: {e}", quote(value)))?;
    Ok(template)
}

/// Reads `--rule PATTERN REPLY` number `n`: PATTERN is
/// `[name=N,][after=N,][delay=MS,]KIND:TEXT` (KIND re, exact, contains,
/// starts, hex or any; without a known KIND the whole pattern is a regex).
/// A rule without `name=` is named by its number, so `after=1` waits for the first.
pub(crate) fn parse_rule(n: usize, pattern: &str, reply: &str) -> Result<Rule, String> {
    let flag = format!("--rule #{n}");
    let mut rest = pattern;
    let (mut name, mut after, mut delay_ms) = (None, None, None);
    while let Some((key, tail)) = ["name=", "after=", "delay="]
        .iter()
        .find_map(|k| rest.strip_prefix(k).map(|t| (*k, t)))
    {
        let Some((value, tail)) = tail.split_once(',') else {
            return Err(format!(
                "{flag} {}: {key} needs a comma after its value, then KIND:TEXT",
                quote(pattern)
            ));
        };
        if value.is_empty() {
            return Err(format!("{flag} {}: {key} needs a value", quote(pattern)));
        }
        match key {
            "name=" => name = Some(value.to_owned()),
            "after=" => after = Some(value.to_owned()),
            _ => {
                delay_ms = Some(
                    value
                        .parse::<u32>()
                        .ok()
                        .filter(|ms| *ms <= 3_600_000)
                        .ok_or_else(|| {
                            format!(
                                "{flag} delay={}: give whole milliseconds, 0 to 3600000",
                                quote(value)
                            )
                        })?,
                )
            }
        }
        rest = tail;
    }
    let text = |t: &str| parse_payload("--rule", n, Notation::Text, t).map(Payload::new);
    let when = if let Some(t) = rest.strip_prefix("exact:") {
        Trigger::Exact(text(t)?)
    } else if let Some(t) = rest.strip_prefix("contains:") {
        Trigger::Contains(text(t)?)
    } else if let Some(t) = rest.strip_prefix("starts:") {
        Trigger::StartsWith(text(t)?)
    } else if let Some(t) = rest.strip_prefix("hex:") {
        Trigger::StartsWith(Payload::new(parse_payload("--rule", n, Notation::Hex, t)?))
    } else if rest == "any" || rest == "any:" {
        Trigger::Always
    } else {
        let re = rest.strip_prefix("re:").unwrap_or(rest);
        Trigger::Regex(
            RegexText::new(re).map_err(|e| format!("{flag} {}: bad regex: {e}", quote(re)))?,
        )
    };
    if matches!(&when, Trigger::Contains(p) | Trigger::StartsWith(p) if p.is_empty()) {
        return Err(format!(
            "{flag} {}: give the bytes to look for",
            quote(pattern)
        ));
    }
    let mut rule = Rule::new(
        when,
        Payload::new(parse_payload("--rule REPLY", n, Notation::Text, reply)?),
    );
    rule.name = name.unwrap_or_else(|| n.to_string());
    rule.after = after;
    rule.delay_ms = delay_ms;
    // Captures (for a regex) and placeholders, checked where they are typed.
    rule.reply_template()
        .map_err(|e| format!("--rule REPLY #{n} {}: {}", quote(reply), e.in_text(reply)))?;
    Ok(rule)
}

/// Turns the command line into a validated request, touching nothing on disk.
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
    let summary = matches!(
        command.as_str(),
        "connect" | "listen" | "relay" | "replay" | "run"
    );
    let usage = |message: String| UsageError { message, summary };

    let known = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect::<Vec<_>>();
    if known.contains(&command) {
        unknown_short_options(&command, &args).map_err(usage)?;
    }
    if matches!(command.as_str(), "connect" | "listen" | "relay") {
        flag_as_value(&command, &args).map_err(usage)?;
    }

    // `sockbench FILE` opens the window; anything after a word that is not a
    // command means a mistyped command, which clap would explain confusingly.
    if args.len() > 2 && !command.starts_with('-') && !known.contains(&command) && command != "help"
    {
        return Err(usage(format!(
            "{} is not a command (the commands are {}); to open a session file in the window, give only its path",
            quote(&command),
            known.join(", ")
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
            return Err(usage(clap_line(&e)));
        }
    };
    let cli = Cli::from_arg_matches(&matches).map_err(|e| usage(clap_line(&e)))?;

    let request = match cli.command {
        None => Ok(Request::Window(cli.file)),
        Some(Command::Check { files }) => Ok(Request::Check(files)),
        Some(Command::Import(a)) => {
            let choice = match (&a.conversation, &a.port) {
                (Some(n), _) => match n.trim().parse::<usize>() {
                    Ok(n) if n >= 1 => crate::capture::Choice::Number(n),
                    _ => {
                        return Err(usage(format!(
                            "--conversation {}: give the number of a conversation in the listing (1, 2, …)",
                            excerpt(n)
                        )));
                    }
                },
                (None, Some(p)) => match p.trim().parse::<u16>() {
                    Ok(p) if p >= 1 => crate::capture::Choice::Port(p),
                    _ => {
                        return Err(usage(format!(
                            "--port {}: give a port from 1 to 65535",
                            excerpt(p)
                        )));
                    }
                },
                (None, None) => crate::capture::Choice::Largest,
            };
            Ok(Request::Import(ImportRequest {
                capture: a.capture,
                output: a.output,
                choice,
            }))
        }
        Some(Command::Connect(a)) => {
            let sub = matches
                .subcommand_matches("connect")
                .ok_or_else(|| usage("connect: arguments missing".into()))?;
            let (remote, unix) = if a.proto.is_unix() {
                let path = parse_unix_path("ADDR", &a.addr).map_err(usage)?;
                let bind = a
                    .bind
                    .as_deref()
                    .map(|b| parse_unix_path("--bind", b))
                    .transpose()
                    .map_err(usage)?;
                if bind.is_some() && a.proto != Proto::UnixDgram {
                    return Err(usage(
                        "--bind PATH is for unix-dgram: a stream client needs no name of its own"
                            .into(),
                    ));
                }
                (
                    HostPort::new(String::new(), 0),
                    Some(Box::new((path, bind))),
                )
            } else {
                (parse_addr(&a.addr, true).map_err(usage)?, None)
            };
            // --send, --send-hex and --send-file interleave in command-line order.
            let mut ordered: Vec<(usize, Template)> = Vec::new();
            let file_at = sub
                .indices_of("send_file")
                .map(|i| i.collect::<Vec<_>>())
                .unwrap_or_default();
            let files: Vec<(usize, PathBuf)> = file_at.into_iter().zip(a.send_file).collect();
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
                    parse_template("--send", n + 1, Notation::Text, value).map_err(usage)?,
                ));
            }
            for (n, (value, at)) in a.send_hex.iter().zip(hex_at).enumerate() {
                ordered.push((
                    at,
                    parse_template("--send-hex", n + 1, Notation::Hex, value).map_err(usage)?,
                ));
            }
            ordered.sort_by_key(|(at, _)| *at);
            // Each file's place among the payloads: how many come before it.
            let send_files: Vec<(usize, PathBuf)> = files
                .into_iter()
                .enumerate()
                .map(|(n, (at, path))| {
                    (
                        n + ordered.iter().filter(|(before, _)| *before < at).count(),
                        path,
                    )
                })
                .collect();
            let wait = parse_secs("--wait", &a.wait).map_err(usage)?;
            let repeat = match a.repeat.as_deref().map(str::trim) {
                None => Some(1),
                Some(t) => match t.parse::<u64>() {
                    Ok(0) => None,
                    Ok(n) => Some(n),
                    Err(_) => {
                        return Err(usage(format!(
                            "--repeat {}: give a whole number of rounds (0: until stopped)",
                            quote(t)
                        )));
                    }
                },
            };
            let interval = match a.interval.as_deref().map(str::trim) {
                None => Duration::from_secs(1),
                Some(t) => match t.parse::<u64>() {
                    Ok(ms) if ms <= 86_400_000 => Duration::from_millis(ms),
                    _ => {
                        return Err(usage(format!(
                            "--interval {}: give whole milliseconds, 0 to 86400000",
                            quote(t)
                        )));
                    }
                },
            };
            if (a.repeat.is_some() || a.interval.is_some())
                && ordered.is_empty()
                && send_files.is_empty()
            {
                return Err(usage(
                    "--repeat and --interval repeat the payloads: give --send, --send-hex or --send-file too"
                        .into(),
                ));
            }
            if a.interval.is_some() && a.repeat.is_none() {
                return Err(usage(
                    "--interval is the time between --repeat rounds: give --repeat N too".into(),
                ));
            }
            if repeat.is_none() && interval.is_zero() {
                return Err(usage(
                    "--repeat 0 with --interval 0 would send without pause until stopped: give --interval 1 or more"
                        .into(),
                ));
            }
            let connect_timeout = a
                .connect_timeout
                .as_deref()
                .map(|v| parse_secs("--connect-timeout", v))
                .transpose()
                .map_err(usage)?;
            if connect_timeout.is_some_and(|t| t < Duration::from_millis(1)) {
                return Err(usage(format!(
                    "--connect-timeout {}: give at least 0.001 seconds",
                    excerpt(a.connect_timeout.as_deref().unwrap_or_default())
                )));
            }
            let tls_flags = !a.ca.is_empty()
                || a.insecure
                || a.pin.is_some()
                || a.sni.is_some()
                || a.alpn.is_some();
            if tls_flags && a.proto != Proto::Tls {
                return Err(usage(
                    "--ca, --insecure, --pin, --sni and --alpn are for tls: write connect tls ADDR"
                        .into(),
                ));
            }
            if a.insecure && a.pin.is_some() {
                return Err(usage(
                    "--pin and --insecure contradict each other: a pin trusts one certificate, --insecure any; give one"
                        .into(),
                ));
            }
            let pin = a
                .pin
                .as_deref()
                .map(crate::model::endpoint::CertPin::parse)
                .transpose()
                .map_err(|e| usage(format!("--{}", super::escape(&e.to_string()))))?;
            if let Some(sni) = &a.sni
                && rustls::pki_types::ServerName::try_from(sni.as_str()).is_err()
            {
                return Err(usage(format!(
                    "--sni {}: not a server name (a DNS name or an IP address)",
                    quote(sni)
                )));
            }
            let proxy = a
                .proxy
                .as_deref()
                .map(|p| crate::model::proxy::Proxy::parse(p).map_err(|e| usage(format!("--{e}"))))
                .transpose()?;
            let reconnect = client_reconnect(&a.reconnect, &a.backoff, a.jitter).map_err(usage)?;
            if (proxy.is_some() || reconnect.is_some()) && a.proto == Proto::Udp {
                return Err(usage(
                    "--proxy and --reconnect are for tcp and tls clients: a UDP socket has no connection"
                        .into(),
                ));
            }
            if a.unconnected && a.proto != Proto::Udp {
                return Err(usage(
                    "--unconnected is for udp: TCP and TLS sockets are always connected".into(),
                ));
            }
            let bind = a
                .bind
                .as_deref()
                .filter(|_| !a.proto.is_unix())
                .map(|b| {
                    crate::model::endpoint::parse_local_bind(b, remote.host.contains(':'))
                        .map_err(|e| usage(format!("--bind: {}", super::escape(&e))))
                })
                .transpose()?;
            let udp = Box::new(udp_flags(&a.udp, &[], a.proto, bind.as_ref()).map_err(usage)?);
            let tls = crate::model::TlsClientSettings {
                ca: a.ca,
                insecure: a.insecure,
                pin,
                sni: a.sni,
                alpn: parse_alpn(a.alpn.as_deref()).map_err(usage)?,
            };
            let log = log_flags(a.log).map_err(usage)?;
            Ok(Request::Connect(ConnectRequest {
                proto: a.proto,
                remote,
                unix,
                tls,
                payloads: ordered.into_iter().map(|(_, p)| p).collect(),
                send_files,
                repeat,
                interval,
                wait,
                unconnected: a.unconnected,
                bind,
                udp,
                connect_timeout,
                proxy,
                reconnect,
                save: a.save,
                quiet: a.quiet,
                json: a.json,
                log,
                stats: a.stats,
            }))
        }
        Some(Command::Export(a)) => Ok(Request::Export(ExportRequest {
            file: a.file,
            to: a.to,
            output: match a.output {
                None => Output::Stdout,
                Some(p) if p.as_os_str() == "-" => Output::Stdout,
                Some(p) => Output::File(p),
            },
            endpoint: a.endpoint,
        })),
        Some(Command::Replay(a)) => {
            let target = a
                .target
                .as_deref()
                .map(|t| parse_addr(t, false))
                .transpose()
                .map_err(usage)?;
            let speed = parse_speed(&a.speed).map_err(usage)?;
            let timeout = parse_secs("--timeout", &a.timeout).map_err(usage)?;
            let log = log_flags(a.log).map_err(usage)?;
            if a.check && log.overflow == Some(Overflow::Drop) {
                return Err(usage(
                    "--log-overflow drop cannot be used with --check: the check compares every received byte; leave it out (bytes beyond the budget then spill to disk)"
                        .into(),
                ));
            }
            let mut ignore = Vec::new();
            for pattern in &a.ignore {
                ignore.push(
                    crate::model::ignore::IgnoreRule::regex(pattern)
                        .map_err(|e| usage(format!("--ignore: {e}")))?,
                );
            }
            for range in &a.ignore_bytes {
                ignore.push(
                    crate::model::ignore::IgnoreRule::bytes(range)
                        .map_err(|e| usage(format!("--ignore-bytes {e}")))?,
                );
            }
            if !ignore.is_empty() && !a.check {
                return Err(usage(
                    "--ignore and --ignore-bytes are for --check: they say what the check does not compare"
                        .into(),
                ));
            }
            let junit = match a.report.as_slice() {
                [] => None,
                [format, file] if format == "junit" => Some(PathBuf::from(file)),
                [format, _] => {
                    return Err(usage(format!(
                        "--report {}: the report formats are: junit (write --report junit FILE.xml)",
                        quote(format)
                    )));
                }
                _ => {
                    return Err(usage(
                        "--report needs a format and a file: --report junit FILE.xml".into(),
                    ));
                }
            };
            if junit.is_some() && !a.check {
                return Err(usage(
                    "--report is for --check: it reports what the check found".into(),
                ));
            }
            Ok(Request::Replay(ReplayRequest {
                file: a.file,
                target,
                endpoint: a.endpoint,
                relay_as: a.as_side.map(|side| match side {
                    AsArg::Upstream => crate::model::replay::RelayAs::Upstream,
                    AsArg::Client => crate::model::replay::RelayAs::Client,
                }),
                speed,
                check: a.check,
                unlink: a.unlink,
                ignore,
                junit,
                timeout,
                save: a.save,
                quiet: a.quiet,
                json: a.json,
                stats: a.stats,
                log,
            }))
        }
        Some(Command::Run(a)) => {
            let run_for = a
                .for_secs
                .as_deref()
                .map(|v| parse_secs("--for", v))
                .transpose()
                .map_err(usage)?;
            if let Some(name) = a.endpoint.iter().find(|n| n.trim().is_empty()) {
                return Err(usage(format!(
                    "--endpoint {}: give the name of an endpoint of the session",
                    quote(name)
                )));
            }
            let log = log_flags(a.log).map_err(usage)?;
            Ok(Request::Run(RunRequest {
                file: a.file,
                endpoints: a.endpoint,
                run_for,
                save: a.save,
                quiet: a.quiet,
                json: a.json,
                stats: a.stats,
                log,
            }))
        }
        Some(Command::Relay(a)) => relay(*a)
            .map(|r| Request::Relay(Box::new(r)))
            .map_err(usage),
        Some(Command::Listen(a)) => {
            let (local, unix) = if a.proto.is_unix() {
                let path = parse_unix_path("ADDR", &a.addr).map_err(usage)?;
                (HostPort::new(String::new(), 0), Some(path))
            } else {
                if a.unlink {
                    return Err(usage(
                        "--unlink is for unix and unix-dgram: it removes a stale socket file"
                            .into(),
                    ));
                }
                (parse_addr(&a.addr, false).map_err(usage)?, None)
            };
            let answer = if a.echo {
                Answer::Echo
            } else if let Some(text) = &a.reply {
                // A template, kept as written (escapes decoded): it is filled in per answer.
                parse_template("--reply", 1, Notation::Text, text).map_err(usage)?;
                Answer::Reply(Payload::new(
                    parse_payload("--reply", 1, Notation::Text, text).map_err(usage)?,
                ))
            } else if let Some(hex) = &a.reply_hex {
                // The exact bytes: a `$` among them is doubled, so no placeholder.
                Answer::Reply(Payload::new(placeholder::escape_literal(
                    &parse_payload("--reply-hex", 1, Notation::Hex, hex).map_err(usage)?,
                )))
            } else if !a.rule.is_empty() {
                let rules = a
                    .rule
                    .chunks(2)
                    .enumerate()
                    .map(|(i, pair)| parse_rule(i + 1, &pair[0], &pair[1]))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(usage)?;
                let answer = AutoReply::Rules(rules);
                answer.check().map_err(|e| usage(format!("--rule: {e}")))?;
                let AutoReply::Rules(rules) = answer else {
                    unreachable!("built as rules above")
                };
                let framing = a
                    .framing
                    .as_deref()
                    .map(|f| ReceiveFraming::parse(f).map_err(|e| format!("--framing: {e}")))
                    .transpose()
                    .map_err(usage)?
                    .unwrap_or_default();
                let max_message = a
                    .max_message
                    .as_deref()
                    .map(|m| match m.trim().parse::<u32>() {
                        Ok(n) if n > 0 && n <= 1 << 30 => {
                            Ok(std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN))
                        }
                        _ => Err(format!(
                            "--max-message {}: give bytes, 1 to 1073741824",
                            quote(m)
                        )),
                    })
                    .transpose()
                    .map_err(usage)?;
                Answer::Rules {
                    rules,
                    framing,
                    max_message,
                }
            } else {
                Answer::None
            };
            if a.rule.is_empty() && (a.framing.is_some() || a.max_message.is_some()) {
                return Err(usage(
                    "--framing and --max-message cut messages for --rule: give a rule too".into(),
                ));
            }
            let run_for = a
                .for_secs
                .as_deref()
                .map(|v| parse_secs("--for", v))
                .transpose()
                .map_err(usage)?;
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
            if a.max_peers.is_some() && matches!(a.proto, Proto::Udp | Proto::UnixDgram) {
                return Err(usage(
                    "--max-peers is for stream listeners (tcp, tls, unix): a datagram socket has no connections to refuse"
                        .into(),
                ));
            }
            if a.max_peers == Some(0) {
                return Err(usage(
                    "--max-peers 0 would refuse every peer: give 1 or more".into(),
                ));
            }
            let udp = udp_flags(&a.udp, &a.join, a.proto, Some(&local)).map_err(usage)?;
            let log = log_flags(a.log).map_err(usage)?;
            let tls = crate::model::TlsServerSettings {
                cert: a.cert,
                key: a.key,
                alpn: parse_alpn(a.alpn.as_deref()).map_err(usage)?,
            };
            Ok(Request::Listen(ListenRequest {
                proto: a.proto,
                local,
                unix,
                unlink: a.unlink,
                tls,
                answer,
                run_for,
                once: a.once,
                max_peers: a.max_peers,
                udp,
                save: a.save,
                quiet: a.quiet,
                json: a.json,
                log,
                stats: a.stats,
            }))
        }
    }?;
    check_paths(&request).map_err(usage)?;
    Ok(request)
}

/// A socket path or `@name` (unix, unix-dgram), checked as the engine will
/// need it: not empty, no NUL, at most 107 bytes.
pub fn parse_unix_path(what: &str, value: &str) -> Result<UnixPath, String> {
    UnixPath::parse(value).map_err(|e| format!("{what} {}: {e}", excerpt(value)))
}

/// `relay`: addresses, TLS for each side, and the impairments.
fn relay(a: RelayArgs) -> Result<RelayRequest, String> {
    if a.proto.is_unix() {
        return Err("relay: unix and unix-dgram are not relayed yet; relay tcp, tls or udp".into());
    }
    let listen = parse_addr(&a.listen, false)?;
    let upstream = parse_addr(&a.to, true).map_err(|e| format!("--to: {e}"))?;
    let tls = a.proto == Proto::Tls;
    let tls_flags = a.cert.is_some()
        || a.key.is_some()
        || !a.ca.is_empty()
        || a.insecure
        || a.pin.is_some()
        || a.sni.is_some();
    if tls_flags && !tls {
        return Err(
            "--cert, --key, --ca, --insecure, --pin and --sni are for tls: write relay tls LISTEN --to UPSTREAM"
                .into(),
        );
    }
    if a.cert.is_some() != a.key.is_some() {
        return Err(if a.cert.is_some() {
            "--cert needs --key: the private key of the certificate".into()
        } else {
            "--key needs --cert: the certificate of the key".into()
        });
    }
    if a.insecure && a.pin.is_some() {
        return Err(
            "--pin and --insecure contradict each other: a pin trusts one certificate, --insecure any; give one"
                .into(),
        );
    }
    let pin = a
        .pin
        .as_deref()
        .map(crate::model::endpoint::CertPin::parse)
        .transpose()
        .map_err(|e| format!("--{}", super::escape(&e.to_string())))?;
    if let Some(sni) = &a.sni
        && rustls::pki_types::ServerName::try_from(sni.as_str()).is_err()
    {
        return Err(format!(
            "--sni {}: not a server name (a DNS name or an IP address)",
            quote(sni)
        ));
    }
    if a.max_peers == Some(0) {
        return Err("--max-peers 0 would refuse every client: give 1 or more".into());
    }
    let connect_timeout = a
        .connect_timeout
        .as_deref()
        .map(|v| parse_secs("--connect-timeout", v))
        .transpose()?;
    if connect_timeout.is_some_and(|t| t < Duration::from_millis(1)) {
        return Err(format!(
            "--connect-timeout {}: give at least 0.001 seconds",
            excerpt(a.connect_timeout.as_deref().unwrap_or_default())
        ));
    }
    let run_for = a
        .for_secs
        .as_deref()
        .map(|v| parse_secs("--for", v))
        .transpose()?;
    let impair = parse_impairments(&a)?;
    Ok(RelayRequest {
        proto: a.proto,
        listen,
        upstream,
        tls_server: crate::model::TlsServerSettings {
            cert: a.cert,
            key: a.key,
            alpn: Vec::new(),
        },
        tls_client: crate::model::TlsClientSettings {
            ca: a.ca,
            insecure: a.insecure,
            pin,
            sni: a.sni,
            alpn: Vec::new(),
        },
        impair,
        json: a.json,
        connect_timeout,
        max_peers: a.max_peers,
        run_for,
        save: a.save,
        quiet: a.quiet,
        log: log_flags(a.log)?,
    })
}

/// Sets one impairment from its notation; a second value for the same
/// direction is an error.
fn fill<T: std::str::FromStr<Err = String>>(
    slot: &mut Option<T>,
    notation: &str,
    twice: &dyn Fn(bool) -> Result<(), String>,
    bad: &dyn Fn(String) -> String,
) -> Result<(), String> {
    twice(slot.is_some())?;
    *slot = Some(notation.parse().map_err(bad)?);
    Ok(())
}

/// The impairment flags of `relay`, each value with an optional `up:`,
/// `down:` or `both:` in front (else `--direction` says which way).
pub fn parse_impairments_of(
    direction: &str,
    flags: &[(&str, &[String])],
    seed: Option<&str>,
    udp: bool,
) -> Result<crate::model::impair::Impairments, String> {
    use crate::model::impair::{Impairments, Way, split_way};
    let default: &[Way] = match direction {
        "up" => &[Way::Up],
        "down" => &[Way::Down],
        _ => &[Way::Up, Way::Down],
    };
    let mut impair = Impairments::default();
    for (flag, values) in flags {
        for value in values.iter() {
            let (ways, notation) = split_way(value, default);
            for way in ways {
                let t = impair.way_mut(way);
                let bad = |e: String| format!("--{flag} {}: {e}", quote(value));
                let twice = |set: bool| {
                    if set {
                        Err(format!(
                            "--{flag} is given twice for {} ({}); give it once a direction",
                            way.word(),
                            way.arrow()
                        ))
                    } else {
                        Ok(())
                    }
                };
                match *flag {
                    "latency" => fill(&mut t.latency, &notation, &twice, &bad),
                    "bandwidth" => fill(&mut t.bandwidth, &notation, &twice, &bad),
                    "slice" => fill(&mut t.slice, &notation, &twice, &bad),
                    "close-after" => fill(&mut t.close_after, &notation, &twice, &bad),
                    "reset-after" => fill(&mut t.reset_after, &notation, &twice, &bad),
                    "loss" => fill(&mut t.loss, &notation, &twice, &bad),
                    "dup" => fill(&mut t.duplicate, &notation, &twice, &bad),
                    _ => fill(&mut t.reorder, &notation, &twice, &bad),
                }?;
            }
        }
    }
    if let Some(misfit) = impair.misfit(udp) {
        return Err(if udp {
            format!("--{misfit} is for tcp and tls relays: datagrams have no stream to cut")
        } else {
            format!("--{misfit} is for udp relays: a stream loses, doubles and reorders nothing")
        });
    }
    if let Some(seed) = seed {
        impair.seed = Some(seed.trim().parse().map_err(|_| {
            format!(
                "--seed {}: give a whole number from 0 to {}",
                quote(seed),
                u64::MAX
            )
        })?);
    }
    Ok(impair)
}

fn parse_impairments(a: &RelayArgs) -> Result<crate::model::impair::Impairments, String> {
    let direction = match a.direction {
        WayArg::Up => "up",
        WayArg::Down => "down",
        WayArg::Both => "both",
    };
    parse_impairments_of(
        direction,
        &[
            ("latency", &a.latency),
            ("bandwidth", &a.bandwidth),
            ("slice", &a.slice),
            ("close-after", &a.close_after),
            ("reset-after", &a.reset_after),
            ("loss", &a.loss),
            ("dup", &a.dup),
            ("reorder", &a.reorder),
        ],
        a.seed.as_deref(),
        a.proto == Proto::Udp,
    )
}

/// The most bytes a path can have and still name a file (Linux's PATH_MAX).
const MAX_PATH_BYTES: usize = 4096;

/// Refuses a path no system can open, quoting only an excerpt of it, so a
/// 100 KB argument is one short line and never reaches a message whole.
fn check_paths(request: &Request) -> Result<(), String> {
    let mut paths: Vec<(&str, &std::path::Path)> = Vec::new();
    match request {
        Request::Window(file) => paths.extend(file.iter().map(|f| ("the file", f.as_path()))),
        Request::Check(files) => paths.extend(files.iter().map(|f| ("the file", f.as_path()))),
        Request::Connect(r) => {
            paths.extend(r.save.iter().map(|f| ("--save", f.as_path())));
            paths.extend(r.tls.ca.iter().map(|f| ("--ca", f.as_path())));
        }
        Request::Listen(r) => {
            paths.extend(r.save.iter().map(|f| ("--save", f.as_path())));
            paths.extend(r.tls.cert.iter().map(|f| ("--cert", f.as_path())));
            paths.extend(r.tls.key.iter().map(|f| ("--key", f.as_path())));
        }
        Request::Relay(r) => {
            paths.extend(r.save.iter().map(|f| ("--save", f.as_path())));
            paths.extend(r.tls_client.ca.iter().map(|f| ("--ca", f.as_path())));
            paths.extend(r.tls_server.cert.iter().map(|f| ("--cert", f.as_path())));
            paths.extend(r.tls_server.key.iter().map(|f| ("--key", f.as_path())));
        }
        Request::Replay(r) => {
            paths.push(("the file", r.file.as_path()));
            paths.extend(r.save.iter().map(|f| ("--save", f.as_path())));
            paths.extend(r.junit.iter().map(|f| ("--report", f.as_path())));
        }
        Request::Run(r) => {
            paths.push(("the file", r.file.as_path()));
            paths.extend(r.save.iter().map(|f| ("--save", f.as_path())));
        }
        Request::Export(r) => {
            paths.push(("the file", r.file.as_path()));
            if let Output::File(f) = &r.output {
                paths.push(("-o", f.as_path()));
            }
        }
        Request::Import(r) => {
            paths.push(("the capture", r.capture.as_path()));
            paths.push(("-o", r.output.as_path()));
        }
        Request::Print(_) => {}
    }
    match paths
        .into_iter()
        .find(|(_, p)| p.as_os_str().len() > MAX_PATH_BYTES)
    {
        Some((what, p)) => Err(format!(
            "{what} {}: too long for a path (at most {MAX_PATH_BYTES} bytes)",
            quote(&p.to_string_lossy())
        )),
        None => Ok(()),
    }
}

/// clap's explanation as one line: what is wrong comes before the usage, over
/// several lines; values it quotes are cut to an excerpt.
fn clap_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let what: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("tip:") && !l.starts_with("For more information")
        })
        .collect();
    let line = what.join(" ");
    let line = line.trim_start_matches("error: ");
    if line.is_empty() {
        return "invalid arguments".into();
    }
    shorten_quoted(line)
}

/// Cuts every '…'-quoted value in clap's message to an excerpt, and escapes it.
fn shorten_quoted(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('\'') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after
            .find("' ")
            .or_else(|| after.strip_suffix('\'').map(str::len))
        {
            Some(end) => {
                out.push_str(&quote(&after[..end]));
                rest = &after[end + 1..];
            }
            None => {
                out.push('\'');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    super::escape(&out).into_owned()
}

/// A word like `-host:80` is read by clap as the short flags `-h -o …` and
/// would print the help and exit 0; a word starting with one `-` must be made
/// of the command's own short flags, else it is a mistake said as such.
fn unknown_short_options(command: &str, args: &[OsString]) -> Result<(), String> {
    let cli = Cli::command();
    let Some(sub) = cli.find_subcommand(command) else {
        return Ok(());
    };
    let takes_value = |long: &str| {
        sub.get_arguments()
            .any(|a| a.get_long() == Some(long) && a.get_action().takes_values())
    };
    let short = |c: char| {
        if c == 'h' {
            return Some(false);
        }
        sub.get_arguments()
            .find(|a| a.get_short() == Some(c))
            .map(|a| a.get_action().takes_values())
    };
    let mut words = args.iter().skip(2).map(|w| w.to_string_lossy());
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            if !long.contains('=') && takes_value(long) {
                words.next();
            }
            continue;
        }
        let Some(cluster) = word.strip_prefix('-') else {
            continue;
        };
        if cluster.is_empty() || cluster.parse::<f64>().is_ok() {
            continue;
        }
        for (i, c) in cluster.char_indices() {
            match short(c) {
                Some(false) => {}
                Some(true) => {
                    if i + c.len_utf8() == cluster.len() {
                        words.next();
                    }
                    break;
                }
                None => {
                    return Err(format!(
                        "{} is not an option of {command} (-{} is unknown); see sockbench {command} --help",
                        quote(&word),
                        super::escape(&c.to_string())
                    ));
                }
            }
        }
    }
    Ok(())
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
        if matches!(
            &*flag,
            "--send" | "--send-hex" | "--send-file" | "--reply" | "--reply-hex"
        ) && is_flag(&value)
        {
            return Err(format!(
                "{flag} needs a value, but the next word is the flag {value} (to send that very text, write {flag}={value})"
            ));
        }
    }
    Ok(())
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
        assert_eq!(
            literals(&r.payloads),
            vec![b"-x".to_vec(), b"--wait".to_vec()]
        );
        let e = parse_err(&["connect", "tcp", "127.0.0.1:7", "--send", "--wait", "2"]);
        assert!(e.contains("--send needs a value"), "{e}");
        let e = parse_err(&["listen", "tcp", "127.0.0.1:7", "--reply", "--once"]);
        assert!(e.contains("--reply needs a value"), "{e}");
    }

    fn literals(payloads: &[Template]) -> Vec<Vec<u8>> {
        payloads.iter().filter_map(Template::as_literal).collect()
    }

    #[test]
    fn placeholders_in_sends_and_replies_are_checked_with_their_position() {
        let Request::Connect(r) = parse_ok(&[
            "connect",
            "tcp",
            "127.0.0.1:7",
            "--send",
            "n=${counter}",
            "--send-hex",
            "24 7b 7d",
        ]) else {
            panic!("not a connect")
        };
        assert!(r.payloads[0].has_placeholders());
        // Hex is the exact bytes: "${}" is no placeholder there.
        assert_eq!(r.payloads[1].as_literal().unwrap(), b"${}");
        let e = parse_err(&[
            "connect",
            "tcp",
            "127.0.0.1:7",
            "--send",
            "ab${crc32:0..99}",
        ]);
        assert!(
            e.contains("--send #1 \"ab${crc32:0..99}\": at position 3: the range 0..99 goes past"),
            "{e}"
        );
        let e = parse_err(&["connect", "tcp", "127.0.0.1:7", "--send", "\\r${countr}"]);
        assert!(
            e.contains("at position 3: \"countr\" is not a placeholder"),
            "{e}"
        );
        let e = parse_err(&[
            "listen",
            "tcp",
            "127.0.0.1:7",
            "--rule",
            "any",
            "x${time:%Q}",
        ]);
        assert!(
            e.contains("--rule REPLY #1") && e.contains("at position 2"),
            "{e}"
        );
        let e = parse_err(&["listen", "tcp", "127.0.0.1:7", "--reply", "${len:u9}"]);
        assert!(
            e.contains("--reply #1") && e.contains("at position 1"),
            "{e}"
        );
        // --reply-hex is exact: its `$` is doubled in the stored template.
        let Request::Listen(l) = parse_ok(&["listen", "tcp", "127.0.0.1:7", "--reply-hex", "24"])
        else {
            panic!("not a listen")
        };
        assert_eq!(l.answer, Answer::Reply(Payload::new(b"$$".to_vec())));
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
            literals(&r.payloads),
            vec![b"a".to_vec(), b"b".to_vec(), b"c\n".to_vec()]
        );
        assert_eq!(r.wait, Duration::from_secs(1));
        assert!(r.send_files.is_empty());
    }

    #[test]
    fn send_files_take_their_place_among_the_payloads() {
        let Request::Connect(r) = parse_ok(&[
            "connect",
            "tcp",
            "127.0.0.1:7",
            "--send-file",
            "first.bin",
            "--send",
            "a",
            "--send-file",
            "second.bin",
            "--send-hex",
            "62",
            "--send-file",
            "third.bin",
        ]) else {
            panic!("not a connect")
        };
        assert_eq!(literals(&r.payloads), vec![b"a".to_vec(), b"b".to_vec()]);
        // Inserted in order, each index counts the files before it.
        assert_eq!(
            r.send_files,
            vec![
                (0, PathBuf::from("first.bin")),
                (2, PathBuf::from("second.bin")),
                (4, PathBuf::from("third.bin")),
            ]
        );
        // A file alone is enough to repeat.
        let Request::Connect(r) = parse_ok(&[
            "connect",
            "udp",
            "127.0.0.1:7",
            "--send-file",
            "x",
            "--repeat",
            "3",
        ]) else {
            panic!("not a connect")
        };
        assert_eq!(r.repeat, Some(3));
        let e = parse_err(&[
            "connect",
            "tcp",
            "127.0.0.1:7",
            "--send-file",
            "--wait",
            "2",
        ]);
        assert!(e.contains("--send-file needs a value"), "{e}");
    }

    #[test]
    fn relay_impairments_take_a_direction_or_the_default_one() {
        let Request::Relay(r) = parse_ok(&[
            "relay",
            "udp",
            "127.0.0.1:0",
            "--to",
            "127.0.0.1:9",
            "--loss",
            "up:10%",
            "--latency",
            "20ms±5ms",
            "--direction",
            "down",
            "--dup",
            "both:1%",
            "--seed",
            "3",
        ]) else {
            panic!("a relay")
        };
        let i = &r.impair;
        assert_eq!(i.up.loss.map(|p| p.to_string()).as_deref(), Some("10%"));
        assert_eq!(i.down.loss, None);
        assert_eq!(i.up.latency, None, "--direction down");
        assert_eq!(
            i.down.latency.map(|l| l.to_string()).as_deref(),
            Some("20ms±5ms")
        );
        assert!(i.up.duplicate.is_some() && i.down.duplicate.is_some());
        assert_eq!(i.seed, Some(3));
        assert_eq!(r.upstream.to_string(), "127.0.0.1:9");

        for (args, says) in [
            (
                &["--slice", "0"][..],
                "--slice \"0\": a slice holds at least 1 byte",
            ),
            (
                &["--close-after", "4 parsecs"][..],
                "--close-after \"4 parsecs\"",
            ),
            (&["--reorder", "150%"][..], "from 0% to 100%"),
            (&["--insecure"][..], "are for tls"),
        ] {
            let mut all = vec!["relay", "tcp", "127.0.0.1:0", "--to", "127.0.0.1:9"];
            all.extend_from_slice(args);
            let e = parse_err(&all);
            assert!(e.contains(says), "{args:?}: {e}");
        }
        assert!(parse_err(&["relay", "tcp", "127.0.0.1:0"]).contains("--to"));
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
    fn proxy_and_reconnect_flags() {
        let Request::Connect(c) = parse_ok(&[
            "connect",
            "tcp",
            "example.com:80",
            "--proxy",
            "socks5://u:p@127.0.0.1:1080",
            "--reconnect",
            "--backoff",
            "100ms..5s",
            "--jitter",
        ]) else {
            panic!("a connect")
        };
        assert_eq!(c.proxy.unwrap().url(), "socks5://u:p@127.0.0.1:1080");
        let r = c.reconnect.unwrap();
        assert_eq!(
            (r.attempts, r.min_ms, r.max_ms, r.jitter),
            (None, 100, 5000, true)
        );
        let Request::Connect(c) = parse_ok(&[
            "connect",
            "tls",
            "h:443",
            "--reconnect",
            "3",
            "--proxy",
            "http://p:3128",
        ]) else {
            panic!("a connect")
        };
        assert_eq!(c.reconnect.unwrap().attempts, Some(3));
        assert_eq!(
            c.proxy.unwrap().kind,
            crate::model::proxy::ProxyKind::HttpConnect
        );
        for (args, want) in [
            (
                &["connect", "udp", "h:1", "--proxy", "socks5://p:1"][..],
                "for tcp and tls",
            ),
            (
                &["connect", "udp", "h:1", "--reconnect"][..],
                "for tcp and tls",
            ),
            (
                &["connect", "tcp", "h:1", "--backoff", "1s..2s"][..],
                "give --reconnect too",
            ),
            (
                &["connect", "tcp", "h:1", "--reconnect", "x"][..],
                "count of attempts",
            ),
            (
                &[
                    "connect",
                    "tcp",
                    "h:1",
                    "--reconnect",
                    "--backoff",
                    "2s..1s",
                ][..],
                "longer than",
            ),
            (
                &["connect", "tcp", "h:1", "--proxy", "ftp://p:1"][..],
                "socks5:// or http://",
            ),
            (
                &["connect", "tcp", "h:1", "--proxy", "socks5://p"][..],
                "no port",
            ),
        ] {
            let e = parse_err(args);
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn max_peers_is_for_stream_listeners() {
        let Request::Listen(r) = parse_ok(&["listen", "tcp", "127.0.0.1:0", "--max-peers", "3"])
        else {
            panic!("a listen request");
        };
        assert_eq!(r.max_peers, Some(3));
        let Request::Listen(r) = parse_ok(&["listen", "tcp", "127.0.0.1:0"]) else {
            panic!("a listen request");
        };
        assert_eq!(r.max_peers, None);
        for proto in ["udp", "unix-dgram"] {
            let addr = if proto == "udp" {
                "127.0.0.1:0"
            } else {
                "/tmp/x.sock"
            };
            assert!(
                parse_err(&["listen", proto, addr, "--max-peers", "3"])
                    .contains("--max-peers is for stream listeners (tcp, tls, unix)")
            );
        }
        let Request::Listen(r) = parse_ok(&["listen", "unix", "/tmp/x.sock", "--max-peers", "3"])
        else {
            panic!("a listen request");
        };
        assert_eq!(r.max_peers, Some(3));
        assert!(
            parse_err(&["listen", "tcp", "127.0.0.1:0", "--max-peers", "0"]).contains("1 or more")
        );
        assert!(parse_err(&["listen", "tcp", "127.0.0.1:0", "--max-peers", "-1"]).contains("-1"));
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

    #[test]
    fn listen_rules_and_framing() {
        let Request::Listen(r) = parse_ok(&[
            "listen",
            "tcp",
            "127.0.0.1:0",
            "--framing",
            "len:2le+incl",
            "--rule",
            r"name=login,starts:LOGIN ",
            r"ok\n",
            "--rule",
            r"after=login,delay=5,re:^GET (\S+)",
            "got $1",
            "--rule",
            "hex:00ff",
            "bin",
            "--max-message",
            "64",
        ]) else {
            panic!("not a listen")
        };
        let Answer::Rules {
            rules,
            framing,
            max_message,
        } = r.answer
        else {
            panic!("no rules: {:?}", r.answer)
        };
        assert_eq!(framing.notation(), "len:2le+incl");
        assert_eq!(max_message, std::num::NonZeroU32::new(64));
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].name, "login");
        assert_eq!(rules[0].when, Trigger::StartsWith("LOGIN ".into()));
        assert_eq!(rules[0].reply, Payload::from("ok\n"));
        assert_eq!(rules[1].after.as_deref(), Some("login"));
        assert_eq!(rules[1].delay_ms, Some(5));
        assert_eq!(
            rules[1].when,
            Trigger::Regex(RegexText::new(r"^GET (\S+)").unwrap())
        );
        assert_eq!(rules[2].name, "3");
        assert_eq!(
            rules[2].when,
            Trigger::StartsWith(Payload::new(vec![0, 0xff]))
        );
    }

    #[test]
    fn bad_rules_and_framings_are_one_line_each() {
        let listen = |extra: &[&str]| {
            let mut args = vec!["listen", "tcp", "127.0.0.1:0"];
            args.extend_from_slice(extra);
            parse_err(&args)
        };
        for (args, says) in [
            (&["--rule", "re:(", "x"][..], "bad regex"),
            (&["--rule", "after=nobody,any", "x"], "nobody"),
            (&["--rule", "delay=soon,any", "x"], "milliseconds"),
            (&["--rule", "name=a", "x"], "comma"),
            (&["--rule", "hex:zz", "x"], "--rule #1"),
            (&["--rule", "contains:", "x"], "bytes to look for"),
            (&["--rule", "any", r"\q"], "--rule REPLY #1"),
            (&["--rule", "any"], "PATTERN"),
            (&["--rule", "any", "x", "--framing", "len:3"], "1, 2 or 4"),
            (
                &["--rule", "any", "x", "--framing", "lines"],
                "unknown framing",
            ),
            (
                &["--rule", "any", "x", "--max-message", "0"],
                "--max-message",
            ),
            (&["--framing", "line"], "give a rule too"),
            (&["--rule", "any", "x", "--echo"], "cannot be used"),
        ] {
            let e = listen(args);
            assert!(e.contains(says), "{args:?} said {e}");
            assert!(
                !e.trim_end().contains('\n') || says == "PATTERN" || says == "cannot be used",
                "{args:?} said {e}"
            );
        }
    }

    #[test]
    fn a_word_that_looks_like_flags_is_not_help() {
        // clap alone reads -host:80 as -h (help) and exits 0.
        let e = parse_err(&["connect", "tcp", "-host:80"]);
        assert!(
            e.contains("\"-host:80\" is not an option of connect"),
            "{e}"
        );
        // Real short flags still work, and negative numbers are values.
        assert!(matches!(
            parse_ok(&["connect", "tcp", "127.0.0.1:7", "-q"]),
            Request::Connect(r) if r.quiet
        ));
        assert!(
            parse_err(&["connect", "tcp", "127.0.0.1:7", "--wait", "-1"]).contains("zero or more")
        );
        assert!(matches!(parse_ok(&["connect", "-h"]), Request::Print(_)));
        assert!(matches!(
            parse_ok(&["export", "x.ron", "--to", "csv", "-oout.csv"]),
            Request::Export(r) if r.output == Output::File("out.csv".into())
        ));
        assert!(matches!(
            parse_ok(&["export", "x.ron", "--to", "csv", "-o", "-"]),
            Request::Export(r) if r.output == Output::Stdout
        ));
        // A payload may still start with '-'.
        assert!(matches!(
            parse_ok(&["connect", "tcp", "127.0.0.1:7", "--send", "-host"]),
            Request::Connect(r) if literals(&r.payloads) == vec![b"-host".to_vec()]
        ));
    }

    #[test]
    fn long_bad_values_are_quoted_as_a_short_excerpt() {
        let long = "x".repeat(100_000);
        for args in [
            vec!["connect", "tcp", long.as_str()],
            vec!["connect", long.as_str(), "127.0.0.1:7"],
            vec!["connect", "tcp", "127.0.0.1:7", "--wait", long.as_str()],
            vec!["replay", "a.ron", "--speed", long.as_str()],
        ] {
            let e = parse_err(&args);
            assert!(e.len() < 400, "{} chars: {}", e.len(), &e[..200]);
            assert!(!e.contains('\n'));
        }
        let e = parse_err(&["connect", "tcp", "127.0.0.1:7", "--send", "\\q\u{1b}[31m"]);
        assert!(!e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn long_paths_are_quoted_as_a_short_excerpt() {
        // Before: every path argument came back whole in its error (100 KB).
        let long = format!("/tmp/{}", "p".repeat(100_000));
        let l = long.as_str();
        for args in [
            vec![l],
            vec!["check", "a.ron", l],
            vec!["replay", l],
            vec!["replay", "a.ron", "--save", l],
            vec!["export", l, "--to", "csv"],
            vec!["export", "a.ron", "--to", "csv", "-o", l],
            vec!["connect", "tcp", "127.0.0.1:7", "--save", l],
            vec!["connect", "tls", "127.0.0.1:7", "--ca", l],
            vec![
                "listen",
                "tls",
                "127.0.0.1:0",
                "--cert",
                l,
                "--key",
                "k.pem",
            ],
            vec![
                "listen",
                "tls",
                "127.0.0.1:0",
                "--cert",
                "c.pem",
                "--key",
                l,
            ],
        ] {
            let e = parse_err(&args);
            assert!(e.len() < 200, "{args:?}: {} chars: {}", e.len(), &e[..200]);
            assert!(
                e.ends_with("too long for a path (at most 4096 bytes)"),
                "{e}"
            );
        }
        // A long path that may exist is still taken as it is.
        let fits = format!("/tmp/{}", "p/".repeat(2000));
        assert!(matches!(parse_ok(&["check", &fits]), Request::Check(_)));
    }

    #[test]
    fn numbers_convert_without_panicking() {
        for bad in ["1e-300", "1e300", "NaN", "inf", "-1", "0.0001", "1001"] {
            let e = parse_err(&["replay", "a.ron", "--speed", bad]);
            assert!(e.starts_with("--speed"), "{bad}: {e}");
        }
        for good in ["0", "0.001", "1", "1000"] {
            assert!(matches!(
                parse_ok(&["replay", "a.ron", "--speed", good]),
                Request::Replay(_)
            ));
        }
        for bad in ["1e300", "NaN", "inf", "-0.5", "1e-400x"] {
            assert!(
                parse_err(&["listen", "tcp", "127.0.0.1:0", "--for", bad]).starts_with("--for")
            );
        }
        assert!(matches!(
            parse_ok(&["connect", "tcp", "127.0.0.1:7", "--connect-timeout", "2.5"]),
            Request::Connect(r) if r.connect_timeout == Some(Duration::from_millis(2500))
        ));
        assert!(
            parse_err(&["connect", "tcp", "127.0.0.1:7", "--connect-timeout", "0"])
                .contains("at least 0.001")
        );
    }

    #[test]
    fn log_budgets_parse_with_clear_errors() {
        assert_eq!(parse_log_budget("256MiB"), Ok(256 << 20));
        assert_eq!(parse_log_budget("1GiB"), Ok(1 << 30));
        assert_eq!(parse_log_budget("0"), Ok(0));
        assert_eq!(
            parse_log_budget("lots").unwrap_err(),
            "--log-budget \"lots\": the size starts with a number (256MiB, 1GiB, 0)"
        );
        assert_eq!(
            parse_log_budget("5 parsecs").unwrap_err(),
            "--log-budget \"5 parsecs\": \"parsecs\" is not a unit: use B, KiB, MiB, GiB or TiB (or kB, MB, GB, TB)"
        );
        assert_eq!(
            parse_log_budget("9999999TiB").unwrap_err(),
            "--log-budget \"9999999TiB\": more than 1 PiB is not a usable size"
        );
        for command in [
            &["connect", "tcp", "127.0.0.1:7"][..],
            &["listen", "tcp", "127.0.0.1:0"],
            &["replay", "a.ron"],
        ] {
            let mut args = command.to_vec();
            args.extend(["--log-budget", "-1"]);
            let e = parse(std::iter::once("sockbench").chain(args.iter().copied())).unwrap_err();
            assert!(e.summary, "{e:?}");
            assert!(e.message.starts_with("--log-budget"), "{}", e.message);
            let mut args = command.to_vec();
            args.extend(["--log-overflow", "keep"]);
            let e = parse_err(&args);
            assert!(e.contains("keep") && e.contains("spill, drop"), "{e}");
        }
        let Request::Listen(r) = parse_ok(&[
            "listen",
            "tcp",
            "127.0.0.1:0",
            "--log-budget",
            "1KiB",
            "--log-overflow",
            "drop",
        ]) else {
            panic!("not a listen")
        };
        assert_eq!(
            r.log,
            LogFlags {
                budget: Some(1024),
                overflow: Some(Overflow::Drop)
            }
        );
        assert_eq!(
            parse_err(&["replay", "a.ron", "--check", "--log-overflow", "drop"]),
            "--log-overflow drop cannot be used with --check: the check compares every received byte; leave it out (bytes beyond the budget then spill to disk)"
        );
    }

    #[test]
    fn a_run_that_reads_no_bytes_again_keeps_counts_only() {
        let flags = LogFlags {
            budget: Some(1024),
            overflow: Some(Overflow::Drop),
        };
        assert_eq!(
            flags.budget(true, false, false, None),
            LogBudget::counts_only()
        );
        assert_eq!(
            flags.budget(false, false, false, None),
            LogBudget::new(1024, Overflow::Drop)
        );
        assert_eq!(
            flags.budget(true, true, false, None),
            LogBudget::new(1024, Overflow::Drop)
        );
        // A check needs every byte: spill, and a quiet check still keeps them.
        assert_eq!(
            flags.budget(true, false, true, None),
            LogBudget::new(1024, Overflow::Spill)
        );
        let none = LogFlags::default();
        assert_eq!(none.budget(false, false, false, None), LogBudget::default());
        let session = LogBudget::new(5, Overflow::Drop);
        assert_eq!(none.budget(false, true, false, Some(session)), session);
    }

    #[test]
    fn parsing_touches_no_file() {
        // Files are read by prepare(), not parse(): a missing file is no usage error yet.
        assert!(matches!(
            parse_ok(&[
                "replay",
                "/nonexistent/x.ron",
                "--save",
                "/nonexistent/y.ron"
            ]),
            Request::Replay(_)
        ));
        assert!(matches!(
            parse_ok(&["connect", "tls", "127.0.0.1:7", "--ca", "/nonexistent.pem"]),
            Request::Connect(_)
        ));
    }
}
