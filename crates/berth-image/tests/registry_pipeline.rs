//! `Client::pull_and_unpack`: layers unpacked into snapshots while they download.

mod registry_util;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_image::digest::Digest;
use berth_image::registry::{Client, PullOptions, PushOptions, RegistryError, OCI_MANIFEST};
use berth_image::snapshots::{self, Snapshots};
use berth_image::store::BlobStore;
use registry_util::{make_image, test_client, FakeServer, Registry, Reply, TestImage};

/// A blob store and snapshots sharing one root, as the image store has them.
struct Stores {
    _dir: tempfile::TempDir,
    blobs: BlobStore,
    snapshots: Snapshots,
}

fn stores() -> Stores {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    Stores {
        blobs: BlobStore::open(&root).expect("blobs"),
        snapshots: Snapshots::open(&root).expect("snapshots"),
        _dir: dir,
    }
}

fn diff_ids(store: &BlobStore, img: &TestImage) -> Vec<Digest> {
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.blob_path(&img.config)).expect("config")).expect("json");
    config["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .iter()
        .map(|d| Digest::parse(d.as_str().expect("str")).expect("digest"))
        .collect()
}

/// The image's two layers are complete snapshots with the files `make_image` put there.
fn assert_unpacked(s: &Stores, img: &TestImage, seed: &str, big: usize) -> Vec<Digest> {
    let chains = snapshots::chain_ids(&diff_ids(&s.blobs, img));
    for c in &chains {
        assert!(s.snapshots.get(c).expect("get").is_some(), "snapshot {c} missing");
    }
    let hello = std::fs::read_to_string(s.snapshots.path(&chains[0]).join("hello.txt")).expect("hello");
    assert_eq!(hello, format!("hello from {seed}\n"));
    let top = s.snapshots.path(&chains[1]);
    assert_eq!(
        std::fs::metadata(top.join("data/noise.bin")).expect("noise").len(),
        big as u64
    );
    assert_eq!(std::fs::read_to_string(top.join("data/seed")).expect("seed"), seed);
    let report = s.blobs.verify_all().expect("verify");
    assert!(report.corrupt.is_empty(), "{:?}", report.corrupt);
    for d in img.blobs().iter().chain([&img.manifest]) {
        assert!(report.ok.contains(d), "{d} missing");
    }
    chains
}

#[test]
fn pulls_and_unpacks_then_reuses() {
    let reg = Registry::start();
    let src_dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(src_dir.path()).expect("src");
    let big = 3 << 20;
    let img = make_image(&src, "pipeline", "amd64", big);
    let reference = reg.reference("pipe/app:1");
    test_client()
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push");

    let s = stores();
    let c = test_client();
    let done = c
        .pull_and_unpack(&reference, &s.blobs, &s.snapshots, &PullOptions::default())
        .expect("pull and unpack");
    assert_eq!(done.pulled.digest, img.manifest);
    assert_eq!(done.pulled.fetched, img.blobs());
    assert_eq!(done.unpacked, img.layers);
    let chains = assert_unpacked(&s, &img, "pipeline", big);
    assert_eq!(done.chain_ids, chains);

    // Everything there: nothing fetched, nothing unpacked.
    let again = c
        .pull_and_unpack(&reference, &s.blobs, &s.snapshots, &PullOptions::default())
        .expect("again");
    assert!(again.pulled.fetched.is_empty() && again.unpacked.is_empty());

    // Blobs stored but a snapshot gone: unpacked from the store, nothing downloaded.
    s.snapshots.remove(&chains[1]).expect("remove snapshot");
    let third = c
        .pull_and_unpack(&reference, &s.blobs, &s.snapshots, &PullOptions::default())
        .expect("third");
    assert!(third.pulled.fetched.is_empty());
    assert_eq!(third.unpacked, vec![img.layers[1].clone()]);
    assert_unpacked(&s, &img, "pipeline", big);
}

/// A fake registry serving `img`; `slow` blobs trickle out (16 bytes every 50 ms).
fn serve(src: BlobStore, img: TestImage, slow: Vec<Digest>, corrupt: Option<Digest>) -> FakeServer {
    FakeServer::start(Arc::new(move |_: &str, path: &str, _: &HashMap<String, String>| {
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
        let mut body = std::fs::read(src.blob_path(&d)).expect("blob");
        if corrupt.as_ref() == Some(&d) {
            let at = body.len() - 100;
            body[at] ^= 0xff;
        }
        if slow.contains(&d) {
            return Reply::Slow {
                body,
                chunk: 16,
                pause: Duration::from_millis(50),
            };
        }
        Reply::ok("application/octet-stream", body)
    }))
}

#[test]
fn later_layers_download_ahead_of_unpacking() {
    // The bottom layer trickles in while the big top layer arrives at once: the top
    // layer's download must not wait for its turn (its stream outgrows the channel),
    // and its unpacking then reads the rest from the store.
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("src");
    let big = 4 << 20;
    let img = make_image(&src, "ahead", "amd64", big);
    let server = serve(src, img.clone(), vec![img.layers[0].clone()], None);
    let s = stores();
    let done = test_client()
        .pull_and_unpack(
            &server.reference("x/y:1"),
            &s.blobs,
            &s.snapshots,
            &PullOptions::default(),
        )
        .expect("pull and unpack");
    assert_eq!(done.unpacked, img.layers);
    assert_unpacked(&s, &img, "ahead", big);
}

#[test]
fn a_lying_registry_leaves_no_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("src");
    let img = make_image(&src, "liar", "amd64", 1 << 20);
    let server = serve(src, img.clone(), vec![], Some(img.layers[1].clone()));
    let s = stores();
    let err = Client::builder()
        .docker_config(None)
        .build()
        .expect("client")
        .pull_and_unpack(
            &server.reference("x/y:1"),
            &s.blobs,
            &s.snapshots,
            &PullOptions::default(),
        )
        .expect_err("corrupt layer");
    let msg = err.to_string();
    assert!(
        matches!(&err, RegistryError::Blob { .. } | RegistryError::Unpack { .. }),
        "{msg}"
    );
    assert!(msg.contains(&img.layers[1].to_string()), "{msg}");
    let chains = snapshots::chain_ids(&diff_ids(&s.blobs, &img));
    assert!(
        s.snapshots.get(&chains[1]).expect("get").is_none(),
        "no snapshot of the bad layer"
    );
    assert!(!s.blobs.exists(&img.layers[1]).expect("exists"));
    // Nothing half-made is left in the snapshots directory either.
    let dirs: Vec<_> = std::fs::read_dir(s.blobs.root().join("snapshots"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(dirs.len() <= 1, "{dirs:?}");
}
