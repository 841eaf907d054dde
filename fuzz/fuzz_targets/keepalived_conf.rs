//! Any input: the keepalived.conf parser and converter return an error or TOML that parses.
#![no_main]

use lbha::convert::{convert, keepalived};
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Includes read the same text again, so nesting limits are exercised without files.
    let inner = text.to_string();
    let mut loader = |_: &str, _: &Path| Ok(vec![(PathBuf::from("inc.conf"), inner.clone())]);
    let Ok(cfg) = keepalived::ast::parse(text, Path::new("fuzz.conf"), &mut loader) else {
        return;
    };
    if let Ok(c) = convert(None, Some(&cfg), Path::new("/nonexistent"), &|_| None) {
        if let Err(e) = toml::from_str::<toml::Table>(&c.toml) {
            panic!("converter wrote invalid TOML: {e}\n{}", c.toml);
        }
    }
});
