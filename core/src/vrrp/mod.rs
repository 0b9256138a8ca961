//! VRRP v2 (RFC 3768) and v3 (RFC 5798) with keepalived 2.x semantics.

pub mod arp;
pub mod instance;
#[cfg(test)]
mod pair;
#[cfg(test)]
mod pair_tests;
pub mod router;
#[cfg(test)]
mod router_tests;
pub mod sync_group;
pub mod track;
pub mod wire;

pub use instance::{InitialState, Instance, InstanceConfig, VirtualAddress};
pub use router::{RouterConfig, RouterError, VrrpInput, VrrpOutput, VrrpRouter};
pub use sync_group::{SyncGroup, SyncGroupConfig};
pub use track::{ScriptConfig, TrackInterface, TrackScript};
