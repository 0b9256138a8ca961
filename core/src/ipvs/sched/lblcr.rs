//! Locality-based least-connection with replication (`ip_vs_lblcr.c`).
//!
//! Each destination IP maps to a *set* of servers (newest first). A pick
//! takes the set's weighted-least-connection member (weight > 0, no overload
//! flag, still in the service). If the set has more than one member and was
//! not modified for `lblcr_expiration` (default 24 h), its most loaded
//! member (weight > 0; deleted servers included, with their last counters)
//! is dropped. If the least member is missing or lblc-overloaded, the wlc
//! choice over the whole service is added to the set and used. Entries are
//! garbage-collected like lblc's (see [`super::lblc`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::common::{conn_overhead, find};
use super::lblc::{is_overloaded, jiffies, least_conn, Entry, Table};
use crate::ipvs::dest::Dest;
use crate::time::Instant;

type DestId = (IpAddr, u16);

/// An lblcr entry: destination IP -> server set.
#[derive(Debug)]
pub(crate) struct LblcrEntry {
    addr: IpAddr,
    set: Vec<DestId>,
    lastmod: u64,
    lastuse: u64,
}

impl Entry for LblcrEntry {
    fn addr(&self) -> IpAddr {
        self.addr
    }
    fn lastuse(&self) -> u64 {
        self.lastuse
    }
}

/// lblcr state. `trash` remembers deleted destinations (the kernel keeps
/// them alive in its dest trash while a set still references them).
#[derive(Debug)]
pub(crate) struct Lblcr {
    table: Table<LblcrEntry>,
    trash: BTreeMap<DestId, Dest>,
}

/// `ip_vs_dest_set_min`: index in `dests` of the least loaded member.
fn set_min(set: &[DestId], dests: &[Dest]) -> Option<usize> {
    let mut members = set.iter().filter_map(|&id| find(dests, id));
    let first = members
        .by_ref()
        .find(|&i| !dests[i].overloaded && dests[i].weight > 0)?;
    let mut least = first;
    let mut loh = i64::from(conn_overhead(&dests[least]));
    for i in members {
        let d = &dests[i];
        if d.overloaded {
            continue;
        }
        let doh = i64::from(conn_overhead(d));
        if loh * i64::from(d.weight) > doh * i64::from(dests[least].weight) {
            least = i;
            loh = doh;
        }
    }
    Some(least)
}

/// `ip_vs_dest_set_max`: the most loaded member with weight > 0 (deleted
/// members count with their last known state).
fn set_max<'a>(set: &[DestId], lookup: impl Fn(DestId) -> Option<&'a Dest>) -> Option<DestId> {
    let mut members = set.iter().filter_map(|&id| lookup(id).map(|d| (id, d)));
    let (mut most_id, mut most) = members.by_ref().find(|(_, d)| d.weight > 0)?;
    let mut moh = i64::from(conn_overhead(most));
    for (id, d) in members {
        let doh = i64::from(conn_overhead(d));
        if moh * i64::from(d.weight) < doh * i64::from(most.weight) && d.weight > 0 {
            most_id = id;
            most = d;
            moh = doh;
        }
    }
    Some(most_id)
}

impl Lblcr {
    /// `ip_vs_lblcr_init_svc` at `now`.
    pub(crate) fn new(now: Instant) -> Self {
        Lblcr {
            table: Table::new(now),
            trash: BTreeMap::new(),
        }
    }

    /// `sysctl lblcr_expiration`.
    pub(crate) fn set_expiration(&mut self, d: Duration) {
        self.table.expiration = d.as_secs() * 250;
    }

    /// GC timer runs due by `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.table.handle_timeout(now)
    }

    /// Next GC timer run.
    pub(crate) fn poll_timeout(&self) -> Instant {
        self.table.poll_timeout()
    }

    /// A (re-)added destination leaves the trash.
    pub(crate) fn add_dest(&mut self, d: &Dest) {
        self.trash.remove(&(d.addr, d.port));
    }

    /// A deleted destination goes to the trash.
    pub(crate) fn del_dest(&mut self, d: &Dest) {
        self.trash.insert((d.addr, d.port), d.clone());
    }

    /// `ip_vs_lblcr_schedule` for a packet to `daddr`.
    pub(crate) fn schedule(
        &mut self,
        dests: &[Dest],
        now: Instant,
        daddr: IpAddr,
    ) -> Option<usize> {
        let j = jiffies(now);
        let expiration = self.table.expiration;
        let trash = &self.trash;
        if let Some(en) = self.table.get_mut(daddr) {
            en.lastuse = j;
            let dest = set_min(&en.set, dests);
            if en.set.len() > 1 && j > en.lastmod + expiration {
                let lookup = |id: DestId| {
                    find(dests, id)
                        .map(|i| &dests[i])
                        .or_else(|| trash.get(&id))
                };
                if let Some(m) = set_max(&en.set, lookup) {
                    en.set.retain(|&x| x != m);
                    en.lastmod = j;
                }
            }
            if let Some(i) = dest {
                if !is_overloaded(&dests[i], dests) {
                    return Some(i);
                }
            }
            let i = least_conn(dests)?;
            let id = (dests[i].addr, dests[i].port);
            if !en.set.contains(&id) {
                en.set.insert(0, id);
                en.lastmod = j;
            }
            return Some(i);
        }
        let i = least_conn(dests)?;
        let id = (dests[i].addr, dests[i].port);
        self.table.insert(LblcrEntry {
            addr: daddr,
            set: vec![id],
            lastmod: j,
            lastuse: j,
        });
        Some(i)
    }

    /// The server set cached for `daddr`, newest first.
    #[cfg(test)]
    pub(crate) fn set_of(&mut self, daddr: IpAddr) -> Option<Vec<DestId>> {
        self.table.get_mut(daddr).map(|e| e.set.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn to(d: u8) -> crate::ipvs::service::SchedPacket {
        packet(
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            1000,
            IpAddr::V4(Ipv4Addr::new(10, 1, 0, d)),
        )
    }

    fn set(s: &mut crate::ipvs::service::Service, d: u8) -> Vec<u8> {
        let target = IpAddr::V4(Ipv4Addr::new(10, 1, 0, d));
        match &mut s.scheduler_mut().kind {
            super::super::Kind::Lblcr(l) => l
                .set_of(target)
                .unwrap_or_default()
                .iter()
                .map(|(a, _)| {
                    id_of(&Dest {
                        addr: *a,
                        ..dest(0, 0)
                    })
                })
                .collect(),
            _ => unreachable!("lblcr service"),
        }
    }

    #[test]
    fn kernel_trace_set_grows_under_load_and_shrinks_after_expiry() {
        // list [2(w1), 1(w1)].
        let mut s = service("lblcr", &[(1, 1), (2, 1)]);
        let t = |secs| Instant::from_secs(secs);
        // New target: wlc -> 2; set {2}.
        assert_eq!(pick_at(&mut s, t(0), &to(1)), Some(2));
        // 2 has 2 active (> weight 1) and 1 is idle (0*2 < 1): overloaded in
        // lblc's sense -> wlc over the service picks 1, added to the set.
        counters(&mut s, 2, 2, 0);
        assert_eq!(pick_at(&mut s, t(10), &to(1)), Some(1));
        assert_eq!(set(&mut s, 1), [1, 2]);
        // Now the set's least loaded member is 1.
        counters(&mut s, 1, 1, 0);
        assert_eq!(pick_at(&mut s, t(20), &to(1)), Some(1));
        // At 86410 s exactly 24 h have passed since the last modification
        // (10 s); time_after is strict, so nothing is dropped yet. One
        // second later the most loaded member (2: 512 vs 256) is dropped;
        // the pick still uses set_min's choice, 1.
        assert_eq!(pick_at(&mut s, t(86_410), &to(1)), Some(1));
        assert_eq!(set(&mut s, 1), [1, 2]);
        assert_eq!(pick_at(&mut s, t(86_411), &to(1)), Some(1));
        assert_eq!(set(&mut s, 1), [1]);
    }

    #[test]
    fn deleted_member_is_skipped_by_min_but_counted_by_max() {
        let mut s = service("lblcr", &[(1, 1), (2, 1), (3, 1)]);
        let t = |secs| Instant::from_secs(secs);
        // list [3, 2, 1]: target -> 3; then make 3 overloaded-ish so 2 joins.
        assert_eq!(pick_at(&mut s, t(0), &to(5)), Some(3));
        counters(&mut s, 3, 5, 0);
        assert_eq!(pick_at(&mut s, t(1), &to(5)), Some(2));
        assert_eq!(set(&mut s, 5), [2, 3]);
        // Delete 3 (trash keeps 5 active). set_min skips it -> 2.
        del(&mut s, 3);
        assert_eq!(pick_at(&mut s, t(2), &to(5)), Some(2));
        // After the expiration, set_max picks the deleted 3 (1280 vs 0) and
        // erases it; 2 stays.
        assert_eq!(pick_at(&mut s, t(86_402), &to(5)), Some(2));
        assert_eq!(set(&mut s, 5), [2]);
    }

    /// Reference: BTreeMap of sets and a literal timer loop.
    struct RefLblcr {
        cache: std::collections::BTreeMap<IpAddr, (Vec<DestId>, u64, u64)>,
        trash: std::collections::BTreeMap<DestId, Dest>,
        next: u64,
        counter: u32,
    }

    impl Reference for RefLblcr {
        fn add(&mut self, list: &[Dest]) {
            self.trash.remove(&(list[0].addr, list[0].port));
        }
        fn del(&mut self, _: &[Dest], removed: &Dest, _: usize) {
            self.trash
                .insert((removed.addr, removed.port), removed.clone());
        }
        fn tick(&mut self, now: Instant) {
            while self.next * 1_000_000_000 <= now.as_nanos() {
                if self.counter == 30 {
                    let j = self.next * 250;
                    self.cache
                        .retain(|_, (_, _, last)| *last + 86_400 * 250 > j);
                    self.counter = 1;
                } else {
                    self.counter += 1;
                }
                self.next += 60;
            }
        }
        fn schedule(
            &mut self,
            list: &[Dest],
            ctx: &Ctx,
            _: &mut dyn rand_core::RngCore,
        ) -> Option<usize> {
            use super::super::lblc::tests::ref_overloaded;
            let j = ctx.now.as_nanos() / 4_000_000;
            let pos = |id: DestId| list.iter().position(|d| (d.addr, d.port) == id);
            let oh = |d: &Dest| i128::from(d.activeconns) * 256 + i128::from(d.inactconns);
            let Some((set, lastmod, lastuse)) = self.cache.get_mut(&ctx.pkt.dst) else {
                let i = ref_wlc(list)?;
                self.cache
                    .insert(ctx.pkt.dst, (vec![(list[i].addr, list[i].port)], j, j));
                return Some(i);
            };
            *lastuse = j;
            // First-minimum of oh/w over live, eligible members in set order.
            let live: Vec<usize> = set
                .iter()
                .filter_map(|&id| pos(id))
                .filter(|&i| !list[i].overloaded && list[i].weight > 0)
                .collect();
            let mut min: Option<usize> = None;
            for &i in &live {
                min = match min {
                    Some(b)
                        if oh(&list[i]) * i128::from(list[b].weight)
                            >= oh(&list[b]) * i128::from(list[i].weight) =>
                    {
                        Some(b)
                    }
                    _ => Some(i),
                };
            }
            if set.len() > 1 && j > *lastmod + 86_400 * 250 {
                let all: Vec<(DestId, Dest)> = set
                    .iter()
                    .filter_map(|&id| {
                        pos(id)
                            .map(|i| list[i].clone())
                            .or_else(|| self.trash.get(&id).cloned())
                            .map(|d| (id, d))
                    })
                    .filter(|(_, d)| d.weight > 0)
                    .collect();
                // First maximum of oh/w.
                let mut max: Option<&(DestId, Dest)> = None;
                for c in &all {
                    max = match max {
                        Some(m)
                            if oh(&c.1) * i128::from(m.1.weight)
                                <= oh(&m.1) * i128::from(c.1.weight) =>
                        {
                            Some(m)
                        }
                        _ => Some(c),
                    };
                }
                if let Some((id, _)) = max.cloned() {
                    set.retain(|x| *x != id);
                    *lastmod = j;
                }
            }
            if let Some(i) = min {
                if !ref_overloaded(&list[i], list) {
                    return Some(i);
                }
            }
            let i = ref_wlc(list)?;
            let id = (list[i].addr, list[i].port);
            if !set.contains(&id) {
                set.insert(0, id);
                *lastmod = j;
            }
            Some(i)
        }
    }

    proptest! {
        #[test]
        fn same_choices_as_reference(ops in ops_strategy(6, 4)) {
            let r = RefLblcr { cache: Default::default(), trash: Default::default(), next: 60, counter: 1 };
            check("lblcr", Default::default(), &ops, r)?;
        }
    }
}
