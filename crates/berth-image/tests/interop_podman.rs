//! Interoperability with Podman (Debian's podman, run with its own storage in a temp
//! dir): `podman load` reads an archive Berth `save`d and runs the image; Berth `load`s
//! archives `podman save` writes (docker-archive and oci-archive) and mounts them.
//! Podman is required (scripts/setup.sh installs it): if it is missing the tests fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use berth_image::archive;
use berth_image::images::ImageStore;
use berth_image::Reference;
use common::{assert_runs_from_overlay, busybox_rootfs, unmount_under};

/// A podman with its own root, runroot, tmpdir and containers.conf under a temp dir;
/// on drop its containers and images are removed and anything still mounted under the
/// dir is unmounted.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        assert!(
            Path::new("/usr/bin/podman").exists(),
            "/usr/bin/podman is missing: install the Debian package podman (scripts/setup.sh does)"
        );
        assert!(
            Path::new("/usr/sbin/runc").exists(),
            "/usr/sbin/runc is missing: install the Debian package runc (podman depends on it)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        // This machine lacks CAP_SYS_RESOURCE: podman's default ulimits (raising nofile)
        // would fail, so keep them at 1024.
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\nruntime = \"runc\"\n",
        )
        .expect("write containers.conf");
        std::fs::write(
            dir.path().join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/root\"\n",
                dir.path().display()
            ),
        )
        .expect("write storage.conf");
        std::fs::create_dir(dir.path().join("tmp")).expect("mkdir tmp");
        Podman { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn output(&self, args: &[&str]) -> Output {
        let p = |n: &str| self.path(n).display().to_string();
        Command::new("podman")
            .args(["--root", &p("root"), "--runroot", &p("run"), "--tmpdir", &p("tmp")])
            .args([
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "none",
                "--runtime",
                "runc",
            ])
            .args(args)
            .env("CONTAINERS_CONF", self.path("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.path("storage.conf"))
            .env("TMPDIR", self.path("tmp"))
            .output()
            .expect("run podman")
    }

    /// Run podman; its stdout, or a panic with its output.
    fn run(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.output(&["rm", "--all", "--force"]);
        let _ = self.output(&["rmi", "--all", "--force"]);
        unmount_under(self.dir.path());
        // Podman's cgroupfs parent: rmdir only succeeds once it is empty, so a test still
        // running beside us keeps it, and the last one out removes it.
        for h in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            remove_empty_cgroups(&h.path().join("libpod_parent"));
        }
    }
}

/// rmdir a cgroup tree leaf-first; busy (non-empty) cgroups stay.
fn remove_empty_cgroups(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_empty_cgroups(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// A store holding the busybox image `name`, saved (docker-archive + OCI layout) to
/// `<dir>/saved.tar`.
fn saved_busybox(dir: &Path, name: &str) -> (ImageStore, archive::Imported) {
    let store = ImageStore::open(dir.join("store")).expect("open");
    let reference = Reference::parse(name).expect("reference");
    let imported = archive::import(&store, busybox_rootfs().as_slice(), Some(&reference)).expect("import");
    let file = std::fs::File::create(dir.join("saved.tar")).expect("create saved.tar");
    archive::save(&store, &[name], std::io::BufWriter::new(file)).expect("save");
    (store, imported)
}

#[test]
fn podman_loads_and_runs_a_berth_archive() {
    let podman = Podman::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = "localhost/berth-test/busybox:to-podman";
    let (_store, imported) = saved_busybox(dir.path(), name);
    let saved = dir.path().join("saved.tar");

    let loaded = podman.run(&["load", "-i", saved.to_str().expect("utf-8")]);
    assert!(
        loaded.contains("berth-test/busybox:to-podman"),
        "podman load said: {loaded}"
    );
    let id = podman.run(&["image", "inspect", "--format", "{{.Id}}", name]);
    assert_eq!(
        id.trim(),
        imported.config_digest.hex(),
        "podman's image ID is our config digest"
    );
    let out = podman.run(&["run", "--rm", "--network", "none", name, "/bin/busybox", "echo", "ok"]);
    assert_eq!(out.trim(), "ok");
}

#[test]
fn berth_loads_and_mounts_podman_archives() {
    let podman = Podman::new();
    let dir = tempfile::tempdir().expect("tempdir");
    // Podman gets the image from a plain rootfs tarball (`podman import`), so that
    // nothing of Berth's writing is involved in what it saves.
    let rootfs = dir.path().join("rootfs.tar");
    std::fs::write(&rootfs, busybox_rootfs()).expect("write rootfs tar");
    podman.run(&[
        "import",
        rootfs.to_str().expect("utf-8"),
        "localhost/from-podman/busybox:1",
    ]);

    let store = ImageStore::open(dir.path().join("store")).expect("open store");
    for (format, file, id) in [
        ("docker-archive", "podman-docker.tar", "docker"),
        ("oci-archive", "podman-oci.tar", "oci"),
    ] {
        let path = dir.path().join(file);
        podman.run(&[
            "save",
            "--format",
            format,
            "-o",
            path.to_str().expect("utf-8"),
            "localhost/from-podman/busybox:1",
        ]);
        let f = std::fs::File::open(&path).expect("open podman archive");
        let loaded = archive::load(&store, std::io::BufReader::new(f)).expect("load podman archive");
        assert_eq!(loaded.len(), 1, "{format}: {loaded:?}");
        let name = loaded[0]
            .name
            .clone()
            .unwrap_or_else(|| panic!("{format}: the loaded image has a name ({loaded:?})"));
        assert!(name.contains("from-podman/busybox"), "{format}: {name}");
        assert_runs_from_overlay(&store, &name, id, dir.path());
    }
}
