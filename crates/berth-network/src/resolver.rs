//! What the embedded DNS answers, from the networks' records: names and aliases of the
//! containers on the user networks the asking container is on, its `--link` aliases,
//! and reverse lookups.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::dns::Asker;
use crate::store::{Endpoint, Network};

fn endpoint_ips(e: &Endpoint) -> Vec<IpAddr> {
    [e.ipv4, e.ipv6].into_iter().flatten().map(|a| a.addr()).collect()
}

/// The network a query reached, and the asking container's endpoint on it. Through a
/// network's address: that network, asked from inside it. From a container's own
/// listener: the first of its user networks.
fn asked_through<'a>(
    nets: &'a BTreeMap<String, Network>,
    asker: Asker<'_>,
) -> Option<(&'a Network, Option<&'a Endpoint>)> {
    match asker {
        Asker::Network { server, client } => {
            let n = nets.values().find(|n| {
                n.ipam.iter().any(|a| a.gateway == server.ip()) && n.ipam.iter().any(|a| a.subnet.contains(&client))
            })?;
            Some((n, n.endpoints.values().find(|e| endpoint_ips(e).contains(&client))))
        }
        Asker::Container(id) => nets
            .values()
            .filter(|n| n.driver == "bridge" && !n.is_default_bridge())
            .filter_map(|n| n.endpoints.get(id).map(|e| (n, Some(e))))
            .min_by(|a, b| a.1.map(|e| &e.ifname).cmp(&b.1.map(|e| &e.ifname))),
    }
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
pub(crate) fn lookup(nets: &BTreeMap<String, Network>, asker: Asker<'_>, name: &str) -> Option<Vec<IpAddr>> {
    let (n, me) = asked_through(nets, asker)?;
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
    let way_out = match me {
        Some(me) => nets
            .values()
            .any(|o| o.driver == "bridge" && !o.internal && o.endpoints.contains_key(&me.container)),
        None => !n.internal,
    };
    if out.is_empty() && !way_out {
        // Only on internal networks: no way out, its DNS included; nothing is forwarded.
        return Some(out);
    }
    (!out.is_empty()).then_some(out)
}

/// `name.network` for an address on the network asked through.
pub(crate) fn reverse(nets: &BTreeMap<String, Network>, asker: Asker<'_>, ip: IpAddr) -> Option<String> {
    let (n, _) = asked_through(nets, asker)?;
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
        let me = Asker::Network {
            server: "10.1.0.1:53".parse().unwrap(),
            client: "10.1.0.2".parse().unwrap(),
        };
        let ip = |s: &str| vec![s.parse::<IpAddr>().unwrap()];
        assert_eq!(lookup(&nets, me, "pg"), Some(ip("10.1.0.3")));
        assert_eq!(lookup(&nets, me, "WWW"), Some(ip("10.1.0.2")));
        assert_eq!(lookup(&nets, me, "pg.front"), Some(ip("10.1.0.3")));
        assert_eq!(lookup(&nets, me, "c1aaaaaaaaaa"), Some(ip("10.1.0.2")));
        // Another network of the asking container; a link alias.
        assert_eq!(lookup(&nets, me, "cache"), Some(ip("10.2.0.3")));
        assert_eq!(lookup(&nets, me, "db"), Some(ip("10.1.0.3")));
        // Not on any of its networks: not ours (forwarded).
        assert_eq!(lookup(&nets, me, "lonely"), None);
        // A client that is not inside the network asked through gets nothing.
        let stranger = Asker::Network {
            server: "10.1.0.1:53".parse().unwrap(),
            client: "10.3.0.2".parse().unwrap(),
        };
        assert_eq!(lookup(&nets, stranger, "pg"), None);
        assert_eq!(reverse(&nets, me, "10.1.0.3".parse().unwrap()), Some("pg.front".into()));
        // The same answers for the container asking through its own listener: its first
        // network (by interface) is asked first, then its others.
        let own = Asker::Container("c1aaaaaaaaaaaa");
        assert_eq!(lookup(&nets, own, "pg"), Some(ip("10.1.0.3")));
        assert_eq!(lookup(&nets, own, "cache"), Some(ip("10.2.0.3")));
        assert_eq!(lookup(&nets, own, "lonely"), None);
        assert_eq!(lookup(&nets, Asker::Container("nobody"), "pg"), None);
        // Only on internal networks: unknown names are answered empty, not forwarded.
        for n in nets.values_mut() {
            n.internal = true;
        }
        assert_eq!(lookup(&nets, own, "example.org"), Some(vec![]));
        assert_eq!(lookup(&nets, own, "pg"), Some(ip("10.1.0.3")));
    }
}
