//! `flow` held to etherparse's `SlicedPacket`, the reader it replaced.

use super::*;
use proptest::prelude::*;

/// The reference: etherparse's `SlicedPacket` (what the data plane used before `wire`).
fn flow_etherparse(frame: &[u8]) -> Option<Flow> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let (src, dst, ip_len) = match p.net.as_ref()? {
        NetSlice::Ipv4(ip) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            u32::from(ip.header().total_len()),
        ),
        NetSlice::Ipv6(ip) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            40 + ip.payload().payload.len() as u32 + ext_len(ip),
        ),
    };
    if p.transport.is_none() {
        return sctp_reference(&p, src, dst, ip_len);
    }
    let (protocol, sport, dport, tcp_flags) = match p.transport? {
        TransportSlice::Tcp(t) => (
            ip_proto::TCP,
            t.source_port(),
            t.destination_port(),
            tcp::TcpFlags(t.slice()[13]),
        ),
        TransportSlice::Udp(u) => (
            ip_proto::UDP,
            u.source_port(),
            u.destination_port(),
            tcp::TcpFlags(0),
        ),
        _ => return None,
    };
    Some(Flow {
        protocol,
        src,
        sport,
        dst,
        dport,
        tcp_flags,
        sctp: sctp::ChunkTypes::default(),
        ip_len,
    })
}

/// An SCTP packet as etherparse slices it, to its IP payload: the ports of the common header
/// and the chunk types (`sctp::chunk_types`, held to the kernel's reading in `sctp`).
fn sctp_reference(
    p: &etherparse::SlicedPacket<'_>,
    src: IpAddr,
    dst: IpAddr,
    ip_len: u32,
) -> Option<Flow> {
    let payload = match p.net.as_ref()? {
        etherparse::NetSlice::Ipv4(ip) => ip.payload(),
        etherparse::NetSlice::Ipv6(ip) => ip.payload(),
    };
    if payload.ip_number != etherparse::IpNumber(ip_proto::SCTP) || payload.fragmented {
        return None;
    }
    let l4 = payload.payload;
    let chunks = sctp::chunk_types(l4)?;
    Some(Flow {
        protocol: ip_proto::SCTP,
        src,
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dst,
        dport: u16::from_be_bytes([l4[2], l4[3]]),
        tcp_flags: tcp::TcpFlags(0),
        sctp: chunks,
        ip_len,
    })
}

/// The bytes of an IPv6 packet's extension headers, as etherparse sliced them.
fn ext_len(ip: &etherparse::Ipv6Slice<'_>) -> u32 {
    ip.extensions().slice().len() as u32
}

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

/// `flow` reads `frame` as etherparse does, to `Some` or not as `some` says;
/// `decided`: whether the fast path answers itself rather than leaving it to etherparse.
#[track_caller]
fn check(frame: &[u8], some: bool, decided: bool) {
    let reference = flow_etherparse(frame);
    assert_eq!(flow(frame), reference);
    assert_eq!(reference.is_some(), some, "{reference:?}");
    let fast = flow_fast(frame);
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
        // The same flow, four bytes longer.
        let shorter = flow(&opts).map(|f| Flow {
            ip_len: f.ip_len - 4,
            ..f
        });
        assert_eq!(shorter, flow(&base));
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
    let flags = |f: &[u8]| flow(f).unwrap().tcp_flags;
    for bits in [0x01, 0x02, 0x04, 0x10, 0xe8] {
        assert_eq!(
            flags(&with(&|f| f[47] = bits)),
            tcp::TcpFlags(bits),
            "{bits:#x}"
        );
    }
    let f = flags(&with(&|f| f[47] = 0x17));
    assert_eq!(
        (f.fin(), f.syn(), f.rst(), f.psh(), f.ack()),
        (true, true, true, false, true)
    );

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
    assert_eq!(flow(&f), flow(&tcp));
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv6([1; 16], [2; 16], 64)
        .tcp(40000, 80, 1, 100)
        .syn()
        .write(&mut f, &payload)
        .unwrap();
    check(&f, true, false);
    assert!(flow(&f).unwrap().dst.is_ipv6());
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
    // The same flow, with the 16-byte authentication header (4-byte ICV) in the length.
    let without_ah = flow(&f).map(|f| Flow {
        ip_len: f.ip_len - 16,
        ..f
    });
    assert_eq!(without_ah, flow(&tcp));
}

/// An Ethernet II + IPv4 (or IPv6) SCTP frame of `chunks` (type, value length) from
/// etherparse's builder, the SCTP packet made by `sctp`'s Reprs.
fn sctp_built(v6: bool, ports: (u16, u16), chunks: &[(u8, usize)]) -> Vec<u8> {
    let mut body = Vec::new();
    for &(kind, value_len) in chunks {
        let c = sctp::ChunkRepr {
            kind,
            flags: 0,
            value_len,
        };
        let at = body.len();
        body.resize(at + c.buffer_len(), 0xee);
        c.emit(&mut body[at..]).unwrap();
    }
    let h = sctp::SctpRepr {
        src_port: ports.0,
        dst_port: ports.1,
        verification_tag: 9,
        chunks_len: body.len(),
    };
    let mut packet = vec![0; h.buffer_len()];
    packet[sctp::HEADER_LEN..].copy_from_slice(&body);
    h.emit(&mut packet).unwrap();
    let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]);
    let mut frame = Vec::new();
    let n = etherparse::IpNumber(ip_proto::SCTP);
    if v6 {
        b.ipv6([1; 16], [2; 16], 64).write(&mut frame, n, &packet)
    } else {
        b.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .write(&mut frame, n, &packet)
    }
    .unwrap();
    frame
}

#[test]
fn sctp_frames_give_ports_and_chunk_types() {
    use sctp::chunk;
    let f = sctp_built(false, (40000, 9), &[(chunk::INIT, 16)]);
    check(&f, true, true);
    let r = flow(&f).unwrap();
    assert_eq!(
        (r.protocol, r.sport, r.dport, r.tcp_flags, r.ip_len),
        (
            ip_proto::SCTP,
            40000,
            9,
            tcp::TcpFlags(0),
            (f.len() - 14) as u32
        )
    );
    assert_eq!(r.sctp, sctp::ChunkTypes::of(chunk::INIT));
    // A COOKIE ECHO bundled before an ABORT moves the state as an ABORT.
    let f = sctp_built(false, (1, 2), &[(chunk::COOKIE_ECHO, 7), (chunk::ABORT, 0)]);
    check(&f, true, true);
    let want = sctp::ChunkTypes {
        first: chunk::COOKIE_ECHO,
        state: chunk::ABORT,
    };
    assert_eq!(flow(&f).unwrap().sctp, want);
    // The common header without a chunk header: no flow.
    let mut short = sctp_built(false, (1, 2), &[(chunk::DATA, 0)]);
    short.truncate(14 + 20 + 15);
    set_total_len(&mut short, 20 + 15);
    check(&short, false, true);
    // IPv6 goes the slow way to the same reading.
    let f = sctp_built(true, (40000, 9), &[(chunk::SHUTDOWN, 4)]);
    check(&f, true, false);
    assert_eq!(
        flow(&f).unwrap().sctp,
        sctp::ChunkTypes::of(chunk::SHUTDOWN)
    );
    // A fragment has no ports.
    let mut frag = sctp_built(false, (1, 2), &[(chunk::INIT, 16)]);
    frag[20] |= 0x20;
    check(&frag, false, true);
}

proptest! {

    /// Built SCTP frames of either family, damaged or not, read as etherparse slices them.
    #[test]
    fn sctp_frames_read_like_etherparse(
        v6: bool, sport: u16, dport: u16,
        chunks in proptest::collection::vec((0u8..16, 0usize..12), 1..4),
        damage in proptest::collection::vec((0usize..80, any::<u8>(), 0u8..3), 0..4),
        cut in proptest::option::of(0usize..120),
    ) {
        let mut f = sctp_built(v6, (sport, dport), &chunks);
        if damage.is_empty() && cut.is_none() {
            let r = flow(&f);
            prop_assert_eq!(r.map(|r| (r.sport, r.dport, r.sctp.first)), Some((sport, dport, chunks[0].0)));
        }
        crate::fuzz::damage(&mut f, &damage);
        if let Some(n) = cut {
            f.truncate(n);
        }
        prop_assert_eq!(flow(&f), flow_etherparse(&f));
    }

    /// Built IPv4 TCP and UDP frames are read by the fast path, as etherparse reads them.
    #[test]
    fn fast_path_reads_built_frames(
        src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, udp: bool, flags: Flags,
        payload in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let f = built(src, dst, (sport, dport), udp, flags, &payload);
        let reference = flow_etherparse(&f);
        prop_assert!(reference.is_some());
        prop_assert_eq!(flow_fast(&f), Some(reference));
        prop_assert_eq!(flow(&f), reference);
        let [syn, ack, fin, rst, psh] = flags;
        let info = reference.unwrap();
        prop_assert_eq!((info.src, info.dst), (IpAddr::from(src), IpAddr::from(dst)));
        prop_assert_eq!((info.sport, info.dport), (sport, dport));
        let f = info.tcp_flags;
        let want = if udp { [false; 5] } else { [syn, ack, fin, rst, psh] };
        prop_assert_eq!([f.syn(), f.ack(), f.fin(), f.rst(), f.psh()], want);
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
        prop_assert_eq!(flow(&f), flow_etherparse(&f));
    }

    /// Any bytes at all, with the Ethernet/IPv4 start, a fitting total length and a
    /// TCP/UDP/AH protocol forced or not, read as through etherparse.
    #[test]
    fn junk_reads_like_etherparse(
        mut junk in proptest::collection::vec(any::<u8>(), 0..120),
        shape in 0u8..4,
        proto in prop_oneof![Just(6u8), Just(17), Just(51), Just(132), any::<u8>()],
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
        prop_assert_eq!(flow(&junk), flow_etherparse(&junk));
    }

    /// `udp_payload` reads what etherparse reads, on damaged UDP frames of either family.
    #[test]
    fn udp_payload_reads_like_etherparse(
        v6: bool,
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        damage in proptest::collection::vec((0usize..70, any::<u8>(), 0u8..3), 0..4),
        cut in proptest::option::of(0usize..120),
    ) {
        let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]);
        let mut f = Vec::new();
        if v6 {
            b.ipv6([1; 16], [2; 16], 64).udp(1, 2).write(&mut f, &payload).unwrap();
        } else {
            b.ipv4([1; 4], [2; 4], 64).udp(1, 2).write(&mut f, &payload).unwrap();
        }
        crate::fuzz::damage(&mut f, &damage);
        if let Some(n) = cut {
            f.truncate(n);
        }
        let theirs = etherparse::SlicedPacket::from_ethernet(&f).ok().and_then(|p| match p.transport {
            Some(etherparse::TransportSlice::Udp(u)) => Some(u.payload()),
            _ => None,
        });
        prop_assert_eq!(udp_payload(&f), theirs);
    }
}
