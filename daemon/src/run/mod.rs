//! `lvsd run`: the deployment daemon, in place of keepalived — the same keepalived.conf, the
//! same flags, the same VRRP on the wire and the same log lines.
//!
//! Every decision is `lvs_core::director::Director`'s; this module and its children only
//! execute: sockets ([`socket`]), rtnetlink ([`host`]), scripts ([`script`], under
//! keepalived's script security: [`security`]), `smtp_alert` mail ([`smtp`]), logs
//! ([`log`]), systemd ([`systemd`]), the control socket ([`control`], [`report`]), metrics ([`metrics`]),
//! and the
//! event loop that ties them to the director
//! ([`driver`]). Load balancing (IPVS, the checkers, the userspace data plane) is not run
//! yet: a config with virtual servers runs its VRRP half, and says so.

pub mod control;
mod driver;
mod host;
mod log;
mod metrics;
mod report;
mod script;
mod security;
mod smtp;
mod socket;
mod systemd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

/// keepalived's default configuration file.
const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";

/// Arguments of `lvsd run`: keepalived 2.2.7's own flags, where they mean the same.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The configuration file (keepalived's `-f`).
    #[arg(short = 'f', long = "use-file", value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub file: PathBuf,
    /// Stay in the foreground (keepalived's `-n`).
    #[arg(short = 'n', long = "dont-fork")]
    pub dont_fork: bool,
    /// Log to the console, standard error (keepalived's `-l`).
    #[arg(short = 'l', long = "log-console")]
    pub log_console: bool,
    /// Log details (keepalived's `-D`).
    #[arg(short = 'D', long = "log-detail")]
    pub log_detail: bool,
    /// Run the VRRP half only (keepalived's `-P`).
    #[arg(short = 'P', long = "vrrp")]
    pub vrrp_only: bool,
    /// Run the health checkers only (keepalived's `-C`): not available yet.
    #[arg(short = 'C', long = "check")]
    pub check_only: bool,
    /// The main pid file (keepalived's `-p`).
    #[arg(
        short = 'p',
        long = "pid",
        value_name = "FILE",
        default_value = "/run/keepalived.pid"
    )]
    pub pid_file: PathBuf,
    /// The VRRP pid file (keepalived's `-r`): lvsd is one process, so the same pid.
    #[arg(
        short = 'r',
        long = "vrrp_pid",
        value_name = "FILE",
        default_value = "/run/keepalived_vrrp.pid"
    )]
    pub vrrp_pid_file: PathBuf,
    /// The checkers' pid file (keepalived's `-c`): written once lvsd runs the checkers.
    #[arg(
        short = 'c',
        long = "checkers_pid",
        value_name = "FILE",
        default_value = "/run/keepalived_checkers.pid"
    )]
    pub checkers_pid_file: PathBuf,
    /// Syslog facility LOG_LOCAL0..7 (keepalived's `-S 0..7`; default LOG_DAEMON).
    #[arg(short = 'S', long = "log-facility", value_name = "N", value_parser = clap::value_parser!(u8).range(0..=7))]
    pub log_facility: Option<u8>,
    /// Also log to FILE (keepalived's `-g`, default /tmp/keepalived.log).
    #[arg(short = 'g', long = "log-file", value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = "/tmp/keepalived.log")]
    pub log_file: Option<PathBuf>,
    /// Do not log to syslog (keepalived's `-G`).
    #[arg(short = 'G', long = "no-syslog")]
    pub no_syslog: bool,
    /// The id `@ID` lines are matched against (keepalived's `-i`; default: the short host name).
    #[arg(short = 'i', long = "config-id", value_name = "ID")]
    pub config_id: Option<String>,
    /// The control socket `lvsd status` asks (mode 0600, root or this user only).
    #[arg(long = "control", value_name = "SOCKET", default_value = control::DEFAULT_PATH)]
    pub control: PathBuf,
    /// Serve Prometheus metrics on ADDR (`GET /metrics`; keepalived-exporter's names).
    #[arg(long = "metrics", value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
}

/// Run the daemon until SIGTERM / SIGINT: exit 0; exit 1 when it cannot start.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Err(why) = capabilities() {
        eprintln!("lvsd run: {why}");
        return Ok(ExitCode::from(1));
    }
    if args.check_only {
        eprintln!(
            "lvsd run: -C (health checkers only) is not available yet: lvsd runs the VRRP \
             half (-P); its checkers, IPVS and data plane come with the load-balancing part"
        );
        return Ok(ExitCode::from(1));
    }
    if let Some(pid) = [&args.pid_file, &args.vrrp_pid_file]
        .iter()
        .find_map(|f| running_pid(f))
    {
        eprintln!("lvsd run: daemon is already running (pid {pid})");
        return Ok(ExitCode::from(1));
    }
    // Read once in the foreground so that a file that cannot run is refused with exit 1
    // and its errors on the terminal, before anything forks.
    let loaded = driver::load(&args).map_err(|e| anyhow::anyhow!("{e}"));
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lvsd run: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if !args.dont_fork {
        // keepalived forks into the background unless -n; no thread exists yet.
        nix::unistd::daemon(false, false).context("daemon(3)")?;
    }
    let pid = std::process::id();
    let pid_files = [args.pid_file.clone(), args.vrrp_pid_file.clone()];
    for f in &pid_files {
        std::fs::write(f, format!("{pid}\n")).with_context(|| format!("{}", f.display()))?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let result = runtime.block_on(driver::run(args, loaded));
    for f in &pid_files {
        let _ = std::fs::remove_file(f);
    }
    result.map(|()| ExitCode::SUCCESS)
}

/// CAP_NET_ADMIN (addresses, links) and CAP_NET_RAW (raw and packet sockets) in the
/// effective set, as `/proc/self/status` lists it.
fn capabilities() -> Result<(), String> {
    const NET_ADMIN: u64 = 1 << 12;
    const NET_RAW: u64 = 1 << 13;
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let missing: Vec<&str> = [(NET_ADMIN, "CAP_NET_ADMIN"), (NET_RAW, "CAP_NET_RAW")]
        .into_iter()
        .filter(|(bit, _)| eff & bit == 0)
        .map(|(_, name)| name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "needs {} (run it as root, or grant them with setcap / systemd's \
             AmbientCapabilities)",
            missing.join(" and ")
        ))
    }
}

/// The pid a pid file names, when that process is alive (keepalived's `keepalived_running`);
/// a zombie (dead, not yet reaped by its parent) is not.
fn running_pid(file: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
    if pid <= 0 || pid == std::process::id() as i32 {
        return None;
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    (state != Some('Z')).then_some(pid)
}

/// A current-thread runtime for the unit tests of the driver's tasks.
#[cfg(test)]
fn test_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[cfg(test)]
mod tests {
    use super::running_pid;

    #[test]
    fn a_pid_file_names_a_running_daemon_only_while_it_runs() {
        let file = std::env::temp_dir().join(format!("lvsd-pid-{}", std::process::id()));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        std::fs::write(&file, format!("{}\n", child.id())).unwrap();
        assert_eq!(running_pid(&file), Some(child.id() as i32));
        child.kill().unwrap();
        // Killed but not yet reaped: a zombie, not a running daemon.
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(running_pid(&file), None);
        child.wait().unwrap();
        assert_eq!(running_pid(&file), None);
        std::fs::write(&file, "garbage\n").unwrap();
        assert_eq!(running_pid(&file), None);
        std::fs::remove_file(&file).unwrap();
    }
}
