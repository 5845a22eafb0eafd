//! Clients that go away mid-stream leak nothing; concurrent requests on one container
//! leave it consistent; exec outcomes survive a daemon crash.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::Daemon;

fn open_stream(d: &Daemon, req: &str) -> std::os::unix::net::UnixStream {
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    assert!(
        n > 0 && buf.starts_with(b"HTTP/1.1 "),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    s
}

#[test]
fn disconnecting_clients_leak_nothing() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "talk",
        "busybox",
        "sh",
        "-c",
        "while true; do echo x; sleep 0.05; done",
    ]);
    // Warm up every kind of stream once, so lazily made fds are not counted as leaks.
    let kinds = [
        "GET /v1.45/containers/talk/logs?stdout=1&follow=1 HTTP/1.1\r\nHost: b\r\n\r\n",
        "GET /v1.45/events HTTP/1.1\r\nHost: b\r\n\r\n",
        "POST /v1.45/containers/talk/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: b\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
        "POST /v1.45/containers/talk/wait HTTP/1.1\r\nHost: b\r\n\r\n",
    ];
    for k in &kinds {
        drop(open_stream(&d, k));
    }
    std::thread::sleep(Duration::from_millis(500));
    let before = d.fd_count();
    let mut open: Vec<_> = Vec::new();
    for _ in 0..10 {
        for k in &kinds {
            open.push(open_stream(&d, k));
        }
    }
    // Positive control: the open streams do hold fds.
    let during = d.fd_count();
    assert!(during >= before + 40, "streams not counted: {before} → {during}");
    drop(open);
    let t = Instant::now();
    let mut after = d.fd_count();
    while after > before + 2 && t.elapsed() < Duration::from_secs(10) {
        // Streams notice a gone client when they next write: let the container talk.
        std::thread::sleep(Duration::from_millis(200));
        after = d.fd_count();
    }
    assert!(
        after <= before + 2,
        "fds leaked: {before} before, {during} during, {after} after"
    );
    // The daemon still answers.
    d.ok(&["ps", "-q"]);
}

#[test]
fn concurrent_requests_on_one_container() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&["create", "--name", "busy", "busybox", "sleep", "300"]);
    let host = d.host();
    let cfg = d.dir.path().join("docker-config");
    let threads: Vec<_> = (0..12)
        .map(|i| {
            let (host, cfg) = (host.clone(), cfg.clone());
            std::thread::spawn(move || {
                let verb = match i % 6 {
                    0 => vec!["start", "busy"],
                    1 => vec!["stop", "-t", "1", "busy"],
                    2 => vec!["restart", "-t", "1", "busy"],
                    3 => vec!["pause", "busy"],
                    4 => vec!["kill", "busy"],
                    _ => vec!["inspect", "busy"],
                };
                std::process::Command::new("docker")
                    .args(&verb)
                    .env("DOCKER_HOST", &host)
                    .env("DOCKER_CONFIG", &cfg)
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Whatever the order, the record matches reality.
    let st = d.ok(&["inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "busy"]);
    let (running, pid) = st.split_once(' ').unwrap();
    if running == "true" {
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "{st}");
        // Stop works even if a pause won the race.
        d.ok(&["stop", "-t", "1", "busy"]);
    } else {
        assert_eq!(pid, "0");
    }
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Running}}", "busy"]), "false");
    d.ok(&["start", "busy"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Running}}", "busy"]), "true");
}

#[test]
fn exec_outcomes_survive_a_daemon_crash() {
    let mut d = Daemon::start();
    d.import_busybox("busybox:latest");
    d.ok(&["run", "-d", "--name", "ex", "busybox", "sleep", "300"]);
    let exec = |d: &Daemon, cmd: &str| -> String {
        let body = serde_json::json!({"Cmd": ["sh", "-c", cmd]}).to_string();
        let (code, out) = d.http("POST", "/v1.45/containers/ex/exec", &body);
        assert_eq!(code, 201, "{out}");
        let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["Id"]
            .as_str()
            .unwrap()
            .to_string();
        let (code, out) = d.http("POST", &format!("/v1.45/exec/{id}/start"), r#"{"Detach":true}"#);
        assert_eq!(code, 200, "{out}");
        id
    };
    let state = |d: &Daemon, id: &str| -> (bool, serde_json::Value) {
        let (_, out) = d.http("GET", &format!("/v1.45/exec/{id}/json"), "");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        (v["Running"].as_bool().unwrap(), v["ExitCode"].clone())
    };
    // Ends while berthd is away; still runs when berthd is back.
    let soon = exec(&d, "sleep 1; exit 7");
    let later = exec(&d, "sleep 4; exit 9");
    assert!(state(&d, &soon).0 && state(&d, &later).0);
    d.kill9();
    std::thread::sleep(Duration::from_millis(2000));
    d.restart();
    assert_eq!(state(&d, &soon), (false, serde_json::json!(7)));
    assert!(state(&d, &later).0, "still running after the restart");
    let t = Instant::now();
    while state(&d, &later).0 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(state(&d, &later), (false, serde_json::json!(9)));
}

/// As Docker at daemon start: a `--rm` container that exited while berthd was down is
/// removed when berthd comes back; a plain one that exited meanwhile stays, exited
/// (control). A `--rm` container still running stays too.
#[test]
fn rm_containers_that_exited_while_the_daemon_was_down_are_removed() {
    let mut d = Daemon::start();
    d.import_busybox("busybox:latest");
    d.ok(&["run", "-d", "--rm", "--name", "gone", "busybox", "sleep", "1"]);
    d.ok(&["run", "-d", "--name", "kept", "busybox", "sleep", "1"]);
    d.ok(&["run", "-d", "--rm", "--name", "alive", "busybox", "sleep", "300"]);
    d.kill9();
    std::thread::sleep(Duration::from_millis(2000));
    d.restart();
    let o = d.docker(&["inspect", "gone"]);
    assert!(!o.status.success(), "the --rm container is still there");
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Status}}", "kept"]), "exited");
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Status}}", "alive"]), "running");
    d.ok(&["rm", "-f", "kept", "alive"]);
}

/// A crash in the middle of a create (the writable layer made, the record not yet
/// written) leaves nothing behind once berthd is back; a complete container keeps its
/// layer (control).
#[test]
fn a_create_cut_short_by_a_crash_leaks_no_layer() {
    let mut d = Daemon::start();
    d.import_busybox("busybox:latest");
    let half = d.ok(&["create", "--name", "half", "busybox", "true"]);
    let whole = d.ok(&["create", "--name", "whole", "busybox", "true"]);
    d.kill9();
    let data = d.dir.path().join("data");
    std::fs::remove_file(data.join("containers").join(&half).join("config.v2.json")).unwrap();
    let layers = data.join("image/containers");
    assert!(layers.join(&half).exists() && layers.join(&whole).exists());
    d.restart();
    assert!(!layers.join(&half).exists(), "the half-made container's layer is left");
    assert!(!data.join("containers").join(&half).exists());
    assert!(layers.join(&whole).exists());
    assert_eq!(d.ok(&["inspect", "-f", "{{.Name}}", "whole"]), "/whole");
    d.ok(&["start", "-a", "whole"]);
    d.ok(&["rm", "whole"]);
}
