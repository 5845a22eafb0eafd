//! Interoperability with real OCI tools: skopeo and umoci read archives `save` writes,
//! and `load` reads archives skopeo writes. The tools are required (installed by
//! scripts/setup.sh): a missing tool fails these tests rather than skipping them.

mod common;

use std::path::Path;
use std::process::Command;

use berth_image::archive;
use berth_image::images::ImageStore;
use berth_image::Reference;
use common::busybox_rootfs;

fn run(tool: &str, args: &[&str]) {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {tool} (install it: apt-get install -y skopeo umoci): {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A store holding an imported busybox image, saved to `<dir>/saved.tar`.
fn saved_busybox(dir: &Path) -> (ImageStore, archive::Imported) {
    let store = ImageStore::open(dir.join("store")).expect("open");
    let reference = Reference::parse("berth-test/busybox:peer").expect("reference");
    let imported = archive::import(&store, busybox_rootfs().as_slice(), Some(&reference)).expect("import");
    let file = std::fs::File::create(dir.join("saved.tar")).expect("create saved.tar");
    archive::save(&store, &["berth-test/busybox:peer"], std::io::BufWriter::new(file)).expect("save");
    (store, imported)
}

#[test]
fn skopeo_reads_saved_archive_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_store, imported) = saved_busybox(dir.path());
    let saved = dir.path().join("saved.tar");

    // As an OCI archive, selecting the image by its ref.name annotation.
    let out = dir.path().join("from-oci");
    let src = format!("oci-archive:{}:peer", p(&saved));
    run(
        "skopeo",
        &["--insecure-policy", "copy", &src, &format!("dir:{}", p(&out))],
    );
    let manifest = std::fs::read(out.join("manifest.json")).expect("skopeo wrote manifest.json");
    assert!(
        String::from_utf8_lossy(&manifest).contains(imported.config_digest.hex()),
        "skopeo's manifest names our config"
    );
    assert!(
        out.join(imported.layer_digest.hex()).is_file(),
        "skopeo copied our layer"
    );

    // As a docker-archive, through manifest.json.
    let out = dir.path().join("from-docker");
    let src = format!("docker-archive:{}:berth-test/busybox:peer", p(&saved));
    run(
        "skopeo",
        &["--insecure-policy", "copy", &src, &format!("dir:{}", p(&out))],
    );
    let manifest = std::fs::read(out.join("manifest.json")).expect("skopeo wrote manifest.json");
    assert!(String::from_utf8_lossy(&manifest).contains(imported.config_digest.hex()));
}

#[test]
fn umoci_unpacks_saved_layout() {
    let dir = tempfile::tempdir().expect("tempdir");
    saved_busybox(dir.path());
    let layout = dir.path().join("layout");
    std::fs::create_dir(&layout).expect("mkdir");
    let file = std::fs::File::open(dir.path().join("saved.tar")).expect("open saved.tar");
    tar::Archive::new(file).unpack(&layout).expect("extract saved.tar");
    let bundle = dir.path().join("bundle");
    run(
        "umoci",
        &["unpack", "--image", &format!("{}:peer", p(&layout)), p(&bundle)],
    );
    let busybox = bundle.join("rootfs/bin/busybox");
    assert!(busybox.is_file(), "umoci unpacked /bin/busybox");
    assert_eq!(
        std::fs::read(&busybox).expect("read"),
        std::fs::read("/bin/busybox").expect("read host busybox")
    );
}

#[test]
fn load_reads_archives_skopeo_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_store, imported) = saved_busybox(dir.path());
    let layout = dir.path().join("layout");
    std::fs::create_dir(&layout).expect("mkdir");
    let file = std::fs::File::open(dir.path().join("saved.tar")).expect("open saved.tar");
    tar::Archive::new(file).unpack(&layout).expect("extract saved.tar");
    let src = format!("oci:{}:peer", p(&layout));

    let docker_tar = dir.path().join("skopeo-docker.tar");
    let dest = format!("docker-archive:{}:berth-test/from-skopeo:docker", p(&docker_tar));
    run("skopeo", &["--insecure-policy", "copy", &src, &dest]);
    let oci_tar = dir.path().join("skopeo-oci.tar");
    let dest = format!("oci-archive:{}:example.com/from-skopeo:oci", p(&oci_tar));
    run("skopeo", &["--insecure-policy", "copy", &src, &dest]);

    let fresh = ImageStore::open(dir.path().join("fresh")).expect("open fresh");
    for (archive_path, name) in [
        (&docker_tar, "berth-test/from-skopeo:docker"),
        (&oci_tar, "example.com/from-skopeo:oci"),
    ] {
        let file = std::fs::File::open(archive_path).expect("open skopeo archive");
        let loaded = archive::load(&fresh, std::io::BufReader::new(file)).expect("load skopeo archive");
        assert_eq!(loaded.len(), 1, "{name}");
        assert_eq!(loaded[0].name.as_deref(), Some(name));
        let img = fresh.resolve(name).expect("resolve");
        assert_eq!(
            img.diff_ids,
            vec![imported.diff_id.clone()],
            "{name}: same layer content"
        );
        let id = name.rsplit(':').next().expect("tag");
        let mount = fresh.prepare_rootfs(name, id).expect("prepare");
        let top = mount.lowerdir.split(':').next().expect("lowerdir");
        assert!(Path::new(top).join("bin/busybox").is_file(), "{name}");
        fresh.remove_rootfs(id).expect("remove rootfs");
    }
}
