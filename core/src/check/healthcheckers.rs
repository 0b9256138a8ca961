//! All virtual servers of one node: keepalived's `Keepalived_healthcheckers` process as a
//! sans-IO state machine (the part the Director holds).
//!
//! Drive it with [`HealthCheckers::start`] once, then `handle_input` / `handle_timeout` /
//! [`HealthCheckers::reload`], draining `poll_output` after each call and sleeping until
//! `poll_timeout`.
//! Reference: keepalived 2.2.7 `check/check_daemon.c` (`start_check`: `init_services`, then
//! `register_checkers_thread`; `reload_check_thread`) and `check/ipwrapper.c`
//! (`clear_diff_services` on reload, `clear_services` on shutdown).

use std::collections::{BTreeMap, VecDeque};

pub use super::output::{CheckOutput, NotifyEvent};
use super::probe::{ProbeId, ProbeResult};
use super::stats::CheckStats;
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
        Self::register_checkers(&mut self.vss, now, rng, &mut q);
        let mut rules = Vec::new();
        for o in q {
            match o {
                CheckOutput::Ipvs(c) => rules.push(c),
                other => self.out.push_back(other),
            }
        }
        rules
    }

    /// `register_checkers_thread`: arm every checker (first probe after 1 s plus a warmup drawn
    /// from `rng`), with keepalived's "Activating healthchecker" lines.
    fn register_checkers(
        vss: &mut [VirtualServer],
        now: Instant,
        rng: &mut dyn rand_core::RngCore,
        q: &mut VecDeque<CheckOutput>,
    ) {
        for vs in vss.iter_mut() {
            vs.arm(now, rng, q);
        }
        // Here keepalived built with BFD (Debian's is) logs "Activating BFD healthchecker" for
        // every configuration and starts reading its BFD process's pipe (check_api.c,
        // `#ifdef _WITH_BFD_`). lvsd has no BFD, so it says nothing.
    }

    /// Reload with a new configuration (SIGHUP: `reload_check_thread` → `start_check`), the
    /// running state diffed against it as keepalived 2.2.7 does (`clear_diff_services`):
    ///
    /// - a virtual server (same protocol/address/port or fwmark) or real server (same
    ///   address and port) in both keeps its state: alive / in IPVS, quorum, effective weight;
    ///   each of its checkers that compares equal to a running one (same type, target,
    ///   `bindto`, `connect_timeout`; urls for HTTP/SSL_GET; command and `misc_dynamic` for
    ///   MISC_CHECK) takes over that one's up / has-run state and retry count
    ///   (`migrate_checkers`), and counters carry on. No IPVS change unless something the
    ///   kernel holds changed: scheduling (`-E`), a real server's weight or forwarding
    ///   method (`-e`, with "Changing weight from … to …").
    /// - a virtual or real server that is gone is torn down ("Removing Virtual Server …",
    ///   "service … no longer exist", its destinations and service deleted, notify_down /
    ///   quorum_down run).
    /// - a new one starts as at start-up, except that a new real server needs `retry + 1`
    ///   failures to go down (keepalived does not set "one failure is enough" on reload) and
    ///   starts down if it has alpha checkers (`check_new_rs_state`).
    ///
    /// keepalived destroys every timer and running check on reload, so no probe started before
    /// it counts: their results are ignored, and every checker is armed again as at start-up
    /// (`register_checkers_thread`: "Activating healthchecker …", first probe after 1 s plus
    /// a warmup drawn from `rng`). Output goes to `poll_output` ("Reloading" first), IPVS
    /// changes included. Before [`HealthCheckers::start`] this only replaces the
    /// configuration; after [`CheckInput::Stop`] it does nothing.
    pub fn reload(
        &mut self,
        now: Instant,
        cfg: &HealthCheckersConfig,
        rng: &mut dyn rand_core::RngCore,
    ) {
        if self.stopped {
            return;
        }
        let mut new: Vec<VirtualServer> = cfg
            .virtual_servers
            .iter()
            .map(|v| VirtualServer::new(v, cfg.log_all_failures))
            .collect();
        self.next_id = self.next_id.max(cfg.probe_id_base.saturating_add(1));
        // Without virtual servers before or after, keepalived runs no checker process to
        // log anything.
        if !self.started || (self.vss.is_empty() && new.is_empty()) {
            self.vss = new;
            return;
        }
        let q = &mut self.out;
        q.push_back(CheckOutput::Log {
            text: "Reloading".to_string(),
        });
        // start_check: the configuration is read and validated before anything is diffed.
        for vs in &mut new {
            vs.emit_warnings(q);
            vs.reload_defaults();
        }
        // Every running check and timer is gone (thread_cleanup_master).
        self.probes.clear();
        for mut old in std::mem::take(&mut self.vss) {
            match new.iter_mut().find(|n| n.key() == old.key()) {
                Some(n) => n.take_over(old, q),
                None => old.remove(q),
            }
        }
        for vs in &mut new {
            vs.settle_reloaded();
        }
        for vs in &mut new {
            vs.init_reloaded(q);
        }
        Self::register_checkers(&mut new, now, rng, q);
        self.vss = new;
    }

    /// Counters and state of every virtual server, real server and checker, in config order.
    pub fn stats(&self) -> CheckStats {
        CheckStats {
            virtual_servers: self.vss.iter().map(VirtualServer::stats).collect(),
        }
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
