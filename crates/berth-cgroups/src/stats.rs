//! Statistics readers for both drivers, filling [`Stats`] the way `runc events --stats` reports.
//! Files a kernel does not have are skipped: statistics are best effort.

use std::collections::BTreeMap;
use std::path::Path;

use crate::fs::{self, io_err};
use crate::{BlkioEntry, BlkioStats, CpuStats, HugetlbStats, MemoryEntry, MemoryStats, PidsStats, Result};

fn u64_or_zero(path: &Path) -> Result<u64> {
    Ok(fs::read_u64_opt(path)?.unwrap_or(0))
}

/// Sizes ("2MB", "1GB") for which `dir` has a `hugetlb.<size>.<suffix>` file.
fn hugetlb_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("readdir", dir, e)),
    };
    let mut sizes = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| io_err("readdir", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(size) = name.strip_prefix("hugetlb.").and_then(|n| n.strip_suffix(suffix)) {
            if !size.contains('.') {
                sizes.push(size.to_string());
            }
        }
    }
    sizes.sort();
    Ok(sizes)
}

pub(crate) fn v1_cpuacct(dir: &Path, cpu: &mut CpuStats) -> Result<()> {
    cpu.usage_total = u64_or_zero(&dir.join("cpuacct.usage"))?;
    if let Some(s) = fs::read_opt(&dir.join("cpuacct.usage_percpu"))? {
        cpu.percpu_usage = s.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    }
    let user = fs::read_u64_opt(&dir.join("cpuacct.usage_user"))?;
    let sys = fs::read_u64_opt(&dir.join("cpuacct.usage_sys"))?;
    if let (Some(user), Some(sys)) = (user, sys) {
        cpu.usage_user = user;
        cpu.usage_kernel = sys;
    } else if let Some(m) = fs::read_keyed_opt(&dir.join("cpuacct.stat"))? {
        // Older kernels: cpuacct.stat counts USER_HZ ticks.
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let hz = if hz > 0 { hz as u64 } else { 100 };
        let ns = |t: u64| t.saturating_mul(1_000_000_000) / hz;
        cpu.usage_user = ns(m.get("user").copied().unwrap_or(0));
        cpu.usage_kernel = ns(m.get("system").copied().unwrap_or(0));
    }
    Ok(())
}

pub(crate) fn v1_cpu(dir: &Path, cpu: &mut CpuStats) -> Result<()> {
    if let Some(m) = fs::read_keyed_opt(&dir.join("cpu.stat"))? {
        cpu.throttling_periods = m.get("nr_periods").copied().unwrap_or(0);
        cpu.throttling_throttled_periods = m.get("nr_throttled").copied().unwrap_or(0);
        cpu.throttling_throttled_time = m.get("throttled_time").copied().unwrap_or(0);
    }
    Ok(())
}

fn v1_mem_entry(dir: &Path, prefix: &str) -> Result<MemoryEntry> {
    Ok(MemoryEntry {
        usage: u64_or_zero(&dir.join(format!("{prefix}.usage_in_bytes")))?,
        max_usage: u64_or_zero(&dir.join(format!("{prefix}.max_usage_in_bytes")))?,
        limit: u64_or_zero(&dir.join(format!("{prefix}.limit_in_bytes")))?,
        failcnt: u64_or_zero(&dir.join(format!("{prefix}.failcnt")))?,
    })
}

pub(crate) fn v1_memory(dir: &Path, mem: &mut MemoryStats) -> Result<()> {
    mem.usage = v1_mem_entry(dir, "memory")?;
    mem.swap_usage = v1_mem_entry(dir, "memory.memsw")?;
    mem.kernel_usage = v1_mem_entry(dir, "memory.kmem")?;
    mem.raw = fs::read_keyed_opt(&dir.join("memory.stat"))?.unwrap_or_default();
    mem.cache = mem.raw.get("cache").copied().unwrap_or(0);
    if let Some(m) = fs::read_keyed_opt(&dir.join("memory.oom_control"))? {
        mem.oom_kill = m.get("oom_kill").copied().unwrap_or(0);
    }
    Ok(())
}

pub(crate) fn pids(dir: &Path, p: &mut PidsStats) -> Result<()> {
    p.current = u64_or_zero(&dir.join("pids.current"))?;
    p.limit = match fs::read_u64_opt(&dir.join("pids.max"))? {
        Some(u64::MAX) | None => 0,
        Some(v) => v,
    };
    Ok(())
}

/// "8:0 Read 4096" lines of the v1 blkio files; the trailing "Total" line has no device.
fn v1_blkio_entries(s: &str) -> Vec<BlkioEntry> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (major, minor) = it.next()?.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: it.next()?.to_string(),
                value: it.next()?.parse().ok()?,
            })
        })
        .collect()
}

pub(crate) fn v1_blkio(dir: &Path, b: &mut BlkioStats) -> Result<()> {
    // CFQ's files, then BFQ's, then the throttle ones every kernel has (runc's order).
    for prefix in ["blkio", "blkio.bfq", "blkio.throttle"] {
        let bytes = dir.join(format!("{prefix}.io_service_bytes_recursive"));
        let Some(s) = fs::read_opt(&bytes)? else {
            continue;
        };
        b.io_service_bytes_recursive = v1_blkio_entries(&s);
        if let Some(s) = fs::read_opt(&dir.join(format!("{prefix}.io_serviced_recursive")))? {
            b.io_serviced_recursive = v1_blkio_entries(&s);
        }
        break;
    }
    Ok(())
}

pub(crate) fn v1_hugetlb(dir: &Path, out: &mut BTreeMap<String, HugetlbStats>) -> Result<()> {
    for size in hugetlb_sizes(dir, ".usage_in_bytes")? {
        let f = |s: &str| dir.join(format!("hugetlb.{size}.{s}"));
        out.insert(
            size.clone(),
            HugetlbStats {
                usage: u64_or_zero(&f("usage_in_bytes"))?,
                max_usage: u64_or_zero(&f("max_usage_in_bytes"))?,
                failcnt: u64_or_zero(&f("failcnt"))?,
            },
        );
    }
    Ok(())
}

pub(crate) fn v2_cpu(dir: &Path, cpu: &mut CpuStats) -> Result<()> {
    if let Some(m) = fs::read_keyed_opt(&dir.join("cpu.stat"))? {
        let us = |k: &str| m.get(k).copied().unwrap_or(0).saturating_mul(1000);
        cpu.usage_total = us("usage_usec");
        cpu.usage_user = us("user_usec");
        cpu.usage_kernel = us("system_usec");
        cpu.throttling_periods = m.get("nr_periods").copied().unwrap_or(0);
        cpu.throttling_throttled_periods = m.get("nr_throttled").copied().unwrap_or(0);
        cpu.throttling_throttled_time = us("throttled_usec");
    }
    Ok(())
}

pub(crate) fn v2_memory(dir: &Path, mem: &mut MemoryStats) -> Result<()> {
    let events = fs::read_keyed_opt(&dir.join("memory.events"))?.unwrap_or_default();
    mem.usage = MemoryEntry {
        usage: u64_or_zero(&dir.join("memory.current"))?,
        max_usage: u64_or_zero(&dir.join("memory.peak"))?,
        limit: u64_or_zero(&dir.join("memory.max"))?,
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    // v1 reported memory+swap; add memory in so consumers see the same meaning (runc does).
    let swap_usage = u64_or_zero(&dir.join("memory.swap.current"))?;
    let swap_limit = u64_or_zero(&dir.join("memory.swap.max"))?;
    mem.swap_usage = MemoryEntry {
        usage: swap_usage.saturating_add(mem.usage.usage),
        max_usage: 0,
        limit: if swap_limit == u64::MAX {
            u64::MAX
        } else {
            swap_limit.saturating_add(mem.usage.limit)
        },
        failcnt: 0,
    };
    mem.raw = fs::read_keyed_opt(&dir.join("memory.stat"))?.unwrap_or_default();
    mem.cache = mem.raw.get("file").copied().unwrap_or(0);
    mem.oom_kill = events.get("oom_kill").copied().unwrap_or(0);
    Ok(())
}

/// io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0".
pub(crate) fn v2_io(dir: &Path, b: &mut BlkioStats) -> Result<()> {
    let Some(s) = fs::read_opt(&dir.join("io.stat"))? else {
        return Ok(());
    };
    for line in s.lines() {
        let mut it = line.split_whitespace();
        let Some((major, minor)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                "rios" => (&mut b.io_serviced_recursive, "Read"),
                "wios" => (&mut b.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    Ok(())
}

pub(crate) fn v2_hugetlb(dir: &Path, out: &mut BTreeMap<String, HugetlbStats>) -> Result<()> {
    for size in hugetlb_sizes(dir, ".current")? {
        let events = fs::read_keyed_opt(&dir.join(format!("hugetlb.{size}.events")))?.unwrap_or_default();
        out.insert(
            size.clone(),
            HugetlbStats {
                usage: u64_or_zero(&dir.join(format!("hugetlb.{size}.current")))?,
                max_usage: 0,
                failcnt: events.get("max").copied().unwrap_or(0),
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_v1_lines() {
        let e = v1_blkio_entries("8:0 Read 10\n8:0 Write 20\nTotal 30\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[1].major, e[1].minor, e[1].op.as_str(), e[1].value),
            (8, 0, "Write", 20)
        );
    }

    #[test]
    fn io_stat_v2_lines() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("io.stat"),
            "8:16 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6\n",
        )
        .unwrap();
        let mut b = BlkioStats::default();
        v2_io(t.path(), &mut b).unwrap();
        let v: Vec<_> = b
            .io_service_bytes_recursive
            .iter()
            .map(|e| (e.op.as_str(), e.value))
            .collect();
        assert_eq!(v, [("Read", 1), ("Write", 2)]);
        let v: Vec<_> = b.io_serviced_recursive.iter().map(|e| (e.minor, e.value)).collect();
        assert_eq!(v, [(16, 3), (16, 4)]);
    }
}
