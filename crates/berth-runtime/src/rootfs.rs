//! The container's file-system view, built inside its new mount namespace: the rootfs
//! bind, the spec's mounts (every target resolved inside the rootfs, race-free), device
//! nodes, pivot_root, then masked and read-only paths.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use crate::fsutil::{self, fd_path, FsError};
use crate::mountopts::{self, attr, Parsed};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Opt(#[from] mountopts::OptError),
    #[error("mount {what} on {dest}: {source}")]
    Mount {
        what: String,
        dest: String,
        #[source]
        source: nix::Error,
    },
    #[error("{0}")]
    Refused(String),
}

pub type Result<T> = std::result::Result<T, RootfsError>;

fn merr(what: impl Into<String>, dest: &Path) -> impl FnOnce(nix::Error) -> RootfsError {
    let what = what.into();
    let dest = dest.display().to_string();
    move |source| RootfsError::Mount { what, dest, source }
}

/// Where cgroup hierarchies live on the host, for `cgroup` mounts.
pub struct CgroupMounts {
    pub unified: bool,
    pub new_cgroupns: bool,
    /// (subsystem directory name, host directory of the container's cgroup)
    pub sources: Vec<(String, PathBuf)>,
}

pub struct Rootfs {
    pub path: PathBuf,
    pub root: OwnedFd,
    pub in_userns: bool,
    /// linux.mountLabel, where SELinux is enabled (it is ignored elsewhere, as runc does).
    pub mount_label: Option<String>,
}

/// Step 1: make our mount tree private to us and the rootfs a mount point of its own.
pub fn prepare(spec: &Spec, rootfs: &Path, in_userns: bool) -> Result<Rootfs> {
    let linux = spec.linux().as_ref();
    let prop = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(mountopts::propagation)
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    // Shared propagation would make pivot_root fail; the rootfs gets it back afterwards.
    let first = if prop.contains(MsFlags::MS_SHARED) {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    } else {
        prop
    };
    mount(None::<&str>, "/", None::<&str>, first, None::<&str>).map_err(merr("propagation", Path::new("/")))?;
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(merr("rootfs bind", rootfs))?;
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(merr("open rootfs", rootfs))?;
    let selinux = Path::new("/sys/fs/selinux/enforce").exists();
    let mount_label = linux
        .and_then(|l| l.mount_label().clone())
        .filter(|l| selinux && !l.is_empty());
    Ok(Rootfs {
        path: rootfs.to_path_buf(),
        root,
        in_userns,
        mount_label,
    })
}

impl Rootfs {
    /// Step 2: every mount of the spec, in order. `idmapped(i)` supplies a detached,
    /// already idmapped mount for spec mount i (made by the runtime in the host's user
    /// namespace, where the kernel allows it).
    pub fn mount_all(&self, spec: &Spec, bundle: &Path, cg: &CgroupMounts, idmapped: IdmapSource) -> Result<()> {
        for (i, m) in spec.mounts().as_deref().unwrap_or_default().iter().enumerate() {
            self.mount_one(i, m, bundle, cg, idmapped)?;
        }
        Ok(())
    }

    fn mount_one(&self, i: usize, m: &Mount, bundle: &Path, cg: &CgroupMounts, idmapped: IdmapSource) -> Result<()> {
        let dest = m.destination();
        let dest_s = dest.display().to_string();
        let typ = m.typ().as_deref().unwrap_or("");
        let opts = mountopts::parse(m.options().as_deref().unwrap_or_default(), &dest_s)?;
        if typ == "cgroup" || typ == "cgroup2" {
            return self.mount_cgroup(dest, &opts, cg);
        }
        if matches!(typ, "proc" | "sysfs") {
            self.refuse_symlink(dest)?;
        }
        if opts.idmap {
            let fd = idmapped(i).map_err(RootfsError::Refused)?;
            return self.attach_idmapped(m, &fd, &opts);
        }
        if opts.bind || typ == "bind" {
            return self.bind(m, bundle, &opts);
        }
        let target = fsutil::mkdir_all_in_root(&self.root, dest, 0o755)?;
        let mut data = opts.data.join(",");
        if let Some(label) = self
            .mount_label
            .as_deref()
            .filter(|_| !matches!(typ, "proc" | "sysfs" | "mqueue"))
        {
            if !data.is_empty() {
                data.push(',');
            }
            data.push_str(&format!("context=\"{label}\""));
        }
        let src = m
            .source()
            .as_ref()
            .map(|s| s.as_os_str())
            .unwrap_or(std::ffi::OsStr::new(typ));
        let flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
        let r = mount(
            Some(src),
            &fd_path(target.as_raw_fd()),
            Some(typ),
            flags,
            (!data.is_empty()).then_some(data.as_str()),
        );
        match r {
            // sysfs can't be mounted without owning a network namespace: bind the host's, read-only.
            Err(nix::Error::EPERM) if typ == "sysfs" => {
                let fl = MsFlags::MS_BIND | MsFlags::MS_REC;
                mount(
                    Some("/sys"),
                    &fd_path(target.as_raw_fd()),
                    None::<&str>,
                    fl,
                    None::<&str>,
                )
                .map_err(merr("sysfs bind", dest))?;
                let t = fsutil::open_in_root(&self.root, dest, OFlag::O_PATH, Mode::empty())?;
                setattr(&t, true, attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC, 0)
                    .map_err(merr("sysfs read-only", dest))?;
            }
            // A mqueue mount fails without a new ipc namespace in a user namespace: bind the host's.
            Err(nix::Error::EPERM) if typ == "mqueue" && self.in_userns => {
                let fl = MsFlags::MS_BIND | MsFlags::MS_REC;
                mount(
                    Some("/dev/mqueue"),
                    &fd_path(target.as_raw_fd()),
                    None::<&str>,
                    fl,
                    None::<&str>,
                )
                .map_err(merr("mqueue bind", dest))?;
            }
            r => r.map_err(merr(typ, dest))?,
        }
        if typ == "proc" {
            self.check_proc(dest)?;
        }
        self.finish(dest, &opts)
    }

    /// CVE-2019-19921 / CVE-2023-27561: /proc or /sys given as a symlink could redirect
    /// the mount (and later writes) to a place the image chose.
    fn refuse_symlink(&self, dest: &Path) -> Result<()> {
        if cfg!(feature = "unsafe-no-symlink-check") {
            return Ok(());
        }
        let rel = fsutil::relative_in_root(dest);
        if let Some(parent) = rel.parent() {
            let dir = fsutil::mkdir_all_in_root(&self.root, parent, 0o755)?;
            let name = rel.file_name().unwrap_or_default();
            let c = CString::new(name.as_bytes()).map_err(|_| RootfsError::Refused("bad name".into()))?;
            let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
            // SAFETY: fstatat with a valid dirfd, a NUL-terminated name and a stat buffer.
            let r = unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
            if r == 0 {
                // SAFETY: fstatat succeeded, so st is initialised.
                let st = unsafe { st.assume_init() };
                if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                    return Err(RootfsError::Refused(format!(
                        "mount destination {} is a symlink in the rootfs; refusing to mount there",
                        dest.display()
                    )));
                }
                if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                    return Err(RootfsError::Refused(format!(
                        "mount destination {} is not a directory in the rootfs",
                        dest.display()
                    )));
                }
            }
        }
        Ok(())
    }

    fn check_proc(&self, dest: &Path) -> Result<()> {
        let fd = fsutil::open_in_root(&self.root, dest, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
        let st = nix::sys::statfs::fstatfs(&fd).map_err(merr("statfs", dest))?;
        if st.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
            return Err(RootfsError::Refused(format!(
                "{} is not procfs after mounting it",
                dest.display()
            )));
        }
        Ok(())
    }

    fn bind(&self, m: &Mount, bundle: &Path, opts: &Parsed) -> Result<()> {
        let dest = m.destination();
        let src = m
            .source()
            .as_ref()
            .ok_or_else(|| RootfsError::Refused(format!("bind mount on {} has no source", dest.display())))?;
        let src = if src.is_absolute() {
            src.clone()
        } else {
            bundle.join(src)
        };
        let src_fd = nix::fcntl::open(&src, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(merr(format!("bind source {}", src.display()), dest))?;
        let target = self.target_like(&src_fd, dest)?;
        let mut fl = MsFlags::MS_BIND;
        if opts.recursive_bind {
            fl |= MsFlags::MS_REC;
        }
        mount(
            Some(&fd_path(src_fd.as_raw_fd())),
            &fd_path(target.as_raw_fd()),
            None::<&str>,
            fl,
            None::<&str>,
        )
        .map_err(merr(format!("bind {}", src.display()), dest))?;
        self.finish(dest, opts)
    }

    /// The mount target at `dest` inside the rootfs: a directory if `source` is one, else a file.
    fn target_like(&self, source: &OwnedFd, dest: &Path) -> Result<OwnedFd> {
        let is_dir = nix::sys::stat::fstat(source)
            .map(|s| SFlag::from_bits_truncate(s.st_mode & libc::S_IFMT) == SFlag::S_IFDIR)
            .map_err(merr("stat mount source", dest))?;
        if is_dir {
            Ok(fsutil::mkdir_all_in_root(&self.root, dest, 0o755)?)
        } else {
            Ok(fsutil::create_file_in_root(&self.root, dest)?)
        }
    }

    /// Put a detached idmapped mount (from the runtime) at the mount's destination.
    fn attach_idmapped(&self, m: &Mount, mfd: &OwnedFd, opts: &Parsed) -> Result<()> {
        let dest = m.destination();
        let target = self.target_like(mfd, dest)?;
        move_mount(mfd, &target).map_err(merr("attach idmapped mount", dest))?;
        self.finish(dest, opts)
    }

    /// Remount flags of a bind, propagation, recursive attributes, on the mount now at `dest`.
    fn finish(&self, dest: &Path, opts: &Parsed) -> Result<()> {
        let fd = fsutil::open_in_root(&self.root, dest, OFlag::O_PATH, Mode::empty())?;
        if opts.needs_remount() {
            // Keep the flags the kernel locks in a user namespace (nosuid, nodev, ...).
            let locked = statvfs_flags(&fd);
            let fl = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | (opts.flags - MsFlags::MS_REC) | (locked - opts.cleared);
            mount(None::<&str>, &fd_path(fd.as_raw_fd()), None::<&str>, fl, None::<&str>)
                .map_err(merr("remount", dest))?;
        }
        for p in &opts.propagation {
            mount(None::<&str>, &fd_path(fd.as_raw_fd()), None::<&str>, *p, None::<&str>)
                .map_err(merr("propagation", dest))?;
        }
        if opts.rec_set != 0 || opts.rec_clear != 0 {
            setattr(&fd, true, opts.rec_set, opts.rec_clear).map_err(merr("recursive attributes", dest))?;
        }
        Ok(())
    }

    fn mount_cgroup(&self, dest: &Path, opts: &Parsed, cg: &CgroupMounts) -> Result<()> {
        let target = fsutil::mkdir_all_in_root(&self.root, dest, 0o755)?;
        let ro = opts.flags.contains(MsFlags::MS_RDONLY);
        let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if cg.unified {
            if cg.new_cgroupns {
                let fl = base | if ro { MsFlags::MS_RDONLY } else { MsFlags::empty() };
                mount(
                    Some("cgroup2"),
                    &fd_path(target.as_raw_fd()),
                    Some("cgroup2"),
                    fl,
                    None::<&str>,
                )
                .map_err(merr("cgroup2", dest))?;
            } else if let Some((_, host)) = cg.sources.first() {
                self.bind_host_dir(host, dest, ro)?;
            }
            return Ok(());
        }
        mount(
            Some("tmpfs"),
            &fd_path(target.as_raw_fd()),
            Some("tmpfs"),
            base,
            Some("mode=755"),
        )
        .map_err(merr("cgroup tmpfs", dest))?;
        for (subsys, host) in &cg.sources {
            if subsys.is_empty() {
                continue;
            }
            let d = dest.join(subsys);
            self.bind_host_dir(host, &d, ro)?;
            // Co-mounted controllers ("cpu,cpuacct") get a link per name, as on the host.
            if subsys.contains(',') {
                for part in subsys.split(',') {
                    let dir =
                        fsutil::open_in_root(&self.root, dest, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
                    let _ = nix::unistd::symlinkat(subsys.as_str(), dir.as_fd(), part);
                }
            }
        }
        if ro {
            let fd = fsutil::open_in_root(&self.root, dest, OFlag::O_PATH, Mode::empty())?;
            setattr(&fd, false, attr::RDONLY, 0).map_err(merr("cgroup read-only", dest))?;
        }
        Ok(())
    }

    fn bind_host_dir(&self, host: &Path, dest: &Path, ro: bool) -> Result<()> {
        let target = fsutil::mkdir_all_in_root(&self.root, dest, 0o755)?;
        mount(
            Some(host),
            &fd_path(target.as_raw_fd()),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(merr(format!("bind {}", host.display()), dest))?;
        let fd = fsutil::open_in_root(&self.root, dest, OFlag::O_PATH, Mode::empty())?;
        let mut set = attr::NOSUID | attr::NODEV | attr::NOEXEC;
        if ro {
            set |= attr::RDONLY;
        }
        setattr(&fd, true, set, 0).map_err(merr("cgroup bind attributes", dest))?;
        Ok(())
    }

    /// Step 3: device nodes (the defaults and linux.devices) and the /dev links.
    pub fn create_devices(&self, spec: &Spec) -> Result<()> {
        let mut devs = default_devices();
        if let Some(extra) = spec.linux().as_ref().and_then(|l| l.devices().as_ref()) {
            devs.extend(extra.iter().cloned());
        }
        for d in &devs {
            self.create_device(d)?;
        }
        let links = [
            ("/proc/self/fd", "/dev/fd"),
            ("/proc/self/fd/0", "/dev/stdin"),
            ("/proc/self/fd/1", "/dev/stdout"),
            ("/proc/self/fd/2", "/dev/stderr"),
        ];
        let dev = fsutil::mkdir_all_in_root(&self.root, Path::new("/dev"), 0o755)?;
        for (target, link) in links {
            let name = Path::new(link).file_name().unwrap_or_default();
            match nix::unistd::symlinkat(target, dev.as_fd(), name) {
                Ok(()) | Err(nix::Error::EEXIST) => {}
                Err(e) => return Err(merr("symlink", Path::new(link))(e)),
            }
        }
        // /dev/ptmx points at the container's own devpts instance when it has one.
        if fsutil::open_in_root(&self.root, Path::new("/dev/pts/ptmx"), OFlag::O_PATH, Mode::empty()).is_ok() {
            let _ = nix::unistd::unlinkat(&dev, "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir);
            nix::unistd::symlinkat("pts/ptmx", dev.as_fd(), "ptmx").map_err(merr("symlink", Path::new("/dev/ptmx")))?;
        }
        Ok(())
    }

    fn create_device(&self, d: &LinuxDevice) -> Result<()> {
        let path = d.path();
        let rel = fsutil::relative_in_root(path);
        let parent = fsutil::mkdir_all_in_root(&self.root, rel.parent().unwrap_or(Path::new("")), 0o755)?;
        let name = rel.file_name().unwrap_or_default();
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(RootfsError::Refused(format!(
                    "device {}: type 'a' is not a node",
                    path.display()
                )))
            }
        };
        let mode = Mode::from_bits_truncate(d.file_mode().unwrap_or(0o666));
        let dev = nix::sys::stat::makedev(d.major() as u64, d.minor() as u64);
        let _ = nix::unistd::unlinkat(&parent, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        let r = nix::sys::stat::mknodat(&parent, name, kind, mode, dev);
        match r {
            Ok(()) => {
                // mknod is filtered by the umask; set the mode and owner asked for.
                let fd = fsutil::open_in_root(&self.root, path, OFlag::O_PATH | OFlag::O_NOFOLLOW, Mode::empty())?;
                let p = fd_path(fd.as_raw_fd());
                let _ = nix::sys::stat::fchmodat(
                    nix::fcntl::AT_FDCWD,
                    &p,
                    mode,
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                );
                if d.uid().is_some() || d.gid().is_some() {
                    nix::unistd::chown(&p, d.uid().map(Into::into), d.gid().map(Into::into))
                        .map_err(merr("chown device", path))?;
                }
            }
            // No mknod in a user namespace: bind the host's node instead.
            Err(nix::Error::EPERM) if self.in_userns => {
                let target = fsutil::create_file_in_root(&self.root, path)?;
                mount(
                    Some(path),
                    &fd_path(target.as_raw_fd()),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(merr("bind device", path))?;
            }
            Err(e) => return Err(merr("mknod", path)(e)),
        }
        Ok(())
    }

    /// Bind the console pty over /dev/console.
    pub fn bind_console(&self, slave: &Path) -> Result<()> {
        let target = fsutil::create_file_in_root(&self.root, Path::new("/dev/console"))?;
        mount(
            Some(slave),
            &fd_path(target.as_raw_fd()),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(merr("bind console", Path::new("/dev/console")))?;
        Ok(())
    }

    /// Step 4: make the rootfs `/`. pivot_root(".", ".") stacks the old root on top of
    /// the new one, so it can be detached without a temporary directory.
    pub fn pivot(&self, no_pivot: bool) -> Result<()> {
        let newroot = nix::fcntl::open(
            &self.path,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(merr("open rootfs", &self.path))?;
        nix::unistd::fchdir(&newroot).map_err(merr("chdir", &self.path))?;
        if no_pivot {
            mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                .map_err(merr("move rootfs", &self.path))?;
            nix::unistd::chroot(".").map_err(merr("chroot", &self.path))?;
        } else {
            let oldroot = nix::fcntl::open(
                "/",
                OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(merr("open /", Path::new("/")))?;
            nix::unistd::pivot_root(".", ".").map_err(merr("pivot_root", &self.path))?;
            nix::unistd::fchdir(&oldroot).map_err(merr("chdir old root", Path::new("/")))?;
            mount(
                None::<&str>,
                ".",
                None::<&str>,
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(merr("old root propagation", Path::new("/")))?;
            umount2(".", MntFlags::MNT_DETACH).map_err(merr("detach old root", Path::new("/")))?;
        }
        nix::unistd::chdir("/").map_err(merr("chdir", Path::new("/")))?;
        Ok(())
    }
}

/// After pivot: apply rootfsPropagation when it was shared (could not be set before).
pub fn apply_root_propagation(spec: &Spec) -> Result<()> {
    let p = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(mountopts::propagation);
    if let Some(p) = p.filter(|p| p.contains(MsFlags::MS_SHARED)) {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>).map_err(merr("rootfs propagation", Path::new("/")))?;
    }
    Ok(())
}

/// maskedPaths: files get the (verified) /dev/null bound over them, directories an empty
/// read-only tmpfs. CVE-2025-31133: /dev/null is checked to be the real null device,
/// and bound from the fd that was checked.
pub fn mask_paths(paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(merr("open", Path::new("/")))?;
    let null = fsutil::open_in_root(
        &root,
        Path::new("/dev/null"),
        OFlag::O_PATH | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )?;
    let st = nix::sys::stat::fstat(&null).map_err(merr("stat", Path::new("/dev/null")))?;
    let genuine = st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == nix::sys::stat::makedev(1, 3);
    if !genuine && !cfg!(feature = "unsafe-no-dev-null-check") {
        return Err(RootfsError::Refused(
            "/dev/null in the container is not the null device (1:3); refusing to use it to mask paths".into(),
        ));
    }
    for p in paths {
        let path = Path::new(p);
        let fd = match fsutil::open_in_root(&root, path, OFlag::O_PATH | OFlag::O_NOFOLLOW, Mode::empty()) {
            Ok(fd) => fd,
            Err(FsError::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let st = nix::sys::stat::fstat(&fd).map_err(merr("stat", path))?;
        let target = fd_path(fd.as_raw_fd());
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0k,nr_inodes=1"),
            )
            .map_err(merr("mask", path))?;
        } else if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            continue;
        } else {
            mount(
                Some(&fd_path(null.as_raw_fd())),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(merr("mask", path))?;
        }
    }
    Ok(())
}

/// readonlyPaths: bind each over itself, recursively read-only.
pub fn readonly_paths(paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(merr("open", Path::new("/")))?;
    for p in paths {
        let path = Path::new(p);
        let fd = match fsutil::open_in_root(&root, path, OFlag::O_PATH | OFlag::O_NOFOLLOW, Mode::empty()) {
            Ok(fd) => fd,
            Err(FsError::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let target = fd_path(fd.as_raw_fd());
        mount(
            Some(&target),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(merr("read-only bind", path))?;
        let fd = fsutil::open_in_root(&root, path, OFlag::O_PATH | OFlag::O_NOFOLLOW, Mode::empty())?;
        setattr(&fd, true, attr::RDONLY, 0).map_err(merr("read-only", path))?;
    }
    Ok(())
}

/// root.readonly: the root mount (not those below it) becomes read-only.
pub fn readonly_root() -> Result<()> {
    let fd = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(merr("open", Path::new("/")))?;
    setattr(&fd, false, attr::RDONLY, 0).map_err(merr("read-only root", Path::new("/")))?;
    Ok(())
}

/// mount_setattr(2) on the mount at `fd`.
pub fn setattr(fd: &impl AsRawFd, recursive: bool, set: u64, clear: u64) -> nix::Result<()> {
    setattr_userns(fd, recursive, set, clear, None)
}

/// mount_setattr(2), with the user namespace of an idmapping (MOUNT_ATTR_IDMAP).
pub fn setattr_userns(
    fd: &impl AsRawFd,
    recursive: bool,
    set: u64,
    clear: u64,
    userns: Option<i32>,
) -> nix::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let a = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: userns.map_or(0, |f| f as u64),
    };
    const AT_RECURSIVE: libc::c_int = 0x8000;
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: mount_setattr reads `a` (size given) and the empty path string; fd is ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &a as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}

/// For spec mount N, a detached idmapped mount fd (see `Rootfs::mount_all`).
pub type IdmapSource<'a> = &'a mut dyn FnMut(usize) -> std::result::Result<OwnedFd, String>;

/// move_mount(2) of the detached mount `from` onto the directory or file `to` (both fds).
fn move_mount(from: &OwnedFd, to: &OwnedFd) -> nix::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: move_mount between two fds we own, with empty paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}

/// open_tree(OPEN_TREE_CLONE) of `src`: a detached copy of that mount (tree).
pub fn clone_tree(src: &Path, recursive: bool) -> nix::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    let c = CString::new(src.as_os_str().as_bytes()).map_err(|_| nix::Error::EINVAL)?;
    // SAFETY: open_tree with a NUL-terminated path; returns a new fd we own.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if r < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: r is a new fd the kernel returned to us.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(r as i32) })
}

/// Mount flags currently on the mount of `fd` that a bind remount must keep.
fn statvfs_flags(fd: &impl AsFd) -> MsFlags {
    use nix::sys::statvfs::FsFlags;
    let Ok(st) = nix::sys::statvfs::fstatvfs(fd) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (a, b) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(a) {
            out |= b;
        }
    }
    out
}

/// null, zero, full, random, urandom, tty: what every container gets.
pub fn default_devices() -> Vec<LinuxDevice> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(p, ma, mi)| {
        let mut d = LinuxDevice::default();
        d.set_path(PathBuf::from(p));
        d.set_typ(LinuxDeviceType::C);
        d.set_major(ma);
        d.set_minor(mi);
        d.set_file_mode(Some(0o666));
        d.set_uid(Some(0));
        d.set_gid(Some(0));
        d
    })
    .collect()
}
