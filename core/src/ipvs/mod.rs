//! IPVS: virtual services, destinations, the kernel's schedulers, the
//! connection table and the forwarding transforms (Linux 6.1 `net/netfilter/ipvs`).

pub mod conn;
pub mod dest;
pub mod fwd;
pub mod list;
pub mod save;
pub mod sched;
pub mod service;
pub mod stats;
pub mod sync;
pub mod table;
pub mod trace;

pub use service::IpvsChange;

use std::fmt;
use std::net::IpAddr;

/// Transport protocol of a virtual service (`-t`, `-u`, `--sctp-service`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Protocol {
    /// TCP (IPPROTO_TCP).
    Tcp,
    /// UDP (IPPROTO_UDP).
    Udp,
    /// SCTP (IPPROTO_SCTP).
    Sctp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// The name `ipvsadm -L -n` prints (`TCP`, `UDP`, `SCTP`).
    pub fn ipvsadm_name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// How IPVS identifies a virtual service: address:port per protocol, or a firewall mark.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum ServiceKey {
    /// `-t/-u/--sctp-service addr:port`.
    Inet {
        /// Protocol.
        proto: Protocol,
        /// Virtual address.
        addr: IpAddr,
        /// Virtual port (0 with persistence = all ports).
        port: u16,
    },
    /// `-f mark` (IPv4 or IPv6 family).
    Fwmark {
        /// Firewall mark.
        mark: u32,
        /// True for an IPv6 fwmark service.
        ipv6: bool,
    },
}

impl fmt::Display for ServiceKey {
    /// The `ipvsadm -L -n` form: `TCP  10.0.0.1:80` / `FWM  1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Inet { proto, addr, port } => {
                write!(f, "{}  {}", proto.ipvsadm_name(), SockAddr(*addr, *port))
            }
            ServiceKey::Fwmark { mark, ipv6 } => {
                write!(f, "FWM  {mark}{}", if *ipv6 { " IPv6" } else { "" })
            }
        }
    }
}

/// `addr:port` with IPv6 addresses bracketed, as ipvsadm prints them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct SockAddr(pub IpAddr, pub u16);

impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// Forwarding method of a destination (kernel `IP_VS_CONN_F_FWD_MASK`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum FwdMethod {
    /// NAT (`-m`, "Masq").
    Masq,
    /// Local node (shown as "Local").
    Local,
    /// IP tunnelling (`-i`, "Tunnel").
    Tunnel(TunnelType),
    /// Direct routing (`-g`, "Route").
    Route,
    /// Bypass.
    Bypass,
}

impl FwdMethod {
    /// The word `ipvsadm -L -n` prints in the Forward column.
    pub fn ipvsadm_name(self) -> &'static str {
        match self {
            FwdMethod::Masq => "Masq",
            FwdMethod::Local => "Local",
            FwdMethod::Tunnel(_) => "Tunnel",
            FwdMethod::Route => "Route",
            FwdMethod::Bypass => "Bypass",
        }
    }

    /// The flag `ipvsadm-save` writes (`-g`, `-m`, `-i`).
    pub fn ipvsadm_flag(self) -> &'static str {
        match self {
            FwdMethod::Masq => "-m",
            FwdMethod::Tunnel(_) => "-i",
            FwdMethod::Route | FwdMethod::Local | FwdMethod::Bypass => "-g",
        }
    }
}

/// Encapsulation used by the tunnel method (`--tun-type`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum TunnelType {
    /// IP-in-IP (default).
    #[default]
    Ipip,
    /// Generic UDP Encapsulation to the given destination port.
    Gue {
        /// UDP port of the GUE receiver.
        port: u16,
    },
    /// GRE.
    Gre,
}
