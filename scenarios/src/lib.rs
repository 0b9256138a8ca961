//! Scenario format (TOML) and the scenario files, runnable on the simulator and the netns harness.
//!
//! A scenario file describes a cluster (segments, hosts and their roles, a keepalived.conf per
//! director), a workload, a fault timeline, `ipvsadm -L -n` snapshot times and the expectations
//! checked at the end. [`Scenario::load`] reads, checks and resolves one into plain data:
//! durations as [`std::time::Duration`], addresses parsed, names turned into [`HostId`] /
//! [`SegmentId`], each keepalived.conf read in with its file name kept for diagnostics.
//! `scenarios/FORMAT.md` documents every key; `scenarios/seed/` holds the seed guide's walkthrough.
//!
//! A backend runs a scenario and reports what it saw as an [`observe`] stream; [`judge`]
//! turns that stream into verdicts without knowing the backend (this crate does not depend
//! on the simulator: `lvs_sim::scenario` builds and runs one from a scenario).

mod duration;
mod error;
pub mod fs;
pub mod judge;
mod model;
pub mod netns;
pub mod observe;
mod raw;
mod resolve;

use std::path::Path;

pub use duration::{format_duration, parse_duration, DurationError, DurationProblem};
pub use error::{Problem, ScenarioError};
pub use model::*;
pub use resolve::{
    DEFAULT_ARP_CACHE_TIMEOUT, DEFAULT_CAPACITY, DEFAULT_LATENCY, DEFAULT_REQUEST_SIZE,
    DEFAULT_RESPONSE_SIZE, DEFAULT_SCTP_TIMEOUT, DEFAULT_SEED, DEFAULT_SERVICE_TIME,
    DEFAULT_UDP_TIMEOUT, IPV6_EXTRA_HEADER, MAX_TCP_REQUEST_SIZE, MAX_UDP_REQUEST_SIZE,
    MIN_UDP_REQUEST_SIZE,
};

impl Scenario {
    /// Reads, checks and resolves the scenario file at `path`; relative `keepalived_conf`
    /// paths are taken from the scenario file's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let text = fs::read_bounded(path).map_err(|source| ScenarioError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        resolve::resolve(&text, path, base)
    }

    /// Checks and resolves scenario text; errors name the file `<inline>`, relative
    /// `keepalived_conf` paths start at `base_dir`.
    pub fn from_str(text: &str, base_dir: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        resolve::resolve(text, Path::new("<inline>"), base_dir.as_ref())
    }

    /// As [`Scenario::from_str`], naming the text `file` in errors.
    pub fn from_str_named(
        text: &str,
        file: impl AsRef<Path>,
        base_dir: impl AsRef<Path>,
    ) -> Result<Scenario, ScenarioError> {
        resolve::resolve(text, file.as_ref(), base_dir.as_ref())
    }
}
