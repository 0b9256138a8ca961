//! `ipvsadm -L -n` text, byte for byte as ipvsadm 1.31 prints it.
//!
//! Formats from ipvsadm.c `list_all` / `print_title` / `print_service_entry`:
//! the version line, two title lines, then per service
//! `"%s %s"` (name, scheduler), ` (flags)` when a scheduler flag is set
//! (`sh-fallback,sh-port`, `mh-fallback,mh-port`, else `flag-1,flag-2`),
//! ` persistent %u` and ` mask %s` (IPv4 dotted mask unless /32; IPv6 prefix
//! length unless /128), ` ops`; then per destination
//! `"  -> %-28s %-7s %-6d %-10u %-10u"` (note the trailing padding).
//! `--stats` and `--rate` (`print_title` / `print_service_entry` with `FMT_STATS` /
//! `FMT_RATE`) print the counters and the estimator's rates in `print_largenum`'s 9
//! columns (K, M, G, T beyond 8 digits); `-c` (`list_conn` / `print_conn`) reads the
//! kernel's `/proc/net/ip_vs_conn`: protocol, `MM:SS` until expiry, state, and the three
//! addresses. The kernel walks its connection hash (random-keyed, so in no order one can
//! reproduce); here entries come in the table's sorted order.
//! Services are sorted by fwmark, family, protocol, address, port and
//! destinations by address, port (libipvs `ipvs_cmp_services` /
//! `ipvs_cmp_dests`). libipvs compares addresses by `int` subtraction, which
//! only differs from numeric order for addresses 2^31 or more apart; this
//! module uses numeric order.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use super::conn::{Conn, SctpState, TcpState};
use super::service::{Dest, Service};
use super::stats::{IpvsStats, Rates};
use super::table::{ConnInfo, EstimatorKey, Ipvs};
use super::{ServiceKey, SockAddr};
use crate::time::Instant;

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
    let mut out = format!("{VERSION_LINE}\n{TITLE}");
    for (svc, dests) in sorted(services) {
        out.push_str(&service_line(svc));
        out.push('\n');
        for d in dests {
            out.push_str(&dest_line(d));
            out.push('\n');
        }
    }
    out
}

/// `print_largenum` without `--exact`: 9 columns, then thousands (K), millions (M),
/// billions (G) or trillions (T) in 8 plus the unit.
fn largenum(out: &mut String, i: u64) {
    let _ = match i {
        0..=99_999_999 => write!(out, "{i:9}"),
        100_000_000..=999_999_999 => write!(out, "{:8}K", i / 1_000),
        1_000_000_000..=99_999_999_999 => write!(out, "{:8}M", i / 1_000_000),
        100_000_000_000..=99_999_999_999_999 => write!(out, "{:8}G", i / 1_000_000_000),
        _ => write!(out, "{:8}T", i / 1_000_000_000_000),
    };
}

/// The service's name as the `--stats` / `--rate` rows print it: 33 columns.
fn service_name(svc: &Service) -> String {
    let mut name = svc.spec().key.to_string();
    if family(&svc.spec().key) == 2 {
        name.truncate(33);
    }
    format!("{name:<33}")
}

/// A destination's name, 28 columns, after the arrow.
fn dest_name(d: &Dest) -> String {
    let mut name = SockAddr(d.addr, d.port).to_string();
    if d.addr.is_ipv4() {
        name.truncate(28);
    }
    format!("  -> {name:<28}")
}

/// Services sorted as ipvsadm sorts them, each with its destinations sorted.
fn sorted<'a>(
    services: impl IntoIterator<Item = &'a Service>,
) -> Vec<(&'a Service, Vec<&'a Dest>)> {
    let mut svcs: Vec<&Service> = services.into_iter().collect();
    svcs.sort_by_key(|s| service_order(&s.spec().key));
    svcs.into_iter()
        .map(|svc| {
            let mut dests: Vec<&Dest> = svc.dests().iter().collect();
            dests.sort_by_key(|d| (d.addr, d.port));
            (svc, dests)
        })
        .collect()
}

/// The title of the `--stats` and `--rate` listings.
fn counter_title(columns: [&str; 5]) -> String {
    let [a, b, c, d, e] = columns;
    format!(
        "{VERSION_LINE}\n{:<33} {a:>8} {b:>8} {c:>8} {d:>8} {e:>8}\n  -> RemoteAddress:Port\n",
        "Prot LocalAddress:Port"
    )
}

/// `ipvsadm -L -n --stats`.
pub fn list_stats<'a>(services: impl IntoIterator<Item = &'a Service>) -> String {
    let mut out = counter_title(["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"]);
    let row = |out: &mut String, s: &IpvsStats| {
        for v in [s.conns, s.in_pkts, s.out_pkts, s.in_bytes, s.out_bytes] {
            largenum(out, v);
        }
        out.push('\n');
    };
    for (svc, dests) in sorted(services) {
        out.push_str(&service_name(svc));
        row(&mut out, svc.stats());
        for d in dests {
            out.push_str(&dest_name(d));
            row(&mut out, &d.stats);
        }
    }
    out
}

/// `ipvsadm -L -n --rate` of `ipvs` as its estimator reads at `now`.
pub fn list_rate(ipvs: &Ipvs, now: Instant) -> String {
    let rates = ipvs.rates_at(now);
    let of = |k: EstimatorKey| rates.get(&k).copied().unwrap_or_default();
    let mut out = counter_title(["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"]);
    for (svc, dests) in sorted(ipvs.services()) {
        let key = svc.spec().key;
        out.push_str(&service_name(svc));
        let r: Rates = of((key, None));
        for v in [r.cps, r.inpps, r.outpps, r.inbps, r.outbps] {
            largenum(&mut out, v);
        }
        out.push('\n');
        for d in dests {
            let r = of((key, Some(SockAddr(d.addr, d.port))));
            // Destinations print their packet rates with %8u, not print_largenum.
            let _ = write!(
                out,
                "{} {:8} {:8} {:8}",
                dest_name(d),
                r.cps,
                r.inpps,
                r.outpps
            );
            largenum(&mut out, r.inbps);
            largenum(&mut out, r.outbps);
            out.push('\n');
        }
    }
    out
}

/// `ip_vs_proto_name`.
fn proto_name(proto: u8) -> String {
    match proto {
        0 => "IP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        132 => "SCTP".into(),
        1 => "ICMP".into(),
        58 => "ICMPv6".into(),
        p => format!("IP_{p}"),
    }
}

/// `ip_vs_state_name`: a template's NONE / ASSURED, TCP's and SCTP's states, UDP's one state.
fn state_name(c: &Conn) -> &'static str {
    if c.template {
        return match c.state {
            0 => "NONE",
            1 => "ASSURED",
            _ => "ERR!",
        };
    }
    match c.key.proto {
        6 => TcpState::from_u8(c.state).map_or("ERR!", TcpState::name),
        17 => "UDP",
        132 => SctpState::from_u8(c.state).map_or("ERR!", SctpState::name),
        0 => "NONE",
        _ => "ERR!",
    }
}

/// `ipvsadm -L -n -c` at `now`.
pub fn list_connections(conns: &[ConnInfo], now: Instant) -> String {
    let mut out = format!(
        "IPVS connection entries\npro expire {:<11} {:<18} {:<18} destination\n",
        "state", "source", "virtual"
    );
    for info in conns {
        let c = &info.conn;
        // jiffies_delta_to_msecs(expires - jiffies) / 1000: whole seconds left.
        let secs = c.deadline.as_nanos().saturating_sub(now.as_nanos()) / 1_000_000_000;
        let dest = info
            .dest
            .map_or_else(|| "0.0.0.0:0".to_string(), |d| d.to_string());
        let _ = writeln!(
            out,
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            proto_name(c.key.proto),
            format!("{:02}:{:02}", secs / 60, secs % 60),
            state_name(c),
            SockAddr(c.key.caddr, c.key.cport).to_string(),
            SockAddr(c.key.vaddr, c.key.vport).to_string(),
            dest
        );
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

    #[test]
    fn stats_rows_use_ipvsadm_columns_and_units() {
        let mut s = Service::new(svc(tcp("223.202.22.118", 80), "rr"));
        s.add_dest(&dest("223.202.22.116", 80, FwdMethod::Route, 1))
            .expect("add");
        *s.stats_mut() = IpvsStats {
            conns: 7,
            in_pkts: 123_456_789,
            out_pkts: 0,
            in_bytes: 98_765_432_100,
            out_bytes: 123_456_789_012_345,
        };
        if let Some(d) = s.dest_mut("223.202.22.116".parse().expect("ip"), 80) {
            d.stats = IpvsStats {
                conns: 7,
                in_pkts: 42,
                in_bytes: 5000,
                ..IpvsStats::default()
            };
        }
        // As printf("%-33s %8s ...") and print_largenum lay it out.
        let expected = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n\
\x20 -> RemoteAddress:Port\n\
TCP  223.202.22.118:80                   7  123456K        0   98765M     123T\n\
\x20 -> 223.202.22.116:80                   7       42        0     5000        0\n";
        assert_eq!(list_stats([&s]), expected);
    }

    /// An Ipvs with the DR service of the seed and one real server.
    fn seed_ipvs() -> Ipvs {
        let mut ipvs = Ipvs::default();
        ipvs.add_service(svc(tcp("223.202.22.118", 80), "rr"))
            .expect("service");
        ipvs.add_dest(
            &tcp("223.202.22.118", 80),
            &dest("223.202.22.116", 80, FwdMethod::Route, 1),
        )
        .expect("dest");
        ipvs
    }

    fn syn(sport: u16) -> crate::ipvs::table::PacketInfo {
        crate::ipvs::table::PacketInfo {
            proto: Protocol::Tcp,
            src: "192.0.2.7".parse().expect("ip"),
            sport,
            dst: "223.202.22.118".parse().expect("ip"),
            dport: 80,
            tcp: crate::ipvs::conn::TcpFlags {
                syn: true,
                ..Default::default()
            },
            sctp: Default::default(),
            fwmark: 0,
            len: 60,
        }
    }

    #[test]
    fn rates_are_the_estimators_read_at_the_listing_time() {
        let mut ipvs = seed_ipvs();
        let mut rng =
            <rand_chacha::ChaCha8Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(1);
        // Ten new connections a second (one SYN of 60 bytes each) for 40 s.
        for n in 0..400u64 {
            let at = Instant::from_nanos(50_000_000 + n * 100_000_000);
            ipvs.process(at, &syn(10_000 + n as u16), &mut rng);
        }
        let title = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n\
\x20 -> RemoteAddress:Port\n";
        // 20 runs of the estimator: each closes a quarter of the gap, so the byte rate
        // (600/s) still reads 598 (the gap is 600 * 0.75^20); the others round to theirs.
        let steady = format!(
            "{title}\
TCP  223.202.22.118:80                  10       10        0      598        0\n\
\x20 -> 223.202.22.116:80                  10       10        0      598        0\n"
        );
        assert_eq!(list_rate(&ipvs, Instant::from_secs(40)), steady);
        // Listing does not move the estimators; reading later, idle, shows the decay.
        assert_eq!(list_rate(&ipvs, Instant::from_secs(40)), steady);
        let idle = list_rate(&ipvs, Instant::from_secs(400));
        assert!(
            idle.ends_with(
                "TCP  223.202.22.118:80                   0        0        0        0        0\n\
\x20 -> 223.202.22.116:80                   0        0        0        0        0\n"
            ),
            "{idle}"
        );
    }

    #[test]
    fn connections_list_state_expiry_and_the_three_addresses() {
        let mut ipvs = seed_ipvs();
        let mut rng =
            <rand_chacha::ChaCha8Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(1);
        ipvs.process(Instant::ZERO, &syn(40000), &mut rng);
        // SYN_RECV lasts 60 s; 1.2 s on, 58 whole seconds are left.
        let expected = "IPVS connection entries\n\
pro expire state       source             virtual            destination\n\
TCP 00:58  SYN_RECV    192.0.2.7:40000    223.202.22.118:80  223.202.22.116:80\n";
        assert_eq!(
            list_connections(&ipvs.conn_infos(), Instant::from_millis(1200)),
            expected
        );
    }
}
