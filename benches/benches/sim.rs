//! Simulator throughput on the seed topology (two directors, two real servers, a gateway,
//! four clients) under 1,000 requests/s, and one simulated hour of it; the NAT, TUN and
//! mixed-method suites' clusters under the same load, beside it.
//!
//! `cargo bench -p lvs-benches --bench sim` runs the loaded window; add `-- hour` (or set
//! `LVS_BENCH_HOUR=1`) for the simulated hour, and `trace-off` to skip its traced run. Without `--bench` (as `cargo test --benches`
//! runs it) a short smoke run checks that the workload is served, and nothing is timed.
//!
//! Wall time comes from `std::time::Instant`: fine here, benches are not lvs-core.

/// The allocator `lvsd` uses, so the bench measures what `lvsd sim` runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant as WallInstant};

use lvs_benches::{load_scenario, load_seed, set_open_load};
use lvs_core::Instant;
use lvs_scenarios::Scenario;
use lvs_sim::scenario::build;

/// The seed scenario whose topology and configuration are measured.
const SEED_FILE: &str = "03-traffic-spread.toml";
/// Requests per second over all clients.
const RATE: f64 = 1000.0;
/// The seed clients start at 25 s (the master needs a Master_Down_Interval first).
const LOAD_START: Duration = Duration::from_secs(25);

fn at(d: Duration) -> Instant {
    Instant::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One measured stretch of simulated time.
struct Row {
    name: String,
    sim: Duration,
    wall: Duration,
    events: u64,
    ok: u64,
    failed: u64,
    /// Events still queued at the end (the event heap's size).
    pending: usize,
}

impl Row {
    fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    fn speedup(&self) -> f64 {
        self.sim.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Builds `s`, runs it unmeasured to `from`, then measures the run from `from` to `to`.
fn measure(name: &str, s: &Scenario, trace_requests: bool, from: Duration, to: Duration) -> Row {
    let mut sim = match build(s, s.seed) {
        Ok(sim) => sim,
        Err(e) => panic!("building {}: {e}", s.name),
    };
    sim.trace_requests = trace_requests;
    sim.run_until(at(from));
    let (e0, m0) = (sim.events_processed(), sim.metrics());
    let t0 = WallInstant::now();
    sim.run_until(at(to));
    let wall = t0.elapsed();
    let m1 = sim.metrics();
    Row {
        name: name.to_string(),
        sim: to - from,
        wall,
        events: sim.events_processed() - e0,
        ok: m1.requests_ok - m0.requests_ok,
        failed: m1.requests_failed - m0.requests_failed,
        pending: sim.pending_events(),
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<44} {:>8} {:>9} {:>12} {:>12} {:>9} {:>10} {:>7} {:>8}",
        "run", "sim s", "wall s", "events", "events/s", "sim/wall", "req ok", "failed", "queued"
    );
    for r in rows {
        println!(
            "{:<44} {:>8.0} {:>9.3} {:>12} {:>12.0} {:>9.1} {:>10} {:>7} {:>8}",
            r.name,
            r.sim.as_secs_f64(),
            r.wall.as_secs_f64(),
            r.events,
            r.events_per_sec(),
            r.speedup(),
            r.ok,
            r.failed,
            r.pending,
        );
    }
    if let Some(r) = rows.first() {
        let secs = r.sim.as_secs_f64().max(1e-9);
        println!(
            "events per request (first row): {:.1}, events per simulated second: {:.0}",
            r.events as f64 / (r.ok + r.failed).max(1) as f64,
            r.events as f64 / secs
        );
    }
}

fn seed_at_rate(rate: f64, duration: Duration) -> Scenario {
    let mut s = match load_seed(SEED_FILE) {
        Ok(s) => s,
        Err(e) => panic!("loading {SEED_FILE}: {e}"),
    };
    assert_eq!(
        set_open_load(&mut s, rate, duration),
        4,
        "seed has 4 clients"
    );
    s
}

/// `rel` with its faults removed and its clients sending `rate` requests/s in all from
/// their start to `duration`: a forwarding method's cluster under steady load.
fn method_at_rate(rel: &str, rate: f64, duration: Duration) -> Scenario {
    let mut s = load_scenario(rel).unwrap_or_else(|e| panic!("loading {rel}: {e}"));
    s.faults.clear();
    assert!(
        set_open_load(&mut s, rate, duration) > 0,
        "{rel} has clients"
    );
    s
}

/// The NAT, TUN and mixed suites' clusters: their clients start at 8 s, the master is up
/// by then.
const METHODS: [(&str, &str); 3] = [
    ("NAT", "nat/nat-failover.toml"),
    ("TUN (IPIP, GRE, GUE)", "tun/tun-failover.toml"),
    ("mixed DR + NAT + TUN", "mixed/mixed-failover.toml"),
];
const METHOD_LOAD_START: Duration = Duration::from_secs(10);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench = args.iter().any(|a| a == "--bench");
    let hour = args.iter().any(|a| a == "hour")
        || std::env::var("LVS_BENCH_HOUR").is_ok_and(|v| !v.is_empty() && v != "0");

    if !bench {
        // Test mode: a short, untimed run proving the bench's setup serves its load.
        let s = seed_at_rate(100.0, Duration::from_secs(30));
        let r = measure("smoke", &s, true, LOAD_START, Duration::from_secs(30));
        assert!(r.ok > 300, "smoke run served {} requests", r.ok);
        assert_eq!(r.failed, 0, "smoke run failed requests");
        for (name, rel) in METHODS {
            let s = method_at_rate(rel, 100.0, Duration::from_secs(20));
            let r = measure(name, &s, false, METHOD_LOAD_START, Duration::from_secs(20));
            assert!(
                r.ok > 800 && r.failed == 0,
                "{name}: {} ok, {} failed",
                r.ok,
                r.failed
            );
        }
        println!(
            "sim bench smoke run: {} events, {} requests ok",
            r.events, r.ok
        );
        return;
    }

    let window = Duration::from_secs(60);
    let s = seed_at_rate(RATE, LOAD_START + window);
    let mut rows = vec![
        measure(
            "seed @1000 req/s, 60 s loaded, trace on",
            &s,
            true,
            LOAD_START,
            LOAD_START + window,
        ),
        measure(
            "seed @1000 req/s, 60 s loaded, trace off",
            &s,
            false,
            LOAD_START,
            LOAD_START + window,
        ),
        measure(
            "seed idle (VRRP+checkers only), 0-25 s",
            &s,
            true,
            Duration::ZERO,
            LOAD_START,
        ),
    ];
    // The same load through each forwarding method: NAT's replies cross the director too,
    // TUN's requests cross the gateway twice (out to the real servers' subnet).
    for (name, rel) in METHODS {
        let s = method_at_rate(rel, RATE, METHOD_LOAD_START + window);
        rows.push(measure(
            &format!("{name} @1000 req/s, 60 s loaded, trace off"),
            &s,
            false,
            METHOD_LOAD_START,
            METHOD_LOAD_START + window,
        ));
    }
    if hour {
        let hour = Duration::from_secs(3600);
        let s = seed_at_rate(RATE, hour);
        rows.push(measure(
            "seed 1 h @1000 req/s, trace off",
            &s,
            false,
            Duration::ZERO,
            hour,
        ));
        // The process's peak resident set so far: the trace-off hour is its largest run.
        if let Some(peak) = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .map(str::to_string)
            })
        {
            println!(
                "peak memory after the trace-off hour: {}",
                peak.trim_start_matches("VmHWM:").trim()
            );
        }
        if !args.iter().any(|a| a == "trace-off") {
            rows.push(measure(
                "seed 1 h @1000 req/s, trace on",
                &s,
                true,
                Duration::ZERO,
                hour,
            ));
        }
    } else {
        println!("(simulated hour skipped: pass `-- hour` or set LVS_BENCH_HOUR=1)");
    }
    print_table(&rows);
}
