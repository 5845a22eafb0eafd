//! Debian's docker.io 20.10 client (/usr/bin/docker, API 1.41) against berthd: the same
//! everyday scenarios at the older API version.

mod common;

use common::registry::Registry;
use common::Daemon;

const OLD: &str = "/usr/bin/docker";

fn old(d: &Daemon, args: &[&str]) -> String {
    let o = d.cli(OLD, args);
    assert!(
        o.status.success(),
        "docker 20.10 {args:?}: {}\n{}\n--- berthd log:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        d.log()
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn docker_20_10_client_scenarios() {
    assert!(
        std::path::Path::new(OLD).exists(),
        "install docker.io (scripts/setup.sh)"
    );
    let d = Daemon::start();
    d.assert_is_berth();
    assert_eq!(old(&d, &["version", "--format", "{{.Client.APIVersion}}"]), "1.41");
    d.import_busybox("busybox:latest");
    old(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "w1",
            "busybox",
            "sh",
            "-c",
            "for i in 1 2 3; do echo line$i; sleep 0.2; done",
        ],
    );
    // logs -f follows until the container exits.
    assert_eq!(old(&d, &["logs", "-f", "w1"]), "line1\nline2\nline3");
    assert_eq!(old(&d, &["inspect", "-f", "{{.State.ExitCode}}", "w1"]), "0");
    old(&d, &["run", "-d", "--name", "w2", "busybox", "sleep", "300"]);
    assert!(old(&d, &["ps"]).contains("w2"));
    assert_eq!(old(&d, &["exec", "w2", "echo", "hi"]), "hi");
    let o = d.cli(OLD, &["exec", "w2", "sh", "-c", "exit 9"]);
    assert_eq!(o.status.code(), Some(9));
    old(&d, &["kill", "w2"]);
    assert_eq!(old(&d, &["wait", "w2"]), "137");
    old(&d, &["rm", "w1", "w2"]);
    // Foreground with --rm, and the exit code.
    let o = d.cli(OLD, &["run", "--rm", "busybox", "sh", "-c", "echo fg; exit 2"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "fg");
    // Events.
    let ev = old(
        &d,
        &["events", "--since", "0", "--until", "+0s", "--format", "{{.Action}}"],
    );
    assert!(
        ev.lines().any(|l| l == "create") && ev.lines().any(|l| l == "destroy"),
        "{ev}"
    );
    // save | load.
    let tar = d.dir.path().join("old.tar");
    old(&d, &["save", "-o", tar.to_str().unwrap(), "busybox:latest"]);
    old(&d, &["rmi", "busybox:latest"]);
    assert!(old(&d, &["load", "-i", tar.to_str().unwrap()]).contains("busybox:latest"));
    // push / pull against a local registry.
    let reg = Registry::start(None);
    let name = format!("{}/old/bb:1", reg.addr);
    old(&d, &["tag", "busybox", &name]);
    old(&d, &["push", &name]);
    old(&d, &["rmi", &name]);
    old(&d, &["pull", &name]);
    assert_eq!(old(&d, &["run", "--rm", &name, "echo", "ok"]), "ok");
}
