//! `lvsd status`: ask a running `lvsd run` over its control socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::run::control::{Request, DEFAULT_PATH};

/// Arguments of `lvsd status`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The daemon's control socket (its `--control`).
    #[arg(long = "control", value_name = "SOCKET", default_value = DEFAULT_PATH)]
    pub control: PathBuf,
    /// JSON for machines.
    #[arg(long)]
    pub json: bool,
    /// keepalived's counters per instance (adverts, transitions, invalid packets by reason).
    #[arg(long)]
    pub stats: bool,
}

/// Print the daemon's answer; exit 1 when it cannot be asked.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let request = Request {
        stats: args.stats,
        json: args.json,
    };
    match ask(&args, request) {
        Ok(answer) => {
            std::io::stdout().write_all(answer.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "lvsd status: cannot ask the daemon at {}: {e}",
                args.control.display()
            );
            Ok(ExitCode::from(1))
        }
    }
}

fn ask(args: &Args, request: Request) -> std::io::Result<String> {
    let mut s = UnixStream::connect(&args.control)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(request.line().as_bytes())?;
    let mut answer = String::new();
    // Bounded: an answer is a few kB per instance.
    s.take(16 << 20).read_to_string(&mut answer)?;
    Ok(answer)
}
