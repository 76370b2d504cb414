//! Capture import: a pcap or pcapng file turned into a session that replays
//! like any recording — as a mock of either side, or as a client.
//!
//! - [`packets`]: frames out of the file (pcap-parser), headers sliced
//!   (etherparse): Ethernet with VLAN tags, Linux cooked (SLL, SLL2), raw IP
//!   and BSD loopback; IPv4 and IPv6; TCP and UDP.
//! - [`stream`]: TCP reassembly of one direction (retransmissions dropped,
//!   out-of-order segments put in order, gaps said).
//! - here: packets grouped into conversations, listed, and one (or all on a
//!   port) written as a session of two endpoints, `client` and `server`, each
//!   with its own side of the log, as if sockbench had been both ends.

pub mod packets;
pub mod stream;

use std::collections::HashMap;
use std::net::SocketAddr;

use chrono::DateTime;

pub use packets::{CaptureError, Packet, ReadStats, Transport, read_bytes, read_file};
use stream::{Piece, Stream};

use crate::model::log::{EntryKind, NO_PEER};
use crate::model::{EndpointKind, EndpointSpec, HostPort, Session};

/// The most conversations told apart in one capture (the rest are counted).
pub const CONVERSATION_LIMIT: usize = 100_000;

/// The most payload bytes one import writes into a session.
pub const IMPORT_BYTES_LIMIT: u64 = 512 * 1024 * 1024;

/// Consecutive data of one direction closer than this joins one payload row.
const JOIN_MICROS: i64 = 200_000;

/// The most bytes one payload row is given when data is joined.
const JOIN_BYTES: usize = 64 * 1024;

/// A TCP connection or a UDP address pair found in a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    pub transport: Transport,
    /// The side that opened it (sent the SYN, or the first datagram).
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// Indices into the packets, in capture order.
    pub packets: Vec<usize>,
    /// Payload bytes each way, as captured (retransmissions included).
    pub to_server: u64,
    pub to_client: u64,
    /// Whether the TCP handshake (SYN) is in the capture.
    pub handshake: bool,
}

impl Conversation {
    pub fn bytes(&self) -> u64 {
        self.to_server + self.to_client
    }

    /// `TCP 10.0.0.1:50000 → 10.0.0.2:80, 120 bytes →, 4321 bytes ←, 12 packets`.
    pub fn describe(&self) -> String {
        format!(
            "{} {} → {}, {} byte{} →, {} byte{} ←, {} packet{}{}",
            match self.transport {
                Transport::Tcp => "TCP",
                Transport::Udp => "UDP",
            },
            self.client,
            self.server,
            self.to_server,
            plural(self.to_server),
            self.to_client,
            plural(self.to_client),
            self.packets.len(),
            plural(self.packets.len() as u64),
            if self.transport == Transport::Tcp && !self.handshake {
                " (began before the capture)"
            } else {
                ""
            }
        )
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The conversations of a capture, in the order they began, and how many
/// were left out beyond [`CONVERSATION_LIMIT`].
pub fn conversations(packets: &[Packet]) -> (Vec<Conversation>, usize) {
    let mut found: Vec<Conversation> = Vec::new();
    // The open conversation of each address pair.
    let mut open: HashMap<(Transport, SocketAddr, SocketAddr), usize> = HashMap::new();
    // Conversations whose connection ended (a FIN or RST seen): a new SYN
    // on their pair starts a new one.
    let mut ended: std::collections::HashSet<usize> = std::collections::HashSet::new();
    let mut left_out = 0usize;
    for (i, p) in packets.iter().enumerate() {
        let key = if p.src <= p.dst {
            (p.transport, p.src, p.dst)
        } else {
            (p.transport, p.dst, p.src)
        };
        let opening = p.transport == Transport::Tcp && p.tcp.syn && !p.tcp.ack;
        // A SYN on a pair whose connection ended is a new connection (the
        // same ports again); a repeated SYN is the same one.
        let index = match open.get(&key) {
            Some(&c) if !(opening && ended.contains(&c)) => c,
            _ => {
                if found.len() >= CONVERSATION_LIMIT {
                    left_out += 1;
                    continue;
                }
                let (client, server) = if p.transport == Transport::Tcp && !opening {
                    // Began before the capture: the side on the higher
                    // (ephemeral) port is taken for the client.
                    if p.src.port() > p.dst.port() {
                        (p.src, p.dst)
                    } else {
                        (p.dst, p.src)
                    }
                } else {
                    (p.src, p.dst)
                };
                found.push(Conversation {
                    transport: p.transport,
                    client,
                    server,
                    packets: Vec::new(),
                    to_server: 0,
                    to_client: 0,
                    handshake: opening,
                });
                open.insert(key, found.len() - 1);
                found.len() - 1
            }
        };
        let c = &mut found[index];
        c.packets.push(i);
        if p.src == c.client {
            c.to_server += p.payload.len() as u64;
        } else {
            c.to_client += p.payload.len() as u64;
        }
        if p.tcp.rst || p.tcp.fin {
            ended.insert(index);
        }
    }
    (found, left_out)
}

/// Which conversations to import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The one with the most payload bytes.
    Largest,
    /// Number N of the listing (from 1).
    Number(usize),
    /// Every conversation with this port on either side, as connections of
    /// one client and one server (the server is the side on that port).
    Port(u16),
}

/// Why the chosen conversations cannot be imported.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("the capture holds no TCP or UDP conversation")]
    Nothing,
    #[error("--conversation {asked}: the capture has {count} conversation{} (see the listing)", if *.count == 1 { "" } else { "s" })]
    NoSuchConversation { asked: usize, count: usize },
    #[error("--port {0}: no conversation of the capture uses that port")]
    NoSuchPort(u16),
    #[error(
        "--port {0}: its conversations mix TCP and UDP or several servers; pick one with --conversation"
    )]
    MixedPort(u16),
}

/// The chosen conversations (indices into `found`).
pub fn choose(found: &[Conversation], choice: Choice) -> Result<Vec<usize>, ImportError> {
    if found.is_empty() {
        return Err(ImportError::Nothing);
    }
    match choice {
        Choice::Largest => {
            let best = found
                .iter()
                .enumerate()
                .max_by_key(|(i, c)| (c.bytes(), std::cmp::Reverse(*i)))
                .map(|(i, _)| i)
                .unwrap_or(0);
            Ok(vec![best])
        }
        Choice::Number(n) => {
            if n == 0 || n > found.len() {
                Err(ImportError::NoSuchConversation {
                    asked: n,
                    count: found.len(),
                })
            } else {
                Ok(vec![n - 1])
            }
        }
        Choice::Port(port) => {
            let chosen: Vec<usize> = found
                .iter()
                .enumerate()
                .filter(|(_, c)| c.server.port() == port || c.client.port() == port)
                .map(|(i, _)| i)
                .collect();
            let Some(&first) = chosen.first() else {
                return Err(ImportError::NoSuchPort(port));
            };
            let server_of = |c: &Conversation| {
                if c.client.port() == port && c.server.port() != port {
                    c.client
                } else {
                    c.server
                }
            };
            let (t, s) = (found[first].transport, server_of(&found[first]));
            if chosen
                .iter()
                .any(|&i| found[i].transport != t || server_of(&found[i]) != s)
            {
                return Err(ImportError::MixedPort(port));
            }
            Ok(chosen)
        }
    }
}

/// What an import did beyond its rows, for the notes and the person.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub retransmitted: u64,
    pub out_of_order: u64,
    pub missing_bytes: u64,
    pub truncated_packets: u64,
    /// Payload bytes beyond [`IMPORT_BYTES_LIMIT`], left out.
    pub left_out_bytes: u64,
}

impl ImportReport {
    /// How many of `len` payload bytes fit what is left of `budget`; the
    /// rest are counted as left out.
    fn within(&mut self, budget: &mut u64, len: u64) -> u64 {
        let take = len.min(*budget);
        *budget -= take;
        self.left_out_bytes += len - take;
        take
    }
}

/// The session of the chosen conversations: endpoints `client` and `server`,
/// each with its own side of every row.
pub fn to_session(
    packets: &[Packet],
    found: &[Conversation],
    chosen: &[usize],
    source: &str,
) -> (Session, ImportReport) {
    let mut report = ImportReport::default();
    let mut session = Session::default();
    let Some(&first) = chosen.first() else {
        return (session, report);
    };
    let head = &found[first];
    // With --port, the server is the side on that port; otherwise the listed one.
    let server_addr = head.server;
    let server_hp = HostPort::from(server_addr);
    let (client_kind, server_kind) = match head.transport {
        Transport::Tcp => (
            EndpointKind::TcpClient {
                remote: server_hp.clone(),
            },
            EndpointKind::TcpServer { listen: server_hp },
        ),
        Transport::Udp => (
            EndpointKind::Udp {
                bind: None,
                remote: Some(server_hp.clone()),
            },
            EndpointKind::Udp {
                bind: Some(server_hp),
                remote: None,
            },
        ),
    };
    session
        .endpoints
        .push(EndpointSpec::new("client", client_kind));
    session
        .endpoints
        .push(EndpointSpec::new("server", server_kind));
    let log = &mut session.log;
    let c_ep = log.endpoint_index("client");
    let s_ep = log.endpoint_index("server");
    let mut budget = IMPORT_BYTES_LIMIT;

    for (k, &index) in chosen.iter().enumerate() {
        let conv = &found[index];
        let (client, server) = if conv.server == server_addr {
            (conv.client, conv.server)
        } else {
            (conv.server, conv.client)
        };
        log.new_run(c_ep);
        let number = k as u32 + 1;
        let (c_peer_no, s_peer_no) = match conv.transport {
            Transport::Tcp => (0, number),
            Transport::Udp => (1, number),
        };
        let c_peer = log.peer_index(c_ep, c_peer_no, &server.to_string());
        let s_peer = log.peer_index(s_ep, s_peer_no, &client.to_string());
        let rows = Rows {
            c_ep,
            s_ep,
            c_peer,
            s_peer,
        };
        let mut pending: Option<(bool, i64, Vec<u8>)> = None;
        let flush = |log: &mut crate::model::TrafficLog,
                     pending: &mut Option<(bool, i64, Vec<u8>)>| {
            if let Some((to_server, at, bytes)) = pending.take() {
                rows.data(log, at, to_server, &bytes);
            }
        };
        match conv.transport {
            Transport::Udp => {
                for &i in &conv.packets {
                    let p = &packets[i];
                    let take = report.within(&mut budget, p.payload.len() as u64);
                    if p.truncated {
                        report.truncated_packets += 1;
                    }
                    if take > 0 || p.payload.is_empty() {
                        rows.data(
                            log,
                            p.at_micros,
                            p.src == client,
                            &p.payload[..take as usize],
                        );
                    }
                }
            }
            Transport::Tcp => {
                let mut up = Stream::default();
                let mut down = Stream::default();
                let mut connected = false;
                let mut fins = (false, false);
                let mut last_at = 0;
                let mut closed = false;
                for &i in &conv.packets {
                    let p = &packets[i];
                    last_at = p.at_micros;
                    let to_server = p.src == client;
                    if p.truncated {
                        report.truncated_packets += 1;
                    }
                    if p.tcp.syn {
                        if to_server {
                            up.syn(p.tcp.seq);
                            if !p.tcp.ack && !connected {
                                rows.side(
                                    log,
                                    p.at_micros,
                                    true,
                                    EntryKind::Connecting,
                                    &server.to_string(),
                                );
                            }
                        } else {
                            down.syn(p.tcp.seq);
                            if !connected {
                                connected = true;
                                rows.connected(log, p.at_micros, client, "");
                            }
                        }
                    }
                    if !connected && (!p.payload.is_empty() || p.tcp.fin) {
                        connected = true;
                        rows.connected(
                            log,
                            p.at_micros,
                            client,
                            " (the capture began after the handshake)",
                        );
                    }
                    let stream = if to_server { &mut up } else { &mut down };
                    stream.segment(p.at_micros, p.tcp.seq, &p.payload);
                    for piece in stream.take() {
                        match piece {
                            Piece::Data { at_micros, bytes } => {
                                let take = report.within(&mut budget, bytes.len() as u64);
                                let bytes = &bytes[..take as usize];
                                if bytes.is_empty() {
                                    continue;
                                }
                                match &mut pending {
                                    Some((dir, at, held))
                                        if *dir == to_server
                                            && at_micros - *at <= JOIN_MICROS
                                            && held.len() + bytes.len() <= JOIN_BYTES =>
                                    {
                                        held.extend_from_slice(bytes);
                                    }
                                    _ => {
                                        flush(log, &mut pending);
                                        pending = Some((to_server, at_micros, bytes.to_vec()));
                                    }
                                }
                            }
                            Piece::Missing { at_micros, len } => {
                                flush(log, &mut pending);
                                report.missing_bytes += len;
                                rows.missing(log, at_micros, to_server, len);
                            }
                        }
                    }
                    if p.tcp.fin && !closed {
                        flush(log, &mut pending);
                        if to_server && !fins.0 {
                            fins.0 = true;
                            rows.side(
                                log,
                                p.at_micros,
                                true,
                                EntryKind::HalfClosed,
                                "we shut down our sending side (FIN)",
                            );
                            rows.side(
                                log,
                                p.at_micros,
                                false,
                                EntryKind::PeerClosed,
                                "the peer closed its sending side",
                            );
                        } else if !to_server && !fins.1 {
                            fins.1 = true;
                            rows.side(
                                log,
                                p.at_micros,
                                false,
                                EntryKind::HalfClosed,
                                "we shut down our sending side (FIN)",
                            );
                            rows.side(
                                log,
                                p.at_micros,
                                true,
                                EntryKind::PeerClosed,
                                "the peer closed its sending side",
                            );
                        }
                        if fins.0 && fins.1 {
                            closed = true;
                            rows.both(log, p.at_micros, EntryKind::Closed, "");
                        }
                    }
                    if p.tcp.rst && !closed {
                        flush(log, &mut pending);
                        closed = true;
                        rows.side(
                            log,
                            p.at_micros,
                            to_server,
                            EntryKind::Reset,
                            "we reset the connection (RST)",
                        );
                        rows.side(
                            log,
                            p.at_micros,
                            !to_server,
                            EntryKind::Reset,
                            "the peer reset the connection (RST)",
                        );
                    }
                }
                // The end of the capture: what is still waiting for a gap.
                for (stream, to_server) in [(&mut up, true), (&mut down, false)] {
                    stream.finish(last_at);
                    report.retransmitted += stream.retransmitted;
                    report.out_of_order += stream.out_of_order;
                    for piece in stream.take() {
                        match piece {
                            Piece::Data { at_micros, bytes } => {
                                flush(log, &mut pending);
                                let take = report.within(&mut budget, bytes.len() as u64);
                                if take > 0 {
                                    rows.data(log, at_micros, to_server, &bytes[..take as usize]);
                                }
                            }
                            Piece::Missing { at_micros, len } => {
                                flush(log, &mut pending);
                                report.missing_bytes += len;
                                rows.missing(log, at_micros, to_server, len);
                            }
                        }
                    }
                }
                flush(log, &mut pending);
            }
        }
    }
    let mut notes = format!(
        "Imported from the capture {source}: {} conversation{} between a client and {}.",
        chosen.len(),
        plural(chosen.len() as u64),
        server_addr
    );
    for &i in chosen.iter().take(20) {
        notes.push_str(&format!("\n- {}", found[i].describe()));
    }
    if chosen.len() > 20 {
        notes.push_str(&format!("\n- … and {} more", chosen.len() - 20));
    }
    notes.push_str("\n\nReplay it: `sockbench replay FILE --endpoint server` stands in for the server (a mock), `--endpoint client --target HOST:PORT` asks a real server again, with `--check` to compare its answers.");
    for (what, n) in [
        ("retransmitted segments dropped", report.retransmitted),
        ("out-of-order segments put in order", report.out_of_order),
        ("bytes missing from the capture", report.missing_bytes),
        (
            "packets cut short by the capture's snap length",
            report.truncated_packets,
        ),
        (
            "payload bytes left out beyond the import limit",
            report.left_out_bytes,
        ),
    ] {
        if n > 0 {
            notes.push_str(&format!("\n{n} {what}."));
        }
    }
    session.notes = notes;
    (session, report)
}

/// The log rows of one conversation: the client's side and the server's.
#[derive(Clone, Copy)]
struct Rows {
    c_ep: u32,
    s_ep: u32,
    c_peer: u32,
    s_peer: u32,
}

impl Rows {
    fn at(micros: i64) -> chrono::DateTime<chrono::Utc> {
        DateTime::from_timestamp_micros(micros).unwrap_or_default()
    }

    /// A payload: sent by one side, then received by the other.
    fn data(&self, log: &mut crate::model::TrafficLog, at: i64, to_server: bool, bytes: &[u8]) {
        let t = Self::at(at);
        if to_server {
            log.push(t, self.c_ep, self.c_peer, EntryKind::Sent, bytes);
            log.push(t, self.s_ep, self.s_peer, EntryKind::Received, bytes);
        } else {
            log.push(t, self.s_ep, self.s_peer, EntryKind::Sent, bytes);
            log.push(t, self.c_ep, self.c_peer, EntryKind::Received, bytes);
        }
    }

    /// A row on one side: the client's (`client`) or the server's.
    fn side(
        &self,
        log: &mut crate::model::TrafficLog,
        at: i64,
        client: bool,
        kind: EntryKind,
        detail: &str,
    ) {
        let (ep, peer) = if client {
            (self.c_ep, self.c_peer)
        } else {
            (self.s_ep, self.s_peer)
        };
        let peer = if kind == EntryKind::Connecting {
            NO_PEER
        } else {
            peer
        };
        log.push(Self::at(at), ep, peer, kind, detail.as_bytes());
    }

    /// The connection made: the server accepted `client`, the client connected.
    fn connected(
        &self,
        log: &mut crate::model::TrafficLog,
        at: i64,
        client: SocketAddr,
        why: &str,
    ) {
        self.side(log, at, false, EntryKind::Accepted, &client.to_string());
        self.side(
            log,
            at,
            true,
            EntryKind::Connected,
            &format!("from {client}{why}"),
        );
    }

    /// Bytes of one direction the capture never had, said on both sides.
    fn missing(&self, log: &mut crate::model::TrafficLog, at: i64, to_server: bool, len: u64) {
        let note = format!(
            "{len} byte{} {} are missing from the capture",
            plural(len),
            if to_server {
                "to the server"
            } else {
                "to the client"
            }
        );
        self.both(log, at, EntryKind::Note, &note);
    }

    fn both(&self, log: &mut crate::model::TrafficLog, at: i64, kind: EntryKind, detail: &str) {
        self.side(log, at, true, kind, detail);
        self.side(log, at, false, kind, detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use packets::TcpFlags;

    fn tcp(at: i64, src: &str, dst: &str, seq: u32, flags: &str, payload: &[u8]) -> Packet {
        Packet {
            at_micros: at,
            transport: Transport::Tcp,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            tcp: TcpFlags {
                seq,
                syn: flags.contains('S'),
                ack: flags.contains('A'),
                fin: flags.contains('F'),
                rst: flags.contains('R'),
            },
            payload: payload.to_vec(),
            truncated: false,
        }
    }

    const C: &str = "10.0.0.1:50000";
    const S: &str = "10.0.0.2:80";

    /// One connection: handshake, a request split in two and sent out of
    /// order with a retransmission, an answer, FIN both ways.
    fn connection(t: i64) -> Vec<Packet> {
        vec![
            tcp(t, C, S, 100, "S", b""),
            tcp(t + 1, S, C, 500, "SA", b""),
            tcp(t + 2, C, S, 105, "A", b"/x\n"),
            tcp(t + 3, C, S, 101, "A", b"GET "),
            tcp(t + 4, C, S, 101, "A", b"GET "),
            tcp(t + 5, S, C, 501, "A", b"hello"),
            tcp(t + 6, C, S, 108, "FA", b""),
            tcp(t + 7, S, C, 506, "FA", b""),
        ]
    }

    #[test]
    fn a_conversation_becomes_both_sides_of_a_session() {
        let mut packets = connection(1_000_000);
        // The same ports again after the first ended: a second connection.
        packets.extend(connection(2_000_000));
        packets.push(Packet {
            transport: Transport::Udp,
            ..tcp(3_000_000, "10.0.0.1:5353", "10.0.0.9:53", 0, "", b"q")
        });
        let (found, left_out) = conversations(&packets);
        assert_eq!(left_out, 0);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].client, C.parse().unwrap());
        assert_eq!(found[0].to_server, 11); // "GET " twice and "/x\n"
        assert_eq!(found[0].to_client, 5);
        assert!(found[0].handshake);
        assert_eq!(found[2].transport, Transport::Udp);
        assert_eq!(choose(&found, Choice::Largest).unwrap(), vec![0]);
        assert_eq!(choose(&found, Choice::Port(80)).unwrap(), vec![0, 1]);
        assert_eq!(
            choose(&found, Choice::Number(4)),
            Err(ImportError::NoSuchConversation { asked: 4, count: 3 })
        );
        assert_eq!(
            choose(&found, Choice::Port(81)),
            Err(ImportError::NoSuchPort(81))
        );

        let (session, report) = to_session(&packets, &found, &[0, 1], "t.pcap");
        assert_eq!(report.retransmitted, 2);
        assert_eq!(report.out_of_order, 2);
        let log = &session.log;
        let rows: Vec<(String, EntryKind, Vec<u8>)> = (0..log.len())
            .map(|i| {
                let e = log.entry(i).unwrap();
                (
                    log.endpoint_name(e).to_owned(),
                    e.kind,
                    log.data(i).to_vec(),
                )
            })
            .collect();
        let sent = |who: &str| -> Vec<Vec<u8>> {
            rows.iter()
                .filter(|(n, k, _)| n == who && *k == EntryKind::Sent)
                .map(|(_, _, b)| b.clone())
                .collect()
        };
        // The split, reordered, retransmitted request is one payload, whole.
        assert_eq!(
            sent("client"),
            vec![b"GET /x\n".to_vec(), b"GET /x\n".to_vec()]
        );
        assert_eq!(sent("server"), vec![b"hello".to_vec(), b"hello".to_vec()]);
        // Each side: its own view; an effect never before its cause.
        let kinds = |who: &str| -> Vec<EntryKind> {
            rows.iter()
                .filter(|(n, _, _)| n == who)
                .map(|(_, k, _)| *k)
                .take(7)
                .collect()
        };
        assert_eq!(
            kinds("client"),
            vec![
                EntryKind::Connecting,
                EntryKind::Connected,
                EntryKind::Sent,
                EntryKind::Received,
                EntryKind::HalfClosed,
                EntryKind::PeerClosed,
                EntryKind::Closed
            ]
        );
        assert_eq!(
            kinds("server")[..3],
            [EntryKind::Accepted, EntryKind::Received, EntryKind::Sent]
        );
        // It replays: the server as a mock of two connections, the client asking twice.
        let plans = crate::model::replay::plan_session(&session, None, None).unwrap();
        assert_eq!(plans.len(), 2);
        assert!(plans.iter().all(|p| p.conversations.len() == 2));
    }

    #[test]
    fn a_capture_that_began_mid_connection_says_so() {
        let packets = vec![
            tcp(10, S, C, 9000, "A", b"tail of an answer"),
            tcp(11, C, S, 7000, "A", b"next"),
            tcp(12, C, S, 7010, "A", b"after a gap"),
        ];
        let (found, _) = conversations(&packets);
        assert_eq!(found.len(), 1);
        assert!(!found[0].handshake);
        // The side on the higher port is taken for the client.
        assert_eq!(found[0].client, C.parse().unwrap());
        assert!(found[0].describe().contains("began before the capture"));
        let (session, report) = to_session(&packets, &found, &[0], "t");
        assert_eq!(report.missing_bytes, 6);
        assert!(session.notes.contains("6 bytes missing from the capture"));
        let log = &session.log;
        assert!(
            (0..log.len()).any(|i| log.detail(i).contains("6 bytes to the server are missing"))
        );
    }
}
