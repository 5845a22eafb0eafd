//! The client against misbehaving registries: a fake HTTP server (std::net, in
//! `registry_util`) that lies about content, hangs, fails or serves oversized manifests.

mod registry_util;

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_image::digest::Digest;
use berth_image::registry::{Client, PullOptions, RegistryError, OCI_MANIFEST};
use berth_image::store::BlobStore;
use registry_util::{ingest_leftovers, make_image, FakeServer, Reply, TestImage};

/// A source store holding one image, and a fresh empty destination store.
fn setup() -> (tempfile::TempDir, BlobStore, BlobStore, TestImage) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("src");
    let dst = BlobStore::open(dir.path().join("dst")).expect("dst");
    let img = make_image(&src, "faults", "amd64", 50_000);
    (dir, src, dst, img)
}

fn blob_bytes(store: &BlobStore, d: &Digest) -> Vec<u8> {
    std::fs::read(store.blob_path(d)).expect("read blob")
}

/// Serve `img` from `src` honestly, except where `tweak` returns a reply.
fn serve(
    src: BlobStore,
    img: TestImage,
    tweak: impl Fn(&str, &str) -> Option<Reply> + Send + Sync + 'static,
) -> FakeServer {
    FakeServer::start(Arc::new(move |method: &str, path: &str, _: &_| {
        if let Some(r) = tweak(method, path) {
            return r;
        }
        if path.contains("/manifests/") {
            return Reply::ok(OCI_MANIFEST, img.manifest_bytes.clone());
        }
        if let Some(d) = path.split("/blobs/").nth(1).and_then(|d| Digest::parse(d).ok()) {
            if let Ok(bytes) = std::fs::read(src.blob_path(&d)) {
                return Reply::ok("application/octet-stream", bytes);
            }
        }
        Reply::Full {
            status: 404,
            headers: vec![],
            body: br#"{"errors":[{"code":"NOT_FOUND","message":"nope"}]}"#.to_vec(),
        }
    }))
}

fn client_with_timeouts(ms: u64) -> Client {
    Client::builder()
        .docker_config(None)
        .connect_timeout(Duration::from_millis(ms))
        .response_timeout(Duration::from_millis(ms))
        .read_timeout(Duration::from_millis(ms))
        .build()
        .expect("client")
}

fn client() -> Client {
    client_with_timeouts(10_000)
}

#[test]
fn lying_blob_is_rejected_and_nothing_is_stored() {
    let (_dir, src, dst, img) = setup();
    let victim = img.layers[1].clone();
    let mut wrong = blob_bytes(&src, &victim);
    wrong[100] ^= 0xff;
    let needle = format!("/blobs/{victim}");
    let server = serve(src, img.clone(), move |_, path| {
        path.ends_with(&needle)
            .then(|| Reply::ok("application/octet-stream", wrong.clone()))
    });
    let err = client()
        .pull(&server.reference("x/y:1"), &dst, &PullOptions::default())
        .expect_err("a lying blob must fail");
    let msg = err.to_string();
    assert!(
        matches!(&err, RegistryError::Blob { digest, .. } if *digest == victim),
        "{msg}"
    );
    assert!(msg.contains(&victim.to_string()) && msg.contains(&server.addr), "{msg}");
    assert!(
        !dst.exists(&victim).expect("exists"),
        "the wrong content must not be stored"
    );
    assert!(
        !dst.exists(&img.manifest).expect("exists"),
        "no manifest without its blobs"
    );
    assert!(ingest_leftovers(&dst).is_empty(), "{:?}", ingest_leftovers(&dst));
}

#[test]
fn lying_manifest_is_rejected() {
    let (_dir, src, dst, img) = setup();
    let other = make_image(&src, "other", "amd64", 1_000);
    let other_bytes = other.manifest_bytes.clone();
    // Asked by digest for `img`, the server answers with another manifest.
    let server = serve(src, img.clone(), move |_, path| {
        path.contains("/manifests/sha256:")
            .then(|| Reply::ok(OCI_MANIFEST, other_bytes.clone()))
    });
    let by_digest = server.reference(&format!("x/y@{}", img.manifest));
    let err = client()
        .pull(&by_digest, &dst, &PullOptions::default())
        .expect_err("wrong manifest");
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::ManifestDigest { .. }), "{msg}");
    assert!(
        msg.contains(&img.manifest.to_string()) && msg.contains(&other.manifest.to_string()),
        "{msg}"
    );
    assert!(dst.list().expect("list").is_empty(), "nothing stored");
}

#[test]
fn wrong_docker_content_digest_header_is_rejected() {
    let (_dir, src, dst, img) = setup();
    let bytes = img.manifest_bytes.clone();
    let claimed = img.config.clone();
    let server = serve(src, img, move |_, path| {
        path.contains("/manifests/").then(|| Reply::Full {
            status: 200,
            headers: vec![
                ("Content-Type".into(), OCI_MANIFEST.into()),
                ("Docker-Content-Digest".into(), claimed.to_string()),
            ],
            body: bytes.clone(),
        })
    });
    let err = client()
        .pull(&server.reference("x/y:1"), &dst, &PullOptions::default())
        .expect_err("header mismatch");
    assert!(err.to_string().contains("Docker-Content-Digest"), "{err}");
}

#[test]
fn hanging_server_times_out() {
    let (_dir, src, dst, img) = setup();
    let server = serve(src, img, |_, path| path.contains("/manifests/").then_some(Reply::Hang));
    let started = Instant::now();
    let err = client_with_timeouts(300)
        .pull(&server.reference("x/y:1"), &dst, &PullOptions::default())
        .expect_err("must time out");
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::Timeout { .. }), "{msg}");
    assert!(
        msg.contains("timed out") && msg.contains("/v2/x/y/manifests/1"),
        "{msg}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn stalled_blob_body_times_out_and_nothing_is_visible() {
    let (_dir, src, dst, img) = setup();
    let victim = img.layers[1].clone();
    let bytes = blob_bytes(&src, &victim);
    let needle = format!("/blobs/{victim}");
    let server = serve(src, img, move |_, path| {
        path.ends_with(&needle).then(|| Reply::Stall {
            declared: bytes.len(),
            body: bytes[..bytes.len() / 2].to_vec(),
        })
    });
    let started = Instant::now();
    let err = client_with_timeouts(300)
        .pull(&server.reference("x/y:1"), &dst, &PullOptions::default())
        .expect_err("must time out");
    let msg = err.to_string();
    assert!(
        msg.contains(&victim.to_string()) && msg.to_lowercase().contains("timeout"),
        "{msg}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(!dst.exists(&victim).expect("exists"));
    // Only the resumable partial download of the stalled blob remains (registry_resume.rs).
    assert_eq!(ingest_leftovers(&dst), vec![dst.partial_path(&victim)]);
}

#[test]
fn server_errors_are_reported_with_url_and_code() {
    let (_dir, src, dst, img) = setup();
    let config = img.config.clone();
    let needle = format!("/blobs/{config}");
    let server = serve(src, img, move |_, path| {
        (path.contains("/manifests/broken") || path.ends_with(&needle)).then(|| Reply::Full {
            status: 500,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"errors":[{"code":"UNKNOWN","message":"disk on fire"}]}"#.to_vec(),
        })
    });
    let err = client()
        .pull(&server.reference("x/y:broken"), &dst, &PullOptions::default())
        .expect_err("500 on manifest");
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::Status { status: 500, .. }), "{msg}");
    assert!(
        msg.contains("HTTP 500") && msg.contains("disk on fire") && msg.contains("manifests/broken"),
        "{msg}"
    );
    let err = client()
        .pull(&server.reference("x/y:ok"), &dst, &PullOptions::default())
        .expect_err("500 on a blob");
    let msg = err.to_string();
    assert!(msg.contains("HTTP 500") && msg.contains(&config.to_string()), "{msg}");
}

#[test]
fn oversized_manifest_is_refused() {
    let (_dir, src, dst, img) = setup();
    let server = serve(src, img, |_, path| {
        path.contains("/manifests/")
            .then(|| Reply::ok(OCI_MANIFEST, vec![b' '; 4 * 1024 * 1024 + 1]))
    });
    let err = client()
        .pull(&server.reference("x/y:big"), &dst, &PullOptions::default())
        .expect_err("too large");
    assert!(matches!(err, RegistryError::ManifestTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("x/y:big"), "{err}");
}

#[test]
fn one_download_per_digest_across_threads() {
    let (_dir, src, dst, img) = setup();
    // A manifest naming the same layer twice, pulled by three threads at once.
    let mut manifest: serde_json::Value = serde_json::from_slice(&img.manifest_bytes).expect("json");
    let layer = manifest["layers"][1].clone();
    manifest["layers"] = serde_json::json!([layer.clone(), layer]);
    let bytes = serde_json::to_vec(&manifest).expect("json");
    let server = serve(src, img.clone(), move |_, path| {
        if path.contains("/blobs/") {
            // Slow blobs, so that the threads overlap.
            std::thread::sleep(Duration::from_millis(150));
            return None;
        }
        path.contains("/manifests/")
            .then(|| Reply::ok(OCI_MANIFEST, bytes.clone()))
    });
    let client = client();
    let reference = server.reference("x/dup:1");
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| client.pull(&reference, &dst, &PullOptions::default()).expect("pull"));
        }
    });
    assert_eq!(
        server.count(&format!("GET /v2/x/dup/blobs/{}", img.layers[1])),
        1,
        "{:?}",
        server.requests()
    );
    assert_eq!(server.count(&format!("GET /v2/x/dup/blobs/{}", img.config)), 1);
    assert_eq!(server.count("/blobs/"), 2);
}
