//! cgroup drivers for Berth: v1 (legacy and hybrid hosts) and v2 (unified hosts),
//! chosen at run time by looking at what is mounted under the cgroup root.
//!
//! The runtime creates one [`Cgroup`] per container from the spec's `cgroupsPath` and
//! `resources`; the engine reads statistics through the same type.

// NOTE: this file is the crate's public interface; the drivers live in their own modules.
//
// Modules depend one way: lib (Cgroup) -> layout, v1, v2, devices_bpf, stats -> common -> fs.
// They share only the error and stats types defined here; no two sibling modules import each other.

mod common;
mod devices_bpf;
mod fs;
mod layout;
mod stats;
mod v1;
mod v2;

use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::fs::{invalid, io_err};
use crate::layout::Hierarchy;

/// What kind of cgroup host this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only v1 hierarchies (no cgroup2 mount, or an unused one).
    Legacy,
    /// v1 controllers plus a cgroup2 mount at `<root>/unified` (this is what runc calls hybrid).
    Hybrid,
    /// Pure v2: `<root>` itself is a cgroup2 mount.
    Unified,
}

/// Errors of the cgroup drivers. Each names the cgroup file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroup {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid cgroup setting {field}={value}: {reason}")]
    Invalid {
        field: String,
        value: String,
        reason: String,
    },
    /// A resource was requested whose controller is not mounted (v1) or not enabled for the
    /// container's cgroup (v2 cgroup.controllers). Holds the controller's name.
    #[error(
        "cgroup controller {0} is not available on this host (not mounted, or not enabled for the container's cgroup)"
    )]
    MissingController(String),
    #[error("cannot detect cgroup layout under {0}")]
    Detect(PathBuf),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Freezer state as runc reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezerState {
    Thawed,
    Frozen,
}

/// Statistics in the shape `runc events --stats` prints (and the engine's stats use).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    #[serde(rename = "blkio")]
    pub blkio: BlkioStats,
    pub hugetlb: std::collections::BTreeMap<String, HugetlbStats>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CpuStats {
    /// Nanoseconds.
    pub usage_total: u64,
    pub usage_kernel: u64,
    pub usage_user: u64,
    pub percpu_usage: Vec<u64>,
    pub throttling_periods: u64,
    pub throttling_throttled_periods: u64,
    pub throttling_throttled_time: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemoryEntry {
    pub usage: u64,
    pub max_usage: u64,
    pub limit: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemoryStats {
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap_usage: MemoryEntry,
    pub kernel_usage: MemoryEntry,
    /// memory.stat (v1) or memory.stat (v2) key/values.
    pub raw: std::collections::BTreeMap<String, u64>,
    /// OOM kills counted by the kernel for this cgroup (v2 memory.events oom_kill; v1 memory.oom_control).
    pub oom_kill: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PidsStats {
    pub current: u64,
    /// 0 means no limit.
    pub limit: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HugetlbStats {
    pub usage: u64,
    pub max_usage: u64,
    pub failcnt: u64,
}

/// What kind of cgroup host `root` (normally /sys/fs/cgroup) is, from the filesystem types of
/// `root` and `root/unified`.
pub fn detect(root: &Path) -> Result<Mode> {
    use nix::sys::statfs::statfs;
    let root_fs = statfs(root)
        .map_err(|e| io_err("statfs", root, e.into()))?
        .filesystem_type();
    let unified_fs = statfs(&root.join("unified")).ok().map(|s| s.filesystem_type());
    layout::mode_from_fs_types(root, root_fs, unified_fs)
}

/// Which driver handles a controller, and the container's directory for it.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

/// v1 hierarchies to read cgroup.procs from, best first (any would do: a process is in all).
const PROCS_FROM: &[&str] = &[
    "pids", "freezer", "memory", "devices", "cpu", "cpuacct", "cpuset", "blkio",
];

/// A container's cgroup: where it lives in every hierarchy of the host. Serializable so the
/// runtime can keep it in its state and act on the same cgroup later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    mode: Mode,
    root: PathBuf,
    /// v1 hierarchies the container joins (Legacy and Hybrid), with its directory in each.
    hierarchies: Vec<Hierarchy>,
    /// The cgroup2 mount: `root` on Unified hosts, `root/unified` on Hybrid ones.
    unified_mount: Option<PathBuf>,
    /// The container's directory in the cgroup2 hierarchy (on Hybrid hosts the same-named
    /// cgroup runc also uses, so tools reading cgroup2 see the container).
    unified: Option<PathBuf>,
}

impl Cgroup {
    /// Resolve where the container's cgroup lives; creates nothing. `cgroups_path` is the
    /// spec's linux.cgroupsPath: absolute means relative to each hierarchy's mount root;
    /// relative or None means under the calling process's own cgroup (from /proc/self/cgroup),
    /// None meaning "<own cgroup>/<id>" as in runc. systemd-style "slice:prefix:name" paths are
    /// refused with [`Error::Invalid`] (no systemd driver yet).
    pub fn new(root: &Path, cgroups_path: Option<&str>, id: &str) -> Result<Cgroup> {
        let read = |p: &str| std::fs::read_to_string(p).map_err(|e| io_err("read", Path::new(p), e));
        let own = read("/proc/self/cgroup")?;
        let mountinfo = read("/proc/self/mountinfo")?;
        Self::new_with(root, cgroups_path, id, &own, &mountinfo)
    }

    /// Same as [`Cgroup::new`] with the contents of /proc/self/cgroup and /proc/self/mountinfo
    /// given (for tests against a fake tree). The host's mode is read from the mount table:
    /// a cgroup2 mount on `root` is Unified, v1 mounts below `root` plus a cgroup2 mount on
    /// `root/unified` are Hybrid, v1 mounts alone Legacy.
    pub fn new_with(
        root: &Path,
        cgroups_path: Option<&str>,
        id: &str,
        proc_self_cgroup: &str,
        mountinfo: &str,
    ) -> Result<Cgroup> {
        let l = layout::resolve(root, cgroups_path, id, proc_self_cgroup, mountinfo)?;
        Ok(Cgroup {
            mode: l.mode,
            root: root.to_path_buf(),
            hierarchies: l.hierarchies,
            unified_mount: l.unified_mount,
            unified: l.unified,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The cgroup root this was resolved against (normally /sys/fs/cgroup).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The container's directory for a controller: on v1 the one in the hierarchy holding it
    /// ("memory", "cpuacct", "name=systemd"); on Unified hosts the cgroup2 directory for any name.
    pub fn path(&self, controller: &str) -> Option<&Path> {
        match self.mode {
            Mode::Unified => self.unified.as_deref(),
            _ => self.hierarchy(controller).map(|h| h.dir.as_path()),
        }
    }

    /// The container's directory in the cgroup2 hierarchy (Unified and Hybrid hosts).
    pub fn unified_path(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    fn hierarchy(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
    }

    /// Every directory of the container, one per hierarchy.
    fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.hierarchies
            .iter()
            .map(|h| h.dir.as_path())
            .chain(self.unified.as_deref())
    }

    /// mkdir -p the container's directory in every hierarchy. On v1 a new cpuset gets its
    /// parent's cpus/mems; on v2 each ancestor first enables (best effort) every controller in
    /// its cgroup.controllers. On failure, removes the directories it made.
    pub fn create(&self) -> Result<()> {
        let mut created = Vec::new();
        let r = self.create_dirs(&mut created);
        if r.is_err() {
            fs::undo_mkdirs(&created);
        }
        r
    }

    fn create_dirs(&self, created: &mut Vec<PathBuf>) -> Result<()> {
        for h in &self.hierarchies {
            fs::mkdir_p(&h.dir, created)?;
            if h.controllers.iter().any(|c| c == "cpuset") {
                v1::init_cpuset(&h.mount, &h.dir)?;
            }
        }
        if let (Some(mount), Some(dir)) = (&self.unified_mount, &self.unified) {
            v2::create(mount, dir, created)?;
        }
        Ok(())
    }

    /// Controllers usable in the cgroup2 directory; on Hybrid hosts empty if it is missing.
    fn unified_controllers(&self) -> Result<Vec<String>> {
        match (self.mode, self.unified.as_deref()) {
            (Mode::Unified, Some(d)) => v2::controllers(d),
            (Mode::Hybrid, Some(d)) if d.join("cgroup.controllers").exists() => v2::controllers(d),
            _ => Ok(Vec::new()),
        }
    }

    /// The driver for a controller: the v1 hierarchy if mounted, else (Unified, or Hybrid with
    /// the controller only on cgroup2, like hugetlb on some hosts) the cgroup2 directory.
    fn target(&self, v1_name: &str, v2_name: Option<&str>, v2_ctrls: &[String]) -> Result<Target<'_>> {
        if self.mode != Mode::Unified {
            if let Some(h) = self.hierarchy(v1_name) {
                return Ok(Target::V1(&h.dir));
            }
        }
        if let (Some(name), Some(dir)) = (v2_name, self.unified.as_deref()) {
            if v2_ctrls.iter().any(|c| c == name) {
                return Ok(Target::V2(dir));
            }
        }
        let name = match (self.mode, v2_name) {
            (Mode::Unified, Some(n)) => n,
            _ => v1_name,
        };
        Err(Error::MissingController(name.to_string()))
    }

    fn devices_target(&self) -> Result<Target<'_>> {
        if self.mode != Mode::Unified {
            if let Some(h) = self.hierarchy("devices") {
                return Ok(Target::V1(&h.dir));
            }
        }
        // cgroup2 device filtering is a BPF program, not a controller: any cgroup2 dir takes it.
        match self.unified.as_deref() {
            Some(d) => Ok(Target::V2(d)),
            None => Err(Error::MissingController("devices".to_string())),
        }
    }

    fn freezer_target(&self) -> Result<Target<'_>> {
        if self.mode != Mode::Unified {
            if let Some(h) = self.hierarchy("freezer") {
                return Ok(Target::V1(&h.dir));
            }
        }
        match self.unified.as_deref() {
            Some(d) => Ok(Target::V2(d)),
            None => Err(Error::MissingController("freezer".to_string())),
        }
    }

    /// Writes the resources. Also used by `update` with partial resources: only what is set is
    /// written. Every needed controller is looked up and every value checked before the first
    /// write, so a missing controller or a bad value changes nothing.
    pub fn apply(&self, res: &LinuxResources) -> Result<()> {
        let v2c = self.unified_controllers()?;
        let t = |v1: &str, v2: Option<&str>| self.target(v1, v2, &v2c);

        let mem = res.memory().as_ref().filter(|m| common::is_memory_set(m));
        let cpu = res.cpu().as_ref().filter(|c| common::is_cpu_set(c));
        let cpuset = res.cpu().as_ref().filter(|c| common::is_cpuset_set(c));
        let pids = res.pids().as_ref();
        let blkio = res.block_io().as_ref().filter(|b| common::is_blkio_set(b));
        let huge = res.hugepage_limits().as_deref().filter(|h| !h.is_empty());
        let net_cls = res.network().as_ref().filter(|n| common::net_cls_set(n));
        let net_prio = res.network().as_ref().filter(|n| common::net_prio_set(n));
        let rdma = res.rdma().as_ref().filter(|r| !r.is_empty());
        let devices = res.devices().as_deref();
        let unified = res.unified().as_ref().filter(|u| !u.is_empty());

        let mem_t = mem.map(|_| t("memory", Some("memory"))).transpose()?;
        let cpu_t = cpu.map(|_| t("cpu", Some("cpu"))).transpose()?;
        let cpuset_t = cpuset.map(|_| t("cpuset", Some("cpuset"))).transpose()?;
        // A limit <= 0 means "no limit": worth writing where pids exists (an update may lift a
        // limit), but no reason to fail where it does not.
        let pids_t = match pids {
            Some(p) if p.limit() > 0 => Some(t("pids", Some("pids"))?),
            Some(_) => t("pids", Some("pids")).ok(),
            None => None,
        };
        let blkio_t = blkio.map(|_| t("blkio", Some("io"))).transpose()?;
        let huge_t = huge.map(|_| t("hugetlb", Some("hugetlb"))).transpose()?;
        // cgroup2 has no network controllers: tag packets with BPF or nftables instead.
        let net_cls_t = net_cls.map(|_| t("net_cls", None)).transpose()?;
        let net_prio_t = net_prio.map(|_| t("net_prio", None)).transpose()?;
        let rdma_t = rdma.map(|_| t("rdma", Some("rdma"))).transpose()?;
        let dev_t = devices.map(|_| self.devices_target()).transpose()?;
        if let Some(u) = unified {
            if self.mode != Mode::Unified {
                let mut keys: Vec<_> = u.keys().map(String::as_str).collect();
                keys.sort_unstable();
                return Err(invalid(
                    "unified",
                    keys.join(","),
                    format!("unified resources need a cgroup v2 host; this one is {:?}", self.mode),
                ));
            }
        }
        if let Some(m) = mem {
            common::validate_memory(m)?;
        }

        if let (Some(c), Some(t)) = (cpuset, cpuset_t) {
            match t {
                Target::V1(d) => v1::set_cpuset(d, c)?,
                Target::V2(d) => v2::set_cpuset(d, c)?,
            }
        }
        if let (Some(rules), Some(t)) = (devices, dev_t) {
            match t {
                Target::V1(d) => v1::set_devices(d, rules)?,
                Target::V2(d) => devices_bpf::apply(d, rules)?,
            }
        }
        if let (Some(m), Some(t)) = (mem, mem_t) {
            match t {
                Target::V1(d) => v1::set_memory(d, m)?,
                Target::V2(d) => v2::set_memory(d, m, host_swappiness())?,
            }
        }
        if let (Some(c), Some(t)) = (cpu, cpu_t) {
            match t {
                Target::V1(d) => v1::set_cpu(d, c)?,
                Target::V2(d) => v2::set_cpu(d, c)?,
            }
        }
        if let (Some(p), Some(t)) = (pids, pids_t) {
            match t {
                Target::V1(d) => v1::set_pids(d, p.limit())?,
                Target::V2(d) => v2::set_pids(d, p.limit())?,
            }
        }
        if let (Some(b), Some(t)) = (blkio, blkio_t) {
            match t {
                Target::V1(d) => v1::set_blkio(d, b)?,
                Target::V2(d) => v2::set_io(d, b)?,
            }
        }
        if let (Some(h), Some(t)) = (huge, huge_t) {
            match t {
                Target::V1(d) => v1::set_hugetlb(d, h)?,
                Target::V2(d) => v2::set_hugetlb(d, h)?,
            }
        }
        if let (Some(n), Some(Target::V1(d))) = (net_cls, net_cls_t) {
            v1::set_net_cls(d, n.class_id().unwrap_or_default())?;
        }
        if let (Some(n), Some(Target::V1(d))) = (net_prio, net_prio_t) {
            v1::set_net_prio(d, n.priorities().as_deref().unwrap_or_default())?;
        }
        if let (Some(r), Some(t)) = (rdma, rdma_t) {
            match t {
                Target::V1(d) => v1::set_rdma(d, r)?,
                Target::V2(d) => v2::set_rdma(d, r)?,
            }
        }
        if let (Some(u), Some(d)) = (unified, self.unified.as_deref()) {
            v2::set_unified(d, u, &v2c)?;
        }
        Ok(())
    }

    /// Moves `pid` (a whole process) into the container's cgroup in every hierarchy; on Hybrid
    /// hosts also into the same-named cgroup2 cgroup, as runc does.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        let v = pid.to_string();
        for d in self.dirs() {
            fs::write(&d.join("cgroup.procs"), &v)?;
        }
        Ok(())
    }

    /// Moves the calling process, which must be single-threaded, into the container's
    /// cgroup in every hierarchy; `born_in_unified`: it was created in the cgroup2 one
    /// (clone3 CLONE_INTO_CGROUP) and only the v1 hierarchies are left. On v1 it writes
    /// "0" to each `tasks`: migrating the calling thread itself skips the
    /// cgroup_threadgroup_rwsem write lock, whose first taking waits for an RCU grace
    /// period (7-11 ms on a hybrid host against under 1 ms; runc and crun pay it).
    pub fn join_self(&self, born_in_unified: bool) -> Result<()> {
        for h in &self.hierarchies {
            fs::write(&h.dir.join("tasks"), "0")?;
        }
        if let (false, Some(u)) = (born_in_unified, self.unified.as_deref()) {
            fs::write(&u.join("cgroup.procs"), "0")?;
        }
        Ok(())
    }

    /// Every process in the container's cgroup, child cgroups included.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let dir = match self.mode {
            Mode::Unified => self.unified.as_deref(),
            _ => PROCS_FROM
                .iter()
                .find_map(|c| self.hierarchy(c))
                .or_else(|| self.hierarchies.first())
                .map(|h| h.dir.as_path())
                .or(self.unified.as_deref()),
        };
        let mut out = Vec::new();
        if let Some(d) = dir {
            fs::procs(d, true, &mut out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Freezes or thaws, waiting (bounded) until the kernel reports the new state.
    pub fn freeze(&self, state: FreezerState) -> Result<()> {
        match self.freezer_target()? {
            Target::V1(d) => v1::freeze(d, state),
            Target::V2(d) => v2::freeze(d, state),
        }
    }

    pub fn freezer_state(&self) -> Result<FreezerState> {
        match self.freezer_target()? {
            Target::V1(d) => v1::freezer_state(d),
            Target::V2(d) => v2::freezer_state(d),
        }
    }

    /// Statistics of every controller present; controllers and files the host lacks are skipped.
    pub fn stats(&self) -> Result<Stats> {
        let v2c = self.unified_controllers()?;
        let t = |v1: &str, v2: &str| self.target(v1, Some(v2), &v2c).ok();
        let mut s = Stats::default();
        if self.mode != Mode::Unified {
            if let Some(h) = self.hierarchy("cpuacct") {
                stats::v1_cpuacct(&h.dir, &mut s.cpu)?;
            }
        }
        // cgroup2 has cpu.stat (usage) even without the cpu controller (that adds throttling).
        match (
            self.hierarchy("cpu").filter(|_| self.mode != Mode::Unified),
            self.unified.as_deref(),
        ) {
            (Some(h), _) => stats::v1_cpu(&h.dir, &mut s.cpu)?,
            (None, Some(d)) if self.hierarchy("cpuacct").is_none() => stats::v2_cpu(d, &mut s.cpu)?,
            _ => {}
        }
        match t("memory", "memory") {
            Some(Target::V1(d)) => stats::v1_memory(d, &mut s.memory)?,
            Some(Target::V2(d)) => stats::v2_memory(d, &mut s.memory)?,
            None => {}
        }
        if let Some(Target::V1(d) | Target::V2(d)) = t("pids", "pids") {
            stats::pids(d, &mut s.pids)?;
        }
        match t("blkio", "io") {
            Some(Target::V1(d)) => stats::v1_blkio(d, &mut s.blkio)?,
            Some(Target::V2(d)) => stats::v2_io(d, &mut s.blkio)?,
            None => {}
        }
        match t("hugetlb", "hugetlb") {
            Some(Target::V1(d)) => stats::v1_hugetlb(d, &mut s.hugetlb)?,
            Some(Target::V2(d)) => stats::v2_hugetlb(d, &mut s.hugetlb)?,
            None => {}
        }
        Ok(s)
    }

    /// OOM kills the kernel counted in the container's cgroup.
    pub fn oom_kill_count(&self) -> Result<u64> {
        let v2c = self.unified_controllers()?;
        match self.target("memory", Some("memory"), &v2c)? {
            Target::V1(d) => v1::oom_kill_count(d),
            Target::V2(d) => v2::oom_kill_count(d),
        }
    }

    /// Removes the container's cgroup (and child cgroups, leaf first) in every hierarchy,
    /// retrying EBUSY for up to 500ms in total; one already gone counts as removed. Kills nothing: a cgroup with
    /// processes stays and the error says where. Parents made by `create` are left, as in runc.
    pub fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        // One retry budget for all hierarchies: a cgroup that still has processes is busy in
        // every one of them, and waiting for each in turn would multiply the wait.
        let deadline = std::time::Instant::now() + fs::RMDIR_PATIENCE;
        for d in self.dirs() {
            if let Err(e) = fs::remove_tree(d, deadline) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Sends `sig` to every process of the container. SIGKILL uses cgroup.kill where the kernel
    /// has it; otherwise the cgroup is frozen around the signalling so nothing forks past it
    /// (runc's way), unless it was frozen already, in which case it stays frozen (a SIGKILLed
    /// v1 cgroup is thawed so the processes can die).
    pub fn kill_all(&self, sig: i32) -> Result<()> {
        let signal = Signal::try_from(sig).map_err(|_| invalid("signal", sig, "not a signal number"))?;
        if signal == Signal::SIGKILL {
            if let Some(u) = self.unified.as_deref().filter(|u| u.exists()) {
                if v2::kill(u)? {
                    if self.mode == Mode::Unified {
                        return Ok(());
                    }
                    // Hybrid: a process that is only in the v1 hierarchies is not reached by it.
                    return self.signal_each(signal);
                }
            }
        }
        let freezer = self.freezer_target().ok();
        let was_frozen = match freezer {
            Some(_) => self.freezer_state()? == FreezerState::Frozen,
            None => false,
        };
        let froze = freezer.is_some() && !was_frozen && self.freeze(FreezerState::Frozen).is_ok();
        let r = self.signal_each(signal);
        let v1_frozen_kill = was_frozen && signal == Signal::SIGKILL && matches!(freezer, Some(Target::V1(_)));
        if froze || v1_frozen_kill {
            self.freeze(FreezerState::Thawed)?;
        }
        r
    }

    fn signal_each(&self, signal: Signal) -> Result<()> {
        for pid in self.pids()? {
            match nix::sys::signal::kill(Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(io_err("kill", Path::new(&format!("/proc/{pid}")), e.into())),
            }
        }
        Ok(())
    }

    /// What to bind for a `cgroup` mount inside the container: (directory name under
    /// /sys/fs/cgroup, host directory of this container's cgroup in that hierarchy). v1
    /// hierarchies by their mount's name ("memory", "cpu,cpuacct", "systemd"); Unified hosts
    /// give one entry named ""; Hybrid hosts add ("unified", cgroup2 directory) last.
    pub fn mount_sources(&self) -> Vec<(String, PathBuf)> {
        let mut out: Vec<(String, PathBuf)> = self
            .hierarchies
            .iter()
            .map(|h| (h.name.clone(), h.dir.clone()))
            .collect();
        if let Some(u) = &self.unified {
            let name = if self.mode == Mode::Unified { "" } else { "unified" };
            out.push((name.to_string(), u.clone()));
        }
        out
    }
}

/// The system's vm.swappiness: the only swappiness a v2 cgroup can have.
fn host_swappiness() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/swappiness")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}
