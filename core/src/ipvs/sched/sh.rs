//! Source hashing (`ip_vs_sh.c`), with the `sh-fallback` and `sh-port` flags.
//!
//! The 256-bucket table (`CONFIG_IP_VS_SH_TAB_BITS=8`) is tiled by walking
//! the list round-robin, giving each destination `weight` consecutive
//! buckets (at least one: `++d_count >= weight` moves on after one bucket for
//! weight 0); it is rebuilt on add, edit and delete. The bucket of a packet
//! is `(offset + hash_32(sport + ntohl(saddr), 8)) & 255` (the 6.1 kernel's
//! `ip_vs_sh_hashkey`; an IPv6 address is XOR-folded to 32 bits first), with
//! `sport` in host order and 0 unless `sh-port`, and `offset = 0`. A
//! destination with weight <= 0 or the overload flag is refused; with
//! `sh-fallback` the table is probed again with offsets `(ihash + k) % 256`
//! for k = 0..255, stopping at an empty bucket. Every pick of
//! fixtures/traces/sh*.trace was recorded from Debian's kernel.

use super::common::SchedPacket;
use super::common::{addr_fold, hash_32, is_unavailable, SchedFlags};
use crate::ipvs::dest::Dest;
use std::net::IpAddr;

/// `IP_VS_SH_TAB_BITS` (`CONFIG_IP_VS_SH_TAB_BITS=8` in Debian's kernel).
const SH_TAB_BITS: u32 = 8;
/// `IP_VS_SH_TAB_SIZE`.
pub(crate) const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;

/// `ip_vs_sh_hashkey`.
pub(crate) fn hashkey(addr: IpAddr, port: u16, offset: u32) -> usize {
    let v = u32::from(port).wrapping_add(addr_fold(addr));
    (offset.wrapping_add(hash_32(v, SH_TAB_BITS)) as usize) & (SH_TAB_SIZE - 1)
}

/// The bucket table: destination indices.
#[derive(Debug)]
pub(crate) struct Sh {
    buckets: Vec<Option<usize>>,
}

impl Default for Sh {
    fn default() -> Self {
        Sh {
            buckets: vec![None; SH_TAB_SIZE],
        }
    }
}

impl Sh {
    /// `ip_vs_sh_reassign`.
    pub(crate) fn reassign(&mut self, dests: &[Dest]) {
        let mut p = 0usize;
        let mut count = 0i32;
        for b in self.buckets.iter_mut() {
            if dests.is_empty() {
                *b = None;
                continue;
            }
            if p == dests.len() {
                p = 0;
            }
            *b = Some(p);
            count += 1;
            if count >= dests[p].weight {
                p += 1;
                count = 0;
            }
        }
    }

    /// `ip_vs_sh_schedule`.
    pub(crate) fn schedule(
        &self,
        dests: &[Dest],
        pkt: &SchedPacket,
        flags: SchedFlags,
    ) -> Option<usize> {
        let port = if flags.port { pkt.sport } else { 0 };
        let usable = |i: usize| dests.get(i).is_some_and(|d| !is_unavailable(d));
        let ihash = hashkey(pkt.src, port, 0);
        let first = self.buckets[ihash]?;
        if usable(first) {
            return Some(first);
        }
        if !flags.fallback {
            return None;
        }
        for offset in 0..SH_TAB_SIZE {
            let roffset = (offset + ihash) % SH_TAB_SIZE;
            let i = self.buckets[hashkey(pkt.src, port, roffset as u32)]?;
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
    use std::net::Ipv4Addr;

    fn from(src: [u8; 4], sport: u16) -> SchedPacket {
        packet(IpAddr::V4(Ipv4Addr::from(src)), sport, addr(100))
    }

    fn sh(flags: SchedFlags, dests: &[(u8, i32)]) -> crate::ipvs::service::Service {
        service_with("sh", flags, dests)
    }

    #[test]
    fn bucket_is_hash_32_of_the_host_order_address() {
        // 198.19.0.3 = 0xc6130003: 0xc6130003 * 0x61c88647 mod 2^32 = 0x06..., bucket 6.
        // (The old (v * 2654435761) & 255 gave 0x03 * 0xb1 & 255 = 19.)
        assert_eq!(hashkey("198.19.0.3".parse().expect("ip"), 0, 0), 6);
        assert_eq!(hashkey("198.19.0.9".parse().expect("ip"), 0, 0), 81);
        // sh-port adds the port to the address before hashing; the offset comes after.
        let a: IpAddr = "192.0.2.0".parse().expect("ip");
        assert_eq!(hashkey(a, 1, 0), 50);
        assert_eq!(hashkey(a, 2, 0), 148);
        assert_eq!(hashkey(a, 2, 200), (148 + 200) % 256);
        // IPv6: 2001:db8::1 folds to 0x2001_0db9.
        assert_eq!(hashkey("2001:db8::1".parse().expect("ip"), 0, 0), 63);
    }

    #[test]
    fn weighted_tiling() {
        // list [2(w1), 1(w2)]: buckets 0:2, 1:1, 2:1, 3:2, 4:1, 5:1, ...
        // i.e. bucket b -> 2 when b % 3 == 0, else 1.
        let mut s = sh(SchedFlags::default(), &[(1, 2), (2, 1)]);
        let now = crate::time::Instant::ZERO;
        // 192.0.2.3 -> 246, 246 % 3 = 0 -> 2; 192.0.2.9 -> 65, 65 % 3 = 2 -> 1.
        assert_eq!(pick_at(&mut s, now, &from([192, 0, 2, 3], 1)), Some(2));
        assert_eq!(pick_at(&mut s, now, &from([192, 0, 2, 9], 1)), Some(1));
        // The source port is ignored without sh-port.
        assert_eq!(pick_at(&mut s, now, &from([192, 0, 2, 3], 2)), Some(2));
        // Weight 0 still owns one bucket per round, but is refused there.
        edit(&mut s, 2, 0);
        assert_eq!(pick_at(&mut s, now, &from([192, 0, 2, 3], 1)), None);
    }

    #[test]
    fn fallback_and_port_flags() {
        let flags = SchedFlags {
            fallback: true,
            port: true,
        };
        // list [2(w1), 1(w1)]: even buckets -> 2, odd -> 1.
        let mut s = sh(flags, &[(1, 1), (2, 1)]);
        let now = crate::time::Instant::ZERO;
        // 192.0.2.0 + port 1 -> 50 (even) -> 2; port 5 -> 185 (odd) -> 1.
        assert_eq!(pick_at(&mut s, now, &from([192, 0, 2, 0], 1)), Some(2));
        assert_eq!(ref_hash_32_8(0xc000_0200 + 5), 185);
        assert_eq!(pick_at(&mut s, now, &from([192, 0, 2, 0], 5)), Some(1));
        // 2 overloaded: port 1 hashes to 50 -> 2 refused. Fallback probes buckets
        // roffset + 50 with roffset = 50, 51, ...: 100 is 2 again, 101 is 1.
        overload(&mut s, 2, true);
        assert_eq!(pick_at(&mut s, now, &from([192, 0, 2, 0], 1)), Some(1));
        // Without fallback the same packet finds nothing.
        let mut plain = sh(
            SchedFlags {
                fallback: false,
                port: true,
            },
            &[(1, 1), (2, 1)],
        );
        overload(&mut plain, 2, true);
        assert_eq!(pick_at(&mut plain, now, &from([192, 0, 2, 0], 1)), None);
        // Everyone unavailable: the fallback loop runs out.
        overload(&mut s, 1, true);
        assert_eq!(pick_at(&mut s, now, &from([192, 0, 2, 0], 1)), None);
    }

    /// Reference: expand the list into the repeating tile sequence, then index.
    struct RefSh;
    impl Reference for RefSh {
        fn schedule(
            &mut self,
            list: &[Dest],
            ctx: &Ctx,
            _: &mut dyn rand_core::RngCore,
        ) -> Option<usize> {
            if list.is_empty() {
                return None;
            }
            let tile: Vec<usize> = (0..list.len())
                .flat_map(|i| std::iter::repeat_n(i, list[i].weight.max(1) as usize))
                .collect();
            let table: Vec<usize> = (0..256).map(|b| tile[b % tile.len()]).collect();
            let a = match ctx.pkt.src {
                IpAddr::V4(a) => u128::from(u32::from(a)),
                IpAddr::V6(_) => unreachable!("v4 only"),
            };
            let port = if ctx.flags.port {
                u128::from(ctx.pkt.sport)
            } else {
                0
            };
            let h = |off: u128| ((off + ref_hash_32_8((port + a) % (1 << 32))) % 256) as usize;
            let ok = |i: usize| list[i].weight > 0 && !list[i].overloaded;
            let ih = h(0);
            if ok(table[ih]) {
                return Some(table[ih]);
            }
            if !ctx.flags.fallback {
                return None;
            }
            (0..256u128)
                .map(|k| table[h((k + ih as u128) % 256)])
                .find(|&i| ok(i))
        }
    }

    proptest! {
        #[test]
        fn same_choices_as_reference(ops in ops_strategy(8, 4), fallback: bool, port: bool) {
            check("sh", SchedFlags { fallback, port }, &ops, RefSh)?;
        }

        #[test]
        fn bucket_matches_hash_32(v4: u32, v6: u128, port: u16, offset in 0u32..256) {
            for a in [IpAddr::V4(Ipv4Addr::from(v4)), IpAddr::V6(v6.into())] {
                let want = (u128::from(offset) + ref_hash_32_8((ref_fold(a) + u128::from(port)) % (1 << 32))) % 256;
                prop_assert_eq!(hashkey(a, port, offset) as u128, want);
            }
        }
    }
}
