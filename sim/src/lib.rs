//! Deterministic discrete-event simulator for LVS/keepalived clusters.
//!
//! Virtual time jumps from event to event (one heap keyed by time and sequence); every
//! node draws from its own ChaCha stream derived from the run's seed; hosts exchange real
//! Ethernet frames over modelled L2 segments. Directors run the same sans-IO
//! `lvs_core::director::Director` the daemon runs (through [`director::DirectorNode`]);
//! real servers, clients and a gateway are modelled here. Same seed, same bytes.

pub mod client;
pub mod cut;
pub mod director;
pub mod engine;
pub mod invariants;
pub mod keepalived;
pub mod packet;
pub mod prober;
pub mod queue;
pub mod record;
pub mod rng;
pub mod scenario;
pub mod sctp;
pub mod server;
pub mod stack;
pub mod svg;

pub use engine::{Fault, LinkParams, Sim, SimError};

/// A host in the simulated network (index in creation order).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct HostId(pub usize);

/// An L2 segment.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct SegId(pub usize);
