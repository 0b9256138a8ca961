//! Deterministic discrete-event simulator for LVS/keepalived clusters.
