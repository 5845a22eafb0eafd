//! Resumable pulls: an interrupted blob download keeps its bytes in the store's ingest
//! directory, and the next pull asks only for the rest (`Range: bytes=N-`), falling back
//! to the whole blob when the registry does not do ranges or the kept bytes are damaged.

mod registry_util;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_image::digest::Digest;
use berth_image::registry::{BlobProgress, Client, PullOptions, PushOptions, OCI_MANIFEST};
use berth_image::store::BlobStore;
use registry_util::{ingest_leftovers, make_image, test_client, CountingProxy, FakeServer, Registry, Reply, TestImage};

const BIG: usize = 8 << 20;

/// A registry holding one image whose second layer is `BIG` bytes of noise.
fn registry_with_image(seed: &str) -> (Registry, tempfile::TempDir, TestImage) {
    let reg = Registry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("src store");
    let img = make_image(&src, seed, "amd64", BIG);
    test_client()
        .push(
            &reg.reference("resume/app:1"),
            &src,
            &img.manifest,
            &PushOptions::default(),
        )
        .expect("push");
    (reg, dir, img)
}

fn big_layer(img: &TestImage) -> (Digest, u64) {
    let d = img.layers[1].clone();
    let m: serde_json::Value = serde_json::from_slice(&img.manifest_bytes).expect("manifest");
    (d, m["layers"][1]["size"].as_u64().expect("size"))
}

/// Every blob of `img` is stored with the right content, and no partial file is left.
fn assert_complete(store: &BlobStore, img: &TestImage) {
    let report = store.verify_all().expect("verify");
    assert!(report.corrupt.is_empty(), "{:?}", report.corrupt);
    for d in img.blobs().iter().chain([&img.manifest]) {
        assert!(report.ok.contains(d), "{d} missing");
    }
    assert!(ingest_leftovers(store).is_empty(), "{:?}", ingest_leftovers(store));
}

/// Progress events per digest: (first `done` reported, `resumed_from`).
type Seen = Arc<Mutex<HashMap<Digest, BlobProgress>>>;

fn recording() -> (PullOptions, Seen) {
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    let options = PullOptions {
        platform: None,
        progress: Some(Arc::new(move |p: &BlobProgress| {
            seen2
                .lock()
                .expect("seen")
                .entry(p.digest.clone())
                .or_insert_with(|| p.clone());
        })),
    };
    (options, seen)
}

#[test]
fn pull_cut_mid_blob_resumes_with_a_range_request() {
    let (reg, _src_dir, img) = registry_with_image("cut");
    let (big, big_size) = big_layer(&img);
    let proxy = CountingProxy::start(&reg.addr);
    let reference = proxy.reference("resume/app:1");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path().join("dst")).expect("store");

    // The connection dies once half the big layer has gone through.
    proxy.budget.store(big_size / 2, Ordering::SeqCst);
    let err = test_client()
        .pull(&reference, &store, &PullOptions::default())
        .expect_err("pull through a cut connection");
    assert!(
        err.to_string().contains(&big.to_string()),
        "error names the blob: {err}"
    );
    assert!(!store.exists(&big).expect("exists"), "no partial blob is visible");
    let partial = store.partial_path(&big);
    let kept = std::fs::metadata(&partial).expect("partial download kept").len();
    assert!(kept > 0 && kept < big_size, "kept {kept} of {big_size}");

    // Reopening the store (a new process) keeps the partial download too.
    drop(store);
    let store = BlobStore::open(dir.path().join("dst")).expect("reopen");
    assert!(partial.exists(), "open does not remove a resumable download");

    proxy.budget.store(u64::MAX, Ordering::SeqCst);
    let before = proxy.down();
    let (options, seen) = recording();
    let pulled = test_client().pull(&reference, &store, &options).expect("resumed pull");
    let fetched = proxy.down() - before;
    assert!(pulled.fetched.contains(&big));
    assert!(
        fetched < big_size - kept / 2,
        "second pull moved {fetched} bytes for a {big_size}-byte layer of which {kept} were kept"
    );
    let first = seen.lock().expect("seen")[&big].clone();
    assert_eq!(first.resumed_from, kept, "progress says where the download resumed");
    assert_eq!(first.done, kept);
    assert_complete(&store, &img);
}

// ---- interruption by a killed process ----

const KILL_ROOT: &str = "BERTH_RESUME_KILL_ROOT";
const KILL_REF: &str = "BERTH_RESUME_KILL_REF";
const KILL_AT: &str = "BERTH_RESUME_KILL_AT";

/// Not a test on its own: the helper process `pull_killed_midway_resumes` spawns. It
/// pulls and SIGKILLs itself once the big layer has `KILL_AT` bytes.
#[test]
fn kill_helper() {
    let (Ok(root), Ok(reference), Ok(at)) = (
        std::env::var(KILL_ROOT),
        std::env::var(KILL_REF),
        std::env::var(KILL_AT),
    ) else {
        return;
    };
    let at: u64 = at.parse().expect("offset");
    let store = BlobStore::open(&root).expect("store");
    let options = PullOptions {
        platform: None,
        progress: Some(Arc::new(move |p: &BlobProgress| {
            if p.total as usize > BIG / 2 && p.done >= at {
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            }
        })),
    };
    let reference = berth_image::Reference::parse(&reference).expect("reference");
    let _ = test_client().pull(&reference, &store, &options);
    // Not reached when the kill happened; the parent checks the signal.
}

#[test]
fn pull_killed_midway_resumes() {
    let (reg, _src_dir, img) = registry_with_image("kill");
    let (big, big_size) = big_layer(&img);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("dst");
    let at = big_size * 3 / 5;
    let status = Command::new(std::env::current_exe().expect("current exe"))
        .args(["--exact", "kill_helper", "--nocapture", "--test-threads=1"])
        .env(KILL_ROOT, &root)
        .env(KILL_REF, reg.reference("resume/app:1").to_string())
        .env(KILL_AT, at.to_string())
        .status()
        .expect("run helper");
    assert_eq!(status.signal(), Some(9), "the helper must die by SIGKILL, got {status}");

    let store = BlobStore::open(&root).expect("reopen after the kill");
    assert!(!store.exists(&big).expect("exists"));
    let kept = std::fs::metadata(store.partial_path(&big)).expect("partial kept").len();
    assert!(kept > 0 && kept <= at, "kept {kept}, killed at {at}");
    let report = store.verify_all().expect("verify");
    assert!(report.corrupt.is_empty(), "{:?}", report.corrupt);

    let proxy = CountingProxy::start(&reg.addr);
    let (options, seen) = recording();
    test_client()
        .pull(&proxy.reference("resume/app:1"), &store, &options)
        .expect("resumed pull");
    assert!(
        proxy.down() < big_size - kept / 2,
        "second pull moved {} bytes; {kept} of {big_size} were kept",
        proxy.down()
    );
    assert_eq!(seen.lock().expect("seen")[&big].resumed_from, kept);
    assert_complete(&store, &img);
}

// ---- registries that do not resume, and damaged partial files ----

/// A fake registry serving `img` from `src`. Range requests get a 206 when `ranges`,
/// else the whole blob (200). The first GET of the big layer sends half and stalls.
/// Returns the server and the `Range` headers it received.
fn fake(src: BlobStore, img: TestImage, big: Digest, ranges: bool) -> (FakeServer, Arc<Mutex<Vec<String>>>) {
    let range_log: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = range_log.clone();
    let stalled = Arc::new(AtomicU64::new(0));
    let server = FakeServer::start(Arc::new(
        move |_: &str, path: &str, headers: &HashMap<String, String>| {
            if path.contains("/manifests/") {
                return Reply::ok(OCI_MANIFEST, img.manifest_bytes.clone());
            }
            let Some(d) = path.split("/blobs/").nth(1).and_then(|d| Digest::parse(d).ok()) else {
                return Reply::Full {
                    status: 404,
                    headers: vec![],
                    body: vec![],
                };
            };
            let bytes = std::fs::read(src.blob_path(&d)).expect("blob");
            if d == big && stalled.fetch_add(1, Ordering::SeqCst) == 0 {
                return Reply::Stall {
                    declared: bytes.len(),
                    body: bytes[..bytes.len() / 2].to_vec(),
                };
            }
            let range = headers.get("range").cloned();
            if let Some(r) = &range {
                log.lock().expect("log").push(r.clone());
            }
            let start = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<usize>().ok());
            match start.filter(|_| ranges) {
                Some(start) => Reply::Full {
                    status: 206,
                    headers: vec![(
                        "Content-Range".into(),
                        format!("bytes {start}-{}/{}", bytes.len() - 1, bytes.len()),
                    )],
                    body: bytes[start..].to_vec(),
                },
                None => Reply::ok("application/octet-stream", bytes),
            }
        },
    ));
    (server, range_log)
}

fn short_timeout_client() -> Client {
    Client::builder()
        .docker_config(None)
        .connect_timeout(Duration::from_secs(5))
        .response_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_millis(500))
        .build()
        .expect("client")
}

fn setup(seed: &str) -> (tempfile::TempDir, BlobStore, BlobStore, TestImage, Digest) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("src");
    let dst = BlobStore::open(dir.path().join("dst")).expect("dst");
    let img = make_image(&src, seed, "amd64", 1 << 20);
    let big = img.layers[1].clone();
    (dir, src, dst, img, big)
}

#[test]
fn registry_without_ranges_restarts_from_zero() {
    let (_dir, src, dst, img, big) = setup("norange");
    let (server, ranges) = fake(src, img.clone(), big.clone(), false);
    let reference = server.reference("x/y:1");
    short_timeout_client()
        .pull(&reference, &dst, &PullOptions::default())
        .expect_err("first pull stalls");
    assert!(std::fs::metadata(dst.partial_path(&big)).expect("partial").len() > 0);

    let (options, seen) = recording();
    short_timeout_client()
        .pull(&reference, &dst, &options)
        .expect("second pull");
    let asked = ranges.lock().expect("ranges").clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].starts_with("bytes=") && asked[0] != "bytes=0-", "{asked:?}");
    // The 200 answer was taken from byte 0, not appended to the kept half.
    let p = seen.lock().expect("seen")[&big].clone();
    assert_eq!((p.done, p.resumed_from), (0, 0), "{p:?}");
    assert_complete(&dst, &img);
}

#[test]
fn damaged_partial_download_is_fetched_again() {
    let (_dir, src, dst, img, big) = setup("damaged");
    let (server, ranges) = fake(src, img.clone(), big.clone(), true);
    let reference = server.reference("x/y:1");
    short_timeout_client()
        .pull(&reference, &dst, &PullOptions::default())
        .expect_err("first pull stalls");
    // Flip a byte of what was kept, as a crash of the machine might leave it.
    let partial = dst.partial_path(&big);
    let mut bytes = std::fs::read(&partial).expect("partial");
    assert!(!bytes.is_empty());
    bytes[10] ^= 0xff;
    std::fs::write(&partial, &bytes).expect("damage");

    short_timeout_client()
        .pull(&reference, &dst, &PullOptions::default())
        .expect("second pull recovers");
    let asked = ranges.lock().expect("ranges").clone();
    assert_eq!(
        asked,
        vec![format!("bytes={}-", bytes.len())],
        "resumed once, then whole"
    );
    assert_eq!(server.count(&format!("GET /v2/x/y/blobs/{big}")), 3);
    assert_complete(&dst, &img);
}
