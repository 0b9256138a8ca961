//! TCP (RFC 9293): the header fields the data plane and the simulator read, and the
//! hand-written reader / writer of IPv4 segments the simulator exchanges.

use std::net::{IpAddr, Ipv4Addr};

use super::{be16, be32, checksum, ethernet, ip_proto, ipv4, need, room, WireError};

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// The flags byte of a TCP header (byte 13).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;

    /// FIN set.
    #[inline(always)]
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    /// SYN set.
    #[inline(always)]
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// RST set.
    #[inline(always)]
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    /// PSH set.
    #[inline(always)]
    pub fn psh(self) -> bool {
        self.0 & Self::PSH != 0
    }
    /// ACK set.
    #[inline(always)]
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// A TCP header. Options are skipped on parse (their length is kept) and emitted as zero
/// bytes (end of option list).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags (byte 13).
    pub flags: TcpFlags,
    /// Window.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Header length in bytes (data offset × 4), options included.
    pub header_len: usize,
    /// Bytes after the header.
    pub payload_len: usize,
}

impl TcpRepr {
    /// Read a header with etherparse's checks: 20 bytes, data offset >= 5, the header
    /// within `segment`. The checksum is not checked ([`verify_checksum`]).
    pub fn parse(segment: &[u8]) -> Result<(TcpRepr, &[u8]), WireError> {
        let header_len = header_len(segment)?;
        Ok((
            TcpRepr {
                src_port: be16(segment, 0),
                dst_port: be16(segment, 2),
                seq: be32(segment, 4),
                ack: be32(segment, 8),
                flags: TcpFlags(segment[13]),
                window: be16(segment, 14),
                urgent: be16(segment, 18),
                header_len,
                payload_len: segment.len() - header_len,
            },
            &segment[header_len..],
        ))
    }

    /// Bytes of header and payload.
    pub const fn buffer_len(&self) -> usize {
        self.header_len + self.payload_len
    }

    /// Write the header at the start of `buf`, whose bytes after it already hold the
    /// payload, with the checksum over `src` → `dst`.
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr) -> Result<(), WireError> {
        if self.header_len < HEADER_LEN
            || self.header_len > 60
            || !self.header_len.is_multiple_of(4)
        {
            return Err(WireError::Malformed {
                layer: "TCP header",
                reason: "header length not a multiple of 4 in 20..=60",
            });
        }
        room("TCP segment", buf, self.buffer_len())?;
        let b = &mut buf[..self.buffer_len()];
        b[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        b[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        b[4..8].copy_from_slice(&self.seq.to_be_bytes());
        b[8..12].copy_from_slice(&self.ack.to_be_bytes());
        b[12] = ((self.header_len / 4) as u8) << 4;
        b[13] = self.flags.0;
        b[14..16].copy_from_slice(&self.window.to_be_bytes());
        b[16..18].fill(0);
        b[18..20].copy_from_slice(&self.urgent.to_be_bytes());
        b[HEADER_LEN..self.header_len].fill(0);
        let sum = checksum::tcp(src, dst, b);
        b[16..18].copy_from_slice(&sum.to_be_bytes());
        Ok(())
    }
}

/// The header length of `segment` if it passes etherparse's checks.
#[inline]
fn header_len(segment: &[u8]) -> Result<usize, WireError> {
    need("TCP header", segment, HEADER_LEN)?;
    let len = usize::from(segment[12] >> 4) * 4;
    if len < HEADER_LEN {
        return Err(WireError::Malformed {
            layer: "TCP header",
            reason: "data offset below 5",
        });
    }
    need("TCP header", segment, len)?;
    Ok(len)
}

/// Check the checksum of `segment` from `src` to `dst`.
pub fn verify_checksum(src: IpAddr, dst: IpAddr, segment: &[u8]) -> Result<(), WireError> {
    need("TCP header", segment, HEADER_LEN)?;
    let got = be16(segment, 16);
    let expected = checksum::tcp(src, dst, segment);
    if got != expected {
        return Err(WireError::Checksum {
            layer: "TCP",
            got,
            expected,
        });
    }
    Ok(())
}

/// Recompute the checksum of `segment` in place.
pub fn fill_checksum(segment: &mut [u8], src: IpAddr, dst: IpAddr) {
    if segment.len() < HEADER_LEN {
        return;
    }
    let sum = checksum::tcp(src, dst, segment);
    segment[16..18].copy_from_slice(&sum.to_be_bytes());
}

/// A TCP segment over IPv4 with no options in either header: the frames the simulator's
/// hosts exchange. Built and read by hand, the hottest code of a simulated hour
/// (etherparse's header structs and checks cost several hundred instructions a frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4Segment<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (written only with ACK set).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Payload.
    pub payload: &'a [u8],
}

/// Length of the Ethernet, IPv4 and TCP headers of an [`Ipv4Segment`] frame.
pub const SEGMENT_HEADERS: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + HEADER_LEN;

impl Ipv4Segment<'_> {
    /// The Ethernet frame carrying this segment, MAC addresses zero (the sender fills them
    /// in once the next hop is resolved): IPv4 with DF, TTL 64, window 65535, as
    /// etherparse's `PacketBuilder` makes it. A payload too large for IPv4 gets, like the
    /// builder that came before, no IPv4 header and a zero TCP checksum.
    pub fn to_unaddressed_frame(&self) -> Vec<u8> {
        let mut h = [0u8; SEGMENT_HEADERS];
        h[12..14].copy_from_slice(&ethernet::ethertype::IPV4.to_be_bytes());
        let tcp_len = HEADER_LEN + self.payload.len();

        let t = &mut h[ethernet::HEADER_LEN + ipv4::HEADER_LEN..];
        t[0..2].copy_from_slice(&self.sport.to_be_bytes());
        t[2..4].copy_from_slice(&self.dport.to_be_bytes());
        t[4..8].copy_from_slice(&self.seq.to_be_bytes());
        if self.flags.ack() {
            t[8..12].copy_from_slice(&self.ack.to_be_bytes());
        }
        t[12] = 5 << 4;
        t[13] = self.flags.0 & 0x1f;
        t[14..16].copy_from_slice(&u16::MAX.to_be_bytes());

        let Ok(total_len) = u16::try_from(ipv4::HEADER_LEN + tcp_len) else {
            let mut f = Vec::with_capacity(ethernet::HEADER_LEN + tcp_len);
            f.extend_from_slice(&h[..ethernet::HEADER_LEN]);
            f.extend_from_slice(&h[ethernet::HEADER_LEN + ipv4::HEADER_LEN..]);
            f.extend_from_slice(self.payload);
            return f;
        };

        let ip = &mut h[ethernet::HEADER_LEN..ethernet::HEADER_LEN + ipv4::HEADER_LEN];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total_len.to_be_bytes());
        ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = ip_proto::TCP;
        ip[12..16].copy_from_slice(&self.src.octets());
        ip[16..20].copy_from_slice(&self.dst.octets());
        let ip_sum = checksum::ipv4_header(ip);
        ip[10..12].copy_from_slice(&ip_sum.to_be_bytes());

        let pseudo = checksum::pseudo_v4(self.src, self.dst, ip_proto::TCP, tcp_len as u32);
        let t = &mut h[ethernet::HEADER_LEN + ipv4::HEADER_LEN..];
        let sum = checksum::finish(checksum::sum(checksum::sum(pseudo, t), self.payload));
        t[16..18].copy_from_slice(&sum.to_be_bytes());

        let mut f = Vec::with_capacity(h.len() + self.payload.len());
        f.extend_from_slice(&h);
        f.extend_from_slice(self.payload);
        f
    }

    /// Read the TCP segment of an Ethernet IPv4 frame by direct byte reads, with the checks
    /// of etherparse 0.16's `Ipv4Slice::from_slice` and `TcpSlice::from_slice`; like them it
    /// ignores the fragment fields. `None` for every frame it does not take: other
    /// EtherTypes, failed checks, another protocol, an authentication header (the callers'
    /// slower path sorts those out).
    #[inline]
    pub fn parse_fast(frame: &[u8]) -> Option<Ipv4Segment<'_>> {
        let ip = ipv4::read_frame(frame)?.ok()?;
        if ip.protocol != ip_proto::TCP {
            return None;
        }
        let th = ip.l4;
        let hlen = header_len(th).ok()?;
        Some(Ipv4Segment {
            src: ip.src,
            dst: ip.dst,
            sport: be16(th, 0),
            dport: be16(th, 2),
            seq: be32(th, 4),
            ack: be32(th, 8),
            flags: TcpFlags(th[13]),
            payload: &th[hlen..],
        })
    }
}

/// True when `frame` looks like an IPv4 TCP SYN without ACK (a connection attempt), read
/// straight from the flags byte, without validating the headers.
#[inline]
pub fn is_ipv4_syn(frame: &[u8]) -> bool {
    const MASK: u8 = TcpFlags::SYN | TcpFlags::ACK;
    if ethernet::ethertype_of(frame) != Some(ethernet::ethertype::IPV4)
        || frame.get(ethernet::HEADER_LEN + 9) != Some(&ip_proto::TCP)
    {
        return false;
    }
    let Some(ihl) = frame
        .get(ethernet::HEADER_LEN)
        .map(|b| usize::from(b & 0x0f) * 4)
    else {
        return false;
    };
    frame
        .get(ethernet::HEADER_LEN + ihl + 13)
        .is_some_and(|f| f & MASK == TcpFlags::SYN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb() -> impl Strategy<Value = (TcpRepr, Vec<u8>)> {
        (
            any::<(u16, u16, u32, u32, u16, u16)>(),
            any::<u8>(),
            5usize..16,
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(
                |((src_port, dst_port, seq, ack, window, urgent), flags, off, payload)| {
                    (
                        TcpRepr {
                            src_port,
                            dst_port,
                            seq,
                            ack,
                            flags: TcpFlags(flags),
                            window,
                            urgent,
                            header_len: off * 4,
                            payload_len: payload.len(),
                        },
                        payload,
                    )
                },
            )
    }

    proptest! {
        #[test]
        fn round_trips_and_agrees_with_etherparse((r, payload) in arb(), s: [u8; 4], d: [u8; 4]) {
            let (s, d) = (IpAddr::V4(s.into()), IpAddr::V4(d.into()));
            let mut b = vec![0; r.buffer_len()];
            b[r.header_len..].copy_from_slice(&payload);
            r.emit(&mut b, s, d).unwrap();
            let (back, pl) = TcpRepr::parse(&b).unwrap();
            prop_assert_eq!(back, r);
            prop_assert_eq!(pl, &payload[..]);
            verify_checksum(s, d, &b).unwrap();
            let mut again = b.clone();
            back.emit(&mut again, s, d).unwrap();
            prop_assert_eq!(&again, &b);
            let e = etherparse::TcpSlice::from_slice(&b).unwrap();
            prop_assert_eq!((e.source_port(), e.destination_port()), (r.src_port, r.dst_port));
            prop_assert_eq!((e.sequence_number(), e.acknowledgment_number(), e.window_size()), (r.seq, r.ack, r.window));
            prop_assert_eq!(
                (e.fin(), e.syn(), e.rst(), e.psh(), e.ack()),
                (r.flags.fin(), r.flags.syn(), r.flags.rst(), r.flags.psh(), r.flags.ack())
            );
            prop_assert_eq!(e.header_len(), r.header_len);
            prop_assert_eq!(e.payload(), pl);
            let (IpAddr::V4(s4), IpAddr::V4(d4)) = (s, d) else { unreachable!() };
            prop_assert_eq!(e.calc_checksum_ipv4(s4.octets(), d4.octets()).unwrap(), be16(&b, 16));
        }

        #[test]
        fn damaged_headers_read_like_etherparse(
            (r, payload) in arb(),
            damage in proptest::collection::vec((0usize..24, any::<u8>(), 0u8..3), 0..4),
            cut in proptest::option::of(0usize..80),
        ) {
            let mut b = vec![0; r.buffer_len()];
            b[r.header_len..].copy_from_slice(&payload);
            r.emit(&mut b, IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
            crate::fuzz::damage(&mut b, &damage);
            if let Some(n) = cut {
                b.truncate(n);
            }
            let ours = TcpRepr::parse(&b);
            let theirs = etherparse::TcpSlice::from_slice(&b);
            prop_assert_eq!(ours.is_ok(), theirs.is_ok());
            if let (Ok((_, pl)), Ok(e)) = (ours, theirs) {
                prop_assert_eq!(pl, e.payload());
            }
        }
    }

    /// etherparse's `PacketBuilder` frame for `seg` (zero MACs).
    fn builder_frame(seg: &Ipv4Segment<'_>) -> Vec<u8> {
        let mut b = etherparse::PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4(seg.src.octets(), seg.dst.octets(), 64)
            .tcp(seg.sport, seg.dport, seg.seq, 65535);
        let f = seg.flags;
        if f.syn() {
            b = b.syn();
        }
        if f.ack() {
            b = b.ack(seg.ack);
        }
        if f.fin() {
            b = b.fin();
        }
        if f.rst() {
            b = b.rst();
        }
        if f.psh() {
            b = b.psh();
        }
        let mut out = Vec::new();
        b.write(&mut out, seg.payload).unwrap();
        out
    }

    proptest! {
        /// Segment frames are byte for byte etherparse's builder's, and read back by the
        /// fast reader as etherparse reads them.
        #[test]
        fn segments_match_the_builder_and_read_back(
            src: u32, dst: u32, sport: u16, dport: u16, seq: u32, ack: u32, flags in 0u8..0x20,
            payload in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let seg = Ipv4Segment {
                src: Ipv4Addr::from(src),
                dst: Ipv4Addr::from(dst),
                sport,
                dport,
                seq,
                ack,
                flags: TcpFlags(flags),
                payload: &payload,
            };
            let f = seg.to_unaddressed_frame();
            prop_assert_eq!(&f, &builder_frame(&seg));
            prop_assert_eq!(f.len(), f.capacity());
            let back = Ipv4Segment { ack: if seg.flags.ack() { ack } else { 0 }, ..seg.clone() };
            prop_assert_eq!(Ipv4Segment::parse_fast(&f), Some(back));
            prop_assert_eq!(is_ipv4_syn(&f), seg.flags.syn() && !seg.flags.ack());
        }

        /// The fast reader takes a damaged frame only when etherparse reads the same segment.
        #[test]
        fn fast_reader_agrees_with_etherparse_on_damaged_frames(
            flags in 0u8..0x20,
            payload in proptest::collection::vec(any::<u8>(), 0..60),
            damage in proptest::collection::vec((0usize..60, any::<u8>(), 0u8..3), 0..4),
            cut in proptest::option::of(0usize..120),
        ) {
            let seg = Ipv4Segment {
                src: Ipv4Addr::new(10, 0, 0, 1),
                dst: Ipv4Addr::new(10, 0, 0, 2),
                sport: 40000,
                dport: 80,
                seq: 1,
                ack: 2,
                flags: TcpFlags(flags),
                payload: &payload,
            };
            let mut f = seg.to_unaddressed_frame();
            crate::fuzz::damage(&mut f, &damage);
            if let Some(n) = cut {
                f.truncate(n);
            }
            if let Some(s) = Ipv4Segment::parse_fast(&f) {
                let ip = etherparse::Ipv4Slice::from_slice(&f[14..]).unwrap();
                let t = etherparse::TcpSlice::from_slice(ip.payload().payload).unwrap();
                prop_assert_eq!((s.src, s.dst), (ip.header().source_addr(), ip.header().destination_addr()));
                prop_assert_eq!((s.sport, s.dport, s.seq, s.ack), (t.source_port(), t.destination_port(), t.sequence_number(), t.acknowledgment_number()));
                prop_assert_eq!(s.payload, t.payload());
            }
        }
    }
}
