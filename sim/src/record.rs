//! What a run leaves behind: log lines, a JSON trace, request metrics (the judge's
//! [`Metrics`], accounted here from the clients' records).

use std::sync::Arc;

use lvs_core::check::probe::ProbeResult;
use lvs_core::director::{LogSource, StateChangeKind, VrrpState};
use lvs_core::ipvs::{IpvsChange, ServiceKey};
use lvs_core::Instant;

use crate::client::{FailReason, Outcome, RequestRecord};
use crate::invariants::Violation;
use crate::packet::Mac;

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

/// The version of the JSON trace's schema (scenarios/TRACE.md); a change of shape bumps it.
pub const TRACE_VERSION: u32 = 2;

/// One trace entry.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TraceEntry {
    /// Virtual time in nanoseconds.
    #[serde(rename = "t_ns")]
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
        /// New state, as keepalived names it (`MASTER`, `BACKUP`, `FAULT`, ...).
        #[serde(serialize_with = "state_name")]
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
    /// An IPVS table change, as the ipvsadm verb that makes it.
    Ipvs(IpvsRecord),
    /// A probe answered.
    Probe {
        /// Probe id (per director process).
        id: u64,
        /// `TCP_CHECK`, `HTTP_GET`, `SSL_GET` or `script`.
        checker: &'static str,
        /// The real server's `address:port` it checks (the command line for a script).
        target: String,
        /// `connected`, `connect_failed`, `timeout`, `http STATUS DIGEST`, `exit N`, `killed`.
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
    Fault(FaultRecord),
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
    /// A gateway's ARP entry for an address changed (or was first learnt): the MAC the
    /// gateway now sends that address's traffic to. The entry's host is the gateway.
    GatewayArp {
        /// The address.
        ip: String,
        /// The MAC the entry now holds, `02:00:00:00:00:01`.
        mac: String,
        /// The host with an interface of that MAC (null when no host of the run has it).
        owner: Option<String>,
    },
}

/// A MAC address as `ip link` shows it: `02:00:00:00:00:01`.
pub fn mac_text(m: Mac) -> String {
    let p: Vec<String> = m.iter().map(|b| format!("{b:02x}")).collect();
    p.join(":")
}

/// A fault as the trace holds it: its kind and the fields it has, and a description.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct FaultRecord {
    /// `kill`, `stop`, `pause`, `resume`, `restart`, `nic`, `link`, `link_params`,
    /// `partition`, `heal`, `service`, `clock_drift`, `script`.
    pub kind: &'static str,
    /// One line for a reader (`kill director1`, `nic director1 eth0 down`).
    pub description: String,
    /// The interface (nic, link, link_params).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    /// Up / running after it (nic, link, service).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up: Option<bool>,
    /// The service port (service).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Senders and receivers cut off (partition).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    /// Receivers (partition).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Both ways (partition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symmetric: Option<bool>,
    /// The script's command line (script).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The script's exit status from now on, None: killed (script).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// Clock rate offset in parts per million (clock_drift).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppm: Option<i64>,
}

/// An IPVS change as the trace holds it: the ipvsadm verb and its fields.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IpvsRecord {
    /// `add_service`, `edit_service`, `del_service`, `add_dest`, `edit_dest`, `del_dest`.
    pub op: &'static str,
    /// The service as `ipvsadm -L -n` names it: `TCP 10.0.0.1:80`, `FWM 1`.
    pub service: String,
    /// Scheduler (service changes but del).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    /// Persistence timeout in seconds (service changes but del).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistence: Option<u32>,
    /// The real server's `address:port` (destination changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
    /// Weight (add_dest, edit_dest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Forwarding method as ipvsadm prints it: `Route`, `Masq`, `Tunnel`, `Local`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fwd: Option<&'static str>,
}

impl IpvsRecord {
    /// The record of `change`.
    pub fn of(change: &IpvsChange) -> Self {
        let svc = |op, spec: &lvs_core::ipvs::service::ServiceSpec| IpvsRecord {
            op,
            service: service_name(&spec.key),
            scheduler: Some(spec.scheduler.name().to_string()),
            persistence: spec.persistence,
            dest: None,
            weight: None,
            fwd: None,
        };
        let dest =
            |op, key: &ServiceKey, addr: String, d: Option<&lvs_core::ipvs::dest::DestSpec>| {
                IpvsRecord {
                    op,
                    service: service_name(key),
                    scheduler: None,
                    persistence: None,
                    dest: Some(addr),
                    weight: d.map(|d| d.weight),
                    fwd: d.map(|d| d.fwd.ipvsadm_name()),
                }
            };
        match change {
            IpvsChange::AddService(s) => svc("add_service", s),
            IpvsChange::EditService(s) => svc("edit_service", s),
            IpvsChange::DelService(k) => IpvsRecord {
                op: "del_service",
                service: service_name(k),
                scheduler: None,
                persistence: None,
                dest: None,
                weight: None,
                fwd: None,
            },
            IpvsChange::AddDest(k, d) => dest("add_dest", k, sock(d.addr, d.port), Some(d)),
            IpvsChange::EditDest(k, d) => dest("edit_dest", k, sock(d.addr, d.port), Some(d)),
            IpvsChange::DelDest(k, a) => dest("del_dest", k, sock(a.0, a.1), None),
        }
    }
}

fn sock(addr: std::net::IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(addr, port).to_string()
}

/// A service as `ipvsadm -L -n` names it.
fn service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Inet { proto, addr, port } => {
            format!("{} {}", proto.ipvsadm_name(), sock(*addr, *port))
        }
        ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
    }
}

/// A probe result in the trace's words.
pub fn probe_result_text(r: &ProbeResult) -> String {
    match r {
        ProbeResult::Connected => "connected".into(),
        ProbeResult::ConnectFailed => "connect_failed".into(),
        ProbeResult::Timeout => "timeout".into(),
        ProbeResult::Http { status, digest } => format!("http {status} {digest}"),
        ProbeResult::Exit(Some(code)) => format!("exit {code}"),
        ProbeResult::Exit(None) => "killed".into(),
    }
}

fn state_name<S: serde::Serializer>(s: &VrrpState, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

/// The name a failure reason is counted under (`connect_timeout`, `timeout`, `reset`,
/// `refused`).
pub fn fail_reason_name(reason: FailReason) -> &'static str {
    match reason {
        FailReason::ConnectTimeout => "connect_timeout",
        FailReason::Timeout => "timeout",
        FailReason::Reset => "reset",
        FailReason::Refused => "refused",
    }
}

/// Account one finished request in `m`.
#[inline]
pub fn account(m: &mut Metrics, r: &RequestRecord) {
    let target = r.target.ip();
    match &r.outcome {
        Outcome::Ok { server } => m.record_ok(target, server, r.started, r.finished),
        Outcome::Failed { reason, broken } => {
            m.record_failed(target, fail_reason_name(*reason), *broken, r.started)
        }
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

/// What the trace's document says before its events.
#[derive(serde::Serialize)]
pub struct TraceHeader<'a> {
    /// `lvsd-trace`.
    pub schema: &'static str,
    /// [`TRACE_VERSION`].
    pub version: u32,
    /// The lvsd version that wrote it.
    pub lvsd: &'static str,
    /// The scenario's name.
    pub scenario: &'a str,
    /// The seed.
    pub seed: u64,
}

/// What the trace's document says after its events, known at the end of the run.
#[derive(serde::Serialize)]
pub struct TraceTail<'a> {
    /// Virtual time the run ended at.
    pub end_ns: u64,
    /// The clients' requests.
    pub metrics: &'a Metrics,
    /// Jain's fairness index of the responses per real server.
    pub jain_index: Option<f64>,
    /// The first outage's length (client view).
    pub failover_ns: Option<u128>,
    /// Safety and liveness violations found.
    pub violations: &'a [Violation],
}

/// The JSON trace (scenarios/TRACE.md) written as the run goes: the header, each entry as
/// it happens, then the tail. One JSON object; memory does not grow with the run. Write
/// errors are kept and returned by [`TraceWriter::finish`].
pub struct TraceWriter<W: std::io::Write> {
    out: W,
    entries: u64,
    error: Option<std::io::Error>,
    /// One entry's bytes, reused: serde_json's many small writes land here, then one
    /// `write_all` reaches `out` (37 % fewer instructions than writing through: BENCHMARKS.md).
    scratch: Vec<u8>,
}

/// A serialized object without its closing brace (`{"a":1` of `{"a":1}`).
fn open_object(v: &impl serde::Serialize) -> serde_json::Result<String> {
    let mut s = serde_json::to_string(v)?;
    s.pop();
    Ok(s)
}

impl<W: std::io::Write> TraceWriter<W> {
    /// Start the document on `out`.
    pub fn begin(out: W, header: &TraceHeader<'_>) -> Self {
        let mut w = TraceWriter {
            out,
            entries: 0,
            error: None,
            scratch: Vec::with_capacity(512),
        };
        w.write(|out| {
            let head = open_object(header)?;
            write!(out, "{head},\"events\":[").map_err(serde_json::Error::io)
        });
        w
    }

    fn write(&mut self, f: impl FnOnce(&mut W) -> serde_json::Result<()>) {
        if self.error.is_none() {
            if let Err(e) = f(&mut self.out) {
                self.error = Some(e.into());
            }
        }
    }

    /// One more event.
    pub fn entry(&mut self, e: &TraceEntry) {
        if self.error.is_some() {
            return;
        }
        self.scratch.clear();
        if self.entries > 0 {
            self.scratch.push(b',');
        }
        self.entries += 1;
        let written = serde_json::to_writer(&mut self.scratch, e)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(&self.scratch));
        if let Err(e) = written {
            self.error = Some(e);
        }
    }

    /// Close the events and the document with `tail`, and flush.
    pub fn finish(mut self, tail: &TraceTail<'_>) -> std::io::Result<W> {
        self.write(|out| {
            let mut rest = serde_json::to_string(tail)?;
            rest.replace_range(..1, "],");
            out.write_all(rest.as_bytes())
                .map_err(serde_json::Error::io)?;
            out.flush().map_err(serde_json::Error::io)
        });
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.out),
        }
    }
}
