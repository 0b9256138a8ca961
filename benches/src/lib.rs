//! Benchmarks live in `benches/`; shared helpers go here.

use std::path::PathBuf;
use std::time::Duration;

use lvs_scenarios::{LoadPattern, Role, Scenario, ScenarioError};

/// The repository's `scenarios/seed/` directory, found from this crate's manifest.
pub fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scenarios")
        .join("seed")
}

/// Loads `rel` (e.g. `nat/nat-failover.toml`) from the repository's `scenarios/`.
pub fn load_scenario(rel: &str) -> Result<Scenario, ScenarioError> {
    Scenario::load(seed_dir().join("..").join(rel))
}

/// Loads the seed scenario `file` (e.g. `03-traffic-spread.toml`) from [`seed_dir`].
pub fn load_seed(file: &str) -> Result<Scenario, ScenarioError> {
    Scenario::load(seed_dir().join(file))
}

/// Turns every client of `s` into an open-loop source so that together they send
/// `total_rate` requests per second, and stretches the scenario (and every client's
/// stop time) to `duration`. Returns how many clients share the load (0: nothing changed).
pub fn set_open_load(s: &mut Scenario, total_rate: f64, duration: Duration) -> usize {
    let clients = s
        .hosts
        .iter()
        .filter(|h| matches!(h.role, Role::Client(_)))
        .count();
    if clients == 0 {
        return 0;
    }
    let rate = total_rate / clients as f64;
    s.duration = duration;
    for h in &mut s.hosts {
        if let Role::Client(c) = &mut h.role {
            c.workload.pattern = LoadPattern::Open { rate };
            c.workload.stop = duration;
        }
    }
    clients
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_is_split_over_the_seed_clients() {
        let mut s = load_seed("03-traffic-spread.toml").expect("seed scenario loads");
        let n = set_open_load(&mut s, 1000.0, Duration::from_secs(120));
        assert_eq!(n, 4);
        assert_eq!(s.duration, Duration::from_secs(120));
        let mut total = 0.0;
        for h in &s.hosts {
            if let Role::Client(c) = &h.role {
                assert_eq!(c.workload.stop, Duration::from_secs(120));
                match c.workload.pattern {
                    LoadPattern::Open { rate } => total += rate,
                    LoadPattern::Closed { .. } => panic!("{} left closed-loop", h.name),
                }
            }
        }
        assert!((total - 1000.0).abs() < 1e-9, "total rate {total}");
    }
}
