//! Frames on the wire: carrier, switching, link latency/loss/duplication/reordering, and
//! the gateway cut-through (see `crate::cut`).

use std::rc::Rc;

use lvs_core::Instant;
use petgraph::graph::EdgeIndex;
use petgraph::visit::EdgeRef;
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;

use crate::cut::Cut;
use crate::packet::{self, Mac};
use crate::stack::Rx;

use super::world::{mac_key, Kind};
use super::world::{Model, Plan, Switched};
use super::{Ev, Sim};

impl Sim {
    /// Read the interfaces' state back into the links after `stack_mut` lent a stack out.
    pub(super) fn sync_links(&mut self) {
        if !self.links_stale {
            return;
        }
        self.links_stale = false;
        for l in self.graph.edge_weights_mut() {
            l.iface_up = self
                .hosts
                .get(l.host)
                .and_then(|h| h.stack.ifaces().get(l.iface))
                .is_some_and(|i| i.up);
        }
    }

    pub(super) fn iface_carrier(&self, host: usize, iface: usize) -> bool {
        let Some(i) = self
            .hosts
            .get(host)
            .and_then(|h| h.stack.ifaces().get(iface))
        else {
            return false;
        };
        i.up && i.link.is_some_and(|e| self.graph[e].up)
    }

    /// Put a frame on the wire now.
    pub(super) fn transmit(&mut self, host: usize, iface: usize, frame: Rc<Vec<u8>>) {
        self.send(host, iface, frame, self.now, None);
    }

    /// Put a frame on the wire at `at` (now, or later for a gateway's cut-through): every
    /// other port of the segment (or the learnt one) gets a copy after both links' latency
    /// and jitter, unless a link is down, a partition blocks the pair, or the segment's dice
    /// say lost; some copies are duplicated or held back. Copies for a gateway are forwarded
    /// through it at once when they can be (`cut_or_deliver`); the onward copies of such a
    /// forwarding (`cut`) are queued against it.
    pub(super) fn send(
        &mut self,
        host: usize,
        iface: usize,
        frame: Rc<Vec<u8>>,
        at: Instant,
        cut: Option<u32>,
    ) {
        if !self.iface_carrier(host, iface) {
            return;
        }
        let Some(e) = self.hosts[host].stack.ifaces()[iface].link else {
            return;
        };
        let (Some(src), Some(dst)) = (packet::src_mac(&frame), packet::dst_mac(&frame)) else {
            return;
        };
        let seg_id = self.graph[e].seg;
        let seg = &mut self.segs[seg_id];
        let (src_key, dst_key) = (mac_key(src), mac_key(dst));
        // A port sends to the same few addresses over and over: what the switch did with
        // the last frame from it is kept, and holds for a frame with the same addresses as
        // long as the segment's address list has not changed.
        let last = self.graph[e].switched;
        let (known, relearnt) = match last {
            Some(m)
                if seg.learn
                    && m.version == seg.version
                    && m.src == src_key
                    && m.dst == dst_key =>
            {
                (m.port, false)
            }
            _ => {
                let mut relearnt = false;
                // A gateway's onward copy (`cut`) leaves from a port the switch already knows
                // it on (`gateway_plan` checked): learning from it changes nothing.
                debug_assert!(
                    cut.is_none() || !seg.learn || seg.fdb.contains(&(src_key, e)),
                    "a cut-through frame from a port the switch has not learnt"
                );
                if seg.learn && cut.is_none() {
                    match seg.fdb.iter_mut().find(|(m, _)| *m == src_key) {
                        Some(entry) => {
                            relearnt = entry.1 != e;
                            entry.1 = e;
                        }
                        None => {
                            relearnt = true;
                            seg.fdb.push((src_key, e));
                        }
                    }
                }
                let known = if seg.learn && !packet::is_group(dst) {
                    seg.fdb.iter().find(|(m, _)| *m == dst_key).map(|(_, p)| *p)
                } else {
                    None
                };
                if relearnt {
                    seg.version += 1;
                }
                if seg.learn {
                    self.graph[e].switched = Some(Switched {
                        version: seg.version,
                        src: src_key,
                        dst: dst_key,
                        port: known,
                    });
                }
                (known, relearnt)
            }
        };
        if relearnt {
            // Where a switch sends a MAC decides where forwarded-ahead frames go.
            self.revert_cuts();
        }
        match known {
            Some(e2) if e2 != e => self.send_over(host, e, e2, at, &frame, cut),
            Some(_) => {}
            None => {
                let mut targets = std::mem::take(&mut self.targets);
                targets.clear();
                targets.extend(
                    self.graph
                        .edges(self.segs[seg_id].node)
                        .map(|r| r.id())
                        .filter(|x| *x != e),
                );
                // Deterministic order regardless of adjacency-list layout.
                targets.sort_unstable();
                for &e2 in &targets {
                    self.send_over(host, e, e2, at, &frame, cut);
                }
                self.targets = targets;
            }
        }
        if self.gateway_bound.is_empty() {
            return;
        }
        let mut bound = std::mem::take(&mut self.gateway_bound);
        let last = bound.len() - 1;
        let mut frame = Some(frame);
        for (k, (arrive, seq, link)) in bound.drain(..).enumerate() {
            // The last copy takes this reference, so a frame sent to the gateway alone is
            // forwarded in its own buffer.
            let f = if k == last {
                frame.take()
            } else {
                frame.clone()
            };
            if let Some(f) = f {
                self.cut_or_deliver(arrive, seq, link, f);
            }
        }
        self.gateway_bound = bound;
    }

    /// The copies of a frame `host` sends at `at` from link `e` that reach link `e2` of the
    /// same segment: none if `e2` or its interface is down, a partition blocks the pair or
    /// the dice say lost; two if duplicated; each after both links' latency and jitter.
    fn send_over(
        &mut self,
        host: usize,
        e: EdgeIndex,
        e2: EdgeIndex,
        at: Instant,
        frame: &Rc<Vec<u8>>,
        cut: Option<u32>,
    ) {
        let (l1, l2) = (&self.graph[e], &self.graph[e2]);
        if !l2.up
            || !l2.iface_up
            || (!self.blocked.is_empty() && self.blocked.contains(&(host, l2.host)))
        {
            return;
        }
        let seg_id = l1.seg;
        let rng = &mut self.segs[seg_id].rng;
        let (t1, t2) = (l1.timing, l2.timing);
        // Most links have no loss, duplication or reordering: they skip those draws' tests.
        let plain = t1.plain && t2.plain;
        let (p1, p2) = (&l1.params, &l2.params);
        if !plain
            && ((p1.loss > 0.0 && rng.gen::<f64>() < p1.loss)
                || (p2.loss > 0.0 && rng.gen::<f64>() < p2.loss))
        {
            return;
        }
        let (dup, reorder, hold) = if plain {
            (0.0, 0.0, 0)
        } else {
            (
                p1.duplicate.max(p2.duplicate),
                p1.reorder.max(p2.reorder),
                p1.reorder_delay.max(p2.reorder_delay).as_nanos() as u64,
            )
        };
        let copies = if dup > 0.0 && rng.gen::<f64>() < dup {
            2
        } else {
            1
        };
        let (latency, jitter) = (t1.latency + t2.latency, t1.jitter + t2.jitter);
        for _ in 0..copies {
            let rng = &mut self.segs[seg_id].rng;
            let mut delay = latency;
            if jitter > 0 {
                delay += uniform_to(rng, jitter);
            }
            if reorder > 0.0 && rng.gen::<f64>() < reorder {
                delay += rng.gen_range(0..=hold);
            }
            let arrive = Instant::from_nanos(at.as_nanos().saturating_add(delay));
            self.schedule_copy(arrive, e2, frame, cut);
        }
    }

    /// Queue one copy of a frame `send` puts on the wire, arriving over `link` at `arrive`:
    /// an onward copy of a forwarding done ahead of time (`cut`), a copy for a gateway to
    /// forward through it once `send` is done, or an ordinary delivery.
    fn schedule_copy(
        &mut self,
        arrive: Instant,
        link: EdgeIndex,
        frame: &Rc<Vec<u8>>,
        cut: Option<u32>,
    ) {
        let to = self.graph[link].kind;
        if to == Kind::Director && packet::is_tcp_syn(frame) {
            // A new connection's lookup misses the cache (the table is large and the key
            // new): start the load now, a few events before the SYN is handled.
            if let Model::Director(d) = &self.hosts[self.graph[link].host].model {
                if let Some(p) = &d.proc {
                    p.prefetch(frame);
                }
            }
        }
        if let Some(c) = cut {
            self.queue.push(arrive, Ev::Onward { link, cut: c });
            self.cuts.add_pending(c);
        } else if self.cut_through && to == Kind::Gateway {
            let seq = self.queue.reserve();
            self.gateway_bound.push((arrive, seq, link));
        } else {
            self.queue.push(
                arrive,
                Ev::Deliver {
                    link,
                    frame: frame.clone(),
                },
            );
        }
    }

    /// A frame reaches gateway link `link` at `arrive` (queue position `seq`): forward it
    /// through the gateway now if what the gateway will do is already certain (see `cut`),
    /// else queue the delivery.
    fn cut_or_deliver(&mut self, arrive: Instant, seq: u64, link: EdgeIndex, frame: Rc<Vec<u8>>) {
        let l = &self.graph[link];
        let (gw, at_iface) = (l.host, l.iface);
        let plan = self.gateway_plan(gw, at_iface, &frame, arrive);
        let (Some((out, src, dst)), Some(was_dst), Some(was_src)) =
            (plan, packet::dst_mac(&frame), packet::src_mac(&frame))
        else {
            self.queue
                .push_reserved(arrive, seq, Ev::Deliver { link, frame });
            return;
        };
        // Rewritten in place when this is the only reference (the usual case): no new
        // allocation for the forwarded copy.
        let mut buf = frame;
        let bytes = Rc::make_mut(&mut buf);
        bytes[0..6].copy_from_slice(&dst);
        bytes[6..12].copy_from_slice(&src);
        self.hosts[gw].stack.stats.forwarded += 1;
        let id = self.cuts.start(
            Cut {
                at: arrive,
                seq,
                link,
                frame: Some(buf.clone()),
                arrived: (was_dst, was_src),
                pending: 0,
                reverted: false,
            },
            self.cur,
        );
        self.send(gw, out, buf, arrive, Some(id));
    }

    /// What gateway `gw` will do, at `at`, with `frame` arriving on `iface`, when that is
    /// certain now: forward it on interface `out` with new (source, destination) MACs,
    /// with no ARP to ask and nothing a switch would learn from it. `None` otherwise.
    ///
    /// An IPv4 packet's decision is kept (`plans`) and reused for the next packet to the same
    /// address: nearly every frame of a run crosses the gateway to one of a few addresses,
    /// and classifying and routing each one again cost more than the rest of the hop.
    fn gateway_plan(
        &mut self,
        gw: usize,
        iface: usize,
        frame: &[u8],
        at: Instant,
    ) -> Option<(usize, Mac, Mac)> {
        if !self.iface_carrier(gw, iface) {
            return None;
        }
        let stack = &self.hosts[gw].stack;
        // What `classify` reads of the frame itself; the rest of its answer depends only on
        // the destination and the gateway's state, which a kept plan stands for.
        let my_mac = stack.ifaces().get(iface)?.spec.mac;
        let dst4 = match packet::dst_mac(frame) {
            Some(m) if m == my_mac => packet::ipv4_addrs(frame).map(|(_, d, _)| d),
            _ => None,
        };
        let kept = dst4.and_then(|d| {
            self.plans
                .iter()
                .find(|p| p.dst == d && p.gw == gw)
                .filter(|p| at < p.until)
                .map(|p| (p.out, p.src, p.next))
        });
        if let Some(plan) = kept {
            debug_assert_eq!(
                self.plan_afresh(gw, iface, frame, at)
                    .map(|(o, s, n, _)| (o, s, n)),
                Some(plan),
                "a kept gateway plan went stale"
            );
            return Some(plan);
        }
        let (out, src, next, until) = self.plan_afresh(gw, iface, frame, at)?;
        if let Some(dst) = dst4 {
            self.plans.retain(|p| !(p.gw == gw && p.dst == dst));
            self.plans.push(Plan {
                gw,
                dst,
                out,
                src,
                next,
                until,
            });
        }
        Some((out, src, next))
    }

    /// [`Sim::gateway_plan`]'s decision read from the gateway's stack and the switch, with
    /// the time its neighbour entry expires.
    fn plan_afresh(
        &self,
        gw: usize,
        iface: usize,
        frame: &[u8],
        at: Instant,
    ) -> Option<(usize, Mac, Mac, Instant)> {
        let stack = &self.hosts[gw].stack;
        let Rx::Forward(dst) = stack.classify(iface, frame) else {
            return None;
        };
        let (out, src, next, until) = stack.resolved_forward_until(at, dst)?;
        // The switch must already know the gateway on that port, or sending ahead of time
        // would teach it early.
        let link = stack.ifaces().get(out)?.link?;
        let seg = &self.segs[self.graph[link].seg];
        if seg.learn && !seg.fdb.contains(&(mac_key(src), link)) {
            return None;
        }
        Some((out, src, next, until))
    }

    /// Revert the frames forwarded ahead of time that have not reached their gateway yet
    /// (something their forwarding depended on is about to change): they are delivered to
    /// the gateway as usual, where and when they would have been.
    pub(super) fn revert_cuts(&mut self) {
        // Whatever reverts the cuts may change a gateway's decisions too.
        self.plans.clear();
        for r in self.cuts.revert_after(self.cur) {
            let gw = self.graph[r.link].host;
            if let Some(h) = self.hosts.get_mut(gw) {
                h.stack.stats.forwarded = h.stack.stats.forwarded.saturating_sub(1);
            }
            self.queue.push_reserved(
                r.at,
                r.seq,
                Ev::Deliver {
                    link: r.link,
                    frame: Rc::new(r.frame),
                },
            );
        }
    }
}

/// `rng.gen_range(0..=max)` for a `u64`, drawn as rand 0.8 draws it
/// (`UniformInt::sample_single_inclusive`: a widening multiply of one `next_u64`, redrawn
/// when it falls in the biased zone), so the same numbers come out of the stream; written
/// out because every frame draws its jitter and the generic path's checks cost a third of
/// the draw.
fn uniform_to(rng: &mut ChaCha8Rng, max: u64) -> u64 {
    let range = max.wrapping_add(1);
    if range == 0 {
        return rng.next_u64();
    }
    let zone = (range << range.leading_zeros()).wrapping_sub(1);
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(range);
        if m as u64 <= zone {
            return (m >> 64) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::uniform_to;
    use proptest::prelude::{prop_assert_eq, prop_oneof, proptest, Just};
    use rand::{Rng, RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    proptest! {
        /// The jitter draw is `gen_range(0..=max)`, number for number, and leaves the
        /// stream where it leaves it.
        #[test]
        fn uniform_to_draws_as_gen_range(seed: u64, maxes in proptest::collection::vec(
            prop_oneof![0u64..4, 1u64..3_000_000, Just(u64::MAX), (u64::MAX / 2)..u64::MAX],
            1..64,
        )) {
            let mut a = ChaCha8Rng::seed_from_u64(seed);
            let mut b = a.clone();
            for max in maxes {
                prop_assert_eq!(uniform_to(&mut a, max), b.gen_range(0..=max));
            }
            prop_assert_eq!(a.next_u64(), b.next_u64());
        }
    }
}
