//! Virtual services and their destinations (kernel `ip_vs_ctl.c`).
//!
//! The public signatures below are what conn.rs, the Director and the CLI
//! build on. Destinations are kept in the kernel's list order: `ipvsadm -a`
//! links the new destination at the head of `svc->destinations`
//! (`__ip_vs_update_dest`), and every scheduler walks the list in that order.

use std::net::IpAddr;

pub use super::dest::{Dest, DestSpec};
pub use super::sched::SchedPacket;
use super::sched::{SchedFlags, SchedKind, Scheduler};
use super::stats::IpvsStats;
use super::{ServiceKey, SockAddr};
use crate::time::Instant;

/// What `ipvsadm -A/-E` sets on a service.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ServiceSpec {
    /// Protocol/address/port or fwmark.
    pub key: ServiceKey,
    /// Scheduler (`-s`).
    pub scheduler: SchedKind,
    /// `-b` scheduler flags (sh-fallback, sh-port, mh-fallback, mh-port).
    pub flags: SchedFlags,
    /// Persistence timeout in seconds (`-p`), if persistent.
    pub persistence: Option<u32>,
    /// Persistence netmask (`-M`) as a prefix length (32 / 128 = per client).
    pub netmask_prefix: u8,
    /// One-packet scheduling (`-o`).
    pub one_packet: bool,
}

/// A change to the IPVS table, as a driver applies it to the kernel (`ipvsadm` verbs).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum IpvsChange {
    /// `-A`.
    AddService(ServiceSpec),
    /// `-E`.
    EditService(ServiceSpec),
    /// `-D`.
    DelService(ServiceKey),
    /// `-a`.
    AddDest(ServiceKey, DestSpec),
    /// `-e`.
    EditDest(ServiceKey, DestSpec),
    /// `-d`.
    DelDest(ServiceKey, SockAddr),
}

/// Errors from service and destination changes, worded like ipvsadm's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpvsError {
    /// `-a` of a destination that exists.
    #[error("Destination already exists")]
    DestExists,
    /// `-e`/`-d` of a destination that does not exist.
    #[error("No such destination")]
    NoSuchDest,
    /// `-A` of a service that exists.
    #[error("Service already exists")]
    ServiceExists,
    /// `-E`/`-D`/`-a` on a service that does not exist.
    #[error("No such service")]
    NoSuchService,
    /// Weight out of range.
    #[error("Zero or negative weight is not allowed here: {0}")]
    BadWeight(i32),
}

/// A virtual service: its spec, its destinations in kernel list order, its scheduler.
#[derive(Debug)]
pub struct Service {
    spec: ServiceSpec,
    dests: Vec<Dest>,
    sched: Scheduler,
    /// Time of the latest call that brought one, for [`Service::schedule`].
    now: Instant,
    /// `svc->stats`: what its destinations got, including destinations since removed.
    stats: IpvsStats,
}

impl Service {
    /// `ipvsadm -A`.
    pub fn new(spec: ServiceSpec) -> Self {
        Self::new_at(spec, Instant::ZERO)
    }

    /// `ipvsadm -A` at `now` (lblc/lblcr arm their 60 s GC timer from here).
    pub fn new_at(spec: ServiceSpec, now: Instant) -> Self {
        let sched = Scheduler::new_at(spec.scheduler, spec.flags, now);
        Service {
            spec,
            dests: Vec::new(),
            sched,
            now,
            stats: IpvsStats::default(),
        }
    }

    /// `ipvsadm -E` (`ip_vs_edit_service`): flags, persistence and netmask apply at once.
    /// Another scheduler is bound afresh to the list as it stands (`init_service`); the same
    /// one keeps its state, as the kernel only rebinds when the scheduler changes (recorded:
    /// fixtures/traces/edit-service.trace, where rr keeps its place).
    pub fn edit(&mut self, spec: ServiceSpec) {
        if spec.scheduler == self.spec.scheduler {
            self.sched.set_flags(spec.flags);
        } else {
            self.sched = Scheduler::bind(spec.scheduler, spec.flags, self.now, &self.dests);
        }
        self.spec = spec;
    }

    /// The service's settings.
    pub fn spec(&self) -> &ServiceSpec {
        &self.spec
    }

    /// The scheduler and its state.
    pub fn scheduler(&self) -> &Scheduler {
        &self.sched
    }

    /// The scheduler, mutably (e.g. to set the lblc expiration sysctl).
    pub fn scheduler_mut(&mut self) -> &mut Scheduler {
        &mut self.sched
    }

    /// Connections, packets and bytes of the service (`svc->stats`).
    pub fn stats(&self) -> &IpvsStats {
        &self.stats
    }

    /// The service's counters, to count traffic in.
    pub fn stats_mut(&mut self) -> &mut IpvsStats {
        &mut self.stats
    }

    /// Destinations in the kernel's list order (newest first).
    pub fn dests(&self) -> &[Dest] {
        &self.dests
    }

    /// The destination at `addr:port`.
    pub fn dest(&self, addr: IpAddr, port: u16) -> Option<&Dest> {
        self.dests.iter().find(|d| d.addr == addr && d.port == port)
    }

    /// The destination at `addr:port`, mutably (counters and flags).
    pub fn dest_mut(&mut self, addr: IpAddr, port: u16) -> Option<&mut Dest> {
        self.dests
            .iter_mut()
            .find(|d| d.addr == addr && d.port == port)
    }

    /// `ipvsadm -a`: the new destination goes to the head of the list.
    pub fn add_dest(&mut self, spec: &DestSpec) -> Result<(), IpvsError> {
        // ip_vs_add_dest: "server weight less than zero" -> -ERANGE.
        if spec.weight < 0 {
            return Err(IpvsError::BadWeight(spec.weight));
        }
        if self.dest(spec.addr, spec.port).is_some() {
            return Err(IpvsError::DestExists);
        }
        self.dests.insert(0, Dest::new(spec));
        self.sched.add_dest(&self.dests, 0);
        Ok(())
    }

    /// `ipvsadm -e`, with `__ip_vs_update_dest`'s side effects: `last_weight`
    /// keeps the latest non-zero weight, and a threshold change re-evaluates the
    /// overload flag ([`Dest::set_thresholds`]).
    pub fn edit_dest(&mut self, spec: &DestSpec) -> Result<(), IpvsError> {
        if spec.weight < 0 {
            return Err(IpvsError::BadWeight(spec.weight));
        }
        let idx = self
            .dests
            .iter()
            .position(|d| d.addr == spec.addr && d.port == spec.port)
            .ok_or(IpvsError::NoSuchDest)?;
        let d = &mut self.dests[idx];
        if spec.weight != 0 {
            d.last_weight = spec.weight;
        }
        d.weight = spec.weight;
        d.fwd = spec.fwd;
        d.set_thresholds(spec.u_threshold, spec.l_threshold);
        self.sched.upd_dest(&self.dests, idx);
        Ok(())
    }

    /// `ipvsadm -d`: unlink, then tell the scheduler (as `__ip_vs_unlink_dest`).
    pub fn del_dest(&mut self, addr: IpAddr, port: u16) -> Result<Dest, IpvsError> {
        let idx = self
            .dests
            .iter()
            .position(|d| d.addr == addr && d.port == port)
            .ok_or(IpvsError::NoSuchDest)?;
        let removed = self.dests.remove(idx);
        self.sched.del_dest(&self.dests, &removed, idx);
        Ok(removed)
    }

    /// Pick a destination for a new connection; an index into [`Service::dests`].
    ///
    /// Uses the time of the latest [`Service::schedule_at`] /
    /// [`Service::handle_timeout`] call; only lblc and lblcr look at time.
    pub fn schedule(
        &mut self,
        pkt: &SchedPacket,
        rng: &mut dyn rand_core::RngCore,
    ) -> Option<usize> {
        let now = self.now;
        self.schedule_at(now, pkt, rng)
    }

    /// Pick a destination for a new connection at `now`; runs any overdue
    /// scheduler timer first, as the kernel's would have fired on time.
    pub fn schedule_at(
        &mut self,
        now: Instant,
        pkt: &SchedPacket,
        rng: &mut dyn rand_core::RngCore,
    ) -> Option<usize> {
        self.handle_timeout(now);
        self.sched.schedule(&self.dests, now, pkt, rng)
    }

    /// Run scheduler timers due at or before `now` (lblc/lblcr table GC).
    pub fn handle_timeout(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
        self.sched.handle_timeout(self.now);
    }

    /// The next scheduler timer deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sched.poll_timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::{FwdMethod, Protocol};

    fn spec(w: i32, u: u32) -> DestSpec {
        DestSpec {
            addr: "10.0.0.11".parse().expect("ip"),
            port: 80,
            fwd: FwdMethod::Route,
            weight: w,
            u_threshold: u,
            l_threshold: 0,
        }
    }

    fn svc() -> Service {
        Service::new(ServiceSpec {
            key: ServiceKey::Inet {
                proto: Protocol::Tcp,
                addr: "10.0.0.1".parse().expect("ip"),
                port: 80,
            },
            scheduler: SchedKind::Wrr,
            flags: SchedFlags::default(),
            persistence: None,
            netmask_prefix: 32,
            one_packet: false,
        })
    }

    #[test]
    fn add_edit_del_follow_ip_vs_ctl() {
        let mut s = svc();
        assert_eq!(s.add_dest(&spec(-1, 0)), Err(IpvsError::BadWeight(-1)));
        s.add_dest(&spec(5, 10)).expect("add");
        assert_eq!(s.add_dest(&spec(5, 10)), Err(IpvsError::DestExists));
        let a = spec(0, 0).addr;
        // Weight 0 keeps last_weight (mh builds on it).
        s.edit_dest(&spec(0, 10)).expect("edit");
        let d = s.dest(a, 80).expect("dest");
        assert_eq!((d.weight, d.last_weight), (0, 5));
        // A threshold change re-evaluates the flag against the 7 connections: u = 8 or 9
        // leaves it (7 is between u - u/4 and u), u = 7 sets it, u = 0 clears it, u = 10
        // clears it (7 < 10 - 2); a weight-only edit leaves it.
        let d = s.dest_mut(a, 80).expect("dest");
        (d.activeconns, d.overloaded) = (7, true);
        let overloaded = |s: &mut Service, w, u| {
            s.edit_dest(&spec(w, u)).expect("edit");
            s.dest(a, 80).expect("dest").overloaded
        };
        assert!(overloaded(&mut s, 3, 8));
        assert!(overloaded(&mut s, 3, 9));
        assert!(!overloaded(&mut s, 3, 0));
        assert!(overloaded(&mut s, 3, 7));
        assert!(!overloaded(&mut s, 3, 10));
        s.dest_mut(a, 80).expect("dest").overloaded = true;
        assert!(overloaded(&mut s, 4, 10));
        s.edit_dest(&spec(3, 10)).expect("edit");
        assert_eq!(s.dest(a, 80).expect("dest").last_weight, 3);
        let gone = s.del_dest(a, 80).expect("del");
        assert_eq!(gone.weight, 3);
        assert_eq!(s.del_dest(a, 80), Err(IpvsError::NoSuchDest));
        assert_eq!(s.edit_dest(&spec(1, 0)), Err(IpvsError::NoSuchDest));
    }
}
