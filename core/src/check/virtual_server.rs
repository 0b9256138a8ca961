//! One `virtual_server`: its real servers and their checkers, quorum / hysteresis, the sorry
//! server, alpha / omega, inhibit_on_failure, and the IPVS changes keepalived makes for them.
//!
//! Reference: keepalived 2.2.7 `check/ipwrapper.c` (`init_service_vs`, `init_service_rs`,
//! `perform_svr_state`, `update_quorum_state`, `perform_quorum_state`, `update_svr_wgt`,
//! `update_svr_checker_state`, `clear_service_vs`), `check/ipvswrapper.c` (`ipvs_cmd`: how
//! inhibit_on_failure turns a removal into a weight-0 edit) and `check/check_data.c`
//! (`format_vs`, `format_rs`, defaults in `alloc_vs` / `validate_check_config`).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::checker::{Action, Checker, CheckerConfig, CheckerKind, Timing};
use super::output::{CheckOutput, NotifyEvent};
use super::probe::{Probe, ProbeId, ProbeResult};
use super::script::Script;
use super::stats::{RealServerStats, SorryServerStats, VirtualServerStats};
use crate::ipvs::service::{DestSpec, ServiceSpec};
use crate::ipvs::{FwdMethod, IpvsChange, Protocol, ServiceKey, SockAddr};
use crate::time::Instant;

/// keepalived's `KEEPALIVED_DEFAULT_DELAY`: `delay_loop` when none is given.
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
/// `alloc_vs`: `connect_timeout` when none is given.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of one `virtual_server` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServerConfig {
    /// What `ipvsadm -A` gets (address/port/protocol or fwmark, scheduler, persistence).
    pub service: ServiceSpec,
    /// `protocol` of a fwmark service, only used to format real servers in logs
    /// (`[addr]:tcp:port`; `none` when absent).
    pub fwmark_protocol: Option<Protocol>,
    /// `lb_kind`: the real servers' default forwarding method.
    pub fwd: FwdMethod,
    /// `delay_loop` (default 60 s).
    pub delay_loop: Option<Duration>,
    /// `connect_timeout` (default 5 s).
    pub connect_timeout: Option<Duration>,
    /// `retry`.
    pub retry: Option<u32>,
    /// `delay_before_retry`.
    pub delay_before_retry: Option<Duration>,
    /// `warmup`.
    pub warmup: Option<Duration>,
    /// `alpha`.
    pub alpha: bool,
    /// `omega`: run notify_down / quorum_down when shutting down.
    pub omega: bool,
    /// `inhibit_on_failure`: weight 0 instead of removal.
    pub inhibit_on_failure: bool,
    /// `quorum` (default 1).
    pub quorum: u32,
    /// `hysteresis` (default 0).
    pub hysteresis: u32,
    /// `quorum_up` script.
    pub quorum_up: Option<String>,
    /// `quorum_down` script.
    pub quorum_down: Option<String>,
    /// `sorry_server`.
    pub sorry_server: Option<SorryServerConfig>,
    /// The `real_server` blocks, in order.
    pub real_servers: Vec<RealServerConfig>,
}

impl VirtualServerConfig {
    /// A virtual server with keepalived's defaults and no real servers.
    pub fn new(service: ServiceSpec, fwd: FwdMethod) -> Self {
        VirtualServerConfig {
            service,
            fwmark_protocol: None,
            fwd,
            delay_loop: None,
            connect_timeout: None,
            retry: None,
            delay_before_retry: None,
            warmup: None,
            alpha: false,
            omega: false,
            inhibit_on_failure: false,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            sorry_server: None,
            real_servers: Vec::new(),
        }
    }
}

/// `sorry_server addr port` (+ `sorry_server_inhibit`, `sorry_server_lvs_method`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SorryServerConfig {
    /// Address.
    pub addr: IpAddr,
    /// Port (0: the virtual server's).
    pub port: u16,
    /// Forwarding method (default: the virtual server's).
    pub fwd: Option<FwdMethod>,
    /// `sorry_server_inhibit`.
    pub inhibit: bool,
}

/// Settings of one `real_server` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealServerConfig {
    /// Address.
    pub addr: IpAddr,
    /// Port (0: the virtual server's).
    pub port: u16,
    /// `weight` (default 1).
    pub weight: i32,
    /// `lvs_method` (default: the virtual server's).
    pub fwd: Option<FwdMethod>,
    /// `uthreshold`.
    pub u_threshold: u32,
    /// `lthreshold`.
    pub l_threshold: u32,
    /// `inhibit_on_failure` (default: the virtual server's).
    pub inhibit_on_failure: Option<bool>,
    /// `alpha` (default: the virtual server's).
    pub alpha: Option<bool>,
    /// `retry`.
    pub retry: Option<u32>,
    /// `delay_before_retry`.
    pub delay_before_retry: Option<Duration>,
    /// `delay_loop`.
    pub delay_loop: Option<Duration>,
    /// `warmup`.
    pub warmup: Option<Duration>,
    /// `connect_timeout`.
    pub connect_timeout: Option<Duration>,
    /// `notify_up` script.
    pub notify_up: Option<String>,
    /// `notify_down` script.
    pub notify_down: Option<String>,
    /// The checkers; the server is up only when all are up. None: always up.
    pub checkers: Vec<CheckerConfig>,
}

impl RealServerConfig {
    /// A real server with weight 1, everything else inherited, no checkers.
    pub fn new(addr: IpAddr, port: u16) -> Self {
        RealServerConfig {
            addr,
            port,
            weight: 1,
            fwd: None,
            u_threshold: 0,
            l_threshold: 0,
            inhibit_on_failure: None,
            alpha: None,
            retry: None,
            delay_before_retry: None,
            delay_loop: None,
            warmup: None,
            connect_timeout: None,
            notify_up: None,
            notify_down: None,
            checkers: Vec::new(),
        }
    }
}

/// keepalived's `real_weight`: clamp to what IPVS takes.
fn real_weight(w: i64) -> i32 {
    i32::try_from(w.max(0)).unwrap_or(i32::MAX)
}

/// The port keepalived gives a real server written with port `written` (0: none) in IPVS
/// (`validate_check_config`): a non-NAT server takes the service's port, or 0 under a fwmark
/// (`service_port` `None`); a NAT server keeps its own, the service's when it gives none.
pub fn effective_rs_port(written: u16, fwd: FwdMethod, service_port: Option<u16>) -> u16 {
    match (fwd, service_port) {
        (FwdMethod::Masq, Some(vs_port)) if written == 0 => vs_port,
        (FwdMethod::Masq, _) => written,
        (_, service_port) => service_port.unwrap_or(0),
    }
}

/// validate_check_config: a quorum above the real servers' total weight could never be met,
/// so keepalived lowers it to that total; the quorum in effect and, when lowered, keepalived's
/// line (`vs_name` as `FMT_VS` gives it).
pub fn reachable_quorum(quorum: u32, weight_sum: i64, vs_name: &str) -> (u32, Option<String>) {
    if i64::from(quorum) <= weight_sum {
        return (quorum, None);
    }
    let ws = u32::try_from(weight_sum.max(0)).unwrap_or(0);
    let line = format!(
        "Warning - quorum {quorum} for {vs_name} exceeds total weight of real servers {ws}, reducing quorum to {ws}"
    );
    (ws, Some(line))
}

/// keepalived's `inet_sockaddrtotrio`: `[addr]:proto:port`.
pub fn format_trio(addr: IpAddr, proto: Option<Protocol>, port: u16) -> String {
    let p = match proto {
        Some(Protocol::Tcp) => "tcp",
        Some(Protocol::Udp) => "udp",
        Some(Protocol::Sctp) => "sctp",
        None => "none",
    };
    format!("[{addr}]:{p}:{port}")
}

/// keepalived's `format_vs` (`FMT_VS`).
pub fn format_vs(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Inet { proto, addr, port } => format_trio(*addr, Some(*proto), *port),
        ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
    }
}

/// A real (or sorry) server's run-time state (keepalived's `real_server_t`).
#[derive(Clone, Debug)]
struct Rs {
    addr: IpAddr,
    port: u16,
    fwd: FwdMethod,
    u_threshold: u32,
    l_threshold: u32,
    /// `iweight`: the configured weight.
    iweight: i64,
    effective_weight: i64,
    /// `peffective_weight`: the effective weight before a reload.
    peffective_weight: i64,
    /// Kept across a reload (`reloaded`).
    reloaded: bool,
    inhibit: bool,
    alive: bool,
    set: bool,
    num_failed: u32,
    notify_up: Option<Script>,
    notify_down: Option<Script>,
    name: String,
    checkers: Vec<Checker>,
    went_up: u64,
    went_down: u64,
}

/// What one real server looks like from outside.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RealServerStatus {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// keepalived's `alive`: in the pool as far as the checkers go.
    pub alive: bool,
    /// keepalived's `set`: a destination exists in IPVS.
    pub set: bool,
    /// Current effective weight.
    pub weight: i64,
    /// How many of its checkers are failing.
    pub failed_checkers: u32,
}

/// One virtual server's state machine.
#[derive(Clone, Debug)]
pub struct VirtualServer {
    spec: ServiceSpec,
    name: String,
    quorum: u32,
    hysteresis: u32,
    quorum_state_up: bool,
    omega: bool,
    quorum_up: Option<Script>,
    quorum_down: Option<Script>,
    sorry: Option<Rs>,
    rss: Vec<Rs>,
    config_warnings: Vec<String>,
    /// keepalived's `vs->alive`: the IPVS service is installed.
    service_set: bool,
    quorum_gained: u64,
    quorum_lost: u64,
}

/// A configured script as keepalived keeps it: `None` (with keepalived's warning) when its
/// command line cannot be split (`notify_script_init`: "Unable to parse script").
fn script(command: Option<&String>, warnings: &mut Vec<String>) -> Option<Script> {
    let command = command?;
    match Script::parse(command) {
        Ok(s) => Some(s),
        Err(e) => {
            warnings.push(e.to_string());
            if !matches!(e, super::script::ScriptError::Empty(_)) {
                warnings.push(format!("Unable to parse script '{command}' - ignoring"));
            }
            None
        }
    }
}

impl Rs {
    fn stats(&self) -> RealServerStats {
        RealServerStats {
            name: self.name.clone(),
            addr: self.addr,
            port: self.port,
            alive: self.alive,
            set: self.set,
            initial_weight: self.iweight,
            effective_weight: self.effective_weight,
            failed_checkers: self.num_failed,
            went_up: self.went_up,
            went_down: self.went_down,
            checkers: self.checkers.iter().map(Checker::stats).collect(),
        }
    }
}

impl VirtualServer {
    /// Build from config, resolving inherited settings as `validate_check_config` does;
    /// `log_all_failures` is the global `checker_log_all_failures`.
    pub fn new(cfg: &VirtualServerConfig, log_all_failures: bool) -> Self {
        let key = cfg.spec_key();
        let name = format_vs(&key);
        let (vs_port, rs_proto, is_fwmark) = match key {
            ServiceKey::Inet { proto, port, .. } => (port, Some(proto), false),
            ServiceKey::Fwmark { .. } => (0, cfg.fwmark_protocol, true),
        };
        let service_port = (!is_fwmark).then_some(vs_port);
        let rs_port = |p: u16, fwd: FwdMethod| effective_rs_port(p, fwd, service_port);
        let vs_delay = cfg.delay_loop.unwrap_or(DEFAULT_DELAY_LOOP);
        let mut config_warnings = Vec::new();
        let mut rss = Vec::new();
        let mut weight_sum: i64 = 0;
        for r in &cfg.real_servers {
            let fwd = r.fwd.unwrap_or(cfg.fwd);
            let port = rs_port(r.port, fwd);
            let rname = format_trio(r.addr, rs_proto, port);
            let alpha = r.alpha.unwrap_or(cfg.alpha);
            let rs_retry = r.retry.or(cfg.retry);
            let rs_dbr = r.delay_before_retry.or(cfg.delay_before_retry);
            let rs_delay = r.delay_loop.unwrap_or(vs_delay);
            let rs_warmup = r.warmup.or(cfg.warmup);
            let rs_cto = r
                .connect_timeout
                .or(cfg.connect_timeout)
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
            let iweight = i64::from(r.weight);
            // check_http.c http_get_check_end: an HTTP_GET / SSL_GET without urls is dropped.
            for c in &r.checkers {
                if matches!(&c.kind, CheckerKind::Http { urls, .. } if urls.is_empty()) {
                    config_warnings
                        .push("HTTP/SSL_GET checker has no urls specified - ignoring".to_string());
                }
            }
            // queue_checker: the probe target is the real server's address as written, taken
            // before the port is normalised.
            let target = SocketAddr::new(r.addr, if r.port != 0 { r.port } else { port });
            let checkers: Vec<Checker> = r
                .checkers
                .iter()
                .filter(|c| !matches!(&c.kind, CheckerKind::Http { urls, .. } if urls.is_empty()))
                .map(|c| {
                    let mut c = c.clone();
                    c.log_all_failures |= log_all_failures;
                    let delay_loop = c.delay_loop.unwrap_or(rs_delay);
                    let timing = Timing {
                        delay_loop,
                        connect_timeout: c.connect_timeout.unwrap_or(rs_cto),
                        retry: c.retry.or(rs_retry).unwrap_or_else(|| c.default_retry()),
                        delay_before_retry: c
                            .delay_before_retry
                            .or(rs_dbr)
                            .unwrap_or_else(|| c.default_delay_before_retry()),
                        warmup: c.warmup.or(rs_warmup).unwrap_or(delay_loop),
                        alpha: c.alpha.unwrap_or(alpha),
                        vs_delay_loop: vs_delay,
                    };
                    Checker::new(&c, timing, target, iweight, rname.clone(), name.clone())
                })
                .collect();
            let num_failed =
                u32::try_from(checkers.iter().filter(|c| !c.is_up).count()).unwrap_or(u32::MAX);
            weight_sum += iweight;
            let notify_up = script(r.notify_up.as_ref(), &mut config_warnings);
            let notify_down = script(r.notify_down.as_ref(), &mut config_warnings);
            rss.push(Rs {
                addr: r.addr,
                port,
                fwd,
                u_threshold: r.u_threshold,
                l_threshold: r.l_threshold,
                iweight,
                effective_weight: iweight,
                peffective_weight: 0,
                reloaded: false,
                inhibit: r.inhibit_on_failure.unwrap_or(cfg.inhibit_on_failure),
                alive: false,
                set: false,
                num_failed,
                notify_up,
                notify_down,
                name: rname,
                checkers,
                went_up: 0,
                went_down: 0,
            });
        }
        let sorry = cfg.sorry_server.as_ref().map(|s| {
            let fwd = s.fwd.unwrap_or(cfg.fwd);
            let port = rs_port(s.port, fwd);
            Rs {
                addr: s.addr,
                port,
                fwd,
                u_threshold: 0,
                l_threshold: 0,
                iweight: 1,
                effective_weight: 1,
                peffective_weight: 0,
                reloaded: false,
                inhibit: s.inhibit,
                alive: false,
                set: false,
                num_failed: 0,
                notify_up: None,
                notify_down: None,
                name: format_trio(s.addr, rs_proto, port),
                checkers: Vec::new(),
                went_up: 0,
                went_down: 0,
            }
        });
        let (quorum, lowered) = reachable_quorum(cfg.quorum.max(1), weight_sum, &name);
        config_warnings.extend(lowered);
        let mut hysteresis = cfg.hysteresis;
        let quorum_up = script(cfg.quorum_up.as_ref(), &mut config_warnings);
        let quorum_down = script(cfg.quorum_down.as_ref(), &mut config_warnings);
        if hysteresis >= quorum {
            let h = quorum.saturating_sub(1);
            config_warnings.push(format!(
                "Virtual server {name}: hysteresis {hysteresis} >= quorum {quorum}; setting hysteresis to {h}"
            ));
            hysteresis = h;
        }
        VirtualServer {
            spec: cfg.service.clone(),
            name,
            quorum,
            hysteresis,
            // set_quorum_states runs before any real server is alive.
            quorum_state_up: 0 >= i64::from(quorum) + i64::from(hysteresis),
            omega: cfg.omega,
            quorum_up,
            quorum_down,
            sorry,
            rss,
            config_warnings,
            service_set: false,
            quorum_gained: 0,
            quorum_lost: 0,
        }
    }

    /// `FMT_VS`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The IPVS service key.
    pub fn key(&self) -> ServiceKey {
        self.spec.key
    }

    /// Whether the virtual server has quorum.
    pub fn quorum_up(&self) -> bool {
        self.quorum_state_up
    }

    /// Each real server's state, in config order.
    pub fn real_servers(&self) -> Vec<RealServerStatus> {
        self.rss
            .iter()
            .map(|r| RealServerStatus {
                addr: r.addr,
                port: r.port,
                alive: r.alive,
                set: r.set,
                weight: r.effective_weight,
                failed_checkers: r.num_failed,
            })
            .collect()
    }

    /// Whether the sorry server is in the pool.
    pub fn sorry_active(&self) -> bool {
        self.sorry.as_ref().is_some_and(|s| s.alive)
    }

    fn weigh_live(&self) -> i64 {
        self.rss
            .iter()
            .filter(|r| r.alive)
            .map(|r| i64::from(real_weight(r.effective_weight)))
            .sum()
    }

    fn dest(rs: &Rs, weight: i32) -> DestSpec {
        DestSpec {
            addr: rs.addr,
            port: rs.port,
            fwd: rs.fwd,
            weight,
            u_threshold: rs.u_threshold,
            l_threshold: rs.l_threshold,
        }
    }

    /// ipvswrapper.c `ipvs_cmd` for a destination, inhibit_on_failure included.
    fn ipvs_cmd(key: ServiceKey, rs: &mut Rs, add: bool, force_no_inhibit: bool) -> IpvsChange {
        let inhibit = rs.inhibit && !force_no_inhibit;
        let w = real_weight(rs.effective_weight);
        if !add && inhibit {
            IpvsChange::EditDest(key, Self::dest(rs, 0))
        } else if add && inhibit && rs.set {
            IpvsChange::EditDest(key, Self::dest(rs, w))
        } else if add {
            let mut w = w;
            if !rs.set {
                rs.set = true;
                if inhibit && rs.num_failed > 0 {
                    w = 0;
                }
            }
            IpvsChange::AddDest(key, Self::dest(rs, w))
        } else {
            rs.set = false;
            IpvsChange::DelDest(key, SockAddr(rs.addr, rs.port))
        }
    }

    fn log(out: &mut VecDeque<CheckOutput>, text: String) {
        out.push_back(CheckOutput::Log { text });
    }

    fn rs_notifies(&self, i: usize, out: &mut VecDeque<CheckOutput>) {
        let Some(rs) = self.rss.get(i) else { return };
        let script = if rs.alive {
            &rs.notify_up
        } else {
            &rs.notify_down
        };
        if let Some(script) = script {
            let event = if rs.alive {
                NotifyEvent::RealServerUp {
                    vs: self.name.clone(),
                    rs: rs.name.clone(),
                }
            } else {
                NotifyEvent::RealServerDown {
                    vs: self.name.clone(),
                    rs: rs.name.clone(),
                }
            };
            out.push_back(CheckOutput::notify(script, event));
        }
    }

    fn vs_notifies(&self, stopping: bool, out: &mut VecDeque<CheckOutput>) {
        if stopping && !self.omega {
            return;
        }
        let script = if self.quorum_state_up {
            &self.quorum_up
        } else {
            &self.quorum_down
        };
        if let Some(script) = script {
            let event = if self.quorum_state_up {
                NotifyEvent::QuorumUp {
                    vs: self.name.clone(),
                }
            } else {
                NotifyEvent::QuorumDown {
                    vs: self.name.clone(),
                }
            };
            out.push_back(CheckOutput::notify(script, event));
        }
    }

    /// Start-up (`validate_check_config`'s warnings, then `init_service_vs`).
    pub(crate) fn start(&mut self, out: &mut VecDeque<CheckOutput>) {
        self.emit_warnings(out);
        self.init_service_vs(out);
    }

    /// The configuration warnings keepalived logs while reading this block (once).
    pub(crate) fn emit_warnings(&mut self, out: &mut VecDeque<CheckOutput>) {
        for w in std::mem::take(&mut self.config_warnings) {
            Self::log(out, w);
        }
    }

    /// `init_service_vs`: add the service (unless a reload kept it) and its real servers,
    /// then settle the quorum.
    fn init_service_vs(&mut self, out: &mut VecDeque<CheckOutput>) {
        let key = self.spec.key;
        if !self.service_set {
            out.push_back(CheckOutput::Ipvs(IpvsChange::AddService(self.spec.clone())));
            self.service_set = true;
        }
        // init_service_rs: alpha servers (failed checkers) stay out unless inhibited.
        for i in 0..self.rss.len() {
            let Some(rs) = self.rss.get_mut(i) else {
                continue;
            };
            if rs.reloaded {
                if rs.effective_weight != rs.peffective_weight {
                    // "We need to force a change from the previous weight".
                    let new_weight = rs.effective_weight;
                    rs.effective_weight = rs.peffective_weight;
                    self.update_svr_wgt(i, new_weight, false, out);
                }
                // "Do not re-add failed RS instantly on reload".
                continue;
            }
            if (rs.num_failed == 0 && !rs.alive) || (rs.inhibit && !rs.set) {
                let c = Self::ipvs_cmd(key, rs, true, false);
                out.push_back(CheckOutput::Ipvs(c));
                if rs.num_failed == 0 {
                    rs.alive = true;
                }
            }
        }
        self.update_quorum_state(true, out);
        if let Some(s) = self.sorry.as_mut() {
            if s.inhibit && !s.set {
                // "Make sure the sorry server is configured with weight 0".
                s.num_failed = 1;
                let c = Self::ipvs_cmd(key, s, true, false);
                s.num_failed = 0;
                out.push_back(CheckOutput::Ipvs(c));
            }
        }
    }

    /// Arm every checker (`register_checkers_thread`).
    pub(crate) fn arm(
        &mut self,
        now: Instant,
        rng: &mut dyn rand_core::RngCore,
        out: &mut VecDeque<CheckOutput>,
    ) {
        for rs in &mut self.rss {
            for c in &mut rs.checkers {
                out.push_back(CheckOutput::Log {
                    text: format!(
                        "Activating healthchecker for service {} for VS {}",
                        rs.name, self.name
                    ),
                });
                c.arm(now, rng);
            }
        }
    }

    /// `update_quorum_state`.
    fn update_quorum_state(&mut self, init: bool, out: &mut VecDeque<CheckOutput>) {
        let weight_sum = self.weigh_live();
        let q = i64::from(self.quorum);
        let h = i64::from(self.hysteresis);
        let threshold = if self.quorum_state_up { q - h } else { q + h };
        let key = self.spec.key;
        if !self.quorum_state_up && weight_sum >= threshold {
            self.quorum_state_up = true;
            self.quorum_gained += 1;
            Self::log(
                out,
                format!(
                    "Gained quorum {}+{}={threshold} <= {weight_sum} for VS {}",
                    self.quorum, self.hysteresis, self.name
                ),
            );
            if let Some(s) = self.sorry.as_mut().filter(|s| s.alive) {
                Self::log(
                    out,
                    format!(
                        "{} sorry server {} from VS {}",
                        if s.inhibit { "Disabling" } else { "Removing" },
                        s.name,
                        self.name
                    ),
                );
                let c = Self::ipvs_cmd(key, s, false, false);
                out.push_back(CheckOutput::Ipvs(c));
                s.alive = false;
                self.perform_quorum_state(true, out);
            }
            self.vs_notifies(false, out);
        } else if (self.quorum_state_up && (weight_sum == 0 || weight_sum < threshold))
            || (init && !self.quorum_state_up && self.sorry.as_ref().is_some_and(|s| !s.alive))
        {
            self.quorum_state_up = false;
            self.quorum_lost += 1;
            Self::log(
                out,
                format!(
                    "{} {}-{}={threshold} > {weight_sum} for VS {}",
                    if init {
                        "Starting with quorum down"
                    } else {
                        "Lost quorum"
                    },
                    self.quorum,
                    self.hysteresis,
                    self.name
                ),
            );
            if self.sorry.as_ref().is_some_and(|s| !s.alive) {
                if let Some(s) = self.sorry.as_ref() {
                    Self::log(
                        out,
                        format!(
                            "{} sorry server {} to VS {}",
                            if s.inhibit { "Enabling" } else { "Adding" },
                            s.name,
                            self.name
                        ),
                    );
                }
                self.perform_quorum_state(false, out);
                if let Some(s) = self.sorry.as_mut() {
                    let c = Self::ipvs_cmd(key, s, true, false);
                    out.push_back(CheckOutput::Ipvs(c));
                    s.alive = true;
                }
            }
            self.vs_notifies(false, out);
        }
    }

    /// `perform_quorum_state`: add or remove every alive real server.
    fn perform_quorum_state(&mut self, add: bool, out: &mut VecDeque<CheckOutput>) {
        Self::log(
            out,
            format!(
                "{} the pool for VS {}",
                if add {
                    "Adding alive servers to"
                } else {
                    "Removing alive servers from"
                },
                self.name
            ),
        );
        let key = self.spec.key;
        for rs in self.rss.iter_mut().filter(|r| r.alive) {
            let c = Self::ipvs_cmd(key, rs, add, false);
            out.push_back(CheckOutput::Ipvs(c));
        }
    }

    /// `perform_svr_state`: a real server went up or down.
    fn perform_svr_state(&mut self, i: usize, alive: bool, out: &mut VecDeque<CheckOutput>) {
        let key = self.spec.key;
        let sorry_blocks = !self.quorum_state_up && self.sorry_active();
        let Some(rs) = self.rss.get_mut(i) else {
            return;
        };
        if rs.alive == alive {
            return;
        }
        let verb = match (alive, rs.inhibit) {
            (true, true) => "Enabling",
            (true, false) => "Adding",
            (false, true) => "Disabling",
            (false, false) => "Removing",
        };
        let prep = if rs.inhibit {
            "of"
        } else if alive {
            "to"
        } else {
            "from"
        };
        let text = format!("{verb} service {} {prep} VS {}", rs.name, self.name);
        out.push_back(CheckOutput::Log { text });
        // "Change only if we have quorum or no sorry server".
        if !sorry_blocks {
            let c = Self::ipvs_cmd(key, rs, alive, false);
            out.push_back(CheckOutput::Ipvs(c));
        }
        rs.alive = alive;
        if alive {
            rs.went_up += 1;
        } else {
            rs.went_down += 1;
        }
        self.rs_notifies(i, out);
        self.update_quorum_state(false, out);
    }

    /// `update_svr_wgt`.
    fn update_svr_wgt(
        &mut self,
        i: usize,
        weight: i64,
        update_quorum: bool,
        out: &mut VecDeque<CheckOutput>,
    ) {
        let key = self.spec.key;
        let sorry_blocks = !self.quorum_state_up && self.sorry_active();
        let name = self.name.clone();
        let Some(rs) = self.rss.get_mut(i) else {
            return;
        };
        let new_w = real_weight(weight);
        let old_w = real_weight(rs.effective_weight);
        rs.effective_weight = weight;
        if new_w != old_w {
            let text = format!(
                "Changing weight from {old_w} to {new_w} for {}active service {} of VS {name}",
                if rs.alive { "" } else { "in" },
                rs.name
            );
            out.push_back(CheckOutput::Log { text });
            if rs.set && rs.alive && !sorry_blocks {
                out.push_back(CheckOutput::Ipvs(IpvsChange::EditDest(
                    key,
                    Self::dest(rs, new_w),
                )));
            }
            if update_quorum {
                self.update_quorum_state(false, out);
            }
        }
    }

    /// When the next checker of this virtual server wants to launch, with its position.
    pub(crate) fn next_launch(&self) -> Option<(Instant, usize, usize)> {
        let mut best: Option<(Instant, usize, usize)> = None;
        for (ri, rs) in self.rss.iter().enumerate() {
            for (ci, c) in rs.checkers.iter().enumerate() {
                if let Some(t) = c.next_run() {
                    if best.is_none_or(|b| t < b.0) {
                        best = Some((t, ri, ci));
                    }
                }
            }
        }
        best
    }

    /// Checkers due at `now`, as (due time, real server, checker).
    pub(crate) fn due(&self, now: Instant) -> Vec<(Instant, usize, usize)> {
        let mut v = Vec::new();
        for (ri, rs) in self.rss.iter().enumerate() {
            for (ci, c) in rs.checkers.iter().enumerate() {
                if let Some(t) = c.next_run().filter(|t| *t <= now) {
                    v.push((t, ri, ci));
                }
            }
        }
        v
    }

    /// Launch checker `(ri, ci)` with probe id `id`.
    pub(crate) fn launch(
        &mut self,
        now: Instant,
        ri: usize,
        ci: usize,
        id: ProbeId,
    ) -> Option<Probe> {
        self.rss.get_mut(ri)?.checkers.get_mut(ci)?.launch(now, id)
    }

    /// A probe result for checker `(ri, ci)`.
    pub(crate) fn on_result(
        &mut self,
        now: Instant,
        ri: usize,
        ci: usize,
        id: ProbeId,
        result: &ProbeResult,
        out: &mut VecDeque<CheckOutput>,
    ) {
        let Some(checker) = self.rss.get_mut(ri).and_then(|r| r.checkers.get_mut(ci)) else {
            return;
        };
        let actions = checker.on_result(now, id, result);
        for a in actions {
            match a {
                Action::Log(text) => out.push_back(CheckOutput::Log { text }),
                Action::Update {
                    alive,
                    was_up,
                    had_run,
                    alpha,
                } => self.update_svr_checker_state(ri, alive, was_up, had_run, alpha, out),
                Action::Weight(delta) => {
                    let w = self.rss.get(ri).map_or(0, |r| r.effective_weight) + delta;
                    self.update_svr_wgt(ri, w, true, out);
                }
                Action::SilentWeight(delta) => {
                    if let Some(r) = self.rss.get_mut(ri) {
                        r.effective_weight += delta;
                    }
                }
            }
        }
    }

    /// `update_svr_checker_state`: the real-server side (the checker already updated itself).
    fn update_svr_checker_state(
        &mut self,
        ri: usize,
        alive: bool,
        was_up: bool,
        had_run: bool,
        alpha: bool,
        out: &mut VecDeque<CheckOutput>,
    ) {
        if was_up == alive {
            if !had_run && (alpha || !alive) {
                self.rs_notifies(ri, out);
            }
            return;
        }
        let failed = self.rss.get(ri).map_or(0, |r| r.num_failed);
        if alive {
            // "call the UP handler unless any more failed checks found"
            if failed <= 1 {
                self.perform_svr_state(ri, true, out);
            }
        } else if failed == 0 {
            self.perform_svr_state(ri, false, out);
        }
        // set_checker_state
        if let Some(r) = self.rss.get_mut(ri) {
            if alive {
                r.num_failed = r.num_failed.saturating_sub(1);
            } else {
                r.num_failed += 1;
            }
        }
    }

    /// Shut down: `clear_service_vs(vs, stopping = true)` with the default
    /// `lvs_flush_on_stop` off.
    pub(crate) fn stop(&mut self, out: &mut VecDeque<CheckOutput>) {
        self.clear_service_vs(true, out);
    }

    /// `clear_service_vs`: remove the sorry server, every real server and the service. The
    /// checkers stop.
    fn clear_service_vs(&mut self, stopping: bool, out: &mut VecDeque<CheckOutput>) {
        let key = self.spec.key;
        for rs in &mut self.rss {
            for c in &mut rs.checkers {
                c.halt();
            }
        }
        if let Some(s) = self.sorry.as_mut().filter(|s| s.set) {
            let c = Self::ipvs_cmd(key, s, false, true);
            out.push_back(CheckOutput::Ipvs(c));
            s.alive = false;
        }
        for i in 0..self.rss.len() {
            self.clear_service_rs(i, stopping, out);
        }
        self.update_vs_notifies(stopping, out);
        out.push_back(CheckOutput::Ipvs(IpvsChange::DelService(key)));
        self.service_set = false;
    }

    /// `clear_service_rs`: remove real server `i` from IPVS (inhibit_on_failure or not); its
    /// notify_down runs unless shutting down without omega.
    fn clear_service_rs(&mut self, i: usize, stopping: bool, out: &mut VecDeque<CheckOutput>) {
        let key = self.spec.key;
        let Some(rs) = self.rss.get_mut(i) else {
            return;
        };
        if rs.set || stopping {
            let text = format!(
                "{} {}service {} from VS {}",
                if stopping {
                    "Shutting down"
                } else {
                    "Removing"
                },
                if rs.inhibit && !rs.alive {
                    "(inhibited) "
                } else {
                    ""
                },
                rs.name,
                self.name
            );
            out.push_back(CheckOutput::Log { text });
        }
        if !rs.set {
            return;
        }
        let c = Self::ipvs_cmd(key, rs, false, true);
        out.push_back(CheckOutput::Ipvs(c));
        if !rs.alive {
            return;
        }
        rs.alive = false;
        // "In Omega mode we call VS and RS down notifiers all the way down the exit".
        if !self.omega && stopping {
            return;
        }
        self.rs_notifies(i, out);
    }

    /// `update_vs_notifies`: quorum is lost when shutting down or when the live weight no
    /// longer meets it (no log line, no sorry server: "the regression is intended").
    fn update_vs_notifies(&mut self, stopping: bool, out: &mut VecDeque<CheckOutput>) {
        let threshold = i64::from(self.quorum) - i64::from(self.hysteresis);
        let weight_sum = self.weigh_live();
        if stopping || (self.quorum_state_up && (weight_sum == 0 || weight_sum < threshold)) {
            self.quorum_state_up = false;
            self.vs_notifies(stopping, out);
        }
    }

    /// `clear_diff_services` for a virtual server the new configuration no longer has.
    pub(crate) fn remove(&mut self, out: &mut VecDeque<CheckOutput>) {
        Self::log(out, format!("Removing Virtual Server {}", self.name));
        self.clear_service_vs(false, out);
    }

    /// `clear_diff_services` for a virtual server the new configuration keeps (`self` is the
    /// new one, `old` the running one): copy its state, edit the service if its scheduling
    /// changed, then `clear_diff_rs` and `clear_diff_s_srv`.
    pub(crate) fn take_over(&mut self, mut old: VirtualServer, out: &mut VecDeque<CheckOutput>) {
        self.service_set = old.service_set;
        self.quorum_state_up = old.quorum_state_up;
        self.quorum_gained = old.quorum_gained;
        self.quorum_lost = old.quorum_lost;
        let (a, b) = (&self.spec, &old.spec);
        if a.scheduler != b.scheduler
            || a.flags != b.flags
            || a.persistence != b.persistence
            || a.netmask_prefix != b.netmask_prefix
            || a.one_packet != b.one_packet
        {
            out.push_back(CheckOutput::Ipvs(IpvsChange::EditService(
                self.spec.clone(),
            )));
        }
        self.clear_diff_rs(&mut old, out);
        self.clear_diff_s_srv(&mut old, out);
    }

    /// `clear_diff_rs`: remove the real servers that are gone, carry the state of those that
    /// stay over to their new selves.
    fn clear_diff_rs(&mut self, old: &mut VirtualServer, out: &mut VecDeque<CheckOutput>) {
        if old.rss.is_empty() {
            return;
        }
        let key = self.spec.key;
        for oi in 0..old.rss.len() {
            let Some(o) = old.rss.get(oi) else { continue };
            let Some(ni) = self
                .rss
                .iter()
                .position(|n| n.addr == o.addr && n.port == o.port)
            else {
                Self::log(out, format!("service {} no longer exist", o.name));
                old.clear_service_rs(oi, false, out);
                continue;
            };
            let Some(n) = self.rss.get_mut(ni) else {
                continue;
            };
            n.alive = o.alive;
            n.set = o.set;
            n.effective_weight = o.effective_weight;
            n.peffective_weight = o.effective_weight;
            n.reloaded = true;
            n.went_up = o.went_up;
            n.went_down = o.went_down;
            let Some(o) = old.rss.get(oi) else { continue };
            self.migrate_checkers(ni, o, out);
            let Some(n) = self.rss.get(ni) else { continue };
            if n.fwd != o.fwd {
                let d = Self::dest(n, real_weight(n.effective_weight));
                out.push_back(CheckOutput::Ipvs(IpvsChange::EditDest(key, d)));
            }
        }
        old.update_vs_notifies(false, out);
    }

    /// `migrate_checkers`: each new checker takes over the state of the first old checker it
    /// compares equal to; then the real server's failed checkers are recounted and it is put
    /// in or out of the pool accordingly.
    fn migrate_checkers(&mut self, ni: usize, old: &Rs, out: &mut VecDeque<CheckOutput>) {
        let key = self.spec.key;
        let Some(n) = self.rss.get_mut(ni) else {
            return;
        };
        for c in &mut n.checkers {
            if let Some(o) = old.checkers.iter().find(|o| c.same_check(o)) {
                c.migrate_from(o);
            }
        }
        let mut failed = u32::try_from(n.checkers.iter().filter(|c| c.has_run && !c.is_up).count())
            .unwrap_or(u32::MAX);
        let any_run = n.checkers.iter().any(|c| c.has_run);
        // "If a checker has failed, set new alpha checkers to be down until they have run."
        if failed > 0 || (!n.alive && !any_run) {
            for c in n.checkers.iter_mut().filter(|c| !c.has_run) {
                if c.alpha() && c.set_state(false) {
                    failed += 1;
                }
                c.fail_on_first();
            }
        }
        n.num_failed = failed;
        if failed == 0 && !n.alive {
            // "If there are no failed checkers, the RS needs to be up".
            self.perform_svr_state(ni, true, out);
        } else if failed > 0 && n.set != n.inhibit {
            let add = n.inhibit;
            let c = Self::ipvs_cmd(key, n, add, false);
            out.push_back(CheckOutput::Ipvs(c));
        }
    }

    /// `clear_diff_s_srv`: keep the sorry server's state if it is the same one, else take the
    /// old one out of the pool.
    fn clear_diff_s_srv(&mut self, old: &mut VirtualServer, out: &mut VecDeque<CheckOutput>) {
        let Some(o) = old.sorry.as_mut() else { return };
        match self.sorry.as_mut() {
            Some(n) if n.addr == o.addr && n.port == o.port => {
                n.alive = o.alive;
                n.set = o.set;
                n.effective_weight = n.iweight;
                n.reloaded = true;
            }
            _ => {
                if o.inhibit {
                    if !o.alive && o.set {
                        o.alive = true;
                    }
                    o.inhibit = false;
                }
                if o.alive {
                    Self::log(
                        out,
                        format!("Removing sorry server {} from VS {}", o.name, old.name),
                    );
                    let c = Self::ipvs_cmd(old.spec.key, o, false, false);
                    out.push_back(CheckOutput::Ipvs(c));
                }
            }
        }
    }

    /// Reload, before the diff: every checker as freshly parsed on a reload
    /// (`Checker::reload_defaults`), no real server counting a failed checker yet.
    pub(crate) fn reload_defaults(&mut self) {
        for rs in &mut self.rss {
            for c in &mut rs.checkers {
                c.reload_defaults();
            }
            rs.num_failed = 0;
        }
    }

    /// Reload, after the diff: `set_effective_weights` (configured weight plus each checker's
    /// `misc_dynamic` weight) and `check_new_rs_state` (a new real server with alpha checkers
    /// starts down).
    pub(crate) fn settle_reloaded(&mut self) {
        for rs in &mut self.rss {
            rs.effective_weight =
                rs.iweight + rs.checkers.iter().map(Checker::cur_weight).sum::<i64>();
            if rs.reloaded {
                continue;
            }
            for c in rs.checkers.iter_mut().filter(|c| c.alpha()) {
                if c.set_state(false) {
                    rs.num_failed += 1;
                }
                rs.alive = false;
            }
        }
    }

    /// Reload, last: `init_service_vs` on the new configuration.
    pub(crate) fn init_reloaded(&mut self, out: &mut VecDeque<CheckOutput>) {
        self.init_service_vs(out);
    }

    /// Counters and state.
    pub fn stats(&self) -> VirtualServerStats {
        VirtualServerStats {
            name: self.name.clone(),
            key: self.spec.key,
            quorum: self.quorum,
            hysteresis: self.hysteresis,
            quorum_up: self.quorum_state_up,
            live_weight: self.weigh_live(),
            quorum_gained: self.quorum_gained,
            quorum_lost: self.quorum_lost,
            sorry_server: self.sorry.as_ref().map(|s| SorryServerStats {
                name: s.name.clone(),
                alive: s.alive,
                set: s.set,
            }),
            real_servers: self.rss.iter().map(Rs::stats).collect(),
        }
    }
}

impl VirtualServerConfig {
    fn spec_key(&self) -> ServiceKey {
        self.service.key
    }
}
