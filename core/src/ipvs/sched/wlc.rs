//! Weighted least-connection (`ip_vs_wlc.c`).
//!
//! The first destination with weight > 0 and no overload flag seeds `least`;
//! every later non-overloaded destination replaces it when
//! `(s64)loh * dest->weight > (s64)doh * least->weight`, i.e. when its
//! overhead/weight ratio is strictly smaller. Ties keep the earlier one.

use super::common::conn_overhead;
use crate::ipvs::dest::Dest;

/// `ip_vs_wlc_schedule`.
pub(crate) fn schedule(dests: &[Dest]) -> Option<usize> {
    let first = dests.iter().position(|d| !d.overloaded && d.weight > 0)?;
    Some(least_from(dests, first))
}

/// The kernel's "nextstage" loop shared by wlc, lblc and lblcr: start from
/// `first` and keep the destination with the smallest overhead/weight.
pub(crate) fn least_from(dests: &[Dest], first: usize) -> usize {
    let mut least = first;
    let mut loh = i64::from(conn_overhead(&dests[first]));
    let mut lw = i64::from(dests[first].weight);
    for (i, d) in dests.iter().enumerate().skip(first + 1) {
        if d.overloaded {
            continue;
        }
        let doh = i64::from(conn_overhead(d));
        if loh * i64::from(d.weight) > doh * lw {
            least = i;
            loh = doh;
            lw = i64::from(d.weight);
        }
    }
    least
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use proptest::prelude::*;

    #[test]
    fn kernel_trace_ratio_and_ties() {
        // list [3(w1), 2(w2), 1(w3)].
        let mut s = service("wlc", &[(1, 3), (2, 2), (3, 1)]);
        // All overheads 0: 0*w > 0*w never true -> the first eligible, 3.
        assert_eq!(pick(&mut s), Some(3));
        // Overheads: 3: 256 (1 active), 2: 512, 1: 768. Ratios 256, 256,
        // 256: all tie -> 3 stays.
        counters(&mut s, 3, 1, 0);
        counters(&mut s, 2, 2, 0);
        counters(&mut s, 1, 3, 0);
        assert_eq!(pick(&mut s), Some(3));
        // 3 gets one inactive: 257*2 > 512*1 -> 2 replaces it; 2 vs 1:
        // 512*3 > 768*2? 1536 > 1536 no -> 2.
        counters(&mut s, 3, 1, 1);
        assert_eq!(pick(&mut s), Some(2));
        // Quiesce 2: weight 0 is still scanned in nextstage but
        // loh*0 > doh*w is never true -> 1 (768/3 = 256 < 257).
        edit(&mut s, 2, 0);
        assert_eq!(pick(&mut s), Some(1));
        overload(&mut s, 1, true);
        assert_eq!(pick(&mut s), Some(3));
        del(&mut s, 3);
        assert_eq!(pick(&mut s), None);
    }

    #[test]
    fn quiesced_first_entry_does_not_seed() {
        // list [2(w0), 1(w1)]: 2 is skipped in the first stage.
        let mut s = service("wlc", &[(1, 1), (2, 0)]);
        counters(&mut s, 1, 100, 0);
        assert_eq!(pick(&mut s), Some(1));
    }

    proptest! {
        #[test]
        fn same_choices_as_reference(ops in ops_strategy(8, 4)) {
            check("wlc", Default::default(), &ops, Stateless(ref_wlc))?;
        }
    }
}
