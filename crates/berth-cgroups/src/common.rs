//! What both drivers share: which parts of `linux.resources` are set, value checks that do not
//! depend on the driver, and the formats v1 and v2 have in common.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxNetwork, LinuxRdma,
};

use crate::fs::{self, invalid};
use crate::Result;

pub(crate) fn is_memory_set(m: &LinuxMemory) -> bool {
    m.limit().is_some()
        || m.reservation().is_some()
        || m.swap().is_some()
        || m.kernel().is_some()
        || m.kernel_tcp().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer().is_some()
        || m.use_hierarchy().is_some()
}

/// The cpu controller's part of LinuxCpu (cpus/mems belong to cpuset).
pub(crate) fn is_cpu_set(c: &LinuxCpu) -> bool {
    c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.idle().is_some()
        || c.realtime_runtime().is_some()
        || c.realtime_period().is_some()
}

pub(crate) fn is_cpuset_set(c: &LinuxCpu) -> bool {
    c.cpus().as_deref().is_some_and(|s| !s.is_empty()) || c.mems().as_deref().is_some_and(|s| !s.is_empty())
}

pub(crate) fn is_blkio_set(b: &LinuxBlockIo) -> bool {
    let non_empty = |v: &Option<Vec<_>>| v.as_ref().is_some_and(|v: &Vec<_>| !v.is_empty());
    b.weight().is_some()
        || b.leaf_weight().is_some()
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || non_empty(b.throttle_read_bps_device())
        || non_empty(b.throttle_write_bps_device())
        || non_empty(b.throttle_read_iops_device())
        || non_empty(b.throttle_write_iops_device())
}

pub(crate) fn net_cls_set(n: &LinuxNetwork) -> bool {
    n.class_id().is_some()
}

pub(crate) fn net_prio_set(n: &LinuxNetwork) -> bool {
    n.priorities().as_ref().is_some_and(|p| !p.is_empty())
}

/// Checks that hold on both drivers, before anything is written.
pub(crate) fn validate_memory(m: &LinuxMemory) -> Result<()> {
    for (field, v) in [
        ("memory.limit", m.limit()),
        ("memory.reservation", m.reservation()),
        ("memory.swap", m.swap()),
        ("memory.kernel", m.kernel()),
        ("memory.kernelTCP", m.kernel_tcp()),
    ] {
        if let Some(v) = v.filter(|v| *v < -1) {
            return Err(invalid(field, v, "must be a byte count, or -1 for unlimited"));
        }
    }
    // The spec's swap is memory+swap (v1 memsw semantics), so it can never be below the limit.
    if let (Some(limit), Some(swap)) = (m.limit(), m.swap()) {
        if limit > 0 && swap > 0 && swap < limit {
            return Err(invalid(
                "memory.swap",
                swap,
                format!("memory+swap limit must be >= memory.limit ({limit})"),
            ));
        }
    }
    if let Some(s) = m.swappiness().filter(|s| *s > 100) {
        return Err(invalid("memory.swappiness", s, "valid range is 0-100"));
    }
    Ok(())
}

/// With checkBeforeUpdate, refuse a limit the cgroup already uses more than (runc's check):
/// on v2 the kernel would OOM-kill instead of refusing.
pub(crate) fn check_usage_below(dir: &Path, usage_file: &str, m: &LinuxMemory) -> Result<()> {
    let Some(limit) = m.limit().filter(|l| *l > 0) else {
        return Ok(());
    };
    if m.check_before_update() != Some(true) {
        return Ok(());
    }
    let usage = fs::read_u64(&dir.join(usage_file))?;
    if usage >= limit as u64 {
        return Err(invalid(
            "memory.limit",
            limit,
            format!("below current usage {usage} of {}", dir.display()),
        ));
    }
    Ok(())
}

pub(crate) fn validate_blkio_weight(field: &str, w: u16) -> Result<()> {
    if !(10..=1000).contains(&w) {
        return Err(invalid(field, w, "valid range is 10-1000"));
    }
    Ok(())
}

/// pids.max value: the spec says a limit <= 0 means no limit.
pub(crate) fn pids_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

/// Control file of one hugepage size; an unknown size is an error naming it (the kernel only
/// creates files for the sizes the machine supports).
pub(crate) fn hugetlb_file(dir: &Path, size: &str, suffix: &str) -> Result<PathBuf> {
    if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid(
            "hugepageLimits.pageSize",
            size,
            "expected a size like 2MB or 1GB",
        ));
    }
    let path = dir.join(format!("hugetlb.{size}.{suffix}"));
    if !path.exists() {
        return Err(invalid(
            "hugepageLimits.pageSize",
            size,
            format!("unsupported hugepage size (no {})", path.display()),
        ));
    }
    Ok(path)
}

/// rdma.max lines ("mlx4_0 hca_handle=2 hca_object=max"), same format on v1 and v2, sorted for
/// a deterministic write order.
pub(crate) fn rdma_lines(rdma: &HashMap<String, LinuxRdma>) -> Result<Vec<String>> {
    let mut devs: Vec<_> = rdma.iter().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::new();
    for (dev, lim) in devs {
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(invalid("rdma", dev, "not a device name"));
        }
        let mut line = dev.clone();
        if let Some(h) = lim.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = lim.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        if line.len() > dev.len() {
            out.push(line);
        }
    }
    Ok(out)
}

/// Access bits of a device rule. Unset or empty access means all of "rwm", as the v1 kernel
/// treats a bare rule.
pub(crate) fn device_access(rule: &LinuxDeviceCgroup) -> Result<String> {
    let acc = rule.access().as_deref().unwrap_or("");
    if acc.is_empty() {
        return Ok("rwm".to_string());
    }
    if !acc.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(invalid("devices.access", acc, "only r, w and m are allowed"));
    }
    Ok(acc.to_string())
}

/// A major or minor number; None or negative means any.
pub(crate) fn device_number(field: &str, v: Option<i64>) -> Result<Option<u32>> {
    match v {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        // BPF compares them as sign-extended 32-bit immediates; real numbers are far smaller.
        Some(n) if n > i64::from(i32::MAX) => Err(invalid(field, n, "device number out of range")),
        Some(n) => Ok(Some(n as u32)),
    }
}

/// v1 rule text: "c 1:3 rwm", "a *:* rwm".
pub(crate) fn device_rule_line(rule: &LinuxDeviceCgroup) -> Result<String> {
    let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        // 'u' is an unbuffered char device; the kernel only knows 'c'.
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::P => return Err(invalid("devices.type", "p", "the devices cgroup cannot filter FIFOs")),
    };
    let num = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |n| n.to_string());
    Ok(format!(
        "{typ} {}:{} {}",
        num(device_number("devices.major", rule.major())?),
        num(device_number("devices.minor", rule.minor())?),
        device_access(rule)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxRdmaBuilder};

    #[test]
    fn memory_validation_names_field_and_value() {
        let m = LinuxMemoryBuilder::default().limit(100).swap(50).build().unwrap();
        let e = validate_memory(&m).unwrap_err().to_string();
        assert!(e.contains("memory.swap=50"), "{e}");
        let m = LinuxMemoryBuilder::default().limit(-5).build().unwrap();
        assert!(validate_memory(&m).unwrap_err().to_string().contains("memory.limit=-5"));
        let m = LinuxMemoryBuilder::default().swappiness(101u64).build().unwrap();
        assert!(validate_memory(&m)
            .unwrap_err()
            .to_string()
            .contains("memory.swappiness=101"));
        let m = LinuxMemoryBuilder::default().limit(100).swap(-1).build().unwrap();
        validate_memory(&m).unwrap();
    }

    #[test]
    fn rule_lines() {
        let r = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rw")
            .build()
            .unwrap();
        assert_eq!(device_rule_line(&r).unwrap(), "c 1:3 rw");
        let r = LinuxDeviceCgroupBuilder::default().allow(false).build().unwrap();
        assert_eq!(device_rule_line(&r).unwrap(), "a *:* rwm");
        let r = LinuxDeviceCgroupBuilder::default()
            .typ(LinuxDeviceType::B)
            .major(-1)
            .minor(7)
            .access("x")
            .build()
            .unwrap();
        assert!(device_rule_line(&r)
            .unwrap_err()
            .to_string()
            .contains("devices.access=x"));
    }

    #[test]
    fn rdma_lines_sorted_and_partial() {
        let mut m = HashMap::new();
        m.insert(
            "mlx5_1".to_string(),
            LinuxRdmaBuilder::default().hca_objects(9u32).build().unwrap(),
        );
        m.insert(
            "mlx4_0".to_string(),
            LinuxRdmaBuilder::default()
                .hca_handles(2u32)
                .hca_objects(3u32)
                .build()
                .unwrap(),
        );
        m.insert("idle".to_string(), LinuxRdmaBuilder::default().build().unwrap());
        assert_eq!(
            rdma_lines(&m).unwrap(),
            ["mlx4_0 hca_handle=2 hca_object=3", "mlx5_1 hca_object=9"]
        );
    }

    #[test]
    fn pids_and_hugetlb_names() {
        assert_eq!(pids_value(0), "max");
        assert_eq!(pids_value(-1), "max");
        assert_eq!(pids_value(7), "7");
        let t = tempfile::tempdir().unwrap();
        let e = hugetlb_file(t.path(), "3MB", "max").unwrap_err().to_string();
        assert!(
            e.contains("hugepageLimits.pageSize=3MB") && e.contains("hugetlb.3MB.max"),
            "{e}"
        );
        let e = hugetlb_file(t.path(), "../x", "max").unwrap_err().to_string();
        assert!(e.contains("pageSize=../x"), "{e}");
    }
}
