//! `vrrp_sync_group`: instances that change state together. The group's data lives here; its
//! transitions (keepalived's vrrp_sync.c) are `VrrpRouter`'s (router.rs), since they move
//! the member instances.

use super::state::{NotifyScripts, VrrpState};

/// One `vrrp_sync_group` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroupConfig {
    /// Group name (`vrrp_sync_group VGM`).
    pub name: String,
    /// Member instance names, in `group { }` order.
    pub members: Vec<String>,
    /// The group's notify scripts.
    pub notify: NotifyScripts,
}

/// Run-time state of a sync group.
#[derive(Clone, Debug)]
pub struct SyncGroup {
    pub(crate) name: String,
    pub(crate) members: Vec<usize>,
    pub(crate) state: VrrpState,
    pub(crate) num_member_fault: u32,
    pub(crate) num_member_init: u32,
    pub(crate) notify: NotifyScripts,
}

impl SyncGroup {
    pub(crate) fn new(name: String, members: Vec<usize>, notify: NotifyScripts) -> Self {
        SyncGroup {
            notify,
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
