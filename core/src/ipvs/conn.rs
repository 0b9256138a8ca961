//! Connection table: the kernel's TCP state tables, timeouts and persistence templates.
//!
//! Reference: Linux 6.1 `ip_vs_conn.c` (table, expiry, templates) and
//! `ip_vs_proto_tcp.c` / `ip_vs_proto_udp.c` (state tables, timeouts).
//!
//! Layout: like the kernel, entries are chained in buckets hashed on the
//! client side only (protocol, client address, client port), so that one
//! bucket answers both the inbound lookup (client -> virtual) and the
//! outbound one (real server -> client). Unlike the kernel, entries live in a
//! slab of fixed-size records (48 bytes for IPv4) linked by `u32` indices, and
//! expiry runs from a map of 1/64-second buckets of slab indices, checked
//! lazily: a deadline moving later costs nothing until its bucket comes up.
//! No iteration order of this table depends on a hash: listings are sorted.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::time::Instant;

/// The kernel's TCP connection states (`IP_VS_TCP_S_*`), in table order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum TcpState {
    /// NONE.
    None = 0,
    /// ESTABLISHED.
    Established = 1,
    /// SYN_SENT.
    SynSent = 2,
    /// SYN_RECV.
    SynRecv = 3,
    /// FIN_WAIT.
    FinWait = 4,
    /// TIME_WAIT.
    TimeWait = 5,
    /// CLOSE.
    Close = 6,
    /// CLOSE_WAIT.
    CloseWait = 7,
    /// LAST_ACK.
    LastAck = 8,
    /// LISTEN.
    Listen = 9,
    /// SYNACK.
    SynAck = 10,
}

/// Number of TCP states (`IP_VS_TCP_S_LAST`).
pub const TCP_STATES: usize = 11;

const ALL_TCP: [TcpState; TCP_STATES] = [
    TcpState::None,
    TcpState::Established,
    TcpState::SynSent,
    TcpState::SynRecv,
    TcpState::FinWait,
    TcpState::TimeWait,
    TcpState::Close,
    TcpState::CloseWait,
    TcpState::LastAck,
    TcpState::Listen,
    TcpState::SynAck,
];

impl TcpState {
    /// The state with kernel number `n`.
    pub fn from_u8(n: u8) -> Option<TcpState> {
        ALL_TCP.get(usize::from(n)).copied()
    }

    /// The name `ipvsadm -L -c` prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }
}

/// Which way a packet travels relative to the connection (`IP_VS_DIR_*`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Direction {
    /// Client to virtual service.
    Input,
    /// Real server back through the director (NAT only).
    Output,
}

/// The TCP header bits the state machine reads.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// FIN.
    pub fin: bool,
    /// ACK.
    pub ack: bool,
    /// RST.
    pub rst: bool,
}

impl TcpFlags {
    /// A bare SYN.
    pub const SYN: TcpFlags = TcpFlags {
        syn: true,
        fin: false,
        ack: false,
        rst: false,
    };
    /// SYN+ACK.
    pub const SYN_ACK: TcpFlags = TcpFlags {
        syn: true,
        fin: false,
        ack: true,
        rst: false,
    };
    /// A bare ACK.
    pub const ACK: TcpFlags = TcpFlags {
        syn: false,
        fin: false,
        ack: true,
        rst: false,
    };
    /// FIN+ACK.
    pub const FIN_ACK: TcpFlags = TcpFlags {
        syn: false,
        fin: true,
        ack: true,
        rst: false,
    };
    /// RST.
    pub const RST: TcpFlags = TcpFlags {
        syn: false,
        fin: false,
        ack: false,
        rst: true,
    };

    /// Row in the state table (`tcp_state_idx`): RST beats SYN beats FIN beats ACK.
    fn row(self) -> Option<usize> {
        if self.rst {
            Some(3)
        } else if self.syn {
            Some(0)
        } else if self.fin {
            Some(1)
        } else if self.ack {
            Some(2)
        } else {
            None
        }
    }
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynAck as SA, SynRecv as SR, SynSent as SS, TimeWait as TW,
};

type StateRow = [TcpState; TCP_STATES];

/// `tcp_states`: rows syn/fin/ack/rst for INPUT, then OUTPUT, then INPUT-ONLY.
const TCP_STATES_NORMAL: [StateRow; 12] = [
    // INPUT
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
    [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    // OUTPUT
    [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
    [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    // INPUT-ONLY
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/// `tcp_states_dos`: the table `secure_tcp` switches to.
const TCP_STATES_SECURE: [StateRow; 12] = [
    // INPUT
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
    [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
    [CL, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    // OUTPUT
    [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
    [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    // INPUT-ONLY
    [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
    [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/// Which half of the state table a packet uses (`TCP_DIR_*` offsets / 4).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TableDir {
    /// Input packet on a connection whose replies pass the director (NAT).
    Input,
    /// Reply packet seen by the director (NAT).
    Output,
    /// Input packet on a connection whose replies bypass the director (DR, TUN).
    InputOnly,
}

/// The next TCP state (`set_tcp_state`), for the normal or the `secure_tcp` table.
/// A segment without SYN/FIN/ACK/RST moves the connection to CLOSE, as the kernel does.
pub fn tcp_next_state(state: TcpState, dir: TableDir, flags: TcpFlags, secure: bool) -> TcpState {
    let Some(row) = flags.row() else {
        return TcpState::Close;
    };
    let off = match dir {
        TableDir::Input => 0,
        TableDir::Output => 4,
        TableDir::InputOnly => 8,
    };
    let table = if secure {
        &TCP_STATES_SECURE
    } else {
        &TCP_STATES_NORMAL
    };
    table[off + row][state as usize]
}

/// Per-state timeouts in seconds (`tcp_timeouts`, `udp_timeouts`), changed by `ipvsadm --set`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Timeouts {
    /// TCP, indexed by [`TcpState`] number.
    pub tcp: [u32; TCP_STATES],
    /// UDP (`IP_VS_UDP_S_NORMAL`).
    pub udp: u32,
    /// Other protocols (SCTP is kept as a single-state protocol here).
    pub other: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            // NONE, ES, SYN_SENT, SYN_RECV, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN, SYNACK
            tcp: [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120],
            udp: 300,
            other: 300,
        }
    }
}

impl Timeouts {
    /// `ipvsadm --set tcp tcpfin udp`: ESTABLISHED, FIN_WAIT and UDP timeouts; 0 leaves one unchanged.
    pub fn set(&mut self, tcp: u32, tcpfin: u32, udp: u32) {
        if tcp != 0 {
            self.tcp[TcpState::Established as usize] = tcp;
        }
        if tcpfin != 0 {
            self.tcp[TcpState::FinWait as usize] = tcpfin;
        }
        if udp != 0 {
            self.udp = udp;
        }
    }

    /// What `ipvsadm -L --timeout` prints: (tcp, tcpfin, udp).
    pub fn get(&self) -> (u32, u32, u32) {
        (
            self.tcp[TcpState::Established as usize],
            self.tcp[TcpState::FinWait as usize],
            self.udp,
        )
    }

    /// Timeout of a connection of protocol `proto` in `state`.
    pub fn for_state(&self, proto: u8, state: u8) -> u32 {
        match proto {
            6 => self.tcp.get(usize::from(state)).copied().unwrap_or(2),
            17 => self.udp,
            _ => self.other,
        }
    }
}

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
    pub(super) const FREE_BIT: u8 = FREE;
}

/// Opaque handle of a destination binding, managed by [`super::table::Ipvs`].
pub type DestId = u32;

/// No destination.
pub const NO_DEST: DestId = u32::MAX;
const NIL: u32 = u32::MAX;

/// Handle of a live entry (connection or template). Valid until the entry expires.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ConnId(u32);

const V6_BIT: u32 = 1 << 31;

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
trait Addr: Copy + Eq + Ord + Default {
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
struct V6([u32; 4]);

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
const TEMPLATE_PROTO: u16 = 0x100;

/// One slab record. 48 bytes for IPv4, 72 for IPv6.
#[derive(Copy, Clone, Debug, Default)]
struct Entry<A> {
    caddr: A,
    vaddr: A,
    cport: u16,
    vport: u16,
    proto: u8,
    state: u8,
    old_state: u8,
    flags: u8,
    dest: u32,
    /// Connections: controlling template slab index (same family) or NIL; templates: n_control.
    link: u32,
    /// Next in the hash chain, or in the free list.
    next: u32,
    /// The expiry bucket (1/64 s) this entry is filed under.
    wheel_at: u32,
    timeout: u32,
    in_pkts: u32,
    deadline: u64,
}

impl<A: Addr> Entry<A> {
    fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }
    fn matches(&self, proto: u16, caddr: A, cport: u16, vaddr: A, vport: u16) -> bool {
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
fn prefetch<T>(r: &T) {
    safe_arch::prefetch_t0(r);
}

#[cfg(not(target_arch = "x86_64"))]
fn prefetch<T>(_: &T) {}

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
struct Store<A> {
    slab: Vec<Entry<A>>,
    buckets: Vec<u32>,
    free: u32,
    len: usize,
    seed: u64,
}

impl<A: Addr> Store<A> {
    fn new(seed: u64, capacity: usize) -> Self {
        let nb = (capacity * BUCKETS_PER_ENTRY).next_power_of_two().max(16);
        Store {
            slab: Vec::with_capacity(capacity),
            buckets: vec![NIL; nb],
            free: NIL,
            len: 0,
            seed,
        }
    }

    fn bucket(&self, proto: u16, caddr: A, cport: u16) -> usize {
        let h = mix(
            caddr.fold() ^ (u64::from(cport) << 40) ^ (u64::from(proto) << 56),
            self.seed,
        );
        // buckets.len() is a power of two.
        (h as usize) & (self.buckets.len() - 1)
    }

    fn find(&self, proto: u16, caddr: A, cport: u16, vaddr: A, vport: u16) -> Option<u32> {
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

    fn unlink(&mut self, i: u32) {
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
    fn place(&mut self, mut e: Entry<A>, ctl: Option<u32>) -> Result<u32, ConnError> {
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

    fn release(&mut self, i: u32) {
        if self.slab[i as usize].flags & flags::UNHASHED == 0 {
            self.unlink(i);
        }
        let e = &mut self.slab[i as usize];
        e.flags = flags::FREE_BIT;
        e.next = self.free;
        self.free = i;
        self.len -= 1;
    }

    fn live(&self, i: u32) -> Option<&Entry<A>> {
        self.slab
            .get(i as usize)
            .filter(|e| e.flags & flags::FREE_BIT == 0)
    }
}

/// The connection table: connections and persistence templates of both families.
#[derive(Debug)]
pub struct ConnTable {
    v4: Store<u32>,
    v6: Store<V6>,
    /// Expiry buckets: bucket (1/64 s) -> slab references filed there.
    wheel: Wheel,
}

/// One expiry bucket.
#[derive(Debug)]
struct Bucket {
    /// Slab references filed here (some may be stale: freed, or refiled elsewhere).
    refs: Vec<u32>,
    /// A lower bound of the deadlines filed here, so that `poll_timeout` need not read the
    /// entries (it runs after every packet).
    bound: u64,
}

/// Expiry buckets by tick: a map, except that the bucket filed into last is kept out of it,
/// since filings come in runs for one tick (new connections due 60 s from now, connections
/// refiled at their first visit due about then too) and each would otherwise walk the tree.
#[derive(Debug, Default)]
struct Wheel {
    map: BTreeMap<u32, Bucket>,
    /// The bucket filed into last. The map may hold the same tick too (filed before another
    /// tick took the place); those references are older.
    hot: Option<(u32, Bucket)>,
    /// The earliest tick and its bound (`poll_timeout` asks after every packet).
    earliest: Option<(u32, u64)>,
}

impl Wheel {
    /// Note that tick `sec` holds an entry due at `deadline`, filing `r` there if given.
    fn file(&mut self, sec: u32, r: Option<u32>, deadline: u64) {
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
    fn merge(&mut self, sec: u32, b: Bucket) {
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
    fn first(&self) -> Option<(u32, u64)> {
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
    fn take(&mut self, sec: u32) -> Vec<u32> {
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
    fn heap_bytes(&self) -> usize {
        let per = |b: &Bucket| b.refs.capacity() * 4 + std::mem::size_of::<(u32, Bucket)>() + 8;
        self.map.values().map(per).sum::<usize>() + self.hot.as_ref().map_or(0, |(_, b)| per(b))
    }
}

/// Width of one expiry bucket: 1/64 s, so a busy second is not rescanned for every
/// deadline in it (u32 buckets still cover two years).
const TICK_NS: u64 = 1_000_000_000 / 64;

/// The expiry bucket of a deadline.
fn sec_of(nanos: u64) -> u32 {
    u32::try_from(nanos / TICK_NS).unwrap_or(u32::MAX)
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
            let old = TcpState::from_u8(e.state).unwrap_or(TcpState::None);
            let new = tcp_next_state(old, dir, tcp, secure);
            let mut moved = None;
            if new != old && e.dest != NO_DEST {
                let inactive = e.flags & flags::INACTIVE != 0;
                if !inactive && new != TcpState::Established {
                    e.flags |= flags::INACTIVE;
                    moved = Some(false);
                } else if inactive && new == TcpState::Established {
                    e.flags &= !flags::INACTIVE;
                    moved = Some(true);
                }
            }
            e.state = new as u8;
            (old, new, moved, timeouts.tcp[new as usize])
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: &str, cport: u16) -> ConnKey {
        ConnKey {
            proto: 6,
            caddr: c.parse().unwrap(),
            cport,
            vaddr: "10.0.0.1".parse().unwrap(),
            vport: 80,
        }
    }

    fn conn(k: ConnKey, timeout: u32) -> NewConn {
        NewConn {
            key: k,
            template: false,
            dest: 7,
            flags: flags::INACTIVE | flags::NOOUTPUT,
            state: 0,
            timeout,
            control: None,
        }
    }

    #[test]
    fn entry_is_compact() {
        assert_eq!(ConnTable::ENTRY_SIZE_V4, 48);
        assert_eq!(ConnTable::ENTRY_SIZE_V6, 72);
    }

    #[test]
    fn nat_handshake_and_close_follow_tcp_states() {
        // Client SYN (in), server SYN+ACK (out), client ACK (in): kernel path
        // NONE -> SYN_RECV -> SYN_RECV -> ESTABLISHED.
        let t = Timeouts::default();
        let mut s = TcpState::None;
        let steps = [
            (TableDir::Input, TcpFlags::SYN, SR),
            (TableDir::Output, TcpFlags::SYN_ACK, SR),
            (TableDir::Input, TcpFlags::ACK, ES),
            (TableDir::Input, TcpFlags::FIN_ACK, CW),
            (TableDir::Output, TcpFlags::FIN_ACK, TW),
            (TableDir::Input, TcpFlags::ACK, TW),
        ];
        for (dir, f, want) in steps {
            s = tcp_next_state(s, dir, f, false);
            assert_eq!(s, want, "{dir:?} {f:?}");
        }
        assert_eq!(t.tcp[s as usize], 120);
    }

    #[test]
    fn input_only_table_differs_on_fin_and_rst() {
        // DR: the client's FIN from ESTABLISHED goes to FIN_WAIT, not CLOSE_WAIT.
        assert_eq!(
            tcp_next_state(ES, TableDir::InputOnly, TcpFlags::FIN_ACK, false),
            FW
        );
        assert_eq!(
            tcp_next_state(ES, TableDir::Input, TcpFlags::FIN_ACK, false),
            CW
        );
        // RST on SYNACK: input keeps SYN_RECV, input-only closes.
        assert_eq!(
            tcp_next_state(SA, TableDir::Input, TcpFlags::RST, false),
            SR
        );
        assert_eq!(
            tcp_next_state(SA, TableDir::InputOnly, TcpFlags::RST, false),
            CL
        );
        // secure_tcp: a SYN on a fresh input-only connection goes to SYNACK.
        assert_eq!(
            tcp_next_state(TcpState::None, TableDir::InputOnly, TcpFlags::SYN, true),
            SA
        );
        // No flag at all: CLOSE.
        assert_eq!(
            tcp_next_state(ES, TableDir::Input, TcpFlags::default(), false),
            CL
        );
    }

    #[test]
    fn set_timeouts_touches_only_three_values() {
        let mut t = Timeouts::default();
        t.set(7200, 0, 50);
        assert_eq!(t.get(), (7200, 120, 50));
        assert_eq!(t.tcp[TcpState::Close as usize], 10);
    }

    #[test]
    fn insert_lookup_expire() {
        let mut ct = ConnTable::new(1);
        let k = key("192.0.2.7", 40001);
        let id = ct.insert(Instant::ZERO, conn(k, 10)).unwrap();
        assert_eq!(ct.lookup(&k), Some(id));
        assert_eq!(ct.lookup_template(&k), None);
        assert_eq!(
            ct.insert(Instant::ZERO, conn(k, 10)),
            Err(ConnError::Exists)
        );
        assert_eq!(ct.poll_timeout(), Some(Instant::from_secs(10)));
        let mut out = Vec::new();
        ct.handle_timeout(Instant::from_secs(9), &mut out);
        assert!(out.is_empty());
        ct.touch(id, Instant::from_secs(9));
        ct.handle_timeout(Instant::from_secs(10), &mut out);
        assert!(out.is_empty(), "touched at 9 s, lives until 19 s");
        assert_eq!(ct.poll_timeout(), Some(Instant::from_secs(19)));
        ct.handle_timeout(Instant::from_secs(19), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].conn.key, k);
        assert!(ct.is_empty());
        assert_eq!(ct.lookup(&k), None);
        assert_eq!(ct.poll_timeout(), None);
    }

    #[test]
    fn template_outlives_its_connections() {
        let mut ct = ConnTable::new(1);
        let tk = ConnKey {
            cport: 0,
            ..key("192.0.2.0", 0)
        };
        let t = ct
            .insert(
                Instant::ZERO,
                NewConn {
                    template: true,
                    flags: 0,
                    ..conn(tk, 30)
                },
            )
            .unwrap();
        let c = ct
            .insert(
                Instant::ZERO,
                NewConn {
                    control: Some(t),
                    ..conn(key("192.0.2.7", 1), 100)
                },
            )
            .unwrap();
        assert_eq!(ct.get(t).unwrap().n_control, 1);
        assert_eq!(ct.get(c).unwrap().control, Some(t));
        let mut out = Vec::new();
        ct.handle_timeout(Instant::from_secs(30), &mut out);
        assert!(out.is_empty());
        assert_eq!(
            ct.get(t).unwrap().timeout,
            60,
            "expire_later re-arms for 60 s"
        );
        ct.handle_timeout(Instant::from_secs(100), &mut out);
        assert_eq!(out.len(), 1);
        assert!(!out[0].conn.template);
        assert_eq!(ct.get(t).unwrap().n_control, 0);
        ct.handle_timeout(Instant::from_secs(150), &mut out);
        assert_eq!(out.len(), 2);
        assert!(out[1].conn.template);
    }

    #[test]
    fn invalidated_template_is_not_found_but_still_expires() {
        let mut ct = ConnTable::new(1);
        let tk = key("192.0.2.0", 0);
        let t = ct
            .insert(
                Instant::ZERO,
                NewConn {
                    template: true,
                    ..conn(tk, 30)
                },
            )
            .unwrap();
        ct.invalidate_template(t);
        assert_eq!(ct.lookup_template(&tk), None);
        let t2 = ct
            .insert(
                Instant::ZERO,
                NewConn {
                    template: true,
                    ..conn(tk, 30)
                },
            )
            .unwrap();
        assert_ne!(t, t2);
        let mut out = Vec::new();
        ct.handle_timeout(Instant::from_secs(30), &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn many_entries_grow_and_stay_findable_v4_and_v6() {
        let mut ct = ConnTable::new(99);
        for p in 0..5000u16 {
            ct.insert(
                Instant::ZERO,
                conn(key("192.0.2.9", p), 5 + u32::from(p % 7)),
            )
            .unwrap();
            let k6 = ConnKey {
                caddr: "2001:db8::9".parse().unwrap(),
                vaddr: "2001:db8::1".parse().unwrap(),
                ..key("192.0.2.9", p)
            };
            ct.insert(Instant::ZERO, conn(k6, 5)).unwrap();
        }
        assert_eq!(ct.len(), 10_000);
        for p in (0..5000u16).step_by(97) {
            assert!(ct.lookup(&key("192.0.2.9", p)).is_some());
        }
        let mut out = Vec::new();
        ct.handle_timeout(Instant::from_secs(8), &mut out);
        let left = ct.len();
        assert!(left > 0 && left < 10_000);
        ct.handle_timeout(Instant::from_secs(11), &mut out);
        assert!(ct.is_empty());
        assert_eq!(out.len(), 10_000);
    }

    #[test]
    fn batch_lookup_answers_like_single_lookups() {
        let mut ct = ConnTable::new(3);
        let mut keys = Vec::new();
        for p in 0..300u16 {
            let k = key(&format!("192.0.2.{}", p % 200), p);
            if p % 3 != 0 {
                ct.insert(Instant::ZERO, conn(k, 10)).unwrap();
            }
            keys.push(k);
        }
        keys.push(ConnKey {
            caddr: "2001:db8::1".parse().unwrap(),
            vaddr: "2001:db8::2".parse().unwrap(),
            ..keys[0]
        });
        ct.insert(Instant::ZERO, conn(keys[300], 10)).unwrap();
        let mut out = Vec::new();
        ct.lookup_batch(&keys, &mut out);
        let single: Vec<Option<ConnId>> = keys.iter().map(|k| ct.lookup(k)).collect();
        assert_eq!(out, single);
        assert_eq!(out.iter().filter(|x| x.is_some()).count(), 201);
    }

    #[test]
    fn mixed_family_key_is_refused() {
        let mut ct = ConnTable::new(1);
        let k = ConnKey {
            vaddr: "2001:db8::1".parse().unwrap(),
            ..key("192.0.2.1", 1)
        };
        assert_eq!(
            ct.insert(Instant::ZERO, conn(k, 1)),
            Err(ConnError::MixedFamily)
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u8, u32),
        Touch(u8),
        Remove(u8),
        Advance(u64),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0u8..24, 1u32..30).prop_map(|(k, t)| Op::Insert(k, t)),
            (0u8..24).prop_map(Op::Touch),
            (0u8..24).prop_map(Op::Remove),
            (0u64..20_000).prop_map(Op::Advance),
        ]
    }

    fn model_key(k: u8) -> ConnKey {
        if matches!(k % 3, 0) {
            ConnKey {
                caddr: format!("2001:db8::{k}").parse().unwrap(),
                vaddr: "2001:db8::1".parse().unwrap(),
                ..key("192.0.2.1", u16::from(k))
            }
        } else {
            key(&format!("192.0.2.{k}"), u16::from(k) % 4)
        }
    }

    proptest::proptest! {
        /// The slab, chains and lazy expiry index agree with a plain map of deadlines.
        #[test]
        fn table_matches_a_map_of_deadlines(ops in proptest::collection::vec(op(), 1..120)) {
            let mut ct = ConnTable::new(5);
            let mut model: BTreeMap<u8, (u64, u32)> = BTreeMap::new();
            let mut now = Instant::ZERO;
            let mut out = Vec::new();
            for o in ops {
                match o {
                    Op::Insert(k, t) => {
                        let r = ct.insert(now, conn(model_key(k), t));
                        proptest::prop_assert_eq!(r.is_ok(), !model.contains_key(&k));
                        if r.is_ok() {
                            model.insert(k, (now.as_nanos() + u64::from(t) * 1_000_000_000, t));
                        }
                    }
                    Op::Touch(k) => {
                        if let Some(id) = ct.lookup(&model_key(k)) {
                            ct.touch(id, now);
                            let e = model.get_mut(&k).unwrap();
                            e.0 = now.as_nanos() + u64::from(e.1) * 1_000_000_000;
                        }
                    }
                    Op::Remove(k) => {
                        let got = ct.lookup(&model_key(k)).and_then(|id| ct.remove(id));
                        proptest::prop_assert_eq!(got.is_some(), model.remove(&k).is_some());
                    }
                    Op::Advance(ms) => {
                        now += Duration::from_millis(ms);
                        out.clear();
                        ct.handle_timeout(now, &mut out);
                        let mut gone: Vec<ConnKey> = out.iter().map(|x| x.conn.key).collect();
                        gone.sort();
                        let mut want: Vec<ConnKey> = model
                            .iter()
                            .filter(|(_, (d, _))| *d <= now.as_nanos())
                            .map(|(k, _)| model_key(*k))
                            .collect();
                        want.sort();
                        model.retain(|_, (d, _)| *d > now.as_nanos());
                        proptest::prop_assert_eq!(gone, want);
                    }
                }
                proptest::prop_assert_eq!(ct.len(), model.len());
                for k in 0u8..24 {
                    proptest::prop_assert_eq!(ct.lookup(&model_key(k)).is_some(), model.contains_key(&k));
                }
                // The wakeup is never later than the earliest deadline; an early one (a
                // timer pushed back, an entry removed: one per bucket they left behind)
                // finds nothing due and moves the wakeup strictly later, so the calls reach
                // the deadline itself.
                let next = model.values().map(|(d, _)| *d).min().map(Instant::from_nanos);
                if let Some(n) = next {
                    let mut wake = ct.poll_timeout();
                    let mut last = None;
                    while let Some(t) = wake.filter(|t| *t < n) {
                        proptest::prop_assert!(
                            last.is_none_or(|l| t > l),
                            "no progress towards {:?}: woken at {:?} again",
                            n,
                            t
                        );
                        last = Some(t);
                        out.clear();
                        ct.handle_timeout(t.max(now), &mut out);
                        proptest::prop_assert!(out.is_empty(), "expired early at {:?}", t);
                        wake = ct.poll_timeout();
                    }
                    proptest::prop_assert_eq!(wake, Some(n));
                }
            }
        }
    }
}
