//! The parity suite: public keepalived.conf files (fixtures/parity, where each comes from in
//! SOURCES.md) against what Debian 12's keepalived 2.2.7 said of each in config-test mode
//! (`<name>.txt` beside `<name>.conf`, recorded as fixtures/parity/README.md says). The folder
//! is listed when the test runs, so a new pair of files joins the suite as it is.

use std::path::{Path, PathBuf};

use lvs_core::config::diagnostic::{read_keepalived_lines, Diagnostic};
use lvs_core::config::{parse_str, Parsed};

fn rendered(p: &Parsed) -> Vec<String> {
    p.diagnostics.iter().map(Diagnostic::render).collect()
}

/// The lines keepalived 2.2.7 logs when it cannot run a config. `keepalived -t`'s exit status
/// does not tell: every logged problem raises it to 5 (lib/parser.c keeps the *least* severe
/// level it saw, so a fatal line next to a warning still exits 5), and the VRRP child's refusal
/// (vrrp_daemon.c start_vrrp: `stop_vrrp(KEEPALIVED_EXIT_CONFIG)`) is a no-op under -t. What
/// stops keepalived at start-up is read off the source instead:
/// - CONFIG_FILE_NOT_FOUND / CONFIG_BAD_IF / CONFIG_FATAL (parser.c, vrrp_daemon.c,
///   vrrp_parser.c, vrrp_ipaddress.c): a missing config file, a non-existent interface, a
///   linkbeat / up-down delay on an unknown interface, a static address with no interface;
/// - `vrrp_complete_init` returning false (vrrp.c: chk_min_cfg, vrrp_complete_instance,
///   check_vrid_conflicts), after which the VRRP child exits with KEEPALIVED_EXIT_CONFIG.
///
/// The checker child never refuses: `validate_check_config` (check_data.c) always succeeds.
const FATAL: &[&str] = &[
    "Unable to read configuration file",
    "Unable to find configuration file",
    "Non-existent interface specified in configuration",
    "specified for linkbeat interface",
    "specified for up/down delay",
    "requires either an interface or default interface must exist",
    "the virtual router id must be set",
    "Unknown interface!",
    "No VIP specified; at least one is required",
    "Unicast peers are not supported in strict mode",
    "Unicast instances must have unicast_src_ip or interface",
    "Non link-local address required if interface omitted",
    "duplicate VRID conflict with",
    " both use VRID ",
];

/// Lines that depend on the host keepalived ran on, not on the config, so lvsd (which reads no
/// host state) cannot predict them. The recordings ran in a network namespace holding every
/// interface the configs name (README.md), so there are no interface lines to leave out; what
/// is left is the host's file system.
const HOST_DEPENDENT: &[(&str, &str)] = &[
    // keepalived looks each script's program up on the host (check_script_secure): the line
    // appears when the program exists there and is executable.
    (
        "SECURITY VIOLATION - scripts are being executed but script_security not enabled",
        "whether the scripts' programs exist on the host",
    ),
    // The same look-up, for a script whose program does not exist on the host.
    (
        "since not found/accessible",
        "whether the script's program exists on the host",
    ),
];

/// Lines where lvsd differs from keepalived for want of the lexer / tree changes issue 11
/// points 5 and 6 ask for (parameters and built-ins; `kw {X}` braces and unknown blocks):
/// (file under fixtures/parity, line, issue 11 point, what differs). Both sides' lines at that
/// place are left out; the rest of the file is still checked.
const KNOWN_GAPS: &[(&str, u32, u32, &str)] = &[];

fn parity_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/parity")
}

/// Every `<source>/<name>.conf` in the folder, as a path relative to the repository root (the
/// name keepalived was given, so its `(FILE: Line N)` prefixes match).
fn parity_configs() -> Vec<String> {
    let mut out = Vec::new();
    let sources = std::fs::read_dir(parity_dir()).expect("fixtures/parity is readable");
    for source in sources.flatten() {
        let Ok(files) = std::fs::read_dir(source.path()) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conf") {
                let dir = source.file_name().to_string_lossy().into_owned();
                out.push(format!("fixtures/parity/{dir}/{name}"));
            }
        }
    }
    out.sort();
    out
}

fn read(rel: &str) -> String {
    let path = parity_dir().join(rel.trim_start_matches("fixtures/parity/"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn exit_status(output: &str) -> Option<i32> {
    output
        .lines()
        .find_map(|l| l.strip_prefix("exit status: ")?.trim().parse().ok())
}

fn host_dependent(line: &str) -> bool {
    HOST_DEPENDENT.iter().any(|(text, _)| line.contains(text))
}

fn in_gap(conf: &str, line: u32) -> bool {
    KNOWN_GAPS
        .iter()
        .any(|&(file, at, _, _)| conf.ends_with(file) && at == line)
}

/// One file: lvsd's verdict and predicted keepalived lines against the recording.
fn check(conf: &str) -> Result<(), String> {
    let text = read(conf);
    let output = read(&conf.replace(".conf", ".txt"));
    let status = exit_status(&output).ok_or("the recording has no exit status")?;
    let theirs: Vec<(u32, String)> = read_keepalived_lines(&output, |l| !host_dependent(l))
        .into_iter()
        .filter(|(line, _)| !in_gap(conf, *line))
        .collect();
    // The recording agrees with keepalived's exit codes (main.c config_test_exit): 0 with
    // nothing logged, 6 with a security line, else 4 or 5.
    let logged = output.lines().any(|l| !l.starts_with("exit status:"));
    let security = output.contains("SECURITY VIOLATION");
    let expected_status = match (logged, security) {
        (false, _) => vec![0],
        (true, true) => vec![6],
        (true, false) => vec![4, 5],
    };
    if !expected_status.contains(&status) {
        return Err(format!("exit status {status} does not fit the lines"));
    }

    let p = parse_str(conf, &text);
    let rejected = theirs
        .iter()
        .any(|(_, l)| FATAL.iter().any(|f| l.contains(f)));
    if p.has_errors() != rejected {
        return Err(format!(
            "keepalived {} it, lvsd {}: {:#?}",
            if rejected { "refuses" } else { "runs" },
            if p.has_errors() { "refuses" } else { "runs" },
            rendered(&p)
        ));
    }
    let ours: Vec<(u32, String)> = p
        .keepalived_log()
        .into_iter()
        .filter(|(line, _)| !in_gap(conf, *line))
        .collect();
    if ours != theirs {
        return Err(format!(
            "keepalived logs {theirs:#?}\nlvsd predicts {ours:#?}\nlvsd: {:#?}",
            rendered(&p)
        ));
    }
    Ok(())
}

/// The suite is there: keepalived's own samples and at least four other public projects,
/// 15 files or more, each recorded and listed in SOURCES.md.
#[test]
fn parity_suite_is_complete() {
    let confs = parity_configs();
    assert!(confs.len() >= 15, "{confs:#?}");
    let sources: std::collections::BTreeSet<&str> =
        confs.iter().filter_map(|c| c.split('/').nth(2)).collect();
    assert!(sources.contains("keepalived"), "{sources:?}");
    assert!(sources.len() >= 5, "{sources:?}");
    let listing = read("SOURCES.md");
    for conf in &confs {
        let rel = conf.trim_start_matches("fixtures/parity/");
        assert!(listing.contains(rel), "{rel} is not in SOURCES.md");
        assert!(
            parity_dir().join(rel.replace(".conf", ".txt")).exists(),
            "{rel} has no recording"
        );
    }
}

/// Every file: lvsd refuses exactly what keepalived cannot run, and the lines keepalived logs
/// are the lines lvsd says it logs (same line, same words).
#[test]
fn lvsd_check_agrees_with_keepalived_t() {
    let failures: Vec<String> = parity_configs()
        .iter()
        .filter_map(|conf| check(conf).err().map(|e| format!("{conf}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The known gaps still name lines of files in the suite, so a fixed gap or a renamed file
/// shows here rather than silently hiding lines.
#[test]
fn known_gaps_name_files_of_the_suite() {
    let confs = parity_configs();
    for &(file, line, point, _) in KNOWN_GAPS {
        assert!(point == 5 || point == 6, "{file}: point {point}");
        assert!(confs.iter().any(|c| c.ends_with(file)), "{file}");
        assert!(line > 0 && read(file).lines().count() >= line as usize);
    }
}
