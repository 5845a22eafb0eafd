//! Snapshots keyed by chainID, their metadata records and the overlay lowerdir string.

use std::fs;
use std::io::Write;

use berth_image::digest::{Algorithm, Digest};
use berth_image::snapshots::{chain_id, chain_ids, SnapshotError, Snapshots};

fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        b.append_data(&mut h, path, *data).expect("append");
    }
    let tar = b.into_inner().expect("finish");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&tar).expect("gzip");
    enc.finish().expect("gzip")
}

fn sha(s: &str) -> Digest {
    Digest::of_bytes(Algorithm::Sha256, s.as_bytes())
}

#[test]
fn chain_ids_follow_the_oci_spec() {
    let (a, b, c) = (sha("a"), sha("b"), sha("c"));
    let ids = chain_ids(&[a.clone(), b.clone(), c.clone()]);
    assert_eq!(ids[0], a, "bottom layer's chainID is its diffID");
    let ab = Digest::of_bytes(Algorithm::Sha256, format!("{a} {b}").as_bytes());
    assert_eq!(ids[1], ab);
    assert_eq!(
        ids[2],
        Digest::of_bytes(Algorithm::Sha256, format!("{ab} {c}").as_bytes())
    );
    assert_eq!(chain_id(Some(&ab), &c), ids[2]);
    assert!(chain_ids(&[]).is_empty());
}

#[test]
fn apply_record_and_lowerdir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snaps = Snapshots::open(dir.path()).expect("open");
    let l1 = layer(&[("a", b"1")]);
    let l2 = layer(&[("b", b"2")]);
    let s1 = snaps.apply_layer(None, &l1[..], None, None).expect("layer 1");
    assert_eq!(s1.chain_id, s1.diff_id);
    let s2 = snaps
        .apply_layer(Some(&s1.chain_id), &l2[..], None, Some(&s2_diff(&l2)))
        .expect("layer 2");
    assert_eq!(s2.chain_id, chain_id(Some(&s1.chain_id), &s2.diff_id));
    assert_eq!(s2.parent.as_ref(), Some(&s1.chain_id));
    assert_eq!(fs::read(snaps.path(&s2.chain_id).join("b")).expect("read"), b"2");
    assert_eq!(snaps.get(&s2.chain_id).expect("get"), Some(s2.clone()));

    let lower = snaps
        .lowerdir(&[s1.diff_id.clone(), s2.diff_id.clone()])
        .expect("lowerdir");
    let want = format!(
        "{}:{}",
        snaps.path(&s2.chain_id).display(),
        snaps.path(&s1.chain_id).display()
    );
    assert_eq!(lower, want, "top-most layer first");

    // Applying again is a no-op returning the recorded snapshot.
    assert_eq!(snaps.apply_layer(None, &l1[..], None, None).expect("again"), s1);
    assert!(matches!(
        snaps.lowerdir(&[s1.diff_id.clone(), sha("absent")]),
        Err(SnapshotError::Missing(_))
    ));

    // Records survive reopening; an unrecorded directory (a crash leftover) does not.
    drop(snaps);
    fs::create_dir(dir.path().join("snapshots").join(sha("crash").hex())).expect("mkdir");
    let snaps = Snapshots::open(dir.path()).expect("reopen");
    assert_eq!(snaps.get(&s2.chain_id).expect("get"), Some(s2));
    assert_eq!(fs::read_dir(dir.path().join("snapshots")).expect("ls").count(), 2);
}

fn s2_diff(gz: &[u8]) -> Digest {
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut raw).expect("gunzip");
    Digest::of_bytes(Algorithm::Sha256, &raw)
}

#[test]
fn wrong_diff_id_or_missing_parent_leave_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snaps = Snapshots::open(dir.path()).expect("open");
    let l1 = layer(&[("a", b"1")]);
    let err = snaps
        .apply_layer(None, &l1[..], None, Some(&sha("other")))
        .expect_err("mismatch");
    assert!(matches!(err, SnapshotError::DiffIdMismatch { .. }), "{err}");
    let err = snaps
        .apply_layer(Some(&sha("nope")), &l1[..], None, None)
        .expect_err("no parent");
    assert!(matches!(err, SnapshotError::MissingParent(_)), "{err}");
    assert_eq!(fs::read_dir(dir.path().join("snapshots")).expect("ls").count(), 0);
}
