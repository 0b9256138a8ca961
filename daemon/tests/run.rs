//! `lvsd run` for real: daemons in network namespaces on one bridged segment, with a
//! client that watches the wire (tcpdump) and its neighbour table. Root and iproute2 are
//! needed (skipped with the reason otherwise); the wire checks need tcpdump, the interop
//! ones Debian's keepalived (`.ci/run` installs both).

mod common;

use std::time::Duration;

use common::*;
use lvs_core::vrrp::instance::{master_down_us, skew_us};
use lvs_core::vrrp::wire::Version;
use nix::sys::signal::Signal;

/// The config of a pair's router: VI_1 with `vip` (and its prefix) at `version` /
/// `advert_int`.
fn pair_conf(state: &str, priority: u8, version: u8, advert_int: &str, vip: &str) -> String {
    Instance {
        state,
        priority,
        version,
        advert_int,
        vip,
        extra: "",
    }
    .conf()
}

/// Where each pair's daemon serves its metrics, inside its own namespace.
const METRICS: &str = "127.0.0.1:9650";

/// `GET /metrics` from router `i`'s daemon: the body.
fn scrape(lab: &Lab, i: usize) -> String {
    lab.routers[i]
        .run(|| {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(METRICS).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: lvsd\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            s.take(1 << 20).read_to_string(&mut out).unwrap();
            out
        })
        .unwrap()
        .join()
        .unwrap()
}

/// r1 (MASTER, 150) and r2 (BACKUP, 100), once elected: r1 holds `vip`, r2 is BACKUP.
fn elected(lab: &Lab, version: u8, advert_int: &str, vip: &str, prefix: u8) -> (Daemon, Daemon) {
    let cidr = format!("{vip}/{prefix}");
    let metrics = ["--metrics", METRICS];
    let r1 = lvsd(
        lab,
        0,
        "r1",
        &pair_conf("MASTER", 150, version, advert_int, &cidr),
        &metrics,
    );
    let r2 = lvsd(
        lab,
        1,
        "r2",
        &pair_conf("BACKUP", 100, version, advert_int, &cidr),
        &metrics,
    );
    assert!(
        time_until_held(&lab.routers[0], vip, Duration::from_secs(8)).is_some(),
        "r1 never became master:\n{}",
        r1.log()
    );
    assert!(
        r2.wait_for_lines("(VI_1) Entering BACKUP STATE", 1, Duration::from_secs(2)),
        "{}",
        r2.log()
    );
    assert!(!holds(&lab.routers[1], vip));
    (r1, r2)
}

fn lab_ready(tag: &str, n: usize) -> Option<Lab> {
    if skip() || !have("tcpdump") {
        return None;
    }
    Some(Lab::new(tag, n))
}

// Election, SIGKILL of the master (the backup takes over within the down interval, the
// client's ARP entry moves with the GARP, the dead master's VIP stays), its restart
// (the stale VIP removed, then preemption), and SIGTERM (priority 0, takeover within the
// skew time, exit 0, VIP removed).
#[test]
fn v2_failover_kill_restart_and_stop() {
    let Some(lab) = lab_ready("v2", 2) else {
        return;
    };
    let vip = "198.18.0.100";
    let conf = |state, priority| pair_conf(state, priority, 2, "1", "198.18.0.100/24");
    let wire = capture(&lab.client, &lab.dir, "client", "vrrp or arp", false);
    let (mut r1, r2) = elected(&lab, 2, "1", vip, 24);
    // The client resolves the VIP to r1.
    assert_eq!(learn(&lab.client, vip), Some(lab.mac(0)));

    r1.proc.signal(Signal::SIGKILL).unwrap();
    assert!(r1.proc.wait_for(Duration::from_secs(2)).is_some());
    assert!(
        time_until_held(&lab.routers[1], vip, Duration::from_secs(8)).is_some(),
        "r2 did not take over:\n{}",
        r2.log()
    );
    assert!(
        wait_until(Duration::from_secs(3), || neighbour(&lab.client, vip)
            == Some(lab.mac(1))),
        "the client's ARP entry did not move to r2"
    );
    assert!(holds(&lab.routers[0], vip), "SIGKILL cannot remove the VIP");
    let Takeover { gap, at: took } = wire.silent_takeover(&lab.mac(0), &lab.mac(1));
    let down = secs(master_down_us(Version::V2, 100, 3, 1_000_000));
    assert!(
        gap <= down + SLACK,
        "takeover {gap:.3} s after r1's last advert, down interval {down:.3} s"
    );
    let seen = wire.seen();
    assert!(
        seen.iter()
            .any(|s| s.t >= took && s.mac == lab.mac(1) && s.prio.is_none()),
        "no gratuitous ARP from r2"
    );

    // The old master comes back: it removes what its predecessor left, then preempts.
    let backups = r2.count("(VI_1) Entering BACKUP STATE");
    let mut r1 = lvsd(&lab, 0, "r1", &conf("MASTER", 150), &[]);
    assert!(
        wait_until(Duration::from_secs(3), || !holds(&lab.routers[0], vip)),
        "the restarted r1 kept the stale VIP:\n{}",
        r1.log()
    );
    assert!(r1.log().contains("(VI_1) removing VIPs."));
    assert!(
        time_until_held(&lab.routers[0], vip, Duration::from_secs(8)).is_some(),
        "r1 did not preempt:\n{}",
        r1.log()
    );
    assert!(
        r2.wait_for_lines(
            "(VI_1) Entering BACKUP STATE",
            backups + 1,
            Duration::from_secs(3)
        ),
        "{}",
        r2.log()
    );
    assert!(wait_until(Duration::from_secs(2), || !holds(
        &lab.routers[1],
        vip
    )));

    // SIGTERM: priority 0 at once, the backup takes over after its skew time.
    std::thread::sleep(Duration::from_millis(1500));
    r1.proc.signal(Signal::SIGTERM).unwrap();
    let status = r1
        .proc
        .wait_for(Duration::from_secs(5))
        .expect("r1 did not exit");
    assert!(status.success(), "exit status {status}");
    assert!(!holds(&lab.routers[0], vip), "SIGTERM left the VIP");
    assert!(time_until_held(&lab.routers[1], vip, Duration::from_secs(3)).is_some());
    std::thread::sleep(Duration::from_millis(300));
    let gap = wire.released_takeover(&lab.mac(0), &lab.mac(1)).gap;
    let skew = secs(skew_us(Version::V2, 256 - 100, 1_000_000));
    assert!(
        gap <= skew + SLACK,
        "takeover {gap:.3} s after priority 0, skew {skew:.3} s"
    );
    assert!(r1.log().contains("(VI_1) sent 0 priority"), "{}", r1.log());
}

// The master's NIC goes down: FAULT, and the backup takes over; SIGHUP with the same file
// changes nothing (no transition, the VIP never leaves); SIGHUP with a broken file keeps
// the running configuration.
#[test]
fn v2_nic_down_and_reloads() {
    let Some(lab) = lab_ready("hup", 2) else {
        return;
    };
    let vip = "198.18.0.100";
    let (r1, r2) = elected(&lab, 2, "1", vip, 24);

    // `lvsd status` over each daemon's control socket.
    let status = |d: &Daemon, extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lvsd"))
            .args(["status", "--control"])
            .arg(&d.control)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let s1 = status(&r1, &[]);
    assert!(s1.starts_with("VI_1: MASTER (interface eth0, vrid 51) priority 150 (configured 150), advert 1.00 s, master 198.18.0.1\n"), "{s1}");
    assert!(s1.contains("to MASTER"), "{s1}");
    let s2: serde_json::Value = serde_json::from_str(&status(&r2, &["--json"])).unwrap();
    assert_eq!(s2["vrrp"][0]["state"], "BACKUP", "{s2}");
    assert_eq!(s2["vrrp"][0]["master"], "198.18.0.1", "{s2}");
    assert!(status(&r1, &["--stats"]).contains("  Became master: 1\n"));
    let stats: serde_json::Value =
        serde_json::from_str(&status(&r2, &["--stats", "--json"])).unwrap();
    assert!(
        stats["vrrp"][0]["advert_rcvd"].as_u64().unwrap() > 0,
        "{stats}"
    );
    // Prometheus metrics under keepalived-exporter's names.
    let m1 = scrape(&lab, 0);
    assert!(m1.starts_with("HTTP/1.1 200 OK"), "{m1}");
    assert!(m1.contains("keepalived_up 1\n"), "{m1}");
    assert!(m1.contains("keepalived_vrrp_state{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\",ip_address=\"198.18.0.100\"} 2\n"), "{m1}");
    assert!(m1.contains("keepalived_become_master_total{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\",state=\"MASTER\"} 1\n"), "{m1}");
    let m2 = scrape(&lab, 1);
    assert!(m2.contains("ip_address=\"198.18.0.100\"} 1\n"), "{m2}");
    assert!(m2.contains("keepalived_advertisements_received_total{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\",state=\"BACKUP\"}"), "{m2}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&r1.control).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let transitions = |d: &Daemon| d.count("Entering");
    let before = (transitions(&r1), transitions(&r2));
    r1.proc.signal(Signal::SIGHUP).unwrap();
    // Three advert intervals with the VIP held throughout.
    let held = (0..150).all(|_| {
        std::thread::sleep(Duration::from_millis(20));
        holds(&lab.routers[0], vip)
    });
    assert!(
        held,
        "the VIP flapped on an unchanged reload:\n{}",
        r1.log()
    );
    assert_eq!((transitions(&r1), transitions(&r2)), before, "{}", r1.log());
    assert!(r1.log().contains("Reloading"), "{}", r1.log());

    std::fs::write(
        &r1.conf,
        "vrrp_instance VI_1 {\n    virtual_router_id 300\n    state MASTER\n",
    )
    .unwrap();
    r1.proc.signal(Signal::SIGHUP).unwrap();
    assert!(
        r1.wait_for_lines("keeping the running one", 1, Duration::from_secs(3)),
        "{}",
        r1.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(holds(&lab.routers[0], vip));
    assert_eq!((transitions(&r1), transitions(&r2)), before, "{}", r1.log());

    lab.routers[0].ip(&["link", "set", "eth0", "down"]).unwrap();
    assert!(
        r1.wait_for_lines("(VI_1) Entering FAULT STATE", 1, Duration::from_secs(2)),
        "{}",
        r1.log()
    );
    assert!(
        time_until_held(&lab.routers[1], vip, Duration::from_secs(6)).is_some(),
        "{}",
        r2.log()
    );
    lab.routers[0].ip(&["link", "set", "eth0", "up"]).unwrap();
    assert!(
        time_until_held(&lab.routers[0], vip, Duration::from_secs(10)).is_some(),
        "r1 did not come back:\n{}",
        r1.log()
    );
}

// VRRPv3 over IPv6 at advert_int 0.1: election, SIGKILL (takeover within the down
// interval on the wire), the client's neighbour entry moved by the unsolicited NA.
#[test]
fn v3_ipv6_failover() {
    let Some(lab) = lab_ready("v3", 2) else {
        return;
    };
    let vip = "fdc6:1218::100";
    let wire = capture(
        &lab.client,
        &lab.dir,
        "client",
        "ip6 proto 112 or icmp6",
        false,
    );
    let (r1, r2) = elected(&lab, 3, "0.1", vip, 64);
    assert_eq!(learn(&lab.client, vip), Some(lab.mac(0)));

    r1.proc.signal(Signal::SIGKILL).unwrap();
    assert!(
        time_until_held(&lab.routers[1], vip, Duration::from_secs(3)).is_some(),
        "{}",
        r2.log()
    );
    assert!(
        wait_until(Duration::from_secs(3), || neighbour(&lab.client, vip)
            == Some(lab.mac(1))),
        "the client's neighbour entry did not move to r2"
    );
    let Takeover { gap, at: took } = wire.silent_takeover(&lab.mac(0), &lab.mac(1));
    let down = secs(master_down_us(Version::V3, 100, 3, 100_000));
    assert!(
        gap <= down + SLACK,
        "takeover {gap:.3} s after the last advert, down interval {down:.3} s"
    );
    let seen = wire.seen();
    assert!(
        seen.iter()
            .any(|s| s.t >= took && s.mac == lab.mac(1) && s.prio.is_none()),
        "no unsolicited NA from r2"
    );
}

// nopreempt: a higher priority that comes back stays BACKUP; preempt_delay: it takes over
// only after the delay.
#[test]
fn nopreempt_and_preempt_delay_hold() {
    let Some(lab) = lab_ready("pre", 2) else {
        return;
    };
    let vip = "198.18.0.100";
    let conf = |priority, extra| {
        Instance {
            state: "BACKUP",
            priority,
            version: 3,
            advert_int: "0.2",
            vip: &format!("{vip}/24"),
            extra,
        }
        .conf()
    };
    let r2 = lvsd(&lab, 1, "r2", &conf(100, ""), &[]);
    assert!(
        time_until_held(&lab.routers[1], vip, Duration::from_secs(5)).is_some(),
        "{}",
        r2.log()
    );
    let mut r1 = lvsd(&lab, 0, "r1", &conf(150, "    nopreempt\n"), &[]);
    assert!(r1.wait_for_lines("Entering BACKUP STATE", 1, Duration::from_secs(2)));
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        holds(&lab.routers[1], vip) && !holds(&lab.routers[0], vip),
        "nopreempt did not hold:\n{}",
        r1.log()
    );
    r1.proc.signal(Signal::SIGTERM).unwrap();
    assert!(r1.proc.wait_for(Duration::from_secs(3)).is_some());

    let started = std::time::Instant::now();
    let r1 = lvsd(&lab, 0, "r1d", &conf(150, "    preempt_delay 3\n"), &[]);
    let took =
        time_until_held(&lab.routers[0], vip, Duration::from_secs(8)).map(|_| started.elapsed());
    let took = took.unwrap_or_else(|| panic!("r1 never preempted:\n{}", r1.log()));
    assert!(
        took >= Duration::from_secs(3),
        "preempted after {took:?}, before preempt_delay 3"
    );
}

// Script security as keepalived applies it: with `script_user nobody` the notify script
// runs as nobody; run as root from a path others can write, it is disabled and logged.
#[test]
fn notify_scripts_run_under_script_security() {
    let Some(lab) = lab_ready("sec", 1) else {
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    let set = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    let scripts = lab.dir.join("scripts");
    let out = lab.dir.join("out");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    set(&lab.dir, 0o755);
    set(&scripts, 0o755);
    set(&out, 0o777);
    let notify = scripts.join("notify.sh");
    let written = out.join("notify.txt");
    std::fs::write(
        &notify,
        format!("#!/bin/sh\necho \"$@ $(id -u)\" >> {}\n", written.display()),
    )
    .unwrap();
    set(&notify, 0o755);
    let conf = |user: &str| {
        let c = Instance {
            state: "MASTER",
            priority: 150,
            version: 3,
            advert_int: "0.2",
            vip: "198.18.0.100/24",
            extra: &format!("    notify_master \"{} master\"\n", notify.display()),
        }
        .conf();
        c.replace(
            "    router_id lvsd_test\n",
            &format!(
                "    router_id lvsd_test\n    enable_script_security\n    script_user {user}\n"
            ),
        )
    };
    let mut r = lvsd(&lab, 0, "nobody", &conf("nobody"), &[]);
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(&written)
            .is_ok_and(|s| s.ends_with('\n'))),
        "the notify script did not run:\n{}",
        r.log()
    );
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "master 65534\n");
    r.proc.signal(Signal::SIGTERM).unwrap();
    assert!(r.proc.wait_for(Duration::from_secs(3)).is_some());

    std::fs::remove_file(&written).unwrap();
    set(&scripts, 0o777);
    let r = lvsd(&lab, 0, "root", &conf("root"), &[]);
    assert!(
        r.wait_for_lines("Entering MASTER STATE", 1, Duration::from_secs(5)),
        "{}",
        r.log()
    );
    let line = format!(
        "Unsafe permissions found for script '{}' - disabling.",
        notify.display()
    );
    assert!(r.log().contains(&line), "{}", r.log());
    std::thread::sleep(Duration::from_millis(500));
    assert!(!written.exists(), "a disabled script ran");
}

// smtp_alert with nothing listening on smtp_server: each alert is logged as keepalived
// logs it, and the instance goes on as without mail.
#[test]
fn smtp_alert_to_a_dead_server_is_logged_and_changes_nothing() {
    let Some(lab) = lab_ready("smtp", 1) else {
        return;
    };
    let conf = Instance {
        state: "MASTER",
        priority: 150,
        version: 3,
        advert_int: "0.2",
        vip: "198.18.0.100/24",
        extra: "    smtp_alert\n",
    }
    .conf()
    .replace(
        "    router_id lvsd_test\n",
        "    router_id lvsd_test\n    notification_email {\n        ops@example.com\n    }\n    smtp_server 127.0.0.1\n",
    );
    let r = lvsd(&lab, 0, "r1", &conf, &[]);
    assert!(
        time_until_held(&lab.routers[0], "198.18.0.100", Duration::from_secs(5)).is_some(),
        "{}",
        r.log()
    );
    // One alert for BACKUP (init), one for MASTER.
    assert!(
        r.wait_for_lines("returned write error", 2, Duration::from_secs(3)),
        "{}",
        r.log()
    );
    assert!(
        r.log().lines().any(|l| l.contains(": smtp fd ")),
        "{}",
        r.log()
    );
}
