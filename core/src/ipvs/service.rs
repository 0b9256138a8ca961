//! Virtual services and their destinations (kernel `ip_vs_ctl.c`).
//!
//! CONTRACT (skeleton): the public signatures below are what conn.rs, the
//! Director and the CLI build on; the scheduler helper fills the bodies.

use std::net::IpAddr;

use super::sched::{SchedError, SchedFlags, Scheduler};
use super::{FwdMethod, ServiceKey};

/// What `ipvsadm -A/-E` sets on a service.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ServiceSpec {
    /// Protocol/address/port or fwmark.
    pub key: ServiceKey,
    /// Scheduler name as ipvsadm takes it (`rr`, `wrr`, `sh`, ...).
    pub scheduler: String,
    /// `-b` scheduler flags (sh-fallback, sh-port, mh-fallback, mh-port).
    pub flags: SchedFlags,
    /// Persistence timeout in seconds (`-p`), if persistent.
    pub persistence: Option<u32>,
    /// Persistence netmask (`-M`) as a prefix length (32 / 128 = per client).
    pub netmask_prefix: u8,
    /// One-packet scheduling (`-o`).
    pub one_packet: bool,
}

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
}

impl Dest {
    /// A destination built from its spec, with zero counters.
    pub fn new(spec: &DestSpec) -> Self {
        Dest {
            addr: spec.addr,
            port: spec.port,
            fwd: spec.fwd,
            weight: spec.weight,
            u_threshold: spec.u_threshold,
            l_threshold: spec.l_threshold,
            overloaded: false,
            activeconns: 0,
            inactconns: 0,
            persistconns: 0,
        }
    }
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
    /// Scheduler problems (unknown name, bad flags).
    #[error(transparent)]
    Sched(#[from] SchedError),
}

/// A virtual service: its spec, its destinations in kernel list order, its scheduler.
#[derive(Debug)]
pub struct Service {
    spec: ServiceSpec,
    dests: Vec<Dest>,
    sched: Scheduler,
}

/// The packet fields a scheduler may look at.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SchedPacket {
    /// Client address.
    pub src: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Virtual address.
    pub dst: IpAddr,
    /// Virtual port.
    pub dport: u16,
}

impl Service {
    /// `ipvsadm -A`.
    pub fn new(spec: ServiceSpec) -> Result<Self, IpvsError> {
        let sched = Scheduler::new(&spec.scheduler, spec.flags)?;
        Ok(Service { spec, dests: Vec::new(), sched })
    }

    /// The service's settings.
    pub fn spec(&self) -> &ServiceSpec {
        &self.spec
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
        self.dests.iter_mut().find(|d| d.addr == addr && d.port == port)
    }

    /// `ipvsadm -a`: the new destination goes to the head of the list.
    pub fn add_dest(&mut self, spec: &DestSpec) -> Result<(), IpvsError> {
        if self.dest(spec.addr, spec.port).is_some() {
            return Err(IpvsError::DestExists);
        }
        self.dests.insert(0, Dest::new(spec));
        self.sched.add_dest(&self.dests, 0);
        Ok(())
    }

    /// `ipvsadm -e`.
    pub fn edit_dest(&mut self, spec: &DestSpec) -> Result<(), IpvsError> {
        let idx = self
            .dests
            .iter()
            .position(|d| d.addr == spec.addr && d.port == spec.port)
            .ok_or(IpvsError::NoSuchDest)?;
        let d = &mut self.dests[idx];
        d.fwd = spec.fwd;
        d.weight = spec.weight;
        d.u_threshold = spec.u_threshold;
        d.l_threshold = spec.l_threshold;
        self.sched.upd_dest(&self.dests, idx);
        Ok(())
    }

    /// `ipvsadm -d`.
    pub fn del_dest(&mut self, addr: IpAddr, port: u16) -> Result<Dest, IpvsError> {
        let idx = self
            .dests
            .iter()
            .position(|d| d.addr == addr && d.port == port)
            .ok_or(IpvsError::NoSuchDest)?;
        self.sched.del_dest(&self.dests, idx);
        Ok(self.dests.remove(idx))
    }

    /// Pick a destination for a new connection; an index into [`Service::dests`].
    pub fn schedule(
        &mut self,
        pkt: &SchedPacket,
        rng: &mut dyn rand_core::RngCore,
    ) -> Option<usize> {
        self.sched.schedule(&self.dests, pkt, rng)
    }
}
