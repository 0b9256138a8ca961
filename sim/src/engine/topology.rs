//! Building the world: segments (hubs or learning switches), hosts, and the links between
//! them, with the per-link parameters `send` reads on every frame.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use lvs_core::director::IfaceName;
use lvs_core::Instant;
use petgraph::graph::{EdgeIndex, NodeIndex};
use rand_chacha::ChaCha8Rng;

use crate::client::{Client, ClientSpec};
use crate::director::{Clock, DirectorFactory};
use crate::packet::Mac;
use crate::record::TraceEvent;
use crate::rng::node_rng;
use crate::server::{RealServer, RealServerSpec};
use crate::stack::{IfaceSpec, Stack};
use crate::{HostId, SegId};

use super::hosts::{DirectorProc, Host, Model};
use super::{Ev, Sim};

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
/// Errors from building or poking the simulated network.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    /// No such host.
    #[error("no host with id {0}")]
    NoHost(usize),
    /// No such segment.
    #[error("no segment with id {0}")]
    NoSegment(usize),
    /// The host has no interface of that name.
    #[error("host {host} has no interface {iface}")]
    NoIface {
        /// Host name.
        host: String,
        /// Interface name.
        iface: String,
    },
    /// The interface is already connected.
    #[error("interface {iface} of {host} is already connected")]
    AlreadyConnected {
        /// Host name.
        host: String,
        /// Interface name.
        iface: String,
    },
    /// A host name is used twice.
    #[error("duplicate host name {0}")]
    DuplicateHost(String),
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
    pub(super) rng: ChaCha8Rng,
}
/// A MAC as one integer, for the switches' address lists.
pub(super) fn mac_key(m: Mac) -> u64 {
    let [a, b, c, d, e, f] = m;
    u64::from_be_bytes([0, 0, a, b, c, d, e, f])
}

/// A host index as events carry it.
pub(super) fn host_u32(host: usize) -> u32 {
    u32::try_from(host).expect("more than 2^32 hosts")
}
impl Sim {
    /// Add an L2 segment; `learn` makes it a learning switch, otherwise it floods like a hub.
    pub fn add_segment(&mut self, name: &str, learn: bool) -> SegId {
        let id = self.segs.len();
        let node = self.graph.add_node(Node::Segment);
        let rng = node_rng(self.seed, node.index() as u64);
        self.segs.push(Segment {
            name: name.to_string(),
            node,
            learn,
            fdb: Vec::new(),
            rng,
        });
        SegId(id)
    }

    fn add_host(&mut self, name: &str, stack: Stack, model: Model) -> Result<HostId, SimError> {
        if self.hosts.iter().any(|h| h.name == name) {
            return Err(SimError::DuplicateHost(name.to_string()));
        }
        let id = self.hosts.len();
        let node = self.graph.add_node(Node::Host);
        for i in stack.ifaces() {
            self.macs.insert(i.spec.mac, id);
        }
        let rng = node_rng(self.seed, node.index() as u64);
        self.hosts.push(Host {
            name: name.to_string(),
            label: Arc::from(name),
            node,
            stack,
            model,
            rng,
        });
        Ok(HostId(id))
    }

    /// Add a director host running the process `factory` builds, started at time zero.
    pub fn add_director(
        &mut self,
        name: &str,
        ifaces: Vec<IfaceSpec>,
        factory: DirectorFactory,
    ) -> Result<HostId, SimError> {
        self.add_director_at(name, ifaces, factory, Instant::ZERO)
    }

    /// As [`Sim::add_director`], the process first started at `start` (keepalived launched later).
    pub fn add_director_at(
        &mut self,
        name: &str,
        ifaces: Vec<IfaceSpec>,
        factory: DirectorFactory,
        start: Instant,
    ) -> Result<HostId, SimError> {
        let proc = DirectorProc {
            factory,
            proc: None,
            paused: false,
            queued: Vec::new(),
            gen: 0,
            wake: None,
            scripts: BTreeMap::new(),
            keep_vips_on_kill: false,
            clock: Clock::default(),
            iface_names: ifaces
                .iter()
                .map(|i| IfaceName::from(i.name.as_str()))
                .collect(),
        };
        let id = self.add_host(name, Stack::new(ifaces), Model::Director(Box::new(proc)))?;
        self.queue.push(
            start,
            Ev::Start {
                host: host_u32(id.0),
            },
        );
        Ok(id)
    }

    /// Add a real server.
    pub fn add_real_server(
        &mut self,
        name: &str,
        ifaces: Vec<IfaceSpec>,
        spec: RealServerSpec,
    ) -> Result<HostId, SimError> {
        let mut stack = Stack::new(ifaces);
        stack.set_lo(spec.lo_vips.clone());
        stack.arp_ignore = spec.arp_ignore;
        stack.arp_announce = spec.arp_announce;
        stack.set_gateway(spec.gateway);
        let initial: Vec<(u16, bool)> = spec.services.iter().map(|s| (s.port, s.running)).collect();
        let id = self.add_host(
            name,
            stack,
            Model::Server(RealServer::new(name, spec.services)),
        )?;
        for (port, running) in initial {
            self.trace_push(id.0, TraceEvent::Service { port, running });
        }
        Ok(id)
    }

    /// Add a client with one interface and a default gateway.
    pub fn add_client(
        &mut self,
        name: &str,
        iface: IfaceSpec,
        gateway: Ipv4Addr,
        spec: ClientSpec,
    ) -> Result<HostId, SimError> {
        let local = iface
            .addrs
            .first()
            .map(|a| a.0)
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let mut stack = Stack::new(vec![iface]);
        stack.set_gateway(Some(gateway));
        let client = Client::new(spec, local);
        let (at, token) = client.first_timer();
        let id = self.add_host(name, stack, Model::Client(client))?;
        self.queue.push(
            at,
            Ev::Timer {
                host: host_u32(id.0),
                token,
            },
        );
        Ok(id)
    }

    /// Add a router between segments, with an ARP cache of `arp_timeout`.
    pub fn add_gateway(
        &mut self,
        name: &str,
        ifaces: Vec<IfaceSpec>,
        arp_timeout: Duration,
    ) -> Result<HostId, SimError> {
        let mut stack = Stack::new(ifaces);
        stack.forward = true;
        stack.arp_timeout = arp_timeout;
        self.add_host(name, stack, Model::Gateway)
    }

    /// Plug interface `iface` of `host` into `seg`.
    pub fn connect(
        &mut self,
        host: HostId,
        iface: &str,
        seg: SegId,
        params: LinkParams,
    ) -> Result<(), SimError> {
        self.revert_cuts();
        let s = self.segs.get(seg.0).ok_or(SimError::NoSegment(seg.0))?.node;
        let h = self.hosts.get(host.0).ok_or(SimError::NoHost(host.0))?;
        let no_iface = || SimError::NoIface {
            host: h.name.clone(),
            iface: iface.to_string(),
        };
        let idx = h.stack.iface_index(iface).ok_or_else(no_iface)?;
        if h.stack.ifaces()[idx].link.is_some() {
            return Err(SimError::AlreadyConnected {
                host: h.name.clone(),
                iface: iface.to_string(),
            });
        }
        let node = h.node;
        let e = self.graph.add_edge(
            node,
            s,
            Link {
                host: host.0,
                iface: idx,
                seg: seg.0,
                timing: Timing::of(&params),
                params,
                up: true,
                iface_up: h.stack.ifaces()[idx].up,
                kind: match h.model {
                    Model::Director(_) => Kind::Director,
                    Model::Gateway => Kind::Gateway,
                    Model::Server(_) | Model::Client(_) => Kind::Other,
                },
            },
        );
        self.hosts[host.0].stack.set_link(idx, Some(e));
        Ok(())
    }

    /// Name of a segment.
    pub fn segment_name(&self, seg: SegId) -> Option<&str> {
        self.segs.get(seg.0).map(|s| s.name.as_str())
    }
}
