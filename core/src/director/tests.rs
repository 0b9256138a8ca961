//! Two seed directors on one fake wire: election, takeover after a silent death, probes.

use std::net::IpAddr;

use rand_chacha::rand_core::SeedableRng;

use super::*;
use crate::check::probe::ProbeKind;
use crate::config;
use crate::time::Instant;

const MASTER_CONF: &str = include_str!("../../../fixtures/seed/keepalived.conf.master");
const BACKUP_CONF: &str = include_str!("../../../fixtures/seed/keepalived.conf.backup");

fn env(last: u8) -> NodeEnv {
    NodeEnv {
        ifaces: vec![
            Iface {
                name: "eth0".into(),
                mac: [2, 0, 0, 0, 0, last],
                addrs: vec![IpAddr::from([223, 202, 22, last])],
            },
            Iface {
                name: "eth1".into(),
                mac: [2, 0, 0, 0, 1, last],
                addrs: vec![IpAddr::from([192, 168, 22, last])],
            },
        ],
        routes: Vec::new(),
    }
}

fn director(conf: &str, name: &str, last: u8) -> Director {
    let parsed = config::parse_str(name, conf);
    let cfg = parsed.config.expect("seed config loads");
    let dc = DirectorConfig::from_keepalived(&cfg, &env(last)).expect("maps onto the host");
    let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(u64::from(last)));
    Director::new(dc, env(last), rng).expect("starts")
}

/// Both directors, a lossless zero-latency wire per interface name, and every
/// TCP probe succeeding. `alive[i]` false silences node i (SIGKILL).
struct Pair {
    nodes: Vec<Director>,
    alive: Vec<bool>,
    now: Instant,
    logs: Vec<(usize, Instant, String)>,
}

impl Pair {
    fn new() -> Self {
        let now = Instant::ZERO;
        Pair {
            nodes: vec![
                director(MASTER_CONF, "keepalived.conf.master", 114),
                director(BACKUP_CONF, "keepalived.conf.backup", 115),
            ],
            alive: vec![true, true],
            now,
            logs: Vec::new(),
        }
    }

    fn pump(&mut self) {
        let mut queue = Vec::new();
        for (i, n) in self.nodes.iter_mut().enumerate() {
            while let Some(o) = n.poll_output() {
                if !self.alive[i] {
                    continue;
                }
                match o {
                    Output::Transmit { iface, frame } => queue.push((i, iface, frame)),
                    Output::StartProbe(p) => {
                        if let ProbeKind::Tcp { .. } = p.kind {
                            queue.push((i, IfaceName::from(""), p.id.0.to_be_bytes().to_vec()));
                        }
                    }
                    Output::Log { text, .. } => self.logs.push((i, self.now, text)),
                    _ => {}
                }
            }
        }
        for (from, iface, bytes) in queue {
            if iface.is_empty() {
                let id = u64::from_be_bytes(bytes.try_into().unwrap_or_default());
                self.nodes[from].handle_input(
                    self.now,
                    Input::ProbeDone {
                        id: crate::check::probe::ProbeId(id),
                        result: crate::check::probe::ProbeResult::Connected,
                    },
                );
                continue;
            }
            for to in 0..self.nodes.len() {
                if to != from && self.alive[to] {
                    self.nodes[to].handle_input(
                        self.now,
                        Input::Frame {
                            iface: iface.clone(),
                            frame: bytes.clone(),
                        },
                    );
                }
            }
        }
    }

    fn run_until(&mut self, end: Instant) {
        loop {
            self.pump();
            let next = (0..self.nodes.len())
                .filter(|&i| self.alive[i])
                .filter_map(|i| self.nodes[i].poll_timeout())
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = t.max(self.now);
                    for i in 0..self.nodes.len() {
                        if self.alive[i] {
                            self.nodes[i].handle_timeout(self.now);
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn state(&self, node: usize, inst: &str) -> VrrpState {
        self.nodes[node]
            .vrrp()
            .and_then(|r| r.instance(inst))
            .map(|i| i.state())
            .unwrap_or(VrrpState::Init)
    }

    fn first_log(&self, node: usize, needle: &str) -> Option<Instant> {
        self.logs
            .iter()
            .find(|(n, _, t)| *n == node && t.contains(needle))
            .map(|(_, at, _)| *at)
    }
}

#[test]
fn seed_pair_elects_the_master_and_the_backup_takes_over_after_a_kill() {
    let mut p = Pair::new();
    p.run_until(Instant::from_secs(30));
    assert_eq!(p.state(0, "WAN"), VrrpState::Master);
    assert_eq!(p.state(0, "LAN"), VrrpState::Master);
    assert_eq!(p.state(1, "WAN"), VrrpState::Backup);
    assert_eq!(p.state(1, "LAN"), VrrpState::Backup);
    assert!(p.first_log(0, "(WAN) Entering MASTER STATE").is_some());
    assert!(p.first_log(1, "(WAN) Entering MASTER STATE").is_none());

    // SIGKILL at 30 s: the backup waits Master_Down_Interval from the last advert it saw.
    p.alive[0] = false;
    p.run_until(Instant::from_secs(60));
    assert_eq!(p.state(1, "WAN"), VrrpState::Master);
    assert_eq!(
        p.state(1, "LAN"),
        VrrpState::Master,
        "the sync group moves LAN along"
    );
    let took = p
        .first_log(1, "(WAN) Entering MASTER STATE")
        .expect("backup took over");
    assert!(took > Instant::from_secs(30) && took <= Instant::from_secs(30 + 18));
}

#[test]
fn seed_master_installs_the_virtual_service_and_probes_both_real_servers() {
    let mut d = director(MASTER_CONF, "m", 114);
    let mut adds = Vec::new();
    let mut probes = Vec::new();
    let mut now = Instant::ZERO;
    for _ in 0..20 {
        while let Some(o) = d.poll_output() {
            match o {
                Output::Ipvs(c) => adds.push(c),
                Output::StartProbe(p) => probes.push(p),
                _ => {}
            }
        }
        match d.poll_timeout() {
            Some(t) if t < Instant::from_secs(10) => {
                now = t;
                d.handle_timeout(now);
            }
            _ => break,
        }
    }
    assert!(
        matches!(adds.first(), Some(crate::ipvs::IpvsChange::AddService(s)) if s.scheduler == crate::ipvs::sched::SchedKind::Wrr && s.persistence == Some(20))
    );
    assert_eq!(adds.len(), 3, "one service and two real servers: {adds:?}");
    let targets: Vec<_> = probes
        .iter()
        .filter_map(|p| match &p.kind {
            ProbeKind::Tcp { target, .. } => Some(target.to_string()),
            _ => None,
        })
        .collect();
    assert!(
        targets.contains(&"223.202.22.116:80".to_string()),
        "{targets:?}"
    );
    assert!(
        targets.contains(&"223.202.22.117:80".to_string()),
        "{targets:?}"
    );
    let _ = now;
    // The guide's table: newest destination first, wrr, persistence 20 (nat_mask is
    // unknown to keepalived 2.2, so persistence is per client address).
    insta::assert_snapshot!(d.ipvsadm_list());
}

/// keepalived drops a vrrp_script without a `script` line and ignores the track_script lines
/// naming it (fixtures/keepalived-t/kept-checks.txt): the director starts, tracking the rest.
#[test]
fn a_removed_script_is_not_tracked() {
    let parsed = config::parse_str(
        "kept-checks.conf",
        include_str!("../../../fixtures/keepalived-t/kept-checks.conf"),
    );
    let cfg = parsed.config.expect("loads");
    let names: Vec<&str> = cfg
        .vrrp_scripts
        .iter()
        .map(|s| s.name.value.as_str())
        .collect();
    assert_eq!(names, vec!["chk_ok"]);
    let env = NodeEnv {
        ifaces: vec![Iface {
            name: "lvsdt-k0".into(),
            mac: [2, 0, 0, 0, 0, 2],
            addrs: vec![IpAddr::from([198, 18, 0, 2])],
        }],
        routes: Vec::new(),
    };
    let dc = DirectorConfig::from_keepalived(&cfg, &env).expect("maps onto the host");
    let tracked: Vec<&str> = dc.vrrp.instances[0]
        .track_scripts
        .iter()
        .map(|t| t.script.as_str())
        .collect();
    assert_eq!(tracked, vec!["chk_ok"]);
    let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(2));
    assert!(Director::new(dc, env, rng).is_ok());
}
