//! Credentials kept the way Docker keeps them: `auths` entries in `config.json`, or
//! external `docker-credential-<name>` helpers named by `credsStore` (the default for
//! every registry) and `credHelpers` (per registry), spoken to with the helper protocol
//! (`get` / `store` / `erase`, the server URL or a JSON record on stdin). Also
//! [`login`] and [`logout`], which write there.
//!
//! A helper answering with the user name `<token>` hands out an identity token (an OAuth
//! refresh token); [`Credentials::is_identity_token`] tells, and the client then asks the
//! registry's token server for access tokens with `grant_type=refresh_token`.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;

use super::auth::{self, Challenge};
use super::auth::{normalize_registry_key, Credentials};
use super::client::{encode, Client, Payload};
use super::error::{error_detail, read_limited, RegistryError, Result};

/// The user name a credential helper (or an `identitytoken` entry) uses for an identity token.
pub const IDENTITY_TOKEN_USERNAME: &str = "<token>";

/// The message `docker-credential-*` helpers print when they hold nothing for a server.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The server URL Docker stores a registry's credentials under: Docker Hub's historical
/// `https://index.docker.io/v1/`, every other registry's `host[:port]`.
pub fn server_url(registry: &str) -> String {
    match normalize_registry_key(registry).as_str() {
        "docker.io" => "https://index.docker.io/v1/".to_string(),
        other => other.to_string(),
    }
}

/// One `docker-credential-<name>` program.
#[derive(Debug, Clone)]
pub struct CredentialHelper {
    name: String,
    program: PathBuf,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperRecord {
    #[serde(default)]
    username: String,
    #[serde(default)]
    secret: String,
}

impl CredentialHelper {
    /// The helper `docker-credential-<name>`, found in `dir` if given, else on `PATH`.
    pub fn new(name: &str, dir: Option<&Path>) -> CredentialHelper {
        let file = format!("docker-credential-{name}");
        CredentialHelper {
            name: name.to_string(),
            program: dir.map_or_else(|| PathBuf::from(&file), |d| d.join(&file)),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    fn error(&self, action: &str, registry: &str, reason: String) -> RegistryError {
        RegistryError::CredentialHelper {
            helper: self.program.display().to_string(),
            action: action.to_string(),
            registry: registry.to_string(),
            reason,
        }
    }

    /// Run `<program> <action>` with `input` on stdin: (success, stdout, stderr).
    fn run(&self, action: &str, registry: &str, input: &[u8]) -> Result<(bool, String, String)> {
        let mut child = Command::new(&self.program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.error(action, registry, format!("cannot run it: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper may exit without reading its input; the exit status tells.
            let _ = stdin.write_all(input);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| self.error(action, registry, format!("waiting for it: {e}")))?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }

    /// `get`: the credentials stored for `registry`, `None` if the helper has none.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>> {
        let url = server_url(registry);
        let (ok, stdout, stderr) = self.run("get", registry, url.as_bytes())?;
        if !ok {
            if stdout.contains(NOT_FOUND) || stderr.contains(NOT_FOUND) {
                return Ok(None);
            }
            return Err(self.error("get", registry, failure(&stdout, &stderr)));
        }
        let record: HelperRecord =
            serde_json::from_str(&stdout).map_err(|e| self.error("get", registry, format!("bad JSON answer: {e}")))?;
        if record.username.is_empty() && record.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials::new(record.username, record.secret)))
    }

    /// `store`: keep `credentials` for `registry`.
    pub fn store(&self, registry: &str, credentials: &Credentials) -> Result<()> {
        let record = serde_json::json!({
            "ServerURL": server_url(registry),
            "Username": credentials.username,
            "Secret": credentials.password,
        });
        let (ok, stdout, stderr) = self.run("store", registry, record.to_string().as_bytes())?;
        if !ok {
            return Err(self.error("store", registry, failure(&stdout, &stderr)));
        }
        Ok(())
    }

    /// `erase`: forget `registry`'s credentials (having none is not an error).
    pub fn erase(&self, registry: &str) -> Result<()> {
        let (ok, stdout, stderr) = self.run("erase", registry, server_url(registry).as_bytes())?;
        if !(ok || stdout.contains(NOT_FOUND) || stderr.contains(NOT_FOUND)) {
            return Err(self.error("erase", registry, failure(&stdout, &stderr)));
        }
        Ok(())
    }
}

fn failure(stdout: &str, stderr: &str) -> String {
    let text = if stderr.is_empty() { stdout } else { stderr };
    if text.is_empty() {
        "it failed without a message".to_string()
    } else {
        format!("it failed: {}", text.chars().take(300).collect::<String>())
    }
}

/// The helper `config` (a parsed `config.json`) names for `registry`: its `credHelpers`
/// entry, else `credsStore`.
pub(crate) fn helper_name(config: &serde_json::Value, registry: &str) -> Option<String> {
    let registry = normalize_registry_key(registry);
    let per_registry = config
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|h| h.iter().find(|(k, _)| normalize_registry_key(k) == registry))
        .and_then(|(_, v)| v.as_str());
    per_registry
        .or_else(|| config.get("credsStore").and_then(|s| s.as_str()))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Read `path` as a JSON object (a missing file is an empty one).
fn read_config_value(path: &Path) -> Result<serde_json::Value> {
    let bad = |reason: String| RegistryError::DockerConfig {
        path: path.to_path_buf(),
        reason,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(serde_json::json!({})),
        Err(e) => return Err(bad(format!("reading: {e}"))),
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("parsing: {e}")))?;
    if !value.is_object() {
        return Err(bad("is not a JSON object".to_string()));
    }
    Ok(value)
}

/// Replace `path` with `value` atomically: a temporary file beside it (mode 0600),
/// written and fsynced, renamed over it, and the directory fsynced. A symlinked config
/// is written where the link points, as Docker does. (Two writers at once each replace
/// the file whole: the last one wins, as with Docker.)
fn write_config_value(path: &Path, value: &serde_json::Value) -> Result<()> {
    let resolved = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|e| RegistryError::DockerConfig {
                path: path.to_path_buf(),
                reason: format!("resolving the symlink: {e}"),
            })?
        }
        _ => path.to_path_buf(),
    };
    let path = resolved.as_path();
    let bad = |what: &str, e: std::io::Error| RegistryError::DockerConfig {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| bad("creating its directory", e))?;
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map_or_else(|| "config.json".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut text = serde_json::to_vec_pretty(value).map_err(|e| bad("encoding", std::io::Error::other(e)))?;
    text.push(b'\n');
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| bad("creating a temporary file", e))?;
        file.write_all(&text).map_err(|e| bad("writing", e))?;
        file.sync_all().map_err(|e| bad("syncing", e))?;
        std::fs::rename(&tmp, path).map_err(|e| bad("renaming the temporary file over it", e))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            d.sync_all().map_err(|e| bad("syncing its directory", e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Check `username`/`password` against `registry` (as `docker login` does: `GET /v2/`
/// with basic auth, or a token from the registry's token server), then keep them: with
/// the credential helper the config at `config_path` names for the registry (found in
/// the client's [`credential_helper_dir`](super::ClientBuilder::credential_helper_dir)),
/// else as a base64 `auths` entry. Other keys of the file are kept as they are; the file
/// is replaced atomically with mode 0600. On a failed check nothing is written.
pub fn login(config_path: &Path, registry: &str, username: &str, password: &str, client: &Client) -> Result<()> {
    let registry = normalize_registry_key(registry);
    let credentials = Credentials::new(username, password);
    client.check_login(&registry, &credentials)?;
    let mut config = read_config_value(config_path)?;
    if let Some(name) = helper_name(&config, &registry) {
        CredentialHelper::new(&name, client.credential_helper_dir()).store(&registry, &credentials)?;
    } else {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        if let Some(obj) = config.as_object_mut() {
            let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
            if !auths.is_object() {
                *auths = serde_json::json!({});
            }
            if let Some(auths) = auths.as_object_mut() {
                auths.retain(|k, _| normalize_registry_key(k) != registry);
                auths.insert(server_url(&registry), serde_json::json!({ "auth": auth }));
            }
        }
        write_config_value(config_path, &config)?;
    }
    client.remember_credentials(&registry, credentials);
    Ok(())
}

/// Forget `registry`'s credentials: `erase` them from the helper the config names for it
/// (found in `helper_dir`, else on `PATH`) and remove its `auths` entries. Returns
/// whether the config file had an entry for it.
pub fn logout(config_path: &Path, registry: &str, helper_dir: Option<&Path>) -> Result<bool> {
    let registry = normalize_registry_key(registry);
    let mut config = read_config_value(config_path)?;
    if let Some(name) = helper_name(&config, &registry) {
        CredentialHelper::new(&name, helper_dir).erase(&registry)?;
    }
    let mut removed = false;
    if let Some(auths) = config.get_mut("auths").and_then(|a| a.as_object_mut()) {
        let before = auths.len();
        auths.retain(|k, _| normalize_registry_key(k) != registry);
        removed = auths.len() != before;
    }
    if removed {
        write_config_value(config_path, &config)?;
    }
    Ok(removed)
}

impl Client {
    /// Check credentials as `docker login` does: `GET /v2/`; if the registry asks for
    /// basic auth, again with them; if it asks for a bearer token, ask its token server
    /// for one (no scope) with them.
    pub fn check_login(&self, registry: &str, credentials: &Credentials) -> Result<()> {
        let fail = |reason: String| RegistryError::Login {
            registry: registry.to_string(),
            username: credentials.username.clone(),
            reason,
        };
        let base = self.endpoint(registry).base_url;
        let url = format!("{base}/v2/");
        let resp = self.raw("GET", &url, &[], None, &mut Payload::Empty)?;
        let status = resp.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        if status != 401 {
            return Err(fail(format!("GET {url} returned HTTP {status}{}", error_detail(resp))));
        }
        let challenge = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(auth::parse_challenge)
            .ok_or_else(|| fail(format!("GET {url} returned HTTP 401 without a usable challenge")))?;
        match challenge {
            Challenge::Basic => {
                let header = credentials.basic_header();
                let resp = self.raw("GET", &url, &[], Some(&header), &mut Payload::Empty)?;
                match resp.status().as_u16() {
                    200 => Ok(()),
                    s => Err(fail(format!(
                        "GET {url} with basic auth returned HTTP {s}{}",
                        error_detail(resp)
                    ))),
                }
            }
            Challenge::Bearer { realm, service, .. } => {
                let mut token_url = realm.clone();
                token_url.push(if realm.contains('?') { '&' } else { '?' });
                let mut params = vec![
                    format!("account={}", encode(&credentials.username)),
                    "client_id=berth".to_string(),
                ];
                params.extend(service.iter().map(|s| format!("service={}", encode(s))));
                token_url.push_str(&params.join("&"));
                let header = credentials.basic_header();
                let resp = self.raw("GET", &token_url, &[], Some(&header), &mut Payload::Empty)?;
                let status = resp.status().as_u16();
                if status != 200 {
                    return Err(fail(format!(
                        "token server {realm} returned HTTP {status}{}",
                        error_detail(resp)
                    )));
                }
                let body = read_limited(resp, 1024 * 1024)
                    .map_err(|e| fail(format!("reading the answer of token server {realm}: {e}")))?;
                auth::parse_token_response(&body).map_err(|e| fail(format!("token server {realm}: {e}")))?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_names_and_server_urls() {
        let config = serde_json::json!({"credsStore": "def", "credHelpers": {"https://quay.io": "q"}});
        assert_eq!(helper_name(&config, "quay.io").as_deref(), Some("q"));
        assert_eq!(helper_name(&config, "other:5000").as_deref(), Some("def"));
        assert_eq!(helper_name(&serde_json::json!({}), "x"), None);
        assert_eq!(server_url("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(server_url("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
