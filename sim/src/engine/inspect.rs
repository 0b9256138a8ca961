//! Reading the world: hosts, stacks, models, VIP holders, logs, metrics, trace, invariants;
//! and the few per-host settings tests poke.

use std::net::IpAddr;
use std::time::Duration;

use lvs_core::ipvs::table::Ipvs;
use lvs_core::Instant;

use crate::client::Client;
use crate::director::ProcessTiming;
use crate::invariants::{InvariantConfig, Invariants, Violation};
use crate::record::{LogLine, Metrics, TraceEntry, TraceHeader, TraceTail, TraceWriter};
use crate::server::RealServer;
use crate::stack::Stack;
use crate::HostId;

use super::world::Model;
use super::Sim;

impl Sim {
    /// Host id by name.
    pub fn host_id(&self, name: &str) -> Option<HostId> {
        self.hosts.iter().position(|h| h.name == name).map(HostId)
    }

    /// A host's name.
    pub fn host_name(&self, host: HostId) -> &str {
        self.hosts.get(host.0).map_or("?", |h| h.name.as_str())
    }

    /// A host's IP stack (addresses, VIPs, ARP cache, counters).
    pub fn stack(&self, host: HostId) -> Option<&Stack> {
        self.hosts.get(host.0).map(|h| &h.stack)
    }

    /// A host's IP stack, to change sysctls (`arp_timeout`, `arp_ignore`...).
    pub fn stack_mut(&mut self, host: HostId) -> Option<&mut Stack> {
        self.revert_cuts();
        // The caller may change interface state: read it back before the next frame moves.
        self.links_stale = true;
        self.hosts.get_mut(host.0).map(|h| &mut h.stack)
    }

    /// A real server's model.
    pub fn server(&self, host: HostId) -> Option<&RealServer> {
        match &self.hosts.get(host.0)?.model {
            Model::Server(s) => Some(s),
            _ => None,
        }
    }

    /// A client's model.
    pub fn client(&self, host: HostId) -> Option<&Client> {
        match &self.hosts.get(host.0)?.model {
            Model::Client(c) => Some(c),
            _ => None,
        }
    }

    /// True when the host's director process exists (running or paused).
    pub fn director_alive(&self, host: HostId) -> bool {
        matches!(self.hosts.get(host.0).map(|h| &h.model), Some(Model::Director(d)) if d.proc.is_some())
    }

    /// The running director's IPVS table as `ipvsadm -L -n` prints it (None: no process, or
    /// the process keeps no table).
    pub fn ipvsadm_list(&self, host: HostId) -> Option<String> {
        match &self.hosts.get(host.0)?.model {
            Model::Director(d) => d.proc.as_ref()?.ipvsadm_list(),
            _ => None,
        }
    }

    /// What `show` prints on `host` now: `ip addr` from its stack (the addresses stay when
    /// keepalived dies); the ipvsadm views from the running director's table, read at the
    /// director's own clock (None: no process, or no table).
    pub fn show(&self, host: HostId, show: lvs_scenarios::Show) -> Option<String> {
        use lvs_core::ipvs::list;
        use lvs_scenarios::Show;
        let h = self.hosts.get(host.0)?;
        if show == Show::Addresses {
            return Some(h.stack.ip_addr(|i| self.iface_carrier(host.0, i)));
        }
        let Model::Director(d) = &h.model else {
            return None;
        };
        let ipvs = d.proc.as_ref()?.ipvs()?;
        let local = d.clock.local(self.now);
        Some(match show {
            Show::List => list::list_numeric(ipvs.services()),
            Show::Stats => list::list_stats(ipvs.services()),
            Show::Rate => list::list_rate(ipvs, local),
            Show::Connections => list::list_connections(&ipvs.conn_infos(), local),
            Show::Addresses => unreachable!("answered from the stack above"),
        })
    }

    /// The running director's IPVS table (None: no process, or the process keeps none).
    pub fn ipvs(&self, host: HostId) -> Option<&Ipvs> {
        match &self.hosts.get(host.0)?.model {
            Model::Director(d) => d.proc.as_ref()?.ipvs(),
            _ => None,
        }
    }

    /// Hosts holding `vip` on an interface.
    pub fn vip_holders(&self, vip: impl Into<IpAddr>) -> Vec<HostId> {
        let vip = vip.into();
        (0..self.hosts.len())
            .filter(|h| self.hosts[*h].stack.vips().any(|v| v == vip))
            .map(HostId)
            .collect()
    }

    /// Hosts whose director reports MASTER for `instance`.
    pub fn masters(&self, instance: &str) -> Vec<HostId> {
        self.inv.masters(instance)
    }

    /// Request metrics; every real server is listed in the per-server share.
    pub fn metrics(&self) -> Metrics {
        let mut m = self.metrics.clone();
        m.requests_sent = self
            .hosts
            .iter()
            .map(|h| {
                if let Model::Client(c) = &h.model {
                    c.sent
                } else {
                    0
                }
            })
            .sum();
        for h in &self.hosts {
            if let Model::Server(_) = h.model {
                m.per_server.entry(h.name.clone()).or_insert(0);
            }
        }
        m
    }

    /// All log lines, in time order.
    pub fn logs(&self) -> &[LogLine] {
        &self.logs
    }

    /// One host's log, one line each.
    pub fn log_text(&self, host: HostId) -> String {
        let name = self.host_name(host);
        let mut s = String::new();
        for l in self.logs.iter().filter(|l| l.host == name) {
            s.push_str(&l.line);
            s.push('\n');
        }
        s
    }

    /// Safety and liveness violations so far.
    pub fn violations(&self) -> &[Violation] {
        &self.inv.violations
    }

    /// The invariant checker (tolerances, liveness results).
    pub fn invariants(&self) -> &Invariants {
        &self.inv
    }

    /// Tolerances of the safety checks.
    pub fn invariant_config_mut(&mut self) -> &mut InvariantConfig {
        &mut self.inv.config
    }

    /// State a liveness bound: converged (one MASTER per instance per part, one holder per VIP,
    /// every gateway's ARP entry for a VIP pointing at its holder, every running director's
    /// IPVS table showing its real servers as they are) within `within` after `after`.
    pub fn expect_converged(&mut self, after: Instant, within: Duration) {
        self.inv.expect_converged(after, within);
    }

    /// True when the cluster is converged now: one MASTER per instance in every connected
    /// part, one holder per VIP, gateways' ARP entries for VIPs pointing at the holder, and
    /// settled IPVS tables (see `tables_settled`).
    pub fn converged(&self) -> bool {
        self.gateways_agree() && self.tables_settled() && self.inv.converged(&self.parts())
    }

    /// Run until [`Sim::converged`] holds or `within` has passed; the time it took, if it did.
    pub fn run_until_converged(&mut self, within: Duration) -> Option<Duration> {
        let start = self.now;
        let deadline = start + within;
        loop {
            if self.converged() {
                return Some(self.now - start);
            }
            match self.queue.peek_time() {
                Some(t) if t <= deadline => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return None;
                }
            }
        }
    }

    /// The trace entries.
    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    /// The trace as JSON, schema `lvsd-trace` version [`crate::record::TRACE_VERSION`]
    /// (scenarios/TRACE.md, scenarios/trace.schema.json).
    pub fn trace_json(&self) -> String {
        let mut w = TraceWriter::begin(Vec::new(), &self.trace_header());
        for e in &self.trace {
            w.entry(e);
        }
        let m = self.metrics();
        let out = w.finish(&self.trace_tail(&m)).unwrap_or_default();
        String::from_utf8(out).unwrap_or_default()
    }

    /// What the trace says before its events.
    pub(super) fn trace_header(&self) -> TraceHeader<'_> {
        TraceHeader {
            schema: "lvsd-trace",
            version: crate::record::TRACE_VERSION,
            lvsd: env!("CARGO_PKG_VERSION"),
            scenario: &self.scenario,
            seed: self.seed,
        }
    }

    /// What the trace says after its events, now.
    pub(super) fn trace_tail<'a>(&'a self, m: &'a Metrics) -> TraceTail<'a> {
        TraceTail {
            end_ns: self.now.as_nanos(),
            metrics: m,
            jain_index: m.jain_index(),
            failover_ns: m.failover_time().map(|d| d.as_nanos()),
            violations: &self.inv.violations,
        }
    }

    /// Write the JSON trace to `out` as the run goes from now on (the entries so far first):
    /// answered requests are written and not kept, so memory does not grow with them.
    /// [`Sim::finish_trace`] closes it.
    pub fn stream_trace(&mut self, out: Box<dyn std::io::Write>) {
        let mut w = TraceWriter::begin(out, &self.trace_header());
        for e in &self.trace {
            w.entry(e);
        }
        self.trace_sink = Some(w);
    }

    /// Close the trace [`Sim::stream_trace`] writes (None when none is being written).
    pub fn finish_trace(&mut self) -> Option<std::io::Result<()>> {
        let w = self.trace_sink.take()?;
        let m = self.metrics();
        Some(w.finish(&self.trace_tail(&m)).map(drop))
    }

    /// Names the run in its trace (the scenario's `name`).
    pub fn set_scenario_name(&mut self, name: &str) {
        self.scenario = name.to_string();
    }

    /// An SVG timeline of the run so far (requests from the bins when
    /// [`Sim::bin_requests_for_svg`] was called, else from the trace).
    pub fn svg(&self) -> String {
        let hosts = self
            .hosts
            .iter()
            .map(|h| crate::svg::HostInfo {
                name: h.name.clone(),
                role: match h.model {
                    Model::Director(_) => crate::svg::Role::Director,
                    Model::Server(_) => crate::svg::Role::RealServer,
                    Model::Client(_) => crate::svg::Role::Client,
                    Model::Gateway => crate::svg::Role::Gateway,
                },
                addrs: h
                    .stack
                    .ifaces()
                    .iter()
                    .flat_map(|i| i.configured())
                    .collect(),
                macs: h.stack.ifaces().iter().map(|i| i.spec.mac).collect(),
            })
            .collect();
        let ctx = crate::svg::Context {
            scenario: self.scenario.clone(),
            seed: self.seed,
            end: self.now,
            hosts,
        };
        crate::svg::render(&self.trace, &self.timeline, &ctx)
    }

    /// Bin every request from now on for a timeline ending at `end`, so [`Sim::svg`] draws
    /// them without the trace keeping them (`trace_requests` can stay off).
    pub fn bin_requests_for_svg(&mut self, end: Instant) {
        self.timeline.bin_requests(end);
    }

    /// What the timeline gathered so far (gateway ARP changes, request bins).
    pub fn timeline(&self) -> &crate::svg::Timeline {
        &self.timeline
    }

    /// Exit status the simulator reports for a script probe `command` on director `host`.
    pub fn set_script_exit(&mut self, host: HostId, command: &str, status: Option<i32>) {
        if let Some(Model::Director(d)) = self.hosts.get_mut(host.0).map(|h| &mut h.model) {
            d.scripts.insert(command.to_string(), status);
        }
    }

    /// How long the director's process takes on its host (default: `ProcessTiming::INSTANT`).
    pub fn set_process_timing(&mut self, host: HostId, timing: ProcessTiming) {
        if let Some(Model::Director(d)) = self.hosts.get_mut(host.0).map(|h| &mut h.model) {
            d.timing = timing;
        }
    }

    /// Keep VIPs on the interfaces when the director is SIGKILLed. The default, as on Linux
    /// (`scenarios/reference/keepalived-2.2-sigkill.log`): the addresses outlive keepalived
    /// and the next start removes them; `false` drops them with the process.
    pub fn set_keep_vips_on_kill(&mut self, host: HostId, keep: bool) {
        if let Some(Model::Director(d)) = self.hosts.get_mut(host.0).map(|h| &mut h.model) {
            d.keep_vips_on_kill = keep;
        }
    }
}
