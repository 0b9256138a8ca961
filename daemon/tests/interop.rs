//! `lvsd run` next to Debian's keepalived 2.2.7 (`keepalived -P`) on one segment, in both
//! roles, and the bytes each puts on the wire for the same state. Needs root, iproute2,
//! tcpdump and keepalived (skipped with the reason otherwise).

mod common;

use std::time::Duration;

use common::*;
use lvs_core::vrrp::instance::{master_down_us, skew_us};
use lvs_core::vrrp::wire::Version;
use nix::sys::signal::Signal;

const VIP: &str = "198.18.0.100";

fn lab_ready(tag: &str) -> Option<Lab> {
    if skip() || !have("tcpdump") || !have("keepalived") {
        return None;
    }
    Some(Lab::new(tag, 2))
}

fn conf(state: &str, priority: u8) -> String {
    Instance {
        state,
        priority,
        version: 2,
        advert_int: "1",
        vip: "198.18.0.100/24",
        extra: "",
    }
    .conf()
}

/// Lines where a daemon says it dropped a peer's advert as malformed (its own send
/// failures while its NIC is down are not about the peer).
fn complaints(log: &str) -> Vec<String> {
    const WORDS: [&str; 7] = [
        "invalid", "bogus", "bad ", "wrong", "mismatch", "!=", "error",
    ];
    log.lines()
        .filter(|l| {
            let l = l.to_lowercase();
            WORDS.iter().any(|w| l.contains(w)) && !l.contains("send advert error")
        })
        .map(str::to_string)
        .collect()
}

/// `back` (router 0, priority 150) has returned: it takes the VIP, `other` (router 1) logs
/// its BACKUP transition (one more than `backups`) and lets the VIP go, and neither daemon
/// complains about the other's adverts.
fn preempts(lab: &Lab, back: &Daemon, other: &Daemon, backups: usize) {
    assert!(
        time_until_held(&lab.routers[0], VIP, Duration::from_secs(8)).is_some(),
        "{}",
        back.log()
    );
    assert!(
        other.wait_for_lines(
            "(VI_1) Entering BACKUP STATE",
            backups + 1,
            Duration::from_secs(3)
        ),
        "{}",
        other.log()
    );
    assert!(wait_until(Duration::from_secs(2), || !holds(
        &lab.routers[1],
        VIP
    )));
    assert_eq!(complaints(&back.log()), Vec::<String>::new());
    assert_eq!(complaints(&other.log()), Vec::<String>::new());
}

// keepalived is MASTER, lvsd BACKUP: election, keepalived's SIGTERM (lvsd takes over
// within its skew time of the priority-0 advert), keepalived's return (it preempts lvsd).
#[test]
fn keepalived_master_lvsd_backup() {
    let Some(lab) = lab_ready("ka1") else { return };
    let wire = capture(&lab.client, &lab.dir, "client", "vrrp or arp", false);
    let mut ka = keepalived(&lab, 0, "ka", &conf("MASTER", 150));
    let lv = lvsd(&lab, 1, "lv", &conf("BACKUP", 100), &[]);
    assert!(
        time_until_held(&lab.routers[0], VIP, Duration::from_secs(8)).is_some(),
        "{}",
        ka.log()
    );
    assert!(
        lv.wait_for_lines("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(2)),
        "{}",
        lv.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(!holds(&lab.routers[1], VIP));

    ka.proc.signal(Signal::SIGTERM).unwrap();
    assert!(
        ka.proc.wait_for(Duration::from_secs(5)).is_some(),
        "keepalived did not stop"
    );
    assert!(
        time_until_held(&lab.routers[1], VIP, Duration::from_secs(3)).is_some(),
        "{}",
        lv.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    let gap = wire.released_takeover(&lab.mac(0), &lab.mac(1)).gap;
    let skew = secs(skew_us(Version::V2, 256 - 100, 1_000_000));
    assert!(
        gap <= skew + SLACK,
        "lvsd took over {gap:.3} s after priority 0 (skew {skew:.3})"
    );

    // Counted before: a start-up race can have put lvsd through MASTER once already.
    let backups = lv.count("(VI_1) Entering BACKUP STATE");
    let ka = keepalived(&lab, 0, "ka", &conf("MASTER", 150));
    preempts(&lab, &ka, &lv, backups);
}

// lvsd is MASTER, keepalived BACKUP: election, lvsd's SIGKILL (keepalived takes over within
// its down interval), lvsd's return (stale VIP removed, it preempts keepalived).
#[test]
fn lvsd_master_keepalived_backup() {
    let Some(lab) = lab_ready("ka2") else { return };
    let wire = capture(&lab.client, &lab.dir, "client", "vrrp or arp", false);
    let mut lv = lvsd(&lab, 0, "lv", &conf("MASTER", 150), &[]);
    let ka = keepalived(&lab, 1, "ka", &conf("BACKUP", 100));
    assert!(
        time_until_held(&lab.routers[0], VIP, Duration::from_secs(8)).is_some(),
        "{}",
        lv.log()
    );
    assert!(
        ka.wait_for_lines("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(2)),
        "{}",
        ka.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(!holds(&lab.routers[1], VIP), "{}", ka.log());

    lv.proc.signal(Signal::SIGKILL).unwrap();
    assert!(lv.proc.wait_for(Duration::from_secs(2)).is_some());
    assert!(
        time_until_held(&lab.routers[1], VIP, Duration::from_secs(8)).is_some(),
        "{}",
        ka.log()
    );
    let gap = wire.silent_takeover(&lab.mac(0), &lab.mac(1)).gap;
    let down = secs(master_down_us(Version::V2, 100, 3, 1_000_000));
    assert!(
        gap <= down + SLACK,
        "keepalived took over {gap:.3} s after lvsd's last advert"
    );

    let backups = ka.count("(VI_1) Entering BACKUP STATE");
    let lv = lvsd(&lab, 0, "lv", &conf("MASTER", 150), &[]);
    assert!(
        wait_until(Duration::from_secs(3), || !holds(&lab.routers[0], VIP)),
        "stale VIP kept"
    );
    preempts(&lab, &lv, &ka, backups);
}

/// The frames one daemon sends as master and at its stop: adverts at its priority, the
/// gratuitous ARPs / NAs, and its priority-0 advert.
fn frames_of(
    lab: &Lab,
    name: &str,
    conf: &str,
    lvsd_daemon: bool,
    filter: &str,
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let wire = capture(&lab.client, &lab.dir, name, filter, true);
    let mut d = if lvsd_daemon {
        lvsd(lab, 0, name, conf, &[])
    } else {
        keepalived(lab, 0, name, conf)
    };
    assert!(
        d.wait_for_lines("Entering MASTER STATE", 1, Duration::from_secs(8)),
        "{}",
        d.log()
    );
    std::thread::sleep(Duration::from_millis(2500));
    d.proc.signal(Signal::SIGTERM).unwrap();
    assert!(d.proc.wait_for(Duration::from_secs(5)).is_some());
    std::thread::sleep(Duration::from_millis(300));
    let adverts = wire.frames(", prio 150,");
    let zero = wire.frames(", prio 0,");
    let announce = wire
        .frames("who-has")
        .into_iter()
        .chain(wire.frames("neighbor advertisement"))
        .collect::<Vec<_>>();
    assert!(
        adverts.len() >= 2 && !zero.is_empty() && !announce.is_empty(),
        "{name}:\n{}",
        wire.text()
    );
    // The second advert: the first after the transition can differ only in timing.
    (adverts[1].clone(), zero[0].clone(), announce[0].clone())
}

/// A frame with the IPv4 identification and header checksum zeroed: they count packets
/// sent (keepalived's raw socket numbers its own), and so depend on how long each ran.
fn without_ip_id(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() >= 34 && f[12..14] == [0x08, 0x00] {
        f[18..20].fill(0);
        f[24..26].fill(0);
    }
    f
}

// The same configuration on the same host: keepalived's and lvsd's adverts, gratuitous
// ARPs and priority-0 adverts are the same bytes (IPv4, v2 PASS; IPv6, v3).
#[test]
fn wire_bytes_match_keepalived() {
    let Some(lab) = lab_ready("ka3") else { return };
    let v2 = conf("MASTER", 150);
    let ka = frames_of(&lab, "ka2", &v2, false, "vrrp or arp");
    let lv = frames_of(&lab, "lv2", &v2, true, "vrrp or arp");
    assert_eq!(without_ip_id(lv.0), without_ip_id(ka.0), "v2 advert");
    assert_eq!(without_ip_id(lv.1), without_ip_id(ka.1), "v2 priority 0");
    assert_eq!(lv.2, ka.2, "gratuitous ARP");

    let v3 = Instance {
        state: "MASTER",
        priority: 150,
        version: 3,
        advert_int: "1",
        vip: "fdc6:1218::100/64",
        extra: "",
    }
    .conf();
    let filter = "ip6 proto 112 or (icmp6 and ip6[40] == 136)";
    let ka = frames_of(&lab, "ka3", &v3, false, filter);
    let lv = frames_of(&lab, "lv3", &v3, true, filter);
    assert_eq!(lv.0, ka.0, "v3 advert");
    assert_eq!(lv.1, ka.1, "v3 priority 0");
    assert_eq!(lv.2, ka.2, "unsolicited NA");
}

// VRRPv3 over IPv6 at advert_int 0.1 next to keepalived: election, an unchanged SIGHUP of
// lvsd (no transition on either side), keepalived's NIC down (lvsd takes over within its
// down interval on the wire), its NIC back (keepalived preempts), and neither complains.
#[test]
fn v3_ipv6_next_to_keepalived_with_nic_down_and_reload() {
    let Some(lab) = lab_ready("ka4") else {
        return;
    };
    let vip = "fdc6:1218::100";
    let conf = |state, priority| {
        Instance {
            state,
            priority,
            version: 3,
            advert_int: "0.1",
            vip: "fdc6:1218::100/64",
            extra: "",
        }
        .conf()
    };
    let wire = capture(&lab.client, &lab.dir, "client", "ip6 proto 112", false);
    let ka = keepalived(&lab, 0, "ka", &conf("MASTER", 150));
    let lv = lvsd(&lab, 1, "lv", &conf("BACKUP", 100), &[]);
    assert!(
        time_until_held(&lab.routers[0], vip, Duration::from_secs(5)).is_some(),
        "{}",
        ka.log()
    );
    assert!(
        lv.wait_for_lines("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(2)),
        "{}",
        lv.log()
    );
    std::thread::sleep(Duration::from_secs(1));
    let transitions = (ka.count("Entering"), lv.count("Entering"));
    lv.proc.signal(Signal::SIGHUP).unwrap();
    assert!(
        lv.wait_for_lines("Reload complete", 1, Duration::from_secs(2)),
        "{}",
        lv.log()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!((ka.count("Entering"), lv.count("Entering")), transitions);
    assert!(holds(&lab.routers[0], vip) && !holds(&lab.routers[1], vip));

    lab.routers[0].ip(&["link", "set", "eth0", "down"]).unwrap();
    assert!(
        time_until_held(&lab.routers[1], vip, Duration::from_secs(3)).is_some(),
        "{}",
        lv.log()
    );
    let gap = wire.silent_takeover(&lab.mac(0), &lab.mac(1)).gap;
    let down = secs(master_down_us(Version::V3, 100, 3, 100_000));
    assert!(
        gap <= down + SLACK,
        "lvsd took over {gap:.3} s after keepalived's last advert (down interval {down:.3})"
    );
    // keepalived comes back once its link-local address has passed DAD again.
    let backups = lv.count("(VI_1) Entering BACKUP STATE");
    lab.routers[0].ip(&["link", "set", "eth0", "up"]).unwrap();
    assert!(
        lv.wait_for_lines(
            "(VI_1) Entering BACKUP STATE",
            backups + 1,
            Duration::from_secs(6)
        ),
        "keepalived did not preempt:\n{}\n{}",
        ka.log(),
        lv.log()
    );
    assert!(
        wait_until(Duration::from_secs(2), || holds(&lab.routers[0], vip)
            && !holds(&lab.routers[1], vip)),
        "after keepalived's preemption: r1 holds {}, r2 holds {}\n{}\n{}\n{}",
        holds(&lab.routers[0], vip),
        holds(&lab.routers[1], vip),
        ka.log(),
        lv.log(),
        lab.routers[0].ip(&["addr", "show", "eth0"]).unwrap()
    );
    assert_eq!(complaints(&ka.log()), Vec::<String>::new());
    assert_eq!(complaints(&lv.log()), Vec::<String>::new());
}
