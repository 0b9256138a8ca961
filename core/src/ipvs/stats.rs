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
