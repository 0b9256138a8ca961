//! The driver side of `lvs_core::director::Director`: the trait the simulator drives (so a
//! test can stand in a fake director), the factory used for start and restart, the
//! per-node clock that lets a director's time drift, and how long the process takes on a
//! real host.

use std::time::Duration;

use lvs_core::director::{Director, Input, Output};
use lvs_core::ipvs::table::Ipvs;
use lvs_core::Instant;
use rand::Rng;
use rand_core::RngCore;

use crate::stack::IfaceSpec;

/// The sans-IO contract of a director, as the simulator drives it.
pub trait DirectorNode {
    /// Feed an input.
    fn handle_input(&mut self, now: Instant, input: Input);
    /// Timers due at or before `now` fire.
    fn handle_timeout(&mut self, now: Instant);
    /// Next output to execute.
    fn poll_output(&mut self) -> Option<Output>;
    /// Next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The IPVS table as `ipvsadm -L -n` prints it, when the director has one.
    fn ipvsadm_list(&self) -> Option<String> {
        None
    }
    /// The IPVS table itself, when the director keeps one.
    fn ipvs(&self) -> Option<&Ipvs> {
        None
    }
    /// `frame` will be handed over soon: a hint to start loading what handling it reads.
    fn prefetch(&self, _frame: &[u8]) {}
}

impl DirectorNode for Director {
    fn handle_input(&mut self, now: Instant, input: Input) {
        Director::handle_input(self, now, input)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Director::handle_timeout(self, now)
    }
    fn poll_output(&mut self) -> Option<Output> {
        Director::poll_output(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Director::poll_timeout(self)
    }
    fn ipvsadm_list(&self) -> Option<String> {
        Some(Director::ipvsadm_list(self))
    }
    fn ipvs(&self) -> Option<&Ipvs> {
        Some(Director::ipvs(self))
    }
    fn prefetch(&self, frame: &[u8]) {
        Director::prefetch(self, frame)
    }
}

/// What a director process can learn about its host when it starts (what the daemon reads
/// from the kernel: interface names, MACs and addresses).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HostEnv {
    /// Host name (keepalived's default router_id).
    pub hostname: String,
    /// Interfaces as configured (VIPs not included).
    pub ifaces: Vec<IfaceSpec>,
    /// Default gateway.
    pub gateway: Option<std::net::Ipv4Addr>,
    /// IPv6 default gateway.
    pub gateway6: Option<std::net::Ipv6Addr>,
}

/// Builds a fresh director process (at start and on every restart) from the host's
/// description and the node's RNG.
pub type DirectorFactory = Box<dyn FnMut(&HostEnv, &mut dyn RngCore) -> Box<dyn DirectorNode>>;

pub use lvs_scenarios::{ProcessTiming, Span};

/// One draw from `span`, uniform in nanoseconds; no draw (and so no shift of the stream)
/// for a fixed span.
pub fn draw(span: &Span, rng: &mut impl Rng) -> Duration {
    if span.hi <= span.lo {
        return span.lo;
    }
    let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.gen_range(ns(span.lo)..=ns(span.hi)))
}

/// One draw from `span`, log-uniform (as heavy-tailed as latencies are: most draws near
/// `lo`, a few near `hi`); uniform when `lo` is zero, nothing drawn for a fixed span.
pub fn draw_log(span: &Span, rng: &mut impl Rng) -> Duration {
    if span.hi <= span.lo {
        return span.lo;
    }
    if span.lo.is_zero() {
        return draw(span, rng);
    }
    let (lo, hi) = (span.lo.as_secs_f64(), span.hi.as_secs_f64());
    let u: f64 = rng.gen_range(0.0..=1.0);
    Duration::from_secs_f64(lo * (hi / lo).powf(u)).clamp(span.lo, span.hi)
}

/// A node's view of time: runs at `1 + ppm/1e6` of the simulator's rate from an anchor on.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Clock {
    ppm: i64,
    global_anchor: u64,
    local_anchor: u64,
}

const MILLION: i128 = 1_000_000;

impl Clock {
    /// Local time at global time `g`.
    pub fn local(&self, g: Instant) -> Instant {
        if self.ppm == 0 {
            return Instant::from_nanos(
                self.local_anchor + g.as_nanos().saturating_sub(self.global_anchor),
            );
        }
        let dg = i128::from(g.as_nanos().saturating_sub(self.global_anchor));
        let dl = dg * (MILLION + i128::from(self.ppm)) / MILLION;
        Instant::from_nanos(
            self.local_anchor
                .saturating_add(u64::try_from(dl).unwrap_or(0)),
        )
    }

    /// Earliest global time whose local time is at or after `l`.
    pub fn global(&self, l: Instant) -> Instant {
        if self.ppm == 0 {
            return Instant::from_nanos(
                self.global_anchor
                    .saturating_add(l.as_nanos().saturating_sub(self.local_anchor)),
            );
        }
        let dl = i128::from(l.as_nanos().saturating_sub(self.local_anchor));
        let rate = MILLION + i128::from(self.ppm);
        let dg = (dl * MILLION + rate - 1) / rate;
        Instant::from_nanos(
            self.global_anchor
                .saturating_add(u64::try_from(dg).unwrap_or(u64::MAX)),
        )
    }

    /// Change the rate from global time `now` on; `ppm` is clamped above -1e6 (time never stops).
    pub fn set_drift(&mut self, now: Instant, ppm: i64) {
        let local = self.local(now);
        *self = Clock {
            ppm: ppm.max(-999_999),
            global_anchor: now.as_nanos(),
            local_anchor: local.as_nanos(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_their_span_and_latencies_lean_low() {
        let mut rng = crate::rng::node_rng(1, 1);
        let ms = Duration::from_millis;
        let span = Span {
            lo: Duration::from_micros(100),
            hi: ms(6),
        };
        let draws: Vec<Duration> = (0..2000).map(|_| draw_log(&span, &mut rng)).collect();
        assert!(draws.iter().all(|d| (span.lo..=span.hi).contains(d)));
        let below_1ms = draws.iter().filter(|d| **d < ms(1)).count();
        // log-uniform: P(< 1 ms) = ln(10) / ln(60) = 56 %; uniform would give 15 %.
        assert!((1000..1250).contains(&below_1ms), "{below_1ms}");
        let fixed = Span::fixed(ms(3));
        let before = rng.clone();
        assert_eq!(draw(&fixed, &mut rng), ms(3));
        assert_eq!(draw_log(&fixed, &mut rng), ms(3));
        assert_eq!(rng, before, "a fixed span draws nothing");
        let uniform: Vec<Duration> = (0..2000).map(|_| draw(&span, &mut rng)).collect();
        assert!(uniform.iter().all(|d| (span.lo..=span.hi).contains(d)));
        assert!(uniform.iter().filter(|d| **d < ms(1)).count() < 450);
    }

    #[test]
    fn drift_scales_local_time_and_inverts() {
        let mut c = Clock::default();
        assert_eq!(c.local(Instant::from_secs(5)), Instant::from_secs(5));
        c.set_drift(Instant::from_secs(10), 100_000); // 10% fast
        assert_eq!(c.local(Instant::from_secs(20)), Instant::from_secs(21));
        let g = c.global(Instant::from_secs(21));
        assert_eq!(g, Instant::from_secs(20));
        assert!(c.local(g) >= Instant::from_secs(21));
        c.set_drift(Instant::from_secs(20), -500_000); // then half speed
        assert_eq!(c.local(Instant::from_secs(30)), Instant::from_secs(26));
    }

    proptest::proptest! {
        /// `global` is the earliest global time whose local time reaches `l`, with or
        /// without drift (no drift takes a shortcut).
        #[test]
        fn global_is_the_earliest_time_reaching_local(
            at in 0u64..1_000_000_000_000,
            ppm in proptest::prop_oneof![proptest::strategy::Just(0i64), -999_999i64..1_000_000],
            ahead in 1u64..1_000_000_000_000,
        ) {
            let mut c = Clock::default();
            c.set_drift(Instant::from_nanos(at), 250);
            c.set_drift(Instant::from_nanos(at.saturating_mul(2)), ppm);
            let l = Instant::from_nanos(c.local(Instant::from_nanos(at * 2)).as_nanos() + ahead);
            let g = c.global(l);
            proptest::prop_assert!(c.local(g) >= l);
            proptest::prop_assert!(c.local(Instant::from_nanos(g.as_nanos() - 1)) < l);
        }
    }
}
