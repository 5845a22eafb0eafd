//! Image history in the shape of Docker's `GET /images/{name}/history`.

mod common;

use berth_image::images::{ImageError, ImageStore};
use berth_image::Reference;
use common::{store_image, tar_of};

fn reference(s: &str) -> Reference {
    Reference::parse(s).expect("reference")
}

#[test]
fn newest_first_with_image_id_tags_and_layer_sizes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let l1 = tar_of(&[("bin/tool", &[7u8; 3000], 0o755)]);
    let l2 = tar_of(&[("etc/conf", b"x=1", 0o644)]);
    let config = serde_json::json!({
        "history": [
            {"created": "2024-01-02T03:04:05Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in /"},
            {"created": "2024-01-02T03:04:06.5Z", "created_by": "/bin/sh -c #(nop)  ENV A=1", "empty_layer": true},
            {"created": "2024-01-02T03:04:07+01:00", "created_by": "/bin/sh -c echo x=1 > /etc/conf", "comment": "conf"},
        ],
    });
    let m = store_image(&store, &[l1.clone(), l2.clone()], config);
    store.set_image(Some(&reference("hist:1")), &m).expect("name");
    store.tag("hist:1", "example.com/hist:2").expect("tag");
    let id = store.resolve("hist:1").expect("resolve").config_digest;

    let hist = store.history("hist:1").expect("history");
    assert_eq!(hist.len(), 3);
    assert_eq!(hist[0].id, id.to_string());
    assert_eq!(hist[0].tags, ["example.com/hist:2", "hist:1"]);
    assert_eq!(hist[0].size, l2.len() as u64);
    assert_eq!(hist[0].comment, "conf");
    assert_eq!(hist[0].created, 1_704_164_647 - 3600);
    assert_eq!(hist[1].id, "<missing>");
    assert_eq!(hist[1].size, 0, "empty layer");
    assert_eq!(hist[1].created, 1_704_164_646);
    assert_eq!(hist[2].size, l1.len() as u64);
    assert_eq!(hist[2].created_by, "/bin/sh -c #(nop) ADD file:abc in /");
    assert_eq!(
        serde_json::to_value(&hist[1]).expect("json"),
        serde_json::json!({
            "Id": "<missing>", "Created": 1_704_164_646, "CreatedBy": "/bin/sh -c #(nop)  ENV A=1",
            "Tags": null, "Size": 0, "Comment": "",
        })
    );

    // Sizes are the same once the layers are unpacked (then read from the snapshots).
    store.prepare_rootfs("hist:1", "c").expect("prepare");
    assert_eq!(store.history("hist:1").expect("history"), hist);
    store.remove_rootfs("c").expect("remove rootfs");
}

#[test]
fn image_without_history_gets_an_entry_per_layer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let l1 = tar_of(&[("a", b"a", 0o644)]);
    let l2 = tar_of(&[("b", b"bb", 0o644)]);
    let m = store_image(
        &store,
        &[l1.clone(), l2],
        serde_json::json!({"created": "1970-01-02T00:00:00Z"}),
    );
    store.set_image(None, &m).expect("dangling");
    let hist = store.history(&m.to_string()).expect("history");
    assert_eq!(hist.len(), 2);
    assert!(hist[0].tags.is_empty(), "dangling image has no tags");
    assert_eq!(hist[1].size, l1.len() as u64);
    assert!(hist.iter().all(|h| h.created == 86_400));
}

#[test]
fn bad_history_and_unknown_images_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    let config = serde_json::json!({"history": [{"created_by": "one"}, {"created_by": "two"}]});
    let m = store_image(&store, &[tar_of(&[("a", b"a", 0o644)])], config);
    store.set_image(Some(&reference("bad")), &m).expect("name");
    let err = store.history("bad").expect_err("two layer entries, one layer");
    assert!(matches!(err, ImageError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("more layer entries"), "{err}");
    assert!(matches!(store.history("absent:1"), Err(ImageError::NotFound(_))));
}
