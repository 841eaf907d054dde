//! HAProxy's `ca-base` and `crt-base`: the directories relative CA/CRL and certificate paths
//! are taken from (Debian's default haproxy.cfg sets both).

use super::super::model::Global;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub(super) struct Bases {
    /// For `ca-file` and `crl-file`.
    pub ca: PathBuf,
    /// For `crt`, `crt-list` and the certificates a `crt-list` names.
    pub crt: PathBuf,
    /// `crt_base` was set: a `crt-list`'s own relative entries follow it too, as in HAProxy.
    crt_set: bool,
}

impl Bases {
    /// Unset bases are the config file's directory, as for every other relative path.
    pub fn new(g: &Global, base_dir: &Path) -> Bases {
        let dir = |b: &Option<String>| b.as_ref().map_or_else(|| base_dir.to_path_buf(), |b| base_dir.join(b));
        Bases { ca: dir(&g.ca_base), crt: dir(&g.crt_base), crt_set: g.crt_base.is_some() }
    }

    /// Where a `crt-list`'s relative entries are taken from: `None` for the list's own directory.
    pub fn crt_list_base(&self) -> Option<PathBuf> {
        self.crt_set.then(|| self.crt.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_bases_and_absolute_ones_do_not() {
        let g =
            Global { ca_base: Some("/etc/ssl/certs".into()), crt_base: Some("private".into()), ..Global::default() };
        let b = Bases::new(&g, Path::new("/etc/lbha"));
        assert_eq!(b.ca.join("ca.pem"), Path::new("/etc/ssl/certs/ca.pem"));
        assert_eq!(b.crt.join("site.pem"), Path::new("/etc/lbha/private/site.pem"));
        let abs = Path::new("/abs/site.pem");
        assert_eq!(b.crt.join(abs), abs);
        assert_eq!(b.crt_list_base(), Some(PathBuf::from("/etc/lbha/private")));
        let none = Bases::new(&Global::default(), Path::new("/etc/lbha"));
        assert_eq!((none.ca.as_path(), none.crt_list_base()), (Path::new("/etc/lbha"), None));
    }
}
