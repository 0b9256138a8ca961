//! keepalived's script security, applied to the director's configuration before it runs:
//! who scripts run as (`script_user USER [GROUP]`, else `keepalived_script` when that user
//! exists, else root), the warning when `enable_script_security` is off, and with it on,
//! root-run scripts whose path a non-root user could change disabled, each with the line
//! keepalived 2.2.7 logs (held to captures of it in namespaces).
//!
//! The file-system checks are notify.c's `check_security`: every component of the path,
//! `/` first, must be owned by root, and neither a regular file nor a directory without the
//! sticky bit may be writable by others or by a non-root group.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use lvs_core::config::model::Config;
use lvs_core::director::{DirectorConfig, LogSource};
use lvs_core::vrrp::state::NotifyScripts;

/// The uid and gid scripts run with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// keepalived's default script user.
const DEFAULT_USER: &str = "keepalived_script";

/// Why a path is not safe to run as root, if it is not.
fn insecure(path: &str) -> bool {
    let mut prefix = String::new();
    let parts: Vec<&str> = path.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            prefix.push('/');
        } else {
            if !prefix.ends_with('/') {
                prefix.push('/');
            }
            prefix.push_str(part);
        }
        let last = i + 1 == parts.len();
        let Ok(m) = std::fs::symlink_metadata(Path::new(&prefix)) else {
            return true;
        };
        let ft = m.file_type();
        if (!last && !ft.is_dir()) || (last && !ft.is_file() && !ft.is_symlink()) {
            return true;
        }
        let mode = m.mode();
        let sticky = mode & 0o1000 != 0;
        let checked = (ft.is_dir() && !sticky) || ft.is_file();
        let writable = (m.gid() != 0 && mode & 0o020 != 0) || mode & 0o002 != 0;
        if m.uid() != 0 || (checked && writable) {
            return true;
        }
    }
    false
}

/// A user (and optional group) by name.
fn resolve(user: &str, group: Option<&str>) -> Option<RunAs> {
    let u = nix::unistd::User::from_name(user).ok().flatten()?;
    let gid = match group {
        Some(g) => nix::unistd::Group::from_name(g)
            .ok()
            .flatten()?
            .gid
            .as_raw(),
        None => u.gid.as_raw(),
    };
    Some(RunAs {
        uid: u.uid.as_raw(),
        gid,
    })
}

/// The program a command line runs, as keepalived resolves it (its real path).
fn program(command: &str) -> Option<String> {
    let argv = lvs_core::check::script::Script::parse(command).ok()?.argv;
    let p = argv.first()?;
    if !p.contains('/') {
        return None;
    }
    Some(
        std::fs::canonicalize(p)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.clone()),
    )
}

/// Apply script security to `dc` (scripts that may not run are removed from it, with the
/// lines keepalived logs added to its start-up log); who the remaining scripts run as.
pub fn apply(cfg: &Config, dc: &mut DirectorConfig) -> RunAs {
    let mut log = Vec::new();
    let run_as = decide(cfg, dc, &mut log, resolve, insecure);
    dc.config_log
        .extend(log.into_iter().map(|l| (LogSource::Vrrp, l)));
    run_as
}

/// Every notify script of the instances and sync groups, as mutable slots, in file order.
fn notify_slots(dc: &mut DirectorConfig) -> Vec<&mut Option<String>> {
    fn slots(n: &mut NotifyScripts) -> [&mut Option<String>; 5] {
        [
            &mut n.master,
            &mut n.backup,
            &mut n.fault,
            &mut n.stop,
            &mut n.generic,
        ]
    }
    let groups = dc.vrrp.sync_groups.iter_mut().map(|g| &mut g.notify);
    let instances = dc.vrrp.instances.iter_mut().map(|i| &mut i.notify);
    groups.chain(instances).flat_map(slots).collect()
}

fn drop_script(dc: &mut DirectorConfig, name: &str) {
    dc.scripts.remove(name);
    dc.vrrp.scripts.retain(|s| s.name != name);
    for i in &mut dc.vrrp.instances {
        i.track_scripts.retain(|t| t.script != name);
    }
}

fn decide(
    cfg: &Config,
    dc: &mut DirectorConfig,
    log: &mut Vec<String>,
    resolve: impl Fn(&str, Option<&str>) -> Option<RunAs>,
    insecure: impl Fn(&str) -> bool,
) -> RunAs {
    let scripts: Vec<(String, String)> = dc
        .scripts
        .iter()
        .filter(|(_, c)| !c.command.is_empty())
        .map(|(n, c)| (n.clone(), c.command.clone()))
        .collect();
    let has_notify = notify_slots(dc).iter().any(|s| s.is_some());
    if scripts.is_empty() && !has_notify {
        return RunAs::default();
    }
    let secure = cfg.global_defs.enable_script_security.is_some();
    let configured = cfg.global_defs.script_user.as_ref().map(|u| {
        let words: Vec<String> = u.value.split_whitespace().map(str::to_string).collect();
        words
    });
    let (user, group) = match &configured {
        Some(w) => (w.first().cloned().unwrap_or_default(), w.get(1).cloned()),
        None => (DEFAULT_USER.to_string(), None),
    };
    let run_as = match resolve(&user, group.as_deref()) {
        Some(r) => r,
        None => {
            log.push(format!("Script user '{user}' does not exist"));
            if secure || configured.is_some() {
                remove_all(cfg, dc, log, &user);
                return RunAs::default();
            }
            RunAs::default()
        }
    };
    if !secure {
        log.push(
            "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
                .to_string(),
        );
    }
    if run_as.uid != 0 && run_as.gid != 0 {
        return run_as;
    }
    let suffix = if secure { " - disabling" } else { "" };
    // vrrp_scripts in file order, then the notify scripts.
    let ordered: Vec<(String, String)> = cfg
        .vrrp_scripts
        .iter()
        .filter_map(|s| scripts.iter().find(|(n, _)| *n == s.name.value).cloned())
        .collect();
    for (name, command) in ordered {
        let Some(path) = program(&command) else {
            continue;
        };
        if insecure(&path) {
            log.push(format!(
                "Unsafe permissions found for script '{path}'{suffix}."
            ));
            if secure {
                log.push(format!("Disabling track script {name} due to insecure"));
                drop_script(dc, &name);
            }
        }
    }
    for slot in notify_slots(dc) {
        let Some(path) = slot.as_deref().and_then(program) else {
            continue;
        };
        if insecure(&path) {
            log.push(format!(
                "Unsafe permissions found for script '{path}'{suffix}."
            ));
            if secure {
                *slot = None;
            }
        }
    }
    run_as
}

/// No user to run scripts as: every script goes, as keepalived removes them.
fn remove_all(cfg: &Config, dc: &mut DirectorConfig, log: &mut Vec<String>, user: &str) {
    let mut first = true;
    for s in &cfg.vrrp_scripts {
        let Some(script) = &s.script else { continue };
        let at = format!("({}: Line {})", script.span.file, script.span.line);
        if first {
            log.push(format!("{at} Unable to set default user {user} for script"));
            first = false;
        }
        log.push(format!(
            "{at} Unable to set default user for vrrp script {} - removing",
            s.name.value
        ));
        drop_script(dc, &s.name.value);
        for i in &cfg.vrrp_instances {
            for t in i
                .track_script
                .iter()
                .filter(|t| t.name.value == s.name.value)
            {
                log.push(format!(
                    "({}: Line {}) ({}) track script {} not found, ignoring...",
                    t.name.span.file, t.name.span.line, i.name.value, t.name.value
                ));
            }
        }
    }
    for slot in notify_slots(dc) {
        if let Some(command) = slot.take() {
            let argv0 = lvs_core::check::script::Script::parse(&command)
                .map(|s| s.program().to_string())
                .unwrap_or(command);
            log.push(format!(
                "Failed to set default user for notify script {argv0} - ignoring"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvs_core::director::{HostRoute, Iface, NodeEnv};

    const CONF: &str = "global_defs {\n    router_id T\nGLOBAL}\nvrrp_script chk {\n    script \"/tmp/kx/s/n.sh check\"\n    interval 1\n}\nvrrp_instance VI_1 {\n    state MASTER\n    interface veth0\n    virtual_router_id 51\n    priority 150\n    advert_int 1\n    track_script {\n        chk\n    }\n    notify_master \"/tmp/kx/s/n.sh master\"\n    virtual_ipaddress {\n        198.18.0.100/24\n    }\n}\n";

    fn setup(global: &str) -> (Config, DirectorConfig) {
        let text = CONF.replace("GLOBAL", global);
        let parsed =
            lvs_core::config::parse_text("/tmp/kx/s/t.conf", &text, &lvs_core::config::NoFiles);
        let cfg = parsed.config.expect("the config parses");
        let env = NodeEnv {
            ifaces: vec![Iface {
                name: "veth0".into(),
                mac: [2, 0, 0, 0, 0, 1],
                addrs: vec!["198.18.0.1".parse().unwrap()],
            }],
            routes: Vec::<HostRoute>::new(),
        };
        let dc = DirectorConfig::from_keepalived(&cfg, &env).unwrap();
        (cfg, dc)
    }

    fn run(
        global: &str,
        users: &[&str],
        unsafe_paths: bool,
    ) -> (Vec<String>, DirectorConfig, RunAs) {
        let (cfg, mut dc) = setup(global);
        let mut log = Vec::new();
        let resolve = |u: &str, _g: Option<&str>| {
            users.contains(&u).then(|| RunAs {
                uid: if u == "root" { 0 } else { 65534 },
                gid: if u == "root" { 0 } else { 65534 },
            })
        };
        let r = decide(&cfg, &mut dc, &mut log, resolve, |_| unsafe_paths);
        (log, dc, r)
    }

    // keepalived 2.2.7 without keepalived_script and without enable_script_security:
    // the scripts run as root, with a warning.
    #[test]
    fn without_script_security_scripts_run_as_root_with_a_warning() {
        let (log, dc, r) = run("", &["root"], false);
        assert_eq!(
            log,
            [
                "Script user 'keepalived_script' does not exist",
                "SECURITY VIOLATION - scripts are being executed but script_security not enabled.",
            ]
        );
        assert_eq!(r, RunAs { uid: 0, gid: 0 });
        assert!(dc.scripts.contains_key("chk"));
        assert!(dc.vrrp.instances[0].notify.master.is_some());
    }

    // ... and with it on: no user to run them as, so they all go.
    #[test]
    fn script_security_without_a_user_removes_every_script() {
        let (log, dc, _) = run("    enable_script_security\n", &["root"], false);
        assert_eq!(log, [
            "Script user 'keepalived_script' does not exist",
            "(/tmp/kx/s/t.conf: Line 6) Unable to set default user keepalived_script for script",
            "(/tmp/kx/s/t.conf: Line 6) Unable to set default user for vrrp script chk - removing",
            "(/tmp/kx/s/t.conf: Line 16) (VI_1) track script chk not found, ignoring...",
            "Failed to set default user for notify script /tmp/kx/s/n.sh - ignoring",
        ]);
        assert!(dc.scripts.is_empty() && dc.vrrp.instances[0].track_scripts.is_empty());
        assert!(dc.vrrp.instances[0].notify.master.is_none());
    }

    // script_user root and a path others can write: disabled, as keepalived logs it.
    #[test]
    fn root_run_scripts_on_unsafe_paths_are_disabled() {
        let (log, dc, _) = run(
            "    enable_script_security\n    script_user root\n",
            &["root"],
            true,
        );
        let path = program("/tmp/kx/s/n.sh").unwrap();
        assert_eq!(
            log,
            [
                format!("Unsafe permissions found for script '{path}' - disabling."),
                "Disabling track script chk due to insecure".to_string(),
                format!("Unsafe permissions found for script '{path}' - disabling."),
            ]
        );
        assert!(dc.scripts.is_empty() && dc.vrrp.instances[0].notify.master.is_none());
    }

    // A non-root script user: the path is not checked.
    #[test]
    fn a_non_root_script_user_runs_them_unchecked() {
        let (log, dc, r) = run(
            "    enable_script_security\n    script_user nobody\n",
            &["root", "nobody"],
            true,
        );
        assert!(log.is_empty(), "{log:?}");
        assert_eq!(r.uid, 65534);
        assert!(dc.scripts.contains_key("chk"));
    }

    #[test]
    fn the_path_check_follows_check_security() {
        let dir = std::env::temp_dir().join(format!("lvsd-sec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s.sh");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        set(&dir, 0o755);
        set(&file, 0o755);
        let f = file.display().to_string();
        assert!(!insecure(&f), "root-owned 755 under /tmp (sticky) is safe");
        set(&file, 0o757);
        assert!(insecure(&f), "world-writable file");
        set(&file, 0o755);
        set(&dir, 0o777);
        assert!(
            insecure(&f),
            "world-writable directory without the sticky bit"
        );
        set(&dir, 0o1777);
        assert!(!insecure(&f), "sticky directory");
        assert!(insecure(&dir.join("missing").display().to_string()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
