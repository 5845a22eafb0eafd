//! Container commands against a real berthd: lifecycle, ps and its formats, logs, exec,
//! start -a, attach, inspect, and the `container` group's names for them.

mod common;

use common::{Daemon, BERTH};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn lifecycle() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let id = d.ok(&["create", "--name", "c1", "busybox", "sleep", "300"]);
    assert_eq!(id.len(), 64);
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Status}}", "c1"]), "created");
    assert_eq!(d.ok(&["start", "c1"]), "c1");
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Running}}", "c1"]), "true");
    assert_eq!(d.ok(&["pause", "c1"]), "c1");
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Paused}}", "c1"]), "true");
    assert_eq!(d.ok(&["container", "unpause", "c1"]), "c1");
    assert_eq!(d.ok(&["rename", "c1", "c2"]), "");
    assert_eq!(d.ok(&["inspect", "-f", "{{.Name}}", "c2"]), "/c2");
    assert_eq!(d.ok(&["restart", "-t", "1", "c2"]), "c2");
    assert_eq!(d.ok(&["kill", "-s", "KILL", "c2"]), "c2");
    assert_eq!(d.ok(&["wait", "c2"]), "137");
    assert_eq!(d.ok(&["start", "c2"]), "c2");
    assert_eq!(d.ok(&["stop", "-t", "1", "c2"]), "c2");
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Status}}", "c2"]), "exited");
    // Errors name the object; a failure among several still does the rest, exit 1.
    let e = d.fails(1, &["stop", "nosuch", "c2"]);
    assert!(e.contains("No such container: nosuch"), "{e}");
    assert_eq!(d.ok(&["rm", "-v", "c2"]), "c2");
    d.ok(&["run", "-d", "--name", "busy", "busybox", "sleep", "300"]);
    let e = d.fails(1, &["rm", "busy"]);
    assert!(e.contains("Error response from daemon"), "{e}");
    assert_eq!(d.ok(&["container", "rm", "-f", "busy"]), "busy");
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    // start -a: output and the container's exit code.
    d.ok(&["create", "--name", "sa", "busybox", "sh", "-c", "echo started; exit 4"]);
    let o = d.berth(&["start", "-a", "sa"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "started\n");
    // start -ai feeds stdin.
    d.ok(&["create", "-i", "--name", "sai", "busybox", "cat"]);
    let o = d.berth_in(&["start", "-ai", "sai"], b"fed\n");
    assert_eq!(text(&o.stdout), "fed\n", "{}", text(&o.stderr));
    // attach to a running container: its output, then its exit code.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "at",
        "busybox",
        "sh",
        "-c",
        "sleep 1; echo late; exit 6",
    ]);
    let o = d.berth(&["attach", "at"]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "late\n");
    let e = d.fails(1, &["attach", "at"]);
    assert!(e.contains("You cannot attach to a stopped container"), "{e}");
    // port: what NetworkSettings.Ports lists.
    let hp = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "pp",
        "-p",
        &format!("{hp}:80"),
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(d.ok(&["port", "pp"]), format!("80/tcp -> 0.0.0.0:{hp}"));
    assert_eq!(d.ok(&["port", "pp", "80"]), format!("0.0.0.0:{hp}"));
    let e = d.fails(1, &["port", "pp", "81"]);
    assert!(e.contains("No public port '81/tcp' published for pp"), "{e}");
}

#[test]
fn ps_tables_and_formats() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let up = d.ok(&[
        "run", "-d", "--name", "up1", "-l", "role=web", "busybox", "sleep", "300",
    ]);
    assert_eq!(
        d.berth(&["run", "--name", "done1", "busybox", "sh", "-c", "exit 2"])
            .status
            .code(),
        Some(2)
    );
    let out = d.ok(&["ps"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("CONTAINER ID   IMAGE     COMMAND       CREATED")
            && lines[0].contains("   STATUS   ")
            && lines[0].ends_with("PORTS     NAMES"),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&format!("{}   busybox   \"sleep 300\"   ", &up[..12])),
        "{out}"
    );
    assert!(lines[1].contains("Up ") && lines[1].ends_with("up1"), "{out}");
    // -a, -q, -n, filters.
    assert_eq!(d.ok(&["ps", "-aq"]).lines().count(), 2);
    assert_eq!(d.ok(&["ps", "-q"]), &up[..12]);
    assert_eq!(d.ok(&["ps", "-q", "--no-trunc"]), up);
    assert_eq!(d.ok(&["ps", "-n", "1", "--format", "{{.Names}}"]), "done1");
    assert_eq!(
        d.ok(&[
            "ps",
            "-a",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}} {{.Status}}"
        ])
        .split(" (")
        .next(),
        Some("done1 Exited")
    );
    assert_eq!(d.ok(&["ps", "-a", "-f", "name=up1", "--format", "{{.Names}}"]), "up1");
    assert_eq!(d.ok(&["ps", "-a", "-f", "label=role=web", "-q"]), &up[..12]);
    // Formats: fields, methods, functions, json, table with headers.
    assert_eq!(
        d.ok(&[
            "ps",
            "--format",
            "{{.Names}}|{{.Label \"role\"}}|{{.Labels}}|{{.State}}"
        ]),
        "up1|web|role=web|running"
    );
    assert_eq!(
        d.ok(&["ps", "--format", "{{.Names | upper}} {{json .Names}}"]),
        "UP1 \"up1\""
    );
    let j: serde_json::Value = serde_json::from_str(&d.ok(&["ps", "--format", "json"])).unwrap();
    assert_eq!(j["Names"], "up1");
    assert_eq!(j["Command"], "\"sleep 300\"");
    assert!(j.get("__labels").is_none(), "{j}");
    let t = d.ok(&["ps", "-a", "--format", "table {{.Names}}\\t{{.Image}}"]);
    assert_eq!(t.lines().next(), Some("NAMES     IMAGE"));
    assert_eq!(t.lines().count(), 3, "{t}");
    let s = d.ok(&["ps", "-s"]);
    assert!(s.lines().next().unwrap_or("").ends_with("SIZE"), "{s}");
    // Docker's "writable (virtual total)", now that berthd reports both sizes.
    let row = s.lines().nth(1).unwrap_or("");
    assert!(row.contains("B (virtual ") && row.ends_with("B)"), "{s}");
    let e = d.fails(1, &["ps", "--format", "{{.Nope}}"]);
    assert!(e.contains("can't evaluate field Nope"), "{e}");
    let e = d.fails(125, &["ps", "--format", "{{.ID"]);
    assert!(e.contains("unclosed action"), "{e}");
    // The group's names for ps.
    assert_eq!(d.ok(&["container", "ls", "-q"]), &up[..12]);
    assert_eq!(d.ok(&["container", "list", "-q"]), &up[..12]);
    assert_eq!(d.ok(&["container", "ps", "-q"]), &up[..12]);
}

#[test]
fn logs_exec_and_inspect() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "lg",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two >&2; sleep 0.3; echo three; sleep 300",
    ]);
    // Wait for the output to be logged.
    for _ in 0..100 {
        if d.ok(&["logs", "lg"]).contains("three") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = d.berth(&["logs", "lg"]);
    assert_eq!(text(&o.stdout), "one\nthree\n");
    assert_eq!(text(&o.stderr), "two\n");
    assert_eq!(d.ok(&["logs", "--tail", "1", "lg"]), "three");
    let ts = d.ok(&["logs", "-t", "--tail", "1", "lg"]);
    assert!(
        ts.ends_with(" three") && ts.starts_with("20") && ts.contains('T'),
        "{ts}"
    );
    assert_eq!(d.ok(&["logs", "--since", "1h", "--tail", "1", "lg"]), "three");
    assert_eq!(d.ok(&["logs", "--until", "2000-01-01T00:00:00Z", "lg"]), "");
    // logs -f ends when the container does.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "fo",
        "busybox",
        "sh",
        "-c",
        "echo a; sleep 1; echo b",
    ]);
    assert_eq!(d.ok(&["logs", "-f", "fo"]), "a\nb");
    // exec: options, exit code, stdin, detached.
    assert_eq!(
        d.ok(&[
            "exec",
            "-e",
            "A=1",
            "-u",
            "nobody",
            "-w",
            "/tmp",
            "lg",
            "sh",
            "-c",
            "echo $A; pwd; id -u"
        ]),
        "1\n/tmp\n65534"
    );
    let o = d.berth(&["exec", "lg", "sh", "-c", "echo x; exit 9"]);
    assert_eq!(o.status.code(), Some(9));
    assert_eq!(text(&o.stdout), "x\n");
    let o = d.berth_in(&["exec", "-i", "lg", "cat"], b"piped\n");
    assert_eq!(text(&o.stdout), "piped\n");
    assert_eq!(d.ok(&["exec", "-d", "lg", "sh", "-c", "echo d > /tmp/d"]), "");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(d.ok(&["exec", "lg", "cat", "/tmp/d"]), "d");
    let o = d.berth(&["exec", "lg", "/nonexist"]);
    assert_eq!(o.status.code(), Some(126), "{}", text(&o.stderr));
    assert_eq!(d.ok(&["exec", "--privileged", "lg", "true"]), "");
    // inspect: containers and images, -f, --type, several at once, errors.
    let j: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "lg", "busybox"])).unwrap();
    assert_eq!(j.as_array().map(|a| a.len()), Some(2));
    assert_eq!(j[0]["Name"], "/lg");
    assert!(j[1]["RepoTags"].to_string().contains("busybox"), "{}", j[1]);
    let raw = d.ok(&["inspect", "lg"]);
    assert!(raw.starts_with("[\n    {\n        \""), "{raw}");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Config.Cmd}} {{range .Config.Cmd}}<{{.}}>{{end}} {{len .Config.Cmd}}", "lg"]),
        "[sh -c echo one; echo two >&2; sleep 0.3; echo three; sleep 300] <sh><-c><echo one; echo two >&2; sleep 0.3; echo three; sleep 300> 3"
    );
    assert_eq!(
        d.ok(&["inspect", "--type", "image", "-f", "{{.Os}}", "busybox"]),
        "linux"
    );
    assert_eq!(
        d.ok(&["container", "inspect", "-f", "{{if .State.Running}}up{{end}}", "lg"]),
        "up"
    );
    let o = d.berth(&["inspect", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stdout), "[]\n");
    assert!(text(&o.stderr).contains("No such object: nosuch"));
    let e = d.fails(1, &["container", "inspect", "busybox"]);
    assert!(e.contains("No such container"), "{e}");
}

/// stats (one-shot and the live table under a terminal), top, diff, export, cp both ways,
/// commit and update against berthd (tests/fake_api.rs covers each client side alone).
#[test]
fn container_extras_against_berthd() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "wk",
        "busybox",
        "sh",
        "-c",
        "echo hi > /made; sleep 300",
    ]);
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "wk"]);
    let check = |_endpoint: &str, args: &[&str], expect: &dyn Fn(&str)| expect(&d.ok(args));
    // The live table: redrawn every second on a terminal, until interrupted.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../berthd/tests/clients/pty_run.py");
    let o = d
        .command(
            "python3",
            &[
                script, "24", "120", "", "timeout", "-s", "INT", "3", BERTH, "stats", "wk",
            ],
        )
        .output()
        .unwrap();
    let live = text(&o.stdout);
    assert!(live.matches("\x1b[2J").count() >= 2, "redrawn at least twice: {live:?}");
    assert!(live.contains("CPU %") && live.contains(" wk "), "{live:?}");
    check(&format!("/containers/{id}/top"), &["top", "wk"], &|o| {
        assert!(o.contains("PID") && o.contains("sleep"), "{o}")
    });
    check(
        &format!("/containers/{id}/stats?stream=0"),
        &["stats", "--no-stream", "wk"],
        &|o| assert!(o.starts_with("CONTAINER ID") && o.contains(" wk "), "{o}"),
    );
    check(&format!("/containers/{id}/changes"), &["diff", "wk"], &|o| {
        assert!(o.contains("A /made"), "{o}")
    });
    let tar = d.dir.path().join("export.tar");
    check(
        &format!("/containers/{id}/export"),
        &["export", "-o", tar.to_str().unwrap(), "wk"],
        &|_| assert!(std::fs::metadata(&tar).map(|m| m.len() > 0).unwrap_or(false)),
    );
    let dest = d.dir.path().join("made");
    check(
        &format!("/containers/{id}/archive?path=/made"),
        &["cp", "wk:/made", dest.to_str().unwrap()],
        &|_| assert_eq!(std::fs::read_to_string(&dest).unwrap_or_default(), "hi\n"),
    );
    let local = d.dir.path().join("local.txt");
    std::fs::write(&local, "local\n").unwrap();
    check(
        &format!("/containers/{id}/archive?path=/tmp"),
        &["cp", local.to_str().unwrap(), "wk:/tmp/"],
        &|_| assert_eq!(d.ok(&["exec", "wk", "cat", "/tmp/local.txt"]), "local"),
    );
    check("/commit", &["commit", "wk", "snap:1"], &|o| {
        assert!(o.starts_with("sha256:"), "{o}")
    });
    check(
        &format!("/containers/{id}/update"),
        &[
            "update",
            "--memory",
            "64m",
            "--memory-swap",
            "128m",
            "--restart",
            "on-failure:2",
            "wk",
        ],
        &|o| {
            assert_eq!(o, "wk");
            let v = d.ok(&[
                "inspect",
                "-f",
                "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}",
                "wk",
            ]);
            assert_eq!(v, "67108864 on-failure");
        },
    );
    // The snapshot runs, with the file made in the container.
    assert_eq!(d.ok(&["run", "--rm", "snap:1", "cat", "/made"]), "hi");
}
