//! `lvsd sim`: run a scenario on the deterministic simulator and check its expectations.

use std::io::IsTerminal;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lvs_scenarios::run::{run as run_scenario, RunOptions};
use lvs_scenarios::{format_duration, parse_duration, Scenario};

/// Arguments of `lvsd sim`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario file (TOML, see scenarios/FORMAT.md).
    pub scenario: PathBuf,
    /// Seed instead of the scenario's own.
    #[arg(long, conflicts_with = "seeds")]
    pub seed: Option<u64>,
    /// Stop at this virtual time instead of the scenario's duration (e.g. `30s`).
    #[arg(long, value_parser = parse_until)]
    pub until: Option<Duration>,
    /// Write the JSON trace here.
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    pub json: Option<PathBuf>,
    /// Write the SVG timeline here.
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    pub svg: Option<PathBuf>,
    /// Run every seed in `A..B` (inclusive) and list the ones that fail.
    #[arg(long, value_name = "A..B", value_parser = parse_seeds)]
    pub seeds: Option<RangeInclusive<u64>>,
}

fn parse_until(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn parse_seeds(s: &str) -> Result<RangeInclusive<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("`{s}`: expected A..B, e.g. 1..100"))?;
    let b = b.strip_prefix('=').unwrap_or(b);
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|e| format!("`{s}`: first seed: {e}"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|e| format!("`{s}`: last seed: {e}"))?;
    if a > b {
        return Err(format!("`{s}`: the first seed is after the last"));
    }
    Ok(a..=b)
}

/// Runs `lvsd sim`: 0 when every expectation holds, 1 otherwise (errors exit 2 in main).
pub fn run(args: Args) -> Result<ExitCode> {
    let scenario = Scenario::load(&args.scenario)?;
    if let Some(seeds) = args.seeds.clone() {
        return run_seeds(&args, &scenario, seeds);
    }
    let opts = RunOptions {
        seed: args.seed,
        until: args.until,
        trace_json: args.json.is_some(),
        svg: args.svg.is_some(),
    };
    let report = run_scenario(&scenario, &opts)?;
    print!("{}", report.render_text());
    if let (Some(path), Some(json)) = (&args.json, &report.trace_json) {
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let (Some(path), Some(svg)) = (&args.svg, &report.svg) {
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_seeds(args: &Args, scenario: &Scenario, seeds: RangeInclusive<u64>) -> Result<ExitCode> {
    let count = seeds.end() - seeds.start() + 1;
    if count == 0 {
        bail!("no seed to run");
    }
    let bar = ProgressBar::new(count);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {msg} failing [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let until = args
        .until
        .map(|u| format!(" --until {}", format_duration(u)))
        .unwrap_or_default();
    let path = args.scenario.display();
    let mut failing = 0u64;
    for seed in seeds {
        let opts = RunOptions {
            seed: Some(seed),
            until: args.until,
            ..RunOptions::default()
        };
        let report = run_scenario(scenario, &opts)?;
        let broken: Vec<String> = report
            .failures()
            .map(|v| format!("{} (observed {})", v.name, v.observed))
            .chain(
                report
                    .violations
                    .iter()
                    .map(|v| format!("{:?} at {}: {}", v.kind, v.t, v.detail)),
            )
            .collect();
        if !broken.is_empty() {
            failing += 1;
            bar.suspend(|| {
                println!("seed {seed}: {}", broken.join("; "));
                println!("  replay: lvsd sim {path} --seed {seed}{until}");
            });
        }
        bar.set_message(failing.to_string());
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("{failing} of {count} seeds broke an expectation or invariant");
    Ok(if failing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_range_parses_and_rejects_nonsense() {
        assert_eq!(parse_seeds("1..10"), Ok(1..=10));
        assert_eq!(parse_seeds("3..=3"), Ok(3..=3));
        assert!(parse_seeds("10..1").is_err());
        assert!(parse_seeds("x..1").is_err());
        assert!(parse_seeds("7").is_err());
    }
}
