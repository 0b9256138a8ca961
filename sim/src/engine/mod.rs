//! The simulator: the `Sim` and its event loop (here), split by concern as turmoil splits
//! its own: `world` (what segments, links and hosts are made of: state only, reading no
//! sibling), `topology` (segments, hosts, links: building the world), `links` (frames on
//! the wire, switching, cut-through), `hosts` (what a host does with a frame or timer;
//! director processes and their outputs), `probes` (health checks evaluated against the
//! network), `faults` (injection), `checks` (connected parts and the invariant checks),
//! `inspect` (reading the world). The children add `impl Sim` blocks and read `world` and
//! this module; none reads another, and this module reads only `world`.
//!
//! Modelling choices (each one a place where the model is simpler than Linux):
//! - A director process sees every frame addressed to its interface's MAC or to a group
//!   address (what an AF_PACKET socket sees), after the kernel stack has answered ARP for
//!   the host's addresses and VIPs. Traffic for a VIP the director does not hold is still
//!   handed over: deciding not to forward it is the director's job.
//! - SIGKILL drops the process; its VIPs stay configured, as on Linux (the kernel answers
//!   ARP for them; the next start removes them at init, `(NAME) removing VIPs.`), but no
//!   longer count as held for the invariants (no live keepalived claims them). The kernel's
//!   IPVS rules would keep forwarding what reaches such a host; the simulated director's
//!   data plane dies with the process, so traffic to a leftover VIP is dropped there.
//!   `set_keep_vips_on_kill(host, false)` drops the VIPs with the process. SIGTERM hands `Admin::Stop`
//!   to the process and executes what it outputs at once; the process exits after the
//!   host's exit time (`ProcessTiming`), taking no input meanwhile; a stop of a paused
//!   process acts at once. A pause keeps the kernel running (ARP still answered).
//! - A process runs its first step the host's start time after exec and wakes late by the
//!   host's wake latency (drawn per deadline from the host's own process stream), as a real
//!   keepalived does; a frame is handed over on arrival.
//! - Clock drift applies to director processes; other models run on simulator time.
//! - TCP_CHECK / HTTP_GET probes are connections from the director host's own address
//!   (`crate::prober`: Linux's SYN retransmissions, connect_timeout), routed like any other
//!   packet (gateway included), answered by the real server's TCP model; an HTTP answer's
//!   status and digest are the service's configured ones. Scripts answer after 1 ms with
//!   the scenario's result.
//! - Jitter is uniform per frame and may reorder close frames; `reorder` holds a frame back
//!   further. ARP entries expire after `arp_timeout` (no STALE/DELAY/PROBE states).
//! - IPv4 only: IPv6 VIPs are traced but not installed.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use lvs_core::check::probe::{ProbeId, ProbeResult};
use lvs_core::Instant;
use petgraph::graph::{EdgeIndex, UnGraph};
use rustc_hash::FxHashMap;

use crate::client::RequestRecord;
use crate::cut::Cuts;
use crate::invariants::Invariants;
use crate::packet::Mac;
use crate::record::{LogLine, Metrics, TraceEntry, TraceEvent};
use crate::stack::Fx;
use crate::HostId;

mod checks;
mod faults;
mod hosts;
mod inspect;
mod links;
mod probes;
mod topology;
mod world;

pub use world::LinkParams;

use world::{host_u32, Host, Link, Model, Node, Plan, Segment};

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
    /// A client's requests are a size its model cannot send.
    #[error(
        "client {host}: a {protocol} request of {size} bytes: the client sends {min} to {max} \
         (one TCP segment, or one UDP datagram holding the request's id)"
    )]
    RequestSize {
        /// Host name.
        host: String,
        /// `tcp` or `udp`.
        protocol: &'static str,
        /// The size asked for.
        size: u32,
        /// The smallest it sends.
        min: u32,
        /// The largest it sends.
        max: u32,
    },
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
    /// A script the director runs (`vrrp_script` or MISC_CHECK) exits with `status` from now
    /// on (`None`: killed by a signal).
    ScriptExit {
        /// The director's host.
        host: HostId,
        /// The command line, as configured.
        command: String,
        /// Exit status.
        status: Option<i32>,
    },
}

pub(super) struct ProbeDone {
    pub(super) host: usize,
    pub(super) gen: u32,
    pub(super) id: ProbeId,
    pub(super) result: ProbeResult,
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
    /// The director is exec'd (`start_at`).
    Start {
        host: u32,
    },
    /// Exec'd process `gen` runs its first step.
    Ready {
        host: u32,
        gen: u32,
    },
    /// SIGTERM'd process `gen` exits.
    Exit {
        host: u32,
        gen: u32,
    },
    Fault(Box<Fault>),
    Check,
}

// Heap entries are (time, seq, Ev) and move on every sift: keep Ev two words.
const _: () = assert!(std::mem::size_of::<Ev>() == 16);

/// The simulated world.
pub struct Sim {
    seed: u64,
    scenario: String,
    now: Instant,
    queue: crate::queue::EventQueue<Ev>,
    graph: UnGraph<Node, Link>,
    hosts: Vec<Host>,
    segs: Vec<Segment>,
    /// The host each interface MAC belongs to (looked up per forwarded SYN, never iterated).
    macs: FxHashMap<Mac, usize>,
    blocked: BTreeSet<(usize, usize)>,
    inv: Invariants,
    /// Every (director, service, real server address, port) a director's checkers ever put
    /// in its IPVS table: what "settled tables" are judged over.
    known_dests: BTreeSet<(usize, lvs_core::ipvs::ServiceKey, std::net::IpAddr, u16)>,
    metrics: Metrics,
    logs: Vec<LogLine>,
    trace: Vec<TraceEntry>,
    /// Record every finished request in the trace (off for long runs).
    pub trace_requests: bool,
    /// Where the trace is written as the run goes ([`Sim::stream_trace`]).
    trace_sink: Option<crate::record::TraceWriter<Box<dyn std::io::Write>>>,
    /// Forward frames through gateways without a gateway event (see `cut`); on by default.
    pub cut_through: bool,
    cuts: Cuts,
    /// A stack was lent out (`stack_mut`): the links' interface mirrors may be stale.
    links_stale: bool,
    /// The gateways' forwarding decisions worked out so far (`links::gateway_plan`), valid
    /// until the next revert; a handful of destinations, so a list.
    plans: Vec<Plan>,
    /// Gateway deliveries found by `send`: (arrival, reserved sequence number, link).
    gateway_bound: Vec<(Instant, u64, EdgeIndex)>,
    /// Key (time, sequence number) of the event handled last.
    cur: (Instant, u64),
    fx: Fx,
    check_at: Option<Instant>,
    reqs: Vec<RequestRecord>,
    /// What the SVG timeline gathers as the run goes (gateway ARP entries, request bins).
    timeline: crate::svg::Timeline,
    targets: Vec<EdgeIndex>,
    /// Emptied frame boxes for the next frames sent (`hosts::boxed`).
    spare: Vec<Rc<Vec<u8>>>,
    /// The addresses of a forwarded SYN's target host (`check_syn`), kept between calls.
    syn_addrs: Vec<IpAddr>,
    events: u64,
}

impl Sim {
    /// An empty world seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Sim {
            seed,
            scenario: String::new(),
            now: Instant::ZERO,
            queue: crate::queue::EventQueue::new(),
            graph: UnGraph::default(),
            hosts: Vec::new(),
            segs: Vec::new(),
            macs: FxHashMap::default(),
            blocked: BTreeSet::new(),
            inv: Invariants::default(),
            known_dests: BTreeSet::new(),
            metrics: Metrics::default(),
            logs: Vec::new(),
            trace: Vec::new(),
            trace_requests: true,
            trace_sink: None,
            cut_through: true,
            cuts: Cuts::default(),
            links_stale: false,
            plans: Vec::new(),
            gateway_bound: Vec::new(),
            cur: (Instant::ZERO, 0),
            fx: Fx::default(),
            check_at: None,
            reqs: Vec::new(),
            timeline: crate::svg::Timeline::default(),
            targets: Vec::new(),
            spare: Vec::new(),
            syn_addrs: Vec::new(),
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
        self.handle(t, seq, ev);
        true
    }

    /// Handle the event just taken from the queue.
    fn handle(&mut self, t: Instant, seq: u64, ev: Ev) {
        self.now = t;
        self.cur = (t, seq);
        self.events += 1;
        self.dispatch(ev);
        // Safety can only change when the checker was told of a change (VRRP state, VIPs,
        // faults); tolerances running out and liveness polling come as Check events.
        if self.inv.needs_check() || self.check_at.is_some_and(|c| c <= self.now) {
            self.check_invariants();
        }
    }

    /// Run every event up to and including `until`; the clock ends at `until`.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            // As `step` does: the links' mirrors are read back before the next frame moves.
            self.sync_links();
            let Some((t, seq, ev)) = self.queue.pop_due(until) else {
                break;
            };
            self.handle(t, seq, ev);
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
                let (host, iface) = (l.host, l.iface);
                let arp = self.gateway_arp_sender(host, &frame);
                self.deliver(host, iface, frame);
                if let Some(ip) = arp {
                    self.note_gateway_arp(host, ip);
                }
            }
            Ev::Onward { link, cut } => {
                if let Some(frame) = self.cuts.onward(cut) {
                    let l = &self.graph[link];
                    self.deliver(l.host, l.iface, frame)
                }
            }
            Ev::Timer { host, token } => self.timer(host as usize, token),
            Ev::Wake { host, gen } => self.wake(host as usize, gen),
            Ev::ProbeDone(p) => {
                let ProbeDone {
                    host,
                    gen,
                    id,
                    result,
                } = *p;
                self.probe_result(host, gen, id, result);
            }
            Ev::Start { host } => self.exec(host as usize),
            Ev::Ready { host, gen } => self.start(host as usize, gen),
            Ev::Exit { host, gen } => self.exited(host as usize, gen),
            Ev::Fault(f) => self.apply_inner(*f),
            Ev::Check => {}
        }
    }

    /// The address whose entry in a gateway's cache an ARP frame (its sender) or an IPv6
    /// neighbour discovery frame (a solicitation's sender, an advertisement's target)
    /// reaching it may change (what the timeline's gateway lanes show).
    fn gateway_arp_sender(&self, host: usize, frame: &[u8]) -> Option<IpAddr> {
        use lvs_core::wire::icmpv6::{Ndisc, NdiscFrame};
        if !matches!(self.hosts.get(host)?.model, Model::Gateway) {
            return None;
        }
        if let Ok(a) = crate::packet::parse_arp(frame) {
            return Some(IpAddr::V4(a.spa));
        }
        if crate::packet::ethertype(frame) != Some(crate::packet::ETHERTYPE_IPV6) {
            return None;
        }
        let nd = NdiscFrame::parse(frame)?;
        Some(IpAddr::V6(match nd.msg {
            Ndisc::Solicit(_) => nd.src,
            Ndisc::Advert(na) => na.target,
        }))
    }

    /// Hand the gateway's current entry for `ip` to the timeline, which keeps changes, and
    /// trace a change with the host whose interface has the MAC.
    fn note_gateway_arp(&mut self, host: usize, ip: IpAddr) {
        let Some(mac) = self
            .hosts
            .get(host)
            .and_then(|h| match ip {
                IpAddr::V4(v4) => h.stack.neigh.get(&v4),
                IpAddr::V6(v6) => h.stack.neigh6.get(&v6),
            })
            .map(|n| n.mac)
        else {
            return;
        };
        if self.timeline.arp_entry(self.now.as_nanos(), host, ip, mac) {
            let owner = self.macs.get(&mac).and_then(|&o| self.hosts.get(o));
            let event = TraceEvent::GatewayArp {
                ip: ip.to_string(),
                mac: crate::record::mac_text(mac),
                owner: owner.map(|h| h.name.clone()),
            };
            self.trace_push(host, event);
        }
    }

    fn trace_push(&mut self, host: usize, event: TraceEvent) {
        self.trace_record(host, event, true);
    }

    /// Write `event` to the streamed trace, if one is written, and keep it when `keep`.
    fn trace_record(&mut self, host: usize, event: TraceEvent, keep: bool) {
        let host = match self.hosts.get(host) {
            Some(h) => h.label.clone(),
            None => Arc::from(""),
        };
        let entry = TraceEntry {
            t: self.now.as_nanos(),
            host,
            event,
        };
        if let Some(w) = &mut self.trace_sink {
            w.entry(&entry);
        }
        if keep {
            self.trace.push(entry);
        }
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
                let frame = self.boxed(frame);
                self.transmit(host, iface, frame);
            }
            self.fx.tx = tx;
        }
        if !self.reqs.is_empty() {
            let mut reqs = std::mem::take(&mut self.reqs);
            for r in reqs.drain(..) {
                crate::record::account(&mut self.metrics, &r);
                self.timeline.request(&r);
                let ok = matches!(r.outcome, crate::client::Outcome::Ok { .. });
                // A streamed trace has every request; memory keeps the failures only.
                let keep = !ok || (self.trace_requests && self.trace_sink.is_none());
                if keep || self.trace_sink.is_some() {
                    self.trace_record(host, TraceEvent::Request { record: r }, keep);
                }
            }
            self.reqs = reqs;
        }
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
