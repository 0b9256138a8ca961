//! The IPVS sync daemon's message, protocol version 1 (Linux 6.1 `ip_vs_sync.c`): layout
//! only. Which connections a master sends and what a backup installs are `ipvs::sync`'s.
//!
//! A message is an 8-byte header (`reserved` 0, `syncid`, `size`, `nr_conns`, `version`
//! 1, `spare` 0) followed by `nr_conns` entries. Each entry is a fixed part (36 bytes for
//! IPv4, 72 for IPv6) and type-length options (sequence data, persistence-engine data and
//! name); its `ver_size` counts both. Entries start on 4-byte boundaries: the zero padding
//! goes before an entry, so the last one is not padded, and the header's `size` is the
//! whole datagram (padding between entries included).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{be16, be32};

/// `SYNC_PROTO_VER`.
pub const SYNC_PROTO_VER: u8 = 1;
/// Header length (`struct ip_vs_sync_mesg`).
pub const HEADER_LEN: usize = 8;
/// Fixed part of an IPv4 entry (`struct ip_vs_sync_v4`).
pub const V4_ENTRY_LEN: usize = 36;
/// Fixed part of an IPv6 entry (`struct ip_vs_sync_v6`).
pub const V6_ENTRY_LEN: usize = 72;
/// The sequence option: type, length and `struct ip_vs_sync_conn_options`.
pub const SEQ_OPTION_LEN: usize = 2 + 24;

/// `IP_VS_CONN_F_*` bits as they travel in sync messages.
pub mod conn_flags {
    /// Forwarding method mask (MASQ 0, LOCALNODE 1, TUNNEL 2, DROUTE 3, BYPASS 4).
    pub const FWD_MASK: u32 = 0x0007;
    /// Created by sync.
    pub const SYNC: u32 = 0x0020;
    /// Hashed (never sent).
    pub const HASHED: u32 = 0x0040;
    /// No output packets seen.
    pub const NOOUTPUT: u32 = 0x0080;
    /// Inactive connection.
    pub const INACTIVE: u32 = 0x0100;
    /// Sequence adjustments (output).
    pub const OUT_SEQ: u32 = 0x0200;
    /// Sequence adjustments (input).
    pub const IN_SEQ: u32 = 0x0400;
    /// No client port set yet.
    pub const NO_CPORT: u32 = 0x0800;
    /// Persistence template.
    pub const TEMPLATE: u32 = 0x1000;
    /// One-packet scheduling.
    pub const ONE_PACKET: u32 = 0x2000;
    /// What a backup takes from a message (`IP_VS_CONN_F_BACKUP_MASK`).
    pub const BACKUP_MASK: u32 =
        FWD_MASK | NOOUTPUT | INACTIVE | OUT_SEQ | IN_SEQ | NO_CPORT | TEMPLATE;
}

const OPT_SEQ_DATA: u8 = 1;
const OPT_PE_DATA: u8 = 2;
const OPT_PE_NAME: u8 = 3;
/// `IPVS_OPT_F_PARAM`: an option a receiver that does not know it may skip.
const OPT_F_PARAM: u8 = 0x40;
/// `IP_VS_PENAME_MAXLEN`.
const PE_NAME_MAX: usize = 16;
const SEQ_DATA_LEN: u8 = 24;
const SVER_SHIFT: u16 = 12;
const SVER_MASK: u16 = 0x0fff;
const STYPE_F_INET6: u8 = 1;

/// One direction's TCP sequence adjustment (`struct ip_vs_seq`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Seq {
    /// `init_seq`.
    pub init_seq: u32,
    /// `delta`.
    pub delta: i32,
    /// `previous_delta`.
    pub previous_delta: i32,
}

/// One connection entry (`union ip_vs_sync_conn` and its options).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncConnRepr {
    /// IP protocol.
    pub protocol: u8,
    /// `IP_VS_CONN_F_*` flags, written as given ([`conn_flags`]).
    pub flags: u32,
    /// Protocol state.
    pub state: u16,
    /// Client port.
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Real server port.
    pub dport: u16,
    /// Firewall mark.
    pub fwmark: u32,
    /// Timeout in seconds.
    pub timeout: u32,
    /// Client address (same family as the others).
    pub caddr: IpAddr,
    /// Virtual address.
    pub vaddr: IpAddr,
    /// Real server address.
    pub daddr: IpAddr,
    /// Sequence option (in, out).
    pub seq: Option<(Seq, Seq)>,
    /// Persistence-engine data option (1 to 255 bytes).
    pub pe_data: Option<Vec<u8>>,
    /// Persistence-engine name option (1 to 255 bytes).
    pub pe_name: Option<Vec<u8>>,
}

/// A whole sync message (`struct ip_vs_sync_mesg` and its entries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncMessageRepr {
    /// Sync ID of the sender.
    pub syncid: u8,
    /// The entries (at most 255).
    pub conns: Vec<SyncConnRepr>,
}

/// Why bytes are not a sync message, or a message cannot be written (the kernel logs and
/// drops such a message).
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum SyncWireError {
    /// Shorter than its header.
    #[error("sync message shorter than its 8-byte header ({0} bytes)")]
    TooShort(usize),
    /// `size` disagrees with the datagram.
    #[error("bogus message size: header says {header}, datagram has {actual}")]
    BadSize {
        /// Header's size.
        header: usize,
        /// Bytes received.
        actual: usize,
    },
    /// Not version 1 (or reserved/spare non-zero: a version 0 message).
    #[error("not a version 1 sync message (version {0})")]
    Version(u8),
    /// An entry runs past the end.
    #[error("entry {0} is truncated")]
    Truncated(usize),
    /// An entry's version nibble is not 0.
    #[error("entry {0} has unknown version")]
    EntryVersion(usize),
    /// An entry's declared size is below its fixed part.
    #[error("entry {0} is shorter than its fixed part")]
    EntryTooShort(usize),
    /// A malformed option.
    #[error("entry {0} has a malformed option")]
    BadOption(usize),
    /// An entry's type byte is neither IPv4 (0) nor has the IPv6 bit.
    #[error("entry {0} has an unknown type")]
    EntryType(usize),
    /// An entry carries an option the receiver must understand and does not (the kernel
    /// skips that entry only; [`SyncMessageRepr::parse`] refuses the message).
    #[error("entry {index} has unknown mandatory option {option}")]
    UnknownOption {
        /// The entry.
        index: usize,
        /// The option's type.
        option: u8,
    },
    /// Address families differ inside one entry.
    #[error("entry {0} mixes address families")]
    MixedFamily(usize),
    /// More than 255 entries, an entry or option too large to describe, or a buffer too
    /// small for the message.
    #[error("too many or too large entries to encode")]
    TooBig,
}

fn put_addr(out: &mut [u8], a: IpAddr) -> usize {
    match a {
        IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            4
        }
        IpAddr::V6(a) => {
            out[..16].copy_from_slice(&a.octets());
            16
        }
    }
}

fn addr(b: &[u8], at: usize, v6: bool) -> IpAddr {
    if v6 {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(o))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
    }
}

/// Padding that puts an entry starting at `at` on a 4-byte boundary.
fn pad(at: usize) -> usize {
    (4 - at % 4) % 4
}

impl SyncConnRepr {
    /// Bytes [`SyncConnRepr::emit`] writes: the entry's `ver_size`, without padding.
    pub fn buffer_len(&self) -> usize {
        let base = if self.caddr.is_ipv6() {
            V6_ENTRY_LEN
        } else {
            V4_ENTRY_LEN
        };
        base + self.seq.map_or(0, |_| SEQ_OPTION_LEN)
            + self.pe_data.as_ref().map_or(0, |d| d.len() + 2)
            + self.pe_name.as_ref().map_or(0, |d| d.len() + 2)
    }

    /// Length this entry takes in a message when another entry follows it.
    pub fn padded_len(&self) -> usize {
        let len = self.buffer_len();
        len + pad(len)
    }

    /// Refuse what the layout cannot carry: mixed families, a `ver_size` over 12 bits,
    /// an empty or over-long option (a PE name over `IP_VS_PENAME_MAXLEN`).
    fn check(&self, idx: usize) -> Result<(), SyncWireError> {
        let v6 = self.caddr.is_ipv6();
        if self.vaddr.is_ipv6() != v6 || self.daddr.is_ipv6() != v6 {
            return Err(SyncWireError::MixedFamily(idx));
        }
        let bad_opt =
            |d: &Option<Vec<u8>>| d.as_ref().is_some_and(|d| d.is_empty() || d.len() > 255);
        if self.buffer_len() > usize::from(SVER_MASK)
            || bad_opt(&self.pe_data)
            || bad_opt(&self.pe_name)
            || self.pe_name.as_ref().is_some_and(|n| n.len() > PE_NAME_MAX)
        {
            return Err(SyncWireError::TooBig);
        }
        Ok(())
    }

    /// Write the entry into `e`, exactly [`SyncConnRepr::buffer_len`] bytes (checked).
    fn write(&self, e: &mut [u8]) {
        e[0] = if self.caddr.is_ipv6() {
            STYPE_F_INET6
        } else {
            0
        };
        e[1] = self.protocol;
        let ver_size = e.len() as u16 & SVER_MASK;
        e[2..4].copy_from_slice(&ver_size.to_be_bytes());
        e[4..8].copy_from_slice(&self.flags.to_be_bytes());
        e[8..10].copy_from_slice(&self.state.to_be_bytes());
        e[10..12].copy_from_slice(&self.cport.to_be_bytes());
        e[12..14].copy_from_slice(&self.vport.to_be_bytes());
        e[14..16].copy_from_slice(&self.dport.to_be_bytes());
        e[16..20].copy_from_slice(&self.fwmark.to_be_bytes());
        e[20..24].copy_from_slice(&self.timeout.to_be_bytes());
        let mut at = 24;
        for a in [self.caddr, self.vaddr, self.daddr] {
            at += put_addr(&mut e[at..], a);
        }
        if let Some((i, o)) = self.seq {
            e[at] = OPT_SEQ_DATA;
            e[at + 1] = SEQ_DATA_LEN;
            at += 2;
            for s in [i, o] {
                e[at..at + 4].copy_from_slice(&s.init_seq.to_be_bytes());
                e[at + 4..at + 8].copy_from_slice(&s.delta.to_be_bytes());
                e[at + 8..at + 12].copy_from_slice(&s.previous_delta.to_be_bytes());
                at += 12;
            }
        }
        for (t, d) in [(OPT_PE_DATA, &self.pe_data), (OPT_PE_NAME, &self.pe_name)] {
            if let Some(d) = d {
                e[at] = t;
                e[at + 1] = d.len() as u8;
                e[at + 2..at + 2 + d.len()].copy_from_slice(d);
                at += 2 + d.len();
            }
        }
    }

    /// Read entry `idx` from exactly its `ver_size` bytes (at least 4), as
    /// `ip_vs_proc_sync_conn` does: an unknown mandatory option is
    /// [`SyncWireError::UnknownOption`] (the kernel skips the entry), an unknown optional one
    /// (`IPVS_OPT_F_PARAM`) is skipped, anything else malformed is an error.
    fn parse(e: &[u8], idx: usize) -> Result<SyncConnRepr, SyncWireError> {
        let v6 = e[0] & STYPE_F_INET6 != 0;
        if !v6 && e[0] != 0 {
            return Err(SyncWireError::EntryType(idx));
        }
        let fixed = if v6 { V6_ENTRY_LEN } else { V4_ENTRY_LEN };
        if e.len() < fixed {
            return Err(SyncWireError::EntryTooShort(idx));
        }
        let alen = if v6 { 16 } else { 4 };
        let mut s = SyncConnRepr {
            protocol: e[1],
            flags: be32(e, 4),
            state: be16(e, 8),
            cport: be16(e, 10),
            vport: be16(e, 12),
            dport: be16(e, 14),
            fwmark: be32(e, 16),
            timeout: be32(e, 20),
            caddr: addr(e, 24, v6),
            vaddr: addr(e, 24 + alen, v6),
            daddr: addr(e, 24 + 2 * alen, v6),
            seq: None,
            pe_data: None,
            pe_name: None,
        };
        let mut p = fixed;
        while p < e.len() {
            let (Some(&t), Some(&l)) = (e.get(p), e.get(p + 1)) else {
                return Err(SyncWireError::BadOption(idx));
            };
            let l = usize::from(l);
            let Some(data) = e.get(p + 2..p + 2 + l).filter(|_| l > 0) else {
                return Err(SyncWireError::BadOption(idx));
            };
            match t & !OPT_F_PARAM {
                OPT_SEQ_DATA if l == usize::from(SEQ_DATA_LEN) && s.seq.is_none() => {
                    let seq = |at: usize| Seq {
                        init_seq: be32(data, at),
                        delta: be32(data, at + 4) as i32,
                        previous_delta: be32(data, at + 8) as i32,
                    };
                    s.seq = Some((seq(0), seq(12)));
                }
                OPT_PE_DATA if s.pe_data.is_none() => s.pe_data = Some(data.to_vec()),
                OPT_PE_NAME if s.pe_name.is_none() && l <= PE_NAME_MAX => {
                    s.pe_name = Some(data.to_vec())
                }
                OPT_SEQ_DATA | OPT_PE_DATA | OPT_PE_NAME => {
                    return Err(SyncWireError::BadOption(idx))
                }
                _ if t & OPT_F_PARAM != 0 => {}
                _ => {
                    return Err(SyncWireError::UnknownOption {
                        index: idx,
                        option: t,
                    })
                }
            }
            p += 2 + l;
        }
        Ok(s)
    }
}

impl SyncMessageRepr {
    /// Bytes [`SyncMessageRepr::emit`] writes: the header's `size`.
    pub fn buffer_len(&self) -> usize {
        self.conns
            .iter()
            .fold(HEADER_LEN, |at, c| at + pad(at) + c.buffer_len())
    }

    /// Write the message into the first [`SyncMessageRepr::buffer_len`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), SyncWireError> {
        let count = u8::try_from(self.conns.len()).map_err(|_| SyncWireError::TooBig)?;
        for (i, c) in self.conns.iter().enumerate() {
            c.check(i)?;
        }
        let len = self.buffer_len();
        let size = u16::try_from(len).map_err(|_| SyncWireError::TooBig)?;
        let Some(m) = buf.get_mut(..len) else {
            return Err(SyncWireError::TooBig);
        };
        m[0] = 0;
        m[1] = self.syncid;
        m[2..4].copy_from_slice(&size.to_be_bytes());
        m[4] = count;
        m[5] = SYNC_PROTO_VER;
        m[6..8].fill(0);
        let mut at = HEADER_LEN;
        for c in &self.conns {
            let p = pad(at);
            m[at..at + p].fill(0);
            at += p;
            let n = c.buffer_len();
            c.write(&mut m[at..at + n]);
            at += n;
        }
        Ok(())
    }

    /// The sync ID of a datagram whose length agrees with its header's `size`: what
    /// `ip_vs_process_message` checks before anything else (a receiver ignores a message of
    /// another sync ID before looking at its version).
    pub fn syncid(b: &[u8]) -> Result<u8, SyncWireError> {
        // Versions 0 and 1 both start nr_conns|reserved, syncid, size.
        if b.len() < 4 {
            return Err(SyncWireError::TooShort(b.len()));
        }
        let size = usize::from(be16(b, 2));
        if size != b.len() {
            return Err(SyncWireError::BadSize {
                header: size,
                actual: b.len(),
            });
        }
        Ok(b[1])
    }

    /// The entries of a version 1 datagram in order, as `ip_vs_process_message` walks
    /// them: each an entry or the reason it cannot be read; after an error other than
    /// [`SyncWireError::UnknownOption`] (which costs the kernel that entry only) the rest
    /// of the datagram is dropped and the iterator ends. Never panics.
    pub fn entries(b: &[u8]) -> Result<SyncEntries<'_>, SyncWireError> {
        Self::syncid(b)?;
        if b.len() < HEADER_LEN {
            return Err(SyncWireError::TooShort(b.len()));
        }
        if b[5] != SYNC_PROTO_VER || b[0] != 0 || b[6] != 0 || b[7] != 0 {
            return Err(SyncWireError::Version(b[5]));
        }
        Ok(SyncEntries {
            b,
            at: HEADER_LEN,
            next: 0,
            count: usize::from(b[4]),
        })
    }

    /// Read a whole datagram payload; any entry that cannot be read refuses it. Never
    /// panics.
    pub fn parse(b: &[u8]) -> Result<SyncMessageRepr, SyncWireError> {
        let conns = Self::entries(b)?.collect::<Result<Vec<_>, _>>()?;
        Ok(SyncMessageRepr {
            syncid: b[1],
            conns,
        })
    }

    /// The message as a new buffer of [`SyncMessageRepr::buffer_len`] bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SyncWireError> {
        let mut b = vec![0; self.buffer_len()];
        self.emit(&mut b)?;
        Ok(b)
    }
}

/// The entries of a sync datagram ([`SyncMessageRepr::entries`]).
#[derive(Debug)]
pub struct SyncEntries<'a> {
    b: &'a [u8],
    at: usize,
    next: usize,
    count: usize,
}

impl Iterator for SyncEntries<'_> {
    type Item = Result<SyncConnRepr, SyncWireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.count {
            return None;
        }
        let (b, at, i) = (self.b, self.at, self.next);
        self.next += 1;
        let fatal = |this: &mut Self, e| {
            this.next = this.count;
            Some(Err(e))
        };
        if at + V4_ENTRY_LEN > b.len() {
            return fatal(self, SyncWireError::Truncated(i));
        }
        let vs = be16(b, at + 2);
        let sz = usize::from(vs & SVER_MASK);
        let Some(e) = b.get(at..at + sz) else {
            return fatal(self, SyncWireError::Truncated(i));
        };
        if vs >> SVER_SHIFT != 0 {
            return fatal(self, SyncWireError::EntryVersion(i));
        }
        if sz < 4 {
            return fatal(self, SyncWireError::EntryTooShort(i));
        }
        self.at = at + sz + pad(sz);
        match SyncConnRepr::parse(e, i) {
            Err(e @ SyncWireError::UnknownOption { .. }) => Some(Err(e)),
            Err(e) => fatal(self, e),
            Ok(c) => Some(Ok(c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(v6: bool) -> SyncConnRepr {
        let (c, v, d): (IpAddr, IpAddr, IpAddr) = if v6 {
            (
                "2001:db8::7".parse().unwrap(),
                "2001:db8::1".parse().unwrap(),
                "2001:db8::11".parse().unwrap(),
            )
        } else {
            (
                "192.0.2.7".parse().unwrap(),
                "10.0.0.1".parse().unwrap(),
                "10.0.0.11".parse().unwrap(),
            )
        };
        SyncConnRepr {
            protocol: 6,
            flags: 3 | conn_flags::NOOUTPUT,
            state: 1,
            cport: 40001,
            vport: 80,
            dport: 80,
            fwmark: 0,
            timeout: 900,
            caddr: c,
            vaddr: v,
            daddr: d,
            seq: None,
            pe_data: None,
            pe_name: None,
        }
    }

    #[test]
    fn v4_entry_layout_matches_the_kernel_struct() {
        let m = SyncMessageRepr {
            syncid: 5,
            conns: vec![entry(false)],
        };
        let b = m.to_bytes().unwrap();
        assert_eq!(b.len(), 8 + 36);
        assert_eq!(&b[..8], &[0, 5, 0, 44, 1, 1, 0, 0]);
        // type 0, protocol 6, ver_size 36, flags 0x83, state 1.
        assert_eq!(&b[8..18], &[0, 6, 0, 36, 0, 0, 0, 0x83, 0, 1]);
        assert_eq!(&b[18..24], &[0x9c, 0x41, 0, 80, 0, 80]);
        assert_eq!(&b[28..32], &900u32.to_be_bytes());
        assert_eq!(&b[32..36], &[192, 0, 2, 7]);
        assert_eq!(SyncMessageRepr::parse(&b).unwrap(), m);
    }

    /// `ip_vs_sync_conn`: options in the order seq, pe_data, pe_name; the padding before
    /// the next entry counts in the header's size, and there is none after the last.
    #[test]
    fn options_and_padding() {
        let mut e = entry(true);
        e.pe_name = Some(b"sip".to_vec());
        e.seq = Some((
            Seq {
                init_seq: 1,
                delta: -2,
                previous_delta: 3,
            },
            Seq::default(),
        ));
        let m = SyncMessageRepr {
            syncid: 0,
            conns: vec![e.clone(), entry(false)],
        };
        let b = m.to_bytes().unwrap();
        assert_eq!(e.buffer_len(), 72 + 26 + 5);
        assert_eq!(e.padded_len(), 104);
        // 103 bytes, padded to 104 before the next entry.
        assert_eq!(b.len(), 8 + 104 + 36);
        assert_eq!(usize::from(be16(&b, 2)), b.len());
        assert_eq!(&b[8 + 2..8 + 4], &[0, 103]);
        assert_eq!(&b[8 + 72..8 + 74], &[OPT_SEQ_DATA, 24]);
        assert_eq!(&b[8 + 98..8 + 104], &[OPT_PE_NAME, 3, b's', b'i', b'p', 0]);
        assert_eq!(SyncMessageRepr::parse(&b).unwrap(), m);
        let last = SyncMessageRepr {
            syncid: 0,
            conns: vec![entry(false), e],
        };
        assert_eq!(last.buffer_len(), 8 + 36 + 103);
    }

    #[test]
    fn hostile_messages_are_refused() {
        let good = SyncMessageRepr {
            syncid: 1,
            conns: vec![entry(false)],
        }
        .to_bytes()
        .unwrap();
        // The length is checked against `size` first, as the kernel does.
        assert_eq!(
            SyncMessageRepr::parse(&good[..5]),
            Err(SyncWireError::BadSize {
                header: good.len(),
                actual: 5
            })
        );
        assert_eq!(
            SyncMessageRepr::parse(&good[..3]),
            Err(SyncWireError::TooShort(3))
        );
        let mut b = good.clone();
        b.truncate(40);
        assert!(matches!(
            SyncMessageRepr::parse(&b),
            Err(SyncWireError::BadSize { .. })
        ));
        let mut b = good.clone();
        b[5] = 0;
        assert_eq!(SyncMessageRepr::parse(&b), Err(SyncWireError::Version(0)));
        let mut b = good.clone();
        b[4] = 2; // claims two entries
        assert_eq!(SyncMessageRepr::parse(&b), Err(SyncWireError::Truncated(1)));
        let mut b = good.clone();
        b[10] = 0x10; // entry version 1
        assert_eq!(
            SyncMessageRepr::parse(&b),
            Err(SyncWireError::EntryVersion(0))
        );
        let mut b = good.clone();
        b[11] = 20; // shorter than the fixed part
        assert_eq!(
            SyncMessageRepr::parse(&b),
            Err(SyncWireError::EntryTooShort(0))
        );
    }

    #[test]
    fn what_the_layout_cannot_carry_is_refused() {
        let mut mixed = entry(false);
        mixed.daddr = "2001:db8::11".parse().unwrap();
        let m = SyncMessageRepr {
            syncid: 0,
            conns: vec![entry(false), mixed],
        };
        assert_eq!(m.to_bytes(), Err(SyncWireError::MixedFamily(1)));
        let mut empty = entry(false);
        empty.pe_data = Some(Vec::new());
        let m = SyncMessageRepr {
            syncid: 0,
            conns: vec![empty],
        };
        assert_eq!(m.to_bytes(), Err(SyncWireError::TooBig));
        let m = SyncMessageRepr {
            syncid: 0,
            conns: vec![entry(false); 256],
        };
        assert_eq!(m.to_bytes(), Err(SyncWireError::TooBig));
        let m = SyncMessageRepr {
            syncid: 0,
            conns: vec![entry(false)],
        };
        assert_eq!(m.emit(&mut [0; 43]), Err(SyncWireError::TooBig));
    }

    fn arb_addrs(v6: bool) -> impl Strategy<Value = [IpAddr; 3]> {
        any::<[[u8; 16]; 3]>().prop_map(move |a| {
            a.map(|o| {
                if v6 {
                    IpAddr::V6(Ipv6Addr::from(o))
                } else {
                    IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3]))
                }
            })
        })
    }

    fn arb_seq() -> impl Strategy<Value = Seq> {
        any::<(u32, i32, i32)>().prop_map(|(init_seq, delta, previous_delta)| Seq {
            init_seq,
            delta,
            previous_delta,
        })
    }

    fn arb_opt(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 1..=max))
    }

    fn arb_conn() -> impl Strategy<Value = SyncConnRepr> {
        (
            any::<bool>().prop_flat_map(arb_addrs),
            any::<(u8, u32, u16, [u16; 3], u32, u32)>(),
            proptest::option::of((arb_seq(), arb_seq())),
            arb_opt(255),
            arb_opt(PE_NAME_MAX),
        )
            .prop_map(
                |(
                    [caddr, vaddr, daddr],
                    (protocol, flags, state, ports, fwmark, timeout),
                    seq,
                    pe_data,
                    pe_name,
                )| {
                    SyncConnRepr {
                        protocol,
                        flags,
                        state,
                        cport: ports[0],
                        vport: ports[1],
                        dport: ports[2],
                        fwmark,
                        timeout,
                        caddr,
                        vaddr,
                        daddr,
                        seq,
                        pe_data,
                        pe_name,
                    }
                },
            )
    }

    fn arb_message() -> impl Strategy<Value = SyncMessageRepr> {
        (any::<u8>(), proptest::collection::vec(arb_conn(), 0..12))
            .prop_map(|(syncid, conns)| SyncMessageRepr { syncid, conns })
    }

    proptest! {
        #[test]
        fn round_trips(m in arb_message()) {
            let b = m.to_bytes().unwrap();
            prop_assert_eq!(b.len(), m.buffer_len());
            prop_assert_eq!(usize::from(be16(&b, 2)), b.len());
            let back = SyncMessageRepr::parse(&b).unwrap();
            prop_assert_eq!(&back, &m);
            prop_assert_eq!(back.to_bytes().unwrap(), b);
        }

        #[test]
        fn damaged_messages_never_panic(
            m in arb_message(),
            damage in proptest::collection::vec((0usize..2000, any::<u8>(), 0u8..3), 0..6),
            cut in 0usize..2000,
        ) {
            let mut b = m.to_bytes().unwrap();
            crate::fuzz::damage(&mut b, &damage);
            b.truncate(cut);
            // The size field would refuse most cuts before any entry is read.
            let len = b.len() as u16;
            if b.len() >= HEADER_LEN && cut % 2 == 0 {
                b[2..4].copy_from_slice(&len.to_be_bytes());
            }
            let _ = SyncMessageRepr::parse(&b);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = SyncMessageRepr::parse(&b);
        }

        #[test]
        fn arbitrary_entries_never_panic(n in 0u8..4, body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut b = vec![0, 0, 0, 0, n, SYNC_PROTO_VER, 0, 0];
            b.extend_from_slice(&body);
            let len = b.len() as u16;
            b[2..4].copy_from_slice(&len.to_be_bytes());
            let _ = SyncMessageRepr::parse(&b);
        }
    }
}
