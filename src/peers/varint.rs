//! HAProxy's encoded integers (peers.md §2). Not LEB128: values below 240 are one byte; above, the
//! first byte carries the low nibble with the high nibble all ones, and each following byte adds
//! `b << shift`, so byte ranges overlap additively. Every u64 has exactly one encoding, so decoding
//! rejects what would overflow instead of wrapping as HAProxy does: a value we accept re-encodes to
//! the same bytes.

/// Smallest value needing two bytes.
pub const TWO_BYTES_MIN: u64 = 0xf0;
/// Longest encoding of a u64.
pub const MAX_LEN: usize = 10;

/// Why a number could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended inside the number.
    Truncated,
    /// More than ten bytes, or a value beyond 64 bits.
    Overflow,
}

/// Number of bytes `v` takes on the wire.
pub fn encoded_len(v: u64) -> usize {
    if v < TWO_BYTES_MIN {
        return 1;
    }
    let mut len = 2;
    let mut rest = (v - TWO_BYTES_MIN) >> 4;
    while rest >= 0x80 {
        len += 1;
        rest = (rest - 0x80) >> 7;
    }
    len
}

/// Writes `v` into `out`, returning the bytes used (at most [`MAX_LEN`]).
pub fn encode_into(v: u64, out: &mut [u8; MAX_LEN]) -> usize {
    if v < TWO_BYTES_MIN {
        out[0] = v as u8;
        return 1;
    }
    out[0] = (v as u8) | 0xf0;
    let mut rest = (v - TWO_BYTES_MIN) >> 4;
    let mut n = 1;
    while rest >= 0x80 {
        out[n] = (rest as u8) | 0x80;
        n += 1;
        rest = (rest - 0x80) >> 7;
    }
    out[n] = rest as u8;
    n + 1
}

/// Appends `v` to `out`.
pub fn encode(v: u64, out: &mut Vec<u8>) {
    let mut buf = [0; MAX_LEN];
    let n = encode_into(v, &mut buf);
    out.extend_from_slice(&buf[..n]);
}

/// Reads one number from the start of `buf`: the value and the bytes it took.
pub fn decode(buf: &[u8]) -> Result<(u64, usize), VarintError> {
    let Some(&first) = buf.first() else {
        return Err(VarintError::Truncated);
    };
    let mut v = u64::from(first);
    if v < TWO_BYTES_MIN {
        return Ok((v, 1));
    }
    let mut shift = 4u32;
    for (i, &b) in buf.iter().enumerate().skip(1) {
        if i >= MAX_LEN {
            return Err(VarintError::Overflow);
        }
        let add = u64::from(b).checked_shl(shift).filter(|a| a >> shift == u64::from(b));
        v = add.and_then(|a| v.checked_add(a)).ok_or(VarintError::Overflow)?;
        if b < 0x80 {
            return Ok((v, i + 1));
        }
        shift += 7;
    }
    Err(VarintError::Truncated)
}

/// A cursor over a message body that reads numbers and raw bytes with typed failures.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn varint(&mut self) -> Result<u64, VarintError> {
        let (v, n) = decode(self.buf)?;
        self.buf = &self.buf[n..];
        Ok(v)
    }

    /// `n` raw bytes, or `None` (nothing consumed) when fewer remain.
    pub fn bytes(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok().filter(|&n| n <= self.buf.len())?;
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }

    pub fn u32be(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode(v, &mut out);
        out
    }

    /// Every worked example of peers.md §2 (all seen in the captures).
    #[test]
    fn reference_vectors() {
        let vectors: &[(u64, &[u8])] = &[
            (0, &[0x00]),
            (171, &[0xab]),
            (239, &[0xef]),
            (240, &[0xf0, 0x00]),
            (243, &[0xf3, 0x00]),
            (300, &[0xfc, 0x03]),
            (1044, &[0xf4, 0x32]),
            (2288, &[0xf0, 0x80, 0x00]),
            (6169, &[0xf9, 0xf2, 0x01]),
            (10000, &[0xf0, 0xe2, 0x03]),
            (15000, &[0xf8, 0x9a, 0x06]),
            (264432, &[0xf0, 0x80, 0x80, 0x00]),
            (300000, &[0xf0, 0xaf, 0x91, 0x00]),
            (534135, &[0xf7, 0xd8, 0x83, 0x01]),
            (33818864, &[0xf0, 0x80, 0x80, 0x80, 0x00]),
            (1219528075, &[0xfb, 0xc9, 0x8f, 0xab, 0x23]),
            (4328786160, &[0xf0, 0x80, 0x80, 0x80, 0x80, 0x00]),
        ];
        for &(v, bytes) in vectors {
            assert_eq!(enc(v), bytes, "encoding {v}");
            assert_eq!(decode(bytes), Ok((v, bytes.len())), "decoding {v}");
            assert_eq!(encoded_len(v), bytes.len(), "length of {v}");
        }
    }

    /// The first value of each length (HAProxy's PEER_ENC_nBYTES_MIN) and the last of the one below.
    #[test]
    fn length_boundaries() {
        let mins: [u64; 10] = [
            0,
            240,
            2288,
            264432,
            33818864,
            4328786160,
            554084600048,
            70922828777712,
            9078122083518704,
            1161999626690365680,
        ];
        for (i, &min) in mins.iter().enumerate() {
            assert_eq!(encoded_len(min), i + 1, "{min}");
            assert_eq!(enc(min).len(), i + 1, "{min}");
            if min > 0 {
                assert_eq!(encoded_len(min - 1), i, "{}", min - 1);
            }
            for v in [min, min.saturating_sub(1), min + 1] {
                let bytes = enc(v);
                assert_eq!(decode(&bytes), Ok((v, bytes.len())), "{v}");
            }
        }
        let max = enc(u64::MAX);
        assert_eq!(max.len(), MAX_LEN);
        assert_eq!(decode(&max), Ok((u64::MAX, MAX_LEN)));
    }

    #[test]
    fn every_small_value_round_trips() {
        for v in 0..100_000u64 {
            let bytes = enc(v);
            assert_eq!(decode(&bytes), Ok((v, bytes.len())), "{v}");
        }
    }

    #[test]
    fn a_number_running_past_the_end_is_truncated() {
        assert_eq!(decode(&[]), Err(VarintError::Truncated));
        assert_eq!(decode(&[0xf0]), Err(VarintError::Truncated));
        assert_eq!(decode(&[0xf0, 0x80]), Err(VarintError::Truncated));
        let full = enc(4328786160);
        assert_eq!(decode(&full[..full.len() - 1]), Err(VarintError::Truncated));
        // Only the number is consumed, whatever follows.
        assert_eq!(decode(&[0xf0, 0x00, 0xff]), Ok((240, 2)));
    }

    #[test]
    fn beyond_64_bits_is_refused() {
        // Eleven bytes.
        let mut long = vec![0xff; 10];
        long.push(0);
        assert_eq!(decode(&long), Err(VarintError::Overflow));
        // Ten bytes whose last byte shifts bits past bit 63.
        let mut big = vec![0xff; 9];
        big.push(0x7f);
        assert_eq!(decode(&big), Err(VarintError::Overflow));
        // One more in the last byte of u64::MAX's encoding adds 2^60: past 64 bits.
        let mut over = enc(u64::MAX);
        let last = over.last_mut().unwrap();
        assert!(*last < 0x7f);
        *last += 1;
        assert_eq!(decode(&over), Err(VarintError::Overflow));
    }

    #[test]
    fn reader_reads_in_sequence_without_consuming_on_failure() {
        let mut r = Reader::new(&[0x05, 0xf0, 0x00, 0, 0, 0, 7, 1, 2]);
        assert_eq!(r.varint(), Ok(5));
        assert_eq!(r.varint(), Ok(240));
        assert_eq!(r.u32be(), Some(7));
        assert_eq!(r.bytes(3), None);
        assert_eq!(r.bytes(u64::MAX), None);
        assert_eq!(r.bytes(2), Some(&[1u8, 2][..]));
        assert!(r.is_empty());
        assert_eq!(r.varint(), Err(VarintError::Truncated));
    }
}
