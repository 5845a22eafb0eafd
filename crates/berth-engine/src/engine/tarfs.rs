//! Tar streams of a container's files (`docker cp`), read and written through descriptors
//! only. The container's processes can rename and replace anything while we work, so:
//! paths given by the client are resolved with `openat2(RESOLVE_IN_ROOT)` against the
//! container's root (a symlink to `/` means the container's `/`); below a resolved
//! directory every step is one name opened relative to its parent's descriptor with
//! `O_NOFOLLOW`, so a symlink swapped in is archived or replaced as a symlink, never
//! followed; metadata is set on descriptors or with `AT_SYMLINK_NOFOLLOW`.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use berth_runtime::fsutil::{self, FsError};
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fchmodat, fstat, fstatat, futimens, makedev, mkdirat, mknodat, utimensat};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::{EntryType, Header};

#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Docker's wording for entries that would land outside the extraction directory.
    #[error("{0}")]
    Breakout(String),
    /// A directory replaced by a non-directory or the reverse, refused by the client.
    #[error("{0}")]
    Overwrite(String),
    #[error("archive entry {entry:?}: unsupported tar entry type {kind:?}")]
    Unsupported { entry: PathBuf, kind: EntryType },
}

type Result<T> = std::result::Result<T, TarError>;

fn errno<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> TarError + 'a {
    move |e| TarError::Io {
        op,
        path: path.to_path_buf(),
        source: e.into(),
    }
}

fn ioerr<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> TarError + 'a {
    move |source| TarError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Go's `os.FileMode` bits for a `st_mode` (what `X-Docker-Container-Path-Stat` carries).
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match st_mode & libc::S_IFMT {
        libc::S_IFDIR => 1 << 31,
        libc::S_IFLNK => 1 << 27,
        libc::S_IFBLK => 1 << 26,
        libc::S_IFCHR => (1 << 26) | (1 << 21),
        libc::S_IFIFO => 1 << 25,
        libc::S_IFSOCK => 1 << 24,
        _ => 0,
    };
    if st_mode & libc::S_ISUID != 0 {
        m |= 1 << 23;
    }
    if st_mode & libc::S_ISGID != 0 {
        m |= 1 << 22;
    }
    if st_mode & libc::S_ISVTX != 0 {
        m |= 1 << 20;
    }
    m
}

fn is_dir(st: &FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// What to archive: a directory (its descriptor) or one entry of a directory.
pub enum Source {
    Dir(OwnedFd),
    Entry { parent: OwnedFd, name: OsString },
}

/// Write `src` as a tar stream named the way Docker rebases it: a directory's entries
/// as `<rebase>/...` (`./...` for ".", `/...` for "/"), a single entry as `rebase`.
pub fn write_tar<W: Write>(src: &Source, rebase: &str, out: W) -> Result<W> {
    let mut b = tar::Builder::new(out);
    match src {
        Source::Dir(fd) => {
            let st = fstat(fd).map_err(errno("stat", Path::new(rebase)))?;
            let prefix = if rebase == "/" { "" } else { rebase };
            append_dir(&mut b, fd, &st, format!("{prefix}/").as_bytes())?;
        }
        Source::Entry { parent, name } => {
            let st = fstatat(parent, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(errno("stat", Path::new(name)))?;
            append_entry(&mut b, parent.as_fd(), name, &st, rebase.as_bytes())?;
        }
    }
    b.into_inner().map_err(ioerr("finish tar stream", Path::new(rebase)))
}

fn header_for(st: &FileStat, kind: EntryType, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid.into());
    h.set_gid(st.st_gid.into());
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(size);
    h
}

/// Append with `name` written as is: the tar crate would drop the leading `./` that
/// Docker's clients rely on when they rebase entries. Names and link targets longer than
/// the header's fields go in GNU long-name entries first.
fn append_named<W: Write>(
    b: &mut tar::Builder<W>,
    mut h: Header,
    name: &[u8],
    link: Option<&[u8]>,
    data: impl Read,
) -> io::Result<()> {
    for (value, kind) in [(Some(name), EntryType::GNULongName), (link, EntryType::GNULongLink)] {
        let Some(value) = value.filter(|v| v.len() > 100) else {
            continue;
        };
        let mut long = Header::new_gnu();
        long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        long.set_entry_type(kind);
        long.set_mode(0o644);
        long.set_size(value.len() as u64 + 1);
        long.set_cksum();
        b.append(&long, value.chain(&[0u8][..]))?;
    }
    let old = h.as_old_mut();
    let n = name.len().min(100);
    old.name = [0; 100];
    old.name[..n].copy_from_slice(&name[..n]);
    if let Some(l) = link {
        let n = l.len().min(100);
        old.linkname = [0; 100];
        old.linkname[..n].copy_from_slice(&l[..n]);
    }
    h.set_cksum();
    b.append(&h, data)
}

fn append_dir<W: Write>(b: &mut tar::Builder<W>, fd: &OwnedFd, st: &FileStat, name: &[u8]) -> Result<()> {
    let path = Path::new(OsStr::from_bytes(name));
    append_named(b, header_for(st, EntryType::Directory, 0), name, None, io::empty())
        .map_err(ioerr("write tar entry", path))?;
    let dup = fd.try_clone().map_err(ioerr("duplicate descriptor of", path))?;
    let mut dir = nix::dir::Dir::from_fd(dup).map_err(errno("read directory", path))?;
    let mut names: Vec<OsString> = dir
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    names.sort();
    for child in names {
        let st = match fstatat(fd, child.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Removed while we were listing: as if it had never been there.
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(errno("stat", &path.join(&child))(e)),
        };
        let mut child_name = name.to_vec();
        child_name.extend_from_slice(child.as_bytes());
        append_entry(b, fd.as_fd(), &child, &st, &child_name)?;
    }
    Ok(())
}

fn append_entry<W: Write>(
    b: &mut tar::Builder<W>,
    parent: BorrowedFd<'_>,
    name: &OsStr,
    st: &FileStat,
    tar_name: &[u8],
) -> Result<()> {
    let path = Path::new(OsStr::from_bytes(tar_name));
    let write = ioerr("write tar entry", path);
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = openat(parent, name, flags, Mode::empty()).map_err(errno("open directory", path))?;
            let mut dir_name = tar_name.to_vec();
            dir_name.push(b'/');
            append_dir(b, &fd, st, &dir_name)
        }
        libc::S_IFREG => {
            let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
            let file = File::from(openat(parent, name, flags, Mode::empty()).map_err(errno("open", path))?);
            let st = fstat(&file).map_err(errno("stat", path))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                // Replaced by something else since it was listed: skip it rather than block on a fifo.
                return Ok(());
            }
            let size = st.st_size.max(0) as u64;
            // Exactly `size` bytes even if the file grows or shrinks while it is read.
            let data = (&file).take(size).chain(io::repeat(0)).take(size);
            append_named(b, header_for(&st, EntryType::Regular, size), tar_name, None, data).map_err(write)
        }
        libc::S_IFLNK => {
            let target = readlinkat(parent, name).map_err(errno("read symlink", path))?;
            let h = header_for(st, EntryType::Symlink, 0);
            append_named(b, h, tar_name, Some(target.as_bytes()), io::empty()).map_err(write)
        }
        kind @ (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) => {
            let t = match kind {
                libc::S_IFCHR => EntryType::Char,
                libc::S_IFBLK => EntryType::Block,
                _ => EntryType::Fifo,
            };
            let mut h = header_for(st, t, 0);
            if t != EntryType::Fifo {
                let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
                h.set_device_major(major).map_err(ioerr("set device number of", path))?;
                h.set_device_minor(minor).map_err(ioerr("set device number of", path))?;
            }
            append_named(b, h, tar_name, None, io::empty()).map_err(write)
        }
        // Sockets have no content to copy (Docker skips them too).
        _ => Ok(()),
    }
}

/// How an archive is extracted into a container (`PUT /containers/{id}/archive`).
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Own every entry by this uid/gid instead of the archive's (`copyUIDGID`).
    pub chown: Option<(u32, u32)>,
}

/// `path` relative to the extraction directory, `..` allowed only while it stays inside.
fn inside(raw: &Path) -> std::result::Result<PathBuf, ()> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir if !out.pop() => return Err(()),
            _ => {}
        }
    }
    Ok(out)
}

/// Extract `input` into `dest` (a directory inside the container whose root is `root`,
/// with its symlinks already resolved: see [`path_in_root`]). Every entry's parent is resolved in the container's root, so symlinks in the
/// container (or made by earlier entries) never lead outside it.
pub fn extract(root: &OwnedFd, dest: &Path, input: impl Read, opts: &ExtractOptions) -> Result<()> {
    let mut archive = tar::Archive::new(input);
    let mut dir_times = Vec::new();
    for entry in archive.entries().map_err(ioerr("read archive for", dest))? {
        let mut entry = entry.map_err(ioerr("read archive for", dest))?;
        let raw = PathBuf::from(OsStr::from_bytes(&entry.path_bytes()));
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue;
        }
        let rel = inside(&raw)
            .map_err(|_| TarError::Breakout(format!("{:?} is outside of {:?}", raw.display(), dest.display())))?;
        let target = dest.join(&rel);
        let h = entry.header();
        let bad = |e| ioerr("read header of", &raw)(e);
        let (uid, gid) = match opts.chown {
            Some(ids) => ids,
            None => (h.uid().map_err(bad)? as u32, h.gid().map_err(bad)? as u32),
        };
        let meta = Meta {
            uid,
            gid,
            mode: Mode::from_bits_truncate(h.mode().map_err(bad)? & 0o7777),
            mtime: h.mtime().map_err(bad)? as i64,
        };
        let (Some(name), Some(parent_path)) = (target.file_name().map(OsStr::to_owned), target.parent()) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            // "./": the extraction directory itself gets the entry's metadata (as in Docker).
            if kind == EntryType::Directory {
                let fd = open_dir_in_root(root, &target)?;
                meta.apply_fd(fd.as_fd(), &target)?;
                dir_times.push((target, meta.mtime));
            }
            continue;
        }
        let parent = fsutil::mkdir_all_in_root(root, parent_path, 0o755)?;
        make_room(&parent, &name, kind == EntryType::Directory, &target, opts)?;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let fd = openat(&parent, name.as_os_str(), flags, Mode::from_bits_truncate(0o600))
                    .map_err(errno("create", &target))?;
                let mut file = File::from(fd);
                io::copy(&mut entry, &mut file).map_err(ioerr("write", &target))?;
                meta.apply_fd(file.as_fd(), &target)?;
                set_times(&parent, &name, meta.mtime, &target)?;
            }
            EntryType::Directory => {
                match mkdirat(&parent, name.as_os_str(), Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(errno("create directory", &target)(e)),
                }
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let fd = openat(&parent, name.as_os_str(), flags, Mode::empty()).map_err(errno("open", &target))?;
                meta.apply_fd(fd.as_fd(), &target)?;
                dir_times.push((target, meta.mtime));
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| ioerr("read link target of", &raw)(io::ErrorKind::InvalidData.into()))?;
                let link = PathBuf::from(OsStr::from_bytes(&link));
                // Docker refuses relative targets climbing out of the extraction directory.
                if inside(&rel.parent().unwrap_or(Path::new("")).join(&link)).is_err() {
                    return Err(TarError::Breakout(format!(
                        "invalid symlink {:?} -> {:?}",
                        target.display(),
                        link.display()
                    )));
                }
                symlinkat(link.as_path(), &parent, name.as_os_str()).map_err(errno("create symlink", &target))?;
                fchownat(
                    &parent,
                    name.as_os_str(),
                    Some(Uid::from_raw(meta.uid)),
                    Some(Gid::from_raw(meta.gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(errno("chown", &target))?;
                set_times(&parent, &name, meta.mtime, &target)?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| ioerr("read link target of", &raw)(io::ErrorKind::InvalidData.into()))?;
                let link_rel = inside(Path::new(OsStr::from_bytes(&link))).map_err(|_| {
                    TarError::Breakout(format!("invalid hardlink {:?} -> {:?}", target.display(), link))
                })?;
                let linked = dest.join(link_rel);
                let (Some(lname), Some(lparent)) = (linked.file_name(), linked.parent()) else {
                    return Err(TarError::Breakout(format!("invalid hardlink {:?}", target.display())));
                };
                let ldir = fsutil::open_in_root(root, lparent, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
                // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
                linkat(&ldir, lname, &parent, name.as_os_str(), AtFlags::empty())
                    .map_err(errno("create hard link", &target))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let sflag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let dev = makedev(major.into(), minor.into());
                mknodat(&parent, name.as_os_str(), sflag, Mode::empty(), dev).map_err(errno("create node", &target))?;
                // Through an O_PATH descriptor of the node itself: never a swapped-in symlink.
                let fd = openat(
                    &parent,
                    name.as_os_str(),
                    OFlag::O_PATH | OFlag::O_NOFOLLOW,
                    Mode::empty(),
                )
                .map_err(errno("open", &target))?;
                fchownat(
                    &parent,
                    name.as_os_str(),
                    Some(Uid::from_raw(meta.uid)),
                    Some(Gid::from_raw(meta.gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(errno("chown", &target))?;
                fchmodat(
                    nix::fcntl::AT_FDCWD,
                    &fsutil::fd_path(fd.as_raw_fd()),
                    meta.mode,
                    FchmodatFlags::FollowSymlink,
                )
                .map_err(errno("chmod", &target))?;
                set_times(&parent, &name, meta.mtime, &target)?;
            }
            other => {
                return Err(TarError::Unsupported {
                    entry: raw,
                    kind: other,
                })
            }
        }
    }
    // Last, as creating entries inside a directory changes its mtime.
    for (path, mtime) in dir_times.iter().rev() {
        let fd = open_dir_in_root(root, path)?;
        let t = TimeSpec::new(*mtime, 0);
        futimens(&fd, &t, &t).map_err(errno("set times of", path))?;
    }
    Ok(())
}

/// Where `fd` is, as a path inside the container whose root is `root` (symlinks resolved).
pub fn path_in_root(root: &OwnedFd, fd: &OwnedFd) -> Option<PathBuf> {
    let root_path = std::fs::read_link(fsutil::fd_path(root.as_raw_fd())).ok()?;
    let path = std::fs::read_link(fsutil::fd_path(fd.as_raw_fd())).ok()?;
    Some(Path::new("/").join(path.strip_prefix(&root_path).ok()?))
}

fn open_dir_in_root(root: &OwnedFd, path: &Path) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
    Ok(fsutil::open_in_root(root, path, flags, Mode::empty())?)
}

struct Meta {
    uid: u32,
    gid: u32,
    mode: Mode,
    mtime: i64,
}

impl Meta {
    fn apply_fd(&self, fd: BorrowedFd<'_>, path: &Path) -> Result<()> {
        fchown(fd, Some(Uid::from_raw(self.uid)), Some(Gid::from_raw(self.gid))).map_err(errno("chown", path))?;
        // After chown, which clears setuid/setgid.
        fchmod(fd, self.mode).map_err(errno("chmod", path))
    }
}

fn set_times(parent: &OwnedFd, name: &OsStr, mtime: i64, path: &Path) -> Result<()> {
    let t = TimeSpec::new(mtime, 0);
    utimensat(parent, name, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(errno("set times of", path))
}

/// Clear the way for a new entry as Docker does: a directory stays (and merges) when the
/// new entry is a directory too; anything else is replaced, unless the client asked not
/// to swap a directory for a non-directory or the reverse.
fn make_room(parent: &OwnedFd, name: &OsStr, new_is_dir: bool, path: &Path, opts: &ExtractOptions) -> Result<()> {
    let st = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(errno("stat", path)(e)),
    };
    let p = path.display();
    match (is_dir(&st), new_is_dir) {
        (true, true) => Ok(()),
        (true, false) if opts.no_overwrite_dir_non_dir => Err(TarError::Overwrite(format!(
            "cannot overwrite directory {p:?} with non-directory {p:?}"
        ))),
        (false, true) if opts.no_overwrite_dir_non_dir => Err(TarError::Overwrite(format!(
            "cannot overwrite non-directory {p:?} with directory {p:?}"
        ))),
        (true, false) => remove_tree(parent, name, path),
        (false, _) => unlinkat(parent, name, UnlinkatFlags::NoRemoveDir).map_err(errno("replace", path)),
    }
}

/// `rm -r` below a directory descriptor, never following a symlink.
fn remove_tree(parent: &OwnedFd, name: &OsStr, path: &Path) -> Result<()> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(parent, name, flags, Mode::empty()).map_err(errno("open", path))?;
    let mut dir = nix::dir::Dir::from_fd(fd.try_clone().map_err(ioerr("duplicate descriptor of", path))?)
        .map_err(errno("read directory", path))?;
    let names: Vec<OsString> = dir
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| OsString::from_vec(e.file_name().to_bytes().to_vec()))
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for n in names {
        let child = path.join(&n);
        match fstatat(&fd, n.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if is_dir(&st) => remove_tree(&fd, &n, &child)?,
            Ok(_) => unlinkat(&fd, n.as_os_str(), UnlinkatFlags::NoRemoveDir).map_err(errno("remove", &child))?,
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(errno("stat", &child)(e)),
        }
    }
    unlinkat(parent, name, UnlinkatFlags::RemoveDir).map_err(errno("remove", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_modes_as_go_has_them() {
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
        assert_eq!(go_file_mode(libc::S_IFREG | 0o4755), (1 << 23) | 0o755);
        assert_eq!(go_file_mode(libc::S_IFCHR | 0o666), (1 << 26) | (1 << 21) | 0o666);
    }

    #[test]
    fn entries_stay_inside() {
        assert_eq!(inside(Path::new("./a/../b")), Ok(PathBuf::from("b")));
        assert_eq!(inside(Path::new("/abs/x")), Ok(PathBuf::from("abs/x")));
        assert!(inside(Path::new("../x")).is_err());
        assert!(inside(Path::new("a/../../x")).is_err());
    }

    /// Round trip through a root holding a symlink to `/`: extraction through it lands in
    /// the root, not on the host (positive control: the plain entry lands where named).
    #[test]
    fn extract_resolves_symlinks_in_the_root() {
        let root_dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", root_dir.path().join("up")).unwrap();
        std::fs::create_dir(root_dir.path().join("src")).unwrap();
        std::fs::write(root_dir.path().join("src/f"), "data").unwrap();
        let root: OwnedFd = File::open(root_dir.path()).unwrap().into();
        let src = fsutil::open_in_root(
            &root,
            Path::new("/src"),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let tar = write_tar(&Source::Dir(src), "copy", Vec::new()).unwrap();
        let host_marker = format!("/tmp/berth-tarfs-{}", std::process::id());
        extract(
            &root,
            Path::new(&format!("/up{host_marker}")),
            &tar[..],
            &ExtractOptions::default(),
        )
        .unwrap();
        assert!(!Path::new(&host_marker).exists(), "extraction escaped the root");
        let landed = root_dir.path().join(host_marker.trim_start_matches('/')).join("copy/f");
        assert_eq!(std::fs::read_to_string(landed).unwrap(), "data");
        extract(&root, Path::new("/plain"), &tar[..], &ExtractOptions::default()).unwrap();
        assert_eq!(
            std::fs::read_to_string(root_dir.path().join("plain/copy/f")).unwrap(),
            "data"
        );
    }
}
