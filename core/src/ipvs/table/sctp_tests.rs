//! SCTP through the IPVS object: hand traces of whole associations (NAT sees both ways, DR
//! only the client's), ABORTs, what may make a connection, reuse of a CLOSED one.

use super::*;
use crate::ipvs::conn::SctpState;
use crate::ipvs::service::{DestSpec, ServiceSpec};
use crate::wire::sctp::{chunk, ChunkTypes};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use SctpState as S;

const VIP: &str = "10.0.0.1";
const CLIENT: &str = "192.0.2.7";

fn skey() -> ServiceKey {
    ServiceKey::Inet {
        proto: Protocol::Sctp,
        addr: VIP.parse().unwrap(),
        port: 9,
    }
}

/// An `rr` SCTP service on VIP:9 with real servers 10.0.0.11 and .12 (`fwd`).
fn table(opts: IpvsOptions, fwd: FwdMethod) -> Ipvs {
    let mut ipvs = Ipvs::new(opts, 0);
    ipvs.add_service(ServiceSpec {
        key: skey(),
        scheduler: crate::ipvs::sched::SchedKind::Rr,
        flags: Default::default(),
        persistence: None,
        netmask_prefix: 32,
        one_packet: false,
    })
    .unwrap();
    for last in [11, 12] {
        let d = DestSpec {
            addr: format!("10.0.0.{last}").parse().unwrap(),
            port: 9,
            fwd,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        };
        ipvs.add_dest(&skey(), &d).unwrap();
    }
    ipvs
}

/// A client packet from port `sport` whose chunks are `c`.
fn from_client(sport: u16, c: ChunkTypes) -> PacketInfo {
    PacketInfo {
        proto: Protocol::Sctp,
        src: CLIENT.parse().unwrap(),
        sport,
        dst: VIP.parse().unwrap(),
        dport: 9,
        tcp: Default::default(),
        sctp: c,
        fwmark: 0,
        len: 100,
    }
}

/// The reply of real server `rs` to the client's port `sport`.
fn from_server(rs: IpAddr, sport: u16, c: ChunkTypes) -> PacketInfo {
    PacketInfo {
        src: rs,
        sport: 9,
        dst: CLIENT.parse().unwrap(),
        dport: sport,
        ..from_client(sport, c)
    }
}

fn one(kind: u8) -> ChunkTypes {
    ChunkTypes::of(kind)
}

/// The one connection's state, timeout and the active / inactive counts of its destination.
fn conn(ipvs: &Ipvs) -> (SctpState, u32, (u32, u32)) {
    let infos = ipvs.conn_infos();
    assert_eq!(infos.len(), 1, "{infos:?}");
    let c = infos[0].conn;
    let d = infos[0].dest.unwrap();
    let d = ipvs.service(&skey()).unwrap().dest(d.0, d.1).unwrap();
    (
        SctpState::from_u8(c.state).unwrap(),
        c.timeout,
        (d.activeconns, d.inactconns),
    )
}

#[test]
fn a_nat_association_walks_the_kernels_states_with_their_timeouts() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut ipvs = table(IpvsOptions::default(), FwdMethod::Masq);
    let t = Instant::ZERO;
    let v = ipvs.process(t, &from_client(5000, one(chunk::INIT)), &mut rng);
    let Verdict::Forward(f) = v else {
        panic!("{v:?}")
    };
    assert!(f.new);
    let rs = f.dest.0;
    assert_eq!(conn(&ipvs), (S::Init1, 4, (0, 1)));
    // (from the client, chunk, then: state, timeout, (active, inactive))
    type Step = (bool, u8, SctpState, u32, (u32, u32));
    let steps: [Step; 9] = [
        (false, chunk::INIT_ACK, S::CookieSent, 61, (0, 1)),
        (true, chunk::COOKIE_ECHO, S::CookieReplied, 61, (0, 1)),
        (false, chunk::COOKIE_ACK, S::Established, 900, (1, 0)),
        (true, chunk::DATA, S::Established, 900, (1, 0)),
        (false, chunk::SACK, S::Established, 900, (1, 0)),
        (false, chunk::DATA, S::Established, 900, (1, 0)),
        (true, chunk::SHUTDOWN, S::ShutdownReceived, 61, (0, 1)),
        (false, chunk::SHUTDOWN_ACK, S::ShutdownAckSent, 61, (0, 1)),
        (true, chunk::SHUTDOWN_COMPLETE, S::Closed, 61, (0, 1)),
    ];
    for (input, kind, state, timeout, counts) in steps {
        let v = if input {
            ipvs.process(t, &from_client(5000, one(kind)), &mut rng)
        } else {
            ipvs.process_reply(t, &from_server(rs, 5000, one(kind)))
        };
        assert!(
            matches!(v, Verdict::Forward(_) | Verdict::Reply { .. }),
            "{kind}: {v:?}"
        );
        assert_eq!(conn(&ipvs), (state, timeout, counts), "after chunk {kind}");
    }
    let listed = crate::ipvs::list::list_connections(&ipvs.conn_infos(), t);
    assert!(
        listed.contains(&format!("SCTP 01:01  CLOSED      {CLIENT}:5000")),
        "{listed}"
    );
    // CLOSED lasts its 61 s, then the entry goes.
    ipvs.handle_timeout(Instant::from_secs(60));
    assert_eq!(ipvs.conn_infos().len(), 1);
    ipvs.handle_timeout(Instant::from_secs(62));
    assert!(ipvs.conn_infos().is_empty());
}

#[test]
fn a_dr_association_is_read_from_the_clients_chunks_alone() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut ipvs = table(IpvsOptions::default(), FwdMethod::Route);
    let t = Instant::ZERO;
    let steps: [(u8, SctpState, u32, (u32, u32)); 6] = [
        (chunk::INIT, S::Init1, 4, (0, 1)),
        // The INIT ACK and COOKIE ACK go straight to the client: the COOKIE ECHO is the
        // sign the handshake went through.
        (chunk::COOKIE_ECHO, S::Established, 900, (1, 0)),
        (chunk::DATA, S::Established, 900, (1, 0)),
        (chunk::HEARTBEAT_ACK, S::Established, 900, (1, 0)),
        (chunk::SHUTDOWN, S::ShutdownReceived, 61, (0, 1)),
        (chunk::SHUTDOWN_COMPLETE, S::Closed, 61, (0, 1)),
    ];
    for (kind, state, timeout, counts) in steps {
        let v = ipvs.process(t, &from_client(5001, one(kind)), &mut rng);
        assert!(matches!(v, Verdict::Forward(_)), "{kind}: {v:?}");
        assert_eq!(conn(&ipvs), (state, timeout, counts), "after chunk {kind}");
    }
    // A retransmitted INIT while the first waits for its INIT ACK: INIT, 61 s.
    let mut ipvs = table(IpvsOptions::default(), FwdMethod::Route);
    ipvs.process(t, &from_client(5002, one(chunk::INIT)), &mut rng);
    ipvs.process(t, &from_client(5002, one(chunk::INIT)), &mut rng);
    assert_eq!(conn(&ipvs), (S::Init, 61, (0, 1)));
}

#[test]
fn aborts_close_or_reject() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let t = Instant::ZERO;
    // A real server with nothing listening answers the INIT with an ABORT: REJECTED, 4 s.
    let mut ipvs = table(IpvsOptions::default(), FwdMethod::Masq);
    let Verdict::Forward(f) = ipvs.process(t, &from_client(6000, one(chunk::INIT)), &mut rng)
    else {
        panic!()
    };
    ipvs.process_reply(t, &from_server(f.dest.0, 6000, one(chunk::ABORT)));
    assert_eq!(conn(&ipvs), (S::Rejected, 4, (0, 1)));
    ipvs.handle_timeout(Instant::from_secs(5));
    assert!(ipvs.conn_infos().is_empty());
    // The client aborts an established association: CLOSED.
    let mut ipvs = table(IpvsOptions::default(), FwdMethod::Route);
    ipvs.process(t, &from_client(6001, one(chunk::INIT)), &mut rng);
    ipvs.process(t, &from_client(6001, one(chunk::COOKIE_ECHO)), &mut rng);
    assert_eq!(conn(&ipvs), (S::Established, 900, (1, 0)));
    ipvs.process(t, &from_client(6001, one(chunk::ABORT)), &mut rng);
    assert_eq!(conn(&ipvs), (S::Closed, 61, (0, 1)));
    // A COOKIE ECHO bundled before an ABORT is the ABORT.
    let mut ipvs = table(IpvsOptions::default(), FwdMethod::Route);
    ipvs.process(t, &from_client(6002, one(chunk::INIT)), &mut rng);
    let bundled = ChunkTypes {
        first: chunk::COOKIE_ECHO,
        state: chunk::ABORT,
    };
    ipvs.process(t, &from_client(6002, bundled), &mut rng);
    assert_eq!(conn(&ipvs), (S::Closed, 61, (0, 1)));
}

#[test]
fn only_an_init_makes_a_connection_unless_sloppy() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let t = Instant::ZERO;
    let mut ipvs = table(IpvsOptions::default(), FwdMethod::Route);
    for kind in [
        chunk::DATA,
        chunk::COOKIE_ECHO,
        chunk::ABORT,
        chunk::SHUTDOWN,
    ] {
        let v = ipvs.process(t, &from_client(7000, one(kind)), &mut rng);
        assert_eq!(v, Verdict::Pass, "{kind}");
    }
    assert!(ipvs.conn_infos().is_empty());
    let sloppy = IpvsOptions {
        sloppy_sctp: true,
        ..IpvsOptions::default()
    };
    let mut ipvs = table(sloppy, FwdMethod::Route);
    // sloppy_sctp: anything but an ABORT is scheduled; a DATA on NONE is ESTABLISHED.
    assert_eq!(
        ipvs.process(t, &from_client(7001, one(chunk::ABORT)), &mut rng),
        Verdict::Pass
    );
    let v = ipvs.process(t, &from_client(7001, one(chunk::DATA)), &mut rng);
    assert!(matches!(v, Verdict::Forward(Forward { new: true, .. })));
    assert_eq!(conn(&ipvs), (S::Established, 900, (1, 0)));
}

#[test]
fn an_init_on_a_closed_association_is_scheduled_anew() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let t = Instant::ZERO;
    let mut ipvs = table(IpvsOptions::default(), FwdMethod::Route);
    let first = dest_of(ipvs.process(t, &from_client(8000, one(chunk::INIT)), &mut rng));
    ipvs.process(t, &from_client(8000, one(chunk::COOKIE_ECHO)), &mut rng);
    // An INIT on an ESTABLISHED one is the same connection (a restart the table ignores).
    let again = dest_of(ipvs.process(t, &from_client(8000, one(chunk::INIT)), &mut rng));
    assert_eq!(again, first);
    assert_eq!(conn(&ipvs).0, S::Established);
    ipvs.process(t, &from_client(8000, one(chunk::ABORT)), &mut rng);
    assert_eq!(conn(&ipvs).0, S::Closed);
    // CLOSED + INIT with conn_reuse_mode 1: a new connection, and rr moves on.
    let next = dest_of(ipvs.process(t, &from_client(8000, one(chunk::INIT)), &mut rng));
    assert!(next.is_some() && next != first, "{first:?} then {next:?}");
    assert_eq!(conn(&ipvs).0, S::Init1);
}

#[test]
fn the_sync_daemon_sends_the_states_the_kernel_sends() {
    use crate::ipvs::sync::{SyncConfig, SyncSender};
    use crate::wire::ipvs_sync::SyncMessageRepr;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let t = Instant::ZERO;
    let mut ipvs = table(IpvsOptions::default(), FwdMethod::Route);
    let mut tx = SyncSender::new(SyncConfig::default());
    // INIT1 is never synced, ESTABLISHED on the sync threshold's packet (the third), a move
    // to S-RECEIVED (a synced state) at once.
    for kind in [
        chunk::INIT,
        chunk::COOKIE_ECHO,
        chunk::DATA,
        chunk::SHUTDOWN,
    ] {
        let Verdict::Forward(f) = ipvs.process(t, &from_client(9000, one(kind)), &mut rng) else {
            panic!()
        };
        tx.on_packet(t, &mut ipvs, f.conn, f.in_pkts);
    }
    tx.handle_timeout(Instant::from_secs(2));
    let dgram = tx.poll_transmit().expect("flushed");
    let msg = SyncMessageRepr::parse(&dgram).unwrap();
    let states: Vec<(u8, u16, u32)> = msg
        .conns
        .iter()
        .map(|c| (c.protocol, c.state, c.timeout))
        .collect();
    assert_eq!(
        states,
        [
            (132, S::Established as u16, 900),
            (132, S::ShutdownReceived as u16, 61)
        ]
    );
}

fn dest_of(v: Verdict) -> Option<IpAddr> {
    match v {
        Verdict::Forward(f) => Some(f.dest.0),
        _ => None,
    }
}
