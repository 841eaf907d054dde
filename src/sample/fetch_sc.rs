//! Stick-counter fetches: `sc_*(N[,table])`, `sc0_*`/`sc1_*`/`sc2_*([table])`, `src_*([table])`
//! and `table_cnt`/`table_avl([table])`, as HAProxy 2.6 names and answers them.
//!
//! Parsing and the answer from an entry are pure; the proxy finds the entry (the stream's or
//! session's tracked one, or the client address looked up in a table) through
//! [`super::SampleContext::stick`]. HAProxy's answers: an untracked counter gives no sample
//! (`sc*_tracked` gives false); a key absent from the table gives 0; a data type the table does
//! not store gives no sample.

use super::ParseError;
use super::args::{Args, Call};
use super::value::{SmpType, Value};
use crate::peers::datatype::DataType;
use crate::stktable::{EntryMut, EntryView};

/// Whose entry the fetch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Tracked counter 0, 1 or 2 (the stream's, else the session's).
    Sc(u8),
    /// The client's address looked up in the table.
    Src,
    /// The table itself (`table_cnt`, `table_avl`).
    Table,
    /// The converter's input looked up in the table (`table_*` converters, `in_table`).
    Key,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A counter or rate as stored.
    Read(DataType),
    /// `kbytes_in`/`kbytes_out`: the byte counter over 1024.
    KBytes(DataType),
    GetGpc(usize),
    GpcRate(usize),
    GetGpt(usize),
    IncGpc(usize),
    ClrGpc(usize),
    /// `src_updt_conn_cnt`: a new connection counted for the client.
    UpdtConnCnt,
    Tracked,
    Trackers,
    Cnt,
    Avl,
    /// `in_table`: whether the key is in the table.
    InTable,
    /// `table_expire` / `table_idle`: milliseconds until the entry expires / since it was
    /// last touched, the default when the key is absent.
    Expire(Option<i64>),
    Idle(Option<i64>),
}

/// HAProxy's `table_*` converters by their name's tail: the `src_*` reads, some named otherwise.
fn conv_op(op: &str) -> Option<Op> {
    Some(match op {
        "gpc0" => Op::GetGpc(0),
        "gpc1" => Op::GetGpc(1),
        "gpt0" => Op::GetGpt(0),
        "server_id" => Op::Read(DataType::SERVER_ID),
        "trackers" => Op::Trackers,
        "get_gpc0" | "get_gpc1" | "get_gpt0" | "inc_gpc0" | "inc_gpc1" | "clr_gpc0" | "clr_gpc1" => return None,
        o => plain(o)?,
    })
}

/// `table_<type>(table)`, `table_gpc|gpc_rate|gpt(idx,table)`, `table_expire|idle(table[,default])`
/// and `in_table(table)`: `None` when the name is no table converter.
pub(super) fn parse_conv(a: &Args<'_, '_>, name: &str) -> Result<Option<StickFetch>, ParseError> {
    let (op, first) = match name.strip_prefix("table_") {
        _ if name == "in_table" => (Op::InTable, 0),
        None => return Ok(None),
        Some(o @ ("expire" | "idle")) => {
            a.count(1, 2)?;
            let d = a.get(1).filter(|d| !d.is_empty()).map(|_| a.sint(1)).transpose()?;
            (if o == "expire" { Op::Expire(d) } else { Op::Idle(d) }, 0)
        }
        Some(o @ ("gpc" | "gpc_rate" | "gpt")) => {
            a.count(2, 2)?;
            let i = a.sint(0)?;
            if !(0..i64::from(crate::stktable::def::MAX_ARRAY)).contains(&i) {
                return Err(a.err(Some(1), format!("array index must be 0 to {}", crate::stktable::def::MAX_ARRAY - 1)));
            }
            let i = i as usize;
            (
                if o == "gpc" {
                    Op::GetGpc(i)
                } else if o == "gpt" {
                    Op::GetGpt(i)
                } else {
                    Op::GpcRate(i)
                },
                1,
            )
        }
        Some(o) => match conv_op(o) {
            Some(op) => (op, 0),
            None => return Ok(None),
        },
    };
    if !matches!(op, Op::Expire(_) | Op::Idle(_)) {
        a.count(first + 1, first + 1)?;
    }
    let table = a.str(first)?;
    if table.is_empty() {
        return Err(a.err(Some(first + 1), "missing table name"));
    }
    Ok(Some(StickFetch { src: Source::Key, op, table: Some(table.to_string()) }))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickFetch {
    pub src: Source,
    pub op: Op,
    /// `None`: the counter's own table (`sc`), or the table of the proxy the rule is in.
    pub table: Option<String>,
}

/// Operations that take an array index as their first argument.
fn indexed(op: &str) -> Option<fn(usize) -> Op> {
    Some(match op {
        "get_gpc" => Op::GetGpc,
        "gpc_rate" => Op::GpcRate,
        "get_gpt" => Op::GetGpt,
        "inc_gpc" => Op::IncGpc,
        "clr_gpc" => Op::ClrGpc,
        _ => return None,
    })
}

fn plain(op: &str) -> Option<Op> {
    let dt = |n: &str| DataType::from_name(n).map(Op::Read);
    Some(match op {
        "bytes_in_rate" | "bytes_out_rate" | "conn_cnt" | "conn_cur" | "conn_rate" | "sess_cnt" | "sess_rate"
        | "http_req_cnt" | "http_req_rate" | "http_err_cnt" | "http_err_rate" | "http_fail_cnt" | "http_fail_rate" => {
            dt(op)?
        }
        "kbytes_in" => Op::KBytes(DataType::BYTES_IN_CNT),
        "kbytes_out" => Op::KBytes(DataType::BYTES_OUT_CNT),
        "get_gpc0" => Op::GetGpc(0),
        "get_gpc1" => Op::GetGpc(1),
        "gpc0_rate" => Op::GpcRate(0),
        "gpc1_rate" => Op::GpcRate(1),
        "get_gpt0" => Op::GetGpt(0),
        "inc_gpc0" => Op::IncGpc(0),
        "inc_gpc1" => Op::IncGpc(1),
        "clr_gpc0" => Op::ClrGpc(0),
        "clr_gpc1" => Op::ClrGpc(1),
        _ => return None,
    })
}

/// Whether `name` is a stick-counter fetch (so other keywords keep their own errors).
pub(super) fn is_stick(name: &str) -> bool {
    split(name).is_some()
}

/// `sc_http_req_rate` → (Sc(any), "http_req_rate"); `sc1_conn_cur` → (Sc(1), ..); `src_...`.
fn split(name: &str) -> Option<(Option<Source>, &str)> {
    let (src, op) = if let Some(op) = name.strip_prefix("sc_") {
        (None, op)
    } else if let Some(op) = name.strip_prefix("src_") {
        (Some(Source::Src), op)
    } else if let Some(op) = name.strip_prefix("table_") {
        return matches!(op, "cnt" | "avl").then_some((Some(Source::Table), op));
    } else {
        let rest = name.strip_prefix("sc")?;
        let (n, op) = rest.split_once('_')?;
        let n: u8 = n.parse::<u8>().ok().filter(|v: &u8| *v <= 2 && n.len() == 1)?;
        (Some(Source::Sc(n)), op)
    };
    let sc_only = matches!(op, "tracked" | "trackers");
    let known = plain(op).is_some() || indexed(op).is_some() || sc_only || op == "updt_conn_cnt";
    let ok = match src {
        Some(Source::Src) => known && !sc_only,
        _ => known && op != "updt_conn_cnt",
    };
    ok.then_some((src, op))
}

pub(super) fn parse(a: &Args<'_, '_>, call: &Call<'_>) -> Result<StickFetch, ParseError> {
    let Some((src, op)) = split(call.name) else { return Err(a.err(None, "unknown fetch method")) };
    let idx_fn = indexed(op);
    // Leading arguments: the array index, then (sc_ only) the counter number.
    let mut at = 0;
    let idx = match idx_fn {
        Some(_) => {
            let i = a.sint(0)?;
            if !(0..i64::from(crate::stktable::def::MAX_ARRAY)).contains(&i) {
                return Err(a.err(Some(1), format!("array index must be 0 to {}", crate::stktable::def::MAX_ARRAY - 1)));
            }
            at = 1;
            i as usize
        }
        None => 0,
    };
    let src = match src {
        Some(s) => s,
        None => {
            let n = a.sint(at)?;
            if !(0..=2).contains(&n) {
                return Err(a.err(Some(at + 1), "stick counter must be 0, 1 or 2"));
            }
            at += 1;
            Source::Sc(n as u8)
        }
    };
    a.count(at, at + 1)?;
    let table = a.get(at).filter(|t| !t.is_empty()).map(str::to_string);
    let op = match (op, idx_fn) {
        (_, Some(f)) => f(idx),
        ("tracked", _) => Op::Tracked,
        ("trackers", _) => Op::Trackers,
        ("updt_conn_cnt", _) => Op::UpdtConnCnt,
        ("cnt", _) => Op::Cnt,
        ("avl", _) => Op::Avl,
        (o, None) => plain(o).ok_or_else(|| a.err(None, "unknown fetch method"))?,
    };
    Ok(StickFetch { src, op, table })
}

impl StickFetch {
    pub fn out_type(&self) -> SmpType {
        if matches!(self.op, Op::Tracked | Op::InTable) { SmpType::Bool } else { SmpType::Sint }
    }

    /// Whether evaluating it changes the entry (`inc`, `clr`, `updt`).
    pub fn mutates(&self) -> bool {
        matches!(self.op, Op::IncGpc(_) | Op::ClrGpc(_) | Op::UpdtConnCnt)
    }

    /// Whether a `src_*` form creates the client's entry when absent (HAProxy's
    /// `smp_create_src_stkctr`).
    pub fn creates(&self) -> bool {
        self.src == Source::Src && self.mutates()
    }

    /// The answer for a counter nothing tracks.
    pub fn untracked(&self) -> Option<Value> {
        (self.op == Op::Tracked).then_some(Value::Bool(false))
    }

    /// `table_cnt` / `table_avl` from the table's size and use.
    pub fn table_stat(&self, len: usize, size: usize) -> Option<Value> {
        match self.op {
            Op::Cnt => Some(Value::Sint(len as i64)),
            Op::Avl => Some(Value::Sint(size.saturating_sub(len) as i64)),
            _ => None,
        }
    }

    /// The answer when the key is not in the table.
    fn absent(&self) -> Option<Value> {
        Some(match self.op {
            Op::Tracked => Value::Bool(self.src != Source::Src),
            Op::InTable => Value::Bool(false),
            Op::Expire(d) | Op::Idle(d) => Value::Sint(d?),
            _ => Value::Sint(0),
        })
    }

    /// The answer from the entry found (`None`: the key is not in the table).
    pub fn eval(&self, e: Option<&mut EntryMut<'_>>) -> Option<Value> {
        let Some(e) = e else { return self.absent() };
        let n = |v: Option<u32>| v.map(|v| Value::Sint(i64::from(v)));
        match self.op {
            Op::IncGpc(i) => n(e.inc_gpc(i)),
            Op::ClrGpc(i) => n(e.clr_gpc(i)),
            Op::UpdtConnCnt => {
                e.add(DataType::CONN_CNT, 0, 1).then(|| e.view().read(DataType::CONN_CNT, 0)).flatten().map(Value::Sint)
            }
            _ => self.read(Some(e.view())),
        }
    }

    /// Whether the fetch changes the entry it reads (`sc_inc_gpc0`, ...); the others can be
    /// answered by [`Self::read`].
    pub fn writes(&self) -> bool {
        matches!(self.op, Op::IncGpc(_) | Op::ClrGpc(_) | Op::UpdtConnCnt)
    }

    /// [`Self::eval`] of a fetch that does not write.
    pub fn read(&self, e: Option<EntryView<'_>>) -> Option<Value> {
        let Some(e) = e else { return self.absent() };
        let n = |v: Option<u32>| v.map(|v| Value::Sint(i64::from(v)));
        match self.op {
            Op::Read(dt) => e.read(dt, 0).map(Value::Sint),
            Op::KBytes(dt) => e.read(dt, 0).map(|v| Value::Sint(v >> 10)),
            Op::GetGpc(i) => n(e.gpc(i)),
            Op::GpcRate(i) => n(e.gpc_rate(i)),
            Op::GetGpt(i) => n(e.gpt(i)),
            Op::Tracked => Some(Value::Bool(true)),
            Op::Trackers => Some(Value::Sint(i64::from(e.use_count()))),
            Op::Cnt | Op::Avl => None,
            Op::InTable => Some(Value::Bool(true)),
            Op::Expire(_) => Some(Value::Sint(e.expires_in() as i64)),
            // As HAProxy: the table's expiry less what is left of the entry's.
            Op::Idle(_) => None,
            // Writers: answered by `eval`.
            Op::IncGpc(_) | Op::ClrGpc(_) | Op::UpdtConnCnt => None,
        }
    }

    /// [`Self::eval`] for a converter: `table_idle` also needs the table's `expire` (ms).
    pub fn eval_key(&self, e: Option<&mut EntryMut<'_>>, table_expire: u64) -> Option<Value> {
        match (self.op, e) {
            (Op::Idle(_), Some(e)) => Some(Value::Sint(table_expire.saturating_sub(e.view().expires_in()) as i64)),
            (_, e) => self.eval(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Fetch, SampleExpr};
    use crate::stktable::def::parse_store;
    use crate::stktable::{KeyKind, TKey, Table, TableDef};

    fn sf(text: &str) -> StickFetch {
        match SampleExpr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")).fetch {
            Fetch::Stick(s) => *s,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn table(store: &[&str]) -> Table {
        let store: Vec<String> = store.iter().map(|s| s.to_string()).collect();
        Table::new(TableDef {
            name: "t".into(),
            key: KeyKind::Ip,
            size: 10,
            expire: None,
            nopurge: false,
            peers: None,
            store: parse_store(&store).unwrap(),
        })
    }

    #[test]
    fn every_form_of_haproxy_names() {
        let s = sf("sc_http_req_rate(0)");
        assert_eq!((s.src, s.op, s.table), (Source::Sc(0), Op::Read(DataType::HTTP_REQ_RATE), None));
        let s = sf("sc2_conn_cur(other)");
        assert_eq!((s.src, s.op, s.table.as_deref()), (Source::Sc(2), Op::Read(DataType::CONN_CUR), Some("other")));
        let s = sf("sc_get_gpc(3,1,t)");
        assert_eq!((s.src, s.op, s.table.as_deref()), (Source::Sc(1), Op::GetGpc(3), Some("t")));
        assert_eq!(sf("src_conn_cur").src, Source::Src);
        assert_eq!(sf("src_get_gpt(2)").op, Op::GetGpt(2));
        assert_eq!(sf("src_inc_gpc0(t)").table.as_deref(), Some("t"));
        assert_eq!(sf("sc0_get_gpc0").op, Op::GetGpc(0));
        assert_eq!(sf("sc1_gpc1_rate").op, Op::GpcRate(1));
        assert_eq!(sf("sc0_kbytes_out").op, Op::KBytes(DataType::BYTES_OUT_CNT));
        assert_eq!(sf("sc0_tracked").out_type(), SmpType::Bool);
        assert_eq!(sf("table_avl").op, Op::Avl);
        assert_eq!(sf("table_cnt(t)").table.as_deref(), Some("t"));
        assert_eq!(sf("src_updt_conn_cnt").op, Op::UpdtConnCnt);
        for bad in
            ["sc_conn_cur", "sc_conn_cur(3)", "sc3_conn_cur", "src_tracked", "sc0_updt_conn_cnt", "sc_get_gpc(0)"]
        {
            assert!(SampleExpr::parse(bad).is_err(), "{bad}");
        }
        assert!(SampleExpr::parse("sc0_conn_cur(a,b)").is_err());
        assert!(SampleExpr::parse("sc_get_gpc(100,0)").is_err());
        assert!(SampleExpr::parse("sc0_bogus").is_err());
        assert!(SampleExpr::parse("table_trackers(t)").is_err(), "not a 2.6 fetch of lbha");
    }

    #[test]
    fn answers_as_haproxy() {
        let mut t = table(&["conn_cur", "http_req_rate(10s)", "gpc0", "bytes_in_cnt"]);
        let k = TKey::Ip([127, 0, 0, 1]);
        {
            let mut e = t.touch(&k, 1000).unwrap();
            e.conn_open();
            e.inc_http_req();
            e.inc_http_req();
            e.add_bytes_in(3000);
            e.acquire();
        }
        let mut e = t.get_mut(&k, 1500).unwrap();
        assert_eq!(sf("sc_http_req_rate(0)").eval(Some(&mut e)), Some(Value::Sint(2)));
        assert_eq!(sf("sc0_conn_cur").eval(Some(&mut e)), Some(Value::Sint(1)));
        assert_eq!(sf("sc0_kbytes_in").eval(Some(&mut e)), Some(Value::Sint(2)));
        assert_eq!(sf("sc0_trackers").eval(Some(&mut e)), Some(Value::Sint(1)));
        assert_eq!(sf("sc0_conn_cnt").eval(Some(&mut e)), None, "not stored: no sample");
        assert_eq!(sf("sc0_get_gpt0").eval(Some(&mut e)), None);
        assert_eq!(sf("sc0_inc_gpc0").eval(Some(&mut e)), Some(Value::Sint(1)));
        assert_eq!(sf("sc0_inc_gpc0").eval(Some(&mut e)), Some(Value::Sint(2)));
        assert_eq!(sf("sc0_get_gpc0").eval(Some(&mut e)), Some(Value::Sint(2)));
        assert_eq!(sf("sc0_clr_gpc0").eval(Some(&mut e)), Some(Value::Sint(2)), "the value before clearing");
        assert_eq!(sf("sc0_get_gpc0").eval(Some(&mut e)), Some(Value::Sint(0)));
        assert_eq!(sf("sc0_tracked").eval(Some(&mut e)), Some(Value::Bool(true)));
        // A key absent from the table reads 0; an untracked counter gives nothing.
        assert_eq!(sf("src_conn_cur").eval(None), Some(Value::Sint(0)));
        assert_eq!(sf("sc0_conn_cur").untracked(), None);
        assert_eq!(sf("sc0_tracked").untracked(), Some(Value::Bool(false)));
        assert_eq!(sf("table_avl").table_stat(3, 10), Some(Value::Sint(7)));
        assert_eq!(sf("table_cnt").table_stat(3, 10), Some(Value::Sint(3)));
        assert!(sf("src_inc_gpc0").creates() && !sf("sc0_inc_gpc0").creates() && !sf("src_get_gpc0").creates());
    }

    #[test]
    fn array_types_by_index() {
        let mut t = table(&["gpc(3)", "gpt(2)", "gpc_rate(3,10s)"]);
        let k = TKey::Ip([127, 0, 0, 2]);
        let mut e = t.touch(&k, 10).unwrap();
        assert_eq!(sf("sc_inc_gpc(2,0)").eval(Some(&mut e)), Some(Value::Sint(1)));
        assert_eq!(sf("sc_get_gpc(2,0)").eval(Some(&mut e)), Some(Value::Sint(1)));
        assert_eq!(sf("sc_gpc_rate(2,0)").eval(Some(&mut e)), Some(Value::Sint(1)));
        assert_eq!(sf("sc0_get_gpc0").eval(Some(&mut e)), Some(Value::Sint(0)), "gpc0 reads gpc[0] in 2.6");
        assert_eq!(sf("sc_get_gpt(1,0)").eval(Some(&mut e)), Some(Value::Sint(0)));
        assert_eq!(sf("sc_get_gpt(2,0)").eval(Some(&mut e)), None, "past the array");
    }
}

#[cfg(test)]
mod conv_tests {
    use super::*;
    use crate::sample::SampleExpr;
    use crate::sample::conv::Converter;
    use crate::stktable::def::parse_store;
    use crate::stktable::{KeyKind, TKey, Table, TableDef};

    fn tc(text: &str) -> StickFetch {
        let e = SampleExpr::parse(&format!("req.hdr(k),{text}")).unwrap_or_else(|e| panic!("{text}: {e}"));
        match e.convs.into_iter().next() {
            Some(Converter::Table(f)) => *f,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn every_table_converter_of_haproxy_parses() {
        let read = |n: &str| DataType::from_name(n).map(Op::Read).unwrap();
        for (text, op) in [
            ("table_bytes_in_rate(t)", read("bytes_in_rate")),
            ("table_bytes_out_rate(t)", read("bytes_out_rate")),
            ("table_conn_cnt(t)", read("conn_cnt")),
            ("table_conn_cur(t)", read("conn_cur")),
            ("table_conn_rate(t)", read("conn_rate")),
            ("table_sess_cnt(t)", read("sess_cnt")),
            ("table_sess_rate(t)", read("sess_rate")),
            ("table_http_req_cnt(t)", read("http_req_cnt")),
            ("table_http_req_rate(t)", read("http_req_rate")),
            ("table_http_err_cnt(t)", read("http_err_cnt")),
            ("table_http_err_rate(t)", read("http_err_rate")),
            ("table_http_fail_cnt(t)", read("http_fail_cnt")),
            ("table_http_fail_rate(t)", read("http_fail_rate")),
            ("table_server_id(t)", Op::Read(DataType::SERVER_ID)),
            ("table_kbytes_in(t)", Op::KBytes(DataType::BYTES_IN_CNT)),
            ("table_kbytes_out(t)", Op::KBytes(DataType::BYTES_OUT_CNT)),
            ("table_gpc0(t)", Op::GetGpc(0)),
            ("table_gpc1(t)", Op::GetGpc(1)),
            ("table_gpc0_rate(t)", Op::GpcRate(0)),
            ("table_gpc1_rate(t)", Op::GpcRate(1)),
            ("table_gpt0(t)", Op::GetGpt(0)),
            ("table_gpc(2,t)", Op::GetGpc(2)),
            ("table_gpc_rate(1,t)", Op::GpcRate(1)),
            ("table_gpt(3,t)", Op::GetGpt(3)),
            ("table_trackers(t)", Op::Trackers),
            ("in_table(t)", Op::InTable),
            ("table_expire(t)", Op::Expire(None)),
            ("table_idle(t,-1)", Op::Idle(Some(-1))),
        ] {
            let f = tc(text);
            assert_eq!((f.src, f.op, f.table.as_deref()), (Source::Key, op, Some("t")), "{text}");
        }
        assert_eq!(tc("in_table(t)").out_type(), SmpType::Bool);
        for bad in [
            "table_conn_cur",
            "table_conn_cur(t,u)",
            "table_gpc(t)",
            "table_gpc(100,t)",
            "table_get_gpc0(t)",
            "table_inc_gpc0(t)",
            "table_cnt(t)",
            "table_updt_conn_cnt(t)",
            "table_expire(t,x)",
        ] {
            assert!(SampleExpr::parse(&format!("req.hdr(k),{bad}")).is_err(), "{bad}");
        }
        let e = SampleExpr::parse("src,table_conn_cur(a),add(1),in_table(b)").unwrap();
        assert_eq!(e.conv_tables().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn answers_by_key_as_haproxy() {
        let store: Vec<String> = ["conn_cur", "gpc0", "http_req_rate(10s)"].iter().map(|s| s.to_string()).collect();
        let kind = KeyKind::String { len: 32 };
        let mut t = Table::new(TableDef {
            name: "t".into(),
            key: kind,
            size: 10,
            expire: Some(std::time::Duration::from_secs(60)),
            nopurge: false,
            peers: None,
            store: parse_store(&store).unwrap(),
        });
        let k = crate::stktable::track::key_of(&Value::Str(b"alice".to_vec()), kind).unwrap();
        assert_eq!(k, TKey::from_bytes(b"alice", kind));
        {
            let mut e = t.touch(&k, 1000).unwrap();
            e.conn_open();
            e.inc_http_req();
            e.inc_gpc(0);
        }
        let mut e = t.get_mut(&k, 11_000).unwrap();
        assert_eq!(tc("table_conn_cur(t)").eval_key(Some(&mut e), 60_000), Some(Value::Sint(1)));
        assert_eq!(tc("table_http_req_rate(t)").eval_key(Some(&mut e), 60_000), Some(Value::Sint(1)));
        assert_eq!(tc("table_gpc0(t)").eval_key(Some(&mut e), 60_000), Some(Value::Sint(1)));
        assert_eq!(tc("in_table(t)").eval_key(Some(&mut e), 60_000), Some(Value::Bool(true)));
        assert_eq!(tc("table_conn_cnt(t)").eval_key(Some(&mut e), 60_000), None, "not stored");
        let exp = tc("table_expire(t)").eval_key(Some(&mut e), 60_000);
        let idle = tc("table_idle(t)").eval_key(Some(&mut e), 60_000);
        match (exp, idle) {
            (Some(Value::Sint(x)), Some(Value::Sint(i))) => {
                assert_eq!(x + i, 60_000, "left + idle = the table's expire")
            }
            other => panic!("{other:?}"),
        }
        // Absent: 0, false, or the default (none without one).
        assert_eq!(tc("table_conn_cur(t)").eval_key(None, 60_000), Some(Value::Sint(0)));
        assert_eq!(tc("in_table(t)").eval_key(None, 60_000), Some(Value::Bool(false)));
        assert_eq!(tc("table_expire(t,-1)").eval_key(None, 60_000), Some(Value::Sint(-1)));
        assert_eq!(tc("table_idle(t)").eval_key(None, 60_000), None);
    }
}
