//! The runc command line driven for real: containers on this host, as root.

mod common;

use std::time::Duration;

use common::{assert_nothing_left, Ct};
use serde_json::json;

#[test]
fn run_reports_exit_code_and_output() {
    let c = Ct::new(&["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let (code, out, err) = c.run();
    assert_eq!(code, 7, "stderr: {err}");
    assert_eq!(out, "out\n");
    assert!(err.contains("err"));
    assert_nothing_left(&c);
}

#[test]
fn namespaces_hostname_env_cwd_user() {
    let mut c = Ct::new(&[
        "sh",
        "-c",
        "echo pid=$$ host=$(hostname) cwd=$(pwd) foo=$FOO id=$(id -u):$(id -g) groups=$(id -G)",
    ]);
    c.config["hostname"] = "boxy".into();
    c.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar"]);
    c.config["process"]["cwd"] = "/tmp/work".into();
    c.config["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [1002]});
    c.save();
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "pid=1 host=boxy cwd=/tmp/work foo=bar id=1000:1001 groups=1001 1002"
    );
}

#[test]
fn create_start_state_kill_delete() {
    let c = Ct::new(&["sleep", "30"]);
    let (ok, err) = c.create();
    assert!(ok, "{err}");
    let st = c.state().unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], c.id.as_str());
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(st["bundle"], c.bundle.path().to_str().unwrap());
    // The init waits for start: still our runtime, not sleep.
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    let out = c.rt(&["start", &c.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(c.status(), "running");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with(b"sleep"), "{cmdline:?}");

    // Starting twice is refused.
    assert!(!c.rt(&["start", &c.id]).status.success());
    // Deleting a running container needs --force.
    let out = c.rt(&["delete", &c.id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("running"));

    let out = c.rt(&["kill", &c.id, "KILL"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(c.wait_status("stopped", Duration::from_secs(5)));
    assert_eq!(c.state().unwrap()["pid"], 0);
    let out = c.rt(&["delete", &c.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(c.state().is_none());
    assert_nothing_left(&c);
}

#[test]
fn list_formats() {
    let c = Ct::new(&["sleep", "30"]);
    assert!(c.create().0);
    let out = c.rt(&["list", "-q"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), c.id);
    let out = c.rt(&["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["id"], c.id.as_str());
    assert_eq!(v[0]["status"], "created");
    let out = c.rt(&["list"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ID"));
}

#[test]
fn exec_runs_in_the_container() {
    let c = Ct::new(&["sleep", "30"]);
    let b = c.bundle.path().to_str().unwrap().to_string();
    let (ok, err) = c.rt_detached(&["run", "-d", "--bundle", &b, &c.id]);
    assert!(ok, "{err}");
    let out = c.exec(&[
        "sh",
        "-c",
        "echo pid1=$(cat /proc/1/cmdline | tr '\\0' ' ') me=$(hostname)",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "pid1=sleep 30 me=berth");
    // Exit codes, env, user, cwd.
    assert_eq!(c.exec(&["sh", "-c", "exit 5"]).status.code(), Some(5));
    let out = c.exec(&[
        "-e",
        "X=1",
        "--user",
        "1000:1000",
        "--cwd",
        "/tmp",
        "sh",
        "-c",
        "echo $X $(id -u) $(pwd)",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1 1000 /tmp");
    // A missing program is an error naming it.
    let out = c.exec(&["no-such-program"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-program"));
    // --process file.
    let p = c.bundle.path().join("process.json");
    std::fs::write(
        &p,
        json!({"args": ["sh", "-c", "echo from-file"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]})
            .to_string(),
    )
    .unwrap();
    let out = c.exec(&["--process", p.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "from-file");
    // Detached exec with a pid file.
    let pf = c.bundle.path().join("exec.pid");
    let (ok, err) = c.rt_detached(&["exec", "-d", "--pid-file", pf.to_str().unwrap(), &c.id, "sleep", "5"]);
    assert!(ok, "{err}");
    let pid: i32 = std::fs::read_to_string(&pf).unwrap().parse().unwrap();
    let out = c.rt(&["ps", "--format", "json", &c.id]);
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(pids.contains(&pid), "{pids:?} lacks {pid}");
    assert_eq!(pids.len(), 2);
}

#[test]
fn pause_resume_and_ps() {
    let c = Ct::new(&["sleep", "30"]);
    let b = c.bundle.path().to_str().unwrap().to_string();
    assert!(c.rt_detached(&["run", "-d", "--bundle", &b, &c.id]).0);
    assert!(c.rt(&["pause", &c.id]).status.success());
    assert_eq!(c.status(), "paused");
    let frozen = std::fs::read_to_string(c.cgroup_dir("freezer").join("freezer.state")).unwrap();
    assert_eq!(frozen.trim(), "FROZEN");
    assert!(!c.rt(&["pause", &c.id]).status.success() || c.status() == "paused");
    assert!(c.rt(&["resume", &c.id]).status.success());
    assert_eq!(c.status(), "running");
    let out = c.rt(&["ps", &c.id]);
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.starts_with("UID") && t.contains("sleep 30"), "{t}");
}

#[test]
fn resources_update_and_stats() {
    let mut c = Ct::new(&["sleep", "30"]);
    c.config["linux"]["resources"] = json!({
        "memory": {"limit": 64 * 1024 * 1024},
        "pids": {"limit": 50},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000}
    });
    c.save();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let (ok, err) = c.rt_detached(&["run", "-d", "--bundle", &b, &c.id]);
    assert!(ok, "{err}");
    let read = |ctl: &str, f: &str| {
        std::fs::read_to_string(c.cgroup_dir(ctl).join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("memory", "memory.limit_in_bytes"), (64 * 1024 * 1024).to_string());
    assert_eq!(read("pids", "pids.max"), "50");
    assert_eq!(read("cpu", "cpu.shares"), "512");
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
    // From inside: the container sees its own limit through the cgroup mount.
    let out = c.exec(&["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        (64 * 1024 * 1024).to_string()
    );

    let out = c.rt(&["update", "--memory", "128m", "--pids-limit", "60", &c.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read("memory", "memory.limit_in_bytes"), (128 * 1024 * 1024).to_string());
    assert_eq!(read("pids", "pids.max"), "60");
    let r = c.bundle.path().join("res.json");
    std::fs::write(&r, json!({"pids": {"limit": 70}}).to_string()).unwrap();
    assert!(c.rt(&["update", "-r", r.to_str().unwrap(), &c.id]).status.success());
    assert_eq!(read("pids", "pids.max"), "70");

    let out = c.rt(&["events", "--stats", &c.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["type"], "stats");
    assert!(v["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert_eq!(v["data"]["pids"]["current"], 1);
    assert_eq!(v["data"]["pids"]["limit"], 70);
}

#[test]
fn hooks_run_in_order_with_state() {
    let mut c = Ct::new(&["true"]);
    let log = c.bundle.path().join("hooks.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo \"{name} $s\" >> {}", log.display())]});
    c.config["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    c.save();
    let (code, _, err) = c.run();
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let names: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(names, ["prestart", "createRuntime", "poststart", "poststop"]);
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().unwrap().split_once(' ').unwrap().1).unwrap();
    assert_eq!(first["id"], c.id.as_str());
    assert_eq!(first["status"], "creating");
    assert!(first["pid"].as_i64().unwrap() > 0);
}

#[test]
fn failing_prestart_hook_leaves_nothing() {
    let mut c = Ct::new(&["true"]);
    c.config["hooks"] = json!({"prestart": [{"path": "/bin/false"}]});
    c.save();
    let (ok, err) = c.create();
    assert!(!ok);
    assert!(err.contains("prestart") && err.contains("/bin/false"), "{err}");
    assert_nothing_left(&c);
}

#[test]
fn mounts_masks_readonly_rlimits_caps() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f"), "hostdata").unwrap();
    let mut c = Ct::new(&[
        "sh",
        "-c",
        concat!(
            "cat /data/f; echo; touch /data/g 2>/dev/null && echo data-writable || echo data-ro; ",
            "echo x > /scratch/y && echo scratch-ok; ",
            "wc -c < /proc/keys; cat /proc/timer_list | wc -c; ",
            "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-ro; ",
            "touch /rootfile 2>/dev/null && echo root-writable || echo root-ro; ",
            "ulimit -n; grep -E 'CapEff|CapInh|NoNewPrivs|Seccomp:' /proc/self/status | tr -s '\\t ' ' '"
        ),
    ]);
    let mut mounts = c.config["mounts"].as_array().unwrap().clone();
    mounts.push(json!({"destination": "/data", "type": "bind", "source": host.path(), "options": ["rbind", "ro"]}));
    mounts.push(
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1777"]}),
    );
    c.config["mounts"] = mounts.into();
    c.config["root"]["readonly"] = true.into();
    c.save();
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hostdata");
    assert_eq!(lines[1], "data-ro");
    assert_eq!(lines[2], "scratch-ok");
    assert_eq!(lines[3].trim(), "0", "masked /proc/keys reads empty");
    assert_eq!(lines[4].trim(), "0", "masked /proc/timer_list reads empty");
    assert_eq!(lines[5], "sys-ro");
    assert_eq!(lines[6], "root-ro");
    assert_eq!(lines[7], "1024");
    // Default spec: AUDIT_WRITE(29), KILL(5), NET_BIND_SERVICE(10).
    assert_eq!(lines[8], "CapInh: 0000000000000000");
    assert_eq!(lines[9], "CapEff: 0000000020000420");
    assert_eq!(lines[10], "NoNewPrivs: 1");
    assert!(!host.path().join("g").exists());
}

#[test]
fn seccomp_filter_applies() {
    let mut c = Ct::new(&[
        "sh",
        "-c",
        "mkdir /tmp/a 2>&1; echo rc=$?; grep Seccomp: /proc/self/status",
    ]);
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    c.save();
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rc=1"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    // Positive control: without the filter mkdir works.
    let c2 = Ct::new(&["sh", "-c", "mkdir /tmp/a && echo made"]);
    let (code, out, _) = c2.run();
    assert_eq!((code, out.trim()), (0, "made"));
}

#[test]
fn sysctl_and_network_namespace() {
    let mut c = Ct::new(&["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward; ls /sys/class/net"]);
    c.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    c.save();
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1");
    assert_eq!(lines[1], "lo", "only loopback in a new network namespace");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_before
    );
}

#[test]
fn features_and_spec() {
    let c = Ct::new(&["true"]);
    let out = c.rt(&["features"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ociVersionMax"], "1.2.0");
    assert!(v["linux"]["seccomp"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "SCMP_ACT_NOTIFY"));
    // spec refuses to overwrite.
    let out = c.rt(&["spec", "--bundle", c.bundle.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));
}

#[test]
fn events_report_oom_kill() {
    use std::io::BufRead;
    let mut c = Ct::new(&["sh", "-c", "sleep 0.5; tail /dev/zero"]);
    c.config["linux"]["resources"] = json!({"memory": {"limit": 32 * 1024 * 1024, "swap": 32 * 1024 * 1024}});
    c.save();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let (ok, err) = c.rt_detached(&["run", "-d", "--bundle", &b, &c.id]);
    assert!(ok, "{err}");
    let mut ev = c
        .cmd(&["events", "--interval", "10s", &c.id])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = ev.stdout.take().unwrap();
    let mut types = Vec::new();
    for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        types.push(v["type"].as_str().unwrap_or_default().to_string());
        if types.last().map(String::as_str) == Some("oom") {
            break;
        }
    }
    let _ = ev.kill();
    let _ = ev.wait();
    assert!(types.iter().any(|t| t == "oom"), "no oom event: {types:?}");
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
}

/// The namespace types of a bundle's config.json, and the config itself.
fn config_namespaces(bundle: &std::path::Path) -> (serde_json::Value, Vec<String>) {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let ns = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect();
    (v, ns)
}

#[test]
fn rootless_spec_has_a_user_namespace() {
    let c = Ct::new(&["true"]);
    let dir = tempfile::tempdir().unwrap();
    let out = c.rt(&["spec", "--rootless", "--bundle", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (v, ns) = config_namespaces(dir.path());
    assert!(
        ns.iter().any(|n| n == "user") && !ns.iter().any(|n| n == "network"),
        "{ns:?}"
    );
    assert_eq!(v["linux"]["uidMappings"][0]["containerID"], 0);
    // The default (rootful) spec has no user namespace but its own network.
    let (_, ns) = config_namespaces(c.bundle.path());
    assert!(
        !ns.iter().any(|n| n == "user") && ns.iter().any(|n| n == "network"),
        "{ns:?}"
    );
}

/// linux.mountLabel is applied as a `context=` option only where SELinux is enabled; on a
/// host without it (this one) it is ignored, as runc does, and the container runs.
#[test]
fn mount_label_ignored_without_selinux() {
    assert!(
        !std::path::Path::new("/sys/fs/selinux/enforce").exists(),
        "this test expects no SELinux"
    );
    let mut c = Ct::new(&["sh", "-c", "grep ' /dev ' /proc/mounts"]);
    c.config["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0:c1,c2".into();
    c.save();
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tmpfs") && !out.contains("context="), "{out}");
}
