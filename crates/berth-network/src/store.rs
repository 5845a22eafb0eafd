//! Network and endpoint records, persisted one file per network (atomic writes).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{io_err, NetworkError, Result};
use crate::ipam::Allocator;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null` (Docker's names).
    pub driver: String,
    pub created: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub enable_ipv6: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// One allocator per subnet (IPv4 first).
    #[serde(default)]
    pub ipam: Vec<Allocator>,
    #[serde(default)]
    pub ipam_options: BTreeMap<String, String>,
    /// The Linux bridge ("" for host/null).
    #[serde(default)]
    pub bridge: String,
    /// Keyed by container id.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
}

impl Network {
    /// `bridge`, `host` and `none` exist from the start and cannot be removed.
    pub fn predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }

    /// The default bridge: no DNS, no aliases (Docker's legacy `--link` world).
    pub fn is_default_bridge(&self) -> bool {
        self.name == "bridge"
    }

    pub fn gateway_v4(&self) -> Option<IpAddr> {
        self.ipam.iter().map(|a| a.gateway).find(|g| g.is_ipv4())
    }

    pub fn gateway_v6(&self) -> Option<IpAddr> {
        self.ipam.iter().map(|a| a.gateway).find(|g| g.is_ipv6())
    }

    /// Gateway addresses with the subnet's prefix (the bridge's addresses).
    pub fn bridge_addrs(&self) -> Vec<IpNet> {
        self.ipam
            .iter()
            .filter_map(|a| IpNet::new(a.gateway, a.subnet.prefix_len()).ok())
            .collect()
    }

    pub fn option_bool(&self, key: &str, default: bool) -> bool {
        match self.options.get(key).map(|s| s.as_str()) {
            Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            _ => default,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub container: String,
    /// The container's name without the leading slash.
    pub name: String,
    pub mac: String,
    #[serde(default)]
    pub ipv4: Option<IpNet>,
    #[serde(default)]
    pub ipv6: Option<IpNet>,
    pub host_veth: String,
    pub ifname: String,
    /// Names this endpoint answers to in the network's DNS (besides its name).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--link` targets: (alias, container name) pairs resolvable from this endpoint.
    #[serde(default)]
    pub links: Vec<(String, String)>,
}

/// A directory of `<network id>.json` files.
pub(crate) struct Store {
    dir: PathBuf,
}

impl Store {
    pub(crate) fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
        Ok(Store { dir: dir.into() })
    }

    pub(crate) fn load_all(&self) -> Result<Vec<Network>> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.dir).map_err(io_err(format!("read {}", self.dir.display())))?;
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let b = std::fs::read(&p).map_err(io_err(format!("read {}", p.display())))?;
            let n: Network = serde_json::from_slice(&b).map_err(|source| NetworkError::State { path: p, source })?;
            out.push(n);
        }
        Ok(out)
    }

    pub(crate) fn save(&self, n: &Network) -> Result<()> {
        let p = self.dir.join(format!("{}.json", n.id));
        let b = serde_json::to_vec_pretty(n).map_err(|source| NetworkError::State {
            path: p.clone(),
            source,
        })?;
        berth_runtime::fsutil::atomic_write(&p, &b).map_err(|e| NetworkError::Io {
            what: format!("write {}", p.display()),
            source: std::io::Error::other(e.to_string()),
        })
    }

    pub(crate) fn exists(&self, id: &str) -> bool {
        self.dir.join(format!("{id}.json")).exists()
    }

    pub(crate) fn delete(&self, id: &str) -> Result<()> {
        let p = self.dir.join(format!("{id}.json"));
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(format!("remove {}", p.display()))(e)),
        }
    }
}

/// `n` random bytes as hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes();
        for (i, x) in b.iter_mut().enumerate() {
            *x = t[i % 16] ^ (i as u8);
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
