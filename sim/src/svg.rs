//! A hand-written SVG timeline: VRRP state per instance and host, every holder of each VIP
//! (two at once drawn as split brain), real servers as each director's IPVS table sees
//! them, request failures and faults.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use lvs_core::director::{StateChangeKind, VrrpState};
use lvs_core::Instant;

use crate::client::Outcome;
use crate::record::{TraceEntry, TraceEvent};

const LEFT: f64 = 220.0;
const WIDTH: f64 = 1000.0;
const ROW: f64 = 22.0;
/// A VIP held by two hosts at once.
const SPLIT: &str = "#ff8c00";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Render the timeline of `trace` from 0 to `end`.
pub fn render(trace: &[TraceEntry], end: Instant) -> String {
    // lane label -> transitions (time ns, label, colour)
    let mut lanes: BTreeMap<String, Vec<(u64, String, &'static str)>> = BTreeMap::new();
    let mut failures: Vec<u64> = Vec::new();
    let mut faults: Vec<(u64, String)> = Vec::new();
    let mut holders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in trace {
        match &e.event {
            TraceEvent::Notify {
                kind, name, state, ..
            } if *kind == StateChangeKind::Instance => {
                let colour = match state {
                    VrrpState::Master => "#2e8b57",
                    VrrpState::Backup => "#b0c4de",
                    VrrpState::Fault => "#cd5c5c",
                    VrrpState::Init | VrrpState::Stop => "#dddddd",
                };
                let label = state.as_str().to_string();
                lanes
                    .entry(format!("vrrp {name} @ {}", e.host))
                    .or_default()
                    .push((e.t, label, colour));
            }
            TraceEvent::AddVip { addr, .. } | TraceEvent::DelVip { addr, .. } => {
                let set = holders.entry(addr.clone()).or_default();
                let changed = if matches!(e.event, TraceEvent::AddVip { .. }) {
                    set.insert(e.host.to_string())
                } else {
                    set.remove(&*e.host)
                };
                if changed {
                    // Every holder shows: two at once is split brain, in a warning colour.
                    let names: Vec<&str> = set.iter().map(String::as_str).collect();
                    let (label, colour) = match names.len() {
                        0 => (String::new(), ""),
                        1 => (names[0].to_string(), "#4682b4"),
                        _ => (format!("SPLIT BRAIN: {}", names.join(" + ")), SPLIT),
                    };
                    lanes
                        .entry(format!("vip {addr}"))
                        .or_default()
                        .push((e.t, label, colour));
                }
            }
            TraceEvent::Ipvs(change) => {
                let Some(dest) = &change.dest else { continue };
                let (addr, up) = (dest.clone(), change.weight.is_some_and(|w| w > 0));
                let (label, colour) = if up {
                    ("up", "#3cb371")
                } else {
                    ("down", "#cd5c5c")
                };
                lanes
                    .entry(format!("rs {addr} @ {}", e.host))
                    .or_default()
                    .push((e.t, label.to_string(), colour));
            }
            TraceEvent::Request { record } => {
                if matches!(record.outcome, Outcome::Failed { .. }) {
                    failures.push(e.t);
                }
            }
            TraceEvent::Fault(f) => faults.push((e.t, f.description.clone())),
            TraceEvent::Process { running: false } => {
                let suffix = format!(" @ {}", e.host);
                for (label, lane) in lanes.iter_mut() {
                    if label.starts_with("vrrp ") && label.ends_with(&suffix) {
                        lane.push((e.t, String::new(), ""));
                    }
                }
            }
            TraceEvent::Service { port, running } => {
                let (label, colour) = if *running {
                    ("running", "#3cb371")
                } else {
                    ("stopped", "#cd5c5c")
                };
                lanes
                    .entry(format!("service {}:{port}", e.host))
                    .or_default()
                    .push((e.t, label.to_string(), colour));
            }
            _ => {}
        }
    }
    let end_ns = end.as_nanos().max(1);
    let x = |t: u64| LEFT + (t as f64 / end_ns as f64) * (WIDTH - LEFT - 10.0);
    let rows = lanes.len() + 1;
    let height = 40.0 + ROW * rows as f64 + 20.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(s, r#"<text x="4" y="14">0 s .. {end} s</text>"#);
    for (row, (label, trans)) in lanes.iter().enumerate() {
        let y = 30.0 + ROW * row as f64;
        let _ = writeln!(
            s,
            r#"<text x="4" y="{:.1}">{}</text>"#,
            y + 14.0,
            esc(label)
        );
        for (i, (t, text, colour)) in trans.iter().enumerate() {
            if colour.is_empty() {
                continue;
            }
            let t_end = trans.get(i + 1).map_or(end_ns, |n| n.0);
            let (x0, x1) = (x(*t), x(t_end));
            let _ = writeln!(
                s,
                r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{}</title></rect>"#,
                (x1 - x0).max(0.5),
                ROW - 4.0,
                esc(text)
            );
            if x1 - x0 > 40.0 {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                    x0 + 2.0,
                    y + 13.0,
                    esc(text)
                );
            }
        }
    }
    let y = 30.0 + ROW * lanes.len() as f64;
    let _ = writeln!(
        s,
        r#"<text x="4" y="{:.1}">request failures</text>"#,
        y + 14.0
    );
    for t in &failures {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{y:.1}" y2="{1:.1}" stroke="#cc0000"/>"##,
            x(*t),
            y + ROW - 4.0
        );
    }
    for (t, f) in &faults {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="20" y2="{1:.1}" stroke="#000" stroke-dasharray="3,3"><title>{2}</title></line>"##,
            x(*t),
            height - 10.0,
            esc(f)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn vip(t: u64, host: &str, add: bool) -> TraceEntry {
        let (iface, addr) = ("eth0".to_string(), "10.0.0.100".to_string());
        TraceEntry {
            t,
            host: Arc::from(host),
            event: if add {
                TraceEvent::AddVip { iface, addr }
            } else {
                TraceEvent::DelVip { iface, addr }
            },
        }
    }

    // The VIP lane used to show only the last holder, which hid split brain.
    #[test]
    fn a_vip_held_twice_is_drawn_as_split_brain() {
        let trace = [
            vip(1_000_000_000, "d1", true),
            vip(2_000_000_000, "d2", true),
            vip(3_000_000_000, "d1", false),
        ];
        let svg = render(&trace, Instant::from_secs(4));
        assert!(svg.contains("SPLIT BRAIN: d1 + d2"), "{svg}");
        assert_eq!(svg.matches(SPLIT).count(), 1, "{svg}");
        // Before, during and after: d1 alone, both, d2 alone.
        let titles: Vec<&str> = svg
            .match_indices("<title>")
            .map(|(i, _)| &svg[i + 7..i + 7 + svg[i + 7..].find('<').unwrap()])
            .collect();
        assert_eq!(titles, vec!["d1", "SPLIT BRAIN: d1 + d2", "d2"]);
    }
}
