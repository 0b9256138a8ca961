//! What the timeline is drawn from besides the trace: the hosts of the run, and what the
//! engine gathers while it runs (gateway ARP changes, request bins).

use std::collections::BTreeMap;
use std::net::IpAddr;

use lvs_core::Instant;

use crate::client::RequestRecord;
use crate::packet::Mac;

use super::bins::RequestBins;

/// A host's role, as the timeline groups hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Runs keepalived.
    Director,
    /// Serves behind the directors.
    RealServer,
    /// Sends the requests.
    Client,
    /// Routes between segments (its ARP cache decides where a VIP's traffic goes).
    Gateway,
}

/// What the timeline knows of a host besides its trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInfo {
    /// Its name in the scenario.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its interface addresses (a real server is named by them).
    pub addrs: Vec<IpAddr>,
    /// Its interface MACs (a gateway's ARP entry is named by them).
    pub macs: Vec<Mac>,
}

/// The run the timeline draws.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// Scenario name (empty: none).
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Where the plot ends.
    pub end: Instant,
    /// Hosts in scenario order.
    pub hosts: Vec<HostInfo>,
}

/// A gateway's ARP (or IPv6 neighbour) entry for an address changed (or was first learnt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpChange {
    /// Virtual time, ns.
    pub t: u64,
    /// The gateway's host index.
    pub gateway: usize,
    /// The address.
    pub ip: IpAddr,
    /// The MAC it now maps to.
    pub mac: Mac,
}

/// What the engine gathers for the timeline while it runs: the gateways' ARP entries as
/// they change, and (once asked) the requests in bins, so drawing a run keeps no request.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    requests: Option<RequestBins>,
    arp: Vec<ArpChange>,
    last: BTreeMap<(usize, IpAddr), Mac>,
}

impl Timeline {
    /// Bin every request from now on for a plot ending at `end`.
    pub fn bin_requests(&mut self, end: Instant) {
        self.requests = Some(RequestBins::new(end));
    }

    /// True when requests are binned.
    pub fn binning(&self) -> bool {
        self.requests.is_some()
    }

    /// Account a finished request (when binning).
    #[inline]
    pub fn request(&mut self, r: &RequestRecord) {
        if let Some(b) = &mut self.requests {
            b.add(r);
        }
    }

    /// A gateway's ARP cache maps `ip` to `mac` at `t`; kept (and true) when it changed.
    pub fn arp_entry(&mut self, t: u64, gateway: usize, ip: IpAddr, mac: Mac) -> bool {
        let changed = self.last.insert((gateway, ip), mac) != Some(mac);
        if changed {
            self.arp.push(ArpChange {
                t,
                gateway,
                ip,
                mac,
            });
        }
        changed
    }

    /// The gateways' ARP changes in time order.
    pub fn arp_changes(&self) -> &[ArpChange] {
        &self.arp
    }

    /// The request bins, if binning.
    pub fn requests(&self) -> Option<&RequestBins> {
        self.requests.as_ref()
    }
}
