//! lvsd: the deployment daemon and its command-line tools.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the simulator allocates a frame per packet hop, and the system allocator
/// costs it about 5 % (BENCHMARKS.md, "Simulator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod check;
mod run;
mod schedule;
mod sim;
mod status;

/// LVS + keepalived in Rust.
#[derive(Parser, Debug)]
#[command(name = "lvsd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a keepalived.conf like `keepalived -t`.
    Check(check::Args),
    /// Run as the deployment daemon, in place of keepalived (same config, same flags).
    Run(run::Args),
    /// Replay a scheduler trace without root or kernel IPVS.
    Schedule(schedule::Args),
    /// Ask a running `lvsd run`: its instances, or with --stats its counters.
    Status(status::Args),
    /// Run a scenario on the deterministic simulator and check its expectations.
    Sim(sim::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Run(args) => run::run(args),
        Command::Schedule(args) => schedule::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Status(args) => status::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lvsd: {}", report(&e));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line. Library errors often name their cause in their
/// own message already (`file: cannot read the scenario: No such file...`); a cause the
/// line already ends with is not repeated.
fn report(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !line.ends_with(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::report;

    #[derive(Debug, thiserror::Error)]
    #[error("a.toml: cannot read the scenario: {source}")]
    struct Wrapped {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(Wrapped { source: io });
        assert_eq!(report(&e), "a.toml: cannot read the scenario: no such file");
    }

    #[test]
    fn context_and_cause_are_both_kept() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(io).context("writing trace.json");
        assert_eq!(report(&e), "writing trace.json: no such file");
    }
}
