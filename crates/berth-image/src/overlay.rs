//! Reading overlayfs layer directories directly (mounted or not): a container's changes
//! as Docker reports them, its upper directory as a Docker layer tar, and the merged view
//! of all its layers as one flat tar.
//!
//! The layers are read the way overlayfs combines them: a 0/0 character device is a
//! whiteout (the name is deleted), a directory with `trusted.overlay.opaque=y` hides
//! everything beneath it in lower layers, and a non-directory hides lower directories of
//! the same name. Redirected directories and metacopy files (`trusted.overlay.redirect`,
//! `trusted.overlay.metacopy`) keep their data elsewhere; they are refused, since
//! prepare_rootfs's mounts never enable them.
//!
//! Safety: a running container can rename and replace anything in its upper directory,
//! so every path is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from the
//! layer's root, files are opened with `O_NOFOLLOW | O_NONBLOCK` and their type checked on
//! the descriptor, and xattrs are read through the parent's descriptor. A swapped-in
//! symlink therefore fails the operation instead of reaching outside the layer.

use std::collections::{BTreeSet, HashMap};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, major, minor, FileStat, Mode};
use tar::EntryType;

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
const WHITEOUT_PREFIX: &str = ".wh.";
const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";

#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} uses overlayfs {feature}, whose data is not in the layer directory (mount without redirect_dir and metacopy)")]
    Unsupported { path: PathBuf, feature: &'static str },
    #[error("{path} changed while it was being read (the container should be paused)")]
    Changed { path: PathBuf },
    #[error("writing the tar stream at {entry}: {source}")]
    Write {
        entry: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, OverlayError>;

/// What happened to a path, numbered as the Docker API's `Kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

impl ChangeKind {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

impl serde::Serialize for ChangeKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u8(*self as u8)
    }
}

/// One entry of `GET /containers/{id}/changes`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Kind")]
    pub kind: ChangeKind,
}

fn io_err(op: &'static str, path: PathBuf) -> impl FnOnce(Errno) -> OverlayError {
    move |e| OverlayError::Io {
        op,
        path,
        source: e.into(),
    }
}

/// What a layer holds at a path.
enum Node {
    Absent,
    Whiteout(FileStat),
    Dir(FileStat),
    Other(FileStat),
}

/// One layer directory, opened once; paths inside are relative to it.
struct Layer {
    root: OwnedFd,
    path: PathBuf,
}

impl Layer {
    fn open(path: &Path) -> Result<Self> {
        let root = File::open(path).map_err(|source| OverlayError::Io {
            op: "open layer directory",
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Layer {
            root: root.into(),
            path: path.to_path_buf(),
        })
    }

    fn shown(&self, rel: &Path) -> PathBuf {
        self.path.join(rel)
    }

    /// Open `rel` as a directory, refusing symlinks anywhere on the way.
    fn open_dir(&self, rel: &Path) -> nix::Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        openat2(&self.root, rel, how)
    }

    /// The parent directory of `rel` (which must not be the root) and `rel`'s name.
    fn parent<'a>(&self, rel: &'a Path) -> Result<Option<(OwnedFd, &'a OsStr)>> {
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Err(io_err("look up", self.shown(rel))(Errno::EINVAL));
        };
        match self.open_dir(parent) {
            Ok(fd) => Ok(Some((fd, name))),
            Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(io_err("open directory", self.shown(parent))(e)),
        }
    }

    fn node(&self, rel: &Path) -> Result<Node> {
        let Some((dir, name)) = self.parent(rel)? else {
            return Ok(Node::Absent);
        };
        let st = match fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(Node::Absent),
            Err(e) => return Err(io_err("stat", self.shown(rel))(e)),
        };
        Ok(match st.st_mode & libc::S_IFMT {
            libc::S_IFCHR if st.st_rdev == 0 => Node::Whiteout(st),
            libc::S_IFDIR => Node::Dir(st),
            _ => Node::Other(st),
        })
    }

    /// Names in directory `rel`, sorted (so tars and change lists are reproducible).
    fn list(&self, rel: &Path) -> Result<Vec<OsString>> {
        let fd = self.open_dir(rel).map_err(io_err("open directory", self.shown(rel)))?;
        let mut dir = nix::dir::Dir::from_fd(fd).map_err(io_err("read directory", self.shown(rel)))?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(io_err("read directory", self.shown(rel)))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsString::from_vec(name.to_vec()));
            }
        }
        names.sort();
        Ok(names)
    }

    /// The xattrs of `rel` (not following a final symlink) other than overlayfs's own.
    /// Redirect and metacopy markers are refused (see the module docs).
    fn xattrs(&self, rel: &Path) -> Result<Vec<(CString, Vec<u8>)>> {
        let Some((dir, name)) = self.parent(rel)? else {
            return Err(io_err("read xattrs of", self.shown(rel))(Errno::ENOENT));
        };
        let path = proc_path(&dir, name);
        let err = |source| OverlayError::Io {
            op: "read xattrs of",
            path: self.shown(rel),
            source,
        };
        let names = xattr_names(&path).map_err(err)?;
        let mut out = Vec::new();
        for key in names {
            let bytes = key.to_bytes();
            if let Some(kind) = bytes.strip_prefix(OVERLAY_XATTR_PREFIX) {
                let feature = match kind {
                    b"redirect" => "redirect_dir",
                    b"metacopy" => "metacopy",
                    _ => continue,
                };
                return Err(OverlayError::Unsupported {
                    path: self.shown(rel),
                    feature,
                });
            }
            // A name removed since the listing simply has no value any more.
            if let Some(value) = xattr_get(&path, &key).map_err(err)? {
                out.push((key, value));
            }
        }
        Ok(out)
    }

    fn is_opaque(&self, rel: &Path) -> Result<bool> {
        let Some((dir, name)) = self.parent(rel)? else {
            return Ok(false);
        };
        let key = CString::new(OPAQUE_XATTR).unwrap_or_default();
        let value = xattr_get(&proc_path(&dir, name), &key).map_err(|source| OverlayError::Io {
            op: "read opaque xattr of",
            path: self.shown(rel),
            source,
        })?;
        Ok(value.as_deref() == Some(b"y"))
    }
}

/// `/proc/self/fd/<dir>/<name>`: resolves `name` in `dir` without re-walking the path.
fn proc_path(dir: &OwnedFd, name: &OsStr) -> CString {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name.as_bytes());
    // Directory entry names never contain NUL.
    CString::new(p).unwrap_or_default()
}

fn xattr_names(path: &CStr) -> io::Result<Vec<CString>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `path` is NUL-terminated; the buffer pointer and length describe one
        // live, writable allocation.
        let n = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(e),
        }
    }
    Ok(buf
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .filter_map(|n| CString::new(n).ok())
        .collect())
}

fn xattr_get(path: &CStr, key: &CStr) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `path` and `key` are NUL-terminated; the buffer pointer and length
        // describe one live, writable allocation.
        let n = unsafe { libc::lgetxattr(path.as_ptr(), key.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Some(libc::ENODATA | libc::ENOTSUP) => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// What a stack of layers shows at a path.
enum Lookup {
    Absent,
    /// A non-directory, from this layer.
    File(usize, FileStat),
    /// A directory merged from these layers (top-most first; its metadata is the first's).
    Dir(Vec<usize>, FileStat),
}

/// Layers stacked as overlayfs mounts them, top-most first.
struct Stack {
    layers: Vec<Layer>,
}

impl Stack {
    fn open(dirs: &[&Path]) -> Result<Self> {
        let layers = dirs.iter().map(|d| Layer::open(d)).collect::<Result<_>>()?;
        Ok(Stack { layers })
    }

    fn all(&self) -> Vec<usize> {
        (0..self.layers.len()).collect()
    }

    /// What `rel` is, given the layers its parent directory is merged from.
    fn lookup(&self, parent_sources: &[usize], rel: &Path) -> Result<Lookup> {
        let mut sources = Vec::new();
        let mut top = None;
        for &i in parent_sources {
            match self.layers[i].node(rel)? {
                Node::Absent => continue,
                Node::Whiteout(_) => break,
                Node::Other(st) if sources.is_empty() => return Ok(Lookup::File(i, st)),
                // A lower non-directory under a directory is hidden, with all below it.
                Node::Other(_) => break,
                Node::Dir(st) => {
                    top.get_or_insert(st);
                    sources.push(i);
                    if self.layers[i].is_opaque(rel)? {
                        break;
                    }
                }
            }
        }
        Ok(match top {
            Some(st) => Lookup::Dir(sources, st),
            None => Lookup::Absent,
        })
    }

    /// Every name any of the layers has in merged directory `rel` (some may be
    /// whiteouts or hidden: look each up).
    fn names(&self, sources: &[usize], rel: &Path) -> Result<BTreeSet<OsString>> {
        let mut out = BTreeSet::new();
        for &i in sources {
            out.extend(self.layers[i].list(rel)?);
        }
        Ok(out)
    }
}

/// A container's changes: `upper` against the merged `lowers` (top-most first), as
/// Docker reports them, sorted by path. Whiteouts are deletions; the lower children of
/// an opaque directory that the upper does not have again are deletions; anything the
/// lowers also have is modified (so are the directories above every change, which
/// overlayfs copies up); the rest is added.
pub fn changes(lowers: &[&Path], upper: &Path) -> Result<Vec<Change>> {
    let upper = Layer::open(upper)?;
    let lowers = Stack::open(lowers)?;
    let mut out = Vec::new();
    diff_dir(&upper, &lowers, Path::new(""), &lowers.all(), false, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn change(kind: ChangeKind, rel: &Path) -> Change {
    Change {
        path: format!("/{}", rel.to_string_lossy()),
        kind,
    }
}

/// `hidden`: the lowers' content at `rel` is hidden (an opaque directory here or above).
fn diff_dir(
    upper: &Layer,
    lowers: &Stack,
    rel: &Path,
    lower_sources: &[usize],
    hidden: bool,
    out: &mut Vec<Change>,
) -> Result<()> {
    let names = upper.list(rel)?;
    if hidden {
        let present: BTreeSet<&OsString> = names.iter().collect();
        for name in lowers.names(lower_sources, rel)? {
            let child = rel.join(&name);
            if !present.contains(&name) && !matches!(lowers.lookup(lower_sources, &child)?, Lookup::Absent) {
                out.push(change(ChangeKind::Deleted, &child));
            }
        }
    }
    for name in names {
        let child = rel.join(&name);
        let node = upper.node(&child)?;
        if let Node::Whiteout(_) = node {
            out.push(change(ChangeKind::Deleted, &child));
            continue;
        }
        if let Node::Absent = node {
            // Removed since the listing: nothing to report.
            continue;
        }
        upper.xattrs(&child)?;
        let lower = lowers.lookup(lower_sources, &child)?;
        let kind = match lower {
            Lookup::Absent => ChangeKind::Added,
            _ => ChangeKind::Modified,
        };
        out.push(change(kind, &child));
        if let Node::Dir(_) = node {
            let sources = match lower {
                Lookup::Dir(s, _) => s,
                _ => Vec::new(),
            };
            let opaque = upper.is_opaque(&child)?;
            diff_dir(upper, lowers, &child, &sources, hidden || opaque, out)?;
        }
    }
    Ok(())
}

/// Tar entries written by this module: numeric ownership, whole-second mtimes, xattrs
/// as PAX `SCHILY.xattr.*` records, hard links to the first path of an inode.
struct TarOut<W: Write> {
    tar: tar::Builder<W>,
    links: HashMap<(u64, u64), PathBuf>,
    entries: u64,
}

impl<W: Write> TarOut<W> {
    fn new(out: W) -> Self {
        TarOut {
            tar: tar::Builder::new(out),
            links: HashMap::new(),
            entries: 0,
        }
    }

    fn finish(self) -> Result<(W, u64)> {
        let entries = self.entries;
        let w = self.tar.into_inner().map_err(|source| OverlayError::Write {
            entry: "<end of archive>".into(),
            source,
        })?;
        Ok((w, entries))
    }

    fn write_err(entry: &Path) -> impl FnOnce(io::Error) -> OverlayError + '_ {
        move |source| OverlayError::Write {
            entry: entry.to_path_buf(),
            source,
        }
    }

    /// PAX records for xattrs go in an extended header just before the entry.
    fn pax(&mut self, rel: &Path, xattrs: &[(CString, Vec<u8>)]) -> Result<()> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let mut data = Vec::new();
        for (key, value) in xattrs {
            let mut record = b"SCHILY.xattr.".to_vec();
            record.extend_from_slice(key.to_bytes());
            record.push(b'=');
            record.extend_from_slice(value);
            record.push(b'\n');
            // "<len> <record>", where len counts its own digits too.
            let mut len = record.len() + 2;
            while format!("{len} ").len() + record.len() != len {
                len = format!("{len} ").len() + record.len();
            }
            data.extend_from_slice(format!("{len} ").as_bytes());
            data.extend_from_slice(&record);
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_path("PaxHeader").map_err(Self::write_err(rel))?;
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        self.tar.append(&h, data.as_slice()).map_err(Self::write_err(rel))
    }

    fn header(st: &FileStat, kind: EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(st.st_uid.into());
        h.set_gid(st.st_gid.into());
        // Whole seconds, no atime/ctime, as Docker writes layers: reproducible diffIDs.
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        h
    }

    fn empty(&mut self, rel: &Path, h: &mut tar::Header) -> Result<()> {
        self.entries += 1;
        self.tar.append_data(h, rel, io::empty()).map_err(Self::write_err(rel))
    }

    /// Append `rel` from `layer`, whose lstat was `st`; sockets are skipped as Docker
    /// does (they are meaningless outside the running container).
    fn entry(&mut self, layer: &Layer, rel: &Path, st: &FileStat) -> Result<()> {
        let fmt = st.st_mode & libc::S_IFMT;
        if fmt == libc::S_IFSOCK {
            return Ok(());
        }
        let xattrs = layer.xattrs(rel)?;
        if fmt != libc::S_IFDIR && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                let mut h = Self::header(st, EntryType::Link);
                self.entries += 1;
                return self.tar.append_link(&mut h, rel, &first).map_err(Self::write_err(rel));
            }
            self.links.insert(key, rel.to_path_buf());
        }
        self.pax(rel, &xattrs)?;
        match fmt {
            libc::S_IFDIR => self.empty(rel, &mut Self::header(st, EntryType::Directory)),
            libc::S_IFREG => self.file(layer, rel, st),
            libc::S_IFLNK => {
                let Some((dir, name)) = layer.parent(rel)? else {
                    return Err(OverlayError::Changed { path: layer.shown(rel) });
                };
                let target = readlinkat(&dir, name).map_err(io_err("read link", layer.shown(rel)))?;
                let mut h = Self::header(st, EntryType::Symlink);
                self.entries += 1;
                self.tar.append_link(&mut h, rel, target).map_err(Self::write_err(rel))
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                let kind = match fmt {
                    libc::S_IFCHR => EntryType::Char,
                    libc::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut h = Self::header(st, kind);
                if fmt != libc::S_IFIFO {
                    let dev = st.st_rdev;
                    h.set_device_major(major(dev) as u32).map_err(Self::write_err(rel))?;
                    h.set_device_minor(minor(dev) as u32).map_err(Self::write_err(rel))?;
                }
                self.empty(rel, &mut h)
            }
            _ => Ok(()),
        }
    }

    fn file(&mut self, layer: &Layer, rel: &Path, st: &FileStat) -> Result<()> {
        let Some((dir, name)) = layer.parent(rel)? else {
            return Err(OverlayError::Changed { path: layer.shown(rel) });
        };
        // O_NONBLOCK: if a fifo was swapped in, opening it must not wait for a writer.
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let fd = openat(&dir, name, flags, Mode::empty()).map_err(io_err("open", layer.shown(rel)))?;
        let now = fstat(&fd).map_err(io_err("stat", layer.shown(rel)))?;
        if now.st_mode & libc::S_IFMT != libc::S_IFREG || now.st_ino != st.st_ino {
            return Err(OverlayError::Changed { path: layer.shown(rel) });
        }
        let size = now.st_size as u64;
        let mut h = Self::header(&now, EntryType::Regular);
        h.set_size(size);
        let data = Exact {
            inner: File::from(fd).take(size),
            left: size,
        };
        self.entries += 1;
        self.tar
            .append_data(&mut h, rel, data)
            .map_err(|source| match source.kind() {
                io::ErrorKind::UnexpectedEof => OverlayError::Changed { path: layer.shown(rel) },
                _ => OverlayError::Write {
                    entry: rel.to_path_buf(),
                    source,
                },
            })
    }
}

/// Exactly `left` bytes or an error: the tar header already promised that many, and a
/// file shrinking under us must not yield a corrupt archive.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Write `upper` as a Docker layer tar to `out`: whiteouts become `.wh.<name>` files and
/// opaque directories get a `.wh..wh..opq` entry. Returns `out` and the number of
/// entries (0: the upper has no changes).
pub fn write_layer<W: Write>(upper: &Path, out: W) -> Result<(W, u64)> {
    let upper = Layer::open(upper)?;
    let mut tar = TarOut::new(out);
    layer_dir(&upper, Path::new(""), &mut tar)?;
    tar.finish()
}

fn layer_dir<W: Write>(upper: &Layer, rel: &Path, tar: &mut TarOut<W>) -> Result<()> {
    for name in upper.list(rel)? {
        let child = rel.join(&name);
        match upper.node(&child)? {
            Node::Absent => {}
            Node::Whiteout(st) => {
                let mut wh = OsString::from(WHITEOUT_PREFIX);
                wh.push(&name);
                // Docker keeps the whiteout's owner and time, with a plain file's mode.
                let mut h = TarOut::<W>::header(&st, EntryType::Regular);
                h.set_mode(0o600);
                tar.empty(&rel.join(wh), &mut h)?;
            }
            Node::Dir(st) => {
                tar.entry(upper, &child, &st)?;
                if upper.is_opaque(&child)? {
                    // Docker gives the marker the directory's owner and permissions.
                    let mut h = TarOut::<W>::header(&st, EntryType::Regular);
                    h.set_mode(st.st_mode & 0o777);
                    tar.empty(&child.join(WHITEOUT_OPAQUE), &mut h)?;
                }
                layer_dir(upper, &child, tar)?;
            }
            Node::Other(st) => tar.entry(upper, &child, &st)?,
        }
    }
    Ok(())
}

/// Write the merged view of `layers` (top-most first: a container's upper, then its
/// image's snapshots) as one tar without whiteouts, as `docker export` does.
pub fn write_merged<W: Write>(layers: &[&Path], out: W) -> Result<W> {
    let stack = Stack::open(layers)?;
    let mut tar = TarOut::new(out);
    merged_dir(&stack, Path::new(""), &stack.all(), &mut tar)?;
    Ok(tar.finish()?.0)
}

fn merged_dir<W: Write>(stack: &Stack, rel: &Path, sources: &[usize], tar: &mut TarOut<W>) -> Result<()> {
    for name in stack.names(sources, rel)? {
        let child = rel.join(&name);
        match stack.lookup(sources, &child)? {
            Lookup::Absent => {}
            Lookup::File(i, st) => tar.entry(&stack.layers[i], &child, &st)?,
            Lookup::Dir(child_sources, st) => {
                tar.entry(&stack.layers[child_sources[0]], &child, &st)?;
                merged_dir(stack, &child, &child_sources, tar)?;
            }
        }
    }
    Ok(())
}
