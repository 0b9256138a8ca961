//! The userspace IPVS data plane: frames for a virtual service held by this
//! director go through the connection table and leave toward a real server.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use crate::ipvs::conn::{ConnKey, TcpFlags};
use crate::ipvs::table::{DropReason, PacketInfo, Verdict};
use crate::ipvs::{fwd, FwdMethod, Protocol};
use crate::vrrp::arp::{self, ArpOp, ArpPacket};

use super::IfaceName;

/// What the data plane did with one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Not IP traffic for a virtual service we hold.
    NotOurs,
    /// Sent on toward a real server: the frame to transmit, and on which interface.
    Forward {
        /// Interface to send on.
        iface: IfaceName,
        /// Rewritten frame.
        frame: Vec<u8>,
    },
    /// The real server's MAC is unknown: here is an ARP request to send; the packet is dropped
    /// (the client retransmits, as it would while the kernel resolves a neighbour).
    Resolve {
        /// Interface to send on.
        iface: IfaceName,
        /// ARP who-has frame.
        frame: Vec<u8>,
    },
    /// IPVS dropped it.
    Dropped(DropReason),
    /// A forwarding method this data plane does not carry yet.
    Unsupported(FwdMethod),
}

/// The fields IPVS needs, read from an Ethernet frame.
pub fn packet_info(frame: &[u8]) -> Option<PacketInfo> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let (src, dst) = match p.net? {
        NetSlice::Ipv4(ip) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
        ),
        NetSlice::Ipv6(ip) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
        ),
    };
    let (proto, sport, dport, tcp) = match p.transport? {
        TransportSlice::Tcp(t) => (
            Protocol::Tcp,
            t.source_port(),
            t.destination_port(),
            TcpFlags {
                syn: t.syn(),
                fin: t.fin(),
                ack: t.ack(),
                rst: t.rst(),
            },
        ),
        TransportSlice::Udp(u) => (
            Protocol::Udp,
            u.source_port(),
            u.destination_port(),
            TcpFlags::default(),
        ),
        _ => return None,
    };
    Some(PacketInfo {
        proto,
        src,
        sport,
        dst,
        dport,
        tcp,
        fwmark: 0,
    })
}

/// The connection key of an IPv4 TCP or UDP frame, read straight from the headers with
/// bounds checks only: good for a hint ([`crate::ipvs::conn::ConnTable::prefetch`]), never
/// for a decision (`packet_info` validates).
pub fn lookup_key_hint(frame: &[u8]) -> Option<ConnKey> {
    let ip = frame.get(14..)?;
    if frame.get(12..14)? != [0x08, 0x00] || ip.first()? >> 4 != 4 {
        return None;
    }
    let ports = ip.get(usize::from(ip[0] & 0x0f) * 4..)?.get(..4)?;
    let addr = |i: usize| -> Option<IpAddr> {
        let b: [u8; 4] = ip.get(i..i + 4)?.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(b)))
    };
    Some(ConnKey {
        proto: *ip.get(9)?,
        caddr: addr(12)?,
        cport: u16::from_be_bytes([ports[0], ports[1]]),
        vaddr: addr(16)?,
        vport: u16::from_be_bytes([ports[2], ports[3]]),
    })
}

/// Where a neighbour was last seen.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// Its hardware address.
    pub mac: [u8; 6],
}

/// Learnt IP → MAC bindings per interface (the director's neighbour table).
#[derive(Clone, Debug, Default)]
pub struct Neighbours {
    table: BTreeMap<IpAddr, BTreeMap<IfaceName, Neighbour>>,
}

impl Neighbours {
    /// Remember that `ip` is at `mac` on `iface`.
    pub fn learn(&mut self, iface: &IfaceName, ip: IpAddr, mac: [u8; 6]) {
        if ip.is_unspecified() || mac == [0; 6] || mac == [0xff; 6] {
            return;
        }
        self.table
            .entry(ip)
            .or_default()
            .insert(iface.clone(), Neighbour { mac });
    }

    /// The MAC of `ip`, with the interface it was seen on (the first by name if several).
    pub fn lookup(&self, ip: IpAddr) -> Option<(&IfaceName, [u8; 6])> {
        self.table
            .get(&ip)?
            .first_key_value()
            .map(|(i, n)| (i, n.mac))
    }
}

/// An ARP who-has for `target` from `(mac, ip)`.
pub fn arp_request(mac: [u8; 6], ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    arp::encode_arp(
        mac,
        [0xff; 6],
        &ArpPacket {
            op: ArpOp::Request,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: [0; 6],
            target_ip: target,
        },
    )
}

/// The IPVS verdict turned into what to put on the wire.
pub fn forward(
    verdict: Verdict,
    frame: Vec<u8>,
    arrived_on: IfaceName,
    our: impl Fn(&str) -> Option<([u8; 6], Option<Ipv4Addr>)>,
    neighbours: &Neighbours,
) -> Handled {
    let f = match verdict {
        Verdict::Forward(f) => f,
        Verdict::Drop(r) => return Handled::Dropped(r),
        Verdict::Pass | Verdict::Reply { .. } => return Handled::NotOurs,
    };
    if f.fwd != FwdMethod::Route {
        return Handled::Unsupported(f.fwd);
    }
    let rs = f.dest.0;
    match neighbours.lookup(rs) {
        Some((iface, mac)) => {
            let Some((our_mac, _)) = our(iface) else {
                return Handled::NotOurs;
            };
            match fwd::dr(frame, our_mac, mac) {
                Ok(frame) => Handled::Forward {
                    // Usually out where it came in: the name moves on, no count changes.
                    iface: if **iface == *arrived_on {
                        arrived_on
                    } else {
                        iface.clone()
                    },
                    frame,
                },
                Err(_) => Handled::NotOurs,
            }
        }
        None => {
            let (IpAddr::V4(target), Some((mac, Some(ip)))) = (rs, our(&arrived_on)) else {
                return Handled::NotOurs;
            };
            Handled::Resolve {
                iface: arrived_on,
                frame: arp_request(mac, ip, target),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The hint reads the key `packet_info` gives for any IPv4 TCP or UDP frame, and
        /// never panics on other bytes.
        #[test]
        fn hint_key_matches_the_validated_parse(
            src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, udp: bool,
            payload in proptest::collection::vec(any::<u8>(), 0..40),
            junk in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64);
            let mut frame = Vec::new();
            if udp {
                b.udp(sport, dport).write(&mut frame, &payload).unwrap();
            } else {
                b.tcp(sport, dport, 1, 100).syn().write(&mut frame, &payload).unwrap();
            }
            let pkt = packet_info(&frame).unwrap();
            let want = ConnKey {
                proto: pkt.proto.number(),
                caddr: pkt.src,
                cport: pkt.sport,
                vaddr: pkt.dst,
                vport: pkt.dport,
            };
            prop_assert_eq!(lookup_key_hint(&frame), Some(want));
            let _ = lookup_key_hint(&junk);
        }
    }
}
