//! Namespaces and veth endpoints against the real kernel (root).

use std::net::IpAddr;
use std::process::Command;

use berth_network::sandbox::{self, EndpointPlan};

fn ping_from(ns: &std::path::Path, ip: &str) -> bool {
    Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["busybox", "ping", "-c1", "-W1", ip])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn namespace_with_endpoint_reaches_its_bridge() {
    let tag = std::process::id() % 100000;
    let br = format!("bt{tag}");
    let dir = tempfile::tempdir().unwrap();
    let ns = dir.path().join("ns");
    let third = (tag % 200) + 20;
    let gw = format!("10.213.{third}.1");
    sandbox::ensure_bridge(&br, &[format!("{gw}/24").parse().unwrap()], &[], None).unwrap();
    sandbox::create(&ns).unwrap();
    let ep = EndpointPlan {
        host_veth: format!("vt{tag}"),
        ifname: "eth0".into(),
        bridge: br.clone(),
        mac: [0x02, 0x42, 10, 213, third as u8, 2],
        addrs: vec![format!("10.213.{third}.2/24").parse().unwrap()],
        gateways: vec![gw.parse::<IpAddr>().unwrap()],
        mtu: None,
    };
    let r = sandbox::connect(&ns, &ep);
    let reach_gw = ping_from(&ns, &gw);
    // Negative: an address nobody holds on that subnet.
    let reach_none = ping_from(&ns, &format!("10.213.{third}.99"));
    let routes = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["ip", "route"])
        .output()
        .unwrap();
    // A second connect with the same names fails and leaves the first intact.
    let again = sandbox::connect(&ns, &ep);
    let still = ping_from(&ns, &gw);
    assert!(sandbox::delete_link(&ep.host_veth).unwrap());
    sandbox::destroy(&ns).unwrap();
    sandbox::delete_link(&br).unwrap();
    r.unwrap();
    assert!(reach_gw, "container side reaches the bridge");
    assert!(!reach_none);
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(routes.contains(&format!("default via {gw} dev eth0")), "{routes}");
    assert!(again.is_err());
    assert!(still);
    assert!(!ns.exists());
    assert!(!sandbox::link_exists(&br).unwrap());
}
