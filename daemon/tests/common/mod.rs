//! Namespaces for `lvsd run` tests: routers and a client on one bridged segment, daemons
//! started in them with their logs in files, and waits on what the kernel shows.
//! Addresses: 198.18.0.0/24 and fdc6:1218::/64 (a ULA prefix), nothing attached to the
//! host, no route out; everything removed by the guards, also on panic.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lvs_netns::ns::{self, Netns, Proc};

/// The reason to skip, printed; `None` when namespaces can be made here.
pub fn skip() -> bool {
    match ns::unavailable() {
        Some(why) => {
            eprintln!("skipped: {why}");
            true
        }
        None => false,
    }
}

/// Whether `program` is installed; prints why the test skips when not.
pub fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("skipped: {program} is not installed");
    }
    found
}

/// A segment (a bridge in its own namespace) with routers `r1..rN` and a client `c`.
pub struct Lab {
    pub routers: Vec<Netns>,
    pub client: Netns,
    pub dir: PathBuf,
    // Dropped last: the segment holds the bridge every veth peer joins.
    _seg: Netns,
}

/// Router `i`'s (0-based) IPv4 address.
pub fn router_ip(i: usize) -> String {
    format!("198.18.0.{}", i + 1)
}

/// Router `i`'s global IPv6 address.
pub fn router_ip6(i: usize) -> String {
    format!("fdc6:1218::{}", i + 1)
}

/// How late the wire may show a takeover past the protocol's own time: the issue's 100 ms.
pub const SLACK: f64 = 0.1;

/// Microseconds as seconds.
pub fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

/// The client's IPv4 address.
pub const CLIENT_IP: &str = "198.18.0.50";

impl Lab {
    /// `n` routers and a client, each with `eth0` on the segment.
    pub fn new(tag: &str, n: usize) -> Lab {
        let seg = Netns::new(&format!("{tag}-s")).unwrap();
        let mut ports = Vec::new();
        let mut routers = Vec::new();
        for i in 0..n {
            let r = Netns::new(&format!("{tag}-r{}", i + 1)).unwrap();
            let port = format!("p{}", i + 1);
            ns::veth(&r, "eth0", &seg, &port).unwrap();
            r.ip(&[
                "addr",
                "add",
                &format!("{}/24", router_ip(i)),
                "dev",
                "eth0",
            ])
            .unwrap();
            r.ip(&[
                "addr",
                "add",
                &format!("{}/64", router_ip6(i)),
                "dev",
                "eth0",
                "nodad",
            ])
            .unwrap();
            ports.push(port);
            routers.push(r);
        }
        let client = Netns::new(&format!("{tag}-c")).unwrap();
        ns::veth(&client, "eth0", &seg, "pc").unwrap();
        client
            .ip(&["addr", "add", &format!("{CLIENT_IP}/24"), "dev", "eth0"])
            .unwrap();
        client
            .ip(&["addr", "add", "fdc6:1218::50/64", "dev", "eth0", "nodad"])
            .unwrap();
        ports.push("pc".into());
        let refs: Vec<&str> = ports.iter().map(String::as_str).collect();
        ns::bridge(&seg, "br0", &refs).unwrap();
        let dir = std::env::temp_dir().join(format!("lvsd-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Link-local addresses finish DAD before anyone speaks VRRP over IPv6.
        for ns in routers.iter().chain([&client]) {
            wait_until(Duration::from_secs(5), || {
                !ns.ip(&["-6", "addr", "show", "tentative"])
                    .unwrap()
                    .contains("inet6")
            });
        }
        Lab {
            routers,
            client,
            dir,
            _seg: seg,
        }
    }

    /// Router `i`'s MAC address on eth0.
    pub fn mac(&self, i: usize) -> String {
        let out = self.routers[i].ip(&["-o", "link", "show", "eth0"]).unwrap();
        let at = out.find("link/ether ").unwrap() + "link/ether ".len();
        out[at..at + 17].to_string()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A daemon in a namespace, its console log in a file.
pub struct Daemon {
    pub proc: Proc,
    pub log: PathBuf,
    pub conf: PathBuf,
    pub pid_file: PathBuf,
    /// lvsd's control socket (none for keepalived).
    pub control: PathBuf,
}

/// Start `lvsd run -n -l -D -P` (and `extra` flags) with `conf` as router `name`.
pub fn lvsd(lab: &Lab, i: usize, name: &str, conf: &str, extra: &[&str]) -> Daemon {
    let conf_path = lab.dir.join(format!("{name}.conf"));
    if !conf_path.exists() || std::fs::read_to_string(&conf_path).unwrap() != conf {
        std::fs::write(&conf_path, conf).unwrap();
    }
    let control = lab.dir.join(format!("{name}.sock"));
    let mut flags: Vec<&str> = vec!["--control", control.to_str().unwrap()];
    flags.extend(extra);
    start(
        &lab.routers[i],
        env!("CARGO_BIN_EXE_lvsd"),
        &["run"],
        &lab.dir,
        name,
        &conf_path,
        &flags,
    )
}

/// Start Debian's keepalived with the same flags.
pub fn keepalived(lab: &Lab, i: usize, name: &str, conf: &str) -> Daemon {
    let conf_path = lab.dir.join(format!("{name}.conf"));
    std::fs::write(&conf_path, conf).unwrap();
    start(
        &lab.routers[i],
        "keepalived",
        &[],
        &lab.dir,
        name,
        &conf_path,
        &[],
    )
}

fn start(
    ns: &Netns,
    program: &str,
    sub: &[&str],
    dir: &Path,
    name: &str,
    conf: &Path,
    extra: &[&str],
) -> Daemon {
    let log = dir.join(format!("{name}.log"));
    let pid_file = dir.join(format!("{name}.pid"));
    let vrrp_pid = dir.join(format!("{name}_vrrp.pid"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let mut cmd = ns.command(program);
    cmd.args(sub)
        .args(["-n", "-l", "-D", "-P", "-f"])
        .arg(conf)
        .arg("-p")
        .arg(&pid_file)
        .arg("-r")
        .arg(&vrrp_pid)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(file);
    let proc = ns.spawn(&mut cmd).unwrap();
    Daemon {
        proc,
        log,
        conf: conf.to_path_buf(),
        pid_file,
        control: dir.join(format!("{name}.sock")),
    }
}

impl Daemon {
    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many of its log lines contain `text`.
    pub fn count(&self, text: &str) -> usize {
        self.log().lines().filter(|l| l.contains(text)).count()
    }

    /// Wait until `n` of its log lines contain `text`.
    pub fn wait_for_lines(&self, text: &str, n: usize, within: Duration) -> bool {
        wait_until(within, || self.count(text) >= n)
    }
}

/// Poll `f` every 10 ms until it holds or `within` passes; whether it held.
pub fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `ns` has `addr` on any interface.
pub fn holds(ns: &Netns, addr: &str) -> bool {
    ns.ip(&["-o", "addr", "show"])
        .unwrap()
        .split_whitespace()
        .any(|w| w.split('/').next() == Some(addr))
}

/// The time until `ns` holds `addr` (polled every 10 ms), or `None` after `within`.
pub fn time_until_held(ns: &Netns, addr: &str, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    wait_until(within, || holds(ns, addr)).then(|| start.elapsed())
}

/// The MAC `ns` has for `addr` in its neighbour table, if any.
pub fn neighbour(ns: &Netns, addr: &str) -> Option<String> {
    let out = ns.ip(&["neigh", "show", addr]).unwrap();
    let words: Vec<&str> = out.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "lladdr")?;
    words.get(at + 1).map(|s| s.to_string())
}

/// One VRRP instance's config for these tests.
pub struct Instance<'a> {
    pub state: &'a str,
    pub priority: u8,
    pub version: u8,
    pub advert_int: &'a str,
    pub vip: &'a str,
    pub extra: &'a str,
}

impl Instance<'_> {
    /// The keepalived.conf.
    pub fn conf(&self) -> String {
        let auth = if self.version == 2 {
            "    authentication {\n        auth_type PASS\n        auth_pass secret\n    }\n"
        } else {
            ""
        };
        format!(
            "global_defs {{\n    router_id lvsd_test\n}}\nvrrp_instance VI_1 {{\n    state {}\n    interface eth0\n    virtual_router_id 51\n    priority {}\n    version {}\n    advert_int {}\n{auth}{}    virtual_ipaddress {{\n        {}\n    }}\n}}\n",
            self.state, self.priority, self.version, self.advert_int, self.extra, self.vip
        )
    }
}

/// tcpdump in a namespace, its text (`-tt -e -nn -l`) in a file.
pub struct Capture {
    _proc: Proc,
    out: PathBuf,
}

/// A new master's first advert on the wire after the old one's last.
#[derive(Clone, Copy, Debug)]
pub struct Takeover {
    /// Seconds between the two.
    pub gap: f64,
    /// Capture time of the new master's first advert.
    pub at: f64,
}

/// One VRRP advert seen on the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    /// Capture time, seconds.
    pub t: f64,
    /// Source MAC.
    pub mac: String,
    /// The advert's priority (`None`: not an advert, e.g. a gratuitous ARP / NA).
    pub prio: Option<u8>,
}

/// Capture `filter` on `ns`'s eth0, with `-xx` hex too when `hex`; returns once tcpdump
/// listens.
pub fn capture(ns: &Netns, dir: &Path, name: &str, filter: &str, hex: bool) -> Capture {
    let out = dir.join(format!("{name}.pcap.txt"));
    let err = dir.join(format!("{name}.tcpdump.err"));
    let mut cmd = ns.command("tcpdump");
    cmd.args(["-i", "eth0", "--immediate-mode", "-tt", "-e", "-nn", "-l"]);
    if hex {
        cmd.arg("-xx");
    }
    cmd.arg(filter)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let proc = ns.spawn(&mut cmd).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(&err)
            .unwrap_or_default()
            .contains("listening on")),
        "tcpdump did not start"
    );
    Capture { _proc: proc, out }
}

impl Capture {
    /// The text so far.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Adverts (and, with `prio: None`, gratuitous ARPs / NAs) in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.text()
            .lines()
            .filter(|l| !l.starts_with(char::is_whitespace))
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let t: f64 = w.next()?.parse().ok()?;
                let mac = w.next()?.to_string();
                let prio = l
                    .split_once(", prio ")
                    .and_then(|(_, r)| r.split(',').next())
                    .and_then(|p| p.trim().parse().ok());
                let announce = l.contains("who-has") || l.contains("neighbor advertisement");
                (prio.is_some() || announce).then_some(Seen { t, mac, prio })
            })
            .collect()
    }

    /// The first advert above priority 0 from `mac` after `t`.
    fn first_advert_after(seen: &[Seen], mac: &str, t: f64) -> Option<f64> {
        seen.iter()
            .find(|s| s.t > t && s.mac == mac && s.prio.is_some_and(|p| p > 0))
            .map(|s| s.t)
    }

    /// `from`'s last advert that `is_it` picks, and `to`'s first advert after it.
    fn takeover(&self, from: &str, to: &str, is_it: impl Fn(u8) -> bool) -> Takeover {
        let seen = self.seen();
        let since = seen
            .iter()
            .rev()
            .find(|s| s.mac == from && s.prio.is_some_and(&is_it))
            .map(|s| s.t);
        let took = since.and_then(|t| {
            Self::first_advert_after(&seen, to, t).map(|at| Takeover { gap: at - t, at })
        });
        took.unwrap_or_else(|| {
            panic!(
                "no takeover from {from} by {to} on the wire:\n{}",
                self.text()
            )
        })
    }

    /// From `from`'s last advert above priority 0 to `to`'s first advert after it: the wire
    /// without a master once `from` fell silent.
    pub fn silent_takeover(&self, from: &str, to: &str) -> Takeover {
        self.takeover(from, to, |p| p > 0)
    }

    /// From `from`'s last priority-0 advert to `to`'s first advert after it.
    pub fn released_takeover(&self, from: &str, to: &str) -> Takeover {
        self.takeover(from, to, |p| p == 0)
    }

    /// The hex bytes of each packet whose summary line contains `text`, in order.
    pub fn frames(&self, text: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut current: Option<Vec<u8>> = None;
        for l in self.text().lines() {
            if !l.starts_with(char::is_whitespace) {
                if let Some(f) = current.take() {
                    out.push(f);
                }
                if l.contains(text) {
                    current = Some(Vec::new());
                }
                continue;
            }
            if let (Some(f), Some((_, hex))) = (current.as_mut(), l.split_once(':')) {
                for word in hex.split_whitespace() {
                    for i in (0..word.len()).step_by(2) {
                        if let Ok(b) = u8::from_str_radix(&word[i..(i + 2).min(word.len())], 16) {
                            f.push(b);
                        }
                    }
                }
            }
        }
        out.extend(current);
        out
    }
}

/// Make `ns` resolve `addr` (a datagram to its discard port makes the kernel ask ARP /
/// NDP) and wait for the neighbour entry: its MAC.
pub fn learn(ns: &Netns, addr: &str) -> Option<String> {
    let target: std::net::IpAddr = addr.parse().unwrap();
    ns.run(move || {
        let bind = if target.is_ipv6() {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        };
        let s = std::net::UdpSocket::bind(bind).unwrap();
        let _ = s.send_to(b"lvsd", (target, 9));
    })
    .unwrap()
    .join()
    .unwrap();
    let mut mac = None;
    wait_until(Duration::from_secs(3), || {
        mac = neighbour(ns, addr);
        mac.is_some()
    });
    mac
}
