//! The observation stream a scenario run is judged from.
//!
//! A backend — the simulator today, the netns harness next — runs a scenario and reports
//! what it saw as [`Observation`]s, each stamped with the scenario's clock (time since the
//! run began): log lines per host, VRRP state changes, VIPs a host gained or lost, IPVS
//! table snapshots (structured, as `ipvsadm` holds them), request outcomes from the load
//! generator, fault markers, and the invariant checks' findings. [`crate::judge`] turns a
//! [`RunRecord`] (the stream plus what the backend adds) into a [`crate::judge::Report`]
//! without knowing which backend produced it.
//!
//! What a backend promises:
//! - observations of one kind on one host come in the order they happened;
//! - a director's process start and end are [`Observed::Process`] (the VRRP states it
//!   reported before an end no longer hold);
//! - an [`Observed::IpvsTable`] for every director at every snapshot time the scenario
//!   asks for, and one more for every director at the end of the run;
//! - one [`Observed::RequestsSent`] per client at the end (requests started, answered or
//!   not).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

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
    /// A request finished (answered or given up) at `t`.
    Request(RequestOutcome),
    /// A client's total of requests started, reported at the end of the run.
    RequestsSent {
        /// How many.
        count: u64,
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

/// How one request ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RequestOutcome {
    /// The client's port.
    pub port: u16,
    /// First SYN to answer or give-up.
    pub latency: Duration,
    /// Answered or failed.
    pub result: RequestResult,
}

/// Answered, by whom, or failed, why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestResult {
    /// Answered by this real server.
    Answered {
        /// The server's host name.
        server: String,
    },
    /// Failed.
    Failed {
        /// `connect_timeout`, `timeout` or `reset`.
        reason: String,
        /// The connection had been established (broken, not refused).
        broken: bool,
    },
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
    /// Events the backend processed (0 when it does not count them).
    pub events: u64,
    /// The backend's own trace (JSON), when asked for.
    pub trace_json: Option<String>,
    /// A timeline picture (SVG), when asked for.
    pub svg: Option<String>,
}

/// Request and connection totals, accumulated one finished request at a time.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Requests started.
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
    /// Sum of successful request latencies, nanoseconds.
    pub latency_sum_ns: u64,
    /// Largest successful request latency, nanoseconds.
    pub latency_max_ns: u64,
    /// First failure seen.
    pub first_failure: Option<Instant>,
    /// First success after the first failure.
    pub recovered_at: Option<Instant>,
}

impl Metrics {
    /// Account a request `server` answered at `finished` after `latency_ns`.
    #[inline]
    pub fn record_ok(&mut self, server: &str, latency_ns: u64, finished: Instant) {
        self.requests_ok += 1;
        match self.per_server.get_mut(server) {
            Some(n) => *n += 1,
            None => {
                self.per_server.insert(server.to_string(), 1);
            }
        }
        self.latency_sum_ns += latency_ns;
        self.latency_max_ns = self.latency_max_ns.max(latency_ns);
        if self.first_failure.is_some() && self.recovered_at.is_none() {
            self.recovered_at = Some(finished);
        }
    }

    /// Account a request that failed at `finished` for `reason`; `broken` when its
    /// connection had been established.
    #[inline]
    pub fn record_failed(&mut self, reason: &str, broken: bool, finished: Instant) {
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
        if self.first_failure.is_none() {
            self.first_failure = Some(finished);
        }
    }

    /// Account one request outcome observed at `t`.
    pub fn record(&mut self, t: Duration, r: &RequestOutcome) {
        let finished = Instant::from_nanos(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
        match &r.result {
            RequestResult::Answered { server } => {
                let lat = u64::try_from(r.latency.as_nanos()).unwrap_or(u64::MAX);
                self.record_ok(server, lat, finished)
            }
            RequestResult::Failed { reason, broken } => {
                self.record_failed(reason, *broken, finished)
            }
        }
    }

    /// Failover time: first client failure to the first success after it.
    pub fn failover_time(&self) -> Option<Duration> {
        Some(self.recovered_at? - self.first_failure?)
    }

    /// Jain's fairness index over `per_server`: (Σx)² / (n·Σx²); 1 is perfectly even.
    pub fn jain_index(&self) -> Option<f64> {
        jain(self.per_server.values().map(|v| *v as f64))
    }

    /// Share of responses per server, 0..=1.
    pub fn shares(&self) -> BTreeMap<String, f64> {
        let total: u64 = self.per_server.values().sum();
        self.per_server
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if total == 0 {
                        0.0
                    } else {
                        *v as f64 / total as f64
                    },
                )
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

    #[test]
    fn failover_time_spans_first_failure_to_next_success() {
        let mut m = Metrics::default();
        let ok = |server: &str, s: u64| RequestOutcome {
            port: 1,
            latency: Duration::from_secs(s),
            result: RequestResult::Answered {
                server: server.into(),
            },
        };
        let failed = |reason: &str, broken| RequestOutcome {
            port: 1,
            latency: Duration::from_secs(1),
            result: RequestResult::Failed {
                reason: reason.into(),
                broken,
            },
        };
        m.record(Duration::from_secs(1), &ok("rs1", 1));
        m.record(Duration::from_secs(5), &failed("reset", true));
        m.record(Duration::from_secs(6), &failed("connect_timeout", false));
        m.record(Duration::from_secs(9), &ok("rs2", 3));
        assert_eq!(m.failover_time(), Some(Duration::from_secs(4)));
        assert_eq!((m.requests_failed, m.connections_broken), (2, 1));
        assert_eq!(m.failures.get("reset"), Some(&1));
        assert_eq!(m.latency_max_ns, 3_000_000_000);
        assert_eq!(m.shares().get("rs1"), Some(&0.5));
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
