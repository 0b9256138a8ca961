//! Each fault kind, partitions, client give-up, probes, invariants and determinism.

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use common::*;
use lvs_core::check::probe::{Probe, ProbeId, ProbeKind, ProbeResult};
use lvs_core::ipvs::{FwdMethod, IpvsChange, Protocol, ServiceKey, SockAddr};
use lvs_core::Instant;
use lvs_sim::client::Workload;
use lvs_sim::invariants::ViolationKind;
use lvs_sim::{Fault, LinkParams};

fn s(n: u64) -> Instant {
    Instant::from_secs(n)
}

#[test]
fn same_seed_same_bytes_other_seed_other_jitter() {
    let run = |seed| {
        let link = LinkParams {
            jitter: Duration::from_micros(300),
            loss: 0.01,
            ..LinkParams::default()
        };
        let d2 = FakeCfg::new(D2_MAC, Some(s(8)));
        let mut w = world(Opts {
            seed,
            link,
            d2,
            ..Opts::default()
        });
        w.sim.schedule(s(4), Fault::Kill(w.d1));
        w.sim.run_until(s(15));
        (w.sim.trace_json(), w.sim.svg())
    };
    let (a, sa) = run(7);
    let (b, sb) = run(7);
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    let (c, _) = run(8);
    assert_ne!(a, c);
    assert!(
        a.starts_with(&format!(
            "{{\"schema\":\"lvsd-trace\",\"version\":{},\"lvsd\":\"{}\",\"scenario\":\"\",\"seed\":7,\"events\":[",
            lvs_sim::record::TRACE_VERSION,
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        &a[..200]
    );
    // What is known at the end comes after the events it sums up.
    assert!(a.contains("],\"end_ns\":15000000000,\"metrics\":{"), "{a}");
}

#[test]
fn client_gives_up_on_syn_and_counts_no_broken_connection() {
    let mut w = world(Opts {
        workload: Workload::Closed {
            concurrency: 1,
            think: Duration::ZERO,
        },
        ..Opts::default()
    });
    // One-way: the client's frames never reach the gateway.
    w.sim.schedule(
        s(2),
        Fault::Partition {
            from: vec![w.client],
            to: vec![w.gw],
            symmetric: false,
        },
    );
    w.sim.run_until(s(20));
    let m = w.sim.metrics();
    assert!(m.failures["connect_timeout"] >= 2, "{m:?}");
    assert_eq!(m.connections_broken, 0);
}

#[test]
fn stopped_service_resets_established_connections_as_broken() {
    let mut w = world(Opts {
        service_time: Duration::from_secs(3),
        workload: Workload::Closed {
            concurrency: 2,
            think: Duration::ZERO,
        },
        ..Opts::default()
    });
    w.sim.schedule(
        s(1),
        Fault::Service {
            host: w.rs1,
            port: 80,
            running: false,
        },
    );
    w.sim.schedule(
        s(1),
        Fault::Service {
            host: w.rs2,
            port: 80,
            running: false,
        },
    );
    w.sim.run_until(s(6));
    let m = w.sim.metrics();
    assert!(m.failures["reset"] >= 2, "{m:?}");
    assert!(m.connections_broken >= 2);
    // New SYNs are refused with RST: failed but not broken.
    assert!(w.sim.server(w.rs1).unwrap().stats.refused > 0);
}

#[test]
fn timeouts_after_establishment_count_as_broken() {
    let mut w = world(Opts {
        service_time: Duration::from_secs(2),
        workload: Workload::Closed {
            concurrency: 2,
            think: Duration::ZERO,
        },
        ..Opts::default()
    });
    w.sim.schedule(
        s(1),
        Fault::Nic {
            host: w.rs1,
            iface: "eth0".into(),
            up: false,
        },
    );
    w.sim.schedule(
        s(1),
        Fault::Nic {
            host: w.rs2,
            iface: "eth0".into(),
            up: false,
        },
    );
    w.sim.run_until(s(12));
    let m = w.sim.metrics();
    assert!(m.failures["timeout"] >= 2, "{m:?}");
    assert!(m.connections_broken >= 2);
}

#[test]
fn stop_runs_the_directors_last_outputs_then_silence() {
    let mut w = world(Opts::default());
    w.sim.schedule(s(2), Fault::Stop(w.d1));
    w.sim.run_until(s(5));
    assert_eq!(w.seen1.borrow().stops, 1);
    assert!(w.sim.vip_holders(VIP).is_empty(), "DelVip executed");
    assert!(!w.sim.director_alive(w.d1));
    assert!(
        w.sim
            .log_text(w.d1)
            .ends_with("d1 Keepalived_vrrp[1102]: Stopping\n"),
        "{}",
        w.sim.log_text(w.d1)
    );
    let frames = w.seen1.borrow().frames_from.values().sum::<u64>();
    w.sim.run_until(s(8));
    assert_eq!(
        w.seen1.borrow().frames_from.values().sum::<u64>(),
        frames,
        "silent after stop"
    );
}

#[test]
fn kill_drops_state_and_restart_builds_a_fresh_director() {
    let mut w = world(Opts::default());
    w.sim.schedule(s(2), Fault::Kill(w.d1));
    w.sim.run_until(s(3));
    assert_eq!(
        w.seen1.borrow().stops,
        0,
        "SIGKILL gives no chance to clean up"
    );
    // The address outlives the process, as on Linux; nobody is MASTER.
    assert_eq!(w.sim.vip_holders(VIP), vec![w.d1]);
    assert!(w.sim.masters("VI_1").is_empty());
    w.sim.schedule(s(4), Fault::Restart(w.d1));
    w.sim.run_until(s(6));
    assert_eq!(w.seen1.borrow().starts, 2);
    assert_eq!(w.sim.masters("VI_1"), vec![w.d1]);
    assert_eq!(gw_vip_mac(&w), Some(D1_MAC));
    // The restarted process logs under a new PID.
    assert!(w
        .sim
        .log_text(w.d1)
        .contains("Keepalived[1103]: Starting VRRP child process"));
}

#[test]
fn pause_queues_inputs_and_resume_hands_them_over_late() {
    let mut w = world(Opts {
        workload: Workload::Closed {
            concurrency: 1,
            think: Duration::ZERO,
        },
        ..Opts::default()
    });
    w.sim.schedule(s(2), Fault::Pause(w.d1));
    w.sim
        .schedule(s(2) + Duration::from_millis(1500), Fault::Resume(w.d1));
    w.sim.run_until(s(2) + Duration::from_millis(1400));
    let sent_during = w.sim.metrics().requests_ok;
    w.sim.run_until(s(2) + Duration::from_millis(1450));
    assert_eq!(
        w.sim.metrics().requests_ok,
        sent_during,
        "nothing forwarded while paused"
    );
    w.sim.run_until(s(6));
    let m = w.sim.metrics();
    assert!(m.requests_ok > sent_during);
    assert_eq!(
        m.requests_failed, 0,
        "the queued SYN/data were forwarded after resume"
    );
    assert!(m.latency_max_ns >= 1_000_000_000);
}

#[test]
fn nic_and_link_changes_reach_the_director() {
    let mut w = world(Opts::default());
    w.sim.schedule(
        s(1),
        Fault::Nic {
            host: w.d2,
            iface: "eth0".into(),
            up: false,
        },
    );
    w.sim.schedule(
        s(2),
        Fault::Nic {
            host: w.d2,
            iface: "eth0".into(),
            up: true,
        },
    );
    w.sim.schedule(
        s(3),
        Fault::Link {
            host: w.d2,
            iface: "eth0".into(),
            up: false,
        },
    );
    // NIC down while the cable is out: carrier is already down, no second event.
    w.sim.schedule(
        s(4),
        Fault::Nic {
            host: w.d2,
            iface: "eth0".into(),
            up: false,
        },
    );
    w.sim.run_until(s(5));
    let links = w.seen2.borrow().links.clone();
    assert_eq!(
        links,
        vec![
            ("eth0".to_string(), false),
            ("eth0".to_string(), true),
            ("eth0".to_string(), false)
        ]
    );
}

#[test]
fn clock_drift_moves_a_directors_deadlines() {
    // d2 becomes master at local 10 s; its clock runs twice as fast from t=0.
    let d2 = FakeCfg::new(D2_MAC, Some(s(10)));
    let mut w = world(Opts {
        d2,
        ..Opts::default()
    });
    w.sim.apply(Fault::ClockDrift {
        host: w.d2,
        ppm: 1_000_000,
    });
    w.sim.run_until(s(20));
    assert_eq!(
        w.seen2.borrow().became_master_at,
        vec![s(10)],
        "local time seen by the director"
    );
    let t = w.sim.trace().iter().find(|e| {
        &*e.host == "d2" && matches!(e.event, lvs_sim::record::TraceEvent::AddVip { .. })
    });
    assert_eq!(
        t.map(|e| e.t),
        Some(5_000_000_000),
        "global time of the takeover"
    );
}

#[test]
fn one_way_and_symmetric_partitions() {
    let mut d1 = FakeCfg::new(D1_MAC, None);
    d1.beacon = true;
    let mut d2 = FakeCfg::new(D2_MAC, None);
    d2.beacon = true;
    let mut w = world(Opts {
        d1,
        d2,
        workload: Workload::Open { rate: 0.0 },
        ..Opts::default()
    });
    // Beacons leave at whole seconds; sampling at .5 leaves none in flight.
    let half = Duration::from_millis(500);
    w.sim.run_until(s(2) + half);
    let count = |w: &World| {
        (
            w.seen1
                .borrow()
                .frames_from
                .get(&D2_MAC)
                .copied()
                .unwrap_or(0),
            w.seen2
                .borrow()
                .frames_from
                .get(&D1_MAC)
                .copied()
                .unwrap_or(0),
        )
    };
    let (a0, b0) = count(&w);
    assert!(a0 > 0 && b0 > 0);
    w.sim.apply(Fault::Partition {
        from: vec![w.d1],
        to: vec![w.d2],
        symmetric: false,
    });
    w.sim.run_until(s(6) + half);
    let (a1, b1) = count(&w);
    assert!(a1 > a0, "d2 -> d1 still flows");
    assert_eq!(b1, b0, "d1 -> d2 dropped");
    let parts = w.sim.parts();
    assert_ne!(
        parts[w.d1.0], parts[w.d2.0],
        "one-way partition splits the connected part"
    );
    w.sim.apply(Fault::Heal);
    w.sim.apply(Fault::Partition {
        from: vec![w.d1],
        to: vec![w.d2],
        symmetric: true,
    });
    w.sim.run_until(s(10) + half);
    let (a2, b2) = count(&w);
    assert_eq!(a2, a1, "d2 -> d1 dropped too");
    assert_eq!(b2, b1);
    w.sim.apply(Fault::Heal);
    w.sim.run_until(s(13) + half);
    let (a3, b3) = count(&w);
    assert!(a3 > a2 && b3 > b2, "healed");
    let parts = w.sim.parts();
    assert_eq!(parts[w.d1.0], parts[w.d2.0]);
}

#[test]
fn split_brain_is_a_violation_only_inside_one_connected_part() {
    let d2 = FakeCfg::new(D2_MAC, Some(Instant::ZERO));
    let mut w = world(Opts {
        d2,
        workload: Workload::Open { rate: 0.0 },
        ..Opts::default()
    });
    w.sim.apply(Fault::Partition {
        from: vec![w.d1],
        to: vec![w.d2],
        symmetric: true,
    });
    w.sim.run_until(s(10));
    assert!(w.sim.violations().is_empty(), "{:?}", w.sim.violations());
    w.sim.apply(Fault::Heal);
    w.sim.run_until(s(20));
    let kinds: Vec<_> = w.sim.violations().iter().map(|v| v.kind).collect();
    assert!(kinds.contains(&ViolationKind::SplitBrain), "{kinds:?}");
    assert!(kinds.contains(&ViolationKind::DuplicateVip), "{kinds:?}");
    // Reported when the grace (4 s) after the heal ran out, even with no traffic to wake the loop.
    assert_eq!(w.sim.violations()[0].t, s(14) + Duration::from_nanos(1));
}

#[test]
fn new_connection_to_a_server_marked_down_is_a_violation() {
    let svc = ServiceKey::Inet {
        proto: Protocol::Tcp,
        addr: VIP.into(),
        port: 80,
    };
    let mut d1 = FakeCfg::new(D1_MAC, Some(Instant::ZERO));
    d1.ipvs = vec![IpvsChange::DelDest(svc, SockAddr(lan(12).into(), 80))];
    let mut w = world(Opts {
        d1,
        ..Opts::default()
    });
    w.sim.run_until(s(2));
    let v = w.sim.violations();
    assert!(!v.is_empty());
    assert!(
        v.iter().all(|v| v.kind == ViolationKind::ConnToDownServer),
        "{v:?}"
    );
    // The same director forwarding only to servers it considers up is clean.
    let mut d1 = FakeCfg::new(D1_MAC, Some(Instant::ZERO));
    d1.ipvs = vec![
        IpvsChange::DelDest(svc, SockAddr(lan(12).into(), 80)),
        IpvsChange::AddDest(
            svc,
            lvs_core::ipvs::service::DestSpec {
                addr: lan(12).into(),
                port: 80,
                fwd: FwdMethod::Route,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
            },
        ),
    ];
    let mut w = world(Opts {
        d1,
        ..Opts::default()
    });
    w.sim.run_until(s(2));
    assert!(w.sim.violations().is_empty());
}

fn tcp_probe(id: u64, ip: Ipv4Addr) -> Probe {
    Probe {
        id: ProbeId(id),
        kind: ProbeKind::Tcp {
            target: SocketAddr::V4(SocketAddrV4::new(ip, 80)),
            bind: None,
        },
        timeout: Duration::from_secs(3),
    }
}

#[test]
fn probes_answer_as_the_modelled_network_does() {
    let mut d1 = FakeCfg::new(D1_MAC, Some(Instant::ZERO));
    d1.probes = vec![
        tcp_probe(1, lan(11)),
        tcp_probe(2, lan(12)),
        tcp_probe(3, lan(99)),
        Probe {
            id: ProbeId(4),
            kind: ProbeKind::Script {
                command: "/bin/check".into(),
            },
            timeout: Duration::from_secs(3),
        },
    ];
    let mut w = world(Opts {
        d1,
        workload: Workload::Open { rate: 0.0 },
        ..Opts::default()
    });
    w.sim.set_script_exit(w.d1, "/bin/check", Some(2));
    w.sim.apply(Fault::Service {
        host: w.rs2,
        port: 80,
        running: false,
    });
    w.sim.run_until(s(5));
    let got = w.seen1.borrow().probes.clone();
    assert_eq!(
        got,
        vec![
            (ProbeId(1), ProbeResult::Connected),
            (ProbeId(2), ProbeResult::ConnectFailed),
            (ProbeId(4), ProbeResult::Exit(Some(2))),
            (ProbeId(3), ProbeResult::Timeout),
        ]
    );
    // A real server behind a downed NIC times out.
    let mut d1 = FakeCfg::new(D1_MAC, Some(Instant::ZERO));
    d1.probes = vec![tcp_probe(1, lan(11))];
    let mut w = world(Opts {
        d1,
        workload: Workload::Open { rate: 0.0 },
        ..Opts::default()
    });
    w.sim.apply(Fault::Nic {
        host: w.rs1,
        iface: "eth0".into(),
        up: false,
    });
    w.sim.run_until(s(5));
    assert_eq!(
        w.seen1.borrow().probes,
        vec![(ProbeId(1), ProbeResult::Timeout)]
    );
}

#[test]
fn open_loop_rate_is_respected() {
    let mut w = world(Opts {
        workload: Workload::Open { rate: 200.0 },
        ..Opts::default()
    });
    w.sim.run_until(s(10) + Duration::from_millis(100));
    let m = w.sim.metrics();
    // ~2000 expected; a Poisson count is within ±10 % with overwhelming probability.
    assert!((1800..2200).contains(&m.requests_sent), "{m:?}");
    assert_eq!(
        m.requests_ok + m.requests_failed + w.sim.client(w.client).unwrap().in_flight() as u64,
        m.requests_sent
    );
}

fn beacon_world(seed: u64, link: LinkParams) -> World {
    let mut d1 = FakeCfg::new(D1_MAC, None);
    d1.beacon = true;
    let mut w = world(Opts {
        seed,
        d1,
        workload: Workload::Open { rate: 0.0 },
        ..Opts::default()
    });
    w.sim.apply(Fault::LinkParams {
        host: w.d1,
        iface: "eth0".into(),
        params: link,
    });
    w
}

#[test]
fn duplication_delivers_twice_and_reordering_lets_frames_overtake() {
    let mut w = beacon_world(
        1,
        LinkParams {
            duplicate: 1.0,
            ..LinkParams::default()
        },
    );
    w.sim.run_until(s(5) + Duration::from_millis(500));
    assert_eq!(
        w.seen2.borrow().beacons[&D1_MAC],
        vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    );

    let held = LinkParams {
        reorder: 0.5,
        reorder_delay: Duration::from_secs(3),
        ..LinkParams::default()
    };
    let mut w = beacon_world(1, held);
    w.sim.run_until(s(40));
    let got = w.seen2.borrow().beacons[&D1_MAC].clone();
    assert!(
        got.windows(2).any(|p| p[1] < p[0]),
        "some overtaking: {got:?}"
    );
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=sorted.len() as u32).collect::<Vec<_>>(),
        "nothing lost or doubled"
    );

    let mut w = beacon_world(1, LinkParams::default());
    w.sim.run_until(s(40));
    let inorder = w.seen2.borrow().beacons[&D1_MAC].clone();
    assert!(inorder.windows(2).all(|p| p[1] == p[0] + 1));
}

#[test]
fn loss_drops_a_seeded_fraction() {
    let lossy = LinkParams {
        loss: 0.3,
        ..LinkParams::default()
    };
    let mut w = beacon_world(3, lossy.clone());
    w.sim.run_until(s(1000) + Duration::from_millis(500));
    let n = w.seen2.borrow().beacons[&D1_MAC].len();
    assert!(
        (600..800).contains(&n),
        "{n} of 1001 delivered at 30 % loss"
    );
    let mut again = beacon_world(3, lossy);
    again.sim.run_until(s(1000) + Duration::from_millis(500));
    assert_eq!(
        again.seen2.borrow().beacons[&D1_MAC],
        w.seen2.borrow().beacons[&D1_MAC]
    );
}
