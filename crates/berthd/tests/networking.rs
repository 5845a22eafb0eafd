//! Networking through berthd with the docker CLI: the default bridge, published ports
//! (from the host, from another container, from a "LAN" peer namespace), user networks
//! with DNS and isolation, internal networks, connect/disconnect, errors, restarts.
//! Traffic goes only to loopback, the daemon's bridges, and namespaces the tests make.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Daemon;

fn daemon() -> Daemon {
    let d = Daemon::start();
    d.assert_is_berth();
    d.import_busybox("busybox:latest");
    d
}

/// GET / from `addr` (host side), retrying while the server comes up.
fn http_get(addr: &str) -> Option<String> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)) {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if !out.is_empty() {
                return Some(out);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// A free TCP port on the host (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An httpd serving the container's /etc (so /hostname names it).
fn httpd(d: &Daemon, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    d.ok(&args)
}

/// From a throwaway container (extra run flags first): GET /hostname of ip:port via nc.
fn get_from_container(d: &Daemon, run_flags: &[&str], host: &str, port: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(run_flags);
    let script = format!("printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} {port}");
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    String::from_utf8_lossy(&d.docker(&args).stdout).to_string()
}

fn inspect(d: &Daemon, name: &str, fmt: &str) -> String {
    d.ok(&["inspect", "--format", fmt, name])
}

#[test]
fn default_bridge_addresses_and_reachability() {
    let d = daemon();
    let a = httpd(&d, "srv", &[]);
    let ip = inspect(&d, "srv", "{{.NetworkSettings.IPAddress}}");
    assert!(
        ip.starts_with(d.gateway.trim_end_matches(".1")),
        "{ip} on {}",
        d.gateway
    );
    assert_eq!(inspect(&d, "srv", "{{.NetworkSettings.Gateway}}"), d.gateway);
    assert_eq!(
        inspect(&d, "srv", "{{(index .NetworkSettings.Networks \"bridge\").IPAddress}}"),
        ip
    );
    let mac = inspect(&d, "srv", "{{.NetworkSettings.MacAddress}}");
    assert!(mac.starts_with("02:42:"), "{mac}");
    // Its own /etc/hosts names it; its route goes through the bridge.
    let hosts = d.ok(&["exec", "srv", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip}\t{}", &a[..12])), "{hosts}");
    let route = d.ok(&["exec", "srv", "ip", "route"]);
    assert!(route.contains(&format!("default via {}", d.gateway)), "{route}");
    // Container to container over the bridge, and host to container.
    let got = get_from_container(&d, &[], &ip, "80");
    assert!(got.contains(&a[..12]), "{got}");
    assert!(http_get(&format!("{ip}:80")).unwrap_or_default().contains(&a[..12]));
    // The network lists the container; removal frees the address and the veth.
    let containers = d.ok(&["network", "inspect", "bridge", "--format", "{{json .Containers}}"]);
    assert!(containers.contains(&a) && containers.contains(&ip), "{containers}");
    d.ok(&["rm", "-f", "srv"]);
    let containers = d.ok(&["network", "inspect", "bridge", "--format", "{{json .Containers}}"]);
    assert_eq!(containers, "{}");
    assert_eq!(common::veths_on(&d.bridge, 0), Vec::<String>::new());
    // --network none: lo only (control for the above: no eth0).
    let none = d.ok(&["run", "--rm", "--network", "none", "busybox", "ip", "addr"]);
    assert!(none.contains("127.0.0.1") && !none.contains("eth0"), "{none}");
}

#[test]
fn published_ports_from_host_containers_and_errors() {
    let d = daemon();
    let hp = free_port();
    let a = httpd(
        &d,
        "pub",
        &["-p", &format!("{hp}:80"), "-p", "127.0.0.1::80", "--expose", "81", "-P"],
    );
    let ports = d.ok(&["port", "pub"]);
    assert!(ports.contains(&format!("80/tcp -> 0.0.0.0:{hp}")), "{ports}");
    assert!(ports.contains("80/tcp -> 127.0.0.1:"), "{ports}");
    assert!(ports.contains("81/tcp -> 0.0.0.0:"), "{ports}");
    let local = ports
        .lines()
        .find_map(|l| l.strip_prefix("80/tcp -> 127.0.0.1:"))
        .unwrap()
        .to_string();
    // From the host: loopback, the bridge's address; the loopback-only port too.
    for addr in [
        format!("127.0.0.1:{hp}"),
        format!("{}:{hp}", d.gateway),
        format!("127.0.0.1:{local}"),
    ] {
        let got = http_get(&addr).unwrap_or_default();
        assert!(got.contains(&a[..12]), "{addr}: {got:?}");
    }
    // From another container through the host (hairpin through the bridge address).
    let got = get_from_container(&d, &[], &d.gateway, &hp.to_string());
    assert!(got.contains(&a[..12]), "{got}");
    // ps and inspect report the bindings.
    let ps = d.ok(&["ps", "--format", "{{.Ports}}", "--filter", "name=pub"]);
    assert!(ps.contains(&format!("0.0.0.0:{hp}->80/tcp")), "{ps}");
    let hostport = inspect(
        &d,
        "pub",
        "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
    );
    assert_eq!(hostport, hp.to_string());
    // The same host port again: a clear error, and nothing of the second container is
    // left on the bridge or in the firewall.
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("{hp}:80"),
        "busybox",
        "sleep",
        "60",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("0.0.0.0:{hp}")) && err.contains("already allocated"),
        "{err}"
    );
    assert_eq!(common::veths_on(&d.bridge, 1).len(), 1, "only pub's veth");
    let rules = Command::new("nft")
        .args(["list", "chain", "inet", &d.table, "ports"])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout).to_string();
    assert_eq!(rules.matches("dnat").count(), 3, "{rules}");
    // A port held by another program is refused too (a plain listener on the host).
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let tp = taken.local_addr().unwrap().port();
    let o = d.docker(&["run", "--rm", "-p", &format!("{tp}:80"), "busybox", "true"]);
    assert!(!o.status.success(), "a port in use must be refused");
    drop(taken);
    // Positive control: once pub is gone the port can be had, and its rules are gone.
    d.ok(&["rm", "-f", "pub"]);
    let rules = Command::new("nft")
        .args(["list", "chain", "inet", &d.table, "ports"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&rules.stdout).matches("dnat").count(), 0);
    d.ok(&["start", "clash"]);
    assert!(d.ok(&["port", "clash"]).contains(&format!("0.0.0.0:{hp}")));
}

/// A network namespace joined to the host by a veth pair: a machine on the LAN. The
/// namespace lives as long as its one process (no mount, nothing to leak).
struct LanPeer {
    holder: std::process::Child,
    host_if: String,
    pub host_ip: String,
}

impl LanPeer {
    fn new(tag: u32) -> LanPeer {
        let host_if = format!("bl{tag}");
        let x = (tag % 200) + 20;
        let (host_ip, peer_ip) = (format!("10.254.{x}.1"), format!("10.254.{x}.2"));
        let _ = Command::new("ip")
            .args(["link", "del", &host_if])
            .stderr(std::process::Stdio::null())
            .status();
        let holder = Command::new("unshare").args(["--net", "sleep", "600"]).spawn().unwrap();
        let pid = holder.id().to_string();
        // unshare runs sleep in the new namespace once it has made it.
        let t = Instant::now();
        let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
        while std::fs::read_link(format!("/proc/{pid}/ns/net")).ok().as_ref() == Some(&host_ns) {
            assert!(t.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(10));
        }
        let peer = LanPeer {
            holder,
            host_if,
            host_ip,
        };
        let sh = |args: &[&str]| {
            let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
            assert!(st.success(), "{args:?}");
        };
        sh(&[
            "ip",
            "link",
            "add",
            &peer.host_if,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &pid,
        ]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", peer.host_ip),
            "dev",
            &peer.host_if,
        ]);
        sh(&["ip", "link", "set", &peer.host_if, "up"]);
        sh(&[
            "nsenter",
            "-t",
            &pid,
            "-n",
            "ip",
            "addr",
            "add",
            &format!("{peer_ip}/24"),
            "dev",
            "eth0",
        ]);
        sh(&["nsenter", "-t", &pid, "-n", "ip", "link", "set", "eth0", "up"]);
        sh(&["nsenter", "-t", &pid, "-n", "ip", "link", "set", "lo", "up"]);
        peer
    }

    /// GET /hostname of the host's address:port from inside the peer.
    fn get(&self, port: u16) -> String {
        let script = format!(
            "printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 {} {port}",
            self.host_ip
        );
        let o = Command::new("nsenter")
            .args(["-t", &self.holder.id().to_string(), "-n", "sh", "-c", &script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    }
}

impl Drop for LanPeer {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).status();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

#[test]
fn published_port_reached_from_another_machine() {
    let d = daemon();
    let lan = LanPeer::new(std::process::id() % 10000);
    let hp = free_port();
    let a = httpd(&d, "lan-srv", &["-p", &format!("{hp}:80")]);
    // Let the server come up (checked from the host first).
    assert!(http_get(&format!("127.0.0.1:{hp}")).is_some());
    let got = lan.get(hp);
    assert!(got.contains(&a[..12]), "from the LAN peer: {got:?}");
    // Control: a port that is not published is not reachable from there.
    let other = free_port();
    assert!(!lan.get(other).contains(&a[..12]));
    // A binding to 127.0.0.1 only is not reachable from the LAN (but is from the host).
    let lp = free_port();
    let b = httpd(&d, "lan-local", &["-p", &format!("127.0.0.1:{lp}:80")]);
    assert!(http_get(&format!("127.0.0.1:{lp}"))
        .unwrap_or_default()
        .contains(&b[..12]));
    assert!(!lan.get(lp).contains(&b[..12]));
}

#[test]
fn user_networks_dns_isolation_and_internal() {
    let d = daemon();
    d.ok(&["network", "create", "--label", "t=1", "front"]);
    d.ok(&["network", "create", "back"]);
    d.ok(&["network", "create", "--internal", "sealed"]);
    let web = httpd(&d, "web", &["--network", "front", "--network-alias", "www"]);
    let web_ip = inspect(&d, "web", "{{(index .NetworkSettings.Networks \"front\").IPAddress}}");
    let db = httpd(&d, "db", &["--network", "back"]);
    let db_ip = inspect(&d, "db", "{{(index .NetworkSettings.Networks \"back\").IPAddress}}");
    // DNS on a user network: the name, the alias, a --link alias; resolv.conf points at
    // the embedded server.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "--link",
        "web:legacy",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup web; nslookup www; nslookup legacy",
    ]);
    assert_eq!(out.matches(&format!("Address: {web_ip}")).count(), 3, "{out}");
    assert!(out.contains("ndots:0"), "{out}");
    // By name over the network (positive control for the isolation below).
    assert!(get_from_container(&d, &["--network", "front"], "web", "80").contains(&web[..12]));
    assert!(get_from_container(&d, &["--network", "back"], &db_ip, "80").contains(&db[..12]));
    // Across networks: neither by name nor by address.
    assert!(!get_from_container(&d, &["--network", "back"], &web_ip, "80").contains(&web[..12]));
    let o = d.docker(&["run", "--rm", "--network", "back", "busybox", "nslookup", "web"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains(&web_ip));
    // The default bridge has no embedded DNS (as Docker's).
    let o = d.docker(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("ndots:0"));
    // Internal: no default route, no way to other networks; inside it, traffic flows.
    let s1 = httpd(&d, "s1", &["--network", "sealed"]);
    let s1_ip = inspect(&d, "s1", "{{(index .NetworkSettings.Networks \"sealed\").IPAddress}}");
    let route = d.ok(&["run", "--rm", "--network", "sealed", "busybox", "ip", "route"]);
    assert!(!route.contains("default"), "{route}");
    assert!(get_from_container(&d, &["--network", "sealed"], &s1_ip, "80").contains(&s1[..12]));
    assert!(!get_from_container(&d, &["--network", "sealed"], &web_ip, "80").contains(&web[..12]));
    // Filters and labels.
    let ls = d.ok(&["network", "ls", "--filter", "label=t=1", "--format", "{{.Name}}"]);
    assert_eq!(ls, "front");
}

#[test]
fn connect_disconnect_and_network_errors() {
    let d = daemon();
    d.ok(&[
        "network",
        "create",
        "--subnet",
        "10.253.7.0/24",
        "--gateway",
        "10.253.7.254",
        "fixed",
    ]);
    let sub = d.ok(&[
        "network",
        "inspect",
        "fixed",
        "--format",
        "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}",
    ]);
    assert_eq!(sub, "10.253.7.0/24 10.253.7.254");
    // --ip on a user network; the same address twice is refused.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "pinned",
        "--network",
        "fixed",
        "--ip",
        "10.253.7.9",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(
        inspect(
            &d,
            "pinned",
            "{{(index .NetworkSettings.Networks \"fixed\").IPAddress}}"
        ),
        "10.253.7.9"
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "fixed",
        "--ip",
        "10.253.7.9",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("10.253.7.9"));
    // Overlapping subnets and duplicate names are refused.
    let o = d.docker(&["network", "create", "--subnet", "10.253.7.128/25", "overlap"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("overlaps"));
    let o = d.docker(&["network", "create", "fixed"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("already exists"));
    // Connect a running container from the default bridge: eth1 appears; disconnect: gone.
    d.ok(&["run", "-d", "--name", "roamer", "busybox", "sleep", "300"]);
    d.ok(&["network", "connect", "--alias", "rr", "fixed", "roamer"]);
    let addrs = d.ok(&["exec", "roamer", "ip", "addr"]);
    assert!(addrs.contains("eth1") && addrs.contains("10.253.7."), "{addrs}");
    let look = d.ok(&["exec", "pinned", "nslookup", "rr"]);
    assert!(look.contains("10.253.7."), "{look}");
    let o = d.docker(&["network", "connect", "fixed", "roamer"]);
    assert!(!o.status.success(), "connecting twice must fail");
    d.ok(&["network", "disconnect", "fixed", "roamer"]);
    let addrs = d.ok(&["exec", "roamer", "ip", "addr"]);
    assert!(!addrs.contains("eth1"), "{addrs}");
    // Errors as Docker's: pre-defined, in use, unknown.
    let (code, body) = d.http("DELETE", "/v1.45/networks/bridge", "");
    assert_eq!(code, 403, "{body}");
    let (code, body) = d.http("DELETE", "/v1.45/networks/fixed", "");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("active endpoints"), "{body}");
    let (code, _) = d.http("GET", "/v1.45/networks/nope", "");
    assert_eq!(code, 404);
    let o = d.docker(&["run", "--rm", "--network", "nope", "busybox", "true"]);
    assert!(!o.status.success());
    // An address outside the network is refused when connecting, even a stopped container.
    d.ok(&["create", "--name", "idle", "busybox", "true"]);
    let o = d.docker(&["network", "connect", "--ip", "10.99.0.5", "fixed", "idle"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not belong"), "{o:?}");
    d.ok(&["network", "connect", "--ip", "10.253.7.50", "fixed", "idle"]);
    // Prune: `until` keeps what is newer; unused networks only.
    d.ok(&["network", "create", "fresh"]);
    let pruned = d.ok(&["network", "prune", "-f", "--filter", "until=1h"]);
    assert!(!pruned.contains("fresh"), "{pruned}");
    d.ok(&["network", "rm", "fresh"]);
    let o = d.docker(&["network", "ls", "--filter", "bogus=1"]);
    assert!(!o.status.success(), "unknown filters are refused");
    // Prune takes unused networks only.
    d.ok(&["network", "create", "unused"]);
    let pruned = d.ok(&["network", "prune", "-f"]);
    assert!(pruned.contains("unused") && !pruned.contains("fixed"), "{pruned}");
    d.ok(&["rm", "-f", "pinned", "roamer", "idle"]);
    d.ok(&["network", "rm", "fixed"]);
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls.lines().collect::<Vec<_>>(), ["bridge", "host", "none"]);
}

#[test]
fn networking_survives_a_daemon_crash() {
    let mut d = daemon();
    d.ok(&["network", "create", "app"]);
    let hp = free_port();
    let a = httpd(&d, "keep", &["--network", "app", "-p", &format!("{hp}:80")]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "gone",
        "--network",
        "app",
        "busybox",
        "sleep",
        "300",
    ]);
    let gone_pid = inspect(&d, "gone", "{{.State.Pid}}");
    assert!(http_get(&format!("127.0.0.1:{hp}"))
        .unwrap_or_default()
        .contains(&a[..12]));
    d.kill9();
    // While berthd is away: the published port still works (all in the kernel), and one
    // container dies.
    assert!(http_get(&format!("127.0.0.1:{hp}"))
        .unwrap_or_default()
        .contains(&a[..12]));
    let _ = Command::new("kill").args(["-9", &gone_pid]).status();
    std::thread::sleep(Duration::from_millis(300));
    d.restart();
    // Reconciled: the port still answers, its rule is there once, DNS answers, the dead
    // container's endpoint is gone.
    assert!(http_get(&format!("127.0.0.1:{hp}"))
        .unwrap_or_default()
        .contains(&a[..12]));
    let rules = Command::new("nft")
        .args(["list", "chain", "inet", &d.table, "ports"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&rules.stdout).matches("dnat").count(), 1);
    let look = d.ok(&["run", "--rm", "--network", "app", "busybox", "nslookup", "keep"]);
    assert!(look.contains("Address:"), "{look}");
    let eps = d.ok(&[
        "network",
        "inspect",
        "app",
        "--format",
        "{{range .Containers}}{{.Name}} {{end}}",
    ]);
    assert_eq!(eps.trim(), "keep");
    // The port is still held: another container cannot take it.
    let o = d.docker(&["run", "--rm", "-p", &format!("{hp}:80"), "busybox", "true"]);
    assert!(!o.status.success());
    d.ok(&["rm", "-f", "keep", "gone"]);
}

#[test]
fn ipv6_network_addresses_dns_and_published_ports() {
    let d = daemon();
    let tag = std::process::id() % 0xfff0 + d.gateway.len() as u32;
    let prefix = format!("fd00:b7:{tag:x}:1");
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &format!("{prefix}::/64"),
        "six",
    ]);
    let cfg = d.ok(&[
        "network",
        "inspect",
        "six",
        "--format",
        "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}} {{end}}",
    ]);
    assert!(
        cfg.starts_with("true ") && cfg.contains(&format!("{prefix}::/64")),
        "{cfg}"
    );
    let hp = free_port();
    let a = httpd(&d, "v6srv", &["--network", "six", "-p", &format!("{hp}:80")]);
    let ip6 = inspect(
        &d,
        "v6srv",
        "{{(index .NetworkSettings.Networks \"six\").GlobalIPv6Address}}",
    );
    assert!(ip6.starts_with(&prefix), "{ip6}");
    let gw6 = inspect(&d, "v6srv", "{{(index .NetworkSettings.Networks \"six\").IPv6Gateway}}");
    assert_eq!(gw6, format!("{prefix}::1"));
    // A static IPv6 address; container to container over IPv6; AAAA from the DNS.
    let fixed = format!("{prefix}::99");
    let addrs = d.ok(&[
        "run",
        "--rm",
        "--network",
        "six",
        "--ip6",
        &fixed,
        "busybox",
        "ip",
        "addr",
    ]);
    assert!(addrs.contains(&format!("inet6 {fixed}/64")), "{addrs}");
    let got = get_from_container(&d, &["--network", "six"], &ip6, "80");
    assert!(got.contains(&a[..12]), "{got}");
    let look = d.ok(&[
        "run",
        "--rm",
        "--network",
        "six",
        "busybox",
        "nslookup",
        "-type=AAAA",
        "v6srv",
    ]);
    assert!(look.contains(&ip6), "{look}");
    // Published on [::] as well as 0.0.0.0: reached from the host through the v6 gateway
    // address, and through 127.0.0.1 (control: the same server either way).
    let ports = d.ok(&["port", "v6srv"]);
    assert!(
        ports.contains(&format!("[::]:{hp}")) && ports.contains(&format!("0.0.0.0:{hp}")),
        "{ports}"
    );
    assert!(http_get(&format!("[{gw6}]:{hp}"))
        .unwrap_or_default()
        .contains(&a[..12]));
    assert!(http_get(&format!("127.0.0.1:{hp}"))
        .unwrap_or_default()
        .contains(&a[..12]));
    // A network without --ipv6 gives no global IPv6 address.
    d.ok(&["network", "create", "four"]);
    let addrs = d.ok(&["run", "--rm", "--network", "four", "busybox", "ip", "addr"]);
    assert!(addrs.contains("inet "), "{addrs}");
    assert!(
        !addrs.lines().any(|l| l.contains("inet6") && l.contains("scope global")),
        "{addrs}"
    );
}

/// Docker's `ipv6`, `fixed-cidr-v6` and `fixed-cidr` keys make the default bridge
/// dual-stack with its addresses from those ranges; the daemon follows them at every
/// start (control: the same daemon before and after, with and without them). A user
/// network asked for IPv6 without a subnet gets a unique local /64.
#[test]
fn default_bridge_ipv6_and_fixed_cidrs() {
    let mut d = daemon();
    let ip6_of = |d: &Daemon, c: &str| inspect(d, c, "{{.NetworkSettings.GlobalIPv6Address}}");
    d.ok(&["run", "-d", "--name", "before", "busybox", "sleep", "60"]);
    assert_eq!(ip6_of(&d, "before"), "", "no IPv6 before the daemon has ipv6");
    d.ok(&["rm", "-f", "before"]);

    let tag = std::process::id() % 0xfff0;
    let prefix = format!("fd00:b9:{tag:x}:7");
    let gw4: std::net::Ipv4Addr = d.gateway.parse().unwrap();
    let o = gw4.octets();
    let range = format!("{}.{}.{}.32/27", o[0], o[1], o[2]);
    let restart_with = |d: &mut Daemon, config: &str| {
        std::fs::write(d.dir.path().join("daemon.json"), config).unwrap();
        d.restart();
    };
    let bridge = |d: &Daemon, fmt: &str| d.ok(&["network", "inspect", "bridge", "--format", fmt]);
    restart_with(
        &mut d,
        &format!(r#"{{"ipv6": true, "fixed-cidr-v6": "{prefix}::/64", "fixed-cidr": "{range}"}}"#),
    );
    let cfg = bridge(
        &d,
        "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}}|{{.IPRange}}|{{.Gateway}} {{end}}",
    );
    assert!(cfg.starts_with("true "), "{cfg}");
    assert!(cfg.contains(&format!("{prefix}::/64||{prefix}::1")), "{cfg}");
    assert!(cfg.contains(&format!("|{range}|{gw4}")), "{cfg}");
    let hp = free_port();
    let a = httpd(&d, "dual", &["-p", &format!("{hp}:80")]);
    let ip6 = ip6_of(&d, "dual");
    assert!(ip6.starts_with(&format!("{prefix}::")), "{ip6}");
    assert_eq!(
        inspect(&d, "dual", "{{.NetworkSettings.IPv6Gateway}}"),
        format!("{prefix}::1")
    );
    let ip4: std::net::Ipv4Addr = inspect(&d, "dual", "{{.NetworkSettings.IPAddress}}").parse().unwrap();
    assert!((32..64).contains(&ip4.octets()[3]), "{ip4} outside fixed-cidr {range}");
    // Over IPv6 container to container, and from the host through the published
    // port on [::] (the bridge's v6 address), as well as over IPv4 (control).
    let got = get_from_container(&d, &[], &ip6, "80");
    assert!(got.contains(&a[..12]), "{got}");
    let ports = d.ok(&["port", "dual"]);
    assert!(ports.contains(&format!("[::]:{hp}")), "{ports}");
    assert!(http_get(&format!("[{prefix}::1]:{hp}"))
        .unwrap_or_default()
        .contains(&a[..12]));
    assert!(http_get(&format!("{gw4}:{hp}")).unwrap_or_default().contains(&a[..12]));
    d.ok(&["rm", "-f", "dual"]);

    d.ok(&["network", "create", "--ipv6", "ula"]);
    let subnets = d.ok(&[
        "network",
        "inspect",
        "ula",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
    ]);
    assert!(
        subnets
            .split_whitespace()
            .any(|s| s.starts_with("fd") && s.ends_with("::/64")),
        "{subnets}"
    );
    d.ok(&["network", "rm", "ula"]);

    // Without the keys again: single-stack, and the old v6 address leaves the bridge.
    restart_with(&mut d, "{}");
    let cfg = bridge(&d, "{{.EnableIPv6}} {{len .IPAM.Config}}");
    assert_eq!(cfg, "false 1");
    let addrs = std::process::Command::new("ip")
        .args(["-6", "addr", "show", "dev", &d.bridge])
        .output()
        .unwrap();
    let addrs = String::from_utf8_lossy(&addrs.stdout).to_string();
    assert!(!addrs.contains(&format!("{prefix}::1")), "{addrs}");
    d.ok(&["run", "-d", "--name", "after", "busybox", "sleep", "60"]);
    assert_eq!(ip6_of(&d, "after"), "");
    d.ok(&["rm", "-f", "after"]);
}
