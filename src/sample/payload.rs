//! `req.payload_lv` / `res.payload_lv(off1,len[,off2])`: a length-prefixed block of a raw
//! buffer, as HAProxy's `smp_fetch_payload_lv` reads it. Pure, so content inspection can ask
//! whether more bytes could still make it match.

/// The arguments, checked at load as HAProxy's `val_payload_lv` checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lv {
    /// Where the length is.
    len_offset: usize,
    /// How many big-endian bytes it takes.
    len_size: usize,
    /// Where the block starts: `None` just after the length.
    body: Option<Offset>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offset {
    /// `off2` as written (a negative one never matches, as in HAProxy).
    Absolute(i64),
    /// `+N` / `-N`: from just after the length.
    Relative(i64),
}

/// What the buffer gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'a> {
    Block(&'a [u8]),
    /// Not all there yet: more bytes may make it (HAProxy's `SMP_F_MAY_CHANGE`).
    Short,
    /// A zero length: this never matches, whatever comes.
    Never,
}

impl Lv {
    /// HAProxy's errors, word for word.
    pub fn new(len_offset: i64, len_size: i64, off2: Option<&str>) -> Result<Lv, String> {
        if len_offset < 0 {
            return Err("payload offset1 must be positive".into());
        }
        if len_size == 0 {
            return Err("payload length must be > 0".into());
        }
        if len_size < 0 {
            return Err("payload length must not be negative".into());
        }
        let body = match off2 {
            None => None,
            Some(s) => {
                let (n, used) = super::value::read_int64(s.as_bytes());
                if used != s.len() {
                    return Err("payload offset2 is not a number".into());
                }
                if len_offset.saturating_add(len_size).saturating_add(n) < 0 {
                    return Err("payload offset2 too negative".into());
                }
                Some(if s.starts_with(['+', '-']) { Offset::Relative(n) } else { Offset::Absolute(n) })
            }
        };
        Ok(Lv { len_offset: len_offset as usize, len_size: len_size as usize, body })
    }

    pub fn extract<'a>(&self, p: &'a [u8]) -> Found<'a> {
        let after_len = self.len_offset.saturating_add(self.len_size);
        let Some(len_bytes) = p.get(self.len_offset..after_len) else { return Found::Short };
        // An `unsigned int` in HAProxy: a longer length field keeps its low 32 bits.
        let size = len_bytes.iter().fold(0u32, |n, &b| n.wrapping_shl(8).wrapping_add(b as u32)) as usize;
        let start = match self.body {
            None => Some(after_len),
            Some(Offset::Relative(n)) => after_len.checked_add_signed(n as isize),
            Some(Offset::Absolute(n)) => usize::try_from(n).ok(),
        };
        let Some(start) = start else { return Found::Never };
        if size == 0 {
            return Found::Never;
        }
        match start.checked_add(size) {
            None => Found::Never,
            Some(end) => p.get(start..end).map_or(Found::Short, Found::Block),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_follows_its_length_or_sits_where_off2_says() {
        let lv = Lv::new(0, 1, None).unwrap();
        assert_eq!(lv.extract(b"\x03abcdef"), Found::Block(b"abc"));
        assert_eq!(lv.extract(b"\x03ab"), Found::Short, "two of three bytes: may still come");
        assert_eq!(lv.extract(b""), Found::Short);
        assert_eq!(lv.extract(b"\x00abc"), Found::Never);
        let two = Lv::new(1, 2, None).unwrap();
        assert_eq!(two.extract(b"x\x00\x02hi!"), Found::Block(b"hi"), "big-endian 2-byte length");
        let rel = Lv::new(0, 1, Some("+1")).unwrap();
        assert_eq!(rel.extract(b"\x02xyz"), Found::Block(b"yz"));
        let back = Lv::new(2, 1, Some("-3")).unwrap();
        assert_eq!(back.extract(b"ab\x02"), Found::Block(b"ab"), "relative, before the length");
        let abs = Lv::new(0, 1, Some("4")).unwrap();
        assert_eq!(abs.extract(b"\x02xyzAB"), Found::Block(b"AB"));
    }

    #[test]
    fn arguments_are_refused_as_haproxy_refuses_them() {
        assert_eq!(Lv::new(0, 0, None).unwrap_err(), "payload length must be > 0");
        assert_eq!(Lv::new(-1, 1, None).unwrap_err(), "payload offset1 must be positive");
        assert_eq!(Lv::new(1, 1, Some("x")).unwrap_err(), "payload offset2 is not a number");
        assert_eq!(Lv::new(1, 1, Some("-5")).unwrap_err(), "payload offset2 too negative");
        assert!(Lv::new(1, 1, Some("-2")).is_ok());
    }
}
