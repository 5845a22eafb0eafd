//! `docker exec`: exec instances, run by the container's monitor (so it reaps them and
//! reports their exit codes).

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

use super::{lock, monitor_call, Engine};
use crate::error::{EngineError, Result};
use crate::monitor::proto::STATUS_STREAM;
use crate::monitor::Request;
use crate::{ocispec, record};

/// An exec's command: Docker's strslice, absent or null being empty.
fn cmd_list<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    Ok(crate::types::strslice(d)?.unwrap_or_default())
}

/// The body of `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecConfig {
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default)]
    pub attach_stdout: bool,
    #[serde(default)]
    pub attach_stderr: bool,
    #[serde(default)]
    pub detach_keys: String,
    #[serde(default)]
    pub tty: bool,
    #[serde(default, deserialize_with = "crate::types::nullable")]
    pub env: Vec<String>,
    #[serde(default, deserialize_with = "cmd_list")]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub console_size: Option<[u16; 2]>,
}

/// An exec instance, kept in `<container dir>/execs/<id>.json` (written atomically) so
/// it survives a daemon restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
}

const EXECS_DIR: &str = "execs";

impl Engine {
    /// Persist an exec record (best effort: the exec itself does not depend on it).
    fn save_exec(&self, r: &ExecRecord) {
        let dir = self.container_dir(&r.container_id).join(EXECS_DIR);
        if std::fs::create_dir_all(&dir).is_ok() {
            if let Ok(b) = serde_json::to_vec(r) {
                let _ = berth_runtime::fsutil::atomic_write(&dir.join(format!("{}.json", r.id)), &b);
            }
        }
    }

    /// Load a container's exec records at daemon start. One that was running when berthd
    /// went away is no longer followed: it is recorded as finished with an unknown code.
    pub(crate) fn load_execs(self: &Arc<Self>, container_id: &str) {
        let dir = self.container_dir(container_id).join(EXECS_DIR);
        let Ok(rd) = std::fs::read_dir(&dir) else { return };
        for e in rd.flatten() {
            let Some(mut r) = std::fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<ExecRecord>(&b).ok())
            else {
                continue;
            };
            let mut watch = false;
            if r.running {
                // It ran when berthd went away: the monitor recorded its end, or it still runs.
                match self.exec_exit_code(&r) {
                    Some(code) => {
                        r.running = false;
                        r.exit_code = Some(code);
                        self.save_exec(&r);
                    }
                    None if r.pid > 0 && std::path::Path::new(&format!("/proc/{}", r.pid)).exists() => watch = true,
                    None => r.running = false,
                }
            }
            let id = r.id.clone();
            let rec = Arc::new(Mutex::new(r));
            lock(&self.execs).insert(id, rec.clone());
            if watch {
                self.watch_restored_exec(rec);
            }
        }
    }

    fn exec_exit_code(&self, r: &ExecRecord) -> Option<i32> {
        let f = self
            .exec_dir(&r.container_id)
            .join(crate::monitor::proto::exec_exit_file(&r.id));
        std::fs::read_to_string(f).ok()?.trim().parse().ok()
    }

    /// An exec still running at restore: poll until the monitor records its end (or the
    /// container is gone), then update its record. Rare, so a small thread of its own.
    fn watch_restored_exec(self: &Arc<Self>, rec: Arc<Mutex<ExecRecord>>) {
        let engine = Arc::downgrade(self);
        let _ = std::thread::Builder::new()
            .name("exec-restore".into())
            .stack_size(64 << 10)
            .spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_millis(250));
                let Some(engine) = engine.upgrade() else { return };
                let r = lock(&rec).clone();
                let code = engine.exec_exit_code(&r);
                let alive = std::path::Path::new(&format!("/proc/{}", r.pid)).exists();
                if code.is_some() || !alive {
                    let mut g = lock(&rec);
                    g.running = false;
                    g.exit_code = code;
                    engine.save_exec(&g);
                    return;
                }
            });
    }

    /// `POST /containers/{id}/exec`.
    pub fn exec_create(&self, key: &str, cfg: ExecConfig) -> Result<String> {
        let c = self.get(key)?;
        let rec = c.record();
        if !rec.state.running {
            return Err(EngineError::Conflict(format!("Container {} is not running", rec.id)));
        }
        if rec.state.paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is paused, unpause the container before exec",
                rec.id
            )));
        }
        if cfg.cmd.is_empty() {
            return Err(EngineError::InvalidParameter("No exec command specified".into()));
        }
        let id = record::random_id();
        let cmd = cfg.cmd.join(" ");
        let er = ExecRecord {
            id: id.clone(),
            container_id: rec.id.clone(),
            config: cfg,
            running: false,
            started: false,
            exit_code: None,
            pid: 0,
        };
        self.save_exec(&er);
        lock(&self.execs).insert(id.clone(), Arc::new(Mutex::new(er)));
        let rec = c.update(&self.container_dir(&rec.id), |r| {
            r.exec_ids.push(id.clone());
            r.clone()
        })?;
        self.emit_with(&rec, &format!("exec_create: {cmd}"), &[("execID", id.clone())]);
        Ok(id)
    }

    fn exec_get(&self, id: &str) -> Result<Arc<Mutex<ExecRecord>>> {
        lock(&self.execs)
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NoSuchExec(id.into()))
    }

    /// The exec's OCI process: the container's, with the exec's command, env, user, cwd.
    pub(super) fn exec_process(&self, container_id: &str, cfg: &ExecConfig, tty: bool) -> Result<Value> {
        // The runtime keeps the spec it created the container with (the bundle's
        // config.json is gone once the container runs); written atomically, read unlocked.
        let state = self
            .cfg
            .runtime_root()
            .join(container_id)
            .join(berth_runtime::state::STATE_FILE);
        let state: Value = std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| EngineError::Conflict(format!("Container {container_id} is not running")))?;
        let mut p = state["config"]["process"].clone();
        p["args"] = json!(cfg.cmd);
        p["terminal"] = json!(tty);
        p.as_object_mut().map(|o| o.remove("consoleSize"));
        let key = |s: &str| s.split('=').next().unwrap_or("").to_string();
        let mut env: Vec<String> = p["env"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        for e in &cfg.env {
            env.retain(|x| key(x) != key(e));
            env.push(e.clone());
        }
        // As Docker: a terminal exec gets TERM=xterm unless the container or exec set it.
        if tty && !env.iter().any(|e| key(e) == "TERM") {
            env.push("TERM=xterm".into());
        }
        p["env"] = json!(env);
        if !cfg.working_dir.is_empty() {
            p["cwd"] = json!(cfg.working_dir);
        }
        if !cfg.user.is_empty() {
            let rootfs = self.container_dir(container_id).join("rootfs");
            let mut u = ocispec::resolve_user(&rootfs, &cfg.user, &[])?;
            u.as_object_mut().map(|o| o.remove("home"));
            p["user"] = u;
        }
        if cfg.privileged {
            let all = ocispec::all_caps();
            p["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
        }
        Ok(p)
    }

    /// `POST /exec/{id}/start`: the exec's stdio stream (monitor framing). With `detach`
    /// the engine drains it itself and the caller gets None.
    pub fn exec_start(
        self: &Arc<Self>,
        id: &str,
        detach: bool,
        tty: Option<bool>,
        console_size: Option<[u16; 2]>,
    ) -> Result<Option<UnixStream>> {
        let e = self.exec_get(id)?;
        let (container_id, cfg) = {
            let mut r = lock(&e);
            if r.started {
                return Err(EngineError::Conflict(format!("exec {id} has already been started")));
            }
            r.started = true;
            (r.container_id.clone(), r.config.clone())
        };
        let c = self.get(&container_id)?;
        let tty = tty.unwrap_or(cfg.tty);
        let process = self.exec_process(&container_id, &cfg, tty)?;
        let size = console_size
            .or(cfg.console_size)
            .filter(|s| s[0] > 0 && s[1] > 0)
            .map(|s| (s[0], s[1]));
        let req = Request::Exec {
            exec_id: id.into(),
            process,
            stdin: cfg.attach_stdin && !detach,
            console_size: size,
        };
        let (stream, reply) = match monitor_call(&self.exec_dir(&container_id), &container_id, &req) {
            Ok(r) => r,
            Err(err) => {
                // Docker's codes: 127 command not found, 126 cannot be run.
                let m = err.to_string();
                let mut r = lock(&e);
                r.exit_code = Some(if m.contains("not found") || m.contains("No such file") {
                    127
                } else {
                    126
                });
                self.save_exec(&r);
                return Err(err);
            }
        };
        {
            let mut r = lock(&e);
            r.running = true;
            r.pid = reply.pid.unwrap_or(0);
            self.save_exec(&r);
        }
        self.emit_with(
            &c.record(),
            &format!("exec_start: {}", cfg.cmd.join(" ")),
            &[("execID", id.into())],
        );
        if detach {
            let engine = self.clone();
            let id = id.to_string();
            std::thread::spawn(move || {
                let code = drain_for_status(stream);
                engine.exec_finished(&id, code);
            });
            return Ok(None);
        }
        Ok(Some(stream))
    }

    /// Record an exec's exit (from its stream's final status frame).
    pub fn exec_finished(&self, id: &str, code: Option<i32>) {
        if let Ok(e) = self.exec_get(id) {
            let mut r = lock(&e);
            r.running = false;
            r.exit_code = Some(code.unwrap_or(126));
            self.save_exec(&r);
            let (cid, code) = (r.container_id.clone(), r.exit_code.unwrap_or(0));
            drop(r);
            if let Ok(c) = self.get(&cid) {
                self.emit_with(
                    &c.record(),
                    "exec_die",
                    &[("execID", id.into()), ("exitCode", code.to_string())],
                );
            }
        }
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, id: &str) -> Result<Value> {
        let e = self.exec_get(id)?;
        let r = lock(&e).clone();
        Ok(json!({
            "ID": r.id,
            "Running": r.running,
            "ExitCode": r.exit_code,
            "ProcessConfig": {
                "tty": r.config.tty,
                "entrypoint": r.config.cmd.first(),
                "arguments": r.config.cmd.get(1..).unwrap_or_default(),
                "privileged": r.config.privileged,
                "user": r.config.user,
            },
            "OpenStdin": r.config.attach_stdin,
            "OpenStderr": r.config.attach_stderr,
            "OpenStdout": r.config.attach_stdout,
            "CanRemove": false,
            "ContainerID": r.container_id,
            "DetachKeys": r.config.detach_keys,
            "Pid": r.pid,
        }))
    }

    /// `POST /exec/{id}/resize`.
    pub fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let e = self.exec_get(id)?;
        let cid = lock(&e).container_id.clone();
        self.resize(&cid, height, width, Some(id.into()))
    }
}

/// Read a monitor stream to its end; the exit code from its status frame.
pub fn drain_for_status(mut s: UnixStream) -> Option<i32> {
    let mut code = None;
    let mut hdr = [0u8; 8];
    while s.read_exact(&mut hdr).is_ok() {
        let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
        let mut body = vec![0u8; len];
        if s.read_exact(&mut body).is_err() {
            break;
        }
        if hdr[0] == STATUS_STREAM {
            code = status_code(&body);
        }
    }
    code
}

/// The exit code in a status frame's JSON.
pub fn status_code(body: &[u8]) -> Option<i32> {
    serde_json::from_slice::<Value>(body).ok()?["exit_code"]
        .as_i64()
        .map(|c| c as i32)
}
