//! Shared by the real-client tests (podman.rs, containerd.rs): running client commands
//! with time limits, a busybox image built here, a private copy of berth-runtime behind a
//! wrapper that records every call, and cleanup of what a client leaves behind.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Longest any single client command may take before the test gives up on it.
pub const CMD_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Fail (never skip) when a client is missing.
pub fn need(tools: &[&str]) {
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

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub what: String,
}

impl Out {
    pub fn ok(&self) -> &Self {
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
pub fn run_cmd(cmd: &mut Command, stdin: Option<&str>) -> Out {
    try_run(cmd, stdin, CMD_LIMIT).unwrap_or_else(|e| panic!("{e}"))
}

/// `run_cmd` that never panics (for Drop guards, which may run while unwinding).
pub fn try_run(cmd: &mut Command, stdin: Option<&str>, limit: Duration) -> Result<Out, String> {
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
pub const CLEANUP_LIMIT: Duration = Duration::from_secs(20);

pub fn sha256(path: &Path) -> String {
    let out = run_cmd(Command::new("sha256sum").arg(path), None);
    out.ok();
    out.stdout.split_whitespace().next().unwrap().to_string()
}

pub fn tar_dir(dir: &Path, to: &Path) {
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
pub fn busybox_layer(work: &Path) -> PathBuf {
    let rootfs = work.join("rootfs");
    crate::common::make_rootfs(&rootfs);
    let layer = work.join("layer.tar");
    tar_dir(&rootfs, &layer);
    std::fs::remove_dir_all(&rootfs).unwrap();
    layer
}

/// An OCI image-layout archive (what `ctr image import` takes) of one busybox layer,
/// named `name` through the annotation containerd's importer reads.
pub fn oci_archive(work: &Path, name: &str) -> PathBuf {
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
pub fn private_runtime(dir: &Path) -> PathBuf {
    let d = dir.join("bin");
    std::fs::create_dir_all(&d).unwrap();
    let b = d.join("berth-runtime");
    // Retry a little: the binary may be mid-replacement by such a build right now.
    for _ in 0..100 {
        if std::fs::hard_link(crate::common::bin(), &b).is_ok() || std::fs::copy(crate::common::bin(), &b).is_ok() {
            return b;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cannot link or copy {}", crate::common::bin().display());
}

/// A script the client is given as its runtime: it records each invocation, one line of
/// arguments per call, then execs berth-runtime `bin` with `extra` global flags in front.
pub fn write_wrapper(dir: &Path, bin: &Path, calls: &Path, extra: &str) -> PathBuf {
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
pub fn calls(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Assert that the wrapper recorded a call of runtime command `cmd` (e.g. "create",
/// "kill --all") for container `id`.
pub fn assert_called(calls_file: &Path, cmd: &str, id: &str) {
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
pub fn assert_berth_state(bin: &Path, root: &Path, id: &str, status: &str, pid: i64) {
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
pub fn json_log_errors(path: &Path) -> Vec<String> {
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
pub fn frozen(path: &str) -> bool {
    let v1 = format!("/sys/fs/cgroup/freezer{path}/freezer.state");
    if let Ok(s) = std::fs::read_to_string(&v1) {
        return s.trim() == "FROZEN";
    }
    let v2 = format!("/sys/fs/cgroup{path}/cgroup.freeze");
    std::fs::read_to_string(&v2).is_ok_and(|s| s.trim() == "1")
}

pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
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
pub fn pids_mentioning(needle: &str) -> Vec<i32> {
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

pub fn kill_pids(pids: &[i32]) {
    for &p in pids {
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
}

/// Lazily unmount whatever is still mounted under `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
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
pub fn berth_delete_all(bin: &Path, root: &Path) {
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
