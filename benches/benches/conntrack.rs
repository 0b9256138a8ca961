//! Connection-table lookups with 1M entries, and bytes per entry.
//!
//! Memory is measured two ways: the table's own accounting of what it has
//! allocated (slab, buckets and expiry index capacities times their element
//! sizes), and the process's resident-set growth while building the table
//! (/proc/self/statm), as a cross-check that includes allocator overhead.
//! A counting global allocator would need `unsafe`, which the project forbids.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lvs_core::ipvs::conn::{ConnKey, ConnTable, NewConn};
use lvs_core::Instant;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N: usize = 1_000_000;
const BATCH: usize = 1024;

fn rss_bytes() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn key(rng: &mut ChaCha8Rng) -> ConnKey {
    ConnKey {
        proto: 6,
        caddr: IpAddr::V4(Ipv4Addr::from(rng.gen::<u32>())),
        cport: rng.gen(),
        vaddr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        vport: 80,
    }
}

fn build(presize: bool) -> (ConnTable, Vec<ConnKey>) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut table = if presize {
        ConnTable::with_capacity(7, N)
    } else {
        ConnTable::new(7)
    };
    let mut keys = Vec::with_capacity(N);
    while keys.len() < N {
        let k = key(&mut rng);
        let new = NewConn {
            key: k,
            template: false,
            dest: (keys.len() % 16) as u32,
            flags: 0,
            state: 1,
            timeout: 900 + (keys.len() % 60) as u32,
            control: None,
        };
        if table.insert(Instant::ZERO, new).is_ok() {
            keys.push(k);
        }
    }
    (table, keys)
}

fn conntrack(c: &mut Criterion) {
    for presize in [false, true] {
        let before = rss_bytes();
        let (table, keys) = build(presize);
        let after = rss_bytes();
        let keys_bytes = keys.capacity() * std::mem::size_of::<ConnKey>();
        let rss = match (before, after) {
            (Some(b), Some(a)) => format!(
                "{:.1}",
                (a.saturating_sub(b).saturating_sub(keys_bytes)) as f64 / N as f64
            ),
            _ => "n/a".into(),
        };
        eprintln!(
            "conntrack {}: {} entries, entry struct {} B (IPv6 {} B), table allocations {:.1} B/entry, RSS growth {} B/entry",
            if presize { "presized" } else { "grown" },
            table.len(),
            ConnTable::ENTRY_SIZE_V4,
            ConnTable::ENTRY_SIZE_V6,
            table.heap_bytes() as f64 / N as f64,
            rss,
        );
        if presize {
            continue;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let probes: Vec<ConnKey> = (0..BATCH * 64).map(|_| keys[rng.gen_range(0..N)]).collect();
        let mut g = c.benchmark_group("conntrack");
        g.throughput(Throughput::Elements(BATCH as u64));
        g.measurement_time(Duration::from_secs(3)).sample_size(20);
        let mut off = 0;
        g.bench_function("lookup_hit_1M", |b| {
            b.iter(|| {
                off = (off + BATCH) % probes.len();
                let mut found = 0usize;
                for k in &probes[off..off + BATCH] {
                    found += usize::from(table.lookup(black_box(k)).is_some());
                }
                found
            })
        });
        let mut answers = Vec::with_capacity(BATCH);
        g.bench_function("lookup_batch_hit_1M", |b| {
            b.iter(|| {
                off = (off + BATCH) % probes.len();
                table.lookup_batch(black_box(&probes[off..off + BATCH]), &mut answers);
                answers.iter().filter(|x| x.is_some()).count()
            })
        });
        let misses: Vec<ConnKey> = (0..BATCH).map(|_| key(&mut rng)).collect();
        g.bench_function("lookup_miss_1M", |b| {
            b.iter(|| {
                misses
                    .iter()
                    .filter(|k| table.lookup(black_box(k)).is_some())
                    .count()
            })
        });
        // Machine baseline: one random 8-byte read per element over an array
        // the size of the slab, i.e. the floor for any design with one miss per lookup.
        let words: Vec<u64> = (0..N * 6).map(|i| i as u64).collect();
        let idx: Vec<usize> = (0..BATCH * 64)
            .map(|_| rng.gen_range(0..words.len()))
            .collect();
        let mut off2 = 0;
        g.bench_function("baseline_random_read_48MB", |b| {
            b.iter(|| {
                off2 = (off2 + BATCH) % idx.len();
                idx[off2..off2 + BATCH]
                    .iter()
                    .map(|&i| black_box(words[i]))
                    .sum::<u64>()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, conntrack);
criterion_main!(benches);
