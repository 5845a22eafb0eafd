//! Terminals through berthd: `docker run -it` and `docker exec -it` under a real pty
//! (tests/clients/pty_run.py), with the window size passed on and input typed in.

mod common;

use common::Daemon;

fn pty_run(d: &Daemon, typed: &str, args: &[&str]) -> (i32, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/pty_run.py");
    let o = std::process::Command::new("python3")
        .args([script, "33", "111", typed, "docker"])
        .args(args)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
    )
}

#[test]
fn run_and_exec_with_a_terminal() {
    let d = Daemon::start();
    d.assert_is_berth();
    d.import_busybox("busybox");
    // An interactive shell: it sees a tty of our size, runs what we type, exits with its code.
    let (code, out) = pty_run(
        &d,
        "tty; stty size; exit 7\\r",
        &["run", "--rm", "-it", "busybox", "sh"],
    );
    assert_eq!(code, 7, "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("33 111"), "{out}");
    // exec -it into a running container.
    d.ok(&["run", "-d", "--name", "tt", "busybox", "sleep", "300"]);
    let (code, out) = pty_run(&d, "echo $TERM; stty size; exit 3\\r", &["exec", "-it", "tt", "sh"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("xterm") && out.contains("33 111"), "{out}");
    // Detaching from `exec -it` leaves its shell running, as Docker (no EOF is typed
    // into a terminal whose client left); control: the container ran no shell before.
    let shells = || {
        d.ok(&["top", "tt"])
            .lines()
            .filter(|l| l.trim_end().ends_with(" sh"))
            .count()
    };
    assert_eq!(shells(), 0);
    let (_, out) = pty_run(&d, "\\x10\\x11", &["exec", "-it", "tt", "sh"]);
    assert!(out.contains("read escape sequence"), "{out}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(shells(), 1, "{}", d.ok(&["top", "tt"]));
    // Detach keys (ctrl-p ctrl-q) leave the container running.
    d.ok(&["run", "-dit", "--name", "att", "busybox", "sh"]);
    let (_, out) = pty_run(&d, "\\x10\\x11", &["attach", "att"]);
    assert!(out.contains("read escape sequence"), "{out}");
    // Still running a moment later (an EOF sent on detach would end the shell).
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Running}}", "att"]), "true");
}
