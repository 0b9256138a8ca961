//! A host's IPv4 and IPv6 stack as far as the models need it: interfaces with addresses,
//! VIPs on lo, the ARP cache (Linux rules for gratuitous ARP, locktime,
//! arp_ignore/arp_announce), IPv6 neighbour discovery (Linux's `ndisc.c` rules: a
//! solicitation answered only for an address of the interface it came in on, an unsolicited
//! advert updating only an entry that exists), routing by connected subnet or default
//! gateway, and forwarding for routers.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use lvs_core::Instant;
use rustc_hash::FxHashMap;

use lvs_core::wire::icmpv6::{Ndisc, NdiscFrame, NeighbourAdvertRepr};

use crate::packet::{
    self, Arp, ArpOp, Mac, BROADCAST, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETH_HDR,
};

pub use lvs_scenarios::Decap;

/// Timer tokens with this bit belong to the stack (ARP retries); models use the rest.
pub const STACK_TOKEN: u64 = 1 << 63;
/// Stack timer tokens with this bit too are neighbour solicitation retries (the rest is the
/// solicitation's number); without it, ARP retries (the rest is the IPv4 address).
const NDISC_TOKEN: u64 = 1 << 62;

/// ARP requests sent for one address before its queued packets are dropped (Linux `mcast_solicit`).
const ARP_TRIES: u32 = 3;
/// Gap between ARP retries (Linux `retrans_time`).
const ARP_RETRANS: Duration = Duration::from_secs(1);

/// One interface: what `ip addr` shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IfaceSpec {
    /// Name (`eth0`).
    pub name: String,
    /// Hardware address.
    pub mac: Mac,
    /// Primary addresses with prefix length; the first one is the source of ARP requests.
    pub addrs: Vec<(Ipv4Addr, u8)>,
    /// Global IPv6 addresses with prefix length (the link-local one comes from the MAC).
    pub addrs6: Vec<(Ipv6Addr, u8)>,
}

impl IfaceSpec {
    /// An interface with one address.
    pub fn new(name: &str, mac: Mac, addr: Ipv4Addr, prefix: u8) -> Self {
        IfaceSpec {
            name: name.to_string(),
            mac,
            addrs: vec![(addr, prefix)],
            addrs6: Vec::new(),
        }
    }

    /// The EUI-64 link-local address the kernel gives the interface (RFC 4291 2.5.1).
    pub fn link_local(&self) -> Ipv6Addr {
        let m = self.mac;
        Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 2,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ])
    }
}

/// True for an address in fe80::/10.
fn is_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// True when `ip` is in `net`/`prefix`.
fn in_prefix6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// Interface state inside the stack.
#[derive(Clone, Debug)]
pub struct Iface {
    /// Configuration.
    pub spec: IfaceSpec,
    /// Virtual addresses added at run time (keepalived's VIPs).
    pub vips: Vec<(Ipv4Addr, u8)>,
    /// Virtual IPv6 addresses added at run time.
    pub vips6: Vec<(Ipv6Addr, u8)>,
    /// Administrative state (`ip link set dev X up/down`).
    pub up: bool,
    /// The link to a segment, once connected.
    pub link: Option<petgraph::graph::EdgeIndex>,
}

impl Iface {
    /// The interface's configured addresses (VIPs and the link-local address excluded).
    pub fn configured(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let v4 = self.spec.addrs.iter().map(|a| IpAddr::V4(a.0));
        v4.chain(self.spec.addrs6.iter().map(|a| IpAddr::V6(a.0)))
    }

    fn holds(&self, ip: Ipv4Addr) -> bool {
        self.spec.addrs.iter().any(|(a, _)| *a == ip) || self.vips.iter().any(|(a, _)| *a == ip)
    }

    /// An IPv6 address of this interface (Linux's strict `ipv6_chk_addr`: lo's do not count).
    fn holds6(&self, ip: Ipv6Addr) -> bool {
        self.spec.link_local() == ip
            || self.spec.addrs6.iter().any(|(a, _)| *a == ip)
            || self.vips6.iter().any(|(a, _)| *a == ip)
    }

    /// The IPv6 source for `dst` leaving here, as source address selection picks it: the
    /// first global address for a global destination, else the link-local one.
    fn source6(&self, dst: Ipv6Addr) -> Ipv6Addr {
        match self.spec.addrs6.first() {
            Some(&(a, _)) if !is_link_local(dst) => a,
            _ => self.spec.link_local(),
        }
    }

    /// On a subnet of this interface (its link-local prefix included).
    fn on_link6(&self, ip: Ipv6Addr) -> bool {
        is_link_local(ip)
            || self
                .spec
                .addrs6
                .iter()
                .chain(&self.vips6)
                .any(|&(a, p)| in_prefix6(ip, a, p))
    }
}

/// Fill in a frame's Ethernet addresses.
fn address(frame: &mut [u8], src: Mac, dst: Mac) {
    lvs_core::wire::ethernet::set_macs(frame, src, dst);
}

/// The netmask of a prefix length (at most 32).
fn prefix_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// One neighbour (ARP cache) entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Neigh {
    /// Hardware address.
    pub mac: Mac,
    /// Interface it was learnt on.
    pub iface: usize,
    /// Last update.
    pub updated: Instant,
}

/// Frames waiting for a next hop's MAC (ARP for IPv4, neighbour solicitation for IPv6).
struct Pending {
    iface: usize,
    tries: u32,
    /// The address the requests are sent from.
    src: IpAddr,
    frames: Vec<Vec<u8>>,
    /// The retry timer's token.
    token: u64,
}

/// Side effects a host model asks the engine to carry out.
#[derive(Default, Debug)]
pub struct Fx {
    /// Frames to send: (interface index, frame).
    pub tx: Vec<(usize, Vec<u8>)>,
    /// Timers: (when, token).
    pub timers: Vec<(Instant, u64)>,
}

/// What the stack did with a received frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Rx {
    /// An ARP packet (already processed by the stack).
    Arp,
    /// An IPv6 neighbour solicitation or advertisement (already processed by the stack).
    Ndisc,
    /// An IPv4 packet for a local address (interface, VIP or lo).
    Local,
    /// To be routed on towards this address (routers only): the caller hands the frame to
    /// [`Stack::forward_frame`], which can then reuse the buffer instead of copying it.
    Forward(IpAddr),
    /// IP for an address this host does not hold: dropped.
    NotLocal,
    /// Addressed to this host but neither ARP, neighbour discovery nor unicast IP (VRRP
    /// multicast, other ethertypes).
    Other,
    /// Not addressed to this interface's MAC, or unreadable.
    Ignored,
}

/// Counters kept by the stack.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StackStats {
    /// IPv4 packets dropped because the destination is not a local address.
    pub dropped_not_local: u64,
    /// Packets dropped because ARP resolution failed or no route existed.
    pub dropped_unresolved: u64,
    /// Packets routed on.
    pub forwarded: u64,
    /// Encapsulated packets taken apart by a tunnel receiver.
    pub decapsulated: u64,
    /// Encapsulated packets for which no tunnel receiver was set up (dropped).
    pub dropped_no_tunnel: u64,
}

/// What routing decisions read, flattened from the interfaces, lo and the gateway (and
/// rebuilt whenever one of them changes): every frame a host sends or receives asks which
/// interface a destination is on and whether an address is its own.
#[derive(Debug, Default)]
struct Routes {
    /// (network, mask, interface) of every address on an up interface, in interface order.
    on_link: Vec<(u32, u32, usize)>,
    /// Every address of the host: interfaces (up or not), their VIPs, lo.
    local: Vec<u32>,
    /// The next hop off every connected subnet: the gateway, through the first up
    /// interface it is on.
    via_gateway: Option<(usize, Ipv4Addr)>,
}

impl Routes {
    /// The first up interface with a subnet holding `ip`.
    fn on_link(&self, ip: Ipv4Addr) -> Option<usize> {
        let ip = u32::from(ip);
        self.on_link
            .iter()
            .find(|(net, mask, _)| ip & mask == *net)
            .map(|&(_, _, n)| n)
    }
}

/// The IPv4 stack of one host.
pub struct Stack {
    ifaces: Vec<Iface>,
    lo: Vec<Ipv4Addr>,
    /// `arp_ignore`: 0 answers for any local address, 1 only for addresses on the receiving interface.
    pub arp_ignore: u8,
    /// `arp_announce`: 2 always uses the outgoing interface's address as ARP sender, 0 the packet's source.
    pub arp_announce: u8,
    /// Route packets not addressed to us (a router).
    pub forward: bool,
    /// Tunnel receivers (a TUN real server's).
    pub decap: Vec<Decap>,
    gateway: Option<Ipv4Addr>,
    routes: Routes,
    /// How long an ARP entry is used before it is resolved again.
    pub arp_timeout: Duration,
    /// Non-gratuitous ARP does not replace an entry younger than this (Linux `locktime`).
    pub locktime: Duration,
    /// ARP cache (looked up on every routed packet, never iterated into an output).
    pub neigh: FxHashMap<Ipv4Addr, Neigh>,
    /// Next hops being resolved, IPv4 and IPv6.
    pending: BTreeMap<IpAddr, Pending>,
    lo6: Vec<Ipv6Addr>,
    gateway6: Option<Ipv6Addr>,
    /// IPv6 neighbour cache (its entries live as long as ARP's).
    pub neigh6: FxHashMap<Ipv6Addr, Neigh>,
    /// Numbers the neighbour solicitations' retry timers.
    solicits: u64,
    /// Counters.
    pub stats: StackStats,
}

impl Stack {
    /// A stack with these interfaces, Linux defaults otherwise (no forwarding).
    pub fn new(ifaces: Vec<IfaceSpec>) -> Self {
        let mut s = Stack {
            ifaces: ifaces
                .into_iter()
                .map(|spec| Iface {
                    spec,
                    vips: Vec::new(),
                    vips6: Vec::new(),
                    up: true,
                    link: None,
                })
                .collect(),
            lo: Vec::new(),
            arp_ignore: 0,
            arp_announce: 0,
            forward: false,
            decap: Vec::new(),
            gateway: None,
            arp_timeout: Duration::from_secs(60),
            locktime: Duration::from_secs(1),
            neigh: FxHashMap::default(),
            pending: BTreeMap::new(),
            lo6: Vec::new(),
            gateway6: None,
            neigh6: FxHashMap::default(),
            solicits: 0,
            stats: StackStats::default(),
            routes: Routes::default(),
        };
        s.reroute();
        s
    }

    /// Rebuild `routes` after an interface, address, lo or gateway change.
    fn reroute(&mut self) {
        let mut r = Routes::default();
        for (n, i) in self.ifaces.iter().enumerate() {
            for &(a, p) in i.spec.addrs.iter().chain(&i.vips) {
                r.local.push(u32::from(a));
                if i.up {
                    let mask = prefix_mask(p);
                    r.on_link.push((u32::from(a) & mask, mask, n));
                }
            }
        }
        r.local.extend(self.lo.iter().map(|a| u32::from(*a)));
        r.via_gateway = self.gateway.and_then(|gw| r.on_link(gw).map(|n| (n, gw)));
        self.routes = r;
    }

    /// Interfaces by index.
    pub fn ifaces(&self) -> &[Iface] {
        &self.ifaces
    }

    /// `ip link set dev IFACE up/down` (by index).
    pub fn set_up(&mut self, iface: usize, up: bool) {
        if let Some(i) = self.ifaces.get_mut(iface) {
            i.up = up;
            self.reroute();
        }
    }

    /// Record the link an interface is plugged into.
    pub fn set_link(&mut self, iface: usize, link: Option<petgraph::graph::EdgeIndex>) {
        if let Some(i) = self.ifaces.get_mut(iface) {
            i.link = link;
        }
    }

    /// Addresses on lo (a real server's VIPs), IPv4 then IPv6.
    pub fn lo(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let v4 = self.lo.iter().map(|a| IpAddr::V4(*a));
        v4.chain(self.lo6.iter().map(|a| IpAddr::V6(*a)))
    }

    /// Replace the addresses on lo.
    pub fn set_lo(&mut self, addrs: Vec<IpAddr>) {
        self.lo.clear();
        self.lo6.clear();
        for a in addrs {
            match a {
                IpAddr::V4(a) => self.lo.push(a),
                IpAddr::V6(a) => self.lo6.push(a),
            }
        }
        self.reroute();
    }

    /// Default gateway.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.gateway
    }

    /// Set the default gateway.
    pub fn set_gateway(&mut self, gateway: Option<Ipv4Addr>) {
        self.gateway = gateway;
        self.reroute();
    }

    /// IPv6 default gateway.
    pub fn gateway6(&self) -> Option<Ipv6Addr> {
        self.gateway6
    }

    /// Set the IPv6 default gateway.
    pub fn set_gateway6(&mut self, gateway: Option<Ipv6Addr>) {
        self.gateway6 = gateway;
    }

    /// Index of the interface called `name`.
    pub fn iface_index(&self, name: &str) -> Option<usize> {
        self.ifaces.iter().position(|i| i.spec.name == name)
    }

    /// True when `ip` is one of this host's addresses (interfaces, VIPs, lo).
    pub fn is_local(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => self.is_local4(ip),
            IpAddr::V6(ip) => self.is_local6(ip),
        }
    }

    fn is_local4(&self, ip: Ipv4Addr) -> bool {
        self.routes.local.contains(&u32::from(ip))
    }

    fn is_local6(&self, ip: Ipv6Addr) -> bool {
        self.lo6.contains(&ip) || self.ifaces.iter().any(|i| i.holds6(ip))
    }

    /// The cache entry for `ip` if it has not expired.
    pub fn lookup(&self, now: Instant, ip: IpAddr) -> Option<Neigh> {
        match ip {
            IpAddr::V4(ip) => self.lookup4(now, ip),
            IpAddr::V6(ip) => self
                .neigh6
                .get(&ip)
                .copied()
                .filter(|n| now < n.updated + self.arp_timeout),
        }
    }

    fn lookup4(&self, now: Instant, ip: Ipv4Addr) -> Option<Neigh> {
        self.neigh
            .get(&ip)
            .copied()
            .filter(|n| now < n.updated + self.arp_timeout)
    }

    fn answers_for(&self, iface: usize, ip: Ipv4Addr) -> bool {
        if self.arp_ignore >= 1 {
            self.ifaces.get(iface).is_some_and(|i| i.holds(ip))
        } else {
            self.is_local4(ip)
        }
    }

    /// Process a received frame; ARP answers and forwarded packets go into `fx`.
    pub fn receive(&mut self, now: Instant, iface: usize, frame: &[u8], fx: &mut Fx) -> Rx {
        let rx = self.classify(iface, frame);
        match rx {
            Rx::Arp => {
                if let Ok(arp) = packet::parse_arp(frame) {
                    self.receive_arp(now, iface, &arp, fx);
                }
            }
            Rx::Ndisc => {
                if let Some(nd) = NdiscFrame::parse(frame) {
                    self.receive_ndisc(now, iface, &nd, fx);
                }
            }
            Rx::NotLocal => self.stats.dropped_not_local += 1,
            _ => {}
        }
        rx
    }

    /// The packet a local IPv4 or IPv6 `frame` carries through a tunnel this host
    /// receives, as a frame with the outer Ethernet header, when it is for a local address
    /// (a VIP on lo); `None` for anything else. An encapsulation no receiver is set up for
    /// is dropped and counted, as the kernel drops it. Over IPv6 the receivers are ip6tnl0
    /// (`tunnel = "ipip"`: IPv6 in IPv6, next header 41), ip6gre0 (`"gre"`: protocol
    /// 0x86DD) and a fou port opened with `-6` (`"gue:PORT"`: GUE protocol 41); a tunnel
    /// carrying the other family than its outer header's is none of them.
    pub fn decapsulate(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        use lvs_core::wire::{ip_proto, ipv4::Ipv4Repr, ipv6, ipv6::Ipv6Repr, tunnel::EncapRepr};
        let payload = frame.get(ETH_HDR..)?;
        let (protocol, body, v6) = match packet::ethertype(frame)? {
            ETHERTYPE_IPV4 => {
                let (outer, body) = Ipv4Repr::parse(payload).ok()?;
                if outer.is_fragment() {
                    return None;
                }
                (outer.protocol, body, false)
            }
            ETHERTYPE_IPV6 => {
                let (outer, rest) = Ipv6Repr::parse(payload).ok()?;
                let up = ipv6::upper_layer(outer.next_header, rest).ok()?;
                if up.fragmented {
                    return None;
                }
                (up.protocol, up.payload, true)
            }
            _ => return None,
        };
        let (in_ip, gre_type) = match v6 {
            false => (ip_proto::IPIP, ETHERTYPE_IPV4),
            true => (ip_proto::IPV6, ETHERTYPE_IPV6),
        };
        if protocol != in_ip && protocol != ip_proto::GRE && protocol != ip_proto::UDP {
            return None;
        }
        let (encap, inner) = EncapRepr::parse(protocol, body).ok()?;
        let device = match encap {
            EncapRepr::Ipip => Decap::Ipip,
            EncapRepr::Gre { protocol } if protocol == gre_type => Decap::Gre,
            EncapRepr::Gue {
                dst_port, protocol, ..
            } if protocol == in_ip => Decap::Gue { port: dst_port },
            _ => return None,
        };
        if !self.decap.contains(&device) {
            // Plain UDP to a port without a fou receiver is no tunnel at all.
            if !matches!(device, Decap::Gue { .. }) {
                self.stats.dropped_no_tunnel += 1;
            }
            return None;
        }
        let (local, len) = if v6 {
            let (ip, _) = Ipv6Repr::parse(inner).ok()?;
            (self.is_local6(ip.dst), ip.buffer_len())
        } else {
            let (ip, _) = Ipv4Repr::parse(inner).ok()?;
            (self.is_local4(ip.dst), inner.len())
        };
        if !local {
            self.stats.dropped_no_tunnel += 1;
            return None;
        }
        self.stats.decapsulated += 1;
        let mut out = Vec::with_capacity(ETH_HDR + len);
        out.extend_from_slice(&frame[..ETH_HDR]);
        out.extend_from_slice(&inner[..len]);
        Some(out)
    }

    /// What [`Stack::receive`] would make of `frame` on `iface`, without doing it.
    pub fn classify(&self, iface: usize, frame: &[u8]) -> Rx {
        let Some(my_mac) = self.ifaces.get(iface).map(|i| i.spec.mac) else {
            return Rx::Ignored;
        };
        let Some(dst) = packet::dst_mac(frame) else {
            return Rx::Ignored;
        };
        if dst != my_mac && !packet::is_group(dst) {
            return Rx::Ignored;
        }
        match packet::ethertype(frame) {
            Some(ETHERTYPE_ARP) => Rx::Arp,
            Some(ETHERTYPE_IPV4) => {
                let Some((_, dst_ip, _)) = packet::ipv4_addrs(frame) else {
                    return Rx::Ignored;
                };
                if dst_ip.is_multicast() || dst_ip.is_broadcast() {
                    Rx::Other
                } else if self.is_local4(dst_ip) {
                    Rx::Local
                } else if self.forward && dst == my_mac {
                    Rx::Forward(IpAddr::V4(dst_ip))
                } else {
                    Rx::NotLocal
                }
            }
            Some(ETHERTYPE_IPV6) => {
                let Some((_, IpAddr::V6(dst_ip), proto)) = packet::ip_addrs(frame) else {
                    return Rx::Ignored;
                };
                if proto == lvs_core::wire::ip_proto::ICMPV6 && NdiscFrame::parse(frame).is_some() {
                    Rx::Ndisc
                } else if dst_ip.is_multicast() {
                    Rx::Other
                } else if self.is_local6(dst_ip) {
                    Rx::Local
                } else if self.forward && dst == my_mac {
                    Rx::Forward(IpAddr::V6(dst_ip))
                } else {
                    Rx::NotLocal
                }
            }
            _ => Rx::Other,
        }
    }

    fn receive_arp(&mut self, now: Instant, iface: usize, arp: &Arp, fx: &mut Fx) {
        let for_us =
            arp.op == ArpOp::Request && !arp.is_gratuitous() && self.answers_for(iface, arp.tpa);
        let solicited = self
            .pending
            .get(&IpAddr::V4(arp.spa))
            .is_some_and(|p| p.iface == iface);
        let lock = self.locktime;
        match self.neigh.get_mut(&arp.spa) {
            // Linux keeps a neighbour per device: what another interface hears of an address
            // (a TUN real server's ARP request sent from its VIP on the far side of a gateway)
            // never replaces the entry packets to it leave by. One entry per address here, so
            // only an answer to this interface's own request moves it.
            Some(n) if n.iface != iface && !solicited => {}
            // Linux neigh_update: a gratuitous ARP always overrides; others respect locktime.
            Some(n) if arp.is_gratuitous() || now >= n.updated + lock || solicited => {
                n.mac = arp.sha;
                n.iface = iface;
                n.updated = now;
            }
            Some(_) => {}
            None if for_us || solicited => {
                self.neigh.insert(
                    arp.spa,
                    Neigh {
                        mac: arp.sha,
                        iface,
                        updated: now,
                    },
                );
            }
            None => {}
        }
        if for_us {
            if let Some(my) = self.ifaces.get(iface) {
                let reply = Arp {
                    op: ArpOp::Reply,
                    sha: my.spec.mac,
                    spa: arp.tpa,
                    tha: arp.sha,
                    tpa: arp.spa,
                };
                fx.tx.push((iface, reply.to_frame(my.spec.mac, arp.sha)));
            }
        }
        self.resolved(IpAddr::V4(arp.spa), arp.sha, fx);
    }

    /// `hop` is at `mac`: the frames that waited for it sent.
    fn resolved(&mut self, hop: IpAddr, mac: Mac, fx: &mut Fx) {
        if let Some(p) = self.pending.remove(&hop) {
            let my_mac = self
                .ifaces
                .get(p.iface)
                .map(|i| i.spec.mac)
                .unwrap_or_default();
            for mut f in p.frames {
                address(&mut f, my_mac, mac);
                fx.tx.push((p.iface, f));
            }
        }
    }

    /// An IPv6 neighbour discovery message on `iface` (Linux `ndisc_recv_ns` /
    /// `ndisc_recv_na`, `accept_untracked_na` 0).
    fn receive_ndisc(&mut self, now: Instant, iface: usize, nd: &NdiscFrame, fx: &mut Fx) {
        let Some(my) = self.ifaces.get(iface) else {
            return;
        };
        let my_mac = my.spec.mac;
        match nd.msg {
            Ndisc::Solicit(ns) => {
                // Answered only for an address of this very interface; the asker is learnt
                // from its source link-layer address then (DAD, from ::, is not answered).
                if !my.holds6(ns.target) || nd.src.is_unspecified() {
                    return;
                }
                let Some(mac) = ns.source_mac else {
                    return;
                };
                self.learn6(now, iface, nd.src, mac, true, fx);
                let answer = NdiscFrame {
                    src_mac: my_mac,
                    src: ns.target,
                    dst: nd.src,
                    msg: Ndisc::Advert(NeighbourAdvertRepr {
                        router: self.forward,
                        solicited: true,
                        override_flag: true,
                        target: ns.target,
                        target_mac: Some(my_mac),
                    }),
                };
                fx.tx.push((iface, answer.emit(mac)));
            }
            Ndisc::Advert(na) => {
                let Some(mac) = na.target_mac else {
                    return;
                };
                let solicited = self
                    .pending
                    .get(&IpAddr::V6(na.target))
                    .is_some_and(|p| p.iface == iface);
                match self.neigh6.get(&na.target) {
                    // An entry of another interface moves only by an answer to this one's
                    // own solicitation (one entry per address here, one per device in Linux).
                    Some(n) if n.iface != iface && !solicited => {}
                    Some(_) if na.override_flag || solicited => {
                        self.learn6(now, iface, na.target, mac, true, fx)
                    }
                    Some(_) => {}
                    None if solicited => self.learn6(now, iface, na.target, mac, true, fx),
                    None => {}
                }
            }
        }
    }

    /// `ip` is at `mac` on `iface`: the entry set and what waited for it sent.
    fn learn6(
        &mut self,
        now: Instant,
        iface: usize,
        ip: Ipv6Addr,
        mac: Mac,
        create: bool,
        fx: &mut Fx,
    ) {
        if create || self.neigh6.contains_key(&ip) {
            self.neigh6.insert(
                ip,
                Neigh {
                    mac,
                    iface,
                    updated: now,
                },
            );
        }
        self.resolved(IpAddr::V6(ip), mac, fx);
    }

    /// The interface a packet for `dst` leaves on and the address whose MAC it is sent to:
    /// `dst` itself on a connected subnet, else the default gateway.
    pub fn next_hop(&self, dst: IpAddr) -> Option<(usize, IpAddr)> {
        match dst {
            IpAddr::V4(dst) => self.next_hop4(dst).map(|(n, hop)| (n, IpAddr::V4(hop))),
            IpAddr::V6(dst) => self.next_hop6(dst).map(|(n, hop)| (n, IpAddr::V6(hop))),
        }
    }

    fn next_hop4(&self, dst: Ipv4Addr) -> Option<(usize, Ipv4Addr)> {
        match self.routes.on_link(dst) {
            Some(n) => Some((n, dst)),
            None => self.routes.via_gateway,
        }
    }

    fn next_hop6(&self, dst: Ipv6Addr) -> Option<(usize, Ipv6Addr)> {
        let on_link = |ip: Ipv6Addr| self.ifaces.iter().position(|i| i.up && i.on_link6(ip));
        match on_link(dst) {
            Some(n) => Some((n, dst)),
            None => {
                let gw = self.gateway6?;
                on_link(gw).map(|n| (n, gw))
            }
        }
    }

    /// The source address Linux picks for a connection to `dst`: the first address of the
    /// interface its route leaves on (`None`: no route).
    pub fn source_for(&self, dst: IpAddr) -> Option<IpAddr> {
        match dst {
            IpAddr::V4(dst) => {
                let (iface, _) = self.next_hop4(dst)?;
                self.ifaces[iface]
                    .spec
                    .addrs
                    .first()
                    .map(|a| IpAddr::V4(a.0))
            }
            IpAddr::V6(dst) => {
                let (iface, _) = self.next_hop6(dst)?;
                Some(IpAddr::V6(self.ifaces[iface].source6(dst)))
            }
        }
    }

    /// Where [`Stack::forward_frame`] would send a packet for `dst` at `at` when the ARP
    /// cache already knows the next hop: the interface and the frame's new (source,
    /// destination) MACs. `None` when it would drop the packet or first ask ARP.
    pub fn resolved_forward(&self, at: Instant, dst: IpAddr) -> Option<(usize, Mac, Mac)> {
        self.resolved_forward_until(at, dst)
            .map(|(iface, src, next, _)| (iface, src, next))
    }

    /// [`Stack::resolved_forward`] with the time the neighbour entry it read expires: the
    /// same answer holds at any earlier time while the routes and the cache stay as they are.
    pub fn resolved_forward_until(
        &self,
        at: Instant,
        dst: IpAddr,
    ) -> Option<(usize, Mac, Mac, Instant)> {
        let (iface, hop) = self.next_hop(dst)?;
        let n = self.lookup(at, hop).filter(|n| n.iface == iface)?;
        let until = n.updated + self.arp_timeout;
        Some((iface, self.ifaces[iface].spec.mac, n.mac, until))
    }

    /// Route on a frame [`Stack::receive`] returned as [`Rx::Forward`] (the modelled
    /// routers leave TTL and hop limit as they are).
    pub fn forward_frame(&mut self, now: Instant, dst: IpAddr, frame: Vec<u8>, fx: &mut Fx) {
        self.stats.forwarded += 1;
        self.route(now, None, dst, frame, fx);
    }

    /// Send an IP frame towards `dst`, resolving the next hop; the frame's Ethernet
    /// addresses are (over)written here. `src` is the packet's source when the host
    /// originates it (for arp_announce).
    pub fn route(
        &mut self,
        now: Instant,
        src: Option<IpAddr>,
        dst: IpAddr,
        frame: Vec<u8>,
        fx: &mut Fx,
    ) {
        match dst {
            IpAddr::V4(dst) => {
                let src = match src {
                    Some(IpAddr::V4(s)) => Some(s),
                    _ => None,
                };
                self.route4(now, src, dst, frame, fx)
            }
            IpAddr::V6(dst) => {
                let src = match src {
                    Some(IpAddr::V6(s)) => Some(s),
                    _ => None,
                };
                self.route6(now, src, dst, frame, fx)
            }
        }
    }

    fn route6(
        &mut self,
        now: Instant,
        src: Option<Ipv6Addr>,
        dst: Ipv6Addr,
        mut frame: Vec<u8>,
        fx: &mut Fx,
    ) {
        if frame.len() < ETH_HDR {
            return;
        }
        let Some((iface, hop)) = self.next_hop6(dst) else {
            self.stats.dropped_unresolved += 1;
            return;
        };
        let my = &self.ifaces[iface];
        let my_mac = my.spec.mac;
        if let Some(n) = self
            .lookup(now, IpAddr::V6(hop))
            .filter(|n| n.iface == iface)
        {
            address(&mut frame, my_mac, n.mac);
            fx.tx.push((iface, frame));
            return;
        }
        // ndisc_solicit: the packet's own source when it is this interface's, else the
        // interface's address of the target's scope.
        let from = match src {
            Some(s) if my.holds6(s) => s,
            _ => my.source6(hop),
        };
        self.wait_for(now, iface, IpAddr::V6(hop), IpAddr::V6(from), frame, fx);
    }

    fn route4(
        &mut self,
        now: Instant,
        src: Option<Ipv4Addr>,
        dst: Ipv4Addr,
        mut frame: Vec<u8>,
        fx: &mut Fx,
    ) {
        if frame.len() < ETH_HDR {
            return;
        }
        let Some((iface, hop)) = self.next_hop4(dst) else {
            self.stats.dropped_unresolved += 1;
            return;
        };
        let my_mac = self.ifaces[iface].spec.mac;
        if let Some(n) = self.lookup4(now, hop).filter(|n| n.iface == iface) {
            address(&mut frame, my_mac, n.mac);
            fx.tx.push((iface, frame));
            return;
        }
        let primary = self.ifaces[iface]
            .spec
            .addrs
            .first()
            .map(|a| a.0)
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let arp_src = match src {
            Some(s) if self.arp_announce == 0 && self.is_local4(s) => s,
            _ => primary,
        };
        self.wait_for(now, iface, IpAddr::V4(hop), IpAddr::V4(arp_src), frame, fx);
    }

    /// `frame` waits for `hop`'s MAC on `iface`; the first to wait sends the request (from
    /// `src`) and starts its retry timer. IPv4 timers are named by the address, IPv6 ones
    /// by a count.
    fn wait_for(
        &mut self,
        now: Instant,
        iface: usize,
        hop: IpAddr,
        src: IpAddr,
        frame: Vec<u8>,
        fx: &mut Fx,
    ) {
        if let Some(p) = self.pending.get_mut(&hop) {
            p.frames.push(frame);
            return;
        }
        let token = match hop {
            IpAddr::V4(hop) => STACK_TOKEN | u64::from(u32::from(hop)),
            IpAddr::V6(_) => {
                self.solicits += 1;
                STACK_TOKEN | NDISC_TOKEN | self.solicits
            }
        };
        self.pending.insert(
            hop,
            Pending {
                iface,
                tries: 1,
                src,
                frames: vec![frame],
                token,
            },
        );
        self.solicit(iface, src, hop, fx);
        fx.timers.push((now + ARP_RETRANS, token));
    }

    /// Ask on `iface` for `target`'s MAC: an ARP request, or a neighbour solicitation to
    /// its solicited-node group.
    fn solicit(&self, iface: usize, src: IpAddr, target: IpAddr, fx: &mut Fx) {
        let mac = self.ifaces[iface].spec.mac;
        match (src, target) {
            (IpAddr::V4(spa), IpAddr::V4(tpa)) => {
                let req = Arp {
                    op: ArpOp::Request,
                    sha: mac,
                    spa,
                    tha: [0; 6],
                    tpa,
                };
                fx.tx.push((iface, req.to_frame(mac, BROADCAST)));
            }
            (IpAddr::V6(src), IpAddr::V6(target)) => {
                let (ns, dst_mac) = NdiscFrame::solicit(mac, src, target);
                fx.tx.push((iface, ns.emit(dst_mac)));
            }
            _ => {}
        }
    }

    /// A stack timer fired (ARP or neighbour solicitation retry).
    pub fn timer(&mut self, now: Instant, token: u64, fx: &mut Fx) {
        let hop = if token & NDISC_TOKEN != 0 {
            match self.pending.iter().find(|(_, p)| p.token == token) {
                Some((&hop, _)) => hop,
                None => return,
            }
        } else {
            IpAddr::V4(Ipv4Addr::from((token & 0xffff_ffff) as u32))
        };
        let Some(p) = self.pending.get_mut(&hop) else {
            return;
        };
        if p.tries >= ARP_TRIES {
            let dropped = p.frames.len() as u64;
            self.pending.remove(&hop);
            self.stats.dropped_unresolved += dropped;
            return;
        }
        p.tries += 1;
        let (iface, src) = (p.iface, p.src);
        self.solicit(iface, src, hop, fx);
        fx.timers.push((now + ARP_RETRANS, token));
    }

    /// Add a VIP to an interface; false if the interface does not exist.
    pub fn add_vip(&mut self, iface: &str, addr: IpAddr, prefix: u8) -> bool {
        match self.ifaces.iter_mut().find(|i| i.spec.name == iface) {
            Some(i) => {
                match addr {
                    IpAddr::V4(addr) if !i.vips.iter().any(|(a, _)| *a == addr) => {
                        i.vips.push((addr, prefix))
                    }
                    IpAddr::V6(addr) if !i.vips6.iter().any(|(a, _)| *a == addr) => {
                        i.vips6.push((addr, prefix))
                    }
                    _ => {}
                }
                self.reroute();
                true
            }
            None => false,
        }
    }

    /// Remove a VIP from an interface.
    pub fn del_vip(&mut self, iface: &str, addr: IpAddr) {
        if let Some(i) = self.ifaces.iter_mut().find(|i| i.spec.name == iface) {
            match addr {
                IpAddr::V4(addr) => i.vips.retain(|(a, _)| *a != addr),
                IpAddr::V6(addr) => i.vips6.retain(|(a, _)| *a != addr),
            }
            self.reroute();
        }
    }

    /// What `ip addr` prints on this host, as iproute2 6.1 prints it for a veth in a
    /// namespace (the netns harness's hosts) without the peer's `@ifN` and `link-netns`:
    /// lo, then each interface with its flags and state (`carrier(index)`: the link is
    /// up), its addresses in the order they were added (one in a subnet an earlier one
    /// holds is `secondary`), and the EUI-64 link-local address the kernel gives it while
    /// it is up. Recorded: `ip addr` in two namespaces joined by a veth pair, peer up and
    /// down, interface up and down.
    pub fn ip_addr(&self, carrier: impl Fn(usize) -> bool) -> String {
        use std::fmt::Write as _;
        const VALID: &str = "       valid_lft forever preferred_lft forever\n";
        let mut out = String::from(
            "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\n\
             \x20   link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n\
             \x20   inet 127.0.0.1/8 scope host lo\n",
        );
        out.push_str(VALID);
        for a in &self.lo {
            let _ = writeln!(out, "    inet {a}/32 scope global lo");
            out.push_str(VALID);
        }
        // The kernel lists an interface's IPv6 addresses newest first.
        for a in self.lo6.iter().rev() {
            let _ = writeln!(out, "    inet6 {a}/128 scope global ");
            out.push_str(VALID);
        }
        out.push_str("    inet6 ::1/128 scope host \n");
        out.push_str(VALID);
        for (n, i) in self.ifaces.iter().enumerate() {
            let (flags, state) = match (i.up, carrier(n)) {
                (false, _) => ("BROADCAST,MULTICAST", "DOWN"),
                (true, false) => ("NO-CARRIER,BROADCAST,MULTICAST,UP", "DOWN"),
                (true, true) => ("BROADCAST,MULTICAST,UP,LOWER_UP", "UP"),
            };
            let name = &i.spec.name;
            let _ = writeln!(
                out,
                "{}: {name}: <{flags}> mtu 1500 qdisc noqueue state {state} group default qlen 1000",
                n + 2
            );
            let _ = writeln!(
                out,
                "    link/ether {} brd ff:ff:ff:ff:ff:ff",
                lvs_scenarios::MacAddr(i.spec.mac)
            );
            let mut seen: Vec<(u32, u8)> = Vec::new();
            for &(a, p) in i.spec.addrs.iter().chain(&i.vips) {
                let net = (u32::from(a) & prefix_mask(p), p);
                let secondary = if seen.contains(&net) {
                    "secondary "
                } else {
                    ""
                };
                seen.push(net);
                let _ = writeln!(out, "    inet {a}/{p} scope global {secondary}{name}");
                out.push_str(VALID);
            }
            // keepalived adds its IPv6 VIPs with IFA_F_NODAD.
            let configured = i.spec.addrs6.iter().map(|a| (a, ""));
            let v6: Vec<_> = configured
                .chain(i.vips6.iter().map(|a| (a, "nodad ")))
                .collect();
            for ((a, p), flags) in v6.into_iter().rev() {
                let _ = writeln!(out, "    inet6 {a}/{p} scope global {flags}");
                out.push_str(VALID);
            }
            if i.up {
                let _ = writeln!(out, "    inet6 {}/64 scope link ", i.spec.link_local());
                out.push_str(VALID);
            }
        }
        out
    }

    /// Every VIP on every interface, IPv4 then IPv6 per interface.
    pub fn vips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.ifaces.iter().flat_map(|i| {
            let v4 = i.vips.iter().map(|v| IpAddr::V4(v.0));
            v4.chain(i.vips6.iter().map(|v| IpAddr::V6(v.0)))
        })
    }

    /// Drop all runtime VIPs (a process that held them is gone and they go with it).
    pub fn clear_vips(&mut self) {
        for i in &mut self.ifaces {
            i.vips.clear();
            i.vips6.clear();
        }
        self.reroute();
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// `next_hop` and `is_local` read straight from the interfaces, as they were before
    /// `Routes` flattened them.
    fn reference(st: &Stack, dst: Ipv4Addr) -> (Option<(usize, Ipv4Addr)>, bool) {
        let on_link = |i: &Iface, ip: Ipv4Addr| {
            i.spec
                .addrs
                .iter()
                .chain(&i.vips)
                .any(|&(a, p)| u32::from(a) & prefix_mask(p) == u32::from(ip) & prefix_mask(p))
        };
        let hop = match st.ifaces().iter().position(|i| i.up && on_link(i, dst)) {
            Some(n) => Some((n, dst)),
            None => st.gateway().and_then(|gw| {
                let n = st.ifaces().iter().position(|i| i.up && on_link(i, gw))?;
                Some((n, gw))
            }),
        };
        let local = st.lo.contains(&dst) || st.ifaces().iter().any(|i| i.holds(dst));
        (hop, local)
    }

    proptest! {
        /// Whatever the interfaces, VIPs, lo, gateway and link states, and after changes to
        /// them, the flattened routes answer as a direct reading of the interfaces does.
        #[test]
        fn routes_answer_like_the_interfaces(
            ifaces in proptest::collection::vec((0u8..4, 0u8..33, any::<bool>()), 1..4),
            vips in proptest::collection::vec((0usize..4, 0u8..4, 0u8..33), 0..4),
            lo in proptest::collection::vec(0u8..4, 0..2),
            gw in proptest::option::of(0u8..4),
            downs in proptest::collection::vec(0usize..4, 0..3),
            dsts in proptest::collection::vec(0u8..6, 1..8),
        ) {
            // Few distinct addresses in two /24s, so that subnets and addresses collide.
            let addr = |n: u8| Ipv4Addr::new(10, 0, n / 2, n);
            let specs = ifaces.iter().enumerate().map(|(k, &(a, p, _))| {
                IfaceSpec::new(&format!("eth{k}"), [2, 0, 0, 0, 0, k as u8], addr(a), p)
            }).collect();
            let mut st = Stack::new(specs);
            for (k, &(_, _, up)) in ifaces.iter().enumerate() {
                st.set_up(k, up);
            }
            st.set_lo(lo.iter().map(|&n| addr(n).into()).collect());
            st.set_gateway(gw.map(addr));
            let check = |st: &Stack| -> Result<(), TestCaseError> {
                for &d in &dsts {
                    let (hop, local) = reference(st, addr(d));
                    prop_assert_eq!(st.next_hop4(addr(d)), hop);
                    prop_assert_eq!(st.is_local4(addr(d)), local);
                }
                Ok(())
            };
            check(&st)?;
            for &(k, a, p) in &vips {
                st.add_vip(&format!("eth{k}"), addr(a).into(), p);
            }
            check(&st)?;
            for &k in &downs {
                st.set_up(k, false);
            }
            check(&st)?;
            if let Some(&(k, a, _)) = vips.first() {
                st.del_vip(&format!("eth{k}"), addr(a).into());
            }
            check(&st)?;
            st.clear_vips();
            check(&st)?;
        }
    }

    use super::*;

    const A: Mac = [2, 0, 0, 0, 0, 0xa];
    const B: Mac = [2, 0, 0, 0, 0, 0xb];
    const C: Mac = [2, 0, 0, 0, 0, 0xc];

    fn stack() -> Stack {
        Stack::new(vec![IfaceSpec::new(
            "eth0",
            A,
            Ipv4Addr::new(10, 0, 0, 1),
            24,
        )])
    }

    fn ip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, n)
    }

    #[test]
    fn resolves_then_flushes_queued_packets_and_caches() {
        let mut s = stack();
        let mut fx = Fx::default();
        s.route(Instant::ZERO, None, ip(9).into(), vec![0x45; 34], &mut fx);
        assert_eq!(fx.tx.len(), 1, "one ARP request");
        let req = packet::parse_arp(&fx.tx[0].1).unwrap();
        assert_eq!((req.op, req.spa, req.tpa), (ArpOp::Request, ip(1), ip(9)));
        fx.tx.clear();
        let reply = Arp {
            op: ArpOp::Reply,
            sha: B,
            spa: ip(9),
            tha: A,
            tpa: ip(1),
        };
        assert_eq!(
            s.receive(Instant::ZERO, 0, &reply.to_frame(B, A), &mut fx),
            Rx::Arp
        );
        assert_eq!(fx.tx.len(), 1);
        assert_eq!(packet::dst_mac(&fx.tx[0].1), Some(B));
        assert_eq!(
            s.lookup(Instant::from_secs(1), ip(9).into()).map(|n| n.mac),
            Some(B)
        );
        // Expiry: the entry is no longer used after arp_timeout.
        assert_eq!(s.lookup(Instant::from_secs(61), ip(9).into()), None);
    }

    #[test]
    fn garp_overrides_within_locktime_but_plain_arp_does_not() {
        let mut s = stack();
        let mut fx = Fx::default();
        s.neigh.insert(
            ip(9),
            Neigh {
                mac: B,
                iface: 0,
                updated: Instant::from_secs(10),
            },
        );
        let t = Instant::from_secs(10) + Duration::from_millis(100);
        let plain = Arp {
            op: ArpOp::Reply,
            sha: C,
            spa: ip(9),
            tha: A,
            tpa: ip(1),
        };
        s.receive(t, 0, &plain.to_frame(C, A), &mut fx);
        assert_eq!(s.neigh[&ip(9)].mac, B, "locktime holds");
        s.receive(
            t,
            0,
            &Arp::gratuitous(C, ip(9)).to_frame(C, BROADCAST),
            &mut fx,
        );
        assert_eq!(s.neigh[&ip(9)].mac, C, "GARP overrides");
        // arp_accept=0: a GARP for an unknown address creates nothing.
        s.receive(
            t,
            0,
            &Arp::gratuitous(C, ip(77)).to_frame(C, BROADCAST),
            &mut fx,
        );
        assert!(!s.neigh.contains_key(&ip(77)));
        assert!(fx.tx.is_empty());
    }

    #[test]
    fn arp_ignore_hides_lo_addresses() {
        let mut s = stack();
        s.set_lo(vec![ip(100).into()]);
        let ask = Arp {
            op: ArpOp::Request,
            sha: B,
            spa: ip(2),
            tha: [0; 6],
            tpa: ip(100),
        };
        let mut fx = Fx::default();
        s.receive(Instant::ZERO, 0, &ask.to_frame(B, BROADCAST), &mut fx);
        assert_eq!(fx.tx.len(), 1, "arp_ignore=0 answers for lo");
        s.arp_ignore = 1;
        fx.tx.clear();
        s.receive(Instant::ZERO, 0, &ask.to_frame(B, BROADCAST), &mut fx);
        assert!(fx.tx.is_empty(), "arp_ignore=1 does not");
    }

    /// An Ethernet TCP SYN from `client` to `vip`:80, IPv4 or IPv6.
    fn syn_to(client: IpAddr, vip: IpAddr) -> Vec<u8> {
        let eth = etherparse::PacketBuilder::ethernet2(C, B);
        let ip = match (client, vip) {
            (IpAddr::V4(c), IpAddr::V4(v)) => eth.ipv4(c.octets(), v.octets(), 64),
            (IpAddr::V6(c), IpAddr::V6(v)) => eth.ipv6(c.octets(), v.octets(), 64),
            _ => unreachable!("one family"),
        };
        let mut frame = Vec::new();
        ip.tcp(40000, 80, 1, 1000)
            .syn()
            .write(&mut frame, b"")
            .unwrap();
        frame
    }

    // Over IPv4 (tunl0, gre0, fou) and IPv6 (ip6tnl0, ip6gre0, fou -6) alike.
    #[test]
    fn a_tunnel_receiver_takes_apart_its_own_encapsulation_only() {
        use lvs_core::ipvs::{fwd, TunnelType};
        let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        let kinds = [
            (Decap::Ipip, TunnelType::Ipip),
            (Decap::Gre, TunnelType::Gre),
            (Decap::Gue { port: 6080 }, TunnelType::Gue { port: 6080 }),
        ];
        let (here4, here6) = (ip(1), v6("2001:db8:20::11"));
        let families: [(IpAddr, IpAddr, usize); 2] = [
            (Ipv4Addr::new(192, 0, 2, 7).into(), ip(100).into(), 8),
            (
                v6("2001:db8:113::7").into(),
                v6("2001:db8:22::118").into(),
                7,
            ),
        ];
        for (client, vip, hop_at) in families {
            let inner = syn_to(client, vip);
            for (decap, kind) in kinds {
                let outer = match vip {
                    IpAddr::V4(_) => fwd::tun(&inner, kind, ip(2), here4, B, A),
                    IpAddr::V6(_) => fwd::tun6(&inner, kind, v6("2001:db8:22::114"), here6, B, A),
                }
                .unwrap();
                let mut s = stack();
                s.ifaces[0].spec.addrs6.push((here6, 64));
                s.set_lo(vec![vip]);
                assert_eq!(s.classify(0, &outer), Rx::Local);
                // No receiver: dropped (plain UDP to a port nobody takes apart is not counted).
                assert_eq!(s.decapsulate(&outer), None);
                let counted = u64::from(!matches!(decap, Decap::Gue { .. }));
                assert_eq!(s.stats.dropped_no_tunnel, counted);
                // Another encapsulation's receiver, or GUE on another port: still dropped.
                s.decap = kinds.iter().map(|k| k.0).filter(|d| *d != decap).collect();
                s.decap.push(Decap::Gue { port: 6081 });
                assert_eq!(s.decapsulate(&outer), None, "{decap:?}");
                // Its own: the inner packet, one hop older, behind the outer Ethernet header.
                s.decap = vec![decap];
                let got = s.decapsulate(&outer).unwrap();
                assert_eq!(&got[..ETH_HDR], &outer[..ETH_HDR]);
                assert_eq!(packet::ip_addrs(&got), Some((client, vip, 6)));
                assert_eq!(got[ETH_HDR + hop_at], 63);
                assert_eq!(got.len(), inner.len());
                assert!(packet::parse_tcp(&got).is_ok());
                assert_eq!(s.stats.decapsulated, 1);
                // ... for a local address only: without the VIP on lo, dropped.
                s.set_lo(Vec::new());
                assert_eq!(s.decapsulate(&outer), None);
            }
        }
        let (local, remote) = (v6("2001:db8:22::114"), here6);
        let vip = v6("2001:db8:22::118");
        let inner = syn_to(v6("2001:db8:113::7").into(), vip.into());
        // GRE over IPv6 announcing IPv4 is not ip6gre0's (it takes IPv6 only here).
        let mut outer = fwd::tun6(&inner, TunnelType::Gre, local, remote, B, A).unwrap();
        outer[ETH_HDR + 40 + 2..ETH_HDR + 40 + 4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let mut s = stack();
        s.ifaces[0].spec.addrs6.push((remote, 64));
        s.set_lo(vec![vip.into()]);
        s.decap = vec![Decap::Gre];
        assert_eq!(s.decapsulate(&outer), None);
    }

    /// `ip addr` as iproute2 printed it in a namespace (fixtures/iproute2: eth0 up with a
    /// /32 VIP and a second address in its subnet, eth1 set down, eth2's peer set down),
    /// less the veth's `@ifN` and `link-netns` that only the harness's wiring has.
    #[test]
    fn ip_addr_prints_what_iproute2_prints() {
        let recorded = include_str!("../../fixtures/iproute2/ip-addr-veth.txt");
        let expected: String = recorded
            .lines()
            .map(|l| {
                let l = l.split(" link-netns ").next().unwrap_or(l);
                match l.split_once("@if") {
                    Some((head, rest)) => {
                        format!("{head}{}\n", &rest[rest.find(':').unwrap_or(0)..])
                    }
                    None => format!("{l}\n"),
                }
            })
            .collect();
        let a = |third: u8, last: u8| Ipv4Addr::new(198, 18, third, last);
        let mut s = Stack::new(
            (0..3)
                .map(|n| IfaceSpec::new(&format!("eth{n}"), [2, 0, 0, 0, 0, n], a(n, 114), 24))
                .collect(),
        );
        assert!(s.add_vip("eth0", a(0, 118).into(), 32));
        assert!(s.add_vip("eth0", a(0, 119).into(), 24));
        s.set_up(1, false);
        assert_eq!(s.ip_addr(|i| i != 2), expected);
    }

    /// IPv6 as iproute2 printed it (fixtures/iproute2/ip-addr-ipv6.txt: a global address
    /// on eth0, a VIP added after it with `nodad` as keepalived adds it, a /128 on lo).
    #[test]
    fn ip_addr_prints_ipv6_as_iproute2_prints_it() {
        let recorded = include_str!("../../fixtures/iproute2/ip-addr-ipv6.txt");
        let expected = recorded
            .replace("eth0@if2:", "eth0:")
            .replace(" link-netns lvsd-ipb", "");
        let mut spec = IfaceSpec::new(
            "eth0",
            [2, 0, 0, 0, 0, 0],
            Ipv4Addr::new(198, 18, 0, 114),
            24,
        );
        spec.addrs6.push(("2001:db8:18::114".parse().unwrap(), 64));
        let mut s = Stack::new(vec![spec]);
        assert!(s.add_vip("eth0", "2001:db8:18::118".parse().unwrap(), 64));
        s.set_lo(vec!["2001:db8:18::100".parse().unwrap()]);
        assert_eq!(s.ip_addr(|_| true), expected);
    }

    /// Neighbour discovery between two hosts: a solicitation to the solicited-node group,
    /// answered only for an address of the interface (not for lo's VIP), the answer
    /// flushing the queued packet; an unsolicited advert with the override flag moves an
    /// existing entry and creates none.
    #[test]
    fn neighbour_discovery_resolves_answers_and_follows_overrides() {
        let v6 = |s: &str| -> Ipv6Addr { s.parse().unwrap() };
        let host = |mac: Mac, a: &str| {
            let mut spec = IfaceSpec::new("eth0", mac, Ipv4Addr::new(10, 0, 0, mac[5]), 24);
            spec.addrs6.push((v6(a), 64));
            Stack::new(vec![spec])
        };
        let (mut a, mut b) = (host(A, "2001:db8::a"), host(B, "2001:db8::b"));
        b.set_lo(vec![IpAddr::V6(v6("2001:db8::100"))]);
        let mut fx = Fx::default();
        let pkt = vec![0u8; 60];
        a.route(
            Instant::ZERO,
            None,
            IpAddr::V6(v6("2001:db8::b")),
            pkt.clone(),
            &mut fx,
        );
        let [(0, ns)] = fx.tx.as_slice() else {
            panic!("one solicitation: {:?}", fx.tx);
        };
        assert_eq!(&ns[..6], &[0x33, 0x33, 0xff, 0, 0, 0x0b]);
        let ns = ns.clone();
        fx.tx.clear();
        assert_eq!(b.receive(Instant::ZERO, 0, &ns, &mut fx), Rx::Ndisc);
        let [(0, na)] = fx.tx.as_slice() else {
            panic!("one answer: {:?}", fx.tx);
        };
        assert_eq!(
            b.lookup(Instant::ZERO, IpAddr::V6(v6("2001:db8::a")))
                .map(|n| n.mac),
            Some(A)
        );
        let na = na.clone();
        fx.tx.clear();
        a.receive(Instant::ZERO, 0, &na, &mut fx);
        assert_eq!(fx.tx.len(), 1, "the queued packet goes");
        assert_eq!(packet::dst_mac(&fx.tx[0].1), Some(B));
        fx.tx.clear();
        // lo's address is not answered for (Linux's strict address check).
        a.route(
            Instant::ZERO,
            None,
            IpAddr::V6(v6("2001:db8::100")),
            pkt,
            &mut fx,
        );
        let ns = fx.tx.pop().unwrap().1;
        b.receive(Instant::ZERO, 0, &ns, &mut fx);
        assert!(fx.tx.is_empty());
        // An unsolicited override advert moves B's entry to C, and creates nothing.
        let moved = lvs_core::vrrp::arp::unsolicited_na(C, v6("2001:db8::b"), false);
        a.receive(Instant::from_secs(1), 0, &moved, &mut fx);
        assert_eq!(
            a.lookup(Instant::from_secs(1), IpAddr::V6(v6("2001:db8::b")))
                .map(|n| n.mac),
            Some(C)
        );
        let stranger = lvs_core::vrrp::arp::unsolicited_na(C, v6("2001:db8::77"), false);
        a.receive(Instant::from_secs(1), 0, &stranger, &mut fx);
        assert!(!a.neigh6.contains_key(&v6("2001:db8::77")));
    }

    // Found by the sim bench: a TUN real server's ARP request for its gateway, sent from the
    // VIP on its lo (arp_announce 0), reached the gateway's other interface and moved the
    // gateway's entry for the VIP there, so every request went to the real server instead
    // of the director. Linux keeps one neighbour per device: that cannot happen.
    #[test]
    fn what_one_interface_hears_does_not_move_another_interfaces_neighbour() {
        let mut s = Stack::new(vec![
            IfaceSpec::new("eth0", A, ip(1), 24),
            IfaceSpec::new("eth1", B, Ipv4Addr::new(10, 1, 0, 1), 24),
        ]);
        let vip = ip(100);
        let mut fx = Fx::default();
        // The director (C) asks eth0's address from its VIP: learnt on eth0.
        let learn = Arp {
            op: ArpOp::Request,
            sha: C,
            spa: vip,
            tha: [0; 6],
            tpa: ip(1),
        };
        s.receive(Instant::ZERO, 0, &learn.to_frame(C, BROADCAST), &mut fx);
        assert_eq!(
            s.lookup(Instant::ZERO, vip.into())
                .map(|n| (n.iface, n.mac)),
            Some((0, C))
        );
        // Two seconds on (past locktime), a host behind eth1 asks for eth1's address from
        // the VIP.
        let later = Instant::from_secs(2);
        let ask = Arp {
            op: ArpOp::Request,
            sha: [2, 0, 0, 0, 0, 0xd],
            spa: vip,
            tha: [0; 6],
            tpa: Ipv4Addr::new(10, 1, 0, 1),
        };
        s.receive(
            later,
            1,
            &ask.to_frame([2, 0, 0, 0, 0, 0xd], BROADCAST),
            &mut fx,
        );
        assert_eq!(
            s.lookup(later, vip.into()).map(|n| (n.iface, n.mac)),
            Some((0, C))
        );
        // Packets to the VIP still leave by eth0, to the director's MAC.
        assert_eq!(s.resolved_forward(later, vip.into()), Some((0, A, C)));
    }
}
