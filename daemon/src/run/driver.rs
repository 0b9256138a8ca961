//! The event loop: frames, the rtnetlink monitor, script results and signals in; the
//! director's outputs executed, in its order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lvs_core::check::probe::{ProbeId, ProbeKind, ProbeResult};
use lvs_core::config::model::Config;
use lvs_core::config::{self, diagnostic::Diagnostic};
use lvs_core::director::{
    config_log, Admin, Applied, ApplyError, DataPlane, Director, DirectorConfig, IfaceName, Input,
    LogSource, NodeEnv, NotifyCause, Output, StateChangeKind, Vip,
};
use lvs_core::Instant;
use rand_chacha::rand_core::SeedableRng;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::control::{Asked, Control};
use super::host::{AddrOptions, Follower, Host, Link};
use super::log::Logger;
use super::report::{self, Transition};
use super::security::{self, RunAs};
use super::smtp::Mailer;
use super::socket::{FrameSocket, VrrpSocket};
use super::systemd::Notifier;
use super::{script, Args};

/// keepalived's parent exits about a second after SIGTERM, once its VRRP child has sent
/// its priority-0 adverts and removed the addresses.
const EXIT_DELAY: Duration = Duration::from_secs(1);
/// The most frames waiting for the event loop; more are dropped, as a full socket would.
const FRAME_QUEUE: usize = 4096;
/// `errno`s that mean an address is already as asked.
const EEXIST: i32 = 17;
const EADDRNOTAVAIL: i32 = 99;
const ENODEV: i32 = 19;

/// A keepalived.conf read and found usable, with what keepalived would log about it.
pub struct Loaded {
    /// The model.
    pub config: Config,
    /// Its warnings, as keepalived's processes log them.
    pub log: Vec<(LogSource, String)>,
}

/// Read the configuration as keepalived reads it at start and at SIGHUP; `Err` with the
/// errors rendered, one per line, when it cannot run.
pub fn load(args: &Args) -> Result<Loaded, String> {
    let file = args.file.display().to_string();
    // keepalived runs in `/` (it forks and chdirs before its children read the file).
    let loader = crate::check::host_loader(args.config_id.clone(), None);
    let parsed = config::parse(&file, &loader);
    let errors: Vec<&Diagnostic> = parsed.diagnostics.iter().filter(|d| d.is_error()).collect();
    let Some(config) = parsed.config.filter(|_| errors.is_empty()) else {
        let mut text: String = errors.iter().map(|d| d.render()).collect();
        if text.is_empty() {
            text = format!("{file}: cannot be used\n");
        }
        return Err(text.trim_end().to_string());
    };
    // Only the processes lvsd runs log their part: VRRP (and the parent).
    let log = config_log(
        &parsed.diagnostics,
        &|f| f.to_string(),
        !config.vrrp_instances.is_empty(),
        false,
    );
    Ok(Loaded { config, log })
}

/// What the loop waits for besides timers and signals.
enum Event {
    Frame {
        iface: IfaceName,
        frame: Vec<u8>,
    },
    Netlink(RouteNetlinkMessage),
    Probe {
        id: ProbeId,
        result: ProbeResult,
    },
    /// A line from a task (the SMTP alerts), logged as the VRRP process's.
    Log(String),
}

/// One watched interface: its AF_PACKET socket and reader, its VRRP sockets.
struct Watched {
    index: u32,
    frames: Arc<FrameSocket>,
    reader: tokio::task::JoinHandle<()>,
    vrrp: Vec<VrrpSocket>,
}

impl Watched {
    /// Send a frame: an IPv6 VRRP advert through the IPv6 VRRP socket (the kernel writes
    /// its IPv6 header, as for keepalived's), anything else as built.
    fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        if let Some((src, dst, vrrp)) = ipv6_vrrp(frame) {
            if let Some(s) = self.vrrp.iter().find(|s| s.is_ipv6()) {
                return s.send_v6(src, dst, vrrp);
            }
        }
        self.frames.send(frame)
    }
}

/// An Ethernet frame carrying IPv6 with next header 112 (no extension headers): its source,
/// destination and VRRP bytes.
fn ipv6_vrrp(frame: &[u8]) -> Option<(std::net::Ipv6Addr, std::net::Ipv6Addr, &[u8])> {
    if frame.len() < 54 || frame[12..14] != [0x86, 0xdd] || frame[20] != 112 {
        return None;
    }
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&frame[at..at + 16]);
        std::net::Ipv6Addr::from(a)
    };
    let len = usize::from(u16::from_be_bytes([frame[18], frame[19]]));
    let vrrp = frame.get(54..54 + len)?;
    Some((addr(22), addr(38), vrrp))
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The loop's state.
struct Daemon {
    args: Args,
    director: Director,
    host: Host,
    follower: Follower,
    logger: Logger,
    systemd: Notifier,
    events: mpsc::Sender<Event>,
    watched: BTreeMap<String, Watched>,
    /// Where to join VRRP multicast: interface → (IPv6, joins multicast) per instance.
    vrrp_ifaces: BTreeMap<String, BTreeSet<(bool, bool)>>,
    vip_options: HashMap<(String, IpAddr), AddrOptions>,
    origin: tokio::time::Instant,
    /// Outputs this driver does not carry out, each said once.
    told: BTreeSet<&'static str>,
    failed_sends: BTreeSet<String>,
    /// Per instance its last transition (`lvsd status`).
    transitions: BTreeMap<String, Transition>,
    /// Per instance the last line logged about it in the current step: why it changed.
    step_lines: BTreeMap<String, String>,
    /// Who scripts run as.
    run_as: RunAs,
    /// Where `smtp_alert` mail goes, when anything asks for it.
    mailer: Option<Mailer>,
}

/// The configured virtual addresses: where they go and how they are added.
fn vip_options(cfg: &Config) -> HashMap<(String, IpAddr), AddrOptions> {
    let mut out = HashMap::new();
    for i in &cfg.vrrp_instances {
        let default_dev = i
            .interface
            .as_ref()
            .map(|d| d.value.clone())
            .unwrap_or_default();
        for v in i
            .virtual_ipaddress
            .iter()
            .chain(&i.virtual_ipaddress_excluded)
        {
            let dev = v
                .dev
                .as_ref()
                .map_or(default_dev.clone(), |d| d.value.clone());
            out.insert((dev, v.addr.value), AddrOptions::of(v));
        }
    }
    out
}

fn vip_set(opts: &HashMap<(String, IpAddr), AddrOptions>) -> BTreeSet<IpAddr> {
    opts.keys().map(|(_, a)| *a).collect()
}

/// The director's configuration for this daemon: VRRP, with the kernel as data plane (it
/// forwards nothing itself) and no checkers or sync daemon yet; its scripts as script
/// security leaves them, and who they run as.
fn director_config(
    args: &Args,
    loaded: &Loaded,
    env: &NodeEnv,
) -> anyhow::Result<(DirectorConfig, RunAs)> {
    let mut dc = DirectorConfig::from_keepalived(&loaded.config, env)?;
    for i in &mut dc.vrrp.instances {
        i.log_detail = args.log_detail;
    }
    dc.data_plane = DataPlane::Kernel;
    dc.checkers = Default::default();
    dc.sync_daemon = None;
    dc.config_log = loaded.log.clone();
    let run_as = security::apply(&loaded.config, &mut dc);
    Ok((dc, run_as))
}

/// Per interface the VRRP sockets its instances need.
fn vrrp_ifaces(dc: &DirectorConfig) -> BTreeMap<String, BTreeSet<(bool, bool)>> {
    let mut out: BTreeMap<String, BTreeSet<(bool, bool)>> = BTreeMap::new();
    for i in &dc.vrrp.instances {
        let ipv6 = i.primary_ip.is_ipv6();
        out.entry(i.iface.clone())
            .or_default()
            .insert((ipv6, i.unicast_peers.is_empty()));
    }
    out
}

/// Run until SIGTERM / SIGINT.
pub async fn run(args: Args, loaded: Loaded) -> anyhow::Result<()> {
    let mut logger = Logger::new(
        args.log_console,
        args.log_file.as_deref(),
        args.no_syslog,
        args.log_facility,
    )
    .context("log file")?;
    // Handled from the start: a SIGTERM while starting still releases what was taken.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let systemd = Notifier::from_env();
    let host = Host::new().context("rtnetlink")?;
    let monitor = super::host::monitor().context("rtnetlink monitor")?;
    let options = vip_options(&loaded.config);
    let snapshot = host
        .snapshot(&vip_set(&options))
        .await
        .context("reading the host's interfaces")?;
    let (mut dc, run_as) = match director_config(&args, &loaded, &snapshot.env) {
        Ok(built) => built,
        Err(e) => {
            logger.line(LogSource::Main, &format!("{e}: cannot start"));
            anyhow::bail!("{e}");
        }
    };
    // What keepalived's parent logs about the file before its children start.
    let file_lines = file_lines(&args)
        .into_iter()
        .map(|l| (LogSource::Main, l))
        .collect::<Vec<_>>();
    dc.config_log.splice(0..0, file_lines);
    let vrrp_ifaces = vrrp_ifaces(&dc);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let rng = Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let mut director = Director::new(dc, snapshot.env.clone(), rng)?;
    director.set_routes6(snapshot.routes6.clone());
    let (tx, mut rx) = mpsc::channel(FRAME_QUEUE);
    spawn_monitor(monitor, tx.clone());
    let mut d = Daemon {
        follower: Follower::new(&snapshot.links, vip_set(&options)),
        args,
        director,
        host,
        logger,
        systemd,
        events: tx,
        watched: BTreeMap::new(),
        vrrp_ifaces,
        vip_options: options,
        origin: tokio::time::Instant::now(),
        told: BTreeSet::new(),
        failed_sends: BTreeSet::new(),
        transitions: BTreeMap::new(),
        step_lines: BTreeMap::new(),
        run_as,
        mailer: Mailer::new(&loaded.config, &host_name()),
    };
    let (scrape_tx, mut scrapes) = mpsc::channel::<tokio::sync::oneshot::Sender<String>>(16);
    if let Some(addr) = d.args.metrics {
        if let Err(e) = super::metrics::serve(addr, scrape_tx).await {
            d.logger
                .line(LogSource::Main, &format!("lvsd: no metrics on {addr}: {e}"));
        }
    }
    let (asked_tx, mut asked) = mpsc::channel::<Asked>(16);
    let _control = match Control::start(&d.args.control, asked_tx) {
        Ok(c) => Some(c),
        Err(e) => {
            d.logger.line(
                LogSource::Main,
                &format!(
                    "lvsd: no control socket at {}: {e}",
                    d.args.control.display()
                ),
            );
            None
        }
    };
    if !loaded.config.virtual_servers.is_empty() && !d.args.vrrp_only {
        d.logger.line(
            LogSource::Main,
            "lvsd: virtual_server blocks are not run yet (no IPVS rules, no health checks); \
             running the VRRP half, as keepalived -P would",
        );
    }
    d.watch_all();
    // The director starts at its first call; interfaces already down are its first news.
    let now = d.now();
    d.director.handle_timeout(now);
    let down: Vec<String> = snapshot
        .links
        .iter()
        .filter(|l| !l.up && d.vrrp_ifaces.contains_key(&l.name))
        .map(|l| l.name.clone())
        .collect();
    for iface in down {
        d.input(Input::Link { iface, up: false });
    }
    d.execute().await;
    d.logger.line(LogSource::Main, "Startup complete");
    d.systemd.notify("READY=1");

    loop {
        let deadline = d
            .director
            .poll_timeout()
            .map(|t| d.origin + t.since_origin());
        tokio::select! {
            _ = sleep_until(deadline) => {
                let now = d.now();
                d.director.handle_timeout(now);
            }
            Some(ev) = rx.recv() => d.event(ev),
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => d.reload(),
            Some(q) = asked.recv() => {
                let _ = q.reply.send(d.answer(q.request));
            }
            Some(reply) = scrapes.recv() => {
                let _ = reply.send(super::metrics::render(&d.director));
            }
        }
        d.execute().await;
    }
    d.systemd.notify("STOPPING=1");
    d.logger.line(LogSource::Main, "Stopping");
    d.input(Input::Admin(Admin::Stop));
    d.execute().await;
    tokio::time::sleep(EXIT_DELAY).await;
    d.logger.line(LogSource::Vrrp, "Stopped");
    Ok(())
}

/// `Opening file 'FILE'.` (a detail line) and `Configuration file FILE`, as keepalived's
/// parent logs them when it reads the file.
fn file_lines(args: &Args) -> Vec<String> {
    let file = args.file.display();
    let mut out = Vec::new();
    if args.log_detail {
        out.push(format!("Opening file '{file}'."));
    }
    out.push(format!("Configuration file {file}"));
    out
}

/// The host name, keepalived's HELO name and default router_id.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Forward the monitor's messages to the loop.
fn spawn_monitor(
    mut messages: impl futures_util::Stream<Item = super::host::Monitored> + Unpin + Send + 'static,
    tx: mpsc::Sender<Event>,
) {
    use futures_util::StreamExt;
    tokio::spawn(async move {
        while let Some((msg, _)) = messages.next().await {
            if let NetlinkPayload::InnerMessage(m) = msg.payload {
                if tx.send(Event::Netlink(m)).await.is_err() {
                    return;
                }
            }
        }
    });
}

impl Daemon {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.origin.elapsed().as_nanos() as u64)
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        self.director.handle_input(now, input);
    }

    fn event(&mut self, ev: Event) {
        match ev {
            Event::Frame { iface, frame } => self.input(Input::Frame { iface, frame }),
            Event::Probe { id, result } => self.input(Input::ProbeDone { id, result }),
            Event::Log(line) => self.logger.line(LogSource::Vrrp, &line),
            Event::Netlink(msg) => {
                for input in self.follower.follow(&msg) {
                    self.input(input);
                }
                // A VRRP interface that came (back) with a new index needs new sockets.
                self.watch_all();
            }
        }
    }

    /// Open (or reopen, when its index changed) the sockets of every VRRP interface.
    fn watch_all(&mut self) {
        let wanted: Vec<(String, BTreeSet<(bool, bool)>)> = self
            .vrrp_ifaces
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.watched.retain(|name, w| {
            self.vrrp_ifaces.contains_key(name) && {
                let current = self.follower.by_name(name).map(|l| l.index);
                current == Some(w.index)
            }
        });
        for (name, socks) in wanted {
            if self.watched.contains_key(&name) {
                continue;
            }
            let Some(link) = self.follower.by_name(&name).cloned() else {
                continue;
            };
            match self.open(&link, &socks) {
                Ok(w) => {
                    self.watched.insert(name, w);
                }
                Err(e) => self.logger.line(
                    LogSource::Vrrp,
                    &format!("lvsd: cannot open VRRP sockets on {name}: {e}"),
                ),
            }
        }
    }

    fn open(&self, link: &Link, socks: &BTreeSet<(bool, bool)>) -> std::io::Result<Watched> {
        let frames = Arc::new(FrameSocket::open(link.index)?);
        let mut vrrp = Vec::new();
        for &(ipv6, multicast) in socks {
            vrrp.push(VrrpSocket::open(&link.name, link.index, ipv6, multicast)?);
        }
        let reader = {
            let frames = Arc::clone(&frames);
            let tx = self.events.clone();
            let iface: IfaceName = link.name.as_str().into();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let Ok(n) = frames.recv(&mut buf).await else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let frame = buf[..n].to_vec();
                    // A full queue drops the frame, as a full socket buffer would.
                    if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Event::Frame {
                        iface: Arc::clone(&iface),
                        frame,
                    }) {
                        return;
                    }
                }
            })
        };
        Ok(Watched {
            index: link.index,
            frames,
            reader,
            vrrp,
        })
    }

    /// SIGHUP: read the file again; a file with errors leaves the running configuration.
    fn reload(&mut self) {
        self.systemd.notify("RELOADING=1");
        self.logger.line(LogSource::Main, "Reloading ...");
        for line in file_lines(&self.args) {
            self.logger.line(LogSource::Main, &line);
        }
        match self.reload_config() {
            Ok(()) => {}
            Err(e) => {
                for line in e.lines() {
                    self.logger.line(LogSource::Main, line);
                }
                self.logger.line(
                    LogSource::Main,
                    "lvsd: the new configuration has errors; keeping the running one",
                );
            }
        }
        self.systemd.notify("READY=1");
    }

    fn reload_config(&mut self) -> Result<(), String> {
        let loaded = load(&self.args)?;
        let env = self.director.env().clone();
        let (dc, run_as) = director_config(&self.args, &loaded, &env).map_err(|e| e.to_string())?;
        self.run_as = run_as;
        self.mailer = Mailer::new(&loaded.config, &host_name());
        self.vip_options = vip_options(&loaded.config);
        self.follower.set_vips(vip_set(&self.vip_options));
        self.vrrp_ifaces = vrrp_ifaces(&dc);
        self.watch_all();
        self.input(Input::Admin(Admin::Reload(Box::new(dc))));
        Ok(())
    }

    /// The answer to a control request.
    fn answer(&self, r: super::control::Request) -> String {
        match (r.stats, r.json) {
            (false, false) => report::status_text(&self.director, &self.transitions),
            (false, true) => report::status_json(&self.director, &self.transitions),
            (true, false) => report::stats_text(&self.director),
            (true, true) => report::stats_json(&self.director),
        }
    }

    fn tell_once(&mut self, what: &'static str) {
        if self.told.insert(what) {
            self.logger.line(LogSource::Main, &format!("lvsd: {what}"));
        }
    }

    /// Carry out the director's outputs; what fails goes back as [`Input::Failed`] before
    /// anything else.
    async fn execute(&mut self) {
        self.step_lines.clear();
        loop {
            let mut failed = Vec::new();
            while let Some(out) = self.director.poll_output() {
                if let Some(f) = self.apply(out).await {
                    failed.push(f);
                }
            }
            if failed.is_empty() {
                return;
            }
            for (what, error) in failed {
                self.input(Input::Failed { what, error });
            }
        }
    }

    async fn apply(&mut self, out: Output) -> Option<(Applied, ApplyError)> {
        match out {
            Output::Transmit { iface, frame } => {
                self.transmit(&iface, &frame);
                None
            }
            Output::Log { source, text } => {
                self.logger.line(source, &text);
                if let Some(name) = text.strip_prefix('(').and_then(|t| t.split_once(')')) {
                    if !name.1.starts_with(" Entering") {
                        self.step_lines.insert(name.0.to_string(), text.clone());
                    }
                }
                None
            }
            Output::AddVip(vip) => self
                .add_vip(&vip)
                .await
                .err()
                .map(|e| (Applied::AddVip(vip), e)),
            Output::DelVip(vip) => self
                .del_vip(&vip)
                .await
                .err()
                .map(|e| (Applied::DelVip(vip), e)),
            Output::Notify(n) => {
                if let NotifyCause::Vrrp(change) = &n.cause {
                    if change.kind == StateChangeKind::Instance {
                        let t = Transition {
                            at: std::time::SystemTime::now(),
                            state: change.state,
                            reason: self.step_lines.get(&change.name).cloned(),
                        };
                        self.transitions.insert(change.name.clone(), t);
                    }
                    if let Some(m) = &self.mailer {
                        if let Some(alert) = m.alert(change) {
                            let (tx, m) = (self.events.clone(), m.clone());
                            let (lines, mut rx) = mpsc::channel(4);
                            tokio::spawn(m.send(alert, lines));
                            tokio::spawn(async move {
                                while let Some(l) = rx.recv().await {
                                    let _ = tx.send(Event::Log(l)).await;
                                }
                            });
                        }
                    }
                }
                for exec in n.scripts {
                    let program = exec.argv.first().cloned().unwrap_or_default();
                    if let Err(e) = script::notify(exec, self.run_as) {
                        self.logger.line(
                            LogSource::Vrrp,
                            &format!("Failed to exec notify script {program}: {e}"),
                        );
                    }
                }
                None
            }
            Output::StartProbe(probe) => {
                match probe.kind {
                    ProbeKind::Script { command } => {
                        let tx = self.events.clone();
                        let (id, timeout, run_as) = (probe.id, probe.timeout, self.run_as);
                        tokio::spawn(async move {
                            let status = script::probe(command, timeout, run_as).await;
                            let result = ProbeResult::Exit(status);
                            let _ = tx.send(Event::Probe { id, result }).await;
                        });
                    }
                    _ => self.tell_once("network probes are not run yet"),
                }
                None
            }
            Output::Route { .. } => {
                self.tell_once("the userspace data plane is not run yet");
                None
            }
            Output::Ipvs(_) | Output::SyncDaemon(_) => {
                self.tell_once("IPVS rules are not applied yet");
                None
            }
        }
    }

    fn transmit(&mut self, iface: &str, frame: &[u8]) {
        if !self.watched.contains_key(iface) {
            // GARP on a VIP's `dev` that no instance uses as its interface.
            if let Some(link) = self.follower.by_name(iface).cloned() {
                if let Ok(w) = self.open(&link, &BTreeSet::new()) {
                    self.watched.insert(iface.to_string(), w);
                }
            }
        }
        let result = match self.watched.get(iface) {
            Some(w) => w.send(frame),
            None => Err(std::io::Error::from_raw_os_error(ENODEV)),
        };
        match result {
            Ok(()) => {
                self.failed_sends.remove(iface);
            }
            Err(e) => {
                if self.failed_sends.insert(iface.to_string()) {
                    self.logger.line(
                        LogSource::Vrrp,
                        &format!("lvsd: cannot send on {iface}: {e}"),
                    );
                }
            }
        }
    }

    fn index_of(&self, iface: &str) -> Result<u32, ApplyError> {
        self.follower
            .by_name(iface)
            .map(|l| l.index)
            .ok_or(ApplyError {
                errno: Some(ENODEV),
                message: std::io::Error::from_raw_os_error(ENODEV).to_string(),
            })
    }

    async fn add_vip(&mut self, vip: &Vip) -> Result<(), ApplyError> {
        let index = self.index_of(&vip.iface)?;
        let opts = self
            .vip_options
            .get(&(vip.iface.clone(), vip.addr))
            .cloned()
            .unwrap_or_default();
        match self.host.add_vip(index, vip, &opts).await {
            Err(e) if e.errno == Some(EEXIST) => Ok(()),
            other => other,
        }
    }

    async fn del_vip(&mut self, vip: &Vip) -> Result<(), ApplyError> {
        let Ok(index) = self.index_of(&vip.iface) else {
            // The interface went, and its addresses with it.
            return Ok(());
        };
        match self.host.del_addr(index, vip.addr, vip.prefix).await {
            Err(e) if matches!(e.errno, Some(EADDRNOTAVAIL | ENODEV)) => Ok(()),
            other => other,
        }
    }
}
