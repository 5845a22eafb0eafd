//! Daemon start: load every container record; re-attach to monitors that kept their
//! containers running (live restore); record exits that happened while berthd was away;
//! restart what the restart policy says to.

use std::sync::Arc;

use berth_runtime::container as rt;

use super::{lock, monitor_connect, Container, Engine};
use crate::error::Result;
use crate::monitor::{ExitInfo, Request};
use crate::record::Record;

impl Engine {
    pub(crate) fn restore(self: &Arc<Self>) -> Result<()> {
        let Ok(rd) = std::fs::read_dir(self.cfg.containers_dir()) else {
            return Ok(());
        };
        let mut to_start = Vec::new();
        for e in rd.flatten() {
            let rec = match Record::load(&e.path()) {
                Ok(r) => r,
                Err(err) => {
                    eprintln!("berthd: skipping container {}: {err}", e.path().display());
                    continue;
                }
            };
            let c = Container::new(rec.clone());
            lock(&self.containers).insert(rec.id.clone(), c.clone());
            self.load_execs(&rec.id);
            if rec.state.running || rec.state.restarting {
                match monitor_connect(&self.exec_dir(&rec.id), &rec.id, &Request::Wait) {
                    Ok(s) if rec.state.running => self.watch_exit(c, s),
                    _ => {
                        // Its monitor is gone (host reboot, or killed): clean what is left.
                        let _ = rt::delete(&self.cfg.runtime_root(), &rec.id, true);
                        let info = self.read_exit_file(&rec.id).unwrap_or_else(|| ExitInfo {
                            exit_code: 255,
                            finished_at: berth_runtime::state::now_rfc3339(),
                            error: "the container's monitor was gone when berthd started (host reboot?)".into(),
                            ..Default::default()
                        });
                        self.on_exit(&c, info, false);
                        // As Docker at daemon start: restart now, without back-off.
                        if super::lifecycle::should_restart(&c.record()) {
                            to_start.push(c);
                        }
                    }
                }
            } else if match rec.host_config.restart_policy.name.as_str() {
                "always" => rec.has_been_started,
                "unless-stopped" => rec.has_been_started && !rec.manually_stopped,
                _ => false,
            } {
                to_start.push(c);
            }
        }
        // A crash while creating a container (its writable layer made, its record not
        // yet written) leaves a layer nobody owns: remove it, and the record-less
        // directory. A directory whose record exists but cannot be read is kept.
        for id in self.images.rootfs_ids().unwrap_or_default() {
            let dir = self.container_dir(&id);
            if !lock(&self.containers).contains_key(&id) && !dir.join(crate::record::RECORD_FILE).exists() {
                let _ = self.images.remove_rootfs(&id);
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        // As Docker at daemon start: `--rm` containers that are not running (they exited
        // while no daemon was there to remove them) are removed now.
        let gone: Vec<String> = lock(&self.containers)
            .values()
            .filter(|c| {
                let r = c.record();
                r.host_config.auto_remove && !r.state.running && !r.state.restarting
            })
            .map(|c| c.id.clone())
            .collect();
        for id in gone {
            if let Err(e) = self.remove_with(&id, true, true) {
                eprintln!("berthd: removing --rm container {id}: {e}");
            }
        }
        for c in to_start {
            let _op = lock(&c.op);
            if let Err(e) = self.start_locked(&c, c.record()) {
                eprintln!("berthd: restarting container {}: {e}", c.id);
            }
        }
        Ok(())
    }
}
