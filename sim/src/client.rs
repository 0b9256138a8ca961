//! Clients: open-loop (Poisson arrivals) or closed-loop (N concurrent) request flows over a
//! small TCP model — SYN, request, response+FIN, retransmission with exponential backoff,
//! give-up after a number of tries — so a connection a failover breaks is counted; or over
//! UDP as a stub resolver asks: one datagram from a connected socket, one answer awaited
//! until a timeout, an ICMP port unreachable read as ECONNREFUSED; or over SCTP, one
//! association per request ([`crate::sctp`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use rustc_hash::FxHashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lvs_core::Instant;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::packet::{TcpFlags, TcpSeg, UdpDgram};
use crate::sctp::{ClientEnd, Finished, SctpClient, SctpPkt, SctpSpec, SCTP_TIMER};
use crate::server::UDP_REQUEST_ID;
use crate::stack::{Fx, Stack};

/// Timer token that starts new connections.
const START: u64 = 1 << 62;
/// Timer token of the retransmission check: one pending timer serves every connection, so
/// a request that finishes in time leaves no timer event behind.
const RETRANSMIT: u64 = START + 1;

/// How requests are generated.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Workload {
    /// New requests at `rate` per second (exponential gaps), whatever the answers.
    Open {
        /// Requests per second.
        rate: f64,
    },
    /// `concurrency` connections at all times, each followed by `think` before the next.
    Closed {
        /// Connections in flight.
        concurrency: u32,
        /// Pause after a request finishes.
        think: Duration,
    },
}

/// What a client does.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ClientSpec {
    /// The virtual service.
    pub target: SocketAddr,
    /// Request pattern.
    pub workload: Workload,
    /// First request.
    pub start: Instant,
    /// No new requests from then on.
    pub stop: Option<Instant>,
    /// First retransmission timeout (doubles on each retry).
    pub rto: Duration,
    /// Transmissions of a segment before the connection is given up.
    pub max_tries: u32,
    /// UDP requests instead of TCP connections.
    pub udp: Option<UdpSpec>,
    /// SCTP associations instead of TCP connections ([`crate::sctp`]).
    pub sctp: Option<SctpSpec>,
    /// Bytes of each request's payload: one TCP segment (1 to
    /// [`lvs_scenarios::MAX_TCP_REQUEST_SIZE`]), or one UDP datagram holding the request's id
    /// ([`lvs_scenarios::MIN_UDP_REQUEST_SIZE`] to [`lvs_scenarios::MAX_UDP_REQUEST_SIZE`]);
    /// 20 bytes less each to an IPv6 target; `Sim::add_client` refuses any other size. An
    /// SCTP request carries its id alone.
    pub request_size: u32,
}

/// How a UDP client asks: one datagram per request from a connected socket.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct UdpSpec {
    /// How long it waits for the answer before the request counts as timed out (it is
    /// not sent again: each request is one try, as one resolver query to one server).
    pub timeout: Duration,
    /// Every request from this port (a long-lived socket), instead of a fresh ephemeral
    /// port per request (as a resolver binds one per query).
    pub source_port: Option<u16>,
}

impl ClientSpec {
    /// Defaults: start at 0, 1 s initial RTO, 3 tries, the bare GET request (18 bytes).
    pub fn new(target: SocketAddr, workload: Workload) -> Self {
        ClientSpec {
            target,
            workload,
            start: Instant::ZERO,
            stop: None,
            rto: Duration::from_secs(1),
            max_tries: 3,
            udp: None,
            sctp: None,
            request_size: REQUEST.len() as u32,
        }
    }
}

/// Why a request failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// No SYN-ACK after all tries.
    ConnectTimeout,
    /// Connected, then no response after all tries.
    Timeout,
    /// RST received.
    Reset,
    /// ECONNREFUSED: on a connected UDP socket, an ICMP port unreachable came back; on an
    /// SCTP association, an ABORT answered its INIT or COOKIE ECHO.
    Refused,
}

/// The end of one request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Answered by this real server.
    Ok {
        /// The server's name (the response body), shared by every answer it gave.
        server: Arc<str>,
    },
    /// Failed.
    Failed {
        /// Why.
        reason: FailReason,
        /// The connection had been established (a broken connection, not a refused one).
        broken: bool,
    },
}

/// One finished request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RequestRecord {
    /// First SYN.
    #[serde(rename = "started_ns")]
    pub started: Instant,
    /// Response or give-up.
    #[serde(rename = "finished_ns")]
    pub finished: Instant,
    /// Client port.
    pub port: u16,
    /// The VIP:port it was sent to.
    pub target: SocketAddr,
    /// Result.
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone, Debug)]
struct Conn {
    port: u16,
    established: bool,
    tries: u32,
    rto: Duration,
    deadline: Instant,
    started: Instant,
    isn: u32,
    peer_isn: u32,
}

/// (deadline, connection id) pairs taken in order. Almost every deadline is filed at least
/// as late as the one before (a first timeout, constant, from a clock that only moves on),
/// so those queue up in arrival order and cost nothing to take; the others (backed-off
/// retransmissions) wait in a heap. Most entries go stale (the exchange finished first), so
/// a client files and drops two per request.
#[derive(Debug, Default)]
struct Deadlines {
    in_order: VecDeque<(Instant, u64)>,
    others: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Deadlines {
    fn push(&mut self, d: (Instant, u64)) {
        if self.in_order.back().is_none_or(|last| *last <= d) {
            self.in_order.push_back(d);
        } else {
            self.others.push(Reverse(d));
        }
    }

    /// The earliest entry.
    fn peek(&self) -> Option<(Instant, u64)> {
        match (self.in_order.front(), self.others.peek()) {
            (Some(a), Some(Reverse(b))) => Some(*a.min(b)),
            (a, b) => a.copied().or(b.map(|r| r.0)),
        }
    }

    fn pop(&mut self) -> Option<(Instant, u64)> {
        let from_heap = match (self.in_order.front(), self.others.peek()) {
            (Some(a), Some(Reverse(b))) => b < a,
            (None, Some(_)) => true,
            _ => false,
        };
        if from_heap {
            self.others.pop().map(|r| r.0)
        } else {
            self.in_order.pop_front()
        }
    }
}

/// A client host's request generator.
pub struct Client {
    /// Configuration.
    pub spec: ClientSpec,
    local: IpAddr,
    // Hash maps: looked up per segment, never iterated into an output.
    conns: FxHashMap<u64, Conn>,
    by_port: FxHashMap<u16, u64>,
    next_id: u64,
    next_port: u16,
    /// Retransmission deadlines (deadline, connection id); an entry whose connection is
    /// gone or has moved its deadline is stale and skipped when it comes up.
    deadlines: Deadlines,
    /// When the pending RETRANSMIT timer fires.
    check_at: Option<Instant>,
    /// Requests started.
    pub sent: u64,
    /// Response bodies seen, so that an answer names its server without an allocation.
    servers: Vec<Arc<str>>,
    /// SCTP associations (an SCTP workload).
    sctp: SctpClient,
    /// Each request's payload (a UDP request's first bytes are overwritten by its id).
    request: Vec<u8>,
}

/// The request's head; a larger request continues with filler, as a body would.
const REQUEST: &[u8] = b"GET / HTTP/1.0\r\n\r\n";

/// The request payload of `size` bytes (at least a UDP request's id).
fn request_payload(size: u32, udp: bool) -> Vec<u8> {
    let size = size as usize;
    let size = if udp { size.max(UDP_REQUEST_ID) } else { size };
    REQUEST
        .iter()
        .copied()
        .chain(std::iter::repeat(b'x'))
        .take(size)
        .collect()
}

impl Client {
    /// The shared name for a response body.
    fn server_named(&mut self, body: &[u8]) -> Arc<str> {
        if let Some(s) = self.servers.iter().find(|s| s.as_bytes() == body) {
            return s.clone();
        }
        let s: Arc<str> = Arc::from(String::from_utf8_lossy(body).as_ref());
        // A few real servers answer; a body that keeps changing is not worth remembering.
        if self.servers.len() < 64 {
            self.servers.push(s.clone());
        }
        s
    }

    /// A client sending from `local`.
    pub fn new(spec: ClientSpec, local: IpAddr) -> Self {
        let request = request_payload(spec.request_size, spec.udp.is_some());
        Client {
            request,
            spec,
            local,
            conns: FxHashMap::default(),
            by_port: FxHashMap::default(),
            next_id: 1,
            next_port: 32768,
            deadlines: Deadlines::default(),
            check_at: None,
            sent: 0,
            servers: Vec::new(),
            sctp: SctpClient::default(),
        }
    }

    /// The timer that starts the workload.
    pub fn first_timer(&self) -> (Instant, u64) {
        (self.spec.start, START)
    }

    /// Connections (or SCTP requests) in flight.
    pub fn in_flight(&self) -> usize {
        self.conns.len() + self.sctp.in_flight()
    }

    /// File a connection's deadline; the RETRANSMIT timer moves earlier if it must.
    fn arm(&mut self, deadline: Instant, id: u64, fx: &mut Fx) {
        self.deadlines.push((deadline, id));
        if self.check_at.is_none_or(|c| deadline < c) {
            self.check_at = Some(deadline);
            fx.timers.push((deadline, RETRANSMIT));
        }
    }

    /// The earliest deadline still live, dropping stale entries ahead of it.
    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some((at, id)) = self.deadlines.peek() {
            if self.conns.get(&id).is_some_and(|c| c.deadline == at) {
                return Some(at);
            }
            self.deadlines.pop();
        }
        None
    }

    fn send(&self, now: Instant, stack: &mut Stack, fx: &mut Fx, seg: TcpSeg<'_>) {
        stack.route(now, Some(seg.src), seg.dst, seg.to_unaddressed_frame(), fx);
    }

    fn seg<'a>(
        &self,
        port: u16,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        payload: &'a [u8],
    ) -> TcpSeg<'a> {
        TcpSeg {
            src: self.local,
            dst: self.spec.target.ip(),
            sport: port,
            dport: self.spec.target.port(),
            seq,
            ack,
            flags,
            payload,
        }
    }

    fn open(&mut self, now: Instant, rng: &mut ChaCha8Rng, stack: &mut Stack, fx: &mut Fx) {
        if let Some(u) = &self.spec.udp {
            let (timeout, fixed) = (u.timeout, u.source_port);
            self.query(now, timeout, fixed, stack, fx);
            return;
        }
        if let Some(spec) = self.spec.sctp.clone() {
            // SCTP over IPv6 is refused when the scenario loads.
            let (IpAddr::V4(local), SocketAddr::V4(target)) = (self.local, self.spec.target) else {
                return;
            };
            let Some(port) = self.free_port() else {
                return; // every ephemeral port in use
            };
            let id = self.next_id;
            self.next_id += 1;
            self.sent += 1;
            let tags = (rng.gen(), rng.gen());
            let local = (local, port);
            self.sctp
                .open(now, id, local, target, tags, &spec, stack, fx);
            return;
        }
        let Some(port) = self.free_port() else {
            return; // every ephemeral port in use
        };
        let id = self.next_id;
        self.next_id += 1;
        let isn: u32 = rng.gen();
        let conn = Conn {
            port,
            established: false,
            tries: 1,
            rto: self.spec.rto,
            deadline: now + self.spec.rto,
            started: now,
            isn,
            peer_isn: 0,
        };
        self.sent += 1;
        let syn = self.seg(
            port,
            isn,
            0,
            TcpFlags {
                syn: true,
                ..TcpFlags::default()
            },
            b"",
        );
        self.send(now, stack, fx, syn);
        let deadline = conn.deadline;
        self.conns.insert(id, conn);
        self.arm(deadline, id, fx);
        self.by_port.insert(port, id);
    }

    /// The next ephemeral port no request in flight holds, from 32768 up and around
    /// (`ip_local_port_range` 32768-60999 as Linux has it; the TCP side wraps the same way).
    fn free_port(&mut self) -> Option<u16> {
        let mut port = self.next_port;
        let taken = |c: &Self, p| c.by_port.contains_key(&p) || c.sctp.holds(p);
        for _ in 0..28232 {
            if !taken(self, port) {
                break;
            }
            port = if port == u16::MAX { 32768 } else { port + 1 };
        }
        if taken(self, port) {
            return None;
        }
        self.next_port = if port == u16::MAX { 32768 } else { port + 1 };
        Some(port)
    }

    /// One UDP request: a datagram carrying the request's id (echoed by the server), and
    /// one deadline.
    fn query(
        &mut self,
        now: Instant,
        timeout: Duration,
        fixed: Option<u16>,
        stack: &mut Stack,
        fx: &mut Fx,
    ) {
        let port = match fixed {
            Some(p) => p,
            None => match self.free_port() {
                Some(p) => p,
                None => return, // every ephemeral port in use
            },
        };
        let id = self.next_id;
        self.next_id += 1;
        let conn = Conn {
            port,
            established: false,
            tries: 1,
            rto: timeout,
            deadline: now + timeout,
            started: now,
            isn: 0,
            peer_isn: 0,
        };
        // UDP over IPv6 is refused when the scenario loads.
        let (IpAddr::V4(local), IpAddr::V4(target)) = (self.local, self.spec.target.ip()) else {
            return;
        };
        self.sent += 1;
        self.request[..UDP_REQUEST_ID].copy_from_slice(&id.to_be_bytes());
        let d = UdpDgram {
            src: local,
            dst: target,
            sport: port,
            dport: self.spec.target.port(),
            payload: &self.request,
        };
        if let Some(frame) = d.to_unaddressed_frame() {
            stack.route(now, Some(d.src.into()), d.dst.into(), frame, fx);
        }
        self.conns.insert(id, conn);
        self.arm(now + timeout, id, fx);
        if fixed.is_none() {
            self.by_port.insert(port, id);
        }
    }

    /// A UDP datagram for this host arrived: the answer to the request whose id it echoes,
    /// if it comes from the target to that request's port (what a connected socket accepts).
    pub fn on_datagram(
        &mut self,
        now: Instant,
        d: &UdpDgram<'_>,
        fx: &mut Fx,
        out: &mut Vec<RequestRecord>,
    ) {
        if self.spec.udp.is_none()
            || IpAddr::V4(d.src) != self.spec.target.ip()
            || d.sport != self.spec.target.port()
            || d.payload.len() < UDP_REQUEST_ID
        {
            return;
        }
        let (id, name) = d.payload.split_at(UDP_REQUEST_ID);
        let id = u64::from_be_bytes(id.try_into().unwrap_or_default());
        if self.conns.get(&id).is_none_or(|c| c.port != d.dport) {
            return; // a late answer to a request already given up
        }
        let server = self.server_named(name);
        self.finish(now, id, Outcome::Ok { server }, fx, out);
    }

    /// An ICMP port unreachable quoting a datagram `(src, sport, dst, dport)` arrived.
    /// `udp_err` finds the socket by the quoted addresses and ports and, the socket being
    /// connected, reports ECONNREFUSED to its next receive: the request waiting on that
    /// port fails (the oldest one when several share a fixed port).
    pub fn on_port_unreachable(
        &mut self,
        now: Instant,
        quoted: (Ipv4Addr, u16, Ipv4Addr, u16),
        fx: &mut Fx,
        out: &mut Vec<RequestRecord>,
    ) {
        let (src, sport, dst, dport) = quoted;
        if self.spec.udp.is_none()
            || IpAddr::V4(src) != self.local
            || IpAddr::V4(dst) != self.spec.target.ip()
            || dport != self.spec.target.port()
        {
            return;
        }
        let id = match self.by_port.get(&sport) {
            Some(&id) => Some(id),
            // A fixed port: requests share it and are not in `by_port`.
            None => self
                .conns
                .iter()
                .filter(|(_, c)| c.port == sport)
                .map(|(id, _)| *id)
                .min(),
        };
        if let Some(id) = id {
            let failed = Outcome::Failed {
                reason: FailReason::Refused,
                broken: false,
            };
            self.finish(now, id, failed, fx, out);
        }
    }

    fn finish(
        &mut self,
        now: Instant,
        id: u64,
        outcome: Outcome,
        fx: &mut Fx,
        out: &mut Vec<RequestRecord>,
    ) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        self.by_port.remove(&c.port);
        self.record(now, c.started, c.port, outcome, fx, out);
    }

    /// A request ended: its record, and in a closed loop the next request after the think
    /// time.
    fn record(
        &mut self,
        now: Instant,
        started: Instant,
        port: u16,
        outcome: Outcome,
        fx: &mut Fx,
        out: &mut Vec<RequestRecord>,
    ) {
        out.push(RequestRecord {
            started,
            finished: now,
            port,
            target: self.spec.target,
            outcome,
        });
        if let Workload::Closed { think, .. } = self.spec.workload {
            if self.spec.stop.is_none_or(|s| now + think < s) {
                fx.timers.push((now + think, START));
            }
        }
    }

    /// An SCTP packet for this host arrived.
    pub fn on_sctp(
        &mut self,
        now: Instant,
        p: &SctpPkt<'_>,
        stack: &mut Stack,
        fx: &mut Fx,
        out: &mut Vec<RequestRecord>,
    ) {
        let (Some(_), SocketAddr::V4(target)) = (&self.spec.sctp, self.spec.target) else {
            return;
        };
        if let Some(f) = self.sctp.on_packet(now, p, target, stack, fx) {
            self.sctp_finished(now, f, fx, out);
        }
    }

    /// An SCTP request ended: an answer names its server; an ABORT before the association
    /// was up is ECONNREFUSED, after it ECONNRESET; no answer in time is a connect timeout
    /// before the association was up, a timeout on a broken one after.
    fn sctp_finished(
        &mut self,
        now: Instant,
        f: Finished,
        fx: &mut Fx,
        out: &mut Vec<RequestRecord>,
    ) {
        let failed = |reason, broken| Outcome::Failed { reason, broken };
        let outcome = match f.end {
            ClientEnd::Answered(name) => Outcome::Ok {
                server: self.server_named(&name),
            },
            ClientEnd::Aborted { established: false } => failed(FailReason::Refused, false),
            ClientEnd::Aborted { established: true } => failed(FailReason::Reset, true),
            ClientEnd::TimedOut { established: false } => failed(FailReason::ConnectTimeout, false),
            ClientEnd::TimedOut { established: true } => failed(FailReason::Timeout, true),
        };
        self.record(now, f.started, f.port, outcome, fx, out);
    }

    /// A timer fired.
    pub fn on_timer(
        &mut self,
        now: Instant,
        token: u64,
        rng: &mut ChaCha8Rng,
        stack: &mut Stack,
        fx: &mut Fx,
        out: &mut Vec<RequestRecord>,
    ) {
        if token == START {
            if self.spec.stop.is_some_and(|s| now >= s) {
                return;
            }
            match self.spec.workload {
                Workload::Open { rate } => {
                    self.open(now, rng, stack, fx);
                    if rate > 0.0 {
                        let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
                        let gap = Duration::from_secs_f64((-u.ln() / rate).min(1e6));
                        fx.timers.push((now + gap, START));
                    }
                }
                Workload::Closed { concurrency, .. } => {
                    // The first START opens all slots; later ones refill one slot each.
                    let n = if self.sent == 0 { concurrency } else { 1 };
                    for _ in 0..n {
                        if self.in_flight() < concurrency as usize {
                            self.open(now, rng, stack, fx);
                        }
                    }
                }
            }
            return;
        }
        if token & SCTP_TIMER != 0 && token < START {
            let (IpAddr::V4(local), SocketAddr::V4(target)) = (self.local, self.spec.target) else {
                return;
            };
            if let Some(f) = self.sctp.on_timer(now, token, local, target, stack, fx) {
                self.sctp_finished(now, f, fx, out);
            }
            return;
        }
        if token != RETRANSMIT || self.check_at != Some(now) {
            return; // superseded by an earlier check
        }
        // check_at stays `now` while expiring, so the deadlines filed meanwhile (all later)
        // do not each push a timer; one is pushed for the earliest afterwards.
        while self.next_deadline().is_some_and(|at| at <= now) {
            let Some((_, id)) = self.deadlines.pop() else {
                break;
            };
            self.expire(now, id, stack, fx, out);
        }
        self.check_at = self.next_deadline();
        if let Some(at) = self.check_at {
            fx.timers.push((at, RETRANSMIT));
        }
    }

    /// A connection's deadline passed: retransmit, or give up after the last try.
    fn expire(
        &mut self,
        now: Instant,
        id: u64,
        stack: &mut Stack,
        fx: &mut Fx,
        out: &mut Vec<RequestRecord>,
    ) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if self.spec.udp.is_some() {
            // One datagram, no retry: the timeout is the request's end.
            let failed = Outcome::Failed {
                reason: FailReason::Timeout,
                broken: false,
            };
            self.finish(now, id, failed, fx, out);
            return;
        }
        if c.tries >= self.spec.max_tries {
            let (reason, broken) = if c.established {
                (FailReason::Timeout, true)
            } else {
                (FailReason::ConnectTimeout, false)
            };
            self.finish(now, id, Outcome::Failed { reason, broken }, fx, out);
            return;
        }
        c.tries += 1;
        c.rto *= 2;
        c.deadline = now + c.rto;
        let c = c.clone();
        let seg = if c.established {
            let f = TcpFlags {
                ack: true,
                psh: true,
                ..TcpFlags::default()
            };
            self.seg(
                c.port,
                c.isn.wrapping_add(1),
                c.peer_isn.wrapping_add(1),
                f,
                &self.request,
            )
        } else {
            self.seg(
                c.port,
                c.isn,
                0,
                TcpFlags {
                    syn: true,
                    ..TcpFlags::default()
                },
                b"",
            )
        };
        self.send(now, stack, fx, seg);
        self.arm(c.deadline, id, fx);
    }

    /// A TCP segment for this host arrived.
    pub fn on_segment(
        &mut self,
        now: Instant,
        seg: &TcpSeg<'_>,
        stack: &mut Stack,
        fx: &mut Fx,
        out: &mut Vec<RequestRecord>,
    ) {
        if seg.src != self.spec.target.ip() || seg.sport != self.spec.target.port() {
            return;
        }
        let Some(&id) = self.by_port.get(&seg.dport) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if seg.flags.rst {
            let broken = c.established;
            self.finish(
                now,
                id,
                Outcome::Failed {
                    reason: FailReason::Reset,
                    broken,
                },
                fx,
                out,
            );
            return;
        }
        if seg.flags.syn && seg.flags.ack {
            if !c.established {
                c.established = true;
                c.peer_isn = seg.seq;
                c.tries = 1;
                c.rto = self.spec.rto;
                c.deadline = now + c.rto;
                let deadline = c.deadline;
                self.arm(deadline, id, fx);
            }
            let Some(c) = self.conns.get(&id).cloned() else {
                return;
            };
            let f = TcpFlags {
                ack: true,
                psh: true,
                ..TcpFlags::default()
            };
            let data = self.seg(
                c.port,
                c.isn.wrapping_add(1),
                c.peer_isn.wrapping_add(1),
                f,
                &self.request,
            );
            self.send(now, stack, fx, data);
            return;
        }
        if c.established && !seg.payload.is_empty() {
            let (port, isn) = (c.port, c.isn);
            let server = self.server_named(seg.payload);
            let ack = seg
                .seq
                .wrapping_add(seg.payload.len() as u32 + u32::from(seg.flags.fin));
            let f = TcpFlags {
                ack: true,
                fin: true,
                ..TcpFlags::default()
            };
            let fin = self.seg(
                port,
                isn.wrapping_add(1 + self.request.len() as u32),
                ack,
                f,
                b"",
            );
            self.send(now, stack, fx, fin);
            self.finish(now, id, Outcome::Ok { server }, fx, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// Entries come out in (deadline, id) order, as from one heap, however they were
        /// filed: mostly in order, sometimes earlier than the last one.
        #[test]
        fn deadlines_come_out_in_order(ops in proptest::collection::vec((any::<bool>(), 0u64..50, 0u64..4), 0..300)) {
            let mut d = Deadlines::default();
            let mut reference = BinaryHeap::new();
            let mut now = 0u64;
            for (id, (pop, step, back)) in ops.into_iter().enumerate() {
                if pop {
                    prop_assert_eq!(d.pop(), reference.pop().map(|Reverse(x)| x));
                } else {
                    now += step;
                    let at = Instant::from_nanos(now.saturating_sub(back * 20));
                    d.push((at, id as u64));
                    reference.push(Reverse((at, id as u64)));
                }
                prop_assert_eq!(d.peek(), reference.peek().map(|Reverse(x)| *x));
            }
        }
    }

    use super::*;
    use crate::rng::node_rng;
    use crate::stack::IfaceSpec;

    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
    const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);

    struct Rig {
        client: Client,
        stack: Stack,
        rng: ChaCha8Rng,
        fx: Fx,
        out: Vec<RequestRecord>,
    }

    impl Rig {
        /// One connection at a time (closed loop, no think time), 1 s first RTO, 3 tries.
        fn new() -> Self {
            let mut spec = ClientSpec::new(
                SocketAddr::from((VIP, 80)),
                Workload::Closed {
                    concurrency: 1,
                    think: Duration::from_secs(3600),
                },
            );
            spec.start = Instant::ZERO;
            Rig {
                client: Client::new(spec, ME.into()),
                stack: Stack::new(vec![IfaceSpec::new("eth0", [2; 6], ME, 24)]),
                rng: node_rng(1, 1),
                fx: Fx::default(),
                out: Vec::new(),
            }
        }

        fn timer(&mut self, at_ms: u64, token: u64) {
            let now = Instant::from_nanos(at_ms * 1_000_000);
            self.client.on_timer(
                now,
                token,
                &mut self.rng,
                &mut self.stack,
                &mut self.fx,
                &mut self.out,
            );
        }

        fn segment(&mut self, at_ms: u64, flags: TcpFlags, payload: &[u8]) {
            let now = Instant::from_nanos(at_ms * 1_000_000);
            let seg = TcpSeg {
                src: VIP.into(),
                dst: ME.into(),
                sport: 80,
                dport: 32768,
                seq: 7,
                ack: 0,
                flags,
                payload,
            };
            self.client
                .on_segment(now, &seg, &mut self.stack, &mut self.fx, &mut self.out);
        }

        /// Retransmission timers armed since the last call, in ms.
        fn armed(&mut self) -> Vec<u64> {
            let armed = self
                .fx
                .timers
                .iter()
                .filter(|(_, t)| *t == RETRANSMIT)
                .map(|(at, _)| at.as_nanos() / 1_000_000)
                .collect();
            self.fx = Fx::default();
            armed
        }
    }

    #[test]
    fn unanswered_syn_is_retried_with_backoff_then_given_up() {
        let mut r = Rig::new();
        r.timer(0, START);
        assert_eq!(r.armed(), [1000]);
        r.timer(1000, RETRANSMIT);
        assert_eq!(r.armed(), [3000], "second try, RTO doubled");
        r.timer(3000, RETRANSMIT);
        assert_eq!(r.armed(), [7000], "third try");
        assert!(r.out.is_empty());
        r.timer(7000, RETRANSMIT);
        assert_eq!(r.armed(), Vec::<u64>::new());
        assert_eq!(r.out.len(), 1);
        assert_eq!(r.out[0].finished, Instant::from_secs(7));
        assert_eq!(
            r.out[0].outcome,
            Outcome::Failed {
                reason: FailReason::ConnectTimeout,
                broken: false
            }
        );
    }

    #[test]
    fn answered_request_leaves_one_harmless_check() {
        let mut r = Rig::new();
        r.timer(0, START);
        assert_eq!(r.armed(), [1000]);
        let syn_ack = TcpFlags {
            syn: true,
            ack: true,
            ..TcpFlags::default()
        };
        r.segment(10, syn_ack, b"");
        // Its new deadline (1.01 s) is later than the pending check: no new engine timer.
        assert_eq!(r.armed(), Vec::<u64>::new());
        let response = TcpFlags {
            ack: true,
            psh: true,
            fin: true,
            ..TcpFlags::default()
        };
        r.segment(25, response, b"web1");
        assert_eq!(
            r.out.last().map(|o| o.outcome.clone()),
            Some(Outcome::Ok {
                server: "web1".into()
            })
        );
        // The check still fires at 1 s, finds nothing due and arms nothing.
        r.timer(1000, RETRANSMIT);
        assert_eq!(r.armed(), Vec::<u64>::new());
        assert_eq!(r.out.len(), 1);
        assert_eq!(r.client.in_flight(), 0);
    }

    #[test]
    fn established_connection_without_response_counts_as_broken() {
        let mut r = Rig::new();
        r.timer(0, START);
        r.armed();
        let syn_ack = TcpFlags {
            syn: true,
            ack: true,
            ..TcpFlags::default()
        };
        r.segment(10, syn_ack, b"");
        // The pending check at 1 s finds the connection's deadline moved to 1.01 s.
        r.timer(1000, RETRANSMIT);
        assert_eq!(r.armed(), [1010]);
        r.timer(1010, RETRANSMIT);
        assert_eq!(r.armed(), [3010], "request resent, RTO doubled");
        // A stale check (superseded) does nothing.
        r.timer(2000, RETRANSMIT);
        assert_eq!(r.armed(), Vec::<u64>::new());
        r.timer(3010, RETRANSMIT);
        assert_eq!(r.armed(), [7010]);
        r.timer(7010, RETRANSMIT);
        assert_eq!(
            r.out[0].outcome,
            Outcome::Failed {
                reason: FailReason::Timeout,
                broken: true
            }
        );
    }
}
