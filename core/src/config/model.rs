//! The typed keepalived.conf: what each block means, every value with its span.
//!
//! Optional settings stay `None` when the file does not set them; the accessors on each type
//! give keepalived 2.2's default in that case.

use std::net::IpAddr;

use serde::Serialize;

use super::diagnostic::{Span, Spanned};
use crate::ipvs::sched::SchedKind;
use crate::ipvs::{Protocol, TunnelType};

/// A time written in seconds, possibly fractional (`advert_int 0.5`), kept in microseconds
/// like keepalived's TIMER_HZ.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Secs {
    /// Microseconds.
    pub micros: u64,
}

impl Secs {
    /// The value as keepalived would print it (`5`, `0.5`).
    pub fn display(&self) -> String {
        if self.micros.is_multiple_of(1_000_000) {
            format!("{}", self.micros / 1_000_000)
        } else {
            let s = format!("{}.{:06}", self.micros / 1_000_000, self.micros % 1_000_000);
            s.trim_end_matches('0').to_string()
        }
    }

    /// Whole seconds.
    pub fn from_secs(s: u64) -> Self {
        Secs {
            micros: s.saturating_mul(1_000_000),
        }
    }
}

// JSON shows seconds as the number the user wrote.
impl Serialize for Secs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.micros.is_multiple_of(1_000_000) {
            s.serialize_u64(self.micros / 1_000_000)
        } else {
            s.serialize_f64(self.micros as f64 / 1e6)
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Config {
    /// `global_defs`.
    pub global_defs: GlobalDefs,
    /// `vrrp_script` blocks.
    pub vrrp_scripts: Vec<VrrpScript>,
    /// `vrrp_sync_group` blocks.
    pub vrrp_sync_groups: Vec<SyncGroup>,
    /// `vrrp_instance` blocks.
    pub vrrp_instances: Vec<VrrpInstance>,
    /// `virtual_server_group` blocks.
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    /// `virtual_server` blocks.
    pub virtual_servers: Vec<VirtualServer>,
}

/// `lvs_sync_daemon IFACE INSTANCE [id N]` (global_defs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LvsSyncDaemon {
    /// Interface the sync daemon uses.
    pub interface: Spanned<String>,
    /// VRRP instance whose state drives master/backup.
    pub instance: Spanned<String>,
    /// Sync id (`id N`), default: the instance's VRID.
    pub id: Option<Spanned<u8>>,
}

/// `global_defs { ... }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GlobalDefs {
    /// `router_id`.
    pub router_id: Option<Spanned<String>>,
    /// `notification_email { ... }` addresses.
    pub notification_email: Vec<Spanned<String>>,
    /// `notification_email_from`.
    pub notification_email_from: Option<Spanned<String>>,
    /// `smtp_server HOST [PORT]`.
    pub smtp_server: Option<Spanned<String>>,
    /// `smtp_server` port, default 25.
    pub smtp_port: Option<Spanned<u16>>,
    /// `smtp_connect_timeout` (seconds).
    pub smtp_connect_timeout: Option<Spanned<u32>>,
    /// `lvs_sync_daemon`.
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
    /// `default_interface` (used by instances without `interface`).
    pub default_interface: Option<Spanned<String>>,
    /// `vrrp_garp_master_delay` (seconds).
    pub vrrp_garp_master_delay: Option<Spanned<u32>>,
    /// `vrrp_garp_master_repeat`.
    pub vrrp_garp_master_repeat: Option<Spanned<u32>>,
    /// `vrrp_garp_master_refresh` (seconds).
    pub vrrp_garp_master_refresh: Option<Spanned<u32>>,
    /// `vrrp_garp_master_refresh_repeat`.
    pub vrrp_garp_master_refresh_repeat: Option<Spanned<u32>>,
    /// `vrrp_garp_interval` (seconds, fractional).
    pub vrrp_garp_interval: Option<Spanned<Secs>>,
    /// `vrrp_gna_interval` (seconds, fractional).
    pub vrrp_gna_interval: Option<Spanned<Secs>>,
    /// `vrrp_version` (2 or 3).
    pub vrrp_version: Option<Spanned<u8>>,
    /// `vrrp_strict`.
    pub vrrp_strict: Option<Span>,
    /// `smtp_alert`.
    pub smtp_alert: Option<Spanned<bool>>,
    /// `enable_script_security`.
    pub enable_script_security: Option<Span>,
    /// `script_user USER [GROUP]`.
    pub script_user: Option<Spanned<String>>,
    /// Keywords keepalived knows but this model does not type (kept verbatim).
    pub other: Vec<Spanned<String>>,
}

/// `vrrp_script NAME { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VrrpScript {
    /// Name that `track_script` refers to.
    pub name: Spanned<String>,
    /// `script` command line.
    pub script: Option<Spanned<String>>,
    /// `interval` (seconds, default 1).
    pub interval: Option<Spanned<Secs>>,
    /// `timeout` (seconds, default = interval).
    pub timeout: Option<Spanned<Secs>>,
    /// `weight` (-253..253, default 0).
    pub weight: Option<Spanned<i32>>,
    /// `rise` (default 1).
    pub rise: Option<Spanned<u32>>,
    /// `fall` (default 1).
    pub fall: Option<Spanned<u32>>,
}

/// Notify scripts and mail settings shared by sync groups and instances.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Notify {
    /// `notify_master`.
    pub master: Option<Spanned<String>>,
    /// `notify_backup`.
    pub backup: Option<Spanned<String>>,
    /// `notify_fault`.
    pub fault: Option<Spanned<String>>,
    /// `notify_stop`.
    pub stop: Option<Spanned<String>>,
    /// `notify` (called with type, name, state, priority).
    pub any: Option<Spanned<String>>,
    /// `smtp_alert [on|off]`.
    pub smtp_alert: Option<Spanned<bool>>,
}

/// `vrrp_sync_group NAME { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncGroup {
    /// Group name.
    pub name: Spanned<String>,
    /// `group { ... }`: member instance names.
    pub group: Vec<Spanned<String>>,
    /// Notify scripts and `smtp_alert`.
    pub notify: Notify,
    /// Keywords keepalived knows but this model does not type (kept verbatim).
    pub other: Vec<Spanned<String>>,
}

/// VRRP initial state.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum State {
    /// `state MASTER`.
    Master,
    /// `state BACKUP`.
    Backup,
}

/// `auth_type`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum AuthType {
    /// Simple password (RFC 2338 type 1).
    Pass,
    /// IPsec AH (RFC 2338 type 2).
    Ah,
}

/// `authentication { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Authentication {
    /// `auth_type`.
    pub auth_type: Option<Spanned<AuthType>>,
    /// `auth_pass` (first 8 characters are used).
    pub auth_pass: Option<Spanned<String>>,
}

/// A `virtual_ipaddress` entry: `addr[/prefix] [dev X] [label Y] ...`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VirtualAddress {
    /// The address.
    pub addr: Spanned<IpAddr>,
    /// Prefix length (default 32 / 128).
    pub prefix: Option<u8>,
    /// `dev IFACE`.
    pub dev: Option<Spanned<String>>,
    /// `label LABEL`.
    pub label: Option<Spanned<String>>,
    /// Other options (brd, scope, ...) kept verbatim.
    pub other: Vec<Spanned<String>>,
}

/// A `track_interface` / `track_script` entry with its optional weight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tracked {
    /// Interface or script name.
    pub name: Spanned<String>,
    /// `weight N`.
    pub weight: Option<Spanned<i32>>,
}

/// `vrrp_instance NAME { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VrrpInstance {
    /// Instance name.
    pub name: Spanned<String>,
    /// `state` (default BACKUP).
    pub state: Option<Spanned<State>>,
    /// `interface`.
    pub interface: Option<Spanned<String>>,
    /// `virtual_router_id` (1-255).
    pub virtual_router_id: Option<Spanned<u8>>,
    /// `priority` (1-255, default 100).
    pub priority: Option<Spanned<u8>>,
    /// `advert_int` (default 1 s).
    pub advert_int: Option<Spanned<Secs>>,
    /// `version` (2 or 3).
    pub version: Option<Spanned<u8>>,
    /// `nopreempt`.
    pub nopreempt: Option<Span>,
    /// `preempt_delay` (seconds).
    pub preempt_delay: Option<Spanned<Secs>>,
    /// `authentication { ... }`.
    pub authentication: Option<Authentication>,
    /// `virtual_ipaddress { ... }`.
    pub virtual_ipaddress: Vec<VirtualAddress>,
    /// `virtual_ipaddress_excluded { ... }`.
    pub virtual_ipaddress_excluded: Vec<VirtualAddress>,
    /// `unicast_src_ip`.
    pub unicast_src_ip: Option<Spanned<IpAddr>>,
    /// `unicast_peer { ... }`.
    pub unicast_peer: Vec<Spanned<IpAddr>>,
    /// The first keyword asking for unicast (`unicast_peer`, `unicast_src_ip`,
    /// `check_unicast_src`, `unicast_fault_no_peer`), peers or not.
    pub unicast_keyword: Option<Spanned<String>>,
    /// `track_interface { ... }`.
    pub track_interface: Vec<Tracked>,
    /// `track_script { ... }`.
    pub track_script: Vec<Tracked>,
    /// `garp_master_delay` (seconds).
    pub garp_master_delay: Option<Spanned<u32>>,
    /// `garp_master_repeat`.
    pub garp_master_repeat: Option<Spanned<u32>>,
    /// `garp_master_refresh` (seconds).
    pub garp_master_refresh: Option<Spanned<u32>>,
    /// `garp_master_refresh_repeat`.
    pub garp_master_refresh_repeat: Option<Spanned<u32>>,
    /// Notify scripts and `smtp_alert`.
    pub notify: Notify,
    /// `lvs_sync_daemon_interface` (deprecated; global `lvs_sync_daemon` replaces it).
    pub lvs_sync_daemon_interface: Option<Spanned<String>>,
    /// `native_ipv6`.
    pub native_ipv6: Option<Span>,
    /// `dont_track_primary`.
    pub dont_track_primary: Option<Span>,
    /// Keywords keepalived knows but this model does not type (kept verbatim).
    pub other: Vec<Spanned<String>>,
}

impl VrrpInstance {
    /// keepalived's default priority when none is set.
    pub const DEFAULT_PRIORITY: u8 = 100;

    /// The effective priority.
    pub fn priority(&self) -> u8 {
        self.priority
            .as_ref()
            .map_or(Self::DEFAULT_PRIORITY, |p| p.value)
    }

    /// The effective advertisement interval.
    pub fn advert_int(&self) -> Secs {
        self.advert_int
            .as_ref()
            .map_or(Secs::from_secs(1), |a| a.value)
    }

    /// The VRRP version: the instance's `version`, else global_defs `vrrp_version`, else 2.
    pub fn vrrp_version(&self, global: &GlobalDefs) -> u8 {
        self.version
            .as_ref()
            .or(global.vrrp_version.as_ref())
            .map_or(2, |v| v.value)
    }

    /// The advertisement interval keepalived really uses: VRRPv2 carries whole seconds
    /// (rounded half up, 1-255 s), VRRPv3 centiseconds (rounded to 10 ms, at most 40.95 s).
    pub fn effective_advert_int(&self, global: &GlobalDefs) -> Secs {
        let micros = self.advert_int().micros;
        let (unit, max_units) = if self.vrrp_version(global) == 2 {
            (1_000_000, 255)
        } else {
            (10_000, 4095)
        };
        let units = micros.saturating_add(unit / 2) / unit;
        Secs {
            micros: units.clamp(1, max_units) * unit,
        }
    }

    /// The initial state as written (BACKUP when none is).
    pub fn state(&self) -> State {
        self.state.as_ref().map_or(State::Backup, |s| s.value)
    }

    /// The priority of the address owner, which keepalived treats apart.
    pub const OWNER_PRIORITY: u8 = 255;

    /// An IPv6 instance (`native_ipv6`, or an IPv6 first VIP): always VRRPv3.
    pub fn is_ipv6(&self) -> bool {
        self.native_ipv6.is_some()
            || self
                .virtual_ipaddress
                .first()
                .is_some_and(|a| a.addr.value.is_ipv6())
    }

    /// The arguments of the last line of a keyword lvsd keeps verbatim (`other`), if any.
    pub fn other_args(&self, keyword: &str) -> Option<Vec<&str>> {
        self.other.iter().rev().find_map(|o| {
            let mut words = o.value.split_whitespace();
            (words.next() == Some(keyword)).then(|| words.collect())
        })
    }

    /// A kept keyword read as keepalived's on/off handlers read it (vrrp_parser.c: no value
    /// is true; a value `check_true_false` does not know leaves the setting alone).
    pub fn other_flag(&self, keyword: &str) -> Option<bool> {
        let args = self.other_args(keyword)?;
        match args.first() {
            None => Some(true),
            Some(&("true" | "on" | "yes")) => Some(true),
            Some(&("false" | "off" | "no")) => Some(false),
            Some(_) => None,
        }
    }

    /// Strict mode: the instance's `strict_mode`, else global_defs `vrrp_strict`.
    pub fn strict_mode(&self, global: &GlobalDefs) -> bool {
        self.other_flag("strict_mode")
            .unwrap_or(global.vrrp_strict.is_some())
    }

    /// The authentication keepalived uses: none in strict mode, under VRRPv3 or IPv6, nor
    /// without a password (vrrp.c vrrp_complete_instance ignores it then).
    pub fn authentication_in_effect(&self, global: &GlobalDefs) -> Option<AuthType> {
        let auth = self.authentication.as_ref()?;
        let kind = auth.auth_type.as_ref()?.value;
        let v3 = self.vrrp_version(global) == 3 || self.is_ipv6();
        let pass = auth.auth_pass.as_ref().is_some_and(|p| !p.value.is_empty());
        (!v3 && pass && !self.strict_mode(global)).then_some(kind)
    }

    /// Whether keepalived treats the instance as the address owner (priority 255; with no
    /// priority written, an initial MASTER gets 255: vrrp.c vrrp_complete_instance).
    pub fn is_owner(&self) -> bool {
        match &self.priority {
            Some(p) => p.value == Self::OWNER_PRIORITY,
            None => self.state() == State::Master,
        }
    }

    /// The initial state keepalived starts in: with none written, MASTER for the owner; in
    /// strict mode MASTER exactly when it owns the addresses; MASTER with AH authentication
    /// starts as BACKUP unless it owns the addresses (it needs an advert's AH sequence number
    /// first).
    pub fn initial_state(&self, global: &GlobalDefs) -> State {
        let owner_state = if self.is_owner() {
            State::Master
        } else {
            State::Backup
        };
        let written = match &self.state {
            Some(_) if self.strict_mode(global) => owner_state,
            Some(s) => s.value,
            None => owner_state,
        };
        let ah = self.authentication_in_effect(global) == Some(AuthType::Ah);
        if written == State::Master && ah && !self.is_owner() {
            State::Backup
        } else {
            written
        }
    }
}

/// `lb_kind` / `lvs_method`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum LbKind {
    /// `NAT` (masquerading).
    Nat,
    /// `DR` (direct routing).
    Dr,
    /// `TUN` (IP-in-IP, or GUE / GRE as its options say).
    Tun(Tunnel),
}

impl LbKind {
    /// `TUN`, whatever its encapsulation.
    pub fn is_tun(self) -> bool {
        matches!(self, LbKind::Tun(_))
    }
}

/// The words after `TUN` on an `lvs_method` line, as keepalived 2.2.7's
/// `svr_forwarding_handler` reads them: `type ipip|gue|gre`, `port N` (GUE only), and one of
/// `nocsum` (the default), `csum`, `remcsum`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tunnel {
    /// The encapsulation (`--tun-type`, `--tun-port`).
    pub kind: TunnelType,
    /// The checksum option (`--tun-nocsum` / `--tun-csum` / `--tun-remcsum`).
    pub csum: TunnelCsum,
}

/// A tunnel's checksum option (`IP_VS_TUNNEL_ENCAP_FLAG_*`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub enum TunnelCsum {
    /// `nocsum`: GUE without a UDP checksum, GRE without the checksum field.
    #[default]
    NoCsum,
    /// `csum`: GUE's UDP checksum, GRE's checksum field.
    Csum,
    /// `remcsum`: GUE remote checksum offload.
    RemCsum,
}

/// How a `virtual_server` names its service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum VsKey {
    /// `virtual_server ADDR PORT`.
    Inet {
        /// Virtual address.
        addr: IpAddr,
        /// Virtual port.
        port: u16,
    },
    /// `virtual_server fwmark N`.
    Fwmark(u32),
    /// `virtual_server group NAME`.
    Group(String),
}

/// `virtual_server ... { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VirtualServer {
    /// Address+port, fwmark or group.
    pub key: Spanned<VsKey>,
    /// `ip_family inet|inet6` (fwmark services).
    pub ipv6: Option<Spanned<bool>>,
    /// `delay_loop` (seconds, default 60).
    pub delay_loop: Option<Spanned<Secs>>,
    /// `lvs_sched` / `lb_algo`.
    pub lvs_sched: Option<Spanned<SchedKind>>,
    /// Scheduler flags: `ops`, `sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`, `flag-1..3`.
    pub flags: Vec<Spanned<String>>,
    /// `lvs_method` / `lb_kind` (default NAT).
    pub lvs_method: Option<Spanned<LbKind>>,
    /// `persistence_timeout` (seconds).
    pub persistence_timeout: Option<Spanned<u32>>,
    /// `persistence_granularity` as a prefix length.
    pub persistence_granularity: Option<Spanned<u8>>,
    /// `protocol TCP|UDP|SCTP`.
    pub protocol: Option<Spanned<Protocol>>,
    /// `quorum` (default 1).
    pub quorum: Option<Spanned<u32>>,
    /// `hysteresis`.
    pub hysteresis: Option<Spanned<u32>>,
    /// `quorum_up` script.
    pub quorum_up: Option<Spanned<String>>,
    /// `quorum_down` script.
    pub quorum_down: Option<Spanned<String>>,
    /// `sorry_server ADDR [PORT]` (port 0 when none is written).
    pub sorry_server: Option<Spanned<(IpAddr, u16)>>,
    /// `sorry_server_lvs_method` (the virtual server's method when none is given).
    pub sorry_server_lvs_method: Option<Spanned<LbKind>>,
    /// The virtual server's `lb_kind` in effect at the `sorry_server` line (keepalived's
    /// `alloc_ssvr` copies it, as `alloc_rs` does for a real server).
    pub sorry_server_inherited_method: Option<Spanned<LbKind>>,
    /// `alpha`.
    pub alpha: Option<Span>,
    /// `omega`.
    pub omega: Option<Span>,
    /// `ha_suspend`.
    pub ha_suspend: Option<Span>,
    /// `virtualhost` (default for HTTP_GET checkers).
    pub virtualhost: Option<Spanned<String>>,
    /// `real_server` blocks.
    pub real_servers: Vec<RealServer>,
    /// Keywords keepalived knows but this model does not type (kept verbatim).
    pub other: Vec<Spanned<String>>,
}

/// `real_server ADDR PORT { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RealServer {
    /// Address.
    pub addr: Spanned<IpAddr>,
    /// Port (defaults to the virtual server's).
    pub port: Option<Spanned<u16>>,
    /// `weight` (default 1).
    pub weight: Option<Spanned<i32>>,
    /// `lvs_method` for this server only.
    pub lvs_method: Option<Spanned<LbKind>>,
    /// The virtual server's `lb_kind` in effect when this block started, which keepalived's
    /// `alloc_rs` copies (a later `lb_kind` of the service does not change it); `None` when
    /// none came before, and keepalived's validation gives the server the service's last.
    pub inherited_method: Option<Spanned<LbKind>>,
    /// `inhibit_on_failure` (weight 0 instead of removal).
    pub inhibit_on_failure: Option<Span>,
    /// `uthreshold`.
    pub uthreshold: Option<Spanned<u32>>,
    /// `lthreshold`.
    pub lthreshold: Option<Spanned<u32>>,
    /// `notify_up` script.
    pub notify_up: Option<Spanned<String>>,
    /// `notify_down` script.
    pub notify_down: Option<Spanned<String>>,
    /// Health checkers.
    pub checkers: Vec<Checker>,
    /// Keywords keepalived knows but this model does not type (kept verbatim).
    pub other: Vec<Spanned<String>>,
}

/// Which health check.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum CheckerKind {
    /// `TCP_CHECK`.
    Tcp,
    /// `HTTP_GET`.
    Http,
    /// `SSL_GET`.
    Ssl,
    /// `MISC_CHECK`.
    Misc,
}

/// `url { ... }` of HTTP_GET / SSL_GET.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Url {
    /// `path`.
    pub path: Option<Spanned<String>>,
    /// `digest` (MD5 hex of the body).
    pub digest: Option<Spanned<String>>,
    /// `status_code` values and `LOW-HIGH` ranges (inclusive), from every `status_code` line;
    /// none: keepalived's default 200-299.
    pub status_codes: Vec<Spanned<(u16, u16)>>,
}

/// A checker block inside `real_server`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Checker {
    /// The checker keyword.
    pub kind: Spanned<CheckerKind>,
    /// `connect_timeout` (seconds, default 5).
    pub connect_timeout: Option<Spanned<Secs>>,
    /// `connect_port`.
    pub connect_port: Option<Spanned<u16>>,
    /// `connect_ip`.
    pub connect_ip: Option<Spanned<IpAddr>>,
    /// `bindto`.
    pub bindto: Option<Spanned<IpAddr>>,
    /// `retry` (or the deprecated `nb_get_retry` in HTTP_GET/SSL_GET).
    pub retry: Option<Spanned<u32>>,
    /// `delay_before_retry` (seconds).
    pub delay_before_retry: Option<Spanned<Secs>>,
    /// `warmup` (seconds).
    pub warmup: Option<Spanned<Secs>>,
    /// `url { ... }` blocks.
    pub urls: Vec<Url>,
    /// `misc_path`.
    pub misc_path: Option<Spanned<String>>,
    /// `misc_timeout` (seconds).
    pub misc_timeout: Option<Spanned<Secs>>,
    /// `misc_dynamic`.
    pub misc_dynamic: Option<Span>,
    /// Keywords keepalived knows but this model does not type (kept verbatim).
    pub other: Vec<Spanned<String>>,
}

/// One entry of `virtual_server_group`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum VsgEntry {
    /// `ADDR[-LAST] PORT`: the range replaces the last IPv4 octet (or IPv6 group) up to LAST.
    Inet {
        /// First address.
        addr: Spanned<IpAddr>,
        /// Last value of the final octet/group, for a range.
        range_end: Option<u16>,
        /// Port.
        port: Spanned<u16>,
    },
    /// `fwmark N`.
    Fwmark(Spanned<u32>),
}

/// `virtual_server_group NAME { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VirtualServerGroup {
    /// Group name.
    pub name: Spanned<String>,
    /// Entries.
    pub entries: Vec<VsgEntry>,
}
