//! Destination hashing (`ip_vs_dh.c`).
//!
//! A 256-bucket table (`CONFIG_IP_VS_DH_TAB_BITS=8`) is filled by walking
//! the destination list round-robin, one bucket per destination, ignoring
//! weights; it is rebuilt on add and delete (dh has no `upd_dest` hook). The
//! bucket is `hash_32(ntohl(daddr), 8)` (IPv6: the XOR-folded address), as the
//! 6.1 kernel's `ip_vs_dh_hashkey`; the destination found there is refused when its weight is
//! <= 0 or it is overloaded: there is no fallback.

use std::net::IpAddr;

use super::common::{addr_fold, hash_32, is_unavailable};
use crate::ipvs::dest::Dest;

/// `IP_VS_DH_TAB_BITS` (`CONFIG_IP_VS_DH_TAB_BITS=8` in Debian's kernel).
const DH_TAB_BITS: u32 = 8;
/// `IP_VS_DH_TAB_SIZE`.
pub(crate) const DH_TAB_SIZE: usize = 1 << DH_TAB_BITS;

/// `ip_vs_dh_hashkey`.
pub(crate) fn hashkey(addr: IpAddr) -> usize {
    hash_32(addr_fold(addr), DH_TAB_BITS) as usize
}

/// The bucket table: destination indices.
#[derive(Debug)]
pub(crate) struct Dh {
    buckets: Vec<Option<usize>>,
}

impl Default for Dh {
    fn default() -> Self {
        Dh {
            buckets: vec![None; DH_TAB_SIZE],
        }
    }
}

impl Dh {
    /// `ip_vs_dh_reassign`.
    pub(crate) fn reassign(&mut self, dests: &[Dest]) {
        for (i, b) in self.buckets.iter_mut().enumerate() {
            *b = if dests.is_empty() {
                None
            } else {
                Some(i % dests.len())
            };
        }
    }

    /// `ip_vs_dh_schedule`.
    pub(crate) fn schedule(&self, dests: &[Dest], daddr: IpAddr) -> Option<usize> {
        let i = self.buckets[hashkey(daddr)]?;
        let d = dests.get(i)?;
        if is_unavailable(d) {
            return None;
        }
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn to(dst: [u8; 4]) -> crate::ipvs::service::SchedPacket {
        packet(
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
            5000,
            IpAddr::V4(Ipv4Addr::from(dst)),
        )
    }

    #[test]
    fn hash_is_hash_32() {
        // 10.1.0.1 = 0x0a010001; hash_32 keeps the top 8 bits of the product mod 2^32.
        assert_eq!(hashkey("10.1.0.1".parse().expect("ip")), 174);
        assert_eq!(
            hashkey("10.1.0.2".parse().expect("ip")),
            ref_hash_32_8(0x0a01_0002) as usize
        );
        // IPv6 folds the four words first: 2001:db8::1 -> 0x2001_0db9.
        assert_eq!(hashkey("2001:db8::1".parse().expect("ip")), 63);
    }

    #[test]
    fn buckets_follow_list_order_and_ignore_weight() {
        // list [3(w5), 2(w1), 1(w1)]: bucket b -> list[b % 3].
        let mut s = service("dh", &[(1, 1), (2, 1), (3, 5)]);
        let now = crate::time::Instant::ZERO;
        // 10.1.0.1 -> 174, 174 % 3 = 0 -> list[0] = 3; 10.1.0.3 -> 113, 113 % 3 = 2 -> 1.
        assert_eq!(pick_at(&mut s, now, &to([10, 1, 0, 1])), Some(3));
        assert_eq!(pick_at(&mut s, now, &to([10, 1, 0, 3])), Some(1));
        // Same destination address, any client: same server.
        let other = packet(
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            1,
            "10.1.0.3".parse().expect("ip"),
        );
        assert_eq!(pick_at(&mut s, now, &other), Some(1));
        // Editing weights does not move buckets (no upd_dest hook); weight 0
        // makes that bucket's server refuse, without fallback.
        edit(&mut s, 1, 0);
        assert_eq!(pick_at(&mut s, now, &to([10, 1, 0, 3])), None);
        overload(&mut s, 3, true);
        assert_eq!(pick_at(&mut s, now, &to([10, 1, 0, 1])), None);
        // Deleting 3 rebuilds: list [2, 1], 174 % 2 = 0 -> 2.
        del(&mut s, 3);
        assert_eq!(pick_at(&mut s, now, &to([10, 1, 0, 1])), Some(2));
    }

    struct RefDh;
    impl Reference for RefDh {
        fn schedule(
            &mut self,
            list: &[Dest],
            ctx: &Ctx,
            _: &mut dyn rand_core::RngCore,
        ) -> Option<usize> {
            if list.is_empty() {
                return None;
            }
            let a = match ctx.pkt.dst {
                IpAddr::V4(a) => u32::from(a),
                IpAddr::V6(_) => unreachable!("v4 only in this model"),
            };
            let bucket = ref_hash_32_8(u128::from(a)) as usize;
            let i = bucket % list.len();
            (list[i].weight > 0 && !list[i].overloaded).then_some(i)
        }
    }

    proptest! {
        #[test]
        fn same_choices_as_reference(ops in ops_strategy(8, 4)) {
            check("dh", Default::default(), &ops, RefDh)?;
        }

        #[test]
        fn bucket_matches_hash_32(v4: u32, v6: u128) {
            for a in [IpAddr::V4(Ipv4Addr::from(v4)), IpAddr::V6(v6.into())] {
                prop_assert_eq!(hashkey(a) as u128, ref_hash_32_8(ref_fold(a)));
            }
        }
    }
}
