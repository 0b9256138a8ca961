//! Requests binned by the time they were sent, one bin per pixel column of the timeline,
//! so the picture of a run costs the same whatever its number of requests.

use lvs_core::Instant;

use crate::client::{Outcome, RequestRecord};

/// Bins across the plot: one per pixel column of the timeline.
pub const COLUMNS: usize = 960;

/// Latency buckets per bin: 4 per octave of microseconds, from 1 us up to about 134 s
/// (the last bucket holds everything slower), about 19 % wide each.
const BUCKETS: usize = 112;

/// Request counts and a small latency histogram per time bin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestBins {
    /// Width of one bin in ns; doubles (bins merged in pairs) when a request is sent past
    /// the last one, so the bins always cover the run.
    width_ns: u64,
    ok: Vec<u32>,
    failed: Vec<u32>,
    /// Latency of the answered requests.
    hist: Vec<[u32; BUCKETS]>,
}

/// One bin as the timeline draws it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// Start of the bin, ns.
    pub t0: u64,
    /// Requests sent in it and answered.
    pub ok: u32,
    /// Requests sent in it that failed.
    pub failed: u32,
    /// Median latency of the answered ones (about 19 % precision).
    pub p50_ns: Option<u64>,
    /// 99th percentile latency of the answered ones.
    pub p99_ns: Option<u64>,
}

impl RequestBins {
    /// Bins covering a run that ends at `end`.
    pub fn new(end: Instant) -> Self {
        let width_ns = end.as_nanos().div_ceil(COLUMNS as u64).max(1);
        RequestBins {
            width_ns,
            ok: vec![0; COLUMNS],
            failed: vec![0; COLUMNS],
            hist: vec![[0; BUCKETS]; COLUMNS],
        }
    }

    /// Width of one bin in ns.
    pub fn width_ns(&self) -> u64 {
        self.width_ns
    }

    /// Account one finished request in the bin of the time it was sent.
    pub fn add(&mut self, r: &RequestRecord) {
        let t = r.started.as_nanos();
        while t / self.width_ns >= COLUMNS as u64 {
            self.grow();
        }
        let col = (t / self.width_ns) as usize;
        match r.outcome {
            Outcome::Ok { .. } => {
                self.ok[col] = self.ok[col].saturating_add(1);
                let lat = r.finished.as_nanos().saturating_sub(t);
                let b = &mut self.hist[col][bucket(lat)];
                *b = b.saturating_add(1);
            }
            Outcome::Failed { .. } => self.failed[col] = self.failed[col].saturating_add(1),
        }
    }

    /// Twice as wide bins: neighbours merged.
    fn grow(&mut self) {
        for i in 0..COLUMNS {
            let (a, b) = (2 * i, 2 * i + 1);
            let pair = |v: &[u32]| {
                let at = |j: usize| v.get(j).copied().unwrap_or(0);
                at(a).saturating_add(at(b))
            };
            self.ok[i] = pair(&self.ok);
            self.failed[i] = pair(&self.failed);
            let mut h = [0u32; BUCKETS];
            for j in [a, b] {
                if let Some(src) = self.hist.get(j) {
                    for (d, s) in h.iter_mut().zip(src) {
                        *d = d.saturating_add(*s);
                    }
                }
            }
            self.hist[i] = h;
        }
        self.width_ns = self.width_ns.saturating_mul(2);
    }

    /// The bins in time order.
    pub fn columns(&self) -> Vec<Column> {
        self.grouped(1)
    }

    /// The bins merged `g` at a time (wider bars for a sparse run, where one pixel holds
    /// too few requests for a rate or a p99 to mean anything), in time order.
    pub fn grouped(&self, g: usize) -> Vec<Column> {
        let g = g.max(1);
        (0..COLUMNS)
            .step_by(g)
            .map(|i| {
                let range = i..(i + g).min(COLUMNS);
                let sum = |v: &[u32]| {
                    v[range.clone()]
                        .iter()
                        .fold(0u32, |a, b| a.saturating_add(*b))
                };
                let mut h = [0u32; BUCKETS];
                for src in &self.hist[range.clone()] {
                    for (d, s) in h.iter_mut().zip(src) {
                        *d = d.saturating_add(*s);
                    }
                }
                Column {
                    t0: i as u64 * self.width_ns,
                    ok: sum(&self.ok),
                    failed: sum(&self.failed),
                    p50_ns: quantile(&h, 0.50),
                    p99_ns: quantile(&h, 0.99),
                }
            })
            .collect()
    }
}

/// The bucket of a latency: the octave of its microseconds and the next two bits.
fn bucket(ns: u64) -> usize {
    let us = ns / 1000;
    if us == 0 {
        return 0;
    }
    let e = 63 - us.leading_zeros() as usize;
    let sub = if e >= 2 {
        (us >> (e - 2)) & 3
    } else {
        (us << (2 - e)) & 3
    } as usize;
    (e * 4 + sub).min(BUCKETS - 1)
}

/// The middle of bucket `b` in ns.
fn bucket_mid(b: usize) -> u64 {
    let (e, sub) = ((b / 4) as u32, (b % 4) as u64);
    if e < 2 {
        // The first octaves are sparse: their buckets hold whole microseconds.
        return ((4 + sub) << e) / 4 * 1000 + 500;
    }
    // [(4 + sub) << (e - 2), (5 + sub) << (e - 2)) us: the middle is (9 + 2 sub) << e / 8.
    ((9 + 2 * sub) << e) * 125
}

/// The nearest-rank quantile `q` of a histogram, `None` when it is empty.
fn quantile(h: &[u32; BUCKETS], q: f64) -> Option<u64> {
    let total: u64 = h.iter().map(|c| u64::from(*c)).sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0u64;
    for (b, c) in h.iter().enumerate() {
        seen += u64::from(*c);
        if seen >= rank {
            return Some(bucket_mid(b));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::FailReason;

    fn rec(started_ms: u64, latency_us: u64, ok: bool) -> RequestRecord {
        let started = Instant::from_millis(started_ms);
        RequestRecord {
            started,
            finished: started + std::time::Duration::from_micros(latency_us),
            port: 1,
            target: "10.0.0.100:80".parse().unwrap(),
            outcome: if ok {
                Outcome::Ok {
                    server: "rs".into(),
                }
            } else {
                Outcome::Failed {
                    reason: FailReason::Reset,
                    broken: false,
                }
            },
        }
    }

    #[test]
    fn buckets_hold_their_latency_within_a_fifth() {
        // Below 5 us the sparse first octaves round to whole microseconds.
        for us in [5u64, 9, 17, 100, 999, 12_345, 1_000_000, 100_000_000] {
            let mid = bucket_mid(bucket(us * 1000)) as f64;
            let err = (mid - (us * 1000) as f64).abs() / (us * 1000) as f64;
            assert!(err < 0.25, "{us} us: bucket middle {mid} ns");
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket(0), 0);
    }

    #[test]
    fn quantiles_and_counts_per_bin() {
        let mut b = RequestBins::new(Instant::from_secs(96));
        // 100 ms per bin: 99 fast answers and one slow, a failure, in bin 3.
        for i in 0..99 {
            b.add(&rec(300 + i, 1_000, true));
        }
        b.add(&rec(350, 500_000, true));
        b.add(&rec(360, 0, false));
        let c: Vec<Column> = b
            .columns()
            .into_iter()
            .filter(|c| c.ok + c.failed > 0)
            .collect();
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].t0, c[0].ok, c[0].failed), (300_000_000, 100, 1));
        let p50 = c[0].p50_ns.unwrap();
        assert!((800_000..1_200_000).contains(&p50), "{p50}");
        let p99 = c[0].p99_ns.unwrap();
        assert!((800_000..1_200_000).contains(&p99), "{p99}: rank 99 of 100");
    }

    #[test]
    fn a_request_past_the_end_widens_the_bins() {
        let mut b = RequestBins::new(Instant::from_secs(96));
        b.add(&rec(50, 10, true));
        b.add(&rec(150, 10, true));
        b.add(&rec(200_000, 10, true));
        assert_eq!(b.width_ns(), 400_000_000);
        let busy: Vec<(u64, u32)> = b
            .columns()
            .into_iter()
            .filter(|c| c.ok > 0)
            .map(|c| (c.t0, c.ok))
            .collect();
        assert_eq!(busy, vec![(0, 2), (200_000_000_000, 1)]);
        let wide = b.grouped(500);
        assert_eq!(wide.len(), 2);
        assert_eq!(
            (wide[0].ok, wide[1].ok, wide[1].t0),
            (2, 1, 200_000_000_000)
        );
    }
}
