//! Packets out of a capture file: pcap or pcapng (read by `pcap-parser`),
//! their link layer, IP and TCP/UDP headers (sliced by `etherparse`), as
//! plain [`Packet`]s with a timestamp. Everything in the file is hostile:
//! malformed packets are counted and skipped, a malformed file ends the
//! reading with what was read so far and a note.

use std::net::{IpAddr, SocketAddr};

use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::{Linktype, PcapBlockOwned, PcapError, pcapng::Block};

/// The transport of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
}

/// TCP's header fields that reassembly needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags {
    pub seq: u32,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// One TCP segment or UDP datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Microseconds since the Unix epoch.
    pub at_micros: i64,
    pub transport: Transport,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// For TCP.
    pub tcp: TcpFlags,
    pub payload: Vec<u8>,
    /// The capture cut this packet short (snap length): its payload is partial.
    pub truncated: bool,
}

/// What reading a capture found besides its packets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Frames in the file.
    pub frames: u64,
    /// Frames that are not TCP or UDP over IP (ARP, ICMP, other link types, …).
    pub skipped: u64,
    /// IP fragments (not reassembled).
    pub fragments: u64,
    /// Frames whose headers did not parse.
    pub malformed: u64,
    /// Link types met that sockbench cannot read, by number.
    pub unknown_links: Vec<u32>,
    /// Why reading stopped before the end of the file, if it did.
    pub stopped: Option<String>,
}

/// Why a capture could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: crate::persist::ReadError,
    },
    #[error("{path}: not a capture file: it is neither pcap nor pcapng")]
    NotACapture { path: String },
    #[error("{path}: the capture is empty")]
    Empty { path: String },
    #[error("{path}: more than {limit} packets of TCP or UDP; cut the capture (editcap) first")]
    TooManyPackets { path: String, limit: usize },
}

/// The largest capture file read (bytes).
pub const CAPTURE_LIMIT: u64 = 1024 * 1024 * 1024;

/// The reading buffer: larger than any block a capture holds (snap lengths
/// stop at 256 KiB), and the bound on one block.
const READ_BUFFER: usize = 4 << 20;

/// The most TCP or UDP packets kept from one capture.
pub const PACKET_LIMIT: usize = 5_000_000;

/// Reads every TCP and UDP packet of the capture at `path`.
pub fn read_file(path: &std::path::Path) -> Result<(Vec<Packet>, ReadStats), CaptureError> {
    let shown = crate::model::escape_controls(&path.display().to_string()).into_owned();
    let bytes =
        crate::persist::read_bounded(path, CAPTURE_LIMIT, "capture file").map_err(|source| {
            CaptureError::Read {
                path: shown.clone(),
                source,
            }
        })?;
    read_bytes(&bytes, &shown)
}

/// Reads every TCP and UDP packet of a capture held in memory; `name` names
/// it in errors.
pub fn read_bytes(bytes: &[u8], name: &str) -> Result<(Vec<Packet>, ReadStats), CaptureError> {
    if bytes.is_empty() {
        return Err(CaptureError::Empty {
            path: name.to_owned(),
        });
    }
    let mut reader = match pcap_parser::create_reader(READ_BUFFER, bytes) {
        Ok(r) => r,
        Err(PcapError::Eof) => {
            return Err(CaptureError::Empty {
                path: name.to_owned(),
            });
        }
        Err(_) => {
            return Err(CaptureError::NotACapture {
                path: name.to_owned(),
            });
        }
    };
    let mut packets = Vec::new();
    let mut stats = ReadStats::default();
    // pcap: one link type and resolution; pcapng: per interface.
    let mut legacy: Option<(Linktype, bool)> = None;
    let mut interfaces: Vec<(Linktype, u64, i64)> = Vec::new();
    // (consumed, buffered) at the last refill: no progress twice means a
    // block larger than the buffer.
    let mut last_refill: Option<(usize, usize)> = None;
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                let frame: Option<(Linktype, i64, &[u8], bool)> = match &block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy = Some((h.network, h.is_nanosecond_precision()));
                        None
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let (link, nanos) = legacy.unwrap_or((Linktype::ETHERNET, false));
                        let sub = if nanos {
                            i64::from(b.ts_usec) / 1000
                        } else {
                            i64::from(b.ts_usec)
                        };
                        let at = i64::from(b.ts_sec) * 1_000_000 + sub;
                        let data = &b.data[..(b.caplen as usize).min(b.data.len())];
                        Some((link, at, data, b.caplen < b.origlen))
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                        interfaces.clear();
                        None
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let resolution = idb.ts_resolution().unwrap_or(1_000_000).max(1);
                        interfaces.push((idb.linktype, resolution, idb.ts_offset()));
                        None
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        match interfaces.get(epb.if_id as usize) {
                            Some(&(link, resolution, offset)) => {
                                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                                let micros = (u128::from(units) * 1_000_000
                                    / u128::from(resolution))
                                .min(i64::MAX as u128)
                                    as i64;
                                let at = micros.saturating_add(offset.saturating_mul(1_000_000));
                                let data = &epb.data[..(epb.caplen as usize).min(epb.data.len())];
                                Some((link, at, data, epb.caplen < epb.origlen))
                            }
                            None => {
                                stats.malformed += 1;
                                None
                            }
                        }
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        interfaces.first().map(|&(link, _, _)| {
                            let data = &spb.data[..(spb.origlen as usize).min(spb.data.len())];
                            (link, 0, data, (spb.origlen as usize) > spb.data.len())
                        })
                    }
                    PcapBlockOwned::NG(_) => None,
                };
                if let Some((link, at, data, truncated)) = frame {
                    stats.frames += 1;
                    match decode(link, data) {
                        Decoded::Packet(mut p) => {
                            p.at_micros = at;
                            p.truncated = truncated;
                            if packets.len() >= PACKET_LIMIT {
                                return Err(CaptureError::TooManyPackets {
                                    path: name.to_owned(),
                                    limit: PACKET_LIMIT,
                                });
                            }
                            packets.push(p);
                        }
                        Decoded::Skipped => stats.skipped += 1,
                        Decoded::Fragment => stats.fragments += 1,
                        Decoded::Malformed => stats.malformed += 1,
                        Decoded::UnknownLink(n) => {
                            stats.skipped += 1;
                            if !stats.unknown_links.contains(&n) && stats.unknown_links.len() < 8 {
                                stats.unknown_links.push(n);
                            }
                        }
                    }
                }
                last_refill = None;
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if reader.reader_exhausted() {
                    // A block cut off at the end of the file.
                    if !reader.data().is_empty() {
                        stats.stopped = Some(format!(
                            "the capture ends in the middle of a block ({} bytes left unread): it was cut short",
                            reader.data().len()
                        ));
                    }
                    break;
                }
                let here = (reader.consumed(), reader.data().len());
                if last_refill == Some(here) {
                    stats.stopped = Some(format!(
                        "a block of the capture is larger than {} MiB",
                        READ_BUFFER >> 20
                    ));
                    break;
                }
                last_refill = Some(here);
                if reader.refill().is_err() {
                    stats.stopped = Some("the capture could not be read to its end".into());
                    break;
                }
            }
            Err(e) => {
                stats.stopped = Some(format!(
                    "the capture is malformed after {} frames ({})",
                    stats.frames,
                    crate::model::escape_controls(
                        &format!("{e:?}").chars().take(80).collect::<String>()
                    )
                ));
                break;
            }
        }
    }
    Ok((packets, stats))
}

enum Decoded {
    Packet(Packet),
    Skipped,
    Fragment,
    Malformed,
    UnknownLink(u32),
}

/// The link layer, then IP, then TCP or UDP.
fn decode(link: Linktype, data: &[u8]) -> Decoded {
    let sliced = match link {
        Linktype::ETHERNET => SlicedPacket::from_ethernet(data),
        Linktype::LINUX_SLL => SlicedPacket::from_linux_sll(data),
        Linktype::LINUX_SLL2 => {
            // SLL2: protocol type (2), reserved (2), interface index (4),
            // ARPHRD (2), packet type (1), address length (1), address (8).
            if data.len() < 20 {
                return Decoded::Malformed;
            }
            let protocol = u16::from_be_bytes([data[0], data[1]]);
            SlicedPacket::from_ether_type(EtherType(protocol), &data[20..])
        }
        Linktype::NULL | Linktype::LOOP => {
            // A 4-byte address family: host order for NULL, network order for LOOP.
            if data.len() < 4 {
                return Decoded::Malformed;
            }
            let family = if link == Linktype::LOOP {
                u32::from_be_bytes([data[0], data[1], data[2], data[3]])
            } else {
                let le = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                if le < 256 {
                    le
                } else {
                    u32::from_be_bytes([data[0], data[1], data[2], data[3]])
                }
            };
            // AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30 by system.
            if !matches!(family, 2 | 10 | 24 | 28 | 30) {
                return Decoded::Skipped;
            }
            SlicedPacket::from_ip(&data[4..])
        }
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 => SlicedPacket::from_ip(data),
        other => return Decoded::UnknownLink(other.0 as u32),
    };
    let Ok(sliced) = sliced else {
        return Decoded::Malformed;
    };
    let (src_ip, dst_ip, fragmented): (IpAddr, IpAddr, bool) = match &sliced.net {
        Some(NetSlice::Ipv4(v4)) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
            v4.is_payload_fragmented(),
        ),
        Some(NetSlice::Ipv6(v6)) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
            v6.is_payload_fragmented(),
        ),
        _ => return Decoded::Skipped,
    };
    if fragmented {
        return Decoded::Fragment;
    }
    match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => Decoded::Packet(Packet {
            at_micros: 0,
            transport: Transport::Tcp,
            src: SocketAddr::new(src_ip, tcp.source_port()),
            dst: SocketAddr::new(dst_ip, tcp.destination_port()),
            tcp: TcpFlags {
                seq: tcp.sequence_number(),
                syn: tcp.syn(),
                ack: tcp.ack(),
                fin: tcp.fin(),
                rst: tcp.rst(),
            },
            payload: tcp.payload().to_vec(),
            truncated: false,
        }),
        Some(TransportSlice::Udp(udp)) => Decoded::Packet(Packet {
            at_micros: 0,
            transport: Transport::Udp,
            src: SocketAddr::new(src_ip, udp.source_port()),
            dst: SocketAddr::new(dst_ip, udp.destination_port()),
            tcp: TcpFlags::default(),
            payload: udp.payload().to_vec(),
            truncated: false,
        }),
        _ => Decoded::Skipped,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    /// A little-endian, microsecond pcap file of `frames` on `link` (a test
    /// fixture: the format is 24 bytes of header and 16 per record).
    pub(crate) fn pcap(link: u32, frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&link.to_le_bytes());
        for (at, data) in frames {
            out.extend_from_slice(&((at / 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((at % 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    pub(crate) fn ipv4_tcp(
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        flags: &str,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut b = PacketBuilder::ipv4(src.0, dst.0, 64).tcp(src.1, dst.1, seq, 1024);
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('F') {
            b = b.fin();
        }
        if flags.contains('R') {
            b = b.rst();
        }
        if flags.contains('A') {
            b = b.ack(1);
        }
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn every_link_type_gives_the_same_packet() {
        let ip = ipv4_tcp(([10, 0, 0, 1], 50000), ([10, 0, 0, 2], 80), 7, "A", b"GET");
        // Ethernet with a VLAN tag.
        let mut eth = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(etherparse::VlanId::try_new(10).unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(50000, 80, 7, 1024)
            .ack(1)
            .write(&mut eth, b"GET")
            .unwrap();
        // Linux cooked v1: packet type, ARPHRD, address length, address, protocol.
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&ip);
        // Linux cooked v2: protocol, reserved, interface, ARPHRD, type, length, address.
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        sll2.extend_from_slice(&ip);
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(&ip);
        let mut lo = 2u32.to_be_bytes().to_vec();
        lo.extend_from_slice(&ip);
        for (link, frame) in [
            (1, eth),
            (113, sll),
            (276, sll2),
            (0, null),
            (108, lo),
            (101, ip.clone()),
            (228, ip),
        ] {
            let (packets, stats) = read_bytes(&pcap(link, &[(1_700_000_000_000_001, frame)]), "t")
                .unwrap_or_else(|e| panic!("link {link}: {e}"));
            assert_eq!(packets.len(), 1, "link {link}: {stats:?}");
            let p = &packets[0];
            assert_eq!(p.src, "10.0.0.1:50000".parse().unwrap(), "link {link}");
            assert_eq!(p.dst, "10.0.0.2:80".parse().unwrap());
            assert_eq!(p.transport, Transport::Tcp);
            assert_eq!(p.payload, b"GET");
            assert_eq!(p.tcp.seq, 7);
            assert_eq!(p.at_micros, 1_700_000_000_000_001);
        }
    }

    #[test]
    fn ipv6_udp_and_what_is_skipped() {
        let mut v6 = Vec::new();
        let (a, b) = (
            "fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets(),
            "fe80::2".parse::<std::net::Ipv6Addr>().unwrap().octets(),
        );
        PacketBuilder::ipv6(a, b, 64)
            .udp(5353, 53)
            .write(&mut v6, b"q?")
            .unwrap();
        let arp = vec![0u8; 28];
        let (packets, stats) =
            read_bytes(&pcap(229, &[(1, v6), (2, arp), (3, vec![0x45])]), "t").unwrap();
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].transport, Transport::Udp);
        assert_eq!(packets[0].payload, b"q?");
        assert_eq!(stats.frames, 3);
        assert_eq!(stats.malformed, 2, "{stats:?}");
        let (_, stats) = read_bytes(&pcap(147, &[(1, vec![1, 2, 3])]), "t").unwrap();
        assert_eq!(stats.unknown_links, vec![147]);
    }

    #[test]
    fn broken_files_are_said_and_never_panic() {
        assert!(matches!(
            read_bytes(b"", "t"),
            Err(CaptureError::Empty { .. })
        ));
        assert!(matches!(
            read_bytes(b"this is no capture at all, just text", "t"),
            Err(CaptureError::NotACapture { .. })
        ));
        // A file cut in the middle of its second record keeps the first.
        let ip = ipv4_tcp(([127, 0, 0, 1], 1), ([127, 0, 0, 1], 2), 0, "A", b"abc");
        let whole = pcap(101, &[(1, ip.clone()), (2, ip)]);
        let cut = &whole[..whole.len() - 10];
        let (packets, stats) = read_bytes(cut, "t").unwrap();
        assert_eq!(packets.len(), 1);
        assert!(stats.stopped.is_some(), "{stats:?}");
        // Every prefix and a flipped byte anywhere: an answer, never a panic.
        for n in 0..whole.len() {
            let _ = read_bytes(&whole[..n], "t");
            let mut flipped = whole.clone();
            flipped[n] ^= 0xff;
            let _ = read_bytes(&flipped, "t");
        }
    }
}
