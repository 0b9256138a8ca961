//! The scenario file as serde reads it, before any check: every value keeps its span.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A value with its byte range in the scenario text.
pub(crate) type S<T> = Spanned<T>;

/// A table of spanned values, itself spanned.
pub(crate) type SMap<T> = S<BTreeMap<String, S<T>>>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub name: S<String>,
    #[serde(default)]
    pub description: String,
    pub seed: Option<S<u64>>,
    pub duration: S<String>,
    #[serde(default, rename = "segment")]
    pub segments: Vec<S<RawSegment>>,
    #[serde(default, rename = "host")]
    pub hosts: Vec<S<RawHost>>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<S<RawFault>>,
    #[serde(default, rename = "snapshot")]
    pub snapshots: Vec<S<RawSnapshot>>,
    pub expect: Option<S<RawExpect>>,
}

/// `[[segment]]`: one L2 broadcast domain.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSegment {
    pub name: S<String>,
    pub latency: Option<S<String>>,
    pub jitter: Option<S<String>>,
    pub loss_percent: Option<S<f64>>,
    pub duplicate_percent: Option<S<f64>>,
    pub reorder_percent: Option<S<f64>>,
}

/// The four kinds of host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawRole {
    Director,
    RealServer,
    Client,
    Gateway,
}

/// `[[host]]`: every role's keys; the resolver refuses keys of another role.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHost {
    pub name: S<String>,
    pub role: S<RawRole>,
    #[serde(default)]
    pub interfaces: Vec<S<RawInterface>>,
    pub gateway: Option<S<String>>,
    pub gateway6: Option<S<String>>,
    // director
    pub keepalived_conf: Option<S<String>>,
    pub keepalived_conf_inline: Option<S<String>>,
    pub start_at: Option<S<String>>,
    pub process: Option<S<RawProcess>>,
    // real_server
    pub vips_on_lo: Option<S<Vec<S<String>>>>,
    pub arp_ignore: Option<S<u8>>,
    pub arp_announce: Option<S<u8>>,
    pub tunnel: Option<S<String>>,
    #[serde(rename = "service")]
    pub services: Option<S<Vec<S<RawService>>>>,
    // client
    pub workload: Option<S<RawWorkload>>,
    // gateway
    pub arp_cache_timeout: Option<S<String>>,
}

/// One entry of `interfaces = [...]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInterface {
    pub name: S<String>,
    pub segment: S<String>,
    pub ip: S<String>,
    pub ip6: Option<S<String>>,
    pub mac: Option<S<String>>,
}

/// `[[host.service]]` on a real server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub port: S<u16>,
    pub protocol: Option<S<RawTransport>>,
    pub service_time: Option<S<String>>,
    pub capacity: Option<S<u32>>,
    pub response_size: Option<S<u32>>,
}

/// `protocol = "tcp" | "udp" | "sctp"` of a service or workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawTransport {
    Tcp,
    Udp,
    Sctp,
}

/// `[host.workload]` on a client.
/// `process = { start, wake, exit }`: each a duration or `"LO..HI"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProcess {
    pub start: Option<S<String>>,
    pub wake: Option<S<String>>,
    pub exit: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkload {
    pub target: S<String>,
    pub protocol: Option<S<RawTransport>>,
    pub timeout: Option<S<String>>,
    pub source_port: Option<S<u16>>,
    pub rate: Option<S<f64>>,
    pub concurrency: Option<S<u32>>,
    pub think_time: Option<S<String>>,
    pub request_size: Option<S<u32>>,
    pub start: Option<S<String>>,
    pub stop: Option<S<String>>,
}

/// The fault kinds, as written in `kind = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawFaultKind {
    Kill,
    Stop,
    Pause,
    Resume,
    Restart,
    NicDown,
    NicUp,
    LinkLoss,
    Latency,
    Partition,
    Heal,
    ServiceStop,
    ServiceStart,
    ClockDrift,
    ScriptResult,
}

impl RawFaultKind {
    /// The name as written in the file.
    pub fn name(self) -> &'static str {
        match self {
            RawFaultKind::Kill => "kill",
            RawFaultKind::Stop => "stop",
            RawFaultKind::Pause => "pause",
            RawFaultKind::Resume => "resume",
            RawFaultKind::Restart => "restart",
            RawFaultKind::NicDown => "nic_down",
            RawFaultKind::NicUp => "nic_up",
            RawFaultKind::LinkLoss => "link_loss",
            RawFaultKind::Latency => "latency",
            RawFaultKind::Partition => "partition",
            RawFaultKind::Heal => "heal",
            RawFaultKind::ServiceStop => "service_stop",
            RawFaultKind::ServiceStart => "service_start",
            RawFaultKind::ClockDrift => "clock_drift",
            RawFaultKind::ScriptResult => "script_result",
        }
    }
}

/// `[[fault]]`: one flat table; which keys a kind takes is checked by the resolver,
/// so the error can say "key `percent` does not apply to kind \"kill\"".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFault {
    pub at: S<String>,
    pub kind: S<RawFaultKind>,
    pub host: Option<S<String>>,
    pub iface: Option<S<String>>,
    pub segment: Option<S<String>>,
    pub percent: Option<S<f64>>,
    pub latency: Option<S<String>>,
    pub jitter: Option<S<String>>,
    pub groups: Option<S<Vec<Vec<S<String>>>>>,
    pub one_way: Option<S<bool>>,
    pub port: Option<S<u16>>,
    pub ppm: Option<S<f64>>,
    pub script: Option<S<String>>,
    pub exit: Option<S<i64>>,
}

/// `[[snapshot]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSnapshot {
    pub at: S<String>,
    pub directors: Option<Vec<S<String>>>,
    pub show: Option<Vec<S<String>>>,
}

/// `[expect]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpect {
    pub vip_owner: Option<SMap<String>>,
    pub vrrp_state: Option<SMap<String>>,
    pub ipvs_destinations: Option<SMap<Vec<S<String>>>>,
    pub max_failed_requests: Option<S<u64>>,
    pub min_completed_requests: Option<S<u64>>,
    pub failover_within: Option<S<String>>,
    pub converge_within: Option<S<String>>,
    pub share: Option<SMap<Vec<f64>>>,
    pub invariants: Option<S<bool>>,
}
