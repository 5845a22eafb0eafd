//! Health checks (`Healthcheck` in the container's config, or the image's HEALTHCHECK):
//! a thread per running container runs the test through the monitor, as an exec, and
//! keeps `State.Health` (starting / healthy / unhealthy, failing streak, last 5 results).

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::exec::ExecConfig;
use super::{monitor_call, Container, Engine};
use crate::monitor::proto::STATUS_STREAM;
use crate::monitor::Request;
use crate::record::{Health, HealthLog};
use crate::types::HealthConfig;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
/// Docker keeps this many results and this much output of each.
const KEEP: usize = 5;
const MAX_OUTPUT: usize = 4096;

fn dur(ns: i64, default: Duration) -> Duration {
    if ns > 0 {
        Duration::from_nanos(ns as u64)
    } else {
        default
    }
}

/// The command to run, or None when checks are off (`NONE`, or no test).
pub fn command(h: &HealthConfig) -> Option<Vec<String>> {
    let t = h.test.as_ref()?;
    match t.first().map(String::as_str) {
        Some("CMD") => Some(t[1..].to_vec()).filter(|c| !c.is_empty()),
        Some("CMD-SHELL") => Some(vec!["/bin/sh".into(), "-c".into(), t[1..].join(" ")]),
        _ => None,
    }
}

/// Read an exec stream to its status frame, keeping up to MAX_OUTPUT bytes of output,
/// within `limit`.
fn collect(mut s: std::os::unix::net::UnixStream, limit: Duration) -> (Option<i32>, String) {
    let _ = s.set_read_timeout(Some(limit));
    let mut out = Vec::new();
    let mut hdr = [0u8; 8];
    while s.read_exact(&mut hdr).is_ok() {
        let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
        let mut body = vec![0u8; len];
        if s.read_exact(&mut body).is_err() {
            break;
        }
        if hdr[0] == STATUS_STREAM {
            return (
                super::exec::status_code(&body),
                String::from_utf8_lossy(&out).to_string(),
            );
        }
        if out.len() < MAX_OUTPUT {
            out.extend_from_slice(&body[..body.len().min(MAX_OUTPUT - out.len())]);
        }
    }
    (None, String::from_utf8_lossy(&out).to_string())
}

impl Engine {
    /// Start the checker of a container that just started (no-op without a check).
    pub(crate) fn start_health(self: &Arc<Self>, c: &Arc<Container>) {
        let rec = c.record();
        let Some(h) = rec.config.healthcheck.clone() else {
            return;
        };
        let Some(cmd) = command(&h) else { return };
        let exits = c.exits.load(Ordering::SeqCst);
        let _ = c.update(&self.container_dir(&c.id), |r| {
            r.state.health = Some(Health {
                status: "starting".into(),
                failing_streak: 0,
                log: vec![],
            });
        });
        let (engine, c) = (self.clone(), c.clone());
        let _ = std::thread::Builder::new()
            .name(format!("health-{}", &c.id[..12]))
            .stack_size(256 << 10)
            .spawn(move || engine.health_loop(&c, &h, cmd, exits));
    }

    fn health_loop(self: &Arc<Self>, c: &Arc<Container>, h: &HealthConfig, cmd: Vec<String>, exits: u64) {
        let started = Instant::now();
        let interval = dur(h.interval, DEFAULT_INTERVAL);
        let start_interval = dur(h.start_interval, Duration::from_secs(5));
        let start_period = dur(h.start_period, Duration::ZERO);
        let timeout = dur(h.timeout, DEFAULT_TIMEOUT);
        let retries = if h.retries > 0 { h.retries } else { DEFAULT_RETRIES };
        let dir = self.container_dir(&c.id);
        loop {
            let in_start = started.elapsed() < start_period;
            let wait = if in_start && h.start_interval > 0 {
                start_interval
            } else {
                interval
            };
            // Stop when the container stops or restarts (a new checker takes over).
            let gone = |r: &crate::record::Record| !r.state.running || c.exits.load(Ordering::SeqCst) != exits;
            if c.wait_for(wait, gone) {
                return;
            }
            let begin = berth_runtime::state::now_rfc3339();
            let exec_id = crate::record::random_id();
            let cfg = ExecConfig {
                cmd: cmd.clone(),
                attach_stdout: true,
                attach_stderr: true,
                ..Default::default()
            };
            let result = self.exec_process(&c.id, &cfg, false).and_then(|process| {
                let req = Request::Exec {
                    exec_id,
                    process,
                    stdin: false,
                    console_size: None,
                };
                monitor_call(&self.exec_dir(&c.id), &c.id, &req)
            });
            let (code, output) = match result {
                Ok((s, _)) => match collect(s, timeout) {
                    (Some(code), out) => (code as i64, out),
                    (None, out) => (-1, format!("Health check exceeded timeout ({timeout:?}){out}")),
                },
                Err(e) => (-1, e.to_string()),
            };
            if c.exits.load(Ordering::SeqCst) != exits {
                return;
            }
            let entry = HealthLog {
                start: begin,
                end: berth_runtime::state::now_rfc3339(),
                exit_code: code,
                output,
            };
            let changed = c.update(&dir, |r| {
                let health = r.state.health.get_or_insert_with(Health::default);
                let before = health.status.clone();
                if code == 0 {
                    health.failing_streak = 0;
                    health.status = "healthy".into();
                } else if !in_start {
                    health.failing_streak += 1;
                    if health.failing_streak >= retries {
                        health.status = "unhealthy".into();
                    }
                }
                health.log.push(entry);
                let n = health.log.len();
                if n > KEEP {
                    health.log.drain(..n - KEEP);
                }
                let now = health.status.clone();
                (before != now).then(|| (now, r.clone()))
            });
            if let Ok(Some((status, rec))) = changed {
                self.emit(&rec, &format!("health_status: {status}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_forms() {
        let h = |t: &[&str]| HealthConfig {
            test: Some(t.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(command(&h(&["CMD", "true"])), Some(vec!["true".to_string()]));
        assert_eq!(
            command(&h(&["CMD-SHELL", "exit 1"])),
            Some(vec!["/bin/sh".into(), "-c".into(), "exit 1".into()])
        );
        assert_eq!(command(&h(&["NONE"])), None);
        assert_eq!(command(&HealthConfig::default()), None);
    }
}
