//! Power of two choices (`ip_vs_twos.c`).
//!
//! Upstream since Linux 6.2 (not in 6.1); implemented from the mainline file.
//! `total_weight` sums the weights of the eligible destinations (weight > 0,
//! not overloaded), plus one. Two numbers `rweight1/2 =
//! get_random_u32_below(total_weight)` are drawn, in that order. Walking the
//! eligible destinations, each subtracts its weight from both; the first one
//! where `rweight1 <= 0` is choice 1, the first where `rweight2 <= 0` choice
//! 2. Choice 2 wins when `weight2 * overhead1 > weight1 * overhead2` (int
//! arithmetic). Choice 1 starts as the last eligible destination found while
//! summing; `rweight1 <= sum` always reaches 0, so that is only a default.

use super::common::conn_overhead;
use crate::ipvs::dest::Dest;

/// The kernel's `__get_random_u32_below`: Lemire's multiply-shift with
/// rejection of the biased low part, drawing `get_random_u32()` from `rng`.
pub(crate) fn get_random_u32_below(rng: &mut dyn rand_core::RngCore, ceil: u32) -> u32 {
    let rand = rng.next_u32();
    if ceil == 0 {
        return rand;
    }
    let mut mult = u64::from(ceil) * u64::from(rand);
    if (mult as u32) < ceil {
        let bound = ceil.wrapping_neg() % ceil;
        while (mult as u32) < bound {
            mult = u64::from(ceil) * u64::from(rng.next_u32());
        }
    }
    (mult >> 32) as u32
}

/// `ip_vs_twos_schedule`.
pub(crate) fn schedule(dests: &[Dest], rng: &mut dyn rand_core::RngCore) -> Option<usize> {
    let eligible = |d: &Dest| !d.overloaded && d.weight > 0;
    let mut total: i32 = 0;
    let mut choice1: Option<usize> = None;
    for (i, d) in dests.iter().enumerate() {
        if eligible(d) {
            total = total.wrapping_add(d.weight);
            choice1 = Some(i);
        }
    }
    let mut choice1 = choice1?;
    let total = total.wrapping_add(1);
    let mut r1 = get_random_u32_below(rng, total as u32) as i32;
    let mut r2 = get_random_u32_below(rng, total as u32) as i32;
    let (mut w1, mut w2, mut oh1, mut oh2) = (-1i32, -1i32, 0i32, 0i32);
    let mut choice2: Option<usize> = None;
    for (i, d) in dests.iter().enumerate() {
        if !eligible(d) {
            continue;
        }
        r1 = r1.wrapping_sub(d.weight);
        r2 = r2.wrapping_sub(d.weight);
        if r1 <= 0 && w1 == -1 {
            choice1 = i;
            w1 = d.weight;
            oh1 = conn_overhead(d);
        }
        if r2 <= 0 && w2 == -1 {
            choice2 = Some(i);
            w2 = d.weight;
            oh2 = conn_overhead(d);
        }
        if w1 != -1 && w2 != -1 {
            break;
        }
    }
    match choice2 {
        Some(c2) if w2.wrapping_mul(oh1) > w1.wrapping_mul(oh2) => Some(c2),
        _ => Some(choice1),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use proptest::prelude::*;

    /// An RNG that replays fixed u32 values, so a trace can name the draws.
    struct Fixed(Vec<u32>);
    impl rand_core::RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            assert!(!self.0.is_empty(), "trace used more draws than it named");
            self.0.remove(0)
        }
        fn next_u64(&mut self) -> u64 {
            u64::from(self.next_u32())
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.iter_mut().for_each(|b| *b = 0);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    /// A draw for which `get_random_u32_below(ceil)` returns `r`: the middle
    /// of r's interval, so `ceil * draw` has a low half near 2^31, far above
    /// the rejection bound (< ceil).
    fn draw_for(r: u32, ceil: u32) -> u32 {
        ((u64::from(2 * r + 1) << 31) / u64::from(ceil)) as u32
    }

    fn twos_pick(s: &crate::ipvs::service::Service, draws: Vec<u32>) -> Option<u8> {
        let mut rng = Fixed(draws);
        schedule(s.dests(), &mut rng).map(|i| id_of(&s.dests()[i]))
    }

    #[test]
    fn random_below_is_the_kernel_multiply_shift() {
        assert_eq!(get_random_u32_below(&mut Fixed(vec![u32::MAX]), 10), 9);
        // 0x8000_0000 * 10 = 5 * 2^32 exactly: low half 0 < bound 6, so the
        // kernel rejects it and draws again; one more and the low half is 10.
        assert_eq!(
            get_random_u32_below(&mut Fixed(vec![0x8000_0000, 0x8000_0001]), 10),
            5
        );
        // Draw 0: mult = 0 < bound = 2^32 % 10 = 6: rejected, redrawn.
        assert_eq!(get_random_u32_below(&mut Fixed(vec![0, u32::MAX]), 10), 9);
        for r in 0..10 {
            assert_eq!(
                get_random_u32_below(&mut Fixed(vec![draw_for(r, 10)]), 10),
                r
            );
        }
        // ceil 3: bound = 2^32 % 3 = 1; the draw 0 gives mult 0 < bound and
        // is rejected; the next draw is used.
        assert_eq!(get_random_u32_below(&mut Fixed(vec![0, u32::MAX]), 3), 2);
    }

    #[test]
    fn kernel_trace_two_weighted_choices() {
        // list [3(w1), 2(w2), 1(w3)]: total = 6 + 1 = 7.
        let mut s = service("twos", &[(1, 3), (2, 2), (3, 1)]);
        counters(&mut s, 1, 1, 0);
        // r1 = 0: 0-1 <= 0 at 3 -> choice1 = 3. r2 = 4: 4-1=3, 3-2=1,
        // 1-3 <= 0 at 1 -> choice2 = 1. overheads 3: 0, 1: 256:
        // w2*oh1 = 3*0 > w1*oh2 = 1*256? no -> 3.
        assert_eq!(twos_pick(&s, vec![draw_for(0, 7), draw_for(4, 7)]), Some(3));
        // r1 = 3 -> 3-1=2, 2-2=0 <= 0 at 2: choice1 = 2 (oh 0). r2 = 6 ->
        // ... choice2 = 1 (oh 256). 3*0 > 2*256 no -> 2.
        assert_eq!(twos_pick(&s, vec![draw_for(3, 7), draw_for(6, 7)]), Some(2));
        // Swap the roles: choice1 = 1 (oh 256, w3), choice2 = 2 (oh 0, w2):
        // 2*256 > 3*0 -> choice2 = 2.
        assert_eq!(twos_pick(&s, vec![draw_for(6, 7), draw_for(3, 7)]), Some(2));
        // Quiesced/overloaded destinations are not walked: only 1 left,
        // total = 4, both choices are 1.
        edit(&mut s, 3, 0);
        overload(&mut s, 2, true);
        assert_eq!(twos_pick(&s, vec![draw_for(0, 4), draw_for(3, 4)]), Some(1));
        overload(&mut s, 1, true);
        assert_eq!(twos_pick(&s, vec![]), None);
    }

    struct RefTwos;
    impl Reference for RefTwos {
        fn schedule(
            &mut self,
            list: &[Dest],
            _: &Ctx,
            rng: &mut dyn rand_core::RngCore,
        ) -> Option<usize> {
            let ok: Vec<usize> = (0..list.len())
                .filter(|&i| !list[i].overloaded && list[i].weight > 0)
                .collect();
            let last = *ok.last()?;
            let total: i64 = ok.iter().map(|&i| i64::from(list[i].weight)).sum::<i64>() + 1;
            // Same draws, by plain 128-bit arithmetic with rejection.
            let mut below = || loop {
                let x = u128::from(rng.next_u32()) * total as u128;
                let low = (x & 0xffff_ffff) as u64;
                let threshold = if low < total as u64 {
                    (1u64 << 32) % total as u64
                } else {
                    0
                };
                if low >= threshold {
                    return (x >> 32) as i64;
                }
            };
            let (r1, r2) = (below(), below());
            // First eligible dest whose running weight sum reaches r.
            let reach = |r: i64| {
                let mut sum = 0;
                ok.iter().copied().find(|&i| {
                    sum += i64::from(list[i].weight);
                    sum >= r
                })
            };
            let c1 = reach(r1).unwrap_or(last);
            let oh =
                |i: usize| i64::from(list[i].activeconns) * 256 + i64::from(list[i].inactconns);
            match reach(r2) {
                Some(c2)
                    if i64::from(list[c2].weight) * oh(c1)
                        > i64::from(list[c1].weight) * oh(c2) =>
                {
                    Some(c2)
                }
                _ => Some(c1),
            }
        }
    }

    proptest! {
        #[test]
        fn same_choices_as_reference(ops in ops_strategy(8, 4)) {
            check("twos", Default::default(), &ops, RefTwos)?;
        }
    }
}
