//! Shared test harness: a busybox bundle per test, its own state root, and cleanup.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod spec_helpers;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth-runtime"))
}

static N: AtomicU32 = AtomicU32::new(0);

pub fn unique(prefix: &str) -> String {
    format!(
        "bt-{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Fill `rootfs` with busybox and its applet links.
pub fn make_rootfs(rootfs: &Path) {
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static is installed (scripts/setup.sh)");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for a in String::from_utf8_lossy(&list.stdout).lines() {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
}

pub struct Ct {
    pub id: String,
    pub root: tempfile::TempDir,
    pub bundle: tempfile::TempDir,
    pub config: Value,
    pub bin: PathBuf,
}

impl Ct {
    /// A container running `args` in a busybox bundle, config from `berth-runtime spec`
    /// with a writable root, no terminal and a cgroup of its own.
    pub fn new(args: &[&str]) -> Ct {
        let id = unique("c");
        let root = tempfile::Builder::new().prefix("berth-test-root").tempdir().unwrap();
        let bundle = tempfile::Builder::new().prefix("berth-test-bundle").tempdir().unwrap();
        make_rootfs(&bundle.path().join("rootfs"));
        let out = Command::new(bin())
            .args(["spec", "--bundle"])
            .arg(bundle.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "spec: {}", String::from_utf8_lossy(&out.stderr));
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(bundle.path().join("config.json")).unwrap()).unwrap();
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = args.iter().map(|s| Value::from(*s)).collect();
        config["root"]["readonly"] = false.into();
        config["linux"]["cgroupsPath"] = format!("/berth-test-{id}").into();
        let mut c = Ct {
            id,
            root,
            bundle,
            config,
            bin: bin(),
        };
        c.save();
        c
    }

    pub fn save(&mut self) {
        std::fs::write(self.bundle.path().join("config.json"), self.config.to_string()).unwrap();
    }

    pub fn rootfs(&self) -> PathBuf {
        self.bundle.path().join("rootfs")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path()).args(args);
        c
    }

    /// Run a runtime command to completion, capturing output.
    pub fn rt(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Run a command whose container process may outlive it: stdio to files, not pipes.
    pub fn rt_detached(&self, args: &[&str]) -> (bool, String) {
        let err = tempfile::NamedTempFile::new().unwrap();
        let st = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err.reopen().unwrap())
            .status()
            .unwrap();
        (st.success(), std::fs::read_to_string(err.path()).unwrap())
    }

    /// `run` in the foreground: (exit code, stdout, stderr).
    pub fn run(&self) -> (i32, String, String) {
        let b = self.bundle.path().to_str().unwrap().to_string();
        let out = self.rt(&["run", "--bundle", &b, &self.id]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn create(&self) -> (bool, String) {
        let b = self.bundle.path().to_str().unwrap().to_string();
        self.rt_detached(&["create", "--bundle", &b, &self.id])
    }

    pub fn state(&self) -> Option<Value> {
        let out = self.rt(&["state", &self.id]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    pub fn status(&self) -> String {
        self.state()
            .map(|s| s["status"].as_str().unwrap().to_string())
            .unwrap_or_default()
    }

    pub fn wait_status(&self, want: &str, limit: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < limit {
            if self.status() == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Host cgroup dir of this container in a v1 controller (this machine is hybrid v1).
    pub fn cgroup_dir(&self, controller: &str) -> PathBuf {
        PathBuf::from(format!("/sys/fs/cgroup/{controller}/berth-test-{}", self.id))
    }

    pub fn exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["exec", &self.id];
        a.extend_from_slice(args);
        self.rt(&a)
    }
}

impl Drop for Ct {
    fn drop(&mut self) {
        // The original binary: a test may have pointed `bin` at a copy that is gone by now.
        let _ = Command::new(bin())
            .arg("--root")
            .arg(self.root.path())
            .args(["delete", "--force", &self.id])
            .output();
    }
}

/// Assert that nothing of container `id` remains: state dir, cgroups.
pub fn assert_nothing_left(c: &Ct) {
    assert!(!c.root.path().join(&c.id).exists(), "state dir left behind");
    for ctl in ["memory", "pids", "cpu", "freezer", "devices"] {
        let d = c.cgroup_dir(ctl);
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
    let u = PathBuf::from(format!("/sys/fs/cgroup/unified/berth-test-{}", c.id));
    assert!(!u.exists(), "cgroup {} left behind", u.display());
}
