//! A container's diff, commit and export, on real overlay mounts (made in a private mount
//! namespace of the test's own thread, so nothing leaks to the host even on a panic).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_image::containers::{CommitOptions, ConfigChanges, ContainerError};
use berth_image::digest::{Algorithm, Digest};
use berth_image::images::{ImageStore, RootfsMount};
use berth_image::overlay::{ChangeKind, OverlayError};
use berth_image::snapshots::chain_ids;
use berth_image::{manifest, Reference};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::{major, makedev, minor, mknod, Mode, SFlag};

enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Sym(&'a str, &'a str),
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).expect("dir");
            }
            E::File(p, data) => {
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).expect("file");
            }
            E::Sym(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).expect("symlink");
            }
        }
    }
    b.into_inner().expect("tar")
}

/// A two-layer image "base": the second layer deletes data/b and adds opt/y.
fn base_image(store: &ImageStore) {
    let l1 = layer(&[
        E::Dir("etc"),
        E::File("etc/passwd", b"root:x:0:0"),
        E::File("etc/hosts", b"127.0.0.1 localhost"),
        E::Dir("data"),
        E::File("data/a", b"a"),
        E::File("data/b", b"b"),
        E::Dir("data/sub"),
        E::File("data/sub/c", b"c"),
        E::Dir("keep"),
        E::File("keep/x", b"x"),
        E::Sym("link", "etc/passwd"),
    ]);
    let l2 = layer(&[
        E::Dir("data"),
        E::File("data/.wh.b", b""),
        E::Dir("opt"),
        E::File("opt/y", b"y"),
    ]);
    let config = serde_json::json!({
        "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "history": [
            {"created": "2024-01-02T03:04:05Z", "created_by": "ADD base"},
            {"created": "2024-01-02T03:04:06Z", "created_by": "RUN tweak"},
        ],
    });
    let m = store_image(store, &[l1, l2], config);
    store.set_image(Some(&reference("base")), &m).expect("name base");
}

fn reference(s: &str) -> Reference {
    Reference::parse(s).expect("reference")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// Store an image of the given uncompressed layers (gzip-stored); returns its manifest.
fn store_image(store: &ImageStore, layers: &[Vec<u8>], extra: serde_json::Value) -> Digest {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in layers {
        let gz = gzip(tar);
        let d = store.blobs().ingest(None, None, gz.as_slice()).expect("ingest layer");
        descs.push(
            serde_json::json!({"mediaType": manifest::OCI_LAYER_GZIP, "digest": d.to_string(), "size": gz.len()}),
        );
        diff_ids.push(Digest::of_bytes(Algorithm::Sha256, tar).to_string());
    }
    let mut config = serde_json::json!({
        "architecture": manifest::Platform::host().architecture,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let config = serde_json::to_vec(&config).expect("json");
    let cd = store.blobs().ingest(None, None, config.as_slice()).expect("config");
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": manifest::OCI_CONFIG, "digest": cd.to_string(), "size": config.len()},
        "layers": descs,
    }))
    .expect("json");
    store.blobs().ingest(None, None, m.as_slice()).expect("manifest")
}

/// Give this test's thread its own mount namespace with private propagation: its
/// mounts vanish with the thread whatever happens.
fn private_mount_namespace() {
    unshare(CloneFlags::CLONE_FS | CloneFlags::CLONE_NEWNS).expect("unshare mount namespace");
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
}

/// An overlay mount, unmounted when dropped (before the temp dir under it goes).
struct Mounted(PathBuf);

impl Mounted {
    fn new(m: &RootfsMount, target: &Path) -> Self {
        fs::create_dir_all(target).expect("mount point");
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(m.options().as_str()),
        )
        .expect("mount overlay");
        Mounted(target.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path")
}

fn set_xattr(p: &Path, key: &str, value: &[u8]) {
    let (p, k) = (cpath(p), CString::new(key).expect("key"));
    // SAFETY: both strings are NUL-terminated and live across the call; the value
    // pointer and length come from one slice.
    let r = unsafe { libc::lsetxattr(p.as_ptr(), k.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    assert_eq!(r, 0, "setxattr {key}: {}", std::io::Error::last_os_error());
}

fn remove_xattr(p: &Path, key: &str) {
    let (p, k) = (cpath(p), CString::new(key).expect("key"));
    // SAFETY: both strings are NUL-terminated and live across the call.
    let r = unsafe { libc::lremovexattr(p.as_ptr(), k.as_ptr()) };
    assert_eq!(r, 0, "removexattr {key}: {}", std::io::Error::last_os_error());
}

fn get_xattr(p: &Path, key: &str) -> Option<Vec<u8>> {
    let (p, k) = (cpath(p), CString::new(key).expect("key"));
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated; the buffer pointer and length describe
    // one live, writable allocation.
    let n = unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

/// What the test reads back from a tar entry.
#[derive(Debug)]
struct Entry {
    kind: tar::EntryType,
    data: Vec<u8>,
    mode: u32,
    link: Option<String>,
    dev: (u32, u32),
    xattrs: BTreeMap<String, Vec<u8>>,
}

fn entries(tar_bytes: impl Read) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(tar_bytes);
    for e in archive.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = e
            .path()
            .expect("path")
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let mut xattrs = BTreeMap::new();
        if let Some(exts) = e.pax_extensions().expect("pax") {
            for ext in exts {
                let ext = ext.expect("pax record");
                let key = ext.key().expect("pax key").to_string();
                xattrs.insert(key, ext.value_bytes().to_vec());
            }
        }
        let h = e.header().clone();
        let link = e.link_name().expect("link").map(|l| l.to_string_lossy().into_owned());
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("data");
        out.insert(
            path,
            Entry {
                kind: h.entry_type(),
                data,
                mode: h.mode().expect("mode"),
                link,
                dev: (
                    h.device_major().ok().flatten().unwrap_or(0),
                    h.device_minor().ok().flatten().unwrap_or(0),
                ),
                xattrs,
            },
        );
    }
    out
}

fn letters(changes: &[berth_image::overlay::Change]) -> Vec<String> {
    changes
        .iter()
        .map(|c| format!("{} {}", c.kind.letter(), c.path))
        .collect()
}

#[test]
fn diff_export_commit_and_round_trip_through_overlay_mounts() {
    private_mount_namespace();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path().join("store")).expect("open");
    base_image(&store);
    let rootfs = store.prepare_rootfs("base", "c1").expect("prepare");
    let mnt = dir.path().join("mnt");
    let mounted = Mounted::new(&rootfs, &mnt);

    fs::write(mnt.join("etc/passwd"), b"changed").expect("modify");
    fs::write(mnt.join("etc/new"), b"new").expect("add");
    fs::remove_file(mnt.join("etc/hosts")).expect("delete");
    fs::remove_dir_all(mnt.join("data")).expect("delete dir");
    fs::create_dir(mnt.join("data")).expect("recreate dir (opaque)");
    fs::write(mnt.join("data/fresh"), b"fresh").expect("add in opaque");
    fs::create_dir_all(mnt.join("newdir/inner")).expect("mkdir");
    fs::write(mnt.join("newdir/inner/file"), b"deep").expect("deep file");
    set_xattr(&mnt.join("newdir/inner/file"), "user.berth", b"hello");
    fs::set_permissions(mnt.join("keep/x"), fs::Permissions::from_mode(0o600)).expect("chmod");
    fs::write(mnt.join("newdir/h1"), b"hl").expect("h1");
    fs::hard_link(mnt.join("newdir/h1"), mnt.join("newdir/h2")).expect("hard link");
    mknod(
        &mnt.join("newdir/null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .expect("mknod");
    nix::unistd::mkfifo(&mnt.join("newdir/fifo"), Mode::from_bits_truncate(0o644)).expect("mkfifo");
    std::os::unix::fs::symlink("../etc/passwd", mnt.join("newdir/sl")).expect("symlink");
    fs::remove_file(mnt.join("link")).expect("delete symlink");

    let expected = [
        "C /data",
        "D /data/a",
        "A /data/fresh",
        "D /data/sub",
        "C /etc",
        "D /etc/hosts",
        "A /etc/new",
        "C /etc/passwd",
        "C /keep",
        "C /keep/x",
        "D /link",
        "A /newdir",
        "A /newdir/fifo",
        "A /newdir/h1",
        "A /newdir/h2",
        "A /newdir/inner",
        "A /newdir/inner/file",
        "A /newdir/null",
        "A /newdir/sl",
    ];
    let mounted_diff = store.diff("c1").expect("diff while mounted");
    assert_eq!(letters(&mounted_diff), expected);
    assert_eq!(
        serde_json::to_value(&mounted_diff[0]).expect("json"),
        serde_json::json!({"Path": "/data", "Kind": 0})
    );

    // Export while mounted: the merged view, without whiteouts, equal to the mount.
    let mut exported = Vec::new();
    store.export("c1", &mut exported).expect("export");
    let files = entries(exported.as_slice());
    assert!(files.keys().all(|p| !p.contains(".wh.")), "{:?}", files.keys());
    for gone in ["etc/hosts", "data/a", "data/b", "data/sub", "data/sub/c", "link"] {
        assert!(!files.contains_key(gone), "{gone} exported");
    }
    assert_eq!(files["etc/passwd"].data, b"changed");
    assert_eq!(files["opt/y"].data, b"y");
    assert_eq!(files["data/fresh"].data, b"fresh");
    assert_eq!(files["keep/x"].mode & 0o777, 0o600);
    assert_eq!(files["newdir/h2"].kind, tar::EntryType::Link);
    assert_eq!(files["newdir/h2"].link.as_deref(), Some("newdir/h1"));
    assert_eq!(files["newdir/null"].dev, (1, 3));
    assert_eq!(
        files["newdir/inner/file"]
            .xattrs
            .get("SCHILY.xattr.user.berth")
            .map(Vec::as_slice),
        Some(&b"hello"[..])
    );
    for (path, e) in &files {
        assert!(
            e.xattrs.keys().all(|k| !k.contains("trusted.overlay")),
            "{path}: {:?}",
            e.xattrs
        );
    }

    drop(mounted);
    assert_eq!(letters(&store.diff("c1").expect("diff unmounted")), expected);

    let opts = CommitOptions {
        config: ConfigChanges {
            cmd: Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()]),
            env: Some(vec!["A=1".into()]),
            labels: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
            exposed_ports: Some(vec!["80/tcp".into()]),
            ..Default::default()
        },
        author: Some("tester".into()),
        comment: Some("first commit".into()),
        created_by: Some("sh -c edit".into()),
        reference: Some(reference("committed:1")),
    };
    let committed = store.commit("c1", &opts).expect("commit");
    let (layer_digest, diff_id) = committed.layer.clone().expect("a layer");

    // The layer: Docker whiteouts, no overlay xattrs, links, devices, xattrs.
    let blob = store.blobs().open_blob(&layer_digest).expect("layer blob");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(blob)
        .read_to_end(&mut plain)
        .expect("gunzip");
    assert_eq!(Digest::of_bytes(Algorithm::Sha256, &plain), diff_id);
    let layer = entries(plain.as_slice());
    for wh in ["etc/.wh.hosts", ".wh.link", "data/.wh..wh..opq"] {
        assert_eq!(
            layer.get(wh).map(|e| e.kind),
            Some(tar::EntryType::Regular),
            "{wh}: {layer:?}"
        );
    }
    assert!(
        !layer.contains_key("opt/y") && !layer.contains_key("etc/hosts"),
        "only changes"
    );
    assert_eq!(layer["etc/passwd"].data, b"changed");
    assert_eq!(layer["newdir/h2"].kind, tar::EntryType::Link);
    assert_eq!(layer["newdir/null"].kind, tar::EntryType::Char);
    assert_eq!(layer["newdir/fifo"].kind, tar::EntryType::Fifo);
    assert_eq!(layer["newdir/sl"].link.as_deref(), Some("../etc/passwd"));
    for (path, e) in &layer {
        assert!(
            e.xattrs.keys().all(|k| !k.contains("trusted.overlay")),
            "{path}: {:?}",
            e.xattrs
        );
    }

    // The image: config changes, history, diffIDs, the snapshot already registered.
    let img = store.resolve("committed:1").expect("resolve committed");
    assert_eq!(img.config_digest, committed.image_id);
    assert_eq!(img.manifest_digest, committed.manifest_digest);
    assert_eq!(img.diff_ids.len(), 3);
    assert_eq!(img.diff_ids[2], diff_id);
    assert_eq!(img.config.author().as_deref(), Some("tester"));
    let cfg = img.config.config().clone().expect("config");
    assert_eq!(cfg.cmd().clone().expect("cmd"), ["/bin/sh", "-c", "echo hi"]);
    assert_eq!(cfg.env().clone().expect("env"), ["A=1"]);
    assert_eq!(
        cfg.labels().clone().expect("labels").get("k").map(String::as_str),
        Some("v")
    );
    assert!(cfg
        .exposed_ports()
        .clone()
        .expect("ports")
        .contains(&"80/tcp".to_string()));
    let history = img.config.history().clone().expect("history");
    assert_eq!(history.len(), 3);
    assert_eq!(history[2].comment().as_deref(), Some("first commit"));
    assert_eq!(history[2].created_by().as_deref(), Some("sh -c edit"));
    let chains = chain_ids(&img.diff_ids);
    assert!(
        store.snapshots().get(&chains[2]).expect("get").is_some(),
        "snapshot registered"
    );

    // Its history as the Docker API shows it.
    let hist = store.history("committed:1").expect("history");
    assert_eq!(hist.len(), 3);
    assert_eq!(hist[0].id, committed.image_id.to_string());
    assert_eq!(hist[0].tags, ["committed:1"]);
    assert_eq!(hist[0].comment, "first commit");
    assert_eq!(hist[0].size, plain.len() as u64);
    assert_eq!(hist[1].id, "<missing>");

    // Round trip: a new container of the committed image sees the changes.
    let rootfs2 = store.prepare_rootfs("committed:1", "c2").expect("prepare committed");
    assert_eq!(rootfs2.lowerdir.split(':').count(), 3);
    let mnt2 = dir.path().join("mnt2");
    let mounted2 = Mounted::new(&rootfs2, &mnt2);
    assert_eq!(fs::read(mnt2.join("etc/passwd")).expect("passwd"), b"changed");
    assert_eq!(fs::read(mnt2.join("etc/new")).expect("new"), b"new");
    assert_eq!(fs::read(mnt2.join("data/fresh")).expect("fresh"), b"fresh");
    assert_eq!(fs::read(mnt2.join("opt/y")).expect("y"), b"y");
    for gone in ["etc/hosts", "data/a", "data/b", "data/sub", "link"] {
        assert!(fs::symlink_metadata(mnt2.join(gone)).is_err(), "{gone} still there");
    }
    let x = fs::metadata(mnt2.join("keep/x")).expect("keep/x");
    assert_eq!(x.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        get_xattr(&mnt2.join("newdir/inner/file"), "user.berth").as_deref(),
        Some(&b"hello"[..])
    );
    let (h1, h2) = (
        fs::metadata(mnt2.join("newdir/h1")).expect("h1"),
        fs::metadata(mnt2.join("newdir/h2")).expect("h2"),
    );
    assert_eq!(h1.ino(), h2.ino(), "hard link kept");
    let null = fs::symlink_metadata(mnt2.join("newdir/null")).expect("null");
    assert!(null.file_type().is_char_device());
    assert_eq!((major(null.rdev()), minor(null.rdev())), (1, 3));
    assert!(fs::symlink_metadata(mnt2.join("newdir/fifo"))
        .expect("fifo")
        .file_type()
        .is_fifo());
    assert_eq!(
        fs::read_link(mnt2.join("newdir/sl")).expect("sl"),
        PathBuf::from("../etc/passwd")
    );
    drop(mounted2);
    assert!(
        store.diff("c2").expect("diff c2").is_empty(),
        "fresh container has no changes"
    );

    store.remove_rootfs("c2").expect("remove c2");
    store.remove_rootfs("c1").expect("remove c1");
}

#[test]
fn unchanged_container_has_no_diff_and_commits_an_empty_layer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    base_image(&store);
    store.prepare_rootfs("base", "idle").expect("prepare");
    assert!(store.diff("idle").expect("diff").is_empty());
    let blobs_before = store.blobs().list().expect("blobs").len();

    let committed = store.commit("idle", &CommitOptions::default()).expect("commit");
    assert!(committed.layer.is_none());
    let img = store.resolve(&committed.image_id.to_string()).expect("resolve by id");
    let base = store.resolve("base").expect("base");
    assert_eq!(img.diff_ids, base.diff_ids, "no layer added");
    assert_eq!(img.manifest.layers().len(), 2);
    let history = img.config.history().clone().expect("history");
    assert_eq!(history.last().and_then(|h| h.empty_layer()), Some(true));
    // Only the new config and manifest were kept: the unused empty-layer blob is gone.
    assert_eq!(store.blobs().list().expect("blobs").len(), blobs_before + 2);
    // Dangling without a reference.
    let summary = store.list().expect("list");
    assert!(summary
        .iter()
        .any(|s| s.target == committed.manifest_digest && s.names.is_empty()));
    // Its history: the empty top entry carries the image ID and size 0.
    let hist = store.history(&committed.image_id.to_string()).expect("history");
    assert_eq!(
        (hist[0].id.as_str(), hist[0].size),
        (committed.image_id.to_string().as_str(), 0)
    );
    store.remove_rootfs("idle").expect("remove");
}

#[test]
fn unknown_or_invalid_containers_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    base_image(&store);
    let err = store.diff("nope").expect_err("unknown");
    assert!(matches!(err, ContainerError::NoRootfs(ref id) if id == "nope"), "{err}");
    let err = store.commit("nope", &CommitOptions::default()).expect_err("unknown");
    assert!(err.to_string().contains("nope"), "{err}");
    let err = store.export("nope", std::io::sink()).expect_err("unknown");
    assert!(err.to_string().contains("nope"), "{err}");
    let err = store.diff("../escape").expect_err("invalid id");
    assert!(err.to_string().contains("../escape"), "{err}");
    // Positive control: a real container works.
    store.prepare_rootfs("base", "real").expect("prepare");
    assert!(store.diff("real").expect("diff").is_empty());
    store.remove_rootfs("real").expect("remove");
}

#[test]
fn unmounted_upper_with_whiteouts_and_redirects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open");
    base_image(&store);
    let rootfs = store.prepare_rootfs("base", "hand").expect("prepare");
    // What overlayfs would leave, made by hand: a whiteout and an opaque directory.
    let upper = &rootfs.upperdir;
    fs::create_dir(upper.join("etc")).expect("mkdir");
    mknod(&upper.join("etc/passwd"), SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).expect("whiteout");
    fs::create_dir(upper.join("data")).expect("mkdir");
    set_xattr(&upper.join("data"), "trusted.overlay.opaque", b"y");
    fs::write(upper.join("data/a"), b"new a").expect("replace a");
    let changes = store.diff("hand").expect("diff");
    assert_eq!(
        letters(&changes),
        ["C /data", "C /data/a", "D /data/sub", "C /etc", "D /etc/passwd"]
    );
    assert_eq!(changes[2].kind, ChangeKind::Deleted);

    // A redirected directory keeps its content elsewhere: refused, then fine without.
    set_xattr(&upper.join("etc"), "trusted.overlay.redirect", b"/elsewhere");
    let err = store.diff("hand").expect_err("redirect refused");
    assert!(
        matches!(
            err,
            ContainerError::Overlay {
                source: OverlayError::Unsupported { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("redirect_dir") && err.to_string().contains("hand"),
        "{err}"
    );
    let blobs_before = store.blobs().list().expect("blobs");
    let err = store
        .commit("hand", &CommitOptions::default())
        .expect_err("commit refused too");
    assert!(err.to_string().contains("redirect_dir"), "{err}");
    assert_eq!(
        store.blobs().list().expect("blobs"),
        blobs_before,
        "a failed commit stores nothing"
    );
    assert_eq!(store.list().expect("list").len(), 1, "and names nothing");
    remove_xattr(&upper.join("etc"), "trusted.overlay.redirect");
    assert_eq!(store.diff("hand").expect("diff").len(), 5);
    store.remove_rootfs("hand").expect("remove");
}
