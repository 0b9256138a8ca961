//! What a snapshot can show besides `ipvsadm -L -n` (issue 12 point 4): `--stats`, `--rate`,
//! `-c` and `ip addr`, read from the same run of the NAT cluster, and what each says about
//! the others and about the run.

use std::path::PathBuf;

use lvs_scenarios::judge::{Report, RunOptions};
use lvs_scenarios::Scenario;
use lvs_sim::scenario::run;

/// The NAT scenario with its failover fault made `kind` and every view asked for at 35 s
/// (director1 the master) and `ip addr` at 65 s.
fn nat_with_views(kind: &str) -> Report {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/nat");
    let text = std::fs::read_to_string(dir.join("nat-failover.toml")).unwrap();
    let all = r#"show = ["ipvsadm -L -n", "ipvsadm -L -n --stats", "ipvsadm -L -n --rate", "ipvsadm -L -n -c", "ip addr"]"#;
    let edited = text
        .replace("at = \"35s\"\n", &format!("at = \"35s\"\n{all}\n"))
        .replace("at = \"65s\"\n", "at = \"65s\"\nshow = [\"ip addr\"]\n")
        .replace("kind = \"stop\"\n", &format!("kind = \"{kind}\"\n"));
    assert_eq!(edited.matches("show = ").count(), 2);
    let s = Scenario::from_str(&edited, &dir).unwrap();
    run(&s, &RunOptions::default()).unwrap()
}

fn shown<'a>(r: &'a Report, director: &str, command: &str, at_s: u64) -> &'a str {
    r.snapshots
        .iter()
        .find(|x| x.director == director && x.command == command && x.at.as_secs() == at_s)
        .and_then(|x| x.table.as_deref())
        .unwrap_or_else(|| panic!("no {command} of {director} at {at_s}s"))
}

/// The numbers on a listing's service (`TCP ...`) and destination (`  -> ...`) rows.
fn rows(text: &str) -> Vec<Vec<u64>> {
    text.lines()
        .filter(|l| {
            (l.starts_with("TCP ") || l.starts_with("  -> ")) && !l.contains("RemoteAddress")
        })
        .map(|l| {
            l.split_whitespace()
                .skip(2)
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .collect()
}

#[test]
fn stats_rate_and_connections_agree_with_each_other_and_the_load() {
    let r = nat_with_views("stop");
    // --stats: the service counts what its destinations got (none was removed for good).
    let stats = rows(shown(&r, "director1", "ipvsadm -L -n --stats", 35));
    assert_eq!(stats.len(), 3, "{stats:?}");
    let (svc, a, b) = (&stats[0], &stats[1], &stats[2]);
    assert_eq!(svc.len(), 5);
    for (col, total) in svc.iter().enumerate() {
        assert_eq!(*total, a[col] + b[col], "column {col}");
    }
    let (conns, in_pkts, out_pkts) = (stats[0][0], stats[0][1], stats[0][2]);
    // 20 requests a second from 8 s; each is a handful of packets each way through NAT.
    assert!((400..=600).contains(&conns), "{conns}");
    assert!(in_pkts > 2 * conns && out_pkts > conns, "{stats:?}");
    // --rate: the estimator's connections per second are the clients' 20 requests a second.
    let rate = rows(shown(&r, "director1", "ipvsadm -L -n --rate", 35));
    assert!((15..=22).contains(&rate[0][0]), "CPS {rate:?}");
    // -c: one line per connection the table holds, which -L -n counts as active + inactive.
    let list = rows(shown(&r, "director1", "ipvsadm -L -n", 35));
    let held: u64 = list[1..].iter().map(|d| d[1] + d[2]).sum();
    let entries = shown(&r, "director1", "ipvsadm -L -n -c", 35);
    assert_eq!(entries.lines().count() as u64 - 2, held, "{entries}");
    assert!(entries
        .lines()
        .skip(2)
        .all(|l| l.contains(" 223.202.22.118:80 ")));
}

/// InBytes on director1's service in `ipvsadm -L -n --stats` at 19 s (before any fault) of
/// the NAT scenario with every request `size` bytes, with its Conns and InPkts.
fn nat_in_bytes(size: u32) -> (u64, u64, u64) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/nat");
    let text = std::fs::read_to_string(dir.join("nat-failover.toml")).unwrap();
    let edited = text.replace(
        "rate = 10\n",
        &format!("rate = 10\nrequest_size = {size}\n"),
    ) + "\n[[snapshot]]\nat = \"19s\"\nshow = [\"ipvsadm -L -n --stats\"]\n";
    let s = Scenario::from_str(&edited, &dir).unwrap();
    let r = run(&s, &RunOptions::default()).unwrap();
    let stats = rows(shown(&r, "director1", "ipvsadm -L -n --stats", 19));
    (stats[0][0], stats[0][1], stats[0][3])
}

// A workload's request_size is the payload of each request's data segment: with nothing else
// changed the run is the same packet for packet, and the service's InBytes grow by the
// difference once per data segment, which every connection opened (and answered) before the
// snapshot sent once, none lost on these links.
#[test]
fn in_bytes_grow_with_the_request_size() {
    let (conns, pkts, small) = nat_in_bytes(100);
    let (conns2, pkts2, large) = nat_in_bytes(1400);
    assert_eq!(
        (conns, pkts),
        (conns2, pkts2),
        "the same run but for the bytes"
    );
    assert!(conns > 100, "{conns}");
    let grown = large - small;
    assert_eq!(grown % 1300, 0, "{small} -> {large}");
    // A connection still in its handshake at the snapshot has sent no data yet.
    let data_segments = grown / 1300;
    assert!(
        data_segments <= conns && data_segments + 2 >= conns,
        "{data_segments} data segments for {conns} connections"
    );
    // And the size is refused beyond one segment, naming the key.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/nat");
    let text = std::fs::read_to_string(dir.join("nat-failover.toml")).unwrap();
    let too_big = text.replacen("rate = 10\n", "rate = 10\nrequest_size = 1461\n", 1);
    let err = Scenario::from_str(&too_big, &dir).unwrap_err().to_string();
    assert!(
        err.contains("request_size") && err.contains("1460"),
        "{err}"
    );
}

// `ip addr` shows what the other views cannot: a SIGKILLed keepalived leaves its VIPs on the
// host (nothing is left to remove them), so the old master still holds both after the backup
// took them; a stopped one removed them on its way out.
#[test]
fn ip_addr_shows_the_vips_a_killed_keepalived_leaves_behind() {
    let vips = [
        "inet 223.202.22.118/32 scope global eth0",
        "inet 192.168.22.118/32 scope global eth1",
    ];
    let killed = nat_with_views("kill");
    let stopped = nat_with_views("stop");
    for v in vips {
        assert!(shown(&killed, "director1", "ip addr", 35).contains(v));
        assert!(
            shown(&killed, "director1", "ip addr", 65).contains(v),
            "{v}"
        );
        assert!(
            shown(&killed, "director2", "ip addr", 65).contains(v),
            "{v}"
        );
        assert!(
            !shown(&stopped, "director1", "ip addr", 65).contains(v),
            "{v}"
        );
        assert!(
            shown(&stopped, "director2", "ip addr", 65).contains(v),
            "{v}"
        );
    }
    // The ipvsadm views need keepalived's table; without the process they say so.
    let report = killed.render_snapshots();
    assert!(
        report.contains("==> director1 ip addr at 65.000s <==\n1: lo: "),
        "{report}"
    );
}
