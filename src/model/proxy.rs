//! How a TCP or TLS client reaches its remote: through a proxy (SOCKS5 or
//! HTTP CONNECT), and whether it connects again, after a growing wait, when
//! its connection fails or ends.
//!
//! Plain data, parsed and checked here (no I/O); the engine's `proxy` module
//! speaks the handshakes.

use std::fmt;
use std::time::Duration;

use super::address::HostPort;

/// How the engine's note begins once the client's TCP connection to its
/// proxy is up (the lifecycle view reads it; the log shows it).
pub const PROXY_CONNECTED_NOTE: &str = "connected to proxy ";
/// How the engine's note begins once the proxy has opened the tunnel to the target.
pub const TUNNEL_NOTE: &str = "tunnel established to ";
/// How every note about reconnecting begins.
pub const RECONNECT_NOTE: &str = "reconnect: ";

/// The proxies a client can go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyKind {
    /// SOCKS5 (RFC 1928), host names resolved by the proxy.
    Socks5,
    /// An HTTP proxy's CONNECT tunnel (RFC 9110 §9.3.6).
    HttpConnect,
}

impl ProxyKind {
    pub fn word(self) -> &'static str {
        match self {
            ProxyKind::Socks5 => "SOCKS5",
            ProxyKind::HttpConnect => "HTTP CONNECT",
        }
    }

    fn scheme(self) -> &'static str {
        match self {
            ProxyKind::Socks5 => "socks5",
            ProxyKind::HttpConnect => "http",
        }
    }
}

/// A user name and password for the proxy (SOCKS5 username/password, or HTTP basic).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyCredentials {
    pub user: String,
    pub password: String,
}

/// A proxy as `socks5://[user:pass@]host:port` or `http://[user:pass@]host:port`.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    pub kind: ProxyKind,
    /// Where the proxy listens.
    pub server: HostPort,
    pub credentials: Option<ProxyCredentials>,
}

/// The longest user name or password (SOCKS5 carries each length in one byte).
pub const MAX_CREDENTIAL: usize = 255;

impl fmt::Debug for ProxyCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyCredentials({}:***)", self.user)
    }
}

impl Proxy {
    /// Reads a proxy URL. User and password may be percent-encoded (`%40` for `@`).
    pub fn parse(text: &str) -> Result<Proxy, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the proxy is empty: write socks5://HOST:PORT or http://HOST:PORT".into());
        }
        let shown =
            || super::escape_controls(&text.chars().take(60).collect::<String>()).into_owned();
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "proxy \"{}\": give a scheme, socks5://HOST:PORT or http://HOST:PORT",
                shown()
            ));
        };
        let kind = match scheme.to_ascii_lowercase().as_str() {
            // socks5h is curl's spelling for "the proxy resolves names", which sockbench always asks.
            "socks5" | "socks5h" => ProxyKind::Socks5,
            "http" => ProxyKind::HttpConnect,
            "https" => {
                return Err(
                    "proxy: https:// (TLS to the proxy itself) is not supported; use http:// for a CONNECT proxy"
                        .into(),
                );
            }
            "socks4" | "socks4a" => {
                return Err("proxy: SOCKS4 is not supported; use socks5://".into());
            }
            _ => {
                return Err(format!(
                    "proxy \"{}\": the scheme must be socks5:// or http://",
                    shown()
                ));
            }
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(format!(
                "proxy \"{}\": write only {}://HOST:PORT, without a path",
                shown(),
                kind.scheme()
            ));
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let credentials = userinfo
            .map(|u| {
                let (user, password) = u.split_once(':').unwrap_or((u, ""));
                let user = percent_decode(user)
                    .ok_or("proxy: a % in the user name is not followed by two hex digits")?;
                let password = percent_decode(password)
                    .ok_or("proxy: a % in the password is not followed by two hex digits")?;
                if user.is_empty() {
                    return Err("proxy: the user name before @ is empty".to_owned());
                }
                if user.len() > MAX_CREDENTIAL || password.len() > MAX_CREDENTIAL {
                    return Err(format!(
                        "proxy: user name and password are at most {MAX_CREDENTIAL} bytes each"
                    ));
                }
                if kind == ProxyKind::Socks5 && password.is_empty() {
                    return Err(
                        "proxy: SOCKS5 username/password needs a password (user:pass@)".into(),
                    );
                }
                Ok(ProxyCredentials { user, password })
            })
            .transpose()?;
        let server: HostPort = hostport
            .parse()
            .map_err(|e| format!("proxy address: {e}"))?;
        let server = server
            .require_port()
            .map_err(|e| format!("proxy address: {e}"))?;
        Ok(Proxy {
            kind,
            server,
            credentials,
        })
    }

    /// The URL as typed, password included (what a session file stores).
    pub fn url(&self) -> String {
        let mut s = format!("{}://", self.kind.scheme());
        if let Some(c) = &self.credentials {
            s.push_str(&percent_encode(&c.user));
            s.push(':');
            s.push_str(&percent_encode(&c.password));
            s.push('@');
        }
        s.push_str(&self.server.to_string());
        s
    }

    /// The URL with the password hidden (for logs and notes).
    pub fn shown(&self) -> String {
        let mut s = format!("{}://", self.kind.scheme());
        if let Some(c) = &self.credentials {
            s.push_str(&percent_encode(&c.user));
            s.push_str(":***@");
        }
        s.push_str(&self.server.to_string());
        s
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy({})", self.shown())
    }
}

impl std::str::FromStr for Proxy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Proxy::parse(s)
    }
}

impl serde::Serialize for Proxy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.url())
    }
}

impl<'de> serde::Deserialize<'de> for Proxy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Proxy::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The shortest and longest wait between reconnect attempts a file or flag may give.
pub const MIN_BACKOFF_MS: u64 = 1;
pub const MAX_BACKOFF_MS: u64 = 3_600_000;
/// The most attempts a count may give (beyond, say "forever").
pub const MAX_ATTEMPTS: u32 = 1_000_000;

/// Connect again when the connection fails or ends (not when the person
/// closes it): wait `min_ms`, then twice as long each time, at most `max_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "ReconnectFile")]
pub struct Reconnect {
    /// How many attempts after a connection failed or ended; `None`: until stopped.
    /// A connection that carried data (or stayed up for `max_ms`) starts the count afresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// The first wait, in milliseconds.
    pub min_ms: u64,
    /// The longest wait, in milliseconds.
    pub max_ms: u64,
    /// Each wait is taken at random between half and all of it, so many
    /// clients of one server do not come back in step.
    #[serde(skip_serializing_if = "is_false")]
    pub jitter: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            attempts: None,
            min_ms: 500,
            max_ms: 30_000,
            jitter: false,
        }
    }
}

/// A file's reconnect settings before they are checked.
#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ReconnectFile {
    attempts: Option<u32>,
    min_ms: u64,
    max_ms: u64,
    jitter: bool,
}

impl Default for ReconnectFile {
    fn default() -> Self {
        let d = Reconnect::default();
        ReconnectFile {
            attempts: d.attempts,
            min_ms: d.min_ms,
            max_ms: d.max_ms,
            jitter: d.jitter,
        }
    }
}

impl TryFrom<ReconnectFile> for Reconnect {
    type Error = String;
    fn try_from(f: ReconnectFile) -> Result<Self, String> {
        let r = Reconnect {
            attempts: f.attempts,
            min_ms: f.min_ms,
            max_ms: f.max_ms,
            jitter: f.jitter,
        };
        r.check()?;
        Ok(r)
    }
}

impl Reconnect {
    /// Checks the bounds: waits from 1 ms to an hour, the first no longer than
    /// the longest, at most a million attempts.
    pub fn check(&self) -> Result<(), String> {
        for (what, ms) in [("min_ms", self.min_ms), ("max_ms", self.max_ms)] {
            if !(MIN_BACKOFF_MS..=MAX_BACKOFF_MS).contains(&ms) {
                return Err(format!(
                    "reconnect {what} {ms}: give milliseconds from {MIN_BACKOFF_MS} to {MAX_BACKOFF_MS}"
                ));
            }
        }
        if self.min_ms > self.max_ms {
            return Err(format!(
                "reconnect: the first wait ({} ms) is longer than the longest ({} ms)",
                self.min_ms, self.max_ms
            ));
        }
        if let Some(n) = self.attempts
            && !(1..=MAX_ATTEMPTS).contains(&n)
        {
            return Err(format!(
                "reconnect attempts {n}: give 1 to {MAX_ATTEMPTS}, or none for until stopped"
            ));
        }
        Ok(())
    }

    /// The wait before attempt `attempt` (1 for the first): `min_ms` doubled
    /// for each attempt before it, capped at `max_ms`. With jitter, `random`
    /// (from 0 to 1) takes it between half and all of that.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(40);
        let ms = self
            .min_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_ms)
            .max(MIN_BACKOFF_MS);
        let ms = if self.jitter {
            let r = if random.is_finite() {
                random.clamp(0.0, 1.0)
            } else {
                1.0
            };
            let half = ms / 2;
            half + ((ms - half) as f64 * r) as u64
        } else {
            ms
        };
        Duration::from_millis(ms)
    }

    /// "3 attempts, 100 ms..5 s" or "until stopped, 100 ms..5 s".
    pub fn describe(&self) -> String {
        let count = match self.attempts {
            Some(1) => "1 attempt".to_owned(),
            Some(n) => format!("{n} attempts"),
            None => "until stopped".to_owned(),
        };
        format!(
            "{count}, waits {}..{}{}",
            show_ms(self.min_ms),
            show_ms(self.max_ms),
            if self.jitter { " with jitter" } else { "" }
        )
    }
}

/// Milliseconds as people read them: 250 ms, 2 s, 1.5 s, 2 min.
pub fn show_ms(ms: u64) -> String {
    if ms >= 60_000 && ms.is_multiple_of(60_000) {
        format!("{} min", ms / 60_000)
    } else if ms >= 1000 {
        let s = format!("{:.3}", ms as f64 / 1000.0);
        format!("{} s", s.trim_end_matches('0').trim_end_matches('.'))
    } else {
        format!("{ms} ms")
    }
}

/// Reads a duration in milliseconds: `250`, `250ms`, `2s`, `1.5s`, `1m`.
pub fn parse_millis(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("min") {
        (n, 60_000.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (t, 1.0)
    };
    let number = number.trim();
    let ok = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.matches('.').count() <= 1;
    let value = ok.then(|| number.parse::<f64>().ok()).flatten();
    match value {
        Some(v) if v.is_finite() && v * scale <= MAX_BACKOFF_MS as f64 => {
            Ok((v * scale).round() as u64)
        }
        _ => Err(format!(
            "\"{}\" is not a duration: write 250ms, 2s, 1.5s or 1m (at most an hour)",
            super::escape_controls(&t.chars().take(30).collect::<String>())
        )),
    }
}

/// Reads `MIN..MAX` (each as [`parse_millis`] takes it) into a checked pair.
pub fn parse_backoff(text: &str) -> Result<(u64, u64), String> {
    let Some((min, max)) = text.split_once("..") else {
        return Err(format!(
            "backoff \"{}\": write MIN..MAX, for example 100ms..5s",
            super::escape_controls(&text.chars().take(30).collect::<String>())
        ));
    };
    let min = parse_millis(min).map_err(|e| format!("backoff: {e}"))?;
    let max = parse_millis(max).map_err(|e| format!("backoff: {e}"))?;
    Reconnect {
        attempts: None,
        min_ms: min,
        max_ms: max,
        jitter: false,
    }
    .check()
    .map_err(|e| e.replacen("reconnect", "backoff", 1))?;
    Ok((min, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_are_read_and_written_back() {
        let p = Proxy::parse("socks5://127.0.0.1:1080").unwrap();
        assert_eq!(p.kind, ProxyKind::Socks5);
        assert_eq!(p.server, HostPort::new("127.0.0.1", 1080));
        assert_eq!(p.credentials, None);
        assert_eq!(p.url(), "socks5://127.0.0.1:1080");

        let p = Proxy::parse("socks5h://al%40ice:p%3Ass@[::1]:9050/").unwrap();
        let c = p.credentials.clone().unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("al@ice", "p:ss"));
        assert_eq!(p.server, HostPort::new("::1", 9050));
        assert_eq!(p.url(), "socks5://al%40ice:p%3Ass@[::1]:9050");
        assert_eq!(Proxy::parse(&p.url()).unwrap(), p);
        assert_eq!(p.shown(), "socks5://al%40ice:***@[::1]:9050");
        assert!(!format!("{p:?}").contains("p:ss"));

        let p = Proxy::parse("HTTP://user:@proxy.example:3128").unwrap();
        assert_eq!(p.kind, ProxyKind::HttpConnect);
        assert_eq!(p.credentials.unwrap().password, "");
    }

    #[test]
    fn bad_proxy_urls_say_what_is_wrong() {
        for (text, want) in [
            ("", "empty"),
            ("127.0.0.1:1080", "give a scheme"),
            ("ftp://h:1", "socks5:// or http://"),
            ("https://h:1", "not supported"),
            ("socks4://h:1", "SOCKS4"),
            ("socks5://h", "no port"),
            ("socks5://h:0", "port"),
            ("http://h:80/path", "without a path"),
            ("socks5://u@h:1", "needs a password"),
            ("socks5://:p@h:1", "user name"),
            ("socks5://u:%zz@h:1", "two hex digits"),
        ] {
            let e = Proxy::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        let long = format!("socks5://{}:p@h:1", "u".repeat(256));
        assert!(Proxy::parse(&long).unwrap_err().contains("255"));
        assert!(ron::from_str::<Proxy>("\"socks5://h\"").is_err());
    }

    #[test]
    fn waits_double_up_to_the_longest() {
        let r = Reconnect {
            attempts: Some(5),
            min_ms: 100,
            max_ms: 1000,
            jitter: false,
        };
        let waits: Vec<u128> = (1..=6).map(|a| r.delay(a, 0.5).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(r.delay(u32::MAX, 0.0).as_millis(), 1000);
        let j = Reconnect { jitter: true, ..r };
        assert_eq!(j.delay(3, 0.0).as_millis(), 200);
        assert_eq!(j.delay(3, 1.0).as_millis(), 400);
        assert_eq!(j.delay(3, f64::NAN).as_millis(), 400);
    }

    #[test]
    fn backoff_and_durations_are_checked() {
        assert_eq!(parse_backoff("100ms..5s"), Ok((100, 5000)));
        assert_eq!(parse_backoff("250..1.5s"), Ok((250, 1500)));
        assert_eq!(parse_backoff("1s..2m"), Ok((1000, 120_000)));
        for (bad, want) in [
            ("100", "MIN..MAX"),
            ("5s..1s", "longer than the longest"),
            ("0..1s", "from 1"),
            ("1s..2h", "not a duration"),
            ("x..1s", "not a duration"),
            ("-1..1s", "not a duration"),
        ] {
            let e = parse_backoff(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn an_endpoint_keeps_its_proxy_and_reconnect_and_old_files_load() {
        use crate::model::{EndpointKind, EndpointSpec};
        let old = "(name:\"c\",kind:TcpClient(remote:\"127.0.0.1:7\"))";
        let spec: EndpointSpec = ron::from_str(old).unwrap();
        assert_eq!((spec.proxy.clone(), spec.reconnect), (None, None));
        assert_eq!(ron::to_string(&spec).unwrap(), old);

        let mut spec = EndpointSpec::new(
            "c",
            EndpointKind::TcpClient {
                remote: HostPort::new("example.com", 80),
            },
        );
        spec.proxy = Some(Proxy::parse("socks5://u:p%20w@127.0.0.1:1080").unwrap());
        spec.reconnect = Some(Reconnect {
            attempts: Some(5),
            min_ms: 100,
            max_ms: 5000,
            jitter: true,
        });
        let text = ron::to_string(&spec).unwrap();
        assert!(
            text.contains("proxy:Some(\"socks5://u:p%20w@127.0.0.1:1080\")"),
            "{text}"
        );
        assert_eq!(ron::from_str::<EndpointSpec>(&text).unwrap(), spec);
        let bad = text.replace("min_ms:100", "min_ms:0");
        assert!(ron::from_str::<EndpointSpec>(&bad).is_err());
    }

    #[test]
    fn reconnect_in_a_file_is_checked() {
        let r: Reconnect = ron::from_str("(attempts: Some(3), min_ms: 10, max_ms: 80)").unwrap();
        assert_eq!(r.attempts, Some(3));
        assert_eq!(
            ron::from_str::<Reconnect>("()").unwrap(),
            Reconnect::default()
        );
        let e = ron::from_str::<Reconnect>("(min_ms: 10, max_ms: 5)").unwrap_err();
        assert!(e.to_string().contains("longer"), "{e}");
        let e = ron::from_str::<Reconnect>("(attempts: Some(0))").unwrap_err();
        assert!(e.to_string().contains("attempts 0"), "{e}");
        let text = ron::to_string(&r).unwrap();
        assert_eq!(ron::from_str::<Reconnect>(&text).unwrap(), r);
    }
}
