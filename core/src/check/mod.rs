//! keepalived's health checkers as state machines: the probe is an output, its result an input.

pub mod checker;
pub mod healthcheckers;
pub mod probe;
pub mod virtual_server;

#[cfg(test)]
mod tests;
