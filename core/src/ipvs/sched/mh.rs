//! Maglev hashing (`ip_vs_mh.c`), with the `mh-fallback` and `mh-port` flags.
//!
//! Table size 4093: `CONFIG_IP_VS_MH_TAB_INDEX` defaults to 12 in Kconfig
//! (Debian keeps the default), selecting `primes[12 - 8]`; the table would be
//! 251 only with index 8. Each destination gets `offset = h1 % M` and
//! `skip = h2 % (M - 1) + 1`, where h1/h2 are `hsiphash` of
//! `ntohs(port) + ntohl(addr)` (a u32, hashed as its 4 little-endian bytes)
//! with the fixed keys `{2654435761, 2654435761}` and
//! `{2654446892, 2654446892}`. On 64-bit kernels `hsiphash` is SipHash-1-3
//! with 64-bit key words, truncated to 32 bits.
//!
//! Population walks the list round-robin; a destination with
//! `turns = (last_weight / gcd) >> rshift` (or 1 when that is 0 but
//! `last_weight != 0`) claims `turns` slots in a row, each at its next free
//! preference `offset + k * skip (mod M)`. Weight-0 destinations keep their
//! slots from `last_weight` (the latest non-zero weight) but are refused at
//! lookup, so `mh-fallback` moves their clients elsewhere. A lookup hashes
//! the client address (plus source port with `mh-port`) with key 1.

use super::common::SchedPacket;
use super::common::{addr_fold, gcd, is_unavailable, SchedFlags};
use crate::ipvs::dest::Dest;
use std::net::IpAddr;

/// `IP_VS_MH_TAB_SIZE` with the default `CONFIG_IP_VS_MH_TAB_INDEX=12`.
pub(crate) const MH_TAB_SIZE: usize = 4093;
/// `IP_VS_MH_TAB_BITS` = `CONFIG_IP_VS_MH_TAB_INDEX / 2`.
const MH_TAB_BITS: i32 = 6;
/// `generate_hash_secret`: hash1 key words.
const KEY1: u64 = 2_654_435_761;
/// `generate_hash_secret`: hash2 key words.
const KEY2: u64 = 2_654_446_892;

/// One SipHash round (`SIPROUND` in lib/siphash.c).
fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// The SipHash initial state for key `(k0, k1)` ("somepseudorandomlygeneratedbytes").
fn preamble(k0: u64, k1: u64) -> [u64; 4] {
    [
        0x736f_6d65_7073_6575 ^ k0,
        0x646f_7261_6e64_6f6d ^ k1,
        0x6c79_6765_6e65_7261 ^ k0,
        0x7465_6462_7974_6573 ^ k1,
    ]
}

/// 64-bit kernel `hsiphash(&v, 4, {k, k})`: SipHash-1-3 of the four
/// little-endian bytes of `v`, truncated to u32.
pub(crate) fn hsiphash_u32(v: u32, k: u64) -> u32 {
    let mut s = preamble(k, k);
    // len = 4 < 8: no full word; the tail goes into b with the length.
    let b = (4u64 << 56) | u64::from(v);
    s[3] ^= b;
    sipround(&mut s);
    s[0] ^= b;
    s[2] ^= 0xff;
    sipround(&mut s);
    sipround(&mut s);
    sipround(&mut s);
    ((s[0] ^ s[1]) ^ (s[2] ^ s[3])) as u32
}

/// `ip_vs_mh_hashkey`.
fn hashkey(addr: IpAddr, port: u16, key: u64, offset: u32) -> u32 {
    let v = offset
        .wrapping_add(u32::from(port))
        .wrapping_add(addr_fold(addr));
    hsiphash_u32(v, key)
}

/// `fls()`: 1-based index of the highest set bit, 0 for 0.
fn fls(x: i32) -> i32 {
    32 - (x as u32).leading_zeros() as i32
}

/// Maglev state: the lookup table of destination indices.
#[derive(Debug)]
pub(crate) struct Mh {
    lookup: Vec<Option<usize>>,
}

impl Default for Mh {
    fn default() -> Self {
        Mh {
            lookup: vec![None; MH_TAB_SIZE],
        }
    }
}

impl Mh {
    /// `ip_vs_mh_dest_changed`: gcd, shift, then `ip_vs_mh_reassign`.
    pub(crate) fn dest_changed(&mut self, dests: &[Dest]) {
        let g = dests
            .iter()
            .map(|d| d.last_weight)
            .filter(|&w| w > 0)
            .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
        let rshift = if g < 1 {
            0
        } else {
            let mw = dests.iter().map(|d| d.last_weight).fold(0, i32::max) / g;
            (fls(mw) - MH_TAB_BITS).max(0)
        };
        if dests.len() > MH_TAB_SIZE {
            // -EINVAL: the kernel keeps the old table; our indices would be
            // stale, so refuse everything instead.
            self.lookup.iter_mut().for_each(|l| *l = None);
            return;
        }
        if g < 1 {
            self.lookup.iter_mut().for_each(|l| *l = None);
            return;
        }
        // ip_vs_mh_permutate
        let m = MH_TAB_SIZE as u32;
        let mut setup: Vec<(u32, u32, u32, i32)> = dests
            .iter()
            .map(|d| {
                let offset = hashkey(d.addr, d.port, KEY1, 0) % m;
                let skip = hashkey(d.addr, d.port, KEY2, 0) % (m - 1) + 1;
                let lw = d.last_weight;
                let t = (lw / g) >> rshift;
                let turns = if t != 0 { t } else { i32::from(lw != 0) };
                (offset, skip, offset, turns)
            })
            .collect();
        // ip_vs_mh_populate
        let mut taken = vec![false; MH_TAB_SIZE];
        let mut n = 0usize;
        let mut dt_count = 0;
        'fill: while n < MH_TAB_SIZE {
            for (i, ds) in setup.iter_mut().enumerate() {
                if ds.3 < 1 {
                    continue;
                }
                loop {
                    let mut c = ds.2 as usize;
                    while taken[c] {
                        ds.2 += ds.1;
                        if ds.2 >= m {
                            ds.2 -= m;
                        }
                        c = ds.2 as usize;
                    }
                    taken[c] = true;
                    self.lookup[c] = Some(i);
                    n += 1;
                    if n == MH_TAB_SIZE {
                        break 'fill;
                    }
                    dt_count += 1;
                    if dt_count >= ds.3 {
                        dt_count = 0;
                        break;
                    }
                }
            }
        }
    }

    /// `ip_vs_mh_schedule`.
    pub(crate) fn schedule(
        &self,
        dests: &[Dest],
        pkt: &SchedPacket,
        flags: SchedFlags,
    ) -> Option<usize> {
        let port = if flags.port { pkt.sport } else { 0 };
        let m = MH_TAB_SIZE as u32;
        let usable = |i: usize| dests.get(i).is_some_and(|d| !is_unavailable(d));
        let ihash = hashkey(pkt.src, port, KEY1, 0) % m;
        let first = self.lookup[ihash as usize]?;
        if usable(first) {
            return Some(first);
        }
        if !flags.fallback {
            return None;
        }
        for offset in 0..m {
            let roffset = (offset + ihash) % m;
            let i = self.lookup[(hashkey(pkt.src, port, KEY1, roffset) % m) as usize]?;
            if usable(i) {
                return Some(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    /// Generic SipHash-c-d over any message, straight from the paper.
    fn siphash(c: usize, d: usize, k0: u64, k1: u64, msg: &[u8]) -> u64 {
        let mut v = preamble(k0, k1);
        let mut chunks = msg.chunks_exact(8);
        for ch in &mut chunks {
            let m = u64::from_le_bytes(ch.try_into().expect("8 bytes"));
            v[3] ^= m;
            (0..c).for_each(|_| sipround(&mut v));
            v[0] ^= m;
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        last[7] = msg.len() as u8;
        let b = u64::from_le_bytes(last);
        v[3] ^= b;
        (0..c).for_each(|_| sipround(&mut v));
        v[0] ^= b;
        v[2] ^= 0xff;
        (0..d).for_each(|_| sipround(&mut v));
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }

    #[test]
    fn siphash_core_matches_the_published_vectors() {
        // SipHash-2-4 reference vectors (key 00..0f): empty and [0].
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(siphash(2, 4, k0, k1, &[]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash(2, 4, k0, k1, &[0]), 0x74f8_39c5_93dc_67fd);
        let fifteen: Vec<u8> = (0..15).collect();
        assert_eq!(siphash(2, 4, k0, k1, &fifteen), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn hsiphash_is_siphash_1_3_truncated() {
        for v in [0u32, 1, 0x0a00_000b, u32::MAX, 0xdead_beef] {
            for k in [KEY1, KEY2] {
                assert_eq!(
                    hsiphash_u32(v, k),
                    siphash(1, 3, k, k, &v.to_le_bytes()) as u32
                );
            }
        }
    }

    #[test]
    fn shares_follow_weights_and_weight_zero_keeps_slots() {
        // list [3(w1), 2(w1), 1(w2)]: gcd 1, turns 1,1,2 -> 1 owns about
        // half of the 4093 slots (2 per round), 2 and 3 a quarter each.
        let mut s = service("mh", &[(1, 2), (2, 1), (3, 1)]);
        let share = |s: &crate::ipvs::service::Service| {
            let MhRef(mh) = mh_of(s);
            let mut c: BTreeMap<u8, usize> = BTreeMap::new();
            for i in mh.lookup.iter().flatten() {
                *c.entry(id_of(&s.dests()[*i])).or_default() += 1;
            }
            c
        };
        let c = share(&s);
        assert_eq!(c.values().sum::<usize>(), MH_TAB_SIZE);
        // Rounds of 4 slots (3, 2, 1, 1) until the table is full: 1023 full
        // rounds fill 4092 slots, then 3 takes the last one.
        assert_eq!(c[&1], 2046);
        assert_eq!(c[&2], 1023);
        assert_eq!(c[&3], 1024);
        // Quiesce 1: last_weight stays 2, so the table is unchanged...
        edit(&mut s, 1, 0);
        assert_eq!(share(&s), c);
        // ...but clients landing on 1 are refused, or moved by mh-fallback.
        let clients: Vec<Ipv4Addr> = (1..=40).map(|i| Ipv4Addr::new(192, 0, 2, i)).collect();
        let mut fb = service_with(
            "mh",
            SchedFlags {
                fallback: true,
                port: false,
            },
            &[(1, 2), (2, 1), (3, 1)],
        );
        edit(&mut fb, 1, 0);
        let now = crate::time::Instant::ZERO;
        let mut refused = 0;
        for c in &clients {
            let p = packet(IpAddr::V4(*c), 1, addr(100));
            let plain = pick_at(&mut s, now, &p);
            let moved = pick_at(&mut fb, now, &p);
            match plain {
                None => {
                    refused += 1;
                    assert!(matches!(moved, Some(2) | Some(3)));
                }
                Some(x) => assert_eq!(moved, Some(x)),
            }
        }
        assert!(refused > 0, "some of 40 clients hash to 1");
    }

    #[test]
    fn large_weights_are_shifted_to_six_bits() {
        // list [2(w1), 1(w1000)]: gcd 1, max/gcd = 1000, fls(1000) = 10,
        // rshift = 10 - 6 = 4: turns 1000 >> 4 = 62 and 1 >> 4 = 0 -> 1.
        // Rounds of 63 slots: 64 full rounds (4032), then 2 takes one and 1
        // the remaining 60.
        let s = service("mh", &[(1, 1000), (2, 1)]);
        let MhRef(mh) = mh_of(&s);
        let count = |id: u8| {
            mh.lookup
                .iter()
                .flatten()
                .filter(|&&i| id_of(&s.dests()[i]) == id)
                .count()
        };
        assert_eq!(count(2), 65);
        assert_eq!(count(1), 64 * 62 + 60);
    }

    #[test]
    fn consistent_when_a_server_leaves() {
        let mut s = service("mh", &[(1, 1), (2, 1), (3, 1), (4, 1)]);
        let now = crate::time::Instant::ZERO;
        let clients: Vec<_> = (1..=200u8)
            .map(|i| packet(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)), 7, addr(100)))
            .collect();
        let before: Vec<_> = clients.iter().map(|p| pick_at(&mut s, now, p)).collect();
        del(&mut s, 4);
        let after: Vec<_> = clients.iter().map(|p| pick_at(&mut s, now, p)).collect();
        // 4's clients move; Maglev keeps (almost all) others where they were.
        let mut kept = 0;
        let mut others = 0;
        for (b, a) in before.iter().zip(&after) {
            if *b == Some(4) {
                assert_ne!(*a, Some(4));
            } else {
                others += 1;
                kept += usize::from(b == a);
            }
        }
        assert!(
            others > 100 && kept * 10 >= others * 9,
            "kept {kept} of {others}"
        );
    }

    struct MhRef<'a>(&'a Mh);
    fn mh_of(s: &crate::ipvs::service::Service) -> MhRef<'_> {
        match &s.scheduler().kind {
            super::super::Kind::Mh(m) => MhRef(m),
            _ => unreachable!("mh service"),
        }
    }

    /// Reference: each destination's preference list computed directly as
    /// `(offset + j * skip) % M`, claimed in round-robin turns.
    struct RefMh;
    impl Reference for RefMh {
        fn schedule(
            &mut self,
            list: &[Dest],
            ctx: &Ctx,
            _: &mut dyn rand_core::RngCore,
        ) -> Option<usize> {
            let m = MH_TAB_SIZE as u64;
            let h = |a: IpAddr, p: u16, k: u64, off: u64| {
                let v = (off + u64::from(p) + u64::from(addr_fold(a))) % (1 << 32);
                siphash(1, 3, k, k, &(v as u32).to_le_bytes()) as u32 as u64
            };
            let g = list
                .iter()
                .map(|d| d.last_weight)
                .filter(|&w| w > 0)
                .fold(0, |a, b| if a == 0 { b } else { num::gcd(a, b) });
            if g == 0 {
                return None;
            }
            let mw = list.iter().map(|d| d.last_weight).max().unwrap_or(0) / g;
            let bits = 32 - mw.leading_zeros() as i32;
            let shift = (bits - 6).max(0);
            let turns: Vec<i32> = list
                .iter()
                .map(|d| {
                    let t = (d.last_weight / g) >> shift;
                    if t > 0 {
                        t
                    } else {
                        i32::from(d.last_weight != 0)
                    }
                })
                .collect();
            let prefs: Vec<(u64, u64)> = list
                .iter()
                .map(|d| {
                    (
                        h(d.addr, d.port, KEY1, 0) % m,
                        h(d.addr, d.port, KEY2, 0) % (m - 1) + 1,
                    )
                })
                .collect();
            let mut next_j = vec![0u64; list.len()];
            let mut table = vec![usize::MAX; MH_TAB_SIZE];
            let mut filled = 0;
            'outer: loop {
                for i in 0..list.len() {
                    for _ in 0..turns[i] {
                        let (off, skip) = prefs[i];
                        loop {
                            let c = ((off + next_j[i] * skip) % m) as usize;
                            if table[c] == usize::MAX {
                                table[c] = i;
                                break;
                            }
                            next_j[i] += 1;
                        }
                        filled += 1;
                        if filled == MH_TAB_SIZE {
                            break 'outer;
                        }
                    }
                }
            }
            let port = if ctx.flags.port { ctx.pkt.sport } else { 0 };
            let ok = |i: usize| list[i].weight > 0 && !list[i].overloaded;
            let ih = h(ctx.pkt.src, port, KEY1, 0) % m;
            if ok(table[ih as usize]) {
                return Some(table[ih as usize]);
            }
            if !ctx.flags.fallback {
                return None;
            }
            (0..m)
                .map(|k| table[(h(ctx.pkt.src, port, KEY1, (k + ih) % m) % m) as usize])
                .find(|&i| ok(i))
        }
    }

    mod num {
        pub fn gcd(a: i32, b: i32) -> i32 {
            if b == 0 {
                a
            } else {
                gcd(b, a % b)
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn same_choices_as_reference(ops in ops_strategy(6, 4), fallback: bool, port: bool) {
            check("mh", SchedFlags { fallback, port }, &ops, RefMh)?;
        }

        /// Weights up to 1000 make `rshift` > 0 (max/gcd above 63).
        #[test]
        fn same_choices_with_shifted_weights(ops in ops_strategy(5, 1000), fallback: bool) {
            check("mh", SchedFlags { fallback, port: true }, &ops, RefMh)?;
        }
    }
}
