//! Frame codecs the modelled hosts need: Ethernet II, ARP (etherparse 0.16 has no ARP
//! packet type, so a small codec lives here) and IPv4/TCP. IPv4/TCP frames are built and
//! read by hand on the hot path (etherparse's header structs and checks cost several
//! hundred instructions a frame); etherparse reads the rare frames the fast reader leaves
//! to it, and the tests check both directions against etherparse.

use std::net::Ipv4Addr;

use etherparse::{Ipv4Slice, TcpSlice};

/// A MAC address.
pub type Mac = [u8; 6];

/// The Ethernet broadcast address.
pub const BROADCAST: Mac = [0xff; 6];

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;

/// Length of an Ethernet II header.
pub const ETH_HDR: usize = 14;

/// Length of an IPv4 header without options.
const IPV4_HDR: usize = 20;
/// Length of a TCP header without options.
const TCP_HDR: usize = 20;
/// IP protocol number of TCP.
const IPPROTO_TCP: u8 = 6;
/// IP protocol number of the IPsec authentication header, which etherparse looks through.
const IPPROTO_AH: u8 = 51;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PacketError {
    /// Shorter than its headers say.
    #[error("frame too short: {0} bytes")]
    Short(usize),
    /// Not a frame kind this codec reads.
    #[error("unsupported {what}: {value:#x}")]
    Unsupported {
        /// Which field.
        what: &'static str,
        /// Its value.
        value: u32,
    },
    /// etherparse refused the IPv4 or TCP part.
    #[error("malformed IPv4/TCP: {0}")]
    Malformed(String),
}

/// Destination MAC of a frame, if it has an Ethernet header.
pub fn dst_mac(frame: &[u8]) -> Option<Mac> {
    frame.get(0..6)?.try_into().ok()
}

/// Source MAC of a frame.
pub fn src_mac(frame: &[u8]) -> Option<Mac> {
    frame.get(6..12)?.try_into().ok()
}

/// EtherType of a frame.
pub fn ethertype(frame: &[u8]) -> Option<u16> {
    let b = frame.get(12..14)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// True for broadcast and multicast destinations (group bit set).
pub fn is_group(mac: Mac) -> bool {
    mac[0] & 1 == 1
}

/// Prefix `ip_packet` with an Ethernet II header.
pub fn ethernet(src: Mac, dst: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HDR + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Copy of `frame` with new MAC addresses (what a router or a DR director does).
pub fn rewrite_macs(frame: &[u8], src: Mac, dst: Mac) -> Vec<u8> {
    let mut f = frame.to_vec();
    if f.len() >= 12 {
        f[0..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
    }
    f
}

/// ARP operation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ArpOp {
    /// Who-has (1).
    Request,
    /// Is-at (2).
    Reply,
}

/// An Ethernet/IPv4 ARP packet (RFC 826).
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Arp {
    /// Request or reply.
    pub op: ArpOp,
    /// Sender hardware address.
    pub sha: Mac,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: Mac,
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

impl Arp {
    /// Length of the ARP body for Ethernet/IPv4.
    pub const LEN: usize = 28;

    /// A gratuitous ARP (request with sender = target address), as keepalived sends.
    pub fn gratuitous(mac: Mac, ip: Ipv4Addr) -> Arp {
        Arp {
            op: ArpOp::Request,
            sha: mac,
            spa: ip,
            tha: BROADCAST,
            tpa: ip,
        }
    }

    /// True when sender and target address are the same (Linux `is_garp`).
    pub fn is_gratuitous(&self) -> bool {
        self.spa == self.tpa
    }

    /// The ARP body.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
        b[2..4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        b[4] = 6;
        b[5] = 4;
        let op: u16 = match self.op {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
        };
        b[6..8].copy_from_slice(&op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sha);
        b[14..18].copy_from_slice(&self.spa.octets());
        b[18..24].copy_from_slice(&self.tha);
        b[24..28].copy_from_slice(&self.tpa.octets());
        b
    }

    /// A whole frame carrying this ARP packet from `src` to `dst`.
    pub fn to_frame(&self, src: Mac, dst: Mac) -> Vec<u8> {
        ethernet(src, dst, ETHERTYPE_ARP, &self.to_bytes())
    }

    /// Read the ARP body of a frame (after the Ethernet header).
    pub fn parse_frame(frame: &[u8]) -> Result<Arp, PacketError> {
        match ethertype(frame) {
            Some(ETHERTYPE_ARP) => {}
            Some(t) => {
                return Err(PacketError::Unsupported {
                    what: "ethertype",
                    value: t.into(),
                })
            }
            None => return Err(PacketError::Short(frame.len())),
        }
        let b = frame
            .get(ETH_HDR..ETH_HDR + Self::LEN)
            .ok_or(PacketError::Short(frame.len()))?;
        let htype = u16::from_be_bytes([b[0], b[1]]);
        let ptype = u16::from_be_bytes([b[2], b[3]]);
        if htype != 1 || ptype != ETHERTYPE_IPV4 || b[4] != 6 || b[5] != 4 {
            return Err(PacketError::Unsupported {
                what: "ARP hardware/protocol",
                value: htype.into(),
            });
        }
        let op = match u16::from_be_bytes([b[6], b[7]]) {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            o => {
                return Err(PacketError::Unsupported {
                    what: "ARP op",
                    value: o.into(),
                })
            }
        };
        let mac = |r: std::ops::Range<usize>| -> Mac {
            let mut m = [0u8; 6];
            m.copy_from_slice(&b[r]);
            m
        };
        let ip = |i: usize| Ipv4Addr::new(b[i], b[i + 1], b[i + 2], b[i + 3]);
        Ok(Arp {
            op,
            sha: mac(8..14),
            spa: ip(14),
            tha: mac(18..24),
            tpa: ip(24),
        })
    }
}

/// TCP flags the modelled stacks use.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// ACK.
    pub ack: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
    /// PSH.
    pub psh: bool,
}

impl TcpFlags {
    /// The flags byte of a TCP header (byte 13).
    fn wire_bits(self) -> u8 {
        u8::from(self.fin)
            | u8::from(self.syn) << 1
            | u8::from(self.rst) << 2
            | u8::from(self.psh) << 3
            | u8::from(self.ack) << 4
    }

    /// Decoded from the flags byte of a TCP header.
    fn from_wire(b: u8) -> TcpFlags {
        TcpFlags {
            fin: b & 0x01 != 0,
            syn: b & 0x02 != 0,
            rst: b & 0x04 != 0,
            psh: b & 0x08 != 0,
            ack: b & 0x10 != 0,
        }
    }
}

/// Adds `bytes` as big-endian 16-bit words (an odd last byte padded with zero) to the
/// running sum of the Internet checksum (RFC 1071). Summing 32-bit words and folding later
/// gives the same ones-complement result, since 2^16 = 1 modulo 0xffff.
fn sum_be_words(mut sum: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(4);
    for w in &mut words {
        sum += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let mut last = [0u8; 4];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    sum + u64::from(u32::from_be_bytes(last))
}

/// The Internet checksum of a running sum: folded to 16 bits with end-around carry, then
/// complemented (RFC 793/1071; 0 stays 0, as etherparse writes it for TCP).
fn internet_checksum(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves at most 16 bits.
    !(sum as u16)
}

/// The fields of one TCP/IPv4 segment the models look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSeg<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Payload.
    pub payload: &'a [u8],
}

impl TcpSeg<'_> {
    /// An Ethernet frame carrying this segment with the MAC addresses left zero (the stack
    /// fills them in once the next hop is resolved).
    pub fn to_unaddressed_frame(&self) -> Vec<u8> {
        // Headers are written by hand: etherparse's header structs and checksum helpers cost
        // several hundred instructions a frame, which showed in the simulator's profile.
        let mut h = [0u8; ETH_HDR + IPV4_HDR + TCP_HDR];
        h[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let tcp_len = TCP_HDR + self.payload.len();

        let t = &mut h[ETH_HDR + IPV4_HDR..];
        t[0..2].copy_from_slice(&self.sport.to_be_bytes());
        t[2..4].copy_from_slice(&self.dport.to_be_bytes());
        t[4..8].copy_from_slice(&self.seq.to_be_bytes());
        if self.flags.ack {
            t[8..12].copy_from_slice(&self.ack.to_be_bytes());
        }
        // Data offset 5 (no options), flags, window 65535; the checksum (16..18) is filled
        // in below and the urgent pointer (18..20) stays zero.
        t[12] = 5 << 4;
        t[13] = self.flags.wire_bits();
        t[14..16].copy_from_slice(&u16::MAX.to_be_bytes());

        let Ok(total_len) = u16::try_from(IPV4_HDR + tcp_len) else {
            // Payload over u16::MAX - 40 bytes: like the etherparse code this replaced, no
            // IPv4 header and a zero TCP checksum (never happens in the models; no panic).
            let mut f = Vec::with_capacity(ETH_HDR + tcp_len);
            f.extend_from_slice(&h[..ETH_HDR]);
            f.extend_from_slice(&h[ETH_HDR + IPV4_HDR..]);
            f.extend_from_slice(self.payload);
            return f;
        };

        let (src, dst) = (self.src.octets(), self.dst.octets());
        let ip = &mut h[ETH_HDR..ETH_HDR + IPV4_HDR];
        ip[0] = 0x45; // version 4, IHL 5
        ip[2..4].copy_from_slice(&total_len.to_be_bytes());
        ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF, fragment offset 0
        ip[8] = 64; // TTL
        ip[9] = IPPROTO_TCP;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let ip_sum = internet_checksum(sum_be_words(0, ip));
        ip[10..12].copy_from_slice(&ip_sum.to_be_bytes());

        // Pseudo-header: addresses, zero, protocol, TCP length (fits: it is below total_len).
        let tcp_len_be = (total_len - IPV4_HDR as u16).to_be_bytes();
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&src);
        pseudo[4..8].copy_from_slice(&dst);
        pseudo[9] = IPPROTO_TCP;
        pseudo[10..12].copy_from_slice(&tcp_len_be);
        let t = &mut h[ETH_HDR + IPV4_HDR..];
        let sum = sum_be_words(sum_be_words(sum_be_words(0, &pseudo), t), self.payload);
        t[16..18].copy_from_slice(&internet_checksum(sum).to_be_bytes());

        let mut f = Vec::with_capacity(h.len() + self.payload.len());
        f.extend_from_slice(&h);
        f.extend_from_slice(self.payload);
        f
    }

    /// A whole Ethernet frame carrying this segment.
    pub fn to_frame(&self, src: Mac, dst: Mac) -> Vec<u8> {
        let mut f = self.to_unaddressed_frame();
        f[0..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f
    }
}

/// Source and destination of an IPv4 frame, and its protocol number.
pub fn ipv4_addrs(frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8)> {
    if ethertype(frame)? != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(ETH_HDR..ETH_HDR + 20)?;
    if ip[0] >> 4 != 4 {
        return None;
    }
    Some((
        Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        ip[9],
    ))
}

/// True when `frame` looks like an IPv4 TCP SYN without ACK (a connection attempt), read
/// straight from the flags byte; [`parse_tcp`] is the check that validates.
pub fn is_tcp_syn(frame: &[u8]) -> bool {
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    if ethertype(frame) != Some(ETHERTYPE_IPV4) || frame.get(ETH_HDR + 9) != Some(&6) {
        return false;
    }
    let Some(ihl) = frame.get(ETH_HDR).map(|b| usize::from(b & 0x0f) * 4) else {
        return false;
    };
    frame
        .get(ETH_HDR + ihl + 13)
        .is_some_and(|f| f & (SYN | ACK) == SYN)
}

/// Read the TCP segment of an IPv4 frame.
pub fn parse_tcp(frame: &[u8]) -> Result<TcpSeg<'_>, PacketError> {
    match parse_tcp_fast(frame) {
        Some(r) => r,
        None => parse_tcp_etherparse(frame),
    }
}

/// [`parse_tcp`] by direct byte reads for the frames the models exchange: `None` leaves the
/// frame to [`parse_tcp_etherparse`] (every rejection except a plain non-TCP protocol, and
/// IPsec AH). The checks are those of etherparse 0.16's `Ipv4Slice::from_slice` and
/// `TcpSlice::from_slice`; like them, it ignores the fragment fields and reads what follows
/// the IPv4 header as TCP.
fn parse_tcp_fast(frame: &[u8]) -> Option<Result<TcpSeg<'_>, PacketError>> {
    if ethertype(frame)? != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = &frame[ETH_HDR..];
    let ih = ip.get(..IPV4_HDR)?;
    let ip_hdr_len = usize::from(ih[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([ih[2], ih[3]]));
    // Version 4, IHL >= 5, header <= total length <= bytes present.
    if ih[0] >> 4 != 4 || ip_hdr_len < IPV4_HDR || total_len < ip_hdr_len || total_len > ip.len() {
        return None;
    }
    match ih[9] {
        IPPROTO_TCP => {}
        IPPROTO_AH => return None,
        proto => {
            return Some(Err(PacketError::Unsupported {
                what: "IP protocol",
                value: proto.into(),
            }))
        }
    }
    let tcp = &ip[ip_hdr_len..total_len];
    let th = tcp.get(..TCP_HDR)?;
    let tcp_hdr_len = usize::from(th[12] >> 4) * 4;
    // Data offset >= 5, header <= bytes the IPv4 total length leaves.
    if tcp_hdr_len < TCP_HDR || tcp_hdr_len > tcp.len() {
        return None;
    }
    let be32 = |i: usize| u32::from_be_bytes([th[i], th[i + 1], th[i + 2], th[i + 3]]);
    Some(Ok(TcpSeg {
        src: Ipv4Addr::new(ih[12], ih[13], ih[14], ih[15]),
        dst: Ipv4Addr::new(ih[16], ih[17], ih[18], ih[19]),
        sport: u16::from_be_bytes([th[0], th[1]]),
        dport: u16::from_be_bytes([th[2], th[3]]),
        seq: be32(4),
        ack: be32(8),
        flags: TcpFlags::from_wire(th[13]),
        payload: &tcp[tcp_hdr_len..],
    }))
}

/// [`parse_tcp`] through etherparse: the frames [`parse_tcp_fast`] leaves, and the
/// reference the tests compare it with.
fn parse_tcp_etherparse(frame: &[u8]) -> Result<TcpSeg<'_>, PacketError> {
    match ethertype(frame) {
        Some(ETHERTYPE_IPV4) => {}
        Some(t) => {
            return Err(PacketError::Unsupported {
                what: "ethertype",
                value: t.into(),
            })
        }
        None => return Err(PacketError::Short(frame.len())),
    }
    let rest = frame
        .get(ETH_HDR..)
        .ok_or(PacketError::Short(frame.len()))?;
    let ip = Ipv4Slice::from_slice(rest).map_err(|e| PacketError::Malformed(e.to_string()))?;
    let proto = ip.payload_ip_number().0;
    if proto != 6 {
        return Err(PacketError::Unsupported {
            what: "IP protocol",
            value: proto.into(),
        });
    }
    let h = ip.header();
    let tcp = TcpSlice::from_slice(ip.payload().payload)
        .map_err(|e| PacketError::Malformed(e.to_string()))?;
    Ok(TcpSeg {
        src: h.source_addr(),
        dst: h.destination_addr(),
        sport: tcp.source_port(),
        dport: tcp.destination_port(),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: TcpFlags {
            syn: tcp.syn(),
            ack: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
            psh: tcp.psh(),
        },
        payload: tcp.payload(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The etherparse-based reader `parse_tcp` used before the fast path; it is kept as the
    /// fallback, so the fast path must agree with it wherever it answers.
    fn parse_tcp_reference(frame: &[u8]) -> Result<TcpSeg<'_>, PacketError> {
        parse_tcp_etherparse(frame)
    }

    /// Same `Ok` value, or errors of the same variant (Malformed messages may differ).
    fn same_outcome(
        a: &Result<TcpSeg<'_>, PacketError>,
        b: &Result<TcpSeg<'_>, PacketError>,
    ) -> bool {
        match (a, b) {
            (Ok(x), Ok(y)) => x == y,
            (Err(PacketError::Malformed(_)), Err(PacketError::Malformed(_))) => true,
            (Err(x), Err(y)) => x == y,
            _ => false,
        }
    }

    /// etherparse's `PacketBuilder` frame for `seg` (zero MACs).
    fn builder_frame(seg: &TcpSeg<'_>) -> Vec<u8> {
        let mut b = etherparse::PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4(seg.src.octets(), seg.dst.octets(), 64)
            .tcp(seg.sport, seg.dport, seg.seq, 65535);
        if seg.flags.syn {
            b = b.syn();
        }
        if seg.flags.ack {
            b = b.ack(seg.ack);
        }
        if seg.flags.fin {
            b = b.fin();
        }
        if seg.flags.rst {
            b = b.rst();
        }
        if seg.flags.psh {
            b = b.psh();
        }
        let mut out = Vec::new();
        b.write(&mut out, seg.payload).unwrap();
        out
    }

    fn flags_strategy() -> impl Strategy<Value = TcpFlags> {
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(syn, ack, fin, rst, psh)| TcpFlags {
                syn,
                ack,
                fin,
                rst,
                psh,
            })
    }

    #[test]
    fn largest_payload_matches_builder_and_oversized_is_headerless() {
        let payload = vec![0xa5u8; usize::from(u16::MAX) - 40];
        let mut seg = TcpSeg {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            sport: 1234,
            dport: 80,
            seq: 1,
            ack: 2,
            flags: TcpFlags {
                ack: true,
                ..TcpFlags::default()
            },
            payload: &payload,
        };
        let f = seg.to_unaddressed_frame();
        assert_eq!(f, builder_frame(&seg));
        assert_eq!(parse_tcp(&f), Ok(seg.clone()));

        // One byte more: what the etherparse-based builder wrote (its Ipv4Header::new
        // refused the length): Ethernet header, TCP header with checksum 0, payload.
        let big = vec![0xa5u8; usize::from(u16::MAX) - 39];
        seg.payload = &big;
        let mut tcp = etherparse::TcpHeader::new(1234, 80, 1, 65535);
        tcp.ack = true;
        tcp.acknowledgment_number = 2;
        let mut expected = vec![0u8; 12];
        expected.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        tcp.write(&mut expected).unwrap();
        expected.extend_from_slice(&big);
        assert_eq!(seg.to_unaddressed_frame(), expected);
    }

    /// A segment from 1.2.3.4:40000 to 5.6.7.8:80 with ACK (and PSH if `psh`).
    fn sample_seg(psh: bool, payload: &[u8]) -> TcpSeg<'_> {
        TcpSeg {
            src: Ipv4Addr::new(1, 2, 3, 4),
            dst: Ipv4Addr::new(5, 6, 7, 8),
            sport: 40000,
            dport: 80,
            seq: 7,
            ack: 9,
            flags: TcpFlags {
                ack: true,
                psh,
                ..TcpFlags::default()
            },
            payload,
        }
    }

    #[test]
    fn unusual_headers_parse_like_etherparse() {
        let seg = sample_seg(false, b"0123456789abcdef");
        let f = seg.to_unaddressed_frame();
        let mut cases = Vec::new();
        // Fragments: more-fragments set, and a non-zero offset.
        for (b20, b21) in [(0x20, 0), (0x00, 0x10), (0x3f, 0xff)] {
            let mut g = f.clone();
            g[20] = b20;
            g[21] = b21;
            cases.push(g);
        }
        // IHL 6 (four payload bytes taken as IPv4 options), IHL 15, IHL 0 to 4, version 6.
        for ihl in [0x46, 0x4f, 0x40, 0x41, 0x42, 0x43, 0x44, 0x65] {
            let mut g = f.clone();
            g[14] = ihl;
            cases.push(g);
        }
        // TCP data offset 6 and 15, and 4 (too small).
        for off in [0x60, 0xf0, 0x40] {
            let mut g = f.clone();
            g[46] = off;
            cases.push(g);
        }
        // IPsec AH, UDP, total length cutting the TCP header, and cutting the payload (the
        // bytes past it are not payload).
        for (i, v) in [(23, 51), (23, 17), (17, 30), (17, 50)] {
            let mut g = f.clone();
            g[i] = v;
            cases.push(g);
        }
        let mut g = f.clone();
        g.extend_from_slice(b"trailer");
        cases.push(g);
        for g in &cases {
            let (fast, reference) = (parse_tcp(g), parse_tcp_reference(g));
            assert!(
                same_outcome(&fast, &reference),
                "{g:02x?}: {fast:?} vs {reference:?}"
            );
        }
    }

    #[test]
    fn arp_round_trips_and_rejects_short() {
        let a = Arp::gratuitous([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1));
        let f = a.to_frame([2, 0, 0, 0, 0, 1], BROADCAST);
        assert_eq!(f.len(), ETH_HDR + Arp::LEN);
        assert_eq!(Arp::parse_frame(&f), Ok(a));
        assert!(a.is_gratuitous());
        assert_eq!(Arp::parse_frame(&f[..20]), Err(PacketError::Short(20)));
    }

    #[test]
    fn tcp_round_trips() {
        let seg = sample_seg(true, b"GET");
        let f = seg.to_frame([2; 6], [4; 6]);
        assert_eq!(parse_tcp(&f), Ok(seg));
        // Byte for byte what etherparse's builder makes (checksums included).
        let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([1, 2, 3, 4], [5, 6, 7, 8], 64)
            .tcp(40000, 80, 7, 65535)
            .ack(9)
            .psh();
        let mut reference = Vec::new();
        b.write(&mut reference, b"GET").unwrap();
        assert_eq!(f, reference);
        assert_eq!(
            ipv4_addrs(&f),
            Some((Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8), 6))
        );
        assert!(parse_tcp(&f[..30]).is_err());
    }

    proptest! {
        /// Built frames are byte for byte etherparse's, and read back to the same segment.
        #[test]
        fn built_frames_match_builder_and_round_trip(
            src: u32, dst: u32, sport: u16, dport: u16, seq: u32, ack: u32,
            flags in flags_strategy(),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let seg = TcpSeg {
                src: Ipv4Addr::from(src),
                dst: Ipv4Addr::from(dst),
                sport,
                dport,
                seq,
                ack,
                flags,
                payload: &payload,
            };
            let f = seg.to_unaddressed_frame();
            prop_assert_eq!(&f, &builder_frame(&seg));
            prop_assert_eq!(f.len(), f.capacity());
            let back = TcpSeg { ack: if flags.ack { ack } else { 0 }, ..seg.clone() };
            prop_assert_eq!(parse_tcp(&f), Ok(back.clone()));
            prop_assert_eq!(parse_tcp_reference(&f), Ok(back));
        }

        /// Any bytes at all, with the Ethernet/IPv4 start forced or not, read the same as
        /// through etherparse.
        #[test]
        fn parse_agrees_with_reference_on_junk(
            mut junk in proptest::collection::vec(any::<u8>(), 0..120),
            shape in 0u8..3,
        ) {
            if shape >= 1 && junk.len() >= ETH_HDR {
                junk[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            }
            if shape >= 2 && junk.len() >= ETH_HDR + IPV4_HDR {
                junk[ETH_HDR] = 0x45;
                junk[ETH_HDR + 9] = IPPROTO_TCP;
            }
            let (fast, reference) = (parse_tcp(&junk), parse_tcp_reference(&junk));
            prop_assert!(same_outcome(&fast, &reference), "{:?} vs {:?}", fast, reference);
        }

        /// Valid frames with a few bytes of the headers overwritten and perhaps cut short
        /// read the same as through etherparse.
        #[test]
        fn parse_agrees_with_reference_on_damaged_frames(
            seq: u32, ack: u32,
            flags in flags_strategy(),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            damage in proptest::collection::vec((0usize..60, any::<u8>(), 0u8..3), 0..4),
            cut in proptest::option::of(0usize..260),
        ) {
            let seg = TcpSeg {
                src: Ipv4Addr::new(10, 1, 2, 3),
                dst: Ipv4Addr::new(10, 4, 5, 6),
                sport: 40000,
                dport: 80,
                seq,
                ack,
                flags,
                payload: &payload,
            };
            let mut f = seg.to_unaddressed_frame();
            lvs_core::fuzz::damage(&mut f, &damage);
            if let Some(n) = cut {
                f.truncate(n);
            }
            let (fast, reference) = (parse_tcp(&f), parse_tcp_reference(&f));
            prop_assert!(same_outcome(&fast, &reference), "{:?} vs {:?}", fast, reference);
        }

        /// The fast SYN test agrees with a full parse, for every flag combination and for
        /// any bytes at all.
        #[test]
        fn syn_test_agrees_with_parse(
            syn: bool, ack: bool, fin: bool, rst: bool, psh: bool,
            junk in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let seg = TcpSeg {
                src: Ipv4Addr::new(1, 2, 3, 4),
                dst: Ipv4Addr::new(5, 6, 7, 8),
                sport: 40000,
                dport: 80,
                seq: 7,
                ack: 9,
                flags: TcpFlags { syn, ack, fin, rst, psh },
                payload: b"",
            };
            let f = seg.to_frame([2; 6], [4; 6]);
            prop_assert_eq!(is_tcp_syn(&f), syn && !ack);
            let parsed = parse_tcp(&junk).map(|s| s.flags.syn && !s.flags.ack);
            if let Ok(is_syn) = parsed {
                prop_assert_eq!(is_tcp_syn(&junk), is_syn);
            }
        }
    }
}
