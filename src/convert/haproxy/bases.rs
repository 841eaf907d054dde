//! Certificate and CA paths under `global` `ca-base`/`crt-base`.

use super::Cx;

impl Cx<'_> {
    /// A `crt`/`crt-list` (`crt-base`) or `ca-file`/`crl-file` (`ca-base`) path as lbha reads it:
    /// under a base a relative path stays relative (lbha's `ca_base`/`crt_base` resolve it, as
    /// HAProxy does), else it is taken from the haproxy.cfg's directory.
    pub fn tls_path(&self, kw: &str, f: &str) -> String {
        let based = if matches!(kw, "ca-file" | "crl-file") { self.ca_base } else { self.crt_base };
        if based || std::path::Path::new(f).is_absolute() {
            f.to_string()
        } else {
            self.base_dir.join(f).display().to_string()
        }
    }
}
