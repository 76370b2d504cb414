//! Client handshakes through a proxy: SOCKS5 (RFC 1928, username/password
//! RFC 1929) and HTTP CONNECT. After the handshake the stream is a tunnel to
//! the target, and TLS (when asked) runs inside it.
//!
//! Written here rather than taken from a crate: tokio-socks fits the stack,
//! but reports a reply code it does not know as "Unknown auth method" (the
//! code lost), and no kept crate does HTTP CONNECT on a bare tokio stream.
//! Every reply is read as hostile: fixed or bounded lengths, never more than
//! the handshake owns (bytes after it belong to the tunnel), and the caller
//! puts the whole handshake under the connect timeout.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{NetError, Operation};
use crate::model::proxy::{Proxy, ProxyKind};
use crate::model::{ErrorKind, HostPort, escape_controls};

/// The most bytes of an HTTP proxy's reply header read before giving up.
pub const MAX_HTTP_REPLY: usize = 16 * 1024;

fn fail(kind: ErrorKind, message: impl Into<String>) -> NetError {
    NetError::new(kind, Operation::Connect, message.into())
}

/// What a finished handshake tells: the proxy's own words, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    pub detail: String,
}

/// Asks the proxy, on `stream` (already connected to it), for a tunnel to `target`.
pub(crate) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    proxy: &Proxy,
    target: &HostPort,
) -> Result<Tunnel, NetError> {
    match proxy.kind {
        ProxyKind::Socks5 => socks5(stream, proxy, target).await,
        ProxyKind::HttpConnect => http_connect(stream, proxy, target).await,
    }
}

/// Reads exactly `buf.len()` bytes of the proxy's reply; an early end is the proxy's.
async fn read_reply<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    during: &str,
) -> Result<(), NetError> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(fail(
            ErrorKind::Other,
            format!("the proxy closed the connection during {during}"),
        )),
        Err(e) => Err(NetError::from_io(
            Operation::Receive,
            format!("from the proxy during {during}"),
            &e,
        )),
    }
}

async fn write_request<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    during: &str,
) -> Result<(), NetError> {
    let result = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    }
    .await;
    result.map_err(|e| NetError::from_io(Operation::Send, format!("to the proxy ({during})"), &e))
}

/// The words of RFC 1928 for a SOCKS5 reply code.
pub fn socks5_reply_text(code: u8) -> &'static str {
    match code {
        0x01 => "general SOCKS server failure",
        0x02 => "connection not allowed by the proxy's rules",
        0x03 => "network unreachable from the proxy",
        0x04 => "host unreachable from the proxy",
        0x05 => "connection refused by the target",
        0x06 => "TTL expired",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        _ => "a code RFC 1928 does not define",
    }
}

/// The SOCKS5 request for `target`: an IP literal as such, a host name for the proxy to resolve.
pub fn socks5_request(target: &HostPort) -> Result<Vec<u8>, NetError> {
    let mut req = vec![0x05, 0x01, 0x00];
    match target.ip() {
        Some(std::net::IpAddr::V4(ip)) => {
            req.push(0x01);
            req.extend_from_slice(&ip.octets());
        }
        Some(std::net::IpAddr::V6(ip)) => {
            req.push(0x04);
            req.extend_from_slice(&ip.octets());
        }
        None => {
            let name = target.host.as_bytes();
            // An IPv6 literal with a zone is not something a proxy can reach either.
            if name.is_empty() || name.len() > 255 || target.host.contains('%') {
                return Err(fail(
                    ErrorKind::Other,
                    format!(
                        "the host name \"{}\" cannot be sent to a SOCKS5 proxy (1 to 255 bytes, no zone)",
                        escape_controls(&target.host)
                    ),
                ));
            }
            req.push(0x03);
            req.push(name.len() as u8);
            req.extend_from_slice(name);
        }
    }
    req.extend_from_slice(&target.port.to_be_bytes());
    Ok(req)
}

async fn socks5<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    proxy: &Proxy,
    target: &HostPort,
) -> Result<Tunnel, NetError> {
    let request = socks5_request(target)?;
    let greeting: &[u8] = if proxy.credentials.is_some() {
        &[0x05, 0x02, 0x00, 0x02]
    } else {
        &[0x05, 0x01, 0x00]
    };
    write_request(stream, greeting, "the SOCKS5 greeting").await?;
    let mut choice = [0u8; 2];
    read_reply(stream, &mut choice, "the SOCKS5 greeting").await?;
    if choice[0] != 0x05 {
        return Err(not_socks5(choice[0]));
    }
    match (choice[1], &proxy.credentials) {
        (0x00, _) => {}
        (0x02, Some(c)) => {
            let mut auth = vec![0x01, c.user.len() as u8];
            auth.extend_from_slice(c.user.as_bytes());
            auth.push(c.password.len() as u8);
            auth.extend_from_slice(c.password.as_bytes());
            write_request(stream, &auth, "the SOCKS5 authentication").await?;
            let mut status = [0u8; 2];
            read_reply(stream, &mut status, "the SOCKS5 authentication").await?;
            if status[1] != 0x00 {
                return Err(fail(
                    ErrorKind::PermissionDenied,
                    format!(
                        "proxy refused the user name and password (SOCKS5 authentication status {:02x})",
                        status[1]
                    ),
                ));
            }
        }
        (0x02, None) => {
            return Err(fail(
                ErrorKind::PermissionDenied,
                "proxy asked for authentication (SOCKS5 username/password): give socks5://USER:PASS@HOST:PORT",
            ));
        }
        (0xFF, _) => {
            return Err(fail(
                ErrorKind::PermissionDenied,
                if proxy.credentials.is_some() {
                    "proxy asked for authentication: it accepts neither no authentication nor username/password"
                } else {
                    "proxy asked for authentication: it accepts no client without it; give socks5://USER:PASS@HOST:PORT"
                },
            ));
        }
        (method, _) => {
            return Err(fail(
                ErrorKind::Other,
                format!(
                    "proxy chose SOCKS5 authentication method {method:02x}, which was not offered"
                ),
            ));
        }
    }
    write_request(stream, &request, "the SOCKS5 connect request").await?;
    let mut head = [0u8; 4];
    read_reply(stream, &mut head, "the SOCKS5 connect reply").await?;
    if head[0] != 0x05 {
        return Err(not_socks5(head[0]));
    }
    if head[1] != 0x00 {
        // The message says it all (a kind's label would say "connection refused" twice).
        return Err(fail(
            ErrorKind::Other,
            format!(
                "proxy refused: SOCKS5 reply {:02x} {} (asked for {target})",
                head[1],
                socks5_reply_text(head[1])
            ),
        ));
    }
    // The address the proxy connected from: read whole, so the tunnel starts clean.
    let bound = match head[3] {
        0x01 => {
            let mut b = [0u8; 6];
            read_reply(stream, &mut b, "the SOCKS5 connect reply").await?;
            let ip = std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            std::net::SocketAddr::from((ip, u16::from_be_bytes([b[4], b[5]]))).to_string()
        }
        0x04 => {
            let mut b = [0u8; 18];
            read_reply(stream, &mut b, "the SOCKS5 connect reply").await?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&b[..16]);
            let ip = std::net::Ipv6Addr::from(ip);
            std::net::SocketAddr::from((ip, u16::from_be_bytes([b[16], b[17]]))).to_string()
        }
        0x03 => {
            let mut len = [0u8; 1];
            read_reply(stream, &mut len, "the SOCKS5 connect reply").await?;
            let mut b = vec![0u8; len[0] as usize + 2];
            read_reply(stream, &mut b, "the SOCKS5 connect reply").await?;
            let (name, port) = b.split_at(len[0] as usize);
            format!(
                "{}:{}",
                crate::model::display::escape_bytes_lossy(name),
                u16::from_be_bytes([port[0], port[1]])
            )
        }
        other => {
            return Err(fail(
                ErrorKind::Other,
                format!(
                    "proxy answered with SOCKS5 address type {other:02x}, which RFC 1928 does not define"
                ),
            ));
        }
    };
    Ok(Tunnel {
        detail: format!("SOCKS5, the proxy's side {bound}"),
    })
}

fn not_socks5(version: u8) -> NetError {
    let hint = if version == b'H' {
        " (it speaks HTTP: write http://)"
    } else {
        ""
    };
    fail(
        ErrorKind::Other,
        format!("the proxy does not speak SOCKS5: its reply begins with byte {version:02x}{hint}"),
    )
}

/// The CONNECT request for `target`, with basic authentication when given.
pub fn connect_request(proxy: &Proxy, target: &HostPort) -> String {
    use base64::Engine as _;
    let authority = target.to_string();
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(c) = &proxy.credentials {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.user, c.password));
        req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    req
}

async fn http_connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    proxy: &Proxy,
    target: &HostPort,
) -> Result<Tunnel, NetError> {
    write_request(
        stream,
        connect_request(proxy, target).as_bytes(),
        "the CONNECT request",
    )
    .await?;
    let header = read_http_header(stream).await?;
    let status_line = header
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default()
        .strip_suffix(b"\r")
        .unwrap_or_default();
    let shown =
        crate::model::display::escape_bytes_lossy(&status_line[..status_line.len().min(200)]);
    let status = parse_status(status_line).ok_or_else(|| {
        fail(
            ErrorKind::Other,
            format!("the proxy does not speak HTTP: its reply begins \"{shown}\""),
        )
    })?;
    match status {
        200..=299 => Ok(Tunnel {
            detail: format!("HTTP CONNECT, \"{shown}\""),
        }),
        407 => Err(fail(
            ErrorKind::PermissionDenied,
            if proxy.credentials.is_some() {
                format!(
                    "proxy asked for authentication again: the user name or password was refused (\"{shown}\")"
                )
            } else {
                format!(
                    "proxy asked for authentication (\"{shown}\"): give http://USER:PASS@HOST:PORT"
                )
            },
        )),
        _ => Err(fail(
            ErrorKind::Other,
            format!("proxy refused: \"{shown}\""),
        )),
    }
}

/// The status code of `HTTP/1.x NNN reason`.
fn parse_status(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (&minor, rest) = rest.split_first()?;
    if !minor.is_ascii_digit() {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// Reads the reply header up to and including its empty line, one byte at a
/// time so nothing of the tunnel behind it is taken; at most [`MAX_HTTP_REPLY`] bytes.
async fn read_http_header<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, NetError> {
    let mut header = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    loop {
        if header.len() >= MAX_HTTP_REPLY {
            let first = header.split(|&b| b == b'\n').next().unwrap_or_default();
            return Err(fail(
                ErrorKind::Other,
                format!(
                    "the proxy's reply header is longer than {MAX_HTTP_REPLY} bytes; it begins \"{}\"",
                    crate::model::display::escape_bytes_lossy(&first[..first.len().min(80)])
                ),
            ));
        }
        read_reply(stream, &mut byte, "the CONNECT reply").await?;
        header.push(byte[0]);
        if header.ends_with(b"\r\n\r\n") || header.ends_with(b"\n\n") {
            return Ok(header);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_target_as_asked() {
        let v4 = socks5_request(&HostPort::new("10.1.2.3", 80)).unwrap();
        assert_eq!(v4, [5, 1, 0, 1, 10, 1, 2, 3, 0, 80]);
        let v6 = socks5_request(&HostPort::new("::1", 443)).unwrap();
        assert_eq!(v6.len(), 22);
        assert_eq!(v6[3], 4);
        let name = socks5_request(&HostPort::new("example.com", 7)).unwrap();
        assert_eq!(&name[3..5], &[3, 11]);
        assert_eq!(&name[5..16], b"example.com");
        assert!(socks5_request(&HostPort::new("a".repeat(256), 1)).is_err());

        let p = Proxy::parse("http://u:p@127.0.0.1:3128").unwrap();
        assert_eq!(
            connect_request(&p, &HostPort::new("::1", 443)),
            "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n"
        );
    }

    #[test]
    fn status_lines_are_read_strictly() {
        assert_eq!(
            parse_status(b"HTTP/1.1 200 Connection established"),
            Some(200)
        );
        assert_eq!(parse_status(b"HTTP/1.0 407"), Some(407));
        for bad in [
            &b"HTTP/2 200"[..],
            b"HTTP/1.1 20",
            b"HTTP/1.1 2000",
            b"SSH-2.0",
            b"",
        ] {
            assert_eq!(parse_status(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn hostile_replies_end_with_a_clear_error() {
        let target = HostPort::new("127.0.0.1", 9);
        let socks = Proxy::parse("socks5://127.0.0.1:1").unwrap();
        for (reply, want) in [
            (&b"HTTP/1.1 400"[..], "does not speak SOCKS5"),
            (b"\x05", "closed the connection"),
            (b"\x05\x02", "proxy asked for authentication"),
            (b"\x05\xff", "proxy asked for authentication"),
            (b"\x05\x01", "not offered"),
            (
                b"\x05\x00\x05\x05\x00\x01",
                "SOCKS5 reply 05 connection refused by the target",
            ),
            (b"\x05\x00\x05\x00\x00\x09", "address type 09"),
            (b"\x05\x00\x05\x00\x00\x03\xff", "closed the connection"),
        ] {
            let (mut ours, mut theirs) = tokio::io::duplex(64 * 1024);
            theirs.write_all(reply).await.unwrap();
            // The proxy says no more (but still takes what we write).
            theirs.shutdown().await.unwrap();
            let e = handshake(&mut ours, &socks, &target).await.unwrap_err();
            drop(theirs);
            assert!(e.to_string().contains(want), "{reply:?}: {e}");
        }
        let http = Proxy::parse("http://127.0.0.1:1").unwrap();
        let (mut ours, mut theirs) = tokio::io::duplex(64 * 1024);
        theirs
            .write_all(b"HTTP/1.1 403 Forbidden\x1b[2J\r\n\r\n")
            .await
            .unwrap();
        let e = handshake(&mut ours, &http, &target).await.unwrap_err();
        assert!(
            e.to_string()
                .contains(r#"proxy refused: "HTTP/1.1 403 Forbidden\x1b[2J""#),
            "{e}"
        );
        // Bytes after the header belong to the tunnel.
        let (mut ours, mut theirs) = tokio::io::duplex(64 * 1024);
        theirs
            .write_all(b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nhello")
            .await
            .unwrap();
        handshake(&mut ours, &http, &target).await.unwrap();
        let mut rest = [0u8; 5];
        ours.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"hello");
    }
}
