//! IPv6 end to end (issue 12 point 2): an LVS-DR, an LVS-NAT and an LVS-TUN cluster whose
//! directors run VRRP version 3 over IPv6 and whose hosts find each other by neighbour
//! discovery, a real server's web server stopping and the master's keepalived stopping.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use lvs_scenarios::judge::{at, RunOptions};
use lvs_scenarios::observe::Observed;
use lvs_scenarios::{Scenario, Show};
use lvs_sim::client::{FailReason, Outcome};
use lvs_sim::record::TraceEvent;
use lvs_sim::scenario::{build, run};
use lvs_sim::Sim;

fn load(name: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

const VIP: &str = "2001:db8:22::118";

/// The requests of a run of `sim`, all to `[vip]:80`, each failure held to an explanation: a
/// reset by web2 between its web server's `stop` and the checker's `removed` (a SYN sent just
/// before the stop arrives after it: the reset comes after the stop), or a connection
/// established through the old master lost at `failover` (no sync daemon: the new master
/// drops its mid-stream packets, as IPVS creates no entry for them). Returns the servers that
/// answered, the resets and the connections lost.
fn explained(
    sim: &Sim,
    vip: &str,
    stop: Duration,
    removed: Duration,
    failover: Option<Duration>,
) -> (Vec<String>, usize, usize) {
    let (mut servers, mut resets, mut broken) = (BTreeSet::new(), 0, 0);
    for e in sim.trace() {
        let TraceEvent::Request { record } = &e.event else {
            continue;
        };
        assert_eq!(record.target.to_string(), format!("[{vip}]:80"));
        let sent = Duration::from_nanos(record.started.as_nanos());
        let done = Duration::from_nanos(record.finished.as_nanos());
        match &record.outcome {
            Outcome::Ok { server } => {
                servers.insert(server.to_string());
            }
            Outcome::Failed { reason, broken: b } => {
                let reset = *reason == FailReason::Reset && !b && done >= stop && sent <= removed;
                let lost = failover
                    .is_some_and(|f| *reason == FailReason::Timeout && *b && sent < f && done > f);
                assert!(
                    reset || lost,
                    "unexplained failure of a request sent at {sent:?}: {reason:?}"
                );
                resets += usize::from(reset);
                broken += usize::from(lost);
            }
        }
    }
    (servers.into_iter().collect(), resets, broken)
}

/// When director1's checker removed `service` (`[addr]:tcp:port`), which it must within 5 s
/// of the web server's `stop`.
fn removal(r: &lvs_scenarios::observe::RunRecord, stop: Duration, service: &str) -> Duration {
    let line = format!("Removing service {service}");
    let removed = common::logged_at(&r.observations, "director1", &line)
        .unwrap_or_else(|| panic!("the checker never logs {line:?}"));
    assert!(removed > stop && removed < stop + Duration::from_secs(5));
    removed
}

/// `host`'s `ipvsadm -L -n --stats`, and its Conns, InPkts and OutPkts for `[vip]:80`.
fn counters(sim: &Sim, host: lvs_sim::HostId, vip: &str) -> (String, [u64; 3]) {
    let stats = sim.show(host, Show::Stats).unwrap();
    let line = stats
        .lines()
        .find(|l| l.starts_with(&format!("TCP  [{vip}]:80")))
        .unwrap_or_else(|| panic!("{stats}"));
    let cols: Vec<u64> = line
        .split_whitespace()
        .skip(2)
        .take(3)
        .map(|c| c.parse().unwrap())
        .collect();
    let counts = [cols[0], cols[1], cols[2]];
    (stats, counts)
}

#[test]
fn ipv6_dr_cluster_fails_only_between_service_stop_and_removal_and_at_the_failover() {
    let s = load("ipv6/ipv6-dr-failover.toml");
    let (_, r) = common::passing(&s);
    let (stop, failover) = (s.faults[0].at, s.faults[1].at);
    let removed = removal(&r, stop, "[2001:db8:22::117]:tcp:80");
    // The new master announces the VIP with unsolicited neighbour adverts, as keepalived.
    assert!(r.observations.iter().any(|o| o.host == "director2"
        && o.t > failover
        && matches!(&o.what, Observed::Log { line }
            if line.contains(&format!("(WAN6) Sending/queueing Unsolicited Neighbour Adverts on eth0 for {VIP}")))));

    let mut sim = build(&s, s.seed).unwrap();
    sim.run_until(at(s.duration));
    let (servers, resets, broken) = explained(&sim, VIP, stop, removed, Some(failover));
    assert_eq!(servers, ["web1", "web2", "web3"]);
    assert!(resets > 0, "web2's stop reset nothing");
    assert!(broken <= 3, "{broken} connections lost at the failover");

    // The gateway sends the VIP to the new master's MAC: the unsolicited advert with the
    // override flag moved its neighbour entry.
    let host = |n: &str| sim.host_id(n).unwrap();
    let vip: Ipv6Addr = VIP.parse().unwrap();
    let entry = sim
        .stack(host("gateway"))
        .and_then(|st| st.lookup(sim.now(), IpAddr::V6(vip)))
        .expect("the gateway knows the VIP");
    let d2_mac = sim.stack(host("director2")).unwrap().ifaces()[0].spec.mac;
    assert_eq!(entry.mac, d2_mac);
    assert_eq!(sim.vip_holders(IpAddr::V6(vip)), vec![host("director2")]);
    // ... and the trace says so: the VIP's neighbour entry on the gateway moved to
    // director2 after the failover, and last points there.
    let moves: Vec<(u64, Option<String>)> = sim
        .trace()
        .iter()
        .filter_map(|e| match &e.event {
            TraceEvent::GatewayArp { ip, owner, .. } if *ip == VIP => Some((e.t, owner.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        moves.first().map(|m| m.1.as_deref()),
        Some(Some("director1"))
    );
    assert_eq!(
        moves.last().map(|m| m.1.as_deref()),
        Some(Some("director2"))
    );
    let failover_ns = u64::try_from(failover.as_nanos()).unwrap();
    assert!(moves
        .iter()
        .any(|(t, o)| *t > failover_ns && o.as_deref() == Some("director2")));

    // The tables and addresses as ipvsadm and iproute2 print them for IPv6.
    let list = sim.show(host("director2"), Show::List).unwrap();
    assert!(list.contains(&format!("TCP  [{VIP}]:80 wrr")), "{list}");
    assert!(
        list.contains("  -> [2001:db8:22::116]:80        Route   1"),
        "{list}"
    );
    let addrs = sim.show(host("director2"), Show::Addresses).unwrap();
    assert!(
        addrs.contains(&format!("    inet6 {VIP}/64 scope global nodad \n")),
        "{addrs}"
    );
}

const NAT_VIP: &str = "2001:db8:22::118";

// IPv6 NAT: the real servers have no VIP and route through the LAN VIP; every reply crosses
// the master, which gives it the virtual service's address and port (the servers listen
// on 8080). Requests fail only as web2's stop explains; the failover loses none.
#[test]
fn ipv6_nat_cluster_rewrites_both_ways_and_fails_only_at_the_service_stop() {
    let s = load("ipv6-nat/ipv6-nat-failover.toml");
    let (_, r) = common::passing(&s);
    let stop = s.faults[0].at;
    let removed = removal(&r, stop, "[2001:db8:168::117]:tcp:8080");
    let mut sim = build(&s, s.seed).unwrap();
    sim.run_until(at(s.duration));
    // The client only ever talks to the virtual service: a reply the director did not
    // rewrite would come from [2001:db8:168::11x]:8080 and match no connection. The failover
    // loses nothing.
    let (answered, resets, _) = explained(&sim, NAT_VIP, stop, removed, None);
    assert_eq!(answered, ["web1", "web2"]);
    assert!(resets > 0, "web2's stop reset nothing");

    let host = |n: &str| sim.host_id(n).unwrap();
    // The replies went back through the new master: its table counts packets both ways.
    let (stats, [conns, inpkts, outpkts]) = counters(&sim, host("director2"), NAT_VIP);
    assert!(
        conns > 100 && inpkts >= 3 * conns && outpkts >= 2 * conns,
        "{stats}"
    );
    let list = sim.show(host("director2"), Show::List).unwrap();
    assert!(
        list.contains("  -> [2001:db8:168::116]:8080     Masq    1"),
        "{list}"
    );
    // Both VIPs moved, the real servers' gateway with them.
    for vip in [NAT_VIP, "2001:db8:168::118"] {
        let vip: Ipv6Addr = vip.parse().unwrap();
        assert_eq!(sim.vip_holders(IpAddr::V6(vip)), vec![host("director2")]);
    }
    let gw: Ipv6Addr = "2001:db8:168::118".parse().unwrap();
    let d2_lan = sim.stack(host("director2")).unwrap().ifaces()[1].spec.mac;
    for web in ["web1", "web2"] {
        let entry = sim
            .stack(host(web))
            .and_then(|st| st.lookup(sim.now(), IpAddr::V6(gw)))
            .expect("the real server knows its gateway");
        assert_eq!(entry.mac, d2_lan, "{web}");
    }
}

const TUN_VIP: &str = "2001:db8:22::118";

// IPv6 TUN: the real servers sit in another prefix behind the gateway; each request reaches
// its server inside IPv6 in IPv6, GRE or GUE over IPv6, is taken out of the tunnel there
// and answered straight to the client from the VIP on lo. Requests fail only as web2's stop
// and the failover explain.
#[test]
fn ipv6_tun_cluster_tunnels_to_every_receiver_and_fails_only_where_explained() {
    let s = load("ipv6-tun/ipv6-tun-failover.toml");
    let (_, r) = common::passing(&s);
    let (stop, failover) = (s.faults[0].at, s.faults[2].at);
    let removed = removal(&r, stop, "[2001:db8:20::12]:tcp:80");
    let mut sim = build(&s, s.seed).unwrap();
    sim.run_until(at(s.duration));
    // The answer comes straight from the real server, from the VIP: a reply from its own
    // address would match no connection of the client's.
    let (servers, resets, broken) = explained(&sim, TUN_VIP, stop, removed, Some(failover));
    assert_eq!(servers, ["web1", "web2", "web3"]);
    assert!(resets > 0, "web2's stop reset nothing");
    assert!(broken <= 3, "{broken} connections lost at the failover");

    let host = |n: &str| sim.host_id(n).unwrap();
    // Every real server took its own encapsulation apart and refused none.
    for web in ["web1", "web2", "web3"] {
        let st = &sim.stack(host(web)).unwrap().stats;
        assert!(st.decapsulated > 100, "{web}: {st:?}");
        assert_eq!(st.dropped_no_tunnel, 0, "{web}: {st:?}");
    }
    // The gateway routed the tunnels and the direct answers; the directors saw no reply.
    let list = sim.show(host("director2"), Show::List).unwrap();
    assert!(list.contains(&format!("TCP  [{TUN_VIP}]:80 wrr")), "{list}");
    assert!(
        list.contains("  -> [2001:db8:20::11]:80         Tunnel  1"),
        "{list}"
    );
    let (stats, [conns, inpkts, outpkts]) = counters(&sim, host("director2"), TUN_VIP);
    assert!(conns > 100 && inpkts >= 3 * conns, "{stats}");
    assert_eq!(outpkts, 0, "{stats}");
    let vip: Ipv6Addr = TUN_VIP.parse().unwrap();
    assert_eq!(sim.vip_holders(IpAddr::V6(vip)), vec![host("director2")]);
    let entry = sim
        .stack(host("gateway"))
        .and_then(|st| st.lookup(sim.now(), IpAddr::V6(vip)))
        .expect("the gateway knows the VIP");
    assert_eq!(
        entry.mac,
        sim.stack(host("director2")).unwrap().ifaces()[0].spec.mac
    );
}

// Across families is still refused when the scenario is built, with the line that asks for
// it: an IPv6 real server tunnelled from an IPv4 virtual server (the kernel would send IPv4
// in IPv6); and UDP to an IPv6 VIP.
#[test]
fn cross_family_tun_and_ipv6_udp_are_refused_with_the_line_that_asks_for_them() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/ipv6");
    let conf = std::fs::read_to_string(dir.join("keepalived.conf.master")).unwrap();
    let toml = std::fs::read_to_string(dir.join("ipv6-dr-failover.toml")).unwrap();
    let asked = conf.replace("lb_kind DR", "lb_kind TUN").replace(
        "virtual_server 2001:db8:22::118 80",
        "virtual_server 223.202.22.118 80",
    );
    assert_ne!(asked, conf);
    let line = asked
        .lines()
        .position(|l| l.contains("real_server 2001:db8:22::116"))
        .unwrap()
        + 1;
    let text = toml.replace(
        "keepalived_conf = \"keepalived.conf.master\"",
        &format!("keepalived_conf_inline = '''\n{asked}'''"),
    );
    let s = Scenario::from_str(&text, &dir).unwrap();
    let err = run(&s, &RunOptions::default()).unwrap_err().to_string();
    assert!(err.contains("host director1"), "{err}");
    assert!(err.contains(&format!(":{line}:")), "{err}");
    assert!(err.contains("not IPv4 in IPv6 yet"), "{err}");
    let udp = toml.replacen(
        "target = \"[2001:db8:22::118]:80\"",
        "target = \"[2001:db8:22::118]:80\"\nprotocol = \"udp\"",
        1,
    );
    let err = Scenario::from_str(&udp, &dir).unwrap_err().to_string();
    assert!(
        err.contains("workload.target: UDP and SCTP over IPv6"),
        "{err}"
    );
}
