//! Endpoint settings: what an endpoint is, where it connects or listens, how it
//! answers, and its socket options. The same validated structure is stored in
//! session files, edited by the window and handed to the engine.

use super::address::HostPort;
use super::framing::{DEFAULT_MAX_MESSAGE, ReceiveFraming};
use super::multicast::Multicast;
use super::payload::Payload;
use super::unix::UnixPath;

/// One endpoint of a session, as a person set it up.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    /// Unique within a session; the log and the command line name endpoints by it.
    pub name: String,
    pub kind: EndpointKind,
    /// How the endpoint answers what it receives, without a person in the loop.
    #[serde(default, skip_serializing_if = "AutoReply::is_off")]
    pub reply: AutoReply,
    #[serde(default, skip_serializing_if = "SocketOptions::is_default")]
    pub options: SocketOptions,
    /// How received bytes are cut into messages for the rules (each
    /// connection on its own; a UDP datagram is always one message).
    #[serde(default, skip_serializing_if = "ReceiveFraming::is_raw")]
    pub framing: ReceiveFraming,
    /// The longest message kept for the rules (default 1 MiB); longer ones are cut, with a note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message: Option<std::num::NonZeroU32>,
    /// TCP and TLS clients: reach the remote through this proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<super::proxy::Proxy>,
    /// TCP and TLS clients: connect again when the connection fails or ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect: Option<super::proxy::Reconnect>,
    /// What the endpoint sends by itself on each connection (a server: to
    /// each peer it accepts), in order: see [`super::schedule`].
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "super::schedule::read_sends"
    )]
    pub sends: Vec<super::schedule::ScheduledSend>,
}

impl EndpointSpec {
    pub fn new(name: impl Into<String>, kind: EndpointKind) -> Self {
        Self {
            name: name.into(),
            kind,
            reply: AutoReply::Off,
            options: SocketOptions::default(),
            framing: ReceiveFraming::Raw,
            max_message: None,
            proxy: None,
            reconnect: None,
            sends: Vec::new(),
        }
    }

    /// The longest message kept for the rules, in bytes.
    pub fn max_message_len(&self) -> usize {
        self.max_message
            .map_or(DEFAULT_MAX_MESSAGE, |m| m.get() as usize)
    }

    pub fn with_reply(mut self, reply: AutoReply) -> Self {
        self.reply = reply;
        self
    }
}

/// The kinds of endpoint.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EndpointKind {
    /// Connects to `remote` and holds one connection.
    TcpClient { remote: HostPort },
    /// Listens on `listen` and accepts many peers, each its own connection.
    TcpServer { listen: HostPort },
    /// A datagram socket bound to `bind` (any address of the remote's family when
    /// absent), sending to `remote` unless told otherwise.
    Udp {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bind: Option<HostPort>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote: Option<HostPort>,
    },
    /// A TCP client that speaks TLS on its connection.
    TlsClient {
        remote: HostPort,
        #[serde(default, skip_serializing_if = "TlsClientSettings::is_default")]
        tls: TlsClientSettings,
    },
    /// A TCP server that speaks TLS with every peer.
    TlsServer {
        listen: HostPort,
        #[serde(default, skip_serializing_if = "TlsServerSettings::is_default")]
        tls: TlsServerSettings,
    },
    /// Accepts clients on `listen` and relays each to `upstream` over a
    /// connection (UDP: a socket) of its own, recording both directions as one
    /// conversation; TLS is ended toward the client and begun toward the
    /// upstream, so the log holds plaintext.
    Relay {
        transport: RelayTransport,
        listen: HostPort,
        upstream: HostPort,
        /// TLS: what the relay presents to its clients.
        #[serde(default, skip_serializing_if = "boxed_default")]
        tls_server: Box<TlsServerSettings>,
        /// TLS: how the relay checks the upstream.
        #[serde(default, skip_serializing_if = "boxed_default")]
        tls_client: Box<TlsClientSettings>,
        /// What the relay does to the bytes it passes on.
        #[serde(default, skip_serializing_if = "boxed_default")]
        impair: Box<super::impair::Impairments>,
    },
    /// Connects to the Unix-domain stream socket `path` (a file, or `@name`
    /// for a Linux abstract name) and holds one connection.
    UnixClient { path: UnixPath },
    /// Listens on the Unix-domain stream socket `path` and accepts many peers.
    /// The socket file it creates is removed when it stops.
    UnixServer {
        path: UnixPath,
        /// Remove a stale socket file found at `path` before binding (never
        /// any other kind of file). Off: a stale file is reported, not touched.
        #[serde(default, skip_serializing_if = "is_false")]
        unlink: bool,
    },
    /// A Unix-domain datagram socket bound to `bind` (unnamed when absent: it
    /// can send, and nobody can answer), sending to `remote` unless told otherwise.
    UnixDatagram {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bind: Option<UnixPath>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote: Option<UnixPath>,
        /// As for a Unix server: remove a stale socket file at `bind` first.
        #[serde(default, skip_serializing_if = "is_false")]
        unlink: bool,
    },
}

/// What a relay carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RelayTransport {
    Tcp,
    Tls,
    Udp,
}

impl RelayTransport {
    pub fn word(self) -> &'static str {
        match self {
            RelayTransport::Tcp => "TCP",
            RelayTransport::Tls => "TLS",
            RelayTransport::Udp => "UDP",
        }
    }
}

fn boxed_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// How a TLS client checks the server. Files are kept as paths, never their contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsClientSettings {
    /// PEM files of certificates to trust besides the system's: authorities,
    /// or a server's own self-signed certificate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ca: Vec<std::path::PathBuf>,
    /// Accept any certificate: no verification at all (for testing only).
    #[serde(skip_serializing_if = "is_false")]
    pub insecure: bool,
    /// The name sent in the handshake and checked in the certificate (default: the host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Application protocols to offer, most wanted first (`h2`, `http/1.1`).
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "alpn_names")]
    pub alpn: Vec<String>,
    /// Trust exactly the certificate with this SHA-256, whatever its name or
    /// issuer (its dates are still checked); no other certificate is accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<CertPin>,
}

/// The SHA-256 of a certificate's DER bytes: `--pin sha256:AB:CD:…`, the
/// fingerprint a server's log line prints.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertPin(pub [u8; 32]);

/// Why a pin's text is not a SHA-256 fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error(
        "pin \"{excerpt}\": only SHA-256 pins are known; write sha256: and the certificate's 64 hex digits"
    )]
    Algorithm { excerpt: String },
    #[error(
        "pin: '{found}' at character {position} is not a hex digit; write sha256: and the certificate's 64 hex digits (colons allowed)"
    )]
    Digit { position: usize, found: char },
    #[error(
        "pin: {digits} hex digits, but a SHA-256 has 64; copy the whole fingerprint (SHA-256 AB:CD:… in the server's log)"
    )]
    Length { digits: usize },
}

impl CertPin {
    /// Reads `sha256:AB:CD:…`, `sha256:abcd…` or the bare hex, in any case,
    /// with or without colons (or spaces) between the bytes; `SHA-256:` and
    /// `sha256/` are taken as the prefix too.
    pub fn parse(text: &str) -> Result<CertPin, PinError> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        let mut offset = 0;
        for prefix in [
            "sha256:", "sha-256:", "sha256/", "sha-256/", "sha256 ", "sha-256 ",
        ] {
            if lower.starts_with(prefix) {
                offset = prefix.len();
                break;
            }
        }
        if offset == 0
            && let Some((algorithm, _)) = text.split_once([':', '/'])
            && !algorithm.is_empty()
            && !algorithm.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(PinError::Algorithm {
                excerpt: text.chars().take(16).collect(),
            });
        }
        let mut digits = Vec::with_capacity(64);
        for (i, c) in text[offset..].chars().enumerate() {
            match c {
                ':' | ' ' => {}
                c if c.is_ascii_hexdigit() => digits.push(c.to_digit(16).unwrap_or(0) as u8),
                found => {
                    return Err(PinError::Digit {
                        position: offset + i + 1,
                        found,
                    });
                }
            }
        }
        if digits.len() != 64 {
            return Err(PinError::Length {
                digits: digits.len(),
            });
        }
        let mut bytes = [0u8; 32];
        for (b, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            *b = pair[0] << 4 | pair[1];
        }
        Ok(CertPin(bytes))
    }

    /// `AB:CD:…`, as the log prints fingerprints.
    pub fn hex(&self) -> String {
        self.0
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

impl std::str::FromStr for CertPin {
    type Err = PinError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CertPin::parse(s)
    }
}

impl std::fmt::Display for CertPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl std::fmt::Debug for CertPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CertPin({self})")
    }
}

impl serde::Serialize for CertPin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for CertPin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CertPin::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl TlsClientSettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// What a TLS server presents. Files are kept as paths, never their contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsServerSettings {
    /// The certificate chain (PEM); without it, a self-signed certificate for
    /// localhost, 127.0.0.1 and ::1 is made when the server starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of `cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<std::path::PathBuf>,
    /// Application protocols the server accepts, most wanted first.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "alpn_names")]
    pub alpn: Vec<String>,
}

impl TlsServerSettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The kinds without their settings, for pickers and labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KindTag {
    TcpClient,
    TcpServer,
    Udp,
    TlsClient,
    TlsServer,
    /// A recording relay: clients in, each relayed to an upstream.
    Relay,
    UnixClient,
    UnixServer,
    UnixDatagram,
}

impl KindTag {
    pub const ALL: [KindTag; 9] = [
        KindTag::TcpClient,
        KindTag::TcpServer,
        KindTag::Udp,
        KindTag::TlsClient,
        KindTag::TlsServer,
        KindTag::Relay,
        KindTag::UnixClient,
        KindTag::UnixServer,
        KindTag::UnixDatagram,
    ];

    pub fn label(self) -> &'static str {
        match self {
            KindTag::TcpClient => "TCP client",
            KindTag::TcpServer => "TCP server",
            KindTag::Udp => "UDP socket",
            KindTag::TlsClient => "TLS client",
            KindTag::TlsServer => "TLS server",
            KindTag::Relay => "relay",
            KindTag::UnixClient => "Unix stream client",
            KindTag::UnixServer => "Unix stream server",
            KindTag::UnixDatagram => "Unix datagram socket",
        }
    }

    /// True for endpoints that accept many peers.
    pub fn is_server(self) -> bool {
        matches!(
            self,
            KindTag::TcpServer | KindTag::TlsServer | KindTag::UnixServer
        )
    }

    /// True for endpoints that connect out and hold one connection.
    pub fn is_client(self) -> bool {
        matches!(
            self,
            KindTag::TcpClient | KindTag::TlsClient | KindTag::UnixClient
        )
    }

    /// True for stream endpoints (TCP, with or without TLS, and Unix stream
    /// sockets: a byte stream with connections, half-close and peers).
    pub fn is_tcp(self) -> bool {
        !matches!(self, KindTag::Udp | KindTag::Relay | KindTag::UnixDatagram)
    }

    /// True for the Unix-domain kinds (named by paths, not addresses).
    pub fn is_unix(self) -> bool {
        matches!(
            self,
            KindTag::UnixClient | KindTag::UnixServer | KindTag::UnixDatagram
        )
    }

    /// True for datagram endpoints (UDP, Unix datagram).
    pub fn is_datagram(self) -> bool {
        matches!(self, KindTag::Udp | KindTag::UnixDatagram)
    }

    pub fn is_tls(self) -> bool {
        matches!(self, KindTag::TlsClient | KindTag::TlsServer)
    }
}

impl EndpointKind {
    pub fn tag(&self) -> KindTag {
        match self {
            EndpointKind::TcpClient { .. } => KindTag::TcpClient,
            EndpointKind::TcpServer { .. } => KindTag::TcpServer,
            EndpointKind::Udp { .. } => KindTag::Udp,
            EndpointKind::TlsClient { .. } => KindTag::TlsClient,
            EndpointKind::TlsServer { .. } => KindTag::TlsServer,
            EndpointKind::Relay { .. } => KindTag::Relay,
            EndpointKind::UnixClient { .. } => KindTag::UnixClient,
            EndpointKind::UnixServer { .. } => KindTag::UnixServer,
            EndpointKind::UnixDatagram { .. } => KindTag::UnixDatagram,
        }
    }

    /// A Unix endpoint's socket name it connects or sends to by default.
    pub fn unix_remote(&self) -> Option<&UnixPath> {
        match self {
            EndpointKind::UnixClient { path } => Some(path),
            EndpointKind::UnixDatagram { remote, .. } => remote.as_ref(),
            _ => None,
        }
    }

    /// A Unix endpoint's socket name it listens on or binds to.
    pub fn unix_local(&self) -> Option<&UnixPath> {
        match self {
            EndpointKind::UnixServer { path, .. } => Some(path),
            EndpointKind::UnixDatagram { bind, .. } => bind.as_ref(),
            _ => None,
        }
    }

    /// The address this endpoint connects or sends to by default.
    pub fn remote(&self) -> Option<&HostPort> {
        match self {
            EndpointKind::TcpClient { remote } | EndpointKind::TlsClient { remote, .. } => {
                Some(remote)
            }
            EndpointKind::Udp { remote, .. } => remote.as_ref(),
            EndpointKind::Relay { upstream, .. } => Some(upstream),
            EndpointKind::TcpServer { .. } | EndpointKind::TlsServer { .. } => None,
            // Named by paths: see `unix_remote`.
            EndpointKind::UnixClient { .. }
            | EndpointKind::UnixServer { .. }
            | EndpointKind::UnixDatagram { .. } => None,
        }
    }

    /// The address this endpoint listens on or binds to.
    pub fn local(&self) -> Option<&HostPort> {
        match self {
            EndpointKind::TcpServer { listen } | EndpointKind::TlsServer { listen, .. } => {
                Some(listen)
            }
            EndpointKind::Udp { bind, .. } => bind.as_ref(),
            EndpointKind::Relay { listen, .. } => Some(listen),
            EndpointKind::TcpClient { .. } | EndpointKind::TlsClient { .. } => None,
            // Named by paths: see `unix_local`.
            EndpointKind::UnixClient { .. }
            | EndpointKind::UnixServer { .. }
            | EndpointKind::UnixDatagram { .. } => None,
        }
    }

    /// Points a client at another remote, or a server (or a relay) at another address.
    pub fn retarget(&mut self, target: &HostPort) {
        match self {
            EndpointKind::Relay { listen, .. } => *listen = target.clone(),
            EndpointKind::TcpClient { remote } | EndpointKind::TlsClient { remote, .. } => {
                *remote = target.clone()
            }
            EndpointKind::TcpServer { listen } | EndpointKind::TlsServer { listen, .. } => {
                *listen = target.clone()
            }
            // A host and port cannot point at a path.
            EndpointKind::Udp { .. }
            | EndpointKind::UnixClient { .. }
            | EndpointKind::UnixServer { .. }
            | EndpointKind::UnixDatagram { .. } => {}
        }
    }
}

/// Answers given by the endpoint itself, as soon as data arrives.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum AutoReply {
    #[default]
    Off,
    /// Send every received payload back to its sender.
    Echo,
    /// For each received payload, the first matching rule's reply is sent.
    Rules(Vec<Rule>),
}

impl AutoReply {
    pub fn is_off(&self) -> bool {
        matches!(self, AutoReply::Off)
    }

    /// One rule that answers every payload with `reply`.
    pub fn always(reply: Payload) -> Self {
        AutoReply::Rules(vec![Rule::new(Trigger::Always, reply)])
    }

    /// Checks that every rule's `after` names a rule of the list (one line
    /// naming the first that does not).
    pub fn check(&self) -> Result<(), String> {
        let AutoReply::Rules(rules) = self else {
            return Ok(());
        };
        for (i, rule) in rules.iter().enumerate() {
            if let Some(after) = &rule.after
                && !rules.iter().any(|r| r.name == *after)
            {
                return Err(format!(
                    "rule {} waits for rule \"{after}\", and no rule has that name",
                    i + 1
                ));
            }
            rule.reply_template()
                .map_err(|e| format!("rule {}'s reply, {e}", i + 1))?;
        }
        Ok(())
    }
}

/// A rule: when a received message matches, send the reply. The first
/// matching rule of the list answers.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub when: Trigger,
    /// A template (see [`crate::model::placeholder`]): placeholders like
    /// `${counter}` and `${crc16_modbus}`; for a regex, `$1`, `${1}` and
    /// `${name}` take the match's captures (`$$` is one `$`).
    pub reply: Payload,
    /// What other rules' `after` call this one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Matches only once the rule of this name has matched on the same
    /// connection (a login, then commands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Waits this long before the reply goes out (later messages of the connection wait too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u32>,
}

impl Rule {
    /// The reply read as a template: captures for a regex rule, placeholders for any.
    pub fn reply_template(
        &self,
    ) -> Result<super::placeholder::Template, super::placeholder::TemplateError> {
        use super::placeholder::{Scope, Template};
        let scope = match &self.when {
            Trigger::Regex(re) => Scope::Captures {
                names: re
                    .compile()
                    .capture_names()
                    .flatten()
                    .map(str::to_owned)
                    .collect(),
            },
            _ => Scope::Plain,
        };
        Template::parse(self.reply.bytes(), &scope)
    }

    pub fn new(when: Trigger, reply: impl Into<Payload>) -> Self {
        Self {
            when,
            reply: reply.into(),
            name: String::new(),
            after: None,
            delay_ms: None,
        }
    }
}

/// What a received payload must look like for a rule to answer it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Trigger {
    /// Any payload.
    Always,
    /// Payloads that contain these bytes.
    Contains(Payload),
    /// Payloads that are exactly these bytes.
    Exact(Payload),
    /// Payloads that start with these bytes (written in hex for a binary prefix).
    StartsWith(Payload),
    /// Payloads matched by this regular expression (over bytes; `(?-u)` for raw bytes).
    Regex(RegexText),
}

/// A regular expression checked when it is read, so a broken one in a file is
/// reported with its line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegexText(pub String);

impl RegexText {
    /// Checks `pattern`; the error is one line (the regex crate's own spans
    /// several, with a caret under the pattern).
    pub fn new(pattern: &str) -> Result<Self, String> {
        regex::bytes::Regex::new(pattern).map_err(|e| regex_error_line(&e))?;
        Ok(Self(pattern.to_owned()))
    }

    pub fn compile(&self) -> regex::bytes::Regex {
        // Checked on construction; a failure here would only mean a bigger size limit.
        regex::bytes::Regex::new(&self.0).unwrap_or_else(|_| {
            regex::bytes::Regex::new("$^").expect("the never-matching regex compiles")
        })
    }
}

impl serde::Serialize for RegexText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for RegexText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RegexText::new(&s).map_err(|e| serde::de::Error::custom(format!("bad regex: {e}")))
    }
}

/// A regex error as one line: `unclosed group (at character 1)`.
pub fn regex_error_line(e: &regex::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let message = lines
        .iter()
        .rev()
        .find_map(|l| l.trim_start().strip_prefix("error: "))
        .map(str::trim);
    // The caret line sits under the pattern line, both indented alike.
    let caret = lines.iter().enumerate().skip(1).find_map(|(i, l)| {
        let t = l.trim();
        (!t.is_empty() && t.chars().all(|c| c == '^')).then(|| {
            let pattern_indent = lines[i - 1].len() - lines[i - 1].trim_start().len();
            l.len() - l.trim_start().len() - pattern_indent + 1
        })
    });
    match (message, caret) {
        (Some(m), Some(at)) => format!("{m} (at character {at})"),
        (Some(m), None) => m.to_owned(),
        _ => lines
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Socket options, applied through socket2 when the endpoint starts. Absent
/// values keep the operating system's default.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocketOptions {
    /// TCP_NODELAY: send small writes at once instead of coalescing them (Nagle).
    #[serde(skip_serializing_if = "is_false")]
    pub nodelay: bool,
    /// SO_KEEPALIVE with this idle time in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive_secs: Option<u32>,
    /// SO_LINGER in seconds (0 makes every close an abort).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linger_secs: Option<u32>,
    /// IP_TTL / IPV6_UNICAST_HOPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// SO_RCVBUF in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recv_buffer: Option<u32>,
    /// SO_SNDBUF in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_buffer: Option<u32>,
    /// SO_BROADCAST (UDP): allow sending to broadcast addresses.
    #[serde(skip_serializing_if = "is_false")]
    pub broadcast: bool,
    /// SO_REUSEADDR for UDP sockets (TCP listeners always set it, as servers do).
    #[serde(skip_serializing_if = "is_false")]
    pub reuse_address: bool,
    /// How long a TCP connect may take before it fails as timed out.
    #[serde(
        skip_serializing_if = "is_default_connect_timeout",
        deserialize_with = "connect_timeout_secs"
    )]
    pub connect_timeout_secs: f64,
    /// A UDP socket with a default remote is connected to it (connect()), so
    /// the kernel delivers only the remote's datagrams and reports an ICMP
    /// "port unreachable" as connection refused. `false` leaves it unconnected:
    /// it sends to any address (sendto) and receives from anyone (recvfrom).
    /// Without a default remote a socket is always unconnected.
    #[serde(skip_serializing_if = "is_true")]
    pub connected: bool,
    /// A TCP server takes at most this many peers at once; one more is
    /// accepted and closed at once, with the reason in the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_peers: Option<u32>,
    /// TCP and TLS clients: the local address (and port) the socket is bound
    /// to before it connects; port 0 lets the system choose the port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<HostPort>,
    /// UDP: groups joined at start, the multicast interface, TTL and loopback.
    #[serde(skip_serializing_if = "Multicast::is_default")]
    pub multicast: Multicast,
}

/// A client's local address as typed (`--bind`, the window's "Bind to"):
/// `127.0.0.1:5000`, `[::1]:5000`, an address alone (any port: `127.0.0.1`,
/// `::1`), or a port alone (`5000`, `:5000`: any address of the remote's
/// family, `v6` when the remote is IPv6). An IP address, never a name: the
/// socket is bound before anything is looked up.
pub fn parse_local_bind(text: &str, v6: bool) -> Result<HostPort, String> {
    let t = text.trim();
    let port_only = t.strip_prefix(':').unwrap_or(t);
    if !port_only.is_empty() && port_only.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = port_only
            .parse()
            .map_err(|_| format!("port {port_only} is out of range: ports go from 0 to 65535"))?;
        return Ok(HostPort::new(if v6 { "::" } else { "0.0.0.0" }, port));
    }
    let bare = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t);
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(HostPort::new(ip.to_string(), 0));
    }
    let hp: HostPort = t.parse().map_err(|e: super::AddressError| e.to_string())?;
    if hp.ip().is_none() {
        return Err(format!(
            "\"{}\" is not an IP address: a client binds a local address of this machine (127.0.0.1, [::1]:5000), not a name",
            super::escape_controls(&hp.host)
        ));
    }
    Ok(hp)
}

/// The longest connect timeout a file may ask for (an hour).
pub const MAX_CONNECT_TIMEOUT_SECS: f64 = 3600.0;

/// A file's connect timeout: a number of seconds from 0.001 to an hour, said
/// with its place when it is not (never quietly replaced).
fn connect_timeout_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let secs = <f64 as serde::Deserialize>::deserialize(d)?;
    if secs.is_finite() && (0.001..=MAX_CONNECT_TIMEOUT_SECS).contains(&secs) {
        Ok(secs)
    } else {
        Err(serde::de::Error::custom(format!(
            "connect_timeout_secs {secs}: give seconds from 0.001 to {MAX_CONNECT_TIMEOUT_SECS}"
        )))
    }
}

/// ALPN protocol names in a file: printable ASCII, 1 to 255 bytes, as the
/// `--alpn` flag takes them.
fn alpn_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = <Vec<String> as serde::Deserialize>::deserialize(d)?;
    if let Some(bad) = names
        .iter()
        .find(|n| n.is_empty() || n.len() > 255 || !n.bytes().all(|b| b.is_ascii_graphic()))
    {
        let shown: String = bad.chars().take(40).collect();
        return Err(serde::de::Error::custom(format!(
            "alpn \"{}\": a protocol name is printable ASCII, 1 to 255 bytes",
            crate::model::escape_controls(&shown)
        )));
    }
    Ok(names)
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_true(b: &bool) -> bool {
    *b
}

pub const DEFAULT_CONNECT_TIMEOUT_SECS: f64 = 10.0;

fn is_default_connect_timeout(v: &f64) -> bool {
    *v == DEFAULT_CONNECT_TIMEOUT_SECS
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            nodelay: false,
            keepalive_secs: None,
            linger_secs: None,
            ttl: None,
            recv_buffer: None,
            send_buffer: None,
            broadcast: false,
            reuse_address: false,
            connect_timeout_secs: DEFAULT_CONNECT_TIMEOUT_SECS,
            connected: true,
            max_peers: None,
            bind: None,
            multicast: Multicast::default(),
        }
    }
}

impl SocketOptions {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The connect timeout as a duration, clamped to something sane.
    pub fn connect_timeout(&self) -> std::time::Duration {
        let secs = if self.connect_timeout_secs.is_finite() && self.connect_timeout_secs > 0.0 {
            self.connect_timeout_secs.min(3600.0)
        } else {
            DEFAULT_CONNECT_TIMEOUT_SECS
        };
        // Checked anyway: a conversion that can panic has no place here.
        std::time::Duration::try_from_secs_f64(secs).unwrap_or(std::time::Duration::from_secs(
            DEFAULT_CONNECT_TIMEOUT_SECS as u64,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_from_a_file_are_checked_not_replaced() {
        for bad in ["NaN", "inf", "-1.0", "0.0", "1e300", "3601.0"] {
            let text = format!("(connect_timeout_secs: {bad})");
            let e = ron::from_str::<SocketOptions>(&text)
                .unwrap_err()
                .to_string();
            assert!(e.contains("give seconds from 0.001 to 3600"), "{bad}: {e}");
        }
        let ok: SocketOptions = ron::from_str("(connect_timeout_secs: 2.5)").unwrap();
        assert_eq!(ok.connect_timeout_secs, 2.5);
        let e = ron::from_str::<TlsClientSettings>("(alpn: [\"h2\\n\"])")
            .unwrap_err()
            .to_string();
        assert!(e.contains("printable ASCII"), "{e}");
        assert!(ron::from_str::<TlsServerSettings>("(alpn: [\"h2\", \"http/1.1\"])").is_ok());
    }

    #[test]
    fn a_bad_regex_is_one_line_with_its_position() {
        assert_eq!(
            RegexText::new("ab(c").unwrap_err(),
            "unclosed group (at character 3)"
        );
        let e = RegexText::new("x{99999999999}").unwrap_err();
        assert!(!e.contains('\n'), "{e}");
        assert!(RegexText::new("a\nb(").unwrap_err().lines().count() == 1);
    }

    #[test]
    fn spec_file_form_is_short() {
        let spec = EndpointSpec::new(
            "echo server",
            EndpointKind::TcpServer {
                listen: "127.0.0.1:7000".parse().unwrap(),
            },
        )
        .with_reply(AutoReply::Echo);
        let text = ron::to_string(&spec).unwrap();
        assert_eq!(
            text,
            "(name:\"echo server\",kind:TcpServer(listen:\"127.0.0.1:7000\"),reply:Echo)"
        );
        let back: EndpointSpec = ron::from_str(&text).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn unix_kinds_round_trip_in_their_short_file_form() {
        let path = |t: &str| UnixPath::parse(t).unwrap();
        let cases = [
            (
                EndpointKind::UnixClient {
                    path: path("/tmp/app.sock"),
                },
                "UnixClient(path:\"/tmp/app.sock\")",
            ),
            (
                EndpointKind::UnixServer {
                    path: path("@app"),
                    unlink: false,
                },
                "UnixServer(path:\"@app\")",
            ),
            (
                EndpointKind::UnixServer {
                    path: path("./s \"q\"\n.sock"),
                    unlink: true,
                },
                "UnixServer(path:\"./s \\\"q\\\"\\n.sock\",unlink:true)",
            ),
            (
                EndpointKind::UnixDatagram {
                    bind: Some(path("/tmp/me.sock")),
                    remote: None,
                    unlink: false,
                },
                "UnixDatagram(bind:Some(\"/tmp/me.sock\"))",
            ),
            (
                EndpointKind::UnixDatagram {
                    bind: None,
                    remote: None,
                    unlink: false,
                },
                "UnixDatagram()",
            ),
        ];
        for (kind, text) in cases {
            let spec = EndpointSpec::new("u", kind);
            let file = ron::to_string(&spec).unwrap();
            assert_eq!(file, format!("(name:\"u\",kind:{text})"));
            assert_eq!(ron::from_str::<EndpointSpec>(&file).unwrap(), spec);
        }
        // A path a file cannot hold is refused with its reason.
        let long = format!(
            "(name:\"u\",kind:UnixClient(path:\"/{}\"))",
            "x".repeat(120)
        );
        let e = ron::from_str::<EndpointSpec>(&long)
            .unwrap_err()
            .to_string();
        assert!(e.contains("path too long"), "{e}");
        // The kinds know their paths; no host and port.
        let server = EndpointKind::UnixServer {
            path: path("@x"),
            unlink: false,
        };
        assert_eq!(server.unix_local(), Some(&path("@x")));
        assert_eq!(server.local(), None);
        assert!(server.tag().is_server() && server.tag().is_unix() && server.tag().is_tcp());
        assert!(KindTag::UnixDatagram.is_datagram() && !KindTag::UnixDatagram.is_tcp());
    }

    #[test]
    fn udp_sockets_are_connected_unless_a_file_says_otherwise() {
        // Files written before the setting existed load as connected.
        let old = "(name:\"u\",kind:Udp(),options:(ttl:Some(3)))";
        let spec: EndpointSpec = ron::from_str(old).unwrap();
        assert!(spec.options.connected);
        assert_eq!(ron::to_string(&spec).unwrap(), old);
        let spec: EndpointSpec =
            ron::from_str("(name:\"u\",kind:Udp(),options:(connected:false))").unwrap();
        assert!(!spec.options.connected);
        let text = ron::to_string(&spec).unwrap();
        assert!(text.contains("connected:false"), "{text}");
    }

    #[test]
    fn bad_regex_is_refused_when_read() {
        let err = ron::from_str::<Trigger>("Regex(\"(unclosed\")").unwrap_err();
        assert!(err.to_string().contains("bad regex"), "{err}");
    }

    #[test]
    fn pins_are_read_in_every_usual_spelling() {
        let hex = "AB".repeat(31) + "0f";
        let want = {
            let mut b = [0xAB; 32];
            b[31] = 0x0F;
            CertPin(b)
        };
        let colons = (0..32)
            .map(|i| &hex[i * 2..i * 2 + 2])
            .collect::<Vec<_>>()
            .join(":");
        for text in [
            format!("sha256:{hex}"),
            format!("SHA256:{}", hex.to_lowercase()),
            format!("sha256:{colons}"),
            format!("SHA-256:{colons}"),
            format!("SHA-256 {colons}"),
            format!("  {colons}  "),
            hex.clone(),
        ] {
            assert_eq!(CertPin::parse(&text), Ok(want), "{text}");
        }
        assert_eq!(
            want.to_string(),
            format!("sha256:{}", colons.to_uppercase())
        );
        assert_eq!(CertPin::parse(&want.to_string()), Ok(want));
    }

    #[test]
    fn bad_pins_say_what_is_wrong() {
        let e = CertPin::parse("sha1:0123").unwrap_err();
        assert!(matches!(e, PinError::Algorithm { .. }), "{e}");
        assert!(e.to_string().contains("only SHA-256"), "{e}");
        let e = CertPin::parse(&format!("sha256:{}", "a".repeat(62))).unwrap_err();
        assert_eq!(e, PinError::Length { digits: 62 });
        let e = CertPin::parse(&format!("sha256:{}g", "a".repeat(63))).unwrap_err();
        assert_eq!(
            e,
            PinError::Digit {
                position: 71,
                found: 'g'
            }
        );
        assert!(CertPin::parse("").is_err());
    }

    #[test]
    fn a_pin_is_saved_as_text_and_checked_when_read() {
        let pin = CertPin([7; 32]);
        let tls = TlsClientSettings {
            pin: Some(pin),
            ..Default::default()
        };
        let text = ron::to_string(&tls).unwrap();
        assert_eq!(text, format!("(pin:Some(\"{pin}\"))"));
        assert_eq!(ron::from_str::<TlsClientSettings>(&text).unwrap(), tls);
        let err = ron::from_str::<TlsClientSettings>("(pin: Some(\"sha256:12\"))").unwrap_err();
        assert!(err.to_string().contains("64"), "{err}");
        // Files without a pin read as before.
        assert_eq!(ron::from_str::<TlsClientSettings>("()").unwrap().pin, None);
    }

    #[test]
    fn connect_timeout_is_clamped() {
        let mut o = SocketOptions::default();
        assert_eq!(o.connect_timeout().as_secs(), 10);
        o.connect_timeout_secs = -1.0;
        assert_eq!(o.connect_timeout().as_secs(), 10);
        o.connect_timeout_secs = 0.5;
        assert_eq!(o.connect_timeout().as_millis(), 500);
        for bad in [f64::NAN, f64::INFINITY, f64::MAX, f64::MIN_POSITIVE, 1e300] {
            o.connect_timeout_secs = bad;
            let t = o.connect_timeout();
            assert!(t <= std::time::Duration::from_secs(3600), "{bad}: {t:?}");
        }
    }
}
