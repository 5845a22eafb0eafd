//! `berth run` and `berth create` against a real berthd: the create body is the docker
//! CLI's (compared through a logging proxy), output streams, exit codes, stdin, and a
//! real terminal.

mod common;

use common::proxy::Proxy;
use common::{Daemon, BERTH};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// The same flags through docker and berth: the create bodies must be equal.
fn same_body(d: &Daemon, p: &Proxy, flags: &[&str], image_and_cmd: &[&str]) {
    let env_b = "fromenv";
    let mut bodies = Vec::new();
    for (bin, name) in [("docker", "from-docker"), (BERTH, "from-berth")] {
        p.clear();
        let mut args = vec!["create", "--name", name];
        args.extend_from_slice(flags);
        args.extend_from_slice(image_and_cmd);
        let o = d
            .command(bin, &args)
            .env("BERTH_HOST", p.host())
            .env("DOCKER_HOST", p.host())
            .env("B", env_b)
            .output()
            .unwrap();
        let mut body = p.body_of("/containers/create");
        // docker keeps -v and --ulimit in maps: their order varies from run to run.
        for key in ["Binds", "Ulimits"] {
            if let Some(b) = body["HostConfig"][key].as_array_mut() {
                b.sort_by_key(|v| v.to_string());
            }
        }
        // So does docker with -e given both as a name and as name=value (seen flaking).
        if let Some(e) = body["Env"].as_array_mut() {
            e.sort_by_key(|v| v.to_string());
        }
        let query = p
            .sent()
            .iter()
            .find(|s| s.line.contains("/containers/create"))
            .map(|s| s.line.clone())
            .unwrap();
        assert!(query.contains(&format!("name={name}")), "{bin}: {query}");
        bodies.push((bin, body, o));
    }
    let (docker, berth) = (&bodies[0], &bodies[1]);
    assert_eq!(
        docker.1,
        berth.1,
        "create bodies differ for {flags:?}\n--- docker:\n{}\n--- berth:\n{}\n--- docker said: {}\n--- berth said: {}",
        serde_json::to_string_pretty(&docker.1).unwrap(),
        serde_json::to_string_pretty(&berth.1).unwrap(),
        text(&docker.2.stderr),
        text(&berth.2.stderr),
    );
    // Both got the same answer from the daemon.
    assert_eq!(
        docker.2.status.code(),
        berth.2.status.code(),
        "{}",
        text(&berth.2.stderr)
    );
    let _ = d.berth(&["rm", "-f", "from-docker", "from-berth"]);
}

#[test]
fn create_body_is_the_docker_clis() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let p = Proxy::start(d.dir.path(), &d.sock);
    let dir = d.dir.path();
    let env_file = dir.join("env.list");
    std::fs::write(&env_file, "A=1\n# comment\nB\nC=x y\nUNSET_IN_TEST\n").unwrap();
    let seccomp = dir.join("seccomp.json");
    std::fs::write(&seccomp, "{\"defaultAction\": \"SCMP_ACT_ALLOW\",  \"syscalls\": []}").unwrap();
    let (env_file, seccomp) = (env_file.to_str().unwrap(), seccomp.to_str().unwrap());
    let seccomp_opt = format!("seccomp={seccomp}");

    same_body(&d, &p, &[], &["busybox", "true"]);
    // Every flag issue 4 names, as one command.
    #[rustfmt::skip]
    let all = [
        "-i", "-e", "X=1", "-e", "B", "--env-file", env_file, "-l", "a=b", "-l", "c",
        "-v", "/tmp:/data:ro", "-v", "vol1:/vol",
        "--mount", "type=bind,source=/tmp,target=/m2,readonly", "--mount", "type=tmpfs,target=/t2,tmpfs-size=1m",
        "-p", "8080:80", "-p", "127.0.0.1:9090:90/udp", "-p", "7000-7001:7000-7001", "--expose", "5000",
        "-w", "/tmp", "-u", "nobody", "-h", "myhost", "--entrypoint", "/bin/sh", "--init",
        "--restart", "on-failure:3", "--health-cmd", "true", "--health-interval", "5s", "--health-retries", "2",
        "--health-timeout", "3s", "--health-start-period", "1s", "--memory", "64m", "--memory-swap", "128m",
        "--memory-reservation", "32m", "--cpus", "1.5", "--cpu-shares", "512", "--cpuset-cpus", "0",
        "--pids-limit", "100", "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=50",
        "--device", "/dev/null:/dev/mynull:rw", "--cap-add", "NET_ADMIN", "--cap-drop", "mknod",
        "--privileged", "--security-opt", "no-new-privileges", "--read-only", "--tmpfs", "/run:rw,size=1m",
        "--tmpfs", "/run2", "--shm-size", "32m", "--sysctl", "net.ipv4.ip_forward=1", "--group-add", "10",
        "--stop-signal", "SIGUSR1", "--stop-timeout", "7", "--log-driver", "json-file", "--log-opt", "max-size=1m",
        "--network", "none", "--pid", "host", "--ipc", "private", "--uts", "host", "--userns", "host",
        "--cgroupns", "private", "--cgroup-parent", "/foo", "--oom-kill-disable", "--oom-score-adj", "100",
        "--dns", "1.1.1.1", "--add-host", "h:1.2.3.4",
    ];
    same_body(&d, &p, &all, &["busybox", "-c", "echo hi"]);
    // The rarer spellings and the flags that reset or inline things.
    #[rustfmt::skip]
    let rare = [
        "--network", "mynet", "-a", "stdout", "-v", "/anon", "--no-healthcheck", "--security-opt", &seccomp_opt,
        "--security-opt", "label:disable", "--entrypoint", "", "--memory-swap", "-1",
        "--mount", "type=volume,src=v,dst=/v,volume-nocopy,volume-label=a=b",
        "--mount", "type=bind,src=/tmp,dst=/b,bind-propagation=rshared,ro=true", "--blkio-weight", "300",
        "--device-read-bps", "/dev/sda:1mb", "--cpu-period", "1000", "--cpu-quota", "500",
        "--memory-swappiness", "10", "-P", "--domainname", "dd", "-t", "--rm", "--stop-timeout", "-1",
        "--network-alias", "web", "--ip", "10.1.2.3",
    ];
    same_body(&d, &p, &rare, &["busybox"]);
}

#[test]
fn streams_exit_codes_and_options() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    // stdout and stderr apart, and the container's own exit code.
    let o = d.berth(&["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "out\n");
    assert_eq!(text(&o.stderr), "err\n");
    // docker's codes for a command that is missing (127) or cannot be run (126).
    let e = d.fails(127, &["run", "--rm", "busybox", "/nonexist"]);
    assert!(e.contains("no such file or directory"), "{e}");
    d.fails(126, &["run", "--rm", "busybox", "/etc"]);
    // Options reach the container.
    let env_file = d.dir.path().join("env.list");
    std::fs::write(&env_file, "Y=from-file\n").unwrap();
    let out = d.ok(&[
        "run",
        "--rm",
        "-e",
        "X=1",
        "--env-file",
        env_file.to_str().unwrap(),
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "-h",
        "myhost",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo $X $Y; pwd; id -u; hostname",
    ]);
    assert_eq!(out, "1 from-file\n/tmp\n65534\nmyhost");
    // --entrypoint and a read-only root.
    assert_eq!(
        d.ok(&["run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"]),
        "a b"
    );
    let o = d.berth(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_ne!(o.status.code(), Some(0));
    // stdin with -i; the container sees its end.
    let o = d.berth_in(
        &["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"],
        b"hello\n",
    );
    assert_eq!(text(&o.stdout), "hello\ndone\n", "{}", text(&o.stderr));
    // Detached: the ID, then the exit code through wait; --rm containers are gone.
    let id = d.ok(&[
        "run", "-d", "--name", "five", "-l", "k=v", "-p", "8080:80", "busybox", "sh", "-c", "exit 5",
    ]);
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(d.ok(&["wait", "five"]), "5");
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{json .HostConfig.PortBindings}} {{.Config.Labels.k}}",
            "five"
        ]),
        r#"{"80/tcp":[{"HostIp":"","HostPort":"8080"}]} v"#
    );
    let all = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all, "five", "--rm containers must be gone: {all}");
    // A missing image is pulled (and here cannot be: no registry is reachable).
    let e = d.fails(125, &["run", "--rm", "--pull", "missing", "nosuchimage"]);
    assert!(e.contains("Unable to find image 'nosuchimage:latest' locally"), "{e}");
    let e = d.fails(125, &["run", "--rm", "--pull", "never", "nosuchimage"]);
    assert!(e.contains("No such image") && !e.contains("Unable to find"), "{e}");
    // Usage errors are 125.
    let e = d.fails(125, &["run", "--rm", "--restart", "always", "busybox"]);
    assert!(e.contains("--restart and --rm"), "{e}");
    d.fails(125, &["run", "--memory", "lots", "busybox"]);
    d.fails(125, &["run"]);
    // Signals to an attached berth go to the container (--sig-proxy, on by default).
    let script = "trap 'echo got TERM; exit 9' TERM; while true; do sleep 0.1; done";
    let child = d
        .command(BERTH, &["run", "--rm", "--name", "sig", "busybox", "sh", "-c", script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if d.berth(&["inspect", "-f", "{{.State.Running}}", "sig"])
            .stdout
            .starts_with(b"true")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(9));
    assert_eq!(text(&o.stdout), "got TERM\n");
    // --cidfile holds the ID.
    let cid = d.dir.path().join("cid");
    let id = d.ok(&["create", "--cidfile", cid.to_str().unwrap(), "busybox", "true"]);
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id);
}

fn pty_run(d: &Daemon, typed: &str, resize: Option<&str>, args: &[&str]) -> (i32, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../berthd/tests/clients/pty_run.py");
    let mut c = d.command("python3", &[script, "33", "111", typed, BERTH]);
    c.args(args);
    if let Some(r) = resize {
        c.env("PTY_RESIZE", r);
    }
    let o = c.output().unwrap();
    (o.status.code().unwrap_or(-1), text(&o.stdout))
}

#[test]
fn terminals_resizes_and_detach_keys() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    // An interactive shell on a tty of our size; it exits with its code.
    let (code, out) = pty_run(
        &d,
        "tty; stty size; exit 7\\r",
        None,
        &["run", "--rm", "-it", "busybox", "sh"],
    );
    assert_eq!(code, 7, "{out}");
    assert!(out.contains("/dev/pts/0") && out.contains("33 111"), "{out}");
    // A resize of the local terminal reaches the container's (SIGWINCH → resize).
    let (code, out) = pty_run(
        &d,
        "stty size; exit 0\\r",
        Some("40 120"),
        &["run", "--rm", "-it", "busybox", "sh"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("40 120"), "{out}");
    // exec -it into a running container.
    d.ok(&["run", "-d", "--name", "tt", "busybox", "sleep", "300"]);
    let (code, out) = pty_run(
        &d,
        "echo $TERM; stty size; exit 3\\r",
        None,
        &["exec", "-it", "tt", "sh"],
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("xterm") && out.contains("33 111"), "{out}");
    // ctrl-p ctrl-q detaches and leaves the container running (attach says so, exit 1).
    d.ok(&["run", "-dit", "--name", "att", "busybox", "sh"]);
    let (code, out) = pty_run(&d, "\\x10\\x11", None, &["attach", "att"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("read escape sequence"), "{out}");
    // Still running a moment later (an EOF sent on detach would end the shell).
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Running}}", "att"]), "true");
    // From run -it too, with keys of our own: exit 0, still running.
    let (code, out) = pty_run(
        &d,
        "\\x01x",
        None,
        &[
            "run",
            "-it",
            "--name",
            "att2",
            "--detach-keys",
            "ctrl-a,x",
            "busybox",
            "sh",
        ],
    );
    assert_eq!(code, 0, "{out}");
    // Still running a moment later (an EOF sent on detach would end the shell).
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Running}}", "att2"]), "true");
    // Colour on a terminal only: ps paints a running container's status green.
    let (_, out) = pty_run(&d, "", None, &["ps"]);
    assert!(out.contains("\x1b[32mUp "), "{out:?}");
    assert!(!d.ok(&["ps"]).contains('\x1b'));
    // -t without a terminal on stdin is refused, as docker does.
    let e = d.fails(125, &["run", "--rm", "-it", "busybox", "true"]);
    assert!(e.contains("the input device is not a TTY"), "{e}");
}
