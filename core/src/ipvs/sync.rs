//! The IPVS sync daemon protocol (version 1 messages, Linux 6.1 `ip_vs_sync.c`).
//!
//! A message is an 8-byte header (`reserved`, `syncid`, `size`, `nr_conns`,
//! `version` = 1, `spare`) followed by `nr_conns` entries, each starting on a
//! 4-byte boundary: a fixed part (36 bytes for IPv4, 72 for IPv6) and
//! type-length options (sequence data, persistence-engine data and name).
//! The MASTER side ([`SyncSender`]) decides per packet, as
//! `ip_vs_sync_conn_needed` does, which connections to send; the BACKUP side
//! ([`SyncReceiver`]) installs them in its table. Datagrams are data: the
//! driver sends them to [`SYNC_GROUP_V4`]:[`SYNC_PORT`].

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::conn::{ConnId, ConnKey, TcpState};
use super::table::{Ipvs, SyncedConn};
use super::FwdMethod;
use crate::time::Instant;
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::flow;

/// Default multicast group of the sync daemon.
pub const SYNC_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// Default UDP port of the sync daemon.
pub const SYNC_PORT: u16 = 8848;
/// `SYNC_PROTO_VER`.
pub const SYNC_PROTO_VER: u8 = 1;
/// Header length.
pub const HEADER_LEN: usize = 8;
/// Fixed part of an IPv4 entry.
pub const V4_ENTRY_LEN: usize = 36;
/// Fixed part of an IPv6 entry.
pub const V6_ENTRY_LEN: usize = 72;

/// `IP_VS_CONN_F_*` bits as they travel in sync messages.
pub mod conn_flags {
    /// Forwarding method mask (MASQ 0, LOCALNODE 1, TUNNEL 2, DROUTE 3, BYPASS 4).
    pub const FWD_MASK: u32 = 0x0007;
    /// Created by sync.
    pub const SYNC: u32 = 0x0020;
    /// Hashed (never sent).
    pub const HASHED: u32 = 0x0040;
    /// No output packets seen.
    pub const NOOUTPUT: u32 = 0x0080;
    /// Inactive connection.
    pub const INACTIVE: u32 = 0x0100;
    /// Sequence adjustments (output).
    pub const OUT_SEQ: u32 = 0x0200;
    /// Sequence adjustments (input).
    pub const IN_SEQ: u32 = 0x0400;
    /// No client port set yet.
    pub const NO_CPORT: u32 = 0x0800;
    /// Persistence template.
    pub const TEMPLATE: u32 = 0x1000;
    /// One-packet scheduling.
    pub const ONE_PACKET: u32 = 0x2000;
    /// What a backup takes from a message (`IP_VS_CONN_F_BACKUP_MASK`).
    pub const BACKUP_MASK: u32 =
        FWD_MASK | NOOUTPUT | INACTIVE | OUT_SEQ | IN_SEQ | NO_CPORT | TEMPLATE;
}

const OPT_SEQ_DATA: u8 = 1;
const OPT_PE_DATA: u8 = 2;
const OPT_PE_NAME: u8 = 3;
const SVER_SHIFT: u16 = 12;
const SVER_MASK: u16 = 0x0fff;
const STYPE_F_INET6: u8 = 1;

/// One direction's TCP sequence adjustment (`struct ip_vs_seq`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Seq {
    /// `init_seq`.
    pub init_seq: u32,
    /// `delta`.
    pub delta: i32,
    /// `previous_delta`.
    pub previous_delta: i32,
}

/// One connection entry of a sync message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SyncEntry {
    /// IP protocol.
    pub protocol: u8,
    /// `IP_VS_CONN_F_*` flags.
    pub flags: u32,
    /// Protocol state.
    pub state: u16,
    /// Client port.
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Real server port.
    pub dport: u16,
    /// Firewall mark.
    pub fwmark: u32,
    /// Timeout in seconds.
    pub timeout: u32,
    /// Client address (same family as the others).
    pub caddr: IpAddr,
    /// Virtual address.
    pub vaddr: IpAddr,
    /// Real server address.
    pub daddr: IpAddr,
    /// Sequence option (in, out).
    pub seq: Option<(Seq, Seq)>,
    /// Persistence-engine data option.
    pub pe_data: Option<Vec<u8>>,
    /// Persistence-engine name option.
    pub pe_name: Option<Vec<u8>>,
}

/// A whole sync message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SyncMessage {
    /// Sync ID of the sender.
    pub syncid: u8,
    /// The entries (at most 255).
    pub conns: Vec<SyncEntry>,
}

/// Why a message was refused (the kernel logs and drops it).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SyncError {
    /// Shorter than its header.
    #[error("sync message shorter than its 8-byte header ({0} bytes)")]
    TooShort(usize),
    /// `size` disagrees with the datagram.
    #[error("bogus message size: header says {header}, datagram has {actual}")]
    BadSize {
        /// Header's size.
        header: usize,
        /// Bytes received.
        actual: usize,
    },
    /// Not version 1 (or reserved/spare non-zero: a version 0 message).
    #[error("not a version 1 sync message (version {0})")]
    Version(u8),
    /// An entry runs past the end.
    #[error("entry {0} is truncated")]
    Truncated(usize),
    /// An entry's version nibble is not 0.
    #[error("entry {0} has unknown version")]
    EntryVersion(usize),
    /// An entry's declared size is below its fixed part.
    #[error("entry {0} is shorter than its fixed part")]
    EntryTooShort(usize),
    /// A malformed option.
    #[error("entry {0} has a malformed option")]
    BadOption(usize),
    /// Address families differ inside one entry.
    #[error("entry {0} mixes address families")]
    MixedFamily(usize),
    /// More than 255 entries, or an entry too large to describe.
    #[error("too many or too large entries to encode")]
    TooBig,
    /// A state out of range for its protocol.
    #[error("entry {0} has an invalid state {1}")]
    BadState(usize, u16),
}

fn put_addr(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

impl SyncEntry {
    /// Encoded length without trailing padding (`ver_size`).
    pub fn encoded_len(&self) -> usize {
        let base = if self.caddr.is_ipv6() {
            V6_ENTRY_LEN
        } else {
            V4_ENTRY_LEN
        };
        base + self.seq.map_or(0, |_| 26)
            + self.pe_data.as_ref().map_or(0, |d| d.len() + 2)
            + self.pe_name.as_ref().map_or(0, |d| d.len() + 2)
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), SyncError> {
        let v6 = self.caddr.is_ipv6();
        if self.vaddr.is_ipv6() != v6 || self.daddr.is_ipv6() != v6 {
            return Err(SyncError::MixedFamily(0));
        }
        let len = self.encoded_len();
        if len > usize::from(SVER_MASK)
            || self
                .pe_data
                .as_ref()
                .is_some_and(|d| d.is_empty() || d.len() > 255)
            || self
                .pe_name
                .as_ref()
                .is_some_and(|d| d.is_empty() || d.len() > 255)
        {
            return Err(SyncError::TooBig);
        }
        out.push(if v6 { STYPE_F_INET6 } else { 0 });
        out.push(self.protocol);
        out.extend_from_slice(&(len as u16 & SVER_MASK).to_be_bytes());
        out.extend_from_slice(&(self.flags & !conn_flags::HASHED).to_be_bytes());
        out.extend_from_slice(&self.state.to_be_bytes());
        out.extend_from_slice(&self.cport.to_be_bytes());
        out.extend_from_slice(&self.vport.to_be_bytes());
        out.extend_from_slice(&self.dport.to_be_bytes());
        out.extend_from_slice(&self.fwmark.to_be_bytes());
        out.extend_from_slice(&self.timeout.to_be_bytes());
        put_addr(out, self.caddr);
        put_addr(out, self.vaddr);
        put_addr(out, self.daddr);
        if let Some((i, o)) = self.seq {
            out.push(OPT_SEQ_DATA);
            out.push(24);
            for s in [i, o] {
                out.extend_from_slice(&s.init_seq.to_be_bytes());
                out.extend_from_slice(&s.delta.to_be_bytes());
                out.extend_from_slice(&s.previous_delta.to_be_bytes());
            }
        }
        for (t, d) in [(OPT_PE_DATA, &self.pe_data), (OPT_PE_NAME, &self.pe_name)] {
            if let Some(d) = d {
                out.push(t);
                out.push(d.len() as u8);
                out.extend_from_slice(d);
            }
        }
        Ok(())
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn addr(b: &[u8], at: usize, v6: bool) -> IpAddr {
    if v6 {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(o))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
    }
}

fn decode_entry(e: &[u8], idx: usize) -> Result<SyncEntry, SyncError> {
    // `e` is exactly the entry's ver_size bytes, already checked >= 4.
    let v6 = e[0] & STYPE_F_INET6 != 0;
    let fixed = if v6 { V6_ENTRY_LEN } else { V4_ENTRY_LEN };
    if e.len() < fixed {
        return Err(SyncError::EntryTooShort(idx));
    }
    let alen = if v6 { 16 } else { 4 };
    let mut s = SyncEntry {
        protocol: e[1],
        flags: be32(e, 4),
        state: be16(e, 8),
        cport: be16(e, 10),
        vport: be16(e, 12),
        dport: be16(e, 14),
        fwmark: be32(e, 16),
        timeout: be32(e, 20),
        caddr: addr(e, 24, v6),
        vaddr: addr(e, 24 + alen, v6),
        daddr: addr(e, 24 + 2 * alen, v6),
        seq: None,
        pe_data: None,
        pe_name: None,
    };
    let mut p = fixed;
    while p < e.len() {
        let (Some(&t), Some(&l)) = (e.get(p), e.get(p + 1)) else {
            return Err(SyncError::BadOption(idx));
        };
        let l = usize::from(l);
        let Some(data) = e.get(p + 2..p + 2 + l).filter(|_| l > 0) else {
            return Err(SyncError::BadOption(idx));
        };
        match t & 0x0f {
            OPT_SEQ_DATA if l == 24 && s.seq.is_none() => {
                let seq = |at: usize| Seq {
                    init_seq: be32(data, at),
                    delta: be32(data, at + 4) as i32,
                    previous_delta: be32(data, at + 8) as i32,
                };
                s.seq = Some((seq(0), seq(12)));
            }
            OPT_PE_DATA if s.pe_data.is_none() => s.pe_data = Some(data.to_vec()),
            OPT_PE_NAME if s.pe_name.is_none() => s.pe_name = Some(data.to_vec()),
            _ => return Err(SyncError::BadOption(idx)),
        }
        p += 2 + l;
    }
    Ok(s)
}

impl SyncMessage {
    /// Encoded length.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self
                .conns
                .iter()
                .map(|c| (c.encoded_len() + 3) & !3)
                .sum::<usize>()
    }

    /// The datagram payload.
    pub fn encode(&self) -> Result<Vec<u8>, SyncError> {
        if self.conns.len() > 255 {
            return Err(SyncError::TooBig);
        }
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&[
            0,
            self.syncid,
            0,
            0,
            self.conns.len() as u8,
            SYNC_PROTO_VER,
            0,
            0,
        ]);
        for c in &self.conns {
            // Padding goes before an entry, to keep each on a 4-byte boundary.
            while out.len() % 4 != 0 {
                out.push(0);
            }
            c.encode(&mut out)?;
        }
        let size = u16::try_from(out.len()).map_err(|_| SyncError::TooBig)?;
        out[2..4].copy_from_slice(&size.to_be_bytes());
        Ok(out)
    }

    /// Parse a datagram payload (`ip_vs_process_message`); never panics.
    pub fn decode(b: &[u8]) -> Result<SyncMessage, SyncError> {
        if b.len() < HEADER_LEN {
            return Err(SyncError::TooShort(b.len()));
        }
        let size = usize::from(be16(b, 2));
        if size != b.len() {
            return Err(SyncError::BadSize {
                header: size,
                actual: b.len(),
            });
        }
        if b[5] != SYNC_PROTO_VER || b[0] != 0 || b[6] != 0 || b[7] != 0 {
            return Err(SyncError::Version(b[5]));
        }
        let n = usize::from(b[4]);
        let mut conns = Vec::with_capacity(n);
        let mut at = HEADER_LEN;
        for i in 0..n {
            if at + V4_ENTRY_LEN > b.len() {
                return Err(SyncError::Truncated(i));
            }
            let vs = be16(b, at + 2);
            if vs >> SVER_SHIFT != 0 {
                return Err(SyncError::EntryVersion(i));
            }
            let sz = usize::from(vs & SVER_MASK);
            let Some(e) = b.get(at..at + sz) else {
                return Err(SyncError::Truncated(i));
            };
            if sz < 4 {
                return Err(SyncError::EntryTooShort(i));
            }
            conns.push(decode_entry(e, i)?);
            at += (sz + 3) & !3;
        }
        Ok(SyncMessage {
            syncid: b[1],
            conns,
        })
    }
}

/// Sync daemon settings (sysctls and `ipvsadm --start-daemon` options).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SyncConfig {
    /// `--syncid` (0 on a backup = accept any).
    pub syncid: u8,
    /// Largest message payload (`sync_maxlen`: MTU 1500 - IP - UDP).
    pub max_len: usize,
    /// `sync_threshold` (3).
    pub sync_threshold: u32,
    /// `sync_period` (50).
    pub sync_period: u32,
    /// `sync_refresh_period` in seconds (0 = off).
    pub sync_refresh_period: u32,
    /// `sync_retries` (0).
    pub sync_retries: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            syncid: 0,
            max_len: 1500 - 20 - 8,
            sync_threshold: 3,
            sync_period: 50,
            sync_refresh_period: 0,
            sync_retries: 0,
        }
    }
}

/// A sync message as the kernel's sync thread sends it: UDP from `src` to
/// 224.0.0.81:8848 (TTL 1), in an Ethernet frame to the group's multicast MAC.
pub fn udp_frame(src_mac: [u8; 6], src: Ipv4Addr, msg: &[u8]) -> Option<Vec<u8>> {
    let g = SYNC_GROUP_V4.octets();
    let eth = EthernetRepr {
        dst: [0x01, 0x00, 0x5e, g[1] & 0x7f, g[2], g[3]],
        src: src_mac,
        ethertype: ethertype::IPV4,
    };
    flow::udp_v4_frame(eth, (src, SYNC_PORT), (SYNC_GROUP_V4, SYNC_PORT), 1, msg)
}

/// The UDP payload of a frame, if it is UDP over IPv4 or IPv6.
pub fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    flow::udp_payload(frame)
}

/// A partial message waits at most this long (`IPVS_SYNC_FLUSH_TIME`).
pub const SYNC_FLUSH_TIME: Duration = Duration::from_secs(2);

/// The MASTER side: turns connection activity into sync datagrams.
#[derive(Debug)]
pub struct SyncSender {
    cfg: SyncConfig,
    cur: Vec<SyncEntry>,
    cur_len: usize,
    cur_since: Option<Instant>,
    ready: VecDeque<Vec<u8>>,
    /// `sync_endtime` per entry, only kept when the refresh period is on.
    endtime: std::collections::BTreeMap<ConnId, u64>,
}

fn fwd_bits(f: Option<FwdMethod>) -> u32 {
    match f {
        Some(FwdMethod::Masq) | None => 0,
        Some(FwdMethod::Local) => 1,
        Some(FwdMethod::Tunnel(_)) => 2,
        Some(FwdMethod::Route) => 3,
        Some(FwdMethod::Bypass) => 4,
    }
}

impl SyncSender {
    /// A sender with these settings.
    pub fn new(cfg: SyncConfig) -> Self {
        SyncSender {
            cfg,
            cur: Vec::new(),
            cur_len: HEADER_LEN,
            cur_since: None,
            ready: VecDeque::new(),
            endtime: std::collections::BTreeMap::new(),
        }
    }

    /// `ip_vs_sync_conn_needed`.
    fn needed(&mut self, now: Instant, c: &super::conn::Conn, pkts: u32) -> bool {
        // The kernel's `force` only matters against a racing cmpxchg; one thread here.
        if c.key.proto == 6 && !c.template {
            let ok = matches!(
                TcpState::from_u8(c.state),
                Some(
                    TcpState::Established
                        | TcpState::FinWait
                        | TcpState::Close
                        | TcpState::CloseWait
                        | TcpState::TimeWait
                )
            );
            if !ok {
                return false;
            }
            if c.state != c.old_state && c.state != TcpState::Established as u8 {
                return true;
            }
        }
        let hz = 1_000_000_000u64;
        let n = (now.as_nanos() + u64::from(c.timeout) * hz) & !3;
        let orig = self.endtime.get(&c.id).copied().unwrap_or(0);
        let mut newv = n;
        if self.cfg.sync_refresh_period > 0 {
            let diff = n.abs_diff(orig);
            let min_diff = (u64::from(c.timeout) * hz / 2).max(10 * hz);
            let period = u64::from(self.cfg.sync_refresh_period) * hz;
            if diff < period.min(min_diff) {
                let retries = (orig & 3) as u32;
                if retries >= self.cfg.sync_retries {
                    return false;
                }
                if now.as_nanos() < (orig + period / 8).saturating_sub(u64::from(c.timeout) * hz) {
                    return false;
                }
                newv |= u64::from(retries + 1);
            }
        }
        if self.cfg.sync_period > 0 {
            if !c.template && pkts % self.cfg.sync_period != self.cfg.sync_threshold {
                return false;
            }
        } else if self.cfg.sync_refresh_period == 0 && pkts != self.cfg.sync_threshold {
            return false;
        }
        if self.cfg.sync_refresh_period > 0 {
            self.endtime.insert(c.id, newv);
        }
        true
    }

    /// A packet went through connection `id` (after [`Ipvs::process`]), with
    /// `pkts` its input packet count: sync it and its template if due (`ip_vs_sync_conn`).
    pub fn on_packet(&mut self, now: Instant, ipvs: &mut Ipvs, id: ConnId, pkts: u32) {
        let mut cur = Some((id, pkts));
        let mut hops = 0;
        while let Some((id, pkts)) = cur.take() {
            hops += 1;
            let Some(info) = ipvs.conn_info(id) else {
                return;
            };
            let c = info.conn;
            if self.needed(now, &c, pkts) {
                ipvs.mark_synced_state(id);
                let mut flags = fwd_bits(info.fwd);
                let f = c.flags;
                if f & super::conn::flags::INACTIVE != 0 {
                    flags |= conn_flags::INACTIVE;
                }
                if f & super::conn::flags::NOOUTPUT != 0 {
                    flags |= conn_flags::NOOUTPUT;
                }
                if c.template {
                    flags |= conn_flags::TEMPLATE;
                }
                let (daddr, dport) = info.dest.map_or((c.key.vaddr, 0), |d| (d.0, d.1));
                let fwmark = match info.service {
                    Some(super::ServiceKey::Fwmark { mark, .. }) => mark,
                    _ => 0,
                };
                self.push(
                    now,
                    SyncEntry {
                        protocol: c.key.proto,
                        flags,
                        state: u16::from(c.state),
                        cport: c.key.cport,
                        vport: c.key.vport,
                        dport,
                        fwmark,
                        timeout: c.timeout,
                        caddr: c.key.caddr,
                        vaddr: c.key.vaddr,
                        daddr,
                        seq: None,
                        pe_data: None,
                        pe_name: None,
                    },
                );
            }
            if hops < 2 {
                if let Some(t) = c.control {
                    // Templates are synced along with the connections they control.
                    cur = Some((t, self.cfg.sync_threshold));
                }
            }
        }
    }

    fn push(&mut self, now: Instant, e: SyncEntry) {
        let len = (e.encoded_len() + 3) & !3;
        if self.cur_len + len > self.cfg.max_len || self.cur.len() >= 255 {
            self.flush();
        }
        if self.cur.is_empty() {
            self.cur_since = Some(now);
        }
        self.cur_len += len;
        self.cur.push(e);
    }

    fn flush(&mut self) {
        if self.cur.is_empty() {
            return;
        }
        let msg = SyncMessage {
            syncid: self.cfg.syncid,
            conns: std::mem::take(&mut self.cur),
        };
        if let Ok(b) = msg.encode() {
            self.ready.push_back(b);
        }
        self.cur_len = HEADER_LEN;
        self.cur_since = None;
    }

    /// Send a partial message once it has waited [`SYNC_FLUSH_TIME`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.cur_since.is_some_and(|t| now >= t + SYNC_FLUSH_TIME) {
            self.flush();
        }
    }

    /// When the partial message is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.cur_since.map(|t| t + SYNC_FLUSH_TIME)
    }

    /// The next datagram payload for [`SYNC_GROUP_V4`]:[`SYNC_PORT`].
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }
}

/// The BACKUP side: installs what a master sends.
#[derive(Debug)]
pub struct SyncReceiver {
    syncid: u8,
}

impl SyncReceiver {
    /// A receiver accepting messages of `syncid` (0 = any).
    pub fn new(syncid: u8) -> Self {
        SyncReceiver { syncid }
    }

    /// One datagram: returns how many entries were installed or updated.
    /// A message of another sync ID is ignored (Ok(0)).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        ipvs: &mut Ipvs,
        payload: &[u8],
    ) -> Result<usize, SyncError> {
        let msg = SyncMessage::decode(payload)?;
        if self.syncid != 0 && msg.syncid != self.syncid {
            return Ok(0);
        }
        let mut n = 0;
        for (i, e) in msg.conns.iter().enumerate() {
            let flags = e.flags & conn_flags::BACKUP_MASK;
            let template = flags & conn_flags::TEMPLATE != 0;
            let mut state = e.state;
            if template {
                state = 0;
            } else if e.protocol == 6 && usize::from(state) >= super::conn::TCP_STATES {
                return Err(SyncError::BadState(i, state));
            }
            let s = SyncedConn {
                key: ConnKey {
                    proto: e.protocol,
                    caddr: e.caddr,
                    cport: e.cport,
                    vaddr: e.vaddr,
                    vport: e.vport,
                },
                template,
                inactive: flags & conn_flags::INACTIVE != 0,
                state: state as u8,
                daddr: e.daddr,
                dport: e.dport,
                fwmark: e.fwmark,
                timeout: e.timeout,
            };
            if ipvs.install_synced(now, &s).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(v6: bool) -> SyncEntry {
        let (c, v, d): (IpAddr, IpAddr, IpAddr) = if v6 {
            (
                "2001:db8::7".parse().unwrap(),
                "2001:db8::1".parse().unwrap(),
                "2001:db8::11".parse().unwrap(),
            )
        } else {
            (
                "192.0.2.7".parse().unwrap(),
                "10.0.0.1".parse().unwrap(),
                "10.0.0.11".parse().unwrap(),
            )
        };
        SyncEntry {
            protocol: 6,
            flags: 3 | conn_flags::NOOUTPUT,
            state: 1,
            cport: 40001,
            vport: 80,
            dport: 80,
            fwmark: 0,
            timeout: 900,
            caddr: c,
            vaddr: v,
            daddr: d,
            seq: None,
            pe_data: None,
            pe_name: None,
        }
    }

    #[test]
    fn v4_entry_layout_matches_the_kernel_struct() {
        let m = SyncMessage {
            syncid: 5,
            conns: vec![entry(false)],
        };
        let b = m.encode().unwrap();
        assert_eq!(b.len(), 8 + 36);
        assert_eq!(&b[..8], &[0, 5, 0, 44, 1, 1, 0, 0]);
        // type 0, protocol 6, ver_size 36, flags 0x83, state 1.
        assert_eq!(&b[8..18], &[0, 6, 0, 36, 0, 0, 0, 0x83, 0, 1]);
        assert_eq!(&b[18..24], &[0x9c, 0x41, 0, 80, 0, 80]);
        assert_eq!(&b[28..32], &900u32.to_be_bytes());
        assert_eq!(&b[32..36], &[192, 0, 2, 7]);
        assert_eq!(SyncMessage::decode(&b).unwrap(), m);
    }

    #[test]
    fn options_and_padding() {
        let mut e = entry(true);
        e.pe_name = Some(b"sip".to_vec());
        e.seq = Some((
            Seq {
                init_seq: 1,
                delta: -2,
                previous_delta: 3,
            },
            Seq::default(),
        ));
        let m = SyncMessage {
            syncid: 0,
            conns: vec![e.clone(), entry(false)],
        };
        let b = m.encode().unwrap();
        assert_eq!(e.encoded_len(), 72 + 26 + 5);
        // 103 bytes, padded to 104 before the next entry.
        assert_eq!(b.len(), 8 + 104 + 36);
        assert_eq!(SyncMessage::decode(&b).unwrap(), m);
    }

    #[test]
    fn hostile_messages_are_refused() {
        let good = SyncMessage {
            syncid: 1,
            conns: vec![entry(false)],
        }
        .encode()
        .unwrap();
        assert_eq!(SyncMessage::decode(&good[..5]), Err(SyncError::TooShort(5)));
        let mut b = good.clone();
        b.truncate(40);
        assert!(matches!(
            SyncMessage::decode(&b),
            Err(SyncError::BadSize { .. })
        ));
        let mut b = good.clone();
        b[5] = 0;
        assert_eq!(SyncMessage::decode(&b), Err(SyncError::Version(0)));
        let mut b = good.clone();
        b[4] = 2; // claims two entries
        assert_eq!(SyncMessage::decode(&b), Err(SyncError::Truncated(1)));
        let mut b = good.clone();
        b[10] = 0x10; // entry version 1
        assert_eq!(SyncMessage::decode(&b), Err(SyncError::EntryVersion(0)));
        let mut b = good.clone();
        b[11] = 20; // shorter than the fixed part
        assert_eq!(SyncMessage::decode(&b), Err(SyncError::EntryTooShort(0)));
    }

    #[test]
    fn master_syncs_established_on_third_packet_and_backup_installs_it() {
        use crate::ipvs::conn::TcpFlags;
        use crate::ipvs::sched::SchedFlags;
        use crate::ipvs::service::{DestSpec, ServiceSpec};
        use crate::ipvs::table::{PacketInfo, Verdict};
        use crate::ipvs::{Protocol, ServiceKey};
        use rand_chacha::rand_core::SeedableRng;

        let key = ServiceKey::Inet {
            proto: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        let build = || {
            let mut ipvs = Ipvs::default();
            ipvs.add_service(ServiceSpec {
                key,
                scheduler: crate::ipvs::sched::SchedKind::Rr,
                flags: SchedFlags::default(),
                persistence: Some(60),
                netmask_prefix: 32,
                one_packet: false,
            })
            .unwrap();
            let d = DestSpec {
                addr: "10.0.0.11".parse().unwrap(),
                port: 80,
                fwd: FwdMethod::Route,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
            };
            ipvs.add_dest(&key, &d).unwrap();
            ipvs
        };
        let mut master = build();
        let mut backup = build();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut tx = SyncSender::new(SyncConfig {
            syncid: 9,
            ..SyncConfig::default()
        });
        let pkt = |tcp| PacketInfo {
            proto: Protocol::Tcp,
            src: "192.0.2.7".parse().unwrap(),
            sport: 4000,
            dst: "10.0.0.1".parse().unwrap(),
            dport: 80,
            tcp,
            fwmark: 0,
        };
        let t0 = Instant::ZERO;
        for f in [TcpFlags::SYN, TcpFlags::ACK, TcpFlags::ACK] {
            let Verdict::Forward(fw) = master.process(t0, &pkt(f), &mut rng) else {
                panic!("not forwarded");
            };
            tx.on_packet(t0, &mut master, fw.conn, fw.in_pkts);
            tx.handle_timeout(t0);
            assert!(tx.poll_transmit().is_none(), "partial message waits");
        }
        assert_eq!(tx.poll_timeout(), Some(t0 + SYNC_FLUSH_TIME));
        tx.handle_timeout(t0 + SYNC_FLUSH_TIME);
        let dgram = tx.poll_transmit().expect("flushed after 2 s");
        let msg = SyncMessage::decode(&dgram).unwrap();
        assert_eq!(msg.syncid, 9);
        // With sync_refresh_period 0 a template is sent with every packet of
        // a connection it controls; the connection itself only once
        // ESTABLISHED, on packet sync_threshold (3) of every sync_period (50).
        let kinds: Vec<bool> = msg
            .conns
            .iter()
            .map(|c| c.flags & conn_flags::TEMPLATE != 0)
            .collect();
        assert_eq!(kinds, [true, true, false, true]);
        assert_eq!(msg.conns[2].state, TcpState::Established as u16);

        assert_eq!(
            SyncReceiver::new(8).handle_datagram(t0, &mut backup, &dgram),
            Ok(0)
        );
        assert_eq!(
            SyncReceiver::new(9).handle_datagram(t0, &mut backup, &dgram),
            Ok(4)
        );
        let d = backup.service(&key).unwrap().dests()[0].clone();
        assert_eq!((d.activeconns, d.inactconns, d.persistconns), (1, 0, 1));
        // The synced timeout (ESTABLISHED, 900 s) governs the backup's copy.
        backup.handle_timeout(Instant::from_secs(899));
        assert_eq!(backup.service(&key).unwrap().dests()[0].activeconns, 1);
        backup.handle_timeout(Instant::from_secs(900));
        assert_eq!(backup.service(&key).unwrap().dests()[0].activeconns, 0);
    }

    /// The frame is byte for byte what etherparse's builder made before `wire`.
    #[test]
    fn udp_frame_is_the_builders_and_reads_back() {
        let src = Ipv4Addr::new(10, 0, 0, 2);
        for msg in [&b""[..], b"x", &[7u8; 333][..]] {
            let f = udp_frame([2, 0, 0, 0, 0, 9], src, msg).unwrap();
            let mut reference = Vec::new();
            etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [1, 0, 0x5e, 0, 0, 81])
                .ipv4(src.octets(), SYNC_GROUP_V4.octets(), 1)
                .udp(SYNC_PORT, SYNC_PORT)
                .write(&mut reference, msg)
                .unwrap();
            assert_eq!(f, reference);
            assert_eq!(udp_payload(&f), Some(msg));
        }
        assert_eq!(udp_frame([0; 6], src, &[0; 65508]), None);
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = SyncMessage::decode(&b);
        }

        #[test]
        fn decode_never_panics_on_valid_header(n in 0u8..4, body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut b = vec![0, 0, 0, 0, n, 1, 0, 0];
            b.extend_from_slice(&body);
            let len = b.len() as u16;
            b[2..4].copy_from_slice(&len.to_be_bytes());
            let _ = SyncMessage::decode(&b);
        }

        #[test]
        fn round_trip(
            syncid in any::<u8>(),
            raw in proptest::collection::vec((any::<bool>(), any::<u8>(), any::<u32>(), any::<u16>(), any::<[u16; 3]>(), any::<u32>(), any::<u32>(), any::<[u8; 48]>(), proptest::option::of(proptest::collection::vec(any::<u8>(), 1..20))), 0..20),
        ) {
            let conns: Vec<SyncEntry> = raw.into_iter().map(|(v6, proto, flags, state, ports, fwmark, timeout, a, pe)| {
                let ad = |i: usize| -> IpAddr {
                    if v6 {
                        let mut o = [0u8; 16];
                        o.copy_from_slice(&a[i * 16..i * 16 + 16]);
                        IpAddr::V6(o.into())
                    } else {
                        IpAddr::V4(Ipv4Addr::new(a[i * 4], a[i * 4 + 1], a[i * 4 + 2], a[i * 4 + 3]))
                    }
                };
                SyncEntry {
                    protocol: proto, flags: flags & !conn_flags::HASHED, state, cport: ports[0], vport: ports[1], dport: ports[2],
                    fwmark, timeout, caddr: ad(0), vaddr: ad(1), daddr: ad(2), seq: None, pe_data: pe, pe_name: None,
                }
            }).collect();
            let m = SyncMessage { syncid, conns };
            let b = m.encode().unwrap();
            prop_assert_eq!(SyncMessage::decode(&b).unwrap(), m);
        }
    }
}
