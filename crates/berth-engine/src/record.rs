//! A container's durable record (`<data-root>/containers/<id>/config.v2.json`, written
//! atomically), its Docker-shaped state, and ids and names.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::types::{ContainerConfig, HostConfig};

pub const RECORD_FILE: &str = "config.v2.json";
pub const EXIT_FILE: &str = "exit.json";
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLog {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<HealthLog>,
}

/// Docker's `State`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: "created".into(),
            running: false,
            paused: false,
            restarting: false,
            oom_killed: false,
            dead: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            health: None,
        }
    }
}

impl State {
    pub fn set_running(&mut self, pid: i32, at: String) {
        self.status = "running".into();
        self.running = true;
        self.paused = false;
        self.restarting = false;
        self.oom_killed = false;
        self.pid = pid;
        self.exit_code = 0;
        self.error.clear();
        self.started_at = at;
    }

    pub fn set_exited(&mut self, code: i32, oom: bool, at: String, error: String) {
        self.status = "exited".into();
        self.running = false;
        self.paused = false;
        self.pid = 0;
        self.exit_code = code;
        self.oom_killed = oom;
        self.finished_at = at;
        self.error = error;
    }
}

/// What berthd keeps of a container across restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// With the leading '/', as Docker shows names.
    pub name: String,
    pub created: String,
    /// The image ID (config digest).
    pub image: String,
    /// The image as the user named it.
    pub image_name: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// The overlay mount options of its rootfs (snapshots + its own upper/work dirs).
    #[serde(default)]
    pub rootfs_mount: String,
    pub state: State,
    #[serde(default)]
    pub restart_count: i64,
    /// Stopped by the user (for `unless-stopped` and daemon-start restarts).
    #[serde(default)]
    pub manually_stopped: bool,
    #[serde(default)]
    pub has_been_started: bool,
    #[serde(default)]
    pub exec_ids: Vec<String>,
    /// Volumes mounted in it, resolved at create.
    #[serde(default)]
    pub volumes: Vec<VolumeMount>,
    /// The networks it joins at start (name → endpoint settings), besides NetworkMode's.
    #[serde(default)]
    pub networks: std::collections::BTreeMap<String, crate::types::EndpointConfig>,
}

/// A volume in a container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VolumeMount {
    pub name: String,
    pub destination: String,
    pub read_only: bool,
    /// Do not fill a new volume from the image's content (`nocopy`).
    #[serde(default)]
    pub no_copy: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("container record {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("container record {path}: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("container record {path}: {source}")]
    Write {
        path: PathBuf,
        source: berth_runtime::fsutil::FsError,
    },
}

impl Record {
    pub fn save(&self, dir: &Path) -> Result<(), RecordError> {
        let path = dir.join(RECORD_FILE);
        let bytes = serde_json::to_vec(self).map_err(|source| RecordError::Parse {
            path: path.clone(),
            source,
        })?;
        berth_runtime::fsutil::atomic_write(&path, &bytes).map_err(|source| RecordError::Write { path, source })
    }

    pub fn load(dir: &Path) -> Result<Record, RecordError> {
        let path = dir.join(RECORD_FILE);
        let bytes = std::fs::read(&path).map_err(|source| RecordError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| RecordError::Parse { path, source })
    }

    /// The name without its leading '/'.
    pub fn short_name(&self) -> &str {
        self.name.trim_start_matches('/')
    }
}

/// 64 hex digits from the kernel's random source.
pub fn random_id() -> String {
    let mut b = [0u8; 32];
    let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if ok.is_err() {
        // Not expected on Linux; fall back to time and pid so ids stay unique.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b[..16].copy_from_slice(&t.to_le_bytes());
        b[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    }
    hex(&b)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const ADJECTIVES: [&str; 24] = [
    "admiring", "bold", "brave", "busy", "clever", "cool", "eager", "elated", "focused", "gallant", "happy", "jolly",
    "keen", "lucid", "modest", "nifty", "quirky", "relaxed", "serene", "sharp", "stoic", "tender", "vibrant", "zen",
];
const SURNAMES: [&str; 24] = [
    "babbage", "bohr", "curie", "darwin", "dijkstra", "einstein", "euler", "faraday", "galileo", "hopper", "kepler",
    "knuth", "lamport", "lovelace", "meitner", "newton", "noether", "pascal", "ritchie", "shannon", "thompson",
    "torvalds", "turing", "wozniak",
];

/// A Docker-style random name (`adjective_surname`), with a number when needed.
pub fn random_name(taken: impl Fn(&str) -> bool) -> String {
    let id = random_id();
    let n = usize::from_str_radix(&id[..8], 16).unwrap_or(0);
    let base = format!("{}_{}", ADJECTIVES[n % 24], SURNAMES[(n / 24) % 24]);
    if !taken(&base) {
        return base;
    }
    (1..).map(|i| format!("{base}{i}")).find(|c| !taken(c)).unwrap_or(base)
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && n.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids() {
        assert!(valid_name("web-1") && valid_name("/a.b_c"));
        assert!(!valid_name("-x") && !valid_name("a") && !valid_name("a b") && !valid_name(""));
        let id = random_id();
        assert_eq!(id.len(), 64);
        assert_ne!(id, random_id());
        let n = random_name(|_| false);
        assert!(n.contains('_'));
        let taken = n.clone();
        assert_ne!(random_name(|c| c == taken || c.len() < 100 && !c.ends_with('1')), "");
    }

    #[test]
    fn record_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let r = Record {
            id: "a".repeat(64),
            name: "/x".into(),
            created: ZERO_TIME.into(),
            image: "sha256:00".into(),
            image_name: "busybox".into(),
            config: Default::default(),
            host_config: Default::default(),
            rootfs_mount: String::new(),
            state: State::default(),
            restart_count: 0,
            manually_stopped: false,
            has_been_started: false,
            exec_ids: vec![],
            volumes: vec![],
            networks: Default::default(),
        };
        r.save(d.path()).unwrap();
        let back = Record::load(d.path()).unwrap();
        assert_eq!(back.state, r.state);
        assert_eq!(back.short_name(), "x");
        let s = serde_json::to_value(&back.state).unwrap();
        assert!(s.get("OOMKilled").is_some() && s.get("StartedAt").is_some());
    }
}
