//! Counters and state of the checkers, as data: what keepalived's checker data dump
//! (`SIGUSR1` → `dump_data_check`: `alive`, `quorum_state_up`, `effective weight`,
//! `num failed checkers`, `RS set`, per checker `Up`, `Has run`, `Current weight`,
//! `Retries iterations`) shows, plus the result and transition counts keepalived does not keep.
//! keepalived 2.2.7's `SIGJSON` covers VRRP only.
//!
//! Everything is in configuration order; counters of a virtual server, real server or checker
//! that a reload keeps carry on, new ones start at zero.

use std::net::IpAddr;

use crate::ipvs::ServiceKey;

/// keepalived's checker type names.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum CheckerType {
    /// `TCP_CHECK`.
    #[serde(rename = "TCP_CHECK")]
    TcpCheck,
    /// `HTTP_GET`.
    #[serde(rename = "HTTP_GET")]
    HttpGet,
    /// `SSL_GET`.
    #[serde(rename = "SSL_GET")]
    SslGet,
    /// `MISC_CHECK`.
    #[serde(rename = "MISC_CHECK")]
    MiscCheck,
}

/// All virtual servers of a node.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckStats {
    /// In configuration order.
    pub virtual_servers: Vec<VirtualServerStats>,
}

/// One `virtual_server`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VirtualServerStats {
    /// `FMT_VS`.
    pub name: String,
    /// The IPVS service.
    pub key: ServiceKey,
    /// `quorum` (as validated).
    pub quorum: u32,
    /// `hysteresis` (as validated).
    pub hysteresis: u32,
    /// `quorum_state_up`.
    pub quorum_up: bool,
    /// Sum of the alive real servers' weights (`weigh_live_realservers`).
    pub live_weight: i64,
    /// How often quorum was gained ("Gained quorum").
    pub quorum_gained: u64,
    /// How often quorum was lost ("Lost quorum", or starting with quorum down).
    pub quorum_lost: u64,
    /// The sorry server, if configured.
    pub sorry_server: Option<SorryServerStats>,
    /// The real servers, in configuration order.
    pub real_servers: Vec<RealServerStats>,
}

/// The `sorry_server`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SorryServerStats {
    /// `FMT_RS`.
    pub name: String,
    /// In the pool.
    pub alive: bool,
    /// A destination exists in IPVS.
    pub set: bool,
}

/// One `real_server`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RealServerStats {
    /// `FMT_RS`.
    pub name: String,
    /// Address.
    pub addr: IpAddr,
    /// Port (as IPVS has it).
    pub port: u16,
    /// `alive`: in the pool as far as the checkers go.
    pub alive: bool,
    /// `RS set`: a destination exists in IPVS.
    pub set: bool,
    /// `initial weight`.
    pub initial_weight: i64,
    /// `effective weight`.
    pub effective_weight: i64,
    /// `num failed checkers`.
    pub failed_checkers: u32,
    /// How often the checkers brought it up (`perform_svr_state(true)`).
    pub went_up: u64,
    /// How often the checkers took it down (`perform_svr_state(false)`).
    pub went_down: u64,
    /// Its checkers, in configuration order.
    pub checkers: Vec<CheckerStats>,
}

/// One checker.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CheckerStats {
    /// Its type.
    pub checker_type: CheckerType,
    /// `Enabled`.
    pub enabled: bool,
    /// `Up`.
    pub up: bool,
    /// `Has run`.
    pub has_run: bool,
    /// `Current weight` (misc_dynamic).
    pub current_weight: i64,
    /// `Retries iterations`.
    pub retry_it: u32,
    /// Probe results that were successes (every attempt counts, retries included).
    pub successes: u64,
    /// Probe results that were failures (timeouts included).
    pub failures: u64,
}
