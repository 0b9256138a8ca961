//! The simulator: topology, hosts, the event loop, director output execution, probes and faults.
//!
//! Modelling choices (each one a place where the model is simpler than Linux):
//! - A director process sees every frame addressed to its interface's MAC or to a group
//!   address (what an AF_PACKET socket sees), after the kernel stack has answered ARP for
//!   the host's addresses and VIPs. Traffic for a VIP the director does not hold is still
//!   handed over: deciding not to forward it is the director's job.
//! - SIGKILL drops the process and, by default, its VIPs (see `set_keep_vips_on_kill` for
//!   Linux's behaviour, where addresses outlive keepalived). SIGTERM hands `Admin::Stop`
//!   to the process, executes what it outputs, then drops it; a stop of a paused process
//!   acts at once. A pause keeps the kernel running (ARP still answered).
//! - Clock drift applies to director processes; other models run on simulator time.
//! - Probes are evaluated, not simulated packet by packet: a TCP/HTTP probe connects iff
//!   the target shares a segment with the director through live interfaces and links, no
//!   partition blocks either direction, a per-link loss draw spares SYN and SYN-ACK, and
//!   the service runs (RST otherwise); it answers after one RTT or times out.
//! - Jitter is uniform per frame and may reorder close frames; `reorder` holds a frame back
//!   further. ARP entries expire after `arp_timeout` (no STALE/DELAY/PROBE states).
//! - IPv4 only: IPv6 VIPs are traced but not installed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use lvs_core::check::probe::{Probe, ProbeId, ProbeKind, ProbeResult};
use lvs_core::director::{Admin, IfaceName, Input, LogSource, Output, StateChangeKind, Vip};
use lvs_core::Instant;
use petgraph::graph::{EdgeIndex, NodeIndex, UnGraph};
use petgraph::visit::EdgeRef;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::client::{Client, ClientSpec, RequestRecord};
use crate::cut::{Cut, Cuts};
use crate::director::{Clock, DirectorFactory, DirectorNode, HostEnv};
use crate::invariants::{InvariantConfig, Invariants, Violation, NO_PART};
use crate::packet::{self, Mac};
use crate::record::{self, LogLine, Metrics, TraceEntry, TraceEvent};
use crate::rng::node_rng;
use crate::server::{RealServer, RealServerSpec};
use crate::stack::{Fx, IfaceSpec, Rx, Stack, STACK_TOKEN};
use crate::{HostId, SegId};

/// How often convergence is re-evaluated while a liveness bound is pending.
const LIVENESS_POLL: Duration = Duration::from_millis(10);

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

/// A fault to inject, now or at a scheduled time.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Fault {
    /// SIGKILL the director: its state is dropped and it goes silent.
    Kill(HostId),
    /// SIGTERM the director: `Admin::Stop`, its outputs run, then silence.
    Stop(HostId),
    /// SIGSTOP: inputs queue up, timers do not fire.
    Pause(HostId),
    /// SIGCONT: queued inputs are handed over at the resume time.
    Resume(HostId),
    /// Start a fresh director from its factory (stopping a running one first).
    Restart(HostId),
    /// `ip link set dev IFACE up/down` on the host.
    Nic {
        /// Host.
        host: HostId,
        /// Interface.
        iface: String,
        /// New state.
        up: bool,
    },
    /// Cable plugged / pulled between the interface and its segment.
    Link {
        /// Host.
        host: HostId,
        /// Interface.
        iface: String,
        /// New state.
        up: bool,
    },
    /// New latency/loss/... for an interface's link.
    LinkParams {
        /// Host.
        host: HostId,
        /// Interface.
        iface: String,
        /// The parameters.
        params: LinkParams,
    },
    /// Frames from every host in `from` to every host in `to` are dropped (both ways if symmetric).
    Partition {
        /// Senders.
        from: Vec<HostId>,
        /// Receivers.
        to: Vec<HostId>,
        /// Also drop `to` → `from`.
        symmetric: bool,
    },
    /// Remove every partition.
    Heal,
    /// Start or stop a real server's service.
    Service {
        /// Host.
        host: HostId,
        /// Port.
        port: u16,
        /// New state.
        running: bool,
    },
    /// The host's clock runs at `1 + ppm/1e6` from now on.
    ClockDrift {
        /// Host.
        host: HostId,
        /// Parts per million (100_000 = 10 % fast).
        ppm: i64,
    },
}

enum Node {
    Host,
    Segment,
}

struct Link {
    host: usize,
    iface: usize,
    seg: usize,
    params: LinkParams,
    /// `params` as `send` uses them on every frame (see `Timing`).
    timing: Timing,
    up: bool,
    /// The host end's interface state and host kind, mirrored here so that `send` reads
    /// one small record per port instead of the hosts' (large, often evicted) structs.
    /// `iface_up` follows `Iface::up`: set by the faults, resynced after `stack_mut`.
    iface_up: bool,
    kind: Kind,
}

/// What kind of host a link ends at, as `send` tells them apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Director,
    Gateway,
    Other,
}

impl Link {
    fn set_params(&mut self, params: LinkParams) {
        self.timing = Timing::of(&params);
        self.params = params;
    }
}

/// A link's latency and jitter in nanoseconds, and whether it draws nothing but jitter (no
/// loss, duplication or reordering): most links, whose frames `send` handles without
/// converting durations or testing probabilities.
#[derive(Clone, Copy)]
struct Timing {
    latency: u64,
    jitter: u64,
    plain: bool,
}

impl Timing {
    fn of(p: &LinkParams) -> Timing {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Timing {
            latency: ns(p.latency),
            jitter: ns(p.jitter),
            plain: p.loss <= 0.0 && p.duplicate <= 0.0 && p.reorder <= 0.0,
        }
    }
}

struct Segment {
    name: String,
    node: NodeIndex,
    learn: bool,
    /// Learnt MAC (as `mac_key`) -> port; a segment has a handful of ports, so a list
    /// beats a map.
    fdb: Vec<(u64, EdgeIndex)>,
    rng: ChaCha8Rng,
}

struct DirectorProc {
    factory: DirectorFactory,
    proc: Option<Box<dyn DirectorNode>>,
    paused: bool,
    queued: Vec<Input>,
    gen: u32,
    wake: Option<Instant>,
    scripts: BTreeMap<String, Option<i32>>,
    keep_vips_on_kill: bool,
    clock: Clock,
    /// Interface names by stack index, shared with every frame handed to the director.
    iface_names: Vec<IfaceName>,
}

enum Model {
    Director(Box<DirectorProc>),
    Server(RealServer),
    Client(Client),
    Gateway,
}

struct Host {
    name: String,
    /// `name`, shared by the trace entries of the host.
    label: Arc<str>,
    node: NodeIndex,
    stack: Stack,
    model: Model,
    rng: ChaCha8Rng,
}

enum Ev {
    /// A frame reaches the host end of `link`.
    Deliver {
        link: EdgeIndex,
        frame: Rc<Vec<u8>>,
    },
    /// A frame a gateway forwarded ahead of time (`cut`) reaches the host end of `link`.
    Onward {
        link: EdgeIndex,
        cut: u32,
    },
    Timer {
        host: u32,
        token: u64,
    },
    Wake {
        host: u32,
        gen: u32,
    },
    // Rare, large payloads are boxed: heap entries are moved on every push and pop.
    ProbeDone(Box<ProbeDone>),
    Start {
        host: u32,
    },
    Fault(Box<Fault>),
    Check,
}

// Heap entries are (time, seq, Ev) and move on every sift: keep Ev two words.
const _: () = assert!(std::mem::size_of::<Ev>() == 16);

/// A MAC as one integer, for the switches' address lists.
fn mac_key(m: Mac) -> u64 {
    let [a, b, c, d, e, f] = m;
    u64::from_be_bytes([0, 0, a, b, c, d, e, f])
}

/// A host index as events carry it.
fn host_u32(host: usize) -> u32 {
    u32::try_from(host).expect("more than 2^32 hosts")
}

struct ProbeDone {
    host: usize,
    gen: u32,
    id: ProbeId,
    result: ProbeResult,
}

/// The frame's bytes, taken without a copy when this delivery holds the only reference.
fn owned(frame: Rc<Vec<u8>>) -> Vec<u8> {
    Rc::try_unwrap(frame).unwrap_or_else(|shared| shared.as_ref().clone())
}

/// The simulated world.
pub struct Sim {
    seed: u64,
    now: Instant,
    queue: crate::queue::EventQueue<Ev>,
    graph: UnGraph<Node, Link>,
    hosts: Vec<Host>,
    segs: Vec<Segment>,
    macs: BTreeMap<Mac, usize>,
    blocked: BTreeSet<(usize, usize)>,
    inv: Invariants,
    metrics: Metrics,
    logs: Vec<LogLine>,
    trace: Vec<TraceEntry>,
    /// Record every finished request in the trace (off for long runs).
    pub trace_requests: bool,
    /// Forward frames through gateways without a gateway event (see `cut`); on by default.
    pub cut_through: bool,
    cuts: Cuts,
    /// A stack was lent out (`stack_mut`): the links' interface mirrors may be stale.
    links_stale: bool,
    /// Gateway deliveries found by `send`: (arrival, reserved sequence number, link).
    gateway_bound: Vec<(Instant, u64, EdgeIndex)>,
    /// Key (time, sequence number) of the event handled last.
    cur: (Instant, u64),
    fx: Fx,
    check_at: Option<Instant>,
    reqs: Vec<RequestRecord>,
    targets: Vec<EdgeIndex>,
    events: u64,
}

impl Sim {
    /// An empty world seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Sim {
            seed,
            now: Instant::ZERO,
            queue: crate::queue::EventQueue::new(),
            graph: UnGraph::default(),
            hosts: Vec::new(),
            segs: Vec::new(),
            macs: BTreeMap::new(),
            blocked: BTreeSet::new(),
            inv: Invariants::default(),
            metrics: Metrics::default(),
            logs: Vec::new(),
            trace: Vec::new(),
            trace_requests: true,
            cut_through: true,
            cuts: Cuts::default(),
            links_stale: false,
            gateway_bound: Vec::new(),
            cur: (Instant::ZERO, 0),
            fx: Fx::default(),
            check_at: None,
            reqs: Vec::new(),
            targets: Vec::new(),
            events: 0,
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Events processed so far.
    pub fn events_processed(&self) -> u64 {
        self.events
    }

    /// Events waiting in the queue.
    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }

    // ---- building ------------------------------------------------------------------------

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

    // ---- inspection ----------------------------------------------------------------------

    /// Host id by name.
    pub fn host_id(&self, name: &str) -> Option<HostId> {
        self.hosts.iter().position(|h| h.name == name).map(HostId)
    }

    /// A host's name.
    pub fn host_name(&self, host: HostId) -> &str {
        self.hosts.get(host.0).map_or("?", |h| h.name.as_str())
    }

    /// A host's IP stack (addresses, VIPs, ARP cache, counters).
    pub fn stack(&self, host: HostId) -> Option<&Stack> {
        self.hosts.get(host.0).map(|h| &h.stack)
    }

    /// A host's IP stack, to change sysctls (`arp_timeout`, `arp_ignore`...).
    pub fn stack_mut(&mut self, host: HostId) -> Option<&mut Stack> {
        self.revert_cuts();
        // The caller may change interface state: read it back before the next frame moves.
        self.links_stale = true;
        self.hosts.get_mut(host.0).map(|h| &mut h.stack)
    }

    /// A real server's model.
    pub fn server(&self, host: HostId) -> Option<&RealServer> {
        match &self.hosts.get(host.0)?.model {
            Model::Server(s) => Some(s),
            _ => None,
        }
    }

    /// A client's model.
    pub fn client(&self, host: HostId) -> Option<&Client> {
        match &self.hosts.get(host.0)?.model {
            Model::Client(c) => Some(c),
            _ => None,
        }
    }

    /// True when the host's director process exists (running or paused).
    pub fn director_alive(&self, host: HostId) -> bool {
        matches!(self.hosts.get(host.0).map(|h| &h.model), Some(Model::Director(d)) if d.proc.is_some())
    }

    /// The running director's IPVS table as `ipvsadm -L -n` prints it (None: no process, or
    /// the process keeps no table).
    pub fn ipvsadm_list(&self, host: HostId) -> Option<String> {
        match &self.hosts.get(host.0)?.model {
            Model::Director(d) => d.proc.as_ref()?.ipvsadm_list(),
            _ => None,
        }
    }

    /// Hosts holding `vip` on an interface.
    pub fn vip_holders(&self, vip: Ipv4Addr) -> Vec<HostId> {
        (0..self.hosts.len())
            .filter(|h| self.hosts[*h].stack.vips().any(|v| v == vip))
            .map(HostId)
            .collect()
    }

    /// Hosts whose director reports MASTER for `instance`.
    pub fn masters(&self, instance: &str) -> Vec<HostId> {
        self.inv.masters(instance)
    }

    /// Request metrics; every real server is listed in the per-server share.
    pub fn metrics(&self) -> Metrics {
        let mut m = self.metrics.clone();
        m.requests_sent = self
            .hosts
            .iter()
            .map(|h| {
                if let Model::Client(c) = &h.model {
                    c.sent
                } else {
                    0
                }
            })
            .sum();
        for h in &self.hosts {
            if let Model::Server(_) = h.model {
                m.per_server.entry(h.name.clone()).or_insert(0);
            }
        }
        m
    }

    /// All log lines, in time order.
    pub fn logs(&self) -> &[LogLine] {
        &self.logs
    }

    /// One host's log, one line each.
    pub fn log_text(&self, host: HostId) -> String {
        let name = self.host_name(host);
        let mut s = String::new();
        for l in self.logs.iter().filter(|l| l.host == name) {
            s.push_str(&l.line);
            s.push('\n');
        }
        s
    }

    /// Safety and liveness violations so far.
    pub fn violations(&self) -> &[Violation] {
        &self.inv.violations
    }

    /// The invariant checker (tolerances, liveness results).
    pub fn invariants(&self) -> &Invariants {
        &self.inv
    }

    /// Tolerances of the safety checks.
    pub fn invariant_config_mut(&mut self) -> &mut InvariantConfig {
        &mut self.inv.config
    }

    /// State a liveness bound: converged (one MASTER per instance per part, one holder per VIP,
    /// every gateway's ARP entry for a VIP pointing at its holder) within `within` after `after`.
    pub fn expect_converged(&mut self, after: Instant, within: Duration) {
        self.inv.expect_converged(after, within);
    }

    /// True when the cluster is converged now: one MASTER per instance in every connected
    /// part, one holder per VIP, gateways' ARP entries for VIPs pointing at the holder.
    pub fn converged(&self) -> bool {
        self.gateways_agree() && self.inv.converged(&self.parts())
    }

    /// Run until [`Sim::converged`] holds or `within` has passed; the time it took, if it did.
    pub fn run_until_converged(&mut self, within: Duration) -> Option<Duration> {
        let start = self.now;
        let deadline = start + within;
        loop {
            if self.converged() {
                return Some(self.now - start);
            }
            match self.queue.peek_time() {
                Some(t) if t <= deadline => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return None;
                }
            }
        }
    }

    /// The trace entries.
    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    /// The trace as JSON: `{"seed":..,"end_ns":..,"events":[..],"metrics":{..},"violations":[..]}`.
    pub fn trace_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            seed: u64,
            end_ns: u64,
            events: &'a [TraceEntry],
            metrics: Metrics,
            jain_index: Option<f64>,
            failover_ns: Option<u128>,
            violations: &'a [Violation],
        }
        let m = self.metrics();
        let doc = Doc {
            seed: self.seed,
            end_ns: self.now.as_nanos(),
            events: &self.trace,
            jain_index: m.jain_index(),
            failover_ns: m.failover_time().map(|d| d.as_nanos()),
            metrics: m,
            violations: &self.inv.violations,
        };
        serde_json::to_string(&doc).unwrap_or_default()
    }

    /// An SVG timeline of the run so far.
    pub fn svg(&self) -> String {
        crate::svg::render(&self.trace, self.now)
    }

    /// Exit status the simulator reports for a script probe `command` on director `host`.
    pub fn set_script_exit(&mut self, host: HostId, command: &str, status: Option<i32>) {
        if let Some(Model::Director(d)) = self.hosts.get_mut(host.0).map(|h| &mut h.model) {
            d.scripts.insert(command.to_string(), status);
        }
    }

    /// Keep VIPs on the interfaces when the director is SIGKILLed (Linux keeps addresses;
    /// the default drops them with the process so a dead node cannot keep a VIP).
    pub fn set_keep_vips_on_kill(&mut self, host: HostId, keep: bool) {
        if let Some(Model::Director(d)) = self.hosts.get_mut(host.0).map(|h| &mut h.model) {
            d.keep_vips_on_kill = keep;
        }
    }

    // ---- running -------------------------------------------------------------------------

    /// Schedule a fault at `at`.
    pub fn schedule(&mut self, at: Instant, fault: Fault) {
        self.queue
            .push(at.max(self.now), Ev::Fault(Box::new(fault)));
    }

    /// Process the next event; false when none is left.
    pub fn step(&mut self) -> bool {
        self.sync_links();
        let Some((t, seq, ev)) = self.queue.pop_keyed() else {
            return false;
        };
        self.now = t;
        self.cur = (t, seq);
        self.events += 1;
        self.dispatch(ev);
        // Safety can only change when the checker was told of a change (VRRP state, VIPs,
        // faults); tolerances running out and liveness polling come as Check events.
        if self.inv.needs_check() || self.check_at.is_some_and(|c| c <= self.now) {
            self.check_invariants();
        }
        true
    }

    /// Run every event up to and including `until`; the clock ends at `until`.
    pub fn run_until(&mut self, until: Instant) {
        while self.queue.peek_time().is_some_and(|t| t <= until) {
            self.step();
        }
        self.now = self.now.max(until);
        if self.inv.needs_check() {
            self.check_invariants();
        }
        self.inv.finish(self.now);
    }

    /// Run for `d` more.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { link, frame } => {
                let l = &self.graph[link];
                self.deliver(l.host, l.iface, frame)
            }
            Ev::Onward { link, cut } => {
                if let Some(frame) = self.cuts.onward(cut) {
                    let l = &self.graph[link];
                    self.deliver(l.host, l.iface, frame)
                }
            }
            Ev::Timer { host, token } => self.timer(host as usize, token),
            Ev::Wake { host, gen } => {
                let host = host as usize;
                let Some(Model::Director(d)) = self.hosts.get_mut(host).map(|h| &mut h.model)
                else {
                    return;
                };
                if d.gen != gen || d.paused || d.wake != Some(self.now) {
                    return;
                }
                d.wake = None;
                let local = d.clock.local(self.now);
                if let Some(p) = d.proc.as_mut() {
                    p.handle_timeout(local);
                }
                self.drain(host);
            }
            Ev::ProbeDone(p) => {
                let ProbeDone {
                    host,
                    gen,
                    id,
                    result,
                } = *p;
                if let Some(Model::Director(d)) = self.hosts.get(host).map(|h| &h.model) {
                    if d.gen == gen {
                        self.trace_push(
                            host,
                            TraceEvent::Probe {
                                id: id.0,
                                result: format!("{result:?}"),
                            },
                        );
                        self.director_input(host, Input::ProbeDone { id, result });
                    }
                }
            }
            Ev::Start { host } => self.start(host as usize),
            Ev::Fault(f) => self.apply_inner(*f),
            Ev::Check => {}
        }
    }

    fn trace_push(&mut self, host: usize, event: TraceEvent) {
        let host = match self.hosts.get(host) {
            Some(h) => h.label.clone(),
            None => Arc::from(""),
        };
        self.trace.push(TraceEntry {
            t: self.now.as_nanos(),
            host,
            event,
        });
    }

    fn flush_fx(&mut self, host: usize) {
        let now = self.now;
        for &(at, token) in &self.fx.timers {
            self.queue.push(
                at.max(now),
                Ev::Timer {
                    host: host_u32(host),
                    token,
                },
            );
        }
        self.fx.timers.clear();
        if !self.fx.tx.is_empty() {
            // `transmit` never adds effects, so the buffer can be lent out meanwhile.
            let mut tx = std::mem::take(&mut self.fx.tx);
            for (iface, frame) in tx.drain(..) {
                self.transmit(host, iface, Rc::new(frame));
            }
            self.fx.tx = tx;
        }
        if !self.reqs.is_empty() {
            let mut reqs = std::mem::take(&mut self.reqs);
            for r in reqs.drain(..) {
                self.metrics.record(&r);
                if self.trace_requests || !matches!(r.outcome, crate::client::Outcome::Ok { .. }) {
                    self.trace_push(host, TraceEvent::Request { record: r });
                }
            }
            self.reqs = reqs;
        }
    }

    /// Read the interfaces' state back into the links after `stack_mut` lent a stack out.
    fn sync_links(&mut self) {
        if !self.links_stale {
            return;
        }
        self.links_stale = false;
        for l in self.graph.edge_weights_mut() {
            l.iface_up = self
                .hosts
                .get(l.host)
                .and_then(|h| h.stack.ifaces().get(l.iface))
                .is_some_and(|i| i.up);
        }
    }

    fn iface_carrier(&self, host: usize, iface: usize) -> bool {
        let Some(i) = self
            .hosts
            .get(host)
            .and_then(|h| h.stack.ifaces().get(iface))
        else {
            return false;
        };
        i.up && i.link.is_some_and(|e| self.graph[e].up)
    }

    fn deliver(&mut self, host: usize, iface: usize, frame: Rc<Vec<u8>>) {
        if !self.iface_carrier(host, iface) {
            return;
        }
        let now = self.now;
        if matches!(self.hosts[host].model, Model::Gateway)
            && self.hosts[host].stack.classify(iface, &frame) == Rx::Arp
        {
            // The gateway's ARP cache may change under frames forwarded ahead of time.
            self.revert_cuts();
        }
        let h = &mut self.hosts[host];
        let rx = h.stack.receive(now, iface, &frame, &mut self.fx);
        if let Rx::Forward(dst) = rx {
            h.stack.forward_frame(now, dst, owned(frame), &mut self.fx);
            self.flush_fx(host);
            return;
        }
        match &mut h.model {
            Model::Director(d) => {
                if rx != Rx::Ignored {
                    let Some(name) = d.iface_names.get(iface).cloned() else {
                        return;
                    };
                    self.flush_fx(host);
                    self.director_input(
                        host,
                        Input::Frame {
                            iface: name,
                            frame: owned(frame),
                        },
                    );
                    return;
                }
            }
            Model::Server(s) => {
                if rx == Rx::Local {
                    if let Ok(seg) = packet::parse_tcp(&frame) {
                        s.on_segment(now, &seg, &mut h.stack, &mut self.fx);
                    }
                }
            }
            Model::Client(c) => {
                if rx == Rx::Local {
                    if let Ok(seg) = packet::parse_tcp(&frame) {
                        c.on_segment(now, &seg, &mut h.stack, &mut self.fx, &mut self.reqs);
                    }
                }
            }
            Model::Gateway => {}
        }
        self.flush_fx(host);
    }

    fn timer(&mut self, host: usize, token: u64) {
        let now = self.now;
        let Some(h) = self.hosts.get_mut(host) else {
            return;
        };
        if token & STACK_TOKEN != 0 {
            h.stack.timer(now, token, &mut self.fx);
        } else {
            match &mut h.model {
                Model::Server(s) => s.on_timer(now, token, &mut h.stack, &mut self.fx),
                Model::Client(c) => c.on_timer(
                    now,
                    token,
                    &mut h.rng,
                    &mut h.stack,
                    &mut self.fx,
                    &mut self.reqs,
                ),
                Model::Director(_) | Model::Gateway => {}
            }
        }
        self.flush_fx(host);
    }

    /// Put a frame on the wire now.
    fn transmit(&mut self, host: usize, iface: usize, frame: Rc<Vec<u8>>) {
        self.send(host, iface, frame, self.now, None);
    }

    /// Put a frame on the wire at `at` (now, or later for a gateway's cut-through): every
    /// other port of the segment (or the learnt one) gets a copy after both links' latency
    /// and jitter, unless a link is down, a partition blocks the pair, or the segment's dice
    /// say lost; some copies are duplicated or held back. Copies for a gateway are forwarded
    /// through it at once when they can be (`cut_or_deliver`); the onward copies of such a
    /// forwarding (`cut`) are queued against it.
    fn send(
        &mut self,
        host: usize,
        iface: usize,
        frame: Rc<Vec<u8>>,
        at: Instant,
        cut: Option<u32>,
    ) {
        if !self.iface_carrier(host, iface) {
            return;
        }
        let Some(e) = self.hosts[host].stack.ifaces()[iface].link else {
            return;
        };
        let (Some(src), Some(dst)) = (packet::src_mac(&frame), packet::dst_mac(&frame)) else {
            return;
        };
        let seg_id = self.graph[e].seg;
        let seg = &mut self.segs[seg_id];
        let mut relearnt = false;
        if seg.learn {
            let src = mac_key(src);
            match seg.fdb.iter_mut().find(|(m, _)| *m == src) {
                Some(entry) => {
                    relearnt = entry.1 != e;
                    entry.1 = e;
                }
                None => {
                    relearnt = true;
                    seg.fdb.push((src, e));
                }
            }
        }
        let known = if seg.learn && !packet::is_group(dst) {
            let dst = mac_key(dst);
            seg.fdb.iter().find(|(m, _)| *m == dst).map(|(_, p)| *p)
        } else {
            None
        };
        if relearnt {
            // Where a switch sends a MAC decides where forwarded-ahead frames go.
            self.revert_cuts();
        }
        match known {
            Some(e2) if e2 != e => self.send_over(host, e, e2, at, &frame, cut),
            Some(_) => {}
            None => {
                let mut targets = std::mem::take(&mut self.targets);
                targets.clear();
                targets.extend(
                    self.graph
                        .edges(self.segs[seg_id].node)
                        .map(|r| r.id())
                        .filter(|x| *x != e),
                );
                // Deterministic order regardless of adjacency-list layout.
                targets.sort_unstable();
                for &e2 in &targets {
                    self.send_over(host, e, e2, at, &frame, cut);
                }
                self.targets = targets;
            }
        }
        if self.gateway_bound.is_empty() {
            return;
        }
        let mut bound = std::mem::take(&mut self.gateway_bound);
        let last = bound.len() - 1;
        let mut frame = Some(frame);
        for (k, (arrive, seq, link)) in bound.drain(..).enumerate() {
            // The last copy takes this reference, so a frame sent to the gateway alone is
            // forwarded in its own buffer.
            let f = if k == last {
                frame.take()
            } else {
                frame.clone()
            };
            if let Some(f) = f {
                self.cut_or_deliver(arrive, seq, link, f);
            }
        }
        self.gateway_bound = bound;
    }

    /// The copies of a frame `host` sends at `at` from link `e` that reach link `e2` of the
    /// same segment: none if `e2` or its interface is down, a partition blocks the pair or
    /// the dice say lost; two if duplicated; each after both links' latency and jitter.
    fn send_over(
        &mut self,
        host: usize,
        e: EdgeIndex,
        e2: EdgeIndex,
        at: Instant,
        frame: &Rc<Vec<u8>>,
        cut: Option<u32>,
    ) {
        let (l1, l2) = (&self.graph[e], &self.graph[e2]);
        if !l2.up
            || !l2.iface_up
            || (!self.blocked.is_empty() && self.blocked.contains(&(host, l2.host)))
        {
            return;
        }
        let seg_id = l1.seg;
        let rng = &mut self.segs[seg_id].rng;
        let (t1, t2) = (l1.timing, l2.timing);
        // Most links have no loss, duplication or reordering: they skip those draws' tests.
        let plain = t1.plain && t2.plain;
        let (p1, p2) = (&l1.params, &l2.params);
        if !plain
            && ((p1.loss > 0.0 && rng.gen::<f64>() < p1.loss)
                || (p2.loss > 0.0 && rng.gen::<f64>() < p2.loss))
        {
            return;
        }
        let (dup, reorder, hold) = if plain {
            (0.0, 0.0, 0)
        } else {
            (
                p1.duplicate.max(p2.duplicate),
                p1.reorder.max(p2.reorder),
                p1.reorder_delay.max(p2.reorder_delay).as_nanos() as u64,
            )
        };
        let copies = if dup > 0.0 && rng.gen::<f64>() < dup {
            2
        } else {
            1
        };
        let (latency, jitter) = (t1.latency + t2.latency, t1.jitter + t2.jitter);
        for _ in 0..copies {
            let rng = &mut self.segs[seg_id].rng;
            let mut delay = latency;
            if jitter > 0 {
                delay += rng.gen_range(0..=jitter);
            }
            if reorder > 0.0 && rng.gen::<f64>() < reorder {
                delay += rng.gen_range(0..=hold);
            }
            let arrive = Instant::from_nanos(at.as_nanos().saturating_add(delay));
            self.schedule_copy(arrive, e2, frame, cut);
        }
    }

    /// Queue one copy of a frame `send` puts on the wire, arriving over `link` at `arrive`:
    /// an onward copy of a forwarding done ahead of time (`cut`), a copy for a gateway to
    /// forward through it once `send` is done, or an ordinary delivery.
    fn schedule_copy(
        &mut self,
        arrive: Instant,
        link: EdgeIndex,
        frame: &Rc<Vec<u8>>,
        cut: Option<u32>,
    ) {
        let to = self.graph[link].kind;
        if to == Kind::Director && packet::is_tcp_syn(frame) {
            // A new connection's lookup misses the cache (the table is large and the key
            // new): start the load now, a few events before the SYN is handled.
            if let Model::Director(d) = &self.hosts[self.graph[link].host].model {
                if let Some(p) = &d.proc {
                    p.prefetch(frame);
                }
            }
        }
        if let Some(c) = cut {
            self.queue.push(arrive, Ev::Onward { link, cut: c });
            self.cuts.add_pending(c);
        } else if self.cut_through && to == Kind::Gateway {
            let seq = self.queue.reserve();
            self.gateway_bound.push((arrive, seq, link));
        } else {
            self.queue.push(
                arrive,
                Ev::Deliver {
                    link,
                    frame: frame.clone(),
                },
            );
        }
    }

    /// A frame reaches gateway link `link` at `arrive` (queue position `seq`): forward it
    /// through the gateway now if what the gateway will do is already certain (see `cut`),
    /// else queue the delivery.
    fn cut_or_deliver(&mut self, arrive: Instant, seq: u64, link: EdgeIndex, frame: Rc<Vec<u8>>) {
        let l = &self.graph[link];
        let (gw, at_iface) = (l.host, l.iface);
        let plan = self.gateway_plan(gw, at_iface, &frame, arrive);
        let (Some((out, src, dst)), Some(was_dst), Some(was_src)) =
            (plan, packet::dst_mac(&frame), packet::src_mac(&frame))
        else {
            self.queue
                .push_reserved(arrive, seq, Ev::Deliver { link, frame });
            return;
        };
        // Rewritten in place when this is the only reference (the usual case): no new
        // allocation for the forwarded copy.
        let mut buf = frame;
        let bytes = Rc::make_mut(&mut buf);
        bytes[0..6].copy_from_slice(&dst);
        bytes[6..12].copy_from_slice(&src);
        self.hosts[gw].stack.stats.forwarded += 1;
        let id = self.cuts.start(
            Cut {
                at: arrive,
                seq,
                link,
                frame: Some(buf.clone()),
                arrived: (was_dst, was_src),
                pending: 0,
                reverted: false,
            },
            self.cur,
        );
        self.send(gw, out, buf, arrive, Some(id));
    }

    /// What gateway `gw` will do, at `at`, with `frame` arriving on `iface`, when that is
    /// certain now: forward it on interface `out` with new (source, destination) MACs,
    /// with no ARP to ask and nothing a switch would learn from it. `None` otherwise.
    fn gateway_plan(
        &self,
        gw: usize,
        iface: usize,
        frame: &[u8],
        at: Instant,
    ) -> Option<(usize, Mac, Mac)> {
        if !self.iface_carrier(gw, iface) {
            return None;
        }
        let stack = &self.hosts[gw].stack;
        let Rx::Forward(dst) = stack.classify(iface, frame) else {
            return None;
        };
        let (out, src, next) = stack.resolved_forward(at, dst)?;
        // The switch must already know the gateway on that port, or sending ahead of time
        // would teach it early.
        let link = stack.ifaces().get(out)?.link?;
        let seg = &self.segs[self.graph[link].seg];
        if seg.learn && !seg.fdb.contains(&(mac_key(src), link)) {
            return None;
        }
        Some((out, src, next))
    }

    /// Revert the frames forwarded ahead of time that have not reached their gateway yet
    /// (something their forwarding depended on is about to change): they are delivered to
    /// the gateway as usual, where and when they would have been.
    fn revert_cuts(&mut self) {
        for r in self.cuts.revert_after(self.cur) {
            let gw = self.graph[r.link].host;
            if let Some(h) = self.hosts.get_mut(gw) {
                h.stack.stats.forwarded = h.stack.stats.forwarded.saturating_sub(1);
            }
            self.queue.push_reserved(
                r.at,
                r.seq,
                Ev::Deliver {
                    link: r.link,
                    frame: Rc::new(r.frame),
                },
            );
        }
    }

    // ---- directors -----------------------------------------------------------------------

    fn dir(&mut self, host: usize) -> Option<&mut DirectorProc> {
        match self.hosts.get_mut(host).map(|h| &mut h.model) {
            Some(Model::Director(d)) => Some(d),
            _ => None,
        }
    }

    fn director_input(&mut self, host: usize, input: Input) {
        let now = self.now;
        let Some(d) = self.dir(host) else { return };
        if d.paused {
            if d.proc.is_some() {
                d.queued.push(input);
            }
            return;
        }
        let local = d.clock.local(now);
        let Some(p) = d.proc.as_mut() else { return };
        p.handle_input(local, input);
        self.drain(host);
    }

    /// Execute the director's outputs, then (re)arm its wake-up.
    fn drain(&mut self, host: usize) {
        let Some(mut p) = self.dir(host).and_then(|d| d.proc.take()) else {
            return;
        };
        while let Some(out) = p.poll_output() {
            self.execute(host, out);
        }
        let next = p.poll_timeout();
        let now = self.now;
        let Some(Model::Director(d)) = self.hosts.get_mut(host).map(|h| &mut h.model) else {
            return;
        };
        d.proc = Some(p);
        if let Some(local) = next {
            let at = d.clock.global(local).max(now);
            if d.wake != Some(at) {
                d.wake = Some(at);
                self.queue.push(
                    at,
                    Ev::Wake {
                        host: host_u32(host),
                        gen: d.gen,
                    },
                );
            }
        } else {
            d.wake = None;
        }
    }

    fn execute(&mut self, host: usize, out: Output) {
        match out {
            Output::Transmit { iface, frame } => {
                // Usually the very name handed over with a frame: found by pointer.
                let shared = match &self.hosts[host].model {
                    Model::Director(d) => d.iface_names.iter().position(|n| Arc::ptr_eq(n, &iface)),
                    _ => None,
                };
                let Some(idx) = shared.or_else(|| self.hosts[host].stack.iface_index(&iface))
                else {
                    let line = format!("lvs-sim: transmit on unknown interface {iface}");
                    self.trace_push(host, TraceEvent::Log { line });
                    return;
                };
                self.check_syn(host, &frame);
                self.transmit(host, idx, Rc::new(frame));
            }
            Output::AddVip(Vip {
                iface,
                addr,
                prefix,
            }) => {
                if let IpAddr::V4(a) = addr {
                    if self.hosts[host].stack.add_vip(&iface, a, prefix) {
                        self.inv.vip(HostId(host), a, true);
                    }
                }
                self.trace_push(
                    host,
                    TraceEvent::AddVip {
                        iface,
                        addr: addr.to_string(),
                    },
                );
            }
            Output::DelVip(Vip { iface, addr, .. }) => {
                if let IpAddr::V4(a) = addr {
                    self.hosts[host].stack.del_vip(&iface, a);
                    let still = self.hosts[host].stack.vips().any(|v| v == a);
                    self.inv.vip(HostId(host), a, still);
                }
                self.trace_push(
                    host,
                    TraceEvent::DelVip {
                        iface,
                        addr: addr.to_string(),
                    },
                );
            }
            Output::Ipvs(change) => {
                self.inv.ipvs(HostId(host), &change);
                self.trace_push(host, TraceEvent::Ipvs { change });
            }
            Output::StartProbe(probe) => self.start_probe(host, probe),
            Output::Notify(sc) => {
                if sc.kind == StateChangeKind::Instance {
                    self.inv.vrrp_state(HostId(host), &sc.name, sc.state);
                }
                let ev = TraceEvent::Notify {
                    kind: sc.kind,
                    name: sc.name,
                    state: sc.state,
                    priority: sc.priority,
                };
                self.trace_push(host, ev);
            }
            Output::Log { source, text } => self.log(host, source, &text),
        }
    }

    fn log(&mut self, host: usize, source: LogSource, text: &str) {
        let gen = self.dir(host).map_or(0, |d| d.gen.saturating_sub(1));
        let name = &self.hosts[host].name;
        let line = record::format_log(self.now, name, source, record::pid(host, gen, source), text);
        self.logs.push(LogLine {
            t: self.now,
            host: name.clone(),
            line: line.clone(),
        });
        self.trace_push(host, TraceEvent::Log { line });
    }

    /// A SYN a director forwards goes to the host owning the destination MAC.
    fn check_syn(&mut self, host: usize, frame: &[u8]) {
        // Most forwarded frames are not SYNs: read the flags byte before parsing.
        if !packet::is_tcp_syn(frame) {
            return;
        }
        let Ok(seg) = packet::parse_tcp(frame) else {
            return;
        };
        if !seg.flags.syn || seg.flags.ack {
            return;
        }
        let Some(target) = packet::dst_mac(frame).and_then(|m| self.macs.get(&m).copied()) else {
            return;
        };
        let addrs: Vec<Ipv4Addr> = self.hosts[target]
            .stack
            .ifaces()
            .iter()
            .flat_map(|i| i.spec.addrs.iter().map(|a| a.0))
            .collect();
        let before = self.inv.violations.len();
        self.inv
            .syn_forwarded(self.now, HostId(host), seg.dst, seg.dport, &addrs);
        let new: Vec<Violation> = self.inv.violations[before..].to_vec();
        for v in new {
            self.trace_push(usize::MAX, TraceEvent::Violation { violation: v });
        }
    }

    /// Evaluate a probe against the modelled network and schedule its result.
    fn start_probe(&mut self, host: usize, probe: Probe) {
        let Some(gen) = self.dir(host).map(|d| d.gen) else {
            return;
        };
        let (delay, result) = match &probe.kind {
            ProbeKind::Script { command } => {
                let status = self
                    .dir(host)
                    .and_then(|d| d.scripts.get(command).copied())
                    .unwrap_or(Some(0));
                (Duration::from_millis(1), ProbeResult::Exit(status))
            }
            ProbeKind::Tcp { target, .. } | ProbeKind::Http { target, .. } => {
                self.eval_connect(host, target.ip(), target.port(), &probe)
            }
        };
        let (delay, result) = if delay > probe.timeout {
            (probe.timeout, ProbeResult::Timeout)
        } else {
            (delay, result)
        };
        self.queue.push(
            self.now + delay,
            Ev::ProbeDone(Box::new(ProbeDone {
                host,
                gen,
                id: probe.id,
                result,
            })),
        );
    }

    fn eval_connect(
        &mut self,
        host: usize,
        ip: IpAddr,
        port: u16,
        probe: &Probe,
    ) -> (Duration, ProbeResult) {
        let timeout = (probe.timeout, ProbeResult::Timeout);
        let IpAddr::V4(ip) = ip else { return timeout };
        let Some(t) = self.hosts.iter().position(|h| {
            h.stack
                .ifaces()
                .iter()
                .any(|i| i.spec.addrs.iter().any(|a| a.0 == ip))
        }) else {
            return timeout;
        };
        let Some((rtt, loss)) = self.path(host, t, ip) else {
            return timeout;
        };
        // SYN and SYN-ACK each cross both links once.
        if loss > 0.0 {
            let r = &mut self.hosts[host].rng;
            if r.gen::<f64>() < loss || r.gen::<f64>() < loss {
                return timeout;
            }
        }
        let result = match &self.hosts[t].model {
            Model::Server(s) => match s.service(port).filter(|s| s.running) {
                Some(svc) => match probe.kind {
                    ProbeKind::Http { .. } => ProbeResult::Http {
                        status: svc.http_status,
                        digest: svc.http_digest.clone(),
                    },
                    _ => ProbeResult::Connected,
                },
                None => ProbeResult::ConnectFailed,
            },
            _ => ProbeResult::ConnectFailed,
        };
        (rtt, result)
    }

    /// Round trip time and one-way loss between two hosts sharing a segment, if they can talk.
    /// Round trip and loss from host `a` to the interface of host `b` that holds `ip`: a probe
    /// to an address whose interface is down fails even if another of `b`'s links is up.
    fn path(&self, a: usize, b: usize, ip: Ipv4Addr) -> Option<(Duration, f64)> {
        if self.blocked.contains(&(a, b)) || self.blocked.contains(&(b, a)) {
            return None;
        }
        for (ia, i) in self.hosts[a].stack.ifaces().iter().enumerate() {
            let Some(ea) = i.link.filter(|_| self.iface_carrier(a, ia)) else {
                continue;
            };
            for (ib, j) in self.hosts[b].stack.ifaces().iter().enumerate() {
                if !j.spec.addrs.iter().any(|x| x.0 == ip) {
                    continue;
                }
                let Some(eb) = j.link.filter(|_| self.iface_carrier(b, ib)) else {
                    continue;
                };
                let (la, lb) = (&self.graph[ea], &self.graph[eb]);
                if la.seg == lb.seg {
                    let rtt = (la.params.latency + lb.params.latency) * 2;
                    let loss = 1.0 - (1.0 - la.params.loss) * (1.0 - lb.params.loss);
                    return Some((rtt, loss));
                }
            }
        }
        None
    }

    fn start(&mut self, host: usize) {
        let now = self.now;
        let down: Vec<String> = match self.hosts.get(host) {
            Some(h) => (0..h.stack.ifaces().len())
                .filter(|i| !self.iface_carrier(host, *i))
                .map(|i| h.stack.ifaces()[i].spec.name.clone())
                .collect(),
            None => return,
        };
        let h = &mut self.hosts[host];
        let Model::Director(d) = &mut h.model else {
            return;
        };
        d.gen += 1;
        d.paused = false;
        d.queued.clear();
        d.wake = None;
        let env = HostEnv {
            hostname: h.name.clone(),
            ifaces: h.stack.ifaces().iter().map(|i| i.spec.clone()).collect(),
        };
        let mut p = (d.factory)(&env, &mut h.rng);
        let local = d.clock.local(now);
        for iface in down {
            p.handle_input(local, Input::Link { iface, up: false });
        }
        p.handle_timeout(local);
        d.proc = Some(p);
        self.trace_push(host, TraceEvent::Process { running: true });
        self.drain(host);
    }

    fn kill(&mut self, host: usize) {
        let Some(d) = self.dir(host) else { return };
        d.proc = None;
        d.wake = None;
        d.paused = false;
        d.queued.clear();
        let keep = d.keep_vips_on_kill;
        if !keep {
            let vips: Vec<Ipv4Addr> = self.hosts[host].stack.vips().collect();
            self.hosts[host].stack.clear_vips();
            for v in vips {
                self.inv.vip(HostId(host), v, false);
                self.trace_push(
                    host,
                    TraceEvent::DelVip {
                        iface: "*".into(),
                        addr: v.to_string(),
                    },
                );
            }
        }
        self.inv.process_gone(HostId(host));
        self.trace_push(host, TraceEvent::Process { running: false });
    }

    fn describe(&self, f: &Fault) -> String {
        let n = |h: &HostId| self.host_name(*h).to_string();
        let names = |v: &[HostId]| v.iter().map(n).collect::<Vec<_>>().join(",");
        match f {
            Fault::Kill(h) => format!("kill {}", n(h)),
            Fault::Stop(h) => format!("stop {}", n(h)),
            Fault::Pause(h) => format!("pause {}", n(h)),
            Fault::Resume(h) => format!("resume {}", n(h)),
            Fault::Restart(h) => format!("restart {}", n(h)),
            Fault::Nic { host, iface, up } => format!(
                "nic {} {iface} {}",
                n(host),
                if *up { "up" } else { "down" }
            ),
            Fault::Link { host, iface, up } => format!(
                "link {} {iface} {}",
                n(host),
                if *up { "up" } else { "down" }
            ),
            Fault::LinkParams {
                host,
                iface,
                params,
            } => format!("link params {} {iface} {params:?}", n(host)),
            Fault::Partition {
                from,
                to,
                symmetric,
            } => {
                format!(
                    "partition [{}] {} [{}]",
                    names(from),
                    if *symmetric { "<->" } else { "->" },
                    names(to)
                )
            }
            Fault::Heal => "heal".to_string(),
            Fault::Service {
                host,
                port,
                running,
            } => {
                format!(
                    "service {} :{port} {}",
                    n(host),
                    if *running { "start" } else { "stop" }
                )
            }
            Fault::ClockDrift { host, ppm } => format!("clock drift {} {ppm} ppm", n(host)),
        }
    }

    /// Inject a fault now.
    pub fn apply(&mut self, fault: Fault) {
        self.sync_links();
        self.apply_inner(fault);
        if self.inv.needs_check() {
            self.check_invariants();
        }
    }

    fn apply_inner(&mut self, fault: Fault) {
        self.revert_cuts();
        let fault_text = self.describe(&fault);
        let host_of = match &fault {
            Fault::Kill(h)
            | Fault::Stop(h)
            | Fault::Pause(h)
            | Fault::Resume(h)
            | Fault::Restart(h) => h.0,
            Fault::Nic { host, .. }
            | Fault::Link { host, .. }
            | Fault::LinkParams { host, .. }
            | Fault::Service { host, .. }
            | Fault::ClockDrift { host, .. } => host.0,
            Fault::Partition { .. } | Fault::Heal => usize::MAX,
        };
        self.trace_push(host_of, TraceEvent::Fault { fault: fault_text });
        self.inv.touch();
        let now = self.now;
        match fault {
            Fault::Kill(h) => self.kill(h.0),
            Fault::Stop(h) => {
                let Some(d) = self.dir(h.0) else { return };
                d.paused = false;
                let local = d.clock.local(now);
                if let Some(p) = d.proc.as_mut() {
                    p.handle_input(local, Input::Admin(Admin::Stop));
                    self.drain(h.0);
                    if let Some(d) = self.dir(h.0) {
                        d.proc = None;
                        d.wake = None;
                        d.queued.clear();
                    }
                    self.inv.process_gone(h);
                    self.trace_push(h.0, TraceEvent::Process { running: false });
                }
            }
            Fault::Pause(h) => {
                if let Some(d) = self.dir(h.0).filter(|d| d.proc.is_some()) {
                    d.paused = true;
                }
            }
            Fault::Resume(h) => {
                let Some(d) = self.dir(h.0).filter(|d| d.paused) else {
                    return;
                };
                d.paused = false;
                let local = d.clock.local(now);
                let queued = std::mem::take(&mut d.queued);
                if let Some(p) = d.proc.as_mut() {
                    for i in queued {
                        p.handle_input(local, i);
                    }
                    p.handle_timeout(local);
                }
                d.wake = None;
                self.drain(h.0);
            }
            Fault::Restart(h) => {
                if self.director_alive(h) {
                    self.apply_inner(Fault::Stop(h));
                }
                self.start(h.0);
            }
            Fault::Nic { host, iface, up } => {
                let Some(i) = self
                    .hosts
                    .get(host.0)
                    .and_then(|x| x.stack.iface_index(&iface))
                else {
                    return;
                };
                let before = self.iface_carrier(host.0, i);
                self.hosts[host.0].stack.set_up(i, up);
                if let Some(e) = self.hosts[host.0].stack.ifaces()[i].link {
                    self.graph[e].iface_up = up;
                }
                self.carrier_changed(host.0, i, before);
            }
            Fault::Link { host, iface, up } => {
                let Some(i) = self
                    .hosts
                    .get(host.0)
                    .and_then(|x| x.stack.iface_index(&iface))
                else {
                    return;
                };
                let before = self.iface_carrier(host.0, i);
                if let Some(e) = self.hosts[host.0].stack.ifaces()[i].link {
                    self.graph[e].up = up;
                }
                self.carrier_changed(host.0, i, before);
            }
            Fault::LinkParams {
                host,
                iface,
                params,
            } => {
                let e = self.hosts.get(host.0).and_then(|x| {
                    x.stack
                        .iface_index(&iface)
                        .and_then(|i| x.stack.ifaces()[i].link)
                });
                if let Some(e) = e {
                    self.graph[e].set_params(params);
                }
            }
            Fault::Partition {
                from,
                to,
                symmetric,
            } => {
                for a in &from {
                    for b in &to {
                        if a != b {
                            self.blocked.insert((a.0, b.0));
                            if symmetric {
                                self.blocked.insert((b.0, a.0));
                            }
                        }
                    }
                }
            }
            Fault::Heal => self.blocked.clear(),
            Fault::Service {
                host,
                port,
                running,
            } => {
                if let Some(Model::Server(s)) = self.hosts.get_mut(host.0).map(|h| &mut h.model) {
                    if s.set_running(port, running) {
                        self.trace_push(host.0, TraceEvent::Service { port, running });
                    }
                }
            }
            Fault::ClockDrift { host, ppm } => {
                if let Some(d) = self.dir(host.0) {
                    d.clock.set_drift(now, ppm);
                    // The pending wake-up was computed with the old rate.
                    d.wake = None;
                    self.drain(host.0);
                }
            }
        }
    }

    fn carrier_changed(&mut self, host: usize, iface: usize, before: bool) {
        let after = self.iface_carrier(host, iface);
        if before != after {
            let name = self.hosts[host].stack.ifaces()[iface].spec.name.clone();
            self.director_input(
                host,
                Input::Link {
                    iface: name,
                    up: after,
                },
            );
        }
    }

    // ---- invariants ----------------------------------------------------------------------

    /// Connected part of every host: running directors that share a segment through live links
    /// with no partition in either direction are joined (transitively, director to director —
    /// VRRP adverts are not routed); every other host is a part of its own; dead or paused
    /// directors are in none.
    pub fn parts(&self) -> Vec<usize> {
        let n = self.hosts.len();
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                p[x] = p[p[x]];
                x = p[x];
            }
            x
        }
        let participates = |h: usize| match &self.hosts[h].model {
            Model::Director(d) => d.proc.is_some() && !d.paused,
            _ => true,
        };
        let is_director = |h: usize| matches!(self.hosts[h].model, Model::Director(_));
        for seg in &self.segs {
            let members: Vec<usize> = self
                .graph
                .edges(seg.node)
                .filter(|r| self.iface_carrier(r.weight().host, r.weight().iface))
                .map(|r| r.weight().host)
                .filter(|h| is_director(*h) && participates(*h))
                .collect();
            for (i, &a) in members.iter().enumerate() {
                for &b in &members[i + 1..] {
                    if !self.blocked.contains(&(a, b)) && !self.blocked.contains(&(b, a)) {
                        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
                        parent[ra.max(rb)] = ra.min(rb);
                    }
                }
            }
        }
        (0..n)
            .map(|h| {
                if participates(h) {
                    find(&mut parent, h)
                } else {
                    NO_PART
                }
            })
            .collect()
    }

    /// Every gateway ARP entry for a held VIP points at a holder's interface.
    fn gateways_agree(&self) -> bool {
        for vip in self.inv.vips() {
            let holders = self.inv.vip_holders(vip);
            let macs: Vec<Mac> = holders
                .iter()
                .flat_map(|h| self.hosts[h.0].stack.ifaces().iter().map(|i| i.spec.mac))
                .collect();
            for h in &self.hosts {
                if !h.stack.forward {
                    continue;
                }
                if let Some(n) = h.stack.lookup(self.now, vip) {
                    if !macs.contains(&n.mac) {
                        return false;
                    }
                }
            }
        }
        true
    }

    fn check_invariants(&mut self) {
        let parts = self.parts();
        let extra = self.gateways_agree();
        let before = self.inv.violations.len();
        self.inv.check(self.now, &parts, extra);
        let new: Vec<Violation> = self.inv.violations[before..].to_vec();
        for v in new {
            self.trace_push(usize::MAX, TraceEvent::Violation { violation: v });
        }
        if self.check_at.is_some_and(|c| c <= self.now) {
            self.check_at = None;
        }
        // Convergence also depends on ARP caches the checker is not told about: poll it.
        let poll = self
            .inv
            .liveness_pending()
            .then(|| self.now + LIVENESS_POLL);
        let next = match (self.inv.next_deadline(), poll) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(at) = next {
            if self.check_at.is_none_or(|c| at < c) {
                self.check_at = Some(at);
                self.queue.push(at, Ev::Check);
            }
        }
    }
}

/// Segment names, for reports.
impl Sim {
    /// Name of a segment.
    pub fn segment_name(&self, seg: SegId) -> Option<&str> {
        self.segs.get(seg.0).map(|s| s.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_stay_small() {
        // Heap entries are moved on every push/pop; big payloads must stay boxed.
        assert!(
            std::mem::size_of::<Ev>() <= 24,
            "{}",
            std::mem::size_of::<Ev>()
        );
    }
}
