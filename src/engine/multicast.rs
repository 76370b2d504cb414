//! Multicast on a UDP socket, through socket2: the outgoing interface, TTL /
//! hop limit and loopback, and joining and leaving groups. Each call that
//! succeeds is said as a note that begins `setsockopt(OPTION)` (the log's
//! lifecycle rows; the lifecycle view draws the join from it); each failure
//! names the group and the interface, and says the operating system's reason
//! in words.

use std::net::{IpAddr, Ipv4Addr};

use socket2::SockRef;

use super::NetError;
use super::event::{Operation, classify};
use crate::model::multicast::{Interface, Multicast, membership_option};

fn error(kind_of: &std::io::Error, message: String) -> NetError {
    NetError::new(classify(kind_of), Operation::Configure, message)
}

fn plain(message: String) -> NetError {
    NetError::new(
        crate::model::ErrorKind::Other,
        Operation::Configure,
        message,
    )
}

/// The IPv4 address multicast uses on an IPv4 socket (0.0.0.0: the kernel's choice).
fn v4_interface(iface: Option<&Interface>) -> Result<Ipv4Addr, NetError> {
    match iface {
        None => Ok(Ipv4Addr::UNSPECIFIED),
        Some(Interface::Address(a)) => Ok(*a),
        Some(other) => Err(plain(format!(
            "interface {other}: an IPv4 socket chooses its multicast interface by one of the interface's addresses (127.0.0.1 for the loopback)"
        ))),
    }
}

/// The interface index multicast uses on an IPv6 socket (0: the kernel's choice).
fn v6_interface(iface: Option<&Interface>) -> Result<u32, NetError> {
    match iface {
        None => Ok(0),
        Some(Interface::Index(i)) => Ok(*i),
        Some(Interface::Name(name)) => index_of(name),
        Some(Interface::Address(a)) => Err(plain(format!(
            "interface {a}: an IPv6 socket chooses its multicast interface by index or name (1, lo), not by an IPv4 address"
        ))),
    }
}

/// An interface's index by its name.
#[cfg(unix)]
fn index_of(name: &str) -> Result<u32, NetError> {
    let not_found = || {
        plain(format!(
            "interface {name} not found: `ip link` lists this machine's interfaces"
        ))
    };
    let c = std::ffi::CString::new(name).map_err(|_| not_found())?;
    // SAFETY: a valid NUL-terminated string; the call only reads it.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(not_found()),
        i => Ok(i),
    }
}

#[cfg(not(unix))]
fn index_of(name: &str) -> Result<u32, NetError> {
    Err(plain(format!(
        "interface {name}: give the interface's index here (names are looked up on Unix only)"
    )))
}

/// How the interface reads in messages.
fn interface_text(iface: Option<&Interface>) -> String {
    match iface {
        None => "the interface the kernel chooses".to_owned(),
        Some(Interface::Address(a)) => format!("interface {a}"),
        Some(Interface::Index(i)) => format!("interface #{i}"),
        Some(Interface::Name(n)) => format!("interface {n}"),
    }
}

/// Sets the outgoing multicast options asked for; returns the lifecycle
/// notes to log, one per call.
pub(crate) fn configure(
    sock: &SockRef<'_>,
    m: &Multicast,
    v6: bool,
) -> Result<Vec<String>, NetError> {
    let mut notes = Vec::new();
    let failed = |option: &str, value: String, e: std::io::Error| {
        error(&e, format!("setsockopt({option}) {value}: {e}"))
    };
    if let Some(iface) = &m.iface {
        if v6 {
            let index = v6_interface(Some(iface))?;
            sock.set_multicast_if_v6(index)
                .map_err(|e| failed("IPV6_MULTICAST_IF", iface.to_string(), e))?;
            notes.push(format!(
                "setsockopt(IPV6_MULTICAST_IF) {iface}: multicast goes out on {}",
                interface_text(Some(iface))
            ));
        } else {
            let address = v4_interface(Some(iface))?;
            sock.set_multicast_if_v4(&address)
                .map_err(|e| failed("IP_MULTICAST_IF", address.to_string(), e))?;
            notes.push(format!(
                "setsockopt(IP_MULTICAST_IF) {address}: multicast goes out on interface {address}"
            ));
        }
    }
    if let Some(ttl) = m.ttl {
        let option = if v6 {
            "IPV6_MULTICAST_HOPS"
        } else {
            "IP_MULTICAST_TTL"
        };
        if v6 {
            sock.set_multicast_hops_v6(ttl)
        } else {
            sock.set_multicast_ttl_v4(ttl)
        }
        .map_err(|e| failed(option, ttl.to_string(), e))?;
        notes.push(format!(
            "setsockopt({option}) {ttl}: multicast crosses at most {ttl} router{}",
            if ttl == 1 { "" } else { "s" }
        ));
    }
    if let Some(on) = m.loopback {
        let option = if v6 {
            "IPV6_MULTICAST_LOOP"
        } else {
            "IP_MULTICAST_LOOP"
        };
        if v6 {
            sock.set_multicast_loop_v6(on)
        } else {
            sock.set_multicast_loop_v4(on)
        }
        .map_err(|e| failed(option, u8::from(on).to_string(), e))?;
        notes.push(format!(
            "setsockopt({option}) {}: {}",
            u8::from(on),
            if on {
                "this machine's members hear what we send"
            } else {
                "what we send is not delivered back to this machine"
            }
        ));
    }
    Ok(notes)
}

/// Joins (or leaves) `group` on the interface of `m`; returns the lifecycle note.
pub(crate) fn membership(
    sock: &SockRef<'_>,
    m: &Multicast,
    group: IpAddr,
    v6_socket: bool,
    join: bool,
) -> Result<String, NetError> {
    crate::model::multicast::check_group(group).map_err(plain)?;
    let option = membership_option(group, join);
    let verb = if join { "join" } else { "leave" };
    if group.is_ipv6() != v6_socket {
        return Err(plain(format!(
            "setsockopt({option}) group {group}: cannot {verb} an IPv{} group on an IPv{} socket; bind an address of the group's family",
            if group.is_ipv6() { 6 } else { 4 },
            if v6_socket { 6 } else { 4 },
        )));
    }
    let on = interface_text(m.iface.as_ref());
    let result = match group {
        IpAddr::V4(g) => {
            let iface = v4_interface(m.iface.as_ref())?;
            if join {
                sock.join_multicast_v4(&g, &iface)
            } else {
                sock.leave_multicast_v4(&g, &iface)
            }
        }
        IpAddr::V6(g) => {
            let index = v6_interface(m.iface.as_ref())?;
            if join {
                sock.join_multicast_v6(&g, index)
            } else {
                sock.leave_multicast_v6(&g, index)
            }
        }
    };
    match result {
        Ok(()) => Ok(format!(
            "setsockopt({option}) group {group} on {on}: {}",
            if join {
                "joined; datagrams to the group reach this socket"
            } else {
                "left"
            }
        )),
        Err(e) => Err(error(
            &e,
            format!(
                "setsockopt({option}) group {group} on {on}: {verb} failed: {e}: {}",
                why(&e, join)
            ),
        )),
    }
}

/// The usual reasons a join or leave fails, in words.
fn why(e: &std::io::Error, join: bool) -> &'static str {
    #[cfg(unix)]
    if let Some(code) = e.raw_os_error() {
        match code {
            libc::ENODEV => {
                return "no such interface, or it has no multicast (`ip link` shows MULTICAST)";
            }
            libc::EADDRINUSE if join => return "this socket has joined that group already",
            libc::EADDRNOTAVAIL if join => {
                return "no interface has that address, or the kernel has no route for the group: choose an interface";
            }
            libc::EADDRNOTAVAIL => return "this socket is not a member of that group",
            libc::ENOBUFS => {
                return "too many groups on this socket (Linux: net.ipv4.igmp_max_memberships)";
            }
            libc::EINVAL => return "the kernel refused the group or the interface",
            _ => {}
        }
    }
    let _ = join;
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "the operating system does not allow it",
        _ => "the operating system refused",
    }
}
