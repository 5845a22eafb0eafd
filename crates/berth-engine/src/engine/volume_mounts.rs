//! Volumes in containers: resolve `-v name:/dst`, `--mount type=volume`, the image's
//! VOLUMEs (anonymous volumes) and `--volumes-from` at create; activate and fill them
//! from the image at start; remove anonymous ones with `rm -v`; the `/volumes` verbs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use serde_json::{json, Value};

use super::Engine;
use crate::error::{EngineError, Result};
use crate::record::{Record, VolumeMount};
use crate::types::{ContainerConfig, HostConfig};
use crate::volumes::{Volume, VolumeError};

impl From<VolumeError> for EngineError {
    fn from(e: VolumeError) -> EngineError {
        match e {
            VolumeError::NotFound(n) => EngineError::NoSuchVolume(n),
            VolumeError::BadName(_) | VolumeError::Invalid { .. } => EngineError::InvalidParameter(e.to_string()),
            e => EngineError::Io {
                what: "volume".into(),
                source: std::io::Error::other(e.to_string()),
            },
        }
    }
}

/// Docker's API shape of a volume.
pub fn volume_json(v: &Volume) -> Value {
    json!({
        "Name": v.name, "Driver": v.driver, "Mountpoint": v.mountpoint, "CreatedAt": v.created_at,
        "Labels": if v.labels.is_empty() { Value::Null } else { json!(v.labels) },
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": v.scope,
    })
}

impl Engine {
    /// The volumes a new container gets (creating named ones that do not exist yet).
    pub(super) fn resolve_volumes(&self, config: &ContainerConfig, host: &mut HostConfig) -> Result<Vec<VolumeMount>> {
        let mut out: Vec<VolumeMount> = Vec::new();
        let mut taken: Vec<String> = Vec::new();
        // --volumes-from: the other container's volumes and binds.
        for spec in host.volumes_from.clone() {
            let (name, mode) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
            let other = self.get(name)?.record();
            for v in &other.volumes {
                let mut v = v.clone();
                match mode {
                    "ro" => v.read_only = true,
                    "rw" => v.read_only = false,
                    _ => {}
                }
                taken.push(v.destination.clone());
                out.push(v);
            }
            host.binds
                .extend(other.host_config.binds.iter().filter(|b| b.starts_with('/')).cloned());
        }
        for b in &host.binds {
            let parts: Vec<&str> = b.split(':').collect();
            let dst = parts.get(1).copied().unwrap_or("");
            taken.push(dst.to_string());
            if b.starts_with('/') || parts.len() < 2 {
                continue;
            }
            let opts = parts.get(2).copied().unwrap_or("");
            self.volumes
                .create(Some(parts[0]), BTreeMap::new(), BTreeMap::new(), false)?;
            out.push(VolumeMount {
                name: parts[0].to_string(),
                destination: dst.to_string(),
                read_only: opts.split(',').any(|o| o == "ro"),
                no_copy: opts.split(',').any(|o| o == "nocopy"),
            });
        }
        for m in &host.mounts {
            taken.push(m.target.clone());
            if m.kind != "volume" {
                continue;
            }
            let opts = m.extra.get("VolumeOptions");
            let labels: BTreeMap<String, String> = opts
                .and_then(|o| serde_json::from_value(o["Labels"].clone()).ok())
                .unwrap_or_default();
            let driver_opts: BTreeMap<String, String> = opts
                .and_then(|o| serde_json::from_value(o["DriverConfig"]["Options"].clone()).ok())
                .unwrap_or_default();
            let named = (!m.source.is_empty()).then_some(m.source.as_str());
            let v = self.volumes.create(named, labels, driver_opts, named.is_none())?;
            out.push(VolumeMount {
                name: v.name,
                destination: m.target.clone(),
                read_only: m.read_only,
                no_copy: opts.and_then(|o| o["NoCopy"].as_bool()).unwrap_or(false),
            });
        }
        taken.extend(host.tmpfs.keys().cloned());
        // The image's VOLUMEs not covered otherwise get anonymous volumes.
        for dst in config.volumes.iter().flat_map(|m| m.keys()) {
            if taken
                .iter()
                .any(|t| t.trim_end_matches('/') == dst.trim_end_matches('/'))
            {
                continue;
            }
            let v = self.volumes.create(None, BTreeMap::new(), BTreeMap::new(), true)?;
            out.push(VolumeMount {
                name: v.name,
                destination: dst.clone(),
                read_only: false,
                no_copy: false,
            });
        }
        Ok(out)
    }

    /// At start: mount option-backed volumes, fill new ones from the image's content at
    /// their destination (read through the container's rootfs, never following a link
    /// out of it), and return them for the spec.
    pub(super) fn prepare_volumes(
        &self,
        rec: &Record,
        rootfs: &Path,
    ) -> Result<Vec<(String, std::path::PathBuf, bool)>> {
        let mut out = Vec::new();
        for vm in &rec.volumes {
            let v = self.volumes.get(&vm.name)?;
            self.volumes.activate(&v)?;
            let empty = std::fs::read_dir(&v.mountpoint)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !v.populated && !vm.no_copy && empty {
                copy_up(rootfs, &vm.destination, &v.mountpoint).map_err(|e| EngineError::Io {
                    what: format!("fill volume {} from the image's {}", v.name, vm.destination),
                    source: e,
                })?;
                self.volumes.mark_populated(&v)?;
            }
            out.push((vm.destination.clone(), v.mountpoint.clone(), vm.read_only));
        }
        Ok(out)
    }

    /// Containers that use a volume.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.all()
            .iter()
            .map(|c| c.record())
            .filter(|r| r.volumes.iter().any(|v| v.name == name))
            .map(|r| r.id)
            .collect()
    }

    /// `rm -v`: the container's anonymous volumes that no other container uses.
    pub(super) fn remove_anonymous_volumes(&self, rec: &Record) {
        for vm in &rec.volumes {
            let Ok(v) = self.volumes.get(&vm.name) else { continue };
            if v.anonymous && self.volume_users(&v.name).iter().all(|u| *u == rec.id) {
                let _ = self.volumes.remove(&v.name);
            }
        }
    }

    pub fn volume_create(
        &self,
        name: Option<&str>,
        driver: &str,
        labels: BTreeMap<String, String>,
        opts: BTreeMap<String, String>,
    ) -> Result<Value> {
        if !driver.is_empty() && driver != "local" {
            return Err(EngineError::InvalidParameter(format!(
                "volume driver {driver:?} is not supported (local)"
            )));
        }
        let v = self.volumes.create(name, labels, opts, false)?;
        self.events.emit(
            "volume",
            "create",
            &v.name,
            [("driver".to_string(), "local".to_string())].into(),
        );
        Ok(volume_json(&v))
    }

    pub fn volume_inspect(&self, name: &str) -> Result<Value> {
        Ok(volume_json(&self.volumes.get(name)?))
    }

    pub fn volume_list(&self, filters: &BTreeMap<String, Vec<String>>) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for v in self.volumes.list() {
            let ok = filters.iter().all(|(k, vals)| match k.as_str() {
                "name" => vals.iter().any(|x| v.name.contains(x.as_str())),
                "driver" => vals.iter().any(|x| x == "local"),
                "dangling" => {
                    let unused = self.volume_users(&v.name).is_empty();
                    vals.iter().any(|x| (x == "true" || x == "1") == unused)
                }
                "label" => vals.iter().all(|x| match x.split_once('=') {
                    Some((k, want)) => v.labels.get(k).is_some_and(|val| val == want),
                    None => v.labels.contains_key(x),
                }),
                _ => true,
            });
            if ok {
                out.push(volume_json(&v));
            }
        }
        Ok(out)
    }

    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        // As Docker: `force` makes a missing volume no error, but does not remove a
        // volume a container uses.
        match self.volumes.get(name) {
            Err(crate::volumes::VolumeError::NotFound(_)) if force => return Ok(()),
            r => r?,
        };
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.volumes.remove(name)?;
        self.events.emit("volume", "destroy", name, Default::default());
        Ok(())
    }

    /// `POST /volumes/prune`: unused anonymous volumes, or every unused one with `all`.
    /// `labels` must all match; `not_labels` (`label!=`) must all not match.
    pub fn volume_prune(
        self: &Arc<Self>,
        all: bool,
        labels: &[String],
        not_labels: &[String],
    ) -> Result<(Vec<String>, u64)> {
        let mut deleted = Vec::new();
        let mut space = 0;
        for v in self.volumes.list() {
            if (!all && !v.anonymous) || !self.volume_users(&v.name).is_empty() {
                continue;
            }
            let has = |l: &String| match l.split_once('=') {
                Some((k, want)) => v.labels.get(k).is_some_and(|x| x == want),
                None => v.labels.contains_key(l),
            };
            if !labels.iter().all(has) || not_labels.iter().any(has) {
                continue;
            }
            space += self.volumes.size(&v);
            if self.volumes.remove(&v.name).is_ok() {
                deleted.push(v.name);
            }
        }
        Ok((deleted, space))
    }
}

/// Copy the image's content at `dest` (inside `rootfs`) into a new volume, as `cp -a`.
fn copy_up(rootfs: &Path, dest: &str, to: &Path) -> std::io::Result<()> {
    let root = std::fs::File::open(rootfs)?;
    let src = match berth_runtime::fsutil::open_in_root(
        &root,
        Path::new(dest),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        // Nothing there in the image (or not a directory): nothing to copy.
        Err(_) => return Ok(()),
    };
    use std::os::fd::AsRawFd;
    // The fd is ours; cp reaches it through our /proc entry.
    let from = format!("/proc/{}/fd/{}/.", std::process::id(), src.as_raw_fd());
    let st = std::process::Command::new("cp").arg("-a").arg(&from).arg(to).status()?;
    if !st.success() {
        return Err(std::io::Error::other(format!("cp -a {dest} failed: {st}")));
    }
    Ok(())
}
