//! `docker update`: new resource limits and restart policy, applied to the running
//! container's cgroup and kept in its HostConfig (so a restart keeps them), with
//! Docker's validation and conflict rules.

use berth_runtime::container as rt;
use oci_spec::runtime::LinuxResources;
use serde::Deserialize;
use serde_json::json;

use super::{lock, Engine};
use crate::error::{EngineError, Result};
use crate::types::{HostConfig, RestartPolicy};

/// Docker's smallest memory limit (6 MiB).
const MIN_MEMORY: i64 = 6 << 20;

/// The body of `POST /containers/{id}/update` (Docker's `UpdateConfig`). Zero means
/// "unchanged", as in Docker.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateConfig {
    #[serde(default)]
    pub memory: i64,
    #[serde(default)]
    pub memory_swap: i64,
    #[serde(default)]
    pub memory_reservation: i64,
    #[serde(default)]
    pub cpu_shares: i64,
    #[serde(default)]
    pub nano_cpus: i64,
    #[serde(default)]
    pub cpu_period: i64,
    #[serde(default)]
    pub cpu_quota: i64,
    #[serde(default)]
    pub cpuset_cpus: Option<String>,
    #[serde(default)]
    pub cpuset_mems: Option<String>,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default)]
    pub blkio_weight: u16,
    #[serde(default)]
    pub restart_policy: Option<RestartPolicy>,
}

fn invalid(m: impl Into<String>) -> EngineError {
    EngineError::InvalidParameter(m.into())
}

/// Docker's checks of the requested values on their own.
fn validate(u: &UpdateConfig) -> Result<()> {
    if u.blkio_weight != 0 {
        return Err(invalid("BlkioWeight: updating the block IO weight is not supported"));
    }
    if u.memory != 0 && u.memory < MIN_MEMORY {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    if u.memory > 0 && u.memory_swap > 0 && u.memory_swap < u.memory {
        return Err(invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    if u.nano_cpus < 0 || u.nano_cpus > cpus * 1_000_000_000 {
        return Err(invalid(format!(
            "Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
        )));
    }
    if u.nano_cpus > 0 && u.cpu_period > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if u.nano_cpus > 0 && u.cpu_quota > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if u.cpu_period != 0 && !(1000..=1_000_000).contains(&u.cpu_period) {
        return Err(invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if u.cpu_quota > 0 && u.cpu_quota < 1000 {
        return Err(invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)"));
    }
    if let Some(p) = &u.restart_policy {
        match p.name.as_str() {
            "" | "on-failure" => {}
            "no" | "always" | "unless-stopped" if p.maximum_retry_count != 0 => {
                return Err(invalid(format!(
                    "maximum retry count cannot be used with restart policy '{}'",
                    p.name
                )))
            }
            "no" | "always" | "unless-stopped" => {}
            other => return Err(invalid(format!("invalid restart policy '{other}'"))),
        }
        if p.maximum_retry_count < 0 {
            return Err(invalid("maximum retry count cannot be negative"));
        }
    }
    Ok(())
}

/// Merge the update into the container's HostConfig by Docker's rules
/// (`container.UpdateContainer`); the error is the conflict Docker reports.
fn merge(h: &mut HostConfig, u: &UpdateConfig) -> std::result::Result<(), String> {
    if u.nano_cpus > 0 && h.cpu_period > 0 {
        return Err("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set".into());
    }
    if u.nano_cpus > 0 && h.cpu_quota > 0 {
        return Err("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set".into());
    }
    if u.cpu_period > 0 && h.nano_cpus > 0 {
        return Err("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set".into());
    }
    if u.cpu_quota > 0 && h.nano_cpus > 0 {
        return Err("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set".into());
    }
    // Docker records the swap a memory limit implies (twice the memory) at create.
    if h.memory > 0 && h.memory_swap == 0 {
        h.memory_swap = h.memory * 2;
    }
    let set = |dst: &mut i64, v: i64| {
        if v != 0 {
            *dst = v;
        }
    };
    set(&mut h.cpu_shares, u.cpu_shares);
    set(&mut h.nano_cpus, u.nano_cpus);
    set(&mut h.cpu_period, u.cpu_period);
    set(&mut h.cpu_quota, u.cpu_quota);
    if let Some(c) = u.cpuset_cpus.as_ref().filter(|c| !c.is_empty()) {
        h.cpuset_cpus = c.clone();
    }
    if let Some(m) = u.cpuset_mems.as_ref().filter(|m| !m.is_empty()) {
        h.cpuset_mems = m.clone();
    }
    if u.memory != 0 {
        if u.memory > h.memory_swap && u.memory_swap == 0 {
            return Err("Memory limit should be smaller than already set memoryswap limit, \
                        update the memoryswap at the same time"
                .into());
        }
        h.memory = u.memory;
    }
    set(&mut h.memory_swap, u.memory_swap);
    set(&mut h.memory_reservation, u.memory_reservation);
    if let Some(p) = u.pids_limit {
        // 0 and negative values both mean "unlimited" when updating.
        h.pids_limit = Some(p.max(0));
    }
    if let Some(p) = u.restart_policy.as_ref().filter(|p| !p.name.is_empty()) {
        if h.auto_remove && p.name != "no" {
            return Err("Restart policy cannot be updated because AutoRemove is enabled for the container".into());
        }
        h.restart_policy = p.clone();
    }
    Ok(())
}

/// Only what the update sets, as the OCI resources the runtime applies.
fn resources(u: &UpdateConfig) -> std::result::Result<LinuxResources, serde_json::Error> {
    let mut r = json!({});
    let mut mem = json!({});
    for (k, v) in [
        ("limit", u.memory),
        ("swap", u.memory_swap),
        ("reservation", u.memory_reservation),
    ] {
        if v != 0 {
            mem[k] = json!(v);
        }
    }
    if mem.as_object().is_some_and(|m| !m.is_empty()) {
        r["memory"] = mem;
    }
    let mut cpu = json!({});
    if u.cpu_shares != 0 {
        cpu["shares"] = json!(u.cpu_shares);
    }
    if u.nano_cpus > 0 {
        cpu["period"] = json!(100_000);
        cpu["quota"] = json!(u.nano_cpus / 10_000);
    }
    if u.cpu_period != 0 {
        cpu["period"] = json!(u.cpu_period);
    }
    if u.cpu_quota != 0 {
        cpu["quota"] = json!(u.cpu_quota);
    }
    if let Some(c) = u.cpuset_cpus.as_ref().filter(|c| !c.is_empty()) {
        cpu["cpus"] = json!(c);
    }
    if let Some(m) = u.cpuset_mems.as_ref().filter(|m| !m.is_empty()) {
        cpu["mems"] = json!(m);
    }
    if cpu.as_object().is_some_and(|m| !m.is_empty()) {
        r["cpu"] = cpu;
    }
    if let Some(p) = u.pids_limit {
        // The runtime writes "max" for a limit <= 0.
        r["pids"] = json!({"limit": if p > 0 { p } else { -1 }});
    }
    serde_json::from_value(r)
}

impl Engine {
    /// `POST /containers/{id}/update`: returns Docker's warnings (none).
    pub fn update(&self, key: &str, u: &UpdateConfig) -> Result<Vec<String>> {
        validate(u)?;
        let c = self.get(key)?;
        // Serialised with start/stop, so a start in between cannot apply the old limits.
        let _op = lock(&c.op);
        let rec = c.record();
        let cannot = |m: String| format!("Cannot update container {}: {m}", rec.id);
        let mut host = rec.host_config.clone();
        merge(&mut host, u).map_err(|m| EngineError::Conflict(cannot(m)))?;
        // A stopped container gets its new limits when it next starts.
        if rec.state.running && !rec.state.restarting {
            let res = resources(u).map_err(|e| invalid(cannot(format!("resources: {e}"))))?;
            rt::update(&self.cfg.runtime_root(), &rec.id, &res).map_err(|source| EngineError::Runtime {
                id: rec.id.clone(),
                source,
            })?;
        }
        let rec = c.update(&self.container_dir(&rec.id), |r| {
            r.host_config = host;
            r.clone()
        })?;
        self.emit(&rec, "update");
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_merge_rules() {
        let mut h = HostConfig::default();
        let u = UpdateConfig {
            memory: 64 << 20,
            ..Default::default()
        };
        // No swap limit yet: Docker wants one with the memory.
        assert!(merge(&mut h.clone(), &u).unwrap_err().contains("memoryswap"));
        let u = UpdateConfig {
            memory: 64 << 20,
            memory_swap: 128 << 20,
            pids_limit: Some(-1),
            ..Default::default()
        };
        merge(&mut h, &u).unwrap();
        assert_eq!((h.memory, h.memory_swap, h.pids_limit), (64 << 20, 128 << 20, Some(0)));
        // Within the swap already set, memory alone is fine.
        let u = UpdateConfig {
            memory: 32 << 20,
            ..Default::default()
        };
        merge(&mut h, &u).unwrap();
        assert_eq!(h.memory, 32 << 20);
        h.nano_cpus = 1_000_000_000;
        let u = UpdateConfig {
            cpu_quota: 50_000,
            ..Default::default()
        };
        assert!(merge(&mut h, &u).unwrap_err().contains("NanoCPUs has already been set"));
    }

    #[test]
    fn only_what_is_set_is_applied() {
        let r = resources(&UpdateConfig {
            memory: 64 << 20,
            nano_cpus: 500_000_000,
            pids_limit: Some(0),
            ..Default::default()
        })
        .unwrap();
        let m = r.memory().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(64 << 20), None));
        assert_eq!(r.cpu().clone().unwrap().quota(), Some(50_000));
        assert_eq!(r.pids().unwrap().limit(), -1);
        assert!(validate(&UpdateConfig {
            memory: 1 << 20,
            ..Default::default()
        })
        .is_err());
    }
}
