//! The IPVS object: virtual services plus the connection table, driven like
//! the kernel's `ip_vs_in` path (Linux 6.1 `ip_vs_core.c`, `ip_vs_ctl.c`).
//!
//! Destinations are referred to from connections by a [`DestId`] naming
//! (service, address, port, method). A deleted destination keeps its
//! counters while connections still point at it and gets them back when it
//! is added again, as the kernel's destination trash does.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::conn::{
    flags, Conn, ConnError, ConnId, ConnKey, ConnTable, DestId, Direction, Expired, NewConn,
    TcpFlags, TcpState, Timeouts, NO_DEST,
};
use super::service::{Dest, DestSpec, IpvsError, SchedPacket, Service, ServiceSpec};
use super::{FwdMethod, IpvsChange, Protocol, ServiceKey, SockAddr};
use crate::time::Instant;

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
    /// `conn_reuse_mode` (default 1): a SYN on an uncontrolled connection in
    /// TIME_WAIT or CLOSE (bit 2: also FIN_WAIT without output) is scheduled anew.
    pub conn_reuse_mode: u8,
}

impl Default for IpvsOptions {
    fn default() -> Self {
        IpvsOptions {
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            secure_tcp: false,
            sloppy_tcp: false,
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
    /// Netfilter mark (0 = none).
    pub fwmark: u32,
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

/// `ip_vs_unbind_dest`'s rule: below the lower threshold (or 3/4 of the
/// upper one when there is no lower one) the destination is no longer overloaded.
fn overload_cleared(total: u32, u: u32, l: u32) -> bool {
    if l != 0 {
        total < l
    } else if u != 0 {
        u64::from(total) * 4 < u64::from(u) * 3
    } else {
        true
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
    expired: Vec<Expired>,
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

fn fwmark_addr(mark: u32, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(mark.into()),
        IpAddr::V6(_) => IpAddr::V6((u128::from(mark) << 96).into()),
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
            expired: Vec::new(),
        }
    }

    /// The sysctls in force.
    pub fn options(&self) -> &IpvsOptions {
        &self.opts
    }

    /// Change the sysctls.
    pub fn set_options(&mut self, opts: IpvsOptions) {
        self.opts = opts;
    }

    /// `ipvsadm --set tcp tcpfin udp` (0 keeps a value).
    pub fn set_timeouts(&mut self, tcp: u32, tcpfin: u32, udp: u32) {
        self.timeouts.set(tcp, tcpfin, udp);
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

    /// Apply an `ipvsadm` verb.
    pub fn apply(&mut self, change: &IpvsChange) -> Result<(), IpvsError> {
        match change {
            IpvsChange::AddService(s) => self.add_service(s.clone()),
            IpvsChange::EditService(s) => self.edit_service(s.clone()),
            IpvsChange::DelService(k) => self.del_service(k),
            IpvsChange::AddDest(k, d) => self.add_dest(k, d),
            IpvsChange::EditDest(k, d) => self.edit_dest(k, d),
            IpvsChange::DelDest(k, a) => self.del_dest(k, a.0, a.1),
        }
    }

    /// `ipvsadm -A`.
    pub fn add_service(&mut self, spec: ServiceSpec) -> Result<(), IpvsError> {
        if self.services.contains_key(&spec.key) {
            return Err(IpvsError::ServiceExists);
        }
        let key = spec.key;
        let svc = Service::new(spec)?;
        self.services.insert(key, svc);
        self.refresh_weights();
        Ok(())
    }

    /// `ipvsadm -E`. The service is rebuilt with the new settings: its
    /// destinations and counters are kept, the scheduler starts afresh.
    pub fn edit_service(&mut self, spec: ServiceSpec) -> Result<(), IpvsError> {
        let old = self
            .services
            .get(&spec.key)
            .ok_or(IpvsError::NoSuchService)?;
        let mut svc = Service::new(spec.clone())?;
        let dests: Vec<Dest> = old.dests().to_vec();
        for d in dests.iter().rev() {
            svc.add_dest(&DestSpec {
                addr: d.addr,
                port: d.port,
                fwd: d.fwd,
                weight: d.weight,
                u_threshold: d.u_threshold,
                l_threshold: d.l_threshold,
            })?;
            if let Some(n) = svc.dest_mut(d.addr, d.port) {
                n.activeconns = d.activeconns;
                n.inactconns = d.inactconns;
                n.persistconns = d.persistconns;
                n.overloaded = d.overloaded;
            }
        }
        self.services.insert(spec.key, svc);
        self.refresh_weights();
        Ok(())
    }

    /// `ipvsadm -D`. Connections stay until they expire; their destinations are kept aside.
    pub fn del_service(&mut self, key: &ServiceKey) -> Result<(), IpvsError> {
        let svc = self.services.remove(key).ok_or(IpvsError::NoSuchService)?;
        for d in svc.dests() {
            self.save_counters(*key, d);
        }
        self.refresh_weights();
        Ok(())
    }

    fn save_counters(&mut self, key: ServiceKey, d: &Dest) {
        let c = Counters::of(d);
        for s in self.slots.iter_mut() {
            if s.refs > 0 && s.svc == key && s.addr == d.addr && s.port == d.port {
                s.saved = Some(c);
            }
        }
    }

    /// `ipvsadm -a`.
    pub fn add_dest(&mut self, key: &ServiceKey, spec: &DestSpec) -> Result<(), IpvsError> {
        if spec.weight < 0 {
            return Err(IpvsError::BadWeight(spec.weight));
        }
        let svc = self.services.get_mut(key).ok_or(IpvsError::NoSuchService)?;
        svc.add_dest(spec)?;
        // A destination coming back from the trash brings its counters.
        let mut restored = None;
        for s in self.slots.iter_mut() {
            if s.svc == *key && s.addr == spec.addr && s.port == spec.port {
                if let Some(c) = s.saved.take() {
                    restored = Some(c);
                }
            }
        }
        if let (Some(c), Some(d)) = (restored, svc.dest_mut(spec.addr, spec.port)) {
            d.activeconns = c.active;
            d.inactconns = c.inact;
            d.persistconns = c.persist;
            // __ip_vs_update_dest: OVERLOAD survives unless the upper threshold went away or up.
            d.overloaded =
                c.overloaded && spec.u_threshold != 0 && spec.u_threshold <= c.u_threshold;
        }
        self.refresh_weights();
        Ok(())
    }

    /// `ipvsadm -e`.
    pub fn edit_dest(&mut self, key: &ServiceKey, spec: &DestSpec) -> Result<(), IpvsError> {
        if spec.weight < 0 {
            return Err(IpvsError::BadWeight(spec.weight));
        }
        let svc = self.services.get_mut(key).ok_or(IpvsError::NoSuchService)?;
        let old_u = svc
            .dest(spec.addr, spec.port)
            .ok_or(IpvsError::NoSuchDest)?
            .u_threshold;
        svc.edit_dest(spec)?;
        // __ip_vs_update_dest: a removed or raised upper threshold clears OVERLOAD.
        if spec.u_threshold == 0 || spec.u_threshold > old_u {
            if let Some(d) = svc.dest_mut(spec.addr, spec.port) {
                d.overloaded = false;
            }
        }
        self.refresh_weights();
        Ok(())
    }

    /// `ipvsadm -d`.
    pub fn del_dest(&mut self, key: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), IpvsError> {
        let svc = self.services.get_mut(key).ok_or(IpvsError::NoSuchService)?;
        let d = svc.del_dest(addr, port)?;
        self.save_counters(*key, &d);
        self.refresh_weights();
        Ok(())
    }

    /// `ipvsadm -C`: every service goes; connections expire on their own.
    pub fn clear(&mut self) {
        let keys: Vec<ServiceKey> = self.services.keys().copied().collect();
        for k in keys {
            let _ = self.del_service(&k);
        }
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

    fn refresh_weights(&mut self) {
        for id in 0..self.slots.len() {
            self.slots[id].weight = self.lookup_weight(id as DestId);
        }
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

    /// `ip_vs_service_find`: fwmark first, then address:port, then a port-zero service.
    pub fn find_service(&self, pkt: &PacketInfo) -> Option<ServiceKey> {
        if pkt.fwmark != 0 {
            let k = ServiceKey::Fwmark {
                mark: pkt.fwmark,
                ipv6: pkt.dst.is_ipv6(),
            };
            if self.services.contains_key(&k) {
                return Some(k);
            }
        }
        let k = ServiceKey::Inet {
            proto: pkt.proto,
            addr: pkt.dst,
            port: pkt.dport,
        };
        if self.services.contains_key(&k) {
            return Some(k);
        }
        let k0 = ServiceKey::Inet {
            proto: pkt.proto,
            addr: pkt.dst,
            port: 0,
        };
        self.services.contains_key(&k0).then_some(k0)
    }

    /// A packet from a client toward a virtual service (`ip_vs_in`).
    pub fn process(
        &mut self,
        now: Instant,
        pkt: &PacketInfo,
        rng: &mut dyn rand_core::RngCore,
    ) -> Verdict {
        self.handle_timeout(now);
        let key = pkt.conn_key();
        let mut found = self.conns.lookup(&key);
        if let (Some(id), true) = (found, self.is_new_conn_on_old(pkt)) {
            if let Some(c) = self.conns.get(id) {
                let weight0 = c.dest != NO_DEST && self.available(c.dest) == Some(0);
                if (self.opts.expire_nodest_conn && weight0) || self.new_conn_expected(&c) {
                    if let Some(x) = self.conns.remove(id) {
                        self.drop_entry(&x);
                        found = None;
                    }
                }
            }
        }
        if let Some(id) = found {
            let dest = self.conns.dest(id).unwrap_or(NO_DEST);
            if dest != NO_DEST && self.available(dest).is_none() {
                if !self.opts.expire_nodest_conn {
                    return Verdict::Drop(DropReason::DestGone);
                }
                if let Some(x) = self.conns.remove(id) {
                    self.drop_entry(&x);
                }
                found = None;
            }
        }
        let (id, new) = match found {
            Some(id) => (id, false),
            None => {
                if pkt.proto == Protocol::Tcp
                    && (pkt.tcp.rst || !(pkt.tcp.syn || self.opts.sloppy_tcp))
                {
                    return Verdict::Pass;
                }
                let Some(skey) = self.find_service(pkt) else {
                    return Verdict::Pass;
                };
                match self.schedule(now, skey, pkt, rng) {
                    Ok(id) => (id, true),
                    Err(v) => return v,
                }
            }
        };
        self.transition(id, now, Direction::Input, pkt.proto, pkt.tcp);
        let in_pkts = self.conns.count_in_packet(id);
        let slot = self
            .conns
            .dest(id)
            .filter(|&d| d != NO_DEST)
            .and_then(|d| self.slots.get(d as usize));
        match slot.map(|s| (SockAddr(s.addr, s.port), s.fwd)) {
            Some((mut dest, fwd)) => {
                // A destination on port 0 takes the packet's own port (port-zero services).
                if dest.1 == 0 {
                    dest.1 = pkt.dport;
                }
                Verdict::Forward(Forward {
                    conn: id,
                    new,
                    dest,
                    fwd,
                    in_pkts,
                })
            }
            _ => Verdict::Drop(DropReason::NoDest),
        }
    }

    /// `conn_reuse_mode && is_new_conn`: a TCP SYN (the kernel keeps no conntrack here).
    fn is_new_conn_on_old(&self, pkt: &PacketInfo) -> bool {
        self.opts.conn_reuse_mode != 0 && pkt.proto == Protocol::Tcp && pkt.tcp.syn
    }

    /// `is_new_conn_expected`.
    fn new_conn_expected(&self, c: &Conn) -> bool {
        if c.control.is_some() || c.key.proto != 6 {
            return false;
        }
        let st = c.state;
        st == TcpState::TimeWait as u8
            || st == TcpState::Close as u8
            || (self.opts.conn_reuse_mode & 2 != 0
                && st == TcpState::FinWait as u8
                && c.flags & flags::NOOUTPUT != 0)
    }

    /// A reply from a real server toward a client (`ip_vs_out`, NAT only).
    pub fn process_reply(&mut self, now: Instant, pkt: &PacketInfo) -> Verdict {
        self.handle_timeout(now);
        let proto = pkt.proto.number();
        let mut hit = None;
        for c in self.conns.entries_for_client(proto, pkt.dst, pkt.dport) {
            if let Some(s) = self.slots.get(c.dest as usize) {
                if c.dest != NO_DEST
                    && s.addr == pkt.src
                    && s.port == pkt.sport
                    && s.fwd == FwdMethod::Masq
                {
                    hit = Some(c);
                    break;
                }
            }
        }
        let Some(c) = hit else {
            return Verdict::Pass;
        };
        self.transition(c.id, now, Direction::Output, pkt.proto, pkt.tcp);
        Verdict::Reply {
            conn: c.id,
            vaddr: SockAddr(c.key.vaddr, c.key.vport),
        }
    }

    fn transition(
        &mut self,
        id: ConnId,
        now: Instant,
        dir: Direction,
        proto: Protocol,
        tcp: TcpFlags,
    ) {
        match proto {
            Protocol::Tcp => {
                let r =
                    self.conns
                        .tcp_segment(id, now, dir, tcp, self.opts.secure_tcp, &self.timeouts);
                if let Some((_, _, Some(active))) = r {
                    if let Some(dest) = self.conns.dest(id) {
                        self.move_activity(dest, active);
                    }
                }
            }
            Protocol::Udp => self.conns.set_timeout(id, now, self.timeouts.udp),
            Protocol::Sctp => self.conns.set_timeout(id, now, self.timeouts.other),
        }
    }

    /// `ip_vs_schedule` / `ip_vs_sched_persist`: a new connection (and template).
    fn schedule(
        &mut self,
        now: Instant,
        skey: ServiceKey,
        pkt: &PacketInfo,
        rng: &mut dyn rand_core::RngCore,
    ) -> Result<ConnId, Verdict> {
        let sp = SchedPacket {
            src: pkt.src,
            sport: pkt.sport,
            dst: pkt.dst,
            dport: pkt.dport,
        };
        let Some(svc) = self.services.get(&skey) else {
            return Err(Verdict::Pass);
        };
        let (persistence, netmask_prefix) = (svc.spec().persistence, svc.spec().netmask_prefix);
        let svc_port = match skey {
            ServiceKey::Inet { port, .. } => port,
            ServiceKey::Fwmark { .. } => 0,
        };
        let conn_key = pkt.conn_key();
        let Some(ptimeout) = persistence else {
            if matches!(skey, ServiceKey::Inet { .. }) && pkt.dport != svc_port {
                // Port zero is only supported in persistent services.
                return Err(Verdict::Drop(DropReason::NoDest));
            }
            let d = self.pick(skey, &sp, rng)?;
            let slot = self.slot_for(skey, d.addr, d.port, d.fwd);
            return self.new_conn(now, slot, d.fwd, conn_key, None);
        };

        // Persistent service: look for the client's template.
        let snet = mask_addr(pkt.src, netmask_prefix);
        let (tproto, tvaddr, tvport) = if pkt.dport == svc_port {
            // FTP control port templates drop the virtual port.
            (
                pkt.proto.number(),
                pkt.dst,
                if svc_port == 21 { 0 } else { pkt.dport },
            )
        } else if let ServiceKey::Fwmark { mark, .. } = skey {
            (0, fwmark_addr(mark, pkt.dst), 0)
        } else {
            (pkt.proto.number(), pkt.dst, 0)
        };
        let tkey = ConnKey {
            proto: tproto,
            caddr: snet,
            cport: 0,
            vaddr: tvaddr,
            vport: tvport,
        };
        let mut tmpl = self.conns.lookup_template(&tkey);
        if let Some(t) = tmpl {
            let tdest = self.conns.dest(t).unwrap_or(NO_DEST);
            let ok = match self.available(tdest) {
                None => false,
                Some(w) => !(self.opts.expire_quiescent_template && w == 0),
            };
            if !ok {
                self.conns.invalidate_template(t);
                tmpl = None;
            }
        }
        let tmpl = match tmpl {
            Some(t) => t,
            None => {
                let d = self.pick(skey, &sp, rng)?;
                let slot = self.slot_for(skey, d.addr, d.port, d.fwd);
                let t = self
                    .conns
                    .insert(
                        now,
                        NewConn {
                            key: tkey,
                            template: true,
                            dest: slot,
                            flags: 0,
                            state: 0,
                            timeout: ptimeout,
                            control: None,
                        },
                    )
                    .map_err(|_| Verdict::Drop(DropReason::TableFull))?;
                self.bind(slot, true, false);
                t
            }
        };
        let Some((tslot, slot)) = self
            .conns
            .dest(tmpl)
            .filter(|&d| d != NO_DEST)
            .and_then(|d| Some((d, self.slots.get(d as usize)?)))
        else {
            return Err(Verdict::Drop(DropReason::NoDest));
        };
        let (svc, addr, port, fwd) = (slot.svc, slot.addr, slot.port, slot.fwd);
        // The connection binds to the template's destination: the same binding when the
        // template was made for this service, as it is unless services were rebuilt.
        let cslot = if svc == skey {
            tslot
        } else {
            self.slot_for(skey, addr, port, fwd)
        };
        let id = self.new_conn(now, cslot, fwd, conn_key, Some(tmpl))?;
        // ip_vs_conn_put(ct): using the template restarts its timer.
        self.conns.touch(tmpl, now);
        Ok(id)
    }

    fn pick(
        &mut self,
        skey: ServiceKey,
        sp: &SchedPacket,
        rng: &mut dyn rand_core::RngCore,
    ) -> Result<Picked, Verdict> {
        let svc = self.services.get_mut(&skey).ok_or(Verdict::Pass)?;
        let idx = svc
            .schedule(sp, rng)
            .ok_or(Verdict::Drop(DropReason::NoDest))?;
        let d = svc
            .dests()
            .get(idx)
            .ok_or(Verdict::Drop(DropReason::NoDest))?;
        Ok(Picked {
            addr: d.addr,
            port: d.port,
            fwd: d.fwd,
        })
    }

    /// A connection bound to destination binding `slot` (forwarding method `fwd`).
    fn new_conn(
        &mut self,
        now: Instant,
        slot: DestId,
        fwd: FwdMethod,
        key: ConnKey,
        control: Option<ConnId>,
    ) -> Result<ConnId, Verdict> {
        // The destination's conn_flags: always INACTIVE, NOOUTPUT unless NAT.
        let mut fl = flags::INACTIVE;
        if fwd != FwdMethod::Masq {
            fl |= flags::NOOUTPUT;
        }
        let state = 0;
        let id = self
            .conns
            .insert(
                now,
                NewConn {
                    key,
                    template: false,
                    dest: slot,
                    flags: fl,
                    state,
                    timeout: 3,
                    control,
                },
            )
            .map_err(|e| match e {
                ConnError::Exists | ConnError::Full | ConnError::MixedFamily => {
                    Verdict::Drop(DropReason::TableFull)
                }
            })?;
        self.bind(slot, false, true);
        Ok(id)
    }

    /// Expire what is due.
    pub fn handle_timeout(&mut self, now: Instant) {
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

    /// A packet like `pkt` is coming: start loading what its connection lookup reads (see
    /// [`ConnTable::prefetch`]).
    pub fn prefetch(&self, pkt: &PacketInfo) {
        self.conns.prefetch(&pkt.conn_key());
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

#[derive(Copy, Clone, Debug)]
struct Picked {
    addr: IpAddr,
    port: u16,
    fwd: FwdMethod,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::sched::SchedFlags;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const VIP: &str = "10.0.0.1";

    fn skey() -> ServiceKey {
        ServiceKey::Inet {
            proto: Protocol::Tcp,
            addr: VIP.parse().unwrap(),
            port: 80,
        }
    }

    fn spec(persistence: Option<u32>, prefix: u8) -> ServiceSpec {
        ServiceSpec {
            key: skey(),
            scheduler: "rr".into(),
            flags: SchedFlags::default(),
            persistence,
            netmask_prefix: prefix,
            one_packet: false,
        }
    }

    fn dest(last: u8, u: u32, l: u32) -> DestSpec {
        DestSpec {
            addr: format!("10.0.0.{last}").parse().unwrap(),
            port: 80,
            fwd: FwdMethod::Route,
            weight: 1,
            u_threshold: u,
            l_threshold: l,
        }
    }

    fn pkt(client: &str, sport: u16, tcp: TcpFlags) -> PacketInfo {
        PacketInfo {
            proto: Protocol::Tcp,
            src: client.parse().unwrap(),
            sport,
            dst: VIP.parse().unwrap(),
            dport: 80,
            tcp,
            fwmark: 0,
        }
    }

    fn counts(ipvs: &Ipvs, last: u8) -> (u32, u32, u32, bool) {
        let d = ipvs
            .service(&skey())
            .unwrap()
            .dest(format!("10.0.0.{last}").parse().unwrap(), 80)
            .unwrap();
        (d.activeconns, d.inactconns, d.persistconns, d.overloaded)
    }

    fn dest_of(v: Verdict) -> Option<IpAddr> {
        match v {
            Verdict::Forward(f) => Some(f.dest.0),
            _ => None,
        }
    }

    /// An `rr` service (`persistence`, netmask `prefix`) with real servers 10.0.0.11 and .12.
    fn two_servers(opts: IpvsOptions, persistence: Option<u32>, prefix: u8) -> Ipvs {
        let mut ipvs = Ipvs::new(opts, 0);
        ipvs.add_service(spec(persistence, prefix)).unwrap();
        ipvs.add_dest(&skey(), &dest(11, 0, 0)).unwrap();
        ipvs.add_dest(&skey(), &dest(12, 0, 0)).unwrap();
        ipvs
    }

    /// The real server a SYN from `client:sport` at time zero is forwarded to.
    fn syn_dest(ipvs: &mut Ipvs, client: &str, sport: u16, rng: &mut ChaCha8Rng) -> Option<IpAddr> {
        dest_of(ipvs.process(Instant::ZERO, &pkt(client, sport, TcpFlags::SYN), rng))
    }

    #[test]
    fn syn_is_inactive_until_established_then_dr_close_waits_fin_timeout() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut ipvs = Ipvs::default();
        ipvs.add_service(spec(None, 32)).unwrap();
        ipvs.add_dest(&skey(), &dest(11, 0, 0)).unwrap();
        let t0 = Instant::ZERO;
        let v = ipvs.process(t0, &pkt("192.0.2.7", 1000, TcpFlags::SYN), &mut rng);
        assert!(matches!(v, Verdict::Forward(Forward { new: true, .. })));
        // New connections start INACTIVE (the destination's conn_flags), SYN_RECV keeps them so.
        assert_eq!(counts(&ipvs, 11), (0, 1, 0, false));
        ipvs.process(t0, &pkt("192.0.2.7", 1000, TcpFlags::ACK), &mut rng);
        assert_eq!(counts(&ipvs, 11), (1, 0, 0, false));
        // DR: input-only table, the client's FIN goes to FIN_WAIT (120 s).
        ipvs.process(t0, &pkt("192.0.2.7", 1000, TcpFlags::FIN_ACK), &mut rng);
        assert_eq!(counts(&ipvs, 11), (0, 1, 0, false));
        let c = ipvs.conn_infos()[0].conn;
        assert_eq!(c.state, TcpState::FinWait as u8);
        // The wakeup may come early (the SYN_RECV timer was pushed back lazily), never late.
        let mut wake = ipvs.poll_timeout().expect("armed");
        while wake < Instant::from_secs(120) {
            ipvs.handle_timeout(wake);
            assert_eq!(counts(&ipvs, 11), (0, 1, 0, false));
            wake = ipvs.poll_timeout().expect("armed");
        }
        assert_eq!(wake, Instant::from_secs(120));
        ipvs.handle_timeout(Instant::from_secs(119));
        assert_eq!(counts(&ipvs, 11), (0, 1, 0, false));
        ipvs.handle_timeout(Instant::from_secs(120));
        assert_eq!(counts(&ipvs, 11), (0, 0, 0, false));
        assert!(ipvs.conns().is_empty());
    }

    #[test]
    fn syn_reusing_a_closed_port_is_scheduled_anew() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut ipvs = Ipvs::default();
        ipvs.add_service(spec(None, 32)).unwrap();
        let mut d = dest(11, 0, 0);
        d.fwd = FwdMethod::Masq;
        ipvs.add_dest(&skey(), &d).unwrap();
        ipvs.add_dest(&skey(), &{
            let mut d = dest(12, 0, 0);
            d.fwd = FwdMethod::Masq;
            d
        })
        .unwrap();
        let p = |f| pkt("192.0.2.7", 1, f);
        let a = dest_of(ipvs.process(Instant::ZERO, &p(TcpFlags::SYN), &mut rng)).unwrap();
        // (A RST in SYN_RECV keeps SYN_RECV on input; from ESTABLISHED it closes.)
        ipvs.process(Instant::ZERO, &p(TcpFlags::ACK), &mut rng);
        ipvs.process(Instant::ZERO, &p(TcpFlags::RST), &mut rng);
        assert_eq!(ipvs.conn_infos()[0].conn.state, TcpState::Close as u8);
        // CLOSE + SYN with conn_reuse_mode 1: a new connection, rr moves on.
        let b = ipvs.process(Instant::ZERO, &p(TcpFlags::SYN), &mut rng);
        assert!(matches!(b, Verdict::Forward(Forward { new: true, .. })));
        assert_ne!(Some(a), dest_of(b));
        assert_eq!(ipvs.conns().len(), 1);
        // With the mode off the old entry is reused.
        ipvs.set_options(IpvsOptions {
            conn_reuse_mode: 0,
            ..IpvsOptions::default()
        });
        ipvs.process(Instant::ZERO, &p(TcpFlags::ACK), &mut rng);
        ipvs.process(Instant::ZERO, &p(TcpFlags::RST), &mut rng);
        let c = ipvs.process(Instant::ZERO, &p(TcpFlags::SYN), &mut rng);
        assert!(matches!(c, Verdict::Forward(Forward { new: false, .. })));
    }

    #[test]
    fn non_syn_without_connection_passes_unscheduled() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut ipvs = Ipvs::default();
        ipvs.add_service(spec(None, 32)).unwrap();
        ipvs.add_dest(&skey(), &dest(11, 0, 0)).unwrap();
        assert_eq!(
            ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 1, TcpFlags::ACK), &mut rng),
            Verdict::Pass
        );
        assert!(ipvs.conns().is_empty());
    }

    #[test]
    fn upper_threshold_sets_overload_and_three_quarters_clears_it() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut ipvs = Ipvs::default();
        ipvs.add_service(spec(None, 32)).unwrap();
        ipvs.add_dest(&skey(), &dest(11, 4, 0)).unwrap();
        for p in 0..4 {
            let v = ipvs.process(Instant::ZERO, &pkt("192.0.2.7", p, TcpFlags::SYN), &mut rng);
            assert!(dest_of(v).is_some());
        }
        assert_eq!(counts(&ipvs, 11), (0, 4, 0, true));
        // Overloaded and alone: no destination.
        let v = ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 9, TcpFlags::SYN), &mut rng);
        assert_eq!(v, Verdict::Drop(DropReason::NoDest));
        // SYN_RECV times out after 60 s... in the order of creation; after
        // one goes total = 3, 3*4 < 4*3 is false: still overloaded; after two it clears.
        let ids: Vec<ConnId> = ipvs.conns().entries().iter().map(|c| c.id).collect();
        let x = ipvs.conns.remove(ids[0]).unwrap();
        ipvs.drop_entry(&x);
        assert_eq!(counts(&ipvs, 11), (0, 3, 0, true));
        let x = ipvs.conns.remove(ids[1]).unwrap();
        ipvs.drop_entry(&x);
        assert_eq!(counts(&ipvs, 11), (0, 2, 0, false));
    }

    #[test]
    fn lower_threshold_clears_overload_below_it() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut ipvs = Ipvs::default();
        ipvs.add_service(spec(None, 32)).unwrap();
        ipvs.add_dest(&skey(), &dest(11, 3, 1)).unwrap();
        for p in 0..3 {
            ipvs.process(Instant::ZERO, &pkt("192.0.2.7", p, TcpFlags::SYN), &mut rng);
        }
        assert!(counts(&ipvs, 11).3);
        let ids: Vec<ConnId> = ipvs.conns().entries().iter().map(|c| c.id).collect();
        for (n, id) in ids.iter().enumerate() {
            let x = ipvs.conns.remove(*id).unwrap();
            ipvs.drop_entry(&x);
            // Clears only when total < l_threshold = 1.
            assert_eq!(counts(&ipvs, 11).3, n < 2, "after {} removed", n + 1);
        }
    }

    #[test]
    fn persistence_template_pins_a_masked_client_and_expires() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut ipvs = two_servers(IpvsOptions::default(), Some(300), 24);
        let first = syn_dest(&mut ipvs, "192.0.2.7", 1, &mut rng);
        // Same /24, another client: same destination although rr would move on.
        let second = syn_dest(&mut ipvs, "192.0.2.99", 2, &mut rng);
        assert_eq!(first, second);
        let other = syn_dest(&mut ipvs, "198.51.100.1", 3, &mut rng);
        assert_ne!(first, other);
        let last = match first.unwrap() {
            IpAddr::V4(a) => a.octets()[3],
            IpAddr::V6(_) => unreachable!(),
        };
        assert_eq!(counts(&ipvs, last).2, 1, "one template");
        // Connections (SYN_RECV, 60 s) go first; the template lives its 300 s.
        ipvs.handle_timeout(Instant::from_secs(299));
        assert_eq!(counts(&ipvs, last), (0, 0, 1, false));
        ipvs.handle_timeout(Instant::from_secs(300));
        assert_eq!(counts(&ipvs, last), (0, 0, 0, false));
    }

    #[test]
    fn quiescent_template_expires_only_with_the_sysctl() {
        for expire in [false, true] {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let opts = IpvsOptions {
                expire_quiescent_template: expire,
                ..IpvsOptions::default()
            };
            let mut ipvs = two_servers(opts, Some(300), 32);
            let a = syn_dest(&mut ipvs, "192.0.2.7", 1, &mut rng).unwrap();
            let IpAddr::V4(a4) = a else { unreachable!() };
            let mut d = dest(a4.octets()[3], 0, 0);
            d.weight = 0;
            ipvs.edit_dest(&skey(), &d).unwrap();
            let b = syn_dest(&mut ipvs, "192.0.2.7", 2, &mut rng).unwrap();
            assert_eq!(a == b, !expire);
        }
    }

    #[test]
    fn removed_destination_drops_or_reschedules_per_expire_nodest_conn() {
        for expire in [false, true] {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let opts = IpvsOptions {
                expire_nodest_conn: expire,
                ..IpvsOptions::default()
            };
            let mut ipvs = two_servers(opts, None, 32);
            let a = syn_dest(&mut ipvs, "192.0.2.7", 1, &mut rng).unwrap();
            ipvs.del_dest(&skey(), a, 80).unwrap();
            let v = ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 1, TcpFlags::SYN), &mut rng);
            if expire {
                let b = dest_of(v).unwrap();
                assert_ne!(a, b);
                assert_eq!(ipvs.conns().len(), 1);
            } else {
                assert_eq!(v, Verdict::Drop(DropReason::DestGone));
            }
        }
    }

    #[test]
    fn readded_destination_gets_its_counters_back() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut ipvs = Ipvs::default();
        ipvs.add_service(spec(None, 32)).unwrap();
        ipvs.add_dest(&skey(), &dest(11, 0, 0)).unwrap();
        ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 1, TcpFlags::SYN), &mut rng);
        ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 1, TcpFlags::ACK), &mut rng);
        ipvs.del_dest(&skey(), "10.0.0.11".parse().unwrap(), 80)
            .unwrap();
        ipvs.add_dest(&skey(), &dest(11, 0, 0)).unwrap();
        assert_eq!(counts(&ipvs, 11), (1, 0, 0, false));
        ipvs.handle_timeout(Instant::from_secs(900));
        assert_eq!(counts(&ipvs, 11), (0, 0, 0, false));
    }

    #[test]
    fn nat_reply_is_matched_and_moves_state() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut ipvs = Ipvs::default();
        ipvs.add_service(spec(None, 32)).unwrap();
        let mut d = dest(11, 0, 0);
        d.fwd = FwdMethod::Masq;
        ipvs.add_dest(&skey(), &d).unwrap();
        ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 5, TcpFlags::SYN), &mut rng);
        let reply = PacketInfo {
            proto: Protocol::Tcp,
            src: "10.0.0.11".parse().unwrap(),
            sport: 80,
            dst: "192.0.2.7".parse().unwrap(),
            dport: 5,
            tcp: TcpFlags::SYN_ACK,
            fwmark: 0,
        };
        let v = ipvs.process_reply(Instant::ZERO, &reply);
        assert!(matches!(
            v,
            Verdict::Reply {
                vaddr: SockAddr(_, 80),
                ..
            }
        ));
        ipvs.process(Instant::ZERO, &pkt("192.0.2.7", 5, TcpFlags::ACK), &mut rng);
        assert_eq!(counts(&ipvs, 11), (1, 0, 0, false));
        // NAT: the client's FIN leads to CLOSE_WAIT (60 s), not FIN_WAIT.
        ipvs.process(
            Instant::ZERO,
            &pkt("192.0.2.7", 5, TcpFlags::FIN_ACK),
            &mut rng,
        );
        assert_eq!(ipvs.conn_infos()[0].conn.state, TcpState::CloseWait as u8);
    }

    #[test]
    fn synced_connection_installs_and_counts() {
        let mut ipvs = Ipvs::default();
        ipvs.add_service(spec(None, 32)).unwrap();
        ipvs.add_dest(&skey(), &dest(11, 0, 0)).unwrap();
        let s = SyncedConn {
            key: ConnKey {
                proto: 6,
                caddr: "192.0.2.7".parse().unwrap(),
                cport: 7,
                vaddr: VIP.parse().unwrap(),
                vport: 80,
            },
            template: false,
            inactive: false,
            state: TcpState::Established as u8,
            daddr: "10.0.0.11".parse().unwrap(),
            dport: 80,
            fwmark: 0,
            timeout: 900,
        };
        ipvs.install_synced(Instant::ZERO, &s).unwrap();
        assert_eq!(counts(&ipvs, 11), (1, 0, 0, false));
        let s2 = SyncedConn {
            inactive: true,
            state: TcpState::FinWait as u8,
            timeout: 120,
            ..s
        };
        ipvs.install_synced(Instant::from_secs(1), &s2).unwrap();
        assert_eq!(counts(&ipvs, 11), (0, 1, 0, false));
        assert_eq!(ipvs.poll_timeout(), Some(Instant::from_secs(121)));
    }

    #[derive(Clone, Debug)]
    enum Step {
        Syn(u8, u16),
        Ack(u8, u16),
        Fin(u8, u16),
        Rst(u8, u16),
        Wait(u16),
        Weight(u8, i32),
        Del(u8),
        Add(u8),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0u8..6, 0u16..4).prop_map(|(c, p)| Step::Syn(c, p)),
            3 => (0u8..6, 0u16..4).prop_map(|(c, p)| Step::Ack(c, p)),
            2 => (0u8..6, 0u16..4).prop_map(|(c, p)| Step::Fin(c, p)),
            1 => (0u8..6, 0u16..4).prop_map(|(c, p)| Step::Rst(c, p)),
            2 => (0u16..400).prop_map(Step::Wait),
            1 => (11u8..14, 0i32..3).prop_map(|(d, w)| Step::Weight(d, w)),
            1 => (11u8..14).prop_map(Step::Del),
            1 => (11u8..14).prop_map(Step::Add),
        ]
    }

    proptest::proptest! {
        /// Destination counters always equal a recount of the connection
        /// table, whatever packets, timeouts and ipvsadm edits happen.
        #[test]
        fn counters_match_a_recount(
            persistent in proptest::bool::ANY,
            nodest in proptest::bool::ANY,
            steps in proptest::collection::vec(step(), 1..80),
        ) {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let opts = IpvsOptions { expire_nodest_conn: nodest, ..IpvsOptions::default() };
            let mut ipvs = Ipvs::new(opts, 3);
            ipvs.add_service(spec(persistent.then_some(100), 32)).unwrap();
            for d in 11..14 {
                ipvs.add_dest(&skey(), &dest(d, 3, 0)).unwrap();
            }
            let mut now = Instant::ZERO;
            for st in steps {
                let client = |c: u8| format!("192.0.2.{c}");
                match st {
                    Step::Syn(c, p) => { ipvs.process(now, &pkt(&client(c), p, TcpFlags::SYN), &mut rng); }
                    Step::Ack(c, p) => { ipvs.process(now, &pkt(&client(c), p, TcpFlags::ACK), &mut rng); }
                    Step::Fin(c, p) => { ipvs.process(now, &pkt(&client(c), p, TcpFlags::FIN_ACK), &mut rng); }
                    Step::Rst(c, p) => { ipvs.process(now, &pkt(&client(c), p, TcpFlags::RST), &mut rng); }
                    Step::Wait(s) => { now += std::time::Duration::from_secs(u64::from(s)); ipvs.handle_timeout(now); }
                    Step::Weight(d, w) => {
                        let mut sp = dest(d, 3, 0);
                        sp.weight = w;
                        let _ = ipvs.edit_dest(&skey(), &sp);
                    }
                    Step::Del(d) => { let _ = ipvs.del_dest(&skey(), format!("10.0.0.{d}").parse().unwrap(), 80); }
                    Step::Add(d) => { let _ = ipvs.add_dest(&skey(), &dest(d, 3, 0)); }
                }
                let mut want: BTreeMap<IpAddr, (u32, u32, u32)> = BTreeMap::new();
                for c in ipvs.conn_infos() {
                    let Some(SockAddr(a, _)) = c.dest else { continue };
                    let e = want.entry(a).or_default();
                    if c.conn.template {
                        e.2 += 1;
                    } else if c.conn.flags & flags::INACTIVE != 0 {
                        e.1 += 1;
                    } else {
                        e.0 += 1;
                    }
                }
                for d in ipvs.service(&skey()).unwrap().dests() {
                    let w = want.get(&d.addr).copied().unwrap_or_default();
                    proptest::prop_assert_eq!((d.activeconns, d.inactconns, d.persistconns), w, "{}", d.addr);
                    proptest::prop_assert!(!d.overloaded || d.activeconns + d.inactconns >= 2);
                }
            }
            // Everything expires in the end, and every counter returns to zero.
            ipvs.handle_timeout(now + std::time::Duration::from_secs(100_000));
            proptest::prop_assert!(ipvs.conns().is_empty());
            for d in ipvs.service(&skey()).unwrap().dests() {
                proptest::prop_assert_eq!((d.activeconns, d.inactconns, d.persistconns), (0, 0, 0));
            }
        }
    }
}
