//! The store's resumable ingest on its own: what survives, what is re-hashed, what is
//! discarded, and two writers of one blob.

use std::time::Duration;

use berth_image::digest::{Algorithm, Digest};
use berth_image::store::{BlobStore, StoreError};

fn data() -> (Vec<u8>, Digest) {
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let d = Digest::of_bytes(Algorithm::Sha256, &bytes);
    (bytes, d)
}

struct Broken;
impl std::io::Read for Broken {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("connection reset"))
    }
}

#[test]
fn interrupted_ingest_resumes_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bytes, d) = data();
    let size = Some(bytes.len() as u64);
    let store = BlobStore::open(dir.path()).expect("open");
    let mut ingest = store.resume_ingest(&d, size).expect("start");
    assert_eq!(ingest.offset(), 0);
    let err = ingest
        .append(std::io::Read::chain(&bytes[..100_000], Broken))
        .expect_err("broken");
    assert!(matches!(err, StoreError::Read { .. }), "{err}");
    // Committing a short blob fails and keeps what is there.
    let err = ingest.commit().expect_err("short");
    assert!(matches!(err, StoreError::SizeMismatch { actual: 100_000, .. }), "{err}");
    drop(store);

    let store = BlobStore::open(dir.path()).expect("reopen");
    assert!(store.list().expect("list").is_empty());
    let mut ingest = store.resume_ingest(&d, size).expect("resume");
    assert_eq!(ingest.offset(), 100_000, "re-hashed the kept bytes");
    assert_eq!(ingest.append(&bytes[100_000..]).expect("rest"), 200_000);
    assert_eq!(ingest.commit().expect("commit"), d);
    assert_eq!(store.verify_all().expect("verify").ok, vec![d.clone()]);
    assert!(!store.partial_path(&d).exists());
}

#[test]
fn wrong_or_oversized_content_is_discarded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("open");
    let (bytes, d) = data();
    let size = Some(bytes.len() as u64);
    let mut wrong = bytes.clone();
    wrong[5] ^= 1;
    let mut ingest = store.resume_ingest(&d, size).expect("start");
    ingest.append(wrong.as_slice()).expect("append");
    assert!(matches!(ingest.commit(), Err(StoreError::DigestMismatch { .. })));
    assert!(!store.partial_path(&d).exists(), "wrong bytes are not kept");

    let mut ingest = store.resume_ingest(&d, Some(10)).expect("start");
    assert!(matches!(
        ingest.append(bytes.as_slice()),
        Err(StoreError::SizeMismatch { .. })
    ));
    drop(ingest);
    assert!(!store.partial_path(&d).exists());
    // A kept file longer than the blob is worthless: resume starts from 0.
    std::fs::write(store.partial_path(&d), vec![0u8; bytes.len() + 1]).expect("write");
    assert_eq!(store.resume_ingest(&d, size).expect("resume").offset(), 0);
}

#[test]
fn second_writer_uses_a_private_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("open");
    let (bytes, d) = data();
    let size = Some(bytes.len() as u64);
    let mut first = store.resume_ingest(&d, size).expect("first");
    first.append(&bytes[..1000]).expect("append");
    // The first holds the partial file's lock: the second neither waits nor shares it.
    let mut second = store.resume_ingest(&d, size).expect("second");
    assert_eq!(second.offset(), 0);
    second.append(bytes.as_slice()).expect("append");
    assert_eq!(second.commit().expect("commit"), d);
    first.append(&bytes[1000..]).expect("append");
    assert_eq!(first.commit().expect("commit"), d);
    let report = store.verify_all().expect("verify");
    assert_eq!(report.ok, vec![d]);
    assert_eq!(std::fs::read_dir(dir.path().join("ingest")).expect("ls").count(), 0);
}

#[test]
fn old_partials_are_cleaned_up_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("open");
    let (bytes, d) = data();
    let mut ingest = store.resume_ingest(&d, None).expect("start");
    ingest.append(&bytes[..10]).expect("append");
    assert_eq!(store.cleanup_partials(Duration::ZERO).expect("cleanup"), 0, "locked");
    drop(ingest);
    assert_eq!(store.cleanup_ingest().expect("cleanup"), 0, "kept for resuming");
    assert_eq!(
        store.cleanup_partials(Duration::from_secs(3600)).expect("cleanup"),
        0,
        "recent"
    );
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(store.cleanup_partials(Duration::from_millis(1)).expect("cleanup"), 1);
    assert!(!store.partial_path(&d).exists());
}
