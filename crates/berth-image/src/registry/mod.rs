//! A client for OCI distribution-spec registries (Docker Hub, the CNCF distribution
//! registry, ...): pull an image's manifest, config and layers into a
//! [`BlobStore`](crate::store::BlobStore), and push them from one.
//!
//! Uses [`digest`](crate::digest), [`reference`](crate::reference) and
//! [`store`](crate::store); nothing else in the crate uses it.
//!
//! - [`client`]: [`Client`] and its builder, and the authenticated request loop.
//! - `tls`: the connections' TLS: system roots plus per-registry CAs and client
//!   certificates from `/etc/docker/certs.d/<host>/`; no verification for insecure
//!   registries.
//! - [`endpoint`]: where a registry is reached, from `daemon.json`'s `registry-mirrors`
//!   (Docker Hub pulls try them first) and `insecure-registries` (unverified HTTPS, then
//!   plain HTTP; loopback always); Docker Hub is `registry-1.docker.io`.
//! - [`auth`]: credentials (`~/.docker/config.json`), `WWW-Authenticate` challenges,
//!   bearer tokens cached per scope.
//! - [`credentials`]: `docker-credential-*` helpers (`credsStore`, `credHelpers`),
//!   [`login`] and [`logout`] writing `config.json` or the helper.
//! - [`pull`]: manifests (by tag or verified digest, index → platform), blobs streamed
//!   into the store in parallel with progress, each digest fetched once at a time, an
//!   interrupted blob resumed where it stopped (`Range`).
//! - [`push`]: blobs (skip existing, cross-repository mount, monolithic or chunked
//!   upload) and manifests.
//!
//! HTTP is `ureq` (blocking, rustls); it is called from worker threads, never from an
//! async runtime's executor threads.

pub mod auth;
pub mod client;
pub mod credentials;
pub mod endpoint;
pub mod error;
mod pipeline;
pub mod pull;
pub mod push;
mod tls;

pub use auth::{Credentials, DockerConfig};
pub use client::{Client, ClientBuilder};
pub use credentials::{login, logout, CredentialHelper};
pub use endpoint::{Endpoint, RegistryConfig, Security};
pub use error::{RegistryError, Result};
pub use pipeline::PulledUnpacked;
pub use pull::{BlobProgress, Platform, PullOptions, Pulled};
pub use push::{PushOptions, PushReport};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-platform), schema 2.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest the client accepts (as containerd and Docker do).
pub const MANIFEST_SIZE_LIMIT: u64 = 4 * 1024 * 1024;

pub(crate) fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

pub(crate) fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}
