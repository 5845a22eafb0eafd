//! A fake cgroupfs in a tempdir: control files are regular files, the mount table and
//! /proc/self/cgroup are text handed to `Cgroup::new_with`. Helpers play the kernel's part where
//! it matters (populating new cgroups, dropping control files on rmdir).

use std::fs;
use std::path::{Path, PathBuf};

use berth_cgroups::Cgroup;
use tempfile::TempDir;

/// (file, initial content) of every v1 hierarchy's cgroups.
fn v1_files(controller: &str) -> &'static [(&'static str, &'static str)] {
    match controller {
        "cpu" => &[
            ("cpu.shares", "1024"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "-1"),
            ("cpu.cfs_burst_us", "0"),
            ("cpu.rt_period_us", "1000000"),
            ("cpu.rt_runtime_us", "0"),
            ("cpu.idle", "0"),
            ("cpu.stat", "nr_periods 3\nnr_throttled 1\nthrottled_time 500\n"),
        ],
        "cpuacct" => &[
            ("cpuacct.usage", "1000"),
            ("cpuacct.usage_percpu", "600 400 \n"),
            ("cpuacct.usage_user", "700"),
            ("cpuacct.usage_sys", "300"),
        ],
        "cpuset" => &[("cpuset.cpus", ""), ("cpuset.mems", "")],
        "memory" => &[
            ("memory.limit_in_bytes", "9223372036854771712"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712"),
            ("memory.soft_limit_in_bytes", "9223372036854771712"),
            ("memory.kmem.tcp.limit_in_bytes", "9223372036854771712"),
            ("memory.usage_in_bytes", "4096"),
            ("memory.max_usage_in_bytes", "8192"),
            ("memory.failcnt", "1"),
            ("memory.memsw.usage_in_bytes", "5000"),
            ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            ("memory.swappiness", "60"),
            ("memory.use_hierarchy", "1"),
            ("memory.stat", "cache 100\nrss 200\n"),
        ],
        "devices" => &[
            ("devices.allow", ""),
            ("devices.deny", ""),
            ("devices.list", "a *:* rwm\n"),
        ],
        "freezer" => &[("freezer.state", "THAWED"), ("freezer.self_freezing", "0")],
        "blkio" => &[
            ("blkio.weight", "500"),
            ("blkio.weight_device", ""),
            ("blkio.leaf_weight", "500"),
            ("blkio.leaf_weight_device", ""),
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_bps_device", ""),
            ("blkio.throttle.read_iops_device", ""),
            ("blkio.throttle.write_iops_device", ""),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 10\n8:0 Write 20\nTotal 30\n",
            ),
            (
                "blkio.throttle.io_serviced_recursive",
                "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
            ),
        ],
        // Like this host's blkio: no proportional-weight files at all.
        "blkio-throttle-only" => &[
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.io_service_bytes_recursive", ""),
        ],
        "pids" => &[("pids.max", "max"), ("pids.current", "1")],
        "hugetlb" => &[
            ("hugetlb.2MB.limit_in_bytes", "9223372036854771712"),
            ("hugetlb.2MB.rsvd.limit_in_bytes", "9223372036854771712"),
            ("hugetlb.2MB.usage_in_bytes", "2097152"),
            ("hugetlb.2MB.max_usage_in_bytes", "4194304"),
            ("hugetlb.2MB.failcnt", "3"),
            ("hugetlb.1GB.limit_in_bytes", "9223372036854771712"),
            ("hugetlb.1GB.usage_in_bytes", "0"),
        ],
        "net_cls" => &[("net_cls.classid", "0")],
        "net_prio" => &[("net_prio.ifpriomap", "lo 0\n")],
        "rdma" => &[("rdma.max", "")],
        _ => &[],
    }
}

/// Files of a cgroup2 cgroup: the core ones, then per controller.
fn v2_files(controller: &str) -> &'static [(&'static str, &'static str)] {
    match controller {
        "" => &[
            ("cgroup.procs", ""),
            ("cgroup.subtree_control", ""),
            ("cgroup.freeze", "0"),
            ("cgroup.events", "populated 0\nfrozen 0\n"),
            ("cgroup.kill", ""),
            ("cgroup.type", "domain"),
        ],
        "cpu" => &[
            ("cpu.weight", "100"),
            ("cpu.max", "max 100000"),
            ("cpu.max.burst", "0"),
            ("cpu.idle", "0"),
            (
                "cpu.stat",
                "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n",
            ),
        ],
        "cpuset" => &[("cpuset.cpus", ""), ("cpuset.mems", "")],
        "memory" => &[
            ("memory.max", "max"),
            ("memory.low", "0"),
            ("memory.swap.max", "max"),
            ("memory.current", "4096"),
            ("memory.peak", "8192"),
            ("memory.swap.current", "100"),
            ("memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n"),
            ("memory.stat", "anon 10\nfile 20\n"),
        ],
        "io" => &[
            ("io.weight", "default 100\n"),
            ("io.max", ""),
            ("io.stat", "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n"),
        ],
        "pids" => &[("pids.max", "max"), ("pids.current", "2")],
        "hugetlb" => &[
            ("hugetlb.2MB.max", "max"),
            ("hugetlb.2MB.rsvd.max", "max"),
            ("hugetlb.2MB.current", "2097152"),
            ("hugetlb.2MB.events", "max 4\n"),
            ("hugetlb.1GB.max", "max"),
            ("hugetlb.1GB.current", "0"),
        ],
        "rdma" => &[("rdma.max", "")],
        _ => &[],
    }
}

fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let p = dir.join(name);
        if !p.exists() {
            fs::write(p, content).unwrap();
        }
    }
}

/// A v1 hierarchy of the fake host.
struct V1 {
    /// Directory name under the root, e.g. "cpu,cpuacct".
    name: &'static str,
    /// Superblock options naming the controllers, e.g. "cpu,cpuacct" or "name=systemd".
    opts: &'static str,
    /// Templates to use (for "blkio-throttle-only").
    templates: &'static [&'static str],
}

pub struct Fake {
    _tmp: TempDir,
    pub root: PathBuf,
    pub mountinfo: String,
    pub proc_cgroup: String,
    v1: Vec<V1>,
    unified: Option<PathBuf>,
}

/// Layout choices for a v1 fake.
pub struct V1Host {
    /// cpu and cpuacct co-mounted as "cpu,cpuacct" (with symlinks), else separate like this host.
    pub comount_cpu: bool,
    /// hugetlb, net_cls,net_prio and rdma on v1, and blkio with weight files.
    pub full: bool,
    /// Controllers of the cgroup2 mount at <root>/unified (None: Legacy host).
    pub unified: Option<&'static str>,
    /// Our own cgroup in the memory hierarchy (the others are "/").
    pub own_memory: &'static str,
}

impl Fake {
    pub fn v1(h: V1Host) -> Fake {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cgroup");
        fs::create_dir(&root).unwrap();
        let mut v1 = Vec::new();
        if h.comount_cpu {
            v1.push(V1 {
                name: "cpu,cpuacct",
                opts: "cpu,cpuacct",
                templates: &["cpu", "cpuacct"],
            });
        } else {
            v1.push(V1 {
                name: "cpu",
                opts: "cpu",
                templates: &["cpu"],
            });
            v1.push(V1 {
                name: "cpuacct",
                opts: "cpuacct",
                templates: &["cpuacct"],
            });
        }
        for c in ["cpuset", "memory", "devices", "freezer"] {
            let name: &'static str = c;
            v1.push(V1 {
                name,
                opts: name,
                templates: v1_templates(name),
            });
        }
        if h.full {
            v1.push(V1 {
                name: "blkio",
                opts: "blkio",
                templates: &["blkio"],
            });
        } else {
            v1.push(V1 {
                name: "blkio",
                opts: "blkio",
                templates: &["blkio-throttle-only"],
            });
        }
        v1.push(V1 {
            name: "pids",
            opts: "pids",
            templates: &["pids"],
        });
        if h.full {
            v1.push(V1 {
                name: "hugetlb",
                opts: "hugetlb",
                templates: &["hugetlb"],
            });
            v1.push(V1 {
                name: "net_cls,net_prio",
                opts: "net_cls,net_prio",
                templates: &["net_cls", "net_prio"],
            });
            v1.push(V1 {
                name: "rdma",
                opts: "rdma",
                templates: &["rdma"],
            });
        }
        v1.push(V1 {
            name: "systemd",
            opts: "name=systemd",
            templates: &[],
        });

        let mut mountinfo = format!("20 1 0:20 / {} rw - tmpfs tmpfs rw\n", root.display());
        let mut proc_cgroup = String::new();
        for (i, h1) in v1.iter().enumerate() {
            let dir = root.join(h1.name);
            fs::create_dir(&dir).unwrap();
            mountinfo.push_str(&format!(
                "{} 20 0:{} / {} rw,relatime shared:{} - cgroup cgroup rw,{}\n",
                30 + i,
                30 + i,
                dir.display(),
                i + 1,
                h1.opts
            ));
            let own = if h1.name == "memory" { h.own_memory } else { "/" };
            proc_cgroup.push_str(&format!("{}:{}:{}\n", i + 1, h1.opts, own));
        }
        if h.comount_cpu {
            std::os::unix::fs::symlink("cpu,cpuacct", root.join("cpu")).unwrap();
            std::os::unix::fs::symlink("cpu,cpuacct", root.join("cpuacct")).unwrap();
        }
        let unified = h.unified.map(|ctrls| {
            let dir = root.join("unified");
            fs::create_dir(&dir).unwrap();
            fs::write(dir.join("cgroup.controllers"), ctrls).unwrap();
            mountinfo.push_str(&format!("90 20 0:90 / {} rw - cgroup2 cgroup2 rw\n", dir.display()));
            proc_cgroup.push_str("0::/\n");
            dir
        });
        let fake = Fake {
            _tmp: tmp,
            root,
            mountinfo,
            proc_cgroup,
            v1,
            unified,
        };
        fake.populate();
        // The root cpuset has the machine's CPUs and nodes; new cpusets start empty.
        fake.write("cpuset/cpuset.cpus", "0-3");
        fake.write("cpuset/cpuset.mems", "0");
        fake
    }

    /// A pure v2 host; `own` is our cgroup ("0::<own>"). `pre` cgroups exist already, with the
    /// given cgroup.controllers (as a host's system.slice would).
    pub fn v2(root_ctrls: &str, own: &str, pre: &[(&str, &str)]) -> Fake {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cgroup");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("cgroup.controllers"), root_ctrls).unwrap();
        let mountinfo = format!(
            "25 1 0:25 / {} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
            root.display()
        );
        let fake = Fake {
            _tmp: tmp,
            proc_cgroup: format!("0::{own}\n"),
            mountinfo,
            v1: Vec::new(),
            unified: Some(root.clone()),
            root,
        };
        for (dir, ctrls) in pre {
            let d = fake.root.join(dir);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("cgroup.controllers"), ctrls).unwrap();
        }
        fake.populate();
        fake
    }

    pub fn cgroup(&self, path: Option<&str>, id: &str) -> Cgroup {
        Cgroup::new_with(&self.root, path, id, &self.proc_cgroup, &self.mountinfo).unwrap()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn write(&self, rel: &str, content: &str) {
        fs::write(self.path(rel), content).unwrap();
    }

    /// Plays the kernel after mkdir: every cgroup directory gets its control files (existing
    /// files are kept). On v2 a cgroup gets the controllers its parent enabled.
    pub fn populate(&self) {
        for h in &self.v1 {
            let dir = self.root.join(h.name);
            for d in all_dirs(&dir) {
                write_files(&d, &[("cgroup.procs", ""), ("tasks", "")]);
                for t in h.templates {
                    write_files(&d, v1_files(t));
                }
            }
        }
        if let Some(u) = &self.unified {
            for d in all_dirs(u) {
                if !d.join("cgroup.controllers").exists() {
                    let parent =
                        fs::read_to_string(d.parent().unwrap().join("cgroup.subtree_control")).unwrap_or_default();
                    let enabled: Vec<&str> = parent.split_whitespace().map(|c| c.trim_start_matches('+')).collect();
                    fs::write(d.join("cgroup.controllers"), enabled.join(" ")).unwrap();
                }
                write_files(&d, v2_files(""));
                let ctrls = fs::read_to_string(d.join("cgroup.controllers")).unwrap();
                for c in ctrls.split_whitespace() {
                    write_files(&d, v2_files(c));
                }
            }
        }
    }

    /// Plays the kernel before rmdir: a cgroup's control files go away with it.
    pub fn strip(&self) {
        let mut hier: Vec<PathBuf> = self.v1.iter().map(|h| self.root.join(h.name)).collect();
        hier.extend(self.unified.clone());
        for top in hier {
            for d in all_dirs(&top).into_iter().skip(1) {
                for e in fs::read_dir(&d).unwrap() {
                    let e = e.unwrap();
                    if e.file_type().unwrap().is_file() {
                        fs::remove_file(e.path()).unwrap();
                    }
                }
            }
        }
    }
}

fn v1_templates(name: &'static str) -> &'static [&'static str] {
    match name {
        "cpuset" => &["cpuset"],
        "memory" => &["memory"],
        "devices" => &["devices"],
        "freezer" => &["freezer"],
        _ => &[],
    }
}

/// `dir` and every directory below it, parents first.
fn all_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let mut children: Vec<PathBuf> = fs::read_dir(&out[i])
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_dir())
            .map(|e| e.path())
            .collect();
        children.sort();
        out.extend(children);
        i += 1;
    }
    out
}
