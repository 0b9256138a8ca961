//! From the statement tree to the typed [`Config`], keyword by keyword, as keepalived 2.2 reads it.
//!
//! Unknown keywords are warnings and are skipped (with their block, if any). Keywords that
//! keepalived 2.2 knows but lvsd does not model are kept verbatim in the `other` lists.

use std::net::IpAddr;
use std::str::FromStr;

use super::diagnostic::{Span, Spanned};
use super::lexer::{Sources, Word};
use super::model::*;
use super::tree::{Block, Node};
use crate::ipvs::Protocol;

/// The schedulers keepalived 2.2 accepts for `lvs_sched` / `lb_algo`.
pub const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos",
];

const ROOT: &[&str] = &[
    "global_defs",
    "vrrp_script",
    "vrrp_sync_group",
    "vrrp_instance",
    "virtual_server",
    "virtual_server_group",
];
const ROOT_OTHER: &[&str] = &[
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "track_group",
    "garp_group",
    "linkbeat_interfaces",
    "vrrp_track_process",
    "vrrp_track_file",
    "track_file",
    "interface_up_down_delays",
    "SSL",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "use_pid_dir",
    "instance",
    "child_wait_time",
    "linkbeat_use_polling",
    "bfd_instance",
];
const GLOBAL: &[&str] = &[
    "router_id",
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_connect_timeout",
    "lvs_sync_daemon",
    "default_interface",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_repeat",
    "vrrp_garp_master_refresh",
    "vrrp_garp_master_refresh_repeat",
    "vrrp_garp_interval",
    "vrrp_gna_interval",
    "vrrp_version",
    "vrrp_strict",
    "smtp_alert",
    "enable_script_security",
    "script_user",
];
const GLOBAL_OTHER: &[&str] = &[
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "lvs_process_name",
    "bfd_process_name",
    "smtp_helo_name",
    "startup_script",
    "startup_script_timeout",
    "shutdown_script",
    "shutdown_script_timeout",
    "max_auto_priority",
    "min_auto_priority_delay",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "checker_log_all_failures",
    "dynamic_interfaces",
    "no_email_faults",
    "disable_local_igmp",
    "lvs_timeouts",
    "lvs_flush",
    "lvs_flush_on_stop",
    "lvs_flush_onstop",
    "vrrp_mcast_group4",
    "vrrp_mcast_group6",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_down_timer_adverts",
    "vrrp_min_garp",
    "vrrp_garp_extra_if",
    "vrrp_vmac_garp_intvl",
    "vrrp_lower_prio_no_advert",
    "vrrp_higher_prio_send_advert",
    "vrrp_iptables",
    "vrrp_ipsets",
    "nftables",
    "nftables_priority",
    "nftables_ifindex",
    "nftables_ipvs",
    "nftables_ipvs_priority",
    "nftables_ipvs_start_fwmark",
    "nftables_counters",
    "vrrp_check_unicast_src",
    "vrrp_skip_check_adv_addr",
    "vrrp_priority",
    "vrrp_no_swap",
    "vrrp_rt_priority",
    "vrrp_cpu_affinity",
    "vrrp_rlimit_rttime",
    "vrrp_rlimit_rtime",
    "notify_fifo",
    "notify_fifo_script",
    "vrrp_notify_fifo",
    "vrrp_notify_fifo_script",
    "vrrp_notify_priority_changes",
    "fifo_write_vrrp_states_on_reload",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "checker_priority",
    "checker_no_swap",
    "checker_rt_priority",
    "checker_cpu_affinity",
    "checker_rlimit_rttime",
    "checker_rlimit_rtime",
    "bfd_priority",
    "bfd_no_swap",
    "bfd_rt_priority",
    "bfd_cpu_affinity",
    "bfd_rlimit_rttime",
    "bfd_rlimit_rtime",
    "snmp_socket",
    "enable_traps",
    "enable_snmp_vrrp",
    "enable_snmp_keepalived",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_snmp_checker",
    "enable_dbus",
    "dbus_service_name",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "rs_init_notifies",
    "no_checker_emails",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "vrrp_startup_delay",
    "log_unknown_vrids",
    "vmac_prefix",
    "vmac_addr_prefix",
    "umask",
    "random_seed",
    "reload_check_config",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "include_check",
    "config_save_dir",
    "tmp_config_directory",
    "data_use_instance",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "use_pid_dir",
    "instance",
    "child_wait_time",
    "linkbeat_use_polling",
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
const VS: &[&str] = &[
    "ip_family",
    "delay_loop",
    "lb_algo",
    "lvs_sched",
    "ops",
    "flag-1",
    "flag-2",
    "flag-3",
    "sh-port",
    "sh-fallback",
    "mh-port",
    "mh-fallback",
    "lb_kind",
    "lvs_method",
    "persistence_timeout",
    "persistence_granularity",
    "protocol",
    "quorum",
    "hysteresis",
    "quorum_up",
    "quorum_down",
    "sorry_server",
    "alpha",
    "omega",
    "ha_suspend",
    "virtualhost",
    "real_server",
];
const VS_OTHER: &[&str] = &[
    "retry",
    "delay_before_retry",
    "warmup",
    "connect_timeout",
    "inhibit_on_failure",
    "hashed",
    "persistence_engine",
    "smtp_alert",
    "snmp_name",
    "weight",
    "sorry_server_inhibit",
    "sorry_server_lvs_method",
];
const RS: &[&str] = &[
    "weight",
    "lvs_method",
    "inhibit_on_failure",
    "uthreshold",
    "lthreshold",
    "notify_up",
    "notify_down",
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
];
const RS_OTHER: &[&str] = &[
    "alpha",
    "retry",
    "delay_before_retry",
    "warmup",
    "connect_timeout",
    "delay_loop",
    "smtp_alert",
    "virtualhost",
    "snmp_name",
    "SMTP_CHECK",
    "DNS_CHECK",
    "BFD_CHECK",
    "FILE_CHECK",
    "PING_CHECK",
    "UDP_CHECK",
];
const CHECK_COMMON: &[&str] = &[
    "connect_ip",
    "connect_port",
    "bindto",
    "connect_timeout",
    "retry",
    "delay_before_retry",
    "warmup",
];
const CHECK_COMMON_OTHER: &[&str] = &[
    "bind_port",
    "bind_if",
    "fwmark",
    "delay_loop",
    "alpha",
    "log_all_failures",
];
const HTTP: &[&str] = &["url", "nb_get_retry", "virtualhost"];
const HTTP_OTHER: &[&str] = &["http_protocol", "enable_sni", "fast_recovery"];
const MISC: &[&str] = &["misc_path", "misc_timeout", "misc_dynamic"];
const MISC_OTHER: &[&str] = &[
    "user",
    "retry",
    "delay_before_retry",
    "warmup",
    "delay_loop",
    "alpha",
    "log_all_failures",
];
const URL: &[&str] = &["path", "digest", "status_code"];
const URL_OTHER: &[&str] = &[
    "virtualhost",
    "regex",
    "regex_no_match",
    "regex_options",
    "regex_min_offset",
    "regex_max_offset",
    "regex_stack",
];

/// Numbers accepted as integers in a given range (keepalived's `read_unsigned_strvec` and friends).
trait Int: Copy + TryFrom<i64> {}
impl Int for u8 {}
impl Int for u16 {}
impl Int for u32 {}
impl Int for i32 {}

/// Builds the model, reporting into the shared [`Sources`].
pub struct Builder<'a> {
    s: &'a mut Sources,
}

fn joined(words: &[Word]) -> Option<Spanned<String>> {
    let first = words.first()?;
    let last = words.last()?;
    let text = words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let mut span = first.span.clone();
    if last.span.line == first.span.line && last.span.file == first.span.file {
        span.len = (last.span.col + last.span.len).saturating_sub(first.span.col);
    }
    Some(Spanned::new(text, span))
}

fn spanned(w: &Word) -> Spanned<String> {
    Spanned::new(w.text.clone(), w.span.clone())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            if let Some(c) = cur.get_mut(j + 1) {
                *c = sub.min(del).min(ins);
            }
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// Parse keepalived's decimal seconds (`5`, `0.5`, up to 6 decimals) into microseconds.
pub fn parse_secs(text: &str) -> Option<Secs> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 6
    {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut micros = whole.checked_mul(1_000_000)?;
    let mut scale = 100_000;
    for c in frac.chars() {
        micros = micros.checked_add(u64::from(c.to_digit(10)?) * scale)?;
        scale /= 10;
    }
    Some(Secs { micros })
}

impl<'a> Builder<'a> {
    /// A builder reporting into `s`.
    pub fn new(s: &'a mut Sources) -> Self {
        Builder { s }
    }

    fn unknown(&mut self, node: &Node, context: &str, known: &[&[&str]]) {
        let kw = node.keyword();
        let mut msg = format!("unknown keyword '{}' in {context}", kw.text);
        if context == "TCP_CHECK" && kw.text == "nb_get_retry" {
            msg.push_str(
                " (keepalived 2.2 accepts nb_get_retry only in HTTP_GET/SSL_GET; use 'retry')",
            );
        } else {
            let best = known
                .iter()
                .flat_map(|l| l.iter())
                .map(|k| (levenshtein(&kw.text, k), *k))
                .filter(|(d, k)| *d <= 2 && *d < k.len() / 2 + 1)
                .min();
            if let Some((_, k)) = best {
                msg.push_str(&format!(" (did you mean '{k}'?)"));
            }
        }
        if node.block.is_some() {
            msg.push_str("; skipped with its block");
        } else {
            msg.push_str("; ignored");
        }
        self.s.warn(&kw.span, msg);
    }

    /// Handle a keyword keepalived knows but lvsd does not model; true if it was one.
    fn other(&mut self, node: &Node, others: &[&str], into: &mut Vec<Spanned<String>>) -> bool {
        if !others.contains(&node.keyword().text.as_str()) {
            return false;
        }
        if let Some(j) = joined(&node.words) {
            into.push(j);
        }
        true
    }

    fn arg<'n>(&mut self, node: &'n Node, i: usize) -> Option<&'n Word> {
        let w = node.words.get(i);
        if w.is_none() {
            let kw = node.keyword();
            self.s
                .error(&kw.span, format!("'{}' needs a value", kw.text));
        }
        w
    }

    fn no_block(&mut self, node: &Node) {
        if let Some(b) = &node.block {
            self.s.warn(
                &b.open,
                format!("'{}' takes no block; block ignored", node.keyword().text),
            );
        }
    }

    fn need_block<'n>(&mut self, node: &'n Node) -> Option<&'n Block> {
        if node.block.is_none() {
            let kw = node.keyword();
            self.s
                .error(&kw.span, format!("'{}' needs a '{{' block", kw.text));
        }
        node.block.as_ref()
    }

    fn int<T: Int>(&mut self, w: &Word, min: i64, max: i64, what: &str) -> Option<Spanned<T>> {
        let parsed = w.text.parse::<i64>().ok();
        match parsed {
            Some(v) if v >= min && v <= max => {
                T::try_from(v).ok().map(|t| Spanned::new(t, w.span.clone()))
            }
            Some(_) => {
                self.s.error(
                    &w.span,
                    format!(
                        "{what} '{}' out of range: must be between {min} and {max}",
                        w.text
                    ),
                );
                None
            }
            None => {
                self.s
                    .error(&w.span, format!("{what} '{}' is not a number", w.text));
                None
            }
        }
    }

    fn int_arg<T: Int>(&mut self, node: &Node, min: i64, max: i64) -> Option<Spanned<T>> {
        self.no_block(node);
        let w = self.arg(node, 1)?;
        let what = node.keyword().text.clone();
        self.int(w, min, max, &what)
    }

    fn secs_arg(&mut self, node: &Node, min_us: u64, max_us: u64) -> Option<Spanned<Secs>> {
        self.no_block(node);
        let w = self.arg(node, 1)?;
        let kw = &node.keyword().text;
        match parse_secs(&w.text) {
            Some(s) if s.micros >= min_us && s.micros <= max_us => {
                Some(Spanned::new(s, w.span.clone()))
            }
            Some(_) => {
                self.s.error(
                    &w.span,
                    format!(
                        "{kw} '{}' out of range: must be between {} and {} seconds",
                        w.text,
                        Secs { micros: min_us }.display(),
                        Secs { micros: max_us }.display()
                    ),
                );
                None
            }
            None => {
                self.s.error(
                    &w.span,
                    format!("{kw} '{}' is not a number of seconds", w.text),
                );
                None
            }
        }
    }

    fn str_arg(&mut self, node: &Node) -> Option<Spanned<String>> {
        self.no_block(node);
        self.arg(node, 1).map(spanned)
    }

    fn cmd_arg(&mut self, node: &Node) -> Option<Spanned<String>> {
        self.no_block(node);
        self.arg(node, 1)?;
        joined(node.args())
    }

    fn flag(&mut self, node: &Node) -> Span {
        self.no_block(node);
        node.keyword().span.clone()
    }

    fn ip(&mut self, w: &Word) -> Option<Spanned<IpAddr>> {
        match IpAddr::from_str(&w.text) {
            Ok(a) => Some(Spanned::new(a, w.span.clone())),
            Err(_) => {
                self.s
                    .error(&w.span, format!("invalid IP address '{}'", w.text));
                None
            }
        }
    }

    fn ip_arg(&mut self, node: &Node) -> Option<Spanned<IpAddr>> {
        self.no_block(node);
        let w = self.arg(node, 1)?;
        self.ip(w)
    }

    fn port(&mut self, w: &Word) -> Option<Spanned<u16>> {
        self.int(w, 0, 65535, "port")
    }

    fn bool_opt(&mut self, node: &Node) -> Spanned<bool> {
        self.no_block(node);
        match node.words.get(1) {
            None => Spanned::new(true, node.keyword().span.clone()),
            Some(w) => match w.text.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" => Spanned::new(true, w.span.clone()),
                "off" | "false" | "no" => Spanned::new(false, w.span.clone()),
                _ => {
                    self.s.error(
                        &w.span,
                        format!("'{}' is not on/off/true/false/yes/no", w.text),
                    );
                    Spanned::new(true, w.span.clone())
                }
            },
        }
    }

    fn name(&mut self, node: &Node) -> Spanned<String> {
        match node.words.get(1) {
            Some(w) => spanned(w),
            None => {
                let kw = node.keyword();
                self.s
                    .error(&kw.span, format!("'{}' needs a name", kw.text));
                Spanned::new(String::new(), kw.span.clone())
            }
        }
    }

    /// A `keyword NAME { ... }` block parsed by `parse`; `None` (after the error) without a block.
    fn named_block<T>(
        &mut self,
        node: &Node,
        parse: impl FnOnce(&mut Self, Spanned<String>, &Block) -> T,
    ) -> Option<T> {
        let name = self.name(node);
        let b = self.need_block(node)?;
        Some(parse(self, name, b))
    }

    /// A block of bare words (`notification_email { ... }`, `group { ... }`): every word of
    /// every line, in order.
    fn word_block(&mut self, node: &Node, out: &mut Vec<Spanned<String>>) {
        if let Some(b) = self.need_block(node) {
            for line in &b.nodes {
                self.no_block(line);
                out.extend(line.words.iter().map(spanned));
            }
        }
    }

    /// The whole file.
    pub fn config(&mut self, nodes: &[Node]) -> Config {
        let mut c = Config::default();
        for node in nodes {
            match node.keyword().text.as_str() {
                "global_defs" => {
                    if let Some(b) = self.need_block(node) {
                        self.global_defs(b, &mut c.global_defs);
                    }
                }
                "vrrp_script" => c
                    .vrrp_scripts
                    .extend(self.named_block(node, Self::vrrp_script)),
                "vrrp_sync_group" => c
                    .vrrp_sync_groups
                    .extend(self.named_block(node, Self::sync_group)),
                "vrrp_instance" => c
                    .vrrp_instances
                    .extend(self.named_block(node, Self::instance)),
                "virtual_server_group" => c
                    .virtual_server_groups
                    .extend(self.named_block(node, Self::vs_group)),
                "virtual_server" => c.virtual_servers.extend(self.virtual_server(node)),
                k if ROOT_OTHER.contains(&k) => {
                    let kw = node.keyword();
                    self.s.warn(
                        &kw.span,
                        format!("'{k}' is valid keepalived but not supported by lvsd; ignored"),
                    );
                }
                _ => self.unknown(node, "the top level", &[ROOT, ROOT_OTHER]),
            }
        }
        c
    }

    fn global_defs(&mut self, b: &Block, g: &mut GlobalDefs) {
        for n in &b.nodes {
            match n.keyword().text.as_str() {
                "router_id" => g.router_id = self.str_arg(n),
                "notification_email" => self.word_block(n, &mut g.notification_email),
                "notification_email_from" => g.notification_email_from = self.str_arg(n),
                "smtp_server" => {
                    g.smtp_server = self.str_arg(n);
                    if let Some(w) = n.words.get(2) {
                        g.smtp_port = self.port(w);
                    }
                }
                "smtp_connect_timeout" => {
                    g.smtp_connect_timeout = self.int_arg(n, 1, i64::from(u32::MAX))
                }
                "lvs_sync_daemon" => {
                    self.no_block(n);
                    let (Some(i), Some(inst)) = (self.arg(n, 1), self.arg(n, 2)) else {
                        continue;
                    };
                    let mut d = LvsSyncDaemon {
                        interface: spanned(i),
                        instance: spanned(inst),
                        id: None,
                    };
                    let mut k = 3;
                    while let Some(w) = n.words.get(k) {
                        if w.text == "id" {
                            if let Some(v) = n.words.get(k + 1) {
                                d.id = self.int(v, 0, 255, "lvs_sync_daemon id");
                            } else {
                                self.s.error(&w.span, "'id' needs a value");
                            }
                            k += 2;
                        } else {
                            // maxlen, port, ttl, group: accepted, not modelled.
                            k += 2;
                        }
                    }
                    g.lvs_sync_daemon = Some(d);
                }
                "default_interface" => g.default_interface = self.str_arg(n),
                "vrrp_garp_master_delay" => g.vrrp_garp_master_delay = self.int_arg(n, 0, 255),
                "vrrp_garp_master_repeat" => g.vrrp_garp_master_repeat = self.int_arg(n, 0, 255),
                "vrrp_garp_master_refresh" => {
                    g.vrrp_garp_master_refresh = self.int_arg(n, 0, i64::from(u32::MAX))
                }
                "vrrp_garp_master_refresh_repeat" => {
                    g.vrrp_garp_master_refresh_repeat = self.int_arg(n, 0, 255)
                }
                "vrrp_garp_interval" => g.vrrp_garp_interval = self.secs_arg(n, 0, 1_000_000_000),
                "vrrp_gna_interval" => g.vrrp_gna_interval = self.secs_arg(n, 0, 1_000_000_000),
                "vrrp_version" => g.vrrp_version = self.int_arg(n, 2, 3),
                "vrrp_strict" => g.vrrp_strict = Some(self.flag(n)),
                "smtp_alert" => g.smtp_alert = Some(self.bool_opt(n)),
                "enable_script_security" => g.enable_script_security = Some(self.flag(n)),
                "script_user" => g.script_user = self.cmd_arg(n),
                _ => {
                    if !self.other(n, GLOBAL_OTHER, &mut g.other) {
                        self.unknown(n, "global_defs", &[GLOBAL, GLOBAL_OTHER]);
                    }
                }
            }
        }
    }

    fn vrrp_script(&mut self, name: Spanned<String>, b: &Block) -> VrrpScript {
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
        v
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

    fn sync_group(&mut self, name: Spanned<String>, b: &Block) -> SyncGroup {
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

    fn instance(&mut self, name: Spanned<String>, b: &Block) -> VrrpInstance {
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
        for n in &b.nodes {
            if self.notify(n, &mut v.notify) {
                continue;
            }
            match n.keyword().text.as_str() {
                "state" => {
                    self.no_block(n);
                    if let Some(w) = self.arg(n, 1) {
                        match w.text.as_str() {
                            "MASTER" => v.state = Some(Spanned::new(State::Master, w.span.clone())),
                            "BACKUP" => v.state = Some(Spanned::new(State::Backup, w.span.clone())),
                            _ => self.s.error(
                                &w.span,
                                format!("unknown state '{}': must be MASTER or BACKUP", w.text),
                            ),
                        }
                    }
                }
                "interface" => v.interface = self.str_arg(n),
                // keepalived: "VRID '%s' not valid - must be between 1 & 255".
                "virtual_router_id" => v.virtual_router_id = self.int_arg(n, 1, 255),
                // keepalived: "Priority not valid! must be between 1 & 255".
                "priority" => v.priority = self.int_arg(n, 1, 255),
                // keepalived: between TIMER_HZ/100 and 255 * TIMER_HZ.
                "advert_int" => v.advert_int = self.secs_arg(n, 10_000, 255_000_000),
                "version" => v.version = self.int_arg(n, 2, 3),
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
                            self.no_block(p);
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
                    self.no_block(n);
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
                            // keepalived: "Truncating auth_pass to 8 characters".
                            self.s.warn(
                                &p.span,
                                "auth_pass longer than 8 characters: only the first 8 are used",
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
            self.no_block(n);
            let w = n.keyword();
            let (addr_text, prefix_text) = match w.text.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (w.text.as_str(), None),
            };
            let Ok(addr) = IpAddr::from_str(addr_text) else {
                self.s
                    .error(&w.span, format!("invalid IP address '{}'", w.text));
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
            self.no_block(n);
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

    fn vs_group(&mut self, name: Spanned<String>, b: &Block) -> VirtualServerGroup {
        let mut g = VirtualServerGroup {
            name,
            entries: Vec::new(),
        };
        for n in &b.nodes {
            self.no_block(n);
            let w = n.keyword();
            if w.text == "fwmark" {
                if let Some(v) = self.arg(n, 1) {
                    if let Some(m) = self.int(v, 1, i64::from(u32::MAX), "fwmark") {
                        g.entries.push(VsgEntry::Fwmark(m));
                    }
                }
                continue;
            }
            let (addr_text, range) = match w.text.rsplit_once('-') {
                Some((a, r)) => (a, Some(r)),
                None => (w.text.as_str(), None),
            };
            let Ok(addr) = IpAddr::from_str(addr_text) else {
                self.s
                    .error(&w.span, format!("invalid IP address '{}'", w.text));
                continue;
            };
            let range_end = match range {
                None => None,
                Some(r) => {
                    let parsed = if addr.is_ipv4() {
                        r.parse::<u8>().ok().map(u16::from)
                    } else {
                        u16::from_str_radix(r, 16).ok()
                    };
                    match parsed {
                        Some(v) => Some(v),
                        None => {
                            self.s
                                .error(&w.span, format!("invalid address range end '{r}'"));
                            continue;
                        }
                    }
                }
            };
            let Some(pw) = self.arg(n, 1) else { continue };
            let Some(port) = self.port(pw) else { continue };
            g.entries.push(VsgEntry::Inet {
                addr: Spanned::new(addr, w.span.clone()),
                range_end,
                port,
            });
        }
        g
    }

    fn lb_kind(&mut self, n: &Node) -> Option<Spanned<LbKind>> {
        self.no_block(n);
        let w = self.arg(n, 1)?;
        let k = match w.text.as_str() {
            "NAT" => LbKind::Nat,
            "DR" => LbKind::Dr,
            "TUN" => LbKind::Tun,
            _ => {
                self.s.error(
                    &w.span,
                    format!(
                        "unknown {} '{}': must be NAT, DR or TUN",
                        n.keyword().text,
                        w.text
                    ),
                );
                return None;
            }
        };
        Some(Spanned::new(k, w.span.clone()))
    }

    fn virtual_server(&mut self, node: &Node) -> Option<VirtualServer> {
        let kw = node.keyword();
        let Some(first) = node.words.get(1) else {
            self.s.error(
                &kw.span,
                "'virtual_server' needs ADDRESS PORT, 'fwmark N' or 'group NAME'",
            );
            return None;
        };
        let key = match first.text.as_str() {
            "fwmark" => {
                let w = self.arg(node, 2)?;
                let m: Spanned<u32> = self.int(w, 1, i64::from(u32::MAX), "fwmark")?;
                Spanned::new(VsKey::Fwmark(m.value), first.span.clone())
            }
            "group" => {
                let w = self.arg(node, 2)?;
                Spanned::new(VsKey::Group(w.text.clone()), w.span.clone())
            }
            _ => {
                let addr = self.ip(first);
                let port = match node.words.get(2) {
                    Some(p) => self.port(p),
                    None => {
                        self.s.error(
                            &first.span,
                            "'virtual_server ADDRESS' needs a PORT after the address",
                        );
                        None
                    }
                };
                let (addr, port) = (addr?, port?);
                Spanned::new(
                    VsKey::Inet {
                        addr: addr.value,
                        port: port.value,
                    },
                    addr.span,
                )
            }
        };
        let b = self.need_block(node)?;
        let mut vs = VirtualServer {
            key,
            ipv6: None,
            delay_loop: None,
            lvs_sched: None,
            flags: Vec::new(),
            lvs_method: None,
            persistence_timeout: None,
            persistence_granularity: None,
            protocol: None,
            quorum: None,
            hysteresis: None,
            quorum_up: None,
            quorum_down: None,
            sorry_server: None,
            alpha: None,
            omega: None,
            ha_suspend: None,
            virtualhost: None,
            real_servers: Vec::new(),
            other: Vec::new(),
        };
        for n in &b.nodes {
            let k = n.keyword().text.as_str();
            match k {
                "ip_family" => {
                    self.no_block(n);
                    if let Some(w) = self.arg(n, 1) {
                        match w.text.as_str() {
                            "inet" => vs.ipv6 = Some(Spanned::new(false, w.span.clone())),
                            "inet6" => vs.ipv6 = Some(Spanned::new(true, w.span.clone())),
                            _ => self.s.error(
                                &w.span,
                                format!("unknown ip_family '{}': must be inet or inet6", w.text),
                            ),
                        }
                    }
                }
                "delay_loop" => vs.delay_loop = self.secs_arg(n, 1, u64::MAX / 2),
                "lb_algo" | "lvs_sched" => {
                    self.no_block(n);
                    if let Some(w) = self.arg(n, 1) {
                        if SCHEDULERS.contains(&w.text.as_str()) {
                            vs.lvs_sched = Some(spanned(w));
                        } else {
                            self.s
                                .error(&w.span, format!("invalid lvs_scheduler '{}'", w.text));
                        }
                    }
                }
                "ops" | "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback" | "mh-port"
                | "mh-fallback" => {
                    self.no_block(n);
                    vs.flags.push(spanned(n.keyword()));
                }
                "lb_kind" | "lvs_method" => vs.lvs_method = self.lb_kind(n),
                // With no value keepalived uses 360 s (IPVS_SVC_PERSISTENT_TIMEOUT).
                "persistence_timeout" => {
                    self.no_block(n);
                    vs.persistence_timeout = match n.words.get(1) {
                        Some(w) => self.int(w, 1, i64::from(u32::MAX), "persistence_timeout"),
                        None => Some(Spanned::new(
                            super::rules::DEFAULT_PERSISTENCE_TIMEOUT,
                            n.keyword().span.clone(),
                        )),
                    };
                }
                "persistence_granularity" => {
                    self.no_block(n);
                    if let Some(w) = self.arg(n, 1) {
                        vs.persistence_granularity = self.granularity(w);
                    }
                }
                "protocol" => {
                    self.no_block(n);
                    if let Some(w) = self.arg(n, 1) {
                        let p = match w.text.as_str() {
                            "TCP" => Some(Protocol::Tcp),
                            "UDP" => Some(Protocol::Udp),
                            "SCTP" => Some(Protocol::Sctp),
                            _ => None,
                        };
                        match p {
                            Some(p) => vs.protocol = Some(Spanned::new(p, w.span.clone())),
                            None => self.s.error(
                                &w.span,
                                format!("unknown protocol '{}': must be TCP, UDP or SCTP", w.text),
                            ),
                        }
                    }
                }
                "quorum" => vs.quorum = self.int_arg(n, 1, i64::from(u32::MAX)),
                "hysteresis" => vs.hysteresis = self.int_arg(n, 0, i64::from(u32::MAX)),
                "quorum_up" => vs.quorum_up = self.cmd_arg(n),
                "quorum_down" => vs.quorum_down = self.cmd_arg(n),
                "sorry_server" => {
                    self.no_block(n);
                    if let (Some(a), Some(p)) = (self.arg(n, 1), self.arg(n, 2)) {
                        if let (Some(a), Some(p)) = (self.ip(a), self.port(p)) {
                            vs.sorry_server = Some(Spanned::new((a.value, p.value), a.span));
                        }
                    }
                }
                "alpha" => vs.alpha = Some(self.flag(n)),
                "omega" => vs.omega = Some(self.flag(n)),
                "ha_suspend" => vs.ha_suspend = Some(self.flag(n)),
                "virtualhost" => vs.virtualhost = self.str_arg(n),
                "real_server" => {
                    if let Some(rs) = self.real_server(n) {
                        vs.real_servers.push(rs);
                    }
                }
                _ => {
                    if !self.other(n, VS_OTHER, &mut vs.other) {
                        self.unknown(n, "virtual_server", &[VS, VS_OTHER]);
                    }
                }
            }
        }
        Some(vs)
    }

    /// `persistence_granularity`: a solid IPv4 netmask or an IPv6 prefix length.
    fn granularity(&mut self, w: &Word) -> Option<Spanned<u8>> {
        if let Ok(std::net::Ipv4Addr { .. }) = std::net::Ipv4Addr::from_str(&w.text) {
            let bits = u32::from(std::net::Ipv4Addr::from_str(&w.text).ok()?);
            let ones = bits.leading_ones();
            if bits.checked_shl(ones).unwrap_or(0) != 0 {
                // keepalived and the kernel take any mask; ServiceSpec holds a prefix length.
                self.s.error(
                    &w.span,
                    format!("persistence_granularity netmask '{}' is not contiguous (not supported by lvsd)", w.text),
                );
                return None;
            }
            return u8::try_from(ones)
                .ok()
                .map(|p| Spanned::new(p, w.span.clone()));
        }
        match w.text.parse::<u8>() {
            Ok(p) if (1..=128).contains(&p) => Some(Spanned::new(p, w.span.clone())),
            _ => {
                self.s.error(
                    &w.span,
                    format!("invalid persistence_granularity '{}'", w.text),
                );
                None
            }
        }
    }

    fn real_server(&mut self, node: &Node) -> Option<RealServer> {
        let w = self.arg(node, 1)?;
        let addr = self.ip(w)?;
        let port = match node.words.get(2) {
            Some(p) => Some(self.port(p)?),
            None => None,
        };
        let b = self.need_block(node)?;
        let mut rs = RealServer {
            addr,
            port,
            weight: None,
            lvs_method: None,
            inhibit_on_failure: None,
            uthreshold: None,
            lthreshold: None,
            notify_up: None,
            notify_down: None,
            checkers: Vec::new(),
            other: Vec::new(),
        };
        for n in &b.nodes {
            match n.keyword().text.as_str() {
                // keepalived: "Real server weight %s is outside range 0-%d" (IPVS_WEIGHT_LIMIT = INT_MAX).
                "weight" => rs.weight = self.int_arg(n, 0, i64::from(i32::MAX)),
                "lvs_method" => rs.lvs_method = self.lb_kind(n),
                "inhibit_on_failure" => rs.inhibit_on_failure = Some(self.flag(n)),
                "uthreshold" => rs.uthreshold = self.int_arg(n, 0, i64::from(u32::MAX)),
                "lthreshold" => rs.lthreshold = self.int_arg(n, 0, i64::from(u32::MAX)),
                "notify_up" => rs.notify_up = self.cmd_arg(n),
                "notify_down" => rs.notify_down = self.cmd_arg(n),
                k @ ("TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK") => {
                    let kind = match k {
                        "TCP_CHECK" => CheckerKind::Tcp,
                        "HTTP_GET" => CheckerKind::Http,
                        "SSL_GET" => CheckerKind::Ssl,
                        _ => CheckerKind::Misc,
                    };
                    if let Some(b) = self.need_block(n) {
                        let c = self.checker(Spanned::new(kind, n.keyword().span.clone()), b);
                        rs.checkers.push(c);
                    }
                }
                _ => {
                    if !self.other(n, RS_OTHER, &mut rs.other) {
                        self.unknown(n, "real_server", &[RS, RS_OTHER]);
                    }
                }
            }
        }
        Some(rs)
    }

    fn checker(&mut self, kind: Spanned<CheckerKind>, b: &Block) -> Checker {
        let mut c = Checker {
            kind: kind.clone(),
            connect_timeout: None,
            connect_port: None,
            connect_ip: None,
            bindto: None,
            retry: None,
            delay_before_retry: None,
            warmup: None,
            urls: Vec::new(),
            misc_path: None,
            misc_timeout: None,
            misc_dynamic: None,
            other: Vec::new(),
        };
        let context = match kind.value {
            CheckerKind::Tcp => "TCP_CHECK",
            CheckerKind::Http => "HTTP_GET",
            CheckerKind::Ssl => "SSL_GET",
            CheckerKind::Misc => "MISC_CHECK",
        };
        let http = matches!(kind.value, CheckerKind::Http | CheckerKind::Ssl);
        let misc = kind.value == CheckerKind::Misc;
        for n in &b.nodes {
            let k = n.keyword().text.as_str();
            let connecting = !misc && CHECK_COMMON.contains(&k);
            match k {
                "connect_timeout" if connecting => {
                    c.connect_timeout = self.secs_arg(n, 1, u64::MAX / 2)
                }
                "connect_port" if connecting => {
                    self.no_block(n);
                    if let Some(w) = self.arg(n, 1) {
                        c.connect_port = self.port(w);
                    }
                }
                "connect_ip" if connecting => c.connect_ip = self.ip_arg(n),
                "bindto" if connecting => c.bindto = self.ip_arg(n),
                "retry" => c.retry = self.int_arg(n, 0, i64::from(u32::MAX)),
                "nb_get_retry" if http => {
                    // keepalived 2.2: "nb_get_retry is deprecated - please use 'retry'".
                    self.s.warn(
                        &n.keyword().span,
                        "nb_get_retry is deprecated - please use 'retry'",
                    );
                    c.retry = self.int_arg(n, 0, i64::from(u32::MAX));
                }
                "delay_before_retry" => c.delay_before_retry = self.secs_arg(n, 0, u64::MAX / 2),
                "warmup" => c.warmup = self.secs_arg(n, 0, u64::MAX / 2),
                "url" if http => {
                    if let Some(b) = self.need_block(n) {
                        let u = self.url(b);
                        c.urls.push(u);
                    }
                }
                "misc_path" if misc => c.misc_path = self.cmd_arg(n),
                "misc_timeout" if misc => c.misc_timeout = self.secs_arg(n, 1, u64::MAX / 2),
                "misc_dynamic" if misc => c.misc_dynamic = Some(self.flag(n)),
                _ => {
                    let others: &[&str] = if misc {
                        MISC_OTHER
                    } else if http {
                        HTTP_OTHER
                    } else {
                        &[]
                    };
                    let common_other: &[&str] = if misc { &[] } else { CHECK_COMMON_OTHER };
                    let is_other = others.contains(&k)
                        || common_other.contains(&k)
                        || (http && k == "virtualhost");
                    if is_other {
                        if let Some(j) = joined(&n.words) {
                            c.other.push(j);
                        }
                    } else {
                        let known: &[&[&str]] = if misc {
                            &[MISC, MISC_OTHER]
                        } else if http {
                            &[CHECK_COMMON, CHECK_COMMON_OTHER, HTTP, HTTP_OTHER]
                        } else {
                            &[CHECK_COMMON, CHECK_COMMON_OTHER]
                        };
                        self.unknown(n, context, known);
                    }
                }
            }
        }
        c
    }

    fn url(&mut self, b: &Block) -> Url {
        let mut u = Url::default();
        for n in &b.nodes {
            match n.keyword().text.as_str() {
                "path" => u.path = self.str_arg(n),
                "digest" => {
                    u.digest = self.str_arg(n);
                    if let Some(d) = &u.digest {
                        if d.value.len() != 32 || !d.value.chars().all(|c| c.is_ascii_hexdigit()) {
                            self.s.error(
                                &d.span,
                                format!("digest '{}' is not 32 hex digits (an MD5 sum)", d.value),
                            );
                        }
                    }
                }
                "status_code" => u.status_code = self.int_arg(n, 100, 599),
                k if URL_OTHER.contains(&k) => {}
                _ => self.unknown(n, "url", &[URL, URL_OTHER]),
            }
        }
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_with_fractions() {
        assert_eq!(parse_secs("5"), Some(Secs { micros: 5_000_000 }));
        assert_eq!(parse_secs("0.5"), Some(Secs { micros: 500_000 }));
        assert_eq!(parse_secs(".25"), Some(Secs { micros: 250_000 }));
        assert_eq!(parse_secs("1.000001"), Some(Secs { micros: 1_000_001 }));
        assert_eq!(parse_secs("1.0000001"), None);
        assert_eq!(parse_secs("-1"), None);
        assert_eq!(parse_secs("."), None);
        assert_eq!(parse_secs("abc"), None);
        assert_eq!(Secs { micros: 1_500_000 }.display(), "1.5");
    }

    #[test]
    fn edit_distance() {
        assert_eq!(levenshtein("smtp_alter", "smtp_alert"), 2);
        assert_eq!(
            levenshtein("lvs_sync_daemon_inteface", "lvs_sync_daemon_interface"),
            1
        );
        assert_eq!(levenshtein("", "ab"), 2);
    }
}
