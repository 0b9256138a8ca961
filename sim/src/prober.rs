//! A director host's kernel sockets for keepalived's health checks: a TCP_CHECK or HTTP_GET
//! is a real connection from the host's own address through the modelled network, so links,
//! partitions, loss, the gateway and the real server's own state decide it.
//!
//! As Linux does it: the SYN leaves from the address of the interface the route to the
//! target uses (or `bindto`), is retransmitted after 1 s, 2 s, 4 s, ... until the check's
//! `connect_timeout`; a SYN-ACK connects (TCP_CHECK: done, then closed), an RST refuses.
//! HTTP_GET then sends its request and waits for the response, inside the same timeout. No
//! answer in time is a timeout.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lvs_core::check::probe::{Probe, ProbeId, ProbeKind};
use lvs_core::Instant;

use crate::packet::{TcpFlags, TcpSeg};
use crate::stack::{Fx, Stack};

/// Linux's first SYN retransmission timeout (`TCP_TIMEOUT_INIT`), doubled per retry.
const SYN_RTO: Duration = Duration::from_secs(1);
/// The ephemeral port range (`net.ipv4.ip_local_port_range`).
const PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;

/// How a probe ended, as the host's socket saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// SYN-ACK: connected (the TCP_CHECK verdict).
    Connected,
    /// RST, or no route to the target.
    Refused,
    /// HTTP_GET: the response arrived from `server` (its service's status and body).
    Responded {
        /// The real server's address.
        server: SocketAddr,
    },
    /// Nothing in time.
    TimedOut,
}

/// A probe that ended: which one, for which process, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    /// The probe.
    pub id: ProbeId,
    /// The director process that started it.
    pub gen: u32,
    /// How it ended.
    pub outcome: Outcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    SynSent,
    /// HTTP request sent: the server's next sequence number and ours after the request.
    Requested {
        next: u32,
        mine: u32,
    },
}

#[derive(Clone, Debug)]
struct Sock {
    id: ProbeId,
    gen: u32,
    local: SocketAddr,
    peer: SocketAddr,
    request: Option<Vec<u8>>,
    isn: u32,
    state: State,
    syns: u32,
}

/// The host's probe sockets.
#[derive(Default)]
pub struct Prober {
    /// By serial number (timer tokens carry it, so a timer of a closed socket finds nothing).
    socks: BTreeMap<u64, Sock>,
    /// Local port -> serial.
    ports: BTreeMap<u16, u64>,
    serial: u64,
    next_port: u16,
}

/// Timer tokens: serial << 8 | what (0: the deadline, n: the n-th SYN retransmission).
fn timer_token(serial: u64, what: u32) -> u64 {
    serial << 8 | u64::from(what.min(255))
}

impl Prober {
    /// Open a socket for `probe` of process `gen` and send its SYN; false when nothing could
    /// be sent: no route to the target (connect() fails at once), an IPv6 target, a script.
    pub fn start(
        &mut self,
        now: Instant,
        gen: u32,
        probe: &Probe,
        stack: &mut Stack,
        fx: &mut Fx,
    ) -> bool {
        let (target, bind, request) = match &probe.kind {
            ProbeKind::Tcp { target, bind } => (*target, *bind, None),
            ProbeKind::Http {
                target,
                path,
                virtualhost,
                ..
            } => {
                let host = virtualhost
                    .clone()
                    .unwrap_or_else(|| target.ip().to_string());
                let req =
                    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
                (*target, None, Some(req.into_bytes()))
            }
            ProbeKind::Script { .. } => return false,
        };
        let peer = target;
        let src = match bind {
            Some(b) if !b.ip().is_unspecified() && b.is_ipv4() == peer.is_ipv4() => Some(b.ip()),
            _ => stack.source_for(peer.ip()),
        };
        let Some(src) = src else {
            return false;
        };
        let port = self.free_port();
        self.serial += 1;
        let serial = self.serial;
        let sock = Sock {
            id: probe.id,
            gen,
            local: SocketAddr::new(src, port),
            peer,
            request,
            isn: (serial as u32).wrapping_mul(2_246_822_519),
            state: State::SynSent,
            syns: 1,
        };
        send(stack, now, fx, sock.seg(sock.isn, 0, syn(), &[]));
        fx.timers
            .push((now + probe.timeout, timer_token(serial, 0)));
        fx.timers.push((now + SYN_RTO, timer_token(serial, 1)));
        self.ports.insert(port, serial);
        self.socks.insert(serial, sock);
        true
    }

    fn free_port(&mut self) -> u16 {
        loop {
            if !PORTS.contains(&self.next_port) {
                self.next_port = *PORTS.start();
            }
            let p = self.next_port;
            self.next_port = self.next_port.wrapping_add(1);
            if !self.ports.contains_key(&p) {
                return p;
            }
        }
    }

    /// No socket open.
    pub fn is_empty(&self) -> bool {
        self.socks.is_empty()
    }

    /// Whether a TCP segment to `dst`:`dport` is for one of the probe sockets.
    pub fn owns(&self, dst: IpAddr, dport: u16) -> bool {
        self.ports
            .get(&dport)
            .and_then(|s| self.socks.get(s))
            .is_some_and(|s| s.local.ip() == dst)
    }

    /// A TCP segment for a probe socket arrived.
    pub fn on_segment(
        &mut self,
        now: Instant,
        seg: &TcpSeg<'_>,
        stack: &mut Stack,
        fx: &mut Fx,
    ) -> Option<Done> {
        let serial = *self.ports.get(&seg.dport)?;
        let sock = self.socks.get_mut(&serial)?;
        if seg.src != sock.peer.ip() || seg.sport != sock.peer.port() {
            return None;
        }
        if seg.flags.rst {
            return self.close(serial, Outcome::Refused);
        }
        match sock.state {
            State::SynSent if seg.flags.syn && seg.flags.ack => {
                let (seq, next) = (sock.isn.wrapping_add(1), seg.seq.wrapping_add(1));
                match sock.request.take() {
                    None => {
                        // connect() succeeded; keepalived closes the socket straight away.
                        send(stack, now, fx, sock.seg(seq, next, fin_ack(), &[]));
                        self.close(serial, Outcome::Connected)
                    }
                    Some(req) => {
                        let mine = seq.wrapping_add(req.len() as u32);
                        sock.state = State::Requested { next, mine };
                        send(stack, now, fx, sock.seg(seq, next, psh_ack(), &req));
                        None
                    }
                }
            }
            State::Requested { next, mine } if !seg.payload.is_empty() => {
                let end = next.wrapping_add(seg.payload.len() as u32 + u32::from(seg.flags.fin));
                send(stack, now, fx, sock.seg(mine, end, fin_ack(), &[]));
                let server = sock.peer;
                self.close(serial, Outcome::Responded { server })
            }
            _ => None,
        }
    }

    /// A probe timer fired: a SYN retransmission or the deadline.
    pub fn on_timer(
        &mut self,
        now: Instant,
        token: u64,
        stack: &mut Stack,
        fx: &mut Fx,
    ) -> Option<Done> {
        let (serial, what) = (token >> 8, (token & 0xff) as u32);
        let sock = self.socks.get_mut(&serial)?;
        if what == 0 {
            return self.close(serial, Outcome::TimedOut);
        }
        if sock.state == State::SynSent && what == sock.syns {
            sock.syns += 1;
            send(stack, now, fx, sock.seg(sock.isn, 0, syn(), &[]));
            fx.timers.push((
                now + SYN_RTO * (1 << what.min(10)),
                timer_token(serial, what + 1),
            ));
        }
        None
    }

    fn close(&mut self, serial: u64, outcome: Outcome) -> Option<Done> {
        let sock = self.socks.remove(&serial)?;
        self.ports.remove(&sock.local.port());
        Some(Done {
            id: sock.id,
            gen: sock.gen,
            outcome,
        })
    }

    /// The process is gone: its sockets close with it, silently.
    pub fn clear(&mut self) {
        self.socks.clear();
        self.ports.clear();
    }
}

fn syn() -> TcpFlags {
    TcpFlags {
        syn: true,
        ..TcpFlags::default()
    }
}

fn fin_ack() -> TcpFlags {
    TcpFlags {
        fin: true,
        ack: true,
        ..TcpFlags::default()
    }
}

fn psh_ack() -> TcpFlags {
    TcpFlags {
        psh: true,
        ack: true,
        ..TcpFlags::default()
    }
}

fn send(stack: &mut Stack, now: Instant, fx: &mut Fx, seg: TcpSeg<'_>) {
    stack.route(now, Some(seg.src), seg.dst, seg.to_unaddressed_frame(), fx);
}

impl Sock {
    fn seg<'a>(&self, seq: u32, ack: u32, flags: TcpFlags, payload: &'a [u8]) -> TcpSeg<'a> {
        TcpSeg {
            src: self.local.ip(),
            dst: self.peer.ip(),
            sport: self.local.port(),
            dport: self.peer.port(),
            seq,
            ack,
            flags,
            payload,
        }
    }
}
