//! ICMPv6 (RFC 4443): the neighbour advertisement (RFC 4861 4.4) a new VRRP master sends.

use std::net::Ipv6Addr;

use super::ethernet::Mac;
use super::{be16, checksum, need, room, WireError};

/// ICMPv6 type of a neighbour advertisement.
pub const NEIGHBOUR_ADVERT: u8 = 136;
/// Hop limit neighbour discovery messages carry (RFC 4861 7.1.2).
pub const NDISC_HOP_LIMIT: u8 = 255;
/// IPv6 all-nodes multicast group.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Option type of the target link-layer address.
pub const OPT_TARGET_LINKADDR: u8 = 2;
/// Length of the fixed part: type, code, checksum, flags + reserved, target.
pub const NA_LEN: usize = 24;

const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

/// A neighbour advertisement.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct NeighbourAdvertRepr {
    /// R flag: the sender is a router.
    pub router: bool,
    /// S flag: answer to a solicitation.
    pub solicited: bool,
    /// O flag: replace cached link-layer addresses.
    pub override_flag: bool,
    /// The address advertised.
    pub target: Ipv6Addr,
    /// The target link-layer address option, if present.
    pub target_mac: Option<Mac>,
}

impl NeighbourAdvertRepr {
    /// Read a neighbour advertisement (type 136; the code is not checked, nor the checksum:
    /// [`verify_checksum`]). Options are walked for the target link-layer address; a
    /// malformed option ends the walk.
    pub fn parse(msg: &[u8]) -> Result<NeighbourAdvertRepr, WireError> {
        if let Some(&t) = msg.first() {
            if t != NEIGHBOUR_ADVERT {
                return Err(WireError::Unsupported {
                    layer: "ICMPv6",
                    what: "type",
                    value: t.into(),
                });
            }
        }
        need("neighbour advertisement", msg, NA_LEN)?;
        let flags = msg[4];
        let mut target = [0u8; 16];
        target.copy_from_slice(&msg[8..24]);
        let mut target_mac = None;
        let mut opts = &msg[NA_LEN..];
        while let [kind, len, ..] = *opts {
            let opt_len = usize::from(len) * 8;
            let Some(opt) = opts.get(..opt_len).filter(|_| opt_len > 0) else {
                break;
            };
            if kind == OPT_TARGET_LINKADDR {
                if let Some(mac) = opt.get(2..8).and_then(|m| <Mac>::try_from(m).ok()) {
                    target_mac = Some(mac);
                }
            }
            opts = &opts[opt_len..];
        }
        Ok(NeighbourAdvertRepr {
            router: flags & FLAG_ROUTER != 0,
            solicited: flags & FLAG_SOLICITED != 0,
            override_flag: flags & FLAG_OVERRIDE != 0,
            target: Ipv6Addr::from(target),
            target_mac,
        })
    }

    /// Bytes [`NeighbourAdvertRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        NA_LEN + if self.target_mac.is_some() { 8 } else { 0 }
    }

    /// Write the message with its checksum for `src` → `dst`.
    pub fn emit(&self, buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<(), WireError> {
        let len = self.buffer_len();
        room("neighbour advertisement", buf, len)?;
        let m = &mut buf[..len];
        m[0] = NEIGHBOUR_ADVERT;
        m[1] = 0;
        m[2..4].fill(0);
        m[4] = (u8::from(self.router) * FLAG_ROUTER)
            | (u8::from(self.solicited) * FLAG_SOLICITED)
            | (u8::from(self.override_flag) * FLAG_OVERRIDE);
        m[5..8].fill(0);
        m[8..24].copy_from_slice(&self.target.octets());
        if let Some(mac) = self.target_mac {
            m[24] = OPT_TARGET_LINKADDR;
            m[25] = 1;
            m[26..32].copy_from_slice(&mac);
        }
        let sum = checksum::icmpv6(src, dst, m);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        Ok(())
    }
}

/// Check the checksum of an ICMPv6 message from `src` to `dst`.
pub fn verify_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> Result<(), WireError> {
    need("ICMPv6 header", msg, 4)?;
    let got = be16(msg, 2);
    let expected = checksum::icmpv6(src, dst, msg);
    if got != expected {
        return Err(WireError::Checksum {
            layer: "ICMPv6",
            got,
            expected,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb() -> impl Strategy<Value = NeighbourAdvertRepr> {
        (
            any::<(bool, bool, bool)>(),
            any::<[u8; 16]>(),
            proptest::option::of(any::<Mac>()),
        )
            .prop_map(|((router, solicited, override_flag), t, target_mac)| {
                NeighbourAdvertRepr {
                    router,
                    solicited,
                    override_flag,
                    target: t.into(),
                    target_mac,
                }
            })
    }

    proptest! {
        #[test]
        fn round_trips_and_agrees_with_etherparse(na in arb(), s: [u8; 16]) {
            let src = Ipv6Addr::from(s);
            let mut m = vec![0; na.buffer_len()];
            na.emit(&mut m, src, ALL_NODES).unwrap();
            prop_assert_eq!(NeighbourAdvertRepr::parse(&m), Ok(na));
            verify_checksum(src, ALL_NODES, &m).unwrap();
            let mut again = m.clone();
            na.emit(&mut again, src, ALL_NODES).unwrap();
            prop_assert_eq!(&again, &m);
            let e = etherparse::Icmpv6Slice::from_slice(&m).unwrap();
            prop_assert_eq!((e.type_u8(), e.code_u8()), (NEIGHBOUR_ADVERT, 0));
            prop_assert!(e.is_checksum_valid(src.octets(), ALL_NODES.octets()));
        }

        #[test]
        fn damaged_messages_never_panic(na in arb(), damage in proptest::collection::vec((0usize..40, any::<u8>(), 0u8..3), 0..4), cut in 0usize..40) {
            let mut m = vec![0; na.buffer_len()];
            na.emit(&mut m, Ipv6Addr::LOCALHOST, ALL_NODES).unwrap();
            crate::fuzz::damage(&mut m, &damage);
            m.truncate(cut);
            let _ = NeighbourAdvertRepr::parse(&m);
            let _ = verify_checksum(Ipv6Addr::LOCALHOST, ALL_NODES, &m);
        }
    }
}
