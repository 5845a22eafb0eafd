//! cgroup v2 driver: the unified hierarchy. Conversions from the spec's v1-shaped values follow
//! runc/crun (libcontainer/cgroups/fs2 and utils.go).

use std::collections::{BTreeMap, HashMap};
use std::fs as stdfs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxRdma, LinuxThrottleDevice};

use crate::common;
use crate::fs::{self, invalid, io_err, is_errno, write_err};
use crate::{Error, FreezerState, Result};

/// Controllers enabled for the cgroup at `dir` (its parent's subtree_control), from cgroup.controllers.
pub(crate) fn controllers(dir: &Path) -> Result<Vec<String>> {
    Ok(fs::read(&dir.join("cgroup.controllers"))?
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// Enables in `dir`'s children every controller `dir` has. Best effort, like runc: a cgroup with
/// processes of its own refuses (no internal processes), and whatever is then missing is reported
/// by `apply` for the resources that need it.
fn enable_all(dir: &Path) {
    let Ok(Some(avail)) = fs::read_opt(&dir.join("cgroup.controllers")) else {
        return;
    };
    let ctl = dir.join("cgroup.subtree_control");
    let enabled = fs::read_opt(&ctl).ok().flatten().unwrap_or_default();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    let missing: Vec<String> = avail
        .split_whitespace()
        .filter(|c| !enabled.contains(c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return;
    }
    if fs::try_write(&ctl, &missing.join(" ")).is_err() {
        // One refused controller fails the whole write; get the others in one by one.
        for c in &missing {
            let _ = fs::try_write(&ctl, c);
        }
    }
}

/// mkdir every level from the cgroup2 mount down to `dir`, enabling controllers in each
/// ancestor first so the new cgroup gets them. Records what it made in `created`.
pub(crate) fn create(mount: &Path, dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let rel = dir.strip_prefix(mount).map_err(|_| {
        invalid(
            "cgroupsPath",
            dir.display(),
            format!("not below the cgroup2 mount {}", mount.display()),
        )
    })?;
    let mut cur = mount.to_path_buf();
    for comp in rel.components() {
        enable_all(&cur);
        cur.push(comp);
        match stdfs::create_dir(&cur) {
            Ok(()) => created.push(cur.clone()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("mkdir", &cur, e)),
        }
    }
    Ok(())
}

/// Spec value to a v2 limit: 0 is unset, -1 is "max".
fn num_to_str(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".to_string()),
        v => Some(v.to_string()),
    }
}

/// The spec's swap is memory+swap; memory.swap.max is swap alone (runc's
/// ConvertMemorySwapToCgroupV2Value). None means leave memory.swap.max alone.
pub(crate) fn swap_max(swap: i64, limit: i64) -> Result<Option<String>> {
    // "Unlimited memory" with swap unset means unlimited swap too, as on v1.
    if limit == -1 && swap == 0 {
        return Ok(Some("max".to_string()));
    }
    match swap {
        0 => return Ok(None),
        -1 => return Ok(Some("max".to_string())),
        _ => {}
    }
    if limit <= 0 {
        return Err(invalid("memory.swap", swap, "a swap limit needs a memory limit"));
    }
    if swap < limit {
        return Err(invalid(
            "memory.swap",
            swap,
            format!("memory+swap limit must be >= memory.limit ({limit})"),
        ));
    }
    Ok(Some((swap - limit).to_string()))
}

/// `host_swappiness` is the system default (vm.swappiness): v2 has no per-cgroup swappiness, so
/// only a request for the value every cgroup has anyway can be honoured.
pub(crate) fn set_memory(dir: &Path, m: &LinuxMemory, host_swappiness: Option<u64>) -> Result<()> {
    if let Some(s) = m.swappiness() {
        if Some(s) != host_swappiness {
            return Err(invalid(
                "memory.swappiness",
                s,
                "cgroup v2 has no per-cgroup swappiness; only the system default can be requested",
            ));
        }
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(invalid(
            "memory.disableOOMKiller",
            true,
            "cgroup v2 cannot disable the OOM killer",
        ));
    }
    if m.use_hierarchy() == Some(false) {
        return Err(invalid(
            "memory.useHierarchy",
            false,
            "cgroup v2 is always hierarchical",
        ));
    }
    common::check_usage_below(dir, "memory.current", m)?;
    let limit = m.limit().unwrap_or(0);
    let swap = m.swap().unwrap_or(0);
    // An update may set swap alone: convert against the limit in force.
    let limit_for_swap = if limit == 0 && swap > 0 {
        match fs::read(&dir.join("memory.max"))?.trim() {
            "max" => -1,
            v => v.parse::<i64>().unwrap_or(0),
        }
    } else {
        limit
    };
    if let Some(v) = swap_max(swap, limit_for_swap)? {
        let path = dir.join("memory.swap.max");
        match fs::try_write(&path, &v) {
            Ok(()) => {}
            // Without swap there is nothing to lift or to turn off.
            Err(e) if e.kind() == io::ErrorKind::NotFound && (v == "max" || v == "0") => {}
            Err(e) => return Err(write_err(&path, &v, e)),
        }
    }
    if let Some(v) = num_to_str(limit) {
        fs::write(&dir.join("memory.max"), &v)?;
    }
    if let Some(v) = m.reservation().and_then(num_to_str) {
        fs::write(&dir.join("memory.low"), &v)?;
    }
    // kernel and kernelTCP have no v2 files: kernel memory is part of memory.max there.
    Ok(())
}

/// cpu.shares (2..262144, default 1024) to cpu.weight (1..10000, default 100) with the quadratic
/// fit runc >= 1.3.2 and crun >= 1.23 use: it maps min, default and max onto each other, which
/// the older linear formula did not (1024 became 39).
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

/// blkio weight (10..1000) to io.weight (1..10000), runc's linear mapping.
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

pub(crate) fn set_cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(v) = c.realtime_runtime().filter(|v| *v != 0) {
        return Err(invalid(
            "cpu.realtimeRuntime",
            v,
            "cgroup v2 has no realtime CPU limits",
        ));
    }
    if let Some(v) = c.realtime_period().filter(|v| *v != 0) {
        return Err(invalid("cpu.realtimePeriod", v, "cgroup v2 has no realtime CPU limits"));
    }
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        fs::write(&dir.join("cpu.weight"), &shares_to_weight(s).to_string())?;
    }
    if let Some(i) = c.idle() {
        fs::write(&dir.join("cpu.idle"), &i.to_string())?;
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    // A larger burst can be refused until the new quota is in; then retry after cpu.max.
    let mut burst_later = None;
    if let Some(b) = c.burst() {
        let path = dir.join("cpu.max.burst");
        let v = b.to_string();
        match fs::try_write(&path, &v) {
            Ok(()) => {}
            Err(e) if is_errno(&e, libc::EINVAL) && quota != 0 => burst_later = Some(v),
            Err(e) => return Err(write_err(&path, &v, e)),
        }
    }
    if quota != 0 || period != 0 {
        let mut v = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_string()
        };
        if period != 0 {
            v.push_str(&format!(" {period}"));
        }
        fs::write(&dir.join("cpu.max"), &v)?;
        if let Some(b) = burst_later {
            fs::write(&dir.join("cpu.max.burst"), &b)?;
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

pub(crate) fn set_pids(dir: &Path, limit: i64) -> Result<()> {
    fs::write(&dir.join("pids.max"), &common::pids_value(limit))
}

fn io_max(dir: &Path, key: &str, devs: &Option<Vec<LinuxThrottleDevice>>) -> Result<()> {
    for d in devs.iter().flatten() {
        // A v1 rate of 0 removes the limit; in io.max that is "max".
        let rate = if d.rate() == 0 {
            "max".to_string()
        } else {
            d.rate().to_string()
        };
        fs::append(
            &dir.join("io.max"),
            &format!("{}:{} {key}={rate}", d.major(), d.minor()),
        )?;
    }
    Ok(())
}

pub(crate) fn set_io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let no_leaf = |field: &str, w: u16| invalid(field, w, "cgroup v2 has no leaf weights");
    if let Some(w) = b.leaf_weight() {
        return Err(no_leaf("blockIO.leafWeight", w));
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.leaf_weight() {
            return Err(no_leaf("blockIO.weightDevice.leafWeight", w));
        }
    }
    let bfq = dir.join("io.bfq.weight");
    let io_weight = dir.join("io.weight");
    // BFQ takes the v1 range as is, and per-device weights when its file lists a "default" line.
    let bfq_content = fs::read_opt(&bfq)?;
    let no_weights = |field: &str, w: u16| {
        invalid(
            field,
            w,
            format!(
                "no io.bfq.weight or io.weight in {} (no I/O weight support)",
                dir.display()
            ),
        )
    };
    if let Some(w) = b.weight() {
        common::validate_blkio_weight("blockIO.weight", w)?;
        if bfq_content.is_some() {
            fs::append(&bfq, &w.to_string())?;
        } else if io_weight.exists() {
            fs::append(&io_weight, &blkio_to_io_weight(w).to_string())?;
        } else {
            return Err(no_weights("blockIO.weight", w));
        }
    }
    let bfq_per_device = bfq_content.as_deref().is_some_and(|c| c.starts_with("default"));
    for wd in b.weight_device().iter().flatten() {
        let Some(w) = wd.weight() else { continue };
        common::validate_blkio_weight("blockIO.weightDevice.weight", w)?;
        let dev = format!("{}:{}", wd.major(), wd.minor());
        if bfq_per_device {
            fs::append(&bfq, &format!("{dev} {w}"))?;
        } else if io_weight.exists() {
            fs::append(&io_weight, &format!("{dev} {}", blkio_to_io_weight(w)))?;
        } else {
            return Err(no_weights("blockIO.weightDevice.weight", w));
        }
    }
    io_max(dir, "rbps", b.throttle_read_bps_device())?;
    io_max(dir, "wbps", b.throttle_write_bps_device())?;
    io_max(dir, "riops", b.throttle_read_iops_device())?;
    io_max(dir, "wiops", b.throttle_write_iops_device())?;
    Ok(())
}

pub(crate) fn set_hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    let mut files = Vec::new();
    for l in limits {
        files.push((common::hugetlb_file(dir, l.page_size(), "max")?, l));
    }
    for (path, l) in files {
        let v = if l.limit() < 0 {
            "max".to_string()
        } else {
            l.limit().to_string()
        };
        fs::write(&path, &v)?;
        let rsvd = dir.join(format!("hugetlb.{}.rsvd.max", l.page_size()));
        if rsvd.exists() {
            fs::write(&rsvd, &v)?;
        }
    }
    Ok(())
}

pub(crate) fn set_rdma(dir: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
    for line in common::rdma_lines(rdma)? {
        fs::append(&dir.join("rdma.max"), &line)?;
    }
    Ok(())
}

/// linux.resources.unified: each key is a file in the container's cgroup, written verbatim.
/// Written last so it overrides the converted values, as in runc.
pub(crate) fn set_unified(dir: &Path, unified: &HashMap<String, String>, ctrls: &[String]) -> Result<()> {
    let mut keys: Vec<_> = unified.iter().collect();
    keys.sort();
    let field = |k: &str| format!("unified[{k}]");
    // Check every key first so a bad one fails before anything is written.
    for (k, v) in &keys {
        if k.is_empty() || k.contains('/') || k.starts_with('.') {
            return Err(invalid(field(k), v, "not a cgroup file name"));
        }
        let path = dir.join(k);
        if !path.exists() {
            let ctrl = k.split('.').next().unwrap_or_default();
            let hint = if ctrl != "cgroup" && !ctrls.iter().any(|c| c == ctrl) {
                format!(
                    " (controller {ctrl} is not enabled in {})",
                    dir.join("cgroup.controllers").display()
                )
            } else {
                String::new()
            };
            return Err(invalid(field(k), v, format!("no such file {}{hint}", path.display())));
        }
    }
    for (k, v) in keys {
        fs::write(&dir.join(k), v)?;
    }
    Ok(())
}

/// Waits (bounded, ~5s) until cgroup.events says `frozen <want>`.
fn wait_frozen(dir: &Path, want: bool) -> Result<bool> {
    let events = dir.join("cgroup.events");
    let want = if want { 1 } else { 0 };
    for i in 0..510u32 {
        let m = fs::flat_keyed(&fs::read(&events)?);
        if m.get("frozen") == Some(&want) {
            return Ok(true);
        }
        sleep(Duration::from_millis(if i < 10 { 1 } else { 10 }));
    }
    Ok(false)
}

pub(crate) fn freeze(dir: &Path, state: FreezerState) -> Result<()> {
    let path = dir.join("cgroup.freeze");
    if !path.exists() {
        return Err(Error::MissingController("freezer".to_string()));
    }
    let frozen = state == FreezerState::Frozen;
    fs::write(&path, if frozen { "1" } else { "0" })?;
    if wait_frozen(dir, frozen)? {
        return Ok(());
    }
    if frozen {
        // Leave it running rather than half-frozen.
        let _ = fs::write(&path, "0");
    }
    Err(io_err(
        "freeze",
        &dir.join("cgroup.events"),
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("frozen never became {}", u8::from(frozen)),
        ),
    ))
}

pub(crate) fn freezer_state(dir: &Path) -> Result<FreezerState> {
    Ok(match fs::read_opt(&dir.join("cgroup.freeze"))? {
        Some(s) if s.trim() == "1" => FreezerState::Frozen,
        // No cgroup.freeze: the kernel cannot freeze, so nothing is frozen.
        _ => FreezerState::Thawed,
    })
}

/// cgroup.kill (5.14+) kills every process in the subtree at once. Ok(false) if the kernel lacks it.
pub(crate) fn kill(dir: &Path) -> Result<bool> {
    let path = dir.join("cgroup.kill");
    match fs::try_write(&path, "1") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(write_err(&path, "1", e)),
    }
}

pub(crate) fn events(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>> {
    Ok(fs::flat_keyed(&fs::read(&dir.join(file))?))
}

pub(crate) fn oom_kill_count(dir: &Path) -> Result<u64> {
    Ok(events(dir, "memory.events")?.get("oom_kill").copied().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_fits_min_default_max() {
        let cases = [
            (0, 0),
            (1, 1),
            (2, 1),
            (3, 2),
            (512, 59),
            (1024, 100),
            (2048, 174),
            (10000, 627),
            (262_143, 10_000),
            (262_144, 10_000),
            (1 << 20, 10_000),
        ];
        for (shares, weight) in cases {
            assert_eq!(shares_to_weight(shares), weight, "shares {shares}");
        }
    }

    #[test]
    fn blkio_weight_conversion() {
        assert_eq!(blkio_to_io_weight(0), 0);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_conversion_matches_runc() {
        let s = |swap, limit| swap_max(swap, limit).map_err(|e| e.to_string());
        assert_eq!(s(0, 100).unwrap(), None);
        assert_eq!(s(0, -1).unwrap().as_deref(), Some("max"));
        assert_eq!(s(-1, 100).unwrap().as_deref(), Some("max"));
        assert_eq!(s(300, 100).unwrap().as_deref(), Some("200"));
        assert_eq!(s(100, 100).unwrap().as_deref(), Some("0"));
        assert!(s(50, 100).unwrap_err().contains("memory.swap=50"));
        assert!(s(50, 0).unwrap_err().contains("needs a memory limit"));
        assert!(s(50, -1).unwrap_err().contains("needs a memory limit"));
    }
}
