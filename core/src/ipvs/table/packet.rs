//! The per-packet side (`ip_vs_core.c`): `ip_vs_in` / `ip_vs_out`, scheduling a new
//! connection and persistence templates.

use std::net::IpAddr;

use super::{mask_addr, DropReason, Forward, Ipvs, PacketInfo, Verdict};
use crate::ipvs::conn::{
    flags, Conn, ConnError, ConnId, ConnKey, DestId, Direction, NewConn, SctpEvent, SctpState,
    TcpState, NO_DEST,
};
use crate::ipvs::service::SchedPacket;
use crate::ipvs::{FwdMethod, Protocol, ServiceKey, SockAddr};
use crate::time::Instant;
use crate::wire::sctp::chunk;

impl Ipvs {
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
                // sctp_conn_schedule: an INIT (any chunk but an ABORT when sloppy) makes one.
                if pkt.proto == Protocol::Sctp
                    && (pkt.sctp.first == chunk::ABORT
                        || !(pkt.sctp.first == chunk::INIT || self.opts.sloppy_sctp))
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
        // ip_vs_in_stats, before the state transition as in ip_vs_in_hook.
        let dest_id = self.conns.dest(id).unwrap_or(NO_DEST);
        self.count_traffic(dest_id, |s| s.count_in(pkt.len));
        self.transition(id, now, Direction::Input, pkt);
        let in_pkts = self.conns.count_in_packet(id);
        let slot = self
            .slots
            .get(dest_id as usize)
            .filter(|_| dest_id != NO_DEST);
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

    /// `conn_reuse_mode && is_new_conn`: a TCP SYN or an SCTP INIT (the kernel keeps no
    /// conntrack here).
    fn is_new_conn_on_old(&self, pkt: &PacketInfo) -> bool {
        self.opts.conn_reuse_mode != 0
            && match pkt.proto {
                Protocol::Tcp => pkt.tcp.syn,
                Protocol::Sctp => pkt.sctp.first == chunk::INIT,
                Protocol::Udp => false,
            }
    }

    /// `is_new_conn_expected`: TCP in TIME_WAIT or CLOSE (FIN_WAIT without output with
    /// bit 2), SCTP in CLOSED.
    fn new_conn_expected(&self, c: &Conn) -> bool {
        if c.control.is_some() {
            return false;
        }
        if c.key.proto == 132 {
            return c.state == SctpState::Closed as u8;
        }
        if c.key.proto != 6 {
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
        // No NAT destination, no NAT reply (the kernel's ip_vs_out finds no connection
        // either): skip the expiry and lookup every other packet would pay for.
        if self.masq_slots == 0 {
            return Verdict::Pass;
        }
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
        // handle_response: ip_vs_out_stats, then the state transition.
        self.count_traffic(c.dest, |s| s.count_out(pkt.len));
        self.transition(c.id, now, Direction::Output, pkt);
        Verdict::Reply {
            conn: c.id,
            vaddr: SockAddr(c.key.vaddr, c.key.vport),
        }
    }

    /// The protocol's `state_transition` for `pkt` on connection `id`.
    fn transition(&mut self, id: ConnId, now: Instant, dir: Direction, pkt: &PacketInfo) {
        let moved = match pkt.proto {
            Protocol::Tcp => self
                .conns
                .tcp_segment(id, now, dir, pkt.tcp, self.opts.secure_tcp, &self.timeouts)
                .and_then(|r| r.2),
            Protocol::Sctp => {
                let event = SctpEvent::of_chunk(pkt.sctp.state);
                self.conns
                    .sctp_chunk(id, now, dir, event, &self.timeouts)
                    .and_then(|r| r.2)
            }
            Protocol::Udp => {
                self.conns.set_timeout(id, now, self.timeouts.udp);
                None
            }
        };
        if let Some(active) = moved {
            if let Some(dest) = self.conns.dest(id) {
                self.move_activity(dest, active);
            }
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
            let id = self.new_conn(now, slot, d.fwd, conn_key, None)?;
            self.count_conn(slot, skey);
            return Ok(id);
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
        self.count_conn(cslot, skey);
        Ok(id)
    }

    /// `ip_vs_conn_stats`: a connection scheduled by service `skey` onto binding `slot`
    /// counts on the destination and on `skey` (not on the destination's own service).
    fn count_conn(&mut self, slot: DestId, skey: ServiceKey) {
        let Some(s) = self.slots.get(slot as usize).filter(|_| slot != NO_DEST) else {
            return;
        };
        let (svc, addr, port) = (s.svc, s.addr, s.port);
        if let Some(d) = self
            .services
            .get_mut(&svc)
            .and_then(|v| v.dest_mut(addr, port))
        {
            d.stats.conns += 1;
        }
        if let Some(v) = self.services.get_mut(&skey) {
            v.stats_mut().conns += 1;
        }
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

    /// A packet like `pkt` is coming: start loading what its connection lookup reads (see
    /// [`ConnTable::prefetch`]).
    pub fn prefetch(&self, pkt: &PacketInfo) {
        self.conns.prefetch(&pkt.conn_key());
    }
}

fn fwmark_addr(mark: u32, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(mark.into()),
        IpAddr::V6(_) => IpAddr::V6((u128::from(mark) << 96).into()),
    }
}

#[derive(Copy, Clone, Debug)]
struct Picked {
    addr: IpAddr,
    port: u16,
    fwd: FwdMethod,
}
