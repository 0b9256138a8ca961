//! Gateway cut-through (the simulator forwarding a frame through a gateway when it is sent,
//! not when it arrives there) must not change what happens. With no jitter, so that no random
//! draw moves between the two ways, a run gives a byte-identical trace either way: every
//! seed scenario as written, and under dense traffic through failovers (gratuitous ARPs
//! moving the VIP while frames are on their way to the gateway), partitions and link
//! changes at the gateway.

mod common;

use common::{load, SEED};
use lvs_core::Instant;
use lvs_scenarios::{LoadPattern, Role, Scenario};
use lvs_sim::scenario::build;
use lvs_sim::{Fault, LinkParams, Sim};
use std::time::Duration;

fn at(secs: f64) -> Instant {
    Instant::from_nanos((secs * 1e9) as u64)
}

fn without_jitter(name: &str) -> Scenario {
    let mut s = load(name);
    for seg in &mut s.segments {
        seg.jitter = Duration::ZERO;
    }
    s
}

/// Every client sends `rate` new requests per second until the end.
fn dense(mut s: Scenario, rate: f64) -> Scenario {
    for h in &mut s.hosts {
        if let Role::Client(c) = &mut h.role {
            c.workload.pattern = LoadPattern::Open { rate };
            c.workload.stop = s.duration;
        }
    }
    s
}

/// The trace and event count of `s` run to its end, with `extra` faults added.
fn run(s: &Scenario, cut_through: bool, extra: &dyn Fn(&mut Sim)) -> (String, u64) {
    let mut sim = match build(s, s.seed) {
        Ok(sim) => sim,
        Err(e) => panic!("{}: {e}", s.name),
    };
    sim.cut_through = cut_through;
    extra(&mut sim);
    sim.run_until(Instant::from_nanos(
        u64::try_from(s.duration.as_nanos()).unwrap_or(u64::MAX),
    ));
    (sim.trace_json(), sim.events_processed())
}

/// Runs `s` both ways and returns how many events cut-through saved.
fn same_both_ways(s: &Scenario, extra: &dyn Fn(&mut Sim)) -> u64 {
    let (plain, plain_events) = run(s, false, extra);
    let (cut, cut_events) = run(s, true, extra);
    assert!(plain == cut, "{}: cut-through changed the trace", s.name);
    plain_events - cut_events
}

#[test]
fn seed_scenarios_are_unchanged() {
    let saved: u64 = SEED
        .iter()
        .map(|name| same_both_ways(&without_jitter(name), &|_| {}))
        .sum();
    assert!(saved > 1000, "only {saved} gateway events were saved");
}

#[test]
fn failovers_under_dense_traffic_are_unchanged() {
    for name in [
        "07-master-killed",
        "08-master-back",
        "10-master-wan-nic-down",
    ] {
        let s = dense(without_jitter(name), 500.0);
        let saved = same_both_ways(&s, &|_| {});
        assert!(saved > 100_000, "{name}: only {saved} gateway events saved");
    }
}

#[test]
fn partitions_and_link_changes_at_the_gateway_are_unchanged() {
    let s = dense(without_jitter("03-traffic-spread"), 500.0);
    let faults = |sim: &mut Sim| {
        let gw = sim.host_id("gateway").expect("seed gateway");
        let d1 = sim.host_id("director1").expect("seed director1");
        let web1 = sim.host_id("web1").expect("seed web1");
        // Requests one way, responses the other, and a gateway link slowed then restored.
        sim.schedule(
            at(40.0),
            Fault::Partition {
                from: vec![gw],
                to: vec![d1],
                symmetric: false,
            },
        );
        sim.schedule(at(42.5), Fault::Heal);
        sim.schedule(
            at(50.0),
            Fault::Partition {
                from: vec![web1],
                to: vec![gw],
                symmetric: true,
            },
        );
        sim.schedule(at(51.0), Fault::Heal);
        let slow = LinkParams {
            latency: Duration::from_millis(3),
            ..LinkParams::default()
        };
        sim.schedule(
            at(60.0),
            Fault::LinkParams {
                host: gw,
                iface: "eth0".into(),
                params: slow,
            },
        );
        let usual = LinkParams {
            latency: Duration::from_micros(100),
            ..LinkParams::default()
        };
        sim.schedule(
            at(60.0015),
            Fault::LinkParams {
                host: gw,
                iface: "eth0".into(),
                params: usual,
            },
        );
        sim.schedule(
            at(70.0),
            Fault::Link {
                host: gw,
                iface: "eth1".into(),
                up: false,
            },
        );
        sim.schedule(
            at(70.002),
            Fault::Link {
                host: gw,
                iface: "eth1".into(),
                up: true,
            },
        );
    };
    let saved = same_both_ways(&s, &faults);
    assert!(saved > 100_000, "only {saved} gateway events saved");
}
