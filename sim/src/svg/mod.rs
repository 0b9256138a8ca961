//! A hand-written SVG timeline an operator reads at a glance: a title with the scenario,
//! seed and duration, a legend, a time axis, the faults as labelled markers, every holder
//! of each VIP (two at once drawn as split brain) and where each gateway sends it, VRRP
//! state per instance and director with keepalived's own process states, real servers by
//! name and address as each director's checker sees them, and the requests (rate,
//! failures, p50 / p99 latency) binned per pixel column.
//!
//! `lanes` reads the trace into lanes, `bins` accumulates requests while the run goes,
//! `style` holds the colours and the legend, `input` what the engine hands over besides
//! the trace; this module lays them out and writes SVG.

use std::fmt::Write;

use lvs_core::Instant;

use crate::record::{TraceEntry, TraceEvent};

mod bins;
mod input;
mod lanes;
mod style;

pub use bins::{Column, RequestBins, COLUMNS};
pub use input::{ArpChange, Context, HostInfo, Role, Timeline};

/// Width of the label margin left of the plot, px.
pub const LEFT: f64 = 270.0;
/// Width of the plot, px: one request bin per pixel column.
pub const PLOT_W: f64 = COLUMNS as f64;
/// Width of the picture, px.
pub const WIDTH: f64 = LEFT + PLOT_W + 20.0;
/// Height of a lane's bar, px.
pub const BAR_H: f64 = 16.0;
/// Height of the strip marking a host condition (NIC down, partitioned) along a bar, px.
pub const OVERLAY_H: f64 = 4.0;
/// Distance between lanes, px.
const ROW: f64 = 20.0;
/// Advance of one character of the 11 px monospace font, px.
const CHAR_W: f64 = 6.7;
/// Rows the fault labels are staggered over.
const MARK_ROWS: usize = 6;
const MARK_ROW_H: f64 = 13.0;
const FONT: &str = "DejaVu Sans Mono, Menlo, Consolas, monospace";

/// The colour of a VIP lane while two hosts hold it (split brain).
pub const SPLIT: &str = style::SPLIT;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// At most `n` characters of `s`, an ellipsis marking the cut.
fn fit(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn text_w(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_W
}

/// The x of time `t` (ns) on a plot ending at `end_ns`.
pub fn x_of(t: u64, end_ns: u64) -> f64 {
    let end = end_ns.max(1);
    LEFT + (t.min(end) as f64 / end as f64) * PLOT_W
}

/// A round step (1, 2 or 5 × 10^n ns) giving about ten ticks over `end_ns`.
fn tick_step(end_ns: u64) -> u64 {
    let target = (end_ns / 10).max(1);
    let mut p: u64 = 1;
    loop {
        for m in [1u64, 2, 5] {
            let c = m.saturating_mul(p);
            if c >= target {
                return c;
            }
        }
        match p.checked_mul(10) {
            Some(n) => p = n,
            None => return u64::MAX,
        }
    }
}

/// `t` in seconds with as many decimals as `step` needs: `30s`, `2.5s`, `0.05s`.
fn fmt_t(t: u64, step: u64) -> String {
    let mut decimals = 0;
    let mut unit = 1_000_000_000u64;
    while decimals < 9 && !step.is_multiple_of(unit) {
        decimals += 1;
        unit /= 10;
    }
    let whole = t / 1_000_000_000;
    if decimals == 0 {
        return format!("{whole}s");
    }
    let frac = (t % 1_000_000_000) / unit;
    format!("{whole}.{frac:0decimals$}s")
}

/// A span with two or three significant digits: `3.3s`, `104ms`, `42s`.
fn fmt_span(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s >= 10.0 {
        format!("{s:.0}s")
    } else if s >= 1.0 {
        format!("{s:.1}s")
    } else {
        format!("{:.0}ms", s * 1e3)
    }
}

/// A latency on a decade: `1ms`, `100us`, `10s`.
fn fmt_lat(ns: u64) -> String {
    match ns {
        n if n >= 1_000_000_000 => format!("{}s", n / 1_000_000_000),
        n if n >= 1_000_000 => format!("{}ms", n / 1_000_000),
        n if n >= 1_000 => format!("{}us", n / 1_000),
        n => format!("{n}ns"),
    }
}

/// A rate with the precision its size needs.
fn fmt_rate(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}")
    } else if r >= 1.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.2}")
    }
}

/// The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^n) at or above `v`,
/// so the tallest bar fills most of its panel.
fn nice_ceil(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

/// Requests rebuilt from the trace, for a run that did not bin them as it went (every
/// failure is in the trace; answered ones only with `trace_requests`).
fn bins_from_trace(trace: &[TraceEntry], end: Instant) -> RequestBins {
    let mut b = RequestBins::new(end);
    for e in trace {
        if let TraceEvent::Request { record } = &e.event {
            b.add(record);
        }
    }
    b
}

/// Render the timeline of `trace` (and what `timeline` gathered) for the run `ctx`.
pub fn render(trace: &[TraceEntry], timeline: &Timeline, ctx: &Context) -> String {
    let end_ns = ctx.end.as_nanos().max(1);
    let sections = lanes::build(trace, timeline.arp_changes(), ctx);
    let markers = lanes::markers(trace);
    let fallback;
    let bins = match timeline.requests() {
        Some(b) => b,
        None => {
            fallback = bins_from_trace(trace, ctx.end);
            &fallback
        }
    };
    let mut body = String::new();
    let mut y = 8.0;

    // Title.
    let name = if ctx.scenario.is_empty() {
        "lvsd sim"
    } else {
        ctx.scenario.as_str()
    };
    let step = tick_step(end_ns);
    let _ = writeln!(
        body,
        r#"<text x="4" y="{:.1}" font-size="15" font-weight="bold">{} · seed {} · 0 to {}</text>"#,
        y + 12.0,
        esc(name),
        ctx.seed,
        fmt_t(end_ns, end_ns)
    );
    y += 24.0;

    // Legend.
    y = legend(&mut body, y);

    // Fault labels, staggered so none covers another.
    let marks_top = y + 4.0;
    let mut rows_end = [f64::MIN; MARK_ROWS];
    let mut placed = Vec::new();
    for m in &markers {
        let x = x_of(m.t, end_ns);
        let w = text_w(&m.label);
        let (start, anchor_end) = if x + 3.0 + w > WIDTH - 4.0 {
            (x - 3.0 - w, true)
        } else {
            (x + 3.0, false)
        };
        let row = (0..MARK_ROWS)
            .find(|r| rows_end[*r] + 8.0 < start)
            .unwrap_or_else(|| {
                let mut best = 0;
                for r in 1..MARK_ROWS {
                    if rows_end[r] < rows_end[best] {
                        best = r;
                    }
                }
                best
            });
        rows_end[row] = start + w;
        placed.push((m, x, row, anchor_end));
    }
    let rows_used = placed.iter().map(|p| p.2 + 1).max().unwrap_or(0);
    let marks_h = if markers.is_empty() {
        0.0
    } else {
        14.0 + MARK_ROW_H * rows_used as f64
    };
    if !markers.is_empty() {
        let _ = writeln!(
            body,
            r#"<text x="4" y="{:.1}" font-weight="bold">faults</text>"#,
            marks_top + 11.0
        );
    }
    y = marks_top + marks_h;

    // Top axis.
    let axis_top = y;
    y += 16.0;
    let plot_top = y;

    // Lanes, by section.
    let mut lane_body = String::new();
    for sec in &sections {
        y += 4.0;
        let _ = writeln!(
            lane_body,
            r#"<text x="4" y="{:.1}" font-weight="bold">{}</text>"#,
            y + 12.0,
            esc(sec.title)
        );
        y += 18.0;
        for lane in &sec.lanes {
            draw_lane(&mut lane_body, lane, y, end_ns);
            y += ROW;
        }
    }

    // Requests.
    y += 4.0;
    let _ = writeln!(
        lane_body,
        r#"<text x="4" y="{:.1}" font-weight="bold">requests, by the time they were sent (one bin per pixel)</text>"#,
        y + 12.0
    );
    y += 18.0;
    y = requests(&mut lane_body, bins, y, end_ns);
    let plot_bottom = y;

    // Bottom axis, then the grid and markers across everything.
    let mut grid = String::new();
    let mut t = 0u64;
    loop {
        let x = x_of(t, end_ns);
        let _ = writeln!(
            grid,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{plot_top:.1}" y2="{plot_bottom:.1}" stroke="#e4e4e4"/>"##
        );
        for ty in [axis_top + 12.0, plot_bottom + 13.0] {
            let _ = writeln!(
                body,
                r#"<text x="{x:.1}" y="{ty:.1}" text-anchor="middle">{}</text>"#,
                fmt_t(t, step)
            );
        }
        match t.checked_add(step) {
            Some(n) if n <= end_ns => t = n,
            _ => break,
        }
    }
    let _ = writeln!(
        grid,
        r##"<line x1="{LEFT:.1}" x2="{:.1}" y1="{plot_top:.1}" y2="{plot_top:.1}" stroke="#888888"/>"##,
        LEFT + PLOT_W
    );
    let _ = writeln!(
        grid,
        r##"<line x1="{LEFT:.1}" x2="{:.1}" y1="{plot_bottom:.1}" y2="{plot_bottom:.1}" stroke="#888888"/>"##,
        LEFT + PLOT_W
    );
    let mut marks = String::new();
    for (m, x, row, anchor_end) in &placed {
        let ly = marks_top + 14.0 + MARK_ROW_H * (*row as f64) + 10.0;
        let (tx, anchor) = if *anchor_end {
            (x - 3.0, "end")
        } else {
            (x + 3.0, "start")
        };
        let _ = writeln!(
            marks,
            r##"<g><title>{detail}</title><line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{plot_bottom:.1}" stroke="#000000" stroke-opacity="0.7" stroke-dasharray="4,3"/><text class="fault" x="{tx:.1}" y="{ly:.1}" text-anchor="{anchor}">{label}</text></g>"##,
            ly - 10.0,
            detail = esc(&m.detail),
            label = esc(&m.label),
        );
    }

    let height = plot_bottom + 24.0;
    let mut s = String::with_capacity(body.len() + lane_body.len() + grid.len() + 4096);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="{FONT}" font-size="11">"#
    );
    s.push_str(style::DEFS);
    let _ = writeln!(
        s,
        r##"<rect width="{WIDTH}" height="{height:.0}" fill="#ffffff"/>"##
    );
    s.push_str(&grid);
    s.push_str(&body);
    s.push_str(&lane_body);
    s.push_str(&marks);
    s.push_str("</svg>\n");
    s
}

/// The legend from `y`; returns the y below it.
fn legend(out: &mut String, y: f64) -> f64 {
    let mut x = 4.0;
    let mut y = y;
    for (group, items) in style::legend() {
        let need = text_w(group) + 8.0 + 120.0;
        if x + need > WIDTH - 4.0 {
            x = 4.0;
            y += 16.0;
        }
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" font-weight="bold">{group}:</text>"#,
            y + 10.0
        );
        x += text_w(group) + 12.0;
        for (st, words) in items {
            let w = 16.0 + text_w(words) + 12.0;
            if x + w > WIDTH - 4.0 {
                x = 4.0 + 14.0;
                y += 16.0;
            }
            swatch(out, x, y + 1.0, 12.0, 10.0, &st);
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                x + 16.0,
                y + 10.0,
                esc(words)
            );
            x += w;
        }
        x += 10.0;
    }
    // Faults, whose marker is a line rather than a swatch.
    if x + 60.0 > WIDTH - 4.0 {
        x = 4.0;
        y += 16.0;
    }
    let _ = writeln!(
        out,
        r##"<line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#000000" stroke-dasharray="4,3"/><text x="{:.1}" y="{:.1}">fault</text>"##,
        x + 6.0,
        x + 6.0,
        y,
        y + 12.0,
        x + 14.0,
        y + 10.0
    );
    y + 18.0
}

fn swatch(out: &mut String, x: f64, y: f64, w: f64, h: f64, st: &style::Style) {
    let _ = write!(
        out,
        r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{}" stroke="#999999" stroke-width="0.5"/>"##,
        st.fill
    );
    // As along a lane: a strip at the bottom.
    if let Some(o) = st.overlay {
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="4.0" fill="{o}"/>"#,
            y + h - 4.0
        );
    }
    out.push('\n');
}

/// One lane at `y`: its label, then its stretches, at most one per half pixel (the one
/// most worth seeing wins a shared pixel: split brain over a holder, down over up).
fn draw_lane(out: &mut String, lane: &lanes::Lane, y: f64, end_ns: u64) {
    let indent = if lane.indent { 14.0 } else { 4.0 };
    let room = ((LEFT - indent - 8.0) / CHAR_W) as usize;
    let _ = writeln!(
        out,
        r#"<g data-lane="{}" data-top="{y:.1}"><title>{}</title><text x="{indent:.1}" y="{:.1}">{}</text>"#,
        esc(&lane.label),
        esc(&lane.label),
        y + 12.0,
        esc(&fit(&lane.label, room))
    );
    // Stretches starting in the same half pixel: the last one holds the rest of the way,
    // the one most worth seeing (split brain, down) keeps a pixel of its own first.
    let mut cells: Vec<(f64, &lanes::Seg, &lanes::Seg)> = Vec::new();
    for seg in &lane.segs {
        let x = (x_of(seg.t, end_ns) * 2.0).round() / 2.0;
        match cells.last_mut() {
            Some((cx, best, last)) if *cx == x => {
                if seg.style.rank > best.style.rank {
                    *best = seg;
                }
                *last = seg;
            }
            _ => cells.push((x, seg, seg)),
        }
    }
    let right = LEFT + PLOT_W;
    for (i, (x0, best, last)) in cells.iter().enumerate() {
        let x1 = cells.get(i + 1).map_or(right, |n| n.0);
        if !std::ptr::eq(*best, *last) && x1 - x0 > 1.5 {
            bar(out, *x0, y, 1.0, best);
            bar(out, x0 + 1.0, y, x1 - x0 - 1.0, last);
        } else {
            bar(out, *x0, y, x1 - x0, best);
        }
    }
    out.push_str("</g>\n");
}

/// One stretch of a lane: its bar, its overlay, its words if they fit.
fn bar(out: &mut String, x0: f64, y: f64, w: f64, seg: &lanes::Seg) {
    let w = w.max(0.5);
    let _ = write!(
        out,
        r#"<rect x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{BAR_H:.1}" fill="{}"><title>{}</title></rect>"#,
        seg.style.fill,
        esc(&seg.text)
    );
    // A host condition is a strip along the bottom, so the state's words stay readable.
    if let Some(o) = seg.style.overlay {
        let _ = write!(
            out,
            r#"<rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{OVERLAY_H:.1}" fill="{o}"/>"#,
            y + BAR_H - OVERLAY_H
        );
    }
    let room = ((w - 6.0) / CHAR_W).floor();
    if room >= 5.0 {
        // On a pattern, a halo keeps the words off its stripes.
        let (colour, halo) = match (seg.style.dark, seg.style.fill.starts_with("url(")) {
            (true, _) => ("#ffffff", ""),
            (false, true) => (
                "#111111",
                r##" stroke="#ffffff" stroke-width="3" stroke-opacity="0.85" paint-order="stroke""##,
            ),
            (false, false) => ("#111111", ""),
        };
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" fill="{colour}"{halo}>{}</text>"#,
            x0 + 3.0,
            y + 12.0,
            esc(&fit(&seg.text, room as usize))
        );
    }
    out.push('\n');
}

/// The request panels from `y`: rate (answered and failed, stacked), failures on their own
/// at one bin per pixel (so a single one among many still shows), p50 / p99 latency on a
/// log scale. Rate and latency merge bins in a sparse run, where a pixel holds too few
/// requests for a rate or a p99 to mean anything. Returns the y below.
fn requests(out: &mut String, bins: &RequestBins, y: f64, end_ns: u64) -> f64 {
    let in_plot = |c: &Column| c.t0 < end_ns;
    let pixels: Vec<Column> = bins.columns().into_iter().filter(in_plot).collect();
    let total_ok: u64 = pixels.iter().map(|c| u64::from(c.ok)).sum();
    let total_failed: u64 = pixels.iter().map(|c| u64::from(c.failed)).sum();
    let total = total_ok + total_failed;
    if total == 0 {
        let _ = writeln!(out, r#"<text x="4" y="{:.1}">no requests</text>"#, y + 12.0);
        return y + ROW;
    }
    // About 50 requests a bar on average, or 32 pixels a bar at the most.
    let busy = pixels.iter().filter(|c| c.ok + c.failed > 0).count().max(1) as u64;
    let group = [1usize, 2, 4, 8, 16, 32]
        .into_iter()
        .find(|g| total * *g as u64 / busy >= 50)
        .unwrap_or(32);
    let cols: Vec<Column> = bins.grouped(group).into_iter().filter(in_plot).collect();
    let bar_ns = bins.width_ns().saturating_mul(group as u64);
    let bar_s = bar_ns as f64 / 1e9;
    let span = |c: &Column, w_ns: u64| {
        let x0 = x_of(c.t0, end_ns);
        let x1 = x_of(c.t0.saturating_add(w_ns), end_ns);
        (x0, (x1 - x0).max(0.5))
    };

    // Rate.
    const RATE_H: f64 = 50.0;
    let max_rate = cols
        .iter()
        .map(|c| f64::from(c.ok) + f64::from(c.failed))
        .fold(0.0, f64::max)
        / bar_s;
    let scale = nice_ceil(max_rate);
    let base = y + RATE_H;
    let (mut ok_d, mut fail_d) = (String::new(), String::new());
    for c in &cols {
        let (x, w) = span(c, bar_ns);
        let h_ok = f64::from(c.ok) / bar_s / scale * RATE_H;
        let h_fail = f64::from(c.failed) / bar_s / scale * RATE_H;
        if c.ok > 0 {
            let _ = write!(ok_d, "M{x:.1} {base:.1}h{w:.1}v-{h_ok:.1}h-{w:.1}z");
        }
        if c.failed > 0 {
            let top = base - h_ok;
            let _ = write!(fail_d, "M{x:.1} {top:.1}h{w:.1}v-{h_fail:.1}h-{w:.1}z");
        }
    }
    let per = if group == 1 {
        "per pixel".to_string()
    } else {
        format!("per {}", fmt_span(bar_ns))
    };
    let _ = writeln!(
        out,
        r##"<text x="4" y="{:.1}">requests/s sent, {per}</text><text x="4" y="{:.1}" fill="#666666">(finished ones)</text><text x="{:.1}" y="{:.1}" text-anchor="end">{}/s</text><text x="{:.1}" y="{base:.1}" text-anchor="end">0</text>"##,
        y + 12.0,
        y + 26.0,
        LEFT - 4.0,
        y + 9.0,
        fmt_rate(scale),
        LEFT - 4.0
    );
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e4e4e4"/>"##,
        LEFT + PLOT_W
    );
    let _ = writeln!(out, r#"<path d="{ok_d}" fill="{}"/>"#, style::REQ_OK);
    if !fail_d.is_empty() {
        let _ = writeln!(out, r#"<path d="{fail_d}" fill="{}"/>"#, style::REQ_FAILED);
    }
    let mut y = base + 6.0;

    // Failures, per pixel.
    const FAIL_H: f64 = 24.0;
    let max_failed = pixels.iter().map(|c| c.failed).max().unwrap_or(0);
    let _ = writeln!(
        out,
        r#"<text x="4" y="{:.1}">failed: {total_failed} of {total}</text>"#,
        y + 14.0,
    );
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT:.1}" y="{y:.1}" width="{PLOT_W:.1}" height="{FAIL_H:.1}" fill="#fbfbfb"/>"##
    );
    if max_failed > 0 {
        let base = y + FAIL_H;
        let mut d = String::new();
        for c in pixels.iter().filter(|c| c.failed > 0) {
            let (x, w) = span(c, bins.width_ns());
            // A single failure stays visible among thousands.
            let h = (f64::from(c.failed) / f64::from(max_failed) * FAIL_H).max(4.0);
            let w = w.max(1.0);
            let _ = write!(d, "M{x:.1} {base:.1}h{w:.1}v-{h:.1}h-{w:.1}z");
        }
        let _ = writeln!(
            out,
            r#"<path d="{d}" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{max_failed}/px</text>"#,
            style::REQ_FAILED,
            LEFT - 4.0,
            y + 9.0
        );
    }
    y += FAIL_H + 6.0;

    // Latency, log scale over whole decades.
    const LAT_H: f64 = 70.0;
    let lats: Vec<u64> = cols
        .iter()
        .flat_map(|c| [c.p50_ns, c.p99_ns])
        .flatten()
        .collect();
    let _ = writeln!(
        out,
        r#"<text x="4" y="{:.1}">latency of answered, {per}</text><text x="4" y="{:.1}" fill="{}">p50</text><text x="40" y="{:.1}" fill="{}">p99</text>"#,
        y + 12.0,
        y + 26.0,
        style::P50,
        y + 26.0,
        style::P99
    );
    if let (Some(&lo), Some(&hi)) = (lats.iter().min(), lats.iter().max()) {
        let mut lo_dec = 1u64;
        while lo_dec.saturating_mul(10) <= lo {
            lo_dec *= 10;
        }
        let mut hi_dec = lo_dec.saturating_mul(10);
        while hi_dec < hi && hi_dec < u64::MAX / 10 {
            hi_dec *= 10;
        }
        let (l0, l1) = ((lo_dec as f64).log10(), (hi_dec as f64).log10());
        let ly = |ns: u64| y + LAT_H - ((ns as f64).log10() - l0) / (l1 - l0) * LAT_H;
        let mut dec = lo_dec;
        while dec <= hi_dec {
            let gy = ly(dec);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT:.1}" x2="{:.1}" y1="{gy:.1}" y2="{gy:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + PLOT_W,
                LEFT - 4.0,
                gy + 4.0,
                fmt_lat(dec)
            );
            match dec.checked_mul(10) {
                Some(n) => dec = n,
                None => break,
            }
        }
        let p99: fn(&Column) -> Option<u64> = |c| c.p99_ns;
        let p50: fn(&Column) -> Option<u64> = |c| c.p50_ns;
        for (pick, colour) in [(p99, style::P99), (p50, style::P50)] {
            let mut d = String::new();
            let mut open = false;
            for c in &cols {
                match pick(c) {
                    // A step per bar: flat across the time it covers.
                    Some(ns) => {
                        let (x, w) = span(c, bar_ns);
                        let cmd = if open { 'L' } else { 'M' };
                        let ny = ly(ns);
                        let _ = write!(d, "{cmd}{x:.1} {ny:.1}H{:.1}", x + w);
                        open = true;
                    }
                    None => open = false,
                }
            }
            let _ = writeln!(
                out,
                r#"<path d="{d}" fill="none" stroke="{colour}" stroke-width="1.5" stroke-linejoin="round"/>"#
            );
        }
    }
    y + LAT_H + 4.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{FaultRecord, IpvsRecord};
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    fn entry(t_s: u64, host: &str, event: TraceEvent) -> TraceEntry {
        TraceEntry {
            t: t_s * 1_000_000_000,
            host: Arc::from(host),
            event,
        }
    }

    fn vip(t_s: u64, host: &str, add: bool) -> TraceEntry {
        let (iface, addr) = ("eth0".to_string(), "10.0.0.100".to_string());
        entry(
            t_s,
            host,
            if add {
                TraceEvent::AddVip { iface, addr }
            } else {
                TraceEvent::DelVip { iface, addr }
            },
        )
    }

    fn ctx(end_s: u64) -> Context {
        let host = |name: &str, role, last: u8| HostInfo {
            name: name.into(),
            role,
            addrs: vec![Ipv4Addr::new(10, 0, 0, last).into()],
            macs: vec![[2, 0, 0, 0, 0, last]],
        };
        Context {
            scenario: "test".into(),
            seed: 7,
            end: Instant::from_secs(end_s),
            hosts: vec![
                host("d1", Role::Director, 1),
                host("d2", Role::Director, 2),
                host("web1", Role::RealServer, 11),
                host("gw", Role::Gateway, 254),
            ],
        }
    }

    /// The stretches of the lane labelled `label`: their tooltips, in order.
    fn lane_titles(svg: &str, label: &str) -> Vec<String> {
        let start = svg
            .find(&format!("data-lane=\"{label}\""))
            .unwrap_or_else(|| panic!("no lane {label} in {svg}"));
        let lane = &svg[start..start + svg[start..].find("</g>").unwrap()];
        lane.match_indices("<rect")
            .filter_map(|(i, _)| {
                let r = &lane[i..];
                // Overlays have no title of their own.
                let t = r.find('>')? + 1;
                let t = t + r[t..].strip_prefix("<title>").map(|_| 7)?;
                Some(r[t..t + r[t..].find('<')?].to_string())
            })
            .collect()
    }

    // The VIP lane used to show only the last holder, which hid split brain.
    #[test]
    fn a_vip_held_twice_is_drawn_as_split_brain() {
        let trace = [vip(1, "d1", true), vip(2, "d2", true), vip(3, "d1", false)];
        let svg = render(&trace, &Timeline::default(), &ctx(4));
        // Before, during and after: nobody, d1 alone, both, d2 alone.
        assert_eq!(
            lane_titles(&svg, "VIP 10.0.0.100"),
            vec!["no holder", "d1", "SPLIT BRAIN: d1 + d2", "d2"]
        );
        let lane = &svg[svg.find("data-lane=\"VIP").unwrap()..];
        assert_eq!(lane[..lane.find("</g>").unwrap()].matches(SPLIT).count(), 1);
    }

    fn ipvs(t_s: u64, host: &str, op: &'static str, weight: Option<i32>) -> TraceEntry {
        entry(
            t_s,
            host,
            TraceEvent::Ipvs(IpvsRecord {
                op,
                service: "TCP 10.0.0.100:80".into(),
                scheduler: None,
                persistence: None,
                dest: Some("10.0.0.11:80".into()),
                weight,
                fwd: None,
            }),
        )
    }

    fn fault(t_s: u64, host: &str, kind: &'static str) -> TraceEntry {
        entry(
            t_s,
            host,
            TraceEvent::Fault(FaultRecord {
                kind,
                description: format!("{kind} {host}"),
                ..FaultRecord::default()
            }),
        )
    }

    fn process(t_s: u64, host: &str, running: bool) -> TraceEntry {
        entry(t_s, host, TraceEvent::Process { running })
    }

    // A killed director's checker sees nothing: its lanes must not read as the real
    // server failing. SIGTERM empties the table first: not a failure either.
    #[test]
    fn a_killed_or_stopped_director_s_lanes_are_not_a_real_server_down() {
        let trace = [
            process(0, "d1", true),
            process(0, "d2", true),
            ipvs(1, "d1", "add_dest", Some(1)),
            ipvs(1, "d2", "add_dest", Some(1)),
            fault(5, "d1", "kill"),
            process(5, "d1", false),
            fault(6, "d2", "stop"),
            ipvs(7, "d2", "del_dest", None),
            process(8, "d2", false),
            process(9, "d1", true),
            ipvs(9, "d1", "add_dest", Some(0)),
        ];
        let svg = render(&trace, &Timeline::default(), &ctx(10));
        assert_eq!(
            lane_titles(&svg, "d1's checker"),
            vec![
                "no checker yet (director starting)",
                "up (weight 1)",
                "no checker (director not running: killed)",
                "down (weight 0)",
            ]
        );
        assert_eq!(
            lane_titles(&svg, "d2's checker"),
            vec![
                "no checker yet (director starting)",
                "up (weight 1)",
                "no checker (director stopping)",
                "no checker (director not running: stopped)",
            ]
        );
        let d1 = &svg[svg.find("data-lane=\"d1's checker\"").unwrap()..];
        let killed = &d1[d1.find("no checker").unwrap() - 120..d1.find("no checker").unwrap()];
        assert!(killed.contains("url(#p-nochk)"), "{killed}");
        assert!(!killed.contains(style::DOWN.fill), "{killed}");
        // The real server's own lane carries its name and address.
        assert!(svg.contains("data-lane=\"web1 10.0.0.11:80\""), "{svg}");
    }

    #[test]
    fn process_states_are_their_own_vrrp_states() {
        let notify = |t, host: &str, state| {
            entry(
                t,
                host,
                TraceEvent::Notify {
                    kind: lvs_core::director::StateChangeKind::Instance,
                    name: "VI_1".into(),
                    state,
                    priority: 100,
                },
            )
        };
        use lvs_core::director::VrrpState::*;
        let nic = |t, up| {
            entry(
                t,
                "d2",
                TraceEvent::Fault(FaultRecord {
                    kind: "nic",
                    description: "nic d2 eth0".into(),
                    iface: Some("eth0".into()),
                    up: Some(up),
                    ..FaultRecord::default()
                }),
            )
        };
        let trace = [
            process(1, "d1", true),
            process(1, "d2", true),
            notify(2, "d1", Master),
            notify(2, "d2", Backup),
            fault(3, "d1", "pause"),
            fault(4, "d1", "resume"),
            nic(5, false),
            notify(5, "d2", Fault),
            nic(6, true),
            fault(7, "d1", "kill"),
            process(7, "d1", false),
        ];
        let svg = render(&trace, &Timeline::default(), &ctx(8));
        assert_eq!(
            lane_titles(&svg, "VI_1 @ d1"),
            vec![
                "not started",
                "starting",
                "MASTER",
                "paused (SIGSTOP), was MASTER",
                "MASTER",
                "killed (SIGKILL)"
            ]
        );
        assert_eq!(
            lane_titles(&svg, "VI_1 @ d2"),
            vec![
                "not started",
                "starting",
                "BACKUP",
                "FAULT · NIC eth0 down",
                "FAULT"
            ]
        );
    }

    #[test]
    fn the_gateway_lane_names_the_director_whose_mac_it_holds() {
        let mut tl = Timeline::default();
        let vip_ip: std::net::IpAddr = Ipv4Addr::new(10, 0, 0, 100).into();
        tl.arp_entry(1_000_000_000, 3, vip_ip, [2, 0, 0, 0, 0, 1]);
        tl.arp_entry(1_500_000_000, 3, vip_ip, [2, 0, 0, 0, 0, 1]);
        tl.arp_entry(2_500_000_000, 3, vip_ip, [2, 0, 0, 0, 0, 2]);
        assert_eq!(
            tl.arp_changes().len(),
            2,
            "an unchanged entry is not a change"
        );
        // d1 gives the VIP up at 2 s, d2 takes it at 3 s: the gateway moved early.
        let trace = [vip(1, "d1", true), vip(2, "d1", false), vip(3, "d2", true)];
        let svg = render(&trace, &tl, &ctx(4));
        assert_eq!(
            lane_titles(&svg, "gw's ARP entry"),
            vec![
                "not resolved",
                "→ d1 (02:00:00:00:00:01)",
                "→ d1 (02:00:00:00:00:01) · stale: d1 does not hold it",
                "→ d2 (02:00:00:00:00:02) · stale: d2 does not hold it",
                "→ d2 (02:00:00:00:00:02)",
            ]
        );
    }

    #[test]
    fn ticks_are_round_and_labels_say_seconds() {
        assert_eq!(tick_step(120_000_000_000), 20_000_000_000);
        assert_eq!(tick_step(100_000_000_000), 10_000_000_000);
        assert_eq!(tick_step(3_000_000_000), 500_000_000);
        assert_eq!(tick_step(1), 1);
        assert_eq!(tick_step(u64::MAX), 2_000_000_000_000_000_000);
        assert_eq!(fmt_t(30_000_000_000, 10_000_000_000), "30s");
        assert_eq!(fmt_t(2_500_000_000, 500_000_000), "2.5s");
        assert_eq!(fmt_t(50_000_000, 50_000_000), "0.05s");
        assert_eq!(fmt_rate(nice_ceil(1050.0)), "1200");
        assert_eq!(fmt_rate(nice_ceil(7.9)), "8.0");
        assert_eq!(fmt_rate(nice_ceil(0.3)), "0.30");
        assert_eq!(nice_ceil(0.0), 1.0);
    }

    #[test]
    fn fault_labels_do_not_overlap() {
        let trace: Vec<TraceEntry> = (0..6)
            .map(|i| fault(10 + i, &format!("director{i}"), "kill"))
            .collect();
        let svg = render(&trace, &Timeline::default(), &ctx(100));
        let mut spans: Vec<(f64, f64, f64)> = Vec::new();
        for (i, _) in svg.match_indices("<text class=\"fault\" x=\"") {
            let rest = &svg[i + 23..];
            let num = |s: &str| s[..s.find('"').unwrap()].parse::<f64>().unwrap();
            let x = num(rest);
            let y = num(&rest[rest.find("y=\"").unwrap() + 3..]);
            let label = &rest[rest.find('>').unwrap() + 1..rest.find("</text>").unwrap()];
            spans.push((y, x, x + text_w(label)));
        }
        assert_eq!(spans.len(), 6);
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                assert!(a.0 != b.0 || a.2 < b.1 || b.2 < a.1, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn any_trace_renders() {
        let svg = render(&[], &Timeline::default(), &ctx(0));
        assert!(svg.contains("no requests") && svg.ends_with("</svg>\n"));
    }
}
