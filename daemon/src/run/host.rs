//! The host through rtnetlink: what interfaces, addresses and IPv4 routes it has
//! ([`Host::snapshot`], the director's `NodeEnv`), virtual addresses added and removed as
//! keepalived adds them, and the link / address monitor turned into the director's inputs
//! ([`Follower`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use lvs_core::config::model::VirtualAddress;
use lvs_core::director::{
    ApplyError, HostRoute, HostRoute6, Iface, IfaceEvent, Input, NodeEnv, Vip,
};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::{Handle, RouteMessageBuilder};

/// One interface as the kernel lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// ifindex.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Hardware address (zero for interfaces without one).
    pub mac: [u8; 6],
    /// Administratively up and running: keepalived's `IF_FLAGS_UP`.
    pub up: bool,
}

fn link_of(msg: &LinkMessage) -> Option<Link> {
    let name = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })?;
    let mut mac = [0u8; 6];
    if let Some(LinkAttribute::Address(a)) = msg
        .attributes
        .iter()
        .find(|a| matches!(a, LinkAttribute::Address(_)))
    {
        if a.len() == 6 {
            mac.copy_from_slice(a);
        }
    }
    let flags = msg.header.flags;
    Some(Link {
        index: msg.header.index,
        name,
        mac,
        up: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::Running),
    })
}

/// One address as the kernel lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Addr {
    index: u32,
    addr: IpAddr,
    secondary: bool,
}

fn addr_of(msg: &AddressMessage) -> Option<Addr> {
    // IFA_LOCAL is the interface's own IPv4 address (IFA_ADDRESS is the peer's on a
    // point-to-point link); IPv6 has IFA_ADDRESS only.
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let addr = local.or_else(|| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })?;
    Some(Addr {
        index: msg.header.index,
        addr,
        secondary: msg.header.flags.contains(AddressHeaderFlags::Secondary),
    })
}

fn is_link_local(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80)
}

/// The director's view of the host from the kernel's lists: per interface its IPv4
/// addresses (primary ones first, as `ip addr` lists them), its link-local IPv6 address
/// (keepalived's IPv6 VRRP source), then the other IPv6 ones; the addresses in `vips`
/// left out (they are the director's to hold, also when a crashed predecessor left them).
fn node_env(
    links: &[Link],
    addrs: &[Addr],
    routes: Vec<HostRoute>,
    vips: &BTreeSet<IpAddr>,
) -> NodeEnv {
    let rank = |a: &Addr| match a.addr {
        IpAddr::V4(_) if !a.secondary => 0,
        IpAddr::V4(_) => 1,
        ip if is_link_local(&ip) => 2,
        IpAddr::V6(_) => 3,
    };
    let ifaces = links
        .iter()
        .map(|l| {
            let mut mine: Vec<&Addr> = addrs
                .iter()
                .filter(|a| a.index == l.index && !vips.contains(&a.addr))
                .collect();
            mine.sort_by_key(|a| rank(a));
            Iface {
                name: l.name.clone(),
                mac: l.mac,
                addrs: mine.iter().map(|a| a.addr).collect(),
            }
        })
        .collect();
    NodeEnv { ifaces, routes }
}

/// rtnetlink requests.
#[derive(Clone)]
pub struct Host {
    handle: Handle,
}

/// What the host has.
pub struct Snapshot {
    /// Its interfaces.
    pub links: Vec<Link>,
    /// The director's view of it.
    pub env: NodeEnv,
    /// Its IPv6 routes (`ip -6 route`'s main table), for [`Director::set_routes6`].
    ///
    /// [`Director::set_routes6`]: lvs_core::director::Director::set_routes6
    pub routes6: Vec<HostRoute6>,
}

/// How keepalived.conf asks for one virtual address beyond address, prefix and `dev`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrOptions {
    /// `label LABEL`.
    pub label: Option<String>,
    /// `brd ADDRESS` (keepalived sets no broadcast address without it).
    pub brd: Option<Ipv4Addr>,
    /// `scope host|link|site|global|nowhere|N` (default global).
    pub scope: AddressScope,
}

impl AddrOptions {
    /// From a `virtual_ipaddress` line.
    pub fn of(v: &VirtualAddress) -> AddrOptions {
        let words: Vec<&str> = v.other.iter().map(|w| w.value.as_str()).collect();
        let after = |kw: &str| {
            words
                .iter()
                .position(|w| *w == kw)
                .and_then(|i| words.get(i + 1).copied())
        };
        let scope = match after("scope") {
            Some("host") => AddressScope::Host,
            Some("link") => AddressScope::Link,
            Some("site") => AddressScope::Site,
            Some("nowhere") => AddressScope::Nowhere,
            Some(n) => n
                .parse::<u8>()
                .map_or(AddressScope::Universe, AddressScope::from),
            None => AddressScope::Universe,
        };
        AddrOptions {
            label: v.label.as_ref().map(|l| l.value.clone()),
            brd: after("brd").and_then(|b| b.parse().ok()),
            scope,
        }
    }
}

fn apply_error(e: rtnetlink::Error) -> ApplyError {
    match e {
        rtnetlink::Error::NetlinkError(m) => {
            let errno = m.raw_code().abs();
            ApplyError {
                errno: Some(errno),
                message: std::io::Error::from_raw_os_error(errno).to_string(),
            }
        }
        other => ApplyError {
            errno: None,
            message: other.to_string(),
        },
    }
}

impl Host {
    /// Open a connection (its task runs on the current runtime).
    pub fn new() -> std::io::Result<Host> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Host { handle })
    }

    /// The interfaces.
    pub async fn links(&self) -> Result<Vec<Link>, rtnetlink::Error> {
        let msgs: Vec<LinkMessage> = self.handle.link().get().execute().try_collect().await?;
        Ok(msgs.iter().filter_map(link_of).collect())
    }

    /// Interfaces, addresses and IPv4 routes, the addresses in `vips` left out.
    pub async fn snapshot(&self, vips: &BTreeSet<IpAddr>) -> Result<Snapshot, rtnetlink::Error> {
        let links = self.links().await?;
        let addrs: Vec<AddressMessage> =
            self.handle.address().get().execute().try_collect().await?;
        let addrs: Vec<Addr> = addrs.iter().filter_map(addr_of).collect();
        let routes: Vec<RouteMessage> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await?;
        let names: HashMap<u32, &str> = links.iter().map(|l| (l.index, l.name.as_str())).collect();
        let routes = routes
            .iter()
            .filter_map(|r| host_route(r, &names))
            .collect();
        let env = node_env(&links, &addrs, routes, vips);
        let routes6: Vec<RouteMessage> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv6Addr>::new().build())
            .execute()
            .try_collect()
            .await?;
        let routes6 = routes6
            .iter()
            .filter_map(|r| host_route6(r, &names))
            .collect();
        Ok(Snapshot {
            links,
            env,
            routes6,
        })
    }

    /// Add a virtual address as keepalived adds one: its prefix, `label`, `brd` (none
    /// unless given) and `scope`; IPv6 ones without duplicate address detection.
    pub async fn add_vip(
        &self,
        ifindex: u32,
        vip: &Vip,
        opts: &AddrOptions,
    ) -> Result<(), ApplyError> {
        let mut req = self.handle.address().add(ifindex, vip.addr, vip.prefix);
        let msg = req.message_mut();
        msg.attributes
            .retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
        if let Some(brd) = opts.brd {
            msg.attributes.push(AddressAttribute::Broadcast(brd));
        }
        if let Some(label) = &opts.label {
            msg.attributes.push(AddressAttribute::Label(label.clone()));
        }
        msg.header.scope = opts.scope;
        if vip.addr.is_ipv6() {
            msg.header.flags = AddressHeaderFlags::Nodad;
        }
        req.execute().await.map_err(apply_error)
    }

    /// Remove an address from an interface.
    pub async fn del_addr(&self, ifindex: u32, addr: IpAddr, prefix: u8) -> Result<(), ApplyError> {
        let msg = self
            .handle
            .address()
            .add(ifindex, addr, prefix)
            .message_mut()
            .clone();
        self.handle
            .address()
            .del(msg)
            .execute()
            .await
            .map_err(apply_error)
    }
}

/// The main routing table's id.
const RT_TABLE_MAIN: u8 = 254;

/// A route as `ip route` lists the main table's unicast ones: destination (`None`: the
/// default route), prefix length, interface, preferred source.
struct MainRoute<'a> {
    dst: Option<&'a RouteAddress>,
    prefix: u8,
    iface: String,
    src: Option<&'a RouteAddress>,
}

fn main_route<'a>(r: &'a RouteMessage, names: &HashMap<u32, &str>) -> Option<MainRoute<'a>> {
    if r.header.table != RT_TABLE_MAIN || r.header.kind != RouteType::Unicast {
        return None;
    }
    let (mut dst, mut src, mut iface) = (None, None, None);
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = Some(d),
            RouteAttribute::PrefSource(s) => src = Some(s),
            RouteAttribute::Oif(i) => iface = names.get(i).map(|n| n.to_string()),
            _ => {}
        }
    }
    Some(MainRoute {
        dst,
        prefix: r.header.destination_prefix_length,
        iface: iface?,
        src,
    })
}

fn host_route(r: &RouteMessage, names: &HashMap<u32, &str>) -> Option<HostRoute> {
    let m = main_route(r, names)?;
    let v4 = |a: Option<&RouteAddress>| match a {
        Some(RouteAddress::Inet(v)) => Some(*v),
        _ => None,
    };
    Some(HostRoute {
        dst: v4(m.dst).unwrap_or(Ipv4Addr::UNSPECIFIED),
        prefix: m.prefix,
        iface: m.iface,
        src: v4(m.src),
    })
}

fn host_route6(r: &RouteMessage, names: &HashMap<u32, &str>) -> Option<HostRoute6> {
    let m = main_route(r, names)?;
    let dst = match m.dst {
        Some(RouteAddress::Inet6(v)) => *v,
        _ => Ipv6Addr::UNSPECIFIED,
    };
    Some(HostRoute6 {
        dst,
        prefix: m.prefix,
        iface: m.iface,
    })
}

/// One message of the monitor, with its sender.
pub type Monitored = (
    rtnetlink::packet_core::NetlinkMessage<RouteNetlinkMessage>,
    rtnetlink::sys::SocketAddr,
);

/// The link and address monitor: rtnetlink's multicast groups, as `ip monitor` joins them.
pub fn monitor() -> std::io::Result<impl futures_util::Stream<Item = Monitored> + Unpin> {
    use rtnetlink::MulticastGroup as G;
    let (conn, _handle, messages) =
        rtnetlink::new_multicast_connection(&[G::Link, G::Ipv4Ifaddr, G::Ipv6Ifaddr])?;
    tokio::spawn(conn);
    Ok(messages)
}

/// Turns the monitor's messages into the director's inputs, keeping what it needs to tell
/// a carrier change from a rename from a new interface.
pub struct Follower {
    links: BTreeMap<u32, Link>,
    vips: BTreeSet<IpAddr>,
}

impl Follower {
    /// Starting from the snapshot's interfaces; addresses in `vips` are the director's own
    /// and not reported.
    pub fn new(links: &[Link], vips: BTreeSet<IpAddr>) -> Follower {
        Follower {
            links: links.iter().map(|l| (l.index, l.clone())).collect(),
            vips,
        }
    }

    /// The configured virtual addresses changed (a reload).
    pub fn set_vips(&mut self, vips: BTreeSet<IpAddr>) {
        self.vips = vips;
    }

    /// The interface called `name`.
    pub fn by_name(&self, name: &str) -> Option<&Link> {
        self.links.values().find(|l| l.name == name)
    }

    /// The inputs one monitor message means.
    pub fn follow(&mut self, msg: &RouteNetlinkMessage) -> Vec<Input> {
        match msg {
            RouteNetlinkMessage::NewLink(m) => {
                let Some(new) = link_of(m) else {
                    return Vec::new();
                };
                let old = self.links.insert(new.index, new.clone());
                match old {
                    None => vec![Input::Iface(IfaceEvent::Added {
                        iface: Iface {
                            name: new.name.clone(),
                            mac: new.mac,
                            addrs: Vec::new(),
                        },
                        up: new.up,
                    })],
                    Some(old) if old.name != new.name => {
                        vec![Input::Iface(IfaceEvent::Renamed {
                            from: old.name,
                            to: new.name,
                        })]
                    }
                    Some(old) if old.up != new.up => vec![Input::Link {
                        iface: new.name,
                        up: new.up,
                    }],
                    Some(_) => Vec::new(),
                }
            }
            RouteNetlinkMessage::DelLink(m) => match self.links.remove(&m.header.index) {
                Some(old) => vec![Input::Iface(IfaceEvent::Removed { name: old.name })],
                None => Vec::new(),
            },
            RouteNetlinkMessage::NewAddress(m) | RouteNetlinkMessage::DelAddress(m) => {
                let Some(a) = addr_of(m) else {
                    return Vec::new();
                };
                let Some(link) = self.links.get(&a.index) else {
                    return Vec::new();
                };
                if self.vips.contains(&a.addr) {
                    return Vec::new();
                }
                let iface = link.name.clone();
                let ev = if matches!(msg, RouteNetlinkMessage::NewAddress(_)) {
                    IfaceEvent::AddressAdded {
                        iface,
                        addr: a.addr,
                    }
                } else {
                    IfaceEvent::AddressRemoved {
                        iface,
                        addr: a.addr,
                    }
                };
                vec![Input::Iface(ev)]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, up: bool) -> Link {
        Link {
            index,
            name: name.into(),
            mac: [2, 0, 0, 0, 0, index as u8],
            up,
        }
    }

    #[test]
    fn addresses_are_ordered_as_keepalived_reads_them_and_vips_are_left_out() {
        let a = |s: &str, secondary| Addr {
            index: 2,
            addr: s.parse().unwrap(),
            secondary,
        };
        let addrs = [
            a("2001:db8::1", false),
            a("198.18.0.9", true),
            a("fe80::1", false),
            a("198.18.0.1", false),
            a("198.18.0.100", true),
        ];
        let vips = BTreeSet::from(["198.18.0.100".parse().unwrap()]);
        let env = node_env(&[link(2, "eth0", true)], &addrs, Vec::new(), &vips);
        let got: Vec<String> = env.ifaces[0].addrs.iter().map(|a| a.to_string()).collect();
        assert_eq!(got, ["198.18.0.1", "198.18.0.9", "fe80::1", "2001:db8::1"]);
    }

    fn link_msg(index: u32, name: &str, flags: LinkFlags) -> RouteNetlinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = flags;
        m.attributes.push(LinkAttribute::IfName(name.into()));
        RouteNetlinkMessage::NewLink(m)
    }

    #[test]
    fn the_monitor_tells_carrier_changes_renames_and_new_links_apart() {
        let mut f = Follower::new(&[link(2, "eth0", true)], BTreeSet::new());
        let up = LinkFlags::Up | LinkFlags::Running;
        assert_eq!(f.follow(&link_msg(2, "eth0", up)), Vec::new());
        assert_eq!(
            f.follow(&link_msg(2, "eth0", LinkFlags::Up)),
            vec![Input::Link {
                iface: "eth0".into(),
                up: false
            }]
        );
        assert_eq!(
            f.follow(&link_msg(2, "wan0", LinkFlags::Up)),
            vec![Input::Iface(IfaceEvent::Renamed {
                from: "eth0".into(),
                to: "wan0".into()
            })]
        );
        assert!(matches!(
            f.follow(&link_msg(3, "eth1", up)).as_slice(),
            [Input::Iface(IfaceEvent::Added { up: true, .. })]
        ));
        let mut del = LinkMessage::default();
        del.header.index = 3;
        assert_eq!(
            f.follow(&RouteNetlinkMessage::DelLink(del)),
            vec![Input::Iface(IfaceEvent::Removed {
                name: "eth1".into()
            })]
        );
    }

    #[test]
    fn the_director_s_own_addresses_are_not_reported() {
        let vip: IpAddr = "198.18.0.100".parse().unwrap();
        let mut f = Follower::new(&[link(2, "eth0", true)], BTreeSet::from([vip]));
        let msg = |ip: IpAddr| {
            let mut m = AddressMessage::default();
            m.header.index = 2;
            m.attributes.push(AddressAttribute::Address(ip));
            RouteNetlinkMessage::NewAddress(m)
        };
        assert_eq!(f.follow(&msg(vip)), Vec::new());
        let other: IpAddr = "198.18.0.7".parse().unwrap();
        assert_eq!(
            f.follow(&msg(other)),
            vec![Input::Iface(IfaceEvent::AddressAdded {
                iface: "eth0".into(),
                addr: other
            })]
        );
    }

    #[test]
    fn vip_options_come_from_the_config_line() {
        let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.1/24 dev eth0 label eth0:1 brd 192.0.2.255 scope link\n  192.0.2.2\n }\n}\n";
        let parsed = lvs_core::config::parse_text("k.conf", text, &lvs_core::config::NoFiles);
        let cfg = parsed.config.unwrap();
        let vips = &cfg.vrrp_instances[0].virtual_ipaddress;
        assert_eq!(
            AddrOptions::of(&vips[0]),
            AddrOptions {
                label: Some("eth0:1".into()),
                brd: Some("192.0.2.255".parse().unwrap()),
                scope: AddressScope::Link,
            }
        );
        assert_eq!(AddrOptions::of(&vips[1]), AddrOptions::default());
    }
}
