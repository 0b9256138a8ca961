//! Connected parts (partitions) and the invariant checks run against them.

use std::net::IpAddr;
use std::time::Duration;

use crate::invariants::{Violation, NO_PART};
use crate::packet::{self, Mac};
use crate::record::TraceEvent;
use crate::HostId;

use super::world::Model;
use super::{Ev, Sim};

/// How often convergence is re-evaluated while a liveness bound is pending.
const LIVENESS_POLL: Duration = Duration::from_millis(10);
impl Sim {
    /// A SYN (or SCTP INIT) a director forwards goes to the host owning the destination MAC.
    pub(super) fn check_syn(&mut self, host: usize, frame: &[u8]) {
        // Most forwarded frames are neither: read a flags or chunk type byte before parsing.
        let (dst, dport) = if packet::is_tcp_syn(frame) {
            let Ok(seg) = packet::parse_tcp(frame) else {
                return;
            };
            if !seg.flags.syn || seg.flags.ack {
                return;
            }
            (seg.dst, seg.dport)
        } else if crate::sctp::is_init(frame) {
            let Ok(p) = crate::sctp::parse_sctp(frame) else {
                return;
            };
            (IpAddr::V4(p.dst), p.dport)
        } else {
            return;
        };
        let Some(target) = packet::dst_mac(frame).and_then(|m| self.macs.get(&m).copied()) else {
            return;
        };
        // One buffer for every forwarded SYN's list, not an allocation each.
        let mut addrs = std::mem::take(&mut self.syn_addrs);
        addrs.clear();
        addrs.extend(
            self.hosts[target]
                .stack
                .ifaces()
                .iter()
                .flat_map(|i| i.configured()),
        );
        let before = self.inv.violations.len();
        self.inv
            .syn_forwarded(self.now, HostId(host), dst, dport, &addrs);
        self.syn_addrs = addrs;
        let new: Vec<Violation> = self.inv.violations[before..].to_vec();
        for v in new {
            self.trace_push(usize::MAX, TraceEvent::Violation { violation: v });
        }
    }

    /// Connected part of every host: running directors that share a segment through live links
    /// with no partition in either direction are joined (transitively, director to director —
    /// VRRP adverts are not routed); every other host is a part of its own; dead or paused
    /// directors are in none.
    pub fn parts(&self) -> Vec<usize> {
        let n = self.hosts.len();
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                p[x] = p[p[x]];
                x = p[x];
            }
            x
        }
        let participates = |h: usize| match &self.hosts[h].model {
            Model::Director(d) => d.proc.is_some() && !d.paused,
            _ => true,
        };
        let is_director = |h: usize| matches!(self.hosts[h].model, Model::Director(_));
        for seg in &self.segs {
            let members: Vec<usize> = self
                .graph
                .edges(seg.node)
                .filter(|r| self.iface_carrier(r.weight().host, r.weight().iface))
                .map(|r| r.weight().host)
                .filter(|h| is_director(*h) && participates(*h))
                .collect();
            for (i, &a) in members.iter().enumerate() {
                for &b in &members[i + 1..] {
                    if !self.blocked.contains(&(a, b)) && !self.blocked.contains(&(b, a)) {
                        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
                        parent[ra.max(rb)] = ra.min(rb);
                    }
                }
            }
        }
        (0..n)
            .map(|h| {
                if participates(h) {
                    find(&mut parent, h)
                } else {
                    NO_PART
                }
            })
            .collect()
    }

    /// Every gateway ARP entry for a held VIP points at a holder's interface.
    pub(super) fn gateways_agree(&self) -> bool {
        for vip in self.inv.vips() {
            let holders = self.inv.vip_holders(vip);
            let macs: Vec<Mac> = holders
                .iter()
                .flat_map(|h| self.hosts[h.0].stack.ifaces().iter().map(|i| i.spec.mac))
                .collect();
            for h in &self.hosts {
                if !h.stack.forward {
                    continue;
                }
                if let Some(n) = h.stack.lookup(self.now, vip) {
                    if !macs.contains(&n.mac) {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// The host holding `addr` that a packet `from` sends to it reaches, following each
    /// host's route (connected subnet or gateway) over links with carrier at both ends and
    /// through hosts that forward: where a health check from `from` gets to.
    fn route_reaches(&self, from: usize, addr: IpAddr) -> Option<usize> {
        let mut cur = from;
        // A handful of routers at most; a routing loop ends here too.
        for _ in 0..8 {
            let (iface, hop) = self.hosts[cur].stack.next_hop(addr)?;
            let link = self.hosts[cur].stack.ifaces()[iface].link?;
            if !self.iface_carrier(cur, iface) {
                return None;
            }
            let seg = self.segs.get(self.graph[link].seg)?;
            let next = self.graph.edges(seg.node).find_map(|r| {
                let (h, i) = (r.weight().host, r.weight().iface);
                let holds = self.hosts[h].stack.ifaces()[i]
                    .configured()
                    .any(|a| a == hop);
                (h != cur && holds && self.iface_carrier(h, i)).then_some(h)
            })?;
            if hop == addr {
                return Some(next);
            }
            if !self.hosts[next].stack.forward {
                return None;
            }
            cur = next;
        }
        None
    }

    /// Every running director's IPVS table shows each real server it knows (its checkers
    /// once added it) as it is: present with a weight above 0 exactly when the host's
    /// service on that port runs, the director's route to the address reaches it (see
    /// `route_reaches`) and no partition stands between the two. Link loss is not weighed.
    pub(super) fn tables_settled(&self) -> bool {
        self.known_dests.iter().all(|&(d, svc, addr, port)| {
            let Model::Director(dir) = &self.hosts[d].model else {
                return true;
            };
            let Some(ipvs) = dir
                .proc
                .as_ref()
                .filter(|_| !dir.paused)
                .and_then(|p| p.ipvs())
            else {
                return true;
            };
            let Some(service) = ipvs.service(&svc) else {
                return true;
            };
            let in_table = service
                .dests()
                .iter()
                .any(|x| x.addr == addr && x.port == port && x.weight > 0);
            let up = self.route_reaches(d, addr).is_some_and(|r| {
                let Model::Server(s) = &self.hosts[r].model else {
                    return false;
                };
                s.services
                    .iter()
                    .any(|(spec, _)| spec.port == port && spec.running)
                    && !self.blocked.contains(&(d, r))
                    && !self.blocked.contains(&(r, d))
            });
            in_table == up
        })
    }

    pub(super) fn check_invariants(&mut self) {
        let parts = self.parts();
        // Only a pending liveness bound reads the convergence conditions the engine adds.
        let extra = self.inv.liveness_pending() && self.gateways_agree() && self.tables_settled();
        let before = self.inv.violations.len();
        self.inv.check(self.now, &parts, extra);
        let new: Vec<Violation> = self.inv.violations[before..].to_vec();
        for v in new {
            self.trace_push(usize::MAX, TraceEvent::Violation { violation: v });
        }
        if self.check_at.is_some_and(|c| c <= self.now) {
            self.check_at = None;
        }
        // Convergence also depends on ARP caches the checker is not told about: poll it.
        let poll = self
            .inv
            .liveness_pending()
            .then(|| self.now + LIVENESS_POLL);
        let next = match (self.inv.next_deadline(), poll) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(at) = next {
            if self.check_at.is_none_or(|c| at < c) {
                self.check_at = Some(at);
                self.queue.push(at, Ev::Check);
            }
        }
    }
}
