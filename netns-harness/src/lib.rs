//! Runs scenarios across veth-linked network namespaces (lvsd and Debian's keepalived).
//!
//! Empty so far: the harness is the next issue after the simulator. The address mapping it
//! will use (scenario addresses into 198.18.0.0/15) already lives in `lvs_scenarios::netns`.
