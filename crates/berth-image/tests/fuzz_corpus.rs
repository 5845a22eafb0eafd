//! Replays the checked-in fuzz corpora (`fuzz/corpus/<target>/`) through the very code the
//! cargo-fuzz targets run (`fuzz/src/entry.rs`, included below), without libFuzzer: no input
//! may panic; errors are expected. See `fuzz/README.md`.
//!
//! `BERTH_WRITE_FUZZ_SEEDS=1 cargo test -p berth-image --test fuzz_corpus -- --ignored` writes
//! the hand-made seed inputs (valid manifests, configs, layers, archives) into the corpora.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use berth_image::archive;
use berth_image::digest::{Algorithm, Digest};
use berth_image::images::ImageStore;
use berth_image::manifest;
use berth_image::Reference;

#[path = "../../../fuzz/src/entry.rs"]
mod entry;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Every file of a target's corpus, run through `run`; returns how many there were.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading corpus {dir:?}: {e}"))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for file in &files {
        let data = fs::read(file).unwrap_or_else(|e| panic!("reading {file:?}: {e}"));
        if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("<non-string panic>");
            panic!("{target} corpus input {file:?} panicked: {msg}");
        }
    }
    files.len()
}

#[test]
fn manifest_corpus_replays_without_panics() {
    assert!(replay("manifest", entry::manifest) > 0, "empty manifest corpus");
}

#[test]
fn unpack_corpus_replays_without_panics() {
    assert!(replay("unpack", entry::unpack) > 0, "empty unpack corpus");
}

#[test]
fn archive_load_corpus_replays_without_panics() {
    assert!(
        replay("archive_load", entry::archive_load) > 0,
        "empty archive_load corpus"
    );
}

// ---- seed generation (run by hand, see the module docs) ----

fn sha(data: &[u8]) -> String {
    Digest::of_bytes(Algorithm::Sha256, data).to_string()
}

fn json(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec_pretty(&v).expect("json")
}

fn manifest_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let config = json(serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [sha(b"a"), sha(b"b")]},
        "history": [{"created_by": "x"}],
    }));
    let docker_config = json(serde_json::json!({
        "architecture": "arm64",
        "variant": "v8",
        "os": "linux",
        "container_config": {"Cmd": ["sh"]},
        "docker_version": "20.10",
        "rootfs": {"type": "layers", "diff_ids": [sha(b"a")]},
    }));
    let layer = |mt: &str, d: &[u8]| serde_json::json!({"mediaType": mt, "digest": sha(d), "size": d.len()});
    let oci_manifest = json(serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": manifest::OCI_CONFIG, "digest": sha(&config), "size": config.len()},
        "layers": [layer(manifest::OCI_LAYER_GZIP, b"a"), layer(manifest::OCI_LAYER_ZSTD, b"b")],
        "annotations": {"org.opencontainers.image.ref.name": "1.0"},
    }));
    let unlabelled = json(serde_json::json!({
        "schemaVersion": 2,
        "config": {"mediaType": manifest::OCI_CONFIG, "digest": sha(&config), "size": config.len()},
        "layers": [layer(manifest::OCI_LAYER_TAR, b"a")],
    }));
    let docker_manifest = json(serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::DOCKER_MANIFEST,
        "config": {"mediaType": manifest::DOCKER_CONFIG, "digest": sha(&docker_config), "size": docker_config.len()},
        "layers": [layer(manifest::DOCKER_LAYER_GZIP, b"a")],
    }));
    let platform = |arch: &str, variant: Option<&str>| {
        let mut p = serde_json::json!({"architecture": arch, "os": "linux"});
        if let Some(v) = variant {
            p["variant"] = v.into();
        }
        p
    };
    let oci_index = json(serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": [
            {"mediaType": manifest::OCI_MANIFEST, "digest": sha(&oci_manifest), "size": oci_manifest.len(),
             "platform": platform("amd64", None)},
            {"mediaType": manifest::OCI_MANIFEST, "digest": sha(&unlabelled), "size": unlabelled.len(),
             "platform": platform("arm", Some("v7"))},
        ],
    }));
    let docker_list = json(serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::DOCKER_MANIFEST_LIST,
        "manifests": [
            {"mediaType": manifest::DOCKER_MANIFEST, "digest": sha(&docker_manifest), "size": docker_manifest.len(),
             "platform": platform("arm64", Some("v8"))},
        ],
    }));
    let schema1 = json(serde_json::json!({
        "schemaVersion": 1, "name": "library/busybox", "tag": "latest",
        "fsLayers": [{"blobSum": sha(b"a")}],
    }));
    vec![
        ("oci-config.json", config),
        ("docker-config.json", docker_config),
        ("oci-manifest.json", oci_manifest),
        ("oci-manifest-unlabelled.json", unlabelled),
        ("docker-manifest.json", docker_manifest),
        ("oci-index.json", oci_index),
        ("docker-manifest-list.json", docker_list),
        ("docker-schema1.json", schema1),
        ("reference-1", b"busybox".to_vec()),
        ("reference-2", b"localhost:5000/a/b_c-d:v1.2".to_vec()),
        ("reference-3", format!("ghcr.io/x/y:t@{}", sha(b"z")).into_bytes()),
        ("platform", b"linux/arm64/v8".to_vec()),
    ]
}

/// A tar written header by header (GNU headers, raw names), so seeds can carry anything.
fn tar_of(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(if *kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        if !link.is_empty() {
            h.set_link_name(link).expect("link name");
        }
        b.append_data(&mut h, path, *data).expect("append");
    }
    b.into_inner().expect("finish")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).expect("zstd")
}

fn layer_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use tar::EntryType::{Directory as D, Link as H, Regular as F, Symlink as S};
    let long_name = format!("usr/{}/file", "d".repeat(120));
    let basic = tar_of(&[
        ("etc/", D, "", b""),
        ("etc/hostname", F, "", b"berth\n"),
        ("bin/", D, "", b""),
        ("bin/busybox", F, "", b"\x7fELF"),
        ("bin/sh", S, "busybox", b""),
        ("bin/ls", H, "bin/busybox", b""),
        ("lib", S, "/usr/lib", b""),
        (&long_name, F, "", b"gnu long name"),
    ]);
    let whiteouts = tar_of(&[
        ("etc/", D, "", b""),
        ("etc/.wh.hostname", F, "", b""),
        ("var/", D, "", b""),
        ("var/.wh..wh..opq", F, "", b""),
        ("var/new", F, "", b"x"),
        (".wh..wh.plnk/", D, "", b""),
    ]);
    let mut pax = tar::Builder::new(Vec::new());
    pax.append_pax_extensions([
        ("SCHILY.xattr.user.k", b"v".as_slice()),
        ("path", b"long/pax/name".as_slice()),
    ])
    .expect("pax");
    let mut h = tar::Header::new_ustar();
    h.set_size(1);
    h.set_mode(0o600);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1);
    pax.append_data(&mut h, "short", b"y".as_slice()).expect("pax entry");
    let pax = pax.into_inner().expect("pax finish");
    let mut dev = tar::Header::new_gnu();
    dev.set_entry_type(tar::EntryType::Fifo);
    dev.set_mode(0o644);
    dev.set_uid(0);
    dev.set_gid(0);
    dev.set_size(0);
    let mut devs = tar::Builder::new(Vec::new());
    devs.append_data(&mut dev, "fifo", [].as_slice()).expect("fifo");
    dev.set_entry_type(tar::EntryType::Char);
    dev.set_device_major(1).expect("major");
    dev.set_device_minor(3).expect("minor");
    devs.append_data(&mut dev, "null", [].as_slice()).expect("char device");
    let devs = devs.into_inner().expect("devs");
    let escape = tar_of(&[("evil", S, "/", b""), ("evil/etc/passwd", F, "", b"x")]);
    vec![
        ("basic.tar", basic.clone()),
        ("basic.tar.gz", gzip(&basic)),
        ("basic.tar.zst", zstd(&basic)),
        ("whiteouts.tar", whiteouts.clone()),
        ("whiteouts.tar.gz", gzip(&whiteouts)),
        ("pax.tar", pax),
        ("fifo.tar", devs),
        ("symlink-escape.tar", escape),
        ("empty.tar", vec![0; 1024]),
    ]
}

fn archive_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use tar::EntryType::{Directory as D, Regular as F, Symlink as S};
    let rootfs = tar_of(&[("bin/", D, "", b""), ("bin/sh", F, "", b"#!"), ("sbin", S, "bin", b"")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path().join("store")).expect("open store");
    let name = Reference::parse("fuzz/seed:1").expect("reference");
    archive::import(&store, rootfs.as_slice(), Some(&name)).expect("import");
    let mut saved = Vec::new();
    archive::save(&store, &["fuzz/seed:1"], &mut saved).expect("save");
    vec![("rootfs.tar", rootfs), ("saved.tar", saved)]
}

#[test]
#[ignore = "writes seed inputs into fuzz/corpus; run by hand"]
fn write_seed_corpora() {
    if std::env::var_os("BERTH_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    for (target, seeds) in [
        ("manifest", manifest_seeds()),
        ("unpack", layer_seeds()),
        ("archive_load", archive_seeds()),
    ] {
        let dir = corpus_dir(target);
        fs::create_dir_all(&dir).expect("create corpus dir");
        for (name, data) in seeds {
            fs::write(dir.join(format!("seed-{name}")), data).expect("write seed");
        }
    }
}
