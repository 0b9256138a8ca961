//! Mapping a scenario's addresses into 198.18.0.0/15 for the netns harness.
//!
//! The harness must not use the scenario's real addresses (223.202.22.0/24 belongs to someone),
//! so every address is moved into 198.18.0.0/15 (RFC 2544's benchmarking range) by a mapping
//! that is deterministic, injective and keeps subnets whole:
//!
//! 1. Every interface's connected subnet is a *block*. Blocks contained in a larger block are
//!    merged into it. Blocks are sorted by size (largest first), then by network address, and
//!    laid out one after the other from 198.18.0.0. Each block is a power of two laid out in
//!    decreasing size, so each starts aligned to its own size and keeps its prefix length.
//! 2. An address inside a block keeps its offset in the block: the host part stays readable.
//!    For the seed topology (three /24s) this gives
//!    192.168.22.0/24 → 198.18.0.0/24, 203.0.113.0/24 → 198.18.1.0/24 and
//!    223.202.22.0/24 → 198.18.2.0/24, so 223.202.22.114 → 198.18.2.114.
//! 3. Other scenario addresses (a VIP on a real server's `lo` outside every subnet, say) get
//!    one /32 each after the last block, in address order.
//!
//! Distinct blocks do not overlap and offsets are unique inside a block, so the mapping is
//! injective; it fails rather than wrap when the blocks exceed the /15's 131072 addresses.
//!
//! IPv6 addresses are not mapped: a scenario's IPv6 addresses live inside the harness's
//! namespaces as written (scenarios use 2001:db8::/32, the documentation prefix).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use crate::model::{network_of, Role, Scenario};

/// 198.18.0.0, the start of the benchmarking range.
pub const BASE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
/// Prefix length of the benchmarking range.
pub const PREFIX_LEN: u8 = 15;
const SPACE: u64 = 1 << (32 - PREFIX_LEN);

/// Why a scenario's addresses do not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressMapError {
    /// The subnets (plus loose addresses) need more than 198.18.0.0/15 holds.
    #[error(
        "the scenario's subnets need {needed} addresses, more than 198.18.0.0/15 holds (131072)"
    )]
    TooLarge {
        /// Addresses needed.
        needed: u64,
    },
}

/// One subnet and where it lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    network: u32,
    prefix_len: u8,
    mapped: u32,
}

impl Block {
    fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix_len))
    }

    fn offset_of(&self, addr: u32) -> Option<u32> {
        let off = addr.checked_sub(self.network)?;
        (u64::from(off) < self.size()).then_some(off)
    }
}

/// A deterministic, injective map from a scenario's addresses into 198.18.0.0/15.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressMap {
    blocks: Vec<Block>,
    loose: Vec<(Ipv4Addr, Ipv4Addr)>,
}

/// The IPv4 address `a` is, if it is one (only those are mapped).
fn v4(a: &IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(v) => Some(*v),
        IpAddr::V6(_) => None,
    }
}

impl AddressMap {
    /// The map for a scenario: its interface subnets, then every other address it names
    /// (gateways, VIPs on `lo`, workload targets, expected VIPs and IPVS destinations).
    pub fn for_scenario(s: &Scenario) -> Result<AddressMap, AddressMapError> {
        let mut subnets = Vec::new();
        let mut others = Vec::new();
        for h in &s.hosts {
            for i in &h.interfaces {
                subnets.push((i.addr, i.prefix_len));
            }
            others.extend(h.gateway);
            match &h.role {
                Role::RealServer(rs) => others.extend(rs.vips_on_lo.iter().filter_map(v4)),
                Role::Client(c) => others.extend(v4(&c.workload.target.ip())),
                Role::Director(_) | Role::Gateway(_) => {}
            }
        }
        others.extend(s.expect.vip_owner.keys().filter_map(v4));
        others.extend(
            s.expect
                .ipvs_destinations
                .values()
                .flatten()
                .filter_map(|a| v4(&a.ip())),
        );
        AddressMap::new(subnets, others)
    }

    /// The map for these subnets (address and prefix length; host bits are ignored) and
    /// these other addresses.
    pub fn new(
        subnets: impl IntoIterator<Item = (Ipv4Addr, u8)>,
        others: impl IntoIterator<Item = Ipv4Addr>,
    ) -> Result<AddressMap, AddressMapError> {
        let mut nets: Vec<(u8, u32)> = subnets
            .into_iter()
            .map(|(a, len)| {
                let len = len.min(32);
                (len, u32::from(network_of(a, len)))
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Largest first, so a contained subnet meets its container already placed.
        nets.sort_by_key(|&(len, net)| (len, net));
        let mut blocks: Vec<Block> = Vec::new();
        let mut cursor: u64 = 0;
        for (len, net) in nets {
            let candidate = Block {
                network: net,
                prefix_len: len,
                mapped: 0,
            };
            if blocks.iter().any(|b| b.offset_of(net).is_some()) {
                continue;
            }
            let size = candidate.size();
            if cursor + size > SPACE {
                return Err(AddressMapError::TooLarge {
                    needed: cursor + size,
                });
            }
            let mapped = u32::from(BASE) + u32::try_from(cursor).unwrap_or(u32::MAX);
            blocks.push(Block {
                mapped,
                ..candidate
            });
            cursor += size;
        }
        let loose_addrs: BTreeSet<Ipv4Addr> = others
            .into_iter()
            .filter(|a| !blocks.iter().any(|b| b.offset_of(u32::from(*a)).is_some()))
            .collect();
        let needed = cursor + loose_addrs.len() as u64;
        if needed > SPACE {
            return Err(AddressMapError::TooLarge { needed });
        }
        let loose = loose_addrs
            .into_iter()
            .zip(cursor..)
            .map(|(a, off)| {
                (
                    a,
                    Ipv4Addr::from(u32::from(BASE) + u32::try_from(off).unwrap_or(u32::MAX)),
                )
            })
            .collect();
        Ok(AddressMap { blocks, loose })
    }

    /// Where `addr` lands, or `None` for an address the scenario does not use
    /// (127.0.0.1, a netmask, a multicast group...).
    pub fn map(&self, addr: Ipv4Addr) -> Option<Ipv4Addr> {
        let a = u32::from(addr);
        self.blocks
            .iter()
            .find_map(|b| b.offset_of(a).map(|off| Ipv4Addr::from(b.mapped + off)))
            .or_else(|| {
                self.loose
                    .iter()
                    .find(|(from, _)| *from == addr)
                    .map(|(_, to)| *to)
            })
    }

    /// The inverse of [`AddressMap::map`].
    pub fn unmap(&self, mapped: Ipv4Addr) -> Option<Ipv4Addr> {
        let m = u32::from(mapped);
        self.blocks
            .iter()
            .find_map(|b| {
                let off = m.checked_sub(b.mapped)?;
                (u64::from(off) < b.size()).then(|| Ipv4Addr::from(b.network + off))
            })
            .or_else(|| {
                self.loose
                    .iter()
                    .find(|(_, to)| *to == mapped)
                    .map(|(from, _)| *from)
            })
    }

    /// The subnets and where they land, as (from, to, prefix length), in layout order.
    pub fn subnets(&self) -> Vec<(Ipv4Addr, Ipv4Addr, u8)> {
        self.blocks
            .iter()
            .map(|b| {
                (
                    Ipv4Addr::from(b.network),
                    Ipv4Addr::from(b.mapped),
                    b.prefix_len,
                )
            })
            .collect()
    }

    /// Rewrites every IPv4 literal of `text` that the map knows (for a keepalived.conf);
    /// other literals (netmasks, 127.0.0.1) are left alone.
    pub fn rewrite_text(&self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut i = 0;
        let is_part = |b: u8| b.is_ascii_digit() || b == b'.';
        while i < bytes.len() {
            let starts_token = bytes.get(i).is_some_and(|b| b.is_ascii_digit())
                && (i == 0 || bytes.get(i - 1).is_none_or(|b| !is_part(*b)));
            if !starts_token {
                i += 1;
                continue;
            }
            let end = (i..bytes.len())
                .find(|&j| bytes.get(j).is_none_or(|b| !is_part(*b)))
                .unwrap_or(bytes.len());
            let token = text.get(i..end).unwrap_or("");
            if let Some(mapped) = token.parse::<Ipv4Addr>().ok().and_then(|a| self.map(a)) {
                out.push_str(text.get(copied..i).unwrap_or(""));
                out.push_str(&mapped.to_string());
                copied = end;
            }
            i = end;
        }
        out.push_str(text.get(copied..).unwrap_or(""));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn seed_topology_keeps_host_octets() {
        let m = AddressMap::new(
            [
                (ip("223.202.22.114"), 24),
                (ip("192.168.22.114"), 24),
                (ip("203.0.113.10"), 24),
            ],
            [ip("223.202.22.118"), ip("10.9.9.9")],
        )
        .unwrap();
        assert_eq!(m.map(ip("192.168.22.118")), Some(ip("198.18.0.118")));
        assert_eq!(m.map(ip("203.0.113.10")), Some(ip("198.18.1.10")));
        assert_eq!(m.map(ip("223.202.22.114")), Some(ip("198.18.2.114")));
        assert_eq!(m.map(ip("10.9.9.9")), Some(ip("198.18.3.0")));
        assert_eq!(m.map(ip("127.0.0.1")), None);
        assert_eq!(m.unmap(ip("198.18.2.118")), Some(ip("223.202.22.118")));
    }

    #[test]
    fn contained_subnets_merge_and_sizes_align() {
        let m = AddressMap::new(
            [
                (ip("10.1.2.3"), 24),
                (ip("10.1.0.0"), 16),
                (ip("172.16.0.1"), 30),
            ],
            [],
        )
        .unwrap();
        assert_eq!(
            m.subnets(),
            vec![
                (ip("10.1.0.0"), ip("198.18.0.0"), 16),
                (ip("172.16.0.0"), ip("198.19.0.0"), 30)
            ]
        );
        assert_eq!(m.map(ip("10.1.2.3")), Some(ip("198.18.2.3")));
    }

    #[test]
    fn too_large_is_an_error_not_a_wrap() {
        let err = AddressMap::new([(ip("10.0.0.0"), 15), (ip("11.0.0.0"), 24)], []).unwrap_err();
        assert_eq!(err, AddressMapError::TooLarge { needed: 131_328 });
        assert_eq!(
            err.to_string(),
            "the scenario's subnets need 131328 addresses, more than 198.18.0.0/15 holds (131072)"
        );
    }

    #[test]
    fn rewrites_known_literals_only() {
        let m = AddressMap::new([(ip("223.202.22.114"), 24)], []).unwrap();
        let conf = "virtual_server 223.202.22.118 80 {\n nat_mask 255.255.255.240\n smtp_server 127.0.0.1\n \
                    real_server 223.202.22.116 80\n 223.202.22.1180 1.223.202.22.1\n}";
        assert_eq!(
            m.rewrite_text(conf),
            "virtual_server 198.18.0.118 80 {\n nat_mask 255.255.255.240\n smtp_server 127.0.0.1\n \
             real_server 198.18.0.116 80\n 223.202.22.1180 1.223.202.22.1\n}"
        );
    }

    proptest! {
        #[test]
        fn injective_and_inside_the_benchmark_range(
            subnets in proptest::collection::vec((any::<u32>(), 20u8..=32), 0..12),
            others in proptest::collection::vec(any::<u32>(), 0..12),
            probes in proptest::collection::vec(any::<u32>(), 0..64),
        ) {
            let subnets: Vec<(Ipv4Addr, u8)> = subnets.into_iter().map(|(a, l)| (Ipv4Addr::from(a), l)).collect();
            let others: Vec<Ipv4Addr> = others.into_iter().map(Ipv4Addr::from).collect();
            let m = AddressMap::new(subnets.clone(), others.clone()).unwrap();
            // Every subnet's first and last address, every host address, and random probes.
            let mut addrs: BTreeSet<Ipv4Addr> = others.iter().copied().collect();
            for (a, l) in &subnets {
                let net = u32::from(network_of(*a, *l));
                let last = net | (u32::MAX.checked_shr(u32::from(*l)).unwrap_or(0));
                addrs.extend([*a, Ipv4Addr::from(net), Ipv4Addr::from(last)]);
            }
            addrs.extend(probes.into_iter().map(Ipv4Addr::from));
            let mut seen = BTreeSet::new();
            for a in addrs {
                let in_scenario = others.contains(&a) || subnets.iter().any(|(s, l)| network_of(a, *l) == network_of(*s, *l));
                match m.map(a) {
                    Some(to) => {
                        prop_assert_eq!(network_of(to, PREFIX_LEN), BASE, "{} mapped outside: {}", a, to);
                        prop_assert!(seen.insert(to), "two addresses map to {}", to);
                        prop_assert_eq!(m.unmap(to), Some(a));
                    }
                    None => prop_assert!(!in_scenario, "{} is in the scenario but unmapped", a),
                }
            }
        }
    }
}
