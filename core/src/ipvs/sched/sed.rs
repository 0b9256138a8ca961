//! Shortest expected delay (`ip_vs_sed.c`).
//!
//! Like wlc, but the overhead is `activeconns + 1` (inactive connections do
//! not count) and the products are `(u64)`.

use crate::ipvs::dest::Dest;

fn overhead(d: &Dest) -> u64 {
    u64::from(d.activeconns.wrapping_add(1))
}

/// `ip_vs_sed_schedule`.
pub(crate) fn schedule(dests: &[Dest]) -> Option<usize> {
    let first = dests.iter().position(|d| !d.overloaded && d.weight > 0)?;
    let mut least = first;
    let mut loh = overhead(&dests[first]);
    let mut lw = dests[first].weight as u64;
    for (i, d) in dests.iter().enumerate().skip(first + 1) {
        if d.overloaded {
            continue;
        }
        let doh = overhead(d);
        // (__u64)loh * weight: the weight is converted to u64 too.
        if loh.wrapping_mul(d.weight as u64) > doh.wrapping_mul(lw) {
            least = i;
            loh = doh;
            lw = d.weight as u64;
        }
    }
    Some(least)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kernel_trace_expected_delay() {
        // list [2(w3), 1(w1)].
        let mut s = service("sed", &[(1, 1), (2, 3)]);
        // (0+1)/3 < (0+1)/1 -> 2.
        assert_eq!(pick(&mut s), Some(2));
        // 2 has 2 active: 3/3 = 1 vs 1/1 = 1: tie, earlier (2) stays.
        counters(&mut s, 2, 2, 0);
        assert_eq!(pick(&mut s), Some(2));
        // 3 active: 4/3 > 1 -> 1. Inactive connections are ignored.
        counters(&mut s, 2, 3, 0);
        counters(&mut s, 1, 0, 50);
        assert_eq!(pick(&mut s), Some(1));
        edit(&mut s, 1, 0);
        assert_eq!(pick(&mut s), Some(2));
        overload(&mut s, 2, true);
        assert_eq!(pick(&mut s), None);
    }

    /// Overhead activeconns + 1, no inactive term.
    fn ref_sed(list: &[Dest]) -> Option<usize> {
        ref_least_ratio(list, |d| i128::from(d.activeconns) + 1)
    }

    proptest! {
        #[test]
        fn same_choices_as_reference(ops in ops_strategy(8, 4)) {
            check("sed", Default::default(), &ops, Stateless(ref_sed))?;
        }
    }
}
