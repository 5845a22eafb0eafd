//! Pulling: manifests (by tag, or by digest and verified), platform selection from an
//! index, and blobs streamed straight into the [`BlobStore`], several at once.

use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::auth::lock;
use super::client::{read_limited, transport_error, Access, Client, Payload, Repo};
use super::error::{RegistryError, Result};
use super::{
    is_index, is_manifest, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MANIFEST_SIZE_LIMIT, OCI_INDEX, OCI_MANIFEST,
};
use crate::digest::{Algorithm, Digest};
use crate::reference::Reference;
use crate::store::BlobStore;

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
    /// Bytes received so far (`total` when `cached`).
    pub done: u64,
    pub total: u64,
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
    pub fn fetch_manifest(&self, reference: &Reference) -> Result<FetchedManifest> {
        let repo = self.repo(reference.domain(), reference.path());
        let target = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => crate::reference::DEFAULT_TAG.to_string(),
        };
        self.get_manifest(&repo, &target, reference.digest())
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
    pub fn pull(&self, reference: &Reference, store: &BlobStore, options: &PullOptions) -> Result<Pulled> {
        let repo = self.repo(reference.domain(), reference.path());
        let top = self.fetch_manifest(reference)?;
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
        let mut blobs = vec![config.clone()];
        for l in &layers {
            if !blobs.iter().any(|b| b.digest == l.digest) {
                blobs.push(l.clone());
            }
        }
        let downloaded = self.download_all(&repo, store, &blobs, options.progress.as_deref())?;
        for m in [Some(&fetched), index.as_ref()].into_iter().flatten() {
            store
                .ingest(Some(&m.digest), Some(m.bytes.len() as u64), m.bytes.as_slice())
                .map_err(|source| blob_error(&repo, &m.digest, source))?;
            self.record_source(&repo, &m.digest);
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
        })
    }

    /// Download `blobs` with up to `parallel` threads; returns those actually fetched, in
    /// `blobs` order.
    /// After the first failure no new blob is started; the first failing blob's error is
    /// returned (those already stored stay: they are verified and reusable).
    fn download_all(
        &self,
        repo: &Repo,
        store: &BlobStore,
        blobs: &[Descriptor],
        progress: Option<&ProgressFn>,
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
                    match self.fetch_blob(repo, &blobs[i], store, progress) {
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
    pub(crate) fn fetch_blob(
        &self,
        repo: &Repo,
        desc: &Descriptor,
        store: &BlobStore,
        progress: Option<&ProgressFn>,
    ) -> Result<bool> {
        let report = |done: u64, cached: bool| {
            if let Some(cb) = progress {
                cb(&BlobProgress {
                    digest: desc.digest.clone(),
                    media_type: desc.media_type.clone(),
                    done,
                    total: desc.size,
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
            report(desc.size, true);
            self.record_source(repo, &desc.digest);
            return Ok(false);
        }
        let _claim = self.claim(&desc.digest);
        if present()? {
            report(desc.size, true);
            self.record_source(repo, &desc.digest);
            return Ok(false);
        }
        let url = repo.url(&format!("blobs/{}", desc.digest));
        let resp = self.send(repo, Access::Pull, "GET", &url, &[], Payload::Empty)?;
        if resp.status().as_u16() != 200 {
            return Err(self.status_error(repo, "GET", &url, resp));
        }
        report(0, false);
        let reader = ProgressReader {
            inner: resp.into_body().into_reader(),
            done: 0,
            report: &report,
        };
        store
            .ingest(Some(&desc.digest), Some(desc.size), reader)
            .map_err(|e| blob_error(repo, &desc.digest, e))?;
        self.record_source(repo, &desc.digest);
        Ok(true)
    }
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
    report: &'a dyn Fn(u64, bool),
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.done += n as u64;
            (self.report)(self.done, false);
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
