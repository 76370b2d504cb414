//! The operating system's view of TCP connections: on Linux, the state of each
//! connection as the kernel keeps it (`/proc/net/tcp` and `/proc/net/tcp6`), so
//! a learner sees ESTABLISHED, FIN_WAIT2, TIME_WAIT … for real.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::model::lifecycle::TcpState;

/// One TCP socket of this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OsConnection {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
}

/// Every TCP socket of this machine, where the system says (Linux); empty elsewhere.
pub fn connections() -> Vec<OsConnection> {
    let mut all = Vec::new();
    for (path, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        if let Ok(text) = std::fs::read_to_string(path) {
            all.extend(parse(&text, v6));
        }
    }
    all
}

/// The state of the connection `local`–`remote`, or of a listener on `local`.
pub fn state_of(
    all: &[OsConnection],
    local: SocketAddr,
    remote: Option<SocketAddr>,
) -> Option<TcpState> {
    let same = |a: &SocketAddr, b: &SocketAddr| {
        a.port() == b.port() && canonical(a.ip()) == canonical(b.ip())
    };
    all.iter()
        .find(|c| {
            same(&c.local, &local)
                && match remote {
                    Some(r) => same(&c.remote, &r),
                    None => c.state == TcpState::Listen,
                }
        })
        .map(|c| c.state)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Parses `/proc/net/tcp` (or `tcp6` when `v6`): addresses are hex, in the
/// machine's byte order per 32-bit word, ports big-endian hex.
pub fn parse(text: &str, v6: bool) -> Vec<OsConnection> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = address(fields.get(1)?, v6)?;
            let remote = address(fields.get(2)?, v6)?;
            let state = TcpState::from_code(u8::from_str_radix(fields.get(3)?, 16).ok()?)?;
            Some(OsConnection {
                local,
                remote,
                state,
            })
        })
        .collect()
}

fn address(field: &str, v6: bool) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).ok())
        .collect::<Option<_>>()?;
    let ip = if v6 {
        if words.len() != 4 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, w) in words.iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::from(words.first()?.to_ne_bytes()))
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_table() {
        // 127.0.0.1:7007 listening, and a connection from 127.0.0.1:50000 in TIME_WAIT.
        let local = u32::from_ne_bytes([127, 0, 0, 1]);
        let text = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             \x20  0: {local:08X}:1B5F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n\
             \x20  1: {local:08X}:C350 {local:08X}:1B5F 06 00000000:00000000 00:00000000 00000000     0        0 0\n"
        );
        let all = parse(&text, false);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].local, "127.0.0.1:7007".parse().unwrap());
        assert_eq!(all[0].state, TcpState::Listen);
        assert_eq!(
            state_of(
                &all,
                "127.0.0.1:50000".parse().unwrap(),
                Some("127.0.0.1:7007".parse().unwrap())
            ),
            Some(TcpState::TimeWait)
        );
        assert_eq!(
            state_of(&all, "127.0.0.1:7007".parse().unwrap(), None),
            Some(TcpState::Listen)
        );
    }

    #[test]
    fn sees_a_real_listener_on_linux() {
        if !std::path::Path::new("/proc/net/tcp").exists() {
            eprintln!("skipped: no /proc/net/tcp here");
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        assert_eq!(
            state_of(&connections(), local, None),
            Some(TcpState::Listen)
        );
        let client = std::net::TcpStream::connect(local).unwrap();
        let from = client.local_addr().unwrap();
        assert_eq!(
            state_of(&connections(), from, Some(local)),
            Some(TcpState::Established)
        );
    }
}
