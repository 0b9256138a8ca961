//! A test-only director and a small LVS-DR topology: client — wan — gateway — lan — {d1, d2, rs1, rs2}.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::rc::Rc;
use std::time::Duration;

use lvs_core::check::probe::{Probe, ProbeId, ProbeResult};
use lvs_core::director::{
    Admin, Input, LogSource, Notification, NotifyCause, Output, StateChange, StateChangeKind, Vip,
    VrrpState,
};
use lvs_core::ipvs::IpvsChange;
use lvs_core::Instant;
use lvs_sim::client::{ClientSpec, Workload};
use lvs_sim::director::{DirectorFactory, DirectorNode};
use lvs_sim::packet::{self, Arp, Mac, BROADCAST};
use lvs_sim::server::{RealServerSpec, ServiceSpec};
use lvs_sim::stack::IfaceSpec;
use lvs_sim::{HostId, LinkParams, Sim};

pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
pub const D1_MAC: Mac = [2, 0, 0, 0, 0, 2];
pub const D2_MAC: Mac = [2, 0, 0, 0, 0, 3];
pub const RS1_MAC: Mac = [2, 0, 0, 0, 0, 11];
pub const RS2_MAC: Mac = [2, 0, 0, 0, 0, 12];

pub fn lan(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

/// What a fake director observed, shared with the test.
#[derive(Default, Debug)]
pub struct Seen {
    pub frames_from: BTreeMap<Mac, u64>,
    /// Beacon sequence numbers in arrival order, per sender.
    pub beacons: BTreeMap<Mac, Vec<u32>>,
    pub links: Vec<(String, bool)>,
    pub probes: Vec<(ProbeId, ProbeResult)>,
    pub starts: u32,
    pub stops: u32,
    pub became_master_at: Vec<Instant>,
}

/// How a fake director behaves.
#[derive(Clone)]
pub struct FakeCfg {
    pub mac: Mac,
    /// Local time at which it becomes MASTER (None: stays BACKUP).
    pub master_at: Option<Instant>,
    pub garp: bool,
    /// Send a broadcast beacon every second.
    pub beacon: bool,
    pub rs: Vec<Mac>,
    pub probes: Vec<Probe>,
    pub ipvs: Vec<IpvsChange>,
}

impl FakeCfg {
    pub fn new(mac: Mac, master_at: Option<Instant>) -> Self {
        FakeCfg {
            mac,
            master_at,
            garp: true,
            beacon: false,
            rs: vec![RS1_MAC, RS2_MAC],
            probes: vec![],
            ipvs: vec![],
        }
    }
}

/// Owns the VIP once master and forwards DR-style: the destination MAC becomes a real server's.
pub struct Fake {
    cfg: FakeCfg,
    seen: Rc<RefCell<Seen>>,
    out: VecDeque<Output>,
    started: bool,
    master: bool,
    next_beacon: Instant,
    rr: usize,
    conns: BTreeMap<(std::net::IpAddr, u16), Mac>,
    beacon_seq: u32,
}

impl Fake {
    pub fn factory(cfg: FakeCfg, seen: Rc<RefCell<Seen>>) -> DirectorFactory {
        Box::new(move |_env, _rng| {
            Box::new(Fake {
                cfg: cfg.clone(),
                seen: seen.clone(),
                out: VecDeque::new(),
                started: false,
                master: false,
                next_beacon: Instant::ZERO,
                rr: 0,
                conns: BTreeMap::new(),
                beacon_seq: 0,
            }) as Box<dyn DirectorNode>
        })
    }

    fn notify(&mut self, state: VrrpState) {
        self.out.push_back(Output::Notify(Notification {
            cause: NotifyCause::Vrrp(StateChange {
                kind: StateChangeKind::Instance,
                name: "VI_1".into(),
                state,
                priority: 100,
            }),
            scripts: Vec::new(),
        }));
    }
}

impl DirectorNode for Fake {
    fn handle_input(&mut self, _now: Instant, input: Input) {
        match input {
            Input::Frame { frame, .. } => {
                if let Some(src) = packet::src_mac(&frame) {
                    *self.seen.borrow_mut().frames_from.entry(src).or_insert(0) += 1;
                    if packet::ethertype(&frame) == Some(0x88b5) {
                        if let Some(b) = frame.get(14..18) {
                            let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                            self.seen
                                .borrow_mut()
                                .beacons
                                .entry(src)
                                .or_default()
                                .push(n);
                        }
                    }
                }
                let Ok(seg) = packet::parse_tcp(&frame) else {
                    return;
                };
                if seg.dst != std::net::IpAddr::V4(VIP) || !self.master || self.cfg.rs.is_empty() {
                    return;
                }
                let key = (seg.src, seg.sport);
                let rs = match self.conns.get(&key) {
                    Some(m) => *m,
                    None => {
                        let m = self.cfg.rs[self.rr % self.cfg.rs.len()];
                        self.rr += 1;
                        self.conns.insert(key, m);
                        m
                    }
                };
                let frame = packet::rewrite_macs(&frame, self.cfg.mac, rs);
                self.out.push_back(Output::Transmit {
                    iface: "eth0".into(),
                    frame,
                });
            }
            Input::ProbeDone { id, result } => self.seen.borrow_mut().probes.push((id, result)),
            Input::Link { iface, up } => self.seen.borrow_mut().links.push((iface, up)),
            // The simulator sends neither.
            Input::Iface(_) | Input::Failed { .. } | Input::Admin(Admin::Reload(_)) => {}
            Input::Admin(Admin::Stop) => {
                self.seen.borrow_mut().stops += 1;
                if self.master {
                    self.out.push_back(Output::DelVip(Vip {
                        iface: "eth0".into(),
                        addr: IpAddr::V4(VIP),
                        prefix: 32,
                    }));
                }
                self.notify(VrrpState::Stop);
                self.out.push_back(Output::Log {
                    source: LogSource::Vrrp,
                    text: "Stopping".into(),
                });
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if !self.started {
            self.started = true;
            self.seen.borrow_mut().starts += 1;
            self.out.push_back(Output::Log {
                source: LogSource::Main,
                text: "Starting VRRP child process".into(),
            });
            self.notify(VrrpState::Backup);
            for p in self.cfg.probes.clone() {
                self.out.push_back(Output::StartProbe(p));
            }
            for c in self.cfg.ipvs.clone() {
                self.out.push_back(Output::Ipvs(c));
            }
            self.next_beacon = now;
        }
        if !self.master && self.cfg.master_at.is_some_and(|t| now >= t) {
            self.master = true;
            self.seen.borrow_mut().became_master_at.push(now);
            self.out.push_back(Output::Log {
                source: LogSource::Vrrp,
                text: "(VI_1) Entering MASTER STATE".into(),
            });
            self.notify(VrrpState::Master);
            self.out.push_back(Output::AddVip(Vip {
                iface: "eth0".into(),
                addr: IpAddr::V4(VIP),
                prefix: 32,
            }));
            if self.cfg.garp {
                let f = Arp::gratuitous(self.cfg.mac, VIP).to_frame(self.cfg.mac, BROADCAST);
                self.out.push_back(Output::Transmit {
                    iface: "eth0".into(),
                    frame: f,
                });
            }
        }
        if self.cfg.beacon && now >= self.next_beacon {
            self.beacon_seq += 1;
            let f = packet::ethernet(
                self.cfg.mac,
                BROADCAST,
                0x88b5,
                &self.beacon_seq.to_be_bytes(),
            );
            self.out.push_back(Output::Transmit {
                iface: "eth0".into(),
                frame: f,
            });
            self.next_beacon = now + Duration::from_secs(1);
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let takeover = self.cfg.master_at.filter(|_| !self.master);
        let beacon = self.cfg.beacon.then_some(self.next_beacon);
        match (takeover, beacon) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The test cluster.
pub struct World {
    pub sim: Sim,
    pub client: HostId,
    pub gw: HostId,
    pub d1: HostId,
    pub d2: HostId,
    pub rs1: HostId,
    pub rs2: HostId,
    pub seen1: Rc<RefCell<Seen>>,
    pub seen2: Rc<RefCell<Seen>>,
}

pub struct Opts {
    pub seed: u64,
    pub d1: FakeCfg,
    pub d2: FakeCfg,
    pub workload: Workload,
    pub link: LinkParams,
    pub rs2_holds_vip: bool,
    pub service_time: Duration,
    pub gw_arp_timeout: Duration,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            seed: 1,
            d1: FakeCfg::new(D1_MAC, Some(Instant::ZERO)),
            d2: FakeCfg::new(D2_MAC, None),
            workload: Workload::Closed {
                concurrency: 4,
                think: Duration::from_millis(10),
            },
            link: LinkParams::default(),
            rs2_holds_vip: true,
            service_time: Duration::from_millis(5),
            gw_arp_timeout: Duration::from_secs(60),
        }
    }
}

pub fn world(o: Opts) -> World {
    let seen1 = Rc::new(RefCell::new(Seen::default()));
    let seen2 = Rc::new(RefCell::new(Seen::default()));
    let f1 = Fake::factory(o.d1.clone(), seen1.clone());
    let f2 = Fake::factory(o.d2.clone(), seen2.clone());
    world_with(o, f1, f2, seen1, seen2)
}

/// The same topology with the given director processes.
pub fn world_with(
    o: Opts,
    f1: DirectorFactory,
    f2: DirectorFactory,
    seen1: Rc<RefCell<Seen>>,
    seen2: Rc<RefCell<Seen>>,
) -> World {
    let mut sim = Sim::new(o.seed);
    let wan = sim.add_segment("wan", true);
    let lanseg = sim.add_segment("lan", true);
    let gw = sim
        .add_gateway(
            "gw",
            vec![
                IfaceSpec::new(
                    "eth0",
                    [2, 0, 0, 0, 1, 1],
                    Ipv4Addr::new(192, 168, 1, 1),
                    24,
                ),
                IfaceSpec::new("eth1", [2, 0, 0, 0, 0, 1], lan(1), 24),
            ],
            o.gw_arp_timeout,
        )
        .unwrap();
    let d1 = sim
        .add_director("d1", vec![IfaceSpec::new("eth0", D1_MAC, lan(2), 24)], f1)
        .unwrap();
    let d2 = sim
        .add_director("d2", vec![IfaceSpec::new("eth0", D2_MAC, lan(3), 24)], f2)
        .unwrap();
    let svc = || vec![ServiceSpec::new(80, o.service_time)];
    let rs1 = sim
        .add_real_server(
            "rs1",
            vec![IfaceSpec::new("eth0", RS1_MAC, lan(11), 24)],
            RealServerSpec::dr(vec![VIP.into()], Some(lan(1)), svc()),
        )
        .unwrap();
    let vips2 = if o.rs2_holds_vip {
        vec![VIP.into()]
    } else {
        vec![]
    };
    let rs2 = sim
        .add_real_server(
            "rs2",
            vec![IfaceSpec::new("eth0", RS2_MAC, lan(12), 24)],
            RealServerSpec::dr(vips2, Some(lan(1)), svc()),
        )
        .unwrap();
    let mut spec = ClientSpec::new(SocketAddrV4::new(VIP, 80).into(), o.workload);
    spec.start = Instant::from_millis(100);
    let client = sim
        .add_client(
            "client",
            IfaceSpec::new(
                "eth0",
                [2, 0, 0, 0, 1, 10],
                Ipv4Addr::new(192, 168, 1, 10),
                24,
            ),
            Some(Ipv4Addr::new(192, 168, 1, 1)),
            None,
            spec,
        )
        .unwrap();
    sim.connect(gw, "eth0", wan, o.link.clone()).unwrap();
    sim.connect(client, "eth0", wan, o.link.clone()).unwrap();
    for (h, i) in [
        (gw, "eth1"),
        (d1, "eth0"),
        (d2, "eth0"),
        (rs1, "eth0"),
        (rs2, "eth0"),
    ] {
        sim.connect(h, i, lanseg, o.link.clone()).unwrap();
    }
    World {
        sim,
        client,
        gw,
        d1,
        d2,
        rs1,
        rs2,
        seen1,
        seen2,
    }
}

/// The gateway's current ARP entry for the VIP.
pub fn gw_vip_mac(w: &World) -> Option<Mac> {
    w.sim
        .stack(w.gw)
        .and_then(|s| s.lookup(w.sim.now(), VIP.into()))
        .map(|n| n.mac)
}
