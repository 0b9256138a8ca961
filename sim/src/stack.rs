//! A host's IPv4 stack as far as the models need it: interfaces with addresses, VIPs on
//! lo, the ARP cache (Linux rules for gratuitous ARP, locktime, arp_ignore/arp_announce),
//! routing by connected subnet or default gateway, and forwarding for routers.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use lvs_core::Instant;
use rustc_hash::FxHashMap;

use crate::packet::{self, Arp, ArpOp, Mac, BROADCAST, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETH_HDR};

/// Timer tokens with this bit belong to the stack (ARP retries); models use the rest.
pub const STACK_TOKEN: u64 = 1 << 63;

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
}

impl IfaceSpec {
    /// An interface with one address.
    pub fn new(name: &str, mac: Mac, addr: Ipv4Addr, prefix: u8) -> Self {
        IfaceSpec {
            name: name.to_string(),
            mac,
            addrs: vec![(addr, prefix)],
        }
    }
}

/// Interface state inside the stack.
#[derive(Clone, Debug)]
pub struct Iface {
    /// Configuration.
    pub spec: IfaceSpec,
    /// Virtual addresses added at run time (keepalived's VIPs).
    pub vips: Vec<(Ipv4Addr, u8)>,
    /// Administrative state (`ip link set dev X up/down`).
    pub up: bool,
    /// The link to a segment, once connected.
    pub link: Option<petgraph::graph::EdgeIndex>,
}

impl Iface {
    // Two plain loops rather than a chained iterator: these run for every frame a host
    // sends or receives, and the chain compiles to a slower loop.
    fn holds(&self, ip: Ipv4Addr) -> bool {
        self.spec.addrs.iter().any(|(a, _)| *a == ip) || self.vips.iter().any(|(a, _)| *a == ip)
    }

    fn on_link(&self, ip: Ipv4Addr) -> bool {
        let on = |&(a, p): &(Ipv4Addr, u8)| same_subnet(a, ip, p);
        self.spec.addrs.iter().any(on) || self.vips.iter().any(on)
    }
}

/// Fill in a frame's Ethernet addresses.
fn address(frame: &mut [u8], src: Mac, dst: Mac) {
    if let Some(h) = frame.get_mut(0..12) {
        h[0..6].copy_from_slice(&dst);
        h[6..12].copy_from_slice(&src);
    }
}

fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    u32::from(a) & mask == u32::from(b) & mask
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

struct Pending {
    iface: usize,
    tries: u32,
    src: Ipv4Addr,
    frames: Vec<Vec<u8>>,
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
    /// An IPv4 packet for a local address (interface, VIP or lo).
    Local,
    /// To be routed on towards this address (routers only): the caller hands the frame to
    /// [`Stack::forward_frame`], which can then reuse the buffer instead of copying it.
    Forward(Ipv4Addr),
    /// IPv4 for an address this host does not hold: dropped.
    NotLocal,
    /// Addressed to this host but neither ARP nor unicast IPv4 (VRRP multicast, other ethertypes).
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
}

/// The IPv4 stack of one host.
pub struct Stack {
    /// Interfaces by index.
    pub ifaces: Vec<Iface>,
    /// Addresses on lo (a real server's VIPs).
    pub lo: Vec<Ipv4Addr>,
    /// `arp_ignore`: 0 answers for any local address, 1 only for addresses on the receiving interface.
    pub arp_ignore: u8,
    /// `arp_announce`: 2 always uses the outgoing interface's address as ARP sender, 0 the packet's source.
    pub arp_announce: u8,
    /// Route packets not addressed to us (a router).
    pub forward: bool,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// How long an ARP entry is used before it is resolved again.
    pub arp_timeout: Duration,
    /// Non-gratuitous ARP does not replace an entry younger than this (Linux `locktime`).
    pub locktime: Duration,
    /// ARP cache (looked up on every routed packet, never iterated into an output).
    pub neigh: FxHashMap<Ipv4Addr, Neigh>,
    pending: BTreeMap<Ipv4Addr, Pending>,
    /// Counters.
    pub stats: StackStats,
}

impl Stack {
    /// A stack with these interfaces, Linux defaults otherwise (no forwarding).
    pub fn new(ifaces: Vec<IfaceSpec>) -> Self {
        Stack {
            ifaces: ifaces
                .into_iter()
                .map(|spec| Iface {
                    spec,
                    vips: Vec::new(),
                    up: true,
                    link: None,
                })
                .collect(),
            lo: Vec::new(),
            arp_ignore: 0,
            arp_announce: 0,
            forward: false,
            gateway: None,
            arp_timeout: Duration::from_secs(60),
            locktime: Duration::from_secs(1),
            neigh: FxHashMap::default(),
            pending: BTreeMap::new(),
            stats: StackStats::default(),
        }
    }

    /// Index of the interface called `name`.
    pub fn iface_index(&self, name: &str) -> Option<usize> {
        self.ifaces.iter().position(|i| i.spec.name == name)
    }

    /// True when `ip` is one of this host's addresses (interfaces, VIPs, lo).
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.lo.contains(&ip) || self.ifaces.iter().any(|i| i.holds(ip))
    }

    /// The cache entry for `ip` if it has not expired.
    pub fn lookup(&self, now: Instant, ip: Ipv4Addr) -> Option<Neigh> {
        self.neigh
            .get(&ip)
            .copied()
            .filter(|n| now < n.updated + self.arp_timeout)
    }

    fn answers_for(&self, iface: usize, ip: Ipv4Addr) -> bool {
        if self.arp_ignore >= 1 {
            self.ifaces.get(iface).is_some_and(|i| i.holds(ip))
        } else {
            self.is_local(ip)
        }
    }

    /// Process a received frame; ARP answers and forwarded packets go into `fx`.
    pub fn receive(&mut self, now: Instant, iface: usize, frame: &[u8], fx: &mut Fx) -> Rx {
        let rx = self.classify(iface, frame);
        match rx {
            Rx::Arp => {
                if let Ok(arp) = Arp::parse_frame(frame) {
                    self.receive_arp(now, iface, &arp, fx);
                }
            }
            Rx::NotLocal => self.stats.dropped_not_local += 1,
            _ => {}
        }
        rx
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
                } else if self.is_local(dst_ip) {
                    Rx::Local
                } else if self.forward && dst == my_mac {
                    Rx::Forward(dst_ip)
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
        let solicited = self.pending.contains_key(&arp.spa);
        let lock = self.locktime;
        match self.neigh.get_mut(&arp.spa) {
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
        if let Some(p) = self.pending.remove(&arp.spa) {
            let my_mac = self
                .ifaces
                .get(p.iface)
                .map(|i| i.spec.mac)
                .unwrap_or_default();
            for mut f in p.frames {
                address(&mut f, my_mac, arp.sha);
                fx.tx.push((p.iface, f));
            }
        }
    }

    /// The interface a packet for `dst` leaves on and the address whose MAC it is sent to:
    /// `dst` itself on a connected subnet, else the default gateway.
    fn next_hop(&self, dst: Ipv4Addr) -> Option<(usize, Ipv4Addr)> {
        if let Some(i) = self.ifaces.iter().position(|i| i.up && i.on_link(dst)) {
            return Some((i, dst));
        }
        let gw = self.gateway?;
        let i = self.ifaces.iter().position(|i| i.up && i.on_link(gw))?;
        Some((i, gw))
    }

    /// Where [`Stack::forward_frame`] would send a packet for `dst` at `at` when the ARP
    /// cache already knows the next hop: the interface and the frame's new (source,
    /// destination) MACs. `None` when it would drop the packet or first ask ARP.
    pub fn resolved_forward(&self, at: Instant, dst: Ipv4Addr) -> Option<(usize, Mac, Mac)> {
        let (iface, hop) = self.next_hop(dst)?;
        let n = self.lookup(at, hop)?;
        Some((iface, self.ifaces[iface].spec.mac, n.mac))
    }

    /// Route on a frame [`Stack::receive`] returned as [`Rx::Forward`].
    pub fn forward_frame(&mut self, now: Instant, dst: Ipv4Addr, frame: Vec<u8>, fx: &mut Fx) {
        self.stats.forwarded += 1;
        self.route(now, None, dst, frame, fx);
    }

    /// Send an IPv4 frame towards `dst`, resolving the next hop; the frame's Ethernet
    /// addresses are (over)written here. `src` is the packet's source when the host
    /// originates it (for arp_announce).
    pub fn route(
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
        let Some((iface, hop)) = self.next_hop(dst) else {
            self.stats.dropped_unresolved += 1;
            return;
        };
        let my_mac = self.ifaces[iface].spec.mac;
        if let Some(n) = self.lookup(now, hop) {
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
            Some(s) if self.arp_announce == 0 && self.is_local(s) => s,
            _ => primary,
        };
        match self.pending.get_mut(&hop) {
            Some(p) => p.frames.push(frame),
            None => {
                self.pending.insert(
                    hop,
                    Pending {
                        iface,
                        tries: 1,
                        src: arp_src,
                        frames: vec![frame],
                    },
                );
                self.send_arp_request(iface, arp_src, hop, fx);
                fx.timers
                    .push((now + ARP_RETRANS, STACK_TOKEN | u64::from(u32::from(hop))));
            }
        }
    }

    fn send_arp_request(&self, iface: usize, src: Ipv4Addr, target: Ipv4Addr, fx: &mut Fx) {
        let mac = self.ifaces[iface].spec.mac;
        let req = Arp {
            op: ArpOp::Request,
            sha: mac,
            spa: src,
            tha: [0; 6],
            tpa: target,
        };
        fx.tx.push((iface, req.to_frame(mac, BROADCAST)));
    }

    /// A stack timer fired (ARP retry).
    pub fn timer(&mut self, now: Instant, token: u64, fx: &mut Fx) {
        let hop = Ipv4Addr::from((token & 0xffff_ffff) as u32);
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
        self.send_arp_request(iface, src, hop, fx);
        fx.timers.push((now + ARP_RETRANS, token));
    }

    /// Add a VIP to an interface; false if the interface does not exist.
    pub fn add_vip(&mut self, iface: &str, addr: Ipv4Addr, prefix: u8) -> bool {
        match self.ifaces.iter_mut().find(|i| i.spec.name == iface) {
            Some(i) => {
                if !i.vips.iter().any(|(a, _)| *a == addr) {
                    i.vips.push((addr, prefix));
                }
                true
            }
            None => false,
        }
    }

    /// Remove a VIP from an interface.
    pub fn del_vip(&mut self, iface: &str, addr: Ipv4Addr) {
        if let Some(i) = self.ifaces.iter_mut().find(|i| i.spec.name == iface) {
            i.vips.retain(|(a, _)| *a != addr);
        }
    }

    /// Every VIP on every interface.
    pub fn vips(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.ifaces.iter().flat_map(|i| i.vips.iter().map(|v| v.0))
    }

    /// Drop all runtime VIPs (a process that held them is gone and they go with it).
    pub fn clear_vips(&mut self) {
        for i in &mut self.ifaces {
            i.vips.clear();
        }
    }
}

#[cfg(test)]
mod tests {
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
        s.route(Instant::ZERO, None, ip(9), vec![0x45; 34], &mut fx);
        assert_eq!(fx.tx.len(), 1, "one ARP request");
        let req = Arp::parse_frame(&fx.tx[0].1).unwrap();
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
            s.lookup(Instant::from_secs(1), ip(9)).map(|n| n.mac),
            Some(B)
        );
        // Expiry: the entry is no longer used after arp_timeout.
        assert_eq!(s.lookup(Instant::from_secs(61), ip(9)), None);
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
        s.lo.push(ip(100));
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
}
