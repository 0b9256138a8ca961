//! The real `lvs_core::director::Director`, built from keepalived.conf text, driving the
//! modelled LVS-DR network: election, DR forwarding, health checks, failover.

mod common;

use common::*;
use lvs_core::Instant;
use lvs_sim::keepalived::factory;
use lvs_sim::Fault;

fn conf(state: &str, priority: u8) -> String {
    format!(
        "vrrp_instance VI {{
    state {state}
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    authentication {{ auth_type PASS
        auth_pass secret }}
    virtual_ipaddress {{ 10.0.0.100 }}
}}
virtual_server 10.0.0.100 80 {{
    delay_loop 2
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.11 80 {{ weight 1
        TCP_CHECK {{ connect_timeout 1 }} }}
    real_server 10.0.0.12 80 {{ weight 1
        TCP_CHECK {{ connect_timeout 1 }} }}
}}
"
    )
}

fn real_world() -> World {
    let f1 = factory("d1.conf", &conf("MASTER", 150)).expect("valid config");
    let f2 = factory("d2.conf", &conf("BACKUP", 100)).expect("valid config");
    world_with(
        Opts::default(),
        f1,
        f2,
        Default::default(),
        Default::default(),
    )
}

#[test]
fn core_director_elects_forwards_dr_and_spreads_over_both_real_servers() {
    let mut w = real_world();
    w.sim.run_until(Instant::from_secs(20));
    assert_eq!(
        w.sim.vip_holders(VIP),
        vec![w.d1],
        "{}",
        w.sim.log_text(w.d1)
    );
    assert_eq!(gw_vip_mac(&w), Some(D1_MAC));
    let m = w.sim.metrics();
    assert!(m.requests_ok > 100, "{m:?}\n{}", w.sim.log_text(w.d1));
    assert!(m.per_server["rs1"] > 0 && m.per_server["rs2"] > 0, "{m:?}");
    assert!(w.sim.violations().is_empty(), "{:?}", w.sim.violations());
}

#[test]
fn core_director_backup_takes_over_after_the_master_is_killed() {
    let mut w = real_world();
    w.sim.schedule(Instant::from_secs(15), Fault::Kill(w.d1));
    w.sim.run_until(Instant::from_secs(30));
    // The killed director's address stays configured, as on Linux
    // (scenarios/reference/keepalived-2.2-sigkill.log); the new master's gratuitous ARPs
    // moved the gateway to it.
    assert_eq!(
        w.sim.vip_holders(VIP),
        vec![w.d1, w.d2],
        "{}",
        w.sim.log_text(w.d2)
    );
    assert_eq!(gw_vip_mac(&w), Some(D2_MAC));
    let before = w.sim.metrics().requests_ok;
    w.sim.run_until(Instant::from_secs(35));
    assert!(
        w.sim.metrics().requests_ok > before,
        "traffic flows through the new master"
    );
    assert!(w.sim.violations().is_empty(), "{:?}", w.sim.violations());
}

#[test]
fn a_stopped_service_is_removed_and_gets_no_new_connections() {
    let mut w = real_world();
    w.sim.schedule(
        Instant::from_secs(10),
        Fault::Service {
            host: w.rs2,
            port: 80,
            running: false,
        },
    );
    w.sim.run_until(Instant::from_secs(40));
    let log = w.sim.log_text(w.d1);
    assert!(
        log.contains("Removing service [10.0.0.12]:tcp:80 from VS [10.0.0.100]:tcp:80"),
        "{log}"
    );
    assert!(w.sim.violations().is_empty(), "{:?}", w.sim.violations());
}

#[test]
fn a_failing_track_script_lowers_the_priority_and_the_backup_preempts() {
    let tracked = |state: &str, priority: u8| {
        conf(state, priority).replace(
            "    virtual_ipaddress {",
            "    track_script { chk_web }\n    virtual_ipaddress {",
        )
    };
    let script = "vrrp_script chk_web {\n    script \"/usr/local/bin/chk_web\"\n    interval 1\n    weight -60\n}\n";
    let f1 = factory("d1.conf", &format!("{script}{}", tracked("MASTER", 150))).expect("valid");
    let f2 = factory("d2.conf", &format!("{script}{}", tracked("BACKUP", 100))).expect("valid");
    let mut w = world_with(
        Opts::default(),
        f1,
        f2,
        Default::default(),
        Default::default(),
    );
    for h in [w.d1, w.d2] {
        w.sim.set_script_exit(h, "/usr/local/bin/chk_web", Some(0));
    }
    w.sim.run_until(Instant::from_secs(20));
    assert_eq!(w.sim.vip_holders(VIP), vec![w.d1]);
    // 150 - 60 = 90 < 100: the backup's higher-priority adverts take the VIP.
    w.sim
        .set_script_exit(w.d1, "/usr/local/bin/chk_web", Some(1));
    w.sim.run_until(Instant::from_secs(40));
    assert_eq!(
        w.sim.vip_holders(VIP),
        vec![w.d2],
        "{}",
        w.sim.log_text(w.d1)
    );
    assert!(
        w.sim.log_text(w.d1).contains("chk_web"),
        "{}",
        w.sim.log_text(w.d1)
    );
}
