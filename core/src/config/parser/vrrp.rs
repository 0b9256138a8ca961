//! `vrrp_script`, `vrrp_sync_group` and `vrrp_instance` (keepalived's `vrrp_parser.c`).

use std::net::IpAddr;
use std::str::FromStr;

use super::{spanned, Builder};
use crate::config::diagnostic::{Logged, Spanned};
use crate::config::model::*;
use crate::config::tree::{Block, Node};

/// The keywords that make an instance unicast (vrrp_parser.c sets VRRP_FLAG_UNICAST_CONFIGURED).
const UNICAST_KEYWORDS: &[&str] = &[
    "unicast_peer",
    "unicast_src_ip",
    "check_unicast_src",
    "unicast_fault_no_peer",
];
const SCRIPT: &[&str] = &["script", "interval", "timeout", "weight", "rise", "fall"];
const SCRIPT_OTHER: &[&str] = &["user", "init_fail"];
const NOTIFY: &[&str] = &[
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify",
    "smtp_alert",
];
const SYNC_GROUP: &[&str] = &["group"];
const SYNC_GROUP_OTHER: &[&str] = &[
    "track_interface",
    "track_script",
    "track_file",
    "track_process",
    "track_bfd",
    "global_tracking",
    "sync_group_tracking_weight",
    "notify_priority_changes",
];
const INSTANCE: &[&str] = &[
    "state",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "version",
    "nopreempt",
    "preempt_delay",
    "authentication",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "unicast_src_ip",
    "unicast_peer",
    "track_interface",
    "track_script",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "lvs_sync_daemon_interface",
    "native_ipv6",
    "dont_track_primary",
];
const INSTANCE_OTHER: &[&str] = &[
    "use_vmac",
    "use_vmac_addr",
    "vmac_xmit_base",
    "use_ipvlan",
    "unicast_fault_no_peer",
    "check_unicast_src",
    "old_unicast_checksum",
    "vrf",
    "track_file",
    "track_process",
    "track_bfd",
    "mcast_src_ip",
    "mcast_dst_ip",
    "track_src_ip",
    "unicast_ttl",
    "promote_secondaries",
    "linkbeat_use_polling",
    "virtual_routes",
    "virtual_rules",
    "accept",
    "no_accept",
    "skip_check_adv_addr",
    "strict_mode",
    "preempt",
    "debug",
    "notify_deleted",
    "notify_master_rx_lower_pri",
    "notify_priority_changes",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "down_timer_adverts",
    "garp_extra_if",
    "vmac_garp_intvl",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "kernel_rx_buf_size",
];
const AUTH: &[&str] = &["auth_type", "auth_pass"];

impl Builder<'_> {
    /// A `vrrp_script` block; none when it has no `script` line (vrrp_parser.c removes it at
    /// the block's end, and the track_script lines naming it are then ignored).
    pub(super) fn vrrp_script(&mut self, name: Spanned<String>, b: &Block) -> Option<VrrpScript> {
        let mut v = VrrpScript {
            name,
            script: None,
            interval: None,
            timeout: None,
            weight: None,
            rise: None,
            fall: None,
        };
        for n in &b.nodes {
            match n.keyword().text.as_str() {
                "script" => v.script = self.cmd_arg(n),
                "interval" => v.interval = self.secs_arg(n, 1, u64::MAX / 2),
                "timeout" => v.timeout = self.secs_arg(n, 1, u64::MAX / 2),
                "weight" => {
                    v.weight = self.int_arg(n, -253, 253);
                }
                "rise" => v.rise = self.int_arg(n, 1, i64::from(u32::MAX)),
                "fall" => v.fall = self.int_arg(n, 1, i64::from(u32::MAX)),
                k if SCRIPT_OTHER.contains(&k) => {}
                _ => self.unknown(n, "vrrp_script", &[SCRIPT, SCRIPT_OTHER]),
            }
        }
        if v.script.is_none() {
            self.s.warn_as_keepalived(
                b.close.as_ref().unwrap_or(&b.open),
                format!("No script set for vrrp_script {} - removing", v.name.value),
            );
            return None;
        }
        Some(v)
    }

    /// A notify keyword; true if `n` was one.
    fn notify(&mut self, n: &Node, notify: &mut Notify) -> bool {
        match n.keyword().text.as_str() {
            "notify_master" => notify.master = self.cmd_arg(n),
            "notify_backup" => notify.backup = self.cmd_arg(n),
            "notify_fault" => notify.fault = self.cmd_arg(n),
            "notify_stop" => notify.stop = self.cmd_arg(n),
            "notify" => notify.any = self.cmd_arg(n),
            "smtp_alert" => notify.smtp_alert = Some(self.bool_opt(n)),
            _ => return false,
        }
        true
    }

    pub(super) fn sync_group(&mut self, name: Spanned<String>, b: &Block) -> SyncGroup {
        let mut g = SyncGroup {
            name,
            group: Vec::new(),
            notify: Notify::default(),
            other: Vec::new(),
        };
        for n in &b.nodes {
            if self.notify(n, &mut g.notify) {
                continue;
            }
            match n.keyword().text.as_str() {
                "group" => self.word_block(n, &mut g.group),
                _ => {
                    if !self.other(n, SYNC_GROUP_OTHER, &mut g.other) {
                        self.unknown(
                            n,
                            "vrrp_sync_group",
                            &[SYNC_GROUP, SYNC_GROUP_OTHER, NOTIFY],
                        );
                    }
                }
            }
        }
        g
    }

    pub(super) fn instance(&mut self, name: Spanned<String>, b: &Block) -> VrrpInstance {
        let mut v = VrrpInstance {
            name,
            state: None,
            interface: None,
            virtual_router_id: None,
            priority: None,
            advert_int: None,
            version: None,
            nopreempt: None,
            preempt_delay: None,
            authentication: None,
            virtual_ipaddress: Vec::new(),
            virtual_ipaddress_excluded: Vec::new(),
            unicast_src_ip: None,
            unicast_peer: Vec::new(),
            unicast_keyword: None,
            track_interface: Vec::new(),
            track_script: Vec::new(),
            garp_master_delay: None,
            garp_master_repeat: None,
            garp_master_refresh: None,
            garp_master_refresh_repeat: None,
            notify: Notify::default(),
            lvs_sync_daemon_interface: None,
            native_ipv6: None,
            dont_track_primary: None,
            other: Vec::new(),
        };
        let mut ttl_set = false;
        for n in &b.nodes {
            if self.notify(n, &mut v.notify) {
                continue;
            }
            let kw = n.keyword();
            if UNICAST_KEYWORDS.contains(&kw.text.as_str()) && v.unicast_keyword.is_none() {
                v.unicast_keyword = Some(spanned(kw));
            }
            match n.keyword().text.as_str() {
                "virtual_routes" | "virtual_rules" => {
                    self.routes_or_rules(n, false);
                    self.other(n, INSTANCE_OTHER, &mut v.other);
                }
                "unicast_ttl" => {
                    // vrrp_ttl_handler; lvsd does not honour the TTL (advised below).
                    if let Some(w) = self.arg(n, 1) {
                        if self.ka_unsigned(w, 0, 255).is_some() {
                            ttl_set = true;
                        } else {
                            self.s.warn_as_keepalived(
                                &w.span,
                                format!(
                                    "({}): TTL '{}' not valid - must be between 0 & 255",
                                    v.name.value, w.text
                                ),
                            );
                        }
                    }
                    self.other(n, INSTANCE_OTHER, &mut v.other);
                }
                "state" => {
                    if let Some(w) = self.arg(n, 1) {
                        match w.text.as_str() {
                            "MASTER" => v.state = Some(Spanned::new(State::Master, w.span.clone())),
                            "BACKUP" => v.state = Some(Spanned::new(State::Backup, w.span.clone())),
                            // keepalived (vrrp_state_handler) carries on as BACKUP.
                            _ => {
                                self.s.warn_as_keepalived(
                                    &w.span,
                                    format!(
                                        "({}) unknown state '{}', defaulting to BACKUP",
                                        v.name.value, w.text
                                    ),
                                );
                                v.state = Some(Spanned::new(State::Backup, w.span.clone()));
                            }
                        }
                    }
                }
                "interface" => v.interface = self.str_arg(n),
                // keepalived leaves the VRID unset, and an instance without one is refused
                // once the file is read (validate: "the virtual router id must be set").
                "virtual_router_id" => {
                    if let Some(w) = self.arg(n, 1) {
                        match self.ka_unsigned(w, 1, 255) {
                            Some(id) => {
                                v.virtual_router_id = u8::try_from(id)
                                    .ok()
                                    .map(|id| Spanned::new(id, w.span.clone()))
                            }
                            None => self.s.warn_as_keepalived(
                                &w.span,
                                format!(
                                    "({}): VRID '{}' not valid - must be between 1 & 255",
                                    v.name.value, w.text
                                ),
                            ),
                        }
                    }
                }
                "priority" => {
                    if let Some(w) = self.arg(n, 1) {
                        let p = self
                            .ka_unsigned(w, 1, 255)
                            .and_then(|p| u8::try_from(p).ok());
                        if p.is_none() {
                            self.s.warn_as_keepalived(
                                &w.span,
                                format!(
                                    "({}) Priority not valid! must be between 1 & 255. Using default {}",
                                    v.name.value,
                                    VrrpInstance::DEFAULT_PRIORITY
                                ),
                            );
                        }
                        let p = p.unwrap_or(VrrpInstance::DEFAULT_PRIORITY);
                        v.priority = Some(Spanned::new(p, w.span.clone()));
                    }
                }
                // keepalived: between TIMER_HZ/100 and 255 * TIMER_HZ; a bad value is ignored.
                "advert_int" => {
                    if let Some(w) = self.arg(n, 1) {
                        match self.ka_secs(w, 10_000, 255_000_000) {
                            Some(a) => v.advert_int = Some(Spanned::new(a, w.span.clone())),
                            None => self.s.warn_as_keepalived(
                                &w.span,
                                format!(
                                    "({}) Advert interval ({}) not valid! Must be > 0 - ignoring",
                                    v.name.value, w.text
                                ),
                            ),
                        }
                    }
                }
                "version" => {
                    if let Some(w) = self.arg(n, 1) {
                        match self.ka_int(w, 2, 3).and_then(|x| u8::try_from(x).ok()) {
                            Some(x) => v.version = Some(Spanned::new(x, w.span.clone())),
                            None => self.s.warn_as_keepalived(
                                &w.span,
                                format!("({}): Version must be either 2 or 3", v.name.value),
                            ),
                        }
                    }
                }
                "nopreempt" => v.nopreempt = Some(self.flag(n)),
                "preempt_delay" => v.preempt_delay = self.secs_arg(n, 0, 1_000_000_000),
                "authentication" => {
                    if let Some(b) = self.need_block(n) {
                        v.authentication = Some(self.auth(b));
                    }
                }
                "virtual_ipaddress" => {
                    if let Some(b) = self.need_block(n) {
                        v.virtual_ipaddress = self.vips(b);
                    }
                }
                "virtual_ipaddress_excluded" => {
                    if let Some(b) = self.need_block(n) {
                        v.virtual_ipaddress_excluded = self.vips(b);
                    }
                }
                "unicast_src_ip" => v.unicast_src_ip = self.ip_arg(n),
                "unicast_peer" => {
                    if let Some(b) = self.need_block(n) {
                        for p in &b.nodes {
                            if let Some(a) = self.ip(p.keyword()) {
                                v.unicast_peer.push(a);
                            }
                        }
                    }
                }
                "track_interface" => {
                    if let Some(b) = self.need_block(n) {
                        v.track_interface = self.tracked(b, -254, 254);
                    }
                }
                "track_script" => {
                    if let Some(b) = self.need_block(n) {
                        v.track_script = self.tracked(b, -253, 253);
                    }
                }
                "garp_master_delay" => v.garp_master_delay = self.int_arg(n, 0, 255),
                "garp_master_repeat" => v.garp_master_repeat = self.int_arg(n, 0, 255),
                "garp_master_refresh" => {
                    v.garp_master_refresh = self.int_arg(n, 0, i64::from(u32::MAX))
                }
                "garp_master_refresh_repeat" => {
                    v.garp_master_refresh_repeat = self.int_arg(n, 0, 255)
                }
                "lvs_sync_daemon_interface" => {
                    // keepalived 2.2: "Specifying lvs_sync_daemon_interface against a vrrp is deprecated."
                    v.lvs_sync_daemon_interface = self.str_arg(n);
                    self.s.warn(
                        &n.keyword().span,
                        "lvs_sync_daemon_interface in a vrrp_instance is deprecated; use lvs_sync_daemon in global_defs",
                    );
                }
                "native_ipv6" => v.native_ipv6 = Some(self.flag(n)),
                "dont_track_primary" => v.dont_track_primary = Some(self.flag(n)),
                _ => {
                    if !self.other(n, INSTANCE_OTHER, &mut v.other) {
                        self.unknown(n, "vrrp_instance", &[INSTANCE, INSTANCE_OTHER, NOTIFY]);
                    }
                }
            }
        }
        if ttl_set && v.unicast_peer.is_empty() {
            // vrrp_end_handler, at the instance's closing brace.
            self.s.warn_as_keepalived(
                b.close.as_ref().unwrap_or(&b.open),
                format!(
                    "({}): Cannot use unicast_ttl without unicast peers - resetting",
                    v.name.value
                ),
            );
        }
        v
    }

    fn auth(&mut self, b: &Block) -> Authentication {
        let mut a = Authentication {
            auth_type: None,
            auth_pass: None,
        };
        for n in &b.nodes {
            match n.keyword().text.as_str() {
                "auth_type" => {
                    if let Some(w) = self.arg(n, 1) {
                        match w.text.as_str() {
                            "PASS" => {
                                a.auth_type = Some(Spanned::new(AuthType::Pass, w.span.clone()))
                            }
                            "AH" => a.auth_type = Some(Spanned::new(AuthType::Ah, w.span.clone())),
                            _ => self.s.error(
                                &w.span,
                                format!("unknown auth_type '{}': must be PASS or AH", w.text),
                            ),
                        }
                    }
                }
                "auth_pass" => {
                    a.auth_pass = self.str_arg(n);
                    if let Some(p) = &a.auth_pass {
                        if p.value.chars().count() > 8 {
                            self.s.warn_logged(
                                &p.span,
                                "auth_pass longer than 8 characters: only the first 8 are used",
                                Logged::AtLine("Truncating auth_pass to 8 characters".into()),
                            );
                        }
                    }
                }
                _ => self.unknown(n, "authentication", &[AUTH]),
            }
        }
        a
    }

    fn vips(&mut self, b: &Block) -> Vec<VirtualAddress> {
        let mut out = Vec::new();
        for n in &b.nodes {
            let w = n.keyword();
            let (addr_text, prefix_text) = match w.text.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (w.text.as_str(), None),
            };
            let Ok(addr) = IpAddr::from_str(addr_text) else {
                // vrrp_ipaddress.c parse_ipaddress: logged, and the address left out.
                self.s.warn_as_keepalived(
                    &w.span,
                    format!("VRRP parsed invalid IP {}. skipping IP...", w.text),
                );
                continue;
            };
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix_text {
                None => None,
                Some(p) => match p.parse::<u8>() {
                    Ok(p) if p <= max => Some(p),
                    _ => {
                        self.s.error(
                            &w.span,
                            format!("invalid prefix length '/{p}': must be 0 to {max}"),
                        );
                        continue;
                    }
                },
            };
            let mut vip = VirtualAddress {
                addr: Spanned::new(addr, w.span.clone()),
                prefix,
                dev: None,
                label: None,
                other: Vec::new(),
            };
            let mut k = 1;
            while let Some(opt) = n.words.get(k) {
                let val = n.words.get(k + 1);
                match (opt.text.as_str(), val) {
                    ("dev", Some(v)) => vip.dev = Some(spanned(v)),
                    ("label", Some(v)) => vip.label = Some(spanned(v)),
                    ("dev" | "label", None) => self
                        .s
                        .error(&opt.span, format!("'{}' needs a value", opt.text)),
                    _ => {
                        vip.other.push(spanned(opt));
                        k += 1;
                        continue;
                    }
                }
                k += 2;
            }
            out.push(vip);
        }
        out
    }

    fn tracked(&mut self, b: &Block, min: i64, max: i64) -> Vec<Tracked> {
        let mut out = Vec::new();
        for n in &b.nodes {
            let mut t = Tracked {
                name: spanned(n.keyword()),
                weight: None,
            };
            match (n.words.get(1), n.words.get(2)) {
                (Some(k), Some(v)) if k.text == "weight" => {
                    t.weight = self.int(v, min, max, "weight")
                }
                (Some(k), None) if k.text == "weight" => {
                    self.s.error(&k.span, "'weight' needs a value")
                }
                (Some(k), _) => self
                    .s
                    .warn(&k.span, format!("unknown option '{}' ignored", k.text)),
                (None, _) => {}
            }
            out.push(t);
        }
        out
    }
}
