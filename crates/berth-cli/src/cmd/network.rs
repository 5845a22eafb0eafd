//! The `network` group: create, ls, inspect, connect, disconnect, rm, prune. Request
//! bodies are the docker CLI's (v28), field for field.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::objects::{
    check_args, confirm, group_usage, inspect as inspect_docs, joined_labels, labels, list_format, map_opts,
    natural_cmp, path_escape, Count,
};
use super::Ctx;
use crate::api::{filters_json, Query};
use crate::cli_netvol::{
    NetConnectArgs, NetCreateArgs, NetDisconnectArgs, NetInspectArgs, NetLsArgs, NetPruneArgs, NetRmArgs, NetworkCmd,
    NetworkGroup,
};
use crate::error::{flag_err, Error, Result};
use crate::format::{println, short_id};

const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";
// Escaped newlines: the format is trimmed before they become real ones.
const RAW: (&str, &str) = (
    "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n",
    "network_id: {{.ID}}",
);
const PRUNE_WARNING: &str = "WARNING! This will remove all custom networks not used by at least one container.";

pub fn run(ctx: &Ctx, g: NetworkGroup) -> Result<()> {
    use NetworkCmd as N;
    match g.cmd {
        None => group_usage("network", false, &g.unknown),
        Some(N::Create(a)) => create(ctx, a),
        Some(N::Ls(a)) => ls(ctx, a),
        Some(N::Inspect(a)) => inspect(ctx, a),
        Some(N::Connect(a)) => connect(ctx, a),
        Some(N::Disconnect(a)) => disconnect(ctx, a),
        Some(N::Rm(a)) => rm(ctx, a),
        Some(N::Prune(a)) => prune(ctx, a),
    }
}

/// A `strings` flag's values (comma-separated, as pflag reads them), empty ones dropped.
fn strs(v: &[String]) -> Vec<String> {
    v.iter().filter(|s| !s.is_empty()).cloned().collect()
}

/// Go's `net.ParseCIDR`: the address as written and the prefix length.
fn parse_cidr(s: &str) -> std::result::Result<(IpAddr, u32), String> {
    let bad = || format!("invalid CIDR address: {s}");
    let (ip, bits) = s.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u32 = bits.parse().map_err(|_| bad())?;
    if n > if ip.is_ipv4() { 32 } else { 128 } {
        return Err(bad());
    }
    Ok((ip, n))
}

fn contains((net, bits): (IpAddr, u32), ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// docker's `subnetMatches`: whether `data` (an address, or a CIDR's address) lies in
/// `subnet`.
fn subnet_matches(subnet: &str, data: &str) -> std::result::Result<bool, String> {
    let net = parse_cidr(subnet).map_err(|e| format!("invalid subnet: {e}"))?;
    let ip = if data.contains('/') {
        Some(parse_cidr(data)?.0)
    } else {
        data.parse().ok()
    };
    Ok(ip.is_some_and(|ip| contains(net, ip)))
}

#[derive(Default)]
struct Pool {
    subnet: String,
    range: String,
    gateway: String,
    aux: Map<String, Value>,
}

/// docker's `createIPAMConfig`: each ip-range, gateway and aux-address goes with the
/// subnet it lies in (in the order the subnets were given; docker's is a map's).
fn ipam_config(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
    aux: &[String],
) -> std::result::Result<Vec<Value>, String> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    let mut pools: Vec<Pool> = Vec::new();
    for s in subnets {
        for p in &pools {
            if subnet_matches(s, &p.subnet)? || subnet_matches(&p.subnet, s)? {
                return Err("multiple overlapping subnet configuration is not supported".into());
            }
        }
        pools.push(Pool {
            subnet: s.clone(),
            ..Pool::default()
        });
    }
    for r in ranges {
        parse_cidr(r)?;
        let mut matched = false;
        for p in &mut pools {
            if !subnet_matches(&p.subnet, r)? {
                continue;
            }
            if !p.range.is_empty() {
                return Err(format!(
                    "cannot configure multiple ranges ({r}, {}) on the same subnet ({})",
                    p.range, p.subnet
                ));
            }
            p.range = r.clone();
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for range {r}"));
        }
    }
    for g in gateways {
        let mut matched = false;
        for p in &mut pools {
            if !subnet_matches(&p.subnet, g)? {
                continue;
            }
            if !p.gateway.is_empty() {
                return Err(format!(
                    "cannot configure multiple gateways ({g}, {}) for the same subnet ({})",
                    p.gateway, p.subnet
                ));
            }
            p.gateway = g.clone();
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for gateway {g}"));
        }
    }
    for (key, addr) in map_opts(aux) {
        let a = addr.as_str().unwrap_or("");
        let mut matched = false;
        for p in &mut pools {
            if subnet_matches(&p.subnet, a)? {
                p.aux.insert(key.clone(), addr.clone());
                matched = true;
            }
        }
        if !matched {
            return Err(format!("no matching subnet for aux-address {a}"));
        }
    }
    Ok(pools
        .into_iter()
        .map(|p| {
            let mut c = json!({ "Subnet": p.subnet });
            if !p.range.is_empty() {
                c["IPRange"] = json!(p.range);
            }
            if !p.gateway.is_empty() {
                c["Gateway"] = json!(p.gateway);
            }
            if !p.aux.is_empty() {
                c["AuxiliaryAddresses"] = Value::Object(p.aux);
            }
            c
        })
        .collect())
}

pub fn create(ctx: &Ctx, a: NetCreateArgs) -> Result<()> {
    let labels = labels(&a.label)?;
    check_args("network create", "[OPTIONS] NETWORK", &a.args, Count::Exact(1))?;
    let config =
        ipam_config(&strs(&a.subnet), &strs(&a.ip_range), &strs(&a.gateway), &a.aux_address).map_err(Error::Msg)?;
    let config_from = match a.config_from.as_deref().filter(|c| !c.is_empty()) {
        Some(n) => json!({ "Network": n }),
        None => Value::Null,
    };
    let mut body = json!({
        "Driver": a.driver,
        "Scope": a.scope,
        "IPAM": {"Driver": a.ipam_driver, "Options": map_opts(&a.ipam_opt), "Config": config},
        "Internal": a.internal,
        "Attachable": a.attachable,
        "Ingress": a.ingress,
        "ConfigOnly": a.config_only,
        "ConfigFrom": config_from,
        "Options": map_opts(&a.opt),
        "Labels": labels,
        "Name": a.args[0],
    });
    // Sent only when given, as docker's pointers are.
    if let Some(v) = a.ipv4 {
        body["EnableIPv4"] = json!(v);
    }
    if let Some(v) = a.ipv6 {
        body["EnableIPv6"] = json!(v);
    }
    let v: Value = ctx.api.json("POST", "/networks/create", Some(&body))?;
    println(v["Id"].as_str().unwrap_or(""))
}

fn headers() -> Value {
    json!({"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4",
           "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"})
}

/// One network of `/networks` as docker's network context shows it.
fn row(n: &Value, trunc: bool) -> Value {
    let id = n["Id"].as_str().unwrap_or("");
    let flag = |k: &str| n[k].as_bool().unwrap_or(false).to_string();
    json!({
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Name": n["Name"].as_str().unwrap_or(""),
        "Driver": n["Driver"].as_str().unwrap_or(""),
        "Scope": n["Scope"].as_str().unwrap_or(""),
        "IPv4": flag("EnableIPv4"),
        "IPv6": flag("EnableIPv6"),
        "Internal": flag("Internal"),
        "Labels": joined_labels(&n["Labels"]),
        "CreatedAt": super::objects::go_time_string(n["Created"].as_str().unwrap_or("")),
        "__labels": n["Labels"].clone(),
    })
}

pub fn ls(ctx: &Ctx, a: NetLsArgs) -> Result<()> {
    check_args("network ls", "[OPTIONS]", &a.args, Count::NoArgs)?;
    let mut q = Query::new();
    if !a.filter.is_empty() {
        q.add("filters", filters_json(&a.filter)?);
    }
    let list: Value = ctx.api.get(&format!("/networks{}", q.as_str()))?;
    let mut list = list.as_array().cloned().unwrap_or_default();
    list.sort_by(|x, y| natural_cmp(x["Name"].as_str().unwrap_or(""), y["Name"].as_str().unwrap_or("")));
    let fmt = list_format(a.format.as_deref(), a.quiet, DEFAULT_TABLE, "{{.ID}}", RAW)?;
    let rows: Vec<Value> = list.iter().map(|n| row(n, !a.no_trunc)).collect();
    fmt.print(&headers(), &rows)
}

pub fn inspect(ctx: &Ctx, a: NetInspectArgs) -> Result<()> {
    check_args(
        "network inspect",
        "[OPTIONS] NETWORK [NETWORK...]",
        &a.args,
        Count::AtLeast(1),
    )?;
    let verbose = if a.verbose { "?verbose=true" } else { "" };
    inspect_docs(ctx, &a.args, a.format.as_deref(), |n| {
        format!("/networks/{}{verbose}", path_escape(n))
    })
}

/// docker's `ValidateLink` for `--link`: `name` or `name:alias`.
fn validate_link(l: &str) -> Result<()> {
    if l.is_empty() {
        return Err(flag_err("--link", l, "empty string specified for links"));
    }
    if l.splitn(3, ':').count() > 2 {
        return Err(flag_err("--link", l, format!("bad format for links: {l}")));
    }
    Ok(())
}

/// `--driver-opt k=v` (trimmed) into a map; anything else fails as docker's does.
fn driver_opts(list: &[String]) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    for o in strs(list) {
        match o.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                m.insert(k.trim().to_string(), json!(v.trim()));
            }
            _ => return Err(Error::msg("invalid key/value pair format in driver options")),
        }
    }
    Ok(m)
}

pub fn connect(ctx: &Ctx, a: NetConnectArgs) -> Result<()> {
    for l in &a.link {
        validate_link(l)?;
    }
    check_args(
        "network connect",
        "[OPTIONS] NETWORK CONTAINER",
        &a.args,
        Count::Exact(2),
    )?;
    let opts = driver_opts(&a.driver_opt)?;
    let mut ipam = Map::new();
    if let Some(ip) = a.ip.as_deref().filter(|s| !s.is_empty()) {
        ipam.insert("IPv4Address".into(), json!(ip));
    }
    if let Some(ip) = a.ip6.as_deref().filter(|s| !s.is_empty()) {
        ipam.insert("IPv6Address".into(), json!(ip));
    }
    let link_local = strs(&a.link_local_ip);
    if !link_local.is_empty() {
        ipam.insert("LinkLocalIPs".into(), json!(link_local));
    }
    let links = if a.link.is_empty() { Value::Null } else { json!(a.link) };
    let body = json!({
        "Container": a.args[1],
        "EndpointConfig": {
            "IPAMConfig": ipam, "Links": links, "Aliases": strs(&a.alias), "MacAddress": "",
            "DriverOpts": opts, "GwPriority": a.gw_priority, "NetworkID": "", "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "DNSNames": null,
        },
    });
    ctx.api.call(
        "POST",
        &format!("/networks/{}/connect", path_escape(&a.args[0])),
        Some(&body),
    )
}

pub fn disconnect(ctx: &Ctx, a: NetDisconnectArgs) -> Result<()> {
    check_args(
        "network disconnect",
        "[OPTIONS] NETWORK CONTAINER",
        &a.args,
        Count::Exact(2),
    )?;
    let body = json!({"Container": a.args[1], "Force": a.force});
    ctx.api.call(
        "POST",
        &format!("/networks/{}/disconnect", path_escape(&a.args[0])),
        Some(&body),
    )
}

pub fn rm(ctx: &Ctx, a: NetRmArgs) -> Result<()> {
    check_args("network rm", "NETWORK [NETWORK...]", &a.args, Count::AtLeast(1))?;
    let mut failed = false;
    for n in &a.args {
        match ctx.api.call("DELETE", &format!("/networks/{}", path_escape(n)), None) {
            Ok(()) => println(n)?,
            Err(e) if a.force && e.is_not_found() => {}
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    // docker ends a partial failure with this line on stderr.
    if failed {
        Err(Error::msg("exit status 1"))
    } else {
        Ok(())
    }
}

pub fn prune(ctx: &Ctx, a: NetPruneArgs) -> Result<()> {
    check_args("network prune", "[OPTIONS]", &a.args, Count::NoArgs)?;
    let mut q = Query::new();
    if !a.filter.is_empty() {
        q.add("filters", filters_json(&a.filter)?);
    }
    if !a.force && !confirm(PRUNE_WARNING)? {
        return Ok(());
    }
    prune_networks(ctx, &q)
}

/// POST /networks/prune with `q`, printing what went (also for `system prune`).
pub fn prune_networks(ctx: &Ctx, q: &Query) -> Result<()> {
    super::prune_and_list(ctx, "/networks/prune", q, "NetworksDeleted", "Networks").map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn ipam_as_docker_consolidates_it() {
        let c = ipam_config(
            &s(&["10.78.0.0/16", "10.79.0.0/16"]),
            &s(&["10.78.5.0/24"]),
            &s(&["10.79.0.1"]),
            &s(&["h=10.79.0.5"]),
        )
        .unwrap();
        assert_eq!(
            json!(c),
            json!([{"Subnet": "10.78.0.0/16", "IPRange": "10.78.5.0/24"},
                   {"Subnet": "10.79.0.0/16", "Gateway": "10.79.0.1", "AuxiliaryAddresses": {"h": "10.79.0.5"}}])
        );
        let err =
            |sn: &[&str], r: &[&str], g: &[&str], x: &[&str]| ipam_config(&s(sn), &s(r), &s(g), &s(x)).unwrap_err();
        assert_eq!(
            err(&[], &[], &["10.1.0.1"], &[]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            err(&["10.80.0.0/16"], &[], &["10.81.0.1"], &[]),
            "no matching subnet for gateway 10.81.0.1"
        );
        assert_eq!(
            err(&["10.80.0.0/16"], &["10.81.0.0/24"], &[], &[]),
            "no matching subnet for range 10.81.0.0/24"
        );
        assert_eq!(
            err(&["10.80.0.0/16"], &["10.80.1.5"], &[], &[]),
            "invalid CIDR address: 10.80.1.5"
        );
        assert_eq!(
            err(&["10.80.0.0/16", "10.80.1.0/24"], &[], &[], &[]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(
            err(&["10.80.0.0/16", "bad"], &[], &[], &[]),
            "invalid subnet: invalid CIDR address: bad"
        );
        assert_eq!(
            err(&["10.80.0.0/16"], &[], &[], &["a=10.81.0.1"]),
            "no matching subnet for aux-address 10.81.0.1"
        );
        // A lone subnet is the daemon's to judge; IPv6 works the same way.
        assert!(ipam_config(&s(&["bad"]), &[], &[], &[]).is_ok());
        assert!(ipam_config(&s(&["fd00:1::/64"]), &[], &s(&["fd00:1::1"]), &[]).is_ok());
    }

    #[test]
    fn links_and_driver_opts() {
        assert!(validate_link("c1").is_ok() && validate_link("c1:x").is_ok());
        assert_eq!(
            validate_link("a:b:c").unwrap_err().to_string(),
            "invalid argument \"a:b:c\" for \"--link\" flag: bad format for links: a:b:c"
        );
        assert_eq!(
            Value::Object(driver_opts(&s(&[" k = v ", "x=y"])).unwrap()),
            json!({"k": "v", "x": "y"})
        );
        assert!(driver_opts(&s(&["noeq"])).is_err());
    }
}
