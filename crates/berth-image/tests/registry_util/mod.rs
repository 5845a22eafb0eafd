//! Shared by the registry tests: a real `docker-registry` on a free loopback port, a
//! scriptable fake registry written with std::net, and small test images.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_image::digest::{Algorithm, Digest};
use berth_image::registry::{Client, OCI_INDEX, OCI_MANIFEST};
use berth_image::store::BlobStore;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A client for tests: no Docker config, short timeouts.
pub fn test_client() -> Client {
    Client::builder()
        .docker_config(None)
        .connect_timeout(Duration::from_secs(5))
        .response_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// A running CNCF distribution registry (Debian's `docker-registry`), killed on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`, as used in references.
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with_auth(tempfile::tempdir().expect("tempdir"), "")
    }

    /// Start with `auth_yaml` (a complete `auth:` section, or empty) and storage in `dir`.
    pub fn start_with_auth(dir: tempfile::TempDir, auth_yaml: &str) -> Registry {
        Registry::start_at("127.0.0.1", dir, auth_yaml)
    }

    /// Start listening on `ip` (a loopback address) with `auth_yaml` (extra `http:`
    /// settings such as `tls:`, or an `auth:` section) and storage in `dir`.
    pub fn start_at(ip: &str, mut dir: tempfile::TempDir, auth_yaml: &str) -> Registry {
        assert!(
            ip.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback()),
            "test registries listen on loopback only, not {ip}"
        );
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: install the Debian package docker-registry (scripts/setup.sh does)"
        );
        // The port is found by binding port 0 and released for the registry, so another
        // process may take it in between: retry a few times on a startup failure.
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let addr = format!("{ip}:{port}");
            let config = dir.path().join("config.yml");
            let storage = dir.path().join("storage");
            let yaml = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {addr}\n  secret: berth-test-secret\n{auth_yaml}",
                storage.display()
            );
            std::fs::write(&config, yaml).expect("write registry config");
            let log = dir.path().join("registry.log");
            let log_file = std::fs::File::create(&log).expect("create registry log");
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone log"))
                .stderr(log_file)
                .spawn()
                .expect("spawn docker-registry");
            let mut reg = Registry { child, addr, dir };
            match reg.wait_ready() {
                Ok(()) => return reg,
                Err(()) => {
                    last_log = std::fs::read_to_string(&log).unwrap_or_default();
                    dir = reg.take_dir();
                }
            }
        }
        panic!("docker-registry did not start; last log:\n{last_log}");
    }

    fn wait_ready(&mut self) -> Result<(), ()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Err(());
            }
            if let Ok(mut s) = TcpStream::connect(&self.addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                if s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").is_ok() {
                    let mut line = String::new();
                    if BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("HTTP/1.") {
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(())
    }

    /// Stop the process and hand back the directory (for a retry).
    fn take_dir(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        drop(self);
        dir
    }

    pub fn reference(&self, path: &str) -> berth_image::Reference {
        berth_image::Reference::parse(&format!("{}/{path}", self.addr)).expect("reference")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One test image in a store.
#[derive(Debug, Clone)]
pub struct TestImage {
    pub manifest: Digest,
    pub manifest_bytes: Vec<u8>,
    pub config: Digest,
    pub layers: Vec<Digest>,
}

impl TestImage {
    pub fn blobs(&self) -> Vec<Digest> {
        let mut v = vec![self.config.clone()];
        v.extend(self.layers.iter().cloned());
        v
    }
}

/// Deterministic pseudo-random bytes (incompressible, so gzip keeps the size).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn gzip_tar(files: &[(&str, &[u8])]) -> (Vec<u8>, Digest) {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, *data).expect("tar append");
    }
    let tar = builder.into_inner().expect("tar finish");
    let diff_id = Digest::of_bytes(Algorithm::Sha256, &tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    (gz.finish().expect("gzip finish"), diff_id)
}

fn put(store: &BlobStore, bytes: &[u8]) -> Digest {
    store.ingest(None, Some(bytes.len() as u64), bytes).expect("ingest")
}

fn descriptor(media_type: &str, digest: &Digest, size: usize) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": digest.to_string(), "size": size})
}

/// A config blob plus two gzip tar layers (the second `big` bytes of noise) and an OCI
/// manifest, all in `store`.
pub fn make_image(store: &BlobStore, seed: &str, arch: &str, big: usize) -> TestImage {
    let hello = format!("hello from {seed}\n");
    let (l1, d1) = gzip_tar(&[("hello.txt", hello.as_bytes())]);
    let data = noise(seed.len() as u64 * 7919 + big as u64, big);
    let (l2, d2) = gzip_tar(&[("data/noise.bin", &data), ("data/seed", seed.as_bytes())]);
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Env": [format!("SEED={seed}")]},
        "rootfs": {"type": "layers", "diff_ids": [d1.to_string(), d2.to_string()]},
    });
    let config = serde_json::to_vec(&config).expect("config json");
    let (c, g1, g2) = (put(store, &config), put(store, &l1), put(store, &l2));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", &c, config.len()),
        "layers": [
            descriptor("application/vnd.oci.image.layer.v1.tar+gzip", &g1, l1.len()),
            descriptor("application/vnd.oci.image.layer.v1.tar+gzip", &g2, l2.len()),
        ],
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest json");
    TestImage {
        manifest: put(store, &manifest_bytes),
        manifest_bytes,
        config: c,
        layers: vec![g1, g2],
    }
}

/// An OCI index over `(image, os/arch/variant)` entries, stored in `store`.
pub fn make_index(store: &BlobStore, entries: &[(&TestImage, &str, &str, Option<&str>)]) -> (Digest, Vec<u8>) {
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|(img, os, arch, variant)| {
            let mut d = descriptor(OCI_MANIFEST, &img.manifest, img.manifest_bytes.len());
            let mut p = serde_json::json!({"os": os, "architecture": arch});
            if let Some(v) = variant {
                p["variant"] = serde_json::json!(v);
            }
            d["platform"] = p;
            d
        })
        .collect();
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    let bytes = serde_json::to_vec(&index).expect("index json");
    (put(store, &bytes), bytes)
}

/// Files left in a store's ingest directory (there must be none after a failed pull).
pub fn ingest_leftovers(store: &BlobStore) -> Vec<PathBuf> {
    std::fs::read_dir(store.root().join("ingest"))
        .expect("read ingest dir")
        .map(|e| e.expect("entry").path())
        .collect()
}

/// What the fake server answers.
#[derive(Clone)]
pub enum Reply {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Accept the request and never answer.
    Hang,
    /// Send headers declaring `declared` bytes and this much body, then stall.
    Stall { declared: usize, body: Vec<u8> },
    /// A 200 with `body` sent `chunk` bytes at a time, `pause` apart.
    Slow {
        body: Vec<u8>,
        chunk: usize,
        pause: Duration,
    },
}

impl Reply {
    pub fn ok(content_type: &str, body: Vec<u8>) -> Reply {
        Reply::Full {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }
}

/// Answers a request from its method, path (with query) and headers (lowercase names).
pub type Handler = dyn Fn(&str, &str, &HashMap<String, String>) -> Reply + Send + Sync;

/// A fake HTTP server on 127.0.0.1: each request (method, path) is answered by a handler
/// and logged. Threads stop when it is dropped.
pub struct FakeServer {
    pub addr: String,
    pub log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    pub fn start(handler: Arc<Handler>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        let addr = listener.local_addr().expect("addr").to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (handler, log, stop) = (handler.clone(), log2.clone(), stop2.clone());
                std::thread::spawn(move || serve_conn(conn, &*handler, &log, &stop));
            }
        });
        FakeServer { addr, log, stop }
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.requests().iter().filter(|r| r.contains(needle)).count()
    }

    pub fn reference(&self, path: &str) -> berth_image::Reference {
        berth_image::Reference::parse(&format!("{}/{path}", self.addr)).expect("reference")
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn serve_conn(conn: TcpStream, handler: &Handler, log: &Mutex<Vec<String>>, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    // A TLS ClientHello (the client trying HTTPS on an insecure registry first) gets the
    // answer Go's net/http gives it, so the client falls back to HTTP at once.
    let mut first = [0u8; 1];
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match conn.peek(&mut first) {
            Ok(0) => return,
            Ok(_) => break,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
    if first[0] == 0x16 {
        let mut out = &conn;
        let _ = out.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n");
        return;
    }
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let mut out = conn;
    loop {
        let mut head = Vec::new();
        // Read the request head, polling so that a dropped server ends idle connections.
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => {
                    let end = line == "\r\n";
                    head.push(line);
                    if end {
                        break;
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
        }
        let request_line = head.first().cloned().unwrap_or_default();
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let headers: HashMap<String, String> = head[1..]
            .iter()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        if let Some(len) = headers.get("content-length").and_then(|l| l.parse::<u64>().ok()) {
            let _ = std::io::copy(&mut (&mut reader).take(len), &mut std::io::sink());
        }
        log.lock().expect("log").push(format!("{method} {path}"));
        match handler(&method, &path, &headers) {
            Reply::Full { status, headers, body } => {
                let mut resp = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                for (k, v) in headers {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                let mut bytes = resp.into_bytes();
                if method != "HEAD" {
                    bytes.extend_from_slice(&body);
                }
                if out.write_all(&bytes).is_err() {
                    return;
                }
            }
            Reply::Hang => {
                hang(stop);
                return;
            }
            Reply::Slow { body, chunk, pause } => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                if out.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for part in body.chunks(chunk.max(1)) {
                    if stop.load(Ordering::SeqCst) || out.write_all(part).is_err() {
                        return;
                    }
                    std::thread::sleep(pause);
                }
            }
            Reply::Stall { declared, body } => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\n\r\n");
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(&body);
                let _ = out.flush();
                hang(stop);
                return;
            }
        }
    }
}

fn hang(stop: &AtomicBool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` (`host:port`, loopback) that counts
/// the bytes it passes back to clients and can cut every connection once a budget of
/// such bytes is spent (an interrupted download). Threads stop when it is dropped.
pub struct CountingProxy {
    pub addr: String,
    /// Bytes sent from upstream to clients so far.
    pub down: Arc<std::sync::atomic::AtomicU64>,
    /// Once `down` reaches this, connections are shut down (u64::MAX: never).
    pub budget: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl CountingProxy {
    pub fn start(upstream: &str) -> CountingProxy {
        use std::sync::atomic::AtomicU64;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        let down = Arc::new(AtomicU64::new(0));
        let budget = Arc::new(AtomicU64::new(u64::MAX));
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_string();
        let (down2, budget2, stop2) = (down.clone(), budget.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (down, budget) = (down2.clone(), budget2.clone());
                let (c2, s2) = (
                    client.try_clone().expect("clone client"),
                    server.try_clone().expect("clone server"),
                );
                std::thread::spawn(move || pump(c2, s2, None));
                std::thread::spawn(move || pump(server, client, Some((down, budget))));
            }
        });
        CountingProxy {
            addr,
            down,
            budget,
            stop,
        }
    }

    pub fn reference(&self, path: &str) -> berth_image::Reference {
        berth_image::Reference::parse(&format!("{}/{path}", self.addr)).expect("reference")
    }

    pub fn down(&self) -> u64 {
        self.down.load(Ordering::SeqCst)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

type Counter = (Arc<std::sync::atomic::AtomicU64>, Arc<std::sync::atomic::AtomicU64>);

/// Copy `from` → `to` until either side closes; with `count`, add the bytes to the
/// counter and shut both sockets down once the budget is spent.
fn pump(mut from: TcpStream, mut to: TcpStream, count: Option<Counter>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut want = buf.len();
        if let Some((down, budget)) = &count {
            let left = budget
                .load(Ordering::SeqCst)
                .saturating_sub(down.load(Ordering::SeqCst));
            if left == 0 {
                break;
            }
            want = want.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        let n = match from.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some((down, _)) = &count {
            down.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}
