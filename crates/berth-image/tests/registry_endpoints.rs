//! `registry-mirrors` and `insecure-registries` as Docker's daemon.json has them, against
//! real registries on loopback addresses. Every client here resolves names through a
//! hook that knows only loopback addresses (and records what it was asked), so no test
//! can reach Docker Hub or any other machine.

mod registry_util;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_image::registry::{Client, PullOptions, PushOptions, RegistryConfig, RegistryError, Security};
use berth_image::store::BlobStore;
use berth_image::Reference;
use registry_util::{make_image, test_client, Registry, TestImage};

/// Names a client asked to resolve.
type Asked = Arc<Mutex<Vec<String>>>;

/// A client with `config` whose resolver maps `names` to their loopback addresses,
/// refuses every other name, and records every question.
fn client(config: RegistryConfig, names: &[(&str, &str)], certs_dir: Option<&Path>) -> (Client, Asked) {
    let map: HashMap<String, IpAddr> = names
        .iter()
        .map(|(n, ip)| {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(ip.is_loopback(), "test names resolve to loopback only");
            (n.to_string(), ip)
        })
        .collect();
    let asked: Asked = Arc::default();
    let asked2 = asked.clone();
    let c = Client::builder()
        .docker_config(None)
        .certs_dir(certs_dir.map(Path::to_path_buf))
        .registry_config(config)
        .resolver(Arc::new(move |host: &str| {
            asked2.lock().expect("asked").push(host.to_string());
            map.get(host).map(|ip| vec![*ip]).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("test resolver: {host} is not a loopback test name"),
                )
            })
        }))
        .connect_timeout(Duration::from_secs(5))
        .response_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    (c, asked)
}

fn mirrors(urls: &[String]) -> RegistryConfig {
    RegistryConfig {
        registry_mirrors: urls.to_vec(),
        insecure_registries: Vec::new(),
    }
}

/// A registry holding `path` (e.g. `library/x:1`), and the image.
fn registry_with(path: &str, seed: &str) -> (Registry, TestImage, tempfile::TempDir) {
    let reg = Registry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("src");
    let img = make_image(&src, seed, "amd64", 50_000);
    test_client()
        .push(&reg.reference(path), &src, &img.manifest, &PushOptions::default())
        .expect("push");
    (reg, img, dir)
}

fn assert_complete(store: &BlobStore, img: &TestImage) {
    let report = store.verify_all().expect("verify");
    assert!(report.corrupt.is_empty(), "{:?}", report.corrupt);
    for d in img.blobs().iter().chain([&img.manifest]) {
        assert!(report.ok.contains(d), "{d} missing");
    }
}

fn hub(path: &str) -> Reference {
    let r = Reference::parse(path).expect("reference");
    assert_eq!(r.domain(), "docker.io");
    r
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn docker_hub_image_comes_from_the_mirror() {
    let (reg, img, _d) = registry_with("library/x:1", "mirror");
    let mirror = format!("http://{}/", reg.addr);
    let (c, asked) = client(mirrors(std::slice::from_ref(&mirror)), &[], None);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("store");

    let pulled = c
        .pull(&hub("x:1"), &store, &PullOptions::default())
        .expect("pull via mirror");
    assert_eq!(pulled.digest, img.manifest);
    assert_eq!(pulled.endpoint, format!("http://{}", reg.addr));
    assert_complete(&store, &img);
    let m = c
        .fetch_manifest(&hub("docker.io/library/x:1"))
        .expect("manifest via mirror");
    assert_eq!(m.digest, img.manifest);
    assert!(
        asked.lock().expect("asked").is_empty(),
        "no name was looked up, so Docker Hub was not contacted: {:?}",
        asked.lock().expect("asked")
    );

    // Images of other registries ignore the mirrors.
    assert!(c.mirror_endpoints(&reg.addr).is_empty());
    let direct = c
        .pull(&reg.reference("library/x:1"), &store, &PullOptions::default())
        .expect("direct pull");
    assert_eq!(direct.endpoint, format!("http://{}", reg.addr));
}

#[test]
fn failing_mirrors_fall_through_in_order() {
    let (without, _, _d1) = registry_with("library/other:1", "other");
    let (with, img, _d2) = registry_with("library/x:1", "second");
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let urls = [
        dead.clone(),
        format!("http://{}", without.addr),
        format!("http://{}", with.addr),
    ];
    let (c, asked) = client(mirrors(&urls), &[], None);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("store");
    let pulled = c
        .pull(&hub("library/x:1"), &store, &PullOptions::default())
        .expect("third mirror serves it");
    assert_eq!(pulled.endpoint, format!("http://{}", with.addr));
    assert_complete(&store, &img);
    assert!(asked.lock().expect("asked").is_empty());
}

#[test]
fn mirror_down_falls_back_to_docker_hub() {
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let (c, asked) = client(mirrors(std::slice::from_ref(&dead)), &[], None);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("store");
    let err = c
        .pull(&hub("busybox"), &store, &PullOptions::default())
        .expect_err("no mirror and no Hub");
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::Mirrors { .. }), "{msg}");
    assert!(msg.contains(&dead) && msg.contains("registry-1.docker.io"), "{msg}");
    // The fallback went for Docker Hub, and the test resolver stopped it there.
    assert_eq!(*asked.lock().expect("asked"), ["registry-1.docker.io"]);
    assert!(store.list().expect("list").is_empty());
}

#[test]
fn loopback_registries_are_insecure_by_default() {
    // 127.0.0.2 is loopback but not "localhost": Docker's 127.0.0.0/8 default covers it.
    let reg = Registry::start_at("127.0.0.2", tempfile::tempdir().expect("tempdir"), "");
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("src");
    let dst = BlobStore::open(dir.path().join("dst")).expect("dst");
    let img = make_image(&src, "plain", "amd64", 20_000);
    let (c, _) = client(RegistryConfig::default(), &[], None);
    assert!(
        matches!(c.security(&reg.addr), Security::InsecureCidr { cidr, .. } if cidr.to_string() == "127.0.0.0/8"),
        "{}",
        c.security(&reg.addr)
    );
    let reference = reg.reference("app:1");
    c.push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push over HTTP");
    // HTTPS was tried first (Docker's order), found not spoken, and HTTP remembered.
    assert_eq!(c.endpoint(&reg.addr).base_url, format!("http://{}", reg.addr));
    c.pull(&reference, &dst, &PullOptions::default())
        .expect("pull over HTTP");
    assert_complete(&dst, &img);
}

#[test]
fn listed_insecure_registry_by_name_over_plain_http() {
    let reg = Registry::start_at("127.0.0.2", tempfile::tempdir().expect("tempdir"), "");
    let port = reg.addr.rsplit(':').next().expect("port");
    let name = format!("insecure.test:{port}");
    let config = RegistryConfig {
        registry_mirrors: Vec::new(),
        insecure_registries: vec![name.clone(), "10.0.0.0/8".into()],
    };
    let (c, asked) = client(config, &[("insecure.test", "127.0.0.2")], None);
    assert_eq!(c.security(&name), Security::InsecureListed);
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("src");
    let dst = BlobStore::open(dir.path().join("dst")).expect("dst");
    let img = make_image(&src, "named", "amd64", 20_000);
    let reference = Reference::parse(&format!("{name}/team/app:2")).expect("reference");
    c.push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push");
    let pulled = c.pull(&reference, &dst, &PullOptions::default()).expect("pull");
    assert_eq!(pulled.endpoint, format!("http://{name}"));
    assert_complete(&dst, &img);
    assert!(asked.lock().expect("asked").iter().all(|h| h == "insecure.test"));
}

#[test]
fn insecure_registry_with_an_untrusted_certificate_uses_https() {
    let certs = tempfile::tempdir().expect("tempdir");
    let (crt, key) = (certs.path().join("self.crt"), certs.path().join("self.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=berth-test",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.2", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tls = format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        crt.display(),
        key.display()
    );
    let reg = Registry::start_at("127.0.0.2", tempfile::tempdir().expect("tempdir"), &tls);
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("src");
    let dst = BlobStore::open(dir.path().join("dst")).expect("dst");
    let img = make_image(&src, "selfsigned", "amd64", 20_000);
    let (c, _) = client(RegistryConfig::default(), &[], None);
    let reference = reg.reference("app:1");
    c.push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push over unverified HTTPS");
    assert_eq!(c.endpoint(&reg.addr).base_url, format!("https://{}", reg.addr));
    c.pull(&reference, &dst, &PullOptions::default()).expect("pull");
    assert_complete(&dst, &img);
}

#[test]
fn secure_registries_are_never_reached_over_plain_http() {
    // The decision alone, for a name outside every insecure range (no traffic: the
    // resolver answers from memory, and a secure endpoint needs no probe).
    let (c, _) = client(
        RegistryConfig {
            registry_mirrors: Vec::new(),
            insecure_registries: vec!["10.0.0.0/8".into(), "other.test:5000".into()],
        },
        &[],
        None,
    );
    assert_eq!(c.security("secure.test:5000"), Security::Secure);
    assert_eq!(c.endpoint("secure.test:5000").base_url, "https://secure.test:5000");
    assert_eq!(c.security("docker.io"), Security::Secure);

    // Over the network: a plain-HTTP registry that is secure for this client (a certs.d
    // directory makes even a loopback registry secure) is refused, with a clear error.
    let reg = Registry::start();
    let certs = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(certs.path().join(&reg.addr)).expect("certs.d entry");
    let (c, _) = client(RegistryConfig::default(), &[], Some(certs.path()));
    assert_eq!(c.security(&reg.addr), Security::Secure);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("store");
    let err = c
        .pull(&reg.reference("app:1"), &store, &PullOptions::default())
        .expect_err("plain HTTP refused");
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::Tls { .. }), "{msg}");
    assert!(
        msg.contains(&format!("https://{}", reg.addr)) && msg.contains("does not seem to speak TLS"),
        "{msg}"
    );
}

#[test]
fn bad_configuration_is_refused_when_building() {
    for (config, needle) in [
        (mirrors(&["https://m.example/v2".into()]), "registry-mirrors"),
        (
            RegistryConfig {
                registry_mirrors: Vec::new(),
                insecure_registries: vec!["ftp://x".into()],
            },
            "insecure-registries",
        ),
    ] {
        let err = Client::builder()
            .docker_config(None)
            .registry_config(config)
            .build()
            .err()
            .expect("refused");
        assert!(err.to_string().contains(needle), "{err}");
    }
}
