//! Multicast settings of a UDP endpoint: the groups it joins when it starts,
//! the interface it joins them on and sends from, and how far and whether
//! its own multicast comes back (TTL / hop limit, loopback).
//!
//! Groups and interfaces are checked when typed or read from a file, so a
//! unicast address or a broken interface name is said with its place, never
//! found out by the kernel.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// The multicast part of a UDP endpoint's options. All absent by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Multicast {
    /// Groups joined when the endpoint starts (IP_ADD_MEMBERSHIP /
    /// IPV6_JOIN_GROUP), in order; the window joins and leaves more while it runs.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "groups")]
    pub groups: Vec<IpAddr>,
    /// The interface groups are joined on and multicast is sent from
    /// (IP_MULTICAST_IF / IPV6_MULTICAST_IF); absent: the kernel's choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iface: Option<Interface>,
    /// IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS: how many routers outgoing
    /// multicast may cross (the kernel's default is 1: this network only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP: whether this machine's own
    /// members hear what it sends (the kernel's default is on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loopback: Option<bool>,
}

impl Multicast {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The largest multicast TTL (an 8-bit field; IPv6 hop limits alike).
pub const MAX_TTL: u32 = 255;

/// A network interface as multicast options name it: IPv4 by one of its
/// addresses, IPv6 by its index or name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Interface {
    /// An IPv4 address of the interface (127.0.0.1 is the loopback's).
    Address(Ipv4Addr),
    /// An interface index, as `ip link` numbers them (1 is usually lo).
    Index(u32),
    /// An interface name (`lo`, `eth0`), looked up when the endpoint starts.
    Name(String),
}

/// The longest interface name (Linux's IFNAMSIZ less its terminating zero).
const MAX_NAME: usize = 15;

impl Interface {
    /// `127.0.0.1`, `1` or `lo`.
    pub fn parse(text: &str) -> Result<Interface, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("the interface is empty: give an IPv4 address (127.0.0.1), an index (1) or a name (lo)".into());
        }
        if let Ok(v4) = t.parse::<Ipv4Addr>() {
            return Ok(Interface::Address(v4));
        }
        if t.parse::<std::net::Ipv6Addr>().is_ok() {
            return Err(format!(
                "interface \"{}\": an IPv6 interface is chosen by its index or name (1, lo), not an address",
                super::escape_controls(t)
            ));
        }
        if t.bytes().all(|b| b.is_ascii_digit()) {
            return match t.parse::<u32>() {
                Ok(0) | Err(_) => Err(format!(
                    "interface index {t}: indexes start at 1 (ip link lists them)"
                )),
                Ok(n) => Ok(Interface::Index(n)),
            };
        }
        let ok = t.len() <= MAX_NAME
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
        if !ok {
            let shown: String = t.chars().take(20).collect();
            return Err(format!(
                "interface \"{}\": not an IPv4 address, an index or an interface name (letters, digits, - _ . @, at most {MAX_NAME})",
                super::escape_controls(&shown)
            ));
        }
        Ok(Interface::Name(t.to_owned()))
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interface::Address(a) => write!(f, "{a}"),
            Interface::Index(i) => write!(f, "{i}"),
            Interface::Name(n) => f.write_str(n),
        }
    }
}

impl std::str::FromStr for Interface {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Interface::parse(s)
    }
}

impl serde::Serialize for Interface {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Interface {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Interface::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A multicast group as typed: an IPv4 address in 224.0.0.0/4 or an IPv6
/// address in ff00::/8 (brackets allowed).
pub fn parse_group(text: &str) -> Result<IpAddr, String> {
    let t = text.trim();
    let bare = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t);
    let shown = || super::escape_controls(&t.chars().take(48).collect::<String>()).into_owned();
    let ip: IpAddr = bare.parse().map_err(|_| {
        format!(
            "group \"{}\": not an IP address; a group is 224.0.0.0 to 239.255.255.255 (IPv4) or ff00::/8 (IPv6)",
            shown()
        )
    })?;
    check_group(ip)?;
    Ok(ip)
}

/// Refuses an address that is not a multicast group, naming it and the ranges.
pub fn check_group(ip: IpAddr) -> Result<(), String> {
    if ip.is_multicast() {
        Ok(())
    } else {
        Err(format!(
            "group {ip}: not a multicast address; a group is 224.0.0.0 to 239.255.255.255 (IPv4) or ff00::/8 (IPv6)"
        ))
    }
}

/// The groups of a file, each checked to be multicast.
fn groups<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpAddr>, D::Error> {
    let list = <Vec<String> as serde::Deserialize>::deserialize(d)?;
    list.iter()
        .map(|g| parse_group(g).map_err(serde::de::Error::custom))
        .collect()
}

/// The socket option that joins or leaves a group of this family, as the
/// lifecycle rows and the Python export name it.
pub fn membership_option(group: IpAddr, join: bool) -> &'static str {
    match (group.is_ipv4(), join) {
        (true, true) => "IP_ADD_MEMBERSHIP",
        (true, false) => "IP_DROP_MEMBERSHIP",
        (false, true) => "IPV6_JOIN_GROUP",
        (false, false) => "IPV6_LEAVE_GROUP",
    }
}

/// How the engine's note of a joined or left group begins: the log shows it
/// as a lifecycle row, and the lifecycle view draws the step from it.
pub const SETSOCKOPT_NOTE: &str = "setsockopt(";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_must_be_multicast() {
        assert_eq!(
            parse_group("239.1.2.3"),
            Ok("239.1.2.3".parse::<IpAddr>().unwrap())
        );
        assert_eq!(
            parse_group("[ff15::1]"),
            Ok("ff15::1".parse::<IpAddr>().unwrap())
        );
        let e = parse_group("192.168.1.1").unwrap_err();
        assert!(
            e.contains("group 192.168.1.1: not a multicast address"),
            "{e}"
        );
        let e = parse_group("hello\n").unwrap_err();
        assert!(e.contains("not an IP address") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn interfaces_by_address_index_or_name() {
        assert_eq!(
            Interface::parse("127.0.0.1"),
            Ok(Interface::Address(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(Interface::parse("1"), Ok(Interface::Index(1)));
        assert_eq!(Interface::parse("lo"), Ok(Interface::Name("lo".into())));
        assert!(Interface::parse("0").unwrap_err().contains("start at 1"));
        assert!(
            Interface::parse("::1")
                .unwrap_err()
                .contains("index or name")
        );
        assert!(Interface::parse("a b").is_err());
        assert!(Interface::parse("").is_err());
        assert!(Interface::parse(&"x".repeat(16)).is_err());
    }

    #[test]
    fn a_file_keeps_groups_as_text_and_checks_them() {
        let m = Multicast {
            groups: vec!["239.1.2.3".parse().unwrap(), "ff15::7".parse().unwrap()],
            iface: Some(Interface::Name("lo".into())),
            ttl: Some(4),
            loopback: Some(false),
        };
        let text = ron::to_string(&m).unwrap();
        assert_eq!(
            text,
            "(groups:[\"239.1.2.3\",\"ff15::7\"],iface:Some(\"lo\"),ttl:Some(4),loopback:Some(false))"
        );
        assert_eq!(ron::from_str::<Multicast>(&text).unwrap(), m);
        let e = ron::from_str::<Multicast>("(groups:[\"10.0.0.1\"])")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a multicast address"), "{e}");
        let e = ron::from_str::<Multicast>("(iface:Some(\"0\"))")
            .unwrap_err()
            .to_string();
        assert!(e.contains("start at 1"), "{e}");
    }
}
