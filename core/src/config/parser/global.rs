//! `global_defs` (keepalived's `global_parser.c`).

use super::{spanned, Builder};
use crate::config::diagnostic::Spanned;
use crate::config::model::*;
use crate::config::tree::{Block, Node};

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

/// The range of `SCHED_RR` priorities Linux gives (`sched_get_priority_min` / `_max`).
const RT_PRIORITIES: (i32, i32) = (1, 99);

impl Builder<'_> {
    /// `vrrp_garp_interval` / `vrrp_gna_interval` as global_parser.c reads them: seconds from
    /// 1 µs, 0 or a bad value logged and skipped (the default, none, stays).
    fn arp_interval(&mut self, n: &Node) -> Option<Spanned<Secs>> {
        let w = self.arg(n, 1)?;
        let kw = &n.keyword().text;
        let Some(v) = self.ka_secs(w, 1, u64::from(u32::MAX)) else {
            self.s
                .warn_as_keepalived(&w.span, format!("{kw} '{}' is invalid", w.text));
            return None;
        };
        Some(Spanned::new(v, w.span.clone()))
    }

    /// `get_realtime_priority`: keepalived clamps a real-time priority to SCHED_RR's range
    /// and says so (lvsd does not change its scheduling, so only the words matter).
    fn rt_priority(&mut self, n: &Node) {
        let kw = &n.keyword().text;
        let process = kw.strip_suffix("_rt_priority").unwrap_or(kw);
        let Some(w) = n.words.get(1) else {
            self.s.warn_as_keepalived(
                &n.keyword().span,
                format!("No {process} process real-time priority specified"),
            );
            return;
        };
        let (min, max) = RT_PRIORITIES;
        let message = match self.ka_int(w, i32::MIN, i32::MAX) {
            None => format!("{process} process real-time priority '{}' invalid", w.text),
            Some(p) if p < min => format!(
                "{process} process real-time priority {p} less than minimum {min} - setting to minimum"
            ),
            Some(p) if p > max => format!(
                "{process} process real-time priority {p} greater than maximum {max} - setting to maximum"
            ),
            Some(_) => return,
        };
        self.s.warn_as_keepalived(&w.span, message);
    }

    pub(super) fn global_defs(&mut self, b: &Block, g: &mut GlobalDefs) {
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
                "vrrp_garp_interval" => g.vrrp_garp_interval = self.arp_interval(n),
                "vrrp_gna_interval" => g.vrrp_gna_interval = self.arp_interval(n),
                "vrrp_rt_priority" | "checker_rt_priority" | "bfd_rt_priority" => {
                    self.rt_priority(n);
                    self.other(n, GLOBAL_OTHER, &mut g.other);
                }
                "vrrp_version" => g.vrrp_version = self.int_arg(n, 2, 3),
                "vrrp_strict" => {
                    self.s.warn(
                        &n.keyword().span,
                        "'vrrp_strict' is valid keepalived: its configuration checks apply, but for its run-time rules (accept mode, adverts, GARPs) lvsd does not honour it; ignored",
                    );
                    g.vrrp_strict = Some(self.flag(n));
                }
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
}
