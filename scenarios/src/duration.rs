//! Human durations as scenario files write them: "500ms", "30s", "2m", "1m30s" — lvs-core's
//! one duration parser ([`lvs_core::time::parse_duration`]), which traces and the CLI read too.

pub use lvs_core::time::{format_duration, parse_duration, DurationError, DurationProblem};
