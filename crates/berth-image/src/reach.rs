//! What content an image target (a manifest or an index) reaches: blobs and snapshot
//! chainIDs. Used to decide what removal and garbage collection may delete.
//!
//! Documents are read loosely (only the digests are taken), so manifests this crate cannot
//! run, such as build attestations inside an index, still keep their blobs alive. Child
//! manifests of an index that are not stored are normal (only one platform is usually
//! pulled) and are skipped in both modes.

use std::collections::BTreeSet;
use std::io::Read;

use crate::digest::Digest;
use crate::manifest;
use crate::snapshots;
use crate::store::{BlobStore, StoreError};

/// Blobs and snapshot chainIDs.
#[derive(Debug, Default)]
pub(crate) struct Content {
    pub blobs: BTreeSet<Digest>,
    pub snapshots: BTreeSet<Digest>,
}

impl Content {
    pub fn extend(&mut self, other: Content) {
        self.blobs.extend(other.blobs);
        self.snapshots.extend(other.snapshots);
    }
}

/// A document whose references could not be read, so what it keeps alive is unknown.
#[derive(Debug, thiserror::Error)]
#[error("{object}: {problem}")]
pub struct Unreadable {
    pub object: Digest,
    pub problem: String,
}

fn unreadable(object: &Digest, problem: impl Into<String>) -> Unreadable {
    Unreadable {
        object: object.clone(),
        problem: problem.into(),
    }
}

/// A stored document's bytes (None if not stored), refusing ones over the size limit.
fn read_document(blobs: &BlobStore, digest: &Digest) -> Result<Option<Vec<u8>>, Unreadable> {
    let file = match blobs.open_blob(digest) {
        Ok(f) => f,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(unreadable(digest, e.to_string())),
    };
    let mut buf = Vec::new();
    file.take(manifest::MAX_DOCUMENT_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| unreadable(digest, format!("read: {e}")))?;
    if buf.len() as u64 > manifest::MAX_DOCUMENT_SIZE {
        return Err(unreadable(digest, "larger than the document size limit"));
    }
    Ok(Some(buf))
}

fn digest_field(v: &serde_json::Value) -> Option<Digest> {
    Digest::parse(v.get("digest")?.as_str()?).ok()
}

/// The digests a manifest document names: its config, then its layers. None if the
/// document is not a manifest.
pub(crate) fn manifest_refs(bytes: &[u8]) -> Option<(Digest, Vec<Digest>)> {
    let doc: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let config = digest_field(doc.get("config")?)?;
    let layers = match doc.get("layers") {
        Some(serde_json::Value::Array(ls)) => ls.iter().map(digest_field).collect::<Option<Vec<_>>>()?,
        None => Vec::new(),
        Some(_) => return None,
    };
    Some((config, layers))
}

/// The child manifests an index document names (None if it is not an index).
pub(crate) fn index_children(bytes: &[u8]) -> Option<Vec<Digest>> {
    let doc: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let list = doc.get("manifests")?.as_array()?;
    Some(list.iter().filter_map(digest_field).collect())
}

/// `target` itself and, when it is a stored index, the manifests it lists.
pub(crate) fn manifests_of(blobs: &BlobStore, target: &Digest) -> BTreeSet<Digest> {
    let mut out = BTreeSet::from([target.clone()]);
    if let Ok(Some(bytes)) = read_document(blobs, target) {
        out.extend(index_children(&bytes).unwrap_or_default());
    }
    out
}

/// Everything `target` reaches. Best effort unless `strict`: then a target, manifest
/// or config that is missing or unreadable is an error, since guessing would let garbage
/// collection delete content a live image needs.
pub(crate) fn content_of(blobs: &BlobStore, target: &Digest, strict: bool) -> Result<Content, Unreadable> {
    let mut out = Content::default();
    walk(blobs, target, strict, 0, &mut out)?;
    Ok(out)
}

fn walk(blobs: &BlobStore, digest: &Digest, strict: bool, depth: u8, out: &mut Content) -> Result<(), Unreadable> {
    out.blobs.insert(digest.clone());
    let bytes = match read_document(blobs, digest) {
        Ok(Some(b)) => b,
        // An index's absent children are platforms that were never pulled.
        Ok(None) if !strict || depth > 0 => return Ok(()),
        Ok(None) => return Err(unreadable(digest, "not stored")),
        Err(_) if !strict => return Ok(()),
        Err(e) => return Err(e),
    };
    if let Some(children) = index_children(&bytes) {
        // Nested indexes exist (attestation lists) but never deeper than this.
        if depth < 2 {
            for child in children {
                walk(blobs, &child, strict, depth + 1, out)?;
            }
        }
        return Ok(());
    }
    let Some((config, layers)) = manifest_refs(&bytes) else {
        return match strict {
            true => Err(unreadable(digest, "neither a manifest nor an index")),
            false => Ok(()),
        };
    };
    out.blobs.insert(config.clone());
    out.blobs.extend(layers);
    let config_bytes = match read_document(blobs, &config) {
        Ok(Some(b)) => b,
        Ok(None) if strict => return Err(unreadable(digest, format!("its config {config} is not stored"))),
        Err(e) if strict => return Err(e),
        _ => return Ok(()),
    };
    // Non-image configs (attestations) have no layers to snapshot.
    if let Ok(diff_ids) = manifest::parse_config(&config_bytes, "").and_then(|c| manifest::diff_ids(&c, "")) {
        out.snapshots.extend(snapshots::chain_ids(&diff_ids));
    }
    Ok(())
}
