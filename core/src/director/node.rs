//! The `Director` state machine: routes inputs to VRRP, the checkers and IPVS,
//! and turns their outputs into frames, address changes and log lines.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

use crate::check::healthcheckers::{CheckInput, CheckOutput, HealthCheckers, HealthCheckersConfig};
use crate::check::probe::{Probe, ProbeId, ProbeKind, ProbeResult};
use crate::check::script::Script;
use crate::check::stats::CheckStats;
use crate::ipvs::stats::IpvsStats;
use crate::ipvs::sync::{self, SyncConfig, SyncReceiver, SyncSender};
use crate::ipvs::table::{Ipvs, IpvsOptions, PacketInfo, Verdict};
use crate::ipvs::{IpvsChange, Protocol, ServiceKey};
use crate::time::Instant;
use crate::vrrp::wire::{self, Expect, FrameParams, UnicastChecksum};
use crate::vrrp::{
    arp, InstanceStats, NotifyScript, RouterConfig, RouterError, RxError, StateChangeKind, Vip,
    VrrpInput, VrrpOutput, VrrpRouter, VrrpState,
};
use crate::wire::icmpv6::{Ndisc, NdiscFrame};

use super::dataplane::{self, Handled, Neighbours};
use super::env::{HostRoute6, Ipv6Side, NodeEnv};
use super::pending::Pending;
use super::{
    Admin, Applied, ApplyError, IfaceEvent, IfaceName, Input, LogSource, Notification, NotifyCause,
    Output, ScriptExec, SyncDaemon, SyncDaemonRole,
};

/// Script probes get ids from here up, so they never collide with checker probes.
const SCRIPT_PROBE_BASE: u64 = 1 << 62;

/// Who forwards client traffic: chosen by the driver.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum DataPlane {
    /// The director's own IPVS table forwards the frames it is given (the simulator).
    #[default]
    Userspace,
    /// The kernel's IPVS forwards: the director emits [`Output::Ipvs`] and
    /// [`Output::SyncDaemon`], keeps a mirror of the table as applied, and neither runs
    /// connections nor forwards frames.
    Kernel,
}

/// Counters and states of a director, as data (what `lvsd status --stats` reads).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DirectorStats {
    /// Per VRRP instance, in configuration order (keepalived's `vrrp_stats`).
    pub vrrp: Vec<InstanceStats>,
    /// Per virtual / real server: the checkers' results.
    pub checkers: CheckStats,
    /// Per IPVS service, from the table ([`DataPlane::Userspace`]; in kernel mode the mirror
    /// has no connections and its traffic counters stay zero: the kernel forwards, and its
    /// own counters are `ipvsadm -L -n --stats`'s).
    pub ipvs: Vec<ServiceStats>,
}

/// One IPVS service's counters.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ServiceStats {
    /// The service.
    pub key: ServiceKey,
    /// Conns / InPkts / OutPkts / InBytes / OutBytes of the service (`ipvsadm -L -n
    /// --stats`): what its destinations got, removed destinations included. OutPkts /
    /// OutBytes count NAT replies (DR and TUN replies bypass the director, as in the kernel).
    pub counters: IpvsStats,
    /// Its destinations, in kernel list order.
    pub dests: Vec<DestStats>,
}

/// One destination's counters (`ipvsadm -L -n`'s ActiveConn / InActConn, the persistence
/// templates, and `--stats`' traffic).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DestStats {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Active connections.
    pub active_conns: u32,
    /// Inactive connections.
    pub inactive_conns: u32,
    /// Persistence templates.
    pub persistent_conns: u32,
    /// Conns / InPkts / OutPkts / InBytes / OutBytes (see [`ServiceStats::counters`]).
    pub counters: IpvsStats,
}

/// Everything a director runs, already mapped from keepalived.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectorConfig {
    /// VRRP instances, sync groups, scripts.
    pub vrrp: RouterConfig,
    /// `vrrp_script` name → command line.
    pub scripts: BTreeMap<String, ScriptCommand>,
    /// Virtual servers and their checkers.
    pub checkers: HealthCheckersConfig,
    /// The IPVS connection sync daemon, when keepalived would start one.
    pub sync_daemon: Option<SyncDaemonConfig>,
    /// Who forwards client traffic (a reload keeps the running one).
    pub data_plane: DataPlane,
    /// What keepalived logs about the file when it reads it, at start and at each reload
    /// ([`super::config_log`]).
    pub config_log: Vec<(LogSource, String)>,
}

/// How to run one `vrrp_script`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptCommand {
    /// `script`: the command line.
    pub command: String,
    /// `timeout`: a run taking longer counts as a failure.
    pub timeout: std::time::Duration,
}

/// `lvs_sync_daemon IFACE INSTANCE [id N]`: the sync daemon follows INSTANCE's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncDaemonConfig {
    /// Interface the sync messages go out on and come in from.
    pub iface: String,
    /// The VRRP instance whose MASTER/BACKUP state picks the role.
    pub instance: String,
    /// Sync id (default: the instance's VRID).
    pub syncid: u8,
}

/// Which half of the sync daemon runs.
enum SyncRole {
    Master(SyncSender),
    Backup(SyncReceiver),
}

/// Per-instance receive expectations and transmit counters.
#[derive(Clone, Debug)]
struct Wire {
    iface: String,
    expect: Expect,
    ip_id: u16,
}

/// The instances' wires, found by (interface, VRID) as keepalived's dispatcher finds them.
#[derive(Clone, Debug, Default)]
struct Wires {
    list: Vec<Wire>,
    /// Per interface: the first instance on it (in configuration order) and the instances
    /// by VRID (the first one configured, when two share a VRID).
    by_iface: BTreeMap<String, (usize, BTreeMap<u8, usize>)>,
}

impl Wires {
    fn new(list: Vec<Wire>) -> Wires {
        let mut by_iface: BTreeMap<String, (usize, BTreeMap<u8, usize>)> = BTreeMap::new();
        for (i, w) in list.iter().enumerate() {
            let entry = by_iface
                .entry(w.iface.clone())
                .or_insert_with(|| (i, BTreeMap::new()));
            entry.1.entry(w.expect.vrid).or_insert(i);
        }
        Wires { list, by_iface }
    }

    /// The wire of the instance on `iface` with `vrid`.
    fn get_mut(&mut self, iface: &str, vrid: u8) -> Option<&mut Wire> {
        let i = *self.by_iface.get(iface)?.1.get(&vrid)?;
        self.list.get_mut(i)
    }
}

/// What a frame entering the director is, decided once, by its headers.
enum Class<'a> {
    /// ARP: the sender is learnt.
    Arp(arp::ArpFrame),
    /// TCP or UDP: client traffic or a sync datagram.
    Traffic(PacketInfo),
    /// IPv6 neighbour discovery: the sender (a solicitation's source, an advert's target)
    /// is learnt.
    Ndisc(IpAddr, [u8; 6]),
    /// A VRRP advert, read up to the VRID dispatch.
    Vrrp(wire::Carried<'a>),
    /// An advert that fails the checks made before the VRID is known.
    BadVrrp(wire::DecodeError),
    /// Anything else.
    Other,
}

impl Class<'_> {
    fn of(frame: &[u8]) -> Class<'_> {
        if let Ok(a) = arp::decode_arp(frame) {
            return Class::Arp(a);
        }
        // TCP/UDP is client traffic or sync; parsed once, never tried as VRRP.
        if let Some(pkt) = dataplane::packet_info(frame) {
            return Class::Traffic(pkt);
        }
        if let Some(nd) = NdiscFrame::parse(frame) {
            return match nd.msg {
                Ndisc::Solicit(ns) => match ns.source_mac {
                    Some(mac) if !nd.src.is_unspecified() => Class::Ndisc(IpAddr::V6(nd.src), mac),
                    _ => Class::Other,
                },
                Ndisc::Advert(na) => match na.target_mac {
                    Some(mac) => Class::Ndisc(IpAddr::V6(na.target), mac),
                    None => Class::Other,
                },
            };
        }
        match wire::Carried::parse(frame) {
            Ok(c) => Class::Vrrp(c),
            Err(wire::DecodeError::NotVrrp(_) | wire::DecodeError::NotIp(_)) => Class::Other,
            Err(e) => Class::BadVrrp(e),
        }
    }
}

/// Where a received frame went: IPVS alone, or VRRP / neighbours (whose timers may move).
#[derive(Copy, Clone, PartialEq, Eq)]
enum Plane {
    Data,
    Control,
}

/// One director node: keepalived's VRRP and checker processes and, in
/// [`DataPlane::Userspace`], the IPVS data plane, as a sans-IO state machine.
///
/// The director never reads a clock, a socket or a file: the driver owns time and I/O, and
/// talks to it through four calls, all taking the driver's `now` (which must never go back):
///
/// - [`Director::handle_input`] for everything that happened: a frame received, a probe or
///   `vrrp_script` finished, a carrier / interface / address change, an output that could
///   not be applied, an operator command.
/// - [`Director::handle_timeout`] when the deadline from [`Director::poll_timeout`] is
///   reached. Calling it early, late or twice is harmless: only timers due at `now` fire, and
///   a call with nothing due changes nothing and emits nothing.
/// - [`Director::poll_output`], until it returns `None`, after **every** `handle_*` call:
///   frames to send, VIPs and IPVS rules to apply, probes and notify scripts to run, log
///   lines. Outputs are in the order keepalived would act and must be executed in that
///   order; they are not dropped if left, but inputs that follow see a world the driver has
///   not caught up with yet.
/// - [`Director::poll_timeout`] after draining, to learn when to call `handle_timeout` next:
///   every `handle_*` call may move it, so ask again after each; `None` means no timer.
///
/// The first `handle_*` call starts the node as keepalived starts (VRRP instances enter their
/// initial state, the checkers install the virtual services); until then `poll_timeout`
/// returns [`Instant::ZERO`] so a driver that only waits on it starts it at once.
///
/// An output that can fail ([`Output::Ipvs`] in kernel mode, [`Output::AddVip`],
/// [`Output::DelVip`], [`Output::SyncDaemon`]) and does is reported with [`Input::Failed`]
/// right after draining, before any other input or timeout: the director logs it as
/// keepalived does and takes back what it recorded (its IPVS mirror, the VIPs it forwards
/// for, the sync daemon role). Success needs no report.
///
/// [`Admin::Reload`] applies a new configuration as keepalived's SIGHUP does (what is kept,
/// torn down and started is on [`VrrpRouter::reload`] and `HealthCheckers::reload`); one that
/// VRRP refuses is refused whole. After [`Admin::Stop`] every call is a no-op and
/// `poll_timeout` is `None`.
pub struct Director {
    env: NodeEnv,
    vrrp: VrrpRouter,
    /// Whether the first `handle_*` call started VRRP and the checkers.
    started: bool,
    checks: HealthCheckers,
    wires: Wires,
    scripts: BTreeMap<String, ScriptCommand>,
    /// Logged at start ([`DirectorConfig::config_log`]).
    config_log: Vec<(LogSource, String)>,
    script_probes: BTreeMap<ProbeId, String>,
    next_script_probe: u64,
    neighbours: Neighbours,
    /// Unicast adverts waiting for their peer's MAC.
    pending: Pending,
    ipvs: Ipvs,
    held_vips: BTreeSet<IpAddr>,
    /// The IPv6 VIPs held, in the order they were added (candidate tunnel sources).
    held_vips6: Vec<Vip>,
    /// The host's IPv6 routes ([`Director::set_routes6`]).
    routes6: Vec<HostRoute6>,
    sync_cfg: Option<SyncDaemonConfig>,
    sync: Option<SyncRole>,
    rng: Box<dyn rand_core::RngCore + Send>,
    out: VecDeque<Output>,
    stopped: bool,
    /// Earliest VRRP or checker deadline, recomputed after any input that reaches them:
    /// client traffic never does, and asking them after every packet is the hot path.
    control_deadline: Option<Instant>,
    data_plane: DataPlane,
    /// The kernel sync daemon role started ([`DataPlane::Kernel`]).
    kernel_sync: Option<SyncDaemonRole>,
    /// Outputs of the last call that can fail, with what undoes each in the mirror
    /// (IPVS changes) — cleared by the next call that is not an [`Input::Failed`].
    undo: Vec<(Applied, Vec<IpvsChange>)>,
}

impl std::fmt::Debug for Director {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Director")
            .field("env", &self.env)
            .field("vrrp", &self.vrrp)
            .field("checks", &self.checks)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl Director {
    /// A director that starts, as keepalived starts, at the first `handle_*` call: VRRP
    /// instances enter their initial state, checkers install the virtual services and arm.
    /// Until then [`Director::poll_timeout`] asks to be woken at once. `rng` is this node's
    /// own stream (checker warmup, scheduler choices).
    pub fn new(
        cfg: DirectorConfig,
        env: NodeEnv,
        mut rng: Box<dyn rand_core::RngCore + Send>,
    ) -> Result<Self, RouterError> {
        let wires = Wires::new(wires_for(&cfg.vrrp));
        // Built (and so validated: duplicate VRIDs, unknown group members...) now; it starts
        // at the first call.
        let vrrp = VrrpRouter::new(cfg.vrrp)?;
        Ok(Director {
            env,
            vrrp,
            checks: HealthCheckers::new(&cfg.checkers),
            started: false,
            wires,
            scripts: cfg.scripts,
            config_log: cfg.config_log,
            script_probes: BTreeMap::new(),
            next_script_probe: SCRIPT_PROBE_BASE,
            neighbours: Neighbours::default(),
            pending: Pending::default(),
            ipvs: Ipvs::new(IpvsOptions::default(), rng.next_u64()),
            held_vips: BTreeSet::new(),
            held_vips6: Vec::new(),
            routes6: Vec::new(),
            sync_cfg: cfg.sync_daemon,
            sync: None,
            rng,
            out: VecDeque::new(),
            stopped: false,
            control_deadline: None,
            data_plane: cfg.data_plane,
            kernel_sync: None,
            undo: Vec::new(),
        })
    }

    fn start(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        self.log(
            LogSource::Main,
            "Starting Keepalived v2.2.7 (lvsd)".to_string(),
        );
        for (source, text) in std::mem::take(&mut self.config_log) {
            self.log(source, text);
        }
        self.vrrp.start(now);
        let rules = self.checks.start(now, &mut *self.rng);
        for change in rules {
            self.apply_ipvs(change);
        }
        self.refresh_control_deadline();
    }

    /// Per VRRP instance keepalived's counters, per virtual / real server the checkers'
    /// results, per IPVS service and destination its connections, packets and bytes.
    pub fn stats(&self) -> DirectorStats {
        let ipvs = self
            .ipvs
            .services()
            .map(|s| ServiceStats {
                key: s.spec().key,
                counters: *s.stats(),
                dests: s
                    .dests()
                    .iter()
                    .map(|d| DestStats {
                        addr: d.addr,
                        port: d.port,
                        active_conns: d.activeconns,
                        inactive_conns: d.inactconns,
                        persistent_conns: d.persistconns,
                        counters: d.stats,
                    })
                    .collect(),
            })
            .collect();
        DirectorStats {
            vrrp: self.vrrp.stats(),
            checkers: self.checks.stats(),
            ipvs,
        }
    }

    /// Who forwards client traffic.
    pub fn data_plane(&self) -> DataPlane {
        self.data_plane
    }

    /// The host this director runs on.
    pub fn env(&self) -> &NodeEnv {
        &self.env
    }

    /// Set the host's IPv6 routing table (what `ip -6 route` lists: connected prefixes, each
    /// interface's fe80::/64, gateways), which an IPv6 tunnel's outer source is chosen by
    /// ([`NodeEnv::source_for6`]). Until it is set, an IPv6 real server forwarded by TUN has
    /// no route and its packets are dropped, as the kernel drops them.
    pub fn set_routes6(&mut self, routes: Vec<HostRoute6>) {
        self.routes6 = routes;
    }

    /// The host's IPv6 routing table as last set.
    pub fn routes6(&self) -> &[HostRoute6] {
        &self.routes6
    }

    /// The VRRP side (instances, groups, states), once started.
    pub fn vrrp(&self) -> Option<&VrrpRouter> {
        self.started.then_some(&self.vrrp)
    }

    /// The health-checker side (virtual servers, real server states).
    pub fn checkers(&self) -> &HealthCheckers {
        &self.checks
    }

    /// Feed an input.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        if self.stopped {
            return;
        }
        if !matches!(input, Input::Failed { .. }) {
            self.undo.clear();
        }
        self.start(now);
        match input {
            Input::Frame { iface, frame } => {
                if self.frame(now, iface, frame) == Plane::Data {
                    self.drain(now);
                    return;
                }
            }
            Input::ProbeDone { id, result } => {
                if let Some(script) = self.script_probes.remove(&id) {
                    let status = match result {
                        ProbeResult::Exit(Some(code)) => code,
                        ProbeResult::Connected => 0,
                        _ => 1,
                    };
                    self.vrrp_input(now, Some(VrrpInput::ScriptResult { script, status }));
                } else {
                    self.checks
                        .handle_input(now, CheckInput::ProbeDone { id, result });
                }
            }
            Input::Link { iface, up } => self.vrrp_input(now, Some(VrrpInput::Link { iface, up })),
            Input::Iface(ev) => self.iface_event(now, ev),
            Input::Failed { what, error } => self.failed(what, &error),
            Input::Admin(Admin::Reload(cfg)) => self.reload(now, *cfg),
            Input::Admin(Admin::Stop) => {
                self.vrrp_input(now, Some(VrrpInput::Stop));
                self.checks.handle_input(now, CheckInput::Stop);
                self.drain(now);
                self.out.push_back(Output::Log {
                    source: LogSource::Main,
                    text: "Stopped Keepalived".to_string(),
                });
                self.stopped = true;
                return;
            }
        }
        self.drain(now);
        self.refresh_control_deadline();
    }

    /// The earliest VRRP or checker deadline, asked of them.
    fn control_deadline_now(&self) -> Option<Instant> {
        [self.vrrp.poll_timeout(), self.checks.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn refresh_control_deadline(&mut self) {
        self.control_deadline = self.control_deadline_now();
    }

    /// Timers due at or before `now` fire; a spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        self.undo.clear();
        self.start(now);
        // VRRP and the checkers are only woken when one of their deadlines is due: most
        // wakeups are the connection table's expiry, and a spurious call is a no-op anyway.
        let control_due = self.control_deadline.is_some_and(|d| d <= now);
        if control_due {
            self.vrrp_input(now, None);
        }
        self.ipvs.handle_timeout(now);
        if let Some(SyncRole::Master(tx)) = &mut self.sync {
            tx.handle_timeout(now);
        }
        if control_due {
            self.checks.handle_timeout(now);
        }
        self.drain(now);
        if control_due {
            self.refresh_control_deadline();
        }
    }

    /// Next output to execute.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// `frame` will arrive soon: start loading what handling it will read (a hint for a
    /// driver that queues frames, as the simulator does; nothing changes).
    pub fn prefetch(&self, frame: &[u8]) {
        if let Some(pkt) = dataplane::packet_info(frame) {
            self.ipvs.prefetch(&pkt);
        }
    }

    /// Next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        if !self.started {
            return Some(Instant::ZERO);
        }
        debug_assert_eq!(
            self.control_deadline,
            self.control_deadline_now(),
            "cached VRRP/checker deadline is stale"
        );
        [
            self.control_deadline,
            self.ipvs.poll_timeout(),
            match &self.sync {
                Some(SyncRole::Master(tx)) => tx.poll_timeout(),
                _ => None,
            },
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Which plane a frame went to: classified once ([`Class::of`]), dispatched by lookup.
    fn frame(&mut self, now: Instant, iface: IfaceName, frame: Vec<u8>) -> Plane {
        let (checked, vrid) = match Class::of(&frame) {
            Class::Arp(a) => {
                self.learn(now, &iface, IpAddr::V4(a.arp.sender_ip), a.arp.sender_mac);
                return Plane::Control;
            }
            Class::Ndisc(ip, mac) => {
                self.learn(now, &iface, ip, mac);
                return Plane::Control;
            }
            Class::Traffic(pkt) => {
                self.traffic(now, iface, frame, pkt);
                return Plane::Data;
            }
            Class::Other => return Plane::Control,
            // Refused before the VRID is read: reported as the first instance on the
            // interface would have reported it.
            Class::BadVrrp(e) => match self.wires.by_iface.get(&*iface) {
                Some(&(first, _)) => (Err(e), self.wires.list[first].expect.vrid),
                None => return Plane::Control,
            },
            Class::Vrrp(c) => {
                // The kernel hands a raw socket only what is addressed to this host: a
                // unicast advert for an address we do not have never reaches keepalived.
                if !c.dst().is_multicast() && !self.is_local(c.dst()) {
                    return Plane::Control;
                }
                let Some(w) = self.wires.get_mut(&iface, c.vrid()) else {
                    return Plane::Control;
                };
                (c.check(&w.expect), w.expect.vrid)
            }
        };
        match checked {
            Ok(rx) => {
                self.learn(now, &iface, rx.src_ip, rx.src_mac);
                self.vrrp_input(
                    now,
                    Some(VrrpInput::Advert {
                        iface: iface.to_string(),
                        src: rx.src_ip,
                        dst: rx.dst_ip,
                        advert: rx.advert,
                    }),
                );
            }
            Err(e) => {
                let name = self
                    .vrrp
                    .instances()
                    .iter()
                    .find(|i| *i.config().iface == *iface && i.config().vrid == vrid)
                    .map_or_else(String::new, |i| i.name().to_string());
                if let Some(r) = RxError::of(&e) {
                    self.vrrp.count_rx_error(&iface, vrid, r);
                }
                self.log(LogSource::Vrrp, format!("({name}) {e}"));
            }
        }
        Plane::Control
    }

    /// Keep `held_vips6` in step with an IPv6 VIP added (`held`) or removed; a
    /// VIP added again moves to the end, as the kernel puts it first among its addresses.
    fn hold_vip6(&mut self, vip: &Vip, held: bool) {
        if !vip.addr.is_ipv6() {
            return;
        }
        self.held_vips6
            .retain(|v| (v.iface.as_str(), v.addr) != (vip.iface.as_str(), vip.addr));
        if held {
            self.held_vips6.push(vip.clone());
        }
    }

    /// A client packet: through IPVS when it is for a VIP we hold.
    fn traffic(&mut self, now: Instant, iface: IfaceName, frame: Vec<u8>, pkt: PacketInfo) {
        if self.data_plane == DataPlane::Kernel {
            return;
        }
        if pkt.dst == IpAddr::V4(sync::SYNC_GROUP_V4) && pkt.dport == sync::SYNC_PORT {
            self.sync_datagram(now, &iface, &frame);
            return;
        }
        if !self.held_vips.contains(&pkt.dst) {
            // Maybe a NAT real server's reply, sent to us as its gateway (ip_vs_out).
            let verdict = self.ipvs.process_reply(now, &pkt);
            if let Handled::Route { frame } = dataplane::reply(verdict, &frame) {
                self.out.push_back(Output::Route { frame });
            }
            return;
        }
        let verdict = self.ipvs.process(now, &pkt, &mut *self.rng);
        if let (Verdict::Forward(f), Some(SyncRole::Master(tx))) = (&verdict, &mut self.sync) {
            tx.on_packet(now, &mut self.ipvs, f.conn, f.in_pkts);
        }
        let v6 = Ipv6Side {
            routes: &self.routes6,
            vips: &self.held_vips6,
        };
        match dataplane::forward(verdict, frame, iface, &self.env, v6, &self.neighbours) {
            Handled::Forward { iface, frame } | Handled::Resolve { iface, frame } => {
                self.out.push_back(Output::Transmit { iface, frame });
            }
            Handled::Route { frame } => self.out.push_back(Output::Route { frame }),
            Handled::NotOurs | Handled::Dropped(_) | Handled::NoRoute => {}
            Handled::Unsupported(fwd) => self.log(
                LogSource::Main,
                format!("userspace data plane cannot forward with {fwd:?} yet"),
            ),
        }
    }

    /// A sync message from the master director: install its connections (backup only).
    fn sync_datagram(&mut self, now: Instant, iface: &str, frame: &[u8]) {
        let Some(SyncRole::Backup(rx)) = &mut self.sync else {
            return;
        };
        if self.sync_cfg.as_ref().is_some_and(|c| c.iface != iface) {
            return;
        }
        let Some(payload) = sync::udp_payload(frame) else {
            return;
        };
        if let Err(e) = rx.handle_datagram(now, &mut self.ipvs, payload) {
            self.log(LogSource::Main, format!("IPVS sync: dropped message: {e}"));
        }
    }

    /// Queue the sync sender's finished messages as frames.
    fn flush_sync(&mut self) {
        let Some(SyncRole::Master(tx)) = &mut self.sync else {
            return;
        };
        let Some(cfg) = &self.sync_cfg else {
            return;
        };
        let Some(ifc) = self.env.iface(&cfg.iface) else {
            return;
        };
        let Some(IpAddr::V4(src)) = self.env.primary(&cfg.iface, false) else {
            return;
        };
        while let Some(msg) = tx.poll_transmit() {
            if let Some(frame) = sync::udp_frame(ifc.mac, src, &msg) {
                self.out.push_back(Output::Transmit {
                    iface: IfaceName::from(cfg.iface.as_str()),
                    frame,
                });
            }
        }
    }

    /// keepalived starts the sync daemon's master half when the instance becomes MASTER
    /// and its backup half otherwise (`ipvs_syncd_master` / `ipvs_syncd_backup`).
    fn follow_sync_instance(&mut self, name: &str, state: VrrpState) {
        let Some(cfg) = &self.sync_cfg else {
            return;
        };
        if cfg.instance != name {
            return;
        }
        if self.data_plane == DataPlane::Kernel {
            let want = match state {
                VrrpState::Master => Some(SyncDaemonRole::Master),
                VrrpState::Backup => Some(SyncDaemonRole::Backup),
                _ => None,
            };
            self.kernel_sync_daemon(want);
            return;
        }
        let syncid = cfg.syncid;
        self.sync = match state {
            VrrpState::Master => Some(SyncRole::Master(SyncSender::new(SyncConfig {
                syncid,
                ..SyncConfig::default()
            }))),
            VrrpState::Backup => Some(SyncRole::Backup(SyncReceiver::new(syncid))),
            _ => None,
        };
    }

    /// Feed VRRP an input (None: its timers) once it runs.
    fn vrrp_input(&mut self, now: Instant, input: Option<VrrpInput>) {
        match input {
            Some(i) => self.vrrp.handle_input(now, i),
            None => self.vrrp.handle_timeout(now),
        }
    }

    /// Move every component's outputs into ours, translating as we go.
    fn drain(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(o) = self.vrrp.poll_output() {
                progressed = true;
                self.vrrp_output(now, o);
            }
            while let Some(o) = self.checks.poll_output() {
                progressed = true;
                self.check_output(o);
            }
            if !progressed {
                break;
            }
        }
        self.flush_sync();
    }

    fn vrrp_output(&mut self, now: Instant, o: VrrpOutput) {
        match o {
            VrrpOutput::SendAdvert {
                iface,
                src,
                dst,
                advert,
            } => {
                self.send_advert(now, &iface, src, dst, &advert);
            }
            VrrpOutput::AddVip(vip) => {
                self.held_vips.insert(vip.addr);
                self.hold_vip6(&vip, true);
                self.undo.push((Applied::AddVip(vip.clone()), Vec::new()));
                self.out.push_back(Output::AddVip(vip));
            }
            VrrpOutput::DelVip(vip) => {
                self.held_vips.remove(&vip.addr);
                self.hold_vip6(&vip, false);
                self.undo.push((Applied::DelVip(vip.clone()), Vec::new()));
                self.out.push_back(Output::DelVip(vip));
            }
            VrrpOutput::SendGarp { iface, addrs } => {
                let Some(mac) = self.env.iface(&iface).map(|i| i.mac) else {
                    return;
                };
                for addr in addrs {
                    let frame = match addr {
                        IpAddr::V4(a) => arp::gratuitous_arp(mac, a),
                        IpAddr::V6(a) => arp::unsolicited_na(mac, a, false),
                    };
                    self.out.push_back(Output::Transmit {
                        iface: IfaceName::from(iface.as_str()),
                        frame,
                    });
                }
            }
            VrrpOutput::RunScript { script } => {
                let run = self.scripts.get(&script).cloned().unwrap_or_default();
                let id = ProbeId(self.next_script_probe);
                self.next_script_probe += 1;
                self.script_probes.insert(id, script);
                self.out.push_back(Output::StartProbe(Probe {
                    id,
                    kind: ProbeKind::Script {
                        command: run.command,
                    },
                    timeout: run.timeout,
                }));
            }
            VrrpOutput::Notify { change, scripts } => {
                if change.kind == StateChangeKind::Instance {
                    self.follow_sync_instance(&change.name, change.state);
                }
                // keepalived gives STOP scripts one second (system_call_script, TIMER_HZ).
                let kill_after =
                    (change.state == VrrpState::Stop).then_some(std::time::Duration::from_secs(1));
                let scripts = scripts
                    .iter()
                    .filter_map(|s| script_exec(s, kill_after))
                    .collect();
                self.out.push_back(Output::Notify(Notification {
                    cause: NotifyCause::Vrrp(change),
                    scripts,
                }));
            }
            VrrpOutput::Log { text } => self.log(LogSource::Vrrp, text),
        }
    }

    /// `ip` is at `mac` on `iface`: remember it, and send what waited for it.
    fn learn(&mut self, now: Instant, iface: &IfaceName, ip: IpAddr, mac: [u8; 6]) {
        self.neighbours.learn(iface, ip, mac);
        if self.pending.is_empty() {
            return;
        }
        for (iface, frame) in self.pending.release(now, ip, mac) {
            self.out.push_back(Output::Transmit { iface, frame });
        }
    }

    /// One of this host's addresses: on an interface, or a VIP it holds.
    fn is_local(&self, addr: IpAddr) -> bool {
        self.held_vips.contains(&addr) || self.env.ifaces.iter().any(|i| i.addrs.contains(&addr))
    }

    fn send_advert(
        &mut self,
        now: Instant,
        iface: &str,
        src: Option<IpAddr>,
        dst: IpAddr,
        advert: &wire::Advert,
    ) {
        let Some(ifc) = self.env.iface(iface) else {
            self.log(
                LogSource::Vrrp,
                format!("Cannot send advert: no interface {iface}"),
            );
            return;
        };
        let Some(src_ip) = src.or_else(|| self.env.primary(iface, dst.is_ipv6())) else {
            self.log(
                LogSource::Vrrp,
                format!("Cannot send advert: {iface} has no address"),
            );
            return;
        };
        let mac = ifc.mac;
        // A unicast peer not yet resolved: the advert waits for its ARP reply (see `pending`).
        let mut unresolved = false;
        let mut params = if dst.is_multicast() {
            FrameParams::multicast(mac, src_ip)
        } else {
            let dst_mac = match self.neighbours.lookup(dst) {
                Some((_, m)) => m,
                None => {
                    unresolved = true;
                    [0; 6]
                }
            };
            FrameParams::unicast(mac, src_ip, dst_mac, dst)
        };
        if let Some(w) = self.wires.get_mut(iface, advert.vrid) {
            // keepalived counts IP ids per instance, skipping 0 on wrap.
            w.ip_id = w.ip_id.wrapping_add(1).max(1);
            params.ip_id = w.ip_id;
        }
        match wire::encode_frame(&params, advert) {
            Ok(frame) if unresolved => {
                let name = IfaceName::from(iface);
                if self.pending.hold(now, dst, name.clone(), frame) {
                    // IPv6 peers are learnt from their own adverts only (no neighbour
                    // solicitation is modelled).
                    if let (IpAddr::V4(from), IpAddr::V4(to)) = (src_ip, dst) {
                        self.out.push_back(Output::Transmit {
                            iface: name,
                            frame: dataplane::arp_request(mac, from, to),
                        });
                    }
                }
            }
            Ok(frame) => self.out.push_back(Output::Transmit {
                iface: IfaceName::from(iface),
                frame,
            }),
            Err(e) => self.log(
                LogSource::Vrrp,
                format!("Cannot send advert on {iface}: {e}"),
            ),
        }
    }

    fn check_output(&mut self, o: CheckOutput) {
        match o {
            CheckOutput::StartProbe(p) => self.out.push_back(Output::StartProbe(p)),
            CheckOutput::Ipvs(change) => self.apply_ipvs(change),
            CheckOutput::Log { text } => self.log(LogSource::Healthcheckers, text),
            CheckOutput::Notify {
                command,
                argv,
                event,
            } => {
                self.out.push_back(Output::Notify(Notification {
                    cause: NotifyCause::Checker(event),
                    scripts: vec![ScriptExec {
                        command,
                        argv,
                        kill_after: None,
                    }],
                }));
            }
        }
    }

    fn apply_ipvs(&mut self, change: IpvsChange) {
        let undo = undo_of(&self.ipvs, &change);
        if let Err(e) = self.ipvs.apply(&change) {
            self.log(LogSource::Healthcheckers, format!("IPVS: {e} ({change:?})"));
        } else if self.data_plane == DataPlane::Kernel {
            self.undo.push((Applied::Ipvs(change.clone()), undo));
        }
        self.out.push_back(Output::Ipvs(change));
    }

    /// The IPVS table (services, destinations, connections).
    pub fn ipvs(&self) -> &Ipvs {
        &self.ipvs
    }

    /// The IPVS table as `ipvsadm -L -n` prints it.
    pub fn ipvsadm_list(&self) -> String {
        crate::ipvs::list::list_numeric(self.ipvs.services())
    }

    fn log(&mut self, source: LogSource, text: String) {
        self.out.push_back(Output::Log { source, text });
    }
}

/// Link and address events, failures to apply, reload.
impl Director {
    /// An rtnetlink event: [`NodeEnv`] follows, VRRP is told what keepalived's netlink
    /// monitor tells it (a removed interface is a carrier down, a renamed one a down of the
    /// old name and an up of the new one). Events about the VIPs this director holds are its
    /// own doing and ignored.
    fn iface_event(&mut self, now: Instant, ev: IfaceEvent) {
        match ev {
            IfaceEvent::Added { iface, up } => {
                let name = iface.name.clone();
                match self.env.ifaces.iter_mut().find(|i| i.name == name) {
                    Some(i) => *i = iface,
                    None => self.env.ifaces.push(iface),
                }
                self.vrrp_input(now, Some(VrrpInput::Link { iface: name, up }));
            }
            IfaceEvent::Removed { name } => {
                self.env.ifaces.retain(|i| i.name != name);
                self.vrrp_input(
                    now,
                    Some(VrrpInput::Link {
                        iface: name,
                        up: false,
                    }),
                );
            }
            IfaceEvent::Renamed { from, to } => {
                if let Some(i) = self.env.ifaces.iter_mut().find(|i| i.name == from) {
                    i.name.clone_from(&to);
                }
                self.vrrp_input(
                    now,
                    Some(VrrpInput::Link {
                        iface: from,
                        up: false,
                    }),
                );
                self.vrrp_input(
                    now,
                    Some(VrrpInput::Link {
                        iface: to,
                        up: true,
                    }),
                );
            }
            IfaceEvent::AddressAdded { iface, addr } => {
                if self.held_vips.contains(&addr) {
                    return;
                }
                if let Some(i) = self.env.ifaces.iter_mut().find(|i| i.name == iface) {
                    if !i.addrs.contains(&addr) {
                        i.addrs.push(addr);
                    }
                }
                self.vrrp_input(now, Some(VrrpInput::AddressAdded { iface, addr }));
            }
            IfaceEvent::AddressRemoved { iface, addr } => {
                if self.held_vips.contains(&addr) {
                    return;
                }
                let mut replacement = None;
                if let Some(i) = self.env.ifaces.iter_mut().find(|i| i.name == iface) {
                    let family = |a: &IpAddr| a.is_ipv4() == addr.is_ipv4();
                    let primary = i.addrs.iter().find(|a| family(a)) == Some(&addr);
                    i.addrs.retain(|a| *a != addr);
                    // keepalived takes the last address it knows of the family as primary.
                    if primary {
                        if let Some(pos) = i.addrs.iter().rposition(family) {
                            let r = i.addrs.remove(pos);
                            i.addrs.insert(0, r);
                            replacement = Some(r);
                        }
                    }
                }
                self.vrrp_input(
                    now,
                    Some(VrrpInput::AddressRemoved {
                        iface,
                        addr,
                        replacement,
                    }),
                );
            }
        }
    }

    /// An output could not be applied: log it keepalived's way and take back what the
    /// director recorded for it (the IPVS mirror, the VIPs it forwards for, the sync daemon).
    fn failed(&mut self, what: Applied, error: &ApplyError) {
        let err = match error.errno {
            Some(n) => format!("{}({n})", error.message),
            None => error.message.clone(),
        };
        let recorded = self.undo.iter().rposition(|(a, _)| *a == what);
        match &what {
            Applied::Ipvs(change) => {
                let (cmd, num, rule) = ipvs_cmd(change);
                // ipvswrapper.c ipvs_talk.
                self.log(
                    LogSource::Healthcheckers,
                    format!("IPVS cmd {cmd}({num}) error: {err} ({rule})"),
                );
            }
            Applied::AddVip(vip) | Applied::DelVip(vip) => {
                let (add, ty) = match &what {
                    Applied::AddVip(_) => (true, "RTM_NEWADDR(20)"),
                    _ => (false, "RTM_DELADDR(21)"),
                };
                // keepalived_netlink.c netlink_parse_info (without the sequence number and
                // pid, which belong to the driver's socket).
                self.log(LogSource::Vrrp, format!("Netlink: error: {err}, type={ty}"));
                if recorded.is_some() {
                    if add {
                        self.held_vips.remove(&vip.addr);
                    } else {
                        self.held_vips.insert(vip.addr);
                    }
                    let vip = vip.clone();
                    self.hold_vip6(&vip, !add);
                }
            }
            Applied::SyncDaemon(d) => {
                let (cmd, num) = if d.start {
                    ("IP_VS_SO_SET_STARTDAEMON", 1163)
                } else {
                    ("IP_VS_SO_SET_STOPDAEMON", 1164)
                };
                self.log(
                    LogSource::Vrrp,
                    format!("IPVS cmd {cmd}({num}) error: {err}"),
                );
                if recorded.is_some() && d.start && self.kernel_sync == Some(d.role) {
                    self.kernel_sync = None;
                }
            }
        }
        if let Some(pos) = recorded {
            let (_, undo) = self.undo.remove(pos);
            for c in undo {
                // The mirror held the change, so its inverse applies; nothing to report.
                let _ = self.ipvs.apply(&c);
            }
        }
    }

    /// Start the kernel sync daemon in role `want` (or none), stopping the other first, as
    /// keepalived's `ipvs_syncd_master` / `ipvs_syncd_backup` do.
    fn kernel_sync_daemon(&mut self, want: Option<SyncDaemonRole>) {
        let Some(cfg) = &self.sync_cfg else {
            return;
        };
        if self.kernel_sync == want {
            return;
        }
        let (iface, syncid) = (cfg.iface.clone(), cfg.syncid);
        let mut cmd = |start: bool, role: SyncDaemonRole| {
            let d = SyncDaemon {
                start,
                iface: iface.clone(),
                syncid,
                role,
            };
            self.undo.push((Applied::SyncDaemon(d.clone()), Vec::new()));
            self.out.push_back(Output::SyncDaemon(d));
        };
        if let Some(role) = self.kernel_sync {
            cmd(false, role);
        }
        if let Some(role) = want {
            cmd(true, role);
        }
        self.kernel_sync = want;
    }

    /// `Admin::Reload`: VRRP as keepalived's `reload_vrrp_thread` ([`VrrpRouter::reload`]),
    /// the checkers as its `reload_check_thread` ([`HealthCheckers::reload`]). A configuration
    /// VRRP refuses is refused whole, with keepalived's `reload_check_config` line (the error
    /// in place of the file it would name), and the running one is kept.
    fn reload(&mut self, now: Instant, cfg: DirectorConfig) {
        let mut wires = wires_for(&cfg.vrrp);
        if let Err(e) = self.vrrp.reload(cfg.vrrp, now) {
            self.log(
                LogSource::Main,
                format!("New config failed validation, {e}"),
            );
            return;
        }
        self.log(LogSource::Vrrp, "Reloading".to_string());
        for (source, text) in cfg.config_log {
            self.log(source, text);
        }
        for w in &mut wires {
            if let Some(o) = self
                .wires
                .list
                .iter()
                .find(|o| o.iface == w.iface && o.expect.vrid == w.expect.vrid)
            {
                w.ip_id = o.ip_id;
            }
        }
        self.wires = Wires::new(wires);
        self.scripts = cfg.scripts;
        self.checks.reload(now, &cfg.checkers, &mut *self.rng);
        if cfg.sync_daemon != self.sync_cfg {
            if self.data_plane == DataPlane::Kernel {
                self.kernel_sync_daemon(None);
            }
            self.sync = None;
            self.sync_cfg = cfg.sync_daemon;
            let follow = self.sync_cfg.as_ref().and_then(|c| {
                let i = self.vrrp.instance(&c.instance)?;
                Some((i.name().to_string(), i.state()))
            });
            if let Some((name, state)) = follow {
                self.follow_sync_instance(&name, state);
            }
        }
    }
}

/// Receive expectations of each instance (the codec's view of the configuration).
fn wires_for(cfg: &RouterConfig) -> Vec<Wire> {
    cfg.instances
        .iter()
        .map(|i| Wire {
            iface: i.iface.clone(),
            expect: Expect {
                version: i.version,
                vrid: i.vrid,
                auth: i.auth.clone(),
                advert_int_cs: u16::try_from(i.advert_int.as_millis() / 10).unwrap_or(u16::MAX),
                addrs: i.vips.iter().map(|v| v.addr).collect(),
                check_addrs: true,
                unicast: !i.unicast_peers.is_empty(),
                unicast_checksum: UnicastChecksum::Rfc,
            },
            ip_id: 0,
        })
        .collect()
}

/// A notify script as keepalived executes it: the words of its command line, then the
/// arguments it appends. A command keepalived cannot split it ignores ("Unable to parse
/// script"), so does this.
fn script_exec(s: &NotifyScript, kill_after: Option<std::time::Duration>) -> Option<ScriptExec> {
    let script = Script::parse(&s.command).ok()?;
    let mut argv = script.argv;
    argv.extend(s.args.iter().cloned());
    Some(ScriptExec {
        command: s.command.clone(),
        argv,
        kill_after,
    })
}

/// What puts the table back as it was before `change` (computed before applying it).
fn undo_of(ipvs: &Ipvs, change: &IpvsChange) -> Vec<IpvsChange> {
    use crate::ipvs::service::Dest;
    use crate::ipvs::SockAddr;
    let spec = Dest::spec;
    match change {
        IpvsChange::AddService(s) => vec![IpvsChange::DelService(s.key)],
        IpvsChange::EditService(s) => ipvs
            .service(&s.key)
            .map(|o| vec![IpvsChange::EditService(o.spec().clone())])
            .unwrap_or_default(),
        IpvsChange::DelService(k) => ipvs
            .service(k)
            .map(|o| {
                std::iter::once(IpvsChange::AddService(o.spec().clone()))
                    .chain(o.dests().iter().map(|d| IpvsChange::AddDest(*k, spec(d))))
                    .collect()
            })
            .unwrap_or_default(),
        IpvsChange::AddDest(k, d) => vec![IpvsChange::DelDest(*k, SockAddr(d.addr, d.port))],
        IpvsChange::EditDest(k, d) => ipvs
            .service(k)
            .and_then(|o| o.dest(d.addr, d.port))
            .map(|o| vec![IpvsChange::EditDest(*k, spec(o))])
            .unwrap_or_default(),
        IpvsChange::DelDest(k, a) => ipvs
            .service(k)
            .and_then(|o| o.dest(a.0, a.1))
            .map(|o| vec![IpvsChange::AddDest(*k, spec(o))])
            .unwrap_or_default(),
    }
}

/// keepalived's `ipvs_cmd_str`, the kernel's `IP_VS_SO_SET_*` number and `format_srule` /
/// `format_drule` for an IPVS change.
fn ipvs_cmd(change: &IpvsChange) -> (&'static str, u32, String) {
    let srule = |k: &ServiceKey| match k {
        ServiceKey::Inet { proto, addr, port } => {
            let p = match proto {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
                Protocol::Sctp => "sctp",
            };
            format!("{addr}:{p}:{port}")
        }
        ServiceKey::Fwmark { mark, ipv6 } => {
            format!("Fwm {mark}{}", if *ipv6 { " inet6" } else { "" })
        }
    };
    let drule = |k: &ServiceKey, addr: &IpAddr, port: u16| format!("{} -> {addr}:{port}", srule(k));
    match change {
        IpvsChange::AddService(s) => ("IP_VS_SO_SET_ADD", 1154, srule(&s.key)),
        IpvsChange::EditService(s) => ("IP_VS_SO_SET_EDIT", 1155, srule(&s.key)),
        IpvsChange::DelService(k) => ("IP_VS_SO_SET_DEL", 1156, srule(k)),
        IpvsChange::AddDest(k, d) => ("IP_VS_SO_SET_ADDDEST", 1159, drule(k, &d.addr, d.port)),
        IpvsChange::DelDest(k, a) => ("IP_VS_SO_SET_DELDEST", 1160, drule(k, &a.0, a.1)),
        IpvsChange::EditDest(k, d) => ("IP_VS_SO_SET_EDITDEST", 1161, drule(k, &d.addr, d.port)),
    }
}
