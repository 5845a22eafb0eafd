//! `docker stats`: samples of a container's cgroup (v1 or v2) and of the host's CPU time,
//! rendered as the Docker API's stats document.

use berth_cgroups::{BlkioEntry, Stats};
use berth_runtime::container as rt;
use serde_json::{json, Map, Value};

use super::{Container, Engine};

/// One reading of a running container.
#[derive(Debug, Clone)]
pub struct StatsSample {
    read: String,
    cgroup: Stats,
    /// Interface counters of the container's own network namespace (not lo).
    networks: Option<Map<String, Value>>,
    /// Host CPU time in nanoseconds, as Docker counts it (/proc/stat).
    system_usage: u64,
    online_cpus: u32,
}

const ZERO_TIME: &str = crate::record::ZERO_TIME;

/// Docker's `networks` entries from a /proc/PID/net/dev table: every interface but lo.
fn net_dev(table: &str) -> Map<String, Value> {
    let names = [
        (0, "rx_bytes"),
        (1, "rx_packets"),
        (2, "rx_errors"),
        (3, "rx_dropped"),
        (8, "tx_bytes"),
        (9, "tx_packets"),
        (10, "tx_errors"),
        (11, "tx_dropped"),
    ];
    let mut out = Map::new();
    for line in table.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let v: Vec<u64> = rest.split_ascii_whitespace().filter_map(|x| x.parse().ok()).collect();
        if name == "lo" || v.len() < 12 {
            continue;
        }
        let entry: Map<String, Value> = names.iter().map(|(i, k)| (k.to_string(), json!(v[*i]))).collect();
        out.insert(name.to_string(), Value::Object(entry));
    }
    out
}

/// The host's CPU time (user..softirq of the `cpu` line, in ns) and online CPUs, read as
/// Docker reads them so CPU percentages come out the same.
fn system_cpu() -> (u64, u32) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    let mut usage = 0;
    let mut cpus = 0;
    for line in stat.lines() {
        let mut f = line.split_ascii_whitespace();
        match f.next() {
            Some("cpu") => {
                let ticks: u64 = f.take(7).filter_map(|v| v.parse::<u64>().ok()).sum();
                usage = ticks.saturating_mul(1_000_000_000) / hz;
            }
            Some(c) if c.len() > 3 && c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (usage, cpus)
}

/// The host's memory: Docker reports it as the limit of a container that has none.
fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .map_or(0, |k| k * 1024)
}

fn blkio(entries: &[BlkioEntry]) -> Value {
    if entries.is_empty() {
        return Value::Null;
    }
    json!(entries
        .iter()
        .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
        .collect::<Vec<_>>())
}

/// `cpu_stats` / `precpu_stats`; fields Docker omits when empty are left out.
fn cpu_json(s: Option<&StatsSample>) -> Value {
    let c = s.map(|s| s.cgroup.cpu.clone()).unwrap_or_default();
    let mut usage = json!({
        "total_usage": c.usage_total,
        "usage_in_kernelmode": c.usage_kernel,
        "usage_in_usermode": c.usage_user,
    });
    if !c.percpu_usage.is_empty() {
        usage["percpu_usage"] = json!(c.percpu_usage);
    }
    let mut out = json!({
        "cpu_usage": usage,
        "throttling_data": {
            "periods": c.throttling_periods,
            "throttled_periods": c.throttling_throttled_periods,
            "throttled_time": c.throttling_throttled_time,
        },
    });
    if let Some(s) = s {
        out["system_cpu_usage"] = json!(s.system_usage);
        out["online_cpus"] = json!(s.online_cpus);
    }
    out
}

impl Engine {
    /// Read the container's statistics now; None when it is not running (or stopped
    /// while being read).
    pub fn stats_sample(&self, c: &Container) -> Option<StatsSample> {
        let rec = c.record();
        if !rec.state.running || rec.state.restarting {
            return None;
        }
        let cgroup = rt::with_container(&self.cfg.runtime_root(), &c.id, |_, st, _| Ok(st.cgroup.stats()?)).ok()?;
        // Sampled right after the container, so the two deltas cover the same interval.
        let (system_usage, online_cpus) = system_cpu();
        // As Docker: only a namespace of the container's own (not host, not another's).
        let own_netns = matches!(
            super::netsetup::mode_of(&rec.host_config.network_mode),
            super::netsetup::Mode::Network(_)
        );
        let networks = own_netns
            .then(|| std::fs::read_to_string(format!("/proc/{}/net/dev", rec.state.pid)).ok())
            .flatten()
            .map(|t| net_dev(&t))
            .filter(|m| !m.is_empty());
        Some(StatsSample {
            read: berth_runtime::state::now_rfc3339(),
            cgroup,
            networks,
            system_usage,
            online_cpus,
        })
    }

    /// The stats document for `cur` (None: the container is not running, every value
    /// zero as Docker sends it) with `pre` as the previous reading.
    pub fn stats_document(&self, c: &Container, cur: Option<&StatsSample>, pre: Option<&StatsSample>) -> Value {
        let rec = c.record();
        let read = |s: Option<&StatsSample>| s.map_or(ZERO_TIME.to_string(), |s| s.read.clone());
        let mut doc = json!({
            "read": read(cur),
            "preread": read(pre),
            "pids_stats": {},
            "blkio_stats": {
                "io_service_bytes_recursive": null, "io_serviced_recursive": null,
                "io_queue_recursive": null, "io_service_time_recursive": null,
                "io_wait_time_recursive": null, "io_merged_recursive": null,
                "io_time_recursive": null, "sectors_recursive": null,
            },
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": cpu_json(cur),
            "precpu_stats": cpu_json(pre),
            "memory_stats": {},
            "name": rec.name,
            "id": rec.id,
        });
        let Some(s) = cur else { return doc };
        let cg = &s.cgroup;
        let mut pids = Map::new();
        if cg.pids.current > 0 {
            pids.insert("current".into(), json!(cg.pids.current));
        }
        if cg.pids.limit > 0 {
            pids.insert("limit".into(), json!(cg.pids.limit));
        }
        doc["pids_stats"] = Value::Object(pids);
        doc["blkio_stats"]["io_service_bytes_recursive"] = blkio(&cg.blkio.io_service_bytes_recursive);
        doc["blkio_stats"]["io_serviced_recursive"] = blkio(&cg.blkio.io_serviced_recursive);
        let m = &cg.memory.usage;
        let host = machine_memory();
        let limit = if host > 0 && m.limit > host { host } else { m.limit };
        let mut mem = Map::new();
        let mut put = |k: &str, v: u64| {
            if v > 0 {
                mem.insert(k.into(), json!(v));
            }
        };
        put("usage", m.usage);
        // cgroup v2 has no such counters (Docker leaves them out there too).
        if !self.cgroup_v2 {
            put("max_usage", m.max_usage);
            put("failcnt", m.failcnt);
        }
        put("limit", limit);
        if !cg.memory.raw.is_empty() {
            mem.insert("stats".into(), json!(cg.memory.raw));
        }
        doc["memory_stats"] = Value::Object(mem);
        if let Some(n) = &s.networks {
            doc["networks"] = Value::Object(n.clone());
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_counters_without_lo() {
        let t = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    1234      10    1    2    0     0          0         0     5678      20    3    4    0     0       0          0
";
        let n = net_dev(t);
        assert_eq!(n.len(), 1);
        let e = &n["eth0"];
        assert_eq!(
            (e["rx_bytes"].as_u64(), e["rx_packets"].as_u64()),
            (Some(1234), Some(10))
        );
        assert_eq!((e["rx_errors"].as_u64(), e["rx_dropped"].as_u64()), (Some(1), Some(2)));
        assert_eq!(
            (e["tx_bytes"].as_u64(), e["tx_packets"].as_u64()),
            (Some(5678), Some(20))
        );
        assert_eq!((e["tx_errors"].as_u64(), e["tx_dropped"].as_u64()), (Some(3), Some(4)));
    }

    #[test]
    fn host_cpu_time_counts() {
        let (usage, cpus) = system_cpu();
        assert!(usage > 0);
        assert!(cpus >= 1);
        assert!(machine_memory() > 0);
    }
}
