//! Fake-time tests of [`HealthCheckers::reload`], [`HealthCheckers::stats`] and the notify
//! outputs, against keepalived 2.2.7's `reload_check_thread` / `clear_diff_services`.

use std::time::Duration;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::checker::{CheckerConfig, CheckerKind, ConnectOpts};
use super::healthcheckers::{CheckInput, HealthCheckers, HealthCheckersConfig, NotifyEvent};
use super::probe::{ProbeKind, ProbeResult};
use super::stats::CheckerType;
use super::tests::{ip, secs, seed_vs, spec, tcp_responder, Harness, Responder, RS1, RS2, VIP};
use super::virtual_server::{RealServerConfig, VirtualServerConfig};
use crate::ipvs::{FwdMethod, Protocol, ServiceKey};
use crate::time::Instant;

const RS3: &str = "223.202.22.119";

fn cfg(vss: Vec<VirtualServerConfig>) -> HealthCheckersConfig {
    HealthCheckersConfig {
        virtual_servers: vss,
        ..Default::default()
    }
}

fn fmt_rs(a: &str) -> String {
    format!("[{a}]:tcp:80")
}

fn fmt_vs() -> String {
    format!("[{VIP}]:tcp:80")
}

impl Harness {
    /// Reload with `cfg` at the current time and carry out what comes of it.
    fn reload(&mut self, cfg: &HealthCheckersConfig, seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        self.hc.reload(self.now, cfg, &mut rng);
        self.drain();
    }

    fn logs_from(&self, i: usize) -> Vec<String> {
        self.logs[i..].iter().map(|(_, l)| l.clone()).collect()
    }

    fn ops_from(&self, i: usize) -> Vec<String> {
        self.ops[i..].to_vec()
    }

    /// Run until `t` (whole seconds plus `ms`).
    fn run_to(&mut self, s: u64, ms: u64) {
        self.run_until(Instant::from_secs(s) + Duration::from_millis(ms));
    }
}

/// The lines `register_checkers_thread` logs for `rss`' TCP checkers (lvsd, having no BFD, not
/// the BFD build's "Activating BFD healthchecker").
fn activating(rss: &[&str]) -> Vec<String> {
    rss.iter()
        .map(|a| {
            format!(
                "Activating healthchecker for service {} for VS {}",
                fmt_rs(a),
                fmt_vs()
            )
        })
        .collect()
}

// reload_check_thread → start_check → clear_diff_services: an unchanged configuration keeps
// every state and makes no IPVS call; keepalived re-arms each checker as at start-up
// (thread_cleanup_master dropped the old timers and the check in flight).
#[test]
fn unchanged_config_changes_nothing() {
    let c = cfg(vec![seed_vs(Some(1))]);
    let mut h = Harness::with_config(c.clone(), 1, tcp_responder(0, 0, true));
    // Probes ran at 1 s, 7.001 s, 13.002 s and 19.003 s (each 6 s after the last answer,
    // which takes 1 ms); the last two are in flight.
    h.run_to(19, 3);
    assert_eq!(h.pending.len(), 2);
    let (ops, logs, dests, stats) = (h.ops.len(), h.logs.len(), h.dests(), h.hc.stats());
    h.reload(&c, 2);
    assert_eq!(h.ops_from(ops), Vec::<String>::new());
    assert_eq!(h.dests(), dests);
    assert_eq!(h.hc.stats(), stats);
    let mut want = vec!["Reloading".to_string()];
    want.extend(activating(&[RS1, RS2]));
    assert_eq!(h.logs_from(logs), want);
    // warmup 0: the next probe is BOOTSTRAP_DELAY after the reload.
    let ms = |m: u64| Instant::from_secs(19) + Duration::from_millis(m);
    assert_eq!(h.hc.poll_timeout(), Some(ms(1003)));
    // The two results of the probes started before the reload are ignored.
    h.run_to(19, 500);
    assert!(h.pending.is_empty());
    assert_eq!(h.hc.stats(), stats);
    h.run_to(60, 0);
    assert_eq!(h.ops_from(ops), Vec::<String>::new());
    let probe_times: Vec<Instant> = h
        .probes
        .iter()
        .map(|p| p.0)
        .filter(|t| *t > ms(3))
        .collect();
    let want: Vec<Instant> = (0..7)
        .flat_map(|k| [ms(1003 + k * 6001); 2])
        .filter(|t| *t <= Instant::from_secs(60))
        .collect();
    assert_eq!(probe_times, want);
}

// A kept server keeps being down: its checker's failed state migrates (migrate_checkers), so
// nothing is re-added and its recovery is reported as at any other time.
#[test]
fn down_server_stays_down_across_reload() {
    let c = cfg(vec![seed_vs(Some(1))]);
    let mut h = Harness::with_config(c.clone(), 1, tcp_responder(5, 40, true));
    h.run_to(30, 0);
    assert_eq!(h.dests(), vec![(format!("{RS2}:80"), 100)]);
    let (ops, stats) = (h.ops.len(), h.hc.stats());
    h.reload(&c, 2);
    assert_eq!(h.hc.stats(), stats);
    assert_eq!(h.ops_from(ops), Vec::<String>::new());
    h.run_to(60, 0);
    assert_eq!(h.ops_from(ops), vec![format!("-a {RS1}:80 w100")]);
}

// init_service_rs on reload: the weight from the new configuration replaces the running one
// through update_svr_wgt — one EDITDEST and keepalived's "Changing weight" line.
#[test]
fn weight_change_is_one_edit() {
    let c = cfg(vec![seed_vs(Some(1))]);
    let mut h = Harness::with_config(c.clone(), 1, tcp_responder(0, 0, true));
    h.run_to(10, 0);
    let (ops, logs) = (h.ops.len(), h.logs.len());
    let mut c2 = c.clone();
    c2.virtual_servers[0].real_servers[0].weight = 50;
    h.reload(&c2, 2);
    assert_eq!(h.ops_from(ops), vec![format!("-e {RS1}:80 w50")]);
    let mut want = vec![
        "Reloading".to_string(),
        format!(
            "Changing weight from 100 to 50 for active service {} of VS {}",
            fmt_rs(RS1),
            fmt_vs()
        ),
    ];
    want.extend(activating(&[RS1, RS2]));
    assert_eq!(h.logs_from(logs), want);
    let st = h.hc.stats();
    assert_eq!(st.virtual_servers[0].real_servers[0].initial_weight, 50);
    assert_eq!(st.virtual_servers[0].real_servers[0].effective_weight, 50);
    assert_eq!(st.virtual_servers[0].live_weight, 150);
    h.run_to(60, 0);
    assert_eq!(h.ops.len(), ops + 1);
}

// clear_diff_rs: a real server the new configuration lacks is removed ("no longer exist",
// clear_service_rs: DELDEST, its notify_down runs); its checker is forgotten, and the result
// of the probe it had in flight is ignored.
#[test]
fn removed_real_server_is_deleted_and_forgotten() {
    let mut vs = seed_vs(Some(1));
    vs.real_servers[1].notify_down = Some("/bin/rs-down 'RS 2' \"was here\"".into());
    let c = cfg(vec![vs.clone()]);
    // RS2 never answers: its probes time out after 3 s.
    let responder: Responder = Box::new(|p, _| {
        let ProbeKind::Tcp { target, .. } = &p.kind else {
            panic!("not tcp")
        };
        if target.ip() == ip(RS2) {
            (p.timeout, ProbeResult::Timeout)
        } else {
            (Duration::from_millis(1), ProbeResult::Connected)
        }
    });
    let mut h = Harness::with_config(c, 1, responder);
    // RS2's 1 s probe fails at 4 s ("one failure is enough initially")... but first reload
    // while that probe is in flight.
    h.run_to(2, 0);
    let in_flight = h
        .probes
        .iter()
        .rev()
        .find(|(_, p)| matches!(&p.kind, ProbeKind::Tcp { target, .. } if target.ip() == ip(RS2)))
        .map(|(_, p)| p.id)
        .unwrap();
    let (ops, logs) = (h.ops.len(), h.logs.len());
    let mut vs2 = vs.clone();
    vs2.real_servers.truncate(1);
    h.reload(&cfg(vec![vs2]), 2);
    assert_eq!(h.ops_from(ops), vec![format!("-d {RS2}:80")]);
    let mut want = vec![
        "Reloading".to_string(),
        format!("service {} no longer exist", fmt_rs(RS2)),
        format!("Removing service {} from VS {}", fmt_rs(RS2), fmt_vs()),
    ];
    want.extend(activating(&[RS1]));
    assert_eq!(h.logs_from(logs), want);
    assert_eq!(
        h.notifies.last().map(|n| n.1.clone()),
        Some(NotifyEvent::RealServerDown {
            vs: fmt_vs(),
            rs: fmt_rs(RS2)
        })
    );
    assert_eq!(
        h.notify_argv.last().unwrap(),
        &["/bin/rs-down", "RS 2", "was here"]
    );
    // The old probe's result, fed directly: nothing happens.
    h.hc.handle_input(
        h.now,
        CheckInput::ProbeDone {
            id: in_flight,
            result: ProbeResult::Timeout,
        },
    );
    assert_eq!(h.hc.poll_output(), None);
    let st = h.hc.stats();
    assert_eq!(st.virtual_servers[0].real_servers.len(), 1);
    // From now on only RS1 is probed, and nothing changes in IPVS.
    let probes = h.probes.len();
    h.run_to(60, 0);
    assert!(h.probes[probes..]
        .iter()
        .all(|(_, p)| matches!(&p.kind, ProbeKind::Tcp { target, .. } if target.ip() == ip(RS1))));
    assert!(h.probes.len() > probes);
    assert_eq!(h.ops.len(), ops + 1);
}

// clear_diff_services: a virtual server the new configuration lacks is cleared as at
// shutdown, but worded "Removing" (clear_service_vs(vs, false)).
#[test]
fn removed_virtual_server_is_torn_down() {
    let mut other = seed_vs(Some(1));
    other.service.key = ServiceKey::Inet {
        proto: Protocol::Tcp,
        addr: ip(VIP),
        port: 443,
    };
    let c = cfg(vec![seed_vs(Some(1)), other]);
    let mut h = Harness::with_config(c.clone(), 1, tcp_responder(0, 0, true));
    h.run_to(10, 0);
    let (ops, logs) = (h.ops.len(), h.logs.len());
    let c2 = cfg(vec![c.virtual_servers[0].clone()]);
    h.reload(&c2, 2);
    assert_eq!(
        h.ops_from(ops),
        // DR real servers take the service's port.
        vec![
            format!("-d {RS1}:443"),
            format!("-d {RS2}:443"),
            "-D".to_string()
        ]
    );
    let vs443 = format!("[{VIP}]:tcp:443");
    let mut want = vec![
        "Reloading".to_string(),
        format!("Removing Virtual Server {vs443}"),
        format!("Removing service [{RS1}]:tcp:443 from VS {vs443}"),
        format!("Removing service [{RS2}]:tcp:443 from VS {vs443}"),
    ];
    want.extend(activating(&[RS1, RS2]));
    assert_eq!(h.logs_from(logs), want);
    assert_eq!(h.services.len(), 1);
    assert_eq!(h.hc.stats().virtual_servers.len(), 1);
}

// init_service_rs for a real server new in the configuration: added as at start-up, then
// checked. keepalived sets "one failure is enough" only at start-up (validate_check_config
// skips it on reload), so a new server that fails needs retry + 1 failures to go.
#[test]
fn new_real_server_starts_checking() {
    let c = cfg(vec![seed_vs(Some(1))]);
    // RS3 refuses connections; RS1 and RS2 accept.
    let responder: Responder = Box::new(|p, _| {
        let ProbeKind::Tcp { target, .. } = &p.kind else {
            panic!("not tcp")
        };
        if target.ip() == ip(RS3) {
            (Duration::ZERO, ProbeResult::ConnectFailed)
        } else {
            (Duration::from_millis(1), ProbeResult::Connected)
        }
    });
    let mut h = Harness::with_config(c.clone(), 1, responder);
    h.run_to(10, 0);
    let (ops, logs) = (h.ops.len(), h.logs.len());
    let mut c2 = c.clone();
    let mut rs3 = RealServerConfig::new(ip(RS3), 80);
    rs3.weight = 100;
    rs3.checkers.push(super::tests::seed_tcp(Some(1)));
    c2.virtual_servers[0].real_servers.push(rs3);
    h.reload(&c2, 2);
    assert_eq!(h.ops_from(ops), vec![format!("-a {RS3}:80 w100")]);
    let mut want = vec!["Reloading".to_string()];
    want.extend(activating(&[RS1, RS2, RS3]));
    assert_eq!(h.logs_from(logs), want);
    // Probes at 11 s (fails, retry), 14 s (fails again: down).
    h.run_to(13, 0);
    assert_eq!(h.ops.len(), ops + 1);
    h.run_to(19, 0);
    assert_eq!(h.ops_from(ops + 1), vec![format!("-d {RS3}:80")]);
    assert!(h.logs.iter().any(|(t, l)| *t == Instant::from_secs(14)
        && *l
            == format!(
                "TCP_CHECK on service {} failed after 1 retries.",
                fmt_rs(RS3)
            )));
    let rs = &h.hc.stats().virtual_servers[0].real_servers[2];
    assert_eq!(
        (rs.alive, rs.went_down, rs.checkers[0].failures),
        (false, 1, 2)
    );
}

// migrate_checkers: a kept alpha real server whose checker has not run yet stays out of the
// pool (its unrun alpha checker is set down again), and is added after its first success.
#[test]
fn alpha_server_not_yet_checked_stays_out() {
    let mut vs = seed_vs(Some(1));
    vs.alpha = true;
    for rs in &mut vs.real_servers {
        rs.checkers[0].warmup = None; // warmup = delay_loop (6 s)
    }
    let c = cfg(vec![vs]);
    let mut h = Harness::with_config(c.clone(), 3, tcp_responder(0, 0, true));
    assert!(h.dests().is_empty());
    let ops = h.ops.len();
    h.reload(&c, 4);
    assert_eq!(h.ops_from(ops), Vec::<String>::new());
    let st = h.hc.stats();
    assert!(st.virtual_servers[0]
        .real_servers
        .iter()
        .all(|r| !r.alive && r.failed_checkers == 1 && !r.checkers[0].up));
    h.run_to(10, 0);
    assert_eq!(h.dests().len(), 2);
}

// Scheduling changed in the new configuration: clear_diff_services edits the service.
#[test]
fn scheduler_change_edits_the_service() {
    let c = cfg(vec![seed_vs(Some(1))]);
    let mut h = Harness::with_config(c.clone(), 1, tcp_responder(0, 0, true));
    h.run_to(10, 0);
    let ops = h.ops.len();
    let mut c2 = c.clone();
    c2.virtual_servers[0].service.persistence = Some(60);
    h.reload(&c2, 2);
    assert_eq!(h.ops_from(ops), vec!["-E".to_string()]);
}

// stats: every probe result the checkers were fed is counted, per checker, with the real
// server's transitions and the virtual server's quorum changes.
#[test]
fn stats_count_the_results_fed() {
    let c = cfg(vec![seed_vs(Some(1))]);
    let mut h = Harness::with_config(c, 1, tcp_responder(10, 30, true));
    h.run_to(60, 0);
    assert!(h.pending.is_empty());
    let answered = |a: &str, down: bool| {
        h.probes
            .iter()
            .filter(|(t, p)| {
                let ProbeKind::Tcp { target, .. } = &p.kind else {
                    return false;
                };
                let in_window = *t >= Instant::from_secs(10) && *t < Instant::from_secs(30);
                target.ip() == ip(a) && (a == RS1 && in_window) == down
            })
            .count() as u64
    };
    let st = h.hc.stats();
    let vs = &st.virtual_servers[0];
    let (r1, r2) = (&vs.real_servers[0], &vs.real_servers[1]);
    assert_eq!(r1.checkers[0].checker_type, CheckerType::TcpCheck);
    assert_eq!(r1.checkers[0].successes, answered(RS1, false));
    assert_eq!(r1.checkers[0].failures, answered(RS1, true));
    assert!(r1.checkers[0].failures >= 2);
    assert_eq!(r2.checkers[0].successes, answered(RS2, false));
    assert_eq!(r2.checkers[0].failures, 0);
    assert_eq!((r1.went_down, r1.went_up, r1.alive), (1, 1, true));
    assert_eq!((r2.went_down, r2.went_up), (0, 0));
    assert_eq!(
        (vs.quorum_gained, vs.quorum_lost, vs.quorum_up),
        (1, 0, true)
    );
    assert_eq!(vs.name, fmt_vs());
    let json = serde_json::to_string(&st).unwrap();
    assert!(json.contains(r#""checker_type":"TCP_CHECK""#), "{json}");
}

// do_rs_notifies / do_vs_notifies: the configured script's words are the argv, nothing added
// (set_check_notify_script: notify_script_init(0, ...)).
#[test]
fn notify_outputs_carry_script_and_argv() {
    let mut vs = VirtualServerConfig::new(spec(), FwdMethod::Route);
    vs.delay_loop = Some(secs(6));
    vs.quorum_up = Some("/bin/q up".into());
    vs.quorum_down = Some(r#"/bin/q "lost it" now\!"#.into());
    let mut rs = RealServerConfig::new(ip(RS1), 80);
    rs.notify_up = Some("/usr/local/bin/rs 'up' 1".into());
    rs.notify_down = Some("/usr/local/bin/rs down".into());
    let mut tcp = CheckerConfig::new(CheckerKind::Tcp(ConnectOpts::default()));
    tcp.warmup = Some(Duration::ZERO);
    tcp.retry = Some(0);
    rs.checkers.push(tcp);
    vs.real_servers.push(rs);
    let mut hc = HealthCheckers::new(&cfg(vec![vs]));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    hc.start(Instant::ZERO, &mut rng);
    let mut notifies = Vec::new();
    let mut pending = Vec::new();
    let step = |hc: &mut HealthCheckers, notifies: &mut Vec<_>, pending: &mut Vec<_>| {
        while let Some(o) = hc.poll_output() {
            match o {
                super::healthcheckers::CheckOutput::Notify {
                    command,
                    argv,
                    event,
                } => notifies.push((command, argv, event)),
                super::healthcheckers::CheckOutput::StartProbe(p) => pending.push(p.id),
                _ => {}
            }
        }
    };
    step(&mut hc, &mut notifies, &mut pending);
    // Quorum gained at start-up with the (non-alpha) server counted alive.
    let t = hc.poll_timeout().unwrap();
    hc.handle_timeout(t);
    step(&mut hc, &mut notifies, &mut pending);
    let id = pending.pop().unwrap();
    hc.handle_input(
        t,
        CheckInput::ProbeDone {
            id,
            result: ProbeResult::ConnectFailed,
        },
    );
    step(&mut hc, &mut notifies, &mut pending);
    let words = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        notifies,
        vec![
            (
                "/bin/q up".to_string(),
                words(&["/bin/q", "up"]),
                NotifyEvent::QuorumUp { vs: fmt_vs() }
            ),
            (
                "/usr/local/bin/rs down".to_string(),
                words(&["/usr/local/bin/rs", "down"]),
                NotifyEvent::RealServerDown {
                    vs: fmt_vs(),
                    rs: fmt_rs(RS1)
                }
            ),
            (
                r#"/bin/q "lost it" now\!"#.to_string(),
                words(&["/bin/q", "lost it", "now!"]),
                NotifyEvent::QuorumDown { vs: fmt_vs() }
            ),
        ]
    );
}

// notify_script_init: a script whose line cannot be split is ignored, with keepalived's words.
#[test]
fn unparsable_script_is_ignored() {
    let mut vs = seed_vs(Some(1));
    vs.real_servers[0].notify_down = Some("/bin/x 'open".into());
    let h = Harness::with_config(cfg(vec![vs]), 1, tcp_responder(0, 0, true));
    let logs: Vec<&str> = h.logs.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        &logs[..2],
        &[
            "String '/bin/x 'open': missing terminating '",
            "Unable to parse script '/bin/x 'open' - ignoring"
        ]
    );
}
