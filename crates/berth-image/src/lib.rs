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

pub mod digest;
pub mod reference;
pub mod snapshots;
pub mod store;
pub mod unpack;

pub use digest::{Algorithm, Digest, DigestError};
pub use reference::{Reference, ReferenceError};
