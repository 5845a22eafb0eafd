//! nftables rules in Berth's own table: masquerade for outbound traffic, isolation
//! between networks, and port publishing as DNAT in the kernel (no proxy in the data
//! path). The whole table is rendered from the daemon's state and replaced in one
//! atomic transaction, so applying is also reconciling: stale rules from a crash go.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use ipnet::IpNet;

use crate::error::{NetworkError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwNetwork {
    pub bridge: String,
    pub subnets: Vec<IpNet>,
    /// No traffic leaves or enters the network's bridge from elsewhere.
    pub internal: bool,
    /// Masquerade traffic leaving for other interfaces (`enable_ip_masquerade`).
    pub masquerade: bool,
    /// Containers on the network may talk to each other (`enable_icc`).
    pub icc: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn parse(s: &str) -> Option<Proto> {
        match s {
            "tcp" | "" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "sctp" => Some(Proto::Sctp),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// One published port: traffic to a local address (`host_ip`, or any) and `host_port`
/// goes to `ctr_ip:ctr_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwPort {
    pub proto: Proto,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub ctr_ip: IpAddr,
    pub ctr_port: u16,
}

#[derive(Debug, Clone, Default)]
pub struct Ruleset {
    pub table: String,
    pub networks: Vec<FwNetwork>,
    pub ports: Vec<FwPort>,
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

fn net_family(n: &IpNet) -> &'static str {
    family(&n.addr())
}

impl Ruleset {
    /// The nft script that replaces the table atomically.
    pub fn render(&self) -> String {
        let t = &self.table;
        let mut s = String::new();
        // `add` first so `delete` cannot fail on a missing table; all in one transaction.
        let _ = writeln!(s, "add table inet {t}\ndelete table inet {t}\ntable inet {t} {{");
        s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
        s.push_str("    ct state established,related accept\n");
        let bridges: Vec<&str> = self.networks.iter().map(|n| n.bridge.as_str()).collect();
        for n in &self.networks {
            let b = &n.bridge;
            if !n.icc {
                let _ = writeln!(s, "    iifname \"{b}\" oifname \"{b}\" drop");
            }
            if n.internal {
                let _ = writeln!(s, "    iifname \"{b}\" oifname != \"{b}\" drop");
                let _ = writeln!(s, "    oifname \"{b}\" iifname != \"{b}\" drop");
            }
            let others: Vec<String> = bridges
                .iter()
                .filter(|o| **o != b.as_str())
                .map(|o| format!("\"{o}\""))
                .collect();
            if !others.is_empty() {
                let _ = writeln!(s, "    iifname \"{b}\" oifname {{ {} }} drop", others.join(", "));
            }
        }
        s.push_str("  }\n");
        s.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n");
        s.push_str("    fib daddr type local jump ports\n  }\n");
        s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n");
        s.push_str("    fib daddr type local jump ports\n  }\n");
        s.push_str("  chain ports {\n");
        for p in &self.ports {
            let fam = family(&p.ctr_ip);
            let proto = p.proto.as_str();
            let dst = match p.ctr_ip {
                IpAddr::V4(ip) => format!("{ip}:{}", p.ctr_port),
                IpAddr::V6(ip) => format!("[{ip}]:{}", p.ctr_port),
            };
            let daddr = match p.host_ip {
                Some(h) => format!("{} daddr {h}", family(&h)),
                None => format!("meta nfproto ipv{}", if fam == "ip" { 4 } else { 6 }),
            };
            let _ = writeln!(s, "    {daddr} {proto} dport {} dnat {fam} to {dst}", p.host_port);
        }
        s.push_str("  }\n");
        s.push_str("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
        for n in &self.networks {
            let b = &n.bridge;
            for sub in &n.subnets {
                let f = net_family(sub);
                if n.masquerade && !n.internal {
                    let _ = writeln!(s, "    {f} saddr {sub} oifname != \"{b}\" masquerade");
                }
                // Hairpin: a container reaching a published port through a host address.
                let _ = writeln!(s, "    oifname \"{b}\" {f} saddr {sub} ct status dnat masquerade");
            }
            // The host reaching a published port through 127.0.0.1.
            if n.subnets.iter().any(|s| s.addr().is_ipv4()) {
                let _ = writeln!(s, "    oifname \"{b}\" ip saddr 127.0.0.0/8 masquerade");
            }
        }
        s.push_str("  }\n}\n");
        s
    }

    /// Replace the table in the kernel.
    pub fn apply(&self) -> Result<()> {
        nft(&self.render(), false)
    }

    /// Check the script without applying it (`nft -c`).
    pub fn check(&self) -> Result<()> {
        nft(&self.render(), true)
    }
}

/// The embedded DNS's address inside every container on a user network (Docker's).
pub const DNS_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 11);

/// Inside a container's network namespace: queries to 127.0.0.11:53 go to the daemon's
/// listener on `port` (the container's own programs keep port 53 for themselves, as
/// with Docker's resolver). Replies are mapped back by connection tracking.
pub fn dns_redirect_script(port: u16) -> String {
    let t = "berth_dns";
    let mut s = format!("add table ip {t}\ndelete table ip {t}\ntable ip {t} {{\n");
    s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n");
    for proto in ["udp", "tcp"] {
        let _ = writeln!(s, "    ip daddr {DNS_ADDR} {proto} dport 53 dnat to {DNS_ADDR}:{port}");
    }
    s.push_str("  }\n}\n");
    s
}

/// Run an nft script in the calling thread's network namespace.
pub(crate) fn run_script(script: &str) -> Result<()> {
    nft(script, false)
}

/// Remove Berth's table (missing is fine).
pub fn remove_table(table: &str) -> Result<()> {
    nft(&format!("add table inet {table}\ndelete table inet {table}\n"), false)
}

fn nft(script: &str, check_only: bool) -> Result<()> {
    let mut cmd = Command::new("nft");
    if check_only {
        cmd.arg("-c");
    }
    let mut child = cmd
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetworkError::Firewall(format!("run nft: {e} (is nftables installed?)")))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(script.as_bytes())
            .map_err(|e| NetworkError::Firewall(format!("write to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetworkError::Firewall(format!("wait for nft: {e}")))?;
    if !out.status.success() {
        return Err(NetworkError::Firewall(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

/// Comment marking the accept rules Berth adds to another tool's FORWARD chain.
fn exception_comment(table: &str) -> String {
    format!("berth:{table}")
}

/// Where another tool's `ip filter FORWARD` chain drops by policy (dockerd sets it so),
/// forwarded traffic of Berth's bridges would die there whatever Berth's own table says.
/// Keep narrowly scoped accept rules for exactly `bridges` in that chain (and none
/// once `bridges` is empty). Only rules carrying Berth's comment are ever touched.
pub fn sync_forward_exceptions(table: &str, bridges: &[String]) -> Result<()> {
    let Ok(out) = Command::new("nft")
        .args(["-a", "list", "chain", "ip", "filter", "FORWARD"])
        .output()
    else {
        return Ok(());
    };
    if !out.status.success() {
        return Ok(()); // no such chain: nothing drops our traffic there
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let drops = text.contains("policy drop");
    let comment = exception_comment(table);
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&format!("comment \"{comment}\"")))
        .collect();
    // Already as wanted (checked often): leave the chain alone.
    let want: std::collections::BTreeSet<String> = if drops {
        bridges
            .iter()
            .flat_map(|b| [format!("iifname \"{b}\""), format!("oifname \"{b}\"")])
            .collect()
    } else {
        Default::default()
    };
    let have: std::collections::BTreeSet<String> = ours
        .iter()
        .filter_map(|l| l.trim().split(" accept").next().map(String::from))
        .collect();
    if want == have && ours.len() == want.len() {
        return Ok(());
    }
    let mut script = String::new();
    for line in ours {
        if let Some(h) = line
            .rsplit("# handle ")
            .next()
            .and_then(|h| h.trim().parse::<u64>().ok())
        {
            let _ = writeln!(script, "delete rule ip filter FORWARD handle {h}");
        }
    }
    if drops {
        for b in bridges {
            let _ = writeln!(
                script,
                "insert rule ip filter FORWARD iifname \"{b}\" accept comment \"{comment}\""
            );
            let _ = writeln!(
                script,
                "insert rule ip filter FORWARD oifname \"{b}\" accept comment \"{comment}\""
            );
        }
    }
    if script.is_empty() {
        return Ok(());
    }
    nft(&script, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_redirect_is_checked_by_nft() {
        let s = dns_redirect_script(40123);
        assert!(
            s.contains("ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:40123"),
            "{s}"
        );
        assert!(
            s.contains("ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:40123"),
            "{s}"
        );
        nft(&s, true).unwrap();
    }

    fn sample() -> Ruleset {
        Ruleset {
            table: "berth_unit".into(),
            networks: vec![
                FwNetwork {
                    bridge: "berth0".into(),
                    subnets: vec!["172.18.0.0/16".parse().unwrap(), "fd00:1::/64".parse().unwrap()],
                    internal: false,
                    masquerade: true,
                    icc: true,
                },
                FwNetwork {
                    bridge: "br-int".into(),
                    subnets: vec!["10.5.0.0/24".parse().unwrap()],
                    internal: true,
                    masquerade: true,
                    icc: false,
                },
            ],
            ports: vec![
                FwPort {
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    ctr_ip: "172.18.0.2".parse().unwrap(),
                    ctr_port: 80,
                },
                FwPort {
                    proto: Proto::Udp,
                    host_ip: Some("127.0.0.1".parse().unwrap()),
                    host_port: 5353,
                    ctr_ip: "172.18.0.3".parse().unwrap(),
                    ctr_port: 53,
                },
                FwPort {
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    ctr_ip: "fd00:1::2".parse().unwrap(),
                    ctr_port: 80,
                },
            ],
        }
    }

    #[test]
    fn renders_the_rules_docker_users_expect() {
        let s = sample().render();
        for want in [
            "delete table inet berth_unit",
            "meta nfproto ipv4 tcp dport 8080 dnat ip to 172.18.0.2:80",
            "ip daddr 127.0.0.1 udp dport 5353 dnat ip to 172.18.0.3:53",
            "meta nfproto ipv6 tcp dport 8080 dnat ip6 to [fd00:1::2]:80",
            "ip saddr 172.18.0.0/16 oifname != \"berth0\" masquerade",
            "ip6 saddr fd00:1::/64 oifname != \"berth0\" masquerade",
            "iifname \"br-int\" oifname != \"br-int\" drop",
            "iifname \"br-int\" oifname \"br-int\" drop",
            "iifname \"berth0\" oifname { \"br-int\" } drop",
            "oifname \"berth0\" ip saddr 127.0.0.0/8 masquerade",
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
        // Internal networks are never masqueraded.
        assert!(
            !s.contains("ip saddr 10.5.0.0/24 oifname != \"br-int\" masquerade"),
            "{s}"
        );
    }

    #[test]
    fn nft_accepts_the_script() {
        // `nft -c` parses and checks against the kernel without changing anything.
        sample().check().unwrap();
        // Control: a broken script is refused with nft's message.
        let mut bad = sample();
        bad.networks[0].bridge = "bad\"name".into();
        assert!(bad.check().is_err());
    }
}
