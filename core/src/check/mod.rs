//! keepalived's health checkers as state machines: the probe is an output, its result an input.

pub mod probe;
