//! The Internet checksum (RFC 1071) and the pseudo-headers TCP, UDP, ICMPv6 and VRRP sum.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Adds `bytes` as big-endian 16-bit words (an odd last byte padded with zero) to a running
/// sum. Words are taken four bytes at a time and folded at the end, which gives the same
/// ones-complement result since 2^16 = 1 modulo 0xffff. Every part summed before the last
/// must have even length.
#[inline]
pub fn sum(mut acc: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 4];
        last[..rest.len()].copy_from_slice(rest);
        acc += u64::from(u32::from_be_bytes(last));
    }
    acc
}

/// The checksum of a running sum: folded to 16 bits with end-around carry, complemented.
#[inline]
pub fn finish(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // The loop leaves at most 16 bits.
    !(acc as u16)
}

/// The checksum of `parts` laid end to end (every part but the last of even length).
pub fn of(parts: &[&[u8]]) -> u16 {
    finish(parts.iter().fold(0, |acc, p| sum(acc, p)))
}

/// The checksum an IPv4 header should carry (its checksum field, bytes 10..12, skipped).
pub fn ipv4_header(header: &[u8]) -> u16 {
    let head = header.get(..10).unwrap_or(header);
    let tail = header.get(12..).unwrap_or(&[]);
    of(&[head, tail])
}

/// The running sum of the IPv4 pseudo-header (RFC 793 / 768): addresses, protocol, length.
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u32) -> u64 {
    let s = u64::from(u32::from(src));
    let d = u64::from(u32::from(dst));
    // Only the low 16 bits of the length travel in the IPv4 pseudo-header.
    s + d + u64::from(proto) + u64::from(len & 0xffff)
}

/// The running sum of the IPv6 pseudo-header (RFC 8200 8.1): addresses, length, next header.
pub fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, len: u32) -> u64 {
    let acc = sum(sum(0, &src.octets()), &dst.octets());
    acc + u64::from(len) + u64::from(proto)
}

/// The pseudo-header sum for `src` → `dst` of either family; `None` when they differ.
pub fn pseudo(src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> Option<u64> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(pseudo_v4(s, d, proto, len)),
        (IpAddr::V6(s), IpAddr::V6(d)) => Some(pseudo_v6(s, d, proto, len)),
        _ => None,
    }
}

/// The checksum of a transport message (its checksum field, bytes `at..at + 2`, skipped)
/// after the pseudo-header sum `pseudo`; `at` must be even.
pub fn transport(pseudo: u64, msg: &[u8], at: usize) -> u16 {
    let head = msg.get(..at).unwrap_or(msg);
    let tail = msg.get(at + 2..).unwrap_or(&[]);
    finish(sum(sum(pseudo, head), tail))
}

/// TCP checksum of `segment` from `src` to `dst`.
pub fn tcp(src: IpAddr, dst: IpAddr, segment: &[u8]) -> u16 {
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    let p = pseudo(src, dst, super::ip_proto::TCP, len).unwrap_or(0);
    transport(p, segment, 16)
}

/// UDP checksum of `datagram` from `src` to `dst`; a computed 0 is sent as 0xffff (RFC 768:
/// 0 means "no checksum").
pub fn udp(src: IpAddr, dst: IpAddr, datagram: &[u8]) -> u16 {
    let len = u32::try_from(datagram.len()).unwrap_or(u32::MAX);
    let p = pseudo(src, dst, super::ip_proto::UDP, len).unwrap_or(0);
    match transport(p, datagram, 6) {
        0 => 0xffff,
        c => c,
    }
}

/// ICMPv6 checksum of `msg` from `src` to `dst` (RFC 4443 2.3).
pub fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    transport(pseudo_v6(src, dst, super::ip_proto::ICMPV6, len), msg, 2)
}

/// VRRP checksum of `msg` (RFC 3768 5.3.8 / RFC 5798 5.2.8): v2 over IPv4 sums the message
/// alone; v3 over IPv4 and both versions over IPv6 (as the kernel's `IPV6_CHECKSUM` does)
/// add the pseudo-header with destination `pseudo_dst`.
pub fn vrrp(v3: bool, src: IpAddr, pseudo_dst: IpAddr, msg: &[u8]) -> u16 {
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    let p = match (src, pseudo_dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) if v3 => pseudo_v4(s, d, super::ip_proto::VRRP, len),
        (IpAddr::V6(s), IpAddr::V6(d)) => pseudo_v6(s, d, super::ip_proto::VRRP, len),
        _ => 0,
    };
    transport(p, msg, 6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071's own example: 0001 f203 f4f5 f6f7 sums to ddf2, checksum 220d.
    #[test]
    fn rfc1071_example() {
        assert_eq!(
            of(&[&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]]),
            0x220d
        );
        assert_eq!(of(&[]), 0xffff);
    }

    /// Reference: one 16-bit word at a time.
    fn slow(bytes: &[u8]) -> u16 {
        let mut s: u64 = 0;
        for c in bytes.chunks(2) {
            s += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        finish(s)
    }

    proptest! {
        #[test]
        fn word_sums_agree_with_the_plain_sum(
            a in proptest::collection::vec(any::<u8>(), 0..40).prop_map(|mut v| { v.truncate(v.len() & !1); v }),
            b in proptest::collection::vec(any::<u8>(), 0..41),
        ) {
            let joined: Vec<u8> = a.iter().chain(&b).copied().collect();
            prop_assert_eq!(of(&[&a, &b]), slow(&joined));
        }

        #[test]
        fn pseudo_headers_are_the_laid_out_bytes(s: [u8; 4], d: [u8; 4], s6: [u8; 16], d6: [u8; 16], p: u8, len: u16) {
            let mut v4 = Vec::new();
            v4.extend_from_slice(&s);
            v4.extend_from_slice(&d);
            v4.extend_from_slice(&[0, p]);
            v4.extend_from_slice(&len.to_be_bytes());
            prop_assert_eq!(finish(pseudo_v4(s.into(), d.into(), p, len.into())), slow(&v4));
            let mut v6 = Vec::new();
            v6.extend_from_slice(&s6);
            v6.extend_from_slice(&d6);
            v6.extend_from_slice(&u32::from(len).to_be_bytes());
            v6.extend_from_slice(&[0, 0, 0, p]);
            prop_assert_eq!(finish(pseudo_v6(s6.into(), d6.into(), p, len.into())), slow(&v6));
        }
    }
}
