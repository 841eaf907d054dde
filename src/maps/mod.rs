//! Map and pattern files at run time: loaded (relative to the config's directory) when a
//! configuration is validated, indexed once per match kind, and served from one store that the
//! proxy reads lock-free per lookup (`ArcSwap`). Runtime changes from the control socket
//! (`add map`, `set map`, `del map`, `clear map`, `add acl`, `del acl`) are kept as an ordered
//! list of operations per file and applied again onto the files a reload reads, so they
//! survive reloads; they reach the file itself only on `commit map FILE`.

pub mod overlay;
pub mod versions;

use crate::sample::jwt::PublicKey as JwtKey;
use crate::sample::{MapEntry, MapError, MatchKind, PatternMap, Value, parse_map_file};
use arc_swap::ArcSwap;
use overlay::Op;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Entry ids shown by `show map FILE` and accepted as `#ID` keys: unique in the process.
static NEXT_ENTRY: AtomicU64 = AtomicU64::new(0x1000);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl Entry {
    pub fn new(key: Vec<u8>, value: Vec<u8>) -> Entry {
        Entry { id: NEXT_ENTRY.fetch_add(1, Relaxed), key, value }
    }
}

/// One map or pattern file with its indexes.
#[derive(Debug)]
pub struct MapFile {
    /// The name the configuration uses (`map(sni.map)`, `-f block.lst`): the store's key.
    pub name: String,
    pub path: PathBuf,
    /// An ACL pattern file (`-f` without `-M`): whole lines, no values.
    pub pattern: bool,
    /// Who uses it, for `show map` / `show acl`.
    pub users: Vec<String>,
    /// `#ID` of `show map`/`show acl`.
    pub id: usize,
    pub entries: Vec<Entry>,
    /// (kind, case-folded, index).
    indexes: Vec<(MatchKind, bool, PatternMap)>,
}

impl MapFile {
    /// A file as read (or, for one a rule edits that does not exist, empty), not indexed yet.
    fn new(name: &str, path: PathBuf, pattern: bool, id: usize, entries: Vec<Entry>) -> MapFile {
        MapFile { name: name.to_string(), path, pattern, users: Vec::new(), id, entries, indexes: Vec::new() }
    }
}

impl MapFile {
    fn map_entries(&self) -> Vec<MapEntry> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| MapEntry { line: i + 1, key: e.key.clone(), value: e.value.clone() })
            .collect()
    }

    /// Builds an index for `kind` unless present.
    pub fn index(&mut self, kind: MatchKind, icase: bool) -> Result<(), MapError> {
        if self.indexes.iter().any(|(k, i, _)| *k == kind && *i == icase) {
            return Ok(());
        }
        let entries = self.map_entries();
        let entries = if icase { crate::sample::fold_entries(kind, &entries) } else { entries };
        let map = PatternMap::build(kind, &entries)?;
        self.indexes.push((kind, icase, map));
        Ok(())
    }

    /// The same file with other entries, every index rebuilt.
    pub fn with_entries(&self, entries: Vec<Entry>) -> Result<MapFile, MapError> {
        let mut f = MapFile {
            name: self.name.clone(),
            path: self.path.clone(),
            pattern: self.pattern,
            users: self.users.clone(),
            id: self.id,
            entries,
            indexes: Vec::new(),
        };
        for (k, i, _) in &self.indexes {
            f.index(*k, *i)?;
        }
        Ok(f)
    }

    pub fn lookup(&self, kind: MatchKind, icase: bool, key: &Value) -> Option<&[u8]> {
        let (_, _, m) = self.indexes.iter().find(|(k, i, _)| *k == kind && *i == icase)?;
        m.lookup(key)
    }

    /// The file's text as `commit map` writes it.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.entries {
            out.extend_from_slice(&e.key);
            if !self.pattern {
                out.push(b' ');
                out.extend_from_slice(&e.value);
            }
            out.push(b'\n');
        }
        out
    }
}

/// `jwt_verify`'s public keys by the text the configuration names them with.
pub type JwtKeys = HashMap<String, Arc<JwtKey>>;

/// The files a configuration uses, as validation loaded them.
#[derive(Debug, Default, Clone)]
pub struct Loaded {
    pub files: Vec<Arc<MapFile>>,
    pub jwt_keys: Arc<JwtKeys>,
}

/// Collects and loads the files a configuration names while it is validated.
#[derive(Debug)]
pub struct Loader {
    base_dir: PathBuf,
    files: Vec<MapFile>,
    jwt_keys: JwtKeys,
    /// Key names already tried (found or not), so each is read and warned about once.
    jwt_tried: std::collections::HashSet<String>,
}

impl Loader {
    pub fn new(base_dir: &Path) -> Loader {
        Loader {
            base_dir: base_dir.to_path_buf(),
            files: Vec::new(),
            jwt_keys: HashMap::new(),
            jwt_tried: Default::default(),
        }
    }

    /// Loads a file an expression reads; `Ok(Some(warning))` when it loaded with one.
    pub fn need_ref(&mut self, r: crate::sample::FileRef<'_>, user: &str) -> Result<Option<String>, String> {
        match r {
            crate::sample::FileRef::Map(name, kind, out) => self.need_map(name, kind, out, user).map(|()| None),
            crate::sample::FileRef::JwtKey { path, required } => self.need_jwt_key(path, required),
        }
    }

    /// Reads `jwt_verify`'s public key `name` (relative to the config's directory). As HAProxy
    /// 2.6, a file that is not a PEM public key only warns (tokens checked with it get -5); a
    /// key lbha cannot verify with is an error. `required`: the text can only be a path, so a
    /// missing file warns too (HAProxy says nothing).
    fn need_jwt_key(&mut self, name: &str, required: bool) -> Result<Option<String>, String> {
        let path = self.base_dir.join(name);
        if !self.jwt_tried.insert(name.to_string()) {
            return Ok(None);
        }
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) => {
                return Ok(required.then(|| {
                    format!(
                        "jwt_verify key {}: cannot read it ({e}): every token checked with it gets -5",
                        path.display()
                    )
                }));
            }
        };
        match JwtKey::from_pem(&text) {
            Ok(k) => {
                self.jwt_keys.insert(name.to_string(), Arc::new(k));
                Ok(None)
            }
            Err(None) => Ok(Some(format!(
                "jwt_verify key {}: no PEM public key in it (`PUBLIC KEY` or `RSA PUBLIC KEY`, as HAProxy 2.6 reads): every token checked with it gets -5",
                path.display()
            ))),
            Err(Some(why)) => Err(format!("{}: {why}", path.display())),
        }
    }

    /// Registers a use of file `name` indexed for `kind`: reads it the first time (relative to
    /// the config's directory) and builds the index. `pattern`: an ACL pattern file.
    pub fn need(&mut self, name: &str, kind: MatchKind, icase: bool, pattern: bool, user: &str) -> Result<(), String> {
        let pos = match self.files.iter().position(|f| f.name == name) {
            Some(i) => {
                if self.files[i].pattern != pattern {
                    return Err(format!(
                        "`{name}` is used both as a map and as an ACL pattern file (use `-M` to read a map as patterns)"
                    ));
                }
                i
            }
            None => {
                let path = self.base_dir.join(name);
                let text = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let entries = parse_map_file(&text, pattern).into_iter().map(|e| Entry::new(e.key, e.value)).collect();
                let id = self.files.len();
                self.files.push(MapFile::new(name, path, pattern, id, entries));
                id
            }
        };
        let f = &mut self.files[pos];
        if !f.users.iter().any(|u| u == user) {
            f.users.push(user.to_string());
        }
        f.index(kind, icase)
            .map_err(|e| format!("{}: line {}: key `{}`: {}", f.path.display(), e.line, e.key, e.reason))
    }

    /// [`Loader::need`] for a map converter: also checks, as HAProxy does at load, that every
    /// value is of a typed converter's output type (`map_str_int`: integers).
    pub fn need_map(
        &mut self,
        name: &str,
        kind: MatchKind,
        out: crate::sample::MapOut,
        user: &str,
    ) -> Result<(), String> {
        self.need(name, kind, false, false, user)?;
        if out == crate::sample::MapOut::Str {
            return Ok(());
        }
        let Some(f) = self.files.iter().find(|f| f.name == name) else { return Ok(()) };
        for e in &f.entries {
            if out.value(&e.value).is_none() {
                return Err(format!(
                    "{}: key `{}`: value `{}` is not {} (the converter's output type)",
                    f.path.display(),
                    String::from_utf8_lossy(&e.key),
                    String::from_utf8_lossy(&e.value),
                    if out == crate::sample::MapOut::Int { "an integer" } else { "an IP address" }
                ));
            }
        }
        Ok(())
    }

    /// Registers a file a rule edits (`set-map`, `del-map`, `add-acl`, `del-acl`). As HAProxy,
    /// which edits a pattern reference whether or not a file backs it, an absent file starts
    /// empty (`commit map` then creates it); one already read keeps its entries and indexes.
    pub fn need_edited(&mut self, name: &str, pattern: bool, user: &str) -> Result<(), String> {
        let path = self.base_dir.join(name);
        if !self.files.iter().any(|f| f.name == name) && !path.exists() {
            let id = self.files.len();
            self.files.push(MapFile::new(name, path, pattern, id, Vec::new()));
        }
        // Indexed as a string match, the kind every map reader can use; readers add their own.
        self.need(name, MatchKind::Str, false, pattern, user)
    }

    pub fn finish(self) -> Loaded {
        Loaded { files: self.files.into_iter().map(Arc::new).collect(), jwt_keys: Arc::new(self.jwt_keys) }
    }
}

/// What the proxy reads: every file by name.
#[derive(Debug, Default)]
pub struct MapStore {
    files: HashMap<String, Arc<MapFile>, foldhash::fast::RandomState>,
    /// Names in `#ID` order.
    order: Vec<String>,
    jwt_keys: Arc<JwtKeys>,
}

impl MapStore {
    pub fn get(&self, name: &str) -> Option<&Arc<MapFile>> {
        self.files.get(name)
    }

    /// Files in `#ID` order.
    pub fn files(&self) -> impl Iterator<Item = &Arc<MapFile>> {
        self.order.iter().filter_map(|n| self.files.get(n))
    }

    /// A file by `FILE` or `#ID`.
    pub fn find(&self, r: &str) -> Option<&Arc<MapFile>> {
        match r.strip_prefix('#') {
            Some(id) => id.parse::<usize>().ok().and_then(|id| self.files().find(|f| f.id == id)),
            None => self.files.get(r),
        }
    }

    fn with(&self, file: Arc<MapFile>) -> MapStore {
        let mut files = self.files.clone();
        files.insert(file.name.clone(), file);
        MapStore { files, order: self.order.clone(), jwt_keys: self.jwt_keys.clone() }
    }
}

impl crate::sample::Maps for MapStore {
    fn lookup(&self, path: &str, kind: MatchKind, key: &Value) -> Option<&[u8]> {
        self.files.get(path)?.lookup(kind, false, key)
    }
    fn contains(&self, file: &str, kind: MatchKind, icase: bool, key: &Value) -> bool {
        self.files.get(file).is_some_and(|f| f.lookup(kind, icase, key).is_some())
    }
    fn lookup_regm(&self, path: &str, key: &[u8]) -> Option<Vec<u8>> {
        let f = self.files.get(path)?;
        let (_, _, m) = f.indexes.iter().find(|(k, i, _)| *k == MatchKind::Reg && !*i)?;
        m.lookup_regm(key)
    }
    fn jwt_key(&self, name: &[u8]) -> Option<&JwtKey> {
        Some(self.jwt_keys.get(std::str::from_utf8(name).ok()?)?)
    }
}

/// The live store, loaded at its first use: a rule pass holds one for all its rules, and most
/// conditions read no map at all (an `ArcSwap` load costs about 60 instructions).
pub struct Lazy<'a> {
    from: &'a ArcSwap<MapStore>,
    got: std::cell::OnceCell<arc_swap::Guard<Arc<MapStore>>>,
}

impl Lazy<'_> {
    fn get(&self) -> &MapStore {
        self.got.get_or_init(|| self.from.load())
    }
}

impl crate::sample::Maps for Lazy<'_> {
    fn lookup(&self, path: &str, kind: MatchKind, key: &Value) -> Option<&[u8]> {
        crate::sample::Maps::lookup(self.get(), path, kind, key)
    }
    fn contains(&self, file: &str, kind: MatchKind, icase: bool, key: &Value) -> bool {
        crate::sample::Maps::contains(self.get(), file, kind, icase, key)
    }
    fn lookup_regm(&self, path: &str, key: &[u8]) -> Option<Vec<u8>> {
        crate::sample::Maps::lookup_regm(self.get(), path, key)
    }
    fn jwt_key(&self, name: &[u8]) -> Option<&JwtKey> {
        crate::sample::Maps::jwt_key(self.get(), name)
    }
}

/// The live store plus the runtime changes, owned by the proxy.
#[derive(Debug, Default)]
pub struct Shared {
    pub store: ArcSwap<MapStore>,
    /// Runtime operations per file name, in order, not yet committed to the file.
    ops: Mutex<HashMap<String, Vec<Op>>>,
    /// `prepare map` versions staged per file.
    pub versions: Mutex<versions::Versions>,
}

impl Shared {
    /// The live store, loaded when first read.
    pub fn lazy(&self) -> Lazy<'_> {
        Lazy { from: &self.store, got: std::cell::OnceCell::new() }
    }

    /// Installs a freshly loaded configuration's files with the runtime changes applied again.
    /// Returns a note per change that no longer applies (e.g. a `set map` on a key the new file
    /// lacks), for the log.
    pub fn install(&self, loaded: &Loaded) -> Vec<String> {
        let ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let mut notes = Vec::new();
        let mut files = HashMap::default();
        let mut order = Vec::new();
        for f in &loaded.files {
            let file = match ops.get(&f.name).filter(|o| !o.is_empty()) {
                None => f.clone(),
                Some(list) => {
                    let mut entries = f.entries.clone();
                    for op in list {
                        if let Err(e) = overlay::apply(op, &mut entries) {
                            notes.push(format!(
                                "{}: runtime change `{}` no longer applies: {e}",
                                f.name,
                                op.describe()
                            ));
                        }
                    }
                    match f.with_entries(entries) {
                        Ok(nf) => Arc::new(nf),
                        Err(e) => {
                            notes.push(format!("{}: runtime changes dropped: {e}", f.name));
                            f.clone()
                        }
                    }
                }
            };
            order.push(f.name.clone());
            files.insert(f.name.clone(), file);
        }
        self.store.store(Arc::new(MapStore { files, order, jwt_keys: loaded.jwt_keys.clone() }));
        notes
    }

    /// Applies several runtime changes in one swap (no lookup sees a part of them), or none.
    pub fn change_all(&self, name: &str, list: Vec<Op>) -> Result<(), overlay::OpError> {
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let store = self.store.load();
        let file = store.get(name).ok_or(overlay::OpError::NoFile)?;
        for op in &list {
            op.check(file.pattern)?;
        }
        // A rule's `set-map`/`add-acl` that changes nothing (the same value again, a pattern
        // already there) is neither applied nor remembered, and costs no copy of the file:
        // rules run on every request. (Each is a no-op on the file as it is, so all of them in
        // a row are.) A real change copies the entries and rebuilds the file's indexes.
        if list.iter().all(|op| op.from_rule() && !overlay::changes(op, &file.entries)) {
            return Ok(());
        }
        let mut entries = file.entries.clone();
        for op in &list {
            overlay::apply(op, &mut entries)?;
        }
        let nf = file.with_entries(entries).map_err(|e| overlay::OpError::Invalid(e.reason))?;
        self.store.store(Arc::new(store.with(Arc::new(nf))));
        let kept = ops.entry(name.to_string()).or_default();
        for op in list {
            overlay::supersede(kept, &op);
            kept.push(op);
        }
        Ok(())
    }

    /// Applies one runtime change to the live store and remembers it for reloads.
    pub fn change(&self, name: &str, op: Op) -> Result<(), overlay::OpError> {
        self.change_all(name, vec![op])
    }

    /// Writes a file's live content to disk (temporary file, fsync, rename) and forgets its
    /// runtime changes, which the file now holds.
    pub fn commit(&self, name: &str) -> Result<PathBuf, String> {
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let store = self.store.load();
        let file = store.get(name).ok_or("Unknown map identifier.")?;
        crate::fsutil::write_atomic(&file.path, &file.render())
            .map_err(|e| format!("cannot write {}: {e}", file.path.display()))?;
        ops.remove(name);
        Ok(file.path.clone())
    }

    /// Runtime changes not yet committed, per file.
    pub fn pending(&self, name: &str) -> usize {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).get(name).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests;
