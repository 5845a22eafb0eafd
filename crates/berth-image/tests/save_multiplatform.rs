//! `save` of an image index with several platforms stored: the whole index goes into the
//! OCI layout, the store platform alone into manifest.json, and `load` keeps the index.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use berth_image::archive;
use berth_image::digest::Digest;
use berth_image::images::ImageStore;
use berth_image::manifest::{self, Platform};
use berth_image::Reference;
use common::{store_image, tar_of};

fn other_platform() -> Platform {
    let arch = if Platform::host().architecture == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    Platform::parse(&format!("linux/{arch}")).expect("platform")
}

fn files_of(archive_bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut a = tar::Archive::new(archive_bytes);
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = e.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        out.insert(path, data);
    }
    out
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

/// Store an index of the host platform's manifest, another platform's manifest (when
/// `with_other`) and a platform whose manifest is not stored; name it `multi:1`.
fn store_index(store: &ImageStore, with_other: bool) -> (Digest, Digest, Digest) {
    let host = Platform::host();
    let other = other_platform();
    let host_m = store_image(store, &[tar_of(&[("arch", b"host", 0o644)])], serde_json::json!({}));
    let other_m = store_image(
        store,
        &[tar_of(&[("arch", b"other", 0o644)])],
        serde_json::json!({"architecture": other.architecture}),
    );
    let size = |d: &Digest| store.read_document(d).expect("read").len();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": [
            {"mediaType": manifest::OCI_MANIFEST, "digest": host_m.to_string(), "size": size(&host_m),
             "platform": {"os": "linux", "architecture": host.architecture}},
            {"mediaType": manifest::OCI_MANIFEST, "digest": other_m.to_string(), "size": size(&other_m),
             "platform": {"os": "linux", "architecture": other.architecture}},
            {"mediaType": manifest::OCI_MANIFEST, "size": 7,
             "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
             "platform": {"os": "linux", "architecture": "s390x"}},
        ],
    });
    let bytes = serde_json::to_vec(&index).expect("json");
    let idx = store
        .blobs()
        .ingest(None, None, bytes.as_slice())
        .expect("ingest index");
    store
        .set_image(Some(&Reference::parse("multi:1").expect("ref")), &idx)
        .expect("name");
    if !with_other {
        store.blobs().delete(&other_m).expect("drop other platform");
    }
    (idx, host_m, other_m)
}

#[test]
fn saves_the_whole_index_and_load_keeps_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let (idx, host_m, other_m) = store_index(&store, true);
    let host_img = store.resolve("multi:1").expect("resolve");
    let other_layers: Vec<Digest> = {
        let bytes = store.read_document(&other_m).expect("read");
        let m = manifest::parse_manifest(&bytes, None, "other").expect("parse");
        m.layers()
            .iter()
            .chain([m.config()])
            .map(|d| manifest::descriptor_digest(d, "").expect("digest"))
            .collect()
    };

    let mut out = Vec::new();
    archive::save(&store, &["multi:1"], &mut out).expect("save");
    let files = files_of(&out);
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).expect("index.json");
    let entries = index["manifests"].as_array().expect("manifests");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["digest"], idx.to_string());
    assert_eq!(entries[0]["mediaType"], manifest::OCI_INDEX);
    assert_eq!(
        entries[0]["annotations"][manifest::ANNOTATION_IMAGE_NAME],
        "docker.io/library/multi:1"
    );
    for blob in [&idx, &host_m, &other_m].into_iter().chain(&other_layers) {
        assert!(files.contains_key(&blob_name(blob)), "{blob} saved");
    }
    // Docker 25+: manifest.json describes the host platform only.
    let docker: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).expect("manifest.json");
    assert_eq!(docker.as_array().map(Vec::len), Some(1));
    assert_eq!(docker[0]["Config"], blob_name(&host_img.config_digest));
    assert_eq!(docker[0]["RepoTags"], serde_json::json!(["multi:1"]));

    let dir2 = tempfile::tempdir().expect("tempdir");
    let loaded_store = ImageStore::open(dir2.path()).expect("open");
    let loaded = archive::load(&loaded_store, out.as_slice()).expect("load");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].target, idx);
    let records = loaded_store.records().expect("records");
    assert_eq!(
        records["docker.io/library/multi:1"].target, idx,
        "the name keeps the index"
    );
    assert_eq!(
        loaded_store.resolve("multi:1").expect("resolve").manifest_digest,
        host_m
    );
    // The other platform's content is kept, even through garbage collection.
    loaded_store.gc(Duration::ZERO).expect("gc");
    for blob in [&other_m].into_iter().chain(&other_layers) {
        assert!(
            loaded_store.blobs().exists(blob).expect("exists"),
            "{blob} loaded and kept"
        );
    }
    drop(loaded_store);
    let as_other = ImageStore::open_for(dir2.path(), other_platform()).expect("open for other");
    assert_eq!(
        as_other.resolve("multi:1").expect("resolve other").manifest_digest,
        other_m
    );
    as_other
        .prepare_rootfs("multi:1", "c")
        .expect("the other platform is complete");
    as_other.remove_rootfs("c").expect("remove rootfs");
}

#[test]
fn index_with_only_the_host_platform_saves_the_host_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let (idx, host_m, _) = store_index(&store, false);
    let mut out = Vec::new();
    archive::save(&store, &["multi:1"], &mut out).expect("save");
    let files = files_of(&out);
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).expect("index.json");
    assert_eq!(index["manifests"][0]["digest"], host_m.to_string());
    assert!(
        !files.contains_key(&blob_name(&idx)),
        "no index without another platform"
    );

    let dir2 = tempfile::tempdir().expect("tempdir");
    let loaded_store = ImageStore::open(dir2.path()).expect("open");
    let loaded = archive::load(&loaded_store, out.as_slice()).expect("load");
    assert_eq!(loaded[0].target, host_m);
}
