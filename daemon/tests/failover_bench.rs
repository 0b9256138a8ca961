//! Benchmark, not a test (ignored; run by hand): failover time as a client sees it, lvsd
//! next to Debian's keepalived on the same namespaces, and each daemon's RSS and CPU with
//! the seed's config. Numbers go to BENCHMARKS.md; nothing is asserted about them.
//!
//!     cargo test --release -p lvsd --test failover_bench -- --ignored --nocapture --test-threads 1
//!
//! `LVSD_TRIALS` (default 20) trials per cell. A trial: r1 (priority 150) is master and
//! answers the client's UDP probes (every 5 ms) to the VIP; r1 gets SIGKILL or SIGTERM;
//! the failover time runs from the signal to the first answer from r2 (the VIP usable
//! again: r2 holds it and the client's ARP / neighbour entry points at it). r1 is then
//! started again and preempts before the next trial.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

const PORT: u16 = 7;

/// Answers every datagram on PORT with one byte: this router's number.
fn responder(lab: &Lab, i: usize, stop: &Arc<AtomicBool>) -> lvs_netns::ns::NsThread<()> {
    let stop = Arc::clone(stop);
    lab.routers[i]
        .run(move || {
            // Dual-stack: IPv4 probes arrive v4-mapped.
            let s = UdpSocket::bind(("::", PORT)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((_, from)) = s.recv_from(&mut buf) {
                    let _ = s.send_to(&[i as u8], from);
                }
            }
        })
        .unwrap()
}

/// Probes the VIP every 5 ms; each answer's arrival time and router number.
fn prober(
    lab: &Lab,
    vip: IpAddr,
    stop: &Arc<AtomicBool>,
    seen: &Arc<Mutex<Vec<(Instant, u8)>>>,
) -> lvs_netns::ns::NsThread<()> {
    let (stop, seen) = (Arc::clone(stop), Arc::clone(seen));
    lab.client
        .run(move || {
            let s = UdpSocket::bind(if vip.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
            let to = SocketAddr::new(vip, PORT);
            let mut buf = [0u8; 8];
            let mut next = Instant::now();
            // Bounded: at most one hour of probing.
            let until = Instant::now() + Duration::from_secs(3600);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                if Instant::now() >= next {
                    let _ = s.send_to(b"?", to);
                    next += Duration::from_millis(5);
                }
                if let Ok((1, _)) = s.recv_from(&mut buf) {
                    seen.lock().unwrap().push((Instant::now(), buf[0]));
                }
            }
        })
        .unwrap()
}

fn first_answer_from(
    seen: &Mutex<Vec<(Instant, u8)>>,
    who: u8,
    after: Instant,
    within: Duration,
) -> Option<Instant> {
    let mut found = None;
    wait_until(within, || {
        found = seen
            .lock()
            .unwrap()
            .iter()
            .find(|(t, w)| *t > after && *w == who)
            .map(|(t, _)| *t);
        found.is_some()
    });
    found
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Failover times in seconds for one daemon, version and signal.
fn trials(kind: &str, version: u8, signal: Signal, n: usize) -> Vec<f64> {
    let lab = Lab::new(&format!("fo{version}{}", &kind[..2]), 2);
    let (vip, prefix) = if version == 2 {
        ("198.18.0.100", 24)
    } else {
        ("fdc6:1218::100", 64)
    };
    let advert = if version == 2 { "1" } else { "0.1" };
    let conf = |state, priority| {
        Instance {
            state,
            priority,
            version,
            advert_int: advert,
            vip: &format!("{vip}/{prefix}"),
            extra: "",
        }
        .conf()
    };
    let start = |i: usize, name: &str, c: &str| {
        if kind == "lvsd" {
            lvsd(&lab, i, name, c, &[])
        } else {
            keepalived(&lab, i, name, c)
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let responders = [responder(&lab, 0, &stop), responder(&lab, 1, &stop)];
    let probe = prober(&lab, vip.parse().unwrap(), &stop, &seen);
    let mut r2 = start(1, "r2", &conf("BACKUP", 100));
    let mut out = Vec::new();
    for trial in 0..n {
        let mut r1 = start(0, "r1", &conf("MASTER", 150));
        let ready = first_answer_from(&seen, 0, Instant::now(), Duration::from_secs(15));
        assert!(
            ready.is_some(),
            "trial {trial}: r1 never answered:\n{}",
            r1.log()
        );
        std::thread::sleep(Duration::from_millis(500));
        let at = Instant::now();
        // A killed keepalived is both its processes: its VRRP child, left alone, would get
        // its parent's death signal (PR_SET_PDEATHSIG) and send priority 0, which a real
        // SIGKILL of the host would not.
        if kind == "keepalived" && signal == Signal::SIGKILL {
            let child = std::fs::read_to_string(lab.dir.join("r1_vrrp.pid"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok());
            if let Some(pid) = child {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        r1.proc.signal(signal).unwrap();
        let back = first_answer_from(&seen, 1, at, Duration::from_secs(15))
            .unwrap_or_else(|| panic!("trial {trial}: r2 never answered:\n{}", r2.log()));
        out.push((back - at).as_secs_f64());
        let _ = r1.proc.wait_for(Duration::from_secs(3));
        // A killed keepalived's VRRP child, orphaned, may stay a zombie here (nothing reaps
        // it) and so look alive to the next start's pid-file check: remove its pid files,
        // as the restart of a crashed service would find them gone.
        for f in ["r1.pid", "r1_vrrp.pid"] {
            let _ = std::fs::remove_file(lab.dir.join(f));
        }
    }
    r2.proc.signal(Signal::SIGTERM).unwrap();
    let _ = r2.proc.wait_for(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let _ = probe.join();
    for r in responders {
        let _ = r.join();
    }
    out
}

/// RSS (kB) and CPU seconds per second of wall time of `pids` over `window`.
fn usage(pids: &[i32], window: Duration) -> (u64, f64) {
    let ticks = |pid: i32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = after.split_whitespace().collect();
        f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    };
    let rss = |pid: i32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let before: u64 = pids.iter().map(|p| ticks(*p)).sum();
    std::thread::sleep(window);
    let after: u64 = pids.iter().map(|p| ticks(*p)).sum();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let cpu = (after - before) as f64 / hz / window.as_secs_f64();
    (pids.iter().map(|p| rss(*p)).sum(), cpu)
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture, numbers in BENCHMARKS.md"]
fn failover_times() {
    if skip() || !have("keepalived") {
        return;
    }
    let n: usize = std::env::var("LVSD_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    println!("failover (signal to the VIP answering from the backup), {n} trials each");
    println!(
        "{:<10} {:<16} {:<8} {:>9} {:>9} {:>9}",
        "daemon", "vrrp", "signal", "median", "p99", "max"
    );
    let mut medians = std::collections::BTreeMap::new();
    for (version, label) in [(2u8, "v2 advert 1 s"), (3, "v3 advert 0.1 s")] {
        for signal in [Signal::SIGKILL, Signal::SIGTERM] {
            for kind in ["keepalived", "lvsd"] {
                let mut t = trials(kind, version, signal, n);
                t.sort_by(f64::total_cmp);
                let median = percentile(&t, 50.0);
                medians.insert((version, signal as i32, kind), median);
                println!(
                    "{kind:<10} {label:<16} {:<8} {:>8.0}ms {:>8.0}ms {:>8.0}ms",
                    format!("{signal:?}").trim_start_matches("SIG"),
                    median * 1e3,
                    percentile(&t, 99.0) * 1e3,
                    t[t.len() - 1] * 1e3
                );
            }
            let ratio = medians[&(version, signal as i32, "lvsd")]
                / medians[&(version, signal as i32, "keepalived")];
            println!(
                "{:<10} {label:<16} {:<8} lvsd / keepalived median: {ratio:.3}",
                "ratio",
                format!("{signal:?}").trim_start_matches("SIG")
            );
        }
    }
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture, numbers in BENCHMARKS.md"]
fn footprint_with_the_seed_config() {
    if skip() || !have("keepalived") {
        return;
    }
    // The seed's master config (addresses moved into 198.18.0.0/15), its LAN side on a
    // veth pair of its own.
    let lab = Lab::new("foot", 1);
    lab.routers[0]
        .ip(&[
            "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p",
        ])
        .unwrap();
    lab.routers[0].ip(&["link", "set", "eth1p", "up"]).unwrap();
    lab.routers[0]
        .ip(&["addr", "add", "198.18.1.114/24", "dev", "eth1"])
        .unwrap();
    lab.routers[0].ip(&["link", "set", "eth1", "up"]).unwrap();
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/seed/keepalived.conf.master"
    ))
    .unwrap();
    let conf = seed
        .replace("223.202.22.", "198.18.0.")
        .replace("192.168.22.", "198.18.1.");
    let window = Duration::from_secs(30);
    println!(
        "footprint with the seed's master config, {} s window after 20 s",
        window.as_secs()
    );
    for kind in ["keepalived", "lvsd"] {
        let d = if kind == "lvsd" {
            lvsd(&lab, 0, "foot", &conf, &[])
        } else {
            keepalived(&lab, 0, "foot", &conf)
        };
        std::thread::sleep(Duration::from_secs(20));
        let mut pids = vec![d.proc.pid() as i32];
        if kind == "keepalived" {
            if let Some(child) = std::fs::read_to_string(lab.dir.join("foot_vrrp.pid"))
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                pids.push(child);
            }
        }
        let (rss, cpu) = usage(&pids, window);
        println!(
            "{kind:<10} processes {}  RSS {rss} kB  CPU {:.4} s/s",
            pids.len(),
            cpu
        );
        d.proc.signal(Signal::SIGTERM).unwrap();
        std::thread::sleep(Duration::from_secs(2));
    }
}
