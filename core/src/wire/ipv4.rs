//! IPv4 (RFC 791), read with the checks of etherparse 0.16's `Ipv4Slice::from_slice`.

use std::net::Ipv4Addr;

use super::{be16, checksum, ip_proto, need, room, WireError};

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Shortest IPsec authentication header (RFC 4302).
pub const AUTH_MIN_LEN: usize = 12;

/// An IPv4 header (options are skipped on parse and not emitted).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source.
    pub src: Ipv4Addr,
    /// Destination.
    pub dst: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Type of service byte (DSCP and ECN).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't fragment.
    pub dont_frag: bool,
    /// More fragments.
    pub more_frags: bool,
    /// Fragment offset in 8-byte units (13 bits).
    pub frag_offset: u16,
    /// Bytes after the header (total length minus header length).
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Read a header: version 4, header length >= 20, header <= total length <= `packet`.
    /// The payload ends at the total length (bytes after it, such as Ethernet padding, are
    /// not the packet's). The checksum is not checked ([`verify_checksum`]).
    pub fn parse(packet: &[u8]) -> Result<(Ipv4Repr, &[u8]), WireError> {
        need("IPv4 header", packet, HEADER_LEN)?;
        if packet[0] >> 4 != 4 {
            return Err(WireError::Malformed {
                layer: "IPv4 header",
                reason: "version is not 4",
            });
        }
        let hlen = header_len(packet);
        if hlen < HEADER_LEN {
            return Err(WireError::Malformed {
                layer: "IPv4 header",
                reason: "header length below 20",
            });
        }
        need("IPv4 header", packet, hlen)?;
        let total = usize::from(be16(packet, 2));
        if total < hlen {
            return Err(WireError::Truncated {
                layer: "IPv4 packet",
                needed: hlen,
                got: total,
            });
        }
        need("IPv4 packet", packet, total)?;
        let frag = be16(packet, 6);
        Ok((
            Ipv4Repr {
                src: addr_at(packet, 12),
                dst: addr_at(packet, 16),
                protocol: packet[9],
                ttl: packet[8],
                tos: packet[1],
                ident: be16(packet, 4),
                dont_frag: frag & 0x4000 != 0,
                more_frags: frag & 0x2000 != 0,
                frag_offset: frag & 0x1fff,
                payload_len: total - hlen,
            },
            &packet[hlen..total],
        ))
    }

    /// More fragments follow, or this is not the first one.
    pub fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }

    /// Bytes of header and payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Write the 20-byte header, checksum included, at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        room("IPv4 header", buf, HEADER_LEN)?;
        let total = u16::try_from(self.buffer_len()).map_err(|_| WireError::TooBig {
            layer: "IPv4 packet",
        })?;
        let h = &mut buf[..HEADER_LEN];
        h[0] = 0x45;
        h[1] = self.tos;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4..6].copy_from_slice(&self.ident.to_be_bytes());
        let frag = u16::from(self.dont_frag) << 14
            | u16::from(self.more_frags) << 13
            | (self.frag_offset & 0x1fff);
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h[8] = self.ttl;
        h[9] = self.protocol;
        h[10..12].fill(0);
        h[12..16].copy_from_slice(&self.src.octets());
        h[16..20].copy_from_slice(&self.dst.octets());
        let sum = checksum::ipv4_header(h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        Ok(())
    }
}

/// `b[at..at + 4]` as an address (the caller checked the length).
#[inline(always)]
pub fn addr_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// Header length from the IHL nibble (the caller checked there is a first byte).
#[inline(always)]
pub fn header_len(packet: &[u8]) -> usize {
    usize::from(packet[0] & 0x0f) * 4
}

/// Check the header checksum of a packet [`Ipv4Repr::parse`] accepted.
pub fn verify_checksum(packet: &[u8]) -> Result<(), WireError> {
    let header = packet.get(..header_len(packet)).unwrap_or(packet);
    need("IPv4 header", header, HEADER_LEN)?;
    let got = be16(header, 10);
    let expected = checksum::ipv4_header(header);
    if got != expected {
        return Err(WireError::Checksum {
            layer: "IPv4 header",
            got,
            expected,
        });
    }
    Ok(())
}

/// Recompute the header checksum of `packet` in place (after its fields were rewritten).
pub fn fill_checksum(packet: &mut [u8]) {
    let Some(first) = packet.first() else {
        return;
    };
    let hlen = usize::from(first & 0x0f) * 4;
    if let Some(h) = packet.get_mut(..hlen.max(HEADER_LEN)) {
        h[10..12].fill(0);
        let sum = checksum::ipv4_header(h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
    }
}

/// An IPsec authentication header (RFC 4302): the next protocol and what follows it, with
/// etherparse's checks (at least 12 bytes, payload length not 0, all of it present).
pub fn skip_auth(b: &[u8]) -> Result<(u8, &[u8]), WireError> {
    need("IP authentication header", b, AUTH_MIN_LEN)?;
    if b[1] == 0 {
        return Err(WireError::Malformed {
            layer: "IP authentication header",
            reason: "payload length 0",
        });
    }
    let len = (usize::from(b[1]) + 2) * 4;
    need("IP authentication header", b, len)?;
    Ok((b[0], &b[len..]))
}

/// The protocol and payload of an IPv4 packet's payload, through an authentication header
/// when there is one (as etherparse's `Ipv4Slice` reads it).
pub fn upper_layer<'a>(repr: &Ipv4Repr, payload: &'a [u8]) -> Result<(u8, &'a [u8]), WireError> {
    if repr.protocol == ip_proto::AUTH {
        skip_auth(payload)
    } else {
        Ok((repr.protocol, payload))
    }
}

/// An IPv4 packet read by hand: what the hot paths need.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Ipv4View<'a> {
    /// Source.
    pub src: Ipv4Addr,
    /// Destination.
    pub dst: Ipv4Addr,
    /// Protocol.
    pub protocol: u8,
    /// More-fragments set or a nonzero offset.
    pub fragmented: bool,
    /// The bytes after the header, up to the total length.
    pub l4: &'a [u8],
    /// The total length: header, options and payload.
    pub total_len: usize,
}

/// The IPv4 packet of an Ethernet II frame by direct byte reads. `None`: not an IPv4
/// EtherType (or no Ethernet header); `Some(Err(()))`: the checks of etherparse's
/// `Ipv4Slice` fail (version 4, IHL >= 5, header <= total length <= bytes present; options
/// and checksum are not checked).
#[inline(always)]
#[allow(clippy::result_unit_err)]
pub fn read_frame(frame: &[u8]) -> Option<Result<Ipv4View<'_>, ()>> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[super::ethernet::HEADER_LEN..];
    let Some(ih) = ip.get(..HEADER_LEN) else {
        return Some(Err(()));
    };
    let ihl = usize::from(ih[0] & 0x0f) * 4;
    let total_len = usize::from(be16(ih, 2));
    if ih[0] >> 4 != 4 || ihl < HEADER_LEN || total_len < ihl || total_len > ip.len() {
        return Some(Err(()));
    }
    Some(Ok(Ipv4View {
        src: addr_at(ih, 12),
        dst: addr_at(ih, 16),
        protocol: ih[9],
        fragmented: ih[6] & 0x3f != 0 || ih[7] != 0,
        l4: &ip[ihl..total_len],
        total_len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn arb() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            any::<(bool, bool)>(),
            0u16..0x2000,
            0usize..100,
        )
            .prop_map(
                |(s, d, protocol, ttl, tos, ident, (df, mf), frag_offset, payload_len)| Ipv4Repr {
                    src: s.into(),
                    dst: d.into(),
                    protocol,
                    ttl,
                    tos,
                    ident,
                    dont_frag: df,
                    more_frags: mf,
                    frag_offset,
                    payload_len,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trips_and_agrees_with_etherparse(r in arb(), fill: u8) {
            let mut p = vec![fill; r.buffer_len()];
            r.emit(&mut p).unwrap();
            let (back, payload) = Ipv4Repr::parse(&p).unwrap();
            prop_assert_eq!(back, r);
            prop_assert_eq!(payload.len(), r.payload_len);
            verify_checksum(&p).unwrap();
            let mut again = p.clone();
            back.emit(&mut again).unwrap();
            prop_assert_eq!(&again, &p);
            let (e, _) = etherparse::Ipv4Header::from_slice(&p).unwrap();
            prop_assert_eq!(e.header_checksum, e.calc_header_checksum());
            prop_assert_eq!((e.source, e.destination), (r.src.octets(), r.dst.octets()));
            prop_assert_eq!((e.protocol.0, e.time_to_live, e.identification), (r.protocol, r.ttl, r.ident));
            prop_assert_eq!((e.dont_fragment, e.more_fragments, e.fragment_offset.value()), (r.dont_frag, r.more_frags, r.frag_offset));
            prop_assert_eq!((e.dscp.value() << 2) | e.ecn.value(), r.tos);
            prop_assert_eq!(&e.to_bytes()[..], &p[..HEADER_LEN]);
        }

        /// Damaged packets parse or fail as etherparse's `Ipv4Slice` does, never panic.
        #[test]
        fn damaged_packets_read_like_etherparse(
            r in arb(),
            damage in proptest::collection::vec((0usize..30, any::<u8>(), 0u8..3), 0..4),
            cut in proptest::option::of(0usize..130),
        ) {
            let mut p = vec![0xa5; r.buffer_len()];
            r.emit(&mut p).unwrap();
            crate::fuzz::damage(&mut p, &damage);
            if let Some(n) = cut {
                p.truncate(n);
            }
            let ours = Ipv4Repr::parse(&p).and_then(|(r, pl)| upper_layer(&r, pl).map(|u| (r, u)));
            let theirs = etherparse::Ipv4Slice::from_slice(&p);
            prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?} vs {:?}", ours, theirs);
            if let (Ok((r, (proto, pl))), Ok(e)) = (ours, theirs) {
                prop_assert_eq!(proto, e.payload_ip_number().0);
                prop_assert_eq!(pl, e.payload().payload);
                prop_assert_eq!(r.is_fragment(), e.is_payload_fragmented());
                prop_assert_eq!(r.src, e.header().source_addr());
            }
        }
    }

    #[test]
    fn lengths_and_auth_headers() {
        let r = Ipv4Repr {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            protocol: ip_proto::AUTH,
            ttl: 64,
            tos: 0,
            ident: 1,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            payload_len: 16,
        };
        let mut p = vec![0; r.buffer_len()];
        r.emit(&mut p).unwrap();
        p[20] = ip_proto::TCP;
        p[21] = 1; // (1 + 2) * 4 = 12 bytes
        let (r2, pl) = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(upper_layer(&r2, pl), Ok((ip_proto::TCP, &p[32..])));
        p[21] = 0;
        assert!(matches!(
            upper_layer(&r2, &p[20..]),
            Err(WireError::Malformed { .. })
        ));
        p[21] = 9;
        assert!(matches!(
            upper_layer(&r2, &p[20..]),
            Err(WireError::Truncated { needed: 44, .. })
        ));
        // Total length below the header, over the bytes present; trailing bytes.
        p[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(
            Ipv4Repr::parse(&p),
            Err(WireError::Truncated {
                layer: "IPv4 packet",
                needed: 20,
                got: 10
            })
        );
        p[2..4].copy_from_slice(&37u16.to_be_bytes());
        assert_eq!(
            Ipv4Repr::parse(&p),
            Err(WireError::Truncated {
                layer: "IPv4 packet",
                needed: 37,
                got: 36
            })
        );
        p.extend([0; 5]);
        p[2..4].copy_from_slice(&36u16.to_be_bytes());
        assert_eq!(Ipv4Repr::parse(&p).unwrap().1.len(), 16);
        let mut bad = p.clone();
        bad[10] ^= 1;
        assert!(matches!(
            verify_checksum(&bad),
            Err(WireError::Checksum { .. })
        ));
        fill_checksum(&mut bad);
        assert_eq!(verify_checksum(&bad), Ok(()));
    }
}
