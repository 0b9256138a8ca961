//! `ipvsadm -L -n` text, byte for byte as ipvsadm 1.31 prints it.
//!
//! Formats from ipvsadm.c `list_all` / `print_title` / `print_service_entry`:
//! the version line, two title lines, then per service
//! `"%s %s"` (name, scheduler), ` (flags)` when a scheduler flag is set
//! (`sh-fallback,sh-port`, `mh-fallback,mh-port`, else `flag-1,flag-2`),
//! ` persistent %u` and ` mask %s` (IPv4 dotted mask unless /32; IPv6 prefix
//! length unless /128), ` ops`; then per destination
//! `"  -> %-28s %-7s %-6d %-10u %-10u"` (note the trailing padding).
//! Services are sorted by fwmark, family, protocol, address, port and
//! destinations by address, port (libipvs `ipvs_cmp_services` /
//! `ipvs_cmp_dests`). libipvs compares addresses by `int` subtraction, which
//! only differs from numeric order for addresses 2^31 or more apart; this
//! module uses numeric order.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use super::service::{Dest, Service};
use super::ServiceKey;

/// The first line: kernel IPVS version 1.2.1 and its default table size.
pub const VERSION_LINE: &str = "IP Virtual Server version 1.2.1 (size=4096)";

/// The two title lines of the default listing.
pub const TITLE: &str =
    "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

/// `AF_INET` / `AF_INET6` as libipvs sorts them.
fn family(key: &ServiceKey) -> u16 {
    match key {
        ServiceKey::Inet {
            addr: IpAddr::V4(_),
            ..
        } => 2,
        ServiceKey::Inet {
            addr: IpAddr::V6(_),
            ..
        } => 10,
        ServiceKey::Fwmark { ipv6, .. } => {
            if *ipv6 {
                10
            } else {
                2
            }
        }
    }
}

/// The order ipvsadm lists services in (libipvs `ipvs_cmp_services`).
pub fn service_order(k: &ServiceKey) -> impl Ord {
    match *k {
        ServiceKey::Inet { proto, addr, port } => (0, family(k), proto.number(), Some(addr), port),
        ServiceKey::Fwmark { mark, .. } => (mark, family(k), 0, None, 0),
    }
}

/// The `-b` flags as ipvsadm's `print_sched_flags` names them.
fn sched_flags(svc: &Service) -> Option<String> {
    let f = svc.spec().flags;
    let (one, two) = svc.spec().scheduler.flag_names();
    let names: Vec<&str> = [(f.fallback, one), (f.port, two)]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n)
        .collect();
    (!names.is_empty()).then(|| names.join(","))
}

/// The service line, without newline.
pub fn service_line(svc: &Service) -> String {
    let spec = svc.spec();
    let mut name = spec.key.to_string();
    if family(&spec.key) == 2 {
        // svc_name[33] = '\0' for non-IPv6 services.
        name.truncate(33);
    }
    let mut line = format!("{name} {}", spec.scheduler);
    if let Some(flags) = sched_flags(svc) {
        let _ = write!(line, " ({flags})");
    }
    if let Some(timeout) = spec.persistence {
        let _ = write!(line, " persistent {timeout}");
        if family(&spec.key) == 2 {
            if spec.netmask_prefix < 32 {
                let bits = u32::MAX
                    .checked_shl(32 - u32::from(spec.netmask_prefix))
                    .unwrap_or(0);
                let _ = write!(line, " mask {}", Ipv4Addr::from(bits));
            }
        } else if spec.netmask_prefix < 128 {
            let _ = write!(line, " mask {}", spec.netmask_prefix);
        }
    }
    if spec.one_packet {
        line.push_str(" ops");
    }
    line
}

/// A destination line, without newline.
pub fn dest_line(d: &Dest) -> String {
    let mut name = super::SockAddr(d.addr, d.port).to_string();
    if d.addr.is_ipv4() {
        name.truncate(28);
    }
    format!(
        "  -> {name:<28} {:<7} {:<6} {:<10} {:<10}",
        d.fwd.ipvsadm_name(),
        d.weight,
        d.activeconns,
        d.inactconns
    )
}

/// The whole `ipvsadm -L -n` output for `services`, sorted as ipvsadm sorts.
pub fn list_numeric<'a>(services: impl IntoIterator<Item = &'a Service>) -> String {
    let mut svcs: Vec<&Service> = services.into_iter().collect();
    svcs.sort_by_key(|s| service_order(&s.spec().key));
    let mut out = format!("{VERSION_LINE}\n{TITLE}");
    for svc in svcs {
        out.push_str(&service_line(svc));
        out.push('\n');
        let mut dests: Vec<&Dest> = svc.dests().iter().collect();
        dests.sort_by_key(|d| (d.addr, d.port));
        for d in dests {
            out.push_str(&dest_line(d));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::sched::SchedFlags;
    use crate::ipvs::service::{DestSpec, ServiceSpec};
    use crate::ipvs::{FwdMethod, Protocol, TunnelType};

    fn svc(key: ServiceKey, sched: &str) -> ServiceSpec {
        ServiceSpec {
            key,
            scheduler: sched.parse().expect("scheduler"),
            flags: SchedFlags::default(),
            persistence: None,
            netmask_prefix: 32,
            one_packet: false,
        }
    }

    fn tcp(addr: &str, port: u16) -> ServiceKey {
        ServiceKey::Inet {
            proto: Protocol::Tcp,
            addr: addr.parse().expect("ip"),
            port,
        }
    }

    fn dest(addr: &str, port: u16, fwd: FwdMethod, weight: i32) -> DestSpec {
        DestSpec {
            addr: addr.parse().expect("ip"),
            port,
            fwd,
            weight,
            u_threshold: 0,
            l_threshold: 0,
        }
    }

    #[test]
    fn seed_walkthrough_table() {
        // The guide's DR service: wlc, persistent 50, two real servers.
        let mut s = Service::new(ServiceSpec {
            persistence: Some(50),
            ..svc(tcp("223.202.22.118", 80), "wlc")
        });
        s.add_dest(&dest("223.202.22.116", 80, FwdMethod::Route, 3))
            .expect("add");
        s.add_dest(&dest("223.202.22.117", 80, FwdMethod::Route, 3))
            .expect("add");
        if let Some(d) = s.dest_mut("223.202.22.116".parse().expect("ip"), 80) {
            d.activeconns = 2;
            d.inactconns = 11;
        }
        let expected = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n\
\x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  223.202.22.118:80 wlc persistent 50\n\
\x20 -> 223.202.22.116:80            Route   3      2          11        \n\
\x20 -> 223.202.22.117:80            Route   3      0          0         \n";
        assert_eq!(list_numeric([&s]), expected);
    }

    #[test]
    fn sorting_flags_masks_and_methods() {
        let mut fwm = Service::new(ServiceSpec {
            persistence: Some(300),
            netmask_prefix: 24,
            ..svc(
                ServiceKey::Fwmark {
                    mark: 7,
                    ipv6: false,
                },
                "rr",
            )
        });
        fwm.add_dest(&dest("10.0.0.3", 0, FwdMethod::Tunnel(TunnelType::Ipip), 1))
            .expect("add");
        let sh = Service::new(ServiceSpec {
            flags: SchedFlags {
                fallback: true,
                port: true,
            },
            one_packet: true,
            ..svc(
                ServiceKey::Inet {
                    proto: Protocol::Udp,
                    addr: "10.0.0.1".parse().expect("ip"),
                    port: 53,
                },
                "sh",
            )
        });
        let mut wrr = Service::new(ServiceSpec {
            flags: SchedFlags {
                fallback: false,
                port: true,
            },
            ..svc(tcp("10.0.0.1", 443), "wrr")
        });
        // Added 9 then 10: the kernel lists 10 first, ipvsadm sorts.
        wrr.add_dest(&dest("10.0.0.9", 443, FwdMethod::Masq, 0))
            .expect("add");
        wrr.add_dest(&dest("10.0.0.10", 443, FwdMethod::Masq, 2))
            .expect("add");
        let v6 = Service::new(ServiceSpec {
            persistence: Some(10),
            netmask_prefix: 64,
            ..svc(tcp("2001:db8::1", 80), "mh")
        });
        let out = list_numeric([&fwm, &v6, &sh, &wrr]);
        let expected = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n\
\x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  10.0.0.1:443 wrr (flag-2)\n\
\x20 -> 10.0.0.9:443                 Masq    0      0          0         \n\
\x20 -> 10.0.0.10:443                Masq    2      0          0         \n\
UDP  10.0.0.1:53 sh (sh-fallback,sh-port) ops\n\
TCP  [2001:db8::1]:80 mh persistent 10 mask 64\n\
FWM  7 rr persistent 300 mask 255.255.255.0\n\
\x20 -> 10.0.0.3:0                   Tunnel  1      0          0         \n";
        assert_eq!(out, expected);
    }
}
