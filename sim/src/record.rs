//! What a run leaves behind: log lines, a JSON trace, request metrics (the judge's
//! [`Metrics`], accounted here from the clients' records).

use std::sync::Arc;

use lvs_core::director::{LogSource, StateChangeKind, VrrpState};
use lvs_core::ipvs::IpvsChange;
use lvs_core::Instant;

use crate::client::{FailReason, Outcome, RequestRecord};
use crate::invariants::Violation;

pub use lvs_scenarios::observe::Metrics;

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

/// The name a failure reason is counted under (`connect_timeout`, `timeout`, `reset`).
pub fn fail_reason_name(reason: FailReason) -> &'static str {
    match reason {
        FailReason::ConnectTimeout => "connect_timeout",
        FailReason::Timeout => "timeout",
        FailReason::Reset => "reset",
    }
}

/// Account one finished request in `m`.
#[inline]
pub fn account(m: &mut Metrics, r: &RequestRecord) {
    let target = std::net::IpAddr::V4(*r.target.ip());
    match &r.outcome {
        Outcome::Ok { server } => m.record_ok(target, server, r.started, r.finished),
        Outcome::Failed { reason, broken } => m.record_failed(
            target,
            fail_reason_name(*reason),
            *broken,
            r.started,
            r.finished,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_record_is_accounted_against_its_target() {
        let mut m = Metrics::default();
        let rec = |s: u64, f: u64, outcome| RequestRecord {
            started: Instant::from_secs(s),
            finished: Instant::from_secs(f),
            port: 1,
            target: "10.0.0.100:80".parse().unwrap(),
            outcome,
        };
        let failed = |reason| Outcome::Failed {
            reason,
            broken: reason == FailReason::Reset,
        };
        account(&mut m, &rec(2, 5, failed(FailReason::Reset)));
        account(&mut m, &rec(3, 6, failed(FailReason::ConnectTimeout)));
        let ok = Outcome::Ok {
            server: "rs2".into(),
        };
        account(&mut m, &rec(6, 9, ok));
        assert_eq!(m.failover_time(), Some(Duration::from_secs(7)));
        assert_eq!(m.outages[0].target.to_string(), "10.0.0.100");
        assert_eq!((m.requests_failed, m.connections_broken), (2, 1));
        assert_eq!(m.failures.get("connect_timeout"), Some(&1));
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
