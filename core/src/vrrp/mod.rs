//! VRRP v2 (RFC 3768) and v3 (RFC 5798) with keepalived 2.x semantics.

pub mod arp;
pub mod wire;
