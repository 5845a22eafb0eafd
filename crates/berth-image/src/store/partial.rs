//! Resumable ingest of a blob whose digest is known in advance (a registry download).
//!
//! The bytes go to `<root>/ingest/<algo>-<hex>.partial`, named after the blob so that a
//! later attempt finds them. An interrupted download (network error, timeout, killed
//! process) leaves the file in place; the next [`BlobStore::resume_ingest`] re-hashes
//! what is there and reports its length, and the caller fetches only the rest. Content
//! is still verified against the digest before the blob becomes visible, exactly as in
//! [`BlobStore::ingest`], so a partial file damaged by a crash costs a re-download, never
//! a wrong blob.
//!
//! Whoever writes a partial file holds an exclusive `flock` on it. A second writer of the
//! same blob (another process: one client already downloads each digest once) does not
//! wait for that lock, which has no deadline: it downloads into a private temp file of
//! its own, like a plain ingest.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{blob_err, io_err, sync_dir, BlobStore, Result, StoreError, TempBlob, BUF_SIZE};
use crate::digest::{Digest, Hasher};

const SUFFIX: &str = ".partial";

/// Whether `path` names a resumable partial file (not a plain ingest's temp file).
pub(super) fn is_partial(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(SUFFIX))
}

/// Where the bytes go.
enum Target {
    /// The blob's shared `.partial` file: kept when the ingest is dropped unfinished.
    Partial { file: File, path: PathBuf },
    /// A private temp file (the partial file was busy): removed when dropped.
    Private(TempBlob),
}

/// An ingest in progress; see the [module documentation](self). Dropping it unfinished
/// keeps the bytes for a later resume (unless they went to a private temp file).
pub struct PartialIngest<'a> {
    store: &'a BlobStore,
    expected: Digest,
    size: Option<u64>,
    target: Target,
    hasher: Hasher,
    offset: u64,
}

impl BlobStore {
    /// Where the partial download of `digest` is kept.
    pub fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.ingest_dir()
            .join(format!("{}-{}{SUFFIX}", digest.algorithm().as_str(), digest.hex()))
    }

    /// Start or resume ingesting the blob `expected` (of `size` bytes, if known). Bytes an
    /// earlier, interrupted ingest left are kept and re-hashed; [`PartialIngest::offset`]
    /// says how many, so the caller can fetch only the rest. The caller checks first
    /// whether the blob is already stored.
    pub fn resume_ingest(&self, expected: &Digest, size: Option<u64>) -> Result<PartialIngest<'_>> {
        let label = expected.to_string();
        let path = self.partial_path(expected);
        let target = loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(io_err("open", &path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => break Target::Private(self.create_temp()?),
                Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
            }
            // The previous owner may have renamed it into place or removed it between our
            // open and lock; our lock would then guard an orphan inode, so start again.
            let same = match fs::symlink_metadata(&path) {
                Ok(m) => {
                    let ours = file.metadata().map_err(io_err("stat", &path))?;
                    m.ino() == ours.ino() && m.dev() == ours.dev()
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(io_err("stat", &path)(e)),
            };
            if same {
                break Target::Partial { file, path };
            }
        };
        let mut ingest = PartialIngest {
            store: self,
            expected: expected.clone(),
            size,
            target,
            hasher: Hasher::new(expected.algorithm()),
            offset: 0,
        };
        let Target::Partial { file, path } = &mut ingest.target else {
            // A fresh private file: nothing to re-hash.
            return Ok(ingest);
        };
        let mut hasher = Hasher::new(expected.algorithm());
        let mut buf = vec![0u8; BUF_SIZE];
        let mut have: u64 = 0;
        file.seek(SeekFrom::Start(0)).map_err(blob_err("seek", &label, path))?;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(blob_err("read partial download", &label, path)(e)),
            };
            hasher.update(&buf[..n]);
            have += n as u64;
        }
        if size.is_some_and(|want| have > want) {
            // Longer than the blob can be: not a prefix of it, so worthless.
            ingest.restart()?;
        } else {
            ingest.hasher = hasher;
            ingest.offset = have;
        }
        Ok(ingest)
    }

    /// Remove `.partial` files of interrupted downloads last written more than `max_age`
    /// ago and not being written now. Returns how many were removed.
    pub fn cleanup_partials(&self, max_age: Duration) -> Result<usize> {
        let now = SystemTime::now();
        self.remove_unlocked(|path| {
            is_partial(path)
                && fs::symlink_metadata(path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > max_age)
        })
    }
}

impl PartialIngest<'_> {
    /// Bytes already ingested (from an earlier attempt, plus those appended since).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn file_and_path(&mut self) -> (&mut File, &Path) {
        match &mut self.target {
            Target::Partial { file, path } => (file, path),
            Target::Private(tmp) => (&mut tmp.file, &tmp.path),
        }
    }

    /// Forget what is stored so far and start from byte 0 (the source could not resume).
    pub fn restart(&mut self) -> Result<()> {
        let label = self.expected.to_string();
        let (file, path) = self.file_and_path();
        file.set_len(0).map_err(blob_err("truncate", &label, path))?;
        file.seek(SeekFrom::Start(0)).map_err(blob_err("seek", &label, path))?;
        self.hasher = Hasher::new(self.expected.algorithm());
        self.offset = 0;
        Ok(())
    }

    /// Append everything `reader` yields. When reading fails (the download broke), what
    /// was written stays for a later resume and the read error is returned. More bytes
    /// than the blob's size, or a failed write, discard them.
    pub fn append(&mut self, mut reader: impl Read) -> Result<u64> {
        let label = self.expected.to_string();
        let mut buf = vec![0u8; BUF_SIZE];
        let start = self.offset;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(self.offset - start),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(StoreError::Read { blob: label, source }),
            };
            if let Some(want) = self.size.filter(|want| self.offset + n as u64 > *want) {
                // Stop early rather than store an unbounded stream we will reject anyway.
                let actual = self.offset + n as u64;
                self.discard_bytes();
                return Err(StoreError::SizeMismatch {
                    blob: label,
                    expected: want,
                    actual,
                });
            }
            let (file, path) = self.file_and_path();
            if let Err(e) = file.write_all(&buf[..n]) {
                let err = blob_err("write", &label, path)(e);
                if err.is_disk_full() {
                    // Kept bytes would hold space other writers need now; a resume after
                    // space is freed fetches them again.
                    self.discard_bytes();
                } else {
                    // Part of the buffer may have been written: cut back to what is hashed.
                    let offset = self.offset;
                    let (file, _) = self.file_and_path();
                    if file.set_len(offset).and_then(|_| file.seek(SeekFrom::End(0))).is_err() {
                        self.discard_bytes();
                    }
                }
                return Err(err);
            }
            self.hasher.update(&buf[..n]);
            self.offset += n as u64;
        }
    }

    /// Drop the bytes stored so far (best effort: this runs on paths that already report
    /// an error, after which the ingest is not used again). A partial file is removed, so
    /// neither its space nor a stray file outlives a failure that made it worthless.
    fn discard_bytes(&mut self) {
        match &self.target {
            Target::Partial { path, .. } => {
                let _ = fs::remove_file(path);
            }
            Target::Private(_) => {
                let _ = self.restart();
            }
        }
    }

    /// Verify size and digest, then make the blob visible (fsync, rename, fsync of the
    /// directory). A short blob stays partial for a later resume; a wrong one is discarded.
    pub fn commit(mut self) -> Result<Digest> {
        let label = self.expected.to_string();
        if let Some(want) = self.size.filter(|want| *want != self.offset) {
            return Err(StoreError::SizeMismatch {
                blob: label,
                expected: want,
                actual: self.offset,
            });
        }
        let actual = std::mem::replace(&mut self.hasher, Hasher::new(self.expected.algorithm())).finish();
        if actual != self.expected {
            self.discard_bytes();
            return Err(StoreError::DigestMismatch {
                expected: self.expected.clone(),
                actual,
            });
        }
        let dest = self.store.blob_path(&self.expected);
        let (file, path) = self.file_and_path();
        if let Err(e) = file.sync_all() {
            let err = blob_err("fsync", &label, path)(e);
            if err.is_disk_full() {
                self.discard_bytes();
            }
            return Err(err);
        }
        // Blobs are read-only, as plain ingests create them.
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(blob_err("chmod", &label, path))?;
        // A concurrent ingest of the same content may have renamed first: replacing its
        // file with identical bytes is harmless.
        fs::rename(path, &dest).map_err(blob_err("rename into place", &label, &dest))?;
        if let Target::Private(tmp) = &mut self.target {
            tmp.persisted = true;
        }
        sync_dir(&self.store.algo_dir(self.expected.algorithm()))?;
        Ok(self.expected.clone())
    }

    /// Give up on this blob: remove the bytes stored so far.
    pub fn discard(self) -> Result<()> {
        match &self.target {
            Target::Partial { path, .. } => match fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err("remove", path)(e)),
            },
            // Removed on drop.
            Target::Private(_) => Ok(()),
        }
    }
}
