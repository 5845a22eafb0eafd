//! The fuzz targets' bodies, shared (via `#[path]`) by the libFuzzer binaries in
//! `fuzz/fuzz_targets/` and by the corpus replay test `crates/berth-image/tests/fuzz_corpus.rs`,
//! so the normal test run exercises exactly what was fuzzed without building libFuzzer.
//! Each function must never panic: every error berth-image reports is fine.

#![allow(dead_code)]

use std::path::PathBuf;

use berth_image::images::ImageStore;
use berth_image::manifest::{self, Document, Platform};
use berth_image::unpack::{unpack_layer, Compression};
use berth_image::{archive, Digest, Reference};

/// Where per-input scratch directories go: tmpfs when there is one, for speed.
fn scratch_parent() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-fuzz-")
        .tempdir_in(scratch_parent())
        .expect("create scratch directory")
}

/// Remove a scratch directory, insisting nothing is left behind.
fn remove(dir: tempfile::TempDir) {
    let path = dir.path().to_path_buf();
    dir.close().unwrap_or_else(|e| panic!("removing {path:?}: {e}"));
}

/// Every manifest-module parse entry point, plus reference/digest/platform parsing of the
/// input's longest UTF-8 prefix.
pub fn manifest(data: &[u8]) {
    let media_types = [
        None,
        Some(manifest::OCI_MANIFEST),
        Some(manifest::OCI_INDEX),
        Some(manifest::DOCKER_MANIFEST),
        Some(manifest::DOCKER_MANIFEST_LIST),
        Some(manifest::DOCKER_SCHEMA1),
        Some("application/octet-stream"),
    ];
    for mt in media_types {
        match manifest::parse(data, mt, "fuzz") {
            Ok(Document::Index(index)) => {
                for d in index.manifests() {
                    let _ = manifest::descriptor_digest(d, "fuzz");
                }
                let _ = manifest::select_manifest(&index, &Platform::host(), "fuzz");
                let any = Platform {
                    os: "linux".into(),
                    architecture: "arm".into(),
                    variant: Some("v7".into()),
                    os_version: None,
                };
                let _ = manifest::select_manifest(&index, &any, "fuzz");
            }
            Ok(Document::Manifest(m)) => {
                let _ = manifest::descriptor_digest(m.config(), "fuzz");
                for l in m.layers() {
                    let _ = manifest::descriptor_digest(l, "fuzz");
                    let _ = Compression::from_media_type(l.media_type().as_ref());
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        let _ = manifest::parse_manifest(data, mt, "fuzz");
    }
    if let Ok(config) = manifest::parse_config(data, "fuzz") {
        let ids = manifest::diff_ids(&config, "fuzz").expect("parse_config validated the diffIDs");
        assert_eq!(ids.len(), config.rootfs().diff_ids().len());
    }

    let text = match std::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).expect("valid prefix"),
    };
    for s in [text, text.lines().next().unwrap_or("")] {
        if let Ok(r) = Reference::parse(s) {
            // A reference's canonical form must parse back to the same reference.
            let again = Reference::parse(&r.to_string()).expect("canonical reference re-parses");
            assert_eq!(again, r);
            let _ = (r.domain(), r.path(), r.tag(), r.digest(), r.name(), r.familiar());
        }
        if let Ok(d) = Digest::parse(s) {
            assert_eq!(Digest::parse(&d.to_string()).expect("digest re-parses"), d);
        }
        if let Some(p) = Platform::parse(s) {
            let _ = p.matches(&Platform::host());
        }
    }
}

/// The bytes as one layer stream (compression detected from magic bytes: plain, gzip or
/// zstd), unpacked into a fresh directory that is removed afterwards.
pub fn unpack(data: &[u8]) {
    let dir = scratch();
    let target = dir.path().join("layer");
    match unpack_layer(data, None, &target) {
        Ok(unpacked) => {
            assert!(target.is_dir(), "successful unpack left no {target:?}");
            let _ = unpacked.diff_id.to_string();
        }
        Err(e) => {
            let _ = e.to_string();
            // A failed unpack must leave nothing at the target or beside it.
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .expect("read scratch directory")
                .map(|e| e.expect("scratch entry").file_name())
                .collect();
            assert!(left.is_empty(), "failed unpack ({e}) left {left:?}");
        }
    }
    // Also through the media-type path: the declared compression must agree with the magic.
    let declared = match Compression::from_magic(data) {
        Compression::None => manifest::OCI_LAYER_TAR,
        Compression::Gzip => manifest::OCI_LAYER_GZIP,
        Compression::Zstd => manifest::OCI_LAYER_ZSTD,
    };
    let target = dir.path().join("typed");
    let _ = unpack_layer(data, Some(declared), &target);
    remove(dir);
}

/// The bytes as a `docker load` stream (OCI layout or Docker archive), then as a
/// `docker import` rootfs tarball, each into a fresh image store.
pub fn archive_load(data: &[u8]) {
    let dir = scratch();
    let store = ImageStore::open(dir.path().join("store")).expect("open image store");
    if let Err(e) = archive::load(&store, data) {
        let _ = e.to_string();
    }
    if let Err(e) = archive::import(&store, data, None) {
        let _ = e.to_string();
    }
    drop(store);
    remove(dir);
}
