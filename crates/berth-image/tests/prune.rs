//! Image removal while containers use an image, `image prune`, and garbage collection of
//! blobs and snapshots nothing uses.

mod common;

use std::time::Duration;

use berth_image::images::{ImageError, ImageStore};
use berth_image::manifest;
use berth_image::prune::PruneOptions;
use berth_image::Reference;
use common::{store_image, tar_of};

fn reference(s: &str) -> Reference {
    Reference::parse(s).expect("reference")
}

fn now(all: bool, filters: &[&str]) -> PruneOptions {
    PruneOptions {
        all,
        filters: filters.iter().map(|f| f.to_string()).collect(),
        grace: Duration::ZERO,
    }
}

#[test]
fn rmi_is_refused_while_a_container_uses_the_image_unless_forced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let m = store_image(&store, &[tar_of(&[("f", b"app", 0o644)])], serde_json::json!({}));
    store.set_image(Some(&reference("app:1")), &m).expect("name");
    store.tag("app:1", "app:2").expect("tag");
    let id = store.resolve("app:1").expect("resolve").config_digest;
    store.prepare_rootfs("app:1", "web").expect("prepare");

    // Another name still points at the image: untagging one is fine (as in Docker).
    store.remove("app:1").expect("untag one of two names");
    // The last name, or the image ID, would orphan the container's image.
    for name in ["app:2", id.to_string().as_str()] {
        let err = store.remove(name).expect_err("in use");
        assert!(
            matches!(err, ImageError::InUse { ref containers, .. } if containers == &["web"]),
            "{err}"
        );
        assert!(
            err.to_string().contains("web") && err.to_string().contains(name),
            "{err}"
        );
    }
    assert!(store.resolve("app:2").is_ok(), "refusal changed nothing");

    // Forced: untagged, content kept while the container uses it.
    let removed = store.remove_image("app:2", true).expect("forced");
    assert_eq!(removed.names, ["app:2"]);
    assert!(removed.blobs.is_empty() && removed.snapshots.is_empty(), "{removed:?}");
    assert!(store.list().expect("list").is_empty());
    assert!(store.blobs().exists(&m).expect("exists"));
    let removed = store.remove_rootfs("web").expect("remove rootfs");
    assert!(
        removed.blobs.contains(&m) && removed.snapshots.len() == 1,
        "{removed:?}"
    );

    // Positive control: refused while used, plain removal works once the rootfs is gone.
    let m2 = store_image(&store, &[tar_of(&[("g", b"other", 0o644)])], serde_json::json!({}));
    store.set_image(Some(&reference("other")), &m2).expect("name");
    store.prepare_rootfs("other", "db").expect("prepare");
    assert!(matches!(store.remove("other"), Err(ImageError::InUse { .. })));
    store.remove_rootfs("db").expect("remove rootfs");
    let removed = store.remove("other").expect("remove after the container is gone");
    assert!(removed.blobs.contains(&m2));
    assert!(store.blobs().list().expect("blobs").is_empty());
}

#[test]
fn prune_dangling_then_all_with_label_filters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let image = |content: &[u8], label: &str| {
        store_image(
            &store,
            &[tar_of(&[("f", content, 0o644)])],
            serde_json::json!({"config": {"Labels": {"team": label}}}),
        )
    };
    let keep = image(b"keep", "a");
    let drop = image(b"drop", "b");
    let dangling = image(b"dangling", "c");
    let used = image(b"used", "c");
    store.set_image(Some(&reference("keep:1")), &keep).expect("name");
    store.set_image(Some(&reference("drop:1")), &drop).expect("name");
    store.set_image(None, &dangling).expect("dangling");
    store.set_image(None, &used).expect("dangling");
    store.prepare_rootfs(&used.to_string(), "c").expect("prepare");

    let report = store.prune(&now(false, &[])).expect("prune dangling");
    assert_eq!(report.deleted, std::slice::from_ref(&dangling));
    assert!(report.untagged.is_empty());
    assert!(report.gc.blobs.contains(&dangling) && report.gc.snapshots.is_empty());
    assert!(report.gc.space_reclaimed > 0);
    assert!(!store.blobs().exists(&dangling).expect("exists"));
    for kept in [&keep, &drop, &used] {
        assert!(store.resolve(&kept.to_string()).is_ok(), "{kept} kept");
    }

    let report = store.prune(&now(true, &["label=team=b"])).expect("prune by label");
    assert_eq!(
        (report.untagged, report.deleted),
        (vec!["drop:1".to_string()], vec![drop])
    );
    let report = store.prune(&now(true, &["label!=team=a"])).expect("prune not a");
    assert!(report.deleted.is_empty(), "keep has team=a; the used image is in use");
    let report = store.prune(&now(true, &["label=team"])).expect("prune any team");
    assert_eq!(report.untagged, ["keep:1"]);
    assert!(store.resolve(&used.to_string()).is_ok(), "used by container c");

    let err = store.prune(&now(true, &["until=1h"])).expect_err("unsupported filter");
    assert!(err.to_string().contains("until=1h"), "{err}");

    store.remove_rootfs("c").expect("remove rootfs");
    let report = store.prune(&now(false, &[])).expect("prune");
    assert_eq!(report.deleted, [used]);
    assert!(store.blobs().list().expect("blobs").is_empty());
    assert!(store.snapshots().list().expect("snapshots").is_empty());
}

#[test]
fn gc_deletes_unreferenced_blobs_and_snapshots_older_than_the_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let layer = tar_of(&[("f", b"named", 0o644)]);
    let m = store_image(&store, std::slice::from_ref(&layer), serde_json::json!({}));
    store.set_image(Some(&reference("named")), &m).expect("name");
    store.prepare_rootfs("named", "c").expect("prepare");
    // Garbage: a blob and a snapshot no image reaches (what a crash between storing
    // content and naming it, or between removing a name and deleting content, leaves).
    let stray = store.blobs().ingest(None, None, &b"stray"[..]).expect("ingest");
    let stray_snap = store
        .snapshots()
        .apply_layer(None, tar_of(&[("s", b"stray", 0o644)]).as_slice(), None, None)
        .expect("stray snapshot")
        .chain_id;

    // Fresh content is kept: it may belong to an operation that has not named it yet.
    let report = store.gc(Duration::from_secs(3600)).expect("gc with grace");
    assert!(report.blobs.is_empty() && report.snapshots.is_empty(), "{report:?}");

    // After a restart (nothing in memory), an expired grace collects exactly the garbage.
    drop(store);
    let store = ImageStore::open(dir.path()).expect("reopen");
    let report = store.gc(Duration::ZERO).expect("gc");
    assert_eq!(report.blobs, [stray]);
    assert_eq!(report.snapshots, [stray_snap]);
    assert!(report.space_reclaimed >= 10);
    assert_eq!(store.snapshots().list().expect("snapshots").len(), 1);
    store.remove_rootfs("c").expect("remove rootfs");
    store.prepare_rootfs("named", "c2").expect("the named image is intact");
    store.remove_rootfs("c2").expect("remove rootfs");
}

#[test]
fn gc_refuses_when_it_cannot_tell_what_an_image_uses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let m = store_image(&store, &[tar_of(&[("f", b"x", 0o644)])], serde_json::json!({}));
    store.set_image(Some(&reference("broken")), &m).expect("name");
    let img = store.resolve("broken").expect("resolve");
    let layer = manifest::descriptor_digest(&img.manifest.layers()[0], "").expect("digest");
    store.blobs().delete(&img.config_digest).expect("lose the config");

    let err = store.gc(Duration::ZERO).expect_err("unreadable image");
    assert!(
        err.to_string().contains("broken") && err.to_string().contains("config"),
        "{err}"
    );
    assert!(store.blobs().exists(&layer).expect("exists"), "nothing deleted");

    // Positive control: without the broken image, collection proceeds.
    store.remove("broken").expect("remove");
    store.gc(Duration::ZERO).expect("gc");
    assert!(store.blobs().list().expect("blobs").is_empty());
}

#[test]
fn snapshot_left_half_removed_by_a_crash_is_cleaned_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = ImageStore::open(dir.path()).expect("open");
        let m = store_image(&store, &[tar_of(&[("f", b"x", 0o644)])], serde_json::json!({}));
        store.set_image(Some(&reference("x")), &m).expect("name");
        store.prepare_rootfs("x", "c").expect("prepare");
    }
    // Snapshots::remove drops the record before the directory: a crash in between
    // leaves a directory without a record.
    let orphan = dir.path().join("snapshots").join("ab".repeat(32));
    std::fs::create_dir_all(orphan.join("etc")).expect("orphan");
    let store = ImageStore::open(dir.path()).expect("reopen");
    assert!(!orphan.exists());
    assert!(
        store.gc(Duration::ZERO).expect("gc").snapshots.is_empty(),
        "x's snapshot is in use"
    );
    store.remove_rootfs("c").expect("remove rootfs");
}
