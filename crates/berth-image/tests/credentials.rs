//! Credentials as Docker keeps them: `docker-credential-*` helpers (a fake one written
//! here as a shell script, run from a directory given to the client — PATH is never
//! changed), `credsStore` / `credHelpers`, and `login` / `logout` against a real
//! `docker-registry` with htpasswd (basic) auth.

mod registry_util;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use berth_image::registry::{
    login, logout, Client, CredentialHelper, Credentials, PullOptions, PushOptions, RegistryError,
};
use berth_image::store::BlobStore;
use registry_util::{make_image, Registry, Reply};

const USER: &str = "bob";
const PASSWORD: &str = "correct-horse";

/// A fake `docker-credential-berthtest`: keeps one JSON record per server URL in
/// `<dir>/store/`, logs each action to `<dir>/calls`.
const HELPER: &str = r#"#!/bin/sh
dir=$(dirname "$0")
mkdir -p "$dir/store"
input=$(cat)
echo "$1" >> "$dir/calls"
case "$1" in
get)
  f="$dir/store/$(printf '%s' "$input" | tr -c 'A-Za-z0-9.' '_')"
  if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store)
  url=$(printf '%s' "$input" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
  [ -n "$url" ] || { echo "no ServerURL in $input" >&2; exit 1; }
  printf '%s' "$input" > "$dir/store/$(printf '%s' "$url" | tr -c 'A-Za-z0-9.' '_')" ;;
erase)
  rm -f "$dir/store/$(printf '%s' "$input" | tr -c 'A-Za-z0-9.' '_')" ;;
*) echo "unknown action $1" >&2; exit 2 ;;
esac
"#;

fn write_script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write helper script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod helper");
    path
}

fn helper_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_script(dir.path(), "docker-credential-berthtest", HELPER);
    write_script(
        dir.path(),
        "docker-credential-broken",
        "#!/bin/sh\ncat >/dev/null\necho 'keychain is locked' >&2\nexit 3\n",
    );
    dir
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat config").permissions().mode() & 0o777
}

/// A `docker-registry` wanting HTTP basic auth (htpasswd, bcrypt via `htpasswd -B`).
fn basic_registry() -> Registry {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new("htpasswd")
        .args(["-Bbn", USER, PASSWORD])
        .output()
        .expect("htpasswd is needed (Debian package apache2-utils; scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "htpasswd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, &out.stdout).expect("write htpasswd");
    let auth = format!(
        "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
        htpasswd.display()
    );
    Registry::start_with_auth(dir, &auth)
}

fn client(config: Option<&Path>, helpers: Option<&Path>) -> Client {
    Client::builder()
        .docker_config(config.map(Path::to_path_buf))
        .credential_helper_dir(helpers.map(Path::to_path_buf))
        .certs_dir(None)
        .connect_timeout(Duration::from_secs(5))
        .response_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

#[test]
fn helper_get_store_erase_round_trip() {
    let dir = helper_dir();
    let helper = CredentialHelper::new("berthtest", Some(dir.path()));
    assert_eq!(helper.get("reg.example:5000").expect("get"), None);
    helper
        .store("reg.example:5000", &Credentials::new("u", "p w\"x"))
        .expect("store");
    helper
        .store("docker.io", &Credentials::new("<token>", "refresh-123"))
        .expect("store hub");
    assert_eq!(
        helper.get("reg.example:5000").expect("get"),
        Some(Credentials::new("u", "p w\"x"))
    );
    // Docker Hub is stored under its historical server URL.
    assert!(dir.path().join("store/https___index.docker.io_v1_").exists());
    let hub = helper.get("docker.io").expect("get hub").expect("hub creds");
    assert!(hub.is_identity_token());
    helper.erase("reg.example:5000").expect("erase");
    assert_eq!(helper.get("reg.example:5000").expect("get"), None);
    helper.erase("reg.example:5000").expect("erasing nothing is fine");
    assert_eq!(
        calls(dir.path()),
        ["get", "store", "store", "get", "get", "erase", "get", "erase"]
    );

    // A failing helper and a missing one: errors naming helper, action and registry.
    let err = CredentialHelper::new("broken", Some(dir.path()))
        .get("reg.example:5000")
        .expect_err("broken helper");
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::CredentialHelper { .. }), "{msg}");
    assert!(
        msg.contains("docker-credential-broken") && msg.contains("get") && msg.contains("reg.example:5000"),
        "{msg}"
    );
    assert!(msg.contains("keychain is locked"), "{msg}");
    let err = CredentialHelper::new("absent", Some(dir.path()))
        .get("reg.example")
        .expect_err("missing helper");
    assert!(err.to_string().contains("docker-credential-absent"), "{err}");
}

#[test]
fn client_reads_creds_store_and_cred_helpers() {
    let dir = helper_dir();
    let helper = CredentialHelper::new("berthtest", Some(dir.path()));
    helper
        .store("store.example", &Credentials::new("from-store", "1"))
        .expect("store");
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"credsStore":"berthtest","credHelpers":{"broken.example":"broken"},
            "auths":{"file.example":{"auth":"ZmlsZTpwdw=="},"tok.example":{"identitytoken":"rt"}}}"#,
    )
    .expect("write config");
    let c = client(Some(&config), Some(dir.path()));
    assert_eq!(
        c.credentials_for("store.example").expect("store creds"),
        Some(Credentials::new("from-store", "1"))
    );
    // The store has nothing for file.example: its auths entry is used.
    assert_eq!(
        c.credentials_for("file.example").expect("file creds"),
        Some(Credentials::new("file", "pw"))
    );
    assert!(c
        .credentials_for("tok.example")
        .expect("token")
        .expect("some")
        .is_identity_token());
    // credHelpers wins over credsStore, and its failure is reported.
    let err = c.credentials_for("broken.example").expect_err("broken helper");
    assert!(err.to_string().contains("broken.example"), "{err}");
    // Builder credentials win over everything, without running a helper.
    let before = calls(dir.path()).len();
    let c = Client::builder()
        .docker_config(Some(config.clone()))
        .credential_helper_dir(Some(dir.path().to_path_buf()))
        .credentials("broken.example", Credentials::new("x", "y"))
        .build()
        .expect("client");
    assert_eq!(
        c.credentials_for("broken.example").expect("explicit"),
        Some(Credentials::new("x", "y"))
    );
    assert_eq!(calls(dir.path()).len(), before);
}

#[test]
fn login_and_logout_with_auths_in_config_file() {
    let reg = basic_registry();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("docker/config.json");
    std::fs::create_dir_all(config.parent().expect("parent")).expect("mkdir");
    let original = r#"{"psFormat":"table {{.ID}}","auths":{"other.example":{"auth":"YTpi"}},"proxies":{"default":{}}}"#;
    std::fs::write(&config, original).expect("seed config");
    let c = client(Some(&config), None);

    // Wrong password: a clear error, and the file untouched.
    let err = login(&config, &reg.addr, USER, "wrong", &c).expect_err("wrong password");
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::Login { .. }), "{msg}");
    assert!(
        msg.contains(&reg.addr) && msg.contains(USER) && msg.contains("401"),
        "{msg}"
    );
    assert_eq!(std::fs::read_to_string(&config).expect("read"), original);

    // Right password: stored as a base64 auths entry, other keys kept, mode 0600.
    login(&config, &reg.addr, USER, PASSWORD, &c).expect("login");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).expect("read")).expect("json");
    assert_eq!(value["psFormat"], "table {{.ID}}");
    assert_eq!(value["proxies"], serde_json::json!({"default": {}}));
    assert_eq!(value["auths"]["other.example"]["auth"], "YTpi");
    assert_eq!(value["auths"][&reg.addr]["auth"], "Ym9iOmNvcnJlY3QtaG9yc2U="); // bob:correct-horse
    assert_eq!(mode(&config), 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(config.parent().expect("parent"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers, ["config.json"], "no temporary files are left");

    // A new client reads them from the file and can push and pull.
    let src = BlobStore::open(dir.path().join("src")).expect("store");
    let dst = BlobStore::open(dir.path().join("dst")).expect("store");
    let img = make_image(&src, "login", "amd64", 2_000);
    let reference = reg.reference("private/app:1");
    let anonymous = client(None, None);
    let err = anonymous
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect_err("anonymous push is refused (positive control for the login)");
    assert!(matches!(err, RegistryError::Denied { status: 401, .. }), "{err}");
    let logged_in = client(Some(&config), None);
    logged_in
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push with stored credentials");
    let pulled = logged_in
        .pull(&reference, &dst, &PullOptions::default())
        .expect("pull with stored credentials");
    assert_eq!(pulled.digest, img.manifest);

    // Logout removes only that entry.
    assert!(logout(&config, &reg.addr, None).expect("logout"));
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).expect("read")).expect("json");
    assert!(value["auths"].get(&reg.addr).is_none(), "{value}");
    assert_eq!(value["auths"]["other.example"]["auth"], "YTpi");
    assert_eq!(value["psFormat"], "table {{.ID}}");
    assert_eq!(mode(&config), 0o600);
    assert!(!logout(&config, &reg.addr, None).expect("second logout"));
    let err = client(Some(&config), None)
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect_err("logged out");
    assert!(matches!(err, RegistryError::Denied { .. }), "{err}");
}

#[test]
fn login_and_logout_through_a_creds_store_helper() {
    let reg = basic_registry();
    let helpers = helper_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.json");
    let original = r#"{"credsStore":"berthtest","currentContext":"x"}"#;
    std::fs::write(&config, original).expect("seed config");
    let c = client(Some(&config), Some(helpers.path()));

    let err = login(&config, &reg.addr, USER, "nope", &c).expect_err("wrong password");
    assert!(matches!(err, RegistryError::Login { .. }), "{err}");
    assert!(!calls(helpers.path()).contains(&"store".to_string()), "nothing stored");

    login(&config, &reg.addr, USER, PASSWORD, &c).expect("login");
    assert_eq!(calls(helpers.path()), ["store"]);
    // The helper holds them; the file is unchanged.
    assert_eq!(std::fs::read_to_string(&config).expect("read"), original);
    assert_eq!(
        CredentialHelper::new("berthtest", Some(helpers.path()))
            .get(&reg.addr)
            .expect("get"),
        Some(Credentials::new(USER, PASSWORD))
    );

    let src = BlobStore::open(dir.path().join("src")).expect("store");
    let img = make_image(&src, "helper", "amd64", 2_000);
    let reference = reg.reference("helped/app:1");
    client(Some(&config), Some(helpers.path()))
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push with credentials from the helper");

    logout(&config, &reg.addr, Some(helpers.path())).expect("logout");
    assert_eq!(
        CredentialHelper::new("berthtest", Some(helpers.path()))
            .get(&reg.addr)
            .expect("get"),
        None
    );
    assert!(calls(helpers.path()).contains(&"erase".to_string()));
    let err = client(Some(&config), Some(helpers.path()))
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect_err("logged out");
    assert!(matches!(err, RegistryError::Denied { .. }), "{err}");
}

#[test]
fn identity_token_is_traded_for_access_tokens() {
    // A fake registry wanting bearer tokens, and a token server that grants one only
    // for the OAuth2 refresh-token form POST (never for a GET with basic auth).
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("store");
    let dst = BlobStore::open(dir.path().join("dst")).expect("store");
    let img = make_image(&src, "idtoken", "amd64", 1_000);
    let tokens =
        registry_util::FakeServer::start(Arc::new(|method: &str, _: &str, headers: &HashMap<String, String>| {
            let form = headers.get("content-type").map(String::as_str) == Some("application/x-www-form-urlencoded");
            if method == "POST" && form {
                Reply::ok(
                    "application/json",
                    br#"{"access_token":"access-xyz","expires_in":300}"#.to_vec(),
                )
            } else {
                Reply::Full {
                    status: 401,
                    headers: vec![],
                    body: b"{}".to_vec(),
                }
            }
        }));
    let realm = format!("http://{}/token", tokens.addr);
    let served = img.clone();
    let registry = registry_util::FakeServer::start(Arc::new(
        move |_: &str, path: &str, headers: &HashMap<String, String>| {
            if headers.get("authorization").map(String::as_str) != Some("Bearer access-xyz") {
                return Reply::Full {
                    status: 401,
                    headers: vec![(
                        "WWW-Authenticate".into(),
                        format!(r#"Bearer realm="{realm}",service="fake""#),
                    )],
                    body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}"#.to_vec(),
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
    let reference = registry.reference("id/app:1");

    // Positive control: a user name and password get no token from this server.
    let err = Client::builder()
        .docker_config(None)
        .credentials(&registry.addr, Credentials::new("u", "p"))
        .build()
        .expect("client")
        .pull(&reference, &dst, &PullOptions::default())
        .expect_err("basic credentials are refused by this token server");
    assert!(matches!(err, RegistryError::Token { .. }), "{err}");

    // An identity token from a helper (user `<token>`) works.
    let helpers = helper_dir();
    CredentialHelper::new("berthtest", Some(helpers.path()))
        .store(&registry.addr, &Credentials::new("<token>", "refresh-abc"))
        .expect("store");
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"credsStore":"berthtest"}"#).expect("config");
    let pulled = client(Some(&config), Some(helpers.path()))
        .pull(&reference, &dst, &PullOptions::default())
        .expect("pull with an identity token");
    assert_eq!(pulled.digest, img.manifest);
    assert!(tokens.count("POST /token") >= 1, "{:?}", tokens.requests());
}

#[test]
fn login_writes_through_a_symlinked_config() {
    // A registry without authentication accepts any login (as with `docker login`).
    let reg = Registry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().join("dotfiles/docker-config.json");
    std::fs::create_dir_all(real.parent().expect("parent")).expect("mkdir");
    std::fs::write(&real, r#"{"detachKeys":"ctrl-e,e"}"#).expect("seed");
    let link = dir.path().join("config.json");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    login(&link, &reg.addr, "anyone", "anything", &client(None, None)).expect("login");
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("lstat")
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
    let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&real).expect("read")).expect("json");
    assert_eq!(value["detachKeys"], "ctrl-e,e");
    assert!(value["auths"][&reg.addr]["auth"].is_string(), "{value}");
    assert_eq!(mode(&real), 0o600);
}
