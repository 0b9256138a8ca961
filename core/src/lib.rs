//! lvs-core: everything in lvsd that decides, and nothing that does I/O.
//!
//! Every state machine here is driven through `handle_input`, `handle_timeout`,
//! `poll_output` and `poll_timeout` (the quinn-proto / str0m model): time and
//! randomness come in as arguments, effects go out as data.

pub mod check;
pub mod config;
pub mod director;
pub mod fuzz;
pub mod ipvs;
pub mod time;
pub mod vrrp;
pub mod wire;

pub use time::Instant;
