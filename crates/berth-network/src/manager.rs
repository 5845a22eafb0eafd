//! The network manager: networks and their bridges, container sandboxes and endpoints,
//! published ports and the firewall table, the embedded DNS — kept in step with each
//! other and with their records on disk.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::dns::{Asker, DnsServer, Lookup};
use crate::error::{io_err, NetworkError, Result};
use crate::firewall::{self, FwNetwork, FwPort, Proto, Ruleset};
use crate::ipam::{self, AddressPool, Allocator};
use crate::ports::{self, PortRequest, PublishedPort, Reservation};
use crate::resolver;

mod endpoints;
use crate::sandbox;
use crate::store::{random_hex, Endpoint, Network, Store};

#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Network records (under the data root).
    pub state_dir: PathBuf,
    /// Container network namespaces (under the exec root).
    pub run_dir: PathBuf,
    /// The default bridge's interface (Docker: docker0); "none": no default bridge
    /// network (containers that would join it get a namespace with loopback only).
    pub default_bridge: String,
    /// Manage nftables (Docker's `iptables`): without it there is no NAT, isolation or
    /// port publishing, and `nft` need not be installed.
    pub firewall: bool,
    /// `bip`: the default bridge's address and prefix.
    pub bip: Option<IpNet>,
    pub pools: Vec<AddressPool>,
    /// Berth's nftables table (family inet).
    pub table: String,
    pub mtu: Option<u32>,
    /// Where the embedded DNS forwards names it does not know (default: the host's
    /// resolv.conf nameservers).
    pub dns_upstreams: Option<Vec<SocketAddr>>,
    /// Docker's `ip-forward`: turn on the host's IP forwarding for bridges (false: the
    /// host's setting is left as it is).
    pub ip_forward: bool,
    /// Docker's `ip-masq`: masquerade the default bridge's outbound traffic (user
    /// networks have their own `enable_ip_masquerade` option).
    pub ip_masq: bool,
    /// Docker's `fixed-cidr`: the default bridge hands out IPv4 addresses from here.
    pub fixed_cidr: Option<IpNet>,
    /// Docker's `ipv6`: the default bridge is dual-stack.
    pub ipv6: bool,
    /// Docker's `fixed-cidr-v6`: the default bridge's IPv6 subnet (default: a unique
    /// local /64, or one from an IPv6 address pool).
    pub fixed_cidr_v6: Option<IpNet>,
}

/// `fixed-cidr` as the allocator's range (none: the whole subnet).
fn with_range(mut a: Allocator, range: Option<IpNet>) -> Result<Allocator> {
    if a.range.map(|r| r.trunc()) != range.map(|r| r.trunc()) {
        a = Allocator {
            allocated: a.allocated,
            ..Allocator::new(a.subnet, range, Some(a.gateway))?
        };
    }
    Ok(a)
}

#[derive(Debug, Clone, Default)]
pub struct SubnetRequest {
    pub subnet: Option<IpNet>,
    pub ip_range: Option<IpNet>,
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub enable_ipv6: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub subnets: Vec<SubnetRequest>,
    pub ipam_options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    pub aliases: Vec<String>,
    pub mac: Option<[u8; 6]>,
    pub links: Vec<(String, String)>,
}

#[derive(Default, Serialize, Deserialize)]
struct Published {
    /// container id → (port, the container address it goes to)
    ports: BTreeMap<String, Vec<(PublishedPort, IpAddr)>>,
}

#[derive(Default)]
struct Inner {
    networks: BTreeMap<String, Network>,
    published: Published,
    held: HashMap<String, Vec<Reservation>>,
}

pub struct NetworkManager {
    cfg: NetConfig,
    store: Store,
    inner: Arc<Mutex<Inner>>,
    /// Serialises firewall updates so the last one applied is the newest state.
    fw: Mutex<()>,
    dns: Mutex<Option<DnsServer>>,
    /// Bridge addresses of subnets the daemon's configuration dropped, to take off the
    /// bridge when it is next set up.
    old_bridge_addrs: Mutex<HashMap<String, Vec<IpNet>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const DNS_PORT: u16 = 53;
const BRIDGE_NAME_OPT: &str = "com.docker.network.bridge.name";
const MASQ_OPT: &str = "com.docker.network.bridge.enable_ip_masquerade";

impl NetworkManager {
    /// Load the networks and create the predefined ones; `reconcile` then brings the
    /// kernel in line.
    pub fn open(cfg: NetConfig) -> Result<Arc<NetworkManager>> {
        let store = Store::open(&cfg.state_dir)?;
        std::fs::create_dir_all(&cfg.run_dir).map_err(io_err(format!("create {}", cfg.run_dir.display())))?;
        let mut inner = Inner::default();
        for n in store.load_all()? {
            inner.networks.insert(n.id.clone(), n);
        }
        if let Ok(b) = std::fs::read(cfg.state_dir.join("published.ports")) {
            inner.published = serde_json::from_slice(&b).unwrap_or_default();
        }
        let m = Arc::new(NetworkManager {
            cfg,
            store,
            inner: Arc::new(Mutex::new(inner)),
            fw: Mutex::new(()),
            dns: Mutex::new(None),
            old_bridge_addrs: Mutex::new(HashMap::new()),
        });
        m.ensure_predefined()?;
        Ok(m)
    }

    fn ensure_predefined(&self) -> Result<()> {
        let have = |name: &str| lock(&self.inner).networks.values().any(|n| n.name == name);
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if !have(name) {
                let n = new_network(name, driver);
                self.store.save(&n)?;
                lock(&self.inner).networks.insert(n.id.clone(), n);
            }
        }
        if self.cfg.default_bridge == "none" {
            return Ok(());
        }
        if !have("bridge") {
            let mut n = new_network("bridge", "bridge");
            n.bridge = self.cfg.default_bridge.clone();
            n.options.insert(BRIDGE_NAME_OPT.into(), n.bridge.clone());
            n.options
                .insert("com.docker.network.bridge.default_bridge".into(), "true".into());
            n.options
                .insert("com.docker.network.bridge.enable_icc".into(), "true".into());
            lock(&self.inner).networks.insert(n.id.clone(), n);
        }
        // The default bridge follows the daemon's `bip`, `fixed-cidr`, `ipv6`,
        // `fixed-cidr-v6` and `ip-masq` at every start, as dockerd's does.
        let Some(mut n) = lock(&self.inner)
            .networks
            .values()
            .find(|n| n.is_default_bridge())
            .cloned()
        else {
            return Ok(());
        };
        let before = serde_json::to_string(&n).unwrap_or_default();
        n.options.insert(MASQ_OPT.into(), self.cfg.ip_masq.to_string());
        let v4 = n.ipam.iter().find(|a| a.subnet.addr().is_ipv4()).cloned();
        let v4 = match (self.cfg.bip, v4) {
            (Some(bip), Some(a)) if a.subnet == bip.trunc() && a.gateway == bip.addr() => a,
            (Some(bip), _) => Allocator::new(bip.trunc(), None, Some(bip.addr()))?,
            (None, Some(a)) if self.cfg.fixed_cidr.is_none_or(|f| a.subnet.contains(&f)) => a,
            // Without `bip`, `fixed-cidr` alone sets the subnet when the current one
            // does not hold it.
            (None, _) => match self.cfg.fixed_cidr {
                Some(f) => Allocator::new(f, None, None)?,
                None => Allocator::new(self.choose_subnet(false)?, None, None)?,
            },
        };
        let v4 = with_range(v4, self.cfg.fixed_cidr)?;
        let v6 = if self.cfg.ipv6 {
            let have = n.ipam.iter().find(|a| a.subnet.addr().is_ipv6()).cloned();
            Some(match (self.cfg.fixed_cidr_v6, have) {
                (Some(f), Some(a)) if a.subnet == f.trunc() => a,
                (Some(f), _) => Allocator::new(f.trunc(), None, None)?,
                (None, Some(a)) => a,
                (None, None) => {
                    let s = self.choose_subnet(true)?;
                    Allocator::new(s, None, None)?
                }
            })
        } else {
            None
        };
        n.enable_ipv6 = v6.is_some();
        let new_ipam: Vec<Allocator> = std::iter::once(v4).chain(v6).collect();
        // Endpoints keep only addresses the subnets still hold (the daemon's subnets
        // changed while it was down: old addresses are not on the bridge any more).
        for ep in n.endpoints.values_mut() {
            for slot in [&mut ep.ipv4, &mut ep.ipv6] {
                if slot.is_some_and(|a| !new_ipam.iter().any(|p| p.subnet.contains(&a.addr()))) {
                    *slot = None;
                }
            }
        }
        let old_addrs = n.bridge_addrs();
        n.ipam = new_ipam;
        lock(&self.old_bridge_addrs).insert(n.bridge.clone(), old_addrs);
        if serde_json::to_string(&n).unwrap_or_default() != before || !self.store.exists(&n.id) {
            self.store.save(&n)?;
        }
        lock(&self.inner).networks.insert(n.id.clone(), n);
        Ok(())
    }

    /// A free subnet of one family: from the pools, or (IPv6 with no IPv6 pool) a random
    /// unique local /64.
    fn choose_subnet(&self, v6: bool) -> Result<IpNet> {
        let mut taken = ipam::host_routes();
        taken.extend(ipam::WELL_KNOWN.iter().filter_map(|s| s.parse::<IpNet>().ok()));
        for n in lock(&self.inner).networks.values() {
            taken.extend(n.ipam.iter().map(|a| a.subnet));
        }
        if v6 && !ipam::has_v6_pool(&self.cfg.pools) {
            for _ in 0..8 {
                let r = random_hex(7);
                let mut b = [0u8; 7];
                for (i, x) in b.iter_mut().enumerate() {
                    *x = u8::from_str_radix(&r[i * 2..i * 2 + 2], 16).unwrap_or(0);
                }
                let s = ipam::ula_subnet(b);
                if !taken.iter().any(|t| ipam::overlaps(t, &s)) {
                    return Ok(s);
                }
            }
        }
        ipam::choose_subnet(&self.cfg.pools, &taken, v6)
    }

    /// Bridges exist with their addresses, dead endpoints are gone, held ports and the
    /// firewall table match the records, DNS listens where it should. `running(id)`
    /// tells which containers still run: the endpoints and ports of all others are
    /// released (they died while no daemon was there to see it).
    pub fn reconcile(&self, running: &dyn Fn(&str) -> bool) -> Result<()> {
        let mut stale_veths = Vec::new();
        {
            let mut g = lock(&self.inner);
            let inner = &mut *g;
            for n in inner.networks.values_mut() {
                let dead: Vec<String> = n.endpoints.keys().filter(|c| !running(c)).cloned().collect();
                for c in &dead {
                    if let Some(ep) = n.endpoints.remove(c) {
                        release_addrs(n, &ep);
                        stale_veths.push(ep.host_veth);
                    }
                }
                // Addresses held by no endpoint (a crash between a teardown and its
                // release) go back to the pool.
                let owned: Vec<IpAddr> = n
                    .endpoints
                    .values()
                    .flat_map(|e| [e.ipv4, e.ipv6])
                    .flatten()
                    .map(|a| a.addr())
                    .collect();
                let mut freed = false;
                for a in n.ipam.iter_mut() {
                    let before = a.allocated.len();
                    a.allocated.retain(|ip| owned.contains(ip));
                    freed |= a.allocated.len() != before;
                }
                if !dead.is_empty() || freed {
                    self.store.save(n)?;
                }
            }
            inner.published.ports.retain(|c, _| running(c));
        }
        for v in stale_veths {
            let _ = sandbox::delete_link(&v);
        }
        // Namespaces of containers that are gone.
        if let Ok(rd) = std::fs::read_dir(&self.cfg.run_dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if !running(&name) {
                    let _ = sandbox::destroy(&e.path());
                }
            }
        }
        let nets: Vec<Network> = lock(&self.inner).networks.values().cloned().collect();
        for n in nets.iter().filter(|n| n.driver == "bridge") {
            self.setup_bridge(n)?;
        }
        // Re-take the host ports of containers still running.
        let published = lock(&self.inner).published.ports.clone();
        for (c, ports) in published {
            let mut held = Vec::new();
            for (p, _) in ports {
                let req = PortRequest {
                    proto: Proto::parse(&p.proto).unwrap_or(Proto::Tcp),
                    ctr_port: p.ctr_port,
                    host_ip: p.host_ip.filter(|ip| !ip.is_unspecified()),
                    host_port: p.host_port,
                    host_port_end: p.host_port,
                };
                if let Ok(r) = ports::reserve(&req, p.host_ip.is_some_and(|i| i.is_ipv6())) {
                    held.push(r);
                }
            }
            lock(&self.inner).held.insert(c, held);
        }
        self.save_published()?;
        self.apply_firewall()?;
        for n in nets.iter().filter(|n| n.driver == "bridge" && !n.is_default_bridge()) {
            self.dns_listen(n);
        }
        Ok(())
    }

    fn setup_bridge(&self, n: &Network) -> Result<()> {
        let old = lock(&self.old_bridge_addrs).remove(&n.bridge).unwrap_or_default();
        sandbox::ensure_bridge(&n.bridge, &n.bridge_addrs(), &old, self.mtu_of(n))?;
        // 127.0.0.1 → published port: the DNATed packet leaves by the bridge with a
        // loopback source, which the kernel allows only with route_localnet.
        write_sysctl(&format!("net/ipv4/conf/{}/route_localnet", n.bridge), "1");
        if self.cfg.ip_forward {
            write_sysctl("net/ipv4/ip_forward", "1");
        }
        if n.enable_ipv6 {
            write_sysctl(&format!("net/ipv6/conf/{}/disable_ipv6", n.bridge), "0");
            if self.cfg.ip_forward {
                write_sysctl("net/ipv6/conf/all/forwarding", "1");
            }
        }
        Ok(())
    }

    /// `--opt com.docker.network.driver.mtu=N`, else the daemon's `mtu`.
    fn mtu_of(&self, n: &Network) -> Option<u32> {
        n.options
            .get("com.docker.network.driver.mtu")
            .and_then(|m| m.parse().ok())
            .or(self.cfg.mtu)
    }

    fn save_published(&self) -> Result<()> {
        let b = serde_json::to_vec(&lock(&self.inner).published).unwrap_or_default();
        let p = self.cfg.state_dir.join("published.ports");
        berth_runtime::fsutil::atomic_write(&p, &b).map_err(|e| NetworkError::Io {
            what: format!("write {}", p.display()),
            source: std::io::Error::other(e.to_string()),
        })
    }

    fn apply_firewall(&self) -> Result<()> {
        if !self.cfg.firewall {
            return Ok(());
        }
        let _fw = lock(&self.fw);
        let (rules, bridges) = {
            let g = lock(&self.inner);
            let networks: Vec<FwNetwork> = g
                .networks
                .values()
                .filter(|n| n.driver == "bridge")
                .map(|n| FwNetwork {
                    bridge: n.bridge.clone(),
                    subnets: n.ipam.iter().map(|a| a.subnet).collect(),
                    internal: n.internal,
                    masquerade: n.option_bool(MASQ_OPT, true),
                    icc: n.option_bool("com.docker.network.bridge.enable_icc", true),
                })
                .collect();
            let bridges: Vec<String> = networks.iter().map(|n| n.bridge.clone()).collect();
            let ports = g
                .published
                .ports
                .values()
                .flatten()
                .filter_map(|(p, ip)| {
                    Some(FwPort {
                        proto: Proto::parse(&p.proto)?,
                        host_ip: p.host_ip.filter(|h| !h.is_unspecified()),
                        host_port: p.host_port,
                        ctr_ip: *ip,
                        ctr_port: p.ctr_port,
                    })
                })
                .collect();
            (
                Ruleset {
                    table: self.cfg.table.clone(),
                    networks,
                    ports,
                },
                bridges,
            )
        };
        rules.apply()?;
        firewall::sync_forward_exceptions(&self.cfg.table, &bridges)
    }

    /// Another tool may switch its FORWARD chain to drop at any time (dockerd starting
    /// after berthd): look every few seconds, and add or remove Berth's accept rules.
    pub fn watch_forward_policy(self: &Arc<Self>) {
        if !self.cfg.firewall {
            return;
        }
        let m = Arc::downgrade(self);
        let _ = std::thread::Builder::new()
            .name("berth-fwd-watch".into())
            .stack_size(128 << 10)
            .spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                let Some(m) = m.upgrade() else { return };
                let _fw = lock(&m.fw);
                let bridges: Vec<String> = lock(&m.inner)
                    .networks
                    .values()
                    .filter(|n| n.driver == "bridge")
                    .map(|n| n.bridge.clone())
                    .collect();
                if let Err(e) = firewall::sync_forward_exceptions(&m.cfg.table, &bridges) {
                    eprintln!("berthd: FORWARD chain exceptions: {e}");
                }
            });
    }

    /// The DNS server, started on first use.
    fn dns_server(&self) -> Option<MutexGuard<'_, Option<DnsServer>>> {
        let mut d = lock(&self.dns);
        if d.is_none() {
            let upstreams = self.cfg.dns_upstreams.clone().unwrap_or_else(host_resolvers);
            let view = Arc::new(DnsView {
                inner: self.inner.clone(),
            });
            match DnsServer::spawn(view, upstreams) {
                Ok(s) => *d = Some(s),
                Err(e) => {
                    eprintln!("berthd: embedded DNS cannot start: {e}");
                    return None;
                }
            }
        }
        Some(d)
    }

    fn dns_listen(&self, n: &Network) {
        let Some(gw) = n.gateway_v4() else { return };
        let Some(d) = self.dns_server() else { return };
        if let Some(s) = d.as_ref() {
            if let Err(e) = s.listen(SocketAddr::new(gw, DNS_PORT)) {
                eprintln!("berthd: embedded DNS on {gw}:{DNS_PORT} (network {}): {e}", n.name);
            }
        }
    }

    /// Serve the embedded DNS inside a container's own namespace at 127.0.0.11, as
    /// Docker's resolver, forwarding names it does not know to `upstreams` (None: the
    /// daemon's). Some(127.0.0.11) when served; None when the container is on no user
    /// network or the daemon runs without its firewall (its resolv.conf then names the
    /// network's gateway, where the DNS listens too).
    pub fn dns_attach(&self, container: &str, upstreams: Option<Vec<SocketAddr>>) -> Result<Option<IpAddr>> {
        let on_user_network = lock(&self.inner)
            .networks
            .values()
            .any(|n| n.driver == "bridge" && !n.is_default_bridge() && n.endpoints.contains_key(container));
        let path = self.sandbox_path(container);
        if !self.cfg.firewall || !on_user_network || !path.exists() {
            return Ok(None);
        }
        let (udp, tcp) = sandbox::dns_sockets(&path)?;
        let Some(d) = self.dns_server() else { return Ok(None) };
        let Some(s) = d.as_ref() else { return Ok(None) };
        s.adopt(container, udp, tcp, upstreams)
            .map_err(io_err(format!("serve the embedded DNS for container {container}")))?;
        Ok(Some(IpAddr::V4(firewall::DNS_ADDR)))
    }

    /// Whether the embedded DNS serves inside this container's namespace.
    pub fn dns_attached(&self, container: &str) -> bool {
        lock(&self.dns).as_ref().is_some_and(|d| d.serves(container))
    }

    fn dns_detach(&self, container: &str) {
        if let Some(d) = lock(&self.dns).as_ref() {
            d.release(container);
        }
    }

    // ---- networks ----

    pub fn list(&self) -> Vec<Network> {
        lock(&self.inner).networks.values().cloned().collect()
    }

    /// By full id, name, or unique id prefix (as Docker resolves them).
    pub fn get(&self, key: &str) -> Result<Network> {
        find(&lock(&self.inner).networks, key).cloned()
    }

    pub fn create(&self, req: CreateRequest) -> Result<Network> {
        let driver = if req.driver.is_empty() {
            "bridge"
        } else {
            req.driver.as_str()
        };
        if driver != "bridge" {
            return Err(NetworkError::Invalid(format!(
                "network driver {driver:?} is not supported (Berth has bridge networks)"
            )));
        }
        if req.name.is_empty() || !req.name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
            return Err(NetworkError::Invalid(format!("invalid network name {:?}", req.name)));
        }
        let mut n = new_network(&req.name, "bridge");
        n.internal = req.internal;
        n.enable_ipv6 = req.enable_ipv6;
        n.attachable = req.attachable;
        n.labels = req.labels;
        n.options = req.options;
        n.ipam_options = req.ipam_options;
        n.bridge = match n.options.get(BRIDGE_NAME_OPT) {
            Some(b) if !b.is_empty() => b.clone(),
            _ => format!("br-{}", &n.id[..12]),
        };
        if let Some(m) = n.options.get("com.docker.network.driver.mtu") {
            if !m.parse::<u32>().is_ok_and(|m| (68..=65535).contains(&m)) {
                return Err(NetworkError::Invalid(format!("invalid MTU {m:?} (68 to 65535)")));
            }
        }
        if n.bridge.len() > 15 {
            return Err(NetworkError::Invalid(format!(
                "bridge name {:?} is longer than 15 bytes",
                n.bridge
            )));
        }
        let mut g = lock(&self.inner);
        if g.networks.values().any(|o| o.name == req.name) {
            return Err(NetworkError::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        if g.networks.values().any(|o| o.bridge == n.bridge) {
            return Err(NetworkError::Conflict(format!(
                "bridge {} is used by another network",
                n.bridge
            )));
        }
        let mut taken: Vec<IpNet> = g
            .networks
            .values()
            .flat_map(|o| o.ipam.iter().map(|a| a.subnet))
            .collect();
        for s in &req.subnets {
            let Some(subnet) = s.subnet else {
                return Err(NetworkError::Invalid("IPAM config without a subnet".into()));
            };
            if taken.iter().any(|t| ipam::overlaps(t, &subnet)) {
                return Err(NetworkError::Conflict(format!(
                    "invalid pool request: Pool overlaps with other one on this address space ({subnet})"
                )));
            }
            taken.push(subnet);
            n.ipam.push(Allocator::new(subnet, s.ip_range, s.gateway)?);
        }
        for v6 in [false, true] {
            let missing = !n.ipam.iter().any(|a| a.subnet.addr().is_ipv6() == v6);
            if missing && (!v6 || n.enable_ipv6) {
                drop(g);
                let s = self.choose_subnet(v6)?;
                g = lock(&self.inner);
                n.ipam.push(Allocator::new(s, None, None)?);
            }
        }
        if !n.enable_ipv6 && n.ipam.iter().any(|a| a.subnet.addr().is_ipv6()) {
            n.enable_ipv6 = true;
        }
        n.ipam.sort_by_key(|a| a.subnet.addr().is_ipv6());
        self.store.save(&n)?;
        g.networks.insert(n.id.clone(), n.clone());
        drop(g);
        let made = self.setup_bridge(&n).and_then(|_| self.apply_firewall());
        if let Err(e) = made {
            let _ = self.remove_unchecked(&n);
            return Err(e);
        }
        self.dns_listen(&n);
        Ok(n)
    }

    pub fn remove(&self, key: &str) -> Result<()> {
        let n = self.get(key)?;
        if n.predefined() {
            return Err(NetworkError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        if !n.endpoints.is_empty() {
            return Err(NetworkError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        self.remove_unchecked(&n)
    }

    fn remove_unchecked(&self, n: &Network) -> Result<()> {
        if let (Some(gw), Some(d)) = (n.gateway_v4(), lock(&self.dns).as_ref()) {
            d.unlisten(SocketAddr::new(gw, DNS_PORT));
        }
        lock(&self.inner).networks.remove(&n.id);
        self.store.delete(&n.id)?;
        sandbox::delete_link(&n.bridge)?;
        self.apply_firewall()
    }

    /// The resolv.conf nameserver for containers on `network` (the embedded DNS), if any.
    pub fn dns_server_for(&self, key: &str) -> Option<IpAddr> {
        let n = self.get(key).ok()?;
        if n.driver != "bridge" || n.is_default_bridge() {
            return None;
        }
        let d = lock(&self.dns);
        let gw = n.gateway_v4()?;
        d.as_ref()?
            .addresses()
            .contains(&SocketAddr::new(gw, DNS_PORT))
            .then_some(gw)
    }

    /// Remove the firewall table and the default bridge (daemon uninstall / tests).
    pub fn remove_everything(&self) -> Result<()> {
        let nets = self.list();
        for n in nets.iter().filter(|n| n.driver == "bridge") {
            let _ = sandbox::delete_link(&n.bridge);
        }
        firewall::sync_forward_exceptions(&self.cfg.table, &[])?;
        firewall::remove_table(&self.cfg.table)
    }
}

fn new_network(name: &str, driver: &str) -> Network {
    Network {
        id: random_hex(32),
        name: name.into(),
        driver: driver.into(),
        created: berth_runtime::state::now_rfc3339(),
        internal: false,
        enable_ipv6: false,
        attachable: false,
        labels: BTreeMap::new(),
        options: BTreeMap::new(),
        ipam: vec![],
        ipam_options: BTreeMap::new(),
        bridge: String::new(),
        endpoints: BTreeMap::new(),
    }
}

fn release_addrs(n: &mut Network, ep: &Endpoint) {
    for a in n.ipam.iter_mut() {
        for ip in [ep.ipv4, ep.ipv6].into_iter().flatten() {
            a.release(&ip.addr());
        }
    }
}

fn find<'a>(nets: &'a BTreeMap<String, Network>, key: &str) -> Result<&'a Network> {
    if let Some(n) = nets.get(key) {
        return Ok(n);
    }
    if let Some(n) = nets.values().find(|n| n.name == key) {
        return Ok(n);
    }
    let mut hits = nets.values().filter(|n| !key.is_empty() && n.id.starts_with(key));
    match (hits.next(), hits.next()) {
        (Some(n), None) => Ok(n),
        (Some(_), Some(_)) => Err(NetworkError::Invalid(format!(
            "network {key} is ambiguous (more than one network has that id prefix)"
        ))),
        _ => Err(NetworkError::NotFound(key.into())),
    }
}

fn find_mut<'a>(nets: &'a mut BTreeMap<String, Network>, key: &str) -> Result<&'a mut Network> {
    let id = find(nets, key)?.id.clone();
    nets.get_mut(&id).ok_or_else(|| NetworkError::NotFound(key.into()))
}

fn write_sysctl(key: &str, value: &str) {
    let p = format!("/proc/sys/{key}");
    if std::fs::read_to_string(&p).map(|v| v.trim() == value).unwrap_or(false) {
        return;
    }
    if let Err(e) = std::fs::write(&p, value) {
        eprintln!("berthd: set {key}={value}: {e}");
    }
}

/// The host's nameservers (port 53), from /etc/resolv.conf.
pub fn host_resolvers() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The DNS server's view of the networks.
struct DnsView {
    inner: Arc<Mutex<Inner>>,
}

impl Lookup for DnsView {
    fn lookup(&self, asker: Asker<'_>, name: &str) -> Option<Vec<IpAddr>> {
        resolver::lookup(&lock(&self.inner).networks, asker, name)
    }

    fn reverse(&self, asker: Asker<'_>, ip: IpAddr) -> Option<String> {
        resolver::reverse(&lock(&self.inner).networks, asker, ip)
    }
}
