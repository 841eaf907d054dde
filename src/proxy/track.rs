//! Stick counters on live traffic: the `track-sc*` and `sc-*` actions of HTTP and TCP rules,
//! the `sc_*`/`src_*`/`table_*` fetches, and the counts a session or request adds to what it
//! tracks (see `stktable::track` for HAProxy's rules). The session's counters live in the
//! connection's rule state, the stream's in the transaction's.

use super::Active;
use crate::sample::{Maps, SampleContext, SmpType, StickFetch, StickSource, Value};
use crate::stktable::registry::lock;
use crate::stktable::track::{self, GptValue, ScAction, StickAction, Trackers};
use crate::stktable::{Now, TKey};
use std::net::SocketAddr;

/// Runs a stick action. `stream`: the HTTP transaction's counters, where `http-request`
/// tracking goes (and counts its request); `None` for `tcp-request` rules, which track for the
/// session. `now`: the rule pass's time.
pub fn act(
    active: &Active,
    session: &Trackers,
    stream: Option<&Trackers>,
    a: &StickAction,
    ctx: &dyn SampleContext,
    maps: &dyn Maps,
    now: &Now,
) {
    let tables = &active.rt.tables;
    match a {
        StickAction::Track(t) => {
            let Some((table, kind)) = tables.find_keyed(&t.table) else { return };
            let target = stream.unwrap_or(session);
            if target.is_tracked(t.sc) {
                return;
            }
            let Some(key) = track::key_for(&t.key, ctx, maps, kind) else { return };
            target.track(t.sc, table, key, now, |e| {
                if stream.is_some() {
                    e.inc_http_req();
                }
            });
        }
        StickAction::Sc(s) => {
            let value = match s {
                ScAction::SetGpt { value: GptValue::Int(v), .. } => Some(*v),
                ScAction::SetGpt { value: GptValue::Expr(e), .. } => {
                    match e.eval(ctx, maps).and_then(|v| v.cast(SmpType::Sint)) {
                        Some(Value::Sint(v)) => Some(v),
                        _ => return,
                    }
                }
                ScAction::IncGpc { .. } => None,
            };
            track::with_sc(stream, session, s.sc(), None, now, |e| {
                if let Some(e) = e {
                    s.apply(e, value)
                }
            });
        }
    }
}

/// A stick-counter fetch for a client at `src`, at the rule pass's time `now`.
pub fn fetch(
    active: &Active,
    session: &Trackers,
    stream: Option<&Trackers>,
    src: SocketAddr,
    f: &StickFetch,
    now: &Now,
) -> Option<Value> {
    let tables = &active.rt.tables;
    let named = match &f.table {
        Some(t) => Some(tables.find(t)?),
        None => None,
    };
    match f.src {
        StickSource::Sc(n) => {
            let n = usize::from(n);
            let v = if f.writes() {
                track::with_sc(stream, session, n, named, now, |e| f.eval(e))
            } else {
                track::view_sc(stream, session, n, named, now, |e| f.read(e))
            };
            v.unwrap_or_else(|| f.untracked())
        }
        StickSource::Src => {
            let mut t = lock(named?);
            let key = TKey::from_ip(src.ip(), t.kind())?;
            let now = now.get();
            let mut e = if f.creates() { t.touch(&key, now) } else { t.get_mut(&key, now) };
            f.eval(e.as_mut())
        }
        StickSource::Table => {
            let t = lock(named?);
            f.table_stat(t.len(), t.def().size)
        }
        StickSource::Key => None,
    }
}

/// A `table_*` / `in_table` converter: `key`, made a key of the table's type, looked up as
/// the `src_*` fetches look up the client's address (HAProxy's `smp_to_stkey`).
pub fn fetch_key(active: &Active, f: &StickFetch, key: &Value) -> Option<Value> {
    let tables = &active.rt.tables;
    let mut t = lock(tables.find(f.table.as_deref()?)?);
    let key = crate::stktable::track::key_of(key, t.kind())?;
    let expire = t.def().expire.map_or(0, |d| d.as_millis() as u64);
    let mut e = t.get_mut(&key, tables.now_ms());
    f.eval_key(e.as_mut(), expire)
}

/// A new HTTP request: `http_req_*` on what the session tracks.
pub fn http_request(active: &Active, session: &Trackers) {
    track::each(None, session, &active.rt.tables.now(), |e| e.inc_http_req());
}

/// The end of an HTTP exchange: `http_err_*` for a client error, on the stream's counters else
/// the session's. As HAProxy 2.6 counts (checked against it): a deny or tarpit whatever its
/// status, a 4xx from a server or lbha; an `http-request auth` 401 on the session's counters
/// only; a 4xx that an `http-request return` answered not at all (measured: `return status
/// 404` leaves `http_err_cnt` at 0 on both the session's and the stream's entries).
pub fn http_done(active: &Active, session: &Trackers, stream: &Trackers, status: u16, how: Answer) {
    let (fail, err) = outcome(status, how);
    if fail.is_none() && err.is_none() {
        return;
    }
    let now = active.rt.tables.now();
    if let Some(with_stream) = fail {
        track::each(with_stream.then_some(stream), session, &now, |e| e.inc_http_fail());
    }
    if let Some(with_stream) = err {
        track::each(with_stream.then_some(stream), session, &now, |e| e.inc_http_err());
    }
}

/// Whether an exchange counts `http_fail_*` and `http_err_*`, and if so whether on the stream's
/// counters too (true) or the session's only (false). `http_fail`: a server-side failure, a 5xx
/// other than 501 and 505 (the server's, or lbha's for a failed server), HAProxy 2.6's codes.
fn outcome(status: u16, how: Answer) -> (Option<bool>, Option<bool>) {
    let fail = (how == Answer::Other && (500..600).contains(&status) && status != 501 && status != 505).then_some(true);
    let client_error = (400..500).contains(&status);
    let err = match how {
        Answer::HeadTimeout => None,
        Answer::Denied => Some(true),
        Answer::Challenged => Some(false),
        Answer::Rule => None,
        _ if client_error => Some(true),
        _ => None,
    };
    (fail, err)
}

/// How an HTTP exchange was answered, for [`http_done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Denied,
    /// lbha's 408 to a head that did not come within `timeout http-request` (a silent new
    /// connection's included): HAProxy 2.6 counts the request, not an error (its H1 mux's
    /// request-timeout path). A head the client closed before it came (a `CR--` 400) is an
    /// error there like any refused head: [`Answer::Other`]. Both measured in `tests/probes.rs`.
    HeadTimeout,
    /// By an answering `http-request` rule other than deny/tarpit/auth.
    Rule,
    /// By `http-request auth` (its 401).
    Challenged,
    Other,
}

/// Marks an answer made by an `http-request` rule (`return`, `redirect`, `auth`).
#[derive(Debug, Clone, Copy)]
pub struct Answered;

/// Marks the 401 of `http-request auth`, which counts as an error where `return`'s 4xx does not.
#[derive(Debug, Clone, Copy)]
pub struct Challenged;

/// A session passed its `tcp-request session` rules: `sess_*` on what it tracks.
pub fn session_start(active: &Active, session: &Trackers) {
    track::each(None, session, &active.rt.tables.now(), |e| e.inc_sess());
}

/// Bytes of an exchange (client to server, server to client).
pub fn bytes(active: &Active, session: &Trackers, stream: Option<&Trackers>, bytes_in: u64, bytes_out: u64) {
    if (bytes_in == 0 && bytes_out == 0) || !active.rt.tables.counts_bytes() {
        return;
    }
    track::each(stream, session, &active.rt.tables.now(), |e| {
        e.add_bytes_in(bytes_in);
        e.add_bytes_out(bytes_out);
    });
}

/// Marks an answer as a deny or tarpit, which counts as a client error whatever its status.
#[derive(Debug, Clone, Copy)]
pub struct Denied;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_failures_count_as_haproxy_2_6() {
        assert_eq!(outcome(200, Answer::Other), (None, None));
        assert_eq!(outcome(404, Answer::Other), (None, Some(true)), "a server's 4xx");
        assert_eq!(outcome(404, Answer::Rule), (None, None), "`return status 404`: no error");
        assert_eq!(outcome(401, Answer::Challenged), (None, Some(false)), "`auth`: session only");
        assert_eq!(outcome(302, Answer::Rule), (None, None));
        assert_eq!(outcome(403, Answer::Denied), (None, Some(true)));
        assert_eq!(outcome(500, Answer::Denied), (None, Some(true)), "a tarpit");
        assert_eq!(outcome(503, Answer::Other), (Some(true), None));
        assert_eq!(outcome(501, Answer::Other), (None, None));
        assert_eq!(outcome(408, Answer::HeadTimeout), (None, None), "a head not in time: no error, as HAProxy");
        assert_eq!(outcome(505, Answer::Other), (None, None));
        assert_eq!(outcome(503, Answer::Rule), (None, None), "a rule's own 5xx is no server failure");
    }
}
