//! A berthd of a test's own (temporary data root, exec root, socket, cgroup parent,
//! bridge, firewall table, address pool), driven by real clients. Dropping it removes its
//! containers, stops it, and checks that no mount, cgroup or veth of it is left.
//! berth-cli's tests use it too (through #[path]); there the binaries are found at run
//! time: `$BERTHD` / `$BERTH_MONITOR`, else next to the test's target directory.
#![allow(dead_code)]

pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static N: AtomicUsize = AtomicUsize::new(0);

/// berthd's binaries: Cargo's path when this is one of berthd's tests, else found.
fn bin(built: Option<&'static str>, var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(b) = built {
        return PathBuf::from(b);
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
    /// Its default bridge, nftables table and address pool: its own, so daemons of
    /// parallel tests never meet.
    pub bridge: String,
    pub table: String,
    /// The default bridge's gateway, e.g. 10.151.12.1; the pool is the /22 around it.
    pub gateway: String,
    pool: String,
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
        Self::start_with_config("{}")
    }

    /// A daemon whose daemon.json is `config`.
    pub fn start_with_config(config: &str) -> Daemon {
        let dir = tempfile::Builder::new().prefix("berthd-test").tempdir().unwrap();
        std::fs::write(dir.path().join("daemon.json"), config).unwrap();
        let n = N.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let (a, b) = (150 + (n % 100), (pid % 64) * 4);
        let mut d = Daemon {
            sock: dir.path().join("berth.sock"),
            cgroup_parent: format!("/berth-test-{pid}-{n}"),
            dir,
            bridge: format!("bt{}x{n}", pid % 100000),
            table: format!("berth_t{pid}_{n}"),
            gateway: format!("10.{a}.{b}.1"),
            pool: format!("base=10.{a}.{b}.0/22,size=26"),
            child: None,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let cfg = self.dir.path().join("daemon.json");
        if !cfg.exists() {
            std::fs::write(&cfg, "{}").unwrap();
        }
        // A test that sets `bridge` in daemon.json keeps it (flags would override it).
        let own_bridge = !std::fs::read_to_string(&cfg).unwrap_or_default().contains("\"bridge\"");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("berthd.log"))
            .unwrap();
        let child = Command::new(bin(option_env!("CARGO_BIN_EXE_berthd"), "BERTHD", "berthd"))
            .arg("--config-file")
            .arg(self.dir.path().join("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .arg("--data-root")
            .arg(self.dir.path().join("data"))
            .arg("--exec-root")
            .arg(self.dir.path().join("exec"))
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--monitor-path")
            .arg(bin(
                option_env!("CARGO_BIN_EXE_berth-monitor"),
                "BERTH_MONITOR",
                "berth-monitor",
            ))
            .args(["--firewall-table", &self.table])
            .args(if own_bridge {
                vec![
                    "--bridge".to_string(),
                    self.bridge.clone(),
                    "--bip".into(),
                    format!("{}/26", self.gateway),
                ]
            } else {
                vec![]
            })
            .args(["--default-address-pool", &self.pool])
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

    /// berthd's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// How many fds berthd holds.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The docker CLI (v28 on PATH unless `bin` says otherwise) against this daemon.
    pub fn cli(&self, bin: &str, args: &[&str]) -> Output {
        Command::new(bin)
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env_remove("DOCKER_API_VERSION")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.cli("docker", args)
    }

    /// Run docker, require success, return trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({}): {}\n{}\n--- berthd log:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Prove the daemon answering is berthd (never a stray dockerd).
    pub fn assert_is_berth(&self) {
        let v = self.ok(&["version", "--format", "{{.Server.Platform.Name}}"]);
        assert_eq!(v, "Berth Engine");
    }

    pub fn import_busybox(&self, name: &str) {
        let tar = busybox_tar(self.dir.path());
        self.ok(&["import", tar.to_str().unwrap(), name]);
    }

    /// SIGKILL berthd (its containers and monitors live on).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// What a host reboot does to this daemon's world: every process of it dies (berthd,
    /// monitors, containers), mounts and cgroups go, the exec root (a tmpfs) is emptied.
    pub fn simulate_reboot(&mut self, container_pids: &[u32]) {
        self.kill9();
        let exec = self.dir.path().join("exec");
        for p in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmd).contains(exec.to_str().unwrap()) {
                if let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
        for &pid in container_pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let t = Instant::now();
        while container_pids.iter().any(|p| Path::new(&format!("/proc/{p}")).exists())
            && t.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        for m in self.mounts_under(self.dir.path()) {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        for d in self.cgroup_dirs() {
            if let Ok(rd) = std::fs::read_dir(&d) {
                for e in rd.flatten().filter(|e| e.path().is_dir()) {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
        let _ = std::fs::remove_dir_all(&exec);
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Raw HTTP on the socket: (status, body).
    pub fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&self.sock).unwrap();
        // The server may answer (413) and close before reading a large body.
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

    /// The bridges of its networks (from their records).
    pub fn bridges(&self) -> Vec<String> {
        let mut out = vec![self.bridge.clone()];
        if let Ok(rd) = std::fs::read_dir(self.dir.path().join("data/network")) {
            for e in rd.flatten() {
                let v: serde_json::Value = std::fs::read(e.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                if let Some(b) = v["bridge"]
                    .as_str()
                    .filter(|b| !b.is_empty() && !out.iter().any(|o| o == b))
                {
                    out.push(b.to_string());
                }
            }
        }
        out
    }

    fn mounts_under(&self, p: &Path) -> Vec<String> {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let p = p.to_string_lossy().to_string();
        mi.lines()
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .filter(|m| m.starts_with(&p))
            .collect()
    }

    fn kill_leftover_processes(&self) {
        let mut pids: Vec<i32> = Vec::new();
        for d in self.cgroup_dirs() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let procs = std::fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default();
                pids.extend(procs.lines().filter_map(|l| l.parse::<i32>().ok()));
            }
        }
        let dir = self.dir.path().to_string_lossy().to_string();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.starts_with("berth-monitor") && cmd.contains(&dir) {
                pids.push(pid);
            }
        }
        for pid in &pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::Signal::SIGKILL);
        }
        // Let them die before their mounts and cgroups go.
        for _ in 0..50 {
            if pids.iter().all(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
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
}

/// The links enslaved to `bridge`, once there are at most `want` of them (or after 5 s).
pub fn veths_on(bridge: &str, want: usize) -> Vec<String> {
    let t = Instant::now();
    loop {
        let o = Command::new("ip")
            .args(["-o", "link", "show", "master", bridge])
            .output();
        let links: Vec<String> = o
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(String::from).collect())
            .unwrap_or_default();
        if links.len() <= want || t.elapsed() > Duration::from_secs(5) {
            return links;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let ids = self.docker(&["ps", "-aq"]);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = self.docker(&["rm", "-f", id]);
            }
        }
        self.kill9();
        // A test that failed while berthd was down left its containers and monitors
        // running: kill them (container cgroups, monitors by their directory).
        if std::thread::panicking() {
            self.kill_leftover_processes();
        }
        // Its bridges (default and user networks): no veth may be left on them (veths go
        // asynchronously, with their namespaces: allow the kernel a moment).
        let mut leaked_links = Vec::new();
        for br in self.bridges() {
            leaked_links.extend(veths_on(&br, 0));
            let _ = Command::new("ip").args(["link", "del", &br]).status();
        }
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
            assert!(leaked_links.is_empty(), "veths left on bridges: {leaked_links:?}");
            assert!(leaked.is_empty(), "container cgroups left behind: {leaked:?}");
        }
    }
}
