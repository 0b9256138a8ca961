//! ARP for Ethernet / IPv4 (RFC 826).

use std::net::Ipv4Addr;

use super::ethernet::{ethertype, Mac};
use super::{be16, need, room, WireError};

/// Length of an Ethernet/IPv4 ARP message.
pub const LEN: usize = 28;
/// Hardware type of Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

/// ARP operation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ArpOp {
    /// Who-has (1).
    Request,
    /// Is-at (2).
    Reply,
}

/// An Ethernet/IPv4 ARP message.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request or reply.
    pub op: ArpOp,
    /// Sender hardware address.
    pub sha: Mac,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: Mac,
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

/// The raw fields of an ARP header that is not Ethernet/IPv4, for error reports.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ArpFormat {
    /// Hardware type.
    pub htype: u16,
    /// Protocol type.
    pub ptype: u16,
    /// Hardware address length.
    pub hlen: u8,
    /// Protocol address length.
    pub plen: u8,
}

/// Why bytes are not an Ethernet/IPv4 ARP message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArpParseError {
    /// Shorter than 28 bytes.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// Not Ethernet/IPv4.
    #[error("unsupported ARP format {0:?}")]
    Format(ArpFormat),
    /// Neither request nor reply.
    #[error("unsupported ARP operation {0}")]
    Op(u16),
}

impl ArpRepr {
    /// Length of the message.
    pub const LEN: usize = LEN;

    /// A gratuitous ARP as keepalived sends it: a request with sender = target address and
    /// the broadcast address as target MAC.
    pub fn gratuitous(mac: Mac, ip: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            op: ArpOp::Request,
            sha: mac,
            spa: ip,
            tha: super::ethernet::BROADCAST,
            tpa: ip,
        }
    }

    /// Sender and target IP are the same (Linux `is_garp`).
    pub fn is_gratuitous(&self) -> bool {
        self.spa == self.tpa
    }

    /// Read an ARP message; bytes past its 28 (Ethernet padding) are the second value.
    pub fn parse(b: &[u8]) -> Result<(ArpRepr, &[u8]), ArpParseError> {
        need("ARP message", b, LEN)?;
        let format = ArpFormat {
            htype: be16(b, 0),
            ptype: be16(b, 2),
            hlen: b[4],
            plen: b[5],
        };
        if format.htype != HTYPE_ETHERNET
            || format.ptype != ethertype::IPV4
            || format.hlen != 6
            || format.plen != 4
        {
            return Err(ArpParseError::Format(format));
        }
        let op = match be16(b, 6) {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            o => return Err(ArpParseError::Op(o)),
        };
        let mac = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5]];
        let ip = |i: usize| Ipv4Addr::new(b[i], b[i + 1], b[i + 2], b[i + 3]);
        Ok((
            ArpRepr {
                op,
                sha: mac(8),
                spa: ip(14),
                tha: mac(18),
                tpa: ip(24),
            },
            &b[LEN..],
        ))
    }

    /// Bytes [`ArpRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        LEN
    }

    /// Write the message at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        room("ARP message", buf, LEN)?;
        buf[0..2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        buf[2..4].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        buf[4] = 6;
        buf[5] = 4;
        let op: u16 = match self.op {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
        };
        buf[6..8].copy_from_slice(&op.to_be_bytes());
        buf[8..14].copy_from_slice(&self.sha);
        buf[14..18].copy_from_slice(&self.spa.octets());
        buf[18..24].copy_from_slice(&self.tha);
        buf[24..28].copy_from_slice(&self.tpa.octets());
        Ok(())
    }

    /// A whole Ethernet frame (42 bytes, unpadded) carrying this message from `src` to `dst`.
    pub fn to_frame(&self, src: Mac, dst: Mac) -> Vec<u8> {
        let mut f = [0u8; super::ethernet::HEADER_LEN + LEN];
        let eth = super::ethernet::EthernetRepr {
            dst,
            src,
            ethertype: ethertype::ARP,
        };
        // Both fit: the array is sized for them.
        let _ = eth.emit(&mut f);
        let _ = self.emit(&mut f[super::ethernet::HEADER_LEN..]);
        f.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb() -> impl Strategy<Value = ArpRepr> {
        (
            any::<bool>(),
            any::<Mac>(),
            any::<[u8; 4]>(),
            any::<Mac>(),
            any::<[u8; 4]>(),
        )
            .prop_map(|(reply, sha, spa, tha, tpa)| ArpRepr {
                op: if reply { ArpOp::Reply } else { ArpOp::Request },
                sha,
                spa: spa.into(),
                tha,
                tpa: tpa.into(),
            })
    }

    proptest! {
        #[test]
        fn round_trips_and_has_the_rfc826_layout(a in arb(), src: Mac, dst: Mac) {
            let f = a.to_frame(src, dst);
            let (back, pad) = ArpRepr::parse(&f[14..]).unwrap();
            prop_assert_eq!(back, a);
            prop_assert!(pad.is_empty());
            let mut again = [0u8; LEN];
            back.emit(&mut again).unwrap();
            prop_assert_eq!(&again[..], &f[14..]);
            // etherparse 0.16 has no ARP type: the RFC 826 layout, field by field.
            let mut want = vec![0, 1, 8, 0, 6, 4, 0, if a.op == ArpOp::Reply { 2 } else { 1 }];
            want.extend_from_slice(&a.sha);
            want.extend_from_slice(&a.spa.octets());
            want.extend_from_slice(&a.tha);
            want.extend_from_slice(&a.tpa.octets());
            prop_assert_eq!(&f[14..], &want[..]);
            prop_assert_eq!(&f[..14], &[&dst[..], &src[..], &[8, 6]].concat()[..]);
        }

        #[test]
        fn damaged_messages_never_panic(a in arb(), damage in proptest::collection::vec((0usize..28, any::<u8>(), 0u8..3), 0..4), cut in 0usize..40) {
            let mut b = [0u8; LEN].to_vec();
            a.emit(&mut b).unwrap();
            crate::fuzz::damage(&mut b, &damage);
            b.truncate(cut);
            let _ = ArpRepr::parse(&b);
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        let mut b = [0u8; LEN];
        ArpRepr::gratuitous([2; 6], Ipv4Addr::new(10, 0, 0, 1))
            .emit(&mut b)
            .unwrap();
        assert!(matches!(
            ArpRepr::parse(&b[..27]),
            Err(ArpParseError::Wire(WireError::Truncated {
                needed: 28,
                got: 27,
                ..
            }))
        ));
        let mut g = b;
        g[1] = 6;
        assert!(matches!(
            ArpRepr::parse(&g),
            Err(ArpParseError::Format(ArpFormat { htype: 6, .. }))
        ));
        let mut g = b;
        g[7] = 3;
        assert_eq!(ArpRepr::parse(&g), Err(ArpParseError::Op(3)));
    }
}
