//! The IPVS object: virtual services plus the connection table, driven like
//! the kernel's `ip_vs_in` path (Linux 6.1 `ip_vs_core.c`, `ip_vs_ctl.c`).
//!
//! Destinations are referred to from connections by a [`DestId`] naming
//! (service, address, port, method). A deleted destination keeps its
//! counters while connections still point at it and gets them back when it
//! is added again, as the kernel's destination trash does.
//!
//! Split as the kernel splits it: `control` holds the `ipvsadm` verbs on services and
//! destinations (`ip_vs_ctl.c`), `packet` the per-packet path — `process`, `process_reply`,
//! scheduling and persistence templates (`ip_vs_core.c`); this file holds the object, the
//! destination bindings and their counters, expiry and synced installs.

mod control;
mod packet;
#[cfg(test)]
mod sctp_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::conn::{
    flags, Conn, ConnError, ConnId, ConnKey, ConnTable, DestId, Expired, NewConn, TcpFlags,
    Timeouts, NO_DEST,
};
use super::dest::overload_cleared;
use super::service::{Dest, Service};
use super::stats::{Estimator, IpvsStats, Rates, ESTIMATOR_PERIOD_NS};
use super::{FwdMethod, Protocol, ServiceKey, SockAddr};
use crate::time::Instant;
use crate::wire::sctp::ChunkTypes;

/// The sysctls under `net.ipv4.vs` this model honours.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IpvsOptions {
    /// `expire_nodest_conn`: a packet for a connection whose destination is
    /// gone expires the connection (and is scheduled anew) instead of being dropped.
    pub expire_nodest_conn: bool,
    /// `expire_quiescent_template`: a template whose destination has weight 0 is invalid.
    pub expire_quiescent_template: bool,
    /// `secure_tcp` > 0: the `tcp_states_dos` table.
    pub secure_tcp: bool,
    /// `sloppy_tcp`: schedule a new connection on any TCP packet, not only SYN.
    pub sloppy_tcp: bool,
    /// `sloppy_sctp`: schedule a new connection on any SCTP packet but an ABORT, not only
    /// on an INIT.
    pub sloppy_sctp: bool,
    /// `conn_reuse_mode` (default 1): a SYN on an uncontrolled connection in
    /// TIME_WAIT or CLOSE (bit 2: also FIN_WAIT without output), or an SCTP INIT on one in
    /// CLOSED, is scheduled anew.
    pub conn_reuse_mode: u8,
}

impl Default for IpvsOptions {
    fn default() -> Self {
        IpvsOptions {
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            secure_tcp: false,
            sloppy_tcp: false,
            sloppy_sctp: false,
            conn_reuse_mode: 1,
        }
    }
}

/// The connection-relevant fields of a packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PacketInfo {
    /// Transport protocol.
    pub proto: Protocol,
    /// Source address.
    pub src: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// TCP flags (ignored for UDP/SCTP).
    pub tcp: TcpFlags,
    /// SCTP: the chunk types IPVS reads (ignored for TCP/UDP).
    pub sctp: ChunkTypes,
    /// Netfilter mark (0 = none).
    pub fwmark: u32,
    /// The IP packet's length (`skb->len`: IP header to the end of the payload), what the
    /// byte counters add.
    pub len: u32,
}

impl PacketInfo {
    /// The key of the connection the packet belongs to, client to virtual service.
    pub fn conn_key(&self) -> ConnKey {
        ConnKey {
            proto: self.proto.number(),
            caddr: self.src,
            cport: self.sport,
            vaddr: self.dst,
            vport: self.dport,
        }
    }
}

/// Why a packet for a virtual service is dropped.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum DropReason {
    /// The scheduler found no usable destination.
    NoDest,
    /// The connection's destination was removed (and `expire_nodest_conn` is off).
    DestGone,
    /// The connection table refused the entry.
    TableFull,
}

/// Where a forwarded packet goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Forward {
    /// The connection.
    pub conn: ConnId,
    /// True when this packet created it.
    pub new: bool,
    /// Real server.
    pub dest: SockAddr,
    /// Forwarding method.
    pub fwd: FwdMethod,
    /// Input packets so far (for the sync threshold).
    pub in_pkts: u32,
}

/// What IPVS does with a packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Verdict {
    /// Send it to a real server.
    Forward(Forward),
    /// A NAT reply: rewrite its source to the virtual address and send it to the client.
    Reply {
        /// The connection.
        conn: ConnId,
        /// Virtual address:port to put as source.
        vaddr: SockAddr,
    },
    /// Not for a virtual service (or a non-SYN TCP packet without a
    /// connection): IPVS lets it through untouched.
    Pass,
    /// Drop it.
    Drop(DropReason),
}

/// What a destination binding names.
#[derive(Clone, Debug)]
struct DestSlot {
    svc: ServiceKey,
    addr: IpAddr,
    port: u16,
    fwd: FwdMethod,
    refs: u32,
    /// Counters of the destination while it is deleted (the kernel's trash).
    saved: Option<Counters>,
    /// The destination's weight while it is in its service (what `available` answers for
    /// every packet), kept by `refresh_weights` after every service or destination change.
    weight: Option<i32>,
}

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Counters {
    active: u32,
    inact: u32,
    persist: u32,
    overloaded: bool,
    u_threshold: u32,
    l_threshold: u32,
    /// The destination's traffic counters (only saved and restored, never updated here).
    stats: IpvsStats,
}

impl Counters {
    /// A destination's counters and thresholds, as the trash keeps them.
    fn of(d: &Dest) -> Counters {
        Counters {
            active: d.activeconns,
            inact: d.inactconns,
            persist: d.persistconns,
            overloaded: d.overloaded,
            u_threshold: d.u_threshold,
            l_threshold: d.l_threshold,
            stats: d.stats,
        }
    }

    /// The counter an entry of this kind is counted in.
    fn count_of(&mut self, template: bool, inactive: bool) -> &mut u32 {
        if template {
            &mut self.persist
        } else if inactive {
            &mut self.inact
        } else {
            &mut self.active
        }
    }
}

/// A connection with its destination resolved, for listings and sync.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ConnInfo {
    /// The entry.
    pub conn: Conn,
    /// Its service.
    pub service: Option<ServiceKey>,
    /// Real server address and port.
    pub dest: Option<SockAddr>,
    /// Forwarding method.
    pub fwd: Option<FwdMethod>,
}

/// Virtual services and the connection table.
#[derive(Debug)]
pub struct Ipvs {
    services: BTreeMap<ServiceKey, Service>,
    conns: ConnTable,
    timeouts: Timeouts,
    opts: IpvsOptions,
    slots: Vec<DestSlot>,
    slot_index: BTreeMap<(ServiceKey, IpAddr, u16, FwdMethod), DestId>,
    free_slots: Vec<DestId>,
    /// Live destination slots forwarding with NAT: without one, no packet is a NAT reply.
    masq_slots: usize,
    expired: Vec<Expired>,
    pub(super) estimators: Estimators,
}

/// Whose counters an estimator follows: a service, or one of its destinations.
pub type EstimatorKey = (ServiceKey, Option<SockAddr>);

/// The kernel's `est_list`: one [`Estimator`] per service and destination, all run together
/// every 2 s of the driver's clock. Driven lazily: counters only change with packets, so the
/// runs due before a packet (or a listing) are done then, over the counters as they stood.
#[derive(Clone, Debug)]
pub(super) struct Estimators {
    by_key: BTreeMap<EstimatorKey, Estimator>,
    next: Instant,
}

impl Default for Estimators {
    fn default() -> Self {
        Estimators {
            by_key: BTreeMap::new(),
            next: Instant::from_nanos(ESTIMATOR_PERIOD_NS),
        }
    }
}

impl Estimators {
    /// Every run of `estimation_timer` due by `now`. Once every average is zero and no
    /// counter moves, later runs change nothing and are skipped.
    fn run_until(&mut self, services: &BTreeMap<ServiceKey, Service>, now: Instant) {
        if now < self.next {
            return;
        }
        while self.next <= now {
            let mut settled = true;
            for svc in services.values() {
                let key = svc.spec().key;
                let counters = std::iter::once((None, svc.stats())).chain(
                    svc.dests()
                        .iter()
                        .map(|d| (Some(SockAddr(d.addr, d.port)), &d.stats)),
                );
                for (dest, stats) in counters {
                    let e = self.by_key.entry((key, dest)).or_default();
                    e.tick(stats);
                    settled &= e.settled(stats);
                }
            }
            self.next += std::time::Duration::from_nanos(ESTIMATOR_PERIOD_NS);
            if settled {
                let periods = (now.as_nanos() / ESTIMATOR_PERIOD_NS) + 1;
                self.next = Instant::from_nanos(periods * ESTIMATOR_PERIOD_NS);
            }
        }
        // A service that is gone takes its estimators along; a destination's waits in case
        // it comes back from the trash (`add_dest` forgets it when it comes back new).
        self.by_key.retain(|(key, _), _| services.contains_key(key));
    }

    /// Drop the estimator of a service (`dest` None: and of all its destinations) or of
    /// one destination, so that it starts afresh.
    pub(super) fn forget(&mut self, key: &ServiceKey, dest: Option<SockAddr>) {
        match dest {
            Some(d) => {
                self.by_key.remove(&(*key, Some(d)));
            }
            None => self.by_key.retain(|(k, _), _| k != key),
        }
    }
}

/// Masks `addr` to its first `prefix` bits.
pub fn mask_addr(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let p = u32::from(prefix.min(32));
            let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let p = u32::from(prefix.min(128));
            let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

impl Default for Ipvs {
    fn default() -> Self {
        Self::new(IpvsOptions::default(), 0)
    }
}

impl Ipvs {
    /// An empty table; `hash_seed` keys the connection hash.
    pub fn new(opts: IpvsOptions, hash_seed: u64) -> Self {
        Ipvs {
            services: BTreeMap::new(),
            conns: ConnTable::new(hash_seed),
            timeouts: Timeouts::default(),
            opts,
            slots: Vec::new(),
            slot_index: BTreeMap::new(),
            free_slots: Vec::new(),
            masq_slots: 0,
            expired: Vec::new(),
            estimators: Estimators::default(),
        }
    }

    /// The rate of every service and destination as the kernel's estimator reads at `now`
    /// (what `ipvsadm -L -n --rate` prints).
    pub fn rates_at(&self, now: Instant) -> BTreeMap<EstimatorKey, Rates> {
        let mut est = self.estimators.clone();
        est.run_until(&self.services, now);
        est.by_key.iter().map(|(k, e)| (*k, e.rates())).collect()
    }

    /// The sysctls in force.
    pub fn options(&self) -> &IpvsOptions {
        &self.opts
    }

    /// Change the sysctls.
    pub fn set_options(&mut self, opts: IpvsOptions) {
        self.opts = opts;
    }

    /// The timeout tables.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Services in key order, with their destinations and counters.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.values()
    }

    /// One service.
    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.services.get(key)
    }

    /// The connection table.
    pub fn conns(&self) -> &ConnTable {
        &self.conns
    }

    fn slot_for(&mut self, svc: ServiceKey, addr: IpAddr, port: u16, fwd: FwdMethod) -> DestId {
        if let Some(&id) = self.slot_index.get(&(svc, addr, port, fwd)) {
            return id;
        }
        let slot = DestSlot {
            svc,
            addr,
            port,
            fwd,
            refs: 0,
            saved: None,
            weight: None,
        };
        let id = if let Some(id) = self.free_slots.pop() {
            self.slots[id as usize] = slot;
            id
        } else {
            self.slots.push(slot);
            (self.slots.len() - 1) as DestId
        };
        self.slot_index.insert((svc, addr, port, fwd), id);
        self.masq_slots += usize::from(fwd == FwdMethod::Masq);
        self.slots[id as usize].weight = self.lookup_weight(id);
        id
    }

    /// Whether a binding's destination is in its service, and its weight, from the services.
    fn lookup_weight(&self, id: DestId) -> Option<i32> {
        let s = self.slots.get(id as usize)?;
        self.services
            .get(&s.svc)?
            .dest(s.addr, s.port)
            .map(|d| d.weight)
    }

    /// The destination a binding names, with its availability (present in its service).
    fn dest_of(&mut self, id: DestId) -> Option<(&mut DestSlot, Option<&mut Dest>)> {
        let slot = self.slots.get_mut(id as usize)?;
        let dest = self
            .services
            .get_mut(&slot.svc)
            .and_then(|s| s.dest_mut(slot.addr, slot.port));
        Some((slot, dest))
    }

    /// Apply `f` to a binding's counters: its destination's while the destination is in its
    /// service, else the ones saved in the trash (`create`: from zero when none were saved).
    fn update_counters(&mut self, id: DestId, create: bool, f: impl FnOnce(&mut Counters)) {
        let Some((slot, dest)) = self.dest_of(id) else {
            return;
        };
        match dest {
            Some(d) => {
                let mut c = Counters::of(d);
                f(&mut c);
                d.activeconns = c.active;
                d.inactconns = c.inact;
                d.persistconns = c.persist;
                d.overloaded = c.overloaded;
            }
            None if create => {
                let mut c = slot.saved.unwrap_or_default();
                f(&mut c);
                slot.saved = Some(c);
            }
            None => {
                if let Some(c) = slot.saved.as_mut() {
                    f(c);
                }
            }
        }
    }

    /// Count traffic on a binding's destination and on the destination's service
    /// (`dest->svc`), while the destination is in its service (`IP_VS_DEST_F_AVAILABLE`).
    fn count_traffic(&mut self, id: DestId, f: impl Fn(&mut IpvsStats)) {
        let Some(slot) = self.slots.get(id as usize).filter(|_| id != NO_DEST) else {
            return;
        };
        let (addr, port) = (slot.addr, slot.port);
        let Some(svc) = self.services.get_mut(&slot.svc) else {
            return;
        };
        if let Some(d) = svc.dest_mut(addr, port) {
            f(&mut d.stats);
            f(svc.stats_mut());
        }
    }

    /// `ip_vs_bind_dest`: count the entry on its destination and set OVERLOAD.
    fn bind(&mut self, id: DestId, template: bool, inactive: bool) {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        slot.refs += 1;
        self.update_counters(id, true, |c| {
            *c.count_of(template, inactive) += 1;
            if c.u_threshold != 0 && c.active + c.inact >= c.u_threshold {
                c.overloaded = true;
            }
        });
    }

    /// `ip_vs_unbind_dest`: uncount and clear OVERLOAD per the lower threshold.
    fn unbind(&mut self, id: DestId, template: bool, inactive: bool) {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        slot.refs = slot.refs.saturating_sub(1);
        let refs = slot.refs;
        self.update_counters(id, false, |c| {
            let n = c.count_of(template, inactive);
            *n = n.saturating_sub(1);
            if overload_cleared(c.active + c.inact, c.u_threshold, c.l_threshold) {
                c.overloaded = false;
            }
        });
        if refs == 0 {
            let s = &self.slots[id as usize];
            self.slot_index.remove(&(s.svc, s.addr, s.port, s.fwd));
            self.masq_slots -= usize::from(s.fwd == FwdMethod::Masq);
            self.free_slots.push(id);
        }
    }

    fn move_activity(&mut self, id: DestId, became_active: bool) {
        self.update_counters(id, false, |c| {
            if became_active {
                c.active += 1;
                c.inact = c.inact.saturating_sub(1);
            } else {
                c.active = c.active.saturating_sub(1);
                c.inact += 1;
            }
        });
    }

    fn drop_entry(&mut self, x: &Expired) {
        let c = &x.conn;
        self.unbind(c.dest, c.template, c.flags & flags::INACTIVE != 0);
    }

    /// Whether a binding's destination is in its service (`IP_VS_DEST_F_AVAILABLE`), and its weight.
    fn available(&self, id: DestId) -> Option<i32> {
        let w = self.slots.get(id as usize)?.weight;
        debug_assert_eq!(w, self.lookup_weight(id), "stale destination weight");
        w
    }

    /// A connection with its destination resolved.
    pub fn conn_info(&self, id: ConnId) -> Option<ConnInfo> {
        let conn = self.conns.get(id)?;
        let slot = self
            .slots
            .get(conn.dest as usize)
            .filter(|_| conn.dest != NO_DEST);
        Some(ConnInfo {
            conn,
            service: slot.map(|s| s.svc),
            dest: slot.map(|s| SockAddr(s.addr, s.port)),
            fwd: slot.map(|s| s.fwd),
        })
    }

    /// Remember the state a sync decision was made in (`cp->old_state`).
    pub fn mark_synced_state(&mut self, id: ConnId) {
        self.conns.mark_synced_state(id);
    }

    /// Every entry, sorted, with destinations resolved (`ipvsadm -L -c`).
    pub fn conn_infos(&self) -> Vec<ConnInfo> {
        self.conns
            .entries()
            .iter()
            .filter_map(|c| self.conn_info(c.id))
            .collect()
    }

    /// Expire what is due; run the rate estimators due (before the packet that brought
    /// `now` is counted).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.estimators.run_until(&self.services, now);
        let mut out = std::mem::take(&mut self.expired);
        out.clear();
        self.conns.handle_timeout(now, &mut out);
        for x in &out {
            self.drop_entry(x);
        }
        self.expired = out;
    }

    /// Entries that left the table in the last [`Ipvs::handle_timeout`] (or packet).
    pub fn last_expired(&self) -> &[Expired] {
        &self.expired
    }

    /// The next connection deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conns.poll_timeout()
    }

    /// Install or update a connection learnt from a sync master (`ip_vs_proc_conn`).
    pub fn install_synced(&mut self, now: Instant, s: &SyncedConn) -> Result<ConnId, ConnError> {
        let template = s.template;
        let existing = if template {
            self.conns.lookup_template(&s.key)
        } else {
            self.conns.lookup(&s.key)
        };
        let inactive = s.inactive;
        if let Some(id) = existing {
            let Some(c) = self.conns.get(id) else {
                return Err(ConnError::Exists);
            };
            let was_inactive = c.flags & flags::INACTIVE != 0;
            if !template && was_inactive != inactive && c.dest != NO_DEST {
                self.move_activity(c.dest, !inactive);
            }
            let (set, clear) = if inactive {
                (flags::INACTIVE, 0)
            } else {
                (0, flags::INACTIVE)
            };
            self.conns.update_synced(
                id,
                now,
                s.state,
                set | flags::SYNCED,
                clear,
                self.synced_timeout(s),
            );
            return Ok(id);
        }
        // ip_vs_find_dest: the service by fwmark or address:port, then the destination in it.
        let skey = if s.fwmark != 0
            && self.services.contains_key(&ServiceKey::Fwmark {
                mark: s.fwmark,
                ipv6: s.key.vaddr.is_ipv6(),
            }) {
            Some(ServiceKey::Fwmark {
                mark: s.fwmark,
                ipv6: s.key.vaddr.is_ipv6(),
            })
        } else {
            protocol_from_number(s.key.proto).and_then(|proto| {
                let k = ServiceKey::Inet {
                    proto,
                    addr: s.key.vaddr,
                    port: s.key.vport,
                };
                self.services.contains_key(&k).then_some(k)
            })
        };
        let found = skey.and_then(|k| {
            self.services
                .get(&k)
                .and_then(|svc| svc.dest(s.daddr, s.dport))
                .map(|d| (k, d.fwd))
        });
        let (slot, fwd) = match found {
            Some((k, fwd)) => (self.slot_for(k, s.daddr, s.dport, fwd), Some(fwd)),
            None => (NO_DEST, None),
        };
        let mut fl = flags::SYNCED;
        if inactive || template {
            fl |= if template { 0 } else { flags::INACTIVE };
        }
        if fwd.is_some_and(|f| f != FwdMethod::Masq) {
            fl |= flags::NOOUTPUT;
        }
        let id = self.conns.insert(
            now,
            NewConn {
                key: s.key,
                template,
                dest: slot,
                flags: fl,
                state: s.state,
                timeout: self.synced_timeout(s),
                control: None,
            },
        )?;
        if slot != NO_DEST {
            self.bind(slot, template, inactive);
        }
        Ok(id)
    }

    fn synced_timeout(&self, s: &SyncedConn) -> u32 {
        if s.timeout != 0 {
            s.timeout
        } else if !s.template {
            self.timeouts.for_state(s.key.proto, s.state)
        } else {
            180
        }
    }
}

/// One connection as the sync protocol carries it, ready to install.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SyncedConn {
    /// Lookup key.
    pub key: ConnKey,
    /// Template entry.
    pub template: bool,
    /// Counted as inactive.
    pub inactive: bool,
    /// Protocol state.
    pub state: u8,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port.
    pub dport: u16,
    /// Firewall mark (0 = none).
    pub fwmark: u32,
    /// Timeout in seconds (0 = the state's default).
    pub timeout: u32,
}

/// The protocol with IP number `n`.
fn protocol_from_number(n: u8) -> Option<Protocol> {
    match n {
        6 => Some(Protocol::Tcp),
        17 => Some(Protocol::Udp),
        132 => Some(Protocol::Sctp),
        _ => None,
    }
}
