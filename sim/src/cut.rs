//! Gateway cut-through: the bookkeeping of frames a gateway forwards without an event.
//!
//! A gateway only routes: when a frame is put on the wire towards one, the engine can work
//! out at once what the gateway will do with it when it arrives (route, ARP cache, onward
//! transmission) and queue the onward deliveries directly, saving the gateway's own event.
//! That answer stays right only while nothing it read changes before the frame arrives, so
//! each such frame is kept here until then; when something does change (an ARP frame
//! reaching the gateway, a fault, a switch learning an address anew, the harness reaching
//! into a stack or the topology), the frames still on their way are reverted: their onward
//! deliveries are dropped and they reach the gateway as ordinary deliveries, at the time and
//! in the queue order they would have had. The gateway's own timers (ARP retries) change
//! nothing a forwarding decision reads: a decision is only made from an ARP entry in hand.

use std::rc::Rc;

use lvs_core::Instant;
use petgraph::graph::EdgeIndex;

use crate::packet::Mac;

/// One frame forwarded ahead of its arrival at a gateway.
#[derive(Debug)]
pub struct Cut {
    /// When the gateway receives the frame.
    pub at: Instant,
    /// The queue sequence number its delivery to the gateway would have had.
    pub seq: u64,
    /// The gateway's end of the link it arrives on.
    pub link: EdgeIndex,
    /// The frame as the gateway sends it on (taken by the last onward delivery).
    pub frame: Option<Rc<Vec<u8>>>,
    /// The (destination, source) MACs it had on arrival, before the gateway rewrote them.
    pub arrived: (Mac, Mac),
    /// Onward deliveries still queued.
    pub pending: u32,
    /// Reverted: the onward deliveries still queued are void.
    pub reverted: bool,
}

/// A reverted frame: deliver `frame` on `link` at `at` with sequence number `seq`.
#[derive(Debug, PartialEq, Eq)]
pub struct Reverted {
    /// Arrival at the gateway.
    pub at: Instant,
    /// Queue sequence number.
    pub seq: u64,
    /// The gateway's end of the link.
    pub link: EdgeIndex,
    /// The frame as it arrives there.
    pub frame: Vec<u8>,
}

/// The cut-through frames: those still on their way to the gateway (revertible) and those
/// whose onward deliveries are still queued. Reverting is rare (ARP traffic at the gateway,
/// faults), so it scans them all; nothing is kept per frame for it.
#[derive(Default, Debug)]
pub struct Cuts {
    slots: Vec<Option<Cut>>,
    free: Vec<u32>,
}

/// Slots in use before the slab, about to grow, is first swept of settled cuts without
/// onward deliveries (all their copies were lost).
const SWEEP_FROM: usize = 64;

impl Cuts {
    /// Record `cut`; returns its id for the onward deliveries. `now` is the key of the
    /// event being handled (cuts at or before it have reached the gateway).
    pub fn start(&mut self, cut: Cut, now: (Instant, u64)) -> u32 {
        let len = self.slots.len();
        if self.free.is_empty() && len >= SWEEP_FROM && len.is_power_of_two() {
            self.sweep(now);
        }
        match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(cut);
                id
            }
            None => {
                self.slots.push(Some(cut));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        }
    }

    /// One more onward delivery of `id` was queued.
    pub fn add_pending(&mut self, id: u32) {
        if let Some(c) = self.get_mut(id) {
            c.pending += 1;
        }
    }

    /// An onward delivery of `id` is due: the frame to deliver, unless the cut was reverted.
    /// Onward deliveries come after the gateway's arrival time, so the cut is settled.
    pub fn onward(&mut self, id: u32) -> Option<Rc<Vec<u8>>> {
        let c = self.get_mut(id)?;
        c.pending = c.pending.saturating_sub(1);
        let frame = match (c.reverted, c.pending) {
            (true, _) => None,
            (false, 0) => c.frame.take(),
            (false, _) => c.frame.clone(),
        };
        if c.pending == 0 {
            self.release(id);
        }
        frame
    }

    /// Revert every cut whose gateway arrival comes after the event `now`, returning the
    /// deliveries to make instead, in queue order.
    pub fn revert_after(&mut self, now: (Instant, u64)) -> Vec<Reverted> {
        let mut out = Vec::new();
        for id in 0..self.slots.len() {
            let Some(c) = self.slots[id].as_mut() else {
                continue;
            };
            if c.reverted {
                continue;
            }
            if (c.at, c.seq) <= now {
                if c.pending == 0 {
                    self.release(id as u32);
                }
                continue;
            }
            c.reverted = true;
            if let Some(frame) = c.frame.take() {
                let mut frame = Rc::try_unwrap(frame).unwrap_or_else(|f| f.as_ref().clone());
                if let Some(h) = frame.get_mut(0..12) {
                    h[0..6].copy_from_slice(&c.arrived.0);
                    h[6..12].copy_from_slice(&c.arrived.1);
                }
                out.push(Reverted {
                    at: c.at,
                    seq: c.seq,
                    link: c.link,
                    frame,
                });
            }
            if c.pending == 0 {
                self.release(id as u32);
            }
        }
        out.sort_by_key(|r| (r.at, r.seq));
        out
    }

    /// Cuts not yet settled or with onward deliveries queued.
    pub fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Free the settled cuts without onward deliveries.
    fn sweep(&mut self, now: (Instant, u64)) {
        for id in 0..self.slots.len() {
            let settled_idle = self.slots[id]
                .as_ref()
                .is_some_and(|c| c.pending == 0 && (c.at, c.seq) <= now);
            if settled_idle {
                self.release(id as u32);
            }
        }
    }

    fn get_mut(&mut self, id: u32) -> Option<&mut Cut> {
        self.slots.get_mut(id as usize)?.as_mut()
    }

    fn release(&mut self, id: u32) {
        if let Some(slot) = self.slots.get_mut(id as usize) {
            if slot.take().is_some() {
                self.free.push(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u64) -> Instant {
        Instant::from_nanos(n)
    }

    fn cut(at: u64, seq: u64) -> Cut {
        let mut frame = vec![0u8; 20];
        frame[0..6].copy_from_slice(&[9; 6]);
        Cut {
            at: t(at),
            seq,
            link: EdgeIndex::new(3),
            frame: Some(Rc::new(frame)),
            arrived: ([1; 6], [2; 6]),
            pending: 0,
            reverted: false,
        }
    }

    #[test]
    fn onward_copies_share_the_frame_and_the_last_takes_it() {
        let mut c = Cuts::default();
        let id = c.start(cut(10, 1), (t(0), 0));
        c.add_pending(id);
        c.add_pending(id);
        let first = c.onward(id).expect("first copy");
        let last = c.onward(id).expect("last copy");
        assert_eq!(first, last);
        assert_eq!(Rc::strong_count(&last), 2, "the slot let go of it");
        assert_eq!(c.live(), 0);
    }

    #[test]
    fn only_frames_not_yet_at_the_gateway_are_reverted_with_their_arrival_macs() {
        let mut c = Cuts::default();
        let done = c.start(cut(10, 1), (t(0), 0));
        let equal_time_before = c.start(cut(20, 2), (t(0), 0));
        let equal_time_after = c.start(cut(20, 9), (t(0), 0));
        let later = c.start(cut(30, 4), (t(0), 0));
        for id in [done, equal_time_before, equal_time_after, later] {
            c.add_pending(id);
        }
        let back = c.revert_after((t(20), 5));
        let keys: Vec<(Instant, u64)> = back.iter().map(|r| (r.at, r.seq)).collect();
        assert_eq!(keys, vec![(t(20), 9), (t(30), 4)]);
        assert_eq!(&back[0].frame[0..12], &[1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
        assert!(c.onward(done).is_some(), "a settled cut still delivers");
        assert!(c.onward(equal_time_before).is_some());
        assert!(
            c.onward(equal_time_after).is_none(),
            "reverted copies are void"
        );
        assert!(c.onward(later).is_none());
        assert_eq!(c.live(), 0);
        assert!(
            c.revert_after((t(20), 5)).is_empty(),
            "nothing is reverted twice"
        );
    }

    #[test]
    fn settled_cuts_without_onward_copies_are_swept() {
        let mut c = Cuts::default();
        for i in 0..200u64 {
            // No onward copy (all lost): only the sweep frees these.
            c.start(cut(i, i), (t(i), i));
        }
        assert!(c.live() <= 2 * SWEEP_FROM, "{} cuts kept", c.live());
    }
}
