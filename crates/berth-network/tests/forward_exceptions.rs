//! Accept rules in another tool's FORWARD chain (dockerd's policy drop), against real
//! nftables in a private network namespace, so the host's own rules are never touched.

use std::process::{Command, Stdio};

use berth_network::firewall::sync_forward_exceptions;

fn nft(script: &str) {
    let mut c = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success(), "nft: {script}");
}

fn forward_chain() -> String {
    let o = Command::new("nft")
        .args(["list", "chain", "ip", "filter", "FORWARD"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn accept_rules_only_where_forward_drops() {
    let mut holder = Command::new("unshare").args(["--net", "sleep", "60"]).spawn().unwrap();
    let pid = holder.id();
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    while std::fs::read_link(format!("/proc/{pid}/ns/net")).ok().as_ref() == Some(&host_ns) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // nft runs as a child of this thread, in the namespace the thread entered.
    let r = std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let t = "berth_fwtest";
        // Control: a FORWARD chain that accepts by policy gets nothing.
        nft("table ip filter {\n chain FORWARD { type filter hook forward priority 0; policy accept; iifname \"mine\" accept; }\n}\n");
        sync_forward_exceptions(t, &["brA".into()]).unwrap();
        assert!(!forward_chain().contains("berth:"), "{}", forward_chain());
        // dockerd's way: policy drop.
        nft("chain ip filter FORWARD { policy drop; }\n");
        sync_forward_exceptions(t, &["brA".into()]).unwrap();
        let c = forward_chain();
        assert!(c.contains("iifname \"brA\" accept comment \"berth:berth_fwtest\""), "{c}");
        assert!(c.contains("oifname \"brA\" accept comment \"berth:berth_fwtest\""), "{c}");
        // Again with one more bridge: no duplicates.
        sync_forward_exceptions(t, &["brA".into(), "brB".into()]).unwrap();
        let c = forward_chain();
        assert_eq!(c.matches("berth:berth_fwtest").count(), 4, "{c}");
        // Checked again with nothing changed: the rules stay as they are (same handles).
        let handles = |()| {
            let o = Command::new("nft").args(["-a", "list", "chain", "ip", "filter", "FORWARD"]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).to_string()
        };
        let before = handles(());
        sync_forward_exceptions(t, &["brB".into(), "brA".into()]).unwrap();
        assert_eq!(handles(()), before);
        // Another daemon's rules and the tool's own rule are left alone.
        sync_forward_exceptions("other_table", &["brX".into()]).unwrap();
        sync_forward_exceptions(t, &[]).unwrap();
        let c = forward_chain();
        assert_eq!(c.matches("berth:berth_fwtest").count(), 0, "{c}");
        assert_eq!(c.matches("berth:other_table").count(), 2, "{c}");
        assert!(c.contains("iifname \"mine\" accept"), "{c}");
        assert!(c.contains("policy drop"), "{c}");
    })
    .join();
    let _ = holder.kill();
    let _ = holder.wait();
    r.unwrap();
}
