//! HAProxy's typed JSON for `show stat json` and `show info json`, so tools written against
//! HAProxy read lbha unchanged: every field carries its position, name, tags and typed value, and
//! empty fields are left out.

use super::parse::StatFilter;
use serde_json::{Value, json};

/// A value's type in HAProxy's typed output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    U32,
    S32,
    U64,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Str => "str",
            Ty::U32 => "u32",
            Ty::S32 => "s32",
            Ty::U64 => "u64",
        }
    }
}

/// HAProxy's field tags: origin, nature and scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tags(pub &'static str, pub &'static str, pub &'static str);

const KEY_NAME: Tags = Tags("Key", "Name", "Service");
const GAUGE: Tags = Tags("Metric", "Gauge", "Process");
const MAX: Tags = Tags("Metric", "Max", "Process");
const LIMIT: Tags = Tags("Config", "Limit", "Process");
const COUNTER: Tags = Tags("Metric", "Counter", "Process");
const RATE: Tags = Tags("Metric", "Rate", "Process");

/// Type and tags of each CSV column, in [`crate::stats::CSV_HEADER`]'s order (HAProxy 2.6's
/// `show stat typed`); the `-` separator before the modules' columns is no field of its own.
const COLUMNS: [(&str, Ty, Tags); crate::stats::csv::COLUMNS] = [
    ("pxname", Ty::Str, Tags("Key", "Name", "Service")),
    ("svname", Ty::Str, Tags("Key", "Name", "Service")),
    ("qcur", Ty::U32, GAUGE),
    ("qmax", Ty::U32, MAX),
    ("scur", Ty::U32, GAUGE),
    ("smax", Ty::U32, MAX),
    ("slim", Ty::U32, LIMIT),
    ("stot", Ty::U64, COUNTER),
    ("bin", Ty::U64, COUNTER),
    ("bout", Ty::U64, COUNTER),
    ("dreq", Ty::U64, COUNTER),
    ("dresp", Ty::U64, COUNTER),
    ("ereq", Ty::U64, COUNTER),
    ("econ", Ty::U64, COUNTER),
    ("eresp", Ty::U64, COUNTER),
    ("wretr", Ty::U64, COUNTER),
    ("wredis", Ty::U64, COUNTER),
    ("status", Ty::Str, Tags("Status", "Gauge", "Process")),
    ("weight", Ty::U32, Tags("Metric", "Avg", "Process")),
    ("act", Ty::U32, Tags("Status", "Gauge", "Process")),
    ("bck", Ty::U32, Tags("Status", "Gauge", "Process")),
    ("chkfail", Ty::U64, COUNTER),
    ("chkdown", Ty::U64, COUNTER),
    ("lastchg", Ty::U32, Tags("Metric", "Age", "Process")),
    ("downtime", Ty::U32, COUNTER),
    ("qlimit", Ty::U32, LIMIT),
    ("pid", Ty::U32, Tags("Key", "Gauge", "Process")),
    ("iid", Ty::U32, Tags("Key", "Gauge", "Service")),
    ("sid", Ty::U32, Tags("Key", "Gauge", "Service")),
    ("throttle", Ty::U32, Tags("Metric", "Avg", "Process")),
    ("lbtot", Ty::U64, COUNTER),
    ("tracked", Ty::Str, Tags("Config", "Name", "Service")),
    ("type", Ty::U32, Tags("Config", "Gauge", "Service")),
    ("rate", Ty::U32, RATE),
    ("rate_lim", Ty::U32, LIMIT),
    ("rate_max", Ty::U32, MAX),
    ("check_status", Ty::Str, Tags("Metric", "Output", "Process")),
    ("check_code", Ty::U32, Tags("Metric", "Output", "Process")),
    ("check_duration", Ty::U64, Tags("Metric", "Duration", "Process")),
    ("hrsp_1xx", Ty::U64, COUNTER),
    ("hrsp_2xx", Ty::U64, COUNTER),
    ("hrsp_3xx", Ty::U64, COUNTER),
    ("hrsp_4xx", Ty::U64, COUNTER),
    ("hrsp_5xx", Ty::U64, COUNTER),
    ("hrsp_other", Ty::U64, COUNTER),
    ("hanafail", Ty::U64, COUNTER),
    ("req_rate", Ty::U32, RATE),
    ("req_rate_max", Ty::U32, MAX),
    ("req_tot", Ty::U64, COUNTER),
    ("cli_abrt", Ty::U64, COUNTER),
    ("srv_abrt", Ty::U64, COUNTER),
    ("comp_in", Ty::U64, COUNTER),
    ("comp_out", Ty::U64, COUNTER),
    ("comp_byp", Ty::U64, COUNTER),
    ("comp_rsp", Ty::U64, COUNTER),
    ("lastsess", Ty::S32, Tags("Metric", "Age", "Process")),
    ("last_chk", Ty::Str, Tags("Metric", "Output", "Process")),
    ("last_agt", Ty::Str, Tags("Metric", "Output", "Process")),
    ("qtime", Ty::U32, Tags("Metric", "Avg", "Process")),
    ("ctime", Ty::U32, Tags("Metric", "Avg", "Process")),
    ("rtime", Ty::U32, Tags("Metric", "Avg", "Process")),
    ("ttime", Ty::U32, Tags("Metric", "Avg", "Process")),
    ("agent_status", Ty::Str, Tags("Metric", "Output", "Process")),
    ("agent_code", Ty::U32, Tags("Metric", "Output", "Process")),
    ("agent_duration", Ty::U64, Tags("Metric", "Duration", "Process")),
    ("check_desc", Ty::Str, Tags("Metric", "Output", "Process")),
    ("agent_desc", Ty::Str, Tags("Metric", "Output", "Process")),
    ("check_rise", Ty::U32, Tags("Config", "Gauge", "Service")),
    ("check_fall", Ty::U32, Tags("Config", "Gauge", "Service")),
    ("check_health", Ty::U32, Tags("Config", "Gauge", "Service")),
    ("agent_rise", Ty::U32, Tags("Config", "Gauge", "Service")),
    ("agent_fall", Ty::U32, Tags("Config", "Gauge", "Service")),
    ("agent_health", Ty::U32, Tags("Config", "Gauge", "Service")),
    ("addr", Ty::Str, Tags("Config", "Gauge", "Service")),
    ("cookie", Ty::Str, Tags("Config", "Name", "Service")),
    ("mode", Ty::Str, Tags("Config", "Gauge", "Service")),
    ("algo", Ty::Str, Tags("Config", "Gauge", "Service")),
    ("conn_rate", Ty::U32, RATE),
    ("conn_rate_max", Ty::U32, MAX),
    ("conn_tot", Ty::U64, COUNTER),
    ("intercepted", Ty::U64, COUNTER),
    ("dcon", Ty::U64, COUNTER),
    ("dses", Ty::U64, COUNTER),
    ("wrew", Ty::U64, COUNTER),
    ("connect", Ty::U64, COUNTER),
    ("reuse", Ty::U64, COUNTER),
    ("cache_lookups", Ty::U64, COUNTER),
    ("cache_hits", Ty::U64, COUNTER),
    ("srv_icur", Ty::U32, GAUGE),
    ("src_ilim", Ty::U32, Tags("Metric", "Limit", "Process")),
    ("qtime_max", Ty::U32, MAX),
    ("ctime_max", Ty::U32, MAX),
    ("rtime_max", Ty::U32, MAX),
    ("ttime_max", Ty::U32, MAX),
    ("eint", Ty::U64, COUNTER),
    ("idle_conn_cur", Ty::U32, GAUGE),
    ("safe_conn_cur", Ty::U32, GAUGE),
    ("used_conn_cur", Ty::U32, GAUGE),
    ("need_conn_est", Ty::U32, GAUGE),
    ("uweight", Ty::U32, Tags("Metric", "Avg", "Process")),
    ("agg_server_status", Ty::U32, GAUGE),
    ("agg_server_check_status", Ty::U32, GAUGE),
    ("agg_check_status", Ty::U32, GAUGE),
    ("-", Ty::Str, KEY_NAME),
    ("ssl_sess", Ty::U64, COUNTER),
    ("ssl_reused_sess", Ty::U64, COUNTER),
    ("ssl_failed_handshake", Ty::U64, COUNTER),
    ("h2_headers_rcvd", Ty::U64, COUNTER),
    ("h2_data_rcvd", Ty::U64, COUNTER),
    ("h2_settings_rcvd", Ty::U64, COUNTER),
    ("h2_rst_stream_rcvd", Ty::U64, COUNTER),
    ("h2_goaway_rcvd", Ty::U64, COUNTER),
    ("h2_detected_conn_protocol_errors", Ty::U64, COUNTER),
    ("h2_detected_strm_protocol_errors", Ty::U64, COUNTER),
    ("h2_rst_stream_resp", Ty::U64, COUNTER),
    ("h2_goaway_resp", Ty::U64, COUNTER),
    ("h2_open_connections", Ty::U64, GAUGE),
    ("h2_backend_open_streams", Ty::U64, GAUGE),
    ("h2_total_connections", Ty::U64, COUNTER),
    ("h2_backend_total_streams", Ty::U64, COUNTER),
    ("h1_open_connections", Ty::U64, GAUGE),
    ("h1_open_streams", Ty::U64, GAUGE),
    ("h1_total_connections", Ty::U64, COUNTER),
    ("h1_total_streams", Ty::U64, COUNTER),
    ("h1_bytes_in", Ty::U64, COUNTER),
    ("h1_bytes_out", Ty::U64, COUNTER),
    ("h1_spliced_bytes_in", Ty::U64, COUNTER),
    ("h1_spliced_bytes_out", Ty::U64, COUNTER),
];

const COL_PXNAME: usize = 0;
const COL_STATUS: usize = 17;
const COL_IID: usize = 27;
const COL_SID: usize = 28;
const COL_PID: usize = 26;
const COL_TYPE: usize = 32;

/// Keeps the rows `f` asks for. Rows are the unquoted fields of [`crate::stats::csv_rows`].
pub fn filter_rows(rows: Vec<Vec<String>>, f: &StatFilter) -> Vec<Vec<String>> {
    rows.into_iter()
        .filter(|r| {
            let kind = r.get(COL_TYPE).and_then(|t| t.parse::<u8>().ok());
            let bit = match kind {
                Some(0) => 1,
                Some(1) => 2,
                Some(2) => 4,
                Some(3) => 8,
                _ => 0,
            };
            let status = r.get(COL_STATUS).map(String::as_str).unwrap_or("");
            f.types & bit != 0
                && f.proxy.as_deref().is_none_or(|p| r.get(COL_PXNAME).is_some_and(|x| x == p))
                // HAProxy's `up` hides servers in maintenance and those down and not coming up.
                && !(bit == 4 && f.up_only && (status.starts_with("MAINT") || status == "DOWN" || status == "DOWN (agent)"))
                && !(bit == 4 && f.no_maint && status.starts_with("MAINT"))
        })
        .collect()
}

fn typed(ty: Ty, text: &str) -> Value {
    let v = match ty {
        Ty::Str => Value::from(text),
        Ty::U32 | Ty::U64 => match text.parse::<u64>() {
            Ok(n) => Value::from(n),
            // A figure that is not a number is shown as text rather than lost.
            Err(_) => return json!({"type": "str", "value": text}),
        },
        Ty::S32 => match text.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => return json!({"type": "str", "value": text}),
        },
    };
    json!({"type": ty.name(), "value": v})
}

/// `show stat json`: one array per row, one object per non-empty field.
pub fn stat_json(rows: &[Vec<String>]) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let num = |i: usize| r.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let obj_type = match num(COL_TYPE) {
                0 => "Frontend",
                1 => "Backend",
                2 => "Server",
                3 => "Listener",
                _ => "Unknown",
            };
            let fields: Vec<Value> = r
                .iter()
                .zip(COLUMNS.iter())
                .enumerate()
                .filter(|(i, (v, _))| !v.is_empty() && *i != crate::stats::csv::MODULES_AT)
                // HAProxy numbers the modules' fields on from its own, past the separator.
                .map(|(i, f)| (if i > crate::stats::csv::MODULES_AT { i - 1 } else { i }, f))
                .map(|(pos, (v, (name, ty, tags)))| {
                    json!({
                        "objType": obj_type,
                        "proxyId": num(COL_IID),
                        "id": num(COL_SID),
                        "field": {"pos": pos, "name": name},
                        "processNum": num(COL_PID).max(1),
                        "tags": {"origin": tags.0, "nature": tags.1, "scope": tags.2},
                        "value": typed(*ty, v),
                    })
                })
                .collect();
            Value::Array(fields)
        })
        .collect();
    Value::Array(rows)
}

/// One `show info` line.
#[derive(Debug, Clone, PartialEq)]
pub struct InfoField {
    pub name: &'static str,
    pub value: String,
    pub ty: Ty,
    pub tags: Tags,
}

impl InfoField {
    pub fn new(name: &'static str, value: impl ToString, ty: Ty, tags: Tags) -> Self {
        Self { name, value: value.to_string(), ty, tags }
    }
}

/// `show info`: `Name: value` lines.
pub fn info_text(fields: &[InfoField]) -> String {
    fields
        .iter()
        .filter(|f| !f.value.is_empty())
        .map(|f| format!("{}: {}\n", f.name, f.value.replace(['\n', '\r'], " ")))
        .collect()
}

/// `show info json`.
pub fn info_json(fields: &[InfoField]) -> Value {
    Value::Array(
        fields
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.value.is_empty())
            .map(|(pos, f)| {
                json!({
                    "field": {"pos": pos, "name": f.name},
                    "processNum": 1,
                    "tags": {"origin": f.tags.0, "nature": f.tags.1, "scope": f.tags.2},
                    "value": typed(f.ty, &f.value),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(px: &str, sv: &str, kind: u8, status: &str) -> Vec<String> {
        let mut r = vec![String::new(); crate::stats::csv::COLUMNS];
        r[0] = px.into();
        r[1] = sv.into();
        r[4] = "3".into();
        r[17] = status.into();
        r[26] = "1".into();
        r[32] = kind.to_string();
        r
    }

    #[test]
    fn columns_match_the_csv_header() {
        let names: Vec<&str> =
            crate::stats::CSV_HEADER.trim_start_matches("# ").trim_end_matches(',').split(',').collect();
        let ours: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
        assert_eq!(names, ours);
    }

    #[test]
    fn filters_by_proxy_type_and_state() {
        let rows = vec![
            row("web", "FRONTEND", 0, "OPEN"),
            row("web", "a", 2, "UP"),
            row("web", "b", 2, "MAINT"),
            row("web", "c", 2, "DOWN"),
            row("web", "BACKEND", 1, "UP"),
            row("db", "x", 2, "UP"),
        ];
        let names = |f: StatFilter| -> Vec<String> {
            filter_rows(rows.clone(), &f).into_iter().map(|r| format!("{}/{}", r[0], r[1])).collect()
        };
        assert_eq!(names(StatFilter::default()).len(), 6);
        assert_eq!(
            names(StatFilter { proxy: Some("web".into()), types: 4, ..StatFilter::default() }),
            ["web/a", "web/b", "web/c"]
        );
        assert_eq!(names(StatFilter { types: 4, up_only: true, ..StatFilter::default() }), ["web/a", "db/x"]);
        assert_eq!(
            names(StatFilter { proxy: Some("web".into()), no_maint: true, ..StatFilter::default() }),
            ["web/FRONTEND", "web/a", "web/c", "web/BACKEND"]
        );
        assert_eq!(names(StatFilter { types: 3, ..StatFilter::default() }), ["web/FRONTEND", "web/BACKEND"]);
    }

    #[test]
    fn stat_json_is_haproxy_typed() {
        let v = stat_json(&[row("web", "a", 2, "UP")]);
        let fields = v[0].as_array().unwrap();
        // Empty fields are left out, as HAProxy does.
        assert_eq!(fields.len(), 6);
        let scur = fields.iter().find(|f| f["field"]["name"] == "scur").unwrap();
        assert_eq!(
            *scur,
            json!({"objType": "Server", "proxyId": 0, "id": 0, "field": {"pos": 4, "name": "scur"},
                   "processNum": 1, "tags": {"origin": "Metric", "nature": "Gauge", "scope": "Process"},
                   "value": {"type": "u32", "value": 3}})
        );
        let px = &fields[0];
        assert_eq!(px["value"], json!({"type": "str", "value": "web"}));
    }

    #[test]
    fn info_forms() {
        let f = vec![
            InfoField::new("Name", "lbha", Ty::Str, Tags("Product", "Output", "Service")),
            InfoField::new("Last", "", Ty::U64, Tags("Key", "Output", "Process")),
            InfoField::new("Pid", 42, Ty::U32, Tags("Key", "Output", "Process")),
        ];
        assert_eq!(info_text(&f), "Name: lbha\nPid: 42\n");
        let j = info_json(&f);
        // Empty fields are left out; positions stay those of the full list.
        assert_eq!(j.as_array().unwrap().len(), 2);
        assert_eq!(j[1]["field"], json!({"pos": 2, "name": "Pid"}));
        assert_eq!(j[1]["value"], json!({"type": "u32", "value": 42}));
        assert_eq!(j[0]["tags"]["origin"], "Product");
    }
}
