//! keepalived.conf (the typed model) onto the director's components, with keepalived 2.2's defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::check::checker::{CheckerConfig, CheckerKind, ConnectOpts, UrlCheck};
use crate::check::healthcheckers::HealthCheckersConfig;
use crate::check::virtual_server::{RealServerConfig, SorryServerConfig, VirtualServerConfig};
use crate::config::model::{self, Config, Secs};
use crate::config::rules::fwd;
use crate::vrrp::instance::InitialState;
use crate::vrrp::wire::{Auth, Version};
use crate::vrrp::{
    InstanceConfig, NotifyScripts, RouterConfig, ScriptConfig, SyncGroupConfig, TrackInterface,
    TrackScript, VirtualAddress,
};

use super::env::NodeEnv;
use super::node::{DirectorConfig, ScriptCommand, SyncDaemonConfig};
use super::LogSource;
use crate::config::diagnostic::{Diagnostic, Logged, Part};

/// Why a parsed config cannot run on this host.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// `vrrp_instance` without `interface` (and no `default_interface`).
    #[error("vrrp_instance {0} has no interface")]
    NoInterface(String),
    /// `vrrp_instance` without `virtual_router_id`.
    #[error("vrrp_instance {0} has no virtual_router_id")]
    NoVrid(String),
    /// The interface does not exist on this host or has no address.
    #[error("interface {iface} for vrrp_instance {instance} doesn't exist or has no address")]
    NoSuchInterface {
        /// The instance.
        instance: String,
        /// The interface.
        iface: String,
    },
}

/// What keepalived logs about a file when it reads it: each process its own part's problems
/// and the file-level ones, in its own log, in file order, then those it finds after reading
/// (the parent: `(Line N) TEXT`; the children: `(FILE: Line N) TEXT`, FILE as `shown` names
/// it). The VRRP and checker children only where the config gives them work (`vrrp`,
/// `checker`), as keepalived starts them. Diagnostics keepalived does not give are lvsd's
/// own advice and are not logged.
pub fn config_log(
    diagnostics: &[Diagnostic],
    shown: &dyn Fn(&str) -> String,
    vrrp: bool,
    checker: bool,
) -> Vec<(LogSource, String)> {
    let processes = [
        (LogSource::Main, Part::Global, true),
        (LogSource::Vrrp, Part::Vrrp, vrrp),
        (LogSource::Healthcheckers, Part::Check, checker),
    ];
    let mut out = Vec::new();
    for (source, part, runs) in processes {
        if !runs {
            continue;
        }
        let mine = || {
            diagnostics
                .iter()
                .filter(move |d| !d.is_error() && (d.part == part || d.part == Part::File))
        };
        for d in mine() {
            if let Some(Logged::AtLine(text)) = &d.keepalived {
                let line = if source == LogSource::Main {
                    format!("(Line {}) {text}", d.span.line)
                } else {
                    format!("({}: Line {}) {text}", shown(&d.span.file), d.span.line)
                };
                out.push((source, line));
            }
        }
        for d in mine() {
            if let Some(Logged::Unplaced(text)) = &d.keepalived {
                out.push((source, text.clone()));
            }
        }
    }
    out
}

fn dur(s: Secs) -> Duration {
    Duration::from_micros(s.micros)
}

fn secs<T: Copy + Into<u64>>(
    v: &Option<crate::config::diagnostic::Spanned<T>>,
) -> Option<Duration> {
    v.as_ref().map(|x| Duration::from_secs(x.value.into()))
}

impl DirectorConfig {
    /// Map a parsed keepalived.conf onto the director running on `env`.
    pub fn from_keepalived(cfg: &Config, env: &NodeEnv) -> Result<Self, BuildError> {
        Ok(DirectorConfig {
            vrrp: router_config(cfg, env)?,
            scripts: cfg
                .vrrp_scripts
                .iter()
                .map(|s| {
                    let interval = s
                        .interval
                        .as_ref()
                        .map_or(Duration::from_secs(1), |i| dur(i.value));
                    let cmd = ScriptCommand {
                        command: s
                            .script
                            .as_ref()
                            .map_or_else(String::new, |c| c.value.clone()),
                        // keepalived: `timeout` defaults to the script's interval.
                        timeout: s.timeout.as_ref().map_or(interval, |t| dur(t.value)),
                    };
                    (s.name.value.clone(), cmd)
                })
                .collect::<BTreeMap<_, _>>(),
            checkers: checkers_config(cfg),
            sync_daemon: sync_daemon(cfg),
            data_plane: Default::default(),
            config_log: Vec::new(),
        })
    }
}

/// keepalived starts the sync daemon for global `lvs_sync_daemon IFACE INSTANCE [id N]`, or
/// for the first instance with the deprecated `lvs_sync_daemon_interface IFACE`. A misspelt
/// keyword (the seed's `lvs_sync_daemon_inteface`) was skipped as unknown: no sync daemon.
fn sync_daemon(cfg: &Config) -> Option<SyncDaemonConfig> {
    let vrid_of = |name: &str| {
        cfg.vrrp_instances
            .iter()
            .find(|i| i.name.value == name)
            .and_then(|i| i.virtual_router_id.as_ref())
            .map_or(0, |v| v.value)
    };
    if let Some(d) = &cfg.global_defs.lvs_sync_daemon {
        return Some(SyncDaemonConfig {
            iface: d.interface.value.clone(),
            instance: d.instance.value.clone(),
            syncid: d
                .id
                .as_ref()
                .map_or_else(|| vrid_of(&d.instance.value), |i| i.value),
        });
    }
    cfg.vrrp_instances.iter().find_map(|i| {
        let iface = i.lvs_sync_daemon_interface.as_ref()?;
        Some(SyncDaemonConfig {
            iface: iface.value.clone(),
            instance: i.name.value.clone(),
            syncid: vrid_of(&i.name.value),
        })
    })
}

/// The notify scripts of an instance or sync group block.
fn notify_scripts(n: &model::Notify) -> NotifyScripts {
    let cmd = |s: &Option<crate::config::diagnostic::Spanned<String>>| {
        s.as_ref().map(|c| c.value.clone())
    };
    NotifyScripts {
        master: cmd(&n.master),
        backup: cmd(&n.backup),
        fault: cmd(&n.fault),
        stop: cmd(&n.stop),
        generic: cmd(&n.any),
    }
}

fn router_config(cfg: &Config, env: &NodeEnv) -> Result<RouterConfig, BuildError> {
    let g = &cfg.global_defs;
    let mut instances = Vec::new();
    for vi in &cfg.vrrp_instances {
        let name = vi.name.value.clone();
        let iface = vi
            .interface
            .as_ref()
            .or(g.default_interface.as_ref())
            .map(|i| i.value.clone())
            .ok_or_else(|| BuildError::NoInterface(name.clone()))?;
        let vrid = vi
            .virtual_router_id
            .as_ref()
            .map(|v| v.value)
            .ok_or_else(|| BuildError::NoVrid(name.clone()))?;
        let ipv6 = vi.native_ipv6.is_some()
            || vi
                .virtual_ipaddress
                .first()
                .is_some_and(|v| v.addr.value.is_ipv6());
        let primary_ip = env
            .primary(&iface, ipv6)
            .ok_or_else(|| BuildError::NoSuchInterface {
                instance: name.clone(),
                iface: iface.clone(),
            })?;
        let mut ic = InstanceConfig::new(&name, &iface, vrid, primary_ip);
        ic.version = match vi
            .version
            .as_ref()
            .or(g.vrrp_version.as_ref())
            .map(|v| v.value)
        {
            Some(3) => Version::V3,
            _ if ipv6 => Version::V3,
            _ => Version::V2,
        };
        // A written state as keepalived takes it (AH turns MASTER into BACKUP); an unwritten
        // one the instance derives from the priority.
        ic.state = vi.state.as_ref().map(|_| match vi.initial_state(g) {
            model::State::Master => InitialState::Master,
            model::State::Backup => InitialState::Backup,
        });
        ic.priority = vi.priority.as_ref().map_or(0, |p| p.value);
        ic.advert_int = dur(vi.effective_advert_int(g));
        ic.auth = match vi.authentication_in_effect(g) {
            Some(model::AuthType::Pass) => {
                let mut pass = [0u8; 8];
                let written = vi
                    .authentication
                    .as_ref()
                    .and_then(|a| a.auth_pass.as_ref());
                if let Some(p) = written {
                    for (d, s) in pass.iter_mut().zip(p.value.bytes()) {
                        *d = s;
                    }
                }
                Auth::Pass(pass)
            }
            Some(model::AuthType::Ah) => Auth::Ah,
            None => Auth::None,
        };
        ic.vips = vi
            .virtual_ipaddress
            .iter()
            .map(|v| {
                let mut a = VirtualAddress::host(v.addr.value);
                if let Some(p) = v.prefix {
                    a.prefix = p;
                }
                a.dev = v.dev.as_ref().map(|d| d.value.clone());
                a
            })
            .collect();
        ic.src_ip = vi.unicast_src_ip.as_ref().map(|s| s.value);
        ic.unicast_peers = vi.unicast_peer.iter().map(|p| p.value).collect();
        let fault_no_peer = vi
            .other
            .iter()
            .any(|o| o.value.split_whitespace().next() == Some("unicast_fault_no_peer"));
        if vi.unicast_keyword.is_some() && vi.unicast_peer.is_empty() && fault_no_peer {
            ic.config_faults = 1;
        }
        ic.nopreempt = vi.nopreempt.is_some();
        // Strict mode resets preempt_delay (vrrp_complete_instance; the config warned).
        ic.preempt_delay = vi
            .preempt_delay
            .as_ref()
            .filter(|_| !vi.strict_mode(g))
            .map_or(Duration::ZERO, |d| dur(d.value));
        if let Some(d) = secs(&vi.garp_master_delay).or(secs(&g.vrrp_garp_master_delay)) {
            ic.garp_master_delay = d;
            ic.garp_lower_prio_delay = d;
        }
        if let Some(r) = vi
            .garp_master_repeat
            .as_ref()
            .or(g.vrrp_garp_master_repeat.as_ref())
        {
            ic.garp_master_repeat = r.value;
            ic.garp_lower_prio_repeat = r.value;
        }
        if let Some(d) = secs(&vi.garp_master_refresh).or(secs(&g.vrrp_garp_master_refresh)) {
            ic.garp_master_refresh = d;
        }
        if let Some(r) = vi
            .garp_master_refresh_repeat
            .as_ref()
            .or(g.vrrp_garp_master_refresh_repeat.as_ref())
        {
            ic.garp_master_refresh_repeat = r.value;
        }
        ic.track_interfaces = vi
            .track_interface
            .iter()
            .map(|t| TrackInterface {
                iface: t.name.value.clone(),
                weight: t.weight.as_ref().map_or(0, |w| w.value),
                reverse: false,
            })
            .collect();
        // vrrp_track.c: a track_script naming no vrrp_script is ignored.
        ic.track_scripts = vi
            .track_script
            .iter()
            .filter(|t| {
                cfg.vrrp_scripts
                    .iter()
                    .any(|s| s.name.value == t.name.value)
            })
            .map(|t| TrackScript {
                script: t.name.value.clone(),
                weight: t.weight.as_ref().map(|w| w.value),
                reverse: false,
            })
            .collect();
        ic.dont_track_primary = vi.dont_track_primary.is_some();
        ic.notify = notify_scripts(&vi.notify);
        instances.push(ic);
    }
    // vrrp_sync_set_group: a member that is no instance, or is already in an earlier group,
    // is ignored (the config warned); a group left with no member is removed.
    let mut claimed = std::collections::BTreeSet::new();
    let sync_groups = cfg
        .vrrp_sync_groups
        .iter()
        .filter_map(|s| {
            let members: Vec<String> = s
                .group
                .iter()
                .map(|m| m.value.clone())
                .filter(|m| instances.iter().any(|i| i.name == *m))
                .filter(|m| claimed.insert(m.clone()))
                .collect();
            (!members.is_empty()).then(|| SyncGroupConfig {
                name: s.name.value.clone(),
                members,
                notify: notify_scripts(&s.notify),
            })
        })
        .collect();
    let scripts = cfg
        .vrrp_scripts
        .iter()
        .map(|s| {
            let mut sc = ScriptConfig::new(&s.name.value);
            if let Some(i) = &s.interval {
                sc.interval = dur(i.value);
            }
            if let Some(w) = &s.weight {
                sc.weight = w.value;
            }
            if let Some(r) = &s.rise {
                sc.rise = r.value;
            }
            if let Some(f) = &s.fall {
                sc.fall = f.value;
            }
            sc
        })
        .collect();
    Ok(RouterConfig {
        instances,
        sync_groups,
        scripts,
    })
}

fn checkers_config(cfg: &Config) -> HealthCheckersConfig {
    let mut virtual_servers = Vec::new();
    for vs in &cfg.virtual_servers {
        let lb = vs
            .lvs_method
            .as_ref()
            .map_or(model::LbKind::Nat, |k| k.value);
        for (service, _dests) in cfg.vs_rules(vs) {
            let mut v = VirtualServerConfig::new(service, fwd(lb));
            v.fwmark_protocol = vs.protocol.as_ref().map(|p| p.value);
            v.delay_loop = vs.delay_loop.as_ref().map(|d| dur(d.value));
            v.alpha = vs.alpha.is_some();
            v.omega = vs.omega.is_some();
            v.quorum = vs.quorum.as_ref().map_or(1, |q| q.value);
            v.hysteresis = vs.hysteresis.as_ref().map_or(0, |h| h.value);
            v.quorum_up = vs.quorum_up.as_ref().map(|s| s.value.clone());
            v.quorum_down = vs.quorum_down.as_ref().map(|s| s.value.clone());
            v.sorry_server = vs.sorry_server.as_ref().map(|s| SorryServerConfig {
                addr: s.value.0,
                port: s.value.1,
                fwd: vs
                    .sorry_server_lvs_method
                    .as_ref()
                    .or(vs.sorry_server_inherited_method.as_ref())
                    .map(|m| fwd(m.value)),
                inhibit: false,
            });
            v.real_servers = vs
                .real_servers
                .iter()
                .map(|rs| real_server(vs, rs))
                .collect();
            virtual_servers.push(v);
        }
    }
    HealthCheckersConfig {
        virtual_servers,
        log_all_failures: false,
        probe_id_base: 0,
    }
}

fn real_server(vs: &model::VirtualServer, rs: &model::RealServer) -> RealServerConfig {
    let port = rs.port.as_ref().map_or(0, |p| p.value);
    let mut r = RealServerConfig::new(rs.addr.value, port);
    r.weight = rs.weight.as_ref().map_or(1, |w| w.value);
    // Its own method, else the service's when its block started (else the service's own).
    r.fwd = rs
        .lvs_method
        .as_ref()
        .or(rs.inherited_method.as_ref())
        .map(|k| fwd(k.value));
    r.u_threshold = rs.uthreshold.as_ref().map_or(0, |u| u.value);
    r.l_threshold = rs.lthreshold.as_ref().map_or(0, |l| l.value);
    r.inhibit_on_failure = rs.inhibit_on_failure.as_ref().map(|_| true);
    r.notify_up = rs.notify_up.as_ref().map(|s| s.value.clone());
    r.notify_down = rs.notify_down.as_ref().map(|s| s.value.clone());
    r.checkers = rs.checkers.iter().map(|c| checker(vs, c)).collect();
    r
}

fn checker(vs: &model::VirtualServer, c: &model::Checker) -> CheckerConfig {
    let conn = ConnectOpts {
        ip: c.connect_ip.as_ref().map(|v| v.value),
        port: c.connect_port.as_ref().map(|v| v.value),
        bindto: c.bindto.as_ref().map(|v| v.value),
        bind_port: None,
    };
    let kind = match c.kind.value {
        model::CheckerKind::Tcp => CheckerKind::Tcp(conn),
        model::CheckerKind::Http | model::CheckerKind::Ssl => CheckerKind::Http {
            conn,
            tls: c.kind.value == model::CheckerKind::Ssl,
            virtualhost: vs.virtualhost.as_ref().map(|v| v.value.clone()),
            urls: c
                .urls
                .iter()
                .map(|u| {
                    let mut url = UrlCheck::new(u.path.as_ref().map_or("/", |p| p.value.as_str()));
                    url.digest = u.digest.as_ref().map(|d| d.value.clone());
                    url.status_codes = u
                        .status_codes
                        .iter()
                        .flat_map(|s| s.value.0..=s.value.1)
                        .collect();
                    url
                })
                .collect(),
        },
        model::CheckerKind::Misc => CheckerKind::Misc {
            command: c
                .misc_path
                .as_ref()
                .map_or_else(String::new, |p| p.value.clone()),
            timeout: c.misc_timeout.as_ref().map(|t| dur(t.value)),
            dynamic: c.misc_dynamic.is_some(),
        },
    };
    let mut cc = CheckerConfig::new(kind);
    cc.connect_timeout = c.connect_timeout.as_ref().map(|t| dur(t.value));
    cc.retry = c.retry.as_ref().map(|r| r.value);
    cc.delay_before_retry = c.delay_before_retry.as_ref().map(|d| dur(d.value));
    cc.warmup = c.warmup.as_ref().map(|w| dur(w.value));
    cc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::FwdMethod;

    fn sorry(extra: &str) -> Option<SorryServerConfig> {
        let text = format!(
            "virtual_server 10.0.0.1 80 {{\n lb_kind DR\n protocol TCP\n sorry_server 10.0.0.9 8080\n{extra} real_server 10.0.0.2 80 {{\n  weight 1\n }}\n}}\n"
        );
        let parsed = crate::config::parse_text("k.conf", &text, &crate::config::NoFiles);
        let cfg = parsed.config.expect("parses");
        checkers_config(&cfg).virtual_servers[0]
            .sorry_server
            .clone()
    }

    // vrrp_sync_set_group (fixtures/keepalived-t/sync-groups.txt): the second claim on A and
    // the missing NOPE are ignored, G2 is left empty and removed, and the router accepts it.
    #[test]
    fn sync_groups_keep_the_first_claim_and_drop_what_is_left_empty() {
        let text = include_str!("../../../fixtures/keepalived-t/sync-groups.conf");
        let parsed = crate::config::parse_text("k.conf", text, &crate::config::NoFiles);
        let cfg = parsed.config.expect("parses");
        let env = NodeEnv {
            ifaces: vec![crate::director::Iface {
                name: "d0".into(),
                mac: [2, 0, 0, 0, 0, 1],
                addrs: vec!["198.18.0.2".parse().unwrap()],
            }],
            routes: Vec::new(),
        };
        let rc = router_config(&cfg, &env).expect("builds");
        let groups: Vec<(&str, Vec<&str>)> = rc
            .sync_groups
            .iter()
            .map(|g| {
                (
                    g.name.as_str(),
                    g.members.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(groups, vec![("G1", vec!["A", "B"])]);
        assert!(crate::vrrp::router::VrrpRouter::new(rc).is_ok());
    }

    // vrrp_complete_instance: strict mode resets preempt_delay ("... is incompatible with
    // strict mode - resetting", fixtures/keepalived-t/strict.txt).
    #[test]
    fn strict_mode_resets_preempt_delay() {
        let delay = |global: &str| {
            let text = format!(
                "global_defs {{\n{global}}}\nvrrp_instance A {{\n interface d0\n state BACKUP\n virtual_router_id 1\n priority 100\n preempt_delay 10\n virtual_ipaddress {{\n  198.18.0.100\n }}\n}}\n"
            );
            let parsed = crate::config::parse_text("k.conf", &text, &crate::config::NoFiles);
            let cfg = parsed.config.expect("parses");
            let env = NodeEnv {
                ifaces: vec![crate::director::Iface {
                    name: "d0".into(),
                    mac: [2, 0, 0, 0, 0, 1],
                    addrs: vec!["198.18.0.2".parse().unwrap()],
                }],
                routes: Vec::new(),
            };
            router_config(&cfg, &env).expect("builds").instances[0].preempt_delay
        };
        assert_eq!(delay(""), Duration::from_secs(10));
        assert_eq!(delay(" vrrp_strict\n"), Duration::ZERO);
    }

    // keepalived's sorry_server_lvs_method: the sorry server's own forwarding method (a NAT
    // sorry server behind a DR service keeps its port); without it, the service's as it was
    // at the sorry_server line (alloc_ssvr copies it), a later lb_kind not changing it.
    #[test]
    fn the_sorry_server_forwards_with_its_own_method_when_given() {
        let own = sorry(" sorry_server_lvs_method NAT\n").unwrap();
        assert_eq!((own.port, own.fwd), (8080, Some(FwdMethod::Masq)));
        let inherited = sorry("").unwrap();
        assert_eq!(inherited.fwd, Some(FwdMethod::Route));
        let later = sorry(" lb_kind NAT\n").unwrap();
        assert_eq!(later.fwd, Some(FwdMethod::Route));
    }
}
