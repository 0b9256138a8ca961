//! Shared by the scenario suites: where the seed scenarios are, and verdict helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use lvs_scenarios::judge::{Report, Verdict};
use lvs_scenarios::Scenario;

/// The seed walkthrough's scenario files, 01..10, in order.
pub const SEED: [&str; 10] = [
    "01-start",
    "02-startup-logs",
    "03-traffic-spread",
    "04-realserver-down",
    "05-realserver-back",
    "06-backup-killed",
    "07-master-killed",
    "08-master-back",
    "09-realserver-nic-down",
    "10-master-wan-nic-down",
];

/// Path of `scenarios/seed/NAME.toml`.
pub fn seed_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/seed")
        .join(format!("{name}.toml"))
}

/// Loads a seed scenario, failing the test with the scenario error's text.
pub fn load(name: &str) -> Scenario {
    match Scenario::load(seed_path(name)) {
        Ok(s) => s,
        Err(e) => panic!("{name}: {e}"),
    }
}

/// Loads `scenarios/REL` (such as `udp/udp-dr-failover.toml`), failing the test with the
/// scenario error's text.
pub fn scenario(rel: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(rel);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every request of a run of `s` to its end: when it was sent, from which port, and how it
/// ended.
pub fn requests(s: &Scenario) -> Vec<(std::time::Duration, u16, lvs_sim::client::Outcome)> {
    let mut sim = lvs_sim::scenario::build(s, s.seed).unwrap();
    sim.run_until(lvs_scenarios::judge::at(s.duration));
    sim.trace()
        .iter()
        .filter_map(|e| match &e.event {
            lvs_sim::record::TraceEvent::Request { record } => Some((
                std::time::Duration::from_nanos(record.started.as_nanos()),
                record.port,
                record.outcome.clone(),
            )),
            _ => None,
        })
        .collect()
}

/// Runs `s` with the default options, failing the test unless every verdict passes, and
/// observes it again: the report and the observation stream.
#[allow(dead_code)] // not every suite that includes this module asks
pub fn passing(
    s: &Scenario,
) -> (
    lvs_scenarios::judge::Report,
    lvs_scenarios::observe::RunRecord,
) {
    let opts = lvs_scenarios::judge::RunOptions::default();
    let report = lvs_sim::scenario::run(s, &opts).unwrap();
    let failed: Vec<_> = report.failures().collect();
    assert!(failed.is_empty(), "{}: {failed:#?}", s.name);
    let observed = lvs_sim::scenario::observe(s, &opts).unwrap();
    (report, observed)
}

/// When `host` first logged a line containing `needle` (a checker's "Removing service ...",
/// say); `None` if it never did.
#[allow(dead_code)] // not every suite that includes this module asks
pub fn logged_at(
    obs: &[lvs_scenarios::observe::Observation],
    host: &str,
    needle: &str,
) -> Option<std::time::Duration> {
    obs.iter()
        .find(|o| {
            o.host == host
                && matches!(&o.what, lvs_scenarios::observe::Observed::Log { line }
                    if line.contains(needle))
        })
        .map(|o| o.t)
}

/// Verdicts about VRRP: who is MASTER, who holds the VIPs, how fast they move, and safety.
/// These need no IPVS data plane.
pub fn is_vrrp_verdict(v: &Verdict) -> bool {
    ["vrrp_state", "vip_owner", "failover_within", "invariants"]
        .iter()
        .any(|p| v.name.starts_with(p))
}

/// Asserts every verdict whose name starts with one of `prefixes` passed, and that there is
/// at least one such verdict.
pub fn assert_pass(r: &Report, prefixes: &[&str]) {
    let chosen: Vec<&Verdict> = r
        .verdicts
        .iter()
        .filter(|v| prefixes.iter().any(|p| v.name.starts_with(p)))
        .collect();
    assert!(
        !chosen.is_empty(),
        "{}: no verdict named {prefixes:?}",
        r.scenario
    );
    for v in chosen {
        assert!(
            v.pass,
            "{}: {} expected {}, observed {}\n{}",
            r.scenario,
            v.name,
            v.expected,
            v.observed,
            r.render_text()
        );
    }
}

/// Run `s` with its JSON trace written to a file of its own (as `lvsd sim --json` writes
/// it, streaming) and return the report with the trace's text.
pub fn run_traced(
    s: &Scenario,
    opts: &lvs_scenarios::judge::RunOptions,
) -> Result<(Report, String), lvs_sim::scenario::RunError> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("lvsd-test-trace-{}-{n}.json", std::process::id()));
    let opts = lvs_scenarios::judge::RunOptions {
        trace_json: Some(path.clone()),
        ..opts.clone()
    };
    let report = lvs_sim::scenario::run(s, &opts);
    let json = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    Ok((report?, json))
}
