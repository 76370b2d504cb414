//! A session's log as a pcapng capture that Wireshark and tshark dissect:
//! each conversation of the log gets synthetic Ethernet, IPv4 or IPv6, and
//! TCP or UDP headers around its recorded payloads, at the recorded times.
//!
//! TCP conversations open with SYN, SYN-ACK, ACK; payloads are cut into
//! segments of at most [`MSS`] bytes with sequence and acknowledgment numbers
//! that add up; a recorded FIN (either side's, or our close) or reset ends
//! them as recorded. Every packet's comment names the endpoints it goes
//! between. The file is written packet by packet as the log is read, so a log
//! of any size (spilled to disk) never sits in memory as a capture.
//!
//! Addresses are the recorded ones (the peer's address, the local address of
//! the connection, where the endpoint listened or was bound). Where a side is
//! not known, a documentation address stands in (192.0.2.0/24, RFC 5737;
//! 2001:db8::/32, RFC 3849) with a port from the dynamic range, and the
//! conversation's first packet says so in its comment.
//!
//! When both ends of a conversation are endpoints of the session (a client
//! and a server recorded together), the log holds it twice; it is written
//! once, named after both endpoints.
//!
//! Unix-domain sockets have no IP addresses, and pcapng no link type that
//! Wireshark dissects for them; their bytes are worth seeing all the same,
//! so a Unix stream conversation is written as TCP and a Unix datagram
//! exchange as UDP, between made-up documentation addresses. The capture
//! says so where a reader looks: the section's comment lists which made-up
//! addresses stand for which socket path (the first [`UNIX_LISTED`]), the
//! first packet of each such conversation says it again, and
//! [`unix_note`] is the line a command prints on stderr.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use etherparse::{IpHeaders, Ipv4Extensions, Ipv4Header, PacketBuilder, TcpOptionElement};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::{DataLink, Endianness};

use crate::model::Session;
use crate::model::log::{Entry, EntryKind, ErrorKind, TrafficLog};

/// The largest TCP payload of one segment: Ethernet's 1500-byte MTU less
/// 40 bytes of IPv4 and TCP headers, what real stacks send on such links.
pub const MSS: usize = 1460;
/// The largest UDP payload IPv4's 16-bit total length leaves room for.
const MAX_UDP_V4: usize = 65_535 - 20 - 8;
/// The largest UDP payload IPv6's 16-bit payload length leaves room for.
const MAX_UDP_V6: usize = 65_535 - 8;
/// How many Unix-domain conversations the section's comment lists by name.
pub const UNIX_LISTED: usize = 16;
/// How much of an endpoint name (or address text) goes into a comment.
const NAME_LIMIT: usize = 120;
/// The receive window every segment announces.
const WINDOW: u16 = 65_535;
/// Locally administered MAC addresses for the two sides of every conversation.
const MAC_CLIENT: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC_SERVER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// The interface's time resolution option: pcap-file writes an Enhanced
/// Packet Block's timestamp in nanoseconds, whatever the interface says, so
/// the interface must say nanoseconds (`if_tsresol` 9) or readers misplace
/// every packet in time.
const NANOSECONDS: u8 = 9;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Transport {
    Tcp,
    Udp,
}

/// One conversation: one peer record of the log, seen by its endpoint.
#[derive(Debug)]
struct Flow {
    transport: Transport,
    /// The address of the log's endpoint in this conversation.
    ours: SocketAddr,
    /// The other side's address.
    theirs: SocketAddr,
    /// The log's peer record of this conversation. Names are looked up in
    /// the log when a comment is made, so a flow stays small (a log may hold
    /// a million UDP peers).
    peer: u32,
    /// The other end's endpoint, when the session recorded both ends.
    partner: Option<u32>,
    /// True when the log's endpoint opened the connection (a TCP client).
    we_connect: bool,
    /// Set when another endpoint's flow already shows this conversation:
    /// this one's rows are the same traffic seen from the other end.
    mirror: bool,
    /// Which address was made up (the first packet says so; such a flow
    /// matches no other).
    made_up_ours: bool,
    made_up_theirs: bool,
    /// The endpoint speaks TLS: its payloads are the decrypted bytes.
    tls: bool,
    /// A Unix-domain socket's conversation: both addresses are made up.
    unix: bool,
    /// Whether the first packet is still to be written.
    first: bool,
    tcp: TcpState,
}

/// Sequence numbers and the FINs seen, per TCP conversation.
#[derive(Debug, Default)]
struct TcpState {
    /// The handshake was written and no close ended the connection since.
    open: bool,
    /// Connections of this peer so far (a new one gets new sequence numbers).
    opened: u32,
    our_next: u32,
    their_next: u32,
    our_fin: bool,
    their_fin: bool,
}

/// What a flow looks like before its addresses are settled.
#[derive(Default)]
struct Seen {
    first_row: Option<usize>,
    local: Option<SocketAddr>,
    /// Whether the endpoint connected (a connected row) or accepted, if a row said.
    we_connect: Option<bool>,
    tcp_events: bool,
}

/// Writes `log` of `session` as pcapng to `out`, packet by packet.
pub fn write_pcapng(session: &Session, out: &mut dyn Write) -> io::Result<()> {
    let log = &session.log;
    let mut flows = plan(session);
    let unix = unix_sockets(session);
    let mut options = vec![SectionHeaderOption::UserApplication(Cow::Borrowed(
        concat!("sockbench ", env!("CARGO_PKG_VERSION")),
    ))];
    if let Some(text) = unix_section_comment(log, &flows, &unix) {
        options.push(SectionHeaderOption::Comment(Cow::Owned(text)));
    }
    let section = SectionHeaderBlock {
        endianness: Endianness::Little,
        options,
        ..Default::default()
    };
    let mut writer = PcapNgWriter::with_section_header(out, section).map_err(pcap_error)?;
    writer
        .write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Borrowed("sockbench")),
                InterfaceDescriptionOption::IfDescription(Cow::Borrowed(
                    "a sockbench session's log: link, IP and transport headers are synthetic, \
                     the payloads and times are the recording's",
                )),
                InterfaceDescriptionOption::IfTsResol(NANOSECONDS),
            ],
        })
        .map_err(pcap_error)?;
    let mut packets = Packets {
        writer,
        log,
        unix: &unix,
        buffer: Vec::with_capacity(MSS + 128),
        ident: 0,
    };
    for e in log.entries() {
        let Some(flow) = flows.get_mut(e.peer as usize).and_then(Option::as_mut) else {
            continue;
        };
        if flow.mirror {
            continue;
        }
        let at = Duration::from_micros(u64::try_from(e.at_micros).unwrap_or(0));
        match flow.transport {
            Transport::Udp => {
                if let Some(dir) = e.kind.direction() {
                    let from_us = dir == crate::model::Direction::Sent;
                    packets.datagram(flow, from_us, e, at)?;
                }
            }
            Transport::Tcp => packets.tcp_row(flow, e, at)?,
        }
    }
    packets.writer.into_inner().flush()
}

fn pcap_error(e: pcap_file::PcapError) -> io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// An endpoint name or address for a comment: controls escaped, bounded.
fn comment_name(text: &str) -> String {
    let text = crate::model::escape_controls(text);
    if text.chars().count() <= NAME_LIMIT {
        return text.into_owned();
    }
    let mut short: String = text.chars().take(NAME_LIMIT).collect();
    short.push('…');
    short
}

/// The address in a `Connected` ("from ADDR"), `Accepted` ("on ADDR"),
/// `Listening` or `Bound` ("ADDR") detail line.
fn detail_address(kind: EntryKind, detail: &[u8]) -> Option<SocketAddr> {
    let detail = std::str::from_utf8(detail).ok()?.trim();
    let text = match kind {
        EntryKind::Connected => detail.strip_prefix("from ")?,
        EntryKind::Accepted => detail.strip_prefix("on ")?,
        EntryKind::Listening | EntryKind::Bound => detail,
        _ => return None,
    };
    text.trim().parse().ok()
}

/// A host:port of a session's settings, when its host is an IP literal.
fn literal(hp: Option<&crate::model::HostPort>) -> Option<SocketAddr> {
    let hp = hp?;
    let ip: IpAddr = hp.host.trim_matches(['[', ']']).parse().ok()?;
    Some(SocketAddr::new(ip, hp.port))
}

/// One flow per peer record of the log (`None` for a peer no row names),
/// with addresses settled and the second view of a conversation between
/// two endpoints of the session marked as a mirror.
fn plan(session: &Session) -> Vec<Option<Flow>> {
    let log = &session.log;
    let mut seen: Vec<Seen> = (0..log.peers().len()).map(|_| Seen::default()).collect();
    // Where each endpoint listens or is bound (the first such row).
    let mut endpoint_local: HashMap<u32, SocketAddr> = HashMap::new();
    for (row, e) in log.entries().iter().enumerate() {
        if matches!(e.kind, EntryKind::Listening | EntryKind::Bound) {
            if let Some(a) = detail_address(e.kind, log.bytes_of(e)) {
                endpoint_local.entry(e.endpoint).or_insert(a);
            }
            continue;
        }
        let Some(s) = seen.get_mut(e.peer as usize) else {
            continue;
        };
        s.first_row.get_or_insert(row);
        match e.kind {
            EntryKind::Connected | EntryKind::Accepted => {
                s.we_connect = Some(e.kind == EntryKind::Connected);
                s.tcp_events = true;
                if s.local.is_none() {
                    s.local = detail_address(e.kind, log.bytes_of(e));
                }
            }
            EntryKind::PeerClosed | EntryKind::HalfClosed | EntryKind::Reset => {
                s.tcp_events = true;
            }
            _ => {}
        }
    }

    let mut flows: Vec<Option<Flow>> = Vec::with_capacity(seen.len());
    for (i, (record, s)) in log.peers().iter().zip(&seen).enumerate() {
        if s.first_row.is_none() {
            flows.push(None);
            continue;
        }
        let name = log
            .endpoints()
            .get(record.endpoint as usize)
            .map_or("?", String::as_str);
        let spec = session.endpoint(name);
        let transport = match spec.map(|s| s.kind.tag()) {
            Some(tag) if tag.is_tcp() => Transport::Tcp,
            Some(_) => Transport::Udp,
            None if s.tcp_events => Transport::Tcp,
            None => Transport::Udp,
        };
        // A Unix socket's names are paths: no IP address of it is real.
        let unix = spec.is_some_and(|s| s.kind.tag().is_unix());
        let local = s
            .local
            .or_else(|| endpoint_local.get(&record.endpoint).copied())
            .or_else(|| literal(spec.and_then(|s| s.kind.local())))
            .filter(|_| !unix);
        let remote = record
            .remote
            .trim()
            .parse::<SocketAddr>()
            .ok()
            .or_else(|| literal(spec.and_then(|s| s.kind.remote())))
            .filter(|_| !unix);
        // Without a connected or accepted row (a hand-written log), the
        // endpoint's kind says who connected.
        let we_connect = s
            .we_connect
            .unwrap_or_else(|| spec.is_some_and(|s| s.kind.tag().is_client()));
        let settled = settle(local, remote, we_connect, i);
        flows.push(Some(Flow {
            transport,
            ours: settled.ours,
            theirs: settled.theirs,
            peer: i as u32,
            partner: None,
            we_connect,
            mirror: false,
            made_up_ours: settled.made_up_ours,
            made_up_theirs: settled.made_up_theirs,
            tls: spec.is_some_and(|s| s.kind.tag().is_tls()),
            unix,
            first: true,
            tcp: TcpState::default(),
        }));
    }
    pair_mirrors(log, &seen, &mut flows);
    flows
}

/// Marks the later of two flows that are one conversation seen by two
/// endpoints of the session (each one's address is the other's peer), and
/// names the kept one after both endpoints.
fn pair_mirrors(log: &TrafficLog, seen: &[Seen], flows: &mut [Option<Flow>]) {
    let mut order: Vec<usize> = (0..flows.len()).filter(|&i| flows[i].is_some()).collect();
    order.sort_by_key(|&i| seen[i].first_row);
    let mut open: HashMap<(Transport, SocketAddr, SocketAddr), Vec<usize>> = HashMap::new();
    for i in order {
        let Some(flow) = flows[i].as_ref() else {
            continue;
        };
        if flow.made_up_ours || flow.made_up_theirs {
            // A made-up address matches nothing real.
            continue;
        }
        let endpoint = log.peers()[i].endpoint;
        let mirror_key = (flow.transport, flow.theirs, flow.ours);
        let found = open.get_mut(&mirror_key).and_then(|list| {
            let at = list
                .iter()
                .position(|&j| log.peers()[j].endpoint != endpoint)?;
            Some(list.remove(at))
        });
        match found {
            Some(j) => {
                if let Some(f) = flows[i].as_mut() {
                    f.mirror = true;
                }
                if let Some(kept) = flows[j].as_mut() {
                    kept.partner = Some(endpoint);
                }
            }
            None => open
                .entry((flow.transport, flow.ours, flow.theirs))
                .or_default()
                .push(i),
        }
    }
}

/// A flow's two addresses, and which of them are made up.
struct Settled {
    ours: SocketAddr,
    theirs: SocketAddr,
    made_up_ours: bool,
    made_up_theirs: bool,
}

/// Settles a flow's two addresses: the recorded ones where known, one
/// address family for both, and documentation addresses where a side is unknown.
fn settle(
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    we_connect: bool,
    index: usize,
) -> Settled {
    let v6 = local.is_some_and(|a| a.is_ipv6()) || remote.is_some_and(|a| a.is_ipv6());
    let family = |a: SocketAddr| -> SocketAddr {
        match (v6, a.ip()) {
            (true, IpAddr::V4(ip)) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), a.port()),
            _ => a,
        }
    };
    // Documentation addresses: the client side .1, the server side .2.
    let doc = |client: bool| -> IpAddr {
        let last = if client { 1 } else { 2 };
        if v6 {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
        } else {
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, last as u8))
        }
    };
    let port = |side: usize| -> u16 { 49_152 + ((index * 2 + side) % 16_384) as u16 };
    let remote_ip = remote.map(|r| family(r).ip());
    let mut made_up_ours = false;
    let mut made_up_theirs = false;
    let ours = match local.map(family) {
        Some(a) if !a.ip().is_unspecified() && a.port() != 0 => a,
        known => {
            // Bound to any address: traffic to a loopback peer came from loopback.
            let ip = match (known, remote_ip) {
                (_, Some(r)) if r.is_loopback() => r,
                _ => doc(we_connect),
            };
            let port = known
                .map(|a| a.port())
                .filter(|&p| p != 0)
                .unwrap_or(port(0));
            let a = SocketAddr::new(ip, port);
            made_up_ours = !ip.is_loopback() || known.is_none_or(|k| k.port() == 0);
            a
        }
    };
    let theirs = match remote.map(family) {
        Some(a) if !a.ip().is_unspecified() && a.port() != 0 => a,
        _ => {
            made_up_theirs = true;
            SocketAddr::new(doc(!we_connect), port(1))
        }
    };
    Settled {
        ours,
        theirs,
        made_up_ours,
        made_up_theirs,
    }
}

/// The capture being written.
struct Packets<'w, 'l> {
    writer: PcapNgWriter<&'w mut dyn Write>,
    /// The log the packets come from (names for the comments).
    log: &'l TrafficLog,
    /// The socket of each Unix-domain endpoint (by log endpoint index), for comments.
    unix: &'l HashMap<u32, String>,
    /// One packet's bytes, reused.
    buffer: Vec<u8>,
    /// The IPv4 identification field, counted per packet.
    ident: u16,
}

/// A TCP segment's flags.
#[derive(Clone, Copy, Default)]
struct Flags {
    syn: bool,
    ack: bool,
    psh: bool,
    fin: bool,
    rst: bool,
}

impl Packets<'_, '_> {
    fn tcp_row(&mut self, flow: &mut Flow, e: &Entry, at: Duration) -> io::Result<()> {
        let log = self.log;
        match e.kind {
            EntryKind::Connected | EntryKind::Accepted => self.open(flow, at),
            EntryKind::Sent | EntryKind::Received => {
                self.open(flow, at)?;
                self.tcp_data(flow, e.kind == EntryKind::Sent, e, at)
            }
            _ if !flow.tcp.open => Ok(()),
            EntryKind::HalfClosed => self.fin(flow, true, at),
            EntryKind::PeerClosed => self.fin(flow, false, at),
            EntryKind::Closed => {
                if log.bytes_of(e).starts_with(b"aborted") {
                    self.reset(flow, true, at)
                } else {
                    // Our close sends our FIN when the shutdown did not already.
                    if !flow.tcp.our_fin {
                        self.fin(flow, true, at)?;
                    }
                    flow.tcp.open = false;
                    Ok(())
                }
            }
            EntryKind::Reset | EntryKind::Failed(ErrorKind::Reset) => self.reset(flow, false, at),
            _ => Ok(()),
        }
    }

    /// SYN, SYN-ACK, ACK, unless the connection is open already.
    fn open(&mut self, flow: &mut Flow, at: Duration) -> io::Result<()> {
        if flow.tcp.open {
            return Ok(());
        }
        // Initial sequence numbers: fixed per connection, so exports repeat
        // exactly, and far from zero, as real ones are.
        let n = flow.tcp.opened;
        let base = (flow.ours.port() as u32) << 16 | flow.theirs.port() as u32;
        let client_isn = base
            .wrapping_mul(2_654_435_761)
            .wrapping_add(n.wrapping_mul(64_000));
        let server_isn = client_isn.rotate_left(16) ^ 0x5a5a_5a5a;
        let (our_isn, their_isn) = if flow.we_connect {
            (client_isn, server_isn)
        } else {
            (server_isn, client_isn)
        };
        flow.tcp = TcpState {
            open: true,
            opened: n.wrapping_add(1),
            our_next: our_isn,
            their_next: their_isn,
            our_fin: false,
            their_fin: false,
        };
        let syn = Flags {
            syn: true,
            ..Flags::default()
        };
        let syn_ack = Flags {
            syn: true,
            ack: true,
            ..Flags::default()
        };
        let ack = Flags {
            ack: true,
            ..Flags::default()
        };
        let client = flow.we_connect;
        self.segment(flow, client, syn, &[], 0, at)?;
        self.advance(flow, client, 1);
        self.segment(flow, !client, syn_ack, &[], 0, at)?;
        self.advance(flow, !client, 1);
        self.segment(flow, client, ack, &[], 0, at)
    }

    fn advance(&mut self, flow: &mut Flow, from_us: bool, by: u32) {
        if from_us {
            flow.tcp.our_next = flow.tcp.our_next.wrapping_add(by);
        } else {
            flow.tcp.their_next = flow.tcp.their_next.wrapping_add(by);
        }
    }

    /// A payload as segments of at most [`MSS`] bytes. Of a payload the log
    /// kept only the first bytes of, the rest is written as not captured
    /// (a packet's captured length below its length, as a short snaplen does).
    fn tcp_data(
        &mut self,
        flow: &mut Flow,
        from_us: bool,
        e: &Entry,
        at: Duration,
    ) -> io::Result<()> {
        let log = self.log;
        let kept = log.bytes_of(e);
        let total = e.len();
        let mut offset = 0;
        while offset < total {
            let len = MSS.min(total - offset);
            let end = offset + len;
            let flags = Flags {
                ack: true,
                psh: end == total,
                ..Flags::default()
            };
            let have = kept
                .get(offset.min(kept.len())..end.min(kept.len()))
                .unwrap_or_default();
            self.segment(flow, from_us, flags, have, len - have.len(), at)?;
            self.advance(flow, from_us, len as u32);
            offset = end;
        }
        Ok(())
    }

    /// A FIN from one side, and the other side's ACK of it; both FINs end the connection.
    fn fin(&mut self, flow: &mut Flow, from_us: bool, at: Duration) -> io::Result<()> {
        let done = if from_us {
            flow.tcp.our_fin
        } else {
            flow.tcp.their_fin
        };
        if done {
            return Ok(());
        }
        let fin = Flags {
            fin: true,
            ack: true,
            ..Flags::default()
        };
        self.segment(flow, from_us, fin, &[], 0, at)?;
        self.advance(flow, from_us, 1);
        if from_us {
            flow.tcp.our_fin = true;
        } else {
            flow.tcp.their_fin = true;
        }
        let ack = Flags {
            ack: true,
            ..Flags::default()
        };
        self.segment(flow, !from_us, ack, &[], 0, at)?;
        if flow.tcp.our_fin && flow.tcp.their_fin {
            flow.tcp.open = false;
        }
        Ok(())
    }

    fn reset(&mut self, flow: &mut Flow, from_us: bool, at: Duration) -> io::Result<()> {
        let rst = Flags {
            rst: true,
            ack: true,
            ..Flags::default()
        };
        self.segment(flow, from_us, rst, &[], 0, at)?;
        flow.tcp.open = false;
        Ok(())
    }

    /// One TCP segment from one side with the current sequence numbers;
    /// `missing` payload bytes after `payload` were not kept by the log.
    fn segment(
        &mut self,
        flow: &mut Flow,
        from_us: bool,
        flags: Flags,
        payload: &[u8],
        missing: usize,
        at: Duration,
    ) -> io::Result<()> {
        let (seq, ack) = if from_us {
            (flow.tcp.our_next, flow.tcp.their_next)
        } else {
            (flow.tcp.their_next, flow.tcp.our_next)
        };
        let (src, dst) = ends(flow, from_us);
        let ip = self.ip_step(flow, from_us, src, dst);
        let mut step = ip.tcp(src.port(), dst.port(), seq, WINDOW);
        if flags.syn {
            step = step.syn();
            step = step
                .options(&[TcpOptionElement::MaximumSegmentSize(MSS as u16)])
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        if flags.ack {
            step = step.ack(ack);
        }
        if flags.psh {
            step = step.psh();
        }
        if flags.fin {
            step = step.fin();
        }
        if flags.rst {
            step = step.rst();
        }
        self.buffer.clear();
        let captured = if missing == 0 {
            step.write(&mut self.buffer, payload)
                .map_err(|e| io::Error::other(e.to_string()))?;
            self.buffer.len()
        } else {
            // The checksum is over zeros where the bytes were not kept: the
            // packet says it was cut, so no reader checks it.
            let mut whole = Vec::with_capacity(payload.len() + missing);
            whole.extend_from_slice(payload);
            whole.resize(payload.len() + missing, 0);
            step.write(&mut self.buffer, &whole)
                .map_err(|e| io::Error::other(e.to_string()))?;
            self.buffer.len() - missing
        };
        let comment = comment(flow, self.log, self.unix, from_us);
        self.emit(at, captured, comment)
    }

    fn datagram(
        &mut self,
        flow: &mut Flow,
        from_us: bool,
        e: &Entry,
        at: Duration,
    ) -> io::Result<()> {
        let log = self.log;
        let kept = log.bytes_of(e);
        let limit = if flow.ours.is_ipv6() {
            MAX_UDP_V6
        } else {
            MAX_UDP_V4
        };
        let total = e.len().min(limit);
        let have = &kept[..kept.len().min(total)];
        let missing = total - have.len();
        let (src, dst) = ends(flow, from_us);
        let ip = self.ip_step(flow, from_us, src, dst);
        let step = ip.udp(src.port(), dst.port());
        self.buffer.clear();
        let mut whole;
        let body = if missing == 0 {
            have
        } else {
            whole = Vec::with_capacity(total);
            whole.extend_from_slice(have);
            whole.resize(total, 0);
            &whole[..]
        };
        step.write(&mut self.buffer, body)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let captured = self.buffer.len() - missing;
        let mut text = comment(flow, log, self.unix, from_us);
        if e.len() > limit {
            text.push_str(&format!(
                "\nthe recorded datagram of {} bytes is more than one UDP datagram carries: its first {limit} bytes are written",
                e.len()
            ));
        }
        self.emit(at, captured, text)
    }

    /// Ethernet and IP headers from `src` to `dst`.
    fn ip_step(
        &mut self,
        flow: &Flow,
        from_us: bool,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> etherparse::PacketBuilderStep<IpHeaders> {
        // The client side has one MAC, the server side the other.
        let from_client = from_us == flow.we_connect;
        let (smac, dmac) = if from_client {
            (MAC_CLIENT, MAC_SERVER)
        } else {
            (MAC_SERVER, MAC_CLIENT)
        };
        let eth = PacketBuilder::ethernet2(smac, dmac);
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.ident = self.ident.wrapping_add(1);
                let mut header = Ipv4Header {
                    source: s.octets(),
                    destination: d.octets(),
                    time_to_live: 64,
                    identification: self.ident,
                    ..Default::default()
                };
                header.dont_fragment = true;
                eth.ip(IpHeaders::Ipv4(header, Ipv4Extensions::default()))
            }
            (s, d) => eth.ipv6(v6(s).octets(), v6(d).octets(), 64),
        }
    }

    /// Writes the packet in the buffer: `captured` of its bytes kept.
    fn emit(&mut self, at: Duration, captured: usize, comment: String) -> io::Result<()> {
        let data = &self.buffer[..captured.min(self.buffer.len())];
        self.writer
            .write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: at,
                original_len: self.buffer.len() as u32,
                data: Cow::Borrowed(data),
                options: vec![EnhancedPacketOption::Comment(Cow::Owned(comment))],
            })
            .map(drop)
            .map_err(pcap_error)
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The socket of each Unix-domain endpoint of `session`, by log endpoint
/// index: `the Unix stream socket /run/app.sock`, for comments.
fn unix_sockets(session: &Session) -> HashMap<u32, String> {
    use crate::model::EndpointKind as K;
    let mut sockets = HashMap::new();
    for spec in &session.endpoints {
        let text = match &spec.kind {
            K::UnixClient { path } | K::UnixServer { path, .. } => {
                format!("the Unix stream socket {path}")
            }
            K::UnixDatagram {
                bind: Some(path), ..
            } => {
                format!("the Unix datagram socket {path}")
            }
            K::UnixDatagram { bind: None, .. } => "an unnamed Unix datagram socket".to_owned(),
            _ => continue,
        };
        if let Some(index) = session.log.find_endpoint(&spec.name) {
            sockets.insert(index, comment_name(&text));
        }
    }
    sockets
}

/// Which made-up address stands for which side of a Unix conversation:
/// `192.0.2.1:49152 stands for "cli" (the Unix stream socket /run/app.sock),
/// 192.0.2.2:49153 for its peer /run/app.sock`.
fn unix_mapping(flow: &Flow, log: &TrafficLog, unix: &HashMap<u32, String>) -> String {
    let record = log.peers().get(flow.peer as usize);
    let endpoint = record.map_or(u32::MAX, |r| r.endpoint);
    let name = comment_name(
        log.endpoints()
            .get(endpoint as usize)
            .map_or("?", String::as_str),
    );
    let socket = unix.get(&endpoint).map_or("a Unix socket", String::as_str);
    let peer = match record {
        Some(r) if !r.remote.trim().is_empty() => comment_name(&r.remote),
        _ => "(not recorded)".to_owned(),
    };
    let (transport, kind) = match flow.transport {
        Transport::Tcp => ("TCP", "stream"),
        Transport::Udp => ("UDP", "datagram"),
    };
    format!(
        "a Unix-domain {kind} conversation, written as {transport} between made-up addresses \
         (no IP was involved): {} stands for \"{name}\" ({socket}), {} for its peer {peer}",
        flow.ours, flow.theirs
    )
}

/// The section's comment when the log holds Unix-domain conversations: what
/// is made up, and the first [`UNIX_LISTED`] mappings.
fn unix_section_comment(
    log: &TrafficLog,
    flows: &[Option<Flow>],
    unix: &HashMap<u32, String>,
) -> Option<String> {
    let listed: Vec<&Flow> = flows
        .iter()
        .flatten()
        .filter(|f| f.unix && !f.mirror)
        .collect();
    if listed.is_empty() {
        return None;
    }
    let mut text = format!(
        "Unix-domain socket traffic: {} conversation{} written as TCP (stream) or UDP \
         (datagram) between made-up addresses in 192.0.2.0/24 (RFC 5737); the payloads \
         and times are the recording's.",
        listed.len(),
        if listed.len() == 1 { "" } else { "s" }
    );
    for flow in listed.iter().take(UNIX_LISTED) {
        text.push('\n');
        text.push_str(&unix_mapping(flow, log, unix));
    }
    if listed.len() > UNIX_LISTED {
        text.push_str(&format!(
            "\n… and {} more (each conversation's first packet says which addresses stand for what)",
            listed.len() - UNIX_LISTED
        ));
    }
    Some(text)
}

/// The line to tell a person who exports `session` as pcapng that its Unix
/// traffic is written on made-up addresses, or `None` when it has none.
pub fn unix_note(session: &Session) -> Option<String> {
    let log = &session.log;
    let flows = plan(session);
    let unix: Vec<&Flow> = flows
        .iter()
        .flatten()
        .filter(|f| f.unix && !f.mirror)
        .collect();
    if unix.is_empty() {
        return None;
    }
    let mut names: Vec<String> = Vec::new();
    for flow in &unix {
        let endpoint = log
            .peers()
            .get(flow.peer as usize)
            .map_or(u32::MAX, |r| r.endpoint);
        let name = format!(
            "\"{}\"",
            comment_name(
                log.endpoints()
                    .get(endpoint as usize)
                    .map_or("?", String::as_str)
            )
        );
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Some(format!(
        "note: Unix-domain socket traffic ({} of {}) is written as TCP/UDP between made-up \
         addresses in 192.0.2.0/24: pcapng has no Unix socket type that Wireshark dissects; \
         the capture's comments (Statistics › Capture File Properties, and each conversation's \
         first packet) say which address stands for which socket path",
        if unix.len() == 1 {
            "1 conversation".to_owned()
        } else {
            format!("{} conversations", unix.len())
        },
        names.join(", ")
    ))
}

/// Source and destination of a packet.
fn ends(flow: &Flow, from_us: bool) -> (SocketAddr, SocketAddr) {
    if from_us {
        (flow.ours, flow.theirs)
    } else {
        (flow.theirs, flow.ours)
    }
}

/// A packet's comment: who sends to whom, and for a conversation's first
/// packet what is synthetic about it.
fn comment(
    flow: &mut Flow,
    log: &TrafficLog,
    unix: &HashMap<u32, String>,
    from_us: bool,
) -> String {
    let endpoint_name =
        |i: u32| comment_name(log.endpoints().get(i as usize).map_or("?", String::as_str));
    let record = log.peers().get(flow.peer as usize);
    let endpoint = record.map_or(u32::MAX, |r| r.endpoint);
    let ours = endpoint_name(endpoint);
    let theirs = match (flow.partner, record) {
        (Some(partner), _) => endpoint_name(partner),
        (None, Some(r)) if !r.remote.trim().is_empty() => comment_name(&r.remote),
        (None, r) => format!("peer #{} of {ours}", r.map_or(0, |r| r.number)),
    };
    let mut text = if from_us {
        format!("{ours} → {theirs}")
    } else {
        format!("{theirs} → {ours}")
    };
    let first = std::mem::take(&mut flow.first);
    if first && flow.unix {
        text.push('\n');
        text.push_str(&unix_mapping(flow, log, unix));
    } else if first {
        if flow.made_up_ours {
            text.push_str(&format!(
                "\nsynthetic address for {ours}: {} (its own was not recorded)",
                flow.ours
            ));
        }
        if flow.made_up_theirs {
            text.push_str(&format!(
                "\nsynthetic address for the peer of {ours}: {} (not recorded)",
                flow.theirs
            ));
        }
        if flow.tls {
            text.push_str(
                "\na TLS endpoint: the payloads are the decrypted application data, \
                 so a dissector expecting TLS records on this port will not find them",
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
    use pcap_parser::{Block, PcapBlockOwned, PcapNGSlice};

    /// A packet read back with pcap-parser.
    #[derive(Debug)]
    struct Read {
        nanos: u128,
        caplen: usize,
        origlen: usize,
        data: Vec<u8>,
        comment: String,
    }

    fn read_back(bytes: &[u8]) -> Vec<Read> {
        let mut resolution = None;
        let mut packets = Vec::new();
        for block in PcapNGSlice::from_slice(bytes).expect("a pcapng section header") {
            match block.expect("every block parses") {
                PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                    resolution = idb.ts_resolution();
                }
                PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                    let units = (u128::from(epb.ts_high) << 32) | u128::from(epb.ts_low);
                    let per_second = u128::from(resolution.expect("an interface first"));
                    let comments: Vec<String> = epb
                        .options
                        .iter()
                        .filter(|o| o.code == pcap_parser::OptionCode::Comment)
                        .map(|o| o.as_str().expect("a UTF-8 comment").to_owned())
                        .collect();
                    assert_eq!(comments.len(), 1, "one comment per packet");
                    packets.push(Read {
                        nanos: units * 1_000_000_000 / per_second,
                        caplen: epb.caplen as usize,
                        origlen: epb.origlen as usize,
                        data: epb.data[..epb.caplen as usize].to_vec(),
                        comment: comments[0].clone(),
                    });
                }
                _ => {}
            }
        }
        packets
    }

    /// A TCP segment's fields.
    #[derive(Debug, PartialEq, Eq)]
    struct Seg {
        src: SocketAddr,
        dst: SocketAddr,
        flags: String,
        seq: u32,
        ack: u32,
        payload: Vec<u8>,
    }

    fn addresses(p: &LaxSlicedPacket) -> (IpAddr, IpAddr) {
        match p.net.as_ref().expect("an IP header") {
            LaxNetSlice::Ipv4(v4) => (
                IpAddr::V4(v4.header().source_addr()),
                IpAddr::V4(v4.header().destination_addr()),
            ),
            LaxNetSlice::Ipv6(v6) => (
                IpAddr::V6(v6.header().source_addr()),
                IpAddr::V6(v6.header().destination_addr()),
            ),
            _ => panic!("not IP"),
        }
    }

    fn tcp(packet: &Read) -> Seg {
        let p = LaxSlicedPacket::from_ethernet(&packet.data).expect("Ethernet");
        let (s, d) = addresses(&p);
        let Some(TransportSlice::Tcp(t)) = &p.transport else {
            panic!("not TCP: {p:?}")
        };
        let mut flags = String::new();
        for (on, name) in [
            (t.syn(), "S"),
            (t.fin(), "F"),
            (t.rst(), "R"),
            (t.psh(), "P"),
            (t.ack(), "."),
        ] {
            if on {
                flags.push_str(name);
            }
        }
        Seg {
            src: SocketAddr::new(s, t.source_port()),
            dst: SocketAddr::new(d, t.destination_port()),
            flags,
            seq: t.sequence_number(),
            ack: t.acknowledgment_number(),
            payload: t.payload().to_vec(),
        }
    }

    fn udp(packet: &Read) -> (SocketAddr, SocketAddr, Vec<u8>) {
        let p = LaxSlicedPacket::from_ethernet(&packet.data).expect("Ethernet");
        let (s, d) = addresses(&p);
        let Some(TransportSlice::Udp(u)) = &p.transport else {
            panic!("not UDP: {p:?}")
        };
        (
            SocketAddr::new(s, u.source_port()),
            SocketAddr::new(d, u.destination_port()),
            u.payload().to_vec(),
        )
    }

    fn session(ron: &str) -> Session {
        crate::persist::from_str(ron, std::path::Path::new("t.ron")).expect("a session")
    }

    fn export(s: &Session) -> Vec<Read> {
        let mut out = Vec::new();
        write_pcapng(s, &mut out).unwrap();
        read_back(&out)
    }

    fn a(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_tcp_conversation_has_its_handshake_segments_and_fins_with_numbers_that_add_up() {
        let big: String = (0..3000).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let s = session(&format!(
            r#"(format: 1, endpoints: [(name: "client", kind: TcpClient(remote: "127.0.0.1:80"))],
            log: (peers: [(endpoint: "client", peer: 0, remote: "127.0.0.1:80")], entries: [
                (at: "2026-01-01T00:00:01.000001Z", endpoint: "client", peer: 0, event: Connected("from 127.0.0.1:50000")),
                (at: "2026-01-01T00:00:01.000002Z", endpoint: "client", peer: 0, event: Sent(Text("{big}"))),
                (at: "2026-01-01T00:00:01.000003Z", endpoint: "client", peer: 0, event: Received(Text("hello"))),
                (at: "2026-01-01T00:00:01.000004Z", endpoint: "client", peer: 0, event: HalfClosed("")),
                (at: "2026-01-01T00:00:01.000005Z", endpoint: "client", peer: 0, event: PeerClosed("")),
                (at: "2026-01-01T00:00:01.000006Z", endpoint: "client", peer: 0, event: Closed("connection closed")),
            ]))"#
        ));
        let packets = export(&s);
        let segs: Vec<Seg> = packets.iter().map(tcp).collect();
        let (c, srv) = (a("127.0.0.1:50000"), a("127.0.0.1:80"));
        let flags: Vec<&str> = segs.iter().map(|s| s.flags.as_str()).collect();
        assert_eq!(
            flags,
            ["S", "S.", ".", ".", ".", "P.", "P.", "F.", ".", "F.", "."],
            "{segs:#?}"
        );
        let ci = segs[0].seq;
        let si = segs[1].seq;
        assert_eq!((segs[0].src, segs[0].dst), (c, srv));
        assert_eq!((segs[1].src, segs[1].dst, segs[1].ack), (srv, c, ci + 1));
        assert_eq!((segs[2].seq, segs[2].ack), (ci + 1, si + 1));
        // 3,000 bytes as 1,460 + 1,460 + 80, each where the one before ended.
        let lens: Vec<usize> = segs[3..6].iter().map(|s| s.payload.len()).collect();
        assert_eq!(lens, [1460, 1460, 80]);
        for (k, seg) in segs[3..6].iter().enumerate() {
            assert_eq!(
                (seg.src, seg.seq, seg.ack),
                (c, ci + 1 + 1460 * k as u32, si + 1)
            );
        }
        let sent: Vec<u8> = segs[3..6].iter().flat_map(|s| s.payload.clone()).collect();
        assert_eq!(sent, big.as_bytes());
        // The answer acknowledges all 3,000 bytes.
        assert_eq!(
            (segs[6].src, segs[6].seq, segs[6].ack),
            (srv, si + 1, ci + 3001)
        );
        assert_eq!(segs[6].payload, b"hello");
        // Our FIN, its ACK, theirs, its ACK.
        assert_eq!(
            (segs[7].src, segs[7].seq, segs[7].ack),
            (c, ci + 3001, si + 6)
        );
        assert_eq!((segs[8].src, segs[8].ack), (srv, ci + 3002));
        assert_eq!(
            (segs[9].src, segs[9].seq, segs[9].ack),
            (srv, si + 6, ci + 3002)
        );
        assert_eq!(
            (segs[10].src, segs[10].seq, segs[10].ack),
            (c, ci + 3002, si + 7)
        );
        // Times are the rows' (the handshake at the connection's row).
        let base = 1_767_225_601_000_000_000u128;
        assert_eq!(packets[0].nanos, base + 1_000);
        assert_eq!(packets[3].nanos, base + 2_000);
        assert_eq!(packets[6].nanos, base + 3_000);
        assert_eq!(packets[10].nanos, base + 5_000);
        assert_eq!(packets[3].comment, "client → 127.0.0.1:80");
        assert_eq!(packets[6].comment, "127.0.0.1:80 → client");
        assert!(packets.iter().all(|p| p.caplen == p.origlen));
    }

    #[test]
    fn both_ends_recorded_in_one_session_are_one_conversation_named_after_both() {
        let s = session(
            r#"(format: 1, endpoints: [
                (name: "srv", kind: TcpServer(listen: "127.0.0.1:7000")),
                (name: "cli", kind: TcpClient(remote: "127.0.0.1:7000"))],
            log: (peers: [(endpoint: "srv", peer: 1, remote: "127.0.0.1:50001"), (endpoint: "cli", peer: 0, remote: "127.0.0.1:7000")], entries: [
                (at: "2026-01-01T00:00:00.000000Z", endpoint: "srv", event: Listening("127.0.0.1:7000")),
                (at: "2026-01-01T00:00:00.000001Z", endpoint: "cli", peer: 0, event: Connected("from 127.0.0.1:50001")),
                (at: "2026-01-01T00:00:00.000002Z", endpoint: "srv", peer: 1, event: Accepted("on 127.0.0.1:7000")),
                (at: "2026-01-01T00:00:00.000003Z", endpoint: "cli", peer: 0, event: Sent(Text("ping"))),
                (at: "2026-01-01T00:00:00.000004Z", endpoint: "srv", peer: 1, event: Received(Text("ping"))),
                (at: "2026-01-01T00:00:00.000005Z", endpoint: "srv", peer: 1, event: Sent(Text("pong"))),
                (at: "2026-01-01T00:00:00.000006Z", endpoint: "cli", peer: 0, event: Received(Text("pong"))),
                (at: "2026-01-01T00:00:00.000007Z", endpoint: "srv", peer: 1, event: Closed("aborted: we sent a reset")),
                (at: "2026-01-01T00:00:00.000008Z", endpoint: "cli", peer: 0, event: Reset("the peer reset the connection")),
            ]))"#,
        );
        let packets = export(&s);
        let segs: Vec<Seg> = packets.iter().map(tcp).collect();
        let flags: Vec<&str> = segs.iter().map(|s| s.flags.as_str()).collect();
        // Once, from the client's rows: the reset is the server's.
        assert_eq!(flags, ["S", "S.", ".", "P.", "P.", "R."], "{segs:#?}");
        assert_eq!(segs[3].payload, b"ping");
        assert_eq!(segs[4].payload, b"pong");
        assert_eq!(segs[5].src, a("127.0.0.1:7000"));
        assert_eq!(packets[3].comment, "cli → srv");
        assert_eq!(packets[5].comment, "srv → cli");
    }

    #[test]
    fn unknown_addresses_are_documentation_addresses_and_the_first_packet_says_so() {
        let s = session(
            r#"(format: 1, endpoints: [(name: "u", kind: Udp())],
            log: (peers: [(endpoint: "u", peer: 0, remote: "")], entries: [
                (at: "2026-01-01T00:00:00.000000Z", endpoint: "u", peer: 0, event: Sent(Text("one"))),
                (at: "2026-01-01T00:00:00.000001Z", endpoint: "u", peer: 0, event: Received(Hex("00 ff"))),
            ]))"#,
        );
        let packets = export(&s);
        assert_eq!(packets.len(), 2);
        let (src, dst, payload) = udp(&packets[0]);
        assert_eq!(payload, b"one");
        for side in [src, dst] {
            let IpAddr::V4(v4) = side.ip() else { panic!() };
            assert_eq!(v4.octets()[..3], [192, 0, 2], "{side}");
        }
        assert_ne!(src, dst);
        assert!(
            packets[0].comment.contains("synthetic address for u"),
            "{}",
            packets[0].comment
        );
        assert!(
            packets[0]
                .comment
                .contains("synthetic address for the peer of u")
        );
        let (src2, dst2, payload) = udp(&packets[1]);
        assert_eq!((src2, dst2, payload), (dst, src, vec![0, 0xff]));
        assert_eq!(packets[1].comment, "peer #0 of u → u");
    }

    #[test]
    fn udp_over_ipv6_with_a_socket_bound_to_any_address_talks_from_loopback() {
        let s = session(
            r#"(format: 1, endpoints: [(name: "u", kind: Udp(bind: "[::]:5000"))],
            log: (peers: [(endpoint: "u", peer: 0, remote: "[::1]:6000")], entries: [
                (at: "2026-01-01T00:00:00.000000Z", endpoint: "u", event: Bound("[::]:5000")),
                (at: "2026-01-01T00:00:00.000001Z", endpoint: "u", peer: 0, event: Received(Text("hi"))),
            ]))"#,
        );
        let packets = export(&s);
        let (src, dst, payload) = udp(&packets[0]);
        assert_eq!(
            (src, dst, payload),
            (a("[::1]:6000"), a("[::1]:5000"), b"hi".to_vec())
        );
        assert_eq!(packets[0].comment, "[::1]:6000 → u");
    }

    #[test]
    fn a_payload_kept_only_in_part_is_a_cut_packet_of_its_true_length() {
        let s = session(
            r#"(format: 1, endpoints: [(name: "c", kind: TcpClient(remote: "10.0.0.1:80"))],
            log: (peers: [(endpoint: "c", peer: 0, remote: "10.0.0.1:80")], entries: [
                (at: "2026-01-01T00:00:00.000001Z", endpoint: "c", peer: 0, event: Connected("from 10.0.0.2:40000")),
                (at: "2026-01-01T00:00:00.000002Z", endpoint: "c", peer: 0, event: Received(Text("abcd")), dropped: 2000),
                (at: "2026-01-01T00:00:00.000003Z", endpoint: "c", peer: 0, event: Received(Text("z"))),
            ]))"#,
        );
        let packets = export(&s);
        assert_eq!(packets.len(), 6);
        // 2,004 bytes: 1,460 of which 4 are kept, then 544 of which none are.
        assert_eq!((packets[3].origlen, packets[3].caplen), (54 + 1460, 54 + 4));
        assert_eq!((packets[4].origlen, packets[4].caplen), (54 + 544, 54));
        assert_eq!(&packets[3].data[54..], b"abcd");
        let segs: Vec<Seg> = packets.iter().map(tcp).collect();
        assert_eq!(segs[5].seq, segs[3].seq.wrapping_add(2004));
        assert_eq!(segs[5].payload, b"z");
    }

    #[test]
    fn hostile_names_are_one_bounded_comment_line() {
        let evil = format!("x\n\u{202e}evil\0{}", "n".repeat(100_000));
        let s = session(&format!(
            r#"(format: 1, endpoints: [(name: "{}", kind: TcpClient(remote: "127.0.0.1:1"))],
            log: (peers: [(endpoint: "{}", peer: 0, remote: "127.0.0.1:1\n")], entries: [
                (at: "2026-01-01T00:00:00.000001Z", endpoint: "{}", peer: 0, event: Sent(Text("a"))),
            ]))"#,
            evil.escape_default(),
            evil.escape_default(),
            evil.escape_default()
        ));
        let packets = export(&s);
        assert_eq!(packets.len(), 4);
        for p in &packets {
            assert!(p.comment.len() < 2_000, "{}", p.comment.len());
            let first_line = p.comment.lines().next().unwrap();
            assert!(
                !first_line
                    .chars()
                    .any(|c| c.is_control() || c == '\u{202e}'),
                "{first_line:?}"
            );
            assert!(
                first_line.contains("x\\n\\u{202e}evil\\0"),
                "{first_line:?}"
            );
        }
    }

    #[test]
    fn without_a_connection_row_the_endpoints_kind_says_who_connected() {
        let s = session(
            r#"(format: 1, endpoints: [(name: "c", kind: TcpClient(remote: "127.0.0.1:80"))],
            log: (peers: [(endpoint: "c", peer: 0, remote: "127.0.0.1:80")], entries: [
                (at: "2026-01-01T00:00:00.000001Z", endpoint: "c", peer: 0, event: Sent(Text("GET /"))),
            ]))"#,
        );
        let packets = export(&s);
        let segs: Vec<Seg> = packets.iter().map(tcp).collect();
        assert_eq!(segs[0].flags, "S");
        assert_eq!(segs[0].dst, a("127.0.0.1:80"));
        // The client's own address was not recorded: a loopback one stands in, said once.
        assert_eq!(segs[0].src.ip(), a("127.0.0.1:1").ip());
        assert!(
            packets[0]
                .comment
                .contains("synthetic address for c: 127.0.0.1:")
        );
        assert!(!packets[1].comment.contains("synthetic"));
        assert_eq!(segs[3].payload, b"GET /");
    }

    /// The section header's comment, if any.
    fn section_comment(bytes: &[u8]) -> Option<String> {
        for block in PcapNGSlice::from_slice(bytes).expect("a pcapng section header") {
            if let PcapBlockOwned::NG(Block::SectionHeader(shb)) = block.expect("a block") {
                return shb
                    .options
                    .iter()
                    .find(|o| o.code == pcap_parser::OptionCode::Comment)
                    .map(|o| o.as_str().expect("UTF-8").to_owned());
            }
        }
        None
    }

    #[test]
    fn unix_traffic_keeps_its_bytes_and_says_which_made_up_address_stands_for_which_path() {
        let s = session(
            r#"(format: 1, endpoints: [
                (name: "srv", kind: UnixServer(path: "/run/app.sock")),
                (name: "d", kind: UnixDatagram(bind: Some("/run/d.sock")))],
            log: (peers: [(endpoint: "srv", peer: 1, remote: "(unnamed #1)"), (endpoint: "d", peer: 1, remote: "/run/py.sock")], entries: [
                (at: "2026-01-01T00:00:00.000000Z", endpoint: "srv", event: Listening("/run/app.sock")),
                (at: "2026-01-01T00:00:00.000001Z", endpoint: "srv", peer: 1, event: Accepted("on /run/app.sock")),
                (at: "2026-01-01T00:00:00.000002Z", endpoint: "srv", peer: 1, event: Received(Text("ping\n"))),
                (at: "2026-01-01T00:00:00.000003Z", endpoint: "srv", peer: 1, event: Sent(Text("pong\n"))),
                (at: "2026-01-01T00:00:00.000004Z", endpoint: "d", peer: 1, event: Received(Text("dgram"))),
            ]))"#,
        );
        let mut out = Vec::new();
        write_pcapng(&s, &mut out).unwrap();
        let packets = read_back(&out);
        // Stream: handshake, then the bytes as TCP payloads, both ways.
        let segs: Vec<Seg> = packets[..5].iter().map(tcp).collect();
        assert_eq!(segs[0].flags, "S");
        assert_eq!(segs[3].payload, b"ping\n");
        assert_eq!(segs[4].payload, b"pong\n");
        for seg in &segs {
            for side in [seg.src, seg.dst] {
                let IpAddr::V4(v4) = side.ip() else { panic!() };
                assert_eq!(v4.octets()[..3], [192, 0, 2], "{side}");
            }
        }
        let srv = segs[3].dst;
        let peer = segs[3].src;
        let first = &packets[0].comment;
        assert!(
            first.contains(
                "a Unix-domain stream conversation, written as TCP between made-up addresses"
            ),
            "{first}"
        );
        assert!(
            first.contains(&format!(
                "{srv} stands for \"srv\" (the Unix stream socket /run/app.sock), {peer} for its peer (unnamed #1)"
            )),
            "{first}"
        );
        assert!(!first.contains("synthetic address"), "{first}");
        // Datagram: UDP with the payload, said the same way.
        let (_, _, payload) = udp(&packets[5]);
        assert_eq!(payload, b"dgram");
        assert!(
            packets[5]
                .comment
                .contains("a Unix-domain datagram conversation, written as UDP")
                && packets[5]
                    .comment
                    .contains("(the Unix datagram socket /run/d.sock)")
                && packets[5].comment.contains("for its peer /run/py.sock"),
            "{}",
            packets[5].comment
        );
        // The section says it before any packet, and the command's note names the endpoints.
        let section = section_comment(&out).expect("a section comment");
        assert!(
            section.starts_with("Unix-domain socket traffic: 2 conversations"),
            "{section}"
        );
        assert!(
            section.contains("/run/app.sock") && section.contains("/run/d.sock"),
            "{section}"
        );
        let note = unix_note(&s).unwrap();
        assert!(note.contains("2 conversations of \"srv\", \"d\""), "{note}");
        assert!(note.contains("made-up"), "{note}");
        // A capture without Unix traffic has neither.
        let tcp_only = session(
            r#"(format: 1, endpoints: [(name: "c", kind: TcpClient(remote: "127.0.0.1:80"))],
            log: (peers: [(endpoint: "c", peer: 0, remote: "127.0.0.1:80")], entries: [
                (at: "2026-01-01T00:00:00.000001Z", endpoint: "c", peer: 0, event: Sent(Text("x"))),
            ]))"#,
        );
        let mut out = Vec::new();
        write_pcapng(&tcp_only, &mut out).unwrap();
        assert_eq!(section_comment(&out), None);
        assert_eq!(unix_note(&tcp_only), None);
    }
}
