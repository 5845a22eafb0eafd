//! Network modes and per-container network options through berthd with the docker CLI:
//! container:<name> and host modes, hostname/hosts/DNS/MAC options, the embedded DNS
//! forwarding to its upstream, and inspect's aliases by API version.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::Daemon;

fn with_busybox(d: Daemon) -> Daemon {
    d.assert_is_berth();
    d.import_busybox("busybox:latest");
    d
}

#[test]
fn container_and_host_network_modes() {
    let d = with_busybox(Daemon::start());
    d.ok(&[
        "run", "-d", "--name", "owner", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc",
    ]);
    let ip = d.ok(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", "owner"]);
    // Sharing owner's namespace: its address, and its server on the shared loopback.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        "busybox",
        "sh",
        "-c",
        "ip addr; printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 2 127.0.0.1 80",
    ]);
    assert!(out.contains(&format!("inet {ip}/")), "{out}");
    let owner_id = d.ok(&["inspect", "--format", "{{.Id}}", "owner"]);
    assert!(out.contains(&owner_id[..12]), "{out}");
    // Control: a container of its own has another address and no server on its loopback.
    let out = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip addr; printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 1 127.0.0.1 80",
    ]);
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.contains(&format!("inet {ip}/")) && !out.contains(&owner_id[..12]),
        "{out}"
    );
    // Host mode sees the host's interfaces (the daemon's bridge among them); a bridge
    // container does not.
    let host = d.ok(&["run", "--rm", "--network", "host", "busybox", "ip", "link"]);
    assert!(host.contains(&d.bridge), "{host}");
    let own = d.ok(&["run", "--rm", "busybox", "ip", "link"]);
    assert!(!own.contains(&d.bridge), "{own}");
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.HostConfig.NetworkMode}}", "owner"]),
        "bridge"
    );
    // Publishing ports with container: mode is refused, as Docker does.
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        "-p",
        "8000:80",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
}

#[test]
fn hostname_hosts_dns_and_mac_options() {
    let d = with_busybox(Daemon::start());
    let out = d.ok(&[
        "run",
        "--rm",
        "--hostname",
        "h1",
        "--add-host",
        "foo:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "--dns",
        "10.9.9.9",
        "--dns-search",
        "example.test",
        "--dns-option",
        "ndots:3",
        "--mac-address",
        "02:42:aa:bb:cc:dd",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /etc/hosts /etc/resolv.conf; ip link show eth0",
    ]);
    assert!(out.starts_with("h1\n"), "{out}");
    assert!(out.contains("10.1.2.3\tfoo"), "{out}");
    assert!(out.contains(&format!("{}\tgw", d.gateway)), "{out}");
    assert!(out.contains("\th1\n"), "its own address names it: {out}");
    assert!(out.contains("nameserver 10.9.9.9"), "{out}");
    assert!(out.contains("search example.test"), "{out}");
    assert!(out.contains("options ndots:3"), "{out}");
    assert!(out.contains("link/ether 02:42:aa:bb:cc:dd"), "{out}");
    // Control: without the options, none of it.
    let plain = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf; ip link show eth0",
    ]);
    assert!(!plain.contains("foo") && !plain.contains("10.9.9.9") && !plain.contains("02:42:aa:bb:cc:dd"));
    // net.* sysctls in the container's own (prepared) network namespace; the host's
    // stays as it was, and with the host's namespace they are refused (control).
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/conf/all/forwarding").unwrap();
    let want = if host_before.trim() == "1" { "0" } else { "1" };
    let set = format!("net.ipv4.conf.all.forwarding={want}");
    let out = d.ok(&[
        "run",
        "--rm",
        "--sysctl",
        &set,
        "busybox",
        "cat",
        "/proc/sys/net/ipv4/conf/all/forwarding",
    ]);
    assert_eq!(out, want);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/conf/all/forwarding").unwrap(),
        host_before
    );
    let o = d.docker(&["run", "--rm", "--network", "host", "--sysctl", &set, "busybox", "true"]);
    assert!(!o.status.success(), "a net sysctl in the host's namespace");
}

/// A DNS server on loopback answering every A question with 10.77.0.1 and counting.
fn fake_upstream() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    fake_upstream_at("127.0.0.1:0", 77)
}

/// The same on `addr`, answering 10.`net`.0.1.
fn fake_upstream_at(addr: &str, net: u8) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let sock = UdpSocket::bind(addr).unwrap();
    let port = sock.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // Header: same id, response + recursion available, one question, one answer.
            let mut r = buf[..n].to_vec();
            r[2] = 0x81;
            r[3] = 0x80;
            r[6..8].copy_from_slice(&[0, 1]);
            r[8..12].copy_from_slice(&[0, 0, 0, 0]);
            let qtype = u16::from_be_bytes([r[n - 4], r[n - 3]]);
            if qtype == 1 {
                r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, net, 0, 1]);
            } else {
                r[7] = 0;
            }
            let _ = sock.send_to(&r, from);
        }
    });
    (port, count)
}

/// A `sleep 300` container named `name` on network `net`; its address there.
fn sleeper_on(d: &Daemon, name: &str, net: &str) -> String {
    d.ok(&["run", "-d", "--name", name, "--network", net, "busybox", "sleep", "300"]);
    d.ok(&[
        "inspect",
        "--format",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        name,
    ])
}

#[test]
fn embedded_dns_forwards_other_names_upstream() {
    let (port, asked) = fake_upstream();
    let d = with_busybox(Daemon::start_with_config(&format!(
        r#"{{"embedded-dns-upstreams": ["127.0.0.1:{port}"]}}"#
    )));
    d.ok(&["network", "create", "fwd"]);
    let ip = sleeper_on(&d, "local1", "fwd");
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "fwd",
        "busybox",
        "nslookup",
        "-type=A",
        "elsewhere.example",
    ]);
    assert!(out.contains("10.77.0.1"), "{out}");
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    // Names of the network are answered locally, not forwarded.
    let before = asked.load(std::sync::atomic::Ordering::SeqCst);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "fwd",
        "busybox",
        "nslookup",
        "-type=A",
        "local1",
    ]);
    assert!(out.contains(&ip) && !out.contains("10.77.0.1"), "{out}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), before);
    // An internal network's DNS forwards nothing (no way out), but knows its own names.
    d.ok(&["network", "create", "--internal", "closed"]);
    sleeper_on(&d, "inside", "closed");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "closed",
        "busybox",
        "nslookup",
        "-type=A",
        "elsewhere.example",
    ]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("10.77.0.1"), "{o:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), before);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "closed",
        "busybox",
        "nslookup",
        "-type=A",
        "inside",
    ]);
    assert!(out.contains("Address:") && out.contains("inside"), "{out}");
}

/// As Docker's resolver: the embedded DNS answers at 127.0.0.11 inside each container
/// on a user network, from the daemon (port 53 stays the container's own: a server of
/// its own binds it), forwards to the container's `--dns` servers when it has them,
/// and is served again by a restarted daemon.
#[test]
fn embedded_dns_at_127_0_0_11_in_each_container() {
    let (port, _) = fake_upstream();
    let tag = (std::process::id() % 250) as u8 + 2;
    let own_dns = format!("127.78.{tag}.1");
    let (_, own_asked) = fake_upstream_at(&format!("{own_dns}:53"), 78);
    let mut d = with_busybox(Daemon::start_with_config(&format!(
        r#"{{"embedded-dns-upstreams": ["127.0.0.1:{port}"]}}"#
    )));
    d.ok(&["network", "create", "dns11"]);
    let ip = sleeper_on(&d, "srv", "dns11");
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "dns11",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup -type=A srv; nslookup -type=A elsewhere.example",
    ]);
    assert!(out.contains("nameserver 127.0.0.11\n"), "{out}");
    assert!(out.contains(&format!("Address: {ip}")), "{out}");
    assert!(out.contains("Address: 10.77.0.1"), "daemon's upstream: {out}");
    // Port 53 stays the container's: in srv's namespace a server of its own binds
    // 0.0.0.0:53 (UDP and TCP) next to the daemon's listener, which is there (control:
    // its address and port are taken).
    let pid = d.ok(&["inspect", "--format", "{{.State.Pid}}", "srv"]);
    let (own53, ours) = std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let own53 = UdpSocket::bind("0.0.0.0:53").is_ok() && std::net::TcpListener::bind("0.0.0.0:53").is_ok();
        let tcp = std::fs::read_to_string("/proc/thread-self/net/tcp").unwrap();
        // 127.0.0.11 in /proc/net/tcp's little-endian hex, listening (state 0A).
        let port = tcp
            .lines()
            .find(|l| l.contains(" 0B00007F:") && l.split_whitespace().nth(3) == Some("0A"))
            .and_then(|l| {
                l.split_whitespace()
                    .nth(1)?
                    .split(':')
                    .nth(1)
                    .map(|p| u16::from_str_radix(p, 16).unwrap())
            });
        let ours = port.is_some_and(|p| std::net::TcpListener::bind(("127.0.0.11", p)).is_err());
        (own53, ours)
    })
    .join()
    .unwrap();
    assert!(ours, "the daemon's listener inside the container");
    assert!(own53, "0.0.0.0:53 free for the container's own server");
    // --dns: unknown names go to the container's own server, the network's names
    // are still answered (control: the daemon's upstream answered above).
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "dns11",
        "--dns",
        &own_dns,
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup -type=A elsewhere.example; nslookup -type=A srv",
    ]);
    assert!(out.contains("nameserver 127.0.0.11\n"), "{out}");
    assert!(
        out.contains("Address: 10.78.0.1") && !out.contains("10.77.0.1"),
        "{out}"
    );
    assert!(out.contains(&format!("Address: {ip}")), "{out}");
    assert!(own_asked.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    // The default bridge has no embedded DNS (Docker's): the host's resolvers.
    let plain = d.ok(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(!plain.contains("127.0.0.11"), "{plain}");
    // A restarted daemon serves the running container again.
    d.kill9();
    d.restart();
    let out = d.ok(&["exec", "srv", "nslookup", "-type=A", "srv"]);
    assert!(out.contains(&format!("Address: {ip}")), "{out}");
    d.ok(&["rm", "-f", "srv"]);
}

#[test]
fn aliases_in_inspect_follow_the_api_version() {
    let d = with_busybox(Daemon::start());
    d.ok(&["network", "create", "al"]);
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "aliased",
        "--network",
        "al",
        "--network-alias",
        "db",
        "busybox",
        "sleep",
        "300",
    ]);
    let (_, new) = d.http("GET", "/v1.45/containers/aliased/json", "");
    let new: serde_json::Value = serde_json::from_str(&new).unwrap();
    let ep = &new["NetworkSettings"]["Networks"]["al"];
    assert_eq!(ep["Aliases"], serde_json::json!(["db"]));
    assert_eq!(ep["DNSNames"], serde_json::json!(["aliased", &id[..12], "db"]));
    let (_, old) = d.http("GET", "/v1.43/containers/aliased/json", "");
    let old: serde_json::Value = serde_json::from_str(&old).unwrap();
    let ep = &old["NetworkSettings"]["Networks"]["al"];
    assert_eq!(ep["Aliases"], serde_json::json!([&id[..12], "db"]));
    assert!(ep.get("DNSNames").is_none());
}

#[test]
fn links_on_the_default_bridge_and_dual_stack_subnets() {
    let d = with_busybox(Daemon::start());
    d.ok(&[
        "run",
        "-d",
        "--name",
        "target1",
        "--hostname",
        "tgt",
        "busybox",
        "sleep",
        "300",
    ]);
    let ip = d.ok(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", "target1"]);
    // --link on the default bridge: an /etc/hosts entry (alias, hostname, name).
    let hosts = d.ok(&["run", "--rm", "--link", "target1:db", "busybox", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip}\tdb tgt target1")), "{hosts}");
    let plain = d.ok(&["run", "--rm", "busybox", "cat", "/etc/hosts"]);
    assert!(!plain.contains("target1"), "{plain}");
    // Two subnets given (--subnet twice): one address of each family.
    let tag = std::process::id() % 0xfff0 + 7;
    let v6 = format!("fd00:b8:{tag:x}::/64");
    let v4 = format!("10.{}.{}.0/24", 200 + (tag % 50), tag % 250);
    d.ok(&["network", "create", "--ipv6", "--subnet", &v4, "--subnet", &v6, "dual"]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "dual",
        "busybox",
        "ip",
        "addr",
        "show",
        "eth0",
    ]);
    let p4 = v4.trim_end_matches("0/24");
    let p6 = v6.trim_end_matches("/64");
    assert!(out.contains(&format!("inet {p4}")), "{out}");
    assert!(out.contains(&format!("inet6 {p6}")), "{out}");
}

#[test]
fn ip_range_mtu_and_bridge_name_options() {
    let d = with_busybox(Daemon::start());
    let tag = std::process::id() % 200 + 20;
    let br = format!("bo{}x", std::process::id() % 100000);
    d.ok(&[
        "network",
        "create",
        "--subnet",
        &format!("10.252.{tag}.0/24"),
        "--ip-range",
        &format!("10.252.{tag}.128/25"),
        "-o",
        "com.docker.network.driver.mtu=1400",
        "-o",
        &format!("com.docker.network.bridge.name={br}"),
        "ranged",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "ranged",
        "busybox",
        "ip",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(
        out.contains(&format!("inet 10.252.{tag}.129/24")),
        "dynamic addresses from the range: {out}"
    );
    assert!(out.contains("mtu 1400"), "{out}");
    let link = std::process::Command::new("ip")
        .args(["link", "show", &br])
        .output()
        .unwrap();
    assert!(link.status.success(), "the bridge has the name asked for");
    // Static addresses may come from outside the range but inside the subnet.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "ranged",
        "--ip",
        &format!("10.252.{tag}.5"),
        "busybox",
        "ip",
        "addr",
    ]);
    assert!(out.contains(&format!("inet 10.252.{tag}.5/24")), "{out}");
    let o = d.docker(&["network", "create", "-o", "com.docker.network.driver.mtu=12", "badmtu"]);
    assert!(!o.status.success());
    d.ok(&["network", "rm", "ranged"]);
    let link = std::process::Command::new("ip")
        .args(["link", "show", &br])
        .output()
        .unwrap();
    assert!(!link.status.success(), "its bridge goes with it");
}

#[test]
fn no_default_bridge_and_no_firewall() {
    let d = with_busybox(Daemon::start_with_config(r#"{"bridge": "none", "iptables": false}"#));
    // No default bridge network; containers get loopback only.
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls.lines().collect::<Vec<_>>(), ["host", "none"]);
    let addrs = d.ok(&["run", "--rm", "busybox", "ip", "addr"]);
    assert!(addrs.contains("127.0.0.1") && !addrs.contains("eth0"), "{addrs}");
    // No firewall: no table, and publishing is refused with a reason.
    let t = std::process::Command::new("nft")
        .args(["list", "table", "inet", &d.table])
        .output()
        .unwrap();
    assert!(!t.status.success(), "no nftables table without the firewall");
    let o = d.docker(&["run", "--rm", "-p", "8000:80", "busybox", "true"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("firewall"), "{o:?}");
    // Control: a user network still connects containers to each other.
    d.ok(&["network", "create", "plain"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "p1",
        "--network",
        "plain",
        "busybox",
        "sleep",
        "300",
    ]);
    let ip = d.ok(&[
        "inspect",
        "--format",
        "{{(index .NetworkSettings.Networks \"plain\").IPAddress}}",
        "p1",
    ]);
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "plain",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        &ip,
    ]);
}

/// Docker's `ip-masq: false` turns masquerading off for the default bridge only; user
/// networks keep theirs (control). Docker's `userland-proxy` keys load (Berth forwards
/// published ports in the kernel either way).
#[test]
fn ip_masq_off_for_the_default_bridge() {
    let d = Daemon::start_with_config(
        r#"{"ip-masq": false, "userland-proxy": false, "userland-proxy-path": "/usr/bin/docker-proxy"}"#,
    );
    let opt = d.ok(&[
        "network",
        "inspect",
        "--format",
        "{{index .Options \"com.docker.network.bridge.enable_ip_masquerade\"}}",
        "bridge",
    ]);
    assert_eq!(opt, "false");
    let subnet = |n: &str| d.ok(&["network", "inspect", "--format", "{{(index .IPAM.Config 0).Subnet}}", n]);
    d.ok(&["network", "create", "masq"]);
    let table = std::process::Command::new("nft")
        .args(["list", "table", "inet", &d.table])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    let rule = |s: &str| format!("ip saddr {s} oifname != ");
    assert!(
        table.contains(&rule(&subnet("masq"))),
        "control: a user network masquerades\n{table}"
    );
    assert!(
        !table.contains(&rule(&subnet("bridge"))),
        "default bridge masqueraded\n{table}"
    );
}
