//! Locality-based least-connection (`ip_vs_lblc.c`), and the entry table
//! with its garbage collector that lblcr shares.
//!
//! lblc maps each destination IP (the packet's `daddr`) to one server. A
//! cached server is kept while it is still in the service (`AVAILABLE`), has
//! weight > 0 and is not "overloaded" in lblc's own sense: more active
//! connections than its weight while some server is below half its weight.
//! The `IP_VS_DEST_F_OVERLOAD` flag is *not* checked for a cached server.
//! Otherwise the wlc choice is made and cached (replacing the entry).
//!
//! Time is in jiffies at HZ=250 (Debian's `CONFIG_HZ`). Entries record
//! `lastuse`; a timer runs every 60 s from service creation: every 30th run
//! drops entries unused for `lblc_expiration` (default 24 h), and when the
//! table holds more than 16384 entries, runs drop entries unused for 6 min
//! until the excess (x4/3, at most 8192) is gone, sweeping buckets from a
//! rover. Buckets are `hash_32(ntohl(addr), 10)`; new entries go to the head
//! of their bucket.

use std::net::IpAddr;
use std::time::Duration;

use super::common::{addr_fold, find, hash_32};
use super::wlc;
use crate::ipvs::dest::Dest;
use crate::time::Instant;

/// `DEFAULT_EXPIRATION` of lblc/lblcr entries (24 h).
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);
/// Debian's `CONFIG_HZ`.
const HZ: u64 = 250;
/// `IP_VS_LBLC_TAB_BITS` / `IP_VS_LBLCR_TAB_BITS`.
const TAB_BITS: u32 = 10;
const TAB_SIZE: usize = 1 << TAB_BITS;
const TAB_MASK: usize = TAB_SIZE - 1;
/// `tbl->max_size`.
const MAX_SIZE: usize = TAB_SIZE * 16;
/// `CHECK_EXPIRE_INTERVAL`.
const CHECK_EXPIRE_INTERVAL: Duration = Duration::from_secs(60);
/// `ENTRY_TIMEOUT` in jiffies.
const ENTRY_TIMEOUT: u64 = 6 * 60 * HZ;
/// `COUNT_FOR_FULL_EXPIRATION`.
const COUNT_FOR_FULL_EXPIRATION: u32 = 30;

/// Kernel jiffies for a core instant.
pub(crate) fn jiffies(now: Instant) -> u64 {
    now.as_nanos() / (1_000_000_000 / HZ)
}

/// `hash_32(ntohl(addr_fold), 10)`.
pub(crate) fn hashkey(addr: IpAddr) -> usize {
    hash_32(addr_fold(addr), TAB_BITS) as usize
}

/// What the table needs to know about an entry.
pub(crate) trait Entry {
    /// The destination IP address this entry is for.
    fn addr(&self) -> IpAddr;
    /// Last use, in jiffies.
    fn lastuse(&self) -> u64;
}

/// The hash table of lblc/lblcr entries with its GC timer.
#[derive(Debug)]
pub(crate) struct Table<E> {
    buckets: Vec<Vec<E>>,
    entries: usize,
    rover: usize,
    counter: u32,
    next_check: Instant,
    /// `sysctl_lblc(r)_expiration`, in jiffies.
    pub(crate) expiration: u64,
}

impl<E: Entry> Table<E> {
    /// `init_service`: empty table, timer armed 60 s from `now`.
    pub(crate) fn new(now: Instant) -> Self {
        Table {
            buckets: (0..TAB_SIZE).map(|_| Vec::new()).collect(),
            entries: 0,
            rover: 0,
            counter: 1,
            next_check: now + CHECK_EXPIRE_INTERVAL,
            expiration: DEFAULT_EXPIRATION.as_secs() * HZ,
        }
    }

    /// The entry for `addr`.
    pub(crate) fn get_mut(&mut self, addr: IpAddr) -> Option<&mut E> {
        self.buckets[hashkey(addr)]
            .iter_mut()
            .find(|e| e.addr() == addr)
    }

    /// Link `e` at the head of its bucket.
    pub(crate) fn insert(&mut self, e: E) {
        self.buckets[hashkey(e.addr())].insert(0, e);
        self.entries += 1;
    }

    /// Unlink the entry for `addr`.
    pub(crate) fn remove(&mut self, addr: IpAddr) {
        let b = &mut self.buckets[hashkey(addr)];
        if let Some(p) = b.iter().position(|e| e.addr() == addr) {
            b.remove(p);
            self.entries -= 1;
        }
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    /// Drop the entries of bucket `j` for which `stale(lastuse)`; how many.
    fn sweep(&mut self, j: usize, stale: impl Fn(u64) -> bool) -> usize {
        let b = &mut self.buckets[j];
        let before = b.len();
        b.retain(|e| !stale(e.lastuse()));
        let n = before - b.len();
        self.entries -= n;
        n
    }

    /// `ip_vs_lblc(r)_check_expire`, run at `t`.
    fn check_expire(&mut self, t: Instant) {
        let now = jiffies(t);
        if self.counter.checked_rem(COUNT_FOR_FULL_EXPIRATION) == Some(0) {
            // ip_vs_lblc_full_check: every bucket, from rover + 1.
            let exp = self.expiration;
            let mut j = self.rover;
            for _ in 0..TAB_SIZE {
                j = (j + 1) & TAB_MASK;
                self.sweep(j, |lastuse| now >= lastuse + exp);
            }
            self.rover = j;
            self.counter = 1;
            return;
        }
        if self.entries <= MAX_SIZE {
            self.counter += 1;
            return;
        }
        let mut goal = ((self.entries - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2) as i64;
        let mut j = self.rover;
        for _ in 0..TAB_SIZE {
            j = (j + 1) & TAB_MASK;
            goal -= self.sweep(j, |lastuse| now >= lastuse + ENTRY_TIMEOUT) as i64;
            if goal <= 0 {
                break;
            }
        }
        self.rover = j;
    }

    /// Fire every timer run due at or before `now`, each at its own time.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        while self.next_check <= now {
            let t = self.next_check;
            self.check_expire(t);
            self.next_check = t + CHECK_EXPIRE_INTERVAL;
        }
    }

    /// The next timer run.
    pub(crate) fn poll_timeout(&self) -> Instant {
        self.next_check
    }
}

/// lblc's `is_overloaded`: more active connections than weight, while some
/// destination is below half of its weight.
pub(crate) fn is_overloaded(d: &Dest, dests: &[Dest]) -> bool {
    (d.activeconns as i32) > d.weight
        && dests
            .iter()
            .any(|x| (x.activeconns as i32).wrapping_mul(2) < x.weight)
}

/// `__ip_vs_lblc_schedule` / `__ip_vs_lblcr_schedule`: plain wlc.
pub(crate) fn least_conn(dests: &[Dest]) -> Option<usize> {
    let first = dests.iter().position(|d| !d.overloaded && d.weight > 0)?;
    Some(wlc::least_from(dests, first))
}

/// An lblc entry: destination IP -> server.
#[derive(Debug)]
pub(crate) struct LblcEntry {
    addr: IpAddr,
    dest: (IpAddr, u16),
    lastuse: u64,
}

impl Entry for LblcEntry {
    fn addr(&self) -> IpAddr {
        self.addr
    }
    fn lastuse(&self) -> u64 {
        self.lastuse
    }
}

/// lblc state.
#[derive(Debug)]
pub(crate) struct Lblc {
    table: Table<LblcEntry>,
}

impl Lblc {
    /// `ip_vs_lblc_init_svc` at `now`.
    pub(crate) fn new(now: Instant) -> Self {
        Lblc {
            table: Table::new(now),
        }
    }

    /// `sysctl lblc_expiration`.
    pub(crate) fn set_expiration(&mut self, d: Duration) {
        self.table.expiration = d.as_secs() * HZ;
    }

    /// GC timer runs due by `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.table.handle_timeout(now)
    }

    /// Next GC timer run.
    pub(crate) fn poll_timeout(&self) -> Instant {
        self.table.poll_timeout()
    }

    /// `ip_vs_lblc_schedule` for a packet to `daddr`.
    pub(crate) fn schedule(
        &mut self,
        dests: &[Dest],
        now: Instant,
        daddr: IpAddr,
    ) -> Option<usize> {
        let j = jiffies(now);
        if let Some(en) = self.table.get_mut(daddr) {
            en.lastuse = j;
            if let Some(i) = find(dests, en.dest) {
                let d = &dests[i];
                if d.weight > 0 && !is_overloaded(d, dests) {
                    return Some(i);
                }
            }
        }
        let i = least_conn(dests)?;
        let id = (dests[i].addr, dests[i].port);
        // ip_vs_lblc_new: keep a matching entry, else replace it.
        match self.table.get_mut(daddr) {
            Some(en) if en.dest == id => {}
            Some(_) => {
                self.table.remove(daddr);
                self.table.insert(LblcEntry {
                    addr: daddr,
                    dest: id,
                    lastuse: j,
                });
            }
            None => self.table.insert(LblcEntry {
                addr: daddr,
                dest: id,
                lastuse: j,
            }),
        }
        Some(i)
    }

    /// Number of cached entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::testutil::*;
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    fn to(d: u8) -> crate::ipvs::service::SchedPacket {
        packet(
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            1000,
            IpAddr::V4(Ipv4Addr::new(10, 1, 0, d)),
        )
    }

    fn entries(s: &crate::ipvs::service::Service) -> usize {
        match &s.scheduler().kind {
            super::super::Kind::Lblc(l) => l.len(),
            _ => unreachable!("lblc service"),
        }
    }

    #[test]
    fn kernel_trace_locality_overload_and_expiry() {
        // list [2(w2), 1(w2)].
        let mut s = service("lblc", &[(1, 2), (2, 2)]);
        let t = |secs| Instant::from_secs(secs);
        // New target 10.1.0.1: wlc picks 2 (first of a tie) and caches it.
        assert_eq!(pick_at(&mut s, t(1), &to(1)), Some(2));
        // 2 gets busier; target 1 still goes to 2 (cache hit), while a new
        // target 2 gets the wlc choice, 1.
        counters(&mut s, 2, 2, 0);
        assert_eq!(pick_at(&mut s, t(2), &to(1)), Some(2));
        assert_eq!(pick_at(&mut s, t(2), &to(2)), Some(1));
        // 2 over its weight (3 > 2) and 1 under half of its weight (0*2 < 2):
        // lblc-overloaded -> reschedule target 1 to 1, replacing the entry.
        counters(&mut s, 2, 3, 0);
        assert_eq!(pick_at(&mut s, t(3), &to(1)), Some(1));
        // The OVERLOAD flag itself is not checked for a cached server...
        overload(&mut s, 1, true);
        assert_eq!(pick_at(&mut s, t(4), &to(1)), Some(1));
        // ...but a quiesced one is: target 2 (cached on 1) moves to 2.
        overload(&mut s, 1, false);
        edit(&mut s, 1, 0);
        assert_eq!(pick_at(&mut s, t(5), &to(2)), Some(2));
        assert_eq!(entries(&s), 2);
        // Expiry: the timer runs at 60, 120, ... s; the 30th run (1800 s)
        // is a full check dropping entries unused for 24 h. Entries were
        // last used at 4 s and 5 s: the first full check after 86405 s is
        // at run 1470 (88200 s).
        s.handle_timeout(t(86_400));
        assert_eq!(entries(&s), 2);
        s.handle_timeout(t(88_199));
        assert_eq!(entries(&s), 2);
        s.handle_timeout(t(88_200));
        assert_eq!(entries(&s), 0);
        assert_eq!(s.poll_timeout(), Some(t(88_260)));
    }

    #[test]
    fn deleted_server_is_rescheduled_and_readded_one_is_found_again() {
        let mut s = service("lblc", &[(1, 1), (2, 1)]);
        let t0 = Instant::ZERO;
        assert_eq!(pick_at(&mut s, t0, &to(9)), Some(2));
        // A deleted destination is no longer AVAILABLE: wlc picks 1, but the
        // entry for 10.1.0.9 now points at 1.
        del(&mut s, 2);
        assert_eq!(pick_at(&mut s, t0, &to(9)), Some(1));
        add(&mut s, 2, 1);
        // 2 is back and first in the list, but the cache says 1.
        assert_eq!(pick_at(&mut s, t0, &to(9)), Some(1));
    }

    #[test]
    fn hash_is_hash_32() {
        // hash_32(x, 10) = (x * 0x61C88647) >> 22.
        let a: IpAddr = "10.1.0.1".parse().expect("ip");
        assert_eq!(
            hashkey(a),
            ((0x0a01_0001u64 * 0x61C8_8647) as u32 >> 22) as usize
        );
    }

    /// Reference: a BTreeMap cache and a literal timer loop.
    struct RefLblc {
        cache: BTreeMap<IpAddr, ((IpAddr, u16), u64)>,
        next: u64,
        counter: u32,
    }

    pub(crate) fn ref_overloaded(d: &Dest, list: &[Dest]) -> bool {
        i64::from(d.activeconns) > i64::from(d.weight)
            && list
                .iter()
                .any(|x| 2 * i64::from(x.activeconns) < i64::from(x.weight))
    }

    impl Reference for RefLblc {
        fn tick(&mut self, now: Instant) {
            while self.next * 1_000_000_000 <= now.as_nanos() {
                if self.counter == 30 {
                    let j = self.next * 250;
                    self.cache.retain(|_, (_, last)| j < *last + 86_400 * 250);
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
            let j = ctx.now.as_nanos() / 4_000_000;
            let pos = |id: (IpAddr, u16)| list.iter().position(|d| (d.addr, d.port) == id);
            if let Some((id, last)) = self.cache.get_mut(&ctx.pkt.dst) {
                *last = j;
                if let Some(i) = pos(*id) {
                    if list[i].weight > 0 && !ref_overloaded(&list[i], list) {
                        return Some(i);
                    }
                }
            }
            let i = ref_wlc(list)?;
            self.cache
                .insert(ctx.pkt.dst, ((list[i].addr, list[i].port), j));
            Some(i)
        }
    }

    proptest! {
        #[test]
        fn same_choices_as_reference(ops in ops_strategy(6, 4)) {
            check("lblc", Default::default(), &ops, RefLblc { cache: BTreeMap::new(), next: 60, counter: 1 })?;
        }
    }
}
