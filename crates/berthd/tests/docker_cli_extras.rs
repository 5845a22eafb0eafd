//! The docker CLI against berthd's container extras: top, stats, cp (both ways, running
//! and stopped, symlinks that must not escape), diff/commit/export, update, prune, df.

mod common;

use std::path::{Path, PathBuf};

use common::Daemon;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

/// The JSON document of a raw HTTP answer (whatever its transfer encoding).
fn json_body(body: &str) -> serde_json::Value {
    let (Some(a), Some(b)) = (body.find('{'), body.rfind('}')) else {
        panic!("no JSON in {body:?}")
    };
    serde_json::from_str(&body[a..=b]).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// A resource file of the container's cgroup, v1 (`controller`) or v2.
fn cgroup_file(d: &Daemon, id: &str, controller: &str, v1: &str, v2: &str) -> String {
    let rel = format!("{}/{id}", d.cgroup_parent.trim_start_matches('/'));
    let p: PathBuf = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        Path::new("/sys/fs/cgroup").join(rel).join(v2)
    } else {
        Path::new("/sys/fs/cgroup").join(controller).join(rel).join(v1)
    };
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

#[test]
fn top_and_stats() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&["run", "-d", "--name", "idle", "busybox", "sleep", "300"]);
    let top = d.ok(&["top", "idle"]);
    let mut lines = top.lines();
    assert!(lines.next().unwrap().split_whitespace().any(|t| t == "PID"), "{top}");
    let rows: Vec<&str> = lines.collect();
    // Only the container's process, never the host's (ps -ef has hundreds).
    assert_eq!(rows.len(), 1, "{top}");
    assert!(rows[0].ends_with("sleep 300"), "{top}");
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", "idle"]);
    let cols: Vec<Vec<String>> = d
        .ok(&["top", "idle", "-o", "pid,comm"])
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(cols, [["PID", "COMMAND"], [pid.as_str(), "sleep"]]);
    let o = d.docker(&["top", "idle", "-o", "user=PID"]);
    assert!(stderr(&o).contains("is not allowed"), "{}", stderr(&o));

    d.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let s = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}",
        "busy",
        "idle",
    ]);
    let rows: Vec<Vec<&str>> = s.lines().map(|l| l.split('|').collect()).collect();
    let cpu = |r: &Vec<&str>| r[1].trim_end_matches('%').parse::<f64>().unwrap();
    assert_eq!((rows[0][0], rows[1][0]), ("busy", "idle"), "{s}");
    // A spinning shell uses about one of the CPUs (busy hosts give it less); sleep none.
    assert!(cpu(&rows[0]) > 10.0 && cpu(&rows[0]) < 250.0, "{s}");
    assert!(cpu(&rows[1]) < 5.0, "{s}");
    assert!(rows[0][2].ends_with("/ 64MiB"), "{s}");
    assert!(rows[1][2].contains(" / ") && !rows[1][2].starts_with("0B /"), "{s}");

    // one-shot: a single reading, so no previous one.
    let (code, body) = d.http("GET", "/v1.45/containers/busy/stats?stream=false&one-shot=true", "");
    assert_eq!(code, 200, "{body}");
    let doc = json_body(&body);
    assert_eq!(doc["name"], "/busy");
    assert_eq!(doc["preread"], "0001-01-01T00:00:00Z");
    assert_eq!(doc["precpu_stats"]["cpu_usage"]["total_usage"], 0);
    assert!(doc["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    assert_eq!(doc["memory_stats"]["limit"], 64 << 20);
    assert_eq!(doc["pids_stats"]["current"], 1);
    let (code, _) = d.http("GET", "/v1.45/containers/busy/stats?stream=true&one-shot=true", "");
    assert_eq!(code, 400);
    // Interface counters of the container's own network namespace (not lo): three
    // pings to its gateway leave at least three packets out; a host-network container
    // has none of its own (control).
    d.ok(&[
        "run",
        "-d",
        "--name",
        "pinger",
        "busybox",
        "sh",
        "-c",
        "ping -c 3 -W 1 $(ip route | awk '/default/{print $3}'); sleep 300",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "onhost",
        "--network",
        "host",
        "busybox",
        "sleep",
        "300",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let (_, body) = d.http("GET", "/v1.45/containers/pinger/stats?stream=false&one-shot=true", "");
    let doc = json_body(&body);
    assert!(doc["networks"]["eth0"]["tx_packets"].as_u64().unwrap() >= 3, "{body}");
    assert!(doc["networks"]["eth0"]["rx_bytes"].as_u64().unwrap() > 0, "{body}");
    assert!(doc["networks"].get("lo").is_none(), "{body}");
    let netio = d.ok(&["stats", "--no-stream", "--format", "{{.NetIO}}", "pinger"]);
    assert!(!netio.starts_with("0B / 0B"), "{netio}");
    let (_, body) = d.http("GET", "/v1.45/containers/onhost/stats?stream=false&one-shot=true", "");
    assert!(json_body(&body).get("networks").is_none(), "{body}");
    d.ok(&["rm", "-f", "pinger", "onhost"]);

    d.ok(&["kill", "busy"]);
    d.ok(&["wait", "busy"]);
    let o = d.docker(&["top", "busy"]);
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
    // A stopped container's document is all zeros (as Docker's).
    let (code, body) = d.http("GET", "/v1.45/containers/busy/stats?stream=false", "");
    assert_eq!(code, 200);
    let doc = json_body(&body);
    assert_eq!(doc["read"], "0001-01-01T00:00:00Z");
    assert_eq!(doc["memory_stats"], serde_json::json!({}));
}

#[test]
fn cp_both_ways_without_escaping() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let dir = d.dir.path();
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    d.ok(&["run", "-d", "--name", "cp1", "busybox", "sleep", "300"]);
    d.ok(&[
        "exec",
        "cp1",
        "sh",
        "-c",
        "ln -s / /escape && ln -s ../../../../../../.. /up && mkdir -p /d/sub && echo deep > /d/sub/f",
    ]);
    let container_passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n";
    // Positive control: a plain file and a directory come out.
    d.ok(&["cp", "cp1:/etc/passwd", &p("passwd")]);
    assert_eq!(std::fs::read_to_string(p("passwd")).unwrap(), container_passwd);
    d.ok(&["cp", "cp1:/d", &p("d")]);
    assert_eq!(std::fs::read_to_string(p("d/sub/f")).unwrap(), "deep\n");
    // Through symlinks to / (absolute and climbing): still the container's file.
    for via in ["/escape/etc/passwd", "/up/etc/passwd"] {
        let out = p(&format!("via{}", via.len()));
        d.ok(&["cp", &format!("cp1:{via}"), &out]);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), container_passwd, "{via}");
    }
    // The symlink itself comes out as a symlink.
    d.ok(&["cp", "cp1:/escape", &p("esc")]);
    assert_eq!(std::fs::read_link(p("esc")).unwrap(), Path::new("/"));

    // Into the container: a plain copy lands (positive control) ...
    let marker = format!("berth-cp-marker-{}", std::process::id());
    std::fs::write(p(&marker), "in\n").unwrap();
    d.ok(&["cp", &p(&marker), "cp1:/tmp/"]);
    assert_eq!(d.ok(&["exec", "cp1", "cat", &format!("/tmp/{marker}")]), "in");
    // A new name (the client stats it, gets a 404, and extracts into the parent), a directory.
    d.ok(&["cp", &p(&marker), "cp1:/tmp/renamed"]);
    d.ok(&["cp", &p("d"), "cp1:/d2"]);
    assert_eq!(d.ok(&["exec", "cp1", "cat", "/tmp/renamed", "/d2/sub/f"]), "in\ndeep");
    // ... and through the symlinks it lands inside the container, never on the host.
    d.ok(&["cp", &p(&marker), "cp1:/escape/root/"]);
    d.ok(&["cp", &p(&marker), "cp1:/up/"]);
    assert_eq!(
        d.ok(&["exec", "cp1", "cat", &format!("/root/{marker}"), &format!("/{marker}")]),
        "in\nin"
    );
    for host in [format!("/root/{marker}"), format!("/{marker}")] {
        assert!(!Path::new(&host).exists(), "docker cp escaped the container: {host}");
    }
    let o = d.docker(&["cp", "cp1:/nonexistent", &p("x")]);
    assert!(
        stderr(&o).contains("Could not find the file /nonexistent in container cp1"),
        "{}",
        stderr(&o)
    );

    // A stopped container: its rootfs is mounted for the copy, then unmounted (the
    // Daemon's drop checks no mount is left).
    d.ok(&[
        "run",
        "--name",
        "st1",
        "busybox",
        "sh",
        "-c",
        "echo stopped > /data.txt",
    ]);
    d.ok(&["cp", "st1:/data.txt", &p("data.txt")]);
    assert_eq!(std::fs::read_to_string(p("data.txt")).unwrap(), "stopped\n");
    d.ok(&["cp", &p(&marker), "st1:/tmp/"]);
    d.ok(&["start", "st1"]);
    d.ok(&["wait", "st1"]);
    d.ok(&["cp", &format!("st1:/tmp/{marker}"), &p("back")]);
    assert_eq!(std::fs::read_to_string(p("back")).unwrap(), "in\n");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let s_id = d.ok(&["inspect", "-f", "{{.Id}}", "st1"]);
    assert!(
        !mounts.contains(&s_id),
        "the stopped container's rootfs is still mounted"
    );
}

#[test]
fn diff_commit_export() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&[
        "run",
        "--name",
        "ch",
        "busybox",
        "sh",
        "-c",
        "mkdir /newdir && echo data > /newdir/f && rm /bin/ls && echo extra >> /etc/group",
    ]);
    let diff = d.ok(&["diff", "ch"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in [
        "A /newdir",
        "A /newdir/f",
        "D /bin/ls",
        "C /bin",
        "C /etc",
        "C /etc/group",
    ] {
        assert!(lines.contains(&want), "{want} missing from:\n{diff}");
    }
    // Docker keeps the mount points it makes in an init layer: they are not changes.
    assert!(!diff.contains("hostname") && !diff.contains("resolv.conf"), "{diff}");

    let id = d.ok(&[
        "commit",
        "-c",
        "ENV FOO=bar",
        "-c",
        r#"CMD ["cat", "/newdir/f"]"#,
        "-c",
        "EXPOSE 80",
        "-m",
        "made by a test",
        "ch",
        "committed:v1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        d.ok(&["image", "inspect", "-f", "{{.Comment}}", "committed:v1"]),
        "made by a test"
    );
    assert_eq!(d.ok(&["image", "inspect", "-f", "{{.Comment}}", "busybox"]), "");
    assert_eq!(
        d.ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.ExposedPorts}}",
            "committed:v1"
        ]),
        r#"{"80/tcp":{}}"#
    );
    // Sizes only when asked (Docker computes them for size=1): the writable layer, and
    // that plus the image.
    let sizes = d.ok(&["inspect", "--size", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "ch"]);
    let (rw, root) = sizes.split_once(' ').unwrap();
    let (rw, root): (u64, u64) = (rw.parse().unwrap(), root.parse().unwrap());
    assert!(rw > 0 && root > rw, "{sizes}");
    assert_eq!(d.ok(&["inspect", "-f", "{{.SizeRw}}", "ch"]), "<nil>");
    let ps = d.ok(&["ps", "-a", "-s", "--filter", "name=ch", "--format", "{{.Size}}"]);
    assert!(ps.contains("virtual") && !ps.starts_with("0B"), "{ps}");
    assert_eq!(d.ok(&["run", "--rm", "committed:v1"]), "data");
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "committed:v1",
            "sh",
            "-c",
            "echo $FOO; ls /bin/ls || true"
        ]),
        "bar"
    );
    let o = d.docker(&["commit", "-c", "RUN true", "ch", "bad:1"]);
    assert!(
        stderr(&o).contains("RUN is not a valid change command"),
        "{}",
        stderr(&o)
    );

    let list = d.cli("sh", &["-c", "docker export ch | tar t"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let names = String::from_utf8_lossy(&list.stdout);
    let has = |n: &str| names.lines().any(|l| l.trim_start_matches("./") == n);
    assert!(has("newdir/f") && has("bin/busybox"), "{names}");
    assert!(!has("bin/ls"), "a deleted file was exported");
}

#[test]
fn update_applies_and_survives_restart() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let id = d.ok(&["run", "-d", "--name", "upd", "busybox", "sleep", "300"]);
    let mem = || cgroup_file(&d, &id, "memory", "memory.limit_in_bytes", "memory.max");
    let before = mem();
    // As Docker: memory above the swap limit already set (none) needs the swap too.
    let o = d.docker(&["update", "--memory", "64m", "upd"]);
    assert!(
        stderr(&o).contains("Memory limit should be smaller than already set memoryswap limit"),
        "{}",
        stderr(&o)
    );
    assert_eq!(mem(), before);
    d.ok(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "--restart",
        "always",
        "upd",
    ]);
    assert_eq!(mem(), "67108864");
    assert_eq!(cgroup_file(&d, &id, "pids", "pids.max", "pids.max"), "50");
    let quota = cgroup_file(&d, &id, "cpu", "cpu.cfs_quota_us", "cpu.max");
    assert!(quota.starts_with("50000"), "{quota}");
    let hc =
        "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}";
    assert_eq!(
        d.ok(&["inspect", "-f", hc, "upd"]),
        "67108864 134217728 500000000 always"
    );
    // Within the swap limit, memory alone is fine.
    d.ok(&["update", "--memory", "32m", "upd"]);
    assert_eq!(mem(), "33554432");
    d.ok(&["restart", "-t", "1", "upd"]);
    assert_eq!(mem(), "33554432", "the restart lost the updated limit");
    let o = d.docker(&["update", "--cpu-quota", "20000", "upd"]);
    assert!(stderr(&o).contains("NanoCPUs has already been set"), "{}", stderr(&o));
    let o = d.docker(&["update", "--memory", "1m", "upd"]);
    assert!(
        stderr(&o).contains("Minimum memory limit allowed is 6MB"),
        "{}",
        stderr(&o)
    );
    // A stopped container keeps the update for its next start.
    d.ok(&["stop", "-t", "1", "upd"]);
    d.ok(&["update", "--memory", "48m", "upd"]);
    d.ok(&["start", "upd"]);
    assert_eq!(mem(), "50331648");
}

#[test]
fn prune_and_system_df() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&["run", "-d", "--name", "up", "busybox", "sleep", "300"]);
    d.ok(&["run", "--name", "kept", "-l", "keep=1", "busybox", "true"]);
    d.ok(&[
        "run",
        "--name",
        "gone",
        "busybox",
        "sh",
        "-c",
        "head -c 1000 /dev/zero > /blob",
    ]);
    d.ok(&["create", "--name", "new", "-v", "dfvol:/v", "busybox", "true"]);
    d.ok(&["volume", "create", "idlevol"]);
    let df = d.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}"]);
    assert_eq!(
        df, "Images 1 1\nContainers 4 1\nLocal Volumes 2 1\nBuild Cache 0 0",
        "{df}"
    );
    let vols = d.ok(&[
        "system",
        "df",
        "-v",
        "--format",
        "{{range .Volumes}}{{.Name}}:{{.Links}} {{end}}",
    ]);
    assert!(vols.contains("dfvol:1") && vols.contains("idlevol:0"), "{vols}");
    let sizes = d.ok(&[
        "system",
        "df",
        "-v",
        "--format",
        "{{range .Containers}}{{.Names}}={{.Size}} {{end}}",
    ]);
    assert!(sizes.contains("gone=1kB"), "{sizes}");
    // A filter that matches nothing prunes nothing (positive control below).
    let out = d.ok(&["container", "prune", "-f", "--filter", "label=nothing"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    let out = d.ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(out.contains("Total reclaimed space: 1kB"), "{out}");
    let names = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["kept", "up"]);
    d.ok(&["container", "prune", "-f"]);
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), "up");
    let (code, body) = d.http(
        "POST",
        "/v1.45/containers/prune?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
        "",
    );
    assert_eq!(code, 400, "{body}");
}

#[test]
fn cp_sees_volumes_binds_and_tmpfs_of_a_running_container() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let dir = d.dir.path();
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let bind = dir.join("bound");
    std::fs::create_dir_all(&bind).unwrap();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "cpv",
        "-v",
        "cpvol:/vol",
        "-v",
        &format!("{}:/bound", bind.display()),
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "echo mem > /scratch/f; exec sleep 300",
    ]);
    std::fs::write(p("in.txt"), "to-volume\n").unwrap();
    d.ok(&["cp", &p("in.txt"), "cpv:/vol/"]);
    d.ok(&["cp", &p("in.txt"), "cpv:/bound/"]);
    // Seen inside the container, in the volume, and in the bound host directory.
    assert_eq!(d.ok(&["exec", "cpv", "cat", "/vol/in.txt"]), "to-volume");
    assert_eq!(std::fs::read_to_string(bind.join("in.txt")).unwrap(), "to-volume\n");
    let out = d.ok(&["run", "--rm", "-v", "cpvol:/v", "busybox", "cat", "/v/in.txt"]);
    assert_eq!(out, "to-volume");
    // Out of a tmpfs only the container can see.
    d.ok(&["exec", "cpv", "test", "-f", "/scratch/f"]);
    d.ok(&["cp", "cpv:/scratch/f", &p("mem.txt")]);
    assert_eq!(std::fs::read_to_string(p("mem.txt")).unwrap(), "mem\n");
    // Control: the file did not land in the container's own layer under /vol.
    let upper = d.ok(&["inspect", "--format", "{{.GraphDriver.Data.UpperDir}}", "cpv"]);
    assert!(!Path::new(&upper).join("vol/in.txt").exists());
}

/// A client still sending after the tar's end-of-archive block (Go's writer pads; clients
/// send in chunks) must get the answer, not a connection closed under it ("broken pipe"
/// from `docker cp`, seen once in CI).
#[test]
fn archive_put_reads_the_body_to_its_end() {
    use std::io::{Read, Write};
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&["create", "--name", "pad", "busybox", "true"]);
    let src = d.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f.txt"), "padded\n").unwrap();
    let out = std::process::Command::new("tar")
        .args(["-C", src.to_str().unwrap(), "-cf", "-", "f.txt"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut body = out.stdout;
    body.resize(body.len() + (2 << 20), 0);
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    write!(
        s,
        "PUT /containers/pad/archive?path=/tmp HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\
         Content-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    for (i, chunk) in body.chunks(64 << 10).enumerate() {
        s.write_all(chunk).unwrap_or_else(|e| panic!("writing chunk {i}: {e}"));
        if i == 1 {
            // By now the tar is extracted and the handler has answered.
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let got = d.ok(&["cp", "pad:/tmp/f.txt", "-"]);
    assert!(got.contains("padded"), "{got}");
}

/// `docker system prune` (CLI 28: containers, networks, images, then the build cache)
/// and `docker builder prune` against berthd: stopped containers and unused networks
/// go, a running container and its network stay (control).
#[test]
fn system_prune_with_the_docker_cli() {
    let d = Daemon::start();
    d.assert_is_berth();
    d.import_busybox("busybox");
    d.ok(&["network", "create", "unused"]);
    d.ok(&["network", "create", "used"]);
    d.ok(&["run", "--name", "done", "busybox", "true"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "used",
        "busybox",
        "sleep",
        "60",
    ]);
    let out = d.ok(&["system", "prune", "-f"]);
    assert!(
        out.contains("Deleted Containers:") && out.contains("Deleted Networks:"),
        "{out}"
    );
    assert!(out.contains("unused") && !out.contains("\nused"), "{out}");
    assert!(!d.docker(&["inspect", "done"]).status.success());
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Running}}", "up"]), "true");
    let out = d.ok(&["builder", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    d.ok(&["rm", "-f", "up"]);
}
