//! Scale figures for the Data Plane API on a 1,000-backend × 10-server config: collection GETs,
//! a one-server change committed (validate, atomic write, reload), and a transaction.
//! Run: `cargo test --release --test api_scale -- --ignored --nocapture`. Prints figures; the
//! only assertions are on correctness, never on time.

mod api_support;
mod common;
use api_support::*;

use std::time::{Duration, Instant};

const BACKENDS: usize = 1000;
const SERVERS: usize = 10;
const RUNS: usize = 5;

fn big_config() -> String {
    let mut s = String::new();
    for b in 0..BACKENDS {
        s.push_str(&format!("[[backend]]\nname = \"be{b}\"\nservers = [\n"));
        for i in 0..SERVERS {
            s.push_str(&format!("  {{ name = \"s{i}\", addr = \"127.0.0.1:{}\", weight = 10 }},\n", 20000 + i));
        }
        s.push_str("]\n\n");
    }
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

#[test]
#[ignore = "scale figures; run with --release --ignored --nocapture"]
fn thousand_backends_ten_servers_each() {
    let cfg = big_config();
    let (api, startup) = time(|| ApiLbha::start(&cfg));
    println!(
        "config: {BACKENDS} backends x {SERVERS} servers, {} KiB; daemon up with API in {startup:?}",
        cfg.len() / 1024
    );

    let mut gets = Vec::new();
    let mut size = 0;
    for _ in 0..RUNS {
        let (r, d) = time(|| api.call("GET", "/v2/services/haproxy/configuration/backends", None));
        assert_eq!(r.status, 200);
        size = r.body.len();
        gets.push(d);
    }
    println!("GET backends (1000 objects, {} KiB): median {:?}", size / 1024, median(gets));

    let mut gets = Vec::new();
    for _ in 0..RUNS {
        let (r, d) = time(|| api.call("GET", "/v2/services/haproxy/configuration/servers?backend=be999", None));
        assert_eq!(r.status, 200);
        gets.push(d);
    }
    println!("GET servers?backend=be999 (10 objects): median {:?}", median(gets));

    let mut commits = Vec::new();
    for run in 0..RUNS {
        let v = api.version();
        let body = format!(r#"{{"name":"s3","address":"127.0.0.1","port":20003,"weight":{}}}"#, 20 + run);
        let (r, d) = time(|| {
            api.call(
                "PUT",
                &format!("/v2/services/haproxy/configuration/servers/s3?backend=be500&version={v}&force_reload=true"),
                Some(&body),
            )
        });
        assert_eq!(r.status, 200, "{}", r.text());
        commits.push(d);
    }
    println!(
        "PUT one server with version (validate 10,000 servers, atomic write, reload): median {:?}",
        median(commits)
    );

    let mut txns = Vec::new();
    for run in 0..RUNS {
        let v = api.version();
        let (_, d) = time(|| {
            let (_, t) = api.json("POST", &format!("/v2/services/haproxy/transactions?version={v}"), None);
            let id = t["id"].as_str().unwrap().to_string();
            let body = format!(r#"{{"name":"s3","address":"127.0.0.1","port":20003,"weight":{}}}"#, 40 + run);
            let (s, _) = api.json(
                "PUT",
                &format!("/v2/services/haproxy/configuration/servers/s3?backend=be7&transaction_id={id}"),
                Some(&body),
            );
            assert_eq!(s, 202);
            let (s, _) = api.json("PUT", &format!("/v2/services/haproxy/transactions/{id}"), None);
            assert_eq!(s, 202);
        });
        txns.push(d);
    }
    println!("transaction: create + one server change + commit: median {:?}", median(txns));

    let (_, hup) = time(|| {
        api.lbha.signal(1);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !api.lbha.log_text().matches("configuration reloaded").count().ge(&(2 * RUNS + 1))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    println!("SIGHUP reload alone (as seen in the log): {hup:?}");
    println!("daemon peak RSS: {} MiB", api.lbha.peak_rss_kib() / 1024);
    api.check_file();
}
