//! keepalived's health checkers as state machines: the probe is an output, its result an input.
//!
//! [`healthcheckers::HealthCheckers`] is keepalived 2.2's `Keepalived_healthcheckers` process
//! for one node: build it from [`healthcheckers::HealthCheckersConfig`] (one
//! [`virtual_server::VirtualServerConfig`] per `virtual_server` block, each with its
//! [`virtual_server::RealServerConfig`]s and their [`checker::CheckerConfig`]s), install the
//! rules [`healthcheckers::HealthCheckers::start`] returns, then run the probes it asks for.
//! What it asks for comes as [`output::CheckOutput`]s (probes, IPVS changes, log lines, notify
//! scripts with their [`script::Script`] argv); [`healthcheckers::HealthCheckers::reload`]
//! diffs a new configuration against the running one as keepalived's reload does, and
//! [`healthcheckers::HealthCheckers::stats`] gives the [`stats::CheckStats`].
//!
//! ```
//! use lvs_core::check::checker::{CheckerConfig, CheckerKind, ConnectOpts};
//! use lvs_core::check::healthcheckers::{CheckInput, CheckOutput, HealthCheckers, HealthCheckersConfig};
//! use lvs_core::check::probe::ProbeResult;
//! use lvs_core::check::virtual_server::{RealServerConfig, VirtualServerConfig};
//! use lvs_core::ipvs::{service::ServiceSpec, sched::{SchedFlags, SchedKind}, FwdMethod, Protocol, ServiceKey};
//! use lvs_core::time::Instant;
//! use rand_chacha::rand_core::SeedableRng;
//!
//! let key = ServiceKey::Inet { proto: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port: 80 };
//! let service = ServiceSpec {
//!     key,
//!     scheduler: SchedKind::Rr,
//!     flags: SchedFlags::default(),
//!     persistence: None,
//!     netmask_prefix: 32,
//!     one_packet: false,
//! };
//! let mut vs = VirtualServerConfig::new(service, FwdMethod::Route);
//! let mut rs = RealServerConfig::new("10.0.0.2".parse().unwrap(), 80);
//! rs.checkers.push(CheckerConfig::new(CheckerKind::Tcp(ConnectOpts::default())));
//! vs.real_servers.push(rs);
//!
//! let mut hc = HealthCheckers::new(&HealthCheckersConfig { virtual_servers: vec![vs], ..Default::default() });
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
//! let rules = hc.start(Instant::ZERO, &mut rng); // AddService, AddDest
//! assert_eq!(rules.len(), 2);
//! while hc.poll_output().is_some() {} // start-up log lines
//!
//! let t = hc.poll_timeout().unwrap(); // 1 s + warmup
//! hc.handle_timeout(t);
//! let Some(CheckOutput::StartProbe(probe)) = hc.poll_output() else { panic!() };
//! hc.handle_input(t, CheckInput::ProbeDone { id: probe.id, result: ProbeResult::Connected });
//! let Some(CheckOutput::Log { text }) = hc.poll_output() else { panic!() };
//! assert_eq!(text, "TCP connection to [10.0.0.2]:tcp:80 success.");
//! ```

pub mod checker;
pub mod healthcheckers;
pub mod output;
pub mod probe;
pub mod script;
pub mod stats;
pub mod virtual_server;

#[cfg(test)]
mod reload_tests;
#[cfg(test)]
mod tests;
