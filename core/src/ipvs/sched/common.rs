//! What the schedulers share: the `-b` flags, the packet fields they read, and the kernel's
//! helpers (`ip_vs_dest_conn_overhead`, the overload test, address folding, `gcd`).

use std::net::IpAddr;

use crate::ipvs::dest::Dest;

/// `-b` scheduler flags (kernel IP_VS_SVC_F_SCHED1..3).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SchedFlags {
    /// `sh-fallback` / `mh-fallback` (SCHED1).
    pub fallback: bool,
    /// `sh-port` / `mh-port` (SCHED2).
    pub port: bool,
}

/// The packet fields a scheduler may look at.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SchedPacket {
    /// Client address.
    pub src: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Virtual address.
    pub dst: IpAddr,
    /// Virtual port.
    pub dport: u16,
}

/// `ip_vs_dest_conn_overhead`: `(activeconns << 8) + inactconns`, in the
/// kernel's `int` arithmetic (wrapping, as the kernel builds with
/// `-fno-strict-overflow`).
pub(super) fn conn_overhead(d: &Dest) -> i32 {
    (d.activeconns as i32)
        .wrapping_shl(8)
        .wrapping_add(d.inactconns as i32)
}

/// `IP_VS_DEST_F_OVERLOAD` or a non-positive weight: the test most
/// schedulers use to skip a destination.
pub(super) fn is_unavailable(d: &Dest) -> bool {
    d.weight <= 0 || d.overloaded
}

/// The kernel's address fold for hashing: the IPv4 address in host order,
/// or the XOR of the four 32-bit words of an IPv6 address.
pub(super) fn addr_fold(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

/// `hash_32(val, bits)` of `include/linux/hash.h` (no arch override on x86): the top `bits`
/// bits of `val * GOLDEN_RATIO_32` (`0x61C88647`) mod 2^32. The dh, sh and lblc(r) tables
/// hash with it.
pub(super) fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

/// Kernel `gcd()` on positive ints.
pub(super) fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a
}

/// Index of the destination `addr:port`, if it is in the list.
pub(super) fn find(dests: &[Dest], id: (IpAddr, u16)) -> Option<usize> {
    dests.iter().position(|d| d.addr == id.0 && d.port == id.1)
}
