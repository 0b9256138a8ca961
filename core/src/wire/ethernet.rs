//! Ethernet II frames, with the 802.1Q / 802.1ad tags the data plane looks through.

use super::{be16, need, room, WireError};

/// A MAC address.
pub type Mac = [u8; 6];

/// The broadcast address.
pub const BROADCAST: Mac = [0xff; 6];
/// Length of an Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of one VLAN tag.
pub const VLAN_TAG_LEN: usize = 4;

/// EtherTypes lvsd meets.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1ad provider bridging (outer tag).
    pub const PROVIDER_BRIDGING: u16 = 0x88a8;
    /// The pre-standard double-tag type.
    pub const VLAN_DOUBLE: u16 = 0x9100;
}

/// True for an EtherType that announces a VLAN tag.
pub fn is_vlan(t: u16) -> bool {
    matches!(
        t,
        ethertype::VLAN | ethertype::PROVIDER_BRIDGING | ethertype::VLAN_DOUBLE
    )
}

/// True for broadcast and multicast destinations (group bit set).
pub fn is_group(mac: Mac) -> bool {
    mac[0] & 1 == 1
}

/// An Ethernet II header.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Destination.
    pub dst: Mac,
    /// Source.
    pub src: Mac,
    /// EtherType of the payload.
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Read the header; the rest of the frame is the payload.
    pub fn parse(frame: &[u8]) -> Result<(EthernetRepr, &[u8]), WireError> {
        need("Ethernet header", frame, HEADER_LEN)?;
        Ok((
            EthernetRepr {
                dst: mac_at(frame, 0),
                src: mac_at(frame, 6),
                ethertype: be16(frame, 12),
            },
            &frame[HEADER_LEN..],
        ))
    }

    /// Bytes [`EthernetRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        room("Ethernet header", buf, HEADER_LEN)?;
        buf[0..6].copy_from_slice(&self.dst);
        buf[6..12].copy_from_slice(&self.src);
        buf[12..14].copy_from_slice(&self.ethertype.to_be_bytes());
        Ok(())
    }

    /// A frame of this header and `payload`.
    pub fn frame(&self, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0; HEADER_LEN + payload.len()];
        f[0..6].copy_from_slice(&self.dst);
        f[6..12].copy_from_slice(&self.src);
        f[12..14].copy_from_slice(&self.ethertype.to_be_bytes());
        f[HEADER_LEN..].copy_from_slice(payload);
        f
    }
}

/// `b[at..at + 6]` as a MAC (the caller checked the length).
fn mac_at(b: &[u8], at: usize) -> Mac {
    [b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5]]
}

/// Destination MAC of a frame.
#[inline]
pub fn dst_mac(frame: &[u8]) -> Option<Mac> {
    frame.get(0..6).map(|b| mac_at(b, 0))
}

/// Source MAC of a frame.
#[inline]
pub fn src_mac(frame: &[u8]) -> Option<Mac> {
    frame.get(6..12).map(|b| mac_at(b, 0))
}

/// EtherType of a frame.
#[inline]
pub fn ethertype_of(frame: &[u8]) -> Option<u16> {
    frame.get(12..14).map(|b| be16(b, 0))
}

/// Set a frame's addresses in place (what a router or a DR director does); `false` when the
/// frame is shorter than the two addresses.
#[inline]
pub fn set_macs(frame: &mut [u8], src: Mac, dst: Mac) -> bool {
    let Some(h) = frame.get_mut(..12) else {
        return false;
    };
    h[..6].copy_from_slice(&dst);
    h[6..].copy_from_slice(&src);
    true
}

/// The EtherType and payload after up to two VLAN tags (etherparse's `SlicedPacket` reading):
/// `ethertype` / `payload` are the Ethernet header's; a third tag is left in the payload.
pub fn skip_vlans(ethertype: u16, payload: &[u8]) -> Result<(u16, &[u8]), WireError> {
    let (mut t, mut rest) = (ethertype, payload);
    for _ in 0..2 {
        if !is_vlan(t) {
            break;
        }
        need("VLAN tag", rest, VLAN_TAG_LEN)?;
        t = be16(rest, 2);
        rest = &rest[VLAN_TAG_LEN..];
    }
    Ok((t, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips_and_agrees_with_etherparse(dst: Mac, src: Mac, t: u16, payload in proptest::collection::vec(any::<u8>(), 0..20)) {
            let repr = EthernetRepr { dst, src, ethertype: t };
            let f = repr.frame(&payload);
            let (back, rest) = EthernetRepr::parse(&f).unwrap();
            prop_assert_eq!(back, repr);
            prop_assert_eq!(rest, &payload[..]);
            let mut again = vec![0; repr.buffer_len()];
            back.emit(&mut again).unwrap();
            prop_assert_eq!(&again[..], &f[..HEADER_LEN]);
            let (e, erest) = etherparse::Ethernet2Header::from_slice(&f).unwrap();
            prop_assert_eq!((e.destination, e.source, e.ether_type.0), (dst, src, t));
            prop_assert_eq!(erest, rest);
        }

        #[test]
        fn damaged_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..30), t: u16) {
            let r = EthernetRepr::parse(&bytes);
            prop_assert_eq!(r.is_ok(), bytes.len() >= HEADER_LEN);
            let _ = skip_vlans(t, &bytes);
            let mut b = bytes.clone();
            prop_assert_eq!(set_macs(&mut b, [1; 6], [2; 6]), bytes.len() >= 12);
        }
    }

    #[test]
    fn vlans_are_looked_through_twice_at_most() {
        let inner = [0, 5, 0x08, 0x00, 0x45];
        assert_eq!(
            skip_vlans(ethertype::VLAN, &inner),
            Ok((0x0800, &inner[4..]))
        );
        let double = [0, 5, 0x81, 0x00, 0, 6, 0x86, 0xdd, 1];
        assert_eq!(
            skip_vlans(ethertype::PROVIDER_BRIDGING, &double),
            Ok((0x86dd, &double[8..]))
        );
        let triple = [0, 5, 0x81, 0x00, 0, 6, 0x81, 0x00, 0, 7, 0x08, 0x00];
        assert_eq!(
            skip_vlans(ethertype::VLAN, &triple),
            Ok((0x8100, &triple[8..]))
        );
        assert!(matches!(
            skip_vlans(ethertype::VLAN, &inner[..3]),
            Err(WireError::Truncated { .. })
        ));
        assert_eq!(
            skip_vlans(ethertype::IPV4, &inner),
            Ok((0x0800, &inner[..]))
        );
    }
}
