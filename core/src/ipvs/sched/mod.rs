//! The kernel's IPVS schedulers (`net/netfilter/ipvs/ip_vs_rr.c` ... `ip_vs_twos.c`).
//!
//! Each scheduler lives in its own module and makes exactly the choice the
//! Linux 6.1 code makes for the same destination list, counters, flags, time
//! and random numbers. Destinations are addressed by their index in the
//! service's list, which is kept in the kernel's order (newest first).
//!
//! The hooks mirror `struct ip_vs_scheduler`: `add_dest` runs after the new
//! destination was linked at the head, `upd_dest` after an edit, `del_dest`
//! after the destination was unlinked (as `__ip_vs_unlink_dest` does).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::ipvs::dest::Dest;
use crate::time::Instant;

mod common;
mod dh;
mod fo;
mod lblc;
mod lblcr;
mod lc;
mod mh;
mod nq;
mod ovf;
mod rr;
mod sed;
mod sh;
mod twos;
mod wlc;
mod wrr;

#[cfg(test)]
mod testutil;
#[cfg(test)]
mod traces;

pub use common::{SchedFlags, SchedPacket};
pub use lblc::DEFAULT_EXPIRATION;

/// One of the 14 schedulers the kernel registers, named as ipvsadm and keepalived name them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SchedKind {
    /// Round robin (`ip_vs_rr.c`).
    Rr,
    /// Weighted round robin (`ip_vs_wrr.c`).
    Wrr,
    /// Least connection (`ip_vs_lc.c`).
    Lc,
    /// Weighted least connection (`ip_vs_wlc.c`), keepalived's default.
    Wlc,
    /// Locality-based least connection (`ip_vs_lblc.c`).
    Lblc,
    /// Locality-based least connection with replication (`ip_vs_lblcr.c`).
    Lblcr,
    /// Destination hashing (`ip_vs_dh.c`).
    Dh,
    /// Source hashing (`ip_vs_sh.c`).
    Sh,
    /// Shortest expected delay (`ip_vs_sed.c`).
    Sed,
    /// Never queue (`ip_vs_nq.c`).
    Nq,
    /// Weighted failover (`ip_vs_fo.c`).
    Fo,
    /// Weighted overflow (`ip_vs_ovf.c`).
    Ovf,
    /// Maglev hashing (`ip_vs_mh.c`).
    Mh,
    /// Weighted random twos choice (`ip_vs_twos.c`).
    Twos,
}

impl SchedKind {
    /// Every scheduler, in `ipvsadm --help` order.
    pub const ALL: [SchedKind; 14] = [
        SchedKind::Rr,
        SchedKind::Wrr,
        SchedKind::Lc,
        SchedKind::Wlc,
        SchedKind::Lblc,
        SchedKind::Lblcr,
        SchedKind::Dh,
        SchedKind::Sh,
        SchedKind::Sed,
        SchedKind::Nq,
        SchedKind::Fo,
        SchedKind::Ovf,
        SchedKind::Mh,
        SchedKind::Twos,
    ];

    /// The name the kernel registers (`ipvsadm -s`, `ipvsadm -L`, keepalived's `lb_algo`).
    pub fn name(self) -> &'static str {
        match self {
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
            SchedKind::Lc => "lc",
            SchedKind::Wlc => "wlc",
            SchedKind::Lblc => "lblc",
            SchedKind::Lblcr => "lblcr",
            SchedKind::Dh => "dh",
            SchedKind::Sh => "sh",
            SchedKind::Sed => "sed",
            SchedKind::Nq => "nq",
            SchedKind::Fo => "fo",
            SchedKind::Ovf => "ovf",
            SchedKind::Mh => "mh",
            SchedKind::Twos => "twos",
        }
    }

    /// The scheduler of that name, if the kernel has one.
    pub fn from_name(name: &str) -> Option<SchedKind> {
        SchedKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The names of the `-b` flags SCHED1 and SCHED2 for this scheduler, as ipvsadm prints
    /// them (`print_sched_flags`): `sh-*` / `mh-*`, else `flag-1` / `flag-2`.
    pub fn flag_names(self) -> (&'static str, &'static str) {
        match self {
            SchedKind::Sh => ("sh-fallback", "sh-port"),
            SchedKind::Mh => ("mh-fallback", "mh-port"),
            _ => ("flag-1", "flag-2"),
        }
    }
}

impl fmt::Display for SchedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SchedKind {
    type Err = SchedError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SchedKind::from_name(s).ok_or_else(|| SchedError::Unknown(s.to_string()))
    }
}

impl serde::Serialize for SchedKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A scheduler name that is not one of the kernel's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchedError {
    /// No scheduler by that name.
    #[error("Scheduler not found: {0}")]
    Unknown(String),
}

/// One service's scheduler with its state.
#[derive(Debug)]
pub struct Scheduler {
    flags: SchedFlags,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Rr(rr::Rr),
    Wrr(wrr::Wrr),
    Lc,
    Wlc,
    Lblc(lblc::Lblc),
    Lblcr(lblcr::Lblcr),
    Dh(dh::Dh),
    Sh(sh::Sh),
    Sed,
    Nq,
    Fo,
    Ovf,
    Mh(mh::Mh),
    Twos,
}

impl Scheduler {
    /// A scheduler of `kind`, created at time zero.
    pub fn new(kind: SchedKind, flags: SchedFlags) -> Self {
        Self::new_at(kind, flags, Instant::ZERO)
    }

    /// A scheduler of `kind`, created at `now` (lblc/lblcr arm their
    /// garbage-collection timer 60 s after creation, as `init_service` does).
    pub fn new_at(kind: SchedKind, flags: SchedFlags, now: Instant) -> Self {
        let kind = match kind {
            SchedKind::Rr => Kind::Rr(rr::Rr::default()),
            SchedKind::Wrr => Kind::Wrr(wrr::Wrr::new(&[])),
            SchedKind::Lc => Kind::Lc,
            SchedKind::Wlc => Kind::Wlc,
            SchedKind::Lblc => Kind::Lblc(lblc::Lblc::new(now)),
            SchedKind::Lblcr => Kind::Lblcr(lblcr::Lblcr::new(now)),
            SchedKind::Dh => Kind::Dh(dh::Dh::default()),
            SchedKind::Sh => Kind::Sh(sh::Sh::default()),
            SchedKind::Sed => Kind::Sed,
            SchedKind::Nq => Kind::Nq,
            SchedKind::Fo => Kind::Fo,
            SchedKind::Ovf => Kind::Ovf,
            SchedKind::Mh => Kind::Mh(mh::Mh::default()),
            SchedKind::Twos => Kind::Twos,
        };
        Scheduler { flags, kind }
    }

    /// `ip_vs_bind_scheduler` on a service that already has `dests` (`ipvsadm -E` with another
    /// scheduler): `init_service` sees the whole list at once (wrr starts at the top weight,
    /// the sh/dh/mh tables are built over it, rr starts at the head).
    pub fn bind(kind: SchedKind, flags: SchedFlags, now: Instant, dests: &[Dest]) -> Self {
        let mut s = Self::new_at(kind, flags, now);
        match &mut s.kind {
            Kind::Wrr(w) => *w = wrr::Wrr::new(dests),
            Kind::Dh(t) => t.reassign(dests),
            Kind::Sh(t) => t.reassign(dests),
            Kind::Mh(t) => t.dest_changed(dests),
            _ => {}
        }
        s
    }

    /// Which scheduler this is.
    pub fn kind(&self) -> SchedKind {
        match self.kind {
            Kind::Rr(_) => SchedKind::Rr,
            Kind::Wrr(_) => SchedKind::Wrr,
            Kind::Lc => SchedKind::Lc,
            Kind::Wlc => SchedKind::Wlc,
            Kind::Lblc(_) => SchedKind::Lblc,
            Kind::Lblcr(_) => SchedKind::Lblcr,
            Kind::Dh(_) => SchedKind::Dh,
            Kind::Sh(_) => SchedKind::Sh,
            Kind::Sed => SchedKind::Sed,
            Kind::Nq => SchedKind::Nq,
            Kind::Fo => SchedKind::Fo,
            Kind::Ovf => SchedKind::Ovf,
            Kind::Mh(_) => SchedKind::Mh,
            Kind::Twos => SchedKind::Twos,
        }
    }

    /// The ipvsadm name.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The `-b` flags the service has now.
    pub fn flags(&self) -> SchedFlags {
        self.flags
    }

    /// `ipvsadm -E` with the same scheduler: the new `-b` flags apply to the next packet, the
    /// state (rr's place, the sh/mh tables) stays.
    pub fn set_flags(&mut self, flags: SchedFlags) {
        self.flags = flags;
    }

    /// A destination was linked at `idx` (always 0: the kernel adds at the head).
    pub fn add_dest(&mut self, dests: &[Dest], idx: usize) {
        match &mut self.kind {
            Kind::Rr(s) => s.add_dest(idx),
            Kind::Wrr(s) => s.dest_changed(dests),
            Kind::Lblcr(s) => s.add_dest(&dests[idx]),
            Kind::Dh(s) => s.reassign(dests),
            Kind::Sh(s) => s.reassign(dests),
            Kind::Mh(s) => s.dest_changed(dests),
            _ => {}
        }
    }

    /// The destination at `idx` was edited (weight, thresholds, method).
    pub fn upd_dest(&mut self, dests: &[Dest], _idx: usize) {
        match &mut self.kind {
            Kind::Wrr(s) => s.dest_changed(dests),
            Kind::Sh(s) => s.reassign(dests),
            Kind::Mh(s) => s.dest_changed(dests),
            // dh has no upd_dest hook: its table ignores weights.
            _ => {}
        }
    }

    /// `removed` was unlinked from position `idx`; `dests` is the list without it.
    pub fn del_dest(&mut self, dests: &[Dest], removed: &Dest, idx: usize) {
        match &mut self.kind {
            Kind::Rr(s) => s.del_dest(idx),
            Kind::Wrr(s) => s.dest_changed(dests),
            Kind::Lblcr(s) => s.del_dest(removed),
            Kind::Dh(s) => s.reassign(dests),
            Kind::Sh(s) => s.reassign(dests),
            Kind::Mh(s) => s.dest_changed(dests),
            _ => {}
        }
    }

    /// Choose a destination index for a new connection, or `None` when the
    /// kernel would log "no destination available".
    pub fn schedule(
        &mut self,
        dests: &[Dest],
        now: Instant,
        pkt: &SchedPacket,
        rng: &mut dyn rand_core::RngCore,
    ) -> Option<usize> {
        let flags = self.flags;
        match &mut self.kind {
            Kind::Rr(s) => s.schedule(dests),
            Kind::Wrr(s) => s.schedule(dests),
            Kind::Lc => lc::schedule(dests),
            Kind::Wlc => wlc::schedule(dests),
            Kind::Lblc(s) => s.schedule(dests, now, pkt.dst),
            Kind::Lblcr(s) => s.schedule(dests, now, pkt.dst),
            Kind::Dh(s) => s.schedule(dests, pkt.dst),
            Kind::Sh(s) => s.schedule(dests, pkt, flags),
            Kind::Sed => sed::schedule(dests),
            Kind::Nq => nq::schedule(dests),
            Kind::Fo => fo::schedule(dests),
            Kind::Ovf => ovf::schedule(dests),
            Kind::Mh(s) => s.schedule(dests, pkt, flags),
            Kind::Twos => twos::schedule(dests, rng),
        }
    }

    /// Run the timers due at or before `now` (lblc/lblcr garbage collection).
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.kind {
            Kind::Lblc(s) => s.handle_timeout(now),
            Kind::Lblcr(s) => s.handle_timeout(now),
            _ => {}
        }
    }

    /// The next timer deadline, if this scheduler has one.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.kind {
            Kind::Lblc(s) => Some(s.poll_timeout()),
            Kind::Lblcr(s) => Some(s.poll_timeout()),
            _ => None,
        }
    }

    /// Set `net.ipv4.vs.lblc_expiration` / `lblcr_expiration` (default 24 h).
    pub fn set_expiration(&mut self, expiration: Duration) {
        match &mut self.kind {
            Kind::Lblc(s) => s.set_expiration(expiration),
            Kind::Lblcr(s) => s.set_expiration(expiration),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::common::{addr_fold, conn_overhead};
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn every_kernel_scheduler_is_known_and_reports_its_name() {
        let names = [
            "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
            "twos",
        ];
        for (name, kind) in names.into_iter().zip(SchedKind::ALL) {
            assert_eq!(name.parse::<SchedKind>(), Ok(kind));
            assert_eq!(kind.to_string(), name);
            let s = Scheduler::new(kind, SchedFlags::default());
            assert_eq!((s.kind(), s.name()), (kind, name));
        }
        assert_eq!(
            "foo".parse::<SchedKind>(),
            Err(SchedError::Unknown("foo".into()))
        );
        assert_eq!(SchedKind::from_name("RR"), None);
    }

    #[test]
    fn ipv6_fold_xors_the_four_words() {
        let a: IpAddr = "2001:db8::1".parse().expect("addr");
        assert_eq!(addr_fold(a), 0x2001_0db8 ^ 1);
        let b: IpAddr = "10.0.0.1".parse().expect("addr");
        assert_eq!(addr_fold(b), 0x0a00_0001);
    }

    #[test]
    fn overhead_weighs_active_256_times_inactive() {
        let mut d = testutil::dest(1, 1);
        d.activeconns = 3;
        d.inactconns = 7;
        assert_eq!(conn_overhead(&d), 3 * 256 + 7);
    }
}
