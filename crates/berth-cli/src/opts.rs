//! `run`/`create` flags (docker's, one for one) and the `POST /containers/create` body
//! the docker CLI builds from them.

use clap::Args;
use serde_json::{json, Map, Value};

use crate::error::{flag_err, Error, Result};
use crate::units::{
    cpus_to_nano, parse_bytes, parse_device, parse_duration_flag, parse_mount, parse_ports, parse_ulimit, parse_volume,
    read_kv_file, security_opts, throttle,
};

#[derive(Args, Debug, Default, Clone)]
pub struct ContainerOpts {
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(long)]
    pub annotation: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long)]
    pub attach: Vec<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Block IO weight (relative device weight)
    #[arg(long = "blkio-weight-device")]
    pub blkio_weight_device: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Write the container ID to the file
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    /// Limit CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<i64>,
    /// Limit CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Add a host device to the container
    #[arg(long)]
    pub device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long = "device-cgroup-rule")]
    pub device_cgroup_rule: Vec<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long = "device-read-bps")]
    pub device_read_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long = "device-read-iops")]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long = "device-write-bps")]
    pub device_write_bps: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long = "device-write-iops")]
    pub device_write_iops: Vec<String>,
    /// Skip image verification (accepted; Berth has no content trust)
    #[arg(long = "disable-content-trust", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub disable_content_trust: Option<bool>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// GPU devices to add to the container ('all' to pass all GPUs)
    #[arg(long)]
    pub gpus: Option<String>,
    /// Add additional groups to join
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Time between running the check during the start period (ms|s|m|h)
    #[arg(long = "health-start-interval")]
    pub health_start_interval: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long)]
    pub ip6: Option<String>,
    /// IPC mode to use
    #[arg(long)]
    pub ipc: Option<String>,
    /// Container isolation technology
    #[arg(long)]
    pub isolation: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long)]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file")]
    pub label_file: Vec<String>,
    /// Add link to another container
    #[arg(long)]
    pub link: Vec<String>,
    /// Container IPv4/IPv6 link-local addresses
    #[arg(long = "link-local-ip")]
    pub link_local_ip: Vec<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long = "memory-swappiness", allow_hyphen_values = true)]
    pub memory_swappiness: Option<i64>,
    /// Attach a filesystem mount to the container
    #[arg(long)]
    pub mount: Vec<String>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Connect a container to a network
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i32>,
    /// PID namespace to use
    #[arg(long)]
    pub pid: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long)]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Runtime to use for this container
    #[arg(long)]
    pub runtime: Option<String>,
    /// Security Options
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Storage driver options for the container
    #[arg(long = "storage-opt")]
    pub storage_opt: Vec<String>,
    /// Sysctl options
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// User namespace to use
    #[arg(long)]
    pub userns: Option<String>,
    /// UTS namespace to use
    #[arg(long)]
    pub uts: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long)]
    pub volume: Vec<String>,
    /// Optional volume driver for the container
    #[arg(long = "volume-driver")]
    pub volume_driver: Option<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
}

fn bytes(flag: &str, v: &Option<String>) -> Result<i64> {
    match v {
        None => Ok(0),
        Some(s) => parse_bytes(s).map_err(|e| flag_err(flag, s, e)),
    }
}

fn duration(flag: &str, v: &Option<String>) -> Result<i64> {
    match v {
        None => Ok(0),
        Some(s) => parse_duration_flag(s).map_err(|e| flag_err(flag, s, e)),
    }
}

/// `-e KEY` takes KEY's value from here when set (and is passed as is otherwise).
fn env_value(v: &str) -> Result<String> {
    match v.split_once('=') {
        Some(("", _)) => Err(Error::usage(format!("invalid environment variable: {v}"))),
        Some(_) => Ok(v.to_string()),
        None => Ok(std::env::var(v)
            .map(|x| format!("{v}={x}"))
            .unwrap_or_else(|_| v.to_string())),
    }
}

fn kv_map(list: &[String], flag: &str) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    for s in list {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| flag_err(flag, s, "expected key=value"))?;
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(m)
}

fn normalize_cap(c: &str) -> String {
    let c = c.trim().to_uppercase();
    if c == "ALL" || c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

fn list_or_null(v: Vec<String>) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

/// How the CLI will use the container (run attaches unless detached).
pub struct Mode {
    pub detach: bool,
    pub console: Option<(u16, u16)>,
}

impl ContainerOpts {
    /// The create body for `image` running `cmd`.
    pub fn body(&self, image: &str, cmd: &[String], mode: &Mode) -> Result<Value> {
        let attach: Vec<String> = self.attach.iter().map(|a| a.to_lowercase()).collect();
        for a in &attach {
            if !matches!(a.as_str(), "stdin" | "stdout" | "stderr") {
                return Err(Error::usage(format!(
                    "invalid argument {a:?} for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
                )));
            }
        }
        if mode.detach && !attach.is_empty() {
            return Err(Error::usage(
                "conflicting options: cannot specify both --attach and --detach",
            ));
        }
        let (a_in, a_out, a_err) = if mode.detach {
            (false, false, false)
        } else if attach.is_empty() {
            (self.interactive, true, true)
        } else {
            (
                attach.iter().any(|a| a == "stdin"),
                attach.iter().any(|a| a == "stdout"),
                attach.iter().any(|a| a == "stderr"),
            )
        };
        if self.rm && self.restart != "no" && !self.restart.is_empty() {
            return Err(Error::usage(
                "conflicting options: cannot specify both --restart and --rm",
            ));
        }
        let mut env = Vec::new();
        for f in &self.env_file {
            for line in read_kv_file(f, true)? {
                env.push(line);
            }
        }
        for e in &self.env {
            env.push(env_value(e)?);
        }
        let mut labels = Map::new();
        let mut label_lines = Vec::new();
        for f in &self.label_file {
            label_lines.extend(read_kv_file(f, false)?);
        }
        label_lines.extend(self.label.iter().cloned());
        for l in label_lines {
            let (k, v) = l.split_once('=').unwrap_or((&l, ""));
            labels.insert(k.to_string(), json!(v));
        }
        let (exposed, bindings) = parse_ports(&self.publish, &self.expose)?;
        let mut binds = Vec::new();
        let mut volumes = Map::new();
        for v in &self.volume {
            parse_volume(v, &mut binds, &mut volumes)?;
        }
        let mounts = self.mount.iter().map(|m| parse_mount(m)).collect::<Result<Vec<_>>>()?;
        let restart = parse_restart(&self.restart)?;
        let health = self.health()?;
        let (security, unmask) = security_opts(&self.security_opt)?;
        let mut ulimits = Vec::new();
        for u in &self.ulimit {
            ulimits.push(parse_ulimit(u).map_err(|e| flag_err("--ulimit", u, e))?);
        }
        let devices = self
            .device
            .iter()
            .map(|d| parse_device(d))
            .collect::<Result<Vec<_>>>()?;
        let mut tmpfs = Map::new();
        for t in &self.tmpfs {
            let (path, opts) = t.split_once(':').unwrap_or((t, ""));
            tmpfs.insert(path.to_string(), json!(opts));
        }
        let mut log_opts = Map::new();
        for o in &self.log_opt {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| flag_err("--log-opt", o, "expected key=value"))?;
            log_opts.insert(k.into(), json!(v));
        }
        let nano_cpus = match &self.cpus {
            Some(c) => cpus_to_nano(c).map_err(|e| flag_err("--cpus", c, e))?,
            None => 0,
        };
        let memory_swap = match self.memory_swap.as_deref() {
            Some("-1") => -1,
            _ => bytes("--memory-swap", &self.memory_swap)?,
        };
        let network = self.network.clone().unwrap_or_else(|| "default".into());
        let mut weight_devices = Vec::new();
        for w in &self.blkio_weight_device {
            let (p, n) = w
                .split_once(':')
                .ok_or_else(|| flag_err("--blkio-weight-device", w, "expected <device-path>:<weight>"))?;
            let n: u16 = n.parse().map_err(|e| flag_err("--blkio-weight-device", w, e))?;
            weight_devices.push(json!({"Path": p, "Weight": n}));
        }

        let mut config = json!({
            "Hostname": self.hostname.clone().unwrap_or_default(),
            "Domainname": self.domainname.clone().unwrap_or_default(),
            "User": self.user.clone().unwrap_or_default(),
            "AttachStdin": a_in,
            "AttachStdout": a_out,
            "AttachStderr": a_err,
            "Tty": self.tty,
            "OpenStdin": self.interactive,
            "StdinOnce": self.interactive && a_in,
            "Env": list_or_null(env),
            "Cmd": if cmd.is_empty() { Value::Null } else { json!(cmd) },
            "Image": image,
            "Volumes": volumes,
            "WorkingDir": self.workdir.clone().unwrap_or_default(),
            "Entrypoint": self.entrypoint.as_ref().map(|e| json!([e])).unwrap_or(Value::Null),
            "OnBuild": null,
            "Labels": labels,
        });
        let c = config.as_object_mut().expect("object");
        if !exposed.is_empty() {
            c.insert("ExposedPorts".into(), Value::Object(exposed));
        }
        if let Some(h) = health {
            c.insert("Healthcheck".into(), h);
        }
        if let Some(s) = &self.stop_signal {
            c.insert("StopSignal".into(), json!(s));
        }
        if let Some(t) = self.stop_timeout {
            c.insert("StopTimeout".into(), json!(t));
        }
        if let Some(m) = &self.mac_address {
            c.insert("MacAddress".into(), json!(m));
        }

        let mut host = json!({
            "Binds": list_or_null(binds),
            "ContainerIDFile": self.cidfile.clone().unwrap_or_default(),
            "LogConfig": {"Type": self.log_driver.clone().unwrap_or_default(), "Config": log_opts},
            "NetworkMode": network,
            "PortBindings": bindings,
            "RestartPolicy": restart,
            "AutoRemove": self.rm,
            "VolumeDriver": self.volume_driver.clone().unwrap_or_default(),
            "VolumesFrom": list_or_null(self.volumes_from.clone()),
            "ConsoleSize": match mode.console { Some((h, w)) if self.tty => json!([h, w]), _ => json!([0, 0]) },
            "CapAdd": list_or_null(self.cap_add.iter().map(|c| normalize_cap(c)).collect()),
            "CapDrop": list_or_null(self.cap_drop.iter().map(|c| normalize_cap(c)).collect()),
            "CgroupnsMode": self.cgroupns.clone().unwrap_or_default(),
            "Dns": self.dns,
            "DnsOptions": self.dns_option,
            "DnsSearch": self.dns_search,
            "ExtraHosts": list_or_null(self.add_host.clone()),
            "GroupAdd": list_or_null(self.group_add.clone()),
            "IpcMode": self.ipc.clone().unwrap_or_default(),
            "Cgroup": "",
            "Links": list_or_null(self.link.clone()),
            "OomScoreAdj": self.oom_score_adj.unwrap_or(0),
            "PidMode": self.pid.clone().unwrap_or_default(),
            "Privileged": self.privileged,
            "PublishAllPorts": self.publish_all,
            "ReadonlyRootfs": self.read_only,
            "SecurityOpt": list_or_null(security),
            "UTSMode": self.uts.clone().unwrap_or_default(),
            "UsernsMode": self.userns.clone().unwrap_or_default(),
            "ShmSize": bytes("--shm-size", &self.shm_size)?,
            "Isolation": self.isolation.clone().unwrap_or_default(),
            "CpuShares": self.cpu_shares.unwrap_or(0),
            "Memory": bytes("-m, --memory", &self.memory)?,
            "NanoCpus": nano_cpus,
            "CgroupParent": self.cgroup_parent.clone().unwrap_or_default(),
            "BlkioWeight": self.blkio_weight.unwrap_or(0),
            "BlkioWeightDevice": weight_devices,
            "BlkioDeviceReadBps": throttle(&self.device_read_bps, "--device-read-bps", true)?,
            "BlkioDeviceWriteBps": throttle(&self.device_write_bps, "--device-write-bps", true)?,
            "BlkioDeviceReadIOps": throttle(&self.device_read_iops, "--device-read-iops", false)?,
            "BlkioDeviceWriteIOps": throttle(&self.device_write_iops, "--device-write-iops", false)?,
            "CpuPeriod": self.cpu_period.unwrap_or(0),
            "CpuQuota": self.cpu_quota.unwrap_or(0),
            "CpuRealtimePeriod": self.cpu_rt_period.unwrap_or(0),
            "CpuRealtimeRuntime": self.cpu_rt_runtime.unwrap_or(0),
            "CpusetCpus": self.cpuset_cpus.clone().unwrap_or_default(),
            "CpusetMems": self.cpuset_mems.clone().unwrap_or_default(),
            "Devices": devices,
            "DeviceCgroupRules": list_or_null(self.device_cgroup_rule.clone()),
            "DeviceRequests": null,
            "MemoryReservation": bytes("--memory-reservation", &self.memory_reservation)?,
            "MemorySwap": memory_swap,
            "MemorySwappiness": self.memory_swappiness.unwrap_or(-1),
            "OomKillDisable": self.oom_kill_disable,
            "PidsLimit": self.pids_limit.unwrap_or(0),
            "Ulimits": ulimits,
            "CpuCount": 0,
            "CpuPercent": 0,
            "IOMaximumIOps": 0,
            "IOMaximumBandwidth": 0,
            "MaskedPaths": if unmask { json!([]) } else { Value::Null },
            "ReadonlyPaths": if unmask { json!([]) } else { Value::Null },
        });
        let h = host.as_object_mut().expect("object");
        if !tmpfs.is_empty() {
            h.insert("Tmpfs".into(), Value::Object(tmpfs));
        }
        if !self.sysctl.is_empty() {
            h.insert("Sysctls".into(), Value::Object(kv_map(&self.sysctl, "--sysctl")?));
        }
        if !mounts.is_empty() {
            h.insert("Mounts".into(), json!(mounts));
        }
        if self.init {
            h.insert("Init".into(), json!(true));
        }
        if let Some(r) = &self.runtime {
            h.insert("Runtime".into(), json!(r));
        }
        if !self.storage_opt.is_empty() {
            h.insert(
                "StorageOpt".into(),
                Value::Object(kv_map(&self.storage_opt, "--storage-opt")?),
            );
        }
        if !self.annotation.is_empty() {
            h.insert(
                "Annotations".into(),
                Value::Object(kv_map(&self.annotation, "--annotation")?),
            );
        }
        if let Some(g) = &self.gpus {
            let count = if g == "all" {
                -1
            } else {
                g.trim_start_matches("count=").parse::<i64>().unwrap_or(1)
            };
            h.insert(
                "DeviceRequests".into(),
                json!([{"Driver": "", "Count": count, "DeviceIDs": null, "Capabilities": [["gpu"]], "Options": {}}]),
            );
        }
        c.insert("HostConfig".into(), host);
        c.insert("NetworkingConfig".into(), self.networking(&network));
        Ok(config)
    }

    /// NetworkingConfig as docker sends it: an endpoint (all of its fields) for the
    /// implied "default" network, none for a plain `--network`, and one carrying the
    /// per-network options when any is given.
    fn networking(&self, network: &str) -> Value {
        let mut ipam = Map::new();
        if let Some(ip) = &self.ip {
            ipam.insert("IPv4Address".into(), json!(ip));
        }
        if let Some(ip) = &self.ip6 {
            ipam.insert("IPv6Address".into(), json!(ip));
        }
        if !self.link_local_ip.is_empty() {
            ipam.insert("LinkLocalIPs".into(), json!(self.link_local_ip));
        }
        let custom = !ipam.is_empty() || !self.network_alias.is_empty();
        if self.network.is_some() && !custom {
            return json!({"EndpointsConfig": {}});
        }
        let ep = json!({
            "IPAMConfig": if ipam.is_empty() { Value::Null } else { Value::Object(ipam) },
            "Links": null,
            "Aliases": list_or_null(self.network_alias.clone()),
            "MacAddress": "", "DriverOpts": null, "GwPriority": 0, "NetworkID": "", "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "DNSNames": null,
        });
        json!({ "EndpointsConfig": { network: ep } })
    }

    fn health(&self) -> Result<Option<Value>> {
        let any = self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_start_period.is_some()
            || self.health_start_interval.is_some()
            || self.health_retries.is_some();
        if self.no_healthcheck {
            if any {
                return Err(Error::usage("--no-healthcheck conflicts with --health-* options"));
            }
            return Ok(Some(json!({"Test": ["NONE"]})));
        }
        if !any {
            return Ok(None);
        }
        let mut h = Map::new();
        if let Some(c) = &self.health_cmd {
            h.insert("Test".into(), json!(["CMD-SHELL", c]));
        }
        for (key, flag, v) in [
            ("Interval", "--health-interval", &self.health_interval),
            ("Timeout", "--health-timeout", &self.health_timeout),
            ("StartPeriod", "--health-start-period", &self.health_start_period),
            ("StartInterval", "--health-start-interval", &self.health_start_interval),
        ] {
            let d = duration(flag, v)?;
            if d < 0 {
                return Err(Error::usage(format!("{flag} cannot be negative")));
            }
            if d != 0 {
                h.insert(key.into(), json!(d));
            }
        }
        if let Some(r) = self.health_retries {
            if r < 0 {
                return Err(Error::usage("--health-retries cannot be negative"));
            }
            if r != 0 {
                h.insert("Retries".into(), json!(r));
            }
        }
        Ok(Some(Value::Object(h)))
    }
}

/// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn parse_restart(s: &str) -> Result<Value> {
    let (name, count) = s.split_once(':').unwrap_or((s, ""));
    let name = if name.is_empty() { "no" } else { name };
    let n: i64 = match (name, count) {
        (_, "") => 0,
        ("on-failure", c) => c.parse().map_err(|_| {
            Error::usage(format!(
                "invalid restart policy format: maximum retry count must be an integer: {s:?}"
            ))
        })?,
        _ => {
            return Err(Error::usage(format!(
                "invalid restart policy format: {s:?}: only on-failure takes a count"
            )))
        }
    };
    if !matches!(name, "no" | "always" | "unless-stopped" | "on-failure") {
        return Err(Error::usage(format!(
            "invalid restart policy format: unknown policy {name:?}"
        )));
    }
    Ok(json!({"Name": name, "MaximumRetryCount": n}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert_eq!(parse_restart("on-failure:3").unwrap()["MaximumRetryCount"], 3);
        assert_eq!(parse_restart("always").unwrap()["Name"], "always");
        assert!(parse_restart("sometimes").is_err());
        assert!(parse_restart("always:2").is_err());
    }
}
