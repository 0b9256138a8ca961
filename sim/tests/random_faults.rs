//! Random fault timelines: the simulator never panics, and a seed replays byte for byte.

mod common;

use std::time::Duration;

use common::*;
use lvs_core::Instant;
use lvs_sim::{Fault, LinkParams};
use proptest::prelude::*;

fn fault(kind: u8, a: usize, b: usize, x: u8, w: &World) -> Fault {
    let hosts = [w.d1, w.d2, w.rs1, w.rs2, w.gw, w.client];
    let h = hosts[a % hosts.len()];
    let d = [w.d1, w.d2][a % 2];
    let iface = if h == w.gw { "eth1" } else { "eth0" }.to_string();
    match kind % 12 {
        0 => Fault::Kill(d),
        1 => Fault::Stop(d),
        2 => Fault::Pause(d),
        3 => Fault::Resume(d),
        4 => Fault::Restart(d),
        5 => Fault::Nic {
            host: h,
            iface,
            up: x & 1 == 0,
        },
        6 => Fault::Link {
            host: h,
            iface,
            up: x & 1 == 0,
        },
        7 => Fault::LinkParams {
            host: h,
            iface,
            params: LinkParams {
                loss: f64::from(x % 4) / 10.0,
                jitter: Duration::from_micros(u64::from(x) * 10),
                duplicate: f64::from(x % 3) / 10.0,
                reorder: f64::from(x % 5) / 10.0,
                ..LinkParams::default()
            },
        },
        8 => Fault::Partition {
            from: vec![h],
            to: vec![hosts[b % hosts.len()]],
            symmetric: x & 1 == 0,
        },
        9 => Fault::Heal,
        10 => Fault::Service {
            host: [w.rs1, w.rs2][a % 2],
            port: 80,
            running: x & 1 == 0,
        },
        _ => Fault::ClockDrift {
            host: d,
            ppm: (i64::from(x) - 128) * 1000,
        },
    }
}

fn run(seed: u64, plan: &[(u16, u8, usize, usize, u8)]) -> (String, u64) {
    let d2 = FakeCfg::new(D2_MAC, Some(Instant::from_secs(3)));
    let mut w = world(Opts {
        seed,
        d2,
        ..Opts::default()
    });
    for &(at_ms, kind, a, b, x) in plan {
        let f = fault(kind, a, b, x, &w);
        w.sim.schedule(Instant::from_millis(u64::from(at_ms)), f);
    }
    w.sim.run_until(Instant::from_secs(12));
    let _ = w.sim.svg();
    let m = w.sim.metrics();
    let total = m.requests_ok
        + m.requests_failed
        + w.sim.client(w.client).map_or(0, |c| c.in_flight() as u64);
    assert_eq!(total, m.requests_sent, "every request is accounted for");
    (w.sim.trace_json(), m.requests_sent)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_faults_replay_identically(
        seed in 0u64..1000,
        plan in proptest::collection::vec((0u16..10_000, any::<u8>(), 0usize..6, 0usize..6, any::<u8>()), 0..12),
    ) {
        let (a, _) = run(seed, &plan);
        let (b, _) = run(seed, &plan);
        prop_assert_eq!(a, b);
    }
}
