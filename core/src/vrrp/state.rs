//! VRRP's own vocabulary: an instance's or sync group's state, and the transitions notify
//! scripts are told about.

/// A VRRP state, as notify scripts and logs name it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum VrrpState {
    /// Not started yet.
    Init,
    /// BACKUP.
    Backup,
    /// MASTER.
    Master,
    /// FAULT.
    Fault,
    /// Stopping.
    Stop,
}

/// What changed state: a `vrrp_instance` or a `vrrp_sync_group` (keepalived's first notify
/// argument, `INSTANCE` or `GROUP`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum StateChangeKind {
    /// A `vrrp_instance` (`INSTANCE`).
    #[serde(rename = "INSTANCE")]
    Instance,
    /// A `vrrp_sync_group` (`GROUP`).
    #[serde(rename = "GROUP")]
    Group,
}

impl StateChangeKind {
    /// The word keepalived passes to notify scripts: `INSTANCE` or `GROUP`.
    pub fn as_str(self) -> &'static str {
        match self {
            StateChangeKind::Instance => "INSTANCE",
            StateChangeKind::Group => "GROUP",
        }
    }
}

/// A transition for notify scripts (`notify_master` ...).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StateChange {
    /// An instance or a sync group.
    pub kind: StateChangeKind,
    /// Instance or group name.
    pub name: String,
    /// New state.
    pub state: VrrpState,
    /// Priority at the time.
    pub priority: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_words_are_keepalived_s() {
        assert_eq!(StateChangeKind::Instance.as_str(), "INSTANCE");
        assert_eq!(StateChangeKind::Group.as_str(), "GROUP");
    }
}
