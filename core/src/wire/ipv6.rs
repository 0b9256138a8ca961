//! IPv6 (RFC 8200) and its extension headers, read with the checks of etherparse 0.16's
//! `Ipv6Slice::from_slice`.

use std::net::Ipv6Addr;

use super::{be16, be32, ip_proto, ipv4, need, room, WireError};

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

/// An IPv6 fixed header.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source.
    pub src: Ipv6Addr,
    /// Destination.
    pub dst: Ipv6Addr,
    /// Next header (the payload's protocol, or an extension header).
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Bytes after the fixed header.
    pub payload_len: usize,
}

impl Ipv6Repr {
    /// Read the fixed header: version 6, payload length <= the bytes present (a payload
    /// length of 0 with bytes following takes them all, as etherparse reads a jumbogram).
    pub fn parse(packet: &[u8]) -> Result<(Ipv6Repr, &[u8]), WireError> {
        need("IPv6 header", packet, HEADER_LEN)?;
        if packet[0] >> 4 != 6 {
            return Err(WireError::Malformed {
                layer: "IPv6 header",
                reason: "version is not 6",
            });
        }
        let carried = usize::from(be16(packet, 4));
        let payload_len = if carried == 0 && packet.len() > HEADER_LEN {
            packet.len() - HEADER_LEN
        } else {
            need("IPv6 packet", packet, HEADER_LEN + carried)?;
            carried
        };
        let vtf = be32(packet, 0);
        let addr = |at: usize| {
            let mut o = [0u8; 16];
            o.copy_from_slice(&packet[at..at + 16]);
            Ipv6Addr::from(o)
        };
        Ok((
            Ipv6Repr {
                src: addr(8),
                dst: addr(24),
                next_header: packet[6],
                hop_limit: packet[7],
                traffic_class: (vtf >> 20) as u8,
                flow_label: vtf & 0xf_ffff,
                payload_len,
            },
            &packet[HEADER_LEN..HEADER_LEN + payload_len],
        ))
    }

    /// Bytes of header and payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Write the fixed header at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        room("IPv6 header", buf, HEADER_LEN)?;
        let len = u16::try_from(self.payload_len).map_err(|_| WireError::TooBig {
            layer: "IPv6 packet",
        })?;
        let vtf = 6u32 << 28 | u32::from(self.traffic_class) << 20 | (self.flow_label & 0xf_ffff);
        buf[0..4].copy_from_slice(&vtf.to_be_bytes());
        buf[4..6].copy_from_slice(&len.to_be_bytes());
        buf[6] = self.next_header;
        buf[7] = self.hop_limit;
        buf[8..24].copy_from_slice(&self.src.octets());
        buf[24..40].copy_from_slice(&self.dst.octets());
        Ok(())
    }
}

/// The upper-layer protocol of an IPv6 payload after its extension headers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct UpperLayer<'a> {
    /// Protocol number.
    pub protocol: u8,
    /// A fragment header says the payload is a fragment.
    pub fragmented: bool,
    /// The bytes after the last extension header.
    pub payload: &'a [u8],
}

/// Walk the extension headers etherparse knows (hop-by-hop first only, destination
/// options, routing, fragment, authentication) to the upper-layer protocol.
pub fn upper_layer(next_header: u8, payload: &[u8]) -> Result<UpperLayer<'_>, WireError> {
    let (mut next, mut rest, mut fragmented) = (next_header, payload, false);
    if next == ip_proto::HOP_BY_HOP {
        (next, rest) = raw_ext(rest)?;
    }
    loop {
        match next {
            ip_proto::HOP_BY_HOP => {
                return Err(WireError::Malformed {
                    layer: "IPv6 extension headers",
                    reason: "hop-by-hop options not first",
                })
            }
            ip_proto::IPV6_DEST_OPTS | ip_proto::IPV6_ROUTE => (next, rest) = raw_ext(rest)?,
            ip_proto::IPV6_FRAG => {
                need("IPv6 fragment header", rest, 8)?;
                // etherparse's test, kept so the data plane reads what it read before: the
                // offset's high byte, or the bits 0x9f of its low byte (M flag included).
                fragmented |= rest[2] != 0 || rest[3] & 0x9f != 0;
                (next, rest) = (rest[0], &rest[8..]);
            }
            ip_proto::AUTH => (next, rest) = ipv4::skip_auth(rest)?,
            protocol => {
                return Ok(UpperLayer {
                    protocol,
                    fragmented,
                    payload: rest,
                })
            }
        }
    }
}

/// An extension header in the generic layout: next header, length in 8-byte units after
/// the first 8.
fn raw_ext(b: &[u8]) -> Result<(u8, &[u8]), WireError> {
    need("IPv6 extension header", b, 8)?;
    let len = (usize::from(b[1]) + 1) * 8;
    need("IPv6 extension header", b, len)?;
    Ok((b[0], &b[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb() -> impl Strategy<Value = Ipv6Repr> {
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            0u32..0x10_0000,
            1usize..100,
        )
            .prop_map(
                |(s, d, next_header, hop_limit, traffic_class, flow_label, payload_len)| Ipv6Repr {
                    src: s.into(),
                    dst: d.into(),
                    next_header,
                    hop_limit,
                    traffic_class,
                    flow_label,
                    payload_len,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trips_and_agrees_with_etherparse(r in arb(), fill: u8) {
            let mut p = vec![fill; r.buffer_len()];
            r.emit(&mut p).unwrap();
            let (back, payload) = Ipv6Repr::parse(&p).unwrap();
            prop_assert_eq!(back, r);
            prop_assert_eq!(payload.len(), r.payload_len);
            let mut again = p.clone();
            back.emit(&mut again).unwrap();
            prop_assert_eq!(&again, &p);
            let (e, _) = etherparse::Ipv6Header::from_slice(&p).unwrap();
            prop_assert_eq!(&e.to_bytes()[..], &p[..HEADER_LEN]);
            prop_assert_eq!((e.traffic_class, e.flow_label.value(), e.hop_limit, e.next_header.0), (r.traffic_class, r.flow_label, r.hop_limit, r.next_header));
        }

        /// Packets with extension headers, damaged, read like etherparse's `Ipv6Slice`.
        #[test]
        fn extension_headers_read_like_etherparse(
            exts in proptest::collection::vec(prop_oneof![Just(0u8), Just(43), Just(44), Just(51), Just(60)], 0..4),
            last in prop_oneof![Just(6u8), Just(17), Just(58), any::<u8>()],
            damage in proptest::collection::vec((0usize..90, any::<u8>(), 0u8..3), 0..4),
            cut in proptest::option::of(0usize..130),
            tail in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let mut body = Vec::new();
            for (i, &e) in exts.iter().enumerate() {
                let next = exts.get(i + 1).copied().unwrap_or(last);
                match e {
                    44 => body.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 1]),
                    51 => body.extend_from_slice(&[next, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2]),
                    _ => body.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]),
                }
            }
            body.extend_from_slice(&tail);
            let r = Ipv6Repr {
                src: Ipv6Addr::LOCALHOST,
                dst: Ipv6Addr::LOCALHOST,
                next_header: exts.first().copied().unwrap_or(last),
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0,
                payload_len: body.len(),
            };
            let mut p = vec![0; HEADER_LEN];
            r.emit(&mut p).unwrap();
            p.extend_from_slice(&body);
            crate::fuzz::damage(&mut p, &damage);
            if let Some(n) = cut {
                p.truncate(n);
            }
            let ours = Ipv6Repr::parse(&p).and_then(|(r, pl)| upper_layer(r.next_header, pl));
            let theirs = etherparse::Ipv6Slice::from_slice(&p);
            prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?} vs {:?}", ours, theirs);
            if let (Ok(u), Ok(e)) = (ours, theirs) {
                prop_assert_eq!(u.protocol, e.payload().ip_number.0);
                prop_assert_eq!(u.payload, e.payload().payload);
                prop_assert_eq!(u.fragmented, e.is_payload_fragmented());
            }
        }
    }
}
