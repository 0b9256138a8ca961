//! The data plane's reader: a frame's addresses, protocol, ports and TCP flags (SCTP: the
//! chunk types IPVS reads).
//!
//! Ethernet II IPv4 frames, nearly all of them, are read by direct byte reads
//! ([`ipv4::read_frame`]);
//! the rest (VLAN tags, IPv6, IPsec AH) through the layers' `Repr` parsers. Both give the
//! answer etherparse 0.16's `SlicedPacket::from_ethernet` gives, `None` included: the tests
//! hold them to it. SCTP, which etherparse slices only to the IP payload, is read from that
//! payload: the ports of its common header and [`sctp::chunk_types`].

use std::net::{IpAddr, Ipv4Addr};

use super::ethernet::{self, ethertype};
use super::{be16, ip_proto, ipv4, ipv6, sctp, tcp, udp};

/// What IPVS reads of a TCP, UDP or SCTP packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// [`ip_proto::TCP`], [`ip_proto::UDP`] or [`ip_proto::SCTP`].
    pub protocol: u8,
    /// Source address.
    pub src: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// TCP flags byte (0 for UDP and SCTP).
    pub tcp_flags: tcp::TcpFlags,
    /// SCTP: the chunk types IPVS reads (zero for TCP and UDP).
    pub sctp: sctp::ChunkTypes,
    /// The IP packet's length from its header on (IPv4 total length, IPv6 40 + payload
    /// length): what the kernel's `skb->len` is at IPVS's hooks, Ethernet padding excluded.
    pub ip_len: u32,
}

/// The [`Flow`] of a frame; `None` when it has no TCP or UDP header etherparse would read,
/// nor an SCTP common header and first chunk header.
#[inline]
pub fn flow(frame: &[u8]) -> Option<Flow> {
    match flow_fast(frame) {
        Some(f) => f,
        None => flow_slow(frame),
    }
}

/// [`flow`] of an Ethernet II IPv4 frame by direct byte reads; `None` leaves the frame to
/// [`flow_slow`]: other EtherTypes and IPsec AH.
#[inline(always)]
fn flow_fast(frame: &[u8]) -> Option<Option<Flow>> {
    let ip = match ipv4::read_frame(frame)? {
        Ok(ip) => ip,
        Err(()) => return Some(None),
    };
    if ip.protocol == ip_proto::AUTH {
        return None;
    }
    if ip.fragmented {
        return Some(None);
    }
    Some(transport(
        ip.protocol,
        IpAddr::V4(ip.src),
        IpAddr::V4(ip.dst),
        ip.l4,
        ip.total_len as u32,
    ))
}

/// The ports (and TCP flags) of a TCP or UDP header, with etherparse's checks; the ports and
/// chunk types of an SCTP packet.
#[inline(always)]
fn transport(protocol: u8, src: IpAddr, dst: IpAddr, l4: &[u8], ip_len: u32) -> Option<Flow> {
    let mut chunks = sctp::ChunkTypes::default();
    let tcp_flags = match protocol {
        ip_proto::TCP => {
            let th = l4.get(..tcp::HEADER_LEN)?;
            let off = usize::from(th[12] >> 4) * 4;
            if off < tcp::HEADER_LEN || off > l4.len() {
                return None;
            }
            tcp::TcpFlags(th[13])
        }
        ip_proto::UDP => {
            let uh = l4.get(..udp::HEADER_LEN)?;
            let len = usize::from(be16(uh, 4));
            if len > l4.len() || (len != 0 && len < udp::HEADER_LEN) {
                return None;
            }
            tcp::TcpFlags(0)
        }
        ip_proto::SCTP => {
            chunks = sctp::chunk_types(l4)?;
            tcp::TcpFlags(0)
        }
        // ICMP or another protocol: no ports.
        _ => return None,
    };
    Some(Flow {
        protocol,
        src,
        sport: be16(l4, 0),
        dst,
        dport: be16(l4, 2),
        tcp_flags,
        sctp: chunks,
        ip_len,
    })
}

/// [`flow`] through the layers' parsers: VLAN tags, IPv6 extension headers, AH.
fn flow_slow(frame: &[u8]) -> Option<Flow> {
    let (protocol, src, dst, l4, ip_len) = ip_payload(frame)?;
    transport(protocol, src, dst, l4, ip_len)
}

/// The upper-layer protocol, addresses and payload of an IP frame (through VLAN tags, AH
/// and IPv6 extension headers) and the IP packet's length, `None` for a fragment or what
/// does not parse.
fn ip_payload(frame: &[u8]) -> Option<(u8, IpAddr, IpAddr, &[u8], u32)> {
    let (eth, payload) = ethernet::EthernetRepr::parse(frame).ok()?;
    let (t, payload) = ethernet::skip_vlans(eth.ethertype, payload).ok()?;
    match t {
        ethertype::IPV4 => {
            let packet = payload;
            let (ip, payload) = ipv4::Ipv4Repr::parse(packet).ok()?;
            let (protocol, l4) = ipv4::upper_layer(&ip, payload).ok()?;
            if ip.is_fragment() {
                return None;
            }
            // Parsed, so the header and its total length field are there.
            let len = u32::from(be16(packet, 2));
            Some((protocol, IpAddr::V4(ip.src), IpAddr::V4(ip.dst), l4, len))
        }
        ethertype::IPV6 => {
            let (ip, payload) = ipv6::Ipv6Repr::parse(payload).ok()?;
            let up = ipv6::upper_layer(ip.next_header, payload).ok()?;
            if up.fragmented {
                return None;
            }
            Some((
                up.protocol,
                IpAddr::V6(ip.src),
                IpAddr::V6(ip.dst),
                up.payload,
                ip.buffer_len() as u32,
            ))
        }
        _ => None,
    }
}

/// The payload of a UDP datagram over IPv4 or IPv6 (etherparse's `SlicedPacket` reading).
pub fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    let (protocol, _, _, l4, _) = ip_payload(frame)?;
    if protocol != ip_proto::UDP {
        return None;
    }
    udp::UdpRepr::parse(l4).ok().map(|(_, payload)| payload)
}

/// A UDP datagram over IPv4 in an Ethernet frame: IPv4 with DF, identification 0, TOS 0 and
/// `ttl`, UDP with its checksum (etherparse's `PacketBuilder` layout). `None` when it would
/// not fit an IPv4 packet.
pub fn udp_v4_frame(
    eth: ethernet::EthernetRepr,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    ttl: u8,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let u = udp::UdpRepr {
        src_port: src.1,
        dst_port: dst.1,
        payload_len: payload.len(),
        checksum: true,
    };
    let ip = ipv4::Ipv4Repr {
        src: src.0,
        dst: dst.0,
        protocol: ip_proto::UDP,
        ttl,
        tos: 0,
        ident: 0,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        payload_len: u.buffer_len(),
    };
    let mut f = vec![0; ethernet::HEADER_LEN + ip.buffer_len()];
    eth.emit(&mut f).ok()?;
    let l3 = &mut f[ethernet::HEADER_LEN..];
    ip.emit(l3).ok()?;
    let l4 = &mut l3[ipv4::HEADER_LEN..];
    l4[udp::HEADER_LEN..].copy_from_slice(payload);
    u.emit(l4, IpAddr::V4(src.0), IpAddr::V4(dst.0)).ok()?;
    Some(f)
}

#[cfg(test)]
mod tests;
