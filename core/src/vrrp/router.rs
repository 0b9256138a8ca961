//! All VRRP instances, sync groups and `vrrp_script`s of one node, as one sans-IO machine.
//!
//! The transitions follow keepalived 2.2.7's vrrp.c / vrrp_scheduler.c / vrrp_track.c function
//! by function (their names are given on each method), so its quirks carry over: a `state MASTER`
//! instance still starts in BACKUP, sync groups only go MASTER when every member wants to, etc.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use crate::time::Instant;

use super::instance::{
    Instance, InstanceConfig, VirtualAddress, MCAST_V4, MCAST_V6, PRIO_OWNER, PRIO_STOP,
};
use super::state::{NotifyScript, NotifyScripts, StateChange, StateChangeKind, VrrpState};
use super::stats::{InstanceStats, RxError};
use super::sync_group::{SyncGroup, SyncGroupConfig};
use super::track::{Script, ScriptConfig};
use super::wire::{Advert, Version};

/// Everything VRRP-related in one node's keepalived.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouterConfig {
    /// `vrrp_instance` blocks, in file order.
    pub instances: Vec<InstanceConfig>,
    /// `vrrp_sync_group` blocks.
    pub sync_groups: Vec<SyncGroupConfig>,
    /// `vrrp_script` blocks.
    pub scripts: Vec<ScriptConfig>,
}

/// A configuration the router cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    /// Two instances share interface, VRID and address family.
    #[error("instances {0} and {1} use the same interface and virtual_router_id")]
    DuplicateVrid(String, String),
    /// A sync group names an instance that does not exist.
    #[error("virtual router {member} specified in sync group {group} doesn't exist")]
    UnknownMember {
        /// The group.
        group: String,
        /// The missing instance.
        member: String,
    },
    /// An instance is listed in two sync groups.
    #[error("virtual router {0} cannot exist in more than one sync group")]
    TwoGroups(String),
    /// A `track_script` names an unknown `vrrp_script`.
    #[error("instance {instance} tracks unknown vrrp_script {script}")]
    UnknownScript {
        /// The instance.
        instance: String,
        /// The missing script.
        script: String,
    },
}

/// Something that happened to the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VrrpInput {
    /// A decoded advert that passed the codec's checks (checksum, TTL, length).
    Advert {
        /// Receiving interface.
        iface: String,
        /// IP source address.
        src: IpAddr,
        /// IP destination address (multicast group or our unicast address).
        dst: IpAddr,
        /// The advert.
        advert: Advert,
    },
    /// Carrier on an interface changed.
    Link {
        /// Interface name.
        iface: String,
        /// New state.
        up: bool,
    },
    /// An address was removed from an interface (rtnetlink `RTM_DELADDR`).
    AddressRemoved {
        /// Interface name.
        iface: String,
        /// The address.
        addr: IpAddr,
        /// The address of the same family the interface still has and that becomes its
        /// primary (keepalived takes the last one it knows), if any.
        replacement: Option<IpAddr>,
    },
    /// An address was added to an interface (rtnetlink `RTM_NEWADDR`).
    AddressAdded {
        /// Interface name.
        iface: String,
        /// The address.
        addr: IpAddr,
    },
    /// A `vrrp_script` run asked for by [`VrrpOutput::RunScript`] exited.
    ScriptResult {
        /// Script name.
        script: String,
        /// Exit status (0 = success).
        status: i32,
    },
    /// SIGTERM: send priority 0, release the VIPs, stop.
    Stop,
}

/// A virtual address on an interface, as VRRP installs and removes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    /// Interface name.
    pub iface: String,
    /// Address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

/// What the node wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VrrpOutput {
    /// Send an advert (IP protocol 112, TTL 255).
    SendAdvert {
        /// Interface to send on.
        iface: String,
        /// Configured source address, if any (else the interface's).
        src: Option<IpAddr>,
        /// 224.0.0.18 / ff02::12, or one unicast peer.
        dst: IpAddr,
        /// The advert.
        advert: Advert,
    },
    /// Install a virtual address.
    AddVip(Vip),
    /// Remove a virtual address.
    DelVip(Vip),
    /// One gratuitous ARP (IPv4) or unsolicited neighbour advert (IPv6) per address.
    SendGarp {
        /// Interface.
        iface: String,
        /// Addresses to announce.
        addrs: Vec<IpAddr>,
    },
    /// Run a `vrrp_script` and report with [`VrrpInput::ScriptResult`].
    RunScript {
        /// Script name.
        script: String,
    },
    /// A transition, and the notify scripts keepalived runs for it, in its order (the
    /// state-specific one, then the generic `notify`); empty when none are configured or when
    /// keepalived skips them (an instance already in its sync group's state).
    Notify {
        /// What changed.
        change: StateChange,
        /// The scripts to run.
        scripts: Vec<NotifyScript>,
    },
    /// A `Keepalived_vrrp` log line, worded as keepalived 2.2 words it.
    Log {
        /// The text.
        text: String,
    },
}

/// A tracked object's effect on one instance: `(what, weight, multiplier)`.
#[derive(Clone, Debug)]
struct Tracked<T> {
    what: T,
    weight: i32,
    mult: i32,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Instance(usize),
    Garp(usize),
    LowerGarp(usize),
    Script(usize),
}

/// All VRRP state of one node, routed by (interface, VRID).
#[derive(Debug)]
pub struct VrrpRouter {
    pub(crate) inst: Vec<Instance>,
    pub(crate) groups: Vec<SyncGroup>,
    scripts: Vec<Script>,
    track_ifs: Vec<Vec<Tracked<String>>>,
    track_scripts: Vec<Vec<Tracked<usize>>>,
    links: BTreeMap<String, bool>,
    out: VecDeque<VrrpOutput>,
    started: bool,
    stopped: bool,
    timer_seq: u64,
}

/// The most timers one [`VrrpRouter::handle_timeout`] call runs (see there).
pub const MAX_TIMER_STEPS: usize = 100_000;

impl VrrpRouter {
    /// Build the node from `cfg`, refusing what keepalived refuses (duplicate VRIDs, unknown
    /// or shared sync-group members, unknown `track_script`s). It does nothing until
    /// [`VrrpRouter::start`].
    pub fn new(cfg: RouterConfig) -> Result<Self, RouterError> {
        let RouterConfig {
            instances,
            sync_groups,
            scripts,
        } = cfg;
        let mut inst: Vec<Instance> = instances.into_iter().map(Instance::new).collect();
        for (a, ia) in inst.iter().enumerate() {
            for ib in inst.iter().skip(a + 1) {
                let (x, y) = (&ia.cfg, &ib.cfg);
                if x.iface == y.iface
                    && x.vrid == y.vrid
                    && x.primary_ip.is_ipv4() == y.primary_ip.is_ipv4()
                {
                    return Err(RouterError::DuplicateVrid(x.name.clone(), y.name.clone()));
                }
            }
        }
        let scripts: Vec<Script> = scripts.into_iter().map(Script::new).collect();
        let mut groups = Vec::new();
        for gc in sync_groups {
            let mut members = Vec::new();
            for name in &gc.members {
                let Some(i) = inst.iter().position(|x| &x.cfg.name == name) else {
                    return Err(RouterError::UnknownMember {
                        group: gc.name.clone(),
                        member: name.clone(),
                    });
                };
                if inst[i].sync.is_some() {
                    return Err(RouterError::TwoGroups(name.clone()));
                }
                inst[i].sync = Some(groups.len());
                members.push(i);
            }
            // vrrp_sync_set_group: MASTER only if every member is an address owner wanting it.
            let all_owner = members.iter().all(|&m| {
                inst[m].wantstate == VrrpState::Master && inst[m].base_priority == PRIO_OWNER
            });
            let mut g = SyncGroup::new(gc.name, members, gc.notify);
            g.state = if all_owner {
                VrrpState::Master
            } else {
                VrrpState::Backup
            };
            groups.push(g);
        }
        let mut track_ifs = Vec::new();
        let mut track_scripts = Vec::new();
        for x in &inst {
            let mut ifs: Vec<Tracked<String>> = Vec::new();
            if !x.cfg.dont_track_primary {
                ifs.push(Tracked {
                    what: x.cfg.iface.clone(),
                    weight: 0,
                    mult: 1,
                });
            }
            for t in &x.cfg.track_interfaces {
                if !ifs.iter().any(|e| e.what == t.iface) {
                    ifs.push(Tracked {
                        what: t.iface.clone(),
                        weight: t.weight,
                        mult: if t.reverse { -1 } else { 1 },
                    });
                }
            }
            track_ifs.push(ifs);
            let mut scs = Vec::new();
            for t in &x.cfg.track_scripts {
                let Some(s) = scripts.iter().position(|s| s.cfg.name == t.script) else {
                    return Err(RouterError::UnknownScript {
                        instance: x.cfg.name.clone(),
                        script: t.script.clone(),
                    });
                };
                let weight = t.weight.unwrap_or(scripts[s].cfg.weight);
                scs.push(Tracked {
                    what: s,
                    weight,
                    mult: if t.reverse { -1 } else { 1 },
                });
            }
            track_scripts.push(scs);
        }
        Ok(VrrpRouter {
            inst,
            groups,
            scripts,
            track_ifs,
            track_scripts,
            links: BTreeMap::new(),
            out: VecDeque::new(),
            started: false,
            stopped: false,
            timer_seq: 0,
        })
    }

    /// Start at `now`, as keepalived's VRRP process does at start-up (vrrp_sync_set_group,
    /// initialise_tracking_priorities, vrrp_init_state, vrrp_init_sands). A second call does
    /// nothing.
    pub fn start(&mut self, now: Instant) {
        self.start_with(now, None);
    }

    /// `start`, or with `old` the second half of a reload (vrrp.c `vrrp_complete_init` with
    /// `reload`): instances that match an old one take its state unless tracking puts them in
    /// FAULT or a script has not run yet; a sync group whose members are all MASTER is MASTER.
    fn start_with(&mut self, now: Instant, old: Option<&Restored>) {
        if self.started {
            return;
        }
        self.started = true;
        self.initialise_tracking_priorities();
        self.start_in_backup_unless_all_owners();
        match old {
            Some(old) => {
                for (j, st) in &old.states {
                    let x = &mut self.inst[*j];
                    if x.state == VrrpState::Fault || x.num_script_init > 0 {
                        continue;
                    }
                    x.state = *st;
                    x.wantstate = *st;
                    x.reload_master = *st == VrrpState::Master;
                }
                for g in &mut self.groups {
                    if g.num_member_fault > 0 || g.num_member_init > 0 {
                        continue;
                    }
                    if g.members
                        .iter()
                        .all(|&m| self.inst[m].state == VrrpState::Master)
                    {
                        g.state = VrrpState::Master;
                    }
                }
            }
            None => {
                // vrrp_restore_interfaces_startup: drop VIPs a previous run may have left.
                for i in 0..self.inst.len() {
                    self.inst[i].vipset = true;
                    self.restore_interface(i, false);
                }
            }
        }
        let same_groups: Vec<bool> = self
            .groups
            .iter()
            .map(|g| old.is_some_and(|o| o.groups.get(&g.name) == Some(&g.state)))
            .collect();
        self.init_state(now, &same_groups);
        for i in 0..self.inst.len() {
            // vrrp_init_instance_sands: a master kept by a reload advertises at once.
            if std::mem::take(&mut self.inst[i].reload_master) {
                self.inst[i].sands = Some(now);
            } else {
                self.inst[i].init_sands(now);
            }
        }
        // vrrp_init_script: every tracked script runs at once, then every `interval`.
        for s in 0..self.scripts.len() {
            if self.track_scripts.iter().flatten().any(|t| t.what == s) {
                self.scripts[s].next_run = Some(now);
            }
        }
        self.run_scripts(now);
    }

    /// The instances, in configuration order.
    pub fn instances(&self) -> &[Instance] {
        &self.inst
    }

    /// An instance by name.
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.inst.iter().find(|i| i.cfg.name == name)
    }

    /// The sync groups, in configuration order.
    pub fn groups(&self) -> &[SyncGroup] {
        &self.groups
    }

    /// Feed an input.
    pub fn handle_input(&mut self, now: Instant, input: VrrpInput) {
        if !self.started || self.stopped {
            return;
        }
        match input {
            VrrpInput::Advert {
                iface,
                src,
                dst,
                advert,
            } => self.receive(now, &iface, src, dst, advert),
            VrrpInput::Link { iface, up } => self.link_change(now, &iface, up),
            VrrpInput::AddressRemoved {
                iface,
                addr,
                replacement,
            } => self.address_removed(now, &iface, addr, replacement),
            VrrpInput::AddressAdded { iface, addr } => self.address_added(now, &iface, addr),
            VrrpInput::ScriptResult { script, status } => self.script_result(now, &script, status),
            VrrpInput::Stop => self.stop(),
        }
    }

    /// Run every timer due at or before `now`, earliest first; a spurious call is a no-op.
    ///
    /// The work of one call is bounded by [`MAX_TIMER_STEPS`] timer runs, for a configuration
    /// whose timers re-arm at the instant they ran (a `vrrp_script` with a zero `interval`
    /// does; keepalived's parser turns that into 1 s, a hand-built [`ScriptConfig`] may not).
    /// When the bound is reached a log line says so and the timers still due stay due:
    /// [`VrrpRouter::poll_timeout`] returns a deadline at or before `now`, so the driver calls
    /// again at once and nothing is skipped.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.started {
            return;
        }
        for _ in 0..MAX_TIMER_STEPS {
            if self.stopped {
                return;
            }
            let Some((at, timer)) = self.next_timer() else {
                return;
            };
            if at > now {
                return;
            }
            match timer {
                Timer::Instance(i) => self.instance_timeout(i, now),
                Timer::Garp(i) => {
                    // vrrp_gratuitous_arp_thread: the second burst, garp_master_delay later.
                    self.inst[i].garp_delay_at = None;
                    let rep = self.inst[i].cfg.garp_master_repeat;
                    self.send_link_update(i, rep);
                }
                Timer::LowerGarp(i) => {
                    // vrrp_lower_prio_gratuitous_arp_thread.
                    self.inst[i].garp_lower_at.pop_front();
                    let rep = self.inst[i].cfg.garp_lower_prio_repeat;
                    self.send_link_update(i, rep);
                }
                Timer::Script(_) => self.run_scripts(now),
            }
        }
        if !self.stopped && self.next_timer().is_some_and(|(at, _)| at <= now) {
            self.log(format!(
                "VRRP: {MAX_TIMER_STEPS} timers ran at once and more are due; running them at the next wakeup"
            ));
        }
    }

    /// Next output to execute.
    pub fn poll_output(&mut self) -> Option<VrrpOutput> {
        self.out.pop_front()
    }

    /// Next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.started || self.stopped {
            return None;
        }
        self.next_timer().map(|(t, _)| t)
    }

    fn next_timer(&self) -> Option<(Instant, Timer)> {
        // Key: time, then instances before GARPs before scripts, then index / scheduling order.
        let inst = self.inst.iter().enumerate().flat_map(|(i, x)| {
            [
                x.sands.map(|t| ((t, 0, i as u64), Timer::Instance(i))),
                x.garp_delay_at.map(|(t, q)| ((t, 1, q), Timer::Garp(i))),
                x.garp_lower_at
                    .front()
                    .map(|&(t, q)| ((t, 1, q), Timer::LowerGarp(i))),
            ]
        });
        let scripts = self
            .scripts
            .iter()
            .enumerate()
            .map(|(s, x)| x.next_run.map(|t| ((t, 2, s as u64), Timer::Script(s))));
        inst.chain(scripts)
            .flatten()
            .min_by_key(|(k, _)| *k)
            .map(|((t, _, _), timer)| (t, timer))
    }

    fn seq(&mut self) -> u64 {
        self.timer_seq += 1;
        self.timer_seq
    }

    pub(crate) fn log(&mut self, text: String) {
        self.out.push_back(VrrpOutput::Log { text });
    }

    fn detail(&mut self, i: usize, text: String) {
        if self.inst[i].cfg.log_detail {
            self.log(text);
        }
    }

    /// vrrp_notify.c `send_instance_notifies`.
    fn notify(&mut self, i: usize) {
        let x = &self.inst[i];
        let change = StateChange {
            kind: StateChangeKind::Instance,
            name: x.cfg.name.clone(),
            state: x.state,
            priority: x.effective_priority,
        };
        // Already in the required state due to the sync group: no further notifies.
        let skip = x.notifies_sent && x.sync.is_some_and(|g| self.groups[g].state == x.state);
        let scripts = if skip {
            Vec::new()
        } else {
            notify_scripts(&x.cfg.notify, &change)
        };
        let x = &mut self.inst[i];
        x.notifies_sent = true;
        x.stats.transitions += 1;
        self.out.push_back(VrrpOutput::Notify { change, scripts });
    }

    /// vrrp_notify.c `send_group_notifies`.
    pub(crate) fn group_notify(&mut self, g: usize) {
        let grp = &self.groups[g];
        let change = StateChange {
            kind: StateChangeKind::Group,
            name: grp.name.clone(),
            state: grp.state,
            priority: 0,
        };
        let scripts = notify_scripts(&grp.notify, &change);
        self.out.push_back(VrrpOutput::Notify { change, scripts });
    }

    /// Reload with `cfg` at `now`, as keepalived's `reload_vrrp_thread` does (vrrp.c
    /// `clear_diff_vrrp`, `vrrp_complete_init` and `vrrp_init_state` with `reload`). A
    /// configuration [`VrrpRouter::new`] refuses is refused and nothing changes.
    ///
    /// Instances are matched as `vrrp_exist` matches them (VRID, family, interface, unicast).
    /// A removed instance that was MASTER sends priority 0 and drops its VIPs, and unless it
    /// was in FAULT it is notified as FAULT (keepalived's default for a deleted instance). A
    /// kept instance keeps its state (no election), its VIPs (the removed ones are dropped,
    /// the added ones installed and announced) and its counters; as in keepalived its timer
    /// restarts: a MASTER advertises at once and then every `advert_int`, a BACKUP waits a
    /// full Master_Down_Interval from `now`. New instances start as at start-up. `vrrp_script`s
    /// of the same name keep their results and all run at once. Interfaces known to be down
    /// are replayed into the new instances (one "Netlink reports ... down" line each).
    pub fn reload(&mut self, cfg: RouterConfig, now: Instant) -> Result<(), RouterError> {
        let mut new = VrrpRouter::new(cfg)?;
        if !self.started || self.stopped {
            new.stopped = self.stopped;
            *self = new;
            return Ok(());
        }
        let matches: Vec<Option<usize>> = self
            .inst
            .iter()
            .map(|o| new.inst.iter().position(|n| same_router(&o.cfg, &n.cfg)))
            .collect();
        for (i, m) in matches.iter().enumerate() {
            if m.is_some() {
                continue;
            }
            if self.inst[i].state == VrrpState::Master {
                self.restore_interface(i, true);
            }
            if self.inst[i].state != VrrpState::Fault {
                // DELETED is notified as FAULT unless notify_deleted (not modelled); the sync
                // group skip never applies to DELETED.
                self.inst[i].state = VrrpState::Fault;
                self.inst[i].notifies_sent = false;
                self.notify(i);
            }
        }
        let mut restored = Restored::default();
        let mut announce = Vec::new();
        for (i, m) in matches.iter().enumerate() {
            let Some(j) = *m else { continue };
            let (old, n) = (&self.inst[i], &mut new.inst[j]);
            let on = |v: &VirtualAddress, c: &InstanceConfig, list: &[VirtualAddress]| {
                list.iter()
                    .any(|w| w.addr == v.addr && vip_iface(w, c) == vip_iface(v, c))
            };
            let mut changes = Vec::new();
            if old.vipset {
                // restore_vrrp_state re-adds every VIP through vrrp_handle_ipaddress (the
                // kernel already has the kept ones: only the new ones are output).
                if old.cfg.log_detail {
                    changes.push(VrrpOutput::Log {
                        text: format!("({}) setting VIPs.", n.cfg.name),
                    });
                }
                // clear_diff_vrrp_vip, then restore_vrrp_state's re-add.
                for v in old.cfg.vips.iter().filter(|v| !on(v, &n.cfg, &n.cfg.vips)) {
                    changes.push(VrrpOutput::DelVip(Vip {
                        iface: vip_iface(v, &old.cfg),
                        addr: v.addr,
                        prefix: v.prefix,
                    }));
                }
                let added: Vec<VrrpOutput> = n
                    .cfg
                    .vips
                    .iter()
                    .filter(|v| !on(v, &old.cfg, &old.cfg.vips))
                    .map(|v| {
                        VrrpOutput::AddVip(Vip {
                            iface: vip_iface(v, &n.cfg),
                            addr: v.addr,
                            prefix: v.prefix,
                        })
                    })
                    .collect();
                if !added.is_empty() {
                    announce.push(j);
                }
                changes.extend(added);
            }
            n.vipset = old.vipset;
            n.stats = old.stats.clone();
            n.stats.name = n.cfg.name.clone();
            n.notifies_sent = old.notifies_sent;
            if old.state != VrrpState::Fault {
                restored.states.push((j, old.state));
            }
            self.out.extend(changes);
        }
        for g in &self.groups {
            restored.groups.insert(g.name.clone(), g.state);
        }
        for s in &mut new.scripts {
            if let Some(o) = self.scripts.iter().find(|o| o.cfg.name == s.cfg.name) {
                s.result = o.result;
                s.init_state = o.init_state;
                s.last_status = o.last_status;
            }
        }
        new.out = std::mem::take(&mut self.out);
        new.timer_seq = self.timer_seq;
        for j in announce {
            let rep = new.inst[j].cfg.garp_master_repeat;
            new.send_link_update(j, rep);
            let refresh = new.inst[j].cfg.garp_master_refresh;
            if !refresh.is_zero() {
                new.inst[j].garp_refresh_at = Some(now + refresh);
            }
        }
        new.start_with(now, Some(&restored));
        for (iface, up) in &self.links {
            if !*up {
                new.link_change(now, iface, false);
            }
        }
        new.log("Reload complete".to_string());
        *self = new;
        Ok(())
    }

    /// keepalived_netlink.c `netlink_if_address_filter` for `RTM_DELADDR`: an instance sending
    /// from the removed address (not a configured `mcast_src_ip` / `unicast_src_ip`) takes the
    /// interface's next address, or without one goes to FAULT until an address comes back.
    fn address_removed(
        &mut self,
        now: Instant,
        iface: &str,
        addr: IpAddr,
        replacement: Option<IpAddr>,
    ) {
        let hit: Vec<usize> = (0..self.inst.len())
            .filter(|&i| {
                let c = &self.inst[i].cfg;
                c.iface == iface
                    && c.src_ip.is_none()
                    && c.primary_ip == addr
                    && !self.inst[i].saddr_lost
            })
            .collect();
        let Some(&first) = hit.first() else { return };
        if let Some(r) = replacement.filter(|r| r.is_ipv4() == addr.is_ipv4()) {
            for i in hit {
                self.inst[i].cfg.primary_ip = r;
            }
            return;
        }
        self.detail(
            first,
            format!("Deassigned address {addr} from interface {iface}"),
        );
        for i in hit {
            self.down_instance(i, now);
            self.inst[i].saddr_lost = true;
        }
    }

    /// keepalived_netlink.c `netlink_if_address_filter` for `RTM_NEWADDR`: an instance that
    /// lost its interface's address takes the new one and tries to come up.
    fn address_added(&mut self, now: Instant, iface: &str, addr: IpAddr) {
        let hit: Vec<usize> = (0..self.inst.len())
            .filter(|&i| {
                let x = &self.inst[i];
                x.cfg.iface == iface
                    && x.saddr_lost
                    && x.num_fault > 0
                    && x.cfg.primary_ip.is_ipv4() == addr.is_ipv4()
            })
            .collect();
        let Some(&first) = hit.first() else { return };
        self.detail(
            first,
            format!("Assigned address {addr} for interface {iface}"),
        );
        for i in hit {
            self.inst[i].cfg.primary_ip = addr;
            self.inst[i].saddr_lost = false;
            self.try_up_instance(i, now, false);
        }
    }

    /// keepalived's counters, one entry per instance in configuration order.
    pub fn stats(&self) -> Vec<InstanceStats> {
        self.inst.iter().map(|x| x.stats.clone()).collect()
    }

    /// An advert for the instance on (`iface`, `vrid`) that the codec refused with `e`: bump
    /// its counter, as keepalived's `vrrp_check_packet` does. Adverts reaching an instance in
    /// FAULT or INIT are ignored before any check (`vrrp_dispatcher_read`), so they count
    /// nothing.
    pub fn count_rx_error(&mut self, iface: &str, vrid: u8, e: RxError) {
        let Some(x) = self
            .inst
            .iter_mut()
            .find(|x| x.cfg.iface == iface && x.cfg.vrid == vrid)
        else {
            return;
        };
        if matches!(x.state, VrrpState::Backup | VrrpState::Master) {
            if e.counts_as_received() {
                x.stats.advert_rcvd += 1;
            }
            x.stats.count(e);
        }
    }

    /// vrrp.c `vrrp_send_adv`: to the multicast group, or to each unicast peer.
    fn send_adv(&mut self, i: usize, prio: u8) {
        self.inst[i].stats.advert_sent += 1;
        let x = &self.inst[i];
        let advert = x.advert(prio);
        let src = x.cfg.src_ip;
        let dsts: Vec<IpAddr> = if x.cfg.unicast_peers.is_empty() {
            vec![if x.cfg.saddr().is_ipv4() {
                MCAST_V4
            } else {
                MCAST_V6
            }]
        } else {
            x.cfg.unicast_peers.clone()
        };
        for dst in dsts {
            let iface = self.inst[i].cfg.iface.clone();
            self.out.push_back(VrrpOutput::SendAdvert {
                iface,
                src,
                dst,
                advert: advert.clone(),
            });
        }
    }

    /// One AddVip (`add`) or DelVip output per VIP of instance `i`.
    fn vip_changes(&self, i: usize, add: bool) -> Vec<VrrpOutput> {
        let cfg = &self.inst[i].cfg;
        cfg.vips
            .iter()
            .map(|v| {
                let vip = Vip {
                    iface: vip_iface(v, cfg),
                    addr: v.addr,
                    prefix: v.prefix,
                };
                if add {
                    VrrpOutput::AddVip(vip)
                } else {
                    VrrpOutput::DelVip(vip)
                }
            })
            .collect()
    }

    /// vrrp.c `vrrp_send_link_update`: `rep` rounds of one GARP / unsolicited NA per VIP,
    /// logged as vrrp_send_update (first round) and send_gratuitous_arp (every packet) log them.
    fn send_link_update(&mut self, i: usize, rep: u32) {
        if !self.inst[i].vipset {
            return;
        }
        let x = &self.inst[i];
        let name = x.cfg.name.clone();
        let vips: Vec<(String, IpAddr)> = x
            .cfg
            .vips
            .iter()
            .map(|v| (vip_iface(v, &x.cfg), v.addr))
            .collect();
        for round in 0..rep {
            for (dev, addr) in &vips {
                let (queued, sent) = if addr.is_ipv4() {
                    ("gratuitous ARPs", "gratuitous ARP")
                } else {
                    (
                        "Unsolicited Neighbour Adverts",
                        "unsolicited Neighbour Advert",
                    )
                };
                if round == 0 {
                    self.detail(
                        i,
                        format!("({name}) Sending/queueing {queued} on {dev} for {addr}"),
                    );
                }
                self.detail(i, format!("Sending {sent} on {dev} for {addr}"));
                self.out.push_back(VrrpOutput::SendGarp {
                    iface: dev.clone(),
                    addrs: vec![*addr],
                });
            }
        }
    }

    /// vrrp.c `vrrp_state_become_master`.
    fn become_master(&mut self, i: usize, now: Instant) {
        self.inst[i].stats.become_master += 1;
        let x = &self.inst[i];
        // keepalived only resets the v3 interval here in detail-log mode (sic).
        if x.cfg.version == Version::V3 && x.cfg.log_detail && x.master_adver_int != x.adver_int {
            let line = format!(
                "({}) changing advert interval from {}ms to locally configured {}ms",
                x.cfg.name,
                x.master_adver_int / 1000,
                x.adver_int / 1000
            );
            self.log(line);
            self.inst[i].master_adver_int = self.inst[i].adver_int;
        }
        let name = self.inst[i].cfg.name.clone();
        if !self.inst[i].cfg.vips.is_empty() {
            self.detail(i, format!("({name}) setting VIPs."));
        }
        let adds = self.vip_changes(i, true);
        self.out.extend(adds);
        self.inst[i].vipset = true;
        let rep = self.inst[i].cfg.garp_master_repeat;
        self.send_link_update(i, rep);
        let refresh = self.inst[i].cfg.garp_master_refresh;
        if !refresh.is_zero() {
            self.inst[i].garp_refresh_at = Some(now + refresh);
        }
        self.notify(i);
    }

    /// vrrp.c `vrrp_state_master_tx`: advert first (so the old master drops the VIPs before
    /// our GARPs), then on the first one the MASTER transition itself.
    fn master_tx(&mut self, i: usize, now: Instant) {
        let prio = self.inst[i].effective_priority;
        self.send_adv(i, prio);
        if !self.inst[i].vipset {
            let name = self.inst[i].cfg.name.clone();
            self.log(format!("({name}) Entering MASTER STATE"));
            self.become_master(i, now);
            let delay = self.inst[i].cfg.garp_master_delay;
            if !delay.is_zero() {
                let q = self.seq();
                self.inst[i].garp_delay_at = Some((now + delay, q));
            }
        } else if let Some(at) = self.inst[i].garp_refresh_at {
            if now > at {
                let rep = self.inst[i].cfg.garp_master_refresh_repeat;
                self.send_link_update(i, rep);
                self.inst[i].garp_refresh_at = Some(now + self.inst[i].cfg.garp_master_refresh);
            }
        }
    }

    /// vrrp.c `vrrp_state_goto_master`.
    pub(crate) fn goto_master(&mut self, i: usize, now: Instant) {
        if self.inst[i].sync.is_some() && !self.sync_can_goto_master(i, now) {
            self.inst[i].wantstate = VrrpState::Master;
            return;
        }
        self.inst[i].state = VrrpState::Master;
        self.inst[i].init_sands(now);
        self.master_tx(i, now);
    }

    /// vrrp.c `vrrp_restore_interface`: optionally priority 0, then drop the VIPs.
    fn restore_interface(&mut self, i: usize, adv_f: bool) {
        if adv_f {
            self.send_adv(i, PRIO_STOP);
            self.inst[i].stats.pri_zero_sent += 1;
            let name = self.inst[i].cfg.name.clone();
            self.detail(i, format!("({name}) sent 0 priority"));
        }
        if self.inst[i].vipset {
            let name = self.inst[i].cfg.name.clone();
            if !self.inst[i].cfg.vips.is_empty() {
                self.detail(i, format!("({name}) removing VIPs."));
            }
            let dels = self.vip_changes(i, false);
            self.out.extend(dels);
            self.inst[i].vipset = false;
            // keepalived leaves its delayed-GARP thread queued but it finds no VIPs; dropping
            // it keeps poll_timeout honest.
            self.inst[i].garp_delay_at = None;
            self.inst[i].garp_lower_at.clear();
        }
    }

    /// vrrp.c `vrrp_state_leave_master`.
    pub(crate) fn leave_master(&mut self, i: usize, now: Instant, adv_f: bool) {
        let name = self.inst[i].cfg.name.clone();
        match self.inst[i].wantstate {
            VrrpState::Backup => {
                self.log(format!("({name}) Entering BACKUP STATE"));
                self.inst[i].preempt_time = None;
            }
            VrrpState::Fault => {
                self.log(format!("({name}) Entering FAULT STATE"));
                self.send_adv(i, PRIO_STOP);
            }
            other => {
                let n = other.keepalived_number();
                self.log(format!(
                    "({name}) vrrp_state_leave_master called with invalid wantstate {n}"
                ));
                return;
            }
        }
        self.restore_interface(i, adv_f);
        self.inst[i].state = self.inst[i].wantstate;
        self.notify(i);
        let x = &mut self.inst[i];
        x.ms_down_timer = x.ms_down();
        x.init_sands(now);
        x.stats.release_master += 1;
    }

    /// vrrp.c `vrrp_state_leave_fault`.
    pub(crate) fn leave_fault(&mut self, i: usize, now: Instant) {
        if self.inst[i].wantstate == VrrpState::Master {
            self.goto_master(i, now);
        } else {
            let (state, want) = (self.inst[i].state, self.inst[i].wantstate);
            if state != want {
                let word = if want == VrrpState::Backup {
                    "BACKUP"
                } else {
                    "FAULT"
                };
                let name = self.inst[i].cfg.name.clone();
                self.log(format!("({name}) Entering {word} STATE"));
            }
            if want == VrrpState::Fault && state == VrrpState::Master {
                self.send_adv(i, PRIO_STOP);
                self.restore_interface(i, false);
            }
            self.inst[i].state = want;
            self.notify(i);
            if want == VrrpState::Backup {
                self.inst[i].preempt_time = None;
            }
        }
        let x = &mut self.inst[i];
        x.master_adver_int = x.adver_int;
        x.ms_down_timer = x.ms_down();
        x.init_sands(now);
    }

    /// vrrp_scheduler.c `vrrp_dispatcher_read_timeout` for one instance.
    fn instance_timeout(&mut self, i: usize, now: Instant) {
        let prev = self.inst[i].state;
        match prev {
            VrrpState::Backup => {
                let name = self.inst[i].cfg.name.clone();
                self.detail(i, format!("({name}) Receive advertisement timeout"));
                self.inst[i].wantstate = VrrpState::Master;
                self.goto_master(i, now);
            }
            VrrpState::Master => self.master_tx(i, now),
            _ => {}
        }
        self.tsm_handle(prev, i, now);
        self.inst[i].init_sands(now);
    }

    /// vrrp_scheduler.c `vrrp_dispatcher_read`: route by interface, VRID and family.
    fn receive(&mut self, now: Instant, iface: &str, src: IpAddr, dst: IpAddr, advert: Advert) {
        let Some(i) = self.inst.iter().position(|x| {
            x.cfg.iface == iface
                && x.cfg.vrid == advert.vrid
                && x.cfg.saddr().is_ipv4() == src.is_ipv4()
        }) else {
            return;
        };
        let prev = self.inst[i].state;
        match prev {
            VrrpState::Backup => self.backup_rx(i, now, src, dst, &advert),
            VrrpState::Master => {
                if self.master_rx(i, now, src, dst, &advert) {
                    self.leave_master(i, now, false);
                }
            }
            // vrrp_dispatcher_read ignores adverts in FAULT / INIT without a word.
            _ => return,
        }
        self.tsm_handle(prev, i, now);
        let x = &self.inst[i];
        if x.state != VrrpState::Master || !x.cfg.lower_prio_no_advert {
            self.inst[i].init_sands(now);
        }
    }

    /// `check_advert`, counting the result as vrrp.c `vrrp_check_packet` does.
    fn check_counted(
        &mut self,
        i: usize,
        advert: &Advert,
        dst: IpAddr,
    ) -> Result<(), super::instance::Dropped> {
        let r = self.inst[i].check_advert(advert, dst);
        let stats = &mut self.inst[i].stats;
        match &r {
            Ok(()) => {
                stats.advert_rcvd += 1;
                if advert.priority == PRIO_STOP {
                    stats.pri_zero_rcvd += 1;
                }
            }
            Err(d) => {
                if d.reason.counts_as_received() {
                    stats.advert_rcvd += 1;
                }
                stats.count(d.reason);
            }
        }
        r
    }

    /// vrrp.c `vrrp_state_backup` (RFC 3768 6.4.2 / RFC 5798 6.4.2).
    fn backup_rx(&mut self, i: usize, now: Instant, src: IpAddr, dst: IpAddr, advert: &Advert) {
        let mut ignore = false;
        let name = self.inst[i].cfg.name.clone();
        if let Err(d) = self.check_counted(i, advert, dst) {
            self.log(d.log);
            ignore = true;
        } else if advert.priority == PRIO_STOP {
            // RFC 3768 6.4.2: on priority 0, Master_Down_Timer = Skew_Time.
            self.detail(
                i,
                format!("({name}) Backup received priority 0 advertisement"),
            );
            let x = &mut self.inst[i];
            x.ms_down_timer = x.skew();
        } else {
            let x = &self.inst[i];
            let delaying = x.preempt_delay > 0 && x.preempt_time.is_none_or(|t| t > now);
            if x.nopreempt || advert.priority >= x.effective_priority || delaying {
                // RFC 5798 6.4.2: a v3 backup adopts the master's advert interval.
                if x.cfg.version == Version::V3 {
                    let theirs =
                        u64::from(advert.advert_int_cs & 0x0fff) * super::instance::TIMER_CENTI_HZ;
                    if theirs != x.master_adver_int {
                        let line = format!(
                            "({name}) advertisement interval updated from {}ms to {}ms by master",
                            x.master_adver_int / 1000,
                            theirs / 1000
                        );
                        self.detail(i, line);
                        self.inst[i].master_adver_int = theirs;
                    }
                }
                let x = &mut self.inst[i];
                x.ms_down_timer = x.ms_down();
                x.master_saddr = Some(src);
                x.master_priority = advert.priority;
                if x.preempt_delay > 0 {
                    if advert.priority >= x.effective_priority {
                        if x.preempt_time.take().is_some() {
                            self.detail(i, format!("({name}) stop preempt delay"));
                        }
                    } else if x.preempt_time.is_none() {
                        x.preempt_time = Some(now + Duration::from_micros(x.preempt_delay));
                        let d = x.preempt_delay;
                        self.detail(
                            i,
                            format!(
                                "({name}) start preempt delay ({}.{:06})",
                                d / 1_000_000,
                                d % 1_000_000
                            ),
                        );
                    }
                }
                self.inst[i].wantstate = VrrpState::Backup;
            } else {
                // keepalived: "!nopreempt and lower priority advert and any preempt delay timer
                // has expired" - let the down timer run out and take over.
                self.log(format!(
                    "({name}) received lower priority ({}) advert from {src} - discarding",
                    advert.priority
                ));
                ignore = true;
                self.inst[i].master_saddr = Some(src);
            }
        }
        if ignore {
            let x = &mut self.inst[i];
            let left = x
                .sands
                .map_or(0, |s| s.saturating_duration_since(now).as_micros());
            x.ms_down_timer = u64::try_from(left).unwrap_or(u64::MAX);
        }
    }

    /// vrrp.c `vrrp_state_master_rx`; true means "leave MASTER" (RFC 3768 6.4.3).
    fn master_rx(
        &mut self,
        i: usize,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        advert: &Advert,
    ) -> bool {
        if let Err(d) = self.check_counted(i, advert, dst) {
            self.log(d.log);
            return false;
        }
        let name = self.inst[i].cfg.name.clone();
        let ours = self.inst[i].effective_priority;
        let theirs = advert.priority;
        let addr_cmp = src.cmp(&self.inst[i].cfg.saddr());
        let higher = theirs > ours || (theirs == ours && addr_cmp.is_gt());
        if theirs == PRIO_STOP || (self.inst[i].cfg.higher_prio_send_advert && higher) {
            self.send_adv(i, ours);
            if theirs == PRIO_STOP {
                self.detail(i, format!("({name}) Master received priority 0 message"));
                return false;
            }
        }
        if theirs == ours {
            if addr_cmp.is_eq() {
                self.log(format!(
                    "({name}) WARNING - equal priority advert received from remote host with our IP address."
                ));
            } else if ours == PRIO_OWNER {
                self.log(format!("({name}) CONFIGURATION ERROR: local instance and a remote instance are both configured as address owner, please fix - reducing local priority"));
                self.inst[i].effective_priority = PRIO_OWNER - 1;
                self.inst[i].base_priority = PRIO_OWNER - 1;
            }
        }
        let ours = self.inst[i].effective_priority;
        if theirs < ours || (theirs == ours && addr_cmp.is_lt()) {
            // keepalived: a lower priority master means the other side lost our adverts;
            // answer at once so it sees us and steps down.
            let force = !self.inst[i].cfg.lower_prio_no_advert;
            let tail = if force { ", forcing new election" } else { "" };
            self.log(format!("({name}) Received advert from {src} with lower priority {theirs}, ours {ours}{tail}"));
            if force {
                self.send_adv(i, ours);
            }
            // Refresh the neighbours' ARP caches for us and for every synced member, since the
            // lower priority router may have claimed the VIPs (garp_lower_prio_repeat).
            let mut refresh = vec![i];
            refresh.extend(self.others(i));
            for m in refresh {
                let rep = self.inst[m].cfg.garp_lower_prio_repeat;
                if rep == 0 {
                    continue;
                }
                self.send_link_update(m, rep);
                let delay = self.inst[m].cfg.garp_lower_prio_delay;
                if !delay.is_zero() {
                    let q = self.seq();
                    // The delay is the same for every advert, so the queue stays in order.
                    self.inst[m].garp_lower_at.push_back((now + delay, q));
                }
            }
            return false;
        }
        if theirs > ours || (theirs == ours && addr_cmp.is_gt()) {
            // RFC 3768 6.4.3: a higher priority (or equal and higher address) master wins.
            if theirs > ours {
                self.log(format!("({name}) Master received advert from {src} with higher priority {theirs}, ours {ours}"));
            } else {
                self.log(format!(
                    "({name}) Master received advert from {src} with same priority {theirs} but higher IP address than ours"
                ));
            }
            let x = &mut self.inst[i];
            if x.cfg.version == Version::V3 {
                x.master_adver_int =
                    u64::from(advert.advert_int_cs & 0x0fff) * super::instance::TIMER_CENTI_HZ;
            }
            x.ms_down_timer = x.ms_down();
            x.master_priority = theirs;
            x.master_saddr = Some(src);
            x.wantstate = VrrpState::Backup;
            x.state = VrrpState::Backup;
            return true;
        }
        false
    }

    /// vrrp_track.c `vrrp_set_effective_priority`: clamp to 1..=254 and shift a running
    /// down timer by the change in Master_Down_Interval.
    fn set_effective_priority(&mut self, i: usize) {
        let x = &self.inst[i];
        if x.base_priority == PRIO_OWNER {
            return;
        }
        let new = x.total_priority.clamp(1, i32::from(PRIO_OWNER) - 1);
        let new = u8::try_from(new).unwrap_or(1);
        if new == x.effective_priority {
            return;
        }
        let line = format!(
            "({}) Changing effective priority from {} to {}",
            x.cfg.name, x.effective_priority, new
        );
        self.log(line);
        let x = &mut self.inst[i];
        x.effective_priority = new;
        let old = x.ms_down_timer;
        x.ms_down_timer = x.ms_down();
        if x.state == VrrpState::Backup {
            if let Some(s) = x.sands {
                x.sands = Some(if old < x.ms_down_timer {
                    s + Duration::from_micros(x.ms_down_timer - old)
                } else {
                    s - Duration::from_micros(old - x.ms_down_timer)
                });
            }
        }
    }

    /// vrrp_track.c `initialise_tracking_priorities` (all links are taken as up at start).
    fn initialise_tracking_priorities(&mut self) {
        for i in 0..self.inst.len() {
            for t in self.track_ifs[i].clone() {
                if t.weight > 0 {
                    self.inst[i].total_priority += t.weight * t.mult;
                } else if t.weight == 0 && t.mult == -1 {
                    let name = self.inst[i].cfg.name.clone();
                    self.log(format!(
                        "({name}): entering FAULT state (interface {} down)",
                        t.what
                    ));
                    self.inst[i].state = VrrpState::Fault;
                    self.inst[i].num_fault += 1;
                }
            }
            let owner = self.inst[i].base_priority == PRIO_OWNER;
            for t in self.track_scripts[i].clone() {
                let sc = &self.scripts[t.what];
                let (init, ok) = (sc.init_state == super::track::InitState::Init, sc.is_ok());
                let sname = sc.cfg.name.clone();
                if t.weight == 0 {
                    if init {
                        self.inst[i].num_script_init += 1;
                    } else if !ok {
                        self.inst[i].num_fault += 1;
                        let name = self.inst[i].cfg.name.clone();
                        self.log(format!(
                            "({name}): entering FAULT state due to script {sname}"
                        ));
                        self.inst[i].state = VrrpState::Fault;
                    }
                } else if !owner && !init && ((ok && t.weight > 0) || (!ok && t.weight < 0)) {
                    self.inst[i].total_priority += t.weight;
                }
            }
            self.set_effective_priority(i);
            if let Some(g) = self.inst[i].sync {
                if self.inst[i].state == VrrpState::Fault {
                    if self.groups[g].state != VrrpState::Fault {
                        self.groups[g].state = VrrpState::Fault;
                        let line = format!(
                            "VRRP_Group({}): Syncing {} to FAULT state",
                            self.groups[g].name, self.inst[i].cfg.name
                        );
                        self.log(line);
                    }
                    self.groups[g].num_member_fault += 1;
                }
                if self.inst[i].num_script_init > 0 {
                    self.groups[g].num_member_init += 1;
                    if self.groups[g].state != VrrpState::Fault {
                        self.groups[g].state = VrrpState::Init;
                    }
                }
            }
        }
    }

    /// vrrp.c `vrrp_complete_init`: when a sync group mixes members that want MASTER with
    /// members that are not address owners, every member starts out wanting BACKUP. So the
    /// seed's `state MASTER` pair waits a full Master_Down_Interval (checked against
    /// keepalived 2.2.7 in network namespaces).
    fn start_in_backup_unless_all_owners(&mut self) {
        for g in 0..self.groups.len() {
            let members = self.groups[g].members.clone();
            let have_backup = members.iter().any(|&m| {
                self.inst[m].wantstate == VrrpState::Backup
                    || self.inst[m].base_priority != PRIO_OWNER
            });
            let have_master = members
                .iter()
                .any(|&m| self.inst[m].wantstate == VrrpState::Master);
            if have_backup && have_master {
                for m in members {
                    if self.inst[m].wantstate == VrrpState::Master {
                        self.inst[m].wantstate = VrrpState::Backup;
                    }
                }
            }
        }
    }

    /// vrrp_scheduler.c `vrrp_init_state` (RFC 3768 6.4.1).
    fn init_state(&mut self, _now: Instant, same_at_reload: &[bool]) {
        for g in 0..self.groups.len() {
            if matches!(self.groups[g].state, VrrpState::Fault | VrrpState::Backup)
                && !same_at_reload.get(g).copied().unwrap_or(false)
            {
                self.group_notify(g);
            }
        }
        for i in 0..self.inst.len() {
            let begin = self.inst[i].state;
            if begin == VrrpState::Fault {
                self.inst[i].wantstate = VrrpState::Fault;
            }
            let x = &self.inst[i];
            let new_state = match x.sync {
                Some(g) => self.groups[g].state,
                None => x.wantstate,
            };
            let group_init = x.sync.is_some_and(|g| self.groups[g].num_member_init > 0);
            let is_up = x.num_fault == 0;
            if is_up
                && new_state == VrrpState::Master
                && x.num_script_init == 0
                && !group_init
                && (x.base_priority == PRIO_OWNER || x.reload_master)
                && x.wantstate == VrrpState::Master
            {
                if x.reload_master {
                    // A master kept by a reload stays MASTER.
                    continue;
                }
                // The address owner times out of BACKUP at once (1 µs).
                let x = &mut self.inst[i];
                x.state = VrrpState::Backup;
                x.ms_down_timer = 1;
                continue;
            }
            let x = &mut self.inst[i];
            x.ms_down_timer = if new_state == VrrpState::Backup && x.wantstate == VrrpState::Master
            {
                // keepalived: allow one advert interval to see whether another master exists.
                x.master_adver_int + x.skew_min()
            } else {
                x.ms_down()
            };
            let name = x.cfg.name.clone();
            // Set interface state (drops the VIPs of a master a reload does not keep).
            self.restore_interface(i, false);
            let x = &mut self.inst[i];
            if is_up && new_state != VrrpState::Fault && x.num_script_init == 0 && !group_init {
                if x.state != VrrpState::Backup {
                    x.state = VrrpState::Backup;
                    self.log(format!("({name}) Entering BACKUP STATE (init)"));
                }
            } else {
                if begin != x.state {
                    self.log(format!("({name}) Entering FAULT STATE (init)"));
                }
                self.inst[i].state = VrrpState::Fault;
            }
            let x = &self.inst[i];
            if begin != x.state && (x.state != VrrpState::Fault || x.num_fault > 0) {
                self.notify(i);
            }
        }
    }

    /// vrrp_track.c `down_instance`.
    fn down_instance(&mut self, i: usize, now: Instant) {
        let first = self.inst[i].num_fault == 0;
        self.inst[i].num_fault += 1;
        if first || self.inst[i].state == VrrpState::Init {
            self.inst[i].wantstate = VrrpState::Fault;
            if self.inst[i].state == VrrpState::Master {
                self.leave_master(i, now, true);
            } else {
                self.leave_fault(i, now);
            }
            if let Some(g) = self.inst[i].sync {
                let first_member = self.groups[g].num_member_fault == 0;
                self.groups[g].num_member_fault += 1;
                if first_member {
                    self.sync_fault(i, now);
                }
            }
        }
    }

    /// vrrp_scheduler.c `try_up_instance`.
    fn try_up_instance(&mut self, i: usize, now: Instant, leaving_init: bool) {
        if leaving_init {
            if self.inst[i].num_fault > 0 {
                return;
            }
        } else {
            let x = &mut self.inst[i];
            x.num_fault = x.num_fault.saturating_sub(1);
            if x.num_fault > 0 || x.num_script_init > 0 {
                if x.num_fault == 0 {
                    if let Some(g) = x.sync {
                        self.groups[g].num_member_fault =
                            self.groups[g].num_member_fault.saturating_sub(1);
                        self.groups[g].state = VrrpState::Init;
                    }
                    self.inst[i].wantstate = VrrpState::Backup;
                }
                return;
            }
        }
        let x = &mut self.inst[i];
        let owner_master = x.wantstate == VrrpState::Master && x.base_priority == PRIO_OWNER;
        if !owner_master {
            x.wantstate = VrrpState::Backup;
        }
        x.master_adver_int = x.adver_int;
        x.ms_down_timer = if owner_master {
            x.master_adver_int + x.skew()
        } else {
            x.ms_down()
        };
        if let Some(g) = x.sync {
            if leaving_init {
                if self.groups[g].num_member_fault > 0 {
                    return;
                }
            } else {
                let grp = &mut self.groups[g];
                grp.num_member_fault = grp.num_member_fault.saturating_sub(1);
                if grp.num_member_fault > 0 || grp.num_member_init > 0 {
                    return;
                }
            }
        }
        let want = self.inst[i].wantstate;
        if self.inst[i].sync.is_some()
            && want == VrrpState::Master
            && !self.sync_can_goto_master(i, now)
        {
            self.inst[i].wantstate = VrrpState::Backup;
        }
        self.leave_fault(i, now);
        let x = &self.inst[i];
        if !x.cfg.unicast_peers.is_empty() {
            if let Some(src) = x.cfg.src_ip {
                // Refresh the master's ARP cache so its unicast adverts reach us at once.
                let (iface, name) = (x.cfg.iface.clone(), x.cfg.name.clone());
                let what = if src.is_ipv4() { "ARP" } else { "NA" };
                self.detail(i, format!("{name}: sending gratuitous {what} for {src}"));
                self.out.push_back(VrrpOutput::SendGarp {
                    iface,
                    addrs: vec![src],
                });
            }
        }
        self.inst[i].init_sands(now);
        self.inst[i].wantstate = want;
        if self.inst[i].sync.is_some() {
            if self.inst[i].state == VrrpState::Master {
                self.sync_master(i, now);
            } else {
                self.sync_backup(i, now);
            }
        }
    }

    /// keepalived_netlink.c `process_if_status_change`.
    fn link_change(&mut self, now: Instant, iface: &str, up: bool) {
        let was = self.links.get(iface).copied().unwrap_or(true);
        if was == up {
            return;
        }
        self.links.insert(iface.to_string(), up);
        let tracking: Vec<(usize, Tracked<String>)> = (0..self.inst.len())
            .flat_map(|i| {
                self.track_ifs[i]
                    .iter()
                    .filter(|t| t.what == iface)
                    .map(move |t| (i, t.clone()))
            })
            .collect();
        if tracking.is_empty() {
            return;
        }
        self.log(format!(
            "Netlink reports {iface} {}",
            if up { "up" } else { "down" }
        ));
        for (i, t) in tracking {
            if t.weight != 0 {
                let delta = t.weight.abs() * t.mult;
                self.inst[i].total_priority += if up { delta } else { -delta };
                self.set_effective_priority(i);
            } else if up == (t.mult == 1) {
                self.try_up_instance(i, now, false);
            } else {
                self.down_instance(i, now);
            }
        }
    }

    fn run_scripts(&mut self, now: Instant) {
        for s in 0..self.scripts.len() {
            if let Some(at) = self.scripts[s].next_run {
                if at <= now {
                    self.scripts[s].next_run = Some(now + self.scripts[s].cfg.interval);
                    let script = self.scripts[s].cfg.name.clone();
                    self.out.push_back(VrrpOutput::RunScript { script });
                }
            }
        }
    }

    /// vrrp_script_child_thread + vrrp_track.c `process_script_update_priority`.
    fn script_result(&mut self, now: Instant, name: &str, status: i32) {
        let Some(s) = self.scripts.iter().position(|x| x.cfg.name == name) else {
            return;
        };
        let (logs, flip) = self.scripts[s].record(status);
        for l in logs {
            self.log(l);
        }
        let Some(flip) = flip else { return };
        for i in 0..self.inst.len() {
            for t in self.track_scripts[i].clone() {
                if t.what != s {
                    continue;
                }
                if t.weight == 0 {
                    let mut left_init = false;
                    if flip.was_init {
                        let x = &mut self.inst[i];
                        x.num_script_init = x.num_script_init.saturating_sub(1);
                        if x.num_script_init == 0 {
                            left_init = true;
                            if let Some(g) = x.sync {
                                self.groups[g].num_member_init =
                                    self.groups[g].num_member_init.saturating_sub(1);
                            }
                        }
                    }
                    let group_init = self.inst[i]
                        .sync
                        .is_some_and(|g| self.groups[g].num_member_init > 0);
                    if flip.ok != (t.mult == 1) {
                        self.down_instance(i, now);
                    } else if self.inst[i].num_script_init == 0 && !group_init {
                        self.try_up_instance(i, now, left_init);
                    }
                    continue;
                }
                if self.inst[i].base_priority == PRIO_OWNER {
                    continue;
                }
                let x = &mut self.inst[i];
                if flip.was_init {
                    if (flip.ok && t.weight > 0) || (!flip.ok && t.weight < 0) {
                        x.total_priority += t.weight * t.mult;
                    }
                } else if flip.ok {
                    x.total_priority += t.weight.abs() * t.mult;
                } else {
                    x.total_priority -= t.weight.abs() * t.mult;
                }
                self.set_effective_priority(i);
            }
        }
    }

    /// vrrp_daemon.c `stop_vrrp`: priority 0 and VIP removal for every MASTER, then STOP
    /// notifications (notify_shutdown).
    fn stop(&mut self) {
        for i in 0..self.inst.len() {
            if self.inst[i].state == VrrpState::Master {
                self.restore_interface(i, true);
            }
        }
        for i in 0..self.inst.len() {
            self.inst[i].state = VrrpState::Stop;
            self.inst[i].sands = None;
            self.inst[i].garp_delay_at = None;
            self.notify(i);
        }
        for g in 0..self.groups.len() {
            self.groups[g].state = VrrpState::Stop;
            self.group_notify(g);
        }
        for s in &mut self.scripts {
            s.next_run = None;
        }
        self.stopped = true;
    }
}

/// Sync groups: keepalived's vrrp_sync.c.
impl VrrpRouter {
    pub(crate) fn others(&self, i: usize) -> Vec<usize> {
        match self.inst[i].sync {
            Some(g) => self.groups[g]
                .members
                .iter()
                .copied()
                .filter(|&m| m != i)
                .collect(),
            None => Vec::new(),
        }
    }

    /// vrrp_sync.c `vrrp_sync_can_goto_master`: only go MASTER when every other member wants
    /// to, preferring BACKUP to thrashing; otherwise re-arm a full Master_Down_Interval.
    pub(crate) fn sync_can_goto_master(&mut self, i: usize, now: Instant) -> bool {
        let Some(g) = self.inst[i].sync else {
            return true;
        };
        if self.groups[g].state == VrrpState::Master {
            return true;
        }
        for m in self.others(i) {
            if self.inst[m].wantstate != VrrpState::Master {
                let inst = &mut self.inst[i];
                inst.ms_down_timer = inst.ms_down();
                inst.init_sands(now);
                return false;
            }
        }
        true
    }

    /// vrrp_sync.c `vrrp_sync_backup`.
    pub(crate) fn sync_backup(&mut self, i: usize, now: Instant) {
        let Some(g) = self.inst[i].sync else { return };
        if self.groups[g].state == VrrpState::Backup {
            return;
        }
        self.log(format!(
            "VRRP_Group({}) Syncing instances to BACKUP state",
            self.groups[g].name
        ));
        for m in self.others(i) {
            if self.inst[m].state == VrrpState::Backup {
                continue;
            }
            self.inst[m].wantstate = VrrpState::Backup;
            if matches!(self.inst[m].state, VrrpState::Fault | VrrpState::Init) {
                self.leave_fault(m, now);
            } else {
                self.leave_master(m, now, false);
            }
        }
        self.groups[g].state = VrrpState::Backup;
        self.group_notify(g);
    }

    /// vrrp_sync.c `vrrp_sync_master`.
    pub(crate) fn sync_master(&mut self, i: usize, now: Instant) {
        let Some(g) = self.inst[i].sync else { return };
        if self.groups[g].state == VrrpState::Master || !self.sync_can_goto_master(i, now) {
            return;
        }
        self.log(format!(
            "VRRP_Group({}) Syncing instances to MASTER state",
            self.groups[g].name
        ));
        for m in self.others(i) {
            if self.inst[m].state != VrrpState::Master {
                self.inst[m].wantstate = VrrpState::Master;
                self.goto_master(m, now);
            }
        }
        self.groups[g].state = VrrpState::Master;
        self.group_notify(g);
    }

    /// vrrp_sync.c `vrrp_sync_fault`.
    pub(crate) fn sync_fault(&mut self, i: usize, now: Instant) {
        let Some(g) = self.inst[i].sync else { return };
        if self.groups[g].state == VrrpState::Fault {
            return;
        }
        self.log(format!(
            "VRRP_Group({}) Syncing instances to FAULT state",
            self.groups[g].name
        ));
        for m in self.others(i) {
            if self.inst[m].state == VrrpState::Fault {
                continue;
            }
            self.inst[m].wantstate = VrrpState::Fault;
            match self.inst[m].state {
                VrrpState::Master => self.leave_master(m, now, false),
                VrrpState::Backup | VrrpState::Init => {
                    // keepalived sets FAULT first, so no "Entering FAULT STATE" line here.
                    self.inst[m].state = VrrpState::Fault;
                    self.leave_fault(m, now);
                }
                _ => {}
            }
        }
        self.groups[g].state = VrrpState::Fault;
        self.group_notify(g);
    }

    /// vrrp_scheduler.c `VRRP_TSM_HANDLE`: the transition matrix run after each event.
    pub(crate) fn tsm_handle(&mut self, prev: VrrpState, i: usize, now: Instant) {
        if self.inst[i].sync.is_none() {
            return;
        }
        match (prev, self.inst[i].state) {
            (VrrpState::Backup | VrrpState::Master | VrrpState::Fault, VrrpState::Master) => {
                self.sync_master(i, now)
            }
            (VrrpState::Master, VrrpState::Backup) => self.sync_backup(i, now),
            _ => {}
        }
    }
}

/// What a reload carries over into the new router's start.
#[derive(Debug, Default)]
struct Restored {
    /// New instance index → the state of the old instance it matches (FAULT ones left out:
    /// the new instance works that out for itself).
    states: Vec<(usize, VrrpState)>,
    /// Old sync group states by name.
    groups: BTreeMap<String, VrrpState>,
}

/// vrrp.c `vrrp_exist`: the same virtual router (VRID, family, interface, unicast or not,
/// and for unicast the same source address).
fn same_router(a: &InstanceConfig, b: &InstanceConfig) -> bool {
    let unicast = |c: &InstanceConfig| !c.unicast_peers.is_empty();
    a.vrid == b.vrid
        && a.saddr().is_ipv4() == b.saddr().is_ipv4()
        && a.iface == b.iface
        && unicast(a) == unicast(b)
        && (!unicast(a) || a.saddr() == b.saddr())
}

/// The scripts keepalived runs for `change` (vrrp_notify.c): the state-specific one, then the
/// generic `notify` with `INSTANCE|GROUP name state priority` (`notify_script_exec`).
fn notify_scripts(n: &NotifyScripts, change: &StateChange) -> Vec<NotifyScript> {
    let mut v = Vec::new();
    if let Some(c) = n.for_state(change.state) {
        v.push(NotifyScript {
            command: c.to_string(),
            args: Vec::new(),
        });
    }
    if let Some(c) = &n.generic {
        let state = match change.state {
            VrrpState::Init => "{UNKNOWN}",
            s => s.as_str(),
        };
        v.push(NotifyScript {
            command: c.clone(),
            args: vec![
                change.kind.as_str().to_string(),
                change.name.clone(),
                state.to_string(),
                change.priority.to_string(),
            ],
        });
    }
    v
}

/// The interface a VIP goes on: its own `dev`, else the instance's.
fn vip_iface(v: &VirtualAddress, cfg: &InstanceConfig) -> String {
    v.dev.clone().unwrap_or_else(|| cfg.iface.clone())
}
