//! The scheduler-trace format: what `fixtures/traces/*.trace` are written in and `lvsd
//! schedule` replays (its `--help` documents the commands). One command a line; `#` starts a
//! comment, and a comment reading `-> RIP:PORT` (or `-> none`) on a `conn` line is the pick
//! the trace expects.
//!
//! This module only reads: [`parse`] yields one [`TraceLine`] per command, or a
//! [`TraceError`] naming the line; bad input never panics. Replaying is the caller's (the
//! daemon drives a whole [`Ipvs`](crate::ipvs::table::Ipvs), the scheduler tests one
//! [`Service`](crate::ipvs::service::Service)).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::dest::{Dest, DestSpec};
use super::sched::{SchedFlags, SchedKind};
use super::service::ServiceSpec;
use super::{FwdMethod, Protocol, ServiceKey, SockAddr, TunnelType};
use crate::time::{parse_duration, DurationProblem};

/// A trace line that cannot be read or replayed: `LINE: why`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}: {message}")]
pub struct TraceError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// One command of a trace, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    /// 1-based line number.
    pub line: usize,
    /// The command.
    pub command: Command,
    /// The comment after `#`, trimmed, if any.
    pub note: Option<String>,
}

impl TraceLine {
    /// The pick the comment expects (`# -> RIP:PORT` or `# -> none`), if it says one.
    pub fn expected(&self) -> Option<&str> {
        self.note
            .as_deref()
            .and_then(|n| n.strip_prefix("-> "))
            .map(str::trim)
    }

    /// A [`TraceError`] for this line.
    pub fn error(&self, message: impl Into<String>) -> TraceError {
        TraceError {
            line: self.line,
            message: message.into(),
        }
    }
}

/// A trace command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `service PROTO VIP:PORT SCHED [flags F,..] [persistent SECS [netmask MASK]]` (`ipvsadm -A`).
    Service(ServiceSpec),
    /// `edit-service PROTO VIP:PORT SCHED [flags F,..] [persistent SECS [netmask MASK]]`
    /// (`ipvsadm -E`): the whole new setting, what is not given is reset (no flags, no
    /// persistence), as ipvsadm -E resets it; the service becomes the current one.
    EditService(ServiceSpec),
    /// `dest` (`ipvsadm -a`) or `edit` (`ipvsadm -e`).
    Dest(DestCmd),
    /// `del RIP:PORT [to VIP:PORT]` (`ipvsadm -d`).
    Del {
        /// The destination.
        dest: SockAddr,
        /// The service named with `to`, else the current one.
        to: Option<SockAddr>,
    },
    /// `conn CLIENT:PORT [close] [to VIP:PORT]`: a new connection.
    Conn {
        /// The client.
        client: SockAddr,
        /// It closes at once and stays inactive.
        close: bool,
        /// The service named with `to`, else the current one.
        to: Option<SockAddr>,
    },
    /// `time +N[ms|s|m|h]`: let time pass.
    Time(Duration),
    /// `set TCP TCPFIN UDP` (`ipvsadm --set`, 0 keeps a value).
    Set {
        /// ESTABLISHED timeout.
        tcp: u32,
        /// FIN_WAIT timeout.
        tcpfin: u32,
        /// UDP timeout.
        udp: u32,
    },
}

/// A `dest` or `edit` line: what it gives; the rest keeps its value (edit) or default (dest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestCmd {
    /// `edit` rather than `dest`.
    pub edit: bool,
    /// The destination.
    pub dest: SockAddr,
    /// `weight N`.
    pub weight: Option<i32>,
    /// `method dr|nat|tun`.
    pub fwd: Option<FwdMethod>,
    /// `uthreshold N`.
    pub u_threshold: Option<u32>,
    /// `lthreshold N`.
    pub l_threshold: Option<u32>,
    /// The service named with `to`, else the current one.
    pub to: Option<SockAddr>,
}

impl DestCmd {
    /// The verb as written.
    pub fn verb(&self) -> &'static str {
        if self.edit {
            "edit"
        } else {
            "dest"
        }
    }

    /// The destination settings: what the line gives, else `old`'s (an edit), else the
    /// defaults (weight 1, direct routing, no thresholds).
    pub fn spec(&self, old: Option<&Dest>) -> DestSpec {
        DestSpec {
            addr: self.dest.0,
            port: self.dest.1,
            fwd: self.fwd.or(old.map(|d| d.fwd)).unwrap_or(FwdMethod::Route),
            weight: self.weight.or(old.map(|d| d.weight)).unwrap_or(1),
            u_threshold: self.u_threshold.or(old.map(|d| d.u_threshold)).unwrap_or(0),
            l_threshold: self.l_threshold.or(old.map(|d| d.l_threshold)).unwrap_or(0),
        }
    }
}

/// The commands of `text`, in order; each item is a command or the error of its line.
pub fn parse(text: &str) -> impl Iterator<Item = Result<TraceLine, TraceError>> + '_ {
    text.lines().enumerate().filter_map(|(n, raw)| {
        let (code, note) = match raw.split_once('#') {
            Some((c, k)) => (c, Some(k.trim().to_string())),
            None => (raw, None),
        };
        let words: Vec<&str> = code.split_whitespace().collect();
        if words.is_empty() {
            return None;
        }
        Some(
            command(&words)
                .map(|command| TraceLine {
                    line: n + 1,
                    command,
                    note,
                })
                .map_err(|message| TraceError {
                    line: n + 1,
                    message,
                }),
        )
    })
}

/// The duration of `time +N[ms|s|m|h]`: a bare number is seconds; any form
/// [`parse_duration`] reads (`1.5s`, `1m30s`) is accepted too.
pub fn parse_time(s: &str) -> Result<Duration, String> {
    let bad = || format!("time wants +N[ms|s|m|h], got `{s}`");
    let body = s.strip_prefix('+').ok_or_else(bad)?;
    if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        return body
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1_000_000_000))
            .map(Duration::from_nanos)
            .ok_or_else(|| format!("time `{s}` is too large"));
    }
    parse_duration(body).map_err(|e| match e.reason {
        DurationProblem::TooLarge => format!("time `{s}` is too large"),
        _ => bad(),
    })
}

fn command(w: &[&str]) -> Result<Command, String> {
    match w {
        ["service", rest @ ..] => service(rest).map(Command::Service),
        ["edit-service", rest @ ..] => service(rest).map(Command::EditService),
        ["dest", rest @ ..] => dest(rest, false).map(Command::Dest),
        ["edit", rest @ ..] => dest(rest, true).map(Command::Dest),
        ["del", addr, rest @ ..] => {
            let dest = sockaddr(addr)?;
            let (to, rest) = target(rest)?;
            if let Some(x) = rest.first() {
                return Err(format!("unexpected `{x}` after del"));
            }
            Ok(Command::Del { dest, to })
        }
        ["conn", client, rest @ ..] => {
            let client = sockaddr(client)?;
            let (to, rest) = target(rest)?;
            let close = match rest {
                [] => false,
                ["close"] => true,
                [x, ..] => return Err(format!("unexpected `{x}` in conn line")),
            };
            Ok(Command::Conn { client, close, to })
        }
        ["time", d] => parse_time(d).map(Command::Time),
        ["set", t, f, u] => Ok(Command::Set {
            tcp: number("tcp", Some(t))?,
            tcpfin: number("tcpfin", Some(f))?,
            udp: number("udp", Some(u))?,
        }),
        [cmd, ..] => Err(format!("unknown or incomplete command `{cmd}`")),
        [] => Err("empty command".to_string()),
    }
}

fn sockaddr(s: &str) -> Result<SockAddr, String> {
    let a: SocketAddr = s
        .parse()
        .map_err(|_| format!("`{s}` is not ADDR:PORT (IPv6 as [ADDR]:PORT)"))?;
    Ok(SockAddr(a.ip(), a.port()))
}

fn number<T: std::str::FromStr>(what: &str, s: Option<&&str>) -> Result<T, String> {
    let s = s.ok_or_else(|| format!("`{what}` needs a value"))?;
    s.parse()
        .map_err(|_| format!("`{what}` wants a number, got `{s}`"))
}

/// A netmask as a prefix length: `24` or `255.255.255.0`.
fn netmask_prefix(s: &str) -> Result<u8, String> {
    if let Ok(p) = s.parse::<u8>() {
        if p <= 128 {
            return Ok(p);
        }
    }
    let ip: IpAddr = s.parse().map_err(|_| format!("`{s}` is not a netmask"))?;
    let (bits, width) = match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    };
    let ones = bits.leading_ones();
    if bits.checked_shl(ones).unwrap_or(0) != 0 || ones > width {
        return Err(format!("netmask `{s}` is not contiguous"));
    }
    Ok(ones as u8)
}

/// `to VIP:PORT` at the end of a line, and the words before it.
fn target<'a>(w: &'a [&'a str]) -> Result<(Option<SockAddr>, &'a [&'a str]), String> {
    let Some(pos) = w.iter().position(|x| *x == "to") else {
        return Ok((None, w));
    };
    let Some(addr) = w.get(pos + 1) else {
        return Err("`to` needs VIP:PORT".to_string());
    };
    if let Some(x) = w.get(pos + 2) {
        return Err(format!("unexpected `{x}` after `to {addr}`"));
    }
    Ok((Some(sockaddr(addr)?), &w[..pos]))
}

fn service(w: &[&str]) -> Result<ServiceSpec, String> {
    let [proto, addr, sched, rest @ ..] = w else {
        return Err("service needs PROTO VIP:PORT SCHEDULER".to_string());
    };
    let proto = match *proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        p => return Err(format!("unknown protocol `{p}` (tcp, udp or sctp)")),
    };
    let SockAddr(a, p) = sockaddr(addr)?;
    let mut flags = SchedFlags::default();
    let mut persistence = None;
    let mut netmask = if a.is_ipv4() { 32 } else { 128 };
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            "flags" => {
                let v = rest.get(i + 1).ok_or("`flags` needs a value")?;
                for f in v.split(',') {
                    match f {
                        "sh-fallback" | "mh-fallback" => flags.fallback = true,
                        "sh-port" | "mh-port" => flags.port = true,
                        other => return Err(format!("unknown scheduler flag `{other}`")),
                    }
                }
            }
            "persistent" => persistence = Some(number("persistent", rest.get(i + 1))?),
            "netmask" => {
                let v = rest.get(i + 1).ok_or("`netmask` needs a value")?;
                netmask = netmask_prefix(v)?;
            }
            other => return Err(format!("unexpected `{other}` in service line")),
        }
        i += 2;
    }
    // Named last, as `ipvsadm -A` refuses an unknown scheduler only once the line is read.
    let scheduler: SchedKind = sched.parse().map_err(|e| format!("service: {e}"))?;
    Ok(ServiceSpec {
        key: ServiceKey::Inet {
            proto,
            addr: a,
            port: p,
        },
        scheduler,
        flags,
        persistence,
        netmask_prefix: netmask,
        one_packet: false,
    })
}

fn dest(w: &[&str], edit: bool) -> Result<DestCmd, String> {
    let verb = if edit { "edit" } else { "dest" };
    let [addr, rest @ ..] = w else {
        return Err(format!("{verb} needs RIP:PORT"));
    };
    let dest = sockaddr(addr)?;
    let (to, rest) = target(rest)?;
    let mut cmd = DestCmd {
        edit,
        dest,
        weight: None,
        fwd: None,
        u_threshold: None,
        l_threshold: None,
        to,
    };
    let mut i = 0;
    while i < rest.len() {
        let v = rest.get(i + 1);
        match rest[i] {
            "weight" => cmd.weight = Some(number("weight", v)?),
            "uthreshold" => cmd.u_threshold = Some(number("uthreshold", v)?),
            "lthreshold" => cmd.l_threshold = Some(number("lthreshold", v)?),
            "method" => {
                cmd.fwd = Some(match v.copied() {
                    Some("dr") => FwdMethod::Route,
                    Some("nat") => FwdMethod::Masq,
                    Some("tun") => FwdMethod::Tunnel(TunnelType::Ipip),
                    Some(m) => return Err(format!("unknown method `{m}` (dr, nat or tun)")),
                    None => return Err("`method` needs a value".to_string()),
                })
            }
            other => return Err(format!("unexpected `{other}` in {verb} line")),
        }
        i += 2;
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<Command, TraceError> {
        parse(text).next().expect("a command").map(|l| l.command)
    }

    fn err(text: &str) -> String {
        match parse(text).find_map(Result::err) {
            Some(e) => e.to_string(),
            None => panic!("{text:?} parsed"),
        }
    }

    #[test]
    fn time_takes_every_form_it_took_and_never_panics() {
        let t = |s: &str| parse_time(s);
        assert_eq!(t("+5"), Ok(Duration::from_secs(5)));
        assert_eq!(t("+5s"), Ok(Duration::from_secs(5)));
        assert_eq!(t("+500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(t("+2m"), Ok(Duration::from_secs(120)));
        assert_eq!(t("+1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(t("+1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(t("+1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(t("5s"), Err("time wants +N[ms|s|m|h], got `5s`".into()));
        assert_eq!(t("+xs"), Err("time wants +N[ms|s|m|h], got `+xs`".into()));
        assert_eq!(t("+"), Err("time wants +N[ms|s|m|h], got `+`".into()));
        assert_eq!(
            t("+99999999999999999999"),
            Err("time `+99999999999999999999` is too large".into())
        );
        assert_eq!(
            t("+99999999999h"),
            Err("time `+99999999999h` is too large".into())
        );
    }

    #[test]
    fn lines_parse_to_commands_with_their_number_and_note() {
        let text = "# comment\n\nservice tcp 10.0.0.1:80 sh flags sh-port,sh-fallback persistent 30 netmask 255.255.255.0\ndest 10.0.0.11:80 weight 3 method nat\nconn 192.0.2.1:5 close # -> 10.0.0.11:80\ntime +500ms\nset 60 30 0\n";
        let lines: Vec<TraceLine> = parse(text).collect::<Result<_, _>>().expect("parses");
        assert_eq!(
            lines.iter().map(|l| l.line).collect::<Vec<_>>(),
            [3, 4, 5, 6, 7]
        );
        let Command::Service(s) = &lines[0].command else {
            panic!("{:?}", lines[0]);
        };
        assert_eq!(s.scheduler, SchedKind::Sh);
        assert_eq!((s.flags.fallback, s.flags.port), (true, true));
        assert_eq!((s.persistence, s.netmask_prefix), (Some(30), 24));
        let Command::Dest(d) = &lines[1].command else {
            panic!("{:?}", lines[1]);
        };
        let spec = d.spec(None);
        assert_eq!(
            (spec.weight, spec.fwd, spec.u_threshold),
            (3, FwdMethod::Masq, 0)
        );
        assert_eq!(lines[2].expected(), Some("10.0.0.11:80"));
        assert_eq!(lines[3].command, Command::Time(Duration::from_millis(500)));
        assert_eq!(
            lines[4].command,
            Command::Set {
                tcp: 60,
                tcpfin: 30,
                udp: 0
            }
        );
    }

    #[test]
    fn edit_service_reads_as_service_does() {
        let Ok(Command::EditService(s)) =
            one("edit-service tcp 10.0.0.1:80 sh flags sh-port persistent 60")
        else {
            panic!("edit-service parses");
        };
        assert_eq!(s.scheduler, SchedKind::Sh);
        assert_eq!(
            (s.flags.port, s.flags.fallback, s.persistence),
            (true, false, Some(60))
        );
        let Ok(Command::EditService(s)) = one("edit-service udp 10.0.0.1:53 rr") else {
            panic!("edit-service parses");
        };
        assert_eq!((s.scheduler, s.persistence), (SchedKind::Rr, None));
        assert_eq!(
            err("edit-service tcp 10.0.0.1:80"),
            "1: service needs PROTO VIP:PORT SCHEDULER"
        );
    }

    #[test]
    fn an_edit_keeps_what_it_does_not_give() {
        let Ok(Command::Dest(d)) = one("edit 10.0.0.11:80 weight 0") else {
            panic!("edit parses");
        };
        let old = Dest::new(&DestSpec {
            addr: d.dest.0,
            port: 80,
            fwd: FwdMethod::Masq,
            weight: 4,
            u_threshold: 7,
            l_threshold: 2,
        });
        let spec = d.spec(Some(&old));
        assert_eq!(
            (spec.weight, spec.fwd, spec.u_threshold, spec.l_threshold),
            (0, FwdMethod::Masq, 7, 2)
        );
    }

    #[test]
    fn malformed_lines_name_the_line_and_the_problem() {
        assert_eq!(
            err("service tcp 10.0.0.1 rr"),
            "1: `10.0.0.1` is not ADDR:PORT (IPv6 as [ADDR]:PORT)"
        );
        assert_eq!(
            err("\nservice icmp 10.0.0.1:80 rr"),
            "2: unknown protocol `icmp` (tcp, udp or sctp)"
        );
        assert_eq!(
            err("service tcp 10.0.0.1:80 nosuch"),
            "1: service: Scheduler not found: nosuch"
        );
        assert_eq!(
            err("dest 10.0.0.11:80 weight x"),
            "1: `weight` wants a number, got `x`"
        );
        assert_eq!(err("dest 10.0.0.11:80 weight"), "1: `weight` needs a value");
        assert_eq!(
            err("frobnicate"),
            "1: unknown or incomplete command `frobnicate`"
        );
        assert_eq!(err("set 1 2"), "1: unknown or incomplete command `set`");
        assert_eq!(err("time"), "1: unknown or incomplete command `time`");
        assert_eq!(err("conn 192.0.2.1:1 to"), "1: `to` needs VIP:PORT");
        assert_eq!(
            err("conn 192.0.2.1:1 to 10.0.0.1:80 close"),
            "1: unexpected `close` after `to 10.0.0.1:80`"
        );
        assert_eq!(
            err("conn 192.0.2.1:1 open"),
            "1: unexpected `open` in conn line"
        );
        assert_eq!(
            err("service tcp 10.0.0.1:80 rr persistent 30 netmask 255.0.255.0"),
            "1: netmask `255.0.255.0` is not contiguous"
        );
        assert_eq!(
            err("dest 10.0.0.11:80 method gre"),
            "1: unknown method `gre` (dr, nat or tun)"
        );
        assert_eq!(
            err("service tcp 10.0.0.1:80 rr flags sh-fast"),
            "1: unknown scheduler flag `sh-fast`"
        );
    }

    #[test]
    fn netmask_forms() {
        assert_eq!(netmask_prefix("255.255.255.0"), Ok(24));
        assert_eq!(netmask_prefix("24"), Ok(24));
        assert_eq!(netmask_prefix("ffff:ffff::"), Ok(32));
        assert!(netmask_prefix("255.0.255.0").is_err());
        assert!(netmask_prefix("mask").is_err());
    }
}
