//! What a run leaves behind: log lines, a JSON trace, request metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lvs_core::director::{LogSource, StateChangeKind, VrrpState};
use lvs_core::ipvs::IpvsChange;
use lvs_core::Instant;

use crate::client::{FailReason, Outcome, RequestRecord};
use crate::invariants::Violation;

/// One log line as a host's syslog would hold it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// Virtual time.
    pub t: Instant,
    /// Host name.
    pub host: String,
    /// The whole line (see [`format_log`]).
    pub line: String,
}

/// keepalived's process name for a log source.
pub fn process_name(source: LogSource) -> &'static str {
    match source {
        LogSource::Main => "Keepalived",
        LogSource::Vrrp => "Keepalived_vrrp",
        LogSource::Healthcheckers => "Keepalived_healthcheckers",
    }
}

/// A syslog line in keepalived's shape with the wall-clock date replaced by virtual time:
/// `   12.345 lvs1 Keepalived_vrrp[1002]: (VI_1) Entering MASTER STATE`.
///
/// Seconds are right-aligned to 9 columns (millisecond precision) so lines sort and align;
/// the PID is deterministic: see [`pid`].
pub fn format_log(t: Instant, host: &str, source: LogSource, pid: u32, text: &str) -> String {
    format!(
        "{:>9} {} {}[{}]: {}",
        t.to_string(),
        host,
        process_name(source),
        pid,
        text
    )
}

/// Deterministic PID of a keepalived process: parent `1000 + 100 * host + 3 * restarts`,
/// then the checker child (+1) and the VRRP child (+2), the order keepalived 2.2 forks them.
pub fn pid(host: usize, restarts: u32, source: LogSource) -> u32 {
    let base = 1000 + 100 * host as u32 + 3 * restarts;
    base + match source {
        LogSource::Main => 0,
        LogSource::Healthcheckers => 1,
        LogSource::Vrrp => 2,
    }
}

/// One trace entry.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TraceEntry {
    /// Virtual time in nanoseconds.
    pub t: u64,
    /// Host concerned (empty for network-wide events); shared with every entry of the host.
    pub host: Arc<str>,
    /// What happened.
    pub event: TraceEvent,
}

/// Trace event kinds.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TraceEvent {
    /// A director log line.
    Log {
        /// The formatted line.
        line: String,
    },
    /// A VRRP transition (Output::Notify).
    Notify {
        /// INSTANCE or GROUP.
        kind: StateChangeKind,
        /// Its name.
        name: String,
        /// New state.
        state: VrrpState,
        /// Priority.
        priority: u8,
    },
    /// A VIP added to a host.
    AddVip {
        /// Interface.
        iface: String,
        /// Address.
        addr: String,
    },
    /// A VIP removed from a host.
    DelVip {
        /// Interface.
        iface: String,
        /// Address.
        addr: String,
    },
    /// An IPVS table change.
    Ipvs {
        /// The change.
        change: IpvsChange,
    },
    /// A probe answered.
    Probe {
        /// Probe id.
        id: u64,
        /// Outcome, Debug-formatted.
        result: String,
    },
    /// The director process started (true) or went away (false: killed or stopped).
    Process {
        /// Running now.
        running: bool,
    },
    /// A real server's service started or stopped.
    Service {
        /// Port.
        port: u16,
        /// Running now.
        running: bool,
    },
    /// A fault injected.
    Fault {
        /// Description.
        fault: String,
    },
    /// A request finished.
    Request {
        /// Its record.
        record: RequestRecord,
    },
    /// A safety or liveness violation.
    Violation {
        /// Its record.
        violation: Violation,
    },
}

/// Request and connection metrics.
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
    /// Account one finished request.
    pub fn record(&mut self, r: &RequestRecord) {
        match &r.outcome {
            Outcome::Ok { server } => {
                self.requests_ok += 1;
                match self.per_server.get_mut(&**server) {
                    Some(n) => *n += 1,
                    None => {
                        self.per_server.insert(server.to_string(), 1);
                    }
                }
                let lat = (r.finished - r.started).as_nanos() as u64;
                self.latency_sum_ns += lat;
                self.latency_max_ns = self.latency_max_ns.max(lat);
                if self.first_failure.is_some() && self.recovered_at.is_none() {
                    self.recovered_at = Some(r.finished);
                }
            }
            Outcome::Failed { reason, broken } => {
                self.requests_failed += 1;
                if *broken {
                    self.connections_broken += 1;
                }
                let name = match reason {
                    FailReason::ConnectTimeout => "connect_timeout",
                    FailReason::Timeout => "timeout",
                    FailReason::Reset => "reset",
                };
                *self.failures.entry(name.to_string()).or_insert(0) += 1;
                if self.first_failure.is_none() {
                    self.first_failure = Some(r.finished);
                }
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
        let rec = |s: u64, f: u64, outcome| RequestRecord {
            started: Instant::from_secs(s),
            finished: Instant::from_secs(f),
            port: 1,
            outcome,
        };
        m.record(&rec(
            0,
            1,
            Outcome::Ok {
                server: "rs1".into(),
            },
        ));
        m.record(&rec(
            1,
            5,
            Outcome::Failed {
                reason: FailReason::Reset,
                broken: true,
            },
        ));
        m.record(&rec(
            2,
            6,
            Outcome::Failed {
                reason: FailReason::ConnectTimeout,
                broken: false,
            },
        ));
        m.record(&rec(
            6,
            9,
            Outcome::Ok {
                server: "rs2".into(),
            },
        ));
        assert_eq!(m.failover_time(), Some(Duration::from_secs(4)));
        assert_eq!((m.requests_failed, m.connections_broken), (2, 1));
    }

    #[test]
    fn log_line_shape() {
        let l = format_log(
            Instant::from_millis(12_345),
            "lvs1",
            LogSource::Vrrp,
            1002,
            "x",
        );
        assert_eq!(l, "   12.345 lvs1 Keepalived_vrrp[1002]: x");
    }
}
