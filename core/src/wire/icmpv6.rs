//! ICMPv6 (RFC 4443) neighbour discovery (RFC 4861): the neighbour solicitation a host
//! resolves an address with, and the advertisement that answers it or that a new VRRP
//! master sends unsolicited; and the Ethernet frames that carry them.

use std::net::Ipv6Addr;

use super::ethernet::{self, EthernetRepr, Mac};
use super::ipv6::{self, Ipv6Repr};
use super::{be16, checksum, ip_proto, need, room, WireError};

/// ICMPv6 type of a neighbour solicitation.
pub const NEIGHBOUR_SOLICIT: u8 = 135;
/// ICMPv6 type of a neighbour advertisement.
pub const NEIGHBOUR_ADVERT: u8 = 136;
/// Hop limit neighbour discovery messages carry (RFC 4861 7.1.2).
pub const NDISC_HOP_LIMIT: u8 = 255;
/// IPv6 all-nodes multicast group.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Option type of the source link-layer address.
pub const OPT_SOURCE_LINKADDR: u8 = 1;
/// Option type of the target link-layer address.
pub const OPT_TARGET_LINKADDR: u8 = 2;
/// Length of the fixed part: type, code, checksum, flags + reserved, target.
pub const NA_LEN: usize = 24;
/// Length of a solicitation's fixed part: type, code, checksum, reserved, target.
pub const NS_LEN: usize = 24;

const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

/// A neighbour advertisement.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct NeighbourAdvertRepr {
    /// R flag: the sender is a router.
    pub router: bool,
    /// S flag: answer to a solicitation.
    pub solicited: bool,
    /// O flag: replace cached link-layer addresses.
    pub override_flag: bool,
    /// The address advertised.
    pub target: Ipv6Addr,
    /// The target link-layer address option, if present.
    pub target_mac: Option<Mac>,
}

impl NeighbourAdvertRepr {
    /// Read a neighbour advertisement (type 136; the code is not checked, nor the checksum:
    /// [`verify_checksum`]). Options are walked for the target link-layer address; a
    /// malformed option ends the walk.
    pub fn parse(msg: &[u8]) -> Result<NeighbourAdvertRepr, WireError> {
        if let Some(&t) = msg.first() {
            if t != NEIGHBOUR_ADVERT {
                return Err(WireError::Unsupported {
                    layer: "ICMPv6",
                    what: "type",
                    value: t.into(),
                });
            }
        }
        need("neighbour advertisement", msg, NA_LEN)?;
        let flags = msg[4];
        Ok(NeighbourAdvertRepr {
            router: flags & FLAG_ROUTER != 0,
            solicited: flags & FLAG_SOLICITED != 0,
            override_flag: flags & FLAG_OVERRIDE != 0,
            target: target_of(msg),
            target_mac: link_addr_option(&msg[NA_LEN..], OPT_TARGET_LINKADDR),
        })
    }

    /// Bytes [`NeighbourAdvertRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        NA_LEN + if self.target_mac.is_some() { 8 } else { 0 }
    }

    /// Write the message with its checksum for `src` → `dst`.
    pub fn emit(&self, buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<(), WireError> {
        let len = self.buffer_len();
        room("neighbour advertisement", buf, len)?;
        let m = &mut buf[..len];
        m[0] = NEIGHBOUR_ADVERT;
        m[1] = 0;
        m[2..4].fill(0);
        m[4] = (u8::from(self.router) * FLAG_ROUTER)
            | (u8::from(self.solicited) * FLAG_SOLICITED)
            | (u8::from(self.override_flag) * FLAG_OVERRIDE);
        m[5..8].fill(0);
        m[8..24].copy_from_slice(&self.target.octets());
        if let Some(mac) = self.target_mac {
            m[24] = OPT_TARGET_LINKADDR;
            m[25] = 1;
            m[26..32].copy_from_slice(&mac);
        }
        let sum = checksum::icmpv6(src, dst, m);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        Ok(())
    }
}

/// The target address of a solicitation or advertisement (bytes 8..24, length checked).
fn target_of(msg: &[u8]) -> Ipv6Addr {
    let mut target = [0u8; 16];
    target.copy_from_slice(&msg[8..24]);
    Ipv6Addr::from(target)
}

/// The link-layer address option of type `want` among `opts`; a malformed option ends the
/// walk.
fn link_addr_option(mut opts: &[u8], want: u8) -> Option<Mac> {
    let mut found = None;
    while let [kind, len, ..] = *opts {
        let opt_len = usize::from(len) * 8;
        let Some(opt) = opts.get(..opt_len).filter(|_| opt_len > 0) else {
            break;
        };
        if kind == want {
            if let Some(mac) = opt.get(2..8).and_then(|m| <Mac>::try_from(m).ok()) {
                found = Some(mac);
            }
        }
        opts = &opts[opt_len..];
    }
    found
}

/// A neighbour solicitation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct NeighbourSolicitRepr {
    /// The address asked for.
    pub target: Ipv6Addr,
    /// The source link-layer address option (absent when sent from `::`, in duplicate
    /// address detection).
    pub source_mac: Option<Mac>,
}

impl NeighbourSolicitRepr {
    /// Read a neighbour solicitation (type 135; code and checksum not checked).
    pub fn parse(msg: &[u8]) -> Result<NeighbourSolicitRepr, WireError> {
        if let Some(&t) = msg.first() {
            if t != NEIGHBOUR_SOLICIT {
                return Err(WireError::Unsupported {
                    layer: "ICMPv6",
                    what: "type",
                    value: t.into(),
                });
            }
        }
        need("neighbour solicitation", msg, NS_LEN)?;
        Ok(NeighbourSolicitRepr {
            target: target_of(msg),
            source_mac: link_addr_option(&msg[NS_LEN..], OPT_SOURCE_LINKADDR),
        })
    }

    /// Bytes [`NeighbourSolicitRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        NS_LEN + if self.source_mac.is_some() { 8 } else { 0 }
    }

    /// Write the message with its checksum for `src` → `dst`.
    pub fn emit(&self, buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<(), WireError> {
        let len = self.buffer_len();
        room("neighbour solicitation", buf, len)?;
        let m = &mut buf[..len];
        m[0] = NEIGHBOUR_SOLICIT;
        m[1..8].fill(0);
        m[8..24].copy_from_slice(&self.target.octets());
        if let Some(mac) = self.source_mac {
            m[24] = OPT_SOURCE_LINKADDR;
            m[25] = 1;
            m[26..32].copy_from_slice(&mac);
        }
        let sum = checksum::icmpv6(src, dst, m);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        Ok(())
    }
}

/// The solicited-node multicast group of `addr` (RFC 4291 2.7.1): ff02::1:ffXX:XXXX.
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// The Ethernet group address of an IPv6 multicast group (RFC 2464 7): 33-33 and its last
/// four bytes.
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// A neighbour discovery message as it travels.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ndisc {
    /// Who has `target`?
    Solicit(NeighbourSolicitRepr),
    /// `target` is at ...
    Advert(NeighbourAdvertRepr),
}

/// A neighbour discovery frame read whole: Ethernet, IPv6 and the message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NdiscFrame {
    /// Ethernet source.
    pub src_mac: Mac,
    /// IPv6 source.
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// The message.
    pub msg: Ndisc,
}

impl NdiscFrame {
    /// Read a solicitation or advertisement with the checks RFC 4861 7.1 asks of a
    /// receiver: hop limit 255, code 0, checksum right; `None` for any other frame.
    pub fn parse(frame: &[u8]) -> Option<NdiscFrame> {
        let (eth, payload) = EthernetRepr::parse(frame).ok()?;
        if eth.ethertype != ethernet::ethertype::IPV6 {
            return None;
        }
        let (ip, body) = Ipv6Repr::parse(payload).ok()?;
        if ip.next_header != ip_proto::ICMPV6 || ip.hop_limit != NDISC_HOP_LIMIT {
            return None;
        }
        if body.get(1) != Some(&0) || verify_checksum(ip.src, ip.dst, body).is_err() {
            return None;
        }
        let msg = match body[0] {
            NEIGHBOUR_SOLICIT => Ndisc::Solicit(NeighbourSolicitRepr::parse(body).ok()?),
            NEIGHBOUR_ADVERT => Ndisc::Advert(NeighbourAdvertRepr::parse(body).ok()?),
            _ => return None,
        };
        Some(NdiscFrame {
            src_mac: eth.src,
            src: ip.src,
            dst: ip.dst,
            msg,
        })
    }

    /// The frame from `src_mac` to `dst_mac`: IPv6 with hop limit 255, traffic class and
    /// flow label 0, as the kernel's `ndisc_send_skb` sends.
    pub fn emit(&self, dst_mac: Mac) -> Vec<u8> {
        let len = match &self.msg {
            Ndisc::Solicit(ns) => ns.buffer_len(),
            Ndisc::Advert(na) => na.buffer_len(),
        };
        let ip = Ipv6Repr {
            src: self.src,
            dst: self.dst,
            next_header: ip_proto::ICMPV6,
            hop_limit: NDISC_HOP_LIMIT,
            traffic_class: 0,
            flow_label: 0,
            payload_len: len,
        };
        let eth = EthernetRepr {
            dst: dst_mac,
            src: self.src_mac,
            ethertype: ethernet::ethertype::IPV6,
        };
        let at = ethernet::HEADER_LEN + ipv6::HEADER_LEN;
        let mut frame = vec![0; at + len];
        // Sized for all three: none of them fails.
        let _ = eth.emit(&mut frame);
        let _ = ip.emit(&mut frame[ethernet::HEADER_LEN..]);
        let _ = match &self.msg {
            Ndisc::Solicit(ns) => ns.emit(&mut frame[at..], self.src, self.dst),
            Ndisc::Advert(na) => na.emit(&mut frame[at..], self.src, self.dst),
        };
        frame
    }

    /// The solicitation `mac` / `src` sends to resolve `target`: to its solicited-node
    /// group, with the source link-layer address.
    pub fn solicit(mac: Mac, src: Ipv6Addr, target: Ipv6Addr) -> (NdiscFrame, Mac) {
        let group = solicited_node(target);
        (
            NdiscFrame {
                src_mac: mac,
                src,
                dst: group,
                msg: Ndisc::Solicit(NeighbourSolicitRepr {
                    target,
                    source_mac: Some(mac),
                }),
            },
            multicast_mac(group),
        )
    }
}

/// Check the checksum of an ICMPv6 message from `src` to `dst`.
pub fn verify_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> Result<(), WireError> {
    need("ICMPv6 header", msg, 4)?;
    let got = be16(msg, 2);
    let expected = checksum::icmpv6(src, dst, msg);
    if got != expected {
        return Err(WireError::Checksum {
            layer: "ICMPv6",
            got,
            expected,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb() -> impl Strategy<Value = NeighbourAdvertRepr> {
        (
            any::<(bool, bool, bool)>(),
            any::<[u8; 16]>(),
            proptest::option::of(any::<Mac>()),
        )
            .prop_map(|((router, solicited, override_flag), t, target_mac)| {
                NeighbourAdvertRepr {
                    router,
                    solicited,
                    override_flag,
                    target: t.into(),
                    target_mac,
                }
            })
    }

    proptest! {
        #[test]
        fn round_trips_and_agrees_with_etherparse(na in arb(), s: [u8; 16]) {
            let src = Ipv6Addr::from(s);
            let mut m = vec![0; na.buffer_len()];
            na.emit(&mut m, src, ALL_NODES).unwrap();
            prop_assert_eq!(NeighbourAdvertRepr::parse(&m), Ok(na));
            verify_checksum(src, ALL_NODES, &m).unwrap();
            let mut again = m.clone();
            na.emit(&mut again, src, ALL_NODES).unwrap();
            prop_assert_eq!(&again, &m);
            let e = etherparse::Icmpv6Slice::from_slice(&m).unwrap();
            prop_assert_eq!((e.type_u8(), e.code_u8()), (NEIGHBOUR_ADVERT, 0));
            prop_assert!(e.is_checksum_valid(src.octets(), ALL_NODES.octets()));
        }

        #[test]
        fn solicitations_round_trip_and_agree_with_etherparse(t: [u8; 16], mac in proptest::option::of(any::<Mac>()), s: [u8; 16]) {
            let ns = NeighbourSolicitRepr { target: t.into(), source_mac: mac };
            let src = Ipv6Addr::from(s);
            let dst = solicited_node(ns.target);
            let mut m = vec![0; ns.buffer_len()];
            ns.emit(&mut m, src, dst).unwrap();
            prop_assert_eq!(NeighbourSolicitRepr::parse(&m), Ok(ns));
            let e = etherparse::Icmpv6Slice::from_slice(&m).unwrap();
            prop_assert_eq!((e.type_u8(), e.code_u8()), (NEIGHBOUR_SOLICIT, 0));
            prop_assert!(e.is_checksum_valid(src.octets(), dst.octets()));
        }

        #[test]
        fn ndisc_frames_round_trip(t: [u8; 16], mac: Mac, s: [u8; 16], advert: bool, na in arb()) {
            let (f, dst_mac) = NdiscFrame::solicit(mac, s.into(), t.into());
            let f = if advert { NdiscFrame { msg: Ndisc::Advert(na), ..f } } else { f };
            let frame = f.emit(dst_mac);
            prop_assert_eq!(NdiscFrame::parse(&frame), Some(f));
            let mut hop = frame.clone();
            hop[ethernet::HEADER_LEN + 7] = 254;
            prop_assert_eq!(NdiscFrame::parse(&hop), None, "hop limit below 255");
            let mut sum = frame.clone();
            let last = sum.len() - 1;
            sum[last] ^= 1;
            prop_assert_eq!(NdiscFrame::parse(&sum), None, "bad checksum");
        }

        #[test]
        fn damaged_messages_never_panic(na in arb(), damage in proptest::collection::vec((0usize..40, any::<u8>(), 0u8..3), 0..4), cut in 0usize..40) {
            let mut m = vec![0; na.buffer_len()];
            na.emit(&mut m, Ipv6Addr::LOCALHOST, ALL_NODES).unwrap();
            crate::fuzz::damage(&mut m, &damage);
            m.truncate(cut);
            let _ = NeighbourAdvertRepr::parse(&m);
            let _ = NeighbourSolicitRepr::parse(&m);
            let _ = verify_checksum(Ipv6Addr::LOCALHOST, ALL_NODES, &m);
        }
    }
}
