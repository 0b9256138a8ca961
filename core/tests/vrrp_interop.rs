//! Byte-level interop with Debian's keepalived 2.2.7.
//!
//! `scripts/capture-vrrp.sh` ran keepalived with the configs in `fixtures/vrrp/*.conf` in a pair
//! of network namespaces and captured what it sent into `fixtures/vrrp/*.pcap`. Here every
//! captured advert must decode to the advert its config implies, and our encoder, given the same
//! instance state, must produce the captured frame byte for byte. The only inputs taken from the
//! capture are the two values the sender's environment chooses:
//! - the IPv4 identification: keepalived's per-instance counter, 1, 2, 3, ... (checked below);
//! - the IPv6 flow label: the kernel hashes the flow with a per-boot key
//!   (`net.ipv6.auto_flowlabels`), so it is constant for an instance but differs between boots.
//!
//! Gratuitous ARPs and unsolicited neighbour advertisements must match too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_core::vrrp::arp::{decode_arp, decode_na, gratuitous_arp, unsolicited_na, ArpOp};
use lvs_core::vrrp::wire::{
    decode_frame, encode_frame, virtual_mac, Advert, Auth, DecodeError, Expect, FrameParams,
    UnicastChecksum, Version,
};

/// MAC of cap-a0, where keepalived ran (set by the capture script).
const MAC_A: [u8; 6] = [0x52, 0x54, 0x00, 0x18, 0x00, 0x0a];
/// MAC of cap-b0, the capturing peer.
const MAC_B: [u8; 6] = [0x52, 0x54, 0x00, 0x18, 0x00, 0x0b];
const IP_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const IP_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);

/// The link-layer frames of a classic pcap file (24-byte global header, 16-byte record headers).
fn pcap_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let (header, mut rest) = bytes.split_at(24);
    let magic = u32::from_le_bytes(header[0..4].try_into().unwrap());
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        other => panic!("not a pcap file: magic {other:#x}"),
    };
    let u32_at = |b: &[u8], at: usize| {
        let raw: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        }
    };
    assert_eq!(u32_at(header, 20), 1, "link type must be Ethernet");
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let incl = u32_at(rest, 8) as usize;
        let orig = u32_at(rest, 12) as usize;
        assert_eq!(incl, orig, "capture must not be truncated");
        frames.push(rest[16..16 + incl].to_vec());
        rest = &rest[16 + incl..];
    }
    frames
}

fn ether_type(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[12], frame[13]])
}

/// Captured frames split into VRRP adverts, ARP frames and neighbour advertisements.
struct Capture {
    adverts: Vec<Vec<u8>>,
    arps: Vec<Vec<u8>>,
    nas: Vec<Vec<u8>>,
}

fn capture(pcap: &[u8]) -> Capture {
    let mut c = Capture {
        adverts: Vec::new(),
        arps: Vec::new(),
        nas: Vec::new(),
    };
    for frame in pcap_frames(pcap) {
        match ether_type(&frame) {
            0x0806 => c.arps.push(frame),
            0x86dd if frame[20] == 58 => c.nas.push(frame),
            0x0800 | 0x86dd => c.adverts.push(frame),
            other => panic!("unexpected ethertype {other:#06x} in capture"),
        }
    }
    c
}

fn ipv4_id(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[18], frame[19]])
}

fn ipv6_flow_label(frame: &[u8]) -> u32 {
    u32::from_be_bytes([frame[14], frame[15], frame[16], frame[17]]) & 0xf_ffff
}

/// Decode every advert, check it against `advert` (priority 0 for the last one, sent on SIGTERM)
/// and re-encode it with `params` plus the frame's id / flow label.
fn check_adverts(adverts: &[Vec<u8>], expect: &Expect, advert: &Advert, params: &FrameParams) {
    assert!(
        adverts.len() >= 4,
        "too few adverts captured: {}",
        adverts.len()
    );
    for (i, frame) in adverts.iter().enumerate() {
        let last = i + 1 == adverts.len();
        let want = Advert {
            priority: if last { 0 } else { advert.priority },
            ..advert.clone()
        };
        let got = decode_frame(frame, expect).unwrap_or_else(|e| panic!("advert {i}: {e}"));
        assert_eq!(got.advert, want, "advert {i}");
        assert_eq!(got.src_ip, params.src_ip);
        assert_eq!(got.dst_ip, params.dst_ip);
        assert_eq!(got.src_mac, params.src_mac);
        assert!(got.addrs_match);
        assert!(!got.old_unicast_checksum);

        let mut p = params.clone();
        if params.src_ip.is_ipv4() {
            // keepalived's counter: the n-th advert of the instance carries id n.
            assert_eq!(ipv4_id(frame), (i + 1) as u16, "advert {i}: IP id");
            p.ip_id = ipv4_id(frame);
        } else {
            // One flow, one label.
            assert_eq!(
                ipv6_flow_label(frame),
                ipv6_flow_label(&adverts[0]),
                "advert {i}: flow label"
            );
            p.flow_label = ipv6_flow_label(frame);
        }
        let encoded = encode_frame(&p, &want).unwrap();
        assert_eq!(
            hex::encode(&encoded),
            hex::encode(frame),
            "advert {i}: our bytes vs keepalived's"
        );
    }
}

/// Every gratuitous ARP from keepalived equals ours, two bursts of five per VIP
/// (vrrp_garp_master_repeat 5, then again after vrrp_garp_master_delay 5 s).
fn check_garps(arps: &[Vec<u8>], vips: &[Ipv4Addr]) {
    let from_a: Vec<&Vec<u8>> = arps
        .iter()
        .filter(|f| f[6..12] == MAC_A && f[0..6] == [0xff; 6])
        .collect();
    for vip in vips {
        let ours = gratuitous_arp(MAC_A, *vip);
        let n = from_a.iter().filter(|f| ***f == ours).count();
        assert_eq!(n, 10, "gratuitous ARPs for {vip}");
        let decoded = decode_arp(&ours).unwrap();
        assert_eq!(decoded.arp.op, ArpOp::Request);
        assert!(decoded.arp.is_gratuitous());
        assert_eq!(decoded.arp.target_mac, [0xff; 6]);
    }
    let garps = from_a
        .iter()
        .filter(|f| decode_arp(f).is_ok_and(|a| a.arp.is_gratuitous()))
        .count();
    assert_eq!(garps, 10 * vips.len(), "no other gratuitous ARP");
}

/// What an instance configured like the capture's sender expects: its version, vrid, auth,
/// interval and addresses, with the address check on and the RFC unicast checksum.
fn expect_like(advert: &Advert, unicast: bool) -> Expect {
    Expect {
        version: advert.version,
        vrid: advert.vrid,
        auth: advert.auth.clone(),
        advert_int_cs: advert.advert_int_cs,
        addrs: advert.addrs.clone(),
        check_addrs: true,
        unicast,
        unicast_checksum: UnicastChecksum::Rfc,
    }
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

#[test]
fn v2_pass_auth_ipv4() {
    let cap = capture(include_bytes!("../../fixtures/vrrp/v2-pass.pcap"));
    let mut pw = [0u8; 8];
    pw[..7].copy_from_slice(b"lvsd123");
    let addrs = vec![v4([198, 18, 0, 100]), v4([198, 18, 0, 101])];
    let advert = Advert {
        version: Version::V2,
        vrid: 51,
        priority: 200,
        advert_int_cs: 100,
        auth: Auth::Pass(pw),
        addrs,
    };
    let expect = expect_like(&advert, false);
    check_adverts(
        &cap.adverts,
        &expect,
        &advert,
        &FrameParams::multicast(MAC_A, IpAddr::V4(IP_A)),
    );
    check_garps(
        &cap.arps,
        &[
            Ipv4Addr::new(198, 18, 0, 100),
            Ipv4Addr::new(198, 18, 0, 101),
        ],
    );

    // The same real advert, seen by instances configured differently.
    let frame = &cap.adverts[0];
    let mut other_pw = pw;
    other_pw[0] = b'L';
    let cases: Vec<(Expect, DecodeError)> = vec![
        (
            Expect {
                auth: Auth::Pass(other_pw),
                ..expect.clone()
            },
            DecodeError::AuthFailure,
        ),
        (
            Expect {
                auth: Auth::None,
                ..expect.clone()
            },
            DecodeError::AuthTypeMismatch { got: 1, want: 0 },
        ),
        (
            Expect {
                advert_int_cs: 300,
                ..expect.clone()
            },
            DecodeError::AdvertIntMismatch { got: 1, want: 3 },
        ),
        (
            Expect {
                version: Version::V3,
                ..expect.clone()
            },
            DecodeError::WrongVersion { got: 2, want: 3 },
        ),
        (
            Expect {
                vrid: 50,
                ..expect.clone()
            },
            DecodeError::VridNotOurs { got: 51, want: 50 },
        ),
        (
            Expect {
                addrs: vec![v4([198, 18, 0, 100])],
                ..expect.clone()
            },
            DecodeError::AddrCountMismatch { got: 2, want: 1 },
        ),
        (
            Expect {
                addrs: vec![v4([198, 18, 0, 100]), v4([198, 18, 0, 102])],
                ..expect.clone()
            },
            DecodeError::AddrMissing(v4([198, 18, 0, 102])),
        ),
        (
            Expect {
                unicast: true,
                ..expect.clone()
            },
            DecodeError::CastMismatch {
                expected_unicast: true,
            },
        ),
    ];
    for (exp, err) in cases {
        assert_eq!(decode_frame(frame, &exp), Err(err));
    }
    // With the address check off the advert passes and says its list differs.
    let relaxed = Expect {
        addrs: vec![v4([198, 18, 0, 100])],
        check_addrs: false,
        ..expect
    };
    assert!(!decode_frame(frame, &relaxed).unwrap().addrs_match);
}

#[test]
fn v3_ipv4_multicast() {
    let cap = capture(include_bytes!("../../fixtures/vrrp/v3-ipv4.pcap"));
    let addrs = vec![
        v4([198, 18, 0, 102]),
        v4([198, 18, 0, 103]),
        v4([198, 18, 0, 104]),
    ];
    let advert = Advert {
        version: Version::V3,
        vrid: 52,
        priority: 150,
        advert_int_cs: 50,
        auth: Auth::None,
        addrs,
    };
    let expect = Expect {
        // v3 does not compare intervals: a backup adopts the master's.
        advert_int_cs: 100,
        ..expect_like(&advert, false)
    };
    check_adverts(
        &cap.adverts,
        &expect,
        &advert,
        &FrameParams::multicast(MAC_A, IpAddr::V4(IP_A)),
    );
    check_garps(
        &cap.arps,
        &[
            Ipv4Addr::new(198, 18, 0, 102),
            Ipv4Addr::new(198, 18, 0, 103),
            Ipv4Addr::new(198, 18, 0, 104),
        ],
    );
    assert_eq!(
        decode_frame(
            &cap.adverts[0],
            &Expect {
                version: Version::V2,
                ..expect
            }
        ),
        Err(DecodeError::WrongVersion { got: 3, want: 2 }),
        "the length is checked against the packet's own version, then the version against ours"
    );
}

#[test]
fn v3_ipv4_unicast_peer() {
    let cap = capture(include_bytes!("../../fixtures/vrrp/v3-ipv4-unicast.pcap"));
    let addrs = vec![v4([198, 18, 0, 105])];
    let advert = Advert {
        version: Version::V3,
        vrid: 54,
        priority: 120,
        advert_int_cs: 100,
        auth: Auth::None,
        addrs,
    };
    let expect = expect_like(&advert, true);
    let params = FrameParams::unicast(MAC_A, IpAddr::V4(IP_A), MAC_B, IpAddr::V4(IP_B));
    check_adverts(&cap.adverts, &expect, &advert, &params);
    check_garps(&cap.arps, &[Ipv4Addr::new(198, 18, 0, 105)]);

    // keepalived 2.2 puts the peer's address in the pseudo-header: a receiver stuck in
    // old_unicast_checksum mode rejects it, one that never falls back accepts it.
    let frame = &cap.adverts[0];
    let old = Expect {
        unicast_checksum: UnicastChecksum::Old,
        ..expect.clone()
    };
    assert!(matches!(
        decode_frame(frame, &old),
        Err(DecodeError::BadChecksum { .. })
    ));
    let never = Expect {
        unicast_checksum: UnicastChecksum::Never,
        ..expect.clone()
    };
    assert!(decode_frame(frame, &never).is_ok());

    // Before the first advert the kernel resolved the peer: who-has from A, is-at from B.
    let arps: Vec<_> = cap.arps.iter().filter_map(|f| decode_arp(f).ok()).collect();
    let request = arps
        .iter()
        .find(|a| a.arp.op == ArpOp::Request && a.arp.target_ip == IP_B)
        .expect("who-has 198.18.0.11");
    assert_eq!(request.arp.sender_ip, IP_A);
    assert_eq!(request.arp.sender_mac, MAC_A);
    assert!(!request.arp.is_gratuitous());
    let reply = arps
        .iter()
        .find(|a| a.arp.op == ArpOp::Reply)
        .expect("is-at");
    assert_eq!((reply.arp.sender_ip, reply.arp.sender_mac), (IP_B, MAC_B));
    assert_eq!((reply.arp.target_ip, reply.arp.target_mac), (IP_A, MAC_A));
    assert_eq!(reply.dst_mac, MAC_A);
}

#[test]
fn v3_ipv6_multicast() {
    let cap = capture(include_bytes!("../../fixtures/vrrp/v3-ipv6.pcap"));
    let vips: [Ipv6Addr; 2] = [
        "fe80::100".parse().unwrap(),
        "2001:db8:18::100".parse().unwrap(),
    ];
    let addrs: Vec<IpAddr> = vips.iter().map(|a| IpAddr::V6(*a)).collect();
    let advert = Advert {
        version: Version::V3,
        vrid: 53,
        priority: 100,
        advert_int_cs: 100,
        auth: Auth::None,
        addrs,
    };
    let expect = expect_like(&advert, false);
    let src: Ipv6Addr = "fe80::a".parse().unwrap();
    check_adverts(
        &cap.adverts,
        &expect,
        &advert,
        &FrameParams::multicast(MAC_A, IpAddr::V6(src)),
    );

    // Unsolicited NAs: two bursts of five per VIP, each equal to ours.
    assert_eq!(cap.nas.len(), 10 * vips.len());
    for vip in vips {
        let ours = unsolicited_na(MAC_A, vip, false);
        assert_eq!(
            cap.nas.iter().filter(|f| **f == ours).count(),
            10,
            "NAs for {vip}"
        );
        let na = decode_na(&ours).unwrap();
        assert_eq!(
            (na.target, na.target_mac, na.src_ip),
            (vip, Some(MAC_A), vip)
        );
        assert!(na.override_flag && !na.solicited && !na.router);
    }
}

#[test]
fn v2_use_vmac_sends_from_the_virtual_mac() {
    let cap = capture(include_bytes!("../../fixtures/vrrp/v2-vmac.pcap"));
    let vmac = virtual_mac(false, 55);
    assert_eq!(vmac, [0x00, 0x00, 0x5e, 0x00, 0x01, 0x37]);
    let addrs = vec![v4([198, 18, 0, 106])];
    let advert = Advert {
        version: Version::V2,
        vrid: 55,
        priority: 110,
        advert_int_cs: 100,
        auth: Auth::None,
        addrs,
    };
    let expect = expect_like(&advert, false);
    // The source address stays the parent interface's primary address.
    check_adverts(
        &cap.adverts,
        &expect,
        &advert,
        &FrameParams::multicast(vmac, IpAddr::V4(IP_A)),
    );
    // GARPs also come from (and announce) the virtual MAC.
    let ours = gratuitous_arp(vmac, Ipv4Addr::new(198, 18, 0, 106));
    assert_eq!(cap.arps.len(), 10);
    assert!(cap.arps.iter().all(|f| *f == ours));
}

#[test]
fn v3_ipv4_unicast_old_checksum() {
    let cap = capture(include_bytes!(
        "../../fixtures/vrrp/v3-ipv4-unicast-old.pcap"
    ));
    let addrs = vec![v4([198, 18, 0, 107])];
    let advert = Advert {
        version: Version::V3,
        vrid: 56,
        priority: 120,
        advert_int_cs: 100,
        auth: Auth::None,
        addrs,
    };
    let expect = Expect {
        unicast_checksum: UnicastChecksum::Old,
        ..expect_like(&advert, true)
    };
    let mut params = FrameParams::unicast(MAC_A, IpAddr::V4(IP_A), MAC_B, IpAddr::V4(IP_B));
    params.old_unicast_checksum = true;
    check_adverts(&cap.adverts, &expect, &advert, &params);

    // A default receiver accepts it and learns the old form; `old_unicast_checksum never` refuses it.
    let frame = &cap.adverts[0];
    let rfc = Expect {
        unicast_checksum: UnicastChecksum::Rfc,
        ..expect.clone()
    };
    assert!(decode_frame(frame, &rfc).unwrap().old_unicast_checksum);
    let never = Expect {
        unicast_checksum: UnicastChecksum::Never,
        ..expect
    };
    assert!(matches!(
        decode_frame(frame, &never),
        Err(DecodeError::BadChecksum { .. })
    ));
}
