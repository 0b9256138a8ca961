//! Forwarding methods as pure packet transforms: DR, NAT, TUN (IPIP, GUE, GRE).
//!
//! Reference: Linux 6.1 `ip_vs_xmit.c` (`ip_vs_dr_xmit`, `ip_vs_nat_xmit`,
//! `ip_vs_tunnel_xmit` with `ipvs_gue_encap` / `ipvs_gre_encap`) and the
//! protocols' `dnat_handler` / `snat_handler`. Frames come in as Ethernet II
//! bytes, are parsed with etherparse, and a new frame comes out. NAT and
//! TUN handle IPv4; DR only touches the Ethernet header and takes either family.

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{
    EtherType, Ethernet2Header, Ethernet2HeaderSlice, IpNumber, Ipv4Header, NetHeaders,
    PacketHeaders, TransportHeader,
};

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
    /// NAT and TUN handle IPv4 only.
    #[error("only IPv4 is supported by this method")]
    NotIpv4,
    /// NAT needs a whole TCP or UDP header (not a fragment, not another protocol).
    #[error("NAT needs an unfragmented TCP or UDP packet")]
    NotTcpUdp,
    /// IPv4 extension headers (AH) cannot be rewritten.
    #[error("IPv4 authentication header present")]
    Extensions,
    /// The result would not fit an IPv4 packet.
    #[error("packet too large to encapsulate")]
    TooBig,
}

fn parse(frame: &[u8]) -> Result<PacketHeaders<'_>, FwdError> {
    PacketHeaders::from_ethernet_slice(frame).map_err(|e| FwdError::Malformed(e.to_string()))
}

fn eth(src: [u8; 6], dst: [u8; 6], ether_type: EtherType) -> [u8; 14] {
    Ethernet2Header {
        source: src,
        destination: dst,
        ether_type,
    }
    .to_bytes()
}

/// DR (`ip_vs_dr_xmit`): the same IP packet, addressed at layer 2 to the real server.
///
/// Nothing above layer 2 is read or rewritten (IPVS parsed the packet before choosing the
/// real server), so only the Ethernet header is checked: untagged, carrying IPv4 or IPv6.
/// The frame's buffer is reused: only its Ethernet addresses change.
pub fn dr(mut frame: Vec<u8>, director_mac: [u8; 6], rs_mac: [u8; 6]) -> Result<Vec<u8>, FwdError> {
    let header =
        Ethernet2HeaderSlice::from_slice(&frame).map_err(|e| FwdError::Malformed(e.to_string()))?;
    let ip = header.ether_type();
    if ip != EtherType::IPV4 && ip != EtherType::IPV6 {
        return Err(FwdError::NotIp);
    }
    if frame.len() == Ethernet2Header::LEN {
        return Err(FwdError::Malformed(
            "no IP packet after the Ethernet header".into(),
        ));
    }
    frame[..Ethernet2Header::LEN].copy_from_slice(&eth(director_mac, rs_mac, ip));
    Ok(frame)
}

/// The IPv4 header and TCP/UDP header + payload of a frame, for NAT.
fn ipv4_l4(frame: &[u8]) -> Result<(Ipv4Header, TransportHeader, &[u8]), FwdError> {
    let h = parse(frame)?;
    if h.vlan.is_some() {
        return Err(FwdError::NotIp);
    }
    let ip = match h.net {
        Some(NetHeaders::Ipv4(ip, ext)) => {
            if ext.auth.is_some() {
                return Err(FwdError::Extensions);
            }
            ip
        }
        Some(NetHeaders::Ipv6(..)) => return Err(FwdError::NotIpv4),
        None => return Err(FwdError::NotIp),
    };
    if ip.is_fragmenting_payload() {
        return Err(FwdError::NotTcpUdp);
    }
    match h.transport {
        Some(t @ (TransportHeader::Tcp(_) | TransportHeader::Udp(_))) => {
            Ok((ip, t, h.payload.slice()))
        }
        _ => Err(FwdError::NotTcpUdp),
    }
}

fn emit(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    mut ip: Ipv4Header,
    mut l4: TransportHeader,
    payload: &[u8],
) -> Result<Vec<u8>, FwdError> {
    ip.header_checksum = ip.calc_header_checksum();
    match &mut l4 {
        TransportHeader::Tcp(t) => {
            t.checksum = t
                .calc_checksum_ipv4(&ip, payload)
                .map_err(|_| FwdError::TooBig)?;
        }
        TransportHeader::Udp(u) => {
            // A zero UDP checksum means "none" and stays so (udp_dnat_handler).
            if u.checksum != 0 {
                u.checksum = u
                    .calc_checksum_ipv4(&ip, payload)
                    .map_err(|_| FwdError::TooBig)?;
            }
        }
        _ => return Err(FwdError::NotTcpUdp),
    }
    let mut out = Vec::with_capacity(14 + ip.header_len() + l4.header_len() + payload.len());
    out.extend_from_slice(&eth(src_mac, dst_mac, EtherType::IPV4));
    out.extend_from_slice(&ip.to_bytes());
    match &l4 {
        TransportHeader::Tcp(t) => out.extend_from_slice(&t.to_bytes()),
        TransportHeader::Udp(u) => out.extend_from_slice(&u.to_bytes()),
        _ => return Err(FwdError::NotTcpUdp),
    }
    out.extend_from_slice(payload);
    Ok(out)
}

fn set_port(l4: &mut TransportHeader, src: Option<u16>, dst: Option<u16>) {
    match l4 {
        TransportHeader::Tcp(t) => {
            if let Some(p) = src {
                t.source_port = p;
            }
            if let Some(p) = dst {
                t.destination_port = p;
            }
        }
        TransportHeader::Udp(u) => {
            if let Some(p) = src {
                u.source_port = p;
            }
            if let Some(p) = dst {
                u.destination_port = p;
            }
        }
        _ => {}
    }
}

/// NAT inbound (`dnat_handler`): destination VIP:vport becomes the real server's address:port.
pub fn nat_in(
    frame: &[u8],
    rs: SocketAddrV4,
    director_mac: [u8; 6],
    rs_mac: [u8; 6],
) -> Result<Vec<u8>, FwdError> {
    let (mut ip, mut l4, payload) = ipv4_l4(frame)?;
    ip.destination = rs.ip().octets();
    set_port(&mut l4, None, Some(rs.port()));
    emit(director_mac, rs_mac, ip, l4, payload)
}

/// NAT outbound (`snat_handler`): a real server's reply gets VIP:vport as its source.
pub fn nat_out(
    frame: &[u8],
    vip: SocketAddrV4,
    director_mac: [u8; 6],
    next_hop_mac: [u8; 6],
) -> Result<Vec<u8>, FwdError> {
    let (mut ip, mut l4, payload) = ipv4_l4(frame)?;
    ip.source = vip.ip().octets();
    set_port(&mut l4, Some(vip.port()), None);
    emit(director_mac, next_hop_mac, ip, l4, payload)
}

/// A flow hash for the GUE source port, in the default local port range (32768..=60999).
fn gue_sport(inner: &[u8]) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    // Addresses and the first transport word identify the flow.
    for &b in inner.get(12..24).unwrap_or(inner) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    32768 + (h % (61000 - 32768)) as u16
}

/// TUN (`ip_vs_tunnel_xmit`): the whole IPv4 packet inside a new IPv4
/// header from `local` to the real server `remote`, as IPIP, GUE (UDP to the
/// given port, no checksum) or GRE (protocol 0x0800, no options).
/// TTL, TOS and DF come from the inner header, as the kernel copies them.
pub fn tun(
    frame: &[u8],
    kind: TunnelType,
    local: Ipv4Addr,
    remote: Ipv4Addr,
    director_mac: [u8; 6],
    rs_mac: [u8; 6],
) -> Result<Vec<u8>, FwdError> {
    let h = parse(frame)?;
    if h.vlan.is_some() {
        return Err(FwdError::NotIp);
    }
    let inner_ip = match &h.net {
        Some(NetHeaders::Ipv4(ip, _)) => ip.clone(),
        Some(NetHeaders::Ipv6(..)) => return Err(FwdError::NotIpv4),
        None => return Err(FwdError::NotIp),
    };
    let inner_len = usize::from(inner_ip.total_len);
    let inner = frame
        .get(14..14 + inner_len)
        .ok_or_else(|| FwdError::Malformed("short IPv4 packet".into()))?;
    let mut encap: Vec<u8> = Vec::new();
    let proto = match kind {
        TunnelType::Ipip => IpNumber::IPV4,
        TunnelType::Gue { port } => {
            let udp_len = u16::try_from(8 + 4 + inner.len()).map_err(|_| FwdError::TooBig)?;
            encap.extend_from_slice(&gue_sport(inner).to_be_bytes());
            encap.extend_from_slice(&port.to_be_bytes());
            encap.extend_from_slice(&udp_len.to_be_bytes());
            encap.extend_from_slice(&[0, 0]);
            // GUE version 0, no control, no extra header, protocol IPIP.
            encap.extend_from_slice(&[0, 4, 0, 0]);
            IpNumber::UDP
        }
        TunnelType::Gre => {
            encap.extend_from_slice(&[0, 0, 0x08, 0x00]);
            IpNumber::GRE
        }
    };
    let payload_len = encap.len() + inner.len();
    let mut outer = Ipv4Header::new(
        0,
        inner_ip.time_to_live,
        proto,
        local.octets(),
        remote.octets(),
    )
    .map_err(|_| FwdError::TooBig)?;
    outer
        .set_payload_len(payload_len)
        .map_err(|_| FwdError::TooBig)?;
    outer.dscp = inner_ip.dscp;
    outer.ecn = inner_ip.ecn;
    outer.dont_fragment = inner_ip.dont_fragment;
    outer.identification = inner_ip.identification;
    outer.header_checksum = outer.calc_header_checksum();
    let mut out = Vec::with_capacity(14 + 20 + payload_len);
    out.extend_from_slice(&eth(director_mac, rs_mac, EtherType::IPV4));
    out.extend_from_slice(&outer.to_bytes());
    out.extend_from_slice(&encap);
    out.extend_from_slice(inner);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
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

    #[test]
    fn dr_changes_only_the_macs() {
        let f = tcp_frame();
        let out = dr(f.clone(), DIR_MAC, RS_MAC).unwrap();
        assert_eq!(&out[0..6], &RS_MAC);
        assert_eq!(&out[6..12], &DIR_MAC);
        assert_eq!(&out[12..], &f[12..]);
    }

    #[test]
    fn nat_round_trip_with_valid_checksums() {
        for f in [tcp_frame(), udp_frame()] {
            let rs: SocketAddrV4 = "10.0.0.11:8080".parse().unwrap();
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

    #[test]
    fn tunnels_carry_the_inner_packet_unchanged() {
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
            assert_eq!(outer.time_to_live, 64);
            assert_eq!(usize::from(outer.total_len), out.len() - 14);
            assert_eq!(&rest[hdr..], &f[14..], "{kind:?}");
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

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let rs: SocketAddrV4 = "10.0.0.11:80".parse().unwrap();
            let _ = dr(b.clone(), DIR_MAC, RS_MAC);
            let _ = nat_in(&b, rs, DIR_MAC, RS_MAC);
            let _ = nat_out(&b, rs, DIR_MAC, RS_MAC);
            let _ = tun(&b, TunnelType::Gue { port: 1 }, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, DIR_MAC, RS_MAC);
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
