//! One [`VrrpRouter`] driven by hand with fake time (smoltcp style): every transition, with the
//! RFC section or keepalived function it follows.

use std::net::IpAddr;
use std::time::Duration;

use super::state::VrrpState;
use crate::time::Instant;

use super::instance::{InitialState, InstanceConfig, VirtualAddress, MCAST_V4};
use super::router::{RouterConfig, Vip, VrrpInput, VrrpOutput, VrrpRouter};
use super::track::{ScriptConfig, TrackInterface, TrackScript};
use super::wire::{Advert, Auth, Version};

fn at_us(us: u64) -> Instant {
    Instant::from_nanos(us * 1000)
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

fn inst(prio: u8, state: InitialState) -> InstanceConfig {
    let mut c = InstanceConfig::new("VI", "eth0", 7, ip(1));
    c.priority = prio;
    c.state = Some(state);
    c.vips = vec![VirtualAddress::host(ip(100))];
    c
}

fn router(c: InstanceConfig) -> VrrpRouter {
    started(RouterConfig {
        instances: vec![c],
        ..Default::default()
    })
}

/// A router built from `cfg` and started at 0.
fn started(cfg: RouterConfig) -> VrrpRouter {
    let mut r = VrrpRouter::new(cfg).unwrap();
    r.start(Instant::ZERO);
    r
}

fn drain(r: &mut VrrpRouter) -> Vec<VrrpOutput> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

fn logs(out: &[VrrpOutput]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            VrrpOutput::Log { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn adverts(out: &[VrrpOutput]) -> Vec<(IpAddr, u8)> {
    out.iter()
        .filter_map(|o| match o {
            VrrpOutput::SendAdvert { dst, advert, .. } => Some((*dst, advert.priority)),
            _ => None,
        })
        .collect()
}

/// How many gratuitous ARPs `out` sends.
fn garps(out: &[VrrpOutput]) -> usize {
    out.iter()
        .filter(|o| matches!(o, VrrpOutput::SendGarp { .. }))
        .count()
}

fn advert_from(prio: u8, int_s: u16) -> Advert {
    Advert {
        version: Version::V2,
        vrid: 7,
        priority: prio,
        advert_int_cs: int_s * 100,
        auth: Auth::None,
        addrs: vec![ip(100)],
    }
}

fn rx(r: &mut VrrpRouter, now: Instant, src: IpAddr, advert: Advert) -> Vec<VrrpOutput> {
    r.handle_input(
        now,
        VrrpInput::Advert {
            iface: "eth0".into(),
            src,
            dst: MCAST_V4,
            advert,
        },
    );
    drain(r)
}

/// Run timers until the instance reaches MASTER; returns the time.
fn until_master(r: &mut VrrpRouter) -> Instant {
    for _ in 0..10 {
        let t = r.poll_timeout().unwrap();
        r.handle_timeout(t);
        if r.instances()[0].state() == VrrpState::Master {
            return t;
        }
    }
    panic!("never became master");
}

// RFC 3768 6.4.1 / vrrp_scheduler.c vrrp_init_state: a BACKUP waits Master_Down_Interval.
#[test]
fn backup_waits_master_down_interval_then_takes_over() {
    let mut r = router(inst(100, InitialState::Backup));
    let out = drain(&mut r);
    // vrrp_restore_interfaces_startup clears leftover VIPs first.
    assert_eq!(
        logs(&out),
        vec!["(VI) removing VIPs.", "(VI) Entering BACKUP STATE (init)"]
    );
    assert!(out.contains(&VrrpOutput::DelVip(Vip {
        iface: "eth0".into(),
        addr: ip(100),
        prefix: 32
    })));
    // 3 * 1 s + (256 - 100) / 256 s.
    assert_eq!(r.poll_timeout(), Some(at_us(3_609_375)));
    // A spurious timeout is a no-op.
    r.handle_timeout(Instant::from_secs(1));
    assert!(drain(&mut r).is_empty());
    let t = until_master(&mut r);
    assert_eq!(t, at_us(3_609_375));
    let out = drain(&mut r);
    // vrrp_state_master_tx: advert first, then the transition, VIPs, GARPs, notify.
    assert!(matches!(out[1], VrrpOutput::SendAdvert { .. }));
    assert_eq!(
        logs(&out)[..2],
        [
            "(VI) Receive advertisement timeout".to_string(),
            "(VI) Entering MASTER STATE".into()
        ]
    );
    assert!(out.contains(&VrrpOutput::AddVip(Vip {
        iface: "eth0".into(),
        addr: ip(100),
        prefix: 32
    })));
    assert!(r.instances()[0].vips_set());
}

// vrrp_scheduler.c vrrp_init_state: `state MASTER` without a sync group still starts BACKUP and
// waits a full Master_Down_Interval (keepalived 2.2 has no separate transition phase).
#[test]
fn state_master_alone_waits_full_down_interval() {
    let mut r = router(inst(150, InitialState::Master));
    assert_eq!(r.instances()[0].state(), VrrpState::Backup);
    assert_eq!(until_master(&mut r), at_us(3_000_000 + 414_062));
}

// RFC 3768 6.4.1: the address owner (priority 255) becomes MASTER immediately (keepalived: 1 µs).
#[test]
fn address_owner_becomes_master_at_once() {
    let mut r = router(inst(255, InitialState::Master));
    assert_eq!(until_master(&mut r), at_us(1));
    let out = drain(&mut r);
    assert_eq!(adverts(&out), vec![(MCAST_V4, 255)]);
}

// RFC 3768 6.4.2: priority 0 sets Master_Down_Timer to Skew_Time.
#[test]
fn backup_on_priority_zero_waits_skew_only() {
    let mut r = router(inst(100, InitialState::Backup));
    drain(&mut r);
    let t = Instant::from_secs(1);
    let out = rx(&mut r, t, ip(2), advert_from(0, 1));
    assert_eq!(
        logs(&out),
        vec!["(VI) Backup received priority 0 advertisement"]
    );
    assert_eq!(r.poll_timeout(), Some(t + Duration::from_micros(609_375)));
}

// RFC 3768 6.4.2: a higher (or equal) priority advert resets the down timer.
#[test]
fn backup_accepts_higher_priority_and_resets_timer() {
    let mut r = router(inst(100, InitialState::Backup));
    drain(&mut r);
    let t = Instant::from_secs(2);
    let out = rx(&mut r, t, ip(2), advert_from(200, 1));
    assert!(out.is_empty());
    assert_eq!(r.poll_timeout(), Some(t + Duration::from_micros(3_609_375)));
}

// vrrp.c vrrp_state_backup: lower priority with preemption is discarded, the timer keeps running.
#[test]
fn backup_discards_lower_priority_when_preempting() {
    let mut r = router(inst(100, InitialState::Backup));
    drain(&mut r);
    let before = r.poll_timeout();
    let out = rx(&mut r, Instant::from_secs(1), ip(2), advert_from(50, 1));
    assert_eq!(
        logs(&out),
        vec!["(VI) received lower priority (50) advert from 10.0.0.2 - discarding"]
    );
    assert_eq!(r.poll_timeout(), before);
}

// vrrp.c vrrp_state_backup: with nopreempt a lower priority master is accepted.
#[test]
fn nopreempt_backup_accepts_lower_priority() {
    let mut c = inst(100, InitialState::Backup);
    c.nopreempt = true;
    let mut r = router(c);
    drain(&mut r);
    let t = Instant::from_secs(1);
    assert!(rx(&mut r, t, ip(2), advert_from(50, 1)).is_empty());
    assert_eq!(r.poll_timeout(), Some(t + Duration::from_micros(3_609_375)));
}

// vrrp_check_packet: bad password / interval are dropped (logged), state untouched.
#[test]
fn bad_auth_and_interval_are_dropped() {
    let mut c = inst(100, InitialState::Backup);
    c.auth = Auth::Pass(*b"1111\0\0\0\0");
    let mut r = router(c);
    drain(&mut r);
    let before = r.poll_timeout();
    let mut a = advert_from(200, 1);
    a.auth = Auth::Pass(*b"2222\0\0\0\0");
    let out = rx(&mut r, Instant::from_secs(1), ip(2), a);
    assert_eq!(logs(&out), vec!["(VI) received an invalid passwd!"]);
    assert_eq!(r.poll_timeout(), before);
    let mut a = advert_from(200, 2);
    a.auth = Auth::Pass(*b"1111\0\0\0\0");
    let out = rx(&mut r, Instant::from_secs(1), ip(2), a);
    assert_eq!(
        logs(&out),
        vec!["(VI) advertisement interval mismatch mine=1 sec rcv'd=2 sec"]
    );
    assert_eq!(r.poll_timeout(), before);
}

// vrrp.c vrrp_state_master_rx: a lower priority advert makes the master advertise at once.
#[test]
fn master_forces_new_election_on_lower_priority() {
    let mut r = router(inst(220, InitialState::Backup));
    let t = until_master(&mut r);
    drain(&mut r);
    let t2 = t + Duration::from_millis(300);
    let out = rx(&mut r, t2, ip(2), advert_from(120, 1));
    let l = logs(&out);
    assert_eq!(
        l[..2],
        [
            "(VI) Received advert from 10.0.0.2 with lower priority 120, ours 220, forcing new election"
                .to_string(),
            "(VI) Sending/queueing gratuitous ARPs on eth0 for 10.0.0.100".into()
        ]
    );
    // vrrp_arp.c send_gratuitous_arp logs every packet in detail mode.
    assert_eq!(
        l[2..],
        vec!["Sending gratuitous ARP on eth0 for 10.0.0.100".to_string(); 5]
    );
    assert_eq!(adverts(&out), vec![(MCAST_V4, 220)]);
    // garp_lower_prio_repeat defaults to garp_master_repeat: 5 GARPs now, 5 more after 5 s.
    assert_eq!(garps(&out), 5);
    // The advert timer restarts from this advert.
    assert_eq!(r.poll_timeout(), Some(t2 + Duration::from_secs(1)));
    assert_eq!(r.instances()[0].state(), VrrpState::Master);
    // t + 5 s: the becoming-master second burst; t2 + 5 s: the lower-priority one.
    r.handle_timeout(t + Duration::from_secs(5));
    assert_eq!(garps(&drain(&mut r)), 5);
    r.handle_timeout(t2 + Duration::from_millis(4999));
    assert_eq!(garps(&drain(&mut r)), 0);
    r.handle_timeout(t2 + Duration::from_secs(5));
    assert_eq!(garps(&drain(&mut r)), 5);
}

// RFC 3768 6.4.3: higher priority -> BACKUP, VIPs removed, no priority-0 advert.
#[test]
fn master_yields_to_higher_priority() {
    let mut r = router(inst(120, InitialState::Backup));
    let t = until_master(&mut r);
    drain(&mut r);
    let out = rx(
        &mut r,
        t + Duration::from_millis(10),
        ip(2),
        advert_from(220, 1),
    );
    assert_eq!(
        logs(&out),
        vec![
            "(VI) Master received advert from 10.0.0.2 with higher priority 220, ours 120",
            "(VI) Entering BACKUP STATE",
            "(VI) removing VIPs."
        ]
    );
    assert!(adverts(&out).is_empty());
    assert!(out.contains(&VrrpOutput::DelVip(Vip {
        iface: "eth0".into(),
        addr: ip(100),
        prefix: 32
    })));
    assert_eq!(r.instances()[0].state(), VrrpState::Backup);
}

// RFC 3768 6.4.3: equal priority, the higher primary address wins.
#[test]
fn equal_priority_tie_break_on_address() {
    let mut r = router(inst(100, InitialState::Backup));
    let t = until_master(&mut r);
    drain(&mut r);
    let out = rx(&mut r, t, ip(0), advert_from(100, 1));
    assert_eq!(
        logs(&out)[0],
        "(VI) Received advert from 10.0.0.0 with lower priority 100, ours 100, forcing new election"
    );
    let out = rx(&mut r, t, ip(9), advert_from(100, 1));
    assert_eq!(
        logs(&out)[0],
        "(VI) Master received advert from 10.0.0.9 with same priority 100 but higher IP address than ours"
    );
    assert_eq!(r.instances()[0].state(), VrrpState::Backup);
}

// RFC 3768 6.4.3: a master receiving priority 0 sends an advert at once and stays MASTER.
#[test]
fn master_answers_priority_zero() {
    let mut r = router(inst(100, InitialState::Backup));
    let t = until_master(&mut r);
    drain(&mut r);
    let out = rx(&mut r, t, ip(2), advert_from(0, 1));
    assert_eq!(adverts(&out), vec![(MCAST_V4, 100)]);
    assert_eq!(logs(&out), vec!["(VI) Master received priority 0 message"]);
}

// RFC 5798 6.4.2: a v3 backup adopts the master's advert interval for its down timer.
#[test]
fn v3_backup_adopts_master_interval() {
    let mut c = inst(100, InitialState::Backup);
    c.version = Version::V3;
    let mut r = router(c);
    drain(&mut r);
    let mut a = advert_from(200, 1);
    a.version = Version::V3;
    a.advert_int_cs = 250;
    let t = Instant::from_secs(1);
    let out = rx(&mut r, t, ip(2), a);
    assert_eq!(
        logs(&out),
        vec!["(VI) advertisement interval updated from 1000ms to 2500ms by master"]
    );
    let i = &r.instances()[0];
    assert_eq!(i.master_adver_int(), Duration::from_millis(2500));
    // 3 * 2.5 s + 156 * 250 cs * 625 / 16 µs.
    assert_eq!(
        i.master_down_interval(),
        Duration::from_micros(7_500_000 + 1_523_437)
    );
    assert_eq!(r.poll_timeout(), Some(t + i.master_down_interval()));
}

// vrrp.c vrrp_state_become_master + vrrp_gratuitous_arp_thread: 5 GARPs now, 5 after 5 s.
#[test]
fn garp_bursts_on_becoming_master() {
    let mut r = router(inst(255, InitialState::Master));
    let t = until_master(&mut r);
    let out = drain(&mut r);
    assert_eq!(garps(&out), 5);
    assert!(logs(&out)
        .contains(&"(VI) Sending/queueing gratuitous ARPs on eth0 for 10.0.0.100".to_string()));
    r.handle_timeout(t + Duration::from_millis(4999));
    assert_eq!(garps(&drain(&mut r)), 0);
    r.handle_timeout(t + Duration::from_secs(5));
    assert_eq!(garps(&drain(&mut r)), 5);
    r.handle_timeout(t + Duration::from_secs(20));
    assert_eq!(garps(&drain(&mut r)), 0);
}

// keepalived unicast_peer: one advert per peer, from unicast_src_ip.
#[test]
fn unicast_peers_get_one_advert_each() {
    let mut c = inst(255, InitialState::Master);
    c.src_ip = Some(ip(1));
    c.unicast_peers = vec![ip(2), ip(3)];
    let mut r = router(c);
    until_master(&mut r);
    let out = drain(&mut r);
    let sent: Vec<(Option<IpAddr>, IpAddr)> = out
        .iter()
        .filter_map(|o| match o {
            VrrpOutput::SendAdvert { src, dst, .. } => Some((*src, *dst)),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![(Some(ip(1)), ip(2)), (Some(ip(1)), ip(3))]);
    // A multicast advert on a unicast instance is dropped.
    let out = rx(&mut r, Instant::from_secs(1), ip(2), advert_from(100, 1));
    assert_eq!(
        logs(&out),
        vec!["(VI) Expected unicast packet but received multicast packet"]
    );
}

// vrrp_track.c down_instance / try_up_instance: the instance's own interface going down means
// FAULT (with a priority-0 advert from a master), coming up means BACKUP.
#[test]
fn own_interface_down_is_fault() {
    let mut r = router(inst(100, InitialState::Backup));
    let t = until_master(&mut r);
    drain(&mut r);
    r.handle_input(
        t,
        VrrpInput::Link {
            iface: "eth0".into(),
            up: false,
        },
    );
    let out = drain(&mut r);
    assert_eq!(
        logs(&out)[..2],
        [
            "Netlink reports eth0 down".to_string(),
            "(VI) Entering FAULT STATE".into()
        ]
    );
    assert!(adverts(&out).iter().all(|&(_, p)| p == 0) && !adverts(&out).is_empty());
    assert_eq!(r.instances()[0].state(), VrrpState::Fault);
    assert_eq!(r.poll_timeout(), None);
    r.handle_input(
        t,
        VrrpInput::Link {
            iface: "eth0".into(),
            up: true,
        },
    );
    let out = drain(&mut r);
    assert_eq!(
        logs(&out),
        vec!["Netlink reports eth0 up", "(VI) Entering BACKUP STATE"]
    );
    assert_eq!(r.instances()[0].state(), VrrpState::Backup);
}

// keepalived_netlink.c process_if_status_change: a weighted track_interface moves the priority;
// vrrp_set_effective_priority clamps to 1..=254.
#[test]
fn weighted_track_interface_changes_priority() {
    let mut c = inst(100, InitialState::Backup);
    c.track_interfaces = vec![TrackInterface {
        iface: "eth9".into(),
        weight: -200,
        reverse: false,
    }];
    let mut r = router(c);
    drain(&mut r);
    let before = r.poll_timeout().unwrap();
    r.handle_input(
        Instant::from_secs(1),
        VrrpInput::Link {
            iface: "eth9".into(),
            up: false,
        },
    );
    let out = drain(&mut r);
    assert_eq!(
        logs(&out),
        vec![
            "Netlink reports eth9 down",
            "(VI) Changing effective priority from 100 to 1"
        ]
    );
    assert_eq!(r.instances()[0].effective_priority(), 1);
    // The running down timer moves by the change in skew: (255 - 156) / 256 s.
    assert_eq!(
        r.poll_timeout(),
        Some(before + Duration::from_micros(996_093 - 609_375))
    );
}

// vrrp_track.c process_script_update_priority: negative weight subtracts while failing; a
// weight-0 script failing means FAULT.
#[test]
fn track_script_weights_and_fault() {
    let mut c = inst(100, InitialState::Backup);
    c.track_scripts = vec![
        TrackScript {
            script: "chk".into(),
            weight: Some(-30),
            reverse: false,
        },
        TrackScript {
            script: "hard".into(),
            weight: None,
            reverse: false,
        },
    ];
    let cfg = RouterConfig {
        instances: vec![c],
        scripts: vec![
            ScriptConfig::new("chk"),
            ScriptConfig {
                weight: 0,
                ..ScriptConfig::new("hard")
            },
        ],
        ..Default::default()
    };
    let mut r = started(cfg);
    let out = drain(&mut r);
    // The weight-0 script has not run yet: FAULT until it reports (vrrp_init_state logs
    // nothing for it, and sends no notify).
    assert_eq!(logs(&out), vec!["(VI) removing VIPs."]);
    assert!(!out.iter().any(|o| matches!(o, VrrpOutput::Notify { .. })));
    assert_eq!(r.instances()[0].state(), VrrpState::Fault);
    let runs = out
        .iter()
        .filter(|o| matches!(o, VrrpOutput::RunScript { .. }))
        .count();
    assert_eq!(runs, 2);
    let t = Instant::from_millis(10);
    r.handle_input(
        t,
        VrrpInput::ScriptResult {
            script: "hard".into(),
            status: 0,
        },
    );
    let out = drain(&mut r);
    assert_eq!(
        logs(&out),
        vec!["VRRP_Script(hard) succeeded", "(VI) Entering BACKUP STATE"]
    );
    r.handle_input(
        t,
        VrrpInput::ScriptResult {
            script: "chk".into(),
            status: 1,
        },
    );
    let out = drain(&mut r);
    assert_eq!(
        logs(&out),
        vec![
            "Script `chk` now returning 1",
            "VRRP_Script(chk) failed (exited with status 1)",
            "(VI) Changing effective priority from 100 to 70"
        ]
    );
    r.handle_input(
        t,
        VrrpInput::ScriptResult {
            script: "hard".into(),
            status: 2,
        },
    );
    drain(&mut r);
    assert_eq!(r.instances()[0].state(), VrrpState::Fault);
    // Scripts run again every interval.
    r.handle_timeout(Instant::from_secs(1));
    let runs = drain(&mut r)
        .iter()
        .filter(|o| matches!(o, VrrpOutput::RunScript { .. }))
        .count();
    assert_eq!(runs, 2);
}

// vrrp_daemon.c stop_vrrp: SIGTERM sends priority 0, drops the VIPs, notifies STOP, then silence.
#[test]
fn stop_sends_priority_zero_and_releases() {
    let mut r = router(inst(255, InitialState::Master));
    let t = until_master(&mut r);
    drain(&mut r);
    r.handle_input(t, VrrpInput::Stop);
    let out = drain(&mut r);
    assert_eq!(adverts(&out), vec![(MCAST_V4, 0)]);
    assert!(out.contains(&VrrpOutput::DelVip(Vip {
        iface: "eth0".into(),
        addr: ip(100),
        prefix: 32
    })));
    assert!(out
        .iter()
        .any(|o| matches!(o, VrrpOutput::Notify { change: c, .. } if c.state == VrrpState::Stop)));
    assert_eq!(r.poll_timeout(), None);
    r.handle_timeout(t + Duration::from_secs(100));
    assert!(drain(&mut r).is_empty());
}

#[test]
fn bad_configs_are_refused() {
    use super::router::RouterError;
    use super::sync_group::SyncGroupConfig;
    let a = inst(100, InitialState::Backup);
    let mut b = a.clone();
    b.name = "OTHER".into();
    let cfg = RouterConfig {
        instances: vec![a.clone(), b],
        ..Default::default()
    };
    assert!(matches!(
        VrrpRouter::new(cfg),
        Err(RouterError::DuplicateVrid(..))
    ));
    let cfg = RouterConfig {
        instances: vec![a],
        sync_groups: vec![SyncGroupConfig {
            name: "G".into(),
            members: vec!["NOPE".into()],
            notify: Default::default(),
        }],
        ..Default::default()
    };
    let err = VrrpRouter::new(cfg).unwrap_err();
    assert_eq!(
        err.to_string(),
        "virtual router NOPE specified in sync group G doesn't exist"
    );
}

// RFC 5798 5.1.2.2: IPv6 adverts go to ff02::12, and the v3 advert carries centiseconds.
#[test]
fn v3_ipv6_adverts_go_to_ff02_12() {
    use super::instance::MCAST_V6;
    let v6 = |last: u16| IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, last]);
    let mut c = InstanceConfig::new("V6", "eth0", 9, v6(1));
    c.version = Version::V3;
    c.priority = 255;
    c.state = Some(InitialState::Master);
    c.advert_int = Duration::from_millis(250);
    c.vips = vec![VirtualAddress::host(v6(100))];
    let mut r = router(c);
    until_master(&mut r);
    let out = drain(&mut r);
    let sent: Vec<&Advert> = out
        .iter()
        .filter_map(|o| match o {
            VrrpOutput::SendAdvert { dst, advert, .. } if *dst == MCAST_V6 => Some(advert),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].version, sent[0].advert_int_cs, &sent[0].auth),
        (Version::V3, 25, &Auth::None)
    );
    assert!(logs(&out)
        .contains(&"Sending unsolicited Neighbour Advert on eth0 for fd00::64".to_string()));
    assert!(out.contains(&VrrpOutput::AddVip(Vip {
        iface: "eth0".into(),
        addr: v6(100),
        prefix: 128
    })));
}

// vrrp.c vrrp_state_master_tx: with garp_master_refresh, the first advert sent after the refresh
// time has passed carries a GARP round (garp_master_refresh_repeat of them).
#[test]
fn garp_refresh_rides_on_adverts() {
    let mut c = inst(255, InitialState::Master);
    c.garp_master_delay = Duration::ZERO;
    c.garp_master_refresh = Duration::from_millis(2500);
    c.garp_master_refresh_repeat = 2;
    let mut r = router(c);
    let t = until_master(&mut r);
    drain(&mut r);
    let mut seen = Vec::new();
    for k in 1..=6 {
        r.handle_timeout(t + Duration::from_secs(k));
        seen.push(garps(&drain(&mut r)));
    }
    // Refresh due at t+2.5 s: sent with the t+3 s advert, next due t+5.5 s: sent at t+6 s.
    assert_eq!(seen, vec![0, 0, 2, 0, 0, 2]);
}

// A zero-interval vrrp_script re-arms at the instant it ran: one handle_timeout runs at most
// MAX_TIMER_STEPS timers, says so, and leaves the rest due (nothing is dropped silently).
#[test]
fn timer_work_is_bounded_and_said() {
    use super::router::MAX_TIMER_STEPS;
    let mut c = inst(100, InitialState::Backup);
    c.track_scripts = vec![TrackScript {
        script: "spin".into(),
        weight: Some(10),
        reverse: false,
    }];
    let mut r = started(RouterConfig {
        instances: vec![c],
        scripts: vec![ScriptConfig {
            interval: Duration::ZERO,
            ..ScriptConfig::new("spin")
        }],
        ..Default::default()
    });
    drain(&mut r);
    r.handle_timeout(Instant::ZERO);
    let out = drain(&mut r);
    let runs = out
        .iter()
        .filter(|o| matches!(o, VrrpOutput::RunScript { .. }))
        .count();
    assert_eq!(runs, MAX_TIMER_STEPS);
    let said = format!(
        "VRRP: {MAX_TIMER_STEPS} timers ran at once and more are due; running them at the next wakeup"
    );
    assert!(out
        .iter()
        .any(|o| matches!(o, VrrpOutput::Log { text } if *text == said)));
    assert_eq!(r.poll_timeout(), Some(Instant::ZERO));
}

// vrrp_complete_instance counts unicast keywords with unicast_fault_no_peer and no peer as a
// config fault (fixtures/keepalived-t/unicast.run.txt): the instance never leaves FAULT, logs
// no transition and sends nothing, while its neighbour runs on.
#[test]
fn a_config_fault_holds_the_instance_in_fault() {
    let mut held = inst(100, InitialState::Backup);
    held.name = "U3".into();
    held.config_faults = 1;
    let mut other = inst(100, InitialState::Backup);
    other.name = "U1".into();
    other.vrid = 8;
    let mut r = started(RouterConfig {
        instances: vec![held, other],
        ..Default::default()
    });
    let mut out = drain(&mut r);
    for s in 1..=10 {
        r.handle_timeout(Instant::from_secs(s));
        out.extend(drain(&mut r));
    }
    assert_eq!(r.instances()[0].state(), VrrpState::Fault);
    assert_eq!(r.instances()[1].state(), VrrpState::Master);
    let said = logs(&out);
    assert!(
        said.iter().all(|l| !l.starts_with("(U3) Entering")),
        "{said:#?}"
    );
    assert!(
        said.iter().any(|l| l == "(U1) Entering MASTER STATE"),
        "{said:#?}"
    );
    // Only U1's adverts (VRID 8) go out.
    let vrids: Vec<u8> = out
        .iter()
        .filter_map(|o| match o {
            VrrpOutput::SendAdvert { advert, .. } => Some(advert.vrid),
            _ => None,
        })
        .collect();
    assert!(
        !vrids.is_empty() && vrids.iter().all(|v| *v == 8),
        "{vrids:?}"
    );
}
