//! Errors of the registry client. Every variant names the registry, repository, digest
//! or URL it is about, so a message read alone says what failed where.

use std::io::Read;
use std::path::PathBuf;

/// How much of an error response body is read for its message.
const ERROR_BODY_LIMIT: u64 = 8 * 1024;

use ureq::http::Response;
use ureq::Body;

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
    #[error("registry {registry}, repository {repository}: unpacking layer {layer}: {source}")]
    Unpack {
        registry: String,
        repository: String,
        layer: Digest,
        #[source]
        source: Box<crate::snapshots::SnapshotError>,
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
    #[error("registry {registry}: TLS connection to {url} failed: {source}{hint}")]
    Tls {
        registry: String,
        url: String,
        #[source]
        source: Box<ureq::Error>,
        /// Why the peer may not speak TLS at all, or empty.
        hint: String,
    },
    #[error("registry configuration: {setting} entry {value:?} {reason}")]
    Config {
        setting: &'static str,
        value: String,
        reason: String,
    },
    #[error("{source} (after the mirrors of {registry} failed: {mirrors})")]
    Mirrors {
        registry: String,
        /// Each mirror's base URL and error.
        mirrors: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("docker config {path}: {reason}")]
    DockerConfig { path: PathBuf, reason: String },
}

pub type Result<T> = std::result::Result<T, RegistryError>;

pub(crate) fn transport_error(method: &str, url: &str, source: ureq::Error) -> RegistryError {
    let timed_out = match &source {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(e) => e.kind() == std::io::ErrorKind::TimedOut,
        _ => false,
    };
    let tls = url.starts_with("https://")
        && match &source {
            ureq::Error::Rustls(_) | ureq::Error::Tls(_) => true,
            ureq::Error::Io(e) => e.kind() == std::io::ErrorKind::InvalidData,
            _ => false,
        };
    if tls {
        let host = url
            .split_once("://")
            .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(rest));
        // rustls meeting an HTTP answer (or other non-TLS bytes) reports corrupt records.
        let text = source.to_string();
        let hint = if text.contains("InvalidContentType") || text.contains("corrupt message") {
            "; the server does not seem to speak TLS: plain HTTP is used only for insecure \
             registries (loopback, or listed in insecure-registries)"
        } else {
            ""
        };
        RegistryError::Tls {
            registry: host.to_string(),
            url: url.to_string(),
            source: Box::new(source),
            hint: hint.to_string(),
        }
    } else if timed_out {
        RegistryError::Timeout {
            method: method.to_string(),
            url: url.to_string(),
            what: source.to_string(),
        }
    } else {
        RegistryError::Transport {
            method: method.to_string(),
            url: url.to_string(),
            source: Box::new(source),
        }
    }
}

/// Read at most `limit` bytes of a body; more is an error.
pub(crate) fn read_limited(resp: Response<Body>, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    resp.into_body().into_reader().take(limit + 1).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(std::io::Error::other(format!("body is larger than {limit} bytes")));
    }
    Ok(out)
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// `": CODE message; ..."` from an OCI error body, or a short excerpt of any other body.
pub(crate) fn error_detail(resp: Response<Body>) -> String {
    let mut buf = Vec::new();
    if resp
        .into_body()
        .into_reader()
        .take(ERROR_BODY_LIMIT)
        .read_to_end(&mut buf)
        .is_err()
    {
        return String::new();
    }
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(&buf) {
        if !body.errors.is_empty() {
            let parts: Vec<String> = body
                .errors
                .iter()
                .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
                .collect();
            return format!(": {}", parts.join("; "));
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {}", text.chars().take(200).collect::<String>())
    }
}
