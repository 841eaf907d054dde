use super::*;
use crate::stktable::KeyKind;
use crate::stktable::def::{TableDef, parse_store};
use std::time::Duration;

fn table(name: &str, kind: KeyKind, size: usize, expire: Option<u64>, store: &str) -> Table {
    let items = crate::stktable::def::split_store(store);
    Table::new(TableDef {
        name: name.into(),
        key: kind,
        size,
        expire: expire.map(Duration::from_secs),
        nopurge: false,
        peers: None,
        store: parse_store(&items).unwrap(),
    })
}

fn cmd(action: Action, line: &str) -> Result<TableCmd, String> {
    parse(action, &line.split_whitespace().collect::<Vec<_>>())
}

fn run_line(t: &mut Table, action: Action, line: &str, now: u64) -> Result<String, String> {
    run(&cmd(action, line)?, t, now)
}

/// Entry addresses differ from run to run: replace them as the interop test does.
fn strip_addr(s: &str) -> String {
    s.lines()
        .map(|l| match l.split_once(": key=") {
            Some((_, rest)) => format!("0x: key={rest}"),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const FE_STORE: &str = "gpc0,gpc1,gpt0,conn_cnt,conn_cur,conn_rate(10s),sess_cnt,sess_rate(10s),http_req_cnt,http_req_rate(10s),http_err_cnt,http_err_rate(10s),bytes_in_cnt,bytes_in_rate(1m),bytes_out_cnt,bytes_out_rate(1m),gpc0_rate(10s),gpc1_rate(10s),server_id";

/// Lines taken from HAProxy 2.6.12 for the same commands on the same table.
#[test]
fn output_matches_haproxy_2_6() {
    let mut t = table("fe", KeyKind::Ip, 100, Some(300), FE_STORE);
    assert_eq!(
        run_line(&mut t, Action::Set, "fe key 127.0.0.1 data.gpc0 5 data.conn_rate 7 data.server_id 3", 0),
        Ok(String::new())
    );
    let out = run_line(&mut t, Action::Show, "fe", 0).unwrap();
    assert_eq!(
        strip_addr(&out),
        "# table: fe, type: ip, size:100, used:1\n0x: key=127.0.0.1 use=0 exp=300000 server_id=3 gpt0=0 gpc0=5 gpc0_rate(10000)=0 conn_cnt=0 conn_rate(10000)=7 conn_cur=0 sess_cnt=0 sess_rate(10000)=0 http_req_cnt=0 http_req_rate(10000)=0 http_err_cnt=0 http_err_rate(10000)=0 bytes_in_cnt=0 bytes_in_rate(60000)=0 bytes_out_cnt=0 bytes_out_rate(60000)=0 gpc1=0 gpc1_rate(10000)=0"
    );
    assert!(out.starts_with("# table") && out.lines().nth(1).unwrap().starts_with("0x"));

    let mut a = table("st_int", KeyKind::Integer, 1024, Some(300), "http_req_cnt,gpc(2),gpc_rate(2,10s),gpt(2)");
    run_line(&mut a, Action::Set, "st_int key 9 data.gpc 3 data.gpc_rate 3", 0).unwrap();
    assert_eq!(
        strip_addr(&run_line(&mut a, Action::Show, "st_int", 0).unwrap()),
        "# table: st_int, type: integer, size:1024, used:1\n0x: key=9 use=0 exp=300000 http_req_cnt=0 gpt0=0 gpt1=0 gpc0=3 gpc1=0 gpc0_rate(10000)=3 gpc1_rate(10000)=0"
    );
    assert_eq!(run_line(&mut a, Action::Set, "st_int key -5 data.gpc 3", 0), Err("Invalid key".into()));
    assert_eq!(
        run_line(&mut a, Action::Set, "st_int key 7 data.gpc0 3", 0),
        Err("Data type not stored in this table".into())
    );
}

#[test]
fn key_and_data_selections() {
    let mut t = table("fe", KeyKind::Ip, 100, Some(300), "gpc0,gpc1,conn_rate(10s)");
    for l in
        ["fe key 127.0.0.1 data.gpc0 5 data.conn_rate 7", "fe key 10.0.0.1 data.gpc0 1 data.gpc1 2", "fe key 1.2.3.4"]
    {
        run_line(&mut t, Action::Set, l, 0).unwrap();
    }
    let keys = |s: String| s.lines().skip(1).map(|l| l.split(' ').nth(1).unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(
        keys(run_line(&mut t, Action::Show, "fe", 0).unwrap()),
        ["key=1.2.3.4", "key=10.0.0.1", "key=127.0.0.1"]
    );
    assert_eq!(keys(run_line(&mut t, Action::Show, "fe data.gpc0 gt 4", 0).unwrap()), ["key=127.0.0.1"]);
    assert_eq!(keys(run_line(&mut t, Action::Show, "fe data.gpc0 gt 0 data.gpc1 gt 1", 0).unwrap()), ["key=10.0.0.1"]);
    assert_eq!(keys(run_line(&mut t, Action::Show, "fe data.conn_rate eq 7", 0).unwrap()), ["key=127.0.0.1"]);
    assert_eq!(
        run_line(&mut t, Action::Show, "fe data.gpc0 gt 5", 0).unwrap(),
        "# table: fe, type: ip, size:100, used:3\n"
    );
    assert_eq!(
        run_line(&mut t, Action::Show, "fe key 127.0.0.2", 0),
        Ok(String::new()),
        "a missing key prints nothing"
    );
    assert_eq!(keys(run_line(&mut t, Action::Show, "fe key 127.0.0.1", 0).unwrap()), ["key=127.0.0.1"]);
    run_line(&mut t, Action::Clear, "fe data.gpc0 ge 5", 0).unwrap();
    assert_eq!(t.len(), 2);
    run_line(&mut t, Action::Clear, "fe key 10.0.0.1", 0).unwrap();
    assert_eq!(keys(run_line(&mut t, Action::Show, "fe", 0).unwrap()), ["key=1.2.3.4"]);
    run_line(&mut t, Action::Clear, "fe", 0).unwrap();
    assert!(t.is_empty());
}

/// Error texts of HAProxy 2.6.12 for the same mistakes.
#[test]
fn errors_as_haproxy_2_6() {
    let e = |a, l| cmd(a, l).unwrap_err();
    assert_eq!(e(Action::Show, "fe key"), "Key value expected");
    assert_eq!(e(Action::Show, "fe data.foo gt 4"), "Filter entry #1: Unknown data type");
    assert_eq!(
        e(Action::Show, "fe data.gpc0 xx 4"),
        "Filter entry #1: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\""
    );
    assert_eq!(
        e(Action::Show, "fe data.gpc0 gt x"),
        "Filter entry #1: Require a valid integer value to compare against"
    );
    assert_eq!(e(Action::Show, "fe data.conn_rate eq 7 key 127.0.0.1"), "Filter entry #2: Unknown data type");
    assert_eq!(e(Action::Show, "fe junk"), OPT_ARGS);
    assert_eq!(e(Action::Clear, ""), CLEAR_ARGS);
    assert_eq!(e(Action::Clear, "fe junk"), CLEAR_ARGS);
    assert_eq!(e(Action::Set, "fe key 1.2.3.4 junk 1"), "\"data.<type>\" followed by a value expected");
    assert_eq!(e(Action::Set, "fe key 1.2.3.4 data.nope 1"), "Unknown data type");
    assert_eq!(e(Action::Set, "fe key 1.2.3.4 data.gpc0"), "Require a valid integer value to store");
    assert_eq!(e(Action::Set, "fe key 1.2.3.4 data.gpc0 x"), "Require a valid integer value to store");
    assert_eq!(
        e(Action::Set, "fe data.gpc0 1"),
        "content-based lookup is only supported with the \"show\" and \"clear\" actions"
    );
    assert_eq!(
        cmd(Action::Show, ""),
        Ok(TableCmd { action: Action::Show, table: None, select: Select::All, set: vec![] })
    );
    let mut b = table("st_bin", KeyKind::Binary { len: 4 }, 10, None, "gpc0");
    assert_eq!(
        run_line(&mut b, Action::Show, "st_bin key 01", 0),
        Err("Showing keys from tables of type other than ip, ipv6, string and integer is not supported".into())
    );
    assert_eq!(
        run_line(&mut b, Action::Set, "st_bin key 01 data.gpc0 1", 0),
        Err("Inserting keys into tables of type other than ip, ipv6, string and integer is not supported".into())
    );
    let mut f = table("fe", KeyKind::Ip, 10, None, "gpc0");
    assert_eq!(
        run_line(&mut f, Action::Show, "fe data.gpc1 gt 0", 0),
        Err("Data type not stored in this table".into())
    );
}

#[test]
fn nopurge_table_full() {
    let items = vec!["gpc0".to_string()];
    let mut t = Table::new(TableDef {
        name: "s".into(),
        key: KeyKind::String { len: 8 },
        size: 2,
        expire: None,
        nopurge: true,
        peers: None,
        store: parse_store(&items).unwrap(),
    });
    run_line(&mut t, Action::Set, "s key abcdefghijklmnop data.gpc0 1", 0).unwrap();
    run_line(&mut t, Action::Set, "s key k2 data.gpc0 2", 0).unwrap();
    assert_eq!(run_line(&mut t, Action::Set, "s key k3 data.gpc0 3", 0), Err("Unable to allocate a new entry".into()));
    assert_eq!(
        strip_addr(&run_line(&mut t, Action::Show, "s", 5).unwrap()),
        "# table: s, type: string, size:2, used:2\n0x: key=abcdefgh use=0 exp=0 gpc0=1\n0x: key=k2 use=0 exp=0 gpc0=2"
    );
}

#[test]
fn list_is_last_declared_first() {
    let a = table("a", KeyKind::Ip, 10, None, "");
    let b = table("st_v6", KeyKind::Ipv6, 1024, None, "gpt0");
    assert_eq!(
        list([&a, &b].into_iter()),
        "# table: st_v6, type: ipv6, size:1024, used:0\n# table: a, type: ip, size:10, used:0\n"
    );
}
