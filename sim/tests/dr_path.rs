//! End-to-end paths through the modelled network with a test-only director.

mod common;

use std::time::Duration;

use common::*;
use lvs_core::Instant;
use lvs_sim::client::Workload;
use lvs_sim::{Fault, LinkParams};

#[test]
fn client_gateway_director_real_server_and_back() {
    let mut w = world(Opts::default());
    w.sim.run_until(Instant::from_secs(10));
    let m = w.sim.metrics();
    assert!(m.requests_ok > 100, "{m:?}");
    assert_eq!(m.requests_failed, 0);
    assert!(m.per_server["rs1"] > 0 && m.per_server["rs2"] > 0, "{m:?}");
    assert!(m.jain_index().unwrap() > 0.95);
    assert_eq!(gw_vip_mac(&w), Some(D1_MAC));
    assert_eq!(w.sim.vip_holders(VIP), vec![w.d1]);
    // The real servers never answered ARP for the VIP (arp_ignore=1) and sent the
    // replies themselves, through the gateway (DR).
    assert!(w.sim.server(w.rs1).unwrap().stats.served > 0);
    assert!(w.sim.violations().is_empty(), "{:?}", w.sim.violations());
}

#[test]
fn real_server_drops_dr_packets_for_a_vip_it_does_not_hold() {
    let mut w = world(Opts {
        rs2_holds_vip: false,
        ..Opts::default()
    });
    w.sim.run_until(Instant::from_secs(10));
    let m = w.sim.metrics();
    assert!(w.sim.stack(w.rs2).unwrap().stats.dropped_not_local > 0);
    assert_eq!(w.sim.server(w.rs2).unwrap().stats.accepted, 0);
    assert_eq!(m.per_server["rs2"], 0);
    assert!(
        m.failures.get("connect_timeout").copied().unwrap_or(0) > 0,
        "{m:?}"
    );
    assert!(m.per_server["rs1"] > 0);
}

#[test]
fn garp_moves_the_vip_at_the_gateway_and_failover_is_measured() {
    // Takeover 7 s after the kill: longer than a client's SYN give-up (1+2+4 s).
    let mut d2 = FakeCfg::new(D2_MAC, Some(Instant::from_secs(12)));
    d2.garp = true;
    let mut w = world(Opts {
        d2,
        ..Opts::default()
    });
    w.sim.schedule(Instant::from_secs(5), Fault::Kill(w.d1));
    w.sim
        .expect_converged(Instant::from_secs(5), Duration::from_secs(8));
    w.sim.run_until(Instant::from_millis(11_500));
    assert_eq!(gw_vip_mac(&w), Some(D1_MAC), "nothing moved the entry yet");
    let took = w
        .sim
        .run_until_converged(Duration::from_secs(5))
        .expect("converges");
    assert!(w.sim.now() >= Instant::from_secs(12) && took > Duration::ZERO);
    assert_eq!(gw_vip_mac(&w), Some(D2_MAC));
    w.sim.run_until(Instant::from_secs(20));
    let m = w.sim.metrics();
    assert!(m.requests_failed > 0);
    let fo = m.failover_time().expect("recovered");
    assert!(
        fo > Duration::ZERO && fo < Duration::from_secs(10),
        "{fo:?}"
    );
    assert_eq!(w.sim.invariants().liveness_met().len(), 1);
    assert!(w.sim.invariants().liveness_met()[0].is_some());
    assert!(w.sim.violations().is_empty(), "{:?}", w.sim.violations());
}

#[test]
fn without_garp_the_vip_moves_only_when_the_cache_entry_expires() {
    let mut d2 = FakeCfg::new(D2_MAC, Some(Instant::from_secs(6)));
    d2.garp = false;
    let mut w = world(Opts {
        d2,
        gw_arp_timeout: Duration::from_secs(20),
        ..Opts::default()
    });
    // The dead director's addresses go with it here, so only d2 can answer the re-ARP (with
    // Linux's default they stay: see the next test).
    w.sim.set_keep_vips_on_kill(w.d1, false);
    w.sim.schedule(Instant::from_secs(5), Fault::Kill(w.d1));
    w.sim.run_until(Instant::from_secs(15));
    assert_eq!(
        w.sim.stack(w.gw).unwrap().neigh[&VIP].mac,
        D1_MAC,
        "stale entry kept"
    );
    let failed_early = w.sim.metrics().requests_failed;
    assert!(failed_early > 0);
    w.sim.run_until(Instant::from_secs(40));
    assert_eq!(gw_vip_mac(&w), Some(D2_MAC), "re-resolved after expiry");
    assert!(w.sim.metrics().failover_time().unwrap() > Duration::from_secs(10));
}

// SIGKILL leaves the VIP configured (scenarios/reference/keepalived-2.2-sigkill.log), so the
// dead master's kernel still answers ARP for it: when the gateway's entry expires both
// directors answer its request, and here the dead one's reply is the first to arrive, so the
// gateway goes on sending the VIP's traffic to a host that forwards nothing.
#[test]
fn a_killed_masters_leftover_vip_still_answers_arp() {
    let mut d2 = FakeCfg::new(D2_MAC, Some(Instant::from_secs(6)));
    d2.garp = false;
    let mut w = world(Opts {
        d2,
        gw_arp_timeout: Duration::from_secs(20),
        ..Opts::default()
    });
    w.sim.schedule(Instant::from_secs(5), Fault::Kill(w.d1));
    w.sim.run_until(Instant::from_secs(40));
    assert_eq!(w.sim.vip_holders(VIP), vec![w.d1, w.d2]);
    assert_eq!(gw_vip_mac(&w), Some(D1_MAC), "re-resolved to the leftover");
    let failed = w.sim.metrics().requests_failed;
    w.sim.run_until(Instant::from_secs(45));
    assert!(w.sim.metrics().requests_failed > failed, "still failing");
}

#[test]
fn liveness_bound_is_reported_when_takeover_is_too_slow() {
    let d2 = FakeCfg::new(D2_MAC, Some(Instant::from_secs(30)));
    let mut w = world(Opts {
        d2,
        workload: Workload::Open { rate: 0.0 },
        ..Opts::default()
    });
    w.sim.schedule(Instant::from_secs(5), Fault::Kill(w.d1));
    w.sim
        .expect_converged(Instant::from_secs(5), Duration::from_secs(3));
    w.sim.run_until(Instant::from_secs(20));
    let v = w.sim.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, lvs_sim::invariants::ViolationKind::Liveness);
}

#[test]
fn lossy_links_cause_retransmissions_but_requests_succeed() {
    let link = LinkParams {
        loss: 0.05,
        jitter: Duration::from_micros(200),
        ..LinkParams::default()
    };
    let mut w = world(Opts {
        link,
        ..Opts::default()
    });
    w.sim.run_until(Instant::from_secs(20));
    let m = w.sim.metrics();
    assert!(m.requests_ok > 20, "{m:?}");
    // 1 s initial RTO: a lost segment shows up as a latency of at least one second.
    assert!(m.latency_max_ns >= 1_000_000_000, "{m:?}");
}

#[test]
fn the_core_director_plugs_in_unchanged() {
    use lvs_sim::stack::IfaceSpec;
    let conf = "vrrp_instance V { interface eth0\n virtual_router_id 9\n priority 150\n virtual_ipaddress { 10.0.0.100 } }\n";
    let mut factory = lvs_sim::keepalived::factory("t.conf", conf).unwrap();
    let mut sim = lvs_sim::Sim::new(1);
    let seg = sim.add_segment("lan", false);
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen2 = seen.clone();
    let d = sim
        .add_director(
            "lvs1",
            vec![IfaceSpec::new("eth0", D1_MAC, lan(2), 24)],
            Box::new(move |env, _rng| {
                seen2.borrow_mut().push(env.clone());
                factory(env, _rng)
            }),
        )
        .unwrap();
    sim.connect(d, "eth0", seg, LinkParams::default()).unwrap();
    sim.schedule(Instant::from_secs(1), Fault::Restart(d));
    sim.run_until(Instant::from_secs(2));
    let envs = seen.borrow();
    assert_eq!(envs.len(), 2, "started, then restarted");
    assert_eq!(envs[0].hostname, "lvs1");
    assert_eq!(envs[0].ifaces[0].mac, D1_MAC);
    assert!(sim.director_alive(d));
}

#[test]
fn an_interface_downed_through_stack_mut_acts_like_the_nic_fault() {
    // With jitter, a frame sent towards a down interface must not draw its delay: a
    // stack changed by hand has to be seen by the sender exactly as a fault is.
    let jittery = || Opts {
        link: LinkParams {
            jitter: Duration::from_micros(30),
            ..LinkParams::default()
        },
        ..Opts::default()
    };
    let (mut a, mut b) = (world(jittery()), world(jittery()));
    for w in [&mut a, &mut b] {
        w.sim.run_until(Instant::from_secs(5));
    }
    let iface = a.sim.stack(a.rs2).unwrap().ifaces()[0].spec.name.clone();
    a.sim.apply(Fault::Nic {
        host: a.rs2,
        iface,
        up: false,
    });
    b.sim.stack_mut(b.rs2).unwrap().set_up(0, false);
    for w in [&mut a, &mut b] {
        w.sim.run_until(Instant::from_secs(12));
    }
    assert_eq!(a.sim.metrics(), b.sim.metrics());
    assert_eq!(a.sim.events_processed(), b.sim.events_processed());
    let accepted = a.sim.server(a.rs2).unwrap().stats.accepted;
    assert_eq!(b.sim.server(b.rs2).unwrap().stats.accepted, accepted);
}
