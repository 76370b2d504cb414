//! An endpoint's settings as typed: raw text fields, checked as they are typed,
//! turned into an [`EndpointSpec`] in one place ([`EndpointForm::validate`]).

use crate::model::endpoint::{DEFAULT_CONNECT_TIMEOUT_SECS, RegexText};
use crate::model::framing::ReceiveFraming;
use crate::model::impair::{Impairments, Toxics, Way};
use crate::model::impair::{duration_text, parse_duration};
use crate::model::placeholder::Scope;
use crate::model::proxy::{Proxy, Reconnect, parse_backoff};
use crate::model::schedule::{MAX_REPEAT, Repeat, ScheduledSend, SendPayload};
use crate::model::{
    AutoReply, EndpointKind, EndpointSpec, HostPort, KindTag, Notation, Payload, RelayTransport,
    Rule, SocketOptions, TlsClientSettings, TlsServerSettings, Trigger, UnixPath,
};

/// How the endpoint answers by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    Off,
    Echo,
    Rules,
}

impl ReplyMode {
    pub const ALL: [ReplyMode; 3] = [ReplyMode::Off, ReplyMode::Echo, ReplyMode::Rules];

    pub fn label(self) -> &'static str {
        match self {
            ReplyMode::Off => "No auto-reply",
            ReplyMode::Echo => "Echo everything back",
            ReplyMode::Rules => "Answer by rules",
        }
    }
}

/// What a rule matches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerTag {
    Always,
    Exact,
    Contains,
    StartsWith,
    HexPrefix,
    Regex,
}

impl TriggerTag {
    pub const ALL: [TriggerTag; 6] = [
        TriggerTag::Always,
        TriggerTag::Exact,
        TriggerTag::Contains,
        TriggerTag::StartsWith,
        TriggerTag::HexPrefix,
        TriggerTag::Regex,
    ];

    pub fn label(self) -> &'static str {
        match self {
            TriggerTag::Always => "any message",
            TriggerTag::Exact => "is exactly",
            TriggerTag::Contains => "contains",
            TriggerTag::StartsWith => "starts with",
            TriggerTag::HexPrefix => "starts with (hex)",
            TriggerTag::Regex => "matches regex",
        }
    }
}

/// One auto-reply rule as typed.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleForm {
    pub trigger: TriggerTag,
    /// The bytes to look for (text notation) or the regular expression.
    pub pattern: String,
    pub reply: String,
    pub reply_notation: Notation,
    /// The name other rules wait for (may be empty).
    pub name: String,
    /// The name of the rule that must have matched first on the connection (may be empty).
    pub after: String,
    /// Milliseconds before the reply goes out (may be empty).
    pub delay_ms: String,
}

impl Default for RuleForm {
    fn default() -> Self {
        Self {
            trigger: TriggerTag::Always,
            pattern: String::new(),
            reply: String::new(),
            reply_notation: Notation::Text,
            name: String::new(),
            after: String::new(),
            delay_ms: String::new(),
        }
    }
}

/// Where a scheduled send's payload comes from, as chosen in the form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendSource {
    /// Typed in text notation, placeholders allowed.
    Text,
    /// A library payload, by name.
    Library,
}

/// One scheduled send as typed.
#[derive(Clone, Debug, PartialEq)]
pub struct SendForm {
    pub source: SendSource,
    /// The payload in text notation (with `${counter}` and the other placeholders).
    pub text: String,
    /// The library payload's name.
    pub library: String,
    /// After the connection: `0ms`, `500ms`, `1.5s`; empty for at once.
    pub delay: String,
    /// How many times: a number, empty for once; ignored when `until_stopped`.
    pub repeat: String,
    pub until_stopped: bool,
    /// From one send to the next: `50ms`, `1s`; needed when it repeats.
    pub interval: String,
}

impl Default for SendForm {
    fn default() -> Self {
        SendForm {
            source: SendSource::Text,
            text: String::new(),
            library: String::new(),
            delay: String::new(),
            repeat: String::new(),
            until_stopped: false,
            interval: String::new(),
        }
    }
}

/// Why a scheduled send's fields are not acceptable, each beside its field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SendErrors {
    pub payload: Option<String>,
    pub delay: Option<String>,
    pub repeat: Option<String>,
    pub interval: Option<String>,
}

impl SendErrors {
    pub fn is_empty(&self) -> bool {
        self.first().is_none()
    }

    pub fn first(&self) -> Option<String> {
        let field = |label: &str, e: &Option<String>| e.as_ref().map(|e| format!("{label}: {e}"));
        field("payload", &self.payload)
            .or_else(|| field("delay", &self.delay))
            .or_else(|| field("repeat", &self.repeat))
            .or_else(|| field("interval", &self.interval))
    }
}

impl SendForm {
    pub fn from_send(send: &ScheduledSend) -> SendForm {
        let (source, text, library) = match &send.payload {
            SendPayload::Text(t) => (SendSource::Text, t.clone(), String::new()),
            SendPayload::Library(n) => (SendSource::Library, String::new(), n.clone()),
        };
        let time = |d: std::time::Duration, keep_zero: bool| {
            if d.is_zero() && !keep_zero {
                String::new()
            } else {
                duration_text(d)
            }
        };
        SendForm {
            source,
            text,
            library,
            delay: time(send.delay, false),
            repeat: match send.repeat {
                Repeat::Times(1) | Repeat::UntilStopped => String::new(),
                Repeat::Times(n) => n.to_string(),
            },
            until_stopped: send.repeat == Repeat::UntilStopped,
            interval: time(send.interval, !send.repeat.is_once()),
        }
    }

    /// The send, or each field's error; `library` holds the session's
    /// library names (`None`: not checked here).
    pub fn validate(&self, library: Option<&[String]>) -> Result<ScheduledSend, SendErrors> {
        let mut errors = SendErrors::default();
        let payload = match self.source {
            SendSource::Text => {
                match crate::model::placeholder::parse_text(&self.text, &Scope::Plain) {
                    _ if self.text.is_empty() => {
                        errors.payload = Some("give the payload (at least one byte)".into());
                    }
                    Ok(_) => {}
                    Err(e) => errors.payload = Some(e.to_string()),
                }
                SendPayload::Text(self.text.clone())
            }
            SendSource::Library => {
                let name = self.library.clone();
                if name.is_empty() {
                    errors.payload = Some("choose a library payload".into());
                } else if library.is_some_and(|l| !l.contains(&name)) {
                    errors.payload = Some(format!(
                        "the library has no payload named \"{}\"",
                        crate::model::escape_controls(&name)
                    ));
                }
                SendPayload::Library(name)
            }
        };
        let time = |text: &str| -> Result<std::time::Duration, String> {
            match text.trim() {
                "" => Ok(std::time::Duration::ZERO),
                t => parse_duration(t),
            }
        };
        let delay = time(&self.delay)
            .map_err(|e| errors.delay = Some(e))
            .unwrap_or_default();
        let repeat = if self.until_stopped {
            Repeat::UntilStopped
        } else {
            match self.repeat.trim() {
                "" => Repeat::Times(1),
                t => match t.parse::<u32>() {
                    Ok(n) if (1..=MAX_REPEAT).contains(&n) => Repeat::Times(n),
                    _ => {
                        errors.repeat = Some(format!("give 1 to {MAX_REPEAT} times"));
                        Repeat::Times(1)
                    }
                },
            }
        };
        let interval = time(&self.interval)
            .map_err(|e| errors.interval = Some(e))
            .unwrap_or_default();
        let send = ScheduledSend {
            payload,
            delay,
            repeat,
            interval,
        };
        if errors.interval.is_none()
            && !repeat.is_once()
            && interval < crate::model::schedule::MIN_INTERVAL
        {
            errors.interval = Some("a send that repeats needs an interval of at least 1ms".into());
        }
        if errors.is_empty() {
            // Whatever the fields above let through, the file's own check has the last word.
            if let Err(e) = send.check() {
                errors.payload = Some(e);
            }
        }
        if errors.is_empty() {
            Ok(send)
        } else {
            Err(errors)
        }
    }
}

/// Socket options as typed; empty means the system default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptionsForm {
    pub nodelay: bool,
    pub broadcast: bool,
    pub reuse_address: bool,
    pub keepalive_secs: String,
    pub linger_secs: String,
    pub ttl: String,
    pub recv_buffer: String,
    pub send_buffer: String,
    pub connect_timeout_secs: String,
    /// A TCP or TLS server's cap on concurrent peers; empty for none.
    pub max_peers: String,
    /// A UDP socket with a default remote left unconnected (sendto/recvfrom
    /// with anyone); the default is connected to its remote.
    pub unconnected: bool,
    /// A TCP or TLS client's local address and/or port (empty: the system's choice).
    pub bind: String,
    /// UDP: the multicast groups joined at start (each checked when added).
    pub groups: Vec<std::net::IpAddr>,
    /// UDP: the multicast interface (IPv4 address, or IPv6 index or name); empty: the kernel's choice.
    pub multicast_iface: String,
    /// UDP: IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS; empty: the kernel's default (1).
    pub multicast_ttl: String,
    /// UDP: IP_MULTICAST_LOOP; `None` keeps the kernel's default (on).
    pub multicast_loop: Option<bool>,
    /// UDP: the group being typed, before Join adds it to `groups`.
    pub group_input: String,
}

/// TLS settings as typed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsForm {
    /// Extra PEM files to trust, separated by ';' (client).
    pub ca: String,
    pub insecure: bool,
    /// The server name (client); empty means the host.
    pub sni: String,
    /// Application protocols, separated by commas.
    pub alpn: String,
    /// The one certificate trusted whatever its name (client): `sha256:AB:CD:…`; empty for none.
    pub pin: String,
    /// Certificate and key files (server); both empty make a self-signed certificate.
    pub cert: String,
    pub key: String,
}

/// Which relays an impairment fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fits {
    Any,
    /// TCP and TLS: it cuts or ends a stream.
    Stream,
    /// UDP: it drops, doubles or reorders datagrams.
    Datagram,
}

impl Fits {
    pub fn relay(self, transport: RelayTransport) -> bool {
        match self {
            Fits::Any => true,
            Fits::Stream => transport != RelayTransport::Udp,
            Fits::Datagram => transport == RelayTransport::Udp,
        }
    }
}

/// One impairment's field: label, hint (an example of its notation), tooltip,
/// and the relays it fits. The order is [`ToxicsForm`]'s.
pub struct ToxicField {
    pub label: &'static str,
    pub hint: &'static str,
    pub tip: &'static str,
    pub fits: Fits,
}

/// The impairments a relay offers, in the order of [`ToxicsForm`].
pub const TOXIC_FIELDS: [ToxicField; 8] = [
    ToxicField {
        label: "Latency",
        hint: "50ms or 50ms±10ms",
        tip: "Pass each read on this much later, with optional jitter (± up to it): 50ms, 50ms±10ms",
        fits: Fits::Any,
    },
    ToxicField {
        label: "Bandwidth",
        hint: "100KiB/s",
        tip: "At most this many bytes a second: 100KiB/s, 1MB/s",
        fits: Fits::Any,
    },
    ToxicField {
        label: "Slice",
        hint: "16 or 16/5ms",
        tip: "Write in pieces of at most N bytes, a gap apart (default 1 ms): 16, 16/5ms",
        fits: Fits::Stream,
    },
    ToxicField {
        label: "Close after",
        hint: "4KiB or 2s",
        tip: "Close both connections after so many bytes of this direction (1000, 4KiB) or so long after the client came (2s)",
        fits: Fits::Stream,
    },
    ToxicField {
        label: "Reset after",
        hint: "4KiB or 2s",
        tip: "Reset both connections after so many bytes of this direction (1000, 4KiB) or so long after the client came (2s)",
        fits: Fits::Stream,
    },
    ToxicField {
        label: "Loss",
        hint: "10%",
        tip: "Drop this share of datagrams (seeded: the same seed drops the same ones)",
        fits: Fits::Datagram,
    },
    ToxicField {
        label: "Duplicate",
        hint: "5%",
        tip: "Send this share of datagrams twice",
        fits: Fits::Datagram,
    },
    ToxicField {
        label: "Reorder",
        hint: "5%",
        tip: "Hold this share of datagrams back, to go after the next one",
        fits: Fits::Datagram,
    },
];

/// One direction's impairments as typed, in the order of [`TOXIC_FIELDS`];
/// empty is none.
pub type ToxicsForm = [String; 8];

/// The impairment at `i` of [`TOXIC_FIELDS`], in its notation (empty: none).
fn toxic_text(t: &Toxics, i: usize) -> String {
    match i {
        0 => opt_to_text(t.latency.as_ref()),
        1 => opt_to_text(t.bandwidth.as_ref()),
        2 => opt_to_text(t.slice.as_ref()),
        3 => opt_to_text(t.close_after.as_ref()),
        4 => opt_to_text(t.reset_after.as_ref()),
        5 => opt_to_text(t.loss.as_ref()),
        6 => opt_to_text(t.duplicate.as_ref()),
        _ => opt_to_text(t.reorder.as_ref()),
    }
}

/// Sets the impairment at `i` of [`TOXIC_FIELDS`] from its notation (empty: none).
fn set_toxic(t: &mut Toxics, i: usize, text: &str) -> Result<(), String> {
    fn parse<T: std::str::FromStr<Err = String>>(text: &str) -> Result<Option<T>, String> {
        match text.trim() {
            "" => Ok(None),
            v => v.parse().map(Some),
        }
    }
    match i {
        0 => t.latency = parse(text)?,
        1 => t.bandwidth = parse(text)?,
        2 => t.slice = parse(text)?,
        3 => t.close_after = parse(text)?,
        4 => t.reset_after = parse(text)?,
        5 => t.loss = parse(text)?,
        6 => t.duplicate = parse(text)?,
        _ => t.reorder = parse(text)?,
    }
    Ok(())
}

/// A relay's own settings as typed (its listen address is the form's
/// `local`, its upstream the form's `remote`, its TLS the form's `tls`:
/// certificate and key toward clients, trust, name and pin toward the upstream).
#[derive(Clone, Debug, PartialEq)]
pub struct RelayForm {
    pub transport: RelayTransport,
    /// Client → upstream.
    pub up: ToxicsForm,
    /// Upstream → client.
    pub down: ToxicsForm,
    /// Seeds the chances; empty draws one at start (said in the log).
    pub seed: String,
}

impl Default for RelayForm {
    fn default() -> Self {
        RelayForm {
            transport: RelayTransport::Tcp,
            up: Default::default(),
            down: Default::default(),
            seed: String::new(),
        }
    }
}

/// How a TCP or TLS client reaches its remote, as typed: a proxy, and reconnecting.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientForm {
    /// `socks5://[user:pass@]host:port` or `http://…`; empty for a direct connection.
    pub proxy: String,
    pub reconnect: bool,
    /// Attempts after a failure or an end; empty for until stopped.
    pub attempts: String,
    /// The first and the longest wait: `500ms..30s`.
    pub backoff: String,
    pub jitter: bool,
}

impl Default for ClientForm {
    fn default() -> Self {
        let r = Reconnect::default();
        Self {
            proxy: String::new(),
            reconnect: false,
            attempts: String::new(),
            backoff: backoff_text(&r),
            jitter: false,
        }
    }
}

impl RelayForm {
    pub fn way_mut(&mut self, way: Way) -> &mut ToxicsForm {
        match way {
            Way::Up => &mut self.up,
            Way::Down => &mut self.down,
        }
    }

    fn from_impairments(transport: RelayTransport, impair: &Impairments) -> Self {
        let texts = |t: &Toxics| std::array::from_fn(|i| toxic_text(t, i));
        RelayForm {
            transport,
            up: texts(&impair.up),
            down: texts(&impair.down),
            seed: opt_to_text(impair.seed),
        }
    }

    /// The impairments, or why not, each reason in its field's place.
    fn validate(&self, errors: &mut RelayErrors) -> Impairments {
        let mut impair = Impairments::default();
        for (way, texts, errs) in [
            (Way::Up, &self.up, &mut errors.up),
            (Way::Down, &self.down, &mut errors.down),
        ] {
            let toxics = impair.way_mut(way);
            for (i, text) in texts.iter().enumerate() {
                if text.trim().is_empty() {
                    continue;
                }
                let fits = TOXIC_FIELDS[i].fits;
                if !fits.relay(self.transport) {
                    errs[i] = Some(match fits {
                        Fits::Datagram => {
                            "for UDP relays only: a stream loses, doubles and reorders nothing (clear it)"
                        }
                        _ => "for TCP and TLS relays only: datagrams have no stream to cut or close (clear it)",
                    }
                    .into());
                } else if let Err(e) = set_toxic(toxics, i, text) {
                    errs[i] = Some(e);
                }
            }
        }
        match self.seed.trim() {
            "" => {}
            t => match t.parse::<u64>() {
                Ok(n) => impair.seed = Some(n),
                Err(_) => {
                    errors.seed = Some(format!(
                        "seed \"{}\": give a whole number, 0 to {}",
                        crate::model::display::escape_controls(
                            &t.chars().take(24).collect::<String>()
                        ),
                        u64::MAX
                    ))
                }
            },
        }
        impair
    }
}

/// Why a relay's impairments are not acceptable, each by its field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RelayErrors {
    pub up: [Option<String>; 8],
    pub down: [Option<String>; 8],
    pub seed: Option<String>,
}

impl RelayErrors {
    pub fn way(&self, way: Way) -> &[Option<String>; 8] {
        match way {
            Way::Up => &self.up,
            Way::Down => &self.down,
        }
    }

    fn is_empty(&self) -> bool {
        self.up.iter().chain(&self.down).all(Option::is_none) && self.seed.is_none()
    }

    fn first(&self) -> Option<String> {
        for way in [Way::Up, Way::Down] {
            for (i, e) in self.way(way).iter().enumerate() {
                if let Some(e) = e {
                    return Some(format!(
                        "{} {}: {e}",
                        TOXIC_FIELDS[i].label.to_lowercase(),
                        way.arrow()
                    ));
                }
            }
        }
        self.seed.clone()
    }
}

fn backoff_text(r: &Reconnect) -> String {
    let unit = |ms: u64| {
        if ms >= 1000 && ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
    };
    format!("{}..{}", unit(r.min_ms), unit(r.max_ms))
}

impl ClientForm {
    fn from_spec(spec: &EndpointSpec) -> Self {
        let mut form = ClientForm {
            proxy: spec.proxy.as_ref().map(Proxy::url).unwrap_or_default(),
            ..Default::default()
        };
        if let Some(r) = &spec.reconnect {
            form.reconnect = true;
            form.attempts = opt_to_text(r.attempts);
            form.backoff = backoff_text(r);
            form.jitter = r.jitter;
        }
        form
    }

    /// The proxy (an error for the proxy field), then the reconnect settings
    /// (an error for the reconnect fields).
    #[allow(clippy::type_complexity)]
    pub fn validate(
        &self,
    ) -> (
        Result<Option<Proxy>, String>,
        Result<Option<Reconnect>, String>,
    ) {
        let proxy = match self.proxy.trim() {
            "" => Ok(None),
            t => Proxy::parse(t).map(Some),
        };
        let reconnect = if self.reconnect {
            (|| {
                let attempts = match self.attempts.trim() {
                    "" => None,
                    t => match t.parse::<u32>() {
                        Ok(n) if (1..=crate::model::proxy::MAX_ATTEMPTS).contains(&n) => Some(n),
                        _ => {
                            return Err(format!(
                                "attempts \"{}\": give 1 to {}, or leave empty for until stopped",
                                crate::model::escape_controls(
                                    &t.chars().take(20).collect::<String>()
                                ),
                                crate::model::proxy::MAX_ATTEMPTS
                            ));
                        }
                    },
                };
                let (min_ms, max_ms) = parse_backoff(&self.backoff)?;
                Ok(Some(Reconnect {
                    attempts,
                    min_ms,
                    max_ms,
                    jitter: self.jitter,
                }))
            })()
        } else {
            Ok(None)
        };
        (proxy, reconnect)
    }
}

/// An endpoint's settings as typed.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointForm {
    pub name: String,
    pub kind: KindTag,
    /// Where a client connects, or a UDP socket's default remote (may be empty).
    pub remote: String,
    /// Where a server listens, or a UDP socket binds (may be empty for UDP).
    pub local: String,
    pub reply: ReplyMode,
    pub rules: Vec<RuleForm>,
    /// How received bytes are cut into messages for the rules, in the
    /// command line's notation (`line`, `crlf`, `delim:HEX`, `len:2be`, …).
    pub framing: String,
    /// The longest message kept for the rules, in bytes (empty: 1 MiB).
    pub max_message: String,
    pub options: OptionsForm,
    pub tls: TlsForm,
    /// A relay's transport and impairments.
    pub relay: RelayForm,
    /// TCP and TLS clients: proxy and reconnect.
    pub client: ClientForm,
    /// A Unix server or bound datagram socket removes a stale socket file at
    /// its path before binding (never any other file).
    pub unlink: bool,
    /// What the endpoint sends by itself on each connection, in order.
    pub sends: Vec<SendForm>,
}

/// Why fields are not acceptable, each next to its field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FormErrors {
    pub name: Option<String>,
    pub remote: Option<String>,
    pub local: Option<String>,
    /// One entry per rule.
    pub rules: Vec<Option<String>>,
    /// The receive framing or the maximum message length.
    pub framing: Option<String>,
    pub options: Option<String>,
    pub tls: Option<String>,
    /// A relay's impairments and seed.
    pub relay: RelayErrors,
    pub proxy: Option<String>,
    pub reconnect: Option<String>,
    /// One entry per scheduled send.
    pub sends: Vec<SendErrors>,
    /// Scheduled sends this kind of endpoint cannot have.
    pub sends_kind: Option<String>,
}

impl FormErrors {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.remote.is_none()
            && self.local.is_none()
            && self.rules.iter().all(Option::is_none)
            && self.framing.is_none()
            && self.options.is_none()
            && self.tls.is_none()
            && self.relay.is_empty()
            && self.proxy.is_none()
            && self.reconnect.is_none()
            && self.sends.iter().all(SendErrors::is_empty)
            && self.sends_kind.is_none()
    }

    /// The first problem, with the field it concerns, for one-line messages.
    pub fn first(&self) -> Option<String> {
        let field = |label: &str, e: &Option<String>| e.as_ref().map(|e| format!("{label}: {e}"));
        field("name", &self.name)
            .or_else(|| field("remote address", &self.remote))
            .or_else(|| field("local address", &self.local))
            .or_else(|| {
                self.rules
                    .iter()
                    .enumerate()
                    .find_map(|(i, e)| field(&format!("rule {}", i + 1), e))
            })
            .or_else(|| field("framing", &self.framing))
            .or_else(|| field("options", &self.options))
            .or_else(|| field("TLS", &self.tls))
            .or_else(|| field("impairments", &self.relay.first()))
            .or_else(|| field("proxy", &self.proxy))
            .or_else(|| field("reconnect", &self.reconnect))
            .or_else(|| field("scheduled sends", &self.sends_kind))
            .or_else(|| {
                self.sends
                    .iter()
                    .enumerate()
                    .find_map(|(i, e)| e.first().map(|e| format!("scheduled send {}: {e}", i + 1)))
            })
    }
}

fn opt_to_text<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

impl EndpointForm {
    /// True when these settings bind every interface of the machine
    /// (0.0.0.0, [::]), so others on the network can connect or send to it:
    /// a server on a wildcard address, or a UDP socket bound to one (an empty
    /// bind is one too, unless the socket is connected to its remote, which
    /// then alone is heard).
    pub fn binds_every_interface(&self) -> bool {
        let local = self.local.trim();
        let wildcard = || local.parse::<HostPort>().is_ok_and(|h| h.is_wildcard());
        match self.kind {
            KindTag::TcpServer | KindTag::TlsServer => wildcard(),
            KindTag::Udp if local.is_empty() => {
                self.options.unconnected || self.remote.trim().is_empty()
            }
            KindTag::Udp => wildcard(),
            KindTag::TcpClient | KindTag::TlsClient => false,
            KindTag::Relay => wildcard(),
            // A Unix socket is reachable from this machine only.
            KindTag::UnixClient | KindTag::UnixServer | KindTag::UnixDatagram => false,
        }
    }

    pub fn new(name: String, kind: KindTag) -> Self {
        let (remote, local) = match kind {
            KindTag::TcpClient => ("127.0.0.1:7007", ""),
            KindTag::TcpServer => ("", "127.0.0.1:7007"),
            KindTag::Udp => ("127.0.0.1:7008", "127.0.0.1:0"),
            KindTag::TlsClient => ("127.0.0.1:8443", ""),
            KindTag::TlsServer => ("", "127.0.0.1:8443"),
            KindTag::Relay => ("127.0.0.1:7007", "127.0.0.1:7070"),
            KindTag::UnixClient => ("/tmp/sockbench.sock", ""),
            KindTag::UnixServer => ("", "/tmp/sockbench.sock"),
            KindTag::UnixDatagram => ("/tmp/sockbench-dgram.sock", "/tmp/sockbench-me.sock"),
        };
        Self {
            name,
            kind,
            remote: remote.into(),
            local: local.into(),
            reply: ReplyMode::Off,
            rules: Vec::new(),
            framing: "raw".into(),
            max_message: String::new(),
            options: OptionsForm::default(),
            tls: TlsForm::default(),
            relay: RelayForm::default(),
            client: ClientForm::default(),
            unlink: false,
            sends: Vec::new(),
        }
    }

    pub fn from_spec(spec: &EndpointSpec) -> Self {
        let text = |hp: Option<&HostPort>| hp.map(ToString::to_string).unwrap_or_default();
        let (reply, rules) = match &spec.reply {
            AutoReply::Off => (ReplyMode::Off, Vec::new()),
            AutoReply::Echo => (ReplyMode::Echo, Vec::new()),
            AutoReply::Rules(rules) => (
                ReplyMode::Rules,
                rules
                    .iter()
                    .map(|r| {
                        let text = |p: &Payload| Notation::Text.format(p.bytes());
                        let (trigger, pattern) = match &r.when {
                            Trigger::Always => (TriggerTag::Always, String::new()),
                            Trigger::Exact(p) => (TriggerTag::Exact, text(p)),
                            Trigger::Contains(p) => (TriggerTag::Contains, text(p)),
                            Trigger::StartsWith(p)
                                if crate::model::payload::is_printable_text(p.bytes()) =>
                            {
                                (TriggerTag::StartsWith, text(p))
                            }
                            Trigger::StartsWith(p) => {
                                (TriggerTag::HexPrefix, Notation::Hex.format(p.bytes()))
                            }
                            Trigger::Regex(re) => (TriggerTag::Regex, re.0.clone()),
                        };
                        // A reply with a `$` is a template: shown in text
                        // notation, where its placeholders read as written.
                        let template = r.reply.bytes().contains(&b'$');
                        let reply_notation = if template {
                            Notation::Text
                        } else {
                            crate::model::payload::natural_notation(r.reply.bytes())
                        };
                        RuleForm {
                            trigger,
                            pattern,
                            reply: if template {
                                super::composer::text_for_bytes(r.reply.bytes())
                            } else {
                                reply_notation.format(r.reply.bytes())
                            },
                            reply_notation,
                            name: r.name.clone(),
                            after: r.after.clone().unwrap_or_default(),
                            delay_ms: opt_to_text(r.delay_ms),
                        }
                    })
                    .collect(),
            ),
        };
        let o = &spec.options;
        Self {
            name: spec.name.clone(),
            kind: spec.kind.tag(),
            remote: match spec.kind.unix_remote() {
                Some(p) => p.as_str().to_owned(),
                None => text(spec.kind.remote()),
            },
            local: match spec.kind.unix_local() {
                Some(p) => p.as_str().to_owned(),
                None => text(spec.kind.local()),
            },
            reply,
            rules,
            framing: spec.framing.notation(),
            max_message: opt_to_text(spec.max_message),
            options: OptionsForm {
                nodelay: o.nodelay,
                broadcast: o.broadcast,
                reuse_address: o.reuse_address,
                unconnected: !o.connected,
                keepalive_secs: opt_to_text(o.keepalive_secs),
                linger_secs: opt_to_text(o.linger_secs),
                ttl: opt_to_text(o.ttl),
                max_peers: opt_to_text(o.max_peers),
                recv_buffer: opt_to_text(o.recv_buffer),
                send_buffer: opt_to_text(o.send_buffer),
                connect_timeout_secs: if o.connect_timeout_secs == DEFAULT_CONNECT_TIMEOUT_SECS {
                    String::new()
                } else {
                    o.connect_timeout_secs.to_string()
                },
                bind: text(o.bind.as_ref()),
                groups: o.multicast.groups.clone(),
                multicast_iface: opt_to_text(o.multicast.iface.as_ref()),
                multicast_ttl: opt_to_text(o.multicast.ttl),
                multicast_loop: o.multicast.loopback,
                group_input: String::new(),
            },
            tls: match &spec.kind {
                EndpointKind::TlsClient { tls, .. } => TlsForm::from_settings(Some(tls), None),
                EndpointKind::TlsServer { tls, .. } => TlsForm::from_settings(None, Some(tls)),
                EndpointKind::Relay {
                    tls_server,
                    tls_client,
                    ..
                } => TlsForm::from_settings(Some(tls_client), None).with_server(tls_server),
                _ => TlsForm::default(),
            },
            relay: match &spec.kind {
                EndpointKind::Relay {
                    transport, impair, ..
                } => RelayForm::from_impairments(*transport, impair),
                _ => RelayForm::default(),
            },
            client: ClientForm::from_spec(spec),
            unlink: matches!(
                spec.kind,
                EndpointKind::UnixServer { unlink: true, .. }
                    | EndpointKind::UnixDatagram { unlink: true, .. }
            ),
            sends: spec.sends.iter().map(SendForm::from_send).collect(),
        }
    }

    /// Checks every field; `other_names` are the names of the session's other endpoints.
    pub fn validate(&self, other_names: &[&str]) -> Result<EndpointSpec, Box<FormErrors>> {
        self.validate_in(other_names, None)
    }

    /// [`EndpointForm::validate`], with the names of the session's library
    /// payloads the scheduled sends may name (`None`: not checked).
    pub fn validate_in(
        &self,
        other_names: &[&str],
        library: Option<&[String]>,
    ) -> Result<EndpointSpec, Box<FormErrors>> {
        let mut errors = FormErrors::default();
        let name = self.name.trim();
        if name.is_empty() {
            errors.name = Some("give the endpoint a name".into());
        } else if other_names.contains(&name) {
            errors.name = Some(format!("another endpoint is already named \"{name}\""));
        }

        let address =
            |text: &str, required: bool, connect: bool| -> Result<Option<HostPort>, String> {
                if text.trim().is_empty() {
                    return if required {
                        Err("required: write host:port, for example 127.0.0.1:7007".into())
                    } else {
                        Ok(None)
                    };
                }
                let hp: HostPort = text
                    .parse()
                    .map_err(|e: crate::model::AddressError| e.to_string())?;
                if connect {
                    hp.require_port().map(Some).map_err(|e| e.to_string())
                } else {
                    Ok(Some(hp))
                }
            };
        let (remote, local) = match self.kind {
            KindTag::TcpClient | KindTag::TlsClient => {
                (address(&self.remote, true, true), Ok(None))
            }
            KindTag::TcpServer | KindTag::TlsServer => {
                (Ok(None), address(&self.local, true, false))
            }
            KindTag::Udp => (
                address(&self.remote, false, true),
                address(&self.local, false, false),
            ),
            KindTag::Relay => (
                address(&self.remote, true, true),
                address(&self.local, true, false),
            ),
            KindTag::UnixClient | KindTag::UnixServer | KindTag::UnixDatagram => {
                (Ok(None), Ok(None))
            }
        };
        let remote = remote.map_err(|e| errors.remote = Some(e)).ok().flatten();
        let local = local.map_err(|e| errors.local = Some(e)).ok().flatten();
        // Socket paths, checked as the engine needs them (length, NUL).
        let unix_path = |text: &str, required: bool| -> Result<Option<UnixPath>, String> {
            if text.is_empty() && !required {
                return Ok(None);
            }
            UnixPath::parse(text).map(Some).map_err(|e| e.to_string())
        };
        let (unix_remote, unix_local) = match self.kind {
            KindTag::UnixClient => (unix_path(&self.remote, true), Ok(None)),
            KindTag::UnixServer => (Ok(None), unix_path(&self.local, true)),
            KindTag::UnixDatagram => (
                unix_path(&self.remote, false),
                unix_path(&self.local, false),
            ),
            _ => (Ok(None), Ok(None)),
        };
        let unix_remote = unix_remote
            .map_err(|e| errors.remote = Some(e))
            .ok()
            .flatten();
        let unix_local = unix_local
            .map_err(|e| errors.local = Some(e))
            .ok()
            .flatten();

        let reply = match self.reply {
            ReplyMode::Off => AutoReply::Off,
            ReplyMode::Echo => AutoReply::Echo,
            ReplyMode::Rules => {
                let mut rules = Vec::new();
                for rule in &self.rules {
                    match rule.validate() {
                        Ok(r) => {
                            rules.push(r);
                            errors.rules.push(None);
                        }
                        Err(e) => errors.rules.push(Some(e)),
                    }
                }
                // A rule waiting for a name no rule has would never answer.
                let mut at = 0;
                for error in errors.rules.iter_mut() {
                    if error.is_none() {
                        if let Some(after) = &rules[at].after
                            && !rules.iter().any(|r| r.name == *after)
                        {
                            *error = Some(format!("no rule is named \"{after}\""));
                        }
                        at += 1;
                    }
                }
                AutoReply::Rules(rules)
            }
        };
        // Framing matters to rules only: hidden with them, it blocks nothing.
        let rules_on = self.reply == ReplyMode::Rules;
        let framing = ReceiveFraming::parse(&self.framing)
            .map_err(|e| {
                if rules_on {
                    errors.framing = Some(e)
                }
            })
            .unwrap_or_default();
        let max_message = match self.max_message.trim() {
            "" => None,
            t => match t.parse::<u32>() {
                Ok(n) if n <= 1 << 30 && n > 0 => std::num::NonZeroU32::new(n),
                _ if !rules_on => None,
                _ => {
                    errors.framing.get_or_insert(format!(
                        "longest message \"{t}\": give bytes, 1 to 1073741824"
                    ));
                    None
                }
            },
        };
        let mut options = self
            .options
            .validate()
            .map_err(|e| errors.options = Some(e))
            .ok();
        // A client's local address: its family follows the remote's.
        if let Some(o) = options.as_mut() {
            o.bind = None;
            if self.kind.is_client() && !self.options.bind.trim().is_empty() {
                let v6 = remote.as_ref().is_some_and(|r| r.host.contains(':'));
                match crate::model::endpoint::parse_local_bind(&self.options.bind, v6) {
                    Ok(hp) => o.bind = Some(hp),
                    Err(e) => errors.local = Some(e),
                }
            }
            if self.kind != KindTag::Udp {
                o.multicast = Default::default();
            }
        }

        let relay_tls = self.kind == KindTag::Relay && self.relay.transport == RelayTransport::Tls;
        let tls = if self.kind.is_tls() || relay_tls {
            self.tls
                .validate(self.kind)
                .map_err(|e| errors.tls = Some(e))
                .ok()
        } else {
            Some(Default::default())
        };
        let impair = if self.kind == KindTag::Relay {
            self.relay.validate(&mut errors.relay)
        } else {
            Impairments::default()
        };

        // Proxy and reconnect matter to clients only: hidden for others, they block nothing.
        let (proxy, reconnect) = if self.kind.is_client() {
            let (proxy, reconnect) = self.client.validate();
            (
                proxy.map_err(|e| errors.proxy = Some(e)).ok().flatten(),
                reconnect
                    .map_err(|e| errors.reconnect = Some(e))
                    .ok()
                    .flatten(),
            )
        } else {
            (None, None)
        };

        let mut sends = Vec::with_capacity(self.sends.len());
        for send in &self.sends {
            match send.validate(library) {
                Ok(s) => {
                    sends.push(s);
                    errors.sends.push(SendErrors::default());
                }
                Err(e) => errors.sends.push(e),
            }
        }
        if !self.sends.is_empty() {
            if self.sends.len() > crate::model::schedule::MAX_SENDS {
                errors.sends_kind = Some(format!(
                    "at most {} scheduled sends",
                    crate::model::schedule::MAX_SENDS
                ));
            }
            let no_remote = self.remote.trim().is_empty();
            errors.sends_kind = errors.sends_kind.take().or(match self.kind {
                KindTag::Relay => {
                    Some("a relay passes on what it reads; it has no sends of its own".into())
                }
                KindTag::Udp | KindTag::UnixDatagram if no_remote => Some(
                    "without a default remote these sends have nowhere to go: give it a remote"
                        .into(),
                ),
                _ => None,
            });
        }

        if !errors.is_empty() {
            return Err(Box::new(errors));
        }
        let (client_tls, server_tls) = tls.unwrap_or_default();
        let kind = match self.kind {
            KindTag::TlsClient => EndpointKind::TlsClient {
                remote: remote.expect("checked above"),
                tls: client_tls,
            },
            KindTag::TlsServer => EndpointKind::TlsServer {
                listen: local.expect("checked above"),
                tls: server_tls,
            },
            KindTag::TcpClient => EndpointKind::TcpClient {
                remote: remote.expect("checked above"),
            },
            KindTag::TcpServer => EndpointKind::TcpServer {
                listen: local.expect("checked above"),
            },
            KindTag::Udp => EndpointKind::Udp {
                bind: local,
                remote,
            },
            KindTag::Relay => EndpointKind::Relay {
                transport: self.relay.transport,
                listen: local.expect("checked above"),
                upstream: remote.expect("checked above"),
                tls_server: Box::new(server_tls),
                tls_client: Box::new(client_tls),
                impair: Box::new(impair),
            },
            KindTag::UnixClient => EndpointKind::UnixClient {
                path: unix_remote.expect("checked above"),
            },
            KindTag::UnixServer => EndpointKind::UnixServer {
                path: unix_local.expect("checked above"),
                unlink: self.unlink,
            },
            KindTag::UnixDatagram => EndpointKind::UnixDatagram {
                bind: unix_local,
                remote: unix_remote,
                unlink: self.unlink,
            },
        };
        // A relay passes on what it reads; it answers nothing by itself.
        let reply = if self.kind == KindTag::Relay {
            AutoReply::Off
        } else {
            reply
        };
        Ok(EndpointSpec {
            name: name.to_owned(),
            kind,
            reply,
            options: options.unwrap_or_default(),
            framing,
            max_message,
            proxy,
            reconnect,
            sends,
        })
    }
}

/// The endpoint's scheduled sends: one row each (payload, delay, repeat,
/// interval) with its errors under it, moved up, removed, or added below.
/// `library` holds the session's library names. True when something changed.
pub fn sends_ui(
    ui: &mut egui::Ui,
    form: &mut EndpointForm,
    errors: &FormErrors,
    library: &[String],
    salt: u64,
) -> bool {
    use crate::model::escape_controls;
    let mut changed = false;
    let error_line = |ui: &mut egui::Ui, e: &Option<String>| {
        if let Some(e) = e {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("⚠ {}", escape_controls(e)),
            );
        }
    };
    ui.label(match form.kind {
        k if k.is_server() => "Sent to each peer when it is accepted (a greeting, a banner):",
        k if k.is_datagram() => "Sent to the default remote once the socket is bound:",
        _ => "Sent on each connection (again after a reconnect):",
    });
    error_line(ui, &errors.sends_kind);
    let mut remove = None;
    let mut move_up = None;
    let count = form.sends.len();
    for (i, send) in form.sends.iter_mut().enumerate() {
        let no_errors = SendErrors::default();
        let e = errors.sends.get(i).unwrap_or(&no_errors);
        ui.horizontal_wrapped(|ui| {
            let label = ui.label(format!("Send {}:", i + 1));
            egui::ComboBox::from_id_salt(("send source", salt, i))
                .selected_text(match send.source {
                    SendSource::Text => "text",
                    SendSource::Library => "library",
                })
                .show_ui(ui, |ui| {
                    changed |= ui
                        .selectable_value(&mut send.source, SendSource::Text, "text")
                        .on_hover_text("Typed here in text notation; ${counter} and the other placeholders are filled in for each send")
                        .changed();
                    changed |= ui
                        .selectable_value(&mut send.source, SendSource::Library, "library")
                        .on_hover_text("A payload of the session's library, sent as it is")
                        .changed();
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("Where the payload comes from");
            match send.source {
                SendSource::Text => {
                    let label = ui.label("bytes");
                    changed |= ui
                        .add(
                            egui::TextEdit::singleline(&mut send.text)
                                .hint_text("ping ${counter}\\n")
                                .desired_width(150.0)
                                .layouter(&mut super::visible_text::layouter(false)),
                        )
                        .labelled_by(label.id)
                        .on_hover_text("Text notation: \\r \\n \\xNN escapes, ${counter}, ${time}, ${crc16_modbus} and the other placeholders")
                        .changed();
                }
                SendSource::Library => {
                    let label = ui.label("bytes");
                    egui::ComboBox::from_id_salt(("send library", salt, i))
                        .selected_text(if send.library.is_empty() {
                            "(choose)".to_owned()
                        } else {
                            escape_controls(&send.library).into_owned()
                        })
                        .show_ui(ui, |ui| {
                            for name in library {
                                changed |= ui
                                    .selectable_value(
                                        &mut send.library,
                                        name.clone(),
                                        escape_controls(name).into_owned(),
                                    )
                                    .changed();
                            }
                        })
                        .response
                        .labelled_by(label.id)
                        .on_hover_text("A payload of the session's library");
                }
            }
            let label = ui.label("after");
            changed |= ui
                .add(
                    egui::TextEdit::singleline(&mut send.delay)
                        .hint_text("0ms")
                        .desired_width(64.0),
                )
                .labelled_by(label.id)
                .on_hover_text("How long after the connection the first send goes: 500ms, 1.5s")
                .changed();
            let label = ui.label("repeat");
            changed |= ui
                .add_enabled(
                    !send.until_stopped,
                    egui::TextEdit::singleline(&mut send.repeat)
                        .hint_text("1")
                        .desired_width(50.0),
                )
                .labelled_by(label.id)
                .on_hover_text(format!("How many times it goes: 1 to {MAX_REPEAT}"))
                .changed();
            ui.label("times");
            changed |= ui
                .checkbox(&mut send.until_stopped, "until stopped")
                .on_hover_text("Again and again until the connection ends or the endpoint stops")
                .changed();
            let label = ui.label("interval");
            changed |= ui
                .add(
                    egui::TextEdit::singleline(&mut send.interval)
                        .hint_text("1s")
                        .desired_width(64.0),
                )
                .labelled_by(label.id)
                .on_hover_text("From one send to the next (when it repeats): 50ms, 1s")
                .changed();
            if ui
                .add_enabled(i > 0, egui::Button::new("⬆"))
                .on_hover_text("Move this send up (sends due at the same time go in this order)")
                .clicked()
            {
                move_up = Some(i);
            }
            if ui
                .button("🗑")
                .on_hover_text("Remove this scheduled send")
                .clicked()
            {
                remove = Some(i);
            }
        });
        error_line(ui, &e.payload);
        error_line(ui, &e.delay);
        error_line(ui, &e.repeat);
        error_line(ui, &e.interval);
    }
    if let Some(i) = remove.filter(|i| *i < count) {
        form.sends.remove(i);
        changed = true;
    }
    if let Some(i) = move_up.filter(|i| *i > 0 && *i < count) {
        form.sends.swap(i - 1, i);
        changed = true;
    }
    if count < crate::model::schedule::MAX_SENDS
        && ui
            .button("➕ Add scheduled send")
            .on_hover_text("Send a payload by itself on each connection: after a delay, once, a number of times, or until stopped")
            .clicked()
    {
        form.sends.push(SendForm::default());
        changed = true;
    }
    changed
}

fn split_list(text: &str, separator: char) -> Vec<String> {
    text.split(separator)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl TlsForm {
    fn from_settings(
        client: Option<&TlsClientSettings>,
        server: Option<&TlsServerSettings>,
    ) -> Self {
        let paths = |p: &[std::path::PathBuf]| {
            p.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let path = |p: &Option<std::path::PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        match (client, server) {
            (Some(c), _) => TlsForm {
                ca: paths(&c.ca),
                insecure: c.insecure,
                sni: c.sni.clone().unwrap_or_default(),
                alpn: c.alpn.join(", "),
                pin: c.pin.map(|p| p.to_string()).unwrap_or_default(),
                ..Default::default()
            },
            (_, Some(s)) => TlsForm {
                cert: path(&s.cert),
                key: path(&s.key),
                alpn: s.alpn.join(", "),
                ..Default::default()
            },
            _ => TlsForm::default(),
        }
    }

    /// Adds a server side's certificate and key (a relay has both sides).
    fn with_server(mut self, server: &TlsServerSettings) -> Self {
        let s = TlsForm::from_settings(None, Some(server));
        self.cert = s.cert;
        self.key = s.key;
        self
    }

    fn validate(&self, kind: KindTag) -> Result<(TlsClientSettings, TlsServerSettings), String> {
        if kind == KindTag::Relay {
            // Both sides, as `sockbench relay tls` takes them (no ALPN).
            let (client, _) = TlsForm {
                alpn: String::new(),
                ..self.clone()
            }
            .validate(KindTag::TlsClient)?;
            let (_, server) = TlsForm {
                alpn: String::new(),
                ..self.clone()
            }
            .validate(KindTag::TlsServer)?;
            return Ok((client, server));
        }
        let alpn = split_list(&self.alpn, ',');
        if let Some(bad) = alpn.iter().find(|p| p.len() > 255 || !p.is_ascii()) {
            return Err(format!(
                "ALPN name \"{bad}\" must be ASCII and at most 255 bytes"
            ));
        }
        match kind {
            KindTag::TlsClient => {
                let sni = self.sni.trim();
                if !sni.is_empty() && rustls::pki_types::ServerName::try_from(sni).is_err() {
                    return Err(format!(
                        "\"{sni}\" cannot be a server name (a DNS name or an IP address)"
                    ));
                }
                let pin = self.pin.trim();
                let pin = (!pin.is_empty())
                    .then(|| crate::model::endpoint::CertPin::parse(pin))
                    .transpose()
                    .map_err(|e| e.to_string())?;
                Ok((
                    TlsClientSettings {
                        ca: split_list(&self.ca, ';')
                            .into_iter()
                            .map(Into::into)
                            .collect(),
                        insecure: self.insecure,
                        sni: (!sni.is_empty()).then(|| sni.to_owned()),
                        alpn,
                        pin,
                    },
                    TlsServerSettings::default(),
                ))
            }
            KindTag::TlsServer => {
                let (cert, key) = (self.cert.trim(), self.key.trim());
                if cert.is_empty() != key.is_empty() {
                    return Err(if cert.is_empty() {
                        "a private key needs its certificate file too".into()
                    } else {
                        "a certificate needs its private key file too".into()
                    });
                }
                Ok((
                    TlsClientSettings::default(),
                    TlsServerSettings {
                        cert: (!cert.is_empty()).then(|| cert.into()),
                        key: (!key.is_empty()).then(|| key.into()),
                        alpn,
                    },
                ))
            }
            _ => Ok(Default::default()),
        }
    }
}

impl RuleForm {
    fn validate(&self) -> Result<Rule, String> {
        let when = match self.trigger {
            TriggerTag::Always => Trigger::Always,
            TriggerTag::Exact => Trigger::Exact(Payload::new(
                Notation::Text
                    .parse(&self.pattern)
                    .map_err(|e| format!("pattern {e}"))?,
            )),
            TriggerTag::Contains | TriggerTag::StartsWith | TriggerTag::HexPrefix => {
                let notation = if self.trigger == TriggerTag::HexPrefix {
                    Notation::Hex
                } else {
                    Notation::Text
                };
                let bytes = notation
                    .parse(&self.pattern)
                    .map_err(|e| format!("pattern {e}"))?;
                if bytes.is_empty() {
                    return Err("give the bytes to look for".into());
                }
                if self.trigger == TriggerTag::Contains {
                    Trigger::Contains(Payload::new(bytes))
                } else {
                    Trigger::StartsWith(Payload::new(bytes))
                }
            }
            TriggerTag::Regex => Trigger::Regex(
                RegexText::new(&self.pattern).map_err(|e| format!("bad regex: {e}"))?,
            ),
        };
        let reply = match self.reply_notation {
            Notation::Text => self.reply_notation.parse(&self.reply),
            // Hex is the exact bytes: a `$` among them is no placeholder.
            Notation::Hex => self
                .reply_notation
                .parse(&self.reply)
                .map(|b| crate::model::placeholder::escape_literal(&b)),
        }
        .map_err(|e| format!("reply {e}"))?;
        let delay_ms = match self.delay_ms.trim() {
            "" => None,
            t => Some(
                t.parse::<u32>()
                    .ok()
                    .filter(|ms| *ms <= 3_600_000)
                    .ok_or_else(|| {
                        format!("delay \"{t}\": give whole milliseconds, 0 to 3600000")
                    })?,
            ),
        };
        let after = self.after.trim();
        let rule = Rule {
            when,
            reply: Payload::new(reply),
            name: self.name.trim().to_owned(),
            after: (!after.is_empty()).then(|| after.to_owned()),
            delay_ms,
        };
        // Placeholders and captures are checked here, where they are typed.
        rule.reply_template()
            .map_err(|e| format!("reply {}", e.in_text(&self.reply)))?;
        Ok(rule)
    }
}

impl OptionsForm {
    fn validate(&self) -> Result<SocketOptions, String> {
        /// A whole number in `lo..=hi` (the range the system takes), or empty.
        fn number(label: &str, text: &str, lo: u32, hi: u32) -> Result<Option<u32>, String> {
            let t = text.trim();
            if t.is_empty() {
                return Ok(None);
            }
            let v: u64 = t
                .parse()
                .map_err(|_| format!("{label} \"{t}\" is not a whole number"))?;
            match u32::try_from(v) {
                Ok(v) if (lo..=hi).contains(&v) => Ok(Some(v)),
                _ => Err(format!("{label} {t} is out of range: give {lo} to {hi}")),
            }
        }
        let connect_timeout_secs = match self.connect_timeout_secs.trim() {
            "" => DEFAULT_CONNECT_TIMEOUT_SECS,
            t => match t.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 && v <= 3600.0 => v,
                _ => {
                    return Err(format!(
                        "connect timeout \"{t}\": give seconds between 0 and 3600"
                    ));
                }
            },
        };
        Ok(SocketOptions {
            nodelay: self.nodelay,
            // Linux's limits: TCP_KEEPIDLE up to 32767 s, a TTL of 1 to 255
            // hops, buffers up to 1 GiB (the kernel caps them lower anyway).
            keepalive_secs: number("keepalive", &self.keepalive_secs, 1, 32_767)?,
            linger_secs: number("linger", &self.linger_secs, 0, 3_600)?,
            ttl: number("TTL", &self.ttl, 1, 255)?,
            recv_buffer: number("receive buffer", &self.recv_buffer, 1, 1 << 30)?,
            send_buffer: number("send buffer", &self.send_buffer, 1, 1 << 30)?,
            broadcast: self.broadcast,
            reuse_address: self.reuse_address,
            connect_timeout_secs,
            connected: !self.unconnected,
            max_peers: number("max peers", &self.max_peers, 1, 1_000_000)?,
            bind: None,
            multicast: crate::model::multicast::Multicast {
                groups: self.groups.clone(),
                iface: match self.multicast_iface.trim() {
                    "" => None,
                    t => Some(crate::model::multicast::Interface::parse(t)?),
                },
                ttl: number(
                    "multicast TTL",
                    &self.multicast_ttl,
                    0,
                    crate::model::multicast::MAX_TTL,
                )?,
                loopback: self.multicast_loop,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_the_form() {
        let spec = EndpointSpec::new(
            "srv",
            EndpointKind::TcpServer {
                listen: "[::1]:80".parse().unwrap(),
            },
        )
        .with_reply(AutoReply::Rules(vec![Rule::new(
            Trigger::Contains("ping".into()),
            Payload::new(vec![0, 1]),
        )]));
        let form = EndpointForm::from_spec(&spec);
        assert_eq!(form.local, "[::1]:80");
        assert_eq!(form.rules[0].reply, "00 01");
        assert_eq!(form.validate(&[]).unwrap(), spec);
    }

    #[test]
    fn scheduled_sends_go_through_the_form_and_each_error_stands_by_its_field() {
        use crate::model::schedule::{Repeat, ScheduledSend, SendPayload};
        use std::time::Duration;
        let mut spec = EndpointSpec::new(
            "c",
            EndpointKind::TcpClient {
                remote: "127.0.0.1:7".parse().unwrap(),
            },
        );
        spec.sends = vec![
            ScheduledSend {
                payload: SendPayload::Text("ping ${counter}\\n".into()),
                delay: Duration::from_millis(100),
                repeat: Repeat::Times(3),
                interval: Duration::from_millis(50),
            },
            ScheduledSend {
                payload: SendPayload::Library("hello".into()),
                delay: Duration::ZERO,
                repeat: Repeat::UntilStopped,
                interval: Duration::from_secs(1),
            },
        ];
        let form = EndpointForm::from_spec(&spec);
        assert_eq!(form.sends[0].delay, "100ms");
        assert_eq!(form.sends[0].repeat, "3");
        assert!(form.sends[1].until_stopped);
        let library = ["hello".to_owned()];
        assert_eq!(form.validate_in(&[], Some(&library)).unwrap(), spec);
        // Each field's error beside it; the library is checked when known.
        let e = form.validate_in(&[], Some(&[])).unwrap_err();
        assert!(
            e.sends[1]
                .payload
                .as_deref()
                .unwrap()
                .contains("no payload named")
        );
        let mut bad = form.clone();
        bad.sends[0].delay = "5".into();
        bad.sends[0].repeat = "0".into();
        bad.sends[0].text = "${nope}".into();
        bad.sends[1].interval = "0ms".into();
        let e = bad.validate_in(&[], Some(&library)).unwrap_err();
        assert!(
            e.sends[0].delay.as_deref().unwrap().contains("unit"),
            "{e:?}"
        );
        assert!(
            e.sends[0]
                .repeat
                .as_deref()
                .unwrap()
                .contains("1 to 1000000")
        );
        assert!(
            e.sends[0]
                .payload
                .as_deref()
                .unwrap()
                .contains("position 1")
        );
        assert!(
            e.sends[1]
                .interval
                .as_deref()
                .unwrap()
                .contains("at least 1ms")
        );
        assert!(
            e.first().unwrap().starts_with("scheduled send 1: payload:"),
            "{e:?}"
        );
        // A UDP socket without a remote, or a relay: said once, for every send.
        let mut udp = EndpointForm::new("u".into(), KindTag::Udp);
        udp.remote.clear();
        udp.sends = form.sends.clone();
        let e = udp.validate_in(&[], Some(&library)).unwrap_err();
        assert!(e.sends_kind.as_deref().unwrap().contains("nowhere to go"));
        // Reordered and removed sends keep their fields.
        let mut moved = form.clone();
        moved.sends.swap(0, 1);
        moved.sends.remove(1);
        let out = moved.validate_in(&[], Some(&library)).unwrap();
        assert_eq!(out.sends, vec![spec.sends[1].clone()]);
    }

    #[test]
    fn a_pin_goes_through_the_form() {
        let pin = crate::model::endpoint::CertPin([0xAB; 32]);
        let spec = EndpointSpec::new(
            "c",
            EndpointKind::TlsClient {
                remote: "127.0.0.1:443".parse().unwrap(),
                tls: TlsClientSettings {
                    pin: Some(pin),
                    ..Default::default()
                },
            },
        );
        let mut form = EndpointForm::from_spec(&spec);
        assert_eq!(form.tls.pin, pin.to_string());
        assert_eq!(form.validate(&[]).unwrap(), spec);
        form.tls.pin = "sha256:abc".into();
        let e = form.validate(&[]).unwrap_err();
        assert!(e.tls.unwrap().starts_with("pin: 3 hex digits"));
    }

    #[test]
    fn errors_stand_by_their_fields() {
        let mut form = EndpointForm::new("c".into(), KindTag::TcpClient);
        form.remote = "127.0.0.1:99999".into();
        let e = form.validate(&["c"]).unwrap_err();
        assert_eq!(
            e.name.as_deref(),
            Some("another endpoint is already named \"c\"")
        );
        assert_eq!(
            e.remote.as_deref(),
            Some("port 99999 is out of range: ports go from 0 to 65535")
        );
        assert!(e.local.is_none());
        assert_eq!(
            e.first().unwrap(),
            "name: another endpoint is already named \"c\""
        );

        form.remote = String::new();
        let e = form.validate(&[]).unwrap_err();
        assert!(e.remote.unwrap().starts_with("required"));

        let mut udp = EndpointForm::new("u".into(), KindTag::Udp);
        udp.remote = String::new();
        udp.local = String::new();
        assert!(udp.validate(&[]).is_ok());
        udp.options.ttl = "x".into();
        assert_eq!(
            udp.validate(&[]).unwrap_err().options.as_deref(),
            Some("TTL \"x\" is not a whole number")
        );

        let mut server = EndpointForm::new("s".into(), KindTag::TcpServer);
        assert!(!server.binds_every_interface());
        for wild in ["0.0.0.0:7000", "[::]:7000", " 0.0.0.0:0 "] {
            server.local = wild.into();
            assert!(server.binds_every_interface(), "{wild}");
        }
        server.kind = KindTag::TcpClient;
        assert!(!server.binds_every_interface());
        let mut udp = EndpointForm::new("u".into(), KindTag::Udp);
        assert!(!udp.binds_every_interface());
        udp.local = String::new();
        assert!(
            !udp.binds_every_interface(),
            "connected: only the remote is heard"
        );
        udp.options.unconnected = true;
        assert!(udp.binds_every_interface());
        assert!(!udp.validate(&[]).unwrap().options.connected);

        let mut rules = EndpointForm::new("s".into(), KindTag::TcpServer);
        rules.reply = ReplyMode::Rules;
        rules.rules.push(RuleForm {
            trigger: TriggerTag::Regex,
            pattern: "(".into(),
            ..Default::default()
        });
        rules.rules.push(RuleForm {
            reply: "zz".into(),
            reply_notation: Notation::Hex,
            ..Default::default()
        });
        let e = rules.validate(&[]).unwrap_err();
        assert!(e.rules[0].as_ref().unwrap().starts_with("bad regex"));
        assert_eq!(
            e.rules[1].as_deref(),
            Some("reply at position 1: 'z' is not a hex digit")
        );
    }

    #[test]
    fn a_relay_goes_through_the_form_and_each_impairment_stands_by_its_field() {
        let mut impair = Impairments::default();
        impair.up.latency = Some("50ms±10ms".parse().unwrap());
        impair.down.close_after = Some("2s".parse().unwrap());
        impair.seed = Some(7);
        let spec = EndpointSpec::new(
            "r",
            EndpointKind::Relay {
                transport: RelayTransport::Tls,
                listen: "127.0.0.1:8443".parse().unwrap(),
                upstream: "device.local:443".parse().unwrap(),
                tls_server: Box::new(TlsServerSettings {
                    cert: Some("c.pem".into()),
                    key: Some("k.pem".into()),
                    alpn: Vec::new(),
                }),
                tls_client: Box::new(TlsClientSettings {
                    sni: Some("device.local".into()),
                    insecure: true,
                    ..Default::default()
                }),
                impair: Box::new(impair),
            },
        );
        let form = EndpointForm::from_spec(&spec);
        assert_eq!(form.relay.up[0], "50ms±10ms");
        assert_eq!(form.relay.down[3], "2s");
        assert_eq!(form.validate(&[]).unwrap(), spec);

        let mut bad = form.clone();
        bad.remote = "device.local".into();
        bad.relay.up[1] = "100KiB".into();
        bad.relay.down[5] = "10%".into();
        bad.relay.seed = "x".into();
        bad.tls.key = String::new();
        let e = bad.validate(&[]).unwrap_err();
        assert!(e.remote.is_some(), "an upstream needs its port");
        assert!(e.relay.up[1].as_ref().unwrap().contains("/s"));
        assert!(
            e.relay.down[5]
                .as_ref()
                .unwrap()
                .contains("for UDP relays only")
        );
        assert!(e.relay.seed.as_ref().unwrap().contains("whole number"));
        assert!(e.tls.as_ref().unwrap().contains("private key"));
        assert!(e.relay.up[0].is_none() && e.relay.down[3].is_none());

        // A TCP relay takes no TLS settings; UDP takes loss but not slices.
        let mut tcp = form.clone();
        tcp.relay.transport = RelayTransport::Tcp;
        tcp.tls.key = String::new();
        let EndpointKind::Relay { tls_client, .. } = tcp.validate(&[]).unwrap().kind else {
            panic!("a relay")
        };
        assert_eq!(*tls_client, TlsClientSettings::default());
        let mut udp = EndpointForm::new("u".into(), KindTag::Relay);
        udp.relay.transport = RelayTransport::Udp;
        udp.relay.up[5] = "10%".into();
        assert!(udp.validate(&[]).is_ok());
        udp.relay.up[2] = "16".into();
        let e = udp.validate(&[]).unwrap_err();
        assert!(
            e.first()
                .unwrap()
                .starts_with("impairments: slice client → upstream: for TCP and TLS")
        );
    }

    #[test]
    fn max_peers_goes_through_the_form() {
        let mut server = EndpointForm::new("s".into(), KindTag::TcpServer);
        server.local = "127.0.0.1:0".into();
        server.options.max_peers = "0".into();
        assert!(server.validate(&[]).is_err());
        server.options.max_peers = "3".into();
        let spec = server.validate(&[]).unwrap();
        assert_eq!(spec.options.max_peers, Some(3));
        assert_eq!(EndpointForm::from_spec(&spec).options.max_peers, "3");
    }

    #[test]
    fn every_option_is_checked_against_its_range() {
        let mut udp = EndpointForm::new("u".into(), KindTag::Udp);
        for (ttl, ok) in [("0", false), ("1", true), ("255", true), ("300", false)] {
            udp.options.ttl = ttl.into();
            let result = udp.validate(&[]);
            assert_eq!(result.is_ok(), ok, "TTL {ttl}");
            if !ok {
                assert_eq!(
                    result.unwrap_err().first(),
                    Some(format!("options: TTL {ttl} is out of range: give 1 to 255"))
                );
            }
        }
        udp.options.ttl.clear();
        udp.options.recv_buffer = "99999999999".into();
        assert!(udp.validate(&[]).is_err());
        let mut tcp = EndpointForm::new("c".into(), KindTag::TcpClient);
        tcp.remote = "127.0.0.1:1".into();
        tcp.options.keepalive_secs = "40000".into();
        assert!(tcp.validate(&[]).is_err());
        tcp.options.keepalive_secs = "60".into();
        assert!(tcp.validate(&[]).is_ok());
    }

    #[test]
    fn rules_keep_framing_state_delay_and_order_through_the_form() {
        let mut login = Rule::new(Trigger::StartsWith(Payload::new(vec![0x01, 0xff])), "ok");
        login.name = "login".into();
        let mut cmd = Rule::new(
            Trigger::Regex(RegexText::new(r"^GET (\S+)").unwrap()),
            "got $1",
        );
        cmd.after = Some("login".into());
        cmd.delay_ms = Some(250);
        let mut spec = EndpointSpec::new(
            "s",
            EndpointKind::TcpServer {
                listen: "127.0.0.1:7".parse().unwrap(),
            },
        )
        .with_reply(AutoReply::Rules(vec![
            login,
            cmd,
            Rule::new(Trigger::Exact("x".into()), ""),
        ]));
        spec.framing = ReceiveFraming::parse("len:2le+incl").unwrap();
        spec.max_message = std::num::NonZeroU32::new(4096);
        let form = EndpointForm::from_spec(&spec);
        assert_eq!(form.rules[0].trigger, TriggerTag::HexPrefix);
        assert_eq!(form.framing, "len:2le+incl");
        assert_eq!(form.validate(&[]).unwrap(), spec);

        let mut bad = form.clone();
        bad.rules[0].name = "renamed".into();
        bad.framing = "len:3".into();
        bad.rules[2].pattern = String::new();
        bad.rules[2].trigger = TriggerTag::Regex;
        bad.rules[2].pattern = "(".into();
        let e = bad.validate(&[]).unwrap_err();
        assert!(
            e.rules[1]
                .as_ref()
                .unwrap()
                .contains("no rule is named \"login\"")
        );
        assert!(e.rules[2].as_ref().unwrap().contains("bad regex"));
        assert!(e.framing.as_ref().unwrap().contains("1, 2 or 4"));

        // Moved up, the command rule comes first: the order is the spec's order.
        let mut moved = form.clone();
        moved.rules.swap(0, 1);
        let AutoReply::Rules(rules) = moved.validate(&[]).unwrap().reply else {
            panic!("rules")
        };
        assert_eq!(rules[0].after.as_deref(), Some("login"));
    }
}
