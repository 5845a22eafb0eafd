//! Pushing: blobs (skipped when the registry has them, mounted from another repository
//! of the same registry when possible, else uploaded in one `PUT` or `PATCH` chunks),
//! then manifests (an index's children first).

use std::io::Read;

use super::client::{Access, Client, Payload, Repo};
use super::error::{RegistryError, Result};
use super::pull::{blob_error, parse_manifest};
use super::{is_index, MANIFEST_SIZE_LIMIT};
use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::BlobStore;

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Other repositories of the same registry that may hold the blobs: each missing
    /// blob is first mounted from these (after any repository this client saw it in).
    pub mount_from: Vec<String>,
}

/// What happened to one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// The repository already had it.
    Skipped,
    /// Mounted from another repository; no bytes sent.
    Mounted,
    /// Uploaded, with this many `PATCH` requests (0: one monolithic `PUT`).
    Uploaded { chunks: usize },
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// Digest of the manifest (or index) pushed under the reference.
    pub digest: Digest,
    pub uploaded: Vec<Digest>,
    pub mounted: Vec<Digest>,
    pub skipped: Vec<Digest>,
    /// `PATCH` requests sent by chunked uploads.
    pub chunks: usize,
    /// Manifests `PUT` (an index's children, then the reference's own).
    pub manifests: Vec<Digest>,
}

impl Client {
    /// Push the manifest or index `manifest` from `store`, with everything it refers
    /// to, to `reference` (its tag, else its digest).
    pub fn push(
        &self,
        reference: &Reference,
        store: &BlobStore,
        manifest: &Digest,
        options: &PushOptions,
    ) -> Result<PushReport> {
        let repo = self.repo(reference.domain(), reference.path());
        let target = match reference.tag() {
            Some(t) => t.to_string(),
            None => manifest.to_string(),
        };
        let mut report = PushReport {
            digest: manifest.clone(),
            uploaded: Vec::new(),
            mounted: Vec::new(),
            skipped: Vec::new(),
            chunks: 0,
            manifests: Vec::new(),
        };
        self.push_tree(&repo, store, manifest, &target, options, &mut report, 0)?;
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    fn push_tree(
        &self,
        repo: &Repo,
        store: &BlobStore,
        digest: &Digest,
        target: &str,
        options: &PushOptions,
        report: &mut PushReport,
        depth: usize,
    ) -> Result<()> {
        let bytes = read_stored_manifest(repo, store, digest)?;
        let label = format!("{}@{digest}", repo.name);
        let (doc, media_type) = parse_manifest(&repo.registry, &label, &bytes, None)?;
        if is_index(&media_type) {
            if depth > 0 {
                return Err(RegistryError::BadManifest {
                    registry: repo.registry.clone(),
                    reference: label,
                    what: "nested indexes are not supported".into(),
                });
            }
            for child in doc.manifests.unwrap_or_default() {
                self.push_tree(
                    repo,
                    store,
                    &child.digest,
                    &child.digest.to_string(),
                    options,
                    report,
                    1,
                )?;
            }
        } else {
            let mut blobs = Vec::new();
            for d in doc.config.into_iter().chain(doc.layers.unwrap_or_default()) {
                if !blobs.iter().any(|(b, _)| *b == d.digest) {
                    blobs.push((d.digest, d.size));
                }
            }
            for (d, size) in blobs {
                match self.push_blob_to(repo, store, &d, size, options)? {
                    BlobOutcome::Skipped => report.skipped.push(d),
                    BlobOutcome::Mounted => report.mounted.push(d),
                    BlobOutcome::Uploaded { chunks } => {
                        report.chunks += chunks;
                        report.uploaded.push(d);
                    }
                }
            }
        }
        self.put_manifest_to(repo, target, &media_type, &bytes)?;
        report.manifests.push(digest.clone());
        Ok(())
    }

    /// Push one blob of `store` to `reference`'s repository.
    pub fn push_blob(
        &self,
        reference: &Reference,
        store: &BlobStore,
        digest: &Digest,
        options: &PushOptions,
    ) -> Result<BlobOutcome> {
        let repo = self.repo(reference.domain(), reference.path());
        let size = store
            .open_blob(digest)
            .and_then(|f| {
                f.metadata()
                    .map(|m| m.len())
                    .map_err(|source| crate::store::StoreError::Io {
                        op: "stat",
                        path: store.blob_path(digest),
                        source,
                    })
            })
            .map_err(|e| blob_error(&repo, digest, e))?;
        self.push_blob_to(&repo, store, digest, size, options)
    }

    fn push_blob_to(
        &self,
        repo: &Repo,
        store: &BlobStore,
        digest: &Digest,
        size: u64,
        options: &PushOptions,
    ) -> Result<BlobOutcome> {
        let push = Access::Push { mount_from: None };
        let url = repo.url(&format!("blobs/{digest}"));
        let resp = self.send(repo, push, "HEAD", &url, &[], Payload::Empty)?;
        match resp.status().as_u16() {
            200 => {
                self.record_source(repo, digest);
                return Ok(BlobOutcome::Skipped);
            }
            404 => {}
            _ => return Err(self.status_error(repo, "HEAD", &url, resp)),
        }

        // One mount attempt: when it fails the registry opens an ordinary upload (202),
        // which is then used. A source this client saw the blob in comes first.
        let from = self
            .known_source(repo, digest)
            .or_else(|| options.mount_from.iter().find(|r| **r != repo.name).cloned());
        let mut location = None;
        if let Some(from) = &from {
            let url = repo.url(&format!(
                "blobs/uploads/?mount={}&from={}",
                super::client::encode(&digest.to_string()),
                super::client::encode(from)
            ));
            let access = Access::Push { mount_from: Some(from) };
            let resp = self.send(repo, access, "POST", &url, &[], Payload::Empty)?;
            match resp.status().as_u16() {
                201 => {
                    self.record_source(repo, digest);
                    return Ok(BlobOutcome::Mounted);
                }
                202 => location = Some(self.location(repo, &url, &resp)?),
                _ => return Err(self.status_error(repo, "POST", &url, resp)),
            }
        }
        let mut location = match location {
            Some(l) => l,
            None => {
                let url = repo.url("blobs/uploads/");
                let resp = self.send(repo, push, "POST", &url, &[], Payload::Empty)?;
                if resp.status().as_u16() != 202 {
                    return Err(self.status_error(repo, "POST", &url, resp));
                }
                self.location(repo, &url, &resp)?
            }
        };

        let mut file = store.open_blob(digest).map_err(|e| blob_error(repo, digest, e))?;
        let octets = ("Content-Type", "application/octet-stream".to_string());
        let mut chunks = 0;
        if size > self.upload_chunk {
            let mut offset = 0;
            while offset < size {
                let n = self.upload_chunk.min(size - offset);
                let range = ("Content-Range", format!("{offset}-{}", offset + n - 1));
                let mut part = (&mut file).take(n);
                let resp = self.send(
                    repo,
                    push,
                    "PATCH",
                    &location,
                    &[octets.clone(), range],
                    Payload::Stream(&mut part, n),
                )?;
                if resp.status().as_u16() != 202 {
                    return Err(self.status_error(repo, "PATCH", &location, resp));
                }
                location = self.location(repo, &location, &resp)?;
                offset += n;
                chunks += 1;
            }
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{sep}digest={}", super::client::encode(&digest.to_string()));
        let resp = if chunks > 0 {
            self.send(repo, push, "PUT", &put_url, &[], Payload::Empty)?
        } else {
            self.send(repo, push, "PUT", &put_url, &[octets], Payload::Stream(&mut file, size))?
        };
        if resp.status().as_u16() != 201 {
            return Err(self.status_error(repo, "PUT", &put_url, resp));
        }
        self.record_source(repo, digest);
        Ok(BlobOutcome::Uploaded { chunks })
    }

    /// Put a manifest or index under `reference`'s tag (else its digest). Returns its digest.
    pub fn put_manifest(&self, reference: &Reference, media_type: &str, bytes: &[u8]) -> Result<Digest> {
        let repo = self.repo(reference.domain(), reference.path());
        let target = match (reference.tag(), reference.digest()) {
            (Some(t), _) => t.to_string(),
            (None, Some(d)) => d.to_string(),
            (None, None) => crate::reference::DEFAULT_TAG.to_string(),
        };
        self.put_manifest_to(&repo, &target, media_type, bytes)
    }

    fn put_manifest_to(&self, repo: &Repo, target: &str, media_type: &str, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of_bytes(crate::digest::Algorithm::Sha256, bytes);
        let url = repo.url(&format!("manifests/{target}"));
        let headers = [("Content-Type", media_type.to_string())];
        let push = Access::Push { mount_from: None };
        let resp = self.send(repo, push, "PUT", &url, &headers, Payload::Bytes(bytes))?;
        if resp.status().as_u16() != 201 {
            return Err(self.status_error(repo, "PUT", &url, resp));
        }
        let echoed = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v.trim()).ok());
        if let Some(echoed) = echoed.filter(|e| e.algorithm() == digest.algorithm() && *e != digest) {
            return Err(RegistryError::ManifestDigest {
                registry: repo.registry.clone(),
                reference: format!("{}:{target}", repo.name),
                expected: digest.to_string(),
                actual: echoed,
            });
        }
        self.record_source(repo, &digest);
        Ok(digest)
    }

    fn location(&self, repo: &Repo, url: &str, resp: &ureq::http::Response<ureq::Body>) -> Result<String> {
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok());
        match location.filter(|l| !l.is_empty()) {
            Some(l) => Ok(repo.resolve(l)),
            None => Err(RegistryError::BadLocation {
                registry: repo.registry.clone(),
                url: url.to_string(),
                location: location.map(str::to_string),
            }),
        }
    }
}

fn read_stored_manifest(repo: &Repo, store: &BlobStore, digest: &Digest) -> Result<Vec<u8>> {
    let file = store.open_blob(digest).map_err(|e| blob_error(repo, digest, e))?;
    let mut bytes = Vec::new();
    file.take(MANIFEST_SIZE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| {
            blob_error(
                repo,
                digest,
                crate::store::StoreError::Read {
                    blob: digest.to_string(),
                    source,
                },
            )
        })?;
    if bytes.len() as u64 > MANIFEST_SIZE_LIMIT {
        return Err(RegistryError::ManifestTooLarge {
            registry: repo.registry.clone(),
            reference: format!("{}@{digest}", repo.name),
            limit: MANIFEST_SIZE_LIMIT,
        });
    }
    Ok(bytes)
}
