//! The IPVS sync daemon (Linux 6.1 `ip_vs_sync.c`) over the version 1 message of
//! [`crate::wire::ipvs_sync`].
//!
//! The MASTER side ([`SyncSender`]) decides per packet, as
//! `ip_vs_sync_conn_needed` does, which connections to send; the BACKUP side
//! ([`SyncReceiver`]) installs them in its table. Datagrams are data: the
//! driver sends them to [`SYNC_GROUP_V4`]:[`SYNC_PORT`].

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::conn::{ConnId, ConnKey, SctpState, TcpState};
use super::table::{Ipvs, SyncedConn};
use super::FwdMethod;
use crate::time::Instant;
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::flow;
use crate::wire::ipvs_sync::{
    conn_flags, SyncConnRepr, SyncMessageRepr, SyncWireError, HEADER_LEN,
};

/// Default multicast group of the sync daemon.
pub const SYNC_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// Default UDP port of the sync daemon.
pub const SYNC_PORT: u16 = 8848;

/// Why a received message was refused (the kernel logs and drops it).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SyncError {
    /// Not a well-formed version 1 message.
    #[error(transparent)]
    Wire(#[from] SyncWireError),
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
    cur: Vec<SyncConnRepr>,
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
        } else if c.key.proto == 132 && !c.template {
            let ok = matches!(
                SctpState::from_u8(c.state),
                Some(
                    SctpState::Established
                        | SctpState::ShutdownSent
                        | SctpState::ShutdownReceived
                        | SctpState::ShutdownAckSent
                        | SctpState::Closed
                )
            );
            if !ok {
                return false;
            }
            if c.state != c.old_state && c.state != SctpState::Established as u8 {
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
                    SyncConnRepr {
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

    fn push(&mut self, now: Instant, e: SyncConnRepr) {
        let len = e.padded_len();
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
        let msg = SyncMessageRepr {
            syncid: self.cfg.syncid,
            conns: std::mem::take(&mut self.cur),
        };
        if let Ok(b) = msg.to_bytes() {
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

    /// One datagram, as `ip_vs_process_message` takes it: a message of another sync ID is
    /// ignored (Ok(0)) before anything else is looked at; entries are installed in order; an
    /// entry with an unknown mandatory option, an unsupported protocol or a state out of its
    /// protocol's range is skipped (the kernel only debug-logs those); a malformed entry
    /// drops the rest of the datagram, the entries before it staying installed, and is the
    /// error. Returns how many entries were installed or updated.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        ipvs: &mut Ipvs,
        payload: &[u8],
    ) -> Result<usize, SyncError> {
        let syncid = SyncMessageRepr::syncid(payload)?;
        if self.syncid != 0 && syncid != self.syncid {
            return Ok(0);
        }
        let mut n = 0;
        for entry in SyncMessageRepr::entries(payload)? {
            let e = match entry {
                Ok(e) => e,
                Err(SyncWireError::UnknownOption { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let flags = e.flags & conn_flags::BACKUP_MASK;
            let template = flags & conn_flags::TEMPLATE != 0;
            let state = if template { 0 } else { e.state };
            if !template && states_of(e.protocol).is_none_or(|n| usize::from(state) >= n) {
                continue;
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

/// How many connection states the kernel's protocol handler has (`pp->num_states`); None
/// for a protocol IPVS does not handle.
fn states_of(protocol: u8) -> Option<usize> {
    match protocol {
        6 => Some(super::conn::TCP_STATES),
        // IP_VS_UDP_S_LAST, IP_VS_SCTP_S_LAST; AH and ESP have one state.
        17 => Some(1),
        132 => Some(super::conn::SCTP_STATES),
        50 | 51 => Some(1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ipvs::sched::SchedFlags;
    use crate::ipvs::service::{DestSpec, ServiceSpec};
    use crate::ipvs::{Protocol, ServiceKey};
    use crate::wire::ipvs_sync::SyncConnRepr;

    fn key() -> ServiceKey {
        ServiceKey::Inet {
            proto: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        }
    }

    /// 10.0.0.1:80 (rr, persistent 60 s) with one DR destination 10.0.0.11:80.
    fn table() -> Ipvs {
        let mut ipvs = Ipvs::default();
        ipvs.add_service(ServiceSpec {
            key: key(),
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
        ipvs.add_dest(&key(), &d).unwrap();
        ipvs
    }

    /// An ESTABLISHED DR connection from client port `cport` to the service of [`table`].
    fn conn(cport: u16) -> SyncConnRepr {
        SyncConnRepr {
            protocol: 6,
            flags: 3,
            state: TcpState::Established as u16,
            cport,
            vport: 80,
            dport: 80,
            fwmark: 0,
            timeout: 900,
            caddr: "192.0.2.7".parse().unwrap(),
            vaddr: "10.0.0.1".parse().unwrap(),
            daddr: "10.0.0.11".parse().unwrap(),
            seq: None,
            pe_data: None,
            pe_name: None,
        }
    }

    /// A message of `conns`, the first option of entry `i` retyped to `t` for each `(i, t)`.
    fn message(conns: Vec<SyncConnRepr>, retype: &[(usize, u8)]) -> Vec<u8> {
        let mut at = vec![HEADER_LEN];
        for c in &conns {
            at.push(at[at.len() - 1] + c.padded_len());
        }
        let fixed = |c: &SyncConnRepr| {
            use crate::wire::ipvs_sync::{V4_ENTRY_LEN, V6_ENTRY_LEN};
            if c.caddr.is_ipv6() {
                V6_ENTRY_LEN
            } else {
                V4_ENTRY_LEN
            }
        };
        let offsets: Vec<usize> = conns.iter().zip(&at).map(|(c, a)| a + fixed(c)).collect();
        let mut b = SyncMessageRepr { syncid: 9, conns }.to_bytes().unwrap();
        for &(i, t) in retype {
            b[offsets[i]] = t;
        }
        b
    }

    /// ip_vs_process_message / ip_vs_proc_sync_conn: an unknown mandatory option, an
    /// unsupported protocol or a state out of range cost one entry; an unknown optional
    /// option (IPVS_OPT_F_PARAM) is skipped over; a malformed entry drops the rest of the
    /// datagram, the entries before it kept; the sync ID is checked before the version.
    #[test]
    fn backup_takes_entries_as_the_kernel_does() {
        let t0 = Instant::ZERO;
        let with_opt = |cport| SyncConnRepr {
            pe_data: Some(b"x".to_vec()),
            ..conn(cport)
        };
        let bad_state = SyncConnRepr {
            state: 99,
            ..conn(1003)
        };
        let gre = SyncConnRepr {
            protocol: 47,
            ..conn(1005)
        };
        let dgram = message(
            vec![
                conn(1001),
                with_opt(1002),
                bad_state,
                with_opt(1004),
                gre,
                conn(1006),
            ],
            &[(1, 0x05), (3, 0x45)],
        );
        assert!(
            SyncMessageRepr::parse(&dgram).is_err(),
            "strict parse refuses it"
        );
        let mut backup = table();
        let n = SyncReceiver::new(9).handle_datagram(t0, &mut backup, &dgram);
        assert_eq!(n, Ok(3), "1001, 1004 and 1006");
        assert_eq!(backup.service(&key()).unwrap().dests()[0].activeconns, 3);

        // Entry 1's type byte is neither IPv4 nor IPv6: entry 0 stays, 2 is never read.
        let mut dgram = message(vec![conn(2001), conn(2002), conn(2003)], &[]);
        dgram[HEADER_LEN + conn(2001).padded_len()] = 2;
        let mut backup = table();
        assert_eq!(
            SyncReceiver::new(9).handle_datagram(t0, &mut backup, &dgram),
            Err(SyncError::Wire(SyncWireError::EntryType(1)))
        );
        assert_eq!(backup.service(&key()).unwrap().dests()[0].activeconns, 1);

        // Another sync ID is ignored even when the message is not version 1.
        let mut dgram = message(vec![conn(3001)], &[]);
        dgram[5] = 0;
        assert_eq!(
            SyncReceiver::new(8).handle_datagram(t0, &mut table(), &dgram),
            Ok(0)
        );
    }

    #[test]
    fn master_syncs_established_on_third_packet_and_backup_installs_it() {
        use crate::ipvs::conn::TcpFlags;
        use crate::ipvs::table::{PacketInfo, Verdict};
        use rand_chacha::rand_core::SeedableRng;

        let (key, build) = (key(), table);
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
            sctp: Default::default(),
            fwmark: 0,
            len: 40,
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
        let msg = SyncMessageRepr::parse(&dgram).unwrap();
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
}
