//! UDP (RFC 768), read with the checks of etherparse 0.16's `UdpSlice::from_slice`.

use std::net::IpAddr;

use super::{be16, checksum, need, room, WireError};

/// Length of the header.
pub const HEADER_LEN: usize = 8;

/// A UDP header.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Bytes after the header.
    pub payload_len: usize,
    /// A checksum is carried (0 on the wire means none).
    pub checksum: bool,
}

impl UdpRepr {
    /// Read a header. The length field bounds the payload; 0 takes every byte present
    /// (etherparse's reading); 1..=7 or past the bytes present is an error. The checksum is
    /// not checked ([`verify_checksum`]).
    pub fn parse(datagram: &[u8]) -> Result<(UdpRepr, &[u8]), WireError> {
        need("UDP header", datagram, HEADER_LEN)?;
        let len = match usize::from(be16(datagram, 4)) {
            0 => datagram.len(),
            n if n < HEADER_LEN => {
                return Err(WireError::Malformed {
                    layer: "UDP header",
                    reason: "length below 8",
                })
            }
            n => {
                need("UDP datagram", datagram, n)?;
                n
            }
        };
        Ok((
            UdpRepr {
                src_port: be16(datagram, 0),
                dst_port: be16(datagram, 2),
                payload_len: len - HEADER_LEN,
                checksum: be16(datagram, 6) != 0,
            },
            &datagram[HEADER_LEN..len],
        ))
    }

    /// Bytes of header and payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Write the header at the start of `buf`, whose next `payload_len` bytes already hold
    /// the payload; the checksum (when carried) is over `src` → `dst`.
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr) -> Result<(), WireError> {
        room("UDP datagram", buf, self.buffer_len())?;
        let len = u16::try_from(self.buffer_len()).map_err(|_| WireError::TooBig {
            layer: "UDP datagram",
        })?;
        buf[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        buf[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[4..6].copy_from_slice(&len.to_be_bytes());
        buf[6..8].fill(0);
        if self.checksum {
            let sum = checksum::udp(src, dst, &buf[..self.buffer_len()]);
            buf[6..8].copy_from_slice(&sum.to_be_bytes());
        }
        Ok(())
    }
}

/// Check the checksum of a datagram (a carried 0 means none, and passes).
pub fn verify_checksum(src: IpAddr, dst: IpAddr, datagram: &[u8]) -> Result<(), WireError> {
    need("UDP header", datagram, HEADER_LEN)?;
    let got = be16(datagram, 6);
    let expected = checksum::udp(src, dst, datagram);
    if got != 0 && got != expected {
        return Err(WireError::Checksum {
            layer: "UDP",
            got,
            expected,
        });
    }
    Ok(())
}

/// Recompute the checksum of `datagram` in place unless it carries none (0), as the
/// kernel's `udp_dnat_handler` leaves it.
pub fn fill_checksum(datagram: &mut [u8], src: IpAddr, dst: IpAddr) {
    if datagram.len() < HEADER_LEN || be16(datagram, 6) == 0 {
        return;
    }
    let sum = checksum::udp(src, dst, datagram);
    datagram[6..8].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    proptest! {
        #[test]
        fn round_trips_and_agrees_with_etherparse(
            src_port: u16, dst_port: u16, sum: bool, s: [u8; 4], d: [u8; 4],
            payload in proptest::collection::vec(any::<u8>(), 0..50),
        ) {
            let r = UdpRepr { src_port, dst_port, payload_len: payload.len(), checksum: sum };
            let (s, d) = (IpAddr::V4(Ipv4Addr::from(s)), IpAddr::V4(Ipv4Addr::from(d)));
            let mut b = vec![0; r.buffer_len()];
            b[HEADER_LEN..].copy_from_slice(&payload);
            r.emit(&mut b, s, d).unwrap();
            let (back, pl) = UdpRepr::parse(&b).unwrap();
            prop_assert_eq!(back, r);
            prop_assert_eq!(pl, &payload[..]);
            verify_checksum(s, d, &b).unwrap();
            let mut again = b.clone();
            back.emit(&mut again, s, d).unwrap();
            prop_assert_eq!(&again, &b);
            let e = etherparse::UdpSlice::from_slice(&b).unwrap();
            prop_assert_eq!((e.source_port(), e.destination_port(), e.payload()), (src_port, dst_port, &payload[..]));
            if sum {
                let (IpAddr::V4(s4), IpAddr::V4(d4)) = (s, d) else { unreachable!() };
                let h = etherparse::UdpHeader { source_port: src_port, destination_port: dst_port, length: b.len() as u16, checksum: 0 };
                let ip = etherparse::Ipv4Header::new(0, 1, etherparse::IpNumber::UDP, s4.octets(), d4.octets()).unwrap();
                prop_assert_eq!(h.calc_checksum_ipv4(&ip, &payload).unwrap(), be16(&b, 6));
            }
        }

        #[test]
        fn damaged_datagrams_read_like_etherparse(
            mut b in proptest::collection::vec(any::<u8>(), 0..40),
            len in proptest::option::of(0u16..48),
        ) {
            if let (Some(l), true) = (len, b.len() >= 6) {
                b[4..6].copy_from_slice(&l.to_be_bytes());
            }
            let ours = UdpRepr::parse(&b);
            let theirs = etherparse::UdpSlice::from_slice(&b);
            prop_assert_eq!(ours.is_ok(), theirs.is_ok());
            if let (Ok((_, pl)), Ok(e)) = (ours, theirs) {
                prop_assert_eq!(pl, e.payload());
            }
        }
    }
}
