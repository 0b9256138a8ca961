//! Never queue (`ip_vs_nq.c`).
//!
//! The first eligible (weight > 0, not overloaded) destination with no
//! active connection wins at once; otherwise sed's rule: smallest
//! `(activeconns + 1) / weight`, ties to the earlier destination.

use crate::ipvs::dest::Dest;

/// `ip_vs_nq_schedule`.
pub(crate) fn schedule(dests: &[Dest]) -> Option<usize> {
    let mut least: Option<(usize, u64)> = None;
    for (i, d) in dests.iter().enumerate() {
        if d.overloaded || d.weight == 0 {
            continue;
        }
        let doh = u64::from(d.activeconns.wrapping_add(1));
        if d.activeconns == 0 {
            return Some(i);
        }
        let replace = match least {
            None => true,
            Some((l, loh)) => {
                loh.wrapping_mul(d.weight as u64) > doh.wrapping_mul(dests[l].weight as u64)
            }
        };
        if replace {
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
    fn kernel_trace_idle_server_first() {
        // list [3(w1), 2(w4), 1(w1)].
        let mut s = service("nq", &[(1, 1), (2, 4), (3, 1)]);
        // Everyone idle: the first idle in list order, 3, regardless of weight.
        assert_eq!(pick(&mut s), Some(3));
        // 3 and 2 busy, 1 idle: 1 wins even though 2 is heavier.
        counters(&mut s, 3, 1, 0);
        counters(&mut s, 2, 1, 0);
        assert_eq!(pick(&mut s), Some(1));
        // Nobody idle: sed rule. 3: 2/1, 2: 2/4, 1: 3/1 -> 2.
        counters(&mut s, 1, 2, 0);
        assert_eq!(pick(&mut s), Some(2));
        // 2 at 7 active: 8/4 = 2 ties 3's 2/1 -> the earlier, 3.
        counters(&mut s, 2, 7, 0);
        assert_eq!(pick(&mut s), Some(3));
        // A quiesced idle server is not "idle" for nq.
        add(&mut s, 4, 0);
        assert_eq!(pick(&mut s), Some(3));
        overload(&mut s, 3, true);
        assert_eq!(pick(&mut s), Some(2));
    }

    /// The first idle eligible destination, else sed's choice.
    fn ref_nq(list: &[Dest]) -> Option<usize> {
        list.iter()
            .position(|d| !d.overloaded && d.weight > 0 && d.activeconns == 0)
            .or_else(|| ref_least_ratio(list, |d| i128::from(d.activeconns) + 1))
    }

    proptest! {
        #[test]
        fn same_choices_as_reference(ops in ops_strategy(8, 4)) {
            check("nq", Default::default(), &ops, Stateless(ref_nq))?;
        }
    }
}
