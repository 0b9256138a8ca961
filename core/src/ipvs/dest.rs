//! A destination (real server) of a virtual service: what `ipvsadm -a/-e` sets and what the
//! kernel keeps per destination (`struct ip_vs_dest`), read by the service and its scheduler.

use std::net::IpAddr;

use super::stats::IpvsStats;
use super::FwdMethod;

/// What `ipvsadm -a/-e` sets on a destination.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DestSpec {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Forwarding method.
    pub fwd: FwdMethod,
    /// Weight (0 = quiescent).
    pub weight: i32,
    /// Upper connection threshold (0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold (0 = none).
    pub l_threshold: u32,
}

/// A destination (real server) as the kernel keeps it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Dest {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Forwarding method.
    pub fwd: FwdMethod,
    /// Weight (0 = quiescent: no new connections).
    pub weight: i32,
    /// Latest non-zero weight (kernel `last_weight`; mh builds its table from it).
    pub last_weight: i32,
    /// Upper connection threshold (0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold (0 = none).
    pub l_threshold: u32,
    /// `IP_VS_DEST_F_OVERLOAD`: set when active+inactive reach u_threshold.
    pub overloaded: bool,
    /// Active connections (ESTABLISHED for TCP).
    pub activeconns: u32,
    /// Inactive connections.
    pub inactconns: u32,
    /// Persistence templates pointing at this destination.
    pub persistconns: u32,
    /// Connections, packets and bytes sent to it (`dest->stats`).
    pub stats: IpvsStats,
}

impl Dest {
    /// What `ipvsadm -a` would set to make this destination again.
    pub fn spec(&self) -> DestSpec {
        DestSpec {
            addr: self.addr,
            port: self.port,
            fwd: self.fwd,
            weight: self.weight,
            u_threshold: self.u_threshold,
            l_threshold: self.l_threshold,
        }
    }

    /// Set the thresholds as `__ip_vs_update_dest` does (add, re-add from the trash, edit):
    /// when either changes, Debian's 6.1 kernel re-evaluates OVERLOAD against the
    /// connections (u = 0 clears it, total >= u sets it, total below the lower bound clears
    /// it, otherwise it stays); unchanged thresholds leave the flag alone. Recorded under
    /// qemu: fixtures/traces/overload.trace.
    pub fn set_thresholds(&mut self, u: u32, l: u32) {
        if (u, l) == (self.u_threshold, self.l_threshold) {
            return;
        }
        self.u_threshold = u;
        self.l_threshold = l;
        let total = self.activeconns.saturating_add(self.inactconns);
        if u == 0 {
            self.overloaded = false;
        } else if total >= u {
            self.overloaded = true;
        } else if overload_cleared(total, u, l) {
            self.overloaded = false;
        }
    }

    /// A destination built from its spec, with zero counters.
    pub fn new(spec: &DestSpec) -> Self {
        Dest {
            addr: spec.addr,
            port: spec.port,
            fwd: spec.fwd,
            weight: spec.weight,
            last_weight: spec.weight,
            u_threshold: spec.u_threshold,
            l_threshold: spec.l_threshold,
            overloaded: false,
            activeconns: 0,
            inactconns: 0,
            persistconns: 0,
            stats: IpvsStats::default(),
        }
    }
}

/// The lower bound of OVERLOAD (`ip_vs_unbind_dest`, `__ip_vs_update_dest`): below the lower
/// threshold, or 3/4 of the upper one when there is no lower one (`u - u/4` is the same
/// bound), the destination is no longer overloaded; with neither it never is.
pub(crate) fn overload_cleared(total: u32, u: u32, l: u32) -> bool {
    if l != 0 {
        total < l
    } else if u != 0 {
        u64::from(total) * 4 < u64::from(u) * 3
    } else {
        true
    }
}
