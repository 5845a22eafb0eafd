//! Layer unpacking: every entry kind, compressions, whiteouts in a real overlay mount, and
//! malicious layers rejected with nothing left behind. Runs as root (ownership, devices,
//! trusted.* xattrs).

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_image::digest::{Algorithm, Digest};
use berth_image::unpack::{unpack_layer, Compression, UnpackError};
use tar::{EntryType, Header};

/// A tar built entry by entry from raw headers, so tests can write names the `tar`
/// crate's safe setters refuse (`..`, absolute paths).
struct Layer(tar::Builder<Vec<u8>>);

struct E<'a> {
    path: &'a str,
    kind: EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: &'a str,
    data: &'a [u8],
    dev: (u32, u32),
}

fn e(path: &str, kind: EntryType) -> E<'_> {
    let mode = if kind == EntryType::Directory { 0o755 } else { 0o644 };
    E {
        path,
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        link: "",
        data: b"",
        dev: (0, 0),
    }
}

impl Layer {
    fn new() -> Self {
        Layer(tar::Builder::new(Vec::new()))
    }

    fn add(&mut self, e: E<'_>) -> &mut Self {
        let mut h = Header::new_ustar();
        h.as_old_mut().name[..e.path.len()].copy_from_slice(e.path.as_bytes());
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(e.data.len() as u64);
        h.set_device_major(e.dev.0).expect("major");
        h.set_device_minor(e.dev.1).expect("minor");
        h.set_cksum();
        self.0.append(&h, e.data).expect("append");
        self
    }

    /// A PAX extended header applying to the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body_len = 1 + k.len() + 1 + v.len() + 1; // " k=v\n"
            let mut len = body_len + 1;
            while len != body_len + len.to_string().len() {
                len = body_len + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let mut h = Header::new_ustar();
        h.as_old_mut().name[..10].copy_from_slice(b"PaxHeaders");
        h.set_entry_type(EntryType::XHeader);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        self.0.append(&h, &data[..]).expect("append pax");
        self
    }

    fn bytes(&mut self) -> Vec<u8> {
        self.0.finish().expect("finish");
        self.0.get_ref().clone()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).expect("zstd")
}

fn get_xattr(path: &Path, key: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).expect("path");
    let k = CString::new(key).expect("key");
    let mut buf = vec![0u8; 256];
    // SAFETY: NUL-terminated path and key; buf pointer and length describe a live buffer.
    let n = unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

fn full_layer() -> Vec<u8> {
    let mut l = Layer::new();
    l.add(E {
        mtime: 1000,
        ..e("etc/", EntryType::Directory)
    })
    .add(E {
        uid: 1000,
        gid: 1001,
        mode: 0o640,
        mtime: 12345,
        data: b"127.0.0.1 localhost\n",
        ..e("etc/hosts", EntryType::Regular)
    })
    .add(E {
        mode: 0o4755,
        ..e("bin/su", EntryType::Regular)
    }) // parent "bin" not in the tar
    .add(E {
        mode: 0o1777,
        ..e("tmp/", EntryType::Directory)
    })
    .add(E {
        link: "hosts",
        uid: 7,
        ..e("etc/link", EntryType::Symlink)
    })
    .add(E {
        link: "/etc/passwd",
        ..e("abs", EntryType::Symlink)
    })
    .add(E {
        link: "etc/hosts",
        ..e("etc/hosts2", EntryType::Link)
    })
    .add(E {
        dev: (1, 3),
        mode: 0o666,
        ..e("dev/null", EntryType::Char)
    })
    .add(E {
        dev: (7, 0),
        mode: 0o660,
        ..e("dev/loop0", EntryType::Block)
    })
    .add(E {
        mode: 0o600,
        ..e("run/fifo", EntryType::Fifo)
    })
    .add(e("etc/.wh.removed", EntryType::Regular))
    .add(e("opq/", EntryType::Directory))
    .add(e("opq/.wh..wh..opq", EntryType::Regular))
    .add(e("opq/kept", EntryType::Regular))
    .pax(&[
        ("SCHILY.xattr.user.comment", b"hello"),
        ("SCHILY.xattr.trusted.berth", b"\x00\x01bin"),
        ("uid", b"3000000"),
    ])
    .add(E {
        data: b"x",
        ..e("xattr-file", EntryType::Regular)
    })
    .add(E {
        data: b"first",
        ..e("dup", EntryType::Regular)
    })
    .add(E {
        data: b"second",
        ..e("dup", EntryType::Regular)
    });
    l.bytes()
}

#[test]
fn unpacks_every_entry_kind_in_every_compression() {
    let tar = full_layer();
    let want = Digest::of_bytes(Algorithm::Sha256, &tar);
    let cases = [
        ("plain", tar.clone(), Some("application/vnd.oci.image.layer.v1.tar")),
        (
            "gzip",
            gzip(&tar),
            Some("application/vnd.docker.image.rootfs.diff.tar.gzip"),
        ),
        ("zstd", zstd(&tar), Some("application/vnd.oci.image.layer.v1.tar+zstd")),
        ("gzip-by-magic", gzip(&tar), None),
        ("zstd-by-magic", zstd(&tar), None),
    ];
    for (label, bytes, media_type) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("snap");
        let got = unpack_layer(&bytes[..], media_type, &root).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(got.diff_id, want, "{label}: diffID is sha256 of the uncompressed tar");
        assert_eq!(got.size, tar.len() as u64, "{label}");
        check_full_layer(&root);
        assert_eq!(
            fs::read_dir(dir.path()).expect("ls").count(),
            1,
            "{label}: no work dir left"
        );
    }
}

fn check_full_layer(root: &Path) {
    let md = |p: &str| fs::symlink_metadata(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let hosts = md("etc/hosts");
    assert_eq!((hosts.uid(), hosts.gid(), hosts.mode() & 0o7777), (1000, 1001, 0o640));
    assert_eq!(hosts.mtime(), 12345);
    assert_eq!(
        fs::read(root.join("etc/hosts")).expect("read"),
        b"127.0.0.1 localhost\n"
    );
    assert_eq!(md("etc").mtime(), 1000, "directory mtime survives its children");
    assert_eq!(md("bin/su").mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(md("bin").mode() & 0o7777, 0o755, "missing parent created");
    assert_eq!(md("tmp").mode() & 0o7777, 0o1777, "sticky kept");
    assert_eq!(fs::read_link(root.join("etc/link")).expect("link"), Path::new("hosts"));
    assert_eq!(md("etc/link").uid(), 7, "symlink owner (lchown)");
    assert_eq!(fs::read_link(root.join("abs")).expect("link"), Path::new("/etc/passwd"));
    assert_eq!(md("etc/hosts2").ino(), hosts.ino(), "hard link shares the inode");
    let null = md("dev/null");
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o7777),
        (nix::sys::stat::makedev(1, 3), 0o666)
    );
    let lp = md("dev/loop0");
    assert!(lp.file_type().is_block_device());
    assert_eq!(lp.rdev(), nix::sys::stat::makedev(7, 0));
    assert!(md("run/fifo").file_type().is_fifo());
    let wh = md("etc/removed");
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0/0 char device"
    );
    assert!(!root.join("etc/.wh.removed").exists());
    assert_eq!(
        get_xattr(&root.join("opq"), "trusted.overlay.opaque"),
        Some(b"y".to_vec())
    );
    assert!(!root.join("opq/.wh..wh..opq").exists());
    assert!(root.join("opq/kept").exists());
    let x = root.join("xattr-file");
    assert_eq!(get_xattr(&x, "user.comment"), Some(b"hello".to_vec()));
    assert_eq!(get_xattr(&x, "trusted.berth"), Some(b"\x00\x01bin".to_vec()));
    assert_eq!(md("xattr-file").uid(), 3_000_000, "PAX uid overrides the header");
    assert_eq!(fs::read(root.join("dup")).expect("read"), b"second", "later entry wins");
}

#[test]
fn media_type_must_agree_with_the_stream() {
    let tar = full_layer();
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (gzip(&tar), "application/vnd.oci.image.layer.v1.tar+zstd"),
        (tar.clone(), "application/vnd.oci.image.layer.v1.tar+gzip"),
    ];
    for (bytes, mt) in cases {
        let err = unpack_layer(&bytes[..], Some(mt), &dir.path().join("s")).expect_err(mt);
        assert!(matches!(err, UnpackError::CompressionMismatch { .. }), "{err}");
    }
    let err = unpack_layer(&tar[..], Some("application/x-foo"), &dir.path().join("s")).expect_err("unknown");
    assert!(matches!(err, UnpackError::MediaType(_)));
    // "Uncompressed" over a gzip stream is decompressed by magic, as Docker does.
    let ok = unpack_layer(
        &gzip(&tar)[..],
        Some("application/vnd.oci.image.layer.v1.tar"),
        &dir.path().join("s"),
    );
    assert!(ok.is_ok());
    assert_eq!(Compression::from_magic(&gzip(b"")), Compression::Gzip);
    assert_eq!(
        fs::read_dir(dir.path()).expect("ls").count(),
        1,
        "only the successful snapshot"
    );
}

#[test]
fn malicious_layers_are_rejected_and_leave_nothing() {
    let cases: Vec<(&str, Vec<E<'static>>, &str)> = vec![
        ("dotdot", vec![e("../evil", EntryType::Regular)], "../evil"),
        (
            "nested dotdot",
            vec![e("a/../../evil", EntryType::Regular)],
            "a/../../evil",
        ),
        ("absolute", vec![e("/evil", EntryType::Regular)], "/evil"),
        (
            "absolute symlink then write through it",
            vec![
                E {
                    link: "/",
                    ..e("l", EntryType::Symlink)
                },
                e("l/tmp/evil", EntryType::Regular),
            ],
            "l/tmp/evil",
        ),
        (
            "relative symlink escaping then write through it",
            vec![
                E {
                    link: "../..",
                    ..e("up", EntryType::Symlink)
                },
                e("up/evil", EntryType::Regular),
            ],
            "up/evil",
        ),
        (
            "symlink escaping then mkdir through it",
            vec![
                E {
                    link: "/tmp",
                    ..e("d", EntryType::Symlink)
                },
                e("d/sub/", EntryType::Directory),
            ],
            "d/sub/",
        ),
        (
            "hard link to outside",
            vec![E {
                link: "../../../etc/passwd",
                ..e("hl", EntryType::Link)
            }],
            "hl",
        ),
        (
            "hard link to an absolute path",
            vec![E {
                link: "/etc/passwd",
                ..e("hl", EntryType::Link)
            }],
            "hl",
        ),
        (
            "hard link through an escaping symlink",
            vec![
                E {
                    link: "/etc",
                    ..e("s", EntryType::Symlink)
                },
                E {
                    link: "s/passwd",
                    ..e("hl", EntryType::Link)
                },
            ],
            "hl",
        ),
        (
            "opaque marker through an escaping symlink",
            vec![
                E {
                    link: "/tmp",
                    ..e("o", EntryType::Symlink)
                },
                e("o/.wh..wh..opq", EntryType::Regular),
            ],
            "o/.wh..wh..opq",
        ),
        (
            "whiteout through an escaping symlink",
            vec![
                E {
                    link: "/etc",
                    ..e("w", EntryType::Symlink)
                },
                e("w/.wh.passwd", EntryType::Regular),
            ],
            "w/.wh.passwd",
        ),
    ];
    let outside = tempfile::tempdir().expect("tempdir");
    for (label, entries, bad_entry) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut l = Layer::new();
        l.add(e("ok-before/", EntryType::Directory));
        l.add(E {
            data: b"fine",
            ..e("ok-before/file", EntryType::Regular)
        });
        for entry in entries {
            l.add(entry);
        }
        let bytes = gzip(&l.bytes());
        let target = dir.path().join("snap");
        let err = unpack_layer(&bytes[..], None, &target).expect_err(label);
        assert!(
            err.to_string().contains(&format!("{:?}", Path::new(bad_entry))),
            "{label}: error should name {bad_entry}: {err}"
        );
        assert!(matches!(err, UnpackError::Unsafe { .. }), "{label}: {err:?}");
        assert_eq!(
            fs::read_dir(dir.path()).expect("ls").count(),
            0,
            "{label}: nothing left"
        );
    }
    assert_eq!(fs::read_dir(outside.path()).expect("ls").count(), 0);
    assert!(!Path::new("/tmp/evil").exists() && !Path::new("/evil").exists());
}

#[test]
fn truncated_or_corrupt_streams_leave_nothing() {
    let tar = full_layer();
    let gz = gzip(&tar);
    let dir = tempfile::tempdir().expect("tempdir");
    for (label, bytes) in [("truncated gzip", &gz[..gz.len() / 2]), ("truncated tar", &tar[..700])] {
        let err = unpack_layer(bytes, None, &dir.path().join("s")).expect_err(label);
        assert!(
            matches!(err, UnpackError::Read(_) | UnpackError::Entry { .. }),
            "{label}: {err}"
        );
        assert_eq!(
            fs::read_dir(dir.path()).expect("ls").count(),
            0,
            "{label}: nothing left"
        );
    }
    // An existing target is never overwritten.
    fs::create_dir(dir.path().join("taken")).expect("mkdir");
    fs::write(dir.path().join("taken/mine"), b"keep").expect("write");
    assert!(unpack_layer(&tar[..], None, &dir.path().join("taken")).is_err());
    assert_eq!(fs::read(dir.path().join("taken/mine")).expect("read"), b"keep");
    assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
}

/// Two unpacked layers mounted as overlay lowers in a private mount namespace: the upper
/// layer's whiteout hides a lower file and its opaque directory hides the lower contents.
#[test]
fn whiteouts_work_in_a_real_overlay_mount() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lower = Layer::new();
    lower
        .add(E {
            data: b"a",
            ..e("a", EntryType::Regular)
        })
        .add(E {
            data: b"b",
            ..e("b", EntryType::Regular)
        })
        .add(e("d/", EntryType::Directory))
        .add(E {
            data: b"x",
            ..e("d/x", EntryType::Regular)
        });
    let mut upper = Layer::new();
    upper
        .add(e(".wh.a", EntryType::Regular))
        .add(e("d/", EntryType::Directory))
        .add(e("d/.wh..wh..opq", EntryType::Regular))
        .add(E {
            data: b"y",
            ..e("d/y", EntryType::Regular)
        });
    let (l1, l2, merged) = (dir.path().join("l1"), dir.path().join("l2"), dir.path().join("m"));
    unpack_layer(&gzip(&lower.bytes())[..], None, &l1).expect("lower");
    unpack_layer(&zstd(&upper.bytes())[..], None, &l2).expect("upper");
    fs::create_dir(&merged).expect("mkdir");

    let script = format!(
        "mount -t overlay overlay -o lowerdir={}:{} {m} && test ! -e {m}/a && test -e {m}/b \
         && test ! -e {m}/d/x && test -e {m}/d/y",
        l2.display(),
        l1.display(),
        m = merged.display()
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", &script]);
    // SAFETY: the closure runs in the forked child before exec and makes only the
    // unshare and mount syscalls (no allocation: "/" fits nix's stack path buffer).
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
            let flags = nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE;
            nix::mount::mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)?;
            Ok(())
        });
    }
    let status = cmd.status().expect("run sh");
    assert!(status.success(), "overlay view is wrong: {status}");
    assert_eq!(
        fs::read_dir(&merged).expect("ls").count(),
        0,
        "mount stayed in its namespace"
    );
}
