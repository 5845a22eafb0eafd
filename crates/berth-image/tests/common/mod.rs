//! Helpers shared by the image store and archive tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::Command;

use berth_image::digest::{Algorithm, Digest};
use berth_image::images::ImageStore;
use berth_image::manifest;

/// A tar of regular files (path, content, mode), with parent directories.
pub fn tar_of(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(*mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        b.append_data(&mut h, path, *data).expect("append");
    }
    b.into_inner().expect("finish tar")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// A minimal rootfs: /bin/busybox (the host's static busybox) and /bin/sh -> busybox.
pub fn busybox_rootfs() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("read /bin/busybox (install busybox-static)");
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_uid(0);
    dir.set_gid(0);
    dir.set_mode(0o755);
    dir.set_size(0);
    b.append_data(&mut dir, "bin/", &[][..]).expect("dir");
    let mut h = tar::Header::new_gnu();
    h.set_size(busybox.len() as u64);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mode(0o755);
    b.append_data(&mut h, "bin/busybox", busybox.as_slice())
        .expect("busybox");
    let mut l = tar::Header::new_gnu();
    l.set_entry_type(tar::EntryType::Symlink);
    l.set_size(0);
    l.set_uid(0);
    l.set_gid(0);
    l.set_mode(0o777);
    b.append_link(&mut l, "bin/sh", "busybox").expect("symlink");
    b.into_inner().expect("finish tar")
}

fn sha(data: &[u8]) -> Digest {
    Digest::of_bytes(Algorithm::Sha256, data)
}

/// Store an image whose layers are the given uncompressed tars (stored gzip-compressed),
/// with `extra` merged into its config; returns the manifest digest.
pub fn store_image(store: &ImageStore, layers: &[Vec<u8>], extra: serde_json::Value) -> Digest {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in layers {
        let gz = gzip(tar);
        let d = store.blobs().ingest(None, None, gz.as_slice()).expect("ingest layer");
        descs.push(
            serde_json::json!({"mediaType": manifest::OCI_LAYER_GZIP, "digest": d.to_string(), "size": gz.len()}),
        );
        diff_ids.push(sha(tar).to_string());
    }
    let mut config = serde_json::json!({
        "architecture": berth_image::manifest::Platform::host().architecture,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let config = serde_json::to_vec(&config).expect("config json");
    let cd = store
        .blobs()
        .ingest(None, None, config.as_slice())
        .expect("ingest config");
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": manifest::OCI_CONFIG, "digest": cd.to_string(), "size": config.len()},
        "layers": descs,
    });
    let m = serde_json::to_vec(&m).expect("manifest json");
    store.blobs().ingest(None, None, m.as_slice()).expect("ingest manifest")
}

/// Unmount (lazily, deepest first) every mount point under `dir`.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// `name`'s rootfs prepared in `store` has /bin/busybox, which runs in an overlay mount
/// made in a private mount namespace (gone with the `unshare` process).
pub fn assert_runs_from_overlay(store: &ImageStore, name: &str, id: &str, scratch: &Path) {
    let mount = store.prepare_rootfs(name, id).expect("prepare_rootfs");
    let target = scratch.join(format!("mnt-{id}"));
    std::fs::create_dir(&target).expect("mkdir mount point");
    let script = format!(
        "mount -t overlay overlay -o '{opts}' '{t}' && '{t}/bin/busybox' echo ok",
        opts = mount.options(),
        t = target.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    assert!(
        out.status.success(),
        "{name}: overlay mount or busybox failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{name}");
    store.remove_rootfs(id).expect("remove rootfs");
}
