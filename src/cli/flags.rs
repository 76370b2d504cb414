//! Stage one of the command line: the words as clap sees them.
//!
//! Every value here is the raw text the person typed; nothing is checked or
//! read from disk. [`super::request`] gives the words their meaning.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "sockbench",
    version,
    about = "A workbench for sockets: TCP, UDP and TLS endpoints, a timestamped traffic log, replayable session files.",
    long_about = None,
    args_conflicts_with_subcommands = true,
)]
pub(super) struct Cli {
    /// A session file to open in the workbench window (without a command).
    pub file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
    /// Connect to ADDR, send payloads in order, print everything that happens.
    Connect(ConnectArgs),
    /// Listen on ADDR, print everything that happens, optionally answer.
    Listen(ListenArgs),
    /// Relay each client to an upstream, recording both directions; impair the traffic if asked.
    Relay(Box<RelayArgs>),
    /// Replay a recorded session: clients send again, servers answer as recorded.
    Replay(ReplayArgs),
    /// Run a session's endpoints without the window (servers first, then
    /// clients), print everything that happens, until --for passes or Ctrl+C.
    Run(RunArgs),
    /// Export a session: an endpoint as a Python program, the log as Mermaid,
    /// CSV or a pcapng capture, the payloads as a hex dump.
    Export(ExportArgs),
    /// Turn a capture (pcap, pcapng) into a session that replays as a mock or a client.
    Import(ImportArgs),
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
    /// A Unix-domain stream socket (ADDR is a socket path, or @name on Linux).
    Unix,
    /// A Unix-domain datagram socket (ADDR is a socket path, or @name on Linux).
    UnixDgram,
}

impl Proto {
    /// The Unix-domain protocols, whose ADDR is a socket path.
    pub fn is_unix(self) -> bool {
        matches!(self, Proto::Unix | Proto::UnixDgram)
    }
}

/// What `--log-overflow` asks for.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OverflowArg {
    /// Write payload bytes beyond the budget to a file in the cache folder.
    Spill,
    /// Keep only their length and first bytes.
    Drop,
}

/// The log's memory budget, shared by connect, listen and replay.
#[derive(clap::Args, Debug)]
pub(super) struct LogArgs {
    /// Payload bytes the log keeps in memory, such as 256MiB, 1GiB or 0
    /// [default: 256MiB]; beyond it, --log-overflow decides. A --quiet run
    /// without --save keeps counts only.
    #[arg(
        long = "log-budget",
        value_name = "SIZE",
        allow_negative_numbers = true
    )]
    pub log_budget: Option<String>,
    /// Payload bytes beyond --log-budget: spill (to a file in the cache
    /// folder, read back for --save) or drop (keep counts and the first bytes) [default: spill].
    #[arg(long = "log-overflow", value_enum, value_name = "WHAT")]
    pub log_overflow: Option<OverflowArg>,
}

/// `export --to`: the names of [`crate::export::Format::ALL`], each with its
/// description in `--help` (the window's menu lists the same formats).
fn export_format() -> impl clap::builder::TypedValueParser<Value = crate::export::Format> {
    use crate::export::Format;
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
    PossibleValuesParser::new(Format::ALL.map(|f| PossibleValue::new(f.name()).help(f.about())))
        .try_map(|name| Format::from_name(&name).ok_or_else(|| format!("no format named {name}")))
}

#[derive(clap::Args, Debug)]
pub(super) struct ConnectArgs {
    /// tcp, udp, tls, unix or unix-dgram.
    pub proto: Proto,
    /// host:port or [v6addr]:port to connect (or send datagrams) to; for unix
    /// and unix-dgram, a socket path (or @name, a Linux abstract name).
    #[arg(value_name = "ADDR")]
    pub addr: String,
    /// A payload in text notation (escapes \r \n \t \0 \\ \xNN \u{...}); repeatable.
    #[arg(long = "send", value_name = "TEXT", allow_hyphen_values = true)]
    pub send: Vec<String>,
    /// A payload in hex (48 65 6c, 0x48,0x65 or 48656C); repeatable.
    #[arg(long = "send-hex", value_name = "HEX", allow_hyphen_values = true)]
    pub send_hex: Vec<String>,
    /// A payload read from a file (a regular file of at most 64 MiB), sent as
    /// it is; repeatable, in command-line order with --send and --send-hex.
    #[arg(long = "send-file", value_name = "PATH")]
    pub send_file: Vec<PathBuf>,
    /// UDP: leave the socket unconnected: send anywhere, hear anyone, never be
    /// told of a closed port (by default the socket is connected to ADDR).
    #[arg(long)]
    pub unconnected: bool,
    /// Bind the local end first: ADDR:PORT, an address alone (any port) or a
    /// port alone (any address) for tcp, tls and udp; for unix-dgram a socket
    /// PATH (or @name), so answers can come back.
    #[arg(long, value_name = "ADDR|PATH")]
    pub bind: Option<String>,
    #[command(flatten)]
    pub udp: UdpArgs,
    /// How long connecting (and the TLS handshake) may take before it fails as timed out.
    #[arg(
        long = "connect-timeout",
        value_name = "SECS",
        allow_negative_numbers = true
    )]
    pub connect_timeout: Option<String>,
    /// TLS: also trust the certificates in this PEM file (an authority, or the
    /// server's own self-signed certificate); repeatable.
    #[arg(long = "ca", value_name = "FILE.pem")]
    pub ca: Vec<PathBuf>,
    /// TLS: do not verify the server's certificate at all (testing only).
    #[arg(long)]
    pub insecure: bool,
    /// TLS: trust exactly the certificate with this SHA-256 (sha256:AB:CD:…, as
    /// a sockbench server logs it), whatever its name or issuer; said loudly.
    #[arg(long, value_name = "sha256:HEX")]
    pub pin: Option<String>,
    /// TLS: the server name to send and to check the certificate against
    /// (default: the host of ADDR); checked also for certificates given with --ca.
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// TLS: application protocols to offer, comma-separated (h2,http/1.1).
    #[arg(long, value_name = "LIST")]
    pub alpn: Option<String>,
    /// TCP and TLS: reach ADDR through a proxy, socks5://[USER:PASS@]HOST:PORT
    /// (host names in ADDR are resolved by the proxy) or http://[USER:PASS@]HOST:PORT (CONNECT).
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// TCP and TLS: when the connection fails or ends (not by Ctrl+C), connect
    /// again, up to N times (0 or no N: until stopped), waiting as --backoff says.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "0")]
    pub reconnect: Option<String>,
    /// The first and the longest wait of --reconnect, doubling in between:
    /// MIN..MAX in ms or with units (100ms..5s, 1s..1m) [default: 500ms..30s].
    #[arg(long, value_name = "MIN..MAX")]
    pub backoff: Option<String>,
    /// Take each --reconnect wait at random between half and all of it.
    #[arg(long)]
    pub jitter: bool,
    /// Send the payloads N times in all (0: until stopped, Ctrl+C); each round
    /// goes once the one before is written and --interval has passed since it began.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub repeat: Option<String>,
    /// Milliseconds from the start of one --repeat round to the next (default 1000).
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    pub interval: Option<String>,
    /// After the last send, stop once this many seconds pass with no data.
    #[arg(
        long,
        value_name = "SECS",
        default_value = "1",
        allow_negative_numbers = true
    )]
    pub wait: String,
    /// Write a session file with the endpoint and its whole log.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
    /// Print no event lines (the summary line still goes to stderr).
    #[arg(long, short)]
    pub quiet: bool,
    /// Print a line on stderr every second: payloads and bytes sent and
    /// received, their rates over that second, the connections (or UDP peers).
    #[arg(long)]
    pub stats: bool,
    /// Print one JSON object per event on stdout instead of the event lines
    /// (fields in the README); the summary line stays on stderr.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("answer").args(["echo", "reply", "reply_hex", "rule"])))]
pub(super) struct ListenArgs {
    /// tcp, udp, tls, unix or unix-dgram.
    pub proto: Proto,
    /// host:port or [v6addr]:port to listen on (port 0 picks a free port); for
    /// unix and unix-dgram, a socket path (or @name, a Linux abstract name).
    #[arg(value_name = "ADDR")]
    pub addr: String,
    /// unix, unix-dgram: remove a stale socket file at the path first (one
    /// nobody listens on); any other file there is never touched.
    #[arg(long)]
    pub unlink: bool,
    /// Send every received payload back to its sender.
    #[arg(long)]
    pub echo: bool,
    /// Answer each received payload with this payload (text notation).
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub reply: Option<String>,
    /// Answer each received payload with this payload (hex).
    #[arg(long = "reply-hex", value_name = "HEX", allow_hyphen_values = true)]
    pub reply_hex: Option<String>,
    /// Answer messages that match PATTERN with REPLY (text notation; `$1`,
    /// `${name}` take a regex's captures); repeat for more rules, the first match
    /// answers. PATTERN is `[name=N,][after=N,][delay=MS,]KIND:TEXT` with KIND
    /// re (the default), exact, contains, starts, hex (a hex prefix) or any.
    #[arg(long, num_args = 2, value_names = ["PATTERN", "REPLY"], allow_hyphen_values = true, action = clap::ArgAction::Append)]
    pub rule: Vec<String>,
    /// How the rules see the stream: raw (each read), line, crlf, delim:HEX,
    /// len:1, len:2be, len:4le, … (+incl when the length counts its prefix).
    #[arg(long, value_name = "FRAMING")]
    pub framing: Option<String>,
    /// The longest message the rules see, in bytes (default 1048576); longer ones are cut.
    #[arg(long = "max-message", value_name = "BYTES")]
    pub max_message: Option<String>,
    /// TLS: the certificate chain to present (PEM); without it, a self-signed
    /// certificate for localhost, 127.0.0.1 and ::1 is made.
    #[arg(long, value_name = "FILE.pem")]
    pub cert: Option<PathBuf>,
    /// TLS: the private key of --cert (PEM).
    #[arg(long, value_name = "FILE.pem")]
    pub key: Option<PathBuf>,
    /// TLS: application protocols to accept, comma-separated (h2,http/1.1).
    #[arg(long, value_name = "LIST")]
    pub alpn: Option<String>,
    /// Stop after this many seconds.
    #[arg(long = "for", value_name = "SECS", allow_negative_numbers = true)]
    pub for_secs: Option<String>,
    /// TCP, TLS: take at most N peers at once; one more is accepted and closed
    /// at once, with the reason logged.
    #[arg(long = "max-peers", value_name = "N")]
    pub max_peers: Option<u32>,
    /// UDP: join this multicast group when the socket starts (224.0.0.0/4 or
    /// ff00::/8; ADDR is then usually the group and port); repeatable.
    #[arg(long, value_name = "GROUP")]
    pub join: Vec<String>,
    #[command(flatten)]
    pub udp: UdpArgs,
    /// Stop after the first peer has gone (TCP, TLS: after a completed handshake)
    /// or the first datagram is answered (UDP).
    #[arg(long)]
    pub once: bool,
    /// Write a session file with the endpoint and its whole log.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
    /// Print no event lines (the summary line, and the address listened on, still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
    /// Print a line on stderr every second: payloads and bytes sent and
    /// received, their rates over that second, the connections (or UDP peers).
    #[arg(long)]
    pub stats: bool,
    /// Print one JSON object per event on stdout instead of the event lines
    /// (fields in the README); the summary line stays on stderr.
    #[arg(long)]
    pub json: bool,
}

/// `on` or `off`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OnOff {
    On,
    Off,
}

/// Broadcast and multicast options of a UDP socket, shared by connect and listen.
#[derive(clap::Args, Debug)]
pub(super) struct UdpArgs {
    /// UDP: allow sending to broadcast addresses (SO_BROADCAST).
    #[arg(long)]
    pub broadcast: bool,
    /// UDP: the multicast interface, where groups are joined and multicast
    /// goes out: an IPv4 address of it (127.0.0.1), or for IPv6 its index or name (1, lo).
    #[arg(long, value_name = "IFACE")]
    pub iface: Option<String>,
    /// UDP: how many routers outgoing multicast may cross, 0 to 255 (the kernel's default is 1).
    #[arg(long = "multicast-ttl", value_name = "N")]
    pub multicast_ttl: Option<String>,
    /// UDP: whether this machine's own members hear what we send (the kernel's default is on).
    #[arg(long = "multicast-loop", value_enum, value_name = "on|off")]
    pub multicast_loop: Option<OnOff>,
}

/// What `replay --as` plays of a relay's recording.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AsArg {
    /// A mock of the upstream: listen, answer clients as the upstream did.
    Upstream,
    /// The client: send the recorded requests to the (real) upstream.
    Client,
}

#[derive(clap::Args, Debug)]
pub(super) struct RelayArgs {
    /// tcp, udp or tls.
    pub proto: Proto,
    /// host:port or [v6addr]:port to listen on for clients (port 0 picks a free port).
    #[arg(value_name = "LISTEN")]
    pub listen: String,
    /// host:port of the upstream each client is relayed to.
    #[arg(long = "to", value_name = "UPSTREAM", required = true)]
    pub to: String,
    /// TLS toward clients: the certificate chain to present (PEM); without it,
    /// a self-signed certificate for localhost, 127.0.0.1 and ::1 is made.
    #[arg(long, value_name = "FILE.pem")]
    pub cert: Option<PathBuf>,
    /// TLS toward clients: the private key of --cert (PEM).
    #[arg(long, value_name = "FILE.pem")]
    pub key: Option<PathBuf>,
    /// TLS toward the upstream: also trust the certificates in this PEM file; repeatable.
    #[arg(long = "ca", value_name = "FILE.pem")]
    pub ca: Vec<PathBuf>,
    /// TLS toward the upstream: do not verify its certificate at all (testing only).
    #[arg(long)]
    pub insecure: bool,
    /// TLS toward the upstream: trust exactly the certificate with this SHA-256.
    #[arg(long, value_name = "sha256:HEX")]
    pub pin: Option<String>,
    /// TLS toward the upstream: the server name to send and check (default: the host of UPSTREAM).
    #[arg(long, visible_alias = "name", value_name = "NAME")]
    pub sni: Option<String>,
    /// How long connecting to the upstream (and each TLS handshake) may take.
    #[arg(
        long = "connect-timeout",
        value_name = "SECS",
        allow_negative_numbers = true
    )]
    pub connect_timeout: Option<String>,
    /// Relay at most N clients at once (TCP, TLS: one more is closed at once;
    /// UDP: datagrams from a new client are dropped and counted) [UDP default: 256].
    #[arg(long = "max-peers", value_name = "N")]
    pub max_peers: Option<u32>,
    /// Stop after this many seconds.
    #[arg(long = "for", value_name = "SECS", allow_negative_numbers = true)]
    pub for_secs: Option<String>,
    /// The direction of impairments written without up: or down: (up is
    /// client → upstream, down is upstream → client).
    #[arg(long, value_enum, value_name = "WAY", default_value = "both")]
    pub direction: WayArg,
    /// Delay each read, with optional jitter: 50ms, 50ms±10ms (or 50ms+-10ms); up:/down: in front picks a direction.
    #[arg(long, value_name = "TIME[±TIME]")]
    pub latency: Vec<String>,
    /// Cap the rate: 100KiB/s, 1MB/s.
    #[arg(long, value_name = "SIZE/s")]
    pub bandwidth: Vec<String>,
    /// TCP, TLS: write in pieces of N bytes, a gap apart: 16, 16/5ms [gap 1ms].
    #[arg(long, value_name = "N[/TIME]")]
    pub slice: Vec<String>,
    /// TCP, TLS: close both connections after N bytes of a direction (4KiB), or a time after the client came (2s).
    #[arg(
        long = "close-after",
        visible_alias = "limit-bytes",
        value_name = "N|TIME"
    )]
    pub close_after: Vec<String>,
    /// TCP, TLS: reset both connections after N bytes of a direction, or a time after the client came.
    #[arg(long = "reset-after", value_name = "N|TIME")]
    pub reset_after: Vec<String>,
    /// UDP: drop this share of datagrams: 10%.
    #[arg(long, value_name = "PERCENT")]
    pub loss: Vec<String>,
    /// UDP: send this share of datagrams twice: 5%.
    #[arg(long = "dup", value_name = "PERCENT")]
    pub dup: Vec<String>,
    /// UDP: hold this share of datagrams back, behind the next one: 5%.
    #[arg(long, value_name = "PERCENT")]
    pub reorder: Vec<String>,
    /// Seed the chances (loss, dup, reorder, jitter), to repeat a run exactly.
    #[arg(long, value_name = "N")]
    pub seed: Option<String>,
    /// Write a session file with the relay and its whole log (replay it --as upstream or --as client).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Print one JSON object per event on stdout instead of the event lines;
    /// a relay's `received` is client → upstream, its `sent` upstream → client.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: LogArgs,
    /// Print no event lines (the summary line, and the address listened on, still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--direction`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WayArg {
    /// Client → upstream.
    Up,
    /// Upstream → client.
    Down,
    Both,
}

#[derive(clap::Args, Debug)]
pub(super) struct ReplayArgs {
    /// The session file with the recording.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Connect to (client) or listen on (server) this address instead of the recorded one.
    #[arg(long, value_name = "ADDR")]
    pub target: Option<String>,
    /// Replay only this endpoint of the session.
    #[arg(long, value_name = "NAME")]
    pub endpoint: Option<String>,
    /// A relay's recording: replay it as the upstream (a mock that answers
    /// clients as the upstream did) or as the client (against the upstream).
    #[arg(long = "as", value_enum, value_name = "SIDE")]
    pub as_side: Option<AsArg>,
    /// 1 plays the recorded timing, 2 twice as fast, 0 without waiting.
    #[arg(
        long,
        value_name = "X",
        default_value = "1",
        allow_negative_numbers = true
    )]
    pub speed: String,
    /// Compare what comes back with the recording; exit 1 on a difference.
    #[arg(long)]
    pub check: bool,
    /// Unix mock servers and bound unix-dgram sockets: remove a stale socket
    /// file at the recorded path first (one nobody listens on), as `listen
    /// --unlink`; any other file there is never touched.
    #[arg(long)]
    pub unlink: bool,
    /// --check: do not compare what this regular expression matches (only its
    /// named groups, when it has some), on either side; repeatable.
    #[arg(long, value_name = "REGEX", allow_hyphen_values = true)]
    pub ignore: Vec<String>,
    /// --check: do not compare bytes START..END (or START.. to the end) of each
    /// connection's stream or datagram; NAME=START..END names the field; repeatable.
    #[arg(long = "ignore-bytes", value_name = "[NAME=]A..B")]
    pub ignore_bytes: Vec<String>,
    /// --check: also write the results for CI: junit FILE.xml (one test case per connection or exchange).
    #[arg(long, num_args = 2, value_names = ["FORMAT", "FILE"])]
    pub report: Vec<String>,
    /// How long to wait for data the recording says comes next.
    #[arg(
        long,
        value_name = "SECS",
        default_value = "5",
        allow_negative_numbers = true
    )]
    pub timeout: String,
    /// Write a session file with the replayed endpoints and the new log.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
    /// Print no event lines (the summary line still goes to stderr).
    #[arg(long, short)]
    pub quiet: bool,
    /// Print one JSON object per event on stdout instead of the event lines
    /// (fields in the README); the summary line stays on stderr.
    #[arg(long)]
    pub json: bool,
    /// Print a line on stderr every second: payloads and bytes sent and
    /// received, their rates over that second, the connections.
    #[arg(long)]
    pub stats: bool,
}

#[derive(clap::Args, Debug)]
pub(super) struct RunArgs {
    /// The session file whose endpoints to run.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Run only the endpoint of this name; repeatable (default: every endpoint).
    #[arg(long, value_name = "NAME")]
    pub endpoint: Vec<String>,
    /// Stop after this many seconds (default: until Ctrl+C, or until every endpoint has stopped).
    #[arg(long = "for", value_name = "SECS", allow_negative_numbers = true)]
    pub for_secs: Option<String>,
    /// Write the session (all its endpoints, its library and notes) with this run's log.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
    /// Print no event lines (the summary line, and the addresses listened on, still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
    /// Print one JSON object per event on stdout instead of the event lines
    /// (fields in the README); the summary line stays on stderr.
    #[arg(long)]
    pub json: bool,
    /// Print a line on stderr every second: payloads and bytes sent and
    /// received, their rates over that second, the open connections.
    #[arg(long)]
    pub stats: bool,
}

#[derive(clap::Args, Debug)]
pub(super) struct ExportArgs {
    /// The session file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// What to write (see the list below).
    #[arg(long = "to", value_name = "FORMAT", value_parser = export_format())]
    pub to: crate::export::Format,
    /// Write here instead of to stdout (`-` is stdout too).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// The endpoint of a Python program (default: the first client with recorded payloads).
    #[arg(long, value_name = "NAME")]
    pub endpoint: Option<String>,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("which").args(["conversation", "port"])))]
pub(super) struct ImportArgs {
    /// The capture file (pcap or pcapng, as tcpdump, dumpcap or Wireshark write).
    #[arg(value_name = "CAPTURE")]
    pub capture: PathBuf,
    /// The session file to write (`-` for standard output).
    #[arg(short = 'o', long = "output", value_name = "SESSION.ron")]
    pub output: PathBuf,
    /// Import conversation N of the listing (default: the one with the most bytes).
    #[arg(long, value_name = "N")]
    pub conversation: Option<String>,
    /// Import every conversation on this port, as connections to one server.
    #[arg(long, value_name = "P")]
    pub port: Option<String>,
}
