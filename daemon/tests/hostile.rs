//! A flood of hostile VRRP packets at an `lvsd run` master: wrong TTL, wrong password,
//! bad checksum, truncated, a lying address count, VRRPv3 at a v2 instance, wrong auth
//! type, and garbage. Each claims priority 200, above the master's 150, so any one taken
//! as valid would demote it. Needs root and iproute2 (skipped with the reason otherwise).

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use common::*;
use socket2::{Domain, Protocol, Socket, Type};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// RFC 1071 checksum.
fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One mutation of a valid advert.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    Ttl64,
    WrongPassword,
    BadChecksum,
    Truncated,
    LyingCount,
    Version3,
    AuthTypeNone,
    Garbage(u32),
}

/// The IPv4 packet (the kernel fills in the header checksum) for `h`.
fn packet(h: Hostile) -> Vec<u8> {
    let mut vrrp = vec![0x21, 51, 200, 1, 1, 1, 0, 0];
    vrrp.extend(VIP.octets());
    vrrp.extend(b"secret\0\0");
    match h {
        Hostile::WrongPassword => vrrp[12..20].copy_from_slice(b"wrong\0\0\0"),
        Hostile::LyingCount => vrrp[3] = 5,
        Hostile::Version3 => vrrp[0] = 0x31,
        Hostile::AuthTypeNone => vrrp[4] = 0,
        _ => {}
    }
    let sum = checksum(&vrrp);
    vrrp[6..8].copy_from_slice(&sum.to_be_bytes());
    match h {
        Hostile::BadChecksum => vrrp[7] ^= 0x55,
        Hostile::Truncated => vrrp.truncate(6),
        Hostile::Garbage(seed) => {
            let mut x = seed.wrapping_mul(2_654_435_761) | 1;
            let len = 1 + (seed as usize * 7) % 60;
            vrrp = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
        }
        _ => {}
    }
    let ttl = if matches!(h, Hostile::Ttl64) { 64 } else { 255 };
    let len = (20 + vrrp.len()) as u16;
    let mut ip = vec![0x45, 0xc0];
    ip.extend(len.to_be_bytes());
    ip.extend([0, 0, 0, 0, ttl, 112, 0, 0]);
    ip.extend(SRC.octets());
    ip.extend(GROUP.octets());
    ip.extend(vrrp);
    ip
}

#[test]
fn a_hostile_flood_changes_nothing() {
    if skip() {
        return;
    }
    let lab = Lab::new("flood", 2);
    let conf = Instance {
        state: "MASTER",
        priority: 150,
        version: 2,
        advert_int: "1",
        vip: "198.18.0.100/24",
        extra: "",
    }
    .conf();
    let mut r1 = lvsd(&lab, 0, "r1", &conf, &[]);
    assert!(
        time_until_held(&lab.routers[0], "198.18.0.100", Duration::from_secs(8)).is_some(),
        "{}",
        r1.log()
    );
    let before = r1.log().lines().count();
    let transitions = r1.count("Entering");
    let kinds = [
        Hostile::Ttl64,
        Hostile::WrongPassword,
        Hostile::BadChecksum,
        Hostile::Truncated,
        Hostile::LyingCount,
        Hostile::Version3,
        Hostile::AuthTypeNone,
    ];
    let per_kind = 100;
    let garbage = 300;
    let sent = kinds.len() * per_kind + garbage;
    lab.routers[1]
        .run(move || {
            let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
            s.set_header_included_v4(true).unwrap();
            s.bind_device(Some(b"eth0")).unwrap();
            let to = SocketAddrV4::new(GROUP, 0).into();
            let deadline = Instant::now() + Duration::from_secs(10);
            let packets = kinds
                .iter()
                .flat_map(|k| std::iter::repeat_n(*k, per_kind))
                .chain((0..garbage as u32).map(Hostile::Garbage));
            for p in packets {
                if Instant::now() > deadline {
                    break;
                }
                s.send_to(&packet(p), &to).unwrap();
                std::thread::sleep(Duration::from_micros(500));
            }
        })
        .unwrap()
        .join()
        .unwrap();
    // Two advert intervals more: anything queued is handled.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        r1.proc.wait_for(Duration::ZERO).is_none(),
        "lvsd died:\n{}",
        r1.log()
    );
    assert!(holds(&lab.routers[0], "198.18.0.100"));
    assert_eq!(r1.count("Entering"), transitions, "{}", r1.log());
    let logged = r1.log().lines().count() - before;
    assert!(logged <= sent, "{logged} lines for {sent} packets");
    // What a valid advert at that priority would do: this test can fail.
    let backups = r1.count("Entering BACKUP STATE");
    lab.routers[1]
        .run(|| {
            let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
            s.set_header_included_v4(true).unwrap();
            s.bind_device(Some(b"eth0")).unwrap();
            let mut valid = packet(Hostile::Ttl64);
            valid[8] = 255; // the TTL: now a well-formed advert
            s.send_to(&valid, &SocketAddrV4::new(GROUP, 0).into())
                .unwrap();
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(
        r1.wait_for_lines("Entering BACKUP STATE", backups + 1, Duration::from_secs(3)),
        "a valid advert at priority 200 did not demote the master:\n{}",
        r1.log()
    );
    r1.proc.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
}
