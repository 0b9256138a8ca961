//! The userspace IPVS data plane: frames for a virtual service held by this
//! director go through the connection table and leave toward a real server.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use rustc_hash::FxHashMap;

use crate::ipvs::conn::TcpFlags;
use crate::ipvs::table::{DropReason, PacketInfo, Verdict};
use crate::ipvs::{fwd, FwdMethod, Protocol};
use crate::wire::arp::{ArpOp, ArpRepr};
use crate::wire::ethernet;
use crate::wire::{self, ip_proto};

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

/// The fields IPVS needs, read from an Ethernet frame ([`wire::flow`]: a hand-written
/// IPv4 reader on the hot path).
#[inline]
pub fn packet_info(frame: &[u8]) -> Option<PacketInfo> {
    let f = wire::flow::flow(frame)?;
    Some(PacketInfo {
        proto: if f.protocol == ip_proto::TCP {
            Protocol::Tcp
        } else {
            Protocol::Udp
        },
        src: f.src,
        sport: f.sport,
        dst: f.dst,
        dport: f.dport,
        tcp: if f.protocol == ip_proto::TCP {
            TcpFlags {
                syn: f.tcp_flags.syn(),
                fin: f.tcp_flags.fin(),
                ack: f.tcp_flags.ack(),
                rst: f.tcp_flags.rst(),
            }
        } else {
            TcpFlags::default()
        },
        fwmark: 0,
        len: f.ip_len,
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
    // Hashed by address: looked up for every forwarded packet, never iterated.
    table: FxHashMap<IpAddr, BTreeMap<IfaceName, Neighbour>>,
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
    ArpRepr {
        op: ArpOp::Request,
        sha: mac,
        spa: ip,
        tha: [0; 6],
        tpa: target,
    }
    .to_frame(mac, ethernet::BROADCAST)
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
                    iface: if std::sync::Arc::ptr_eq(iface, &arrived_on) || **iface == *arrived_on {
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
    use crate::wire::ethernet::EthernetRepr;

    #[test]
    fn packet_info_keeps_the_four_flags_ipvs_reads() {
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1, 100)
            .syn()
            .psh()
            .write(&mut f, b"x")
            .unwrap();
        let p = packet_info(&f).unwrap();
        assert_eq!((p.proto, p.sport, p.dport), (Protocol::Tcp, 40000, 80));
        assert_eq!(
            p.tcp,
            TcpFlags {
                syn: true,
                ..TcpFlags::default()
            }
        );
        let mut u = Vec::new();
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(5000, 53)
            .write(&mut u, b"q")
            .unwrap();
        let p = packet_info(&u).unwrap();
        assert_eq!((p.proto, p.tcp), (Protocol::Udp, TcpFlags::default()));
        assert_eq!(packet_info(&u[..30]), None);
    }

    #[test]
    fn arp_request_is_a_broadcast_who_has() {
        let f = arp_request(
            [2; 6],
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 9),
        );
        let (eth, body) = EthernetRepr::parse(&f).unwrap();
        assert_eq!(
            (eth.dst, eth.src, eth.ethertype),
            ([0xff; 6], [2; 6], 0x0806)
        );
        let (a, _) = ArpRepr::parse(body).unwrap();
        assert_eq!(
            (a.op, a.tha, a.tpa),
            (ArpOp::Request, [0; 6], Ipv4Addr::new(10, 0, 0, 9))
        );
    }
}
