//! Forwarding methods as pure packet transforms: DR, NAT, TUN (IPIP, GUE, GRE).
//!
//! Reference: Linux 6.1 `ip_vs_xmit.c` (`ip_vs_dr_xmit`, `ip_vs_nat_xmit`,
//! `ip_vs_tunnel_xmit` with `ipvs_gue_encap` / `ipvs_gre_encap`) and the
//! protocols' `dnat_handler` / `snat_handler`. Frames come in as Ethernet II
//! bytes, are read and written with [`crate::wire`], and a new frame comes out. DR and NAT
//! take either family (`ip_vs_nat_xmit_v6` beside `ip_vs_nat_xmit`); TUN tunnels IPv4 in IPv4
//! and IPv6 in IPv6 (`tun`, `tun6`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::wire::ethernet::{self, ethertype, EthernetRepr};
use crate::wire::ipv4::{self, Ipv4Repr};
use crate::wire::ipv6::{self, Ipv6Repr};
use crate::wire::sctp::{self, SctpRepr};
use crate::wire::tcp::{self, TcpRepr};
use crate::wire::tunnel::{self, EncapRepr};
use crate::wire::udp::{self, UdpRepr};
use crate::wire::{be16, ip_proto, WireError};

use super::TunnelType;

/// Why a frame cannot be forwarded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FwdError {
    /// The frame does not parse (truncated, bad lengths, ...).
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// Not an Ethernet II frame carrying IP.
    #[error("not an IP over Ethernet II frame")]
    NotIp,
    /// `tun` (IPv4 outer header) was handed an IPv6 packet: IPv6 in IPv4 is not built.
    #[error("only IPv4 is supported by this method")]
    NotIpv4,
    /// NAT's new address is not of the packet's family.
    #[error("the new address is not of the packet's IP family")]
    Family,
    /// NAT needs a whole TCP, UDP or SCTP header (not a fragment, not another protocol).
    #[error("NAT needs an unfragmented TCP, UDP or SCTP packet")]
    NotTcpUdp,
    /// IPv4 extension headers (AH) cannot be rewritten.
    #[error("IPv4 authentication header present")]
    Extensions,
    /// The result would not fit an IPv4 packet.
    #[error("packet too large to encapsulate")]
    TooBig,
    /// The packet has no hop left (TTL or hop limit 1 or 0): the kernel drops it and answers
    /// ICMP time exceeded.
    #[error("TTL exceeded")]
    TtlExceeded,
}

fn malformed(e: WireError) -> FwdError {
    FwdError::Malformed(e.to_string())
}

/// `decrement_ttl` of `__ip_vs_get_out_rt`, which every method passes on its way to a
/// real server that is not local: the packet loses one hop, and one arriving with none
/// left is dropped. IPv4's header checksum is updated incrementally as
/// `ip_decrease_ttl` does, so the bytes are the kernel's.
fn decrement_ttl(ethertype: u16, ip: &mut [u8]) -> Result<(), FwdError> {
    let (at, min) = match ethertype {
        ethertype::IPV4 => (8, ipv4::HEADER_LEN),
        _ => (7, crate::wire::ipv6::HEADER_LEN),
    };
    if ip.len() < min {
        return Err(FwdError::Malformed("IP header cut short".into()));
    }
    if ip[at] <= 1 {
        return Err(FwdError::TtlExceeded);
    }
    ip[at] -= 1;
    if ethertype == ethertype::IPV4 {
        let check = u32::from(be16(ip, 10)) + 0x0100;
        let check = check + u32::from(check >= 0xffff);
        ip[10..12].copy_from_slice(&(check as u16).to_be_bytes());
    }
    Ok(())
}

/// DR (`ip_vs_dr_xmit`): the same IP packet, one hop older, addressed at layer 2 to the
/// real server.
///
/// Nothing else above layer 2 is read or rewritten (IPVS parsed the packet before choosing
/// the real server), so only the Ethernet header and the IP header's length are checked:
/// untagged, carrying IPv4 or IPv6. The frame's buffer is reused.
#[inline]
pub fn dr(mut frame: Vec<u8>, director_mac: [u8; 6], rs_mac: [u8; 6]) -> Result<Vec<u8>, FwdError> {
    let (eth, _) = EthernetRepr::parse(&frame).map_err(malformed)?;
    if eth.ethertype != ethertype::IPV4 && eth.ethertype != ethertype::IPV6 {
        return Err(FwdError::NotIp);
    }
    decrement_ttl(eth.ethertype, &mut frame[ethernet::HEADER_LEN..])?;
    ethernet::set_macs(&mut frame, director_mac, rs_mac);
    Ok(frame)
}

/// An untagged Ethernet IPv4 frame that parses all the way to its transport header.
struct Parsed {
    /// Length of the IPv4 header, options included.
    hlen: usize,
    /// Header and payload.
    total: usize,
    /// The IPv4 header.
    ip: Ipv4Repr,
    /// TCP, UDP or SCTP, when the packet is not a fragment and carries one.
    transport: Option<u8>,
}

/// Read `frame` as NAT and TUN need it: an untagged IPv4 frame whose headers all parse.
fn parse(frame: &[u8]) -> Result<Parsed, FwdError> {
    let (eth, payload) = EthernetRepr::parse(frame).map_err(malformed)?;
    match eth.ethertype {
        ethertype::IPV4 => {}
        ethertype::IPV6 => return Err(FwdError::NotIpv4),
        _ => return Err(FwdError::NotIp),
    }
    let (ip, ip_payload) = Ipv4Repr::parse(payload).map_err(malformed)?;
    let (proto, l4) = ipv4::upper_layer(&ip, ip_payload).map_err(malformed)?;
    let transport = match proto {
        _ if ip.is_fragment() => None,
        ip_proto::TCP => TcpRepr::parse(l4).map(|_| Some(proto)).map_err(malformed)?,
        ip_proto::UDP => UdpRepr::parse(l4).map(|_| Some(proto)).map_err(malformed)?,
        ip_proto::SCTP => SctpRepr::parse(l4)
            .map(|_| Some(proto))
            .map_err(malformed)?,
        _ => None,
    };
    let hlen = ipv4::header_len(payload);
    Ok(Parsed {
        hlen,
        total: hlen + ip.payload_len,
        ip,
        transport,
    })
}

/// Which fields NAT rewrites.
#[derive(Copy, Clone)]
enum Rewrite {
    /// Destination address and port (inbound).
    Dst(SocketAddr),
    /// Source address and port (outbound).
    Src(SocketAddr),
}

impl Rewrite {
    fn to(self) -> SocketAddr {
        match self {
            Rewrite::Dst(to) | Rewrite::Src(to) => to,
        }
    }

    /// Where the port sits in the transport header.
    fn port_at(self) -> usize {
        match self {
            Rewrite::Dst(_) => 2,
            Rewrite::Src(_) => 0,
        }
    }
}

/// NAT: a copy of the IP packet with one address and port rewritten and every checksum
/// recomputed, in a frame from `src_mac` to `dst_mac`.
fn nat(
    frame: &[u8],
    rewrite: Rewrite,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
) -> Result<Vec<u8>, FwdError> {
    let (eth, payload) = EthernetRepr::parse(frame).map_err(malformed)?;
    let (mut out, l4_at, proto) = match (eth.ethertype, rewrite.to()) {
        (ethertype::IPV4, SocketAddr::V4(to)) => {
            let p = parse(frame)?;
            if p.ip.protocol == ip_proto::AUTH {
                return Err(FwdError::Extensions);
            }
            let Some(proto) = p.transport else {
                return Err(FwdError::NotTcpUdp);
            };
            let mut out = frame[..ethernet::HEADER_LEN + p.total].to_vec();
            let ip = &mut out[ethernet::HEADER_LEN..];
            let addr_at = match rewrite {
                Rewrite::Dst(_) => 16,
                Rewrite::Src(_) => 12,
            };
            ip[addr_at..addr_at + 4].copy_from_slice(&to.ip().octets());
            ipv4::fill_checksum(ip);
            (out, p.hlen, proto)
        }
        (ethertype::IPV6, SocketAddr::V6(to)) => {
            let (ip, ip_payload) = Ipv6Repr::parse(payload).map_err(malformed)?;
            let up = ipv6::upper_layer(ip.next_header, ip_payload).map_err(malformed)?;
            let proto = match up.protocol {
                _ if up.fragmented => return Err(FwdError::NotTcpUdp),
                ip_proto::TCP => TcpRepr::parse(up.payload).map(|_| ip_proto::TCP),
                ip_proto::UDP => UdpRepr::parse(up.payload).map(|_| ip_proto::UDP),
                ip_proto::SCTP => SctpRepr::parse(up.payload).map(|_| ip_proto::SCTP),
                _ => return Err(FwdError::NotTcpUdp),
            }
            .map_err(malformed)?;
            // Extension headers stay as they are: the transport header is found past them
            // (ipv6_find_hdr) and only it and the fixed header change.
            let l4_at = ipv6::HEADER_LEN + ip_payload.len() - up.payload.len();
            let mut out = frame[..ethernet::HEADER_LEN + ip.buffer_len()].to_vec();
            let addr_at = match rewrite {
                Rewrite::Dst(_) => 24,
                Rewrite::Src(_) => 8,
            };
            out[ethernet::HEADER_LEN + addr_at..ethernet::HEADER_LEN + addr_at + 16]
                .copy_from_slice(&to.ip().octets());
            (out, l4_at, proto)
        }
        (ethertype::IPV4 | ethertype::IPV6, _) => return Err(FwdError::Family),
        _ => return Err(FwdError::NotIp),
    };
    ethernet::set_macs(&mut out, src_mac, dst_mac);
    let ip = &mut out[ethernet::HEADER_LEN..];
    if let Rewrite::Dst(_) = rewrite {
        // Toward the real server through __ip_vs_get_out_rt; a reply is forwarded by the
        // host's own routing, which takes its hop there.
        decrement_ttl(eth.ethertype, ip)?;
    }
    let port_at = l4_at + rewrite.port_at();
    let port = rewrite.to().port();
    let port_moves = be16(ip, port_at) != port;
    ip[port_at..port_at + 2].copy_from_slice(&port.to_be_bytes());
    let (src, dst) = match eth.ethertype {
        ethertype::IPV4 => (
            IpAddr::V4(ipv4::addr_at(ip, 12)),
            IpAddr::V4(ipv4::addr_at(ip, 16)),
        ),
        _ => (IpAddr::V6(v6_at(ip, 8)), IpAddr::V6(v6_at(ip, 24))),
    };
    let l4 = &mut ip[l4_at..];
    if proto == ip_proto::TCP {
        tcp::fill_checksum(l4, src, dst);
    } else if proto == ip_proto::SCTP {
        // sctp_dnat_handler / sctp_snat_handler: the CRC32c covers no address, so it is
        // recomputed only when the port changes (a received sum that was wrong stays so).
        if port_moves {
            sctp::fill_checksum(l4);
        }
    } else {
        let end = match usize::from(be16(l4, 4)) {
            0 => l4.len(),
            n => n,
        };
        // A zero UDP checksum means "none" and stays so (udp_dnat_handler).
        udp::fill_checksum(&mut l4[..end], src, dst);
    }
    Ok(out)
}

/// The IPv6 address at `at` of a header already parsed.
fn v6_at(ip: &[u8], at: usize) -> std::net::Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&ip[at..at + 16]);
    o.into()
}

/// NAT inbound (`dnat_handler`): destination VIP:vport becomes the real server's address:port.
pub fn nat_in(
    frame: &[u8],
    rs: SocketAddr,
    director_mac: [u8; 6],
    rs_mac: [u8; 6],
) -> Result<Vec<u8>, FwdError> {
    nat(frame, Rewrite::Dst(rs), director_mac, rs_mac)
}

/// NAT outbound (`snat_handler`): a real server's reply gets VIP:vport as its source.
pub fn nat_out(
    frame: &[u8],
    vip: SocketAddr,
    director_mac: [u8; 6],
    next_hop_mac: [u8; 6],
) -> Result<Vec<u8>, FwdError> {
    nat(frame, Rewrite::Src(vip), director_mac, next_hop_mac)
}

/// A flow hash for the GUE source port, in the default local port range (32768..=60999),
/// over `flow`: the inner packet's addresses and first transport word.
fn gue_sport(flow: &[u8]) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in flow {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    32768 + (h % (61000 - 32768)) as u16
}

/// TUN (`ip_vs_tunnel_xmit`): the whole IPv4 packet, one hop older, inside a new IPv4
/// header from `local` to the real server `remote`, as IPIP, GUE (UDP to the
/// given port, no checksum) or GRE (protocol 0x0800, no options).
/// TTL, TOS and DF come from the inner header, as the kernel copies them; the outer
/// identification is 0 when DF is set (`ip_select_ident`), else the inner one (the kernel
/// draws it from its own generator, which nothing downstream reads).
pub fn tun(
    frame: &[u8],
    kind: TunnelType,
    local: Ipv4Addr,
    remote: Ipv4Addr,
    director_mac: [u8; 6],
    rs_mac: [u8; 6],
) -> Result<Vec<u8>, FwdError> {
    let p = parse(frame)?;
    let inner = &frame[ethernet::HEADER_LEN..ethernet::HEADER_LEN + p.total];
    if p.ip.ttl <= 1 {
        return Err(FwdError::TtlExceeded);
    }
    let encap = match kind {
        TunnelType::Ipip => EncapRepr::Ipip,
        TunnelType::Gue { port } => EncapRepr::Gue {
            src_port: gue_sport(inner.get(12..24).unwrap_or(inner)),
            dst_port: port,
            // GUE version 0, no control, no extra header, protocol IPIP.
            protocol: ip_proto::IPIP,
        },
        TunnelType::Gre => EncapRepr::Gre {
            protocol: tunnel::GRE_IPV4,
        },
    };
    let outer = Ipv4Repr {
        src: local,
        dst: remote,
        protocol: encap.outer_protocol(),
        ttl: p.ip.ttl - 1,
        tos: p.ip.tos,
        ident: if p.ip.dont_frag { 0 } else { p.ip.ident },
        dont_frag: p.ip.dont_frag,
        more_frags: false,
        frag_offset: 0,
        payload_len: encap.buffer_len() + inner.len(),
    };
    if outer.buffer_len() > usize::from(u16::MAX) {
        return Err(FwdError::TooBig);
    }
    let outer_header = (ipv4::HEADER_LEN, |ip: &mut [u8]| outer.emit(ip));
    encapsulated(
        ethertype::IPV4,
        outer_header,
        &encap,
        inner,
        (director_mac, rs_mac),
    )
}

/// The tunnelled frame: Ethernet (`macs`: from, to) of `ethertype`, the outer header
/// (`outer`: its length and its writer), `encap`, then `inner` with one hop taken.
fn encapsulated(
    ethertype: u16,
    outer: (usize, impl FnOnce(&mut [u8]) -> Result<(), WireError>),
    encap: &EncapRepr,
    inner: &[u8],
    macs: ([u8; 6], [u8; 6]),
) -> Result<Vec<u8>, FwdError> {
    let (outer_len, emit_outer) = outer;
    let mut out = vec![0; ethernet::HEADER_LEN + outer_len + encap.buffer_len() + inner.len()];
    let eth = EthernetRepr {
        dst: macs.1,
        src: macs.0,
        ethertype,
    };
    let to_fwd = |_: WireError| FwdError::TooBig;
    eth.emit(&mut out).map_err(to_fwd)?;
    let ip = &mut out[ethernet::HEADER_LEN..];
    emit_outer(ip).map_err(to_fwd)?;
    let body = &mut ip[outer_len..];
    encap.emit(body, inner.len()).map_err(to_fwd)?;
    body[encap.buffer_len()..].copy_from_slice(inner);
    decrement_ttl(ethertype, &mut body[encap.buffer_len()..])?;
    Ok(out)
}

/// TUN over IPv6 (`ip_vs_tunnel_xmit_v6`): the whole IPv6 packet, one hop older, inside a
/// new IPv6 header from `local` to the real server `remote`, as IPv6-in-IPv6 (next header
/// 41), GUE (UDP with a zero checksum, as `udp6_set_csum` leaves it without `csum`, GUE
/// protocol 41) or GRE (protocol 0x86DD, no options). The hop limit is the inner one after
/// its decrement and the traffic class the inner one; the flow label is 0.
pub fn tun6(
    frame: &[u8],
    kind: TunnelType,
    local: Ipv6Addr,
    remote: Ipv6Addr,
    director_mac: [u8; 6],
    rs_mac: [u8; 6],
) -> Result<Vec<u8>, FwdError> {
    let (eth, payload) = EthernetRepr::parse(frame).map_err(malformed)?;
    match eth.ethertype {
        ethertype::IPV6 => {}
        ethertype::IPV4 => return Err(FwdError::Family),
        _ => return Err(FwdError::NotIp),
    }
    let (ip, _) = Ipv6Repr::parse(payload).map_err(malformed)?;
    if ip.hop_limit <= 1 {
        return Err(FwdError::TtlExceeded);
    }
    let inner = &payload[..ip.buffer_len()];
    let (encap, next_header) = match kind {
        TunnelType::Ipip => (EncapRepr::Ipip, ip_proto::IPV6),
        TunnelType::Gue { port } => (
            EncapRepr::Gue {
                src_port: gue_sport(inner.get(8..44).unwrap_or(inner)),
                dst_port: port,
                protocol: ip_proto::IPV6,
            },
            ip_proto::UDP,
        ),
        TunnelType::Gre => (
            EncapRepr::Gre {
                protocol: tunnel::GRE_IPV6,
            },
            ip_proto::GRE,
        ),
    };
    let outer = Ipv6Repr {
        src: local,
        dst: remote,
        next_header,
        hop_limit: ip.hop_limit - 1,
        traffic_class: ip.traffic_class,
        flow_label: 0,
        payload_len: encap.buffer_len() + inner.len(),
    };
    if outer.payload_len > usize::from(u16::MAX) {
        return Err(FwdError::TooBig);
    }
    let outer_header = (ipv6::HEADER_LEN, |ip: &mut [u8]| outer.emit(ip));
    encapsulated(
        ethertype::IPV6,
        outer_header,
        &encap,
        inner,
        (director_mac, rs_mac),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Ipv4Header, NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
    use proptest::prelude::*;

    const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const DIR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const RS_MAC: [u8; 6] = [2, 0, 0, 0, 0, 3];

    fn tcp_frame() -> Vec<u8> {
        let b = PacketBuilder::ethernet2(CLIENT_MAC, DIR_MAC)
            .ipv4([192, 0, 2, 7], [10, 0, 0, 1], 64)
            .tcp(40001, 80, 1000, 65535)
            .syn();
        let payload = b"GET / HTTP/1.0\r\n\r\n";
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    fn udp_frame() -> Vec<u8> {
        let b = PacketBuilder::ethernet2(CLIENT_MAC, DIR_MAC)
            .ipv4([192, 0, 2, 7], [10, 0, 0, 1], 64)
            .udp(5353, 53);
        let mut v = Vec::new();
        b.write(&mut v, b"query").unwrap();
        v
    }

    /// Every checksum in an IPv4 TCP/UDP frame is right.
    fn checksums_ok(frame: &[u8]) -> (Ipv4Header, TransportHeader) {
        let h = PacketHeaders::from_ethernet_slice(frame).unwrap();
        let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
            panic!("not ipv4")
        };
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        let t = h.transport.unwrap();
        match &t {
            TransportHeader::Tcp(t) => assert_eq!(
                t.checksum,
                t.calc_checksum_ipv4(&ip, h.payload.slice()).unwrap()
            ),
            TransportHeader::Udp(u) => assert_eq!(
                u.checksum,
                u.calc_checksum_ipv4(&ip, h.payload.slice()).unwrap()
            ),
            _ => panic!("not tcp/udp"),
        }
        (ip, t)
    }

    /// Ones'-complement sum of an IPv4 header: 0xffff when its checksum is right (either
    /// zero of ones' complement, as an incremental update may leave it).
    fn header_sums_right(ip: &[u8]) -> bool {
        let hlen = usize::from(ip[0] & 0xf) * 4;
        let mut sum: u32 = ip[..hlen]
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum == 0xffff
    }

    #[test]
    fn dr_changes_the_macs_and_takes_one_hop() {
        let f = tcp_frame();
        let out = dr(f.clone(), DIR_MAC, RS_MAC).unwrap();
        assert_eq!(&out[0..6], &RS_MAC);
        assert_eq!(&out[6..12], &DIR_MAC);
        assert_eq!(out[14 + 8], 63, "TTL");
        assert!(header_sums_right(&out[14..]));
        // Besides TTL and header checksum, not a byte of the packet changes.
        let (mut a, mut b) = (out[12..].to_vec(), f[12..].to_vec());
        for v in [&mut a, &mut b] {
            v[2 + 8] = 0;
            v[2 + 10..2 + 12].fill(0);
        }
        assert_eq!(a, b);
        // IPv6: the hop limit, and no checksum to mend.
        let b6 = PacketBuilder::ethernet2(CLIENT_MAC, DIR_MAC)
            .ipv6([1; 16], [2; 16], 64)
            .udp(5353, 53);
        let mut v6 = Vec::new();
        b6.write(&mut v6, b"q").unwrap();
        let out = dr(v6.clone(), DIR_MAC, RS_MAC).unwrap();
        assert_eq!(out[14 + 7], 63);
        assert_eq!(&out[14 + 8..], &v6[14 + 8..]);
    }

    #[test]
    fn a_packet_with_no_hop_left_is_dropped_by_every_method() {
        for ttl in [0u8, 1] {
            let mut f = tcp_frame();
            f[14 + 8] = ttl;
            crate::wire::ipv4::fill_checksum(&mut f[14..]);
            assert_eq!(dr(f.clone(), DIR_MAC, RS_MAC), Err(FwdError::TtlExceeded));
            let rs = "10.0.0.11:80".parse().unwrap();
            assert_eq!(nat_in(&f, rs, DIR_MAC, RS_MAC), Err(FwdError::TtlExceeded));
            let (l, r) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 11));
            assert_eq!(
                tun(&f, TunnelType::Ipip, l, r, DIR_MAC, RS_MAC),
                Err(FwdError::TtlExceeded)
            );
        }
    }

    proptest! {
        /// `ip_decrease_ttl`'s incremental update leaves a checksum that still sums right,
        /// and agrees with a full recomputation up to ones' complement's two zeros.
        #[test]
        fn the_incremental_checksum_is_a_right_one(
            ttl in 2u8..=255, tos in any::<u8>(), id in any::<u16>(), len in 0usize..64,
        ) {
            let mut f = Vec::new();
            PacketBuilder::ethernet2(CLIENT_MAC, DIR_MAC)
                .ipv4([192, 0, 2, 7], [10, 0, 0, 1], ttl)
                .udp(1, 2)
                .write(&mut f, &vec![7u8; len])
                .unwrap();
            f[15] = tos;
            f[18..20].copy_from_slice(&id.to_be_bytes());
            crate::wire::ipv4::fill_checksum(&mut f[14..]);
            let out = dr(f, DIR_MAC, RS_MAC).unwrap();
            prop_assert!(header_sums_right(&out[14..]));
            let mut full = out[14..].to_vec();
            crate::wire::ipv4::fill_checksum(&mut full);
            let (inc, rec) = (be16(&out[14..], 10), be16(&full, 10));
            prop_assert!(inc == rec || (inc, rec) == (0xffff, 0) || (inc, rec) == (0, 0xffff));
        }
    }

    #[test]
    fn nat_round_trip_with_valid_checksums() {
        for f in [tcp_frame(), udp_frame()] {
            let rs: SocketAddr = "10.0.0.11:8080".parse().unwrap();
            let inb = nat_in(&f, rs, DIR_MAC, RS_MAC).unwrap();
            let (ip, t) = checksums_ok(&inb);
            assert_eq!(ip.destination, [10, 0, 0, 11]);
            assert_eq!(ip.source, [192, 0, 2, 7]);
            let (sp, dp) = match &t {
                TransportHeader::Tcp(t) => (t.source_port, t.destination_port),
                TransportHeader::Udp(u) => (u.source_port, u.destination_port),
                _ => unreachable!(),
            };
            assert_eq!(dp, 8080);
            // The real server answers; SNAT on the way out restores the VIP.
            let h = PacketHeaders::from_ethernet_slice(&inb).unwrap();
            let reply = match t {
                TransportHeader::Tcp(_) => {
                    let b = PacketBuilder::ethernet2(RS_MAC, DIR_MAC)
                        .ipv4([10, 0, 0, 11], [192, 0, 2, 7], 64)
                        .tcp(8080, sp, 5000, 65535)
                        .syn()
                        .ack(1001);
                    let mut v = Vec::new();
                    b.write(&mut v, h.payload.slice()).unwrap();
                    v
                }
                _ => {
                    let b = PacketBuilder::ethernet2(RS_MAC, DIR_MAC)
                        .ipv4([10, 0, 0, 11], [192, 0, 2, 7], 64)
                        .udp(8080, sp);
                    let mut v = Vec::new();
                    b.write(&mut v, b"answer").unwrap();
                    v
                }
            };
            let out = nat_out(&reply, "10.0.0.1:80".parse().unwrap(), DIR_MAC, CLIENT_MAC).unwrap();
            let (ip, t) = checksums_ok(&out);
            assert_eq!(ip.source, [10, 0, 0, 1]);
            let sp = match t {
                TransportHeader::Tcp(t) => t.source_port,
                TransportHeader::Udp(u) => u.source_port,
                _ => unreachable!(),
            };
            assert_eq!(sp, 80);
        }
    }

    /// An Ethernet IPv4 SCTP frame carrying one DATA chunk, with a right CRC32c.
    fn sctp_frame(src: ([u8; 4], u16), dst: ([u8; 4], u16), macs: ([u8; 6], [u8; 6])) -> Vec<u8> {
        let c = sctp::ChunkRepr {
            kind: sctp::chunk::DATA,
            flags: 3,
            value_len: 13,
        };
        let h = SctpRepr {
            src_port: src.1,
            dst_port: dst.1,
            verification_tag: 0x1234_5678,
            chunks_len: c.buffer_len(),
        };
        let mut packet = vec![0x5a; h.buffer_len()];
        c.emit(&mut packet[sctp::HEADER_LEN..]).unwrap();
        h.emit(&mut packet).unwrap();
        let mut v = Vec::new();
        PacketBuilder::ethernet2(macs.0, macs.1)
            .ipv4(src.0, dst.0, 64)
            .write(&mut v, etherparse::IpNumber(ip_proto::SCTP), &packet)
            .unwrap();
        v
    }

    #[test]
    fn sctp_nat_rewrites_ports_and_recomputes_the_crc32c() {
        let f = sctp_frame(
            ([192, 0, 2, 7], 40001),
            ([10, 0, 0, 1], 9),
            (CLIENT_MAC, DIR_MAC),
        );
        let rs: SocketAddr = "10.0.0.11:9900".parse().unwrap();
        let inb = nat_in(&f, rs, DIR_MAC, RS_MAC).unwrap();
        // What the real server would have received had the client sent to it directly.
        let want = sctp_frame(
            ([192, 0, 2, 7], 40001),
            ([10, 0, 0, 11], 9900),
            (DIR_MAC, RS_MAC),
        );
        let mut want_ip = want.clone();
        want_ip[22] -= 1;
        crate::wire::ipv4::fill_checksum(&mut want_ip[14..]);
        assert_eq!(inb, want_ip);
        sctp::verify_checksum(&inb[34..]).unwrap();
        // The reply leaves from VIP:vport, its sum right again.
        let reply = sctp_frame(
            ([10, 0, 0, 11], 9900),
            ([192, 0, 2, 7], 40001),
            (RS_MAC, DIR_MAC),
        );
        let out = nat_out(&reply, "10.0.0.1:9".parse().unwrap(), DIR_MAC, CLIENT_MAC).unwrap();
        assert_eq!(
            out,
            sctp_frame(
                ([10, 0, 0, 1], 9),
                ([192, 0, 2, 7], 40001),
                (DIR_MAC, CLIENT_MAC)
            )
        );
        // Same port: only the address moves, and the sum (which covers no address) is left
        // as it came, a wrong one included, as the kernel leaves it.
        let mut bad = f.clone();
        bad[34 + 8] ^= 0xff;
        let same: SocketAddr = "10.0.0.11:9".parse().unwrap();
        let inb = nat_in(&bad, same, DIR_MAC, RS_MAC).unwrap();
        assert_eq!(inb[34 + 8..34 + 12], bad[34 + 8..34 + 12]);
        assert!(sctp::verify_checksum(&inb[34..]).is_err());
        let inb = nat_in(&f, same, DIR_MAC, RS_MAC).unwrap();
        sctp::verify_checksum(&inb[34..]).unwrap();
        // A common header cut short is malformed.
        let mut short = f.clone();
        short.truncate(34 + 11);
        let n = short.len() - 14;
        short[16..18].copy_from_slice(&(n as u16).to_be_bytes());
        crate::wire::ipv4::fill_checksum(&mut short[14..]);
        assert!(matches!(
            nat_in(&short, rs, DIR_MAC, RS_MAC),
            Err(FwdError::Malformed(_))
        ));
    }

    #[test]
    fn tunnels_carry_the_inner_packet_one_hop_older() {
        let f = tcp_frame();
        let local = Ipv4Addr::new(10, 0, 0, 2);
        let remote = Ipv4Addr::new(10, 0, 0, 11);
        for (kind, proto, hdr) in [
            (TunnelType::Ipip, 4u8, 0usize),
            (TunnelType::Gue { port: 6080 }, 17, 12),
            (TunnelType::Gre, 47, 4),
        ] {
            let out = tun(&f, kind, local, remote, DIR_MAC, RS_MAC).unwrap();
            let (outer, rest) = Ipv4Header::from_slice(&out[14..]).unwrap();
            assert_eq!(outer.header_checksum, outer.calc_header_checksum());
            assert_eq!(outer.protocol.0, proto);
            assert_eq!(outer.destination, remote.octets());
            // One hop taken inside and copied out; DF set, so identification 0.
            assert_eq!(outer.time_to_live, 63);
            assert!(outer.dont_fragment);
            assert_eq!(outer.identification, 0);
            assert_eq!(usize::from(outer.total_len), out.len() - 14);
            let inner = &rest[hdr..];
            assert_eq!(inner[8], 63);
            assert!(header_sums_right(inner));
            let mut expect = f[14..].to_vec();
            expect[8] = 63;
            expect[10..12].copy_from_slice(&inner[10..12]);
            assert_eq!(inner, &expect[..], "{kind:?}");
            if let TunnelType::Gue { port } = kind {
                assert_eq!(u16::from_be_bytes([rest[2], rest[3]]), port);
                assert_eq!(
                    usize::from(u16::from_be_bytes([rest[4], rest[5]])),
                    rest.len()
                );
                assert_eq!(rest[9], 4, "GUE proto_ctype IPIP");
            }
            if kind == TunnelType::Gre {
                assert_eq!(&rest[..4], &[0, 0, 8, 0]);
            }
        }
    }

    #[test]
    fn ipv6_tunnels_carry_the_inner_packet_one_hop_older() {
        let mut f = built(
            "[2001:db8:1::7]:40001".parse().unwrap(),
            "[2001:db8::1]:80".parse().unwrap(),
            false,
            (CLIENT_MAC, DIR_MAC),
            64,
            b"GET / HTTP/1.0\r\n\r\n",
        );
        // Traffic class 0xb8 (EF) and flow label 0x12345: the class is copied, the label not.
        f[14..18].copy_from_slice(&(6u32 << 28 | 0xb8 << 20 | 0x12345).to_be_bytes());
        let local: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let remote: Ipv6Addr = "2001:db8:5::11".parse().unwrap();
        for (kind, next, hdr) in [
            (TunnelType::Ipip, 41u8, 0usize),
            (TunnelType::Gue { port: 6080 }, 17, 12),
            (TunnelType::Gre, 47, 4),
        ] {
            let out = tun6(&f, kind, local, remote, DIR_MAC, RS_MAC).unwrap();
            assert_eq!(
                &out[..14],
                &[&RS_MAC[..], &DIR_MAC[..], &[0x86, 0xdd]].concat()[..]
            );
            let (outer, rest) = etherparse::Ipv6Header::from_slice(&out[14..]).unwrap();
            assert_eq!(outer.next_header.0, next, "{kind:?}");
            assert_eq!(
                (outer.source, outer.destination),
                (local.octets(), remote.octets())
            );
            assert_eq!(outer.hop_limit, 63);
            assert_eq!(outer.traffic_class, 0xb8);
            assert_eq!(u32::from(outer.flow_label), 0);
            assert_eq!(usize::from(outer.payload_length), rest.len());
            let inner = &rest[hdr..];
            let mut expect = f[14..].to_vec();
            expect[7] = 63;
            assert_eq!(inner, &expect[..], "{kind:?}");
            if let TunnelType::Gue { port } = kind {
                assert_eq!(u16::from_be_bytes([rest[2], rest[3]]), port);
                assert_eq!(
                    usize::from(u16::from_be_bytes([rest[4], rest[5]])),
                    rest.len()
                );
                assert_eq!(
                    &rest[6..8],
                    &[0, 0],
                    "no UDP checksum (udp6_set_csum, nocheck)"
                );
                assert_eq!(rest[9], 41, "GUE proto_ctype IPv6");
            }
            if kind == TunnelType::Gre {
                assert_eq!(&rest[..4], &[0, 0, 0x86, 0xdd]);
            }
        }
        assert_eq!(
            tun6(
                &tcp_frame(),
                TunnelType::Ipip,
                local,
                remote,
                DIR_MAC,
                RS_MAC
            ),
            Err(FwdError::Family)
        );
        let mut last_hop = f.clone();
        last_hop[21] = 1;
        assert_eq!(
            tun6(&last_hop, TunnelType::Gre, local, remote, DIR_MAC, RS_MAC),
            Err(FwdError::TtlExceeded)
        );
    }

    #[test]
    fn hostile_input_is_an_error() {
        let f = tcp_frame();
        for cut in [0, 5, 13, 14, 20, 33, 40] {
            assert!(
                nat_in(&f[..cut], "10.0.0.11:80".parse().unwrap(), DIR_MAC, RS_MAC).is_err(),
                "cut {cut}"
            );
            assert!(tun(
                &f[..cut],
                TunnelType::Ipip,
                Ipv4Addr::LOCALHOST,
                Ipv4Addr::LOCALHOST,
                DIR_MAC,
                RS_MAC
            )
            .is_err());
        }
        assert!(dr(f[..10].to_vec(), DIR_MAC, RS_MAC).is_err());
        // IPv4 total length lying beyond the frame.
        let mut lie = f.clone();
        lie[16] = 0xff;
        assert!(nat_in(&lie, "10.0.0.11:80".parse().unwrap(), DIR_MAC, RS_MAC).is_err());
        // An ICMP packet cannot be NATed here.
        let b = PacketBuilder::ethernet2(CLIENT_MAC, DIR_MAC)
            .ipv4([192, 0, 2, 7], [10, 0, 0, 1], 64)
            .icmpv4_echo_request(1, 1);
        let mut icmp = Vec::new();
        b.write(&mut icmp, b"x").unwrap();
        assert_eq!(
            nat_in(&icmp, "10.0.0.11:80".parse().unwrap(), DIR_MAC, RS_MAC),
            Err(FwdError::NotTcpUdp)
        );
    }

    /// An Ethernet IPv4 or IPv6 TCP or UDP frame from etherparse's builder.
    fn built(
        src: SocketAddr,
        dst: SocketAddr,
        udp: bool,
        macs: ([u8; 6], [u8; 6]),
        ttl: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2(macs.0, macs.1);
        let b = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), ttl),
            (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), ttl),
            _ => unreachable!("one family"),
        };
        let mut v = Vec::new();
        if udp {
            b.udp(src.port(), dst.port())
                .write(&mut v, payload)
                .unwrap();
        } else {
            b.tcp(src.port(), dst.port(), 7, 1000)
                .ack(9)
                .write(&mut v, payload)
                .unwrap();
        }
        v
    }

    /// Three addresses of one family (client, virtual, real server).
    fn three_addrs() -> impl Strategy<Value = (IpAddr, IpAddr, IpAddr)> {
        prop_oneof![
            any::<([u8; 4], [u8; 4], [u8; 4])>().prop_map(|(c, v, r)| (
                c.into(),
                v.into(),
                r.into()
            )),
            any::<([u8; 16], [u8; 16], [u8; 16])>().prop_map(|(c, v, r)| (
                c.into(),
                v.into(),
                r.into()
            )),
        ]
    }

    proptest! {
        /// NAT gives byte for byte the frame etherparse builds with the rewritten addresses.
        #[test]
        fn nat_matches_the_builder(
            (c, v, r) in three_addrs(), cp: u16, vp: u16, rp: u16, udp: bool,
            payload in proptest::collection::vec(any::<u8>(), 0..60),
        ) {
            let (c, v, r) = (SocketAddr::new(c, cp), SocketAddr::new(v, vp), SocketAddr::new(r, rp));
            let f = built(c, v, udp, (CLIENT_MAC, DIR_MAC), 64, &payload);
            // Inbound takes a hop (__ip_vs_get_out_rt); the reply's is the forwarding host's.
            let inb = nat_in(&f, r, DIR_MAC, RS_MAC).unwrap();
            prop_assert_eq!(inb, built(c, r, udp, (DIR_MAC, RS_MAC), 63, &payload));
            let reply = built(r, c, udp, (RS_MAC, DIR_MAC), 64, &payload);
            let out = nat_out(&reply, v, DIR_MAC, CLIENT_MAC).unwrap();
            prop_assert_eq!(out, built(v, c, udp, (DIR_MAC, CLIENT_MAC), 64, &payload));
        }
    }

    #[test]
    fn nat_keeps_to_the_packets_family() {
        let v6: SocketAddr = "[2001:db8::11]:80".parse().unwrap();
        assert_eq!(
            nat_in(&tcp_frame(), v6, DIR_MAC, RS_MAC),
            Err(FwdError::Family)
        );
        let f = built(
            "[2001:db8:1::7]:40001".parse().unwrap(),
            "[2001:db8::1]:80".parse().unwrap(),
            false,
            (CLIENT_MAC, DIR_MAC),
            1,
            b"x",
        );
        let v4: SocketAddr = "10.0.0.11:80".parse().unwrap();
        assert_eq!(nat_in(&f, v4, DIR_MAC, RS_MAC), Err(FwdError::Family));
        // An IPv6 packet with no hop left is dropped inbound as an IPv4 one is.
        assert_eq!(nat_in(&f, v6, DIR_MAC, RS_MAC), Err(FwdError::TtlExceeded));
    }

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let rs: SocketAddr = "10.0.0.11:80".parse().unwrap();
            let _ = dr(b.clone(), DIR_MAC, RS_MAC);
            let _ = nat_in(&b, rs, DIR_MAC, RS_MAC);
            let _ = nat_out(&b, rs, DIR_MAC, RS_MAC);
            let v6: SocketAddr = "[2001:db8::11]:80".parse().unwrap();
            let _ = nat_in(&b, v6, DIR_MAC, RS_MAC);
            let _ = nat_out(&b, v6, DIR_MAC, RS_MAC);
            let _ = tun(&b, TunnelType::Gue { port: 1 }, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, DIR_MAC, RS_MAC);
            let _ = tun6(&b, TunnelType::Gue { port: 1 }, Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, DIR_MAC, RS_MAC);
        }

        #[test]
        fn mutated_frames_never_panic(pos in 0usize..60, val in any::<u8>()) {
            let mut f = tcp_frame();
            if pos < f.len() { f[pos] = val; }
            let _ = nat_in(&f, "10.0.0.11:80".parse().unwrap(), DIR_MAC, RS_MAC);
            let _ = tun(&f, TunnelType::Gre, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, DIR_MAC, RS_MAC);
        }
    }
}
