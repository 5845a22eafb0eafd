//! A container's files: cp (tar archives both ways), export, diff, commit.

use std::io::{IsTerminal, Read, Write};
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use super::Ctx;
use crate::api::{query_escape, Query};
use crate::cli::{CommitArgs, CpArgs, ExportArgs, One};
use crate::error::{Error, Result};
use crate::format::{human_size, println, write_to};
use crate::http::Body;
use crate::reference::Ref;

/// `container:path` (a container path) or a local path (`/x`, `./x`, `x` without a colon).
fn split_cp(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

/// `X-Docker-Container-Path-Stat`: base64 JSON {name, size, mode, mtime, linkTarget}.
fn path_stat(r: &crate::http::Response) -> Option<Value> {
    let h = r.header("X-Docker-Container-Path-Stat")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(h.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(h.trim()))
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

const MODE_DIR: u64 = 1 << 31;

/// A tar entry path stays inside the destination.
fn safe_rel(p: &Path) -> bool {
    p.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

pub fn cp(ctx: &Ctx, a: CpArgs) -> Result<()> {
    match (split_cp(&a.src), split_cp(&a.dest)) {
        ((Some(c), src), (None, dest)) => cp_out(ctx, &a, c, src, dest),
        ((None, src), (Some(c), dest)) => cp_in(ctx, &a, src, c, dest),
        ((Some(_), _), (Some(_), _)) => Err(Error::usage("copying between containers is not supported")),
        _ => Err(Error::usage("must specify at least one container source")),
    }
}

fn cp_out(ctx: &Ctx, a: &CpArgs, container: &str, src: &str, dest: &str) -> Result<()> {
    let path = format!(
        "/containers/{}/archive?path={}",
        query_escape(container),
        query_escape(src)
    );
    let mut r = ctx.api.request("GET", &path, Body::Empty, &[])?;
    if dest == "-" {
        let mut out = std::io::stdout().lock();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = r
                .read(&mut buf)
                .map_err(|e| Error::msg(format!("read {container}:{src}: {e}")))?;
            if n == 0 {
                return Ok(());
            }
            write_to(&mut out, &buf[..n])?;
        }
    }
    let stat = path_stat(&r).unwrap_or(Value::Null);
    let src_name = stat["name"].as_str().unwrap_or("").to_string();
    let src_is_dir = stat["mode"].as_u64().is_some_and(|m| m & MODE_DIR != 0);
    let dest_path = Path::new(dest);
    let contents_only = src.ends_with("/.");
    // Into an existing directory under the source's name; otherwise as the destination.
    let (base, rename): (PathBuf, Option<String>) = if dest_path.is_dir() {
        (dest_path.to_path_buf(), contents_only.then(String::new))
    } else {
        if src_is_dir && dest_path.exists() {
            return Err(Error::msg(format!(
                "cannot copy directory {container}:{src} to file {dest}"
            )));
        }
        if dest.ends_with('/') {
            return Err(Error::msg(format!("destination directory {dest} does not exist")));
        }
        let parent = dest_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = dest_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (parent.to_path_buf(), Some(name))
    };
    // Docker reports the size of the archive copied, not of the files in it.
    let mut counted = CountingReader(&mut r, 0);
    let mut ar = tar::Archive::new(&mut counted);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(a.archive);
    ar.set_overwrite(true);
    let entries = ar
        .entries()
        .map_err(|e| Error::msg(format!("read the archive of {container}:{src}: {e}")))?;
    for e in entries {
        let mut e = e.map_err(|e| Error::msg(format!("read the archive of {container}:{src}: {e}")))?;
        let p = e
            .path()
            .map_err(|e| Error::msg(format!("bad path in the archive of {container}:{src}: {e}")))?
            .into_owned();
        if !safe_rel(&p) {
            return Err(Error::msg(format!(
                "unsafe path {} in the archive of {container}:{src}",
                p.display()
            )));
        }
        let rel = match &rename {
            None => p.clone(),
            Some(new) => {
                let mut comps = p.components();
                match comps.next() {
                    Some(first) if src_name.is_empty() || first.as_os_str() == src_name.as_str() => {
                        // (joining an empty rest would add a trailing slash)
                        let rest = comps.as_path();
                        if rest.as_os_str().is_empty() {
                            PathBuf::from(new)
                        } else {
                            Path::new(new).join(rest)
                        }
                    }
                    _ => p.clone(),
                }
            }
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = base.join(&rel);
        e.unpack(&target)
            .map_err(|err| Error::msg(format!("write {}: {err}", target.display())))?;
    }
    if !a.quiet {
        eprintln!("Successfully copied {} to {dest}", human_size(counted.1 as f64));
    }
    Ok(())
}

struct CountingReader<R: Read>(R, u64);

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(b)?;
        self.1 += n as u64;
        Ok(n)
    }
}

fn cp_in(ctx: &Ctx, a: &CpArgs, src: &str, container: &str, dest: &str) -> Result<()> {
    let api = &ctx.api;
    let c = query_escape(container);
    if src == "-" {
        let mut stdin = std::io::stdin().lock();
        let path = format!(
            "/containers/{c}/archive?noOverwriteDirNonDir=true&path={}",
            query_escape(dest)
        );
        let r = api.request("PUT", &path, Body::Reader(&mut stdin, "application/x-tar"), &[])?;
        api.recycle(r);
        return Ok(());
    }
    let src_path = if a.follow_link {
        std::fs::canonicalize(src).map_err(|e| Error::msg(format!("resolve {src}: {e}")))?
    } else {
        PathBuf::from(src)
    };
    let meta = std::fs::symlink_metadata(&src_path).map_err(|e| Error::msg(format!("read {src}: {e}")))?;
    // Is the destination an existing directory in the container?
    let stat_path = format!("/containers/{c}/archive?path={}", query_escape(dest));
    let dest_dir = match api.request("HEAD", &stat_path, Body::Empty, &[]) {
        Ok(r) => {
            let is_dir = path_stat(&r)
                .and_then(|s| s["mode"].as_u64())
                .is_some_and(|m| m & MODE_DIR != 0);
            api.recycle(r);
            if !is_dir && meta.is_dir() {
                return Err(Error::msg(format!(
                    "cannot copy directory {src} to file {container}:{dest}"
                )));
            }
            is_dir
        }
        Err(e) if e.is_not_found() => false,
        Err(e) => return Err(e),
    };
    let src_name = src_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    let (put_dir, name) = if dest_dir {
        (dest.to_string(), src_name)
    } else {
        let d = Path::new(dest);
        let parent = d
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or("/".into());
        (
            parent,
            d.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(src_name),
        )
    };
    let name = if src.ends_with("/.") { ".".to_string() } else { name };
    let (mut rd, wr) = std::io::pipe().map_err(|e| Error::msg(format!("make a pipe for the archive of {src}: {e}")))?;
    let src_for_thread = src_path.clone();
    let writer = std::thread::spawn(move || -> std::io::Result<u64> {
        let mut counted = Counting(wr, 0);
        {
            let mut b = tar::Builder::new(&mut counted);
            b.follow_symlinks(false);
            if meta.is_dir() {
                b.append_dir_all(&name, &src_for_thread)?;
            } else {
                b.append_path_with_name(&src_for_thread, &name)?;
            }
            b.finish()?;
        }
        Ok(counted.1)
    });
    let path = format!(
        "/containers/{c}/archive?noOverwriteDirNonDir=true&path={}",
        query_escape(&put_dir)
    );
    let sent = api.request("PUT", &path, Body::Reader(&mut rd, "application/x-tar"), &[]);
    let written = writer
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("archive writer panicked")));
    let r = sent?;
    api.recycle(r);
    let total = written.map_err(|e| Error::msg(format!("archive {src}: {e}")))?;
    if !a.quiet {
        eprintln!("Successfully copied {} to {container}:{dest}", human_size(total as f64));
    }
    Ok(())
}

/// A writer that counts what passes through.
struct Counting<W: Write>(W, u64);

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(b)?;
        self.1 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Stream a download to `-o FILE` or stdout (never to a terminal, as docker refuses).
pub fn save_stream(mut r: impl Read, output: Option<&str>, what: &str) -> Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    match output.filter(|o| !o.is_empty() && *o != "-") {
        Some(path) => {
            let tmp = format!("{path}.berth-tmp");
            let mut f = std::fs::File::create(&tmp).map_err(|e| Error::msg(format!("create {tmp}: {e}")))?;
            let res = std::io::copy(&mut r, &mut f)
                .and_then(|_| f.sync_all())
                .map_err(|e| Error::msg(format!("write {what} to {path}: {e}")));
            if let Err(e) = res {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, path).map_err(|e| Error::msg(format!("rename {tmp} to {path}: {e}")))
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err(Error::usage(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect",
                ));
            }
            let mut out = std::io::stdout().lock();
            loop {
                let n = r.read(&mut buf).map_err(|e| Error::msg(format!("read {what}: {e}")))?;
                if n == 0 {
                    return Ok(());
                }
                write_to(&mut out, &buf[..n])?;
            }
        }
    }
}

pub fn export(ctx: &Ctx, a: ExportArgs) -> Result<()> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Error::usage(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let r = ctx.api.request(
        "GET",
        &format!("/containers/{}/export", query_escape(&a.container)),
        Body::Empty,
        &[],
    )?;
    save_stream(r, a.output.as_deref(), &format!("the export of {}", a.container))
}

pub fn diff(ctx: &Ctx, a: One) -> Result<()> {
    let changes: Value = ctx
        .api
        .get(&format!("/containers/{}/changes", query_escape(&a.container)))?;
    let mut out = String::new();
    for c in changes.as_array().into_iter().flatten() {
        let kind = match c["Kind"].as_i64().unwrap_or(-1) {
            0 => "C",
            1 => "A",
            2 => "D",
            _ => "?",
        };
        out.push_str(&format!("{kind} {}\n", c["Path"].as_str().unwrap_or("")));
    }
    crate::format::print(&out)
}

pub fn commit(ctx: &Ctx, a: CommitArgs) -> Result<()> {
    let mut q = Query::new();
    q.add("author", a.author.as_deref().unwrap_or(""));
    for c in &a.change {
        q.add("changes", c);
    }
    q.add("comment", a.message.as_deref().unwrap_or(""))
        .add("container", &a.container);
    if !a.pause {
        q.add("pause", "0");
    }
    match a.repository.as_deref().filter(|r| !r.is_empty()) {
        Some(repo) => {
            let r = Ref::parse(repo)?;
            if r.digest.is_some() {
                return Err(Error::usage(format!(
                    "refusing to create a tag with a digest reference: {repo}"
                )));
            }
            q.add("repo", r.name()).add("tag", r.tag.as_deref().unwrap_or("latest"));
        }
        None => {
            q.add("repo", "").add("tag", "");
        }
    }
    let v: Value = ctx
        .api
        .json("POST", &format!("/commit{}", q.as_str()), Some(&Value::Null))?;
    println(v["Id"].as_str().unwrap_or(""))
}
