//! `import`, `save` and `load`: a busybox rootfs imported and mounted as an overlay, save →
//! load round trips, tampered and legacy archives.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use berth_image::archive::{self, ArchiveError};
use berth_image::digest::{Algorithm, Digest};
use berth_image::images::ImageStore;
use berth_image::manifest;
use berth_image::Reference;
use common::{busybox_rootfs, gzip, tar_of};

fn reference(s: &str) -> Reference {
    Reference::parse(s).expect("reference")
}

/// Every regular file of a tar, by path.
fn tar_files(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut a = tar::Archive::new(data);
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = e.path().expect("path").to_string_lossy().into_owned();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf).expect("read");
        out.insert(path, buf);
    }
    out
}

fn tar_from(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, path, data.as_slice()).expect("append");
    }
    b.into_inner().expect("finish")
}

#[test]
fn import_busybox_and_mount_overlay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let rootfs = busybox_rootfs();
    let imported = archive::import(
        &store,
        gzip(&rootfs).as_slice(),
        Some(&reference("berth-test/busybox:imported")),
    )
    .expect("import");
    assert_eq!(imported.diff_id, Digest::of_bytes(Algorithm::Sha256, &rootfs));

    let img = store.resolve("berth-test/busybox:imported").expect("resolve");
    assert_eq!(img.manifest_digest, imported.manifest_digest);
    assert_eq!(img.config_digest, imported.config_digest);
    assert_eq!(img.diff_ids, vec![imported.diff_id.clone()]);
    assert_eq!(img.config.os().to_string(), "linux");
    assert_eq!(
        img.config.architecture().to_string(),
        manifest::Platform::host().architecture
    );
    let history = img.config.history().clone().expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(
        img.manifest.layers()[0].media_type().to_string(),
        manifest::OCI_LAYER_GZIP
    );
    let mut head = [0u8; 2];
    store
        .blobs()
        .open_blob(&imported.layer_digest)
        .expect("layer blob")
        .read_exact(&mut head)
        .expect("read");
    assert_eq!(head, [0x1f, 0x8b], "stored layer is gzip");

    let mount = store
        .prepare_rootfs("berth-test/busybox:imported", "bb1")
        .expect("prepare");
    let target = dir.path().join("mnt");
    std::fs::create_dir(&target).expect("mkdir");
    // A private mount namespace: the overlay disappears with the `unshare` process.
    let script = format!(
        "mount -t overlay overlay -o '{opts}' '{t}' && '{t}/bin/busybox' true && '{t}/bin/sh' -c 'echo written > /dev/null' \
         && echo hello > '{t}/new-file' && test -x '{t}/bin/busybox'",
        opts = mount.options(),
        t = target.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    assert!(
        out.status.success(),
        "overlay mount failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(mount.upperdir.join("new-file")).expect("upper"),
        "hello\n"
    );
    let lower = store.snapshots().path(&img.diff_ids[0]);
    assert!(lower.join("bin/busybox").is_file());
    assert!(
        !lower.join("new-file").exists(),
        "writes must not reach the image layer"
    );
    assert!(
        !target.join("bin").exists(),
        "the mount stayed in the private namespace"
    );
    store.remove_rootfs("bb1").expect("remove rootfs");
}

fn imported_store(dir: &Path, name: &str) -> (ImageStore, archive::Imported) {
    let store = ImageStore::open(dir).expect("open");
    let imported = archive::import(&store, busybox_rootfs().as_slice(), Some(&reference(name))).expect("import");
    (store, imported)
}

#[test]
fn save_then_load_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, imported) = imported_store(&dir.path().join("a"), "berth-test/busybox:rt");
    store
        .tag("berth-test/busybox:rt", "localhost:5000/other:2")
        .expect("tag");
    let mut saved = Vec::new();
    archive::save(&store, &["berth-test/busybox:rt", "localhost:5000/other:2"], &mut saved).expect("save");

    let files = tar_files(&saved);
    assert!(files.contains_key("oci-layout") && files.contains_key("index.json"));
    let docker: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).expect("manifest.json");
    assert_eq!(
        docker[0]["RepoTags"],
        serde_json::json!(["berth-test/busybox:rt", "localhost:5000/other:2"])
    );
    assert_eq!(
        docker[0]["Config"],
        format!("blobs/sha256/{}", imported.config_digest.hex())
    );
    assert_eq!(
        docker[0]["Layers"][0],
        format!("blobs/sha256/{}", imported.layer_digest.hex())
    );
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).expect("index.json");
    assert_eq!(
        index["manifests"][0]["annotations"][manifest::ANNOTATION_REF_NAME],
        "rt"
    );
    for blob in [
        &imported.manifest_digest,
        &imported.config_digest,
        &imported.layer_digest,
    ] {
        let data = &files[&format!("blobs/sha256/{}", blob.hex())];
        assert_eq!(&Digest::of_bytes(Algorithm::Sha256, data), blob);
    }

    let fresh = ImageStore::open(dir.path().join("b")).expect("open fresh");
    let loaded = archive::load(&fresh, saved.as_slice()).expect("load");
    let names: Vec<_> = loaded.iter().filter_map(|l| l.name.clone()).collect();
    assert_eq!(names, vec!["berth-test/busybox:rt", "localhost:5000/other:2"]);
    let img = fresh.resolve("berth-test/busybox:rt").expect("resolve loaded");
    assert_eq!(img.manifest_digest, imported.manifest_digest, "same manifest digest");
    assert_eq!(
        fresh.resolve("localhost:5000/other:2").expect("other").manifest_digest,
        imported.manifest_digest
    );
    let mount = fresh
        .prepare_rootfs("berth-test/busybox:rt", "c")
        .expect("prepare loaded");
    assert!(Path::new(mount.lowerdir.as_str()).join("bin/busybox").is_file());
    fresh.remove_rootfs("c").expect("remove rootfs");

    // Without index.json the same archive loads as a docker-archive: same config and
    // layers, so the same image ID.
    let mut docker_only = files.clone();
    docker_only.remove("index.json");
    docker_only.remove("oci-layout");
    let third = ImageStore::open(dir.path().join("c")).expect("open third");
    archive::load(&third, tar_from(&docker_only).as_slice()).expect("load docker-archive");
    assert_eq!(
        third.resolve("berth-test/busybox:rt").expect("resolve").config_digest,
        imported.config_digest
    );
}

#[test]
fn untagged_images_round_trip_dangling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, imported) = imported_store(&dir.path().join("a"), "berth-test/busybox:d");
    let mut saved = Vec::new();
    // By image ID: no name goes into the archive.
    archive::save(&store, &[imported.config_digest.hex()], &mut saved).expect("save by id");
    let files = tar_files(&saved);
    let docker: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).expect("manifest.json");
    assert_eq!(docker[0]["RepoTags"], serde_json::json!([]));

    let fresh = ImageStore::open(dir.path().join("b")).expect("open fresh");
    let loaded = archive::load(&fresh, saved.as_slice()).expect("load");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].name, None);
    let list = fresh.list().expect("list");
    assert_eq!(list.len(), 1);
    assert!(list[0].names.is_empty());
    assert_eq!(list[0].target, imported.manifest_digest);
    // Tagging it later makes it no longer dangling.
    fresh
        .tag(&imported.manifest_digest.to_string(), "named:now")
        .expect("tag");
    let records = fresh.records().expect("records");
    assert_eq!(records.keys().collect::<Vec<_>>(), vec!["docker.io/library/named:now"]);
}

#[test]
fn loads_layout_whose_index_points_at_an_image_index() {
    // What containerd-backed `docker save` writes: index.json → image index → manifests.
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, imported) = imported_store(&dir.path().join("a"), "berth-test/busybox:nested");
    let mut saved = Vec::new();
    archive::save(&store, &["berth-test/busybox:nested"], &mut saved).expect("save");
    let mut files = tar_files(&saved);
    let manifest_size = files[&format!("blobs/sha256/{}", imported.manifest_digest.hex())].len();
    let image_index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": [{
            "mediaType": manifest::OCI_MANIFEST,
            "digest": imported.manifest_digest.to_string(),
            "size": manifest_size,
            "platform": {"os": "linux", "architecture": manifest::Platform::host().architecture},
        }],
    }))
    .expect("json");
    let index_digest = Digest::of_bytes(Algorithm::Sha256, &image_index);
    files.insert(format!("blobs/sha256/{}", index_digest.hex()), image_index.clone());
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": manifest::OCI_INDEX,
            "digest": index_digest.to_string(),
            "size": image_index.len(),
            "annotations": {manifest::ANNOTATION_IMAGE_NAME: "docker.io/berth-test/busybox:nested"},
        }],
    });
    files.insert("index.json".into(), serde_json::to_vec(&top).expect("json"));

    let fresh = ImageStore::open(dir.path().join("b")).expect("open fresh");
    archive::load(&fresh, tar_from(&files).as_slice()).expect("load nested");
    let img = fresh.resolve("berth-test/busybox:nested").expect("resolve");
    assert_eq!(img.target, index_digest);
    assert_eq!(img.manifest_digest, imported.manifest_digest);
}

#[test]
fn tampered_blob_fails_naming_it_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, imported) = imported_store(&dir.path().join("a"), "berth-test/busybox:t");
    let mut saved = Vec::new();
    archive::save(&store, &["berth-test/busybox:t"], &mut saved).expect("save");
    let mut files = tar_files(&saved);
    let key = format!("blobs/sha256/{}", imported.layer_digest.hex());
    let layer = files.get_mut(&key).expect("layer in archive");
    let last = layer.len() - 1;
    layer[last] ^= 0xff;

    let fresh = ImageStore::open(dir.path().join("b")).expect("open fresh");
    let err = archive::load(&fresh, tar_from(&files).as_slice()).expect_err("tampered");
    assert!(matches!(err, ArchiveError::Blob { .. }), "{err}");
    assert!(err.to_string().contains(imported.layer_digest.hex()), "{err}");
    assert!(fresh.list().expect("list").is_empty(), "nothing tagged");
    assert!(fresh.blobs().list().expect("blobs").is_empty(), "nothing left behind");

    // An index naming a blob the archive lacks.
    let mut files = tar_files(&saved);
    files.remove(&key);
    let err = archive::load(&fresh, tar_from(&files).as_slice()).expect_err("missing layer");
    assert!(err.to_string().contains(&imported.layer_digest.to_string()), "{err}");
    assert!(fresh.list().expect("list").is_empty());
}

/// A pre-OCI `docker save` archive: `<id>/layer.tar`, `<hex>.json`, a symlinked layer.
fn legacy_archive(layer: &[u8], tamper_layer: bool) -> Vec<u8> {
    let diff_id = Digest::of_bytes(Algorithm::Sha256, layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": manifest::Platform::host().architecture,
        "os": "linux",
        "container_config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string(), diff_id.to_string()]},
    }))
    .expect("config");
    let config_hex = Digest::of_bytes(Algorithm::Sha256, &config).hex().to_string();
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": ["legacy:1"],
        "Layers": ["aaa/layer.tar", "bbb/layer.tar"],
    }]))
    .expect("manifest");
    let mut stored = layer.to_vec();
    if tamper_layer {
        stored[600] ^= 1;
    }
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, path, data).expect("append");
    };
    add("aaa/VERSION", b"1.0");
    add("aaa/json", b"{}");
    add("aaa/layer.tar", &stored);
    add(&format!("{config_hex}.json"), &config);
    add("manifest.json", &manifest);
    let mut l = tar::Header::new_gnu();
    l.set_entry_type(tar::EntryType::Symlink);
    l.set_size(0);
    l.set_mode(0o777);
    l.set_uid(0);
    l.set_gid(0);
    b.append_link(&mut l, "bbb/layer.tar", "../aaa/layer.tar")
        .expect("link");
    b.into_inner().expect("finish")
}

#[test]
fn loads_legacy_docker_archive_and_checks_diff_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let layer = tar_of(&[("hello.txt", b"hello", 0o644)]);
    let loaded = archive::load(&store, legacy_archive(&layer, false).as_slice()).expect("load legacy");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].name.as_deref(), Some("legacy:1"));
    let img = store.resolve("legacy:1").expect("resolve");
    assert_eq!(
        img.manifest.layers()[0].media_type().to_string(),
        manifest::OCI_LAYER_TAR
    );
    // VERSION and json files are not kept as blobs: manifest, config, one layer.
    assert_eq!(store.blobs().list().expect("blobs").len(), 3);
    let mount = store.prepare_rootfs("legacy:1", "c").expect("prepare");
    assert_eq!(mount.lowerdir.split(':').count(), 2);
    store.remove_rootfs("c").expect("remove rootfs");

    let fresh = ImageStore::open(dir.path().join("fresh")).expect("open fresh");
    let err = archive::load(&fresh, legacy_archive(&layer, true).as_slice()).expect_err("tampered legacy layer");
    assert!(matches!(err, ArchiveError::DiffIdMismatch { .. }), "{err}");
    assert!(err.to_string().contains("aaa/layer.tar"), "{err}");
    assert!(fresh.list().expect("list").is_empty());
    assert!(fresh.blobs().list().expect("blobs").is_empty());
}

#[test]
fn import_rejects_non_tar_input_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let garbage = vec![0x42u8; 2048];
    let err = archive::import(&store, garbage.as_slice(), Some(&reference("bad:1"))).expect_err("not a tar");
    assert!(matches!(err, ArchiveError::Layer { .. }), "{err}");
    assert!(store.list().expect("list").is_empty());
    assert!(
        store.blobs().list().expect("blobs").is_empty(),
        "the layer blob was removed"
    );

    // An unsafe entry is refused too, naming it.
    let evil = {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_size(1);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &b"x"[..]).expect("append raw");
        b.into_inner().expect("finish")
    };
    let err = archive::import(&store, evil.as_slice(), None).expect_err("unsafe");
    assert!(err.to_string().contains("escape"), "{err}");
}

#[test]
fn not_an_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let err = archive::load(&store, tar_of(&[("x", b"y", 0o644)]).as_slice()).expect_err("no metadata");
    assert!(matches!(err, ArchiveError::NotAnArchive), "{err}");
    assert!(store.blobs().list().expect("blobs").is_empty());
}
