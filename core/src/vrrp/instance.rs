//! One `vrrp_instance`: its configuration, its run-time state and keepalived's timer arithmetic.
//!
//! The transitions themselves live in [`super::router`], because in keepalived a transition of
//! one instance may move the other members of its sync group in the same step.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::state::{NotifyScripts, VrrpState};
use super::stats::{InstanceStats, RxError};
use crate::time::Instant;

use super::track::{TrackInterface, TrackScript};
use super::wire::{Advert, Auth, Version};

/// keepalived's timers are kept in microseconds (`TIMER_HZ`); so are ours, to get the same rounding.
pub const TIMER_HZ: u64 = 1_000_000;
/// One centisecond in timer units (`TIMER_CENTI_HZ`).
pub const TIMER_CENTI_HZ: u64 = 10_000;
/// Priority of the address owner (RFC 3768 5.3.4).
pub const PRIO_OWNER: u8 = 255;
/// Priority a resigning master sends (RFC 3768 5.3.4).
pub const PRIO_STOP: u8 = 0;
/// IPv4 VRRP multicast group (RFC 3768 5.2.2).
pub const MCAST_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
/// IPv6 VRRP multicast group (RFC 5798 5.1.2.2).
pub const MCAST_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));

/// `state MASTER|BACKUP` in keepalived.conf.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum InitialState {
    /// `state MASTER`.
    Master,
    /// `state BACKUP`.
    Backup,
}

/// One `virtual_ipaddress` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualAddress {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (keepalived's default is /32 or /128).
    pub prefix: u8,
    /// `dev IFACE`, when not the instance's interface.
    pub dev: Option<String>,
}

impl VirtualAddress {
    /// A host address on the instance's interface.
    pub fn host(addr: IpAddr) -> Self {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        VirtualAddress {
            addr,
            prefix,
            dev: None,
        }
    }
}

/// The plain configuration of one `vrrp_instance`, already validated by the config layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Instance name (`vrrp_instance WAN`).
    pub name: String,
    /// `interface`.
    pub iface: String,
    /// `virtual_router_id`.
    pub vrid: u8,
    /// `version` (keepalived's default is 2).
    pub version: Version,
    /// `state`; `None` derives it from the priority as keepalived does.
    pub state: Option<InitialState>,
    /// `priority`; 0 means unset (255 with `state MASTER`, else 100).
    pub priority: u8,
    /// `advert_int`.
    pub advert_int: Duration,
    /// `authentication` (v2 only).
    pub auth: Auth,
    /// `virtual_ipaddress`.
    pub vips: Vec<VirtualAddress>,
    /// The interface's primary address: advert source and equal-priority tie-break.
    pub primary_ip: IpAddr,
    /// `unicast_src_ip` / `mcast_src_ip`.
    pub src_ip: Option<IpAddr>,
    /// `unicast_peer`; empty means multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// Faults `vrrp_complete_instance` counted in the config (`num_config_faults`: unicast
    /// keywords with `unicast_fault_no_peer` and no peer): the instance stays in FAULT.
    pub config_faults: u32,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// `preempt_delay`.
    pub preempt_delay: Duration,
    /// `garp_master_delay` (default 5 s; zero disables the second burst).
    pub garp_master_delay: Duration,
    /// `garp_master_repeat` (default 5).
    pub garp_master_repeat: u32,
    /// `garp_master_refresh` (default 0 = none).
    pub garp_master_refresh: Duration,
    /// `garp_master_refresh_repeat` (default 1).
    pub garp_master_refresh_repeat: u32,
    /// `garp_lower_prio_repeat` (default: `garp_master_repeat`, i.e. 5).
    pub garp_lower_prio_repeat: u32,
    /// `garp_lower_prio_delay` (default: `garp_master_delay`, i.e. 5 s).
    pub garp_lower_prio_delay: Duration,
    /// `down_timer_adverts` (default 3).
    pub down_timer_adverts: u32,
    /// `lower_prio_no_advert`.
    pub lower_prio_no_advert: bool,
    /// `higher_prio_send_advert`.
    pub higher_prio_send_advert: bool,
    /// `track_interface`.
    pub track_interfaces: Vec<TrackInterface>,
    /// `track_script`.
    pub track_scripts: Vec<TrackScript>,
    /// `dont_track_primary`: a down `interface` does not put the instance in FAULT.
    pub dont_track_primary: bool,
    /// keepalived's `-D` (`--log-detail`): also emit the lines it logs only in detail mode.
    pub log_detail: bool,
    /// `notify_master` / `notify_backup` / `notify_fault` / `notify_stop` / `notify`.
    pub notify: NotifyScripts,
}

impl InstanceConfig {
    /// An instance with keepalived's defaults for everything not given.
    pub fn new(name: &str, iface: &str, vrid: u8, primary_ip: IpAddr) -> Self {
        InstanceConfig {
            name: name.to_string(),
            iface: iface.to_string(),
            vrid,
            version: Version::V2,
            state: None,
            priority: 0,
            advert_int: Duration::from_secs(1),
            auth: Auth::None,
            vips: Vec::new(),
            primary_ip,
            src_ip: None,
            unicast_peers: Vec::new(),
            config_faults: 0,
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            garp_master_delay: Duration::from_secs(5),
            garp_master_repeat: 5,
            garp_master_refresh: Duration::ZERO,
            garp_master_refresh_repeat: 1,
            garp_lower_prio_repeat: 5,
            garp_lower_prio_delay: Duration::from_secs(5),
            down_timer_adverts: 3,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            dont_track_primary: false,
            log_detail: true,
            notify: NotifyScripts::default(),
        }
    }

    /// Address used as advert source and for the tie-break (`vrrp->saddr`).
    pub fn saddr(&self) -> IpAddr {
        self.src_ip.unwrap_or(self.primary_ip)
    }
}

/// Skew time in microseconds for `pri_val` (keepalived's `VRRP_TIMER_SKEW_CALC`).
///
/// v2 (RFC 3768 6.1): `(256 - Priority) / 256` seconds, independent of the advert interval.
/// v3 (RFC 5798 6.1): `((256 - Priority) * Master_Adver_Interval) / 256`, computed by keepalived
/// in centiseconds as `pri_val * cs * 625 / 16` µs.
pub fn skew_us(version: Version, pri_val: u64, master_adver_int_us: u64) -> u64 {
    match version {
        Version::V3 => (pri_val * (master_adver_int_us / TIMER_CENTI_HZ) * 625) / 16,
        Version::V2 => pri_val * TIMER_HZ / 256,
    }
}

/// Master_Down_Interval in microseconds (keepalived's `VRRP_MS_DOWN_TIMER`).
pub fn master_down_us(
    version: Version,
    priority: u8,
    adverts: u32,
    master_adver_int_us: u64,
) -> u64 {
    u64::from(adverts) * master_adver_int_us
        + skew_us(version, 256 - u64::from(priority), master_adver_int_us)
}

/// Why an advert was dropped before reaching the state machine (keepalived's `vrrp_check_packet`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// keepalived's log line for it.
    pub log: String,
    /// The counter it bumps.
    pub reason: RxError,
}

/// Run-time state of one instance.
#[derive(Clone, Debug)]
pub struct Instance {
    /// Its configuration.
    pub(crate) cfg: InstanceConfig,
    pub(crate) state: VrrpState,
    pub(crate) wantstate: VrrpState,
    pub(crate) base_priority: u8,
    pub(crate) effective_priority: u8,
    pub(crate) total_priority: i32,
    pub(crate) adver_int: u64,
    pub(crate) master_adver_int: u64,
    pub(crate) ms_down_timer: u64,
    /// Next timer expiry (`vrrp->sands`); `None` is `TIMER_DISABLED`.
    pub(crate) sands: Option<Instant>,
    pub(crate) preempt_time: Option<Instant>,
    pub(crate) preempt_delay: u64,
    pub(crate) nopreempt: bool,
    /// `num_script_if_fault`: tracked things currently holding the instance down.
    pub(crate) num_fault: u32,
    /// `num_script_init`: weight-0 scripts not run yet.
    pub(crate) num_script_init: u32,
    pub(crate) vipset: bool,
    pub(crate) sync: Option<usize>,
    /// Second GARP burst: when, and a scheduling sequence number so equal times keep the
    /// order they were scheduled in (as keepalived's timer tree does).
    pub(crate) garp_delay_at: Option<(Instant, u64)>,
    pub(crate) garp_refresh_at: Option<Instant>,
    /// Delayed GARPs after lower-priority adverts: keepalived adds one timer per advert
    /// received (`thread_add_timer` each time), so several can be pending, in (time, seq) order.
    pub(crate) garp_lower_at: std::collections::VecDeque<(Instant, u64)>,
    pub(crate) master_saddr: Option<IpAddr>,
    pub(crate) master_priority: u8,
    /// keepalived's `vrrp->stats`.
    pub(crate) stats: InstanceStats,
    /// `notifies_sent`: the first notifies went out (vrrp_notify.c).
    pub(crate) notifies_sent: bool,
    /// The interface lost the address the instance sends from (`saddr` is `AF_UNSPEC`).
    pub(crate) saddr_lost: bool,
    /// MASTER before a reload and kept (`reload_master`).
    pub(crate) reload_master: bool,
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Instance {
    /// A new instance in INIT, with keepalived's `vrrp_complete_instance` defaults applied.
    pub fn new(cfg: InstanceConfig) -> Self {
        // A config fault holds it in FAULT from the start, without a transition to log.
        let config_faults = cfg.config_faults;
        let base_priority = match (cfg.priority, cfg.state) {
            (0, Some(InitialState::Master)) => PRIO_OWNER,
            (0, _) => 100,
            (p, _) => p,
        };
        let wantstate = match cfg.state {
            Some(InitialState::Master) => VrrpState::Master,
            Some(InitialState::Backup) => VrrpState::Backup,
            None if base_priority == PRIO_OWNER => VrrpState::Master,
            None => VrrpState::Backup,
        };
        // nopreempt and preempt_delay are cleared for owners and `state MASTER` (vrrp.c,
        // vrrp_complete_instance).
        let master_like = base_priority == PRIO_OWNER || wantstate == VrrpState::Master;
        let nopreempt = cfg.nopreempt && !master_like;
        let preempt_delay = if master_like || nopreempt {
            0
        } else {
            us(cfg.preempt_delay)
        };
        let mut adver_int = us(cfg.advert_int);
        match cfg.version {
            Version::V2 => adver_int = (adver_int / TIMER_HZ).max(1) * TIMER_HZ,
            Version::V3 => {
                adver_int = (adver_int + TIMER_CENTI_HZ / 2) / TIMER_CENTI_HZ * TIMER_CENTI_HZ;
                adver_int = adver_int.clamp(TIMER_CENTI_HZ, 4095 * TIMER_CENTI_HZ);
            }
        }
        let mut inst = Instance {
            cfg,
            state: if config_faults > 0 {
                VrrpState::Fault
            } else {
                VrrpState::Init
            },
            wantstate,
            base_priority,
            effective_priority: base_priority,
            total_priority: i32::from(base_priority),
            adver_int,
            master_adver_int: adver_int,
            ms_down_timer: 0,
            sands: None,
            preempt_time: None,
            preempt_delay,
            nopreempt,
            num_fault: config_faults,
            num_script_init: 0,
            vipset: false,
            sync: None,
            garp_delay_at: None,
            garp_refresh_at: None,
            garp_lower_at: std::collections::VecDeque::new(),
            master_saddr: None,
            master_priority: 0,
            stats: InstanceStats::default(),
            notifies_sent: false,
            saddr_lost: false,
            reload_master: false,
        };
        inst.stats.name = inst.cfg.name.clone();
        inst.ms_down_timer = inst.ms_down();
        inst
    }

    /// Instance name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Its configuration.
    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    /// Current state.
    pub fn state(&self) -> VrrpState {
        self.state
    }

    /// Priority it advertises now (base plus tracking weights, clamped to 1..=254).
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    /// Advert interval it currently expects from the master (v3 backups adopt the master's).
    pub fn master_adver_int(&self) -> Duration {
        Duration::from_micros(self.master_adver_int)
    }

    /// Master_Down_Interval for the current priority and master advert interval.
    pub fn master_down_interval(&self) -> Duration {
        Duration::from_micros(self.ms_down())
    }

    /// Skew_Time for the current priority and master advert interval.
    pub fn skew_time(&self) -> Duration {
        Duration::from_micros(self.skew())
    }

    /// When the current timer (advert or master down) expires.
    pub fn deadline(&self) -> Option<Instant> {
        self.sands
    }

    /// The source of the last advert it took from a master (`None` before any).
    pub fn master_addr(&self) -> Option<IpAddr> {
        self.master_saddr
    }

    /// Whether its virtual addresses are installed.
    pub fn vips_set(&self) -> bool {
        self.vipset
    }

    pub(crate) fn skew(&self) -> u64 {
        skew_us(
            self.cfg.version,
            256 - u64::from(self.effective_priority),
            self.master_adver_int,
        )
    }

    pub(crate) fn skew_min(&self) -> u64 {
        skew_us(self.cfg.version, 1, self.master_adver_int)
    }

    pub(crate) fn ms_down(&self) -> u64 {
        master_down_us(
            self.cfg.version,
            self.effective_priority,
            self.cfg.down_timer_adverts,
            self.master_adver_int,
        )
    }

    /// `vrrp_init_instance_sands`: arm the timer for the current state.
    pub(crate) fn init_sands(&mut self, now: Instant) {
        self.sands = match self.state {
            VrrpState::Master => Some(now + Duration::from_micros(self.adver_int)),
            VrrpState::Backup => Some(now + Duration::from_micros(self.ms_down_timer)),
            _ => None,
        };
    }

    /// The advert this instance sends with `priority`.
    pub(crate) fn advert(&self, priority: u8) -> Advert {
        let auth = match self.cfg.version {
            Version::V2 => self.cfg.auth.clone(),
            Version::V3 => Auth::None,
        };
        Advert {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            advert_int_cs: u16::try_from(self.adver_int / TIMER_CENTI_HZ).unwrap_or(u16::MAX),
            auth,
            addrs: self.cfg.vips.iter().map(|v| v.addr).collect(),
        }
    }

    /// The subset of keepalived's `vrrp_check_packet` that needs the instance's configuration
    /// (version, authentication, v2 interval, address list, unicast vs multicast).
    pub(crate) fn check_advert(&self, advert: &Advert, dst: IpAddr) -> Result<(), Dropped> {
        let name = &self.cfg.name;
        let drop = |reason: RxError, log: String| Err(Dropped { log, reason });
        let num = |v: Version| match v {
            Version::V2 => 2,
            Version::V3 => 3,
        };
        if advert.version != self.cfg.version {
            return drop(
                RxError::Version,
                format!(
                    "({name}) wrong version. Received {} and expect {}",
                    num(advert.version),
                    num(self.cfg.version)
                ),
            );
        }
        if self.cfg.version == Version::V2 {
            let code = |a: &Auth| match a {
                Auth::None => 0,
                Auth::Pass(_) => 1,
                Auth::Ah => 2,
            };
            if code(&advert.auth) != code(&self.cfg.auth) {
                return drop(
                    RxError::AuthTypeMismatch,
                    format!(
                        "({name}) received a {} auth, expecting {}!",
                        code(&advert.auth),
                        code(&self.cfg.auth)
                    ),
                );
            }
            if let (Auth::Pass(got), Auth::Pass(want)) = (&advert.auth, &self.cfg.auth) {
                if got != want {
                    return drop(
                        RxError::AuthFailure,
                        format!("({name}) received an invalid passwd!"),
                    );
                }
            }
            let theirs = u64::from(advert.advert_int_cs) * TIMER_CENTI_HZ;
            if theirs != self.adver_int {
                return drop(
                    RxError::AdvertInterval,
                    format!(
                        "({name}) advertisement interval mismatch mine={} sec rcv'd={} sec",
                        self.adver_int / TIMER_HZ,
                        theirs / TIMER_HZ
                    ),
                );
            }
        }
        if advert.addrs.len() != self.cfg.vips.len() {
            return drop(
                RxError::AddrList,
                format!(
                    "({name}) received an unexpected ip number count {}, expected {}!",
                    advert.addrs.len(),
                    self.cfg.vips.len()
                ),
            );
        }
        let unicast = !self.cfg.unicast_peers.is_empty();
        if dst.is_multicast() == unicast {
            let (want, got) = if unicast {
                ("un", "mult")
            } else {
                ("mult", "un")
            };
            return drop(
                RxError::AddrList,
                format!("({name}) Expected {want}icast packet but received {got}icast packet"),
            );
        }
        if let Some(missing) = self
            .cfg
            .vips
            .iter()
            .find(|v| !advert.addrs.contains(&v.addr))
        {
            return drop(
                RxError::AddrMissing,
                format!(
                    "({name}) ip address associated with VRID {} not present in MASTER advert: {}",
                    self.cfg.vrid, missing.addr
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 3768 6.1 / keepalived vrrp.h VRRP_TIMER_SKEW_CALC: v2 skew is (256-prio)/256 s, not
    // scaled by advert_int; v3 (RFC 5798 6.1) scales it by Master_Adver_Interval.
    #[test]
    fn skew_formulas_match_keepalived() {
        assert_eq!(skew_us(Version::V2, 256 - 120, 5 * TIMER_HZ), 531_250);
        assert_eq!(skew_us(Version::V2, 256 - 100, TIMER_HZ), 609_375);
        assert_eq!(skew_us(Version::V3, 256 - 120, 5 * TIMER_HZ), 2_656_250);
        assert_eq!(
            skew_us(Version::V3, 256 - 100, 100 * TIMER_CENTI_HZ),
            609_375
        );
        // 255 - 1/256 s rounds down in µs exactly as keepalived's integer division.
        assert_eq!(skew_us(Version::V2, 1, TIMER_HZ), 3_906);
        assert_eq!(
            master_down_us(Version::V2, 220, 3, 5 * TIMER_HZ),
            15_140_625
        );
    }

    // vrrp.c vrrp_complete_instance: priority defaults from state, nopreempt cleared for MASTER.
    #[test]
    fn defaults_follow_keepalived() {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mut c = InstanceConfig::new("A", "eth0", 1, ip);
        c.state = Some(InitialState::Master);
        c.nopreempt = true;
        let i = Instance::new(c.clone());
        assert_eq!(i.base_priority, PRIO_OWNER);
        assert!(!i.nopreempt);
        c.state = None;
        c.priority = 0;
        let i = Instance::new(c.clone());
        assert_eq!((i.base_priority, i.wantstate), (100, VrrpState::Backup));
        assert!(i.nopreempt);
    }

    #[test]
    fn check_advert_rejects_what_keepalived_rejects() {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mut c = InstanceConfig::new("WAN", "eth0", 50, ip);
        c.auth = Auth::Pass(*b"1111\0\0\0\0");
        c.advert_int = Duration::from_secs(5);
        c.vips = vec![VirtualAddress::host(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)))];
        let i = Instance::new(c);
        let good = i.advert(100);
        assert_eq!(i.check_advert(&good, MCAST_V4), Ok(()));
        let mut bad = good.clone();
        bad.auth = Auth::Pass(*b"2222\0\0\0\0");
        assert_eq!(
            i.check_advert(&bad, MCAST_V4).unwrap_err().log,
            "(WAN) received an invalid passwd!"
        );
        let mut bad = good.clone();
        bad.advert_int_cs = 100;
        assert_eq!(
            i.check_advert(&bad, MCAST_V4).unwrap_err().log,
            "(WAN) advertisement interval mismatch mine=5 sec rcv'd=1 sec"
        );
        assert!(i.check_advert(&good, ip).is_err());
        let mut bad = good;
        bad.addrs = vec![ip];
        assert!(i
            .check_advert(&bad, MCAST_V4)
            .unwrap_err()
            .log
            .contains("not present in MASTER advert: 10.0.0.9"));
    }
}
