//! The image store: names, resolution, removal with shared content, and container rootfs
//! preparation with on-demand unpacking.

mod common;

use std::fs;

use berth_image::images::{ImageError, ImageStore};
use berth_image::manifest::{self, Platform};
use berth_image::snapshots::chain_ids;
use berth_image::Reference;
use common::{store_image, tar_of};

fn reference(s: &str) -> Reference {
    Reference::parse(s).expect("reference")
}

#[test]
fn set_list_resolve_tag_and_remove_keep_shared_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let base = tar_of(&[("etc/base", b"base", 0o644)]);
    let a = store_image(&store, std::slice::from_ref(&base), serde_json::json!({"author": "a"}));
    let b = store_image(
        &store,
        &[base.clone(), tar_of(&[("etc/b", b"b", 0o644)])],
        serde_json::json!({"author": "b"}),
    );
    store.set_image(Some(&reference("a")), &a).expect("name a");
    store
        .set_image(Some(&reference("example.com/team/b:v1")), &b)
        .expect("name b");
    store.tag("a", "a:second").expect("tag");

    let list = store.list().expect("list");
    assert_eq!(list.len(), 2);
    let a_names = &list.iter().find(|s| s.target == a).expect("a listed").names;
    assert_eq!(a_names, &vec!["a:latest".to_string(), "a:second".to_string()]);

    let img = store.resolve("docker.io/library/a:latest").expect("resolve a");
    assert_eq!(img.manifest_digest, a);
    assert_eq!(img.config.author().as_deref(), Some("a"));
    // By image ID (config digest) and by manifest digest.
    assert_eq!(
        store
            .resolve(&img.config_digest.to_string())
            .expect("by id")
            .manifest_digest,
        a
    );
    assert_eq!(store.resolve(&a.to_string()).expect("by digest").manifest_digest, a);
    // By short image ID, as `docker images` prints it.
    let short = &img.config_digest.hex()[..12];
    assert_eq!(store.resolve(short).expect("by short id").manifest_digest, a);
    assert!(matches!(store.resolve("ffff0000ffff"), Err(ImageError::NotFound(_))));

    // Both images are unpacked, so they share the base snapshot.
    store.prepare_rootfs("a", "ca").expect("rootfs a");
    store.prepare_rootfs("example.com/team/b:v1", "cb").expect("rootfs b");
    store.remove_rootfs("ca").expect("remove rootfs a");
    store.remove_rootfs("cb").expect("remove rootfs b");
    let base_chain = img.diff_ids[0].clone();
    assert!(store.snapshots().get(&base_chain).expect("get").is_some());

    // Removing one of a's two names deletes nothing.
    let removed = store.untag("a:latest").expect("untag");
    assert_eq!(removed.names, vec!["a:latest".to_string()]);
    assert!(removed.blobs.is_empty() && removed.snapshots.is_empty(), "{removed:?}");
    // Removing its last name deletes a's own manifest and config but not the shared layer.
    let removed = store.remove("a:second").expect("remove");
    assert!(removed.blobs.contains(&a) && removed.blobs.contains(&img.config_digest));
    let base_layer = manifest::descriptor_digest(&img.manifest.layers()[0], "").expect("digest");
    assert!(!removed.blobs.contains(&base_layer), "shared layer must stay");
    assert!(removed.snapshots.is_empty(), "shared snapshot must stay: {removed:?}");
    assert!(matches!(store.resolve("a:second"), Err(ImageError::NotFound(_))));

    // b still works from its stored content.
    let mount = store
        .prepare_rootfs("example.com/team/b:v1", "cb2")
        .expect("rootfs b again");
    assert_eq!(mount.lowerdir.split(':').count(), 2);
    store.remove_rootfs("cb2").expect("remove rootfs");
    let removed = store.remove("example.com/team/b:v1").expect("remove b");
    assert_eq!(removed.snapshots.len(), 2, "{removed:?}");
    assert!(store.list().expect("list").is_empty());
    assert!(store.blobs().list().expect("blobs").is_empty(), "every blob is gone");
}

#[test]
fn prepare_rootfs_unpacks_missing_layers_on_demand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let l1 = tar_of(&[("one", b"1", 0o644)]);
    let l2 = tar_of(&[("two", b"2", 0o644)]);
    let m = store_image(&store, &[l1.clone(), l2], serde_json::json!({}));
    store.set_image(Some(&reference("layered:1")), &m).expect("name");
    let img = store.resolve("layered:1").expect("resolve");
    let chains = chain_ids(&img.diff_ids);

    // Only the bottom layer is unpacked, as after a crash during a pull.
    store
        .snapshots()
        .apply_layer(None, l1.as_slice(), None, Some(&img.diff_ids[0]))
        .expect("apply bottom");
    assert!(store.snapshots().get(&chains[1]).expect("get").is_none());

    let mount = store.prepare_rootfs("layered:1", "c1").expect("prepare");
    assert!(
        store.snapshots().get(&chains[1]).expect("get").is_some(),
        "top layer unpacked"
    );
    let top = store.snapshots().path(&chains[1]);
    let bottom = store.snapshots().path(&chains[0]);
    assert_eq!(mount.lowerdir, format!("{}:{}", top.display(), bottom.display()));
    assert!(top.join("two").is_file() && bottom.join("one").is_file());
    assert!(mount.upperdir.is_dir() && mount.workdir.is_dir());
    assert_eq!(
        mount.options(),
        format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off",
            mount.lowerdir,
            mount.upperdir.display(),
            mount.workdir.display()
        )
    );

    let err = store
        .prepare_rootfs("layered:1", "c1")
        .expect_err("second rootfs with same id");
    assert!(err.to_string().contains("c1"), "{err}");
    let err = store.prepare_rootfs("layered:1", "../evil").expect_err("bad id");
    assert!(err.to_string().contains("../evil"), "{err}");

    // Plain removal is refused while the container uses the image; forced removal
    // untags it and the container keeps the image's content alive.
    let err = store.remove("layered:1").expect_err("image in use");
    assert!(
        matches!(err, ImageError::InUse { .. }) && err.to_string().contains("c1"),
        "{err}"
    );
    let removed = store.remove_image("layered:1", true).expect("forced remove");
    assert!(removed.blobs.is_empty() && removed.snapshots.is_empty(), "{removed:?}");
    assert!(mount.upperdir.is_dir());
    let removed = store.remove_rootfs("c1").expect("remove rootfs");
    assert_eq!(removed.snapshots.len(), 2);
    assert!(!top.exists() && !bottom.exists(), "snapshot directories deleted");
    assert!(store.snapshots().get(&chains[0]).expect("get").is_none());
    assert!(!mount.upperdir.exists());
    assert!(store.blobs().list().expect("blobs").is_empty());
}

#[test]
fn missing_layer_blob_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let m = store_image(&store, &[tar_of(&[("f", b"x", 0o644)])], serde_json::json!({}));
    store.set_image(Some(&reference("gone")), &m).expect("name");
    let img = store.resolve("gone").expect("resolve");
    let layer = manifest::descriptor_digest(&img.manifest.layers()[0], "").expect("digest");
    store.blobs().delete(&layer).expect("delete layer");
    let err = store.prepare_rootfs("gone", "c").expect_err("layer missing");
    assert!(err.to_string().contains(&layer.to_string()), "{err}");
    assert!(!dir.path().join("containers/c").exists());
}

#[test]
fn unrecorded_rootfs_dirs_are_removed_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = ImageStore::open(dir.path()).expect("open");
        let m = store_image(&store, &[tar_of(&[("f", b"x", 0o644)])], serde_json::json!({}));
        store.set_image(Some(&reference("x")), &m).expect("name");
        store.prepare_rootfs("x", "kept").expect("prepare");
    }
    // A crash between creating a rootfs directory and recording it.
    fs::create_dir_all(dir.path().join("containers/orphan/upper")).expect("mkdir");
    let store = ImageStore::open(dir.path()).expect("reopen");
    assert!(!dir.path().join("containers/orphan").exists());
    assert!(dir.path().join("containers/kept/upper").is_dir());
    store.remove_rootfs("kept").expect("remove");
}

#[test]
fn index_resolves_to_the_store_platform() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let m = store_image(&store, &[tar_of(&[("f", b"x", 0o644)])], serde_json::json!({}));
    let host = Platform::host();
    let m_size = store.read_document(&m).expect("read").len();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::DOCKER_MANIFEST_LIST,
        "manifests": [
            {"mediaType": manifest::DOCKER_MANIFEST, "size": 7,
             "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
             "platform": {"architecture": "s390x", "os": "linux"}},
            {"mediaType": manifest::OCI_MANIFEST, "size": m_size, "digest": m.to_string(),
             "platform": {"architecture": host.architecture, "os": "linux"}},
        ],
    });
    let bytes = serde_json::to_vec(&index).expect("json");
    let idx = store
        .blobs()
        .ingest(None, None, bytes.as_slice())
        .expect("ingest index");
    store.set_image(Some(&reference("multi")), &idx).expect("name index");
    let img = store.resolve("multi").expect("resolve");
    assert_eq!(img.target, idx);
    assert_eq!(img.manifest_digest, m);
    drop(store);

    let other = Platform::parse("linux/riscv64").expect("platform");
    let store = ImageStore::open_for(dir.path(), other).expect("open for riscv64");
    let err = store.resolve("multi").expect_err("no riscv64 manifest");
    let msg = err.to_string();
    assert!(msg.contains("linux/riscv64") && msg.contains("linux/s390x"), "{msg}");
    // Removing the index removes the manifests it reaches.
    let removed = store.remove("multi").expect("remove");
    assert!(removed.blobs.contains(&idx) && removed.blobs.contains(&m));
}
