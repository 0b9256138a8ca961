//! The event queue: a min-heap on (time, sequence), so equal-time events run in insertion order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

use lvs_core::Instant;

/// A pending event under its key: (time, sequence) as one integer, complemented, so that
/// the max-heap's greatest entry is the earliest event and each sift step compares once.
struct Entry<E> {
    key: u128,
    event: E,
}

impl<E> Entry<E> {
    fn new(at: Instant, seq: u64, event: E) -> Self {
        let key = !((u128::from(at.as_nanos()) << 64) | u128::from(seq));
        Entry { key, event }
    }

    fn at(&self) -> Instant {
        Instant::from_nanos(((!self.key) >> 64) as u64)
    }

    fn seq(&self) -> u64 {
        !self.key as u64
    }
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Entry<E> {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key.cmp(&o.key)
    }
}

/// Events due within this much of the last one taken go to the near heap.
const NEAR: Duration = Duration::from_millis(1);

/// Pending events ordered by (time, insertion sequence).
///
/// Two heaps: most events are frames due a link latency from now and are taken within a
/// few events, while timers (service times, arrivals, protocol timers) wait far longer. The
/// near heap stays tiny, so the frames' pushes and pops are cheap, and the far heap is
/// touched only by the events that live long; the earlier of the two tops is next, so the
/// order is exactly that of one heap.
pub struct EventQueue<E> {
    near: BinaryHeap<Entry<E>>,
    far: BinaryHeap<Entry<E>>,
    /// Time of the event taken last.
    now: Instant,
    seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            near: BinaryHeap::new(),
            far: BinaryHeap::new(),
            now: Instant::ZERO,
            seq: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedule `event` at `at`; returns its sequence number.
    pub fn push(&mut self, at: Instant, event: E) -> u64 {
        let seq = self.reserve();
        self.push_reserved(at, seq, event);
        seq
    }

    /// Take the next sequence number without scheduling anything yet: an event pushed
    /// later with [`EventQueue::push_reserved`] runs where one pushed now would have.
    pub fn reserve(&mut self) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        seq
    }

    /// Schedule `event` at `at` under a sequence number from [`EventQueue::reserve`].
    pub fn push_reserved(&mut self, at: Instant, seq: u64, event: E) {
        let e = Entry::new(at, seq, event);
        if at <= self.now + NEAR {
            self.near.push(e);
        } else {
            self.far.push(e);
        }
    }

    /// The heap holding the earliest event.
    fn first(&mut self) -> Option<&mut BinaryHeap<Entry<E>>> {
        // Entries order in reverse: the greater one is the earlier.
        let near_first = match (self.near.peek(), self.far.peek()) {
            (Some(n), Some(f)) => n > f,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        Some(if near_first {
            &mut self.near
        } else {
            &mut self.far
        })
    }

    /// Time of the earliest event.
    pub fn peek_time(&self) -> Option<Instant> {
        match (self.near.peek(), self.far.peek()) {
            (Some(n), Some(f)) => Some(n.at().min(f.at())),
            (n, f) => n.or(f).map(|e| e.at()),
        }
    }

    /// Remove the earliest event.
    pub fn pop(&mut self) -> Option<(Instant, E)> {
        self.pop_keyed().map(|(at, _, e)| (at, e))
    }

    /// Remove the earliest event, with its sequence number.
    pub fn pop_keyed(&mut self) -> Option<(Instant, u64, E)> {
        let e = self.first()?.pop()?;
        let at = e.at();
        self.now = at;
        Some((at, e.seq(), e.event))
    }

    /// Remove the earliest event, with its sequence number, if it is due at or before
    /// `until` (one look at the two heaps where `peek_time` then `pop_keyed` take two).
    pub fn pop_due(&mut self, until: Instant) -> Option<(Instant, u64, E)> {
        let heap = self.first()?;
        if heap.peek()?.at() > until {
            return None;
        }
        let e = heap.pop()?;
        let at = e.at();
        self.now = at;
        Some((at, e.seq(), e.event))
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.near.len() + self.far.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_reserved_number_orders_the_event_as_if_pushed_then() {
        let mut q = EventQueue::new();
        let t = Instant::from_nanos(5);
        let early = q.reserve();
        q.push(t, "pushed after the reservation");
        q.push_reserved(t, early, "reserved first");
        assert_eq!(q.pop(), Some((t, "reserved first")));
        assert_eq!(q.pop_keyed(), Some((t, 1, "pushed after the reservation")));
    }

    #[test]
    fn pop_due_takes_only_what_is_due() {
        let mut q = EventQueue::new();
        q.push(Instant::from_nanos(5), "five");
        q.push(Instant::from_nanos(3_000_000), "far");
        assert_eq!(q.pop_due(Instant::from_nanos(4)), None);
        assert_eq!(
            q.pop_due(Instant::from_nanos(5)),
            Some((Instant::from_nanos(5), 0, "five"))
        );
        assert_eq!(q.pop_due(Instant::from_nanos(2_999_999)), None);
        assert_eq!(q.len(), 1);
    }

    proptest! {
        #[test]
        fn pops_in_time_then_insertion_order(times in proptest::collection::vec(0u64..20, 0..200)) {
            let mut q = EventQueue::new();
            for (i, t) in times.iter().enumerate() {
                q.push(Instant::from_nanos(*t), i);
            }
            let mut out = Vec::new();
            while let Some((t, i)) = q.pop() {
                out.push((t.as_nanos(), i));
            }
            let mut expected: Vec<(u64, usize)> =
                times.iter().enumerate().map(|(i, t)| (*t, i)).collect();
            expected.sort();
            prop_assert_eq!(out, expected);
        }

        /// Interleaved pushes (never before the last pop, as the simulator does) and pops
        /// come out in the order a sorted reference gives.
        #[test]
        fn interleaved_matches_a_sorted_reference(
            ops in proptest::collection::vec((0u64..3, 0u64..3_000_000), 0..400)
        ) {
            let mut q = EventQueue::new();
            let mut reference: Vec<(u64, usize)> = Vec::new();
            let mut now = 0u64;
            for (i, (op, delay)) in ops.iter().enumerate() {
                if *op == 0 {
                    let got = q.pop();
                    reference.sort();
                    let want = if reference.is_empty() { None } else { Some(reference.remove(0)) };
                    prop_assert_eq!(got.map(|(t, v)| (t.as_nanos(), v)), want);
                    if let Some((t, _)) = want {
                        now = t;
                    }
                } else {
                    // Many equal times: delays are often zero or repeat; the long ones land
                    // on both sides of `NEAR`.
                    let at = now + if *op == 1 { delay % 4 } else { *delay };
                    q.push(Instant::from_nanos(at), i);
                    reference.push((at, i));
                }
                reference.sort();
                prop_assert_eq!(q.peek_time().map(|t| t.as_nanos()), reference.first().map(|r| r.0));
                prop_assert_eq!(q.len(), reference.len());
            }
        }
    }
}
