//! Content store tests, including a crash test that SIGKILLs a helper process mid-ingest.

use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use berth_image::digest::{Algorithm, Digest, Hasher};
use berth_image::store::{BlobStore, StoreError};

/// Deterministic pseudo-random bytes (xorshift), generated on the fly so tests can stream
/// large blobs without holding them.
struct Pattern {
    state: u64,
    left: u64,
}

fn pattern(seed: u64, len: u64) -> Pattern {
    Pattern {
        state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        left: len,
    }
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for b in &mut buf[..n] {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            *b = self.state as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn digest_of(mut r: impl Read, algo: Algorithm) -> Digest {
    let mut h = Hasher::new(algo);
    io::copy(&mut r, &mut h).expect("hash");
    h.finish()
}

fn ingest_dir_entries(root: &Path) -> usize {
    fs::read_dir(root.join("ingest")).expect("read ingest").count()
}

fn assert_nothing_visible(store: &BlobStore) {
    assert_eq!(store.list().expect("list"), vec![], "no blob may be visible");
    assert_eq!(ingest_dir_entries(store.root()), 0, "no temp file may be left");
}

#[test]
fn ingest_open_exists_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("open");
    let data = b"hello blob".to_vec();
    let d = store.ingest(None, Some(data.len() as u64), &data[..]).expect("ingest");
    assert_eq!(d, Digest::of_bytes(Algorithm::Sha256, &data));
    assert!(store.exists(&d).expect("exists"));
    assert_eq!(store.blob_path(&d), dir.path().join("blobs/sha256").join(d.hex()));
    let mut got = Vec::new();
    store
        .open_blob(&d)
        .expect("open blob")
        .read_to_end(&mut got)
        .expect("read");
    assert_eq!(got, data);

    // sha512 when the expected digest says so.
    let d512 = Digest::of_bytes(Algorithm::Sha512, &data);
    assert_eq!(store.ingest(Some(&d512), None, &data[..]).expect("ingest 512"), d512);
    assert!(dir.path().join("blobs/sha512").join(d512.hex()).is_file());

    // Already present: not read again (an empty reader would otherwise mismatch).
    assert_eq!(store.ingest(Some(&d), None, io::empty()).expect("dedup"), d);

    store.delete(&d).expect("delete");
    assert!(!store.exists(&d).expect("exists"));
    assert!(matches!(store.open_blob(&d), Err(StoreError::NotFound { .. })));
    assert!(matches!(store.delete(&d), Err(StoreError::NotFound { .. })));
    assert_eq!(ingest_dir_entries(dir.path()), 0);
}

#[test]
fn wrong_content_is_rejected_and_never_visible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("open");
    let data = vec![7u8; 1 << 20];
    let right = Digest::of_bytes(Algorithm::Sha256, &data);
    let wrong = Digest::of_bytes(Algorithm::Sha256, b"other");

    let err = store
        .ingest(Some(&wrong), None, &data[..])
        .expect_err("digest mismatch");
    assert!(
        matches!(&err, StoreError::DigestMismatch { actual, .. } if *actual == right),
        "{err}"
    );
    assert!(
        err.to_string().contains(&wrong.to_string()),
        "error names the blob: {err}"
    );
    assert_nothing_visible(&store);

    // Truncated stream: fewer bytes than announced.
    let err = store
        .ingest(Some(&right), Some(data.len() as u64), &data[..data.len() - 1])
        .expect_err("truncated");
    assert!(matches!(err, StoreError::SizeMismatch { actual, .. } if actual == data.len() as u64 - 1));
    assert!(err.to_string().contains(&right.to_string()));
    assert_nothing_visible(&store);

    // Longer than announced: stopped without storing the rest.
    let err = store.ingest(None, Some(10), &data[..]).expect_err("too long");
    assert!(matches!(err, StoreError::SizeMismatch { expected: 10, .. }));
    assert_nothing_visible(&store);

    // A reader failing midway.
    let failing = (&data[..1000]).chain(FailingReader);
    let err = store.ingest(Some(&right), None, failing).expect_err("read error");
    assert!(matches!(err, StoreError::Read { .. }), "{err}");
    assert_nothing_visible(&store);

    // Size given for an already-stored blob must match too.
    store.ingest(Some(&right), None, &data[..]).expect("ingest");
    assert!(matches!(
        store.ingest(Some(&right), Some(3), io::empty()),
        Err(StoreError::SizeMismatch { .. })
    ));
}

struct FailingReader;
impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::other("network went away"))
    }
}

#[test]
fn concurrent_ingest_of_the_same_blob() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(BlobStore::open(dir.path()).expect("open"));
    const LEN: u64 = 8 << 20;
    let want = digest_of(pattern(42, LEN), Algorithm::Sha256);
    for expected in [Some(want.clone()), None] {
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (store, barrier, expected) = (store.clone(), barrier.clone(), expected.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.ingest(expected.as_ref(), Some(LEN), pattern(42, LEN))
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().expect("thread").expect("ingest"), want);
        }
        let report = store.verify_all().expect("verify");
        assert_eq!(report.ok, vec![want.clone()]);
        assert!(report.corrupt.is_empty());
        assert_eq!(ingest_dir_entries(dir.path()), 0);
        store.delete(&want).expect("delete");
    }
}

#[test]
fn verify_all_reports_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("open");
    let good = store.ingest(None, None, &b"good"[..]).expect("ingest");
    let bad = store.ingest(None, None, &b"bad"[..]).expect("ingest");
    fs::write(store.blob_path(&bad), b"flipped").expect("corrupt it");
    fs::write(dir.path().join("blobs/sha256/not-a-digest"), b"x").expect("stray file");
    let report = store.verify_all().expect("verify");
    assert_eq!(report.ok, vec![good]);
    assert_eq!(report.corrupt.len(), 2);
    assert!(report.corrupt.iter().any(|c| c.path == store.blob_path(&bad)));
}

#[test]
fn cleanup_spares_live_ingests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("open");
    let dead = dir.path().join("ingest/123-0-0.tmp");
    fs::write(&dead, b"leftover").expect("write");
    let live = dir.path().join("ingest/456-0-0.tmp");
    let live_file = fs::File::create(&live).expect("create");
    live_file.lock().expect("lock");
    assert_eq!(store.cleanup_ingest().expect("cleanup"), 1);
    assert!(!dead.exists());
    assert!(live.exists(), "a locked (in-progress) ingest is left alone");
    drop(live_file);
    assert_eq!(BlobStore::open(dir.path()).map(|_| ()).ok(), Some(()));
    assert!(!live.exists(), "reopening removes it once its owner is gone");
}

// ---- crash test ----

const CRASH_ROOT: &str = "BERTH_IMAGE_CRASH_ROOT";
const CRASH_AT: &str = "BERTH_IMAGE_CRASH_AT";
const CRASH_DIGEST: &str = "BERTH_IMAGE_CRASH_DIGEST";
const BIG: u64 = 16 << 20;
const SMALL: u64 = 100_000;

/// Hands out the pattern and SIGKILLs its own process once `kill_at` bytes are out.
struct KillingReader {
    inner: Pattern,
    pos: u64,
    kill_at: u64,
}

impl Read for KillingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.kill_at {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        let room = (self.kill_at - self.pos).clamp(1, buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Not a test on its own: the body of the helper process the crash test spawns.
#[test]
fn crash_helper() {
    let (Ok(root), Ok(at)) = (std::env::var(CRASH_ROOT), std::env::var(CRASH_AT)) else {
        return;
    };
    let kill_at: u64 = at.parse().expect("offset");
    let store = BlobStore::open(&root).expect("open");
    store
        .ingest(None, Some(SMALL), pattern(1, SMALL))
        .expect("small ingest");
    let want = Digest::parse(&std::env::var(CRASH_DIGEST).expect("digest")).expect("digest");
    let reader = KillingReader {
        inner: pattern(2, BIG),
        pos: 0,
        kill_at,
    };
    store.ingest(Some(&want), Some(BIG), reader).expect("big ingest");
    if kill_at == u64::MAX {
        // Endless ingests until the parent kills us at a moment of its choosing.
        for seed in 10.. {
            store.ingest(None, None, pattern(seed, 1 << 20)).expect("loop ingest");
        }
    }
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
}

fn run_helper(root: &Path, big: &Digest, kill_at: u64, kill_after: Option<Duration>) -> Duration {
    let start = Instant::now();
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .args(["--exact", "crash_helper", "--nocapture", "--test-threads=1"])
        .env(CRASH_ROOT, root)
        .env(CRASH_AT, kill_at.to_string())
        .env(CRASH_DIGEST, big.to_string())
        .spawn()
        .expect("spawn helper");
    if let Some(after) = kill_after {
        std::thread::sleep(after);
        child.kill().expect("kill helper");
    }
    let status = child.wait().expect("wait helper");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "helper must die by SIGKILL, got {status}");
    start.elapsed()
}

fn check_after_crash(root: &Path, big: &Digest, big_visible: Option<bool>) {
    let store = BlobStore::open(root).expect("reopen after crash");
    assert_eq!(
        ingest_dir_entries(root),
        0,
        "crashed ingest leftovers are cleaned at open"
    );
    let report = store.verify_all().expect("verify");
    assert!(
        report.corrupt.is_empty(),
        "corrupt blobs after crash: {:?}",
        report.corrupt
    );
    let small = digest_of(pattern(1, SMALL), Algorithm::Sha256);
    assert!(report.ok.contains(&small), "completed blob survives");
    if let Some(visible) = big_visible {
        assert_eq!(report.ok.contains(big), visible, "big blob visibility");
    }
    for d in &report.ok {
        let len = fs::metadata(store.blob_path(d)).expect("stat").len();
        assert!(
            len == SMALL || len == BIG || len == 1 << 20,
            "no partial blob: {d} has {len} bytes"
        );
    }
}

#[test]
fn crash_during_ingest_leaves_only_intact_blobs() {
    let offsets = [0, 1, 4095, 4096, 300_000, BIG / 2, BIG - 1, BIG, BIG + 1];
    let mut timings = Vec::new();
    let big = digest_of(pattern(2, BIG), Algorithm::Sha256);
    for &at in &offsets {
        let dir = tempfile::tempdir().expect("tempdir");
        let took = run_helper(dir.path(), &big, at, None);
        // Killed at BIG: every byte written but EOF not yet seen, so not visible.
        check_after_crash(dir.path(), &big, Some(at > BIG));
        timings.push(format!("offset {at}: {took:?}"));
    }
    // Kills from outside at arbitrary moments (during write, fsync or rename).
    for ms in [60, 200, 350, 600, 1000, 1500] {
        let dir = tempfile::tempdir().expect("tempdir");
        let took = run_helper(dir.path(), &big, u64::MAX, Some(Duration::from_millis(ms)));
        let small_done = dir
            .path()
            .join("blobs/sha256")
            .read_dir()
            .map(|r| r.count())
            .unwrap_or(0)
            > 0;
        if small_done {
            check_after_crash(dir.path(), &big, None);
        }
        timings.push(format!("kill after {ms}ms: {took:?} (first blob done: {small_done})"));
    }
    eprintln!("crash test timings:\n  {}", timings.join("\n  "));
}
