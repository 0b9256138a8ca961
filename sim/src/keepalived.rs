//! Directors built from keepalived.conf text: the factory a scenario hands the simulator.

use std::net::{IpAddr, Ipv4Addr};

use lvs_core::config;
use lvs_core::director::{config_log, Director, DirectorConfig, HostRoute, Iface, NodeEnv};
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

/// The host's interfaces and routes as the director sees them: a connected route per
/// address (its `src` that address, as the kernel adds it) and the default route through
/// the interface whose subnet holds the gateway.
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
                addrs: i.addrs.iter().map(|(a, _)| IpAddr::V4(*a)).collect(),
            })
            .collect(),
        routes,
    }
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
    if let Some(at) = udp_check(&cfg) {
        return Err(ConfError::Unsupported {
            at: at.to_string(),
            why: "UDP_CHECK: the simulator cannot run keepalived's UDP checker yet; refused \
                  rather than run the real server with no checker at all (check a UDP \
                  service with TCP_CHECK or MISC_CHECK on the same port)"
                .to_string(),
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
        match built {
            Ok(d) => Box::new(d) as Box<dyn DirectorNode>,
            Err(e) => Box::new(Refused(Some(e))),
        }
    }))
}

/// Where the first real server with a UDP_CHECK has it: the parser keeps it among the
/// keywords it does not honour, so the real server would run unchecked.
fn udp_check(cfg: &config::Config) -> Option<&config::diagnostic::Span> {
    cfg.virtual_servers.iter().find_map(|vs| {
        vs.real_servers.iter().find_map(|rs| {
            rs.other
                .iter()
                .find(|o| o.value.split_whitespace().next() == Some("UDP_CHECK"))
                .map(|o| &o.span)
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
    use super::shown_name;

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
