//! The slab store: one address family's fixed-size entries linked by `u32` indices, and the
//! hash index over them (buckets chained on the client side only).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// End of a chain or of the free list.
pub(super) const NIL: u32 = u32::MAX;

/// The bit of a raw handle that says the entry lives in the IPv6 store.
pub(super) const V6_BIT: u32 = 1 << 31;

/// Connection flags kept per entry (a subset of `IP_VS_CONN_F_*`).
pub mod flags {
    /// A persistence template, not a connection.
    pub const TEMPLATE: u8 = 1;
    /// Counted in the destination's inactconns.
    pub const INACTIVE: u8 = 2;
    /// No reply seen through the director yet (DR/TUN: input-only state table).
    pub const NOOUTPUT: u8 = 4;
    /// Invalidated template: out of the lookup index, waiting for its timer.
    pub const UNHASHED: u8 = 8;
    /// Installed by the sync protocol.
    pub const SYNCED: u8 = 16;
    const FREE: u8 = 128;
    pub(in crate::ipvs::conn) const FREE_BIT: u8 = FREE;
}

/// Errors from table changes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnError {
    /// Client and virtual addresses of different families.
    #[error("mixed address families in one connection key")]
    MixedFamily,
    /// The key is already in the table.
    #[error("connection already exists")]
    Exists,
    /// The slab is full (2^31 entries per family).
    #[error("connection table full")]
    Full,
}

/// An address family's compact address.
pub(super) trait Addr: Copy + Eq + Ord + Default {
    fn from_ip(ip: IpAddr) -> Option<Self>;
    fn to_ip(self) -> IpAddr;
    fn fold(self) -> u64;
}

impl Addr for u32 {
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(a) => Some(u32::from(a)),
            IpAddr::V6(_) => None,
        }
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }
    fn fold(self) -> u64 {
        u64::from(self)
    }
}

/// IPv6 as four words: 4-byte alignment keeps the entry small.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(super) struct V6([u32; 4]);

impl Addr for V6 {
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) => {
                let b = u128::from(a);
                Some(V6([
                    (b >> 96) as u32,
                    (b >> 64) as u32,
                    (b >> 32) as u32,
                    b as u32,
                ]))
            }
            IpAddr::V4(_) => None,
        }
    }
    fn to_ip(self) -> IpAddr {
        let [a, b, c, d] = self.0;
        let v =
            (u128::from(a) << 96) | (u128::from(b) << 64) | (u128::from(c) << 32) | u128::from(d);
        IpAddr::V6(Ipv6Addr::from(v))
    }
    fn fold(self) -> u64 {
        let [a, b, c, d] = self.0;
        (u64::from(a) << 32 | u64::from(b)) ^ (u64::from(c) << 32 | u64::from(d)).rotate_left(17)
    }
}

/// Template entries carry this bit in their stored protocol so that a
/// template and a connection with the same tuple never match each other.
pub(super) const TEMPLATE_PROTO: u16 = 0x100;

/// One slab record. 48 bytes for IPv4, 72 for IPv6.
#[derive(Copy, Clone, Debug, Default)]
pub(super) struct Entry<A> {
    pub(super) caddr: A,
    pub(super) vaddr: A,
    pub(super) cport: u16,
    pub(super) vport: u16,
    pub(super) proto: u8,
    pub(super) state: u8,
    pub(super) old_state: u8,
    pub(super) flags: u8,
    pub(super) dest: u32,
    /// Connections: controlling template slab index (same family) or NIL; templates: n_control.
    pub(super) link: u32,
    /// Next in the hash chain, or in the free list.
    pub(super) next: u32,
    /// The expiry bucket (1/64 s) this entry is filed under.
    pub(super) wheel_at: u32,
    pub(super) timeout: u32,
    pub(super) in_pkts: u32,
    pub(super) deadline: u64,
}

impl<A: Addr> Entry<A> {
    pub(super) fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }
    pub(super) fn matches(&self, proto: u16, caddr: A, cport: u16, vaddr: A, vport: u16) -> bool {
        self.caddr == caddr
            && self.cport == cport
            && self.vport == vport
            && self.vaddr == vaddr
            && u16::from(self.proto)
                | if self.is_template() {
                    TEMPLATE_PROTO
                } else {
                    0
                }
                == proto
    }
}

/// Start loading the cache line holding `r` without waiting for it (a hint: nothing changes).
#[cfg(target_arch = "x86_64")]
pub(super) fn prefetch<T>(r: &T) {
    safe_arch::prefetch_t0(r);
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) fn prefetch<T>(_: &T) {}

fn mix(x: u64, seed: u64) -> u64 {
    // A multiply-xorshift finaliser (the splitmix64 constants): cheap and well spread.
    let mut z = x ^ seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash buckets kept per live entry: chains stay short (a quarter entry on average) because
/// the misses that matter are cold ones, a lookup of a new key walking a whole chain and an
/// expiring entry, the oldest of its chain, being unlinked from its end.
const BUCKETS_PER_ENTRY: usize = 4;

/// One address family's slab and hash index.
#[derive(Debug)]
pub(super) struct Store<A> {
    pub(super) slab: Vec<Entry<A>>,
    pub(super) buckets: Vec<u32>,
    pub(super) free: u32,
    pub(super) len: usize,
    pub(super) seed: u64,
}

impl<A: Addr> Store<A> {
    pub(super) fn new(seed: u64, capacity: usize) -> Self {
        let nb = (capacity * BUCKETS_PER_ENTRY).next_power_of_two().max(16);
        Store {
            slab: Vec::with_capacity(capacity),
            buckets: vec![NIL; nb],
            free: NIL,
            len: 0,
            seed,
        }
    }

    pub(super) fn bucket(&self, proto: u16, caddr: A, cport: u16) -> usize {
        let h = mix(
            caddr.fold() ^ (u64::from(cport) << 40) ^ (u64::from(proto) << 56),
            self.seed,
        );
        // buckets.len() is a power of two.
        (h as usize) & (self.buckets.len() - 1)
    }

    pub(super) fn find(
        &self,
        proto: u16,
        caddr: A,
        cport: u16,
        vaddr: A,
        vport: u16,
    ) -> Option<u32> {
        let mut i = self.buckets[self.bucket(proto, caddr, cport)];
        while i != NIL {
            let e = &self.slab[i as usize];
            if e.matches(proto, caddr, cport, vaddr, vport) {
                return Some(i);
            }
            i = e.next;
        }
        None
    }

    fn link(&mut self, i: u32) {
        let e = self.slab[i as usize];
        let tp = if e.is_template() { TEMPLATE_PROTO } else { 0 };
        let b = self.bucket(u16::from(e.proto) | tp, e.caddr, e.cport);
        self.slab[i as usize].next = self.buckets[b];
        self.buckets[b] = i;
    }

    pub(super) fn unlink(&mut self, i: u32) {
        let e = self.slab[i as usize];
        let tp = if e.is_template() { TEMPLATE_PROTO } else { 0 };
        let b = self.bucket(u16::from(e.proto) | tp, e.caddr, e.cport);
        if self.buckets[b] == i {
            self.buckets[b] = e.next;
            return;
        }
        let mut p = self.buckets[b];
        while p != NIL {
            let n = self.slab[p as usize].next;
            if n == i {
                self.slab[p as usize].next = e.next;
                return;
            }
            p = n;
        }
    }

    fn grow(&mut self) {
        let nb = self.buckets.len() * 2;
        self.buckets = vec![NIL; nb];
        for i in 0..self.slab.len() {
            let f = self.slab[i].flags;
            if f & (flags::FREE_BIT | flags::UNHASHED) == 0 {
                self.link(i as u32);
            }
        }
    }

    fn alloc(&mut self, e: Entry<A>) -> Result<u32, ConnError> {
        // Grow before placing the entry: the caller links it.
        if (self.len + 1) * BUCKETS_PER_ENTRY > self.buckets.len() {
            self.grow();
        }
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.slab[i as usize].next;
            self.slab[i as usize] = e;
            i
        } else {
            let i = u32::try_from(self.slab.len()).map_err(|_| ConnError::Full)?;
            if i >= V6_BIT {
                return Err(ConnError::Full);
            }
            self.slab.push(e);
            i
        };
        self.len += 1;
        Ok(i)
    }

    /// Allocate and hash `e`; a connection whose controlling template `ctl` (an index in this
    /// store) is live links to it and counts toward its `n_control`.
    pub(super) fn place(&mut self, mut e: Entry<A>, ctl: Option<u32>) -> Result<u32, ConnError> {
        let link = ctl.filter(|&t| self.live(t).is_some());
        let template = e.is_template();
        if !template {
            e.link = link.unwrap_or(NIL);
        }
        let i = self.alloc(e)?;
        self.link(i);
        if let (false, Some(t)) = (template, link) {
            self.slab[t as usize].link += 1;
        }
        Ok(i)
    }

    pub(super) fn release(&mut self, i: u32) {
        if self.slab[i as usize].flags & flags::UNHASHED == 0 {
            self.unlink(i);
        }
        let e = &mut self.slab[i as usize];
        e.flags = flags::FREE_BIT;
        e.next = self.free;
        self.free = i;
        self.len -= 1;
    }

    pub(super) fn live(&self, i: u32) -> Option<&Entry<A>> {
        self.slab
            .get(i as usize)
            .filter(|e| e.flags & flags::FREE_BIT == 0)
    }
}
