//! Namespaces, links and processes made and removed for real (root and iproute2; skipped
//! with the reason otherwise). Addresses in 198.18.0.0/15, nothing attached to the host.

use std::net::UdpSocket;
use std::time::Duration;

use lvs_netns::ns::{self, Netns};

fn skip() -> bool {
    match ns::unavailable() {
        Some(why) => {
            eprintln!("skipped: {why}");
            true
        }
        None => false,
    }
}

fn listed() -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// Two hosts on one segment (a namespace holding a bridge): a datagram crosses it between
// threads that entered each host, no host has a route out, and everything goes with the
// guards.
#[test]
fn hosts_on_a_bridged_segment_reach_each_other_and_vanish_with_their_guards() {
    if skip() {
        return;
    }
    let names;
    {
        let seg = Netns::new("seg").unwrap();
        let a = Netns::new("a").unwrap();
        let b = Netns::new("b").unwrap();
        names = [
            seg.name().to_string(),
            a.name().to_string(),
            b.name().to_string(),
        ];
        ns::veth(&a, "eth0", &seg, "a0").unwrap();
        ns::veth(&b, "eth0", &seg, "b0").unwrap();
        ns::bridge(&seg, "br0", &["a0", "b0"]).unwrap();
        a.ip(&["addr", "add", "198.18.0.1/24", "dev", "eth0"])
            .unwrap();
        b.ip(&["addr", "add", "198.18.0.2/24", "dev", "eth0"])
            .unwrap();
        for h in [&a, &b] {
            assert_eq!(h.ip(&["route", "show", "default"]).unwrap(), "");
        }
        let listener = b
            .run(|| {
                let s = UdpSocket::bind("198.18.0.2:5000").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = [0u8; 64];
                let (n, from) = s.recv_from(&mut buf).unwrap();
                s.send_to(b"ack", from).unwrap();
                (buf[..n].to_vec(), from)
            })
            .unwrap();
        // The listener may not be bound yet: send until it answers, 50 tries at most.
        let sender = a
            .run(|| {
                let s = UdpSocket::bind("198.18.0.1:0").unwrap();
                s.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let mut buf = [0u8; 8];
                (0..50).any(|_| {
                    let _ = s.send_to(b"hello", "198.18.0.2:5000");
                    matches!(s.recv_from(&mut buf), Ok((3, _)) if &buf[..3] == b"ack")
                })
            })
            .unwrap();
        assert!(sender.join().unwrap(), "no answer across the bridge");
        let (got, from) = listener.join().unwrap();
        assert_eq!(got, b"hello");
        assert_eq!(from.ip().to_string(), "198.18.0.1");
        // The addresses are the namespaces' own: the host's namespace holds neither.
        let root = std::process::Command::new("ip")
            .args(["-o", "addr"])
            .output()
            .unwrap();
        let root = String::from_utf8_lossy(&root.stdout);
        assert!(
            !root.contains("198.18.0.1/") && !root.contains("198.18.0.2/"),
            "{root}"
        );
    }
    let now = listed();
    for n in &names {
        assert!(!now.contains(n.as_str()), "{n} left behind:\n{now}");
    }
}

// A process started inside is in the namespace (its `ip addr` shows the namespace's
// interfaces) and is killed with its guard; a panic still removes the namespace.
#[test]
fn processes_and_namespaces_go_on_panic_too() {
    if skip() {
        return;
    }
    let (name, pid) = {
        let h = Netns::new("p").unwrap();
        let out = h.command("ip").args(["-o", "link"]).output().unwrap();
        let links = String::from_utf8_lossy(&out.stdout);
        assert!(links.contains("lo:") && !links.contains("eth"), "{links}");
        let mut p = h.spawn(h.command("sleep").arg("30")).unwrap();
        assert!(p.wait_for(Duration::from_millis(100)).is_none());
        (h.name().to_string(), p.pid())
    };
    assert!(!listed().contains(&name));
    let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None);
    assert_eq!(
        gone,
        Err(nix::errno::Errno::ESRCH),
        "sleep {pid} still runs"
    );

    let made = std::sync::Mutex::new(String::new());
    let r = std::panic::catch_unwind(|| {
        let h = Netns::new("panic").unwrap();
        *made.lock().unwrap() = h.name().to_string();
        panic!("a test failing half-way");
    });
    assert!(r.is_err());
    let made = made.into_inner().unwrap();
    assert!(!made.is_empty() && !listed().contains(&made));
}

// What a run that no longer exists left is swept; a live run's namespace is not.
#[test]
fn the_sweep_removes_only_what_dead_runs_left() {
    if skip() {
        return;
    }
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let stale = format!("{}{dead_pid}-0-stale", ns::PREFIX);
    let made = std::process::Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .unwrap();
    assert!(made.success());
    let live = Netns::new("live").unwrap();
    let removed = ns::sweep().unwrap();
    assert!(removed.contains(&stale), "{removed:?}");
    assert!(!removed.iter().any(|n| n == live.name()));
    let now = listed();
    assert!(!now.contains(&stale) && now.contains(live.name()), "{now}");
}
