//! The daemon's configuration: `daemon.json` with Docker's key names, then flags.
//! Every path and name is configurable so several daemons (tests) run side by side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DaemonConfig {
    #[serde(default = "default_data_root")]
    pub data_root: PathBuf,
    #[serde(default = "default_exec_root")]
    pub exec_root: PathBuf,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default = "default_log_driver")]
    pub log_driver: String,
    #[serde(default)]
    pub log_opts: BTreeMap<String, String>,
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    #[serde(default)]
    pub live_restore: bool,
    #[serde(default)]
    pub bip: Option<String>,
    #[serde(default)]
    pub default_address_pools: Vec<serde_json::Value>,
    /// Parent of every container's cgroup (Docker's `cgroup-parent`).
    #[serde(default = "default_cgroup_parent")]
    pub cgroup_parent: String,
    /// A seccomp profile file replacing Docker's default one.
    #[serde(default)]
    pub seccomp_profile: Option<PathBuf>,
    #[serde(default)]
    pub debug: bool,
    /// The monitor binary (default: `berth-monitor` next to berthd).
    #[serde(default)]
    pub monitor_path: Option<PathBuf>,
    /// Docker keys Berth accepts and does not act on yet.
    #[serde(default, rename = "storage-driver")]
    pub storage_driver: Option<String>,
    #[serde(default)]
    pub experimental: bool,
    /// Run every container with an init as PID 1 (`--init` per container).
    #[serde(default)]
    pub init: bool,
    /// The init for `--init` (Docker's docker-init is tini): a static binary, bind-mounted
    /// into the container.
    #[serde(default = "default_init_path")]
    pub init_path: PathBuf,
    /// The default bridge's interface (Docker's `bridge` key names an existing one;
    /// Berth creates it).
    #[serde(default = "default_bridge")]
    pub bridge: String,
    /// Berth's nftables table (family inet).
    #[serde(default = "default_firewall_table")]
    pub firewall_table: String,
    /// Docker's key: manage the firewall (Berth uses nftables). false: no NAT, isolation
    /// or port publishing.
    #[serde(default = "default_true")]
    pub iptables: bool,
    /// Docker's key: turn on the host's IP forwarding (false: leave it as it is).
    #[serde(default = "default_true")]
    pub ip_forward: bool,
    /// Docker's key: masquerade the default bridge's outbound traffic.
    #[serde(default = "default_true")]
    pub ip_masq: bool,
    /// Docker's keys, accepted so Docker's daemon.json files load: Berth has no userland
    /// proxy; published ports are always forwarded in the kernel (loopback included),
    /// which is what Docker does with `"userland-proxy": false`.
    #[serde(default = "default_true")]
    pub userland_proxy: bool,
    #[serde(default)]
    pub userland_proxy_path: Option<String>,
    /// Docker's keys for the default bridge: IPv6 on it, its IPv6 subnet, and the
    /// range its IPv4 addresses come from.
    #[serde(default)]
    pub ipv6: bool,
    #[serde(default)]
    pub fixed_cidr_v6: Option<String>,
    #[serde(default)]
    pub fixed_cidr: Option<String>,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Nameservers, search domains and options for containers' resolv.conf.
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_opts: Vec<String>,
    /// Where the embedded DNS forwards names it does not know ("ip:port"; default: the
    /// host's resolv.conf nameservers).
    #[serde(default)]
    pub embedded_dns_upstreams: Option<Vec<String>>,
}

fn default_data_root() -> PathBuf {
    "/var/lib/berth".into()
}
fn default_exec_root() -> PathBuf {
    "/run/berth".into()
}
fn default_log_driver() -> String {
    "json-file".into()
}
fn default_init_path() -> PathBuf {
    "/usr/bin/tini-static".into()
}
fn default_true() -> bool {
    true
}
fn default_bridge() -> String {
    "berth0".into()
}
fn default_firewall_table() -> String {
    "berth".into()
}
fn default_cgroup_parent() -> String {
    "/berth".into()
}

impl Default for DaemonConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("daemon config {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("daemon config {path}: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("daemon config: {0}")]
    Invalid(String),
}

/// Docker's sizes: `10m`, `1g`, `512k`, bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.trim_end_matches('b').chars().last()? {
        'k' => (&s[..s.trim_end_matches('b').len() - 1], 1u64 << 10),
        'm' => (&s[..s.trim_end_matches('b').len() - 1], 1 << 20),
        'g' => (&s[..s.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (s.trim_end_matches('b'), 1),
    };
    num.parse::<f64>().ok().map(|n| (n * mult as f64) as u64)
}

/// A log driver and its options as Docker checks them: the drivers Berth has, the
/// options each takes, their values.
pub fn check_log_config(driver: &str, opts: &BTreeMap<String, String>) -> Result<(), String> {
    let known: &[&str] = match driver {
        "json-file" | "" => &[
            "max-size",
            "max-file",
            "compress",
            "labels",
            "labels-regex",
            "env",
            "env-regex",
            "tag",
        ],
        "local" => &["max-size", "max-file", "compress"],
        "none" => &[],
        other => {
            return Err(format!(
                "logging driver {other:?} is not supported (json-file, local, none)"
            ))
        }
    };
    let name = if driver.is_empty() { "json-file" } else { driver };
    for (k, v) in opts {
        if !known.contains(&k.as_str()) {
            return Err(format!("unknown log opt '{k}' for {name} log driver"));
        }
        let ok = match k.as_str() {
            "max-size" => v == "-1" || parse_size(v).is_some_and(|n| n > 0),
            "max-file" => v.parse::<u32>().is_ok_and(|n| n >= 1),
            "compress" => v == "true" || v == "false",
            _ => true,
        };
        if !ok {
            return Err(format!(
                "invalid value {v:?} for log opt '{k}' of the {name} log driver"
            ));
        }
    }
    Ok(())
}

impl DaemonConfig {
    /// Read `daemon.json`; a missing file at the default location is an empty config.
    pub fn load(path: &Path, must_exist: bool) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.into(),
                    source,
                })
            }
        };
        let cfg: DaemonConfig = serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        for (what, p) in [("data-root", &self.data_root), ("exec-root", &self.exec_root)] {
            if !p.is_absolute() {
                return Err(ConfigError::Invalid(format!(
                    "{what} must be an absolute path: {}",
                    p.display()
                )));
            }
        }
        self.address_pools()?;
        self.bip_net()?;
        self.fixed_cidrs()?;
        self.dns_upstreams()?;
        if self.bridge.is_empty() || self.bridge.len() > 15 {
            return Err(ConfigError::Invalid(format!(
                "bridge {:?}: an interface name of 1 to 15 bytes",
                self.bridge
            )));
        }
        if self.firewall_table.is_empty()
            || !self
                .firewall_table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ConfigError::Invalid(format!(
                "firewall-table {:?}: letters, digits and '_' only",
                self.firewall_table
            )));
        }
        check_log_config(&self.log_driver, &self.log_opts).map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// `default-address-pools` (Docker's defaults when empty).
    pub fn address_pools(&self) -> Result<Vec<berth_network::ipam::AddressPool>, ConfigError> {
        if self.default_address_pools.is_empty() {
            return Ok(berth_network::ipam::default_pools());
        }
        self.default_address_pools
            .iter()
            .map(|v| {
                serde_json::from_value(v.clone()).map_err(|e| {
                    ConfigError::Invalid(format!(
                        "default-address-pools: {v}: {e} (want {{\"base\":\"CIDR\",\"size\":N}})"
                    ))
                })
            })
            .collect()
    }

    /// `bip`: the default bridge's address with its prefix, e.g. 10.20.0.1/16.
    pub fn bip_net(&self) -> Result<Option<ipnet::IpNet>, ConfigError> {
        match &self.bip {
            None => Ok(None),
            Some(s) => s
                .parse::<ipnet::IpNet>()
                .ok()
                .filter(|n| n.addr().is_ipv4() && n.addr() != n.network())
                .map(Some)
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "bip {s:?}: want the bridge's address with a prefix, e.g. 10.20.0.1/16"
                    ))
                }),
        }
    }

    /// `fixed-cidr` (IPv4, inside the default bridge's subnet when `bip` is set) and
    /// `fixed-cidr-v6` (IPv6).
    pub fn fixed_cidrs(&self) -> Result<(Option<ipnet::IpNet>, Option<ipnet::IpNet>), ConfigError> {
        let parse = |key: &str, v: &Option<String>, v6: bool| -> Result<Option<ipnet::IpNet>, ConfigError> {
            let Some(s) = v else { return Ok(None) };
            match s.parse::<ipnet::IpNet>() {
                Ok(n) if n.addr().is_ipv6() == v6 => Ok(Some(n.trunc())),
                _ => Err(ConfigError::Invalid(format!(
                    "{key} {s:?}: want an IPv{} prefix, e.g. {}",
                    if v6 { 6 } else { 4 },
                    if v6 { "fd00:1::/64" } else { "10.20.1.0/24" }
                ))),
            }
        };
        let v4 = parse("fixed-cidr", &self.fixed_cidr, false)?;
        let v6 = parse("fixed-cidr-v6", &self.fixed_cidr_v6, true)?;
        if let (Some(f), Some(b)) = (v4, self.bip_net()?) {
            if !b.trunc().contains(&f) {
                return Err(ConfigError::Invalid(format!(
                    "fixed-cidr {f} is not inside the bridge's subnet {} (bip)",
                    b.trunc()
                )));
            }
        }
        Ok((v4, v6))
    }

    pub fn dns_upstreams(&self) -> Result<Option<Vec<std::net::SocketAddr>>, ConfigError> {
        let Some(list) = &self.embedded_dns_upstreams else {
            return Ok(None);
        };
        list.iter()
            .map(|s| {
                s.parse::<std::net::SocketAddr>()
                    .or_else(|_| {
                        s.parse::<std::net::IpAddr>()
                            .map(|ip| std::net::SocketAddr::new(ip, 53))
                    })
                    .map_err(|_| ConfigError::Invalid(format!("embedded-dns-upstreams: {s:?} is not an address")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.data_root.join("containers")
    }
    pub fn images_dir(&self) -> PathBuf {
        self.data_root.join("image")
    }
    pub fn exec_containers_dir(&self) -> PathBuf {
        self.exec_root.join("c")
    }
    pub fn runtime_root(&self) -> PathBuf {
        self.exec_root.join("runtime")
    }
    pub fn default_socket(&self) -> PathBuf {
        self.exec_root.join("berth.sock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_keys_and_errors() {
        let c: DaemonConfig = serde_json::from_str(
            r#"{"data-root":"/d","insecure-registries":["r:5000"],"log-opts":{"max-size":"1m"},"live-restore":true}"#,
        )
        .unwrap();
        assert_eq!(c.data_root, PathBuf::from("/d"));
        assert_eq!(c.exec_root, PathBuf::from("/run/berth"));
        assert!(c.live_restore);
        let e = serde_json::from_str::<DaemonConfig>(r#"{"data-rot":"/d"}"#).unwrap_err();
        assert!(e.to_string().contains("data-rot"), "{e}");
        let bad = DaemonConfig {
            data_root: "rel".into(),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("data-root"));
    }
}
