//! Registry authentication: credentials (given or from `~/.docker/config.json`),
//! `WWW-Authenticate` challenges, and the bearer tokens they lead to, cached per scope.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::error::{RegistryError, Result};

/// A user name and password (or personal access token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// Whether this is an identity token (user name `<token>`, the password being an
    /// OAuth refresh token) rather than a user name and password.
    pub fn is_identity_token(&self) -> bool {
        self.username == super::credentials::IDENTITY_TOKEN_USERNAME
    }

    /// The value of an `Authorization: Basic ...` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The key Docker uses for a registry in `config.json` `auths`, reduced to a host: the
/// scheme and any path are dropped, and Docker Hub's aliases all become `docker.io`.
pub fn normalize_registry_key(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn default_docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

#[derive(serde::Deserialize)]
struct DockerConfigFile {
    #[serde(default)]
    auths: HashMap<String, DockerAuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

/// What a Docker `config.json` says about credentials.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    /// `auths` entries per registry host (an `identitytoken` entry as user `<token>`).
    pub auths: HashMap<String, Credentials>,
    /// `credsStore`: the helper for every registry without a `credHelpers` entry.
    pub creds_store: Option<String>,
    /// `credHelpers`: the helper per registry host.
    pub cred_helpers: HashMap<String, String>,
}

impl DockerConfig {
    /// The name of the credential helper for `registry`, if the config names one.
    pub fn helper_for(&self, registry: &str) -> Option<&str> {
        self.cred_helpers
            .get(&normalize_registry_key(registry))
            .or(self.creds_store.as_ref())
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

#[derive(serde::Deserialize)]
struct DockerAuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Credentials per registry host from a Docker `config.json`'s `auths` (the base64
/// `auth` field, or `username`/`password`). A missing file is no credentials. Helpers
/// (`credsStore`, `credHelpers`) are in [`read_docker_config`]'s answer.
pub fn load_docker_config(path: &Path) -> Result<HashMap<String, Credentials>> {
    Ok(read_docker_config(path)?.auths)
}

/// Everything a Docker `config.json` says about credentials: `auths` (the base64 `auth`
/// field, `username`/`password`, or an `identitytoken`), `credsStore` and
/// `credHelpers`. A missing file is an empty config.
pub fn read_docker_config(path: &Path) -> Result<DockerConfig> {
    let bad = |reason: String| RegistryError::DockerConfig {
        path: path.to_path_buf(),
        reason,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DockerConfig::default()),
        Err(e) => return Err(bad(format!("reading: {e}"))),
    };
    let file: DockerConfigFile = serde_json::from_str(&text).map_err(|e| bad(format!("parsing: {e}")))?;
    let mut out = HashMap::new();
    for (key, entry) in file.auths {
        let creds = if let Some(token) = entry.identitytoken.filter(|t| !t.is_empty()) {
            Credentials::new(super::credentials::IDENTITY_TOKEN_USERNAME, token)
        } else if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| bad(format!("auths[{key:?}].auth is not base64: {e}")))?;
            let raw = String::from_utf8(raw).map_err(|_| bad(format!("auths[{key:?}].auth is not UTF-8")))?;
            let (user, pass) = raw
                .split_once(':')
                .ok_or_else(|| bad(format!("auths[{key:?}].auth is not user:password")))?;
            Credentials::new(user, pass)
        } else if let (Some(u), Some(p)) = (entry.username, entry.password) {
            Credentials::new(u, p)
        } else {
            continue;
        };
        out.insert(normalize_registry_key(&key), creds);
    }
    Ok(DockerConfig {
        auths: out,
        creds_store: file.creds_store,
        cred_helpers: file
            .cred_helpers
            .into_iter()
            .map(|(k, v)| (normalize_registry_key(&k), v))
            .collect(),
    })
}

/// One parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        /// `error="insufficient_scope"` and the like.
        error: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` value such as
/// `Bearer realm="https://auth.example/token",service="reg",scope="repository:x:pull"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            error: params.get("error").cloned(),
        }),
        _ => None,
    }
}

fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ',')));
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Parse a token endpoint's JSON answer into (token, lifetime).
pub(crate) fn parse_token_response(body: &[u8]) -> std::result::Result<(String, Duration), String> {
    let resp: TokenResponse = serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))?;
    let token = resp
        .token
        .or(resp.access_token)
        .filter(|t| !t.is_empty())
        .ok_or("response has no token")?;
    // The spec's default lifetime is 60 s; keep a margin so a token never expires in flight.
    let secs = resp.expires_in.unwrap_or(60).max(60);
    Ok((token, Duration::from_secs(secs.saturating_sub(10))))
}

/// What the client knows about each registry's authentication.
#[derive(Default)]
pub(crate) struct AuthState {
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl AuthState {
    pub fn challenge(&self, registry: &str) -> Option<Challenge> {
        lock(&self.challenges).get(registry).cloned()
    }

    pub fn set_challenge(&self, registry: &str, challenge: Challenge) {
        lock(&self.challenges).insert(registry.to_string(), challenge);
    }

    pub fn token(&self, registry: &str, scope: &str) -> Option<String> {
        let key = (registry.to_string(), scope.to_string());
        let mut tokens = lock(&self.tokens);
        match tokens.get(&key) {
            Some((t, expires)) if Instant::now() < *expires => Some(t.clone()),
            Some(_) => {
                tokens.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn set_token(&self, registry: &str, scope: &str, token: String, lifetime: Duration) {
        lock(&self.tokens).insert(
            (registry.to_string(), scope.to_string()),
            (token, Instant::now() + lifetime),
        );
    }

    pub fn forget_token(&self, registry: &str, scope: &str) {
        lock(&self.tokens).remove(&(registry.to_string(), scope.to_string()));
    }
}

/// Lock a mutex, ignoring poisoning: the maps it guards stay consistent on every path.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull",error="insufficient_scope""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                error: Some("insufficient_scope".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn normalizes_docker_config_keys() {
        assert_eq!(normalize_registry_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_registry_key("http://localhost:5000"), "localhost:5000");
        assert_eq!(normalize_registry_key("quay.io"), "quay.io");
    }

    #[test]
    fn loads_docker_config_auths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},
                "reg.example:5000":{"username":"u","password":"p"},"empty.example":{}},
               "credsStore":"desktop"}"#,
        )
        .expect("write");
        let creds = load_docker_config(&path).expect("load");
        assert_eq!(creds["docker.io"], Credentials::new("user", "pa:ss"));
        assert_eq!(creds["reg.example:5000"], Credentials::new("u", "p"));
        assert_eq!(creds.len(), 2);
        assert!(load_docker_config(&dir.path().join("missing.json"))
            .expect("missing")
            .is_empty());
        std::fs::write(&path, r#"{"auths":{"x":{"auth":"!!"}}}"#).expect("write");
        let err = load_docker_config(&path).expect_err("bad base64");
        assert!(err.to_string().contains("config.json"), "{err}");
    }

    #[test]
    fn token_response_and_debug_redaction() {
        let (t, life) = parse_token_response(br#"{"access_token":"abc","expires_in":300}"#).expect("token");
        assert_eq!(t, "abc");
        assert_eq!(life, Duration::from_secs(290));
        assert!(parse_token_response(b"{}").is_err());
        let dbg = format!("{:?}", Credentials::new("me", "secret"));
        assert!(!dbg.contains("secret"), "{dbg}");
    }
}
