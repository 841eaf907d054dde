//! Validation of the server-side keywords of issue 17: PROXY protocol towards servers
//! (`send_proxy`, `send_proxy_v2`, `proxy_v2_options`, `check_send_proxy`).

use super::super::error::FieldPath;
use super::super::model;
use super::Ctx;
use crate::health::tcpcheck::Seq;
use crate::proxy::proxy_proto::SendProxy;

/// `send-proxy`/`send-proxy-v2` and the v2 options lbha can fill. An option it cannot honour is
/// an error, not a header silently sent without it.
pub(super) fn send_proxy(sv: &model::Server, sp: &FieldPath, cx: &mut Ctx) -> Option<SendProxy> {
    if sv.send_proxy && sv.send_proxy_v2 {
        cx.err(sp.key("send_proxy_v2"), "use either `send_proxy` or `send_proxy_v2`, not both");
    }
    let mut how = SendProxy { v2: sv.send_proxy_v2, ssl: false, authority: false, unique_id: false };
    if let Some(opts) = &sv.proxy_v2_options {
        let op = sp.key("proxy_v2_options");
        if !sv.send_proxy_v2 {
            cx.err(op.clone(), "has no effect without `send_proxy_v2 = true`");
        }
        for o in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            match o {
                "ssl" => how.ssl = true,
                "authority" => how.authority = true,
                "unique-id" => how.unique_id = true,
                "ssl-cipher" | "cert-cn" | "cert-sig" | "cert-key" | "crc32c" => {
                    cx.err_v(op.clone(), "not supported by lbha yet (it can send ssl, authority and unique-id)", o)
                }
                other => cx.err_v(
                    op.clone(),
                    "unknown option (ssl, authority, unique-id, ssl-cipher, cert-cn, cert-sig, cert-key, crc32c)",
                    other,
                ),
            }
        }
    }
    if sv.check_send_proxy && !sv.check {
        cx.err(sp.key("check_send_proxy"), "has no effect without `check = true`");
    }
    (sv.send_proxy || sv.send_proxy_v2).then_some(how)
}

/// The PROXY header a health check sends first: with `check-send-proxy`, or, as in HAProxy,
/// when the server's traffic has one and the check goes to the same address (no `addr`/`port`).
/// A check has no client: v1 `UNKNOWN` or a v2 `LOCAL` header.
pub(super) fn check_proxy_header(sv: &model::Server) -> Option<Vec<u8>> {
    let same_target = sv.check_addr.is_none() && sv.check_port.is_none();
    if !(sv.check_send_proxy || ((sv.send_proxy || sv.send_proxy_v2) && same_target)) {
        return None;
    }
    let how = SendProxy { v2: sv.send_proxy_v2, ssl: false, authority: false, unique_id: false };
    Some(crate::proxy::proxy_proto::build(how, &Default::default()))
}

/// `tcp_check` rules or a protocol check (`redis_check`, `mysql_check`, `pgsql_check`,
/// `smtpchk`, `ldap_check`, `ssl_hello_chk`) as a check sequence; `None` when the section has
/// none. At most one kind of check may be set, as HAProxy keeps only the last `option`.
pub(super) fn check_seq(d: &model::CheckDef, at: &FieldPath, cx: &mut Ctx) -> Option<Seq> {
    use crate::health::tcpcheck::{parse_line, proto};
    use model::FlagOrText::{Flag, Text};
    let on = |b: Option<bool>| b == Some(true);
    if on(d.disable_on_404) && d.http.is_none() {
        cx.err(at.key("disable_on_404"), "needs an HTTP check (`http`)");
    }
    if d.http_check.is_some() && d.http.is_none() {
        // HAProxy 2.6: "uses http-check rules without 'option httpchk', so the rules are ignored."
        cx.warn(
            at.key("http_check"),
            "http_check rules without `http` (HAProxy's `option httpchk`) are ignored, as HAProxy does",
        );
    }
    let flag_on = |f: &Option<model::FlagOrText>| matches!(f, Some(Flag(true)) | Some(Text(_)));
    let mut set: Vec<&str> = Vec::new();
    for (yes, key) in [
        (d.http.is_some(), "http"),
        (d.external.is_some(), "external"),
        (d.tcp_check.is_some(), "tcp_check"),
        (on(d.redis_check), "redis_check"),
        (flag_on(&d.mysql_check), "mysql_check"),
        (d.pgsql_check.is_some(), "pgsql_check"),
        (flag_on(&d.smtpchk), "smtpchk"),
        (on(d.ldap_check), "ldap_check"),
        (on(d.ssl_hello_chk), "ssl_hello_chk"),
    ] {
        if yes {
            set.push(key);
        }
    }
    if set.len() > 1 {
        cx.err(at.clone(), format!("choose one kind of check, not `{}`", set.join("`, `")));
        return None;
    }
    let seq = match set.first().copied() {
        Some("tcp_check") => {
            let mut steps = Vec::new();
            let mut comment = None;
            for (i, line) in d.tcp_check.iter().flatten().enumerate() {
                match parse_line(line, &mut comment) {
                    Ok(Some(step)) => steps.push(step),
                    Ok(None) => {}
                    Err(e) => cx.err_v(at.key("tcp_check").index(i), e.to_string(), line),
                }
            }
            // As HAProxy: with any `connect`, the first rule (comments aside) must be one.
            let first = steps.iter().position(|s| !s.is_transparent());
            let has_connect = steps.iter().any(|s| matches!(s, crate::health::tcpcheck::Step::Connect { .. }));
            if let Some(i) = first
                && has_connect
                && !matches!(steps[i], crate::health::tcpcheck::Step::Connect { .. })
            {
                cx.err(
                    at.key("tcp_check"),
                    "the first rule must be a `connect` (after comments) when the sequence has a `connect`",
                );
            }
            Seq { steps, proto: None, ..Default::default() }
        }
        Some("redis_check") => proto::redis(),
        Some("ldap_check") => proto::ldap(),
        Some("ssl_hello_chk") => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            proto::ssl_hello(now as u32)
        }
        Some("smtpchk") => match &d.smtpchk {
            Some(Text(t)) => {
                let w: Vec<&str> = t.split_whitespace().collect();
                match w.as_slice() {
                    [verb @ ("EHLO" | "HELO"), domain] => proto::smtp(&format!("{verb} {domain}")),
                    // HAProxy falls back to its default for anything else.
                    _ => proto::smtp("HELO localhost"),
                }
            }
            _ => proto::smtp("HELO localhost"),
        },
        Some("pgsql_check") => {
            let t = d.pgsql_check.as_deref().unwrap_or_default();
            match t.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["user", name] => proto::pgsql(name),
                _ => {
                    cx.err_v(at.key("pgsql_check"), "expected \"user NAME\"", t);
                    return None;
                }
            }
        }
        Some("mysql_check") => match &d.mysql_check {
            Some(Text(t)) => match t.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["user", name] | ["user", name, "post-41"] => proto::mysql(Some(name), false),
                ["user", name, "pre-41"] => proto::mysql(Some(name), true),
                _ => {
                    cx.err_v(at.key("mysql_check"), "expected true or \"user NAME [post-41|pre-41]\"", t);
                    return None;
                }
            },
            _ => proto::mysql(None, false),
        },
        _ => return None,
    };
    if seq.steps.iter().all(crate::health::tcpcheck::Step::is_transparent) && seq.proto.is_none() {
        // `option tcp-check` without rules: a plain connect, as in HAProxy.
        return Some(Seq { steps: Vec::new(), proto: None, ..Default::default() });
    }
    Some(seq)
}

/// `agent-check` and its settings; the settings without `agent_check` are an error, as they
/// would do nothing.
pub(super) fn agent(
    sv: &model::Server,
    sp: &FieldPath,
    addr: std::net::SocketAddr,
    timeouts: &crate::config::snapshot::Timeouts,
    cx: &mut Ctx,
) -> Option<crate::health::agent::AgentSpec> {
    if !sv.agent_check {
        for (set, key) in [
            (sv.agent_port.is_some(), "agent_port"),
            (sv.agent_addr.is_some(), "agent_addr"),
            (sv.agent_inter.is_some(), "agent_inter"),
            (sv.agent_send.is_some(), "agent_send"),
        ] {
            if set {
                cx.err(sp.key(key), "has no effect without `agent_check = true`");
            }
        }
        return None;
    }
    let Some(port) = sv.agent_port.filter(|p| *p > 0) else {
        cx.err(sp.key("agent_port"), "`agent_check` needs `agent_port` (1-65535)");
        return None;
    };
    let mut target = addr;
    target.set_port(port);
    if let Some(a) = &sv.agent_addr {
        match a.parse() {
            Ok(ip) => target.set_ip(ip),
            Err(_) => cx.err_v(sp.key("agent_addr"), "not an IP address", a),
        }
    }
    let inter = sv.agent_inter.or(sv.inter).map_or(std::time::Duration::from_secs(2), |d| d.0);
    if inter.is_zero() {
        cx.err_v(sp.key("agent_inter"), "must be greater than 0", "0");
    }
    let send = match &sv.agent_send {
        None => Vec::new(),
        Some(t) => {
            let mut c = None;
            match crate::health::tcpcheck::parse_line(&format!("send {}", t.replace(' ', "\\ ")), &mut c) {
                Ok(Some(crate::health::tcpcheck::Step::Send { data, .. })) => data,
                _ => {
                    cx.err_v(sp.key("agent_send"), "invalid escape", t);
                    Vec::new()
                }
            }
        }
    };
    Some(crate::health::agent::AgentSpec {
        addr: target,
        inter,
        timeout: timeouts.check.unwrap_or(inter),
        send,
        source: None,
    })
}

/// `retry_on`, from the section or `[defaults]`.
pub(super) fn retry_on(
    s: &model::Section,
    defaults: &model::Section,
    p: &FieldPath,
    cx: &mut Ctx,
) -> crate::proxy::retry_on::RetryOn {
    match s.retry_on.as_deref().or(defaults.retry_on.as_deref()) {
        None => Default::default(),
        Some(t) => crate::proxy::retry_on::RetryOn::parse(t).unwrap_or_else(|e| {
            cx.err_v(p.key("retry_on"), e, t);
            Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn err(servers: &str, check: &str, extra: &str) -> String {
        let src = format!(
            "[[listen]]\nname = \"l\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\n{extra}\n{check}\nservers = [{servers}]\n"
        );
        match crate::config::parse(&src, Path::new("t.toml")) {
            Ok(_) => panic!("accepted:\n{src}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn settings_that_cannot_be_honoured_are_located_errors() {
        let e = err("{ name = \"a\", addr = \"127.0.0.1:2\", send_proxy = true, send_proxy_v2 = true }", "", "");
        assert!(e.contains("t.toml:7") && e.contains("servers[0].send_proxy_v2"), "{e}");
        let e = err(
            "{ name = \"a\", addr = \"127.0.0.1:2\", send_proxy_v2 = true, proxy_v2_options = \"ssl,unique-id,cert-cn\" }",
            "",
            "",
        );
        assert!(e.contains("proxy_v2_options") && e.contains("not supported") && e.contains("cert-cn"), "{e}");
        let e = err("{ name = \"a\", addr = \"127.0.0.1:2\", proxy_v2_options = \"ssl\" }", "", "");
        assert!(e.contains("without `send_proxy_v2"), "{e}");
        let e = err("{ name = \"a\", addr = \"127.0.0.1:2\", agent_check = true }", "", "");
        assert!(e.contains("agent_port"), "{e}");
        let e = err("{ name = \"a\", addr = \"127.0.0.1:2\", agent_inter = \"1s\" }", "", "");
        assert!(e.contains("without `agent_check"), "{e}");
        let e = err("{ name = \"a\", addr = \"127.0.0.1:2\" }", "", "retry_on = \"503 teapot\"");
        assert!(e.contains("retry_on") && e.contains("teapot"), "{e}");
    }

    #[test]
    fn check_kinds_are_exclusive_and_rules_are_checked() {
        let sv = "{ name = \"a\", addr = \"127.0.0.1:2\", check = true }";
        let e = err(sv, "check = { redis_check = true, http = \"/\" }", "");
        assert!(e.contains("choose one kind of check"), "{e}");
        let e = err(sv, "check = { tcp_check = [\"send a\", \"expect strin b\"] }", "");
        assert!(e.contains("tcp_check[1]") && e.contains("unknown expect keyword `strin`"), "{e}");
        let e = err(sv, "check = { pgsql_check = \"postgres\" }", "");
        assert!(e.contains("user NAME"), "{e}");
        let e = err(sv, "check = { mysql_check = \"user a post-42\" }", "");
        assert!(e.contains("pre-41"), "{e}");
        let e = err("{ name = \"a\", addr = \"127.0.0.1:2\" }", "", "expect_proxy = { }");
        assert!(e.contains("expect_proxy"), "{e}");
    }
}
