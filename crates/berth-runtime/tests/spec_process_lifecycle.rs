//! runtime-spec 1.2 coverage, part 2: process attributes, devices, hooks and life-cycle
//! details, each refusal with a positive control in the same test. Real containers, as root.

mod common;

use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::spec_helpers::*;
use common::{assert_nothing_left, unique, Ct};
use serde_json::{json, Value};

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
