//! What the embedded DNS answers, from the networks' records: names and aliases of the
//! containers on the user networks the asking container is on, its `--link` aliases,
//! and reverse lookups.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::store::{Endpoint, Network};

fn endpoint_ips(e: &Endpoint) -> Vec<IpAddr> {
    [e.ipv4, e.ipv6].into_iter().flatten().map(|a| a.addr()).collect()
}

/// The network a query reached: the one whose gateway is `server`, asked from inside it.
fn network_of(nets: &BTreeMap<String, Network>, server: IpAddr, client: IpAddr) -> Option<&Network> {
    nets.values()
        .find(|n| n.ipam.iter().any(|a| a.gateway == server) && n.ipam.iter().any(|a| a.subnet.contains(&client)))
}

/// Addresses for `name` on `n`: container name (also as `name.network`), alias, short id.
fn names_on(n: &Network, name: &str) -> Vec<IpAddr> {
    let short = name.strip_suffix(&format!(".{}", n.name)).unwrap_or(name);
    n.endpoints
        .values()
        .filter(|e| {
            e.name.eq_ignore_ascii_case(short)
                || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(short))
                || (short.len() == 12 && e.container.starts_with(short))
        })
        .flat_map(endpoint_ips)
        .collect()
}

/// As Docker's resolver: the network asked through first, then the other user networks
/// of the asking container, then its `--link` aliases. None: not ours (forward it).
pub(crate) fn lookup(
    nets: &BTreeMap<String, Network>,
    server: IpAddr,
    client: IpAddr,
    name: &str,
) -> Option<Vec<IpAddr>> {
    let n = network_of(nets, server, client)?;
    let me = n.endpoints.values().find(|e| endpoint_ips(e).contains(&client));
    let mut out = names_on(n, name);
    if let (true, Some(me)) = (out.is_empty(), me) {
        for other in nets.values().filter(|o| o.id != n.id && !o.is_default_bridge()) {
            if other.endpoints.contains_key(&me.container) {
                out.extend(names_on(other, name));
            }
        }
    }
    if let (true, Some(me)) = (out.is_empty(), me) {
        for (alias, target) in &me.links {
            if alias.eq_ignore_ascii_case(name) {
                if let Some(t) = n.endpoints.values().find(|e| e.name == *target) {
                    out.extend(endpoint_ips(t));
                }
            }
        }
    }
    if out.is_empty() && n.internal {
        // An internal network has no way out, its DNS included: nothing is forwarded.
        return Some(out);
    }
    (!out.is_empty()).then_some(out)
}

/// `name.network` for an address on the network asked through.
pub(crate) fn reverse(nets: &BTreeMap<String, Network>, server: IpAddr, client: IpAddr, ip: IpAddr) -> Option<String> {
    let n = network_of(nets, server, client)?;
    n.endpoints
        .values()
        .find(|e| endpoint_ips(e).contains(&ip))
        .map(|e| format!("{}.{}", e.name, n.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::Allocator;

    fn net(id: &str, name: &str, subnet: &str, eps: &[(&str, &str, &str, &[&str])]) -> Network {
        let mut n: Network = serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "driver": "bridge", "created": "", "bridge": format!("br-{id}"),
        }))
        .unwrap();
        n.ipam
            .push(Allocator::new(subnet.parse().unwrap(), None, None).unwrap());
        for (cid, cname, ip, aliases) in eps {
            n.endpoints.insert(
                cid.to_string(),
                Endpoint {
                    container: cid.to_string(),
                    name: cname.to_string(),
                    ipv4: Some(format!("{ip}/24").parse().unwrap()),
                    aliases: aliases.iter().map(|s| s.to_string()).collect(),
                    links: vec![("db".into(), "pg".into())],
                    ..Default::default()
                },
            );
        }
        n
    }

    #[test]
    fn names_aliases_links_and_networks() {
        let mut nets = BTreeMap::new();
        let a = net(
            "a",
            "front",
            "10.1.0.0/24",
            &[
                ("c1aaaaaaaaaaaa", "web", "10.1.0.2", &["www"]),
                ("c2", "pg", "10.1.0.3", &[]),
            ],
        );
        let b = net(
            "b",
            "back",
            "10.2.0.0/24",
            &[
                ("c1aaaaaaaaaaaa", "web", "10.2.0.2", &[]),
                ("c3", "cache", "10.2.0.3", &[]),
            ],
        );
        let c = net("c", "other", "10.3.0.0/24", &[("c4", "lonely", "10.3.0.2", &[])]);
        for n in [a, b, c] {
            nets.insert(n.id.clone(), n);
        }
        let (gw, me) = ("10.1.0.1".parse().unwrap(), "10.1.0.2".parse().unwrap());
        let ip = |s: &str| vec![s.parse::<IpAddr>().unwrap()];
        assert_eq!(lookup(&nets, gw, me, "pg"), Some(ip("10.1.0.3")));
        assert_eq!(lookup(&nets, gw, me, "WWW"), Some(ip("10.1.0.2")));
        assert_eq!(lookup(&nets, gw, me, "pg.front"), Some(ip("10.1.0.3")));
        assert_eq!(lookup(&nets, gw, me, "c1aaaaaaaaaa"), Some(ip("10.1.0.2")));
        // Another network of the asking container; a link alias.
        assert_eq!(lookup(&nets, gw, me, "cache"), Some(ip("10.2.0.3")));
        assert_eq!(lookup(&nets, gw, me, "db"), Some(ip("10.1.0.3")));
        // Not on any of its networks: not ours (forwarded).
        assert_eq!(lookup(&nets, gw, me, "lonely"), None);
        // A client that is not inside the network asked through gets nothing.
        assert_eq!(lookup(&nets, gw, "10.3.0.2".parse().unwrap(), "pg"), None);
        assert_eq!(
            reverse(&nets, gw, me, "10.1.0.3".parse().unwrap()),
            Some("pg.front".into())
        );
    }
}
