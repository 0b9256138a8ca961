//! The data plane's per-packet transforms (`lvs_core::ipvs::fwd`): DR (MACs and one hop off
//! the TTL, in place), NAT inbound and outbound (addresses, ports and both checksums, into a
//! new buffer) and TUN (IPIP, GRE, GUE: a new outer header before a copy of the packet), on a
//! client's 254-byte TCP segment (a 200-byte request).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lvs_core::ipvs::{fwd, TunnelType};
use lvs_core::wire::{ipv4, tcp};

const CLIENT: [u8; 4] = [203, 0, 113, 10];
const VIP: [u8; 4] = [223, 202, 22, 118];
const MACS: ([u8; 6], [u8; 6]) = ([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 3]);

/// Ethernet II, IPv4 (TTL 64, DF), TCP ACK|PSH from the client to VIP:80 with 200 bytes.
fn segment() -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 20 + 200];
    f[0..6].copy_from_slice(&MACS.0);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(20u16 + 20 + 200).to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&CLIENT);
    ip[16..20].copy_from_slice(&VIP);
    ipv4::fill_checksum(ip);
    let t = &mut ip[20..];
    t[0..2].copy_from_slice(&40_000u16.to_be_bytes());
    t[2..4].copy_from_slice(&80u16.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x18;
    t[14..16].copy_from_slice(&65_535u16.to_be_bytes());
    t[20..].fill(b'x');
    tcp::fill_checksum(t, IpAddr::from(CLIENT), IpAddr::from(VIP));
    f
}

fn transforms(c: &mut Criterion) {
    let frame = segment();
    let rs_ip = Ipv4Addr::new(10, 20, 0, 11);
    let rs = SocketAddr::new(rs_ip.into(), 80);
    let vip = SocketAddr::new(Ipv4Addr::from(VIP).into(), 80);
    let local = Ipv4Addr::new(223, 202, 22, 114);
    let mut g = c.benchmark_group("fwd");
    g.throughput(Throughput::Elements(1));
    // DR rewrites the received buffer; the copy it starts from is timed too, as a driver
    // that keeps its frames would pay it, so "dr" is an upper bound.
    g.bench_function("dr", |b| {
        b.iter(|| fwd::dr(black_box(frame.clone()), MACS.0, MACS.1))
    });
    g.bench_function("copy (what dr's clone costs)", |b| {
        b.iter(|| black_box(frame.clone()))
    });
    g.bench_function("nat_in", |b| {
        b.iter(|| fwd::nat_in(black_box(&frame), rs, MACS.0, MACS.1))
    });
    // nat_out's work does not depend on which way the packet goes: the client's serves.
    g.bench_function("nat_out", |b| {
        b.iter(|| fwd::nat_out(black_box(&frame), vip, MACS.0, MACS.1))
    });
    for (name, kind) in [
        ("tun ipip", TunnelType::Ipip),
        ("tun gre", TunnelType::Gre),
        ("tun gue", TunnelType::Gue { port: 6080 }),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| fwd::tun(black_box(&frame), kind, local, rs_ip, MACS.0, MACS.1))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = transforms
}
criterion_main!(benches);
