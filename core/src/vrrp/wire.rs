//! VRRP advertisement codec and the ARP / neighbour-advertisement frames a new master sends.
//!
//! SKELETON: the codec helper fills encode/decode; the state machine builds on [`Advert`].

use std::net::IpAddr;

/// VRRP protocol version.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Version {
    /// RFC 3768.
    V2,
    /// RFC 5798.
    V3,
}

/// Authentication carried by a v2 advertisement.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Auth {
    /// Type 0.
    None,
    /// Type 1: simple text password, zero-padded to 8 bytes.
    Pass([u8; 8]),
    /// Type 2: IPsec AH (keepalived's `auth_type AH`).
    Ah,
}

/// One VRRP advertisement, independent of the IP layer that carries it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Advert {
    /// Version 2 or 3.
    pub version: Version,
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// Priority: 0 = master resigning, 255 = address owner.
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2 carries whole seconds).
    pub advert_int_cs: u16,
    /// v2 authentication (always `Auth::None` for v3).
    pub auth: Auth,
    /// The virtual addresses.
    pub addrs: Vec<IpAddr>,
}
