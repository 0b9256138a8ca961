//! Runs a resolved [`Scenario`] on the simulator (`lvs_sim`) and checks its expectations.
//!
//! [`build`] maps the scenario onto a [`Sim`]: segments become learning switches whose
//! latency, jitter and loss are split over the two links a frame crosses; hosts are added in
//! file order (so a scenario `HostId` is the simulator's); directors run the real `Director`
//! built from their keepalived.conf; the fault timeline is scheduled up front. [`run`] runs
//! to the end, takes the `ipvsadm -L -n` snapshots on the way and turns every `[expect]`
//! entry into a [`Verdict`].
//!
//! Modelling notes (where the simulator is simpler than the scenario format):
//! - A segment's one-way `latency`/`jitter` is split evenly over the sender's and the
//!   receiver's link; its `loss` becomes `1 - sqrt(1 - loss)` per link so a frame crossing
//!   two links is lost with the stated probability. A link fault aimed at one host or
//!   interface sets that link alone (the peer keeps its half of the segment's latency).
//! - `kill`/`stop`/`pause` of a real server stops all its services; `restart`/`resume`
//!   starts them again. A service's `response_size` and a workload's `request_size` are not
//!   modelled (one data segment each way).
//! - A client uses its first interface and needs a default gateway.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use lvs_core::director::StateChangeKind;
use lvs_core::director::VrrpState as CoreState;
use lvs_core::ipvs::{IpvsChange, ServiceKey, SockAddr};
use lvs_core::Instant;
use lvs_sim::client::{ClientSpec, Workload as SimWorkload};
use lvs_sim::invariants::{Violation, ViolationKind};
use lvs_sim::record::TraceEvent;
use lvs_sim::server::{RealServerSpec, ServiceSpec};
use lvs_sim::stack::IfaceSpec;
use lvs_sim::{Fault as SimFault, LinkParams, SegId, Sim, SimError};

use crate::{
    format_duration, FaultAction, Host, HostId, IfaceRef, LinkTarget, LoadPattern, Role, Scenario,
    VrrpState,
};

/// Why a scenario cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The simulator refused the topology.
    #[error("{file}: host {host}: {source}")]
    Sim {
        /// Scenario file.
        file: PathBuf,
        /// Host being added.
        host: String,
        /// What the simulator said.
        source: SimError,
    },
    /// A director's keepalived.conf has errors keepalived would refuse.
    #[error("{file}: host {host}: {source}")]
    Config {
        /// Scenario file.
        file: PathBuf,
        /// The director.
        host: String,
        /// The diagnostics.
        source: lvs_sim::keepalived::ConfError,
    },
    /// A host cannot be modelled as written.
    #[error("{file}: host {host}: {why}")]
    Host {
        /// Scenario file.
        file: PathBuf,
        /// The host.
        host: String,
        /// Why.
        why: String,
    },
}

/// How to run a scenario.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Seed instead of the scenario's own.
    pub seed: Option<u64>,
    /// Stop at this virtual time instead of the scenario's duration.
    pub until: Option<Duration>,
    /// Keep the JSON trace in the report.
    pub trace_json: bool,
    /// Keep the SVG timeline in the report.
    pub svg: bool,
}

/// One director's keepalived-style log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirectorLog {
    /// Host name.
    pub director: String,
    /// Lines stamped with virtual time, one per line.
    pub text: String,
}

/// One `ipvsadm -L -n` taken during the run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableSnapshot {
    /// Virtual time.
    pub at: Duration,
    /// Host name.
    pub director: String,
    /// The table; `None` when no running director had one to show.
    pub table: Option<String>,
    /// Whether the director process was running.
    pub running: bool,
}

/// One real server's part of the completed requests.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServerShare {
    /// Host name.
    pub server: String,
    /// Requests it answered.
    pub requests: u64,
    /// Fraction of all answered requests (0..=1).
    pub share: f64,
}

/// What the run amounted to.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Client-visible failover: first failed request to the first success after it.
    pub failover: Option<Duration>,
    /// Longest time a VIP held before had no owner after the first fault.
    pub longest_vip_gap: Option<Duration>,
    /// Requests started.
    pub requests_sent: u64,
    /// Requests answered.
    pub requests_ok: u64,
    /// Requests failed.
    pub requests_failed: u64,
    /// Failed requests whose connection had been established.
    pub connections_broken: u64,
    /// Answered requests per real server, in name order.
    pub shares: Vec<ServerShare>,
    /// Jain's fairness index of `shares` (None: nothing answered).
    pub jain_index: Option<f64>,
    /// Simulator events processed.
    pub events: u64,
}

/// The outcome of one expectation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    /// Which expectation (`vip_owner 223.202.22.118`, `max_failed_requests`, ...).
    pub name: String,
    /// Whether it held.
    pub pass: bool,
    /// What the scenario asked for.
    pub expected: String,
    /// What the run showed.
    pub observed: String,
}

/// Everything a run leaves behind.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub source: PathBuf,
    /// Seed used.
    pub seed: u64,
    /// Virtual time the run ended at.
    pub end: Duration,
    /// Per-director logs, in file order.
    pub logs: Vec<DirectorLog>,
    /// `ipvsadm -L -n` snapshots, in time order.
    pub snapshots: Vec<TableSnapshot>,
    /// Totals.
    pub summary: Summary,
    /// One per expectation, in `[expect]` order of kinds.
    pub verdicts: Vec<Verdict>,
    /// Every invariant violation the simulator saw (safety and liveness).
    pub violations: Vec<Violation>,
    /// The simulator's JSON trace, when asked for.
    pub trace_json: Option<String>,
    /// The SVG timeline, when asked for.
    pub svg: Option<String>,
}

impl Report {
    /// True when every verdict passed.
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.pass)
    }

    /// The verdicts that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| !v.pass)
    }

    /// The directors' logs, one block each.
    pub fn render_logs(&self) -> String {
        let mut out = String::new();
        for l in &self.logs {
            let _ = writeln!(out, "==> {} keepalived log <==", l.director);
            out.push_str(&l.text);
            if l.text.is_empty() {
                out.push_str("(nothing logged)\n");
            }
            out.push('\n');
        }
        out
    }

    /// The `ipvsadm -L -n` snapshots.
    pub fn render_snapshots(&self) -> String {
        let mut out = String::new();
        for s in &self.snapshots {
            let _ = writeln!(
                out,
                "==> {} ipvsadm -L -n at {} <==",
                s.director,
                secs(s.at)
            );
            match (&s.table, s.running) {
                (Some(t), _) => {
                    out.push_str(t);
                    if !t.ends_with('\n') {
                        out.push('\n');
                    }
                }
                (None, false) => out.push_str("(keepalived not running)\n"),
                (None, true) => out.push_str("(director shows no IPVS table)\n"),
            }
            out.push('\n');
        }
        out
    }

    /// The summary block.
    pub fn render_summary(&self) -> String {
        let s = &self.summary;
        let mut out = String::new();
        let opt = |d: Option<Duration>| d.map_or_else(|| "-".to_string(), secs);
        let _ = writeln!(
            out,
            "==> summary: {} seed {} until {} <==",
            self.scenario,
            self.seed,
            secs(self.end)
        );
        let _ = writeln!(out, "failover (client view): {}", opt(s.failover));
        let _ = writeln!(out, "longest VIP gap:        {}", opt(s.longest_vip_gap));
        let _ = writeln!(
            out,
            "requests: sent {} ok {} failed {} (connections broken {})",
            s.requests_sent, s.requests_ok, s.requests_failed, s.connections_broken
        );
        for sh in &s.shares {
            let _ = writeln!(
                out,
                "  {:<12} {:>7} {:>6.1}%",
                sh.server,
                sh.requests,
                sh.share * 100.0
            );
        }
        let _ = writeln!(
            out,
            "Jain's index: {}",
            s.jain_index
                .map_or_else(|| "-".to_string(), |j| format!("{j:.3}"))
        );
        out
    }

    /// The verdicts and violations block.
    pub fn render_verdicts(&self) -> String {
        let mut out = String::new();
        out.push_str("==> verdicts <==\n");
        for v in &self.verdicts {
            let _ = writeln!(
                out,
                "{} {}: expected {}, observed {}",
                if v.pass { "PASS" } else { "FAIL" },
                v.name,
                v.expected,
                v.observed
            );
        }
        if !self.violations.is_empty() {
            out.push_str("==> invariant violations <==\n");
            for v in &self.violations {
                let _ = writeln!(out, "{} {:?}: {}", v.t, v.kind, v.detail);
            }
        }
        out
    }

    /// What `lvsd sim` prints: logs, tables, summary, verdicts.
    pub fn render_text(&self) -> String {
        let mut out = self.render_logs();
        out.push_str(&self.render_snapshots());
        out.push_str(&self.render_summary());
        out.push('\n');
        out.push_str(&self.render_verdicts());
        out
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", Instant::from_nanos(d.as_nanos() as u64))
}

fn at(d: Duration) -> Instant {
    Instant::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn sim_host(h: HostId) -> lvs_sim::HostId {
    lvs_sim::HostId(h.0)
}

/// The link parameters of one side of a segment.
fn half_link(seg: &crate::Segment) -> LinkParams {
    LinkParams {
        latency: seg.latency / 2,
        jitter: seg.jitter / 2,
        loss: per_link_loss(seg.loss),
        duplicate: seg.duplicate,
        reorder: seg.reorder,
        ..LinkParams::default()
    }
}

/// Per-link loss so that crossing two links loses a frame with probability `loss`.
fn per_link_loss(loss: f64) -> f64 {
    let loss = loss.clamp(0.0, 1.0);
    if loss >= 1.0 {
        1.0
    } else {
        1.0 - (1.0 - loss).sqrt()
    }
}

fn ifaces_of(h: &Host) -> Vec<IfaceSpec> {
    h.interfaces
        .iter()
        .map(|i| IfaceSpec::new(&i.name, i.mac.0, i.addr, i.prefix_len))
        .collect()
}

/// Maps the scenario onto a simulator seeded with `seed`, faults scheduled, nothing run yet.
pub fn build(s: &Scenario, seed: u64) -> Result<Sim, RunError> {
    let mut sim = Sim::new(seed);
    for seg in &s.segments {
        sim.add_segment(&seg.name, true);
    }
    for h in &s.hosts {
        let sim_err = |source| RunError::Sim {
            file: s.source.clone(),
            host: h.name.clone(),
            source,
        };
        let host_err = |why: &str| RunError::Host {
            file: s.source.clone(),
            host: h.name.clone(),
            why: why.to_string(),
        };
        let id = match &h.role {
            Role::Director(d) => {
                let file = d.keepalived_conf.file_name.display().to_string();
                let factory = lvs_sim::keepalived::factory(&file, &d.keepalived_conf.text)
                    .map_err(|source| RunError::Config {
                        file: s.source.clone(),
                        host: h.name.clone(),
                        source,
                    })?;
                sim.add_director_at(&h.name, ifaces_of(h), factory, at(d.start_at))
                    .map_err(sim_err)?
            }
            Role::RealServer(r) => {
                let services = r
                    .services
                    .iter()
                    .map(|sv| ServiceSpec {
                        max_concurrency: sv.capacity,
                        ..ServiceSpec::new(sv.port, sv.service_time)
                    })
                    .collect();
                let spec = RealServerSpec {
                    lo_vips: r.vips_on_lo.clone(),
                    arp_ignore: r.arp_ignore,
                    arp_announce: r.arp_announce,
                    gateway: h.gateway,
                    services,
                };
                sim.add_real_server(&h.name, ifaces_of(h), spec)
                    .map_err(sim_err)?
            }
            Role::Client(c) => {
                let iface = ifaces_of(h)
                    .into_iter()
                    .next()
                    .ok_or_else(|| host_err("a client needs an interface"))?;
                let gateway = h
                    .gateway
                    .ok_or_else(|| host_err("a client needs a default gateway"))?;
                let w = &c.workload;
                let workload = match w.pattern {
                    LoadPattern::Open { rate } => SimWorkload::Open { rate },
                    LoadPattern::Closed {
                        concurrency,
                        think_time,
                    } => SimWorkload::Closed {
                        concurrency,
                        think: think_time,
                    },
                };
                let spec = ClientSpec {
                    start: at(w.start),
                    stop: Some(at(w.stop)),
                    ..ClientSpec::new(w.target, workload)
                };
                sim.add_client(&h.name, iface, gateway, spec)
                    .map_err(sim_err)?
            }
            Role::Gateway(g) => sim
                .add_gateway(&h.name, ifaces_of(h), g.arp_cache_timeout)
                .map_err(sim_err)?,
        };
        if id.0 != h.id.0 {
            return Err(host_err("host ids out of step with the simulator"));
        }
        for i in &h.interfaces {
            let seg = s
                .segments
                .get(i.segment.0)
                .ok_or_else(|| host_err("interface on an unknown segment"))?;
            sim.connect(id, &i.name, SegId(i.segment.0), half_link(seg))
                .map_err(sim_err)?;
        }
    }
    let grace = split_brain_grace(s);
    let inv = sim.invariant_config_mut();
    inv.split_brain_grace = inv.split_brain_grace.max(grace);
    inv.vip_grace = inv.vip_grace.max(grace);
    let mut links = Links::new(s);
    for f in &s.faults {
        for sf in map_fault(s, &f.action, &mut links) {
            sim.schedule(at(f.at), sf);
        }
    }
    Ok(sim)
}

/// How long two MASTERs (and two VIP holders) may legitimately coexist in one part: when a
/// partition heals, the lower-priority master steps down on the better one's next advert, up
/// to one `advert_int` later; 1 s more covers delivery.
pub fn split_brain_grace(s: &Scenario) -> Duration {
    s.directors()
        .filter_map(|(_, d)| {
            let file = d.keepalived_conf.file_name.display().to_string();
            lvs_core::config::parse_str(&file, &d.keepalived_conf.text).config
        })
        .flat_map(|c| {
            c.vrrp_instances
                .iter()
                .map(|i| Duration::from_micros(i.advert_int().micros))
                .collect::<Vec<_>>()
        })
        .max()
        .map_or(Duration::ZERO, |a| a + Duration::from_secs(1))
}

/// Current and file-given parameters of every link, to turn link faults and heals into
/// per-link settings.
struct Links {
    base: BTreeMap<IfaceRef, LinkParams>,
    now: BTreeMap<IfaceRef, LinkParams>,
}

impl Links {
    fn new(s: &Scenario) -> Links {
        let mut base = BTreeMap::new();
        for h in &s.hosts {
            for (index, i) in h.interfaces.iter().enumerate() {
                if let Some(seg) = s.segments.get(i.segment.0) {
                    base.insert(IfaceRef { host: h.id, index }, half_link(seg));
                }
            }
        }
        Links {
            now: base.clone(),
            base,
        }
    }

    /// The links a target covers, and whether it is a whole segment.
    fn targets(&self, s: &Scenario, t: LinkTarget) -> (Vec<IfaceRef>, bool) {
        let all = self.base.keys().copied();
        match t {
            LinkTarget::Segment(seg) => (
                all.filter(|r| s.interface(*r).is_some_and(|i| i.segment == seg))
                    .collect(),
                true,
            ),
            LinkTarget::Host(h) => (all.filter(|r| r.host == h).collect(), false),
            LinkTarget::Iface(r) => (vec![r], false),
        }
    }

    fn set(&mut self, s: &Scenario, r: IfaceRef, p: LinkParams) -> Option<SimFault> {
        let iface = s.interface(r)?.name.clone();
        self.now.insert(r, p.clone());
        Some(SimFault::LinkParams {
            host: sim_host(r.host),
            iface,
            params: p,
        })
    }
}

fn map_fault(s: &Scenario, a: &FaultAction, links: &mut Links) -> Vec<SimFault> {
    let is_rs = |h: HostId| {
        s.host_by_id(h)
            .is_some_and(|x| matches!(x.role, Role::RealServer(_)))
    };
    let services = |h: HostId, running: bool| -> Vec<SimFault> {
        match s.host_by_id(h).map(|x| &x.role) {
            Some(Role::RealServer(r)) => r
                .services
                .iter()
                .map(|sv| SimFault::Service {
                    host: sim_host(h),
                    port: sv.port,
                    running,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let nic = |r: IfaceRef, up: bool| -> Vec<SimFault> {
        s.interface(r)
            .map(|i| SimFault::Nic {
                host: sim_host(r.host),
                iface: i.name.clone(),
                up,
            })
            .into_iter()
            .collect()
    };
    match a {
        FaultAction::Kill { host } | FaultAction::Stop { host } | FaultAction::Pause { host }
            if is_rs(*host) =>
        {
            services(*host, false)
        }
        FaultAction::Restart { host } | FaultAction::Resume { host } if is_rs(*host) => {
            services(*host, true)
        }
        FaultAction::Kill { host } => vec![SimFault::Kill(sim_host(*host))],
        FaultAction::Stop { host } => vec![SimFault::Stop(sim_host(*host))],
        FaultAction::Pause { host } => vec![SimFault::Pause(sim_host(*host))],
        FaultAction::Resume { host } => vec![SimFault::Resume(sim_host(*host))],
        FaultAction::Restart { host } => vec![SimFault::Restart(sim_host(*host))],
        FaultAction::NicDown { iface } => nic(*iface, false),
        FaultAction::NicUp { iface } => nic(*iface, true),
        FaultAction::LinkLoss { target, loss } => {
            let (refs, whole) = links.targets(s, *target);
            let per = if whole { per_link_loss(*loss) } else { *loss };
            refs.into_iter()
                .filter_map(|r| {
                    let mut p = links.now.get(&r)?.clone();
                    p.loss = per;
                    links.set(s, r, p)
                })
                .collect()
        }
        FaultAction::Latency {
            target,
            latency,
            jitter,
        } => {
            let (refs, whole) = links.targets(s, *target);
            refs.into_iter()
                .filter_map(|r| {
                    let mut p = links.now.get(&r)?.clone();
                    let peer = links.base.get(&r).map_or(Duration::ZERO, |b| b.latency);
                    p.latency = if whole {
                        *latency / 2
                    } else {
                        latency.saturating_sub(peer)
                    };
                    if let Some(j) = jitter {
                        p.jitter = if whole { *j / 2 } else { *j };
                    }
                    links.set(s, r, p)
                })
                .collect()
        }
        FaultAction::Partition { groups, one_way } => {
            let ids = |g: &Vec<HostId>| g.iter().copied().map(sim_host).collect::<Vec<_>>();
            if *one_way {
                match (groups.first(), groups.get(1)) {
                    (Some(a), Some(b)) => vec![SimFault::Partition {
                        from: ids(a),
                        to: ids(b),
                        symmetric: false,
                    }],
                    _ => Vec::new(),
                }
            } else {
                let mut out = Vec::new();
                for (i, a) in groups.iter().enumerate() {
                    for b in &groups[i + 1..] {
                        out.push(SimFault::Partition {
                            from: ids(a),
                            to: ids(b),
                            symmetric: true,
                        });
                    }
                }
                out
            }
        }
        FaultAction::Heal => {
            let mut out = vec![SimFault::Heal];
            let changed: Vec<(IfaceRef, LinkParams)> = links
                .base
                .iter()
                .filter(|(r, b)| links.now.get(r) != Some(b))
                .map(|(r, b)| (*r, b.clone()))
                .collect();
            for (r, b) in changed {
                out.extend(links.set(s, r, b));
            }
            out
        }
        FaultAction::ServiceStop { host, port } => vec![SimFault::Service {
            host: sim_host(*host),
            port: *port,
            running: false,
        }],
        FaultAction::ServiceStart { host, port } => vec![SimFault::Service {
            host: sim_host(*host),
            port: *port,
            running: true,
        }],
        FaultAction::ClockDrift { host, ppm } => vec![SimFault::ClockDrift {
            host: sim_host(*host),
            ppm: ppm.round() as i64,
        }],
    }
}

/// When the last thing the scenario does to the cluster happens: the last fault, or the last
/// director start when there is none after it.
pub fn settle_from(s: &Scenario) -> Duration {
    let last_fault = s.faults.iter().map(|f| f.at).max().unwrap_or_default();
    let last_start = s
        .directors()
        .map(|(_, d)| d.start_at)
        .max()
        .unwrap_or_default();
    last_fault.max(last_start)
}

/// Runs `s` to its end (or `opts.until`), taking snapshots and checking expectations.
pub fn run(s: &Scenario, opts: &RunOptions) -> Result<Report, RunError> {
    let seed = opts.seed.unwrap_or(s.seed);
    let mut sim = build(s, seed)?;
    let end = opts.until.unwrap_or(s.duration);
    let settle = settle_from(s);
    if let Some(within) = s.expect.converge_within {
        sim.expect_converged(at(settle), within);
    }
    let all_directors: Vec<HostId> = s.directors().map(|(h, _)| h.id).collect();
    let mut snapshots = Vec::new();
    for snap in s.snapshots.iter().filter(|x| x.at <= end) {
        sim.run_until(at(snap.at));
        let which = if snap.directors.is_empty() {
            &all_directors
        } else {
            &snap.directors
        };
        for d in which {
            snapshots.push(TableSnapshot {
                at: snap.at,
                director: sim.host_name(sim_host(*d)).to_string(),
                table: sim.ipvsadm_list(sim_host(*d)),
                running: sim.director_alive(sim_host(*d)),
            });
        }
    }
    sim.run_until(at(end));

    let logs = all_directors
        .iter()
        .map(|d| DirectorLog {
            director: sim.host_name(sim_host(*d)).to_string(),
            text: sim.log_text(sim_host(*d)),
        })
        .collect();
    let first_fault = s.faults.first().map(|f| f.at);
    let gaps = vip_gaps(&sim, first_fault, end);
    let summary = summarize(&sim, &gaps);
    let verdicts = evaluate(s, &sim, settle, end, &gaps, &summary);
    Ok(Report {
        scenario: s.name.clone(),
        source: s.source.clone(),
        seed,
        end,
        logs,
        snapshots,
        summary,
        verdicts,
        violations: sim.violations().to_vec(),
        trace_json: opts.trace_json.then(|| sim.trace_json()),
        svg: opts.svg.then(|| sim.svg()),
    })
}

/// A stretch of time a VIP had no owner: from, and until (None: still none at the end).
#[derive(Debug, Clone, Copy)]
struct Gap {
    vip: Ipv4Addr,
    from: Duration,
    until: Option<Duration>,
}

impl Gap {
    fn len(&self, end: Duration) -> Duration {
        self.until.unwrap_or(end).saturating_sub(self.from)
    }
}

/// VIP ownership gaps opening at or after `since` (the first fault); none when no fault.
fn vip_gaps(sim: &Sim, since: Option<Duration>, end: Duration) -> Vec<Gap> {
    let Some(since) = since else {
        return Vec::new();
    };
    let mut holders: BTreeMap<Ipv4Addr, BTreeSet<String>> = BTreeMap::new();
    let mut open: BTreeMap<Ipv4Addr, Duration> = BTreeMap::new();
    let mut gaps = Vec::new();
    for e in sim.trace() {
        let t = Duration::from_nanos(e.t);
        if t > end {
            break;
        }
        let (addr, add) = match &e.event {
            TraceEvent::AddVip { addr, .. } => (addr, true),
            TraceEvent::DelVip { addr, .. } => (addr, false),
            _ => continue,
        };
        let Ok(vip) = addr.parse::<Ipv4Addr>() else {
            continue;
        };
        let set = holders.entry(vip).or_default();
        if add {
            set.insert(e.host.to_string());
            if let Some(from) = open.remove(&vip) {
                gaps.push(Gap {
                    vip,
                    from,
                    until: Some(t),
                });
            }
        } else {
            set.remove(&*e.host);
            if set.is_empty() && t >= since {
                open.entry(vip).or_insert(t);
            }
        }
    }
    gaps.extend(open.into_iter().map(|(vip, from)| Gap {
        vip,
        from,
        until: None,
    }));
    gaps
}

fn summarize(sim: &Sim, gaps: &[Gap]) -> Summary {
    let m = sim.metrics();
    let shares = m.shares();
    let end = Duration::from_nanos(sim.now().as_nanos());
    Summary {
        failover: m.failover_time(),
        longest_vip_gap: gaps.iter().map(|g| g.len(end)).max(),
        requests_sent: m.requests_sent,
        requests_ok: m.requests_ok,
        requests_failed: m.requests_failed,
        connections_broken: m.connections_broken,
        shares: m
            .per_server
            .iter()
            .map(|(name, n)| ServerShare {
                server: name.clone(),
                requests: *n,
                share: shares.get(name).copied().unwrap_or(0.0),
            })
            .collect(),
        jain_index: m.jain_index(),
        events: sim.events_processed(),
    }
}

fn state_name(s: VrrpState) -> &'static str {
    match s {
        VrrpState::Master => "MASTER",
        VrrpState::Backup => "BACKUP",
        VrrpState::Fault => "FAULT",
        VrrpState::Stopped => "STOPPED",
    }
}

fn core_state_name(s: CoreState) -> &'static str {
    match s {
        CoreState::Init => "INIT",
        CoreState::Backup => "BACKUP",
        CoreState::Master => "MASTER",
        CoreState::Fault => "FAULT",
        CoreState::Stop => "STOPPED",
    }
}

/// Each VRRP instance's last reported state on `host` (empty when the process is gone).
fn instance_states(sim: &Sim, host: &str) -> BTreeMap<String, &'static str> {
    let mut states = BTreeMap::new();
    for e in sim.trace().iter().filter(|e| *e.host == *host) {
        match &e.event {
            TraceEvent::Notify {
                kind, name, state, ..
            } if *kind == StateChangeKind::Instance => {
                states.insert(name.clone(), core_state_name(*state));
            }
            TraceEvent::Process { .. } => states.clear(),
            _ => {}
        }
    }
    states
}

/// The `-> addr:port` destinations of an `ipvsadm -L -n` listing (header line excluded).
pub fn table_destinations(table: &str) -> BTreeSet<String> {
    table
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("->"))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|a| a.parse::<SocketAddrV4>().is_ok() || a.starts_with('['))
        .map(str::to_string)
        .collect()
}

/// Real servers in a director's table: read from its `ipvsadm -L -n` when it shows one,
/// otherwise rebuilt from the IPVS changes it issued since its process started.
fn destinations(sim: &Sim, host: lvs_sim::HostId) -> (BTreeSet<String>, &'static str) {
    if let Some(table) = sim.ipvsadm_list(host) {
        return (table_destinations(&table), "ipvsadm -L -n");
    }
    if !sim.director_alive(host) {
        return (BTreeSet::new(), "no process");
    }
    let name = sim.host_name(host);
    let mut table: BTreeMap<ServiceKey, BTreeSet<SockAddr>> = BTreeMap::new();
    for e in sim.trace().iter().filter(|e| *e.host == *name) {
        match &e.event {
            TraceEvent::Process { .. } => table.clear(),
            TraceEvent::Ipvs { change } => match change {
                IpvsChange::AddService(sv) => {
                    table.entry(sv.key).or_default();
                }
                IpvsChange::EditService(_) => {}
                IpvsChange::DelService(k) => {
                    table.remove(k);
                }
                IpvsChange::AddDest(k, d) | IpvsChange::EditDest(k, d) => {
                    table
                        .entry(*k)
                        .or_default()
                        .insert(SockAddr(d.addr, d.port));
                }
                IpvsChange::DelDest(k, a) => {
                    if let Some(t) = table.get_mut(k) {
                        t.remove(a);
                    }
                }
            },
            _ => {}
        }
    }
    let set = table
        .values()
        .flatten()
        .map(|a| match a.0 {
            IpAddr::V4(_) => a.to_string(),
            IpAddr::V6(_) => a.to_string(),
        })
        .collect();
    (set, "IPVS changes issued")
}

fn list<T: ToString>(xs: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = xs.into_iter().map(|x| x.to_string()).collect();
    if v.is_empty() {
        "[]".to_string()
    } else {
        format!("[{}]", v.join(", "))
    }
}

fn evaluate(
    s: &Scenario,
    sim: &Sim,
    settle: Duration,
    end: Duration,
    gaps: &[Gap],
    summary: &Summary,
) -> Vec<Verdict> {
    let e = &s.expect;
    let name_of = |h: HostId| sim.host_name(sim_host(h)).to_string();
    let is_director = |h: &lvs_sim::HostId| {
        s.host_by_id(HostId(h.0))
            .is_some_and(|x| matches!(x.role, Role::Director(_)))
    };
    let mut out = Vec::new();
    let mut push = |name: String, pass: bool, expected: String, observed: String| {
        out.push(Verdict {
            name,
            pass,
            expected,
            observed,
        })
    };
    for (vip, owner) in &e.vip_owner {
        let holders: Vec<lvs_sim::HostId> = sim
            .vip_holders(*vip)
            .into_iter()
            .filter(is_director)
            .collect();
        let pass = holders == [sim_host(*owner)];
        push(
            format!("vip_owner {vip}"),
            pass,
            name_of(*owner),
            list(holders.iter().map(|h| sim.host_name(*h))),
        );
    }
    for (host, want) in &e.vrrp_state {
        let name = name_of(*host);
        let alive = sim.director_alive(sim_host(*host));
        let states = if alive {
            instance_states(sim, &name)
        } else {
            BTreeMap::new()
        };
        let want_s = state_name(*want);
        let (pass, observed) = if states.is_empty() {
            let obs = if alive { "no instance" } else { "STOPPED" };
            (*want == VrrpState::Stopped && !alive, obs.to_string())
        } else {
            (
                states.values().all(|st| *st == want_s),
                states
                    .iter()
                    .map(|(i, st)| format!("{i}={st}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        };
        push(
            format!("vrrp_state {name}"),
            pass,
            want_s.to_string(),
            observed,
        );
    }
    for (host, want) in &e.ipvs_destinations {
        let want: BTreeSet<String> = want.iter().map(|a| a.to_string()).collect();
        let (got, from) = destinations(sim, sim_host(*host));
        push(
            format!("ipvs_destinations {}", name_of(*host)),
            got == want,
            list(&want),
            format!("{} (from {from})", list(&got)),
        );
    }
    if let Some(max) = e.max_failed_requests {
        push(
            "max_failed_requests".into(),
            summary.requests_failed <= max,
            format!("<= {max}"),
            summary.requests_failed.to_string(),
        );
    }
    if let Some(min) = e.min_completed_requests {
        push(
            "min_completed_requests".into(),
            summary.requests_ok >= min,
            format!(">= {min}"),
            summary.requests_ok.to_string(),
        );
    }
    if let Some(within) = e.failover_within {
        let worst = gaps.iter().max_by_key(|g| g.len(end));
        let (pass, observed) = match worst {
            None => (true, "no VIP left without an owner".to_string()),
            Some(g) => {
                let len = g.len(end);
                let text = match g.until {
                    Some(_) => format!("{} without owner for {}", g.vip, secs(len)),
                    None => format!("{} without owner from {} to the end", g.vip, secs(g.from)),
                };
                (g.until.is_some() && len <= within, text)
            }
        };
        push(
            "failover_within".into(),
            pass,
            format!("<= {}", format_duration(within)),
            observed,
        );
    }
    if let Some(within) = e.converge_within {
        let met = sim.invariants().liveness_met().first().copied().flatten();
        let (pass, observed) = match met {
            Some(t) => {
                let took = Duration::from_nanos(t.as_nanos()).saturating_sub(settle);
                (
                    took <= within,
                    format!("converged {} after {}", secs(took), secs(settle)),
                )
            }
            None => (false, format!("not converged by {}", secs(end))),
        };
        push(
            "converge_within".into(),
            pass,
            format!("<= {} after {}", format_duration(within), secs(settle)),
            observed,
        );
    }
    for (host, (lo, hi)) in &e.share {
        let name = name_of(*host);
        let got = summary
            .shares
            .iter()
            .find(|x| x.server == name)
            .map_or(0.0, |x| x.share);
        push(
            format!("share {name}"),
            (*lo..=*hi).contains(&got),
            format!("{lo:.3}..={hi:.3}"),
            format!("{got:.3}"),
        );
    }
    if e.invariants {
        let safety: Vec<&Violation> = sim
            .violations()
            .iter()
            .filter(|v| v.kind != ViolationKind::Liveness)
            .collect();
        push(
            "invariants".into(),
            safety.is_empty(),
            "no safety violation".into(),
            match safety.first() {
                None => "none".into(),
                Some(v) => format!(
                    "{} (first: {} {:?} {})",
                    safety.len(),
                    v.t,
                    v.kind,
                    v.detail
                ),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("seed")
            .join(format!("{name}.toml"));
        Scenario::load(path).expect("seed scenario loads")
    }

    fn id(s: &Scenario, name: &str) -> HostId {
        s.host(name).expect("host exists").id
    }

    #[test]
    fn two_links_lose_what_the_segment_states() {
        for loss in [0.0, 0.1, 0.5, 0.99, 1.0] {
            let p = per_link_loss(loss);
            let through = (1.0 - p) * (1.0 - p);
            assert!((1.0 - through - loss).abs() < 1e-12, "{loss}: {p}");
        }
    }

    #[test]
    fn ipvsadm_listing_yields_its_destinations() {
        let table = "IP Virtual Server version 1.2.1 (size=4096)\n\
            Prot LocalAddress:Port Scheduler Flags\n  \
            -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
            TCP  223.202.22.118:80 wrr persistent 20\n  \
            -> 223.202.22.117:80            Route   100    0          0\n  \
            -> 223.202.22.116:80            Route   100    0          0\n";
        let got: Vec<String> = table_destinations(table).into_iter().collect();
        assert_eq!(got, ["223.202.22.116:80", "223.202.22.117:80"]);
        assert!(table_destinations("IP Virtual Server version 1.2.1\n").is_empty());
    }

    #[test]
    fn partitions_link_faults_and_heal_map_per_link() {
        let s = seed("01-start");
        let (d1, d2, w1) = (id(&s, "director1"), id(&s, "director2"), id(&s, "web1"));
        let mut links = Links::new(&s);
        let three = FaultAction::Partition {
            groups: vec![vec![d1], vec![d2], vec![w1]],
            one_way: false,
        };
        assert_eq!(map_fault(&s, &three, &mut links).len(), 3, "one per pair");
        let one_way = FaultAction::Partition {
            groups: vec![vec![d1], vec![d2]],
            one_way: true,
        };
        assert_eq!(
            map_fault(&s, &one_way, &mut links),
            vec![SimFault::Partition {
                from: vec![sim_host(d1)],
                to: vec![sim_host(d2)],
                symmetric: false
            }]
        );
        let lan = seg(&s, "lan");
        let lossy = FaultAction::LinkLoss {
            target: LinkTarget::Segment(lan),
            loss: 0.19,
        };
        let out = map_fault(&s, &lossy, &mut links);
        // Directors and real servers have a LAN interface; the gateway and clients do not.
        assert_eq!(out.len(), 4);
        for f in &out {
            let SimFault::LinkParams { params, .. } = f else {
                panic!("{f:?}")
            };
            assert!((params.loss - 0.1).abs() < 1e-9, "{}", params.loss);
        }
        let slow = FaultAction::Latency {
            target: LinkTarget::Iface(IfaceRef { host: d1, index: 0 }),
            latency: Duration::from_millis(30),
            jitter: None,
        };
        let out = map_fault(&s, &slow, &mut links);
        let [SimFault::LinkParams { params, iface, .. }] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(iface, "eth0");
        // The WAN's 100 us are split 50/50; the peer keeps its half.
        assert_eq!(
            params.latency,
            Duration::from_millis(30) - Duration::from_micros(50)
        );
        let healed = map_fault(&s, &FaultAction::Heal, &mut links);
        assert_eq!(healed.first(), Some(&SimFault::Heal));
        assert_eq!(
            healed.len(),
            1 + 4 + 1,
            "heal restores exactly the changed links"
        );
        assert_eq!(
            map_fault(&s, &FaultAction::Heal, &mut links),
            vec![SimFault::Heal]
        );
    }

    fn seg(s: &Scenario, name: &str) -> crate::SegmentId {
        let i = s.segments.iter().position(|x| x.name == name);
        crate::SegmentId(i.expect("segment exists"))
    }

    #[test]
    fn real_server_process_faults_stop_and_start_its_services() {
        let s = seed("01-start");
        let w1 = id(&s, "web1");
        let mut links = Links::new(&s);
        let stop = map_fault(&s, &FaultAction::Kill { host: w1 }, &mut links);
        assert_eq!(
            stop,
            vec![SimFault::Service {
                host: sim_host(w1),
                port: 80,
                running: false
            }]
        );
        let start = map_fault(&s, &FaultAction::Restart { host: w1 }, &mut links);
        assert_eq!(
            start,
            vec![SimFault::Service {
                host: sim_host(w1),
                port: 80,
                running: true
            }]
        );
    }

    #[test]
    fn directors_start_at_their_start_at() {
        let s = seed("01-start");
        let (d1, d2) = (id(&s, "director1"), id(&s, "director2"));
        let mut sim = build(&s, 7).expect("builds");
        sim.run_until(Instant::from_millis(2_999));
        assert!(sim.director_alive(sim_host(d1)));
        assert!(!sim.director_alive(sim_host(d2)), "backup starts at 3 s");
        sim.run_until(Instant::from_secs(3));
        assert!(sim.director_alive(sim_host(d2)));
    }

    #[test]
    fn until_cuts_the_run_and_its_snapshots() {
        let s = seed("01-start");
        let opts = RunOptions {
            until: Some(Duration::from_secs(30)),
            ..RunOptions::default()
        };
        let r = run(&s, &opts).expect("runs");
        assert_eq!(r.end, Duration::from_secs(30));
        assert!(r.snapshots.iter().all(|x| x.at <= r.end));
        assert_eq!(
            r.snapshots.len(),
            2,
            "only the 20 s snapshot, on both directors"
        );
        assert!(r.trace_json.is_none() && r.svg.is_none());
    }
}
