//! The docker CLI on PATH (v28, API 1.50: it negotiates down to 1.45) against berthd:
//! the everyday scenarios, Docker's defaults seen from inside a container, errors.

mod common;

use common::Daemon;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

#[test]
fn run_detached_ps_logs_exec_stop_rm() {
    let d = Daemon::start();
    d.assert_is_berth();
    d.import_busybox("busybox:latest");
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-l",
        "tier=front",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exec sleep 300",
    ]);
    assert_eq!(id.len(), 64);
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web Up"), "{ps}");
    // Label filters are ANDed; a non-matching one hides it (positive control above).
    assert_eq!(d.ok(&["ps", "-q", "--filter", "label=tier=front"]), id[..12]);
    assert_eq!(
        d.ok(&["ps", "-q", "--filter", "label=tier=front", "--filter", "label=nope"]),
        ""
    );
    // Logs keep the two streams apart.
    let mut logs = d.docker(&["logs", "web"]);
    for _ in 0..50 {
        if stdout(&logs) == "out" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        logs = d.docker(&["logs", "web"]);
    }
    assert_eq!(stdout(&logs), "out");
    assert_eq!(stderr(&logs), "err");
    let ps_in = d.ok(&["exec", "web", "ps", "-o", "pid,comm"]);
    assert!(ps_in.contains("1 sleep"), "{ps_in}");
    let e = d.docker(&["exec", "web", "sh", "-c", "exit 4"]);
    assert_eq!(e.status.code(), Some(4));
    let e = d.docker(&["exec", "web", "no-such-program"]);
    assert_eq!(e.status.code(), Some(127), "{}", stderr(&e));
    let o = d.cli("sh", &["-c", "echo piped | docker exec -i web cat"]);
    assert_eq!(stdout(&o), "piped");
    let state = d.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Running}} {{.Name}} {{.Config.Labels.tier}}",
        "web",
    ]);
    assert_eq!(state, "running true /web front");
    // A running container cannot be removed without force (409); stop makes it possible.
    let rm = d.docker(&["rm", "web"]);
    assert!(!rm.status.success());
    assert!(
        stderr(&rm).contains("cannot remove a running container"),
        "{}",
        stderr(&rm)
    );
    d.ok(&["stop", "-t", "1", "web"]);
    // sleep ignores nothing but is PID 1: SIGTERM has no handler, so SIGKILL follows.
    let st = d.ok(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web"]);
    assert_eq!(st, "exited 137");
    let kill = d.docker(&["kill", "web"]);
    assert!(stderr(&kill).contains("is not running"), "{}", stderr(&kill));
    d.ok(&["rm", "web"]);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

#[test]
fn foreground_run_streams_and_exit_codes() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let o = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo hello; echo oops >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stdout(&o), "hello");
    assert_eq!(stderr(&o), "oops");
    // --rm removed it.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    // Docker's codes for what cannot start: 127 not found.
    let o = d.docker(&["run", "--rm", "busybox", "/no/such/binary"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let o = d.docker(&["run", "--name", "xx", "busybox", "true"]);
    assert!(o.status.success());
    let o = d.docker(&["run", "--name", "xx", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
    let o = d.docker(&["run", "--rm", "no-such-image-here"]);
    assert!(!o.status.success());
}

#[test]
fn docker_defaults_inside_the_container() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let status = d.ok(&["run", "--rm", "busybox", "cat", "/proc/self/status"]);
    let field = |s: &str, k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    // Docker's 14 default capabilities.
    assert_eq!(field(&status, "CapEff:"), "00000000a80425fb");
    assert_eq!(field(&status, "CapBnd:"), "00000000a80425fb");
    assert_eq!(field(&status, "Seccomp:"), "2");
    assert_eq!(field(&status, "NoNewPrivs:"), "0");
    // A syscall the default profile refuses without CAP_SYS_ADMIN (unshare), and the
    // positive control: allowed with seccomp=unconfined.
    let o = d.docker(&["run", "--rm", "busybox", "unshare", "-U", "true"]);
    assert!(!o.status.success(), "unshare must be refused by seccomp");
    assert!(stderr(&o).contains("Operation not permitted"), "{}", stderr(&o));
    d.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "unshare",
        "-U",
        "true",
    ]);
    // Masked and read-only paths.
    assert_eq!(
        d.ok(&["run", "--rm", "busybox", "sh", "-c", "wc -c < /proc/timer_list"]),
        "0"
    );
    let o = d.docker(&["run", "--rm", "busybox", "sh", "-c", "echo 1 > /proc/sys/kernel/panic"]);
    assert!(!o.status.success());
    // /dev/shm is 64 MB; the standard devices exist.
    let shm = d.ok(&["run", "--rm", "busybox", "df", "-k", "/dev/shm"]);
    assert!(shm.contains("65536"), "{shm}");
    d.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "test -c /dev/null && test -c /dev/urandom && test -c /dev/zero",
    ]);
    // Changed as Docker changes them.
    let st = d.ok(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_ADMIN",
        "busybox",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(field(&st, "CapEff:"), "0000000000001000");
    let st = d.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(field(&st, "NoNewPrivs:"), "1");
    let st = d.ok(&["run", "--rm", "--privileged", "busybox", "cat", "/proc/self/status"]);
    assert_eq!(field(&st, "Seccomp:"), "0");
    assert_ne!(field(&st, "CapEff:"), "00000000a80425fb");
    // Privileged containers see what is masked for others (positive control of the mask).
    let timer_list = d.ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "wc -c < /proc/timer_list",
    ]);
    assert_ne!(timer_list, "0");
    // User, workdir, env, hostname.
    let o = d.ok(&[
        "run",
        "--rm",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "-e",
        "A=1",
        "-h",
        "box",
        "busybox",
        "sh",
        "-c",
        "id -u; pwd; echo $A; hostname",
    ]);
    assert_eq!(o, "65534\n/tmp\n1\nbox");
    // The network namespace is private with its loopback up.
    let o = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ip -o link | wc -l; cat /sys/class/net/lo/operstate",
    ]);
    assert_eq!(o.lines().next(), Some("1"), "{o}");
}

#[test]
fn bad_requests_get_docker_errors() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let (code, body) = d.http(
        "POST",
        "/v1.45/containers/create",
        r#"{"Image":"busybox","HostConfig":{"Memory":"lots"}}"#,
    );
    assert_eq!(code, 400);
    assert!(body.contains("HostConfig.Memory"), "{body}");
    let (code, body) = d.http("POST", "/v1.45/containers/create", r#"{"Image":"nope:1"}"#);
    assert_eq!(code, 404);
    assert!(body.contains("No such image: nope:1"), "{body}");
    let (code, _) = d.http("GET", "/v1.45/containers/nothing/json", "");
    assert_eq!(code, 404);
    let (code, body) = d.http("GET", "/v1.99/version", "");
    assert_eq!(code, 400);
    assert!(body.contains("too new"), "{body}");
    let (code, body) = d.http("GET", "/v1.12/version", "");
    assert_eq!(code, 400);
    assert!(body.contains("too old"), "{body}");
    // Positive controls: the same paths at a good version.
    assert_eq!(d.http("GET", "/v1.41/version", "").0, 200);
    assert_eq!(d.http("GET", "/version", "").0, 200);
    let big = format!(r#"{{"Image":"busybox","Labels":{{"x":"{}"}}}}"#, "a".repeat(9 << 20));
    let (code, _) = d.http("POST", "/v1.45/containers/create", &big);
    assert_eq!(code, 413);
    let (code, body) = d.http(
        "POST",
        "/v1.45/containers/create?name=bad%20name",
        r#"{"Image":"busybox"}"#,
    );
    assert_eq!(code, 400, "{body}");
    // Nothing of the failed creates is left.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

#[test]
fn wait_events_pause_restart_policy() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&["run", "-d", "--name", "pz", "busybox", "sleep", "300"]);
    d.ok(&["pause", "pz"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Status}}", "pz"]), "paused");
    let st = d.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(st.ends_with("(Paused)"), "{st}");
    d.ok(&["unpause", "pz"]);
    d.ok(&["kill", "pz"]);
    assert_eq!(d.ok(&["wait", "pz"]), "137");
    // on-failure:2 restarts twice, then stays exited.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "fz",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 5",
    ]);
    let mut count = String::new();
    for _ in 0..100 {
        count = d.ok(&["inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "fz"]);
        if count == "2 exited" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(count, "2 exited");
    // The state changes just before the event is sent: poll (bounded) for the last one.
    let mut ev = String::new();
    for _ in 0..50 {
        ev = d.ok(&[
            "events",
            "--since",
            "0",
            "--until",
            "+0s",
            "--filter",
            "container=fz",
            "--format",
            "{{.Action}}",
        ]);
        if ev.lines().filter(|l| l.starts_with("die")).count() >= 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let dies = ev.lines().filter(|l| l.starts_with("die")).count();
    assert_eq!(dies, 3, "{ev}");
    assert!(
        ev.lines().any(|l| l == "create") && ev.lines().any(|l| l == "start"),
        "{ev}"
    );
}

/// Field `n` (0-based) of /proc/<pid>/stat, counted after the command name.
fn stat_field(pid: &str, n: usize) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split_whitespace().nth(n - 2).unwrap().to_string()
}

#[test]
fn live_restore_after_kill_9() {
    let mut d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "long",
        "busybox",
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.2; done",
    ]);
    d.ok(&["run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 1; exit 7"]);
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", "long"]);
    assert_eq!(d.docker(&["exec", "long", "sh", "-c", "exit 6"]).status.code(), Some(6));
    let exec_ids = d.ok(&["inspect", "-f", "{{range .ExecIDs}}{{.}}{{end}}", "long"]);
    let monitor = stat_field(&pid, 3);
    d.kill9();
    // Containers and logging go on without berthd, and their monitors go idle: the
    // closed connections of the dead berthd once kept them polling in a busy loop.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let cpu = || stat_field(&monitor, 13).parse::<u64>().unwrap() + stat_field(&monitor, 14).parse::<u64>().unwrap();
    let before = cpu();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let spent = cpu() - before;
    assert!(
        spent < 30,
        "monitor {monitor} used {spent} clock ticks of CPU in 1.2 s with berthd gone"
    );
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "container died with berthd"
    );
    d.restart();
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "long"]),
        format!("running {pid}")
    );
    // The exit that happened while berthd was away is recorded.
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "short"]),
        "exited 7"
    );
    let ticks = d.ok(&["logs", "long"]).lines().count();
    assert!(ticks >= 7, "logging stopped while berthd was away: {ticks} lines");
    // Exec records survive too.
    let (code, body) = d.http("GET", &format!("/v1.45/exec/{exec_ids}/json"), "");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"ExitCode\":6"), "{body}");
    // The restarted berthd still controls it.
    d.ok(&["stop", "-t", "1", "long"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Running}}", "long"]), "false");
}

#[test]
fn save_load_round_trip() {
    let d = Daemon::start();
    d.import_busybox("busybox:1");
    let tar = d.dir.path().join("saved.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), "busybox:1"]);
    d.ok(&["rmi", "busybox:1"]);
    assert_eq!(d.ok(&["images", "-q"]), "");
    let out = d.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("busybox:1"), "{out}");
    assert_eq!(d.ok(&["run", "--rm", "busybox:1", "echo", "ok"]), "ok");
    d.ok(&["tag", "busybox:1", "other/name:2"]);
    // Filters: by reference (with a pattern), and a non-matching one (control).
    assert_eq!(
        d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}", "other/*"]),
        "other/name:2"
    );
    assert_eq!(d.ok(&["images", "-q", "--filter", "reference=nothing*"]), "");
    assert_eq!(d.ok(&["images", "-q", "--filter", "dangling=true"]), "");
    let imgs = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(imgs.contains("other/name:2") && imgs.contains("busybox:1"), "{imgs}");
}

#[test]
fn after_a_host_reboot_restart_policies_apply() {
    let mut d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "unless",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "stopped",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&["stop", "-t", "0", "stopped"]);
    d.ok(&["run", "-d", "--name", "never", "busybox", "sleep", "300"]);
    let pids: Vec<u32> = ["always", "unless", "never"]
        .iter()
        .map(|n| d.ok(&["inspect", "-f", "{{.State.Pid}}", n]).parse().unwrap())
        .collect();
    d.simulate_reboot(&pids);
    d.restart();
    let state = |n: &str| d.ok(&["inspect", "-f", "{{.State.Running}}", n]);
    // Restarted by policy (positive controls), and not: no policy, or stopped by the user.
    assert_eq!(state("always"), "true");
    assert_eq!(state("unless"), "true");
    assert_eq!(state("never"), "false");
    assert_eq!(state("stopped"), "false");
    let new_pid: u32 = d.ok(&["inspect", "-f", "{{.State.Pid}}", "always"]).parse().unwrap();
    assert!(!pids.contains(&new_pid));
    // No stale runtime state: the restarted containers work normally.
    assert_eq!(d.ok(&["exec", "always", "echo", "alive"]), "alive");
}
