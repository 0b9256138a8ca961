//! `lvsd check` end to end: the built binary on the seed configs and the guide's raw fragments.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Run `lvsd check` from the workspace root (so file names in diagnostics are relative).
fn check(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lvsd"))
        .current_dir(root())
        .arg("check")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run lvsd: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn transcript(args: &[&str]) -> String {
    let (code, stdout, stderr) = check(args);
    format!(
        "$ lvsd check {}\nexit: {code}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        args.join(" ")
    )
}

#[test]
fn seed_master() {
    insta::assert_snapshot!(
        "seed_master",
        transcript(&["-f", "fixtures/seed/keepalived.conf.master"])
    );
}

#[test]
fn seed_backup() {
    insta::assert_snapshot!(
        "seed_backup",
        transcript(&["-f", "fixtures/seed/keepalived.conf.backup"])
    );
}

#[test]
fn seed_master_ipvsadm() {
    insta::assert_snapshot!(
        "seed_master_ipvsadm",
        transcript(&["-f", "fixtures/seed/keepalived.conf.master", "--ipvsadm"])
    );
}

#[test]
fn seed_backup_ipvsadm() {
    insta::assert_snapshot!(
        "seed_backup_ipvsadm",
        transcript(&["-f", "fixtures/seed/keepalived.conf.backup", "--ipvsadm"])
    );
}

/// The seeds warn on exactly the lines keepalived 2.2 `-t` reports an unknown keyword on.
#[test]
fn seed_warnings_name_keepalived_lines() {
    for seed in ["master", "backup"] {
        let (code, _, stderr) = check(&["-f", &format!("fixtures/seed/keepalived.conf.{seed}")]);
        assert_eq!(code, 0);
        let reference =
            std::fs::read_to_string(root().join(format!("fixtures/keepalived-t/seed-{seed}.txt")))
                .unwrap_or_default();
        let mut theirs: Vec<String> = reference
            .lines()
            .filter(|l| l.contains("Unknown keyword"))
            .filter_map(|l| {
                l.split_once("Line ")
                    .and_then(|(_, r)| r.split_once(')'))
                    .map(|(n, _)| n.to_string())
            })
            .collect();
        theirs.sort();
        theirs.dedup();
        let prefix = format!("fixtures/seed/keepalived.conf.{seed}:");
        let mut ours: Vec<String> = stderr
            .lines()
            .filter(|l| l.contains(": warning: "))
            .filter_map(|l| {
                l.strip_prefix(&prefix)
                    .and_then(|r| r.split_once(':'))
                    .map(|(n, _)| n.to_string())
            })
            .collect();
        ours.sort();
        assert_eq!(ours, theirs, "{seed}");
    }
}

#[test]
fn guide_fragments() {
    let mut names: Vec<String> = std::fs::read_dir(root().join("fixtures/guide"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.retain(|n| n.ends_with(".conf"));
    names.sort();
    assert_eq!(names.len(), 8);
    for name in names {
        let file = format!("fixtures/guide/{name}");
        let t = transcript(&["-f", &file, "--ipvsadm"]);
        // A fragment always gets diagnostics and never crashes the checker.
        assert!(
            t.contains(": warning: ") || t.contains(": error: "),
            "{file}"
        );
        assert!(!t.contains("panicked"), "{file}");
        insta::assert_snapshot!(format!("guide_{}", name.trim_end_matches(".conf")), t);
    }
}

#[test]
fn json_model() {
    let (code, stdout, _) = check(&["-f", "fixtures/seed/keepalived.conf.master", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
    assert_eq!(v["global_defs"]["router_id"]["value"], "LVSMaster");
    assert_eq!(
        v["global_defs"]["router_id"]["span"],
        "fixtures/seed/keepalived.conf.master:13:15"
    );
    assert_eq!(v["vrrp_instances"][0]["priority"]["value"], 220);
    assert_eq!(v["vrrp_instances"][0]["advert_int"]["value"], 5);
    assert_eq!(v["virtual_servers"][0]["lvs_method"]["value"], "Dr");
    assert_eq!(
        v["virtual_servers"][0]["real_servers"][1]["checkers"][0]["kind"]["value"],
        "Tcp"
    );
}

#[test]
fn errors_exit_1_and_print_no_rules() {
    let dir = std::env::temp_dir().join(format!("lvsd-check-test-{}", std::process::id()));
    let _ = std::fs::create_dir_all(dir.join("conf.d"));
    let main = dir.join("keepalived.conf");
    std::fs::write(&main, "include conf.d/*.conf\nvirtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo rr\n real_server 10.0.0.2 80 {\n  weight 3\n }\n}\n")
        .unwrap_or_default();
    std::fs::write(
        dir.join("conf.d/a.conf"),
        "vrrp_instance A {\n interface eth0\n priority 254\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n",
    )
    .unwrap_or_default();
    let file = main.to_string_lossy().into_owned();
    let (code, stdout, stderr) = check(&["-f", &file, "--ipvsadm"]);
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    let a = dir.join("conf.d/a.conf").to_string_lossy().into_owned();
    // The main file's diagnostics come first, then the included file's.
    let main_warning = format!(
        "{file}:2:16: warning: Virtual server [10.0.0.1]:tcp:80: no forwarding method set, setting default NAT\n"
    );
    let include_error = format!(
        "{a}:1:15: error: (A) the virtual router id must be set\n    vrrp_instance A {{\n                  ^\n"
    );
    assert!(stderr.starts_with(&main_warning), "{stderr}");
    assert!(stderr.contains(&include_error), "{stderr}");
    assert!(
        stderr.ends_with(&format!("{file}: 1 error(s), 1 warning(s)\n")),
        "{stderr}"
    );
    // Fix the included file: the same command now succeeds and prints the rules.
    std::fs::write(
        dir.join("conf.d/a.conf"),
        "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n priority 254\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n",
    )
    .unwrap_or_default();
    let (code, stdout, _) = check(&["-f", &file, "--ipvsadm"]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 3\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn definitions_and_config_id() {
    let dir = std::env::temp_dir().join(format!("lvsd-check-defs-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let main = dir.join("keepalived.conf");
    std::fs::write(
        &main,
        "$VIP=10.0.0.1\nvirtual_server $VIP 80 {\n protocol TCP\n lb_algo rr\n lb_kind DR\n @lb1 real_server 10.0.0.2 80 {\n @lb1 }\n @^lb1 real_server 10.0.0.3 80 {\n @^lb1 }\n}\n",
    )
    .unwrap_or_default();
    let file = main.to_string_lossy().into_owned();
    let (code, stdout, _) = check(&["-f", &file, "--ipvsadm", "-i", "lb1"]);
    assert_eq!(
        (code, stdout.as_str()),
        (
            0,
            "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 1\n"
        )
    );
    let (code, stdout, _) = check(&["-f", &file, "--ipvsadm", "--config-id", "lb2"]);
    assert_eq!(
        (code, stdout.as_str()),
        (
            0,
            "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.3:80 -g -w 1\n"
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_file() {
    let (code, stdout, stderr) = check(&["-f", "fixtures/no/such.conf"]);
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert!(
        stderr
            .starts_with("fixtures/no/such.conf:0:0: error: cannot read config file: No such file"),
        "{stderr}"
    );
}

/// What keepalived only logs is a warning (exit 0) and the IPVS rules carry keepalived's
/// default: no persistence for a timeout outside [1, 2678400], wlc and NAT for an unknown
/// scheduler and method (fixtures/keepalived-t/persistence-timeout.txt, unknown-sched.txt).
#[test]
fn skipped_values_show_in_ipvsadm() {
    let (code, stdout, stderr) = check(&[
        "-f",
        "fixtures/keepalived-t/persistence-timeout.conf",
        "--ipvsadm",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("persistence-timeout.conf:13:25: warning: number '2678401' outside range [1, 2678400]\n"), "{stderr}");
    assert!(!stdout.contains("2678401"), "{stdout}");
    let persistent: Vec<&str> = stdout.lines().filter(|l| l.contains(" -p ")).collect();
    assert_eq!(persistent, vec!["-A -t 10.0.0.1:82 -s rr -p 2678400"]);
    let (code, stdout, stderr) = check(&[
        "-f",
        "fixtures/keepalived-t/unknown-sched.conf",
        "--ipvsadm",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "unknown-sched.conf:3:13: warning: Invalid lvs_scheduler 'conhash' - ignoring\n"
        ),
        "{stderr}"
    );
    assert_eq!(
        stdout,
        "-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 1\n-A -t 10.0.0.1:81 -s rr\n-a -t 10.0.0.1:81 -r 10.0.0.2:81 -g -w 1\n"
    );
}

/// A DR / TUN real server takes the service's port (each group entry's), 0 under a fwmark
/// (keepalived resets it); a NAT one keeps its own (fixtures/keepalived-t/ports.txt).
#[test]
fn reset_ports_show_in_ipvsadm() {
    let (code, stdout, stderr) = check(&["-f", "fixtures/keepalived-t/ports.conf", "--ipvsadm"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("warning: WARNING - virtual server [198.18.0.10]:tcp:80 and real server [198.18.1.1]:tcp:8080 ports don't match - resetting"),
        "{stderr}"
    );
    let dests: Vec<&str> = stdout.lines().filter(|l| l.starts_with("-a")).collect();
    assert_eq!(
        dests,
        vec![
            "-a -t 198.18.0.10:80 -r 198.18.1.1:80 -g -w 1",
            "-a -t 198.18.0.10:80 -r 198.18.1.2:80 -g -w 1",
            "-a -t 198.18.0.20:80 -r 198.18.1.10:80 -g -w 1",
            "-a -t 198.18.0.20:80 -r 198.18.1.11:80 -g -w 1",
            "-a -t 198.18.0.20:80 -r 198.18.1.12:8080 -m -w 1",
            "-a -t 198.18.0.21:81 -r 198.18.1.10:81 -g -w 1",
            "-a -t 198.18.0.21:81 -r 198.18.1.11:81 -g -w 1",
            "-a -t 198.18.0.21:81 -r 198.18.1.12:8080 -m -w 1",
            "-a -t 198.18.0.22:81 -r 198.18.1.10:81 -g -w 1",
            "-a -t 198.18.0.22:81 -r 198.18.1.11:81 -g -w 1",
            "-a -t 198.18.0.22:81 -r 198.18.1.12:8080 -m -w 1",
            "-a -t 198.18.0.23:80 -r 198.18.1.13:80 -i -w 1 --tun-type ipip",
            "-a -u 198.18.0.11:443 -r 198.18.1.4:443 -i -w 2 --tun-type ipip",
            "-a -u 198.18.0.11:443 -r 198.18.1.5:9000 -m -w 1",
            "-a -f 7 -r 198.18.1.6:0 -g -w 1",
            "-a -f 7 -r 198.18.1.7:8080 -m -w 1",
            "-a -f 8 -r 198.18.1.8:0 -i -w 1 --tun-type ipip",
            "-a -f 9 -r 198.18.1.13:0 -i -w 1 --tun-type ipip",
        ],
        "{stdout}"
    );
}

/// `--strict` turns warnings into a failing verdict; a clean config still passes.
#[test]
fn strict_fails_on_warnings() {
    let file = "fixtures/keepalived-t/unknown-sched.conf";
    let (code, stdout, stderr) = check(&["-f", file, "--ipvsadm", "--strict"]);
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert!(
        stderr.ends_with(&format!(
            "{file}: 0 error(s), 5 warning(s)\n{file}: warnings are errors with --strict\n"
        )),
        "{stderr}"
    );
    let dir = std::env::temp_dir().join(format!("lvsd-check-strict-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let clean = dir.join("clean.conf");
    std::fs::write(
        &clean,
        "virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo rr\n lb_kind DR\n real_server 10.0.0.2 80 {\n }\n}\n",
    )
    .unwrap_or_default();
    let clean = clean.to_string_lossy().into_owned();
    let (code, stdout, _) = check(&["-f", &clean, "--ipvsadm", "--strict"]);
    assert_eq!(
        (code, stdout.as_str()),
        (
            0,
            "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 1\n"
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// A device or a huge file given by mistake is refused in bounded time and memory.
#[test]
fn a_file_too_large_to_be_a_config_is_refused() {
    let (code, stdout, stderr) = check(&["-f", "/dev/zero"]);
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert!(stderr.contains("larger than 16 MiB"), "{stderr}");
}
