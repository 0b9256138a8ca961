//! Test helpers: building services, picking, and the proptest harness that
//! runs a scheduler and a naive reference model side by side.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::SchedFlags;
use crate::ipvs::service::{Dest, DestSpec, SchedPacket, Service, ServiceSpec};
use crate::ipvs::{FwdMethod, Protocol, ServiceKey};
use crate::time::Instant;

/// Real server `10.0.0.<id>`.
pub fn addr(id: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, id))
}

/// Spec of real server `10.0.0.<id>:80` with weight `w`.
pub fn spec(id: u8, w: i32) -> DestSpec {
    DestSpec {
        addr: addr(id),
        port: 80,
        fwd: FwdMethod::Route,
        weight: w,
        u_threshold: 0,
        l_threshold: 0,
    }
}

/// A fresh destination `10.0.0.<id>:80`.
pub fn dest(id: u8, w: i32) -> Dest {
    Dest::new(&spec(id, w))
}

/// The last octet of a destination's address (its test id).
pub fn id_of(d: &Dest) -> u8 {
    match d.addr {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(a) => a.octets()[15],
    }
}

/// A TCP service 10.0.0.100:80 with `dests` added in order (so listed newest first).
pub fn service_with(name: &str, flags: SchedFlags, dests: &[(u8, i32)]) -> Service {
    let spec = ServiceSpec {
        key: ServiceKey::Inet {
            proto: Protocol::Tcp,
            addr: addr(100),
            port: 80,
        },
        scheduler: name.parse().expect("scheduler"),
        flags,
        persistence: None,
        netmask_prefix: 32,
        one_packet: false,
    };
    let mut s = Service::new(spec);
    for &(id, w) in dests {
        add(&mut s, id, w);
    }
    s
}

/// [`service_with`] without flags.
pub fn service(name: &str, dests: &[(u8, i32)]) -> Service {
    service_with(name, SchedFlags::default(), dests)
}

/// `ipvsadm -a`.
pub fn add(s: &mut Service, id: u8, w: i32) {
    s.add_dest(&spec(id, w)).expect("add");
}

/// `ipvsadm -e` of the weight.
pub fn edit(s: &mut Service, id: u8, w: i32) {
    let d = s.dest(addr(id), 80).expect("exists").clone();
    let sp = DestSpec {
        weight: w,
        u_threshold: d.u_threshold,
        l_threshold: d.l_threshold,
        ..spec(id, w)
    };
    s.edit_dest(&sp).expect("edit");
}

/// `ipvsadm -d`.
pub fn del(s: &mut Service, id: u8) {
    s.del_dest(addr(id), 80).expect("del");
}

/// Set or clear IP_VS_DEST_F_OVERLOAD.
pub fn overload(s: &mut Service, id: u8, on: bool) {
    s.dest_mut(addr(id), 80).expect("exists").overloaded = on;
}

/// Set the connection counters.
pub fn counters(s: &mut Service, id: u8, active: u32, inact: u32) {
    let d = s.dest_mut(addr(id), 80).expect("exists");
    d.activeconns = active;
    d.inactconns = inact;
}

/// A packet from `src:sport` to the virtual service `dst:80`.
pub fn packet(src: IpAddr, sport: u16, dst: IpAddr) -> SchedPacket {
    SchedPacket {
        src,
        sport,
        dst,
        dport: 80,
    }
}

/// The default client packet (192.0.2.1:1000 -> 10.0.0.100:80).
pub fn default_packet() -> SchedPacket {
    packet(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 1000, addr(100))
}

/// One pick at time `now` for `pkt`, as a test id.
pub fn pick_at(s: &mut Service, now: Instant, pkt: &SchedPacket) -> Option<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    s.schedule_at(now, pkt, &mut rng)
        .map(|i| id_of(&s.dests()[i]))
}

/// One pick for the default packet, counters untouched.
pub fn pick(s: &mut Service) -> Option<u8> {
    pick_at(s, Instant::ZERO, &default_packet())
}

/// `n` picks for the default packet, counters untouched.
pub fn picks(s: &mut Service, n: usize) -> Vec<u8> {
    (0..n).map(|_| pick(s).expect("a destination")).collect()
}

/// What a reference model sees at a pick.
pub struct Ctx {
    /// Time of the pick.
    pub now: Instant,
    /// Packet fields.
    pub pkt: SchedPacket,
    /// Service `-b` flags.
    pub flags: SchedFlags,
}

/// A naive model of one kernel scheduler.
pub trait Reference {
    /// A destination was linked at the head of `list`.
    fn add(&mut self, _list: &[Dest]) {}
    /// The destination at `idx` was edited.
    fn edit(&mut self, _list: &[Dest], _idx: usize) {}
    /// `removed` was unlinked from `idx`; `after` is the list without it.
    fn del(&mut self, _after: &[Dest], _removed: &Dest, _idx: usize) {}
    /// Time moved to `now`.
    fn tick(&mut self, _now: Instant) {}
    /// The pick, as an index into `list`.
    fn schedule(
        &mut self,
        list: &[Dest],
        ctx: &Ctx,
        rng: &mut dyn rand_core::RngCore,
    ) -> Option<usize>;
}

/// A reference model that keeps no state: the pick depends on the list alone.
pub struct Stateless(pub fn(&[Dest]) -> Option<usize>);

impl Reference for Stateless {
    fn schedule(
        &mut self,
        list: &[Dest],
        _: &Ctx,
        _: &mut dyn rand_core::RngCore,
    ) -> Option<usize> {
        (self.0)(list)
    }
}

/// Reference for fo and ovf: the first destination `ok` accepts among those of the
/// highest weight it accepts.
pub fn ref_first_of_max_weight(list: &[Dest], ok: impl Fn(&Dest) -> bool) -> Option<usize> {
    let max = list.iter().filter(|d| ok(d)).map(|d| d.weight).max()?;
    list.iter().position(|d| ok(d) && d.weight == max)
}

/// Reference for the wlc family: the first eligible destination (weight > 0, not
/// overloaded) with the smallest `oh / weight`; a later one wins only when strictly smaller.
pub fn ref_least_ratio(list: &[Dest], oh: impl Fn(&Dest) -> i128) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, d) in list.iter().enumerate() {
        if d.overloaded || d.weight <= 0 {
            continue;
        }
        // Compare the ratios by cross-multiplying.
        best = match best {
            Some(b)
                if oh(d) * i128::from(list[b].weight) >= oh(&list[b]) * i128::from(d.weight) =>
            {
                Some(b)
            }
            _ => Some(i),
        };
    }
    best
}

/// Reference wlc (also lblc's and lblcr's fallback): overhead `active * 256 + inactive`.
pub fn ref_wlc(list: &[Dest]) -> Option<usize> {
    ref_least_ratio(list, |d| {
        i128::from(d.activeconns) * 256 + i128::from(d.inactconns)
    })
}

/// One step of a random operation sequence.
#[derive(Clone, Debug)]
pub enum Op {
    /// `ipvsadm -a` of id with weight.
    Add(u8, i32),
    /// `ipvsadm -e` of id with weight and upper threshold.
    Edit(u8, i32, u32),
    /// `ipvsadm -d` of id.
    Del(u8),
    /// Set active/inactive counters of id.
    Counters(u8, u32, u32),
    /// Set/clear the overload flag of id.
    Overload(u8, bool),
    /// A new connection from 192.0.2.<src>:<sport> to 10.1.0.<dst>; `close`
    /// counts it inactive instead of active.
    Sched {
        src: u8,
        sport: u16,
        dst: u8,
        close: bool,
    },
    /// Time passes (seconds).
    Advance(u32),
}

/// Random operation sequences over ids `1..=max_id` and weights `0..=max_w`.
pub fn ops_strategy(max_id: u8, max_w: i32) -> impl Strategy<Value = Vec<Op>> {
    let id = 1..=max_id;
    let op = prop_oneof![
        3 => (id.clone(), 0..=max_w).prop_map(|(i, w)| Op::Add(i, w)),
        2 => (id.clone(), 0..=max_w, prop_oneof![Just(0u32), 1..4u32]).prop_map(|(i, w, u)| Op::Edit(i, w, u)),
        1 => id.clone().prop_map(Op::Del),
        2 => (id.clone(), 0..6u32, 0..6u32).prop_map(|(i, a, n)| Op::Counters(i, a, n)),
        1 => (id.clone(), any::<bool>()).prop_map(|(i, o)| Op::Overload(i, o)),
        8 => (1..=6u8, 1000..1004u16, 1..=6u8, any::<bool>())
            .prop_map(|(src, sport, dst, close)| Op::Sched { src, sport, dst, close }),
        1 => prop_oneof![1..120u32, Just(3600u32), Just(86_400u32)].prop_map(Op::Advance),
    ];
    proptest::collection::vec(op, 1..80)
}

fn bump(d: &mut Dest, close: bool) {
    if close {
        d.inactconns += 1;
    } else {
        d.activeconns += 1;
    }
}

/// Run `ops` on the real scheduler and on `reference`; every pick must be the
/// same destination and both destination lists must stay identical.
pub fn check<R: Reference>(
    name: &str,
    flags: SchedFlags,
    ops: &[Op],
    mut reference: R,
) -> Result<(), TestCaseError> {
    let mut svc = service_with(name, flags, &[]);
    let mut list: Vec<Dest> = Vec::new();
    let mut now = Instant::ZERO;
    let mut rng_a = ChaCha8Rng::seed_from_u64(7);
    let mut rng_b = ChaCha8Rng::seed_from_u64(7);
    let pos = |l: &[Dest], id: u8| l.iter().position(|d| d.addr == addr(id));
    for op in ops {
        match *op {
            Op::Add(id, w) => {
                let ok = svc.add_dest(&spec(id, w)).is_ok();
                prop_assert_eq!(ok, pos(&list, id).is_none());
                if ok {
                    list.insert(0, dest(id, w));
                    reference.add(&list);
                }
            }
            Op::Edit(id, w, u) => {
                let sp = DestSpec {
                    u_threshold: u,
                    ..spec(id, w)
                };
                let ok = svc.edit_dest(&sp).is_ok();
                prop_assert_eq!(ok, pos(&list, id).is_some());
                if let Some(i) = pos(&list, id) {
                    let d = &mut list[i];
                    if w != 0 {
                        d.last_weight = w;
                    }
                    d.weight = w;
                    // Debian 6.1 on a threshold change (l stays 0 here): u = 0 clears,
                    // total >= u sets, total < u - u/4 clears, else it stays.
                    if u != d.u_threshold {
                        let total = d.activeconns + d.inactconns;
                        if u == 0 || total < u - u / 4 {
                            d.overloaded = false;
                        } else if total >= u {
                            d.overloaded = true;
                        }
                    }
                    d.u_threshold = u;
                    reference.edit(&list, i);
                }
            }
            Op::Del(id) => {
                let ok = svc.del_dest(addr(id), 80).is_ok();
                prop_assert_eq!(ok, pos(&list, id).is_some());
                if let Some(i) = pos(&list, id) {
                    let removed = list.remove(i);
                    reference.del(&list, &removed, i);
                }
            }
            Op::Counters(id, a, n) => {
                if let Some(i) = pos(&list, id) {
                    list[i].activeconns = a;
                    list[i].inactconns = n;
                    counters(&mut svc, id, a, n);
                }
            }
            Op::Overload(id, on) => {
                if let Some(i) = pos(&list, id) {
                    list[i].overloaded = on;
                    overload(&mut svc, id, on);
                }
            }
            Op::Sched {
                src,
                sport,
                dst,
                close,
            } => {
                let pkt = packet(
                    IpAddr::V4(Ipv4Addr::new(192, 0, 2, src)),
                    sport,
                    IpAddr::V4(Ipv4Addr::new(10, 1, 0, dst)),
                );
                let got = svc.schedule_at(now, &pkt, &mut rng_a);
                let want = reference.schedule(&list, &Ctx { now, pkt, flags }, &mut rng_b);
                let got_id = got.map(|i| id_of(&svc.dests()[i]));
                let want_id = want.map(|i| id_of(&list[i]));
                prop_assert_eq!(got_id, want_id, "pick differs after {:?}", op);
                if let Some(i) = got {
                    let a = svc.dests()[i].addr;
                    if let Some(d) = svc.dest_mut(a, 80) {
                        bump(d, close);
                    }
                }
                if let Some(i) = want {
                    bump(&mut list[i], close);
                }
            }
            Op::Advance(secs) => {
                now += std::time::Duration::from_secs(u64::from(secs));
                svc.handle_timeout(now);
                reference.tick(now);
            }
        }
        prop_assert_eq!(svc.dests(), &list[..]);
    }
    Ok(())
}

/// `hash_32(v, 8)` as `include/linux/hash.h` defines it (`v * 0x61C88647` mod 2^32, top 8
/// bits), worked out in wide arithmetic apart from the code under test.
pub fn ref_hash_32_8(v: u128) -> u128 {
    (v * 0x61C8_8647) % (1 << 32) / (1 << 24)
}

/// The kernel's address fold for the hashes, done on the address as one number: IPv4 as is,
/// IPv6 the XOR of its four 32-bit words (XOR commutes with ntohl).
pub fn ref_fold(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (0..4).fold(0, |x, i| x ^ ((v >> (32 * i)) & 0xffff_ffff))
        }
    }
}
