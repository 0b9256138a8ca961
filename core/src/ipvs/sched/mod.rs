//! The kernel's IPVS schedulers (`ip_vs_rr.c` ... `ip_vs_twos.c`).
//!
//! SKELETON: only rr exists so far; the scheduler helper replaces this file.

use super::service::{Dest, SchedPacket};

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
    rr_last: Option<usize>,
}

impl Scheduler {
    /// A scheduler by ipvsadm name.
    pub fn new(name: &str, _flags: SchedFlags) -> Result<Self, SchedError> {
        match name {
            "rr" => Ok(Scheduler { rr_last: None }),
            other => Err(SchedError::Unknown(other.to_string())),
        }
    }

    /// The ipvsadm name.
    pub fn name(&self) -> &'static str {
        "rr"
    }

    /// A destination was inserted at `idx`.
    pub fn add_dest(&mut self, _dests: &[Dest], _idx: usize) {}

    /// The destination at `idx` changed.
    pub fn upd_dest(&mut self, _dests: &[Dest], _idx: usize) {}

    /// The destination at `idx` is about to be removed.
    pub fn del_dest(&mut self, _dests: &[Dest], _idx: usize) {
        self.rr_last = None;
    }

    /// Choose a destination index.
    pub fn schedule(
        &mut self,
        dests: &[Dest],
        _pkt: &SchedPacket,
        _rng: &mut dyn rand_core::RngCore,
    ) -> Option<usize> {
        let n = dests.len();
        let start = self.rr_last.map_or(0, |l| l + 1);
        let pick = (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| dests[i].weight > 0 && !dests[i].overloaded)?;
        self.rr_last = Some(pick);
        Some(pick)
    }
}
