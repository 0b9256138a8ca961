//! `virtual_server_group`, `virtual_server` and `real_server` (keepalived's `check_parser.c`,
//! its virtual and real server half).

use std::net::IpAddr;
use std::str::FromStr;

use super::{spanned, Builder};
use crate::config::diagnostic::Spanned;
use crate::config::lexer::Word;
use crate::config::model::*;
use crate::config::rules::{DEFAULT_PERSISTENCE_TIMEOUT, MAX_PERSISTENCE_TIMEOUT};
use crate::config::tree::{Block, Node};
use crate::ipvs::sched::SchedKind;
use crate::ipvs::{Protocol, TunnelType};

/// The tunnel options a method carries (IPIP, no checksum, for anything but `TUN`).
fn tunnel_of(m: Option<&Spanned<LbKind>>) -> Tunnel {
    match m.map(|m| m.value) {
        Some(LbKind::Tun(t)) => t,
        _ => Tunnel::default(),
    }
}

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

impl Builder<'_> {
    pub(super) fn vs_group(&mut self, name: Spanned<String>, b: &Block) -> VirtualServerGroup {
        let mut g = VirtualServerGroup {
            name,
            entries: Vec::new(),
        };
        for n in &b.nodes {
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

    /// `lb_kind` / `lvs_method` of a virtual (`server` = "virtual"), real or sorry server; an
    /// unknown method is reported as keepalived reports it and leaves the method unset (the
    /// service's, else NAT, applies). The words after the method are keepalived 2.2.7's
    /// tunnel options (`type ipip|gue|gre`, `port N`, `nocsum|csum|remcsum`), read for any
    /// method; at a bad one keepalived reports it and stops, the method set and the tunnel
    /// left as it was (`prev`: the service's when the server inherits it, else IPIP).
    fn lb_kind(&mut self, n: &Node, server: &str, prev: Tunnel) -> Option<Spanned<LbKind>> {
        let w = self.arg(n, 1)?;
        let method = |t: Tunnel| match w.text.as_str() {
            "NAT" => Some(LbKind::Nat),
            "DR" => Some(LbKind::Dr),
            "TUN" => Some(LbKind::Tun(t)),
            _ => None,
        };
        if method(prev).is_none() {
            self.s.warn_as_keepalived(
                &w.span,
                format!(
                    "PARSER : unknown [{}] routing method for {server} server.",
                    w.text
                ),
            );
            return None;
        }
        let done = |t: Tunnel| method(t).map(|k| Spanned::new(k, w.span.clone()));
        let (mut kind, mut port, mut csum) = (TunnelType::Ipip, 0u16, TunnelCsum::NoCsum);
        let mut i = 2;
        while let Some(opt) = n.words.get(i) {
            match opt.text.as_str() {
                "type" => {
                    let Some(t) = n.words.get(i + 1) else {
                        self.s.warn_as_keepalived(
                            &opt.span,
                            format!("Missing tunnel type for {server} server."),
                        );
                        return done(prev);
                    };
                    kind = match t.text.as_str() {
                        "ipip" => TunnelType::Ipip,
                        "gue" => TunnelType::Gue { port: 0 },
                        "gre" => TunnelType::Gre,
                        _ => {
                            self.s.warn_as_keepalived(
                                &t.span,
                                format!("Unknown tunnel type {} for {server} server.", t.text),
                            );
                            return done(prev);
                        }
                    };
                    i += 1;
                }
                "port" => {
                    let Some(p) = n.words.get(i + 1) else {
                        self.s.warn_as_keepalived(
                            &opt.span,
                            format!("Missing port for {server} server gue tunnel."),
                        );
                        return done(prev);
                    };
                    match p.text.parse::<u16>() {
                        Ok(v) if v >= 1 => port = v,
                        _ => {
                            self.s.warn_as_keepalived(
                                &p.span,
                                format!("Invalid gue tunnel port {} for {server} server.", p.text),
                            );
                            return done(prev);
                        }
                    }
                    i += 1;
                }
                "nocsum" => csum = TunnelCsum::NoCsum,
                "csum" => csum = TunnelCsum::Csum,
                "remcsum" => csum = TunnelCsum::RemCsum,
                _ => {
                    self.s.warn_as_keepalived(
                        &opt.span,
                        format!("Invalid tunnel option {} for {server} server.", opt.text),
                    );
                    return done(prev);
                }
            }
            i += 1;
        }
        let gue = matches!(kind, TunnelType::Gue { .. });
        let refused = if gue != (port != 0) {
            Some("gue tunnels require port, otherwise cannot have port.")
        } else if kind == TunnelType::Ipip && csum != TunnelCsum::NoCsum {
            Some("ipip tunnels do not support checksum option.")
        } else if kind == TunnelType::Gre && csum == TunnelCsum::RemCsum {
            Some("gre tunnels do not support remote checksum option.")
        } else {
            None
        };
        if let Some(why) = refused {
            self.s.warn_as_keepalived(&w.span, why);
            return done(prev);
        }
        if gue {
            kind = TunnelType::Gue { port };
        }
        done(Tunnel { kind, csum })
    }

    pub(super) fn virtual_server(&mut self, node: &Node) -> Option<VirtualServer> {
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
                // check_parser.c vs_handler: no port is port 0.
                let port = match node.words.get(2) {
                    Some(p) => self.port(p).map(|p| p.value),
                    None => Some(0),
                };
                let (addr, port) = (addr?, port?);
                Spanned::new(
                    VsKey::Inet {
                        addr: addr.value,
                        port,
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
            sorry_server_lvs_method: None,
            sorry_server_inherited_method: None,
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
                "delay_loop" => {
                    if let Some(w) = self.arg(n, 1) {
                        // keepalived's read_timer: 1 us to TIMER_MAXIMUM (ULONG_MAX - 1 us).
                        match self.ka_secs(w, 1, u64::MAX - 1) {
                            Some(d) => vs.delay_loop = Some(Spanned::new(d, w.span.clone())),
                            None => self.s.warn_as_keepalived(
                                &w.span,
                                format!(
                                    "virtual server delay loop '{}' invalid - ignoring",
                                    w.text
                                ),
                            ),
                        }
                    }
                }
                "lb_algo" | "lvs_sched" => {
                    if let Some(w) = self.arg(n, 1) {
                        if let Some(k) = SchedKind::from_name(&w.text) {
                            vs.lvs_sched = Some(Spanned::new(k, w.span.clone()));
                        } else {
                            // keepalived keeps the scheduler it had (wlc when none).
                            self.s.warn_as_keepalived(
                                &w.span,
                                format!("Invalid lvs_scheduler '{}' - ignoring", w.text),
                            );
                        }
                    }
                }
                "ops" | "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback" | "mh-port"
                | "mh-fallback" => {
                    vs.flags.push(spanned(n.keyword()));
                }
                "lb_kind" | "lvs_method" => {
                    if let Some(m) = self.lb_kind(n, "virtual", tunnel_of(vs.lvs_method.as_ref())) {
                        vs.lvs_method = Some(m);
                    }
                }
                // With no value keepalived uses 360 s (IPVS_SVC_PERSISTENT_TIMEOUT).
                "persistence_timeout" => {
                    match n.words.get(1) {
                        // keepalived (pto_handler) accepts 1 to LVS_MAX_TIMEOUT (31 days);
                        // anything else is reported and leaves the service without a timeout.
                        Some(w) => match self.ka_unsigned(w, 1, MAX_PERSISTENCE_TIMEOUT) {
                            Some(t) => {
                                vs.persistence_timeout = Some(Spanned::new(t, w.span.clone()))
                            }
                            None => self
                                .s
                                .warn_as_keepalived(&w.span, "persistence_timeout invalid"),
                        },
                        None => {
                            vs.persistence_timeout = Some(Spanned::new(
                                DEFAULT_PERSISTENCE_TIMEOUT,
                                n.keyword().span.clone(),
                            ))
                        }
                    }
                }
                "persistence_granularity" => {
                    if let Some(w) = self.arg(n, 1) {
                        vs.persistence_granularity = self.granularity(w);
                    }
                }
                "protocol" => {
                    if let Some(w) = self.arg(n, 1) {
                        // keepalived compares without case (strcasecmp).
                        let p = match w.text.to_ascii_uppercase().as_str() {
                            "TCP" => Some(Protocol::Tcp),
                            "UDP" => Some(Protocol::Udp),
                            "SCTP" => Some(Protocol::Sctp),
                            _ => None,
                        };
                        match p {
                            Some(p) => vs.protocol = Some(Spanned::new(p, w.span.clone())),
                            None => self.s.warn_as_keepalived(
                                &w.span,
                                format!("Unknown protocol {} - ignoring", w.text),
                            ),
                        }
                    }
                }
                "quorum" => vs.quorum = self.int_arg(n, 1, i64::from(u32::MAX)),
                "hysteresis" => vs.hysteresis = self.int_arg(n, 0, i64::from(u32::MAX)),
                "quorum_up" => vs.quorum_up = self.cmd_arg(n),
                "quorum_down" => vs.quorum_down = self.cmd_arg(n),
                "sorry_server" => {
                    if let Some(a) = self.arg(n, 1) {
                        // check_parser.c ssvr_handler: the port is optional.
                        let port = match n.words.get(2) {
                            Some(p) => self.port(p).map(|p| p.value),
                            None => Some(0),
                        };
                        if let (Some(a), Some(port)) = (self.ip(a), port) {
                            // alloc_ssvr: a new sorry server, with the method in effect now.
                            vs.sorry_server = Some(Spanned::new((a.value, port), a.span));
                            vs.sorry_server_lvs_method = None;
                            vs.sorry_server_inherited_method = vs.lvs_method.clone();
                        }
                    }
                }
                "sorry_server_lvs_method" | "sorry_server_inhibit" => {
                    let method = k == "sorry_server_lvs_method";
                    if vs.sorry_server.is_none() {
                        self.s.warn_as_keepalived(
                            &n.keyword().span,
                            if method {
                                "sorry_server forwarding used without sorry_server"
                            } else {
                                "Ignoring sorry_server inhibit used before or without sorry_server"
                            },
                        );
                    } else if method {
                        let prev = tunnel_of(
                            vs.sorry_server_lvs_method
                                .as_ref()
                                .or(vs.sorry_server_inherited_method.as_ref()),
                        );
                        if let Some(m) = self.lb_kind(n, "sorry", prev) {
                            vs.sorry_server_lvs_method = Some(m);
                        }
                    }
                    // The method is honoured (the sorry server's forwarding); inhibit not yet.
                    if !method {
                        self.other(n, VS_OTHER, &mut vs.other);
                    }
                }
                "alpha" => vs.alpha = Some(self.flag(n)),
                "omega" => vs.omega = Some(self.flag(n)),
                "ha_suspend" => vs.ha_suspend = Some(self.flag(n)),
                "virtualhost" => vs.virtualhost = self.str_arg(n),
                "real_server" => {
                    if let Some(rs) = self.real_server(n, vs.lvs_method.clone()) {
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

    /// `inherited`: the service's method (and tunnel) when the block starts, which keepalived's
    /// `alloc_rs` copies into the new server.
    fn real_server(
        &mut self,
        node: &Node,
        inherited: Option<Spanned<LbKind>>,
    ) -> Option<RealServer> {
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
            inherited_method: inherited,
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
                // keepalived: "Real server weight %s is outside range 0-%d" (IPVS_WEIGHT_LIMIT =
                // INT_MAX), and the weight stays 1.
                "weight" => {
                    if let Some(w) = self.arg(n, 1) {
                        let max = i32::MAX.unsigned_abs();
                        match self
                            .ka_unsigned(w, 0, max)
                            .and_then(|x| i32::try_from(x).ok())
                        {
                            Some(x) => rs.weight = Some(Spanned::new(x, w.span.clone())),
                            None => self.s.warn_as_keepalived(
                                &w.span,
                                format!("Real server weight {} is outside range 0-{max}", w.text),
                            ),
                        }
                    }
                }
                "lvs_method" => {
                    let prev = tunnel_of(rs.lvs_method.as_ref().or(rs.inherited_method.as_ref()));
                    if let Some(m) = self.lb_kind(n, "real", prev) {
                        rs.lvs_method = Some(m);
                    }
                }
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
}
