//! The expiry wheel: 1/64-second buckets of slab references, checked lazily (a deadline
//! moving later costs nothing until its bucket comes up).

use std::collections::BTreeMap;

/// One expiry bucket.
#[derive(Debug)]
pub(super) struct Bucket {
    /// Slab references filed here (some may be stale: freed, or refiled elsewhere).
    pub(super) refs: Vec<u32>,
    /// A lower bound of the deadlines filed here, so that `poll_timeout` need not read the
    /// entries (it runs after every packet).
    pub(super) bound: u64,
}

/// Expiry buckets by tick: a map, except that the bucket filed into last is kept out of it,
/// since filings come in runs for one tick (new connections due 60 s from now, connections
/// refiled at their first visit due about then too) and each would otherwise walk the tree.
#[derive(Debug, Default)]
pub(super) struct Wheel {
    pub(super) map: BTreeMap<u32, Bucket>,
    /// The bucket filed into last. The map may hold the same tick too (filed before another
    /// tick took the place); those references are older.
    pub(super) hot: Option<(u32, Bucket)>,
    /// The earliest tick and its bound (`poll_timeout` asks after every packet).
    pub(super) earliest: Option<(u32, u64)>,
}

impl Wheel {
    /// Note that tick `sec` holds an entry due at `deadline`, filing `r` there if given.
    pub(super) fn file(&mut self, sec: u32, r: Option<u32>, deadline: u64) {
        self.lower(sec, deadline);
        if let Some((s, b)) = &mut self.hot {
            if *s == sec {
                b.bound = b.bound.min(deadline);
                b.refs.extend(r);
                return;
            }
        }
        if let Some((s, b)) = self.hot.take() {
            self.merge(s, b);
        }
        let bucket = Bucket {
            refs: r.into_iter().collect(),
            bound: deadline,
        };
        self.hot = Some((sec, bucket));
    }

    /// Keep `earliest` true after tick `sec` got a deadline `bound`.
    fn lower(&mut self, sec: u32, bound: u64) {
        self.earliest = match self.earliest {
            Some((s, b)) if s < sec => Some((s, b)),
            Some((s, b)) if s == sec => Some((s, b.min(bound))),
            _ => Some((sec, bound)),
        };
    }

    /// Add `b`'s references after those already in the map at `sec`.
    pub(super) fn merge(&mut self, sec: u32, b: Bucket) {
        self.lower(sec, b.bound);
        match self.map.entry(sec) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(b);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                let m = o.get_mut();
                m.bound = m.bound.min(b.bound);
                m.refs.extend(b.refs);
            }
        }
    }

    /// The earliest tick filed, with the lower bound of its deadlines.
    pub(super) fn first(&self) -> Option<(u32, u64)> {
        debug_assert_eq!(self.earliest, self.find_earliest(), "stale earliest bucket");
        self.earliest
    }

    fn find_earliest(&self) -> Option<(u32, u64)> {
        let m = self.map.first_key_value().map(|(&s, b)| (s, b.bound));
        let h = self.hot.as_ref().map(|(s, b)| (*s, b.bound));
        match (m, h) {
            (Some(a), Some(b)) if a.0 == b.0 => Some((a.0, a.1.min(b.1))),
            (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// Take every reference filed at `sec`, in filing order.
    pub(super) fn take(&mut self, sec: u32) -> Vec<u32> {
        let mut refs = self.map.remove(&sec).map(|b| b.refs).unwrap_or_default();
        if self.hot.as_ref().is_some_and(|(s, _)| *s == sec) {
            if let Some((_, b)) = self.hot.take() {
                refs.extend(b.refs);
            }
        }
        self.earliest = self.find_earliest();
        refs
    }

    /// Bytes allocated.
    pub(super) fn heap_bytes(&self) -> usize {
        let per = |b: &Bucket| b.refs.capacity() * 4 + std::mem::size_of::<(u32, Bucket)>() + 8;
        self.map.values().map(per).sum::<usize>() + self.hot.as_ref().map_or(0, |(_, b)| per(b))
    }
}

/// Width of one expiry bucket: 1/64 s, so a busy second is not rescanned for every
/// deadline in it (u32 buckets still cover two years).
pub(super) const TICK_NS: u64 = 1_000_000_000 / 64;

/// The expiry bucket of a deadline.
pub(super) fn sec_of(nanos: u64) -> u32 {
    u32::try_from(nanos / TICK_NS).unwrap_or(u32::MAX)
}
