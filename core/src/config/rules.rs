//! The IPVS table a config implies once every real server is up (keepalived's `ipvswrapper.c`).

use std::net::IpAddr;

use super::diagnostic::Spanned;
use super::model::{Config, LbKind, RealServer, VirtualServer, VsKey, VsgEntry};
use crate::check::virtual_server::effective_rs_port;
use crate::ipvs::sched::{SchedFlags, SchedKind};
use crate::ipvs::service::{DestSpec, ServiceSpec};
use crate::ipvs::{FwdMethod, Protocol, ServiceKey};

/// keepalived's scheduler when none is set (`IPVS_DEF_SCHED`).
pub const DEFAULT_SCHEDULER: SchedKind = SchedKind::Wlc;

/// keepalived's persistence timeout when none is given (`IPVS_SVC_PERSISTENT_TIMEOUT`, seconds).
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 360;

/// The longest persistence timeout keepalived accepts (`LVS_MAX_TIMEOUT`, 31 days in seconds).
pub const MAX_PERSISTENCE_TIMEOUT: u32 = 86400 * 31;

/// The IPVS forwarding method of an `lb_kind`.
pub fn fwd(kind: LbKind) -> FwdMethod {
    match kind {
        LbKind::Nat => FwdMethod::Masq,
        LbKind::Dr => FwdMethod::Route,
        LbKind::Tun(t) => FwdMethod::Tunnel(t.kind),
    }
}

/// Expand a group's `ADDR-LAST` range into its addresses.
pub(super) fn range(addr: IpAddr, end: Option<u16>) -> Vec<IpAddr> {
    let Some(end) = end else { return vec![addr] };
    match addr {
        IpAddr::V4(a) => {
            let o = a.octets();
            let first = u16::from(o[3]);
            (first..=end.min(255))
                .filter_map(|last| u8::try_from(last).ok())
                .map(|last| IpAddr::from([o[0], o[1], o[2], last]))
                .collect()
        }
        IpAddr::V6(a) => {
            let mut seg = a.segments();
            let first = seg[7];
            (first..=end)
                .map(|last| {
                    seg[7] = last;
                    IpAddr::from(seg)
                })
                .collect()
        }
    }
}

impl VirtualServer {
    /// The forwarding method a real server ends up with: its own, else the service's when its
    /// block started, else the service's last, else NAT (keepalived's `alloc_rs` copy, then
    /// validation's fill-in of an unset one).
    pub fn method_of(&self, rs: &RealServer) -> LbKind {
        self.method_line_of(rs).map_or(LbKind::Nat, |k| k.value)
    }

    /// The `lvs_method` / `lb_kind` line [`Self::method_of`] takes a real server's method from.
    pub fn method_line_of<'a>(&'a self, rs: &'a RealServer) -> Option<&'a Spanned<LbKind>> {
        rs.lvs_method
            .as_ref()
            .or(rs.inherited_method.as_ref())
            .or(self.lvs_method.as_ref())
    }

    /// The sorry server's method line: its own `sorry_server_lvs_method`, else the service's
    /// at the `sorry_server` line, else the service's last (NAT when none).
    pub fn sorry_method_line(&self) -> Option<&Spanned<LbKind>> {
        self.sorry_server_lvs_method
            .as_ref()
            .or(self.sorry_server_inherited_method.as_ref())
            .or(self.lvs_method.as_ref())
    }

    /// keepalived skips a real server of the other address family unless it is tunnelled.
    pub fn family_mismatch(&self, rs: &RealServer) -> bool {
        match self.key.value {
            VsKey::Inet { addr, .. } => {
                addr.is_ipv4() != rs.addr.value.is_ipv4() && !self.method_of(rs).is_tun()
            }
            _ => false,
        }
    }

    /// Persistence timeout keepalived applies: the configured one, else the default when a
    /// granularity is set or the port is 0 (port 0 is only valid for persistent services).
    pub fn persistence(&self) -> Option<u32> {
        let zero_port = matches!(self.key.value, VsKey::Inet { port: 0, .. });
        self.persistence_timeout
            .as_ref()
            .map(|p| p.value)
            .or_else(|| {
                (self.persistence_granularity.is_some() || zero_port)
                    .then_some(DEFAULT_PERSISTENCE_TIMEOUT)
            })
    }

    /// One-packet scheduling, which keepalived only keeps for UDP or fwmark services.
    pub fn one_packet(&self) -> bool {
        let ops = self.flags.iter().any(|f| f.value == "ops");
        let udp_or_fwmark = match self.key.value {
            VsKey::Inet { .. } => {
                self.protocol.as_ref().map_or(Protocol::Udp, |p| p.value) == Protocol::Udp
            }
            _ => true,
        };
        ops && udp_or_fwmark
    }
}

impl Config {
    /// The IPVS services and destinations this config sets up, in config order, assuming
    /// every checker succeeds (real servers as configured; sorry servers not in use).
    ///
    /// keepalived's defaults apply: scheduler `wlc`, NAT forwarding, weight 1, protocol UDP
    /// when none is given, persistence netmask /32 (/128 for IPv6).
    pub fn ipvs_rules(&self) -> Vec<(ServiceSpec, Vec<DestSpec>)> {
        self.virtual_servers
            .iter()
            .flat_map(|vs| self.vs_rules(vs))
            .collect()
    }

    /// The services (one per key: several for a `group`) and destinations of one virtual server;
    /// none when it has no real servers, as keepalived drops it.
    pub fn vs_rules(&self, vs: &VirtualServer) -> Vec<(ServiceSpec, Vec<DestSpec>)> {
        let mut out = Vec::new();
        if vs.real_servers.is_empty() {
            return out;
        }
        let grouped = matches!(vs.key.value, VsKey::Group(_));
        for key in self.service_keys(vs) {
            let dests = dests(vs, &key, grouped);
            let ipv6 = match key {
                ServiceKey::Inet { addr, .. } => addr.is_ipv6(),
                ServiceKey::Fwmark { ipv6, .. } => ipv6,
            };
            let flags = SchedFlags {
                fallback: vs
                    .flags
                    .iter()
                    .any(|f| matches!(f.value.as_str(), "sh-fallback" | "mh-fallback" | "flag-1")),
                port: vs
                    .flags
                    .iter()
                    .any(|f| matches!(f.value.as_str(), "sh-port" | "mh-port" | "flag-2")),
            };
            let spec = ServiceSpec {
                key,
                scheduler: vs.lvs_sched.as_ref().map_or(DEFAULT_SCHEDULER, |s| s.value),
                flags,
                persistence: vs.persistence(),
                netmask_prefix: vs
                    .persistence_granularity
                    .as_ref()
                    .map(|g| g.value)
                    .unwrap_or(if ipv6 { 128 } else { 32 }),
                one_packet: vs.one_packet(),
            };
            out.push((spec, dests));
        }
        out
    }

    fn service_keys(&self, vs: &VirtualServer) -> Vec<ServiceKey> {
        let proto = vs.protocol.as_ref().map_or(Protocol::Udp, |p| p.value);
        let fwmark_v6 = vs.ipv6.as_ref().is_some_and(|v| v.value)
            || vs
                .real_servers
                .first()
                .is_some_and(|r| r.addr.value.is_ipv6());
        match &vs.key.value {
            VsKey::Inet { addr, port } => vec![ServiceKey::Inet {
                proto,
                addr: *addr,
                port: *port,
            }],
            VsKey::Fwmark(mark) => vec![ServiceKey::Fwmark {
                mark: *mark,
                ipv6: fwmark_v6,
            }],
            VsKey::Group(name) => {
                let Some(g) = self
                    .virtual_server_groups
                    .iter()
                    .find(|g| &g.name.value == name)
                else {
                    return Vec::new();
                };
                let mut keys = Vec::new();
                for e in &g.entries {
                    match e {
                        VsgEntry::Inet {
                            addr,
                            range_end,
                            port,
                        } => {
                            for a in range(addr.value, *range_end) {
                                keys.push(ServiceKey::Inet {
                                    proto,
                                    addr: a,
                                    port: port.value,
                                });
                            }
                        }
                        VsgEntry::Fwmark(m) => keys.push(ServiceKey::Fwmark {
                            mark: m.value,
                            ipv6: fwmark_v6,
                        }),
                    }
                }
                keys
            }
        }
    }
}

/// The destinations of one of `vs`'s services (`key`; `grouped` when it comes from a
/// `virtual_server_group`).
fn dests(vs: &VirtualServer, key: &ServiceKey, grouped: bool) -> Vec<DestSpec> {
    let service_port = match key {
        ServiceKey::Inet { port, .. } => Some(*port),
        ServiceKey::Fwmark { .. } => None,
    };
    let mut out: Vec<DestSpec> = Vec::new();
    for rs in vs.real_servers.iter().filter(|rs| !vs.family_mismatch(rs)) {
        let d = dest(vs, rs, service_port, grouped);
        // keepalived drops a duplicated real server (the validator warns).
        if !out.iter().any(|o| o.addr == d.addr && o.port == d.port) {
            out.push(d);
        }
    }
    out
}

fn dest(vs: &VirtualServer, rs: &RealServer, service_port: Option<u16>, grouped: bool) -> DestSpec {
    let kind = vs.method_of(rs);
    let written = rs.port.as_ref().map_or(0, |p| p.value);
    // ipvswrapper.c ipvs_group_cmd: a group's NAT server keeps its port as written (0 too).
    let port = if grouped && kind == LbKind::Nat {
        written
    } else {
        effective_rs_port(written, fwd(kind), service_port)
    };
    DestSpec {
        addr: rs.addr.value,
        port,
        fwd: fwd(kind),
        weight: rs.weight.as_ref().map_or(1, |w| w.value),
        u_threshold: rs.uthreshold.as_ref().map_or(0, |u| u.value),
        l_threshold: rs.lthreshold.as_ref().map_or(0, |l| l.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_replace_the_last_octet() {
        let a: IpAddr = "10.0.0.250".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(range(a, Some(252)).len(), 3);
        assert_eq!(range(a, Some(300)).len(), 6);
        assert_eq!(range(a, Some(1)).len(), 0);
        assert_eq!(range(a, None), vec![a]);
    }
}
