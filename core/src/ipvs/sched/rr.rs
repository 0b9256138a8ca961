//! Round-robin (`ip_vs_rr.c`).
//!
//! The kernel keeps a cursor into `svc->destinations` (`sched_data`), starting
//! at the list head. A pick walks forward from the cursor, wrapping past the
//! head once, and takes the first destination with weight > 0 and no
//! overload flag; the cursor then points at it. When the cursor's destination
//! is deleted, the cursor moves to its predecessor (`p->next->prev`).

use crate::ipvs::dest::Dest;

/// Round-robin cursor: `None` is the list head, `Some(i)` the destination at `i`.
#[derive(Debug, Default)]
pub(crate) struct Rr {
    cursor: Option<usize>,
}

impl Rr {
    /// A destination was linked at `idx`; the cursor keeps pointing at the same one.
    pub(crate) fn add_dest(&mut self, idx: usize) {
        if let Some(c) = self.cursor {
            if c >= idx {
                self.cursor = Some(c + 1);
            }
        }
    }

    /// The destination at `idx` was unlinked (`ip_vs_rr_del_dest`).
    pub(crate) fn del_dest(&mut self, idx: usize) {
        if let Some(c) = self.cursor {
            self.cursor = match c.cmp(&idx) {
                std::cmp::Ordering::Less => Some(c),
                // p == &dest->n_list: step back to the predecessor (or head).
                std::cmp::Ordering::Equal => idx.checked_sub(1),
                std::cmp::Ordering::Greater => Some(c - 1),
            };
        }
    }

    /// `ip_vs_rr_schedule`.
    pub(crate) fn schedule(&mut self, dests: &[Dest]) -> Option<usize> {
        let n = dests.len();
        // From the head: one pass over the whole list. From dest k: k+1..n,
        // then a second pass 0..=k that stops after checking k itself.
        let (first, wrap) = match self.cursor {
            None => (0..n, 0..0),
            Some(k) => (k + 1..n, 0..(k + 1).min(n)),
        };
        let pick = first
            .chain(wrap)
            .find(|&i| !dests[i].overloaded && dests[i].weight > 0)?;
        self.cursor = Some(pick);
        Some(pick)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kernel_trace_head_insertion_quiesce_and_delete_of_cursor() {
        // ipvsadm -a 1, -a 2, -a 3: list = [3, 2, 1] (head insertion).
        let mut s = service("rr", &[(1, 1), (2, 1), (3, 1)]);
        // Cursor at head: first pass starts at the first entry, dest 3.
        assert_eq!(picks(&mut s, 4), [3, 2, 1, 3]);
        // Weight 0 quiesces 2: skipped, cursor now at 3 -> 1 -> (wrap) 3.
        edit(&mut s, 2, 0);
        assert_eq!(picks(&mut s, 3), [1, 3, 1]);
        // Cursor is at 1 (last). Delete 1: cursor moves to its predecessor 2,
        // so the next walk starts after 2 -> wraps to 3.
        del(&mut s, 1);
        assert_eq!(picks(&mut s, 1), [3]);
        // Add 4 at the head: list [4, 3, 2]; cursor stays on 3 -> next is 2
        // (weight 0, skipped) -> wrap to 4.
        add(&mut s, 4, 1);
        assert_eq!(picks(&mut s, 3), [4, 3, 4]);
    }

    #[test]
    fn overloaded_and_all_quiesced() {
        let mut s = service("rr", &[(1, 1), (2, 1)]);
        overload(&mut s, 2, true);
        // list [2, 1]; 2 overloaded is skipped every time.
        assert_eq!(picks(&mut s, 3), [1, 1, 1]);
        overload(&mut s, 1, true);
        // Nothing eligible: NULL, cursor unchanged.
        assert_eq!(pick(&mut s), None);
        overload(&mut s, 2, false);
        assert_eq!(picks(&mut s, 2), [2, 2]);
        let mut e = service("rr", &[]);
        assert_eq!(pick(&mut e), None);
    }

    /// Reference: a circular list of identities with an explicit head slot,
    /// and a cursor that is an identity (or the head), as the kernel's is.
    #[derive(Default)]
    struct RefRr {
        cursor: Option<(std::net::IpAddr, u16)>,
    }

    impl Reference for RefRr {
        fn del(&mut self, after: &[Dest], removed: &Dest, idx: usize) {
            if self.cursor == Some((removed.addr, removed.port)) {
                self.cursor = if idx == 0 {
                    None
                } else {
                    Some((after[idx - 1].addr, after[idx - 1].port))
                };
            }
        }
        fn schedule(
            &mut self,
            list: &[Dest],
            _: &Ctx,
            _: &mut dyn rand_core::RngCore,
        ) -> Option<usize> {
            // Ring: head slot (None) followed by every dest.
            let ring: Vec<Option<usize>> = std::iter::once(None)
                .chain((0..list.len()).map(Some))
                .collect();
            let start = ring
                .iter()
                .position(|r| r.map(|i| (list[i].addr, list[i].port)) == self.cursor)
                .unwrap_or(0);
            for step in 1..=ring.len() {
                if let Some(i) = ring[(start + step) % ring.len()] {
                    if list[i].weight > 0 && !list[i].overloaded {
                        self.cursor = Some((list[i].addr, list[i].port));
                        return Some(i);
                    }
                }
            }
            None
        }
    }

    proptest! {
        #[test]
        fn same_choices_as_reference(ops in ops_strategy(8, 5)) {
            check("rr", Default::default(), &ops, RefRr::default())?;
        }
    }
}
