//! A container's networking: its NetworkMode and endpoint settings checked at create,
//! turned at start into a network namespace wired to its networks (berth-network does
//! the wiring), with the /etc/hosts and resolv.conf that go with it; undone at exit.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use berth_network::ports::{parse_binding, PortRequest};
use berth_network::store::{Endpoint, Network};
use berth_network::EndpointRequest;
use serde_json::{json, Value};

use super::util::resolv_conf;
use super::{lock, Engine};
use crate::error::{EngineError, Result};
use crate::ocispec::NetNs;
use crate::record::Record;
use crate::types::{EndpointConfig, HostConfig};

const BASE_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// What a container's NetworkMode asks for.
pub(crate) enum Mode {
    /// A bridge network, by name or id (`bridge` for the default one).
    Network(String),
    None,
    Host,
    Container(String),
}

pub(crate) fn mode_of(network_mode: &str) -> Mode {
    match network_mode {
        "" | "default" | "bridge" => Mode::Network("bridge".into()),
        "none" => Mode::None,
        "host" => Mode::Host,
        m => match m.strip_prefix("container:") {
            Some(c) => Mode::Container(c.into()),
            None => Mode::Network(m.into()),
        },
    }
}

/// The files and namespace a start needs.
pub(crate) struct NetSetup {
    pub netns: NetNs,
    pub hosts: String,
    pub resolv: String,
}

fn endpoint_request(cfg: &EndpointConfig, links: Vec<(String, String)>) -> Result<EndpointRequest> {
    let ip = |s: &str, what: &str| -> Result<Option<IpAddr>> {
        if s.is_empty() {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|_| EngineError::InvalidParameter(format!("invalid {what} address {s:?}")))
    };
    let ipam = cfg.ipam_config.clone().unwrap_or_default();
    let mac = if cfg.mac_address.is_empty() {
        None
    } else {
        let b: Vec<u8> = cfg
            .mac_address
            .split(':')
            .filter_map(|x| u8::from_str_radix(x, 16).ok())
            .collect();
        let m: [u8; 6] = b
            .try_into()
            .map_err(|_| EngineError::InvalidParameter(format!("invalid MAC address {:?}", cfg.mac_address)))?;
        Some(m)
    };
    Ok(EndpointRequest {
        ipv4: ip(&ipam.ipv4_address, "IPv4")?,
        ipv6: ip(&ipam.ipv6_address, "IPv6")?,
        aliases: cfg.aliases.clone(),
        mac,
        links,
    })
}

/// Requested addresses must lie in the network's subnets, and only user networks take them.
fn check_addresses(n: &Network, req: &EndpointRequest) -> Result<()> {
    for ip in [req.ipv4, req.ipv6].into_iter().flatten() {
        if n.is_default_bridge() {
            return Err(EngineError::InvalidParameter(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        if !n.ipam.iter().any(|a| a.subnet.contains(&ip)) {
            return Err(EngineError::InvalidParameter(format!(
                "Invalid address {ip}: It does not belong to any of this network's subnets ({})",
                n.name
            )));
        }
    }
    Ok(())
}

/// `--link name[:alias]` in any of Docker's spellings → (target name, alias).
fn parse_link(l: &str) -> (String, String) {
    let (name, alias) = l.split_once(':').unwrap_or((l, l));
    let name = name.trim_start_matches('/').to_string();
    let alias = alias.rsplit('/').next().unwrap_or(alias).to_string();
    (name, alias)
}

/// Docker's port requests: PortBindings, plus every exposed port with `-P`.
pub(crate) fn port_requests(
    rec_host: &HostConfig,
    exposed: Option<&BTreeMap<String, Value>>,
) -> Result<Vec<PortRequest>> {
    let mut out = Vec::new();
    for (key, v) in &rec_host.port_bindings {
        let list = v.as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            continue;
        }
        for b in list {
            let hip = b["HostIp"].as_str().unwrap_or("");
            let hport = b["HostPort"].as_str().unwrap_or("");
            out.push(parse_binding(key, hip, hport).map_err(|e| EngineError::InvalidParameter(e.to_string()))?);
        }
    }
    if rec_host.publish_all_ports {
        for key in exposed
            .map(|e| e.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let has = rec_host
                .port_bindings
                .get(&key)
                .and_then(|v| v.as_array())
                .is_some_and(|a| !a.is_empty());
            if !has {
                out.push(parse_binding(&key, "", "").map_err(|e| EngineError::InvalidParameter(e.to_string()))?);
            }
        }
    }
    Ok(out)
}

impl Engine {
    /// Create: check the network settings; the endpoint settings to keep (by network
    /// name, NetworkMode's network included).
    pub(crate) fn plan_networks(
        &self,
        host: &HostConfig,
        exposed: Option<&BTreeMap<String, Value>>,
        networking: Option<&Value>,
    ) -> Result<BTreeMap<String, EndpointConfig>> {
        let mut eps: BTreeMap<String, EndpointConfig> = match networking.and_then(|v| v.get("EndpointsConfig")) {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| EngineError::InvalidParameter(format!("NetworkingConfig.EndpointsConfig: {e}")))?,
        };
        // Clients name the default network "default" (NetworkMode's spelling).
        if let Some(c) = eps.remove("default") {
            eps.entry("bridge".into()).or_insert(c);
        }
        let ports = port_requests(host, exposed)?;
        if !ports.is_empty() && !self.cfg.iptables && !matches!(mode_of(&host.network_mode), Mode::Host) {
            return Err(EngineError::InvalidParameter(
                "cannot publish ports: the daemon runs without its firewall (iptables: false)".into(),
            ));
        }
        let mut out = BTreeMap::new();
        match mode_of(&host.network_mode) {
            Mode::Host | Mode::None => {
                if !host.port_bindings.is_empty() && matches!(mode_of(&host.network_mode), Mode::None) {
                    // Docker ignores them too (with a warning); nothing to publish to.
                }
                return Ok(out);
            }
            Mode::Container(c) => {
                self.get(&c)?;
                if !host.port_bindings.is_empty() {
                    return Err(EngineError::InvalidParameter(
                        "conflicting options: port publishing and the container type network mode".into(),
                    ));
                }
                return Ok(out);
            }
            Mode::Network(key) if key == "bridge" && self.cfg.bridge == "none" => {
                // No default bridge (daemon `bridge: none`): loopback only, as Docker.
                return Ok(out);
            }
            Mode::Network(key) => {
                let n = self
                    .networks
                    .get(&key)
                    .map_err(|_| EngineError::NotFound(format!("network {key} not found")))?;
                match n.driver.as_str() {
                    "host" | "null" => return Ok(out),
                    _ => {}
                }
                let cfg = eps
                    .get(&key)
                    .or_else(|| eps.get(&n.name))
                    .or_else(|| eps.get(&n.id))
                    .cloned();
                out.insert(n.name.clone(), cfg.unwrap_or_default());
            }
        }
        for (key, cfg) in eps {
            let n = self
                .networks
                .get(&key)
                .map_err(|_| EngineError::NotFound(format!("network {key} not found")))?;
            if n.driver != "bridge" {
                return Err(EngineError::InvalidParameter(format!(
                    "container cannot be connected to network {} together with others",
                    n.name
                )));
            }
            check_addresses(&n, &endpoint_request(&cfg, vec![])?)?;
            out.entry(n.name.clone()).or_insert(cfg);
        }
        Ok(out)
    }

    /// Start: the namespace and files for `rec`. On error nothing is left behind.
    pub(crate) fn setup_network(self: &Arc<Self>, rec: &Record, hostname: &str) -> Result<NetSetup> {
        let mut resolv = self.resolv_for(rec, None);
        match mode_of(&rec.host_config.network_mode) {
            Mode::Host => {
                let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| BASE_HOSTS.into());
                return Ok(NetSetup {
                    netns: NetNs::Host,
                    hosts: self.with_extra_hosts(hosts, &rec.host_config, None),
                    resolv,
                });
            }
            Mode::None => {
                return Ok(NetSetup {
                    netns: NetNs::New,
                    hosts: self.with_extra_hosts(BASE_HOSTS.to_string(), &rec.host_config, None),
                    resolv,
                })
            }
            Mode::Container(c) => {
                let other = self.get(&c)?;
                let o = other.record();
                if !o.state.running {
                    return Err(EngineError::Conflict(format!(
                        "cannot join network namespace of a non running container: {}",
                        other.id
                    )));
                }
                let sb = self.networks.sandbox_path(&other.id);
                let path: PathBuf = if sb.exists() {
                    sb
                } else {
                    format!("/proc/{}/ns/net", o.state.pid).into()
                };
                let dir = self.container_dir(&other.id);
                return Ok(NetSetup {
                    netns: NetNs::Path(path),
                    hosts: std::fs::read_to_string(dir.join("hosts")).unwrap_or_else(|_| BASE_HOSTS.into()),
                    resolv: std::fs::read_to_string(dir.join("resolv.conf")).unwrap_or(resolv),
                });
            }
            Mode::Network(_) => {}
        }
        if rec.networks.is_empty() {
            // Its only network was disconnected: a namespace with lo only, as Docker's.
            return Ok(NetSetup {
                netns: NetNs::New,
                hosts: BASE_HOSTS.into(),
                resolv,
            });
        }
        let made = (|| {
            let path = self.networks.create_sandbox(&rec.id)?;
            let mut eps: Vec<(Network, Endpoint)> = Vec::new();
            for (i, (net, cfg)) in self.ordered_networks(rec).into_iter().enumerate() {
                let n = self.networks.get(&net)?;
                let links = if n.is_default_bridge() {
                    vec![]
                } else {
                    rec.host_config
                        .links
                        .iter()
                        .map(|l| {
                            let (name, alias) = parse_link(l);
                            (alias, name)
                        })
                        .collect()
                };
                let req = endpoint_request(&cfg, links)?;
                let ep = self.networks.connect(&rec.id, &rec.name, &n.id, &req, &path, i == 0)?;
                eps.push((n, ep));
            }
            let reqs = port_requests(&rec.host_config, rec.config.exposed_ports.as_ref())?;
            self.networks.publish(&rec.id, &reqs)?;
            Ok::<_, EngineError>((path, eps))
        })();
        let (path, eps) = match made {
            Ok(x) => x,
            Err(e) => {
                self.networks.teardown(&rec.id);
                return Err(e);
            }
        };
        let mut hosts = BASE_HOSTS.to_string();
        if let Some((n, ep)) = eps.first() {
            for ip in [ep.ipv4, ep.ipv6].into_iter().flatten() {
                hosts.push_str(&format!("{}\t{hostname}\n", ip.addr()));
            }
            if n.is_default_bridge() {
                for l in &rec.host_config.links {
                    let (name, alias) = parse_link(l);
                    let Ok(t) = self.get(&name) else { continue };
                    let tr = t.record();
                    if let Some((_, tep)) = self
                        .networks
                        .endpoints_of(&t.id)
                        .into_iter()
                        .find(|(tn, _)| tn.id == n.id)
                    {
                        if let Some(ip) = tep.ipv4 {
                            let th = if tr.config.hostname.is_empty() {
                                t.id[..12].to_string()
                            } else {
                                tr.config.hostname.clone()
                            };
                            hosts.push_str(&format!("{}\t{alias} {th} {}\n", ip.addr(), tr.short_name()));
                        }
                    }
                }
            }
        }
        if let Some(dns) = self.embedded_dns(rec, &eps) {
            resolv = self.resolv_for(rec, Some(dns));
        }
        let gw = eps.first().and_then(|(n, _)| n.gateway_v4());
        Ok(NetSetup {
            netns: NetNs::Path(path),
            hosts: self.with_extra_hosts(hosts, &rec.host_config, gw),
            resolv,
        })
    }

    /// The container's nameserver on user networks: the embedded DNS inside its own
    /// namespace (127.0.0.11, forwarding to its `--dns` servers or the daemon's), else
    /// (no firewall, or that failed) the DNS on its network's gateway.
    fn embedded_dns(&self, rec: &Record, eps: &[(Network, Endpoint)]) -> Option<IpAddr> {
        let own = if !rec.host_config.dns.is_empty() {
            &rec.host_config.dns
        } else {
            &self.cfg.dns
        };
        let upstreams: Vec<SocketAddr> = own
            .iter()
            .filter_map(|s| s.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect();
        match self
            .networks
            .dns_attach(&rec.id, (!upstreams.is_empty()).then_some(upstreams))
        {
            Ok(Some(a)) => return Some(a),
            Ok(None) => {}
            Err(e) => eprintln!("berthd: container {}: embedded DNS at 127.0.0.11: {e}", rec.id),
        }
        eps.iter().find_map(|(n, _)| self.networks.dns_server_for(&n.id))
    }

    /// After a daemon restart: the embedded DNS inside running containers' namespaces
    /// died with the old daemon; serve it again (new sockets, redirect replaced).
    pub(crate) fn restore_dns(&self) {
        for c in self.all() {
            let rec = c.record();
            let resolv = std::fs::read_to_string(self.container_dir(&c.id).join("resolv.conf")).unwrap_or_default();
            if rec.state.running && resolv.contains("nameserver 127.0.0.11\n") {
                let eps = self.networks.endpoints_of(&c.id);
                if self.embedded_dns(&rec, &eps) != Some(IpAddr::V4(berth_network::firewall::DNS_ADDR)) {
                    eprintln!("berthd: container {}: its embedded DNS could not be restored", c.id);
                }
            }
        }
    }

    /// NetworkMode's network first, then the others by name.
    fn ordered_networks(&self, rec: &Record) -> Vec<(String, EndpointConfig)> {
        let primary = match mode_of(&rec.host_config.network_mode) {
            Mode::Network(k) => self.networks.get(&k).map(|n| n.name).unwrap_or(k),
            _ => String::new(),
        };
        let mut v: Vec<(String, EndpointConfig)> = rec.networks.iter().map(|(k, c)| (k.clone(), c.clone())).collect();
        v.sort_by_key(|(k, _)| *k != primary);
        v
    }

    fn with_extra_hosts(&self, mut hosts: String, hc: &HostConfig, gw: Option<IpAddr>) -> String {
        for e in &hc.extra_hosts {
            // "name:ip" (or "name=ip"); "host-gateway" is the bridge's address.
            let Some((name, ip)) = e.split_once(':').or_else(|| e.split_once('=')) else {
                continue;
            };
            let ip = if ip == "host-gateway" {
                match gw {
                    Some(g) => g.to_string(),
                    None => continue,
                }
            } else {
                ip.trim_start_matches('[').trim_end_matches(']').to_string()
            };
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
        hosts
    }

    /// resolv.conf: the embedded DNS when there is one, else `--dns` / daemon `dns`, else
    /// the host's (loopback resolvers dropped: unreachable from a container).
    fn resolv_for(&self, rec: &Record, embedded: Option<IpAddr>) -> String {
        let hc = &rec.host_config;
        let servers: Vec<String> = if let Some(e) = embedded {
            vec![e.to_string()]
        } else if !hc.dns.is_empty() {
            hc.dns.clone()
        } else {
            self.cfg.dns.clone()
        };
        let search = if hc.dns_search.is_empty() {
            &self.cfg.dns_search
        } else {
            &hc.dns_search
        };
        let mut opts = if hc.dns_options.is_empty() {
            self.cfg.dns_opts.clone()
        } else {
            hc.dns_options.clone()
        };
        if servers.is_empty() && search.is_empty() && opts.is_empty() {
            return resolv_conf();
        }
        let host = resolv_conf();
        let mut out = String::new();
        if servers.is_empty() {
            out.extend(
                host.lines()
                    .filter(|l| l.starts_with("nameserver"))
                    .map(|l| format!("{l}\n")),
            );
        } else {
            out.extend(servers.iter().map(|s| format!("nameserver {s}\n")));
        }
        if !search.is_empty() {
            out.push_str(&format!("search {}\n", search.join(" ")));
        } else {
            out.extend(
                host.lines()
                    .filter(|l| l.starts_with("search"))
                    .map(|l| format!("{l}\n")),
            );
        }
        if embedded.is_some() && !opts.iter().any(|o| o.starts_with("ndots")) {
            opts.push("ndots:0".into());
        }
        if !opts.is_empty() {
            out.push_str(&format!("options {}\n", opts.join(" ")));
        }
        out
    }

    /// Everything a stopped container held on the network side.
    pub(crate) fn teardown_network(&self, id: &str) {
        self.networks.teardown(id);
    }

    /// Inspect's `NetworkSettings`.
    pub(crate) fn network_settings(&self, rec: &Record) -> Value {
        let eps = if rec.state.running {
            self.networks.endpoints_of(&rec.id)
        } else {
            vec![]
        };
        let mut networks = serde_json::Map::new();
        let endpoint_json = |n: &Network, ep: Option<&Endpoint>, cfg: Option<&EndpointConfig>| {
            let mut dns_names: Vec<String> = vec![];
            if let Some(e) = ep {
                if !n.is_default_bridge() {
                    dns_names.push(e.name.clone());
                    dns_names.push(rec.id[..12].to_string());
                    dns_names.extend(e.aliases.iter().cloned());
                }
            }
            let aliases = cfg.map(|c| c.aliases.clone()).filter(|a| !a.is_empty());
            json!({
                "IPAMConfig": cfg.and_then(|c| c.ipam_config.clone()),
                "Links": if rec.host_config.links.is_empty() || n.is_default_bridge() { Value::Null } else { json!(rec.host_config.links) },
                "Aliases": aliases,
                "MacAddress": ep.map(|e| e.mac.clone()).unwrap_or_default(),
                "DriverOpts": null,
                "NetworkID": n.id,
                "EndpointID": ep.map(|e| e.id.clone()).unwrap_or_default(),
                "Gateway": ep.and_then(|_| n.gateway_v4()).map(|g| g.to_string()).unwrap_or_default(),
                "IPAddress": ep.and_then(|e| e.ipv4).map(|a| a.addr().to_string()).unwrap_or_default(),
                "IPPrefixLen": ep.and_then(|e| e.ipv4).map(|a| a.prefix_len()).unwrap_or(0),
                "IPv6Gateway": ep.and_then(|e| e.ipv6).and_then(|_| n.gateway_v6()).map(|g| g.to_string()).unwrap_or_default(),
                "GlobalIPv6Address": ep.and_then(|e| e.ipv6).map(|a| a.addr().to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": ep.and_then(|e| e.ipv6).map(|a| a.prefix_len()).unwrap_or(0),
                "DNSNames": if dns_names.is_empty() { Value::Null } else { json!(dns_names) },
            })
        };
        match mode_of(&rec.host_config.network_mode) {
            Mode::Host | Mode::None => {
                let name = if matches!(mode_of(&rec.host_config.network_mode), Mode::Host) {
                    "host"
                } else {
                    "none"
                };
                if let Ok(n) = self.networks.get(name) {
                    networks.insert(name.into(), endpoint_json(&n, None, None));
                }
            }
            Mode::Container(_) => {}
            Mode::Network(_) => {
                for (name, cfg) in &rec.networks {
                    let Ok(n) = self.networks.get(name) else { continue };
                    let ep = eps.iter().find(|(en, _)| en.id == n.id).map(|(_, e)| e);
                    networks.insert(n.name.clone(), endpoint_json(&n, ep, Some(cfg)));
                }
            }
        }
        let mut ports = serde_json::Map::new();
        if rec.state.running {
            if let Some(exp) = &rec.config.exposed_ports {
                for k in exp.keys() {
                    let k = if k.contains('/') { k.clone() } else { format!("{k}/tcp") };
                    ports.insert(k, Value::Null);
                }
            }
            for p in self.networks.published(&rec.id) {
                let k = format!("{}/{}", p.ctr_port, p.proto);
                let e = ports.entry(k).or_insert(json!([]));
                if !e.is_array() {
                    *e = json!([]);
                }
                if let Some(a) = e.as_array_mut() {
                    a.push(json!({
                        "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                        "HostPort": p.host_port.to_string(),
                    }));
                }
            }
        }
        // The top-level fields mirror the default bridge's endpoint (Docker's legacy shape).
        let bridge = networks.get("bridge").cloned().unwrap_or(json!({}));
        let top = |k: &str, d: Value| bridge.get(k).cloned().unwrap_or(d);
        let sandbox = if eps.is_empty() {
            String::new()
        } else {
            self.networks.sandbox_path(&rec.id).display().to_string()
        };
        json!({
            "Bridge": "", "SandboxID": if sandbox.is_empty() { String::new() } else { rec.id.clone() },
            "SandboxKey": sandbox, "Ports": ports, "HairpinMode": false,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
            "EndpointID": top("EndpointID", json!("")), "Gateway": top("Gateway", json!("")),
            "GlobalIPv6Address": top("GlobalIPv6Address", json!("")), "GlobalIPv6PrefixLen": top("GlobalIPv6PrefixLen", json!(0)),
            "IPAddress": top("IPAddress", json!("")), "IPPrefixLen": top("IPPrefixLen", json!(0)),
            "IPv6Gateway": top("IPv6Gateway", json!("")), "MacAddress": top("MacAddress", json!("")),
            "Networks": networks,
        })
    }

    /// `docker ps`'s Ports list.
    pub(crate) fn list_ports(&self, rec: &Record) -> Value {
        if !rec.state.running {
            return json!([]);
        }
        let mut out: Vec<Value> = self
            .networks
            .published(&rec.id)
            .into_iter()
            .map(|p| {
                json!({"IP": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                       "PrivatePort": p.ctr_port, "PublicPort": p.host_port, "Type": p.proto})
            })
            .collect();
        if let Some(exp) = &rec.config.exposed_ports {
            for k in exp.keys() {
                let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
                let Ok(port) = port.parse::<u16>() else { continue };
                if !out.iter().any(|o| o["PrivatePort"] == port && o["Type"] == proto) {
                    out.push(json!({"PrivatePort": port, "Type": proto}));
                }
            }
        }
        json!(out)
    }

    /// `POST /networks/{id}/connect`.
    pub fn network_connect(self: &Arc<Self>, container: &str, network: &str, cfg: EndpointConfig) -> Result<()> {
        let c = self.get(container)?;
        let _op = lock(&c.op);
        let n = self.networks.get(network)?;
        let rec = c.record();
        match mode_of(&rec.host_config.network_mode) {
            Mode::Network(_) => {}
            _ => {
                return Err(EngineError::Forbidden(format!(
                    "container sharing network namespace with another container or host cannot be connected to any other network (container {})",
                    c.id
                )))
            }
        }
        if n.driver != "bridge" {
            return Err(EngineError::Forbidden(format!(
                "container cannot be connected to network {}",
                n.name
            )));
        }
        if rec.networks.contains_key(&n.name) {
            return Err(EngineError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.short_name(),
                n.name
            )));
        }
        let req = endpoint_request(&cfg, vec![])?;
        check_addresses(&n, &req)?;
        if rec.state.running {
            let path = self.networks.sandbox_path(&c.id);
            if !path.exists() {
                return Err(EngineError::Conflict(format!(
                    "container {} has no network namespace of its own",
                    c.id
                )));
            }
            let ep = self.networks.connect(&c.id, &rec.name, &n.id, &req, &path, false)?;
            // As Docker: joining a user network switches the container to the embedded
            // DNS. Written in place: the file is bind-mounted into the container.
            if !n.is_default_bridge() && !self.networks.dns_attached(&c.id) {
                let p = self.container_dir(&c.id).join("resolv.conf");
                let cur = std::fs::read_to_string(&p).unwrap_or_default();
                let on_gateway = self
                    .networks
                    .list()
                    .iter()
                    .filter_map(|o| o.gateway_v4())
                    .any(|g| cur.contains(&format!("nameserver {g}\n")));
                if !on_gateway {
                    if let Some(dns) = self.embedded_dns(&rec, &[(n.clone(), ep)]) {
                        let _ = std::fs::write(&p, self.resolv_for(&rec, Some(dns)));
                    }
                }
            }
        }
        let dir = self.container_dir(&c.id);
        c.update(&dir, |r| {
            r.networks.insert(n.name.clone(), cfg);
        })?;
        self.network_event(&n, "connect", &c.id);
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub fn network_disconnect(self: &Arc<Self>, container: &str, network: &str, force: bool) -> Result<()> {
        let n = self.networks.get(network)?;
        let c = match self.get(container) {
            Ok(c) => c,
            Err(e) if force => {
                // A container gone from the engine but still holding an endpoint.
                let id = n
                    .endpoints
                    .values()
                    .find(|ep| ep.name == container || ep.container == container)
                    .map(|ep| ep.container.clone());
                match id {
                    Some(id) => {
                        self.networks.disconnect(&id, &n.id)?;
                        return Ok(());
                    }
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        let _op = lock(&c.op);
        let rec = c.record();
        if !rec.networks.contains_key(&n.name) {
            return Err(EngineError::Forbidden(format!(
                "container {} is not connected to network {}",
                c.id, n.name
            )));
        }
        if rec.state.running && n.endpoints.contains_key(&c.id) {
            self.networks.disconnect(&c.id, &n.id)?;
        }
        let dir = self.container_dir(&c.id);
        c.update(&dir, |r| {
            r.networks.remove(&n.name);
        })?;
        self.network_event(&n, "disconnect", &c.id);
        Ok(())
    }

    pub(crate) fn network_event(&self, n: &Network, action: &str, container: &str) {
        let mut a = BTreeMap::new();
        a.insert("name".to_string(), n.name.clone());
        a.insert("type".to_string(), n.driver.clone());
        if !container.is_empty() {
            a.insert("container".to_string(), container.to_string());
        }
        self.events.emit("network", action, &n.id, a);
    }
}
