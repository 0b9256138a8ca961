//! Weighted overflow (`ip_vs_ovf.c`).
//!
//! The highest-weight destination whose active connections do not exceed
//! its weight (`activeconns > w` skips it), weight 0 and overloaded ones
//! excluded; the earliest wins among equal weights.

use crate::ipvs::dest::Dest;

/// `ip_vs_ovf_schedule`.
pub(crate) fn schedule(dests: &[Dest]) -> Option<usize> {
    let mut best: Option<(usize, i32)> = None;
    for (i, d) in dests.iter().enumerate() {
        let w = d.weight;
        if d.overloaded || (d.activeconns as i32) > w || w == 0 {
            continue;
        }
        if best.is_none_or(|(_, hw)| w > hw) {
            best = Some((i, w));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kernel_trace_overflow_after_weight_active() {
        // list [2(w1), 1(w3)].
        let mut s = service("ovf", &[(1, 3), (2, 1)]);
        // 1 has the highest weight and takes connections while active <= 3.
        for active in 0..=3 {
            counters(&mut s, 1, active, 0);
            assert_eq!(pick(&mut s), Some(1), "active {active}");
        }
        // 4 active > 3: overflow to 2 (inactive connections never count).
        counters(&mut s, 1, 4, 99);
        assert_eq!(pick(&mut s), Some(2));
        counters(&mut s, 2, 2, 0);
        assert_eq!(pick(&mut s), None);
        // Equal weights: the earlier in the list.
        add(&mut s, 3, 3);
        edit(&mut s, 2, 3);
        counters(&mut s, 1, 0, 0);
        assert_eq!(pick(&mut s), Some(3));
    }

    /// The first destination of the highest weight among those eligible and not over
    /// their weight in active connections.
    fn ref_ovf(list: &[Dest]) -> Option<usize> {
        ref_first_of_max_weight(list, |d| {
            !d.overloaded && d.weight > 0 && i64::from(d.activeconns) <= i64::from(d.weight)
        })
    }

    proptest! {
        #[test]
        fn same_choices_as_reference(ops in ops_strategy(8, 4)) {
            check("ovf", Default::default(), &ops, Stateless(ref_ovf))?;
        }
    }
}
