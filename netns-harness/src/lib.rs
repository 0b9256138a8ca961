//! Runs scenarios across veth-linked network namespaces (lvsd and Debian's keepalived).
//!
//! Built so far: [`ns`], the namespaces, links and processes a test or the harness makes,
//! each removed when its guard drops (also on panic), and a sweep of what a crashed run
//! left. The address mapping the harness will use (scenario addresses into 198.18.0.0/15)
//! lives in `lvs_scenarios::netns`.

pub mod ns;
