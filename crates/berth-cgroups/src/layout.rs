//! Where a container's cgroup lives: parsing /proc/self/mountinfo and /proc/self/cgroup, and
//! resolving the spec's cgroupsPath against every hierarchy. Creates nothing.

use std::path::{Component, Path, PathBuf};

use nix::sys::statfs::FsType;
use serde::{Deserialize, Serialize};

use crate::fs::invalid;
use crate::{Error, Mode, Result};

/// v1 controllers a container joins (runc's list); named hierarchies other than name=systemd are
/// left alone because nothing in the runtime uses them.
const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "name=systemd",
];

/// One line of /proc/self/mountinfo, the fields this crate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Root of the mount within its filesystem (for cgroups: the cgroup the mount shows).
    pub root: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub super_opts: String,
}

/// Undoes mountinfo's octal escapes (\040 for space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            // Three octal digits fit in 9 bits; mountinfo only escapes bytes, so they fit in 8.
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 6 || post.len() < 3 {
                return None;
            }
            Some(Mount {
                root: unescape(pre[3]),
                mount_point: PathBuf::from(unescape(pre[4])),
                fs_type: post[0].to_string(),
                super_opts: post[2].to_string(),
            })
        })
        .collect()
}

/// One line of /proc/self/cgroup: controllers (empty for the v2 line "0::/path") and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcCgroup {
    pub controllers: Vec<String>,
    pub path: String,
}

pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            Some(ProcCgroup {
                controllers: ctrls.split(',').filter(|c| !c.is_empty()).map(str::to_string).collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// Mode from the filesystem types of `root` and `root/unified` (as statfs reports them).
/// Kept apart from `detect` so it can be tested without real mounts.
pub(crate) fn mode_from_fs_types(root: &Path, root_fs: FsType, unified_fs: Option<FsType>) -> Result<Mode> {
    use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, TMPFS_MAGIC};
    if root_fs == CGROUP2_SUPER_MAGIC {
        return Ok(Mode::Unified);
    }
    // v1 hierarchies are mounted on a tmpfs at the root (or, rarely, the root is one of them).
    if root_fs != TMPFS_MAGIC && root_fs != CGROUP_SUPER_MAGIC {
        return Err(Error::Detect(root.to_path_buf()));
    }
    if unified_fs == Some(CGROUP2_SUPER_MAGIC) {
        Ok(Mode::Hybrid)
    } else {
        Ok(Mode::Legacy)
    }
}

/// A v1 hierarchy the container joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hierarchy {
    /// Directory name of the mount under the cgroup root: "memory", "cpu,cpuacct", "systemd".
    pub name: String,
    /// Controllers of the hierarchy as the kernel names them ("cpu", "cpuacct", "name=systemd").
    pub controllers: Vec<String>,
    pub mount: PathBuf,
    /// The container's cgroup in this hierarchy.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub mode: Mode,
    pub hierarchies: Vec<Hierarchy>,
    pub unified_mount: Option<PathBuf>,
    pub unified: Option<PathBuf>,
}

/// cgroupsPath after validation: path components below either the hierarchy's mount root
/// (absolute) or the caller's own cgroup (relative).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Inner {
    Absolute(PathBuf),
    Relative(PathBuf),
}

fn clean_components(field: &str, value: &str) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(value).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            // ".." could climb out of the hierarchy (or into another container's cgroup).
            Component::ParentDir | Component::Prefix(_) => {
                return Err(invalid(field, value, "\"..\" is not allowed in a cgroup path"))
            }
        }
    }
    Ok(out)
}

fn parse_inner(cgroups_path: Option<&str>, id: &str) -> Result<Inner> {
    match cgroups_path.filter(|p| !p.is_empty()) {
        None => {
            if id.is_empty() || id.contains('/') || id == "." || id == ".." {
                return Err(invalid("id", id, "a container id must be a single path component"));
            }
            Ok(Inner::Relative(PathBuf::from(id)))
        }
        Some(p) => {
            if !p.starts_with('/') && p.split(':').count() == 3 {
                return Err(invalid(
                    "cgroupsPath",
                    p,
                    "systemd-style \"slice:prefix:name\" paths need the systemd cgroup driver, which berth does not implement yet",
                ));
            }
            let inner = clean_components("cgroupsPath", p)?;
            if inner.as_os_str().is_empty() {
                return Err(invalid("cgroupsPath", p, "a container cannot use the root cgroup"));
            }
            Ok(if p.starts_with('/') {
                Inner::Absolute(inner)
            } else {
                Inner::Relative(inner)
            })
        }
    }
}

/// Directory for the container in a hierarchy mounted at `mount` showing cgroup `mount_root`,
/// given the caller's own cgroup path `own` in that hierarchy (needed for relative paths only).
fn dir_in(mount: &Path, mount_root: &str, own: Option<&str>, inner: &Inner, what: &str) -> Result<PathBuf> {
    match inner {
        Inner::Absolute(p) => Ok(mount.join(p)),
        Inner::Relative(p) => {
            let own = own.ok_or_else(|| {
                invalid(
                    "/proc/self/cgroup",
                    what,
                    "no entry for this hierarchy, so a relative cgroupsPath cannot be placed",
                )
            })?;
            // The mount may show a sub-tree (bind mount, or a cgroup namespace on an old kernel):
            // our own path is given from the hierarchy's real root, the mount starts at mount_root.
            let own_p = Path::new(own);
            let rel = own_p.strip_prefix(mount_root).unwrap_or(own_p);
            let rel = clean_components("/proc/self/cgroup", &rel.to_string_lossy())?;
            Ok(mount.join(rel).join(p))
        }
    }
}

fn v1_controllers(super_opts: &str) -> Vec<String> {
    super_opts
        .split(',')
        .filter(|o| V1_CONTROLLERS.contains(o))
        .map(str::to_string)
        .collect()
}

/// Resolves the container's directories. `root` is the cgroup root (normally /sys/fs/cgroup).
pub(crate) fn resolve(
    root: &Path,
    cgroups_path: Option<&str>,
    id: &str,
    proc_self_cgroup: &str,
    mountinfo: &str,
) -> Result<Layout> {
    let inner = parse_inner(cgroups_path, id)?;
    let mounts = parse_mountinfo(mountinfo);
    let own = parse_proc_cgroup(proc_self_cgroup);
    // A later mount on the same mount point hides an earlier one.
    let mount_at = |p: &Path| mounts.iter().rev().find(|m| m.mount_point == p);

    let own_v2 = own.iter().find(|c| c.controllers.is_empty()).map(|c| c.path.as_str());

    if let Some(m) = mount_at(root).filter(|m| m.fs_type == "cgroup2") {
        let dir = dir_in(root, &m.root, own_v2, &inner, "cgroup2")?;
        return Ok(Layout {
            mode: Mode::Unified,
            hierarchies: Vec::new(),
            unified_mount: Some(root.to_path_buf()),
            unified: Some(dir),
        });
    }

    let mut hierarchies: Vec<Hierarchy> = Vec::new();
    for m in &mounts {
        if m.fs_type != "cgroup" || m.mount_point.parent() != Some(root) {
            continue;
        }
        let controllers = v1_controllers(&m.super_opts);
        if controllers.is_empty() || hierarchies.iter().any(|h| h.controllers == controllers) {
            continue;
        }
        // Only the top-most mount of a mount point counts.
        if mount_at(&m.mount_point) != Some(m) {
            continue;
        }
        let own_path = own
            .iter()
            .find(|c| c.controllers.iter().any(|x| controllers.contains(x)))
            .map(|c| c.path.as_str());
        let name = m
            .mount_point
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = dir_in(&m.mount_point, &m.root, own_path, &inner, &name)?;
        hierarchies.push(Hierarchy {
            name,
            controllers,
            mount: m.mount_point.clone(),
            dir,
        });
    }
    if hierarchies.is_empty() {
        return Err(Error::Detect(root.to_path_buf()));
    }

    let unified_mount = root.join("unified");
    let (mode, unified_mount, unified) = match mount_at(&unified_mount).filter(|m| m.fs_type == "cgroup2") {
        Some(m) => {
            let dir = dir_in(&unified_mount, &m.root, own_v2, &inner, "unified")?;
            (Mode::Hybrid, Some(unified_mount), Some(dir))
        }
        None => (Mode::Legacy, None, None),
    };
    Ok(Layout {
        mode,
        hierarchies,
        unified_mount,
        unified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, PROC_SUPER_MAGIC, TMPFS_MAGIC};

    const HOST_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/net_cls,net_prio rw shared:9 - cgroup cgroup rw,net_cls,net_prio
";
    const HOST_CGROUP: &str = "\
9:name=systemd:/
8:net_cls,net_prio:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn mountinfo_parses_optional_fields_and_escapes() {
        let m = parse_mountinfo(
            "42 31 0:39 /a\\040b /sys/fs/cgroup/x rw shared:9 master:2 - cgroup cgroup rw,pids\nbroken line\n",
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].root, "/a b");
        assert_eq!(m[0].mount_point, Path::new("/sys/fs/cgroup/x"));
        assert_eq!(m[0].fs_type, "cgroup");
        assert_eq!(m[0].super_opts, "rw,pids");
    }

    #[test]
    fn proc_cgroup_parses_v1_and_v2_lines() {
        let c = parse_proc_cgroup("4:cpu,cpuacct:/a:b\n0::/user.slice\n");
        assert_eq!(c[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(c[0].path, "/a:b");
        assert!(c[1].controllers.is_empty());
        assert_eq!(c[1].path, "/user.slice");
    }

    #[test]
    fn mode_from_fs_types_covers_all_layouts() {
        let r = Path::new("/r");
        assert_eq!(mode_from_fs_types(r, CGROUP2_SUPER_MAGIC, None).unwrap(), Mode::Unified);
        assert_eq!(
            mode_from_fs_types(r, TMPFS_MAGIC, Some(CGROUP2_SUPER_MAGIC)).unwrap(),
            Mode::Hybrid
        );
        assert_eq!(
            mode_from_fs_types(r, TMPFS_MAGIC, Some(TMPFS_MAGIC)).unwrap(),
            Mode::Legacy
        );
        assert_eq!(mode_from_fs_types(r, CGROUP_SUPER_MAGIC, None).unwrap(), Mode::Legacy);
        let e = mode_from_fs_types(r, PROC_SUPER_MAGIC, None).unwrap_err();
        assert!(e.to_string().contains("/r"), "{e}");
    }

    #[test]
    fn hybrid_absolute_relative_and_default() {
        let root = Path::new("/sys/fs/cgroup");
        let l = resolve(root, Some("/berth/c1"), "c1", HOST_CGROUP, HOST_MOUNTINFO).unwrap();
        assert_eq!(l.mode, Mode::Hybrid);
        let names: Vec<_> = l.hierarchies.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["cpu", "cpuacct", "memory", "systemd", "net_cls,net_prio"]);
        assert_eq!(l.hierarchies[2].dir, Path::new("/sys/fs/cgroup/memory/berth/c1"));
        assert_eq!(l.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/unified/berth/c1")));

        let l = resolve(root, Some("berth/c1"), "c1", HOST_CGROUP, HOST_MOUNTINFO).unwrap();
        assert_eq!(
            l.hierarchies[2].dir,
            Path::new("/sys/fs/cgroup/memory/process_api/abc/berth/c1")
        );
        assert_eq!(l.hierarchies[0].dir, Path::new("/sys/fs/cgroup/cpu/berth/c1"));

        let l = resolve(root, None, "c1", HOST_CGROUP, HOST_MOUNTINFO).unwrap();
        assert_eq!(
            l.hierarchies[2].dir,
            Path::new("/sys/fs/cgroup/memory/process_api/abc/c1")
        );
        assert_eq!(l.hierarchies[4].dir, Path::new("/sys/fs/cgroup/net_cls,net_prio/c1"));
        assert_eq!(l.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/unified/c1")));
    }

    #[test]
    fn unified_uses_own_cgroup_relative_to_mount_root() {
        let mi = "30 23 0:26 /ns /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let l = resolve(Path::new("/sys/fs/cgroup"), None, "c", "0::/ns/user.slice\n", mi).unwrap();
        assert_eq!(l.mode, Mode::Unified);
        assert_eq!(l.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/user.slice/c")));
        assert!(l.hierarchies.is_empty());
    }

    #[test]
    fn legacy_without_unified_and_overmount() {
        let mi = "\
1 0 0:1 / /cg rw - tmpfs tmpfs rw
2 1 0:2 / /cg/pids rw - cgroup cgroup rw,pids
3 1 0:3 / /cg/pids rw - tmpfs tmpfs rw
4 1 0:4 / /cg/memory rw - cgroup cgroup rw,memory
";
        let l = resolve(Path::new("/cg"), Some("/x"), "x", "", mi).unwrap();
        assert_eq!(l.mode, Mode::Legacy);
        // pids is hidden by the tmpfs mounted over it.
        let names: Vec<_> = l.hierarchies.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["memory"]);
        assert!(l.unified.is_none());
    }

    #[test]
    fn bad_paths_are_rejected_with_the_value() {
        let root = Path::new("/sys/fs/cgroup");
        for (p, needle) in [
            ("system.slice:docker:abc", "systemd"),
            ("/a/../../etc", "\"..\""),
            ("/", "root cgroup"),
        ] {
            let e = resolve(root, Some(p), "c1", HOST_CGROUP, HOST_MOUNTINFO)
                .unwrap_err()
                .to_string();
            assert!(e.contains("cgroupsPath") && e.contains(p) && e.contains(needle), "{e}");
        }
        let e = resolve(root, None, "a/b", HOST_CGROUP, HOST_MOUNTINFO)
            .unwrap_err()
            .to_string();
        assert!(e.contains("id=a/b"), "{e}");
        // Relative placement needs our own cgroup for every hierarchy.
        let e = resolve(root, None, "c1", "0::/\n", HOST_MOUNTINFO)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/proc/self/cgroup"), "{e}");
    }

    #[test]
    fn no_cgroup_mounts_is_a_detect_error() {
        let e = resolve(Path::new("/nowhere"), None, "c", "", HOST_MOUNTINFO).unwrap_err();
        assert!(matches!(e, Error::Detect(_)));
    }
}
