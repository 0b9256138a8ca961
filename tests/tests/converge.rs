//! `converge_within` (issue 12): converged means settled IPVS tables too, not only one
//! MASTER per instance and one holder per VIP: every running director's table shows each of
//! its real servers as it is.

mod common;

use std::time::Duration;

use lvs_scenarios::judge::at;
use lvs_sim::scenario::build;

/// Seed step 4: web1's service stops at 30 s; director1 (master) removes it at 35.6 s,
/// director2 (backup) at 38.9 s. VRRP never moves, so only the tables say when it settled.
#[test]
fn a_real_server_failure_has_converged_only_once_every_checker_removed_it() {
    let s = common::load("04-realserver-down");
    let mut sim = build(&s, s.seed).unwrap();
    let (stop, first, last) = (30.0, 35.573, 38.922);
    let t = |secs: f64| at(Duration::from_secs_f64(secs));
    sim.run_until(t(stop - 1.0));
    assert!(sim.converged(), "settled before the fault");
    sim.run_until(t(stop + 0.5));
    assert!(
        !sim.converged(),
        "web1 stopped but both tables still send to it"
    );
    sim.run_until(t(first + 0.5));
    assert!(!sim.converged(), "director2 still lists web1");
    sim.run_until(t(last + 0.5));
    assert!(sim.converged(), "both directors removed web1");
}

/// Seed step 10: the master's WAN NIC goes down. Its checkers can no longer reach the real
/// servers (web1 is also on the LAN, but at another address): its empty table is the settled
/// one, and the cluster converges when the backup has taken over.
#[test]
fn a_director_that_cannot_reach_its_real_servers_is_settled_without_them() {
    let s = common::load("10-master-wan-nic-down");
    let mut sim = build(&s, s.seed).unwrap();
    let d1 = sim.host_id("director1").unwrap();
    sim.run_until(at(Duration::from_secs(60)));
    let table = sim.ipvs(d1).unwrap();
    assert!(table.services().all(|svc| svc.dests().is_empty()));
    assert!(sim.converged());
}
