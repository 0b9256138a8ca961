//! The host a director runs on, as the driver tells it: interfaces, their addresses, and
//! the IPv4 routes the data plane reads (what the daemon learns from rtnetlink).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

/// The host the director runs on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeEnv {
    /// Its interfaces.
    pub ifaces: Vec<Iface>,
    /// Its IPv4 routing table (connected subnets and gateways).
    pub routes: Vec<HostRoute>,
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
