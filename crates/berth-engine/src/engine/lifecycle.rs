//! create, start, stop, kill, restart, pause, rename, remove, and what happens when a
//! container's main process exits (restart policy, auto-remove).

use std::io::BufRead;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use berth_runtime::container as rt;
use nix::sys::signal::Signal;
use tokio::sync::oneshot;

use super::util::{familiar, is_mounted, parse_signal, parse_size, unmount, write_file};
use super::{lock, monitor_call, monitor_connect, read_reply, Container, Engine, PendingAttach};
use crate::error::{io_err, EngineError, Result};
use crate::monitor::{self, ExitInfo, LogTarget, MonitorConfig, Reply, Request};
use crate::ocispec::{self, NetNs, SpecInput};
use crate::record::{self, Record, State};
use crate::types::{ContainerConfig, CreateBody};

/// glibc tunables for every monitor (see `spawn_monitor`).
const MONITOR_TUNABLES: &str = "glibc.malloc.tcache_count=0";

/// What `attach` hands back: a stream now, or one once the container starts.
pub enum Attached {
    Now(std::os::unix::net::UnixStream),
    Later(oneshot::Receiver<Result<std::os::unix::net::UnixStream>>),
}

/// The image's config under the client's, by Docker's rules.
fn merge_image_config(c: &mut ContainerConfig, img: &oci_spec::image::ImageConfiguration) {
    let Some(ic) = img.config() else { return };
    if c.user.is_empty() {
        c.user = ic.user().clone().unwrap_or_default();
    }
    let key = |s: &str| s.split('=').next().unwrap_or("").to_string();
    let mut env: Vec<String> = ic
        .env()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !c.env.iter().any(|u| key(u) == key(e)))
        .collect();
    env.append(&mut c.env);
    c.env = env;
    if c.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if c.cmd.as_ref().is_none_or(|v| v.is_empty()) {
            c.cmd = ic.cmd().clone();
        }
        if c.entrypoint.is_none() {
            c.entrypoint = ic.entrypoint().clone();
        }
    }
    if c.working_dir.is_empty() {
        c.working_dir = ic.working_dir().clone().unwrap_or_default();
    }
    for (k, v) in ic.labels().clone().unwrap_or_default() {
        c.labels.entry(k).or_insert(v);
    }
    if let Some(ports) = ic.exposed_ports() {
        let m = c.exposed_ports.get_or_insert_with(Default::default);
        for p in ports {
            m.entry(p.clone()).or_insert(serde_json::json!({}));
        }
    }
    if let Some(vols) = ic.volumes() {
        let m = c.volumes.get_or_insert_with(Default::default);
        for v in vols {
            m.entry(v.clone()).or_insert(serde_json::json!({}));
        }
    }
    if c.stop_signal.is_none() {
        c.stop_signal = ic.stop_signal().clone();
    }
}

impl Engine {
    /// `POST /containers/create`: returns the new id and warnings.
    pub fn create(self: &Arc<Self>, name: Option<&str>, body: CreateBody) -> Result<(String, Vec<String>)> {
        let mut config = body.config;
        let mut host = body.host_config.unwrap_or_default();
        // As Docker: the daemon's log driver is recorded at create (clients read it back).
        if host.log_config.kind.is_empty() {
            host.log_config.kind = self.cfg.log_driver.clone();
            if host.log_config.config.is_empty() {
                host.log_config.config = self.cfg.log_opts.clone();
            }
        }
        if config.image.is_empty() {
            return Err(EngineError::InvalidParameter("Config.Image: no image specified".into()));
        }
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                if !record::valid_name(n) {
                    return Err(EngineError::InvalidParameter(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                let n = n.trim_start_matches('/');
                if let Some(other) = self.name_taken(n) {
                    return Err(EngineError::Conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{other}\". \
                         You have to remove (or rename) that container to be able to reuse that name."
                    )));
                }
                n.to_string()
            }
            None => record::random_name(|n| self.name_taken(n).is_some()),
        };
        match host.restart_policy.name.as_str() {
            "" | "no" => {}
            "always" | "unless-stopped" | "on-failure" if host.auto_remove => {
                return Err(EngineError::Conflict(
                    "Conflicting options: AutoRemove and restart policy cannot both be set".into(),
                ))
            }
            "always" | "unless-stopped" | "on-failure" => {}
            other => {
                return Err(EngineError::InvalidParameter(format!(
                    "HostConfig.RestartPolicy.Name: invalid restart policy {other:?}"
                )))
            }
        }
        crate::config::check_log_config(&host.log_config.kind, &host.log_config.config)
            .map_err(|e| EngineError::InvalidParameter(format!("HostConfig.LogConfig: {e}")))?;
        let image = self.images.resolve(&config.image).map_err(|e| match e {
            berth_image::images::ImageError::NotFound(_) => EngineError::NoSuchImage(familiar(&config.image)),
            e => e.into(),
        })?;
        merge_image_config(&mut config, &image.config);
        if config.healthcheck.is_none() {
            // HEALTHCHECK is a Docker extension of the image config (not in oci-spec's type).
            config.healthcheck = self
                .images
                .read_document(&image.config_digest)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| serde_json::from_value(v["config"]["Healthcheck"].clone()).ok());
        }
        if ocispec::command(&config).is_empty() {
            return Err(EngineError::InvalidParameter(
                "no command specified: the image has no CMD or ENTRYPOINT and none was given".into(),
            ));
        }
        let networks = self.plan_networks(&host, config.exposed_ports.as_ref(), body.networking_config.as_ref())?;
        let volumes = self.resolve_volumes(&config, &mut host)?;
        let id = record::random_id();
        let dir = self.container_dir(&id);
        std::fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
        let made = (|| {
            let mount = self.images.prepare_rootfs(&image.config_digest.to_string(), &id)?;
            let rec = Record {
                rootfs_mount: mount.options(),
                id: id.clone(),
                name: format!("/{name}"),
                created: berth_runtime::state::now_rfc3339(),
                image: image.config_digest.to_string(),
                image_name: config.image.clone(),
                config,
                host_config: host,
                state: State::default(),
                restart_count: 0,
                manually_stopped: false,
                has_been_started: false,
                exec_ids: vec![],
                volumes,
                networks,
            };
            rec.save(&dir)?;
            Ok::<Record, EngineError>(rec)
        })();
        let rec = match made {
            Ok(r) => r,
            Err(e) => {
                let _ = self.images.remove_rootfs(&id);
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let mut all = lock(&self.containers);
        if let Some(other) = all.values().find(|c| lock(&c.rec).name == rec.name) {
            // Lost a race for the name.
            let msg = format!(
                "Conflict. The container name \"{}\" is already in use by container \"{}\".",
                rec.name, other.id
            );
            drop(all);
            let _ = self.images.remove_rootfs(&id);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(EngineError::Conflict(msg));
        }
        all.insert(id.clone(), Container::new(rec.clone()));
        drop(all);
        self.emit(&rec, "create");
        Ok((id, vec![]))
    }

    /// `POST /containers/{id}/start`.
    pub fn start(self: &Arc<Self>, key: &str) -> Result<()> {
        let c = self.get(key)?;
        let op = lock(&c.op);
        let rec = c.record();
        if rec.state.running {
            return Err(EngineError::NotModified);
        }
        let r = self.start_locked(&c, rec);
        drop(op);
        // As Docker: an auto-remove container that fails to start is removed (clients
        // waiting for condition=removed return).
        if r.is_err() && c.record().host_config.auto_remove {
            let _ = self.remove_with(&c.id, true, true);
        }
        r
    }

    pub(crate) fn start_locked(self: &Arc<Self>, c: &Arc<Container>, rec: Record) -> Result<()> {
        let id = rec.id.clone();
        let dir = self.container_dir(&id);
        let edir = self.exec_dir(&id);
        std::fs::create_dir_all(&edir).map_err(io_err(format!("create {}", edir.display())))?;
        let rootfs = dir.join("rootfs");
        let fail = |c: &Arc<Container>, e: EngineError| {
            unmount(&rootfs);
            self.teardown_network(&c.id);
            // Attached clients learn of the failure by their stream closing.
            for p in std::mem::take(&mut *lock(&c.pending_attach)) {
                let _ = p.tx.send(Err(EngineError::Conflict(format!(
                    "container {} failed to start",
                    c.id
                ))));
            }
            let msg = e.to_string();
            let code = if msg.contains("no such file") || msg.contains("not found") {
                127
            } else {
                128
            };
            let _ = c.update(&dir, |r| {
                r.state.error = msg.clone();
                r.state.exit_code = code;
                r.state.restarting = false;
                if r.has_been_started {
                    r.state.status = "exited".into();
                }
            });
            e
        };
        let spec = (|| {
            std::fs::create_dir_all(&rootfs).map_err(io_err(format!("create {}", rootfs.display())))?;
            if !is_mounted(&rootfs) {
                nix::mount::mount(
                    Some("overlay"),
                    &rootfs,
                    Some("overlay"),
                    nix::mount::MsFlags::empty(),
                    Some(rec.rootfs_mount.as_str()),
                )
                .map_err(|e| io_err(format!("mount overlay at {}", rootfs.display()))(e.into()))?;
            }
            let volumes = self.prepare_volumes(&rec, &rootfs)?;
            let hostname = if rec.config.hostname.is_empty() {
                id[..12].to_string()
            } else {
                rec.config.hostname.clone()
            };
            write_file(&dir.join("hostname"), &format!("{hostname}\n"))?;
            let net = self.setup_network(&rec, &hostname)?;
            let files = (|| {
                write_file(&dir.join("hosts"), &net.hosts)?;
                write_file(&dir.join("resolv.conf"), &net.resolv)
            })();
            if let Err(e) = files {
                self.teardown_network(&id);
                return Err(e);
            }
            let input = SpecInput {
                id: &id,
                config: &rec.config,
                host: &rec.host_config,
                rootfs: &rootfs,
                cgroups_path: self.cgroups_path(&rec),
                etc_files: ["hostname", "hosts", "resolv.conf"]
                    .iter()
                    .map(|f| (format!("/etc/{f}"), dir.join(f)))
                    .collect(),
                cgroup_v2: self.cgroup_v2,
                volumes,
                init: rec
                    .host_config
                    .init
                    .unwrap_or(self.cfg.init)
                    .then(|| self.cfg.init_path.clone()),
                netns: net.netns,
            };
            let netns_new = matches!(input.netns, NetNs::New);
            let spec = ocispec::build(&input).inspect_err(|_| self.teardown_network(&id))?;
            Ok::<_, EngineError>((spec, netns_new))
        })();
        let (spec, netns_new) = match spec {
            Ok(s) => s,
            Err(e) => return Err(fail(c, e)),
        };
        let cfg_path = edir.join("config.json");
        let bytes = serde_json::to_vec(&spec).unwrap_or_default();
        if let Err(e) = berth_runtime::fsutil::atomic_write(&cfg_path, &bytes) {
            return Err(fail(
                c,
                EngineError::Io {
                    what: format!("write {}", cfg_path.display()),
                    source: std::io::Error::other(e),
                },
            ));
        }
        let log = self.log_target(&rec);
        let mcfg = MonitorConfig {
            id: id.clone(),
            bundle: edir.clone(),
            runtime_root: self.cfg.runtime_root(),
            tty: rec.config.tty,
            open_stdin: rec.config.open_stdin,
            stdin_once: rec.config.stdin_once,
            console_size: rec
                .host_config
                .console_size
                .filter(|s| s[0] > 0 && s[1] > 0)
                .map(|s| (s[0], s[1])),
            log,
            exit_file: dir.join(record::EXIT_FILE),
            loopback_up: netns_new,
            seccomp_program: self.seccomp_program(&spec),
        };
        let _ = std::fs::remove_file(&mcfg.exit_file);
        let mbytes = serde_json::to_vec(&mcfg).unwrap_or_default();
        if let Err(e) = berth_runtime::fsutil::atomic_write(&edir.join(monitor::CONFIG_FILE), &mbytes) {
            return Err(fail(
                c,
                EngineError::Io {
                    what: "write monitor config".into(),
                    source: std::io::Error::other(e),
                },
            ));
        }
        let pid = match self.spawn_monitor(&edir, &id) {
            Ok(p) => p,
            Err(e) => return Err(fail(c, e)),
        };
        // The runtime's state holds the spec from here on; the copy would only take a
        // tmpfs page or three per container. (Every start writes a fresh one.)
        let _ = std::fs::remove_file(&cfg_path);
        // Exit watcher first, so an exit right after start is never missed.
        match monitor_connect(&edir, &id, &Request::Wait) {
            Ok(s) => self.watch_exit(c.clone(), s),
            Err(e) => return Err(fail(c, e)),
        }
        for p in std::mem::take(&mut *lock(&c.pending_attach)) {
            let r = monitor_call(&edir, &id, &p.request).map(|(s, _)| s);
            let _ = p.tx.send(r);
        }
        if let Err(e) = monitor_call(&edir, &id, &Request::Start) {
            let _ = rt::kill(&self.cfg.runtime_root(), &id, Signal::SIGKILL, true);
            return Err(fail(c, e));
        }
        let rec = c.update(&dir, |r| {
            r.state.set_running(pid, berth_runtime::state::now_rfc3339());
            r.has_been_started = true;
            r.manually_stopped = false;
            r.clone()
        })?;
        self.emit(&rec, "start");
        self.start_health(c);
        Ok(())
    }

    fn cgroups_path(&self, rec: &Record) -> String {
        let parent = if rec.host_config.cgroup_parent.is_empty() {
            self.cfg.cgroup_parent.clone()
        } else {
            rec.host_config.cgroup_parent.clone()
        };
        format!("{}/{}", parent.trim_end_matches('/'), rec.id)
    }

    /// Where and how a container's output is logged: its driver and options (the
    /// daemon's when the container names none), with each driver's defaults as
    /// Docker's (json-file: one file, no limit; local: 20 MB x 5 files, compressed).
    pub fn log_target(&self, rec: &Record) -> LogTarget {
        let lc = &rec.host_config.log_config;
        let (driver, opts) = if lc.kind.is_empty() {
            (self.cfg.log_driver.clone(), &self.cfg.log_opts)
        } else {
            (lc.kind.clone(), &lc.config)
        };
        let local = driver == "local";
        let max_size = match opts.get("max-size").map(|s| s.as_str()) {
            Some("-1") => None,
            Some(s) => parse_size(s),
            None => local.then_some(20 << 20),
        };
        let max_file = opts
            .get("max-file")
            .and_then(|s| s.parse().ok())
            .unwrap_or(if local { 5 } else { 1 });
        let compress = opts.get("compress").map(|s| s == "true").unwrap_or(local);
        let path = if local {
            self.container_dir(&rec.id).join("local-logs").join("container.log")
        } else {
            self.container_dir(&rec.id).join(format!("{}-json.log", rec.id))
        };
        LogTarget {
            driver,
            path,
            max_size,
            max_file,
            compress,
        }
    }

    fn spawn_monitor(&self, edir: &Path, id: &str) -> Result<i32> {
        let merr = |m: String| EngineError::Monitor {
            id: id.into(),
            message: m,
        };
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| merr(format!("pipe: {e}")))?;
        let log = std::fs::File::create(edir.join("monitor.log")).map_err(|e| merr(format!("monitor.log: {e}")))?;
        let mut cmd = match &self.monitor_exe {
            Some(fd) => {
                let mut c = Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                c.arg0("berth-monitor");
                c
            }
            None => Command::new(&self.monitor_bin),
        };
        cmd.arg(edir)
            .arg("3")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // No per-thread malloc cache in the monitor: glibc's tcache keeps freed chunks
        // that malloc_trim cannot return, ~40 KiB in every idle monitor.
        let tunables = match std::env::var("GLIBC_TUNABLES") {
            Ok(t) if !t.is_empty() => format!("{t}:{MONITOR_TUNABLES}"),
            _ => MONITOR_TUNABLES.to_string(),
        };
        cmd.env("GLIBC_TUNABLES", tunables);
        let wfd = w.as_raw_fd();
        // SAFETY: only async-signal-safe calls (dup2/fcntl) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let r = if wfd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(wfd, 3)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| merr(format!("spawn {}: {e}", self.monitor_bin.display())))?;
        drop(w);
        let _ = child.wait();
        let mut line = String::new();
        std::io::BufReader::new(std::fs::File::from(r))
            .read_line(&mut line)
            .map_err(|e| merr(format!("read ready pipe: {e}")))?;
        let reply: Reply = serde_json::from_str(&line).map_err(|_| {
            let log = std::fs::read_to_string(edir.join("monitor.log")).unwrap_or_default();
            merr(format!("exited before reporting: {}", log.trim()))
        })?;
        if let Some(e) = reply.error {
            return Err(EngineError::StartFailed {
                id: id.into(),
                message: e,
            });
        }
        reply.pid.ok_or_else(|| merr("reported no pid".into()))
    }

    /// A thread per running container waits for its monitor's exit report.
    pub(crate) fn watch_exit(self: &Arc<Self>, c: Arc<Container>, mut s: std::os::unix::net::UnixStream) {
        let engine = self.clone();
        let id = c.id.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("exit-{}", &c.id[..12]))
            .stack_size(128 << 10)
            .spawn(move || {
                let info = read_reply(&mut s, &c.id).ok().and_then(|r| r.exit);
                let info = info
                    .or_else(|| engine.read_exit_file(&c.id))
                    .unwrap_or_else(|| ExitInfo {
                        exit_code: 255,
                        finished_at: berth_runtime::state::now_rfc3339(),
                        error: "the container's monitor went away without recording an exit".into(),
                        ..Default::default()
                    });
                engine.on_exit(&c, info, true);
            });
        if let Err(e) = spawned {
            eprintln!("berthd: cannot watch container {id}: {e}");
        }
    }

    pub(crate) fn read_exit_file(&self, id: &str) -> Option<ExitInfo> {
        let b = std::fs::read(self.container_dir(id).join(record::EXIT_FILE)).ok()?;
        serde_json::from_slice(&b).ok()
    }

    /// The main process exited: record it, then restart or auto-remove as configured.
    /// `follow_policy` false: only record (daemon start restarts what it must itself).
    pub(crate) fn on_exit(self: &Arc<Self>, c: &Arc<Container>, info: ExitInfo, follow_policy: bool) {
        let dir = self.container_dir(&c.id);
        unmount(&dir.join("rootfs"));
        self.teardown_network(&c.id);
        let exited = |r: &mut Record| {
            r.state.set_exited(
                info.exit_code,
                info.oom_killed,
                info.finished_at.clone(),
                info.error.clone(),
            );
            r.clone()
        };
        let rec = if follow_policy && c.record().host_config.auto_remove {
            c.update_in_memory(exited)
        } else {
            c.update(&dir, exited).unwrap_or_else(|_| c.record())
        };
        c.exits.fetch_add(1, Ordering::SeqCst);
        c.cv.notify_all();
        c.changed.send_modify(|g| *g += 1);
        if info.oom_killed {
            self.emit(&rec, "oom");
        }
        self.emit_with(&rec, "die", &[("exitCode", info.exit_code.to_string())]);
        if !follow_policy {
            return;
        }
        if should_restart(&rec) {
            let engine = self.clone();
            let c = c.clone();
            let delay = Duration::from_millis(100u64 << rec.restart_count.clamp(0, 9));
            let _ = c.update(&dir, |r| {
                r.state.restarting = true;
                r.state.status = "restarting".into();
            });
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let _op = lock(&c.op);
                let rec = c.record();
                if rec.manually_stopped || rec.state.running || c.removed.load(Ordering::SeqCst) {
                    let _ = c.update(&engine.container_dir(&c.id), |r| {
                        r.state.restarting = false;
                        if !r.state.running {
                            r.state.status = "exited".into();
                        }
                    });
                    return;
                }
                let _ = c.update(&engine.container_dir(&c.id), |r| r.restart_count += 1);
                if engine.start_locked(&c, c.record()).is_ok() {
                    engine.emit(&c.record(), "restart");
                }
            });
        } else if rec.host_config.auto_remove {
            let engine = self.clone();
            let id = c.id.clone();
            std::thread::spawn(move || {
                // `--rm` takes the anonymous volumes along, as Docker's.
                let _ = engine.remove_with(&id, true, true);
            });
        }
    }

    /// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after the timeout.
    pub fn stop(self: &Arc<Self>, key: &str, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
        let c = self.get(key)?;
        let _op = lock(&c.op);
        self.stop_locked(&c, timeout, signal)
    }

    fn stop_locked(&self, c: &Arc<Container>, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
        let dir = self.container_dir(&c.id);
        let rec = c.update(&dir, |r| {
            r.manually_stopped = true;
            r.clone()
        })?;
        if !rec.state.running {
            return Err(EngineError::NotModified);
        }
        let sig = match signal.or(rec.config.stop_signal.as_deref()) {
            Some(s) if !s.is_empty() => parse_signal(s)?,
            _ => Signal::SIGTERM,
        };
        let t = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let root = self.cfg.runtime_root();
        if rec.state.paused {
            let _ = rt::resume(&root, &c.id);
        }
        let _ = rt::kill(&root, &c.id, sig, false);
        self.emit_with(&rec, "kill", &[("signal", (sig as i32).to_string())]);
        let stopped = |r: &Record| !r.state.running;
        let limit = if t < 0 {
            Duration::from_secs(u64::MAX / 4)
        } else {
            Duration::from_secs(t as u64)
        };
        if !c.wait_for(limit, stopped) {
            // Frozen processes do not die: thaw first (a no-op unless paused meanwhile).
            let _ = rt::resume(&root, &c.id);
            let _ = rt::kill(&root, &c.id, Signal::SIGKILL, true);
            self.emit_with(&rec, "kill", &[("signal", "9".into())]);
            if !c.wait_for(Duration::from_secs(30), stopped) {
                return Err(EngineError::Conflict(format!(
                    "container {} did not stop after SIGKILL",
                    c.id
                )));
            }
        }
        self.emit(&c.record(), "stop");
        Ok(())
    }

    /// `POST /containers/{id}/kill`.
    pub fn kill(&self, key: &str, signal: Option<&str>) -> Result<()> {
        let c = self.get(key)?;
        let rec = c.record();
        if !rec.state.running {
            return Err(EngineError::Conflict(format!("Container {} is not running", rec.id)));
        }
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("SIGKILL"))?;
        rt::kill(&self.cfg.runtime_root(), &rec.id, sig, false).map_err(|source| EngineError::Runtime {
            id: rec.id.clone(),
            source,
        })?;
        self.emit_with(&rec, "kill", &[("signal", (sig as i32).to_string())]);
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub fn restart(self: &Arc<Self>, key: &str, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
        let c = self.get(key)?;
        let _op = lock(&c.op);
        match self.stop_locked(&c, timeout, signal) {
            Ok(()) | Err(EngineError::NotModified) => {}
            Err(e) => return Err(e),
        }
        self.start_locked(&c, c.record())?;
        self.emit(&c.record(), "restart");
        Ok(())
    }

    pub fn pause(&self, key: &str) -> Result<()> {
        self.set_paused(key, true)
    }

    pub fn unpause(&self, key: &str) -> Result<()> {
        self.set_paused(key, false)
    }

    fn set_paused(&self, key: &str, pause: bool) -> Result<()> {
        let c = self.get(key)?;
        // Serialised with stop/restart/remove: a pause landing between their signal and
        // the SIGKILL would freeze the processes they are waiting to see die.
        let _op = lock(&c.op);
        let rec = c.record();
        if !rec.state.running {
            return Err(EngineError::Conflict(format!("Container {} is not running", rec.id)));
        }
        if rec.state.paused == pause {
            let what = if pause { "already paused" } else { "not paused" };
            return Err(EngineError::Conflict(format!("Container {} is {what}", rec.id)));
        }
        let root = self.cfg.runtime_root();
        let r = if pause {
            rt::pause(&root, &rec.id)
        } else {
            rt::resume(&root, &rec.id)
        };
        r.map_err(|source| EngineError::Runtime {
            id: rec.id.clone(),
            source,
        })?;
        let rec = c.update(&self.container_dir(&rec.id), |r| {
            r.state.paused = pause;
            r.state.status = if pause { "paused" } else { "running" }.into();
            r.clone()
        })?;
        self.emit(&rec, if pause { "pause" } else { "unpause" });
        Ok(())
    }

    /// `POST /containers/{id}/rename`.
    pub fn rename(&self, key: &str, new_name: &str) -> Result<()> {
        let c = self.get(key)?;
        if !record::valid_name(new_name) {
            return Err(EngineError::InvalidParameter(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let new = new_name.trim_start_matches('/');
        if let Some(other) = self.name_taken(new) {
            return Err(EngineError::Conflict(format!(
                "Conflict. The container name \"/{new}\" is already in use by container \"{other}\"."
            )));
        }
        let old = c.record().name;
        let rec = c.update(&self.container_dir(&c.id), |r| {
            r.name = format!("/{new}");
            r.clone()
        })?;
        self.emit_with(&rec, "rename", &[("oldName", old)]);
        Ok(())
    }

    /// `DELETE /containers/{id}`.
    pub fn remove(self: &Arc<Self>, key: &str, force: bool) -> Result<()> {
        self.remove_with(key, force, false)
    }

    /// `DELETE /containers/{id}?v=`: `volumes` also removes its anonymous volumes.
    pub fn remove_with(self: &Arc<Self>, key: &str, force: bool, volumes: bool) -> Result<()> {
        let c = self.get(key)?;
        let _op = lock(&c.op);
        // Removed by someone else (auto-remove) while we waited for the lock.
        if c.removed.load(Ordering::SeqCst) {
            return Err(EngineError::NoSuchContainer(key.into()));
        }
        let rec = c.record();
        if rec.state.running || rec.state.restarting {
            if !force {
                let what = if rec.state.paused { "paused" } else { "running" };
                return Err(EngineError::Conflict(format!(
                    "You cannot remove a {what} container {}. Stop the container before attempting removal or force remove",
                    rec.id
                )));
            }
            let _ = c.update(&self.container_dir(&c.id), |r| r.manually_stopped = true);
            if rec.state.running {
                let root = self.cfg.runtime_root();
                if rec.state.paused {
                    let _ = rt::resume(&root, &c.id);
                }
                let _ = rt::kill(&root, &c.id, Signal::SIGKILL, true);
                if !c.wait_for(Duration::from_secs(30), |r| !r.state.running) {
                    return Err(EngineError::Conflict(format!(
                        "container {} did not stop after SIGKILL",
                        c.id
                    )));
                }
            }
        }
        let dir = self.container_dir(&c.id);
        unmount(&dir.join("rootfs"));
        let _ = rt::delete(&self.cfg.runtime_root(), &c.id, true);
        match self.images.remove_rootfs(&c.id) {
            Ok(_) | Err(berth_image::images::ImageError::Container { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let _ = std::fs::remove_dir_all(self.exec_dir(&c.id));
        std::fs::remove_dir_all(&dir).map_err(io_err(format!("remove {}", dir.display())))?;
        lock(&self.containers).remove(&c.id);
        // Only now: waiters for condition=removed must find it gone from every list.
        c.removed.store(true, Ordering::SeqCst);
        for e in &rec.exec_ids {
            lock(&self.execs).remove(e);
        }
        if volumes {
            self.remove_anonymous_volumes(&rec);
        }
        c.cv.notify_all();
        c.changed.send_modify(|g| *g += 1);
        self.emit(&rec, "destroy");
        Ok(())
    }

    /// `POST /containers/{id}/attach`: a stream of the main process's stdio (see
    /// `monitor::proto` for its framing). Before start, completed by `start`.
    pub fn attach(&self, key: &str, stdin: bool, stdout: bool, stderr: bool) -> Result<Attached> {
        let c = self.get(key)?;
        let request = Request::Attach { stdin, stdout, stderr };
        let rec = c.record();
        if rec.state.running {
            let (s, _) = monitor_call(&self.exec_dir(&c.id), &c.id, &request)?;
            return Ok(Attached::Now(s));
        }
        let (tx, rx) = oneshot::channel();
        lock(&c.pending_attach).push(PendingAttach { request, tx });
        Ok(Attached::Later(rx))
    }

    /// `POST /containers/{id}/resize`.
    pub fn resize(&self, key: &str, height: u16, width: u16, exec_id: Option<String>) -> Result<()> {
        let c = self.get(key)?;
        if !c.record().state.running {
            return Err(EngineError::Conflict(format!("Container {} is not running", c.id)));
        }
        monitor_call(
            &self.exec_dir(&c.id),
            &c.id,
            &Request::Resize { height, width, exec_id },
        )?;
        Ok(())
    }
}

pub(crate) fn should_restart(rec: &Record) -> bool {
    if rec.manually_stopped {
        return false;
    }
    let p = &rec.host_config.restart_policy;
    match p.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            rec.state.exit_code != 0 && (p.maximum_retry_count <= 0 || rec.restart_count < p.maximum_retry_count)
        }
        _ => false,
    }
}
