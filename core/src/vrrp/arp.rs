//! Gratuitous ARP and unsolicited neighbour advertisements, as keepalived 2.2 sends them when an
//! instance becomes master, and an ARP / neighbour-advertisement decoder for the simulator's hosts.
//!
//! Layouts follow keepalived's `send_gratuitous_arp_immediate` (vrrp_arp.c) and
//! `ndisc_send_unsolicited_na_immediate` (vrrp_ndisc.c), checked byte for byte against captures
//! in `fixtures/vrrp/`.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{
    EtherType, Ethernet2Header, Icmpv6Header, Icmpv6Type, IpNumber, Ipv6FlowLabel, Ipv6Header,
};

/// Ethernet broadcast address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// Length of an Ethernet/IPv4 ARP message (without the Ethernet header).
pub const ARP_LEN: usize = 28;
/// IPv6 all-nodes multicast group, where unsolicited neighbour advertisements go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// ICMPv6 type of a neighbour advertisement.
pub const ICMPV6_NEIGHBOUR_ADVERT: u8 = 136;

const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_SOLICITED: u8 = 0x40;
const NA_FLAG_OVERRIDE: u8 = 0x20;
const ND_OPT_TARGET_LINKADDR: u8 = 2;
const NDISC_HOPLIMIT: u8 = 255;
/// NA body after the 4 bytes of type/code/checksum: flags + reserved (4), target (16), option (8).
const NA_BODY_LEN: usize = 4 + 16 + 8;

/// ARP operation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ArpOp {
    /// Who-has (1).
    Request,
    /// Is-at (2).
    Reply,
}

/// An Ethernet/IPv4 ARP message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ArpPacket {
    /// Request or reply.
    pub op: ArpOp,
    /// Sender hardware address.
    pub sender_mac: [u8; 6],
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (ignored in requests; keepalived puts the broadcast address there).
    pub target_mac: [u8; 6],
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpPacket {
    /// Sender and target IP are the same: an announcement every listener should cache.
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }
}

/// An ARP message with the Ethernet addresses that carried it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ArpFrame {
    /// Ethernet source.
    pub src_mac: [u8; 6],
    /// Ethernet destination.
    pub dst_mac: [u8; 6],
    /// The ARP message.
    pub arp: ArpPacket,
}

/// Why a frame is not an ARP or neighbour-advertisement frame we understand.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArpError {
    /// Fewer bytes than the headers need.
    #[error("truncated {layer}: need {needed} bytes, have {got}")]
    Truncated {
        /// Which layer.
        layer: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// Not the expected ethertype.
    #[error("ethertype {0:#06x} is not the expected one")]
    WrongEtherType(u16),
    /// ARP for something other than Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4).
    #[error("unsupported ARP format: htype {htype}, ptype {ptype:#06x}, hlen {hlen}, plen {plen}")]
    UnsupportedArp {
        /// Hardware type.
        htype: u16,
        /// Protocol type.
        ptype: u16,
        /// Hardware address length.
        hlen: u8,
        /// Protocol address length.
        plen: u8,
    },
    /// ARP operation other than request / reply.
    #[error("unsupported ARP operation {0}")]
    UnsupportedOp(u16),
    /// Malformed IPv6 layer.
    #[error("malformed IPv6 packet: {0}")]
    MalformedIpv6(String),
    /// Not ICMPv6 type 136 code 0.
    #[error("not a neighbour advertisement (next header {next_header}, ICMPv6 type {icmp_type})")]
    NotNeighbourAdvert {
        /// IPv6 next header.
        next_header: u8,
        /// ICMPv6 type (0 when not ICMPv6).
        icmp_type: u8,
    },
    /// Hop limit other than 255 (RFC 4861 7.1.2).
    #[error("neighbour advertisement with hop limit {0}, must be 255")]
    BadHopLimit(u8),
    /// ICMPv6 checksum wrong.
    #[error("bad ICMPv6 checksum {got:#06x}, expected {expected:#06x}")]
    BadChecksum {
        /// Carried.
        got: u16,
        /// Computed.
        expected: u16,
    },
}

/// Encode an ARP message in an Ethernet frame (42 bytes, unpadded as the sender hands it to the NIC).
pub fn encode_arp(src_mac: [u8; 6], dst_mac: [u8; 6], arp: &ArpPacket) -> Vec<u8> {
    let eth = Ethernet2Header {
        source: src_mac,
        destination: dst_mac,
        ether_type: EtherType::ARP,
    };
    let op: u16 = match arp.op {
        ArpOp::Request => 1,
        ArpOp::Reply => 2,
    };
    let mut frame = Vec::with_capacity(Ethernet2Header::LEN + ARP_LEN);
    frame.extend_from_slice(&eth.to_bytes());
    frame.extend_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    frame.extend_from_slice(&PTYPE_IPV4.to_be_bytes());
    frame.extend_from_slice(&[6, 4]);
    frame.extend_from_slice(&op.to_be_bytes());
    frame.extend_from_slice(&arp.sender_mac);
    frame.extend_from_slice(&arp.sender_ip.octets());
    frame.extend_from_slice(&arp.target_mac);
    frame.extend_from_slice(&arp.target_ip.octets());
    frame
}

/// The gratuitous ARP keepalived sends for a virtual IPv4 address: a broadcast who-has for the
/// address itself, sender and target IP both the VIP, target MAC the broadcast address.
pub fn gratuitous_arp(src_mac: [u8; 6], vip: Ipv4Addr) -> Vec<u8> {
    encode_arp(
        src_mac,
        BROADCAST_MAC,
        &ArpPacket {
            op: ArpOp::Request,
            sender_mac: src_mac,
            sender_ip: vip,
            target_mac: BROADCAST_MAC,
            target_ip: vip,
        },
    )
}

/// The Ethernet header of `frame` and what follows it, when it carries `want`.
fn ethernet(frame: &[u8], want: EtherType) -> Result<(Ethernet2Header, &[u8]), ArpError> {
    let (eth, rest) = Ethernet2Header::from_slice(frame).map_err(|_| ArpError::Truncated {
        layer: "Ethernet header",
        needed: Ethernet2Header::LEN,
        got: frame.len(),
    })?;
    if eth.ether_type != want {
        return Err(ArpError::WrongEtherType(eth.ether_type.0));
    }
    Ok((eth, rest))
}

/// Decode an Ethernet/IPv4 ARP frame (trailing Ethernet padding is ignored).
pub fn decode_arp(frame: &[u8]) -> Result<ArpFrame, ArpError> {
    let (eth, rest) = ethernet(frame, EtherType::ARP)?;
    let body: &[u8; ARP_LEN] = rest.first_chunk::<ARP_LEN>().ok_or(ArpError::Truncated {
        layer: "ARP message",
        needed: ARP_LEN,
        got: rest.len(),
    })?;
    let [h0, h1, p0, p1, hlen, plen, o0, o1, s0, s1, s2, s3, s4, s5, si0, si1, si2, si3, t0, t1, t2, t3, t4, t5, ti0, ti1, ti2, ti3] =
        *body;
    let htype = u16::from_be_bytes([h0, h1]);
    let ptype = u16::from_be_bytes([p0, p1]);
    if htype != HTYPE_ETHERNET || ptype != PTYPE_IPV4 || hlen != 6 || plen != 4 {
        return Err(ArpError::UnsupportedArp {
            htype,
            ptype,
            hlen,
            plen,
        });
    }
    let op = match u16::from_be_bytes([o0, o1]) {
        1 => ArpOp::Request,
        2 => ArpOp::Reply,
        other => return Err(ArpError::UnsupportedOp(other)),
    };
    Ok(ArpFrame {
        src_mac: eth.source,
        dst_mac: eth.destination,
        arp: ArpPacket {
            op,
            sender_mac: [s0, s1, s2, s3, s4, s5],
            sender_ip: Ipv4Addr::new(si0, si1, si2, si3),
            target_mac: [t0, t1, t2, t3, t4, t5],
            target_ip: Ipv4Addr::new(ti0, ti1, ti2, ti3),
        },
    })
}

/// A neighbour advertisement (RFC 4861 4.4) with the Ethernet and IPv6 addresses that carried it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NeighbourAdvert {
    /// Ethernet source.
    pub src_mac: [u8; 6],
    /// IPv6 source.
    pub src_ip: Ipv6Addr,
    /// IPv6 destination.
    pub dst_ip: Ipv6Addr,
    /// R flag: the sender is a router.
    pub router: bool,
    /// S flag: answer to a solicitation.
    pub solicited: bool,
    /// O flag: replace cached link-layer addresses.
    pub override_flag: bool,
    /// The address advertised.
    pub target: Ipv6Addr,
    /// The target link-layer address option, if present.
    pub target_mac: Option<[u8; 6]>,
}

fn na_body(router: bool, target: Ipv6Addr, mac: [u8; 6]) -> (Icmpv6Type, [u8; NA_BODY_LEN - 4]) {
    let mut flags = NA_FLAG_OVERRIDE;
    if router {
        flags |= NA_FLAG_ROUTER;
    }
    let icmp_type = Icmpv6Type::Unknown {
        type_u8: ICMPV6_NEIGHBOUR_ADVERT,
        code_u8: 0,
        bytes5to8: [flags, 0, 0, 0],
    };
    let mut payload = [0u8; NA_BODY_LEN - 4];
    payload[..16].copy_from_slice(&target.octets());
    payload[16] = ND_OPT_TARGET_LINKADDR;
    payload[17] = 1;
    payload[18..24].copy_from_slice(&mac);
    (icmp_type, payload)
}

/// The unsolicited neighbour advertisement keepalived sends for a virtual IPv6 address: from the
/// address itself to ff02::1 (MAC 33-33-00-00-00-01), hop limit 255, traffic class and flow
/// label 0, override flag set, router flag when the interface forwards, target link-layer
/// address option carrying `src_mac`.
pub fn unsolicited_na(src_mac: [u8; 6], vip: Ipv6Addr, router: bool) -> Vec<u8> {
    let (icmp_type, payload) = na_body(router, vip, src_mac);
    // The payload is 24 bytes: the checksum computation cannot overflow.
    let icmp = Icmpv6Header::with_checksum(icmp_type, vip.octets(), ALL_NODES.octets(), &payload)
        .unwrap_or_else(|_| Icmpv6Header::new(icmp_type));
    let ip = Ipv6Header {
        traffic_class: 0,
        flow_label: Ipv6FlowLabel::ZERO,
        payload_length: (icmp.header_len() + payload.len()) as u16,
        next_header: IpNumber::IPV6_ICMP,
        hop_limit: NDISC_HOPLIMIT,
        source: vip.octets(),
        destination: ALL_NODES.octets(),
    };
    let eth = Ethernet2Header {
        source: src_mac,
        destination: [0x33, 0x33, 0, 0, 0, 1],
        ether_type: EtherType::IPV6,
    };
    let mut frame = Vec::with_capacity(Ethernet2Header::LEN + Ipv6Header::LEN + 8 + payload.len());
    frame.extend_from_slice(&eth.to_bytes());
    frame.extend_from_slice(&ip.to_bytes());
    frame.extend_from_slice(&icmp.to_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// Decode an Ethernet/IPv6 neighbour advertisement, checking hop limit and checksum.
pub fn decode_na(frame: &[u8]) -> Result<NeighbourAdvert, ArpError> {
    let (eth, rest) = ethernet(frame, EtherType::IPV6)?;
    let ip = etherparse::Ipv6Slice::from_slice(rest).map_err(|e| match &e {
        etherparse::err::ipv6::SliceError::Len(l) => ArpError::Truncated {
            layer: "IPv6 packet",
            needed: l.required_len,
            got: l.len,
        },
        _ => ArpError::MalformedIpv6(e.to_string()),
    })?;
    let header = ip.header();
    let payload = ip.payload();
    let icmp_type = payload.payload.first().copied().unwrap_or(0);
    if payload.ip_number != IpNumber::IPV6_ICMP || icmp_type != ICMPV6_NEIGHBOUR_ADVERT {
        return Err(ArpError::NotNeighbourAdvert {
            next_header: payload.ip_number.0,
            icmp_type,
        });
    }
    let body = payload.payload;
    let fixed: &[u8; 24] = body.first_chunk::<24>().ok_or(ArpError::Truncated {
        layer: "neighbour advertisement",
        needed: 24,
        got: body.len(),
    })?;
    if header.hop_limit() != NDISC_HOPLIMIT {
        return Err(ArpError::BadHopLimit(header.hop_limit()));
    }
    let got = u16::from_be_bytes([fixed[2], fixed[3]]);
    let mut zeroed = body.to_vec();
    if let Some(ck) = zeroed.get_mut(2..4) {
        ck.copy_from_slice(&[0, 0]);
    }
    let expected = icmpv6_checksum(header.source(), header.destination(), &zeroed);
    if got != expected {
        return Err(ArpError::BadChecksum { got, expected });
    }
    let flags = fixed[4];
    let mut target_bytes = [0u8; 16];
    target_bytes.copy_from_slice(&fixed[8..24]);
    // Options are (type, length in 8-byte units, data); walk them looking for the target MAC.
    let mut target_mac = None;
    let mut opts = body.get(24..).unwrap_or(&[]);
    while let [kind, len, ..] = *opts {
        let opt_len = usize::from(len) * 8;
        let Some(opt) = opts.get(..opt_len).filter(|_| opt_len > 0) else {
            break;
        };
        if kind == ND_OPT_TARGET_LINKADDR {
            if let Some(mac) = opt.get(2..8).and_then(|m| <[u8; 6]>::try_from(m).ok()) {
                target_mac = Some(mac);
            }
        }
        opts = opts.get(opt_len..).unwrap_or(&[]);
    }
    Ok(NeighbourAdvert {
        src_mac: eth.source,
        src_ip: header.source_addr(),
        dst_ip: header.destination_addr(),
        router: flags & NA_FLAG_ROUTER != 0,
        solicited: flags & NA_FLAG_SOLICITED != 0,
        override_flag: flags & NA_FLAG_OVERRIDE != 0,
        target: Ipv6Addr::from(target_bytes),
        target_mac,
    })
}

/// ICMPv6 checksum over the IPv6 pseudo-header and the message (checksum field zeroed).
fn icmpv6_checksum(src: [u8; 16], dst: [u8; 16], msg: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        let mut chunks = bytes.chunks_exact(2);
        for pair in &mut chunks {
            if let [hi, lo] = pair {
                sum += u64::from(u16::from_be_bytes([*hi, *lo]));
            }
        }
        if let [last] = chunks.remainder() {
            sum += u64::from(u16::from_be_bytes([*last, 0]));
        }
    };
    add(&src);
    add(&dst);
    add(&(msg.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x18, 0x00, 0x0a];

    #[test]
    fn gratuitous_arp_is_a_broadcast_request_for_the_vip_itself() {
        let vip = Ipv4Addr::new(198, 18, 0, 100);
        let f = gratuitous_arp(MAC, vip);
        assert_eq!(f.len(), 42);
        assert_eq!(&f[..6], &BROADCAST_MAC);
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        // htype 1, ptype IPv4, hlen 6, plen 4, op 1 (request).
        assert_eq!(&f[14..22], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&f[22..28], &MAC);
        assert_eq!(&f[28..32], &vip.octets());
        assert_eq!(&f[32..38], &BROADCAST_MAC);
        assert_eq!(&f[38..42], &vip.octets());
        let d = decode_arp(&f).unwrap();
        assert!(d.arp.is_gratuitous());
        assert_eq!((d.src_mac, d.dst_mac), (MAC, BROADCAST_MAC));
    }

    #[test]
    fn decode_arp_rejects_with_a_reason() {
        let f = gratuitous_arp(MAC, Ipv4Addr::new(198, 18, 0, 100));
        for len in 0..f.len() {
            assert!(
                matches!(decode_arp(&f[..len]), Err(ArpError::Truncated { .. })),
                "len {len}"
            );
        }
        let mut g = f.clone();
        g[13] = 0x00;
        assert_eq!(decode_arp(&g), Err(ArpError::WrongEtherType(0x0800)));
        let mut g = f.clone();
        g[15] = 6; // IEEE 802 hardware type
        assert!(matches!(
            decode_arp(&g),
            Err(ArpError::UnsupportedArp { htype: 6, .. })
        ));
        let mut g = f.clone();
        g[18] = 16; // hlen
        assert!(matches!(
            decode_arp(&g),
            Err(ArpError::UnsupportedArp { hlen: 16, .. })
        ));
        let mut g = f.clone();
        g[21] = 3; // RARP request
        assert_eq!(decode_arp(&g), Err(ArpError::UnsupportedOp(3)));
        // Ethernet padding to 60 bytes is fine.
        let mut g = f;
        g.resize(60, 0);
        assert!(decode_arp(&g).is_ok());
    }

    #[test]
    fn unsolicited_na_layout() {
        let vip: Ipv6Addr = "2001:db8:18::100".parse().unwrap();
        let f = unsolicited_na(MAC, vip, false);
        assert_eq!(f.len(), 86);
        assert_eq!(&f[..6], &[0x33, 0x33, 0, 0, 0, 1]);
        // Version 6, traffic class and flow label 0, payload 32, ICMPv6, hop limit 255.
        assert_eq!(&f[14..22], &[0x60, 0, 0, 0, 0, 32, 58, 255]);
        assert_eq!(&f[22..38], &vip.octets());
        assert_eq!(&f[38..54], &ALL_NODES.octets());
        assert_eq!((f[54], f[55], f[58]), (136, 0, NA_FLAG_OVERRIDE));
        assert_eq!(&f[62..78], &vip.octets());
        assert_eq!(&f[78..80], &[2, 1]);
        assert_eq!(&f[80..86], &MAC);
        let na = decode_na(&f).unwrap();
        assert_eq!(
            na,
            NeighbourAdvert {
                src_mac: MAC,
                src_ip: vip,
                dst_ip: ALL_NODES,
                router: false,
                solicited: false,
                override_flag: true,
                target: vip,
                target_mac: Some(MAC),
            }
        );
        assert!(decode_na(&unsolicited_na(MAC, vip, true)).unwrap().router);
    }

    #[test]
    fn decode_na_rejects_with_a_reason() {
        let vip: Ipv6Addr = "fe80::100".parse().unwrap();
        let f = unsolicited_na(MAC, vip, false);
        let mut g = f.clone();
        g[21] = 64;
        assert_eq!(decode_na(&g), Err(ArpError::BadHopLimit(64)));
        let mut g = f.clone();
        g[85] ^= 1;
        assert!(matches!(decode_na(&g), Err(ArpError::BadChecksum { .. })));
        let mut g = f.clone();
        g[54] = 135;
        assert!(matches!(
            decode_na(&g),
            Err(ArpError::NotNeighbourAdvert { icmp_type: 135, .. })
        ));
        let mut g = f.clone();
        g[12] = 0x08;
        g[13] = 0x00;
        assert_eq!(decode_na(&g), Err(ArpError::WrongEtherType(0x0800)));
        assert!(matches!(
            decode_na(&f[..60]),
            Err(ArpError::Truncated { .. })
        ));
        let mut g = f.clone();
        g[14] = 0x40; // IP version 4 in an IPv6 frame
        assert!(matches!(decode_na(&g), Err(ArpError::MalformedIpv6(_))));
        // An NA without options has no target MAC.
        let mut g = f[..78].to_vec();
        g[19] = 24;
        let sum = icmpv6_checksum(vip.octets(), ALL_NODES.octets(), &{
            let mut m = g[54..].to_vec();
            m[2] = 0;
            m[3] = 0;
            m
        });
        g[56..58].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(decode_na(&g).unwrap().target_mac, None);
    }

    #[test]
    fn icmpv6_checksum_agrees_with_etherparse() {
        let vip: Ipv6Addr = "2001:db8:18::100".parse().unwrap();
        let f = unsolicited_na(MAC, vip, true);
        let mut m = f[54..].to_vec();
        let carried = u16::from_be_bytes([m[2], m[3]]);
        m[2] = 0;
        m[3] = 0;
        assert_eq!(
            icmpv6_checksum(vip.octets(), ALL_NODES.octets(), &m),
            carried
        );
    }

    fn arb_arp() -> impl Strategy<Value = ArpPacket> {
        (
            any::<bool>(),
            any::<[u8; 6]>(),
            any::<[u8; 4]>(),
            any::<[u8; 6]>(),
            any::<[u8; 4]>(),
        )
            .prop_map(|(reply, sender_mac, sip, target_mac, tip)| ArpPacket {
                op: if reply { ArpOp::Reply } else { ArpOp::Request },
                sender_mac,
                sender_ip: Ipv4Addr::from(sip),
                target_mac,
                target_ip: Ipv4Addr::from(tip),
            })
    }

    proptest! {
        #[test]
        fn arp_round_trip(arp in arb_arp(), src in any::<[u8; 6]>(), dst in any::<[u8; 6]>()) {
            let got = decode_arp(&encode_arp(src, dst, &arp)).unwrap();
            prop_assert_eq!(got, ArpFrame { src_mac: src, dst_mac: dst, arp });
        }

        #[test]
        fn na_round_trip(mac in any::<[u8; 6]>(), vip in any::<[u8; 16]>(), router in any::<bool>()) {
            let vip = Ipv6Addr::from(vip);
            let na = decode_na(&unsolicited_na(mac, vip, router)).unwrap();
            prop_assert_eq!((na.target, na.target_mac, na.router, na.src_mac), (vip, Some(mac), router, mac));
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = decode_arp(&bytes);
            let _ = decode_na(&bytes);
            // The same garbage behind valid headers reaches the inner parsers.
            let mut na = unsolicited_na(MAC, Ipv6Addr::LOCALHOST, false);
            na.truncate(54);
            na.extend_from_slice(&bytes);
            na[18..20].copy_from_slice(&(bytes.len() as u16).to_be_bytes());
            let _ = decode_na(&na);
        }
    }
}
