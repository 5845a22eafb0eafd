//! File helpers for cgroupfs. Every error names the file (and the value, for writes).
//!
//! Control files are never created: a missing file means a missing controller or kernel
//! feature, and callers decide whether that is an error.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{Error, Result};

pub(crate) fn io_err(op: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn invalid(field: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn is_errno(e: &io::Error, errno: i32) -> bool {
    e.raw_os_error() == Some(errno)
}

/// Reads a whole control file.
pub(crate) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| io_err("read", path, e))
}

/// Like [`read`], but a missing file is `None` (optional kernel features).
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path, e)),
    }
}

/// Writes one value, replacing what a regular file held (cgroupfs ignores O_TRUNC, as runc relies on).
/// Returns the raw error so callers can react to EINVAL/EBUSY/ENOENT.
pub(crate) fn try_write(path: &Path, value: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).truncate(true).open(path)?;
    f.write_all(value.as_bytes())
}

pub(crate) fn write_err(path: &Path, value: &str, source: io::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    }
}

pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    try_write(path, value).map_err(|e| write_err(path, value, e))
}

/// Writes one line to a file the kernel treats as a command list (devices.allow, io.max, ...).
/// O_APPEND keeps every line in a regular file (the fake trees of the tests); cgroupfs parses each
/// write on its own either way.
pub(crate) fn append(path: &Path, line: &str) -> Result<()> {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(buf.as_bytes()))
        .map_err(|e| write_err(path, line, e))
}

/// Parses an unsigned control value; "max" reads as `u64::MAX`.
pub(crate) fn parse_u64(path: &Path, s: &str) -> Result<u64> {
    let t = s.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse::<u64>().map_err(|e| {
        io_err(
            "parse",
            path,
            io::Error::new(io::ErrorKind::InvalidData, format!("{t:?}: {e}")),
        )
    })
}

pub(crate) fn read_u64(path: &Path) -> Result<u64> {
    parse_u64(path, &read(path)?)
}

pub(crate) fn read_u64_opt(path: &Path) -> Result<Option<u64>> {
    match read_opt(path)? {
        Some(s) => parse_u64(path, &s).map(Some),
        None => Ok(None),
    }
}

/// "key value" lines (memory.stat, cpu.stat, memory.events, ...). Lines that do not parse are skipped:
/// newer kernels add keys, and a stats reader should not break on them.
pub(crate) fn flat_keyed(s: &str) -> BTreeMap<String, u64> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse::<u64>().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

pub(crate) fn read_keyed_opt(path: &Path) -> Result<Option<BTreeMap<String, u64>>> {
    Ok(read_opt(path)?.map(|s| flat_keyed(&s)))
}

/// `mkdir -p`, recording the directories it made (top-down) so a failed create can undo them.
pub(crate) fn mkdir_p(dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.exists() {
            break;
        }
        missing.push(d);
        cur = d.parent();
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => created.push(d.to_path_buf()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("mkdir", d, e)),
        }
    }
    Ok(())
}

/// Best-effort removal of directories made by [`mkdir_p`], deepest first (used on a failed create).
pub(crate) fn undo_mkdirs(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = fs::remove_dir(d);
    }
}

/// How long a destroy keeps retrying EBUSY, in total over all hierarchies (50 x 10ms).
pub(crate) const RMDIR_PATIENCE: Duration = Duration::from_millis(500);
const RMDIR_WAIT: Duration = Duration::from_millis(10);

/// rmdir of one cgroup. EBUSY is retried until `deadline` because a cgroup stays busy for a
/// moment after its last process exited; past it, one try. ENOENT counts as done.
pub(crate) fn rmdir_retry(dir: &Path, deadline: Instant) -> Result<()> {
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if is_errno(&e, libc::EBUSY) && Instant::now() < deadline => sleep(RMDIR_WAIT),
            Err(e) => return Err(io_err("rmdir", dir, e)),
        }
    }
}

/// Child directories (child cgroups) of `dir`; a missing `dir` has none.
pub(crate) fn child_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("readdir", dir, e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| io_err("readdir", dir, e))?;
        let ft = entry.file_type().map_err(|e| io_err("stat", &entry.path(), e))?;
        if ft.is_dir() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Removes a cgroup and all its child cgroups, leaf first.
pub(crate) fn remove_tree(dir: &Path, deadline: Instant) -> Result<()> {
    for child in child_dirs(dir)? {
        remove_tree(&child, deadline)?;
    }
    rmdir_retry(dir, deadline)
}

/// Pids listed in `dir/cgroup.procs` and, if `recursive`, in every child cgroup's.
pub(crate) fn procs(dir: &Path, recursive: bool, out: &mut Vec<i32>) -> Result<()> {
    let path = dir.join("cgroup.procs");
    match read_opt(&path)? {
        Some(s) => {
            for tok in s.split_whitespace() {
                let pid = tok.parse::<i32>().map_err(|e| {
                    io_err(
                        "parse",
                        &path,
                        io::Error::new(io::ErrorKind::InvalidData, format!("{tok:?}: {e}")),
                    )
                })?;
                out.push(pid);
            }
        }
        // The cgroup is gone (or was never created): it holds no process.
        None if !dir.exists() => return Ok(()),
        None => return Err(io_err("read", &path, io::ErrorKind::NotFound.into())),
    }
    if recursive {
        for child in child_dirs(dir)? {
            procs(&child, true, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_skips_garbage() {
        let m = flat_keyed("a 1\nb x\n\nc 3 extra\n");
        assert_eq!(m.get("a"), Some(&1));
        assert_eq!(m.get("b"), None);
        assert_eq!(m.get("c"), Some(&3));
    }

    #[test]
    fn parse_u64_max_and_errors() {
        let p = Path::new("/x/pids.max");
        assert_eq!(parse_u64(p, "max\n").unwrap(), u64::MAX);
        assert_eq!(parse_u64(p, " 42\n").unwrap(), 42);
        let e = parse_u64(p, "nope").unwrap_err().to_string();
        assert!(e.contains("/x/pids.max") && e.contains("nope"), "{e}");
    }

    #[test]
    fn mkdir_p_records_and_undoes() {
        let t = tempfile::tempdir().unwrap();
        let mut created = Vec::new();
        mkdir_p(&t.path().join("a/b/c"), &mut created).unwrap();
        assert_eq!(created.len(), 3);
        undo_mkdirs(&created);
        assert!(!t.path().join("a").exists());
    }

    #[test]
    fn rmdir_of_missing_dir_is_success() {
        let t = tempfile::tempdir().unwrap();
        let deadline = Instant::now() + RMDIR_PATIENCE;
        rmdir_retry(&t.path().join("gone"), deadline).unwrap();
        remove_tree(&t.path().join("gone"), deadline).unwrap();
    }
}
