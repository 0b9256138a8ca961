//! One director of an LVS cluster: VRRP instances, sync groups, virtual
//! servers with their checkers, and the IPVS table, built from keepalived.conf.
//!
//! The director owns the three keepalived processes' worth of state (VRRP,
//! health checkers, IPVS) and translates between them and the wire: frames in,
//! frames and address/IPVS changes out.

mod build;
mod dataplane;
mod node;

use crate::check::probe::{Probe, ProbeId, ProbeResult};
use crate::ipvs::IpvsChange;
pub use crate::vrrp::{StateChange, StateChangeKind, Vip, VrrpState};

#[cfg(test)]
mod tests;

pub use build::BuildError;
pub use node::{Director, DirectorConfig, Iface, NodeEnv, ScriptCommand, SyncDaemonConfig};

/// An interface name (`eth0`) as frames carry it in and out: shared, so that per-packet
/// inputs and outputs do not allocate.
pub type IfaceName = std::sync::Arc<str>;

/// Something that happened to the director.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// An Ethernet frame received on `iface` (VRRP, ARP, or traffic for a virtual service).
    Frame {
        /// Interface name as in keepalived.conf (`eth0`).
        iface: IfaceName,
        /// The whole Ethernet frame.
        frame: Vec<u8>,
    },
    /// A probe asked for by [`Output::StartProbe`] finished.
    ProbeDone {
        /// The probe.
        id: ProbeId,
        /// Its outcome.
        result: ProbeResult,
    },
    /// Carrier on an interface went up or down.
    Link {
        /// Interface name.
        iface: String,
        /// New state.
        up: bool,
    },
    /// An operator command.
    Admin(Admin),
}

/// Operator commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admin {
    /// SIGTERM: send priority-0 adverts, release VIPs, clear IPVS rules.
    Stop,
}

/// Which keepalived process would have logged a line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum LogSource {
    /// `Keepalived` (parent).
    Main,
    /// `Keepalived_vrrp`.
    Vrrp,
    /// `Keepalived_healthcheckers`.
    Healthcheckers,
}

/// What the director wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send an Ethernet frame on `iface`.
    Transmit {
        /// Interface name.
        iface: IfaceName,
        /// The whole frame.
        frame: Vec<u8>,
    },
    /// Add a virtual address to `iface`.
    AddVip(Vip),
    /// Remove a virtual address from `iface`.
    DelVip(Vip),
    /// Apply an IPVS change (kernel IPVS; the userspace data plane already has it).
    Ipvs(IpvsChange),
    /// Run a probe and report with [`Input::ProbeDone`].
    StartProbe(Probe),
    /// Run notify scripts for a transition.
    Notify(StateChange),
    /// A keepalived-style log line.
    Log {
        /// Which keepalived process would log it.
        source: LogSource,
        /// The text, worded as keepalived 2.2 words it.
        text: String,
    },
}
