//! cgroup v1 driver: one function per controller, each given the container's directory in that
//! controller's hierarchy. Write orders and retries follow runc's libcontainer/cgroups/fs.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxInterfacePriority, LinuxMemory, LinuxRdma,
    LinuxThrottleDevice,
};

use crate::common;
use crate::fs::{self, invalid, io_err, is_errno, write_err};
use crate::{FreezerState, Result};

const MEM_LIMIT: &str = "memory.limit_in_bytes";
const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";

/// A limit the kernel refuses with EBUSY is below what the cgroup uses already.
fn set_mem_limit(dir: &Path, file: &str, field: &str, value: i64) -> Result<()> {
    let path = dir.join(file);
    let v = value.to_string();
    match fs::try_write(&path, &v) {
        Ok(()) => Ok(()),
        Err(e) if is_errno(&e, libc::EBUSY) => {
            let usage_file = if file == MEMSW_LIMIT {
                "memory.memsw.usage_in_bytes"
            } else {
                "memory.usage_in_bytes"
            };
            let usage = fs::read(&dir.join(usage_file)).unwrap_or_default();
            Err(invalid(
                field,
                value,
                format!("below current usage {} of {}", usage.trim(), dir.display()),
            ))
        }
        Err(e) => Err(write_err(&path, &v, e)),
    }
}

fn set_swap(dir: &Path, swap: i64) -> Result<()> {
    if !dir.join(MEMSW_LIMIT).exists() {
        // Nothing to lift when swap accounting is off; a real limit cannot be honoured.
        if swap == -1 {
            return Ok(());
        }
        return Err(invalid(
            "memory.swap",
            swap,
            format!("swap accounting is not enabled (no {MEMSW_LIMIT} in {})", dir.display()),
        ));
    }
    set_mem_limit(dir, MEMSW_LIMIT, "memory.swap", swap)
}

pub(crate) fn set_memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    common::check_usage_below(dir, "memory.usage_in_bytes", m)?;
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    // "Unlimited memory" with swap unset means unlimited memory+swap too (runc).
    if limit == -1 && swap == 0 && dir.join(MEMSW_LIMIT).exists() {
        swap = -1;
    }
    if limit != 0 && swap != 0 {
        // The kernel wants memsw >= limit at every step: raise memsw first when growing.
        let cur = fs::read_u64(&dir.join(MEM_LIMIT))?;
        if swap == -1 || cur < swap as u64 {
            set_swap(dir, swap)?;
            set_mem_limit(dir, MEM_LIMIT, "memory.limit", limit)?;
        } else {
            set_mem_limit(dir, MEM_LIMIT, "memory.limit", limit)?;
            set_swap(dir, swap)?;
        }
    } else {
        if limit != 0 {
            set_mem_limit(dir, MEM_LIMIT, "memory.limit", limit)?;
        }
        if swap != 0 {
            set_swap(dir, swap)?;
        }
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        fs::write(&dir.join("memory.soft_limit_in_bytes"), &r.to_string())?;
    }
    if let Some(k) = m.kernel().filter(|k| *k != 0) {
        // Deprecated: newer kernels drop the file or refuse the write; neither is an error.
        let path = dir.join("memory.kmem.limit_in_bytes");
        if path.exists() {
            let v = k.to_string();
            match fs::try_write(&path, &v) {
                Ok(()) => {}
                Err(e) if is_errno(&e, libc::EOPNOTSUPP) || is_errno(&e, libc::EINVAL) => {}
                Err(e) => return Err(write_err(&path, &v, e)),
            }
        }
    }
    if let Some(k) = m.kernel_tcp().filter(|k| *k != 0) {
        let path = dir.join("memory.kmem.tcp.limit_in_bytes");
        if !path.exists() {
            return Err(invalid(
                "memory.kernelTCP",
                k,
                format!("not supported by this kernel (no {})", path.display()),
            ));
        }
        fs::write(&path, &k.to_string())?;
    }
    if let Some(d) = m.disable_oom_killer() {
        fs::write(&dir.join("memory.oom_control"), if d { "1" } else { "0" })?;
    }
    if let Some(s) = m.swappiness() {
        fs::write(&dir.join("memory.swappiness"), &s.to_string())?;
    }
    if let Some(h) = m.use_hierarchy() {
        let path = dir.join("memory.use_hierarchy");
        let v = if h { "1" } else { "0" };
        match fs::try_write(&path, v) {
            Ok(()) => {}
            Err(e) if is_errno(&e, libc::EINVAL) && !h => {
                return Err(invalid(
                    "memory.useHierarchy",
                    h,
                    "this kernel always uses the hierarchy",
                ))
            }
            Err(e) => return Err(write_err(&path, v, e)),
        }
    }
    Ok(())
}

/// Writes `value`; if the kernel says EINVAL and `retry_later` holds, returns Ok(true) so the
/// caller writes it again after the value it depends on (runc's period/quota dance).
fn write_or_defer(dir: &Path, file: &str, value: &str, retry_later: bool) -> Result<bool> {
    let path = dir.join(file);
    match fs::try_write(&path, value) {
        Ok(()) => Ok(false),
        Err(e) if is_errno(&e, libc::EINVAL) && retry_later => Ok(true),
        Err(e) => Err(write_err(&path, value, e)),
    }
}

pub(crate) fn set_cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        let path = dir.join("cpu.shares");
        fs::write(&path, &shares.to_string())?;
        // The kernel clamps silently; read back so an out-of-range value is reported.
        let got = fs::read_u64(&path)?;
        if got != shares {
            return Err(invalid(
                "cpu.shares",
                shares,
                format!("the kernel clamped it to {got} (allowed range 2-262144)"),
            ));
        }
    }
    let quota = c.quota().filter(|q| *q != 0);
    // A shorter period (or longer burst) can be refused until the new quota is in; retry after it.
    let mut period_later = None;
    if let Some(p) = c.period().filter(|p| *p != 0) {
        let v = p.to_string();
        if write_or_defer(dir, "cpu.cfs_period_us", &v, quota.is_some())? {
            period_later = Some(v);
        }
    }
    let mut burst_later = None;
    if let Some(b) = c.burst() {
        let v = b.to_string();
        if write_or_defer(dir, "cpu.cfs_burst_us", &v, quota.is_some())? {
            burst_later = Some(v);
        }
    }
    if let Some(q) = quota {
        fs::write(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
        if let Some(v) = period_later {
            fs::write(&dir.join("cpu.cfs_period_us"), &v)?;
        }
        if let Some(v) = burst_later {
            fs::write(&dir.join("cpu.cfs_burst_us"), &v)?;
        }
    }
    if let Some(i) = c.idle() {
        fs::write(&dir.join("cpu.idle"), &i.to_string())?;
    }
    let runtime = c.realtime_runtime().filter(|r| *r != 0);
    let mut rt_period_later = None;
    if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
        let v = p.to_string();
        if write_or_defer(dir, "cpu.rt_period_us", &v, runtime.is_some())? {
            rt_period_later = Some(v);
        }
    }
    if let Some(r) = runtime {
        fs::write(&dir.join("cpu.rt_runtime_us"), &r.to_string())?;
        if let Some(v) = rt_period_later {
            fs::write(&dir.join("cpu.rt_period_us"), &v)?;
        }
    }
    Ok(())
}

pub(crate) fn set_cpuset(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        fs::write(&dir.join("cpuset.cpus"), cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        fs::write(&dir.join("cpuset.mems"), mems)?;
    }
    Ok(())
}

/// A new v1 cpuset has empty cpus/mems and refuses tasks: copy them down from the parent,
/// from the hierarchy's mount to `dir` (runc's copyIfNeeded).
pub(crate) fn init_cpuset(mount: &Path, dir: &Path) -> Result<()> {
    let Ok(rel) = dir.strip_prefix(mount) else {
        return Ok(());
    };
    let mut parent = mount.to_path_buf();
    for comp in rel.components() {
        let child = parent.join(comp);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let Some(cur) = fs::read_opt(&child.join(file))? else {
                continue;
            };
            if cur.trim().is_empty() {
                let from_parent = fs::read(&parent.join(file))?;
                fs::write(&child.join(file), from_parent.trim())?;
            }
        }
        parent = child;
    }
    Ok(())
}

pub(crate) fn set_pids(dir: &Path, limit: i64) -> Result<()> {
    fs::write(&dir.join("pids.max"), &common::pids_value(limit))
}

fn throttle(dir: &Path, file: &str, devs: &Option<Vec<LinuxThrottleDevice>>) -> Result<()> {
    for d in devs.iter().flatten() {
        fs::append(&dir.join(file), &format!("{}:{} {}", d.major(), d.minor(), d.rate()))?;
    }
    Ok(())
}

/// The first of `files` that exists: for weights BFQ's file if the scheduler provides it, else
/// CFQ's. None means the I/O scheduler has no proportional weights.
fn weight_file(dir: &Path, files: &[&str], field: &str, value: u16) -> Result<std::path::PathBuf> {
    if let Some(f) = files.iter().map(|f| dir.join(f)).find(|p| p.exists()) {
        return Ok(f);
    }
    Err(invalid(
        field,
        value,
        format!(
            "no {} in {} (no proportional-weight I/O scheduler)",
            files.join(" or "),
            dir.display()
        ),
    ))
}

pub(crate) fn set_blkio(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight() {
        common::validate_blkio_weight("blockIO.weight", w)?;
        let f = weight_file(dir, &["blkio.bfq.weight", "blkio.weight"], "blockIO.weight", w)?;
        fs::write(&f, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight() {
        common::validate_blkio_weight("blockIO.leafWeight", w)?;
        let f = weight_file(dir, &["blkio.leaf_weight"], "blockIO.leafWeight", w)?;
        fs::write(&f, &w.to_string())?;
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            common::validate_blkio_weight("blockIO.weightDevice.weight", w)?;
            let f = weight_file(
                dir,
                &["blkio.bfq.weight_device", "blkio.weight_device"],
                "blockIO.weightDevice.weight",
                w,
            )?;
            fs::append(&f, &format!("{}:{} {w}", wd.major(), wd.minor()))?;
        }
        if let Some(w) = wd.leaf_weight() {
            common::validate_blkio_weight("blockIO.weightDevice.leafWeight", w)?;
            let f = weight_file(dir, &["blkio.leaf_weight_device"], "blockIO.weightDevice.leafWeight", w)?;
            fs::append(&f, &format!("{}:{} {w}", wd.major(), wd.minor()))?;
        }
    }
    throttle(dir, "blkio.throttle.read_bps_device", b.throttle_read_bps_device())?;
    throttle(dir, "blkio.throttle.write_bps_device", b.throttle_write_bps_device())?;
    throttle(dir, "blkio.throttle.read_iops_device", b.throttle_read_iops_device())?;
    throttle(dir, "blkio.throttle.write_iops_device", b.throttle_write_iops_device())?;
    Ok(())
}

pub(crate) fn set_hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    // Check every size first so an unknown one fails before anything is written.
    let mut files = Vec::new();
    for l in limits {
        files.push((common::hugetlb_file(dir, l.page_size(), "limit_in_bytes")?, l));
    }
    for (path, l) in files {
        let v = l.limit().to_string();
        fs::write(&path, &v)?;
        // Reservation accounting (5.7+) limits what a mapping may reserve, not just fault in.
        let rsvd = dir.join(format!("hugetlb.{}.rsvd.limit_in_bytes", l.page_size()));
        if rsvd.exists() {
            fs::write(&rsvd, &v)?;
        }
    }
    Ok(())
}

pub(crate) fn set_net_cls(dir: &Path, class_id: u32) -> Result<()> {
    fs::write(&dir.join("net_cls.classid"), &class_id.to_string())
}

pub(crate) fn set_net_prio(dir: &Path, prios: &[LinuxInterfacePriority]) -> Result<()> {
    for p in prios {
        fs::append(
            &dir.join("net_prio.ifpriomap"),
            &format!("{} {}", p.name(), p.priority()),
        )?;
    }
    Ok(())
}

pub(crate) fn set_rdma(dir: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
    for line in common::rdma_lines(rdma)? {
        fs::append(&dir.join("rdma.max"), &line)?;
    }
    Ok(())
}

/// Deny everything, then replay the rules in order (the runtime passes the full list, default
/// allows included), as runc does.
pub(crate) fn set_devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    // Format every rule first: a bad one must not leave the cgroup at "deny all".
    let lines = rules
        .iter()
        .map(|r| Ok((r.allow(), common::device_rule_line(r)?)))
        .collect::<Result<Vec<_>>>()?;
    fs::append(&dir.join("devices.deny"), "a")?;
    for (allow, line) in lines {
        let file = if allow { "devices.allow" } else { "devices.deny" };
        fs::append(&dir.join(file), &line)?;
    }
    Ok(())
}

fn read_state(path: &Path) -> Result<String> {
    Ok(fs::read(path)?.trim().to_string())
}

const FREEZE_TRIES: u32 = 1000;

fn timeout_err(path: &Path, msg: &str) -> crate::Error {
    io_err("freeze", path, io::Error::new(io::ErrorKind::TimedOut, msg.to_string()))
}

pub(crate) fn freeze(dir: &Path, state: FreezerState) -> Result<()> {
    let path = dir.join("freezer.state");
    match state {
        FreezerState::Frozen => {
            // v1 can stay in FREEZING while tasks keep forking; runc's remedy: rewrite FROZEN,
            // and now and then thaw for a moment so the newcomers can be caught.
            for i in 0..FREEZE_TRIES {
                if i % 50 == 49 {
                    fs::write(&path, "THAWED")?;
                    sleep(Duration::from_millis(10));
                }
                fs::write(&path, "FROZEN")?;
                if i % 25 == 24 {
                    sleep(Duration::from_micros(10));
                }
                match read_state(&path)?.as_str() {
                    "FROZEN" => return Ok(()),
                    "FREEZING" => continue,
                    other => return Err(invalid("freezer.state", other, "unexpected state while freezing")),
                }
            }
            // Leave it running rather than half-frozen.
            let _ = fs::write(&path, "THAWED");
            Err(timeout_err(&path, "still FREEZING after 1000 tries"))
        }
        FreezerState::Thawed => {
            for _ in 0..FREEZE_TRIES {
                fs::write(&path, "THAWED")?;
                if read_state(&path)? == "THAWED" {
                    return Ok(());
                }
                sleep(Duration::from_millis(1));
            }
            Err(timeout_err(&path, "not THAWED after 1000 tries"))
        }
    }
}

pub(crate) fn freezer_state(dir: &Path) -> Result<FreezerState> {
    let path = dir.join("freezer.state");
    for _ in 0..FREEZE_TRIES {
        match read_state(&path)?.as_str() {
            "THAWED" => return Ok(FreezerState::Thawed),
            "FROZEN" => {
                // FROZEN because an ancestor is frozen does not make this container paused.
                return Ok(match fs::read_opt(&dir.join("freezer.self_freezing"))? {
                    Some(s) if s.trim() == "0" => FreezerState::Thawed,
                    _ => FreezerState::Frozen,
                });
            }
            "FREEZING" => sleep(Duration::from_millis(1)),
            other => return Err(invalid("freezer.state", other, "unknown freezer state")),
        }
    }
    // Stuck half-way: some tasks are frozen, so the container is not running normally.
    Ok(FreezerState::Frozen)
}

/// memory.oom_control's oom_kill counter (kernel 4.13+; 0 before).
pub(crate) fn oom_kill_count(dir: &Path) -> Result<u64> {
    let m = fs::flat_keyed(&fs::read(&dir.join("memory.oom_control"))?);
    Ok(m.get("oom_kill").copied().unwrap_or(0))
}
