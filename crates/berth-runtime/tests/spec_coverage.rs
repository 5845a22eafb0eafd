//! runtime-spec 1.2 features not covered elsewhere, each on a real container as root.
//! Every refusal or isolation check has a positive control in the same test.

mod common;

use std::io::BufRead;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_nothing_left, unique, Ct};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// Helpers

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn add_mount(c: &mut Ct, m: Value) {
    let mut mounts = c.config["mounts"].as_array().unwrap().clone();
    mounts.push(m);
    c.config["mounts"] = mounts.into();
}

fn add_namespace(c: &mut Ct, ns: Value) {
    let mut list = c.config["linux"]["namespaces"].as_array().unwrap().clone();
    list.push(ns);
    c.config["linux"]["namespaces"] = list.into();
}

fn remove_namespace(c: &mut Ct, typ: &str) {
    let list: Vec<Value> = c.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != typ)
        .cloned()
        .collect();
    c.config["linux"]["namespaces"] = list.into();
}

/// `run -d`, asserting success.
fn run_detached(c: &Ct) {
    let b = c.bundle.path().to_str().unwrap().to_string();
    let (ok, err) = c.rt_detached(&["run", "-d", "--bundle", &b, &c.id]);
    assert!(ok, "run -d: {err}");
}

/// Run in the foreground, asserting exit 0; returns stdout.
fn run_ok(c: &Ct) -> String {
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    out
}

fn exec_ok(c: &Ct, args: &[&str]) -> String {
    let out = c.exec(args);
    assert!(out.status.success(), "exec {args:?}: {}", stderr(&out));
    stdout(&out)
}

fn init_pid(c: &Ct) -> i32 {
    c.state().expect("state")["pid"].as_i64().unwrap() as i32
}

/// Gone, or a zombie nobody reaped yet.
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

fn mount_raw(src: &str, target: &Path, fstype: Option<&str>, flags: libc::c_ulong, data: Option<&str>) {
    use std::ffi::CString;
    let src = CString::new(src).unwrap();
    let tgt = CString::new(target.as_os_str().as_encoded_bytes()).unwrap();
    let fstype = fstype.map(|f| CString::new(f).unwrap());
    let data = data.map(|d| CString::new(d).unwrap());
    // SAFETY: mount(2) with NUL-terminated strings that live across the call.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            data.as_ref().map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    assert_eq!(r, 0, "mount {target:?}: {}", std::io::Error::last_os_error());
}

/// Host mounts made by a test, detached again in Drop (last made first), even on failure.
#[derive(Default)]
struct HostMounts(Vec<PathBuf>);

impl HostMounts {
    fn tmpfs(&mut self, target: &Path, data: &str) {
        mount_raw("tmpfs", target, Some("tmpfs"), 0, Some(data));
        self.0.push(target.to_path_buf());
    }

    /// Bind `dir` onto itself and make it a shared mount (the host's / is private here).
    fn shared_bind(&mut self, dir: &Path) {
        let s = dir.to_str().unwrap();
        mount_raw(s, dir, None, libc::MS_BIND, None);
        self.0.push(dir.to_path_buf());
        mount_raw("none", dir, None, libc::MS_SHARED, None);
    }
}

impl Drop for HostMounts {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: umount2 with a NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// A child process killed (and reaped) in Drop.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chown_tree(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
    let md = std::fs::symlink_metadata(p).unwrap();
    if md.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

/// Words of each line, whitespace collapsed.
fn squash(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------
// Namespaces

#[test]
fn user_namespace_with_id_mappings() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("rootowned"), "x").unwrap();
    chown_tree(data.path(), 100000, 100000);
    std::os::unix::fs::lchown(data.path().join("rootowned"), Some(0), Some(0)).unwrap();
    chmod(data.path(), 0o755);
    let script = "id -u; id -g; cat /proc/self/uid_map; cat /proc/self/gid_map; \
                  stat -c %u /bin/busybox; stat -c %u /data/rootowned; touch /data/made && echo made";
    let mut c = Ct::new(&["sh", "-c", script]);
    add_namespace(&mut c, json!({"type": "user"}));
    c.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    add_mount(
        &mut c,
        json!({"destination": "/data", "type": "bind", "source": data.path(), "options": ["rbind"]}),
    );
    c.save();
    // The container's root (host uid 100000) must be able to reach its rootfs.
    chown_tree(&c.rootfs(), 100000, 100000);
    chmod(c.bundle.path(), 0o755);
    let out = squash(&run_ok(&c));
    assert_eq!(
        out, "0\n0\n0 100000 65536\n0 100000 65536\n0\n65534\nmade",
        "inside the user namespace"
    );
    let md = std::fs::metadata(data.path().join("made")).unwrap();
    assert_eq!((md.uid(), md.gid()), (100000, 100000), "owner on the host");
    assert_nothing_left(&c);

    // Positive control: without the user namespace, root is host root.
    std::fs::remove_file(data.path().join("made")).unwrap();
    chown_tree(data.path(), 0, 0);
    let mut c = Ct::new(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; touch /data/made && echo made",
    ]);
    add_mount(
        &mut c,
        json!({"destination": "/data", "type": "bind", "source": data.path(), "options": ["rbind"]}),
    );
    c.save();
    assert_eq!(squash(&run_ok(&c)), "0\n0 0 4294967295\nmade");
    assert_eq!(std::fs::metadata(data.path().join("made")).unwrap().uid(), 0);
}

fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn time_namespace_offsets() {
    const OFF: f64 = 86400.0;
    let mut c = Ct::new(&["cat", "/proc/uptime"]);
    add_namespace(&mut c, json!({"type": "time"}));
    c.config["linux"]["timeOffsets"] = json!({
        "boottime": {"secs": OFF as i64, "nanosecs": 0},
        "monotonic": {"secs": OFF as i64, "nanosecs": 0}
    });
    c.save();
    let before = uptime();
    let inside: f64 = run_ok(&c).split_whitespace().next().unwrap().parse().unwrap();
    let after = uptime();
    assert!(
        inside >= before + OFF - 1.0 && inside <= after + OFF + 1.0,
        "uptime inside {inside}, host {before}..{after}"
    );
    // Positive control: no time namespace, no offset.
    let c = Ct::new(&["cat", "/proc/uptime"]);
    let before = uptime();
    let inside: f64 = run_ok(&c).split_whitespace().next().unwrap().parse().unwrap();
    assert!((inside - before).abs() < 30.0, "uptime inside {inside}, host {before}");
}

#[test]
fn cgroup_namespace_shows_root_paths() {
    let c = Ct::new(&["cat", "/proc/self/cgroup"]);
    assert!(
        c.config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "cgroup"),
        "the default spec has a cgroup namespace"
    );
    let out = run_ok(&c);
    assert!(out.lines().count() > 3, "{out}");
    for l in out.lines() {
        assert!(l.ends_with(":/"), "not the namespace root: {l:?} in\n{out}");
    }
    // Positive control: without the namespace the container's own cgroup shows.
    let mut c = Ct::new(&["cat", "/proc/self/cgroup"]);
    remove_namespace(&mut c, "cgroup");
    c.save();
    let out = run_ok(&c);
    let want = format!("/berth-test-{}", c.id);
    let pids = out.lines().find(|l| l.contains(":pids:")).unwrap_or_default();
    assert!(pids.ends_with(&want), "pids line {pids:?} in\n{out}");
}

#[test]
fn join_namespaces_by_path() {
    let mut a = Ct::new(&["sleep", "30"]);
    a.config["hostname"] = "alpha".into();
    a.save();
    run_detached(&a);
    let pid = init_pid(&a);
    let a_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();

    let script = "hostname; readlink /proc/self/ns/net";
    let mut b = Ct::new(&["sh", "-c", script]);
    b.config.as_object_mut().unwrap().remove("hostname");
    for n in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        match n["type"].as_str().unwrap() {
            "network" => n["path"] = format!("/proc/{pid}/ns/net").into(),
            "uts" => n["path"] = format!("/proc/{pid}/ns/uts").into(),
            _ => {}
        }
    }
    b.save();
    let out = run_ok(&b);
    assert_eq!(out, format!("alpha\n{}\n", a_net.display()));

    // Positive control: the same container with namespaces of its own.
    let c = Ct::new(&["sh", "-c", script]);
    let out = run_ok(&c);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "berth");
    assert_ne!(lines[1], a_net.to_str().unwrap());
    // A namespace path that does not exist is refused by name.
    let mut d = Ct::new(&["true"]);
    d.config.as_object_mut().unwrap().remove("hostname");
    for n in d.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "uts" {
            n["path"] = "/proc/999999999/ns/uts".into();
        }
    }
    d.save();
    let (ok, err) = d.create();
    assert!(!ok);
    assert!(err.contains("linux.namespaces[uts].path"), "{err}");
    assert_nothing_left(&d);
}

// ---------------------------------------------------------------------------------------
// Mounts

#[test]
fn mount_rro_is_recursive() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("sub")).unwrap();
    let mut hm = HostMounts::default();
    hm.tmpfs(&data.path().join("sub"), "size=1m");
    let script = "touch /data/top 2>/dev/null && echo top-rw || echo top-ro; \
                  touch /data/sub/x 2>/dev/null && echo sub-rw || echo sub-ro";
    let with = |opts: Value| {
        let mut c = Ct::new(&["sh", "-c", script]);
        add_mount(
            &mut c,
            json!({"destination": "/data", "type": "bind", "source": data.path(), "options": opts}),
        );
        c.save();
        run_ok(&c)
    };
    assert_eq!(with(json!(["rbind", "rro"])), "top-ro\nsub-ro\n");
    // Positive control: plain "ro" leaves the submount writable.
    assert_eq!(with(json!(["rbind", "ro"])), "top-ro\nsub-rw\n");
    assert!(data.path().join("sub/x").exists());
}

#[test]
fn mount_nosymfollow() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("f"), "content").unwrap();
    std::os::unix::fs::symlink("f", data.path().join("link")).unwrap();
    let script = "cat /data/f; echo; readlink /data/link; \
                  cat /data/link >/dev/null 2>&1 && echo followed || echo refused";
    let with = |opts: Value| {
        let mut c = Ct::new(&["sh", "-c", script]);
        add_mount(
            &mut c,
            json!({"destination": "/data", "type": "bind", "source": data.path(), "options": opts}),
        );
        c.save();
        run_ok(&c)
    };
    assert_eq!(with(json!(["bind", "nosymfollow"])), "content\nf\nrefused\n");
    // Positive control.
    assert_eq!(with(json!(["bind"])), "content\nf\nfollowed\n");
}

#[test]
fn mount_propagation_rslave_rshared_rprivate() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("sub")).unwrap();
    let mut hm = HostMounts::default();
    hm.shared_bind(data.path());
    let start = |prop: &str| {
        let mut c = Ct::new(&["sleep", "30"]);
        add_mount(
            &mut c,
            json!({"destination": "/data", "type": "bind", "source": data.path(), "options": ["rbind", prop]}),
        );
        c.save();
        run_detached(&c);
        c
    };
    let slave = start("rslave");
    let shared = start("rshared");
    let private = start("rprivate");
    // A mount made on the host after the containers started.
    hm.tmpfs(&data.path().join("sub"), "size=1m");
    std::fs::write(data.path().join("sub/marker"), "propagated").unwrap();
    let look = |c: &Ct| stdout(&c.exec(&["sh", "-c", "cat /data/sub/marker 2>/dev/null || echo absent"]));
    assert_eq!(look(&slave), "propagated");
    assert_eq!(look(&shared), "propagated");
    assert_eq!(look(&private), "absent\n");
}

#[test]
fn tmpfs_options_visible_in_proc_mounts() {
    let mut c = Ct::new(&["sh", "-c", "grep ' /t ' /proc/mounts; stat -c %a /t"]);
    add_mount(
        &mut c,
        json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
               "options": ["size=2m", "mode=1770", "nosuid", "nodev", "noexec"]}),
    );
    c.save();
    let out = run_ok(&c);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let opts: Vec<&str> = lines[0].split_whitespace().nth(3).unwrap().split(',').collect();
    for want in ["rw", "nosuid", "nodev", "noexec", "size=2048k", "mode=1770"] {
        assert!(opts.contains(&want), "{want} missing in {}", lines[0]);
    }
    assert_eq!(lines[1], "1770");
}

#[test]
fn custom_readonly_and_masked_paths() {
    let script = "cat /ro-dir/f; echo; touch /ro-dir/x 2>/dev/null && echo ro-writable || echo ro-ro; \
                  ls -A /mask-dir | wc -l; wc -c < /mask-file; \
                  touch /mask-dir/x 2>/dev/null && echo mask-writable || echo mask-ro; \
                  touch /rw-dir/x && echo rw-ok; cat /plain";
    let mut c = Ct::new(&["sh", "-c", script]);
    let r = c.rootfs();
    for d in ["ro-dir", "mask-dir", "rw-dir"] {
        std::fs::create_dir(r.join(d)).unwrap();
    }
    std::fs::write(r.join("ro-dir/f"), "r").unwrap();
    std::fs::write(r.join("mask-dir/f"), "secret").unwrap();
    std::fs::write(r.join("mask-file"), "secret").unwrap();
    std::fs::write(r.join("plain"), "plain").unwrap();
    c.config["linux"]["readonlyPaths"] = json!(["/ro-dir", "/no-such-ro"]);
    c.config["linux"]["maskedPaths"] = json!(["/mask-dir", "/mask-file", "/no-such-mask"]);
    c.save();
    let out = run_ok(&c);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["r", "ro-ro", "0", "0", "mask-ro", "rw-ok", "plain"], "{out}");
    // The host files are untouched.
    assert_eq!(std::fs::read_to_string(r.join("mask-file")).unwrap(), "secret");
    assert!(!r.join("ro-dir/x").exists());
    assert!(r.join("rw-dir/x").exists());
}

#[test]
fn domainname_needs_and_uses_uts_namespace() {
    let host = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let mut c = Ct::new(&["cat", "/proc/sys/kernel/domainname"]);
    c.config["domainname"] = "example.org".into();
    c.save();
    assert_eq!(run_ok(&c), "example.org\n");
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(), host);
    // Without a uts namespace of its own it is refused, naming the field.
    let mut c = Ct::new(&["true"]);
    c.config["domainname"] = "example.org".into();
    c.config.as_object_mut().unwrap().remove("hostname");
    remove_namespace(&mut c, "uts");
    c.save();
    let (ok, err) = c.create();
    assert!(!ok);
    assert!(err.contains("domainname"), "{err}");
    assert_nothing_left(&c);
}

#[test]
fn readonly_root_with_no_pivot() {
    let script = "touch /x 2>/dev/null && echo root-rw || echo root-ro; touch /dev/shm/y && echo shm-rw";
    let run_no_pivot = |ro: bool| {
        let mut c = Ct::new(&["sh", "-c", script]);
        c.config["root"]["readonly"] = ro.into();
        c.save();
        let b = c.bundle.path().to_str().unwrap().to_string();
        let out = c.rt(&["run", "--no-pivot", "--bundle", &b, &c.id]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_nothing_left(&c);
        (stdout(&out), c.rootfs().join("x").exists())
    };
    assert_eq!(run_no_pivot(true), ("root-ro\nshm-rw\n".to_string(), false));
    // Positive control.
    assert_eq!(run_no_pivot(false), ("root-rw\nshm-rw\n".to_string(), true));
}

// ---------------------------------------------------------------------------------------
// Process attributes

#[test]
fn process_oom_rlimits_umask_groups() {
    let script = "cat /proc/self/oom_score_adj; \
                  grep -E '^Max (cpu time|core file size|open files|msgqueue size)' /proc/self/limits; \
                  umask; touch /tmp/f; stat -c %a /tmp/f; grep Groups: /proc/self/status";
    let mut c = Ct::new(&["sh", "-c", script]);
    c.config["process"]["oomScoreAdj"] = 500.into();
    c.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
        {"type": "RLIMIT_CORE", "soft": 1024, "hard": 2048},
        {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192},
        {"type": "RLIMIT_CPU", "soft": 100, "hard": 200}
    ]);
    c.config["process"]["user"] = json!({"uid": 0, "gid": 0, "umask": 0o027, "additionalGids": [10, 20]});
    c.save();
    let out = squash(&run_ok(&c));
    assert_eq!(
        out,
        "500\nMax cpu time 100 200 seconds\nMax core file size 1024 2048 bytes\n\
         Max open files 100 200 files\nMax msgqueue size 4096 8192 bytes\n0027\n640\nGroups: 10 20"
    );
}

#[test]
fn rlimit_above_hard_limit_is_refused() {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) }, 0);
    let hard = cur.rlim_max + 1000;
    let mut c = Ct::new(&["true"]);
    c.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard}]);
    c.save();
    let (ok, err) = c.create();
    assert!(!ok, "raising the hard limit without CAP_SYS_RESOURCE worked");
    assert!(err.contains("RLIMIT_NOFILE"), "{err}");
    assert!(err.contains("process.rlimits"), "{err}");
    assert_nothing_left(&c);
    // Positive control: at the current hard limit it works.
    let mut c = Ct::new(&["sh", "-c", "ulimit -Hn"]);
    c.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": cur.rlim_max}]);
    c.save();
    assert_eq!(run_ok(&c).trim(), cur.rlim_max.to_string());
}

#[test]
fn process_io_priority_scheduler_personality() {
    // /proc/self/stat field 19 is nice, 41 the scheduling policy (3 = SCHED_BATCH, 5 = SCHED_IDLE).
    let script = "ionice -p $$; cut -d' ' -f19,41 /proc/self/stat; uname -m";
    let mut c = Ct::new(&["sh", "-c", script]);
    c.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    c.config["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
    c.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    c.save();
    assert_eq!(run_ok(&c), "best-effort: prio 6\n5 3\ni686\n");

    let mut c = Ct::new(&["sh", "-c", script]);
    c.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    c.config["process"]["scheduler"] = json!({"policy": "SCHED_IDLE"});
    c.save();
    assert_eq!(run_ok(&c), "idle\n0 5\nx86_64\n");

    // Positive control: the defaults.
    let c = Ct::new(&["sh", "-c", "cut -d' ' -f19,41 /proc/self/stat; uname -m"]);
    assert_eq!(run_ok(&c), "0 0\nx86_64\n");
}

#[test]
fn exec_cpu_affinity_final() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("skipped: needs 2 cpus");
        return;
    }
    let all = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:").map(|v| v.trim().to_string()))
        .unwrap();
    let mut c = Ct::new(&["sleep", "30"]);
    c.config["process"]["execCPUAffinity"] = json!({"final": "1"});
    c.save();
    run_detached(&c);
    let list = "grep Cpus_allowed_list /proc/self/status | cut -f2";
    // Exec'd processes get it: from config.json's process, or from --process.
    assert_eq!(exec_ok(&c, &["sh", "-c", list]), "1\n");
    let p = c.bundle.path().join("p.json");
    std::fs::write(
        &p,
        json!({"args": ["sh", "-c", list], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"],
               "execCPUAffinity": {"final": "0"}})
        .to_string(),
    )
    .unwrap();
    assert_eq!(exec_ok(&c, &["--process", p.to_str().unwrap()]), "0\n");
    // runtime-spec: "not applicable to the container's init process".
    assert_eq!(
        exec_ok(&c, &["sh", "-c", "grep Cpus_allowed_list /proc/1/status | cut -f2"]),
        format!("{all}\n")
    );
    // Positive control: without it, an exec'd process may use every cpu.
    std::fs::write(
        &p,
        json!({"args": ["sh", "-c", list], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}).to_string(),
    )
    .unwrap();
    assert_eq!(exec_ok(&c, &["--process", p.to_str().unwrap()]), format!("{all}\n"));
}

#[test]
fn no_new_privileges_false_and_true() {
    for (nnp, want) in [(false, "0"), (true, "1")] {
        let mut c = Ct::new(&["grep", "NoNewPrivs", "/proc/self/status"]);
        c.config["process"]["noNewPrivileges"] = nnp.into();
        c.save();
        assert_eq!(squash(&run_ok(&c)), format!("NoNewPrivs: {want}"));
    }
}

#[test]
fn apparmor_and_selinux_refused_where_absent() {
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.starts_with('Y'));
    let selinux = Path::new("/sys/fs/selinux/enforce").exists();
    if apparmor || selinux {
        eprintln!("skipped: this host has AppArmor or SELinux");
        return;
    }
    for (field, value) in [
        ("apparmorProfile", "berth-test-profile"),
        ("selinuxLabel", "system_u:system_r:container_t:s0"),
    ] {
        let mut c = Ct::new(&["true"]);
        c.config["process"][field] = value.into();
        c.save();
        let (ok, err) = c.create();
        assert!(!ok, "{field} accepted");
        assert!(err.contains(field) && err.contains("not enabled"), "{err}");
        assert_nothing_left(&c);
    }
    // Positive control, and the same refusals for exec.
    let c = Ct::new(&["sleep", "30"]);
    run_detached(&c);
    assert_eq!(exec_ok(&c, &["echo", "ok"]), "ok\n");
    let out = c.exec(&["--apparmor", "berth-test-profile", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("apparmorProfile"), "{}", stderr(&out));
    let out = c.exec(&["--process-label", "system_u:system_r:container_t:s0", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("selinuxLabel"), "{}", stderr(&out));
    assert_eq!(c.status(), "running");
}

// ---------------------------------------------------------------------------------------
// Devices

#[test]
fn devices_and_device_cgroup() {
    let script = "stat -c '%F %t:%T %a %u:%g' /dev/mytty; head -c 4 /dev/myzero | wc -c; \
                  mknod /dev/mymem c 1 1 && echo made-mem; \
                  head -c 1 /dev/mymem 2>&1 >/dev/null | grep -q 'Operation not permitted' && echo mem-eperm; \
                  mknod /dev/mynull c 1 3 && echo x > /dev/mynull && echo null-ok";
    let mut c = Ct::new(&["sh", "-c", script]);
    c.config["linux"]["devices"] = json!([
        {"path": "/dev/mytty", "type": "c", "major": 5, "minor": 0, "fileMode": 0o600, "uid": 1000, "gid": 1001},
        {"path": "/dev/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640, "uid": 0, "gid": 0}
    ]);
    for set in ["bounding", "effective", "permitted"] {
        let mut caps = c.config["process"]["capabilities"][set].as_array().unwrap().clone();
        caps.push("CAP_MKNOD".into());
        c.config["process"]["capabilities"][set] = caps.into();
    }
    c.save();
    let out = run_ok(&c);
    assert_eq!(
        out.lines().map(str::trim).collect::<Vec<_>>(),
        [
            "character special file 5:0 600 1000:1001",
            "4",
            "made-mem",
            "mem-eperm",
            "null-ok"
        ],
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------
// Hooks

#[test]
fn create_container_and_start_container_hooks() {
    let mut c = Ct::new(&["sh", "-c", "test -f /started.json && echo after-hook > /order"]);
    let cc = c.bundle.path().join("cc.json");
    let cc_mnt = c.bundle.path().join("cc.mnt");
    c.config["hooks"] = json!({
        // Runs in the container's namespaces, path resolved on the host.
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
            format!("cat > {}; readlink /proc/self/ns/mnt > {}", cc.display(), cc_mnt.display())]}],
        // Runs inside the container, after start, before the program.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
            "cat > /started.json; hostname > /started.host"]}],
    });
    c.save();
    let (ok, err) = c.create();
    assert!(ok, "{err}");
    let pid = init_pid(&c);
    let st: Value = serde_json::from_str(&std::fs::read_to_string(&cc).unwrap()).unwrap();
    assert_eq!(st["id"], c.id.as_str());
    assert_eq!(st["pid"], pid);
    let mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    assert_eq!(std::fs::read_to_string(&cc_mnt).unwrap().trim(), mnt.to_str().unwrap());
    assert_ne!(mnt, std::fs::read_link("/proc/self/ns/mnt").unwrap());
    // startContainer has not run yet.
    assert!(!c.rootfs().join("started.json").exists());

    let out = c.rt(&["start", &c.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let order = c.rootfs().join("order");
    assert!(wait_for(Duration::from_secs(5), || order.exists()));
    assert_eq!(std::fs::read_to_string(&order).unwrap(), "after-hook\n");
    let st: Value = serde_json::from_str(&std::fs::read_to_string(c.rootfs().join("started.json")).unwrap()).unwrap();
    assert_eq!(st["id"], c.id.as_str());
    assert_eq!(
        std::fs::read_to_string(c.rootfs().join("started.host")).unwrap(),
        "berth\n"
    );
}

/// A process whose command line carries `marker` (the hooks' grandchildren).
fn process_with(marker: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        (cmd.contains(marker) && !dead(pid)).then_some(pid)
    })
}

#[test]
fn hook_timeouts_leave_nothing() {
    let check = |stage: &str| {
        // The hook's shell forks a sleep: the whole hook, not only its shell, must go.
        // A unique sleep duration marks the grandchild.
        let n = unique("h").rsplit('-').next().unwrap().parse::<u32>().unwrap();
        let secs = format!("9.{:06}{}", std::process::id() % 1_000_000, n);
        let mut c = Ct::new(&["true"]);
        c.config["hooks"] = json!({
            stage: [{"path": "/bin/sh", "args": ["sh", "-c", format!("sleep {secs}; true")], "timeout": 1}]
        });
        c.save();
        let t = Instant::now();
        let (ok, err) = c.create();
        assert!(!ok, "{stage}: a hung hook was not stopped");
        assert!(t.elapsed() < Duration::from_secs(5), "{stage}: took {:?}", t.elapsed());
        assert!(err.contains(stage) && err.contains("timed out"), "{err}");
        assert_nothing_left(&c);
        let left = format!("sleep {secs}");
        assert!(
            wait_for(Duration::from_secs(1), || process_with(&left).is_none()),
            "{stage}: hook process {left:?} left running"
        );
    };
    std::thread::scope(|s| {
        for stage in ["prestart", "createRuntime", "createContainer"] {
            s.spawn(move || check(stage));
        }
    });
    // Positive control: a quick hook within its timeout.
    let mut c = Ct::new(&["true"]);
    c.config["hooks"] = json!({"createContainer": [{"path": "/bin/true", "timeout": 5}]});
    c.save();
    run_ok(&c);
    assert_nothing_left(&c);
}

// ---------------------------------------------------------------------------------------
// Life cycle details

#[test]
fn kill_all_reaches_every_process() {
    let c = Ct::new(&["sleep", "30"]);
    run_detached(&c);
    let mut pids = Vec::new();
    for i in 0..3 {
        let pf = c.bundle.path().join(format!("e{i}.pid"));
        let (ok, err) = c.rt_detached(&["exec", "-d", "--pid-file", pf.to_str().unwrap(), &c.id, "sleep", "31"]);
        assert!(ok, "{err}");
        pids.push(std::fs::read_to_string(&pf).unwrap().parse::<i32>().unwrap());
    }
    let ps = |c: &Ct| -> Vec<i32> { serde_json::from_slice(&c.rt(&["ps", "--format", "json", &c.id]).stdout).unwrap() };
    assert_eq!(ps(&c).len(), 4);
    // Positive control: without --all, SIGTERM goes to the init only (which, as a pid
    // namespace's init without a handler, ignores it): nothing dies.
    assert!(c.rt(&["kill", &c.id, "TERM"]).status.success());
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        pids.iter().all(|p| !dead(*p)),
        "kill without --all reached exec'd processes"
    );
    assert_eq!(c.status(), "running");
    // --all: every process gets it; the exec'd sleeps die, the init stays.
    let out = c.rt(&["kill", "--all", &c.id, "TERM"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wait_for(Duration::from_secs(5), || pids.iter().all(|p| dead(*p))));
    assert_eq!(c.status(), "running");
    let out = c.rt(&["kill", "-a", &c.id, "KILL"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(c.wait_status("stopped", Duration::from_secs(5)));
    assert!(c.rt(&["delete", &c.id]).status.success());
    assert_nothing_left(&c);
}

#[test]
fn delete_created_container_force() {
    let c = Ct::new(&["sleep", "30"]);
    let (ok, err) = c.create();
    assert!(ok, "{err}");
    let pid = init_pid(&c);
    let out = c.rt(&["delete", "--force", &c.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wait_for(Duration::from_secs(5), || dead(pid)));
    assert!(c.state().is_none());
    assert_nothing_left(&c);
}

/// runc deletes a created (never started) container without --force.
#[test]
fn delete_created_container_without_force() {
    let c = Ct::new(&["sleep", "30"]);
    let (ok, err) = c.create();
    assert!(ok, "{err}");
    let pid = init_pid(&c);
    let out = c.rt(&["delete", &c.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wait_for(Duration::from_secs(5), || dead(pid)));
    assert_nothing_left(&c);
    // Positive control: a running one still needs --force.
    let c = Ct::new(&["sleep", "30"]);
    run_detached(&c);
    assert!(!c.rt(&["delete", &c.id]).status.success());
    assert_eq!(c.status(), "running");
}

#[test]
fn pid_files_of_create_and_run() {
    let c = Ct::new(&["sleep", "30"]);
    let b = c.bundle.path().to_str().unwrap().to_string();
    let pf = c.bundle.path().join("create.pid");
    let (ok, err) = c.rt_detached(&["create", "--pid-file", pf.to_str().unwrap(), "--bundle", &b, &c.id]);
    assert!(ok, "{err}");
    let pid: i32 = std::fs::read_to_string(&pf).unwrap().parse().unwrap();
    assert_eq!(pid, init_pid(&c));
    assert!(c.rt(&["start", &c.id]).status.success());
    // `start` returns once the init is released; it execs the program soon after.
    let is_sleep = || std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\x0030"));
    assert!(wait_for(Duration::from_secs(5), is_sleep));

    let c = Ct::new(&["sleep", "30"]);
    let b = c.bundle.path().to_str().unwrap().to_string();
    let pf = c.bundle.path().join("sub/run.pid");
    std::fs::create_dir(c.bundle.path().join("sub")).unwrap();
    let (ok, err) = c.rt_detached(&["run", "-d", "--pid-file", pf.to_str().unwrap(), "--bundle", &b, &c.id]);
    assert!(ok, "{err}");
    let pid: i32 = std::fs::read_to_string(&pf).unwrap().parse().unwrap();
    assert_eq!(pid, init_pid(&c));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with(b"sleep\x0030"), "{cmdline:?}");
}

#[test]
fn paused_container_exec_refused_and_force_delete() {
    let c = Ct::new(&["sleep", "30"]);
    run_detached(&c);
    let pid = init_pid(&c);
    assert!(c.rt(&["pause", &c.id]).status.success());
    assert_eq!(c.status(), "paused");
    let out = c.exec(&["true"]);
    assert!(!out.status.success(), "exec into a paused container");
    assert!(stderr(&out).contains("paused"), "{}", stderr(&out));
    // Positive control: after resume the same exec works.
    assert!(c.rt(&["resume", &c.id]).status.success());
    assert_eq!(exec_ok(&c, &["echo", "hi"]), "hi\n");
    // delete --force of a paused container.
    assert!(c.rt(&["pause", &c.id]).status.success());
    assert_eq!(c.status(), "paused");
    assert!(!c.rt(&["delete", &c.id]).status.success());
    let t = Instant::now();
    let out = c.rt(&["delete", "--force", &c.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(wait_for(Duration::from_secs(5), || dead(pid)));
    assert!(c.state().is_none());
    assert_nothing_left(&c);
}

/// runc's `exec --ignore-paused` runs the process in a paused container (it runs once
/// the container is resumed).
#[test]
fn exec_ignore_paused() {
    let c = Ct::new(&["sleep", "30"]);
    run_detached(&c);
    assert!(c.rt(&["pause", &c.id]).status.success());
    let err = tempfile::NamedTempFile::new().unwrap();
    let child = c
        .cmd(&["exec", "-d", "--ignore-paused", &c.id, "sh", "-c", "echo ran > /ran"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err.reopen().unwrap())
        .spawn()
        .unwrap();
    let mut g = ChildGuard(child);
    let mut status = None;
    wait_for(Duration::from_secs(3), || {
        status = g.0.try_wait().unwrap();
        status.is_some()
    });
    let _ = c.rt(&["resume", &c.id]);
    let e = std::fs::read_to_string(err.path()).unwrap();
    let status = status.unwrap_or_else(|| panic!("exec --ignore-paused hung; stderr: {e}"));
    assert!(status.success(), "{e}");
    let ran = c.rootfs().join("ran");
    assert!(wait_for(Duration::from_secs(5), || ran.exists()));
}

#[test]
fn events_stream_stats_until_stopped() {
    let c = Ct::new(&["sleep", "30"]);
    run_detached(&c);
    let child = c
        .cmd(&["events", "--interval", "100ms", &c.id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut g = ChildGuard(child);
    let out = g.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines() {
            if tx.send(l.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let t = Instant::now();
    for _ in 0..2 {
        let line = rx.recv_timeout(Duration::from_secs(5)).expect("a stats event");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "stats", "{line}");
        assert_eq!(v["id"], c.id.as_str());
        assert_eq!(v["data"]["pids"]["current"], 1, "{line}");
    }
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "two events at 100ms took {:?}",
        t.elapsed()
    );
    assert!(c.rt(&["kill", &c.id, "KILL"]).status.success());
    let exited = wait_for(Duration::from_secs(5), || g.0.try_wait().unwrap().is_some());
    assert!(exited, "events kept running after the container stopped");
    assert!(g.0.try_wait().unwrap().unwrap().success());
}

#[test]
fn state_of_stopped_container() {
    let c = Ct::new(&["sh", "-c", "exit 3"]);
    let (ok, err) = c.create();
    assert!(ok, "{err}");
    assert!(c.rt(&["start", &c.id]).status.success());
    assert!(c.wait_status("stopped", Duration::from_secs(5)));
    let st = c.state().unwrap();
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["pid"], 0);
    assert_eq!(st["id"], c.id.as_str());
    assert_eq!(st["bundle"], c.bundle.path().to_str().unwrap());
    assert!(st["ociVersion"].as_str().unwrap().starts_with("1."));
    // A stopped container cannot be started, killed or exec'd into.
    assert!(!c.rt(&["start", &c.id]).status.success());
    assert!(!c.rt(&["kill", &c.id, "KILL"]).status.success());
    assert!(!c.exec(&["true"]).status.success());
    // Positive control: it can be deleted without --force, and then it is gone.
    let out = c.rt(&["delete", &c.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = c.rt(&["state", &c.id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&c.id), "{}", stderr(&out));
    assert_nothing_left(&c);
}

/// Regression: an exec'd process could report Ready before stage 1 reported its pid
/// ("unexpected message InitPid"), about once in 160 execs on 2 cpus.
#[test]
fn concurrent_execs_never_race_the_init() {
    let c = Ct::new(&["sleep", "60"]);
    run_detached(&c);
    let errs = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..40 {
                    let o = c.exec(&["true"]);
                    if !o.status.success() {
                        errs.lock().unwrap().push(stderr(&o));
                    }
                }
            });
        }
    });
    let e = errs.into_inner().unwrap();
    assert!(e.is_empty(), "{} failures: {:?}", e.len(), &e[..e.len().min(3)]);
}
