//! Gratuitous ARP and unsolicited neighbour advertisements, as keepalived 2.2 sends them when an
//! instance becomes master, and an ARP / neighbour-advertisement decoder for the simulator's hosts.
//!
//! Layouts follow keepalived's `send_gratuitous_arp_immediate` (vrrp_arp.c) and
//! `ndisc_send_unsolicited_na_immediate` (vrrp_ndisc.c), checked byte for byte against captures
//! in `fixtures/vrrp/`.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::arp::{ArpParseError, ArpRepr};
use crate::wire::ethernet::{ethertype, EthernetRepr, HEADER_LEN as ETH_LEN};
use crate::wire::icmpv6::{self, NeighbourAdvertRepr, NDISC_HOP_LIMIT};
use crate::wire::ipv6::{self, Ipv6Repr};
use crate::wire::{ip_proto, WireError};

pub use crate::wire::arp::ArpOp;

/// Ethernet broadcast address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// Length of an Ethernet/IPv4 ARP message (without the Ethernet header).
pub const ARP_LEN: usize = crate::wire::arp::LEN;
/// IPv6 all-nodes multicast group, where unsolicited neighbour advertisements go.
pub const ALL_NODES: Ipv6Addr = icmpv6::ALL_NODES;
/// ICMPv6 type of a neighbour advertisement.
pub const ICMPV6_NEIGHBOUR_ADVERT: u8 = icmpv6::NEIGHBOUR_ADVERT;

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

impl From<&ArpPacket> for ArpRepr {
    fn from(a: &ArpPacket) -> ArpRepr {
        ArpRepr {
            op: a.op,
            sha: a.sender_mac,
            spa: a.sender_ip,
            tha: a.target_mac,
            tpa: a.target_ip,
        }
    }
}

/// Encode an ARP message in an Ethernet frame (42 bytes, unpadded as the sender hands it to the NIC).
pub fn encode_arp(src_mac: [u8; 6], dst_mac: [u8; 6], arp: &ArpPacket) -> Vec<u8> {
    ArpRepr::from(arp).to_frame(src_mac, dst_mac)
}

/// The gratuitous ARP keepalived sends for a virtual IPv4 address: a broadcast who-has for the
/// address itself, sender and target IP both the VIP, target MAC the broadcast address.
pub fn gratuitous_arp(src_mac: [u8; 6], vip: Ipv4Addr) -> Vec<u8> {
    ArpRepr::gratuitous(src_mac, vip).to_frame(src_mac, BROADCAST_MAC)
}

/// `Truncated` for `layer` from a wire error, keeping its counts.
fn truncated(layer: &'static str, e: WireError) -> ArpError {
    match e {
        WireError::Truncated { needed, got, .. } => ArpError::Truncated { layer, needed, got },
        other => ArpError::MalformedIpv6(other.to_string()),
    }
}

/// The Ethernet header of `frame` and what follows it, when it carries `want`.
fn ethernet(frame: &[u8], want: u16) -> Result<(EthernetRepr, &[u8]), ArpError> {
    let (eth, rest) = EthernetRepr::parse(frame).map_err(|e| truncated("Ethernet header", e))?;
    if eth.ethertype != want {
        return Err(ArpError::WrongEtherType(eth.ethertype));
    }
    Ok((eth, rest))
}

/// Decode an Ethernet/IPv4 ARP frame (trailing Ethernet padding is ignored).
pub fn decode_arp(frame: &[u8]) -> Result<ArpFrame, ArpError> {
    let (eth, rest) = ethernet(frame, ethertype::ARP)?;
    let (a, _padding) = ArpRepr::parse(rest).map_err(|e| match e {
        ArpParseError::Wire(w) => truncated("ARP message", w),
        ArpParseError::Format(f) => ArpError::UnsupportedArp {
            htype: f.htype,
            ptype: f.ptype,
            hlen: f.hlen,
            plen: f.plen,
        },
        ArpParseError::Op(op) => ArpError::UnsupportedOp(op),
    })?;
    Ok(ArpFrame {
        src_mac: eth.src,
        dst_mac: eth.dst,
        arp: ArpPacket {
            op: a.op,
            sender_mac: a.sha,
            sender_ip: a.spa,
            target_mac: a.tha,
            target_ip: a.tpa,
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

/// The unsolicited neighbour advertisement keepalived sends for a virtual IPv6 address: from the
/// address itself to ff02::1 (MAC 33-33-00-00-00-01), hop limit 255, traffic class and flow
/// label 0, override flag set, router flag when the interface forwards, target link-layer
/// address option carrying `src_mac`.
pub fn unsolicited_na(src_mac: [u8; 6], vip: Ipv6Addr, router: bool) -> Vec<u8> {
    let na = NeighbourAdvertRepr {
        router,
        solicited: false,
        override_flag: true,
        target: vip,
        target_mac: Some(src_mac),
    };
    let ip = Ipv6Repr {
        src: vip,
        dst: ALL_NODES,
        next_header: ip_proto::ICMPV6,
        hop_limit: NDISC_HOP_LIMIT,
        traffic_class: 0,
        flow_label: 0,
        payload_len: na.buffer_len(),
    };
    let eth = EthernetRepr {
        dst: [0x33, 0x33, 0, 0, 0, 1],
        src: src_mac,
        ethertype: ethertype::IPV6,
    };
    let mut frame = vec![0; ETH_LEN + ip.buffer_len()];
    // The buffer is sized for all three: none of them fails.
    let _ = eth.emit(&mut frame);
    let _ = ip.emit(&mut frame[ETH_LEN..]);
    let _ = na.emit(&mut frame[ETH_LEN + ipv6::HEADER_LEN..], vip, ALL_NODES);
    frame
}

/// Decode an Ethernet/IPv6 neighbour advertisement, checking hop limit and checksum.
pub fn decode_na(frame: &[u8]) -> Result<NeighbourAdvert, ArpError> {
    let (eth, rest) = ethernet(frame, ethertype::IPV6)?;
    let (ip, payload) = Ipv6Repr::parse(rest).map_err(|e| match e {
        WireError::Truncated { needed, got, .. } => ArpError::Truncated {
            layer: "IPv6 packet",
            needed,
            got,
        },
        other => ArpError::MalformedIpv6(other.to_string()),
    })?;
    let up = ipv6::upper_layer(ip.next_header, payload).map_err(|e| match e {
        WireError::Truncated { needed, got, .. } => ArpError::Truncated {
            layer: "IPv6 packet",
            needed,
            got,
        },
        other => ArpError::MalformedIpv6(other.to_string()),
    })?;
    let body = up.payload;
    let icmp_type = body.first().copied().unwrap_or(0);
    if up.protocol != ip_proto::ICMPV6 || icmp_type != ICMPV6_NEIGHBOUR_ADVERT {
        return Err(ArpError::NotNeighbourAdvert {
            next_header: up.protocol,
            icmp_type,
        });
    }
    let na =
        NeighbourAdvertRepr::parse(body).map_err(|e| truncated("neighbour advertisement", e))?;
    if ip.hop_limit != NDISC_HOP_LIMIT {
        return Err(ArpError::BadHopLimit(ip.hop_limit));
    }
    icmpv6::verify_checksum(ip.src, ip.dst, body).map_err(|e| match e {
        WireError::Checksum { got, expected, .. } => ArpError::BadChecksum { got, expected },
        other => truncated("neighbour advertisement", other),
    })?;
    Ok(NeighbourAdvert {
        src_mac: eth.src,
        src_ip: ip.src,
        dst_ip: ip.dst,
        router: na.router,
        solicited: na.solicited,
        override_flag: na.override_flag,
        target: na.target,
        target_mac: na.target_mac,
    })
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
        assert_eq!((f[54], f[55], f[58]), (136, 0, 0x20));
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
        let sum = crate::wire::checksum::icmpv6(vip, ALL_NODES, &{
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
        assert_eq!(crate::wire::checksum::icmpv6(vip, ALL_NODES, &m), carried);
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
