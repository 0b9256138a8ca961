//! From the raw TOML to a checked [`Scenario`]: names become ids, strings become durations and
//! addresses, keepalived.conf files are read in. The first problem found is returned.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::duration::{format_duration, parse_duration};
use crate::error::{Problem, ScenarioError};
use crate::model::*;
use crate::raw::*;

/// Seed used when the file gives none.
pub const DEFAULT_SEED: u64 = 1;
/// Segment latency when the file gives none (a switched LAN).
pub const DEFAULT_LATENCY: Duration = Duration::from_micros(100);
/// A real server's service time when the file gives none.
pub const DEFAULT_SERVICE_TIME: Duration = Duration::from_millis(5);
/// A real server's concurrent requests when the file gives none.
pub const DEFAULT_CAPACITY: u32 = 256;
/// Response bytes when the file gives none.
pub const DEFAULT_RESPONSE_SIZE: u32 = 1024;
/// Request bytes when the file gives none.
pub const DEFAULT_REQUEST_SIZE: u32 = 200;
/// The largest TCP `request_size`: one segment's payload at MTU 1500 (less the 20-byte IPv4
/// and TCP headers; the simulated segments carry no TCP options), as a client sends it.
pub const MAX_TCP_REQUEST_SIZE: u32 = 1460;
/// The largest UDP `request_size`: one datagram unfragmented at MTU 1500 (less the 20-byte
/// IPv4 and 8-byte UDP headers).
pub const MAX_UDP_REQUEST_SIZE: u32 = 1472;
/// The smallest UDP `request_size`: the 8 bytes of the request's id, which the answer echoes.
pub const MIN_UDP_REQUEST_SIZE: u32 = 8;
/// What an IPv6 header takes beyond an IPv4 one (40 bytes against 20), off each largest
/// `request_size` when the target is an IPv6 address.
pub const IPV6_EXTRA_HEADER: u32 = 20;
/// How long a UDP client waits for an answer: 1 s, the first try of a stub resolver
/// (systemd-resolved and Windows wait 1 s; glibc's `options timeout` is 5 s but a DNS
/// client that gives up on a silent server after 1 s is the common operator view).
pub const DEFAULT_UDP_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an SCTP client waits for its answer, handshake included: 10 s, an application's
/// request timeout that lets Linux's INIT go three times (at 0, 3 and 9 s, `rto_initial` 3 s
/// doubling) before the request is given up.
pub const DEFAULT_SCTP_TIMEOUT: Duration = Duration::from_secs(10);
/// A gateway's ARP cache lifetime when the file gives none.
pub const DEFAULT_ARP_CACHE_TIMEOUT: Duration = Duration::from_secs(60);

/// Load, check and resolve scenario text. `file` names the scenario in errors,
/// `base_dir` is where relative `keepalived_conf` paths start.
/// The longest scenario the simulator takes: 30 days of virtual time.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most requests a scenario's clients may send in all: at the simulator's few hundred
/// thousand requests per second (BENCHMARKS.md) about an hour of computing.
pub const MAX_REQUESTS: f64 = 1e9;
/// The most connections one client may hold open: the ephemeral ports Linux hands out by
/// default (`net.ipv4.ip_local_port_range` = 32768 60999).
pub const MAX_CONCURRENCY: u32 = 28_232;

/// An upper bound of the requests `w` starts: `rate` per second, or each closed-loop user
/// one per millisecond at best (plus its think time).
fn expected_requests(w: &Workload) -> f64 {
    let secs = w.stop.saturating_sub(w.start).as_secs_f64();
    match &w.pattern {
        LoadPattern::Open { rate } => rate * secs,
        LoadPattern::Closed {
            concurrency,
            think_time,
        } => f64::from(*concurrency) * secs / (think_time.as_secs_f64() + 1e-3),
    }
}

pub(crate) fn resolve(text: &str, file: &Path, base_dir: &Path) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(|source| ScenarioError::Parse {
        file: file.to_path_buf(),
        source,
    })?;
    let cx = Cx {
        text,
        file,
        base_dir,
    };
    cx.scenario(raw)
}

struct Cx<'a> {
    text: &'a str,
    file: &'a Path,
    base_dir: &'a Path,
}

type R<T> = Result<T, ScenarioError>;

fn role_name(r: RawRole) -> &'static str {
    match r {
        RawRole::Director => "director",
        RawRole::RealServer => "real_server",
        RawRole::Client => "client",
        RawRole::Gateway => "gateway",
    }
}

fn percent_to_prob(p: f64) -> Option<f64> {
    (0.0..=100.0).contains(&p).then_some(p / 100.0)
}

/// What the resolver knows about hosts while resolving the parts that refer to them.
struct HostIndex<'r> {
    names: Vec<&'r str>,
    roles: Vec<RawRole>,
    ifaces: Vec<Vec<&'r str>>,
    ports: Vec<Vec<u16>>,
    /// Per director, the scripts its keepalived.conf runs: `vrrp_script` `script` lines and
    /// MISC_CHECK `misc_path`s, as written.
    scripts: Vec<Vec<String>>,
}

/// What the `include`s of `text` (named `name`) read from disk, kept so that every later
/// parse sees the same files (a missing one is the parser's error, reported at start). The
/// host's scenario name is its config id (keepalived's default is the host name), which
/// `@NAME` lines are matched against.
fn included_files(name: &Path, text: &str, host: &str) -> lvs_core::config::FileSet {
    // A simulated keepalived runs as systemd starts it (in `/`), and its `${_RANDOM}` draws
    // are the host's own: seeded from its name, so a scenario reads the same every time.
    let disk = crate::fs::FsLoader {
        config_id: Some(host.to_string()),
        working_dir: None,
        random_seed: host.bytes().fold(0xcbf2_9ce4_8422_2325, |h: u64, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }),
    };
    let rec = lvs_core::config::Recording::new(&disk);
    lvs_core::config::parse_text(&name.display().to_string(), text, &rec);
    rec.into_files()
}

/// The scripts a keepalived.conf runs (`vrrp_script` `script` lines, MISC_CHECK `misc_path`s),
/// as written; a config that does not parse runs none (the director reports why at start).
fn scripts_of(conf: &KeepalivedConf) -> Vec<String> {
    let Some(c) = conf.parse().config else {
        return Vec::new();
    };
    let vrrp = c
        .vrrp_scripts
        .iter()
        .filter_map(|s| s.script.as_ref().map(|x| x.value.clone()));
    let misc = c
        .virtual_servers
        .iter()
        .flat_map(|v| &v.real_servers)
        .flat_map(|r| &r.checkers)
        .filter_map(|k| k.misc_path.as_ref().map(|x| x.value.clone()));
    vrrp.chain(misc).collect()
}

impl HostIndex<'_> {
    fn known(&self) -> String {
        self.names.join(", ")
    }
}

impl Cx<'_> {
    fn err(&self, span: Range<usize>, key: impl Into<String>, problem: Problem) -> ScenarioError {
        let start = span.start.min(self.text.len());
        let before = self.text.get(..start).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        ScenarioError::Invalid {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.into(),
            problem: Box::new(problem),
        }
    }

    fn duration(&self, v: &S<String>, key: &str) -> R<Duration> {
        parse_duration(v.get_ref()).map_err(|e| self.err(v.span(), key, e.into()))
    }

    /// A duration or `"LO..HI"` (LO not above HI).
    fn span(&self, v: &S<String>, key: &str) -> R<Span> {
        let text = v.get_ref();
        let Some((lo, hi)) = text.split_once("..") else {
            return Ok(Span::fixed(self.duration(v, key)?));
        };
        let part =
            |t: &str| parse_duration(t.trim()).map_err(|e| self.err(v.span(), key, e.into()));
        let (lo, hi) = (part(lo)?, part(hi)?);
        if lo > hi {
            return Err(self.err(v.span(), key, Problem::BackwardsSpan { text: text.clone() }));
        }
        Ok(Span { lo, hi })
    }

    /// `process = { start, wake, exit }`, each part defaulting to keepalived's.
    fn process(&self, p: Option<&S<RawProcess>>, key: &str) -> R<ProcessTiming> {
        let mut t = ProcessTiming::KEEPALIVED;
        let Some(p) = p else { return Ok(t) };
        let p = p.get_ref();
        for (v, name, slot) in [
            (&p.start, "start", &mut t.start),
            (&p.wake, "wake", &mut t.wake),
            (&p.exit, "exit", &mut t.exit),
        ] {
            if let Some(v) = v {
                *slot = self.span(v, &format!("{key}.{name}"))?;
            }
        }
        Ok(t)
    }

    fn opt_duration(&self, v: &Option<S<String>>, key: &str, default: Duration) -> R<Duration> {
        v.as_ref().map_or(Ok(default), |v| self.duration(v, key))
    }

    fn ipv4(&self, v: &S<String>, key: &str) -> R<Ipv4Addr> {
        self.addr(v.span(), v.get_ref(), key, "IPv4")
    }

    fn ipv6(&self, v: &S<String>, key: &str) -> R<Ipv6Addr> {
        self.addr(v.span(), v.get_ref(), key, "IPv6")
    }

    fn ip(&self, v: &S<String>, key: &str) -> R<IpAddr> {
        self.addr(v.span(), v.get_ref(), key, "IP")
    }

    /// `text` (at `span`) as an address of `family`, or the error naming both.
    fn addr<A: std::str::FromStr>(
        &self,
        span: Range<usize>,
        text: &str,
        key: &str,
        family: &'static str,
    ) -> R<A> {
        text.trim().parse().map_err(|_| {
            self.err(
                span,
                key,
                Problem::BadIp {
                    text: text.to_string(),
                    family,
                },
            )
        })
    }

    fn socket(&self, v: &S<String>, key: &str) -> R<SocketAddr> {
        v.get_ref().trim().parse().map_err(|_| {
            self.err(
                v.span(),
                key,
                Problem::BadSocketAddr {
                    text: v.get_ref().clone(),
                },
            )
        })
    }

    fn percent(&self, v: &S<f64>, key: &str) -> R<f64> {
        percent_to_prob(*v.get_ref()).ok_or_else(|| {
            self.err(
                v.span(),
                key,
                Problem::OutOfRange {
                    value: v.get_ref().to_string(),
                    range: "0 to 100 percent",
                },
            )
        })
    }

    fn not_after_end(&self, at: Duration, v: &S<String>, key: &str, end: &S<String>) -> R<()> {
        if at > self.end_duration(end) {
            return Err(self.err(
                v.span(),
                key,
                Problem::AfterEnd {
                    at: v.get_ref().clone(),
                    duration: end.get_ref().clone(),
                },
            ));
        }
        Ok(())
    }

    fn end_duration(&self, end: &S<String>) -> Duration {
        parse_duration(end.get_ref()).unwrap_or(Duration::MAX)
    }

    fn scenario(&self, raw: RawScenario) -> R<Scenario> {
        let duration = self.duration(&raw.duration, "duration")?;
        if duration.is_zero() {
            return Err(self.err(raw.duration.span(), "duration", Problem::ZeroDuration));
        }
        if duration > MAX_DURATION {
            return Err(self.err(
                raw.duration.span(),
                "duration",
                Problem::TooMuchWork {
                    what: format!(
                        "{} of virtual time is more than the cap of {} (every VRRP instance \
                         sends an advert per advert_int, so this alone is about {} events \
                         per instance at advert_int 1)",
                        format_duration(duration),
                        format_duration(MAX_DURATION),
                        duration.as_secs()
                    ),
                },
            ));
        }
        let segments = self.segments(&raw.segments)?;
        let hosts = self.hosts(&raw, &segments)?;
        let requests: f64 = hosts
            .iter()
            .filter_map(|h| match &h.role {
                Role::Client(c) => Some(expected_requests(&c.workload)),
                _ => None,
            })
            .sum();
        if requests > MAX_REQUESTS {
            return Err(self.err(
                raw.duration.span(),
                "duration",
                Problem::TooMuchWork {
                    what: format!(
                        "the clients would send about {requests:.3e} requests over {} \
                         (rate x time, or concurrency x time at 1 ms per request at best), \
                         more than the cap of {MAX_REQUESTS:.0e}: lower a rate, a \
                         concurrency or the duration",
                        format_duration(duration)
                    ),
                },
            ));
        }
        let index = HostIndex {
            names: raw
                .hosts
                .iter()
                .map(|h| h.get_ref().name.get_ref().as_str())
                .collect(),
            roles: raw
                .hosts
                .iter()
                .map(|h| *h.get_ref().role.get_ref())
                .collect(),
            ifaces: raw
                .hosts
                .iter()
                .map(|h| {
                    h.get_ref()
                        .interfaces
                        .iter()
                        .map(|i| i.get_ref().name.get_ref().as_str())
                        .collect()
                })
                .collect(),
            ports: hosts
                .iter()
                .map(|h| match &h.role {
                    Role::RealServer(rs) => rs.services.iter().map(|s| s.port).collect(),
                    _ => Vec::new(),
                })
                .collect(),
            scripts: hosts
                .iter()
                .map(|h| match &h.role {
                    Role::Director(d) => scripts_of(&d.keepalived_conf),
                    _ => Vec::new(),
                })
                .collect(),
        };
        let mut faults = Vec::with_capacity(raw.faults.len());
        for (i, f) in raw.faults.iter().enumerate() {
            faults.push(self.fault(i, f, &raw, &segments, &index)?);
        }
        // Stable: faults at one instant keep their file order.
        faults.sort_by_key(|f| f.at);
        let mut snapshots = Vec::with_capacity(raw.snapshots.len());
        for (i, s) in raw.snapshots.iter().enumerate() {
            snapshots.push(self.snapshot(i, s, &raw.duration, &index)?);
        }
        snapshots.sort_by_key(|s| s.at);
        let expect = match &raw.expect {
            Some(e) => self.expect(e, &index)?,
            None => Expect {
                vip_owner: BTreeMap::new(),
                vrrp_state: BTreeMap::new(),
                ipvs_destinations: BTreeMap::new(),
                max_failed_requests: None,
                min_completed_requests: None,
                failover_within: None,
                converge_within: None,
                share: BTreeMap::new(),
                invariants: true,
            },
        };
        Ok(Scenario {
            name: raw.name.into_inner(),
            description: raw.description,
            source: self.file.to_path_buf(),
            seed: raw.seed.map_or(DEFAULT_SEED, |s| *s.get_ref()),
            duration,
            segments,
            hosts,
            faults,
            snapshots,
            expect,
        })
    }

    fn segments(&self, raw: &[S<RawSegment>]) -> R<Vec<Segment>> {
        let mut out: Vec<Segment> = Vec::with_capacity(raw.len());
        for s in raw {
            let s = s.get_ref();
            let name = s.name.get_ref();
            let key = |k: &str| format!("segment[{name}].{k}");
            if out.iter().any(|o| &o.name == name) {
                return Err(self.err(
                    s.name.span(),
                    key("name"),
                    Problem::Duplicate {
                        what: "segment",
                        name: name.clone(),
                    },
                ));
            }
            let prob = |v: &Option<S<f64>>, k: &str| {
                v.as_ref().map_or(Ok(0.0), |v| self.percent(v, &key(k)))
            };
            out.push(Segment {
                name: name.clone(),
                latency: self.opt_duration(&s.latency, &key("latency"), DEFAULT_LATENCY)?,
                jitter: self.opt_duration(&s.jitter, &key("jitter"), Duration::ZERO)?,
                loss: prob(&s.loss_percent, "loss_percent")?,
                duplicate: prob(&s.duplicate_percent, "duplicate_percent")?,
                reorder: prob(&s.reorder_percent, "reorder_percent")?,
            });
        }
        Ok(out)
    }

    fn hosts(&self, raw: &RawScenario, segments: &[Segment]) -> R<Vec<Host>> {
        let mut out: Vec<Host> = Vec::with_capacity(raw.hosts.len());
        // Address and MAC → key of first use, to name both sides of a clash.
        let mut addrs: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
        let mut addrs6: BTreeMap<Ipv6Addr, String> = BTreeMap::new();
        let mut macs: BTreeMap<MacAddr, String> = BTreeMap::new();
        for (hi, h) in raw.hosts.iter().enumerate() {
            let id = HostId(hi);
            let span = h.span();
            let h = h.get_ref();
            let name = h.name.get_ref();
            let key = |k: &str| format!("host[{name}].{k}");
            if out.iter().any(|o| &o.name == name) {
                return Err(self.err(
                    h.name.span(),
                    key("name"),
                    Problem::Duplicate {
                        what: "host",
                        name: name.clone(),
                    },
                ));
            }
            if h.interfaces.is_empty() {
                return Err(self.err(span, key("interfaces"), Problem::NoInterfaces));
            }
            let mut interfaces: Vec<Interface> = Vec::with_capacity(h.interfaces.len());
            for (ii, itf) in h.interfaces.iter().enumerate() {
                let itf = itf.get_ref();
                let iname = itf.name.get_ref();
                let ikey = |k: &str| format!("host[{name}].interface[{iname}].{k}");
                if interfaces.iter().any(|o| &o.name == iname) {
                    return Err(self.err(
                        itf.name.span(),
                        ikey("name"),
                        Problem::Duplicate {
                            what: "interface",
                            name: iname.clone(),
                        },
                    ));
                }
                let seg = segments
                    .iter()
                    .position(|s| &s.name == itf.segment.get_ref())
                    .ok_or_else(|| {
                        self.err(
                            itf.segment.span(),
                            ikey("segment"),
                            Problem::UnknownSegment {
                                name: itf.segment.get_ref().clone(),
                                known: segments
                                    .iter()
                                    .map(|s| s.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            },
                        )
                    })?;
                let (addr, prefix_len) = parse_cidr(itf.ip.get_ref()).ok_or_else(|| {
                    self.err(
                        itf.ip.span(),
                        ikey("ip"),
                        Problem::BadCidr {
                            text: itf.ip.get_ref().clone(),
                        },
                    )
                })?;
                if let Some(other) = addrs.get(&addr) {
                    return Err(self.err(
                        itf.ip.span(),
                        ikey("ip"),
                        Problem::DuplicateAddress {
                            addr: addr.to_string(),
                            other: other.clone(),
                        },
                    ));
                }
                addrs.insert(addr, ikey("ip"));
                let (mac, mac_span) = match &itf.mac {
                    Some(m) => {
                        let mac: MacAddr = m.get_ref().parse().map_err(|()| {
                            self.err(
                                m.span(),
                                ikey("mac"),
                                Problem::BadMac {
                                    text: m.get_ref().clone(),
                                },
                            )
                        })?;
                        if mac.is_multicast() {
                            return Err(self.err(
                                m.span(),
                                ikey("mac"),
                                Problem::MulticastMac {
                                    mac: mac.to_string(),
                                },
                            ));
                        }
                        (mac, m.span())
                    }
                    None => {
                        let mac = MacAddr::derived(id, ii).ok_or_else(|| {
                            self.err(
                                itf.name.span(),
                                ikey("name"),
                                Problem::OutOfRange {
                                    value: ii.to_string(),
                                    range: "at most 256 interfaces per host",
                                },
                            )
                        })?;
                        (mac, itf.name.span())
                    }
                };
                if let Some(other) = macs.get(&mac) {
                    return Err(self.err(
                        mac_span,
                        ikey("mac"),
                        Problem::DuplicateMac {
                            mac: mac.to_string(),
                            other: other.clone(),
                        },
                    ));
                }
                macs.insert(mac, ikey("mac"));
                let addr6 = match &itf.ip6 {
                    Some(v) => {
                        let (a, p) = parse_cidr6(v.get_ref()).ok_or_else(|| {
                            self.err(
                                v.span(),
                                ikey("ip6"),
                                Problem::BadCidr {
                                    text: v.get_ref().clone(),
                                },
                            )
                        })?;
                        if let Some(other) = addrs6.get(&a) {
                            return Err(self.err(
                                v.span(),
                                ikey("ip6"),
                                Problem::DuplicateAddress {
                                    addr: a.to_string(),
                                    other: String::clone(other),
                                },
                            ));
                        }
                        addrs6.insert(a, ikey("ip6"));
                        Some((a, p))
                    }
                    None => None,
                };
                interfaces.push(Interface {
                    name: iname.clone(),
                    segment: SegmentId(seg),
                    addr,
                    prefix_len,
                    addr6,
                    mac,
                });
            }
            let gateway = match &h.gateway {
                Some(g) => {
                    let addr = self.ipv4(g, &key("gateway"))?;
                    if !interfaces.iter().any(|i| i.contains(addr)) {
                        return Err(self.err(
                            g.span(),
                            key("gateway"),
                            Problem::GatewayOffLink {
                                addr: addr.to_string(),
                            },
                        ));
                    }
                    Some(addr)
                }
                None => None,
            };
            let gateway6 = match &h.gateway6 {
                Some(g) => {
                    let addr = self.ipv6(g, &key("gateway6"))?;
                    if !interfaces.iter().any(|i| i.contains6(addr)) {
                        return Err(self.err(
                            g.span(),
                            key("gateway6"),
                            Problem::GatewayOffLink {
                                addr: addr.to_string(),
                            },
                        ));
                    }
                    Some(addr)
                }
                None => None,
            };
            let role = self.role(h, &key, raw)?;
            out.push(Host {
                id,
                name: name.clone(),
                interfaces,
                gateway,
                gateway6,
                role,
            });
        }
        Ok(out)
    }

    fn role(&self, h: &RawHost, key: &dyn Fn(&str) -> String, raw: &RawScenario) -> R<Role> {
        let role = *h.role.get_ref();
        let rname = role_name(role);
        // Every role-specific key present, with the role it belongs to.
        let owned: [(&str, RawRole, Option<Range<usize>>); 11] = [
            (
                "keepalived_conf",
                RawRole::Director,
                h.keepalived_conf.as_ref().map(S::span),
            ),
            (
                "keepalived_conf_inline",
                RawRole::Director,
                h.keepalived_conf_inline.as_ref().map(S::span),
            ),
            (
                "start_at",
                RawRole::Director,
                h.start_at.as_ref().map(S::span),
            ),
            (
                "process",
                RawRole::Director,
                h.process.as_ref().map(S::span),
            ),
            (
                "vips_on_lo",
                RawRole::RealServer,
                h.vips_on_lo.as_ref().map(S::span),
            ),
            (
                "arp_ignore",
                RawRole::RealServer,
                h.arp_ignore.as_ref().map(S::span),
            ),
            (
                "arp_announce",
                RawRole::RealServer,
                h.arp_announce.as_ref().map(S::span),
            ),
            (
                "tunnel",
                RawRole::RealServer,
                h.tunnel.as_ref().map(S::span),
            ),
            (
                "service",
                RawRole::RealServer,
                h.services.as_ref().map(S::span),
            ),
            (
                "workload",
                RawRole::Client,
                h.workload.as_ref().map(S::span),
            ),
            (
                "arp_cache_timeout",
                RawRole::Gateway,
                h.arp_cache_timeout.as_ref().map(S::span),
            ),
        ];
        for (k, owner, span) in owned {
            if let Some(span) = span {
                if owner != role {
                    return Err(self.err(
                        span,
                        key(k),
                        Problem::WrongRoleKey {
                            key_role: role_name(owner),
                            role: rname,
                        },
                    ));
                }
            }
        }
        Ok(match role {
            RawRole::Director => {
                let conf = match (&h.keepalived_conf, &h.keepalived_conf_inline) {
                    (Some(_), Some(b)) => {
                        return Err(self.err(
                            b.span(),
                            key("keepalived_conf_inline"),
                            Problem::Conflict {
                                a: "keepalived_conf",
                                b: "keepalived_conf_inline",
                            },
                        ))
                    }
                    (None, None) => {
                        return Err(self.err(
                            h.role.span(),
                            key("keepalived_conf"),
                            Problem::NeedOneOf {
                                a: "keepalived_conf",
                                b: "keepalived_conf_inline",
                            },
                        ))
                    }
                    (Some(path), None) => {
                        let full = self.base_dir.join(path.get_ref());
                        let text = crate::fs::read_bounded(&full).map_err(|e| {
                            self.err(
                                path.span(),
                                key("keepalived_conf"),
                                Problem::ConfRead {
                                    path: full.display().to_string(),
                                    error: e.to_string(),
                                },
                            )
                        })?;
                        let files = included_files(&full, &text, h.name.get_ref());
                        KeepalivedConf {
                            file_name: full,
                            text,
                            inline: false,
                            files,
                        }
                    }
                    (None, Some(text)) => {
                        let file_name = PathBuf::from(format!(
                            "{}#{}",
                            self.file.display(),
                            key("keepalived_conf_inline")
                        ));
                        let files = included_files(&file_name, text.get_ref(), h.name.get_ref());
                        KeepalivedConf {
                            file_name,
                            text: text.get_ref().clone(),
                            inline: true,
                            files,
                        }
                    }
                };
                let start_at = self.opt_duration(&h.start_at, &key("start_at"), Duration::ZERO)?;
                if let Some(s) = &h.start_at {
                    self.not_after_end(start_at, s, &key("start_at"), &raw.duration)?;
                }
                let process = self.process(h.process.as_ref(), &key("process"))?;
                Role::Director(Director {
                    keepalived_conf: conf,
                    start_at,
                    process,
                })
            }
            RawRole::RealServer => {
                let mut vips = Vec::new();
                if let Some(list) = &h.vips_on_lo {
                    for (i, v) in list.get_ref().iter().enumerate() {
                        vips.push(self.ip(v, &key(&format!("vips_on_lo[{i}]")))?);
                    }
                }
                let arp_ignore = match &h.arp_ignore {
                    Some(v) if !matches!(*v.get_ref(), 0..=3 | 8) => {
                        return Err(self.err(
                            v.span(),
                            key("arp_ignore"),
                            Problem::OutOfRange {
                                value: v.get_ref().to_string(),
                                range: "0, 1, 2, 3 or 8",
                            },
                        ))
                    }
                    Some(v) => *v.get_ref(),
                    None => 0,
                };
                let arp_announce = match &h.arp_announce {
                    Some(v) if *v.get_ref() > 2 => {
                        return Err(self.err(
                            v.span(),
                            key("arp_announce"),
                            Problem::OutOfRange {
                                value: v.get_ref().to_string(),
                                range: "0, 1 or 2",
                            },
                        ))
                    }
                    Some(v) => *v.get_ref(),
                    None => 0,
                };
                let tunnel = match &h.tunnel {
                    Some(t) => Some(t.get_ref().parse::<Decap>().map_err(|()| {
                        self.err(
                            t.span(),
                            key("tunnel"),
                            Problem::BadTunnel {
                                text: t.get_ref().clone(),
                            },
                        )
                    })?),
                    None => None,
                };
                let mut services: Vec<Service> = Vec::new();
                for (i, s) in h
                    .services
                    .iter()
                    .flat_map(|l| l.get_ref().iter())
                    .enumerate()
                {
                    let s = s.get_ref();
                    let port = *s.port.get_ref();
                    let skey = |k: &str| key(&format!("service[{i}].{k}"));
                    let protocol = transport(s.protocol.as_ref());
                    if services
                        .iter()
                        .any(|o| o.port == port && o.protocol == protocol)
                    {
                        return Err(self.err(
                            s.port.span(),
                            skey("port"),
                            Problem::Duplicate {
                                what: "service port",
                                name: port.to_string(),
                            },
                        ));
                    }
                    let capacity = match &s.capacity {
                        Some(c) if *c.get_ref() == 0 => {
                            return Err(self.err(
                                c.span(),
                                skey("capacity"),
                                Problem::OutOfRange {
                                    value: "0".into(),
                                    range: "at least 1",
                                },
                            ))
                        }
                        Some(c) => *c.get_ref(),
                        None => DEFAULT_CAPACITY,
                    };
                    services.push(Service {
                        protocol,
                        port,
                        service_time: self.opt_duration(
                            &s.service_time,
                            &skey("service_time"),
                            DEFAULT_SERVICE_TIME,
                        )?,
                        capacity,
                        response_size: s
                            .response_size
                            .as_ref()
                            .map_or(DEFAULT_RESPONSE_SIZE, |v| *v.get_ref()),
                    });
                }
                Role::RealServer(RealServer {
                    vips_on_lo: vips,
                    arp_ignore,
                    arp_announce,
                    tunnel,
                    services,
                })
            }
            RawRole::Client => {
                let w = h.workload.as_ref().ok_or_else(|| {
                    self.err(
                        h.role.span(),
                        key("workload"),
                        Problem::Missing { key: "workload" },
                    )
                })?;
                Role::Client(Client {
                    workload: self.workload(w, key, raw)?,
                })
            }
            RawRole::Gateway => Role::Gateway(Gateway {
                arp_cache_timeout: self.opt_duration(
                    &h.arp_cache_timeout,
                    &key("arp_cache_timeout"),
                    DEFAULT_ARP_CACHE_TIMEOUT,
                )?,
            }),
        })
    }

    fn workload(
        &self,
        w: &S<RawWorkload>,
        key: &dyn Fn(&str) -> String,
        raw: &RawScenario,
    ) -> R<Workload> {
        let span = w.span();
        let w = w.get_ref();
        let wkey = |k: &str| key(&format!("workload.{k}"));
        let target = self.socket(&w.target, &wkey("target"))?;
        let protocol = transport(w.protocol.as_ref());
        if protocol != Transport::Tcp && target.is_ipv6() {
            return Err(self.err(
                w.target.span(),
                wkey("target"),
                Problem::Unsupported {
                    what: "UDP and SCTP over IPv6",
                },
            ));
        }
        for (k, span, allowed, needs) in [
            (
                "timeout",
                w.timeout.as_ref().map(S::span),
                protocol != Transport::Tcp,
                "protocol = \"udp\" | \"sctp\"",
            ),
            (
                "source_port",
                w.source_port.as_ref().map(S::span),
                protocol == Transport::Udp,
                "protocol = \"udp\"",
            ),
        ] {
            if let (Some(span), false) = (span, allowed) {
                return Err(self.err(span, wkey(k), Problem::OnlyWith { needs }));
            }
        }
        let default_timeout = match protocol {
            Transport::Sctp => DEFAULT_SCTP_TIMEOUT,
            _ => DEFAULT_UDP_TIMEOUT,
        };
        let timeout = self.opt_duration(&w.timeout, &wkey("timeout"), default_timeout)?;
        if let Some(t) = w.timeout.as_ref().filter(|_| timeout.is_zero()) {
            return Err(self.err(
                t.span(),
                wkey("timeout"),
                Problem::OutOfRange {
                    value: t.get_ref().clone(),
                    range: "more than 0",
                },
            ));
        }
        if let Some(p) = w.source_port.as_ref().filter(|p| *p.get_ref() == 0) {
            return Err(self.err(
                p.span(),
                wkey("source_port"),
                Problem::OutOfRange {
                    value: p.get_ref().to_string(),
                    range: "1 to 65535",
                },
            ));
        }
        let pattern = match (&w.rate, &w.concurrency) {
            (Some(_), Some(c)) => {
                return Err(self.err(
                    c.span(),
                    wkey("concurrency"),
                    Problem::Conflict {
                        a: "rate",
                        b: "concurrency",
                    },
                ))
            }
            (None, None) => {
                return Err(self.err(
                    span,
                    wkey("rate"),
                    Problem::NeedOneOf {
                        a: "rate",
                        b: "concurrency",
                    },
                ))
            }
            (Some(r), None) => {
                let rate = *r.get_ref();
                if !(rate > 0.0 && rate.is_finite()) {
                    return Err(self.err(
                        r.span(),
                        wkey("rate"),
                        Problem::OutOfRange {
                            value: rate.to_string(),
                            range: "more than 0 requests per second",
                        },
                    ));
                }
                if let Some(t) = &w.think_time {
                    return Err(self.err(
                        t.span(),
                        wkey("think_time"),
                        Problem::OnlyWith {
                            needs: "concurrency",
                        },
                    ));
                }
                LoadPattern::Open { rate }
            }
            (None, Some(c)) => {
                let n = *c.get_ref();
                if n == 0 || n > MAX_CONCURRENCY {
                    return Err(self.err(
                        c.span(),
                        wkey("concurrency"),
                        Problem::OutOfRange {
                            value: n.to_string(),
                            range: "1 to 28232 (a client's ephemeral ports, 32768-60999 as Linux has them)",
                        },
                    ));
                }
                LoadPattern::Closed {
                    concurrency: *c.get_ref(),
                    think_time: self.opt_duration(
                        &w.think_time,
                        &wkey("think_time"),
                        Duration::ZERO,
                    )?,
                }
            }
        };
        let end = self.end_duration(&raw.duration);
        let start = self.opt_duration(&w.start, &wkey("start"), Duration::ZERO)?;
        if let Some(s) = &w.start {
            self.not_after_end(start, s, &wkey("start"), &raw.duration)?;
        }
        let stop = self.opt_duration(&w.stop, &wkey("stop"), end)?;
        if let Some(s) = &w.stop {
            self.not_after_end(stop, s, &wkey("stop"), &raw.duration)?;
            if start > stop {
                return Err(self.err(
                    s.span(),
                    wkey("stop"),
                    Problem::StartAfterStop {
                        start: format_duration(start),
                        stop: format_duration(stop),
                    },
                ));
            }
        }
        let v6 = target.is_ipv6();
        let (min, max, range) = match protocol {
            Transport::Tcp if v6 => (
                1,
                MAX_TCP_REQUEST_SIZE - IPV6_EXTRA_HEADER,
                "1 to 1440 bytes: a TCP request is sent in one segment, MTU 1500 less the IPv6 and TCP headers",
            ),
            Transport::Tcp => (
                1,
                MAX_TCP_REQUEST_SIZE,
                "1 to 1460 bytes: a TCP request is sent in one segment, MTU 1500 less the IPv4 and TCP headers",
            ),
            Transport::Udp if v6 => (
                MIN_UDP_REQUEST_SIZE,
                MAX_UDP_REQUEST_SIZE - IPV6_EXTRA_HEADER,
                "8 to 1452 bytes: a UDP request is one datagram unfragmented at MTU 1500 over IPv6, holding its 8-byte id",
            ),
            Transport::Udp => (
                MIN_UDP_REQUEST_SIZE,
                MAX_UDP_REQUEST_SIZE,
                "8 to 1472 bytes: a UDP request is one datagram unfragmented at MTU 1500, holding its 8-byte id",
            ),
            Transport::Sctp => (
                MIN_UDP_REQUEST_SIZE,
                MIN_UDP_REQUEST_SIZE,
                "8 bytes: an SCTP request is one DATA chunk holding its 8-byte id, other sizes are not modelled yet",
            ),
        };
        if let Some(v) = w
            .request_size
            .as_ref()
            .filter(|v| !(min..=max).contains(v.get_ref()))
        {
            return Err(self.err(
                v.span(),
                wkey("request_size"),
                Problem::OutOfRange {
                    value: v.get_ref().to_string(),
                    range,
                },
            ));
        }
        Ok(Workload {
            target,
            protocol,
            timeout,
            source_port: w.source_port.as_ref().map(|p| *p.get_ref()),
            pattern,
            request_size: w
                .request_size
                .as_ref()
                .map_or(DEFAULT_REQUEST_SIZE, |v| *v.get_ref()),
            start,
            stop,
        })
    }

    fn host_ref(&self, v: &S<String>, key: &str, ix: &HostIndex) -> R<HostId> {
        ix.names
            .iter()
            .position(|n| n == v.get_ref())
            .map(HostId)
            .ok_or_else(|| {
                self.err(
                    v.span(),
                    key,
                    Problem::UnknownHost {
                        name: v.get_ref().clone(),
                        known: ix.known(),
                    },
                )
            })
    }

    fn host_of_role(
        &self,
        v: &S<String>,
        key: &str,
        ix: &HostIndex,
        roles: &[RawRole],
        expected: &'static str,
    ) -> R<HostId> {
        let id = self.host_ref(v, key, ix)?;
        let actual = ix.roles.get(id.0).copied().unwrap_or(RawRole::Client);
        if !roles.contains(&actual) {
            return Err(self.err(
                v.span(),
                key,
                Problem::WrongRole {
                    host: v.get_ref().clone(),
                    expected,
                    actual: role_name(actual),
                },
            ));
        }
        Ok(id)
    }

    fn fault(
        &self,
        i: usize,
        f: &S<RawFault>,
        raw: &RawScenario,
        segments: &[Segment],
        ix: &HostIndex,
    ) -> R<Fault> {
        use RawFaultKind as K;
        let f = f.get_ref();
        let kind = *f.kind.get_ref();
        let kname = kind.name();
        let key = |k: &str| format!("fault[{i}].{k}");
        let at = self.duration(&f.at, &key("at"))?;
        self.not_after_end(at, &f.at, &key("at"), &raw.duration)?;

        // Which optional keys this kind takes; anything else present is an error.
        let takes: &[&str] = match kind {
            K::Kill | K::Stop | K::Pause | K::Resume | K::Restart => &["host"],
            K::NicDown | K::NicUp => &["host", "iface"],
            K::LinkLoss => &["segment", "host", "iface", "percent"],
            K::Latency => &["segment", "host", "iface", "latency", "jitter"],
            K::Partition => &["groups", "one_way"],
            K::Heal => &[],
            K::ServiceStop | K::ServiceStart => &["host", "port"],
            K::ClockDrift => &["host", "ppm"],
            K::ScriptResult => &["host", "script", "exit"],
        };
        let present: [(&str, Option<Range<usize>>); 12] = [
            ("host", f.host.as_ref().map(S::span)),
            ("iface", f.iface.as_ref().map(S::span)),
            ("segment", f.segment.as_ref().map(S::span)),
            ("percent", f.percent.as_ref().map(S::span)),
            ("latency", f.latency.as_ref().map(S::span)),
            ("jitter", f.jitter.as_ref().map(S::span)),
            ("groups", f.groups.as_ref().map(S::span)),
            ("one_way", f.one_way.as_ref().map(S::span)),
            ("port", f.port.as_ref().map(S::span)),
            ("ppm", f.ppm.as_ref().map(S::span)),
            ("script", f.script.as_ref().map(S::span)),
            ("exit", f.exit.as_ref().map(S::span)),
        ];
        for (k, span) in present {
            if let Some(span) = span {
                if !takes.contains(&k) {
                    return Err(self.err(span, key(k), Problem::NotForKind { kind: kname }));
                }
            }
        }
        let need = |k: &'static str| {
            self.err(
                f.kind.span(),
                key(k),
                Problem::KindNeeds {
                    kind: kname,
                    key: k,
                },
            )
        };
        let process_roles = [RawRole::Director, RawRole::RealServer];
        let process_host = || -> R<HostId> {
            let h = f.host.as_ref().ok_or_else(|| need("host"))?;
            self.host_of_role(
                h,
                &key("host"),
                ix,
                &process_roles,
                "director or real_server",
            )
        };
        let iface_of = |host: HostId, v: &S<String>| -> R<IfaceRef> {
            let names = ix.ifaces.get(host.0).map(Vec::as_slice).unwrap_or(&[]);
            names
                .iter()
                .position(|n| n == v.get_ref())
                .map(|index| IfaceRef { host, index })
                .ok_or_else(|| {
                    self.err(
                        v.span(),
                        key("iface"),
                        Problem::UnknownIface {
                            host: ix.names.get(host.0).copied().unwrap_or("").to_string(),
                            name: v.get_ref().clone(),
                            known: names.join(", "),
                        },
                    )
                })
        };
        let link_target = || -> R<LinkTarget> {
            match (&f.segment, &f.host) {
                (Some(_), Some(h)) => Err(self.err(
                    h.span(),
                    key("host"),
                    Problem::Conflict {
                        a: "segment",
                        b: "host",
                    },
                )),
                (Some(s), None) => {
                    if let Some(ifc) = &f.iface {
                        return Err(self.err(
                            ifc.span(),
                            key("iface"),
                            Problem::OnlyWith { needs: "host" },
                        ));
                    }
                    segments
                        .iter()
                        .position(|x| &x.name == s.get_ref())
                        .map(|p| LinkTarget::Segment(SegmentId(p)))
                        .ok_or_else(|| {
                            self.err(
                                s.span(),
                                key("segment"),
                                Problem::UnknownSegment {
                                    name: s.get_ref().clone(),
                                    known: segments
                                        .iter()
                                        .map(|x| x.name.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", "),
                                },
                            )
                        })
                }
                (None, Some(h)) => {
                    let host = self.host_ref(h, &key("host"), ix)?;
                    match &f.iface {
                        Some(ifc) => iface_of(host, ifc).map(LinkTarget::Iface),
                        None => Ok(LinkTarget::Host(host)),
                    }
                }
                (None, None) => Err(self.err(
                    f.kind.span(),
                    key("segment"),
                    Problem::NeedOneOf {
                        a: "segment",
                        b: "host",
                    },
                )),
            }
        };
        let action = match kind {
            K::Kill => FaultAction::Kill {
                host: process_host()?,
            },
            K::Stop => FaultAction::Stop {
                host: process_host()?,
            },
            K::Pause => FaultAction::Pause {
                host: process_host()?,
            },
            K::Resume => FaultAction::Resume {
                host: process_host()?,
            },
            K::Restart => FaultAction::Restart {
                host: process_host()?,
            },
            K::NicDown | K::NicUp => {
                let h = f.host.as_ref().ok_or_else(|| need("host"))?;
                let host = self.host_ref(h, &key("host"), ix)?;
                let iface = iface_of(host, f.iface.as_ref().ok_or_else(|| need("iface"))?)?;
                if kind == K::NicDown {
                    FaultAction::NicDown { iface }
                } else {
                    FaultAction::NicUp { iface }
                }
            }
            K::LinkLoss => {
                let target = link_target()?;
                let p = f.percent.as_ref().ok_or_else(|| need("percent"))?;
                FaultAction::LinkLoss {
                    target,
                    loss: self.percent(p, &key("percent"))?,
                }
            }
            K::Latency => {
                let target = link_target()?;
                let l = f.latency.as_ref().ok_or_else(|| need("latency"))?;
                let jitter = match &f.jitter {
                    Some(j) => Some(self.duration(j, &key("jitter"))?),
                    None => None,
                };
                FaultAction::Latency {
                    target,
                    latency: self.duration(l, &key("latency"))?,
                    jitter,
                }
            }
            K::Partition => {
                let g = f.groups.as_ref().ok_or_else(|| need("groups"))?;
                let one_way = f.one_way.as_ref().is_some_and(|v| *v.get_ref());
                let mut groups: Vec<Vec<HostId>> = Vec::new();
                let mut seen: Vec<HostId> = Vec::new();
                for (gi, group) in g.get_ref().iter().enumerate() {
                    let mut ids = Vec::new();
                    for (hi, h) in group.iter().enumerate() {
                        let k = key(&format!("groups[{gi}][{hi}]"));
                        let id = self.host_ref(h, &k, ix)?;
                        if seen.contains(&id) {
                            return Err(self.err(
                                h.span(),
                                k,
                                Problem::HostInTwoGroups {
                                    host: h.get_ref().clone(),
                                },
                            ));
                        }
                        seen.push(id);
                        ids.push(id);
                    }
                    if !ids.is_empty() {
                        groups.push(ids);
                    }
                }
                if groups.len() < 2 {
                    return Err(self.err(g.span(), key("groups"), Problem::PartitionGroups));
                }
                if one_way && groups.len() != 2 {
                    return Err(self.err(g.span(), key("groups"), Problem::OneWayGroups));
                }
                FaultAction::Partition { groups, one_way }
            }
            K::Heal => FaultAction::Heal,
            K::ServiceStop | K::ServiceStart => {
                let h = f.host.as_ref().ok_or_else(|| need("host"))?;
                let host =
                    self.host_of_role(h, &key("host"), ix, &[RawRole::RealServer], "real_server")?;
                let p = f.port.as_ref().ok_or_else(|| need("port"))?;
                let port = *p.get_ref();
                if !ix.ports.get(host.0).is_some_and(|ps| ps.contains(&port)) {
                    return Err(self.err(
                        p.span(),
                        key("port"),
                        Problem::UnknownPort {
                            host: h.get_ref().clone(),
                            port,
                        },
                    ));
                }
                if kind == K::ServiceStop {
                    FaultAction::ServiceStop { host, port }
                } else {
                    FaultAction::ServiceStart { host, port }
                }
            }
            K::ClockDrift => {
                let h = f.host.as_ref().ok_or_else(|| need("host"))?;
                let host = self.host_ref(h, &key("host"), ix)?;
                let p = f.ppm.as_ref().ok_or_else(|| need("ppm"))?;
                let ppm = *p.get_ref();
                if ppm.is_nan() || ppm.abs() > 100_000.0 {
                    return Err(self.err(
                        p.span(),
                        key("ppm"),
                        Problem::OutOfRange {
                            value: ppm.to_string(),
                            range: "-100000 to 100000 ppm",
                        },
                    ));
                }
                FaultAction::ClockDrift { host, ppm }
            }
            K::ScriptResult => {
                let h = f.host.as_ref().ok_or_else(|| need("host"))?;
                let host =
                    self.host_of_role(h, &key("host"), ix, &[RawRole::Director], "director")?;
                let sc = f.script.as_ref().ok_or_else(|| need("script"))?;
                let known = &ix.scripts[host.0];
                if !known.contains(sc.get_ref()) {
                    return Err(self.err(
                        sc.span(),
                        key("script"),
                        Problem::UnknownScript {
                            host: h.get_ref().clone(),
                            script: sc.get_ref().clone(),
                            known: if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            },
                        },
                    ));
                }
                let e = f.exit.as_ref().ok_or_else(|| need("exit"))?;
                let exit = u8::try_from(*e.get_ref()).map_err(|_| {
                    self.err(
                        e.span(),
                        key("exit"),
                        Problem::OutOfRange {
                            value: e.get_ref().to_string(),
                            range: "0 to 255",
                        },
                    )
                })?;
                FaultAction::ScriptResult {
                    host,
                    script: sc.get_ref().clone(),
                    exit,
                }
            }
        };
        Ok(Fault { at, action })
    }

    fn snapshot(
        &self,
        i: usize,
        s: &S<RawSnapshot>,
        end: &S<String>,
        ix: &HostIndex,
    ) -> R<Snapshot> {
        let s = s.get_ref();
        let key = |k: &str| format!("snapshot[{i}].{k}");
        let at = self.duration(&s.at, &key("at"))?;
        self.not_after_end(at, &s.at, &key("at"), end)?;
        let directors = match &s.directors {
            Some(list) => {
                let mut out = Vec::new();
                for (di, d) in list.iter().enumerate() {
                    out.push(self.host_of_role(
                        d,
                        &key(&format!("directors[{di}]")),
                        ix,
                        &[RawRole::Director],
                        "director",
                    )?);
                }
                out
            }
            None => ix
                .roles
                .iter()
                .enumerate()
                .filter(|(_, r)| **r == RawRole::Director)
                .map(|(i, _)| HostId(i))
                .collect(),
        };
        let mut show = Vec::new();
        for (si, text) in s.show.iter().flatten().enumerate() {
            let v = text.get_ref().parse::<Show>().map_err(|()| {
                self.err(
                    text.span(),
                    key(&format!("show[{si}]")),
                    Problem::BadShow {
                        text: text.get_ref().clone(),
                    },
                )
            })?;
            if !show.contains(&v) {
                show.push(v);
            }
        }
        if show.is_empty() {
            show.push(Show::List);
        }
        Ok(Snapshot {
            at,
            directors,
            show,
        })
    }

    fn expect(&self, e: &S<RawExpect>, ix: &HostIndex) -> R<Expect> {
        let e = e.get_ref();
        let dir = [RawRole::Director];
        let mut vip_owner = BTreeMap::new();
        if let Some(map) = &e.vip_owner {
            for (vip, owner) in map.get_ref() {
                let k = format!("expect.vip_owner.\"{vip}\"");
                let addr: IpAddr = self.addr(map.span(), vip, &k, "IP")?;
                vip_owner.insert(addr, self.host_of_role(owner, &k, ix, &dir, "director")?);
            }
        }
        let mut vrrp_state = BTreeMap::new();
        if let Some(map) = &e.vrrp_state {
            for (name, state) in map.get_ref() {
                let k = format!("expect.vrrp_state.{name}");
                let host =
                    self.host_of_role(&S::new(map.span(), name.clone()), &k, ix, &dir, "director")?;
                let st = match state.get_ref().as_str() {
                    "MASTER" => VrrpState::Master,
                    "BACKUP" => VrrpState::Backup,
                    "FAULT" => VrrpState::Fault,
                    "STOPPED" => VrrpState::Stopped,
                    other => {
                        return Err(self.err(
                            state.span(),
                            k,
                            Problem::BadState {
                                text: other.to_string(),
                            },
                        ))
                    }
                };
                vrrp_state.insert(host, st);
            }
        }
        let mut ipvs_destinations = BTreeMap::new();
        if let Some(map) = &e.ipvs_destinations {
            for (name, list) in map.get_ref() {
                let k = format!("expect.ipvs_destinations.{name}");
                let host =
                    self.host_of_role(&S::new(map.span(), name.clone()), &k, ix, &dir, "director")?;
                let mut dests = Vec::new();
                for (di, d) in list.get_ref().iter().enumerate() {
                    dests.push(self.socket(d, &format!("{k}[{di}]"))?);
                }
                dests.sort();
                ipvs_destinations.insert(host, dests);
            }
        }
        let mut share = BTreeMap::new();
        if let Some(map) = &e.share {
            for (name, range) in map.get_ref() {
                let k = format!("expect.share.{name}");
                let host = self.host_of_role(
                    &S::new(map.span(), name.clone()),
                    &k,
                    ix,
                    &[RawRole::RealServer],
                    "real_server",
                )?;
                match range.get_ref().as_slice() {
                    [lo, hi] if 0.0 <= *lo && lo <= hi && *hi <= 1.0 => {
                        share.insert(host, (*lo, *hi));
                    }
                    _ => return Err(self.err(range.span(), k, Problem::BadShare)),
                }
            }
        }
        let positive = |v: &Option<S<String>>, k: &str| -> R<Option<Duration>> {
            match v {
                None => Ok(None),
                Some(v) => {
                    let d = self.duration(v, k)?;
                    if d.is_zero() {
                        return Err(self.err(v.span(), k, Problem::ZeroDuration));
                    }
                    Ok(Some(d))
                }
            }
        };
        Ok(Expect {
            vip_owner,
            vrrp_state,
            ipvs_destinations,
            max_failed_requests: e.max_failed_requests.as_ref().map(|v| *v.get_ref()),
            min_completed_requests: e.min_completed_requests.as_ref().map(|v| *v.get_ref()),
            failover_within: positive(&e.failover_within, "expect.failover_within")?,
            converge_within: positive(&e.converge_within, "expect.converge_within")?,
            share,
            invariants: e.invariants.as_ref().is_none_or(|v| *v.get_ref()),
        })
    }
}

/// `a.b.c.d/len` with len in 0..=32.
/// `ADDR/LEN` for IPv6.
pub(crate) fn parse_cidr6(text: &str) -> Option<(Ipv6Addr, u8)> {
    let (addr, len) = text.trim().split_once('/')?;
    let addr: Ipv6Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    (len <= 128).then_some((addr, len))
}

pub(crate) fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = text.trim().split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    (len <= 32).then_some((addr, len))
}

/// The transport a `protocol` key names (TCP when there is none).
fn transport(p: Option<&S<RawTransport>>) -> Transport {
    match p.map(|p| *p.get_ref()) {
        Some(RawTransport::Udp) => Transport::Udp,
        Some(RawTransport::Sctp) => Transport::Sctp,
        Some(RawTransport::Tcp) | None => Transport::Tcp,
    }
}
