//! Frames waiting for a neighbour to be resolved, as the kernel's neighbour layer holds an
//! IP packet for an INCOMPLETE entry: the first packet to an unknown address sends an ARP
//! who-has and waits; further packets queue behind it; an ARP reply (or any frame that teaches
//! the neighbour) releases them in order. Linux gives up after `mcast_solicit` (3) probes one
//! `retrans_time` (1 s) apart and drops what waited; here a probe goes out at most once a
//! second while frames wait, and frames older than those three seconds are dropped when the
//! next one queues, so a peer that never answers is sent nothing and costs bounded memory.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::IfaceName;
use crate::time::Instant;

/// The kernel's ARP retransmit interval (`retrans_time_ms`, 1000 ms).
const RETRANS: Duration = Duration::from_secs(1);
/// How long frames wait before resolution fails (`mcast_solicit` 3 x `retrans_time`).
const GIVE_UP: Duration = Duration::from_secs(3);
/// At most this many frames wait per neighbour (a bound of our own: the kernel bounds the
/// queue by bytes, far above what a few adverts need).
const MAX_WAITING: usize = 16;

#[derive(Debug, Default)]
struct Waiting {
    frames: Vec<(Instant, IfaceName, Vec<u8>)>,
    last_probe: Option<Instant>,
}

/// Frames per unresolved neighbour.
#[derive(Debug, Default)]
pub struct Pending {
    by_addr: BTreeMap<IpAddr, Waiting>,
}

impl Pending {
    /// Queue `frame` (to leave on `iface`) until `addr` is resolved; true when an ARP
    /// who-has should go out now.
    pub fn hold(&mut self, now: Instant, addr: IpAddr, iface: IfaceName, frame: Vec<u8>) -> bool {
        let w = self.by_addr.entry(addr).or_default();
        w.frames
            .retain(|(t, ..)| now.saturating_duration_since(*t) < GIVE_UP);
        if w.frames.len() == MAX_WAITING {
            w.frames.remove(0);
        }
        w.frames.push((now, iface, frame));
        let probe = w
            .last_probe
            .is_none_or(|t| now.saturating_duration_since(t) >= RETRANS);
        if probe {
            w.last_probe = Some(now);
        }
        probe
    }

    /// `addr` is now known: the frames that waited for it, oldest first, with their
    /// interface. `mac` goes in as their Ethernet destination.
    pub fn release(
        &mut self,
        now: Instant,
        addr: IpAddr,
        mac: [u8; 6],
    ) -> Vec<(IfaceName, Vec<u8>)> {
        let Some(w) = self.by_addr.remove(&addr) else {
            return Vec::new();
        };
        w.frames
            .into_iter()
            .filter(|(t, ..)| now.saturating_duration_since(*t) < GIVE_UP)
            .map(|(_, iface, mut frame)| {
                if frame.len() >= 6 {
                    frame[..6].copy_from_slice(&mac);
                }
                (iface, frame)
            })
            .collect()
    }

    /// Whether anything waits (so a learnt neighbour is worth checking).
    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    fn addr() -> IpAddr {
        "10.0.0.2".parse().unwrap()
    }

    #[test]
    fn first_frame_probes_then_once_a_second() {
        let mut p = Pending::default();
        let i = IfaceName::from("eth0");
        assert!(p.hold(at(0), addr(), i.clone(), vec![0; 14]));
        assert!(!p.hold(at(500), addr(), i.clone(), vec![0; 14]));
        assert!(p.hold(at(1000), addr(), i, vec![0; 14]));
    }

    #[test]
    fn release_sets_the_mac_and_drops_what_waited_too_long() {
        let mut p = Pending::default();
        let i = IfaceName::from("eth0");
        p.hold(at(0), addr(), i.clone(), vec![1; 14]);
        p.hold(at(2500), addr(), i, vec![2; 14]);
        let out = p.release(at(3200), addr(), [9; 6]);
        assert_eq!(out.len(), 1, "the frame from t=0 is past the 3 s give-up");
        assert_eq!(&out[0].1[..6], &[9; 6]);
        assert_eq!(out[0].1[6], 2);
        assert!(p.is_empty());
    }

    #[test]
    fn a_peer_that_never_answers_costs_bounded_memory() {
        let mut p = Pending::default();
        let i = IfaceName::from("eth0");
        for ms in 0..10_000 {
            p.hold(at(ms), addr(), i.clone(), vec![0; 60]);
        }
        assert!(p.by_addr[&addr()].frames.len() <= MAX_WAITING);
    }
}
