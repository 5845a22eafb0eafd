//! docker pull / push / login through berthd against Debian's docker-registry on 127.0.0.1.

mod common;

use common::registry::Registry;
use common::Daemon;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn push_pull_round_trip_and_run() {
    let reg = Registry::start(None);
    let d = Daemon::start();
    d.assert_is_berth();
    d.import_busybox("busybox:latest");
    let name = format!("{}/test/bb:1", reg.addr);
    d.ok(&["tag", "busybox:latest", &name]);
    let out = d.ok(&["push", &name]);
    assert!(out.contains("digest: sha256:"), "{out}");
    d.ok(&["rmi", &name, "busybox:latest"]);
    assert_eq!(d.ok(&["images", "-q"]), "");
    let out = d.ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    // The pulled image has its repo digest, shown by --digests and inspect.
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap()
        .to_string();
    let listed = d.ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Tag}} {{.Digest}}",
    ]);
    assert_eq!(listed, format!("{}/test/bb 1 {digest}", reg.addr));
    let repo_digests = d.ok(&["inspect", "-f", "{{range .RepoDigests}}{{.}}{{end}}", &name]);
    assert_eq!(repo_digests, format!("{}/test/bb@{digest}", reg.addr));
    // An imported image has none (positive control: the pulled one above has).
    d.import_busybox("local:1");
    assert_eq!(d.ok(&["inspect", "-f", "{{len .RepoDigests}}", "local:1"]), "0");
    d.ok(&["rmi", "local:1"]);
    assert_eq!(d.ok(&["run", "--rm", &name, "echo", "pulled"]), "pulled");
    // Pulling again finds everything present.
    let again = d.ok(&["pull", &name]);
    assert!(again.contains("up to date"), "{again}");
    // `docker run` of a missing image pulls it (the CLI retries after the 404).
    d.ok(&["rmi", &name]);
    let o = d.docker(&["run", "--rm", &name, "echo", "auto-pulled"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("auto-pulled"));
    // A missing tag is a clear error.
    let o = d.docker(&["pull", &format!("{}/test/bb:nope", reg.addr)]);
    assert!(!o.status.success());
}

#[test]
fn login_and_authenticated_push() {
    let reg = Registry::start(Some(("berth", "s3cret")));
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let name = format!("{}/private/bb:1", reg.addr);
    d.ok(&["tag", "busybox:latest", &name]);
    // Anonymous push is refused; a wrong password is refused by login.
    let o = d.docker(&["push", &name]);
    assert!(!o.status.success(), "anonymous push must fail");
    let o = d.docker(&["login", &reg.addr, "-u", "berth", "-p", "wrong"]);
    assert!(!o.status.success(), "bad login must fail");
    // Positive control: the right password logs in, and push then works.
    let o = d.docker(&["login", &reg.addr, "-u", "berth", "-p", "s3cret"]);
    assert!(o.status.success(), "{}", stderr(&o));
    d.ok(&["push", &name]);
    d.ok(&["rmi", &name]);
    d.ok(&["pull", &name]);
    d.ok(&["logout", &reg.addr]);
    d.ok(&["rmi", &name]);
    let o = d.docker(&["pull", &name]);
    assert!(!o.status.success(), "pull after logout must fail");
}
