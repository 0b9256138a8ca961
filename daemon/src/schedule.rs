//! `lvsd schedule TRACE`: replay a scheduler trace through `lvs-core`'s IPVS
//! model, with no root and no kernel, and print what IPVS would do.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use lvs_core::ipvs::conn::TcpFlags;
use lvs_core::ipvs::table::{Ipvs, IpvsOptions, PacketInfo, Verdict};
use lvs_core::ipvs::trace::{self, Command, TraceError, TraceLine};
use lvs_core::ipvs::{FwdMethod, Protocol, ServiceKey, SockAddr};
use lvs_core::Instant;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

const TRACE_HELP: &str = "\
TRACE is text, one command a line; `#` starts a comment.

  service tcp|udp|sctp VIP:PORT SCHED [flags F1,F2] [persistent SECS [netmask MASK]]
        like ipvsadm -A; flags: sh-fallback, sh-port, mh-fallback, mh-port.
        The last `service` (or `edit-service`) line is the current service.
  edit-service tcp|udp|sctp VIP:PORT SCHED [flags F1,F2] [persistent SECS [netmask MASK]]
        like ipvsadm -E: the service's new scheduler, flags and persistence, given
        in full (what is not given is reset, as ipvsadm -E resets it). The
        destinations and connections stay; the same scheduler keeps its state.
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
        UDP: one datagram; SCTP: one INIT (the association in INIT1). Prints `CLIENT -> RIP:PORT` or `CLIENT -> none`.
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
    let text = lvs_scenarios::fs::read_bounded(&args.trace)
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
    for line in trace::parse(text) {
        let line = line?;
        st.command(&line)?;
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

impl Replay {
    fn command(&mut self, line: &TraceLine) -> Result<(), TraceError> {
        match &line.command {
            Command::Service(spec) => {
                self.ipvs
                    .add_service(spec.clone())
                    .map_err(|e| line.error(format!("service: {e}")))?;
                self.current = Some(spec.key);
                Ok(())
            }
            Command::EditService(spec) => {
                self.ipvs
                    .edit_service(spec.clone())
                    .map_err(|e| line.error(format!("edit-service: {e}")))?;
                self.current = Some(spec.key);
                Ok(())
            }
            Command::Dest(d) => {
                let svc = self.target(line, d.to)?;
                let spec = if d.edit {
                    let old = self
                        .ipvs
                        .service(&svc)
                        .and_then(|s| s.dest(d.dest.0, d.dest.1))
                        .ok_or_else(|| line.error(format!("edit: no destination {}", d.dest)))?;
                    d.spec(Some(old))
                } else {
                    d.spec(None)
                };
                let r = if d.edit {
                    self.ipvs.edit_dest(&svc, &spec)
                } else {
                    self.ipvs.add_dest(&svc, &spec)
                };
                r.map_err(|e| line.error(format!("{}: {e}", d.verb())))
            }
            Command::Del { dest, to } => {
                let svc = self.target(line, *to)?;
                self.ipvs
                    .del_dest(&svc, dest.0, dest.1)
                    .map_err(|e| line.error(format!("del: {e}")))
            }
            Command::Conn { client, close, to } => {
                let svc = self.target(line, *to)?;
                self.conn(line, *client, *close, svc)
            }
            Command::Time(d) => {
                self.now += *d;
                self.ipvs.handle_timeout(self.now);
                Ok(())
            }
            Command::Set { tcp, tcpfin, udp } => {
                self.ipvs.set_timeouts(*tcp, *tcpfin, *udp);
                Ok(())
            }
        }
    }

    /// The service a `to VIP:PORT` names, else the current service.
    fn target(&self, line: &TraceLine, to: Option<SockAddr>) -> Result<ServiceKey, TraceError> {
        match to {
            Some(SockAddr(a, p)) => self
                .ipvs
                .services()
                .map(|s| s.spec().key)
                .find(|k| matches!(k, ServiceKey::Inet { addr, port, .. } if *addr == a && *port == p))
                .ok_or_else(|| line.error(format!("no service {}", SockAddr(a, p)))),
            None => self
                .current
                .ok_or_else(|| line.error("no `service` line before this one")),
        }
    }

    fn conn(
        &mut self,
        line: &TraceLine,
        client: SockAddr,
        close: bool,
        svc: ServiceKey,
    ) -> Result<(), TraceError> {
        let SockAddr(ca, cp) = client;
        let ServiceKey::Inet { proto, addr, port } = svc else {
            return Err(line.error("conn needs an address:port service"));
        };
        if ca.is_ipv4() != addr.is_ipv4() {
            return Err(line.error(format!(
                "client {client} and service {addr} are of different address families"
            )));
        }
        let pkt = |tcp| PacketInfo {
            proto,
            src: ca,
            sport: cp,
            dst: addr,
            dport: port,
            tcp,
            // An SCTP association starts with an INIT (sctp_conn_schedule schedules nothing else).
            sctp: lvs_core::wire::sctp::ChunkTypes::of(lvs_core::wire::sctp::chunk::INIT),
            fwmark: 0,
            len: 0,
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
                        sctp: Default::default(),
                        fwmark: 0,
                        len: 0,
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
        self.out.push_str(&format!("{client} -> {chosen}\n"));
        Ok(())
    }
}
