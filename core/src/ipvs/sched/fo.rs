//! Weighted failover (`ip_vs_fo.c`).
//!
//! The non-overloaded destination with the highest weight; `weight > hw`
//! (strict, starting from 0) keeps the earliest of equal weights and never
//! picks weight 0.

use crate::ipvs::dest::Dest;

/// `ip_vs_fo_schedule`.
pub(crate) fn schedule(dests: &[Dest]) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut hw = 0;
    for (i, d) in dests.iter().enumerate() {
        if !d.overloaded && d.weight > hw {
            best = Some(i);
            hw = d.weight;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kernel_trace_failover_by_weight() {
        // list [3(w5), 2(w10), 1(w10)].
        let mut s = service("fo", &[(1, 10), (2, 10), (3, 5)]);
        // Highest weight 10, tie between 2 and 1 -> the earlier, 2. Load is ignored.
        counters(&mut s, 2, 1000, 0);
        assert_eq!(picks(&mut s, 2), [2, 2]);
        // 2 fails (quiesced by a health checker): 1 takes over.
        edit(&mut s, 2, 0);
        assert_eq!(pick(&mut s), Some(1));
        overload(&mut s, 1, true);
        assert_eq!(pick(&mut s), Some(3));
        del(&mut s, 3);
        assert_eq!(pick(&mut s), None);
        // 2 comes back with weight 10.
        edit(&mut s, 2, 10);
        assert_eq!(pick(&mut s), Some(2));
    }

    /// The first eligible destination of the highest weight.
    fn ref_fo(list: &[Dest]) -> Option<usize> {
        ref_first_of_max_weight(list, |d| !d.overloaded && d.weight > 0)
    }

    proptest! {
        #[test]
        fn same_choices_as_reference(ops in ops_strategy(8, 4)) {
            check("fo", Default::default(), &ops, Stateless(ref_fo))?;
        }
    }
}
