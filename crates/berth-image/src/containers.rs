//! A container's writable layer seen from the image store: its changes (`docker diff`),
//! `commit` into a new image and `export` of its whole filesystem.
//!
//! All three read the container's upper directory and its image's snapshots directly
//! (see [`overlay`]), so they work whether or not the overlay is mounted, and need no
//! mount point from the caller. What they read is what the mount shows, as
//! [`RootfsMount::options`](crate::images::RootfsMount::options) turns off redirect_dir and
//! metacopy (upper entries using them are refused). A running container can change files
//! while they are read: pause it first, as Docker does for commit.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Value};

use crate::digest::{Algorithm, Digest, Hasher};
use crate::images::{check_container_id, ImageError, ImageStore, RootfsRecord};
use crate::manifest;
use crate::overlay::{self, Change, OverlayError};
use crate::reference::Reference;
use crate::snapshots::SnapshotError;
use crate::store::StoreError;
use crate::timefmt;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container {0:?} has no rootfs in this image store")]
    NoRootfs(String),
    #[error("container {container:?}: {source}")]
    Overlay {
        container: String,
        #[source]
        source: OverlayError,
    },
    #[error("container {container:?}: storing the committed {what}: {source}")]
    Store {
        container: String,
        what: &'static str,
        #[source]
        source: StoreError,
    },
    #[error("container {container:?}: registering the committed layer's snapshot: {source}")]
    Snapshot {
        container: String,
        #[source]
        source: Box<SnapshotError>,
    },
    #[error("container {container:?}: its image {object}: {problem}")]
    Parent {
        container: String,
        object: Digest,
        problem: String,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
}

pub type Result<T> = std::result::Result<T, ContainerError>;

/// Image config fields a commit sets (Docker's `Config` of `POST /commit`); `None`
/// keeps the parent image's value. The engine passes the container's values with any
/// `--change` applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigChanges {
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// `"80/tcp"` style keys.
    pub exposed_ports: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub volumes: Option<Vec<String>>,
    pub stop_signal: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitOptions {
    pub config: ConfigChanges,
    pub author: Option<String>,
    pub comment: Option<String>,
    /// The history entry's `created_by` (Docker: the container's command, space-joined).
    pub created_by: Option<String>,
    /// Tag the new image; without one it is dangling.
    pub reference: Option<Reference>,
}

/// What a commit made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The new image's ID (its config digest).
    pub image_id: Digest,
    pub manifest_digest: Digest,
    /// The new layer blob and its diffID; None when the container changed nothing (the
    /// history entry is then an empty layer, as Docker does).
    pub layer: Option<(Digest, Digest)>,
}

/// Where a container's layers are.
struct Layers {
    record: RootfsRecord,
    upper: PathBuf,
    /// Snapshot directories, top-most first.
    lowers: Vec<PathBuf>,
}

impl Layers {
    fn lowers(&self) -> Vec<&Path> {
        self.lowers.iter().map(PathBuf::as_path).collect()
    }
}

impl ImageStore {
    fn container_layers(&self, container_id: &str) -> Result<Layers> {
        check_container_id(container_id)?;
        let record = self
            .rootfs_records()?
            .remove(container_id)
            .ok_or_else(|| ContainerError::NoRootfs(container_id.into()))?;
        let lowers = record
            .chain_ids
            .iter()
            .rev()
            .map(|c| self.snapshots().path(c))
            .collect();
        Ok(Layers {
            record,
            upper: self.containers_dir().join(container_id).join("upper"),
            lowers,
        })
    }

    /// The container's changes to its image's filesystem, sorted by path, as
    /// `GET /containers/{id}/changes` reports them. Empty when nothing changed.
    pub fn diff(&self, container_id: &str) -> Result<Vec<Change>> {
        let layers = self.container_layers(container_id)?;
        overlay::changes(&layers.lowers(), &layers.upper).map_err(|source| ContainerError::Overlay {
            container: container_id.into(),
            source,
        })
    }

    /// Write the container's whole filesystem (its image's layers with its changes on
    /// top, merged here rather than read through a mount) to `out` as one tar, with no
    /// whiteouts, as `docker export` does.
    pub fn export(&self, container_id: &str, out: impl Write) -> Result<()> {
        let layers = self.container_layers(container_id)?;
        let mut dirs = vec![layers.upper.as_path()];
        dirs.extend(layers.lowers());
        overlay::write_merged(&dirs, out).map_err(|source| ContainerError::Overlay {
            container: container_id.into(),
            source,
        })?;
        Ok(())
    }

    /// `docker commit`: the container's changes become a new gzip layer on top of its
    /// image (whose config gets `opts`' changes, a history entry and the layer's diffID),
    /// stored with a new manifest, the layer's snapshot registered so no container has
    /// to unpack it, and named `opts.reference` (dangling without one).
    pub fn commit(&self, container_id: &str, opts: &CommitOptions) -> Result<Committed> {
        let layers = self.container_layers(container_id)?;
        let mut added = Vec::new();
        let result = self.commit_inner(container_id, &layers, opts, &mut added);
        // On success this drops only an unused empty-layer blob; on failure everything
        // the commit stored that nothing else uses. Best effort: the commit's own result
        // is what matters.
        let _ = self.collect_blobs(added);
        result
    }

    fn commit_inner(
        &self,
        id: &str,
        layers: &Layers,
        opts: &CommitOptions,
        added: &mut Vec<Digest>,
    ) -> Result<Committed> {
        let parent = &layers.record.manifest;
        let parent_err = |object: &Digest, problem: &str| ContainerError::Parent {
            container: id.into(),
            object: object.clone(),
            problem: problem.into(),
        };
        let manifest_doc: Value = serde_json::from_slice(&self.read_document(parent)?)
            .map_err(|e| parent_err(parent, &format!("manifest is not JSON: {e}")))?;
        let config_digest = manifest_doc
            .pointer("/config/digest")
            .and_then(Value::as_str)
            .and_then(|d| Digest::parse(d).ok())
            .ok_or_else(|| parent_err(parent, "manifest has no config digest"))?;
        let mut config: Value = serde_json::from_slice(&self.read_document(&config_digest)?)
            .map_err(|e| parent_err(&config_digest, &format!("config is not JSON: {e}")))?;
        if !config.is_object() {
            return Err(parent_err(&config_digest, "config is not a JSON object"));
        }

        let (layer_digest, diff_id, entries) = self.write_layer_blob(id, &layers.upper)?;
        added.push(layer_digest.clone());
        let layer = match entries {
            0 => None,
            _ => {
                self.register_snapshot(id, layers, &layer_digest, &diff_id)?;
                let size = self.blob_size(id, &layer_digest)?;
                Some((layer_digest, diff_id, size))
            }
        };

        apply_commit(&mut config, opts, layer.as_ref().map(|l| &l.1));
        let config_bytes = serde_json::to_vec(&config).map_err(|e| parent_err(&config_digest, &e.to_string()))?;
        let image_id = self.ingest(id, "config", &config_bytes)?;
        added.push(image_id.clone());

        let mut layer_descs = manifest_doc.get("layers").cloned().unwrap_or_else(|| json!([]));
        if let (Some(list), Some((digest, _, size))) = (layer_descs.as_array_mut(), &layer) {
            list.push(json!({"mediaType": manifest::OCI_LAYER_GZIP, "digest": digest.to_string(), "size": size}));
        }
        let new_manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": manifest::OCI_CONFIG, "digest": image_id.to_string(), "size": config_bytes.len()},
            "layers": layer_descs,
        });
        let manifest_bytes = serde_json::to_vec(&new_manifest).map_err(|e| parent_err(parent, &e.to_string()))?;
        let manifest_digest = self.ingest(id, "manifest", &manifest_bytes)?;
        added.push(manifest_digest.clone());
        self.set_image(opts.reference.as_ref(), &manifest_digest)?;
        Ok(Committed {
            image_id,
            manifest_digest,
            layer: layer.map(|(d, diff, _)| (d, diff)),
        })
    }

    fn ingest(&self, id: &str, what: &'static str, bytes: &[u8]) -> Result<Digest> {
        self.blobs()
            .ingest(None, None, bytes)
            .map_err(|source| ContainerError::Store {
                container: id.into(),
                what,
                source,
            })
    }

    fn blob_size(&self, id: &str, digest: &Digest) -> Result<u64> {
        let path = self.blobs().blob_path(digest);
        std::fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|source| ContainerError::Store {
                container: id.into(),
                what: "layer",
                source: StoreError::Io {
                    op: "stat",
                    path,
                    source,
                },
            })
    }

    /// Stream the upper directory as a gzip layer into the blob store (a pipe to an
    /// ingesting thread: the layer is never whole in memory nor written twice). Returns
    /// the blob digest, the diffID and the number of tar entries.
    fn write_layer_blob(&self, id: &str, upper: &Path) -> Result<(Digest, Digest, u64)> {
        let store_err = |source| ContainerError::Store {
            container: id.into(),
            what: "layer",
            source,
        };
        let (reader, writer) = io::pipe().map_err(|source| {
            store_err(StoreError::Io {
                op: "create pipe for",
                path: upper.to_path_buf(),
                source,
            })
        })?;
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let ingest = s.spawn(|| {
                let complete = Complete {
                    inner: reader,
                    done: &done,
                };
                self.blobs().ingest(None, None, complete)
            });
            let produced = (|| {
                let gz = flate2::write::GzEncoder::new(writer, flate2::Compression::default());
                let hashing = HashWriter {
                    inner: gz,
                    hasher: Hasher::new(Algorithm::Sha256),
                };
                let (hashing, entries) = overlay::write_layer(upper, hashing)?;
                let writer = hashing.inner.finish().map_err(|source| OverlayError::Write {
                    entry: "<gzip trailer>".into(),
                    source,
                })?;
                // Only now may the reader's end-of-stream count as a complete layer.
                done.store(true, Ordering::SeqCst);
                drop(writer);
                Ok((hashing.hasher.finish(), entries))
            })();
            let ingested = ingest.join().unwrap_or_else(|_| {
                Err(StoreError::Read {
                    blob: "<committed layer>".into(),
                    source: io::Error::other("the ingesting thread panicked"),
                })
            });
            match (produced, ingested) {
                (Ok((diff_id, entries)), Ok(digest)) => Ok((digest, diff_id, entries)),
                // A failed producer makes the ingest fail too; its error says why.
                (Err(source), _) => Err(ContainerError::Overlay {
                    container: id.into(),
                    source,
                }),
                (Ok(_), Err(e)) => Err(store_err(e)),
            }
        })
    }

    fn register_snapshot(&self, id: &str, layers: &Layers, blob: &Digest, diff_id: &Digest) -> Result<()> {
        let snap_err = |source| ContainerError::Snapshot {
            container: id.into(),
            source: Box::new(source),
        };
        let file = self.blobs().open_blob(blob).map_err(|source| ContainerError::Store {
            container: id.into(),
            what: "layer",
            source,
        })?;
        let parent = layers.record.chain_ids.last();
        self.snapshots()
            .apply_layer(parent, file, Some(manifest::OCI_LAYER_GZIP), Some(diff_id))
            .map_err(snap_err)?;
        Ok(())
    }
}

/// The parent's config with a commit applied: config changes, new `created`/`author`,
/// the diffID appended and a history entry (an empty layer when `diff_id` is None).
fn apply_commit(config: &mut Value, opts: &CommitOptions, diff_id: Option<&Digest>) {
    let now = timefmt::now_rfc3339();
    let Some(obj) = config.as_object_mut() else {
        return;
    };
    // Legacy fields describe the container the parent was built in, not this one.
    for legacy in ["container", "container_config", "docker_version", "id", "parent"] {
        obj.remove(legacy);
    }
    obj.insert("created".into(), now.clone().into());
    match &opts.author {
        Some(a) => obj.insert("author".into(), a.clone().into()),
        None => obj.remove("author"),
    };
    // Docker's image config carries the commit message at the top too (inspect's Comment).
    match &opts.comment {
        Some(m) => obj.insert("comment".into(), m.clone().into()),
        None => obj.remove("comment"),
    };
    let c = obj.entry("config").or_insert_with(|| json!({}));
    if !c.is_object() {
        *c = json!({});
    }
    let ch = &opts.config;
    let set = |c: &mut Value, key: &str, v: Option<Value>| {
        if let Some(v) = v {
            c[key] = v;
        }
    };
    let as_set = |keys: &Vec<String>| Value::Object(keys.iter().map(|k| (k.clone(), json!({}))).collect());
    set(c, "Cmd", ch.cmd.as_ref().map(|v| json!(v)));
    set(c, "Entrypoint", ch.entrypoint.as_ref().map(|v| json!(v)));
    set(c, "Env", ch.env.as_ref().map(|v| json!(v)));
    set(c, "WorkingDir", ch.working_dir.as_ref().map(|v| json!(v)));
    set(c, "User", ch.user.as_ref().map(|v| json!(v)));
    set(c, "ExposedPorts", ch.exposed_ports.as_ref().map(as_set));
    set(c, "Labels", ch.labels.as_ref().map(|v| json!(v)));
    set(c, "Volumes", ch.volumes.as_ref().map(as_set));
    set(c, "StopSignal", ch.stop_signal.as_ref().map(|v| json!(v)));

    if let Some(d) = diff_id {
        let rootfs = obj.entry("rootfs").or_insert_with(|| json!({"type": "layers"}));
        if !rootfs.get("diff_ids").is_some_and(Value::is_array) {
            rootfs["diff_ids"] = json!([]);
        }
        if let Some(ids) = rootfs["diff_ids"].as_array_mut() {
            ids.push(d.to_string().into());
        }
    }
    let mut entry = json!({"created": now, "created_by": opts.created_by.clone().unwrap_or_default()});
    if let Some(a) = &opts.author {
        entry["author"] = a.clone().into();
    }
    if let Some(c) = &opts.comment {
        entry["comment"] = c.clone().into();
    }
    if diff_id.is_none() {
        entry["empty_layer"] = true.into();
    }
    let history = obj.entry("history").or_insert_with(|| json!([]));
    if !history.is_array() {
        *history = json!([]);
    }
    if let Some(h) = history.as_array_mut() {
        h.push(entry);
    }
}

/// Hashes what passes through: the uncompressed layer's diffID.
struct HashWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A pipe's reading end whose end-of-stream is an error unless the producer finished:
/// a producer that failed half-way must not leave a truncated layer stored as a blob.
struct Complete<'a, R> {
    inner: R,
    done: &'a AtomicBool,
}

impl<R: Read> Read for Complete<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && !self.done.load(Ordering::SeqCst) {
            return Err(io::Error::other("the layer stream ended early (producing it failed)"));
        }
        Ok(n)
    }
}
