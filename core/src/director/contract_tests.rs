//! The driver contract with fake time: notify scripts, reload, link and address events,
//! kernel data plane, failures coming back, counters.

use std::net::IpAddr;
use std::time::Duration;

use rand_chacha::rand_core::SeedableRng;

use super::*;
use crate::check::probe::{ProbeKind, ProbeResult};
use crate::config;
use crate::ipvs::stats::IpvsStats;
use crate::ipvs::IpvsChange;
use crate::time::Instant;
use crate::vrrp::wire::{self, Advert, Auth, FrameParams, Version};

const CONF: &str = r#"
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        10.0.0.100
    }
    notify_master "/etc/keepalived/to_master.sh now"
    notify "/etc/keepalived/notify.sh"
}
virtual_server 10.0.0.100 80 {
    delay_loop 5
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
"#;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn env() -> NodeEnv {
    NodeEnv {
        ifaces: vec![Iface {
            name: "eth0".into(),
            mac: MAC,
            addrs: vec![ip("10.0.0.1")],
        }],
        routes: Vec::new(),
    }
}

fn config_of(text: &str) -> DirectorConfig {
    let parsed = config::parse_str("keepalived.conf", text);
    let cfg = parsed.config.expect("config loads");
    DirectorConfig::from_keepalived(&cfg, &env()).expect("maps onto the host")
}

/// One director, every TCP probe answered at once with `Connected`; outputs are kept.
struct One {
    d: Director,
    now: Instant,
    out: Vec<(Instant, Output)>,
    /// What TCP probes answer.
    probe: ProbeResult,
}

impl One {
    fn new(mode: DataPlane) -> Self {
        Self::with(CONF, mode)
    }

    fn with(conf: &str, mode: DataPlane) -> Self {
        let mut cfg = config_of(conf);
        cfg.data_plane = mode;
        let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(7));
        One {
            d: Director::new(cfg, env(), rng).expect("starts"),
            now: Instant::ZERO,
            out: Vec::new(),
            probe: ProbeResult::Connected,
        }
    }

    fn pump(&mut self) {
        while let Some(o) = self.d.poll_output() {
            if let Output::StartProbe(p) = &o {
                if let ProbeKind::Tcp { .. } = p.kind {
                    let id = p.id;
                    self.out.push((self.now, o));
                    self.d.handle_input(
                        self.now,
                        Input::ProbeDone {
                            id,
                            result: self.probe.clone(),
                        },
                    );
                    continue;
                }
            }
            self.out.push((self.now, o));
        }
    }

    fn input(&mut self, i: Input) {
        self.d.handle_input(self.now, i);
        self.pump();
    }

    fn run_until(&mut self, end: Instant) {
        self.pump();
        while let Some(t) = self.d.poll_timeout().filter(|t| *t <= end) {
            self.now = t.max(self.now);
            self.d.handle_timeout(self.now);
            self.pump();
        }
        self.now = end;
    }

    fn state(&self) -> VrrpState {
        self.d
            .vrrp()
            .and_then(|r| r.instance("VI_1"))
            .map_or(VrrpState::Init, |i| i.state())
    }

    /// Outputs since `t`.
    fn since(&self, t: Instant) -> Vec<&Output> {
        self.out
            .iter()
            .filter(|(at, _)| *at >= t)
            .map(|(_, o)| o)
            .collect()
    }

    fn logs_since(&self, t: Instant) -> Vec<String> {
        self.since(t)
            .into_iter()
            .filter_map(|o| match o {
                Output::Log { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    fn vrrp_notifies_since(&self, t: Instant) -> Vec<&Notification> {
        self.since(t)
            .into_iter()
            .filter_map(|o| match o {
                Output::Notify(n) if matches!(n.cause, NotifyCause::Vrrp(_)) => Some(n),
                _ => None,
            })
            .collect()
    }

    /// A client SYN to the VIP.
    fn syn(&mut self, sport: u16) {
        self.client(sport, 80, true, &[], 0);
    }

    /// A client TCP segment from 192.0.2.7:`sport` to the VIP's `dport` (SYN or ACK) with
    /// `payload`, its frame followed by `pad` bytes of Ethernet padding.
    fn client(&mut self, sport: u16, dport: u16, syn: bool, payload: &[u8], pad: usize) {
        let b = etherparse::PacketBuilder::ethernet2(PEER_MAC, MAC)
            .ipv4([192, 0, 2, 7], [10, 0, 0, 100], 64)
            .tcp(sport, dport, 1000, 65535);
        let b = if syn { b.syn() } else { b.ack(1) };
        let mut frame = Vec::new();
        b.write(&mut frame, payload).unwrap();
        frame.resize(frame.len() + pad, 0);
        self.input(Input::Frame {
            iface: IfaceName::from("eth0"),
            frame,
        });
    }

    /// Per service and per destination (address, counters).
    fn counters(&self) -> Vec<(IpvsStats, Vec<(IpAddr, IpvsStats)>)> {
        self.d
            .stats()
            .ipvs
            .iter()
            .map(|s| {
                let dests = s.dests.iter().map(|d| (d.addr, d.counters)).collect();
                (s.counters, dests)
            })
            .collect()
    }

    /// An advert from a peer at 10.0.0.2.
    fn advert_from_peer(&mut self, priority: u8, advert_int_cs: u16) {
        let advert = Advert {
            version: Version::V2,
            vrid: 51,
            priority,
            advert_int_cs,
            auth: Auth::None,
            addrs: vec![ip("10.0.0.100")],
        };
        let frame = wire::encode_frame(&FrameParams::multicast(PEER_MAC, ip("10.0.0.2")), &advert)
            .expect("encodes");
        self.input(Input::Frame {
            iface: IfaceName::from("eth0"),
            frame,
        });
    }

    fn conns(&self) -> u32 {
        self.d
            .stats()
            .ipvs
            .iter()
            .flat_map(|s| &s.dests)
            .map(|d| d.active_conns + d.inactive_conns)
            .sum()
    }
}

fn secs(s: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(s)
}

#[test]
fn notify_outputs_carry_keepalived_arguments() {
    let mut n = One::new(DataPlane::Userspace);
    n.run_until(secs(6));
    assert_eq!(n.state(), VrrpState::Master);
    let notes = n.vrrp_notifies_since(Instant::ZERO);
    let argv = |s: &ScriptExec| s.argv.clone();
    // BACKUP at start: no notify_backup, so only the generic script.
    assert_eq!(
        notes[0].scripts.iter().map(argv).collect::<Vec<_>>(),
        vec![vec![
            "/etc/keepalived/notify.sh".to_string(),
            "INSTANCE".into(),
            "VI_1".into(),
            "BACKUP".into(),
            "150".into()
        ]]
    );
    // MASTER: notify_master, then notify with INSTANCE name state priority.
    assert_eq!(
        notes[1].scripts.iter().map(argv).collect::<Vec<_>>(),
        vec![
            vec!["/etc/keepalived/to_master.sh".to_string(), "now".into()],
            vec![
                "/etc/keepalived/notify.sh".to_string(),
                "INSTANCE".into(),
                "VI_1".into(),
                "MASTER".into(),
                "150".into()
            ],
        ]
    );
    assert!(notes[1].scripts.iter().all(|s| s.kill_after.is_none()));
    // SIGTERM: STOP scripts are given one second.
    let t = n.now;
    n.input(Input::Admin(Admin::Stop));
    let stop = n.vrrp_notifies_since(t);
    assert_eq!(stop.len(), 1);
    assert_eq!(stop[0].scripts[0].argv[3], "STOP");
    assert_eq!(stop[0].scripts[0].kill_after, Some(Duration::from_secs(1)));
}

#[test]
fn link_and_address_events_drive_fault_and_back() {
    let mut n = One::new(DataPlane::Userspace);
    n.run_until(secs(6));
    assert_eq!(n.state(), VrrpState::Master);
    // The interface loses its only IPv4 address: FAULT (keepalived_netlink.c), VIPs go.
    let t = n.now;
    n.input(Input::Iface(IfaceEvent::AddressRemoved {
        iface: "eth0".into(),
        addr: ip("10.0.0.1"),
    }));
    assert_eq!(n.state(), VrrpState::Fault);
    assert!(n.d.env().ifaces[0].addrs.is_empty());
    assert!(n
        .since(t)
        .iter()
        .any(|o| matches!(o, Output::DelVip(v) if v.addr == ip("10.0.0.100"))));
    assert!(n
        .logs_since(t)
        .contains(&"Deassigned address 10.0.0.1 from interface eth0".to_string()));
    // A new address: the instance sends from it and comes back as BACKUP.
    n.input(Input::Iface(IfaceEvent::AddressAdded {
        iface: "eth0".into(),
        addr: ip("10.0.0.5"),
    }));
    assert_eq!(n.state(), VrrpState::Backup);
    assert_eq!(n.d.env().primary("eth0", false), Some(ip("10.0.0.5")));
    n.run_until(secs(12));
    assert_eq!(n.state(), VrrpState::Master);
    // The interface goes away: carrier down, FAULT; it comes back: BACKUP.
    n.input(Input::Iface(IfaceEvent::Removed {
        name: "eth0".into(),
    }));
    assert_eq!(n.state(), VrrpState::Fault);
    assert!(n.d.env().iface("eth0").is_none());
    n.input(Input::Iface(IfaceEvent::Added {
        iface: env().ifaces[0].clone(),
        up: true,
    }));
    assert_eq!(n.state(), VrrpState::Backup);
}

#[test]
fn reload_keeps_an_unchanged_master_and_its_connections() {
    let mut n = One::new(DataPlane::Userspace);
    n.run_until(secs(6));
    assert_eq!(n.state(), VrrpState::Master);
    n.syn(40001);
    n.syn(40002);
    assert_eq!(n.conns(), 2);
    let became = n.d.stats().vrrp[0].become_master;
    let t = n.now;
    n.input(Input::Admin(Admin::Reload(Box::new(config_of(CONF)))));
    n.run_until(secs(9));
    assert_eq!(n.state(), VrrpState::Master);
    assert_eq!(n.d.stats().vrrp[0].become_master, became, "no new election");
    assert!(n.vrrp_notifies_since(t).is_empty());
    let after = n.since(t);
    assert!(!after
        .iter()
        .any(|o| matches!(o, Output::Ipvs(_) | Output::AddVip(_) | Output::DelVip(_))));
    assert!(!n.logs_since(t).iter().any(|l| l.contains("Entering")));
    assert_eq!(
        n.conns(),
        2,
        "the unchanged real server keeps its connections"
    );

    // A second real server: the reload's outputs are exactly its AddDest.
    let two = CONF.replace(
        "    real_server 10.0.0.11 80 {",
        "    real_server 10.0.0.12 80 {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 3\n        }\n    }\n    real_server 10.0.0.11 80 {",
    );
    let t = n.now;
    n.input(Input::Admin(Admin::Reload(Box::new(config_of(&two)))));
    let changes: Vec<&IpvsChange> = n
        .since(t)
        .into_iter()
        .filter_map(|o| match o {
            Output::Ipvs(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(matches!(changes[0], IpvsChange::AddDest(_, d) if d.addr == ip("10.0.0.12")));
    assert_eq!(n.conns(), 2);
    assert_eq!(n.state(), VrrpState::Master);
}

#[test]
fn a_reload_with_an_error_keeps_the_running_config() {
    let mut n = One::new(DataPlane::Userspace);
    n.run_until(secs(6));
    let mut bad = config_of(CONF);
    let mut dup = bad.vrrp.instances[0].clone();
    dup.name = "VI_2".into();
    bad.vrrp.instances.push(dup);
    let t = n.now;
    n.input(Input::Admin(Admin::Reload(Box::new(bad))));
    assert_eq!(
        n.logs_since(t),
        vec!["New config failed validation, instances VI_1 and VI_2 use the same interface and virtual_router_id".to_string()]
    );
    assert_eq!(n.d.vrrp().map(|r| r.instances().len()), Some(1));
    assert_eq!(n.state(), VrrpState::Master);
    let sent = n.d.stats().vrrp[0].advert_sent;
    n.run_until(secs(9));
    assert_eq!(
        n.d.stats().vrrp[0].advert_sent,
        sent + 3,
        "still advertising each second"
    );
}

#[test]
fn kernel_mode_emits_ipvs_changes_and_forwards_nothing() {
    let mut n = One::new(DataPlane::Kernel);
    n.run_until(secs(6));
    assert_eq!(n.state(), VrrpState::Master);
    let changes: Vec<IpvsChange> = n
        .since(Instant::ZERO)
        .into_iter()
        .filter_map(|o| match o {
            Output::Ipvs(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert!(matches!(changes[0], IpvsChange::AddService(_)));
    assert!(matches!(changes[1], IpvsChange::AddDest(..)));
    let t = n.now;
    n.syn(40001);
    assert!(
        n.since(t).is_empty(),
        "the kernel forwards, not the director"
    );
    assert_eq!(n.conns(), 0);
    // The kernel refused the destination: keepalived's line, and the mirror drops it.
    let IpvsChange::AddDest(key, dest) = changes[1].clone() else {
        unreachable!()
    };
    // Failures are reported right after the call that emitted the output.
    let mut k = One::new(DataPlane::Kernel);
    k.d.handle_timeout(Instant::ZERO);
    let mut failed = None;
    while let Some(o) = k.d.poll_output() {
        if let Output::Ipvs(c @ IpvsChange::AddDest(..)) = &o {
            failed = Some(c.clone());
        }
    }
    let failed = failed.expect("an AddDest at start");
    k.d.handle_input(
        Instant::ZERO,
        Input::Failed {
            what: Applied::Ipvs(failed),
            error: ApplyError {
                errno: Some(2),
                message: "No such file or directory".into(),
            },
        },
    );
    let logs: Vec<String> = std::iter::from_fn(|| k.d.poll_output())
        .filter_map(|o| match o {
            Output::Log { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(
        logs,
        vec![format!(
            "IPVS cmd IP_VS_SO_SET_ADDDEST(1159) error: No such file or directory(2) (10.0.0.100:tcp:80 -> {}:80)",
            dest.addr
        )]
    );
    assert!(k
        .d
        .ipvs()
        .service(&key)
        .is_some_and(|s| s.dests().is_empty()));
}

#[test]
fn a_vip_that_failed_to_go_on_is_not_held() {
    let mut n = One::new(DataPlane::Userspace);
    n.run_until(secs(6));
    let vip = n
        .since(Instant::ZERO)
        .into_iter()
        .find_map(|o| match o {
            Output::AddVip(v) => Some(v.clone()),
            _ => None,
        })
        .expect("the VIP went on");
    // Reported right after the call that emitted it (the contract): find that call again by
    // re-running from scratch and failing it at once.
    let mut k = One::new(DataPlane::Userspace);
    let mut failed = false;
    'outer: while let Some(t) = k.d.poll_timeout() {
        k.now = t;
        k.d.handle_timeout(t);
        while let Some(o) = k.d.poll_output() {
            if o == Output::AddVip(vip.clone()) {
                k.d.handle_input(
                    t,
                    Input::Failed {
                        what: Applied::AddVip(vip.clone()),
                        error: ApplyError {
                            errno: Some(17),
                            message: "File exists".into(),
                        },
                    },
                );
                failed = true;
                break 'outer;
            }
            if let Output::StartProbe(p) = o {
                k.d.handle_input(
                    t,
                    Input::ProbeDone {
                        id: p.id,
                        result: ProbeResult::Connected,
                    },
                );
            }
        }
    }
    assert!(failed);
    let rest: Vec<Output> = std::iter::from_fn(|| k.d.poll_output()).collect();
    assert!(rest.contains(&Output::Log {
        source: LogSource::Vrrp,
        text: "Netlink: error: File exists(17), type=RTM_NEWADDR(20)".into()
    }));
    // Not held: a client packet for it is not forwarded.
    let now = k.now;
    k.syn(40001);
    assert!(!k
        .since(now)
        .iter()
        .any(|o| matches!(o, Output::Transmit { .. })));
    assert_eq!(k.conns(), 0);
}

#[test]
fn stats_count_what_was_sent_and_received() {
    let mut n = One::new(DataPlane::Userspace);
    n.run_until(secs(10));
    let adverts = n
        .since(Instant::ZERO)
        .iter()
        .filter(|o| {
            matches!(o, Output::Transmit { frame, .. }
                if frame.len() > 23 && frame[12..14] == [8, 0] && frame[23] == 112)
        })
        .count() as u64;
    let s = n.d.stats().vrrp[0].clone();
    assert_eq!(s.name, "VI_1");
    assert_eq!(s.advert_sent, adverts);
    assert!(adverts >= 6);
    assert_eq!((s.become_master, s.release_master), (1, 0));
    assert_eq!(s.advert_rcvd, 0);
    // A lower-priority advert (received, answered), a priority-0 one, one with another
    // interval (refused by the codec, counted as keepalived does).
    n.advert_from_peer(100, 100);
    n.advert_from_peer(0, 100);
    n.advert_from_peer(100, 300);
    let s = n.d.stats().vrrp[0].clone();
    assert_eq!(s.advert_rcvd, 2);
    assert_eq!(s.pri_zero_rcvd, 1);
    assert_eq!(s.advert_interval_err, 1);
    // A higher-priority one: MASTER is released.
    n.advert_from_peer(200, 100);
    let s = n.d.stats();
    assert_eq!(s.vrrp[0].release_master, 1);
    assert_eq!(n.state(), VrrpState::Backup);
    assert_eq!(s.vrrp[0].transitions, 3, "BACKUP, MASTER, BACKUP");
    // The checker side and the table are there too.
    assert_eq!(s.checkers.virtual_servers.len(), 1);
    assert_eq!(s.ipvs.len(), 1);
    assert_eq!(s.ipvs[0].dests[0].addr, ip("10.0.0.11"));
}

/// Two real servers behind rr; what the clients send (`skb->len`: the IP packet, Ethernet
/// padding not counted) is what `ipvsadm -L -n --stats` would count.
const TWO: &str = r#"
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        10.0.0.100
    }
}
virtual_server 10.0.0.100 80 {
    delay_loop 5
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 10.0.0.12 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
"#;

/// Client A's SYN, ACK and 100-byte segment, client B's SYN padded to Ethernet's 60 bytes,
/// and two packets IPVS lets through (an ACK of no connection, another port).
fn send_known_traffic(n: &mut One) {
    n.client(40001, 80, true, &[], 0);
    n.client(40001, 80, false, &[], 0);
    n.client(40001, 80, false, &[7; 100], 0);
    n.client(40002, 80, true, &[], 6);
    n.client(40003, 80, false, &[], 0);
    n.client(40004, 81, true, &[], 0);
}

#[test]
fn stats_count_conns_packets_and_bytes_per_destination_and_service() {
    let mut n = One::with(TWO, DataPlane::Userspace);
    n.run_until(secs(6));
    assert_eq!(n.state(), VrrpState::Master);
    let zero = IpvsStats::default();
    assert_eq!(
        n.counters(),
        vec![(zero, vec![(ip("10.0.0.12"), zero), (ip("10.0.0.11"), zero)])]
    );
    send_known_traffic(&mut n);
    // rr takes the head of the list first: 10.0.0.12, added last, for client A.
    let a = IpvsStats {
        conns: 1,
        in_pkts: 3,
        in_bytes: 40 + 40 + 140,
        ..zero
    };
    let b = IpvsStats {
        conns: 1,
        in_pkts: 1,
        in_bytes: 40,
        ..zero
    };
    let svc = IpvsStats {
        conns: 2,
        in_pkts: 4,
        in_bytes: 260,
        ..zero
    };
    assert_eq!(
        n.counters(),
        vec![(svc, vec![(ip("10.0.0.12"), a), (ip("10.0.0.11"), b)])]
    );

    // The kernel forwards in kernel mode: the core counts nothing.
    let mut k = One::with(TWO, DataPlane::Kernel);
    k.run_until(secs(6));
    assert_eq!(k.state(), VrrpState::Master);
    send_known_traffic(&mut k);
    assert_eq!(
        k.counters(),
        vec![(zero, vec![(ip("10.0.0.12"), zero), (ip("10.0.0.11"), zero)])]
    );
}

// A real server's notify_down reaches the driver as a notify with keepalived's argv (the words
// of the command, nothing appended).
#[test]
fn real_server_notify_down_carries_its_argv() {
    let conf = CONF.replace(
        "        weight 1\n        TCP_CHECK {",
        "        weight 1\n        notify_down \"/etc/keepalived/rs.sh down 10.0.0.11\"\n        TCP_CHECK {",
    );
    let mut n = One::with(&conf, DataPlane::Userspace);
    n.probe = ProbeResult::ConnectFailed;
    n.run_until(secs(30));
    let down: Vec<&Notification> = n
        .since(Instant::ZERO)
        .into_iter()
        .filter_map(|o| match o {
            Output::Notify(x) if matches!(x.cause, NotifyCause::Checker(_)) => Some(x),
            _ => None,
        })
        .collect();
    assert_eq!(down.len(), 1, "{down:?}");
    assert!(matches!(
        &down[0].cause,
        NotifyCause::Checker(crate::check::output::NotifyEvent::RealServerDown { .. })
    ));
    assert_eq!(
        down[0].scripts[0].argv,
        vec!["/etc/keepalived/rs.sh", "down", "10.0.0.11"]
    );
}

const UNICAST: &str = r#"
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    unicast_peer {
        10.0.0.2
    }
    virtual_ipaddress {
        10.0.0.100
    }
}
"#;

impl One {
    /// Transmitted frames since `t`: (ARP who-has targets, VRRP advert IP destinations).
    fn sent_since(&self, t: Instant) -> (Vec<std::net::Ipv4Addr>, Vec<IpAddr>) {
        let mut arps = Vec::new();
        let mut adverts = Vec::new();
        for o in self.since(t) {
            let Output::Transmit { frame, .. } = o else {
                continue;
            };
            if let Ok(a) = crate::vrrp::arp::decode_arp(frame) {
                if a.arp.op == crate::wire::arp::ArpOp::Request
                    && a.arp.sender_ip != a.arp.target_ip
                {
                    arps.push(a.arp.target_ip);
                }
            } else if let Ok(c) = wire::Carried::parse(frame) {
                adverts.push(c.dst());
            }
        }
        (arps, adverts)
    }

    /// The peer 10.0.0.2 answers an ARP who-has.
    fn peer_arp_reply(&mut self) {
        let frame = crate::wire::arp::ArpRepr {
            op: crate::wire::arp::ArpOp::Reply,
            sha: PEER_MAC,
            spa: "10.0.0.2".parse().unwrap(),
            tha: MAC,
            tpa: "10.0.0.1".parse().unwrap(),
        }
        .to_frame(PEER_MAC, MAC);
        self.input(Input::Frame {
            iface: IfaceName::from("eth0"),
            frame,
        });
    }
}

// A unicast advert waits for its peer's ARP reply, as an IP packet waits for an INCOMPLETE
// neighbour in the kernel: a who-has goes out, no advert (to a broadcast MAC or otherwise),
// and the reply releases the waiting adverts addressed to the peer's MAC.
#[test]
fn unicast_adverts_wait_for_the_peers_arp_reply() {
    let mut n = One::with(UNICAST, DataPlane::Userspace);
    n.run_until(secs(6));
    assert_eq!(n.state(), VrrpState::Master);
    let (arps, adverts) = n.sent_since(Instant::ZERO);
    assert!(
        adverts.is_empty(),
        "nothing sent to an unresolved peer: {adverts:?}"
    );
    assert!(arps.contains(&"10.0.0.2".parse().unwrap()), "{arps:?}");
    let t = n.now;
    n.peer_arp_reply();
    let released: Vec<&Output> = n.since(t);
    let to_peer = released
        .iter()
        .filter(|o| matches!(o, Output::Transmit { frame, .. } if frame[..6] == PEER_MAC && wire::Carried::parse(frame).is_ok()))
        .count();
    assert!(
        to_peer >= 1,
        "the waiting adverts go out to the peer's MAC: {released:?}"
    );
    n.run_until(secs(8));
    let (_, adverts) = n.sent_since(t);
    assert!(adverts.iter().all(|d| *d == ip("10.0.0.2")) && adverts.len() >= 2);
}

// The kernel hands keepalived only packets addressed to this host: a unicast advert for some
// other address (a peer list naming the wrong host) never reaches the instance.
#[test]
fn a_unicast_advert_for_another_address_is_not_seen() {
    let mut n = One::with(UNICAST, DataPlane::Userspace);
    n.run_until(secs(1));
    let advert = Advert {
        version: Version::V2,
        vrid: 51,
        priority: 200,
        advert_int_cs: 100,
        auth: Auth::None,
        addrs: vec![ip("10.0.0.100")],
    };
    for (k, dst) in [(2u64, "10.0.0.9"), (3, "10.0.0.1")] {
        n.run_until(secs(k));
        let frame = wire::encode_frame(
            &FrameParams::unicast(PEER_MAC, ip("10.0.0.2"), MAC, ip(dst)),
            &advert,
        )
        .expect("encodes");
        n.input(Input::Frame {
            iface: IfaceName::from("eth0"),
            frame,
        });
        let received = n.d.vrrp().unwrap().stats()[0].advert_rcvd;
        assert_eq!(received, k - 2, "after the advert to {dst}");
    }
}

const CONF_V6: &str = r#"
vrrp_instance VI_6 {
    state BACKUP
    interface eth0
    virtual_router_id 61
    priority 150
    advert_int 1
    virtual_ipaddress {
        2001:db8::100/64
    }
}
virtual_server 2001:db8::100 80 {
    delay_loop 5
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 2001:db8::11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
"#;

/// An IPv6 LVS-DR director: VRRP v3 from the link-local address to ff02::12, the VIP's
/// unsolicited neighbour advert, then a client's SYN: the real server is unknown, so a
/// neighbour solicitation goes to its solicited-node group; its advert is learnt and the
/// client's retransmitted SYN goes to its MAC, one hop older, otherwise untouched.
#[test]
fn ipv6_dr_resolves_the_real_server_by_solicitation_and_forwards() {
    use crate::wire::icmpv6::{Ndisc, NdiscFrame, NeighbourAdvertRepr};
    const RS_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
    let link_local = ip("fe80::ff:fe00:1");
    let env = NodeEnv {
        ifaces: vec![Iface {
            name: "eth0".into(),
            mac: MAC,
            addrs: vec![link_local, ip("2001:db8::1")],
        }],
        routes: Vec::new(),
    };
    let parsed = config::parse_str("keepalived.conf", CONF_V6);
    let cfg = parsed.config.expect("config loads");
    let mut dc = DirectorConfig::from_keepalived(&cfg, &env).expect("maps onto the host");
    dc.data_plane = DataPlane::Userspace;
    let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(7));
    let mut n = One {
        d: Director::new(dc, env, rng).expect("starts"),
        now: Instant::ZERO,
        out: Vec::new(),
        probe: ProbeResult::Connected,
    };
    n.run_until(secs(10));
    let sent: Vec<&Vec<u8>> = n
        .since(Instant::ZERO)
        .into_iter()
        .filter_map(|o| match o {
            Output::Transmit { frame, .. } => Some(frame),
            _ => None,
        })
        .collect();
    let advert = sent
        .iter()
        .filter(|f| wire::Carried::parse(f).is_ok())
        .find_map(|f| crate::wire::ipv6::Ipv6Repr::parse(&f[14..]).ok())
        .map(|(h, _)| (IpAddr::V6(h.src), IpAddr::V6(h.dst)))
        .expect("a VRRP advert was sent");
    assert_eq!(
        advert,
        (link_local, ip("ff02::12")),
        "v3 from the link-local address"
    );
    let na = sent
        .iter()
        .find_map(|f| NdiscFrame::parse(f))
        .expect("an unsolicited NA for the VIP");
    assert!(
        matches!(na.msg, Ndisc::Advert(a) if a.target == "2001:db8::100".parse::<std::net::Ipv6Addr>().unwrap() && a.override_flag && !a.solicited)
    );

    let syn = || {
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2(PEER_MAC, MAC)
            .ipv6(
                "2001:db8:ff::7"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
                "2001:db8::100"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
                64,
            )
            .tcp(40000, 80, 1000, 65535)
            .syn()
            .write(&mut frame, &[])
            .unwrap();
        Input::Frame {
            iface: IfaceName::from("eth0"),
            frame,
        }
    };
    let before = n.out.len();
    n.input(syn());
    let out: Vec<&Output> = n.out[before..].iter().map(|(_, o)| o).collect();
    let [Output::Transmit { frame, .. }] = out.as_slice() else {
        panic!("one frame out, not {out:?}");
    };
    let ns = NdiscFrame::parse(frame).expect("a neighbour solicitation");
    let rs: std::net::Ipv6Addr = "2001:db8::11".parse().unwrap();
    assert_eq!(
        (ns.src, ns.dst, &frame[..6]),
        (
            "2001:db8::1".parse().unwrap(),
            "ff02::1:ff00:11".parse().unwrap(),
            &[0x33, 0x33, 0xff, 0, 0, 0x11][..]
        ),
        "from the global address, to the solicited-node group"
    );
    assert!(matches!(ns.msg, Ndisc::Solicit(s) if s.target == rs && s.source_mac == Some(MAC)));

    let answer = NdiscFrame {
        src_mac: RS_MAC,
        src: rs,
        dst: "2001:db8::1".parse().unwrap(),
        msg: Ndisc::Advert(NeighbourAdvertRepr {
            router: false,
            solicited: true,
            override_flag: true,
            target: rs,
            target_mac: Some(RS_MAC),
        }),
    };
    n.input(Input::Frame {
        iface: IfaceName::from("eth0"),
        frame: answer.emit(MAC),
    });

    let before = n.out.len();
    let Input::Frame {
        frame: sent_syn, ..
    } = syn()
    else {
        unreachable!()
    };
    n.input(syn());
    let forwarded = n.out[before..]
        .iter()
        .map(|(_, o)| o)
        .find_map(|o| match o {
            Output::Transmit { frame, .. } => Some(frame),
            _ => None,
        })
        .expect("the SYN went on");
    assert_eq!(&forwarded[..6], &RS_MAC, "to the real server's MAC");
    assert_eq!(&forwarded[6..12], &MAC, "from ours");
    assert_eq!(forwarded[14 + 7], 63, "one hop off the hop limit");
    let mut expect = sent_syn.clone();
    expect[..6].copy_from_slice(&RS_MAC);
    expect[6..12].copy_from_slice(&MAC);
    expect[14 + 7] = 63;
    assert_eq!(forwarded, &expect, "nothing else changed");
}
