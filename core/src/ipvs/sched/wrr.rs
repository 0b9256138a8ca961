//! Weighted round-robin (`ip_vs_wrr.c`).
//!
//! State (`struct ip_vs_wrr_mark`): `cl` the current list position (head or a
//! destination), `cw` the current weight, `mw` the maximum weight minus
//! `di - 1`, `di` the gcd of the positive weights. A pick walks forward from
//! `cl` taking the first destination with `weight >= cw` and no overload flag;
//! each time the walk reaches the head, `cw` drops by `di` and wraps to `mw`
//! below 1. Any add/edit/delete resets `cl` to the head and rescales `cw`
//! (`ip_vs_wrr_dest_changed`).

use super::common::gcd;
use crate::ipvs::dest::Dest;

/// WRR mark. `cl == None` is the list head.
#[derive(Debug)]
pub(crate) struct Wrr {
    cl: Option<usize>,
    cw: i32,
    mw: i32,
    di: i32,
}

/// `ip_vs_wrr_gcd_weight`: gcd of the positive weights, 1 when there are none.
fn gcd_weight(dests: &[Dest]) -> i32 {
    let g = dests
        .iter()
        .map(|d| d.weight)
        .filter(|&w| w > 0)
        .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
    if g > 0 {
        g
    } else {
        1
    }
}

/// `ip_vs_wrr_max_weight` (0 for an empty list).
fn max_weight(dests: &[Dest]) -> i32 {
    dests.iter().map(|d| d.weight).fold(0, i32::max)
}

impl Wrr {
    /// `ip_vs_wrr_init_svc`.
    pub(crate) fn new(dests: &[Dest]) -> Self {
        let di = gcd_weight(dests);
        let mw = max_weight(dests) - (di - 1);
        Wrr {
            cl: None,
            cw: mw,
            mw,
            di,
        }
    }

    /// `ip_vs_wrr_dest_changed` (add, edit and delete hooks).
    pub(crate) fn dest_changed(&mut self, dests: &[Dest]) {
        self.cl = None;
        self.di = gcd_weight(dests);
        self.mw = max_weight(dests) - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    /// `ip_vs_wrr_schedule`.
    pub(crate) fn schedule(&mut self, dests: &[Dest]) -> Option<usize> {
        if self.mw == 0 {
            // err_noavail: cl stays where it was.
            return None;
        }
        let n = dests.len();
        let last = self.cl;
        let mut pos = self.cl;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            let mut i = pos.map_or(0, |p| p + 1);
            while i < n {
                let d = &dests[i];
                if !d.overloaded && d.weight >= self.cw {
                    self.cl = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    // err_over: cl = the dest we stopped at.
                    self.cl = Some(i);
                    return None;
                }
                i += 1;
            }
            pos = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    // err_over with the walk at the head.
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kernel_trace_weights_4_3_2() {
        // -a A w4, -a B w3, -a C w2 => list [C(2), B(3), A(4)].
        // init_svc on the empty list: di = 1, mw = 0, cw = 0. First add
        // (A): di = 4, mw = 4 - 3 = 1, cw == 0 -> cw = mw = 1. Later adds:
        // di = 1, mw = 4, cw = 1 is neither > mw nor 0 and di == 1: cw
        // stays 1. So a freshly built service starts on the *last* pass.
        let mut s = service("wrr", &[(1, 4), (2, 3), (3, 2)]);
        // cw=1: C, B, A. Head: cw=0 -> wraps to mw=4: A. Head: cw=3: B, A.
        // Head: cw=2: C, B, A. Head: cw=1: C ...
        assert_eq!(picks(&mut s, 10), [3, 2, 1, 1, 2, 1, 3, 2, 1, 3]);
    }

    #[test]
    fn gcd_steps_and_edit_mid_sequence() {
        // -a A w4, -a B w2 => list [B(2), A(4)], di = 2, mw = 4 - 1 = 3.
        let mut s = service("wrr", &[(1, 4), (2, 2)]);
        // First add A(4): di=4, mw=4-3=1, cw=0 -> 1. Second add: di=2,
        // mw=3, cw=1 <= 3 and
        // di>1 -> cw = (1/2)*2+1 = 1. So cw = 1: B(2)>=1 -> B, A -> A, head:
        // cw=-1 -> wraps to mw=3: B no, A -> A; head: cw=1: B, A; ...
        assert_eq!(picks(&mut s, 6), [2, 1, 1, 2, 1, 1]);
        // Now cl = A, cw = 3. Edit B to 4: cl = head, di = 4, mw = 4-3 = 1,
        // cw = 3 > mw -> cw = 1. Both weights 4 >= 1: B, A, (head: cw wraps
        // to 1) B, A.
        edit(&mut s, 2, 4);
        assert_eq!(picks(&mut s, 4), [2, 1, 2, 1]);
    }

    #[test]
    fn weight_zero_overload_and_delete() {
        let mut s = service("wrr", &[(1, 1), (2, 1), (3, 1)]);
        // list [3, 2, 1], all weight 1, cw = 1.
        assert_eq!(picks(&mut s, 2), [3, 2]);
        // Quiesce 1: dest_changed resets cl to head; 1 never picked.
        edit(&mut s, 1, 0);
        assert_eq!(picks(&mut s, 4), [3, 2, 3, 2]);
        overload(&mut s, 3, true);
        assert_eq!(picks(&mut s, 2), [2, 2]);
        // Overloaded 2 as well: every dest is checked down to cw = 1 and
        // the kernel reports "all destinations are overloaded".
        overload(&mut s, 2, true);
        assert_eq!(pick(&mut s), None);
        del(&mut s, 3);
        overload(&mut s, 2, false);
        assert_eq!(picks(&mut s, 2), [2, 2]);
        // All weights zero: mw = 0 -> no destination available.
        edit(&mut s, 2, 0);
        assert_eq!(pick(&mut s), None);
    }

    /// Reference: the ideal WRR definition for a stable set of weights is
    /// replaced here by a literal transcription over a ring with an explicit
    /// head slot, keyed by identity.
    struct RefWrr {
        cl: Option<(std::net::IpAddr, u16)>,
        cw: i32,
        mw: i32,
        di: i32,
    }

    impl RefWrr {
        fn changed(&mut self, list: &[Dest]) {
            let pos: Vec<i32> = list.iter().map(|d| d.weight).filter(|&w| w > 0).collect();
            let mut di = 0;
            for w in &pos {
                di = if di == 0 { *w } else { num_gcd(di, *w) };
            }
            if di == 0 {
                di = 1;
            }
            let max = list.iter().map(|d| d.weight).max().unwrap_or(0).max(0);
            self.cl = None;
            self.di = di;
            self.mw = max - (di - 1);
            if self.cw > self.mw || self.cw == 0 {
                self.cw = self.mw;
            } else if di > 1 {
                self.cw = (self.cw / di) * di + 1;
            }
        }
    }

    fn num_gcd(a: i32, b: i32) -> i32 {
        if b == 0 {
            a
        } else {
            num_gcd(b, a % b)
        }
    }

    impl Reference for RefWrr {
        fn add(&mut self, list: &[Dest]) {
            self.changed(list)
        }
        fn edit(&mut self, list: &[Dest], _: usize) {
            self.changed(list)
        }
        fn del(&mut self, after: &[Dest], _: &Dest, _: usize) {
            self.changed(after)
        }
        fn schedule(
            &mut self,
            list: &[Dest],
            _: &Ctx,
            _: &mut dyn rand_core::RngCore,
        ) -> Option<usize> {
            if self.mw == 0 {
                return None;
            }
            // ring[0] is the head.
            let ring: Vec<Option<usize>> = std::iter::once(None)
                .chain((0..list.len()).map(Some))
                .collect();
            let id = |i: usize| (list[i].addr, list[i].port);
            let mut at = ring.iter().position(|r| r.map(id) == self.cl).unwrap_or(0);
            let last = at;
            let mut stop = usize::MAX;
            let (mut last_pass, mut restarted) = (false, false);
            loop {
                at = (at + 1) % ring.len();
                match ring[at] {
                    Some(i) => {
                        if !list[i].overloaded && list[i].weight >= self.cw {
                            self.cl = Some(id(i));
                            return Some(i);
                        }
                        if at == stop {
                            self.cl = Some(id(i));
                            return None;
                        }
                    }
                    None => {
                        self.cw -= self.di;
                        if self.cw <= 0 {
                            self.cw = self.mw;
                            if last_pass || last == 0 {
                                self.cl = None;
                                return None;
                            }
                            restarted = true;
                        }
                        last_pass = self.cw <= self.di;
                        if last_pass && restarted && last != 0 {
                            stop = last;
                        }
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn same_choices_as_reference(ops in ops_strategy(6, 6)) {
            check("wrr", Default::default(), &ops, RefWrr { cl: None, cw: 0, mw: 0, di: 1 })?;
        }
    }
}
