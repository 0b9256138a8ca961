//! The core's clock type: nanoseconds since an arbitrary origin chosen by the driver.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point in time, in nanoseconds since the driver's origin.
///
/// The simulator starts at zero so timelines are byte-stable; the daemon maps
/// the monotonic clock onto it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Instant(u64);

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant(0);

    /// An instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// An instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis * 1_000_000)
    }

    /// An instant `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> Self {
        Instant(secs * 1_000_000_000)
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time since the origin.
    pub const fn since_origin(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, or `None` on overflow.
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        u64::try_from(d.as_nanos())
            .ok()
            .and_then(|n| self.0.checked_add(n))
            .map(Instant)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(nanos(d)))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(nanos(d)))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Display for Instant {
    /// Seconds with millisecond precision, e.g. `12.345`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:03}",
            self.0 / 1_000_000_000,
            (self.0 / 1_000_000) % 1000
        )
    }
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad duration {text:?}: {reason} (write e.g. \"500ms\", \"30s\", \"2m\", \"1m30s\")")]
pub struct DurationError {
    /// The text as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: DurationProblem,
}

/// The specific defect of a refused duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationProblem {
    /// Nothing was written.
    Empty,
    /// A number was not followed by a unit (bare numbers are ambiguous).
    MissingUnit,
    /// A unit was not preceded by a number.
    MissingNumber,
    /// The unit is not one of ns, us, ms, s, m, h.
    UnknownUnit,
    /// The value does not fit in 64 bits of nanoseconds.
    TooLarge,
}

impl fmt::Display for DurationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DurationProblem::Empty => "it is empty",
            DurationProblem::MissingUnit => "a number needs a unit (ns, us, ms, s, m or h)",
            DurationProblem::MissingNumber => "a unit needs a number before it",
            DurationProblem::UnknownUnit => "the unit must be one of ns, us, ms, s, m, h",
            DurationProblem::TooLarge => "it is too large",
        })
    }
}

/// Parses "500ms", "30s", "1.5s", "2m", "1h", or a sum of parts such as "1m30s" (scenario
/// files, `lvsd sim --until`, trace `time` lines).
///
/// A bare number is refused: "30" could mean seconds or milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let fail = |reason| DurationError {
        text: text.to_string(),
        reason,
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(fail(DurationProblem::Empty));
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() {
            return Err(fail(DurationProblem::MissingNumber));
        }
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after_unit) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "" => return Err(fail(DurationProblem::MissingUnit)),
            "ns" => 1,
            "us" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(fail(DurationProblem::UnknownUnit)),
        };
        total = total
            .checked_add(scaled(num, unit_ns).map_err(fail)?)
            .ok_or_else(|| fail(DurationProblem::TooLarge))?;
        rest = after_unit.trim_start();
    }
    let nanos = u64::try_from(total).map_err(|_| fail(DurationProblem::TooLarge))?;
    Ok(Duration::from_nanos(nanos))
}

/// `num` (decimal, maybe with a fraction) times `unit_ns`, truncated to whole nanoseconds.
fn scaled(num: &str, unit_ns: u128) -> Result<u128, DurationProblem> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(DurationProblem::MissingNumber);
    }
    // Only digits are left, so a failed parse can only be an overflow.
    let int_val: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| DurationProblem::TooLarge)?
    };
    let mut value = int_val
        .checked_mul(unit_ns)
        .ok_or(DurationProblem::TooLarge)?;
    // Fractions beyond nanosecond precision are dropped rather than rounded.
    let mut scale = unit_ns;
    for digit in frac.chars() {
        scale /= 10;
        let d = u128::from(digit.to_digit(10).ok_or(DurationProblem::MissingNumber)?);
        value = value
            .checked_add(d * scale)
            .ok_or(DurationProblem::TooLarge)?;
    }
    Ok(value)
}

/// Formats a duration the way [`parse_duration`] reads it ("1m30s", "500ms", "0s").
pub fn format_duration(d: Duration) -> String {
    let mut nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        if nanos >= size {
            out.push_str(&format!("{}{}", nanos / size, unit));
            nanos %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn arithmetic_saturates_and_displays_millis() {
        let t = Instant::from_secs(3) + Duration::from_millis(45);
        assert_eq!(t.to_string(), "3.045");
        assert_eq!(t - Instant::from_secs(4), Duration::ZERO);
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(t - Instant::from_secs(3), Duration::from_millis(45));
    }

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_with_a_reason() {
        let problem = |s: &str| parse_duration(s).map_err(|e| e.reason);
        assert_eq!(problem(""), Err(DurationProblem::Empty));
        assert_eq!(problem("30"), Err(DurationProblem::MissingUnit));
        assert_eq!(problem("s"), Err(DurationProblem::MissingNumber));
        assert_eq!(problem("30x"), Err(DurationProblem::UnknownUnit));
        assert_eq!(problem("1.2.3s"), Err(DurationProblem::MissingNumber));
        assert_eq!(problem("99999999999h"), Err(DurationProblem::TooLarge));
        assert_eq!(
            problem("9999999999999999999999999999999999999999s"),
            Err(DurationProblem::TooLarge)
        );
        assert_eq!(
            parse_duration("30sec").unwrap_err().to_string(),
            "bad duration \"30sec\": the unit must be one of ns, us, ms, s, m, h \
             (write e.g. \"500ms\", \"30s\", \"2m\", \"1m30s\")"
        );
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(nanos in 0u64..u64::MAX / 2) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
