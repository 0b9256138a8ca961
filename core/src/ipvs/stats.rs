//! The traffic counters the kernel keeps per service and per destination (`struct
//! ip_vs_stats`, Linux 6.1 `ip_vs_core.c`), as `ipvsadm -L -n --stats` shows them.

/// Connections, packets and bytes (`ip_vs_counters`): `Conns`, `InPkts`, `OutPkts`,
/// `InBytes`, `OutBytes`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct IpvsStats {
    /// Connections scheduled (`ip_vs_conn_stats`: templates and synced entries not counted).
    pub conns: u64,
    /// Packets from clients (`ip_vs_in_stats`).
    pub in_pkts: u64,
    /// Replies from real servers that IPVS handled (`ip_vs_out_stats`: NAT only).
    pub out_pkts: u64,
    /// Bytes of those client packets, IP header on (`skb->len`).
    pub in_bytes: u64,
    /// Bytes of those replies, IP header on.
    pub out_bytes: u64,
}

impl IpvsStats {
    /// One packet of `len` bytes from a client.
    pub fn count_in(&mut self, len: u32) {
        self.in_pkts += 1;
        self.in_bytes += u64::from(len);
    }

    /// One reply of `len` bytes from a real server.
    pub fn count_out(&mut self, len: u32) {
        self.out_pkts += 1;
        self.out_bytes += u64::from(len);
    }
}

/// How often the kernel's estimator runs (`estimation_timer`, every 2 s in Linux 6.1).
pub const ESTIMATOR_PERIOD_NS: u64 = 2_000_000_000;

/// The rate estimator the kernel keeps beside each [`IpvsStats`] (`struct
/// ip_vs_estimator`, Linux 6.1 `ip_vs_est.c`): every 2 s the counters' growth over the
/// period, scaled (2^10 for connections and packets, 2^5 for bytes), moves a quarter of the
/// way from the running average toward it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Estimator {
    last: IpvsStats,
    cps: u64,
    inpps: u64,
    outpps: u64,
    inbps: u64,
    outbps: u64,
}

/// Per-second rates as `ipvsadm -L -n --rate` shows them (`ip_vs_read_estimator`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rates {
    /// Connections per second (CPS).
    pub cps: u64,
    /// Packets per second from clients (InPPS).
    pub inpps: u64,
    /// Packets per second of replies (OutPPS).
    pub outpps: u64,
    /// Bytes per second from clients (InBPS).
    pub inbps: u64,
    /// Bytes per second of replies (OutBPS).
    pub outbps: u64,
}

/// One average's step: `avg += (rate - avg) >> 2` in the kernel's signed arithmetic.
fn ewma(avg: u64, rate: u64) -> u64 {
    let step = (rate as i64).wrapping_sub(avg as i64) >> 2;
    (avg as i64).wrapping_add(step) as u64
}

impl Estimator {
    /// One run of `estimation_timer` over counters that now read `now`. Counters that went
    /// back (zeroed) count as grown from zero.
    pub fn tick(&mut self, now: &IpvsStats) {
        let grown = |n: u64, last: u64| if n >= last { n - last } else { n };
        let l = self.last;
        self.cps = ewma(self.cps, grown(now.conns, l.conns) << 9);
        self.inpps = ewma(self.inpps, grown(now.in_pkts, l.in_pkts) << 9);
        self.outpps = ewma(self.outpps, grown(now.out_pkts, l.out_pkts) << 9);
        self.inbps = ewma(self.inbps, grown(now.in_bytes, l.in_bytes) << 4);
        self.outbps = ewma(self.outbps, grown(now.out_bytes, l.out_bytes) << 4);
        self.last = *now;
    }

    /// True when further ticks over unchanged counters `now` change nothing.
    pub fn settled(&self, now: &IpvsStats) -> bool {
        self.last == *now
            && [self.cps, self.inpps, self.outpps, self.inbps, self.outbps]
                .iter()
                .all(|&v| v == 0)
    }

    /// The rates, rounded as `ip_vs_read_estimator` rounds them.
    pub fn rates(&self) -> Rates {
        Rates {
            cps: (self.cps + 0x1ff) >> 10,
            inpps: (self.inpps + 0x1ff) >> 10,
            outpps: (self.outpps + 0x1ff) >> 10,
            inbps: (self.inbps + 0xf) >> 5,
            outbps: (self.outbps + 0xf) >> 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A steady load converges on its rate and an idle one decays to zero, as the kernel's
    /// fixed-point averages do.
    #[test]
    fn the_estimator_converges_and_decays() {
        let mut e = Estimator::default();
        let mut s = IpvsStats::default();
        // 10 connections, 30 packets and 3000 bytes a second.
        for _ in 0..40 {
            s.conns += 20;
            s.in_pkts += 60;
            s.in_bytes += 6000;
            e.tick(&s);
        }
        let r = e.rates();
        assert_eq!((r.cps, r.inpps, r.inbps, r.outpps), (10, 30, 3000, 0));
        // The first period moves the average a quarter of the way from zero: 2.5 per second,
        // which the kernel's rounding shows as 2.
        let mut first = Estimator::default();
        first.tick(&IpvsStats {
            conns: 20,
            ..IpvsStats::default()
        });
        assert_eq!(first.rates().cps, 2);
        for _ in 0..200 {
            e.tick(&s);
        }
        assert!(e.settled(&s));
        assert_eq!(e.rates(), Rates::default());
    }
}
