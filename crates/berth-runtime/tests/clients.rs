//! Real clients drive berth-runtime: Podman (through conmon) and containerd (through its
//! runc shim, `containerd-shim-runc-v2`), both Debian's packages, as root.
//!
//! Every test is self-contained: its own temp dir holds the client's storage, state,
//! sockets and config, an image built here from /bin/busybox (no registry, no network),
//! the runtime's state root, and a wrapper script that records each runtime invocation
//! before exec'ing berth-runtime. Each test proves berth-runtime ran — not runc — from
//! that record, from berth-runtime's own state files and `--log` output. Drop guards
//! remove containers, stop daemons and unmount leftovers even when an assertion fails.
//!
//! The clients are installed by scripts/setup.sh; without them these tests fail.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Longest any single client command may take before the test gives up on it.
const CMD_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Fail (never skip) when a client is missing.
fn need(tools: &[&str]) {
    let path = std::env::var("PATH").unwrap_or_default();
    let path = format!("{path}:/usr/sbin:/usr/bin:/sbin:/bin");
    for t in tools {
        let found = path.split(':').any(|d| Path::new(d).join(t).is_file());
        assert!(
            found,
            "`{t}` is not installed: run scripts/setup.sh as root (it installs the Debian packages \
             podman, catatonit and containerd that these client tests need)"
        );
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    what: String,
}

impl Out {
    fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "{}", self);
        self
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} -> exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

/// Run a command to completion with a time limit. Output goes to files, not pipes: a
/// daemon the command leaves behind (conmon, a shim) must not keep us waiting for EOF.
fn run_cmd(cmd: &mut Command, stdin: Option<&str>) -> Out {
    try_run(cmd, stdin, CMD_LIMIT).unwrap_or_else(|e| panic!("{e}"))
}

/// `run_cmd` that never panics (for Drop guards, which may run while unwinding).
fn try_run(cmd: &mut Command, stdin: Option<&str>, limit: Duration) -> Result<Out, String> {
    let what = format!("{cmd:?}");
    let err = |e: std::io::Error| format!("{what}: {e}");
    let tmp = tempfile::Builder::new()
        .prefix("berth-client-out")
        .tempdir()
        .map_err(err)?;
    let (o, e) = (tmp.path().join("out"), tmp.path().join("err"));
    cmd.stdout(File::create(&o).map_err(err)?)
        .stderr(File::create(&e).map_err(err)?);
    match stdin {
        Some(data) => {
            let i = tmp.path().join("in");
            std::fs::write(&i, data).map_err(err)?;
            cmd.stdin(File::open(&i).map_err(err)?);
        }
        None => {
            cmd.stdin(Stdio::null());
        }
    }
    let mut child = cmd.spawn().map_err(err)?;
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(err)? {
            break s;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{what} did not finish within {limit:?}; stderr so far:\n{}",
                std::fs::read_to_string(&e).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let code = status
        .code()
        .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0));
    Ok(Out {
        code,
        stdout: std::fs::read_to_string(&o).unwrap_or_default(),
        stderr: std::fs::read_to_string(&e).unwrap_or_default(),
        what,
    })
}

/// How long a cleanup command may take.
const CLEANUP_LIMIT: Duration = Duration::from_secs(20);

fn sha256(path: &Path) -> String {
    let out = run_cmd(Command::new("sha256sum").arg(path), None);
    out.ok();
    out.stdout.split_whitespace().next().unwrap().to_string()
}

fn tar_dir(dir: &Path, to: &Path) {
    run_cmd(
        Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(dir)
            .arg("-cf")
            .arg(to)
            .arg("."),
        None,
    )
    .ok();
}

/// A busybox root filesystem as a single uncompressed layer tarball.
fn busybox_layer(work: &Path) -> PathBuf {
    let rootfs = work.join("rootfs");
    common::make_rootfs(&rootfs);
    let layer = work.join("layer.tar");
    tar_dir(&rootfs, &layer);
    std::fs::remove_dir_all(&rootfs).unwrap();
    layer
}

/// An OCI image-layout archive (what `ctr image import` takes) of one busybox layer,
/// named `name` through the annotation containerd's importer reads.
fn oci_archive(work: &Path, name: &str) -> PathBuf {
    let layout = work.join("oci");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let layer = busybox_layer(work);
    let put = |src: &Path| -> (String, u64) {
        let d = sha256(src);
        let size = std::fs::metadata(src).unwrap().len();
        std::fs::rename(src, blobs.join(&d)).unwrap();
        (format!("sha256:{d}"), size)
    };
    let (layer_digest, layer_size) = put(&layer);
    let write_json = |v: Value| -> (String, u64) {
        let p = work.join("blob.json");
        std::fs::write(&p, v.to_string()).unwrap();
        put(&p)
    };
    let (config_digest, config_size) = write_json(json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        },
        // Uncompressed layer: its diff id is its digest.
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }));
    let (manifest_digest, manifest_size) = write_json(json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    }));
    std::fs::write(
        layout.join("index.json"),
        json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": "latest",
                },
            }],
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let archive = work.join("image.tar");
    tar_dir(&layout, &archive);
    std::fs::remove_dir_all(&layout).unwrap();
    archive
}

/// This test's own link (or copy) of the berth-runtime binary: the target dir is shared, and
/// a concurrent `cargo build` replacing the binary must not pull it from under a client.
fn private_runtime(dir: &Path) -> PathBuf {
    let d = dir.join("bin");
    std::fs::create_dir_all(&d).unwrap();
    let b = d.join("berth-runtime");
    // Retry a little: the binary may be mid-replacement by such a build right now.
    for _ in 0..100 {
        if std::fs::hard_link(common::bin(), &b).is_ok() || std::fs::copy(common::bin(), &b).is_ok() {
            return b;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cannot link or copy {}", common::bin().display());
}

/// A script the client is given as its runtime: it records each invocation, one line of
/// arguments per call, then execs berth-runtime `bin` with `extra` global flags in front.
fn write_wrapper(dir: &Path, bin: &Path, calls: &Path, extra: &str) -> PathBuf {
    let w = dir.join("berth-runtime-wrapper");
    std::fs::write(
        &w,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' {extra} \"$@\"\n",
            calls.display(),
            bin.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&w, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    w
}

/// The recorded runtime invocations.
fn calls(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Assert that the wrapper recorded a call of runtime command `cmd` (e.g. "create",
/// "kill --all") for container `id`.
fn assert_called(calls_file: &Path, cmd: &str, id: &str) {
    let all = calls(calls_file);
    let want: Vec<&str> = cmd.split_whitespace().collect();
    let hit = all.iter().any(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words.windows(want.len()).any(|w| w == want.as_slice()) && words.contains(&id)
    });
    assert!(
        hit,
        "berth-runtime was never invoked as `{cmd} ... {id}`; recorded calls:\n{}",
        all.join("\n")
    );
}

/// berth-runtime's own record of a live container: `state` answers from `root`, and the
/// state file has the fields only berth-runtime writes (runc's has none of them).
fn assert_berth_state(bin: &Path, root: &Path, id: &str, status: &str, pid: i64) {
    let out = run_cmd(Command::new(bin).arg("--root").arg(root).args(["state", id]), None);
    out.ok();
    let st: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(st["status"], status, "{st}");
    assert_eq!(st["pid"], pid, "{st}");
    let raw: Value = serde_json::from_slice(&std::fs::read(root.join(id).join("state.json")).unwrap()).unwrap();
    assert!(
        raw.get("pid_start").is_some() && raw.get("cgroup").is_some(),
        "{}/state.json is not berth-runtime's: {raw}",
        root.join(id).display()
    );
}

/// Every line of a `--log-format json` log is a JSON object with level, msg and time;
/// returns the messages of level `error`.
fn json_log_errors(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("berth-runtime log {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?} is not JSON: {e}"));
            for k in ["level", "msg", "time"] {
                assert!(v[k].is_string(), "log line without {k}: {l}");
            }
            v
        })
        .filter(|v| v["level"] == "error")
        .map(|v| v["msg"].as_str().unwrap().to_string())
        .collect()
}

/// Whether the container's cgroup `path` (cgroupsPath) is frozen, from the host side.
fn frozen(path: &str) -> bool {
    let v1 = format!("/sys/fs/cgroup/freezer{path}/freezer.state");
    if let Ok(s) = std::fs::read_to_string(&v1) {
        return s.trim() == "FROZEN";
    }
    let v2 = format!("/sys/fs/cgroup{path}/cgroup.freeze");
    std::fs::read_to_string(&v2).is_ok_and(|s| s.trim() == "1")
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Pids of processes whose command line mentions `needle` (daemons this test started,
/// found by the temp dir or socket only they were given).
fn pids_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| p != me)
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(needle))
        })
        .collect()
}

fn kill_pids(pids: &[i32]) {
    for &p in pids {
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
}

/// Lazily unmount whatever is still mounted under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let c = std::ffi::CString::new(p).unwrap();
        // SAFETY: umount2 on a NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Force-delete every container berth-runtime still has under `root`.
fn berth_delete_all(bin: &Path, root: &Path) {
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let _ = Command::new(bin)
            .arg("--root")
            .arg(root)
            .args(["delete", "--force"])
            .arg(e.file_name())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

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
}

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
        let mut p = Podman {
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
    }
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
