//! Replays `fixtures/traces/*.trace` and checks every `# -> server` note.
//!
//! A minimal replayer for the trace format `lvsd schedule` reads: `conn`
//! counts the new connection active (`close`: inactive) on the picked server
//! and sets the overload flag at `uthreshold` (as `ip_vs_bind_dest` does);
//! connections never expire here, so the notes assume none does.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::SchedFlags;
use crate::ipvs::service::{DestSpec, SchedPacket, Service, ServiceSpec};
use crate::ipvs::{FwdMethod, Protocol, ServiceKey, TunnelType};
use crate::time::Instant;

const TRACES: [(&str, &str); 14] = [
    ("rr", include_str!("../../../../fixtures/traces/rr.trace")),
    ("wrr", include_str!("../../../../fixtures/traces/wrr.trace")),
    ("lc", include_str!("../../../../fixtures/traces/lc.trace")),
    ("wlc", include_str!("../../../../fixtures/traces/wlc.trace")),
    ("sed", include_str!("../../../../fixtures/traces/sed.trace")),
    ("nq", include_str!("../../../../fixtures/traces/nq.trace")),
    ("fo", include_str!("../../../../fixtures/traces/fo.trace")),
    ("ovf", include_str!("../../../../fixtures/traces/ovf.trace")),
    (
        "lblc",
        include_str!("../../../../fixtures/traces/lblc.trace"),
    ),
    (
        "lblcr",
        include_str!("../../../../fixtures/traces/lblcr.trace"),
    ),
    ("dh", include_str!("../../../../fixtures/traces/dh.trace")),
    ("sh", include_str!("../../../../fixtures/traces/sh.trace")),
    ("mh", include_str!("../../../../fixtures/traces/mh.trace")),
    (
        "twos",
        include_str!("../../../../fixtures/traces/twos.trace"),
    ),
];

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("bad address {s}: {e}"))
}

fn value<'a>(words: &'a [&str], key: &str) -> Option<&'a str> {
    words
        .iter()
        .position(|w| *w == key)
        .and_then(|i| words.get(i + 1).copied())
}

fn dest_spec(words: &[&str]) -> DestSpec {
    let a = sock(words[1]);
    let num = |k: &str| -> Option<i64> { value(words, k).map(|v| v.parse().expect("number")) };
    DestSpec {
        addr: a.ip(),
        port: a.port(),
        fwd: match value(words, "method") {
            Some("nat") => FwdMethod::Masq,
            Some("tun") => FwdMethod::Tunnel(TunnelType::Ipip),
            _ => FwdMethod::Route,
        },
        weight: num("weight").unwrap_or(1) as i32,
        u_threshold: num("uthreshold").unwrap_or(0) as u32,
        l_threshold: num("lthreshold").unwrap_or(0) as u32,
    }
}

/// Replay `text`; returns one output line per `conn` and the mismatches.
fn replay(text: &str) -> (Vec<String>, Vec<String>) {
    let mut svc: Option<Service> = None;
    let mut now = Instant::ZERO;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (mut out, mut bad) = (Vec::new(), Vec::new());
    for (n, raw) in text.lines().enumerate() {
        let (cmd, note) = match raw.split_once('#') {
            Some((c, k)) => (c, Some(k.trim())),
            None => (raw, None),
        };
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let Some(&verb) = words.first() else { continue };
        match verb {
            "service" => {
                let a = sock(words[2]);
                let flags = value(&words, "flags").unwrap_or("");
                let spec = ServiceSpec {
                    key: ServiceKey::Inet {
                        proto: match words[1] {
                            "udp" => Protocol::Udp,
                            "sctp" => Protocol::Sctp,
                            _ => Protocol::Tcp,
                        },
                        addr: a.ip(),
                        port: a.port(),
                    },
                    scheduler: words[3].parse().expect("scheduler"),
                    flags: SchedFlags {
                        fallback: flags.contains("fallback"),
                        port: flags.contains("-port"),
                    },
                    persistence: value(&words, "persistent").map(|v| v.parse().expect("secs")),
                    netmask_prefix: 32,
                    one_packet: false,
                };
                svc = Some(Service::new(spec));
            }
            "dest" => svc
                .as_mut()
                .expect("service first")
                .add_dest(&dest_spec(&words))
                .expect("dest"),
            "edit" => svc
                .as_mut()
                .expect("service first")
                .edit_dest(&dest_spec(&words))
                .expect("edit"),
            "del" => {
                let a = sock(words[1]);
                svc.as_mut()
                    .expect("service first")
                    .del_dest(a.ip(), a.port())
                    .expect("del");
            }
            "time" => {
                let t = words[1].trim_start_matches('+');
                let (num, unit) = t.split_at(t.len() - 1);
                let k: u64 = num.parse().expect("time");
                now += Duration::from_secs(match unit {
                    "m" => k * 60,
                    "h" => k * 3600,
                    _ => k,
                });
                svc.as_mut().expect("service first").handle_timeout(now);
            }
            "conn" => {
                let s = svc.as_mut().expect("service first");
                let c = sock(words[1]);
                let (dst, dport) = match s.spec().key {
                    ServiceKey::Inet { addr, port, .. } => (addr, port),
                    ServiceKey::Fwmark { .. } => (IpAddr::from([0, 0, 0, 0]), 0),
                };
                let pkt = SchedPacket {
                    src: c.ip(),
                    sport: c.port(),
                    dst,
                    dport,
                };
                let got = s.schedule_at(now, &pkt, &mut rng).map(|i| {
                    let (addr, port) = (s.dests()[i].addr, s.dests()[i].port);
                    let d = s.dest_mut(addr, port).expect("picked");
                    if words.get(2) == Some(&"close") {
                        d.inactconns += 1;
                    } else {
                        d.activeconns += 1;
                    }
                    if d.u_threshold != 0 && d.activeconns + d.inactconns >= d.u_threshold {
                        d.overloaded = true;
                    }
                    SocketAddr::new(addr, port).to_string()
                });
                let got = got.unwrap_or_else(|| "none".to_string());
                out.push(format!("{} -> {got}", words[1]));
                if let Some(want) = note.and_then(|k| k.strip_prefix("-> ")) {
                    if want.trim() != got {
                        bad.push(format!("line {}: {raw:?}: got {got}", n + 1));
                    }
                }
            }
            other => panic!("line {}: unknown command {other}", n + 1),
        }
    }
    (out, bad)
}

#[test]
fn every_trace_replays_as_annotated() {
    let mut failures = Vec::new();
    for (name, text) in TRACES {
        let (out, bad) = replay(text);
        if std::env::var_os("PRINT_TRACES").is_some() {
            println!("== {name}\n{}", out.join("\n"));
        }
        assert!(
            text.contains(&format!(" {name}")),
            "{name}.trace sets up {name}"
        );
        failures.extend(bad.into_iter().map(|b| format!("{name}: {b}")));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
