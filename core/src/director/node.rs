//! The `Director` state machine: routes inputs to VRRP, the checkers and IPVS,
//! and turns their outputs into frames, address changes and log lines.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

use crate::check::healthcheckers::{CheckInput, CheckOutput, HealthCheckers, HealthCheckersConfig};
use crate::check::probe::{Probe, ProbeId, ProbeKind, ProbeResult};
use crate::ipvs::sync::{self, SyncConfig, SyncReceiver, SyncSender};
use crate::ipvs::table::{Ipvs, IpvsOptions, PacketInfo, Verdict};
use crate::ipvs::IpvsChange;
use crate::time::Instant;
use crate::vrrp::wire::{self, Expect, FrameParams, UnicastChecksum};
use crate::vrrp::{
    arp, RouterConfig, RouterError, StateChangeKind, VrrpInput, VrrpOutput, VrrpRouter, VrrpState,
};

use super::dataplane::{self, Handled, Neighbours};
use super::{Admin, IfaceName, Input, LogSource, Output};

/// Script probes get ids from here up, so they never collide with checker probes.
const SCRIPT_PROBE_BASE: u64 = 1 << 62;

/// One network interface of the director's host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    /// Name as keepalived.conf uses it (`eth0`).
    pub name: String,
    /// Hardware address.
    pub mac: [u8; 6],
    /// Configured addresses, primary first (VIPs excluded).
    pub addrs: Vec<IpAddr>,
}

/// The host the director runs on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeEnv {
    /// Its interfaces.
    pub ifaces: Vec<Iface>,
}

impl NodeEnv {
    /// The interface called `name`.
    pub fn iface(&self, name: &str) -> Option<&Iface> {
        self.ifaces.iter().find(|i| i.name == name)
    }

    /// The first address of `name` in the family of `like`.
    pub fn primary(&self, name: &str, ipv6: bool) -> Option<IpAddr> {
        self.iface(name)?
            .addrs
            .iter()
            .copied()
            .find(|a| a.is_ipv6() == ipv6)
    }
}

/// Everything a director runs, already mapped from keepalived.conf.
#[derive(Clone, Debug, Default)]
pub struct DirectorConfig {
    /// VRRP instances, sync groups, scripts.
    pub vrrp: RouterConfig,
    /// `vrrp_script` name → command line.
    pub scripts: BTreeMap<String, ScriptCommand>,
    /// Virtual servers and their checkers.
    pub checkers: HealthCheckersConfig,
    /// The IPVS connection sync daemon, when keepalived would start one.
    pub sync_daemon: Option<SyncDaemonConfig>,
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

/// Where a received frame went: IPVS alone, or VRRP / neighbours (whose timers may move).
#[derive(Copy, Clone, PartialEq, Eq)]
enum Plane {
    Data,
    Control,
}

/// One director node.
pub struct Director {
    env: NodeEnv,
    vrrp: VrrpRouter,
    /// Whether the first `handle_*` call started VRRP and the checkers.
    started: bool,
    checks: HealthCheckers,
    wires: Vec<Wire>,
    scripts: BTreeMap<String, ScriptCommand>,
    script_probes: BTreeMap<ProbeId, String>,
    next_script_probe: u64,
    neighbours: Neighbours,
    ipvs: Ipvs,
    held_vips: BTreeSet<IpAddr>,
    sync_cfg: Option<SyncDaemonConfig>,
    sync: Option<SyncRole>,
    rng: Box<dyn rand_core::RngCore + Send>,
    out: VecDeque<Output>,
    stopped: bool,
    /// Earliest VRRP or checker deadline, recomputed after any input that reaches them:
    /// client traffic never does, and asking them after every packet is the hot path.
    control_deadline: Option<Instant>,
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
        let wires = cfg
            .vrrp
            .instances
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
            .collect();
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
            script_probes: BTreeMap::new(),
            next_script_probe: SCRIPT_PROBE_BASE,
            neighbours: Neighbours::default(),
            ipvs: Ipvs::new(IpvsOptions::default(), rng.next_u64()),
            held_vips: BTreeSet::new(),
            sync_cfg: cfg.sync_daemon,
            sync: None,
            rng,
            out: VecDeque::new(),
            stopped: false,
            control_deadline: None,
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
        self.vrrp.start(now);
        let rules = self.checks.start(now, &mut *self.rng);
        for change in rules {
            self.apply_ipvs(change);
        }
        self.refresh_control_deadline();
    }

    /// The host this director runs on.
    pub fn env(&self) -> &NodeEnv {
        &self.env
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

    /// Which plane a frame went to.
    fn frame(&mut self, now: Instant, iface: IfaceName, frame: Vec<u8>) -> Plane {
        if let Ok(a) = arp::decode_arp(&frame) {
            self.neighbours
                .learn(&iface, IpAddr::V4(a.arp.sender_ip), a.arp.sender_mac);
            return Plane::Control;
        }
        // TCP/UDP is client traffic or sync; parsed once, never tried as VRRP.
        if let Some(pkt) = dataplane::packet_info(&frame) {
            self.traffic(now, iface, frame, pkt);
            return Plane::Data;
        }
        let mut ours = None;
        for w in self.wires.iter().filter(|w| *w.iface == *iface) {
            match wire::decode_frame(&frame, &w.expect) {
                Ok(rx) => {
                    ours = Some(Ok(rx));
                    break;
                }
                Err(wire::DecodeError::VridNotOurs { .. }) => {}
                Err(wire::DecodeError::NotVrrp(_)) | Err(wire::DecodeError::NotIp(_)) => {
                    return Plane::Control
                }
                Err(e) => {
                    ours = Some(Err((w.expect.vrid, e)));
                    break;
                }
            }
        }
        match ours {
            Some(Ok(rx)) => {
                self.neighbours.learn(&iface, rx.src_ip, rx.src_mac);
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
            Some(Err((vrid, e))) => {
                let name = self
                    .vrrp
                    .instances()
                    .iter()
                    .find(|i| *i.config().iface == *iface && i.config().vrid == vrid)
                    .map_or_else(String::new, |i| i.name().to_string());
                self.log(LogSource::Vrrp, format!("({name}) {e}"));
            }
            None => {}
        }
        Plane::Control
    }

    /// A client packet: through IPVS when it is for a VIP we hold.
    fn traffic(&mut self, now: Instant, iface: IfaceName, frame: Vec<u8>, pkt: PacketInfo) {
        if pkt.dst == IpAddr::V4(sync::SYNC_GROUP_V4) && pkt.dport == sync::SYNC_PORT {
            self.sync_datagram(now, &iface, &frame);
            return;
        }
        if !self.held_vips.contains(&pkt.dst) {
            return;
        }
        let verdict = self.ipvs.process(now, &pkt, &mut *self.rng);
        if let (Verdict::Forward(f), Some(SyncRole::Master(tx))) = (&verdict, &mut self.sync) {
            tx.on_packet(now, &mut self.ipvs, f.conn, f.in_pkts);
        }
        let env = &self.env;
        let our = |name: &str| {
            env.iface(name).map(|i| {
                let v4 = i.addrs.iter().find_map(|a| match a {
                    IpAddr::V4(v) => Some(*v),
                    IpAddr::V6(_) => None,
                });
                (i.mac, v4)
            })
        };
        match dataplane::forward(verdict, frame, iface, our, &self.neighbours) {
            Handled::Forward { iface, frame } | Handled::Resolve { iface, frame } => {
                self.out.push_back(Output::Transmit { iface, frame });
            }
            Handled::NotOurs | Handled::Dropped(_) => {}
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

    fn vrrp_output(&mut self, _now: Instant, o: VrrpOutput) {
        match o {
            VrrpOutput::SendAdvert {
                iface,
                src,
                dst,
                advert,
            } => {
                self.send_advert(&iface, src, dst, &advert);
            }
            VrrpOutput::AddVip(vip) => {
                self.held_vips.insert(vip.addr);
                self.out.push_back(Output::AddVip(vip));
            }
            VrrpOutput::DelVip(vip) => {
                self.held_vips.remove(&vip.addr);
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
            VrrpOutput::Notify(change) => {
                if change.kind == StateChangeKind::Instance {
                    self.follow_sync_instance(&change.name, change.state);
                }
                self.out.push_back(Output::Notify(change));
            }
            VrrpOutput::Log { text } => self.log(LogSource::Vrrp, text),
        }
    }

    fn send_advert(
        &mut self,
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
        let mut params = if dst.is_multicast() {
            FrameParams::multicast(mac, src_ip)
        } else {
            // Without a learnt neighbour the advert goes to the broadcast address,
            // which every peer on the segment still receives.
            let dst_mac = self.neighbours.lookup(dst).map_or([0xff; 6], |(_, m)| m);
            FrameParams::unicast(mac, src_ip, dst_mac, dst)
        };
        if let Some(w) = self
            .wires
            .iter_mut()
            .find(|w| w.iface == iface && w.expect.vrid == advert.vrid)
        {
            // keepalived counts IP ids per instance, skipping 0 on wrap.
            w.ip_id = w.ip_id.wrapping_add(1).max(1);
            params.ip_id = w.ip_id;
        }
        match wire::encode_frame(&params, advert) {
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
            CheckOutput::Notify { command, .. } => {
                self.log(LogSource::Healthcheckers, format!("Executing [{command}]"))
            }
        }
    }

    fn apply_ipvs(&mut self, change: IpvsChange) {
        if let Err(e) = self.ipvs.apply(&change) {
            self.log(LogSource::Healthcheckers, format!("IPVS: {e} ({change:?})"));
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
