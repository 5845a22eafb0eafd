//! The image store: names → manifests, plus the blobs, snapshots and container root
//! filesystems they use, under one root:
//!
//! - `<root>/blobs/`, `<root>/ingest/`: the [`BlobStore`];
//! - `<root>/snapshots/`, `<root>/metadata.redb`: the [`Snapshots`];
//! - `<root>/images.redb`: image names and container rootfs records (tables `images`
//!   and `rootfs`), changed only in redb transactions;
//! - `<root>/containers/<id>/{upper,work}`: a container's writable overlay layer.
//!
//! An image is named by a normalised reference (`docker.io/library/busybox:latest`) or,
//! when untagged ("dangling"), by its target digest. The target is a manifest or an
//! index; an index is resolved to the manifest for the store's platform. Content is
//! removed only when no image name and no container rootfs reaches it any more.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{ImageConfiguration, ImageManifest};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::digest::Digest;
use crate::manifest::{self, Document, ManifestError, Platform};
use crate::reach::{self, Content};
use crate::reference::{Reference, ReferenceError};
use crate::snapshots::{self, SnapshotError, Snapshots};
use crate::store::{BlobStore, StoreError};

const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const ROOTFS: TableDefinition<&str, &[u8]> = TableDefinition::new("rootfs");

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image metadata: {op}: {source}")]
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
    #[error("record {key:?}: {source}")]
    Record {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("image {image}: {source}")]
    Snapshot {
        image: String,
        #[source]
        source: Box<SnapshotError>,
    },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("image {0:?} not found")]
    NotFound(String),
    #[error("image {image}: {problem}")]
    Invalid { image: String, problem: String },
    #[error("container {container:?}: {problem}")]
    Container { container: String, problem: String },
    #[error("image {image} is in use by container(s) {}: remove them first, or force (untags it, keeping its content while they use it)", containers.join(", "))]
    InUse { image: String, containers: Vec<String> },
}

pub type Result<T> = std::result::Result<T, ImageError>;

fn db_err<E: Into<redb::Error>>(op: &'static str) -> impl FnOnce(E) -> ImageError {
    move |e| ImageError::Db { op, source: e.into() }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ImageError + 'a {
    move |source| ImageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What an image name points at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageRecord {
    /// Digest of the manifest or index.
    pub target: Digest,
    pub media_type: String,
    pub size: u64,
}

/// A container's rootfs record: the image manifest and snapshot chain it sits on.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct RootfsRecord {
    pub manifest: Digest,
    /// Bottom first.
    pub chain_ids: Vec<Digest>,
}

/// An image resolved to one platform's manifest and config.
#[derive(Debug, Clone)]
pub struct Image {
    /// What the name points at (a manifest, or an index containing `manifest_digest`).
    pub target: Digest,
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    /// The image ID, as Docker shows it.
    pub config_digest: Digest,
    pub config: ImageConfiguration,
    /// Layer diffIDs, bottom first.
    pub diff_ids: Vec<Digest>,
}

/// One line of `images` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub target: Digest,
    /// Familiar names (`busybox:latest`); empty for a dangling image.
    pub names: Vec<String>,
}

/// Where a container's overlay comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsMount {
    /// Snapshot directories, top-most first, joined by ':'.
    pub lowerdir: String,
    pub upperdir: PathBuf,
    pub workdir: PathBuf,
}

impl RootfsMount {
    /// The overlay mount data: `lowerdir=…,upperdir=…,workdir=…` and, whatever the
    /// host's defaults, no redirect_dir or metacopy: those keep data outside the upper
    /// directory, which diff, commit and export read directly.
    pub fn options(&self) -> String {
        format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off",
            self.lowerdir,
            self.upperdir.display(),
            self.workdir.display()
        )
    }
}

/// What a removal deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub names: Vec<String>,
    pub blobs: Vec<Digest>,
    pub snapshots: Vec<Digest>,
}

pub struct ImageStore {
    root: PathBuf,
    blobs: BlobStore,
    snapshots: Snapshots,
    db: Database,
    platform: Platform,
    /// Serialises naming, removal (with its content collection) and rootfs preparation,
    /// so a removal never deletes content that a concurrent call is about to use.
    lock: std::sync::Mutex<()>,
}

impl ImageStore {
    /// Open (creating if needed) the store at `root`, for the host platform.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        Self::open_for(root, Platform::host())
    }

    /// Open the store, resolving indexes to `platform`'s manifest.
    pub fn open_for(root: impl Into<PathBuf>, platform: Platform) -> Result<Self> {
        let root: PathBuf = root.into();
        if root.to_string_lossy().contains([',', ':']) {
            return Err(ImageError::Io {
                op: "use as image store (',' or ':' would break overlay options)",
                path: root,
                source: std::io::ErrorKind::InvalidInput.into(),
            });
        }
        let blobs = BlobStore::open(&root)?;
        let snapshots = Snapshots::open(&root).map_err(|source| ImageError::Snapshot {
            image: "<store>".into(),
            source: Box::new(source),
        })?;
        let db = Database::create(root.join("images.redb")).map_err(db_err("open database"))?;
        let tx = db.begin_write().map_err(db_err("begin write"))?;
        tx.open_table(IMAGES).map_err(db_err("create table"))?;
        tx.open_table(ROOTFS).map_err(db_err("create table"))?;
        tx.commit().map_err(db_err("commit"))?;
        let store = ImageStore {
            root,
            blobs,
            snapshots,
            db,
            platform,
            lock: std::sync::Mutex::new(()),
        };
        store.remove_unrecorded_rootfs()?;
        Ok(store)
    }

    pub(crate) fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        // A panic while holding the lock leaves no in-memory state to protect.
        self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Read a whole manifest/index/config blob, refusing ones over the size limit.
    pub fn read_document(&self, digest: &Digest) -> Result<Vec<u8>> {
        let file = self.blobs.open_blob(digest)?;
        let path = self.blobs.blob_path(digest);
        let mut buf = Vec::new();
        file.take(manifest::MAX_DOCUMENT_SIZE + 1)
            .read_to_end(&mut buf)
            .map_err(io_err("read", &path))?;
        if buf.len() as u64 > manifest::MAX_DOCUMENT_SIZE {
            return Err(ManifestError::TooLarge {
                what: "document",
                object: digest.to_string(),
                size: buf.len() as u64,
            }
            .into());
        }
        Ok(buf)
    }

    /// Name `name` (or, with `None`, keep as a dangling image) the stored manifest or
    /// index `target`. The document must be stored and valid; a manifest's config must
    /// be stored too. Replaces what the name pointed at before.
    pub fn set_image(&self, name: Option<&Reference>, target: &Digest) -> Result<ImageRecord> {
        let mut records = self.set_images(&[(name, target)])?;
        records.pop().ok_or_else(|| ImageError::NotFound(target.to_string()))
    }

    /// [`set_image`](Self::set_image) for several names at once: all are validated first,
    /// then written in one transaction, so either every name is set or none is.
    pub fn set_images(&self, names: &[(Option<&Reference>, &Digest)]) -> Result<Vec<ImageRecord>> {
        let _guard = self.guard();
        let mut rows = Vec::with_capacity(names.len());
        for (name, target) in names {
            let record = self.record_for(target)?;
            let key = match name {
                Some(r) if r.digest().is_some() && r.tag().is_none() => {
                    return Err(ImageError::Invalid {
                        image: r.to_string(),
                        problem: "a name given by digest cannot be assigned; use a tag".into(),
                    })
                }
                Some(r) => r.to_string(),
                None => target.to_string(),
            };
            let value = serde_json::to_vec(&record).map_err(|source| ImageError::Record {
                key: key.clone(),
                source,
            })?;
            rows.push((key, value, name.is_some(), record));
        }
        let tx = self.db.begin_write().map_err(db_err("begin write"))?;
        {
            let mut table = tx.open_table(IMAGES).map_err(db_err("open table"))?;
            for (key, value, named, record) in &rows {
                table
                    .insert(key.as_str(), value.as_slice())
                    .map_err(db_err("write record"))?;
                if *named {
                    // A named image is no longer dangling.
                    table
                        .remove(record.target.to_string().as_str())
                        .map_err(db_err("remove record"))?;
                }
            }
        }
        tx.commit().map_err(db_err("commit"))?;
        Ok(rows.into_iter().map(|(_, _, _, r)| r).collect())
    }

    fn record_for(&self, target: &Digest) -> Result<ImageRecord> {
        let bytes = self.read_document(target)?;
        let object = target.to_string();
        let media_type = match manifest::parse(&bytes, None, &object)? {
            Document::Manifest(m) => {
                let config = manifest::descriptor_digest(m.config(), &object)?;
                manifest::parse_config(&self.read_document(&config)?, &config.to_string())?;
                m.media_type()
                    .as_ref()
                    .map_or(manifest::OCI_MANIFEST.to_string(), |t| t.to_string())
            }
            Document::Index(i) => i
                .media_type()
                .as_ref()
                .map_or(manifest::OCI_INDEX.to_string(), |t| t.to_string()),
        };
        Ok(ImageRecord {
            target: target.clone(),
            media_type,
            size: bytes.len() as u64,
        })
    }

    /// Every name → record, names as stored (normalised references or digests).
    pub fn records(&self) -> Result<BTreeMap<String, ImageRecord>> {
        self.read_table(IMAGES)
    }

    /// Every row of a JSON-valued table, decoded.
    fn read_table<T: serde::de::DeserializeOwned>(
        &self,
        def: TableDefinition<&str, &[u8]>,
    ) -> Result<BTreeMap<String, T>> {
        let tx = self.db.begin_read().map_err(db_err("begin read"))?;
        let table = tx.open_table(def).map_err(db_err("open table"))?;
        let mut out = BTreeMap::new();
        for row in table.iter().map_err(db_err("read records"))? {
            let (k, v) = row.map_err(db_err("read record"))?;
            let key = k.value().to_string();
            let rec = serde_json::from_slice(v.value()).map_err(|source| ImageError::Record {
                key: key.clone(),
                source,
            })?;
            out.insert(key, rec);
        }
        Ok(out)
    }

    /// Images grouped by target, with their familiar names.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let mut by_target: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
        for (key, rec) in self.records()? {
            let names = by_target.entry(rec.target).or_default();
            names.extend(familiar_name(&key));
        }
        Ok(by_target
            .into_iter()
            .map(|(target, names)| ImageSummary { target, names })
            .collect())
    }

    /// The record keys `name` denotes: a reference (normalised), `name@digest`, a
    /// manifest/index digest, or an image ID (config digest, or a unique prefix of its hex
    /// of at least 4 characters, tried only when no reference matches).
    fn lookup(&self, name: &str) -> Result<Vec<(String, ImageRecord)>> {
        let records = self.records()?;
        if let Ok(d) = Digest::parse(name) {
            let mut hits: Vec<_> = records.iter().filter(|(_, r)| r.target == d).collect();
            if hits.is_empty() {
                for (k, r) in &records {
                    if self.resolve_record(k, r).is_ok_and(|img| img.config_digest == d) {
                        hits.push((k, r));
                    }
                }
            }
            return Ok(hits.into_iter().map(|(k, r)| (k.clone(), r.clone())).collect());
        }
        let parsed = Reference::parse(name);
        if let Ok(reference) = &parsed {
            let key = reference.to_string();
            if let Some(r) = records.get(&key) {
                return Ok(vec![(key, r.clone())]);
            }
            if let Some(d) = reference.digest() {
                if let Some((k, r)) = records.iter().find(|(_, r)| &r.target == d) {
                    return Ok(vec![(k.clone(), r.clone())]);
                }
            }
        }
        // A (short) image ID, as Docker prints them: a unique prefix of a config digest.
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4 && hex.len() <= 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            let mut ids = BTreeSet::new();
            let mut hits = Vec::new();
            for (k, r) in &records {
                if let Ok(img) = self.resolve_record(k, r) {
                    if img.config_digest.hex().starts_with(hex) {
                        ids.insert(img.config_digest);
                        hits.push((k.clone(), r.clone()));
                    }
                }
            }
            if ids.len() > 1 {
                return Err(ImageError::Invalid {
                    image: name.into(),
                    problem: format!("ambiguous image ID prefix: matches {} images", ids.len()),
                });
            }
            if !hits.is_empty() {
                return Ok(hits);
            }
        }
        parsed?;
        Ok(Vec::new())
    }

    /// Resolve `name` to an image for this store's platform.
    pub fn resolve(&self, name: &str) -> Result<Image> {
        let hits = self.lookup(name)?;
        let (key, rec) = hits.first().ok_or_else(|| ImageError::NotFound(name.to_string()))?;
        self.resolve_record(key, rec)
    }

    fn resolve_record(&self, key: &str, rec: &ImageRecord) -> Result<Image> {
        let bytes = self.read_document(&rec.target)?;
        let object = rec.target.to_string();
        let (manifest_digest, manifest) = match manifest::parse(&bytes, Some(&rec.media_type), &object)? {
            Document::Manifest(m) => (rec.target.clone(), *m),
            Document::Index(index) => {
                let d = manifest::select_manifest(&index, &self.platform, &object)?;
                let digest = manifest::descriptor_digest(d, &object)?;
                let bytes = self.read_document(&digest)?;
                let m = manifest::parse_manifest(&bytes, Some(d.media_type().as_ref()), &digest.to_string())?;
                (digest, m)
            }
        };
        let config_digest = manifest::descriptor_digest(manifest.config(), &manifest_digest.to_string())?;
        let config = manifest::parse_config(&self.read_document(&config_digest)?, &config_digest.to_string())?;
        let diff_ids = manifest::diff_ids(&config, &config_digest.to_string())?;
        if diff_ids.len() != manifest.layers().len() {
            return Err(ImageError::Invalid {
                image: key.to_string(),
                problem: format!(
                    "manifest {manifest_digest} has {} layers but config {config_digest} has {} diffIDs",
                    manifest.layers().len(),
                    diff_ids.len()
                ),
            });
        }
        Ok(Image {
            target: rec.target.clone(),
            manifest_digest,
            manifest,
            config_digest,
            config,
            diff_ids,
        })
    }

    /// Give the image `source` the additional name `target`.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let hits = self.lookup(source)?;
        let (_, rec) = hits.first().ok_or_else(|| ImageError::NotFound(source.to_string()))?;
        let reference = Reference::parse(target)?;
        self.set_image(Some(&reference), &rec.target)?;
        Ok(())
    }

    /// Remove the name `name` (a digest or image ID removes every name of that image),
    /// then delete the blobs and snapshots only that image used. Content still reachable
    /// from another name or a container rootfs stays. Refused ([`ImageError::InUse`]) when
    /// it would remove the last name of an image a container's rootfs uses.
    pub fn remove(&self, name: &str) -> Result<Removed> {
        self.remove_image(name, false)
    }

    /// [`remove`](Self::remove); with `force`, an image a container uses is untagged
    /// anyway and its content stays until the container's rootfs is removed (Docker's
    /// `rmi -f` on an image of a stopped container).
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Removed> {
        let _guard = self.guard();
        let hits = self.lookup(name)?;
        if hits.is_empty() {
            return Err(ImageError::NotFound(name.to_string()));
        }
        if !force {
            self.refuse_if_used(name, &hits)?;
        }
        let keys: Vec<&str> = hits.iter().map(|(k, _)| k.as_str()).collect();
        self.remove_records(&keys)?;
        let mut candidates = Content::default();
        for (_, rec) in &hits {
            candidates.extend(self.content_of(&rec.target));
        }
        let mut removed = self.collect(candidates)?;
        removed.names = hits.into_iter().map(|(k, _)| familiar_name(&k).unwrap_or(k)).collect();
        Ok(removed)
    }

    /// Remove a name without deleting content other names still use (same as `remove`).
    pub fn untag(&self, name: &str) -> Result<Removed> {
        self.remove(name)
    }

    /// Delete image records in one transaction. The caller holds the guard.
    pub(crate) fn remove_records(&self, keys: &[&str]) -> Result<()> {
        let tx = self.db.begin_write().map_err(db_err("begin write"))?;
        {
            let mut table = tx.open_table(IMAGES).map_err(db_err("open table"))?;
            for key in keys {
                table.remove(*key).map_err(db_err("remove record"))?;
            }
        }
        tx.commit().map_err(db_err("commit"))
    }

    /// Fail if removing `hits` would leave a container's manifest without any name.
    fn refuse_if_used(&self, name: &str, hits: &[(String, ImageRecord)]) -> Result<()> {
        let removing: BTreeSet<&str> = hits.iter().map(|(k, _)| k.as_str()).collect();
        let (mut gone, mut kept) = (BTreeSet::new(), BTreeSet::new());
        for (key, rec) in self.records()? {
            let set = if removing.contains(key.as_str()) {
                &mut gone
            } else {
                &mut kept
            };
            set.extend(reach::manifests_of(&self.blobs, &rec.target));
        }
        let users: Vec<String> = self
            .rootfs_records()?
            .into_iter()
            .filter(|(_, r)| gone.contains(&r.manifest) && !kept.contains(&r.manifest))
            .map(|(id, _)| id)
            .collect();
        match users.is_empty() {
            true => Ok(()),
            false => Err(ImageError::InUse {
                image: name.into(),
                containers: users,
            }),
        }
    }

    /// Blobs and snapshot chainIDs an image target reaches, best effort (for collection).
    fn content_of(&self, target: &Digest) -> Content {
        reach::content_of(&self.blobs, target, false).unwrap_or_default()
    }

    /// Delete those of `blobs` that no image or container rootfs reaches (e.g. what a
    /// failed load ingested).
    pub fn collect_blobs(&self, blobs: impl IntoIterator<Item = Digest>) -> Result<Removed> {
        let _guard = self.guard();
        self.collect(Content {
            blobs: blobs.into_iter().collect(),
            snapshots: BTreeSet::new(),
        })
    }

    /// Delete every candidate no remaining image or container rootfs reaches.
    fn collect(&self, candidates: Content) -> Result<Removed> {
        let mut live = Content::default();
        for rec in self.records()?.values() {
            live.extend(self.content_of(&rec.target));
        }
        for rec in self.rootfs_records()?.values() {
            live.extend(self.content_of(&rec.manifest));
            live.snapshots.extend(rec.chain_ids.iter().cloned());
        }
        let mut removed = Removed::default();
        // A crash part-way may leave a child snapshot whose parent is gone; that child is
        // unreachable by lowerdir checks until the parent is unpacked again, so it is safe.
        for chain in candidates.snapshots.difference(&live.snapshots) {
            let removed_one = self.snapshots.remove(chain).map_err(|source| ImageError::Snapshot {
                image: "<collect>".into(),
                source: Box::new(source),
            })?;
            if removed_one {
                removed.snapshots.push(chain.clone());
            }
        }
        for blob in candidates.blobs.difference(&live.blobs) {
            match self.blobs.delete(blob) {
                Ok(()) => removed.blobs.push(blob.clone()),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(removed)
    }

    /// Unpack any of the image's layers that have no snapshot yet, from stored blobs.
    pub fn ensure_unpacked(&self, image: &Image) -> Result<Vec<Digest>> {
        let chains = snapshots::chain_ids(&image.diff_ids);
        let snap_err = |source| ImageError::Snapshot {
            image: image.manifest_digest.to_string(),
            source: Box::new(source),
        };
        for (i, (layer, chain)) in image.manifest.layers().iter().zip(&chains).enumerate() {
            if self.snapshots.get(chain).map_err(snap_err)?.is_some() {
                continue;
            }
            let digest = manifest::descriptor_digest(layer, &image.manifest_digest.to_string())?;
            let blob = self.blobs.open_blob(&digest)?;
            let parent = i.checked_sub(1).map(|p| &chains[p]);
            self.snapshots
                .apply_layer(
                    parent,
                    blob,
                    Some(layer.media_type().as_ref()),
                    Some(&image.diff_ids[i]),
                )
                .map_err(snap_err)?;
        }
        Ok(chains)
    }

    pub(crate) fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// Create `container_id`'s writable layer on top of `image` (unpacking missing
    /// layers) and return the overlay mount to make.
    pub fn prepare_rootfs(&self, image: &str, container_id: &str) -> Result<RootfsMount> {
        let _guard = self.guard();
        check_container_id(container_id)?;
        if self.rootfs_records()?.contains_key(container_id) {
            return Err(ImageError::Container {
                container: container_id.into(),
                problem: "already has a rootfs".into(),
            });
        }
        let img = self.resolve(image)?;
        if img.diff_ids.is_empty() {
            return Err(ImageError::Invalid {
                image: image.into(),
                problem: "has no layers to mount".into(),
            });
        }
        let chain_ids = self.ensure_unpacked(&img)?;
        let lowerdir = self
            .snapshots
            .lowerdir(&img.diff_ids)
            .map_err(|source| ImageError::Snapshot {
                image: image.into(),
                source: Box::new(source),
            })?;
        let dir = self.containers_dir();
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let tmp = dir.join(format!(".tmp-{container_id}-{}", std::process::id()));
        let dest = dir.join(container_id);
        let built = (|| {
            if tmp.exists() {
                fs::remove_dir_all(&tmp).map_err(io_err("remove leftover", &tmp))?;
            }
            for sub in ["", "upper", "work"] {
                let p = tmp.join(sub);
                fs::create_dir(&p).map_err(io_err("create directory", &p))?;
            }
            if dest.exists() {
                fs::remove_dir_all(&dest).map_err(io_err("remove unrecorded rootfs", &dest))?;
            }
            fs::rename(&tmp, &dest).map_err(io_err("rename into place", &dest))?;
            fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("fsync directory", &dir))
        })();
        if let Err(e) = built {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let record = RootfsRecord {
            manifest: img.manifest_digest.clone(),
            chain_ids,
        };
        let value = serde_json::to_vec(&record).map_err(|source| ImageError::Record {
            key: container_id.into(),
            source,
        })?;
        let tx = self.db.begin_write().map_err(db_err("begin write"))?;
        {
            let mut table = tx.open_table(ROOTFS).map_err(db_err("open table"))?;
            table
                .insert(container_id, value.as_slice())
                .map_err(db_err("write record"))?;
        }
        tx.commit().map_err(db_err("commit"))?;
        Ok(RootfsMount {
            lowerdir,
            upperdir: dest.join("upper"),
            workdir: dest.join("work"),
        })
    }

    /// Delete `container_id`'s writable layer (it must be unmounted), and any content
    /// it alone kept alive.
    pub fn remove_rootfs(&self, container_id: &str) -> Result<Removed> {
        let _guard = self.guard();
        check_container_id(container_id)?;
        let tx = self.db.begin_write().map_err(db_err("begin write"))?;
        let old = {
            let mut table = tx.open_table(ROOTFS).map_err(db_err("open table"))?;
            let old = table.remove(container_id).map_err(db_err("remove record"))?;
            old.map(|v| v.value().to_vec())
        };
        tx.commit().map_err(db_err("commit"))?;
        let Some(old) = old else {
            return Err(ImageError::Container {
                container: container_id.into(),
                problem: "has no rootfs".into(),
            });
        };
        let dest = self.containers_dir().join(container_id);
        fs::remove_dir_all(&dest).map_err(io_err("remove rootfs", &dest))?;
        let rec: RootfsRecord = serde_json::from_slice(&old).map_err(|source| ImageError::Record {
            key: container_id.into(),
            source,
        })?;
        let mut candidates = self.content_of(&rec.manifest);
        candidates.snapshots.extend(rec.chain_ids);
        self.collect(candidates)
    }

    /// The containers that have a writable layer.
    pub fn rootfs_ids(&self) -> Result<Vec<String>> {
        Ok(self.rootfs_records()?.into_keys().collect())
    }

    pub(crate) fn rootfs_records(&self) -> Result<BTreeMap<String, RootfsRecord>> {
        self.read_table(ROOTFS)
    }

    /// Remove container directories with no record (a crash between creating and
    /// recording one, or between unrecording and deleting it).
    fn remove_unrecorded_rootfs(&self) -> Result<()> {
        let dir = self.containers_dir();
        if !dir.exists() {
            return Ok(());
        }
        let records = self.rootfs_records()?;
        for entry in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let entry = entry.map_err(io_err("read directory", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !records.contains_key(&name) {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(io_err("remove leftover", &path))?;
            }
        }
        Ok(())
    }
}

/// The familiar name of a record key; None for a dangling image's key (its digest).
pub(crate) fn familiar_name(key: &str) -> Option<String> {
    if Digest::parse(key).is_ok() {
        return None;
    }
    Reference::parse(key).ok().map(|r| r.familiar())
}

pub(crate) fn check_container_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(ImageError::Container {
            container: id.into(),
            problem: "invalid id (use letters, digits, '_', '-', '.'; not starting with '.')".into(),
        })
    }
}
