//! Podman (Debian's, through conmon) drives berth-runtime as its OCI runtime, as root.
//!
//! Each test is self-contained (storage, state, config, a busybox image built here, the
//! runtime's root) and proves berth-runtime ran — not runc — from a wrapper's record of
//! every call and from berth-runtime's own state. Drop guards clean up on failure too.
//! Podman is installed by scripts/setup.sh; without it these tests fail.
mod client_support;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use client_support::*;

// ---------------------------------------------------------------------------------------
// Podman
// ---------------------------------------------------------------------------------------

/// A private Podman: storage, run root, libpod tmpdir, containers.conf and storage.conf in
/// one temp dir; cgroupfs manager; berth-runtime (through the wrapper) as the runtime.
struct Podman {
    dir: tempfile::TempDir,
    rt_bin: PathBuf,
    wrapper: PathBuf,
    calls: PathBuf,
    /// berth-runtime's `--root` (set by the wrapper: Podman passes none, and its exit
    /// command — `podman container cleanup` — would drop `--runtime-flag`s).
    rt_root: PathBuf,
    /// berth-runtime's `--log`, in JSON.
    rt_log: PathBuf,
    image: String,
    /// Podmans share the cgroupfs parent `libpod_parent`: one test's cleanup (rmdir of
    /// empty cgroups) could remove a cgroup another is about to join. One at a time.
    _serial: std::sync::MutexGuard<'static, ()>,
}

static ONE_PODMAN: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Podman {
    fn new() -> Podman {
        need(&["podman", "conmon"]);
        let dir = tempfile::Builder::new().prefix("berth-podman").tempdir().unwrap();
        let d = dir.path();
        for sub in ["graph", "run", "libpod", "net", "tmp", "rt"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let calls = d.join("calls.log");
        let rt_root = d.join("rt");
        let rt_log = d.join("berth-runtime.log.json");
        let rt_bin = private_runtime(d);
        let wrapper = write_wrapper(
            d,
            &rt_bin,
            &calls,
            &format!(
                "--root '{}' --log '{}' --log-format json",
                rt_root.display(),
                rt_log.display()
            ),
        );
        // This machine lacks CAP_SYS_RESOURCE: rootful Podman's default rlimits (nofile
        // and nproc raised to 1048576) cannot be set, so ask for modest ones.
        std::fs::write(
            d.join("containers.conf"),
            format!(
                "[containers]\n\
                 default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
                 log_driver = \"k8s-file\"\n\
                 [engine]\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"none\"\n\
                 [network]\n\
                 network_backend = \"cni\"\n\
                 network_config_dir = \"{}\"\n",
                d.join("net").display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                d.join("graph").display(),
                d.join("run").display()
            ),
        )
        .unwrap();
        let serial = ONE_PODMAN.lock().unwrap_or_else(|e| e.into_inner());
        let mut p = Podman {
            _serial: serial,
            dir,
            rt_bin,
            wrapper,
            calls,
            rt_root,
            rt_log,
            image: String::new(),
        };
        let layer = busybox_layer(p.dir.path());
        let image = format!("localhost/{}:latest", common::unique("img"));
        p.podman(&["import", "--quiet", layer.to_str().unwrap(), &image]).ok();
        p.image = image;
        p
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("TMPDIR", d.join("tmp"))
            .arg("--root")
            .arg(d.join("graph"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("libpod"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "none",
            ])
            .arg("--runtime")
            .arg(&self.wrapper)
            .args(args);
        c
    }

    fn podman(&self, args: &[&str]) -> Out {
        run_cmd(&mut self.cmd(args), None)
    }

    fn podman_in(&self, args: &[&str], stdin: &str) -> Out {
        run_cmd(&mut self.cmd(args), Some(stdin))
    }

    fn inspect(&self, name: &str, fmt: &str) -> String {
        let o = self.podman(&["inspect", "--format", fmt, name]);
        o.ok();
        o.stdout.trim().to_string()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = try_run(
            &mut self.cmd(&["rm", "--all", "--force", "--time", "0"]),
            None,
            CLEANUP_LIMIT,
        );
        let _ = try_run(&mut self.cmd(&["rmi", "--all", "--force"]), None, CLEANUP_LIMIT);
        // conmon (and its cleanup children) of this Podman only: found by our temp dir.
        kill_pids(&pids_mentioning(&format!("{}/", self.dir.path().display())));
        berth_delete_all(&self.rt_bin, &self.rt_root);
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

#[test]
fn podman_runs_containers_with_berth_runtime() {
    let p = Podman::new();

    // Foreground run: output, exit code, cgroupfs path, the terminal through
    // --console-socket.
    let o = p.podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        "fg",
        &p.image,
        "sh",
        "-c",
        "echo hello-from-podman; grep pids /proc/self/cgroup; echo oops >&2; exit 3",
    ]);
    assert_eq!(o.code, 3, "{o}");
    assert!(o.stdout.starts_with("hello-from-podman\n"), "{o}");
    assert!(o.stdout.contains("/libpod_parent/libpod-"), "cgroupfs path: {o}");
    assert!(o.stderr.contains("oops"), "{o}");

    let o = p.podman(&["run", "--rm", "-t", "--network", "none", &p.image, "tty"]);
    assert!(o.ok().stdout.contains("/dev/pts/"), "{o}");
    assert!(
        calls(&p.calls)
            .iter()
            .any(|l| l.starts_with("create ") && l.contains("--console-socket")),
        "no create with --console-socket: {:?}",
        calls(&p.calls)
    );

    // stdin reaches the container.
    let o = p.podman_in(
        &["run", "--rm", "-i", "--network", "none", &p.image, "cat"],
        "piped-in\n",
    );
    assert_eq!(o.ok().stdout, "piped-in\n");

    // Resource limits and user from Podman's config reach the container.
    let o = p.podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pids-limit",
        "77",
        "--user",
        "1000:1000",
        "--read-only",
        &p.image,
        "sh",
        "-c",
        "id -u; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; touch /x || echo ro",
    ]);
    assert_eq!(o.ok().stdout, "1000\n77\nro\n", "{o}");

    // A command that does not exist: Podman recognises the runtime's error (exit 127,
    // as with runc), and the error is in berth-runtime's JSON --log.
    let o = p.podman(&["run", "--rm", "--network", "none", &p.image, "no-such-command"]);
    assert_eq!(o.code, 127, "{o}");
    assert!(o.stderr.contains("executable file not found"), "{o}");
    // "process.args:" is berth-runtime's wording; runc's log would say "runc create failed".
    let errs = json_log_errors(&p.rt_log);
    assert!(
        errs.iter()
            .any(|m| m.contains("process.args: exec: \"no-such-command\": executable file not found")),
        "berth-runtime's log has no such error: {errs:?}"
    );

    // Podman asks the runtime for its version (`--version`) and reports berth-runtime's.
    let o = p.podman(&["info", "--format", "{{.Host.OCIRuntime.Version}}"]);
    assert!(o.ok().stdout.starts_with("berth-runtime "), "{o}");

    // Every runtime call Podman made went through the wrapper to berth-runtime.
    let all = calls(&p.calls);
    for c in ["create", "start", "delete", "--version"] {
        assert!(all.iter().any(|l| l.starts_with(c)), "no {c}: {all:?}");
    }
    // Nothing left behind in berth-runtime's root.
    let left: Vec<_> = std::fs::read_dir(&p.rt_root).unwrap().flatten().collect();
    assert!(left.is_empty(), "left in berth-runtime's root: {left:?}");
}

#[test]
fn podman_exec_pause_stop_kill_with_berth_runtime() {
    let p = Podman::new();
    let script = "trap 'echo got-term; exit 3' TERM; echo started; while :; do sleep 0.1; done";
    let o = p.podman(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "bg",
        &p.image,
        "sh",
        "-c",
        script,
    ]);
    let id = o.ok().stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{o}");
    assert_eq!(p.inspect("bg", "{{.State.Status}}"), "running");
    let pid: i64 = p.inspect("bg", "{{.State.Pid}}").parse().unwrap();
    assert_called(&p.calls, "create", &id);
    assert_called(&p.calls, "start", &id);
    assert_berth_state(&p.rt_bin, &p.rt_root, &id, "running", pid);
    let cgroups_path = format!("/libpod_parent/libpod-{id}");

    // exec: output, exit code, stdin, user and cwd, a terminal.
    let o = p.podman(&[
        "exec",
        "bg",
        "sh",
        "-c",
        "echo in-$(hostname); cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert_eq!(o.ok().stdout, format!("in-{}\nsh -c {script} ", &id[..12]), "{o}");
    let o = p.podman(&["exec", "bg", "sh", "-c", "exit 7"]);
    assert_eq!(o.code, 7, "{o}");
    let o = p.podman_in(&["exec", "-i", "bg", "cat"], "exec-stdin\n");
    assert_eq!(o.ok().stdout, "exec-stdin\n");
    let o = p.podman(&[
        "exec",
        "--user",
        "1000:1000",
        "--workdir",
        "/tmp",
        "bg",
        "sh",
        "-c",
        "id -u; pwd",
    ]);
    assert_eq!(o.ok().stdout, "1000\n/tmp\n", "{o}");
    let o = p.podman(&["exec", "-t", "bg", "tty"]);
    assert!(o.ok().stdout.contains("/dev/pts/"), "{o}");
    assert_called(&p.calls, "exec", &id);
    let all = calls(&p.calls);
    assert!(
        all.iter().any(|l| l.starts_with("exec ")
            && l.contains("--process")
            && l.contains("--detach")
            && l.contains("--pid-file")),
        "Podman's exec is `exec --pid-file F --process P --detach`: {all:?}"
    );
    assert!(
        all.iter()
            .any(|l| l.starts_with("exec ") && l.contains("--console-socket")),
        "{all:?}"
    );

    // A failed exec: Podman maps the runtime's error to 127; it is in the JSON --log.
    let o = p.podman(&["exec", "bg", "no-such-command"]);
    assert_eq!(o.code, 127, "{o}");
    let errs = json_log_errors(&p.rt_log);
    assert!(
        errs.iter().any(
            |m| m.contains(&id) && m.contains("process.args: exec: \"no-such-command\": executable file not found")
        ),
        "{errs:?}"
    );

    // pause / unpause: the cgroup really freezes and thaws.
    p.podman(&["pause", "bg"]).ok();
    assert_eq!(p.inspect("bg", "{{.State.Status}}"), "paused");
    assert_called(&p.calls, "pause", &id);
    assert_berth_state(&p.rt_bin, &p.rt_root, &id, "paused", pid);
    assert!(frozen(&cgroups_path), "{cgroups_path} is not frozen");
    assert_ne!(
        p.podman(&["exec", "bg", "true"]).code,
        0,
        "exec into a paused container"
    );
    p.podman(&["unpause", "bg"]).ok();
    assert_called(&p.calls, "resume", &id);
    assert_eq!(p.inspect("bg", "{{.State.Status}}"), "running");
    assert!(!frozen(&cgroups_path));
    assert_berth_state(&p.rt_bin, &p.rt_root, &id, "running", pid);

    // stop: SIGTERM through `kill`, the trap runs, exit code 3.
    p.podman(&["stop", "--time", "10", "bg"]).ok();
    assert_called(&p.calls, "kill", &id);
    assert_eq!(p.inspect("bg", "{{.State.Status}} {{.State.ExitCode}}"), "exited 3");
    let logs = p.podman(&["logs", "bg"]);
    assert_eq!(logs.ok().stdout, "started\ngot-term\n");

    // start again, then kill -s KILL: 137.
    p.podman(&["start", "bg"]).ok();
    let pid2: i64 = p.inspect("bg", "{{.State.Pid}}").parse().unwrap();
    assert_ne!(pid2, pid);
    assert_berth_state(&p.rt_bin, &p.rt_root, &id, "running", pid2);
    p.podman(&["kill", "--signal", "KILL", "bg"]).ok();
    let w = p.podman(&["wait", "bg"]);
    assert_eq!(w.ok().stdout.trim(), "137");

    // A container without its own pid namespace is stopped with `kill --all`.
    let o = p.podman(&[
        "run",
        "-d",
        "--network",
        "none",
        "--pid",
        "host",
        "--name",
        "hostpid",
        &p.image,
        "sh",
        "-c",
        "sleep 1000 & sleep 1000 & wait",
    ]);
    let hid = o.ok().stdout.trim().to_string();
    p.podman(&["stop", "--time", "10", "hostpid"]).ok();
    assert_called(&p.calls, "kill --all", &hid);
    assert_eq!(p.inspect("hostpid", "{{.State.Status}}"), "exited");

    p.podman(&["rm", "bg", "hostpid"]).ok();
    assert_called(&p.calls, "delete", &id);
    let left: Vec<_> = std::fs::read_dir(&p.rt_root).unwrap().flatten().collect();
    assert!(left.is_empty(), "left in berth-runtime's root: {left:?}");
    for ctl in ["freezer", "pids", "memory"] {
        let d = format!("/sys/fs/cgroup/{ctl}{cgroups_path}");
        assert!(!Path::new(&d).exists(), "{d} left behind");
    }
}

#[test]
fn podman_pod_and_user_namespace_with_berth_runtime() {
    let p = Podman::new();
    need(&["catatonit"]);

    // A pod: its infra container (catatonit, image built locally by Podman) holds the
    // namespaces; a container in the pod joins them by path (/proc/PID/ns/...).
    let pod = "berthpod";
    p.podman(&["pod", "create", "--name", pod, "--network", "none"]).ok();
    p.podman(&["pod", "start", pod]).ok();
    let infra = p.podman(&["pod", "inspect", pod, "--format", "{{.InfraContainerID}}"]);
    let infra = infra.ok().stdout.trim().to_string();
    let infra_pid: i64 = p.inspect(&infra, "{{.State.Pid}}").parse().unwrap();
    assert_berth_state(&p.rt_bin, &p.rt_root, &infra, "running", infra_pid);
    let o = p.podman(&[
        "run",
        "--rm",
        "--pod",
        pod,
        &p.image,
        "sh",
        "-c",
        "hostname; for n in net uts ipc; do readlink /proc/self/ns/$n; done",
    ]);
    let want: String = ["net", "uts", "ipc"]
        .iter()
        .map(|n| {
            format!(
                "{}\n",
                std::fs::read_link(format!("/proc/{infra_pid}/ns/{n}"))
                    .unwrap()
                    .display()
            )
        })
        .collect();
    assert_eq!(o.ok().stdout, format!("{pod}\n{want}"), "{o}");
    p.podman(&["pod", "rm", "--force", pod]).ok();
    assert_called(&p.calls, "delete", &infra);

    // A user namespace from Podman's --uidmap/--gidmap.
    let o = p.podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--uidmap",
        "0:200000:65536",
        "--gidmap",
        "0:200000:65536",
        &p.image,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; ls -n /bin/busybox",
    ]);
    let out = o.ok().stdout.clone();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"0"), "{o}");
    assert_eq!(
        lines.get(1).map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["0", "200000", "65536"]),
        "{o}"
    );
    // The image's files, chowned by Podman to 200000, are root's inside.
    assert!(
        lines.get(2).is_some_and(|l| l.split_whitespace().nth(2) == Some("0")),
        "{o}"
    );

    let left: Vec<_> = std::fs::read_dir(&p.rt_root).unwrap().flatten().collect();
    assert!(left.is_empty(), "left in berth-runtime's root: {left:?}");
}
