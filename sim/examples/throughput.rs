//! Rough events-per-second figure: two fake-free real servers behind a minimal forwarding
//! director, an open-loop client. `cargo run -p lvs-sim --example throughput --release -- 1000 60`
//! (rate per second, simulated seconds).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use lvs_core::director::{Input, Output};
use lvs_core::Instant;
use lvs_sim::client::{ClientSpec, Workload};
use lvs_sim::director::DirectorNode;
use lvs_sim::packet::{self, Arp, Mac, BROADCAST};
use lvs_sim::server::{RealServerSpec, ServiceSpec};
use lvs_sim::stack::IfaceSpec;
use lvs_sim::{LinkParams, Sim};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

/// Owns the VIP from the start and spreads packets over the servers by client port.
struct Forwarder {
    mac: Mac,
    rs: Vec<Mac>,
    out: VecDeque<Output>,
    started: bool,
}

impl DirectorNode for Forwarder {
    fn handle_input(&mut self, _now: Instant, input: Input) {
        if let Input::Frame { frame, .. } = input {
            if let Ok(seg) = packet::parse_tcp(&frame) {
                if seg.dst == VIP {
                    let rs = self.rs[usize::from(seg.sport) % self.rs.len()];
                    let frame = packet::rewrite_macs(&frame, self.mac, rs);
                    self.out.push_back(Output::Transmit {
                        iface: "eth0".into(),
                        frame,
                    });
                }
            }
        }
    }
    fn handle_timeout(&mut self, _now: Instant) {
        if !self.started {
            self.started = true;
            self.out.push_back(Output::AddVip {
                iface: "eth0".into(),
                addr: IpAddr::V4(VIP),
                prefix: 32,
            });
            let garp = Arp::gratuitous(self.mac, VIP).to_frame(self.mac, BROADCAST);
            self.out.push_back(Output::Transmit {
                iface: "eth0".into(),
                frame: garp,
            });
        }
    }
    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rate: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000.0);
    let secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(60);
    let lan = |n| Ipv4Addr::new(10, 0, 0, n);
    let mut sim = Sim::new(1);
    sim.trace_requests = false;
    let wan = sim.add_segment("wan", true);
    let l = sim.add_segment("lan", true);
    let gw = sim
        .add_gateway(
            "gw",
            vec![
                IfaceSpec::new(
                    "eth0",
                    [2, 0, 0, 0, 1, 1],
                    Ipv4Addr::new(192, 168, 1, 1),
                    24,
                ),
                IfaceSpec::new("eth1", [2, 0, 0, 0, 0, 1], lan(1), 24),
            ],
            Duration::from_secs(60),
        )
        .expect("gateway");
    let d = sim
        .add_director(
            "d1",
            vec![IfaceSpec::new("eth0", [2, 0, 0, 0, 0, 2], lan(2), 24)],
            Box::new(move |_, _| {
                Box::new(Forwarder {
                    mac: [2, 0, 0, 0, 0, 2],
                    rs: vec![[2, 0, 0, 0, 0, 11], [2, 0, 0, 0, 0, 12]],
                    out: VecDeque::new(),
                    started: false,
                })
            }),
        )
        .expect("director");
    let mut hosts = vec![(gw, "eth1"), (d, "eth0")];
    for n in [11u8, 12] {
        let rs = sim
            .add_real_server(
                &format!("rs{}", n - 10),
                vec![IfaceSpec::new("eth0", [2, 0, 0, 0, 0, n], lan(n), 24)],
                RealServerSpec::dr(
                    vec![VIP],
                    Some(lan(1)),
                    vec![ServiceSpec::new(80, Duration::from_millis(2))],
                ),
            )
            .expect("rs");
        hosts.push((rs, "eth0"));
    }
    let client = sim
        .add_client(
            "client",
            IfaceSpec::new(
                "eth0",
                [2, 0, 0, 0, 1, 10],
                Ipv4Addr::new(192, 168, 1, 10),
                24,
            ),
            Ipv4Addr::new(192, 168, 1, 1),
            ClientSpec::new(SocketAddrV4::new(VIP, 80), Workload::Open { rate }),
        )
        .expect("client");
    sim.connect(gw, "eth0", wan, LinkParams::default())
        .expect("link");
    sim.connect(client, "eth0", wan, LinkParams::default())
        .expect("link");
    for (h, i) in hosts {
        sim.connect(h, i, l, LinkParams::default()).expect("link");
    }
    let t0 = std::time::Instant::now();
    sim.run_until(Instant::from_secs(secs));
    let wall = t0.elapsed().as_secs_f64();
    let m = sim.metrics();
    println!(
        "{} events ({} pending) in {:.3} s wall = {:.0} events/s; {} requests ({} ok, {} failed), {} simulated s",
        sim.events_processed(),
        sim.pending_events(),
        wall,
        sim.events_processed() as f64 / wall,
        m.requests_sent,
        m.requests_ok,
        m.requests_failed,
        secs
    );
}
