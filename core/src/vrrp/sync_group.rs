//! `vrrp_sync_group`: instances that change state together (keepalived's vrrp_sync.c).

use super::state::VrrpState;
use crate::time::Instant;

use super::router::VrrpRouter;

/// One `vrrp_sync_group` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroupConfig {
    /// Group name (`vrrp_sync_group VGM`).
    pub name: String,
    /// Member instance names, in `group { }` order.
    pub members: Vec<String>,
}

/// Run-time state of a sync group.
#[derive(Clone, Debug)]
pub struct SyncGroup {
    pub(crate) name: String,
    pub(crate) members: Vec<usize>,
    pub(crate) state: VrrpState,
    pub(crate) num_member_fault: u32,
    pub(crate) num_member_init: u32,
}

impl SyncGroup {
    pub(crate) fn new(name: String, members: Vec<usize>) -> Self {
        SyncGroup {
            name,
            members,
            state: VrrpState::Init,
            num_member_fault: 0,
            num_member_init: 0,
        }
    }

    /// Group name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group's state as keepalived tracks it.
    pub fn state(&self) -> VrrpState {
        self.state
    }
}

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
