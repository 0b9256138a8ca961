//! Test harness in quinn-proto's `Pair` style: a few [`VrrpRouter`]s, one fake network that
//! delivers adverts between them after a fixed latency, and shared virtual time.
//!
//! The network is one L2 segment per interface name (every node's `eth0` hears every other
//! node's `eth0`), so the seed's WAN (eth0) and LAN (eth1) are two segments.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use super::state::{StateChangeKind, VrrpState};
use crate::time::Instant;

use super::router::{RouterConfig, Vip, VrrpInput, VrrpOutput, VrrpRouter};

/// One simulated director.
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) cfg: RouterConfig,
    pub(crate) router: Option<VrrpRouter>,
    pub(crate) links_down: BTreeSet<String>,
    /// Exit status the node's `vrrp_script`s return when run.
    pub(crate) script_status: BTreeMap<String, i32>,
    /// Installed virtual addresses.
    pub(crate) vips: BTreeSet<(String, IpAddr)>,
    /// Everything the node emitted, with the time.
    pub(crate) trace: Vec<(Instant, VrrpOutput)>,
}

impl Node {
    fn owns(&self, addr: IpAddr) -> bool {
        self.cfg
            .instances
            .iter()
            .any(|i| i.primary_ip == addr || i.src_ip == Some(addr))
    }

    fn addr_on(&self, iface: &str) -> Option<IpAddr> {
        self.cfg
            .instances
            .iter()
            .find(|i| i.iface == iface)
            .map(|i| i.saddr())
    }

    /// Log lines with their time.
    pub(crate) fn logs(&self) -> Vec<(Instant, String)> {
        self.trace
            .iter()
            .filter_map(|(t, o)| match o {
                VrrpOutput::Log { text } => Some((*t, text.clone())),
                _ => None,
            })
            .collect()
    }

    /// First time a log line equal to `text` appeared.
    pub(crate) fn logged(&self, text: &str) -> Option<Instant> {
        self.logs()
            .into_iter()
            .find(|(_, l)| l == text)
            .map(|(t, _)| t)
    }

    /// Times at which instance `name` entered `state` (from notify outputs).
    pub(crate) fn entered(&self, name: &str, state: VrrpState) -> Vec<Instant> {
        self.trace
            .iter()
            .filter_map(|(t, o)| match o {
                VrrpOutput::Notify { change: c, .. }
                    if c.kind == StateChangeKind::Instance
                        && c.name == name
                        && c.state == state =>
                {
                    Some(*t)
                }
                _ => None,
            })
            .collect()
    }

    /// Current state of instance `name` (`Stop` when the node is down).
    pub(crate) fn state(&self, name: &str) -> VrrpState {
        self.router
            .as_ref()
            .and_then(|r| r.instance(name))
            .map_or(VrrpState::Stop, |i| i.state())
    }
}

struct Packet {
    at: Instant,
    seq: u64,
    to: usize,
    input: VrrpInput,
}

/// The fake network and clock.
pub(crate) struct Net {
    pub(crate) nodes: Vec<Node>,
    pub(crate) now: Instant,
    pub(crate) latency: Duration,
    in_flight: Vec<Packet>,
    seq: u64,
    /// Unordered node pairs that cannot hear each other.
    cut: BTreeSet<(usize, usize)>,
}

const MAX_STEPS: usize = 1_000_000;

impl Net {
    /// Start every node at time zero.
    pub(crate) fn new(nodes: Vec<(&str, RouterConfig)>, latency: Duration) -> Self {
        let mut net = Net {
            nodes: Vec::new(),
            now: Instant::ZERO,
            latency,
            in_flight: Vec::new(),
            seq: 0,
            cut: BTreeSet::new(),
        };
        for (name, cfg) in nodes {
            let mut router = VrrpRouter::new(cfg.clone()).expect("valid test config");
            router.start(Instant::ZERO);
            net.nodes.push(Node {
                name: name.to_string(),
                cfg,
                router: Some(router),
                links_down: BTreeSet::new(),
                script_status: BTreeMap::new(),
                vips: BTreeSet::new(),
                trace: Vec::new(),
            });
        }
        for n in 0..net.nodes.len() {
            net.drain(n);
        }
        net
    }

    fn blocked(&self, a: usize, b: usize) -> bool {
        self.cut.contains(&(a.min(b), a.max(b)))
    }

    /// Cut every link between the nodes of `side` and the others.
    pub(crate) fn partition(&mut self, side: &[usize]) {
        for &a in side {
            for b in 0..self.nodes.len() {
                if !side.contains(&b) {
                    self.cut.insert((a.min(b), a.max(b)));
                }
            }
        }
    }

    /// Remove all partitions.
    pub(crate) fn heal(&mut self) {
        self.cut.clear();
    }

    pub(crate) fn drain(&mut self, n: usize) {
        loop {
            let Some(out) = self.nodes[n].router.as_mut().and_then(|r| r.poll_output()) else {
                return;
            };
            let now = self.now;
            match &out {
                VrrpOutput::SendAdvert {
                    iface,
                    src,
                    dst,
                    advert,
                } => {
                    let src = src.or_else(|| self.nodes[n].addr_on(iface));
                    if let (Some(src), false) = (src, self.nodes[n].links_down.contains(iface)) {
                        for to in 0..self.nodes.len() {
                            let peer = &self.nodes[to];
                            let hears = to != n
                                && !self.blocked(n, to)
                                && peer.addr_on(iface).is_some()
                                && !peer.links_down.contains(iface)
                                && (dst.is_multicast() || peer.owns(*dst));
                            if hears {
                                self.seq += 1;
                                self.in_flight.push(Packet {
                                    at: now + self.latency,
                                    seq: self.seq,
                                    to,
                                    input: VrrpInput::Advert {
                                        iface: iface.clone(),
                                        src,
                                        dst: *dst,
                                        advert: advert.clone(),
                                    },
                                });
                            }
                        }
                    }
                }
                VrrpOutput::AddVip(Vip { iface, addr, .. }) => {
                    self.nodes[n].vips.insert((iface.clone(), *addr));
                }
                VrrpOutput::DelVip(Vip { iface, addr, .. }) => {
                    self.nodes[n].vips.remove(&(iface.clone(), *addr));
                }
                VrrpOutput::RunScript { script } => {
                    // Scripts finish instantly; their answer is queued like a packet.
                    let status = self.nodes[n]
                        .script_status
                        .get(script)
                        .copied()
                        .unwrap_or(0);
                    self.seq += 1;
                    self.in_flight.push(Packet {
                        at: now,
                        seq: self.seq,
                        to: n,
                        input: VrrpInput::ScriptResult {
                            script: script.clone(),
                            status,
                        },
                    });
                }
                VrrpOutput::SendGarp { .. }
                | VrrpOutput::Notify { .. }
                | VrrpOutput::Log { .. } => {}
            }
            self.nodes[n].trace.push((now, out));
        }
    }

    fn next_event(&self) -> Option<Instant> {
        let timers = self
            .nodes
            .iter()
            .filter_map(|n| n.router.as_ref().and_then(|r| r.poll_timeout()));
        let packets = self.in_flight.iter().map(|p| p.at);
        timers.chain(packets).min()
    }

    /// Run every event up to and including `until`, then set the clock to `until`.
    pub(crate) fn run_until(&mut self, until: Instant) {
        for _ in 0..MAX_STEPS {
            match self.next_event() {
                Some(t) if t <= until => self.step(t),
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
        panic!("network did not go idle before {until}");
    }

    /// Run for `d` of virtual time.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn step(&mut self, t: Instant) {
        self.now = t;
        let mut due: Vec<Packet> = Vec::new();
        let mut i = 0;
        while i < self.in_flight.len() {
            if self.in_flight[i].at <= t {
                due.push(self.in_flight.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|p| p.seq);
        for p in due {
            if let Some(r) = self.nodes[p.to].router.as_mut() {
                r.handle_input(t, p.input);
                self.drain(p.to);
            }
        }
        for n in 0..self.nodes.len() {
            let due = self.nodes[n]
                .router
                .as_ref()
                .and_then(|r| r.poll_timeout())
                .is_some_and(|d| d <= t);
            if due {
                if let Some(r) = self.nodes[n].router.as_mut() {
                    r.handle_timeout(t);
                }
                self.drain(n);
            }
        }
    }

    /// SIGKILL: the node vanishes without a word.
    pub(crate) fn kill(&mut self, n: usize) {
        self.nodes[n].router = None;
        self.nodes[n].vips.clear();
    }

    /// SIGTERM: priority-0 adverts go out, then the node is gone.
    pub(crate) fn stop(&mut self, n: usize) {
        if let Some(r) = self.nodes[n].router.as_mut() {
            r.handle_input(self.now, VrrpInput::Stop);
        }
        self.drain(n);
        self.nodes[n].router = None;
    }

    /// Start the node again with its configuration.
    pub(crate) fn restart(&mut self, n: usize) {
        let mut r = VrrpRouter::new(self.nodes[n].cfg.clone()).expect("valid test config");
        r.start(self.now);
        self.nodes[n].router = Some(r);
        self.drain(n);
    }

    /// Carrier change on one node's interface.
    pub(crate) fn set_link(&mut self, n: usize, iface: &str, up: bool) {
        if up {
            self.nodes[n].links_down.remove(iface);
        } else {
            self.nodes[n].links_down.insert(iface.to_string());
        }
        if let Some(r) = self.nodes[n].router.as_mut() {
            r.handle_input(
                self.now,
                VrrpInput::Link {
                    iface: iface.to_string(),
                    up,
                },
            );
        }
        self.drain(n);
    }

    /// Nodes where instance `name` is MASTER.
    pub(crate) fn masters(&self, name: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| self.nodes[n].state(name) == VrrpState::Master)
            .collect()
    }

    /// All log lines of all nodes, time-ordered, as `time node line`.
    pub(crate) fn timeline(&self) -> String {
        let mut lines: Vec<(Instant, usize, usize, String)> = Vec::new();
        for (n, node) in self.nodes.iter().enumerate() {
            for (k, (t, text)) in node.logs().into_iter().enumerate() {
                lines.push((
                    t,
                    n,
                    k,
                    format!("{:>7} {:<9} {text}", t.to_string(), node.name),
                ));
            }
        }
        lines.sort();
        let mut s = String::new();
        for (_, _, _, l) in lines {
            let _ = writeln!(s, "{l}");
        }
        s
    }
}

/// The seed's configuration for one director (keepalived.conf.master / .backup): sync group VGM
/// of WAN (VRID 50 on eth0) and LAN (VRID 60 on eth1), advert_int 5, PASS 1111.
pub(crate) fn seed_config(master: bool) -> RouterConfig {
    use super::instance::{InitialState, InstanceConfig, VirtualAddress};
    use super::sync_group::SyncGroupConfig;
    use super::wire::Auth;
    let host = if master { 114 } else { 115 };
    let state = if master {
        InitialState::Master
    } else {
        InitialState::Backup
    };
    let mut wan = InstanceConfig::new("WAN", "eth0", 50, IpAddr::from([223, 202, 22, host]));
    let mut lan = InstanceConfig::new("LAN", "eth1", 60, IpAddr::from([192, 168, 22, host]));
    for (inst, prio, vip) in [
        (
            &mut wan,
            if master { 220 } else { 120 },
            [223, 202, 22, 118],
        ),
        (
            &mut lan,
            if master { 200 } else { 100 },
            [192, 168, 22, 118],
        ),
    ] {
        inst.state = Some(state);
        inst.priority = prio;
        inst.advert_int = Duration::from_secs(5);
        inst.auth = Auth::Pass(*b"1111\0\0\0\0");
        inst.vips = vec![VirtualAddress::host(IpAddr::from(vip))];
    }
    RouterConfig {
        instances: vec![wan, lan],
        sync_groups: vec![SyncGroupConfig {
            name: "VGM".into(),
            members: vec!["WAN".into(), "LAN".into()],
            notify: Default::default(),
        }],
        scripts: Vec::new(),
    }
}
