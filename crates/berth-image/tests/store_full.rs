//! A full disk: the store on a small tmpfs. An ingest or pull that does not fit fails
//! with an error naming the blob and ENOSPC, leaves no partial or corrupt visible blob
//! (the store reopens and verifies), and works again once space is freed.
//!
//! Needs root (to mount); the tmpfs is unmounted when the test ends, failed or not.

mod registry_util;

use std::path::Path;

use berth_image::digest::{Algorithm, Digest};
use berth_image::registry::{PullOptions, PushOptions, RegistryError};
use berth_image::store::{BlobStore, StoreError};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use registry_util::{make_image, noise, test_client, Registry};

const MIB: usize = 1 << 20;

/// A tmpfs of `size_mib` mounted on a temp dir; unmounted (lazily, so an open file
/// cannot keep it) and removed on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size_mib: usize) -> Option<Tmpfs> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let options = format!("size={size_mib}m,mode=0700");
        mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options.as_str()),
        )
        .expect("mount tmpfs");
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Err(e) = umount2(self.dir.path(), MntFlags::MNT_DETACH) {
            eprintln!("unmounting {}: {e}", self.dir.path().display());
        }
    }
}

/// After a failure: reopening works, every visible blob verifies, `want` are all there
/// and nothing is left in the ingest directory.
fn assert_store_sound(root: &Path, want: &[&Digest]) -> BlobStore {
    let store = BlobStore::open(root).expect("reopen");
    let report = store.verify_all().expect("verify");
    assert!(report.corrupt.is_empty(), "corrupt blobs: {:?}", report.corrupt);
    assert_eq!(report.ok.len(), want.len(), "visible blobs: {:?}", report.ok);
    for d in want {
        assert!(report.ok.contains(d), "{d} missing");
    }
    let leftovers: Vec<_> = std::fs::read_dir(root.join("ingest")).expect("ingest").collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    store
}

fn assert_enospc(msg: &str, blob: &Digest) {
    assert!(msg.contains(&blob.to_string()), "error names the blob: {msg}");
    assert!(
        msg.contains("No space left on device"),
        "error says the disk is full: {msg}"
    );
}

#[test]
fn ingest_larger_than_the_disk() {
    let Some(fs) = Tmpfs::mount(8) else { return };
    let root = fs.path().join("store");
    let store = BlobStore::open(&root).expect("open");
    let filler = noise(1, 3 * MIB);
    let filler_d = store
        .ingest(None, Some(filler.len() as u64), filler.as_slice())
        .expect("filler");
    let big = noise(2, 6 * MIB);
    let big_d = Digest::of_bytes(Algorithm::Sha256, &big);

    // Plain ingest, and the resumable one downloads use.
    let err = store
        .ingest(Some(&big_d), Some(big.len() as u64), big.as_slice())
        .expect_err("does not fit");
    assert!(err.is_disk_full(), "{err}");
    assert_enospc(&err.to_string(), &big_d);
    let mut partial = store.resume_ingest(&big_d, Some(big.len() as u64)).expect("start");
    let err = partial.append(big.as_slice()).expect_err("does not fit");
    assert!(matches!(err, StoreError::BlobIo { .. }) && err.is_disk_full(), "{err}");
    assert_enospc(&err.to_string(), &big_d);
    drop(partial);
    drop(store);

    let store = assert_store_sound(&root, &[&filler_d]);
    store.delete(&filler_d).expect("free space");
    let got = store
        .ingest(Some(&big_d), Some(big.len() as u64), big.as_slice())
        .expect("fits now");
    assert_eq!(got, big_d);
    drop(store);
    assert_store_sound(&root, &[&big_d]);
}

#[test]
fn pull_larger_than_the_disk() {
    let Some(fs) = Tmpfs::mount(8) else { return };
    let reg = Registry::start();
    let src_dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(src_dir.path()).expect("src");
    let img = make_image(&src, "full", "amd64", 5 * MIB);
    let reference = reg.reference("full/app:1");
    test_client()
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push");

    let root = fs.path().join("store");
    let store = BlobStore::open(&root).expect("open");
    let filler = noise(3, 4 * MIB);
    let filler_d = store
        .ingest(None, Some(filler.len() as u64), filler.as_slice())
        .expect("filler");
    let err = test_client()
        .pull(&reference, &store, &PullOptions::default())
        .expect_err("the big layer does not fit");
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::Blob { .. }), "{msg}");
    assert_enospc(&msg, &img.layers[1]);
    drop(store);

    // The blobs that fit are whole; the layer that did not is neither visible nor kept.
    let store = BlobStore::open(&root).expect("reopen");
    let report = store.verify_all().expect("verify");
    assert!(report.corrupt.is_empty(), "{:?}", report.corrupt);
    assert!(!report.ok.contains(&img.layers[1]));
    assert!(!store.partial_path(&img.layers[1]).exists());

    store.delete(&filler_d).expect("free space");
    let pulled = test_client()
        .pull(&reference, &store, &PullOptions::default())
        .expect("pull after freeing space");
    assert_eq!(pulled.digest, img.manifest);
    drop(store);
    let mut want: Vec<&Digest> = img.layers.iter().collect();
    want.extend([&img.config, &img.manifest]);
    assert_store_sound(&root, &want);
}
