//! Pulling: manifests (by tag, or by digest and verified), platform selection from an
//! index, and blobs streamed straight into the [`BlobStore`], several at once.

use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::auth::lock;
use super::client::{Access, Client, Payload, Repo};
use super::error::{read_limited, transport_error, RegistryError, Result};
use super::pipeline::{Tee, TeeReader};
use super::{
    is_index, is_manifest, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MANIFEST_SIZE_LIMIT, OCI_INDEX, OCI_MANIFEST,
};
use crate::digest::{Algorithm, Digest};
use crate::reference::Reference;
use crate::store::{BlobStore, PartialIngest, StoreError};

/// An OS/architecture(/variant) an image is built for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// The platform this process runs on, in OCI (Go) names: `linux/amd64`, `linux/arm64/v8`.
    pub fn host() -> Self {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform::new("linux", arch, variant)
    }

    /// Parse `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let arch = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next();
        if parts.next().is_some() {
            return None;
        }
        Some(Platform::new(os, arch, variant))
    }

    /// Whether an index entry for `other` can run here. A wanted variant must match
    /// (arm64 without a variant is v8); no wanted variant accepts any.
    pub fn matches(&self, other: &Platform) -> bool {
        let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_string()),
            (_, v) => v.map(str::to_string),
        };
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || norm(self) == norm(other))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Progress of one blob of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobProgress {
    pub digest: Digest,
    pub media_type: String,
    /// Bytes stored so far, counting those of an earlier interrupted download this one
    /// resumed (`total` when `cached`).
    pub done: u64,
    pub total: u64,
    /// Bytes an earlier interrupted download had stored, which this one did not fetch
    /// again (0: downloaded from the start).
    pub resumed_from: u64,
    /// The blob was already in the store and was not downloaded.
    pub cached: bool,
}

/// Called from download threads as blobs progress.
pub type ProgressFn = dyn Fn(&BlobProgress) + Send + Sync;

#[derive(Clone, Default)]
pub struct PullOptions {
    /// The platform to pick from an index; [`Platform::host`] if `None`.
    pub platform: Option<Platform>,
    pub progress: Option<Arc<ProgressFn>>,
}

/// What a pull stored.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// Digest of the image manifest (the platform's one when the reference named an index).
    pub digest: Digest,
    pub media_type: String,
    pub manifest: serde_json::Value,
    /// Digest of the index the manifest was picked from, if any.
    pub index: Option<Digest>,
    pub config: Digest,
    pub layers: Vec<Digest>,
    /// Blobs this pull downloaded (the rest were already stored).
    pub fetched: Vec<Digest>,
    /// Base URL of the registry or mirror the image came from.
    pub endpoint: String,
}

/// An image manifest chosen for a pull, not stored yet.
pub(crate) struct ResolvedImage {
    pub index: Option<FetchedManifest>,
    pub manifest: FetchedManifest,
    /// `name@digest` of the manifest, for errors.
    pub label: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A manifest or index as served, verified against its digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ManifestDoc {
    #[serde(default)]
    pub schema_version: Option<u32>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
}

/// Parse a manifest or index and decide its media type (from `header`, the document's
/// `mediaType`, or its shape). `label` names it in errors.
pub(crate) fn parse_manifest(
    registry: &str,
    label: &str,
    bytes: &[u8],
    header: Option<&str>,
) -> Result<(ManifestDoc, String)> {
    let bad = |what: String| RegistryError::BadManifest {
        registry: registry.to_string(),
        reference: label.to_string(),
        what,
    };
    let doc: ManifestDoc = serde_json::from_slice(bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    if doc.schema_version == Some(1) {
        return Err(bad("Docker schema 1 manifests are not supported".into()));
    }
    let header = header.map(|h| h.split(';').next().unwrap_or(h).trim());
    let media_type = [header, doc.media_type.as_deref()]
        .into_iter()
        .flatten()
        .find(|m| is_index(m) || is_manifest(m))
        .map(str::to_string)
        .or_else(|| match (&doc.manifests, &doc.layers) {
            (Some(_), _) => Some(OCI_INDEX.to_string()),
            (None, Some(_)) => Some(OCI_MANIFEST.to_string()),
            _ => None,
        })
        .ok_or_else(|| {
            bad(format!(
                "unsupported media type {:?}",
                header.or(doc.media_type.as_deref())
            ))
        })?;
    if is_index(&media_type) && doc.manifests.is_none() {
        return Err(bad("index has no \"manifests\"".into()));
    }
    if is_manifest(&media_type) && (doc.config.is_none() || doc.layers.is_none()) {
        return Err(bad("manifest lacks \"config\" or \"layers\"".into()));
    }
    Ok((doc, media_type))
}

impl Client {
    /// Fetch the manifest or index `reference` names (its digest if it has one, else its
    /// tag), checked against the digest asked for and the `Docker-Content-Digest` header.
    /// A Docker Hub reference tries the configured mirrors first, as a pull does.
    pub fn fetch_manifest(&self, reference: &Reference) -> Result<FetchedManifest> {
        self.via_pull_endpoints(reference, |repo| self.fetch_manifest_from(repo, reference))
    }

    fn fetch_manifest_from(&self, repo: &Repo, reference: &Reference) -> Result<FetchedManifest> {
        let target = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => crate::reference::DEFAULT_TAG.to_string(),
        };
        self.get_manifest(repo, &target, reference.digest())
    }

    /// Run `op` against each endpoint a pull of `reference` may use: the registry's
    /// mirrors (Docker Hub only) in order, then the registry itself. A mirror's failure
    /// moves on to the next endpoint, except a failure of the local store (a full disk
    /// would fail everywhere); blobs stored meanwhile are verified and kept.
    pub(crate) fn via_pull_endpoints<T>(
        &self,
        reference: &Reference,
        mut op: impl FnMut(&Repo) -> Result<T>,
    ) -> Result<T> {
        let mut failed = Vec::new();
        for mirror in self.mirror_endpoints(reference.domain()) {
            match op(&Repo::at(&mirror, reference.path())) {
                Ok(v) => return Ok(v),
                Err(e) if is_local_failure(&e) => return Err(e),
                Err(e) => failed.push(format!("{}: {e}", mirror.base_url)),
            }
        }
        let result = op(&self.repo(reference.domain(), reference.path()));
        match result {
            Err(e) if !failed.is_empty() => Err(RegistryError::Mirrors {
                registry: reference.domain().to_string(),
                mirrors: failed.join("; "),
                source: Box::new(e),
            }),
            other => other,
        }
    }

    pub(crate) fn get_manifest(&self, repo: &Repo, target: &str, expected: Option<&Digest>) -> Result<FetchedManifest> {
        let sep = if Digest::parse(target).is_ok() { '@' } else { ':' };
        let label = format!("{}/{}{sep}{target}", repo.registry, repo.name);
        let url = repo.url(&format!("manifests/{target}"));
        let accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(", ");
        let resp = self.send(repo, Access::Pull, "GET", &url, &[("Accept", accept)], Payload::Empty)?;
        if resp.status().as_u16() != 200 {
            return Err(self.status_error(repo, "GET", &url, resp));
        }
        let too_large = || RegistryError::ManifestTooLarge {
            registry: repo.registry.clone(),
            reference: label.clone(),
            limit: MANIFEST_SIZE_LIMIT,
        };
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type");
        let header_digest = header("docker-content-digest");
        if header("content-length").and_then(|l| l.parse::<u64>().ok()) > Some(MANIFEST_SIZE_LIMIT) {
            return Err(too_large());
        }
        let bytes = read_limited(resp, MANIFEST_SIZE_LIMIT).map_err(|e| {
            if e.kind() == std::io::ErrorKind::Other && e.to_string().starts_with("body is larger") {
                too_large()
            } else {
                transport_error("GET", &url, ureq::Error::Io(e))
            }
        })?;
        let algorithm = expected.map_or(Algorithm::Sha256, Digest::algorithm);
        let digest = Digest::of_bytes(algorithm, &bytes);
        let mismatch = |want: String, actual: Digest| RegistryError::ManifestDigest {
            registry: repo.registry.clone(),
            reference: label.clone(),
            expected: want,
            actual,
        };
        if let Some(want) = expected.filter(|want| **want != digest) {
            return Err(mismatch(want.to_string(), digest));
        }
        if let Some(h) = header_digest {
            // An unparsable header digest (an algorithm we lack) is not the server lying.
            if let Ok(hd) = Digest::parse(h.trim()) {
                let actual = Digest::of_bytes(hd.algorithm(), &bytes);
                if actual != hd {
                    return Err(mismatch(format!("{hd} (Docker-Content-Digest)"), actual));
                }
            }
        }
        let (_, media_type) = parse_manifest(&repo.registry, &label, &bytes, content_type.as_deref())?;
        Ok(FetchedManifest {
            digest,
            media_type,
            bytes,
        })
    }

    /// Pull `reference` into `store`: its manifest (the one for the wanted platform if it
    /// names an index), config and layers. Blobs already stored are not downloaded;
    /// manifests are stored last, so a stored manifest means its blobs are there.
    ///
    /// A Docker Hub reference is pulled from the first configured mirror that serves it
    /// whole, else from Docker Hub ([`Pulled::endpoint`] says which).
    pub fn pull(&self, reference: &Reference, store: &BlobStore, options: &PullOptions) -> Result<Pulled> {
        self.via_pull_endpoints(reference, |repo| self.pull_from(repo, reference, store, options))
    }

    fn pull_from(
        &self,
        repo: &Repo,
        reference: &Reference,
        store: &BlobStore,
        options: &PullOptions,
    ) -> Result<Pulled> {
        let image = self.resolve_image(repo, reference, options)?;
        let mut blobs = vec![image.config.clone()];
        for l in &image.layers {
            if !blobs.iter().any(|b| b.digest == l.digest) {
                blobs.push(l.clone());
            }
        }
        let downloaded = self.download_all(repo, store, &blobs, options.progress.as_deref(), &[])?;
        self.finish_pull(repo, store, image, downloaded)
    }

    /// The image manifest `reference` names (the wanted platform's, through an index).
    pub(crate) fn resolve_image(
        &self,
        repo: &Repo,
        reference: &Reference,
        options: &PullOptions,
    ) -> Result<ResolvedImage> {
        let repo = repo.clone();
        let top = self.fetch_manifest_from(&repo, reference)?;
        let (index, fetched) = if is_index(&top.media_type) {
            let label = reference.to_string();
            let (doc, _) = parse_manifest(&repo.registry, &label, &top.bytes, Some(&top.media_type))?;
            let want = options.platform.clone().unwrap_or_else(Platform::host);
            let entries = doc.manifests.unwrap_or_default();
            let chosen = entries
                .iter()
                .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
                .ok_or_else(|| RegistryError::NoPlatform {
                    reference: label.clone(),
                    platform: want.to_string(),
                    available: entries
                        .iter()
                        .filter_map(|d| d.platform.as_ref().map(Platform::to_string))
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            let child = self.get_manifest(&repo, &chosen.digest.to_string(), Some(&chosen.digest))?;
            if !is_manifest(&child.media_type) {
                return Err(RegistryError::BadManifest {
                    registry: repo.registry.clone(),
                    reference: format!("{label} -> {}", chosen.digest),
                    what: format!(
                        "index entry for {want} is a {}, not an image manifest",
                        child.media_type
                    ),
                });
            }
            (Some(top), child)
        } else {
            (None, top)
        };
        let label = format!("{}@{}", reference.name(), fetched.digest);
        let (doc, _) = parse_manifest(&repo.registry, &label, &fetched.bytes, Some(&fetched.media_type))?;
        let (Some(config), Some(layers)) = (doc.config, doc.layers) else {
            return Err(RegistryError::BadManifest {
                registry: repo.registry.clone(),
                reference: label,
                what: "manifest lacks \"config\" or \"layers\"".into(),
            });
        };
        Ok(ResolvedImage {
            index,
            manifest: fetched,
            label,
            config,
            layers,
        })
    }

    /// Store the manifest (and index) once every blob is in: a stored manifest means
    /// its blobs are there.
    pub(crate) fn finish_pull(
        &self,
        repo: &Repo,
        store: &BlobStore,
        image: ResolvedImage,
        downloaded: Vec<Digest>,
    ) -> Result<Pulled> {
        let ResolvedImage {
            index,
            manifest: fetched,
            label,
            config,
            layers,
        } = image;
        for m in [Some(&fetched), index.as_ref()].into_iter().flatten() {
            store
                .ingest(Some(&m.digest), Some(m.bytes.len() as u64), m.bytes.as_slice())
                .map_err(|source| blob_error(repo, &m.digest, source))?;
            self.record_source(repo, &m.digest);
        }
        let manifest = serde_json::from_slice(&fetched.bytes).map_err(|e| RegistryError::BadManifest {
            registry: repo.registry.clone(),
            reference: label.clone(),
            what: format!("invalid JSON: {e}"),
        })?;
        Ok(Pulled {
            digest: fetched.digest,
            media_type: fetched.media_type,
            manifest,
            index: index.map(|i| i.digest),
            config: config.digest,
            layers: layers.into_iter().map(|l| l.digest).collect(),
            fetched: downloaded,
            endpoint: repo.base_url.clone(),
        })
    }

    /// Download `blobs` with up to `parallel` threads; returns those actually fetched, in
    /// `blobs` order. `tees[i]`, when there, gets blob `i`'s bytes as they arrive.
    /// After the first failure no new blob is started; the first failing blob's error is
    /// returned (those already stored stay: they are verified and reusable).
    pub(crate) fn download_all(
        &self,
        repo: &Repo,
        store: &BlobStore,
        blobs: &[Descriptor],
        progress: Option<&ProgressFn>,
        tees: &[Option<Tee>],
    ) -> Result<Vec<Digest>> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let errors: Mutex<Vec<(usize, RegistryError)>> = Mutex::new(Vec::new());
        let fetched: Mutex<Vec<usize>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..self.parallel.min(blobs.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= blobs.len() || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let tee = tees.get(i).and_then(Option::as_ref);
                    match self.fetch_blob(repo, &blobs[i], store, progress, tee) {
                        Ok(true) => lock(&fetched).push(i),
                        Ok(false) => {}
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            lock(&errors).push((i, e));
                        }
                    }
                });
            }
        });
        let mut errors = errors.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        errors.sort_by_key(|(i, _)| *i);
        if let Some((_, e)) = errors.into_iter().next() {
            return Err(e);
        }
        let mut fetched = fetched.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        fetched.sort_unstable();
        Ok(fetched.into_iter().map(|i| blobs[i].digest.clone()).collect())
    }

    /// Fetch one blob into `store` unless it is there. Returns whether it was downloaded.
    /// Concurrent calls for one digest (from any thread using this client) download once.
    ///
    /// Bytes an interrupted earlier download left in the store are kept: only the rest is
    /// asked for (`Range: bytes=N-`). A registry answering with the whole blob (200) is
    /// read from the start instead, and a resumed blob whose digest turns out wrong is
    /// downloaded once more from scratch (its first part may have been damaged by a crash).
    ///
    /// With a `tee`, the bytes of a download from the start are also passed on as they
    /// arrive, and the tee is told at the end whether they were verified; a blob that is
    /// already stored or is resumed is announced as stored instead.
    pub(crate) fn fetch_blob(
        &self,
        repo: &Repo,
        desc: &Descriptor,
        store: &BlobStore,
        progress: Option<&ProgressFn>,
        tee: Option<&Tee>,
    ) -> Result<bool> {
        let result = self.fetch_blob_to(repo, desc, store, progress, tee);
        if let Some(t) = tee {
            t.finish(result.as_ref().map(|_| ()).map_err(ToString::to_string));
        }
        result
    }

    fn fetch_blob_to(
        &self,
        repo: &Repo,
        desc: &Descriptor,
        store: &BlobStore,
        progress: Option<&ProgressFn>,
        tee: Option<&Tee>,
    ) -> Result<bool> {
        let report = |done: u64, resumed_from: u64, cached: bool| {
            if let Some(cb) = progress {
                cb(&BlobProgress {
                    digest: desc.digest.clone(),
                    media_type: desc.media_type.clone(),
                    done,
                    total: desc.size,
                    resumed_from,
                    cached,
                });
            }
        };
        let present = || {
            store
                .exists(&desc.digest)
                .map_err(|e| blob_error(repo, &desc.digest, e))
        };
        if present()? {
            report(desc.size, 0, true);
            self.record_source(repo, &desc.digest);
            return Ok(false);
        }
        let _claim = self.claim(&desc.digest);
        if present()? {
            report(desc.size, 0, true);
            self.record_source(repo, &desc.digest);
            return Ok(false);
        }
        let store_err = |e| blob_error(repo, &desc.digest, e);
        let mut may_resume = true;
        loop {
            let mut ingest = store.resume_ingest(&desc.digest, Some(desc.size)).map_err(store_err)?;
            if !may_resume {
                ingest.restart().map_err(store_err)?;
            }
            let resumed_from = ingest.offset();
            // Only a download from byte 0 is passed on: the tee's reader cannot rewind.
            let stream = tee.filter(|_| resumed_from == 0 && may_resume);
            if resumed_from < desc.size {
                self.download_rest(repo, desc, &mut ingest, &report, stream)?;
            }
            match ingest.commit() {
                Ok(_) => break,
                Err(StoreError::DigestMismatch { .. }) if resumed_from > 0 => may_resume = false,
                Err(e) => return Err(store_err(e)),
            }
        }
        self.record_source(repo, &desc.digest);
        Ok(true)
    }

    /// GET the bytes of `desc` that `ingest` lacks and append them.
    fn download_rest(
        &self,
        repo: &Repo,
        desc: &Descriptor,
        ingest: &mut PartialIngest<'_>,
        report: &dyn Fn(u64, u64, bool),
        tee: Option<&Tee>,
    ) -> Result<()> {
        let url = repo.url(&format!("blobs/{}", desc.digest));
        let offset = ingest.offset();
        let mut headers = Vec::new();
        if offset > 0 {
            headers.push(("Range", format!("bytes={offset}-")));
        }
        let mut resp = self.send(repo, Access::Pull, "GET", &url, &headers, Payload::Empty)?;
        let status = resp.status().as_u16();
        let resumed = offset > 0 && status == 206 && content_range_start(&resp) == Some(offset);
        if offset > 0 && !resumed && matches!(status, 206 | 416) {
            // A range we did not ask for, or "not satisfiable" (the partial file does not
            // fit the registry's blob): fetch the whole blob instead.
            drop(resp);
            resp = self.send(repo, Access::Pull, "GET", &url, &[], Payload::Empty)?;
        }
        let status = resp.status().as_u16();
        if !(status == 200 || resumed && status == 206) {
            return Err(self.status_error(repo, "GET", &url, resp));
        }
        if !resumed {
            // The registry ignored the range and sends everything: start over.
            ingest.restart().map_err(|e| blob_error(repo, &desc.digest, e))?;
        }
        let from = ingest.offset();
        report(from, from, false);
        let reader = ProgressReader {
            inner: resp.into_body().into_reader(),
            done: from,
            report: &|done| report(done, from, false),
        };
        let mut reader = TeeReader::new(reader, tee.filter(|_| from == 0));
        ingest
            .append(&mut reader)
            .map_err(|e| blob_error(repo, &desc.digest, e))?;
        reader.flush();
        Ok(())
    }
}

/// The first byte position of a `Content-Range: bytes FIRST-LAST/TOTAL` header.
fn content_range_start(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let value = resp.headers().get("content-range")?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

/// Whether `e` is this machine's store failing (not worth trying another endpoint).
fn is_local_failure(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Blob { source, .. } if matches!(**source, StoreError::Io { .. } | StoreError::BlobIo { .. }))
}

pub(crate) fn blob_error(repo: &Repo, digest: &Digest, source: crate::store::StoreError) -> RegistryError {
    RegistryError::Blob {
        registry: repo.registry.clone(),
        repository: repo.name.clone(),
        digest: digest.clone(),
        source: Box::new(source),
    }
}

struct ProgressReader<'a, R> {
    inner: R,
    done: u64,
    report: &'a dyn Fn(u64),
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.done += n as u64;
            (self.report)(self.done);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_matching() {
        let amd64 = Platform::new("linux", "amd64", None);
        let arm64 = Platform::parse("linux/arm64/v8").expect("parse");
        assert!(amd64.matches(&Platform::new("linux", "amd64", None)));
        assert!(!amd64.matches(&Platform::new("linux", "arm64", None)));
        assert!(arm64.matches(&Platform::new("linux", "arm64", None)));
        assert!(!arm64.matches(&Platform::new("linux", "arm64", Some("v9"))));
        assert!(!amd64.matches(&Platform::new("windows", "amd64", None)));
        assert_eq!(arm64.to_string(), "linux/arm64/v8");
        assert_eq!(Platform::parse("linux"), None);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(Platform::host(), amd64);
        }
    }

    #[test]
    fn manifest_media_types() {
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;
        let (_, mt) = parse_manifest("r", "x", m, Some("application/octet-stream")).expect("manifest");
        assert_eq!(mt, OCI_MANIFEST);
        let (_, mt) = parse_manifest("r", "x", m, Some(&format!("{DOCKER_MANIFEST}; charset=utf-8"))).expect("docker");
        assert_eq!(mt, DOCKER_MANIFEST);
        let err = parse_manifest("r", "img:1", br#"{"schemaVersion":1}"#, None).expect_err("schema1");
        assert!(err.to_string().contains("img:1"), "{err}");
        let err = parse_manifest("r", "img:1", br#"{"schemaVersion":2,"mediaType":"x"}"#, None).expect_err("bad");
        assert!(err.to_string().contains("unsupported media type"), "{err}");
    }
}
