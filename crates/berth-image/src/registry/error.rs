//! Errors of the registry client. Every variant names the registry, repository, digest
//! or URL it is about, so a message read alone says what failed where.

use std::path::PathBuf;

use crate::digest::Digest;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{method} {url}: {source}")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("{method} {url}: timed out ({what})")]
    Timeout { method: String, url: String, what: String },
    #[error("registry {registry}: {method} {url} returned HTTP {status}{detail}")]
    Status {
        registry: String,
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("registry {registry} denied {action} access to repository {repository} (HTTP {status}){detail}")]
    Denied {
        registry: String,
        repository: String,
        action: String,
        status: u16,
        detail: String,
    },
    #[error("registry {registry}: getting a token from {realm} failed: {reason}")]
    Token {
        registry: String,
        realm: String,
        reason: String,
    },
    #[error("registry {registry}: unsupported authentication challenge {challenge:?}")]
    Challenge { registry: String, challenge: String },
    #[error("registry {registry}: manifest {reference} is larger than {limit} bytes")]
    ManifestTooLarge {
        registry: String,
        reference: String,
        limit: u64,
    },
    #[error("registry {registry}: manifest {reference} has digest {actual}, expected {expected}")]
    ManifestDigest {
        registry: String,
        reference: String,
        expected: String,
        actual: Digest,
    },
    #[error("registry {registry}: manifest {reference}: {what}")]
    BadManifest {
        registry: String,
        reference: String,
        what: String,
    },
    #[error("image index {reference} has no manifest for platform {platform} (it has: {available})")]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("registry {registry}, repository {repository}: blob {digest}: {source}")]
    Blob {
        registry: String,
        repository: String,
        digest: Digest,
        #[source]
        source: Box<StoreError>,
    },
    #[error("registry {registry}, repository {repository}: reading blob {digest} to upload: {source}")]
    UploadRead {
        registry: String,
        repository: String,
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error("registry {registry}: response to {url} has no usable Location header ({location:?})")]
    BadLocation {
        registry: String,
        url: String,
        location: Option<String>,
    },
    #[error("registry {registry}: credential helper {helper} {action}: {reason}")]
    CredentialHelper {
        helper: String,
        action: String,
        registry: String,
        reason: String,
    },
    #[error("registry {registry}: login as {username} failed: {reason}")]
    Login {
        registry: String,
        username: String,
        reason: String,
    },
    #[error("registry {registry}: certificates directory {path}: {reason}")]
    Certs {
        registry: String,
        path: PathBuf,
        reason: String,
    },
    #[error("registry {registry}: TLS connection to {url} failed: {source}")]
    Tls {
        registry: String,
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("docker config {path}: {reason}")]
    DockerConfig { path: PathBuf, reason: String },
}

pub type Result<T> = std::result::Result<T, RegistryError>;
