//! SCTP services end to end (issue 12 point 2): a Diameter-like LVS-DR cluster with
//! keepalived's `protocol SCTP`, one association per request, a peer stopping on one real
//! server and a master failover.

use std::collections::BTreeSet;
use std::time::Duration;

use lvs_scenarios::judge::RunOptions;
use lvs_scenarios::observe::Observed;
use lvs_sim::client::{FailReason, Outcome};
use lvs_sim::scenario::{observe, run};

mod common;

/// `ip_vs_proto_sctp.c`'s `sctp_timeouts` in seconds, by the state name `-c` prints.
fn kernel_timeout(state: &str) -> Option<u32> {
    Some(match state {
        "NONE" => 2,
        "INIT1" | "REJECTED" => 4,
        "ESTABLISHED" => 900,
        "INIT" | "C-SENT" | "C-REPLIED" | "C-WAIT" | "COOKIE" | "C-ECHOED" | "S-SENT"
        | "S-RECEIVED" | "S-ACK-SENT" | "CLOSED" => 61,
        _ => return None,
    })
}

/// The SCTP rows of an `ipvsadm -L -n -c` listing as (state, seconds left, source, real
/// server), each checked against its state's timeout.
fn sctp_rows(listing: &str) -> Vec<(String, u32, String, String)> {
    let mut rows = Vec::new();
    for l in listing.lines().skip(2) {
        let w: Vec<&str> = l.split_whitespace().collect();
        assert_eq!((w.len(), w[0]), (6, "SCTP"), "{l}");
        let (m, s) = w[1].split_once(':').expect("MM:SS");
        let left = m.parse::<u32>().unwrap() * 60 + s.parse::<u32>().unwrap();
        let max = kernel_timeout(w[2]).unwrap_or_else(|| panic!("not a kernel state: {l}"));
        assert!(left <= max, "{l}: {left} s left in a {max} s state");
        rows.push((w[2].to_string(), left, w[3].to_string(), w[5].to_string()));
    }
    rows
}

#[test]
fn dr_sctp_answers_fail_only_between_peer_stop_and_removal_with_kernel_states() {
    let s = common::scenario("sctp/sctp-dr-failover.toml");
    let (report, r) = common::passing(&s);
    let stop = s.faults[0].at;
    let failover = s.faults[1].at;
    // keepalived's `protocol SCTP`: an SCTP virtual service, checked with TCP_CHECK.
    let removed = common::logged_at(
        &r.observations,
        "director1",
        "Removing service [223.202.22.117]:sctp:3868",
    )
    .expect("the checker removes dia2");
    assert!(removed > stop && removed < stop + Duration::from_secs(5));

    let (mut servers, mut refused, mut after_failover) = (BTreeSet::new(), 0, BTreeSet::new());
    for (sent, _, outcome) in common::requests(&s) {
        match &outcome {
            Outcome::Ok { server } => {
                servers.insert(server.to_string());
                if sent > failover + Duration::from_secs(2) {
                    after_failover.insert(server.to_string());
                }
            }
            // From dia2's peer stop until the checker takes it out, dia2's kernel answers
            // the INITs IPVS still schedules to it with an ABORT (refused), and the
            // associations the stop cut (in flight at the stop: a request takes about 36 ms,
            // two round trips and the service time) with an ABORT to their next chunk
            // (reset). The
            // failover loses no request here (no association was mid-request across the
            // 0.6 s takeover); nothing else may fail.
            Outcome::Failed { reason, broken } => {
                let cut = *reason == FailReason::Reset && *broken;
                let refused_init = *reason == FailReason::Refused && !broken;
                assert!(
                    (cut || refused_init)
                        && sent <= removed
                        && sent + Duration::from_millis(100) >= stop,
                    "unexplained failure of a request sent at {sent:?}: {reason:?} {broken}"
                );
                refused += usize::from(refused_init);
            }
        }
    }
    assert_eq!(
        servers.into_iter().collect::<Vec<_>>(),
        ["dia1", "dia2", "dia3"]
    );
    assert_eq!(
        after_failover.into_iter().collect::<Vec<_>>(),
        ["dia1", "dia3"],
        "the new master balances over the servers left"
    );
    assert!(refused > 0, "dia2's stop refused no INIT");
    assert!(r
        .requests
        .failures
        .keys()
        .all(|k| k == "refused" || k == "reset"));

    // At 30 s the master's table holds one entry per association in the kernel's SCTP
    // states: a finished one CLOSED (the client's SHUTDOWN COMPLETE; 61 s), one mid-request
    // ESTABLISHED (the COOKIE ECHO, as DR shows IPVS only the client's side; 15 min).
    let listing = |director: &str, when: u64| {
        report
            .snapshots
            .iter()
            .find(|x| {
                x.director == director
                    && x.command == "ipvsadm -L -n -c"
                    && x.at == Duration::from_secs(when)
            })
            .and_then(|x| x.table.clone())
            .unwrap_or_else(|| panic!("a -c listing of {director} at {when} s"))
    };
    let rows = sctp_rows(&listing("director1", 30));
    let closed = rows.iter().filter(|r| r.0 == "CLOSED").count();
    assert!(closed > 500, "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r.0 == "CLOSED" || r.0 == "ESTABLISHED" || r.0 == "INIT1"));
    // Requests started from 10 s, so no CLOSED entry is older than 20 s: 41 s or more left.
    assert!(rows
        .iter()
        .filter(|r| r.0 == "CLOSED")
        .all(|r| (41..=61).contains(&r.1)));
    let dests: BTreeSet<&str> = rows.iter().map(|r| r.3.as_str()).collect();
    assert_eq!(
        dests.into_iter().collect::<Vec<_>>(),
        [
            "223.202.22.116:3868",
            "223.202.22.117:3868",
            "223.202.22.119:3868"
        ]
    );
    // The backup kept nothing (no connection sync); after the takeover its own entries
    // name only the servers left.
    assert!(sctp_rows(&listing("director2", 30)).is_empty());
    let rows = sctp_rows(&listing("director2", 90));
    assert!(rows.len() > 500, "{rows:?}");
    assert!(rows.iter().all(|r| r.3 != "223.202.22.117:3868"));
}

#[test]
fn nat_sctp_entries_walk_both_directions_and_only_the_stop_and_the_takeover_cost_requests() {
    let s = common::scenario("sctp/sctp-nat-failover.toml");
    let report = run(&s, &RunOptions::default()).unwrap();
    let failed: Vec<_> = report.failures().collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let (stop, failover) = (s.faults[0].at, s.faults[2].at);
    let r = observe(&s, &RunOptions::default()).unwrap();
    let removed = r
        .observations
        .iter()
        .filter(|o| {
            matches!(&o.what, Observed::Log { line }
                if line.contains("Removing service [192.168.22.116]:sctp:80"))
        })
        .map(|o| o.t)
        .max()
        .expect("the checkers remove web1");

    let (mut servers, mut refused) = (BTreeSet::new(), 0);
    for (sent, _, outcome) in common::requests(&s) {
        match &outcome {
            // Every answer came back through the director's SNAT with a right CRC32c: the
            // client's model drops a packet whose sum is wrong.
            Outcome::Ok { server } => {
                servers.insert(server.to_string());
            }
            // web1's kernel ABORTs the INITs IPVS sends it until both checkers removed it;
            // an association mid-request at the takeover (a request takes about 20 ms)
            // has no entry on the new master and times out.
            Outcome::Failed { reason, broken } => {
                let refused_init = *reason == FailReason::Refused && !broken;
                let cut_by_takeover = *reason == FailReason::Timeout
                    && *broken
                    && sent < failover
                    && sent + Duration::from_millis(100) >= failover;
                assert!(
                    (refused_init && sent >= stop && sent <= removed) || cut_by_takeover,
                    "unexplained failure of a request sent at {sent:?}: {reason:?} {broken}"
                );
                refused += usize::from(refused_init);
            }
        }
    }
    assert_eq!(servers.into_iter().collect::<Vec<_>>(), ["web1", "web2"]);
    assert!(refused > 0, "web1's stop refused no INIT");

    // The finished associations are CLOSED: the client's SHUTDOWN (S-RECEIVED), the
    // server's SHUTDOWN ACK on the way out (S-ACK-SENT), the client's SHUTDOWN COMPLETE.
    let listing = report
        .snapshots
        .iter()
        .find(|x| x.director == "director1" && x.command == "ipvsadm -L -n -c")
        .and_then(|x| x.table.clone())
        .expect("a -c listing at 15 s");
    let rows = sctp_rows(&listing);
    assert!(
        rows.iter().filter(|r| r.0 == "CLOSED").count() > 100,
        "{rows:?}"
    );
    assert!(rows
        .iter()
        .all(|r| r.3 == "192.168.22.116:80" || r.3 == "192.168.22.117:80"));
}
