//! Integration tests on the machine's real cgroups (run as root). Each test makes its own cgroup
//! named "berth-test-<pid>-<test>", so the tests can run in parallel, and a guard removes it even
//! when an assertion fails. Without root, or without the hierarchy a test needs, it says so and
//! passes without checking anything.
//!
//! v1 parts run where the host has v1 hierarchies (Legacy/Hybrid). The v2 driver runs on the
//! cgroup2 mount: /sys/fs/cgroup on a Unified host, /sys/fs/cgroup/unified on a Hybrid one.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use berth_cgroups::{detect, Cgroup, Error, FreezerState, Mode};
use oci_spec::runtime::LinuxResources;

const ROOT: &str = "/sys/fs/cgroup";

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test JSON {json}: {e}"))
}

fn name(test: &str) -> String {
    format!("berth-test-{}-{test}", std::process::id())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The v2 root to test the v2 driver on, if the host has one.
fn cgroup2_root() -> Option<PathBuf> {
    match detect(Path::new(ROOT)).ok()? {
        Mode::Unified => Some(PathBuf::from(ROOT)),
        Mode::Hybrid => Some(Path::new(ROOT).join("unified")),
        Mode::Legacy => None,
    }
}

fn skip(why: &str) {
    eprintln!("skipped: {why}");
}

/// Owns the test's cgroup and children; on drop (also when a test panics) thaws, kills and
/// reaps everything, then removes the cgroup.
struct Guard {
    cg: Cgroup,
    children: Vec<Child>,
}

impl Guard {
    fn new(cg: Cgroup) -> Guard {
        Guard {
            cg,
            children: Vec::new(),
        }
    }

    /// Starts `cmd` and puts it in the cgroup; returns its pid.
    fn spawn(&mut self, cmd: &mut Command) -> i32 {
        let child = cmd.spawn().expect("spawn test child");
        let pid = child.id() as i32;
        self.children.push(child);
        self.cg.add_pid(pid).expect("add_pid");
        pid
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cg.freeze(FreezerState::Thawed);
        let _ = self.cg.kill_all(libc::SIGKILL);
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for _ in 0..200 {
            if self.cg.pids().map(|p| p.is_empty()).unwrap_or(true) {
                break;
            }
            sleep(Duration::from_millis(10));
        }
        if let Err(e) = self.cg.destroy() {
            eprintln!("LEAK: could not remove test cgroup: {e}");
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

fn sleeper() -> Command {
    let mut c = Command::new("sleep");
    c.arg("1000");
    c
}

/// A child that execs `sleep` only after it joined the cgroup, so its memory is charged there
/// (v1 does not move charges with a task). Returns its pid once the exec happened.
fn sleeper_charged_here(g: &mut Guard) -> i32 {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "read _; exec sleep 1000"]).stdin(Stdio::piped());
    let pid = g.spawn(&mut cmd);
    let child = g.children.last_mut().unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    for _ in 0..500 {
        if read(Path::new(&format!("/proc/{pid}/comm"))) == "sleep" {
            return pid;
        }
        sleep(Duration::from_millis(10));
    }
    panic!("child {pid} never exec'd sleep");
}

fn wait_gone(g: &mut Guard) {
    for c in &mut g.children {
        let st = c.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(libc::SIGKILL));
    }
    g.children.clear();
    for _ in 0..200 {
        if g.cg.pids().unwrap().is_empty() {
            return;
        }
        sleep(Duration::from_millis(10));
    }
    panic!("processes left in the cgroup: {:?}", g.cg.pids());
}

#[test]
fn detect_matches_the_mount_table() {
    let Ok(mode) = detect(Path::new(ROOT)) else {
        return skip("no cgroup file system at /sys/fs/cgroup");
    };
    let cg = Cgroup::new(Path::new(ROOT), Some(&format!("/{}", name("detect"))), "x").unwrap();
    assert_eq!(cg.mode(), mode);
    assert!(
        cg.mount_sources().iter().all(|(_, d)| !d.exists()),
        "new() must create nothing"
    );
}

#[test]
fn v1_lifecycle_limits_freeze_stats_kill_destroy() {
    if !is_root() {
        return skip("needs root");
    }
    let root = Path::new(ROOT);
    if !matches!(detect(root), Ok(Mode::Legacy | Mode::Hybrid)) {
        return skip("no cgroup v1 hierarchies");
    }
    let id = name("v1life");
    let cg = Cgroup::new(root, Some(&format!("/{id}")), &id).unwrap();
    let mut g = Guard::new(cg.clone());
    cg.create().unwrap();
    for (n, d) in cg.mount_sources() {
        assert!(d.is_dir(), "{n}: {} not created", d.display());
    }
    let cpus = read(&root.join("cpuset/cpuset.cpus"));
    if let Some(d) = cg.path("cpuset") {
        assert_eq!(read(&d.join("cpuset.cpus")), cpus, "cpuset copied from the parent");
    }

    cg.apply(&res(r#"{"memory":{"limit":67108864,"reservation":33554432},
            "pids":{"limit":16},
            "cpu":{"shares":512,"quota":20000,"period":100000,"cpus":"0"},
            "devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
                       {"allow":true,"type":"c","major":1,"minor":5,"access":"r"}]}"#))
        .unwrap();
    let p = |c: &str, f: &str| cg.path(c).unwrap().join(f);
    assert_eq!(read(&p("memory", "memory.limit_in_bytes")), "67108864");
    assert_eq!(read(&p("memory", "memory.soft_limit_in_bytes")), "33554432");
    if p("memory", "memory.memsw.limit_in_bytes").exists() {
        cg.apply(&res(r#"{"memory":{"limit":67108864,"swap":134217728}}"#))
            .unwrap();
        assert_eq!(read(&p("memory", "memory.memsw.limit_in_bytes")), "134217728");
    }
    assert_eq!(read(&p("pids", "pids.max")), "16");
    assert_eq!(read(&p("cpu", "cpu.shares")), "512");
    assert_eq!(read(&p("cpu", "cpu.cfs_quota_us")), "20000");
    assert_eq!(read(&p("cpu", "cpu.cfs_period_us")), "100000");
    assert_eq!(read(&p("cpuset", "cpuset.cpus")), "0");
    assert_eq!(read(&p("devices", "devices.list")), "c 1:3 rwm\nc 1:5 r");

    // The kernel refuses what the spec cannot mean; the error names field and value.
    let e = cg.apply(&res(r#"{"cpu":{"shares":1}}"#)).unwrap_err().to_string();
    assert!(e.contains("cpu.shares=1") && e.contains("clamped it to 2"), "{e}");

    let pid = sleeper_charged_here(&mut g);
    assert_eq!(cg.pids().unwrap(), [pid]);
    let own = read(Path::new(&format!("/proc/{pid}/cgroup")));
    assert!(own.contains(&format!(":memory:/{id}")), "{own}");
    if cg.mode() == Mode::Hybrid {
        assert!(own.contains(&format!("0::/{id}")), "hybrid: also in cgroup2\n{own}");
    }
    // checkBeforeUpdate refuses a limit below what the cgroup uses.
    let e = cg
        .apply(&res(r#"{"memory":{"limit":4096,"checkBeforeUpdate":true}}"#))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("memory.limit=4096") && e.contains("below current usage"),
        "{e}"
    );

    cg.freeze(FreezerState::Frozen).unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Frozen);
    assert_eq!(read(&p("freezer", "freezer.state")), "FROZEN");
    cg.freeze(FreezerState::Thawed).unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Thawed);

    let s = cg.stats().unwrap();
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, 16);
    assert!(s.memory.usage.usage > 0);
    assert_eq!(s.memory.usage.limit, 67108864);
    assert!(s.memory.raw.contains_key("rss"), "{:?}", s.memory.raw);
    if cg.path("cpuacct").is_some() {
        assert!(!s.cpu.percpu_usage.is_empty());
    }
    assert_eq!(cg.oom_kill_count().unwrap(), 0);

    // Busy: destroy reports the cgroup instead of removing it.
    let e = cg.destroy().unwrap_err().to_string();
    assert!(e.contains("rmdir") && e.contains(&id), "{e}");

    cg.kill_all(libc::SIGKILL).unwrap();
    wait_gone(&mut g);
    cg.destroy().unwrap();
    for (n, d) in cg.mount_sources() {
        assert!(!d.exists(), "{n}: {} left", d.display());
    }
}

#[test]
fn v1_kill_all_with_a_signal_freezes_around_it() {
    if !is_root() {
        return skip("needs root");
    }
    let root = Path::new(ROOT);
    if !matches!(detect(root), Ok(Mode::Legacy | Mode::Hybrid)) {
        return skip("no cgroup v1 hierarchies");
    }
    let id = name("v1term");
    let cg = Cgroup::new(root, Some(&format!("/{id}")), &id).unwrap();
    let mut g = Guard::new(cg.clone());
    cg.create().unwrap();
    let a = g.spawn(&mut sleeper());
    let b = g.spawn(&mut sleeper());
    let mut want = vec![a, b];
    want.sort_unstable();
    assert_eq!(cg.pids().unwrap(), want);
    cg.kill_all(libc::SIGTERM).unwrap();
    for c in &mut g.children {
        let st = c.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(libc::SIGTERM));
    }
    g.children.clear();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Thawed);
}

#[test]
fn relative_and_default_paths_go_below_our_own_cgroup() {
    if !is_root() {
        return skip("needs root");
    }
    let root = Path::new(ROOT);
    if detect(root).is_err() {
        return skip("no cgroup file system");
    }
    let id = name("rel");
    let cg = Cgroup::new(root, None, &id).unwrap();
    let g = Guard::new(cg.clone());
    let own = read(Path::new("/proc/self/cgroup"));
    cg.create().unwrap();
    for (n, d) in cg.mount_sources() {
        assert!(d.is_dir(), "{n}: {}", d.display());
        assert!(d.ends_with(&id));
    }
    // Our own memory cgroup (if any) is the parent of the container's.
    if let (Some(line), Some(dir)) = (own.lines().find(|l| l.contains(":memory:")), cg.path("memory")) {
        let own_mem = line.splitn(3, ':').nth(2).unwrap().trim_start_matches('/');
        assert_eq!(dir, root.join("memory").join(own_mem).join(&id));
    }
    drop(g);
    for (n, d) in cg.mount_sources() {
        assert!(!d.exists(), "{n}: guard left {}", d.display());
    }
}

/// Runs `sh` in the cgroup; it waits for a line on stdin, then tries each device and prints
/// "<dev> r|w ok|denied" for a read and a write open. (`true`, not `:`, takes the redirection:
/// a failed redirection on a special builtin ends a POSIX shell.)
fn probe_devices(g: &mut Guard, devs: &[&str]) -> Vec<String> {
    let script = format!(
        "read _; for d in {}; do if true <\"$d\"; then echo \"$d r ok\"; else echo \"$d r denied\"; fi; \
         if true >\"$d\"; then echo \"$d w ok\"; else echo \"$d w denied\"; fi; done",
        devs.join(" ")
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    g.spawn(&mut cmd);
    let child = g.children.last_mut().unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| l.unwrap())
        .collect();
    child.wait().unwrap();
    g.children.pop();
    out
}

#[test]
fn v2_driver_on_the_cgroup2_mount() {
    if !is_root() {
        return skip("needs root");
    }
    let Some(root2) = cgroup2_root() else {
        return skip("no cgroup2 mount");
    };
    let id = name("v2");
    let cg = Cgroup::new(&root2, Some(&format!("/{id}")), &id).unwrap();
    assert_eq!(cg.mode(), Mode::Unified);
    let mut g = Guard::new(cg.clone());
    cg.create().unwrap();
    let dir = cg.unified_path().unwrap().to_path_buf();
    assert!(dir.is_dir());
    // The root's controllers were enabled for the container.
    let root_ctrls = read(&root2.join("cgroup.controllers"));
    let ctrls = read(&dir.join("cgroup.controllers"));
    for c in root_ctrls.split_whitespace() {
        assert!(ctrls.split_whitespace().any(|x| x == c), "{c} not enabled: {ctrls}");
    }

    if ctrls.split_whitespace().any(|c| c == "memory") {
        cg.apply(&res(r#"{"memory":{"limit":67108864}}"#)).unwrap();
        assert_eq!(read(&dir.join("memory.max")), "67108864");
    } else {
        let e = cg.apply(&res(r#"{"memory":{"limit":67108864}}"#)).unwrap_err();
        assert!(matches!(e, Error::MissingController(ref c) if c == "memory"), "{e}");
    }
    if ctrls.split_whitespace().any(|c| c == "pids") {
        cg.apply(&res(r#"{"pids":{"limit":32}}"#)).unwrap();
        assert_eq!(read(&dir.join("pids.max")), "32");
    }
    if ctrls.split_whitespace().any(|c| c == "hugetlb") && dir.join("hugetlb.2MB.max").exists() {
        cg.apply(&res(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#))
            .unwrap();
        assert_eq!(read(&dir.join("hugetlb.2MB.max")), "4194304");
    }

    let pid = g.spawn(&mut sleeper());
    assert_eq!(cg.pids().unwrap(), [pid]);
    cg.freeze(FreezerState::Frozen).unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Frozen);
    assert!(read(&dir.join("cgroup.events")).contains("frozen 1"));
    cg.freeze(FreezerState::Thawed).unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Thawed);
    let s = cg.stats().unwrap();
    if dir.join("hugetlb.2MB.current").exists() {
        assert!(s.hugetlb.contains_key("2MB"), "{:?}", s.hugetlb);
    }
    if dir.join("pids.current").exists() {
        assert_eq!(s.pids.current, 1);
    }

    cg.kill_all(libc::SIGKILL).unwrap();
    wait_gone(&mut g);
    cg.destroy().unwrap();
    assert!(!dir.exists());
}

#[test]
fn v2_device_filter_is_enforced_and_replaced() {
    if !is_root() {
        return skip("needs root");
    }
    let Some(root2) = cgroup2_root() else {
        return skip("no cgroup2 mount");
    };
    let id = name("bpf");
    let cg = Cgroup::new(&root2, Some(&format!("/{id}")), &id).unwrap();
    let mut g = Guard::new(cg.clone());
    cg.create().unwrap();
    // null: everything; zero: read only; full (1:7): nothing.
    cg.apply(&res(r#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":5,"access":"r"}]}"#))
        .unwrap();
    let out = probe_devices(&mut g, &["/dev/null", "/dev/zero", "/dev/full"]);
    assert_eq!(
        out,
        [
            "/dev/null r ok",
            "/dev/null w ok",
            "/dev/zero r ok",
            "/dev/zero w denied",
            "/dev/full r denied",
            "/dev/full w denied"
        ]
    );
    // A second apply replaces the program: with both attached, /dev/full would stay denied.
    cg.apply(&res(
        r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":7,"access":"rw"}]}"#,
    ))
    .unwrap();
    let out = probe_devices(&mut g, &["/dev/null", "/dev/full"]);
    assert_eq!(
        out,
        [
            "/dev/null r denied",
            "/dev/null w denied",
            "/dev/full r ok",
            "/dev/full w ok"
        ]
    );
    cg.destroy().unwrap();
}
