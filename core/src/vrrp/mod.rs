//! VRRP v2 (RFC 3768) and v3 (RFC 5798) with keepalived 2.x semantics.
//!
//! [`VrrpRouter`] is the sans-IO machine of one node: build it from a [`RouterConfig`] (its
//! instances, sync groups and `vrrp_script`s) at a start time, feed it [`VrrpInput`]s (decoded
//! adverts with their source and destination, carrier changes, script exit statuses, SIGTERM),
//! call `handle_timeout` at `poll_timeout`, and execute what `poll_output` returns
//! ([`VrrpOutput`]: adverts to encode and send, VIPs, GARP/NA, scripts to run, notifications and
//! keepalived-worded log lines).

pub mod arp;
pub mod instance;
#[cfg(test)]
mod pair;
#[cfg(test)]
mod pair_tests;
pub mod router;
#[cfg(test)]
mod router_tests;
pub mod state;
pub mod stats;
pub mod sync_group;
pub mod track;
pub mod wire;

pub use instance::{InitialState, Instance, InstanceConfig, VirtualAddress};
pub use router::{RouterConfig, RouterError, Vip, VrrpInput, VrrpOutput, VrrpRouter};
pub use state::{NotifyScript, NotifyScripts, StateChange, StateChangeKind, VrrpState};
pub use stats::{InstanceStats, RxError};
pub use sync_group::{SyncGroup, SyncGroupConfig};
pub use track::{ScriptConfig, TrackInterface, TrackScript};
