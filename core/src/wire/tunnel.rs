//! The encapsulations of IPVS's TUN method (Linux 6.1 `ip_vs_tunnel_xmit`): IPIP
//! (RFC 2003), GUE (draft-ietf-intarea-gue, `ipvs_gue_encap`) and GRE (RFC 2784,
//! `ipvs_gre_encap`, no options).

use super::{be16, ethernet::ethertype, ip_proto, need, room, udp, WireError};

/// Length of the GUE header (version 0, no control, no extra fields).
pub const GUE_LEN: usize = 4;
/// Length of a GRE header without options.
pub const GRE_LEN: usize = 4;

/// The encapsulation between the outer IPv4 header and the inner packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum EncapRepr {
    /// IPIP: nothing in between; the outer protocol is 4.
    Ipip,
    /// UDP to `dst_port` (no checksum), then a GUE header announcing `protocol`.
    Gue {
        /// UDP source port (a flow hash).
        src_port: u16,
        /// UDP destination port.
        dst_port: u16,
        /// The inner protocol (4 for IPv4).
        protocol: u8,
    },
    /// GRE without options announcing the EtherType `protocol`.
    Gre {
        /// 0x0800 for IPv4.
        protocol: u16,
    },
}

impl EncapRepr {
    /// The outer IPv4 header's protocol.
    pub fn outer_protocol(&self) -> u8 {
        match self {
            EncapRepr::Ipip => ip_proto::IPIP,
            EncapRepr::Gue { .. } => ip_proto::UDP,
            EncapRepr::Gre { .. } => ip_proto::GRE,
        }
    }

    /// Read the encapsulation of an outer payload of `outer_protocol`; the inner packet
    /// follows.
    pub fn parse(outer_protocol: u8, payload: &[u8]) -> Result<(EncapRepr, &[u8]), WireError> {
        match outer_protocol {
            // IPIP, or IPv6 in IPv6 (next header 41, `ip_vs_tunnel_xmit_v6`).
            ip_proto::IPIP | ip_proto::IPV6 => Ok((EncapRepr::Ipip, payload)),
            ip_proto::UDP => {
                let (u, rest) = udp::UdpRepr::parse(payload)?;
                need("GUE header", rest, GUE_LEN)?;
                if rest[0] >> 6 != 0 || rest[0] & 0x1f != 0 || rest[2] != 0 || rest[3] != 0 {
                    return Err(WireError::Unsupported {
                        layer: "GUE header",
                        what: "version, control or extra fields",
                        value: u32::from(be16(rest, 0)),
                    });
                }
                Ok((
                    EncapRepr::Gue {
                        src_port: u.src_port,
                        dst_port: u.dst_port,
                        protocol: rest[1],
                    },
                    &rest[GUE_LEN..],
                ))
            }
            ip_proto::GRE => {
                need("GRE header", payload, GRE_LEN)?;
                if be16(payload, 0) != 0 {
                    return Err(WireError::Unsupported {
                        layer: "GRE header",
                        what: "flags and version",
                        value: u32::from(be16(payload, 0)),
                    });
                }
                Ok((
                    EncapRepr::Gre {
                        protocol: be16(payload, 2),
                    },
                    &payload[GRE_LEN..],
                ))
            }
            p => Err(WireError::Unsupported {
                layer: "tunnel",
                what: "outer protocol",
                value: p.into(),
            }),
        }
    }

    /// Bytes [`EncapRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        match self {
            EncapRepr::Ipip => 0,
            EncapRepr::Gue { .. } => udp::HEADER_LEN + GUE_LEN,
            EncapRepr::Gre { .. } => GRE_LEN,
        }
    }

    /// Write the encapsulation before an inner packet of `inner_len` bytes.
    pub fn emit(&self, buf: &mut [u8], inner_len: usize) -> Result<(), WireError> {
        room("tunnel header", buf, self.buffer_len())?;
        match *self {
            EncapRepr::Ipip => {}
            EncapRepr::Gue {
                src_port,
                dst_port,
                protocol,
            } => {
                let len = u16::try_from(udp::HEADER_LEN + GUE_LEN + inner_len).map_err(|_| {
                    WireError::TooBig {
                        layer: "GUE datagram",
                    }
                })?;
                buf[0..2].copy_from_slice(&src_port.to_be_bytes());
                buf[2..4].copy_from_slice(&dst_port.to_be_bytes());
                buf[4..6].copy_from_slice(&len.to_be_bytes());
                // No UDP checksum, as the kernel sends GUE by default.
                buf[6..8].fill(0);
                buf[8..12].copy_from_slice(&[0, protocol, 0, 0]);
            }
            EncapRepr::Gre { protocol } => {
                buf[0..2].fill(0);
                buf[2..4].copy_from_slice(&protocol.to_be_bytes());
            }
        }
        Ok(())
    }
}

/// GRE's protocol for an IPv4 inner packet.
pub const GRE_IPV4: u16 = ethertype::IPV4;

/// GRE's protocol for an IPv6 inner packet.
pub const GRE_IPV6: u16 = ethertype::IPV6;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb() -> impl Strategy<Value = EncapRepr> {
        prop_oneof![
            Just(EncapRepr::Ipip),
            any::<(u16, u16, u8)>().prop_map(|(src_port, dst_port, protocol)| EncapRepr::Gue {
                src_port,
                dst_port,
                protocol
            }),
            any::<u16>().prop_map(|protocol| EncapRepr::Gre { protocol }),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(e in arb(), inner in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut b = vec![0; e.buffer_len() + inner.len()];
            b[e.buffer_len()..].copy_from_slice(&inner);
            e.emit(&mut b, inner.len()).unwrap();
            let (back, rest) = EncapRepr::parse(e.outer_protocol(), &b).unwrap();
            prop_assert_eq!(back, e);
            prop_assert_eq!(rest, &inner[..]);
            let mut again = b.clone();
            back.emit(&mut again, inner.len()).unwrap();
            prop_assert_eq!(again, b);
        }

        #[test]
        fn damaged_headers_never_panic(e in arb(), damage in proptest::collection::vec((0usize..16, any::<u8>(), 0u8..3), 0..4), cut in 0usize..20, p: u8) {
            let mut b = vec![0; e.buffer_len() + 8];
            e.emit(&mut b, 8).unwrap();
            crate::fuzz::damage(&mut b, &damage);
            b.truncate(cut);
            let _ = EncapRepr::parse(e.outer_protocol(), &b);
            let _ = EncapRepr::parse(p, &b);
        }
    }
}
