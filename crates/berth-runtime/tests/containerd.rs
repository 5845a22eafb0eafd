//! containerd (Debian's) runs tasks through its runc shim (`containerd-shim-runc-v2`)
//! with berth-runtime as the runc binary, as root.
//!
//! Each test is self-contained (daemon root, state, socket, a busybox OCI archive built
//! here) and proves berth-runtime ran — not runc — from a wrapper's record of every call,
//! berth-runtime's state files and the shim's JSON log. Drop guards clean up on failure.
//! containerd is installed by scripts/setup.sh; without it these tests fail.
mod client_support;
mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client_support::*;

// ---------------------------------------------------------------------------------------
// containerd
// ---------------------------------------------------------------------------------------

/// A private containerd: root, state, sockets and config in a temp dir, CRI disabled,
/// its own namespace; tasks run by the runc shim with berth-runtime as the runc binary.
struct Containerd {
    dir: tempfile::TempDir,
    rt_bin: PathBuf,
    daemon: Option<Child>,
    ns: String,
    addr: PathBuf,
    wrapper: PathBuf,
    calls: PathBuf,
    /// `--runc-root`; the shim passes `--root <this>/<namespace>` to the runtime.
    runc_root: PathBuf,
    image: String,
}

impl Containerd {
    fn start() -> Containerd {
        need(&["containerd", "ctr", "containerd-shim-runc-v2"]);
        let dir = tempfile::Builder::new().prefix("berth-ctrd").tempdir().unwrap();
        let d = dir.path();
        let addr = d.join("c.sock");
        let calls = d.join("calls.log");
        let rt_bin = private_runtime(d);
        let wrapper = write_wrapper(d, &rt_bin, &calls, "");
        std::fs::create_dir_all(d.join("tmp")).unwrap();
        let cfg = d.join("config.toml");
        std::fs::write(
            &cfg,
            format!(
                r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]
[grpc]
  address = "{addr}"
[ttrpc]
  address = "{addr}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
                root = d.join("root").display(),
                state = d.join("state").display(),
                addr = addr.display(),
                opt = d.join("opt").display(),
            ),
        )
        .unwrap();
        let log = File::create(d.join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(&cfg)
            .env("TMPDIR", d.join("tmp"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let mut c = Containerd {
            ns: common::unique("ns"),
            runc_root: d.join("runc"),
            dir,
            rt_bin,
            daemon: Some(daemon),
            addr,
            wrapper,
            calls,
            image: String::new(),
        };
        let up = wait_until(Duration::from_secs(20), || {
            c.addr.exists()
                && try_run(&mut c.cmd(&["version"]), None, Duration::from_secs(5)).is_ok_and(|o| o.code == 0)
        });
        assert!(
            up,
            "containerd did not come up; its log:\n{}",
            std::fs::read_to_string(c.dir.path().join("containerd.log")).unwrap_or_default()
        );
        let image = format!("docker.io/library/{}:latest", common::unique("img"));
        let archive = oci_archive(c.dir.path(), &image);
        c.ctr(&["images", "import", "--snapshotter", "native", archive.to_str().unwrap()])
            .ok();
        let ls = c.ctr(&["images", "ls", "-q"]);
        assert!(ls.ok().stdout.lines().any(|l| l == image), "{ls}");
        c.image = image;
        c
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(&self.addr)
            .args(["--namespace", &self.ns])
            .args(args);
        c
    }

    fn ctr(&self, args: &[&str]) -> Out {
        run_cmd(&mut self.cmd(args), None)
    }

    /// `ctr run` with the runc shim using berth-runtime (through the wrapper).
    fn run(&self, opts: &[&str], id: &str, args: &[&str]) -> Out {
        let (w, r, f) = (
            self.wrapper.to_str().unwrap(),
            self.runc_root.to_str().unwrap(),
            self.fifo_dir(),
        );
        let mut a = vec![
            "run",
            "--snapshotter",
            "native",
            "--fifo-dir",
            &f,
            "--runc-binary",
            w,
            "--runc-root",
            r,
        ];
        a.extend_from_slice(opts);
        a.push(&self.image);
        a.push(id);
        a.extend_from_slice(args);
        self.ctr(&a)
    }

    /// `ctr task exec` (the shim runs `exec --process F --detach --pid-file P`).
    fn exec(&self, exec_id: &str, id: &str, args: &[&str]) -> Out {
        let f = self.fifo_dir();
        let mut a = vec!["task", "exec", "--fifo-dir", &f, "--exec-id", exec_id, id];
        a.extend_from_slice(args);
        self.ctr(&a)
    }

    /// Where ctr makes its stdio FIFOs (by default under /run/containerd).
    fn fifo_dir(&self) -> String {
        self.dir.path().join("fifo").to_string_lossy().into_owned()
    }

    /// The runtime root the shim gives berth-runtime for our namespace.
    fn rt_root(&self) -> PathBuf {
        self.runc_root.join(&self.ns)
    }

    fn task_status(&self, id: &str) -> String {
        let o = self.ctr(&["task", "ls"]);
        o.ok();
        o.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("")
            .to_string()
    }

    fn task_pid(&self, id: &str) -> i64 {
        let o = self.ctr(&["task", "ls"]);
        o.ok();
        o.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no task {id}: {o}"))
    }

    /// The shim's `--log` file for task `id` (what it reads runtime errors from).
    fn shim_log(&self, id: &str) -> PathBuf {
        self.dir
            .path()
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.ns)
            .join(id)
            .join("log.json")
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let ids = try_run(&mut self.cmd(&["containers", "ls", "-q"]), None, CLEANUP_LIMIT)
            .map(|o| o.stdout)
            .unwrap_or_default();
        for id in ids.lines().filter(|l| !l.is_empty()) {
            let kill = ["task", "kill", "--all", "--signal", "SIGKILL", id];
            let _ = try_run(&mut self.cmd(&kill), None, CLEANUP_LIMIT);
            let _ = try_run(&mut self.cmd(&["task", "rm", "--force", id]), None, CLEANUP_LIMIT);
            let _ = try_run(&mut self.cmd(&["containers", "rm", id]), None, CLEANUP_LIMIT);
        }
        if let Some(mut d) = self.daemon.take() {
            // SAFETY: kill(2) on the daemon we spawned.
            unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
            let t = Instant::now();
            while d.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        // Shims outlive containerd: ours are the ones given our socket's address.
        kill_pids(&pids_mentioning(&self.addr.to_string_lossy()));
        berth_delete_all(&self.rt_bin, &self.rt_root());
        unmount_under(self.dir.path());
        // The namespace's parent cgroups (/<namespace>) are ours alone: remove them once empty.
        for e in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(e.path().join(&self.ns));
        }
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(&self.ns));
    }
}

#[test]
fn containerd_runs_a_container_through_the_runc_shim() {
    let c = Containerd::start();

    let o = c.run(
        &["--rm"],
        "fg",
        &["sh", "-c", "echo hello-from-ctr; echo oops >&2; exit 5"],
    );
    assert_eq!(o.code, 5, "{o}");
    assert_eq!(o.stdout, "hello-from-ctr\n", "{o}");
    assert!(o.stderr.contains("oops"), "{o}");

    // The shim's invocations: runc's global flags, JSON log in the bundle, our root.
    let all = calls(&c.calls);
    let root = c.rt_root();
    let create = all
        .iter()
        .find(|l| l.contains(" create ") && l.ends_with(" fg"))
        .unwrap_or_else(|| panic!("no create of fg: {all:?}"));
    assert!(
        create.starts_with(&format!("--root {} --log ", root.display())) && create.contains("--log-format json"),
        "{create}"
    );
    assert_called(&c.calls, "start", "fg");
    assert_called(&c.calls, "delete", "fg");

    // A terminal: the shim hands berth-runtime a --console-socket (ctr needs a tty
    // itself, which `script` provides).
    let cmdline = format!(
        "{} --address {} --namespace {} run --rm -t --snapshotter native --fifo-dir {} --runc-binary {} --runc-root {} {} tty tty",
        "ctr",
        c.addr.display(),
        c.ns,
        c.fifo_dir(),
        c.wrapper.display(),
        c.runc_root.display(),
        c.image
    );
    let o = run_cmd(Command::new("script").args(["-qec", &cmdline, "/dev/null"]), None);
    assert!(o.ok().stdout.contains("/dev/pts/"), "{o}");
    assert!(
        calls(&c.calls)
            .iter()
            .any(|l| l.contains(" create ") && l.contains("--console-socket") && l.ends_with(" tty")),
        "{:?}",
        calls(&c.calls)
    );

    // A command that does not exist: the shim reports the error berth-runtime wrote to
    // its JSON --log ("process.args:" is berth-runtime's wording, not runc's), and the
    // failed container is rolled back.
    let o = c.run(&["--rm"], "missing", &["no-such-command"]);
    assert_ne!(o.code, 0, "{o}");
    assert!(
        o.stderr
            .contains("container missing: process.args: exec: \"no-such-command\": executable file not found"),
        "{o}"
    );
    assert_called(&c.calls, "create", "missing");

    // The systemd cgroup driver is not supported: the shim's `--systemd-cgroup` gets a
    // clear refusal, which ctr shows.
    let o = c.run(
        &["--rm", "--runc-systemd-cgroup", "--cgroup", "system.slice:berth:sd"],
        "sd",
        &["true"],
    );
    assert_ne!(o.code, 0, "{o}");
    assert!(
        o.stderr
            .contains("--systemd-cgroup: the systemd cgroup driver is not supported"),
        "{o}"
    );
    assert_called(&c.calls, "--systemd-cgroup create", "sd");

    let left: Vec<_> = std::fs::read_dir(&root).into_iter().flatten().flatten().collect();
    assert!(left.is_empty(), "left in berth-runtime's root: {left:?}");
}

#[test]
fn containerd_task_exec_kill_pause_resume() {
    let c = Containerd::start();
    let script = "trap 'echo got-term; exit 42' TERM; while :; do sleep 0.1; done";
    c.run(&["-d"], "bg", &["sh", "-c", script]).ok();
    assert_eq!(c.task_status("bg"), "RUNNING");
    let pid = c.task_pid("bg");
    assert_berth_state(&c.rt_bin, &c.rt_root(), "bg", "running", pid);
    let cgroups_path = format!("/{}/bg", c.ns);

    // exec: output and exit code; the shim's exec is `exec --process F --detach --pid-file P`.
    let o = c.exec(
        "e1",
        "bg",
        &["sh", "-c", "echo in-exec; cat /proc/1/cmdline | tr '\\0' ' '"],
    );
    assert_eq!(o.ok().stdout, format!("in-exec\nsh -c {script} "), "{o}");
    let o = c.exec("e2", "bg", &["sh", "-c", "exit 4"]);
    assert_eq!(o.code, 4, "{o}");
    let all = calls(&c.calls);
    assert!(
        all.iter().any(|l| l.contains(" exec ")
            && l.contains("--process")
            && l.contains("--detach")
            && l.contains("--pid-file")
            && l.ends_with(" bg")),
        "{all:?}"
    );

    // A failed exec: the shim reports berth-runtime's error from its JSON --log.
    let o = c.exec("e3", "bg", &["no-such-command"]);
    assert_ne!(o.code, 0, "{o}");
    assert!(o.stderr.contains("executable file not found"), "{o}");
    let errs = json_log_errors(&c.shim_log("bg"));
    assert!(
        errs.iter()
            .any(|m| m.contains("container bg: process.args: exec: \"no-such-command\": executable file not found")),
        "{errs:?}"
    );

    // ps goes through the runtime too.
    let o = c.ctr(&["task", "ps", "bg"]);
    assert!(o.ok().stdout.contains(&pid.to_string()), "{o}");
    assert_called(&c.calls, "ps --format json", "bg");

    // pause / resume.
    c.ctr(&["task", "pause", "bg"]).ok();
    assert_eq!(c.task_status("bg"), "PAUSED");
    assert_called(&c.calls, "pause", "bg");
    assert_berth_state(&c.rt_bin, &c.rt_root(), "bg", "paused", pid);
    assert!(frozen(&cgroups_path), "{cgroups_path} is not frozen");
    let o = c.exec("e4", "bg", &["true"]);
    assert_ne!(o.code, 0, "exec into a paused task: {o}");
    c.ctr(&["task", "resume", "bg"]).ok();
    assert_eq!(c.task_status("bg"), "RUNNING");
    assert_called(&c.calls, "resume", "bg");
    assert!(!frozen(&cgroups_path));
    let o = c.exec("e5", "bg", &["echo", "after-resume"]);
    assert_eq!(o.ok().stdout, "after-resume\n");

    // kill (SIGTERM to the init): the trap runs and the task exits 42.
    c.ctr(&["task", "kill", "bg"]).ok();
    assert_called(&c.calls, "kill", "bg");
    assert!(
        wait_until(Duration::from_secs(10), || c.task_status("bg") == "STOPPED"),
        "task bg did not stop"
    );
    let o = c.ctr(&["task", "rm", "bg"]);
    assert!(o.ok().stderr.contains("exit code 42"), "{o}");
    c.ctr(&["containers", "rm", "bg"]).ok();
    assert_called(&c.calls, "delete", "bg");

    // kill --all: every process of the container, including a background child.
    c.run(&["-d"], "all", &["sh", "-c", "sleep 1000 & wait"]).ok();
    c.ctr(&["task", "kill", "--all", "--signal", "SIGKILL", "all"]).ok();
    assert_called(&c.calls, "kill --all", "all");
    assert!(
        wait_until(Duration::from_secs(10), || c.task_status("all") == "STOPPED"),
        "task `all` did not stop"
    );
    let o = c.ctr(&["task", "rm", "all"]);
    assert!(o.ok().stderr.contains("exit code 137"), "{o}");
    c.ctr(&["containers", "rm", "all"]).ok();

    let left: Vec<_> = std::fs::read_dir(c.rt_root()).into_iter().flatten().flatten().collect();
    assert!(left.is_empty(), "left in berth-runtime's root: {left:?}");
    for ctl in ["freezer", "pids", "memory"] {
        let d = format!("/sys/fs/cgroup/{ctl}{cgroups_path}");
        assert!(!Path::new(&d).exists(), "{d} left behind");
    }
}
