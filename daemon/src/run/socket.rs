//! The daemon's sockets, the only place with `unsafe` (each block has its SAFETY note).
//!
//! - [`FrameSocket`]: AF_PACKET bound to one interface. The director builds whole Ethernet
//!   frames (adverts, gratuitous ARP, unsolicited NA, ARP / NDP for unicast peers) and
//!   they go out as built; what comes in is filtered in the kernel to what the director
//!   reads (VRRP, ARP, ICMPv6) and never includes what this host sent.
//! - [`VrrpSocket`]: a raw IP socket for protocol 112 bound to the interface, joined to
//!   224.0.0.18 / ff02::12 there as keepalived joins (the IGMP / MLD reports on the wire,
//!   the NIC's multicast filter). It exists so the kernel knows VRRP has a listener (no ICMP
//!   protocol-unreachable for adverts); a filter keeps anything from queueing on it.
//!   IPv6 adverts go out through it, as keepalived sends them: the kernel writes the IPv6
//!   header (traffic class 0xc0, hop limit 255, and its own flow label, which only it can
//!   compute), the director's VRRP bytes follow unchanged.

use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

/// VRRP's IP protocol number.
const IPPROTO_VRRP: i32 = 112;
/// `PACKET_IGNORE_OUTGOING` (linux/if_packet.h, since 4.20).
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// One classic BPF instruction.
const fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}
const LDH_ABS: u16 = 0x28;
const LDB_ABS: u16 = 0x30;
const JEQ_K: u16 = 0x15;
const RET_K: u16 = 0x06;

/// What the director reads off an interface: ARP, IPv4 protocol 112, IPv6 next header 112
/// or 58 (ICMPv6: neighbour discovery). Everything else stays in the kernel.
const CONTROL_FRAMES: [libc::sock_filter; 11] = [
    op(LDH_ABS, 0, 0, 12),        // 0: ethertype
    op(JEQ_K, 7, 0, 0x0806),      // 1: ARP -> accept
    op(JEQ_K, 0, 2, 0x0800),      // 2: IPv4 -> 3, else -> 5
    op(LDB_ABS, 0, 0, 23),        // 3: IPv4 protocol
    op(JEQ_K, 4, 5, 112),         // 4: VRRP -> accept, else reject
    op(JEQ_K, 0, 4, 0x86dd),      // 5: IPv6 -> 6, else reject
    op(LDB_ABS, 0, 0, 20),        // 6: IPv6 next header
    op(JEQ_K, 1, 0, 112),         // 7: VRRP -> accept
    op(JEQ_K, 0, 1, 58),          // 8: ICMPv6 -> accept, else reject
    op(RET_K, 0, 0, 0x0004_0000), // 9: accept, whole frame
    op(RET_K, 0, 0, 0),           // 10: reject
];

/// Drop everything.
const NOTHING: [libc::sock_filter; 1] = [op(RET_K, 0, 0, 0)];

/// AF_PACKET on one interface.
pub struct FrameSocket {
    fd: AsyncFd<Socket>,
}

impl FrameSocket {
    /// Open on the interface with index `ifindex`.
    pub fn open(ifindex: u32) -> std::io::Result<FrameSocket> {
        let all = i32::from((libc::ETH_P_ALL as u16).to_be());
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(all)))?;
        // Filter before binding, so no frame of another kind is queued in between.
        socket.attach_filter(&CONTROL_FRAMES)?;
        let one: libc::c_int = 1;
        // SAFETY: the fd is a live socket; optval points at a c_int that outlives the call
        // and optlen is its size.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_IGNORE_OUTGOING,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: sockaddr_ll is plain data, all-zero is a valid value of it.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: the fd is a live socket; addr points at an initialised sockaddr_ll that
        // outlives the call and addrlen is its size.
        let rc = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        socket.set_nonblocking(true)?;
        // SAFETY: the Socket owns its fd, and the AsyncFd owns the Socket: the fd is neither
        // closed nor replaced while registered.
        let fd = unsafe { AsyncFd::register(socket)? };
        Ok(FrameSocket { fd })
    }

    /// Send one whole Ethernet frame (a full queue drops it, as a busy NIC would).
    pub fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        self.fd.get_ref().send(frame).map(|_| ())
    }

    /// The next frame received.
    pub async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|s| s.get_ref().read(buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

/// The raw protocol-112 socket of one interface.
pub struct VrrpSocket {
    socket: Socket,
    ifindex: u32,
    ipv6: bool,
}

impl VrrpSocket {
    /// Open on `iface` (index `ifindex`); `multicast` joins the VRRP group there (not for
    /// instances that only advertise to unicast peers, as keepalived does not).
    pub fn open(iface: &str, ifindex: u32, ipv6: bool, multicast: bool) -> std::io::Result<Self> {
        let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
        let socket = Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))?;
        socket.attach_filter(&NOTHING)?;
        socket.bind_device(Some(iface.as_bytes()))?;
        if ipv6 {
            // keepalived's IPv6 VRRP socket: IPTOS_PREC_INTERNETCONTROL, hop limit 255.
            socket.set_tclass_v6(0xc0)?;
            socket.set_multicast_hops_v6(255)?;
            socket.set_unicast_hops_v6(255)?;
            socket.set_multicast_loop_v6(false)?;
            socket.set_multicast_if_v6(ifindex)?;
        }
        if multicast {
            if ipv6 {
                socket
                    .join_multicast_v6(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12), ifindex)?;
            } else {
                socket.join_multicast_v4_n(
                    &Ipv4Addr::new(224, 0, 0, 18),
                    &InterfaceIndexOrAddress::Index(ifindex),
                )?;
            }
        }
        Ok(VrrpSocket {
            socket,
            ifindex,
            ipv6,
        })
    }

    /// Whether this is the interface's IPv6 socket.
    pub fn is_ipv6(&self) -> bool {
        self.ipv6
    }

    /// Send a VRRP packet (the bytes after the IPv6 header) from `src` to `dst` on this
    /// interface.
    pub fn send_v6(&self, src: Ipv6Addr, dst: Ipv6Addr, vrrp: &[u8]) -> std::io::Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockaddrIn6};
        let info = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: src.octets(),
            },
            ipi6_ifindex: self.ifindex,
        };
        let to = SockaddrIn6::from(std::net::SocketAddrV6::new(dst, 0, 0, self.ifindex));
        sendmsg(
            self.socket.as_raw_fd(),
            &[std::io::IoSlice::new(vrrp)],
            &[ControlMessage::Ipv6PacketInfo(&info)],
            MsgFlags::MSG_DONTWAIT,
            Some(&to),
        )
        .map(|_| ())
        .map_err(std::io::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the classic BPF program the kernel would (the opcodes it uses only).
    fn run(prog: &[libc::sock_filter], frame: &[u8]) -> u32 {
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                LDH_ABS => {
                    let k = i.k as usize;
                    let Some(b) = frame.get(k..k + 2) else {
                        return 0;
                    };
                    a = u32::from(u16::from_be_bytes([b[0], b[1]]));
                }
                LDB_ABS => {
                    let Some(&b) = frame.get(i.k as usize) else {
                        return 0;
                    };
                    a = u32::from(b);
                }
                JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                RET_K => return i.k,
                other => panic!("opcode {other:#x}"),
            }
        }
    }

    fn frame(ethertype: u16, at: usize, byte: u8) -> Vec<u8> {
        let mut f = vec![0u8; 64];
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f[at] = byte;
        f
    }

    #[test]
    fn the_filter_passes_what_the_director_reads_only() {
        let pass = |f: &[u8]| run(&CONTROL_FRAMES, f) != 0;
        assert!(pass(&frame(0x0806, 20, 0)), "ARP");
        assert!(pass(&frame(0x0800, 23, 112)), "VRRP over IPv4");
        assert!(pass(&frame(0x86dd, 20, 112)), "VRRP over IPv6");
        assert!(pass(&frame(0x86dd, 20, 58)), "ICMPv6");
        assert!(!pass(&frame(0x0800, 23, 6)), "TCP");
        assert!(!pass(&frame(0x0800, 23, 2)), "IGMP");
        assert!(!pass(&frame(0x86dd, 20, 17)), "UDP over IPv6");
        assert!(!pass(&frame(0x8100, 23, 112)), "a VLAN tag");
        assert!(!pass(&[0u8; 10]), "a runt");
        assert_eq!(run(&NOTHING, &frame(0x0800, 23, 112)), 0);
    }
}
