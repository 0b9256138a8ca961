//! Checks across blocks, as keepalived makes them once the whole file is read.

use std::collections::BTreeMap;

use super::diagnostic::{Logged, Part};
use super::lexer::Sources;
use super::model::{AuthType, Config, LbKind, State, VirtualServer, VsKey, VsgEntry};
use super::rules::{range, DEFAULT_SCHEDULER};
use crate::check::virtual_server::{format_trio, reachable_quorum};
use crate::ipvs::sched::SchedKind;
use crate::ipvs::Protocol;

/// Report cross-block problems: missing VRID/interface, duplicate VRIDs, dangling names.
pub fn validate(c: &Config, s: &mut Sources) {
    s.part = Part::Vrrp;
    let default_if = c
        .global_defs
        .default_interface
        .as_ref()
        .map(|d| d.value.clone());
    // (interface, vrid) -> instance that claimed it first.
    // (interface, vrid, IPv6) -> instance that claimed it first: IPv4 and IPv6 instances are
    // separate VRRP routers and may share a VRID on one link.
    let mut vrids: BTreeMap<(String, u8, bool), String> = BTreeMap::new();
    // A second instance of one name never gets here: keepalived skips its block (tree).
    for v in &c.vrrp_instances {
        if v.virtual_router_id.is_none() {
            s.error(
                &v.name.span,
                format!("({}) the virtual router id must be set", v.name.value),
            );
        }
        let iface = v
            .interface
            .as_ref()
            .map(|i| i.value.clone())
            .or_else(|| default_if.clone());
        if iface.is_none() {
            s.error(
                &v.name.span,
                format!(
                    "({}) no interface set (and no default_interface in global_defs)",
                    v.name.value
                ),
            );
        }
        if let (Some(iface), Some(vrid)) = (iface, &v.virtual_router_id) {
            let v6 = v.native_ipv6.is_some()
                || v.virtual_ipaddress
                    .first()
                    .is_some_and(|a| a.addr.value.is_ipv6());
            if let Some(other) = vrids.get(&(iface.clone(), vrid.value, v6)) {
                // keepalived's words (vrrp.c), the first-defined instance first.
                s.error_unplaced_keepalived(
                    &vrid.span,
                    format!(
                        "{other} and {} both use VRID {} with IPv{} on interface {iface}",
                        v.name.value,
                        vrid.value,
                        if v6 { 6 } else { 4 }
                    ),
                );
            } else {
                vrids.insert((iface, vrid.value, v6), v.name.value.clone());
            }
        }
        for t in &v.track_script {
            if !c
                .vrrp_scripts
                .iter()
                .any(|sc| sc.name.value == t.name.value)
            {
                s.warn_as_keepalived(
                    &t.name.span,
                    format!(
                        "({}) track script {} not found, ignoring...",
                        v.name.value, t.name.value
                    ),
                );
            }
        }
    }
    for v in &c.vrrp_instances {
        instance_checks(c, v, s);
    }
    for sc in &c.vrrp_scripts {
        let used = c
            .vrrp_instances
            .iter()
            .any(|v| v.track_script.iter().any(|t| t.name.value == sc.name.value));
        if !used {
            s.warn(
                &sc.name.span,
                format!("script {} is not used", sc.name.value),
            );
        }
    }
    let mut member_of: BTreeMap<&str, &str> = BTreeMap::new();
    for g in &c.vrrp_sync_groups {
        let mut found = 0;
        for m in &g.group {
            if !c.vrrp_instances.iter().any(|v| v.name.value == m.value) {
                s.warn_unplaced_keepalived(
                    &m.span,
                    format!(
                        "Virtual router {} specified in sync group {} doesn't exist - ignoring",
                        m.value, g.name.value
                    ),
                );
            } else if member_of.contains_key(m.value.as_str()) {
                // vrrp_sync_set_group keeps the first group and carries on.
                s.warn_unplaced_keepalived(
                    &m.span,
                    format!(
                        "Virtual router {} cannot exist in more than one sync group; ignoring {}",
                        m.value, g.name.value
                    ),
                );
            } else {
                member_of.insert(&m.value, &g.name.value);
                found += 1;
            }
        }
        if found == 0 {
            s.warn_unplaced_keepalived(
                &g.name.span,
                format!(
                    "Sync group {}, no matching virtual router found in group declaration - removing",
                    g.name.value
                ),
            );
        } else if found == 1 {
            s.warn_unplaced_keepalived(
                &g.name.span,
                format!(
                    "Sync group {} has only 1 virtual router(s) - this probably isn't what you want",
                    g.name.value
                ),
            );
        }
    }
    if let Some(d) = &c.global_defs.lvs_sync_daemon {
        if !c
            .vrrp_instances
            .iter()
            .any(|v| v.name.value == d.instance.value)
        {
            s.error(
                &d.instance.span,
                format!(
                    "lvs_sync_daemon: vrrp_instance {} doesn't exist",
                    d.instance.value
                ),
            );
        }
    }
    s.part = Part::Check;
    for vs in &c.virtual_servers {
        if vs.real_servers.is_empty() {
            // keepalived 2.2 drops such a service before any other check (check_data.c).
            s.warn_unplaced_keepalived(
                &vs.key.span,
                format!(
                    "Virtual server {} has no real servers - ignoring",
                    format_vs(vs, vs.protocol.is_none())
                ),
            );
            continue;
        }
        let fwmark = match &vs.key.value {
            VsKey::Group(name) => {
                match c
                    .virtual_server_groups
                    .iter()
                    .find(|g| &g.name.value == name)
                {
                    None => {
                        s.error(
                            &vs.key.span,
                            format!("virtual_server_group {name} is not defined"),
                        );
                        continue;
                    }
                    Some(g) => g
                        .entries
                        .iter()
                        .all(|e| matches!(e, super::model::VsgEntry::Fwmark(_))),
                }
            }
            VsKey::Fwmark(_) => true,
            VsKey::Inet { .. } => false,
        };
        if fwmark {
            if let Some(p) = &vs.protocol {
                s.warn_unplaced_keepalived(
                    &p.span,
                    format!(
                        "Warning: Virtual server {}: protocol specified for fwmark - protocol will be ignored",
                        format_vs(vs, true)
                    ),
                );
            }
        }
        if vs.flags.iter().any(|f| f.value == "ops") && !vs.one_packet() {
            if let Some(f) = vs.flags.iter().find(|f| f.value == "ops") {
                s.warn(&f.span, "one packet scheduling requires UDP - ignored");
            }
        }
        if matches!(vs.key.value, VsKey::Inet { port: 0, .. })
            && vs.persistence_timeout.is_none()
            && vs.persistence_granularity.is_none()
        {
            s.warn(
                &vs.key.span,
                "zero port only valid for persistent services - making it persistent (360 s)",
            );
        }
        for rs in vs.real_servers.iter().filter(|rs| vs.family_mismatch(rs)) {
            s.warn(
                &rs.addr.span,
                "address family of virtual server and real server don't match - real server skipped",
            );
        }
        if !fwmark && vs.protocol.is_none() {
            // keepalived 2.2: the kernel treats protocol 0 as UDP, so keepalived sets it.
            s.warn_unplaced_keepalived(
                &vs.key.span,
                format!(
                    "Virtual server {}: no protocol set - defaulting to UDP",
                    format_vs(vs, true)
                ),
            );
        }
        // keepalived's wording (check_data.c), scheduler first.
        if vs.lvs_sched.is_none() {
            s.warn_unplaced_keepalived(
                &vs.key.span,
                format!(
                    "Virtual server {}: no scheduler set, setting default '{DEFAULT_SCHEDULER}'",
                    format_vs(vs, fwmark)
                ),
            );
        }
        // keepalived fills an unset method from the service's, first setting that to NAT.
        let unset = vs.real_servers.iter().any(|r| r.lvs_method.is_none())
            || (vs.sorry_server.is_some() && vs.sorry_server_lvs_method.is_none());
        if vs.lvs_method.is_none() && unset {
            s.warn_unplaced_keepalived(
                &vs.key.span,
                format!(
                    "Virtual server {}: no forwarding method set, setting default NAT",
                    format_vs(vs, fwmark)
                ),
            );
        }
        for (i, rs) in vs.real_servers.iter().enumerate() {
            let dup = vs.real_servers.iter().take(i).any(|o| {
                o.addr.value == rs.addr.value
                    && o.port.as_ref().map(|p| p.value) == rs.port.as_ref().map(|p| p.value)
            });
            if dup {
                s.warn(
                    &rs.addr.span,
                    "real server is duplicated - the second is ignored",
                );
            }
        }
        port_checks(c, vs, fwmark, s);
        let weight_sum: i64 = vs
            .real_servers
            .iter()
            .filter(|rs| !vs.family_mismatch(rs))
            .map(|rs| i64::from(rs.weight.as_ref().map_or(1, |w| w.value)))
            .sum();
        let quorum = vs.quorum.as_ref().map_or(1, |q| q.value.max(1));
        if let (_, Some(line)) = reachable_quorum(quorum, weight_sum, &format_vs(vs, fwmark)) {
            let at = vs.quorum.as_ref().map_or(&vs.key.span, |q| &q.span);
            s.warn_unplaced_keepalived(at, line);
        }
        for f in &vs.flags {
            let sched = vs.lvs_sched.as_ref().map_or(DEFAULT_SCHEDULER, |x| x.value);
            let ok = match f.value.as_str() {
                "sh-port" | "sh-fallback" => sched == SchedKind::Sh,
                "mh-port" | "mh-fallback" => sched == SchedKind::Mh,
                _ => true,
            };
            if !ok {
                s.warn(
                    &f.span,
                    format!(
                        "{} only applies to the {} scheduler; ignored",
                        f.value,
                        &f.value[..2]
                    ),
                );
            }
        }
    }
    s.part = Part::File;
}

/// validate_check_config: a non-NAT real server takes the service's port (0 under a fwmark);
/// keepalived says so where the written port differs. Under a group it only says so (the
/// group's entries give the ports, ipvswrapper.c).
fn port_checks(c: &Config, vs: &VirtualServer, fwmark: bool, s: &mut Sources) {
    sorry_port_checks(c, vs, s);
    let proto = if fwmark && !matches!(vs.key.value, VsKey::Group(_)) {
        None
    } else {
        Some(vs.protocol.as_ref().map_or(Protocol::Udp, |p| p.value))
    };
    let reset = vs
        .real_servers
        .iter()
        .filter(|rs| vs.method_of(rs) != LbKind::Nat && !vs.family_mismatch(rs));
    for rs in reset {
        let Some(port) = rs.port.as_ref().filter(|p| p.value != 0) else {
            continue;
        };
        let rs_name = format_trio(rs.addr.value, proto, port.value);
        let mut warn = |message: String| s.warn_unplaced_keepalived(&port.span, message);
        match &vs.key.value {
            VsKey::Inet { port: vs_port, .. } if *vs_port != port.value => warn(format!(
                "WARNING - virtual server {} and real server {rs_name} ports don't match - resetting",
                format_vs(vs, false)
            )),
            VsKey::Inet { .. } => {}
            VsKey::Fwmark(_) => warn(format!(
                "WARNING - fwmark virtual server {}, real server {rs_name} has port specified - clearing",
                format_vs(vs, true)
            )),
            VsKey::Group(name) => {
                let Some(g) = c.virtual_server_groups.iter().find(|g| &g.name.value == name)
                else {
                    continue;
                };
                if g.entries.iter().any(|e| matches!(e, VsgEntry::Fwmark(_))) {
                    warn(format!(
                        "WARNING - fwmark virtual server {}, real server {rs_name} has port specified - port will be ignored",
                        format_vs(vs, false)
                    ));
                }
                for e in &g.entries {
                    let VsgEntry::Inet { addr, range_end, port: entry_port } = e else {
                        continue;
                    };
                    if entry_port.value == port.value {
                        continue;
                    }
                    let last = range(addr.value, *range_end)
                        .last()
                        .copied()
                        .filter(|l| *l != addr.value);
                    let entry = match last {
                        Some(l) => format!("{}-{l},{}", addr.value, entry_port.value),
                        None => format!("{},{}", addr.value, entry_port.value),
                    };
                    warn(format!(
                        "virtual server {}:[{entry}] and real server {rs_name} ports don't match",
                        format_vs(vs, false)
                    ));
                }
            }
        }
    }
}

/// validate_check_config's port rule for the sorry server: a non-NAT one (its own
/// `sorry_server_lvs_method`, else the service's method at its line, else the service's
/// last) takes the service's port, 0 under a fwmark; keepalived says so where a written port
/// differs. Under a group it only says so.
fn sorry_port_checks(c: &Config, vs: &VirtualServer, s: &mut Sources) {
    let Some(ss) = &vs.sorry_server else { return };
    let method = vs.sorry_method_line().map_or(LbKind::Nat, |m| m.value);
    let port = ss.value.1;
    if method == LbKind::Nat || port == 0 {
        return;
    }
    let mut warn = |message: String| s.warn_unplaced_keepalived(&ss.span, message);
    match &vs.key.value {
        VsKey::Inet { port: vs_port, .. } if *vs_port != port => warn(format!(
            "WARNING - virtual server {} and sorry server ports don't match - resetting",
            format_vs(vs, false)
        )),
        VsKey::Inet { .. } => {}
        VsKey::Fwmark(_) => warn(format!(
            "WARNING - virtual server {}, sorry server has port specified - clearing",
            format_vs(vs, true)
        )),
        VsKey::Group(name) => {
            let Some(g) = c
                .virtual_server_groups
                .iter()
                .find(|g| &g.name.value == name)
            else {
                return;
            };
            if g.entries.iter().any(|e| matches!(e, VsgEntry::Fwmark(_))) {
                warn(format!(
                    "WARNING - fwmark virtual server {}, sorry server has port specified - port will be ignored",
                    format_vs(vs, false)
                ));
            }
            if g.entries
                .iter()
                .any(|e| matches!(e, VsgEntry::Inet { port: p, .. } if p.value != port))
            {
                warn(format!(
                    "WARNING - virtual server {}, sorry server has port specified - port will be ignored",
                    format_vs(vs, false)
                ));
            }
        }
    }
}

/// A virtual server as keepalived's `FMT_VS` names it: `[ADDR]:PROTO:PORT`, `FWM N` or
/// `[GROUP]:0`; the protocol is the one in effect (UDP when none is set), `none` when
/// `no_proto` (fwmarks, or before keepalived has set the default).
fn format_vs(vs: &VirtualServer, no_proto: bool) -> String {
    let proto = if no_proto {
        "none"
    } else {
        match vs.protocol.as_ref().map_or(Protocol::Udp, |p| p.value) {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    };
    match &vs.key.value {
        VsKey::Inet { addr, port } => format!("[{addr}]:{proto}:{port}"),
        VsKey::Fwmark(m) => format!("FWM {m}"),
        VsKey::Group(g) => format!("[{g}]:0"),
    }
}

/// Checks keepalived makes when it completes an instance (vrrp.c `vrrp_complete_instance`).
fn instance_checks(c: &Config, v: &super::model::VrrpInstance, s: &mut Sources) {
    let name = &v.name.value;
    let version = v.vrrp_version(&c.global_defs);
    let strict = v.strict_mode(&c.global_defs);
    if strict && v.is_ipv6() {
        if let Some(ver) = v.version.as_ref().filter(|ver| ver.value == 2) {
            s.warn_unplaced_keepalived(
                &ver.span,
                format!("({name}) cannot use IPv6 with VRRP version 2; setting version 3"),
            );
        }
    }
    if let Some(a) = &v.advert_int {
        let used = v.effective_advert_int(&c.global_defs);
        if used != a.value {
            let why = if version == 2 {
                "VRRPv2 advertises whole seconds from 1 to 255"
            } else {
                "VRRPv3 advertises in units of 10 ms, at most 40.95 s"
            };
            s.warn(
                &a.span,
                format!(
                    "({name}) advert_int {}s: {why}; using {}s",
                    a.value.display(),
                    used.display()
                ),
            );
        }
    }
    if let Some(kw) = v
        .unicast_keyword
        .as_ref()
        .filter(|_| v.unicast_peer.is_empty())
    {
        let fault_no_peer = v
            .other
            .iter()
            .find(|o| o.value.split_whitespace().next() == Some("unicast_fault_no_peer"));
        if let Some(f) = fault_no_peer {
            // vrrp_complete_instance counts a config fault: keepalived holds the instance in
            // FAULT from the start (its run log says so; -t does not print it).
            s.warn_logged(
                &f.span,
                format!("({name}) unicast_fault_no_peer and no unicast_peer: the instance stays in FAULT"),
                Logged::Unplaced(format!(
                    "({name}) Cannot use unicast without any peers - going to fault state"
                )),
            );
        } else {
            s.warn_unplaced_keepalived(
                &kw.span,
                format!("({name}) A unicast keyword has been specified without any unicast peers. Defaulting to multicast. This usage is deprecated - please update your configuration."),
            );
        }
    }
    if v.virtual_ipaddress.is_empty() {
        // VRRPv3 and strict mode need an address to advertise: the instance, and with it
        // the VRRP process, is refused.
        if version == 3 || strict {
            s.error_unplaced_keepalived(
                &v.name.span,
                format!("({name}) No VIP specified; at least one is required"),
            );
        } else {
            s.warn_unplaced_keepalived(
                &v.name.span,
                format!("({name}) No VIP specified; at least one is sensible"),
            );
        }
    }
    if let Some(st) = v
        .state
        .as_ref()
        .filter(|st| strict && (st.value == State::Master) != v.is_owner())
    {
        s.warn_unplaced_keepalived(
            &st.span,
            format!("({name}) State MASTER must match being address owner"),
        );
    }
    // vrrp_complete_instance's order and words: authentication first, then what the initial
    // state allows.
    if let Some(auth) = &v.authentication {
        let at = auth.auth_type.as_ref().map(|t| t.span.clone());
        if let Some(at) = &at {
            if strict {
                s.warn_unplaced_keepalived(
                    at,
                    format!("({name}) Strict mode does not support authentication. Ignoring."),
                );
            } else if version == 3 {
                s.warn_unplaced_keepalived(
                    at,
                    format!("({name}) VRRP version 3 does not support authentication. Ignoring."),
                );
            } else if auth.auth_pass.is_none() {
                s.warn_unplaced_keepalived(
                    at,
                    format!("({name}) Authentication specified but no password given. Ignoring"),
                );
            } else if v.authentication_in_effect(&c.global_defs) == Some(AuthType::Ah)
                && v.state() == State::Master
                && v.initial_state(&c.global_defs) == State::Backup
            {
                s.warn_unplaced_keepalived(
                    at,
                    format!(
                        "({name}) Initial state master is incompatible with AH authentication - clearing"
                    ),
                );
            }
        }
    }
    if let Some(np) = &v.nopreempt {
        if v.is_owner() {
            s.warn_unplaced_keepalived(
                np,
                format!(
                    "({name}) nopreempt is incompatible with priority 255. resetting nopreempt"
                ),
            );
        } else if v.initial_state(&c.global_defs) == State::Master {
            s.warn_unplaced_keepalived(
                np,
                format!("({name}) Warning - nopreempt will not work with initial state MASTER - clearing"),
            );
        }
    }
    if let Some(pd) = v.preempt_delay.as_ref().filter(|pd| pd.value.micros > 0) {
        if v.initial_state(&c.global_defs) == State::Master {
            s.warn_logged(
                &pd.span,
                format!("({name}) preempt_delay does not apply to an initial MASTER: keepalived clears it, lvsd keeps it"),
                Logged::Unplaced(format!(
                    "({name}) Warning - preempt delay will not work with initial state MASTER - clearing"
                )),
            );
        }
    }
    if strict {
        strict_resets(c, v, s);
    }
}

/// The settings strict mode resets in vrrp_complete_instance, in its order and words. Of
/// them lvsd honours preempt_delay (reset in the director's build, as keepalived resets it);
/// the others are keywords lvsd does not honour anyway (the parsers say so).
fn strict_resets(c: &Config, v: &super::model::VrrpInstance, s: &mut Sources) {
    let name = &v.name.value;
    let span = &v.name.span;
    if let Some(pd) = v
        .preempt_delay
        .as_ref()
        .filter(|pd| pd.value.micros > 0 && v.initial_state(&c.global_defs) != State::Master)
    {
        s.warn_logged(
            &pd.span,
            format!("({name}) preempt_delay is incompatible with strict mode - resetting"),
            Logged::Unplaced(format!(
                "({name}) preempt_delay is incompatible with strict mode - resetting"
            )),
        );
    }
    let number = |kw: &str| -> Option<u32> { v.other_args(kw)?.first()?.parse().ok() };
    if number("down_timer_adverts").is_some_and(|n| n != 3) {
        s.warn_unplaced_keepalived(
            span,
            format!("({name}) down_timer_adverts is incompatible with strict mode - resetting"),
        );
    }
    if v.other_args("accept").is_some()
        && v.other_args("no_accept").is_none()
        && !v.is_owner()
        && v.vrrp_version(&c.global_defs) == 2
    {
        s.warn_unplaced_keepalived(
            span,
            format!("({name}) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting"),
        );
    }
    if number("garp_lower_prio_repeat").is_some_and(|n| n != 0) {
        s.warn_unplaced_keepalived(
            span,
            format!("({name}) Strict mode requires no repeat garps. resetting"),
        );
    }
    if number("garp_lower_prio_delay").is_some_and(|n| n != 0) {
        s.warn_unplaced_keepalived(
            span,
            format!("({name}) Strict mode requires no repeat garp delay. resetting"),
        );
    }
    if v.other_flag("lower_prio_no_advert") == Some(false) {
        s.warn_unplaced_keepalived(
            span,
            format!("({name}) Strict mode requires no lower priority advert. resetting"),
        );
    }
    if v.other_flag("higher_prio_send_advert") == Some(true) {
        s.warn_unplaced_keepalived(
            span,
            format!("({name}) strict mode requires higher_prio_send_advert to be clear. resetting"),
        );
    }
    // The first IPv6 VIP of a multicast instance must be link local (only logged).
    if let Some(first) = v
        .virtual_ipaddress
        .first()
        .filter(|_| v.unicast_peer.is_empty() && v.is_ipv6())
    {
        let link_local = match first.addr.value {
            std::net::IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
            std::net::IpAddr::V4(_) => true,
        };
        if !link_local {
            s.warn_unplaced_keepalived(
                &first.addr.span,
                format!("({name}) the first IPv6 VIP address must be link local"),
            );
        }
    }
}
