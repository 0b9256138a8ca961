//! Host processes: what a host does with a frame or timer that reaches it, and the director
//! processes' lifecycle (start, kill), inputs, outputs and logs.

use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

use lvs_core::director::{
    Admin, Input, LogSource, Notification, NotifyCause, Output, StateChangeKind, Vip,
};

use crate::director::{draw, draw_log, HostEnv};
use crate::packet;
use crate::record::{self, LogLine, TraceEvent};
use crate::stack::{Rx, STACK_TOKEN};
use crate::HostId;

use super::world::{host_u32, DirectorProc, Life, Model};
use super::{Ev, Sim};

/// Emptied frame boxes kept for the next frames sent (more are dropped).
const SPARE_BOXES: usize = 64;

impl Sim {
    /// `frame` in a shared box, one kept from a frame delivered earlier when there is one:
    /// every frame sent is boxed once and unboxed on delivery, and reusing the boxes saves
    /// an allocation and a free per frame.
    pub(super) fn boxed(&mut self, frame: Vec<u8>) -> Rc<Vec<u8>> {
        if let Some(mut b) = self.spare.pop() {
            if let Some(v) = Rc::get_mut(&mut b) {
                *v = frame;
                return b;
            }
        }
        Rc::new(frame)
    }

    /// The frame's bytes, taken without a copy when this delivery holds the only reference
    /// (its box then kept for `boxed`).
    fn owned(&mut self, mut frame: Rc<Vec<u8>>) -> Vec<u8> {
        match Rc::get_mut(&mut frame) {
            Some(v) => {
                let bytes = std::mem::take(v);
                self.recycle(frame);
                bytes
            }
            None => frame.as_ref().clone(),
        }
    }

    /// Done with `frame`: its box is kept for `boxed` when this was the last reference.
    fn recycle(&mut self, mut frame: Rc<Vec<u8>>) {
        if self.spare.len() < SPARE_BOXES {
            if let Some(v) = Rc::get_mut(&mut frame) {
                *v = Vec::new();
                self.spare.push(frame);
            }
        }
    }

    pub(super) fn deliver(&mut self, host: usize, iface: usize, frame: Rc<Vec<u8>>) {
        if !self.iface_carrier(host, iface) {
            return;
        }
        let now = self.now;
        if matches!(self.hosts[host].model, Model::Gateway)
            && matches!(
                self.hosts[host].stack.classify(iface, &frame),
                Rx::Arp | Rx::Ndisc
            )
        {
            // The gateway's ARP cache may change under frames forwarded ahead of time.
            self.revert_cuts();
        }
        let h = &mut self.hosts[host];
        let rx = h.stack.receive(now, iface, &frame, &mut self.fx);
        if let Rx::Forward(dst) = rx {
            let frame = self.owned(frame);
            self.hosts[host]
                .stack
                .forward_frame(now, dst, frame, &mut self.fx);
            self.flush_fx(host);
            return;
        }
        match &mut h.model {
            Model::Director(d) => {
                if rx == Rx::Local && !d.prober.is_empty() {
                    if let Some((dst, dport)) = super::probes::tcp_dst(&frame) {
                        if d.prober.owns(dst, dport) {
                            let done = packet::parse_tcp(&frame).ok().and_then(|seg| {
                                d.prober.on_segment(now, &seg, &mut h.stack, &mut self.fx)
                            });
                            self.flush_fx(host);
                            if let Some(done) = done {
                                self.probe_finished(host, done);
                            }
                            return;
                        }
                    }
                }
                if rx != Rx::Ignored {
                    let Some(name) = d.iface_names.get(iface).cloned() else {
                        return;
                    };
                    self.flush_fx(host);
                    let frame = self.owned(frame);
                    self.director_input(host, Input::Frame { iface: name, frame });
                    return;
                }
            }
            Model::Server(s) => {
                if rx == Rx::Local {
                    // A TUN real server's tunnel receiver hands on what the director sent.
                    let inner = match packet::ip_addrs(&frame) {
                        Some((_, _, proto)) if proto != lvs_core::wire::ip_proto::TCP => {
                            h.stack.decapsulate(&frame)
                        }
                        _ => None,
                    };
                    let f = inner.as_deref().unwrap_or(&frame);
                    if let Ok(seg) = packet::parse_tcp(f) {
                        s.on_segment(now, &seg, &mut h.stack, &mut self.fx);
                    } else if let Ok(d) = packet::parse_udp(f) {
                        s.on_datagram(now, &d, &f[packet::ETH_HDR..], &mut h.stack, &mut self.fx);
                    } else if let Ok(p) = crate::sctp::parse_sctp(f) {
                        s.on_sctp(now, &p, &mut h.stack, &mut self.fx);
                    }
                }
            }
            Model::Client(c) => {
                if rx == Rx::Local {
                    if let Ok(seg) = packet::parse_tcp(&frame) {
                        c.on_segment(now, &seg, &mut h.stack, &mut self.fx, &mut self.reqs);
                    } else if let Ok(d) = packet::parse_udp(&frame) {
                        c.on_datagram(now, &d, &mut self.fx, &mut self.reqs);
                    } else if let Some(q) = packet::parse_port_unreachable(&frame) {
                        c.on_port_unreachable(now, q, &mut self.fx, &mut self.reqs);
                    } else if let Ok(p) = crate::sctp::parse_sctp(&frame) {
                        c.on_sctp(now, &p, &mut h.stack, &mut self.fx, &mut self.reqs);
                    }
                }
            }
            Model::Gateway => {}
        }
        self.recycle(frame);
        self.flush_fx(host);
    }

    pub(super) fn timer(&mut self, host: usize, token: u64) {
        let now = self.now;
        let Some(h) = self.hosts.get_mut(host) else {
            return;
        };
        if token & STACK_TOKEN != 0 {
            h.stack.timer(now, token, &mut self.fx);
        } else {
            match &mut h.model {
                Model::Server(s) => s.on_timer(now, token, &mut h.stack, &mut self.fx),
                Model::Client(c) => c.on_timer(
                    now,
                    token,
                    &mut h.rng,
                    &mut h.stack,
                    &mut self.fx,
                    &mut self.reqs,
                ),
                Model::Director(d) => {
                    let done = d.prober.on_timer(now, token, &mut h.stack, &mut self.fx);
                    self.flush_fx(host);
                    if let Some(done) = done {
                        self.probe_finished(host, done);
                    }
                    return;
                }
                Model::Gateway => {}
            }
        }
        self.flush_fx(host);
    }

    pub(super) fn dir(&mut self, host: usize) -> Option<&mut DirectorProc> {
        match self.hosts.get_mut(host).map(|h| &mut h.model) {
            Some(Model::Director(d)) => Some(d),
            _ => None,
        }
    }

    /// An input for the director process. Data-plane frames are handled on arrival; what
    /// keepalived's VRRP process reads from its sockets (VRRP frames, link events) waits in
    /// its inbox until the process wakes, the host's wake latency later.
    pub(super) fn director_input(&mut self, host: usize, input: Input) {
        let now = self.now;
        let Some(d) = self.dir(host) else { return };
        if d.proc.is_none() {
            return;
        }
        if d.paused {
            d.inbox.push((now, input));
            return;
        }
        let waits = match &input {
            Input::Frame { frame, .. } => packet::is_vrrp(frame),
            Input::Link { .. } => true,
            _ => false,
        };
        if waits && !d.timing.wake.is_zero() {
            d.inbox.push((now, input));
            self.arm(host);
            return;
        }
        let local = d.clock.local(now);
        let Some(p) = d.proc.as_mut() else { return };
        p.handle_input(local, input);
        self.drain(host);
    }

    /// Execute the director's outputs, then (re)arm its wake-up.
    pub(super) fn drain(&mut self, host: usize) {
        let Some(mut p) = self.dir(host).and_then(|d| d.proc.take()) else {
            return;
        };
        while let Some(out) = p.poll_output() {
            self.execute(host, out);
        }
        let next = p.poll_timeout();
        let now = self.now;
        let Some(d) = self.dir(host) else { return };
        d.proc = Some(p);
        d.asked = next.map(|local| d.clock.global(local).max(now));
        self.arm(host);
    }

    /// Schedule the process's next run: when its deadline passes or its inbox fills,
    /// whichever is first, plus the wake latency, drawn once per readiness.
    fn arm(&mut self, host: usize) {
        let Some(d) = self.dir(host) else { return };
        let first_in = d.inbox.first().map(|(t, _)| *t);
        let ready = match (d.asked, first_in) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(ready) = ready else {
            d.wake = None;
            d.ready = None;
            return;
        };
        if d.wake.is_some() && d.ready == Some(ready) {
            return;
        }
        let at = ready + draw_log(&d.timing.wake, &mut d.timing_rng);
        d.ready = Some(ready);
        d.wake = Some(at);
        let gen = d.gen;
        let host = host_u32(host);
        self.queue.push(at, Ev::Wake { host, gen });
    }

    /// The process runs (its wake-up `gen` is due): what waited in its inbox and its due
    /// timers, in the order they became ready; all of it at the time it runs.
    pub(super) fn wake(&mut self, host: usize, gen: u32) {
        let now = self.now;
        let Some(d) = self.dir(host) else { return };
        if d.gen != gen || d.paused || d.wake != Some(now) {
            return;
        }
        d.wake = None;
        d.ready = None;
        self.run_inbox(host);
    }

    /// Hand the inbox over, timers interleaved at their deadline, then the due timers.
    pub(super) fn run_inbox(&mut self, host: usize) {
        let now = self.now;
        let Some(d) = self.dir(host) else { return };
        let inbox = std::mem::take(&mut d.inbox);
        let mut timer = d.asked.filter(|a| *a <= now);
        let local = d.clock.local(now);
        let Some(p) = d.proc.as_mut() else { return };
        for (at, input) in inbox {
            if timer.is_some_and(|t| t <= at) {
                p.handle_timeout(local);
                timer = None;
            }
            if matches!(input, Input::Admin(Admin::Stop)) {
                self.stop_now(host);
                return;
            }
            p.handle_input(local, input);
        }
        p.handle_timeout(local);
        self.drain(host);
    }

    fn execute(&mut self, host: usize, out: Output) {
        match out {
            Output::Transmit { iface, frame } => {
                // Usually the very name handed over with a frame: found by pointer.
                let shared = match &self.hosts[host].model {
                    Model::Director(d) => d.iface_names.iter().position(|n| Arc::ptr_eq(n, &iface)),
                    _ => None,
                };
                let Some(idx) = shared.or_else(|| self.hosts[host].stack.iface_index(&iface))
                else {
                    let line = format!("lvs-sim: transmit on unknown interface {iface}");
                    self.trace_push(host, TraceEvent::Log { line });
                    return;
                };
                self.check_syn(host, &frame);
                let frame = self.boxed(frame);
                self.transmit(host, idx, frame);
            }
            Output::AddVip(Vip {
                iface,
                addr,
                prefix,
            }) => {
                if self.hosts[host].stack.add_vip(&iface, addr, prefix) {
                    self.inv.vip(HostId(host), addr, true);
                }
                self.trace_push(
                    host,
                    TraceEvent::AddVip {
                        iface,
                        addr: addr.to_string(),
                    },
                );
            }
            Output::DelVip(Vip { iface, addr, .. }) => {
                self.hosts[host].stack.del_vip(&iface, addr);
                let still = self.hosts[host].stack.vips().any(|v| v == addr);
                self.inv.vip(HostId(host), addr, still);
                self.trace_push(
                    host,
                    TraceEvent::DelVip {
                        iface,
                        addr: addr.to_string(),
                    },
                );
            }
            Output::Ipvs(change) => {
                self.inv.ipvs(HostId(host), &change);
                use lvs_core::ipvs::IpvsChange::{AddDest, EditDest};
                if let AddDest(svc, d) | EditDest(svc, d) = &change {
                    self.known_dests.insert((host, *svc, d.addr, d.port));
                }
                self.trace_push(
                    host,
                    TraceEvent::Ipvs(crate::record::IpvsRecord::of(&change)),
                );
            }
            Output::StartProbe(probe) => self.start_probe(host, probe),
            // The simulator runs no notify scripts; checker events leave no trace.
            Output::Notify(Notification {
                cause: NotifyCause::Checker(_),
                ..
            }) => {}
            // Its directors forward in userspace: no kernel sync daemon.
            Output::SyncDaemon(_) => {}
            // The host routes what its data plane hands back (a NAT reply) as Linux
            // forwards it: by its table, ARP as needed.
            Output::Route { frame } => {
                if let Some((_, dst, _)) = packet::ip_addrs(&frame) {
                    let now = self.now;
                    self.hosts[host]
                        .stack
                        .forward_frame(now, dst, frame, &mut self.fx);
                    self.flush_fx(host);
                }
            }
            Output::Notify(Notification {
                cause: NotifyCause::Vrrp(sc),
                ..
            }) => {
                if sc.kind == StateChangeKind::Instance {
                    self.inv.vrrp_state(HostId(host), &sc.name, sc.state);
                }
                let ev = TraceEvent::Notify {
                    kind: sc.kind,
                    name: sc.name,
                    state: sc.state,
                    priority: sc.priority,
                };
                self.trace_push(host, ev);
            }
            Output::Log { source, text } => {
                // Handling SIGTERM, the parent's own lines ("Stopped Keepalived") wait for
                // its exit, as keepalived's come after its children have gone.
                if let Some(held) = self.dir(host).and_then(|d| d.exit_logs.as_mut()) {
                    if source == LogSource::Main {
                        held.push(text);
                        return;
                    }
                }
                self.log(host, source, &text)
            }
        }
    }

    pub(super) fn log(&mut self, host: usize, source: LogSource, text: &str) {
        let gen = self.dir(host).map_or(0, |d| d.gen.saturating_sub(1));
        let name = &self.hosts[host].name;
        let line = record::format_log(self.now, name, source, record::pid(host, gen, source), text);
        self.logs.push(LogLine {
            t: self.now,
            host: name.clone(),
            line: line.clone(),
        });
        self.trace_push(host, TraceEvent::Log { line });
    }

    /// exec: a new process that runs its first step after the host's start time.
    pub(super) fn exec(&mut self, host: usize) {
        let now = self.now;
        let Some(d) = self.dir(host) else { return };
        if d.life != Life::Down {
            return;
        }
        d.gen += 1;
        d.probing.clear();
        d.life = Life::Starting;
        let gen = d.gen;
        let delay = draw(&d.timing.start, &mut d.timing_rng);
        self.trace_push(host, TraceEvent::Process { running: true });
        if delay.is_zero() {
            self.start(host, gen);
        } else {
            let host = host_u32(host);
            self.queue.push(now + delay, Ev::Ready { host, gen });
        }
    }

    /// The exec'd process `gen` runs its first step (if it is still the one starting).
    pub(super) fn start(&mut self, host: usize, gen: u32) {
        let now = self.now;
        let down: Vec<String> = match self.hosts.get(host) {
            Some(h) => (0..h.stack.ifaces().len())
                .filter(|i| !self.iface_carrier(host, *i))
                .map(|i| h.stack.ifaces()[i].spec.name.clone())
                .collect(),
            None => return,
        };
        let h = &mut self.hosts[host];
        let Model::Director(d) = &mut h.model else {
            return;
        };
        if d.gen != gen || d.life != Life::Starting {
            return;
        }
        d.life = Life::Running;
        d.prober.clear();
        d.paused = false;
        d.wake = None;
        d.asked = None;
        d.ready = None;
        d.inbox.clear();
        d.term = None;
        let env = HostEnv {
            hostname: h.name.clone(),
            ifaces: h.stack.ifaces().iter().map(|i| i.spec.clone()).collect(),
            gateway: h.stack.gateway(),
            gateway6: h.stack.gateway6(),
        };
        let mut p = (d.factory)(&env, &mut h.rng);
        let local = d.clock.local(now);
        for iface in down {
            p.handle_input(local, Input::Link { iface, up: false });
        }
        p.handle_timeout(local);
        d.proc = Some(p);
        self.drain(host);
    }

    /// SIGTERM: the process handles the signal when it next runs (the wake latency later:
    /// priority-0 adverts, VIPs removed), and exits the host's exit time after the signal;
    /// `restart` execs a new one then. A process that has not run its first step yet is
    /// gone at once; a paused one handles it at once.
    pub(super) fn terminate(&mut self, host: usize, restart: bool) {
        let now = self.now;
        let Some(d) = self.dir(host) else { return };
        match d.life {
            Life::Down => {
                if restart {
                    self.exec(host);
                }
                return;
            }
            Life::Exiting { .. } => {
                d.life = Life::Exiting { restart };
                return;
            }
            Life::Starting => {
                d.life = Life::Down;
                self.trace_push(host, TraceEvent::Process { running: false });
                if restart {
                    self.exec(host);
                }
                return;
            }
            Life::Running => {}
        }
        if let Some((_, exit_at)) = d.term {
            d.term = Some((restart, exit_at));
            return;
        }
        let exit_at = now + draw(&d.timing.exit, &mut d.timing_rng);
        d.term = Some((restart, exit_at));
        if d.paused || d.timing.wake.is_zero() {
            d.paused = false;
            self.stop_now(host);
        } else {
            d.inbox.push((now, Input::Admin(Admin::Stop)));
            self.arm(host);
        }
    }

    /// The process handles its SIGTERM: `Admin::Stop`, its outputs executed, then it takes
    /// no input until it exits.
    fn stop_now(&mut self, host: usize) {
        let now = self.now;
        let Some(d) = self.dir(host) else { return };
        let local = d.clock.local(now);
        d.exit_logs = Some(Vec::new());
        if let Some(p) = d.proc.as_mut() {
            p.handle_input(local, Input::Admin(Admin::Stop));
        }
        self.drain(host);
        let Some(d) = self.dir(host) else { return };
        let (restart, exit_at) = d.term.take().unwrap_or((false, now));
        d.proc = None;
        d.wake = None;
        d.asked = None;
        d.ready = None;
        d.inbox.clear();
        d.prober.clear();
        d.life = Life::Exiting { restart };
        let gen = d.gen;
        self.inv.process_gone(HostId(host));
        if exit_at <= now {
            self.exited(host, gen);
        } else {
            let host = host_u32(host);
            self.queue.push(exit_at, Ev::Exit { host, gen });
        }
    }

    /// The SIGTERM'd process `gen` exits (if it is still the one exiting).
    pub(super) fn exited(&mut self, host: usize, gen: u32) {
        let Some(d) = self.dir(host) else { return };
        let Life::Exiting { restart } = d.life else {
            return;
        };
        if d.gen != gen {
            return;
        }
        d.life = Life::Down;
        for text in d.exit_logs.take().unwrap_or_default() {
            self.log(host, LogSource::Main, &text);
        }
        self.trace_push(host, TraceEvent::Process { running: false });
        if restart {
            self.exec(host);
        }
    }

    pub(super) fn kill(&mut self, host: usize) {
        let Some(d) = self.dir(host) else { return };
        let life = d.life;
        d.life = Life::Down;
        d.proc = None;
        d.wake = None;
        d.asked = None;
        d.ready = None;
        d.inbox.clear();
        d.term = None;
        d.prober.clear();
        d.exit_logs = None;
        d.paused = false;
        match life {
            Life::Down => return,
            // Its stop has run already: only the exit is brought forward.
            Life::Exiting { .. } | Life::Starting => {
                self.trace_push(host, TraceEvent::Process { running: false });
                return;
            }
            Life::Running => {}
        }
        let keep = d.keep_vips_on_kill;
        let vips: Vec<IpAddr> = self.hosts[host].stack.vips().collect();
        // Nobody claims the addresses any more; with `keep` (Linux) they stay configured, so
        // the host's kernel still answers ARP for them until the next start removes them.
        for v in &vips {
            self.inv.vip(HostId(host), *v, false);
        }
        if !keep {
            self.hosts[host].stack.clear_vips();
            for v in vips {
                self.trace_push(
                    host,
                    TraceEvent::DelVip {
                        iface: "*".into(),
                        addr: v.to_string(),
                    },
                );
            }
        }
        self.inv.process_gone(HostId(host));
        self.trace_push(host, TraceEvent::Process { running: false });
    }
}
