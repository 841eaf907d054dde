//! One server added at runtime (`add server`), validated against its backend alone: the checks a
//! load makes on a server entry, without reading the rest of the configuration again, so adding a
//! server costs the same whatever the number of servers already there.

use super::*;

/// Server `server` of section `backend` (a backend or a listen) as `file` writes it.
pub fn model_server<'a>(file: &'a ConfigFile, backend: &str, server: &str) -> Option<&'a model::Server> {
    file.backend
        .iter()
        .chain(&file.listen)
        .filter(|s| s.name.as_deref() == Some(backend))
        .flat_map(|s| s.servers.as_deref().unwrap_or(&[]))
        .find(|s| s.name == server)
}

/// What the server checks of a full load said about one runtime server.
pub struct Checked {
    pub server: Server,
    pub warnings: Vec<String>,
}

/// Validates `sv` as server number `at` of `live` (the backend as served by `snap`: `at` is the
/// position of the server it replaces, or one past the end for a new one), with the section
/// settings of `file` (the configuration `snap` was built from). Errors are one line each,
/// `backend[I].servers[N].key: message (value: V)` as the file's would be.
pub fn runtime_server(
    file: &ConfigFile,
    snap: &Snapshot,
    live: &Backend,
    at: usize,
    sv: &model::Server,
) -> Result<Checked, Vec<String>> {
    let find = |secs: &[Section]| secs.iter().position(|s| s.name.as_deref() == Some(live.name.as_str()));
    let found = find(&file.backend)
        .map(|i| (Kind::Backend, i, &file.backend[i]))
        .or_else(|| find(&file.listen).map(|i| (Kind::Listen, i, &file.listen[i])));
    let Some((kind, index, sec)) = found else {
        return Err(vec![format!("backend {}: not in the configuration it was loaded from", live.name)]);
    };
    let n = Named { kind, index, sec };
    let sp = n.path().key("servers").index(at);
    let base_dir = snap.source.parent().unwrap_or(Path::new("."));
    let mut problems = Vec::new();
    let mut cx = Ctx {
        problems: &mut problems,
        base_dir,
        caches: &[],
        maps: crate::maps::Loader::new(base_dir),
        resolvers: snap.resolvers.iter().map(|r| r.name.clone()).collect(),
        userlists: Vec::new(),
        tls_defaults: Default::default(),
        tables: Vec::new(),
        owner: String::new(),
        replies: Default::default(),
        request_rule: false,
    };
    cx.tls_defaults = tls_side::defaults(&file.global, &mut cx);
    // The file's own problems were reported when it was loaded: only the server's count here.
    cx.problems.clear();
    let check_def = sec.check.as_ref().or(file.defaults.check.as_ref());
    let mut server = server(sv, &sp, &live.name, live.mode, check_def, &live.timeouts, &snap.global, &mut cx);
    if let Some(s) = server.as_mut() {
        match server_ids::runtime_id(&live.servers, at, s.id) {
            Ok(id) => s.id = id,
            Err(e) => cx.err_v(sp.key("id"), e, s.id),
        }
        if let Some(text) = sv.track.as_deref() {
            match server_track::runtime(snap, &live.name, text, sv.check) {
                Ok(t) => s.track = Some(t),
                Err(e) => cx.err_v(sp.key("track"), e, text),
            }
        }
        server_source::inherit(s, live.source.as_ref(), &sp, &mut cx);
        server_source::to_checks(s);
    }
    persist::server_cookie(sv, live.persist.cookie.as_ref(), sec.cookie.is_some(), &sp, &mut cx);
    let line = |p: &Problem| {
        let mut s = format!("{}: {}", p.path, p.message);
        if let Some(v) = &p.value {
            s.push_str(&format!(" (value: {v})"));
        }
        s
    };
    let errors: Vec<String> = problems.iter().filter(|p| !p.warning).map(line).collect();
    match server {
        Some(server) if errors.is_empty() => {
            Ok(Checked { server, warnings: problems.iter().filter(|p| p.warning).map(line).collect() })
        }
        _ => Err(errors),
    }
}

/// `live` with `server` at position `at` (replacing the one there, or appended one past the end):
/// the balancer and the persistence keys rebuilt for the new server list, every other setting
/// shared with `live`.
pub fn with_server(live: &Backend, at: usize, server: Server) -> Backend {
    let mut servers = live.servers.clone();
    match servers.get_mut(at) {
        Some(s) => *s = server,
        None => servers.push(server),
    }
    let specs: Vec<ServerSpec> =
        servers.iter().map(|s| ServerSpec { weight: s.weight, backup: s.backup, maxconn: s.maxconn }).collect();
    let puids: Vec<u32> = servers.iter().map(|s| s.id).collect();
    let hash_type = live.selector.hash_type().unwrap_or_default();
    let selector =
        Selector::new(&live.algorithm, hash_type, &specs, live.selector.allbackups()).with_server_puids(&puids);
    let mut persist = live.persist.clone();
    persist.servers = persist::server_keys(&servers, persist.cookie.as_ref());
    Backend {
        name: live.name.clone(),
        id: live.id,
        id_forced: live.id_forced,
        option_persist: live.option_persist,
        mode: live.mode,
        algorithm: live.algorithm.clone(),
        selector,
        servers,
        retries: live.retries,
        redispatch: live.redispatch,
        abortonclose: live.abortonclose,
        srvtcpka: live.srvtcpka,
        timeouts: live.timeouts,
        conn_mode: live.conn_mode,
        forwardfor: live.forwardfor.clone(),
        persist,
        server_rules: live.server_rules.clone(),
        hash_expr: live.hash_expr.clone(),
        rdp_persist: live.rdp_persist.clone(),
        pool_purge_delay: live.pool_purge_delay,
        compression: live.compression.clone(),
        tcp: live.tcp.clone(),
        acls: live.acls.clone(),
        stats: live.stats.clone(),
        http_request: live.http_request.clone(),
        http_response: live.http_response.clone(),
        http_after_response: live.http_after_response.clone(),
        errors: live.errors.clone(),
        log_health_checks: live.log_health_checks,
        log_targets: live.log_targets.clone(),
        log_tag: live.log_tag.clone(),
        retry_on: live.retry_on,
        reuse: live.reuse,
        source: live.source.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamic::keywords::{inline_table, parse_add};

    const BASE: &str = r#"[defaults]
mode = "http"
[[backend]]
name = "web"
cookie = { name = "SRV", mode = "insert" }
check = { inter = "3s", rise = 1 }
servers = [{ name = "a", addr = "127.0.0.1:8001", cookie = "a", check = true }]
[[listen]]
name = "edge"
bind = ["127.0.0.1:9000"]
servers = [{ name = "x", addr = "127.0.0.1:9001" }]
"#;

    fn load(text: &str) -> (ConfigFile, Snapshot) {
        let snap = crate::config::parse(text, Path::new("/etc/lbha/t.toml")).unwrap_or_else(|e| panic!("{e}"));
        (toml::from_str(text).unwrap(), snap)
    }

    /// The backend a full load makes of the file with the server appended to `backend`.
    fn full_load(backend: &str, line: &str) -> Snapshot {
        let mut doc: toml_edit::DocumentMut = BASE.parse().unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        let sv = parse_add(words[0], &words[1..]).unwrap();
        for kind in ["backend", "listen"] {
            for t in doc[kind].as_array_of_tables_mut().unwrap().iter_mut() {
                if t["name"].as_str() == Some(backend) {
                    t["servers"].as_array_mut().unwrap().push(inline_table(&sv));
                }
            }
        }
        load(&doc.to_string()).1
    }

    fn add(backend: &str, line: &str) -> Result<Backend, Vec<String>> {
        let (file, snap) = load(BASE);
        let (_, live) = snap.backend(backend).unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        let sv = parse_add(words[0], &words[1..]).unwrap();
        let at = live.servers.len();
        runtime_server(&file, &snap, live, at, &sv).map(|c| with_server(live, at, c.server))
    }

    #[test]
    fn a_runtime_server_is_what_a_full_load_makes_of_it() {
        for (backend, line) in [
            ("web", "b 127.0.0.2:8002 check weight 7 cookie b maxconn 5 fall 4"),
            ("web", "c 127.0.0.3:8003 backup ssl verify none sni str(api.example) proto h2"),
            ("edge", "y 127.0.0.1:9002 weight 0 disabled slowstart 2s check"),
            ("web", "t 127.0.0.2:8005 track a cookie t"),
            ("edge", "z 127.0.0.2:9005 track web/a"),
        ] {
            let grown = add(backend, line).unwrap();
            let full = full_load(backend, line);
            let want = full.backend(backend).unwrap().1;
            // Debug output compares every field of the servers, persistence and balancer.
            assert_eq!(format!("{:?}", grown.servers), format!("{:?}", want.servers), "{line}");
            assert_eq!(grown.persist, want.persist, "{line}");
            assert_eq!(grown.selector.allbackups(), want.selector.allbackups());
            assert_eq!(grown.servers.len(), want.servers.len());
        }
    }

    #[test]
    fn a_bad_server_is_refused_with_its_place_and_nothing_else() {
        let e = add("web", "b 127.0.0.2:8002 check").unwrap_err();
        assert_eq!(
            e,
            [
                "backend[0].servers[1]: server `b` needs a `cookie` value for the backend's `SRV` cookie (only backup servers may go without)"
            ]
        );
        let e = add("edge", "y 127.0.0.1:1 cookie c").unwrap_err();
        assert_eq!(
            e,
            [
                "listen[0].servers[1].cookie: has no effect without the backend's `cookie` (persistence cookie settings) (value: c)"
            ]
        );
        let e = add("edge", "y 127.0.0.1:1 ssl ca-file /nonexistent/ca.pem").unwrap_err();
        assert!(e.len() == 1 && e[0].starts_with("listen[0].servers[1].ca_file"), "{e:?}");
        let e = add("web", "t 127.0.0.2:8005 track nope cookie t").unwrap_err();
        assert_eq!(
            e,
            ["backend[0].servers[1].track: unable to find required server 'nope' for tracking (value: nope)"]
        );
        let e = add("edge", "t 127.0.0.2:8005 track x").unwrap_err();
        assert!(e[0].contains("does not have any check nor agent enabled"), "{e:?}");
        let e = add("edge", "t 127.0.0.2:8005 track web/a check").unwrap_err();
        assert!(e[0].contains("unable to enable checks and tracking at the same time"), "{e:?}");
        let e = add("edge", "y 127.0.0.1:1 inter 1s").unwrap_err();
        assert_eq!(e, ["listen[0].servers[1].inter: has no effect without `check = true`"]);
    }
}
