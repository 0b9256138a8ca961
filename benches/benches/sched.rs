//! Scheduler pick cost at 1,000 destinations, for every kernel scheduler.

use std::net::{IpAddr, Ipv4Addr};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use lvs_core::ipvs::sched::{SchedFlags, SchedKind};
use lvs_core::ipvs::service::{DestSpec, SchedPacket, Service, ServiceSpec};
use lvs_core::ipvs::{FwdMethod, Protocol, ServiceKey};
use lvs_core::Instant;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DESTS: u32 = 1000;

fn service(kind: SchedKind) -> Service {
    let spec = ServiceSpec {
        key: ServiceKey::Inet {
            proto: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: 80,
        },
        scheduler: kind,
        flags: SchedFlags {
            fallback: true,
            port: false,
        },
        persistence: None,
        netmask_prefix: 32,
        one_packet: false,
    };
    let mut svc = Service::new(spec);
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    for i in 0..DESTS {
        let addr = IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i));
        let weight = rng.gen_range(1..=10);
        let spec = DestSpec {
            addr,
            port: 80,
            fwd: FwdMethod::Route,
            weight,
            u_threshold: 0,
            l_threshold: 0,
        };
        svc.add_dest(&spec).expect("add");
        if let Some(d) = svc.dest_mut(addr, 80) {
            d.activeconns = rng.gen_range(0..50);
            d.inactconns = rng.gen_range(0..500);
        }
    }
    svc
}

fn picks(c: &mut Criterion) {
    let mut group = c.benchmark_group("sched_pick_1000_dests");
    for kind in SchedKind::ALL {
        let mut svc = service(kind);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut n: u32 = 0;
        group.bench_function(kind.name(), |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                // Vary client and target so hash and locality schedulers do
                // real lookups (targets repeat: lblc/lblcr hit their cache).
                let pkt = SchedPacket {
                    src: IpAddr::V4(Ipv4Addr::from(0xc000_0200 + (n & 0xffff))),
                    sport: 1024 + (n & 0x3fff) as u16,
                    dst: IpAddr::V4(Ipv4Addr::from(0x0a02_0000 + (n & 0xff))),
                    dport: 80,
                };
                black_box(svc.schedule_at(Instant::ZERO, black_box(&pkt), &mut rng))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, picks);
criterion_main!(benches);
