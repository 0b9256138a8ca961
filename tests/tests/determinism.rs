//! Same scenario, same seed: byte-identical traces. Another seed: another trace (jitter,
//! loss and arrival draws differ) but the same VRRP verdicts.

mod common;

use common::{is_vrrp_verdict, load, run_traced, SEED};
use lvs_scenarios::judge::{Report, RunOptions};
use sha2::{Digest, Sha256};

/// The report and the hash of the JSON trace of a run of `name`.
fn traced(name: &str, seed: Option<u64>) -> (Report, String) {
    let s = load(name);
    let opts = RunOptions {
        seed,
        ..RunOptions::default()
    };
    let (r, json) = run_traced(&s, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(!json.is_empty(), "{name}: no trace");
    (r, hex::encode(Sha256::digest(json.as_bytes())))
}

fn vrrp_verdicts(r: &Report) -> Vec<(String, bool, String)> {
    r.verdicts
        .iter()
        .filter(|v| is_vrrp_verdict(v))
        .map(|v| (v.name.clone(), v.pass, v.observed.clone()))
        .collect()
}

#[test]
fn same_seed_gives_byte_identical_traces() {
    for name in SEED {
        let ((a, ha), (b, hb)) = (traced(name, None), traced(name, None));
        assert_eq!(ha, hb, "{name}: trace differs");
        assert_eq!(a.render_text(), b.render_text(), "{name}: report differs");
    }
}

#[test]
fn another_seed_changes_the_trace_but_not_the_vrrp_verdicts() {
    for name in SEED {
        let (a, ha) = traced(name, None);
        let (b, hb) = traced(name, Some(a.seed + 1000));
        assert_ne!(ha, hb, "{name}: the seed changed nothing");
        // Observed text is compared for vrrp_state and vip_owner; failover_within's observed
        // gap length depends on jitter, so only its pass/fail is compared.
        let strip = |v: Vec<(String, bool, String)>| {
            v.into_iter()
                .map(|(n, p, o)| {
                    let o = if n.starts_with("failover_within") || n == "invariants" {
                        String::new()
                    } else {
                        o
                    };
                    (n, p, o)
                })
                .collect::<Vec<_>>()
        };
        let (va, vb) = (strip(vrrp_verdicts(&a)), strip(vrrp_verdicts(&b)));
        assert!(!va.is_empty(), "{name}: no VRRP verdict to compare");
        assert_eq!(va, vb, "{name}: VRRP verdicts depend on the seed");
    }
}

// The progress bar steps the run in small slices of virtual time; the result must not move.
#[test]
fn watching_progress_changes_nothing() {
    let s = load("07-master-killed");
    let path = std::env::temp_dir().join(format!("lvsd-test-watched-{}.json", std::process::id()));
    let opts = RunOptions {
        trace_json: Some(path.clone()),
        ..RunOptions::default()
    };
    let mut calls = Vec::new();
    let watched =
        lvs_sim::scenario::run_with_progress(&s, &opts, &mut |now, end| calls.push((now, end)))
            .unwrap();
    let watched_trace = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let (plain, plain_trace) = run_traced(&s, &RunOptions::default()).unwrap();
    assert_eq!(watched, plain);
    assert_eq!(watched_trace, plain_trace);
    assert!(calls.len() >= 200, "{} calls", calls.len());
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(calls.last(), Some(&(s.duration, s.duration)));
}
