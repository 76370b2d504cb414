//! Addresses as people type them: `host:port`, `[v6addr]:port`, `127.0.0.1:7000`.
//!
//! Parsing checks the form only (a host name is resolved later, by the engine,
//! so a name that does not resolve is reported when the endpoint starts).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// A validated `host:port`. The host is an IP literal or a host name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// The IP literal (without brackets) or host name.
    pub host: String,
    pub port: u16,
}

/// Why a typed address is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the address is empty: write host:port, for example 127.0.0.1:7000")]
    Empty,
    #[error("{length} characters is too long for host:port (at most {MAX_CHARS})")]
    TooLong { length: usize },
    #[error("\"{0}\" has no port: write host:port, for example {0}:7000")]
    MissingPort(String),
    #[error("\"{0}\" is only a port: write host:port, for example 127.0.0.1:{0} (or [::1]:{0})")]
    OnlyPort(String),
    #[error("\"{0}\" has a scheme: write only host:port, for example {1}")]
    HasScheme(String, String),
    #[error(
        "\"{0}\" has more than one ':': write host:port (an IPv6 address goes in brackets, as [::1]:80)"
    )]
    ManyColons(String),
    #[error("the host is missing before \":{0}\"")]
    MissingHost(String),
    #[error("port \"{0}\" is not a number")]
    PortNotNumber(String),
    #[error("port {0} is out of range: ports go from 0 to 65535")]
    PortOutOfRange(String),
    #[error("an IPv6 address needs brackets: write [{0}]:PORT")]
    BareIpv6(String),
    #[error("\"{0}\" is not a valid IPv6 address")]
    BadIpv6(String),
    #[error("\"{0}\" is not a valid host name (letters, digits, '-' and '.' only)")]
    BadHostName(String),
    #[error("\"{0}\" looks like an IPv4 address but is not one (each part is 0 to 255)")]
    BadIpv4(String),
    #[error("port 0 only makes sense for listening: give the port to connect to")]
    PortZero,
    #[error(
        "the zone after \"[{address}%\" is empty: give an interface name or number, or leave out '%'"
    )]
    EmptyZone { address: String },
    #[error("the zone after \"[{address}%\" has {} at position {position}: {ZONE_RULE}", show_char(*character))]
    BadZoneChar {
        address: String,
        character: char,
        /// 1-based, in characters of the typed address.
        position: usize,
    },
    #[error("the zone after \"[{address}%\" is {length} characters long: {ZONE_RULE}")]
    LongZone { address: String, length: usize },
}

/// The longest address text worth parsing: a 253-character host name,
/// brackets and a port. Longer text is refused before it is quoted anywhere.
pub const MAX_CHARS: usize = 300;

/// How many characters of an address a session file error quotes.
const EXCERPT_CHARS: usize = 48;

/// What an IPv6 zone id may be (IFNAMSIZ is 16 with the terminating NUL).
const ZONE_RULE: &str =
    "a zone is an interface name (at most 15 letters, digits, '_', '-' or '.') or its number";

/// The longest interface name (IFNAMSIZ - 1).
const ZONE_MAX: usize = 15;

/// A character as an error shows it: quoted when plainly visible, else its
/// code point (so an error never prints a control or bidi character).
fn show_char(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("'{c}'")
    } else {
        format!("U+{:04X}", c as u32)
    }
}

/// Checks the zone id of `[address%zone]`: interface-name characters only.
/// `offset` is the 0-based character position of the zone in the typed text.
fn check_zone(address: &str, zone: &str, offset: usize) -> Result<(), AddressError> {
    if zone.is_empty() {
        return Err(AddressError::EmptyZone {
            address: address.to_owned(),
        });
    }
    if let Some((i, c)) = zone
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(AddressError::BadZoneChar {
            address: address.to_owned(),
            character: c,
            position: offset + i + 1,
        });
    }
    // A decimal interface index has at most 10 digits, within the name limit.
    let length = zone.chars().count();
    if length > ZONE_MAX {
        return Err(AddressError::LongZone {
            address: address.to_owned(),
            length,
        });
    }
    Ok(())
}

/// The usual port of a URL scheme, for an example in an error.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        "ftp" => Some(21),
        "ssh" => Some(22),
        "telnet" => Some(23),
        "smtp" => Some(25),
        "mqtt" => Some(1883),
        "mqtts" => Some(8883),
        _ => None,
    }
}

impl HostPort {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// The IP address when the host is an IP literal (no resolution needed).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// The socket address when the host is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.ip().map(|ip| SocketAddr::new(ip, self.port))
    }

    /// True when binding this address listens on every interface of the
    /// machine, so others on the network can reach it: `0.0.0.0`, `[::]`
    /// (with or without a zone), the v4-mapped `[::ffff:0.0.0.0]`, and the
    /// numeric shorthands the system resolver reads as 0.0.0.0 (`0`, `0x0`,
    /// `0.0`). A host name is not resolved here; callers that bound a socket
    /// check its actual address with `HostPort::from(local)`.
    pub fn is_wildcard(&self) -> bool {
        let host = self.host.split('%').next().unwrap_or_default();
        match host.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => v4.is_unspecified(),
            Ok(IpAddr::V6(v6)) => {
                v6.is_unspecified() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_unspecified())
            }
            // inet_aton's forms: one to four parts, each a number; all zero here.
            Err(_) => {
                let parts: Vec<&str> = host.split('.').collect();
                parts.len() <= 4
                    && parts.iter().all(|p| {
                        let digits = p
                            .strip_prefix("0x")
                            .or_else(|| p.strip_prefix("0X"))
                            .unwrap_or(p);
                        (!digits.is_empty() || p.len() == 2) && digits.chars().all(|c| c == '0')
                    })
            }
        }
    }

    /// The same address, refusing port 0 (a remote to connect or send to).
    pub fn require_port(self) -> Result<Self, AddressError> {
        if self.port == 0 {
            Err(AddressError::PortZero)
        } else {
            Ok(self)
        }
    }
}

impl From<SocketAddr> for HostPort {
    fn from(a: SocketAddr) -> Self {
        Self::new(a.ip().to_string(), a.port())
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

fn parse_port(s: &str) -> Result<u16, AddressError> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
        return Err(AddressError::PortNotNumber(s.to_owned()));
    }
    s.parse::<u16>()
        .map_err(|_| AddressError::PortOutOfRange(s.to_owned()))
}

fn check_host_name(host: &str) -> Result<(), AddressError> {
    let looks_numeric = host.chars().all(|c| c.is_ascii_digit() || c == '.');
    if looks_numeric {
        return Err(AddressError::BadIpv4(host.to_owned()));
    }
    let ok = host.len() <= 253
        && host.split('.').enumerate().all(|(i, label)| {
            // A trailing dot (fully qualified name) leaves one empty last label.
            (label.is_empty() && i > 0 && host.ends_with('.') && i == host.split('.').count() - 1)
                || (!label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    && !label.starts_with('-')
                    && !label.ends_with('-'))
        });
    if ok {
        Ok(())
    } else {
        Err(AddressError::BadHostName(host.to_owned()))
    }
}

impl FromStr for HostPort {
    type Err = AddressError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let length = input.chars().count();
        if length > MAX_CHARS {
            return Err(AddressError::TooLong { length });
        }
        let s = input.trim();
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if let Some(rest) = s.strip_prefix('[') {
            let Some((inside, after)) = rest.split_once(']') else {
                return Err(AddressError::BadIpv6(rest.to_owned()));
            };
            // A zone (fe80::1%eth0) is allowed by the std parser as part of SocketAddrV6
            // only numerically, so check the address part alone, then the zone.
            let (addr_part, zone) = match inside.split_once('%') {
                Some((a, z)) => (a, Some(z)),
                None => (inside, None),
            };
            if addr_part.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(AddressError::BadIpv6(inside.to_owned()));
            }
            if let Some(zone) = zone {
                // '[' and '%' come before the zone.
                check_zone(addr_part, zone, addr_part.chars().count() + 2)?;
            }
            let Some(port) = after.strip_prefix(':') else {
                return Err(AddressError::MissingPort(format!("[{inside}]")));
            };
            return Ok(Self::new(inside, parse_port(port)?));
        }
        if let Some((scheme, rest)) = s.split_once("://") {
            let example = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let example = if example.contains(':') || example.is_empty() {
                example.to_owned()
            } else {
                format!("{example}:{}", default_port(scheme).unwrap_or(80))
            };
            return Err(AddressError::HasScheme(s.to_owned(), example));
        }
        if s.matches(':').count() > 1 {
            // Bare IPv6 (::1, fe80::1:80) wants brackets; anything else is a typo.
            let looks_v6 = s.parse::<std::net::Ipv6Addr>().is_ok()
                || s.rsplit_once(':')
                    .is_some_and(|(a, _)| a.parse::<std::net::Ipv6Addr>().is_ok());
            return Err(if looks_v6 {
                AddressError::BareIpv6(s.to_owned())
            } else {
                AddressError::ManyColons(s.to_owned())
            });
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AddressError::OnlyPort(s.to_owned()));
        }
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(AddressError::MissingPort(s.to_owned()));
        };
        if host.is_empty() {
            return Err(AddressError::MissingHost(port.to_owned()));
        }
        let port = parse_port(port)?;
        if host.parse::<std::net::Ipv4Addr>().is_err() {
            check_host_name(host)?;
        }
        Ok(Self::new(host, port))
    }
}

impl serde::Serialize for HostPort {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for HostPort {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(|e| {
            let shown = if s.chars().count() > EXCERPT_CHARS {
                format!("{}…", s.chars().take(EXCERPT_CHARS).collect::<String>())
            } else {
                s.clone()
            };
            serde::de::Error::custom(format!("address \"{shown}\": {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses() {
        assert_eq!(
            "127.0.0.1:7000".parse::<HostPort>().unwrap(),
            HostPort::new("127.0.0.1", 7000)
        );
        assert_eq!(
            "[::1]:80".parse::<HostPort>().unwrap(),
            HostPort::new("::1", 80)
        );
        assert_eq!(
            "localhost:0".parse::<HostPort>().unwrap(),
            HostPort::new("localhost", 0)
        );
        assert_eq!(
            "example.invalid:65535".parse::<HostPort>().unwrap().port,
            65535
        );
        assert_eq!(
            " host-1.lan:22 ".parse::<HostPort>().unwrap().host,
            "host-1.lan"
        );
        assert_eq!(HostPort::new("::1", 80).to_string(), "[::1]:80");
        assert_eq!(
            HostPort::new("::1", 80).socket_addr(),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(HostPort::new("localhost", 80).socket_addr(), None);
    }

    #[test]
    fn wildcards_are_recognised() {
        let wild = |s: &str| s.parse::<HostPort>().unwrap().is_wildcard();
        for w in [
            "0.0.0.0:7000",
            "[::]:7000",
            "[0:0:0:0:0:0:0:0]:0",
            "[::%eth0]:1",
            "[::ffff:0.0.0.0]:7",
        ] {
            assert!(wild(w), "{w} listens everywhere");
        }
        // The resolver's shorthands for 0.0.0.0, should a host ever hold one.
        for w in ["0", "0x0", "0.0", "00.0.0.000"] {
            assert!(HostPort::new(w, 80).is_wildcard(), "{w}");
        }
        for n in ["0.0.0.0.0", "0..0", "01", "0x1", ""] {
            assert!(!HostPort::new(n, 80).is_wildcard(), "{n}");
        }
        for n in [
            "127.0.0.1:7000",
            "[::1]:7000",
            "localhost:0",
            "10.0.0.1:80",
            "0.0.0.1:80",
            "[::ffff:127.0.0.1]:7",
            "example.org:80",
        ] {
            assert!(!wild(n), "{n} is not every interface");
        }
        let any: std::net::SocketAddr = "0.0.0.0:5".parse().unwrap();
        assert!(HostPort::from(any).is_wildcard());
        let any6: std::net::SocketAddr = "[::]:5".parse().unwrap();
        assert!(HostPort::from(any6).is_wildcard());
    }

    #[test]
    fn a_huge_address_is_quoted_as_a_short_excerpt() {
        // Before: a 100,000-character address in a session file (or pasted in
        // the window) came back whole in its error, twice.
        let huge = format!("{}.example:80", "a".repeat(100_000));
        let err = huge.parse::<HostPort>().unwrap_err();
        assert_eq!(err, AddressError::TooLong { length: 100_011 });
        assert_eq!(
            err.to_string(),
            "100011 characters is too long for host:port (at most 300)"
        );
        for text in [huge.clone(), format!("{}:80", "1.".repeat(50_000))] {
            let msg = ron::from_str::<HostPort>(&format!("\"{text}\""))
                .unwrap_err()
                .to_string();
            assert!(msg.len() < 200, "{} characters: {}", msg.len(), &msg[..200]);
        }
        // The longest real host name still parses.
        let label = "a".repeat(63);
        let longest = format!("{label}.{label}.{label}.{}:80", "b".repeat(61));
        assert!(longest.parse::<HostPort>().is_ok(), "{longest}");
    }

    #[test]
    fn bad_addresses_say_why() {
        let e = |s: &str| s.parse::<HostPort>().unwrap_err();
        assert_eq!(e(""), AddressError::Empty);
        assert_eq!(
            e("localhost"),
            AddressError::MissingPort("localhost".into())
        );
        assert_eq!(e(":80"), AddressError::MissingHost("80".into()));
        assert_eq!(e("h:x"), AddressError::PortNotNumber("x".into()));
        assert_eq!(e("h:70000"), AddressError::PortOutOfRange("70000".into()));
        assert_eq!(
            e("h:70000").to_string(),
            "port 70000 is out of range: ports go from 0 to 65535"
        );
        assert_eq!(e("h:-1"), AddressError::PortNotNumber("-1".into()));
        assert_eq!(e("::1:80"), AddressError::BareIpv6("::1:80".into()));
        assert_eq!(e("fe80::1"), AddressError::BareIpv6("fe80::1".into()));
        // Mistakes said as what they are, not as IPv6 or a made-up port.
        assert_eq!(e("7007"), AddressError::OnlyPort("7007".into()));
        assert_eq!(
            e("7007").to_string(),
            "\"7007\" is only a port: write host:port, for example 127.0.0.1:7007 (or [::1]:7007)"
        );
        assert_eq!(
            e("http://127.0.0.1:80/x"),
            AddressError::HasScheme("http://127.0.0.1:80/x".into(), "127.0.0.1:80".into())
        );
        assert_eq!(
            e("https://example.org"),
            AddressError::HasScheme("https://example.org".into(), "example.org:443".into())
        );
        assert_eq!(
            e("1.2.3.4:80:80"),
            AddressError::ManyColons("1.2.3.4:80:80".into())
        );
        assert_eq!(e("[::zz]:80"), AddressError::BadIpv6("::zz".into()));
        assert_eq!(e("[::1]"), AddressError::MissingPort("[::1]".into()));
        assert_eq!(e("256.1.1.1:80"), AddressError::BadIpv4("256.1.1.1".into()));
        assert_eq!(
            e("bad host:80"),
            AddressError::BadHostName("bad host".into())
        );
        assert_eq!(
            HostPort::new("h", 0).require_port().unwrap_err(),
            AddressError::PortZero
        );
    }

    #[test]
    fn zones_are_interface_names_or_numbers() {
        for good in [
            "eth0",
            "enp0s31f6",
            "wlan0.100",
            "br-lan_2",
            "3",
            "123456789012345",
        ] {
            let hp: HostPort = format!("[fe80::1%{good}]:80").parse().unwrap();
            assert_eq!(hp.host, format!("fe80::1%{good}"));
            assert_eq!(hp.to_string().parse::<HostPort>().unwrap(), hp);
        }
        let e = |s: &str| s.parse::<HostPort>().unwrap_err();
        // Issue 10: this zone ended the exported program's docstring.
        assert_eq!(
            e("[fe80::1%\"\"\"\nimport os]:80"),
            AddressError::BadZoneChar {
                address: "fe80::1".into(),
                character: '"',
                position: 10,
            }
        );
        assert_eq!(
            e("[fe80::1%\"\"\"\nimport os]:80").to_string(),
            "the zone after \"[fe80::1%\" has '\"' at position 10: a zone is an interface \
             name (at most 15 letters, digits, '_', '-' or '.') or its number"
        );
        assert_eq!(
            e("[fe80::1%eth\n0]:80"),
            AddressError::BadZoneChar {
                address: "fe80::1".into(),
                character: '\n',
                position: 13,
            }
        );
        assert!(
            e("[fe80::1%eth\n0]:80")
                .to_string()
                .contains("has U+000A at position 13")
        );
        assert!(
            e("[::1%a\u{202e}b]:1")
                .to_string()
                .contains("has U+202E at position 7")
        );
        assert!(matches!(
            e("[::1%a%b]:1"),
            AddressError::BadZoneChar {
                character: '%',
                position: 7,
                ..
            }
        ));
        assert!(matches!(
            e("[::1%a b]:1"),
            AddressError::BadZoneChar { character: ' ', .. }
        ));
        assert!(matches!(
            e("[::1%é]:1"),
            AddressError::BadZoneChar {
                character: 'é',
                position: 6,
                ..
            }
        ));
        assert_eq!(
            e("[fe80::1%]:80"),
            AddressError::EmptyZone {
                address: "fe80::1".into()
            }
        );
        assert_eq!(
            e("[fe80::1%abcdefghijklmnop]:80"),
            AddressError::LongZone {
                address: "fe80::1".into(),
                length: 16,
            }
        );
    }
}
