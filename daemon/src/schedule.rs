//! `lvsd schedule` (skeleton; its helper replaces this file).

use std::process::ExitCode;

/// Arguments of `lvsd schedule`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Run the command.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("lvsd schedule: not built yet")
}
