//! A container's OCI runtime config from its Docker `Config`/`HostConfig`, with Docker's
//! defaults: 14 capabilities, the default seccomp profile, masked and read-only paths,
//! a private /dev with the standard devices, 64 MB /dev/shm; `--privileged`,
//! `--cap-add/--cap-drop`, `--security-opt` change them as Docker does.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use serde_json::{json, Value};

use crate::seccomp_profile;
use crate::types::{ContainerConfig, HostConfig};

pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("invalid {field}: {problem}")]
    Invalid { field: String, problem: String },
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
}

fn invalid(field: &str, problem: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// What berthd knows beyond the container's documents.
pub struct SpecInput<'a> {
    pub id: &'a str,
    pub config: &'a ContainerConfig,
    pub host: &'a HostConfig,
    /// The mounted overlay.
    pub rootfs: &'a Path,
    /// Cgroup path for the container (e.g. `/berth/<id>`).
    pub cgroups_path: String,
    /// Files berthd made for /etc/{hostname,hosts,resolv.conf}.
    pub etc_files: Vec<(String, PathBuf)>,
    /// The host's cgroup mode (cgroup namespace default differs).
    pub cgroup_v2: bool,
    /// Network namespace to join ("none"/default: a new one; None: the host's).
    pub netns: NetNs,
    /// `--init`: this static binary runs as PID 1 (at /sbin/docker-init) and starts the command.
    pub init: Option<PathBuf>,
    /// Volumes, resolved by the engine: (destination, host directory, read-only).
    pub volumes: Vec<(String, PathBuf, bool)>,
}

/// Where `--init` puts the init, as Docker does.
pub const INIT_IN_CONTAINER: &str = "/sbin/docker-init";

pub enum NetNs {
    New,
    Host,
    Path(PathBuf),
}

/// The command line: Docker's Entrypoint + Cmd.
pub fn command(config: &ContainerConfig) -> Vec<String> {
    let mut args = config.entrypoint.clone().unwrap_or_default();
    args.extend(config.cmd.clone().unwrap_or_default());
    args
}

/// Every capability this host lets us hold (our bounding set): what `--privileged` gets.
pub fn all_caps() -> Vec<String> {
    let held = caps::read(None, caps::CapSet::Bounding).unwrap_or_else(|_| caps::all());
    let mut v: Vec<String> = held.into_iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

/// The capability set after Docker's rules (`ALL` allowed in add and drop).
pub fn capabilities(host: &HostConfig) -> Result<Vec<String>, SpecError> {
    let norm = |c: &str| {
        let u = c.to_ascii_uppercase();
        if u == "ALL" || u.starts_with("CAP_") {
            u
        } else {
            format!("CAP_{u}")
        }
    };
    let all = all_caps();
    for c in host.cap_add.iter().chain(&host.cap_drop) {
        let n = norm(c);
        if n != "ALL" && !all.contains(&n) {
            return Err(invalid("CapAdd/CapDrop", format!("unknown capability: {c:?}")));
        }
    }
    if host.privileged {
        return Ok(all);
    }
    let add: Vec<String> = host.cap_add.iter().map(|c| norm(c)).collect();
    let drop: Vec<String> = host.cap_drop.iter().map(|c| norm(c)).collect();
    let mut set: Vec<String> = if add.iter().any(|c| c == "ALL") {
        all.clone()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if drop.iter().any(|c| c == "ALL") {
        set.clear();
    } else {
        set.retain(|c| !drop.contains(c));
    }
    for c in add {
        if c != "ALL" && !set.contains(&c) && !drop.contains(&c) {
            set.push(c);
        }
    }
    Ok(set)
}

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn read_in_root(rootfs: &Path, file: &str) -> String {
    let Ok(root) = std::fs::File::open(rootfs) else {
        return String::new();
    };
    berth_runtime::fsutil::open_in_root(&root, Path::new(file), OFlag::O_RDONLY, Mode::empty())
        .ok()
        .and_then(|fd| std::io::read_to_string(std::fs::File::from(fd)).ok())
        .unwrap_or_default()
}

fn passwd(rootfs: &Path) -> Vec<Passwd> {
    read_in_root(rootfs, "/etc/passwd")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Passwd {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"/").to_string(),
            })
        })
        .collect()
}

/// (name, gid, members)
fn groups(rootfs: &Path) -> Vec<(String, u32, Vec<String>)> {
    read_in_root(rootfs, "/etc/group")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let members = f
                .get(3)
                .map(|m| m.split(',').filter(|s| !s.is_empty()).map(String::from).collect());
            Some((
                f.first()?.to_string(),
                f.get(2)?.parse().ok()?,
                members.unwrap_or_default(),
            ))
        })
        .collect()
}

/// Docker's `--user` rules: `name|uid[:group|gid]`, names looked up in the image.
pub fn resolve_user(rootfs: &Path, user: &str, group_add: &[String]) -> Result<Value, SpecError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let pw = passwd(rootfs);
    let grp = groups(rootfs);
    let (uid, mut gid, home, name) = if u.is_empty() {
        let e = pw.iter().find(|p| p.uid == 0);
        (
            0,
            e.map_or(0, |p| p.gid),
            e.map_or("/root".into(), |p| p.home.clone()),
            "root".to_string(),
        )
    } else if let Ok(uid) = u.parse::<u32>() {
        let e = pw.iter().find(|p| p.uid == uid);
        (
            uid,
            e.map_or(0, |p| p.gid),
            e.map_or("/".into(), |p| p.home.clone()),
            e.map_or(String::new(), |p| p.name.clone()),
        )
    } else {
        let e = pw
            .iter()
            .find(|p| p.name == u)
            .ok_or_else(|| SpecError::NoUser(u.into()))?;
        (e.uid, e.gid, e.home.clone(), e.name.clone())
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => grp
                .iter()
                .find(|(n, _, _)| n == g)
                .map(|(_, id, _)| *id)
                .ok_or_else(|| SpecError::NoGroup(g.into()))?,
        };
    }
    let mut extra: Vec<u32> = grp
        .iter()
        .filter(|(_, id, members)| !name.is_empty() && members.contains(&name) && *id != gid)
        .map(|(_, id, _)| *id)
        .collect();
    for g in group_add {
        let id = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => grp
                .iter()
                .find(|(n, _, _)| n == g)
                .map(|(_, id, _)| *id)
                .ok_or_else(|| SpecError::NoGroup(g.clone()))?,
        };
        extra.push(id);
    }
    Ok(json!({"uid": uid, "gid": gid, "additionalGids": extra, "home": home}))
}

fn merge_env(config: &ContainerConfig, hostname: &str, home: &str) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let key = |s: &str| s.split('=').next().unwrap_or("").to_string();
    let has = |env: &Vec<String>, k: &str| env.iter().any(|e| key(e) == k);
    if !config.env.iter().any(|e| key(e) == "PATH") {
        env.push(DEFAULT_PATH.into());
    }
    env.push(format!("HOSTNAME={hostname}"));
    for e in &config.env {
        let k = key(e);
        env.retain(|x| key(x) != k);
        env.push(e.clone());
    }
    if config.tty && !has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

fn security_opts(host: &HostConfig) -> Result<(bool, Option<String>), SpecError> {
    let mut nnp = false;
    let mut seccomp: Option<String> = None;
    for o in &host.security_opt {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
        match k {
            "no-new-privileges" => nnp = v.is_empty() || v == "true",
            "seccomp" => seccomp = Some(v.to_string()),
            "label" | "apparmor" => {}
            _ => return Err(invalid("SecurityOpt", format!("unknown option {o:?}"))),
        }
    }
    Ok((nnp, seccomp))
}

fn seccomp(host: &HostConfig, caps: &[String], opt: Option<String>) -> Result<Option<Value>, SpecError> {
    if host.privileged && opt.is_none() {
        return Ok(None);
    }
    let profile = match opt.as_deref() {
        Some("unconfined") => return Ok(None),
        None | Some("") | Some("builtin") => seccomp_profile::DEFAULT_PROFILE.to_string(),
        Some(v) if v.trim_start().starts_with('{') => v.to_string(),
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| invalid("SecurityOpt", format!("seccomp profile {path}: {e}")))?
        }
    };
    seccomp_profile::to_oci(&profile, caps)
        .map(Some)
        .map_err(|e| invalid("SecurityOpt", e.to_string()))
}

fn mount(dest: &str, typ: &str, src: &str, opts: &[&str]) -> Value {
    json!({"destination": dest, "type": typ, "source": src, "options": opts})
}

fn default_mounts(host: &HostConfig) -> Vec<Value> {
    let ro = if host.privileged { "rw" } else { "ro" };
    let shm = if host.shm_size > 0 { host.shm_size } else { 64 << 20 };
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", ro]),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", ro],
        ),
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    ]
}

/// `-v SRC:DST[:OPTS]` and `--mount type=bind|tmpfs` and `--tmpfs`.
fn user_mounts(host: &HostConfig) -> Result<Vec<Value>, SpecError> {
    let mut out = Vec::new();
    for b in &host.binds {
        let parts: Vec<&str> = b.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, o] => (*s, *d, *o),
            _ => {
                return Err(invalid(
                    "HostConfig.Binds",
                    format!("invalid volume specification: {b:?}"),
                ))
            }
        };
        if !src.starts_with('/') {
            // A named volume: resolved by the engine into `SpecInput::volumes`.
            continue;
        }
        if !dst.starts_with('/') {
            return Err(invalid(
                "HostConfig.Binds",
                format!("{b:?}: the container path must be absolute"),
            ));
        }
        let mut o = vec!["rbind".to_string()];
        for opt in opts.split(',').filter(|s| !s.is_empty()) {
            match opt {
                "ro" | "rw" => o.push(opt.into()),
                "z" | "Z" | "nocopy" => {}
                "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => o.push(opt.into()),
                _ => return Err(invalid("HostConfig.Binds", format!("{b:?}: unknown option {opt:?}"))),
            }
        }
        if !Path::new(src).exists() {
            std::fs::create_dir_all(src)
                .map_err(|e| invalid("HostConfig.Binds", format!("create host path {src}: {e}")))?;
        }
        out.push(json!({"destination": dst, "type": "bind", "source": src, "options": o}));
    }
    for m in &host.mounts {
        match m.kind.as_str() {
            "bind" => {
                let mut o = vec!["rbind"];
                if m.read_only {
                    o.push("ro");
                }
                if !Path::new(&m.source).exists() {
                    return Err(invalid(
                        "HostConfig.Mounts",
                        format!("bind source path does not exist: {}", m.source),
                    ));
                }
                out.push(json!({"destination": m.target, "type": "bind", "source": m.source, "options": o}));
            }
            "tmpfs" => {
                let mut o = vec!["nosuid".to_string(), "nodev".to_string()];
                if let Some(size) = m.extra.get("TmpfsOptions").and_then(|t| t.get("SizeBytes")) {
                    o.push(format!("size={size}"));
                }
                out.push(json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": o}));
            }
            "volume" => {}
            other => {
                return Err(invalid(
                    "HostConfig.Mounts",
                    format!("mount type {other:?} is not supported (bind, volume, tmpfs)"),
                ))
            }
        }
    }
    for (dst, opts) in &host.tmpfs {
        let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        o.extend(opts.split(',').filter(|s| !s.is_empty()).map(String::from));
        out.push(json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": o}));
    }
    Ok(out)
}

fn resources(host: &HostConfig, devices: &[Value]) -> Result<Value, SpecError> {
    let mut r = json!({});
    let mut mem = json!({});
    if host.memory > 0 {
        mem["limit"] = json!(host.memory);
        // Docker: no MemorySwap means swap equal to the memory limit (memsw = 2 × memory).
        let swap = match host.memory_swap {
            0 => host.memory * 2,
            s => s,
        };
        if swap > 0 && swap < host.memory {
            return Err(invalid(
                "HostConfig.MemorySwap",
                "minimum memoryswap limit should be larger than memory limit",
            ));
        }
        mem["swap"] = json!(swap);
    }
    if host.memory_reservation > 0 {
        mem["reservation"] = json!(host.memory_reservation);
    }
    if let Some(s) = host.memory_swappiness.filter(|s| *s >= 0) {
        mem["swappiness"] = json!(s);
    }
    if host.oom_kill_disable == Some(true) {
        mem["disableOOMKiller"] = json!(true);
    }
    if mem.as_object().is_some_and(|m| !m.is_empty()) {
        r["memory"] = mem;
    }
    let mut cpu = json!({});
    if host.cpu_shares > 0 {
        cpu["shares"] = json!(host.cpu_shares);
    }
    if host.nano_cpus > 0 {
        if host.cpu_quota > 0 || host.cpu_period > 0 {
            return Err(invalid(
                "HostConfig.NanoCpus",
                "conflicting options: Nano CPUs and CPU Period/Quota cannot both be set",
            ));
        }
        cpu["period"] = json!(100_000);
        cpu["quota"] = json!(host.nano_cpus / 10_000);
    }
    if host.cpu_period > 0 {
        cpu["period"] = json!(host.cpu_period);
    }
    if host.cpu_quota > 0 {
        cpu["quota"] = json!(host.cpu_quota);
    }
    if !host.cpuset_cpus.is_empty() {
        cpu["cpus"] = json!(host.cpuset_cpus);
    }
    if !host.cpuset_mems.is_empty() {
        cpu["mems"] = json!(host.cpuset_mems);
    }
    if cpu.as_object().is_some_and(|m| !m.is_empty()) {
        r["cpu"] = cpu;
    }
    if let Some(p) = host.pids_limit.filter(|p| *p != 0) {
        r["pids"] = json!({"limit": p});
    }
    let mut rules = vec![json!({"allow": host.privileged, "access": "rwm"})];
    for d in devices {
        rules
            .push(json!({"allow": true, "type": d["type"], "major": d["major"], "minor": d["minor"], "access": "rwm"}));
    }
    r["devices"] = json!(rules);
    Ok(r)
}

fn device(host_path: &str, container_path: &str) -> Result<Value, SpecError> {
    let md = std::fs::metadata(host_path).map_err(|e| invalid("HostConfig.Devices", format!("{host_path}: {e}")))?;
    let ft = md.file_type();
    let typ = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return Err(invalid("HostConfig.Devices", format!("{host_path} is not a device")));
    };
    let rdev = md.rdev();
    Ok(json!({
        "path": container_path, "type": typ,
        "major": nix::sys::stat::major(rdev), "minor": nix::sys::stat::minor(rdev),
        "fileMode": md.mode() & 0o7777, "uid": md.uid(), "gid": md.gid(),
    }))
}

/// Every device node under /dev on the host, for `--privileged`.
fn host_devices() -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            let s = p.to_string_lossy().to_string();
            if ft.is_dir() && !matches!(s.as_str(), "/dev/pts" | "/dev/shm" | "/dev/mqueue") {
                stack.push(p);
            } else if (ft.is_char_device() || ft.is_block_device()) && s != "/dev/console" && s != "/dev/ptmx" {
                if let Ok(d) = device(&s, &s) {
                    out.push(d);
                }
            }
        }
    }
    out
}

fn rlimits(host: &HostConfig) -> Result<Vec<Value>, SpecError> {
    host.ulimits
        .iter()
        .map(|u| {
            let name = format!("RLIMIT_{}", u.name.to_ascii_uppercase());
            const KNOWN: [&str; 16] = [
                "RLIMIT_AS",
                "RLIMIT_CORE",
                "RLIMIT_CPU",
                "RLIMIT_DATA",
                "RLIMIT_FSIZE",
                "RLIMIT_LOCKS",
                "RLIMIT_MEMLOCK",
                "RLIMIT_MSGQUEUE",
                "RLIMIT_NICE",
                "RLIMIT_NOFILE",
                "RLIMIT_NPROC",
                "RLIMIT_RSS",
                "RLIMIT_RTPRIO",
                "RLIMIT_RTTIME",
                "RLIMIT_SIGPENDING",
                "RLIMIT_STACK",
            ];
            if !KNOWN.contains(&name.as_str()) {
                return Err(invalid("HostConfig.Ulimits", format!("unknown ulimit {:?}", u.name)));
            }
            Ok(json!({"type": name, "soft": u.soft, "hard": u.hard}))
        })
        .collect()
}

fn namespace_mode(field: &str, mode: &str) -> Result<bool, SpecError> {
    match mode {
        "" | "private" | "shareable" => Ok(false),
        "host" => Ok(true),
        other => Err(invalid(field, format!("mode {other:?} is not supported"))),
    }
}

/// Build config.json for the container.
pub fn build(input: &SpecInput) -> Result<Value, SpecError> {
    let c = input.config;
    let h = input.host;
    let mut args = command(c);
    if args.is_empty() {
        return Err(invalid("Cmd", "no command specified"));
    }
    if let Some(init) = &input.init {
        if !init.exists() {
            return Err(invalid(
                "HostConfig.Init",
                format!(
                    "init binary {} not found (install tini, or set init-path)",
                    init.display()
                ),
            ));
        }
        args.splice(0..0, [INIT_IN_CONTAINER.to_string(), "--".to_string()]);
    }
    let hostname = if c.hostname.is_empty() {
        input.id[..12.min(input.id.len())].to_string()
    } else {
        c.hostname.clone()
    };
    let mut user = resolve_user(input.rootfs, &c.user, &h.group_add)?;
    let home = user["home"].as_str().unwrap_or("/").to_string();
    user.as_object_mut().map(|u| u.remove("home"));
    let caps = capabilities(h)?;
    let (nnp, seccomp_opt) = security_opts(h)?;
    let cwd = if c.working_dir.is_empty() { "/" } else { &c.working_dir };
    if !cwd.starts_with('/') {
        return Err(invalid("WorkingDir", format!("{cwd:?} is not an absolute path")));
    }
    let mut process = json!({
        "terminal": c.tty,
        "user": user,
        "args": args,
        "env": merge_env(c, &hostname, &home),
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": nnp,
        "rlimits": rlimits(h)?,
    });
    if h.oom_score_adj != 0 {
        process["oomScoreAdj"] = json!(h.oom_score_adj);
    }
    if let Some([hh, ww]) = h.console_size {
        if hh > 0 && ww > 0 {
            process["consoleSize"] = json!({"height": hh, "width": ww});
        }
    }
    let mut mounts = default_mounts(h);
    for (dst, src) in &input.etc_files {
        mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
    }
    if let Some(init) = &input.init {
        mounts.push(json!({"destination": INIT_IN_CONTAINER, "type": "bind", "source": init, "options": ["bind", "ro", "nosuid", "nodev"]}));
    }
    let mut user_mounts = user_mounts(h)?;
    for (dst, src, ro) in &input.volumes {
        let mut o = vec!["rbind"];
        if *ro {
            o.push("ro");
        }
        user_mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": o}));
    }
    // A user's mount over one of ours replaces it.
    mounts.retain(|m| !user_mounts.iter().any(|u| u["destination"] == m["destination"]));
    mounts.extend(user_mounts);

    let mut namespaces = vec![json!({"type": "mount"})];
    if !namespace_mode("HostConfig.PidMode", &h.pid_mode)? {
        namespaces.push(json!({"type": "pid"}));
    }
    if !namespace_mode("HostConfig.IpcMode", &h.ipc_mode)? {
        namespaces.push(json!({"type": "ipc"}));
    }
    if !namespace_mode("HostConfig.UTSMode", &h.uts_mode)? {
        namespaces.push(json!({"type": "uts"}));
    }
    match &input.netns {
        NetNs::New => namespaces.push(json!({"type": "network"})),
        NetNs::Host => {}
        NetNs::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
    }
    let private_cgroupns = match h.cgroupns_mode.as_str() {
        "" => input.cgroup_v2,
        "private" => true,
        "host" => false,
        other => return Err(invalid("HostConfig.CgroupnsMode", format!("invalid mode {other:?}"))),
    };
    if private_cgroupns {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let mut devices: Vec<Value> = Vec::new();
    if h.privileged {
        devices = host_devices();
    }
    for d in &h.devices {
        let dst = if d.path_in_container.is_empty() {
            &d.path_on_host
        } else {
            &d.path_in_container
        };
        devices.push(device(&d.path_on_host, dst)?);
    }
    let sysctl: BTreeMap<&String, &String> = h.sysctls.iter().collect();
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources(h, &devices)?,
        "cgroupsPath": input.cgroups_path,
        "devices": devices,
        "sysctl": sysctl,
    });
    if !h.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    if let Some(s) = seccomp(h, &caps, seccomp_opt)? {
        linux["seccomp"] = s;
    }
    let mut spec = json!({
        "ociVersion": berth_runtime::state::OCI_VERSION,
        "process": process,
        "root": {"path": input.rootfs, "readonly": h.readonly_rootfs},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
    });
    if !c.domainname.is_empty() {
        spec["domainname"] = json!(c.domainname);
    }
    if h.uts_mode == "host" {
        spec.as_object_mut().map(|s| s.remove("hostname"));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::HostConfig;

    #[test]
    fn caps_rules() {
        let mut h = HostConfig::default();
        assert_eq!(capabilities(&h).unwrap().len(), 14);
        h.cap_drop = vec!["ALL".into()];
        h.cap_add = vec!["net_admin".into()];
        assert_eq!(capabilities(&h).unwrap(), ["CAP_NET_ADMIN"]);
        h.cap_add = vec!["NOPE".into()];
        assert!(capabilities(&h).unwrap_err().to_string().contains("NOPE"));
        let p = HostConfig {
            privileged: true,
            ..Default::default()
        };
        assert!(capabilities(&p).unwrap().len() > 30);
    }

    #[test]
    fn users_from_the_image() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nwww:x:33:\nstaff:x:50:www\n").unwrap();
        let u = resolve_user(d.path(), "www", &[]).unwrap();
        assert_eq!(
            u,
            json!({"uid": 33, "gid": 33, "additionalGids": [50], "home": "/var/www"})
        );
        let u = resolve_user(d.path(), "1000:staff", &["7".into()]).unwrap();
        assert_eq!(u["uid"], 1000);
        assert_eq!(u["gid"], 50);
        assert_eq!(u["additionalGids"], json!([7]));
        assert!(matches!(
            resolve_user(d.path(), "nobody", &[]),
            Err(SpecError::NoUser(_))
        ));
    }

    #[test]
    fn env_defaults() {
        let c = ContainerConfig {
            env: vec!["A=1".into(), "HOME=/x".into()],
            tty: true,
            ..Default::default()
        };
        let e = merge_env(&c, "h", "/root");
        assert_eq!(e, [DEFAULT_PATH, "HOSTNAME=h", "A=1", "HOME=/x", "TERM=xterm"]);
    }
}
