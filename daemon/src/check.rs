//! `lvsd check`: validate a keepalived.conf like `keepalived -t`.

use std::io::Write;
use std::process::ExitCode;

use lvs_core::config;
use lvs_core::ipvs::save::ipvsadm_save;
use lvs_scenarios::fs::FsLoader;

/// Arguments of `lvsd check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The keepalived.conf to check.
    #[arg(short = 'f', long = "use-file", value_name = "FILE")]
    pub file: String,
    /// Print the IPVS rules the config implies, in `ipvsadm-save -n` form.
    #[arg(long)]
    pub ipvsadm: bool,
    /// Print the typed model as JSON.
    #[arg(long)]
    pub json: bool,
    /// Treat warnings as errors: exit 1 (and print no rules) when there is any diagnostic.
    #[arg(long)]
    pub strict: bool,
    /// The id `@ID` lines are matched against (like `keepalived -i`); default: the short host name.
    #[arg(short = 'i', long = "config-id", value_name = "ID")]
    pub config_id: Option<String>,
}

/// The loader keepalived reads its files with on this host: `@ID` lines matched against
/// `config_id` or, as keepalived defaults it, the host name up to its first dot; `${_PWD}`
/// is `working_dir` (`None`: `/`); `${_RANDOM}` draws are clock-seeded.
pub fn host_loader(config_id: Option<String>, working_dir: Option<String>) -> FsLoader {
    let config_id = config_id.or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .and_then(|h| h.trim().split('.').next().map(str::to_string))
            .filter(|h| !h.is_empty())
    });
    FsLoader {
        config_id,
        working_dir,
        random_seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

/// Run the command: diagnostics on stderr; exit 0 when usable (warnings only), 1 on errors
/// (or on warnings with `--strict`).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // `${_PWD}` as keepalived -t run here gives it: this directory.
    let working_dir = std::env::current_dir()
        .ok()
        .map(|d| d.display().to_string());
    let loader = host_loader(args.config_id.clone(), working_dir);
    let parsed = config::parse(&args.file, &loader);
    let mut stderr = std::io::stderr().lock();
    for d in &parsed.diagnostics {
        stderr.write_all(d.render().as_bytes())?;
    }
    let warnings = parsed.diagnostics.iter().filter(|d| !d.is_error()).count();
    let errors = parsed.diagnostics.len() - warnings;
    writeln!(
        stderr,
        "{}: {errors} error(s), {warnings} warning(s)",
        args.file
    )?;
    let Some(cfg) = parsed.config else {
        return Ok(ExitCode::from(1));
    };
    // keepalived carries on after what it only logs; --strict is the opt-in stricter verdict.
    if args.strict && warnings > 0 {
        writeln!(stderr, "{}: warnings are errors with --strict", args.file)?;
        return Ok(ExitCode::from(1));
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &cfg)?;
        writeln!(stdout)?;
    }
    if args.ipvsadm {
        stdout.write_all(ipvsadm_save(&cfg.ipvs_rules()).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}
