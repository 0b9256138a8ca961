//! Cross-crate scenario suites live in `tests/`.
