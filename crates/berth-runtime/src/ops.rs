//! Helpers behind CLI commands that are not part of a container's life cycle:
//! `features`, `spec`, `ps`, `events` documents.

use std::path::Path;

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::{caps, mountopts, namespaces, seccomp, state};

/// The runtime-spec features document.
pub fn features() -> Value {
    let (actions, operators, archs) = seccomp::known();
    let flags = [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ];
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.starts_with('Y'));
    let selinux = Path::new("/sys/fs/selinux/enforce").exists();
    let v = libseccomp::ScmpVersion::current().ok();
    let mut annotations = json!({
        "org.opencontainers.runc.checkpoint.enabled": "false",
        "io.github.berth.runtime.version": env!("CARGO_PKG_VERSION"),
    });
    if let Some(v) = v {
        annotations["io.github.seccomp.libseccomp.version"] = format!("{}.{}.{}", v.major, v.minor, v.micro).into();
    }
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": state::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mountopts::known_options(),
        "linux": {
            "namespaces": namespaces::all_names(),
            "capabilities": caps::all_names(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": actions,
                "operators": operators,
                "archs": archs,
                "knownFlags": flags,
                "supportedFlags": flags,
            },
            "apparmor": {"enabled": apparmor},
            "selinux": {"enabled": selinux},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}},
        },
        "annotations": annotations,
    })
}

/// The default config.json of `spec`, as runc writes it.
pub fn default_spec(rootless: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    let mut linux = json!({
        "resources": {"devices": [{"allow": false, "access": "rwm"}]},
        "namespaces": [],
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
            "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
        ],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    });
    if rootless {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        namespaces.push(json!({"type": "user"}));
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux.as_object_mut().map(|o| o.remove("resources"));
        // No gid=5 on devpts and no sysfs of our own without a network namespace.
        mounts[2] = json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]});
        mounts[5] = json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        mounts.pop();
    } else {
        namespaces.push(json!({"type": "network"}));
        namespaces.push(json!({"type": "cgroup"}));
    }
    linux["namespaces"] = Value::Array(namespaces);
    json!({
        "ociVersion": state::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": mounts,
        "linux": linux,
    })
}

/// Check that the default spec parses as a Spec (kept honest by a test).
pub fn default_spec_parsed(rootless: bool) -> Result<Spec, String> {
    serde_json::from_value(default_spec(rootless)).map_err(|e| e.to_string())
}

/// runc's `events` stats document from our cgroup statistics.
pub fn stats_event(id: &str, s: &berth_cgroups::Stats) -> Value {
    let entries = |v: &[berth_cgroups::BlkioEntry]| {
        v.iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect::<Vec<_>>()
    };
    let mem = |m: &berth_cgroups::MemoryEntry| json!({"limit": m.limit, "usage": m.usage, "max": m.max_usage, "failcnt": m.failcnt});
    let hugetlb: serde_json::Map<String, Value> = s
        .hugetlb
        .iter()
        .map(|(k, h)| {
            (
                k.clone(),
                json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.failcnt}),
            )
        })
        .collect();
    json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": {
                "usage": {"total": s.cpu.usage_total, "percpu": s.cpu.percpu_usage, "kernel": s.cpu.usage_kernel, "user": s.cpu.usage_user},
                "throttling": {"periods": s.cpu.throttling_periods, "throttledPeriods": s.cpu.throttling_throttled_periods, "throttledTime": s.cpu.throttling_throttled_time},
            },
            "memory": {
                "cache": s.memory.cache,
                "usage": mem(&s.memory.usage),
                "swap": mem(&s.memory.swap_usage),
                "kernel": mem(&s.memory.kernel_usage),
                "raw": s.memory.raw,
            },
            "pids": {"current": s.pids.current, "limit": s.pids.limit},
            "blkio": {
                "ioServiceBytesRecursive": entries(&s.blkio.io_service_bytes_recursive),
                "ioServicedRecursive": entries(&s.blkio.io_serviced_recursive),
            },
            "hugetlb": hugetlb,
        }
    })
}

/// `ps`: run ps(1) with `args` and keep the header and the lines of the container's pids.
pub fn ps_table(pids: &[i32], args: &[String]) -> Result<String, String> {
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| format!("run ps: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| "ps output has no PID column".to_string())?;
    let mut res = String::from(header);
    res.push('\n');
    for l in lines {
        if let Some(p) = l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()) {
            if pids.contains(&p) {
                res.push_str(l);
                res.push('\n');
            }
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_specs_parse() {
        default_spec_parsed(false).unwrap();
        default_spec_parsed(true).unwrap();
    }

    #[test]
    fn features_document_shape() {
        let f = features();
        // The spec's schema, as oci-spec models it, accepts the document.
        serde_json::from_value::<oci_spec::runtime::Features>(f.clone()).unwrap();
        assert_eq!(f["ociVersionMax"], "1.2.0");
        assert!(f["linux"]["namespaces"].as_array().unwrap().len() == 8);
        assert!(f["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "CAP_SYS_ADMIN"));
    }

    #[test]
    fn ps_filters_by_pid() {
        let me = std::process::id() as i32;
        let t = ps_table(&[me], &[]).unwrap();
        assert_eq!(t.lines().count(), 2, "{t}");
    }
}
