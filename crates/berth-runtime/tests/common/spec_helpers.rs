//! Helpers of the runtime-spec coverage tests: config edits, waiting, host mounts and
//! child processes that are cleaned up even when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use super::Ct;
use serde_json::Value;

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn add_mount(c: &mut Ct, m: Value) {
    let mut mounts = c.config["mounts"].as_array().unwrap().clone();
    mounts.push(m);
    c.config["mounts"] = mounts.into();
}

pub fn add_namespace(c: &mut Ct, ns: Value) {
    let mut list = c.config["linux"]["namespaces"].as_array().unwrap().clone();
    list.push(ns);
    c.config["linux"]["namespaces"] = list.into();
}

pub fn remove_namespace(c: &mut Ct, typ: &str) {
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
pub fn run_detached(c: &Ct) {
    let b = c.bundle.path().to_str().unwrap().to_string();
    let (ok, err) = c.rt_detached(&["run", "-d", "--bundle", &b, &c.id]);
    assert!(ok, "run -d: {err}");
}

/// Run in the foreground, asserting exit 0; returns stdout.
pub fn run_ok(c: &Ct) -> String {
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    out
}

pub fn exec_ok(c: &Ct, args: &[&str]) -> String {
    let out = c.exec(args);
    assert!(out.status.success(), "exec {args:?}: {}", stderr(&out));
    stdout(&out)
}

pub fn init_pid(c: &Ct) -> i32 {
    c.state().expect("state")["pid"].as_i64().unwrap() as i32
}

/// Gone, or a zombie nobody reaped yet.
pub fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

pub fn mount_raw(src: &str, target: &Path, fstype: Option<&str>, flags: libc::c_ulong, data: Option<&str>) {
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
pub struct HostMounts(pub Vec<PathBuf>);

impl HostMounts {
    pub fn tmpfs(&mut self, target: &Path, data: &str) {
        mount_raw("tmpfs", target, Some("tmpfs"), 0, Some(data));
        self.0.push(target.to_path_buf());
    }

    /// Bind `dir` onto itself and make it a shared mount (the host's / is private here).
    pub fn shared_bind(&mut self, dir: &Path) {
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
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn chown_tree(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
    let md = std::fs::symlink_metadata(p).unwrap();
    if md.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

pub fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

/// Words of each line, whitespace collapsed.
pub fn squash(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}
