//! Network namespaces, veth pairs, bridges and processes inside them, through iproute2
//! (`ip netns add` makes the `/run/netns/NAME` handle that `ip -n`, `ip netns exec` and
//! `setns` all use, as keepalived's own test scripts do).
//!
//! Every namespace is named `lvsd-PID-N-TAG`: PID the creating process, so a [`sweep`]
//! removes only what a process no longer running left, never a concurrent run's. Nothing
//! here touches the host's own interfaces or routes: links are made between namespaces
//! created here, and no namespace gets a route out.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The prefix of every namespace this crate makes (and the only ones [`sweep`] removes).
pub const PREFIX: &str = "lvsd-";

/// Why a namespace operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NsError {
    /// A command could not be started.
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// Why.
        source: std::io::Error,
    },
    /// A command exited with an error.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Entering the namespace failed.
    #[error("cannot enter namespace {name}: {why}")]
    Enter {
        /// The namespace.
        name: String,
        /// Why.
        why: String,
    },
    /// An interface name longer than the kernel's IFNAMSIZ - 1.
    #[error("interface name `{0}` is longer than 15 bytes")]
    IfName(String),
}

/// Whether this process can make namespaces here (root and iproute2), or why not: tests
/// that need them print the reason and skip.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root: network namespaces need CAP_SYS_ADMIN".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("iproute2's `ip` is not installed".into()),
    }
}

fn run(cmd: &mut Command) -> Result<String, NsError> {
    let line = format!("{cmd:?}").replace('"', "");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| NsError::Spawn {
            cmd: line.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(NsError::Failed {
            cmd: line,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn check_ifname(name: &str) -> Result<(), NsError> {
    if name.len() > 15 || name.is_empty() {
        return Err(NsError::IfName(name.to_string()));
    }
    Ok(())
}

/// A network namespace made here, deleted when dropped (its processes first, by pid).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Netns {
    /// A new namespace `lvsd-PID-N-TAG` with its loopback up.
    pub fn new(tag: &str) -> Result<Netns, NsError> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{}-{n}-{tag}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (as `ip netns list` shows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS...`: its stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String, NsError> {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// A command that runs `program` inside this namespace (`ip netns exec`, which enters it
    /// and execs the program: the child's pid is the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Start `cmd` (made by [`Netns::command`]); the guard kills it when dropped.
    pub fn spawn(&self, cmd: &mut Command) -> Result<Proc, NsError> {
        let line = format!("{cmd:?}").replace('"', "");
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .map_err(|source| NsError::Spawn { cmd: line, source })?;
        Ok(Proc { child })
    }

    /// Run `f` on a new OS thread that has entered this namespace (`setns` acts on the
    /// calling thread only, so sockets `f` opens live in the namespace).
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<NsThread<T>, NsError> {
        let enter_err = |why: String| NsError::Enter {
            name: self.name.clone(),
            why,
        };
        let file = File::open(PathBuf::from("/run/netns").join(&self.name))
            .map_err(|e| enter_err(e.to_string()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let entered = nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET);
            let ok = entered.is_ok();
            let _ = tx.send(entered.map_err(|e| e.to_string()));
            // Never run `f` outside the namespace.
            ok.then(f)
        });
        match rx.recv() {
            Ok(Ok(())) => Ok(NsThread(handle)),
            Ok(Err(why)) => Err(enter_err(why)),
            Err(_) => Err(enter_err("the thread ended before entering".into())),
        }
    }
}

/// A thread running inside a namespace ([`Netns::run`]).
#[derive(Debug)]
pub struct NsThread<T>(std::thread::JoinHandle<Option<T>>);

impl<T> NsThread<T> {
    /// Wait for it: what `f` returned, or the panic it ended with.
    pub fn join(self) -> std::thread::Result<T> {
        // Only a thread that entered the namespace is handed out, and it always runs `f`.
        self.0
            .join()
            .map(|r| r.expect("an NsThread entered its namespace"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes still inside keep nothing alive once the name is gone, but a test's own
        // ones are stopped by their guards first; whatever else runs there is ended by pid.
        if let Ok(pids) = run(Command::new("ip").args(["netns", "pids", &self.name])) {
            for pid in pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = run(Command::new("ip").args(["netns", "del", &self.name]));
    }
}

/// A process started in a namespace, killed (SIGKILL, by its pid) and reaped when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Child,
}

impl Proc {
    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send it `signal`.
    pub fn signal(&self, signal: Signal) -> nix::Result<()> {
        kill(Pid::from_raw(self.child.id() as i32), signal)
    }

    /// Wait up to `within` for it to exit: its status, or `None` if it is still running.
    pub fn wait_for(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.signal(Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// A veth pair: `a_if` in `a`, `b_if` in `b`, both up (removed with either namespace).
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<(), NsError> {
    check_ifname(a_if)?;
    check_ifname(b_if)?;
    a.ip(&[
        "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.name,
    ])?;
    a.ip(&["link", "set", a_if, "up"])?;
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}

/// A bridge `name` in `ns`, up, with these of its interfaces as ports (a segment: one
/// namespace holding the bridge every host's veth peer joins).
pub fn bridge(ns: &Netns, name: &str, ports: &[&str]) -> Result<(), NsError> {
    check_ifname(name)?;
    ns.ip(&["link", "add", name, "type", "bridge"])?;
    ns.ip(&["link", "set", name, "up"])?;
    for port in ports {
        ns.ip(&["link", "set", port, "master", name])?;
    }
    Ok(())
}

/// Remove the namespaces named `lvsd-PID-...` whose creating process is no longer running
/// (what a crashed or killed run left); the names removed.
pub fn sweep() -> Result<Vec<String>, NsError> {
    let list = run(Command::new("ip").args(["netns", "list"]))?;
    let mut removed = Vec::new();
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // kill(pid, 0): ESRCH means no such process; anything else (alive, or not ours to
        // signal) leaves the namespace alone.
        if kill(Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH) {
            if let Ok(pids) = run(Command::new("ip").args(["netns", "pids", name])) {
                for p in pids
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                }
            }
            run(Command::new("ip").args(["netns", "del", name]))?;
            removed.push(name.to_string());
        }
    }
    Ok(removed)
}
