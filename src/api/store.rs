//! The API's durable state under `<state_dir>/api/`: the configuration version and the open
//! transactions, each a staged copy of lbha.toml, so both survive a restart. Commits validate,
//! write lbha.toml atomically (previous file kept as `lbha.toml.bak`) and reload in process.

use super::error::{ApiError, ApiResult};
use crate::fsutil::{mode_of, remove_stale_temps, write_atomic, write_secret};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use toml_edit::DocumentMut;

/// Asks the daemon to reload lbha.toml; resolves when the new config is live (or failed to be).
pub type ReloadFn = Arc<dyn Fn() -> BoxFuture<'static, Result<u64, String>> + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxnStatus {
    InProgress,
    Outdated,
    Failed,
    Success,
}

impl TxnStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TxnStatus::InProgress => "in_progress",
            TxnStatus::Outdated => "outdated",
            TxnStatus::Failed => "failed",
            TxnStatus::Success => "success",
        }
    }
}

/// The transaction model of the original: `{_version, id, status}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnInfo {
    #[serde(rename = "_version")]
    pub version: u64,
    pub id: String,
    pub status: TxnStatus,
}

struct Txn {
    info: TxnInfo,
    doc: DocumentMut,
}

#[derive(Serialize, Deserialize)]
struct VersionFile {
    version: u64,
    sha256: String,
    /// The last `Reload-ID` number handed out, so IDs do not repeat after a restart.
    #[serde(default)]
    reload_seq: u64,
}

/// Written before lbha.toml is replaced and removed once the commit is recorded: after a crash
/// in between, the next start compares the file with `sha256` to learn whether the commit landed.
#[derive(Serialize, Deserialize)]
struct Journal {
    base: u64,
    sha256: String,
    txn: Option<String>,
    /// The process committing: during `lbha upgrade` the old one may still be finishing a commit
    /// when the new one opens the store. Absent in journals of older versions.
    #[serde(default)]
    pid: Option<u32>,
}

/// How long a starting process waits for another live process's commit to finish.
const OTHER_WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits while a live process other than this one has a commit in flight in `dir` (its
/// journal exists), so that its temp files and journal are not taken for a crash's leftovers.
/// True if the commit finished (or there was none), false if the wait ran out.
fn wait_for_other_writer(dir: &Path, wait: std::time::Duration) -> bool {
    let jp = dir.join(JOURNAL);
    let deadline = std::time::Instant::now() + wait;
    loop {
        let writer = std::fs::read_to_string(&jp)
            .ok()
            .and_then(|t| serde_json::from_str::<Journal>(&t).ok())
            .and_then(|j| j.pid)
            .filter(|&pid| pid != std::process::id() && process_alive(pid));
        let Some(pid) = writer else {
            return true;
        };
        if std::time::Instant::now() >= deadline {
            tracing::warn!("process {pid} has had a commit in flight for {wait:?}; taking its journal over");
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence; EPERM means it exists under another user.
    matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None), Ok(()) | Err(nix::errno::Errno::EPERM))
}

const JOURNAL: &str = "commit.json";

/// One reload, as `GET /services/haproxy/reloads` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadRecord {
    pub id: String,
    pub status: &'static str,
    pub reload_timestamp: u64,
    pub response: String,
}

/// How a write was committed: the new version and the reload that made it live.
#[derive(Debug, Clone)]
pub struct Committed {
    pub version: u64,
    pub reload_id: String,
}

pub struct Store {
    config: PathBuf,
    dir: PathBuf,
    version: u64,
    digest: String,
    text: String,
    doc: DocumentMut,
    txns: BTreeMap<String, Txn>,
    max_open: usize,
    reloads: VecDeque<ReloadRecord>,
    reload_seq: u64,
}

fn io_err(what: &str, path: &Path, e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("{what} {}: {e}", path.display()))
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_doc(text: &str, path: &Path) -> ApiResult<DocumentMut> {
    text.parse::<DocumentMut>().map_err(|e| ApiError::Internal(format!("{}: not valid TOML: {e}", path.display())))
}

impl Store {
    /// Loads the version and transactions, creating `<state_dir>/api/` if needed.
    pub fn open(config: &Path, state_dir: &Path, max_open: usize) -> ApiResult<Store> {
        let dir = state_dir.join("api");
        let tdir = dir.join("transactions");
        // Staged transactions are copies of the config, secrets included: owner only.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tdir)
            .map_err(|e| io_err("cannot create", &tdir, e))?;
        wait_for_other_writer(&dir, OTHER_WRITER_WAIT);
        remove_stale_temps(&dir, &[]);
        remove_stale_temps(&tdir, &[]);
        if let (Some(cdir), Some(name)) = (config.parent(), config.file_name().and_then(|n| n.to_str())) {
            let bak = format!("{name}.bak");
            let cdir = if cdir.as_os_str().is_empty() { Path::new(".") } else { cdir };
            remove_stale_temps(cdir, &[name, &bak]);
        }
        let vpath = dir.join("version.json");
        let (version, digest, reload_seq) = match std::fs::read_to_string(&vpath) {
            Ok(s) => {
                let v: VersionFile = serde_json::from_str(&s).map_err(|e| io_err("corrupt version file", &vpath, e))?;
                (v.version, v.sha256, v.reload_seq)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = std::fs::read_to_string(config).map_err(|e| io_err("cannot read", config, e))?;
                (1, sha256_hex(&text), 0)
            }
            Err(e) => return Err(io_err("cannot read", &vpath, e)),
        };
        let mut store = Store {
            config: config.to_path_buf(),
            dir,
            version,
            digest,
            // Empty, so the first sync reads the file and compares it with the recorded digest.
            text: String::new(),
            doc: DocumentMut::new(),
            txns: BTreeMap::new(),
            max_open,
            reloads: VecDeque::new(),
            reload_seq,
        };
        store.load_txns()?;
        store.recover_commit()?;
        store.persist_version()?;
        store.sync()?;
        Ok(store)
    }

    fn tdir(&self) -> PathBuf {
        self.dir.join("transactions")
    }

    fn load_txns(&mut self) -> ApiResult<()> {
        let tdir = self.tdir();
        let entries = std::fs::read_dir(&tdir).map_err(|e| io_err("cannot list", &tdir, e))?;
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let loaded = std::fs::read_to_string(&p)
                .map_err(|e| e.to_string())
                .and_then(|s| serde_json::from_str::<TxnInfo>(&s).map_err(|e| e.to_string()))
                .and_then(|info| {
                    let tp = p.with_extension("toml");
                    let text = std::fs::read_to_string(&tp).map_err(|e| e.to_string())?;
                    let doc = text.parse::<DocumentMut>().map_err(|e| e.to_string())?;
                    Ok(Txn { info, doc })
                });
            match loaded {
                Ok(t) => {
                    self.txns.insert(t.info.id.clone(), t);
                }
                Err(e) => tracing::warn!("skipping transaction file {}: {e}", p.display()),
            }
        }
        Ok(())
    }

    /// Finishes the bookkeeping of a commit a crash interrupted: if lbha.toml is the committed
    /// text, the commit happened (it is what runs now), so the version moves on and its
    /// transaction is gone, not "outdated"; otherwise nothing was committed.
    fn recover_commit(&mut self) -> ApiResult<()> {
        let jp = self.dir.join(JOURNAL);
        let text = match std::fs::read_to_string(&jp) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("cannot read", &jp, e)),
        };
        let j: Journal = serde_json::from_str(&text).map_err(|e| io_err("corrupt commit journal", &jp, e))?;
        let current = std::fs::read_to_string(&self.config).map_err(|e| io_err("cannot read", &self.config, e))?;
        if sha256_hex(&current) == j.sha256 {
            if self.version == j.base {
                self.version += 1;
            }
            self.digest = j.sha256;
            if let Some(id) = &j.txn {
                self.txns.remove(id);
                self.remove_txn_files(id);
            }
            self.outdate(j.base)?;
            tracing::info!(version = self.version, "completed the record of a commit interrupted by a stop");
        } else if let Some(id) = &j.txn
            && let Some(t) = self.txns.get(id)
        {
            tracing::info!(
                "transaction {id} was not committed before the stop; it is still {}",
                t.info.status.as_str()
            );
        }
        self.persist_version()?;
        std::fs::remove_file(&jp).map_err(|e| io_err("cannot remove", &jp, e))
    }

    /// The mode of files that copy the config: the config's own (0600 if it cannot be read).
    fn secret_mode(&self) -> u32 {
        mode_of(&self.config).unwrap_or(0o600)
    }

    fn persist_version(&self) -> ApiResult<()> {
        let p = self.dir.join("version.json");
        let v = VersionFile { version: self.version, sha256: self.digest.clone(), reload_seq: self.reload_seq };
        let s = serde_json::to_string(&v).map_err(|e| ApiError::Internal(e.to_string()))?;
        write_atomic(&p, s.as_bytes()).map_err(|e| io_err("cannot write", &p, e))
    }

    fn persist_txn(&self, id: &str) -> ApiResult<()> {
        let Some(t) = self.txns.get(id) else {
            return Ok(());
        };
        let base = self.tdir().join(id);
        let tp = base.with_extension("toml");
        let mode = self.secret_mode();
        write_secret(&tp, t.doc.to_string().as_bytes(), mode).map_err(|e| io_err("cannot write", &tp, e))?;
        let jp = base.with_extension("json");
        let s = serde_json::to_string(&t.info).map_err(|e| ApiError::Internal(e.to_string()))?;
        write_secret(&jp, s.as_bytes(), mode).map_err(|e| io_err("cannot write", &jp, e))
    }

    fn persist_status(&self, id: &str) -> ApiResult<()> {
        let Some(t) = self.txns.get(id) else {
            return Ok(());
        };
        let jp = self.tdir().join(id).with_extension("json");
        let s = serde_json::to_string(&t.info).map_err(|e| ApiError::Internal(e.to_string()))?;
        write_secret(&jp, s.as_bytes(), self.secret_mode()).map_err(|e| io_err("cannot write", &jp, e))
    }

    fn remove_txn_files(&self, id: &str) {
        let base = self.tdir().join(id);
        let _ = std::fs::remove_file(base.with_extension("json"));
        let _ = std::fs::remove_file(base.with_extension("toml"));
    }

    /// Picks up edits made to lbha.toml outside the API: they count as a new version, so
    /// transactions begun before them cannot silently overwrite them.
    pub fn sync(&mut self) -> ApiResult<()> {
        let text = std::fs::read_to_string(&self.config).map_err(|e| io_err("cannot read", &self.config, e))?;
        if text == self.text {
            return Ok(());
        }
        let digest = sha256_hex(&text);
        self.doc = parse_doc(&text, &self.config)?;
        self.text = text;
        if digest != self.digest {
            let old = self.version;
            self.version += 1;
            self.digest = digest;
            self.persist_version()?;
            self.outdate(old)?;
            tracing::info!(version = self.version, "lbha.toml changed outside the API");
        }
        Ok(())
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn doc(&self) -> &DocumentMut {
        &self.doc
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The staged document of an open transaction (for reads with `transaction_id`).
    pub fn txn_doc(&self, id: &str) -> ApiResult<(&DocumentMut, u64)> {
        let t = self.txns.get(id).ok_or_else(|| no_txn(id))?;
        Ok((&t.doc, t.info.version))
    }

    pub fn check_version(&self, given: u64) -> ApiResult<()> {
        if given != self.version {
            return Err(ApiError::Conflict(format!(
                "version mismatch: version in configuration file is {}, given version is {given}",
                self.version
            )));
        }
        Ok(())
    }

    pub fn create_txn(&mut self, version: u64) -> ApiResult<TxnInfo> {
        self.check_version(version)?;
        let open = self.txns.values().filter(|t| t.info.status == TxnStatus::InProgress).count();
        if open >= self.max_open {
            return Err(ApiError::TooManyTransactions(format!(
                "cannot start a new transaction, reached the maximum of {} open transactions",
                self.max_open
            )));
        }
        let info = TxnInfo { version, id: uuid::Uuid::new_v4().to_string(), status: TxnStatus::InProgress };
        self.txns.insert(info.id.clone(), Txn { info: info.clone(), doc: self.doc.clone() });
        if let Err(e) = self.persist_txn(&info.id) {
            self.txns.remove(&info.id);
            return Err(e);
        }
        Ok(info)
    }

    pub fn list_txns(&self, status: Option<&str>) -> Vec<TxnInfo> {
        self.txns
            .values()
            .filter(|t| status.is_none_or(|s| t.info.status.as_str() == s))
            .map(|t| t.info.clone())
            .collect()
    }

    pub fn get_txn(&self, id: &str) -> ApiResult<TxnInfo> {
        self.txns
            .get(id)
            .map(|t| t.info.clone())
            .ok_or_else(|| ApiError::NotFound(format!("transaction {id} does not exist")))
    }

    pub fn delete_txn(&mut self, id: &str) -> ApiResult<()> {
        if self.txns.remove(id).is_none() {
            return Err(ApiError::NotFound(format!("transaction {id} does not exist")));
        }
        self.remove_txn_files(id);
        Ok(())
    }

    /// Applies one operation inside a transaction. The operation runs on a copy, so a failed
    /// one leaves the staged document as it was.
    pub fn stage<T>(&mut self, id: &str, op: impl FnOnce(&mut DocumentMut) -> ApiResult<T>) -> ApiResult<(T, u64)> {
        let t = self.txns.get(id).ok_or_else(|| no_txn(id))?;
        if t.info.status != TxnStatus::InProgress {
            return Err(not_committable(id, t.info.status));
        }
        let mut doc = t.doc.clone();
        let out = op(&mut doc)?;
        let version = t.info.version;
        if let Some(t) = self.txns.get_mut(id) {
            t.doc = doc;
        }
        self.persist_txn(id)?;
        Ok((out, version))
    }

    /// A write without a transaction: an implicit one at `version`, committed at once.
    pub async fn write_now<T>(
        &mut self,
        version: u64,
        op: impl FnOnce(&mut DocumentMut) -> ApiResult<T>,
        reload: &ReloadFn,
    ) -> ApiResult<(T, Committed)> {
        self.check_version(version)?;
        let mut doc = self.doc.clone();
        let out = op(&mut doc)?;
        let c = self.commit_doc(doc, version, None, reload).await?;
        Ok((out, c))
    }

    pub async fn commit_txn(&mut self, id: &str, reload: &ReloadFn) -> ApiResult<(TxnInfo, Committed)> {
        let t = self.txns.get(id).ok_or_else(|| ApiError::NotFound(format!("transaction {id} does not exist")))?;
        if t.info.status != TxnStatus::InProgress {
            return Err(not_committable(id, t.info.status));
        }
        let base = t.info.version;
        if base != self.version {
            self.set_status(id, TxnStatus::Outdated)?;
            return Err(ApiError::Conflict(format!(
                "version mismatch: version in configuration file is {}, given version is {base}",
                self.version
            )));
        }
        let doc = t.doc.clone();
        match self.commit_doc(doc, base, Some(id), reload).await {
            Ok(c) => {
                let info = TxnInfo { version: c.version, id: id.to_string(), status: TxnStatus::Success };
                Ok((info, c))
            }
            Err(e) => {
                self.set_status(id, TxnStatus::Failed)?;
                Err(e)
            }
        }
    }

    fn set_status(&mut self, id: &str, s: TxnStatus) -> ApiResult<()> {
        if let Some(t) = self.txns.get_mut(id) {
            t.info.status = s;
        }
        self.persist_status(id)
    }

    /// Marks every open transaction begun at `version` or before as outdated.
    fn outdate(&mut self, version: u64) -> ApiResult<()> {
        let ids: Vec<String> = self
            .txns
            .values()
            .filter(|t| t.info.status == TxnStatus::InProgress && t.info.version <= version)
            .map(|t| t.info.id.clone())
            .collect();
        for id in ids {
            self.set_status(&id, TxnStatus::Outdated)?;
        }
        Ok(())
    }

    /// Validate → back up → write → reload; on a failed reload the old file is put back, so
    /// file, config and running state are as before.
    async fn commit_doc(
        &mut self,
        doc: DocumentMut,
        base: u64,
        txn: Option<&str>,
        reload: &ReloadFn,
    ) -> ApiResult<Committed> {
        let text = doc.to_string();
        if let Err(e) = crate::config::parse(&text, &self.config) {
            return Err(ApiError::BadRequest(format!("validation error: {e}")));
        }
        let bak = backup_path(&self.config);
        write_secret(&bak, self.text.as_bytes(), self.secret_mode()).map_err(|e| io_err("cannot write", &bak, e))?;
        let reload_id = self.next_reload_id()?;
        let digest = sha256_hex(&text);
        let jp = self.dir.join(JOURNAL);
        let journal =
            Journal { base, sha256: digest.clone(), txn: txn.map(str::to_string), pid: Some(std::process::id()) };
        let js = serde_json::to_string(&journal).map_err(|e| ApiError::Internal(e.to_string()))?;
        write_atomic(&jp, js.as_bytes()).map_err(|e| io_err("cannot write", &jp, e))?;
        if let Err(e) = write_atomic(&self.config, text.as_bytes()) {
            let _ = std::fs::remove_file(&jp);
            return Err(io_err("cannot write", &self.config, e));
        }
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if let Err(e) = reload().await {
            let restored = write_atomic(&self.config, self.text.as_bytes());
            if restored.is_ok() {
                let _ = std::fs::remove_file(&jp);
            }
            self.record(ReloadRecord { id: reload_id, status: "failed", reload_timestamp: now, response: e.clone() });
            let what = txn.map_or(String::new(), |id| format!(" of transaction {id}"));
            return Err(match restored {
                Ok(()) => ApiError::BadRequest(format!("reload failed{what}, previous configuration kept: {e}")),
                Err(w) => ApiError::Internal(format!(
                    "reload failed{what} ({e}) and restoring {} failed ({w}); the previous file is {}",
                    self.config.display(),
                    bak.display()
                )),
            });
        }
        self.record(ReloadRecord {
            id: reload_id.clone(),
            status: "succeeded",
            reload_timestamp: now,
            response: String::new(),
        });
        self.digest = digest;
        self.text = text;
        self.doc = doc;
        self.version += 1;
        self.persist_version()?;
        if let Some(id) = txn {
            // A committed transaction is gone, as in the original.
            self.txns.remove(id);
            self.remove_txn_files(id);
        }
        self.outdate(base)?;
        std::fs::remove_file(&jp).map_err(|e| io_err("cannot remove", &jp, e))?;
        Ok(Committed { version: self.version, reload_id })
    }

    /// The next `Reload-ID`, recorded before use so a restart never hands it out again.
    fn next_reload_id(&mut self) -> ApiResult<String> {
        self.reload_seq += 1;
        self.persist_version()?;
        let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        Ok(format!("{}-{}", &date[..10.min(date.len())], self.reload_seq))
    }

    fn record(&mut self, r: ReloadRecord) {
        if self.reloads.len() >= 100 {
            self.reloads.pop_front();
        }
        self.reloads.push_back(r);
    }

    pub fn reloads(&self) -> Vec<ReloadRecord> {
        self.reloads.iter().cloned().collect()
    }
}

pub fn backup_path(config: &Path) -> PathBuf {
    let mut name = config.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".bak");
    config.with_file_name(name)
}

fn no_txn(id: &str) -> ApiError {
    ApiError::BadRequest(format!("transaction {id} does not exist"))
}

fn not_committable(id: &str, s: TxnStatus) -> ApiError {
    ApiError::NotAcceptable(format!("transaction {id} is {} and cannot be committed", s.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    struct Scratch(PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn journal_of(dir: &Path, pid: u32) {
        let j = Journal { base: 1, sha256: "x".into(), txn: None, pid: Some(pid) };
        std::fs::write(dir.join(JOURNAL), serde_json::to_string(&j).unwrap()).unwrap();
    }

    #[test]
    fn a_live_writers_commit_is_waited_for_and_a_dead_ones_is_not() {
        let (_s, _config, state) = scratch("writer");
        std::fs::create_dir_all(&state).unwrap();
        let mut other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        journal_of(&state, other.id());
        // Still in flight when the (short) wait runs out.
        assert!(!wait_for_other_writer(&state, Duration::from_millis(200)));
        // Finished meanwhile: the wait ends with it.
        let jp = state.join(JOURNAL);
        let remover = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            std::fs::remove_file(jp).unwrap();
        });
        assert!(wait_for_other_writer(&state, Duration::from_secs(30)));
        remover.join().unwrap();
        // A writer that died mid-commit is a crash's leftover: no wait.
        other.kill().unwrap();
        other.wait().unwrap();
        journal_of(&state, other.id());
        assert!(wait_for_other_writer(&state, Duration::from_secs(30)));
        // Our own journal (a crash of this very process is not possible) is no reason to wait.
        journal_of(&state, std::process::id());
        assert!(wait_for_other_writer(&state, Duration::from_secs(30)));
    }

    /// A config dir holding an 0600 lbha.toml, and a state dir.
    fn scratch(tag: &str) -> (Scratch, PathBuf, PathBuf) {
        let d = std::env::temp_dir().join(format!("lbha-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let config = d.join("lbha.toml");
        std::fs::write(&config, "# test\n").unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        let state = d.join("state");
        (Scratch(d), config, state)
    }

    fn ok_reload() -> ReloadFn {
        Arc::new(|| Box::pin(async { Ok(1) }))
    }

    fn set_maxconn(n: i64) -> impl FnOnce(&mut DocumentMut) -> ApiResult<()> {
        move |d| {
            d["global"]["maxconn"] = toml_edit::value(n);
            Ok(())
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn copies_of_the_config_keep_its_mode() {
        let (_d, config, state) = scratch("mode");
        let mut s = Store::open(&config, &state, 5).unwrap();
        let t = s.create_txn(1).unwrap();
        s.stage(&t.id, set_maxconn(10)).unwrap();
        let staged = state.join("api").join("transactions").join(&t.id);
        assert_eq!(mode(&staged.with_extension("toml")), 0o600);
        assert_eq!(mode(&staged.with_extension("json")), 0o600);
        assert_eq!(mode(&state.join("api").join("transactions")), 0o700);
        s.write_now(1, set_maxconn(11), &ok_reload()).await.unwrap();
        assert_eq!(mode(&backup_path(&config)), 0o600);
        assert_eq!(mode(&config), 0o600);
    }

    #[tokio::test]
    async fn temp_files_of_a_crashed_writer_are_removed_at_open() {
        let (_d, config, state) = scratch("temps");
        drop(Store::open(&config, &state, 5).unwrap());
        // A pid above the kernel's limit: never alive.
        let left = [
            config.with_file_name(".lbha.toml.tmp.2147483632"),
            config.with_file_name(".lbha.toml.bak.tmp.2147483632"),
            state.join("api").join(".version.json.tmp.2147483632"),
            state.join("api").join("transactions").join(".x.toml.tmp.2147483632"),
        ];
        for p in &left {
            std::fs::write(p, "secret").unwrap();
        }
        drop(Store::open(&config, &state, 5).unwrap());
        for p in &left {
            assert!(!p.exists(), "{} left", p.display());
        }
    }

    #[tokio::test]
    async fn reload_ids_go_on_after_a_restart() {
        let (_d, config, state) = scratch("ids");
        let mut s = Store::open(&config, &state, 5).unwrap();
        let (_, a) = s.write_now(1, set_maxconn(10), &ok_reload()).await.unwrap();
        let (_, b) = s.write_now(2, set_maxconn(11), &ok_reload()).await.unwrap();
        drop(s);
        let mut s = Store::open(&config, &state, 5).unwrap();
        let (_, c) = s.write_now(3, set_maxconn(12), &ok_reload()).await.unwrap();
        let ids = [a.reload_id, b.reload_id, c.reload_id];
        assert!(ids[0].ends_with("-1") && ids[1].ends_with("-2") && ids[2].ends_with("-3"), "{ids:?}");
    }

    /// The process stops while the commit's reload runs: lbha.toml already holds the change, and
    /// the next start runs it. The API must show it committed, not the transaction "outdated".
    #[tokio::test]
    async fn a_commit_cut_by_a_crash_reports_the_truth() {
        let (_d, config, state) = scratch("crash");
        let mut s = Store::open(&config, &state, 5).unwrap();
        let t = s.create_txn(1).unwrap();
        let other = s.create_txn(1).unwrap();
        s.stage(&t.id, set_maxconn(10)).unwrap();
        let hang: ReloadFn = Arc::new(|| Box::pin(std::future::pending()));
        let cut = tokio::time::timeout(Duration::from_millis(50), s.commit_txn(&t.id, &hang)).await;
        assert!(cut.is_err(), "the reload never finishes");
        drop(s);
        assert!(std::fs::read_to_string(&config).unwrap().contains("maxconn = 10"));
        let s = Store::open(&config, &state, 5).unwrap();
        assert_eq!(s.version(), 2, "the commit counts once");
        assert!(s.get_txn(&t.id).is_err(), "committed, so gone: {:?}", s.list_txns(None));
        assert_eq!(s.get_txn(&other.id).unwrap().status, TxnStatus::Outdated);
        assert!(!state.join("api").join(JOURNAL).exists());

        // Cut before lbha.toml was replaced (the write itself failed): nothing was committed.
        drop(s);
        let mut s = Store::open(&config, &state, 5).unwrap();
        let t = s.create_txn(2).unwrap();
        s.stage(&t.id, set_maxconn(20)).unwrap();
        let j = Journal { base: 2, sha256: "0".repeat(64), txn: Some(t.id.clone()), pid: None };
        std::fs::write(state.join("api").join(JOURNAL), serde_json::to_string(&j).unwrap()).unwrap();
        drop(s);
        let s = Store::open(&config, &state, 5).unwrap();
        assert_eq!(s.version(), 2);
        assert_eq!(s.get_txn(&t.id).unwrap().status, TxnStatus::InProgress);
    }
}
