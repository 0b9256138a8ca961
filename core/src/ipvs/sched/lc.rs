//! Least-connection (`ip_vs_lc.c`).
//!
//! Scan the list in order, skipping overloaded and weight-0 destinations, and
//! keep the first one with the smallest `ip_vs_dest_conn_overhead`
//! (`(activeconns << 8) + inactconns`, compared as `unsigned int`; a later
//! destination replaces the current least only when strictly smaller).

use super::common::conn_overhead;
use crate::ipvs::dest::Dest;

/// `ip_vs_lc_schedule`.
pub(crate) fn schedule(dests: &[Dest]) -> Option<usize> {
    let mut least: Option<(usize, u32)> = None;
    for (i, d) in dests.iter().enumerate() {
        if d.overloaded || d.weight == 0 {
            continue;
        }
        let doh = conn_overhead(d) as u32;
        if least.is_none_or(|(_, loh)| doh < loh) {
            least = Some((i, doh));
        }
    }
    least.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kernel_trace_overhead_ties_and_quiesce() {
        // list [3, 2, 1] (head insertion); weights do not matter to lc.
        let mut s = service("lc", &[(1, 1), (2, 5), (3, 1)]);
        // All zero: tie, strict '<' keeps the first in list order: 3.
        assert_eq!(pick(&mut s), Some(3));
        // One active (256) outweighs 255 inactive.
        counters(&mut s, 3, 1, 0);
        counters(&mut s, 2, 0, 255);
        counters(&mut s, 1, 0, 255);
        // 3: 256, 2: 255, 1: 255 -> 2 (first of the tied 255s).
        assert_eq!(pick(&mut s), Some(2));
        counters(&mut s, 2, 0, 256);
        assert_eq!(pick(&mut s), Some(1));
        // Quiesced 1 is skipped even though it is least loaded: 3 and 2 tie
        // at 256 -> 3 (earlier).
        edit(&mut s, 1, 0);
        assert_eq!(pick(&mut s), Some(3));
        overload(&mut s, 3, true);
        assert_eq!(pick(&mut s), Some(2));
        del(&mut s, 2);
        // Only 3 (overloaded) and 1 (weight 0) remain.
        assert_eq!(pick(&mut s), None);
    }

    fn ref_lc(list: &[Dest]) -> Option<usize> {
        // min_by_key returns the first of equal minima.
        (0..list.len())
            .filter(|&i| !list[i].overloaded && list[i].weight != 0)
            .min_by_key(|&i| u64::from(list[i].activeconns) * 256 + u64::from(list[i].inactconns))
    }

    proptest! {
        #[test]
        fn same_choices_as_reference(ops in ops_strategy(8, 4)) {
            check("lc", Default::default(), &ops, Stateless(ref_lc))?;
        }
    }
}
