//! Image manifests, indexes (OCI and Docker schema2 manifest lists) and image configs:
//! media types, size-limited parsing with validation, and platform matching.
//!
//! OCI and Docker schema2 documents share one JSON shape and differ only in media types,
//! so both are parsed into `oci-spec` types. Docker schema1 is refused with a clear error.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use crate::digest::{Digest, DigestError};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Annotation naming an image in an OCI layout (a tag, or a full reference).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd and Docker 25+ use for the full image name in an OCI layout.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// Largest manifest, index or config accepted (the same limit registries use).
pub const MAX_DOCUMENT_SIZE: u64 = 4 * 1024 * 1024;

/// Media types this crate can unpack as layers.
pub const LAYER_MEDIA_TYPES: [&str; 7] = [
    OCI_LAYER_TAR,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    DOCKER_LAYER_GZIP,
    DOCKER_LAYER_TAR,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{what} {object} is {size} bytes, over the {MAX_DOCUMENT_SIZE}-byte limit")]
    TooLarge {
        what: &'static str,
        object: String,
        size: u64,
    },
    #[error("{what} {object} is not valid JSON of that kind: {source}")]
    Json {
        what: &'static str,
        object: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("manifest {object}: Docker schema1 manifests ({media_type}) are unsupported; push the image again with a current client")]
    Schema1 { object: String, media_type: String },
    #[error("{object}: unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType { object: String, media_type: String },
    #[error("{object}: {problem}")]
    Invalid { object: String, problem: String },
    #[error("{object}: bad digest: {source}")]
    Digest {
        object: String,
        #[source]
        source: DigestError,
    },
    #[error("index {object} has no manifest for platform {wanted}; it offers: {offered}")]
    NoMatchingPlatform {
        object: String,
        wanted: String,
        offered: String,
    },
}

pub type Result<T> = std::result::Result<T, ManifestError>;

/// A parsed manifest document: a single-image manifest or an index / manifest list.
#[derive(Debug, Clone)]
pub enum Document {
    Manifest(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

fn check_size(what: &'static str, object: &str, len: usize) -> Result<()> {
    if len as u64 > MAX_DOCUMENT_SIZE {
        return Err(ManifestError::TooLarge {
            what,
            object: object.to_string(),
            size: len as u64,
        });
    }
    Ok(())
}

fn json_err<'a>(what: &'static str, object: &'a str) -> impl FnOnce(serde_json::Error) -> ManifestError + 'a {
    move |source| ManifestError::Json {
        what,
        object: object.to_string(),
        source,
    }
}

fn invalid(object: &str, problem: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        object: object.to_string(),
        problem: problem.into(),
    }
}

/// The fields used to tell document kinds apart before full parsing.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
    layers: Option<serde_json::Value>,
    fs_layers: Option<serde_json::Value>,
}

/// Parse and validate a manifest or index. `object` names it in errors (e.g. its digest);
/// `media_type` is what the transport said it is (a registry's Content-Type, a
/// descriptor's mediaType), used when the document itself does not say.
pub fn parse(bytes: &[u8], media_type: Option<&str>, object: &str) -> Result<Document> {
    check_size("manifest", object, bytes.len())?;
    let probe: Probe = serde_json::from_slice(bytes).map_err(json_err("manifest", object))?;
    let declared = probe.media_type.as_deref().or(media_type);
    if probe.schema_version == Some(1)
        || probe.fs_layers.is_some()
        || matches!(declared, Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED))
    {
        return Err(ManifestError::Schema1 {
            object: object.to_string(),
            media_type: declared.unwrap_or(DOCKER_SCHEMA1).to_string(),
        });
    }
    if probe.schema_version != Some(2) {
        return Err(invalid(
            object,
            format!("schemaVersion is {:?}, expected 2", probe.schema_version),
        ));
    }
    let is_index = match declared {
        Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        // Unlabelled OCI documents (the spec allows omitting mediaType): go by shape.
        None if probe.manifests.is_some() && probe.layers.is_none() => true,
        None if probe.layers.is_some() => false,
        other => {
            return Err(ManifestError::UnsupportedMediaType {
                object: object.to_string(),
                media_type: other.unwrap_or("<none>").to_string(),
            })
        }
    };
    if is_index {
        let index: ImageIndex = serde_json::from_slice(bytes).map_err(json_err("index", object))?;
        for d in index.manifests() {
            descriptor_digest(d, object)?;
        }
        Ok(Document::Index(Box::new(index)))
    } else {
        let manifest: ImageManifest = serde_json::from_slice(bytes).map_err(json_err("manifest", object))?;
        validate_manifest(&manifest, object)?;
        Ok(Document::Manifest(Box::new(manifest)))
    }
}

/// Parse a document that must be a single-image manifest.
pub fn parse_manifest(bytes: &[u8], media_type: Option<&str>, object: &str) -> Result<ImageManifest> {
    match parse(bytes, media_type, object)? {
        Document::Manifest(m) => Ok(*m),
        Document::Index(_) => Err(invalid(object, "is an index, expected an image manifest")),
    }
}

fn validate_manifest(m: &ImageManifest, object: &str) -> Result<()> {
    let config_type = m.config().media_type().to_string();
    if config_type != OCI_CONFIG && config_type != DOCKER_CONFIG {
        return Err(invalid(
            object,
            format!("config media type {config_type:?} is not a container image config"),
        ));
    }
    descriptor_digest(m.config(), object)?;
    for layer in m.layers() {
        let mt = layer.media_type().to_string();
        if !LAYER_MEDIA_TYPES.contains(&mt.as_str()) {
            return Err(invalid(
                object,
                format!("layer {} has unsupported media type {mt:?}", layer.digest()),
            ));
        }
        descriptor_digest(layer, object)?;
    }
    Ok(())
}

/// A descriptor's digest as this crate's [`Digest`] (sha256/sha512 only).
pub fn descriptor_digest(d: &Descriptor, object: &str) -> Result<Digest> {
    Digest::parse(d.digest().as_ref()).map_err(|source| ManifestError::Digest {
        object: object.to_string(),
        source,
    })
}

/// Parse an image config and check it describes layers (`rootfs.type` = `layers`, valid
/// diffIDs). Unknown Docker-specific fields are ignored.
pub fn parse_config(bytes: &[u8], object: &str) -> Result<ImageConfiguration> {
    check_size("image config", object, bytes.len())?;
    let config: ImageConfiguration = serde_json::from_slice(bytes).map_err(json_err("image config", object))?;
    if config.rootfs().typ() != "layers" {
        return Err(invalid(
            object,
            format!("rootfs.type is {:?}, expected \"layers\"", config.rootfs().typ()),
        ));
    }
    diff_ids(&config, object)?;
    Ok(config)
}

/// The config's layer diffIDs, bottom first.
pub fn diff_ids(config: &ImageConfiguration, object: &str) -> Result<Vec<Digest>> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| {
            Digest::parse(d).map_err(|source| ManifestError::Digest {
                object: object.to_string(),
                source,
            })
        })
        .collect()
}

/// A platform as `os/architecture[/variant]`, with an optional `os.version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub os_version: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// The platform this process runs on, in Go's GOOS/GOARCH names (linux/amd64 when
    /// the architecture has no known mapping).
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            _ => ("amd64", None),
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(String::from),
            os_version: None,
        }
    }

    /// Parse `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let architecture = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next().map(String::from);
        if parts.next().is_some() {
            return None;
        }
        Some(Platform {
            os: os.into(),
            architecture: architecture.into(),
            variant,
            os_version: None,
        })
    }

    fn from_oci(p: &oci_spec::image::Platform) -> Self {
        Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
            os_version: p.os_version().clone(),
        }
    }

    /// Normalised variant: arm64 without a variant is v8; for other architectures the
    /// variant is compared as given.
    fn norm_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None) => Some("v8"),
            (_, v) => v,
        }
    }

    /// Whether an image built for `candidate` runs here. A wanted variant must match
    /// exactly; when no variant is wanted any is accepted. A wanted `os.version` must be a
    /// prefix of the candidate's (Windows build matching); otherwise it is ignored.
    pub fn matches(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return false;
        }
        if self.variant.is_some() && self.norm_variant() != candidate.norm_variant() {
            return false;
        }
        match (&self.os_version, &candidate.os_version) {
            (Some(want), Some(have)) => have.starts_with(want.as_str()),
            _ => true,
        }
    }
}

/// Choose the manifest for `wanted` from an index. Entries that are not image manifests
/// (nested indexes, attestations with platform `unknown/unknown`) are skipped; among
/// matches, an exact variant match wins, then the first in index order.
pub fn select_manifest<'a>(index: &'a ImageIndex, wanted: &Platform, object: &str) -> Result<&'a Descriptor> {
    let mut best: Option<(&Descriptor, bool)> = None;
    for d in index.manifests() {
        let mt = d.media_type().to_string();
        if mt != OCI_MANIFEST && mt != DOCKER_MANIFEST {
            continue;
        }
        let Some(p) = d.platform().as_ref().map(Platform::from_oci) else {
            continue;
        };
        if !wanted.matches(&p) {
            continue;
        }
        let exact = wanted.norm_variant() == p.norm_variant();
        match best {
            Some((_, true)) => {}
            Some((_, false)) if !exact => {}
            _ => best = Some((d, exact)),
        }
    }
    best.map(|(d, _)| d).ok_or_else(|| {
        let offered: Vec<String> = index
            .manifests()
            .iter()
            .filter_map(|d| d.platform().as_ref().map(|p| Platform::from_oci(p).to_string()))
            .collect();
        ManifestError::NoMatchingPlatform {
            object: object.to_string(),
            wanted: wanted.to_string(),
            offered: if offered.is_empty() {
                "nothing".into()
            } else {
                offered.join(", ")
            },
        }
    })
}
