//! HAProxy 2.6's versioned map and ACL replacement: `prepare map FILE` opens a new version,
//! `add map @VER FILE ...` fills it unseen by traffic, `commit map @VER FILE` makes it the live
//! content in one step (and drops the versions before it). Pure bookkeeping; the store swap is
//! `Shared::change_all`. The replies are HAProxy's.

use std::collections::{BTreeMap, HashMap};

/// Entries as `(key, value)`; an ACL pattern's value is empty.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Debug, Default)]
struct FileVersions {
    /// The live version (0 until a first commit).
    curr: u32,
    /// The last version `prepare` opened.
    next: u32,
    staged: BTreeMap<u32, Pairs>,
}

/// Where `add map @VER` puts its entries.
#[derive(Debug, PartialEq, Eq)]
pub enum AddTo {
    /// A prepared version, staged.
    Staged,
    /// The live version itself (`@VER` is the current one), as a plain `add map`.
    Live,
    /// A version already replaced: nothing happens, as in HAProxy.
    Gone,
}

#[derive(Debug, Default)]
pub struct Versions {
    files: HashMap<String, FileVersions>,
}

impl Versions {
    /// `prepare map|acl FILE`: a new, empty version; its number.
    pub fn prepare(&mut self, file: &str) -> u32 {
        let f = self.files.entry(file.to_string()).or_default();
        f.next += 1;
        f.staged.insert(f.next, Vec::new());
        f.next
    }

    /// `add map|acl @VER FILE ...`.
    pub fn add(&mut self, file: &str, acl: bool, ver: u32, pairs: Pairs) -> Result<AddTo, String> {
        let f = self.files.entry(file.to_string()).or_default();
        if ver > f.next {
            let kind = if acl { "acl" } else { "map" };
            return Err(format!("Version number in the future, please use 'prepare {kind}' before."));
        }
        if ver == f.curr {
            return Ok(AddTo::Live);
        }
        match f.staged.get_mut(&ver) {
            Some(list) => {
                list.extend(pairs);
                Ok(AddTo::Staged)
            }
            None => Ok(AddTo::Gone),
        }
    }

    /// The entries `commit map|acl @VER FILE` would make live; nothing changes until
    /// [`Versions::committed`].
    pub fn to_commit(&self, file: &str, ver: u32) -> Result<Pairs, String> {
        let (curr, next) = self.files.get(file).map_or((0, 0), |f| (f.curr, f.next));
        if ver <= curr || ver > next {
            return Err("Version number out of range.".into());
        }
        Ok(self.files.get(file).and_then(|f| f.staged.get(&ver)).cloned().unwrap_or_default())
    }

    /// Version `ver` is live: it and the versions before it are dropped.
    pub fn committed(&mut self, file: &str, ver: u32) {
        if let Some(f) = self.files.get_mut(file) {
            f.curr = ver;
            f.staged.retain(|&v, _| v > ver);
        }
    }

    /// What version `ver` of `file` is for `show`/`clear map @VER`: the live one, a prepared one
    /// (its staged entries), or none (replaced, or never prepared).
    pub fn version(&self, file: &str, ver: u32) -> Version<'_> {
        let f = self.files.get(file);
        if ver == f.map_or(0, |f| f.curr) {
            return Version::Live;
        }
        match f.and_then(|f| f.staged.get(&ver)) {
            Some(p) => Version::Staged(p),
            None => Version::None,
        }
    }

    /// `clear map|acl @VER FILE` on a prepared version: its staged entries are dropped (the
    /// version stays open). `false` when `ver` is not a prepared version.
    pub fn clear_staged(&mut self, file: &str, ver: u32) -> bool {
        match self.files.get_mut(file).and_then(|f| f.staged.get_mut(&ver)) {
            Some(p) => {
                p.clear();
                true
            }
            None => false,
        }
    }

    /// `(curr_ver, next_ver)` for `show map`.
    pub fn numbers(&self, file: &str) -> (u32, u32) {
        self.files.get(file).map_or((0, 0), |f| (f.curr, f.next))
    }
}

/// A version as `show map @VER` sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Version<'a> {
    Live,
    Staged(&'a Pairs),
    None,
}

/// HAProxy's `@VER`: the digits after `@` (anything else reads as 0, as its `strtoul`).
pub fn parse_version(word: &str) -> Option<u32> {
    let digits = word.strip_prefix('@')?;
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    Some(digits[..end].parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
        (k.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    #[test]
    fn prepare_add_commit_as_haproxy() {
        let mut v = Versions::default();
        assert_eq!(
            v.add("m", false, 1, vec![kv("a", "b")]).unwrap_err(),
            "Version number in the future, please use 'prepare map' before."
        );
        assert_eq!(v.prepare("m"), 1);
        assert_eq!(v.prepare("m"), 2);
        assert_eq!(v.add("m", false, 2, vec![kv("x", "1"), kv("y", "2")]), Ok(AddTo::Staged));
        assert_eq!(v.add("m", false, 0, vec![kv("z", "3")]), Ok(AddTo::Live), "version 0 is the live one");
        assert_eq!(v.to_commit("m", 3).unwrap_err(), "Version number out of range.");
        assert_eq!(v.to_commit("m", 0).unwrap_err(), "Version number out of range.");
        assert_eq!(v.to_commit("m", 2), Ok(vec![kv("x", "1"), kv("y", "2")]));
        assert_eq!(v.numbers("m"), (0, 2), "nothing changes before the swap");
        v.committed("m", 2);
        assert_eq!(v.numbers("m"), (2, 2));
        assert_eq!(v.to_commit("m", 1).unwrap_err(), "Version number out of range.", "older versions are gone");
        assert_eq!(v.add("m", true, 1, vec![kv("q", "1")]), Ok(AddTo::Gone));
        assert_eq!(v.add("m", false, 2, vec![kv("q", "1")]), Ok(AddTo::Live));
        assert_eq!(v.numbers("other"), (0, 0), "files are numbered apart");
    }

    #[test]
    fn show_and_clear_a_version_as_haproxy() {
        let mut v = Versions::default();
        assert_eq!(v.version("m", 0), Version::Live, "version 0 is live before any commit");
        assert_eq!(v.version("m", 1), Version::None, "never prepared");
        assert_eq!(v.prepare("m"), 1);
        v.add("m", false, 1, vec![kv("x", "9")]).unwrap();
        assert_eq!(v.version("m", 1), Version::Staged(&vec![kv("x", "9")]));
        assert!(v.clear_staged("m", 1));
        assert_eq!(v.version("m", 1), Version::Staged(&vec![]), "emptied, still open");
        assert!(!v.clear_staged("m", 7), "no such version: nothing to do");
        v.add("m", false, 1, vec![kv("y", "1")]).unwrap();
        assert_eq!(v.to_commit("m", 1), Ok(vec![kv("y", "1")]), "adds after a clear go in");
        v.committed("m", 1);
        assert_eq!(v.version("m", 1), Version::Live);
        assert_eq!(v.version("m", 0), Version::None, "replaced");
    }

    #[test]
    fn versions_read_like_strtoul() {
        assert_eq!(parse_version("@12"), Some(12));
        assert_eq!(parse_version("@x"), Some(0));
        assert_eq!(parse_version("@3x"), Some(3));
        assert_eq!(parse_version("12"), None);
    }
}
