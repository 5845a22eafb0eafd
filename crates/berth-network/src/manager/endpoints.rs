//! The container side of the network manager: sandboxes, endpoints on networks,
//! published ports, and tearing them down when a container stops.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;

use super::{find_mut, lock, release_addrs, EndpointRequest, Inner, NetworkManager};
use crate::error::{NetworkError, Result};
use crate::ports::{self, PortRequest, PublishedPort};
use crate::sandbox::{self, EndpointPlan};
use crate::store::{random_hex, Endpoint, Network};

impl NetworkManager {
    pub fn sandbox_path(&self, container: &str) -> PathBuf {
        self.cfg.run_dir.join(container)
    }

    /// A fresh network namespace for a container (lo up).
    pub fn create_sandbox(&self, container: &str) -> Result<PathBuf> {
        let p = self.sandbox_path(container);
        let _ = sandbox::destroy(&p);
        sandbox::create(&p)?;
        Ok(p)
    }

    /// Attach a container's namespace to a network: an address, a veth pair named
    /// `ifname` inside, a default route if `default_route` and the network has a way out.
    pub fn connect(
        &self,
        container: &str,
        name: &str,
        key: &str,
        req: &EndpointRequest,
        netns: &Path,
        default_route: bool,
    ) -> Result<Endpoint> {
        let (plan, ep) = {
            let mut g = lock(&self.inner);
            let n = find_mut(&mut g.networks, key)?;
            if n.driver != "bridge" {
                return Err(NetworkError::Invalid(format!(
                    "container cannot be connected to network {} (driver {})",
                    n.name, n.driver
                )));
            }
            if n.endpoints.contains_key(container) {
                return Err(NetworkError::Conflict(format!(
                    "endpoint with name {name} already exists in network {}",
                    n.name
                )));
            }
            if n.is_default_bridge() && (!req.aliases.is_empty() || req.ipv4.is_some()) {
                return Err(NetworkError::Invalid(
                    "user specified IP address and network-scoped aliases are supported only on user defined networks"
                        .into(),
                ));
            }
            let ifname = format!("eth{}", self.endpoints_of_locked(&g, container).len());
            let n = find_mut(&mut g.networks, key)?;
            let mut ep = Endpoint {
                id: random_hex(32),
                container: container.into(),
                name: name.trim_start_matches('/').into(),
                host_veth: format!("veth{}", &random_hex(4)[..7]),
                ifname,
                aliases: req.aliases.clone(),
                links: req.links.clone(),
                ..Default::default()
            };
            let mut addrs = Vec::new();
            let v6_enabled = n.enable_ipv6;
            for a in n.ipam.iter_mut() {
                let want = if a.subnet.addr().is_ipv4() { req.ipv4 } else { req.ipv6 };
                if a.subnet.addr().is_ipv6() && !v6_enabled {
                    continue;
                }
                // One address per family.
                if (a.subnet.addr().is_ipv4() && ep.ipv4.is_some()) || (a.subnet.addr().is_ipv6() && ep.ipv6.is_some())
                {
                    continue;
                }
                if want.is_some_and(|w| !a.subnet.contains(&w)) {
                    continue;
                }
                let ip = match a.allocate(want) {
                    Ok(ip) => ip,
                    Err(e) => {
                        release_addrs(n, &ep);
                        return Err(e);
                    }
                };
                let net = IpNet::new(ip, a.subnet.prefix_len()).map_err(|e| NetworkError::Invalid(e.to_string()))?;
                if ip.is_ipv4() {
                    ep.ipv4 = Some(net);
                } else {
                    ep.ipv6 = Some(net);
                }
                addrs.push(net);
            }
            for (w, fam) in [(req.ipv4, "IPv4"), (req.ipv6, "IPv6")] {
                if let Some(w) = w {
                    if !addrs.iter().any(|a| a.addr() == w) {
                        release_addrs(n, &ep);
                        return Err(NetworkError::Invalid(format!(
                            "requested {fam} address {w} is not in any subnet of network {}",
                            n.name
                        )));
                    }
                }
            }
            let mac = req.mac.unwrap_or_else(|| match ep.ipv4.map(|a| a.addr()) {
                Some(IpAddr::V4(v4)) => {
                    let o = v4.octets();
                    [0x02, 0x42, o[0], o[1], o[2], o[3]]
                }
                _ => {
                    let r = random_hex(4);
                    let b = |i: usize| u8::from_str_radix(&r[i * 2..i * 2 + 2], 16).unwrap_or(0);
                    [0x02, 0x42, b(0), b(1), b(2), b(3)]
                }
            });
            ep.mac = mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
            let gateways = if default_route && !n.internal {
                [n.gateway_v4(), n.gateway_v6()].into_iter().flatten().collect()
            } else {
                vec![]
            };
            let plan = EndpointPlan {
                host_veth: ep.host_veth.clone(),
                ifname: ep.ifname.clone(),
                bridge: n.bridge.clone(),
                mac,
                addrs,
                gateways,
                mtu: self.mtu_of(n),
            };
            n.endpoints.insert(container.into(), ep.clone());
            self.store.save(n)?;
            (plan, ep)
        };
        if let Err(e) = sandbox::connect(netns, &plan) {
            let mut g = lock(&self.inner);
            if let Ok(n) = find_mut(&mut g.networks, key) {
                n.endpoints.remove(container);
                release_addrs(n, &ep);
                let _ = self.store.save(n);
            }
            return Err(e);
        }
        Ok(ep)
    }

    fn endpoints_of_locked(&self, g: &Inner, container: &str) -> Vec<(Network, Endpoint)> {
        g.networks
            .values()
            .filter_map(|n| n.endpoints.get(container).map(|e| (n.clone(), e.clone())))
            .collect()
    }

    /// The networks a container is attached to, with its endpoint on each.
    pub fn endpoints_of(&self, container: &str) -> Vec<(Network, Endpoint)> {
        let g = lock(&self.inner);
        let mut v = self.endpoints_of_locked(&g, container);
        v.sort_by(|a, b| a.1.ifname.cmp(&b.1.ifname));
        v
    }

    /// Detach a container from one network (its veth goes, its address is freed).
    pub fn disconnect(&self, container: &str, key: &str) -> Result<()> {
        let ep = {
            let mut g = lock(&self.inner);
            let n = find_mut(&mut g.networks, key)?;
            let Some(ep) = n.endpoints.remove(container) else {
                return Err(NetworkError::NotFound(format!(
                    "container {container} is not connected to network {}",
                    n.name
                )));
            };
            release_addrs(n, &ep);
            self.store.save(n)?;
            ep
        };
        sandbox::delete_link(&ep.host_veth)?;
        Ok(())
    }

    /// Publish ports to the container's address on its first network. All or nothing.
    pub fn publish(&self, container: &str, reqs: &[PortRequest]) -> Result<Vec<PublishedPort>> {
        if reqs.is_empty() {
            return Ok(vec![]);
        }
        if !self.cfg.firewall {
            return Err(NetworkError::Invalid(
                "cannot publish ports: the daemon runs without its firewall (iptables: false)".into(),
            ));
        }
        let eps = self.endpoints_of(container);
        let v4 = eps.iter().find_map(|(_, e)| e.ipv4.map(|a| a.addr()));
        let v6 = eps.iter().find_map(|(_, e)| e.ipv6.map(|a| a.addr()));
        let mut held = Vec::new();
        let mut out = Vec::new();
        for r in reqs {
            let fams: Vec<(bool, IpAddr)> = match r.host_ip {
                Some(ip) if ip.is_ipv4() => v4.map(|c| (false, c)).into_iter().collect(),
                Some(_) => v6.map(|c| (true, c)).into_iter().collect(),
                None => [v4.map(|c| (false, c)), v6.map(|c| (true, c))]
                    .into_iter()
                    .flatten()
                    .collect(),
            };
            if fams.is_empty() {
                return Err(NetworkError::Invalid(format!(
                    "cannot publish port {}/{}: the container has no address of that family on a bridge network",
                    r.ctr_port,
                    r.proto.as_str()
                )));
            }
            let mut req = r.clone();
            for (is6, ctr) in fams {
                let res = ports::reserve(&req, is6)?;
                // The v6 binding takes the same host port as the v4 one (as Docker's).
                if req.host_port == 0 {
                    req.host_port = res.port.host_port;
                    req.host_port_end = res.port.host_port;
                }
                out.push((res.port.clone(), ctr));
                held.push(res);
            }
        }
        let shown: Vec<PublishedPort> = out.iter().map(|(p, _)| p.clone()).collect();
        {
            let mut g = lock(&self.inner);
            g.published.ports.insert(container.into(), out);
            g.held.insert(container.into(), held);
        }
        let r = self.save_published().and_then(|_| self.apply_firewall());
        if let Err(e) = r {
            self.unpublish(container);
            return Err(e);
        }
        Ok(shown)
    }

    pub fn published(&self, container: &str) -> Vec<PublishedPort> {
        lock(&self.inner)
            .published
            .ports
            .get(container)
            .map(|v| v.iter().map(|(p, _)| p.clone()).collect())
            .unwrap_or_default()
    }

    fn unpublish(&self, container: &str) {
        let had = {
            let mut g = lock(&self.inner);
            g.held.remove(container);
            g.published.ports.remove(container).is_some()
        };
        if had {
            let _ = self.save_published();
            if let Err(e) = self.apply_firewall() {
                eprintln!("berthd: firewall update after unpublishing {container}: {e}");
            }
        }
    }

    /// Everything a stopped container held: ports, endpoints, its namespace. Idempotent.
    /// Deleting a veth waits for the kernel (RCU grace periods, 10–30 ms), so that and
    /// freeing the addresses happen on a thread of their own: the endpoints leave the
    /// records at once (a restart can connect again), the addresses stay taken until
    /// their veths are gone (never two interfaces with one address).
    pub fn teardown(self: &Arc<Self>, container: &str) {
        self.unpublish(container);
        self.dns_detach(container);
        let gone: Vec<(String, Endpoint)> = {
            let mut g = lock(&self.inner);
            g.networks
                .values_mut()
                .filter_map(|n| n.endpoints.remove(container).map(|e| (n.id.clone(), e)))
                .collect()
        };
        let _ = sandbox::destroy(&self.sandbox_path(container));
        if gone.is_empty() {
            return;
        }
        let m = self.clone();
        let spawned = std::thread::Builder::new()
            .name("berth-teardown".into())
            .stack_size(256 << 10)
            .spawn(move || m.release_endpoints(gone));
        if let Err(e) = spawned {
            eprintln!("berthd: cannot release the endpoints of {container}: {e}");
        }
    }

    fn release_endpoints(&self, gone: Vec<(String, Endpoint)>) {
        for (_, ep) in &gone {
            if let Err(e) = sandbox::delete_link(&ep.host_veth) {
                eprintln!("berthd: delete {} of container {}: {e}", ep.host_veth, ep.container);
            }
        }
        let mut g = lock(&self.inner);
        for (net, ep) in &gone {
            if let Some(n) = g.networks.get_mut(net) {
                release_addrs(n, ep);
                if let Err(e) = self.store.save(n) {
                    eprintln!("berthd: save network {}: {e}", n.name);
                }
            }
        }
    }
}
