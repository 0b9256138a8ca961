//! A real server behind an LVS director: TCP and UDP services with a service time and a
//! concurrency limit, VIPs on lo (answered by `arp_ignore`/`arp_announce` in the stack),
//! replies routed like any of its packets (straight to the client through the default
//! gateway for DR / TUN, through the director for NAT). A UDP datagram to a port nothing
//! listens on is answered with an ICMP port unreachable, rate-limited as Linux does.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use lvs_core::Instant;
use rustc_hash::FxHashMap;

use crate::packet::{self, TcpFlags, TcpSeg, Transport, UdpDgram};
use crate::sctp::{Listeners, SctpPkt, SctpServer, SCTP_TIMER};
use crate::stack::{Fx, Stack};

/// How long a finished connection's state is kept to answer retransmissions (TIME_WAIT-like).
const LINGER: Duration = Duration::from_secs(30);

/// Timer token of the reaper (TCP request timers are `id << 1`, UDP answer timers
/// `id << 1 | 1`, both with ids from 1; SCTP association timers carry [`SCTP_TIMER`]).
const REAP: u64 = 1;

/// `net.ipv4.icmp_ratelimit` (1 s, `icmp_sk_init`): one ICMP error of a type in
/// `icmp_ratemask` (0x1818: destination unreachable among them) per peer per this long.
const ICMP_RATELIMIT: Duration = Duration::from_secs(1);
/// `XRLIM_BURST_FACTOR` (net/ipv4/inetpeer.c): a peer's bucket holds six of them, and a new
/// peer starts full (`inet_getpeer` sets `rate_last` 60 s back).
const ICMP_BURST: u32 = 6;
/// Bytes of a UDP request the answer echoes, so that a client tells its requests apart on
/// one port (as a DNS answer echoes the query ID).
pub const UDP_REQUEST_ID: usize = 8;
/// The reaper waits at least this long between rounds, so it wakes once per batch of
/// lingering connections instead of once per connection.
const REAP_BATCH: Duration = Duration::from_secs(1);

/// One listening TCP or UDP service.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ServiceSpec {
    /// TCP or UDP.
    pub protocol: Transport,
    /// Listening port.
    pub port: u16,
    /// Time from receiving a request to sending the response.
    pub service_time: Duration,
    /// Connections (TCP) or datagrams (UDP) served at once; SYNs beyond it are dropped
    /// (full accept queue), datagrams beyond it too (full receive buffer).
    pub max_concurrency: u32,
    /// Listening at start.
    pub running: bool,
    /// Status an HTTP_GET probe sees.
    pub http_status: u16,
    /// Body digest an HTTP_GET probe sees.
    pub http_digest: String,
}

impl ServiceSpec {
    /// A running TCP service on `port` answering after `service_time`, without a
    /// concurrency limit.
    pub fn new(port: u16, service_time: Duration) -> Self {
        ServiceSpec {
            protocol: Transport::Tcp,
            port,
            service_time,
            max_concurrency: u32::MAX,
            running: true,
            http_status: 200,
            http_digest: String::new(),
        }
    }

    /// [`ServiceSpec::new`] for UDP: one datagram in, one answer out after `service_time`.
    pub fn udp(port: u16, service_time: Duration) -> Self {
        ServiceSpec {
            protocol: Transport::Udp,
            ..ServiceSpec::new(port, service_time)
        }
    }

    /// [`ServiceSpec::new`] for SCTP: one association per request, answered after
    /// `service_time` ([`crate::sctp`]).
    pub fn sctp(port: u16, service_time: Duration) -> Self {
        ServiceSpec {
            protocol: Transport::Sctp,
            ..ServiceSpec::new(port, service_time)
        }
    }
}

/// How a real server is set up.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RealServerSpec {
    /// VIPs on lo (lvs_dr real_server.sh's `ifconfig lo:0 VIP`).
    pub lo_vips: Vec<IpAddr>,
    /// `net.ipv4.conf.*.arp_ignore`.
    pub arp_ignore: u8,
    /// `net.ipv4.conf.*.arp_announce`.
    pub arp_announce: u8,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 default gateway.
    pub gateway6: Option<std::net::Ipv6Addr>,
    /// Tunnel receiver (a TUN real server's).
    pub tunnel: Option<crate::stack::Decap>,
    /// Services.
    pub services: Vec<ServiceSpec>,
}

impl RealServerSpec {
    /// The seed's real_server.sh: VIPs on lo, arp_ignore=1, arp_announce=2.
    pub fn dr(lo_vips: Vec<IpAddr>, gateway: Option<Ipv4Addr>, services: Vec<ServiceSpec>) -> Self {
        RealServerSpec {
            lo_vips,
            arp_ignore: 1,
            arp_announce: 2,
            gateway,
            gateway6: None,
            tunnel: None,
            services,
        }
    }
}

/// Counters of a real server.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerStats {
    /// Connections accepted (SYN answered).
    pub accepted: u64,
    /// Responses sent.
    pub served: u64,
    /// SYNs refused with RST (service not running).
    pub refused: u64,
    /// SYNs dropped at the concurrency limit.
    pub syn_dropped: u64,
    /// RSTs sent for segments of unknown connections.
    pub reset_unknown: u64,
    /// UDP datagrams answered.
    pub udp_served: u64,
    /// UDP datagrams dropped at the concurrency limit.
    pub udp_dropped: u64,
    /// ICMP port unreachables sent (no UDP service listening).
    pub icmp_unreachable: u64,
    /// ICMP port unreachables the per-peer rate limit held back.
    pub icmp_limited: u64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    SynRcvd,
    Serving,
    Responded,
}

#[derive(Clone, Debug)]
struct Conn {
    id: u64,
    state: State,
    isn: u32,
    peer_next: u32,
}

type Key = (IpAddr, u16, IpAddr, u16);

/// A UDP request being served: its 4-tuple (client, client port, local address, port) and
/// the request ID its answer echoes.
#[derive(Clone, Debug)]
struct UdpPending {
    key: Key,
    id: [u8; UDP_REQUEST_ID],
}

/// A peer's ICMP token bucket (`struct inet_peer`'s `rate_tokens` / `rate_last`).
#[derive(Copy, Clone, Debug)]
struct Bucket {
    tokens: Duration,
    last: Instant,
}

/// A real server's TCP services.
pub struct RealServer {
    name: Vec<u8>,
    /// Services with their state.
    pub services: Vec<(ServiceSpec, u32)>,
    // Hash maps: looked up per segment, never iterated into an output.
    conns: FxHashMap<Key, Conn>,
    by_id: FxHashMap<u64, Key>,
    lingering: VecDeque<(Instant, u64)>,
    next_id: u64,
    /// UDP requests in service by id, each with one answer timer.
    udp_pending: FxHashMap<u64, UdpPending>,
    /// ICMP error buckets per peer address.
    icmp_peers: FxHashMap<Ipv4Addr, Bucket>,
    /// SCTP associations.
    pub sctp: SctpServer,
    /// Counters.
    pub stats: ServerStats,
}

/// The SCTP services of a real server as its associations see them.
struct SctpListeners<'a> {
    services: &'a mut [(ServiceSpec, u32)],
    name: &'a [u8],
}

impl SctpListeners<'_> {
    fn running(&mut self, port: u16) -> Option<&mut (ServiceSpec, u32)> {
        self.services
            .iter_mut()
            .find(|s| s.0.port == port && s.0.protocol == Transport::Sctp && s.0.running)
    }
}

impl Listeners for SctpListeners<'_> {
    fn service_time(&self, port: u16) -> Option<Duration> {
        self.services
            .iter()
            .find(|s| s.0.port == port && s.0.protocol == Transport::Sctp && s.0.running)
            .map(|s| s.0.service_time)
    }

    fn take(&mut self, port: u16) -> bool {
        match self.running(port) {
            Some(s) if s.1 < s.0.max_concurrency => {
                s.1 += 1;
                true
            }
            _ => false,
        }
    }

    fn release(&mut self, port: u16) {
        if let Some(s) = self.running(port) {
            s.1 = s.1.saturating_sub(1);
        }
    }

    fn name(&self) -> &[u8] {
        self.name
    }
}

impl RealServer {
    /// A server answering with its `name` as the response body.
    pub fn new(name: &str, services: Vec<ServiceSpec>) -> Self {
        RealServer {
            name: name.as_bytes().to_vec(),
            services: services.into_iter().map(|s| (s, 0)).collect(),
            conns: FxHashMap::default(),
            by_id: FxHashMap::default(),
            lingering: VecDeque::new(),
            next_id: 1,
            udp_pending: FxHashMap::default(),
            icmp_peers: FxHashMap::default(),
            sctp: SctpServer::default(),
            stats: ServerStats::default(),
        }
    }

    /// The TCP service on `port` (what a TCP_CHECK or HTTP_GET connects to).
    pub fn service(&self, port: u16) -> Option<&ServiceSpec> {
        self.service_of(Transport::Tcp, port)
    }

    /// The `protocol` service on `port`.
    pub fn service_of(&self, protocol: Transport, port: u16) -> Option<&ServiceSpec> {
        self.services
            .iter()
            .find(|s| s.0.port == port && s.0.protocol == protocol)
            .map(|s| &s.0)
    }

    /// Start or stop every service on `port` (TCP and UDP: one daemon, such as a DNS
    /// server, listens on both); stopping drops their connections and the UDP requests in
    /// service (the process is gone). False when nothing listens on `port`.
    pub fn set_running(&mut self, port: u16, running: bool) -> bool {
        let mut found = false;
        for svc in self.services.iter_mut().filter(|s| s.0.port == port) {
            found = true;
            svc.0.running = running;
            if !running {
                svc.1 = 0;
            }
        }
        if found && !running {
            let gone: Vec<Key> = self.conns.keys().filter(|k| k.3 == port).copied().collect();
            for k in gone {
                if let Some(c) = self.conns.remove(&k) {
                    self.by_id.remove(&c.id);
                }
            }
            self.udp_pending.retain(|_, p| p.key.3 != port);
            self.sctp.drop_port(port);
        }
        found
    }

    /// An SCTP packet for a local address arrived.
    pub fn on_sctp(&mut self, now: Instant, p: &SctpPkt<'_>, stack: &mut Stack, fx: &mut Fx) {
        let mut l = SctpListeners {
            services: &mut self.services,
            name: &self.name,
        };
        self.sctp.on_packet(now, p, &mut l, stack, fx);
    }

    fn release_of(&mut self, protocol: Transport, port: u16) {
        if let Some(s) = self
            .services
            .iter_mut()
            .find(|s| s.0.port == port && s.0.protocol == protocol)
        {
            s.1 = s.1.saturating_sub(1);
        }
    }

    /// A UDP datagram for a local address arrived; `ip` is its IPv4 packet as received (what
    /// an ICMP error quotes).
    pub fn on_datagram(
        &mut self,
        now: Instant,
        d: &UdpDgram<'_>,
        ip: &[u8],
        stack: &mut Stack,
        fx: &mut Fx,
    ) {
        let key: Key = (d.src.into(), d.sport, d.dst.into(), d.dport);
        let svc = self
            .services
            .iter_mut()
            .find(|s| s.0.port == d.dport && s.0.protocol == Transport::Udp);
        let Some(svc) = svc.filter(|s| s.0.running) else {
            self.port_unreachable(now, d, ip, stack, fx);
            return;
        };
        if svc.1 >= svc.0.max_concurrency {
            self.stats.udp_dropped += 1;
            return;
        }
        svc.1 += 1;
        let service_time = svc.0.service_time;
        let mut id = [0u8; UDP_REQUEST_ID];
        let n = d.payload.len().min(UDP_REQUEST_ID);
        id[..n].copy_from_slice(&d.payload[..n]);
        let pid = self.next_id;
        self.next_id += 1;
        self.udp_pending.insert(pid, UdpPending { key, id });
        fx.timers.push((now + service_time, pid << 1 | 1));
    }

    /// `__udp4_lib_rcv` found no socket: `icmp_send(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)`,
    /// from the address the datagram was sent to (a local one, `RTCF_LOCAL`: the VIP on lo
    /// for DR / TUN), through `icmpv4_xrlim_allow`'s per-peer token bucket.
    fn port_unreachable(
        &mut self,
        now: Instant,
        d: &UdpDgram<'_>,
        ip: &[u8],
        stack: &mut Stack,
        fx: &mut Fx,
    ) {
        // inet_peer_xrlim_allow: tokens grow with the time since the last call, capped at
        // the burst; a message costs one ratelimit's worth.
        let cap = ICMP_RATELIMIT * ICMP_BURST;
        let b = self.icmp_peers.entry(d.src).or_insert(Bucket {
            tokens: cap,
            last: now,
        });
        b.tokens = (b.tokens + now.saturating_duration_since(b.last)).min(cap);
        b.last = now;
        if b.tokens < ICMP_RATELIMIT {
            self.stats.icmp_limited += 1;
            return;
        }
        b.tokens -= ICMP_RATELIMIT;
        let Some(frame) = packet::icmp_port_unreachable(d.dst, ip) else {
            return;
        };
        self.stats.icmp_unreachable += 1;
        stack.route(now, Some(d.dst.into()), d.src.into(), frame, fx);
    }

    fn send(stack: &mut Stack, now: Instant, fx: &mut Fx, seg: TcpSeg<'_>) {
        let ip = seg.to_unaddressed_frame();
        stack.route(now, Some(seg.src), seg.dst, ip, fx);
    }

    fn release(&mut self, port: u16) {
        self.release_of(Transport::Tcp, port);
    }

    /// A TCP segment for a local address arrived.
    pub fn on_segment(&mut self, now: Instant, seg: &TcpSeg<'_>, stack: &mut Stack, fx: &mut Fx) {
        let key: Key = (seg.src, seg.sport, seg.dst, seg.dport);
        let reply = |flags: TcpFlags, seq: u32, ack: u32, payload: &'static [u8]| TcpSeg {
            src: seg.dst,
            dst: seg.src,
            sport: seg.dport,
            dport: seg.sport,
            seq,
            ack,
            flags,
            payload,
        };
        if seg.flags.rst {
            if let Some(c) = self.conns.remove(&key) {
                self.by_id.remove(&c.id);
                if c.state != State::Responded {
                    self.release(seg.dport);
                }
            }
            return;
        }
        if seg.flags.syn && !seg.flags.ack {
            // A new SYN on a finished connection's 4-tuple reuses it (TIME_WAIT reuse).
            if let Some(c) = self.conns.get(&key).filter(|c| c.state == State::Responded) {
                let id = c.id;
                self.conns.remove(&key);
                self.by_id.remove(&id);
            }
            if let Some(c) = self.conns.get(&key) {
                let f = TcpFlags {
                    syn: true,
                    ack: true,
                    ..TcpFlags::default()
                };
                let r = reply(f, c.isn, seg.seq.wrapping_add(1), b"");
                Self::send(stack, now, fx, r);
                return;
            }
            let svc = self
                .services
                .iter_mut()
                .find(|s| s.0.port == seg.dport && s.0.protocol == Transport::Tcp);
            let Some(svc) = svc.filter(|s| s.0.running) else {
                self.stats.refused += 1;
                let f = TcpFlags {
                    rst: true,
                    ack: true,
                    ..TcpFlags::default()
                };
                Self::send(stack, now, fx, reply(f, 0, seg.seq.wrapping_add(1), b""));
                return;
            };
            if svc.1 >= svc.0.max_concurrency {
                self.stats.syn_dropped += 1;
                return;
            }
            svc.1 += 1;
            let id = self.next_id;
            self.next_id += 1;
            let isn = (id as u32).wrapping_mul(2_654_435_761);
            self.conns.insert(
                key,
                Conn {
                    id,
                    state: State::SynRcvd,
                    isn,
                    peer_next: seg.seq.wrapping_add(1),
                },
            );
            self.by_id.insert(id, key);
            self.stats.accepted += 1;
            let f = TcpFlags {
                syn: true,
                ack: true,
                ..TcpFlags::default()
            };
            Self::send(stack, now, fx, reply(f, isn, seg.seq.wrapping_add(1), b""));
            return;
        }
        let service_time = self
            .service(seg.dport)
            .map(|s| s.service_time)
            .unwrap_or_default();
        let Some(c) = self.conns.get_mut(&key) else {
            // No socket: the kernel answers with RST (what a client sees after a failover
            // moves its established connection to a server that never saw it).
            self.stats.reset_unknown += 1;
            let f = TcpFlags {
                rst: true,
                ..TcpFlags::default()
            };
            Self::send(stack, now, fx, reply(f, seg.ack, 0, b""));
            return;
        };
        if !seg.payload.is_empty() {
            match c.state {
                State::SynRcvd => {
                    c.state = State::Serving;
                    c.peer_next = seg.seq.wrapping_add(seg.payload.len() as u32);
                    fx.timers.push((now + service_time, c.id << 1));
                }
                State::Serving => {}
                State::Responded => {
                    let (isn, ack) = (c.isn, c.peer_next);
                    self.respond(now, key, isn, ack, stack, fx);
                }
            }
        } else if seg.flags.fin && c.state == State::Responded {
            let id = c.id;
            self.conns.remove(&key);
            self.by_id.remove(&id);
        } else if seg.flags.fin && c.state == State::SynRcvd {
            // Closed right after connecting (a TCP_CHECK): the slot is free again.
            let id = c.id;
            self.conns.remove(&key);
            self.by_id.remove(&id);
            self.release(seg.dport);
        }
    }

    fn respond(
        &mut self,
        now: Instant,
        key: Key,
        isn: u32,
        ack: u32,
        stack: &mut Stack,
        fx: &mut Fx,
    ) {
        let name = std::mem::take(&mut self.name);
        let seg = TcpSeg {
            src: key.2,
            dst: key.0,
            sport: key.3,
            dport: key.1,
            seq: isn.wrapping_add(1),
            ack,
            flags: TcpFlags {
                ack: true,
                psh: true,
                fin: true,
                ..TcpFlags::default()
            },
            payload: &name,
        };
        let ip = seg.to_unaddressed_frame();
        stack.route(now, Some(key.2), key.0, ip, fx);
        self.name = name;
    }

    /// A model timer fired: a request finished service, or lingering connections are due.
    pub fn on_timer(&mut self, now: Instant, token: u64, stack: &mut Stack, fx: &mut Fx) {
        if token & SCTP_TIMER != 0 {
            let mut l = SctpListeners {
                services: &mut self.services,
                name: &self.name,
            };
            self.sctp.on_timer(now, token, &mut l, stack, fx);
            return;
        }
        if token == REAP {
            while let Some(&(at, id)) = self.lingering.front() {
                if at > now {
                    fx.timers.push((at.max(now + REAP_BATCH), REAP));
                    break;
                }
                self.lingering.pop_front();
                let key = self.by_id.get(&id).copied();
                if let Some(key) = key.filter(|k| {
                    self.conns
                        .get(k)
                        .is_some_and(|c| c.state == State::Responded)
                }) {
                    self.conns.remove(&key);
                    self.by_id.remove(&id);
                }
            }
            return;
        }
        let id = token >> 1;
        if token & 1 == 1 {
            self.answer_udp(now, id, stack, fx);
            return;
        }
        let Some(key) = self.by_id.get(&id).copied() else {
            return;
        };
        let Some(c) = self.conns.get_mut(&key) else {
            return;
        };
        if c.state != State::Serving {
            return;
        }
        c.state = State::Responded;
        let (isn, ack) = (c.isn, c.peer_next);
        self.release(key.3);
        self.stats.served += 1;
        self.respond(now, key, isn, ack, stack, fx);
        // One reaper timer for all lingering connections keeps the event heap small.
        if self.lingering.is_empty() {
            fx.timers.push((now + LINGER, REAP));
        }
        self.lingering.push_back((now + LINGER, id));
    }

    /// A UDP request's service time is over: one datagram back, from the address and port
    /// it was sent to, with the request ID and the server's name.
    fn answer_udp(&mut self, now: Instant, id: u64, stack: &mut Stack, fx: &mut Fx) {
        let Some(p) = self.udp_pending.remove(&id) else {
            return; // the service stopped meanwhile
        };
        self.release_of(Transport::Udp, p.key.3);
        self.stats.udp_served += 1;
        let mut body = Vec::with_capacity(UDP_REQUEST_ID + self.name.len());
        body.extend_from_slice(&p.id);
        body.extend_from_slice(&self.name);
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (p.key.2, p.key.0) else {
            return;
        };
        let d = UdpDgram {
            src,
            dst,
            sport: p.key.3,
            dport: p.key.1,
            payload: &body,
        };
        if let Some(frame) = d.to_unaddressed_frame() {
            stack.route(now, Some(p.key.2), p.key.0, frame, fx);
        }
    }

    /// Connections currently held.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::IfaceSpec;

    fn seg(flags: TcpFlags, payload: &'static [u8]) -> TcpSeg<'static> {
        TcpSeg {
            src: Ipv4Addr::new(10, 0, 0, 50).into(),
            dst: Ipv4Addr::new(10, 0, 0, 100).into(),
            sport: 40000,
            dport: 80,
            seq: 1,
            ack: 0,
            flags,
            payload,
        }
    }

    #[test]
    fn serves_then_reaps_a_connection_whose_fin_was_lost() {
        let mut stack = Stack::new(vec![IfaceSpec::new(
            "eth0",
            [2; 6],
            Ipv4Addr::new(10, 0, 0, 11),
            24,
        )]);
        stack.set_lo(vec![Ipv4Addr::new(10, 0, 0, 100).into()]);
        let mut rs = RealServer::new("rs1", vec![ServiceSpec::new(80, Duration::from_millis(5))]);
        let mut fx = Fx::default();
        let t0 = Instant::from_secs(1);
        rs.on_segment(
            t0,
            &seg(
                TcpFlags {
                    syn: true,
                    ..TcpFlags::default()
                },
                b"",
            ),
            &mut stack,
            &mut fx,
        );
        rs.on_segment(
            t0,
            &seg(
                TcpFlags {
                    ack: true,
                    psh: true,
                    ..TcpFlags::default()
                },
                b"GET",
            ),
            &mut stack,
            &mut fx,
        );
        let (at, token) = fx.timers.pop().expect("service timer");
        assert_eq!(at, t0 + Duration::from_millis(5));
        rs.on_timer(at, token, &mut stack, &mut fx);
        assert_eq!(rs.stats.served, 1);
        assert_eq!(rs.open_connections(), 1, "kept to answer retransmissions");
        let (reap_at, reap) = fx.timers.pop().expect("reaper");
        assert_eq!(reap, REAP);
        rs.on_timer(
            reap_at - Duration::from_millis(1),
            reap,
            &mut stack,
            &mut fx,
        );
        assert_eq!(rs.open_connections(), 1);
        rs.on_timer(reap_at, reap, &mut stack, &mut fx);
        assert_eq!(rs.open_connections(), 0);
        // A segment for the forgotten connection is answered with RST.
        rs.on_segment(
            reap_at,
            &seg(
                TcpFlags {
                    ack: true,
                    ..TcpFlags::default()
                },
                b"x",
            ),
            &mut stack,
            &mut fx,
        );
        assert_eq!(rs.stats.reset_unknown, 1);
    }
}
