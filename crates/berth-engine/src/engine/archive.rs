//! `docker cp`: stat, read (as a tar) and write (from a tar) paths inside a container,
//! running or not. Paths resolve inside the container's root (see `tarfs`), never on
//! the host, whatever symlinks the container holds.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;

use berth_runtime::fsutil::{self, FsError};
use nix::errno::Errno;
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode};
use serde::Serialize;

use super::tarfs::{self, ExtractOptions, Source, TarError};
use super::util::{is_mounted, unmount};
use super::{lock, Container, Engine};
use crate::error::{io_err, EngineError, Result};
use crate::ocispec;

/// Docker's `ContainerPathStat` (base64 JSON in `X-Docker-Container-Path-Stat`).
#[derive(Debug, Clone, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits.
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// The container's root filesystem, open (and mounted, for a stopped container) for as
/// long as this lives.
struct RootfsAccess<'a> {
    root: OwnedFd,
    path: PathBuf,
    mounted_here: bool,
    /// Held while a stopped container's rootfs is mounted here, so it cannot start (and
    /// mount the same overlay layers a second time) meanwhile.
    _op: Option<MutexGuard<'a, ()>>,
}

impl Drop for RootfsAccess<'_> {
    fn drop(&mut self) {
        if self.mounted_here {
            unmount(&self.path);
        }
    }
}

/// `path` opened, if it is a mount point (the running container's rootfs, not the bare
/// directory under it). Checked on the descriptor, so an unmount in between is noticed.
fn open_mounted(path: &Path) -> Option<OwnedFd> {
    let fd: OwnedFd = std::fs::File::open(path).ok()?.into();
    let st = fstat(&fd).ok()?;
    let parent = std::fs::metadata(path.parent()?).ok()?;
    (st.st_dev != parent.dev()).then_some(fd)
}

/// Docker's `filepath.Base` of the container path: the name the archive entries get.
fn base_name(abs: &str) -> String {
    let t = abs.trim_end_matches('/');
    match t.rsplit('/').next() {
        Some(b) if !b.is_empty() => b.to_string(),
        _ => "/".to_string(),
    }
}

/// A resolved source: what to archive, its stat, and the name to rebase its entries on.
struct Resolved {
    source: Source,
    stat: PathStat,
    rebase: String,
}

fn not_found(e: &TarError) -> bool {
    let os = |s: &std::io::Error| s.raw_os_error() == Some(libc::ENOENT);
    match e {
        TarError::Io { source, .. } | TarError::Fs(FsError::Io { source, .. }) => os(source),
        _ => false,
    }
}

/// Resolve `path` as Docker does for `docker cp` from a container: every element but the
/// last is followed (inside the root); the last is followed only when the path ends in
/// `/` or `/.`.
fn resolve(root: &OwnedFd, path: &str) -> std::result::Result<Resolved, TarError> {
    let clean = Path::new("/").join(fsutil::relative_in_root(Path::new(path)));
    let whole_dir = path.ends_with('/') || path.ends_with("/.") || path == "." || clean == Path::new("/");
    let mut abs = clean.to_string_lossy().into_owned();
    if path.ends_with("/.") || path == "." {
        abs.push_str(if abs.ends_with('/') { "." } else { "/." });
    }
    let rebase = base_name(&abs);
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let dir_path = if whole_dir {
        clean.as_path()
    } else {
        clean.parent().unwrap_or(Path::new("/"))
    };
    let dir = fsutil::open_in_root(root, dir_path, dir_flags, Mode::empty())?;
    let errno = |op| {
        let path = clean.clone();
        move |e: Errno| TarError::Io {
            op,
            path,
            source: e.into(),
        }
    };
    let (source, st) = match clean.file_name().filter(|_| !whole_dir) {
        None => {
            let st = fstat(&dir).map_err(errno("stat"))?;
            (Source::Dir(dir), st)
        }
        Some(name) => {
            let st = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno("lstat"))?;
            let source = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                let flags = dir_flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                Source::Dir(nix::fcntl::openat(&dir, name, flags, Mode::empty()).map_err(errno("open"))?)
            } else {
                Source::Entry {
                    parent: dir,
                    name: name.to_owned(),
                }
            };
            (source, st)
        }
    };
    let link_target = match &source {
        Source::Entry { parent, name } if st.st_mode & libc::S_IFMT == libc::S_IFLNK => {
            link_target(root, parent, name, &clean)
        }
        _ => String::new(),
    };
    let stat = PathStat {
        name: rebase.clone(),
        size: st.st_size,
        mode: tarfs::go_file_mode(st.st_mode),
        mtime: berth_runtime::state::rfc3339(st.st_mtime, st.st_mtime_nsec as u32),
        link_target,
    };
    Ok(Resolved { source, stat, rebase })
}

/// Where a symlink leads, as an absolute path in the container: fully resolved inside
/// the root when it exists, else its target taken lexically (Docker's `linkTarget`).
fn link_target(root: &OwnedFd, parent: &OwnedFd, name: &std::ffi::OsStr, clean: &Path) -> String {
    if let Ok(fd) = fsutil::open_in_root(root, clean, OFlag::O_PATH, Mode::empty()) {
        if let Some(p) = tarfs::path_in_root(root, &fd) {
            return p.to_string_lossy().into_owned();
        }
    }
    let Ok(target) = readlinkat(parent, name) else {
        return String::new();
    };
    let base = clean.parent().unwrap_or(Path::new("/"));
    let joined = base.join(target);
    Path::new("/")
        .join(fsutil::relative_in_root(&joined))
        .to_string_lossy()
        .into_owned()
}

impl Engine {
    /// Open the container's root filesystem: while it runs, its root as its own processes
    /// see it (/proc/<pid>/root: volumes, binds and tmpfs mounts included, as `docker cp`
    /// sees them), else its overlay mounted for the caller (unmounted when access ends).
    fn rootfs_access<'a>(&self, c: &'a Container) -> Result<RootfsAccess<'a>> {
        let path = self.container_dir(&c.id).join("rootfs");
        let running = || -> Result<RootfsAccess<'a>> {
            let pid = c.record().state.pid;
            if pid > 0 {
                if let Ok(f) = std::fs::File::open(format!("/proc/{pid}/root")) {
                    // The pid is still this container's (not reused since).
                    if c.record().state.pid == pid {
                        return Ok(RootfsAccess {
                            root: f.into(),
                            path: path.clone(),
                            mounted_here: false,
                            _op: None,
                        });
                    }
                }
            }
            let root = open_mounted(&path).ok_or_else(|| {
                EngineError::Conflict(format!(
                    "the root filesystem of running container {} is not mounted",
                    c.id
                ))
            })?;
            Ok(RootfsAccess {
                root,
                path: path.clone(),
                mounted_here: false,
                _op: None,
            })
        };
        if c.record().state.running {
            if let Ok(a) = running() {
                return Ok(a);
            }
        }
        let op = lock(&c.op);
        let rec = c.record();
        if rec.state.running {
            // Started while we waited for it: its start mounted the rootfs.
            return running();
        }
        if rec.rootfs_mount.is_empty() {
            return Err(EngineError::Conflict(format!(
                "container {} has no root filesystem",
                c.id
            )));
        }
        std::fs::create_dir_all(&path).map_err(io_err(format!("create {}", path.display())))?;
        let mounted_here = !is_mounted(&path);
        if mounted_here {
            nix::mount::mount(
                Some("overlay"),
                &path,
                Some("overlay"),
                nix::mount::MsFlags::empty(),
                Some(rec.rootfs_mount.as_str()),
            )
            .map_err(|e| io_err(format!("mount the overlay of container {} at {}", c.id, path.display()))(e.into()))?;
        }
        let access = RootfsAccess {
            root: std::fs::File::open(&path)
                .map_err(io_err(format!("open {}", path.display())))?
                .into(),
            path,
            mounted_here,
            _op: Some(op),
        };
        Ok(access)
    }

    fn copy_error(&self, e: TarError, key: &str, path: &str, id: &str) -> EngineError {
        if not_found(&e) {
            return EngineError::NotFound(format!("Could not find the file {path} in container {key}"));
        }
        match e {
            TarError::Breakout(m) | TarError::Overwrite(m) => EngineError::InvalidParameter(m),
            e => EngineError::Io {
                what: format!("copying {path} of container {id}"),
                source: std::io::Error::other(e),
            },
        }
    }

    /// `HEAD /containers/{id}/archive`: what `path` is (a symlink is not followed).
    pub fn archive_stat(&self, key: &str, path: &str) -> Result<PathStat> {
        let c = self.get(key)?;
        let access = self.rootfs_access(&c)?;
        let r = resolve(&access.root, path).map_err(|e| self.copy_error(e, key, path, &c.id))?;
        Ok(r.stat)
    }

    /// `GET /containers/{id}/archive`: `path` as a tar stream. `start` gets the path's
    /// stat (for the response's headers) and returns where the stream goes.
    pub fn archive_get<W: Write>(&self, key: &str, path: &str, start: impl FnOnce(&PathStat) -> W) -> Result<()> {
        let c = self.get(key)?;
        let access = self.rootfs_access(&c)?;
        let r = resolve(&access.root, path).map_err(|e| self.copy_error(e, key, path, &c.id))?;
        let out = start(&r.stat);
        let mut out = tarfs::write_tar(&r.source, &r.rebase, out).map_err(|e| self.copy_error(e, key, path, &c.id))?;
        out.flush()
            .map_err(io_err(format!("send {path} of container {}", c.id)))?;
        self.emit_with(&c.record(), "archive-path", &[("path", path.to_string())]);
        Ok(())
    }

    /// `PUT /containers/{id}/archive`: extract a tar stream into the directory `path`
    /// (symlinks followed inside the container, the last one too, as Docker does).
    pub fn archive_put(
        &self,
        key: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
        input: impl Read,
    ) -> Result<()> {
        let c = self.get(key)?;
        let rec = c.record();
        if rec.host_config.readonly_rootfs {
            return Err(EngineError::InvalidParameter(
                "container rootfs is marked read-only".into(),
            ));
        }
        let access = self.rootfs_access(&c)?;
        let err = |e: TarError| self.copy_error(e, key, path, &c.id);
        let abs = Path::new("/").join(fsutil::relative_in_root(Path::new(path)));
        let fd = fsutil::open_in_root(&access.root, &abs, OFlag::O_PATH, Mode::empty()).map_err(|e| err(e.into()))?;
        let st = fstat(&fd).map_err(|e| {
            err(TarError::Io {
                op: "stat",
                path: abs.clone(),
                source: e.into(),
            })
        })?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(EngineError::InvalidParameter(
                "extraction point is not a directory".into(),
            ));
        }
        let dest = tarfs::path_in_root(&access.root, &fd).ok_or_else(|| {
            EngineError::Conflict(format!(
                "container {}: {path} resolves outside its root filesystem (was it unmounted?)",
                c.id
            ))
        })?;
        let chown = if copy_uid_gid {
            let u = ocispec::resolve_user(&access.path, &rec.config.user, &[])?;
            let id = |k: &str| u[k].as_u64().unwrap_or(0) as u32;
            Some((id("uid"), id("gid")))
        } else {
            None
        };
        let opts = ExtractOptions {
            no_overwrite_dir_non_dir,
            chown,
        };
        tarfs::extract(&access.root, &dest, input, &opts).map_err(err)?;
        drop(access);
        self.emit_with(&c.record(), "extract-to-dir", &[("path", path.to_string())]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names_as_go() {
        assert_eq!(base_name("/etc/passwd"), "passwd");
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/etc/."), ".");
        assert_eq!(base_name("/"), "/");
    }
}
