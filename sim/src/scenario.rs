//! Runs a resolved scenario (`lvs_scenarios`) on the simulator and hands the judge what
//! it saw.
//!
//! [`build`] maps the scenario onto a [`Sim`]: segments become learning switches whose
//! latency, jitter and loss are split over the two links a frame crosses; hosts are added in
//! file order (so a scenario `HostId` is the simulator's); directors run the real `Director`
//! built from their keepalived.conf; the fault timeline is scheduled up front. [`run`] runs
//! to the end, takes the IPVS snapshots on the way, turns the simulator's records into the
//! observation stream ([`lvs_scenarios::observe`]) and has [`lvs_scenarios::judge`] judge it.
//!
//! Modelling notes (where the simulator is simpler than the scenario format):
//! - A segment's one-way `latency`/`jitter` is split evenly over the sender's and the
//!   receiver's link; its `loss` becomes `1 - sqrt(1 - loss)` per link so a frame crossing
//!   two links is lost with the stated probability. A link fault aimed at one host or
//!   interface sets that link alone (the peer keeps its half of the segment's latency).
//! - `kill`/`stop`/`pause` of a real server stops all its services; `restart`/`resume`
//!   starts them again. A service's `response_size` is not modelled (its answer is one
//!   segment carrying its name); a workload's `request_size` is the payload of its one
//!   request segment or datagram, at most one segment's worth.
//! - A client uses its first interface and needs a default gateway.
//! - IPv6 VIPs are not installed (see `engine`), so they are not observed as held.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lvs_core::director::StateChangeKind;
use lvs_core::ipvs::table::Ipvs;
use lvs_scenarios::judge::{at, judge, settle_from, split_brain_grace, Report, RunOptions};
use lvs_scenarios::observe::{IpvsDest, IpvsService, IpvsTable, Observation, Observed, RunRecord};
use lvs_scenarios::{
    FaultAction, Host, HostId, IfaceRef, LinkTarget, LoadPattern, Role, Scenario, Show,
};

use crate::client::{ClientSpec, Workload as SimWorkload};
use crate::record::TraceEvent;
use crate::server::{RealServerSpec, ServiceSpec};
use crate::stack::IfaceSpec;
use crate::{Fault as SimFault, LinkParams, SegId, Sim, SimError};

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
        source: crate::keepalived::ConfError,
    },
    /// The JSON trace could not be written.
    #[error("writing the trace to {}: {source}", path.display())]
    Trace {
        /// The file asked for.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
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

fn sim_host(h: HostId) -> crate::HostId {
    crate::HostId(h.0)
}

/// The link parameters of one side of a segment.
fn half_link(seg: &lvs_scenarios::Segment) -> LinkParams {
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
        .map(|i| IfaceSpec {
            addrs6: i.addr6.into_iter().collect(),
            ..IfaceSpec::new(&i.name, i.mac.0, i.addr, i.prefix_len)
        })
        .collect()
}

/// Maps the scenario onto a simulator seeded with `seed`, faults scheduled, nothing run yet.
pub fn build(s: &Scenario, seed: u64) -> Result<Sim, RunError> {
    let mut sim = Sim::new(seed);
    sim.set_scenario_name(&s.name);
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
                let conf = &d.keepalived_conf;
                let factory = crate::keepalived::factory_with(&file, &conf.text, &conf.files)
                    .map_err(|source| RunError::Config {
                        file: s.source.clone(),
                        host: h.name.clone(),
                        source,
                    })?;
                let id = sim
                    .add_director_at(&h.name, ifaces_of(h), factory, at(d.start_at))
                    .map_err(sim_err)?;
                sim.set_process_timing(id, d.process);
                // The host's own connections (health checks) leave through it.
                if let Some(stack) = sim.stack_mut(id) {
                    stack.set_gateway(h.gateway);
                    stack.set_gateway6(h.gateway6);
                }
                id
            }
            Role::RealServer(r) => {
                let services = r
                    .services
                    .iter()
                    .map(|sv| ServiceSpec {
                        max_concurrency: sv.capacity,
                        ..match sv.protocol {
                            lvs_scenarios::Transport::Tcp => {
                                ServiceSpec::new(sv.port, sv.service_time)
                            }
                            lvs_scenarios::Transport::Udp => {
                                ServiceSpec::udp(sv.port, sv.service_time)
                            }
                            lvs_scenarios::Transport::Sctp => {
                                ServiceSpec::sctp(sv.port, sv.service_time)
                            }
                        }
                    })
                    .collect();
                let spec = RealServerSpec {
                    lo_vips: r.vips_on_lo.clone(),
                    arp_ignore: r.arp_ignore,
                    arp_announce: r.arp_announce,
                    gateway: h.gateway,
                    gateway6: h.gateway6,
                    tunnel: r.tunnel,
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
                if h.gateway.is_none() && h.gateway6.is_none() {
                    return Err(host_err("a client needs a default gateway"));
                }
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
                let udp = (w.protocol == lvs_scenarios::Transport::Udp).then_some(
                    crate::client::UdpSpec {
                        timeout: w.timeout,
                        source_port: w.source_port,
                    },
                );
                let sctp = (w.protocol == lvs_scenarios::Transport::Sctp)
                    .then_some(crate::sctp::SctpSpec { timeout: w.timeout });
                let spec = ClientSpec {
                    start: at(w.start),
                    stop: Some(at(w.stop)),
                    udp,
                    sctp,
                    request_size: w.request_size,
                    ..ClientSpec::new(w.target, workload)
                };
                sim.add_client(&h.name, iface, h.gateway, h.gateway6, spec)
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
        FaultAction::ScriptResult { host, script, exit } => vec![SimFault::ScriptExit {
            host: sim_host(*host),
            command: script.clone(),
            status: Some(i32::from(*exit)),
        }],
    }
}

/// Runs `s` to its end (or `opts.until`), taking snapshots, and judges what it saw.
pub fn run(s: &Scenario, opts: &RunOptions) -> Result<Report, RunError> {
    let record = observe(s, opts)?;
    Ok(judge(s, &record))
}

/// Runs `s` to its end (or `opts.until`) and returns what the simulator saw, as the
/// observation stream the judge reads.
pub fn observe(s: &Scenario, opts: &RunOptions) -> Result<RunRecord, RunError> {
    observe_with_progress(s, opts, &mut |_, _| {})
}

/// Runs `s` as [`run`] does, calling `progress(now, end)` as virtual time advances (about
/// 200 times a run); the result is the same whether anyone listens.
pub fn run_with_progress(
    s: &Scenario,
    opts: &RunOptions,
    progress: &mut dyn FnMut(Duration, Duration),
) -> Result<Report, RunError> {
    let record = observe_with_progress(s, opts, progress)?;
    Ok(judge(s, &record))
}

/// [`observe`] with a progress callback (see [`run_with_progress`]).
pub fn observe_with_progress(
    s: &Scenario,
    opts: &RunOptions,
    progress: &mut dyn FnMut(Duration, Duration),
) -> Result<RunRecord, RunError> {
    let seed = opts.seed.unwrap_or(s.seed);
    let mut sim = build(s, seed)?;
    // Answered requests are kept by no one: the JSON trace is written as the run goes and
    // the SVG bins them as they finish, so a long run's memory does not grow with them.
    sim.trace_requests = false;
    if let Some(path) = &opts.trace_json {
        let file = std::fs::File::create(path).map_err(|e| RunError::Trace {
            path: path.clone(),
            source: e,
        })?;
        sim.stream_trace(Box::new(std::io::BufWriter::new(file)));
    }
    let end = opts.until.unwrap_or(s.duration);
    if opts.svg {
        sim.bin_requests_for_svg(at(end));
    }
    if let Some(within) = s.expect.converge_within {
        sim.expect_converged(at(settle_from(s)), within);
    }
    let all_directors: Vec<HostId> = s.directors().map(|(h, _)| h.id).collect();
    let mut tables = Vec::new();
    let step = (end / 200).max(Duration::from_millis(1));
    let mut run_to = |sim: &mut Sim, to: Duration| {
        let mut now = Duration::from_nanos(sim.now().as_nanos());
        while now + step < to {
            now += step;
            sim.run_until(at(now));
            progress(now, end);
        }
        sim.run_until(at(to));
        progress(to, end);
    };
    for snap in s.snapshots.iter().filter(|x| x.at <= end) {
        run_to(&mut sim, snap.at);
        let which = if snap.directors.is_empty() {
            &all_directors
        } else {
            &snap.directors
        };
        for d in which {
            for show in &snap.show {
                tables.push(match show {
                    Show::List => table_observation(&sim, *d, snap.at),
                    other => shown_observation(&sim, *d, snap.at, *other),
                });
            }
        }
    }
    run_to(&mut sim, end);
    for d in &all_directors {
        tables.push(table_observation(&sim, *d, end));
    }
    if let (Some(path), Some(Err(e))) = (&opts.trace_json, sim.finish_trace()) {
        return Err(RunError::Trace {
            path: path.clone(),
            source: e,
        });
    }
    let mut observations = observations(&sim);
    observations.extend(tables);
    // Each kind keeps its order; a snapshot comes after everything at its time.
    observations.sort_by_key(|o| o.t);
    Ok(RunRecord {
        seed,
        end,
        observations,
        requests: sim.metrics(),
        events: sim.events_processed(),
        svg: opts.svg.then(|| sim.svg()),
    })
}

fn since_start(t: lvs_core::Instant) -> Duration {
    Duration::from_nanos(t.as_nanos())
}

/// What `show` printed on director `d` at `t`, as an observation.
fn shown_observation(sim: &Sim, d: HostId, t: Duration, show: Show) -> Observation {
    let host = sim_host(d);
    Observation {
        t,
        host: sim.host_name(host).to_string(),
        what: Observed::Shown {
            command: show.command().to_string(),
            output: sim.show(host, show),
            running: sim.director_alive(host),
        },
    }
}

/// A director's IPVS table at `t` as an observation.
fn table_observation(sim: &Sim, d: HostId, t: Duration) -> Observation {
    let host = sim_host(d);
    Observation {
        t,
        host: sim.host_name(host).to_string(),
        what: Observed::IpvsTable {
            table: sim.ipvs(host).map(ipvs_table),
            running: sim.director_alive(host),
            listing: sim.ipvsadm_list(host),
        },
    }
}

/// The services and destinations of an IPVS table.
pub fn ipvs_table(ipvs: &Ipvs) -> IpvsTable {
    IpvsTable {
        services: ipvs
            .services()
            .map(|svc| {
                let spec = svc.spec();
                IpvsService {
                    key: spec.key,
                    scheduler: spec.scheduler.name().to_string(),
                    persistence: spec.persistence,
                    dests: svc
                        .dests()
                        .iter()
                        .map(|d| IpvsDest {
                            addr: lvs_core::ipvs::SockAddr(d.addr, d.port),
                            fwd: d.fwd,
                            weight: d.weight,
                            active: d.activeconns,
                            inactive: d.inactconns,
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

/// The simulator's logs, trace and invariant results as observations, each kind in order.
pub fn observations(sim: &Sim) -> Vec<Observation> {
    let mut out: Vec<Observation> = sim
        .logs()
        .iter()
        .map(|l| Observation {
            t: since_start(l.t),
            host: l.host.clone(),
            what: Observed::Log {
                line: l.line.clone(),
            },
        })
        .collect();
    for e in sim.trace() {
        let what = match &e.event {
            TraceEvent::Notify {
                kind, name, state, ..
            } => Observed::VrrpState {
                name: name.clone(),
                group: *kind == StateChangeKind::Group,
                state: *state,
            },
            TraceEvent::AddVip { iface, addr } | TraceEvent::DelVip { iface, addr } => {
                let Ok(addr) = addr.parse::<IpAddr>() else {
                    continue;
                };
                Observed::Vip {
                    iface: (iface != "*").then(|| iface.clone()),
                    addr,
                    added: matches!(e.event, TraceEvent::AddVip { .. }),
                }
            }
            TraceEvent::Process { running } => Observed::Process { running: *running },
            TraceEvent::Fault(f) => Observed::Fault {
                fault: f.description.clone(),
            },
            TraceEvent::Log { .. }
            | TraceEvent::Request { .. }
            | TraceEvent::Ipvs(_)
            | TraceEvent::Probe { .. }
            | TraceEvent::Service { .. }
            | TraceEvent::Violation { .. }
            | TraceEvent::GatewayArp { .. } => continue,
        };
        out.push(Observation {
            t: Duration::from_nanos(e.t),
            host: e.host.to_string(),
            what,
        });
    }
    out.extend(sim.violations().iter().map(|v| Observation {
        t: since_start(v.t),
        host: String::new(),
        what: Observed::Violation(v.clone()),
    }));
    if let Some(t) = sim.invariants().liveness_met().first().copied().flatten() {
        out.push(Observation {
            t: since_start(t),
            host: String::new(),
            what: Observed::Converged,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvs_core::Instant;

    fn seed(name: &str) -> Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/seed")
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
    fn every_director_s_table_is_observed_at_the_end() {
        let s = seed("01-start");
        let opts = RunOptions {
            until: Some(Duration::from_secs(30)),
            ..RunOptions::default()
        };
        let rec = observe(&s, &opts).expect("runs");
        for d in ["director1", "director2"] {
            let last = rec.observations.iter().rev().find_map(|o| match &o.what {
                Observed::IpvsTable { table, running, .. } if o.host == d => {
                    Some((o.t, table.clone(), *running))
                }
                _ => None,
            });
            let (t, table, running) = last.expect("a table at the end");
            assert_eq!((t, running), (Duration::from_secs(30), true), "{d}");
            let table = table.expect("a running director shows its table");
            let mut got: Vec<String> = table.destinations().map(|a| a.to_string()).collect();
            got.sort();
            assert_eq!(got, ["223.202.22.116:80", "223.202.22.117:80"], "{d}");
        }
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

    fn seg(s: &Scenario, name: &str) -> lvs_scenarios::SegmentId {
        let i = s.segments.iter().position(|x| x.name == name);
        lvs_scenarios::SegmentId(i.expect("segment exists"))
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
        // exec'd at 3 s, it runs its first step keepalived's start time later.
        let start = lvs_scenarios::ProcessTiming::KEEPALIVED.start;
        sim.run_until(Instant::from_secs(3) + start.lo - Duration::from_millis(1));
        assert!(!sim.director_alive(sim_host(d2)), "still starting");
        sim.run_until(Instant::from_secs(3) + start.hi);
        assert!(sim.director_alive(sim_host(d2)));
    }

    // `--until` before the faults and the end: what the end decides is NOT REACHED, neither
    // a pass nor a failure; what is already decided stays decided.
    #[test]
    fn a_run_cut_short_leaves_end_expectations_not_reached() {
        let s = seed("07-master-killed");
        let opts = RunOptions {
            until: Some(Duration::from_secs(20)),
            ..RunOptions::default()
        };
        let r = run(&s, &opts).expect("runs");
        let vip = r
            .verdicts
            .iter()
            .find(|v| v.name.starts_with("vip_owner"))
            .expect("a vip_owner verdict");
        assert!(!vip.reached, "{vip:?}");
        let inv = r.verdicts.iter().find(|v| v.name == "invariants").unwrap();
        assert!(inv.reached && inv.pass);
        assert!(r.passed() && r.failures().next().is_none());
        assert!(r.render_verdicts().contains("NOT REACHED vip_owner"));
        let full = run(&s, &RunOptions::default()).expect("runs");
        assert!(full.verdicts.iter().all(|v| v.reached));
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
        assert!(r.svg.is_none());
    }

    /// A `Write` whose bytes can be read back after the sim took it.
    #[derive(Clone, Default)]
    struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    // The trace written as the run goes is, byte for byte, the one a run that kept every
    // entry would write at its end; and the streaming run kept no answered request.
    #[test]
    fn the_streamed_trace_is_the_kept_one_without_keeping_it() {
        let s = seed("07-master-killed");
        let mut kept = build(&s, s.seed).expect("builds");
        kept.trace_requests = true;
        kept.run_until(at(s.duration));
        let mut streamed = build(&s, s.seed).expect("builds");
        streamed.trace_requests = false;
        let out = Shared::default();
        streamed.stream_trace(Box::new(out.clone()));
        streamed.run_until(at(s.duration));
        streamed
            .finish_trace()
            .expect("streaming")
            .expect("written");
        let text = String::from_utf8(out.0.borrow().clone()).expect("utf-8");
        assert_eq!(text, kept.trace_json());
        let answered = |sim: &Sim| {
            sim.trace()
                .iter()
                .filter(|e| matches!(&e.event, TraceEvent::Request { record } if matches!(record.outcome, crate::client::Outcome::Ok { .. })))
                .count()
        };
        assert!(answered(&kept) > 100);
        assert_eq!(answered(&streamed), 0);
        serde_json::from_str::<serde_json::Value>(&text).expect("one JSON document");
    }
}
