//! Named volumes with Docker's `local` driver: `<data-root>/volumes/<name>/_data`, with
//! their metadata in `<name>/volume.json` (written atomically). A volume with options
//! (`type`, `device`, `o`: tmpfs or bind-backed) is mounted on `_data` while in use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const META: &str = "volume.json";
const DATA: &str = "_data";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("volume name {0:?} is invalid: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    #[error("volume {name}: {what}: {source}")]
    Io {
        name: String,
        what: String,
        source: std::io::Error,
    },
    #[error("volume {name}: {problem}")]
    Invalid { name: String, problem: String },
}

type Result<T> = std::result::Result<T, VolumeError>;

/// A volume as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: PathBuf,
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub scope: String,
    /// Made for one container (an image VOLUME or `--mount type=volume` without a name).
    #[serde(default, skip_serializing)]
    pub anonymous: bool,
    /// Filled from a container's image content already (Docker copies on first mount).
    #[serde(default, skip_serializing)]
    pub populated: bool,
}

pub struct VolumeStore {
    root: PathBuf,
}

fn valid(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphanumeric())
        && name.len() >= 2
        && c.all(|x| x.is_ascii_alphanumeric() || matches!(x, '_' | '.' | '-'))
}

fn io(name: &str, what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VolumeError + '_ {
    let what = what.into();
    move |source| VolumeError::Io {
        name: name.into(),
        what,
        source,
    }
}

fn is_mounted(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(p), p.parent().map(std::fs::metadata)) {
        (Ok(a), Some(Ok(b))) => a.dev() != b.dev(),
        _ => false,
    }
}

impl VolumeStore {
    pub fn open(root: impl Into<PathBuf>) -> Result<VolumeStore> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io("<store>", format!("create {}", root.display())))?;
        Ok(VolumeStore { root })
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn save(&self, v: &Volume) -> Result<()> {
        let bytes = serde_json::to_vec(&Stored::from(v)).map_err(|e| VolumeError::Invalid {
            name: v.name.clone(),
            problem: e.to_string(),
        })?;
        berth_runtime::fsutil::atomic_write(&self.dir(&v.name).join(META), &bytes).map_err(|e| VolumeError::Io {
            name: v.name.clone(),
            what: "write metadata".into(),
            source: std::io::Error::other(e),
        })
    }

    /// Create a volume (a random name when `name` is None). Creating an existing name
    /// returns it unchanged, as Docker does.
    pub fn create(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) if !valid(n) => return Err(VolumeError::BadName(n.into())),
            Some(n) => n.to_string(),
            None => crate::record::random_id(),
        };
        if let Ok(v) = self.get(&name) {
            return Ok(v);
        }
        for k in options.keys() {
            if !matches!(k.as_str(), "type" | "device" | "o" | "size") {
                return Err(VolumeError::Invalid {
                    name,
                    problem: format!("invalid option key: {k:?}"),
                });
            }
        }
        let dir = self.dir(&name);
        let tmp = self.root.join(format!(".tmp-{name}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(tmp.join(DATA)).map_err(io(&name, "create directory"))?;
        let v = Volume {
            name: name.clone(),
            driver: "local".into(),
            mountpoint: dir.join(DATA),
            created_at: berth_runtime::state::now_rfc3339(),
            labels,
            options,
            scope: "local".into(),
            anonymous,
            populated: false,
        };
        let bytes = serde_json::to_vec(&Stored::from(&v)).unwrap_or_default();
        berth_runtime::fsutil::atomic_write(&tmp.join(META), &bytes).map_err(|e| VolumeError::Io {
            name: name.clone(),
            what: "write metadata".into(),
            source: std::io::Error::other(e),
        })?;
        std::fs::rename(&tmp, &dir).map_err(io(&name, "rename into place"))?;
        Ok(v)
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        if !valid(name) {
            return Err(VolumeError::NotFound(name.into()));
        }
        let b = std::fs::read(self.dir(name).join(META)).map_err(|_| VolumeError::NotFound(name.into()))?;
        let s: Stored = serde_json::from_slice(&b).map_err(|e| VolumeError::Invalid {
            name: name.into(),
            problem: format!("bad metadata: {e}"),
        })?;
        Ok(s.into_volume(self.dir(name).join(DATA)))
    }

    pub fn list(&self) -> Vec<Volume> {
        let mut out: Vec<Volume> = std::fs::read_dir(&self.root)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| self.get(&e.file_name().to_string_lossy()).ok())
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Mount a tmpfs/bind-backed volume's device on `_data` (no-op for plain ones).
    pub fn activate(&self, v: &Volume) -> Result<()> {
        let Some(typ) = v.options.get("type") else {
            return Ok(());
        };
        if is_mounted(&v.mountpoint) {
            return Ok(());
        }
        let device = v.options.get("device").cloned().unwrap_or_else(|| typ.clone());
        let mut flags = nix::mount::MsFlags::empty();
        let mut data: Vec<String> = Vec::new();
        for o in v.options.get("o").map(|o| o.split(',')).into_iter().flatten() {
            match o {
                "bind" | "rbind" => flags |= nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
                "ro" => flags |= nix::mount::MsFlags::MS_RDONLY,
                "" => {}
                other => data.push(other.to_string()),
            }
        }
        let data = data.join(",");
        nix::mount::mount(
            Some(device.as_str()),
            &v.mountpoint,
            Some(typ.as_str()),
            flags,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .map_err(|e| io(&v.name, format!("mount {typ} {device}"))(e.into()))
    }

    pub fn mark_populated(&self, v: &Volume) -> Result<()> {
        let mut v = v.clone();
        v.populated = true;
        self.save(&v)
    }

    /// Delete a volume and its data (the caller checks no container uses it).
    pub fn remove(&self, name: &str) -> Result<()> {
        let v = self.get(name)?;
        if is_mounted(&v.mountpoint) {
            let _ = nix::mount::umount2(&v.mountpoint, nix::mount::MntFlags::MNT_DETACH);
        }
        // Rename first, so a crash mid-delete never leaves a half-volume under its name.
        let gone = self.root.join(format!(".rm-{name}"));
        std::fs::rename(self.dir(name), &gone).map_err(io(name, "rename for removal"))?;
        std::fs::remove_dir_all(&gone).map_err(io(name, "remove"))
    }

    /// Bytes stored in a volume's data.
    pub fn size(&self, v: &Volume) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(rd) = std::fs::read_dir(p) else { return 0 };
            rd.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
                    _ => 0,
                })
                .sum()
        }
        walk(&v.mountpoint)
    }
}

/// What volume.json holds.
#[derive(Serialize, Deserialize)]
struct Stored {
    name: String,
    created_at: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    options: BTreeMap<String, String>,
    #[serde(default)]
    anonymous: bool,
    #[serde(default)]
    populated: bool,
}

impl From<&Volume> for Stored {
    fn from(v: &Volume) -> Stored {
        Stored {
            name: v.name.clone(),
            created_at: v.created_at.clone(),
            labels: v.labels.clone(),
            options: v.options.clone(),
            anonymous: v.anonymous,
            populated: v.populated,
        }
    }
}

impl Stored {
    fn into_volume(self, mountpoint: PathBuf) -> Volume {
        Volume {
            name: self.name,
            driver: "local".into(),
            mountpoint,
            created_at: self.created_at,
            labels: self.labels,
            options: self.options,
            scope: "local".into(),
            anonymous: self.anonymous,
            populated: self.populated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_get_list_remove() {
        let d = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(d.path()).unwrap();
        let v = s
            .create(
                Some("data"),
                BTreeMap::from([("a".into(), "b".into())]),
                BTreeMap::new(),
                false,
            )
            .unwrap();
        assert!(v.mountpoint.is_dir());
        std::fs::write(v.mountpoint.join("f"), "x").unwrap();
        // Creating it again returns the same volume with its data.
        let again = s.create(Some("data"), BTreeMap::new(), BTreeMap::new(), false).unwrap();
        assert_eq!(again.labels["a"], "b");
        assert_eq!(s.size(&again), 1);
        let anon = s.create(None, BTreeMap::new(), BTreeMap::new(), true).unwrap();
        assert_eq!(anon.name.len(), 64);
        assert!(s.get(&anon.name).unwrap().anonymous);
        assert_eq!(s.list().len(), 2);
        assert!(matches!(
            s.create(Some("bad name"), BTreeMap::new(), BTreeMap::new(), false),
            Err(VolumeError::BadName(_))
        ));
        assert!(s
            .create(
                Some("o1"),
                BTreeMap::new(),
                BTreeMap::from([("nope".into(), "x".into())]),
                false
            )
            .is_err());
        s.remove("data").unwrap();
        assert!(matches!(s.get("data"), Err(VolumeError::NotFound(_))));
        assert_eq!(s.list().len(), 1);
    }
}
