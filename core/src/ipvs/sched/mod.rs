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

use std::net::IpAddr;
use std::time::Duration;

use super::service::{Dest, SchedPacket};
use crate::time::Instant;

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

pub use lblc::DEFAULT_EXPIRATION;

/// Every scheduler name the kernel registers, in `ipvsadm --help` order.
pub const SCHEDULER_NAMES: [&str; 14] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

/// `-b` scheduler flags (kernel IP_VS_SVC_F_SCHED1..3).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SchedFlags {
    /// `sh-fallback` / `mh-fallback` (SCHED1).
    pub fallback: bool,
    /// `sh-port` / `mh-port` (SCHED2).
    pub port: bool,
}

/// Scheduler construction errors.
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
    /// A scheduler by ipvsadm name, created at time zero.
    pub fn new(name: &str, flags: SchedFlags) -> Result<Self, SchedError> {
        Self::new_at(name, flags, Instant::ZERO)
    }

    /// A scheduler by ipvsadm name, created at `now` (lblc/lblcr arm their
    /// garbage-collection timer 60 s after creation, as `init_service` does).
    pub fn new_at(name: &str, flags: SchedFlags, now: Instant) -> Result<Self, SchedError> {
        let kind = match name {
            "rr" => Kind::Rr(rr::Rr::default()),
            "wrr" => Kind::Wrr(wrr::Wrr::new(&[])),
            "lc" => Kind::Lc,
            "wlc" => Kind::Wlc,
            "lblc" => Kind::Lblc(lblc::Lblc::new(now)),
            "lblcr" => Kind::Lblcr(lblcr::Lblcr::new(now)),
            "dh" => Kind::Dh(dh::Dh::default()),
            "sh" => Kind::Sh(sh::Sh::default()),
            "sed" => Kind::Sed,
            "nq" => Kind::Nq,
            "fo" => Kind::Fo,
            "ovf" => Kind::Ovf,
            "mh" => Kind::Mh(mh::Mh::default()),
            "twos" => Kind::Twos,
            other => return Err(SchedError::Unknown(other.to_string())),
        };
        Ok(Scheduler { flags, kind })
    }

    /// The ipvsadm name.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Rr(_) => "rr",
            Kind::Wrr(_) => "wrr",
            Kind::Lc => "lc",
            Kind::Wlc => "wlc",
            Kind::Lblc(_) => "lblc",
            Kind::Lblcr(_) => "lblcr",
            Kind::Dh(_) => "dh",
            Kind::Sh(_) => "sh",
            Kind::Sed => "sed",
            Kind::Nq => "nq",
            Kind::Fo => "fo",
            Kind::Ovf => "ovf",
            Kind::Mh(_) => "mh",
            Kind::Twos => "twos",
        }
    }

    /// The `-b` flags this scheduler was created with.
    pub fn flags(&self) -> SchedFlags {
        self.flags
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

/// `ip_vs_dest_conn_overhead`: `(activeconns << 8) + inactconns`, in the
/// kernel's `int` arithmetic (wrapping, as the kernel builds with
/// `-fno-strict-overflow`).
pub(crate) fn conn_overhead(d: &Dest) -> i32 {
    (d.activeconns as i32)
        .wrapping_shl(8)
        .wrapping_add(d.inactconns as i32)
}

/// `IP_VS_DEST_F_OVERLOAD` or a non-positive weight: the test most
/// schedulers use to skip a destination.
pub(crate) fn is_unavailable(d: &Dest) -> bool {
    d.weight <= 0 || d.overloaded
}

/// The kernel's address fold for hashing: the IPv4 address in host order,
/// or the XOR of the four 32-bit words of an IPv6 address.
pub(crate) fn addr_fold(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

/// The multiplier of the dh/sh hashes (2^32 / golden ratio).
pub(crate) const GOLDEN_RATIO_PRIME: u64 = 2_654_435_761;

/// Kernel `gcd()` on positive ints.
pub(crate) fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a
}

/// Index of the destination `addr:port`, if it is in the list.
pub(crate) fn find(dests: &[Dest], id: (IpAddr, u16)) -> Option<usize> {
    dests.iter().position(|d| d.addr == id.0 && d.port == id.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_scheduler_is_known_and_reports_its_name() {
        for name in SCHEDULER_NAMES {
            let s = Scheduler::new(name, SchedFlags::default()).expect("known");
            assert_eq!(s.name(), name);
        }
        assert_eq!(
            Scheduler::new("foo", SchedFlags::default()).err(),
            Some(SchedError::Unknown("foo".into()))
        );
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
