//! Decoded updates against HAProxy's `show table` dumps taken during the captures: for every
//! dumped entry, the last update for that table and key on the wire before the dump must hold the
//! same counters, server_key and, rebuilt with [`FreqCtr::from_wire`] at the message's time and
//! read at the dump's time, the same rates.

use super::*;

/// Key type and length of the captured configuration's tables; definitions that differ are
/// ignored by HAProxy (capture 07), and so are the updates behind them.
fn configured(table: &str) -> Option<(&'static str, usize)> {
    Some(match table {
        "be_src" => ("ip", 4),
        "be_cookie" => ("string", 33),
        "st_int" => ("integer", 4),
        "st_ipv6" => ("ipv6", 16),
        "st_bin" => ("binary", 8),
        _ => return None,
    })
}

struct Dump {
    epoch: f64,
    node: String,
    table: String,
    line: String,
}

fn dumps(name: &str) -> Vec<Dump> {
    let Ok(text) = std::fs::read_to_string(format!("{CAPTURE_DIR}{name}.show.txt")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let (mut epoch, mut node, mut table) = (0.0, String::new(), String::new());
    for line in text.lines() {
        if let Some(head) = line.strip_prefix("### ") {
            for w in head.split(' ') {
                if let Some(e) = w.strip_prefix("epoch=") {
                    epoch = e.parse().unwrap();
                } else if let Some(n) = w.strip_prefix("node=") {
                    node = n.to_owned();
                }
            }
        } else if let Some(t) = line.strip_prefix("# table: ") {
            table = t.split(',').next().unwrap().to_owned();
        } else if line.starts_with("0x") && line.contains(" key=") {
            out.push(Dump { epoch, node: node.clone(), table: table.clone(), line: line.to_owned() });
        }
    }
    out
}

/// Milliseconds on one clock for both the capture and the dumps.
fn ms(t: f64) -> u32 {
    (t * 1000.0).round() as u64 as u32
}

/// The value `field` (a `show table` column name) stands for in a decoded update.
fn lookup<'v>(seen: &'v Seen, field: &str) -> Option<(&'v Value<'static>, Option<usize>)> {
    let get = |t: DataType| seen.values.iter().find(|(vt, _)| *vt == t).map(|(_, v)| v);
    let indexed = |prefix: &str, suffix: &str| -> Option<usize> {
        field.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok()
    };
    // Arrays print as gpc0, gpc1, ... and gpc0_rate, ... (2.6 never stores them next to gpc0).
    if let Some(v) = get(DataType::GPC)
        && let Some(i) = indexed("gpc", "")
    {
        return Some((v, Some(i)));
    }
    if let Some(v) = get(DataType::GPC_RATE)
        && let Some(i) = indexed("gpc", "_rate")
    {
        return Some((v, Some(i)));
    }
    if let Some(v) = get(DataType::GPT)
        && let Some(i) = indexed("gpt", "")
    {
        return Some((v, Some(i)));
    }
    Some((get(DataType::from_name(field)?)?, None))
}

#[test]
fn decoded_updates_match_haproxy_show_table() {
    let (mut compared, mut rates) = (0, 0);
    for name in CAPTURES {
        let seen = check_capture(name);
        for d in dumps(name) {
            let mut fields = d.line.split(' ').skip(1).filter_map(|f| f.split_once('='));
            let key = fields.next().filter(|(k, _)| *k == "key").unwrap().1;
            let ctx = format!("{name} {} dump at {} of {} key {key}", d.node, d.epoch, d.table);
            let Some((_, key_len)) = configured(&d.table) else { continue };
            let Some(last) = seen
                .iter()
                .rev()
                .find(|s| s.time <= d.epoch && s.table == d.table && s.key == key && s.key_len == key_len)
            else {
                continue;
            };
            for (field, shown) in fields {
                let (base, period) = match field.split_once('(') {
                    Some((b, p)) => (b, Some(p.trim_end_matches(')').parse::<u32>().unwrap())),
                    None => (field, None),
                };
                if base == "server_key" {
                    assert_eq!(last.server_key.as_deref().unwrap_or("-"), shown, "{ctx}: server_key");
                    compared += 1;
                    continue;
                }
                let Some((value, idx)) = lookup(last, base) else { continue };
                let rate = match (value, idx) {
                    (Value::Rate(r), None) => Some(r),
                    (Value::RateArray(a), Some(i)) => a.get(i),
                    _ => None,
                };
                let got = match (value, idx) {
                    _ if rate.is_some() => {
                        let period = period.unwrap_or_else(|| panic!("{ctx}: {field} without period"));
                        let t = if idx.is_some() { DataType::GPC_RATE } else { DataType::from_name(base).unwrap() };
                        assert_eq!(last.periods.get(&t).copied(), Some(u64::from(period)), "{ctx}: period of {field}");
                        rates += 1;
                        i64::from(FreqCtr::from_wire(ms(last.time), rate.unwrap()).read(ms(d.epoch), period))
                    }
                    (Value::Uint(u), None) => *u as i64,
                    (Value::Signed(s), None) => *s,
                    (Value::UintArray(a), Some(i)) => a[i] as i64,
                    _ => panic!("{ctx}: {field} has an unexpected value {value:?}"),
                };
                if DataType::from_name(base).is_some_and(DataType::is_local) {
                    continue;
                }
                assert_eq!(got.to_string(), shown, "{ctx}: {field}");
                compared += 1;
            }
        }
    }
    assert!(compared > 1000, "only {compared} fields compared");
    assert!(rates > 200, "only {rates} rates compared");
}
