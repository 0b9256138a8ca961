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
use super::healthcheckers::{CheckOutput, NotifyEvent};
use super::probe::{Probe, ProbeId, ProbeResult};
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
    effective_weight: i64,
    inhibit: bool,
    alive: bool,
    set: bool,
    num_failed: u32,
    notify_up: Option<String>,
    notify_down: Option<String>,
    name: String,
    checkers: Vec<Checker>,
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
    quorum_up: Option<String>,
    quorum_down: Option<String>,
    sorry: Option<Rs>,
    rss: Vec<Rs>,
    config_warnings: Vec<String>,
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
        let rs_port = |p: u16, fwd: FwdMethod| -> u16 {
            // validate_check_config: non-NAT real servers use the service's port; fwmark: 0.
            if fwd == FwdMethod::Masq {
                if p == 0 && !is_fwmark {
                    vs_port
                } else {
                    p
                }
            } else if is_fwmark {
                0
            } else {
                vs_port
            }
        };
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
            rss.push(Rs {
                addr: r.addr,
                port,
                fwd,
                u_threshold: r.u_threshold,
                l_threshold: r.l_threshold,
                effective_weight: iweight,
                inhibit: r.inhibit_on_failure.unwrap_or(cfg.inhibit_on_failure),
                alive: false,
                set: false,
                num_failed,
                notify_up: r.notify_up.clone(),
                notify_down: r.notify_down.clone(),
                name: rname,
                checkers,
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
                effective_weight: 1,
                inhibit: s.inhibit,
                alive: false,
                set: false,
                num_failed: 0,
                notify_up: None,
                notify_down: None,
                name: format_trio(s.addr, rs_proto, port),
                checkers: Vec::new(),
            }
        });
        let mut quorum = cfg.quorum.max(1);
        let mut hysteresis = cfg.hysteresis;
        // validate_check_config: quorum above the total weight could never be met.
        if i64::from(quorum) > weight_sum {
            let ws = u32::try_from(weight_sum.max(0)).unwrap_or(0);
            config_warnings.push(format!(
                "Warning - quorum {quorum} for {name} exceeds total weight of real servers {ws}, reducing quorum to {ws}"
            ));
            quorum = ws;
        }
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
            quorum_up: cfg.quorum_up.clone(),
            quorum_down: cfg.quorum_down.clone(),
            sorry,
            rss,
            config_warnings,
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
        if let Some(command) = script {
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
            out.push_back(CheckOutput::Notify {
                command: command.clone(),
                event,
            });
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
        if let Some(command) = script {
            let event = if self.quorum_state_up {
                NotifyEvent::QuorumUp {
                    vs: self.name.clone(),
                }
            } else {
                NotifyEvent::QuorumDown {
                    vs: self.name.clone(),
                }
            };
            out.push_back(CheckOutput::Notify {
                command: command.clone(),
                event,
            });
        }
    }

    /// `init_service_vs`: add the service and its real servers, then settle the quorum.
    pub(crate) fn start(&mut self, out: &mut VecDeque<CheckOutput>) {
        for w in std::mem::take(&mut self.config_warnings) {
            Self::log(out, w);
        }
        let key = self.spec.key;
        out.push_back(CheckOutput::Ipvs(IpvsChange::AddService(self.spec.clone())));
        // init_service_rs: alpha servers (failed checkers) stay out unless inhibited.
        for rs in &mut self.rss {
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

    /// `clear_service_vs(vs, stopping = true)` with the default `lvs_flush_on_stop` off.
    pub(crate) fn stop(&mut self, out: &mut VecDeque<CheckOutput>) {
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
            let Some(rs) = self.rss.get_mut(i) else {
                continue;
            };
            let text = format!(
                "Shutting down {}service {} from VS {}",
                if rs.inhibit && !rs.alive {
                    "(inhibited) "
                } else {
                    ""
                },
                rs.name,
                self.name
            );
            out.push_back(CheckOutput::Log { text });
            if !rs.set {
                continue;
            }
            let c = Self::ipvs_cmd(key, rs, false, true);
            out.push_back(CheckOutput::Ipvs(c));
            if !rs.alive {
                continue;
            }
            rs.alive = false;
            // "In Omega mode we call VS and RS down notifiers all the way down the exit".
            if self.omega {
                self.rs_notifies(i, out);
            }
        }
        // update_vs_notifies(vs, stopping)
        self.quorum_state_up = false;
        self.vs_notifies(true, out);
        out.push_back(CheckOutput::Ipvs(IpvsChange::DelService(key)));
    }
}

impl VirtualServerConfig {
    fn spec_key(&self) -> ServiceKey {
        self.service.key
    }
}
