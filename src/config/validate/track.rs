//! Stick-counter rules of `http_request`/`http_response` (`track_sc0..2`, `sc_inc_gpc0/1`,
//! `sc_inc_gpc`, `sc_set_gpt0`, `sc_set_gpt`) and the tables stick-counter fetches name: a
//! table that does not exist, or a section without one where the rule needs its own, is a
//! located error (a rate limit that cannot be honoured must not load).

use super::{Ctx, Named};
use crate::config::error::FieldPath;
use crate::config::model::{self, IntOrExpr, TrackScAction};
use crate::config::snapshot::HttpAction;
use crate::sample::{LogFormat, SampleExpr, Segment};
use crate::stktable::track::{self, GptValue, ScAction, StickAction, TrackRule};

/// The stick tables' names: those of the sections that declare one.
pub(super) fn table_names(fronts: &[Named], backs: &[Named]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for n in fronts.iter().chain(backs) {
        if n.sec.stick_table.is_some() && !v.iter().any(|x| x == n.name()) {
            v.push(n.name().to_string());
        }
    }
    v
}

fn report(errs: Vec<String>, at: &FieldPath, text: &str, cx: &mut Ctx) {
    for e in errs {
        cx.err_v(at.clone(), e, text);
    }
}

/// Resolves the tables of stick fetches in `exprs` against the section being read.
pub(super) fn exprs<'a>(exprs: impl IntoIterator<Item = &'a mut SampleExpr>, at: &FieldPath, text: &str, cx: &mut Ctx) {
    let tables = std::mem::take(&mut cx.tables);
    let errs = track::resolve_exprs(exprs, &cx.owner, &|t| tables.iter().any(|x| x == t));
    cx.tables = tables;
    report(errs, at, text, cx);
}

/// The same, over the `%[...]` of a log-format value.
pub(super) fn log_format(lf: &mut LogFormat, at: &FieldPath, text: &str, cx: &mut Ctx) {
    let es = lf.segments.iter_mut().filter_map(|s| match s {
        Segment::Expr { expr, .. } => Some(expr),
        _ => None,
    });
    exprs(es, at, text, cx);
}

/// Resolves a stick action's tables.
pub(super) fn action(a: &mut StickAction, at: &FieldPath, text: &str, cx: &mut Ctx) {
    let tables = std::mem::take(&mut cx.tables);
    let errs = a.resolve(&cx.owner, &|t| tables.iter().any(|x| x == t));
    cx.tables = tables;
    report(errs, at, text, cx);
}

fn sc_of(v: i64, at: &FieldPath, cx: &mut Ctx) -> Option<usize> {
    if (0..track::MAX_SC as i64).contains(&v) {
        return Some(v as usize);
    }
    cx.err_v(at.clone(), "stick counter must be 0, 1 or 2", v);
    None
}

/// The stick action keys of an HTTP rule, by name (`track_sc0`, ..., `sc_set_gpt`).
pub(super) fn http_action(r: &model::HttpRule, name: &str, ap: &FieldPath, cx: &mut Ctx) -> Option<HttpAction> {
    let mut a = match name {
        "track_sc0" | "track_sc1" | "track_sc2" => {
            let def = match name {
                "track_sc0" => r.track_sc0.as_ref(),
                "track_sc1" => r.track_sc1.as_ref(),
                _ => r.track_sc2.as_ref(),
            }?;
            let (key, table) = match def {
                TrackScAction::Key(k) => (k, None),
                TrackScAction::Full { key, table } => (key, table.as_deref()),
            };
            let kp = if matches!(def, TrackScAction::Key(_)) { ap.clone() } else { ap.key("key") };
            let key = SampleExpr::parse(key).map_err(|e| cx.err_v(kp, e.to_string(), key)).ok()?;
            let sc = usize::from(name.as_bytes()[8] - b'0');
            StickAction::Track(TrackRule { sc, key, table: table.unwrap_or("").to_string() })
        }
        "sc_inc_gpc0" | "sc_inc_gpc1" => {
            let v = if name == "sc_inc_gpc0" { r.sc_inc_gpc0 } else { r.sc_inc_gpc1 }?;
            StickAction::Sc(ScAction::IncGpc { idx: usize::from(name == "sc_inc_gpc1"), sc: sc_of(v, ap, cx)? })
        }
        "sc_inc_gpc" | "sc_set_gpt0" | "sc_set_gpt" => {
            let g = match name {
                "sc_inc_gpc" => r.sc_inc_gpc.as_ref(),
                "sc_set_gpt0" => r.sc_set_gpt0.as_ref(),
                _ => r.sc_set_gpt.as_ref(),
            }?;
            let sc = sc_of(g.sc, &ap.key("sc"), cx);
            let idx = match (name, g.idx) {
                ("sc_set_gpt0", None) => Some(0),
                ("sc_set_gpt0", Some(_)) => {
                    cx.err(ap.key("idx"), "sc_set_gpt0 has no index: use sc_set_gpt");
                    None
                }
                (_, Some(i)) if (0..i64::from(crate::stktable::def::MAX_ARRAY)).contains(&i) => Some(i as usize),
                (_, Some(i)) => {
                    cx.err_v(ap.key("idx"), "array index must be 0 to 99", i);
                    None
                }
                (_, None) => {
                    cx.err(ap.key("idx"), "missing the array index");
                    None
                }
            };
            if name == "sc_inc_gpc" {
                if g.value.is_some() {
                    cx.err(ap.key("value"), "sc_inc_gpc takes no value");
                    return None;
                }
                StickAction::Sc(ScAction::IncGpc { idx: idx?, sc: sc? })
            } else {
                let value = match &g.value {
                    Some(IntOrExpr::Int(v)) => GptValue::Int(*v),
                    Some(IntOrExpr::Expr(text)) => match track::gpt_value(text) {
                        Ok(v) => v,
                        Err(e) => {
                            cx.err_v(ap.key("value"), e, text);
                            return None;
                        }
                    },
                    None => {
                        cx.err(ap.key("value"), "missing the value (an integer or a sample expression)");
                        return None;
                    }
                };
                StickAction::Sc(ScAction::SetGpt { idx: idx?, sc: sc?, value })
            }
        }
        _ => return None,
    };
    let text = match &a {
        StickAction::Track(t) if t.table.is_empty() => String::new(),
        StickAction::Track(t) => t.table.clone(),
        StickAction::Sc(_) => name.to_string(),
    };
    action(&mut a, ap, &text, cx);
    Some(HttpAction::Stick(a))
}
