//! Benchmarks live in `benches/`; shared helpers go here.
