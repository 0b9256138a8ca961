//! Frame codecs the modelled hosts need, on [`lvs_core::wire`]: Ethernet II, ARP, the
//! IPv4/TCP segments of the modelled connections, IPv4/UDP datagrams and the ICMP port
//! unreachable a host without a UDP listener answers with. The segment reader and writer are
//! `wire`'s hand-written ones ([`Ipv4Segment`], the hottest code of a simulated hour); the
//! frames they leave are read through `wire`'s header parsers, and the tests check both
//! against etherparse.

use std::net::{IpAddr, Ipv4Addr};

use lvs_core::wire::ethernet::{self, EthernetRepr};
use lvs_core::wire::ipv4::{self, Ipv4Repr};
use lvs_core::wire::ipv6::{self, Ipv6Repr};
use lvs_core::wire::tcp::{self as wtcp, Ipv4Segment, TcpRepr};
use lvs_core::wire::udp::{self, UdpRepr};
use lvs_core::wire::{ip_proto, WireError};

pub use lvs_core::wire::arp::{ArpOp, ArpRepr as Arp};
pub use lvs_core::wire::ethernet::{is_group, Mac, BROADCAST};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = ethernet::ethertype::IPV4;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = ethernet::ethertype::IPV6;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = ethernet::ethertype::ARP;

/// Length of an Ethernet II header.
pub const ETH_HDR: usize = ethernet::HEADER_LEN;

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
    /// The IPv4 or TCP part does not parse.
    #[error("malformed IPv4/TCP: {0}")]
    Malformed(String),
}

/// Destination MAC of a frame, if it has an Ethernet header.
pub fn dst_mac(frame: &[u8]) -> Option<Mac> {
    ethernet::dst_mac(frame)
}

/// Source MAC of a frame.
pub fn src_mac(frame: &[u8]) -> Option<Mac> {
    ethernet::src_mac(frame)
}

/// EtherType of a frame.
pub fn ethertype(frame: &[u8]) -> Option<u16> {
    ethernet::ethertype_of(frame)
}

/// Prefix `payload` with an Ethernet II header.
pub fn ethernet(src: Mac, dst: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    EthernetRepr {
        dst,
        src,
        ethertype,
    }
    .frame(payload)
}

/// Copy of `frame` with new MAC addresses (what a router or a DR director does).
pub fn rewrite_macs(frame: &[u8], src: Mac, dst: Mac) -> Vec<u8> {
    let mut f = frame.to_vec();
    ethernet::set_macs(&mut f, src, dst);
    f
}

/// Read the ARP message of a frame (after the Ethernet header).
pub fn parse_arp(frame: &[u8]) -> Result<Arp, PacketError> {
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
    match Arp::parse(&frame[ETH_HDR..]) {
        Ok((a, _padding)) => Ok(a),
        Err(lvs_core::wire::arp::ArpParseError::Wire(_)) => Err(PacketError::Short(frame.len())),
        Err(lvs_core::wire::arp::ArpParseError::Format(f)) => Err(PacketError::Unsupported {
            what: "ARP hardware/protocol",
            value: f.htype.into(),
        }),
        Err(lvs_core::wire::arp::ArpParseError::Op(o)) => Err(PacketError::Unsupported {
            what: "ARP op",
            value: o.into(),
        }),
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
    #[inline]
    fn wire(self) -> wtcp::TcpFlags {
        wtcp::TcpFlags(
            u8::from(self.fin)
                | u8::from(self.syn) << 1
                | u8::from(self.rst) << 2
                | u8::from(self.psh) << 3
                | u8::from(self.ack) << 4,
        )
    }

    /// Decoded from the flags byte of a TCP header.
    #[inline]
    fn from_wire(b: wtcp::TcpFlags) -> TcpFlags {
        TcpFlags {
            fin: b.fin(),
            syn: b.syn(),
            rst: b.rst(),
            psh: b.psh(),
            ack: b.ack(),
        }
    }
}

/// The fields of one TCP segment (over IPv4 or IPv6) the models look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSeg<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
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

impl<'a> TcpSeg<'a> {
    /// The segment for `wire`'s IPv4 writer; `None` over IPv6.
    #[inline]
    fn wire(&self) -> Option<Ipv4Segment<'a>> {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (self.src, self.dst) else {
            return None;
        };
        Some(Ipv4Segment {
            src,
            dst,
            sport: self.sport,
            dport: self.dport,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags.wire(),
            payload: self.payload,
        })
    }

    #[inline]
    fn from_wire(s: Ipv4Segment<'a>) -> TcpSeg<'a> {
        TcpSeg {
            src: IpAddr::V4(s.src),
            dst: IpAddr::V4(s.dst),
            sport: s.sport,
            dport: s.dport,
            seq: s.seq,
            ack: s.ack,
            flags: TcpFlags::from_wire(s.flags),
            payload: s.payload,
        }
    }

    /// An Ethernet frame carrying this segment with the MAC addresses left zero (the stack
    /// fills them in once the next hop is resolved).
    pub fn to_unaddressed_frame(&self) -> Vec<u8> {
        match self.wire() {
            Some(w) => w.to_unaddressed_frame(),
            None => self.to_unaddressed_v6_frame(),
        }
    }

    /// [`TcpSeg::to_unaddressed_frame`] over IPv6: hop limit 64, traffic class and flow
    /// label 0, the TCP header as the IPv4 writer makes it (window 65535, no options, the
    /// acknowledgment number only with ACK). An address pair of mixed families gives an
    /// empty frame, which every reader refuses.
    fn to_unaddressed_v6_frame(&self) -> Vec<u8> {
        let (IpAddr::V6(src), IpAddr::V6(dst)) = (self.src, self.dst) else {
            return Vec::new();
        };
        let tcp = TcpRepr {
            src_port: self.sport,
            dst_port: self.dport,
            seq: self.seq,
            ack: if self.flags.ack { self.ack } else { 0 },
            flags: wtcp::TcpFlags(self.flags.wire().0 & 0x1f),
            window: u16::MAX,
            urgent: 0,
            header_len: wtcp::HEADER_LEN,
            payload_len: self.payload.len(),
        };
        let ip = Ipv6Repr {
            src,
            dst,
            next_header: ip_proto::TCP,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            payload_len: tcp.buffer_len(),
        };
        let at = ETH_HDR + ipv6::HEADER_LEN;
        let mut f = vec![0; at + tcp.buffer_len()];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        f[at + wtcp::HEADER_LEN..].copy_from_slice(self.payload);
        if ip.emit(&mut f[ETH_HDR..]).is_err()
            || tcp.emit(&mut f[at..], self.src, self.dst).is_err()
        {
            return Vec::new();
        }
        f
    }

    /// A whole Ethernet frame carrying this segment.
    pub fn to_frame(&self, src: Mac, dst: Mac) -> Vec<u8> {
        let mut f = self.to_unaddressed_frame();
        ethernet::set_macs(&mut f, src, dst);
        f
    }
}

/// Source and destination of an IPv4 or IPv6 frame, and its protocol number (an IPv6
/// header's next header, extension headers not walked; version checked, nothing else).
pub fn ip_addrs(frame: &[u8]) -> Option<(IpAddr, IpAddr, u8)> {
    match ethertype(frame)? {
        ETHERTYPE_IPV4 => ipv4_addrs(frame).map(|(s, d, p)| (IpAddr::V4(s), IpAddr::V4(d), p)),
        ETHERTYPE_IPV6 => {
            let ip = frame.get(ETH_HDR..ETH_HDR + ipv6::HEADER_LEN)?;
            if ip[0] >> 4 != 6 {
                return None;
            }
            let addr = |at: usize| -> Option<IpAddr> {
                let o: [u8; 16] = ip.get(at..at + 16)?.try_into().ok()?;
                Some(IpAddr::from(o))
            };
            Some((addr(8)?, addr(24)?, ip[6]))
        }
        _ => None,
    }
}

/// Source and destination of an IPv4 frame, and its protocol number (version checked,
/// nothing else).
pub fn ipv4_addrs(frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8)> {
    if ethertype(frame)? != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(ETH_HDR..ETH_HDR + ipv4::HEADER_LEN)?;
    if ip[0] >> 4 != 4 {
        return None;
    }
    Some((ipv4::addr_at(ip, 12), ipv4::addr_at(ip, 16), ip[9]))
}

/// IP protocol number of VRRP.
const IPPROTO_VRRP: u8 = 112;

/// True when `frame` is an IPv4 or IPv6 VRRP packet (a frame the VRRP process reads from
/// its socket, as opposed to the data plane's traffic).
pub fn is_vrrp(frame: &[u8]) -> bool {
    match ethertype(frame) {
        Some(ETHERTYPE_IPV4) => frame.get(ETH_HDR + 9) == Some(&IPPROTO_VRRP),
        Some(ethernet::ethertype::IPV6) => frame.get(ETH_HDR + 6) == Some(&IPPROTO_VRRP),
        _ => false,
    }
}

/// True when `frame` looks like a TCP SYN without ACK (a connection attempt) over IPv4, or
/// over IPv6 without extension headers, read straight from the flags byte; [`parse_tcp`]
/// is the check that validates.
pub fn is_tcp_syn(frame: &[u8]) -> bool {
    if ethertype(frame) == Some(ETHERTYPE_IPV6) {
        let flags = frame.get(ETH_HDR + ipv6::HEADER_LEN + 13);
        return frame.get(ETH_HDR + 6) == Some(&ip_proto::TCP)
            && flags.is_some_and(|f| f & 0x12 == 0x02);
    }
    wtcp::is_ipv4_syn(frame)
}

/// Read the TCP segment of an IPv4 frame.
pub fn parse_tcp(frame: &[u8]) -> Result<TcpSeg<'_>, PacketError> {
    match Ipv4Segment::parse_fast(frame) {
        Some(s) => Ok(TcpSeg::from_wire(s)),
        None => parse_tcp_slow(frame),
    }
}

/// [`parse_tcp`] through `wire`'s header parsers: the frames the fast reader leaves
/// (failed checks, other protocols, IPsec AH), with the reason.
/// The IPv4 header of an Ethernet II frame, its upper-layer protocol (past IPsec AH) and
/// that layer's bytes.
pub(crate) fn ipv4_upper(frame: &[u8]) -> Result<(Ipv4Repr, u8, &[u8]), PacketError> {
    let malformed = |e: WireError| PacketError::Malformed(e.to_string());
    let (eth, rest) = EthernetRepr::parse(frame).map_err(|_| PacketError::Short(frame.len()))?;
    if eth.ethertype != ETHERTYPE_IPV4 {
        return Err(PacketError::Unsupported {
            what: "ethertype",
            value: eth.ethertype.into(),
        });
    }
    let (ip, payload) = Ipv4Repr::parse(rest).map_err(malformed)?;
    let (proto, l4) = ipv4::upper_layer(&ip, payload).map_err(malformed)?;
    Ok((ip, proto, l4))
}

/// The IPv6 header of an Ethernet II frame, its upper-layer protocol (past extension
/// headers) and that layer's bytes.
fn ipv6_upper(frame: &[u8]) -> Result<(Ipv6Repr, u8, &[u8]), PacketError> {
    let malformed = |e: WireError| PacketError::Malformed(e.to_string());
    let (_, rest) = EthernetRepr::parse(frame).map_err(|_| PacketError::Short(frame.len()))?;
    let (ip, payload) = Ipv6Repr::parse(rest).map_err(malformed)?;
    let up = ipv6::upper_layer(ip.next_header, payload).map_err(malformed)?;
    Ok((ip, up.protocol, up.payload))
}

fn parse_tcp_slow(frame: &[u8]) -> Result<TcpSeg<'_>, PacketError> {
    let malformed = |e: WireError| PacketError::Malformed(e.to_string());
    let (src, dst, proto, l4) = if ethertype(frame) == Some(ETHERTYPE_IPV6) {
        let (ip, proto, l4) = ipv6_upper(frame)?;
        (IpAddr::V6(ip.src), IpAddr::V6(ip.dst), proto, l4)
    } else {
        let (ip, proto, l4) = ipv4_upper(frame)?;
        (IpAddr::V4(ip.src), IpAddr::V4(ip.dst), proto, l4)
    };
    if proto != ip_proto::TCP {
        return Err(PacketError::Unsupported {
            what: "IP protocol",
            value: proto.into(),
        });
    }
    let (t, payload) = TcpRepr::parse(l4).map_err(malformed)?;
    Ok(TcpSeg {
        src,
        dst,
        sport: t.src_port,
        dport: t.dst_port,
        seq: t.seq,
        ack: t.ack,
        flags: TcpFlags::from_wire(t.flags),
        payload,
    })
}

/// The transport protocol of a modelled service or workload.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// TCP: one connection per request.
    #[default]
    Tcp,
    /// UDP: one datagram per request, one back.
    Udp,
    /// SCTP: one association per request ([`crate::sctp`]).
    Sctp,
}

/// The fields of one UDP/IPv4 datagram the models look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpDgram<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Payload.
    pub payload: &'a [u8],
}

/// IP header fields every modelled datagram carries: TTL 64 and DF, as Linux sends a UDP
/// datagram that fits the path MTU (`IP_PMTUDISC_WANT`), and as the TCP segments are built.
pub(crate) fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    payload_len: usize,
) -> Ipv4Repr {
    Ipv4Repr {
        src,
        dst,
        protocol,
        ttl: 64,
        tos: 0,
        ident: 0,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        payload_len,
    }
}

impl UdpDgram<'_> {
    /// An Ethernet frame carrying this datagram (UDP checksum filled in, as Linux sends
    /// it) with the MAC addresses left zero; `None` when it does not fit one IPv4 packet.
    pub fn to_unaddressed_frame(&self) -> Option<Vec<u8>> {
        let udp = UdpRepr {
            src_port: self.sport,
            dst_port: self.dport,
            payload_len: self.payload.len(),
            checksum: true,
        };
        let ip = ipv4_header(self.src, self.dst, ip_proto::UDP, udp.buffer_len());
        u16::try_from(ip.buffer_len()).ok()?;
        let mut f = vec![0u8; ETH_HDR + ip.buffer_len()];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let at = ETH_HDR + ipv4::HEADER_LEN;
        f[at + udp::HEADER_LEN..].copy_from_slice(self.payload);
        udp.emit(&mut f[at..], self.src.into(), self.dst.into())
            .ok()?;
        ip.emit(&mut f[ETH_HDR..]).ok()?;
        Some(f)
    }
}

/// Read the UDP datagram of an IPv4 frame; a datagram whose checksum is wrong is an error
/// (the kernel drops it, `UDP_MIB_CSUMERRORS`), as is a fragment (not reassembled here).
pub fn parse_udp(frame: &[u8]) -> Result<UdpDgram<'_>, PacketError> {
    let malformed = |e: WireError| PacketError::Malformed(e.to_string());
    let (ip, proto, l4) = ipv4_upper(frame)?;
    if ip.is_fragment() {
        return Err(PacketError::Unsupported {
            what: "IPv4 fragment offset",
            value: ip.frag_offset.into(),
        });
    }
    if proto != ip_proto::UDP {
        return Err(PacketError::Unsupported {
            what: "IP protocol",
            value: proto.into(),
        });
    }
    let (u, data) = UdpRepr::parse(l4).map_err(malformed)?;
    udp::verify_checksum(ip.src.into(), ip.dst.into(), &l4[..u.buffer_len()]).map_err(malformed)?;
    Ok(UdpDgram {
        src: ip.src,
        dst: ip.dst,
        sport: u.src_port,
        dport: u.dst_port,
        payload: data,
    })
}

/// ICMP type "destination unreachable".
const ICMP_DEST_UNREACH: u8 = 3;
/// Its code "port unreachable".
const ICMP_PORT_UNREACH: u8 = 3;
/// ICMP header: type, code, checksum, four unused bytes.
const ICMP_HDR: usize = 8;

/// The ICMP port unreachable `icmp_send` (net/ipv4/icmp.c) builds for the IPv4 packet
/// `offending` (its header and what follows, as received): from `src`, to the packet's
/// source, quoting as much of it as fits in 576 bytes (RFC 1812 4.3.2.3, the kernel's
/// `576 - sizeof(iphdr) - sizeof(icmphdr)` room). MACs are left zero.
pub fn icmp_port_unreachable(src: Ipv4Addr, offending: &[u8]) -> Option<Vec<u8>> {
    let (orig, _) = Ipv4Repr::parse(offending).ok()?;
    let quoted = &offending[..offending
        .len()
        .min(576 - ipv4::HEADER_LEN - ICMP_HDR)
        .min(ipv4::HEADER_LEN + orig.payload_len)];
    let ip = ipv4_header(src, orig.src, ip_proto::ICMP, ICMP_HDR + quoted.len());
    // icmp_send sends the error with TOS 0xc0 (internetwork control) over the packet's TOS
    // bits; DF is not set on ICMP errors (ip_dont_fragment is false for the ICMP socket,
    // which uses IP_PMTUDISC_DONT).
    let ip = Ipv4Repr {
        tos: (orig.tos & 0x1e) | 0xc0,
        dont_frag: false,
        ..ip
    };
    let mut f = vec![0u8; ETH_HDR + ip.buffer_len()];
    f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let at = ETH_HDR + ipv4::HEADER_LEN;
    f[at] = ICMP_DEST_UNREACH;
    f[at + 1] = ICMP_PORT_UNREACH;
    f[at + ICMP_HDR..].copy_from_slice(quoted);
    let sum = lvs_core::wire::checksum::of(&[&f[at..]]);
    f[at + 2..at + 4].copy_from_slice(&sum.to_be_bytes());
    ip.emit(&mut f[ETH_HDR..]).ok()?;
    Some(f)
}

/// The UDP 4-tuple quoted by an ICMP port unreachable in an IPv4 frame, as the packet was
/// sent: (source, source port, destination, destination port); `None` for anything else.
pub fn parse_port_unreachable(frame: &[u8]) -> Option<(Ipv4Addr, u16, Ipv4Addr, u16)> {
    let (eth, rest) = EthernetRepr::parse(frame).ok()?;
    if eth.ethertype != ETHERTYPE_IPV4 {
        return None;
    }
    let (ip, payload) = Ipv4Repr::parse(rest).ok()?;
    if ip.protocol != ip_proto::ICMP || ip.is_fragment() || payload.len() < ICMP_HDR {
        return None;
    }
    if payload[0] != ICMP_DEST_UNREACH
        || payload[1] != ICMP_PORT_UNREACH
        || lvs_core::wire::checksum::of(&[payload]) != 0
    {
        return None;
    }
    let quoted = &payload[ICMP_HDR..];
    // Only the quoted header and the first 8 bytes of its payload are certain to be there.
    if quoted.len() < ipv4::HEADER_LEN || quoted[0] >> 4 != 4 {
        return None;
    }
    let hlen = ipv4::header_len(quoted);
    if quoted[9] != ip_proto::UDP || hlen < ipv4::HEADER_LEN || quoted.len() < hlen + 4 {
        return None;
    }
    let port = |at: usize| u16::from_be_bytes([quoted[hlen + at], quoted[hlen + at + 1]]);
    Some((
        ipv4::addr_at(quoted, 12),
        port(0),
        ipv4::addr_at(quoted, 16),
        port(2),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Ipv4Slice, TcpSlice};
    use proptest::prelude::*;

    const IPV4_HDR: usize = ipv4::HEADER_LEN;
    const IPPROTO_TCP: u8 = lvs_core::wire::ip_proto::TCP;

    /// The etherparse reader `parse_tcp` was before `wire`: the reference the tests hold it to.
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
            src: h.source_addr().into(),
            dst: h.destination_addr().into(),
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

    /// The reference `parse_tcp` must agree with wherever it answers.
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
        let eth = etherparse::PacketBuilder::ethernet2([0; 6], [0; 6]);
        let ip = match (seg.src, seg.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
            (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
            _ => panic!("mixed address families"),
        };
        let mut b = ip.tcp(seg.sport, seg.dport, seg.seq, 65535);
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
            src: Ipv4Addr::new(10, 0, 0, 1).into(),
            dst: Ipv4Addr::new(10, 0, 0, 2).into(),
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
            src: Ipv4Addr::new(1, 2, 3, 4).into(),
            dst: Ipv4Addr::new(5, 6, 7, 8).into(),
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
    fn udp_matches_etherparse_and_icmp_quotes_it() {
        let d = UdpDgram {
            src: Ipv4Addr::new(203, 0, 113, 10),
            dst: Ipv4Addr::new(10, 0, 0, 100),
            sport: 40000,
            dport: 53,
            payload: b"query-id",
        };
        let f = d.to_unaddressed_frame().unwrap();
        let mut reference = Vec::new();
        etherparse::PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4(d.src.octets(), d.dst.octets(), 64)
            .udp(40000, 53)
            .write(&mut reference, b"query-id")
            .unwrap();
        assert_eq!(f, reference);
        assert_eq!(parse_udp(&f), Ok(d.clone()));
        let mut bad = f.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(parse_udp(&bad).is_err(), "a wrong UDP checksum is dropped");
        let icmp = icmp_port_unreachable(d.dst, &f[ETH_HDR..]).unwrap();
        let ip = etherparse::Ipv4Slice::from_slice(&icmp[ETH_HDR..]).unwrap();
        assert_eq!(ip.header().source_addr(), d.dst);
        assert_eq!(ip.header().destination_addr(), d.src);
        let icmp_msg = etherparse::Icmpv4Slice::from_slice(ip.payload().payload).unwrap();
        assert_eq!((icmp_msg.type_u8(), icmp_msg.code_u8()), (3, 3));
        assert_eq!(
            icmp_msg.checksum(),
            icmp_msg.icmp_type().calc_checksum(icmp_msg.payload())
        );
        assert_eq!(
            parse_port_unreachable(&icmp),
            Some((d.src, 40000, d.dst, 53))
        );
        assert_eq!(parse_port_unreachable(&f), None);
    }

    #[test]
    fn arp_round_trips_and_rejects_short() {
        let a = Arp::gratuitous([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1));
        let f = a.to_frame([2, 0, 0, 0, 0, 1], BROADCAST);
        assert_eq!(f.len(), ETH_HDR + lvs_core::wire::arp::LEN);
        assert_eq!(parse_arp(&f), Ok(a));
        assert!(a.is_gratuitous());
        assert_eq!(parse_arp(&f[..20]), Err(PacketError::Short(20)));
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
        /// Built frames, IPv4 or IPv6, are byte for byte etherparse's, and read back to the
        /// same segment, addresses and SYN test.
        #[test]
        fn built_frames_match_builder_and_round_trip(
            (src, dst) in prop_oneof![
                any::<(u32, u32)>().prop_map(|(s, d)| (Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into())),
                any::<([u8; 16], [u8; 16])>().prop_map(|(s, d)| (IpAddr::from(s), IpAddr::from(d))),
            ],
            sport: u16, dport: u16, seq: u32, ack: u32,
            flags in flags_strategy(),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let seg = TcpSeg { src, dst, sport, dport, seq, ack, flags, payload: &payload };
            let f = seg.to_unaddressed_frame();
            prop_assert_eq!(&f, &builder_frame(&seg));
            let back = TcpSeg { ack: if flags.ack { ack } else { 0 }, ..seg.clone() };
            prop_assert_eq!(parse_tcp(&f), Ok(back.clone()));
            prop_assert_eq!(ip_addrs(&f), Some((src, dst, ip_proto::TCP)));
            prop_assert_eq!(is_tcp_syn(&f), flags.syn && !flags.ack);
            if src.is_ipv4() {
                // The IPv4 writer sizes its buffer exactly; the reference reader is IPv4's.
                prop_assert_eq!(f.len(), f.capacity());
                prop_assert_eq!(parse_tcp_reference(&f), Ok(back));
            }
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
                src: Ipv4Addr::new(10, 1, 2, 3).into(),
                dst: Ipv4Addr::new(10, 4, 5, 6).into(),
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
                src: Ipv4Addr::new(1, 2, 3, 4).into(),
                dst: Ipv4Addr::new(5, 6, 7, 8).into(),
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
