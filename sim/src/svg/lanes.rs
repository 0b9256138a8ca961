//! The timeline's lanes, read from the trace: every holder of each VIP and where the
//! gateway sends it, VRRP state per instance and director with the process's own states
//! (not started, STOPPED, killed, paused) and the host's conditions (NIC down,
//! partitioned), and each real server as its host runs it and as each director's checker
//! sees it ("no checker" while that director's keepalived is not running, never "down").

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use crate::packet::Mac;

use lvs_core::director::{StateChangeKind, VrrpState};

use super::input::{ArpChange, Context, Role};
use super::style::{self, Style};
use crate::record::{mac_text, TraceEntry, TraceEvent};

/// One stretch of a lane: from `t` to the next one's `t` (or the end).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Seg {
    /// Start, ns.
    pub t: u64,
    /// What it means, in words (drawn inside when it fits, and as the tooltip).
    pub text: String,
    /// How it is drawn.
    pub style: Style,
}

/// One row of the timeline.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Lane {
    /// Its name in the left margin.
    pub label: String,
    /// Drawn indented under the lane above (a detail of it).
    pub indent: bool,
    /// Stretches in time order, each differing from the one before.
    pub segs: Vec<Seg>,
}

impl Lane {
    fn new(label: String, indent: bool) -> Self {
        Lane {
            label,
            indent,
            segs: Vec::new(),
        }
    }

    /// From `t` on the lane reads `text` in `style` (a change at the same instant replaces
    /// the one before).
    fn set(&mut self, t: u64, text: String, style: Style) {
        if let Some(last) = self.segs.last_mut() {
            if last.text == text && last.style == style {
                return;
            }
            if last.t == t {
                last.text = text;
                last.style = style;
                // The replaced stretch may now repeat the one before it.
                let n = self.segs.len();
                let same = |a: &Seg, b: &Seg| a.text == b.text && a.style == b.style;
                if n >= 2 && same(&self.segs[n - 2], &self.segs[n - 1]) {
                    self.segs.pop();
                }
                return;
            }
        }
        self.segs.push(Seg { t, text, style });
    }
}

/// A titled group of lanes.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Section {
    /// Its heading.
    pub title: &'static str,
    /// Its lanes, top to bottom.
    pub lanes: Vec<Lane>,
}

/// A fault as the timeline marks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Marker {
    /// When, ns.
    pub t: u64,
    /// Short label (what and where).
    pub label: String,
    /// Every fault at that instant, one a line.
    pub detail: String,
}

/// Why a director's keepalived is not running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gone {
    Killed,
    Stopped,
    Exited,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proc {
    NotStarted,
    Running,
    /// SIGSTOP: the process holds its state and does nothing.
    Paused,
    /// SIGTERM received, not exited yet.
    Stopping,
    Down(Gone),
}

/// A real server as one director's IPVS table holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dest {
    /// Not added since the process started.
    Absent,
    Weight(i32),
    Removed,
}

/// What the timeline tracks of a host while reading the trace.
#[derive(Debug)]
struct HostState {
    proc: Proc,
    /// The signal that will explain the process's end.
    cause: Option<Gone>,
    /// Interfaces down (`ip link`) or unplugged.
    down: BTreeSet<String>,
    /// Hosts it is cut off from.
    cut_from: BTreeSet<String>,
    /// VRRP instance → state (None: not reported since the process started).
    vrrp: BTreeMap<String, Option<VrrpState>>,
    /// (service, dest) → as the table holds it.
    dests: BTreeMap<(String, String), Dest>,
    /// The process has changed its table since it started (until then an empty table is
    /// the process starting, not its checkers' verdict).
    table_seen: bool,
    /// Ports whose service is stopped (real servers).
    stopped: BTreeSet<u16>,
}

impl HostState {
    fn new() -> Self {
        HostState {
            proc: Proc::NotStarted,
            cause: None,
            down: BTreeSet::new(),
            cut_from: BTreeSet::new(),
            vrrp: BTreeMap::new(),
            dests: BTreeMap::new(),
            table_seen: false,
            stopped: BTreeSet::new(),
        }
    }

    fn running(&self) -> bool {
        matches!(self.proc, Proc::Running | Proc::Paused | Proc::Stopping)
    }

    /// The host's conditions as words ("NIC eth0 down", "partitioned from d2") and the
    /// overlay that marks them.
    fn conditions(&self) -> (String, Option<&'static str>) {
        let mut words = Vec::new();
        let mut overlay = None;
        if !self.cut_from.is_empty() {
            let peers: Vec<&str> = self.cut_from.iter().map(String::as_str).collect();
            words.push(format!("partitioned from {}", peers.join(",")));
            overlay = Some(style::PARTITIONED);
        }
        if !self.down.is_empty() {
            let ifaces: Vec<&str> = self.down.iter().map(String::as_str).collect();
            words.push(format!("NIC {} down", ifaces.join(",")));
            overlay = Some(style::NIC_DOWN);
        }
        (words.join(" · "), overlay)
    }
}

fn join(a: String, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a,
        (true, false) => b.to_string(),
        (false, false) => format!("{a} · {b}"),
    }
}

/// The VRRP lane of `inst` on a director in state `h`.
fn vrrp_seg(h: &HostState, inst: &str) -> (String, Style) {
    let (text, mut st) = match h.proc {
        Proc::NotStarted => ("not started".to_string(), style::NOT_STARTED),
        Proc::Down(Gone::Killed) => ("killed (SIGKILL)".to_string(), style::KILLED),
        Proc::Down(Gone::Stopped) => ("STOPPED (SIGTERM)".to_string(), style::STOPPED),
        Proc::Down(Gone::Exited) => ("not running".to_string(), style::STOPPED),
        Proc::Paused => {
            let was = h.vrrp.get(inst).copied().flatten();
            let was = was.map_or("starting", VrrpState::as_str);
            (format!("paused (SIGSTOP), was {was}"), style::PAUSED)
        }
        Proc::Running | Proc::Stopping => match h.vrrp.get(inst).copied().flatten() {
            Some(s) => (s.as_str().to_string(), style::vrrp(s)),
            None => ("starting".to_string(), style::vrrp(VrrpState::Init)),
        },
    };
    if !h.running() {
        return (text, st);
    }
    let (cond, overlay) = h.conditions();
    st.overlay = overlay.or(st.overlay);
    (join(text, &cond), st)
}

/// The lane of `dest` in `service` as director `h`'s checker sees it.
fn dest_seg(h: &HostState, service: &str, dest: &str) -> (String, Style) {
    let d = h
        .dests
        .get(&(service.to_string(), dest.to_string()))
        .copied()
        .unwrap_or(Dest::Absent);
    let view = |d: Dest| match d {
        Dest::Weight(w) if w > 0 => (format!("up (weight {w})"), style::UP),
        Dest::Weight(_) => ("down (weight 0)".to_string(), style::DOWN),
        Dest::Removed => ("down (removed from the table)".to_string(), style::DOWN),
        Dest::Absent => ("down (not in the table)".to_string(), style::DOWN),
    };
    match h.proc {
        Proc::NotStarted => (
            "no checker (director not started)".to_string(),
            style::NO_CHECKER,
        ),
        Proc::Down(g) => {
            let why = match g {
                Gone::Killed => "killed",
                Gone::Stopped => "stopped",
                Gone::Exited => "exited",
            };
            (
                format!("no checker (director not running: {why})"),
                style::NO_CHECKER,
            )
        }
        Proc::Paused => {
            let (was, _) = view(d);
            (
                format!("no checker (director paused), table: {was}"),
                style::PAUSED,
            )
        }
        // keepalived empties its table on SIGTERM: that is not the real server failing.
        Proc::Stopping if !matches!(d, Dest::Weight(w) if w > 0) => (
            "no checker (director stopping)".to_string(),
            style::NO_CHECKER,
        ),
        Proc::Running if d == Dest::Absent && !h.table_seen => (
            "no checker yet (director starting)".to_string(),
            style::NO_CHECKER,
        ),
        Proc::Running | Proc::Stopping => view(d),
    }
}

/// The lane of a real server's `port` as its own host runs it.
fn service_seg(h: &HostState, port: u16) -> (String, Style) {
    let (text, mut st) = if h.stopped.contains(&port) {
        (format!("service :{port} stopped"), style::DOWN)
    } else {
        (format!("serving :{port}"), style::SERVING)
    };
    let (cond, overlay) = h.conditions();
    st.overlay = overlay;
    (join(text, &cond), st)
}

/// The holders of a VIP: live (their keepalived runs) and leftover (configured on a host
/// whose keepalived was killed: its kernel still answers ARP for it).
fn vip_seg(
    holders: &BTreeSet<String>,
    hosts: &BTreeMap<String, HostState>,
    ctx: &Context,
) -> (String, Style) {
    // Only a killed keepalived leaves its VIPs behind; any other holder is live.
    let live = |n: &&String| {
        !hosts
            .get(*n)
            .is_some_and(|h| matches!(h.proc, Proc::Down(_)))
    };
    let (live, left): (Vec<&String>, Vec<&String>) = holders.iter().partition(live);
    let left_text = if left.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = left.iter().map(|s| s.as_str()).collect();
        format!("leftover on {} (keepalived not running)", names.join(","))
    };
    match live.as_slice() {
        [] if left.is_empty() => ("no holder".to_string(), style::NO_HOLDER),
        [] => (left_text, style::LEFTOVER),
        [one] => (join(one.to_string(), &left_text), ctx.director_style(one)),
        many => {
            let names: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
            let text = format!("SPLIT BRAIN: {}", names.join(" + "));
            (join(text, &left_text), style::SPLIT_BRAIN)
        }
    }
}

/// Short label of a fault for its marker.
fn fault_label(description: &str, kind: &str, host: &str, iface: Option<&str>) -> String {
    match kind {
        // Their description carries every link parameter: the marker says where.
        "link_params" => format!("link change {host} {}", iface.unwrap_or("")),
        _ => description.to_string(),
    }
}

/// The faults, one marker per instant (several faults at once share it).
pub(super) fn markers(trace: &[TraceEntry]) -> Vec<Marker> {
    let mut out: Vec<(Marker, usize)> = Vec::new();
    for e in trace {
        let TraceEvent::Fault(f) = &e.event else {
            continue;
        };
        let label = fault_label(&f.description, f.kind, &e.host, f.iface.as_deref());
        match out.last_mut() {
            Some((m, n)) if m.t == e.t => {
                *n += 1;
                m.detail.push('\n');
                m.detail.push_str(&f.description);
            }
            _ => out.push((
                Marker {
                    t: e.t,
                    label,
                    detail: f.description.clone(),
                },
                1,
            )),
        }
    }
    out.into_iter()
        .map(|(mut m, n)| {
            if n > 1 {
                m.label = format!("{} (+{})", m.label, n - 1);
            }
            m
        })
        .collect()
}

/// Key of a real server's lanes: (its address, 0 for its host's own lane or 1 + the
/// director's index, service).
type DestKey = (String, usize, String);

/// Every lane of the timeline, by section.
pub(super) fn build(trace: &[TraceEntry], arp: &[ArpChange], ctx: &Context) -> Vec<Section> {
    let directors: Vec<&str> = ctx
        .hosts
        .iter()
        .filter(|h| h.role == Role::Director)
        .map(|h| h.name.as_str())
        .collect();
    let dir_index = |name: &str| directors.iter().position(|d| *d == name);
    // What lanes there are, read once ahead so each starts at 0.
    let mut hosts: BTreeMap<String, HostState> = ctx
        .hosts
        .iter()
        .map(|h| (h.name.clone(), HostState::new()))
        .collect();
    let mut vips: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut instances: BTreeSet<(usize, String)> = BTreeSet::new();
    let mut dests: BTreeSet<DestKey> = BTreeSet::new();
    for e in trace {
        match &e.event {
            TraceEvent::Notify { kind, name, .. } if *kind == StateChangeKind::Instance => {
                if let Some(i) = dir_index(&e.host) {
                    instances.insert((i, name.clone()));
                }
            }
            TraceEvent::AddVip { addr, .. } => {
                vips.entry(addr.clone()).or_default();
            }
            TraceEvent::Ipvs(c) => {
                if let (Some(d), Some(i)) = (&c.dest, dir_index(&e.host)) {
                    dests.insert((d.clone(), i + 1, c.service.clone()));
                    dests.insert((d.clone(), 0, String::new()));
                }
            }
            _ => {}
        }
    }
    // One service per real server address: its lanes need not name it.
    let mut services_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (d, i, s) in &dests {
        if *i > 0 {
            services_of.entry(d).or_default().insert(s);
        }
    }
    let vrrp_lanes: BTreeMap<(usize, String), Lane> = instances
        .iter()
        .map(|(i, n)| {
            let label = format!("{n} @ {}", directors[*i]);
            ((*i, n.clone()), Lane::new(label, false))
        })
        .collect();
    let dest_lanes: BTreeMap<DestKey, Lane> = dests
        .iter()
        .map(|k| {
            let (d, i, s) = k;
            let label = if *i == 0 {
                ctx.endpoint_name(d)
            } else if services_of.get(d.as_str()).is_some_and(|s| s.len() > 1) {
                format!("{}'s checker, {s}", directors[i - 1])
            } else {
                format!("{}'s checker", directors[i - 1])
            };
            (k.clone(), Lane::new(label, *i > 0))
        })
        .collect();
    let vip_lanes: BTreeMap<String, Lane> = vips
        .keys()
        .map(|v| (v.clone(), Lane::new(format!("VIP {v}"), false)))
        .collect();
    let mut gw_lanes: BTreeMap<(String, usize), (Option<Mac>, Lane)> = BTreeMap::new();
    for c in arp {
        let v = c.ip.to_string();
        if vips.contains_key(&v) {
            gw_lanes.entry((v, c.gateway)).or_insert_with(|| {
                let gw = ctx
                    .hosts
                    .get(c.gateway)
                    .map_or("gateway", |h| h.name.as_str());
                (None, Lane::new(format!("{gw}'s ARP entry"), true))
            });
        }
    }
    let mut arp = arp.iter().peekable();
    let mut partitions: Vec<(Vec<String>, Vec<String>)> = Vec::new();

    let mut rows = Rows {
        directors: &directors,
        ctx,
        vrrp: vrrp_lanes,
        dests: dest_lanes,
        vips: vip_lanes,
        gateways: gw_lanes,
    };
    rows.refresh(0, &hosts, &vips);
    for e in trace {
        let host = &*e.host;
        // A gateway's entry changed: its lane follows (before the trace's events at that
        // time, whose order against it is not recorded).
        while let Some(c) = arp.next_if(|c| c.t <= e.t) {
            rows.arp(c, &hosts, &vips);
        }
        match &e.event {
            TraceEvent::Notify {
                kind, name, state, ..
            } if *kind == StateChangeKind::Instance => {
                if let Some(h) = hosts.get_mut(host) {
                    h.vrrp.insert(name.clone(), Some(*state));
                }
            }
            TraceEvent::AddVip { addr, .. } => {
                vips.entry(addr.clone())
                    .or_default()
                    .insert(host.to_string());
            }
            TraceEvent::DelVip { addr, .. } => {
                if let Some(set) = vips.get_mut(addr) {
                    set.remove(host);
                }
            }
            TraceEvent::Ipvs(c) => {
                let Some(h) = hosts.get_mut(host) else {
                    continue;
                };
                h.table_seen = true;
                match (c.op, &c.dest) {
                    ("del_service", _) => {
                        for ((s, _), d) in h.dests.iter_mut() {
                            if *s == c.service {
                                *d = Dest::Removed;
                            }
                        }
                    }
                    ("del_dest", Some(d)) => {
                        h.dests
                            .insert((c.service.clone(), d.clone()), Dest::Removed);
                    }
                    (_, Some(d)) => {
                        let w = c.weight.unwrap_or(0);
                        h.dests
                            .insert((c.service.clone(), d.clone()), Dest::Weight(w));
                    }
                    _ => continue,
                }
            }
            TraceEvent::Process { running } => {
                let Some(h) = hosts.get_mut(host) else {
                    continue;
                };
                if *running {
                    h.proc = Proc::Running;
                    h.cause = None;
                    // A new process: nothing it reports yet, an empty table until it fills
                    // it (keepalived removes what a killed one left at its start).
                    h.vrrp.values_mut().for_each(|s| *s = None);
                    h.dests.values_mut().for_each(|d| *d = Dest::Absent);
                    h.table_seen = false;
                } else {
                    h.proc = Proc::Down(h.cause.take().unwrap_or(Gone::Exited));
                }
            }
            TraceEvent::Service { port, running } => {
                if let Some(h) = hosts.get_mut(host) {
                    if *running {
                        h.stopped.remove(port);
                    } else {
                        h.stopped.insert(*port);
                    }
                }
            }
            TraceEvent::Fault(f) => {
                let h = hosts.get_mut(host);
                match (f.kind, h) {
                    ("kill", Some(h)) => {
                        h.cause = Some(Gone::Killed);
                    }
                    ("stop" | "restart", Some(h)) => {
                        if h.running() {
                            h.proc = Proc::Stopping;
                        }
                        h.cause = Some(Gone::Stopped);
                    }
                    ("pause", Some(h)) => {
                        if h.proc == Proc::Running {
                            h.proc = Proc::Paused;
                        }
                    }
                    ("resume", Some(h)) => {
                        if h.proc == Proc::Paused {
                            h.proc = Proc::Running;
                        }
                    }
                    ("nic" | "link", Some(h)) => {
                        let iface = f.iface.clone().unwrap_or_default();
                        if f.up == Some(false) {
                            h.down.insert(iface);
                        } else {
                            h.down.remove(&iface);
                        }
                    }
                    ("partition", _) => {
                        partitions.push((f.from.clone(), f.to.clone()));
                        cut_off(&mut hosts, &partitions);
                    }
                    ("heal", _) => {
                        partitions.clear();
                        cut_off(&mut hosts, &partitions);
                    }
                    _ => continue,
                }
            }
            _ => continue,
        }
        rows.refresh(e.t, &hosts, &vips);
    }
    for c in arp {
        rows.arp(c, &hosts, &vips);
    }

    let Rows {
        vrrp: vrrp_lanes,
        dests: dest_lanes,
        vips: vip_lanes,
        gateways: gw_lanes,
        ..
    } = rows;
    let mut vip_section = Vec::new();
    for (v, lane) in vip_lanes {
        vip_section.push(lane);
        let mine = gw_lanes.iter().filter(|((gv, _), _)| *gv == v);
        vip_section.extend(mine.map(|(_, (_, l))| l.clone()));
    }
    let mut sections = vec![
        Section {
            title: "VIPs: who holds each (and where each gateway sends it)",
            lanes: vip_section,
        },
        Section {
            title: "VRRP: state per instance and director",
            lanes: vrrp_lanes.into_values().collect(),
        },
        Section {
            title: "real servers: as the host runs them, as each checker sees them",
            lanes: dest_lanes.into_values().collect(),
        },
    ];
    sections.retain(|s| !s.lanes.is_empty());
    sections
}

/// The lanes while the trace is read: each follows the state it draws.
struct Rows<'a> {
    directors: &'a [&'a str],
    ctx: &'a Context,
    vrrp: BTreeMap<(usize, String), Lane>,
    dests: BTreeMap<DestKey, Lane>,
    vips: BTreeMap<String, Lane>,
    /// (VIP, gateway) → the MAC its ARP cache holds for it, and its lane.
    gateways: BTreeMap<(String, usize), (Option<Mac>, Lane)>,
}

impl Rows<'_> {
    /// Every lane reads what `hosts` and `vips` say from `t` on.
    fn refresh(
        &mut self,
        t: u64,
        hosts: &BTreeMap<String, HostState>,
        vips: &BTreeMap<String, BTreeSet<String>>,
    ) {
        let (ctx, directors) = (self.ctx, self.directors);
        for ((i, inst), lane) in self.vrrp.iter_mut() {
            if let Some(h) = hosts.get(directors[*i]) {
                let (text, st) = vrrp_seg(h, inst);
                lane.set(t, text, st);
            }
        }
        for ((d, i, svc), lane) in self.dests.iter_mut() {
            if *i == 0 {
                let owner = ctx.owner_of(d);
                let port = d.parse::<SocketAddr>().map_or(0, |a| a.port());
                if let Some(h) = owner.and_then(|o| hosts.get(o)) {
                    let (text, st) = service_seg(h, port);
                    lane.set(t, text, st);
                }
            } else if let Some(h) = hosts.get(directors[i - 1]) {
                let (text, st) = dest_seg(h, svc, d);
                lane.set(t, text, st);
            }
        }
        for (v, lane) in self.vips.iter_mut() {
            if let Some(holders) = vips.get(v) {
                let (text, st) = vip_seg(holders, hosts, ctx);
                lane.set(t, text, st);
            }
        }
        for ((v, _), (mac, lane)) in self.gateways.iter_mut() {
            let (text, st) = gateway_seg(*mac, vips.get(v), hosts, ctx);
            lane.set(t, text, st);
        }
    }

    /// A gateway's entry changed.
    fn arp(
        &mut self,
        c: &ArpChange,
        hosts: &BTreeMap<String, HostState>,
        vips: &BTreeMap<String, BTreeSet<String>>,
    ) {
        if let Some((mac, _)) = self.gateways.get_mut(&(c.ip.to_string(), c.gateway)) {
            *mac = Some(c.mac);
        }
        self.refresh(c.t, hosts, vips);
    }
}

/// Every host's peers across the partitions in force.
fn cut_off(hosts: &mut BTreeMap<String, HostState>, partitions: &[(Vec<String>, Vec<String>)]) {
    for h in hosts.values_mut() {
        h.cut_from.clear();
    }
    for (from, to) in partitions {
        for (a, b) in from.iter().flat_map(|a| to.iter().map(move |b| (a, b))) {
            if a == b {
                continue;
            }
            if let Some(h) = hosts.get_mut(a) {
                h.cut_from.insert(b.clone());
            }
            if let Some(h) = hosts.get_mut(b) {
                h.cut_from.insert(a.clone());
            }
        }
    }
}

/// Where a gateway sends a VIP: the director whose MAC its ARP cache holds, marked stale
/// when that host does not hold the VIP (or its keepalived is gone), which is where the
/// VIP's traffic is lost until a gratuitous ARP or the entry's expiry moves it.
fn gateway_seg(
    mac: Option<Mac>,
    holders: Option<&BTreeSet<String>>,
    hosts: &BTreeMap<String, HostState>,
    ctx: &Context,
) -> (String, Style) {
    let Some(mac) = mac else {
        return ("not resolved".to_string(), style::NOT_STARTED);
    };
    let text = mac_text(mac);
    let Some(owner) = ctx.mac_owner(mac) else {
        return (format!("→ {text} (no host has it)"), style::UNKNOWN_MAC);
    };
    let mut st = ctx.director_style(owner);
    let holds = holders.is_some_and(|h| h.contains(owner));
    let gone = hosts
        .get(owner)
        .is_some_and(|h| matches!(h.proc, Proc::Down(_)));
    let stale = match (holds, gone) {
        (false, _) => format!(" · stale: {owner} does not hold it"),
        (true, true) => format!(" · stale: {owner}'s keepalived is not running"),
        (true, false) => String::new(),
    };
    if !stale.is_empty() {
        st.overlay = Some(style::STALE);
    }
    (format!("→ {owner} ({text}){stale}"), st)
}

impl Context {
    /// The host with address `ip`.
    fn host_of(&self, ip: IpAddr) -> Option<&str> {
        self.hosts
            .iter()
            .find(|h| h.addrs.contains(&ip))
            .map(|h| h.name.as_str())
    }

    /// The host of a real server endpoint `addr:port`.
    fn owner_of(&self, endpoint: &str) -> Option<&str> {
        self.host_of(endpoint.parse::<SocketAddr>().ok()?.ip())
    }

    /// `web1 10.0.0.11:80` (the address alone when no host has it).
    fn endpoint_name(&self, endpoint: &str) -> String {
        match self.owner_of(endpoint) {
            Some(h) => format!("{h} {endpoint}"),
            None => endpoint.to_string(),
        }
    }

    /// The host an interface MAC belongs to.
    fn mac_owner(&self, mac: Mac) -> Option<&str> {
        self.hosts
            .iter()
            .find(|h| h.macs.contains(&mac))
            .map(|h| h.name.as_str())
    }

    /// The colour of a director (by its place among the directors).
    pub(super) fn director_style(&self, name: &str) -> Style {
        let i = self
            .hosts
            .iter()
            .filter(|h| h.role == Role::Director)
            .position(|h| h.name == name);
        style::director(i)
    }
}
