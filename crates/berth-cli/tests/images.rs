//! Image commands against a real berthd, and registry commands against Debian's
//! docker-registry on 127.0.0.1 (with htpasswd auth).

mod common;

use common::registry::Registry;
use common::Daemon;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn local_image_commands() {
    let d = Daemon::start();
    let tar = common::busybox_tar(d.dir.path());
    let tar = tar.to_str().unwrap();
    // import from a file and from stdin (with a message), then list.
    let id = d.ok(&["import", "-m", "from a file", tar, "busybox"]);
    assert!(id.starts_with("sha256:"), "{id}");
    let data = std::fs::read(tar).unwrap();
    let o = d.berth_in(&["import", "--change", "ENV A=1", "-", "piped:1"], &data);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = d.ok(&["images"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("REPOSITORY   TAG       IMAGE ID       CREATED   ") && lines[0].ends_with("   SIZE"),
        "{out}"
    );
    assert!(
        out.contains("busybox      latest    ") && out.contains("piped        1         "),
        "{out}"
    );
    assert!(out.contains("MB"), "{out}");
    assert_eq!(d.ok(&["images", "-q"]).lines().count(), 2);
    assert_eq!(
        d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}", "busybox"]),
        "busybox:latest"
    );
    assert_eq!(d.ok(&["image", "ls", "-q", "--filter", "reference=piped"]).len(), 12);
    let full = d.ok(&["images", "--no-trunc", "-q", "busybox"]);
    assert!(full.starts_with("sha256:") && full.len() == 71, "{full}");
    let j: serde_json::Value = serde_json::from_str(d.ok(&["images", "--format", "json", "busybox"]).as_str()).unwrap();
    assert_eq!(j["Tag"], "latest");
    assert_eq!(j["Digest"], "<none>");
    // tag, rmi (a name, then the last name removes the content).
    d.ok(&["tag", "busybox", "bb:2"]);
    assert_eq!(d.ok(&["images", "-q", "bb"]), d.ok(&["images", "-q", "busybox"]));
    assert_eq!(d.ok(&["rmi", "bb:2"]), "Untagged: bb:2");
    let e = d.fails(1, &["rmi", "nosuch:1"]);
    assert!(e.contains("No such image"), "{e}");
    // history.
    let h = d.ok(&["history", "busybox"]);
    assert!(h.starts_with("IMAGE          CREATED"), "{h}");
    assert!(h.contains("Imported from tarball") || h.contains("from a file"), "{h}");
    assert_eq!(d.ok(&["history", "-q", "busybox"]).len(), 12);
    // save -o and load -i round trip; save refuses nothing when redirected.
    let saved = d.dir.path().join("saved.tar");
    d.ok(&["save", "-o", saved.to_str().unwrap(), "busybox"]);
    assert!(std::fs::metadata(&saved).unwrap().len() > 100_000);
    d.ok(&["image", "rm", "busybox"]);
    assert_eq!(
        d.ok(&["load", "-i", saved.to_str().unwrap()]),
        "Loaded image: busybox:latest"
    );
    let o = d.berth_in(&["load"], &std::fs::read(&saved).unwrap());
    assert_eq!(text(&o.stdout).trim(), "Loaded image: busybox:latest");
    let o = d.berth(&["save", "busybox"]);
    assert!(o.stdout.len() > 100_000);
    // inspect of an image, through both spellings.
    assert_eq!(
        d.ok(&["image", "inspect", "-f", "{{.Architecture}}", "busybox"]),
        d.ok(&["inspect", "--type", "image", "-f", "{{.Architecture}}", "busybox"])
    );
    // An image a container uses is removed only by force.
    let id = d.ok(&["images", "-q", "busybox"]);
    d.ok(&["create", "--name", "user", "busybox", "true"]);
    let e = d.fails(1, &["rmi", &id]);
    assert!(e.contains("conflict") && e.contains("in use"), "{e}");
    assert!(d.ok(&["rmi", "-f", &id]).contains("Untagged: busybox:latest"));
    d.ok(&["rm", "user"]);
    // image prune: nothing dangling.
    let out = d.ok(&["image", "prune", "-f"]);
    assert!(out.ends_with("Total reclaimed space: 0B"), "{out}");
}

#[test]
fn registry_login_push_pull() {
    let reg = Registry::start(Some(("alice", "s3cret")));
    let d = Daemon::start();
    d.import_busybox("busybox");
    let repo = format!("{}/team/bb:1", reg.addr);
    d.ok(&["tag", "busybox", &repo]);
    // Without credentials the registry says no.
    let o = d.berth(&["push", &repo]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    // login: a wrong password fails; -p warns; --password-stdin works; both store auths.
    let e = d.fails(1, &["login", "-u", "alice", "-p", "wrong", &reg.addr]);
    assert!(e.contains("Error response from daemon"), "{e}");
    let o = d.berth(&["login", "-u", "alice", "-p", "s3cret", &reg.addr]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "Login Succeeded");
    assert!(text(&o.stderr).contains("--password-stdin"));
    let o = d.berth_in(&["login", "-u", "alice", "--password-stdin", &reg.addr], b"s3cret\n");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.dir.path().join("docker-config/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["auths"][&reg.addr]["auth"], "YWxpY2U6czNjcmV0");
    // push with progress, then pull it back after removing it.
    let out = d.ok(&["push", &repo]);
    assert!(
        out.contains(&format!("The push refers to repository [{}/team/bb]", reg.addr)),
        "{out}"
    );
    assert!(out.contains("digest: sha256:"), "{out}");
    d.ok(&["rmi", &repo]);
    let out = d.ok(&["pull", &repo]);
    assert!(out.ends_with(&repo), "{out}");
    assert!(out.contains("Digest: sha256:"), "{out}");
    assert!(d
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .contains(&repo));
    assert_eq!(d.ok(&["pull", "-q", &repo]), repo);
    // On a terminal, progress lines are redrawn in place.
    d.ok(&["rmi", &repo]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../berthd/tests/clients/pty_run.py");
    let o = d
        .command("python3", &[script, "33", "200", "", common::BERTH, "pull", &repo])
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("\x1b[2K\r") && out.contains("Status: ") && out.trim_end().ends_with(&repo),
        "{out:?}"
    );
    // run pulls what is missing, with progress on stderr.
    d.ok(&["rmi", &repo]);
    let o = d.berth(&["run", "--rm", &repo, "echo", "pulled"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "pulled\n");
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("Unable to find image '{repo}' locally")) && err.contains("Pulling from"),
        "{err}"
    );
    // A missing repository is an error from the registry.
    let e = d.fails(1, &["pull", &format!("{}/team/nosuch", reg.addr)]);
    assert!(e.contains("nosuch"), "{e}");
    // logout removes the stored login, and then pulls are refused.
    assert_eq!(
        d.ok(&["logout", &reg.addr]),
        format!("Removing login credentials for {}", reg.addr)
    );
    assert_eq!(d.ok(&["logout", &reg.addr]), format!("Not logged in to {}", reg.addr));
    d.ok(&["rmi", &repo]);
    d.fails(1, &["pull", &repo]);
}

/// With `credsStore` in config.json, logins go through `docker-credential-<name>` (its
/// store/get/erase protocol) and config.json keeps no secret; pushes use what the helper
/// returns; logout erases it.
#[test]
fn credential_helper_login_push_logout() {
    use std::os::unix::fs::PermissionsExt;
    let reg = Registry::start(Some(("alice", "s3cret")));
    let d = Daemon::start();
    d.import_busybox("busybox");
    let repo = format!("{}/team/helper:1", reg.addr);
    d.ok(&["tag", "busybox", &repo]);
    let bin = d.dir.path().join("helper-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-fake");
    std::fs::write(
        &helper,
        r#"#!/bin/sh
store="$(dirname "$0")/store.json"
case "$1" in
store) cat > "$store" ;;
get) read server
     if [ -f "$store" ] && grep -q "\"ServerURL\":\"$server\"" "$store"; then cat "$store"
     else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) read server; rm "$store" || exit 1 ;;
esac
"#,
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg_dir = d.dir.path().join("docker-config");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    std::fs::write(cfg_dir.join("config.json"), r#"{"credsStore": "fake"}"#).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let berth = |args: &[&str], input: Option<&[u8]>| {
        use std::io::Write;
        let mut c = d.command(common::BERTH, args);
        c.env("PATH", &path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut ch = c.spawn().unwrap();
        let mut sin = ch.stdin.take().unwrap();
        let _ = sin.write_all(input.unwrap_or(b""));
        drop(sin);
        ch.wait_with_output().unwrap()
    };
    // Control: nothing stored yet, the registry refuses the push.
    assert!(!berth(&["push", &repo], None).status.success());
    let o = berth(
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        Some(b"s3cret\n"),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stored = std::fs::read_to_string(bin.join("store.json")).unwrap();
    assert!(
        stored.contains("\"Username\":\"alice\"") && stored.contains("\"Secret\":\"s3cret\""),
        "{stored}"
    );
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(cfg_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        cfg["auths"][&reg.addr],
        serde_json::json!({}),
        "no secret in config.json: {cfg}"
    );
    assert_eq!(cfg["credsStore"], "fake");
    let o = berth(&["push", &repo], None);
    assert!(
        o.status.success(),
        "push with the helper's credentials: {}",
        text(&o.stderr)
    );
    let o = berth(&["logout", &reg.addr], None);
    assert_eq!(
        text(&o.stdout).trim(),
        format!("Removing login credentials for {}", reg.addr)
    );
    assert!(!bin.join("store.json").exists(), "erased from the helper");
    assert!(
        !berth(&["push", &repo], None).status.success(),
        "refused again after logout"
    );
}
