//! `compression ...` lines of a proxy and `cache NAME` sections → lbha's `compression` table and
//! `[[cache]]` sections (`cache-use` / `cache-store` rules are in rules.rs).

use super::ast::{Directive, Section};
use super::proxy::St;
use super::{Cx, src};
use crate::convert::out::{Src, TableOut};
use crate::convert::report::{ConvertError, ReportKind};
use toml_edit::Value;

/// Key order of a `[[cache]]` table.
pub const CACHE_ORDER: &[&str] =
    &["name", "total_max_size", "max_object_size", "max_age", "process_vary", "max_secondary_entries"];

/// `compression algo|algo-res|type|type-res|offload|direction|minsize-res ...`.
pub(super) fn compression(st: &mut St, d: &Directive, cx: &mut Cx) {
    let words: Vec<&str> = d.args.iter().skip(2).map(String::as_str).collect();
    match d.arg(1) {
        Some(k @ ("algo" | "algo-res" | "type" | "type-res")) => {
            if words.is_empty() {
                cx.error(d, format!("`compression {k}` needs at least one value"));
                return;
            }
            let sub = if k.starts_with("algo") { "algo" } else { "type" };
            for w in words {
                if sub == "algo" && crate::proxy::compress::Algo::parse(w).is_none() {
                    cx.error(d, format!("unknown compression algorithm `{w}` (gzip, deflate, raw-deflate, identity)"));
                    return;
                }
                // HAProxy adds to the list with each line.
                st.out.push_in("compression", sub, w, src(d));
            }
        }
        Some("offload") => st.out.set_in("compression", "offload", true, src(d)),
        Some("direction") => match d.arg(2) {
            Some("response") => st.out.set_in("compression", "direction", "response", src(d)),
            Some(dir @ ("request" | "both")) => cx.drop(
                &mut st.out,
                d,
                ReportKind::Unsupported,
                format!("compression direction {dir}: lbha compresses responses only (HAProxy 2.6 has no `compression direction`; 2.8 added it)"),
            ),
            _ => cx.error(d, "expected `compression direction response|request|both`"),
        },
        Some("minsize-res") => match d.arg(2).map(crate::config::units::parse_size) {
            Some(Ok(n)) => st.out.set_in("compression", "minsize_res", n as i64, src(d)),
            _ => cx.error(d, "`compression minsize-res` needs a size"),
        },
        Some(k @ ("algo-req" | "type-req" | "minsize-req")) => cx.drop(
            &mut st.out,
            d,
            ReportKind::Unsupported,
            format!("compression {k}: lbha compresses responses only (HAProxy 2.6 has no request compression; 2.8 added it)"),
        ),
        Some(other) => cx.error(d, format!("unknown compression keyword `{other}`")),
        None => cx.error(d, "missing compression keyword (algo, type, offload)"),
    }
}

/// `cache NAME` with its `total-max-size`, `max-object-size`, `max-age`, `process-vary`,
/// `max-secondary-entries`.
pub(super) fn cache_section(sec: &Section, cx: &mut Cx) -> TableOut {
    let mut out = TableOut::default();
    let Some(name) = &sec.name else {
        cx.errors.push(ConvertError { loc: sec.loc.clone(), column: None, message: "cache needs a name".into() });
        return out;
    };
    out.set("name", name.as_str(), Src::bare(sec.loc.clone()));
    for d in &sec.directives {
        let key = match d.keyword() {
            "total-max-size" => "total_max_size",
            "max-object-size" => "max_object_size",
            "max-age" => "max_age",
            "max-secondary-entries" => "max_secondary_entries",
            "process-vary" => {
                match d.arg(1) {
                    Some("on") => out.set("process_vary", true, src(d)),
                    Some("off") => out.set("process_vary", false, src(d)),
                    _ => cx.error(d, "expected `process-vary on|off`"),
                }
                continue;
            }
            _ => {
                cx.drop(&mut out, d, ReportKind::Unknown, "not a cache keyword lbha knows");
                continue;
            }
        };
        if let Some(n) = cx.num::<u64>(d, 1, d.keyword()) {
            out.set(key, Value::from(n as i64), src(d));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::snapshot::HttpAction;
    use crate::convert::report::ReportKind;
    use crate::convert::tests::conv;
    use crate::proxy::compress::Algo;

    const CFG: &str = "defaults\n  mode http\n  compression algo gzip\n\
        cache static\n  total-max-size 4\n  max-object-size 10000\n  max-age 30\n  process-vary on\n  max-secondary-entries 5\n\
        frontend f\n  bind 127.0.0.1:18080\n  compression type text/html text/plain\n  http-request cache-use static if { path_beg /s }\n  http-response cache-store static\n  default_backend b\n\
        backend b\n  compression algo gzip deflate\n  compression offload\n  compression direction request\n  http-request cache-use static\n  http-response cache-store static\n  server s 127.0.0.1:18081\n";

    #[test]
    fn compression_cache_sections_and_cache_rules_map_one_to_one() {
        let c = conv(CFG);
        let s = crate::config::parse(&c.toml, std::path::Path::new("lbha.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
        let cache = &s.caches[0];
        assert_eq!((cache.name.as_str(), cache.total, cache.limits.max_object), ("static", 4 << 20, 10000));
        assert_eq!((cache.limits.max_age, cache.limits.process_vary, cache.max_secondary), (30, true, 5));
        let f = &s.frontends[0];
        assert!(matches!(f.http_request[0].action, HttpAction::CacheUse(_)));
        assert!(f.http_request[0].cond.is_some());
        assert!(matches!(f.http_response[0].action, HttpAction::CacheStore(_)));
        let fc = f.compression.as_ref().unwrap();
        assert_eq!(
            (fc.algos.as_slice(), fc.types.as_slice()),
            ([Algo::Gzip].as_slice(), ["text/html", "text/plain"].map(String::from).as_slice())
        );
        let b = &s.backends[0];
        let bc = b.compression.as_ref().unwrap();
        assert_eq!(bc.algos, [Algo::Gzip, Algo::Deflate]);
        assert!(bc.offload);
        assert!(matches!(b.http_request[0].action, HttpAction::CacheUse(_)));
        assert!(matches!(b.http_response[0].action, HttpAction::CacheStore(_)));
        // Only `compression direction request` was not converted.
        let dropped: Vec<usize> =
            c.reports.iter().filter(|r| r.kind == ReportKind::Unsupported).map(|r| r.loc.line).collect();
        assert_eq!(dropped, [19], "{:?}", c.reports);
    }

    #[test]
    fn cache_and_compression_filters_are_implied_in_haproxys_default_order() {
        let kinds = |filters: &str| {
            let c = conv(&format!(
                "defaults\n  mode http\ncache c\n  total-max-size 4\nbackend b\n{filters}  compression algo gzip\n  http-request cache-use c\n  http-response cache-store c\n  server s 127.0.0.1:1\n"
            ));
            c.reports.iter().map(|r| (r.loc.line, r.kind)).collect::<Vec<_>>()
        };
        let filters = "  filter cache c\n  filter compression\n";
        assert_eq!(kinds(filters), [(6, ReportKind::Note), (7, ReportKind::Note)]);
        // Compression first: HAProxy would store compressed responses.
        let filters = "  filter compression\n  filter cache c\n";
        assert_eq!(kinds(filters), [(6, ReportKind::Note), (7, ReportKind::Approximated)]);
        // A SPOE agent (a WAF, an authentication) sets what deny rules read: losing it weakens.
        assert_eq!(kinds("  filter spoe config x.conf\n"), [(6, ReportKind::Weakens)]);
        assert_eq!(kinds("  filter trace\n"), [(6, ReportKind::Unsupported)]);
    }
}
