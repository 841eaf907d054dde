//! Conversion of the server-connection keywords: `http-reuse`, `fullconn`, and the server
//! parameters `proto h2`, `pool-max-conn`, `pool-purge-delay`, `max-reuse`, `maxqueue`, `minconn`.

use super::*;

#[test]
fn reuse_queue_and_h2_keywords_convert_and_validate() {
    let c = conv(&format!(
        "{FE_BE}backend be\n  http-reuse always\n  fullconn 500\n\
         \x20 server a 127.0.0.1:81 proto h2 pool-max-conn 10 pool-purge-delay 2s max-reuse 100\n\
         \x20 server b 127.0.0.1:82 maxconn 50 minconn 5 maxqueue 20 pool-max-conn -1\n"
    ));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    let be = &s.backends[0];
    use crate::proxy::upstream::HttpReuse;
    assert_eq!(be.reuse.http_reuse, HttpReuse::Always);
    assert_eq!(be.reuse.fullconn, 500);
    let (a, b) = (&be.servers[0].upstream, &be.servers[1].upstream);
    assert!(a.h2 && a.pool_max_conn == Some(10) && a.max_reuse == Some(100));
    assert_eq!(a.pool_purge_delay, Some(std::time::Duration::from_secs(2)));
    assert!(!b.h2 && b.pool_max_conn.is_none() && b.minconn == 5 && b.maxqueue == 20);
}

#[test]
fn bad_reuse_values_are_errors_and_fullconn_defaults_to_ten_percent() {
    let e = conv_err(&format!("{FE_BE}backend be\n  http-reuse sometimes\n  server a 127.0.0.1:81\n"));
    assert!(e.iter().any(|m| m.contains("sometimes")), "{e:?}");
    let e = conv_err(&format!("{FE_BE}backend be\n  server a 127.0.0.1:81 proto h3\n"));
    assert!(e.iter().any(|m| m.contains("proto h3")), "{e:?}");
    // HAProxy: 10% of the maxconn of the frontends that reach the backend.
    let c = conv(
        "frontend fe\n  mode http\n  maxconn 3000\n  bind 127.0.0.1:8080\n  default_backend be\nbackend be\n  mode http\n  server a 127.0.0.1:81 maxconn 10 minconn 2\n",
    );
    assert_eq!(snap(&c).backends[0].reuse.fullconn, 300);
}
