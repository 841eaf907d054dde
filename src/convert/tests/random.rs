//! Random and truncated inputs: conversion never panics and never writes invalid TOML.

use super::*;

/// A small deterministic generator (no extra crate).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
}

/// Thousands of inputs cut and spliced from real configs: conversion may fail, but never
/// panics, and whatever it produces is TOML that `config::parse` can read without panicking.
#[test]
fn random_and_truncated_inputs_never_panic() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut lines: Vec<String> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    for dir in ["seeds", "convert", "keepalived"] {
        if let Ok(rd) = std::fs::read_dir(root.join(dir)) {
            for e in rd.flatten() {
                if let Ok(t) = std::fs::read_to_string(e.path()) {
                    lines.extend(t.lines().map(str::to_string));
                    texts.push(t);
                }
            }
        }
    }
    lines.extend(
        ["\"", "'", "\\", "{", "}", "${X", "\0", "#", "server", "bind", "acl", "frontend f", "backend b", "listen l"]
            .map(String::from),
    );
    let mut r = Lcg(2024);
    let mut converted = 0;
    for round in 0..4000 {
        let text = match round % 3 {
            0 => {
                let t = &texts[r.next() % texts.len()];
                let cut = r.next() % (t.len() + 1);
                let cut = (0..=cut).rev().find(|c| t.is_char_boundary(*c)).unwrap_or(0);
                t[..cut].to_string()
            }
            1 => (0..(r.next() % 30)).map(|_| lines[r.next() % lines.len()].clone() + "\n").collect(),
            _ => {
                let t = &texts[r.next() % texts.len()];
                let mut b: Vec<char> = t.chars().collect();
                for _ in 0..(1 + r.next() % 8) {
                    if b.is_empty() {
                        break;
                    }
                    let i = r.next() % b.len();
                    let junk = ['"', '\'', '\\', '{', '}', ' ', '\n', '#', '$', ':', '9', 'x'];
                    b[i] = junk[r.next() % junk.len()];
                }
                b.into_iter().collect()
            }
        };
        if let Ok(c) = convert(Some(HaproxySource { text: &text, file: "f.cfg" }), None, Path::new("."), &no_env) {
            toml::from_str::<toml::Table>(&c.toml)
                .unwrap_or_else(|e| panic!("invalid TOML from\n{text}\n---\n{}\n{e}", c.toml));
            let _ = crate::config::parse(&c.toml, Path::new("f.toml"));
            converted += 1;
        }
        let mut none = |_: &str, _: &Path| Ok(Vec::new());
        if let Ok(k) = crate::convert::keepalived::ast::parse(&text, Path::new("k.conf"), &mut none)
            && let Ok(c) = convert(None, Some(&k), Path::new("."), &no_env)
        {
            toml::from_str::<toml::Table>(&c.toml)
                .unwrap_or_else(|e| panic!("invalid TOML from\n{text}\n---\n{}\n{e}", c.toml));
        }
    }
    assert!(converted > 500, "only {converted} inputs converted; the generator is too destructive");
}
