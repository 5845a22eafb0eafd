//! Content-addressed blob store: `<root>/blobs/<algo>/<hex>`.
//!
//! A blob becomes visible only by `rename` of a fully written, verified and fsynced temp
//! file from `<root>/ingest/`, so a reader (or a crash) never sees a partial or wrong
//! blob. Each in-progress ingest holds an exclusive `flock` on its temp file: the lock
//! dies with the process, which is how `cleanup_ingest` tells a crashed ingest's leftover
//! from one that another process is still writing.
//!
//! Downloads of a blob whose digest is known go through [`BlobStore::resume_ingest`]
//! instead (see [`partial`]): their bytes survive an interruption in
//! `<root>/ingest/<algo>-<hex>.partial`, so the next attempt can ask for the rest only.

mod partial;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::{Algorithm, Digest, Hasher};

pub use partial::PartialIngest;

const BUF_SIZE: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading the content of blob {blob}: {source}")]
    Read {
        blob: String,
        #[source]
        source: io::Error,
    },
    #[error("blob {expected}: content has digest {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {blob}: expected {expected} bytes, got {actual}")]
    SizeMismatch { blob: String, expected: u64, actual: u64 },
    #[error("blob {digest} not found")]
    NotFound { digest: Digest },
    /// Writing, syncing or renaming the content of one blob failed (a full disk shows
    /// here as "No space left on device").
    #[error("{op} {path} for blob {blob}: {source}")]
    BlobIo {
        op: &'static str,
        blob: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    /// Whether the error is the store's file system being full (ENOSPC or EDQUOT).
    pub fn is_disk_full(&self) -> bool {
        let source = match self {
            StoreError::Io { source, .. } | StoreError::BlobIo { source, .. } => source,
            _ => return false,
        };
        matches!(source.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn blob_err<'a>(op: &'static str, blob: &'a str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::BlobIo {
        op,
        blob: blob.to_string(),
        path: path.to_path_buf(),
        source,
    }
}

/// A blob found damaged by [`BlobStore::verify_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptBlob {
    pub path: PathBuf,
    /// Why: the digest its content really has, or what else is wrong with it.
    pub problem: String,
}

#[derive(Debug, Default, Clone)]
pub struct VerifyReport {
    /// Blobs whose content matches their name.
    pub ok: Vec<Digest>,
    pub corrupt: Vec<CorruptBlob>,
}

#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
}

static INGEST_SEQ: AtomicU64 = AtomicU64::new(0);

impl BlobStore {
    /// Open (creating if needed) the store at `root`, removing leftovers of crashed ingests.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let store = BlobStore { root: root.into() };
        for dir in Algorithm::ALL
            .iter()
            .map(|a| store.algo_dir(*a))
            .chain([store.ingest_dir()])
        {
            fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        }
        store.cleanup_ingest()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn algo_dir(&self, algo: Algorithm) -> PathBuf {
        self.root.join("blobs").join(algo.as_str())
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// Where blob `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.algo_dir(digest.algorithm()).join(digest.hex())
    }

    pub fn exists(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("stat", &path)(e)),
        }
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound { digest: digest.clone() },
            _ => io_err("open", &path)(e),
        })
    }

    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        fs::remove_file(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound { digest: digest.clone() },
            _ => io_err("remove", &path)(e),
        })?;
        sync_dir(&self.algo_dir(digest.algorithm()))
    }

    /// Stream `reader` into the store and return its digest (sha256 unless `expected` says
    /// otherwise). With `expected` and/or `size`, content that does not match is an error
    /// and nothing becomes visible. If `expected` is already stored, `reader` is not read.
    pub fn ingest(&self, expected: Option<&Digest>, size: Option<u64>, mut reader: impl Read) -> Result<Digest> {
        let algorithm = expected.map_or(Algorithm::Sha256, Digest::algorithm);
        let label = expected.map_or_else(|| "<unknown digest>".to_string(), Digest::to_string);
        if let Some(d) = expected {
            if let Some(len) = self.stored_len(d)? {
                return match size {
                    Some(want) if want != len => Err(StoreError::SizeMismatch {
                        blob: label,
                        expected: want,
                        actual: len,
                    }),
                    _ => Ok(d.clone()),
                };
            }
        }

        let mut tmp = self.create_temp()?;
        let mut hasher = Hasher::new(algorithm);
        let mut buf = vec![0u8; BUF_SIZE];
        let mut written: u64 = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(StoreError::Read { blob: label, source }),
            };
            written += n as u64;
            if let Some(want) = size.filter(|want| written > *want) {
                // Stop early rather than store an unbounded stream we will reject anyway.
                return Err(StoreError::SizeMismatch {
                    blob: label,
                    expected: want,
                    actual: written,
                });
            }
            hasher.update(&buf[..n]);
            tmp.file
                .write_all(&buf[..n])
                .map_err(blob_err("write", &label, &tmp.path))?;
        }
        if let Some(want) = size.filter(|want| written != *want) {
            return Err(StoreError::SizeMismatch {
                blob: label,
                expected: want,
                actual: written,
            });
        }
        let actual = hasher.finish();
        if let Some(want) = expected.filter(|want| **want != actual) {
            return Err(StoreError::DigestMismatch {
                expected: want.clone(),
                actual,
            });
        }
        tmp.file.sync_all().map_err(blob_err("fsync", &label, &tmp.path))?;
        let dest = self.blob_path(&actual);
        // A concurrent ingest of the same content may have renamed first: replacing its
        // file with identical bytes is harmless, and both callers succeed.
        fs::rename(&tmp.path, &dest).map_err(blob_err("rename into place", &label, &dest))?;
        tmp.persisted = true;
        sync_dir(&self.algo_dir(algorithm))?;
        Ok(actual)
    }

    fn stored_len(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.blob_path(digest);
        match fs::symlink_metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("stat", &path)(e)),
        }
    }

    fn create_temp(&self) -> Result<TempBlob> {
        let dir = self.ingest_dir();
        loop {
            let seq = INGEST_SEQ.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let path = dir.join(format!("{}-{seq}-{nanos}.tmp", std::process::id()));
            let file = match OpenOptions::new().write(true).create_new(true).mode(0o444).open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err("create", &path)(e)),
            };
            file.lock().map_err(io_err("lock", &path))?;
            // A concurrent cleanup_ingest may have locked and unlinked the file between
            // create and lock; the lock then holds an orphan inode, so start again.
            let same = match fs::symlink_metadata(&path) {
                Ok(m) => {
                    let ours = file.metadata().map_err(io_err("stat", &path))?;
                    m.ino() == ours.ino() && m.dev() == ours.dev()
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(io_err("stat", &path)(e)),
            };
            if same {
                return Ok(TempBlob {
                    file,
                    path,
                    persisted: false,
                });
            }
        }
    }

    /// Remove temp files left by ingests whose process died. Files still locked by a live
    /// ingest (this process or another) are left alone, and so are the `.partial` files of
    /// interrupted downloads, which exist to be resumed (see
    /// [`cleanup_partials`](Self::cleanup_partials)). Returns how many were removed.
    pub fn cleanup_ingest(&self) -> Result<usize> {
        self.remove_unlocked(|path| !partial::is_partial(path))
    }

    /// Remove unlocked ingest files that `select` picks.
    fn remove_unlocked(&self, select: impl Fn(&Path) -> bool) -> Result<usize> {
        let dir = self.ingest_dir();
        let mut removed = 0;
        for entry in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let path = entry.map_err(io_err("read directory", &dir))?.path();
            if !select(&path) {
                continue;
            }
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("open", &path)(e)),
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => continue,
                Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
            }
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
        Ok(removed)
    }

    /// Every stored blob, by walking `blobs/` (files whose names are not digests are skipped).
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for (algo, path) in self.blob_files()? {
            if let Some(d) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| Digest::from_hex(algo, n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    fn blob_files(&self) -> Result<Vec<(Algorithm, PathBuf)>> {
        let mut out = Vec::new();
        for algo in Algorithm::ALL {
            let dir = self.algo_dir(algo);
            for entry in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
                out.push((algo, entry.map_err(io_err("read directory", &dir))?.path()));
            }
        }
        Ok(out)
    }

    /// Rehash every blob and report those whose content does not match their name.
    pub fn verify_all(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        for (algo, path) in self.blob_files()? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let Ok(want) = Digest::from_hex(algo, name) else {
                report.corrupt.push(CorruptBlob {
                    path,
                    problem: "file name is not a digest".into(),
                });
                continue;
            };
            let mut file = File::open(&path).map_err(io_err("open", &path))?;
            let mut hasher = Hasher::new(algo);
            io::copy(&mut file, &mut hasher).map_err(io_err("read", &path))?;
            let got = hasher.finish();
            if got == want {
                report.ok.push(want);
            } else {
                report.corrupt.push(CorruptBlob {
                    path,
                    problem: format!("content has digest {got}"),
                });
            }
        }
        report.ok.sort();
        Ok(report)
    }
}

/// A temp file being ingested; removed on drop unless it was renamed into place.
struct TempBlob {
    file: File,
    path: PathBuf,
    persisted: bool,
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}
