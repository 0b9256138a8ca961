//! Directors built from keepalived.conf text: the factory a scenario hands the simulator.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_core::config;
use lvs_core::director::{
    config_log, Director, DirectorConfig, HostRoute, HostRoute6, Iface, NodeEnv,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::director::{DirectorFactory, DirectorNode, HostEnv};

/// Why a keepalived.conf cannot run as a simulated director.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// Valid keepalived, but asking for something the simulator cannot do yet.
    #[error("{at}: {why}")]
    Unsupported {
        /// File, line and column of what asks for it.
        at: String,
        /// What and why.
        why: String,
    },
    /// keepalived would refuse the file.
    #[error("{file}: keepalived.conf has errors:\n{rendered}")]
    Invalid {
        /// File name.
        file: String,
        /// Rendered diagnostics.
        rendered: String,
    },
}

/// The host's interfaces and IPv4 routes as the director sees them: a connected route per
/// address (its `src` that address, as the kernel adds it) and the default route through
/// the interface whose subnet holds the gateway (the IPv6 ones: [`routes6`]).
pub fn node_env(env: &HostEnv) -> NodeEnv {
    let mut routes: Vec<HostRoute> = env
        .ifaces
        .iter()
        .flat_map(|i| {
            i.addrs.iter().map(|&(a, prefix)| HostRoute {
                dst: a,
                prefix,
                iface: i.name.clone(),
                src: Some(a),
            })
        })
        .collect();
    if let Some(gw) = env.gateway {
        if let Some(dev) = routes.iter().find(|r| r.covers(gw)) {
            routes.push(HostRoute {
                dst: Ipv4Addr::UNSPECIFIED,
                prefix: 0,
                iface: dev.iface.clone(),
                src: None,
            });
        }
    }
    NodeEnv {
        ifaces: env
            .ifaces
            .iter()
            .map(|i| Iface {
                name: i.name.clone(),
                mac: i.mac,
                // IPv4, then the link-local address (keepalived's IPv6 VRRP source) and
                // the global IPv6 ones, as the kernel's address dump lists them.
                addrs: i
                    .addrs
                    .iter()
                    .map(|(a, _)| IpAddr::V4(*a))
                    .chain(std::iter::once(IpAddr::V6(i.link_local())))
                    .chain(i.addrs6.iter().map(|(a, _)| IpAddr::V6(*a)))
                    .collect(),
            })
            .collect(),
        routes,
    }
}

/// The IPv6 routes the kernel holds for `env`, as `ip -6 route` lists them: one prefix per
/// global address and each interface's link-local fe80::/64, then the default route through
/// the interface whose prefix holds `gateway6`.
pub fn routes6(env: &HostEnv) -> Vec<HostRoute6> {
    let mut routes: Vec<HostRoute6> = env
        .ifaces
        .iter()
        .flat_map(|i| {
            let link_local = HostRoute6 {
                dst: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
                prefix: 64,
                iface: i.name.clone(),
            };
            let global = i.addrs6.iter().map(|&(a, prefix)| HostRoute6 {
                dst: a,
                prefix,
                iface: i.name.clone(),
            });
            global.chain(std::iter::once(link_local))
        })
        .collect();
    if let Some(gw) = env.gateway6 {
        if let Some(dev) = routes.iter().find(|r| r.covers(gw)) {
            routes.push(HostRoute6 {
                dst: Ipv6Addr::UNSPECIFIED,
                prefix: 0,
                iface: dev.iface.clone(),
            });
        }
    }
    routes
}

/// A factory starting a fresh `Director` from `text` (named `file` in diagnostics) at every
/// start and restart. The config is parsed once, here, so errors surface before the run.
pub fn factory(file: &str, text: &str) -> Result<DirectorFactory, ConfError> {
    factory_with(file, text, &config::NoFiles)
}

/// [`factory`] for a config whose `include`s `files` answers.
pub fn factory_with(
    file: &str,
    text: &str,
    files: &dyn config::Loader,
) -> Result<DirectorFactory, ConfError> {
    let parsed = config::parse_text(file, text, files);
    let ok = !parsed.has_errors();
    let Some(cfg) = parsed.config.clone().filter(|_| ok) else {
        let rendered = parsed
            .diagnostics
            .iter()
            .map(|d| d.render())
            .collect::<Vec<_>>()
            .join("\n");
        return Err(ConfError::Invalid {
            file: file.to_string(),
            rendered,
        });
    };
    if let Some((at, word)) = checksummed_tunnel(&cfg) {
        return Err(ConfError::Unsupported {
            at: at.to_string(),
            why: format!(
                "lvs_method TUN with `{word}`: the simulator's tunnels carry no checksum \
                 (nocsum, keepalived's default) yet; refused rather than run with a \
                 different encapsulation than the kernel's"
            ),
        });
    }
    if let Some(found) = unsupported_checker(&cfg) {
        return Err(ConfError::Unsupported {
            at: found.at.to_string(),
            why: found.why(),
        });
    }
    if let Some((at, dest_v6)) = cross_family_tunnel(&cfg) {
        let (inner, outer) = if dest_v6 {
            ("IPv4", "IPv6")
        } else {
            ("IPv6", "IPv4")
        };
        return Err(ConfError::Unsupported {
            at: at.to_string(),
            why: format!(
                "a real server forwarded by TUN whose address family is not its virtual \
                 server's: the simulator's data plane tunnels IPv4 in IPv4 and IPv6 in IPv6 \
                 only, not {inner} in {outer} yet; refused rather than run with requests \
                 that never reach it"
            ),
        });
    }
    let log = config_log(
        &parsed.diagnostics,
        &|f| shown_name(file, f),
        !cfg.vrrp_instances.is_empty(),
        !cfg.virtual_servers.is_empty(),
    );
    Ok(Box::new(move |env: &HostEnv, rng: &mut dyn RngCore| {
        let node = node_env(env);
        let rng = Box::new(ChaCha8Rng::seed_from_u64(rng.next_u64()));
        let built = DirectorConfig::from_keepalived(&cfg, &node)
            .map(|dc| DirectorConfig {
                config_log: log.clone(),
                ..dc
            })
            .map_err(|e| e.to_string())
            .and_then(|dc| Director::new(dc, node, rng).map_err(|e| e.to_string()));
        let built = built.map(|mut d| {
            d.set_routes6(routes6(env));
            d
        });
        match built {
            Ok(d) => Box::new(d) as Box<dyn DirectorNode>,
            Err(e) => Box::new(Refused(Some(e))),
        }
    }))
}

/// keepalived 2.2.7's checkers the simulator does not run: the keyword, what it checks, and
/// what to check with instead. The parser keeps them among the keywords it does not honour.
const UNSUPPORTED_CHECKERS: &[(&str, &str, &str)] = &[
    (
        "UDP_CHECK",
        "UDP checker",
        "check a UDP service with TCP_CHECK or MISC_CHECK on the same port",
    ),
    (
        "DNS_CHECK",
        "DNS query checker",
        "check a name server with TCP_CHECK on its port or MISC_CHECK",
    ),
    (
        "SMTP_CHECK",
        "SMTP checker",
        "check a mail server with TCP_CHECK on its port or MISC_CHECK",
    ),
    (
        "PING_CHECK",
        "ICMP echo checker",
        "check the server with TCP_CHECK or MISC_CHECK",
    ),
    (
        "FILE_CHECK",
        "tracked-file checker",
        "stand a MISC_CHECK in for the file",
    ),
    (
        "BFD_CHECK",
        "BFD session checker",
        "check the server with TCP_CHECK or MISC_CHECK",
    ),
];

/// A real server's checker the simulator cannot run.
struct UnsupportedChecker<'a> {
    /// Where the checker's block starts.
    at: &'a config::diagnostic::Span,
    /// Its row of [`UNSUPPORTED_CHECKERS`].
    row: (&'static str, &'static str, &'static str),
    /// Whether the real server also has checkers the simulator runs.
    others: bool,
}

impl UnsupportedChecker<'_> {
    /// Why the config is refused. keepalived keeps a real server in the table only while none
    /// of its checkers has failed (`num_failed_checkers`), so skipping one checker is not the
    /// same as running the server with the others.
    fn why(&self) -> String {
        let (word, what, instead) = self.row;
        let without = if self.others {
            "on its other checkers alone, where keepalived also needs this one to succeed"
        } else {
            "with no checker at all"
        };
        format!(
            "{word}: the simulator cannot run keepalived's {what} yet; refused rather than \
             run the real server {without} ({instead})"
        )
    }
}

/// The first real server's checker the simulator cannot run, in the config's order.
fn unsupported_checker(cfg: &config::Config) -> Option<UnsupportedChecker<'_>> {
    cfg.virtual_servers.iter().find_map(|vs| {
        vs.real_servers.iter().find_map(|rs| {
            rs.other.iter().find_map(|o| {
                let word = o.value.split_whitespace().next()?;
                let row = *UNSUPPORTED_CHECKERS.iter().find(|r| r.0 == word)?;
                Some(UnsupportedChecker {
                    at: &o.span,
                    row,
                    others: !rs.checkers.is_empty(),
                })
            })
        })
    })
}

/// Where the first TUN real server asking for a tunnel checksum (`csum`, `remcsum`) is
/// configured (its own method, or the virtual server's it inherits), with the option's word.
fn checksummed_tunnel(cfg: &config::Config) -> Option<(&config::diagnostic::Span, &'static str)> {
    use config::model::{LbKind, TunnelCsum};
    cfg.virtual_servers.iter().find_map(|vs| {
        vs.real_servers.iter().find_map(|rs| {
            let kind = vs.method_line_of(rs)?;
            match &kind.value {
                LbKind::Tun(t) => match t.csum {
                    TunnelCsum::NoCsum => None,
                    TunnelCsum::Csum => Some((&kind.span, "csum")),
                    TunnelCsum::RemCsum => Some((&kind.span, "remcsum")),
                },
                _ => None,
            }
        })
    })
}

/// Where the first real server forwarded by TUN in the other address family than one of its
/// virtual addresses is (keepalived keeps such a server, `family_mismatch`, and the kernel
/// tunnels IPv6 in IPv4 and IPv4 in IPv6), and whether it is the IPv6 one. A virtual server
/// group's addresses are its entries'; a fwmark's packets are not forwarded by the
/// simulator's data plane at all.
fn cross_family_tunnel(cfg: &config::Config) -> Option<(&config::diagnostic::Span, bool)> {
    use config::model::{LbKind, VsKey, VsgEntry};
    cfg.virtual_servers.iter().find_map(|vs| {
        let families: Vec<bool> = match &vs.key.value {
            VsKey::Inet { addr, .. } => vec![addr.is_ipv6()],
            VsKey::Group(name) => cfg
                .virtual_server_groups
                .iter()
                .filter(|g| g.name.value == *name)
                .flat_map(|g| &g.entries)
                .filter_map(|e| match e {
                    VsgEntry::Inet { addr, .. } => Some(addr.value.is_ipv6()),
                    VsgEntry::Fwmark(_) => None,
                })
                .collect(),
            VsKey::Fwmark(_) => Vec::new(),
        };
        vs.real_servers.iter().find_map(|rs| {
            let v6 = rs.addr.value.is_ipv6();
            let tunnelled = matches!(vs.method_of(rs), LbKind::Tun(_));
            (tunnelled && families.iter().any(|&f| f != v6)).then_some((&rs.addr.span, v6))
        })
    })
}

/// Where a simulated director's keepalived read `file` from: the scenario's config stands
/// in for /etc/keepalived/keepalived.conf and its includes sit beside it, so the logs name
/// the files as on a real host whatever the scenario's own path.
fn shown_name(main: &str, file: &str) -> String {
    const ETC: &str = "/etc/keepalived";
    if file == main {
        return format!("{ETC}/keepalived.conf");
    }
    let dir = main.rsplit_once('/').map_or("", |(d, _)| d);
    match file.strip_prefix(dir) {
        Some(rest) if !dir.is_empty() && rest.starts_with('/') => format!("{ETC}{rest}"),
        _ if dir.is_empty() && !file.starts_with('/') => format!("{ETC}/{file}"),
        _ => file.to_string(),
    }
}

/// A director process that exits at start, logging why (as keepalived does on a bad config).
struct Refused(Option<String>);

impl DirectorNode for Refused {
    fn handle_input(&mut self, _now: lvs_core::Instant, _input: lvs_core::director::Input) {}
    fn handle_timeout(&mut self, _now: lvs_core::Instant) {}
    fn poll_output(&mut self) -> Option<lvs_core::director::Output> {
        self.0.take().map(|text| lvs_core::director::Output::Log {
            source: lvs_core::director::LogSource::Main,
            text: format!("Stopping: {text}"),
        })
    }
    fn poll_timeout(&self) -> Option<lvs_core::Instant> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{factory, shown_name, ConfError, UNSUPPORTED_CHECKERS};

    /// A real server with `checker` (and a TCP_CHECK before it when `with_tcp`), with what
    /// each checker refers to declared, as keepalived 2.2.7 -t accepts it.
    fn conf_with(checker: &str, with_tcp: bool) -> String {
        let body = match checker {
            "DNS_CHECK" => "type A\n      name example.com",
            "SMTP_CHECK" => "helo_name lvsd",
            "FILE_CHECK" => "track_file ready",
            "BFD_CHECK" => "name bfd1",
            _ => "connect_timeout 2",
        };
        let tcp = if with_tcp {
            "    TCP_CHECK {\n      connect_timeout 2\n    }\n"
        } else {
            ""
        };
        format!(
            "track_file ready {{\n  file /tmp/ready\n}}\n\
             bfd_instance bfd1 {{\n  neighbor_ip 10.0.0.11\n}}\n\
             virtual_server 10.0.0.100 80 {{\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n\
             \x20 real_server 10.0.0.11 80 {{\n{tcp}    {checker} {{\n      {body}\n    }}\n\
             \x20 }}\n}}\n"
        )
    }

    // Each checker the simulator does not run refuses the config at load with its line, and
    // says truly what running without it would be: no checker at all, or the others alone
    // (keepalived needs all of a real server's checkers up).
    #[test]
    fn every_unsupported_checker_is_refused_with_its_line() {
        for &(word, what, _) in UNSUPPORTED_CHECKERS {
            for with_tcp in [false, true] {
                let text = conf_with(word, with_tcp);
                let line = text.lines().position(|l| l.contains(word)).unwrap() + 1;
                let Err(ConfError::Unsupported { at, why }) = factory("k.conf", &text) else {
                    panic!("{word} (TCP_CHECK too: {with_tcp}) was not refused:\n{text}");
                };
                assert!(at.starts_with(&format!("k.conf:{line}:")), "{word}: {at}");
                assert!(why.starts_with(&format!("{word}: ")), "{why}");
                assert!(why.contains(what), "{why}");
                let said = if with_tcp {
                    "other checkers alone"
                } else {
                    "no checker at all"
                };
                assert!(
                    why.contains(said),
                    "{word} (TCP_CHECK too: {with_tcp}): {why}"
                );
            }
        }
    }

    #[test]
    fn a_real_server_with_only_supported_checkers_loads() {
        let text = conf_with("UDP_CHECK", true)
            .replace("UDP_CHECK", "MISC_CHECK")
            .replace(
                "connect_timeout 2\n    }\n  }",
                "misc_path /bin/true\n    }\n  }",
            );
        assert!(factory("k.conf", &text).is_ok(), "{text}");
    }

    /// A TUN service on `vip` with one real server `rs`.
    fn tun_conf(vip: &str, rs: &str) -> String {
        format!(
            "virtual_server {vip} 80 {{\n  lb_algo rr\n  lb_kind TUN\n  protocol TCP\n\
             \x20 real_server {rs} 80 {{\n    TCP_CHECK {{\n      connect_timeout 2\n    }}\n\
             \x20 }}\n}}\n"
        )
    }

    // IPv6 in IPv6 loads; a real server tunnelled across families is refused with its line.
    #[test]
    fn ipv6_tun_loads_and_a_tunnel_across_families_is_refused() {
        assert!(factory("k.conf", &tun_conf("2001:db8::100", "2001:db8:5::11")).is_ok());
        assert!(factory("k.conf", &tun_conf("10.0.0.100", "10.0.5.11")).is_ok());
        for (vip, rs, said) in [
            ("10.0.0.100", "2001:db8:5::11", "not IPv4 in IPv6"),
            ("2001:db8::100", "10.0.5.11", "not IPv6 in IPv4"),
        ] {
            let Err(ConfError::Unsupported { at, why }) = factory("k.conf", &tun_conf(vip, rs))
            else {
                panic!("{vip} -> {rs} was not refused");
            };
            assert!(at.starts_with("k.conf:5:"), "{at}");
            assert!(why.contains(said), "{why}");
        }
    }

    // The director's IPv6 routes: each interface's prefixes and fe80::/64, the default
    // route on the interface whose prefix holds gateway6, and the source the kernel picks.
    #[test]
    fn ipv6_routes_are_the_kernels() {
        use crate::director::HostEnv;
        use crate::stack::IfaceSpec;
        let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap();
        let eth = |name: &str, last: u8, global: &str| {
            let mut i = IfaceSpec::new(name, [2, 0, 0, 0, 0, last], [10, 0, last, 2].into(), 24);
            i.addrs6.push((v6(global), 64));
            i
        };
        let env = HostEnv {
            hostname: "d".into(),
            ifaces: vec![
                eth("eth0", 1, "2001:db8:22::114"),
                eth("eth1", 2, "2001:db8:168::114"),
            ],
            gateway: None,
            gateway6: Some(v6("2001:db8:168::1")),
        };
        let node = super::node_env(&env);
        let routes6 = super::routes6(&env);
        let routes: Vec<(String, u8, &str)> = routes6
            .iter()
            .map(|r| (r.dst.to_string(), r.prefix, r.iface.as_str()))
            .collect();
        assert_eq!(
            routes,
            [
                ("2001:db8:22::114".to_string(), 64, "eth0"),
                ("fe80::".to_string(), 64, "eth0"),
                ("2001:db8:168::114".to_string(), 64, "eth1"),
                ("fe80::".to_string(), 64, "eth1"),
                ("::".to_string(), 0, "eth1"),
            ]
        );
        let side = lvs_core::director::Ipv6Side {
            routes: &routes6,
            vips: &[],
        };
        assert_eq!(
            node.source_for6(side, v6("2001:db8:20::11")),
            Some(v6("2001:db8:168::114"))
        );
        assert_eq!(
            node.source_for6(side, v6("2001:db8:22::11")),
            Some(v6("2001:db8:22::114"))
        );
    }

    #[test]
    fn files_are_named_as_under_etc_keepalived() {
        let main = "scenarios/fidelity/include/keepalived.conf";
        assert_eq!(shown_name(main, main), "/etc/keepalived/keepalived.conf");
        assert_eq!(
            shown_name(main, "scenarios/fidelity/include/conf.d/vrrp.conf"),
            "/etc/keepalived/conf.d/vrrp.conf"
        );
        assert_eq!(shown_name("k.conf", "conf.d/a"), "/etc/keepalived/conf.d/a");
        assert_eq!(shown_name(main, "/srv/other.conf"), "/srv/other.conf");
    }
}
