//! The observation stream a scenario run is judged from.
//!
//! A backend — the simulator today, the netns harness next — runs a scenario and reports
//! what it saw as [`Observation`]s, each stamped with the scenario's clock (time since the
//! run began): log lines per host, VRRP state changes, VIPs a host gained or lost, IPVS
//! table snapshots (structured, as `ipvsadm` holds them), request outcomes from the load
//! generator (folded into [`Metrics`] as they finish, so a long run's memory does not grow
//! with its requests), fault markers, and the invariant checks' findings. [`crate::judge`] turns a
//! [`RunRecord`] (the stream plus what the backend adds) into a [`crate::judge::Report`]
//! without knowing which backend produced it.
//!
//! What a backend promises:
//! - observations of one kind on one host come in the order they happened;
//! - a director's process start and end are [`Observed::Process`] (the VRRP states it
//!   reported before an end no longer hold);
//! - an [`Observed::IpvsTable`] for every director at every snapshot time the scenario
//!   asks for, and one more for every director at the end of the run;
//! - [`RunRecord::requests`] holds every finished request, in finish order, and the
//!   requests the clients started (answered or not).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hdrhistogram::Histogram;
use lvs_core::ipvs::{FwdMethod, ServiceKey, SockAddr};
use lvs_core::vrrp::VrrpState;
use lvs_core::Instant;

/// One thing a backend saw happen.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Observation {
    /// When, on the scenario's clock.
    pub t: Duration,
    /// The host it happened on (empty for the network as a whole).
    pub host: String,
    /// What.
    pub what: Observed,
}

/// The kinds of observation.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Observed {
    /// One line of the host's keepalived log, as syslog holds it.
    Log {
        /// The whole line.
        line: String,
    },
    /// The director process started (true) or went away (false).
    Process {
        /// Running now.
        running: bool,
    },
    /// A VRRP instance or sync group entered a state.
    VrrpState {
        /// Instance or group name.
        name: String,
        /// A sync group, not an instance.
        group: bool,
        /// The new state.
        state: VrrpState,
    },
    /// A VIP was added to or removed from an interface of the host.
    Vip {
        /// The interface; `None` for all of them (the process died and took its
        /// addresses along).
        iface: Option<String>,
        /// The address.
        addr: IpAddr,
        /// Added (true) or removed (false).
        added: bool,
    },
    /// The director's IPVS table at this time.
    IpvsTable {
        /// The table; `None` when no running director had one to show.
        table: Option<IpvsTable>,
        /// Whether the director process was running.
        running: bool,
        /// The same table as `ipvsadm -L -n` printed it, for the report.
        listing: Option<String>,
    },
    /// What a snapshot's other commands printed on the director (`ipvsadm -L -n --stats`,
    /// `--rate`, `-c`, `ip addr`; `ipvsadm -L -n` is the [`Observed::IpvsTable`]).
    Shown {
        /// The command line ([`crate::Show::command`]).
        command: String,
        /// Its output; `None` when nothing was there to ask (keepalived not running, so no
        /// table).
        output: Option<String>,
        /// Whether the director process was running.
        running: bool,
    },
    /// A fault the scenario injected, as the backend describes it.
    Fault {
        /// What was done.
        fault: String,
    },
    /// A safety or liveness violation the backend's checks found.
    Violation(Violation),
    /// The cluster converged (one MASTER per instance in every connected part, one holder
    /// per VIP, gateways' ARP pointing at it) for the first time after the scenario's last
    /// action, as the `converge_within` expectation asks.
    Converged,
}

/// An IPVS table as `ipvsadm` holds it: services and their destinations.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct IpvsTable {
    /// Virtual services, in the table's order.
    pub services: Vec<IpvsService>,
}

/// One virtual service.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IpvsService {
    /// Protocol, address and port, or firewall mark.
    pub key: ServiceKey,
    /// Scheduler name (`rr`, `wrr`, ...).
    pub scheduler: String,
    /// Persistence timeout in seconds, if persistent.
    pub persistence: Option<u32>,
    /// Destinations, in the table's order.
    pub dests: Vec<IpvsDest>,
}

/// One destination (real server) of a service.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IpvsDest {
    /// Address and port.
    pub addr: SockAddr,
    /// Forwarding method.
    pub fwd: FwdMethod,
    /// Weight (0: quiescent).
    pub weight: i32,
    /// Active connections.
    pub active: u32,
    /// Inactive connections.
    pub inactive: u32,
}

impl IpvsTable {
    /// Every destination of every service, once each.
    pub fn destinations(&self) -> impl Iterator<Item = SockAddr> + '_ {
        self.services
            .iter()
            .flat_map(|s| s.dests.iter().map(|d| d.addr))
    }
}

/// What was broken.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum ViolationKind {
    /// Two or more MASTERs of one instance in one connected part.
    SplitBrain,
    /// Two or more holders of one VIP in one connected part.
    DuplicateVip,
    /// A SYN forwarded to a real server its director had marked down.
    ConnToDownServer,
    /// No convergence within a stated bound.
    Liveness,
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// When it was detected.
    pub t: Instant,
    /// Which invariant.
    pub kind: ViolationKind,
    /// Human-readable detail.
    pub detail: String,
}

/// A run as a backend hands it to the judge.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    /// Seed used.
    pub seed: u64,
    /// Scenario time the run ended at.
    pub end: Duration,
    /// What was seen, in time order.
    pub observations: Vec<Observation>,
    /// The clients' requests.
    pub requests: Metrics,
    /// Events the backend processed (0 when it does not count them).
    pub events: u64,
    /// A timeline picture (SVG), when asked for.
    pub svg: Option<String>,
}

/// Request and connection totals, accumulated one finished request at a time, in the order
/// requests finish. Memory grows with the failures (each outage is kept), not with the
/// requests: latencies go into a fixed-precision histogram.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Requests started (set by the backend from its clients' counters).
    pub requests_sent: u64,
    /// Requests answered.
    pub requests_ok: u64,
    /// Requests failed.
    pub requests_failed: u64,
    /// Failed requests whose connection had been established.
    pub connections_broken: u64,
    /// Failures by reason.
    pub failures: BTreeMap<String, u64>,
    /// Responses per real server (every known server listed, zeros included).
    pub per_server: BTreeMap<String, u64>,
    /// Latencies of answered requests (first SYN to the answer), nanoseconds, 3 significant
    /// digits.
    #[serde(skip)]
    pub latency: Histogram<u64>,
    /// Largest successful request latency, nanoseconds (exact).
    pub latency_max_ns: u64,
    /// Every outage a client saw, in the order they opened.
    pub outages: Vec<Outage>,
    /// Per target address: the last answer's finish, and the open outage (index in
    /// `outages`).
    #[serde(skip)]
    targets: Vec<(IpAddr, Option<Instant>, Option<usize>)>,
}

/// A stretch of time one target (VIP) did not answer: from the start of the first request
/// that failed to the finish of the first answer after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Outage {
    /// The address the clients sent to.
    pub target: IpAddr,
    /// When the first failed request was sent.
    pub from: Instant,
    /// When the first answer after it came (None: none by the end of the run).
    pub until: Option<Instant>,
    /// When the last answer before the failure came (None: there was none).
    pub last_ok_before: Option<Instant>,
}

impl Outage {
    /// Its length, up to `end` when it never closed.
    pub fn len(&self, end: Instant) -> Duration {
        self.until.unwrap_or(end) - self.from
    }

    /// Whether a VIP move at `moved` (the address went to another host) is what this outage
    /// is about: no answer came between the move and the outage, and it was still open at
    /// the move or opened after it.
    pub fn spans_move(&self, moved: Instant) -> bool {
        self.last_ok_before.is_none_or(|ok| ok <= moved) && self.until.is_none_or(|u| u >= moved)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests_sent: 0,
            requests_ok: 0,
            requests_failed: 0,
            connections_broken: 0,
            failures: BTreeMap::new(),
            per_server: BTreeMap::new(),
            // 1 ns .. 2^63 ns, auto-resizing: never fails to record.
            latency: Histogram::new(3).expect("3 significant digits is a valid precision"),
            latency_max_ns: 0,
            outages: Vec::new(),
            targets: Vec::new(),
        }
    }
}

impl Metrics {
    fn target(&mut self, target: IpAddr) -> &mut (IpAddr, Option<Instant>, Option<usize>) {
        let i = match self.targets.iter().position(|t| t.0 == target) {
            Some(i) => i,
            None => {
                self.targets.push((target, None, None));
                self.targets.len() - 1
            }
        };
        &mut self.targets[i]
    }

    /// Account a request to `target` that `server` answered: sent at `started`, answered at
    /// `finished`.
    #[inline]
    pub fn record_ok(&mut self, target: IpAddr, server: &str, started: Instant, finished: Instant) {
        self.requests_ok += 1;
        match self.per_server.get_mut(server) {
            Some(n) => *n += 1,
            None => {
                self.per_server.insert(server.to_string(), 1);
            }
        }
        let latency = (finished - started).as_nanos() as u64;
        // Auto-resizing: grows to the largest value, so recording cannot fail.
        let _ = self.latency.record(latency.max(1));
        self.latency_max_ns = self.latency_max_ns.max(latency);
        let t = self.target(target);
        t.1 = Some(finished);
        if let Some(open) = t.2.take() {
            self.outages[open].until = Some(finished);
        }
    }

    /// Account a request to `target` sent at `started` that failed for `reason`; `broken`
    /// when its connection had been established. (An outage runs from the first failed
    /// request's send to the next answer, so when it failed does not matter.)
    #[inline]
    pub fn record_failed(&mut self, target: IpAddr, reason: &str, broken: bool, started: Instant) {
        self.requests_failed += 1;
        if broken {
            self.connections_broken += 1;
        }
        match self.failures.get_mut(reason) {
            Some(n) => *n += 1,
            None => {
                self.failures.insert(reason.to_string(), 1);
            }
        }
        let next = self.outages.len();
        let t = self.target(target);
        match t.2 {
            Some(open) => {
                let o = &mut self.outages[open];
                o.from = o.from.min(started);
            }
            None => {
                t.2 = Some(next);
                let last_ok_before = t.1;
                self.outages.push(Outage {
                    target,
                    from: started,
                    until: None,
                    last_ok_before,
                });
            }
        }
    }

    /// Requests neither answered nor failed yet: `sent - ok - failed`.
    pub fn in_flight(&self) -> u64 {
        self.requests_sent
            .saturating_sub(self.requests_ok + self.requests_failed)
    }

    /// The latency below which fraction `q` (0..=1) of the answered requests came, or None
    /// when nothing was answered.
    pub fn latency_quantile(&self, q: f64) -> Option<Duration> {
        (self.requests_ok > 0).then(|| {
            Duration::from_nanos(self.latency.value_at_quantile(q).min(self.latency_max_ns))
        })
    }

    /// The first outage's length (whatever caused it), if it closed.
    pub fn failover_time(&self) -> Option<Duration> {
        let o = self.outages.first()?;
        Some(o.until? - o.from)
    }

    /// Jain's fairness index over `per_server`: (Σx)² / (n·Σx²); 1 is perfectly even.
    pub fn jain_index(&self) -> Option<f64> {
        jain(self.per_server.values().map(|v| *v as f64))
    }

    /// Answers and share of all answers (0..=1) per server: every server that answered,
    /// and each of `also` (servers that may have answered nothing) with what it has.
    pub fn shares<'a>(
        &self,
        also: impl IntoIterator<Item = &'a str>,
    ) -> BTreeMap<String, (u64, f64)> {
        let mut counts = self.per_server.clone();
        for name in also {
            counts.entry(name.to_string()).or_insert(0);
        }
        let total: u64 = counts.values().sum();
        counts
            .into_iter()
            .map(|(k, n)| {
                let share = if total == 0 {
                    0.0
                } else {
                    n as f64 / total as f64
                };
                (k, (n, share))
            })
            .collect()
    }
}

/// Jain's fairness index of `xs`; `None` for no values or all zeros.
pub fn jain(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut n, mut s, mut s2) = (0usize, 0.0, 0.0);
    for x in xs {
        n += 1;
        s += x;
        s2 += x * x;
    }
    (n > 0 && s2 > 0.0).then(|| s * s / (n as f64 * s2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_index_bounds() {
        assert_eq!(jain([5.0, 5.0, 5.0].into_iter()), Some(1.0));
        assert_eq!(jain([9.0, 0.0, 0.0].into_iter()), Some(1.0 / 3.0));
        assert_eq!(jain(std::iter::empty()), None);
    }

    const VIP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 100));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 200));

    fn s(secs: u64) -> Instant {
        Instant::from_secs(secs)
    }

    #[test]
    fn an_outage_runs_from_the_first_failed_send_to_the_next_answer() {
        let mut m = Metrics::default();
        m.record_ok(VIP, "rs1", s(0), s(1));
        // Sent at 2 and 3, failed at 5 and 6 (finish order); the next answer at 9.
        m.record_failed(VIP, "reset", true, s(3));
        m.record_failed(VIP, "connect_timeout", false, s(2));
        // Another VIP's answers do not close this VIP's outage.
        m.record_ok(OTHER, "rs3", s(6), s(7));
        m.record_ok(VIP, "rs2", s(6), s(9));
        assert_eq!(
            m.outages,
            [Outage {
                target: VIP,
                from: s(2),
                until: Some(s(9)),
                last_ok_before: Some(s(1)),
            }]
        );
        assert_eq!(m.failover_time(), Some(Duration::from_secs(7)));
        assert_eq!((m.requests_failed, m.connections_broken), (2, 1));
        assert_eq!(m.failures.get("reset"), Some(&1));
        assert_eq!(m.latency_max_ns, 3_000_000_000);
        assert_eq!(m.shares([]).get("rs1"), Some(&(1, 1.0 / 3.0)));
        let padded = m.shares(["rs1", "rs9"]);
        assert_eq!(padded.get("rs9"), Some(&(0, 0.0)));
        assert_eq!(padded.get("rs2"), Some(&(1, 1.0 / 3.0)));
        m.requests_sent = 7;
        assert_eq!(m.in_flight(), 2);
    }

    #[test]
    fn an_outage_belongs_to_a_move_when_no_answer_came_between() {
        let o = Outage {
            target: VIP,
            from: s(10),
            until: Some(s(20)),
            last_ok_before: Some(s(8)),
        };
        assert!(
            o.spans_move(s(9)),
            "no answer between the move and the failure"
        );
        assert!(o.spans_move(s(15)), "open at the move");
        assert!(!o.spans_move(s(7)), "an answer came after the move");
        assert!(!o.spans_move(s(21)), "closed before the move");
        let open = Outage { until: None, ..o };
        assert!(open.spans_move(s(100)));
        assert_eq!(open.len(s(30)), Duration::from_secs(20));
    }

    #[test]
    fn latency_quantiles_come_from_the_histogram() {
        let mut m = Metrics::default();
        assert_eq!(m.latency_quantile(0.5), None);
        for ms in 1..=100 {
            m.record_ok(VIP, "rs1", s(0), Instant::from_millis(ms));
        }
        let q = |q| m.latency_quantile(q).unwrap().as_secs_f64() * 1000.0;
        assert!((q(0.5) - 50.0).abs() < 0.1, "{}", q(0.5));
        assert!((q(0.99) - 99.0).abs() < 0.1, "{}", q(0.99));
        assert_eq!(q(1.0), 100.0);
    }

    #[test]
    fn a_table_lists_every_destination() {
        let dest = |a: [u8; 4]| IpvsDest {
            addr: SockAddr(IpAddr::from(a), 80),
            fwd: FwdMethod::Route,
            weight: 1,
            active: 0,
            inactive: 0,
        };
        let t = IpvsTable {
            services: vec![IpvsService {
                key: ServiceKey::Fwmark {
                    mark: 1,
                    ipv6: false,
                },
                scheduler: "rr".into(),
                persistence: None,
                dests: vec![dest([10, 0, 0, 2]), dest([10, 0, 0, 1])],
            }],
        };
        let got: Vec<String> = t.destinations().map(|a| a.to_string()).collect();
        assert_eq!(got, ["10.0.0.2:80", "10.0.0.1:80"]);
    }
}
