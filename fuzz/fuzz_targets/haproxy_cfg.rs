//! Any input: the haproxy.cfg parser and converter return an error or TOML that parses; they
//! never panic, and validating the result never panics either.
#![no_main]

use lbha::convert::{HaproxySource, convert};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| match name {
        "SET" => Some("a b".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    let src = HaproxySource {
        text,
        file: "fuzz.cfg",
    };
    if let Ok(c) = convert(Some(src), None, Path::new("/nonexistent"), &env) {
        if let Err(e) = toml::from_str::<toml::Table>(&c.toml) {
            panic!("converter wrote invalid TOML: {e}\n{}", c.toml);
        }
        let _ = lbha::config::parse(&c.toml, Path::new("fuzz.toml"));
    }
});
