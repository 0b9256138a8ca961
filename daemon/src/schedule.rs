//! `lvsd schedule TRACE`: replay a scheduler trace through `lvs-core`'s IPVS
//! model, with no root and no kernel, and print what IPVS would do.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use lvs_core::ipvs::conn::TcpFlags;
use lvs_core::ipvs::sched::SchedFlags;
use lvs_core::ipvs::service::{DestSpec, ServiceSpec};
use lvs_core::ipvs::table::{Ipvs, IpvsOptions, PacketInfo, Verdict};
use lvs_core::ipvs::{FwdMethod, Protocol, ServiceKey, TunnelType};
use lvs_core::Instant;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

const TRACE_HELP: &str = "\
TRACE is text, one command a line; `#` starts a comment.

  service tcp|udp|sctp VIP:PORT SCHED [flags F1,F2] [persistent SECS [netmask MASK]]
        like ipvsadm -A; flags: sh-fallback, sh-port, mh-fallback, mh-port.
        The last `service` line is the current service.
  dest RIP:PORT [weight N] [method dr|nat|tun] [uthreshold N] [lthreshold N] [to VIP:PORT]
        like ipvsadm -a (defaults: weight 1, method dr).
  edit RIP:PORT [weight N] [method ...] [uthreshold N] [lthreshold N] [to VIP:PORT]
        like ipvsadm -e; what is not given keeps its value.
  del RIP:PORT [to VIP:PORT]
        like ipvsadm -d.
  conn CLIENT:PORT [close] [to VIP:PORT]
        a new connection from CLIENT to the current service (or to VIP:PORT).
        TCP: SYN then ACK, so it stays ESTABLISHED; with `close` it also
        closes at once (FIN exchange) and stays inactive until it expires.
        UDP/SCTP: one datagram. Prints `CLIENT -> RIP:PORT` or `CLIENT -> none`.
  time +N[ms|s|m|h]
        let time pass (connection timeouts, persistence expiry).
  set TCP TCPFIN UDP
        like ipvsadm --set (0 keeps a value).

At the end the table is printed as `ipvsadm -L -n` prints it.
A malformed line is an error naming the line; the exit status is then 2.";

/// Arguments of `lvsd schedule`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = TRACE_HELP)]
pub struct Args {
    /// The trace file (see --help for its format).
    pub trace: PathBuf,
    /// Seed of the RNG handed to randomised schedulers (twos).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Set the expire_nodest_conn sysctl.
    #[arg(long)]
    pub expire_nodest_conn: bool,
    /// Set the expire_quiescent_template sysctl.
    #[arg(long)]
    pub expire_quiescent_template: bool,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.trace)
        .with_context(|| format!("cannot read {}", args.trace.display()))?;
    let opts = IpvsOptions {
        expire_nodest_conn: args.expire_nodest_conn,
        expire_quiescent_template: args.expire_quiescent_template,
        ..IpvsOptions::default()
    };
    let out = replay(&text, args.seed, opts)
        .map_err(|e| anyhow::anyhow!("{}:{:#}", args.trace.display(), e))?;
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// Replay a trace; the error names the line (`LINE: why`).
pub fn replay(text: &str, seed: u64, opts: IpvsOptions) -> anyhow::Result<String> {
    let mut st = Replay {
        ipvs: Ipvs::new(opts, seed),
        rng: ChaCha8Rng::seed_from_u64(seed),
        now: Instant::ZERO,
        current: None,
        out: String::new(),
    };
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        st.command(&words).with_context(|| format!("{}", n + 1))?;
    }
    st.ipvs.handle_timeout(st.now);
    st.out.push('\n');
    st.out
        .push_str(&lvs_core::ipvs::list::list_numeric(st.ipvs.services()));
    Ok(st.out)
}

struct Replay {
    ipvs: Ipvs,
    rng: ChaCha8Rng,
    now: Instant,
    current: Option<ServiceKey>,
    out: String,
}

fn sockaddr(s: &str) -> anyhow::Result<(IpAddr, u16)> {
    let a: SocketAddr = s
        .parse()
        .map_err(|_| anyhow::anyhow!("`{s}` is not ADDR:PORT (IPv6 as [ADDR]:PORT)"))?;
    Ok((a.ip(), a.port()))
}

fn number<T: std::str::FromStr>(what: &str, s: Option<&&str>) -> anyhow::Result<T> {
    let s = s.with_context(|| format!("`{what}` needs a value"))?;
    s.parse()
        .map_err(|_| anyhow::anyhow!("`{what}` wants a number, got `{s}`"))
}

fn netmask_prefix(s: &str) -> anyhow::Result<u8> {
    if let Ok(p) = s.parse::<u8>() {
        if p <= 128 {
            return Ok(p);
        }
    }
    let ip: IpAddr = s
        .parse()
        .map_err(|_| anyhow::anyhow!("`{s}` is not a netmask"))?;
    let (bits, width) = match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    };
    let ones = bits.leading_ones();
    if bits.checked_shl(ones).unwrap_or(0) != 0 || ones > width {
        bail!("netmask `{s}` is not contiguous");
    }
    Ok(ones as u8)
}

impl Replay {
    fn command(&mut self, w: &[&str]) -> anyhow::Result<()> {
        match w {
            ["service", rest @ ..] => self.service(rest),
            ["dest", rest @ ..] => self.dest(rest, false),
            ["edit", rest @ ..] => self.dest(rest, true),
            ["del", addr, rest @ ..] => {
                let (a, p) = sockaddr(addr)?;
                let (svc, rest) = self.target(rest)?;
                if let Some(x) = rest.first() {
                    bail!("unexpected `{x}` after del");
                }
                self.ipvs
                    .del_dest(&svc, a, p)
                    .map_err(|e| anyhow::anyhow!("del: {e}"))
            }
            ["conn", client, rest @ ..] => self.conn(client, rest),
            ["time", d] => {
                self.now += duration(d)?;
                self.ipvs.handle_timeout(self.now);
                Ok(())
            }
            ["set", t, f, u] => {
                self.ipvs.set_timeouts(
                    number("tcp", Some(t))?,
                    number("tcpfin", Some(f))?,
                    number("udp", Some(u))?,
                );
                Ok(())
            }
            [cmd, ..] => bail!("unknown or incomplete command `{cmd}`"),
            [] => Ok(()),
        }
    }

    /// `to VIP:PORT` at the end of a line, else the current service.
    fn target<'a>(&self, w: &'a [&'a str]) -> anyhow::Result<(ServiceKey, &'a [&'a str])> {
        if let Some(pos) = w.iter().position(|x| *x == "to") {
            let Some(addr) = w.get(pos + 1) else {
                bail!("`to` needs VIP:PORT");
            };
            if w.len() > pos + 2 {
                bail!("unexpected `{}` after `to {addr}`", w[pos + 2]);
            }
            let (a, p) = sockaddr(addr)?;
            let key = self
                .ipvs
                .services()
                .map(|s| s.spec().key)
                .find(|k| matches!(k, ServiceKey::Inet { addr, port, .. } if *addr == a && *port == p))
                .with_context(|| format!("no service {addr}"))?;
            return Ok((key, &w[..pos]));
        }
        let key = self.current.context("no `service` line before this one")?;
        Ok((key, w))
    }

    fn service(&mut self, w: &[&str]) -> anyhow::Result<()> {
        let [proto, addr, sched, rest @ ..] = w else {
            bail!("service needs PROTO VIP:PORT SCHEDULER");
        };
        let proto = match *proto {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            p => bail!("unknown protocol `{p}` (tcp, udp or sctp)"),
        };
        let (a, p) = sockaddr(addr)?;
        let key = ServiceKey::Inet {
            proto,
            addr: a,
            port: p,
        };
        let mut spec = ServiceSpec {
            key,
            scheduler: sched.parse().map_err(|e| anyhow::anyhow!("service: {e}"))?,
            flags: SchedFlags::default(),
            persistence: None,
            netmask_prefix: if a.is_ipv4() { 32 } else { 128 },
            one_packet: false,
        };
        let mut i = 0;
        while i < rest.len() {
            match rest[i] {
                "flags" => {
                    let v = rest.get(i + 1).context("`flags` needs a value")?;
                    for f in v.split(',') {
                        match f {
                            "sh-fallback" | "mh-fallback" => spec.flags.fallback = true,
                            "sh-port" | "mh-port" => spec.flags.port = true,
                            other => bail!("unknown scheduler flag `{other}`"),
                        }
                    }
                    i += 2;
                }
                "persistent" => {
                    spec.persistence = Some(number("persistent", rest.get(i + 1))?);
                    i += 2;
                }
                "netmask" => {
                    let v = rest.get(i + 1).context("`netmask` needs a value")?;
                    spec.netmask_prefix = netmask_prefix(v)?;
                    i += 2;
                }
                other => bail!("unexpected `{other}` in service line"),
            }
        }
        self.ipvs
            .add_service(spec)
            .map_err(|e| anyhow::anyhow!("service: {e}"))?;
        self.current = Some(key);
        Ok(())
    }

    fn dest(&mut self, w: &[&str], edit: bool) -> anyhow::Result<()> {
        let verb = if edit { "edit" } else { "dest" };
        let [addr, rest @ ..] = w else {
            bail!("{verb} needs RIP:PORT");
        };
        let (a, p) = sockaddr(addr)?;
        let (svc, rest) = self.target(rest)?;
        let mut spec = DestSpec {
            addr: a,
            port: p,
            fwd: FwdMethod::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        };
        if edit {
            let d = self
                .ipvs
                .service(&svc)
                .and_then(|s| s.dest(a, p))
                .with_context(|| format!("edit: no destination {addr}"))?;
            spec.fwd = d.fwd;
            spec.weight = d.weight;
            spec.u_threshold = d.u_threshold;
            spec.l_threshold = d.l_threshold;
        }
        let mut i = 0;
        while i < rest.len() {
            let v = rest.get(i + 1);
            match rest[i] {
                "weight" => spec.weight = number("weight", v)?,
                "uthreshold" => spec.u_threshold = number("uthreshold", v)?,
                "lthreshold" => spec.l_threshold = number("lthreshold", v)?,
                "method" => {
                    spec.fwd = match v.copied() {
                        Some("dr") => FwdMethod::Route,
                        Some("nat") => FwdMethod::Masq,
                        Some("tun") => FwdMethod::Tunnel(TunnelType::Ipip),
                        Some(m) => bail!("unknown method `{m}` (dr, nat or tun)"),
                        None => bail!("`method` needs a value"),
                    }
                }
                other => bail!("unexpected `{other}` in {verb} line"),
            }
            i += 2;
        }
        let r = if edit {
            self.ipvs.edit_dest(&svc, &spec)
        } else {
            self.ipvs.add_dest(&svc, &spec)
        };
        r.map_err(|e| anyhow::anyhow!("{verb}: {e}"))
    }

    fn conn(&mut self, client: &str, w: &[&str]) -> anyhow::Result<()> {
        let (ca, cp) = sockaddr(client)?;
        let (svc, rest) = self.target(w)?;
        let close = match rest {
            [] => false,
            ["close"] => true,
            [x, ..] => bail!("unexpected `{x}` in conn line"),
        };
        let ServiceKey::Inet { proto, addr, port } = svc else {
            bail!("conn needs an address:port service");
        };
        if ca.is_ipv4() != addr.is_ipv4() {
            bail!("client {client} and service {addr} are of different address families");
        }
        let pkt = |tcp| PacketInfo {
            proto,
            src: ca,
            sport: cp,
            dst: addr,
            dport: port,
            tcp,
            fwmark: 0,
        };
        let first = if proto == Protocol::Tcp {
            TcpFlags::SYN
        } else {
            TcpFlags::default()
        };
        let v = self.ipvs.process(self.now, &pkt(first), &mut self.rng);
        let chosen = match v {
            Verdict::Forward(f) => {
                if proto == Protocol::Tcp {
                    let nat = f.fwd == FwdMethod::Masq;
                    let reply = |tcp| PacketInfo {
                        proto,
                        src: f.dest.0,
                        sport: f.dest.1,
                        dst: ca,
                        dport: cp,
                        tcp,
                        fwmark: 0,
                    };
                    if nat {
                        self.ipvs.process_reply(self.now, &reply(TcpFlags::SYN_ACK));
                    }
                    self.ipvs
                        .process(self.now, &pkt(TcpFlags::ACK), &mut self.rng);
                    if close {
                        self.ipvs
                            .process(self.now, &pkt(TcpFlags::FIN_ACK), &mut self.rng);
                        if nat {
                            self.ipvs.process_reply(self.now, &reply(TcpFlags::FIN_ACK));
                        }
                        self.ipvs
                            .process(self.now, &pkt(TcpFlags::ACK), &mut self.rng);
                    }
                }
                f.dest.to_string()
            }
            _ => "none".to_string(),
        };
        let shown = lvs_core::ipvs::SockAddr(ca, cp);
        self.out.push_str(&format!("{shown} -> {chosen}\n"));
        Ok(())
    }
}

fn duration(s: &str) -> anyhow::Result<Duration> {
    let body = s
        .strip_prefix('+')
        .with_context(|| format!("time wants +N[ms|s|m|h], got `{s}`"))?;
    let (num, mult_ms) = if let Some(n) = body.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = body.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = body.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = body.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        (body, 1000)
    };
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("time wants +N[ms|s|m|h], got `{s}`"))?;
    let ms = n
        .checked_mul(mult_ms)
        .with_context(|| format!("time `{s}` is too large"))?;
    Ok(Duration::from_millis(ms))
}

/// The table as `ipvsadm -L -n` prints it.
///
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmask_forms() {
        assert_eq!(netmask_prefix("255.255.255.0").unwrap(), 24);
        assert_eq!(netmask_prefix("24").unwrap(), 24);
        assert!(netmask_prefix("255.0.255.0").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration("+5s").unwrap(), Duration::from_secs(5));
        assert_eq!(duration("+250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("+2m").unwrap(), Duration::from_secs(120));
        assert!(duration("5s").is_err());
        assert!(duration("+xs").is_err());
    }
}
