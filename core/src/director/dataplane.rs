//! The userspace IPVS data plane: frames for a virtual service held by this
//! director go through the connection table and leave toward a real server.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use rustc_hash::FxHashMap;

use crate::ipvs::conn::TcpFlags;
use crate::ipvs::table::{DropReason, PacketInfo, Verdict};
use crate::ipvs::{fwd, FwdMethod, Protocol};
use crate::vrrp::arp::{self, ArpOp, ArpPacket};

use super::IfaceName;

/// What the data plane did with one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Not IP traffic for a virtual service we hold.
    NotOurs,
    /// Sent on toward a real server: the frame to transmit, and on which interface.
    Forward {
        /// Interface to send on.
        iface: IfaceName,
        /// Rewritten frame.
        frame: Vec<u8>,
    },
    /// The real server's MAC is unknown: here is an ARP request to send; the packet is dropped
    /// (the client retransmits, as it would while the kernel resolves a neighbour).
    Resolve {
        /// Interface to send on.
        iface: IfaceName,
        /// ARP who-has frame.
        frame: Vec<u8>,
    },
    /// IPVS dropped it.
    Dropped(DropReason),
    /// A forwarding method this data plane does not carry yet.
    Unsupported(FwdMethod),
}

/// The fields IPVS needs, read from an Ethernet frame.
pub fn packet_info(frame: &[u8]) -> Option<PacketInfo> {
    match packet_info_fast(frame) {
        Some(info) => info,
        None => packet_info_etherparse(frame),
    }
}

/// [`packet_info`] of an Ethernet II IPv4 frame by direct byte reads (etherparse's slicing
/// costs a few hundred instructions a frame); `None` leaves the frame to
/// [`packet_info_etherparse`]: other ethertypes (VLAN tags, IPv6, ...) and IPsec AH. The
/// checks are those of etherparse 0.16's `Ipv4Slice`, `TcpSlice` and `UdpSlice::from_slice`,
/// so every IPv4 frame it decides on gets the answer etherparse gives, `None` included.
fn packet_info_fast(frame: &[u8]) -> Option<Option<PacketInfo>> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let Some(ih) = ip.get(..20) else {
        return Some(None);
    };
    let ihl = usize::from(ih[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([ih[2], ih[3]]));
    // Version 4, IHL >= 5, header <= total length <= bytes present (trailing bytes, such as
    // Ethernet padding, are not the packet's). Options and checksum are not checked.
    if ih[0] >> 4 != 4 || ihl < 20 || total_len < ihl || total_len > ip.len() {
        return Some(None);
    }
    // More fragments, or a nonzero offset: etherparse slices no transport header.
    let fragmented = ih[6] & 0x20 != 0 || ih[6] & 0x1f != 0 || ih[7] != 0;
    let l4 = &ip[ihl..total_len];
    let (proto, tcp) = match ih[9] {
        // etherparse looks through the authentication header to the transport.
        51 => return None,
        _ if fragmented => return Some(None),
        6 => {
            let Some(th) = l4.get(..20) else {
                return Some(None);
            };
            // Data offset >= 5, header <= bytes the IPv4 total length leaves.
            let data_offset = usize::from(th[12] >> 4) * 4;
            if data_offset < 20 || data_offset > l4.len() {
                return Some(None);
            }
            let flags = th[13];
            let tcp = TcpFlags {
                syn: flags & 0x02 != 0,
                fin: flags & 0x01 != 0,
                ack: flags & 0x10 != 0,
                rst: flags & 0x04 != 0,
            };
            (Protocol::Tcp, tcp)
        }
        17 => {
            let Some(uh) = l4.get(..8) else {
                return Some(None);
            };
            // The UDP length may be 0 (etherparse then takes the IP payload), else it must
            // cover the UDP header and fit in the IP payload.
            let udp_len = usize::from(u16::from_be_bytes([uh[4], uh[5]]));
            if udp_len > l4.len() || (udp_len != 0 && udp_len < 8) {
                return Some(None);
            }
            (Protocol::Udp, TcpFlags::default())
        }
        // ICMP or another protocol: no ports, so no PacketInfo (as from etherparse).
        _ => return Some(None),
    };
    Some(Some(PacketInfo {
        proto,
        src: IpAddr::V4(Ipv4Addr::new(ih[12], ih[13], ih[14], ih[15])),
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dst: IpAddr::V4(Ipv4Addr::new(ih[16], ih[17], ih[18], ih[19])),
        dport: u16::from_be_bytes([l4[2], l4[3]]),
        tcp,
        fwmark: 0,
    }))
}

/// [`packet_info`] through etherparse: the frames [`packet_info_fast`] leaves, and the
/// reference the tests compare it with.
fn packet_info_etherparse(frame: &[u8]) -> Option<PacketInfo> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let (src, dst) = match p.net? {
        NetSlice::Ipv4(ip) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
        ),
        NetSlice::Ipv6(ip) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
        ),
    };
    let (proto, sport, dport, tcp) = match p.transport? {
        TransportSlice::Tcp(t) => (
            Protocol::Tcp,
            t.source_port(),
            t.destination_port(),
            TcpFlags {
                syn: t.syn(),
                fin: t.fin(),
                ack: t.ack(),
                rst: t.rst(),
            },
        ),
        TransportSlice::Udp(u) => (
            Protocol::Udp,
            u.source_port(),
            u.destination_port(),
            TcpFlags::default(),
        ),
        _ => return None,
    };
    Some(PacketInfo {
        proto,
        src,
        sport,
        dst,
        dport,
        tcp,
        fwmark: 0,
    })
}

/// Where a neighbour was last seen.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// Its hardware address.
    pub mac: [u8; 6],
}

/// Learnt IP → MAC bindings per interface (the director's neighbour table).
#[derive(Clone, Debug, Default)]
pub struct Neighbours {
    // Hashed by address: looked up for every forwarded packet, never iterated.
    table: FxHashMap<IpAddr, BTreeMap<IfaceName, Neighbour>>,
}

impl Neighbours {
    /// Remember that `ip` is at `mac` on `iface`.
    pub fn learn(&mut self, iface: &IfaceName, ip: IpAddr, mac: [u8; 6]) {
        if ip.is_unspecified() || mac == [0; 6] || mac == [0xff; 6] {
            return;
        }
        self.table
            .entry(ip)
            .or_default()
            .insert(iface.clone(), Neighbour { mac });
    }

    /// The MAC of `ip`, with the interface it was seen on (the first by name if several).
    pub fn lookup(&self, ip: IpAddr) -> Option<(&IfaceName, [u8; 6])> {
        self.table
            .get(&ip)?
            .first_key_value()
            .map(|(i, n)| (i, n.mac))
    }
}

/// An ARP who-has for `target` from `(mac, ip)`.
pub fn arp_request(mac: [u8; 6], ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    arp::encode_arp(
        mac,
        [0xff; 6],
        &ArpPacket {
            op: ArpOp::Request,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: [0; 6],
            target_ip: target,
        },
    )
}

/// The IPVS verdict turned into what to put on the wire.
pub fn forward(
    verdict: Verdict,
    frame: Vec<u8>,
    arrived_on: IfaceName,
    our: impl Fn(&str) -> Option<([u8; 6], Option<Ipv4Addr>)>,
    neighbours: &Neighbours,
) -> Handled {
    let f = match verdict {
        Verdict::Forward(f) => f,
        Verdict::Drop(r) => return Handled::Dropped(r),
        Verdict::Pass | Verdict::Reply { .. } => return Handled::NotOurs,
    };
    if f.fwd != FwdMethod::Route {
        return Handled::Unsupported(f.fwd);
    }
    let rs = f.dest.0;
    match neighbours.lookup(rs) {
        Some((iface, mac)) => {
            let Some((our_mac, _)) = our(iface) else {
                return Handled::NotOurs;
            };
            match fwd::dr(frame, our_mac, mac) {
                Ok(frame) => Handled::Forward {
                    // Usually out where it came in: the name moves on, no count changes.
                    iface: if std::sync::Arc::ptr_eq(iface, &arrived_on) || **iface == *arrived_on {
                        arrived_on
                    } else {
                        iface.clone()
                    },
                    frame,
                },
                Err(_) => Handled::NotOurs,
            }
        }
        None => {
            let (IpAddr::V4(target), Some((mac, Some(ip)))) = (rs, our(&arrived_on)) else {
                return Handled::NotOurs;
            };
            Handled::Resolve {
                iface: arrived_on,
                frame: arp_request(mac, ip, target),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// TCP flags to set on a built frame: syn, ack, fin, rst, psh.
    type Flags = [bool; 5];

    /// An Ethernet II + IPv4 TCP (with `flags`) or UDP frame from etherparse's builder.
    fn built(
        src: [u8; 4],
        dst: [u8; 4],
        ports: (u16, u16),
        udp: bool,
        flags: Flags,
        payload: &[u8],
    ) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64);
        let mut frame = Vec::new();
        if udp {
            b.udp(ports.0, ports.1).write(&mut frame, payload).unwrap();
        } else {
            let mut t = b.tcp(ports.0, ports.1, 1, 100);
            let [syn, ack, fin, rst, psh] = flags;
            if syn {
                t = t.syn();
            }
            if ack {
                t = t.ack(7);
            }
            if fin {
                t = t.fin();
            }
            if rst {
                t = t.rst();
            }
            if psh {
                t = t.psh();
            }
            t.write(&mut frame, payload).unwrap();
        }
        frame
    }

    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        built(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            (40000, 80),
            false,
            [true, false, false, false, false],
            payload,
        )
    }

    fn udp_frame(payload: &[u8]) -> Vec<u8> {
        built(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            (5000, 53),
            true,
            [false; 5],
            payload,
        )
    }

    /// `packet_info` reads `frame` as etherparse does, to `Some` or not as `some` says;
    /// `decided`: whether the fast path answers itself rather than leaving it to etherparse.
    #[track_caller]
    fn check(frame: &[u8], some: bool, decided: bool) {
        let reference = packet_info_etherparse(frame);
        assert_eq!(packet_info(frame), reference);
        assert_eq!(reference.is_some(), some, "{reference:?}");
        let fast = packet_info_fast(frame);
        assert_eq!(fast.is_some(), decided, "{fast:?}");
        if let Some(fast) = fast {
            assert_eq!(fast, reference);
        }
    }

    /// Sets the IPv4 total length field.
    fn set_total_len(frame: &mut [u8], len: usize) {
        frame[16..18].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    }

    #[test]
    fn unusual_frames_read_like_etherparse() {
        let payload = [0xab; 12];
        for base in [tcp_frame(&payload), udp_frame(&payload)] {
            check(&base, true, true);
            let with = |edit: &dyn Fn(&mut Vec<u8>)| {
                let mut f = base.clone();
                edit(&mut f);
                f
            };
            // Fragments: more-fragments set, or a nonzero offset (low byte, high bits).
            check(&with(&|f| f[20] |= 0x20), false, true);
            check(&with(&|f| f[21] = 1), false, true);
            check(&with(&|f| f[20] |= 0x10), false, true);
            // Don't-fragment alone is no fragment.
            check(&with(&|f| f[20] |= 0x40), true, true);
            // Options (IHL 6): not checked, skipped over.
            let opts = with(&|f| {
                f.splice(34..34, [1, 1, 1, 0]);
                f[14] = 0x46;
                let n = f.len() - 14;
                set_total_len(f, n);
            });
            check(&opts, true, true);
            assert_eq!(packet_info(&opts), packet_info(&base));
            // IHL < 5, or over the total length; version 6 in an IPv4 ethertype.
            check(&with(&|f| f[14] = 0x44), false, true);
            check(&with(&|f| f[14] = 0x4f), false, true);
            check(&with(&|f| f[14] = 0x65), false, true);
            // Total length shorter than the IPv4 header, than the transport header, or
            // longer than the frame; trailing bytes (Ethernet padding) past it.
            check(&with(&|f| set_total_len(f, 19)), false, true);
            check(&with(&|f| set_total_len(f, 20 + 7)), false, true);
            check(&with(&|f| set_total_len(f, base.len() - 13)), false, true);
            check(&with(&|f| f.extend([0; 10])), true, true);
            // Cut short.
            check(&base[..base.len() - 1], false, true);
            check(&base[..30], false, true);
            // ICMP, VRRP: no ports.
            check(&with(&|f| f[23] = 1), false, true);
            check(&with(&|f| f[23] = 112), false, true);
        }

        let tcp = tcp_frame(&payload);
        let with = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut f = tcp.clone();
            edit(&mut f);
            f
        };
        // TCP data offset < 5, over the bytes left, or 6 with the options in the payload.
        check(&with(&|f| f[46] = 0x40), false, true);
        check(&with(&|f| f[46] = 0x90), false, true);
        check(&with(&|f| f[46] = 0x60), true, true);
        // With a total length leaving the TCP header only, past it are trailing bytes.
        check(&with(&|f| set_total_len(f, 40)), true, true);
        check(
            &with(&|f| {
                set_total_len(f, 40);
                f[46] = 0x60
            }),
            false,
            true,
        );
        let flags = |f: &[u8]| packet_info(f).unwrap().tcp;
        let only = |fin, syn, rst, ack| TcpFlags { fin, syn, rst, ack };
        for (bits, want) in [
            (0x01, only(true, false, false, false)),
            (0x02, only(false, true, false, false)),
            (0x04, only(false, false, true, false)),
            (0x10, only(false, false, false, true)),
        ] {
            assert_eq!(flags(&with(&|f| f[47] = bits)), want, "{bits:#x}");
        }
        assert_eq!(flags(&with(&|f| f[47] = 0xe8)), TcpFlags::default());

        let udp = udp_frame(&payload);
        let with = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut f = udp.clone();
            edit(&mut f);
            f
        };
        let set_udp_len = |f: &mut Vec<u8>, len: u16| f[38..40].copy_from_slice(&len.to_be_bytes());
        // UDP length 0 (the IP payload's), 8 (trailing bytes after), 1..7, or past the
        // IP payload.
        check(&with(&|f| set_udp_len(f, 0)), true, true);
        check(&with(&|f| set_udp_len(f, 8)), true, true);
        check(&with(&|f| set_udp_len(f, 7)), false, true);
        // IHL 4 over a zero source port: read 4 bytes early, the UDP length would be 0.
        check(
            &with(&|f| {
                f[14] = 0x44;
                f[34..36].fill(0)
            }),
            false,
            true,
        );
        check(&with(&|f| set_udp_len(f, 1)), false, true);
        check(&with(&|f| set_udp_len(f, 21)), false, true);
        check(
            &with(&|f| {
                set_udp_len(f, 21);
                f.push(0)
            }),
            false,
            true,
        );
        check(
            &with(&|f| {
                set_udp_len(f, 21);
                f.push(0);
                set_total_len(f, 41)
            }),
            true,
            true,
        );

        // Short frames and other ethertypes are etherparse's.
        check(&[], false, false);
        check(&tcp[..13], false, false);
        check(&tcp[..14], false, true);
        check(&with(&|f| f[12] = 0x86), false, false);
        // VLAN-tagged, IPv6, IPsec AH: etherparse reads the ports.
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .single_vlan(etherparse::VlanId::try_new(5).unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1, 100)
            .syn()
            .write(&mut f, &payload)
            .unwrap();
        check(&f, true, false);
        assert_eq!(packet_info(&f), packet_info(&tcp));
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv6([1; 16], [2; 16], 64)
            .tcp(40000, 80, 1, 100)
            .syn()
            .write(&mut f, &payload)
            .unwrap();
        check(&f, true, false);
        assert!(packet_info(&f).unwrap().dst.is_ipv6());
        let mut f = Vec::new();
        let ah = etherparse::IpAuthHeader::new(etherparse::ip_number::TCP, 1, 1, &[0; 4]).unwrap();
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ip(etherparse::IpHeaders::Ipv4(
                etherparse::Ipv4Header::new(
                    0,
                    64,
                    etherparse::ip_number::TCP,
                    [10, 0, 0, 1],
                    [10, 0, 0, 2],
                )
                .unwrap(),
                etherparse::Ipv4Extensions { auth: Some(ah) },
            ))
            .tcp(40000, 80, 1, 100)
            .syn()
            .write(&mut f, &payload)
            .unwrap();
        assert_eq!(f[23], 51);
        check(&f, true, false);
        assert_eq!(packet_info(&f), packet_info(&tcp));
    }

    proptest! {

        /// Built IPv4 TCP and UDP frames are read by the fast path, as etherparse reads them.
        #[test]
        fn fast_path_reads_built_frames(
            src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, udp: bool, flags: Flags,
            payload in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let f = built(src, dst, (sport, dport), udp, flags, &payload);
            let reference = packet_info_etherparse(&f);
            prop_assert!(reference.is_some());
            prop_assert_eq!(packet_info_fast(&f), Some(reference));
            prop_assert_eq!(packet_info(&f), reference);
            let [syn, ack, fin, rst, _] = flags;
            let info = reference.unwrap();
            prop_assert_eq!((info.src, info.dst), (IpAddr::from(src), IpAddr::from(dst)));
            prop_assert_eq!((info.sport, info.dport), (sport, dport));
            let tcp = if udp { TcpFlags::default() } else { TcpFlags { syn, fin, ack, rst } };
            prop_assert_eq!(info.tcp, tcp);
        }

        /// Built frames with a few bytes of the headers overwritten, perhaps cut short,
        /// perhaps with bytes appended, read as through etherparse.
        #[test]
        fn damaged_frames_read_like_etherparse(
            src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, udp: bool, flags: Flags,
            payload in proptest::collection::vec(any::<u8>(), 0..100),
            damage in proptest::collection::vec((0usize..60, any::<u8>(), 0u8..3), 1..=4),
            cut in proptest::option::of(0usize..160),
            trailer in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..20)),
        ) {
            let mut f = built(src, dst, (sport, dport), udp, flags, &payload);
            crate::fuzz::damage(&mut f, &damage);
            if let Some(n) = cut {
                f.truncate(n);
            }
            if let Some(t) = trailer {
                f.extend(t);
            }
            prop_assert_eq!(packet_info(&f), packet_info_etherparse(&f));
        }

        /// Any bytes at all, with the Ethernet/IPv4 start, a fitting total length and a
        /// TCP/UDP/AH protocol forced or not, read as through etherparse.
        #[test]
        fn junk_reads_like_etherparse(
            mut junk in proptest::collection::vec(any::<u8>(), 0..120),
            shape in 0u8..4,
            proto in prop_oneof![Just(6u8), Just(17), Just(51), any::<u8>()],
        ) {
            if shape >= 1 && junk.len() >= 14 {
                junk[12..14].copy_from_slice(&[0x08, 0x00]);
            }
            if shape >= 2 && junk.len() > 14 {
                junk[14] = 0x45;
            }
            if shape >= 3 && junk.len() >= 34 {
                let len = junk.len() - 14;
                set_total_len(&mut junk, len);
                junk[23] = proto;
            }
            prop_assert_eq!(packet_info(&junk), packet_info_etherparse(&junk));
        }
    }
}
