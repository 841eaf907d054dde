//! The Data Plane API's runtime stick-table endpoints over the live tables.

mod api_support;
mod common;
use api_support::*;

const R: &str = "/v2/services/haproxy/runtime";

#[test]
fn stick_tables_and_entries() {
    let api = ApiLbha::start(
        "[[backend]]\nname = \"st\"\nstick_table = { type = \"ip\", size = 100, expire = \"5m\", store = [\"gpc0\", \"http_req_rate(10s)\"] }\n",
    );
    let (s, v) = api.json("GET", &format!("{R}/stick_tables"), None);
    assert_eq!(s, 200, "{v}");
    let t = &v.as_array().unwrap_or_else(|| panic!("{v}"))[0];
    assert_eq!(
        (t["name"].as_str(), t["type"].as_str(), t["size"].as_u64(), t["used"].as_u64()),
        (Some("st"), Some("ip"), Some(100), Some(0))
    );
    assert_eq!(t["fields"][1]["field"].as_str(), Some("http_req_rate"));
    assert_eq!(t["fields"][1]["period"].as_u64(), Some(10_000));
    let (s, _) = api.json("GET", &format!("{R}/stick_tables/nope"), None);
    assert_eq!(s, 404);

    api.lbha
        .ctl(&["set table st key 10.0.0.1 data.gpc0 3 data.http_req_rate 5", "set table st key 10.0.0.2 data.gpc0 1"]);
    let (s, v) = api.json("GET", &format!("{R}/stick_table_entries?stick_table=st"), None);
    assert_eq!(s, 200, "{v}");
    let keys: Vec<&str> = v.as_array().unwrap().iter().filter_map(|e| e["key"].as_str()).collect();
    assert_eq!(keys, ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(
        (v[0]["gpc0"].as_i64(), v[0]["http_req_rate"].as_i64(), v[0]["use"].as_u64()),
        (Some(3), Some(5), Some(0))
    );
    let (_, v) = api.json("GET", &format!("{R}/stick_table_entries?stick_table=st&filter=data.gpc0%20gt%202"), None);
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    let (_, v) = api.json("GET", &format!("{R}/stick_table_entries?stick_table=st&key=10.0.0.2"), None);
    assert_eq!(v[0]["gpc0"].as_i64(), Some(1), "{v}");
    let (s, _) = api.json("GET", &format!("{R}/stick_table_entries"), None);
    assert_eq!(s, 422, "stick_table is required");
    let (s, _) = api.json("GET", &format!("{R}/stick_table_entries?stick_table=st&filter=data.nope%20gt%202"), None);
    assert_eq!(s, 400);
}
