//! The engine: containers made from images, run by their monitors, remembered across
//! daemon restarts. Blocking calls (berthd runs them off its async threads).

mod archive;
mod changes;
mod exec;
mod health;
mod inspect;
mod lifecycle;
mod netsetup;
mod networks;
mod prune;
mod restore;
mod stats;
mod tarfs;
mod top;
mod update;
mod util;
mod volume_mounts;

use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_image::images::ImageStore;
use tokio::sync::{oneshot, watch};

use crate::config::DaemonConfig;
use crate::error::{io_err, EngineError, Result};
use crate::events::Events;
use crate::monitor::{self, proto, Reply, Request};
use crate::record::Record;

pub use exec::{drain_for_status, status_code as exec_status_code, ExecConfig, ExecRecord};
pub use inspect::ListOptions;
pub use lifecycle::Attached;
pub use networks::{network_filter_known, network_matches};
pub use util::{parse_signal, parse_size};
pub use volume_mounts::volume_json;

pub use archive::PathStat;
pub use changes::CommitRequest;
pub use stats::StatsSample;
pub use top::Top;
pub use update::UpdateConfig;

/// An attach made before the container started, completed by `start`.
pub(crate) struct PendingAttach {
    request: Request,
    tx: oneshot::Sender<Result<UnixStream>>,
}

pub struct Container {
    pub id: String,
    rec: Mutex<Record>,
    /// Signalled with `rec` on every state change (for blocking waiters).
    cv: Condvar,
    /// Bumped on every state change (for async waiters).
    changed: watch::Sender<u64>,
    /// Serialises start/stop/restart/remove.
    op: Mutex<()>,
    pending_attach: Mutex<Vec<PendingAttach>>,
    /// How many times its main process exited (for `wait?condition=next-exit`).
    pub exits: AtomicU64,
    pub removed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Container {
    fn new(rec: Record) -> Arc<Container> {
        Arc::new(Container {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            cv: Condvar::new(),
            changed: watch::channel(0).0,
            op: Mutex::new(()),
            pending_attach: Mutex::new(Vec::new()),
            exits: AtomicU64::new(0),
            removed: AtomicBool::new(false),
        })
    }

    /// A copy of the record.
    pub fn record(&self) -> Record {
        lock(&self.rec).clone()
    }

    /// Change the record, persist it, and wake waiters.
    fn update<T>(&self, dir: &Path, f: impl FnOnce(&mut Record) -> T) -> Result<T> {
        let mut r = lock(&self.rec);
        let out = f(&mut r);
        let saved = r.save(dir);
        drop(r);
        self.cv.notify_all();
        self.changed.send_modify(|g| *g += 1);
        saved?;
        Ok(out)
    }

    /// As `update`, without writing the record: for a state about to be superseded
    /// (an exited `--rm` container, removed next; a restarted daemon removes it too).
    fn update_in_memory<T>(&self, f: impl FnOnce(&mut Record) -> T) -> T {
        let mut r = lock(&self.rec);
        let out = f(&mut r);
        drop(r);
        self.cv.notify_all();
        self.changed.send_modify(|g| *g += 1);
        out
    }

    /// Wait (blocking) until `pred` holds or `limit` passes; true if it holds.
    fn wait_for(&self, limit: Duration, pred: impl Fn(&Record) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        let mut r = lock(&self.rec);
        while !pred(&r) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            r = self.cv.wait_timeout(r, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    /// A receiver that changes whenever the state does (for async waiters).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

pub struct Engine {
    pub cfg: DaemonConfig,
    pub images: ImageStore,
    pub volumes: crate::volumes::VolumeStore,
    pub networks: Arc<berth_network::NetworkManager>,
    pub events: Events,
    containers: Mutex<BTreeMap<String, Arc<Container>>>,
    execs: Mutex<HashMap<String, Arc<Mutex<ExecRecord>>>>,
    monitor_bin: PathBuf,
    /// A read-only view of `monitor_bin`, opened once: monitors started through it need
    /// not re-execute themselves to be safe from CVE-2019-5736 (saves a mount and an exec
    /// per container). None: they seal themselves.
    monitor_exe: Option<std::os::fd::OwnedFd>,
    cgroup_v2: bool,
    /// Compiled seccomp programs by profile (its JSON): most containers share Docker's
    /// default, which costs ~10 ms to compile.
    seccomp_programs: Mutex<HashMap<String, PathBuf>>,
}

impl Engine {
    /// Open the data root (creating it), load every container record and re-attach to
    /// the containers that kept running (live restore).
    pub fn open(cfg: DaemonConfig) -> Result<Arc<Engine>> {
        cfg.validate()
            .map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
        for d in [cfg.containers_dir(), cfg.exec_containers_dir(), cfg.runtime_root()] {
            std::fs::create_dir_all(&d).map_err(io_err(format!("create {}", d.display())))?;
        }
        let images = ImageStore::open(cfg.images_dir())?;
        let volumes = crate::volumes::VolumeStore::open(cfg.data_root.join("volumes"))?;
        let monitor_bin = match &cfg.monitor_path {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(io_err("locate own executable"))?
                .with_file_name("berth-monitor"),
        };
        if !monitor_bin.exists() {
            return Err(EngineError::InvalidParameter(format!(
                "monitor binary {} not found (build berth-engine, or set monitor-path)",
                monitor_bin.display()
            )));
        }
        let cgroup_v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let bad = |e: crate::config::ConfigError| EngineError::InvalidParameter(e.to_string());
        let (fixed_cidr, fixed_cidr_v6) = cfg.fixed_cidrs().map_err(bad)?;
        let networks = berth_network::NetworkManager::open(berth_network::NetConfig {
            state_dir: cfg.data_root.join("network"),
            run_dir: cfg.exec_root.join("netns"),
            default_bridge: cfg.bridge.clone(),
            firewall: cfg.iptables,
            bip: cfg.bip_net().map_err(bad)?,
            pools: cfg.address_pools().map_err(bad)?,
            table: cfg.firewall_table.clone(),
            mtu: cfg.mtu,
            dns_upstreams: cfg.dns_upstreams().map_err(bad)?,
            ip_forward: cfg.ip_forward,
            ip_masq: cfg.ip_masq,
            ipv6: cfg.ipv6,
            fixed_cidr,
            fixed_cidr_v6,
        })?;
        let engine = Arc::new(Engine {
            cfg,
            images,
            volumes,
            networks,
            events: Events::default(),
            containers: Mutex::new(BTreeMap::new()),
            execs: Mutex::new(HashMap::new()),
            monitor_exe: berth_runtime::selfexe::open_readonly(&monitor_bin).ok(),
            monitor_bin,
            cgroup_v2,
            seccomp_programs: Mutex::new(HashMap::new()),
        });
        engine.restore()?;
        let running = |id: &str| engine.get(id).map(|c| c.record().state.running).unwrap_or(false);
        engine.networks.reconcile(&running)?;
        engine.restore_dns();
        engine.networks.watch_forward_policy();
        Ok(engine)
    }

    /// The compiled form of a spec's linux.seccomp, in a file under the exec root (made
    /// once per distinct profile). None: no filter, a notify filter, or it could not be
    /// compiled here (the runtime then compiles it and reports any error itself).
    fn seccomp_program(&self, spec: &serde_json::Value) -> Option<PathBuf> {
        let sc = spec.get("linux")?.get("seccomp")?;
        let key = sc.to_string();
        let mut cache = lock(&self.seccomp_programs);
        if let Some(p) = cache.get(&key) {
            return Some(p.clone());
        }
        let parsed: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(sc.clone()).ok()?;
        let prog = berth_runtime::seccomp::program(&parsed).ok()??;
        let dir = self.cfg.exec_root.join("seccomp");
        std::fs::create_dir_all(&dir).ok()?;
        if cache.len() >= 64 {
            // Custom profiles per container: keep the cache (and the directory) small.
            for p in cache.values() {
                let _ = std::fs::remove_file(p);
            }
            cache.clear();
        }
        let path = dir.join(format!("{}.bpf", cache_file_name(&key)));
        berth_runtime::fsutil::atomic_write(&path, &prog.to_bytes()).ok()?;
        cache.insert(key, path.clone());
        Some(path)
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.containers_dir().join(id)
    }

    fn exec_dir(&self, id: &str) -> PathBuf {
        self.cfg.exec_containers_dir().join(id)
    }

    /// Find a container by full id, name, or unique id prefix (as Docker does).
    pub fn get(&self, key: &str) -> Result<Arc<Container>> {
        let all = lock(&self.containers);
        if let Some(c) = all.get(key) {
            return Ok(c.clone());
        }
        let name = format!("/{}", key.trim_start_matches('/'));
        if let Some(c) = all.values().find(|c| lock(&c.rec).name == name) {
            return Ok(c.clone());
        }
        let mut hits = all.iter().filter(|(id, _)| !key.is_empty() && id.starts_with(key));
        match (hits.next(), hits.next()) {
            (Some((_, c)), None) => Ok(c.clone()),
            (Some(_), Some(_)) => Err(EngineError::InvalidParameter(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
            _ => Err(EngineError::NoSuchContainer(key.into())),
        }
    }

    pub fn all(&self) -> Vec<Arc<Container>> {
        lock(&self.containers).values().cloned().collect()
    }

    fn name_taken(&self, name: &str) -> Option<String> {
        let want = format!("/{}", name.trim_start_matches('/'));
        lock(&self.containers)
            .values()
            .find(|c| lock(&c.rec).name == want)
            .map(|c| c.id.clone())
    }

    fn attributes(&self, rec: &Record) -> BTreeMap<String, String> {
        let mut a: BTreeMap<String, String> = rec.config.labels.clone();
        a.insert("name".into(), rec.short_name().into());
        a.insert("image".into(), rec.image_name.clone());
        a
    }

    fn emit(&self, rec: &Record, action: &str) {
        self.events.emit("container", action, &rec.id, self.attributes(rec));
    }

    fn emit_with(&self, rec: &Record, action: &str, extra: &[(&str, String)]) {
        let mut a = self.attributes(rec);
        for (k, v) in extra {
            a.insert((*k).into(), v.clone());
        }
        self.events.emit("container", action, &rec.id, a);
    }
}

/// A file name for a cache key: a 64-bit FNV-1a hash (no crypto needed: collisions only
/// cost a recompile, as the key is checked in memory).
fn cache_file_name(key: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// Connect to a container's monitor and send `req`. The socket path goes through
/// /proc/self/fd so a long exec-root cannot pass the 108-byte limit.
pub(crate) fn monitor_connect(dir: &Path, id: &str, req: &Request) -> Result<UnixStream> {
    let merr = |m: String| EngineError::Monitor {
        id: id.into(),
        message: m,
    };
    let d = std::fs::File::open(dir).map_err(|e| merr(format!("open {}: {e}", dir.display())))?;
    let path = format!("/proc/self/fd/{}/{}", d.as_raw_fd(), monitor::SOCKET_FILE);
    let mut s = UnixStream::connect(&path).map_err(|e| merr(format!("connect: {e}")))?;
    proto::write_line(&mut s, req).map_err(|e| merr(format!("send: {e}")))?;
    Ok(s)
}

/// Read one reply line; what follows it on the stream belongs to the caller, so read
/// byte by byte (replies are short).
pub(crate) fn read_reply(s: &mut UnixStream, id: &str) -> Result<Reply> {
    let merr = |m: String| EngineError::Monitor {
        id: id.into(),
        message: m,
    };
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match std::io::Read::read(s, &mut b) {
            Ok(0) => return Err(merr("closed the connection".into())),
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) => line.push(b[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(merr(format!("read: {e}"))),
        }
    }
    let reply: Reply = serde_json::from_slice(&line).map_err(|e| merr(format!("bad reply: {e}")))?;
    if let Some(e) = &reply.error {
        return Err(merr(e.clone()));
    }
    Ok(reply)
}

/// `monitor_connect` + `read_reply`.
pub(crate) fn monitor_call(dir: &Path, id: &str, req: &Request) -> Result<(UnixStream, Reply)> {
    let mut s = monitor_connect(dir, id, req)?;
    let r = read_reply(&mut s, id)?;
    Ok((s, r))
}
