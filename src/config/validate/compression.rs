//! A section's `compression` keywords, merged with `[defaults]` key by key as HAProxy copies a
//! defaults section's settings into each proxy.

use super::super::error::{FieldPath, Problem};
use super::super::model::{CompressionDef, Section};
use super::Ctx;
use crate::proxy::compress::{Algo, DEFAULT_MINSIZE, Settings};
use std::sync::Arc;

/// `report`: say what is wrong with the section's own keys (the defaults' are reported once,
/// and a listen section's backend half stays quiet).
pub(super) fn settings(
    s: &Section,
    defaults: &Section,
    p: &FieldPath,
    report: bool,
    cx: &mut Ctx,
) -> Option<Arc<Settings>> {
    let own = s.compression.as_ref();
    let dflt = defaults.compression.as_ref();
    if own.is_none() && dflt.is_none() {
        return None;
    }
    let p = p.key("compression");
    // Problems of keys reported elsewhere are collected here and dropped.
    let mut quiet = Vec::new();
    let pick = |f: fn(&CompressionDef) -> bool| {
        own.filter(|c| f(c)).map(|c| (c, report)).or(dflt.filter(|c| f(c)).map(|c| (c, false)))
    };
    let mut out = Settings { minsize: DEFAULT_MINSIZE, ..Settings::default() };
    if let Some((c, loud)) = pick(|c| c.algo.is_some()) {
        let errs = if loud { &mut *cx.problems } else { &mut quiet };
        let list = c.algo.as_deref().unwrap_or(&[]);
        if list.is_empty() {
            errs.push(Problem::new(p.key("algo"), "needs at least one of gzip, deflate, raw-deflate, identity"));
        }
        for (i, a) in list.iter().enumerate() {
            match Algo::parse(a) {
                Some(a) if !out.algos.contains(&a) => out.algos.push(a),
                Some(_) => {}
                None => errs.push(
                    Problem::new(p.key("algo").index(i), "unknown algorithm (gzip, deflate, raw-deflate, identity)")
                        .with_value(a),
                ),
            }
        }
    }
    if let Some((c, loud)) = pick(|c| c.type_.is_some()) {
        let errs = if loud { &mut *cx.problems } else { &mut quiet };
        for (i, t) in c.type_.as_deref().unwrap_or(&[]).iter().enumerate() {
            if t.trim().is_empty() {
                errs.push(Problem::new(p.key("type").index(i), "empty content type"));
            } else {
                out.types.push(t.trim().to_ascii_lowercase());
            }
        }
    }
    if let Some((c, _)) = pick(|c| c.offload.is_some()) {
        out.offload = c.offload.unwrap_or(false);
    }
    if let Some((c, _)) = pick(|c| c.minsize_res.is_some()) {
        out.minsize = c.minsize_res.map_or(DEFAULT_MINSIZE, |m| m.0);
    }
    if let Some((c, loud)) = pick(|c| c.direction.is_some()) {
        let errs = if loud { &mut *cx.problems } else { &mut quiet };
        match c.direction.as_deref().unwrap_or("") {
            "response" => {}
            d @ ("request" | "both") => errs.push(
                Problem::new(p.key("direction"), "not supported: lbha compresses responses only (HAProxy 2.6 compresses responses only and refuses `compression direction` altogether; 2.8 added request compression)")
                    .with_value(d),
            ),
            d => errs.push(Problem::new(p.key("direction"), "expected \"response\"").with_value(d)),
        }
    }
    Some(Arc::new(out))
}
