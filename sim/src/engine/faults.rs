//! Faults: what can be injected, how it is described in the trace, and what it does.

use lvs_core::director::Input;

use crate::record::{FaultRecord, TraceEvent};
use crate::HostId;

use super::world::Model;
use super::{Fault, Sim};

impl Sim {
    /// The fault as the trace records it: kind, fields and a description.
    fn record(&self, f: &Fault) -> FaultRecord {
        let n = |h: &HostId| self.host_name(*h).to_string();
        let base = |kind| FaultRecord {
            kind,
            description: self.describe(f),
            ..FaultRecord::default()
        };
        match f {
            Fault::Kill(_) => base("kill"),
            Fault::Stop(_) => base("stop"),
            Fault::Pause(_) => base("pause"),
            Fault::Resume(_) => base("resume"),
            Fault::Restart(_) => base("restart"),
            Fault::Nic { iface, up, .. } | Fault::Link { iface, up, .. } => FaultRecord {
                iface: Some(iface.clone()),
                up: Some(*up),
                ..base(if matches!(f, Fault::Nic { .. }) {
                    "nic"
                } else {
                    "link"
                })
            },
            Fault::LinkParams { iface, .. } => FaultRecord {
                iface: Some(iface.clone()),
                ..base("link_params")
            },
            Fault::Partition {
                from,
                to,
                symmetric,
            } => FaultRecord {
                from: from.iter().map(n).collect(),
                to: to.iter().map(n).collect(),
                symmetric: Some(*symmetric),
                ..base("partition")
            },
            Fault::Heal => base("heal"),
            Fault::Service { port, running, .. } => FaultRecord {
                port: Some(*port),
                up: Some(*running),
                ..base("service")
            },
            Fault::ClockDrift { ppm, .. } => FaultRecord {
                ppm: Some(*ppm),
                ..base("clock_drift")
            },
            Fault::ScriptExit {
                command, status, ..
            } => FaultRecord {
                command: Some(command.clone()),
                exit: *status,
                ..base("script")
            },
        }
    }

    fn describe(&self, f: &Fault) -> String {
        let n = |h: &HostId| self.host_name(*h).to_string();
        let names = |v: &[HostId]| v.iter().map(n).collect::<Vec<_>>().join(",");
        match f {
            Fault::Kill(h) => format!("kill {}", n(h)),
            Fault::Stop(h) => format!("stop {}", n(h)),
            Fault::Pause(h) => format!("pause {}", n(h)),
            Fault::Resume(h) => format!("resume {}", n(h)),
            Fault::Restart(h) => format!("restart {}", n(h)),
            Fault::Nic { host, iface, up } => format!(
                "nic {} {iface} {}",
                n(host),
                if *up { "up" } else { "down" }
            ),
            Fault::Link { host, iface, up } => format!(
                "link {} {iface} {}",
                n(host),
                if *up { "up" } else { "down" }
            ),
            Fault::LinkParams {
                host,
                iface,
                params,
            } => format!("link params {} {iface} {params:?}", n(host)),
            Fault::Partition {
                from,
                to,
                symmetric,
            } => {
                format!(
                    "partition [{}] {} [{}]",
                    names(from),
                    if *symmetric { "<->" } else { "->" },
                    names(to)
                )
            }
            Fault::Heal => "heal".to_string(),
            Fault::Service {
                host,
                port,
                running,
            } => {
                format!(
                    "service {} :{port} {}",
                    n(host),
                    if *running { "start" } else { "stop" }
                )
            }
            Fault::ClockDrift { host, ppm } => format!("clock drift {} {ppm} ppm", n(host)),
            Fault::ScriptExit {
                host,
                command,
                status,
            } => match status {
                Some(code) => format!("script {} {command:?} exits {code}", n(host)),
                None => format!("script {} {command:?} killed", n(host)),
            },
        }
    }

    /// Inject a fault now.
    pub fn apply(&mut self, fault: Fault) {
        self.sync_links();
        self.apply_inner(fault);
        if self.inv.needs_check() {
            self.check_invariants();
        }
    }

    pub(super) fn apply_inner(&mut self, fault: Fault) {
        self.revert_cuts();
        let record = self.record(&fault);
        let host_of = match &fault {
            Fault::Kill(h)
            | Fault::Stop(h)
            | Fault::Pause(h)
            | Fault::Resume(h)
            | Fault::Restart(h) => h.0,
            Fault::Nic { host, .. }
            | Fault::Link { host, .. }
            | Fault::LinkParams { host, .. }
            | Fault::Service { host, .. }
            | Fault::ClockDrift { host, .. }
            | Fault::ScriptExit { host, .. } => host.0,
            Fault::Partition { .. } | Fault::Heal => usize::MAX,
        };
        self.trace_push(host_of, TraceEvent::Fault(record));
        self.inv.touch();
        let now = self.now;
        match fault {
            Fault::Kill(h) => self.kill(h.0),
            Fault::Stop(h) => self.terminate(h.0, false),
            Fault::Pause(h) => {
                if let Some(d) = self.dir(h.0).filter(|d| d.proc.is_some()) {
                    d.paused = true;
                }
            }
            Fault::Resume(h) => {
                let Some(d) = self.dir(h.0).filter(|d| d.paused) else {
                    return;
                };
                d.paused = false;
                d.wake = None;
                d.ready = None;
                self.run_inbox(h.0);
            }
            Fault::Restart(h) => self.terminate(h.0, true),
            Fault::Nic { host, iface, up } => {
                let Some(i) = self
                    .hosts
                    .get(host.0)
                    .and_then(|x| x.stack.iface_index(&iface))
                else {
                    return;
                };
                let before = self.iface_carrier(host.0, i);
                self.hosts[host.0].stack.set_up(i, up);
                if let Some(e) = self.hosts[host.0].stack.ifaces()[i].link {
                    self.graph[e].iface_up = up;
                }
                self.carrier_changed(host.0, i, before);
            }
            Fault::Link { host, iface, up } => {
                let Some(i) = self
                    .hosts
                    .get(host.0)
                    .and_then(|x| x.stack.iface_index(&iface))
                else {
                    return;
                };
                let before = self.iface_carrier(host.0, i);
                if let Some(e) = self.hosts[host.0].stack.ifaces()[i].link {
                    self.graph[e].up = up;
                }
                self.carrier_changed(host.0, i, before);
            }
            Fault::LinkParams {
                host,
                iface,
                params,
            } => {
                let e = self.hosts.get(host.0).and_then(|x| {
                    x.stack
                        .iface_index(&iface)
                        .and_then(|i| x.stack.ifaces()[i].link)
                });
                if let Some(e) = e {
                    self.graph[e].set_params(params);
                }
            }
            Fault::Partition {
                from,
                to,
                symmetric,
            } => {
                for a in &from {
                    for b in &to {
                        if a != b {
                            self.blocked.insert((a.0, b.0));
                            if symmetric {
                                self.blocked.insert((b.0, a.0));
                            }
                        }
                    }
                }
            }
            Fault::Heal => self.blocked.clear(),
            Fault::Service {
                host,
                port,
                running,
            } => {
                if let Some(Model::Server(s)) = self.hosts.get_mut(host.0).map(|h| &mut h.model) {
                    if s.set_running(port, running) {
                        self.trace_push(host.0, TraceEvent::Service { port, running });
                    }
                }
            }
            Fault::ClockDrift { host, ppm } => {
                if let Some(d) = self.dir(host.0) {
                    d.clock.set_drift(now, ppm);
                    // The pending wake-up was computed with the old rate.
                    d.wake = None;
                    self.drain(host.0);
                }
            }
            Fault::ScriptExit {
                host,
                command,
                status,
            } => self.set_script_exit(host, &command, status),
        }
    }

    fn carrier_changed(&mut self, host: usize, iface: usize, before: bool) {
        let after = self.iface_carrier(host, iface);
        if before != after {
            let name = self.hosts[host].stack.ifaces()[iface].spec.name.clone();
            self.director_input(
                host,
                Input::Link {
                    iface: name,
                    up: after,
                },
            );
        }
    }
}
