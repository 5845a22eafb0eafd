//! Regression tests for known runc escapes. Each refusal test also runs the same bundle
//! without the attack (positive control) in the same test.

mod common;

use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::time::Duration;

use common::{assert_nothing_left, Ct};
use serde_json::json;

/// The whole binary, compared byte for byte.
fn digest(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// CVE-2019-5736. A process in the container grabs /proc/1/exe while the init is still
/// the runtime, waits until no runtime process runs, then writes through that handle.
/// With the sealed-memfd defence the write fails and the binary is unchanged.
/// Checked once with the defence off (`--features unsafe-no-exe-seal`): the write went
/// through and this test failed, as it should.
#[test]
fn cve_2019_5736_runtime_binary_not_writable() {
    let mut c = Ct::new(&["sleep", "5"]);
    // Run a private copy so a failed defence can never damage the real build.
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("berth-runtime");
    std::fs::copy(&c.bin, &copy).unwrap();
    c.bin = copy.clone();
    let before = digest(&copy);
    let (ok, err) = c.create();
    assert!(ok, "{err}");
    let attack = "exec 3</proc/1/exe && echo opened > /tmp/opened; sleep 1; \
                  echo PWNED >> /proc/self/fd/3; echo $? > /tmp/result";
    let (ok, err) = c.rt_detached(&["exec", "-d", &c.id, "sh", "-c", attack]);
    assert!(ok, "{err}");
    std::thread::sleep(Duration::from_millis(200));
    let out = c.rt(&["start", &c.id]);
    assert!(out.status.success());
    // Wait for the attacker to finish.
    let result = c.rootfs().join("tmp/result");
    for _ in 0..100 {
        if result.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Positive control: the attack really got a handle on the init's executable.
    assert!(
        c.rootfs().join("tmp/opened").exists(),
        "attacker could not open /proc/1/exe at all"
    );
    let rc = std::fs::read_to_string(&result).unwrap_or_default();
    assert_ne!(rc.trim(), "0", "write through /proc/1/exe succeeded");
    assert!(
        digest(&copy) == before,
        "the runtime binary was modified from inside the container"
    );
}

/// CVE-2024-21626: no runtime fd reaches the container, and a cwd through a leaked fd
/// (/proc/self/fd/N) is refused rather than landing outside the root.
/// Checked once with `--features unsafe-no-fd-cleanup`: the leaked fds showed up in the
/// container ("0 1 2 3 4") and this test failed.
#[test]
fn cve_2024_21626_no_fd_leak_and_cwd_inside() {
    // An fd the caller leaks to us without close-on-exec.
    let leak = std::fs::File::open("/").unwrap();
    let fdnum = leak.as_raw_fd();
    // SAFETY: clear FD_CLOEXEC on our own fd so the runtime inherits it.
    unsafe { libc::fcntl(fdnum, libc::F_SETFD, 0) };
    let c = Ct::new(&["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"]);
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    // ls itself holds one fd (3) for the directory it reads.
    assert_eq!(out.trim(), "0 1 2 3", "fds in the container: {out}");

    for n in 3..10 {
        let mut c = Ct::new(&["pwd"]);
        c.config["process"]["cwd"] = format!("/proc/self/fd/{n}").into();
        c.save();
        let (code, out, _) = c.run();
        // Either refused, or (if fd n was not a directory fd at all) still inside the root.
        if code == 0 {
            assert!(
                out.starts_with('/') && !out.contains("unreachable"),
                "cwd escaped: {out}"
            );
        }
        assert_nothing_left(&c);
    }
    // Positive control: an ordinary cwd works.
    let mut c = Ct::new(&["pwd"]);
    c.config["process"]["cwd"] = "/tmp".into();
    c.save();
    assert_eq!(c.run().1.trim(), "/tmp");
    drop(leak);
}

/// --preserve-fds passes exactly the fds asked for (positive control for the leak test).
#[test]
fn preserve_fds_passes_asked_fds_only() {
    let c = Ct::new(&["sh", "-c", "cat <&3"]);
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), "through-fd-3").unwrap();
    let file = std::fs::File::open(f.path()).unwrap();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let mut cmd = c.cmd(&["run", "--preserve-fds", "1", "--bundle", &b, &c.id]);
    let raw = file.as_raw_fd();
    // SAFETY: in the child between fork and exec: dup2 our file to fd 3, async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "through-fd-3",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// CVE-2021-30465: a mount target that is a symlink pointing out of the rootfs is
/// resolved inside the rootfs, never on the host.
/// Checked once with `--features unsafe-no-resolve-in-root`: the tmpfs went to the host
/// path (outside the container's root) and this test failed.
#[test]
fn cve_2021_30465_mount_target_symlink_stays_inside() {
    let host = tempfile::tempdir().unwrap();
    let mut c = Ct::new(&["sh", "-c", "echo inside > /evil/marker && echo ok"]);
    std::os::unix::fs::symlink(host.path(), c.rootfs().join("evil")).unwrap();
    let mut mounts = c.config["mounts"].as_array().unwrap().clone();
    mounts.push(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    c.config["mounts"] = mounts.into();
    c.save();
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "ok");
    // The tmpfs went to rootfs/<host path>, not to the host directory.
    assert!(!host.path().join("marker").exists(), "mount escaped the rootfs");
    assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 0);
}

/// CVE-2019-19921 / CVE-2023-27561: /proc given as a symlink in the rootfs is refused.
/// Checked once with `--features unsafe-no-symlink-check`: create succeeded and this
/// test (and the /sys one below) failed.
#[test]
fn proc_symlink_is_refused() {
    let target = tempfile::tempdir().unwrap();
    let c = Ct::new(&["true"]);
    std::fs::remove_dir(c.rootfs().join("proc")).unwrap();
    std::os::unix::fs::symlink(target.path(), c.rootfs().join("proc")).unwrap();
    let (ok, err) = c.create();
    assert!(!ok);
    assert!(err.contains("/proc") && err.contains("symlink"), "{err}");
    assert_nothing_left(&c);
    assert_eq!(
        std::fs::read_dir(target.path()).unwrap().count(),
        0,
        "something was mounted through the symlink"
    );
    // Positive control: the same bundle with a real /proc runs.
    std::fs::remove_file(c.rootfs().join("proc")).unwrap();
    std::fs::create_dir(c.rootfs().join("proc")).unwrap();
    assert_eq!(c.run().0, 0);
}

/// /sys as a symlink is refused the same way.
#[test]
fn sys_symlink_is_refused() {
    let target = tempfile::tempdir().unwrap();
    let c = Ct::new(&["true"]);
    std::fs::remove_dir(c.rootfs().join("sys")).unwrap();
    std::os::unix::fs::symlink(target.path(), c.rootfs().join("sys")).unwrap();
    let (ok, err) = c.create();
    assert!(!ok);
    assert!(err.contains("/sys") && err.contains("symlink"), "{err}");
    assert_nothing_left(&c);
}

/// CVE-2025-31133: a /dev/null that is not the null device (here a host file bound
/// over it) is never used to mask paths: create is refused, the file untouched.
#[test]
fn cve_2025_31133_fake_dev_null_refused() {
    let fake = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(fake.path(), "host-file").unwrap();
    let mut c = Ct::new(&["true"]);
    let mut mounts = c.config["mounts"].as_array().unwrap().clone();
    mounts.push(json!({"destination": "/dev/null", "type": "bind", "source": fake.path(), "options": ["bind"]}));
    c.config["mounts"] = mounts.into();
    c.save();
    let (ok, err) = c.create();
    assert!(!ok, "a fake /dev/null was accepted");
    assert!(err.contains("/dev/null"), "{err}");
    assert_nothing_left(&c);
    assert_eq!(std::fs::read_to_string(fake.path()).unwrap(), "host-file");
    // Positive control: the same bundle without the fake runs and masks /proc/keys.
    let c2 = Ct::new(&["sh", "-c", "wc -c < /proc/keys"]);
    let (code, out, _) = c2.run();
    assert_eq!((code, out.trim()), (0, "0"));
}

/// CVE-2025-31133, second form: linux.devices redefines /dev/null (here as 1:5, the zero
/// device). Masking with it would expose endless zeros instead of hiding /proc entries:
/// create is refused instead. Checked once with `--features unsafe-no-dev-null-check`:
/// the container started and this test failed.
#[test]
fn cve_2025_31133_redefined_dev_null_refused() {
    let mut c = Ct::new(&["true"]);
    c.config["linux"]["devices"] = json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 5, "fileMode": 438}]);
    c.save();
    let (ok, err) = c.create();
    assert!(!ok, "a /dev/null that is not 1:3 was used");
    assert!(err.contains("/dev/null"), "{err}");
    assert_nothing_left(&c);
    // Positive control: another device from linux.devices is fine.
    let mut c2 = Ct::new(&["sh", "-c", "head -c 3 /dev/myzero | wc -c"]);
    c2.config["linux"]["devices"] =
        json!([{"path": "/dev/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 438}]);
    c2.save();
    let (code, out, err) = c2.run();
    assert_eq!((code, out.trim()), (0, "3"), "{err}");
}

/// CVE-2022-29162: `exec --cap` adds to bounding/effective/permitted, never inheritable.
/// Checked once with `--features unsafe-exec-cap-inheritable`: CapInh was set and this
/// test failed.
#[test]
fn cve_2022_29162_exec_cap_not_inheritable() {
    let c = Ct::new(&["sleep", "30"]);
    let b = c.bundle.path().to_str().unwrap().to_string();
    assert!(c.rt_detached(&["run", "-d", "--bundle", &b, &c.id]).0);
    let out = c.exec(&[
        "--cap",
        "CAP_SYS_ADMIN",
        "sh",
        "-c",
        "grep -E 'CapInh|CapEff|CapAmb' /proc/self/status",
    ]);
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("CapInh:\t0000000000000000"), "{t}");
    assert!(t.contains("CapAmb:\t0000000000000000"), "{t}");
    // Positive control: the capability was granted (bit 21 = CAP_SYS_ADMIN).
    let eff = t.lines().find(|l| l.starts_with("CapEff")).unwrap();
    let v = u64::from_str_radix(eff.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert!(v & (1 << 21) != 0, "{t}");
}
