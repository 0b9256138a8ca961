//! Packet layouts: every header lvsd reads or writes, parsed and emitted in one place.
//!
//! Modelled on smoltcp's `wire/`: each layer has a `*Repr` (the header's fields as plain
//! data) with `parse(&[u8]) -> Result<(Repr, payload), WireError>` — a reason on failure,
//! never a panic — and `emit(&self, buf)` into a buffer the caller provides, sized by
//! `buffer_len()`. Checksums (IPv4 header, TCP/UDP/ICMPv6 pseudo-headers, VRRP) live in
//! [`checksum`]. The data plane's and the simulator's hot readers are hand-written byte
//! reads ([`flow`], [`tcp::Ipv4Segment`]) whose checks are those of etherparse 0.16, and
//! the tests hold them to it.
//!
//! Layers: [`ethernet`] (with 802.1Q tags), [`arp`], [`ipv4`], [`ipv6`] (with its extension
//! headers), [`icmpv6`] (the neighbour advertisement VRRP sends), [`udp`], [`tcp`],
//! [`sctp`] (common header, chunks, CRC32c), [`vrrp`] (v2 / v3), [`tunnel`] (IPIP / GUE / GRE), [`ipvs_sync`] (the IPVS sync daemon's
//! message).

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod flow;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod ipvs_sync;
pub mod sctp;
pub mod tcp;
pub mod tunnel;
pub mod udp;
pub mod vrrp;

pub use ethernet::Mac;

/// IP protocol numbers lvsd meets.
pub mod ip_proto {
    /// IPv6 hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IP in IP (IPIP tunnels).
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// IPv6 encapsulated in IP (an IPv6-in-IPv6 tunnel's outer next header).
    pub const IPV6: u8 = 41;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment header.
    pub const IPV6_FRAG: u8 = 44;
    /// GRE.
    pub const GRE: u8 = 47;
    /// IPsec authentication header.
    pub const AUTH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 destination options.
    pub const IPV6_DEST_OPTS: u8 = 60;
    /// VRRP.
    pub const VRRP: u8 = 112;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// Why bytes are not the header they should be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than the header or a length field needs.
    #[error("truncated {layer}: need {needed} bytes, have {got}")]
    Truncated {
        /// Which layer.
        layer: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// A field has a value the layer forbids (version, header length, ...).
    #[error("malformed {layer}: {reason}")]
    Malformed {
        /// Which layer.
        layer: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A well-formed header of a kind this layer does not carry.
    #[error("unsupported {layer} {what} {value:#x}")]
    Unsupported {
        /// Which layer.
        layer: &'static str,
        /// Which field.
        what: &'static str,
        /// Its value.
        value: u32,
    },
    /// A checksum does not verify.
    #[error("bad {layer} checksum {got:#06x}, expected {expected:#06x}")]
    Checksum {
        /// Which layer.
        layer: &'static str,
        /// Carried.
        got: u16,
        /// Computed.
        expected: u16,
    },
    /// A 32-bit CRC (SCTP's CRC32c) does not verify.
    #[error("bad {layer} checksum {got:#010x}, expected {expected:#010x}")]
    Crc {
        /// Which layer.
        layer: &'static str,
        /// Carried.
        got: u32,
        /// Computed.
        expected: u32,
    },
    /// The caller's buffer or a length field cannot hold what is to be emitted.
    #[error("{layer} too large to emit")]
    TooBig {
        /// Which layer.
        layer: &'static str,
    },
}

/// `bytes[at..at + 2]` as a big-endian u16 (the caller checked the length).
#[inline(always)]
pub(crate) fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// `bytes[at..at + 4]` as a big-endian u32 (the caller checked the length).
#[inline(always)]
pub(crate) fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// `Truncated` unless `bytes` has `needed` bytes.
#[inline]
pub(crate) fn need(layer: &'static str, bytes: &[u8], needed: usize) -> Result<(), WireError> {
    if bytes.len() < needed {
        return Err(WireError::Truncated {
            layer,
            needed,
            got: bytes.len(),
        });
    }
    Ok(())
}

/// `TooBig` unless `buf` holds `len` bytes.
#[inline]
pub(crate) fn room(layer: &'static str, buf: &[u8], len: usize) -> Result<(), WireError> {
    if buf.len() < len {
        return Err(WireError::TooBig { layer });
    }
    Ok(())
}
