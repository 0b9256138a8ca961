//! The seed's two keepalived.conf files, unchanged but for their addresses (moved into
//! 198.18.0.0/15 by the harness's mapping), under `lvsd run -P` in namespaces shaped like
//! the seed's cluster (WAN and LAN segments, both directors on both), through the seed's
//! steps: start, SIGTERM of the master, its return, its WAN NIC down. The transitions
//! each director logs are the ones the simulator predicts for the same steps, in the same
//! order, each within 100 ms of the predicted time. Needs root and iproute2 (skipped with
//! the reason otherwise); takes 100 s (the seed's advert_int is 5 s).

mod common;

use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use lvs_netns::ns::{self, Netns, Proc};
use lvs_scenarios::judge::RunOptions;
use lvs_scenarios::netns::AddressMap;
use lvs_scenarios::observe::Observed;
use lvs_scenarios::Scenario;

/// The steps, as the simulator runs them.
const SCENARIO: &str = r#"
name = "seed-vrrp-steps"
description = "the seed's directors: start, master stopped, master back, master's WAN NIC down"
seed = 1
duration = "100s"

[[segment]]
name = "wan"
latency = "100us"
jitter = "20us"

[[segment]]
name = "lan"
latency = "100us"
jitter = "20us"

[[host]]
name = "director1"
role = "director"
interfaces = [
  { name = "eth0", segment = "wan", ip = "223.202.22.114/24" },
  { name = "eth1", segment = "lan", ip = "192.168.22.114/24" },
]
keepalived_conf = "keepalived.conf.master"

[[host]]
name = "director2"
role = "director"
interfaces = [
  { name = "eth0", segment = "wan", ip = "223.202.22.115/24" },
  { name = "eth1", segment = "lan", ip = "192.168.22.115/24" },
]
keepalived_conf = "keepalived.conf.backup"
start_at = "3s"

[[fault]]
at = "25s"
kind = "stop"
host = "director1"

[[fault]]
at = "45s"
kind = "restart"
host = "director1"

[[fault]]
at = "75s"
kind = "nic_down"
host = "director1"
iface = "eth0"
"#;

/// The seed's configs, as the scenarios use them.
fn seed_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/seed"))
}

/// `(time, host, "(INSTANCE) STATE")` for every `Entering ... STATE` line.
type Transitions = Vec<(Duration, String, String)>;

/// The transition a log line reports, if any: `(WAN) MASTER`.
fn transition(line: &str) -> Option<String> {
    let (before, after) = line.split_once(") Entering ")?;
    let name = before.rsplit('(').next()?;
    let state = after.split_whitespace().next()?;
    Some(format!("({name}) {state}"))
}

fn predicted(s: &Scenario) -> Transitions {
    let record = lvs_sim::scenario::observe(s, &RunOptions::default()).unwrap();
    record
        .observations
        .iter()
        .filter_map(|o| match &o.what {
            Observed::Log { line } => transition(line).map(|t| (o.t, o.host.clone(), t)),
            _ => None,
        })
        .collect()
}

/// A daemon whose log lines are stamped as they arrive.
struct Stamped {
    proc: Proc,
    _reader: std::thread::JoinHandle<()>,
}

fn start(
    host: &Netns,
    name: &str,
    conf: &Path,
    dir: &Path,
    t0: Instant,
    seen: &Arc<Mutex<Transitions>>,
    all: &Arc<Mutex<String>>,
) -> Stamped {
    let (reader, writer) = std::io::pipe().unwrap();
    let mut cmd = host.command(env!("CARGO_BIN_EXE_lvsd"));
    cmd.args(["run", "-n", "-l", "-P", "-f"])
        .arg(conf)
        .arg("-p")
        .arg(dir.join(format!("{name}.pid")))
        .arg("-r")
        .arg(dir.join(format!("{name}_vrrp.pid")))
        .arg("--control")
        .arg(dir.join(format!("{name}.sock")))
        .stdout(Stdio::null())
        .stderr(writer);
    let proc = host.spawn(&mut cmd).unwrap();
    drop(cmd);
    let (seen, all, name) = (Arc::clone(seen), Arc::clone(all), name.to_string());
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(reader).lines() {
            let Ok(line) = line else { return };
            let at = t0.elapsed();
            all.lock()
                .unwrap()
                .push_str(&format!("{:8.3} {name} {line}\n", at.as_secs_f64()));
            if let Some(t) = transition(&line) {
                seen.lock().unwrap().push((at, name.clone(), t));
            }
        }
    });
    Stamped {
        proc,
        _reader: reader,
    }
}

fn sleep_until(t0: Instant, at: Duration) {
    if let Some(d) = (t0 + at).checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

#[test]
fn the_seed_configs_make_the_transitions_the_simulator_predicts() {
    if skip() {
        return;
    }
    let scenario = Scenario::from_str(SCENARIO, seed_dir()).unwrap();
    let expected = predicted(&scenario);
    assert!(expected.len() >= 10, "{expected:?}");
    let map = AddressMap::for_scenario(&scenario).unwrap();
    let mapped = |a: &str| map.map(a.parse().unwrap()).unwrap().to_string();

    let wan = Netns::new("seed-wan").unwrap();
    let lan = Netns::new("seed-lan").unwrap();
    let d1 = Netns::new("seed-d1").unwrap();
    let d2 = Netns::new("seed-d2").unwrap();
    for (host, n, wan_ip, lan_ip) in [
        (&d1, 1, "223.202.22.114", "192.168.22.114"),
        (&d2, 2, "223.202.22.115", "192.168.22.115"),
    ] {
        ns::veth(host, "eth0", &wan, &format!("w{n}")).unwrap();
        ns::veth(host, "eth1", &lan, &format!("l{n}")).unwrap();
        host.ip(&[
            "addr",
            "add",
            &format!("{}/24", mapped(wan_ip)),
            "dev",
            "eth0",
        ])
        .unwrap();
        host.ip(&[
            "addr",
            "add",
            &format!("{}/24", mapped(lan_ip)),
            "dev",
            "eth1",
        ])
        .unwrap();
    }
    ns::bridge(&wan, "br0", &["w1", "w2"]).unwrap();
    ns::bridge(&lan, "br0", &["l1", "l2"]).unwrap();
    let dir = std::env::temp_dir().join(format!("lvsd-test-{}-seed", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = |file: &str| {
        let text = std::fs::read_to_string(seed_dir().join(file)).unwrap();
        let path = dir.join(file);
        std::fs::write(&path, map.rewrite_text(&text)).unwrap();
        path
    };
    let (c1, c2) = (
        conf("keepalived.conf.master"),
        conf("keepalived.conf.backup"),
    );

    let seen = Arc::new(Mutex::new(Transitions::new()));
    let all = Arc::new(Mutex::new(String::new()));
    let t0 = Instant::now();
    let mut first = start(&d1, "director1", &c1, &dir, t0, &seen, &all);
    sleep_until(t0, Duration::from_secs(3));
    let _second = start(&d2, "director2", &c2, &dir, t0, &seen, &all);
    sleep_until(t0, Duration::from_secs(25));
    first
        .proc
        .signal(nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    assert!(first
        .proc
        .wait_for(Duration::from_secs(5))
        .is_some_and(|s| s.success()));
    sleep_until(t0, Duration::from_secs(45));
    let _again = start(&d1, "director1", &c1, &dir, t0, &seen, &all);
    sleep_until(t0, Duration::from_secs(75));
    d1.ip(&["link", "set", "eth0", "down"]).unwrap();
    sleep_until(t0, Duration::from_secs(100));

    let real = seen.lock().unwrap().clone();
    let log = all.lock().unwrap().clone();
    let _ = std::fs::remove_dir_all(&dir);
    for host in ["director1", "director2"] {
        let of = |v: &Transitions| -> Vec<(Duration, String)> {
            v.iter()
                .filter(|(_, h, _)| h == host)
                .map(|(t, _, s)| (*t, s.clone()))
                .collect()
        };
        let (want, got) = (of(&expected), of(&real));
        let names = |v: &[(Duration, String)]| v.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&got),
            names(&want),
            "{host}: transitions differ\n{log}"
        );
        for ((tw, s), (tg, _)) in want.iter().zip(&got) {
            let off = tg.as_secs_f64() - tw.as_secs_f64();
            eprintln!(
                "{host} {s}: {:.3} s, predicted {:.3} s ({off:+.3} s)",
                tg.as_secs_f64(),
                tw.as_secs_f64()
            );
            assert!(
                off.abs() <= 0.1,
                "{host} {s}: at {:.3} s, predicted {:.3} s ({off:+.3} s)\n{log}",
                tg.as_secs_f64(),
                tw.as_secs_f64()
            );
        }
    }
}
