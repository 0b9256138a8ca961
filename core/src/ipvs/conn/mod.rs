//! Connection table: the kernel's TCP and SCTP state tables, timeouts and persistence
//! templates.
//!
//! Reference: Linux 6.1 `ip_vs_conn.c` (table, expiry, templates) and
//! `ip_vs_proto_tcp.c` / `ip_vs_proto_udp.c` / `ip_vs_proto_sctp.c` (state tables,
//! timeouts).
//!
//! Layout: like the kernel, entries are chained in buckets hashed on the
//! client side only (protocol, client address, client port), so that one
//! bucket answers both the inbound lookup (client -> virtual) and the
//! outbound one (real server -> client). Unlike the kernel, entries live in a
//! slab of fixed-size records (48 bytes for IPv4) linked by `u32` indices, and
//! expiry runs from a map of 1/64-second buckets of slab indices, checked
//! lazily: a deadline moving later costs nothing until its bucket comes up.
//! No iteration order of this table depends on a hash: listings are sorted.
//!
//! Files: `dir` (packet directions), `state` (TCP state tables, timeouts), `sctp` (the SCTP states, chunk events and
//! table), `slab` (the per-family slab and hash
//! index), `wheel` (the expiry buckets); this one is the table over them.

mod dir;
mod sctp;
mod slab;
mod state;
#[cfg(test)]
mod tests;
mod wheel;

use std::cmp::Ordering;
use std::net::IpAddr;
use std::time::Duration;

use crate::time::Instant;

pub use dir::{Direction, TableDir};
pub use sctp::{sctp_next_state, SctpEvent, SctpState, SCTP_STATES, SCTP_TIMEOUTS};
pub use slab::{flags, ConnError};
use slab::{prefetch, Addr, Entry, Store, NIL, TEMPLATE_PROTO, V6, V6_BIT};
pub use state::{tcp_next_state, TcpFlags, TcpState, Timeouts, TCP_STATES};
use wheel::{sec_of, Bucket, Wheel, TICK_NS};

/// Opaque handle of a destination binding, managed by [`super::table::Ipvs`].
pub type DestId = u32;

/// No destination.
pub const NO_DEST: DestId = u32::MAX;

/// Handle of a live entry (connection or template). Valid until the entry expires.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ConnId(u32);

/// Lookup key of a connection or template, as `ip_vs_conn_param` fills it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ConnKey {
    /// IP protocol number (0 = `IPPROTO_IP`, fwmark templates).
    pub proto: u8,
    /// Client address (templates: masked by the persistence netmask).
    pub caddr: IpAddr,
    /// Client port (templates: 0).
    pub cport: u16,
    /// Virtual address (fwmark templates: the mark as an address).
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
}

/// A copy of one entry, for callers and listings.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Conn {
    /// Handle.
    pub id: ConnId,
    /// Lookup key.
    pub key: ConnKey,
    /// True for a persistence template.
    pub template: bool,
    /// Destination binding.
    pub dest: DestId,
    /// Protocol state number ([`TcpState`] for TCP; 0 otherwise).
    pub state: u8,
    /// State at the last sync decision (`old_state`).
    pub old_state: u8,
    /// [`flags`] bits.
    pub flags: u8,
    /// Current timeout in seconds (`cp->timeout`).
    pub timeout: u32,
    /// When the entry expires unless refreshed.
    pub deadline: Instant,
    /// Templates: how many connections it controls (`n_control`); connections: 0.
    pub n_control: u32,
    /// Connections: the controlling template, if any.
    pub control: Option<ConnId>,
    /// Input packets seen (`in_pkts`), for the sync threshold.
    pub in_pkts: u32,
}

/// An entry that left the table; the caller unbinds it from its destination.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Expired {
    /// Its last state.
    pub conn: Conn,
}

/// The connection table: connections and persistence templates of both families.
#[derive(Debug)]
pub struct ConnTable {
    v4: Store<u32>,
    v6: Store<V6>,
    /// Expiry buckets: bucket (1/64 s) -> slab references filed there.
    wheel: Wheel,
}

macro_rules! with_store {
    ($self:ident, $id:expr, |$s:ident, $i:ident| $body:expr) => {{
        let raw: u32 = $id;
        if raw & V6_BIT != 0 {
            let $i = raw & !V6_BIT;
            let $s = &mut $self.v6;
            $body
        } else {
            let $i = raw;
            let $s = &mut $self.v4;
            $body
        }
    }};
}

macro_rules! with_store_ref {
    ($self:ident, $id:expr, |$s:ident, $i:ident| $body:expr) => {{
        let raw: u32 = $id;
        if raw & V6_BIT != 0 {
            let $i = raw & !V6_BIT;
            let $s = &$self.v6;
            $body
        } else {
            let $i = raw;
            let $s = &$self.v4;
            $body
        }
    }};
}

fn view<A: Addr>(id: u32, tag: u32, e: &Entry<A>) -> Conn {
    let template = e.is_template();
    Conn {
        id: ConnId(id | tag),
        key: ConnKey {
            proto: e.proto,
            caddr: e.caddr.to_ip(),
            cport: e.cport,
            vaddr: e.vaddr.to_ip(),
            vport: e.vport,
        },
        template,
        dest: e.dest,
        state: e.state,
        old_state: e.old_state,
        flags: e.flags,
        timeout: e.timeout,
        deadline: Instant::from_nanos(e.deadline),
        n_control: if template { e.link } else { 0 },
        control: if template || e.link == NIL {
            None
        } else {
            Some(ConnId(e.link | tag))
        },
        in_pkts: e.in_pkts,
    }
}

/// A fresh slab record for `new` (not yet linked to a template: a template's
/// `n_control` starts at 0, a connection's controlling template at NIL).
fn new_entry<A: Addr>(
    new: &NewConn,
    caddr: A,
    vaddr: A,
    flags: u8,
    wheel_at: u32,
    deadline: Instant,
) -> Entry<A> {
    Entry {
        caddr,
        vaddr,
        cport: new.key.cport,
        vport: new.key.vport,
        proto: new.key.proto,
        state: new.state,
        old_state: new.state,
        flags,
        dest: new.dest,
        link: if new.template { 0 } else { NIL },
        next: NIL,
        wheel_at,
        timeout: new.timeout,
        in_pkts: 0,
        deadline: deadline.as_nanos(),
    }
}

/// What to insert: everything but the bookkeeping.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NewConn {
    /// Lookup key.
    pub key: ConnKey,
    /// True for a persistence template.
    pub template: bool,
    /// Destination binding.
    pub dest: DestId,
    /// [`flags`] bits to start with (INACTIVE, NOOUTPUT, SYNCED).
    pub flags: u8,
    /// Initial protocol state.
    pub state: u8,
    /// Initial timeout in seconds.
    pub timeout: u32,
    /// Controlling template (same family), if any.
    pub control: Option<ConnId>,
}

impl ConnTable {
    /// An empty table; `hash_seed` keys the bucket hash (pass a random value against flooding).
    pub fn new(hash_seed: u64) -> Self {
        Self::with_capacity(hash_seed, 0)
    }

    /// An empty table with room for `capacity` IPv4 entries before growing.
    pub fn with_capacity(hash_seed: u64, capacity: usize) -> Self {
        ConnTable {
            v4: Store::new(hash_seed, capacity),
            v6: Store::new(hash_seed.rotate_left(32), 0),
            wheel: Wheel::default(),
        }
    }

    /// Live entries (connections and templates, including invalidated templates).
    pub fn len(&self) -> usize {
        self.v4.len + self.v6.len
    }

    /// True when no entry is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of one IPv4 slab record in bytes.
    pub const ENTRY_SIZE_V4: usize = std::mem::size_of::<Entry<u32>>();
    /// Size of one IPv6 slab record in bytes.
    pub const ENTRY_SIZE_V6: usize = std::mem::size_of::<Entry<V6>>();

    fn find_raw(&self, key: &ConnKey, template: bool) -> Option<ConnId> {
        let tp = if template { TEMPLATE_PROTO } else { 0 };
        let proto = u16::from(key.proto) | tp;
        match (key.caddr, key.vaddr) {
            (IpAddr::V4(c), IpAddr::V4(v)) => self
                .v4
                .find(proto, u32::from(c), key.cport, u32::from(v), key.vport)
                .map(ConnId),
            (IpAddr::V6(_), IpAddr::V6(_)) => {
                let c = V6::from_ip(key.caddr)?;
                let v = V6::from_ip(key.vaddr)?;
                self.v6
                    .find(proto, c, key.cport, v, key.vport)
                    .map(|i| ConnId(i | V6_BIT))
            }
            _ => None,
        }
    }

    /// The connection with this key (`ip_vs_conn_in_get`).
    pub fn lookup(&self, key: &ConnKey) -> Option<ConnId> {
        self.find_raw(key, false)
    }

    /// Look up many connections at once: `out` gets one answer per key, as
    /// [`ConnTable::lookup`] gives it. A data plane handles packets in
    /// batches; here the bucket and first-entry loads of a whole chunk are
    /// issued before any chain is walked, so their cache misses overlap.
    pub fn lookup_batch(&self, keys: &[ConnKey], out: &mut Vec<Option<ConnId>>) {
        const CHUNK: usize = 16;
        out.clear();
        for chunk in keys.chunks(CHUNK) {
            let mut heads = [NIL; CHUNK];
            for (h, k) in heads.iter_mut().zip(chunk) {
                if let (IpAddr::V4(c), IpAddr::V4(_)) = (k.caddr, k.vaddr) {
                    *h = self.v4.buckets[self.v4.bucket(u16::from(k.proto), u32::from(c), k.cport)];
                }
            }
            let mut touch = 0u32;
            for &h in &heads[..chunk.len()] {
                if let Some(e) = self.v4.slab.get(h as usize) {
                    touch ^= e.caddr;
                }
            }
            std::hint::black_box(touch);
            for (&h, k) in heads.iter().zip(chunk) {
                let found = match (k.caddr, k.vaddr) {
                    (IpAddr::V4(c), IpAddr::V4(v)) => {
                        let (c, v) = (u32::from(c), u32::from(v));
                        let mut i = h;
                        loop {
                            let Some(e) = self.v4.slab.get(i as usize) else {
                                break None;
                            };
                            if e.matches(u16::from(k.proto), c, k.cport, v, k.vport) {
                                break Some(ConnId(i));
                            }
                            i = e.next;
                        }
                    }
                    _ => self.lookup(k),
                };
                out.push(found);
            }
        }
    }

    /// Start loading the hash bucket a lookup of `key` reads first, without waiting: a
    /// caller that knows the packet is coming hides a new connection's cold lookup behind
    /// other work. A hint; nothing changes.
    pub fn prefetch(&self, key: &ConnKey) {
        if let (IpAddr::V4(c), IpAddr::V4(_)) = (key.caddr, key.vaddr) {
            let b = self
                .v4
                .bucket(u16::from(key.proto), u32::from(c), key.cport);
            prefetch(&self.v4.buckets[b]);
        }
    }

    /// The (valid) template with this key (`ip_vs_ct_in_get`).
    pub fn lookup_template(&self, key: &ConnKey) -> Option<ConnId> {
        self.find_raw(key, true)
    }

    /// A live entry's destination binding (what `get` gives as `dest`, without the copy).
    pub fn dest(&self, id: ConnId) -> Option<DestId> {
        with_store_ref!(self, id.0, |s, i| s.live(i).map(|e| e.dest))
    }

    /// A copy of a live entry.
    pub fn get(&self, id: ConnId) -> Option<Conn> {
        with_store_ref!(self, id.0, |s, i| s.live(i).map(|e| view(
            i,
            id.0 & V6_BIT,
            e
        )))
    }

    /// Add an entry expiring `timeout` seconds after `now`; a controlled
    /// connection counts toward its template's `n_control`.
    pub fn insert(&mut self, now: Instant, new: NewConn) -> Result<ConnId, ConnError> {
        if self.find_raw(&new.key, new.template).is_some() {
            return Err(ConnError::Exists);
        }
        let deadline = now + Duration::from_secs(u64::from(new.timeout));
        let wheel_at = sec_of(deadline.as_nanos());
        let mut fl = new.flags & !(flags::TEMPLATE | flags::UNHASHED | flags::FREE_BIT);
        if new.template {
            fl |= flags::TEMPLATE;
        }
        let ctl_raw = new.control.map(|c| c.0);
        let id = match (new.key.caddr, new.key.vaddr) {
            (IpAddr::V4(c), IpAddr::V4(v)) => {
                let e = new_entry(&new, u32::from(c), u32::from(v), fl, wheel_at, deadline);
                let ctl = ctl_raw.filter(|r| r & V6_BIT == 0);
                self.v4.place(e, ctl)?
            }
            (IpAddr::V6(_), IpAddr::V6(_)) => {
                let c = V6::from_ip(new.key.caddr).ok_or(ConnError::MixedFamily)?;
                let v = V6::from_ip(new.key.vaddr).ok_or(ConnError::MixedFamily)?;
                let e = new_entry(&new, c, v, fl, wheel_at, deadline);
                let ctl = ctl_raw.filter(|r| r & V6_BIT != 0).map(|r| r & !V6_BIT);
                self.v6.place(e, ctl)? | V6_BIT
            }
            _ => return Err(ConnError::MixedFamily),
        };
        self.wheel.file(wheel_at, Some(id), deadline.as_nanos());
        Ok(ConnId(id))
    }

    /// Restart an entry's timer: it now expires `timeout` seconds after `now`
    /// (`ip_vs_conn_put` re-arming the timer).
    pub fn touch(&mut self, id: ConnId, now: Instant) {
        self.rearm(id.0, now, None);
    }

    /// Set the timeout and restart the timer from `now`.
    pub fn set_timeout(&mut self, id: ConnId, now: Instant, timeout: u32) {
        self.rearm(id.0, now, Some(timeout));
    }

    fn rearm(&mut self, raw: u32, now: Instant, timeout: Option<u32>) {
        let filed = with_store!(self, raw, |s, i| {
            let Some(e) = s
                .slab
                .get_mut(i as usize)
                .filter(|e| e.flags & flags::FREE_BIT == 0)
            else {
                return;
            };
            if let Some(t) = timeout {
                e.timeout = t;
            }
            let d = (now + Duration::from_secs(u64::from(e.timeout))).as_nanos();
            e.deadline = d;
            let sec = sec_of(d);
            // Later deadlines are found when the old bucket comes up; only an
            // earlier one needs filing anew. A deadline past the bucket it is filed in
            // leaves that bucket's lower bound true (the bound is at most the deadline
            // the entry was filed with, which lies inside the bucket).
            match sec.cmp(&e.wheel_at) {
                Ordering::Less => {
                    e.wheel_at = sec;
                    Some((sec, d, true))
                }
                Ordering::Equal => Some((sec, d, false)),
                Ordering::Greater => None,
            }
        });
        if let Some((sec, d, new_bucket)) = filed {
            self.wheel.file(sec, new_bucket.then_some(raw), d);
        }
    }

    /// Apply a TCP segment to a connection's state (`set_tcp_state`) and
    /// restart its timer with the new state's timeout. Returns the old and new
    /// state and, when the connection moved between active and inactive, the
    /// new activity (`Some(true)` = became active).
    pub fn tcp_segment(
        &mut self,
        id: ConnId,
        now: Instant,
        dir: Direction,
        tcp: TcpFlags,
        secure: bool,
        timeouts: &Timeouts,
    ) -> Option<(TcpState, TcpState, Option<bool>)> {
        let (old, new, moved) = self.step(id, now, dir, |state, dir| {
            let old = TcpState::from_u8(state).unwrap_or(TcpState::None);
            let new = tcp_next_state(old, dir, tcp, secure);
            let active = new == TcpState::Established;
            (new as u8, active, timeouts.tcp[new as usize])
        })?;
        let old = TcpState::from_u8(old).unwrap_or(TcpState::None);
        Some((old, TcpState::from_u8(new)?, moved))
    }

    /// Apply an SCTP packet whose chunks make `event` to a connection's state
    /// (`set_sctp_state`) and restart its timer with the new state's timeout; returns as
    /// [`ConnTable::tcp_segment`] does (ESTABLISHED is the one active state).
    pub fn sctp_chunk(
        &mut self,
        id: ConnId,
        now: Instant,
        dir: Direction,
        event: SctpEvent,
        timeouts: &Timeouts,
    ) -> Option<(SctpState, SctpState, Option<bool>)> {
        let (old, new, moved) = self.step(id, now, dir, |state, dir| {
            let old = SctpState::from_u8(state).unwrap_or(SctpState::None);
            let new = sctp_next_state(old, dir, event);
            let active = new == SctpState::Established;
            (new as u8, active, timeouts.sctp[new as usize])
        })?;
        let old = SctpState::from_u8(old).unwrap_or(SctpState::None);
        Some((old, SctpState::from_u8(new)?, moved))
    }

    /// One state transition as `set_tcp_state` and `set_sctp_state` share it: the
    /// direction turns INPUT-ONLY while no output was seen (and the first output packet
    /// clears NOOUTPUT), `next` gives the new state, whether it is active and its timeout
    /// from the old state and that direction, and a change of state on a connection with
    /// a destination moves it between active and inactive.
    fn step(
        &mut self,
        id: ConnId,
        now: Instant,
        dir: Direction,
        next: impl FnOnce(u8, TableDir) -> (u8, bool, u32),
    ) -> Option<(u8, u8, Option<bool>)> {
        let (old, new, moved, timeout) = with_store!(self, id.0, |s, i| {
            let e = s
                .slab
                .get_mut(i as usize)
                .filter(|e| e.flags & flags::FREE_BIT == 0)?;
            let mut dir = match dir {
                Direction::Input => TableDir::Input,
                Direction::Output => TableDir::Output,
            };
            if e.flags & flags::NOOUTPUT != 0 {
                if dir == TableDir::Output {
                    e.flags &= !flags::NOOUTPUT;
                } else {
                    dir = TableDir::InputOnly;
                }
            }
            let old = e.state;
            let (new, active, timeout) = next(old, dir);
            let mut moved = None;
            if new != old && e.dest != NO_DEST {
                let inactive = e.flags & flags::INACTIVE != 0;
                if !inactive && !active {
                    e.flags |= flags::INACTIVE;
                    moved = Some(false);
                } else if inactive && active {
                    e.flags &= !flags::INACTIVE;
                    moved = Some(true);
                }
            }
            e.state = new;
            (old, new, moved, timeout)
        });
        self.set_timeout(id, now, timeout);
        Some((old, new, moved))
    }

    /// Count one input packet (`in_pkts`); returns the new count.
    pub fn count_in_packet(&mut self, id: ConnId) -> u32 {
        with_store!(self, id.0, |s, i| {
            match s
                .slab
                .get_mut(i as usize)
                .filter(|e| e.flags & flags::FREE_BIT == 0)
            {
                Some(e) => {
                    e.in_pkts = e.in_pkts.wrapping_add(1);
                    e.in_pkts
                }
                None => 0,
            }
        })
    }

    /// Remember the state a sync decision was made in (`cp->old_state = cp->state`).
    pub fn mark_synced_state(&mut self, id: ConnId) {
        with_store!(self, id.0, |s, i| {
            if let Some(e) = s
                .slab
                .get_mut(i as usize)
                .filter(|e| e.flags & flags::FREE_BIT == 0)
            {
                e.old_state = e.state;
            }
        })
    }

    /// Overwrite state, flags and timeout of an entry (a sync update on a backup).
    pub fn update_synced(
        &mut self,
        id: ConnId,
        now: Instant,
        state: u8,
        set_flags: u8,
        clear_flags: u8,
        timeout: u32,
    ) {
        with_store!(self, id.0, |s, i| {
            if let Some(e) = s
                .slab
                .get_mut(i as usize)
                .filter(|e| e.flags & flags::FREE_BIT == 0)
            {
                e.state = state;
                e.flags = (e.flags | set_flags) & !clear_flags;
            }
        });
        self.set_timeout(id, now, timeout);
    }

    /// Take a template out of the lookup index: it can no longer be found and
    /// a new template with the same key can be made; it still expires on its
    /// timer (`ip_vs_check_template` failing).
    pub fn invalidate_template(&mut self, id: ConnId) {
        with_store!(self, id.0, |s, i| {
            let ok = s
                .live(i)
                .is_some_and(|e| e.is_template() && e.flags & flags::UNHASHED == 0);
            if ok {
                s.unlink(i);
                s.slab[i as usize].flags |= flags::UNHASHED;
            }
        })
    }

    /// Remove an entry now (`ip_vs_conn_expire_now` on an entry that controls
    /// nothing). An entry controlling connections is left alone (None).
    pub fn remove(&mut self, id: ConnId) -> Option<Expired> {
        let c = self.get(id)?;
        if c.template && c.n_control > 0 {
            return None;
        }
        with_store!(self, id.0, |s, i| {
            let ctl = s.slab[i as usize].link;
            if !c.template && ctl != NIL {
                if let Some(t) = s.slab.get_mut(ctl as usize) {
                    if t.flags & flags::FREE_BIT == 0 && t.flags & flags::TEMPLATE != 0 {
                        t.link = t.link.saturating_sub(1);
                    }
                }
            }
            s.release(i);
        });
        Some(Expired { conn: c })
    }

    /// When to call `handle_timeout` next: no later than the earliest deadline of any entry.
    /// It may be earlier (an entry whose timer was pushed back, or removed), never later;
    /// such a wakeup finds nothing due and moves the bound on.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let (sec, bound) = self.wheel.first()?;
        Some(Instant::from_nanos(bound.max(u64::from(sec) * TICK_NS)))
    }

    /// Start loading the entries of `refs`, then their hash-bucket slots, before any is
    /// handled: an expiring entry was last used minutes ago, so each load misses the cache,
    /// and issued together (no load waits for another) the misses overlap instead of
    /// queueing.
    fn preload(&self, refs: &[u32]) {
        for &r in refs {
            with_store_ref!(self, r, |s, i| if let Some(e) = s.slab.get(i as usize) {
                prefetch(e);
            });
        }
        for &r in refs {
            with_store_ref!(self, r, |s, i| if let Some(e) = s.slab.get(i as usize) {
                prefetch(&s.buckets[s.bucket(u16::from(e.proto), e.caddr, e.cport)]);
            });
        }
    }

    /// File `r` under the bucket of its current deadline.
    fn refile(&mut self, r: u32) -> u32 {
        with_store!(self, r, |s, i| {
            let e = &mut s.slab[i as usize];
            e.wheel_at = sec_of(e.deadline);
            e.wheel_at
        })
    }

    /// Expire every entry whose deadline is at or before `now`, appending them
    /// to `out` in a deterministic order. Templates still controlling
    /// connections are kept 60 s more (`expire_later`).
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Expired>) {
        let now_ns = now.as_nanos();
        let now_sec = sec_of(now_ns);
        while let Some((sec, bound)) = self.wheel.first() {
            // Nothing in the bucket is due before its lower bound.
            if sec > now_sec || bound > now_ns {
                return;
            }
            let refs = self.wheel.take(sec);
            self.preload(&refs);
            let mut keep = Vec::new();
            let mut keep_bound = u64::MAX;
            for r in refs {
                let state = with_store_ref!(self, r, |s, i| s
                    .live(i)
                    .filter(|e| e.wheel_at == sec)
                    .map(|e| (e.deadline, e.is_template(), e.link)));
                let Some((deadline, template, link)) = state else {
                    continue;
                };
                if deadline <= now_ns && template && link > 0 {
                    with_store!(self, r, |s, i| {
                        let e = &mut s.slab[i as usize];
                        // The timer fired at its deadline, however late we run.
                        e.timeout = 60;
                        e.deadline = e.deadline.saturating_add(60_000_000_000);
                    });
                } else if deadline <= now_ns {
                    if let Some(x) = self.remove(ConnId(r)) {
                        out.push(x);
                    }
                    continue;
                }
                let ds = self.refile(r);
                let d = with_store_ref!(self, r, |s, i| s.live(i).map_or(u64::MAX, |e| e.deadline));
                if ds == sec {
                    keep.push(r);
                    keep_bound = keep_bound.min(d);
                } else {
                    self.wheel.file(ds, Some(r), d);
                }
            }
            if !keep.is_empty() {
                // Only deadlines later in the current tick remain here.
                self.wheel.merge(
                    sec,
                    Bucket {
                        refs: keep,
                        bound: keep_bound,
                    },
                );
                return;
            }
        }
    }

    /// Every live entry, sorted by key (templates after connections of the same key).
    pub fn entries(&self) -> Vec<Conn> {
        let mut v: Vec<Conn> = Vec::with_capacity(self.len());
        for (i, e) in self.v4.slab.iter().enumerate() {
            if e.flags & flags::FREE_BIT == 0 {
                v.push(view(i as u32, 0, e));
            }
        }
        for (i, e) in self.v6.slab.iter().enumerate() {
            if e.flags & flags::FREE_BIT == 0 {
                v.push(view(i as u32, V6_BIT, e));
            }
        }
        v.sort_by_key(|c| (c.key, c.template, c.id));
        v
    }

    /// Connections (not templates) from client `caddr:cport` over `proto`,
    /// in bucket order (the reply-direction lookup, `ip_vs_conn_out_get`).
    pub fn entries_for_client(&self, proto: u8, caddr: IpAddr, cport: u16) -> Vec<Conn> {
        fn walk<A: Addr>(s: &Store<A>, tag: u32, proto: u8, c: A, cport: u16, out: &mut Vec<Conn>) {
            let mut i = s.buckets[s.bucket(u16::from(proto), c, cport)];
            while i != NIL {
                let e = &s.slab[i as usize];
                if !e.is_template() && e.proto == proto && e.caddr == c && e.cport == cport {
                    out.push(view(i, tag, e));
                }
                i = e.next;
            }
        }
        let mut out = Vec::new();
        match caddr {
            IpAddr::V4(a) => walk(&self.v4, 0, proto, u32::from(a), cport, &mut out),
            IpAddr::V6(_) => {
                if let Some(a) = V6::from_ip(caddr) {
                    walk(&self.v6, V6_BIT, proto, a, cport, &mut out);
                }
            }
        }
        out
    }

    /// Live connections (not templates) whose destination is `dest`.
    pub fn ids_with_dest(&self, dest: DestId) -> Vec<ConnId> {
        self.entries()
            .into_iter()
            .filter(|c| c.dest == dest)
            .map(|c| c.id)
            .collect()
    }

    /// Bytes the table has allocated for its slabs, buckets and expiry index.
    pub fn heap_bytes(&self) -> usize {
        let wheel = self.wheel.heap_bytes();
        self.v4.slab.capacity() * Self::ENTRY_SIZE_V4
            + self.v6.slab.capacity() * Self::ENTRY_SIZE_V6
            + (self.v4.buckets.capacity() + self.v6.buckets.capacity()) * 4
            + wheel
    }
}
