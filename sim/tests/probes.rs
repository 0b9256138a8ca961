//! Health checks as connections through the modelled network (issue 11 point 13): routed
//! through the gateway, retransmitted through loss, refused by a full accept queue, lost to
//! a one-way partition — what the real kernel's sockets would see, not a same-segment test.

mod common;

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::rc::Rc;
use std::time::Duration;

use common::*;
use lvs_core::check::probe::{Probe, ProbeId, ProbeKind, ProbeResult};
use lvs_core::Instant;
use lvs_sim::server::{RealServerSpec, ServiceSpec};
use lvs_sim::stack::IfaceSpec;
use lvs_sim::{Fault, HostId, LinkParams, Sim};

fn far(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 9, 0, n)
}

fn tcp(id: u64, ip: Ipv4Addr, timeout: Duration) -> Probe {
    Probe {
        id: ProbeId(id),
        kind: ProbeKind::Tcp {
            target: SocketAddr::V4(SocketAddrV4::new(ip, 80)),
            bind: None,
        },
        timeout,
    }
}

struct Net {
    sim: Sim,
    d1: HostId,
    near: HostId,
    remote: HostId,
    seen: Rc<RefCell<Seen>>,
}

/// d1 and `near` (10.0.0.11) on the LAN; `remote` (10.9.0.20) on a far segment behind the
/// gateway (10.0.0.1 / 10.9.0.1). Every host routes through the gateway; `near_link` is the
/// near server's link.
fn net(probes: Vec<Probe>, near_svc: ServiceSpec, near_link: LinkParams) -> Net {
    let seen = Rc::new(RefCell::new(Seen::default()));
    let mut cfg = FakeCfg::new(D1_MAC, None);
    cfg.probes = probes;
    let mut sim = Sim::new(7);
    let lan_seg = sim.add_segment("lan", true);
    let far_seg = sim.add_segment("far", true);
    let gw = sim
        .add_gateway(
            "gw",
            vec![
                IfaceSpec::new("eth0", [2, 0, 0, 0, 1, 1], lan(1), 24),
                IfaceSpec::new("eth1", [2, 0, 0, 0, 1, 2], far(1), 24),
            ],
            Duration::from_secs(60),
        )
        .unwrap();
    let d1 = sim
        .add_director(
            "d1",
            vec![IfaceSpec::new("eth0", D1_MAC, lan(2), 24)],
            Fake::factory(cfg, seen.clone()),
        )
        .unwrap();
    sim.stack_mut(d1).unwrap().set_gateway(Some(lan(1)));
    let near = sim
        .add_real_server(
            "near",
            vec![IfaceSpec::new("eth0", RS1_MAC, lan(11), 24)],
            RealServerSpec::dr(vec![], Some(lan(1)), vec![near_svc]),
        )
        .unwrap();
    let remote = sim
        .add_real_server(
            "remote",
            vec![IfaceSpec::new("eth0", RS2_MAC, far(20), 24)],
            RealServerSpec::dr(
                vec![],
                Some(far(1)),
                vec![ServiceSpec::new(80, Duration::from_millis(1))],
            ),
        )
        .unwrap();
    let plain = LinkParams::default();
    sim.connect(gw, "eth0", lan_seg, plain.clone()).unwrap();
    sim.connect(gw, "eth1", far_seg, plain.clone()).unwrap();
    sim.connect(d1, "eth0", lan_seg, plain.clone()).unwrap();
    sim.connect(near, "eth0", lan_seg, near_link).unwrap();
    sim.connect(remote, "eth0", far_seg, plain).unwrap();
    Net {
        sim,
        d1,
        near,
        remote,
        seen,
    }
}

fn results(n: &Net) -> Vec<(ProbeId, ProbeResult)> {
    n.seen.borrow().probes.clone()
}

fn web() -> ServiceSpec {
    ServiceSpec::new(80, Duration::from_millis(1))
}

#[test]
fn a_real_server_behind_the_gateway_is_reached_through_it() {
    let mut n = net(
        vec![tcp(1, far(20), Duration::from_secs(3))],
        web(),
        LinkParams::default(),
    );
    n.sim.run_until(Instant::from_secs(4));
    assert_eq!(results(&n), vec![(ProbeId(1), ProbeResult::Connected)]);
    let served = n.sim.server(n.remote).unwrap().stats.accepted;
    assert_eq!(served, 1, "the SYN reached the remote server");
    // Without a route out of the director the connect fails at once.
    let mut n = net(
        vec![tcp(1, far(20), Duration::from_secs(3))],
        web(),
        LinkParams::default(),
    );
    n.sim.stack_mut(n.d1).unwrap().set_gateway(None);
    n.sim.run_until(Instant::from_secs(4));
    assert_eq!(results(&n), vec![(ProbeId(1), ProbeResult::ConnectFailed)]);
}

#[test]
fn a_full_accept_queue_drops_the_syn_and_the_check_times_out() {
    let full = ServiceSpec {
        max_concurrency: 0,
        ..web()
    };
    let mut n = net(
        vec![tcp(1, lan(11), Duration::from_secs(3))],
        full,
        LinkParams::default(),
    );
    n.sim.run_until(Instant::from_secs(4));
    assert_eq!(results(&n), vec![(ProbeId(1), ProbeResult::Timeout)]);
    let stats = &n.sim.server(n.near).unwrap().stats;
    // The first SYN and its retransmission after 1 s (Linux's backoff: the next, at 3 s,
    // falls on the connect timeout).
    assert_eq!(stats.syn_dropped, 2, "{stats:?}");
}

#[test]
fn syn_retransmissions_carry_a_check_through_loss() {
    let lossy = LinkParams {
        loss: 0.5,
        ..LinkParams::default()
    };
    let probes: Vec<Probe> = (1..=40)
        .map(|i| tcp(i, lan(11), Duration::from_secs(10)))
        .collect();
    let mut n = net(probes, web(), lossy);
    n.sim.run_until(Instant::from_secs(12));
    let got = results(&n);
    assert_eq!(got.len(), 40);
    let connected = got
        .iter()
        .filter(|(_, r)| *r == ProbeResult::Connected)
        .count();
    // One attempt crosses the lossy link twice (SYN, SYN-ACK): 25 %. Four attempts within
    // 10 s (0, 1, 3 and 7 s): 1 - 0.75^4 = 68 %.
    assert!(
        (20..=36).contains(&connected),
        "{connected} of 40 connected"
    );
    assert!(got
        .iter()
        .all(|(_, r)| matches!(r, ProbeResult::Connected | ProbeResult::Timeout)));
}

#[test]
fn a_one_way_partition_either_way_times_the_check_out() {
    for towards_director in [true, false] {
        let mut n = net(
            vec![tcp(1, lan(11), Duration::from_secs(3))],
            web(),
            LinkParams::default(),
        );
        let (from, to) = if towards_director {
            (n.near, n.d1)
        } else {
            (n.d1, n.near)
        };
        n.sim.apply(Fault::Partition {
            from: vec![from],
            to: vec![to],
            symmetric: false,
        });
        n.sim.run_until(Instant::from_secs(4));
        assert_eq!(results(&n), vec![(ProbeId(1), ProbeResult::Timeout)]);
        // Not even ARP resolves across it: no SYN reaches the server.
        assert_eq!(n.sim.server(n.near).unwrap().stats.accepted, 0);
    }
}

#[test]
fn http_get_reads_the_services_answer_and_closes() {
    let svc = ServiceSpec {
        http_status: 503,
        http_digest: "abc".into(),
        ..web()
    };
    let get = Probe {
        id: ProbeId(1),
        kind: ProbeKind::Http {
            target: SocketAddr::V4(SocketAddrV4::new(lan(11), 80)),
            path: "/health".into(),
            virtualhost: None,
            tls: false,
        },
        timeout: Duration::from_secs(3),
    };
    let mut n = net(vec![get], svc, LinkParams::default());
    n.sim.run_until(Instant::from_secs(4));
    assert_eq!(
        results(&n),
        vec![(
            ProbeId(1),
            ProbeResult::Http {
                status: 503,
                digest: "abc".into()
            }
        )]
    );
    let stats = &n.sim.server(n.near).unwrap().stats;
    assert_eq!((stats.accepted, stats.served), (1, 1), "{stats:?}");
}
