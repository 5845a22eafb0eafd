//! Token authentication against a real registry: `docker-registry` in token mode, with
//! a token server written here (std::net) issuing RS256 JWTs signed by a key made with
//! `openssl`. Anonymous users may pull; only `alice` may push.

mod registry_util;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use berth_image::registry::{Client, Credentials, PullOptions, PushOptions, RegistryError};
use berth_image::store::BlobStore;
use registry_util::{make_image, test_client, FakeServer, Registry, Reply};

const SERVICE: &str = "berth-test";
const ISSUER: &str = "berth-test-issuer";
const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

struct TokenSetup {
    registry: Registry,
    tokens: FakeServer,
    issued: Arc<AtomicUsize>,
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("utf8");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf8")
}

/// A JWT the registry accepts: RS256 over `header.claims`, the certificate in `x5c`.
fn sign_token(dir: &Path, cert_b64: &str, subject: &str, access: Vec<serde_json::Value>) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [cert_b64]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": subject, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now - 10,
        "jti": format!("{now}-{}", rand_id()), "access": access,
    });
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign", "key.pem"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn openssl");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), input.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("openssl dgst");
    assert!(out.status.success(), "openssl dgst failed");
    format!("{input}.{}", b64url(&out.stdout))
}

fn rand_id() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn start() -> TokenSetup {
    let dir = tempfile::tempdir().expect("tempdir");
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            "2",
            "-subj",
            "/CN=berth-test-token",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ],
        dir.path(),
    );
    let pem = std::fs::read_to_string(dir.path().join("cert.pem")).expect("cert.pem");
    let cert_b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let key_dir = dir.path().to_path_buf();
    let issued = Arc::new(AtomicUsize::new(0));
    let issued2 = issued.clone();
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let tokens = FakeServer::start(Arc::new(
        move |_: &str, path: &str, headers: &HashMap<String, String>| {
            let subject = match headers.get("authorization") {
                None => "",
                Some(a) if *a == good => USER,
                Some(_) => {
                    return Reply::Full {
                        status: 401,
                        headers: vec![],
                        body: br#"{"details":"bad credentials"}"#.to_vec(),
                    }
                }
            };
            let query = path.split_once('?').map_or("", |(_, q)| q);
            let mut access = Vec::new();
            for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
                if k != "scope" {
                    continue;
                }
                let scope = percent_decode(v);
                let parts: Vec<&str> = scope.split(':').collect();
                let [kind, name, actions] = parts[..] else { continue };
                let granted: Vec<&str> = actions.split(',').filter(|a| subject == USER || *a == "pull").collect();
                access.push(serde_json::json!({"type": kind, "name": name, "actions": granted}));
            }
            issued2.fetch_add(1, Ordering::SeqCst);
            let token = sign_token(&key_dir, &cert_b64, subject, access);
            Reply::ok(
                "application/json",
                serde_json::to_vec(&serde_json::json!({"token": token, "expires_in": 300})).expect("json"),
            )
        },
    ));
    let auth = format!(
        "auth:\n  token:\n    realm: http://{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
        tokens.addr,
        dir.path().join("cert.pem").display()
    );
    let registry = Registry::start_with_auth(dir, &auth);
    TokenSetup {
        registry,
        tokens,
        issued,
    }
}

fn alice() -> Client {
    Client::builder()
        .docker_config(None)
        .credentials("ignored.example", Credentials::new("x", "y"))
        .build()
        .expect("client")
}

#[test]
fn token_auth_pull_anonymous_push_with_credentials() {
    let t = start();
    let reg = &t.registry;
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("store");
    let dst = BlobStore::open(dir.path().join("dst")).expect("store");
    let img = make_image(&src, "token", "amd64", 30_000);
    let reference = reg.reference("private/app:1");

    // Anonymous push: the token server grants pull only, so the registry refuses.
    let err = test_client()
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect_err("anonymous push must be refused");
    let msg = err.to_string();
    assert!(
        matches!(&err, RegistryError::Denied { action, status: 401 | 403, .. } if action == "push"),
        "{msg}"
    );
    assert!(msg.contains(&reg.addr) && msg.contains("private/app"), "{msg}");

    // Credentials for another registry do not help.
    assert!(alice()
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .is_err());

    // Wrong password: the token server says no.
    let wrong = Client::builder()
        .docker_config(None)
        .credentials(&reg.addr, Credentials::new(USER, "wrong"))
        .build()
        .expect("client");
    let err = wrong
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect_err("wrong password");
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::Token { .. }), "{msg}");
    assert!(msg.contains("401") && msg.contains(&t.tokens.addr), "{msg}");

    // Right password.
    let client = Client::builder()
        .docker_config(None)
        .credentials(&reg.addr, Credentials::new(USER, PASSWORD))
        .build()
        .expect("client");
    let report = client
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push with credentials");
    assert_eq!(report.uploaded, img.blobs());

    // Anonymous pull works; tokens are cached per scope, so a second pull needs none.
    let anon = test_client();
    let pulled = anon
        .pull(&reference, &dst, &PullOptions::default())
        .expect("anonymous pull");
    assert_eq!(pulled.digest, img.manifest);
    let before = t.issued.load(Ordering::SeqCst);
    anon.pull(&reference, &dst, &PullOptions::default())
        .expect("pull again");
    assert_eq!(t.issued.load(Ordering::SeqCst), before, "the cached token is reused");
}

#[test]
fn token_auth_with_docker_config_credentials() {
    let t = start();
    let reg = &t.registry;
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("store");
    let img = make_image(&src, "dockercfg", "amd64", 1_000);
    let config = dir.path().join("config.json");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let json = serde_json::json!({"auths": {format!("http://{}", reg.addr): {"auth": auth}}});
    std::fs::write(&config, json.to_string()).expect("write config.json");
    let client = Client::builder().docker_config(Some(config)).build().expect("client");
    let report = client
        .push(
            &reg.reference("cfg/app:1"),
            &src,
            &img.manifest,
            &PushOptions::default(),
        )
        .expect("push with config.json credentials");
    assert_eq!(report.uploaded.len(), 3);
    // Mounting across repositories needs pull on the source too: the token covers both.
    let report = client
        .push(
            &reg.reference("cfg/copy:1"),
            &src,
            &img.manifest,
            &PushOptions::default(),
        )
        .expect("push copy");
    assert_eq!(report.mounted, img.blobs());
}

#[test]
fn basic_auth_challenge() {
    // A fake registry that wants HTTP basic auth for everything.
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("store");
    let dst = BlobStore::open(dir.path().join("dst")).expect("store");
    let img = make_image(&src, "basic", "amd64", 2_000);
    let good = Credentials::new(USER, PASSWORD).basic_header();
    let served = img.clone();
    let server = FakeServer::start(Arc::new(
        move |_: &str, path: &str, headers: &HashMap<String, String>| {
            if headers.get("authorization") != Some(&good) {
                return Reply::Full {
                    status: 401,
                    headers: vec![("WWW-Authenticate".into(), r#"Basic realm="berth test""#.into())],
                    body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
                };
            }
            if path.contains("/manifests/") {
                return Reply::ok(berth_image::registry::OCI_MANIFEST, served.manifest_bytes.clone());
            }
            let digest = path.rsplit('/').next().unwrap_or_default();
            let bytes = berth_image::digest::Digest::parse(digest)
                .ok()
                .and_then(|d| std::fs::read(src.blob_path(&d)).ok())
                .unwrap_or_default();
            Reply::ok("application/octet-stream", bytes)
        },
    ));
    let reference = server.reference("basic/app:1");
    let err = test_client()
        .pull(&reference, &dst, &PullOptions::default())
        .expect_err("no credentials");
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::Denied { status: 401, .. }), "{msg}");
    assert!(
        msg.contains("pull access to repository basic/app") && msg.contains(&server.addr),
        "{msg}"
    );

    let client = Client::builder()
        .docker_config(None)
        .credentials(&server.addr, Credentials::new(USER, PASSWORD))
        .build()
        .expect("client");
    let pulled = client
        .pull(&reference, &dst, &PullOptions::default())
        .expect("pull with basic auth");
    assert_eq!(pulled.digest, img.manifest);
    // Once the registry said "Basic", later requests carry credentials up front: one
    // 401 for the whole pull (manifest + config + 2 layers), plus the anonymous attempt's.
    let unauthorized = server.requests().len() - 4;
    assert_eq!(unauthorized, 2, "{:?}", server.requests());
}
