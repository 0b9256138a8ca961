//! One director of an LVS cluster: VRRP instances, sync groups, virtual
//! servers with their checkers, and the IPVS table, built from keepalived.conf.
//!
//! The director owns the three keepalived processes' worth of state (VRRP,
//! health checkers, IPVS) and translates between them and the wire: frames in,
//! frames and address/IPVS changes out.

mod build;
mod dataplane;
mod env;
mod node;
mod pending;

use std::net::IpAddr;
use std::time::Duration;

use crate::check::output::NotifyEvent;
use crate::check::probe::{Probe, ProbeId, ProbeResult};
use crate::ipvs::IpvsChange;
pub use crate::vrrp::{StateChange, StateChangeKind, Vip, VrrpState};

#[cfg(test)]
mod contract_tests;
#[cfg(test)]
mod tests;

pub use build::{config_log, BuildError};
pub use env::{select_source6, HostRoute, HostRoute6, Iface, Ipv6Side, NodeEnv};
pub use node::{
    DataPlane, Director, DirectorConfig, DirectorStats, ScriptCommand, SyncDaemonConfig,
};

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
    /// An interface or one of its addresses appeared, went or changed (what rtnetlink's
    /// monitor reports); [`Director::env`] follows.
    Iface(IfaceEvent),
    /// An output the driver could not apply. The driver reports it before its next other
    /// input or timeout, so the director undoes what it recorded for that output.
    Failed {
        /// The output.
        what: Applied,
        /// Why.
        error: ApplyError,
    },
    /// An operator command.
    Admin(Admin),
}

/// An interface change, as rtnetlink's `RTM_NEWLINK` / `RTM_DELLINK` / `RTM_NEWADDR` /
/// `RTM_DELADDR` report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfaceEvent {
    /// A new interface (or one known again), with its carrier.
    Added {
        /// The interface.
        iface: Iface,
        /// Carrier up.
        up: bool,
    },
    /// An interface went away (VRRP sees its carrier go down).
    Removed {
        /// Its name.
        name: String,
    },
    /// An interface changed name (VRRP sees the old name go down and the new one come up).
    Renamed {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
    /// An address was added to an interface.
    AddressAdded {
        /// Interface name.
        iface: String,
        /// The address.
        addr: IpAddr,
    },
    /// An address was removed from an interface.
    AddressRemoved {
        /// Interface name.
        iface: String,
        /// The address.
        addr: IpAddr,
    },
}

/// An output that can fail to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// An [`Output::Ipvs`].
    Ipvs(IpvsChange),
    /// An [`Output::AddVip`].
    AddVip(Vip),
    /// An [`Output::DelVip`].
    DelVip(Vip),
    /// An [`Output::SyncDaemon`].
    SyncDaemon(SyncDaemon),
}

/// Why an output failed: the OS error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyError {
    /// `errno`, when the OS gave one.
    pub errno: Option<i32>,
    /// `strerror` of it, or the driver's own words.
    pub message: String,
}

/// Operator commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admin {
    /// SIGTERM: send priority-0 adverts, release VIPs, clear IPVS rules.
    Stop,
    /// SIGHUP with a new configuration: keep what did not change, tear down what went, start
    /// what is new ([`Director`] says how); refused, with a log line, when it cannot run.
    Reload(Box<DirectorConfig>),
}

/// The IPVS connection sync daemon's role.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum SyncDaemonRole {
    /// Sends the connection table (`--start-daemon master`).
    Master,
    /// Receives it (`--start-daemon backup`).
    Backup,
}

/// Start or stop the kernel's sync daemon (keepalived's `ipvs_syncd_cmd`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SyncDaemon {
    /// Start (`IPVS_STARTDAEMON`) or stop (`IPVS_STOPDAEMON`).
    pub start: bool,
    /// `mcast_ifn`.
    pub iface: String,
    /// `syncid`.
    pub syncid: u8,
    /// Which half.
    pub role: SyncDaemonRole,
}

/// What caused a notify.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum NotifyCause {
    /// A VRRP instance or sync group changed state.
    Vrrp(StateChange),
    /// A real server went up or down, or a virtual server's quorum did.
    Checker(NotifyEvent),
}

/// One script to execute, as keepalived would: `argv[0]` with `argv`, not waited for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ScriptExec {
    /// The command line as configured.
    pub command: String,
    /// What `execve` gets: the words of `command` (split as keepalived splits them) and the
    /// arguments keepalived appends.
    pub argv: Vec<String>,
    /// Kill it when it is still running after this long (keepalived gives `notify_stop` and
    /// the generic notify of a STOP one second), else let it run.
    pub kill_after: Option<Duration>,
}

/// A notification and the scripts keepalived runs for it, in its order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Notification {
    /// What happened.
    pub cause: NotifyCause,
    /// The scripts (empty when none are configured, or keepalived skips them).
    pub scripts: Vec<ScriptExec>,
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
    /// Hand an IPv4 packet (an Ethernet frame whose addresses the host fills in) to the
    /// host's own routing: a NAT reply, its source rewritten to the virtual service, which the
    /// director host forwards toward the client as Linux does after IPVS's SNAT; or a client
    /// packet tunnelled to a TUN real server, which the host routes (next hop, ARP) as Linux
    /// routes what `ip_vs_tunnel_xmit` sends.
    Route {
        /// The frame; its Ethernet addresses are placeholders.
        frame: Vec<u8>,
    },
    /// Add a virtual address to `iface`.
    AddVip(Vip),
    /// Remove a virtual address from `iface`.
    DelVip(Vip),
    /// Apply an IPVS change (kernel IPVS; the userspace data plane already has it).
    Ipvs(IpvsChange),
    /// Start or stop the kernel's IPVS sync daemon ([`DataPlane::Kernel`] only).
    SyncDaemon(SyncDaemon),
    /// Run a probe and report with [`Input::ProbeDone`].
    StartProbe(Probe),
    /// A VRRP transition or a checker event, with the notify scripts to run for it.
    Notify(Notification),
    /// A keepalived-style log line.
    Log {
        /// Which keepalived process would log it.
        source: LogSource,
        /// The text, worded as keepalived 2.2 words it.
        text: String,
    },
}
