//! File-system helpers shared by the runtime: atomic writes, race-free resolution of
//! paths inside a container's root, and a verified handle on procfs.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not {expected} (refusing to use it)")]
    Unexpected { path: PathBuf, expected: &'static str },
}

pub type Result<T> = std::result::Result<T, FsError>;

pub fn io_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> FsError {
    let path = path.into();
    move |source| FsError::Io { op, path, source }
}

fn nix_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(Errno) -> FsError {
    let path = path.into();
    move |e| FsError::Io {
        op,
        path,
        source: std::io::Error::from(e),
    }
}

/// Write `data` to `path` atomically: temp file in the same directory, fsync, rename.
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let res = (|| {
        let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(data).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io_err("rename", path))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Turn a container path into one relative to the container root ("/a/../b" stays inside).
pub fn relative_in_root(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(not(feature = "unsafe-no-resolve-in-root"))]
const IN_ROOT: ResolveFlag = ResolveFlag::RESOLVE_IN_ROOT.union(ResolveFlag::RESOLVE_NO_MAGICLINKS);
#[cfg(feature = "unsafe-no-resolve-in-root")]
const IN_ROOT: ResolveFlag = ResolveFlag::empty();

/// Open `path` (a container path) inside `root` without ever leaving it: symlinks are
/// resolved as if `root` were `/` (CVE-2021-30465: no symlink race can redirect a mount).
pub fn open_in_root(root: &impl AsFd, path: &Path, flags: OFlag, mode: Mode) -> Result<OwnedFd> {
    let rel = relative_in_root(path);
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(mode)
        .resolve(IN_ROOT);
    openat2(root.as_fd(), rel.as_path(), how).map_err(nix_err("open in container root", path))
}

/// Create every missing directory of `path` inside `root` and return an O_PATH handle on
/// the last one. Each step is resolved in the root, so a symlink planted in the rootfs
/// cannot point a later mount outside it; a dangling symlink is followed (inside the root)
/// and its target created, as a mount over it would need.
pub fn mkdir_all_in_root(root: &impl AsFd, path: &Path, mode: u32) -> Result<OwnedFd> {
    let mut todo: Vec<std::ffi::OsString> = relative_in_root(path)
        .components()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    todo.reverse();
    let mut cur = PathBuf::new();
    let mut fd = open_in_root(root, Path::new("/"), OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
    let mut links = 0;
    while let Some(comp) = todo.pop() {
        let next = cur.join(&comp);
        match open_in_root(root, &next, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()) {
            Ok(f) => {
                fd = f;
                cur = next;
                continue;
            }
            Err(FsError::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let name = CString::new(comp.as_bytes()).map_err(|_| FsError::Unexpected {
            path: next.clone(),
            expected: "a path without NUL",
        })?;
        // A dangling symlink: continue from its target, resolved inside the root.
        if let Ok(target) = nix::fcntl::readlinkat(&fd, name.as_c_str()) {
            links += 1;
            if links > 40 {
                return Err(io_err("resolve in container root", &next)(
                    std::io::Error::from_raw_os_error(libc::ELOOP),
                ));
            }
            let t = Path::new(&target);
            let base = if t.is_absolute() { PathBuf::new() } else { cur.clone() };
            let resolved = relative_in_root(&base.join(t));
            for c in resolved.components().rev() {
                todo.push(c.as_os_str().to_owned());
            }
            cur = PathBuf::new();
            fd = open_in_root(root, Path::new("/"), OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
            continue;
        }
        // SAFETY: fd is a valid directory fd and name a NUL-terminated string.
        let r = unsafe { libc::mkdirat(fd.as_raw_fd(), name.as_ptr(), mode) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(io_err("mkdir in container root", &next)(e));
            }
        }
        fd = open_in_root(root, &next, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
        cur = next;
    }
    Ok(fd)
}

/// Create (if missing) a regular file at `path` inside `root`, for a file bind-mount target.
pub fn create_file_in_root(root: &impl AsFd, path: &Path) -> Result<OwnedFd> {
    let rel = relative_in_root(path);
    if let Some(parent) = rel.parent() {
        mkdir_all_in_root(root, parent, 0o755)?;
    }
    match open_in_root(root, path, OFlag::O_PATH, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(_) => {
            let f = open_in_root(
                root,
                path,
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW,
                Mode::from_bits_truncate(0o644),
            )?;
            drop(f);
            open_in_root(root, path, OFlag::O_PATH, Mode::empty())
        }
    }
}

/// The path through which a syscall taking a path reaches exactly the object behind `fd`.
pub fn fd_path(fd: RawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{fd}"))
}

/// A procfs we have checked is procfs (CVE-2025-52881): writes to /proc files go through
/// it with RESOLVE_NO_XDEV, so a file mounted over a /proc entry is refused.
pub struct ProcFs {
    root: OwnedFd,
}

impl ProcFs {
    pub fn open(path: &Path) -> Result<ProcFs> {
        let root = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(nix_err("open procfs", path))?;
        if cfg!(feature = "unsafe-no-procfs-check") {
            return Ok(ProcFs { root });
        }
        let st = nix::sys::statfs::fstatfs(&root).map_err(nix_err("statfs", path))?;
        if st.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
            return Err(FsError::Unexpected {
                path: path.into(),
                expected: "a procfs mount",
            });
        }
        let meta = nix::sys::stat::fstat(&root).map_err(nix_err("stat", path))?;
        if meta.st_ino != 1 {
            return Err(FsError::Unexpected {
                path: path.into(),
                expected: "the root of a procfs mount",
            });
        }
        Ok(ProcFs { root })
    }

    /// Open a file below this procfs ("self/oom_score_adj", "sys/net/...").
    pub fn open_file(&self, rel: &str, flags: OFlag) -> Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(if cfg!(feature = "unsafe-no-procfs-check") {
                ResolveFlag::empty()
            } else {
                ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_XDEV | ResolveFlag::RESOLVE_NO_MAGICLINKS
            });
        openat2(self.root.as_fd(), rel, how).map_err(nix_err("open", format!("/proc/{rel}")))
    }

    pub fn write(&self, rel: &str, value: &str) -> Result<()> {
        let fd = self.open_file(rel, OFlag::O_WRONLY)?;
        let mut f = File::from(fd);
        f.write_all(value.as_bytes())
            .map_err(io_err("write", format!("/proc/{rel}")))
    }
}

/// Duplicate `fd` to a number at or above `min`, close-on-exec.
pub fn dup_above(fd: RawFd, min: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only reads fd; the returned fd is new and ours.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: r is a freshly duplicated fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// Mark every fd >= `from` close-on-exec, so nothing of ours leaks into the container
/// (CVE-2024-21626).
pub fn cloexec_from(from: u32) -> std::io::Result<()> {
    if cfg!(feature = "unsafe-no-fd-cleanup") {
        return Ok(());
    }
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on our own fds.
    let r = unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if r == 0 {
        return Ok(());
    }
    // Kernels before 5.11: walk /proc/self/fd.
    let dir = std::fs::read_dir("/proc/self/fd")?;
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &RawFd| fd >= from as RawFd)
        .collect();
    for fd in fds {
        // SAFETY: setting FD_CLOEXEC on an fd number is harmless even if it was just closed.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_in_root_clamps_dotdot() {
        assert_eq!(relative_in_root(Path::new("/a/../../b/./c")), PathBuf::from("b/c"));
        assert_eq!(relative_in_root(Path::new("../../etc")), PathBuf::from("etc"));
        assert_eq!(relative_in_root(Path::new("/")), PathBuf::new());
    }

    /// CVE-2021-30465 at its root: fails with `unsafe-no-resolve-in-root` (checked once).
    #[test]
    fn mkdir_all_in_root_stays_inside_with_hostile_symlink() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("evil")).unwrap();
        let rootfd = nix::fcntl::open(root.path(), OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        mkdir_all_in_root(&rootfd, Path::new("/evil/x/y"), 0o755).unwrap();
        // The absolute symlink was resolved inside the root, so nothing appeared outside.
        assert!(!outside.path().join("x").exists());
        assert!(root
            .path()
            .join(outside.path().strip_prefix("/").unwrap())
            .join("x/y")
            .is_dir());
        // Positive control: a plain path is created where expected.
        mkdir_all_in_root(&rootfd, Path::new("/plain/dir"), 0o755).unwrap();
        assert!(root.path().join("plain/dir").is_dir());
    }

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    /// CVE-2025-52881: a file mounted over a /proc entry is refused (RESOLVE_NO_XDEV), while
    /// the entry next to it opens (positive control). Checked once with
    /// `--features unsafe-no-procfs-check`: the overmounted entry opened and this test failed.
    #[test]
    fn procfs_refuses_overmounted_entries() {
        // SAFETY: the child only makes syscalls, then _exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code = (|| {
                    use nix::mount::{mount, MsFlags};
                    if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).is_err() {
                        return 10;
                    }
                    let none: Option<&str> = None;
                    if mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).is_err() {
                        return 11;
                    }
                    if mount(
                        Some("/dev/null"),
                        "/proc/sys/kernel/hostname",
                        none,
                        MsFlags::MS_BIND,
                        none,
                    )
                    .is_err()
                    {
                        return 12;
                    }
                    let p = match ProcFs::open(Path::new("/proc")) {
                        Ok(p) => p,
                        Err(_) => return 13,
                    };
                    if p.open_file("sys/kernel/domainname", OFlag::O_RDONLY).is_err() {
                        return 14;
                    }
                    if p.open_file("sys/kernel/hostname", OFlag::O_WRONLY).is_ok() {
                        return 15;
                    }
                    0
                })();
                // SAFETY: leave the forked child without running the harness's destructors.
                unsafe { libc::_exit(code) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                let st = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }

    #[test]
    fn procfs_is_verified() {
        let p = ProcFs::open(Path::new("/proc")).unwrap();
        assert!(p.open_file("self/status", OFlag::O_RDONLY).is_ok());
        let d = tempfile::tempdir().unwrap();
        assert!(ProcFs::open(d.path()).is_err());
    }
}
