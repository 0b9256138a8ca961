//! Health-check probes, evaluated against the modelled network rather than sent.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use lvs_core::check::probe::{Probe, ProbeKind, ProbeResult};
use rand::Rng;

use super::world::Model;
use super::{Ev, ProbeDone, Sim};

impl Sim {
    /// Evaluate a probe against the modelled network and schedule its result.
    pub(super) fn start_probe(&mut self, host: usize, probe: Probe) {
        let Some(gen) = self.dir(host).map(|d| d.gen) else {
            return;
        };
        let (delay, result) = match &probe.kind {
            ProbeKind::Script { command } => {
                let status = self
                    .dir(host)
                    .and_then(|d| d.scripts.get(command).copied())
                    .unwrap_or(Some(0));
                (Duration::from_millis(1), ProbeResult::Exit(status))
            }
            ProbeKind::Tcp { target, .. } | ProbeKind::Http { target, .. } => {
                self.eval_connect(host, target.ip(), target.port(), &probe)
            }
        };
        let (delay, result) = if delay > probe.timeout {
            (probe.timeout, ProbeResult::Timeout)
        } else {
            (delay, result)
        };
        self.queue.push(
            self.now + delay,
            Ev::ProbeDone(Box::new(ProbeDone {
                host,
                gen,
                id: probe.id,
                result,
            })),
        );
    }

    fn eval_connect(
        &mut self,
        host: usize,
        ip: IpAddr,
        port: u16,
        probe: &Probe,
    ) -> (Duration, ProbeResult) {
        let timeout = (probe.timeout, ProbeResult::Timeout);
        let IpAddr::V4(ip) = ip else { return timeout };
        let Some(t) = self.hosts.iter().position(|h| {
            h.stack
                .ifaces()
                .iter()
                .any(|i| i.spec.addrs.iter().any(|a| a.0 == ip))
        }) else {
            return timeout;
        };
        let Some((rtt, loss)) = self.path(host, t, ip) else {
            return timeout;
        };
        // SYN and SYN-ACK each cross both links once.
        if loss > 0.0 {
            let r = &mut self.hosts[host].rng;
            if r.gen::<f64>() < loss || r.gen::<f64>() < loss {
                return timeout;
            }
        }
        let result = match &self.hosts[t].model {
            Model::Server(s) => match s.service(port).filter(|s| s.running) {
                Some(svc) => match probe.kind {
                    ProbeKind::Http { .. } => ProbeResult::Http {
                        status: svc.http_status,
                        digest: svc.http_digest.clone(),
                    },
                    _ => ProbeResult::Connected,
                },
                None => ProbeResult::ConnectFailed,
            },
            _ => ProbeResult::ConnectFailed,
        };
        (rtt, result)
    }

    /// Round trip time and one-way loss between two hosts sharing a segment, if they can talk.
    /// Round trip and loss from host `a` to the interface of host `b` that holds `ip`: a probe
    /// to an address whose interface is down fails even if another of `b`'s links is up.
    pub(super) fn path(&self, a: usize, b: usize, ip: Ipv4Addr) -> Option<(Duration, f64)> {
        if self.blocked.contains(&(a, b)) || self.blocked.contains(&(b, a)) {
            return None;
        }
        for (ia, i) in self.hosts[a].stack.ifaces().iter().enumerate() {
            let Some(ea) = i.link.filter(|_| self.iface_carrier(a, ia)) else {
                continue;
            };
            for (ib, j) in self.hosts[b].stack.ifaces().iter().enumerate() {
                if !j.spec.addrs.iter().any(|x| x.0 == ip) {
                    continue;
                }
                let Some(eb) = j.link.filter(|_| self.iface_carrier(b, ib)) else {
                    continue;
                };
                let (la, lb) = (&self.graph[ea], &self.graph[eb]);
                if la.seg == lb.seg {
                    let rtt = (la.params.latency + lb.params.latency) * 2;
                    let loss = 1.0 - (1.0 - la.params.loss) * (1.0 - lb.params.loss);
                    return Some((rtt, loss));
                }
            }
        }
        None
    }
}
