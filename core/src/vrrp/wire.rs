//! VRRP advertisement codec and the ARP / neighbour-advertisement frames a new master sends.
//!
//! Frames are whole Ethernet frames, laid out the way keepalived 2.2 puts them on the wire
//! (checked byte for byte against captures in `fixtures/vrrp/`, see `core/tests/vrrp_interop.rs`):
//!
//! * IPv4 (keepalived builds the header itself, `IP_HDRINCL`, `vrrp_build_ip4`): TOS 0xc0
//!   (internet control), no DF flag, TTL 255, protocol 112, an IP id that keepalived counts per
//!   instance (1, 2, 3, ... skipping 0, `vrrp_update_pkt`), header checksum filled by the kernel.
//! * IPv6 (the kernel builds the header): traffic class 0xc0 (`if_setsockopt_priority`),
//!   hop limit 255, a flow label the kernel derives from a hash of the flow
//!   (`net.ipv6.auto_flowlabels`, keyed per boot), VRRP checksum filled by the kernel
//!   (`IPV6_CHECKSUM`) with the usual IPv6 pseudo-header, whatever the VRRP version.
//! * Source MAC: the sending interface's own MAC. Only with `use_vmac` does keepalived send
//!   from a macvlan carrying the virtual MAC ([`virtual_mac`]); the caller picks.
//! * VRRP checksum: v2 over the VRRP message alone (RFC 3768 5.3.8); v3 over IPv4 with the IPv4
//!   pseudo-header (RFC 5798 5.2.8), whose destination keepalived replaces by 224.0.0.18 for
//!   unicast peers in `old_unicast_checksum` mode (keepalived <= 1.3.6 did that).
//!
//! Decoding applies the checks of keepalived's `vrrp_check_packet` in its order, plus what the
//! kernel checks before keepalived sees the packet (IP header and IPv6 checksums, lengths).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::ethernet::{ethertype, EthernetRepr, HEADER_LEN as ETH_LEN};
use crate::wire::ipv4::{self, Ipv4Repr};
use crate::wire::ipv6::{self, Ipv6Repr};
use crate::wire::vrrp::{VrrpHeader, VrrpRepr};
use crate::wire::{checksum, ip_proto, WireError};

/// VRRP protocol version.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Version {
    /// RFC 3768.
    V2,
    /// RFC 5798.
    V3,
}

/// Authentication carried by a v2 advertisement.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Auth {
    /// Type 0.
    None,
    /// Type 1: simple text password, zero-padded to 8 bytes.
    Pass([u8; 8]),
    /// Type 2: IPsec AH (keepalived's `auth_type AH`).
    Ah,
}

/// One VRRP advertisement, independent of the IP layer that carries it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Advert {
    /// Version 2 or 3.
    pub version: Version,
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// Priority: 0 = master resigning, 255 = address owner.
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2 carries whole seconds).
    pub advert_int_cs: u16,
    /// v2 authentication (always `Auth::None` for v3).
    pub auth: Auth,
    /// The virtual addresses.
    pub addrs: Vec<IpAddr>,
}

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = ip_proto::VRRP;
/// TTL / hop limit every VRRP packet must carry (RFC 3768 5.2.3, RFC 5798 5.1.1.3).
pub const VRRP_TTL: u8 = 255;
/// IPv4 multicast group of VRRP.
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP.
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// IPv4 TOS / IPv6 traffic class keepalived sends with (precedence "internetwork control").
pub const TOS_INTERNET_CONTROL: u8 = 0xc0;
/// Length of the fixed VRRP header.
pub const HEADER_LEN: usize = crate::wire::vrrp::HEADER_LEN;
/// Length of the v2 authentication data (present in every v2-over-IPv4 advert).
pub const AUTH_DATA_LEN: usize = crate::wire::vrrp::AUTH_DATA_LEN;
/// Largest v3 advertisement interval (12 bits of centiseconds).
pub const MAX_V3_ADVERT_INT_CS: u16 = 0x0fff;

const VRRP_TYPE_ADVERT: u8 = 1;
const AUTH_TYPE_NONE: u8 = 0;
const AUTH_TYPE_PASS: u8 = 1;
const AUTH_TYPE_AH: u8 = 2;

/// The VRRP virtual MAC of `vrid`: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6.
pub fn virtual_mac(ipv6: bool, vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

/// The Ethernet group address a multicast IP maps to (RFC 1112 6.4, RFC 2464 7); `None` for unicast.
pub fn multicast_mac(ip: IpAddr) -> Option<[u8; 6]> {
    match ip {
        IpAddr::V4(v4) if v4.is_multicast() => {
            let o = v4.octets();
            Some([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
        }
        IpAddr::V6(v6) if v6.is_multicast() => Some(crate::wire::icmpv6::multicast_mac(v6)),
        _ => None,
    }
}

/// How the receiver of a v3-over-IPv4 unicast advert computes the checksum pseudo-header
/// (keepalived's `old_unicast_checksum` keyword and its automatic fallback).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum UnicastChecksum {
    /// RFC pseudo-header; fall back to the old form when only that one verifies
    /// (keepalived's default, `CHKSUM_COMPATIBILITY_NONE`).
    #[default]
    Rfc,
    /// RFC pseudo-header only (`old_unicast_checksum never`).
    Never,
    /// Destination 224.0.0.18 in the pseudo-header (`old_unicast_checksum`, or after the fallback).
    Old,
}

/// Everything about an advert's frame that is not in the [`Advert`] itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameParams {
    /// Source MAC: the interface's own MAC (keepalived's default) or [`virtual_mac`] with `use_vmac`.
    pub src_mac: [u8; 6],
    /// Destination MAC; `None` derives it from a multicast `dst_ip` ([`multicast_mac`]).
    pub dst_mac: Option<[u8; 6]>,
    /// Source address (the primary IPv4 address, or the IPv6 link-local address).
    pub src_ip: IpAddr,
    /// [`MCAST_V4`] / [`MCAST_V6`] or a unicast peer.
    pub dst_ip: IpAddr,
    /// TTL / hop limit ([`VRRP_TTL`] unless keepalived's unicast `ttl` says otherwise).
    pub ttl: u8,
    /// IPv4 identification: keepalived's per-instance counter (1, 2, ... wrapping to 1, not 0).
    pub ip_id: u16,
    /// IPv6 flow label (20 bits) the kernel chose; 0 when `net.ipv6.auto_flowlabels` is 0.
    pub flow_label: u32,
    /// v3 over IPv4 to a unicast peer: put 224.0.0.18 in the checksum pseudo-header.
    pub old_unicast_checksum: bool,
}

impl FrameParams {
    /// Multicast advert to 224.0.0.18 / ff02::12 (chosen by the family of `src_ip`).
    pub fn multicast(src_mac: [u8; 6], src_ip: IpAddr) -> Self {
        let dst_ip = match src_ip {
            IpAddr::V4(_) => IpAddr::V4(MCAST_V4),
            IpAddr::V6(_) => IpAddr::V6(MCAST_V6),
        };
        Self {
            src_mac,
            dst_mac: None,
            src_ip,
            dst_ip,
            ttl: VRRP_TTL,
            ip_id: 1,
            flow_label: 0,
            old_unicast_checksum: false,
        }
    }

    /// Unicast advert to a `unicast_peer` whose MAC is known.
    pub fn unicast(src_mac: [u8; 6], src_ip: IpAddr, dst_mac: [u8; 6], dst_ip: IpAddr) -> Self {
        Self {
            dst_mac: Some(dst_mac),
            dst_ip,
            ..Self::multicast(src_mac, src_ip)
        }
    }
}

/// Why an advert could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Source, destination and virtual addresses must all be IPv4 or all IPv6.
    #[error("address family mismatch: {0} does not match the source address family")]
    FamilyMismatch(IpAddr),
    /// The count field is one byte.
    #[error("{0} virtual addresses, at most 255 fit in an advert")]
    TooManyAddresses(usize),
    /// v2 carries whole seconds up to 255, v3 up to 4095 centiseconds.
    #[error("advert interval {cs} cs cannot be carried by VRRP {version:?}")]
    AdvertInterval {
        /// Requested interval.
        cs: u16,
        /// Version of the advert.
        version: Version,
    },
    /// A unicast destination needs its MAC.
    #[error("destination {0} is not multicast and no destination MAC was given")]
    NoDestinationMac(IpAddr),
}

/// What the receiving instance requires of an advert (its configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    /// The instance's VRRP version.
    pub version: Version,
    /// The instance's virtual router id.
    pub vrid: u8,
    /// v2 authentication the instance is configured with.
    pub auth: Auth,
    /// The instance's advert interval (compared with v2 adverts only; v3 backups adopt the master's).
    pub advert_int_cs: u16,
    /// The instance's virtual addresses.
    pub addrs: Vec<IpAddr>,
    /// Check the address count and list (keepalived's `check_vip_addr`: always as master,
    /// as backup unless `skip_check_adv_addr` is set and the advert comes from the known master).
    pub check_addrs: bool,
    /// The instance uses `unicast_peer` (no TTL check, unicast destination expected).
    pub unicast: bool,
    /// v3 over IPv4 unicast checksum mode.
    pub unicast_checksum: UnicastChecksum,
}

/// A frame that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Ethernet source.
    pub src_mac: [u8; 6],
    /// Ethernet destination.
    pub dst_mac: [u8; 6],
    /// The sender's address (the tie-break for equal priorities).
    pub src_ip: IpAddr,
    /// Where it was sent.
    pub dst_ip: IpAddr,
    /// TTL / hop limit as received.
    pub ttl: u8,
    /// The advert.
    pub advert: Advert,
    /// The advert lists exactly the expected addresses (in any order); always computed, even
    /// when `check_addrs` is off.
    pub addrs_match: bool,
    /// The checksum verified only with 224.0.0.18 in the pseudo-header: a keepalived receiving
    /// this switches the instance to `old_unicast_checksum` ("Setting unicast VRRPv3 checksum to
    /// old version").
    pub old_unicast_checksum: bool,
}

/// Why a frame is not an acceptable advert for the instance.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than a header or length field needs.
    #[error("truncated {layer}: need {needed} bytes, have {got}")]
    Truncated {
        /// Which layer.
        layer: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// An Ethernet type other than IPv4 / IPv6.
    #[error("not IP: ethertype {0:#06x}")]
    NotIp(u16),
    /// The IP layer is malformed (bad version, header length, extension header...).
    #[error("malformed {layer} packet: {reason}")]
    MalformedIp {
        /// IPv4 or IPv6.
        layer: &'static str,
        /// What etherparse said.
        reason: String,
    },
    /// The IPv4 header checksum is wrong (the kernel drops these).
    #[error("bad IPv4 header checksum {got:#06x}, expected {expected:#06x}")]
    BadIpChecksum {
        /// Carried.
        got: u16,
        /// Computed.
        expected: u16,
    },
    /// A fragment (VRRP is never fragmented).
    #[error("fragmented packet")]
    Fragmented,
    /// IP protocol is not 112 (an IPsec AH advert also lands here: AH is not supported).
    #[error("IP protocol {0} is not VRRP (112)")]
    NotVrrp(u8),
    /// VRID of another virtual router ("Unknown VRID(%d) received ... ignoring").
    #[error("VRID {got} is not ours ({want})")]
    VridNotOurs {
        /// Carried.
        got: u8,
        /// Ours.
        want: u8,
    },
    /// The VRRP length disagrees with version and count ("vrrp packet too long/short").
    #[error("vrrp packet too {}, length {got} and expect {expected}", if got > expected { "long" } else { "short" })]
    LengthMismatch {
        /// VRRP bytes in the IP payload.
        got: usize,
        /// What version and address count imply.
        expected: usize,
    },
    /// TTL / hop limit is not 255 on a multicast instance ("invalid TTL/HL").
    #[error("invalid TTL/HL. Received {0} and expect 255")]
    BadTtl(u8),
    /// Another VRRP version ("wrong version").
    #[error("wrong version. Received {got} and expect {want}")]
    WrongVersion {
        /// Version nibble carried.
        got: u8,
        /// Ours.
        want: u8,
    },
    /// v2 auth type outside 0..=2 ("Invalid auth type").
    #[error("Invalid auth type: {0}")]
    InvalidAuthType(u8),
    /// v2 auth type differs from ours ("received a %d auth, expecting %d!").
    #[error("received a {got} auth, expecting {want}!")]
    AuthTypeMismatch {
        /// Carried.
        got: u8,
        /// Ours.
        want: u8,
    },
    /// v2 PASS password differs ("received an invalid passwd!").
    #[error("received an invalid passwd!")]
    AuthFailure,
    /// v2 interval differs from ours ("advertisement interval mismatch").
    #[error("advertisement interval mismatch mine={want} sec rcv'd={got} sec")]
    AdvertIntMismatch {
        /// Seconds carried.
        got: u8,
        /// Ours, in seconds.
        want: u16,
    },
    /// Type other than 1 (advertisement).
    #[error("Invalid packet type. {0} and expect 1")]
    WrongType(u8),
    /// Address count differs from ours ("received an unexpected ip number count").
    #[error("received an unexpected ip number count {got}, expected {want}!")]
    AddrCountMismatch {
        /// Count carried.
        got: u8,
        /// Our number of virtual addresses.
        want: usize,
    },
    /// VRRP checksum wrong ("Invalid VRRPv2/VRRPv3 checksum").
    #[error("invalid VRRP checksum {got:#06x}, expected {expected:#06x}")]
    BadChecksum {
        /// Carried.
        got: u16,
        /// Computed (with the pseudo-header the instance uses).
        expected: u16,
    },
    /// Multicast advert on a unicast instance or the reverse.
    #[error("expected {} packet but received {} packet", if *.expected_unicast { "unicast" } else { "multicast" }, if *.expected_unicast { "multicast" } else { "unicast" })]
    CastMismatch {
        /// The instance uses unicast peers.
        expected_unicast: bool,
    },
    /// One of our addresses is not in the advert ("ip address associated with VRID %d not
    /// present in MASTER advert").
    #[error("ip address associated with VRID not present in MASTER advert: {0}")]
    AddrMissing(IpAddr),
}

fn auth_type_code(auth: &Auth) -> u8 {
    match auth {
        Auth::None => AUTH_TYPE_NONE,
        Auth::Pass(_) => AUTH_TYPE_PASS,
        Auth::Ah => AUTH_TYPE_AH,
    }
}

fn version_nibble(version: Version) -> u8 {
    match version {
        Version::V2 => 2,
        Version::V3 => 3,
    }
}

/// Checksum a VRRP message would carry (its checksum bytes are taken as zero).
/// `pseudo_dst` is the pseudo-header destination (used by v3 over IPv4 and by IPv6).
fn vrrp_checksum(version: Version, src: IpAddr, pseudo_dst: IpAddr, msg: &[u8]) -> u16 {
    checksum::vrrp(version == Version::V3, src, pseudo_dst, msg)
}

/// The VRRP message (header, addresses, v2 auth data) with its checksum.
fn encode_vrrp(params: &FrameParams, advert: &Advert) -> Result<Vec<u8>, EncodeError> {
    let ipv6 = params.src_ip.is_ipv6();
    if params.dst_ip.is_ipv6() != ipv6 {
        return Err(EncodeError::FamilyMismatch(params.dst_ip));
    }
    if let Some(bad) = advert.addrs.iter().find(|a| a.is_ipv6() != ipv6) {
        return Err(EncodeError::FamilyMismatch(*bad));
    }
    u8::try_from(advert.addrs.len())
        .map_err(|_| EncodeError::TooManyAddresses(advert.addrs.len()))?;
    let interval_err = EncodeError::AdvertInterval {
        cs: advert.advert_int_cs,
        version: advert.version,
    };
    let (byte4, byte5) = match advert.version {
        Version::V2 => {
            let whole_secs = advert.advert_int_cs / 100;
            if whole_secs * 100 != advert.advert_int_cs {
                return Err(interval_err);
            }
            let secs = u8::try_from(whole_secs).map_err(|_| interval_err)?;
            (auth_type_code(&advert.auth), secs)
        }
        Version::V3 => {
            if advert.advert_int_cs > MAX_V3_ADVERT_INT_CS {
                return Err(interval_err);
            }
            let [hi, lo] = advert.advert_int_cs.to_be_bytes();
            (hi, lo)
        }
    };
    // keepalived reserves the 8 auth bytes in every v2-over-IPv4 advert and fills them only for PASS.
    let auth_data = (advert.version == Version::V2 && !ipv6).then_some(match &advert.auth {
        Auth::Pass(pw) => *pw,
        Auth::None | Auth::Ah => [0; AUTH_DATA_LEN],
    });
    let repr = VrrpRepr {
        version: version_nibble(advert.version),
        kind: VRRP_TYPE_ADVERT,
        vrid: advert.vrid,
        priority: advert.priority,
        byte4,
        byte5,
        addrs: advert.addrs.clone(),
        auth_data,
    };
    let pseudo_dst = if params.old_unicast_checksum && !ipv6 {
        IpAddr::V4(MCAST_V4)
    } else {
        params.dst_ip
    };
    let mut msg = vec![0; repr.buffer_len()];
    // Sized by the repr, at most 255 addresses: emit does not fail.
    let _ = repr.emit(&mut msg, params.src_ip, pseudo_dst);
    Ok(msg)
}

/// Encode `advert` as the full Ethernet frame keepalived would send with `params`.
pub fn encode_frame(params: &FrameParams, advert: &Advert) -> Result<Vec<u8>, EncodeError> {
    let msg = encode_vrrp(params, advert)?;
    let dst_mac = match params.dst_mac {
        Some(mac) => mac,
        None => multicast_mac(params.dst_ip).ok_or(EncodeError::NoDestinationMac(params.dst_ip))?,
    };
    let (ether_type, ip_len) = match (params.src_ip, params.dst_ip) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (ethertype::IPV4, ipv4::HEADER_LEN),
        (IpAddr::V6(_), IpAddr::V6(_)) => (ethertype::IPV6, ipv6::HEADER_LEN),
        _ => return Err(EncodeError::FamilyMismatch(params.dst_ip)),
    };
    let mut frame = vec![0; ETH_LEN + ip_len + msg.len()];
    let eth = EthernetRepr {
        dst: dst_mac,
        src: params.src_mac,
        ethertype: ether_type,
    };
    // The frame is sized for every header, and the message is at most 8 + 255 * 16 bytes:
    // the emits below do not fail.
    let _ = eth.emit(&mut frame);
    let ip = &mut frame[ETH_LEN..];
    match (params.src_ip, params.dst_ip) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let _ = Ipv4Repr {
                src,
                dst,
                protocol: IPPROTO_VRRP,
                ttl: params.ttl,
                tos: TOS_INTERNET_CONTROL,
                ident: params.ip_id,
                dont_frag: false,
                more_frags: false,
                frag_offset: 0,
                payload_len: msg.len(),
            }
            .emit(ip);
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let _ = Ipv6Repr {
                src,
                dst,
                next_header: IPPROTO_VRRP,
                hop_limit: params.ttl,
                traffic_class: TOS_INTERNET_CONTROL,
                flow_label: params.flow_label & 0xf_ffff,
                payload_len: msg.len(),
            }
            .emit(ip);
        }
        _ => return Err(EncodeError::FamilyMismatch(params.dst_ip)),
    }
    frame[ETH_LEN + ip_len..].copy_from_slice(&msg);
    Ok(frame)
}

/// The IP layer of a received frame, reduced to what the VRRP checks need.
struct IpLayer<'a> {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    protocol: u8,
    payload: &'a [u8],
}

/// A wire error of the IP layer as a decode error (truncations keep their counts).
fn ip_error(layer: &'static str, packet: &'static str, e: WireError) -> DecodeError {
    match e {
        WireError::Truncated { needed, got, .. } => DecodeError::Truncated {
            layer: packet,
            needed,
            got,
        },
        other => DecodeError::MalformedIp {
            layer,
            reason: other.to_string(),
        },
    }
}

fn ip_layer(frame: &[u8]) -> Result<(EthernetRepr, IpLayer<'_>), DecodeError> {
    let (eth, rest) = EthernetRepr::parse(frame).map_err(|_| DecodeError::Truncated {
        layer: "Ethernet header",
        needed: ETH_LEN,
        got: frame.len(),
    })?;
    let ip = match eth.ethertype {
        ethertype::IPV4 => {
            let v4 = |e| ip_error("IPv4", "IPv4 packet", e);
            let (header, payload) = Ipv4Repr::parse(rest).map_err(v4)?;
            let (protocol, payload) = ipv4::upper_layer(&header, payload).map_err(v4)?;
            if header.protocol == ip_proto::AUTH {
                return Err(DecodeError::NotVrrp(ip_proto::AUTH));
            }
            if let Err(WireError::Checksum { got, expected, .. }) = ipv4::verify_checksum(rest) {
                return Err(DecodeError::BadIpChecksum { got, expected });
            }
            if header.is_fragment() {
                return Err(DecodeError::Fragmented);
            }
            IpLayer {
                src: IpAddr::V4(header.src),
                dst: IpAddr::V4(header.dst),
                ttl: header.ttl,
                protocol,
                payload,
            }
        }
        ethertype::IPV6 => {
            let v6 = |e| ip_error("IPv6", "IPv6 packet", e);
            let (header, payload) = Ipv6Repr::parse(rest).map_err(v6)?;
            let up = ipv6::upper_layer(header.next_header, payload).map_err(v6)?;
            if up.fragmented {
                return Err(DecodeError::Fragmented);
            }
            IpLayer {
                src: IpAddr::V6(header.src),
                dst: IpAddr::V6(header.dst),
                ttl: header.hop_limit,
                protocol: up.protocol,
                payload: up.payload,
            }
        }
        other => return Err(DecodeError::NotIp(other)),
    };
    Ok((eth, ip))
}

/// Decode a received Ethernet frame and check it the way keepalived 2.2 checks an advert for
/// the instance described by `expect`.
pub fn decode_frame(frame: &[u8], expect: &Expect) -> Result<Received, DecodeError> {
    Carried::parse(frame)?.check(expect)
}

/// A received advert read as far as keepalived reads it before finding the instance by
/// VRID: the IP layer checked as the kernel checks it, the VRRP header read (and, over
/// IPv6, its checksum verified, as the kernel's `IPV6_CHECKSUM` does).
pub struct Carried<'a> {
    eth: EthernetRepr,
    ip: IpLayer<'a>,
    head: VrrpHeader,
}

impl<'a> Carried<'a> {
    /// Read `frame` up to the VRID dispatch; `NotIp` / `NotVrrp` for frames of other kinds.
    pub fn parse(frame: &'a [u8]) -> Result<Carried<'a>, DecodeError> {
        let (eth, ip) = ip_layer(frame)?;
        if ip.protocol != IPPROTO_VRRP {
            return Err(DecodeError::NotVrrp(ip.protocol));
        }
        let msg = ip.payload;
        let (head, _) = VrrpHeader::parse(msg).map_err(|_| DecodeError::Truncated {
            layer: "VRRP header",
            needed: HEADER_LEN,
            got: msg.len(),
        })?;
        // The kernel verifies IPv6 checksums (IPV6_CHECKSUM) before keepalived sees anything.
        if ip.src.is_ipv6() {
            let expected = vrrp_checksum(Version::V3, ip.src, ip.dst, msg);
            if expected != head.checksum {
                return Err(DecodeError::BadChecksum {
                    got: head.checksum,
                    expected,
                });
            }
        }
        Ok(Carried { eth, ip, head })
    }

    /// The virtual router id the advert is for.
    pub fn vrid(&self) -> u8 {
        self.head.vrid
    }

    /// The IP destination: the multicast group, or the unicast address it was sent to.
    pub fn dst(&self) -> IpAddr {
        self.ip.dst
    }

    /// Check the advert the way keepalived 2.2 checks it for the instance `expect` describes.
    pub fn check(&self, expect: &Expect) -> Result<Received, DecodeError> {
        let Carried { eth, ip, head } = self;
        decode_checked(eth, ip, *head, expect)
    }
}

fn decode_checked(
    eth: &EthernetRepr,
    ip: &IpLayer<'_>,
    head: VrrpHeader,
    expect: &Expect,
) -> Result<Received, DecodeError> {
    let msg = ip.payload;
    let VrrpHeader {
        version,
        kind,
        vrid,
        priority,
        count: naddr,
        byte4,
        byte5,
        checksum: carried_sum,
    } = head;
    let ipv6 = ip.src.is_ipv6();
    // keepalived's dispatcher finds the instance by VRID before any other check.
    if vrid != expect.vrid {
        return Err(DecodeError::VridNotOurs {
            got: vrid,
            want: expect.vrid,
        });
    }
    let v2_over_v4 = version == 2 && !ipv6;
    let expected_len = crate::wire::vrrp::message_len(version, ipv6, usize::from(naddr));
    if msg.len() != expected_len {
        return Err(DecodeError::LengthMismatch {
            got: msg.len(),
            expected: expected_len,
        });
    }
    if !expect.unicast && ip.ttl != VRRP_TTL {
        return Err(DecodeError::BadTtl(ip.ttl));
    }
    let want_version = version_nibble(expect.version);
    if version != want_version {
        return Err(DecodeError::WrongVersion {
            got: version,
            want: want_version,
        });
    }
    // The password sits at the very end of the message (keepalived reads it at tot_len - 8).
    let auth_data: Option<[u8; AUTH_DATA_LEN]> = msg
        .get(msg.len().saturating_sub(AUTH_DATA_LEN)..)
        .and_then(|d| d.try_into().ok());
    let (auth, advert_int_cs) = match expect.version {
        Version::V2 => {
            let auth = match byte4 {
                AUTH_TYPE_NONE => Auth::None,
                AUTH_TYPE_PASS => {
                    // IPv6 adverts carry no auth data: an empty password.
                    let pw = auth_data
                        .filter(|_| v2_over_v4)
                        .unwrap_or([0; AUTH_DATA_LEN]);
                    Auth::Pass(pw)
                }
                AUTH_TYPE_AH => Auth::Ah,
                other => return Err(DecodeError::InvalidAuthType(other)),
            };
            let want_type = auth_type_code(&expect.auth);
            if byte4 != want_type {
                return Err(DecodeError::AuthTypeMismatch {
                    got: byte4,
                    want: want_type,
                });
            }
            // IPv6 adverts have no room for a password, so there is nothing to compare.
            if let (Auth::Pass(got), Auth::Pass(want)) = (&auth, &expect.auth) {
                if v2_over_v4 && got != want {
                    return Err(DecodeError::AuthFailure);
                }
            }
            let cs = u16::from(byte5) * 100;
            if cs != expect.advert_int_cs {
                return Err(DecodeError::AdvertIntMismatch {
                    got: byte5,
                    want: expect.advert_int_cs / 100,
                });
            }
            (auth, cs)
        }
        Version::V3 => (
            Auth::None,
            u16::from_be_bytes([byte4, byte5]) & MAX_V3_ADVERT_INT_CS,
        ),
    };
    if kind != VRRP_TYPE_ADVERT {
        return Err(DecodeError::WrongType(kind));
    }
    if expect.check_addrs && usize::from(naddr) != expect.addrs.len() {
        return Err(DecodeError::AddrCountMismatch {
            got: naddr,
            want: expect.addrs.len(),
        });
    }

    let mut old_unicast_checksum = false;
    if let (IpAddr::V4(_), IpAddr::V4(dst)) = (ip.src, ip.dst) {
        let pseudo_dst = if expect.unicast_checksum == UnicastChecksum::Old {
            MCAST_V4
        } else {
            dst
        };
        let expected = vrrp_checksum(expect.version, ip.src, IpAddr::V4(pseudo_dst), msg);
        if expected != carried_sum {
            let old = vrrp_checksum(expect.version, ip.src, IpAddr::V4(MCAST_V4), msg);
            let fallback = expect.version == Version::V3
                && expect.unicast
                && expect.unicast_checksum == UnicastChecksum::Rfc
                && pseudo_dst != MCAST_V4
                && old == carried_sum;
            if !fallback {
                return Err(DecodeError::BadChecksum {
                    got: carried_sum,
                    expected,
                });
            }
            old_unicast_checksum = true;
        }
    }

    let multicast = match ip.dst {
        IpAddr::V4(d) => d.is_multicast(),
        IpAddr::V6(d) => d.is_multicast(),
    };
    if multicast == expect.unicast {
        return Err(DecodeError::CastMismatch {
            expected_unicast: expect.unicast,
        });
    }

    let addrs = crate::wire::vrrp::addrs(&msg[HEADER_LEN..], ipv6, naddr);
    let missing = expect.addrs.iter().find(|a| !addrs.contains(a));
    if expect.check_addrs {
        if let Some(addr) = missing {
            return Err(DecodeError::AddrMissing(*addr));
        }
    }
    let addrs_match = addrs.len() == expect.addrs.len() && missing.is_none();

    Ok(Received {
        src_mac: eth.src,
        dst_mac: eth.dst,
        src_ip: ip.src,
        dst_ip: ip.dst,
        ttl: ip.ttl,
        advert: Advert {
            version: expect.version,
            vrid,
            priority,
            advert_int_cs,
            auth,
            addrs,
        },
        addrs_match,
        old_unicast_checksum,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x18, 0x00, 0x0a];
    const PEER_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x18, 0x00, 0x0b];
    const ETH: usize = 14;
    const IP4: usize = 20;
    const IP6: usize = 40;

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    fn pw(s: &[u8]) -> [u8; 8] {
        let mut p = [0u8; 8];
        p[..s.len()].copy_from_slice(s);
        p
    }

    /// A v2 PASS advert like the seed's (two VIPs, advert_int 1).
    fn v2_advert() -> Advert {
        Advert {
            version: Version::V2,
            vrid: 51,
            priority: 200,
            advert_int_cs: 100,
            auth: Auth::Pass(pw(b"lvsd123")),
            addrs: vec![v4([198, 18, 0, 100]), v4([198, 18, 0, 101])],
        }
    }

    fn v3_advert(ipv6: bool) -> Advert {
        let addrs = if ipv6 {
            vec![
                "fe80::100".parse().unwrap(),
                "2001:db8:18::100".parse().unwrap(),
            ]
        } else {
            vec![v4([198, 18, 0, 102]), v4([198, 18, 0, 103])]
        };
        Advert {
            version: Version::V3,
            vrid: 52,
            priority: 150,
            advert_int_cs: 50,
            auth: Auth::None,
            addrs,
        }
    }

    fn src(ipv6: bool) -> IpAddr {
        if ipv6 {
            "fe80::a".parse().unwrap()
        } else {
            v4([198, 18, 0, 10])
        }
    }

    fn expect_for(advert: &Advert) -> Expect {
        Expect {
            version: advert.version,
            vrid: advert.vrid,
            auth: advert.auth.clone(),
            advert_int_cs: advert.advert_int_cs,
            addrs: advert.addrs.clone(),
            check_addrs: true,
            unicast: false,
            unicast_checksum: UnicastChecksum::Rfc,
        }
    }

    fn frame(advert: &Advert, ipv6: bool) -> Vec<u8> {
        encode_frame(&FrameParams::multicast(MAC, src(ipv6)), advert).unwrap()
    }

    /// Recompute the IPv4 header checksum after a test edited the header.
    fn fix_ip_checksum(frame: &mut [u8]) {
        frame[ETH + 10] = 0;
        frame[ETH + 11] = 0;
        let sum = checksum::of(&[&frame[ETH..ETH + IP4]]);
        frame[ETH + 10..ETH + 12].copy_from_slice(&sum.to_be_bytes());
    }

    /// Recompute the VRRP checksum (as its sender would have) after a test edited the message.
    fn fix_vrrp_checksum(frame: &mut [u8], version: Version) {
        let ipv6 = frame[12] == 0x86;
        let (s, d, at) = if ipv6 {
            let s: [u8; 16] = frame[ETH + 8..ETH + 24].try_into().unwrap();
            let d: [u8; 16] = frame[ETH + 24..ETH + 40].try_into().unwrap();
            (IpAddr::from(s), IpAddr::from(d), ETH + IP6)
        } else {
            let s: [u8; 4] = frame[ETH + 12..ETH + 16].try_into().unwrap();
            let d: [u8; 4] = frame[ETH + 16..ETH + 20].try_into().unwrap();
            (IpAddr::from(s), IpAddr::from(d), ETH + IP4)
        };
        let sum = vrrp_checksum(version, s, d, &frame[at..]);
        frame[at + 6..at + 8].copy_from_slice(&sum.to_be_bytes());
    }

    #[test]
    fn virtual_and_multicast_macs() {
        assert_eq!(virtual_mac(false, 51), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(virtual_mac(true, 7), [0, 0, 0x5e, 0, 2, 7]);
        assert_eq!(
            multicast_mac(IpAddr::V4(MCAST_V4)),
            Some([1, 0, 0x5e, 0, 0, 0x12])
        );
        assert_eq!(
            multicast_mac(IpAddr::V6(MCAST_V6)),
            Some([0x33, 0x33, 0, 0, 0, 0x12])
        );
        assert_eq!(multicast_mac(v4([198, 18, 0, 1])), None);
    }

    #[test]
    fn rfc3768_layout_of_a_v2_advert() {
        let f = frame(&v2_advert(), false);
        let vrrp = &f[ETH + IP4..];
        // RFC 3768 5.1: version 2 / type 1, VRID, priority, count, auth type, interval (s), checksum.
        assert_eq!(&vrrp[..6], &[0x21, 51, 200, 2, 1, 1]);
        assert_eq!(&vrrp[8..16], &[198, 18, 0, 100, 198, 18, 0, 101]);
        assert_eq!(&vrrp[16..], b"lvsd123\0");
        assert_eq!(checksum::of(&[vrrp]), 0, "a valid message sums to zero");
        // keepalived's IPv4 header: TOS 0xc0, no DF, TTL 255, protocol 112.
        assert_eq!(f[ETH + 1], 0xc0);
        assert_eq!(f[ETH + 6] & 0x40, 0);
        assert_eq!((f[ETH + 8], f[ETH + 9]), (255, 112));
    }

    #[test]
    fn rfc5798_layout_of_a_v3_advert() {
        let mut a = v3_advert(false);
        a.advert_int_cs = 0x0fff;
        let f = frame(&a, false);
        let vrrp = &f[ETH + IP4..];
        // RFC 5798 5.1: version 3 / type 1, VRID, priority, count, rsvd(4) + max adver int(12).
        assert_eq!(&vrrp[..6], &[0x31, 52, 150, 2, 0x0f, 0xff]);
        assert_eq!(vrrp.len(), 8 + 8, "no auth data in v3");
        // Source, destination, zero, protocol 112, VRRP length.
        let mut pseudo = vec![198, 18, 0, 10, 224, 0, 0, 18, 0, 112];
        pseudo.extend_from_slice(&(vrrp.len() as u16).to_be_bytes());
        assert_eq!(
            checksum::of(&[&pseudo, vrrp]),
            0,
            "checksum covers the IPv4 pseudo-header"
        );
    }

    #[test]
    fn encode_rejects_what_the_wire_cannot_carry() {
        let p4 = FrameParams::multicast(MAC, src(false));
        let mut a = v2_advert();
        a.advert_int_cs = 150;
        assert!(matches!(
            encode_frame(&p4, &a),
            Err(EncodeError::AdvertInterval { cs: 150, .. })
        ));
        a.advert_int_cs = 25600;
        assert!(matches!(
            encode_frame(&p4, &a),
            Err(EncodeError::AdvertInterval { .. })
        ));
        let mut b = v3_advert(false);
        b.advert_int_cs = 4096;
        assert!(matches!(
            encode_frame(&p4, &b),
            Err(EncodeError::AdvertInterval { .. })
        ));
        let mut c = v3_advert(false);
        c.addrs.push("::1".parse().unwrap());
        assert!(matches!(
            encode_frame(&p4, &c),
            Err(EncodeError::FamilyMismatch(_))
        ));
        let mut d = v3_advert(false);
        d.addrs = vec![v4([198, 18, 0, 1]); 256];
        assert_eq!(
            encode_frame(&p4, &d),
            Err(EncodeError::TooManyAddresses(256))
        );
        let mut p = p4.clone();
        p.dst_ip = v4([198, 18, 0, 11]);
        assert!(matches!(
            encode_frame(&p, &v3_advert(false)),
            Err(EncodeError::NoDestinationMac(_))
        ));
        p.dst_ip = "ff02::12".parse().unwrap();
        assert!(matches!(
            encode_frame(&p, &v3_advert(false)),
            Err(EncodeError::FamilyMismatch(_))
        ));
    }

    #[test]
    fn every_truncation_is_reported_as_truncated() {
        for (advert, ipv6) in [
            (v2_advert(), false),
            (v3_advert(false), false),
            (v3_advert(true), true),
        ] {
            let f = frame(&advert, ipv6);
            let expect = expect_for(&advert);
            assert!(decode_frame(&f, &expect).is_ok());
            for len in 0..f.len() {
                let got = decode_frame(&f[..len], &expect);
                assert!(
                    matches!(got, Err(DecodeError::Truncated { .. })),
                    "len {len}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        let mut f = frame(&v3_advert(false), false);
        f.resize(60, 0);
        assert!(decode_frame(&f, &expect_for(&v3_advert(false))).is_ok());
    }

    #[test]
    fn ipv4_total_length_lies() {
        let advert = v2_advert();
        let expect = expect_for(&advert);
        // Longer than the frame: the kernel drops it as truncated.
        let mut f = frame(&advert, false);
        f[ETH + 3] += 4;
        fix_ip_checksum(&mut f);
        assert!(matches!(
            decode_frame(&f, &expect),
            Err(DecodeError::Truncated { .. })
        ));
        // Shorter: the VRRP message loses its password and no longer matches its count.
        let mut f = frame(&advert, false);
        f[ETH + 3] -= 8;
        fix_ip_checksum(&mut f);
        assert_eq!(
            decode_frame(&f, &expect),
            Err(DecodeError::LengthMismatch {
                got: 16,
                expected: 24
            })
        );
        // Shorter than its own header.
        let mut f = frame(&advert, false);
        f[ETH + 2..ETH + 4].copy_from_slice(&10u16.to_be_bytes());
        fix_ip_checksum(&mut f);
        assert!(matches!(
            decode_frame(&f, &expect),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn ipv6_payload_length_lies() {
        let advert = v3_advert(true);
        let expect = expect_for(&advert);
        let mut f = frame(&advert, true);
        f[ETH + 5] += 16;
        assert!(matches!(
            decode_frame(&f, &expect),
            Err(DecodeError::Truncated { .. })
        ));
        // A shorter payload: checksum recomputed over what remains, count says 2 addresses.
        let mut f = frame(&advert, true);
        f[ETH + 5] -= 16;
        f.truncate(f.len() - 16);
        fix_vrrp_checksum(&mut f, Version::V3);
        assert_eq!(
            decode_frame(&f, &expect),
            Err(DecodeError::LengthMismatch {
                got: 24,
                expected: 40
            })
        );
    }

    #[test]
    fn count_lies() {
        let advert = v2_advert();
        let mut f = frame(&advert, false);
        f[ETH + IP4 + 3] = 3;
        fix_vrrp_checksum(&mut f, Version::V2);
        assert_eq!(
            decode_frame(&f, &expect_for(&advert)),
            Err(DecodeError::LengthMismatch {
                got: 24,
                expected: 28
            })
        );
    }

    #[test]
    fn address_count_mismatch() {
        let advert = v3_advert(false);
        let mut expect = expect_for(&advert);
        expect.addrs.push(v4([198, 18, 0, 104]));
        assert_eq!(
            decode_frame(&frame(&advert, false), &expect),
            Err(DecodeError::AddrCountMismatch { got: 2, want: 3 })
        );
        expect.check_addrs = false;
        let got = decode_frame(&frame(&advert, false), &expect).unwrap();
        assert!(!got.addrs_match);
    }

    #[test]
    fn wrong_checksums() {
        for (advert, ipv6) in [
            (v2_advert(), false),
            (v3_advert(false), false),
            (v3_advert(true), true),
        ] {
            let good = frame(&advert, ipv6);
            let at = ETH + if ipv6 { IP6 } else { IP4 } + 6;
            let mut f = good.clone();
            f[at] ^= 0x01;
            let got = decode_frame(&f, &expect_for(&advert));
            assert!(
                matches!(got, Err(DecodeError::BadChecksum { .. })),
                "{got:?}"
            );
            // A changed priority without a checksum update.
            let mut f = good.clone();
            f[at - 4] = 1;
            let got = decode_frame(&f, &expect_for(&advert));
            assert!(
                matches!(got, Err(DecodeError::BadChecksum { .. })),
                "{got:?}"
            );
        }
        // A v3-over-IPv4 checksum computed without the pseudo-header (as in v2).
        let advert = v3_advert(false);
        let mut f = frame(&advert, false);
        fix_vrrp_checksum(&mut f, Version::V2);
        assert!(matches!(
            decode_frame(&f, &expect_for(&advert)),
            Err(DecodeError::BadChecksum { .. })
        ));
        // IPv4 header checksum.
        let mut f = frame(&advert, false);
        f[ETH + 10] ^= 0xff;
        assert!(matches!(
            decode_frame(&f, &expect_for(&advert)),
            Err(DecodeError::BadIpChecksum { .. })
        ));
    }

    #[test]
    fn ttl_64_is_rejected_on_multicast_only() {
        let advert = v2_advert();
        let mut f = frame(&advert, false);
        f[ETH + 8] = 64;
        fix_ip_checksum(&mut f);
        assert_eq!(
            decode_frame(&f, &expect_for(&advert)),
            Err(DecodeError::BadTtl(64))
        );

        let advert6 = v3_advert(true);
        let mut f6 = frame(&advert6, true);
        f6[ETH + 7] = 64;
        assert_eq!(
            decode_frame(&f6, &expect_for(&advert6)),
            Err(DecodeError::BadTtl(64))
        );

        // keepalived does not check the TTL of unicast adverts.
        let mut p = FrameParams::unicast(MAC, src(false), PEER_MAC, v4([198, 18, 0, 11]));
        p.ttl = 64;
        let f = encode_frame(&p, &advert).unwrap();
        let expect = Expect {
            unicast: true,
            ..expect_for(&advert)
        };
        assert_eq!(decode_frame(&f, &expect).unwrap().ttl, 64);
    }

    #[test]
    fn v2_packet_with_v3_fields() {
        let v2 = v2_advert();
        let expect = expect_for(&v2);
        // A v2 header whose bytes 4-5 hold a v3 interval (0x0064 = 100 cs): auth type 0, 100 s.
        let mut f = frame(&v2, false);
        f[ETH + IP4 + 4] = 0x00;
        f[ETH + IP4 + 5] = 0x64;
        fix_vrrp_checksum(&mut f, Version::V2);
        let none = Expect {
            auth: Auth::None,
            ..expect.clone()
        };
        assert_eq!(
            decode_frame(&f, &none),
            Err(DecodeError::AdvertIntMismatch { got: 100, want: 1 })
        );
        assert_eq!(
            decode_frame(&f, &expect),
            Err(DecodeError::AuthTypeMismatch { got: 0, want: 1 })
        );
        // Version 2 with the v3 layout (no auth data).
        let mut f = frame(&v3_advert(false), false);
        f[ETH + IP4] = 0x21;
        fix_vrrp_checksum(&mut f, Version::V2);
        let v2_expect = Expect {
            version: Version::V2,
            ..expect_for(&v3_advert(false))
        };
        assert_eq!(
            decode_frame(&f, &v2_expect),
            Err(DecodeError::LengthMismatch {
                got: 16,
                expected: 24
            })
        );
        // A v3 advert at a v2 instance.
        assert_eq!(
            decode_frame(&frame(&v3_advert(false), false), &v2_expect),
            Err(DecodeError::WrongVersion { got: 3, want: 2 })
        );
    }

    #[test]
    fn bad_type_auth_and_protocol() {
        let advert = v2_advert();
        let expect = expect_for(&advert);
        let mut f = frame(&advert, false);
        f[ETH + IP4] = 0x22;
        fix_vrrp_checksum(&mut f, Version::V2);
        assert_eq!(decode_frame(&f, &expect), Err(DecodeError::WrongType(2)));

        let mut f = frame(&advert, false);
        f[ETH + IP4 + 4] = 5;
        fix_vrrp_checksum(&mut f, Version::V2);
        assert_eq!(
            decode_frame(&f, &expect),
            Err(DecodeError::InvalidAuthType(5))
        );

        let mut f = frame(&advert, false);
        f[ETH + 9] = 17;
        fix_ip_checksum(&mut f);
        assert_eq!(decode_frame(&f, &expect), Err(DecodeError::NotVrrp(17)));

        let mut f = frame(&advert, false);
        f[12] = 0x08;
        f[13] = 0x06;
        assert_eq!(decode_frame(&f, &expect), Err(DecodeError::NotIp(0x0806)));

        let mut f = frame(&advert, false);
        f[ETH + 6] = 0x20; // more fragments
        fix_ip_checksum(&mut f);
        assert_eq!(decode_frame(&f, &expect), Err(DecodeError::Fragmented));

        let mut f = frame(&advert, false);
        f[ETH] = 0x65; // IP version 6 in an IPv4 frame
        assert!(matches!(
            decode_frame(&f, &expect),
            Err(DecodeError::MalformedIp { .. })
        ));
    }

    #[test]
    fn vrid_and_cast_checks() {
        let advert = v3_advert(false);
        let expect = expect_for(&advert);
        let other = Advert {
            vrid: 9,
            ..advert.clone()
        };
        assert_eq!(
            decode_frame(&frame(&other, false), &expect),
            Err(DecodeError::VridNotOurs { got: 9, want: 52 })
        );
        let p = FrameParams::unicast(MAC, src(false), PEER_MAC, v4([198, 18, 0, 11]));
        let f = encode_frame(&p, &advert).unwrap();
        assert_eq!(
            decode_frame(&f, &expect),
            Err(DecodeError::CastMismatch {
                expected_unicast: false
            })
        );
    }

    #[test]
    fn old_unicast_checksum_fallback() {
        let advert = v3_advert(false);
        let mut p = FrameParams::unicast(MAC, src(false), PEER_MAC, v4([198, 18, 0, 11]));
        p.old_unicast_checksum = true;
        let f = encode_frame(&p, &advert).unwrap();
        let expect = Expect {
            unicast: true,
            ..expect_for(&advert)
        };
        // Default mode: accepted, and the receiver learns to use the old form.
        assert!(decode_frame(&f, &expect).unwrap().old_unicast_checksum);
        let old = Expect {
            unicast_checksum: UnicastChecksum::Old,
            ..expect.clone()
        };
        assert!(!decode_frame(&f, &old).unwrap().old_unicast_checksum);
        let never = Expect {
            unicast_checksum: UnicastChecksum::Never,
            ..expect
        };
        assert!(matches!(
            decode_frame(&f, &never),
            Err(DecodeError::BadChecksum { .. })
        ));
    }

    #[test]
    fn addr_list_mismatch() {
        let advert = v3_advert(false);
        let mut expect = expect_for(&advert);
        expect.addrs[1] = v4([198, 18, 0, 200]);
        assert_eq!(
            decode_frame(&frame(&advert, false), &expect),
            Err(DecodeError::AddrMissing(v4([198, 18, 0, 200])))
        );
        expect.check_addrs = false;
        assert!(
            !decode_frame(&frame(&advert, false), &expect)
                .unwrap()
                .addrs_match
        );
        // Order does not matter.
        let mut expect = expect_for(&advert);
        expect.addrs.reverse();
        assert!(
            decode_frame(&frame(&advert, false), &expect)
                .unwrap()
                .addrs_match
        );
    }

    fn arb_advert_and_params() -> impl Strategy<Value = (Advert, FrameParams)> {
        (
            any::<bool>(),
            prop_oneof![Just(Version::V2), Just(Version::V3)],
            1u8..=255,
            any::<u8>(),
            0usize..=255,
            any::<u64>(),
            any::<u16>(),
            any::<([u8; 6], [u8; 6], [u8; 16], [u8; 16], u16, u32, bool, bool)>(),
        )
            .prop_map(|(ipv6, version, vrid, priority, n, seed, int, extra)| {
                let (src_mac, dst_mac, s, d, ip_id, flow, unicast, old) = extra;
                // Cheap deterministic address generator: distinct addresses from the seed.
                let addrs: Vec<IpAddr> = (0..n)
                    .map(|i| {
                        let x = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(i as u64);
                        if ipv6 {
                            let mut o = [0u8; 16];
                            o[..8].copy_from_slice(&x.to_be_bytes());
                            o[8..].copy_from_slice(&(i as u64).to_be_bytes());
                            IpAddr::from(o)
                        } else {
                            v4((x as u32).to_be_bytes())
                        }
                    })
                    .collect();
                let (advert_int_cs, auth) = match version {
                    Version::V2 => {
                        let auth = match int % 3 {
                            0 => Auth::None,
                            1 if !ipv6 => Auth::Pass(d[..8].try_into().unwrap()),
                            _ => Auth::Ah,
                        };
                        ((int % 256) * 100, auth)
                    }
                    Version::V3 => (int & MAX_V3_ADVERT_INT_CS, Auth::None),
                };
                let (src_ip, dst_ip) = if ipv6 {
                    let dst = if unicast {
                        // A global unicast peer (never ff00::/8).
                        let mut u = d;
                        u[0] = 0x20;
                        IpAddr::from(u)
                    } else {
                        IpAddr::V6(MCAST_V6)
                    };
                    (IpAddr::from(s), dst)
                } else {
                    let s4: [u8; 4] = s[..4].try_into().unwrap();
                    let d4: [u8; 4] = [198, 18, d[0], d[1]];
                    (
                        v4(s4),
                        if unicast {
                            v4(d4)
                        } else {
                            IpAddr::V4(MCAST_V4)
                        },
                    )
                };
                let params = FrameParams {
                    src_mac,
                    dst_mac: unicast.then_some(dst_mac),
                    src_ip,
                    dst_ip,
                    ttl: VRRP_TTL,
                    ip_id,
                    flow_label: flow & 0xf_ffff,
                    old_unicast_checksum: unicast && old,
                };
                let advert = Advert {
                    version,
                    vrid,
                    priority,
                    advert_int_cs,
                    auth,
                    addrs,
                };
                (advert, params)
            })
    }

    proptest! {
        #[test]
        fn round_trip((advert, params) in arb_advert_and_params()) {
            let f = encode_frame(&params, &advert).unwrap();
            let unicast = params.dst_mac.is_some();
            let mut expect = expect_for(&advert);
            expect.unicast = unicast;
            expect.addrs.reverse();
            let got = decode_frame(&f, &expect).unwrap();
            prop_assert_eq!(&got.advert, &advert);
            prop_assert_eq!(got.src_ip, params.src_ip);
            prop_assert_eq!(got.dst_ip, params.dst_ip);
            prop_assert_eq!(got.src_mac, params.src_mac);
            prop_assert_eq!(got.ttl, VRRP_TTL);
            prop_assert!(got.addrs_match);
            // The old form is only detectable when it differs from the RFC form.
            let rfc = encode_frame(&FrameParams { old_unicast_checksum: false, ..params.clone() }, &advert).unwrap();
            let old_differs = rfc != f;
            prop_assert_eq!(got.old_unicast_checksum, old_differs);
            if old_differs {
                prop_assert!(params.old_unicast_checksum && advert.version == Version::V3 && params.src_ip.is_ipv4());
            }
        }

        #[test]
        fn decode_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_frame(&bytes, &expect_for(&v2_advert()));
            let _ = decode_frame(&bytes, &expect_for(&v3_advert(true)));
        }

        #[test]
        fn decode_never_panics_on_mutated_adverts(
            (advert, params) in arb_advert_and_params(),
            edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
            cut in any::<u16>(),
        ) {
            let mut f = encode_frame(&params, &advert).unwrap();
            for (at, val) in edits {
                let i = usize::from(at) % f.len();
                f[i] = val;
            }
            f.truncate(f.len() - usize::from(cut) % 8);
            let mut expect = expect_for(&advert);
            expect.unicast = params.dst_mac.is_some();
            let _ = decode_frame(&f, &expect);
        }
    }
}
