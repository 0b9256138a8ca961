//! Frame damage for property tests: the codec tests here and in the simulator check their
//! fast readers against etherparse on valid frames damaged this way.

/// Apply `edits` to `frame`: each `(index, value, part)` sets the byte at `index` (modulo
/// the length) to `value` (`part` 0), or only its high (1) or low (other) nibble, since
/// version/IHL and the TCP data offset are nibbles. An empty frame is left alone.
pub fn damage(frame: &mut [u8], edits: &[(usize, u8, u8)]) {
    if frame.is_empty() {
        return;
    }
    for &(i, v, part) in edits {
        let i = i % frame.len();
        frame[i] = match part {
            0 => v,
            1 => (frame[i] & 0x0f) | (v & 0xf0),
            _ => (frame[i] & 0xf0) | (v & 0x0f),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_bytes_and_nibbles() {
        let mut f = vec![0x45, 0x00, 0x12];
        damage(&mut f, &[(0, 0x6f, 1), (1, 0xab, 0), (5, 0x34, 2)]);
        assert_eq!(f, vec![0x65, 0xab, 0x14]);
        damage(&mut [], &[(0, 1, 0)]);
    }
}
