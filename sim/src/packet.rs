//! Frame codecs the modelled hosts need: Ethernet II, ARP (etherparse 0.16 has no ARP
//! packet type, so a small codec lives here) and IPv4/TCP through etherparse.

use std::net::Ipv4Addr;

use etherparse::{IpNumber, Ipv4Header, Ipv4Slice, TcpHeader, TcpSlice};

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
        // Headers are built directly: etherparse's PacketBuilder moves large header structs
        // at every step, which dominated the simulator's profile.
        let mut tcp = TcpHeader::new(self.sport, self.dport, self.seq, 65535);
        tcp.syn = self.flags.syn;
        tcp.ack = self.flags.ack;
        tcp.fin = self.flags.fin;
        tcp.rst = self.flags.rst;
        tcp.psh = self.flags.psh;
        if self.flags.ack {
            tcp.acknowledgment_number = self.ack;
        }
        let tcp_len = tcp.header_len() + self.payload.len();
        let ip_payload = u16::try_from(tcp_len).unwrap_or(u16::MAX);
        let mut f = Vec::with_capacity(ETH_HDR + 20 + tcp_len);
        f.extend_from_slice(&[0u8; 12]);
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        // Modelled payloads are far below the IPv4 limit; an oversized one is sent truncated-length
        // rather than panicking.
        if let Ok(mut ip) = Ipv4Header::new(
            ip_payload,
            64,
            IpNumber::TCP,
            self.src.octets(),
            self.dst.octets(),
        ) {
            ip.dont_fragment = true;
            tcp.checksum = tcp.calc_checksum_ipv4(&ip, self.payload).unwrap_or(0);
            let _ = ip.write(&mut f);
        }
        let _ = tcp.write(&mut f);
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
        let seg = TcpSeg {
            src: Ipv4Addr::new(1, 2, 3, 4),
            dst: Ipv4Addr::new(5, 6, 7, 8),
            sport: 40000,
            dport: 80,
            seq: 7,
            ack: 9,
            flags: TcpFlags {
                ack: true,
                psh: true,
                ..TcpFlags::default()
            },
            payload: b"GET",
        };
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

    proptest::proptest! {
        /// The fast SYN test agrees with a full parse, for every flag combination and for
        /// any bytes at all.
        #[test]
        fn syn_test_agrees_with_parse(
            syn: bool, ack: bool, fin: bool, rst: bool, psh: bool,
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
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
            proptest::prop_assert_eq!(is_tcp_syn(&f), syn && !ack);
            let parsed = parse_tcp(&junk).map(|s| s.flags.syn && !s.flags.ack);
            if let Ok(is_syn) = parsed {
                proptest::prop_assert_eq!(is_tcp_syn(&junk), is_syn);
            }
        }
    }
}
