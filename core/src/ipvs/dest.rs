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
