//! Push and pull against a real CNCF distribution registry (Debian's `docker-registry`)
//! started on a free loopback port for each test.

mod registry_util;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_image::registry::{BlobProgress, Client, Platform, PullOptions, PushOptions, RegistryError};
use berth_image::store::BlobStore;
use registry_util::{make_image, make_index, test_client, Registry, TestImage};

fn stores() -> (tempfile::TempDir, BlobStore, BlobStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("src store");
    let dst = BlobStore::open(dir.path().join("dst")).expect("dst store");
    (dir, src, dst)
}

/// Every blob of `img` (and its manifest) is in `store` with the right content.
fn assert_complete(store: &BlobStore, img: &TestImage) {
    let report = store.verify_all().expect("verify");
    assert!(report.corrupt.is_empty(), "{:?}", report.corrupt);
    for d in img.blobs().iter().chain([&img.manifest]) {
        assert!(report.ok.contains(d), "{d} missing from the pulled store");
    }
}

#[test]
fn push_then_pull_round_trips_with_progress() {
    let reg = Registry::start();
    let (_dir, src, dst) = stores();
    let img = make_image(&src, "roundtrip", "amd64", 100_000);
    let client = test_client();
    let reference = reg.reference("test/app:v1");

    let report = client
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push");
    assert_eq!(report.uploaded, img.blobs());
    assert!(report.skipped.is_empty() && report.mounted.is_empty());
    assert_eq!(report.chunks, 0, "small blobs go up in one PUT");
    assert_eq!(report.manifests, vec![img.manifest.clone()]);

    let seen: Arc<Mutex<HashMap<String, BlobProgress>>> = Arc::default();
    let seen2 = seen.clone();
    let options = PullOptions {
        platform: None,
        progress: Some(Arc::new(move |p: &BlobProgress| {
            let mut m = seen2.lock().expect("progress map");
            if let Some(prev) = m.get(&p.digest.to_string()) {
                assert!(p.done >= prev.done, "progress never goes back");
            }
            m.insert(p.digest.to_string(), p.clone());
        })),
    };
    let pulled = test_client().pull(&reference, &dst, &options).expect("pull");
    assert_eq!(pulled.digest, img.manifest);
    assert_eq!(pulled.config, img.config);
    assert_eq!(pulled.layers, img.layers);
    assert_eq!(pulled.index, None);
    assert_eq!(pulled.fetched, img.blobs());
    assert_eq!(pulled.manifest["layers"][1]["digest"], img.layers[1].to_string());
    assert_complete(&dst, &img);
    let seen = seen.lock().expect("progress map");
    for d in img.blobs() {
        let p = &seen[&d.to_string()];
        assert_eq!((p.done, p.cached), (p.total, false), "{d} progress ended at {p:?}");
    }
    drop(seen);

    // A second pull into the same store downloads nothing and reports blobs as cached.
    let again = client
        .pull(&reference, &dst, &PullOptions::default())
        .expect("pull again");
    assert!(again.fetched.is_empty(), "{:?}", again.fetched);
}

#[test]
fn pull_by_digest_and_unknown_manifest() {
    let reg = Registry::start();
    let (_dir, src, dst) = stores();
    let img = make_image(&src, "bydigest", "amd64", 10_000);
    let client = test_client();
    client
        .push(
            &reg.reference("test/d:tag"),
            &src,
            &img.manifest,
            &PushOptions::default(),
        )
        .expect("push");
    let by_digest = reg.reference(&format!("test/d@{}", img.manifest));
    let pulled = client
        .pull(&by_digest, &dst, &PullOptions::default())
        .expect("pull by digest");
    assert_eq!(pulled.digest, img.manifest);
    assert_complete(&dst, &img);

    let err = client
        .pull(&reg.reference("test/d:nope"), &dst, &PullOptions::default())
        .expect_err("unknown tag");
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::Status { status: 404, .. }), "{msg}");
    assert!(
        msg.contains("manifests/nope") && msg.contains("MANIFEST_UNKNOWN"),
        "{msg}"
    );
}

#[test]
fn index_pull_picks_the_platform() {
    let reg = Registry::start();
    let (_dir, src, dst) = stores();
    let amd = make_image(&src, "amd", "amd64", 5_000);
    let arm = make_image(&src, "arm", "arm64", 6_000);
    let (index, _) = make_index(
        &src,
        &[(&amd, "linux", "amd64", None), (&arm, "linux", "arm64", Some("v8"))],
    );
    let client = test_client();
    let reference = reg.reference("multi/app:latest");
    let report = client
        .push(&reference, &src, &index, &PushOptions::default())
        .expect("push index");
    assert_eq!(
        report.manifests,
        vec![amd.manifest.clone(), arm.manifest.clone(), index.clone()]
    );
    assert_eq!(report.uploaded.len(), 6);

    let amd64 = PullOptions {
        platform: Some(Platform::new("linux", "amd64", None)),
        progress: None,
    };
    let pulled = client.pull(&reference, &dst, &amd64).expect("pull amd64");
    assert_eq!(pulled.digest, amd.manifest);
    assert_eq!(pulled.index, Some(index.clone()));
    assert_complete(&dst, &amd);
    assert!(
        !dst.exists(&arm.layers[1]).expect("exists"),
        "the arm64 layers are not pulled"
    );
    assert!(dst.exists(&index).expect("exists"), "the index is stored too");
    if cfg!(target_arch = "x86_64") {
        let host = client
            .pull(&reference, &dst, &PullOptions::default())
            .expect("pull host");
        assert_eq!(host.digest, amd.manifest, "the host platform is linux/amd64");
    }
    let arm64 = PullOptions {
        platform: Platform::parse("linux/arm64"),
        progress: None,
    };
    assert_eq!(
        client.pull(&reference, &dst, &arm64).expect("pull arm64").digest,
        arm.manifest
    );

    let s390x = PullOptions {
        platform: Platform::parse("linux/s390x"),
        progress: None,
    };
    let err = client.pull(&reference, &dst, &s390x).expect_err("no s390x");
    let msg = err.to_string();
    assert!(msg.contains("linux/s390x") && msg.contains("linux/arm64/v8"), "{msg}");
}

#[test]
fn pushing_again_skips_existing_blobs() {
    let reg = Registry::start();
    let (_dir, src, _) = stores();
    let img = make_image(&src, "again", "amd64", 20_000);
    let client = test_client();
    let reference = reg.reference("test/again:1");
    let first = client
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push");
    assert_eq!(first.uploaded.len(), 3);
    // A fresh client, so nothing is known but what the registry answers to HEAD.
    let second = test_client()
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push again");
    assert!(second.uploaded.is_empty(), "re-uploaded {:?}", second.uploaded);
    assert_eq!(second.skipped, img.blobs());
}

#[test]
fn cross_repository_mount() {
    let reg = Registry::start();
    let (_dir, src, dst) = stores();
    let img = make_image(&src, "mount", "amd64", 20_000);
    let client = test_client();
    client
        .push(&reg.reference("team/a:1"), &src, &img.manifest, &PushOptions::default())
        .expect("push a");
    // The same client remembers where the blobs went.
    let b = client
        .push(&reg.reference("team/b:1"), &src, &img.manifest, &PushOptions::default())
        .expect("push b");
    assert_eq!(b.mounted, img.blobs());
    assert!(b.uploaded.is_empty() && b.skipped.is_empty(), "{b:?}");
    // A fresh client is told where to mount from.
    let hint = PushOptions {
        mount_from: vec!["team/a".into()],
    };
    let c = test_client()
        .push(&reg.reference("team/c:1"), &src, &img.manifest, &hint)
        .expect("push c");
    assert_eq!(c.mounted, img.blobs());
    let pulled = test_client()
        .pull(&reg.reference("team/c:1"), &dst, &PullOptions::default())
        .expect("pull c");
    assert_eq!(pulled.digest, img.manifest);
    assert_complete(&dst, &img);
}

#[test]
fn chunked_upload_of_a_large_blob() {
    let reg = Registry::start();
    let (_dir, src, dst) = stores();
    let img = make_image(&src, "chunked", "amd64", 300_000);
    let client = Client::builder()
        .docker_config(None)
        .upload_chunk_size(64 * 1024)
        .build()
        .expect("client");
    let reference = reg.reference("test/chunked:1");
    let report = client
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push");
    assert!(
        report.chunks >= 5,
        "a ~300 KB layer in 64 KiB chunks: {} PATCHes",
        report.chunks
    );
    test_client()
        .pull(&reference, &dst, &PullOptions::default())
        .expect("pull");
    assert_complete(&dst, &img);
}

#[test]
fn concurrent_pulls_fetch_each_blob_once() {
    let reg = Registry::start();
    let (_dir, src, dst) = stores();
    let img = make_image(&src, "concurrent", "amd64", 200_000);
    let reference = reg.reference("test/concurrent:1");
    test_client()
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push");
    let client = test_client();
    let fetched: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| client.pull(&reference, &dst, &PullOptions::default()).expect("pull")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("pull thread").fetched.len())
            .collect()
    });
    assert_eq!(
        fetched.iter().sum::<usize>(),
        3,
        "each blob downloaded once: {fetched:?}"
    );
    assert_complete(&dst, &img);
}
