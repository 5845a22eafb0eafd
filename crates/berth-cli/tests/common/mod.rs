//! A berthd of a test's own (temporary data root, exec root, socket, cgroup parent),
//! driven by `berth` (and by the docker CLI where a test compares the two). Dropping it
//! removes its containers, stops it, and checks that no mount or cgroup of it is left.
//!
//! berthd is not a dependency of berth-cli (the CLI speaks only the API), so its binaries
//! are found at run time: `$BERTHD` and `$BERTH_MONITOR`, else next to this test's own
//! target directory (a workspace build), else the workspace's target/debug.
#![allow(dead_code)]

pub mod proxy;
// The same registry helper as berthd's tests (one copy).
#[path = "../../../berthd/tests/common/registry.rs"]
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static N: AtomicUsize = AtomicUsize::new(0);

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn find_bin(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let mut candidates = Vec::new();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    if let Ok(exe) = std::env::current_exe() {
        if let Some(profile_dir) = exe.parent().and_then(|d| d.parent()) {
            candidates.push(profile_dir.join(name));
        }
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    candidates.push(ws.join("target/debug").join(name));
    candidates.push(ws.join("target/release").join(name));
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: build it (cargo build -p berthd) or set {var}"))
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub cgroup_parent: String,
    /// Its default bridge and nftables table (its own: tests run daemons side by side).
    pub bridge: String,
    pub table: String,
    child: Option<Child>,
}

/// A busybox rootfs tar (Debian's busybox-static) in `dir`.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let path = dir.join("busybox.tar");
    if path.exists() {
        return path;
    }
    let root = tempfile::tempdir_in(dir).unwrap();
    let r = root.path();
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "root"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", r.join("bin/busybox")).expect("busybox-static installed");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for a in String::from_utf8_lossy(&list.stdout).lines() {
        if a != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", r.join("bin").join(a));
        }
    }
    std::fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(r.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(r)
        .arg("-cf")
        .arg(&path)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    path
}

impl Daemon {
    pub fn start() -> Daemon {
        let dir = tempfile::Builder::new().prefix("berth-cli-test").tempdir().unwrap();
        let n = N.fetch_add(1, Ordering::SeqCst);
        let mut d = Daemon {
            sock: dir.path().join("berth.sock"),
            cgroup_parent: format!("/berth-cli-test-{}-{n}", std::process::id()),
            dir,
            bridge: format!("bc{}x{n}", std::process::id() % 100000),
            table: format!("berth_c{}_{n}", std::process::id()),
            child: None,
        };
        d.spawn();
        d.assert_is_berth();
        d
    }

    fn spawn(&mut self) {
        let cfg = self.dir.path().join("daemon.json");
        if !cfg.exists() {
            std::fs::write(&cfg, "{}").unwrap();
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("berthd.log"))
            .unwrap();
        let child = Command::new(find_bin("BERTHD", "berthd"))
            .arg("--config-file")
            .arg(&cfg)
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .arg("--data-root")
            .arg(self.dir.path().join("data"))
            .arg("--exec-root")
            .arg(self.dir.path().join("exec"))
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--monitor-path")
            .arg(find_bin("BERTH_MONITOR", "berth-monitor"))
            .args(["--bridge", &self.bridge, "--firewall-table", &self.table])
            // Addresses apart from berthd's own tests (10.150-249.x).
            .arg("--bip")
            .arg(format!(
                "10.{}.{}.1/26",
                100 + (n_of(&self.bridge) % 40),
                (std::process::id() % 64) * 4
            ))
            .arg("-D")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if std::os::unix::net::UnixStream::connect(&self.sock).is_ok() {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("berthd exited ({st}): {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("berthd did not listen: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// A command for `bin` aimed at this daemon, with a config dir of the test's own.
    pub fn command(&self, bin: &str, args: &[&str]) -> Command {
        let mut c = Command::new(bin);
        c.args(args)
            .env("BERTH_HOST", self.host())
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env_remove("DOCKER_API_VERSION")
            .env_remove("BERTH_API_VERSION")
            .stdin(Stdio::null());
        c
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        self.command(BERTH, args).output().unwrap()
    }

    pub fn berth_in(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut c = self.command(BERTH, args);
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut ch = c.spawn().unwrap();
        let mut sin = ch.stdin.take().unwrap();
        let data = input.to_vec();
        let w = std::thread::spawn(move || {
            let _ = sin.write_all(&data);
        });
        let o = ch.wait_with_output().unwrap();
        w.join().unwrap();
        o
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.command("docker", args).output().unwrap()
    }

    fn must(&self, what: &str, args: &[&str], o: Output) -> String {
        assert!(
            o.status.success(),
            "{what} {args:?} failed ({}): {}\n{}\n--- berthd log (tail):\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            tail(&self.log(), 40)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Run berth, require success, return trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        self.must("berth", args, o)
    }

    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        self.must("docker", args, o)
    }

    /// Run berth, require failure with `code`, return stderr.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let o = self.berth(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "berth {args:?}: stdout {}\nstderr {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stderr).to_string()
    }

    /// Prove the daemon answering is berthd (never a stray dockerd): /version's
    /// components name Berth.
    pub fn assert_is_berth(&self) {
        let (code, body) = self.http("GET", "/version", "");
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["Components"][0]["Name"], "Berth", "{body}");
    }

    pub fn import_busybox(&self, name: &str) {
        let tar = busybox_tar(self.dir.path());
        self.ok(&["import", tar.to_str().unwrap(), name]);
    }

    /// Whether the daemon serves `method path` yet (some endpoints are still being added).
    pub fn serves(&self, method: &str, path: &str) -> bool {
        let (code, body) = self.http(method, path, "");
        !(code == 404 && body.contains("page not found"))
    }

    /// Raw HTTP on the socket: (status, body). Chunked bodies are returned undecoded.
    pub fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&self.sock).unwrap();
        let _ = write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let out = String::from_utf8_lossy(&raw).to_string();
        let code = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (code, body)
    }

    fn mounts_under(&self, p: &Path) -> Vec<String> {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let p = p.to_string_lossy().to_string();
        mi.lines()
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .filter(|m| m.starts_with(&p))
            .collect()
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let rel = self.cgroup_parent.trim_start_matches('/');
        let mut out = Vec::new();
        let base = Path::new("/sys/fs/cgroup");
        if base.join(rel).exists() {
            out.push(base.join(rel));
        }
        if let Ok(rd) = std::fs::read_dir(base) {
            for e in rd.flatten() {
                let p = e.path().join(rel);
                if p.exists() {
                    out.push(p);
                }
            }
        }
        out
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The daemon number in a bridge name made by `start`.
fn n_of(bridge: &str) -> u32 {
    bridge.rsplit('x').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Raw API calls, so a broken CLI cannot leave containers behind.
            let (_, list) = self.http("GET", "/containers/json?all=1", "");
            if let Ok(serde_json::Value::Array(cs)) = serde_json::from_str::<serde_json::Value>(&list) {
                for c in cs {
                    if let Some(id) = c["Id"].as_str() {
                        let _ = self.http("DELETE", &format!("/containers/{id}?force=1"), "");
                    }
                }
            }
        }
        self.kill9();
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).status();
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .output();
        let mounts = self.mounts_under(self.dir.path());
        for m in &mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        // Each hierarchy keeps the (empty) parent cgroup, as Docker keeps /docker.
        let mut leaked = Vec::new();
        for d in self.cgroup_dirs() {
            if let Ok(rd) = std::fs::read_dir(&d) {
                for e in rd.flatten() {
                    if e.path().is_dir() {
                        leaked.push(e.path());
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(&d);
        }
        if !std::thread::panicking() {
            assert!(mounts.is_empty(), "mounts left behind: {mounts:?}");
            assert!(leaked.is_empty(), "container cgroups left behind: {leaked:?}");
        }
    }
}
