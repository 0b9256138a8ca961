//! Random fault timelines on the seed topology (scenarios/seed/01-start.toml with its faults
//! replaced): the safety invariants always hold, and once everything is repaired the
//! cluster converges within a stated bound.
//!
//! The bound, for the seed configs (advert_int 5 s, priorities 220/200 and 120/100, a sync
//! group, garp_master_delay 5 s) is the larger of two cases:
//! - VRRP: after the repair a director may have been restarted, and 2.2 then waits a full
//!   Master_Down_Interval, 3 x 5 s + skew (< 1 s), before it enters MASTER and sends its
//!   first gratuitous ARPs (which move the gateway's ARP entry at once); a director still
//!   MASTER from a partition learns of the better one within one more advert_int (5 s);
//!   1 s of slack covers propagation and the checker's polling: 3 x 5 + 1 + 5 + 1 = 22 s.
//! - The gateway's ARP cache: during a partition the lower-priority director becomes MASTER
//!   too and its gratuitous ARPs move the gateway's entry for the VIP to it. When the
//!   partition heals it steps down on the better master's next advert, but 2.2's better
//!   master, MASTER all along, hears no lower-priority advert and sends no gratuitous ARP,
//!   so the gateway keeps the stale entry until it expires: up to `arp_cache_timeout`
//!   (60 s in the seed) after the repair, plus 1 s of slack. (Found by this test: the
//!   simulator has no STALE/PROBE neighbour states, which would shorten this on Linux.)
//!
//! Hence converge within max(22 s, arp_cache_timeout + 1 s) of the repair.

mod common;

use std::time::Duration;

use common::load;
use lvs_scenarios::judge::RunOptions;
use lvs_scenarios::{Expect, Fault, FaultAction, IfaceRef, Role, Scenario};
use lvs_sim::scenario::run;
use proptest::prelude::*;

/// Faults happen in [0.5 s, 40 s]; everything is repaired at 45 s.
const REPAIR_AT: Duration = Duration::from_secs(45);
/// The VRRP part of the bound (see the module docs).
const VRRP_BOUND: Duration = Duration::from_secs(22);

/// The bound of the module docs for scenario `s`.
fn converge_bound(s: &Scenario) -> Duration {
    let arp = s
        .hosts
        .iter()
        .filter_map(|h| match &h.role {
            Role::Gateway(g) => Some(g.arp_cache_timeout + Duration::from_secs(1)),
            _ => None,
        })
        .max()
        .unwrap_or_default();
    VRRP_BOUND.max(arp)
}

#[derive(Debug, Clone)]
enum Ev {
    Kill(usize),
    Stop(usize),
    Restart(usize),
    NicDown(usize, usize),
    NicUp(usize, usize),
    Partition { one_way: bool, reversed: bool },
    Heal,
    ServiceStop(usize),
    ServiceStart(usize),
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        (0..2usize).prop_map(Ev::Kill),
        (0..2usize).prop_map(Ev::Stop),
        (0..2usize).prop_map(Ev::Restart),
        (0..4usize, 0..2usize).prop_map(|(h, i)| Ev::NicDown(h, i)),
        (0..4usize, 0..2usize).prop_map(|(h, i)| Ev::NicUp(h, i)),
        (any::<bool>(), any::<bool>())
            .prop_map(|(one_way, reversed)| Ev::Partition { one_way, reversed }),
        Just(Ev::Heal),
        (0..2usize).prop_map(Ev::ServiceStop),
        (0..2usize).prop_map(Ev::ServiceStart),
    ]
}

fn timeline() -> impl Strategy<Value = Vec<(u64, Ev)>> {
    proptest::collection::vec((500..40_000u64, ev()), 1..7)
}

/// The seed topology with `events` as its fault timeline, then a repair of everything.
fn scenario(events: &[(u64, Ev)]) -> Scenario {
    let mut s = load("01-start");
    let id = |name: &str| match s.host(name) {
        Some(h) => h.id,
        None => panic!("01-start has no host {name}"),
    };
    let directors = [id("director1"), id("director2")];
    let servers = [id("web1"), id("web2")];
    let nic_hosts = [directors[0], directors[1], servers[0], servers[1]];
    let iface = |h: usize, index: usize| IfaceRef {
        host: nic_hosts[h],
        index,
    };
    let mut alive = [true, true];
    let mut sorted = events.to_vec();
    sorted.sort_by_key(|(t, _)| *t);
    let mut faults = Vec::new();
    for (t, e) in &sorted {
        let action = match e {
            Ev::Kill(d) => {
                alive[*d] = false;
                FaultAction::Kill {
                    host: directors[*d],
                }
            }
            Ev::Stop(d) => {
                alive[*d] = false;
                FaultAction::Stop {
                    host: directors[*d],
                }
            }
            Ev::Restart(d) => {
                alive[*d] = true;
                FaultAction::Restart {
                    host: directors[*d],
                }
            }
            Ev::NicDown(h, i) => FaultAction::NicDown {
                iface: iface(*h, *i),
            },
            Ev::NicUp(h, i) => FaultAction::NicUp {
                iface: iface(*h, *i),
            },
            Ev::Partition { one_way, reversed } => {
                let (a, b) = if *reversed {
                    (directors[1], directors[0])
                } else {
                    (directors[0], directors[1])
                };
                FaultAction::Partition {
                    groups: vec![vec![a], vec![b]],
                    one_way: *one_way,
                }
            }
            Ev::Heal => FaultAction::Heal,
            Ev::ServiceStop(r) => FaultAction::ServiceStop {
                host: servers[*r],
                port: 80,
            },
            Ev::ServiceStart(r) => FaultAction::ServiceStart {
                host: servers[*r],
                port: 80,
            },
        };
        faults.push(Fault {
            at: Duration::from_millis(*t),
            action,
        });
    }
    let mut repair = vec![FaultAction::Heal];
    for h in 0..nic_hosts.len() {
        for i in 0..2 {
            repair.push(FaultAction::NicUp { iface: iface(h, i) });
        }
    }
    for r in servers {
        repair.push(FaultAction::ServiceStart { host: r, port: 80 });
    }
    for (d, up) in alive.iter().enumerate() {
        if !up {
            repair.push(FaultAction::Restart { host: directors[d] });
        }
    }
    faults.extend(repair.into_iter().map(|action| Fault {
        at: REPAIR_AT,
        action,
    }));
    s.faults = faults;
    s.snapshots.clear();
    let bound = converge_bound(&s);
    s.duration = REPAIR_AT + bound + Duration::from_secs(3);
    for h in &mut s.hosts {
        if let Role::Client(c) = &mut h.role {
            c.workload.stop = s.duration;
        }
    }
    s.expect = Expect {
        vip_owner: Default::default(),
        vrrp_state: Default::default(),
        ipvs_destinations: Default::default(),
        max_failed_requests: None,
        min_completed_requests: None,
        failover_within: None,
        converge_within: Some(bound),
        share: Default::default(),
        invariants: true,
    };
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_faults_keep_safety_and_heal_within_bound(events in timeline(), seed in 1..1_000u64) {
        let s = scenario(&events);
        let opts = RunOptions { seed: Some(seed), ..RunOptions::default() };
        let r = match run(&s, &opts) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let names: Vec<&str> = r.verdicts.iter().map(|v| v.name.as_str()).collect();
        prop_assert_eq!(names, vec!["converge_within", "invariants"]);
        prop_assert!(
            r.passed(),
            "seed {} faults {:?}\n{}\n{}",
            seed,
            s.faults,
            r.render_verdicts(),
            r.render_logs()
        );
    }
}
