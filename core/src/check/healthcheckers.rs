//! All virtual servers of one node: keepalived's `Keepalived_healthcheckers` process as a
//! sans-IO state machine (the part the Director holds).
//!
//! Drive it with [`HealthCheckers::start`] once, then `handle_input` / `handle_timeout`, draining
//! `poll_output` after each call and sleeping until `poll_timeout`.
//! Reference: keepalived 2.2.7 `check/check_daemon.c` (`start_check`: `init_services`, then
//! `register_checkers_thread`) and `check/ipwrapper.c` (`clear_services` on shutdown).

use std::collections::{BTreeMap, VecDeque};

use super::probe::{Probe, ProbeId, ProbeResult};
use super::virtual_server::{VirtualServer, VirtualServerConfig};
use crate::ipvs::IpvsChange;
use crate::time::Instant;

/// Settings of the whole checker process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthCheckersConfig {
    /// The `virtual_server` blocks, in order.
    pub virtual_servers: Vec<VirtualServerConfig>,
    /// global_defs `checker_log_all_failures`.
    pub log_all_failures: bool,
    /// Probe ids are `probe_id_base + 1, + 2, ...`, so a Director can keep checker probes and
    /// other probes (vrrp_script) apart.
    pub probe_id_base: u64,
}

/// Something that happened to the checkers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckInput {
    /// A probe asked for by [`CheckOutput::StartProbe`] finished.
    ProbeDone {
        /// The probe.
        id: ProbeId,
        /// Its outcome.
        result: ProbeResult,
    },
    /// Shut down (SIGTERM): remove every rule; omega runs the down scripts.
    Stop,
}

/// Which notify script runs and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum NotifyEvent {
    /// `notify_up` of a real server.
    RealServerUp {
        /// `FMT_VS`.
        vs: String,
        /// `FMT_RS`.
        rs: String,
    },
    /// `notify_down` of a real server.
    RealServerDown {
        /// `FMT_VS`.
        vs: String,
        /// `FMT_RS`.
        rs: String,
    },
    /// `quorum_up` of a virtual server.
    QuorumUp {
        /// `FMT_VS`.
        vs: String,
    },
    /// `quorum_down` of a virtual server.
    QuorumDown {
        /// `FMT_VS`.
        vs: String,
    },
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum CheckOutput {
    /// Run this probe and answer with [`CheckInput::ProbeDone`].
    StartProbe(Probe),
    /// Apply this change to IPVS.
    Ipvs(IpvsChange),
    /// A `Keepalived_healthcheckers` log line, worded as keepalived 2.2 words it.
    Log {
        /// The message.
        text: String,
    },
    /// Run a notify script.
    Notify {
        /// The command line as configured.
        command: String,
        /// Why.
        event: NotifyEvent,
    },
}

/// The checkers of one node.
#[derive(Debug)]
pub struct HealthCheckers {
    vss: Vec<VirtualServer>,
    probes: BTreeMap<ProbeId, (usize, usize, usize)>,
    next_id: u64,
    out: VecDeque<CheckOutput>,
    started: bool,
    stopped: bool,
}

impl HealthCheckers {
    /// Build from config; nothing happens until [`HealthCheckers::start`].
    pub fn new(cfg: &HealthCheckersConfig) -> Self {
        HealthCheckers {
            vss: cfg
                .virtual_servers
                .iter()
                .map(|v| VirtualServer::new(v, cfg.log_all_failures))
                .collect(),
            probes: BTreeMap::new(),
            next_id: cfg.probe_id_base.saturating_add(1),
            out: VecDeque::new(),
            started: false,
            stopped: false,
        }
    }

    /// Install the services (`init_services`) and arm the checkers (`register_checkers_thread`:
    /// first probe after 1 s plus a warmup drawn from `rng`). Returns the IPVS rules to install
    /// now; log lines and notifies are queued for `poll_output`. A second call returns nothing.
    pub fn start(&mut self, now: Instant, rng: &mut dyn rand_core::RngCore) -> Vec<IpvsChange> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        let mut q = VecDeque::new();
        for vs in &mut self.vss {
            vs.start(&mut q);
        }
        for vs in &mut self.vss {
            vs.arm(now, rng, &mut q);
        }
        // register_checkers_thread, in keepalived built with BFD as Debian's is.
        q.push_back(CheckOutput::Log {
            text: "Activating BFD healthchecker".to_string(),
        });
        let mut rules = Vec::new();
        for o in q {
            match o {
                CheckOutput::Ipvs(c) => rules.push(c),
                other => self.out.push_back(other),
            }
        }
        rules
    }

    /// The virtual servers, in config order.
    pub fn virtual_servers(&self) -> &[VirtualServer] {
        &self.vss
    }

    /// A probe result or an admin command.
    pub fn handle_input(&mut self, now: Instant, input: CheckInput) {
        match input {
            CheckInput::ProbeDone { id, result } => {
                let Some((v, r, c)) = self.probes.remove(&id) else {
                    return;
                };
                if let Some(vs) = self.vss.get_mut(v) {
                    vs.on_result(now, r, c, id, &result, &mut self.out);
                }
            }
            CheckInput::Stop => {
                if self.stopped {
                    return;
                }
                self.stopped = true;
                self.probes.clear();
                for vs in &mut self.vss {
                    vs.stop(&mut self.out);
                }
            }
        }
    }

    /// Launch every probe whose time has come; a spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.started || self.stopped {
            return;
        }
        let mut due: Vec<(Instant, usize, usize, usize)> = Vec::new();
        for (vi, vs) in self.vss.iter().enumerate() {
            due.extend(vs.due(now).into_iter().map(|(t, r, c)| (t, vi, r, c)));
        }
        // keepalived's timer queue runs the earliest first; ties in config order.
        due.sort();
        for (_, v, r, c) in due {
            let id = ProbeId(self.next_id);
            let Some(vs) = self.vss.get_mut(v) else {
                continue;
            };
            if let Some(p) = vs.launch(now, r, c, id) {
                self.next_id += 1;
                self.probes.insert(id, (v, r, c));
                self.out.push_back(CheckOutput::StartProbe(p));
            }
        }
    }

    /// The next effect to carry out.
    pub fn poll_output(&mut self) -> Option<CheckOutput> {
        self.out.pop_front()
    }

    /// When [`HealthCheckers::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.started || self.stopped {
            return None;
        }
        self.vss
            .iter()
            .filter_map(|v| v.next_launch().map(|x| x.0))
            .min()
    }
}
