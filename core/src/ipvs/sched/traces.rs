//! Replays `fixtures/traces/*.trace` and checks every `# -> server` note.
//!
//! The traces are read by [`crate::ipvs::trace`], the parser `lvsd schedule` uses; this
//! replays them against one [`Service`] alone: `conn` counts the new connection active
//! (`close`: inactive) on the picked server and sets the overload flag at `uthreshold` (as
//! `ip_vs_bind_dest` does); connections never expire here, so the notes assume none does.

use std::net::IpAddr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::SchedPacket;
use crate::ipvs::service::Service;
use crate::ipvs::trace::{self, Command, TraceError, TraceLine};
use crate::ipvs::{ServiceKey, SockAddr};
use crate::time::Instant;

const TRACES: [(&str, &str); 16] = [
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
    (
        "sh-port",
        include_str!("../../../../fixtures/traces/sh-port.trace"),
    ),
    (
        "sh-fallback",
        include_str!("../../../../fixtures/traces/sh-fallback.trace"),
    ),
    ("mh", include_str!("../../../../fixtures/traces/mh.trace")),
    (
        "twos",
        include_str!("../../../../fixtures/traces/twos.trace"),
    ),
];

/// Replay `text`; returns one output line per `conn` and the mismatches (and the lines
/// this scheduler-only replay cannot run: `to`, `set`, errors).
fn replay(text: &str) -> (Vec<String>, Vec<String>) {
    let mut svc: Option<Service> = None;
    let mut now = Instant::ZERO;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (mut out, mut bad) = (Vec::new(), Vec::new());
    for line in trace::parse(text) {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                bad.push(format!("line {e}"));
                continue;
            }
        };
        if let Err(e) = step(&line, &mut svc, &mut now, &mut rng, &mut out) {
            bad.push(format!("line {e}"));
        }
    }
    (out, bad)
}

/// One command against the service; a `conn` whose pick differs from its note is an error.
fn step(
    line: &TraceLine,
    svc: &mut Option<Service>,
    now: &mut Instant,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<String>,
) -> Result<(), TraceError> {
    if let Command::Service(spec) = &line.command {
        *svc = Some(Service::new(spec.clone()));
        return Ok(());
    }
    if let (Command::EditService(spec), Some(s)) = (&line.command, svc.as_mut()) {
        if s.spec().key == spec.key {
            s.edit(spec.clone());
            return Ok(());
        }
    }
    let s = svc
        .as_mut()
        .ok_or_else(|| line.error("no `service` line before this one"))?;
    match &line.command {
        Command::Service(_) => {}
        Command::Dest(d) if d.to.is_none() => {
            let r = if d.edit {
                let spec = d.spec(s.dest(d.dest.0, d.dest.1));
                s.edit_dest(&spec)
            } else {
                s.add_dest(&d.spec(None))
            };
            r.map_err(|e| line.error(format!("{}: {e}", d.verb())))?;
        }
        Command::Del { dest, to: None } => {
            s.del_dest(dest.0, dest.1)
                .map_err(|e| line.error(format!("del: {e}")))?;
        }
        Command::Time(d) => {
            *now += *d;
            s.handle_timeout(*now);
        }
        Command::Conn {
            client,
            close,
            to: None,
        } => {
            let (dst, dport) = match s.spec().key {
                ServiceKey::Inet { addr, port, .. } => (addr, port),
                ServiceKey::Fwmark { .. } => (IpAddr::from([0, 0, 0, 0]), 0),
            };
            let pkt = SchedPacket {
                src: client.0,
                sport: client.1,
                dst,
                dport,
            };
            let got = s.schedule_at(*now, &pkt, rng).and_then(|i| {
                let (addr, port) = (s.dests().get(i)?.addr, s.dests().get(i)?.port);
                let d = s.dest_mut(addr, port)?;
                if *close {
                    d.inactconns += 1;
                } else {
                    d.activeconns += 1;
                }
                if d.u_threshold != 0 && d.activeconns + d.inactconns >= d.u_threshold {
                    d.overloaded = true;
                }
                Some(SockAddr(addr, port).to_string())
            });
            let got = got.unwrap_or_else(|| "none".to_string());
            out.push(format!("{client} -> {got}"));
            if let Some(want) = line.expected() {
                if want != got {
                    return Err(line.error(format!("{client}: got {got}, noted {want}")));
                }
            }
        }
        other => return Err(line.error(format!("not replayed here: {other:?}"))),
    }
    Ok(())
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
