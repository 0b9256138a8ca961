//! The host a director runs on, as the driver tells it: interfaces, their addresses, and
//! the IPv4 routes the data plane reads (what the daemon learns from rtnetlink); the IPv6
//! routes, set apart ([`HostRoute6`]), and the kernel's IPv6 source address selection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::vrrp::Vip;

/// One network interface of the director's host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    /// Name as keepalived.conf uses it (`eth0`).
    pub name: String,
    /// Hardware address.
    pub mac: [u8; 6],
    /// Configured addresses, primary first (VIPs excluded).
    pub addrs: Vec<IpAddr>,
}

/// One IPv4 route of the director's host, as `ip -4 route` lists it: the data plane reads
/// it for the source address of what it sends to a real server itself (a tunnel's outer
/// header), as the kernel's route lookup in `__ip_vs_get_out_rt` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRoute {
    /// Destination network.
    pub dst: Ipv4Addr,
    /// Its prefix length (0: the default route).
    pub prefix: u8,
    /// Interface it leaves on.
    pub iface: String,
    /// Preferred source (`src`); without it, the interface's first IPv4 address.
    pub src: Option<Ipv4Addr>,
}

impl HostRoute {
    /// True when `ip` is in this route's network.
    pub fn covers(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix.min(32)))
            .unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.dst) & mask
    }
}

/// One IPv6 route of the director's host, as `ip -6 route` lists it: a connected prefix
/// (`proto kernel`, the link-local fe80::/64 included) or a route through a gateway. The
/// data plane reads the interface it leaves on; the source address is then chosen over the
/// host's addresses ([`NodeEnv::source_for6`]). A route's preferred source (`src`) is not
/// kept: `__ip_vs_route_output_v6` looks the route up with no source and asks
/// `ipv6_dev_get_saddr`, which never reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRoute6 {
    /// Destination network.
    pub dst: Ipv6Addr,
    /// Its prefix length (0: the default route).
    pub prefix: u8,
    /// Interface it leaves on.
    pub iface: String,
}

impl HostRoute6 {
    /// True when `ip` is in this route's network.
    pub fn covers(&self, ip: Ipv6Addr) -> bool {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.prefix.min(128)))
            .unwrap_or(0);
        u128::from(ip) & mask == u128::from(self.dst) & mask
    }
}

/// The host the director runs on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeEnv {
    /// Its interfaces.
    pub ifaces: Vec<Iface>,
    /// Its IPv4 routing table (connected subnets and gateways).
    pub routes: Vec<HostRoute>,
}

/// What an IPv6 tunnel's outer source is chosen from besides [`NodeEnv`]: the host's IPv6
/// routing table (connected prefixes, link-local ones included, and gateways: what
/// `ip -6 route` lists; the director keeps it apart from `NodeEnv`, whose fields its drivers
/// fill in, so it is set on its own, [`crate::director::Director::set_routes6`]) and the IPv6
/// VIPs the director holds, in the order they were added.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ipv6Side<'a> {
    /// The IPv6 routes.
    pub routes: &'a [HostRoute6],
    /// The IPv6 VIPs held, the latest last.
    pub vips: &'a [Vip],
}

impl Ipv6Side<'_> {
    /// The prefix length of `addr` on `iface`: that of the connected route the kernel adds
    /// for it (`addrconf_prefix_route`, a prefix of the address's own length), else 128.
    fn prefix_len(&self, iface: &str, addr: Ipv6Addr) -> u8 {
        self.routes
            .iter()
            .filter(|r| r.iface == iface && r.prefix > 0 && r.covers(addr))
            .map(|r| r.prefix)
            .max()
            .unwrap_or(128)
    }
}

impl NodeEnv {
    /// The interface called `name`.
    pub fn iface(&self, name: &str) -> Option<&Iface> {
        self.ifaces.iter().find(|i| i.name == name)
    }

    /// The source address a packet to `dst` leaves with: the most specific route's `src`, or
    /// the first IPv4 address of the interface it leaves on (`None`: no route).
    pub fn source_for(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        let route =
            self.routes
                .iter()
                .filter(|r| r.covers(dst))
                .fold(None::<&HostRoute>, |best, r| match best {
                    Some(b) if b.prefix >= r.prefix => Some(b),
                    _ => Some(r),
                })?;
        route
            .src
            .or_else(|| match self.primary(&route.iface, false)? {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            })
    }

    /// The source address a packet to `dst` leaves with over IPv6, as `__ip_vs_route_output_v6`
    /// finds it: the most specific of `v6`'s routes gives the outgoing interface, and
    /// `ipv6_dev_get_saddr` picks among the host's addresses and the VIPs held
    /// ([`select_source6`]); `None` when no route covers `dst` or no address qualifies.
    pub fn source_for6(&self, v6: Ipv6Side<'_>, dst: Ipv6Addr) -> Option<Ipv6Addr> {
        let route =
            v6.routes
                .iter()
                .filter(|r| r.covers(dst))
                .fold(None::<&HostRoute6>, |best, r| match best {
                    Some(b) if b.prefix >= r.prefix => Some(b),
                    _ => Some(r),
                })?;
        select_source6(self, v6, &route.iface, dst)
    }

    /// The first address of `name`, IPv6 or IPv4.
    pub fn primary(&self, name: &str, ipv6: bool) -> Option<IpAddr> {
        self.iface(name)?
            .addrs
            .iter()
            .copied()
            .find(|a| a.is_ipv6() == ipv6)
    }

    /// The source of a neighbour solicitation for `target` sent on `name`, as the kernel's
    /// source address selection picks it: an address of the same scope (a global one for a
    /// global target, the link-local one for a link-local target), else any IPv6 address
    /// of the interface.
    pub fn ndisc_source(&self, name: &str, target: Ipv6Addr) -> Option<Ipv6Addr> {
        let link_local = |a: &Ipv6Addr| a.segments()[0] & 0xffc0 == 0xfe80;
        let v6: Vec<Ipv6Addr> = self
            .iface(name)?
            .addrs
            .iter()
            .filter_map(|a| match a {
                IpAddr::V6(v) => Some(*v),
                IpAddr::V4(_) => None,
            })
            .collect();
        v6.iter()
            .find(|a| link_local(a) == link_local(&target))
            .or(v6.first())
            .copied()
    }

    /// Hardware and first IPv4 address of `name`: what the data plane sends from there.
    pub fn mac_and_v4(&self, name: &str) -> Option<([u8; 6], Option<Ipv4Addr>)> {
        self.iface(name).map(|i| {
            let v4 = i.addrs.iter().find_map(|a| match a {
                IpAddr::V4(v) => Some(*v),
                IpAddr::V6(_) => None,
            });
            (i.mac, v4)
        })
    }
}

/// An address's scope as `__ipv6_addr_src_scope` reads it: link-local (fe80::/10) and
/// loopback 2, site-local (fec0::/10) 5, multicast its scope field, anything else global 14.
fn src_scope6(a: Ipv6Addr) -> i32 {
    let s0 = a.segments()[0];
    if a.is_multicast() {
        i32::from(s0 & 0x000f)
    } else if a.is_loopback() || s0 & 0xffc0 == 0xfe80 {
        2
    } else if s0 & 0xffc0 == 0xfec0 {
        5
    } else {
        14
    }
}

/// The label of `a` in the kernel's default policy table (`ip6addrlbl_init_table`,
/// RFC 6724 with Linux's own ULA and 6to4 labels), longest prefix first.
fn label6(a: Ipv6Addr) -> u32 {
    const TABLE: [(u128, u8, u32); 9] = [
        (1, 128, 0),                // ::1/128
        (0xffff_0000_0000, 96, 4),  // ::ffff:0:0/96
        (0, 96, 3),                 // ::/96 (IPv4-compatible)
        (0x2001_0000 << 96, 32, 6), // 2001::/32 (Teredo)
        (0x2001_0010 << 96, 28, 7), // 2001:10::/28 (ORCHID)
        (0x2002 << 112, 16, 2),     // 2002::/16 (6to4)
        (0x3ffe << 112, 16, 12),    // 3ffe::/16 (6bone)
        (0xfec0 << 112, 10, 11),    // fec0::/10 (site-local)
        (0xfc00 << 112, 7, 5),      // fc00::/7 (ULA)
    ];
    let bits = u128::from(a);
    TABLE
        .iter()
        .find(|&&(net, len, _)| {
            let mask = u128::MAX << (128 - u32::from(len));
            bits & mask == net & mask
        })
        .map_or(1, |&(_, _, label)| label)
}

/// `ipv6_dev_get_saddr` for `dst` leaving on `out` (RFC 6724 section 5 as Linux 6.1 runs
/// it): every IPv6 address of the host is a candidate (only `out`'s for a link-local or
/// multicast destination), compared rule by rule — 1 the destination itself, 2 the
/// smallest scope that reaches it, 3 not deprecated, 5 the outgoing interface, 6 a matching
/// label, the ORCHID rule, 8 the longest prefix shared with `dst` (at most the address's
/// own prefix length) — and the first address found wins a tie: interfaces in order, each
/// one's addresses by scope, global first, as `ipv6_link_dev_addr` keeps them, and within a
/// scope the newest first (the IPv6 VIPs held, `v6.vips`, latest last in the slice, before the
/// interface's configured ones, which keep [`Iface::addrs`]' order). keepalived adds an IPv6
/// VIP of prefix 128 (its default) with `preferred_lft 0`: deprecated, which rule 3 passes
/// over; a VIP of a shorter prefix is a preferred address like any other. Rules 4 (home
/// addresses) and 7 (temporary addresses) decide nothing here: the host has none.
pub fn select_source6(
    env: &NodeEnv,
    v6: Ipv6Side<'_>,
    out: &str,
    dst: Ipv6Addr,
) -> Option<Ipv6Addr> {
    let dst_scope = src_scope6(dst);
    let oif_only = dst.is_multicast() || dst_scope <= 2;
    let orchid = |a: Ipv6Addr| u128::from(a) >> 100 == 0x2001_0010 >> 4;
    let mut best: Option<(Ipv6Addr, [i32; 7])> = None;
    for iface in &env.ifaces {
        if oif_only && iface.name != out {
            continue;
        }
        // (address, prefix length, deprecated)
        let mut cands: Vec<(Ipv6Addr, u8, bool)> = v6
            .vips
            .iter()
            .rev()
            .filter(|v| v.iface == iface.name)
            .filter_map(|v| match v.addr {
                IpAddr::V6(a) => Some((a, v.prefix, v.prefix == 128)),
                IpAddr::V4(_) => None,
            })
            .chain(iface.addrs.iter().filter_map(|a| match a {
                IpAddr::V6(v) => Some((*v, v6.prefix_len(&iface.name, *v), false)),
                IpAddr::V4(_) => None,
            }))
            .filter(|(a, _, _)| !a.is_unspecified() && !a.is_multicast())
            .collect();
        cands.sort_by_key(|(a, _, _)| std::cmp::Reverse(src_scope6(*a)));
        for (a, prefix, deprecated) in cands {
            let scope = src_scope6(a);
            let matchlen = (u128::from(a) ^ u128::from(dst)).leading_zeros();
            let score = [
                i32::from(a == dst),
                if scope >= dst_scope {
                    -scope
                } else {
                    scope - 128
                },
                i32::from(!deprecated),
                i32::from(iface.name == out),
                i32::from(label6(a) == label6(dst)),
                i32::from(orchid(a) == orchid(dst)),
                matchlen.min(u32::from(prefix)) as i32,
            ];
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((a, score));
            }
        }
    }
    best.map(|(a, _)| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn iface(name: &str, addrs: &[&str]) -> Iface {
        Iface {
            name: name.into(),
            mac: [2; 6],
            addrs: addrs.iter().map(|a| IpAddr::V6(v6(a))).collect(),
        }
    }

    fn route(dst: &str, prefix: u8, iface: &str) -> HostRoute6 {
        HostRoute6 {
            dst: v6(dst),
            prefix,
            iface: iface.into(),
        }
    }

    /// eth0 on 2001:db8:22::/64 and 2001:db8:4::/64 (and fd00:22::/64), eth1 on
    /// 2001:db8:5::/64, default route on eth0.
    fn env() -> (NodeEnv, Vec<HostRoute6>) {
        let env = NodeEnv {
            ifaces: vec![
                iface(
                    "eth0",
                    &[
                        "fe80::1",
                        "2001:db8:22::114",
                        "2001:db8:4::2",
                        "fd00:22::114",
                    ],
                ),
                iface("eth1", &["fe80::2", "2001:db8:5::2"]),
            ],
            routes: Vec::new(),
        };
        let routes = vec![
            route("2001:db8:22::", 64, "eth0"),
            route("2001:db8:4::", 64, "eth0"),
            route("fd00:22::", 64, "eth0"),
            route("fe80::", 64, "eth0"),
            route("2001:db8:5::", 64, "eth1"),
            route("fe80::", 64, "eth1"),
            route("::", 0, "eth0"),
        ];
        (env, routes)
    }

    /// The IPv6 side of `routes` with `vips` held.
    fn side<'a>(routes: &'a [HostRoute6], vips: &'a [Vip]) -> Ipv6Side<'a> {
        Ipv6Side { routes, vips }
    }

    #[test]
    fn the_route_picks_the_interface_and_the_rules_the_address() {
        let (env, routes) = env();
        let v = side(&routes, &[]);
        // Rule 8: of eth0's global addresses, the one sharing the longest prefix.
        assert_eq!(
            env.source_for6(v, v6("2001:db8:4:1::9")),
            Some(v6("2001:db8:4::2"))
        );
        assert_eq!(
            env.source_for6(v, v6("2001:db8:22::9")),
            Some(v6("2001:db8:22::114"))
        );
        // Rule 5 before rule 8: out of eth0, eth0's address, though eth1's shares more.
        assert_eq!(
            select_source6(&env, v, "eth0", v6("2001:db8:5::11")),
            Some(v6("2001:db8:4::2"))
        );
        // ... and over the connected route, eth1's.
        assert_eq!(
            env.source_for6(v, v6("2001:db8:5::11")),
            Some(v6("2001:db8:5::2"))
        );
        // Rule 6: a unique local destination gets the unique local address.
        assert_eq!(
            env.source_for6(v, v6("fd00:99::1")),
            Some(v6("fd00:22::114"))
        );
        // Rule 2: a link-local destination, the outgoing interface's link-local address.
        assert_eq!(
            select_source6(&env, v, "eth1", v6("fe80::99")),
            Some(v6("fe80::2"))
        );
        // Rule 1: the destination itself, when it is ours.
        assert_eq!(
            env.source_for6(v, v6("2001:db8:5::2")),
            Some(v6("2001:db8:5::2"))
        );
        // No route, no source.
        let connected: Vec<HostRoute6> = routes.iter().filter(|r| r.prefix > 0).cloned().collect();
        let dst = v6("2001:db8:99::1");
        assert_eq!(env.source_for6(side(&connected, &[]), dst), None);
    }

    // keepalived's IPv6 VIPs: one of prefix 128 is deprecated, chosen only when nothing else
    // qualifies; a /64 one is the newest address of its interface and wins a tie.
    #[test]
    fn held_vips_are_candidates_as_keepalived_adds_them() {
        let vip = |addr: &str, prefix| Vip {
            iface: "eth0".into(),
            addr: IpAddr::V6(v6(addr)),
            prefix,
        };
        let (env, routes) = env();
        let dst = v6("2001:db8:22:1::9");
        let from = |env: &NodeEnv, held: &[Vip]| env.source_for6(side(&routes, held), dst);
        assert_eq!(from(&env, &[]), Some(v6("2001:db8:22::114")));
        let held = [vip("2001:db8:22::118", 128)];
        assert_eq!(from(&env, &held), Some(v6("2001:db8:22::114")));
        let held = [vip("2001:db8:22::118", 64), vip("2001:db8:22::119", 64)];
        assert_eq!(from(&env, &held), Some(v6("2001:db8:22::119")));
        let bare = NodeEnv {
            ifaces: vec![iface("eth0", &["fe80::1"])],
            ..env.clone()
        };
        let held = [vip("2001:db8:22::118", 128)];
        assert_eq!(from(&bare, &held), Some(v6("2001:db8:22::118")));
    }

    #[test]
    fn the_shared_prefix_counts_up_to_the_address_prefix_only() {
        // 2001:db8:5::2/32 shares 77 bits with the destination but counts 32; the /64
        // address shares 45 and counts them all.
        let env = NodeEnv {
            ifaces: vec![iface("eth0", &["2001:db8:5::2", "2001:db8:4::2"])],
            routes: Vec::new(),
        };
        let routes = [
            route("2001:db8::", 32, "eth0"),
            route("2001:db8:4::", 64, "eth0"),
        ];
        assert_eq!(
            env.source_for6(side(&routes, &[]), v6("2001:db8:5::11")),
            Some(v6("2001:db8:4::2"))
        );
    }

    #[test]
    fn labels_and_scopes_follow_the_kernels_tables() {
        assert_eq!(label6(v6("::1")), 0);
        assert_eq!(label6(v6("2001:db8::1")), 1);
        assert_eq!(label6(v6("2002::1")), 2);
        assert_eq!(label6(v6("::ffff:192.0.2.1")), 4);
        assert_eq!(label6(v6("fd00::1")), 5);
        assert_eq!(label6(v6("2001::1")), 6);
        assert_eq!(label6(v6("2001:10::1")), 7);
        assert_eq!(label6(v6("fec0::1")), 11);
        assert_eq!(label6(v6("3ffe::1")), 12);
        assert_eq!(src_scope6(v6("fe80::1")), 2);
        assert_eq!(src_scope6(v6("::1")), 2);
        assert_eq!(src_scope6(v6("fec0::1")), 5);
        assert_eq!(src_scope6(v6("ff05::1")), 5);
        assert_eq!(src_scope6(v6("2001:db8::1")), 14);
    }
}
