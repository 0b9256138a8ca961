//! Scripts keepalived runs, run as it runs them, never waited for by the event loop: the
//! notify scripts of a transition (detached, killed after their `kill_after`), and the
//! `vrrp_script` probes (exit status reported back, a run over its timeout killed and
//! reported as `None`).
//!
//! keepalived executes `argv[0]` directly when it is an executable file, else it hands the
//! command line to `/bin/sh -c` (lib/notify.c `system_call`).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use lvs_core::check::script::Script;
use lvs_core::director::ScriptExec;

use super::security::RunAs;

/// The process for `argv` (split as keepalived splits), or for `command` through the shell,
/// as the user script security chose.
fn command(argv: &[String], command: &str, run_as: RunAs) -> tokio::process::Command {
    let direct = argv.first().is_some_and(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    let mut cmd = if direct {
        let mut c = tokio::process::Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    } else {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(command);
        c
    };
    if run_as != RunAs::default() {
        cmd.uid(run_as.uid).gid(run_as.gid);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Start a notify script; it runs on its own task, reaped when it ends.
pub fn notify(exec: ScriptExec, run_as: RunAs) -> std::io::Result<()> {
    let mut child = command(&exec.argv, &exec.command, run_as).spawn()?;
    tokio::spawn(async move {
        match exec.kill_after {
            Some(limit) => {
                // A timeout drops the wait, and kill_on_drop ends the script.
                let _ = tokio::time::timeout(limit, child.wait()).await;
            }
            None => {
                let _ = child.wait().await;
            }
        }
    });
    Ok(())
}

/// Run a probe's command line; `Some(status)` when it exited within `timeout`, `None` when
/// it had to be killed, was killed by a signal, or could not start.
pub async fn probe(command_line: String, timeout: Duration, run_as: RunAs) -> Option<i32> {
    let argv = Script::parse(&command_line).ok()?.argv;
    let mut child = command(&argv, &command_line, run_as).spawn().ok()?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status.code(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_reports_its_exit_status_or_none_when_killed() {
        let rt = super::super::test_runtime();
        assert_eq!(
            rt.block_on(probe(
                "/bin/true".into(),
                Duration::from_secs(5),
                RunAs::default()
            )),
            Some(0)
        );
        assert_eq!(
            rt.block_on(probe(
                "/bin/false".into(),
                Duration::from_secs(5),
                RunAs::default()
            )),
            Some(1)
        );
        // Not an executable: through the shell, as keepalived's system() fallback.
        assert_eq!(
            rt.block_on(probe(
                "exit 3".into(),
                Duration::from_secs(5),
                RunAs::default()
            )),
            Some(3)
        );
        let started = std::time::Instant::now();
        assert_eq!(
            rt.block_on(probe(
                "/bin/sleep 5".into(),
                Duration::from_millis(100),
                RunAs::default()
            )),
            None
        );
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn a_notify_script_gets_keepalived_s_arguments() {
        let dir = std::env::temp_dir().join(format!("lvsd-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("args");
        let script = dir.join("notify.sh");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$@\" > {}\n", out.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let argv = vec![
            script.display().to_string(),
            "INSTANCE".into(),
            "VI_1".into(),
            "MASTER".into(),
            "150".into(),
        ];
        let rt = super::super::test_runtime();
        rt.block_on(async {
            notify(
                ScriptExec {
                    command: script.display().to_string(),
                    argv,
                    kill_after: None,
                },
                RunAs::default(),
            )
            .unwrap();
            for _ in 0..100 {
                if std::fs::read_to_string(&out).is_ok_and(|s| s.ends_with('\n')) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "INSTANCE VI_1 MASTER 150\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
