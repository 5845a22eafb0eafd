//! Image archives: `import` of a rootfs tarball, and `save`/`load` of archives that are
//! both an OCI image layout and a Docker `docker save` archive.
//!
//! A saved archive holds `oci-layout`, `blobs/<algo>/<hex>` (every manifest, config and
//! layer, stored bytes unchanged), `index.json` (one entry per name, annotated with
//! `io.containerd.image.name` and `org.opencontainers.image.ref.name`) and `manifest.json`
//! (`Config`/`RepoTags`/`Layers` paths into `blobs/`), as Docker 25+ writes. It is written
//! as one streaming pass. An index is saved whole (Docker 25+ does the same) when at
//! least one platform other than the store's is stored completely: `index.json` then
//! points at the index, whose complete platforms' blobs are all written (incomplete ones
//! are left out, as Docker does), while `manifest.json` lists the store platform only.
//! Otherwise the store platform's manifest is saved alone, which every consumer reads.
//!
//! `load` reads either kind (preferring `index.json`), including legacy Docker archives
//! (`<id>/layer.tar`, `<hex>.json`, symlinks between them). Every `blobs/<algo>/<hex>` is
//! verified against its name while it is ingested, and uncompressed Docker-archive layers
//! against the config's diffIDs. Names are set in one transaction after everything is
//! verified; on failure nothing is named and the blobs the load added are deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::digest::{Algorithm, Digest, HashingReader};
use crate::images::{ImageError, ImageStore};
use crate::manifest::{self, Document, ManifestError, Platform};
use crate::reach;
use crate::reference::Reference;
use crate::snapshots::SnapshotError;
use crate::store::StoreError;
use crate::timefmt;
use crate::unpack::Compression;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("reading the archive: {0}")]
    Read(#[source] io::Error),
    #[error("writing the archive, at {entry}: {source}")]
    Write {
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("archive entry {entry}: {source}")]
    Blob {
        entry: String,
        #[source]
        source: StoreError,
    },
    #[error("imported layer {layer}: {source}")]
    Layer {
        layer: Digest,
        #[source]
        source: Box<SnapshotError>,
    },
    #[error("archive file {file}: {problem}")]
    Invalid { file: String, problem: String },
    #[error("archive file {file} is not valid JSON of its kind: {source}")]
    Json {
        file: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("not an image archive: it has neither index.json nor manifest.json")]
    NotAnArchive,
    #[error("archive names blob {blob} (for {by}), which it does not contain")]
    MissingBlob { blob: Digest, by: String },
    #[error("layer {layer} (for {image}) has digest {actual} but the config's diffID is {expected}")]
    DiffIdMismatch {
        layer: String,
        image: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, ArchiveError>;

/// What `import` created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub layer_digest: Digest,
    pub diff_id: Digest,
}

/// One image a `load` named (or left dangling, with `name` None).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub name: Option<String>,
    pub target: Digest,
}

/// `docker import`: turn a rootfs tarball (plain, gzip or zstd) into a single-layer image
/// whose layer is stored gzip-compressed, named `name` (dangling if None).
pub fn import(store: &ImageStore, input: impl Read, name: Option<&Reference>) -> Result<Imported> {
    let mut added = Vec::new();
    let result = import_inner(store, input, name, &mut added);
    if result.is_err() {
        // Best effort: the import's error is what matters.
        let _ = store.collect_blobs(added);
    }
    result
}

fn import_inner(
    store: &ImageStore,
    input: impl Read,
    name: Option<&Reference>,
    added: &mut Vec<Digest>,
) -> Result<Imported> {
    let mut input = BufReader::new(input);
    let head = input.fill_buf().map_err(ArchiveError::Read)?.to_vec();
    let plain: Box<dyn Read + '_> = match Compression::from_magic(&head) {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(input).map_err(ArchiveError::Read)?),
    };
    let hashing = HashingReader::new(plain, Algorithm::Sha256);
    let mut gz = flate2::read::GzEncoder::new(hashing, flate2::Compression::default());
    let layer_digest = store
        .blobs()
        .ingest(None, None, &mut gz)
        .map_err(|source| ArchiveError::Blob {
            entry: "<imported layer>".into(),
            source,
        })?;
    added.push(layer_digest.clone());
    let (diff_id, _, _) = gz.into_inner().finish();
    let layer_size = blob_len(store, &layer_digest)?;
    // Unpacking now (as `docker import` registers the layer) rejects input that is not a
    // safe tar before any image exists, and spares the first container the wait.
    let blob = store.blobs().open_blob(&layer_digest)?;
    store
        .snapshots()
        .apply_layer(None, blob, Some(manifest::OCI_LAYER_GZIP), Some(&diff_id))
        .map_err(|source| ArchiveError::Layer {
            layer: layer_digest.clone(),
            source: Box::new(source),
        })?;

    let host = Platform::host();
    let now = timefmt::now_rfc3339();
    let mut config = serde_json::json!({
        "created": now,
        "architecture": host.architecture,
        "os": host.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{"created": now, "created_by": "berth import", "comment": "Imported from tarball"}],
    });
    if let Some(v) = &host.variant {
        config["variant"] = v.clone().into();
    }
    let config_bytes = json_bytes(&config, "<import config>")?;
    let config_digest = store.blobs().ingest(None, None, config_bytes.as_slice())?;
    added.push(config_digest.clone());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": manifest::OCI_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len()},
        "layers": [{"mediaType": manifest::OCI_LAYER_GZIP, "digest": layer_digest.to_string(), "size": layer_size}],
    });
    let manifest_bytes = json_bytes(&manifest, "<import manifest>")?;
    let manifest_digest = store.blobs().ingest(None, None, manifest_bytes.as_slice())?;
    added.push(manifest_digest.clone());
    store.set_image(name, &manifest_digest)?;
    Ok(Imported {
        manifest_digest,
        config_digest,
        layer_digest,
        diff_id,
    })
}

fn json_bytes(v: &serde_json::Value, file: &str) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|source| ArchiveError::Json {
        file: file.into(),
        source,
    })
}

fn blob_len(store: &ImageStore, digest: &Digest) -> Result<u64> {
    let path = store.blobs().blob_path(digest);
    let meta = std::fs::metadata(&path).map_err(|source| ArchiveError::Blob {
        entry: digest.to_string(),
        source: StoreError::Io {
            op: "stat",
            path: path.clone(),
            source,
        },
    })?;
    Ok(meta.len())
}

/// One image to save: its manifest and the names it is saved under.
struct SaveItem {
    /// What `index.json` points at: the store platform's manifest, or the whole index.
    target: Digest,
    target_media_type: String,
    target_size: u64,
    /// The store platform's config and layers, for `manifest.json`.
    config: Digest,
    layers: Vec<Digest>,
    /// Every blob to write, each after the blobs it references.
    blobs: Vec<Digest>,
    names: Vec<Reference>,
}

/// If `image` comes from an index of which another platform (or an attestation) is
/// stored completely: the index's media type and the other complete manifests' blobs.
fn other_platforms(store: &ImageStore, image: &crate::images::Image) -> Result<Option<(String, Vec<Digest>)>> {
    if image.target == image.manifest_digest {
        return Ok(None);
    }
    let bytes = store.read_document(&image.target)?;
    let mut extra = Vec::new();
    for child in reach::index_children(&bytes).unwrap_or_default() {
        if child == image.manifest_digest || !store.blobs().exists(&child)? {
            continue;
        }
        // Nested indexes are not followed; their descriptors still stand in the index.
        let Some((config, layers)) = reach::manifest_refs(&store.read_document(&child)?) else {
            continue;
        };
        let mut blobs = layers;
        blobs.extend([config, child]);
        let mut complete = true;
        for b in &blobs {
            complete &= store.blobs().exists(b)?;
        }
        if complete {
            extra.extend(blobs);
        }
    }
    if extra.is_empty() {
        return Ok(None);
    }
    let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|d| d.get("mediaType")?.as_str().map(String::from))
        .unwrap_or_else(|| manifest::OCI_INDEX.to_string());
    Ok(Some((media_type, extra)))
}

/// `docker save`: write the images `names` (references, digests or image IDs) to `out`
/// as one tar stream that is both an OCI layout and a Docker archive.
pub fn save(store: &ImageStore, names: &[&str], out: impl Write) -> Result<()> {
    let mut items: Vec<SaveItem> = Vec::new();
    for name in names {
        let image = store.resolve(name)?;
        let reference = Reference::parse(name)
            .ok()
            .filter(|r| r.tag().is_some() && r.digest().is_none());
        let object = image.manifest_digest.to_string();
        let layers = image
            .manifest
            .layers()
            .iter()
            .map(|l| manifest::descriptor_digest(l, &object))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut blobs = layers.clone();
        blobs.extend([image.config_digest.clone(), image.manifest_digest.clone()]);
        let (target, target_media_type) = match other_platforms(store, &image)? {
            Some((media_type, extra)) => {
                blobs.extend(extra);
                blobs.push(image.target.clone());
                (image.target.clone(), media_type)
            }
            None => (
                image.manifest_digest.clone(),
                image
                    .manifest
                    .media_type()
                    .as_ref()
                    .map_or(manifest::OCI_MANIFEST.to_string(), |t| t.to_string()),
            ),
        };
        if let Some(item) = items.iter_mut().find(|i| i.target == target) {
            item.names.extend(reference);
            continue;
        }
        items.push(SaveItem {
            target_size: blob_len(store, &target)?,
            target,
            target_media_type,
            config: image.config_digest,
            layers,
            blobs,
            names: reference.into_iter().collect(),
        });
    }

    let mut tar = tar::Builder::new(out);
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut written = BTreeSet::new();
    for item in &items {
        for blob in &item.blobs {
            if written.insert(blob.clone()) {
                append_blob(&mut tar, store, blob)?;
            }
        }
    }
    let mut index_entries = Vec::new();
    let mut docker_entries = Vec::new();
    for item in &items {
        let descriptor = |annotations: Option<serde_json::Value>| {
            let mut d = serde_json::json!({
                "mediaType": item.target_media_type,
                "digest": item.target.to_string(),
                "size": item.target_size,
            });
            if let Some(a) = annotations {
                d["annotations"] = a;
            }
            d
        };
        if item.names.is_empty() {
            index_entries.push(descriptor(None));
        }
        for r in &item.names {
            index_entries.push(descriptor(Some(serde_json::json!({
                manifest::ANNOTATION_IMAGE_NAME: r.to_string(),
                manifest::ANNOTATION_REF_NAME: r.tag().unwrap_or("latest"),
            }))));
        }
        docker_entries.push(serde_json::json!({
            "Config": blob_entry(&item.config),
            "RepoTags": item.names.iter().map(Reference::familiar).collect::<Vec<_>>(),
            "Layers": item.layers.iter().map(blob_entry).collect::<Vec<_>>(),
        }));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": index_entries,
    });
    append_bytes(&mut tar, "index.json", &json_bytes(&index, "index.json")?)?;
    let docker = serde_json::Value::Array(docker_entries);
    append_bytes(&mut tar, "manifest.json", &json_bytes(&docker, "manifest.json")?)?;
    tar.into_inner().map_err(|source| ArchiveError::Write {
        entry: "<end of archive>".into(),
        source,
    })?;
    Ok(())
}

fn blob_entry(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

fn header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    tar.append_data(&mut header(data.len() as u64), path, data)
        .map_err(|source| ArchiveError::Write {
            entry: path.into(),
            source,
        })
}

fn append_blob<W: Write>(tar: &mut tar::Builder<W>, store: &ImageStore, blob: &Digest) -> Result<()> {
    let file = store.blobs().open_blob(blob)?;
    let len = blob_len(store, blob)?;
    let path = blob_entry(blob);
    // `take` guards against the file growing under us; a shrinking one fails the write.
    tar.append_data(&mut header(len), &path, file.take(len))
        .map_err(|source| ArchiveError::Write { entry: path, source })
}

/// `docker load`: read an OCI layout or Docker archive tar stream into `store`.
pub fn load(store: &ImageStore, input: impl Read) -> Result<Vec<Loaded>> {
    let mut added = BTreeSet::new();
    let result = load_inner(store, input, &mut added);
    // On success this drops extras no image uses (legacy `json`/`VERSION` files); on
    // failure everything the load added that nothing else uses.
    let cleanup = store.collect_blobs(added);
    let loaded = result?;
    cleanup?;
    Ok(loaded)
}

/// Small metadata files read into memory.
const META_FILES: [&str; 4] = ["index.json", "manifest.json", "oci-layout", "repositories"];

#[derive(Default)]
struct Contents {
    /// Archive path → digest of each regular file stored as a blob.
    files: BTreeMap<PathBuf, Digest>,
    /// Symlink path → the path it points at (resolved against its directory).
    links: BTreeMap<PathBuf, PathBuf>,
    meta: BTreeMap<String, Vec<u8>>,
}

impl Contents {
    fn digest_of(&self, path: &str) -> Option<&Digest> {
        let mut p = normalise(Path::new(path))?;
        for _ in 0..16 {
            if let Some(d) = self.files.get(&p) {
                return Some(d);
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }
}

/// `a/./b/../c` → `a/c`; None if it climbs out of the archive.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn load_inner(store: &ImageStore, input: impl Read, added: &mut BTreeSet<Digest>) -> Result<Vec<Loaded>> {
    let contents = read_entries(store, input, added)?;
    let names = if let Some(index) = contents.meta.get("index.json") {
        from_index(store, index)?
    } else if let Some(docker) = contents.meta.get("manifest.json") {
        from_docker_manifest(store, &contents, docker, added)?
    } else {
        return Err(ArchiveError::NotAnArchive);
    };
    let refs: Vec<(Option<&Reference>, &Digest)> = names.iter().map(|(r, d)| (r.as_ref(), d)).collect();
    store.set_images(&refs)?;
    Ok(names
        .iter()
        .map(|(r, d)| Loaded {
            name: r.as_ref().map(Reference::familiar),
            target: d.clone(),
        })
        .collect())
}

fn read_entries(store: &ImageStore, input: impl Read, added: &mut BTreeSet<Digest>) -> Result<Contents> {
    let mut contents = Contents::default();
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        let raw = entry.path().map_err(ArchiveError::Read)?.into_owned();
        let shown = raw.display().to_string();
        let Some(path) = normalise(&raw) else {
            return Err(ArchiveError::Invalid {
                file: shown,
                problem: "path leaves the archive".into(),
            });
        };
        match entry.header().entry_type() {
            tar::EntryType::Symlink => {
                let target = entry.link_name().map_err(ArchiveError::Read)?.unwrap_or_default();
                let dir = path.parent().unwrap_or(Path::new(""));
                if let Some(t) = normalise(&dir.join(target)) {
                    contents.links.insert(path, t);
                }
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            _ => continue,
        }
        let name = path.to_string_lossy().into_owned();
        if META_FILES.contains(&name.as_str()) {
            let mut buf = Vec::new();
            (&mut entry)
                .take(manifest::MAX_DOCUMENT_SIZE + 1)
                .read_to_end(&mut buf)
                .map_err(ArchiveError::Read)?;
            if buf.len() as u64 > manifest::MAX_DOCUMENT_SIZE {
                return Err(ArchiveError::Invalid {
                    file: name,
                    problem: format!("larger than {} bytes", manifest::MAX_DOCUMENT_SIZE),
                });
            }
            contents.meta.insert(name, buf);
            continue;
        }
        let expected = blob_path_digest(&path);
        if path.starts_with("blobs") && expected.is_none() {
            return Err(ArchiveError::Invalid {
                file: name,
                problem: "under blobs/ but not named <algorithm>/<hex digest>".into(),
            });
        }
        let size = entry.header().size().map_err(ArchiveError::Read)?;
        let existed = match &expected {
            Some(d) => store.blobs().exists(d)?,
            None => false,
        };
        let digest = store
            .blobs()
            .ingest(expected.as_ref(), Some(size), &mut entry)
            .map_err(|source| ArchiveError::Blob {
                entry: name.clone(),
                source,
            })?;
        if !existed {
            added.insert(digest.clone());
        }
        contents.files.insert(path, digest);
    }
    Ok(contents)
}

fn blob_path_digest(path: &Path) -> Option<Digest> {
    let mut parts = path.components();
    let (Some(Component::Normal(b)), Some(Component::Normal(algo)), Some(Component::Normal(hex)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if b != "blobs" {
        return None;
    }
    Digest::parse(&format!("{}:{}", algo.to_str()?, hex.to_str()?)).ok()
}

/// Names and targets from an OCI `index.json`, after checking each target's content is
/// all present.
fn from_index(store: &ImageStore, bytes: &[u8]) -> Result<Vec<(Option<Reference>, Digest)>> {
    let Document::Index(index) = manifest::parse(bytes, Some(manifest::OCI_INDEX), "index.json")? else {
        return Err(ArchiveError::Invalid {
            file: "index.json".into(),
            problem: "is not an image index".into(),
        });
    };
    let mut out = Vec::new();
    for d in index.manifests() {
        let digest = manifest::descriptor_digest(d, "index.json")?;
        check_complete(store, &digest, "index.json")?;
        let annotations = d.annotations().clone().unwrap_or_default();
        let name = match (
            annotations.get(manifest::ANNOTATION_IMAGE_NAME),
            annotations.get(manifest::ANNOTATION_REF_NAME),
        ) {
            (Some(full), _) => Some(full.as_str()),
            // A bare tag ("latest") names no repository: the image stays dangling.
            (None, Some(r)) if r.contains(['/', ':', '@']) => Some(r.as_str()),
            _ => None,
        };
        let reference = name
            .map(|n| {
                Reference::parse(n).map_err(|e| ArchiveError::Invalid {
                    file: "index.json".into(),
                    problem: format!("image name {n:?} for {digest}: {e}"),
                })
            })
            .transpose()?;
        out.push((reference, digest));
    }
    Ok(out)
}

/// Every blob a manifest or index reaches (for an index: its manifests that are present,
/// of which the store platform's must be one) must be stored.
fn check_complete(store: &ImageStore, target: &Digest, by: &str) -> Result<()> {
    let missing = |blob: &Digest, by: &str| ArchiveError::MissingBlob {
        blob: blob.clone(),
        by: by.to_string(),
    };
    if !store.blobs().exists(target)? {
        return Err(missing(target, by));
    }
    let object = target.to_string();
    let bytes = store.read_document(target)?;
    let manifests = match manifest::parse(&bytes, None, &object)? {
        Document::Manifest(m) => vec![(target.clone(), *m)],
        Document::Index(index) => {
            let wanted = manifest::select_manifest(&index, store.platform(), &object)?;
            let mut out = Vec::new();
            for d in index.manifests() {
                let digest = manifest::descriptor_digest(d, &object)?;
                if !store.blobs().exists(&digest)? {
                    if d == wanted {
                        return Err(missing(&digest, &object));
                    }
                    continue;
                }
                let bytes = store.read_document(&digest)?;
                if let Ok(m) = manifest::parse_manifest(&bytes, Some(d.media_type().as_ref()), &digest.to_string()) {
                    out.push((digest, m));
                }
            }
            out
        }
    };
    for (digest, m) in manifests {
        let object = digest.to_string();
        for d in m.layers().iter().chain([m.config()]) {
            let blob = manifest::descriptor_digest(d, &object)?;
            if !store.blobs().exists(&blob)? {
                return Err(missing(&blob, &object));
            }
        }
    }
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Build an OCI manifest for each `manifest.json` entry and return names and targets.
fn from_docker_manifest(
    store: &ImageStore,
    contents: &Contents,
    bytes: &[u8],
    added: &mut BTreeSet<Digest>,
) -> Result<Vec<(Option<Reference>, Digest)>> {
    let entries: Vec<DockerEntry> = serde_json::from_slice(bytes).map_err(|source| ArchiveError::Json {
        file: "manifest.json".into(),
        source,
    })?;
    let file_digest = |path: &str| {
        contents.digest_of(path).cloned().ok_or_else(|| ArchiveError::Invalid {
            file: "manifest.json".into(),
            problem: format!("names {path:?}, which the archive does not contain"),
        })
    };
    let mut out = Vec::new();
    for entry in entries {
        let config_digest = file_digest(&entry.config)?;
        // Legacy archives name the config `<hex>.json`: the name is its digest.
        if let Some(hex) = entry.config.strip_suffix(".json").filter(|h| h.len() == 64) {
            if hex != config_digest.hex() {
                return Err(ArchiveError::Invalid {
                    file: entry.config.clone(),
                    problem: format!("content has digest {config_digest}, not the one its name says"),
                });
            }
        }
        let object = entry.config.clone();
        let config_bytes = store.read_document(&config_digest)?;
        let config = manifest::parse_config(&config_bytes, &object)?;
        let diff_ids = manifest::diff_ids(&config, &object)?;
        if diff_ids.len() != entry.layers.len() {
            return Err(ArchiveError::Invalid {
                file: "manifest.json".into(),
                problem: format!(
                    "entry for {object} lists {} layers but its config has {} diffIDs",
                    entry.layers.len(),
                    diff_ids.len()
                ),
            });
        }
        let mut layers = Vec::new();
        for (path, diff_id) in entry.layers.iter().zip(&diff_ids) {
            let digest = file_digest(path)?;
            let mut head = [0u8; 4];
            let n = store
                .blobs()
                .open_blob(&digest)?
                .read(&mut head)
                .map_err(ArchiveError::Read)?;
            let media_type = match Compression::from_magic(&head[..n]) {
                Compression::None => {
                    if &digest != diff_id {
                        return Err(ArchiveError::DiffIdMismatch {
                            layer: path.clone(),
                            image: object.clone(),
                            expected: diff_id.clone(),
                            actual: digest,
                        });
                    }
                    manifest::OCI_LAYER_TAR
                }
                Compression::Gzip => manifest::OCI_LAYER_GZIP,
                Compression::Zstd => manifest::OCI_LAYER_ZSTD,
            };
            layers.push(serde_json::json!({
                "mediaType": media_type,
                "digest": digest.to_string(),
                "size": blob_len(store, &digest)?,
            }));
        }
        let manifest_json = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": manifest::OCI_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len()},
            "layers": layers,
        });
        let manifest_bytes = json_bytes(&manifest_json, "<manifest for manifest.json entry>")?;
        let existed = store
            .blobs()
            .exists(&Digest::of_bytes(Algorithm::Sha256, &manifest_bytes))?;
        let manifest_digest = store.blobs().ingest(None, None, manifest_bytes.as_slice())?;
        if !existed {
            added.insert(manifest_digest.clone());
        }
        let tags = entry.repo_tags.unwrap_or_default();
        if tags.is_empty() {
            out.push((None, manifest_digest.clone()));
        }
        for tag in tags {
            let reference = Reference::parse(&tag).map_err(|e| ArchiveError::Invalid {
                file: "manifest.json".into(),
                problem: format!("RepoTags entry {tag:?}: {e}"),
            })?;
            out.push((Some(reference), manifest_digest.clone()));
        }
    }
    Ok(out)
}
