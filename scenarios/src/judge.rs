//! Judges a scenario run from its observation stream, whichever backend ran it.
//!
//! [`judge`] takes the [`Scenario`] and the [`RunRecord`] a backend produced (the
//! simulator's `lvs_sim::scenario::run`, later the netns harness) and turns every
//! `[expect]` entry into a [`Verdict`], with the logs, the `ipvsadm -L -n` snapshots and the
//! summary a [`Report`] shows. Nothing here knows a backend: each expectation reads the
//! [`Observation`]s only (see [`crate::observe`] for what a backend promises).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lvs_core::vrrp::VrrpState as CoreState;
use lvs_core::Instant;

use crate::observe::{Metrics, Observation, Observed, RunRecord, Violation, ViolationKind};
use crate::{format_duration, HostId, Role, Scenario, Show, VrrpState};

/// How to run a scenario.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Seed instead of the scenario's own.
    pub seed: Option<u64>,
    /// Stop at this virtual time instead of the scenario's duration.
    pub until: Option<Duration>,
    /// Write the backend's JSON trace to this file as the run goes.
    pub trace_json: Option<std::path::PathBuf>,
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

/// One command's output (`ipvsadm -L -n`, `ip addr`, ...) taken during the run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableSnapshot {
    /// Virtual time.
    pub at: Duration,
    /// Host name.
    pub director: String,
    /// The command line.
    pub command: String,
    /// Its output; `None` when no running director had one to show.
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
    /// Client-visible failover: the longest outage a VIP move caused, from the first
    /// request to that VIP that failed (when it was sent) to the first answer from the VIP
    /// after the move (see [`crate::observe::Outage::spans_move`]); None when no request
    /// failed around a move.
    pub failover: Option<Failover>,
    /// How many times a VIP went to another host.
    pub vip_moves: usize,
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
    /// Requests neither answered nor failed when the run ended.
    pub requests_in_flight: u64,
    /// Failures by reason (`connect_timeout`, `timeout`, `reset`).
    pub failures: BTreeMap<String, u64>,
    /// Median latency of the answered requests.
    pub latency_p50: Option<Duration>,
    /// 99th percentile latency of the answered requests.
    pub latency_p99: Option<Duration>,
    /// Largest latency of an answered request.
    pub latency_max: Option<Duration>,
    /// Answered requests per real server, in name order.
    pub shares: Vec<ServerShare>,
    /// Jain's fairness index of `shares` (None: nothing answered).
    pub jain_index: Option<f64>,
    /// Simulator events processed.
    pub events: u64,
}

/// The client-visible failover of one VIP move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Failover {
    /// The VIP.
    pub vip: IpAddr,
    /// When it moved to another host.
    pub moved: Duration,
    /// When the first request that failed was sent.
    pub from: Duration,
    /// How long until the first answer after the move; None: none by the end of the run.
    pub took: Option<Duration>,
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
    /// False when the run ended (`--until`) before the expectation could be decided: it is
    /// neither a pass nor a failure.
    pub reached: bool,
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
    /// Every director's log lines and the faults, in time order (directors in file order at
    /// equal times): `(t, line)`, a fault as `-- fault: WHAT`.
    pub timeline: Vec<(Duration, String)>,
    /// `ipvsadm -L -n` snapshots, in time order.
    pub snapshots: Vec<TableSnapshot>,
    /// Totals.
    pub summary: Summary,
    /// One per expectation, in `[expect]` order of kinds.
    pub verdicts: Vec<Verdict>,
    /// Every invariant violation the simulator saw (safety and liveness).
    pub violations: Vec<Violation>,
    /// The SVG timeline, when asked for.
    pub svg: Option<String>,
}

impl Report {
    /// True when every verdict passed.
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.pass || !v.reached)
    }

    /// The verdicts that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| !v.pass && v.reached)
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

    /// The snapshots: each command's output per director and time.
    pub fn render_snapshots(&self) -> String {
        let mut out = String::new();
        for s in &self.snapshots {
            let _ = writeln!(
                out,
                "==> {} {} at {} <==",
                s.director,
                s.command,
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
        let failover = match s.failover {
            None if s.vip_moves == 0 => "- (no VIP moved)".to_string(),
            None => format!("0 (no request failed across {} VIP moves)", s.vip_moves),
            Some(f) => match f.took {
                Some(took) => format!("{} ({} moved at {})", secs(took), f.vip, secs(f.moved)),
                None => format!(
                    "no answer from {} since {} (moved at {})",
                    f.vip,
                    secs(f.from),
                    secs(f.moved)
                ),
            },
        };
        let _ = writeln!(out, "failover (client view): {failover}");
        let _ = writeln!(out, "longest VIP gap:        {}", opt(s.longest_vip_gap));
        let _ = writeln!(
            out,
            "requests: sent {} = ok {} + failed {} + in flight {} (connections broken {})",
            s.requests_sent,
            s.requests_ok,
            s.requests_failed,
            s.requests_in_flight,
            s.connections_broken
        );
        if !s.failures.is_empty() {
            let by: Vec<String> = s.failures.iter().map(|(r, n)| format!("{r} {n}")).collect();
            let _ = writeln!(out, "failed by reason: {}", by.join(", "));
        }
        let lat = |d: Option<Duration>| {
            d.map_or_else(
                || "-".to_string(),
                |d| format!("{:.3}ms", d.as_secs_f64() * 1e3),
            )
        };
        let _ = writeln!(
            out,
            "latency: p50 {} p99 {} max {}",
            lat(s.latency_p50),
            lat(s.latency_p99),
            lat(s.latency_max)
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
            if !v.reached {
                let _ = writeln!(
                    out,
                    "NOT REACHED {}: expected {}, the run ended at {} (so far: {})",
                    v.name,
                    v.expected,
                    secs(self.end),
                    v.observed
                );
                continue;
            }
            let _ = writeln!(
                out,
                "{} {}: expected {}, observed {}",
                if v.pass { "PASS" } else { "FAIL" },
                v.name,
                v.expected,
                v.observed
            );
        }
        if self.verdicts.is_empty() {
            out.push_str("nothing to judge: the scenario has no [expect] and invariants = false\n");
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
    /// One log of every director and the faults in time order; a gratuitous ARP burst (one
    /// "Sending gratuitous ARP" line per packet) as one line with its count unless `detail`.
    pub fn render_timeline(&self, detail: bool) -> String {
        let mut out = String::from("==> keepalived logs and faults, in time order <==\n");
        let mut i = 0;
        while i < self.timeline.len() {
            let (t, line) = &self.timeline[i];
            let burst = if detail || !line.contains(": Sending gratuitous ARP on ") {
                1
            } else {
                self.timeline[i..]
                    .iter()
                    .take_while(|(u, l)| u == t && l == line)
                    .count()
            };
            out.push_str(line);
            if burst > 1 {
                let _ = write!(out, " ({burst} times)");
            }
            out.push('\n');
            i += burst;
        }
        if self.timeline.is_empty() {
            out.push_str("(nothing logged)\n");
        }
        out.push('\n');
        out
    }

    /// The report as `lvsd sim` prints it: the time-ordered log (or, with `by_host`, one
    /// log per director), the snapshots, the summary and the verdicts.
    pub fn render_text_as(&self, by_host: bool, detail: bool) -> String {
        let mut out = if by_host {
            self.render_logs()
        } else {
            self.render_timeline(detail)
        };
        out.push_str(&self.render_snapshots());
        out.push_str(&self.render_summary());
        out.push('\n');
        out.push_str(&self.render_verdicts());
        out
    }

    /// The report with one log per director.
    pub fn render_text(&self) -> String {
        let mut out = self.render_logs();
        out.push_str(&self.render_snapshots());
        out.push_str(&self.render_summary());
        out.push('\n');
        out.push_str(&self.render_verdicts());
        out
    }
}

/// A scenario time as the log lines stamp it (`   30.000`).
fn stamp(t: Duration) -> String {
    format!("{:>9}", at(t).to_string())
}

fn secs(d: Duration) -> String {
    format!("{}s", Instant::from_nanos(d.as_nanos() as u64))
}

/// The scenario's time `d` on the core's clock.
pub fn at(d: Duration) -> Instant {
    Instant::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Turns a backend's run of `s` into the report: logs, snapshots, summary and verdicts.
pub fn judge(s: &Scenario, run: &RunRecord) -> Report {
    let obs = &run.observations;
    let end = run.end;
    let name_of = |h: HostId| s.host_by_id(h).map_or("?", |x| x.name.as_str());
    let all_directors: Vec<HostId> = s.directors().map(|(h, _)| h.id).collect();
    let mut snapshots = Vec::new();
    for snap in s.snapshots.iter().filter(|x| x.at <= end) {
        let which = if snap.directors.is_empty() {
            &all_directors
        } else {
            &snap.directors
        };
        for d in which {
            let director = name_of(*d);
            for show in &snap.show {
                let command = show.command();
                let seen = obs.iter().find_map(|o| match &o.what {
                    _ if o.t != snap.at || o.host != director => None,
                    Observed::IpvsTable {
                        running, listing, ..
                    } if *show == Show::List => Some((listing.clone(), *running)),
                    Observed::Shown {
                        command: c,
                        output,
                        running,
                    } if c == command => Some((output.clone(), *running)),
                    _ => None,
                });
                let (table, running) = seen.unwrap_or((None, false));
                snapshots.push(TableSnapshot {
                    at: snap.at,
                    director: director.to_string(),
                    command: command.to_string(),
                    table,
                    running,
                });
            }
        }
    }
    let logs = all_directors
        .iter()
        .map(|d| {
            let director = name_of(*d);
            let mut text = String::new();
            for o in obs.iter().filter(|o| o.host == director) {
                if let Observed::Log { line } = &o.what {
                    text.push_str(line);
                    text.push('\n');
                }
            }
            DirectorLog {
                director: director.to_string(),
                text,
            }
        })
        .collect();
    let timeline = obs
        .iter()
        .filter_map(|o| match &o.what {
            Observed::Log { line } if all_directors.iter().any(|d| name_of(*d) == o.host) => {
                Some((o.t, line.clone()))
            }
            Observed::Fault { fault } => Some((o.t, format!("{} -- fault: {fault}", stamp(o.t)))),
            _ => None,
        })
        .collect();
    let violations: Vec<Violation> = obs
        .iter()
        .filter_map(|o| match &o.what {
            Observed::Violation(v) => Some(v.clone()),
            _ => None,
        })
        .collect();
    let first_fault = s.faults.first().map(|f| f.at);
    let gaps = vip_gaps(obs, first_fault, end);
    let summary = summarize(s, run, &gaps);
    let settle = settle_from(s);
    let mut verdicts = evaluate(s, obs, settle, end, &gaps, &summary, &violations);
    if end < s.duration {
        // Cut short (`--until`): only what can no longer change is decided.
        for v in &mut verdicts {
            v.reached = match v.name.as_str() {
                "invariants" => true,
                "converge_within" | "min_completed_requests" => v.pass,
                "failover_within" | "max_failed_requests" => !v.pass,
                _ => false,
            };
        }
    }
    Report {
        scenario: s.name.clone(),
        source: s.source.clone(),
        seed: run.seed,
        end,
        logs,
        timeline,
        snapshots,
        summary,
        verdicts,
        violations,
        svg: run.svg.clone(),
    }
}

/// How long two MASTERs (and two VIP holders) may legitimately coexist in one part: when a
/// partition heals, the lower-priority master steps down on the better one's next advert, up
/// to one `advert_int` later; 1 s more covers delivery.
pub fn split_brain_grace(s: &Scenario) -> Duration {
    s.directors()
        .filter_map(|(_, d)| d.keepalived_conf.parse().config)
        .flat_map(|c| {
            c.vrrp_instances
                .iter()
                .map(|i| Duration::from_micros(i.advert_int().micros))
                .collect::<Vec<_>>()
        })
        .max()
        .map_or(Duration::ZERO, |a| a + Duration::from_secs(1))
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

/// A stretch of time a VIP had no owner: from, and until (None: still none at the end).
#[derive(Debug, Clone, Copy)]
struct Gap {
    vip: IpAddr,
    from: Duration,
    until: Option<Duration>,
}

impl Gap {
    fn len(&self, end: Duration) -> Duration {
        self.until.unwrap_or(end).saturating_sub(self.from)
    }
}

/// VIP ownership gaps opening at or after `since` (the first fault); none when no fault.
/// A VIP is owned while some interface of some host has it.
fn vip_gaps(obs: &[Observation], since: Option<Duration>, end: Duration) -> Vec<Gap> {
    let Some(since) = since else {
        return Vec::new();
    };
    let mut holders: BTreeMap<IpAddr, BTreeSet<(&str, &str)>> = BTreeMap::new();
    let mut open: BTreeMap<IpAddr, Duration> = BTreeMap::new();
    let mut gaps = Vec::new();
    for o in obs {
        if o.t > end {
            break;
        }
        let Observed::Vip { iface, addr, added } = &o.what else {
            continue;
        };
        let set = holders.entry(*addr).or_default();
        hold(set, &o.host, iface.as_deref(), *added);
        if *added {
            if let Some(from) = open.remove(addr) {
                gaps.push(Gap {
                    vip: *addr,
                    from,
                    until: Some(o.t),
                });
            }
        } else if set.is_empty() && o.t >= since {
            open.entry(*addr).or_insert(o.t);
        }
    }
    gaps.extend(open.into_iter().map(|(vip, from)| Gap {
        vip,
        from,
        until: None,
    }));
    gaps
}

/// One VIP observation applied to the (host, interface) pairs holding the address; an
/// interface of `None` is every interface of the host.
fn hold<'a>(
    on: &mut BTreeSet<(&'a str, &'a str)>,
    host: &'a str,
    iface: Option<&'a str>,
    added: bool,
) {
    match (added, iface) {
        (true, i) => {
            on.insert((host, i.unwrap_or("")));
        }
        (false, Some(i)) => {
            on.remove(&(host, i));
        }
        (false, None) => on.retain(|(h, _)| *h != host),
    }
}

/// Hosts holding `vip` at the end.
fn vip_holders(obs: &[Observation], vip: IpAddr) -> BTreeSet<&str> {
    let mut on: BTreeSet<(&str, &str)> = BTreeSet::new();
    for o in obs {
        match &o.what {
            Observed::Vip { iface, addr, added } if *addr == vip => {
                hold(&mut on, &o.host, iface.as_deref(), *added)
            }
            _ => {}
        }
    }
    on.into_iter().map(|(h, _)| h).collect()
}

/// Whether the host's director process runs at the end.
fn running(obs: &[Observation], host: &str) -> bool {
    obs.iter()
        .rev()
        .filter(|o| o.host == host)
        .find_map(|o| match o.what {
            Observed::Process { running } => Some(running),
            _ => None,
        })
        .unwrap_or(false)
}

fn summarize(s: &Scenario, run: &RunRecord, gaps: &[Gap]) -> Summary {
    let m = &run.requests;
    let moves = vip_moves(&run.observations);
    // Every real server has a share, 0 for one that answered nothing.
    let real_servers = s
        .hosts
        .iter()
        .filter(|h| matches!(h.role, Role::RealServer(_)))
        .map(|h| h.name.as_str());
    let shares = m.shares(real_servers);
    let answered = m.requests_ok > 0;
    Summary {
        failover: failover(&moves, m, run.end),
        vip_moves: moves.len(),
        longest_vip_gap: gaps.iter().map(|g| g.len(run.end)).max(),
        requests_sent: m.requests_sent,
        requests_ok: m.requests_ok,
        requests_failed: m.requests_failed,
        connections_broken: m.connections_broken,
        requests_in_flight: m.in_flight(),
        failures: m.failures.clone(),
        latency_p50: m.latency_quantile(0.5),
        latency_p99: m.latency_quantile(0.99),
        latency_max: answered.then(|| Duration::from_nanos(m.latency_max_ns)),
        jain_index: crate::observe::jain(shares.values().map(|(n, _)| *n as f64)),
        shares: shares
            .into_iter()
            .map(|(server, (requests, share))| ServerShare {
                server,
                requests,
                share,
            })
            .collect(),
        events: run.events,
    }
}

/// Times each VIP went to a host that did not hold it before (its first owner is no move).
fn vip_moves(obs: &[Observation]) -> Vec<(IpAddr, Duration)> {
    let mut holders: BTreeMap<IpAddr, BTreeSet<(&str, &str)>> = BTreeMap::new();
    let mut last: BTreeMap<IpAddr, BTreeSet<&str>> = BTreeMap::new();
    let mut moves = Vec::new();
    for o in obs {
        let Observed::Vip { iface, addr, added } = &o.what else {
            continue;
        };
        let set = holders.entry(*addr).or_default();
        hold(set, &o.host, iface.as_deref(), *added);
        if *added {
            let before = last.entry(*addr).or_default();
            if !before.is_empty() && !before.contains(o.host.as_str()) {
                moves.push((*addr, o.t));
            }
        }
        let now: BTreeSet<&str> = set.iter().map(|(h, _)| *h).collect();
        if !now.is_empty() {
            last.insert(*addr, now);
        }
    }
    moves
}

/// The longest client-visible failover over every VIP move (an unrecovered one first).
fn failover(moves: &[(IpAddr, Duration)], m: &Metrics, end: Duration) -> Option<Failover> {
    let end_at = at(end);
    moves
        .iter()
        .filter_map(|&(vip, moved)| {
            let o = m
                .outages
                .iter()
                .find(|o| o.target == vip && o.spans_move(at(moved)))?;
            let since = |i: Instant| Duration::from_nanos(i.as_nanos());
            Some(Failover {
                vip,
                moved,
                from: since(o.from),
                took: o.until.map(|_| o.len(end_at)),
            })
        })
        .max_by_key(|f| (f.took.is_none(), f.took, std::cmp::Reverse(f.moved)))
}

/// The word a `vrrp_state` expectation is written with: keepalived's name of the VRRP
/// state, or `STOPPED` for "keepalived is not running", which is no VRRP state.
fn expected_word(s: VrrpState) -> &'static str {
    match s {
        VrrpState::Master => CoreState::Master.as_str(),
        VrrpState::Backup => CoreState::Backup.as_str(),
        VrrpState::Fault => CoreState::Fault.as_str(),
        VrrpState::Stopped => "STOPPED",
    }
}

/// Each VRRP instance's last reported state on `host` since its process last started.
fn instance_states(obs: &[Observation], host: &str) -> BTreeMap<String, &'static str> {
    let mut states = BTreeMap::new();
    for o in obs.iter().filter(|o| o.host == host) {
        match &o.what {
            Observed::VrrpState {
                name,
                group: false,
                state,
            } => {
                states.insert(name.clone(), state.as_str());
            }
            Observed::Process { .. } => states.clear(),
            _ => {}
        }
    }
    states
}

/// Real servers in a director's IPVS table at the end (its last table observation), and
/// where that came from.
fn destinations(obs: &[Observation], host: &str) -> (BTreeSet<String>, &'static str) {
    let last = obs.iter().rev().find_map(|o| match &o.what {
        Observed::IpvsTable { table, running, .. } if o.host == host => Some((table, *running)),
        _ => None,
    });
    match last {
        Some((Some(t), _)) => (
            t.destinations().map(|a| a.to_string()).collect(),
            "ipvsadm -L -n",
        ),
        Some((None, true)) => (BTreeSet::new(), "no IPVS table"),
        Some((None, false)) | None => (BTreeSet::new(), "no process"),
    }
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
    obs: &[Observation],
    settle: Duration,
    end: Duration,
    gaps: &[Gap],
    summary: &Summary,
    violations: &[Violation],
) -> Vec<Verdict> {
    let e = &s.expect;
    let name_of = |h: HostId| s.host_by_id(h).map_or("?", |x| x.name.as_str()).to_string();
    let mut out = Vec::new();
    let mut push = |name: String, pass: bool, expected: String, observed: String| {
        out.push(Verdict {
            name,
            pass,
            expected,
            observed,
            reached: true,
        })
    };
    for (vip, owner) in &e.vip_owner {
        let on = vip_holders(obs, *vip);
        let holders: Vec<&crate::Host> = s
            .hosts
            .iter()
            .filter(|h| matches!(h.role, Role::Director(_)) && on.contains(h.name.as_str()))
            .collect();
        let pass = holders.len() == 1 && holders[0].id == *owner;
        push(
            format!("vip_owner {vip}"),
            pass,
            name_of(*owner),
            list(holders.iter().map(|h| &h.name)),
        );
    }
    for (host, want) in &e.vrrp_state {
        let name = name_of(*host);
        let alive = running(obs, &name);
        let states = if alive {
            instance_states(obs, &name)
        } else {
            BTreeMap::new()
        };
        let want_s = expected_word(*want);
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
        let (got, from) = destinations(obs, &name_of(*host));
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
        let met = obs.iter().find(|o| o.what == Observed::Converged);
        let (pass, observed) = match met {
            Some(o) => {
                let took = o.t.saturating_sub(settle);
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
        let safety: Vec<&Violation> = violations
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
    use crate::observe::{IpvsDest, IpvsService, IpvsTable};
    use lvs_core::ipvs::{FwdMethod, Protocol, ServiceKey, SockAddr};

    fn seed(name: &str) -> Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("seed")
            .join(format!("{name}.toml"));
        Scenario::load(path).expect("seed scenario loads")
    }

    fn at(t: u64, host: &str, what: Observed) -> Observation {
        Observation {
            t: Duration::from_secs(t),
            host: host.into(),
            what,
        }
    }

    fn vip(addr: &str, iface: Option<&str>, added: bool) -> Observed {
        Observed::Vip {
            iface: iface.map(str::to_string),
            addr: addr.parse().expect("address"),
            added,
        }
    }

    fn verdict<'a>(r: &'a Report, name: &str) -> &'a Verdict {
        r.verdicts
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("no verdict {name}"))
    }

    #[test]
    fn a_scenario_with_nothing_to_judge_says_so() {
        let mut s = seed("01-start");
        s.expect = crate::Expect {
            vip_owner: BTreeMap::new(),
            vrrp_state: BTreeMap::new(),
            ipvs_destinations: BTreeMap::new(),
            max_failed_requests: None,
            min_completed_requests: None,
            failover_within: None,
            converge_within: None,
            share: BTreeMap::new(),
            invariants: false,
        };
        let run = RunRecord {
            seed: 1,
            end: s.duration,
            observations: Vec::new(),
            requests: Metrics::default(),
            events: 0,
            svg: None,
        };
        let r = judge(&s, &run);
        assert!(r.verdicts.is_empty());
        assert!(r.render_verdicts().contains("nothing to judge"));
    }

    #[test]
    fn verdicts_come_from_the_observations_alone() {
        let s = seed("01-start");
        let dest = |last: u8| IpvsDest {
            addr: SockAddr(IpAddr::from([223, 202, 22, last]), 80),
            fwd: FwdMethod::Route,
            weight: 100,
            active: 0,
            inactive: 0,
        };
        let table = IpvsTable {
            services: vec![IpvsService {
                key: ServiceKey::Inet {
                    proto: Protocol::Tcp,
                    addr: IpAddr::from([223, 202, 22, 118]),
                    port: 80,
                },
                scheduler: "wrr".into(),
                persistence: None,
                dests: vec![dest(117)],
            }],
        };
        let mut observations = vec![
            at(0, "director1", Observed::Process { running: true }),
            at(4, "director1", vip("223.202.22.118", Some("eth0"), true)),
            at(4, "director2", vip("223.202.22.118", Some("eth0"), true)),
            at(5, "director2", vip("223.202.22.118", None, false)),
            at(
                60,
                "director1",
                Observed::IpvsTable {
                    table: Some(table),
                    running: true,
                    listing: None,
                },
            ),
        ];
        let record = |observations| RunRecord {
            seed: 1,
            end: Duration::from_secs(60),
            observations,
            requests: Metrics::default(),
            events: 0,
            svg: None,
        };
        let r = judge(&s, &record(observations.clone()));
        let owner = verdict(&r, "vip_owner 223.202.22.118");
        assert!(owner.pass, "{owner:?}");
        assert_eq!(owner.observed, "[director1]");
        let dests = verdict(&r, "ipvs_destinations director1");
        assert!(!dests.pass);
        assert_eq!(dests.observed, "[223.202.22.117:80] (from ipvsadm -L -n)");
        let gone = verdict(&r, "ipvs_destinations director2");
        assert_eq!(gone.observed, "[] (from no process)");
        // A second holder that never lets go fails the owner check.
        observations.remove(3);
        let r = judge(&s, &record(observations));
        let owner = verdict(&r, "vip_owner 223.202.22.118");
        assert!(!owner.pass);
        assert_eq!(owner.observed, "[director1, director2]");
    }

    #[test]
    fn client_failover_runs_from_the_first_failed_send_to_the_first_answer_after_the_move() {
        let s = seed("07-master-killed");
        let v: IpAddr = "223.202.22.118".parse().unwrap();
        let observations = vec![
            at(4, "director1", vip("223.202.22.118", Some("eth0"), true)),
            // Killed at 30: the VIP goes to director2 at 31, back to director1 at 50.
            at(30, "director1", vip("223.202.22.118", None, false)),
            at(31, "director2", vip("223.202.22.118", Some("eth0"), true)),
            at(50, "director2", vip("223.202.22.118", Some("eth0"), false)),
            at(50, "director1", vip("223.202.22.118", Some("eth0"), true)),
        ];
        let mut requests = Metrics::default();
        let t = Instant::from_millis;
        requests.record_ok(v, "web1", t(29_000), t(29_030));
        // A real server's reset at 10 s is an outage, but no VIP moved around it.
        requests.record_failed(v, "reset", false, t(10_000));
        requests.record_ok(v, "web2", t(10_500), t(10_530));
        requests.record_ok(v, "web1", t(29_000), t(29_030));
        requests.record_failed(v, "connect_timeout", false, t(29_900));
        requests.record_ok(v, "web2", t(31_000), t(33_100));
        requests.requests_sent = 7;
        let run = RunRecord {
            seed: 1,
            end: Duration::from_secs(60),
            observations,
            requests,
            events: 0,
            svg: None,
        };
        let r = judge(&s, &run);
        let f = r.summary.failover.expect("a failover");
        assert_eq!((f.vip, f.moved), (v, Duration::from_secs(31)));
        assert_eq!(f.from, Duration::from_millis(29_900));
        assert_eq!(f.took, Some(Duration::from_millis(3_200)));
        assert_eq!(r.summary.vip_moves, 2);
        assert_eq!(r.summary.requests_in_flight, 1);
        let text = r.render_summary();
        assert!(
            text.contains("failover (client view): 3.200s (223.202.22.118 moved at 31.000s)"),
            "{text}"
        );
        assert!(
            text.contains("sent 7 = ok 4 + failed 2 + in flight 1"),
            "{text}"
        );
        assert!(
            text.contains("failed by reason: connect_timeout 1, reset 1"),
            "{text}"
        );
        assert!(text.contains("latency: p50 30."), "{text}");
    }
}
