//! What the checkers ask their driver to do: probes to run, IPVS changes, log lines and
//! notify scripts.

use super::probe::Probe;
use super::script::Script;
use crate::ipvs::IpvsChange;

/// Which notify script runs and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum NotifyEvent {
    /// `notify_up` of a real server.
    RealServerUp {
        /// `FMT_VS`.
        vs: String,
        /// `FMT_RS`.
        rs: String,
    },
    /// `notify_down` of a real server.
    RealServerDown {
        /// `FMT_VS`.
        vs: String,
        /// `FMT_RS`.
        rs: String,
    },
    /// `quorum_up` of a virtual server.
    QuorumUp {
        /// `FMT_VS`.
        vs: String,
    },
    /// `quorum_down` of a virtual server.
    QuorumDown {
        /// `FMT_VS`.
        vs: String,
    },
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum CheckOutput {
    /// Run this probe and answer with a `CheckInput::ProbeDone`.
    StartProbe(Probe),
    /// Apply this change to IPVS.
    Ipvs(IpvsChange),
    /// A `Keepalived_healthcheckers` log line, worded as keepalived 2.2 words it.
    Log {
        /// The message.
        text: String,
    },
    /// Run a notify script (keepalived 2.2.7 `ipwrapper.c` `do_rs_notifies` /
    /// `do_vs_notifies` → `notify_exec`): execute `argv`, without waiting for it, without a
    /// log line (keepalived logs none). When the checkers stop, keepalived gives such a script
    /// one second (`system_call_script(..., TIMER_HZ, ...)`) before killing it.
    Notify {
        /// The command line as configured.
        command: String,
        /// keepalived's argv for it: the words of `command`, nothing appended.
        argv: Vec<String>,
        /// Why.
        event: NotifyEvent,
    },
}

impl CheckOutput {
    /// The notify output for `script` and `event`.
    pub(crate) fn notify(script: &Script, event: NotifyEvent) -> Self {
        CheckOutput::Notify {
            command: script.command.clone(),
            argv: script.argv.clone(),
            event,
        }
    }
}
