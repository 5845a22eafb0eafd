//! `docker container prune` and `docker system df`: containers' writable-layer sizes,
//! images' layer sizes and who uses them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode};
use serde_json::{json, Value};

use super::{Engine, ListOptions};
use crate::error::{EngineError, Result};
use crate::logs::parse_rfc3339;
use crate::record::Record;

/// Bytes of the regular files and symlinks below `dir` (hard links counted once), as
/// Docker sizes a writable layer. Walked by descriptor without following symlinks: a
/// running container may be changing the tree.
fn dir_size(dir: &Path) -> u64 {
    fn walk(fd: OwnedFd, seen: &mut HashSet<(u64, u64)>) -> u64 {
        let Ok(mut d) = nix::dir::Dir::from_fd(fd) else {
            return 0;
        };
        let names: Vec<Vec<u8>> = d
            .iter()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_bytes().to_vec())
            .filter(|n| n != b"." && n != b"..")
            .collect();
        let mut total = 0;
        for n in names {
            let name = OsStr::from_bytes(&n);
            let Ok(st) = fstatat(&d, name, AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                if let Ok(child) = openat(&d, name, flags, Mode::empty()) {
                    total += walk(child, seen);
                }
            } else if st.st_nlink <= 1 || seen.insert((st.st_dev, st.st_ino)) {
                total += st.st_size.max(0) as u64;
            }
        }
        total
    }
    match std::fs::File::open(dir) {
        Ok(f) => walk(f.into(), &mut HashSet::new()),
        Err(_) => 0,
    }
}

/// The container's writable layer directory, from its overlay mount options.
fn upper_dir(rec: &Record) -> Option<&str> {
    rec.rootfs_mount.split(',').find_map(|o| o.strip_prefix("upperdir="))
}

/// A Go duration (`10m`, `1h30m`, `1.5s`) in seconds.
fn go_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += n * unit;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Docker's `until` values: a Unix timestamp, RFC 3339, or a duration before now.
pub(crate) fn parse_until(v: &str) -> Result<f64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    if let Ok(t) = v.parse::<f64>() {
        return Ok(t);
    }
    if let Some((s, ns)) = parse_rfc3339(v) {
        return Ok(s as f64 + f64::from(ns) / 1e9);
    }
    match go_duration(v) {
        Some(d) => Ok(now - d),
        None => Err(EngineError::InvalidParameter(format!(
            "invalid filter 'until={v}': not a timestamp, date or duration"
        ))),
    }
}

/// `label=k`, `label=k=v`: every one must hold.
fn labels_match(labels: &BTreeMap<String, String>, wanted: &[String]) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(w.as_str()),
    })
}

impl Engine {
    fn size_rw(&self, rec: &Record) -> u64 {
        upper_dir(rec).map_or(0, |u| dir_size(Path::new(u)))
    }

    /// Docker's `SizeRw` (the container's writable layer) and `SizeRootFs` (that plus
    /// its image's layers) for `?size=1` on list and inspect.
    pub fn container_sizes(&self, id: &str) -> Result<(u64, u64)> {
        let rec = self.get(id)?.record();
        let rw = self.size_rw(&rec);
        let image = self
            .images
            .resolve(&rec.image)
            .map(|img| img.manifest.layers().iter().map(|l| l.size()).sum::<u64>())
            .unwrap_or(0);
        Ok((rw, rw + image))
    }

    /// `POST /containers/prune`: remove every container that is not running and matches
    /// `filters` (`until`, `label`, `label!`); returns the removed ids and bytes freed.
    pub fn prune_containers(self: &Arc<Self>, filters: &BTreeMap<String, Vec<String>>) -> Result<(Vec<String>, u64)> {
        if let Some(bad) = filters
            .keys()
            .find(|k| !matches!(k.as_str(), "until" | "label" | "label!"))
        {
            return Err(EngineError::InvalidParameter(format!("invalid filter '{bad}'")));
        }
        let until = match filters.get("until").map(Vec::as_slice) {
            None | Some([]) => None,
            Some([v]) => Some(parse_until(v)?),
            Some(_) => {
                return Err(EngineError::InvalidParameter(
                    "more than one until filter specified".into(),
                ))
            }
        };
        let (mut deleted, mut reclaimed) = (Vec::new(), 0);
        for c in self.all() {
            let rec = c.record();
            if rec.state.running || rec.state.restarting {
                continue;
            }
            let created = parse_rfc3339(&rec.created).map_or(0.0, |(s, n)| s as f64 + f64::from(n) / 1e9);
            if until.is_some_and(|u| created > u) {
                continue;
            }
            let labels = &rec.config.labels;
            let label = filters.get("label").map_or(&[][..], Vec::as_slice);
            let not_label = filters.get("label!").map_or(&[][..], Vec::as_slice);
            if !labels_match(labels, label) || (!not_label.is_empty() && labels_match(labels, not_label)) {
                continue;
            }
            let size = self.size_rw(&rec);
            match self.remove(&rec.id, false) {
                Ok(()) => {
                    deleted.push(rec.id.clone());
                    reclaimed += size;
                }
                // Started or removed meanwhile: not ours to prune any more.
                Err(e) => eprintln!("berthd: prune: container {}: {e}", rec.id),
            }
        }
        let attrs = BTreeMap::from([("reclaimed".to_string(), reclaimed.to_string())]);
        self.events.emit("container", "prune", "", attrs);
        Ok((deleted, reclaimed))
    }

    /// `GET /system/df`: Docker's disk usage document (no volumes or build cache here).
    pub fn disk_usage(&self) -> Result<Value> {
        let recs: Vec<Record> = self.all().iter().map(|c| c.record()).collect();
        let mut users: HashMap<String, usize> = HashMap::new();
        for r in &recs {
            *users.entry(r.image.clone()).or_default() += 1;
        }
        // Layer digest → (size, images using it).
        let mut layers: HashMap<String, (u64, usize)> = HashMap::new();
        let mut images = Vec::new();
        for s in self.images.list()? {
            let Ok(img) = self.images.resolve(&s.target.to_string()) else {
                continue;
            };
            let own: Vec<(String, u64)> = img
                .manifest
                .layers()
                .iter()
                .map(|l| (l.digest().to_string(), l.size()))
                .collect();
            for (d, size) in &own {
                layers.entry(d.clone()).or_insert((*size, 0)).1 += 1;
            }
            images.push((s.names, img, own));
        }
        let mut image_size: HashMap<String, u64> = HashMap::new();
        let images: Vec<Value> = images
            .into_iter()
            .map(|(names, img, own)| {
                let size: u64 = own.iter().map(|(_, s)| s).sum();
                let shared: u64 = own.iter().filter(|(d, _)| layers[d].1 > 1).map(|(_, s)| s).sum();
                let id = img.config_digest.to_string();
                image_size.insert(id.clone(), size);
                let cfg = img.config.config().clone().unwrap_or_default();
                json!({
                    "Id": id,
                    "ParentId": "",
                    "RepoTags": names,
                    "RepoDigests": [],
                    "Created": img.config.created().as_deref().and_then(parse_rfc3339).map_or(0, |t| t.0),
                    "Size": size,
                    "SharedSize": shared,
                    "Labels": cfg.labels().clone().unwrap_or_default(),
                    "Containers": users.get(&id).copied().unwrap_or(0),
                })
            })
            .collect();
        let sizes: HashMap<String, u64> = recs.iter().map(|r| (r.id.clone(), self.size_rw(r))).collect();
        let all = ListOptions {
            all: true,
            ..Default::default()
        };
        let mut containers = self.list(&all)?;
        for c in &mut containers {
            let id = c["Id"].as_str().unwrap_or("").to_string();
            let rw = sizes.get(&id).copied().unwrap_or(0);
            let image = image_size
                .get(c["ImageID"].as_str().unwrap_or(""))
                .copied()
                .unwrap_or(0);
            c["SizeRw"] = json!(rw);
            c["SizeRootFs"] = json!(rw + image);
        }
        // Volumes with UsageData (size, how many containers use them), as Docker's df.
        let volumes: Vec<Value> = self
            .volumes
            .list()
            .iter()
            .map(|v| {
                let mut j = super::volume_json(v);
                j["UsageData"] = json!({
                    "Size": self.volumes.size(v),
                    "RefCount": self.volume_users(&v.name).len(),
                });
                j
            })
            .collect();
        Ok(json!({
            "LayersSize": layers.values().map(|(s, _)| s).sum::<u64>(),
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": [],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_and_labels() {
        assert_eq!(go_duration("1h30m"), Some(5400.0));
        assert_eq!(go_duration("1.5s"), Some(1.5));
        assert_eq!(go_duration("10x"), None);
        assert_eq!(parse_until("1700000000").unwrap(), 1.7e9);
        assert!(parse_until("2024-01-01T00:00:00Z").unwrap() > 1.7e9);
        assert!(parse_until("soon").is_err());
        let labels = BTreeMap::from([("a".to_string(), "1".to_string())]);
        assert!(labels_match(&labels, &["a".into(), "a=1".into()]));
        assert!(!labels_match(&labels, &["a=2".into()]));
        assert!(labels_match(&labels, &[]));
    }

    #[test]
    fn sizes_count_hard_links_once() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), [0u8; 100]).unwrap();
        std::fs::hard_link(d.path().join("a"), d.path().join("b")).unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/c"), [0u8; 10]).unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("link")).unwrap();
        assert_eq!(dir_size(d.path()), 110 + 4);
    }
}
