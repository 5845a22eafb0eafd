//! Loading and checking a bundle's config.json. Every refusal names the field and value.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {path}: {msg}")]
    Parse { path: PathBuf, msg: String },
    #[error("invalid config.json: {field}: {msg}")]
    Invalid { field: String, msg: String },
}

pub type Result<T> = std::result::Result<T, SpecError>;

fn invalid(field: impl Into<String>, msg: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        msg: msg.into(),
    }
}

/// Read `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|source| SpecError::Read {
        path: path.clone(),
        source,
    })?;
    parse(&data).map_err(|msg| SpecError::Parse { path, msg })
}

pub fn parse(data: &[u8]) -> std::result::Result<Spec, String> {
    serde_json::from_slice(data).map_err(|e| e.to_string())
}

/// The rootfs path, made absolute against the bundle.
pub fn rootfs(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec.root().as_ref().ok_or_else(|| invalid("root", "missing"))?;
    let p = root.path();
    let abs = if p.is_absolute() { p.clone() } else { bundle.join(p) };
    if !abs.is_dir() {
        return Err(invalid("root.path", format!("{}: not a directory", abs.display())));
    }
    Ok(abs)
}

/// Check what the kernel would otherwise reject obscurely, or what must never half-apply.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<()> {
    let version = spec.version();
    if !version.starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("{version:?} is not a 1.x runtime-spec version"),
        ));
    }
    rootfs(spec, bundle)?;
    let process = spec.process().as_ref().ok_or_else(|| invalid("process", "missing"))?;
    validate_process(process)?;
    let linux = spec.linux().as_ref().ok_or_else(|| invalid("linux", "missing"))?;

    let mut seen = HashSet::new();
    let mut new_ns = HashSet::new();
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                "linux.namespaces",
                format!("namespace {:?} listed twice", ns.typ()),
            ));
        }
        match ns.path() {
            Some(p) if !p.is_absolute() => {
                return Err(invalid(
                    format!("linux.namespaces[{}].path", ns_name(ns.typ())),
                    format!("{} is not absolute", p.display()),
                ))
            }
            Some(p) if !p.exists() => {
                return Err(invalid(
                    format!("linux.namespaces[{}].path", ns_name(ns.typ())),
                    format!("{}: no such file", p.display()),
                ))
            }
            Some(_) => {}
            None => {
                new_ns.insert(ns.typ());
            }
        }
    }
    let has = |t: LinuxNamespaceType| seen.contains(&t);
    let user_new = new_ns.contains(&LinuxNamespaceType::User);
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if user_new && !maps {
        return Err(invalid(
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    if maps && !has(LinuxNamespaceType::User) {
        return Err(invalid(
            "linux.uidMappings",
            "id mappings given without a user namespace",
        ));
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !new_ns.contains(&LinuxNamespaceType::Uts) {
        return Err(invalid("hostname", "setting a hostname needs a new uts namespace"));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !new_ns.contains(&LinuxNamespaceType::Uts) {
        return Err(invalid("domainname", "setting a domainname needs a new uts namespace"));
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) && !new_ns.contains(&LinuxNamespaceType::Time) {
        return Err(invalid("linux.timeOffsets", "time offsets need a new time namespace"));
    }
    if let Some(offs) = linux.time_offsets() {
        for k in offs.keys() {
            if k != "monotonic" && k != "boottime" {
                return Err(invalid(
                    "linux.timeOffsets",
                    format!("unknown clock {k:?} (monotonic or boottime)"),
                ));
            }
        }
    }
    if !has(LinuxNamespaceType::Mount) {
        return Err(invalid("linux.namespaces", "a mount namespace is required"));
    }
    // A namespace of the container's own: a new one, or one joined by path that is not
    // the runtime's (e.g. an engine's prepared network namespace), as runc decides.
    let own = |t: LinuxNamespaceType| {
        new_ns.contains(&t)
            || linux
                .namespaces()
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|n| n.typ() == t)
                .and_then(|n| n.path().as_ref())
                .is_some_and(|p| !same_file(p, &format!("/proc/self/ns/{}", proc_ns_name(t))))
    };
    for (key, _) in linux.sysctl().as_ref().into_iter().flatten() {
        validate_sysctl(key, &own)?;
    }
    for (i, m) in spec.mounts().as_deref().unwrap_or_default().iter().enumerate() {
        if m.destination().as_os_str().is_empty() {
            return Err(invalid(format!("mounts[{i}].destination"), "empty"));
        }
    }
    if let Some(p) = linux.rootfs_propagation() {
        if !matches!(
            p.as_str(),
            "" | "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" | "unbindable" | "runbindable"
        ) {
            return Err(invalid("linux.rootfsPropagation", format!("unknown propagation {p:?}")));
        }
    }
    Ok(())
}

fn validate_process(process: &oci_spec::runtime::Process) -> Result<()> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args", "empty: nothing to run"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{} is not absolute", process.cwd().display()),
        ));
    }
    let mut seen = HashSet::new();
    for r in process.rlimits().as_deref().unwrap_or_default() {
        if !seen.insert(format!("{:?}", r.typ())) {
            return Err(invalid("process.rlimits", format!("{:?} given twice", r.typ())));
        }
        if r.soft() > r.hard() {
            return Err(invalid(
                "process.rlimits",
                format!("{:?}: soft limit {} above hard limit {}", r.typ(), r.soft(), r.hard()),
            ));
        }
    }
    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(invalid("process.oomScoreAdj", format!("{adj} outside -1000..1000")));
        }
    }
    for e in process.env().as_deref().unwrap_or_default() {
        if !e.contains('=') {
            return Err(invalid("process.env", format!("{e:?} is not KEY=VALUE")));
        }
    }
    Ok(())
}

/// Whether two paths name the same file (device and inode).
fn same_file(a: &Path, b: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// The namespace's file name under /proc/PID/ns.
fn proc_ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Network => "net",
        other => ns_name(other),
    }
}

/// Namespaced sysctls only, as runc allows them; `own(t)`: the container has a
/// namespace of type `t` of its own.
fn validate_sysctl(key: &str, own: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<()> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let field = format!("linux.sysctl[{key}]");
    if key.contains("..") || key.starts_with('/') {
        return Err(invalid(field, "not a sysctl name"));
    }
    if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        if !own(LinuxNamespaceType::Ipc) {
            return Err(invalid(field, "needs an ipc namespace of the container's own"));
        }
        return Ok(());
    }
    if key.starts_with("net.") {
        if !own(LinuxNamespaceType::Network) {
            return Err(invalid(field, "needs a network namespace of the container's own"));
        }
        return Ok(());
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        if !own(LinuxNamespaceType::Uts) {
            return Err(invalid(field, "needs a uts namespace of the container's own"));
        }
        return Ok(());
    }
    Err(invalid(field, "not a namespaced sysctl; refusing to change the host's"))
}

pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(config: serde_json::Value) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("rootfs")).unwrap();
        std::fs::write(d.path().join("config.json"), config.to_string()).unwrap();
        d
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
        })
    }

    fn check(config: serde_json::Value) -> std::result::Result<(), String> {
        let b = bundle_with(config);
        let spec = load(b.path()).map_err(|e| e.to_string())?;
        validate(&spec, b.path()).map_err(|e| e.to_string())
    }

    #[test]
    fn valid_config_passes() {
        check(base()).unwrap();
    }

    /// A net.* sysctl needs a network namespace of the container's own: a new one, or
    /// one joined by path (an engine's prepared namespace), but not the runtime's.
    #[test]
    fn net_sysctls_with_a_joined_network_namespace() {
        let with_net = |ns: serde_json::Value| {
            let mut c = base();
            c["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, ns]);
            c["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
            check(c)
        };
        with_net(serde_json::json!({"type": "network"})).unwrap();
        let e = with_net(serde_json::json!({"type": "network", "path": "/proc/self/ns/net"})).unwrap_err();
        assert!(e.contains("net.ipv4.ip_forward") && e.contains("own"), "{e}");
        let mut other = std::process::Command::new("unshare")
            .args(["-n", "sleep", "30"])
            .spawn()
            .unwrap();
        let path = format!("/proc/{}/ns/net", other.id());
        // The child's namespace exists once unshare has run (before sleep is exec'd).
        let t = std::time::Instant::now();
        while same_file(Path::new(&path), "/proc/self/ns/net") && t.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let r = with_net(serde_json::json!({"type": "network", "path": path}));
        let _ = other.kill();
        let _ = other.wait();
        r.unwrap();
    }

    #[test]
    fn unknown_namespace_is_named() {
        let mut c = base();
        c["linux"]["namespaces"][1]["type"] = "bogus".into();
        let e = check(c).unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn refusals_name_field_and_value() {
        type Mutate = fn(&mut serde_json::Value);
        let cases: Vec<(Mutate, &str)> = vec![
            (|c| c["process"]["args"] = serde_json::json!([]), "process.args"),
            (|c| c["process"]["cwd"] = "rel".into(), "process.cwd"),
            (|c| c["ociVersion"] = "0.9".into(), "ociVersion"),
            (|c| c["root"]["path"] = "nope".into(), "root.path"),
            (|c| c["hostname"] = "h".into(), "hostname"),
            (
                |c| c["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"}),
                "vm.swappiness",
            ),
            (
                |c| c["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]),
                "mount namespace",
            ),
            (
                |c| c["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "mount"}]),
                "twice",
            ),
            (
                |c| c["process"]["rlimits"] = serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]),
                "soft limit 10",
            ),
            (
                |c| c["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "user"}]),
                "uidMappings",
            ),
        ];
        for (mutate, want) in cases {
            let mut c = base();
            mutate(&mut c);
            let e = check(c).unwrap_err();
            assert!(e.contains(want), "expected {want:?} in {e:?}");
        }
    }
}
