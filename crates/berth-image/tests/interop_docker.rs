//! Interoperability with Docker: a private `dockerd` (Debian's docker.io 20.10, with its
//! own data root, exec root, pidfile, socket and managed containerd, no bridge, no
//! iptables, overlay2) started per test; the `docker` CLI on PATH talks to it over its
//! unix socket. `docker load` reads an archive Berth `save`d and runs the image; Berth
//! `load`s what `docker save` writes and mounts it. dockerd is required
//! (scripts/setup.sh installs docker.io): if it is missing the tests fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_image::archive;
use berth_image::images::ImageStore;
use berth_image::Reference;
use common::{assert_runs_from_overlay, busybox_rootfs, unmount_under};

const DOCKERD: &str = "/usr/sbin/dockerd";

/// A private dockerd. On drop: SIGTERM (SIGKILL after 20 s) to dockerd and, should it
/// survive, its managed containerd; then everything mounted under the temp dir is
/// unmounted and the test's cgroups (`--cgroup-parent`) and any network interface that
/// appeared are removed.
struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
    cgroup_parent: String,
    links_before: Vec<String>,
}

fn links() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

impl Dockerd {
    fn start() -> Dockerd {
        assert!(
            Path::new(DOCKERD).exists(),
            "{DOCKERD} is missing: install the Debian package docker.io (scripts/setup.sh does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let name = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().trim_start_matches('.').to_string())
            .unwrap_or_default();
        let cgroup_parent = format!("berth-test-docker-{name}");
        let links_before = links();
        let p = |n: &str| dir.path().join(n).display().to_string();
        let log = std::fs::File::create(dir.path().join("dockerd.log")).expect("create dockerd.log");
        let child = Command::new(DOCKERD)
            .args([
                "--data-root",
                &p("data"),
                "--exec-root",
                &p("exec"),
                "--pidfile",
                &p("docker.pid"),
            ])
            .args(["-H", &format!("unix://{}", p("docker.sock"))])
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
            ])
            .args([
                "--ip-masq=false",
                "--storage-driver",
                "overlay2",
                "--userland-proxy=false",
            ])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .args(["--cgroup-parent", &format!("/{cgroup_parent}")])
            .args(["--log-level", "warn"])
            .env("DOCKER_CONFIG", dir.path().join("client"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        let mut d = Dockerd {
            child,
            dir,
            cgroup_parent,
            links_before,
        };
        d.wait_ready();
        d
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("dockerd exited ({status}); its log:\n{}", self.log());
            }
            if self.path("docker.sock").exists() && self.output(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("dockerd did not answer within 60 s; its log:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("dockerd.log")).unwrap_or_default()
    }

    fn output(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(["-H", &format!("unix://{}", self.path("docker.sock").display())])
            .args(args)
            .env("DOCKER_CONFIG", self.path("client"))
            .output()
            .expect("run the docker CLI (docker on PATH; Debian's docker.io provides one)")
    }

    /// Run the CLI; its stdout, or a panic with its output and dockerd's log.
    fn run(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed ({}):\n{}{}\ndockerd log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn kill(pid: i32, signal: nix::sys::signal::Signal) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).is_ok()
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // dockerd stops its managed containerd; should it have been killed first, stop it.
        let containerd_pid = std::fs::read_to_string(self.path("exec/containerd/containerd.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        if let Some(cpid) = containerd_pid {
            let cmdline = std::fs::read_to_string(format!("/proc/{cpid}/cmdline")).unwrap_or_default();
            if cmdline.contains(&*self.dir.path().to_string_lossy()) && kill(cpid, nix::sys::signal::Signal::SIGTERM) {
                std::thread::sleep(Duration::from_secs(2));
                kill(cpid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        unmount_under(self.dir.path());
        // The cgroups of this daemon's containers, deepest first.
        if let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") {
            for c in controllers.filter_map(|e| e.ok()) {
                remove_cgroup_tree(&c.path().join(&self.cgroup_parent));
            }
        }
        // With --bridge=none no interface should appear; remove any that did.
        for link in links() {
            if !self.links_before.contains(&link) && (link.starts_with("docker") || link.starts_with("veth")) {
                let _ = Command::new("ip").args(["link", "delete", &link]).output();
            }
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(|e| e.ok()) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
}

#[test]
fn docker_loads_and_runs_a_berth_archive() {
    let docker = Dockerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = "berth-test/busybox:to-docker";
    let store = ImageStore::open(dir.path().join("store")).expect("open");
    let reference = Reference::parse(name).expect("reference");
    let imported = archive::import(&store, busybox_rootfs().as_slice(), Some(&reference)).expect("import");
    let saved = dir.path().join("saved.tar");
    let file = std::fs::File::create(&saved).expect("create saved.tar");
    archive::save(&store, &[name], std::io::BufWriter::new(file)).expect("save");

    let loaded = docker.run(&["load", "-i", saved.to_str().expect("utf-8")]);
    assert!(loaded.contains(name), "docker load said: {loaded}");
    let id = docker.run(&["image", "inspect", "--format", "{{.Id}}", name]);
    assert_eq!(
        id.trim(),
        imported.config_digest.to_string(),
        "Docker's image ID is our config digest"
    );
    let out = docker.run(&["run", "--rm", "--network", "none", name, "/bin/busybox", "echo", "ok"]);
    assert_eq!(out.trim(), "ok");
}

#[test]
fn berth_loads_and_mounts_a_docker_archive() {
    let docker = Dockerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // Docker gets the image from a plain rootfs tarball, so nothing Berth wrote is involved.
    let rootfs = dir.path().join("rootfs.tar");
    std::fs::write(&rootfs, busybox_rootfs()).expect("write rootfs tar");
    let name = "berth-test/from-docker:1";
    docker.run(&["import", rootfs.to_str().expect("utf-8"), name]);
    let saved = dir.path().join("docker-saved.tar");
    docker.run(&["save", "-o", saved.to_str().expect("utf-8"), name]);

    let store = ImageStore::open(dir.path().join("store")).expect("open store");
    let f = std::fs::File::open(&saved).expect("open docker archive");
    let loaded = archive::load(&store, std::io::BufReader::new(f)).expect("load docker archive");
    assert_eq!(loaded.len(), 1, "{loaded:?}");
    let loaded_name = loaded[0]
        .name
        .clone()
        .unwrap_or_else(|| panic!("the loaded image has a name ({loaded:?})"));
    assert!(loaded_name.contains("berth-test/from-docker"), "{loaded_name}");
    assert_runs_from_overlay(&store, &loaded_name, "docker", dir.path());
}
