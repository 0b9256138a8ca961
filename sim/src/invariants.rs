//! Safety invariants checked after every event, and liveness bounds stated by a test.
//!
//! Safety: at most one MASTER per VRRP instance (VRID) and at most one holder per VIP
//! within one connected part of the network, once a grace period has passed (two masters
//! legitimately coexist for up to an advert interval after a partition heals); no new
//! connection (SYN) forwarded to a real server that director has marked down.
//! Liveness: after a stated instant the cluster converges within a stated bound.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use lvs_core::director::VrrpState;
use lvs_core::ipvs::{IpvsChange, ServiceKey};
use lvs_core::Instant;

use crate::HostId;

/// Part id of hosts that take no part (dead or paused processes).
pub const NO_PART: usize = usize::MAX;

/// Tolerances of the safety checks.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InvariantConfig {
    /// How long two MASTERs of one instance may coexist in one part.
    pub split_brain_grace: Duration,
    /// How long two holders of one VIP may coexist in one part.
    pub vip_grace: Duration,
}

impl Default for InvariantConfig {
    fn default() -> Self {
        // Master_Down_Interval for advert_int 1 s is about 3.x s; a resolution takes one advert.
        InvariantConfig {
            split_brain_grace: Duration::from_secs(4),
            vip_grace: Duration::from_secs(4),
        }
    }
}

pub use lvs_scenarios::observe::{Violation, ViolationKind};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Suspect {
    Masters(String),
    Vip(IpAddr),
}

#[derive(Clone, Debug)]
struct Liveness {
    after: Instant,
    within: Duration,
    satisfied: Option<Instant>,
    reported: bool,
}

/// Invariant bookkeeping, fed by the engine.
#[derive(Debug, Default)]
pub struct Invariants {
    /// Tolerances.
    pub config: InvariantConfig,
    states: BTreeMap<String, BTreeMap<HostId, VrrpState>>,
    vip_owners: BTreeMap<IpAddr, BTreeSet<HostId>>,
    down: BTreeMap<HostId, BTreeMap<ServiceKey, BTreeSet<std::net::IpAddr>>>,
    suspects: BTreeMap<Suspect, (Instant, bool)>,
    liveness: Vec<Liveness>,
    /// Violations so far.
    pub violations: Vec<Violation>,
    dirty: bool,
}

impl Invariants {
    /// A VRRP instance on `host` changed state (Output::Notify of kind INSTANCE).
    pub fn vrrp_state(&mut self, host: HostId, instance: &str, state: VrrpState) {
        self.states
            .entry(instance.to_string())
            .or_default()
            .insert(host, state);
        self.dirty = true;
    }

    /// `host` now holds (or no longer holds) `vip`.
    pub fn vip(&mut self, host: HostId, vip: IpAddr, held: bool) {
        let owners = self.vip_owners.entry(vip).or_default();
        if held {
            owners.insert(host);
        } else {
            owners.remove(&host);
        }
        self.dirty = true;
    }

    /// The director process on `host` is gone: it holds no VRRP state and no IPVS marks.
    pub fn process_gone(&mut self, host: HostId) {
        for s in self.states.values_mut() {
            s.remove(&host);
        }
        self.down.remove(&host);
        self.dirty = true;
    }

    /// Something about connectivity changed; re-evaluate at the next check.
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Track which destinations `host`'s director has taken out of service.
    pub fn ipvs(&mut self, host: HostId, change: &IpvsChange) {
        let marks = self.down.entry(host).or_default();
        match change {
            IpvsChange::DelDest(svc, dest) => {
                marks.entry(*svc).or_default().insert(dest.0);
            }
            IpvsChange::AddDest(svc, d) | IpvsChange::EditDest(svc, d) => {
                let set = marks.entry(*svc).or_default();
                if d.weight > 0 {
                    set.remove(&d.addr);
                } else {
                    set.insert(d.addr);
                }
            }
            IpvsChange::DelService(svc) => {
                marks.remove(svc);
            }
            IpvsChange::AddService(_) | IpvsChange::EditService(_) => {}
        }
    }

    /// A director sent a SYN (or an SCTP INIT) for `vip:port` to a host holding
    /// `server_addrs`.
    pub fn syn_forwarded(
        &mut self,
        now: Instant,
        host: HostId,
        vip: IpAddr,
        port: u16,
        server_addrs: &[IpAddr],
    ) {
        let Some(marks) = self.down.get(&host) else {
            return;
        };
        for (svc, down) in marks {
            let matches = match svc {
                ServiceKey::Inet { addr, port: p, .. } => *addr == vip && (*p == port || *p == 0),
                ServiceKey::Fwmark { .. } => false,
            };
            if let Some(a) = server_addrs.iter().find(|a| matches && down.contains(*a)) {
                self.violations.push(Violation {
                    t: now,
                    kind: ViolationKind::ConnToDownServer,
                    detail: format!(
                        "host {} sent a new connection for {vip}:{port} to {a}, marked down",
                        host.0
                    ),
                });
                return;
            }
        }
    }

    /// Require convergence within `within` of `after`.
    pub fn expect_converged(&mut self, after: Instant, within: Duration) {
        self.liveness.push(Liveness {
            after,
            within,
            satisfied: None,
            reported: false,
        });
    }

    /// True when something changed since the last check.
    pub fn needs_check(&self) -> bool {
        self.dirty
    }

    /// True while a liveness bound waits for convergence.
    pub fn liveness_pending(&self) -> bool {
        self.liveness
            .iter()
            .any(|l| l.satisfied.is_none() && !l.reported)
    }

    /// When a tolerance or liveness bound next runs out, so the engine can check then even
    /// if no other event happens.
    pub fn next_deadline(&self) -> Option<Instant> {
        let one = Duration::from_nanos(1);
        let suspects = self
            .suspects
            .iter()
            .filter(|(_, (_, reported))| !reported)
            .map(|(k, (since, _))| {
                let grace = match k {
                    Suspect::Masters(_) => self.config.split_brain_grace,
                    Suspect::Vip(_) => self.config.vip_grace,
                };
                *since + grace + one
            });
        let live = self
            .liveness
            .iter()
            .filter(|l| l.satisfied.is_none() && !l.reported)
            .map(|l| l.after + l.within + one);
        suspects.chain(live).min()
    }

    /// MASTERs of `instance` per host.
    pub fn masters(&self, instance: &str) -> Vec<HostId> {
        self.states
            .get(instance)
            .map(|m| {
                m.iter()
                    .filter(|(_, s)| **s == VrrpState::Master)
                    .map(|(h, _)| *h)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Instances seen so far.
    pub fn instances(&self) -> impl Iterator<Item = &str> {
        self.states.keys().map(String::as_str)
    }

    /// Hosts holding `vip`.
    pub fn vip_holders(&self, vip: IpAddr) -> Vec<HostId> {
        self.vip_owners
            .get(&vip)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// VIPs seen so far.
    pub fn vips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.vip_owners.keys().copied()
    }

    /// Converged: in every part with a participant of an instance exactly one MASTER, and
    /// every VIP ever held has exactly one holder.
    pub fn converged(&self, part: &[usize]) -> bool {
        let pid = |h: &HostId| part.get(h.0).copied().unwrap_or(NO_PART);
        for hosts in self.states.values() {
            let mut per_part: BTreeMap<usize, usize> = BTreeMap::new();
            for (h, s) in hosts {
                if pid(h) == NO_PART {
                    continue;
                }
                let c = per_part.entry(pid(h)).or_insert(0);
                if *s == VrrpState::Master {
                    *c += 1;
                }
            }
            if per_part.values().any(|c| *c != 1) {
                return false;
            }
        }
        self.vip_owners.values().all(|o| o.len() == 1)
    }

    /// Evaluate the safety checks and liveness bounds at `now`; `part[h]` is host h's part
    /// id, `converged` says whether the engine's extra convergence conditions hold.
    pub fn check(&mut self, now: Instant, part: &[usize], extra_converged: bool) {
        self.dirty = false;
        let pid = |h: &HostId| part.get(h.0).copied().unwrap_or(NO_PART);
        let mut bad: Vec<(Suspect, String)> = Vec::new();
        for (inst, hosts) in &self.states {
            let mut per_part: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for (h, s) in hosts {
                if *s == VrrpState::Master && pid(h) != NO_PART {
                    per_part.entry(pid(h)).or_default().push(h.0);
                }
            }
            if let Some(v) = per_part.values().find(|v| v.len() > 1) {
                bad.push((
                    Suspect::Masters(inst.clone()),
                    format!("instance {inst}: MASTER on hosts {v:?}"),
                ));
            }
        }
        for (vip, owners) in &self.vip_owners {
            let mut per_part: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for h in owners.iter().filter(|h| pid(h) != NO_PART) {
                per_part.entry(pid(h)).or_default().push(h.0);
            }
            if let Some(v) = per_part.values().find(|v| v.len() > 1) {
                bad.push((Suspect::Vip(*vip), format!("VIP {vip} held by hosts {v:?}")));
            }
        }
        let keys: BTreeSet<Suspect> = bad.iter().map(|b| b.0.clone()).collect();
        self.suspects.retain(|k, _| keys.contains(k));
        for (key, detail) in bad {
            let grace = match key {
                Suspect::Masters(_) => self.config.split_brain_grace,
                Suspect::Vip(_) => self.config.vip_grace,
            };
            let entry = self.suspects.entry(key.clone()).or_insert((now, false));
            if !entry.1 && now - entry.0 > grace {
                entry.1 = true;
                let kind = match key {
                    Suspect::Masters(_) => ViolationKind::SplitBrain,
                    Suspect::Vip(_) => ViolationKind::DuplicateVip,
                };
                self.violations.push(Violation {
                    t: now,
                    kind,
                    detail: format!("{detail} since {}", entry.0),
                });
            }
        }
        if self
            .liveness
            .iter()
            .any(|l| l.satisfied.is_none() && !l.reported)
        {
            let ok = extra_converged && self.converged(part);
            for l in self
                .liveness
                .iter_mut()
                .filter(|l| l.satisfied.is_none() && !l.reported)
            {
                if now <= l.after {
                    continue;
                }
                if ok {
                    l.satisfied = Some(now);
                } else if now > l.after + l.within {
                    l.reported = true;
                    self.violations.push(Violation {
                        t: now,
                        kind: ViolationKind::Liveness,
                        detail: format!("not converged within {:?} after {}", l.within, l.after),
                    });
                }
            }
        }
    }

    /// Report liveness bounds whose deadline passed by `end` without convergence.
    pub fn finish(&mut self, end: Instant) {
        for l in self
            .liveness
            .iter_mut()
            .filter(|l| l.satisfied.is_none() && !l.reported)
        {
            if end > l.after + l.within {
                l.reported = true;
                self.violations.push(Violation {
                    t: end,
                    kind: ViolationKind::Liveness,
                    detail: format!("not converged within {:?} after {}", l.within, l.after),
                });
            }
        }
    }

    /// When each liveness bound was first met (None: not yet).
    pub fn liveness_met(&self) -> Vec<Option<Instant>> {
        self.liveness.iter().map(|l| l.satisfied).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_brain_reported_only_after_grace_and_only_within_a_part() {
        let mut inv = Invariants::default();
        inv.vrrp_state(HostId(0), "VI_1", VrrpState::Master);
        inv.vrrp_state(HostId(1), "VI_1", VrrpState::Master);
        let together = [0, 0];
        let apart = [0, 1];
        inv.check(Instant::from_secs(1), &apart, true);
        inv.check(Instant::from_secs(10), &apart, true);
        assert!(inv.violations.is_empty(), "partitioned masters are allowed");
        inv.check(Instant::from_secs(11), &together, true);
        inv.check(Instant::from_secs(13), &together, true);
        assert!(inv.violations.is_empty(), "within grace");
        inv.check(Instant::from_secs(16), &together, true);
        assert_eq!(inv.violations.len(), 1);
        assert_eq!(inv.violations[0].kind, ViolationKind::SplitBrain);
    }

    #[test]
    fn liveness_bound_fails_when_never_converged() {
        let mut inv = Invariants::default();
        inv.vrrp_state(HostId(0), "VI_1", VrrpState::Backup);
        inv.expect_converged(Instant::from_secs(1), Duration::from_secs(2));
        inv.check(Instant::from_secs(2), &[0], true);
        assert!(inv.violations.is_empty());
        inv.check(Instant::from_secs(4), &[0], true);
        assert_eq!(inv.violations[0].kind, ViolationKind::Liveness);
        let mut ok = Invariants::default();
        ok.vrrp_state(HostId(0), "VI_1", VrrpState::Master);
        ok.expect_converged(Instant::from_secs(1), Duration::from_secs(2));
        ok.check(Instant::from_secs(2), &[0], true);
        ok.finish(Instant::from_secs(9));
        assert!(ok.violations.is_empty());
        assert_eq!(ok.liveness_met(), vec![Some(Instant::from_secs(2))]);
    }
}
