//! The resolved scenario: plain data, names turned into ids, every value checked.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A loaded and validated scenario, ready for the simulator runner or the netns harness.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Short name (`name = ...`).
    pub name: String,
    /// Free text for the reader (`description = ...`).
    pub description: String,
    /// The scenario file it came from, for diagnostics.
    pub source: PathBuf,
    /// RNG seed used unless the command line gives another.
    pub seed: u64,
    /// Virtual time the run lasts.
    pub duration: Duration,
    /// L2 segments, in file order; `SegmentId` indexes this.
    pub segments: Vec<Segment>,
    /// Hosts, in file order; `HostId` indexes this.
    pub hosts: Vec<Host>,
    /// Fault timeline, sorted by time (file order among equal times).
    pub faults: Vec<Fault>,
    /// Times at which to print `ipvsadm -L -n`, sorted by time.
    pub snapshots: Vec<Snapshot>,
    /// What must hold at the end of the run.
    pub expect: Expect,
}

/// Index of a segment in [`Scenario::segments`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub usize);

/// Index of a host in [`Scenario::hosts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub usize);

/// One interface of one host: host id and index in [`Host::interfaces`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfaceRef {
    /// The host.
    pub host: HostId,
    /// Index into that host's interfaces.
    pub index: usize,
}

/// An L2 broadcast domain with its link behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Name used by interfaces and faults.
    pub name: String,
    /// One-way delay of a frame.
    pub latency: Duration,
    /// Uniform extra delay in `[0, jitter]` per frame.
    pub jitter: Duration,
    /// Probability (0..=1) that a frame is lost.
    pub loss: f64,
    /// Probability (0..=1) that a frame is delivered twice.
    pub duplicate: f64,
    /// Probability (0..=1) that a frame is held back behind the next one.
    pub reorder: f64,
}

/// A 48-bit Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The address derived for interface `iface` of host `host` when the file gives none:
    /// locally administered, unicast, `02:4c:56:HH:HH:II` ("LV"), so distinct per interface.
    pub fn derived(host: HostId, iface: usize) -> Option<MacAddr> {
        let h = u16::try_from(host.0).ok()?;
        let i = u8::try_from(iface).ok()?;
        let [hi, lo] = h.to_be_bytes();
        Some(MacAddr([0x02, 0x4c, 0x56, hi, lo, i]))
    }

    /// True for a group (multicast/broadcast) address, which no interface may own.
    pub fn is_multicast(self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl std::str::FromStr for MacAddr {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in out.iter_mut() {
            let part = parts.next().ok_or(())?;
            if part.len() != 2 {
                return Err(());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| ())?;
        }
        if parts.next().is_some() {
            return Err(());
        }
        Ok(MacAddr(out))
    }
}

/// A host: its interfaces and what runs on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// Its own id.
    pub id: HostId,
    /// Name used everywhere else in the scenario.
    pub name: String,
    /// Interfaces in file order.
    pub interfaces: Vec<Interface>,
    /// Default route, when it has one.
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 default route, when it has one.
    pub gateway6: Option<Ipv6Addr>,
    /// Role and role-specific settings.
    pub role: Role,
}

impl Host {
    /// The interface called `name`.
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }
}

/// One network interface.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// Kernel-style name (`eth0`), as keepalived.conf refers to it.
    pub name: String,
    /// The segment it is plugged into.
    pub segment: SegmentId,
    /// Primary address.
    pub addr: Ipv4Addr,
    /// Prefix length of the connected subnet.
    pub prefix_len: u8,
    /// A global IPv6 address and its prefix length (`ip6`); the link-local one comes from
    /// the MAC, as the kernel makes it.
    pub addr6: Option<(Ipv6Addr, u8)>,
    /// Hardware address (given, or derived by [`MacAddr::derived`]).
    pub mac: MacAddr,
}

impl Interface {
    /// The connected subnet's network address.
    pub fn network(&self) -> Ipv4Addr {
        network_of(self.addr, self.prefix_len)
    }

    /// True when `addr` is on this interface's subnet.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        network_of(addr, self.prefix_len) == self.network()
    }

    /// True when `addr` is on this interface's IPv6 subnet.
    pub fn contains6(&self, addr: Ipv6Addr) -> bool {
        self.addr6.is_some_and(|(a, p)| {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(p.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(addr) & mask
        })
    }
}

/// `addr` with the host bits cleared.
pub fn network_of(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let mask = if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    };
    Ipv4Addr::from(u32::from(addr) & mask)
}

/// What a host is.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// Runs keepalived (lvsd's Director) with the given configuration.
    Director(Director),
    /// Serves the VIP's traffic sent to it by direct routing.
    RealServer(RealServer),
    /// Generates requests to a VIP.
    Client(Client),
    /// Routes between segments and keeps an ARP cache.
    Gateway(Gateway),
}

/// A director's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Director {
    /// Its keepalived.conf, read in.
    pub keepalived_conf: KeepalivedConf,
    /// When keepalived starts (the guide starts the backup 3 s after the master).
    pub start_at: Duration,
    /// How long its process takes on the host (`process = { ... }`; default: what
    /// keepalived 2.2.7 took, [`ProcessTiming::KEEPALIVED`]).
    pub process: ProcessTiming,
}

/// A range of durations a host draws from, uniformly; `lo == hi`: always that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Span {
    /// Shortest.
    pub lo: Duration,
    /// Longest.
    pub hi: Duration,
}

impl Span {
    /// Always `d`.
    pub const fn fixed(d: Duration) -> Span {
        Span { lo: d, hi: d }
    }

    /// Always zero.
    pub fn is_zero(&self) -> bool {
        self.lo.is_zero() && self.hi.is_zero()
    }
}

/// How long a director's process takes on a real host: what the core cannot know (it runs
/// when it is called) and a real keepalived shows. Each host draws from its own stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ProcessTiming {
    /// From exec to the process's first step (keepalived: config, netlink, sockets, then
    /// `Entering BACKUP STATE (init)`).
    pub start: Span,
    /// How late the process runs after something became ready for it (a timer's deadline,
    /// a VRRP frame, a link event, a signal): scheduling and poll latency, drawn
    /// log-uniformly (mostly short, now and then long). keepalived computes its next
    /// deadline from the time it woke, so this accumulates: adverts drift.
    pub wake: Span,
    /// From SIGTERM to the process's exit; what it does on the signal (priority-0 advert,
    /// VIPs removed) happens when it next runs.
    pub exit: Span,
}

impl ProcessTiming {
    /// Everything at once: the process runs the moment it is started, wakes exactly at its
    /// deadlines and exits with the signal.
    pub const INSTANT: ProcessTiming = ProcessTiming {
        start: Span::fixed(Duration::ZERO),
        wake: Span::fixed(Duration::ZERO),
        exit: Span::fixed(Duration::ZERO),
    };

    /// What Debian's keepalived 2.2.7 took in network namespaces on a 2-core VM
    /// (`scenarios/reference/keepalived-2.2-host-timing.log`, its 5th to 95th
    /// percentiles): exec to first step 23-83 ms, wake latency 0.12-5.7 ms (adverts'
    /// lateness; signals 0.3-7.9 ms), SIGTERM to exit 1.02-1.09 s.
    pub const KEEPALIVED: ProcessTiming = ProcessTiming {
        start: Span {
            lo: Duration::from_millis(23),
            hi: Duration::from_millis(83),
        },
        wake: Span {
            lo: Duration::from_micros(100),
            hi: Duration::from_micros(6000),
        },
        exit: Span {
            lo: Duration::from_millis(1022),
            hi: Duration::from_millis(1090),
        },
    };
}

/// A keepalived.conf's text and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepalivedConf {
    /// The file to name in diagnostics: the resolved path, or
    /// `<scenario file>#host[NAME].keepalived_conf_inline` for inline text.
    pub file_name: PathBuf,
    /// The configuration text, unchanged.
    pub text: String,
    /// True when written inline in the scenario file.
    pub inline: bool,
    /// The files its `include`s read when the scenario was loaded (paths as keepalived
    /// resolves them: relative to the including file's folder).
    pub files: lvs_core::config::FileSet,
}

impl KeepalivedConf {
    /// Parse it (its includes from [`KeepalivedConf::files`]), as keepalived would at start.
    pub fn parse(&self) -> lvs_core::config::Parsed {
        let name = self.file_name.display().to_string();
        lvs_core::config::parse_text(&name, &self.text, &self.files)
    }
}

/// A real server's settings (LVS-DR: the VIPs sit on `lo`).
#[derive(Debug, Clone, PartialEq)]
pub struct RealServer {
    /// Addresses configured on the loopback (`ifconfig lo:0 VIP ... up`).
    pub vips_on_lo: Vec<IpAddr>,
    /// `net.ipv4.conf.all.arp_ignore` (0..=3 or 8).
    pub arp_ignore: u8,
    /// `net.ipv4.conf.all.arp_announce` (0..=2).
    pub arp_announce: u8,
    /// The tunnel receiver of a TUN real server (`tunnel = "ipip"`).
    pub tunnel: Option<Decap>,
    /// TCP, UDP and SCTP services listening on every address.
    pub services: Vec<Service>,
}

/// A tunnel receiver a TUN real server sets up so that the director's encapsulated packets
/// reach its VIP: `tunl0` (`modprobe ipip`), `gre0` (`modprobe ip_gre`), or a GUE port
/// (`ip fou add port PORT gue`). Each takes apart, for any local address, what its
/// encapsulation carries; without one the kernel drops the packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Decap {
    /// IPIP on tunl0.
    Ipip,
    /// GUE on this UDP port.
    Gue {
        /// The fou port.
        port: u16,
    },
    /// GRE on gre0.
    Gre,
}

impl std::str::FromStr for Decap {
    type Err = ();

    /// `ipip`, `gre` or `gue:PORT` (PORT 1..=65535).
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "ipip" => Ok(Decap::Ipip),
            "gre" => Ok(Decap::Gre),
            _ => {
                let port: u16 = s.strip_prefix("gue:").ok_or(())?.parse().map_err(|_| ())?;
                if port == 0 {
                    return Err(());
                }
                Ok(Decap::Gue { port })
            }
        }
    }
}

impl RealServer {
    /// The service on `port`.
    pub fn service(&self, port: u16) -> Option<&Service> {
        self.services.iter().find(|s| s.port == port)
    }
}

/// The transport of a service or workload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// TCP: one connection per request.
    #[default]
    Tcp,
    /// UDP: one datagram per request, one answer.
    Udp,
    /// SCTP: one association per request (handshake, one DATA each way, SHUTDOWN).
    Sctp,
}

/// A TCP, UDP or SCTP service on a real server.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// TCP, UDP or SCTP.
    pub protocol: Transport,
    /// Listening port.
    pub port: u16,
    /// Time to serve one request once accepted.
    pub service_time: Duration,
    /// Requests served at once; beyond it the listen queue holds them.
    pub capacity: u32,
    /// Bytes of each response.
    pub response_size: u32,
}

/// A client's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    /// The requests it sends.
    pub workload: Workload,
}

/// A request flow to one VIP:port, one TCP connection, UDP datagram or SCTP association per
/// request.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Where requests go.
    pub target: SocketAddr,
    /// TCP, UDP or SCTP.
    pub protocol: Transport,
    /// UDP and SCTP: how long an answer is awaited before the request times out.
    pub timeout: Duration,
    /// UDP: every request from this port instead of a fresh one each.
    pub source_port: Option<u16>,
    /// Open or closed loop.
    pub pattern: LoadPattern,
    /// Bytes of each request.
    pub request_size: u32,
    /// When the first request starts.
    pub start: Duration,
    /// When requests stop being started (the scenario's end by default).
    pub stop: Duration,
}

/// How requests are paced.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadPattern {
    /// New requests at `rate` per second whatever happens to earlier ones (Poisson arrivals).
    Open {
        /// Requests per second.
        rate: f64,
    },
    /// `concurrency` users, each waiting `think_time` after a reply (or failure) before the next.
    Closed {
        /// Simultaneous users.
        concurrency: u32,
        /// Pause between a request's end and the next.
        think_time: Duration,
    },
}

/// A gateway's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    /// How long a learned ARP entry is used before it is asked again.
    pub arp_cache_timeout: Duration,
}

/// One entry of the fault timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// When it happens.
    pub at: Duration,
    /// What happens.
    pub action: FaultAction,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// SIGKILL: the process goes silent, its VIPs and IPVS rules stay behind.
    Kill {
        /// Director or real server.
        host: HostId,
    },
    /// SIGTERM (what `pkill keepalived` sends): priority-0 advert, VIPs and rules removed.
    Stop {
        /// Director or real server.
        host: HostId,
    },
    /// SIGSTOP: the process freezes, nothing is cleaned up.
    Pause {
        /// Director or real server.
        host: HostId,
    },
    /// SIGCONT after a pause.
    Resume {
        /// Director or real server.
        host: HostId,
    },
    /// Start the process again (stopping it first if it runs).
    Restart {
        /// Director or real server.
        host: HostId,
    },
    /// Carrier lost on one interface.
    NicDown {
        /// The interface.
        iface: IfaceRef,
    },
    /// Carrier back on one interface.
    NicUp {
        /// The interface.
        iface: IfaceRef,
    },
    /// Set the frame loss probability.
    LinkLoss {
        /// Where.
        target: LinkTarget,
        /// Probability (0..=1).
        loss: f64,
    },
    /// Set the one-way delay (and jitter, if given).
    Latency {
        /// Where.
        target: LinkTarget,
        /// New delay.
        latency: Duration,
        /// New jitter; unchanged when `None`.
        jitter: Option<Duration>,
    },
    /// Drop traffic between groups of hosts.
    Partition {
        /// Disjoint host groups (two or more).
        groups: Vec<Vec<HostId>>,
        /// When true, only traffic from `groups[0]` to `groups[1]` is dropped.
        one_way: bool,
    },
    /// Remove every partition and restore the file's link loss and latency
    /// (NICs and processes are left as they are).
    Heal,
    /// Stop the service on `port` (connection refused from then on).
    ServiceStop {
        /// A real server.
        host: HostId,
        /// One of its services.
        port: u16,
    },
    /// Start the service on `port` again.
    ServiceStart {
        /// A real server.
        host: HostId,
        /// One of its services.
        port: u16,
    },
    /// The host's clock runs fast (positive) or slow (negative) by `ppm` parts per million.
    ClockDrift {
        /// Any host.
        host: HostId,
        /// Drift in parts per million.
        ppm: f64,
    },
    /// From now on a script the director runs (a `vrrp_script`'s `script` or a MISC_CHECK's
    /// `misc_path`, as its keepalived.conf writes it) exits with `exit`.
    ScriptResult {
        /// A director.
        host: HostId,
        /// The command line, as configured.
        script: String,
        /// Its exit status.
        exit: u8,
    },
}

/// Where a link fault applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkTarget {
    /// Every frame on a segment.
    Segment(SegmentId),
    /// Every frame to or from any interface of a host.
    Host(HostId),
    /// Every frame to or from one interface.
    Iface(IfaceRef),
}

/// When to print what of which directors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// When.
    pub at: Duration,
    /// Which directors (all of them when the file names none).
    pub directors: Vec<HostId>,
    /// What to print of each, in the file's order (`ipvsadm -L -n` when it names nothing).
    pub show: Vec<Show>,
}

/// A command whose output a snapshot prints, as the operator would type it on the director.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Show {
    /// `ipvsadm -L -n`: services, destinations, weights, active / inactive connections.
    List,
    /// `ipvsadm -L -n --stats`: connections, packets and bytes since each was added.
    Stats,
    /// `ipvsadm -L -n --rate`: the kernel estimator's per-second rates.
    Rate,
    /// `ipvsadm -L -n -c`: the connection table.
    Connections,
    /// `ip addr`: the host's interfaces and addresses, VIPs included.
    Addresses,
}

impl Show {
    /// Every one, in the order they are listed.
    pub const ALL: [Show; 5] = [
        Show::List,
        Show::Stats,
        Show::Rate,
        Show::Connections,
        Show::Addresses,
    ];

    /// The command line.
    pub fn command(self) -> &'static str {
        match self {
            Show::List => "ipvsadm -L -n",
            Show::Stats => "ipvsadm -L -n --stats",
            Show::Rate => "ipvsadm -L -n --rate",
            Show::Connections => "ipvsadm -L -n -c",
            Show::Addresses => "ip addr",
        }
    }
}

impl std::str::FromStr for Show {
    type Err = ();

    /// Exactly one of the [`Show::command`] lines.
    fn from_str(s: &str) -> Result<Self, ()> {
        Show::ALL.into_iter().find(|v| v.command() == s).ok_or(())
    }
}

/// A VRRP state an instance can be expected in at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum VrrpState {
    /// Owns its VIPs.
    Master,
    /// Listens to a master.
    Backup,
    /// An interface or tracked object is down.
    Fault,
    /// keepalived is not running (killed or stopped).
    Stopped,
}

/// What the run must show at its end.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// Which director holds each VIP at the end.
    pub vip_owner: BTreeMap<IpAddr, HostId>,
    /// The state every VRRP instance of a director is in at the end.
    pub vrrp_state: BTreeMap<HostId, VrrpState>,
    /// The exact set of real servers in a director's IPVS table at the end.
    pub ipvs_destinations: BTreeMap<HostId, Vec<SocketAddr>>,
    /// Upper bound on failed requests over the whole run.
    pub max_failed_requests: Option<u64>,
    /// Lower bound on completed requests (so "no failure" is not won by sending nothing).
    pub min_completed_requests: Option<u64>,
    /// After a fault takes a VIP's owner away, some director holds the VIP again within this.
    pub failover_within: Option<Duration>,
    /// After the last fault, the cluster is stable (one owner per VIP, tables settled) within this.
    pub converge_within: Option<Duration>,
    /// Inclusive range of each real server's share of completed requests.
    pub share: BTreeMap<HostId, (f64, f64)>,
    /// Whether the safety invariants are checked at every event (default true).
    pub invariants: bool,
}

impl Scenario {
    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The host with id `id`.
    pub fn host_by_id(&self, id: HostId) -> Option<&Host> {
        self.hosts.get(id.0)
    }

    /// The interface `r` points at.
    pub fn interface(&self, r: IfaceRef) -> Option<&Interface> {
        self.hosts
            .get(r.host.0)
            .and_then(|h| h.interfaces.get(r.index))
    }

    /// The segment called `name`.
    pub fn segment(&self, name: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.name == name)
    }

    /// The directors, in file order.
    pub fn directors(&self) -> impl Iterator<Item = (&Host, &Director)> {
        self.hosts.iter().filter_map(|h| match &h.role {
            Role::Director(d) => Some((h, d)),
            _ => None,
        })
    }
}
