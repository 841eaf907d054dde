//! Stick-table data types as HAProxy 2.6 numbers them on the wire (peers.md §7): bit n of a table
//! definition's bitmask is type n, and update values follow in ascending id order.

/// How a data type's value travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// A C `int` widened to 64 bits: negative values take ten bytes.
    Signed,
    /// A 32-bit counter as one varint.
    Uint,
    /// A 64-bit counter as one varint.
    Ull,
    /// A frequency counter: elapsed ms in the current period, current count, previous count.
    Rate,
    /// A per-session dictionary reference (server_key).
    Dict,
    /// `n` 32-bit counters; `n` comes from the definition.
    UintArray,
    /// `n` frequency counters sharing one period.
    RateArray,
}

/// One of the 25 data types of HAProxy 2.6 (ids 0 to 24).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataType(u8);

/// (name, encoding, local-only) per id; local-only values are sent but a 2.6 receiver keeps its own.
const TYPES: [(&str, Encoding, bool); 25] = [
    ("server_id", Encoding::Signed, false),
    ("gpt0", Encoding::Uint, false),
    ("gpc0", Encoding::Uint, false),
    ("gpc0_rate", Encoding::Rate, false),
    ("conn_cnt", Encoding::Uint, false),
    ("conn_rate", Encoding::Rate, false),
    ("conn_cur", Encoding::Uint, true),
    ("sess_cnt", Encoding::Uint, false),
    ("sess_rate", Encoding::Rate, false),
    ("http_req_cnt", Encoding::Uint, false),
    ("http_req_rate", Encoding::Rate, false),
    ("http_err_cnt", Encoding::Uint, false),
    ("http_err_rate", Encoding::Rate, false),
    ("bytes_in_cnt", Encoding::Ull, false),
    ("bytes_in_rate", Encoding::Rate, false),
    ("bytes_out_cnt", Encoding::Ull, false),
    ("bytes_out_rate", Encoding::Rate, false),
    ("gpc1", Encoding::Uint, false),
    ("gpc1_rate", Encoding::Rate, false),
    ("server_key", Encoding::Dict, false),
    ("http_fail_cnt", Encoding::Uint, false),
    ("http_fail_rate", Encoding::Rate, false),
    ("gpt", Encoding::UintArray, false),
    ("gpc", Encoding::UintArray, false),
    ("gpc_rate", Encoding::RateArray, false),
];

/// Number of data types HAProxy 2.6 knows; bitmask bits at or above it are not decodable.
pub const COUNT: u8 = TYPES.len() as u8;

/// Bits of the data types HAProxy 2.6 knows.
pub const KNOWN_MASK: u64 = (1 << COUNT) - 1;

impl DataType {
    pub const SERVER_ID: DataType = DataType(0);
    pub const GPT0: DataType = DataType(1);
    pub const GPC0: DataType = DataType(2);
    pub const GPC0_RATE: DataType = DataType(3);
    pub const CONN_CNT: DataType = DataType(4);
    pub const CONN_RATE: DataType = DataType(5);
    pub const CONN_CUR: DataType = DataType(6);
    pub const SESS_CNT: DataType = DataType(7);
    pub const SESS_RATE: DataType = DataType(8);
    pub const HTTP_REQ_CNT: DataType = DataType(9);
    pub const HTTP_REQ_RATE: DataType = DataType(10);
    pub const HTTP_ERR_CNT: DataType = DataType(11);
    pub const HTTP_ERR_RATE: DataType = DataType(12);
    pub const BYTES_IN_CNT: DataType = DataType(13);
    pub const BYTES_IN_RATE: DataType = DataType(14);
    pub const BYTES_OUT_CNT: DataType = DataType(15);
    pub const BYTES_OUT_RATE: DataType = DataType(16);
    pub const GPC1: DataType = DataType(17);
    pub const GPC1_RATE: DataType = DataType(18);
    pub const SERVER_KEY: DataType = DataType(19);
    pub const HTTP_FAIL_CNT: DataType = DataType(20);
    pub const HTTP_FAIL_RATE: DataType = DataType(21);
    pub const GPT: DataType = DataType(22);
    pub const GPC: DataType = DataType(23);
    pub const GPC_RATE: DataType = DataType(24);

    /// The type with wire id `id`, if HAProxy 2.6 has it.
    pub fn from_id(id: u64) -> Option<DataType> {
        (id < u64::from(COUNT)).then_some(DataType(id as u8))
    }

    /// The type named `name` as in a `store` line or `data.<name>` (`gpc`, not `gpc(2)`).
    pub fn from_name(name: &str) -> Option<DataType> {
        TYPES.iter().position(|t| t.0 == name).map(|i| DataType(i as u8))
    }

    pub fn id(self) -> u8 {
        self.0
    }

    pub fn bit(self) -> u64 {
        1 << self.0
    }

    pub fn name(self) -> &'static str {
        TYPES[usize::from(self.0)].0
    }

    pub fn encoding(self) -> Encoding {
        TYPES[usize::from(self.0)].1
    }

    /// The receiver keeps its own value (conn_cur): what a peer sends is decoded and dropped.
    pub fn is_local(self) -> bool {
        TYPES[usize::from(self.0)].2
    }

    pub fn is_array(self) -> bool {
        matches!(self.encoding(), Encoding::UintArray | Encoding::RateArray)
    }

    /// `bytes_in_*` and `bytes_out_*`.
    pub fn counts_bytes(self) -> bool {
        (Self::BYTES_IN_CNT.0..=Self::BYTES_OUT_RATE.0).contains(&self.0)
    }

    pub fn is_rate(self) -> bool {
        matches!(self.encoding(), Encoding::Rate | Encoding::RateArray)
    }

    /// Whether a table definition carries a parameter group for this type (count and/or period).
    pub fn has_params(self) -> bool {
        self.is_array() || self.is_rate()
    }

    /// The known types whose bits are set in `mask`, in wire order.
    pub fn in_mask(mask: u64) -> impl Iterator<Item = DataType> {
        (0..COUNT).filter(move |i| mask & (1 << i) != 0).map(DataType)
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_match_haproxy_2_6() {
        assert_eq!(COUNT, 25);
        assert_eq!(DataType::from_name("server_id"), Some(DataType::SERVER_ID));
        assert_eq!(DataType::from_name("bytes_out_cnt").map(DataType::id), Some(15));
        assert_eq!(DataType::from_name("server_key").map(DataType::id), Some(19));
        assert_eq!(DataType::from_name("gpc_rate").map(DataType::id), Some(24));
        assert_eq!(DataType::from_name("glitch_cnt"), None);
        assert_eq!(DataType::from_id(25), None);
        for i in 0..COUNT {
            let t = DataType::from_id(u64::from(i)).unwrap();
            assert_eq!(DataType::from_name(t.name()), Some(t));
        }
    }

    /// be_src's bitmask 0x82677 from capture 01 #13: bits 0,1,2,4,5,6,9,10,13,19.
    #[test]
    fn mask_iterates_in_wire_order() {
        let ids: Vec<u8> = DataType::in_mask(0x82677).map(DataType::id).collect();
        assert_eq!(ids, [0, 1, 2, 4, 5, 6, 9, 10, 13, 19]);
        let with_params: Vec<u8> =
            DataType::in_mask(0x1800200 | 0x20).filter(|t| t.has_params()).map(DataType::id).collect();
        assert_eq!(with_params, [5, 23, 24]);
        assert!(DataType::CONN_CUR.is_local());
        assert_eq!(DataType::in_mask(1 << 25).count(), 0);
    }
}
