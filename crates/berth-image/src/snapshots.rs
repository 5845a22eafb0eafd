//! Layer snapshots keyed by chainID, for overlayfs.
//!
//! `<root>/snapshots/<chainID hex>/` holds one unpacked layer; a snapshot counts as
//! complete only once its record is committed to `<root>/metadata.redb` (redb commits are
//! fsynced and crash-safe). A directory without a record is a leftover of a crash and is
//! removed when the store is opened.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, ReadableDatabase, TableDefinition};

use crate::digest::{Algorithm, Digest};
use crate::unpack::{self, UnpackError};

const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot metadata: {op}: {source}")]
    Db {
        op: &'static str,
        #[source]
        source: redb::Error,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot record {chain_id}: {source}")]
    Record {
        chain_id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("unpacking layer for snapshot: {0}")]
    Unpack(#[from] UnpackError),
    #[error("layer has diffID {actual}, expected {expected}")]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error("parent snapshot {0} does not exist")]
    MissingParent(Digest),
    #[error("snapshot {0} does not exist")]
    Missing(Digest),
}

pub type Result<T> = std::result::Result<T, SnapshotError>;

fn db_err<E: Into<redb::Error>>(op: &'static str) -> impl FnOnce(E) -> SnapshotError {
    move |e| SnapshotError::Db { op, source: e.into() }
}

/// chainID of a layer on top of `parent` (OCI image spec): the diffID itself for the
/// bottom layer, else sha256 of "<parent chainID> <diffID>".
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of_bytes(Algorithm::Sha256, format!("{p} {diff_id}").as_bytes()),
    }
}

/// chainIDs of every layer of an image, bottom first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        out.push(chain_id(out.last(), d));
    }
    out
}

/// What is recorded for a complete snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotInfo {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Uncompressed size of the layer tar.
    pub size: u64,
}

pub struct Snapshots {
    root: PathBuf,
    db: Database,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Snapshots {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let dir = root.join("snapshots");
        fs::create_dir_all(&dir).map_err(|source| SnapshotError::Io {
            op: "create directory",
            path: dir.clone(),
            source,
        })?;
        let db = Database::create(root.join("metadata.redb")).map_err(db_err("open database"))?;
        let tx = db.begin_write().map_err(db_err("begin write"))?;
        tx.open_table(SNAPSHOTS).map_err(db_err("create table"))?;
        tx.commit().map_err(db_err("commit"))?;
        let snaps = Snapshots { root, db };
        snaps.remove_unrecorded()?;
        Ok(snaps)
    }

    fn dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// Directory of the snapshot with `chain_id` (whether or not it exists).
    pub fn path(&self, chain_id: &Digest) -> PathBuf {
        self.dir().join(chain_id.hex())
    }

    pub fn get(&self, chain_id: &Digest) -> Result<Option<SnapshotInfo>> {
        let tx = self.db.begin_read().map_err(db_err("begin read"))?;
        let table = tx.open_table(SNAPSHOTS).map_err(db_err("open table"))?;
        let key = chain_id.to_string();
        let Some(v) = table.get(key.as_str()).map_err(db_err("read record"))? else {
            return Ok(None);
        };
        let info =
            serde_json::from_slice(v.value()).map_err(|source| SnapshotError::Record { chain_id: key, source })?;
        Ok(Some(info))
    }

    /// Every complete snapshot.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>> {
        let tx = self.db.begin_read().map_err(db_err("begin read"))?;
        let table = tx.open_table(SNAPSHOTS).map_err(db_err("open table"))?;
        let mut out = Vec::new();
        for row in redb::ReadableTable::iter(&table).map_err(db_err("read records"))? {
            let (k, v) = row.map_err(db_err("read record"))?;
            let info = serde_json::from_slice(v.value()).map_err(|source| SnapshotError::Record {
                chain_id: k.value().to_string(),
                source,
            })?;
            out.push(info);
        }
        Ok(out)
    }

    /// Unpack `layer` as a snapshot on top of `parent` (a chainID), unless that snapshot
    /// already exists. With `expected_diff_id`, a layer with another diffID is rejected.
    pub fn apply_layer(
        &self,
        parent: Option<&Digest>,
        layer: impl Read,
        media_type: Option<&str>,
        expected_diff_id: Option<&Digest>,
    ) -> Result<SnapshotInfo> {
        if let Some(p) = parent {
            if self.get(p)?.is_none() {
                return Err(SnapshotError::MissingParent(p.clone()));
            }
        }
        if let Some(existing) = expected_diff_id.map(|d| chain_id(parent, d)) {
            if let Some(info) = self.get(&existing)? {
                return Ok(info);
            }
        }
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir().join(format!("tmp-{}-{seq}", std::process::id()));
        let unpacked = unpack::unpack_layer(layer, media_type, &tmp)?;
        let result = self.commit(parent, &tmp, unpacked, expected_diff_id);
        if tmp.exists() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }

    fn commit(
        &self,
        parent: Option<&Digest>,
        tmp: &Path,
        unpacked: unpack::Unpacked,
        expected: Option<&Digest>,
    ) -> Result<SnapshotInfo> {
        if let Some(want) = expected.filter(|w| **w != unpacked.diff_id) {
            return Err(SnapshotError::DiffIdMismatch {
                expected: want.clone(),
                actual: unpacked.diff_id,
            });
        }
        let info = SnapshotInfo {
            chain_id: chain_id(parent, &unpacked.diff_id),
            diff_id: unpacked.diff_id,
            parent: parent.cloned(),
            size: unpacked.size,
        };
        if let Some(existing) = self.get(&info.chain_id)? {
            return Ok(existing);
        }
        let dest = self.path(&info.chain_id);
        if dest.exists() {
            // An unrecorded leftover from a concurrent or crashed apply: ours replaces it.
            fs::remove_dir_all(&dest).map_err(|source| SnapshotError::Io {
                op: "remove stale snapshot",
                path: dest.clone(),
                source,
            })?;
        }
        fs::rename(tmp, &dest).map_err(|source| SnapshotError::Io {
            op: "rename snapshot into place",
            path: dest.clone(),
            source,
        })?;
        let value = serde_json::to_vec(&info).map_err(|source| SnapshotError::Record {
            chain_id: info.chain_id.to_string(),
            source,
        })?;
        let tx = self.db.begin_write().map_err(db_err("begin write"))?;
        {
            let mut table = tx.open_table(SNAPSHOTS).map_err(db_err("open table"))?;
            let key = info.chain_id.to_string();
            table
                .insert(key.as_str(), value.as_slice())
                .map_err(db_err("write record"))?;
        }
        tx.commit().map_err(db_err("commit"))?;
        Ok(info)
    }

    /// The overlay `lowerdir=` value for an image's layers (diffIDs, bottom first): the
    /// snapshot directories top-most first, joined by ':'. Every snapshot must exist.
    pub fn lowerdir(&self, diff_ids: &[Digest]) -> Result<String> {
        let mut dirs = Vec::with_capacity(diff_ids.len());
        for chain in chain_ids(diff_ids).iter().rev() {
            if self.get(chain)?.is_none() {
                return Err(SnapshotError::Missing(chain.clone()));
            }
            dirs.push(self.path(chain).to_string_lossy().into_owned());
        }
        Ok(dirs.join(":"))
    }

    /// Remove snapshot `chain_id`; false if it did not exist. The record goes first (in
    /// one transaction), then the directory: a crash in between leaves an unrecorded
    /// directory, which the next `open` removes. Callers must know no image or
    /// container still uses it (a child snapshot does not stop removal of its parent).
    pub fn remove(&self, chain_id: &Digest) -> Result<bool> {
        let key = chain_id.to_string();
        let tx = self.db.begin_write().map_err(db_err("begin write"))?;
        let existed = {
            let mut table = tx.open_table(SNAPSHOTS).map_err(db_err("open table"))?;
            let removed = table.remove(key.as_str()).map_err(db_err("remove record"))?;
            removed.is_some()
        };
        tx.commit().map_err(db_err("commit"))?;
        let path = self.path(chain_id);
        match fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(SnapshotError::Io {
                    op: "remove snapshot",
                    path,
                    source,
                })
            }
        }
        Ok(existed)
    }

    /// Remove snapshot directories with no committed record (crash leftovers).
    fn remove_unrecorded(&self) -> Result<()> {
        let dir = self.dir();
        let io = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| SnapshotError::Io { op, path, source }
        };
        for entry in fs::read_dir(&dir).map_err(io("read directory", &dir))? {
            let path = entry.map_err(io("read directory", &dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let recorded = match Digest::from_hex(Algorithm::Sha256, name) {
                Ok(d) => self.get(&d)?.is_some(),
                Err(_) => false,
            };
            if !recorded {
                fs::remove_dir_all(&path).map_err(io("remove leftover", &path))?;
            }
        }
        Ok(())
    }
}
