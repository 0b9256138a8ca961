//! `ipvsadm-save -n` text for a set of IPVS rules.
//!
//! Formats follow ipvsadm 1.31 (Debian 12): `-A SVC -s SCHED [-p T [-M MASK]] [-b FLAGS]` and
//! `-a SVC -r DEST FWD -w W` (tunnel destinations add `--tun-type`). ipvsadm-save writes neither
//! `-o` (one-packet scheduling) nor the `-x`/`-y` connection thresholds, so neither do we.

use std::fmt::Write;

use super::service::{DestSpec, ServiceSpec};
use super::{FwdMethod, Protocol, ServiceKey, SockAddr, TunnelType};

/// The `-t/-u/--sctp-service ADDR:PORT` or `-f MARK [-6]` words naming a service.
pub fn service_arg(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Inet { proto, addr, port } => {
            let flag = match proto {
                Protocol::Tcp => "-t",
                Protocol::Udp => "-u",
                Protocol::Sctp => "--sctp-service",
            };
            format!("{flag} {}", SockAddr(*addr, *port))
        }
        ServiceKey::Fwmark { mark, ipv6: false } => format!("-f {mark}"),
        ServiceKey::Fwmark { mark, ipv6: true } => format!("-f {mark} -6"),
    }
}

/// The `-b` flag names ipvsadm prints for a scheduler (`sh-*`, `mh-*`, else `flag-N`).
fn sched_flags(spec: &ServiceSpec) -> Option<String> {
    let (one, two) = spec.scheduler.flag_names();
    let mut names = Vec::new();
    if spec.flags.fallback {
        names.push(one);
    }
    if spec.flags.port {
        names.push(two);
    }
    (!names.is_empty()).then(|| names.join(","))
}

/// One `-A` line.
pub fn service_line(spec: &ServiceSpec) -> String {
    let svc = service_arg(&spec.key);
    let mut out = format!("-A {svc} -s {}", spec.scheduler);
    if let Some(timeout) = spec.persistence {
        let _ = write!(out, " -p {timeout}");
        let v6 = match spec.key {
            ServiceKey::Inet { addr, .. } => addr.is_ipv6(),
            ServiceKey::Fwmark { ipv6, .. } => ipv6,
        };
        if v6 {
            if spec.netmask_prefix != 128 {
                let _ = write!(out, " -M {}", spec.netmask_prefix);
            }
        } else if spec.netmask_prefix < 32 {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(spec.netmask_prefix))
                .unwrap_or(0);
            let _ = write!(out, " -M {}", std::net::Ipv4Addr::from(mask));
        }
    }
    if let Some(flags) = sched_flags(spec) {
        let _ = write!(out, " -b {flags}");
    }
    out
}

/// One `-a` line.
pub fn dest_line(key: &ServiceKey, d: &DestSpec) -> String {
    let mut out = format!(
        "-a {} -r {} {} -w {}",
        service_arg(key),
        SockAddr(d.addr, d.port),
        d.fwd.ipvsadm_flag(),
        d.weight
    );
    if let FwdMethod::Tunnel(t) = d.fwd {
        // ipvsadm 1.31 names the tunnel type; the kernel's default checksum mode is "nocsum".
        match t {
            TunnelType::Ipip => out.push_str(" --tun-type ipip"),
            TunnelType::Gue { port } => {
                let _ = write!(out, " --tun-type gue --tun-port {port} --tun-nocsum");
            }
            TunnelType::Gre => out.push_str(" --tun-type gre --tun-nocsum"),
        }
    }
    out
}

/// `ipvsadm-save -n` text: each service's `-A` line followed by its `-a` lines, sorted as
/// ipvsadm sorts them unless `--nosort` (services by `ipvs_cmp_services`, destinations by
/// address then port).
pub fn ipvsadm_save(rules: &[(ServiceSpec, Vec<DestSpec>)]) -> String {
    let mut out = String::new();
    let mut rules: Vec<_> = rules.iter().collect();
    rules.sort_by_key(|(svc, _)| super::list::service_order(&svc.key));
    for (svc, dests) in rules {
        out.push_str(&service_line(svc));
        out.push('\n');
        let mut dests: Vec<_> = dests.iter().collect();
        dests.sort_by_key(|d| (d.addr, d.port));
        for d in dests {
            out.push_str(&dest_line(&svc.key, d));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::sched::SchedFlags;
    use super::*;
    use std::net::IpAddr;

    fn svc(key: ServiceKey, sched: &str, p: Option<u32>, prefix: u8) -> ServiceSpec {
        ServiceSpec {
            key,
            scheduler: sched.parse().expect("scheduler"),
            flags: SchedFlags::default(),
            persistence: p,
            netmask_prefix: prefix,
            one_packet: false,
        }
    }

    fn dest(addr: &str, port: u16, fwd: FwdMethod, weight: i32) -> DestSpec {
        DestSpec {
            addr: addr.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            port,
            fwd,
            weight,
            u_threshold: 5,
            l_threshold: 2,
        }
    }

    #[test]
    fn seed_style_service() {
        let key = ServiceKey::Inet {
            proto: Protocol::Tcp,
            addr: IpAddr::from([223, 202, 22, 118]),
            port: 80,
        };
        let rules = vec![(
            svc(key, "wrr", Some(20), 32),
            vec![
                dest("223.202.22.116", 80, FwdMethod::Route, 100),
                dest("223.202.22.117", 80, FwdMethod::Masq, 0),
            ],
        )];
        assert_eq!(
            ipvsadm_save(&rules),
            "-A -t 223.202.22.118:80 -s wrr -p 20\n\
             -a -t 223.202.22.118:80 -r 223.202.22.116:80 -g -w 100\n\
             -a -t 223.202.22.118:80 -r 223.202.22.117:80 -m -w 0\n"
        );
    }

    #[test]
    fn netmask_flags_fwmark_udp_ipv6_tunnel() {
        let mut s = svc(
            ServiceKey::Fwmark {
                mark: 7,
                ipv6: false,
            },
            "sh",
            Some(300),
            24,
        );
        s.flags = SchedFlags {
            fallback: true,
            port: true,
        };
        assert_eq!(
            service_line(&s),
            "-A -f 7 -s sh -p 300 -M 255.255.255.0 -b sh-fallback,sh-port"
        );
        let s = svc(
            ServiceKey::Fwmark {
                mark: 7,
                ipv6: true,
            },
            "rr",
            Some(300),
            64,
        );
        assert_eq!(service_line(&s), "-A -f 7 -6 -s rr -p 300 -M 64");
        let mut s = svc(
            ServiceKey::Fwmark {
                mark: 7,
                ipv6: false,
            },
            "wlc",
            None,
            24,
        );
        s.flags.port = true;
        // No persistence: no -p and no -M even with a netmask.
        assert_eq!(service_line(&s), "-A -f 7 -s wlc -b flag-2");
        let key = ServiceKey::Inet {
            proto: Protocol::Udp,
            addr: "2001:db8::1".parse().unwrap_or(IpAddr::from([0; 16])),
            port: 53,
        };
        let d = dest("2001:db8::2", 53, FwdMethod::Tunnel(TunnelType::Ipip), 3);
        assert_eq!(
            dest_line(&key, &d),
            "-a -u [2001:db8::1]:53 -r [2001:db8::2]:53 -i -w 3 --tun-type ipip"
        );
        let key = ServiceKey::Inet {
            proto: Protocol::Sctp,
            addr: IpAddr::from([10, 0, 0, 1]),
            port: 9,
        };
        let d = dest(
            "10.0.0.2",
            9,
            FwdMethod::Tunnel(TunnelType::Gue { port: 6080 }),
            1,
        );
        assert_eq!(
            dest_line(&key, &d),
            "-a --sctp-service 10.0.0.1:9 -r 10.0.0.2:9 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum"
        );
    }
}
