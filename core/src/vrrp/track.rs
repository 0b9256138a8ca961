//! `vrrp_script` and `track_interface` / `track_script`: what moves an instance's priority or
//! puts it in FAULT (keepalived's vrrp_track.c and the script part of vrrp_scheduler.c).

use std::time::Duration;

use crate::time::Instant;

/// One `track_interface` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInterface {
    /// Interface name.
    pub iface: String,
    /// `weight N`; 0 means "down puts the instance in FAULT".
    pub weight: i32,
    /// `weight N reverse`: up lowers the priority, down raises it.
    pub reverse: bool,
}

/// One `track_script` entry of an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackScript {
    /// Name of the `vrrp_script`.
    pub script: String,
    /// `weight` given here, overriding the script's own.
    pub weight: Option<i32>,
    /// `reverse`.
    pub reverse: bool,
}

/// One `vrrp_script` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptConfig {
    /// Script name.
    pub name: String,
    /// `interval` (keepalived default 1 s).
    pub interval: Duration,
    /// `weight` (default 0: failing puts tracking instances in FAULT).
    pub weight: i32,
    /// `rise`: consecutive successes before OK (default 1).
    pub rise: u32,
    /// `fall`: consecutive failures before KO (default 1).
    pub fall: u32,
    /// `init_fail`: start as failed instead of "one success is enough".
    pub init_fail: bool,
}

impl ScriptConfig {
    /// A script with keepalived's defaults.
    pub fn new(name: &str) -> Self {
        ScriptConfig {
            name: name.to_string(),
            interval: Duration::from_secs(1),
            weight: 0,
            rise: 1,
            fall: 1,
            init_fail: false,
        }
    }
}

/// `SCRIPT_INIT_STATE_*`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum InitState {
    Init,
    Failed,
    Done,
}

/// Run-time state of one `vrrp_script`.
#[derive(Clone, Debug)]
pub(crate) struct Script {
    pub(crate) cfg: ScriptConfig,
    /// keepalived's `result`: 0..rise means KO, rise..rise+fall means OK.
    pub(crate) result: u32,
    pub(crate) init_state: InitState,
    pub(crate) last_status: i32,
    pub(crate) next_run: Option<Instant>,
}

/// A script crossing its rise/fall threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScriptFlip {
    /// New verdict.
    pub(crate) ok: bool,
    /// Whether the script was still in its initial state (first verdict).
    pub(crate) was_init: bool,
}

impl Script {
    pub(crate) fn new(cfg: ScriptConfig) -> Self {
        let rise = cfg.rise.max(1);
        let fall = cfg.fall.max(1);
        let init_fail = cfg.init_fail;
        Script {
            cfg: ScriptConfig { rise, fall, ..cfg },
            // vrrp_init_script: "one success is enough", or failed by config.
            result: if init_fail { 0 } else { rise - 1 },
            init_state: if init_fail {
                InitState::Failed
            } else {
                InitState::Init
            },
            last_status: 0,
            next_run: None,
        }
    }

    pub(crate) fn is_ok(&self) -> bool {
        self.result >= self.cfg.rise
    }

    /// vrrp_script_child_thread: count one exit status; returns the log lines and, when the
    /// verdict flips (or the first failure arrives), the flip.
    pub(crate) fn record(&mut self, status: i32) -> (Vec<String>, Option<ScriptFlip>) {
        let name = &self.cfg.name;
        let mut logs = Vec::new();
        if status != self.last_status {
            logs.push(format!("Script `{name}` now returning {status}"));
        }
        self.last_status = status;
        let (rise, fall) = (self.cfg.rise, self.cfg.fall);
        let was_init = self.init_state == InitState::Init;
        let mut flip = None;
        if status == 0 {
            if self.result + 1 < rise {
                self.result += 1;
            } else if self.result != rise + fall - 1 {
                if self.result < rise {
                    logs.push(format!("VRRP_Script({name}) succeeded"));
                    flip = Some(ScriptFlip { ok: true, was_init });
                }
                self.result = rise + fall - 1;
            }
        } else if self.result > rise {
            self.result -= 1;
        } else {
            if self.result == rise || was_init {
                logs.push(format!(
                    "VRRP_Script({name}) failed (exited with status {status})"
                ));
                flip = Some(ScriptFlip {
                    ok: false,
                    was_init,
                });
            }
            self.result = 0;
        }
        self.init_state = InitState::Done;
        (logs, flip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // vrrp_scheduler.c vrrp_script_child_thread: rise/fall hysteresis, first result decides.
    #[test]
    fn rise_and_fall_count_like_keepalived() {
        let mut s = Script::new(ScriptConfig {
            rise: 2,
            fall: 3,
            ..ScriptConfig::new("chk")
        });
        // Starts at rise-1: one success flips to OK.
        let (_, f) = s.record(0);
        assert_eq!(
            f,
            Some(ScriptFlip {
                ok: true,
                was_init: true
            })
        );
        assert!(s.is_ok());
        // Needs three failures to go KO.
        assert_eq!(s.record(1).1, None);
        assert_eq!(s.record(1).1, None);
        let (logs, f) = s.record(1);
        assert_eq!(
            f,
            Some(ScriptFlip {
                ok: false,
                was_init: false
            })
        );
        assert_eq!(
            logs,
            vec!["VRRP_Script(chk) failed (exited with status 1)".to_string()]
        );
        // And two successes to come back.
        let (logs, f) = s.record(0);
        assert_eq!(f, None);
        assert_eq!(logs, vec!["Script `chk` now returning 0".to_string()]);
        let (logs, f) = s.record(0);
        assert_eq!(
            f,
            Some(ScriptFlip {
                ok: true,
                was_init: false
            })
        );
        assert_eq!(logs, vec!["VRRP_Script(chk) succeeded".to_string()]);
    }

    #[test]
    fn first_failure_is_reported_while_init() {
        let mut s = Script::new(ScriptConfig {
            fall: 3,
            ..ScriptConfig::new("chk")
        });
        let (_, f) = s.record(2);
        assert_eq!(
            f,
            Some(ScriptFlip {
                ok: false,
                was_init: true
            })
        );
        assert!(!s.is_ok());
    }
}
