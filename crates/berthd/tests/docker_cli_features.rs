//! Health checks, --init, the OOM killer, and log options, through the docker CLI.

mod common;

use std::time::{Duration, Instant};

use common::Daemon;

fn poll(d: &Daemon, args: &[&str], want: &str, limit: Duration) -> String {
    let t = Instant::now();
    let mut got = String::new();
    while t.elapsed() < limit {
        got = d.ok(args);
        if got == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    got
}

#[test]
fn health_checks_go_unhealthy_then_healthy() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "300",
    ]);
    let st = poll(
        &d,
        &["inspect", "-f", "{{.State.Health.Status}}", "hc"],
        "unhealthy",
        Duration::from_secs(15),
    );
    assert_eq!(st, "unhealthy");
    let streak: i64 = d
        .ok(&["inspect", "-f", "{{.State.Health.FailingStreak}}", "hc"])
        .parse()
        .unwrap();
    assert!(streak >= 2, "{streak}");
    d.ok(&["exec", "hc", "touch", "/tmp/ok"]);
    let st = poll(
        &d,
        &["inspect", "-f", "{{.State.Health.Status}}", "hc"],
        "healthy",
        Duration::from_secs(15),
    );
    assert_eq!(st, "healthy");
    let ps = d.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.ends_with("(healthy)"), "{ps}");
    assert_eq!(d.ok(&["ps", "-q", "--filter", "health=healthy"]).len(), 12);
    let ev = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        "+0s",
        "--filter",
        "event=health_status",
        "--format",
        "{{.Action}}",
    ]);
    assert!(
        ev.contains("health_status: unhealthy") && ev.contains("health_status: healthy"),
        "{ev}"
    );
    // A container without a check has no Health (positive control of the field above).
    d.ok(&["run", "-d", "--name", "plain", "busybox", "sleep", "300"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Health}}", "plain"]), "<nil>");
}

#[test]
fn init_is_pid_1_and_forwards_signals() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let ps = d.ok(&["run", "--rm", "--init", "busybox", "ps", "-o", "pid,comm"]);
    assert!(ps.lines().any(|l| l.trim() == "1 docker-init"), "{ps}");
    // sleep as PID 1 ignores SIGTERM (stop waits, then kills: 137); under the init it dies of it.
    d.ok(&["run", "-d", "--init", "--name", "ini", "busybox", "sleep", "300"]);
    let t = Instant::now();
    d.ok(&["stop", "-t", "10", "ini"]);
    assert!(t.elapsed() < Duration::from_secs(5), "SIGTERM was not forwarded");
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "ini"]), "143");
}

#[test]
fn oom_killed_is_reported() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let o = d.docker(&[
        "run",
        "--name",
        "oom",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "sh",
        "-c",
        "head -c 200m /dev/zero | tail",
    ]);
    assert_eq!(o.status.code(), Some(137), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "oom"]),
        "true 137"
    );
    let ev = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        "+0s",
        "--filter",
        "event=oom",
        "--format",
        "{{.Actor.Attributes.name}}",
    ]);
    assert_eq!(ev, "oom");
    // Positive control: within the limit, no OOM.
    d.ok(&[
        "run",
        "--name",
        "fits",
        "--memory",
        "16m",
        "busybox",
        "sh",
        "-c",
        "head -c 1m /dev/zero | tail > /dev/null",
    ]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.OOMKilled}}", "fits"]), "false");
}

#[test]
fn log_options() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&[
        "run",
        "--name",
        "rot",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    let logs = d.ok(&["logs", "rot"]);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.last(), Some(&"line-299"));
    assert!(lines.len() < 300, "rotation kept everything: {}", lines.len());
    assert_eq!(d.ok(&["logs", "--tail", "2", "rot"]), "line-298\nline-299");
    let ts = d.ok(&["logs", "-t", "--tail", "1", "rot"]);
    assert!(ts.ends_with(" line-299") && ts.starts_with("20"), "{ts}");
    d.ok(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "gone",
    ]);
    let o = d.docker(&["logs", "quiet"]);
    assert!(!o.status.success());
    // Following ends at --until even while the container keeps running.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "busybox",
        "sh",
        "-c",
        "while true; do echo t; sleep 0.1; done",
    ]);
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let t = Instant::now();
    let o = d.docker(&["logs", "-f", "--until", &until, "chatty"]);
    assert!(o.status.success());
    assert!(t.elapsed() < Duration::from_secs(5), "logs -f --until did not end");
    let o = d.docker(&["logs", "quiet"]);
    assert!(!o.status.success());
    let o = d.docker(&["run", "--rm", "--log-driver", "syslog", "busybox", "true"]);
    assert!(!o.status.success(), "unsupported driver must be refused");
}

/// Docker's `local` driver, as the daemon's default (daemon.json) and per container:
/// framed records in local-logs/container.log, rotated files gzipped, read back by
/// `logs` (tail, follow, stderr apart); its options checked as Docker does.
#[test]
fn local_log_driver() {
    let d = Daemon::start_with_config(r#"{"log-driver": "local", "log-opts": {"max-size": "1k", "max-file": "3"}}"#);
    d.import_busybox("busybox");
    let info = d.ok(&["info", "--format", "{{.LoggingDriver}}"]);
    assert_eq!(info, "local");
    d.ok(&[
        "run",
        "--name",
        "loc",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done; echo to-stderr >&2",
    ]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.HostConfig.LogConfig.Type}}", "loc"]),
        "local"
    );
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "loc"]);
    let dir = d.dir.path().join("data/containers").join(&id).join("local-logs");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for want in ["container.log", "container.log.1.gz", "container.log.2.gz"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let raw = std::fs::read(dir.join("container.log")).unwrap();
    let first = u32::from_be_bytes(raw[..4].try_into().unwrap()) as usize;
    assert_eq!(raw[4 + first..8 + first], raw[..4], "length-framed records");
    let out = d.docker(&["logs", "loc"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.last(), Some(&"line-199"));
    assert!(lines.len() > 20 && lines.len() < 200, "rotation: {} lines", lines.len());
    let n0: usize = lines[0].trim_start_matches("line-").parse().unwrap();
    assert_eq!(lines.len(), 200 - n0, "contiguous from the oldest kept file");
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "to-stderr");
    assert_eq!(d.ok(&["logs", "--tail", "3", "loc"]), "line-198\nline-199");
    // Following a running container's local log.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "tick",
        "--log-opt",
        "max-size=2k",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo tick-$i; sleep 0.3; done",
    ]);
    let followed = d.ok(&["logs", "-f", "tick"]);
    assert_eq!(followed, "tick-1\ntick-2\ntick-3");
    // Control: json-file per container still writes its JSON lines next to it.
    d.ok(&[
        "run",
        "--name",
        "js",
        "--log-driver",
        "json-file",
        "busybox",
        "echo",
        "json",
    ]);
    assert_eq!(d.ok(&["logs", "js"]), "json");
    assert!(!d.ok(&["inspect", "-f", "{{.LogPath}}", "js"]).is_empty());
    assert_eq!(d.ok(&["inspect", "-f", "{{.LogPath}}", "loc"]), "");
    // Docker's option checks.
    let o = d.docker(&["run", "--rm", "--log-opt", "tag=x", "busybox", "true"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unknown log opt 'tag' for local log driver"),
        "{o:?}"
    );
    let o = d.docker(&["run", "--rm", "--log-opt", "max-file=0", "busybox", "true"]);
    assert!(!o.status.success(), "{o:?}");
}

#[test]
fn rmi_refuses_images_in_use_and_prune_removes_dangling() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&["create", "--name", "user", "busybox", "true"]);
    let o = d.docker(&["rmi", "busybox"]);
    assert!(!o.status.success(), "an image a container uses must not be removed");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("conflict"), "{err}");
    // Positive control: once the container is gone, rmi works.
    d.ok(&["rm", "user"]);
    d.ok(&["rmi", "busybox"]);
    assert_eq!(d.ok(&["images", "-q"]), "");
    // A dangling image (imported without a name) is pruned; a named one is kept.
    let tar = common::busybox_tar(d.dir.path());
    d.ok(&["import", tar.to_str().unwrap()]);
    d.import_busybox("named:1");
    // Two images (an import records its time, so the IDs differ).
    assert_eq!(d.ok(&["images", "-q"]).lines().count(), 2);
    d.ok(&["image", "prune", "-f"]);
    assert_eq!(d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]), "named:1");
    d.ok(&["run", "--rm", "named:1", "true"]);
}

/// Profiles from files (`--security-opt seccomp=FILE`): berthd compiles each distinct
/// profile once and shares it, so two profiles in a row must each keep their own rules.
#[test]
fn seccomp_profiles_from_files_each_apply() {
    let d = Daemon::start();
    d.import_busybox("busybox:latest");
    let dir = d.dir.path();
    let profile = |blocked: &str| {
        serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": [blocked], "action": "SCMP_ACT_ERRNO"}],
        })
        .to_string()
    };
    std::fs::write(dir.join("no-mkdir.json"), profile("mkdir")).unwrap();
    std::fs::write(dir.join("no-rmdir.json"), profile("rmdir")).unwrap();
    let run = |file: &str| {
        let opt = format!("seccomp={}", dir.join(file).display());
        let o = d.docker(&[
            "run",
            "--rm",
            "--security-opt",
            &opt,
            "busybox",
            "sh",
            "-c",
            "mkdir /tmp/a && echo made; mkdir /tmp/b; rmdir /tmp/b && echo removed; true",
        ]);
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    for _ in 0..2 {
        let a = run("no-mkdir.json");
        assert!(!a.contains("made") && !a.contains("removed"), "{a}");
        let b = run("no-rmdir.json");
        assert!(b.contains("made") && !b.contains("removed"), "{b}");
    }
    // Control: the default profile allows both.
    let c = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "mkdir /tmp/b && rmdir /tmp/b && echo both",
    ]);
    assert_eq!(c, "both");
}
