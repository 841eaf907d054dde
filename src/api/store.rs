//! The API's durable state under `<state_dir>/api/`: the configuration version and the open
//! transactions, each a staged copy of lbha.toml, so both survive a restart. Commits validate,
//! write lbha.toml atomically (previous file kept as `lbha.toml.bak`) and reload in process.

use super::error::{ApiError, ApiResult};
use crate::fsutil::write_atomic;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
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
}

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
        std::fs::create_dir_all(&tdir).map_err(|e| io_err("cannot create", &tdir, e))?;
        let vpath = dir.join("version.json");
        let (version, digest) = match std::fs::read_to_string(&vpath) {
            Ok(s) => {
                let v: VersionFile = serde_json::from_str(&s).map_err(|e| io_err("corrupt version file", &vpath, e))?;
                (v.version, v.sha256)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = std::fs::read_to_string(config).map_err(|e| io_err("cannot read", config, e))?;
                (1, sha256_hex(&text))
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
            reload_seq: 0,
        };
        store.load_txns()?;
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

    fn persist_version(&self) -> ApiResult<()> {
        let p = self.dir.join("version.json");
        let v = VersionFile { version: self.version, sha256: self.digest.clone() };
        let s = serde_json::to_string(&v).map_err(|e| ApiError::Internal(e.to_string()))?;
        write_atomic(&p, s.as_bytes()).map_err(|e| io_err("cannot write", &p, e))
    }

    fn persist_txn(&self, id: &str) -> ApiResult<()> {
        let Some(t) = self.txns.get(id) else {
            return Ok(());
        };
        let base = self.tdir().join(id);
        let tp = base.with_extension("toml");
        write_atomic(&tp, t.doc.to_string().as_bytes()).map_err(|e| io_err("cannot write", &tp, e))?;
        let jp = base.with_extension("json");
        let s = serde_json::to_string(&t.info).map_err(|e| ApiError::Internal(e.to_string()))?;
        write_atomic(&jp, s.as_bytes()).map_err(|e| io_err("cannot write", &jp, e))
    }

    fn persist_status(&self, id: &str) -> ApiResult<()> {
        let Some(t) = self.txns.get(id) else {
            return Ok(());
        };
        let jp = self.tdir().join(id).with_extension("json");
        let s = serde_json::to_string(&t.info).map_err(|e| ApiError::Internal(e.to_string()))?;
        write_atomic(&jp, s.as_bytes()).map_err(|e| io_err("cannot write", &jp, e))
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
                // A committed transaction is gone, as in the original.
                self.txns.remove(id);
                self.remove_txn_files(id);
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
        write_atomic(&bak, self.text.as_bytes()).map_err(|e| io_err("cannot write", &bak, e))?;
        write_atomic(&self.config, text.as_bytes()).map_err(|e| io_err("cannot write", &self.config, e))?;
        let reload_id = self.next_reload_id();
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if let Err(e) = reload().await {
            let restored = write_atomic(&self.config, self.text.as_bytes());
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
        self.digest = sha256_hex(&text);
        self.text = text;
        self.doc = doc;
        self.version += 1;
        self.persist_version()?;
        self.outdate(base)?;
        Ok(Committed { version: self.version, reload_id })
    }

    fn next_reload_id(&mut self) -> String {
        self.reload_seq += 1;
        let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        format!("{}-{}", &date[..10.min(date.len())], self.reload_seq)
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
