//! Berth's image library.
//!
//! Modules, each depending only on those listed before it (never the other way):
//!
//! - [`digest`]: `algo:hex` content digests (sha256, sha512), a streaming hasher and a
//!   hashing reader. Depends on nothing else in the crate.
//! - [`timefmt`]: RFC 3339 timestamps. Depends on nothing else in the crate.
//! - [`overlay`]: overlayfs layer directories read directly: container changes, upper
//!   dir → Docker layer tar, merged export tar. Depends on nothing else in the crate.
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
//! - `reach` (internal): the blobs and snapshots an image target reaches. Uses `digest`,
//!   `store`, `manifest`, `snapshots`.
//! - [`images`]: the image store (`ImageStore`) owning the blob store, snapshots and a
//!   redb database of image names and container rootfs records; resolution, tag/remove
//!   with reachability-based cleanup (refused while a container uses the image unless
//!   forced), `prepare_rootfs`. Uses all of the above.
//! - [`containers`], [`history`], [`prune`]: `ImageStore` methods for a container's
//!   diff/commit/export, image history, and prune + garbage collection. Use all of the
//!   above (none of them uses another of the three).
//! - [`archive`]: `import` of rootfs tarballs, `save`/`load` of OCI-layout +
//!   docker-archive tar streams. Uses all of the above.
//! - [`registry`]: the OCI distribution-spec client: endpoints, TLS with per-registry CAs
//!   and client certificates from `certs.d`, anonymous/basic/bearer auth, credentials from
//!   `~/.docker/config.json` (`auths`, `credsStore`/`credHelpers` helpers, identity
//!   tokens) and `login`/`logout` writing there, pull into the blob store (parallel, one
//!   download per digest, platform choice, resumable, Docker Hub mirrors, insecure
//!   registries), pull with layers unpacked while they download, push (skip existing,
//!   cross-repo mount, chunked). Uses `digest`, `reference`, `store`, `unpack`, `snapshots`.

pub mod archive;
pub mod containers;
pub mod digest;
pub mod history;
pub mod images;
pub mod manifest;
pub mod overlay;
pub mod prune;
mod reach;
pub mod reference;
pub mod registry;
pub mod snapshots;
pub mod store;
pub mod timefmt;
pub mod unpack;

pub use digest::{Algorithm, Digest, DigestError};
pub use reference::{Reference, ReferenceError};
