//! Apply one image layer (a tar stream, plain, gzip or zstd) to a new directory as an
//! overlayfs-ready snapshot, and compute the layer's diffID while streaming.
//!
//! Safety: every entry is created relative to a directory descriptor obtained with
//! `openat2(RESOLVE_BENEATH)`, so neither `..`, an absolute path, nor a symlink planted by
//! an earlier entry can place anything outside the snapshot; such entries are rejected.
//! The layer is extracted into a hidden sibling directory that is renamed to the target
//! only on success, so a failed unpack leaves nothing behind.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fchmodat, fstatat, futimens, makedev, mkdirat, mknodat, utimensat};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

use crate::digest::{Algorithm, Digest, HashingReader};

const WHITEOUT_PREFIX: &str = ".wh.";
const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
// Other `.wh..wh.` names are aufs bookkeeping (e.g. hard-link dirs) and carry no content.
const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {entry:?} rejected: {reason}")]
    Unsafe { entry: PathBuf, reason: &'static str },
    #[error("layer entry {entry:?}: {op}: {source}")]
    Entry {
        entry: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {entry:?}: unsupported tar entry type {kind:?}")]
    UnsupportedType { entry: PathBuf, kind: EntryType },
    #[error("reading the layer stream: {0}")]
    Read(#[source] io::Error),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unsupported layer media type {0:?}")]
    MediaType(String),
    #[error("layer media type {media_type:?} says {declared:?} but the stream is {found:?}")]
    CompressionMismatch {
        media_type: String,
        declared: Compression,
        found: Compression,
    },
}

pub type Result<T> = std::result::Result<T, UnpackError>;

fn io_at<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> UnpackError + 'a {
    move |source| UnpackError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What a layer's bytes are compressed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression an OCI or Docker layer media type declares.
    pub fn from_media_type(media_type: &str) -> Result<Self> {
        Ok(match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Compression::Zstd,
            other => return Err(UnpackError::MediaType(other.to_string())),
        })
    }

    /// The compression the first bytes of a stream show (plain tar has no leading magic).
    pub fn from_magic(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// What unpacking a layer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Length of the uncompressed tar stream.
    pub size: u64,
}

static WORK_SEQ: AtomicU64 = AtomicU64::new(0);

/// Unpack `layer` into `target`, which must not exist yet (its parent must). The
/// compression is detected from magic bytes; a `media_type`, when given, must agree.
/// On error nothing is left at `target` or beside it.
pub fn unpack_layer(layer: impl Read, media_type: Option<&str>, target: &Path) -> Result<Unpacked> {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = target.file_name().ok_or_else(|| UnpackError::Io {
        op: "use as unpack target",
        path: target.to_path_buf(),
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })?;
    let seq = WORK_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut work_name = OsStr::new(".").to_os_string();
    work_name.push(name);
    work_name.push(format!(".unpack-{}-{seq}", std::process::id()));
    let work = parent.join(work_name);
    std::fs::create_dir(&work).map_err(io_at("create directory", &work))?;

    let result = unpack_into(layer, media_type, &work).and_then(|unpacked| {
        if target.exists() {
            return Err(io_at("unpack to", target)(io::Error::from(
                io::ErrorKind::AlreadyExists,
            )));
        }
        std::fs::rename(&work, target).map_err(io_at("rename into place", target))?;
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io_at("fsync directory", parent))?;
        Ok(unpacked)
    });
    if result.is_err() {
        // std's remove_dir_all does not follow symlinks, so a hostile tree cannot redirect it.
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

fn unpack_into(layer: impl Read, media_type: Option<&str>, work: &Path) -> Result<Unpacked> {
    let declared = media_type.map(Compression::from_media_type).transpose()?;
    let mut layer = layer;
    let mut head = Vec::with_capacity(4);
    (&mut layer).take(4).read_to_end(&mut head).map_err(UnpackError::Read)?;
    let found = Compression::from_magic(&head);
    if let (Some(mt), Some(declared)) = (media_type, declared) {
        // A media type saying "uncompressed" over a compressed stream is tolerated, as
        // Docker decompresses by magic anyway; any other disagreement means corruption.
        if declared != found && declared != Compression::None {
            return Err(UnpackError::CompressionMismatch {
                media_type: mt.to_string(),
                declared,
                found,
            });
        }
    }
    let raw = io::Cursor::new(head).chain(layer);
    let decompressed: Box<dyn Read> = match found {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw).map_err(UnpackError::Read)?),
    };

    let root = open_root(work)?;
    let mut archive = tar::Archive::new(HashingReader::new(decompressed, Algorithm::Sha256));
    let mut dir_times = Vec::new();
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let entry = entry.map_err(UnpackError::Read)?;
        apply_entry(&root, entry, &mut dir_times)?;
    }
    // Directory mtimes last, deepest first: creating their children changed them.
    for (path, mtime) in dir_times.iter().rev() {
        let fd = open_beneath(&root, path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW)
            .map_err(entry_err(path, "open directory"))?;
        let t = TimeSpec::new(*mtime, 0);
        futimens(&fd, &t, &t).map_err(entry_err(path, "set times"))?;
    }
    // The diffID covers the whole tar stream, including padding after the end marker.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(UnpackError::Read)?;
    let (diff_id, size, _) = rest.finish();
    // One syncfs for the whole layer instead of an fsync per file.
    nix::unistd::syncfs(&root).map_err(|e| io_at("syncfs", work)(e.into()))?;
    Ok(Unpacked { diff_id, size })
}

fn open_root(work: &Path) -> Result<OwnedFd> {
    let fd = File::open(work).map_err(io_at("open", work))?;
    Ok(fd.into())
}

fn entry_err<'a>(entry: &'a Path, op: &'static str) -> impl FnOnce(Errno) -> UnpackError + 'a {
    move |e| match e {
        Errno::EXDEV | Errno::ELOOP => UnpackError::Unsafe {
            entry: entry.to_path_buf(),
            reason: "its path resolves outside the layer (through a symlink)",
        },
        e => UnpackError::Entry {
            entry: entry.to_path_buf(),
            op,
            source: e.into(),
        },
    }
}

/// `..` and absolute paths are refused outright; `./` and repeated slashes are dropped.
fn clean_path(raw: &Path) -> std::result::Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("its path contains '..'"),
            Component::RootDir | Component::Prefix(_) => return Err("its path is absolute"),
        }
    }
    Ok(out)
}

fn open_beneath(root: &OwnedFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, rel, how)
}

/// Open directory `rel`, creating missing components (0755, root-owned, as Docker does).
fn ensure_dir(root: &OwnedFd, rel: &Path, entry: &Path) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    match open_beneath(root, rel, flags) {
        Err(Errno::ENOENT) => {}
        other => return other.map_err(entry_err(entry, "open parent directory")),
    }
    let mut cur = open_beneath(root, Path::new(""), flags).map_err(entry_err(entry, "open layer root"))?;
    let mut prefix = PathBuf::new();
    for comp in rel.components() {
        prefix.push(comp);
        match mkdirat(&cur, comp.as_os_str(), Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(entry_err(entry, "create parent directory")(e)),
        }
        cur = open_beneath(root, &prefix, flags).map_err(entry_err(entry, "open parent directory"))?;
    }
    Ok(cur)
}

/// Ownership, permissions, times and xattrs of one entry.
struct Meta {
    uid: u32,
    gid: u32,
    mode: Mode,
    mtime: i64,
    xattrs: Vec<(CString, Vec<u8>)>,
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, path: &Path) -> Result<Meta> {
    let h = entry.header();
    let bad = |op| move |e: io::Error| entry_err_io(path, op, e);
    let mut meta = Meta {
        uid: h.uid().map_err(bad("read uid"))? as u32,
        gid: h.gid().map_err(bad("read gid"))? as u32,
        mode: Mode::from_bits_truncate(h.mode().map_err(bad("read mode"))? & 0o7777),
        mtime: h.mtime().map_err(bad("read mtime"))? as i64,
        xattrs: Vec::new(),
    };
    if let Some(exts) = entry.pax_extensions().map_err(bad("read PAX header"))? {
        for ext in exts {
            let ext = ext.map_err(bad("read PAX header"))?;
            let key = ext.key_bytes();
            let value = ext.value_bytes();
            let num = || {
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.split('.').next()?.parse::<i64>().ok())
            };
            if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX.as_bytes()) {
                let name = CString::new(name).map_err(|_| UnpackError::Unsafe {
                    entry: path.to_path_buf(),
                    reason: "an xattr name contains NUL",
                })?;
                meta.xattrs.push((name, value.to_vec()));
            } else if key == b"uid" {
                meta.uid = num().unwrap_or(meta.uid as i64) as u32;
            } else if key == b"gid" {
                meta.gid = num().unwrap_or(meta.gid as i64) as u32;
            } else if key == b"mtime" {
                meta.mtime = num().unwrap_or(meta.mtime);
            }
        }
    }
    Ok(meta)
}

fn entry_err_io(entry: &Path, op: &'static str, source: io::Error) -> UnpackError {
    UnpackError::Entry {
        entry: entry.to_path_buf(),
        op,
        source,
    }
}

fn apply_entry<R: Read>(
    root: &OwnedFd,
    mut entry: tar::Entry<'_, R>,
    dir_times: &mut Vec<(PathBuf, i64)>,
) -> Result<()> {
    let raw = entry.path().map_err(UnpackError::Read)?.into_owned();
    let kind = entry.header().entry_type();
    if matches!(kind, EntryType::XGlobalHeader) {
        return Ok(());
    }
    let path = clean_path(&raw).map_err(|reason| UnpackError::Unsafe {
        entry: raw.clone(),
        reason,
    })?;
    let (Some(name), Some(parent_rel)) = (path.file_name().map(OsStr::to_owned), path.parent()) else {
        // The layer root itself ("./"): the snapshot directory stands for it.
        return Ok(());
    };
    let name_str = name.as_bytes();
    let parent = ensure_dir(root, parent_rel, &raw)?;
    let meta = read_meta(&mut entry, &raw)?;

    if name_str == WHITEOUT_OPAQUE.as_bytes() {
        return set_xattr_fd(parent.as_fd(), &cstring(OPAQUE_XATTR), b"y")
            .map_err(|e| entry_err_io(&raw, "set opaque xattr", e));
    }
    if name_str.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
        return Ok(());
    }
    if let Some(hidden) = name_str.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        // overlayfs whiteout: a 0/0 character device with the hidden name.
        let hidden = OsStr::from_bytes(hidden);
        remove_existing(&parent, hidden, false, &raw)?;
        mknodat(&parent, hidden, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
            .map_err(entry_err(&raw, "create whiteout"))?;
        return fchownat(
            &parent,
            hidden,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(entry_err(&raw, "chown whiteout"));
    }

    let is_dir = kind == EntryType::Directory;
    remove_existing(&parent, &name, is_dir, &raw)?;
    match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = openat(&parent, name.as_os_str(), flags, Mode::from_bits_truncate(0o600))
                .map_err(entry_err(&raw, "create file"))?;
            let mut file = File::from(fd);
            io::copy(&mut entry, &mut file).map_err(|e| entry_err_io(&raw, "write file", e))?;
            set_meta_fd(file.as_fd(), &meta, true, &raw)
        }
        EntryType::Directory => {
            match mkdirat(&parent, name.as_os_str(), Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(entry_err(&raw, "create directory")(e)),
            }
            let fd = open_beneath(root, &path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW)
                .map_err(entry_err(&raw, "open directory"))?;
            set_meta_fd(fd.as_fd(), &meta, false, &raw)?;
            dir_times.push((path, meta.mtime));
            Ok(())
        }
        EntryType::Symlink => {
            let target = link_target(&entry, &raw)?;
            symlinkat(target.as_path(), &parent, name.as_os_str()).map_err(entry_err(&raw, "create symlink"))?;
            set_meta_at(&parent, &name, &meta, false, &raw)
        }
        EntryType::Link => {
            let target = link_target(&entry, &raw)?;
            let target = clean_path(&target).map_err(|_| UnpackError::Unsafe {
                entry: raw.clone(),
                reason: "its hard link target leaves the layer",
            })?;
            let (Some(tname), Some(tparent)) = (target.file_name(), target.parent()) else {
                return Err(UnpackError::Unsafe {
                    entry: raw,
                    reason: "its hard link target is the layer root",
                });
            };
            let tdir = open_beneath(root, tparent, OFlag::O_PATH | OFlag::O_DIRECTORY).map_err(|e| match e {
                Errno::EXDEV | Errno::ELOOP => UnpackError::Unsafe {
                    entry: raw.clone(),
                    reason: "its hard link target resolves outside the layer",
                },
                e => entry_err_io(&raw, "find hard link target", e.into()),
            })?;
            // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
            linkat(&tdir, tname, &parent, name.as_os_str(), AtFlags::empty())
                .map_err(entry_err(&raw, "create hard link"))
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let sflag = match kind {
                EntryType::Char => SFlag::S_IFCHR,
                EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            let h = entry.header();
            let major = h.device_major().ok().flatten().unwrap_or(0);
            let minor = h.device_minor().ok().flatten().unwrap_or(0);
            mknodat(
                &parent,
                name.as_os_str(),
                sflag,
                Mode::empty(),
                makedev(major.into(), minor.into()),
            )
            .map_err(entry_err(&raw, "create device node"))?;
            set_meta_at(&parent, &name, &meta, true, &raw)
        }
        other => Err(UnpackError::UnsupportedType {
            entry: raw,
            kind: other,
        }),
    }
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>, raw: &Path) -> Result<PathBuf> {
    match entry.link_name() {
        Ok(Some(t)) => Ok(t.into_owned()),
        Ok(None) => Err(entry_err_io(raw, "read link target", io::ErrorKind::InvalidData.into())),
        Err(e) => Err(entry_err_io(raw, "read link target", e)),
    }
}

/// Make room for a new entry: a later entry with the same name replaces the earlier one,
/// except that a directory stays (and merges) when the new entry is a directory too.
fn remove_existing(parent: &OwnedFd, name: &OsStr, new_is_dir: bool, raw: &Path) -> Result<()> {
    let st = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(entry_err(raw, "stat existing")(e)),
    };
    let existing_is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    match (existing_is_dir, new_is_dir) {
        (true, true) => Ok(()),
        (true, false) => Err(UnpackError::Unsafe {
            entry: raw.to_path_buf(),
            reason: "it would replace a directory of the same layer",
        }),
        (false, _) => unlinkat(parent, name, UnlinkatFlags::NoRemoveDir).map_err(entry_err(raw, "replace existing")),
    }
}

fn set_meta_fd(fd: BorrowedFd<'_>, meta: &Meta, times: bool, raw: &Path) -> Result<()> {
    fchown(fd, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid))).map_err(entry_err(raw, "chown"))?;
    // After chown, which clears setuid/setgid.
    fchmod(fd, meta.mode).map_err(entry_err(raw, "chmod"))?;
    for (key, value) in &meta.xattrs {
        set_xattr_fd(fd, key, value).map_err(|e| entry_err_io(raw, "set xattr", e))?;
    }
    if times {
        let t = TimeSpec::new(meta.mtime, 0);
        futimens(fd, &t, &t).map_err(entry_err(raw, "set times"))?;
    }
    Ok(())
}

/// Metadata for entries that cannot be opened as files (symlinks, devices, fifos).
fn set_meta_at(parent: &OwnedFd, name: &OsStr, meta: &Meta, chmod: bool, raw: &Path) -> Result<()> {
    let (uid, gid) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
    fchownat(parent, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(entry_err(raw, "chown"))?;
    if chmod {
        // Only for nodes just created by mknodat, never symlinks, so following is moot.
        fchmodat(parent, name, meta.mode, FchmodatFlags::FollowSymlink).map_err(entry_err(raw, "chmod"))?;
    }
    if !meta.xattrs.is_empty() {
        // lsetxattr through the parent's descriptor: no path re-resolution from the root.
        let mut p = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
        p.extend_from_slice(name.as_bytes());
        let p = CString::new(p).map_err(|_| entry_err_io(raw, "set xattr", io::ErrorKind::InvalidInput.into()))?;
        for (key, value) in &meta.xattrs {
            // SAFETY: `p` and `key` are NUL-terminated and live across the call; `value`
            // is a live slice whose pointer and length are passed together.
            let r = unsafe { libc::lsetxattr(p.as_ptr(), key.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
            if r < 0 {
                return Err(entry_err_io(raw, "set xattr", io::Error::last_os_error()));
            }
        }
    }
    let t = TimeSpec::new(meta.mtime, 0);
    utimensat(parent, name, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(entry_err(raw, "set times"))
}

fn set_xattr_fd(fd: BorrowedFd<'_>, key: &CString, value: &[u8]) -> io::Result<()> {
    // SAFETY: `fd` is borrowed, so open for the whole call; `key` is NUL-terminated; the
    // value pointer and length come from one live slice.
    let r = unsafe { libc::fsetxattr(fd.as_raw_fd(), key.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn cstring(s: &'static str) -> CString {
    // Only used with constants, which contain no NUL.
    CString::new(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_and_magic() {
        assert_eq!(
            Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip").ok(),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd").ok(),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar").ok(),
            Some(Compression::None)
        );
        assert!(Compression::from_media_type("text/plain").is_err());
        assert_eq!(Compression::from_magic(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(Compression::from_magic(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(Compression::from_magic(b"etc/"), Compression::None);
        assert_eq!(Compression::from_magic(b""), Compression::None);
    }

    #[test]
    fn clean_path_rules() {
        assert_eq!(clean_path(Path::new("./a//b/./c/")), Ok(PathBuf::from("a/b/c")));
        assert!(clean_path(Path::new("a/../../b")).is_err());
        assert!(clean_path(Path::new("/etc/passwd")).is_err());
        assert_eq!(clean_path(Path::new("./")), Ok(PathBuf::new()));
    }
}
