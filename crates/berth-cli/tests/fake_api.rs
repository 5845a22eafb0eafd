//! The client side of endpoints berthd does not serve yet (top, stats, changes, export,
//! archive, commit, update, system df, prunes), against a stand-in daemon that answers
//! with documents in the Docker Engine API's shapes and records what it was asked.
//! Real-daemon checks of the same commands are in containers.rs.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};

use common::BERTH;
use serde_json::json;

/// (request line, body) of every request, in order.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

struct Fake {
    dir: tempfile::TempDir,
    seen: Seen,
}

fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, data).unwrap();
    b.into_inner().unwrap()
}

fn answer(method: &str, path: &str) -> (u16, Vec<(&'static str, String)>, Vec<u8>) {
    let j = |v: serde_json::Value| {
        (
            200,
            vec![("Content-Type", "application/json".to_string())],
            v.to_string().into_bytes(),
        )
    };
    let p = path.split('?').next().unwrap_or("");
    let stat = |name: &str, mode: u64| {
        use base64::Engine as _;
        let doc = json!({"name": name, "size": 3, "mode": mode, "mtime": "2026-01-01T00:00:00Z", "linkTarget": ""});
        base64::engine::general_purpose::STANDARD.encode(doc.to_string())
    };
    match (method, p) {
        ("HEAD" | "GET", "/_ping") => (200, vec![("Api-Version", "1.45".into())], b"OK".to_vec()),
        ("GET", "/v1.45/containers/wk/top") => {
            j(json!({"Titles": ["UID", "PID", "CMD"], "Processes": [["root", "1", "sleep 300"]]}))
        }
        ("GET", "/v1.45/containers/json") => j(json!([{"Id": "0123456789abcdef0123"}])),
        ("GET", "/v1.45/containers/wk/stats") | ("GET", "/v1.45/containers/0123456789ab/stats") => j(json!({
            "id": "0123456789abcdef0123", "name": "/wk",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 2_097_152, "limit": 8_388_608, "stats": {"inactive_file": 1_048_576}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 500}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 4096}, {"op": "write", "value": 0}]},
            "pids_stats": {"current": 3}})),
        ("GET", "/v1.45/containers/wk/changes") => {
            j(json!([{"Path": "/etc", "Kind": 0}, {"Path": "/made", "Kind": 1}, {"Path": "/gone", "Kind": 2}]))
        }
        ("GET", "/v1.45/containers/wk/export") => (200, vec![], tar_of("etc/hostname", b"wk\n")),
        ("GET", "/v1.45/containers/wk/archive") => (
            200,
            vec![("X-Docker-Container-Path-Stat", stat("made", 0o644))],
            tar_of("made", b"hi\n"),
        ),
        ("HEAD", "/v1.45/containers/wk/archive") => (
            200,
            vec![("X-Docker-Container-Path-Stat", stat("dst", (1 << 31) | 0o755))],
            vec![],
        ),
        ("PUT", "/v1.45/containers/wk/archive") => (200, vec![], vec![]),
        ("POST", "/v1.45/commit") => j(json!({"Id": "sha256:abc"})),
        ("POST", "/v1.45/containers/wk/update") => j(json!({"Warnings": ["memory swap unsupported"]})),
        ("GET", "/v1.45/system/df") => j(json!({
            "LayersSize": 2_000_000,
            "Images": [{"Id": "sha256:1", "RepoTags": ["busybox:latest"], "Size": 2_000_000, "SharedSize": 0, "Containers": 1, "Created": 0}],
            "Containers": [{"Id": "c1", "Names": ["/wk"], "State": "running", "SizeRw": 1000, "Created": 0},
                           {"Id": "c2", "Names": ["/old"], "State": "exited", "SizeRw": 3000, "Created": 0}],
            "Volumes": [], "BuildCache": []})),
        ("POST", "/v1.45/containers/prune") => j(json!({"ContainersDeleted": ["c2"], "SpaceReclaimed": 3000})),
        ("POST", "/v1.45/networks/prune") => j(json!({"NetworksDeleted": ["n1"]})),
        ("POST", "/v1.45/images/prune") => {
            j(json!({"ImagesDeleted": [{"Untagged": "old:1"}, {"Deleted": "sha256:9"}], "SpaceReclaimed": 2000}))
        }
        _ => (
            404,
            vec![],
            json!({"message": format!("page not found: {method} {p}")})
                .to_string()
                .into_bytes(),
        ),
    }
}

fn serve(mut s: UnixStream, seen: Seen) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let (mut len, mut chunked) = (0usize, false);
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        let lower = h.to_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = vec![0u8; len];
    let _ = r.read_exact(&mut body);
    if chunked {
        loop {
            let mut size = String::new();
            let _ = r.read_line(&mut size);
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0u8; n + 2];
            let _ = r.read_exact(&mut chunk);
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    seen.lock().unwrap().push((format!("{method} {path}"), body));
    let (code, headers, data) = answer(&method, &path);
    let mut head = format!(
        "HTTP/1.1 {code} X\r\nConnection: close\r\nContent-Length: {}\r\n",
        data.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = s.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = s.write_all(&data);
    }
}

impl Fake {
    fn start() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let l = UnixListener::bind(dir.path().join("fake.sock")).unwrap();
        let seen: Seen = Arc::default();
        let s2 = seen.clone();
        // Ends with the test process (the socket goes with the temp dir).
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let s3 = s2.clone();
                std::thread::spawn(move || serve(c, s3));
            }
        });
        Fake { dir, seen }
    }

    fn berth(&self, args: &[&str]) -> (i32, String, String) {
        let o = std::process::Command::new(BERTH)
            .args(args)
            .env(
                "BERTH_HOST",
                format!("unix://{}", self.dir.path().join("fake.sock").display()),
            )
            .env_remove("DOCKER_HOST")
            .env_remove("BERTH_API_VERSION")
            .env_remove("DOCKER_API_VERSION")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let t = |b: &[u8]| String::from_utf8_lossy(b).to_string();
        (o.status.code().unwrap_or(-1), t(&o.stdout), t(&o.stderr))
    }

    fn asked(&self, prefix: &str) -> Vec<(String, Vec<u8>)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(l, _)| l.starts_with(prefix))
            .cloned()
            .collect()
    }
}

#[test]
fn commands_on_endpoints_berthd_is_gaining() {
    let f = Fake::start();
    let ok = |args: &[&str]| {
        let (code, out, err) = f.berth(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        (out, err)
    };
    let (out, _) = ok(&["top", "wk", "-o", "pid,comm"]);
    assert_eq!(out, "UID       PID       CMD\nroot      1         sleep 300\n");
    assert_eq!(
        f.asked("GET /v1.45/containers/wk/top")[0].0,
        "GET /v1.45/containers/wk/top?ps_args=-o+pid%2Ccomm"
    );
    let (out, _) = ok(&["stats", "--no-stream", "wk"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT"),
        "{out}"
    );
    assert!(
        lines[1].starts_with(
            "0123456789ab   wk        40.00%    1MiB / 8MiB         12.50%    1.5kB / 500B   4.1kB / 0B   3"
        ),
        "{out}"
    );
    let (out, _) = ok(&["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}"]);
    assert_eq!(out, "wk 3\n");
    let (out, _) = ok(&["diff", "wk"]);
    assert_eq!(out, "C /etc\nA /made\nD /gone\n");
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("wk.tar");
    ok(&["export", "-o", exported.to_str().unwrap(), "wk"]);
    assert_eq!(std::fs::read(&exported).unwrap(), tar_of("etc/hostname", b"wk\n"));
    // cp out: to a new name, and into an existing directory.
    let dest = dir.path().join("copy");
    let (_, err) = ok(&["cp", "wk:/made", dest.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "hi\n");
    assert!(err.contains("Successfully copied"), "{err}");
    ok(&["cp", "-q", "wk:/made", dir.path().to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(dir.path().join("made")).unwrap(), "hi\n");
    // cp in: a file into an existing directory keeps its name.
    let src = dir.path().join("local.txt");
    std::fs::write(&src, "local\n").unwrap();
    ok(&["cp", src.to_str().unwrap(), "wk:/dst"]);
    let put = f.asked("PUT /v1.45/containers/wk/archive");
    assert_eq!(
        put[0].0,
        "PUT /v1.45/containers/wk/archive?noOverwriteDirNonDir=true&path=%2Fdst"
    );
    let mut ar = tar::Archive::new(&put[0].1[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["local.txt"]);
    let (out, _) = ok(&["commit", "-a", "me", "-m", "msg", "-c", "ENV A=1", "wk", "snap:1"]);
    assert_eq!(out, "sha256:abc\n");
    let c = &f.asked("POST /v1.45/commit")[0].0;
    assert!(
        c.contains("author=me")
            && c.contains("changes=ENV+A%3D1")
            && c.contains("comment=msg")
            && c.contains("container=wk")
            && c.contains("repo=docker.io%2Flibrary%2Fsnap")
            && c.contains("tag=1"),
        "{c}"
    );
    let (out, err) = ok(&[
        "update",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--restart",
        "on-failure:2",
        "wk",
    ]);
    assert_eq!(out, "wk\n");
    assert!(err.contains("WARNING: memory swap unsupported"), "{err}");
    let body: serde_json::Value = serde_json::from_slice(&f.asked("POST /v1.45/containers/wk/update")[0].1).unwrap();
    assert_eq!(
        body,
        json!({"Memory": 67108864, "NanoCpus": 500000000, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}})
    );
    let (out, _) = ok(&["system", "df"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE");
    assert_eq!(lines[1], "Images          1         1         2MB       0B (0%)");
    assert_eq!(lines[2], "Containers      2         1         4kB       3kB (75%)");
    let (out, _) = ok(&["system", "prune", "-f"]);
    assert_eq!(
        out,
        "Deleted Containers:\nc2\n\nDeleted Networks:\nn1\n\nDeleted Images:\nuntagged: old:1\ndeleted: sha256:9\n\nTotal reclaimed space: 5kB\n"
    );
    // A daemon's error is shown as the daemon put it.
    let (code, _, err) = f.berth(&["top", "other"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error response from daemon: page not found: GET /v1.45/containers/other/top\n"
    );
}
