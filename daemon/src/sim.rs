//! `lvsd sim`: run a scenario on the deterministic simulator and check its expectations.

use std::io::{self, IsTerminal, Write};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lvs_scenarios::judge::RunOptions;
use lvs_scenarios::{format_duration, parse_duration, Scenario};
use lvs_sim::scenario::{run as run_scenario, run_with_progress};

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
    /// One log per director instead of one time-ordered log of all of them and the faults.
    #[arg(long)]
    pub by_host: bool,
    /// Keep every "Sending gratuitous ARP" line instead of one per burst with its count.
    #[arg(long)]
    pub log_detail: bool,
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
    let mut out = Quiet(io::stdout().lock());
    execute(&args, &mut out)
}

/// Stdout that ignores a closed pipe (`lvsd sim ... | head`): the exit code still tells.
struct Quiet<W>(W);

impl<W: Write> Write for Quiet<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.write(buf) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(buf.len()),
            r => r,
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.0.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            r => r,
        }
    }
}

/// `lvsd sim` writing its report to `out`.
fn execute(args: &Args, out: &mut dyn Write) -> Result<ExitCode> {
    let scenario = Scenario::load(&args.scenario)?;
    if let Some(seeds) = args.seeds.clone() {
        return run_seeds(args, &scenario, seeds, out);
    }
    let opts = RunOptions {
        seed: args.seed,
        until: args.until,
        trace_json: args.json.clone(),
        svg: args.svg.is_some(),
    };
    let report = {
        let bar = Progress::new();
        let r = run_with_progress(&scenario, &opts, &mut |now, end| bar.at(now, end))?;
        bar.done();
        r
    };
    out.write_all(
        report
            .render_text_as(args.by_host, args.log_detail)
            .as_bytes(),
    )?;
    out.flush()?;
    if let (Some(path), Some(svg)) = (&args.svg, &report.svg) {
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A progress bar with an ETA on stderr, drawn once a run has taken a second and only on
/// a terminal, so short runs and piped output stay as they were.
struct Progress {
    bar: ProgressBar,
    started: std::time::Instant,
    shown: std::cell::Cell<bool>,
}

impl Progress {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {msg} of virtual time [{elapsed} < {eta}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress {
            bar,
            started: std::time::Instant::now(),
            shown: std::cell::Cell::new(false),
        }
    }

    fn at(&self, now: Duration, end: Duration) {
        if !self.shown.get()
            && self.started.elapsed() >= Duration::from_secs(1)
            && io::stderr().is_terminal()
        {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown.set(true);
        }
        let frac = now.as_secs_f64() / end.as_secs_f64().max(f64::MIN_POSITIVE);
        self.bar.set_position((frac * 1000.0) as u64);
        self.bar.set_message(format!(
            "{} / {}",
            format_duration(now),
            format_duration(end)
        ));
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}

fn run_seeds(
    args: &Args,
    scenario: &Scenario,
    seeds: RangeInclusive<u64>,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let count = seeds.end() - seeds.start() + 1;
    if count == 0 {
        bail!("no seed to run");
    }
    let bar = ProgressBar::new(count);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} seeds, {msg} failing [{elapsed} < {eta}]",
            )
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
            bar.suspend(|| -> io::Result<()> {
                writeln!(out, "seed {seed}: {}", broken.join("; "))?;
                writeln!(out, "  replay: lvsd sim {path} --seed {seed}{until}")?;
                out.flush()
            })?;
        }
        bar.set_message(failing.to_string());
        bar.inc(1);
    }
    bar.finish_and_clear();
    writeln!(
        out,
        "{failing} of {count} seeds broke an expectation or invariant"
    )?;
    out.flush()?;
    Ok(if failing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory holding the seed configs and a copy of 01-start with `expect`.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str, expect: &str) -> Scratch {
            let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/seed");
            let dir = std::env::temp_dir().join(format!("lvsd-sim-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            for f in ["keepalived.conf.master", "keepalived.conf.backup"] {
                std::fs::copy(seed.join(f), dir.join(f)).unwrap();
            }
            let text = std::fs::read_to_string(seed.join("01-start.toml")).unwrap();
            let head = text.split("[expect]").next().unwrap();
            std::fs::write(dir.join("s.toml"), format!("{head}[expect]\n{expect}\n")).unwrap();
            Scratch(dir)
        }

        fn args(&self, seeds: Option<RangeInclusive<u64>>) -> Args {
            Args {
                scenario: self.0.join("s.toml"),
                seed: None,
                until: None,
                json: None,
                svg: None,
                by_host: false,
                log_detail: false,
                seeds,
            }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn exec(args: &Args) -> (Result<ExitCode>, String) {
        let mut out = Vec::new();
        let r = execute(args, &mut out);
        (r, String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn passing_scenario_prints_logs_tables_verdicts_and_exits_0() {
        let s = Scratch::new(
            "pass",
            "vrrp_state = { director1 = \"MASTER\", director2 = \"BACKUP\" }",
        );
        let (r, out) = exec(&s.args(None));
        assert_eq!(r.unwrap(), ExitCode::SUCCESS, "{out}");
        assert!(
            out.contains("==> keepalived logs and faults, in time order <=="),
            "{out}"
        );
        assert!(out.contains("(LAN) Entering MASTER STATE"), "{out}");
        // A gratuitous ARP burst is one line with its count.
        assert!(
            out.contains("Sending gratuitous ARP on eth1 for 192.168.22.118 (5 times)"),
            "{out}"
        );
        let mut by_host = s.args(None);
        by_host.by_host = true;
        by_host.log_detail = true;
        let (_, out) = exec(&by_host);
        assert!(out.contains("==> director1 keepalived log <=="), "{out}");
        assert!(!out.contains(" times)"), "{out}");
        assert!(
            out.contains("==> director2 ipvsadm -L -n at 45.000s <=="),
            "{out}"
        );
        assert!(out.contains("PASS vrrp_state director1"), "{out}");
    }

    #[test]
    fn failing_seeds_are_listed_with_their_replay_command() {
        let s = Scratch::new("fail", "vip_owner = { \"223.202.22.118\" = \"director2\" }");
        let (r, out) = exec(&s.args(None));
        assert_eq!(r.unwrap(), ExitCode::from(1), "{out}");
        assert!(out.contains("FAIL vip_owner 223.202.22.118"), "{out}");
        let (r, out) = exec(&s.args(Some(3..=4)));
        assert_eq!(r.unwrap(), ExitCode::from(1), "{out}");
        let path = s.0.join("s.toml");
        for seed in [3, 4] {
            let replay = format!("replay: lvsd sim {} --seed {seed}\n", path.display());
            assert!(out.contains(&replay), "{out}");
        }
        assert!(
            out.ends_with("2 of 2 seeds broke an expectation or invariant\n"),
            "{out}"
        );
    }

    #[test]
    fn bad_scenario_is_an_error_naming_the_place() {
        let dir = std::env::temp_dir().join(format!("lvsd-sim-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "name = \"x\"\nduration = \"10q\"\n").unwrap();
        let args = Args {
            scenario: file.clone(),
            seed: None,
            until: None,
            json: None,
            svg: None,
            by_host: false,
            log_detail: false,
            seeds: None,
        };
        let (r, _) = exec(&args);
        let _ = std::fs::remove_dir_all(&dir);
        let msg = format!("{:#}", r.unwrap_err());
        assert!(msg.contains("bad.toml:2:12"), "{msg}");
    }

    #[test]
    fn seeds_range_parses_and_rejects_nonsense() {
        assert_eq!(parse_seeds("1..10"), Ok(1..=10));
        assert_eq!(parse_seeds("3..=3"), Ok(3..=3));
        assert!(parse_seeds("10..1").is_err());
        assert!(parse_seeds("x..1").is_err());
        assert!(parse_seeds("7").is_err());
    }
}
