//! One checker of one real server (TCP_CHECK, HTTP_GET / SSL_GET, MISC_CHECK): when it probes,
//! how it counts failures across retries, and which verdicts and log lines it produces.
//!
//! Reference: keepalived 2.2.7 `check/check_tcp.c` (`tcp_epilog`), `check/check_http.c`
//! (`epilog`, `timeout_epilog`, `http_handle_response`), `check/check_misc.c`
//! (`misc_check_child_thread`), `check/check_api.c` (`queue_checker`, `register_checkers_thread`)
//! and `check/check_data.c` (`validate_check_config`: how defaults are inherited).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::probe::{Probe, ProbeId, ProbeKind, ProbeResult};
use super::script::Script;
use super::stats::{CheckerStats, CheckerType};
use crate::time::Instant;

/// keepalived's `BOOTSTRAP_DELAY` (`lib/scheduler.h`): checkers start 1 s after the daemon.
pub const BOOTSTRAP_DELAY: Duration = Duration::from_secs(1);

/// keepalived's `RAND_MAX` for `random()`, used to scale the warmup.
const RAND_MAX: u64 = 0x7fff_ffff;

/// Settings of one checker block inside a `real_server`.
///
/// `None` means "not given here": the value is inherited from the real server, then the
/// virtual server, then the checker type's default (`check_data.c: validate_check_config`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckerConfig {
    /// Which checker and its own settings.
    pub kind: CheckerKind,
    /// `connect_timeout` (TCP/HTTP only).
    pub connect_timeout: Option<Duration>,
    /// `retry` (and HTTP's deprecated `nb_get_retry`).
    pub retry: Option<u32>,
    /// `delay_before_retry`.
    pub delay_before_retry: Option<Duration>,
    /// `delay_loop`.
    pub delay_loop: Option<Duration>,
    /// `warmup`: the first probe waits a random time up to this long.
    pub warmup: Option<Duration>,
    /// `alpha`: start down, be added only after a first success.
    pub alpha: Option<bool>,
    /// `log_all_failures` (also true when the global `checker_log_all_failures` is set).
    pub log_all_failures: bool,
}

impl CheckerConfig {
    /// A checker of `kind` with every setting inherited.
    pub fn new(kind: CheckerKind) -> Self {
        CheckerConfig {
            kind,
            connect_timeout: None,
            retry: None,
            delay_before_retry: None,
            delay_loop: None,
            warmup: None,
            alpha: None,
            log_all_failures: false,
        }
    }

    /// keepalived's `default_retry` for this checker type (`queue_checker`, `misc_check_handler`).
    pub fn default_retry(&self) -> u32 {
        match self.kind {
            CheckerKind::Misc { .. } => 0,
            _ => 1,
        }
    }

    /// keepalived's `default_delay_before_retry` (`queue_checker`, `http_get_handler`).
    pub fn default_delay_before_retry(&self) -> Duration {
        match self.kind {
            CheckerKind::Http { .. } => Duration::from_secs(3),
            _ => Duration::from_secs(1),
        }
    }
}

/// The checker types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckerKind {
    /// `TCP_CHECK`.
    Tcp(ConnectOpts),
    /// `HTTP_GET` (`tls: false`) or `SSL_GET` (`tls: true`).
    Http {
        /// Where to connect.
        conn: ConnectOpts,
        /// SSL_GET.
        tls: bool,
        /// Checker-level `virtualhost`.
        virtualhost: Option<String>,
        /// The `url` blocks, checked one per `delay_loop`, in order.
        urls: Vec<UrlCheck>,
    },
    /// `MISC_CHECK`.
    Misc {
        /// `misc_path`: the command line.
        command: String,
        /// `misc_timeout` (default: the virtual server's `delay_loop`).
        timeout: Option<Duration>,
        /// `misc_dynamic`: exit 2..=255 sets the weight to `exit - 2`.
        dynamic: bool,
    },
}

/// `connect_ip`, `connect_port`, `bindto`, `bind_port` (defaults: the real server's address).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectOpts {
    /// `connect_ip`.
    pub ip: Option<IpAddr>,
    /// `connect_port`.
    pub port: Option<u16>,
    /// `bindto`.
    pub bindto: Option<IpAddr>,
    /// `bind_port`.
    pub bind_port: Option<u16>,
}

/// One `url` block of HTTP_GET / SSL_GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlCheck {
    /// `path`.
    pub path: String,
    /// `digest`: hex MD5 of the body (compared case-insensitively).
    pub digest: Option<String>,
    /// `status_code` values; empty means keepalived's default 200-299 (`url_check`).
    pub status_codes: Vec<u16>,
    /// URL-level `virtualhost`.
    pub virtualhost: Option<String>,
}

impl UrlCheck {
    /// A url with the default status codes and no digest.
    pub fn new(path: impl Into<String>) -> Self {
        UrlCheck {
            path: path.into(),
            digest: None,
            status_codes: Vec::new(),
            virtualhost: None,
        }
    }

    /// Whether keepalived accepts `status` for this url (`http_handle_response`).
    pub fn accepts_status(&self, status: u16) -> bool {
        // HTTP_STATUS_CODE_MIN..=MAX is 100..=599; anything else never matches.
        if !(100..=599).contains(&status) {
            return false;
        }
        if self.status_codes.is_empty() {
            (200..=299).contains(&status)
        } else {
            self.status_codes.contains(&status)
        }
    }
}

/// Checker settings after inheritance from the real and virtual server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// `delay_loop`.
    pub delay_loop: Duration,
    /// `connect_timeout`.
    pub connect_timeout: Duration,
    /// `retry`.
    pub retry: u32,
    /// `delay_before_retry`.
    pub delay_before_retry: Duration,
    /// `warmup`.
    pub warmup: Duration,
    /// `alpha`.
    pub alpha: bool,
    /// The virtual server's own `delay_loop` (MISC_CHECK's default timeout).
    pub vs_delay_loop: Duration,
}

/// What the checker asks its real server / virtual server to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// A log line.
    Log(String),
    /// keepalived's `update_svr_checker_state`, the checker's part already done.
    Update {
        /// New checker state.
        alive: bool,
        /// `is_up` before.
        was_up: bool,
        /// `has_run` before.
        had_run: bool,
        /// The checker's `alpha`.
        alpha: bool,
    },
    /// `update_svr_wgt(rs->effective_weight + delta, vs, rs, true)`.
    Weight(i64),
    /// `rs->effective_weight += delta` without telling IPVS.
    SilentWeight(i64),
}

#[derive(Clone, Debug)]
enum Kind {
    Tcp {
        target: SocketAddr,
        bind: Option<SocketAddr>,
    },
    Http {
        target: SocketAddr,
        /// `bindto`: not passed to the probe, but part of what a reload compares.
        bind: Option<SocketAddr>,
        tls: bool,
        vhost: Option<String>,
        urls: Vec<UrlCheck>,
    },
    Misc {
        command: String,
        /// `args[0]`, which keepalived's log lines name.
        program: String,
        /// The words keepalived compares on reload (`notify_script_compare`).
        argv: Vec<String>,
        timeout: Duration,
        dynamic: bool,
    },
}

/// One checker's state machine.
#[derive(Clone, Debug)]
pub struct Checker {
    kind: Kind,
    timing: Timing,
    log_all_failures: bool,
    /// `FMT_CHK`: `[addr]:proto:port` of the real server.
    name: String,
    /// `FMT_VS` of the virtual server (MISC_CHECK logs it).
    vs_name: String,
    /// The real server's configured weight (`rs->iweight`), for misc_dynamic.
    iweight: i64,
    enabled: bool,
    pub(crate) is_up: bool,
    pub(crate) has_run: bool,
    retry_it: u32,
    url_it: Option<usize>,
    failed_url: Option<usize>,
    last_exit_code: u32,
    cur_weight: i64,
    last_ran: Instant,
    next_run: Option<Instant>,
    in_flight: Option<ProbeId>,
    successes: u64,
    failures: u64,
}

fn bind_addr(c: &ConnectOpts) -> Option<SocketAddr> {
    c.bindto
        .map(|ip| SocketAddr::new(ip, c.bind_port.unwrap_or(0)))
}

fn target_addr(c: &ConnectOpts, rs: SocketAddr) -> SocketAddr {
    SocketAddr::new(c.ip.unwrap_or(rs.ip()), c.port.unwrap_or(rs.port()))
}

impl Checker {
    /// A checker for the real server `rs` (its address is the default target).
    ///
    /// `name` is `FMT_RS` of the real server, `vs_name` is `FMT_VS`.
    pub fn new(
        cfg: &CheckerConfig,
        timing: Timing,
        rs: SocketAddr,
        iweight: i64,
        name: String,
        vs_name: String,
    ) -> Self {
        let kind = match &cfg.kind {
            CheckerKind::Tcp(c) => Kind::Tcp {
                target: target_addr(c, rs),
                bind: bind_addr(c),
            },
            CheckerKind::Http {
                conn,
                tls,
                virtualhost,
                urls,
            } => Kind::Http {
                // ProbeKind::Http has no source address: `bindto` is not passed on.
                target: target_addr(conn, rs),
                bind: bind_addr(conn),
                tls: *tls,
                vhost: virtualhost.clone(),
                urls: urls.clone(),
            },
            CheckerKind::Misc {
                command,
                timeout,
                dynamic,
            } => {
                let argv = Script::parse(command).map(|s| s.argv).unwrap_or_default();
                Kind::Misc {
                    command: command.clone(),
                    program: argv.first().cloned().unwrap_or_default(),
                    argv,
                    timeout: timeout.unwrap_or(timing.vs_delay_loop),
                    dynamic: *dynamic,
                }
            }
        };
        let alpha = timing.alpha;
        let retry = timing.retry;
        Checker {
            kind,
            timing,
            log_all_failures: cfg.log_all_failures,
            name,
            vs_name,
            iweight,
            enabled: true,
            // validate_check_config: in alpha mode every checker starts failed.
            is_up: !alpha,
            has_run: false,
            // validate_check_config: "For non alpha mode, one failure is enough initially."
            retry_it: retry,
            url_it: Some(0),
            failed_url: None,
            last_exit_code: 0,
            cur_weight: 0,
            last_ran: Instant::ZERO,
            next_run: None,
            in_flight: None,
            successes: 0,
            failures: 0,
        }
    }

    /// The resolved settings.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// Whether this checker currently considers its server up.
    pub fn is_up(&self) -> bool {
        self.is_up
    }

    /// The `Activating healthchecker ...` log line and the first launch time
    /// (`register_checkers_thread`: `BOOTSTRAP_DELAY + warmup * random() / RAND_MAX`).
    pub(crate) fn arm(&mut self, now: Instant, rng: &mut dyn rand_core::RngCore) {
        let warmup = u64::try_from(self.timing.warmup.as_micros()).unwrap_or(u64::MAX);
        let drawn = if warmup == 0 {
            0
        } else {
            let r = u64::from(rng.next_u32() >> 1);
            u64::try_from(u128::from(warmup) * u128::from(r) / u128::from(RAND_MAX))
                .unwrap_or(warmup)
        };
        self.next_run = Some(now + BOOTSTRAP_DELAY + Duration::from_micros(drawn));
    }

    /// When this checker next wants to launch a probe.
    pub fn next_run(&self) -> Option<Instant> {
        self.next_run
    }

    /// The probe in flight, if any.
    pub fn in_flight(&self) -> Option<ProbeId> {
        self.in_flight
    }

    /// Stop all activity (daemon shutdown).
    pub(crate) fn halt(&mut self) {
        self.next_run = None;
        self.in_flight = None;
    }

    /// Whether `result` is a success for this checker as it stands (TCP connected, HTTP
    /// status and digest accepted for the current url, MISC exit 0 or a `misc_dynamic` weight).
    fn succeeded(&self, result: &ProbeResult) -> bool {
        match &self.kind {
            Kind::Tcp { .. } => matches!(result, ProbeResult::Connected),
            Kind::Http { urls, .. } => urls
                .get(self.url_it.unwrap_or(0))
                .is_some_and(|u| http_failure(u, result).is_none()),
            Kind::Misc { dynamic, .. } => match result {
                ProbeResult::Exit(Some(code)) => misc_success((*code & 0xff) as u32, *dynamic),
                _ => false,
            },
        }
    }

    /// keepalived's checker type name.
    pub fn checker_type(&self) -> CheckerType {
        match &self.kind {
            Kind::Tcp { .. } => CheckerType::TcpCheck,
            Kind::Http { tls: false, .. } => CheckerType::HttpGet,
            Kind::Http { tls: true, .. } => CheckerType::SslGet,
            Kind::Misc { .. } => CheckerType::MiscCheck,
        }
    }

    /// Counters and state, as `dump_checker` shows them plus the result counts.
    pub fn stats(&self) -> CheckerStats {
        CheckerStats {
            checker_type: self.checker_type(),
            enabled: self.enabled,
            up: self.is_up,
            has_run: self.has_run,
            current_weight: self.cur_weight,
            retry_it: self.retry_it,
            successes: self.successes,
            failures: self.failures,
        }
    }

    /// A freshly parsed checker as keepalived has it on a reload: `queue_checker`'s `is_up`
    /// and `retry_it`, untouched by `validate_check_config`'s start-up-only alpha / retry
    /// settings (`migrate_checkers` and `check_new_rs_state` set those).
    pub(crate) fn reload_defaults(&mut self) {
        self.is_up = true;
        self.retry_it = 0;
    }

    /// The type's `compare` function (`compare_tcp_check`, `compare_http_check` — shared by
    /// HTTP_GET and SSL_GET, which have the same type — `compare_misc_check`): whether
    /// `self` (new) is the same check as `old`, so it takes over `old`'s state on reload.
    pub(crate) fn same_check(&self, old: &Checker) -> bool {
        let conn_same = self.timing.connect_timeout == old.timing.connect_timeout;
        match (&self.kind, &old.kind) {
            (
                Kind::Tcp { target, bind },
                Kind::Tcp {
                    target: t2,
                    bind: b2,
                },
            ) => conn_same && target == t2 && bind == b2,
            (
                Kind::Http {
                    target,
                    bind,
                    vhost,
                    urls,
                    ..
                },
                Kind::Http {
                    target: t2,
                    bind: b2,
                    vhost: v2,
                    urls: u2,
                    ..
                },
            ) => {
                conn_same
                    && target == t2
                    && bind == b2
                    && vhost == v2
                    && urls.len() == u2.len()
                    && urls.iter().zip(u2).all(|(a, b)| same_url(a, b))
            }
            (
                Kind::Misc { argv, dynamic, .. },
                Kind::Misc {
                    argv: a2,
                    dynamic: d2,
                    ..
                },
            ) => dynamic == d2 && argv == a2,
            _ => false,
        }
    }

    /// `migrate_checkers` for one matched pair: take over `old`'s state (its result counts
    /// too). The real server recounts its failed checkers afterwards.
    pub(crate) fn migrate_from(&mut self, old: &Checker) {
        if old.has_run {
            self.set_state(old.is_up);
        }
        self.has_run = old.has_run;
        // "If we have already had sufficient retries for the new retry value, we hadn't
        // already failed, so just require one more failure to trigger failed state."
        if old.retry_it > 0 && self.timing.retry > 0 {
            self.retry_it = if old.retry_it >= self.timing.retry {
                self.timing.retry - 1
            } else {
                old.retry_it
            };
        }
        if let (Kind::Misc { dynamic, .. }, Kind::Misc { .. }) = (&self.kind, &old.kind) {
            // migrate_misc_check.
            self.last_exit_code = old.last_exit_code;
            self.last_ran = old.last_ran;
            if *dynamic && old.last_exit_code != 1 {
                // As keepalived 2.2.7 computes it: an exit code of 0 gives -iweight, not 0.
                let code = i64::from(self.last_exit_code);
                self.cur_weight = code - if code != 0 { 2 } else { 0 } - self.iweight;
            }
        }
        self.successes = old.successes;
        self.failures = old.failures;
    }

    /// The checker's `alpha`.
    pub(crate) fn alpha(&self) -> bool {
        self.timing.alpha
    }

    /// `checker->cur_weight` (misc_dynamic's contribution to the real server's weight).
    pub(crate) fn cur_weight(&self) -> i64 {
        self.cur_weight
    }

    /// `set_checker_state`'s checker half: returns whether `is_up` changed (the real server
    /// then counts one failed checker more or less).
    pub(crate) fn set_state(&mut self, up: bool) -> bool {
        let changed = self.is_up != up;
        self.is_up = up;
        changed
    }

    /// "One failure is enough" (`migrate_checkers` for a checker that has not run).
    pub(crate) fn fail_on_first(&mut self) {
        self.retry_it = self.timing.retry;
    }

    /// Launch time reached: the probe to run, or `None` when the checker is disabled
    /// (then it just re-arms after `delay_loop`, as `tcp_connect_thread` does).
    pub(crate) fn launch(&mut self, now: Instant, id: ProbeId) -> Option<Probe> {
        self.next_run = None;
        if !self.enabled {
            self.next_run = Some(now + self.timing.delay_loop);
            return None;
        }
        let (kind, timeout) = match &self.kind {
            Kind::Tcp { target, bind } => (
                ProbeKind::Tcp {
                    target: *target,
                    bind: *bind,
                },
                self.timing.connect_timeout,
            ),
            Kind::Http {
                target,
                tls,
                vhost,
                urls,
                ..
            } => {
                let idx = self.url_it.unwrap_or(0);
                let url = urls.get(idx)?;
                (
                    ProbeKind::Http {
                        target: *target,
                        path: url.path.clone(),
                        virtualhost: url.virtualhost.clone().or_else(|| vhost.clone()),
                        tls: *tls,
                    },
                    self.timing.connect_timeout,
                )
            }
            Kind::Misc {
                command, timeout, ..
            } => {
                self.last_ran = now;
                (
                    ProbeKind::Script {
                        command: command.clone(),
                    },
                    *timeout,
                )
            }
        };
        self.in_flight = Some(id);
        Some(Probe { id, kind, timeout })
    }

    fn update(&mut self, alive: bool, out: &mut Vec<Action>) {
        let was_up = self.is_up;
        let had_run = self.has_run;
        self.has_run = true;
        self.is_up = alive;
        out.push(Action::Update {
            alive,
            was_up,
            had_run,
            alpha: self.timing.alpha,
        });
    }

    /// A probe result: the actions for the real server, in keepalived's order. Results for a
    /// probe that is not in flight are ignored.
    pub(crate) fn on_result(
        &mut self,
        now: Instant,
        id: ProbeId,
        result: &ProbeResult,
    ) -> Vec<Action> {
        if self.in_flight != Some(id) {
            return Vec::new();
        }
        self.in_flight = None;
        if self.succeeded(result) {
            self.successes += 1;
        } else {
            self.failures += 1;
        }
        let mut out = Vec::new();
        let delay = match self.kind {
            Kind::Tcp { .. } => self.tcp_result(result, &mut out),
            Kind::Http { .. } => self.http_result(result, &mut out),
            Kind::Misc { .. } => {
                let d = self.misc_result(result, &mut out);
                // misc_check_child_thread: the next run is timed from the script's start.
                let next = self.last_ran + d;
                self.next_run = Some(if next <= now {
                    now + Duration::from_micros(1)
                } else {
                    next
                });
                return out;
            }
        };
        self.next_run = Some(now + delay);
        out
    }

    /// check_tcp.c: `tcp_check_thread` + `tcp_epilog`.
    fn tcp_result(&mut self, result: &ProbeResult, out: &mut Vec<Action>) -> Duration {
        let success = matches!(result, ProbeResult::Connected);
        if !success && self.is_up && self.log_all_failures {
            let what = if matches!(result, ProbeResult::Timeout) {
                "timeout"
            } else {
                "failed"
            };
            out.push(Action::Log(format!(
                "TCP connection to {} {what}.",
                self.name
            )));
        }
        let delay;
        if success || self.retry_it >= self.timing.retry {
            delay = self.timing.delay_loop;
            self.retry_it = 0;
            if success && (!self.is_up || !self.has_run) {
                out.push(Action::Log(format!(
                    "TCP connection to {} success.",
                    self.name
                )));
                self.update(true, out);
            } else if !success && (self.is_up || !self.has_run) {
                if self.timing.retry > 0 && self.has_run {
                    out.push(Action::Log(format!(
                        "TCP_CHECK on service {} failed after {} retries.",
                        self.name, self.timing.retry
                    )));
                } else {
                    out.push(Action::Log(format!(
                        "TCP_CHECK on service {} failed.",
                        self.name
                    )));
                }
                self.update(false, out);
            }
        } else {
            delay = self.timing.delay_before_retry;
            self.retry_it += 1;
        }
        self.has_run = true;
        delay
    }

    /// check_http.c: `http_handle_response` / `timeout_epilog` / `epilog`.
    fn http_result(&mut self, result: &ProbeResult, out: &mut Vec<Action>) -> Duration {
        let Kind::Http { urls, .. } = &self.kind else {
            return self.timing.delay_loop;
        };
        let idx = self.url_it.unwrap_or(0);
        let Some(url) = urls.get(idx) else {
            return self.timing.delay_loop;
        };
        match http_failure(url, result) {
            Some(msg) => {
                // timeout_epilog
                if self.is_up || !self.has_run {
                    if self.log_all_failures {
                        out.push(Action::Log(format!("{msg} server {}.", self.name)));
                    }
                    self.has_run = true;
                    self.http_epilog(Register::Retry, out)
                } else {
                    // "do not retry if server is already known as dead"
                    self.http_epilog(Register::Failed, out)
                }
            }
            None => {
                if !self.is_up {
                    let msg = if url.digest.is_some() {
                        "MD5 digest"
                    } else {
                        "HTTP status code"
                    };
                    out.push(Action::Log(format!(
                        "{msg} success to {} url({})",
                        self.name, url.path
                    )));
                }
                self.http_epilog(Register::New, out)
            }
        }
    }

    fn http_epilog(&mut self, method: Register, out: &mut Vec<Action>) -> Duration {
        let nurls = match &self.kind {
            Kind::Http { urls, .. } => urls.len(),
            _ => 1,
        };
        match method {
            Register::New => {
                self.url_it = match self.url_it {
                    Some(i) if i + 1 < nurls => Some(i + 1),
                    _ => None,
                };
                self.retry_it = 0;
            }
            Register::Retry => self.retry_it += 1,
            Register::Failed => {}
        }
        if method == Register::New && self.url_it.is_none() && self.failed_url.is_none() {
            // All urls checked successfully.
            if !self.is_up || !self.has_run {
                out.push(Action::Log(format!(
                    "Remote Web server {} succeed on service.",
                    self.name
                )));
                self.update(true, out);
                self.has_run = true;
            }
            self.url_it = Some(0);
            self.retry_it = 0;
        } else if method == Register::Retry && self.retry_it > self.timing.retry {
            if self.is_up || !self.has_run {
                if self.has_run && self.timing.retry > 0 {
                    out.push(Action::Log(format!(
                        "HTTP_CHECK on service {} failed after {} retries.",
                        self.name,
                        self.retry_it - 1
                    )));
                } else {
                    out.push(Action::Log(format!(
                        "HTTP_CHECK on service {} failed.",
                        self.name
                    )));
                }
                self.update(false, out);
            }
            self.failed_url = self.url_it;
        } else if method == Register::New && self.failed_url.is_some() {
            // The failed url answers again: check all the urls from the first.
            self.failed_url = None;
            self.url_it = Some(0);
            self.retry_it = 0;
        }
        if method == Register::New {
            if !self.has_run {
                self.retry_it = self.timing.retry;
            }
            self.timing.delay_loop
        } else if self.failed_url.is_some() {
            self.timing.delay_before_retry.max(self.timing.delay_loop)
        } else {
            self.timing.delay_before_retry
        }
    }

    /// check_misc.c: `misc_check_child_thread`. Returns the delay from the script's start.
    fn misc_result(&mut self, result: &ProbeResult, out: &mut Vec<Action>) -> Duration {
        let Kind::Misc {
            program, dynamic, ..
        } = &self.kind
        else {
            return self.timing.delay_loop;
        };
        let dynamic = *dynamic;
        let script = program.clone();
        let mut exit_type: Option<&str> = None;
        let mut success = false;
        let mut reason: Option<u32> = None;
        let mut message_only = false;
        match result {
            ProbeResult::Exit(Some(code)) => {
                // WEXITSTATUS: the low 8 bits.
                let status = (*code & 0xff) as u32;
                if misc_success(status, dynamic) {
                    if status != self.last_exit_code {
                        let new_cur = if status != 0 {
                            i64::from(status) - 2 - self.iweight
                        } else {
                            0
                        };
                        let delta = new_cur - self.cur_weight;
                        self.cur_weight = new_cur;
                        out.push(Action::Weight(delta));
                        self.last_exit_code = status;
                    }
                    if !self.is_up || !self.has_run {
                        exit_type = Some("succeeded");
                        success = true;
                    }
                    self.retry_it = 0;
                } else if self.is_up || !self.has_run {
                    exit_type = Some("failed");
                    reason = Some(status);
                    if self.retry_it < self.timing.retry {
                        self.retry_it += 1;
                        if self.log_all_failures {
                            message_only = true;
                        } else {
                            exit_type = None;
                        }
                    } else {
                        self.retry_it = 0;
                        out.push(Action::SilentWeight(-self.cur_weight));
                        self.cur_weight = 0;
                        self.last_exit_code = status;
                    }
                }
            }
            // Killed (our timeout) or a result that is not an exit status: a forced termination.
            _ => {
                if self.is_up || !self.has_run {
                    exit_type = Some("timed out");
                    if self.retry_it < self.timing.retry {
                        self.retry_it += 1;
                        if self.log_all_failures {
                            message_only = true;
                        } else {
                            exit_type = None;
                        }
                    } else {
                        self.retry_it = 0;
                    }
                }
            }
        }
        if let Some(exit_type) = exit_type {
            let retry = self.timing.retry;
            let message = if success {
                String::new()
            } else if retry > 0 {
                let word = if retry == 1 { "retry" } else { "retries" };
                match self.retry_it {
                    1 => format!(", will do {retry} {word}"),
                    n if n > 1 => format!(" on retry {}/{retry}", n - 1),
                    _ => format!(" after {retry} {word}"),
                }
            } else {
                " with retry disabled".to_string()
            };
            let line = match reason {
                Some(code) => format!(
                    "Misc check for [{} VS {}] by [{script}] {exit_type}{message} (exited with status {code}).",
                    self.name, self.vs_name
                ),
                None => format!(
                    "Misc check for [{} VS {}] by [{script}] {exit_type}{message}.",
                    self.name, self.vs_name
                ),
            };
            out.push(Action::Log(line));
            if !message_only {
                self.update(success, out);
                if !success {
                    self.cur_weight = 0;
                }
            }
        }
        self.has_run = true;
        if self.retry_it > 0 {
            self.timing.delay_before_retry
        } else {
            self.timing.delay_loop
        }
    }
}

/// `http_handle_response` / `timeout_epilog`: why an HTTP probe of `url` failed (the start
/// of keepalived's log line), or `None` for a success.
fn http_failure(url: &UrlCheck, result: &ProbeResult) -> Option<&'static str> {
    match result {
        ProbeResult::Http { status, digest } => {
            if !url.accepts_status(*status) {
                Some("HTTP status code error to")
            } else if url
                .digest
                .as_deref()
                .is_some_and(|d| !d.eq_ignore_ascii_case(digest))
            {
                Some("MD5 digest error to")
            } else {
                None
            }
        }
        ProbeResult::Timeout => Some("Timeout connecting"),
        ProbeResult::ConnectFailed => Some("Connection failed"),
        ProbeResult::Connected | ProbeResult::Exit(_) => Some("Read, no data received from "),
    }
}

/// `misc_check_child_thread`: whether an exit status (low 8 bits) counts as a success.
fn misc_success(status: u32, dynamic: bool) -> bool {
    status == 0 || (dynamic && status >= 2)
}

/// `compare_http_check` on one url: the same path, digest, accepted status codes and
/// virtualhost.
fn same_url(a: &UrlCheck, b: &UrlCheck) -> bool {
    a.path == b.path
        && match (&a.digest, &b.digest) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            (None, None) => true,
            _ => false,
        }
        && (100..=599).all(|s| a.accepts_status(s) == b.accepts_status(s))
        && a.virtualhost == b.virtualhost
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Register {
    New,
    Retry,
    Failed,
}
