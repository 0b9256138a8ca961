//! Snapshots of what a run prints: the log, the metrics summary and the SVG timeline.

mod common;

use std::time::Duration;

use common::*;
use lvs_core::Instant;
use lvs_sim::client::Workload;
use lvs_sim::Fault;

fn failover_world() -> World {
    let d2 = FakeCfg::new(D2_MAC, Some(Instant::from_secs(12)));
    let mut w = world(Opts {
        d2,
        workload: Workload::Open { rate: 20.0 },
        ..Opts::default()
    });
    w.sim.trace_requests = false;
    w.sim.schedule(Instant::from_secs(5), Fault::Kill(w.d1));
    w.sim.schedule(
        Instant::from_secs(15),
        Fault::Service {
            host: w.rs2,
            port: 80,
            running: false,
        },
    );
    w.sim.run_until(Instant::from_secs(20));
    w
}

#[test]
fn logs_are_stamped_with_virtual_time_and_host() {
    let w = failover_world();
    let mut all = String::new();
    for l in w.sim.logs() {
        all.push_str(&l.line);
        all.push('\n');
    }
    insta::assert_snapshot!(all);
}

#[test]
fn metrics_summary() {
    let w = failover_world();
    let m = w.sim.metrics();
    let text = format!(
        "sent {} ok {} failed {} broken {}\nfailures {:?}\nper_server {:?}\njain {:.4}\nfailover {:?}\n",
        m.requests_sent,
        m.requests_ok,
        m.requests_failed,
        m.connections_broken,
        m.failures,
        m.per_server,
        m.jain_index().unwrap_or(0.0),
        m.failover_time().map(|d| Duration::from_millis(d.as_millis() as u64)),
    );
    insta::assert_snapshot!(text);
}

#[test]
fn svg_timeline() {
    let w = failover_world();
    let svg = w.sim.svg();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    insta::assert_snapshot!(svg);
}
