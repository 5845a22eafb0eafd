//! Finding the daemon, API versions, usage errors, version/info/events, and the system
//! group, against a real berthd.

mod common;

use common::{Daemon, BERTH};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn finding_the_daemon_and_the_api_version() {
    let d = Daemon::start();
    let bogus = format!("unix://{}/nothing.sock", d.dir.path().display());
    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let mut c = d.command(BERTH, args);
        c.env_remove("BERTH_HOST").env_remove("DOCKER_HOST");
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let host = d.host();
    // BERTH_HOST first, then DOCKER_HOST: the first that answers is used.
    assert!(run(&[("BERTH_HOST", &host), ("DOCKER_HOST", &bogus)], &["ps"])
        .status
        .success());
    assert!(run(&[("BERTH_HOST", &bogus), ("DOCKER_HOST", &host)], &["ps"])
        .status
        .success());
    // -H is the user's choice: nothing else is tried.
    let o = run(&[("BERTH_HOST", &host)], &["-H", &bogus, "ps"]);
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    assert!(
        e.contains(&format!("Cannot connect to the Berth daemon at {bogus} (-H)")),
        "{e}"
    );
    assert!(e.contains("Start it with `berthd`"), "{e}");
    // run reports it as 125, like any failure of its own.
    assert_eq!(run(&[], &["-H", &bogus, "run", "busybox"]).status.code(), Some(125));
    // Nothing set: the default socket (when no daemon runs there, it is named).
    if !std::path::Path::new("/run/berth/berth.sock").exists() {
        let o = run(&[], &["ps"]);
        assert_eq!(o.status.code(), Some(1));
        let e = text(&o.stderr);
        assert!(
            e.contains("unix:///run/berth/berth.sock (the default)") && e.contains("berthd"),
            "{e}"
        );
    }
    let e = text(&run(&[], &["-H", "ssh://somewhere", "ps"]).stderr);
    assert!(e.contains("not supported"), "{e}");
    // Negotiated through /_ping, or pinned (no ping then).
    let o = run(&[("BERTH_HOST", &host)], &["-D", "ps"]);
    let e = text(&o.stderr);
    assert!(
        e.contains("HEAD /_ping") && e.contains("GET /v1.45/containers/json"),
        "{e}"
    );
    for var in ["BERTH_API_VERSION", "DOCKER_API_VERSION"] {
        let o = run(&[("BERTH_HOST", &host), (var, "1.44")], &["-D", "ps"]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let e = text(&o.stderr);
        assert!(
            !e.contains("_ping") && e.contains("GET /v1.44/containers/json"),
            "{var}: {e}"
        );
    }
    let o = run(&[("BERTH_HOST", &host), ("BERTH_API_VERSION", "1.99")], &["ps"]);
    assert!(
        text(&o.stderr).contains("client version 1.99 is too new"),
        "{}",
        text(&o.stderr)
    );
    // Usage: help and version succeed, mistakes are 125.
    assert!(d.berth(&["--help"]).status.success());
    assert!(d.berth(&["run", "--help"]).status.success());
    assert_eq!(d.ok(&["-v"]), format!("Berth version {}", env!("CARGO_PKG_VERSION")));
    d.fails(125, &["ps", "--bogus"]);
    d.fails(125, &["nosuchcommand"]);
    d.fails(125, &["rename", "onlyone"]);
}

#[test]
fn version_info_events_and_system() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let v = d.ok(&["version"]);
    assert!(
        v.starts_with("Client:\n Version:") && v.contains("Server: Berth Engine\n Berth:\n  Version:"),
        "{v}"
    );
    assert_eq!(
        d.ok(&["version", "--format", "{{.Server.Platform.Name}}"]),
        "Berth Engine"
    );
    assert_eq!(d.ok(&["version", "--format", "{{.Client.ApiVersion}}"]), "1.45");
    let i = d.ok(&["info"]);
    assert!(i.contains("Server Version: ") && i.contains(" Images: 1"), "{i}");
    assert_eq!(
        d.ok(&["system", "info", "--format", "{{.Images}} {{.ClientInfo.Context}}"]),
        "1 default"
    );
    // events: past ones with --since/--until, filtered, formatted.
    d.ok(&["run", "--rm", "--name", "ev", "busybox", "true"]);
    let acts = d.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "container=ev",
        "--format",
        "{{.Action}}",
    ]);
    let acts: Vec<&str> = acts.lines().collect();
    for a in ["create", "start", "die", "destroy"] {
        assert!(acts.contains(&a), "{a} missing from {acts:?}");
    }
    let line = d.ok(&[
        "system",
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "-f",
        "event=start",
    ]);
    let first = line.lines().next().unwrap_or("");
    assert!(
        first.contains(" container start ") && first.contains("name=ev"),
        "{line}"
    );
    assert!(first.as_bytes()[4] == b'-' && first.contains('T'), "{first}");
    let j: serde_json::Value = serde_json::from_str(
        d.ok(&[
            "events",
            "--since",
            "1m",
            "--until",
            "0s",
            "-f",
            "event=die",
            "--format",
            "json",
        ])
        .as_str(),
    )
    .unwrap();
    assert_eq!(j["Actor"]["Attributes"]["name"], "ev");
    // Prunes and df, where berthd serves them.
    // (Asking whether prune is served prunes: the stopped container comes after.)
    let prune_served = d.serves("POST", "/containers/prune");
    d.ok(&["create", "--name", "stopped", "busybox", "true"]);
    if prune_served {
        // Answering no to the prompt does nothing; -f does it.
        let o = d.berth_in(&["container", "prune"], b"n\n");
        assert!(o.status.success() && text(&o.stderr).contains("Are you sure you want to continue? [y/N]"));
        assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), "stopped");
        let out = d.ok(&["container", "prune", "-f"]);
        assert!(
            out.starts_with("Deleted Containers:\n") && out.contains("Total reclaimed space:"),
            "{out}"
        );
        assert_eq!(d.ok(&["ps", "-aq"]), "");
    } else {
        let e = d.fails(1, &["container", "prune", "-f"]);
        assert!(e.contains("page not found"), "{e}");
        // Answering no to the prompt does nothing.
        let o = d.berth_in(&["container", "prune"], b"n\n");
        assert!(o.status.success() && text(&o.stderr).contains("Are you sure you want to continue? [y/N]"));
    }
    if d.serves("GET", "/system/df") {
        let out = d.ok(&["system", "df"]);
        assert!(out.starts_with("TYPE") && out.contains("Images"), "{out}");
    } else {
        let e = d.fails(1, &["system", "df"]);
        assert!(e.contains("page not found"), "{e}");
    }
}
