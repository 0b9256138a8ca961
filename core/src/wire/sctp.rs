//! SCTP (RFC 9260): the common header, chunk headers, the CRC32c checksum, and the chunk
//! types IPVS reads of a packet (`ip_vs_proto_sctp.c`).
//!
//! A packet is the 12-byte common header (ports, verification tag, checksum) followed by
//! chunks, each a 4-byte header (type, flags, length of header and value) and its value,
//! padded to a multiple of 4. The checksum is CRC32c (the iSCSI polynomial) over the whole
//! packet with the checksum field zeroed, stored least significant byte first, as Linux's
//! `sctp_compute_cksum` stores it; it covers no pseudo-header, so rewriting an address
//! leaves it right and rewriting a port does not.

use super::{be16, be32, need, room, WireError};

/// Length of the common header.
pub const HEADER_LEN: usize = 12;
/// Length of a chunk header.
pub const CHUNK_HEADER_LEN: usize = 4;

/// Chunk types (`SCTP_CID_*`).
pub mod chunk {
    /// DATA.
    pub const DATA: u8 = 0;
    /// INIT.
    pub const INIT: u8 = 1;
    /// INIT ACK.
    pub const INIT_ACK: u8 = 2;
    /// SACK.
    pub const SACK: u8 = 3;
    /// HEARTBEAT.
    pub const HEARTBEAT: u8 = 4;
    /// HEARTBEAT ACK.
    pub const HEARTBEAT_ACK: u8 = 5;
    /// ABORT.
    pub const ABORT: u8 = 6;
    /// SHUTDOWN.
    pub const SHUTDOWN: u8 = 7;
    /// SHUTDOWN ACK.
    pub const SHUTDOWN_ACK: u8 = 8;
    /// ERROR.
    pub const ERROR: u8 = 9;
    /// COOKIE ECHO.
    pub const COOKIE_ECHO: u8 = 10;
    /// COOKIE ACK.
    pub const COOKIE_ACK: u8 = 11;
    /// ECNE.
    pub const ECNE: u8 = 12;
    /// CWR.
    pub const CWR: u8 = 13;
    /// SHUTDOWN COMPLETE.
    pub const SHUTDOWN_COMPLETE: u8 = 14;
}

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// An SCTP common header.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SctpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Verification tag.
    pub verification_tag: u32,
    /// Bytes of chunks after the header.
    pub chunks_len: usize,
}

impl SctpRepr {
    /// Read a common header; every byte after it is its chunks. The checksum is not
    /// checked ([`verify_checksum`]).
    pub fn parse(packet: &[u8]) -> Result<(SctpRepr, &[u8]), WireError> {
        need("SCTP common header", packet, HEADER_LEN)?;
        Ok((
            SctpRepr {
                src_port: be16(packet, 0),
                dst_port: be16(packet, 2),
                verification_tag: be32(packet, 4),
                chunks_len: packet.len() - HEADER_LEN,
            },
            &packet[HEADER_LEN..],
        ))
    }

    /// Bytes of header and chunks.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.chunks_len
    }

    /// Write the header at the start of `buf`, whose next `chunks_len` bytes already hold
    /// the chunks, with the checksum over all of it.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        room("SCTP packet", buf, self.buffer_len())?;
        buf[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        buf[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[4..8].copy_from_slice(&self.verification_tag.to_be_bytes());
        fill_checksum(&mut buf[..self.buffer_len()]);
        Ok(())
    }
}

/// The CRC32c of `packet` (common header and chunks) with its checksum field taken as zero.
/// `packet` must hold a common header.
pub fn checksum(packet: &[u8]) -> u32 {
    let mut d = CRC32C.digest();
    d.update(&packet[..8]);
    d.update(&[0; 4]);
    d.update(&packet[HEADER_LEN..]);
    d.finalize()
}

/// Check the checksum of a packet.
pub fn verify_checksum(packet: &[u8]) -> Result<(), WireError> {
    need("SCTP common header", packet, HEADER_LEN)?;
    let got = u32::from_le_bytes([packet[8], packet[9], packet[10], packet[11]]);
    let expected = checksum(packet);
    if got != expected {
        return Err(WireError::Crc {
            layer: "SCTP",
            got,
            expected,
        });
    }
    Ok(())
}

/// Recompute the checksum of `packet` in place (`sctp_nat_csum`); shorter than a common
/// header, it is left alone.
pub fn fill_checksum(packet: &mut [u8]) {
    if packet.len() < HEADER_LEN {
        return;
    }
    let sum = checksum(packet);
    packet[8..12].copy_from_slice(&sum.to_le_bytes());
}

/// A chunk header.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChunkRepr {
    /// Chunk type ([`chunk`]).
    pub kind: u8,
    /// Chunk flags.
    pub flags: u8,
    /// Bytes of value after the header (padding excluded).
    pub value_len: usize,
}

impl ChunkRepr {
    /// Read the chunk at the start of `chunks`: its header, its value, and the chunks after
    /// it (past the padding; the last chunk's padding may be missing). A length below 4 or
    /// past the bytes present is an error.
    pub fn parse(chunks: &[u8]) -> Result<(ChunkRepr, &[u8], &[u8]), WireError> {
        need("SCTP chunk header", chunks, CHUNK_HEADER_LEN)?;
        let len = usize::from(be16(chunks, 2));
        if len < CHUNK_HEADER_LEN {
            return Err(WireError::Malformed {
                layer: "SCTP chunk header",
                reason: "length below 4",
            });
        }
        need("SCTP chunk", chunks, len)?;
        let next = align4(len).min(chunks.len());
        Ok((
            ChunkRepr {
                kind: chunks[0],
                flags: chunks[1],
                value_len: len - CHUNK_HEADER_LEN,
            },
            &chunks[CHUNK_HEADER_LEN..len],
            &chunks[next..],
        ))
    }

    /// Bytes of header, value and padding.
    pub const fn buffer_len(&self) -> usize {
        align4(CHUNK_HEADER_LEN + self.value_len)
    }

    /// Write the header at the start of `buf`, whose next `value_len` bytes already hold the
    /// value, and zero the padding after it.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        room("SCTP chunk", buf, self.buffer_len())?;
        let len =
            u16::try_from(CHUNK_HEADER_LEN + self.value_len).map_err(|_| WireError::TooBig {
                layer: "SCTP chunk",
            })?;
        buf[0] = self.kind;
        buf[1] = self.flags;
        buf[2..4].copy_from_slice(&len.to_be_bytes());
        buf[usize::from(len)..self.buffer_len()].fill(0);
        Ok(())
    }
}

/// `n` rounded up to a multiple of 4.
const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// What IPVS reads of an SCTP packet's chunks.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ChunkTypes {
    /// The first chunk's type: what `sctp_conn_schedule` reads (only an INIT, or with
    /// `sloppy_sctp` anything but an ABORT, makes a connection).
    pub first: u8,
    /// The type `set_sctp_state` moves the state on: the first chunk's, or ABORT when a
    /// COOKIE ECHO or COOKIE ACK is followed by an ABORT chunk.
    pub state: u8,
}

impl ChunkTypes {
    /// Chunk types of a packet whose first chunk is `kind` and moves the state by itself.
    pub const fn of(kind: u8) -> ChunkTypes {
        ChunkTypes {
            first: kind,
            state: kind,
        }
    }
}

/// The chunk types of an SCTP packet (`packet`: common header on, to the end of the IP
/// packet) as the kernel reads them: the first chunk header must be there; the second is
/// looked at only after a COOKIE ECHO or COOKIE ACK whose length is at least 4, at the
/// first's padded length. `None` when the packet has no first chunk header.
#[inline]
pub fn chunk_types(packet: &[u8]) -> Option<ChunkTypes> {
    let first = packet.get(HEADER_LEN..HEADER_LEN + CHUNK_HEADER_LEN)?[0];
    let mut state = first;
    if first == chunk::COOKIE_ECHO || first == chunk::COOKIE_ACK {
        let clen = usize::from(be16(packet, HEADER_LEN + 2));
        if clen >= CHUNK_HEADER_LEN {
            let at = HEADER_LEN + align4(clen);
            if packet.len() >= at + CHUNK_HEADER_LEN && packet[at] == chunk::ABORT {
                state = chunk::ABORT;
            }
        }
    }
    Some(ChunkTypes { first, state })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A packet of `chunks` (type, flags, value) under a common header.
    fn packet(sport: u16, dport: u16, vtag: u32, chunks: &[(u8, u8, Vec<u8>)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, flags, value) in chunks {
            let c = ChunkRepr {
                kind: *kind,
                flags: *flags,
                value_len: value.len(),
            };
            let at = body.len();
            body.resize(at + c.buffer_len(), 0);
            body[at + CHUNK_HEADER_LEN..at + CHUNK_HEADER_LEN + value.len()].copy_from_slice(value);
            c.emit(&mut body[at..]).unwrap();
        }
        let h = SctpRepr {
            src_port: sport,
            dst_port: dport,
            verification_tag: vtag,
            chunks_len: body.len(),
        };
        let mut p = vec![0; h.buffer_len()];
        p[HEADER_LEN..].copy_from_slice(&body);
        h.emit(&mut p).unwrap();
        p
    }

    #[test]
    fn crc32c_is_the_iscsi_one_stored_least_significant_byte_first() {
        // RFC 3720 B.4: 32 bytes of zeros have CRC32c 0x8a9136aa.
        assert_eq!(CRC32C.checksum(&[0; 32]), 0x8a91_36aa);
        // The packet's sum skips its own field and lands in it little-endian.
        let p = packet(1, 2, 3, &[(chunk::INIT, 0, vec![0; 16])]);
        let mut zeroed = p.clone();
        zeroed[8..12].fill(0);
        assert_eq!(p[8..12], CRC32C.checksum(&zeroed).to_le_bytes());
        verify_checksum(&p).unwrap();
        let mut bad = p.clone();
        bad[20] ^= 1;
        assert!(matches!(verify_checksum(&bad), Err(WireError::Crc { .. })));
    }

    #[test]
    fn ipvs_reads_the_first_chunk_and_an_abort_after_cookies() {
        let p = packet(1, 2, 0, &[(chunk::INIT, 0, vec![0; 16])]);
        assert_eq!(chunk_types(&p), Some(ChunkTypes::of(chunk::INIT)));
        for first in [chunk::COOKIE_ECHO, chunk::COOKIE_ACK] {
            // A 5-byte value is padded to 8: the ABORT is found after the padding.
            let p = packet(
                1,
                2,
                0,
                &[(first, 0, vec![7; 5]), (chunk::ABORT, 0, vec![])],
            );
            assert_eq!(
                chunk_types(&p),
                Some(ChunkTypes {
                    first,
                    state: chunk::ABORT
                })
            );
            let p = packet(
                1,
                2,
                0,
                &[(first, 0, vec![7; 5]), (chunk::DATA, 0, vec![1])],
            );
            assert_eq!(chunk_types(&p), Some(ChunkTypes::of(first)));
        }
        // Other chunks are read alone, whatever follows.
        let p = packet(
            1,
            2,
            0,
            &[(chunk::SACK, 0, vec![0; 12]), (chunk::ABORT, 0, vec![])],
        );
        assert_eq!(chunk_types(&p), Some(ChunkTypes::of(chunk::SACK)));
        // A COOKIE ECHO whose length is below 4 is not looked past.
        let mut p = packet(
            1,
            2,
            0,
            &[(chunk::COOKIE_ECHO, 0, vec![]), (chunk::ABORT, 0, vec![])],
        );
        p[14..16].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(chunk_types(&p), Some(ChunkTypes::of(chunk::COOKIE_ECHO)));
        // No chunk header: nothing to read.
        assert_eq!(chunk_types(&p[..15]), None);
        assert_eq!(
            chunk_types(&p[..16]).map(|c| c.first),
            Some(chunk::COOKIE_ECHO)
        );
    }

    #[test]
    fn bad_chunk_lengths_are_errors() {
        assert!(ChunkRepr::parse(&[0, 0, 0, 3]).is_err());
        assert!(ChunkRepr::parse(&[0, 0, 0, 9, 1, 2, 3, 4]).is_err());
        assert!(ChunkRepr::parse(&[0, 0, 0]).is_err());
        // The last chunk's padding may be missing.
        let (c, v, rest) = ChunkRepr::parse(&[0, 3, 0, 5, 9]).unwrap();
        assert_eq!(
            (c.kind, c.flags, c.value_len, v, rest),
            (0, 3, 1, &[9][..], &[][..])
        );
        assert!(SctpRepr::parse(&[0; 11]).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(
            sport: u16, dport: u16, vtag: u32,
            chunks in proptest::collection::vec(
                (any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..20)), 0..4),
        ) {
            let p = packet(sport, dport, vtag, &chunks);
            verify_checksum(&p).unwrap();
            let (h, mut rest) = SctpRepr::parse(&p).unwrap();
            prop_assert_eq!((h.src_port, h.dst_port, h.verification_tag), (sport, dport, vtag));
            prop_assert_eq!(h.buffer_len(), p.len());
            let mut back = Vec::new();
            while !rest.is_empty() {
                let (c, v, r) = ChunkRepr::parse(rest).unwrap();
                back.push((c.kind, c.flags, v.to_vec()));
                rest = r;
            }
            prop_assert_eq!(&back, &chunks);
            prop_assert_eq!(packet(sport, dport, vtag, &back), p.clone());
            if let Some(first) = chunks.first() {
                prop_assert_eq!(chunk_types(&p).map(|c| c.first), Some(first.0));
            }
        }

        #[test]
        fn damaged_packets_never_panic(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = chunk_types(&b);
            let _ = verify_checksum(&b);
            if let Ok((_, mut rest)) = SctpRepr::parse(&b) {
                while let Ok((_, _, r)) = ChunkRepr::parse(rest) {
                    if r.len() == rest.len() { break; }
                    rest = r;
                }
            }
        }
    }
}
