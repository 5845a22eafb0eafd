//! Berth's image library.
//!
//! Modules, each depending only on those listed before it (never the other way):
//!
//! - [`digest`]: `algo:hex` content digests (sha256, sha512), a streaming hasher and a
//!   hashing reader. Depends on nothing else in the crate.
//! - [`reference`]: Docker-compatible image reference parsing and normalisation
//!   (`busybox` is `docker.io/library/busybox:latest`). Uses `digest`.
//! - [`store`]: the content-addressed blob store (`<root>/blobs/<algo>/<hex>`), with
//!   verified, atomic, crash-safe ingest. Uses `digest`.
//! - [`unpack`]: applies one layer tar stream (plain, gzip or zstd) to a new directory as
//!   an overlayfs-ready snapshot, safely (no entry can land outside it), and returns the
//!   layer's diffID. Uses `digest`.
//! - [`snapshots`]: chainIDs, the record of complete layer snapshots (kept in a redb
//!   database) and overlay `lowerdir=` strings. Uses `digest` and `unpack`.
//! - [`manifest`]: OCI and Docker schema2 manifests, indexes / manifest lists and image
//!   configs (size-limited, validated; schema1 refused), media types, platform matching.
//!   Uses `digest`.
//! - [`images`]: the image store (`ImageStore`) owning the blob store, snapshots and a
//!   redb database of image names and container rootfs records; resolution, tag/remove
//!   with reachability-based cleanup, `prepare_rootfs`. Uses all of the above.
//! - [`archive`]: `import` of rootfs tarballs, `save`/`load` of OCI-layout +
//!   docker-archive tar streams. Uses all of the above.
//! - [`registry`]: the OCI distribution-spec client: endpoints, TLS with per-registry CAs
//!   and client certificates from `certs.d`, anonymous/basic/bearer auth, credentials from
//!   `~/.docker/config.json` (`auths`, `credsStore`/`credHelpers` helpers, identity
//!   tokens) and `login`/`logout` writing there, pull into the blob store (parallel, one
//!   download per digest, platform choice), push (skip existing, cross-repo mount, chunked).
//!   Uses `digest`, `reference` and `store`.

pub mod archive;
pub mod digest;
pub mod images;
pub mod manifest;
pub mod reference;
pub mod registry;
pub mod snapshots;
pub mod store;
pub mod unpack;

pub use digest::{Algorithm, Digest, DigestError};
pub use reference::{Reference, ReferenceError};
