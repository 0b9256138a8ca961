//! Health-check probes: scripts answered from the scenario's script results, TCP_CHECK and
//! HTTP_GET as real connections from the director host's own sockets (`crate::prober`).

use std::net::IpAddr;
use std::time::Duration;

use lvs_core::check::probe::{Probe, ProbeId, ProbeKind, ProbeResult};
use lvs_core::director::Input;

use crate::prober::{Done, Outcome};
use crate::record::TraceEvent;

use super::world::Model;
use super::{Ev, ProbeDone, Sim};

impl Sim {
    /// Start a probe for the director on `host`: a script's result comes after 1 ms, a
    /// connection's when its packets (or its timeout) say.
    pub(super) fn start_probe(&mut self, host: usize, probe: Probe) {
        let now = self.now;
        let Some(d) = self.dir(host) else { return };
        let gen = d.gen;
        let what = match &probe.kind {
            ProbeKind::Tcp { target, .. } => ("TCP_CHECK", target.to_string()),
            ProbeKind::Http { target, tls, .. } => (
                if *tls { "SSL_GET" } else { "HTTP_GET" },
                target.to_string(),
            ),
            ProbeKind::Script { command } => ("script", command.clone()),
        };
        d.probing.insert(probe.id.0, what);
        if let ProbeKind::Script { command } = &probe.kind {
            let status = d.scripts.get(command).copied().unwrap_or(Some(0));
            let result = if probe.timeout < Duration::from_millis(1) {
                ProbeResult::Timeout
            } else {
                ProbeResult::Exit(status)
            };
            let delay = Duration::from_millis(1).min(probe.timeout);
            self.queue.push(
                now + delay,
                Ev::ProbeDone(Box::new(ProbeDone {
                    host,
                    gen,
                    id: probe.id,
                    result,
                })),
            );
            return;
        }
        let h = &mut self.hosts[host];
        let Model::Director(d) = &mut h.model else {
            return;
        };
        // Called while the process's outputs run: an answer at once (no route; an IPv6
        // target, the simulated network being IPv4 only) is queued, not handed back inside.
        if d.prober.start(now, gen, &probe, &mut h.stack, &mut self.fx) {
            self.flush_fx(host);
            return;
        }
        self.queue.push(
            now,
            Ev::ProbeDone(Box::new(ProbeDone {
                host,
                gen,
                id: probe.id,
                result: ProbeResult::ConnectFailed,
            })),
        );
    }

    /// A probe socket's verdict, as the checker reads it.
    pub(super) fn probe_finished(&mut self, host: usize, done: Done) {
        let result = match done.outcome {
            Outcome::Connected => ProbeResult::Connected,
            Outcome::Refused => ProbeResult::ConnectFailed,
            Outcome::TimedOut => ProbeResult::Timeout,
            Outcome::Responded { server } => self.http_answer(server.ip(), server.port()),
        };
        self.probe_result(host, done.gen, done.id, result);
    }

    /// What the real server holding `ip` answers an HTTP_GET on `port` with.
    fn http_answer(&self, ip: IpAddr, port: u16) -> ProbeResult {
        let holder = self.hosts.iter().find_map(|h| match &h.model {
            Model::Server(s) if h.stack.is_local(ip) => s.service(port),
            _ => None,
        });
        match holder {
            Some(svc) => ProbeResult::Http {
                status: svc.http_status,
                digest: svc.http_digest.clone(),
            },
            None => ProbeResult::ConnectFailed,
        }
    }

    /// Hand a probe's result to the process that started it, if it still runs.
    pub(super) fn probe_result(&mut self, host: usize, gen: u32, id: ProbeId, result: ProbeResult) {
        let Some(d) = self.dir(host).filter(|d| d.gen == gen) else {
            return;
        };
        let (checker, target) = d.probing.remove(&id.0).unwrap_or(("?", String::new()));
        self.trace_push(
            host,
            TraceEvent::Probe {
                id: id.0,
                checker,
                target,
                result: crate::record::probe_result_text(&result),
            },
        );
        self.director_input(host, Input::ProbeDone { id, result });
    }
}

/// The IPv4 address a TCP frame is for and its destination port, when it is TCP over IPv4.
pub(super) fn tcp_dst(frame: &[u8]) -> Option<(IpAddr, u16)> {
    let (_, dst, proto) = crate::packet::ip_addrs(frame)?;
    if proto != 6 {
        return None;
    }
    let seg = crate::packet::parse_tcp(frame).ok()?;
    Some((dst, seg.dport))
}
