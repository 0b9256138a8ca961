//! SCTP associations as Linux's one-to-one sockets run them, reduced to what one request
//! needs: the four-way handshake (INIT, INIT ACK with a state cookie, COOKIE ECHO, COOKIE
//! ACK), one DATA request answered by one DATA after the service time, SACKs, and the
//! graceful SHUTDOWN / SHUTDOWN ACK / SHUTDOWN COMPLETE, each packet one or two chunks
//! over IPv4 with its CRC32c.
//!
//! Linux's numbers (`net.sctp.*`, `sctp_init_sock` / `sctp_association_init`):
//! `rto_initial` 3 s (no RTT is measured on the handshake, so the first DATA is
//! retransmitted after 3 s too), doubling to `rto_max` 60 s; `max_init_retransmits` 8 (INIT
//! and COOKIE ECHO), `association_max_retrans` 10 (DATA, SHUTDOWN, SHUTDOWN ACK), after
//! which the association is aborted; `sack_timeout` 200 ms, a SACK that the answer overtakes
//! is bundled before it. A server with nothing listening on the port treats an INIT as out
//! of the blue and answers an ABORT tagged with the INIT's initiate tag (RFC 9260 8.4,
//! `sctp_sf_tabort_8_4_8`); any other chunk out of the blue gets an ABORT reflecting the
//! packet's tag (T bit), a SHUTDOWN ACK a SHUTDOWN COMPLETE. A COOKIE ECHO on a listener
//! whose accept queue is full (the service's capacity) is answered with an ABORT
//! (`sctp_sf_do_5_1D_ce`).
//!
//! The client gives up a request at the workload's timeout whatever the phase: silently
//! while its INIT is unanswered (an association in COOKIE-WAIT has nothing to tell the
//! peer), with an ABORT after that (the application closing with `SO_LINGER` 0). An ABORT
//! received before the association is up is ECONNREFUSED (`sctp_stop_t1_and_abort`),
//! after it ECONNRESET.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use lvs_core::wire::ip_proto;
use lvs_core::wire::ipv4;
use lvs_core::wire::sctp::{self as wsctp, chunk, ChunkRepr, SctpRepr};
use lvs_core::Instant;
use rustc_hash::FxHashMap;

use crate::packet::{self, PacketError, ETHERTYPE_IPV4, ETH_HDR};
use crate::stack::{Fx, Stack};

/// Bit of the timer tokens of SCTP associations (the rest is the association's id).
pub const SCTP_TIMER: u64 = 1 << 61;

/// `rto_initial`.
pub const RTO_INITIAL: Duration = Duration::from_secs(3);
/// `rto_max`.
const RTO_MAX: Duration = Duration::from_secs(60);
/// `max_init_retransmits`.
pub const MAX_INIT_RETRANSMITS: u32 = 8;
/// `association_max_retrans`.
const ASSOC_MAX_RETRANS: u32 = 10;
/// `sack_timeout`.
const SACK_TIMEOUT: Duration = Duration::from_millis(200);
/// The T bit of ABORT and SHUTDOWN COMPLETE: the tag is the receiver's own, reflected.
const T_BIT: u8 = 1;
/// DATA flags of a whole unfragmented message (B and E).
const DATA_WHOLE: u8 = 3;
/// Bytes of a request the answer echoes (as the UDP model's answer does).
pub const REQUEST_ID: usize = 8;
/// The State Cookie parameter of an INIT ACK.
const PARAM_STATE_COOKIE: u16 = 7;
/// Bytes of the fixed part of an INIT / INIT ACK: initiate tag, a_rwnd, streams, TSN.
const INIT_FIXED: usize = 16;
/// Bytes of the fixed part of a DATA chunk: TSN, stream, stream sequence, PPID.
const DATA_FIXED: usize = 12;
/// The receive window advertised (Linux's default `sk_rcvbuf` share).
const A_RWND: u32 = 106_496;
/// Streams offered (Linux's default `sctp_initmsg`: 10 out, 65535 in).
const STREAMS: (u16, u16) = (10, 65535);

/// One SCTP packet over IPv4 as the models read it: addresses, ports, tag, its chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SctpPkt<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Verification tag.
    pub vtag: u32,
    /// The chunks after the common header.
    pub chunks: &'a [u8],
}

impl<'a> SctpPkt<'a> {
    /// The chunks (header, value) in order; a chunk that does not parse ends them.
    pub fn chunks(&self) -> impl Iterator<Item = (ChunkRepr, &'a [u8])> {
        let mut rest = self.chunks;
        std::iter::from_fn(move || {
            let (c, value, r) = ChunkRepr::parse(rest).ok()?;
            rest = r;
            Some((c, value))
        })
    }

    /// The first chunk's type.
    pub fn first(&self) -> Option<u8> {
        self.chunks().next().map(|(c, _)| c.kind)
    }
}

/// Read the SCTP packet of an IPv4 frame: not a fragment, a whole common header, a right
/// CRC32c (Linux drops a packet whose sum is wrong, `SCTP_MIB_CHECKSUMERRORS`) and at least
/// one chunk.
pub fn parse_sctp(frame: &[u8]) -> Result<SctpPkt<'_>, PacketError> {
    let malformed = |e: lvs_core::wire::WireError| PacketError::Malformed(e.to_string());
    let (ip, proto, l4) = packet::ipv4_upper(frame)?;
    if ip.is_fragment() || proto != ip_proto::SCTP {
        return Err(PacketError::Unsupported {
            what: "IP protocol",
            value: proto.into(),
        });
    }
    let (h, chunks) = SctpRepr::parse(l4).map_err(malformed)?;
    wsctp::verify_checksum(l4).map_err(malformed)?;
    ChunkRepr::parse(chunks).map_err(malformed)?;
    Ok(SctpPkt {
        src: ip.src,
        dst: ip.dst,
        sport: h.src_port,
        dport: h.dst_port,
        vtag: h.verification_tag,
        chunks,
    })
}

/// Whether `frame` is an Ethernet IPv4 SCTP packet whose first chunk is an INIT, by a look at
/// a few bytes (most frames a director forwards are not: no parse for them).
pub fn is_init(frame: &[u8]) -> bool {
    let Some(&vihl) = frame.get(ETH_HDR) else {
        return false;
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    packet::ethertype(frame) == Some(ETHERTYPE_IPV4)
        && frame.get(ETH_HDR + 9) == Some(&ip_proto::SCTP)
        && frame.get(ETH_HDR + ihl + wsctp::HEADER_LEN) == Some(&chunk::INIT)
}

/// An Ethernet frame (MACs zero) of one SCTP packet of `chunks` (type, flags, value); `None`
/// when it would not fit an IPv4 packet.
pub fn frame(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    vtag: u32,
    chunks: &[(u8, u8, &[u8])],
) -> Option<Vec<u8>> {
    let reprs: Vec<ChunkRepr> = chunks
        .iter()
        .map(|&(kind, flags, value)| ChunkRepr {
            kind,
            flags,
            value_len: value.len(),
        })
        .collect();
    let h = SctpRepr {
        src_port: src.1,
        dst_port: dst.1,
        verification_tag: vtag,
        chunks_len: reprs.iter().map(ChunkRepr::buffer_len).sum(),
    };
    let ip = packet::ipv4_header(src.0, dst.0, ip_proto::SCTP, h.buffer_len());
    u16::try_from(ip.buffer_len()).ok()?;
    let mut f = vec![0u8; ETH_HDR + ip.buffer_len()];
    f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let l4 = ETH_HDR + ipv4::HEADER_LEN;
    let mut at = l4 + wsctp::HEADER_LEN;
    for (c, &(_, _, value)) in reprs.iter().zip(chunks) {
        let v = at + wsctp::CHUNK_HEADER_LEN;
        f[v..v + value.len()].copy_from_slice(value);
        c.emit(&mut f[at..]).ok()?;
        at += c.buffer_len();
    }
    h.emit(&mut f[l4..]).ok()?;
    ip.emit(&mut f[ETH_HDR..]).ok()?;
    Some(f)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The value of an INIT or INIT ACK: initiate tag, a_rwnd, streams, initial TSN, then
/// `cookie` as a State Cookie parameter when given.
fn init_value(tag: u32, tsn: u32, cookie: Option<&[u8]>) -> Vec<u8> {
    let mut v = Vec::with_capacity(INIT_FIXED + 4 + cookie.map_or(0, <[u8]>::len));
    v.extend_from_slice(&tag.to_be_bytes());
    v.extend_from_slice(&A_RWND.to_be_bytes());
    v.extend_from_slice(&STREAMS.0.to_be_bytes());
    v.extend_from_slice(&STREAMS.1.to_be_bytes());
    v.extend_from_slice(&tsn.to_be_bytes());
    if let Some(c) = cookie {
        let len = u16::try_from(4 + c.len()).unwrap_or(u16::MAX);
        v.extend_from_slice(&PARAM_STATE_COOKIE.to_be_bytes());
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(c);
    }
    v
}

/// The State Cookie parameter of an INIT ACK's value.
fn state_cookie(value: &[u8]) -> Option<&[u8]> {
    let mut rest = value.get(INIT_FIXED..)?;
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if len < 4 || len > rest.len() {
            return None;
        }
        if kind == PARAM_STATE_COOKIE {
            return Some(&rest[4..len]);
        }
        rest = rest.get((len + 3) & !3..).unwrap_or(&[]);
    }
    None
}

/// A DATA chunk's value: TSN, stream 0, sequence 0, PPID 0, then `data`.
fn data_value(tsn: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(DATA_FIXED + data.len());
    v.extend_from_slice(&tsn.to_be_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(data);
    v
}

/// A SACK's value: cumulative TSN ack, a_rwnd, no gaps, no duplicates.
fn sack_value(cum_tsn: u32) -> [u8; 12] {
    let mut v = [0u8; 12];
    v[..4].copy_from_slice(&cum_tsn.to_be_bytes());
    v[4..8].copy_from_slice(&A_RWND.to_be_bytes());
    v
}

/// The next retransmission timeout after one expired.
fn backoff(rto: Duration) -> Duration {
    (rto * 2).min(RTO_MAX)
}

/// Send an out-of-the-blue answer to `p` (RFC 9260 8.4): an ABORT for an INIT (tagged with
/// its initiate tag) or for most chunks (reflecting the packet's tag), a SHUTDOWN COMPLETE
/// for a SHUTDOWN ACK, nothing for an ABORT, a SHUTDOWN COMPLETE, a COOKIE ACK or an ERROR.
fn out_of_the_blue(now: Instant, p: &SctpPkt<'_>, stack: &mut Stack, fx: &mut Fx) -> bool {
    let Some((c, value)) = p.chunks().next() else {
        return false;
    };
    let (kind, flags, vtag) = match c.kind {
        chunk::ABORT | chunk::SHUTDOWN_COMPLETE | chunk::COOKIE_ACK | chunk::ERROR => return false,
        chunk::INIT => match be32(value, 0) {
            Some(tag) => (chunk::ABORT, 0, tag),
            None => return false,
        },
        chunk::SHUTDOWN_ACK => (chunk::SHUTDOWN_COMPLETE, T_BIT, p.vtag),
        _ => (chunk::ABORT, T_BIT, p.vtag),
    };
    if let Some(f) = frame(
        (p.dst, p.dport),
        (p.src, p.sport),
        vtag,
        &[(kind, flags, &[])],
    ) {
        stack.route(now, Some(p.dst.into()), p.src.into(), f, fx);
    }
    true
}

/// Whether an ABORT or SHUTDOWN COMPLETE with `flags` and tag `vtag` is for an association
/// whose own tag is `mine` and whose peer's is `peer` (RFC 9260 8.5.1).
fn tag_ok(flags: u8, vtag: u32, mine: u32, peer: u32) -> bool {
    if flags & T_BIT != 0 {
        vtag == peer
    } else {
        vtag == mine
    }
}

/// A nonzero tag mixed from `seed` (tags must not be 0).
fn tag_of(seed: u64) -> u32 {
    let mut x = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((x ^ (x >> 31)) as u32).max(1)
}

// ---------------------------------------------------------------------------------------
// Client side.

/// How an SCTP client asks: one association per request.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SctpSpec {
    /// The request's end if no answer came by then, whatever the association's phase.
    pub timeout: Duration,
}

/// Where a client's association is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// INIT sent (COOKIE-WAIT).
    CookieWait,
    /// COOKIE ECHO sent (COOKIE-ECHOED).
    CookieEchoed,
    /// ESTABLISHED, the request sent, the answer awaited.
    Established,
    /// The answer came; SHUTDOWN sent (SHUTDOWN-SENT).
    ShutdownSent,
}

#[derive(Clone, Debug)]
struct ClientAssoc {
    request: u64,
    started: Instant,
    port: u16,
    phase: Phase,
    tag: u32,
    peer_tag: u32,
    tsn: u32,
    peer_tsn: u32,
    cookie: Vec<u8>,
    /// The request is answered or failed (the association may still be shutting down).
    done: bool,
    give_up: Instant,
    rtx_at: Option<Instant>,
    rto: Duration,
    tries: u32,
}

/// How a client's request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEnd {
    /// Answered by the server that named itself so.
    Answered(Vec<u8>),
    /// The association was aborted before the answer: refused (before ESTABLISHED) or
    /// reset (after).
    Aborted {
        /// It was ESTABLISHED.
        established: bool,
    },
    /// No answer by the timeout (or retransmissions ran out).
    TimedOut {
        /// It was ESTABLISHED.
        established: bool,
    },
}

/// One request's end, for the client to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The client's request id.
    pub request: u64,
    /// When its INIT went.
    pub started: Instant,
    /// The client port.
    pub port: u16,
    /// How it ended.
    pub end: ClientEnd,
}

/// A client host's SCTP associations, by local port.
#[derive(Debug, Default)]
pub struct SctpClient {
    assocs: FxHashMap<u16, ClientAssoc>,
    by_request: FxHashMap<u64, u16>,
}

impl SctpClient {
    /// Requests not yet answered or failed.
    pub fn in_flight(&self) -> usize {
        self.assocs.values().filter(|a| !a.done).count()
    }

    /// Whether `port` is held by an association (shutting down ones included).
    pub fn holds(&self, port: u16) -> bool {
        self.assocs.contains_key(&port)
    }

    /// Start request `request` from `local:port` to `target`: an INIT with tag `tag` and
    /// initial TSN `tsn`.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        &mut self,
        now: Instant,
        request: u64,
        local: (Ipv4Addr, u16),
        target: SocketAddrV4,
        (tag, tsn): (u32, u32),
        spec: &SctpSpec,
        stack: &mut Stack,
        fx: &mut Fx,
    ) {
        let a = ClientAssoc {
            request,
            started: now,
            port: local.1,
            phase: Phase::CookieWait,
            tag: tag.max(1),
            peer_tag: 0,
            tsn,
            peer_tsn: 0,
            cookie: Vec::new(),
            done: false,
            give_up: now + spec.timeout,
            rtx_at: Some(now + RTO_INITIAL),
            rto: RTO_INITIAL,
            tries: 1,
        };
        self.send_current(now, local.0, target, &a, stack, fx);
        self.arm(&a, fx);
        self.by_request.insert(request, a.port);
        self.assocs.insert(a.port, a);
    }

    fn arm(&self, a: &ClientAssoc, fx: &mut Fx) {
        let at = match (a.done, a.rtx_at) {
            (true, r) => r,
            (false, Some(r)) => Some(r.min(a.give_up)),
            (false, None) => Some(a.give_up),
        };
        if let Some(at) = at {
            fx.timers.push((at, SCTP_TIMER | a.request));
        }
    }

    /// (Re)send what the association's phase sends.
    fn send_current(
        &self,
        now: Instant,
        local: Ipv4Addr,
        target: SocketAddrV4,
        a: &ClientAssoc,
        stack: &mut Stack,
        fx: &mut Fx,
    ) {
        let (vtag, kind, flags, value) = match a.phase {
            Phase::CookieWait => (0, chunk::INIT, 0, init_value(a.tag, a.tsn, None)),
            Phase::CookieEchoed => (a.peer_tag, chunk::COOKIE_ECHO, 0, a.cookie.clone()),
            Phase::Established => (
                a.peer_tag,
                chunk::DATA,
                DATA_WHOLE,
                data_value(a.tsn, &a.request.to_be_bytes()),
            ),
            Phase::ShutdownSent => (
                a.peer_tag,
                chunk::SHUTDOWN,
                0,
                a.peer_tsn.to_be_bytes().to_vec(),
            ),
        };
        let src = (local, a.port);
        let dst = (*target.ip(), target.port());
        if let Some(f) = frame(src, dst, vtag, &[(kind, flags, &value)]) {
            stack.route(now, Some(local.into()), (*target.ip()).into(), f, fx);
        }
    }

    fn abort(
        now: Instant,
        local: Ipv4Addr,
        target: SocketAddrV4,
        a: &ClientAssoc,
        stack: &mut Stack,
        fx: &mut Fx,
    ) {
        let src = (local, a.port);
        let dst = (*target.ip(), target.port());
        if let Some(f) = frame(src, dst, a.peer_tag, &[(chunk::ABORT, 0, &[])]) {
            stack.route(now, Some(local.into()), (*target.ip()).into(), f, fx);
        }
    }

    fn remove(&mut self, port: u16) -> Option<ClientAssoc> {
        let a = self.assocs.remove(&port)?;
        self.by_request.remove(&a.request);
        Some(a)
    }

    /// An SCTP timer (token [`SCTP_TIMER`] | request) fired: give up, retransmit, or nothing
    /// (a stale timer).
    pub fn on_timer(
        &mut self,
        now: Instant,
        token: u64,
        local: Ipv4Addr,
        target: SocketAddrV4,
        stack: &mut Stack,
        fx: &mut Fx,
    ) -> Option<Finished> {
        let request = token & !SCTP_TIMER;
        let port = *self.by_request.get(&request)?;
        let mut a = self.assocs.get(&port)?.clone();
        if !a.done && now >= a.give_up {
            let established = matches!(a.phase, Phase::Established | Phase::ShutdownSent);
            if a.phase != Phase::CookieWait {
                Self::abort(now, local, target, &a, stack, fx);
            }
            self.remove(port);
            return Some(Finished {
                request,
                started: a.started,
                port,
                end: ClientEnd::TimedOut { established },
            });
        }
        if a.rtx_at.is_none_or(|r| now < r) {
            return None;
        }
        let limit = match a.phase {
            Phase::CookieWait | Phase::CookieEchoed => MAX_INIT_RETRANSMITS,
            Phase::Established | Phase::ShutdownSent => ASSOC_MAX_RETRANS,
        };
        if a.tries > limit {
            // Retransmissions ran out: the association fails (and says so to the peer once
            // it knows one).
            if a.phase != Phase::CookieWait {
                Self::abort(now, local, target, &a, stack, fx);
            }
            self.remove(port);
            let established = matches!(a.phase, Phase::Established | Phase::ShutdownSent);
            return (!a.done).then_some(Finished {
                request,
                started: a.started,
                port,
                end: ClientEnd::TimedOut { established },
            });
        }
        a.tries += 1;
        a.rto = backoff(a.rto);
        a.rtx_at = Some(now + a.rto);
        self.send_current(now, local, target, &a, stack, fx);
        self.arm(&a, fx);
        self.assocs.insert(port, a);
        None
    }

    /// An SCTP packet for this host arrived from `target`.
    pub fn on_packet(
        &mut self,
        now: Instant,
        p: &SctpPkt<'_>,
        target: SocketAddrV4,
        stack: &mut Stack,
        fx: &mut Fx,
    ) -> Option<Finished> {
        if p.src != *target.ip() || p.sport != target.port() {
            return None;
        }
        let Some(mut a) = self.assocs.get(&p.dport).cloned() else {
            out_of_the_blue(now, p, stack, fx);
            return None;
        };
        let local = p.dst;
        let mut finished = None;
        for (c, value) in p.chunks() {
            if c.kind == chunk::ABORT {
                if !tag_ok(c.flags, p.vtag, a.tag, a.peer_tag) {
                    return None;
                }
                self.remove(a.port);
                let established = matches!(a.phase, Phase::Established | Phase::ShutdownSent);
                return (!a.done).then_some(Finished {
                    request: a.request,
                    started: a.started,
                    port: a.port,
                    end: ClientEnd::Aborted { established },
                });
            }
            if p.vtag != a.tag {
                return None; // not this association's (RFC 9260 8.5)
            }
            match (c.kind, a.phase) {
                (chunk::INIT_ACK, Phase::CookieWait) => {
                    let (Some(peer_tag), Some(peer_tsn), Some(cookie)) =
                        (be32(value, 0), be32(value, 12), state_cookie(value))
                    else {
                        return None;
                    };
                    a.peer_tag = peer_tag;
                    a.peer_tsn = peer_tsn;
                    a.cookie = cookie.to_vec();
                    a.phase = Phase::CookieEchoed;
                    self.restart(now, local, target, &mut a, stack, fx);
                }
                (chunk::COOKIE_ACK, Phase::CookieEchoed) => {
                    a.phase = Phase::Established;
                    self.restart(now, local, target, &mut a, stack, fx);
                }
                (chunk::SACK, Phase::Established) if be32(value, 0) == Some(a.tsn) => {
                    a.rtx_at = None;
                }
                (chunk::DATA, Phase::Established) => {
                    let tsn = be32(value, 0)?;
                    let name = value.get(DATA_FIXED + REQUEST_ID..).unwrap_or(&[]);
                    let echoed = value.get(DATA_FIXED..DATA_FIXED + REQUEST_ID);
                    if echoed != Some(&a.request.to_be_bytes()[..]) {
                        continue;
                    }
                    a.peer_tsn = tsn;
                    a.done = true;
                    finished = Some(Finished {
                        request: a.request,
                        started: a.started,
                        port: a.port,
                        end: ClientEnd::Answered(name.to_vec()),
                    });
                    // The answer read, the socket closes: SHUTDOWN (its cumulative TSN ack
                    // acknowledges the answer).
                    a.phase = Phase::ShutdownSent;
                    self.restart(now, local, target, &mut a, stack, fx);
                }
                (chunk::DATA, Phase::ShutdownSent) => {
                    // The answer again: the SHUTDOWN was lost; it goes again.
                    self.send_current(now, local, target, &a, stack, fx);
                }
                (chunk::SHUTDOWN_ACK, Phase::ShutdownSent) => {
                    let src = (local, a.port);
                    let dst = (*target.ip(), target.port());
                    let done = [(chunk::SHUTDOWN_COMPLETE, 0, &[][..])];
                    if let Some(f) = frame(src, dst, a.peer_tag, &done) {
                        stack.route(now, Some(local.into()), (*target.ip()).into(), f, fx);
                    }
                    self.remove(a.port);
                    return finished;
                }
                _ => {}
            }
        }
        self.assocs.insert(a.port, a);
        finished
    }

    /// A new phase: its chunk goes out with a fresh retransmission timer.
    fn restart(
        &self,
        now: Instant,
        local: Ipv4Addr,
        target: SocketAddrV4,
        a: &mut ClientAssoc,
        stack: &mut Stack,
        fx: &mut Fx,
    ) {
        a.tries = 1;
        a.rto = RTO_INITIAL;
        a.rtx_at = Some(now + a.rto);
        self.send_current(now, local, target, a, stack, fx);
        self.arm(a, fx);
    }
}

// ---------------------------------------------------------------------------------------
// Server side.

/// A listener's view of the services: whether one is listening on a port, and its
/// associations in service against its capacity.
pub trait Listeners {
    /// The service time of the running SCTP service on `port`, if any.
    fn service_time(&self, port: u16) -> Option<Duration>;
    /// Take one place of the running SCTP service on `port` (false when it is full).
    fn take(&mut self, port: u16) -> bool;
    /// Give one back.
    fn release(&mut self, port: u16);
    /// The server's name, which its answers carry.
    fn name(&self) -> &[u8];
}

type Key = (Ipv4Addr, u16, Ipv4Addr, u16);

/// What a server association has in flight.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Outstanding {
    /// Nothing.
    Nothing,
    /// The answer, until SACKed.
    Answer,
    /// The SHUTDOWN ACK, until the SHUTDOWN COMPLETE.
    ShutdownAck,
}

#[derive(Clone, Debug)]
struct ServerAssoc {
    key: Key,
    tag: u32,
    peer_tag: u32,
    tsn: u32,
    peer_tsn: u32,
    request: Option<[u8; REQUEST_ID]>,
    answer_at: Option<Instant>,
    sack_at: Option<Instant>,
    outstanding: Outstanding,
    rtx_at: Option<Instant>,
    rto: Duration,
    tries: u32,
}

/// SCTP counters of a real server.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SctpServerStats {
    /// Associations set up (COOKIE ECHO accepted).
    pub associations: u64,
    /// Requests answered.
    pub served: u64,
    /// ABORTs sent for an INIT with nothing listening.
    pub refused: u64,
    /// ABORTs sent for a COOKIE ECHO at the capacity.
    pub full: u64,
}

/// The answer's DATA value: the request id it echoes and the server's `name`.
fn answer(a: &ServerAssoc, name: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(REQUEST_ID + name.len());
    body.extend_from_slice(&a.request.unwrap_or_default());
    body.extend_from_slice(name);
    data_value(a.tsn, &body)
}

/// A real server's SCTP associations.
#[derive(Debug, Default)]
pub struct SctpServer {
    assocs: FxHashMap<u64, ServerAssoc>,
    by_key: FxHashMap<Key, u64>,
    next_id: u64,
    /// Counters.
    pub stats: SctpServerStats,
}

impl SctpServer {
    /// Associations held.
    pub fn associations(&self) -> usize {
        self.assocs.len()
    }

    /// The service on `port` stopped: its associations go with the process.
    pub fn drop_port(&mut self, port: u16) {
        self.assocs.retain(|_, a| a.key.3 != port);
        self.by_key.retain(|k, _| k.3 != port);
    }

    fn send(
        now: Instant,
        a: &ServerAssoc,
        chunks: &[(u8, u8, &[u8])],
        stack: &mut Stack,
        fx: &mut Fx,
    ) {
        let (client, cport, local, port) = a.key;
        if let Some(f) = frame((local, port), (client, cport), a.peer_tag, chunks) {
            stack.route(now, Some(local.into()), client.into(), f, fx);
        }
    }

    fn arm(id: u64, at: Option<Instant>, fx: &mut Fx) {
        if let Some(at) = at {
            fx.timers.push((at, SCTP_TIMER | id));
        }
    }

    fn remove(&mut self, id: u64, listeners: &mut dyn Listeners) {
        if let Some(a) = self.assocs.remove(&id) {
            self.by_key.remove(&a.key);
            listeners.release(a.key.3);
        }
    }

    /// An SCTP packet for a local address arrived.
    pub fn on_packet(
        &mut self,
        now: Instant,
        p: &SctpPkt<'_>,
        listeners: &mut dyn Listeners,
        stack: &mut Stack,
        fx: &mut Fx,
    ) {
        let key: Key = (p.src, p.sport, p.dst, p.dport);
        let Some((first, value)) = p.chunks().next() else {
            return;
        };
        let listening = listeners.service_time(p.dport).is_some();
        match first.kind {
            chunk::INIT => {
                if p.vtag != 0 {
                    return;
                }
                if !listening {
                    if out_of_the_blue(now, p, stack, fx) {
                        self.stats.refused += 1;
                    }
                    return;
                }
                let (Some(peer_tag), Some(peer_tsn)) = (be32(value, 0), be32(value, 12)) else {
                    return;
                };
                // Stateless until the COOKIE ECHO (RFC 9260 5.1.3): the tags and TSNs ride in
                // the cookie. An INIT on a live association answers with its tags.
                let (tag, tsn) = match self.by_key.get(&key).and_then(|i| self.assocs.get(i)) {
                    Some(a) => (a.tag, a.tsn),
                    None => {
                        self.next_id += 1;
                        let seed = u64::from(peer_tag) << 32 | self.next_id;
                        (tag_of(seed), tag_of(seed ^ 0x5bd1_e995))
                    }
                };
                let mut cookie = Vec::with_capacity(16);
                for x in [tag, tsn, peer_tag, peer_tsn] {
                    cookie.extend_from_slice(&x.to_be_bytes());
                }
                let v = init_value(tag, tsn, Some(&cookie));
                let (client, cport, local, port) = key;
                if let Some(f) = frame(
                    (local, port),
                    (client, cport),
                    peer_tag,
                    &[(chunk::INIT_ACK, 0, &v)],
                ) {
                    stack.route(now, Some(local.into()), client.into(), f, fx);
                }
            }
            chunk::COOKIE_ECHO => {
                let (Some(tag), Some(tsn), Some(peer_tag), Some(peer_tsn)) = (
                    be32(value, 0),
                    be32(value, 4),
                    be32(value, 8),
                    be32(value, 12),
                ) else {
                    return;
                };
                if p.vtag != tag {
                    return; // a cookie not made for this packet: discarded
                }
                if let Some(a) = self.by_key.get(&key).and_then(|i| self.assocs.get(i)) {
                    // The COOKIE ACK was lost: again.
                    Self::send(now, a, &[(chunk::COOKIE_ACK, 0, &[])], stack, fx);
                    return;
                }
                if !listening {
                    out_of_the_blue(now, p, stack, fx);
                    return;
                }
                let a = ServerAssoc {
                    key,
                    tag,
                    peer_tag,
                    tsn,
                    peer_tsn,
                    request: None,
                    answer_at: None,
                    sack_at: None,
                    outstanding: Outstanding::Nothing,
                    rtx_at: None,
                    rto: RTO_INITIAL,
                    tries: 0,
                };
                if !listeners.take(p.dport) {
                    self.stats.full += 1;
                    Self::send(now, &a, &[(chunk::ABORT, 0, &[])], stack, fx);
                    return;
                }
                self.stats.associations += 1;
                Self::send(now, &a, &[(chunk::COOKIE_ACK, 0, &[])], stack, fx);
                self.next_id += 1;
                let id = self.next_id;
                self.by_key.insert(key, id);
                self.assocs.insert(id, a);
            }
            _ => {
                let Some(&id) = self.by_key.get(&key) else {
                    out_of_the_blue(now, p, stack, fx);
                    return;
                };
                self.on_chunks(now, id, p, listeners, stack, fx);
            }
        }
    }

    fn on_chunks(
        &mut self,
        now: Instant,
        id: u64,
        p: &SctpPkt<'_>,
        listeners: &mut dyn Listeners,
        stack: &mut Stack,
        fx: &mut Fx,
    ) {
        let Some(mut a) = self.assocs.get(&id).cloned() else {
            return;
        };
        for (c, value) in p.chunks() {
            match c.kind {
                chunk::ABORT => {
                    if tag_ok(c.flags, p.vtag, a.tag, a.peer_tag) {
                        self.remove(id, listeners);
                    }
                    return;
                }
                chunk::SHUTDOWN_COMPLETE => {
                    if tag_ok(c.flags, p.vtag, a.tag, a.peer_tag) {
                        self.remove(id, listeners);
                    }
                    return;
                }
                _ if p.vtag != a.tag => return,
                chunk::DATA => {
                    let (Some(tsn), Some(req)) = (be32(value, 0), value.get(DATA_FIXED..)) else {
                        return;
                    };
                    if a.request.is_some() || tsn != a.peer_tsn {
                        // A retransmission: SACKed at once (Linux answers a duplicate TSN
                        // without delay).
                        let sack = sack_value(a.peer_tsn);
                        Self::send(now, &a, &[(chunk::SACK, 0, &sack)], stack, fx);
                        continue;
                    }
                    let mut r = [0u8; REQUEST_ID];
                    let n = req.len().min(REQUEST_ID);
                    r[..n].copy_from_slice(&req[..n]);
                    a.request = Some(r);
                    let service = listeners.service_time(a.key.3).unwrap_or_default();
                    a.answer_at = Some(now + service);
                    a.sack_at = Some(now + SACK_TIMEOUT);
                    Self::arm(id, a.answer_at, fx);
                    if service > SACK_TIMEOUT {
                        Self::arm(id, a.sack_at, fx);
                    }
                }
                chunk::SACK
                    if a.outstanding == Outstanding::Answer && be32(value, 0) == Some(a.tsn) =>
                {
                    a.outstanding = Outstanding::Nothing;
                    a.rtx_at = None;
                }
                chunk::SHUTDOWN => {
                    // Its cumulative TSN ack acknowledges the answer (the client shuts down
                    // once it has read it).
                    a.answer_at = None;
                    a.sack_at = None;
                    a.outstanding = Outstanding::ShutdownAck;
                    a.tries = 1;
                    a.rto = RTO_INITIAL;
                    a.rtx_at = Some(now + a.rto);
                    Self::send(now, &a, &[(chunk::SHUTDOWN_ACK, 0, &[])], stack, fx);
                    Self::arm(id, a.rtx_at, fx);
                }
                _ => {}
            }
        }
        self.assocs.insert(id, a);
    }

    /// An SCTP timer (token [`SCTP_TIMER`] | association) fired: what is due goes out.
    pub fn on_timer(
        &mut self,
        now: Instant,
        token: u64,
        listeners: &mut dyn Listeners,
        stack: &mut Stack,
        fx: &mut Fx,
    ) {
        let id = token & !SCTP_TIMER;
        let Some(mut a) = self.assocs.get(&id).cloned() else {
            return;
        };
        if a.answer_at.is_some_and(|t| t <= now) {
            a.answer_at = None;
            let data = answer(&a, listeners.name());
            let sack = sack_value(a.peer_tsn);
            if a.sack_at.take().is_some() {
                let chunks = [
                    (chunk::SACK, 0, &sack[..]),
                    (chunk::DATA, DATA_WHOLE, &data[..]),
                ];
                Self::send(now, &a, &chunks, stack, fx);
            } else {
                Self::send(now, &a, &[(chunk::DATA, DATA_WHOLE, &data)], stack, fx);
            }
            self.stats.served += 1;
            a.outstanding = Outstanding::Answer;
            a.tries = 1;
            a.rto = RTO_INITIAL;
            a.rtx_at = Some(now + a.rto);
            Self::arm(id, a.rtx_at, fx);
        }
        if a.sack_at.is_some_and(|t| t <= now) {
            a.sack_at = None;
            let sack = sack_value(a.peer_tsn);
            Self::send(now, &a, &[(chunk::SACK, 0, &sack)], stack, fx);
        }
        if a.rtx_at.is_some_and(|t| t <= now) {
            if a.tries > ASSOC_MAX_RETRANS {
                Self::send(now, &a, &[(chunk::ABORT, 0, &[])], stack, fx);
                self.remove(id, listeners);
                return;
            }
            a.tries += 1;
            a.rto = backoff(a.rto);
            a.rtx_at = Some(now + a.rto);
            match a.outstanding {
                Outstanding::Answer => {
                    let data = answer(&a, listeners.name());
                    Self::send(now, &a, &[(chunk::DATA, DATA_WHOLE, &data)], stack, fx);
                }
                Outstanding::ShutdownAck => {
                    Self::send(now, &a, &[(chunk::SHUTDOWN_ACK, 0, &[])], stack, fx);
                }
                Outstanding::Nothing => a.rtx_at = None,
            }
            Self::arm(id, a.rtx_at, fx);
        }
        self.assocs.insert(id, a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::{IfaceSpec, Rx};

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

    /// One SCTP listener on port 3868.
    struct Peer {
        running: bool,
        service: Duration,
        capacity: u32,
        held: u32,
    }

    impl Listeners for Peer {
        fn service_time(&self, port: u16) -> Option<Duration> {
            (port == 3868 && self.running).then_some(self.service)
        }
        fn take(&mut self, _: u16) -> bool {
            let ok = self.held < self.capacity;
            self.held += u32::from(ok);
            ok
        }
        fn release(&mut self, _: u16) {
            self.held -= 1;
        }
        fn name(&self) -> &[u8] {
            b"rs1"
        }
    }

    /// A client and a real server (the VIP on its lo) on one segment; `drop_to_server`
    /// loses everything the client sends.
    struct Net {
        cs: Stack,
        ss: Stack,
        client: SctpClient,
        server: SctpServer,
        peer: Peer,
        timers: Vec<(Instant, u64, bool)>,
        /// (time, from the client, first chunk type) of every packet delivered or lost.
        seen: Vec<(Instant, bool, u8)>,
        finished: Vec<(Instant, Finished)>,
        drop_to_server: bool,
        /// The last SCTP frame the server sent.
        last_from_server: Vec<u8>,
    }

    fn net(peer: Peer) -> Net {
        let mut ss = Stack::new(vec![IfaceSpec::new("eth0", [2; 6], SERVER, 24)]);
        ss.set_lo(vec![VIP.into()]);
        Net {
            cs: Stack::new(vec![IfaceSpec::new("eth0", [1; 6], CLIENT, 24)]),
            ss,
            client: SctpClient::default(),
            server: SctpServer::default(),
            peer,
            timers: Vec::new(),
            seen: Vec::new(),
            finished: Vec::new(),
            drop_to_server: false,
            last_from_server: Vec::new(),
        }
    }

    const TARGET: SocketAddrV4 = SocketAddrV4::new(VIP, 3868);

    impl Net {
        /// Deliver frames both ways until none is left; file the timers.
        fn pump(&mut self, now: Instant, mut cfx: Fx, mut sfx: Fx) {
            while !cfx.tx.is_empty() || !sfx.tx.is_empty() {
                for (_, f) in std::mem::take(&mut cfx.tx) {
                    let sctp = parse_sctp(&f).ok().and_then(|p| p.first());
                    if let Some(k) = sctp {
                        self.seen.push((now, true, k));
                        if self.drop_to_server {
                            continue;
                        }
                    }
                    if self.ss.receive(now, 0, &f, &mut sfx) == Rx::Local {
                        let p = parse_sctp(&f).expect("an SCTP packet with its CRC32c");
                        self.server
                            .on_packet(now, &p, &mut self.peer, &mut self.ss, &mut sfx);
                    }
                }
                for (_, f) in std::mem::take(&mut sfx.tx) {
                    if let Some(k) = parse_sctp(&f).ok().and_then(|p| p.first()) {
                        self.seen.push((now, false, k));
                        self.last_from_server = f.clone();
                    }
                    if self.cs.receive(now, 0, &f, &mut cfx) == Rx::Local {
                        let p = parse_sctp(&f).expect("an SCTP packet with its CRC32c");
                        let (cs, client) = (&mut self.cs, &mut self.client);
                        if let Some(done) = client.on_packet(now, &p, TARGET, cs, &mut cfx) {
                            self.finished.push((now, done));
                        }
                    }
                }
                for (fx, server) in [(&mut cfx, false), (&mut sfx, true)] {
                    for (at, token) in fx.timers.drain(..) {
                        if token & SCTP_TIMER != 0 {
                            self.timers.push((at, token, server));
                        }
                    }
                }
            }
        }

        fn open(&mut self, now: Instant, timeout: Duration) {
            let mut cfx = Fx::default();
            let spec = SctpSpec { timeout };
            let (cs, client) = (&mut self.cs, &mut self.client);
            client.open(
                now,
                1,
                (CLIENT, 40000),
                TARGET,
                (0xabcd, 77),
                &spec,
                cs,
                &mut cfx,
            );
            self.pump(now, cfx, Fx::default());
        }

        /// Run the timers until `until`.
        fn run(&mut self, until: Instant) {
            self.timers.sort();
            while let Some(&(at, token, server)) = self.timers.first() {
                if at > until {
                    break;
                }
                self.timers.remove(0);
                let (mut cfx, mut sfx) = (Fx::default(), Fx::default());
                if server {
                    self.server
                        .on_timer(at, token, &mut self.peer, &mut self.ss, &mut sfx);
                } else {
                    let (cs, client) = (&mut self.cs, &mut self.client);
                    if let Some(done) = client.on_timer(at, token, CLIENT, TARGET, cs, &mut cfx) {
                        self.finished.push((at, done));
                    }
                }
                self.pump(at, cfx, sfx);
                self.timers.sort();
            }
        }
    }

    fn peer(running: bool, capacity: u32) -> Peer {
        Peer {
            running,
            service: Duration::from_millis(5),
            capacity,
            held: 0,
        }
    }

    #[test]
    fn one_request_is_a_whole_association() {
        let mut n = net(peer(true, 10));
        let t0 = Instant::from_secs(1);
        n.open(t0, Duration::from_secs(10));
        n.run(Instant::from_secs(30));
        let chunks: Vec<(bool, u8)> = n.seen.iter().map(|s| (s.1, s.2)).collect();
        assert_eq!(
            chunks,
            [
                (true, chunk::INIT),
                (false, chunk::INIT_ACK),
                (true, chunk::COOKIE_ECHO),
                (false, chunk::COOKIE_ACK),
                (true, chunk::DATA),
                // The answer 5 ms later, before the 200 ms delayed SACK: bundled behind it.
                (false, chunk::SACK),
                (true, chunk::SHUTDOWN),
                (false, chunk::SHUTDOWN_ACK),
                (true, chunk::SHUTDOWN_COMPLETE),
            ]
        );
        let answer = n.seen[5].0;
        assert_eq!(answer, t0 + Duration::from_millis(5));
        assert_eq!(
            n.finished,
            [(
                answer,
                Finished {
                    request: 1,
                    started: t0,
                    port: 40000,
                    end: ClientEnd::Answered(b"rs1".to_vec()),
                }
            )]
        );
        assert_eq!((n.server.associations(), n.peer.held), (0, 0));
        assert!(!n.client.holds(40000));
        assert_eq!((n.server.stats.associations, n.server.stats.served), (1, 1));
    }

    #[test]
    fn a_slow_answer_is_sacked_after_200_ms() {
        let mut n = net(Peer {
            service: Duration::from_secs(1),
            ..peer(true, 10)
        });
        let t0 = Instant::from_secs(1);
        n.open(t0, Duration::from_secs(10));
        n.run(Instant::from_secs(30));
        let from_server: Vec<(Instant, u8)> =
            n.seen.iter().filter(|s| !s.1).map(|s| (s.0, s.2)).collect();
        assert_eq!(from_server[2], (t0 + SACK_TIMEOUT, chunk::SACK));
        assert_eq!(from_server[3], (t0 + Duration::from_secs(1), chunk::DATA));
        assert!(matches!(n.finished[0].1.end, ClientEnd::Answered(_)));
    }

    #[test]
    fn nothing_listening_aborts_the_init_and_the_client_is_refused() {
        let mut n = net(peer(false, 10));
        let t0 = Instant::from_secs(1);
        n.open(t0, Duration::from_secs(10));
        let chunks: Vec<(bool, u8)> = n.seen.iter().map(|s| (s.1, s.2)).collect();
        assert_eq!(chunks, [(true, chunk::INIT), (false, chunk::ABORT)]);
        let init = frame((CLIENT, 1), (VIP, 2), 0, &[(chunk::INIT, 0, &[0; 16])]).unwrap();
        let abort = frame((VIP, 2), (CLIENT, 1), 7, &[(chunk::ABORT, 0, &[])]).unwrap();
        assert!(is_init(&init) && !is_init(&abort) && !is_init(&init[..40]));
        assert_eq!(n.server.stats.refused, 1);
        assert_eq!(
            n.finished[0].1.end,
            ClientEnd::Aborted { established: false }
        );
        // The full accept queue: the COOKIE ECHO is answered with an ABORT.
        let mut n = net(peer(true, 0));
        n.open(t0, Duration::from_secs(10));
        assert_eq!(n.seen.last().map(|s| s.2), Some(chunk::ABORT));
        assert_eq!(n.server.stats.full, 1);
        assert_eq!(
            n.finished[0].1.end,
            ClientEnd::Aborted { established: false }
        );
    }

    #[test]
    fn an_unanswered_init_goes_at_rto_initial_doubling_until_the_timeout() {
        let mut n = net(peer(true, 10));
        n.drop_to_server = true;
        let t0 = Instant::from_secs(1);
        n.open(t0, Duration::from_secs(30));
        n.run(Instant::from_secs(60));
        let inits: Vec<Duration> = n
            .seen
            .iter()
            .filter(|s| s.1 && s.2 == chunk::INIT)
            .map(|s| s.0.saturating_duration_since(t0))
            .collect();
        let secs = |v: &[u64]| {
            v.iter()
                .map(|&s| Duration::from_secs(s))
                .collect::<Vec<_>>()
        };
        assert_eq!(inits, secs(&[0, 3, 9, 21]));
        assert_eq!(
            n.finished,
            [(
                t0 + Duration::from_secs(30),
                Finished {
                    request: 1,
                    started: t0,
                    port: 40000,
                    end: ClientEnd::TimedOut { established: false },
                }
            )]
        );
        assert!(!n.client.holds(40000));
    }

    #[test]
    fn a_chunk_of_a_forgotten_association_is_aborted_with_the_t_bit() {
        let mut n = net(peer(true, 10));
        let t0 = Instant::from_secs(1);
        // A DATA for an association the server does not hold (its process restarted).
        let f = frame(
            (CLIENT, 40001),
            (VIP, 3868),
            0x1234,
            &[(chunk::DATA, 3, &[0; 16])],
        )
        .expect("fits");
        let p = parse_sctp(&f).unwrap();
        let mut sfx = Fx::default();
        n.server.on_packet(t0, &p, &mut n.peer, &mut n.ss, &mut sfx);
        // Resolve the client's MAC first: the ABORT waits in the neighbour queue.
        n.pump(t0, Fx::default(), sfx);
        let abort = parse_sctp(&n.last_from_server).expect("answered");
        let (c, _) = abort.chunks().next().unwrap();
        assert_eq!((c.kind, c.flags, abort.vtag), (chunk::ABORT, T_BIT, 0x1234));
        assert_eq!((abort.src, abort.sport, abort.dport), (VIP, 3868, 40001));
    }
}
