//! IPVS object tests.

use super::*;
use crate::ipvs::conn::TcpState;
use crate::ipvs::sched::SchedFlags;
use crate::ipvs::service::{DestSpec, ServiceSpec};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

const VIP: &str = "10.0.0.1";

fn skey() -> ServiceKey {
    ServiceKey::Inet {
        proto: Protocol::Tcp,
        addr: VIP.parse().unwrap(),
        port: 80,
    }
}

fn spec(persistence: Option<u32>, prefix: u8) -> ServiceSpec {
    ServiceSpec {
        key: skey(),
        scheduler: crate::ipvs::sched::SchedKind::Rr,
        flags: SchedFlags::default(),
        persistence,
        netmask_prefix: prefix,
        one_packet: false,
    }
}

fn dest(last: u8, u: u32, l: u32) -> DestSpec {
    DestSpec {
        addr: format!("10.0.0.{last}").parse().unwrap(),
        port: 80,
        fwd: FwdMethod::Route,
        weight: 1,
        u_threshold: u,
        l_threshold: l,
    }
}

fn pkt(client: &str, sport: u16, tcp: TcpFlags) -> PacketInfo {
    PacketInfo {
        proto: Protocol::Tcp,
        src: client.parse().unwrap(),
        sport,
        dst: VIP.parse().unwrap(),
        dport: 80,
        tcp,
        sctp: Default::default(),
        fwmark: 0,
        len: 40,
    }
}

fn counts(ipvs: &Ipvs, last: u8) -> (u32, u32, u32, bool) {
    let d = ipvs
        .service(&skey())
        .unwrap()
        .dest(format!("10.0.0.{last}").parse().unwrap(), 80)
        .unwrap();
    (d.activeconns, d.inactconns, d.persistconns, d.overloaded)
}

fn dest_of(v: Verdict) -> Option<IpAddr> {
    match v {
        Verdict::Forward(f) => Some(f.dest.0),
        _ => None,
    }
}

/// An `rr` service (`persistence`, netmask `prefix`) with real servers 10.0.0.11 and .12.
fn two_servers(opts: IpvsOptions, persistence: Option<u32>, prefix: u8) -> Ipvs {
    let mut ipvs = Ipvs::new(opts, 0);
    ipvs.add_service(spec(persistence, prefix)).unwrap();
    ipvs.add_dest(&skey(), &dest(11, 0, 0)).unwrap();
    ipvs.add_dest(&skey(), &dest(12, 0, 0)).unwrap();
    ipvs
}

/// The real server a SYN from `client:sport` at time zero is forwarded to.
fn syn_dest(ipvs: &mut Ipvs, client: &str, sport: u16, rng: &mut ChaCha8Rng) -> Option<IpAddr> {
    dest_of(ipvs.process(Instant::ZERO, &pkt(client, sport, TcpFlags::SYN), rng))
}

#[test]
fn syn_is_inactive_until_established_then_dr_close_waits_fin_timeout() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut ipvs = Ipvs::default();
    ipvs.add_service(spec(None, 32)).unwrap();
    ipvs.add_dest(&skey(), &dest(11, 0, 0)).unwrap();
    let t0 = Instant::ZERO;
    let v = ipvs.process(t0, &pkt("192.0.2.7", 1000, TcpFlags::SYN), &mut rng);
    assert!(matches!(v, Verdict::Forward(Forward { new: true, .. })));
    // New connections start INACTIVE (the destination's conn_flags), SYN_RECV keeps them so.
    assert_eq!(counts(&ipvs, 11), (0, 1, 0, false));
    ipvs.process(t0, &pkt("192.0.2.7", 1000, TcpFlags::ACK), &mut rng);
    assert_eq!(counts(&ipvs, 11), (1, 0, 0, false));
    // DR: input-only table, the client's FIN goes to FIN_WAIT (120 s).
    ipvs.process(t0, &pkt("192.0.2.7", 1000, TcpFlags::FIN_ACK), &mut rng);
    assert_eq!(counts(&ipvs, 11), (0, 1, 0, false));
    let c = ipvs.conn_infos()[0].conn;
    assert_eq!(c.state, TcpState::FinWait as u8);
    // The wakeup may come early (the SYN_RECV timer was pushed back lazily), never late.
    let mut wake = ipvs.poll_timeout().expect("armed");
    while wake < Instant::from_secs(120) {
        ipvs.handle_timeout(wake);
        assert_eq!(counts(&ipvs, 11), (0, 1, 0, false));
        wake = ipvs.poll_timeout().expect("armed");
    }
    assert_eq!(wake, Instant::from_secs(120));
    ipvs.handle_timeout(Instant::from_secs(119));
    assert_eq!(counts(&ipvs, 11), (0, 1, 0, false));
    ipvs.handle_timeout(Instant::from_secs(120));
    assert_eq!(counts(&ipvs, 11), (0, 0, 0, false));
    assert!(ipvs.conns().is_empty());
}

/// The non-persistent service with one NAT destination, .11.
fn nat_table() -> Ipvs {
    let mut ipvs = Ipvs::default();
    ipvs.add_service(spec(None, 32)).unwrap();
    let mut d = dest(11, 0, 0);
    d.fwd = FwdMethod::Masq;
    ipvs.add_dest(&skey(), &d).unwrap();
    ipvs
}

#[test]
fn syn_reusing_a_closed_port_is_scheduled_anew() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut ipvs = nat_table();
    ipvs.add_dest(&skey(), &{
        let mut d = dest(12, 0, 0);
        d.fwd = FwdMethod::Masq;
        d
    })
    .unwrap();
    let p = |f| pkt("192.0.2.7", 1, f);
    let a = dest_of(ipvs.process(Instant::ZERO, &p(TcpFlags::SYN), &mut rng)).unwrap();
    // (A RST in SYN_RECV keeps SYN_RECV on input; from ESTABLISHED it closes.)
    ipvs.process(Instant::ZERO, &p(TcpFlags::ACK), &mut rng);
    ipvs.process(Instant::ZERO, &p(TcpFlags::RST), &mut rng);
    assert_eq!(ipvs.conn_infos()[0].conn.state, TcpState::Close as u8);
    // CLOSE + SYN with conn_reuse_mode 1: a new connection, rr moves on.
    let b = ipvs.process(Instant::ZERO, &p(TcpFlags::SYN), &mut rng);
    assert!(matches!(b, Verdict::Forward(Forward { new: true, .. })));
    assert_ne!(Some(a), dest_of(b));
    assert_eq!(ipvs.conns().len(), 1);
    // With the mode off the old entry is reused.
    ipvs.set_options(IpvsOptions {
        conn_reuse_mode: 0,
        ..IpvsOptions::default()
    });
    ipvs.process(Instant::ZERO, &p(TcpFlags::ACK), &mut rng);
    ipvs.process(Instant::ZERO, &p(TcpFlags::RST), &mut rng);
    let c = ipvs.process(Instant::ZERO, &p(TcpFlags::SYN), &mut rng);
    assert!(matches!(c, Verdict::Forward(Forward { new: false, .. })));
}

#[test]
fn non_syn_without_connection_passes_unscheduled() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut ipvs = Ipvs::default();
    ipvs.add_service(spec(None, 32)).unwrap();
    ipvs.add_dest(&skey(), &dest(11, 0, 0)).unwrap();
    assert_eq!(
        ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 1, TcpFlags::ACK), &mut rng),
        Verdict::Pass
    );
    assert!(ipvs.conns().is_empty());
}

#[test]
fn upper_threshold_sets_overload_and_three_quarters_clears_it() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut ipvs = Ipvs::default();
    ipvs.add_service(spec(None, 32)).unwrap();
    ipvs.add_dest(&skey(), &dest(11, 4, 0)).unwrap();
    for p in 0..4 {
        let v = ipvs.process(Instant::ZERO, &pkt("192.0.2.7", p, TcpFlags::SYN), &mut rng);
        assert!(dest_of(v).is_some());
    }
    assert_eq!(counts(&ipvs, 11), (0, 4, 0, true));
    // Overloaded and alone: no destination.
    let v = ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 9, TcpFlags::SYN), &mut rng);
    assert_eq!(v, Verdict::Drop(DropReason::NoDest));
    // SYN_RECV times out after 60 s... in the order of creation; after
    // one goes total = 3, 3*4 < 4*3 is false: still overloaded; after two it clears.
    let ids: Vec<ConnId> = ipvs.conns().entries().iter().map(|c| c.id).collect();
    let x = ipvs.conns.remove(ids[0]).unwrap();
    ipvs.drop_entry(&x);
    assert_eq!(counts(&ipvs, 11), (0, 3, 0, true));
    let x = ipvs.conns.remove(ids[1]).unwrap();
    ipvs.drop_entry(&x);
    assert_eq!(counts(&ipvs, 11), (0, 2, 0, false));
}

#[test]
fn lower_threshold_clears_overload_below_it() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut ipvs = Ipvs::default();
    ipvs.add_service(spec(None, 32)).unwrap();
    ipvs.add_dest(&skey(), &dest(11, 3, 1)).unwrap();
    for p in 0..3 {
        ipvs.process(Instant::ZERO, &pkt("192.0.2.7", p, TcpFlags::SYN), &mut rng);
    }
    assert!(counts(&ipvs, 11).3);
    let ids: Vec<ConnId> = ipvs.conns().entries().iter().map(|c| c.id).collect();
    for (n, id) in ids.iter().enumerate() {
        let x = ipvs.conns.remove(*id).unwrap();
        ipvs.drop_entry(&x);
        // Clears only when total < l_threshold = 1.
        assert_eq!(counts(&ipvs, 11).3, n < 2, "after {} removed", n + 1);
    }
}

#[test]
fn persistence_template_pins_a_masked_client_and_expires() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut ipvs = two_servers(IpvsOptions::default(), Some(300), 24);
    let first = syn_dest(&mut ipvs, "192.0.2.7", 1, &mut rng);
    // Same /24, another client: same destination although rr would move on.
    let second = syn_dest(&mut ipvs, "192.0.2.99", 2, &mut rng);
    assert_eq!(first, second);
    let other = syn_dest(&mut ipvs, "198.51.100.1", 3, &mut rng);
    assert_ne!(first, other);
    let last = match first.unwrap() {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(_) => unreachable!(),
    };
    assert_eq!(counts(&ipvs, last).2, 1, "one template");
    // Connections (SYN_RECV, 60 s) go first; the template lives its 300 s.
    ipvs.handle_timeout(Instant::from_secs(299));
    assert_eq!(counts(&ipvs, last), (0, 0, 1, false));
    ipvs.handle_timeout(Instant::from_secs(300));
    assert_eq!(counts(&ipvs, last), (0, 0, 0, false));
}

#[test]
fn quiescent_template_expires_only_with_the_sysctl() {
    for expire in [false, true] {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let opts = IpvsOptions {
            expire_quiescent_template: expire,
            ..IpvsOptions::default()
        };
        let mut ipvs = two_servers(opts, Some(300), 32);
        let a = syn_dest(&mut ipvs, "192.0.2.7", 1, &mut rng).unwrap();
        let IpAddr::V4(a4) = a else { unreachable!() };
        let mut d = dest(a4.octets()[3], 0, 0);
        d.weight = 0;
        ipvs.edit_dest(&skey(), &d).unwrap();
        let b = syn_dest(&mut ipvs, "192.0.2.7", 2, &mut rng).unwrap();
        assert_eq!(a == b, !expire);
    }
}

#[test]
fn removed_destination_drops_or_reschedules_per_expire_nodest_conn() {
    for expire in [false, true] {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let opts = IpvsOptions {
            expire_nodest_conn: expire,
            ..IpvsOptions::default()
        };
        let mut ipvs = two_servers(opts, None, 32);
        let a = syn_dest(&mut ipvs, "192.0.2.7", 1, &mut rng).unwrap();
        ipvs.del_dest(&skey(), a, 80).unwrap();
        let v = ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 1, TcpFlags::SYN), &mut rng);
        if expire {
            let b = dest_of(v).unwrap();
            assert_ne!(a, b);
            assert_eq!(ipvs.conns().len(), 1);
        } else {
            assert_eq!(v, Verdict::Drop(DropReason::DestGone));
        }
    }
}

#[test]
fn readded_destination_gets_its_counters_back() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut ipvs = Ipvs::default();
    ipvs.add_service(spec(None, 32)).unwrap();
    ipvs.add_dest(&skey(), &dest(11, 0, 0)).unwrap();
    ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 1, TcpFlags::SYN), &mut rng);
    ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 1, TcpFlags::ACK), &mut rng);
    ipvs.del_dest(&skey(), "10.0.0.11".parse().unwrap(), 80)
        .unwrap();
    ipvs.add_dest(&skey(), &dest(11, 0, 0)).unwrap();
    assert_eq!(counts(&ipvs, 11), (1, 0, 0, false));
    ipvs.handle_timeout(Instant::from_secs(900));
    assert_eq!(counts(&ipvs, 11), (0, 0, 0, false));
}

// A NAT destination deleted while a connection still uses it (the kernel's trash) keeps
// translating that connection's replies; a table with no NAT destination has no reply.
#[test]
fn nat_replies_follow_the_connection_not_the_service_list() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut ipvs = nat_table();
    ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 5, TcpFlags::SYN), &mut rng);
    let reply = PacketInfo {
        proto: Protocol::Tcp,
        src: "10.0.0.11".parse().unwrap(),
        sport: 80,
        dst: "192.0.2.7".parse().unwrap(),
        dport: 5,
        tcp: TcpFlags::SYN_ACK,
        sctp: Default::default(),
        fwmark: 0,
        len: 40,
    };
    ipvs.del_dest(&skey(), dest(11, 0, 0).addr, 80).unwrap();
    assert!(matches!(
        ipvs.process_reply(Instant::ZERO, &reply),
        Verdict::Reply { .. }
    ));
    let mut dr = two_servers(IpvsOptions::default(), None, 32);
    dr.process(Instant::ZERO, &pkt("192.0.2.7", 5, TcpFlags::SYN), &mut rng);
    assert_eq!(dr.process_reply(Instant::ZERO, &reply), Verdict::Pass);
}

#[test]
fn nat_reply_is_matched_and_moves_state() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut ipvs = nat_table();
    ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 5, TcpFlags::SYN), &mut rng);
    let reply = PacketInfo {
        proto: Protocol::Tcp,
        src: "10.0.0.11".parse().unwrap(),
        sport: 80,
        dst: "192.0.2.7".parse().unwrap(),
        dport: 5,
        tcp: TcpFlags::SYN_ACK,
        sctp: Default::default(),
        fwmark: 0,
        len: 40,
    };
    let v = ipvs.process_reply(Instant::ZERO, &reply);
    assert!(matches!(
        v,
        Verdict::Reply {
            vaddr: SockAddr(_, 80),
            ..
        }
    ));
    ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 5, TcpFlags::ACK), &mut rng);
    assert_eq!(counts(&ipvs, 11), (1, 0, 0, false));
    // NAT: the client's FIN leads to CLOSE_WAIT (60 s), not FIN_WAIT.
    ipvs.process(
        Instant::ZERO,
        &pkt("192.0.2.7", 5, TcpFlags::FIN_ACK),
        &mut rng,
    );
    assert_eq!(ipvs.conn_infos()[0].conn.state, TcpState::CloseWait as u8);
}

/// `ip_vs_in_stats` / `ip_vs_out_stats` / `ip_vs_conn_stats`: a NAT connection's client
/// packets count In, its replies Out, both on the destination and its service; a removed
/// destination's traffic stays in the service's, and comes back with it from the trash.
#[test]
fn traffic_counts_in_and_out_per_destination_and_service() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut ipvs = nat_table();
    let syn = pkt("192.0.2.7", 5, TcpFlags::SYN);
    ipvs.process(Instant::ZERO, &syn, &mut rng);
    let reply = PacketInfo {
        proto: Protocol::Tcp,
        src: "10.0.0.11".parse().unwrap(),
        sport: 80,
        dst: "192.0.2.7".parse().unwrap(),
        dport: 5,
        tcp: TcpFlags::SYN_ACK,
        sctp: Default::default(),
        fwmark: 0,
        len: 60,
    };
    ipvs.process_reply(Instant::ZERO, &reply);
    let data = PacketInfo {
        len: 1040,
        ..pkt("192.0.2.7", 5, TcpFlags::ACK)
    };
    ipvs.process(Instant::ZERO, &data, &mut rng);
    // A reply that matches no connection is not IPVS's.
    ipvs.process_reply(Instant::ZERO, &PacketInfo { dport: 6, ..reply });
    let want = IpvsStats {
        conns: 1,
        in_pkts: 2,
        out_pkts: 1,
        in_bytes: 40 + 1040,
        out_bytes: 60,
    };
    let svc = || ipvs.service(&skey()).unwrap();
    assert_eq!(svc().dests()[0].stats, want);
    assert_eq!(*svc().stats(), want);
    ipvs.del_dest(&skey(), "10.0.0.11".parse().unwrap(), 80)
        .unwrap();
    assert_eq!(*ipvs.service(&skey()).unwrap().stats(), want);
    let mut d = dest(11, 0, 0);
    d.fwd = FwdMethod::Masq;
    ipvs.add_dest(&skey(), &d).unwrap();
    assert_eq!(ipvs.service(&skey()).unwrap().dests()[0].stats, want);
}

#[test]
fn synced_connection_installs_and_counts() {
    let mut ipvs = Ipvs::default();
    ipvs.add_service(spec(None, 32)).unwrap();
    ipvs.add_dest(&skey(), &dest(11, 0, 0)).unwrap();
    let s = SyncedConn {
        key: ConnKey {
            proto: 6,
            caddr: "192.0.2.7".parse().unwrap(),
            cport: 7,
            vaddr: VIP.parse().unwrap(),
            vport: 80,
        },
        template: false,
        inactive: false,
        state: TcpState::Established as u8,
        daddr: "10.0.0.11".parse().unwrap(),
        dport: 80,
        fwmark: 0,
        timeout: 900,
    };
    ipvs.install_synced(Instant::ZERO, &s).unwrap();
    assert_eq!(counts(&ipvs, 11), (1, 0, 0, false));
    let s2 = SyncedConn {
        inactive: true,
        state: TcpState::FinWait as u8,
        timeout: 120,
        ..s
    };
    ipvs.install_synced(Instant::from_secs(1), &s2).unwrap();
    assert_eq!(counts(&ipvs, 11), (0, 1, 0, false));
    assert_eq!(ipvs.poll_timeout(), Some(Instant::from_secs(121)));
}

#[derive(Clone, Debug)]
enum Step {
    Syn(u8, u16),
    Ack(u8, u16),
    Fin(u8, u16),
    Rst(u8, u16),
    Wait(u16),
    Weight(u8, i32),
    Del(u8),
    Add(u8),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0u8..6, 0u16..4).prop_map(|(c, p)| Step::Syn(c, p)),
        3 => (0u8..6, 0u16..4).prop_map(|(c, p)| Step::Ack(c, p)),
        2 => (0u8..6, 0u16..4).prop_map(|(c, p)| Step::Fin(c, p)),
        1 => (0u8..6, 0u16..4).prop_map(|(c, p)| Step::Rst(c, p)),
        2 => (0u16..400).prop_map(Step::Wait),
        1 => (11u8..14, 0i32..3).prop_map(|(d, w)| Step::Weight(d, w)),
        1 => (11u8..14).prop_map(Step::Del),
        1 => (11u8..14).prop_map(Step::Add),
    ]
}

proptest::proptest! {
    /// Destination counters always equal a recount of the connection
    /// table, whatever packets, timeouts and ipvsadm edits happen.
    #[test]
    fn counters_match_a_recount(
        persistent in proptest::bool::ANY,
        nodest in proptest::bool::ANY,
        steps in proptest::collection::vec(step(), 1..80),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let opts = IpvsOptions { expire_nodest_conn: nodest, ..IpvsOptions::default() };
        let mut ipvs = Ipvs::new(opts, 3);
        ipvs.add_service(spec(persistent.then_some(100), 32)).unwrap();
        for d in 11..14 {
            ipvs.add_dest(&skey(), &dest(d, 3, 0)).unwrap();
        }
        let mut now = Instant::ZERO;
        for st in steps {
            let client = |c: u8| format!("192.0.2.{c}");
            match st {
                Step::Syn(c, p) => { ipvs.process(now, &pkt(&client(c), p, TcpFlags::SYN), &mut rng); }
                Step::Ack(c, p) => { ipvs.process(now, &pkt(&client(c), p, TcpFlags::ACK), &mut rng); }
                Step::Fin(c, p) => { ipvs.process(now, &pkt(&client(c), p, TcpFlags::FIN_ACK), &mut rng); }
                Step::Rst(c, p) => { ipvs.process(now, &pkt(&client(c), p, TcpFlags::RST), &mut rng); }
                Step::Wait(s) => { now += std::time::Duration::from_secs(u64::from(s)); ipvs.handle_timeout(now); }
                Step::Weight(d, w) => {
                    let mut sp = dest(d, 3, 0);
                    sp.weight = w;
                    let _ = ipvs.edit_dest(&skey(), &sp);
                }
                Step::Del(d) => { let _ = ipvs.del_dest(&skey(), format!("10.0.0.{d}").parse().unwrap(), 80); }
                Step::Add(d) => { let _ = ipvs.add_dest(&skey(), &dest(d, 3, 0)); }
            }
            let mut want: BTreeMap<IpAddr, (u32, u32, u32)> = BTreeMap::new();
            for c in ipvs.conn_infos() {
                let Some(SockAddr(a, _)) = c.dest else { continue };
                let e = want.entry(a).or_default();
                if c.conn.template {
                    e.2 += 1;
                } else if c.conn.flags & flags::INACTIVE != 0 {
                    e.1 += 1;
                } else {
                    e.0 += 1;
                }
            }
            for d in ipvs.service(&skey()).unwrap().dests() {
                let w = want.get(&d.addr).copied().unwrap_or_default();
                proptest::prop_assert_eq!((d.activeconns, d.inactconns, d.persistconns), w, "{}", d.addr);
                proptest::prop_assert!(!d.overloaded || d.activeconns + d.inactconns >= 2);
            }
        }
        // Everything expires in the end, and every counter returns to zero.
        ipvs.handle_timeout(now + std::time::Duration::from_secs(100_000));
        proptest::prop_assert!(ipvs.conns().is_empty());
        for d in ipvs.service(&skey()).unwrap().dests() {
            proptest::prop_assert_eq!((d.activeconns, d.inactconns, d.persistconns), (0, 0, 0));
        }
    }
}
