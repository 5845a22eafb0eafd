//! Per-container state under the runtime root (`--root`): one directory per container
//! holding `state.json` (written atomically) and, until `start`, the `exec.fifo` the
//! init waits on. Every command on a container holds an flock on its directory.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::fsutil;

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.' only")]
    BadId(String),
    #[error("state of container {id}: {source}")]
    Fs {
        id: String,
        #[source]
        source: fsutil::FsError,
    },
    #[error("state of container {id} is corrupt: {msg}")]
    Corrupt { id: String, msg: String },
}

pub type Result<T> = std::result::Result<T, StateError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the runtime remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// Host pid of the container's init.
    pub pid: i32,
    /// Start time of that pid (field 22 of /proc/PID/stat), to notice pid reuse.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: berth_cgroups::Cgroup,
    /// The config the container was created with (config.json may change later).
    pub config: Spec,
}

/// Validate a container id the way runc does.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StateError::BadId(id.to_string()))
    }
}

/// A locked container directory.
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    _lock: File,
}

fn lock_dir(path: &Path, id: &str) -> Result<File> {
    let f = File::open(path).map_err(|e| StateError::Fs {
        id: id.into(),
        source: fsutil::io_err("open", path)(e),
    })?;
    // SAFETY: flock on an fd we own; blocks until the other command on this container ends.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    if r != 0 {
        return Err(StateError::Fs {
            id: id.into(),
            source: fsutil::io_err("lock", path)(std::io::Error::last_os_error()),
        });
    }
    Ok(f)
}

impl ContainerDir {
    /// Make the directory of a new container (fails if the id is taken).
    pub fn create(root: &Path, id: &str) -> Result<ContainerDir> {
        check_id(id)?;
        std::fs::create_dir_all(root).map_err(|e| StateError::Fs {
            id: id.into(),
            source: fsutil::io_err("create runtime root", root)(e),
        })?;
        let path = root.join(id);
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(StateError::Exists(id.into())),
            Err(e) => {
                return Err(StateError::Fs {
                    id: id.into(),
                    source: fsutil::io_err("create", &path)(e),
                })
            }
        }
        let lock = lock_dir(&path, id)?;
        Ok(ContainerDir {
            id: id.into(),
            path,
            _lock: lock,
        })
    }

    /// Lock the directory of an existing container.
    pub fn open(root: &Path, id: &str) -> Result<ContainerDir> {
        check_id(id)?;
        let path = root.join(id);
        let lock = match lock_dir(&path, id) {
            Ok(l) => l,
            Err(StateError::Fs {
                source: fsutil::FsError::Io { source, .. },
                ..
            }) if source.kind() == std::io::ErrorKind::NotFound => return Err(StateError::NotFound(id.into())),
            Err(e) => return Err(e),
        };
        // The directory may have been deleted while we waited for the lock.
        if !path.join(STATE_FILE).exists() {
            return Err(StateError::NotFound(id.into()));
        }
        Ok(ContainerDir {
            id: id.into(),
            path,
            _lock: lock,
        })
    }

    pub fn load(&self) -> Result<State> {
        let p = self.path.join(STATE_FILE);
        let data = std::fs::read(&p).map_err(|e| StateError::Fs {
            id: self.id.clone(),
            source: fsutil::io_err("read", &p)(e),
        })?;
        serde_json::from_slice(&data).map_err(|e| StateError::Corrupt {
            id: self.id.clone(),
            msg: e.to_string(),
        })
    }

    pub fn save(&self, state: &State) -> Result<()> {
        let data = serde_json::to_vec(state).map_err(|e| StateError::Corrupt {
            id: self.id.clone(),
            msg: e.to_string(),
        })?;
        fsutil::atomic_write(&self.path.join(STATE_FILE), &data).map_err(|source| StateError::Fs {
            id: self.id.clone(),
            source,
        })
    }

    /// The lock's fd, which a forked container process must close so it does not keep
    /// the container locked.
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        self._lock.as_raw_fd()
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// Remove the directory; the lock goes with it.
    pub fn remove(self) -> Result<()> {
        std::fs::remove_dir_all(&self.path).map_err(|e| StateError::Fs {
            id: self.id.clone(),
            source: fsutil::io_err("remove", &self.path)(e),
        })
    }
}

/// Ids of every container under `root`.
pub fn list_ids(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(STATE_FILE).exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    ids
}

/// Start time (clock ticks since boot) of a process, or None if it is gone or a zombie.
pub fn pid_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // fields[0] is the state (field 3); start time is field 22.
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl State {
    /// Whether the recorded init is still the same live process.
    pub fn init_alive(&self) -> bool {
        self.pid > 0 && pid_start_time(self.pid) == Some(self.pid_start)
    }

    pub fn status(&self, dir: &Path) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if matches!(self.cgroup.freezer_state(), Ok(berth_cgroups::FreezerState::Frozen)) {
            return Status::Paused;
        }
        Status::Running
    }

    /// The runtime-spec state document.
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped { 0 } else { self.pid };
        let mut v = serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "status": status.as_str(),
            "pid": pid,
            "bundle": self.bundle,
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::to_value(&self.annotations).unwrap_or_default();
        }
        v
    }
}

pub const OCI_VERSION: &str = "1.2.0";

/// Now as RFC 3339 with nanoseconds, UTC (as runc prints `created`).
pub fn now_rfc3339() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(check_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "../x"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_000_000, 0), "2026-11-18T11:06:40.000000000Z");
    }

    #[test]
    fn own_start_time_is_readable() {
        let me = std::process::id() as i32;
        assert!(pid_start_time(me).is_some());
        assert!(pid_start_time(i32::MAX).is_none());
    }

    #[test]
    fn create_refuses_duplicates() {
        let root = tempfile::tempdir().unwrap();
        let d = ContainerDir::create(root.path(), "c1").unwrap();
        assert!(ContainerDir::create(root.path(), "c2").is_ok());
        assert!(matches!(
            ContainerDir::create(root.path(), "c1"),
            Err(StateError::Exists(_))
        ));
        drop(d);
        assert!(matches!(
            ContainerDir::open(root.path(), "nope"),
            Err(StateError::NotFound(_))
        ));
    }
}
