//! Runs `show sess`, `shutdown session` and `shutdown sessions server` against the proxy's
//! session registry (`proxy::sessions`); the words and texts are `control::sess`'s.

use crate::control::facts::{find_server, mode_word};
use crate::control::reply::Reply;
use crate::control::sess::{self, Named, Row, SessCmd};
use crate::proxy::{ConnCtx, Proxy};
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;

pub fn execute(proxy: &Proxy, cmd: SessCmd) -> Reply {
    match cmd {
        SessCmd::List => {
            let rows: Vec<Row> = proxy.sessions.all().iter().map(|cx| row(cx)).collect();
            Reply::ok(
                rows.iter().map(sess::line).collect::<String>(),
                json!(rows.iter().map(sess::row_json).collect::<Vec<_>>()),
            )
        }
        SessCmd::All => {
            let rows: Vec<Row> = proxy.sessions.all().iter().map(|cx| row(cx)).collect();
            Reply::ok(
                rows.iter().map(sess::detail).collect::<String>(),
                json!(rows.iter().map(sess::row_json).collect::<Vec<_>>()),
            )
        }
        SessCmd::One(id) => match proxy.sessions.get(id) {
            Some(cx) => {
                let r = row(&cx);
                Reply::ok(sess::detail(&r), sess::row_json(&r))
            }
            // HAProxy answers this as text, not as an error.
            None => Reply::ok(sess::SESSION_NOT_FOUND, json!({ "error": sess::SESSION_NOT_FOUND })),
        },
        SessCmd::Kill(id) => {
            if proxy.sessions.kill(id) {
                Reply::ok("", json!({ "killed": 1 }))
            } else {
                Reply::error(sess::NO_SUCH_SESSION)
            }
        }
        SessCmd::KillServer(r) => {
            let active = proxy.active.load();
            if let Err(e) = find_server(&active, &r) {
                return Reply::error(e);
            }
            let n = proxy.sessions.kill_server(&r.backend, &r.server);
            Reply::ok("", json!({ "killed": n }))
        }
    }
}

/// What the registry knows of one connection, named from the snapshots that served it.
fn row(cx: &ConnCtx) -> Row {
    let f = &cx.sess;
    let fe = &f.accepted_in.snap.frontends[f.fi()];
    let (backend, server) = match f.route_detail() {
        Some((active, bi, si)) => {
            let b = &active.snap.backends[bi];
            let server = si.map(|si| {
                let s = &b.servers[si];
                (Named { name: s.name.clone(), id: s.id as usize, mode: "" }, s.addr)
            });
            (Some(Named { name: b.name.clone(), id: bi + 1, mode: mode_word(b.mode) }), server)
        }
        None => (None, None),
    };
    Row {
        id: f.id,
        src: cx.peer,
        local: cx.local,
        accepted: cx.accepted.0,
        age: cx.accepted.1.elapsed(),
        frontend: Named { name: fe.name.clone(), id: f.fi() + 1, mode: mode_word(fe.mode) },
        backend,
        server,
        tls: cx.tls,
        requests: cx.requests.load(Relaxed),
        thread: f.thread,
    }
}
