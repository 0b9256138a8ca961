//! The VRRP message (RFC 3768 for v2, RFC 5798 for v3): layout only. What an instance
//! accepts, and keepalived's order of checks, are `vrrp::wire`'s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{be16, checksum, need, room, WireError};

/// Length of the fixed header.
pub const HEADER_LEN: usize = 8;
/// Length of the v2 authentication data (carried by every v2 advert over IPv4).
pub const AUTH_DATA_LEN: usize = 8;

/// The fixed header as carried, before any check of its values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct VrrpHeader {
    /// Version nibble.
    pub version: u8,
    /// Type nibble (1: advertisement).
    pub kind: u8,
    /// Virtual router id.
    pub vrid: u8,
    /// Priority.
    pub priority: u8,
    /// Count of addresses.
    pub count: u8,
    /// Byte 4: v2 authentication type; v3 reserved nibble and interval high bits.
    pub byte4: u8,
    /// Byte 5: v2 interval in seconds; v3 interval low byte.
    pub byte5: u8,
    /// Checksum.
    pub checksum: u16,
}

impl VrrpHeader {
    /// Read the fixed header; the rest of `msg` follows.
    pub fn parse(msg: &[u8]) -> Result<(VrrpHeader, &[u8]), WireError> {
        need("VRRP header", msg, HEADER_LEN)?;
        Ok((
            VrrpHeader {
                version: msg[0] >> 4,
                kind: msg[0] & 0x0f,
                vrid: msg[1],
                priority: msg[2],
                count: msg[3],
                byte4: msg[4],
                byte5: msg[5],
                checksum: be16(msg, 6),
            },
            &msg[HEADER_LEN..],
        ))
    }

    /// v3's interval in centiseconds (12 bits).
    pub fn v3_advert_int_cs(&self) -> u16 {
        u16::from_be_bytes([self.byte4, self.byte5]) & 0x0fff
    }
}

/// Length of a message of `version` with `count` addresses of the family `ipv6`.
pub fn message_len(version: u8, ipv6: bool, count: usize) -> usize {
    let addr_len = if ipv6 { 16 } else { 4 };
    let auth = if version == 2 && !ipv6 {
        AUTH_DATA_LEN
    } else {
        0
    };
    HEADER_LEN + count * addr_len + auth
}

/// A whole VRRP message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VrrpRepr {
    /// Version nibble (2 or 3).
    pub version: u8,
    /// Type nibble (1: advertisement).
    pub kind: u8,
    /// Virtual router id.
    pub vrid: u8,
    /// Priority.
    pub priority: u8,
    /// Byte 4 (v2 authentication type; v3 reserved nibble and interval high bits).
    pub byte4: u8,
    /// Byte 5 (v2 interval in seconds; v3 interval low byte).
    pub byte5: u8,
    /// The addresses, all of one family.
    pub addrs: Vec<IpAddr>,
    /// v2 over IPv4: the authentication data (the password, zero-padded).
    pub auth_data: Option<[u8; AUTH_DATA_LEN]>,
}

impl VrrpRepr {
    /// Read a message carried over IPv6 (`ipv6`) or IPv4: its length must be what version
    /// and count imply. The checksum is not checked ([`verify_checksum`]).
    pub fn parse(msg: &[u8], ipv6: bool) -> Result<VrrpRepr, WireError> {
        let (h, body) = VrrpHeader::parse(msg)?;
        let len = message_len(h.version, ipv6, usize::from(h.count));
        if msg.len() != len {
            return Err(WireError::Malformed {
                layer: "VRRP message",
                reason: "length disagrees with version and address count",
            });
        }
        let addrs = addrs(body, ipv6, h.count);
        let auth_data = (h.version == 2 && !ipv6).then(|| {
            let mut a = [0u8; AUTH_DATA_LEN];
            a.copy_from_slice(&msg[len - AUTH_DATA_LEN..]);
            a
        });
        Ok(VrrpRepr {
            version: h.version,
            kind: h.kind,
            vrid: h.vrid,
            priority: h.priority,
            byte4: h.byte4,
            byte5: h.byte5,
            addrs,
            auth_data,
        })
    }

    /// Bytes [`VrrpRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let addrs: usize = self
            .addrs
            .iter()
            .map(|a| if a.is_ipv6() { 16 } else { 4 })
            .sum();
        HEADER_LEN + addrs + self.auth_data.map_or(0, |_| AUTH_DATA_LEN)
    }

    /// Write the message with its checksum for `src` and the pseudo-header destination
    /// `pseudo_dst` (see [`checksum::vrrp`]).
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, pseudo_dst: IpAddr) -> Result<(), WireError> {
        let count = u8::try_from(self.addrs.len()).map_err(|_| WireError::TooBig {
            layer: "VRRP message",
        })?;
        let len = self.buffer_len();
        room("VRRP message", buf, len)?;
        let m = &mut buf[..len];
        m[0] = (self.version << 4) | (self.kind & 0x0f);
        m[1] = self.vrid;
        m[2] = self.priority;
        m[3] = count;
        m[4] = self.byte4;
        m[5] = self.byte5;
        m[6..8].fill(0);
        let mut at = HEADER_LEN;
        for a in &self.addrs {
            match a {
                IpAddr::V4(a) => {
                    m[at..at + 4].copy_from_slice(&a.octets());
                    at += 4;
                }
                IpAddr::V6(a) => {
                    m[at..at + 16].copy_from_slice(&a.octets());
                    at += 16;
                }
            }
        }
        if let Some(auth) = &self.auth_data {
            m[at..at + AUTH_DATA_LEN].copy_from_slice(auth);
        }
        let sum = checksum::vrrp(self.version == 3, src, pseudo_dst, m);
        m[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(())
    }
}

/// The first `count` addresses of a message body (fewer if it is short).
pub fn addrs(body: &[u8], ipv6: bool, count: u8) -> Vec<IpAddr> {
    let size = if ipv6 { 16 } else { 4 };
    body.chunks_exact(size)
        .take(usize::from(count))
        .map(|c| {
            if ipv6 {
                let mut o = [0u8; 16];
                o.copy_from_slice(c);
                IpAddr::V6(Ipv6Addr::from(o))
            } else {
                IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3]))
            }
        })
        .collect()
}

/// Check the checksum of a message (see [`checksum::vrrp`] for what `v3` and `pseudo_dst`
/// select).
pub fn verify_checksum(
    v3: bool,
    src: IpAddr,
    pseudo_dst: IpAddr,
    msg: &[u8],
) -> Result<(), WireError> {
    need("VRRP header", msg, HEADER_LEN)?;
    let got = be16(msg, 6);
    let expected = checksum::vrrp(v3, src, pseudo_dst, msg);
    if got != expected {
        return Err(WireError::Checksum {
            layer: "VRRP",
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

    fn arb() -> impl Strategy<Value = (VrrpRepr, bool)> {
        (
            prop_oneof![Just(2u8), Just(3)],
            any::<(u8, u8, u8, u8, u8)>(),
            any::<bool>(),
            proptest::collection::vec(any::<[u8; 16]>(), 0..6),
            any::<[u8; 8]>(),
        )
            .prop_map(
                |(version, (kind, vrid, priority, byte4, byte5), ipv6, raw, auth)| {
                    let addrs = raw
                        .iter()
                        .map(|r| {
                            if ipv6 {
                                IpAddr::V6(Ipv6Addr::from(*r))
                            } else {
                                IpAddr::V4(Ipv4Addr::new(r[0], r[1], r[2], r[3]))
                            }
                        })
                        .collect();
                    let repr = VrrpRepr {
                        version,
                        kind: kind & 0x0f,
                        vrid,
                        priority,
                        byte4,
                        byte5,
                        addrs,
                        auth_data: (version == 2 && !ipv6).then_some(auth),
                    };
                    (repr, ipv6)
                },
            )
    }

    fn ends(ipv6: bool) -> (IpAddr, IpAddr) {
        if ipv6 {
            ("fe80::1".parse().unwrap(), "ff02::12".parse().unwrap())
        } else {
            ("10.0.0.1".parse().unwrap(), "224.0.0.18".parse().unwrap())
        }
    }

    proptest! {
        #[test]
        fn round_trips((r, ipv6) in arb()) {
            let (src, dst) = ends(ipv6);
            let mut m = vec![0; r.buffer_len()];
            r.emit(&mut m, src, dst).unwrap();
            prop_assert_eq!(m.len(), message_len(r.version, ipv6, r.addrs.len()));
            let back = VrrpRepr::parse(&m, ipv6).unwrap();
            prop_assert_eq!(&back, &r);
            verify_checksum(r.version == 3, src, dst, &m).unwrap();
            let mut again = m.clone();
            back.emit(&mut again, src, dst).unwrap();
            prop_assert_eq!(again, m);
        }

        #[test]
        fn damaged_messages_never_panic((r, ipv6) in arb(), damage in proptest::collection::vec((0usize..40, any::<u8>(), 0u8..3), 0..4), cut in 0usize..120) {
            let (src, dst) = ends(ipv6);
            let mut m = vec![0; r.buffer_len()];
            r.emit(&mut m, src, dst).unwrap();
            crate::fuzz::damage(&mut m, &damage);
            m.truncate(cut);
            let _ = VrrpRepr::parse(&m, ipv6);
            let _ = verify_checksum(true, src, dst, &m);
        }
    }

    /// RFC 5798's v3 checksum covers the IPv4 pseudo-header; v2's does not.
    #[test]
    fn v2_and_v3_checksums_differ_over_ipv4() {
        let (src, dst) = ends(false);
        let r = VrrpRepr {
            version: 3,
            kind: 1,
            vrid: 1,
            priority: 100,
            byte4: 0,
            byte5: 100,
            addrs: vec![src],
            auth_data: None,
        };
        let mut m = vec![0; r.buffer_len()];
        r.emit(&mut m, src, dst).unwrap();
        assert!(verify_checksum(false, src, dst, &m).is_err());
        assert!(verify_checksum(true, src, dst, &m).is_ok());
    }
}
