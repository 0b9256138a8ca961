//! Snapshots of what a run prints: the log, the metrics summary and the SVG timeline.

mod common;

use std::time::Duration;

use common::*;
use lvs_core::Instant;
use lvs_scenarios::judge::RunOptions;
use lvs_scenarios::observe::Observed;
use lvs_scenarios::{FaultAction, Scenario};
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
    w.sim.bin_requests_for_svg(Instant::from_secs(20));
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
    rasterise(&svg, "failover");
    insta::assert_snapshot!(svg);
}

/// Parses and rasterises `svg` as a viewer would; writes the PNG into `$LVS_SVG_PNG_DIR`
/// (when set) as `name.png`, to look at.
fn rasterise(svg: &str, name: &str) -> resvg::tiny_skia::Pixmap {
    let mut opts = resvg::usvg::Options::default();
    opts.fontdb_mut().load_system_fonts();
    let tree = resvg::usvg::Tree::from_str(svg, &opts).expect("the SVG parses");
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).expect("a size");
    resvg::render(&tree, Default::default(), &mut pixmap.as_mut());
    if let Some(dir) = std::env::var_os("LVS_SVG_PNG_DIR") {
        let path = std::path::Path::new(&dir).join(format!("{name}.png"));
        pixmap.save_png(&path).expect("PNG written");
    }
    pixmap
}

fn rgb(p: &resvg::tiny_skia::Pixmap, x: f64, y: f64) -> (u8, u8, u8) {
    let c = p
        .pixel(x as u32, y as u32)
        .expect("inside the picture")
        .demultiply();
    (c.red(), c.green(), c.blue())
}

/// The top of the lane labelled `label`.
fn lane_top(svg: &str, label: &str) -> f64 {
    let key = format!("data-lane=\"{label}\" data-top=\"");
    let at = svg.find(&key).unwrap_or_else(|| panic!("no lane {label}")) + key.len();
    svg[at..at + svg[at..].find('"').unwrap()].parse().unwrap()
}

fn seed_scenario(name: &str) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/seed")
        .join(format!("{name}.toml"));
    Scenario::load(path).expect("seed scenario loads")
}

const ORANGE: (u8, u8, u8) = (0xff, 0x8c, 0x00);

// The seed cluster with its directors cut off from each other from 40 s to 70 s: both
// become MASTER. The picture must show it where it happened, in the warning colour.
#[test]
fn the_timeline_rasterises_with_split_brain_where_it_happened() {
    let mut s = seed_scenario("07-master-killed");
    let (d1, d2) = (
        s.host("director1").unwrap().id,
        s.host("director2").unwrap().id,
    );
    s.faults = vec![
        lvs_scenarios::Fault {
            at: Duration::from_secs(40),
            action: FaultAction::Partition {
                groups: vec![vec![d1], vec![d2]],
                one_way: false,
            },
        },
        lvs_scenarios::Fault {
            at: Duration::from_secs(70),
            action: FaultAction::Heal,
        },
    ];
    let opts = RunOptions {
        until: Some(Duration::from_secs(100)),
        svg: true,
        ..RunOptions::default()
    };
    let rec = lvs_sim::scenario::observe(&s, &opts).expect("runs");
    let svg = rec.svg.expect("an SVG");
    let vip = "223.202.22.118";
    // When two hosts held the VIP, from the observations rather than the picture.
    let mut holders = std::collections::BTreeSet::new();
    let mut split = None;
    for o in &rec.observations {
        if let Observed::Vip { addr, added, .. } = &o.what {
            if addr.to_string() != vip {
                continue;
            }
            if *added {
                holders.insert(o.host.clone());
            } else {
                holders.remove(&o.host);
            }
            match (holders.len(), split) {
                (2.., None) => split = Some((o.t, None)),
                (..2, Some((from, None))) => split = Some((from, Some(o.t))),
                _ => {}
            }
        }
    }
    let (from, to) = split.expect("the partition splits the brain");
    let to = to.expect("healed before the end");
    assert!(to - from > Duration::from_secs(5), "{from:?}..{to:?}");
    let pixmap = rasterise(&svg, "split-brain");
    let end = Duration::from_secs(100).as_nanos() as u64;
    let x = |t: Duration| lvs_sim::svg::x_of(t.as_nanos() as u64, end);
    // Above the words written in the bar.
    let y = lane_top(&svg, &format!("VIP {vip}")) + 2.0;
    let mid = from + (to - from) / 2;
    // Away from the fault markers' dashed lines.
    assert_eq!(
        rgb(&pixmap, x(mid) + 2.0, y),
        ORANGE,
        "split brain at {mid:?}"
    );
    let before = rgb(&pixmap, x(Duration::from_secs(30)), y);
    assert_ne!(before, ORANGE, "one holder before the partition");
    assert_ne!(before, (255, 255, 255), "and it is drawn");
    // The title says what ran.
    assert!(
        svg.contains("07-master-killed · seed 1 · 0 to 100s"),
        "{}",
        &svg[..600]
    );
    // Both directors' VRRP lanes read MASTER during the split (sea green).
    for d in ["director1", "director2"] {
        let top = lane_top(&svg, &format!("WAN @ {d}"));
        let (r, g, b) = rgb(&pixmap, x(mid) + 2.0, top + 3.0);
        assert_eq!((r, g, b), (0x2e, 0x8b, 0x57), "{d} MASTER at {mid:?}");
    }
}

// The seed walkthrough's step 7: SIGTERM on a director is its own state, and its
// checkers' lanes turn to "no checker", not to the real servers being down.
#[test]
fn a_stopped_director_is_not_drawn_as_its_real_servers_down() {
    let s = seed_scenario("07-master-killed");
    let opts = RunOptions {
        svg: true,
        ..RunOptions::default()
    };
    let rec = lvs_sim::scenario::observe(&s, &opts).expect("runs");
    let svg = rec.svg.expect("an SVG");
    let pixmap = rasterise(&svg, "seed-07");
    let end = s.duration.as_nanos() as u64;
    let x = |t: u64| lvs_sim::svg::x_of(t * 1_000_000_000, end);
    // director2 stopped 30 s - 50 s, director1 from 80 s on.
    for (d, t) in [("director2", 40), ("director1", 100)] {
        let top = lane_top(&svg, &format!("{d}'s checker"));
        let down = (0xcd, 0x5c, 0x5c);
        for dx in 0..8 {
            let px = rgb(&pixmap, x(t) + f64::from(dx), top + 2.0);
            assert_ne!(px, down, "{d}'s checker at {t}s");
        }
        let vrrp = lane_top(&svg, &format!("WAN @ {d}"));
        assert_eq!(
            rgb(&pixmap, x(t), vrrp + 2.0),
            (0xa9, 0xa9, 0xa9),
            "{d} STOPPED"
        );
    }
    assert!(
        svg.contains("web1 223.202.22.116:80"),
        "real servers by name and address"
    );
    assert!(svg.contains(">stop director1<"), "the fault is labelled");
    assert!(svg.contains("gateway's ARP entry"), "the gateway's view");
    assert!(svg.len() < 1_000_000, "{}", svg.len());
}

// The requests cost the picture a fixed size: a million of them draw as few bytes as a few.
#[test]
fn a_million_requests_stay_under_a_megabyte() {
    use lvs_sim::client::{FailReason, Outcome, RequestRecord};
    use lvs_sim::svg::{render, Context, Timeline};
    let end = Instant::from_secs(3600);
    let mut tl = Timeline::default();
    tl.bin_requests(end);
    let mut state = 1u64;
    for i in 0..1_000_000u64 {
        // A fixed LCG: latencies spread over four decades, one in a thousand failing.
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let started = Instant::from_nanos(i * 3_600_000);
        let latency = Duration::from_micros(100 + (state >> 40) % 1_000_000);
        let outcome = if i % 1000 == 7 {
            Outcome::Failed {
                reason: FailReason::Timeout,
                broken: false,
            }
        } else {
            Outcome::Ok {
                server: "web1".into(),
            }
        };
        tl.request(&RequestRecord {
            started,
            finished: started + latency,
            port: 1,
            target: "10.0.0.100:80".parse().unwrap(),
            outcome,
        });
    }
    let ctx = Context {
        scenario: "a million".into(),
        seed: 1,
        end,
        hosts: Vec::new(),
    };
    let svg = render(&[], &tl, &ctx);
    assert!(svg.len() < 1_000_000, "{} bytes", svg.len());
    assert!(
        svg.contains("failed: 1000 of 1000000"),
        "every request counted"
    );
    rasterise(&svg, "a-million");
}
