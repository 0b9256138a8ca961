//! The simulator against timelines recorded from Debian's keepalived 2.2.7 in network
//! namespaces (`scenarios/reference/capture-*.sh`, their logs beside them): the same VRRP log
//! lines in the same order, the same VIP movements, and the same moments to within a second.
//!
//! The recorded logs carry the harness's addresses (198.18.0.0/15); they are mapped back to
//! the scenario's before comparing. keepalived's start-up preamble (version, command line,
//! netlink and socket lines) has no simulated counterpart; the comparison covers the VRRP
//! instance and sync-group lines, minus the per-packet "Sending gratuitous ARP on ..." ones.

use std::path::PathBuf;
use std::time::Duration;

use lvs_scenarios::judge::RunOptions;
use lvs_scenarios::observe::{Observed, RunRecord};
use lvs_scenarios::Scenario;
use lvs_sim::scenario::observe;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One recorded keepalived log line: seconds since the capture's first timeline mark, text.
#[derive(Debug)]
struct Line {
    t: u64,
    text: String,
}

/// A capture log: the timeline marks (offset, label) and each director's log lines.
struct Capture {
    marks: Vec<(u64, String)>,
    logs: Vec<(String, Vec<Line>)>,
}

fn secs_of_day(hms: &str) -> u64 {
    let p: Vec<u64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    p[0] * 3600 + p[1] * 60 + p[2]
}

fn unmap(text: &str) -> String {
    // The inverse of the capture scripts' mapping (lvs_scenarios::netns for the seed).
    let mut out = String::new();
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let w = if let Some(rest) = word.strip_prefix("198.18.0.") {
            format!("192.168.22.{rest}")
        } else if let Some(rest) = word.strip_prefix("198.18.2.") {
            format!("223.202.22.{rest}")
        } else {
            word.to_string()
        };
        out.push_str(&w);
    }
    out
}

fn load_capture(name: &str) -> Capture {
    let path = root().join("scenarios/reference").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut marks = Vec::new();
    let mut logs: Vec<(String, Vec<Line>)> = Vec::new();
    let mut origin = None;
    for l in text.lines() {
        if let Some(h) = l.strip_prefix("## director") {
            logs.push((format!("director{}", &h[..1]), Vec::new()));
        } else if l.contains(" ==== ") && logs.is_empty() {
            // "19:15:20 +000s ==== label"
            let (clock, label) = l.split_once(" ==== ").unwrap();
            let t = secs_of_day(clock.split(' ').next().unwrap());
            let o = *origin.get_or_insert(t);
            marks.push((t - o, label.to_string()));
        } else if let (Some((_, lines)), Some((stamp, msg))) = (logs.last_mut(), l.split_once(": "))
        {
            // "Sun Dec  6 19:15:20 2026: text"
            let clock = stamp.split_whitespace().nth(3).unwrap();
            let t = secs_of_day(clock) - origin.expect("marks come first");
            lines.push(Line {
                t,
                text: unmap(msg),
            });
        }
    }
    Capture { marks, logs }
}

/// The instance, sync group or script a VRRP line is about ("(WAN) ...",
/// "VRRP_Group(VGM) ...", "VRRP_Script(chk) ..." / "Script `chk` now returning 1"), or `None`
/// for the lines not compared: keepalived's start-up preamble, the per-packet "Sending
/// gratuitous ARP on ..." lines, and the config warnings printed at start-up ("(FILE: Line N)
/// ..." / "(Line N) ...", compared by [`config_lines_at_each_start_match_keepalived`]).
fn subject(text: &str) -> Option<String> {
    let inside = |rest: &str, close: char| rest.split(close).next().map(str::to_string);
    if let Some(rest) = text.strip_prefix("VRRP_Group(") {
        return inside(rest, ')').map(|g| format!("group {g}"));
    }
    if let Some(rest) = text.strip_prefix("VRRP_Script(") {
        return inside(rest, ')').map(|g| format!("script {g}"));
    }
    if let Some(rest) = text.strip_prefix("Script `") {
        return inside(rest, '`').map(|g| format!("script {g}"));
    }
    let rest = text.strip_prefix('(')?;
    if rest.starts_with('/') || rest.starts_with("Line ") {
        return None;
    }
    inside(rest, ')')
}

fn is_vrrp_line(text: &str) -> bool {
    subject(text).is_some()
}

fn recorded(c: &Capture, host: &str, from: u64, to: u64) -> Vec<(u64, String)> {
    let lines = &c.logs.iter().find(|(h, _)| h == host).expect(host).1;
    lines
        .iter()
        .filter(|l| l.t >= from && l.t < to && is_vrrp_line(&l.text))
        .map(|l| (l.t, l.text.clone()))
        .collect()
}

fn simulated(r: &RunRecord, host: &str, from: Duration, to: Duration) -> Vec<(Duration, String)> {
    r.observations
        .iter()
        .filter(|o| o.host == host && o.t >= from && o.t < to)
        .filter_map(|o| match &o.what {
            Observed::Log { line } => {
                // "Keepalived_vrrp[1105]: (WAN) removing VIPs."
                let (_, msg) = line.split_once("]: ")?;
                is_vrrp_line(msg).then(|| (o.t, msg.to_string()))
            }
            _ => None,
        })
        .collect()
}

/// The same lines in the same order per instance, sync group or script.
///
/// What is compared loosely, and why: lines about two subjects stamped with the same moment
/// interleave by microseconds, so each subject is its own stream; the delayed GARP bursts
/// ("Sending/queueing gratuitous ARPs ...") are timers that often fall due at the very moment
/// an advert arrives, so they are counted, not placed; and a line repeated once per advert
/// ("received lower priority ...") is compared as the line and its number of repeats, which
/// may differ by one at the window's ends (the capture's stamps are whole seconds, and its
/// clock is not the simulation's to within a second). The GARP count may differ by two for
/// the same reason (one burst per received advert and one delayed burst per received advert).
fn assert_same_lines(real: &[(u64, String)], sim: &[(Duration, String)]) {
    struct Stream {
        runs: Vec<(String, usize)>,
        garps: usize,
    }
    let is_garp = |l: &str| l.contains(") Sending/queueing gratuitous ARPs");
    let streams = |lines: Vec<&String>| {
        let mut m: std::collections::BTreeMap<String, Stream> = Default::default();
        for l in lines {
            let e = m.entry(subject(l).unwrap_or_default()).or_insert(Stream {
                runs: Vec::new(),
                garps: 0,
            });
            if is_garp(l) {
                e.garps += 1;
            } else if let Some(last) = e.runs.last_mut().filter(|(x, _)| x == l) {
                last.1 += 1;
            } else {
                e.runs.push((l.clone(), 1));
            }
        }
        m
    };
    let (sim, real) = (
        streams(sim.iter().map(|(_, l)| l).collect()),
        streams(real.iter().map(|(_, l)| l).collect()),
    );
    assert_eq!(
        sim.keys().collect::<Vec<_>>(),
        real.keys().collect::<Vec<_>>()
    );
    for (k, s) in &sim {
        let r = &real[k];
        let lines = |x: &Stream| x.runs.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>();
        assert_eq!(lines(s), lines(r), "{k}: lines");
        for ((l, a), (_, b)) in s.runs.iter().zip(&r.runs) {
            assert!(a.abs_diff(*b) <= 1, "{k}: {l:?} {a} times, recorded {b}");
        }
        assert!(
            s.garps.abs_diff(r.garps) <= 2,
            "{k}: {} GARP bursts, recorded {}",
            s.garps,
            r.garps
        );
    }
}

/// Within a second of each other (the capture's stamps are whole seconds).
fn close(sim: Duration, real: u64, what: &str) {
    let d = sim.as_secs_f64() - real as f64;
    assert!(
        (-1.0..=1.0).contains(&d),
        "{what}: simulated {sim:?}, recorded {real} s"
    );
}

/// `host`'s VRRP lines from `from` to `end` (capture seconds) match the simulation's.
fn same_lines(c: &Capture, r: &RunRecord, host: &str, from: u64, end: u64) {
    assert_same_lines(
        &recorded(c, host, from, end),
        &simulated(r, host, Duration::from_secs(from), Duration::from_secs(end)),
    );
}

/// The first `text` on `host` after `from` comes within a second of the capture's.
fn same_moment(c: &Capture, r: &RunRecord, host: &str, from: u64, end: u64, text: &str) {
    let real = recorded(c, host, from, end);
    let sim = simulated(r, host, Duration::from_secs(from), Duration::from_secs(end));
    close(
        first_sim(&sim, text),
        first(&real, text),
        &format!("{host}: {text}"),
    );
}

fn load_scenario(name: &str) -> Scenario {
    Scenario::load(root().join("scenarios/fidelity").join(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn mark(c: &Capture, label: &str) -> u64 {
    c.marks
        .iter()
        .find(|(_, l)| l.starts_with(label))
        .unwrap_or_else(|| panic!("no mark {label:?}"))
        .0
}

fn first(lines: &[(u64, String)], text: &str) -> u64 {
    lines
        .iter()
        .find(|(_, l)| l == text)
        .unwrap_or_else(|| panic!("no {text:?} in {lines:#?}"))
        .0
}

fn first_sim(lines: &[(Duration, String)], text: &str) -> Duration {
    lines
        .iter()
        .find(|(_, l)| l == text)
        .unwrap_or_else(|| panic!("no {text:?} in {lines:#?}"))
        .0
}

/// VIP additions and removals on `host` in [from, to): (time, address, added).
fn vip_events(r: &RunRecord, host: &str, from: Duration, to: Duration) -> Vec<(String, bool)> {
    r.observations
        .iter()
        .filter(|o| o.host == host && o.t >= from && o.t < to)
        .filter_map(|o| match &o.what {
            Observed::Vip { addr, added, .. } => Some((addr.to_string(), *added)),
            _ => None,
        })
        .collect()
}

/// A config warning as keepalived logs it at start-up, the file's path (a temporary one in
/// the captures, /etc/keepalived in the simulator) left out: "(Line 20) ...",
/// "(FILE: Line 34) ...".
fn config_line(text: &str) -> Option<String> {
    let rest = text.strip_prefix('(')?;
    let (place, msg) = rest.split_once(") ")?;
    let line = place.rsplit_once(": ").map_or(place, |(_, line)| line);
    let file = if line.len() < place.len() {
        "FILE: "
    } else {
        ""
    };
    line.starts_with("Line ")
        .then(|| format!("({file}{line}) {msg}"))
}

// Every capture ran keepalived with -P (this host has no IPVS), so only the parent's and the
// VRRP child's lines can be compared: the same warnings, in the same order, at every start
// (the restarts included).
#[test]
fn config_lines_at_each_start_match_keepalived() {
    let mut compared = 0;
    for (capture, scenario) in [
        ("keepalived-2.2-sigkill.log", "sigkill-restart.toml"),
        ("keepalived-2.2-track-script.log", "track-script.toml"),
        (
            "keepalived-2.2-unicast-wrong-peer.log",
            "unicast-wrong-peer.toml",
        ),
    ] {
        let c = load_capture(capture);
        compared += c
            .logs
            .iter()
            .flat_map(|(_, l)| l)
            .filter(|l| config_line(&l.text).is_some())
            .count();
        let r = observe(&load_scenario(scenario), &RunOptions::default()).unwrap();
        for (host, lines) in &c.logs {
            let real: Vec<String> = lines.iter().filter_map(|l| config_line(&l.text)).collect();
            let sim: Vec<String> = r
                .observations
                .iter()
                .filter(|o| &o.host == host)
                .filter_map(|o| match &o.what {
                    Observed::Log { line } => {
                        let (source, msg) = line.split_once("]: ")?;
                        let vrrp_only = !source.contains("Keepalived_healthcheckers");
                        vrrp_only.then(|| config_line(msg)).flatten()
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(sim, real, "{capture} {host}");
        }
    }
    assert!(compared >= 10, "the captures hold config lines: {compared}");
}

// capture-sigkill.sh: the master's keepalived SIGKILLed (process group), restarted 27 s later.
#[test]
fn sigkill_then_restart_matches_keepalived() {
    let c = load_capture("keepalived-2.2-sigkill.log");
    let s = load_scenario("sigkill-restart.toml");
    let r = observe(&s, &RunOptions::default()).unwrap();
    let kill = mark(&c, "SIGKILL");
    let restart = mark(&c, "restart");
    let end = mark(&c, "end");
    assert_eq!(
        (Duration::from_secs(kill), Duration::from_secs(restart)),
        (s.faults[0].at, s.faults[1].at),
        "the scenario's faults are the capture's"
    );
    let (kill_t, restart_t) = (s.faults[0].at, s.faults[1].at);

    // Nothing removes the killed director's VIPs until its restart removes them at init.
    assert_eq!(vip_events(&r, "director1", kill_t, restart_t), vec![]);
    let at_restart = vip_events(
        &r,
        "director1",
        restart_t,
        restart_t + Duration::from_secs(1),
    );
    for vip in ["223.202.22.118", "192.168.22.118"] {
        assert!(
            at_restart.contains(&(vip.to_string(), false)),
            "{vip} removed at init: {at_restart:?}"
        );
    }

    // The restarted director's VRRP lines, and the backup's over the whole run; the
    // backup's takeover after the kill, the master's after its restart.
    same_lines(&c, &r, "director1", restart, end);
    same_lines(&c, &r, "director2", 0, end);
    same_moment(&c, &r, "director2", 0, end, "(WAN) Entering MASTER STATE");
    same_moment(
        &c,
        &r,
        "director1",
        restart,
        end,
        "(WAN) Entering MASTER STATE",
    );
}

// capture-track-script.sh: director1's tracked vrrp_script fails from 15 s to 30 s.
#[test]
fn tracked_script_weight_drives_failover_as_keepalived() {
    let c = load_capture("keepalived-2.2-track-script.log");
    let s = load_scenario("track-script.toml");
    let fail = mark(&c, "chk_web starts failing");
    let ok = mark(&c, "chk_web succeeds again");
    let end = mark(&c, "end");
    assert_eq!(
        (Duration::from_secs(fail), Duration::from_secs(ok)),
        (s.faults[0].at, s.faults[1].at),
        "the scenario's faults are the capture's"
    );
    let r = observe(&s, &RunOptions::default()).unwrap();
    for host in ["director1", "director2"] {
        same_lines(&c, &r, host, 0, end);
    }
    let at = |host: &str, from: u64, text: &str| same_moment(&c, &r, host, from, end, text);
    at(
        "director1",
        fail,
        "(VI_1) Changing effective priority from 100 to 40",
    );
    at("director2", fail, "(VI_1) Entering MASTER STATE");
    at(
        "director1",
        ok,
        "(VI_1) Changing effective priority from 40 to 100",
    );
    at("director1", ok, "(VI_1) Entering MASTER STATE");
}

// capture-unicast-wrong-peer.sh: director1's unicast_peer names nobody, so its adverts never
// reach director2 and both stay MASTER (keepalived does not notice the split brain).
#[test]
fn unicast_with_a_wrong_peer_splits_the_brain_as_keepalived() {
    let c = load_capture("keepalived-2.2-unicast-wrong-peer.log");
    let s = load_scenario("unicast-wrong-peer.toml");
    let end = mark(&c, "end");
    assert_eq!(Duration::from_secs(end), s.duration);
    let r = observe(&s, &RunOptions::default()).unwrap();
    let end_t = Duration::from_secs(end);
    for host in ["director1", "director2"] {
        same_lines(&c, &r, host, 0, end);
        same_moment(&c, &r, host, 0, end, "(VI_1) Entering MASTER STATE");
    }
    // Both hold the VIP at the end, as the capture's `ip addr` showed.
    for host in ["director1", "director2"] {
        let vips = vip_events(&r, host, Duration::ZERO, end_t);
        assert_eq!(
            vips.last(),
            Some(&("223.202.22.118".to_string(), true)),
            "{host}"
        );
    }
}

// A scenario whose keepalived.conf includes conf.d/*.conf and picks priorities with @NAME
// lines runs, and the host the lines favour wins.
#[test]
fn a_config_with_includes_runs_in_the_simulator() {
    let s = load_scenario("include.toml");
    let report = lvs_sim::scenario::run(&s, &RunOptions::default()).unwrap();
    let failed: Vec<_> = report.failures().collect();
    assert!(failed.is_empty(), "{failed:?}");
}

/// The health checker's verdict lines about real servers ("TCP connection to ...", "TCP_CHECK
/// on service ... failed ...", "Removing / Adding service ..."), in order.
fn checker_lines<'a>(lines: impl Iterator<Item = (Duration, &'a str)>) -> Vec<(Duration, String)> {
    const VERDICTS: [&str; 4] = [
        "TCP connection to ",
        "TCP_CHECK on service ",
        "Removing service ",
        "Adding service ",
    ];
    lines
        .filter(|(_, l)| VERDICTS.iter().any(|v| l.starts_with(v)))
        .map(|(t, l)| (t, l.to_string()))
        .collect()
}

// run-checks.sh: keepalived -C under Debian's kernel in qemu (its checkers need IPVS) checks
// a real server on its subnet and one behind a router while the near one's service stops
// (RST) and starts, and its NIC goes down (silence: the check times out) and up.
#[test]
fn health_checks_see_the_network_as_keepalived_does() {
    let c = load_capture("keepalived-2.2-checks.log");
    let s = load_scenario("checks.toml");
    let marks: Vec<u64> = [
        "near: service stopped",
        "near: service started",
        "near: eth0 down",
        "near: eth0 up",
    ]
    .iter()
    .map(|l| mark(&c, l))
    .collect();
    let faults: Vec<u64> = s.faults.iter().map(|f| f.at.as_secs()).collect();
    assert_eq!(marks, faults, "the scenario's faults are the capture's");
    assert_eq!(Duration::from_secs(mark(&c, "end")), s.duration);

    let real_log = &c.logs.iter().find(|(h, _)| h == "director1").unwrap().1;
    let real = checker_lines(
        real_log
            .iter()
            .map(|l| (Duration::from_secs(l.t), l.text.as_str())),
    );
    let r = observe(&s, &RunOptions::default()).unwrap();
    let sim = checker_lines(r.observations.iter().filter_map(|o| match &o.what {
        Observed::Log { line } if o.host == "director1" => {
            line.split_once("]: ").map(|(_, m)| (o.t, m))
        }
        _ => None,
    }));
    // Per real server: keepalived starts each checker at a random point of its first
    // delay_loop, so the two servers' lines interleave either way and a verdict's moment is
    // the capture's to within one delay_loop (2 s), not a second.
    for server in ["[198.18.252.2]", "[198.18.253.2]"] {
        let of = |v: &[(Duration, String)]| -> Vec<(Duration, String)> {
            v.iter()
                .filter(|(_, l)| l.contains(server))
                .cloned()
                .collect()
        };
        let (sim, real) = (of(&sim), of(&real));
        let text = |v: &[(Duration, String)]| v.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>();
        assert_eq!(text(&sim), text(&real), "{server}");
        for ((st, line), (rt, _)) in sim.iter().zip(&real) {
            let d = st.as_secs_f64() - rt.as_secs_f64();
            assert!(
                (-2.0..=2.0).contains(&d),
                "{line}: simulated {st:?}, recorded {rt:?}"
            );
        }
    }
}
