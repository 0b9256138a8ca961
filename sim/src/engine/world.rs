//! What the world is made of: segments, links (with the parameters `send` reads on every
//! frame), hosts and their models. State only: the behaviour is in the sibling modules,
//! which all read these; this module reads none of them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lvs_core::director::{IfaceName, Input};
use lvs_core::Instant;
use petgraph::graph::{EdgeIndex, NodeIndex};
use rand_chacha::ChaCha8Rng;

use crate::client::Client;
use crate::director::{Clock, DirectorFactory, DirectorNode, ProcessTiming};
use crate::packet::Mac;
use crate::prober::Prober;
use crate::server::RealServer;
use crate::stack::Stack;

/// Properties of one host-interface-to-segment link (one direction's share of the path).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LinkParams {
    /// One-way latency contributed by this link.
    pub latency: Duration,
    /// Up to this much extra delay, uniform per frame (can reorder close frames).
    pub jitter: Duration,
    /// Probability a frame crossing this link is lost.
    pub loss: f64,
    /// Probability a frame crossing this link is delivered twice.
    pub duplicate: f64,
    /// Probability a frame is held back by up to `reorder_delay` (overtaken by later ones).
    pub reorder: f64,
    /// Hold-back for reordered frames.
    pub reorder_delay: Duration,
}

impl Default for LinkParams {
    fn default() -> Self {
        LinkParams {
            latency: Duration::from_micros(50),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(1),
        }
    }
}

pub(super) enum Node {
    Host,
    Segment,
}

pub(super) struct Link {
    pub(super) host: usize,
    pub(super) iface: usize,
    pub(super) seg: usize,
    pub(super) params: LinkParams,
    /// `params` as `send` uses them on every frame (see `Timing`).
    pub(super) timing: Timing,
    pub(super) up: bool,
    /// The host end's interface state and host kind, mirrored here so that `send` reads
    /// one small record per port instead of the hosts' (large, often evicted) structs.
    /// `iface_up` follows `Iface::up`: set by the faults, resynced after `stack_mut`.
    pub(super) iface_up: bool,
    pub(super) kind: Kind,
    /// What the switch did with the last frame sent from this port (see `Switched`).
    pub(super) switched: Option<Switched>,
}

/// A learning switch's handling of a frame from one port: learning its source (`src`, as
/// `mac_key`) changed nothing and its destination (`dst`) goes out of `port` (`None`:
/// flooded). It holds for another frame with the same addresses from the same port while the
/// segment's address list is at `version`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Switched {
    pub(super) version: u64,
    pub(super) src: u64,
    pub(super) dst: u64,
    pub(super) port: Option<EdgeIndex>,
}

/// What kind of host a link ends at, as `send` tells them apart.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Director,
    Gateway,
    Other,
}

impl Link {
    pub(super) fn set_params(&mut self, params: LinkParams) {
        self.timing = Timing::of(&params);
        self.params = params;
    }
}

/// A link's latency and jitter in nanoseconds, and whether it draws nothing but jitter (no
/// loss, duplication or reordering): most links, whose frames `send` handles without
/// converting durations or testing probabilities.
#[derive(Clone, Copy)]
pub(super) struct Timing {
    pub(super) latency: u64,
    pub(super) jitter: u64,
    pub(super) plain: bool,
}

impl Timing {
    pub(super) fn of(p: &LinkParams) -> Timing {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Timing {
            latency: ns(p.latency),
            jitter: ns(p.jitter),
            plain: p.loss <= 0.0 && p.duplicate <= 0.0 && p.reorder <= 0.0,
        }
    }
}

pub(super) struct Segment {
    pub(super) name: String,
    pub(super) node: NodeIndex,
    pub(super) learn: bool,
    /// Learnt MAC (as `mac_key`) -> port; a segment has a handful of ports, so a list
    /// beats a map.
    pub(super) fdb: Vec<(u64, EdgeIndex)>,
    /// Counts the changes to `fdb` (an address learnt or moved to another port).
    pub(super) version: u64,
    pub(super) rng: ChaCha8Rng,
}

/// What a gateway does with an IPv4 packet for `dst` that reaches one of its interfaces
/// addressed to that interface's MAC: forward it on `out` with (`src`, `next`) as the new
/// MACs, as long as the neighbour entry it read is fresh (`at < until`); the switch behind
/// `out` knew the gateway there when it was made. `links` keeps these for the cut-through
/// and drops them all whenever it reverts cuts (whatever could change a gateway's decision
/// or move a learnt address reverts them: ARP or neighbour discovery reaching it, faults, a
/// switch learning anew, the harness reaching into a stack).
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    pub(super) gw: usize,
    pub(super) dst: std::net::Ipv4Addr,
    pub(super) out: usize,
    pub(super) src: Mac,
    pub(super) next: Mac,
    pub(super) until: Instant,
}

/// A MAC as one integer, for the switches' address lists (any one-to-one mapping will do:
/// the lists are only searched; this one is two loads).
pub(super) fn mac_key(m: Mac) -> u64 {
    let mut b = [0; 8];
    b[..6].copy_from_slice(&m);
    u64::from_le_bytes(b)
}

/// A host index as events carry it.
pub(super) fn host_u32(host: usize) -> u32 {
    u32::try_from(host).expect("more than 2^32 hosts")
}

pub(super) struct DirectorProc {
    pub(super) factory: DirectorFactory,
    pub(super) proc: Option<Box<dyn DirectorNode>>,
    pub(super) paused: bool,
    /// Bumped at every exec, kill and stop: events of an older process are stale.
    pub(super) gen: u32,
    /// Where the process is between exec and exit (`proc` is `Some` only while `Running`).
    pub(super) life: Life,
    /// When the pending wake-up runs: the process's own deadline (`asked`, global time)
    /// plus the host's wake latency.
    pub(super) wake: Option<Instant>,
    pub(super) asked: Option<Instant>,
    /// The readiness `wake` was drawn for (the earlier of `asked` and the oldest inbox entry).
    pub(super) ready: Option<Instant>,
    /// What became ready for the process since it last ran (control frames, link events,
    /// signals), with when: handed over when it wakes, in that order, its timers
    /// interleaved by their deadlines as keepalived's epoll loop interleaves them.
    pub(super) inbox: Vec<(Instant, Input)>,
    /// SIGTERM received, not yet handled: exec again after the exit (`restart`), and when
    /// the exit comes.
    pub(super) term: Option<(bool, Instant)>,
    /// The SIGTERM'd process's own log lines, written at its exit.
    pub(super) exit_logs: Option<Vec<String>>,
    pub(super) timing: ProcessTiming,
    /// The stream `timing` draws from (not the host's: a process's draws never shift it).
    pub(super) timing_rng: ChaCha8Rng,
    pub(super) scripts: BTreeMap<String, Option<i32>>,
    pub(super) keep_vips_on_kill: bool,
    pub(super) clock: Clock,
    /// The host's health-check sockets.
    pub(super) prober: Prober,
    /// Probes under way: id -> (checker, what it checks), for the trace.
    pub(super) probing: BTreeMap<u64, (&'static str, String)>,
    /// Interface names by stack index, shared with every frame handed to the director.
    pub(super) iface_names: Vec<IfaceName>,
}

/// A director process's life on its host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Life {
    /// No process.
    Down,
    /// Exec'd, not yet running its first step.
    Starting,
    /// Running: `proc` is the process.
    Running,
    /// SIGTERM'd, its stop done, not yet exited; `restart`: exec again at the exit.
    Exiting { restart: bool },
}

pub(super) enum Model {
    Director(Box<DirectorProc>),
    Server(RealServer),
    Client(Client),
    Gateway,
}

pub(super) struct Host {
    pub(super) name: String,
    /// `name`, shared by the trace entries of the host.
    pub(super) label: Arc<str>,
    pub(super) node: NodeIndex,
    pub(super) stack: Stack,
    pub(super) model: Model,
    pub(super) rng: ChaCha8Rng,
}
