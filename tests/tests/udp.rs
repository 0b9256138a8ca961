//! UDP services end to end (issue 12 point 2): a DNS-like LVS-DR cluster, resolver-like
//! clients, a name server stopping on one real server and a master failover.

use std::collections::BTreeSet;
use std::time::Duration;

use lvs_sim::client::{FailReason, Outcome};

mod common;

#[test]
fn dr_udp_answers_fail_only_between_service_stop_and_removal_and_stick_per_port() {
    let s = common::scenario("udp/udp-dr-failover.toml");
    let (report, r) = common::passing(&s);
    let stop = s.faults[0].at;
    let removed = common::logged_at(
        &r.observations,
        "director1",
        "Removing service [223.202.22.117]:udp:53",
    )
    .expect("the checker removes dns2");
    assert!(removed > stop && removed < stop + Duration::from_secs(5));

    let (mut servers, mut sticky, mut refused) = (BTreeSet::new(), BTreeSet::new(), 0);
    for (sent, port, outcome) in common::requests(&s) {
        match &outcome {
            Outcome::Ok { server } => {
                servers.insert(server.to_string());
                if port == 5353 {
                    sticky.insert(server.to_string());
                }
            }
            // dns2's kernel refuses (ICMP port unreachable) the datagrams IPVS sends it
            // from its name server's stop until the checker takes it out; a datagram the
            // ICMP rate limit leaves unanswered times out. Nothing else may fail: the
            // failover loses no request.
            Outcome::Failed { reason, broken } => {
                assert!(
                    matches!(reason, FailReason::Refused | FailReason::Timeout)
                        && !broken
                        && sent >= stop
                        && sent <= removed,
                    "unexplained failure of a request sent at {sent:?}: {reason:?}"
                );
                refused += usize::from(*reason == FailReason::Refused);
            }
        }
    }
    assert_eq!(
        servers.into_iter().collect::<Vec<_>>(),
        ["dns1", "dns2", "dns3"]
    );
    assert!(refused > 0, "dns2's stop refused nothing");
    assert_eq!(
        sticky.len(),
        1,
        "port 5353 moved between servers: {sticky:?}"
    );
    assert!(r
        .requests
        .failures
        .keys()
        .all(|k| k == "refused" || k == "timeout"));

    // The connection table holds one UDP entry per client port, expiring 300 s after the
    // last datagram (ip_vs_proto_udp.c udp_timeouts[IP_VS_UDP_S_NORMAL]).
    let conns = report
        .snapshots
        .iter()
        .find(|x| x.director == "director1" && x.command == "ipvsadm -L -n -c")
        .and_then(|x| x.table.as_deref())
        .expect("a -c listing at 30 s");
    let entries: Vec<&str> = conns.lines().filter(|l| l.starts_with("UDP ")).collect();
    assert!(entries.len() > 100, "{conns}");
    for l in &entries {
        let w: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(w[2], "UDP", "{l}");
        let (m, s) = w[1].split_once(':').expect("MM:SS");
        let left: u32 = m.parse::<u32>().unwrap() * 60 + s.parse::<u32>().unwrap();
        assert!((280..=300).contains(&left), "{l}");
    }
    let sticky_rows = entries.iter().filter(|l| l.contains(":5353 ")).count();
    assert_eq!(sticky_rows, 1, "one entry for the fixed port");
}
