//! The userspace IPVS data plane: frames for a virtual service held by this
//! director go through the connection table and leave toward a real server.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rustc_hash::FxHashMap;

use crate::ipvs::conn::TcpFlags;
use crate::ipvs::table::{DropReason, PacketInfo, Verdict};
use crate::ipvs::{fwd, FwdMethod, Protocol};
use crate::wire::arp::{ArpOp, ArpRepr};
use crate::wire::ethernet;
use crate::wire::icmpv6::NdiscFrame;
use crate::wire::{self, ip_proto};

use super::env::{Ipv6Side, NodeEnv};
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
    /// The real server's MAC is unknown: here is an ARP request (IPv4) or a neighbour
    /// solicitation (IPv6) to send; the packet is dropped (the client retransmits, as it
    /// would while the kernel resolves a neighbour).
    Resolve {
        /// Interface to send on.
        iface: IfaceName,
        /// ARP who-has frame.
        frame: Vec<u8>,
    },
    /// For the host to route on as it routes what it sends itself: a NAT reply rewritten
    /// to come from the virtual service, or a packet tunnelled to a real server.
    Route {
        /// Rewritten frame (Ethernet addresses to be filled in by the host).
        frame: Vec<u8>,
    },
    /// No route to the real server (a tunnel's outer header has no source address).
    NoRoute,
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
        proto: match f.protocol {
            ip_proto::TCP => Protocol::Tcp,
            ip_proto::SCTP => Protocol::Sctp,
            _ => Protocol::Udp,
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
        sctp: f.sctp,
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
///
/// DR and NAT frames go out to the real server's MAC from the neighbour table (resolved
/// first when unknown); a TUN packet goes to the host's routing as the kernel's
/// `ip_vs_tunnel_xmit` hands it to `ip_local_out` (`ip_vs_tunnel_xmit_v6` to
/// `ip6_local_out`), its outer source the route's ([`NodeEnv::source_for`],
/// [`NodeEnv::source_for6`] over `v6`'s routes, the host's addresses and the IPv6 VIPs held).
pub fn forward(
    verdict: Verdict,
    frame: Vec<u8>,
    arrived_on: IfaceName,
    env: &NodeEnv,
    v6: Ipv6Side<'_>,
    neighbours: &Neighbours,
) -> Handled {
    let f = match verdict {
        Verdict::Forward(f) => f,
        Verdict::Drop(r) => return Handled::Dropped(r),
        Verdict::Pass | Verdict::Reply { .. } => return Handled::NotOurs,
    };
    let rs = f.dest.0;
    match (f.fwd, rs) {
        (FwdMethod::Route | FwdMethod::Masq, _) => {}
        (FwdMethod::Tunnel(kind), IpAddr::V4(remote)) => {
            let Some(local) = env.source_for(remote) else {
                return Handled::NoRoute;
            };
            return match fwd::tun(&frame, kind, local, remote, [0; 6], [0; 6]) {
                Ok(frame) => Handled::Route { frame },
                // IPv6 in IPv4, which the kernel also sends: not carried yet.
                Err(fwd::FwdError::NotIpv4) => Handled::Unsupported(f.fwd),
                Err(_) => Handled::NotOurs,
            };
        }
        (FwdMethod::Tunnel(kind), IpAddr::V6(remote)) => {
            // ip_vs_tunnel_xmit_v6: the outer source as __ip_vs_route_output_v6 picks it.
            let Some(local) = env.source_for6(v6, remote) else {
                return Handled::NoRoute;
            };
            return match fwd::tun6(&frame, kind, local, remote, [0; 6], [0; 6]) {
                Ok(frame) => Handled::Route { frame },
                // IPv4 in IPv6, which the kernel also sends: not carried yet.
                Err(fwd::FwdError::Family) => Handled::Unsupported(f.fwd),
                Err(_) => Handled::NotOurs,
            };
        }
        _ => return Handled::Unsupported(f.fwd),
    }
    let rewrite = |frame: Vec<u8>, our_mac: [u8; 6], rs_mac: [u8; 6]| match f.fwd {
        FwdMethod::Masq => fwd::nat_in(&frame, SocketAddr::new(rs, f.dest.1), our_mac, rs_mac),
        _ => fwd::dr(frame, our_mac, rs_mac),
    };
    match neighbours.lookup(rs) {
        Some((iface, mac)) => {
            let Some((our_mac, _)) = env.mac_and_v4(iface) else {
                return Handled::NotOurs;
            };
            match rewrite(frame, our_mac, mac) {
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
            let frame = match (rs, env.mac_and_v4(&arrived_on)) {
                (IpAddr::V4(target), Some((mac, Some(ip)))) => arp_request(mac, ip, target),
                (IpAddr::V6(target), Some((mac, _))) => {
                    let Some(src) = env.ndisc_source(&arrived_on, target) else {
                        return Handled::NotOurs;
                    };
                    let (ns, dst_mac) = NdiscFrame::solicit(mac, src, target);
                    ns.emit(dst_mac)
                }
                _ => return Handled::NotOurs,
            };
            Handled::Resolve {
                iface: arrived_on,
                frame,
            }
        }
    }
}

/// A real server's packet that IPVS matched as a NAT reply ([`Verdict::Reply`]), its source
/// rewritten to the virtual address and port; anything else is not ours.
pub fn reply(verdict: Verdict, frame: &[u8]) -> Handled {
    let Verdict::Reply { vaddr, .. } = verdict else {
        return Handled::NotOurs;
    };
    match fwd::nat_out(frame, SocketAddr::new(vaddr.0, vaddr.1), [0; 6], [0; 6]) {
        Ok(frame) => Handled::Route { frame },
        Err(_) => Handled::NotOurs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Instant;
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

    /// A TCP segment between two IPv4 sockets, as an Ethernet frame.
    fn seg(src: ([u8; 4], u16), dst: ([u8; 4], u16), syn: bool) -> Vec<u8> {
        let mut f = Vec::new();
        let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, 1, 100);
        let b = if syn { b.syn() } else { b.ack(1).syn() };
        b.write(&mut f, b"").unwrap();
        f
    }

    /// An IPVS table with one rr service on `vip`:80 and one real server `rs`:`port`.
    fn one_service(
        vip: impl Into<IpAddr>,
        rs: impl Into<IpAddr>,
        port: u16,
        fwd: FwdMethod,
    ) -> crate::ipvs::table::Ipvs {
        use crate::ipvs::service::{DestSpec, ServiceSpec};
        let rs: IpAddr = rs.into();
        let key = crate::ipvs::ServiceKey::Inet {
            proto: Protocol::Tcp,
            addr: vip.into(),
            port: 80,
        };
        let mut ipvs = crate::ipvs::table::Ipvs::default();
        ipvs.add_service(ServiceSpec {
            key,
            scheduler: crate::ipvs::sched::SchedKind::Rr,
            flags: Default::default(),
            persistence: None,
            netmask_prefix: 32,
            one_packet: false,
        })
        .unwrap();
        let dest = DestSpec {
            addr: rs,
            port,
            fwd,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        };
        ipvs.add_dest(&key, &dest).unwrap();
        ipvs
    }

    #[test]
    fn nat_rewrites_the_destination_in_and_the_source_of_the_reply() {
        use crate::ipvs::SockAddr;
        let vip = [10, 0, 0, 100];
        let rs = Ipv4Addr::new(192, 168, 0, 11);
        let mut ipvs = one_service(vip, rs, 8080, FwdMethod::Masq);
        let mut rng =
            <rand_chacha::ChaCha8Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(1);
        let iface = IfaceName::from("eth1");
        let mut neigh = Neighbours::default();
        neigh.learn(&iface, rs.into(), [6; 6]);
        let env = NodeEnv {
            ifaces: vec![crate::director::Iface {
                name: "eth1".into(),
                mac: [5; 6],
                addrs: vec![Ipv4Addr::new(192, 168, 0, 1).into()],
            }],
            routes: Vec::new(),
        };

        let syn = seg(([192, 0, 2, 7], 40000), (vip, 80), true);
        let v = ipvs.process(Instant::ZERO, &packet_info(&syn).unwrap(), &mut rng);
        let Handled::Forward { frame, iface: out } =
            forward(v, syn, iface.clone(), &env, Ipv6Side::default(), &neigh)
        else {
            panic!("not forwarded");
        };
        assert_eq!(&*out, "eth1");
        let (eth, _) = EthernetRepr::parse(&frame).unwrap();
        assert_eq!((eth.src, eth.dst), ([5; 6], [6; 6]));
        let p = packet_info(&frame).unwrap();
        assert_eq!((p.dst, p.dport), (IpAddr::V4(rs), 8080));
        let ip = etherparse::Ipv4HeaderSlice::from_slice(&frame[14..]).unwrap();
        assert!(ip.to_header().calc_header_checksum() == ip.header_checksum());

        let synack = seg((rs.octets(), 8080), ([192, 0, 2, 7], 40000), false);
        let v = ipvs.process_reply(Instant::ZERO, &packet_info(&synack).unwrap());
        assert!(matches!(
            v,
            Verdict::Reply {
                vaddr: SockAddr(_, 80),
                ..
            }
        ));
        let Handled::Route { frame } = reply(v, &synack) else {
            panic!("not a reply");
        };
        let p = packet_info(&frame).unwrap();
        assert_eq!((p.src, p.sport), (IpAddr::V4(vip.into()), 80));
        assert_eq!((p.dst, p.dport), ("192.0.2.7".parse().unwrap(), 40000));
        // Anything IPVS did not match as a reply is not ours to route.
        let stray = seg(([192, 168, 0, 12], 8080), ([192, 0, 2, 7], 1), false);
        let v = ipvs.process_reply(Instant::ZERO, &packet_info(&stray).unwrap());
        assert_eq!(reply(v, &stray), Handled::NotOurs);
    }

    #[test]
    fn tun_goes_to_the_host_routing_from_the_route_source() {
        use crate::director::{HostRoute, Iface};
        use crate::ipvs::TunnelType;
        let vip = [10, 0, 0, 100];
        // A real server two routers away: reached through the default route on eth0.
        let rs = Ipv4Addr::new(172, 16, 5, 11);
        let mut ipvs = one_service(vip, rs, 80, FwdMethod::Tunnel(TunnelType::Gre));
        let iface = |name: &str, last: u8| Iface {
            name: name.into(),
            mac: [last; 6],
            addrs: vec![Ipv4Addr::new(10, 0, last, 2).into()],
        };
        let route = |dst: [u8; 4], prefix, dev: &str| HostRoute {
            dst: dst.into(),
            prefix,
            iface: dev.into(),
            src: None,
        };
        let mut env = NodeEnv {
            ifaces: vec![iface("eth0", 0), iface("eth1", 1)],
            routes: vec![
                route([10, 0, 0, 0], 24, "eth0"),
                route([10, 0, 1, 0], 24, "eth1"),
                route([0, 0, 0, 0], 0, "eth0"),
            ],
        };
        let mut rng =
            <rand_chacha::ChaCha8Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(1);
        let syn = seg(([192, 0, 2, 7], 40000), (vip, 80), true);
        let pkt = packet_info(&syn).unwrap();
        let neigh = Neighbours::default();
        let v = ipvs.process(Instant::ZERO, &pkt, &mut rng);
        let Handled::Route { frame } = forward(
            v,
            syn.clone(),
            "eth0".into(),
            &env,
            Ipv6Side::default(),
            &neigh,
        ) else {
            panic!("not routed");
        };
        let ip = etherparse::Ipv4HeaderSlice::from_slice(&frame[14..]).unwrap();
        assert_eq!(ip.protocol().0, 47);
        assert_eq!(
            (ip.source_addr(), ip.destination_addr()),
            (Ipv4Addr::new(10, 0, 0, 2), rs)
        );
        // A more specific route through eth1 wins, and its `src` when it names one.
        env.routes.push(HostRoute {
            src: Some(Ipv4Addr::new(10, 0, 1, 9)),
            ..route([172, 16, 0, 0], 16, "eth1")
        });
        let v = ipvs.process(Instant::ZERO, &pkt, &mut rng);
        let Handled::Route { frame } = forward(
            v,
            syn.clone(),
            "eth0".into(),
            &env,
            Ipv6Side::default(),
            &neigh,
        ) else {
            panic!("not routed");
        };
        let ip = etherparse::Ipv4HeaderSlice::from_slice(&frame[14..]).unwrap();
        assert_eq!(ip.source_addr(), Ipv4Addr::new(10, 0, 1, 9));
        // No route: nothing sent.
        env.routes.clear();
        let v = ipvs.process(Instant::ZERO, &pkt, &mut rng);
        assert_eq!(
            forward(v, syn, "eth0".into(), &env, Ipv6Side::default(), &neigh),
            Handled::NoRoute
        );
    }

    #[test]
    fn ipv6_tun_goes_to_the_host_routing_from_the_selected_source() {
        use crate::director::{HostRoute6, Iface};
        use crate::ipvs::TunnelType;
        use crate::vrrp::Vip;
        let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap();
        let vip = v6("2001:db8:22::118");
        // A real server in another data centre, reached through the default route on eth0.
        let rs = v6("2001:db8:20::11");
        let mut ipvs = one_service(vip, rs, 80, FwdMethod::Tunnel(TunnelType::Ipip));
        let iface = |name: &str, last: u8, global: &str| Iface {
            name: name.into(),
            mac: [last; 6],
            addrs: vec![
                Ipv4Addr::new(10, 0, last, 2).into(),
                v6(&format!("fe80::{last}")).into(),
                v6(global).into(),
            ],
        };
        let route = |dst: &str, prefix, dev: &str| HostRoute6 {
            dst: v6(dst),
            prefix,
            iface: dev.into(),
        };
        let env = NodeEnv {
            ifaces: vec![
                iface("eth0", 1, "2001:db8:22::114"),
                iface("eth1", 2, "2001:db8:168::114"),
            ],
            routes: Vec::new(),
        };
        let mut routes = vec![
            route("2001:db8:22::", 64, "eth0"),
            route("fe80::", 64, "eth0"),
            route("2001:db8:168::", 64, "eth1"),
            route("fe80::", 64, "eth1"),
            route("::", 0, "eth0"),
        ];
        let mut syn = Vec::new();
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv6(v6("2001:db8:113::11").octets(), vip.octets(), 64)
            .tcp(40000, 80, 1, 100)
            .syn()
            .write(&mut syn, b"")
            .unwrap();
        let pkt = packet_info(&syn).unwrap();
        let mut rng =
            <rand_chacha::ChaCha8Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(1);
        let neigh = Neighbours::default();
        let mut outer_with = |routes: &[HostRoute6], vips: &[Vip]| {
            let v = ipvs.process(Instant::ZERO, &pkt, &mut rng);
            let v6 = Ipv6Side { routes, vips };
            match forward(v, syn.clone(), "eth0".into(), &env, v6, &neigh) {
                Handled::Route { frame } => Some(frame),
                Handled::NoRoute => None,
                other => panic!("{other:?}"),
            }
        };
        let source = |frame: Vec<u8>| {
            let (ip, _) = etherparse::Ipv6Header::from_slice(&frame[14..]).unwrap();
            std::net::Ipv6Addr::from(ip.source)
        };
        // A VIP of keepalived's default prefix, 128, is deprecated: never the source. One of
        // a shorter prefix is preferred and, the newest address, wins the tie with eth0's.
        let vip_on = |prefix| Vip {
            iface: "eth0".into(),
            addr: vip.into(),
            prefix,
        };
        let frame = outer_with(&routes, &[vip_on(128)]).expect("routed");
        assert_eq!(source(frame), v6("2001:db8:22::114"));
        let frame = outer_with(&routes, &[vip_on(64)]).expect("routed");
        assert_eq!(source(frame), vip);
        let mut outer = |routes: &[HostRoute6]| outer_with(routes, &[]);
        // IPv6 in IPv6 from eth0's global address (not its link-local one, not eth1's),
        // one hop taken inside and copied out.
        let frame = outer(&routes).expect("routed");
        let (ip, inner) = etherparse::Ipv6Header::from_slice(&frame[14..]).unwrap();
        assert_eq!(ip.next_header.0, 41);
        assert_eq!(
            (ip.source, ip.destination),
            (v6("2001:db8:22::114").octets(), rs.octets())
        );
        assert_eq!((ip.hop_limit, inner[7]), (63, 63));
        assert_eq!(&inner[8..], &syn[14 + 8..]);
        // A more specific route through eth1: eth1's address, the outgoing interface's.
        routes.push(route("2001:db8:20::", 48, "eth1"));
        let frame = outer(&routes).expect("routed");
        let (ip, _) = etherparse::Ipv6Header::from_slice(&frame[14..]).unwrap();
        assert_eq!(ip.source, v6("2001:db8:168::114").octets());
        // No route: nothing sent.
        assert_eq!(outer(&[]), None);
    }

    // An IPv4 packet for an IPv6 real server (or the reverse), which the kernel tunnels
    // across families: said to be unsupported, not dropped in silence.
    #[test]
    fn a_tunnel_across_families_is_unsupported() {
        use crate::director::HostRoute6;
        use crate::ipvs::TunnelType;
        let rs: std::net::Ipv6Addr = "2001:db8:20::11".parse().unwrap();
        let fwd = FwdMethod::Tunnel(TunnelType::Gre);
        let mut ipvs = one_service([10, 0, 0, 100], rs, 80, fwd);
        let env = NodeEnv {
            ifaces: vec![crate::director::Iface {
                name: "eth0".into(),
                mac: [1; 6],
                addrs: vec!["2001:db8:22::114".parse().unwrap()],
            }],
            routes: Vec::new(),
        };
        let routes = [HostRoute6 {
            dst: std::net::Ipv6Addr::UNSPECIFIED,
            prefix: 0,
            iface: "eth0".into(),
        }];
        let v6 = Ipv6Side {
            routes: &routes,
            vips: &[],
        };
        let mut rng =
            <rand_chacha::ChaCha8Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(1);
        let syn = seg(([192, 0, 2, 7], 40000), ([10, 0, 0, 100], 80), true);
        let v = ipvs.process(Instant::ZERO, &packet_info(&syn).unwrap(), &mut rng);
        let neigh = Neighbours::default();
        assert_eq!(
            forward(v, syn, "eth0".into(), &env, v6, &neigh),
            Handled::Unsupported(fwd)
        );
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
