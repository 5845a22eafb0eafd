//! The Docker Engine API's container documents (`Config`, `HostConfig`, …) as berthd
//! receives and returns them. Fields Berth does not act on yet are kept (`extra`) so
//! inspect shows back what the client sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

type Map = serde_json::Map<String, serde_json::Value>;

/// Docker's "strslice": a JSON string or array of strings (`Cmd`, `Entrypoint`, `Shell`).
pub(crate) fn strslice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<S>::deserialize(d)? {
        None => None,
        Some(S::One(s)) => Some(vec![s]),
        Some(S::Many(v)) => Some(v),
    })
}

/// `null` and absent alike become the default (clients send `null` for empty maps/lists).
pub(crate) fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    /// Nanoseconds; 0 means the default.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// `Config`: what the container runs (the image's config, overridden by the client's).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub domainname: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default)]
    pub attach_stdout: bool,
    #[serde(default)]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub env: Vec<String>,
    #[serde(default, deserialize_with = "strslice")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default, deserialize_with = "strslice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_disabled: Option<bool>,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(default, deserialize_with = "strslice", skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(default, rename = "Type")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ulimit {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Soft")]
    pub soft: i64,
    #[serde(rename = "Hard")]
    pub hard: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    pub path_on_host: String,
    #[serde(default)]
    pub path_in_container: String,
    #[serde(default)]
    pub cgroup_permissions: String,
}

/// A `Mounts` entry (`--mount`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct MountSpec {
    #[serde(default, rename = "Type")]
    pub kind: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(flatten)]
    pub extra: Map,
}

/// `HostConfig`: how the host runs it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub binds: Vec<String>,
    #[serde(default)]
    pub log_config: LogConfig,
    #[serde(default)]
    pub network_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub port_bindings: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    #[serde(default)]
    pub auto_remove: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub cap_add: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub cap_drop: Vec<String>,
    #[serde(default)]
    pub cgroupns_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub group_add: Vec<String>,
    #[serde(default)]
    pub ipc_mode: String,
    #[serde(default)]
    pub oom_score_adj: i32,
    #[serde(default)]
    pub pid_mode: String,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub publish_all_ports: bool,
    #[serde(default)]
    pub readonly_rootfs: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub security_opt: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(default, rename = "UTSMode")]
    pub uts_mode: String,
    #[serde(default)]
    pub userns_mode: String,
    #[serde(default)]
    pub shm_size: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(default)]
    pub cpu_shares: i64,
    #[serde(default)]
    pub memory: i64,
    #[serde(default)]
    pub nano_cpus: i64,
    #[serde(default)]
    pub cgroup_parent: String,
    #[serde(default)]
    pub cpu_period: i64,
    #[serde(default)]
    pub cpu_quota: i64,
    #[serde(default)]
    pub cpuset_cpus: String,
    #[serde(default)]
    pub cpuset_mems: String,
    #[serde(default, deserialize_with = "nullable")]
    pub devices: Vec<DeviceMapping>,
    #[serde(default)]
    pub memory_reservation: i64,
    #[serde(default)]
    pub memory_swap: i64,
    #[serde(default)]
    pub memory_swappiness: Option<i64>,
    #[serde(default)]
    pub oom_kill_disable: Option<bool>,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    pub ulimits: Vec<Ulimit>,
    #[serde(default, deserialize_with = "nullable")]
    pub mounts: Vec<MountSpec>,
    #[serde(default)]
    pub init: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub volumes_from: Vec<String>,
    #[serde(default)]
    pub console_size: Option<[u16; 2]>,
    #[serde(default, deserialize_with = "nullable")]
    pub dns: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub dns_options: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub dns_search: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub extra_hosts: Vec<String>,
    /// `--link name:alias` (Docker stores them as "/name:/container/alias").
    #[serde(default, deserialize_with = "nullable")]
    pub links: Vec<String>,
    #[serde(flatten)]
    pub extra: Map,
}

/// `IPAMConfig` of an endpoint: the addresses asked for (`--ip`, `--ip6`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EndpointIpam {
    #[serde(rename = "IPv4Address", default, skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address", default, skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
}

/// An entry of `NetworkingConfig.EndpointsConfig` (and of `network connect`'s body).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointConfig {
    #[serde(rename = "IPAMConfig", default)]
    pub ipam_config: Option<EndpointIpam>,
    #[serde(default, deserialize_with = "nullable")]
    pub aliases: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub links: Vec<String>,
    #[serde(default)]
    pub mac_address: String,
    #[serde(flatten)]
    pub extra: Map,
}

/// The body of `POST /containers/create`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CreateBody {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(rename = "HostConfig", default)]
    pub host_config: Option<HostConfig>,
    #[serde(rename = "NetworkingConfig", default)]
    pub networking_config: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strslice_and_nulls() {
        let b: CreateBody = serde_json::from_str(
            r#"{"Image":"x","Cmd":"echo hi","Entrypoint":["/bin/sh","-c"],"Env":null,"Labels":null,
                "HostConfig":{"Binds":null,"Memory":1048576,"UTSMode":"host","Foo":1}}"#,
        )
        .unwrap();
        assert_eq!(b.config.cmd, Some(vec!["echo hi".to_string()]));
        assert_eq!(b.config.entrypoint.as_deref().unwrap().len(), 2);
        let hc = b.host_config.unwrap();
        assert_eq!(hc.memory, 1 << 20);
        assert_eq!(hc.uts_mode, "host");
        assert_eq!(hc.extra["Foo"], 1);
    }
}
