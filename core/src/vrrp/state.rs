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

impl VrrpState {
    /// keepalived's number for the state (vrrp.h: INIT 0, BACKUP 1, MASTER 2, FAULT 3,
    /// STOP 98), as its data dump and keepalived-exporter's `keepalived_vrrp_state` show it.
    pub fn keepalived_number(self) -> u8 {
        match self {
            VrrpState::Init => 0,
            VrrpState::Backup => 1,
            VrrpState::Master => 2,
            VrrpState::Fault => 3,
            VrrpState::Stop => 98,
        }
    }

    /// keepalived's name for the state, as logs and notify scripts give it: `INIT`,
    /// `BACKUP`, `MASTER`, `FAULT`, `STOP`.
    pub fn as_str(self) -> &'static str {
        match self {
            VrrpState::Init => "INIT",
            VrrpState::Backup => "BACKUP",
            VrrpState::Master => "MASTER",
            VrrpState::Fault => "FAULT",
            VrrpState::Stop => "STOP",
        }
    }
}

impl std::fmt::Display for VrrpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

/// The notify scripts of an instance or a sync group, as configured (command lines).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifyScripts {
    /// `notify_master`.
    pub master: Option<String>,
    /// `notify_backup`.
    pub backup: Option<String>,
    /// `notify_fault`.
    pub fault: Option<String>,
    /// `notify_stop`.
    pub stop: Option<String>,
    /// `notify`: run with `INSTANCE|GROUP name state priority` appended.
    pub generic: Option<String>,
}

impl NotifyScripts {
    /// The state-specific script for `state` (vrrp_notify.c `get_iscript` / `get_gscript`).
    pub fn for_state(&self, state: VrrpState) -> Option<&str> {
        match state {
            VrrpState::Master => self.master.as_deref(),
            VrrpState::Backup => self.backup.as_deref(),
            VrrpState::Fault => self.fault.as_deref(),
            VrrpState::Stop => self.stop.as_deref(),
            VrrpState::Init => None,
        }
    }
}

/// One notify script to run: its command line and the arguments keepalived appends.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NotifyScript {
    /// The command line as configured.
    pub command: String,
    /// Appended to the command's words: `INSTANCE|GROUP name state priority` for the generic
    /// `notify` script, nothing for the state-specific ones.
    pub args: Vec<String>,
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
    fn state_words_are_keepalived_s() {
        let all = [
            VrrpState::Init,
            VrrpState::Backup,
            VrrpState::Master,
            VrrpState::Fault,
            VrrpState::Stop,
        ];
        let words: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        assert_eq!(words, ["INIT", "BACKUP", "MASTER", "FAULT", "STOP"]);
    }

    #[test]
    fn kind_words_are_keepalived_s() {
        assert_eq!(StateChangeKind::Instance.as_str(), "INSTANCE");
        assert_eq!(StateChangeKind::Group.as_str(), "GROUP");
    }
}
