//! lvsd: the deployment daemon and its command-line tools.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the simulator allocates a frame per packet hop, and the system allocator
/// costs it about 5 % (BENCHMARKS.md, "Simulator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod check;
mod schedule;
mod sim;

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
    /// Replay a scheduler trace without root or kernel IPVS.
    Schedule(schedule::Args),
    /// Run a scenario on the deterministic simulator and check its expectations.
    Sim(sim::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Schedule(args) => schedule::run(args),
        Command::Sim(args) => sim::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lvsd: {e:#}");
            ExitCode::from(2)
        }
    }
}
