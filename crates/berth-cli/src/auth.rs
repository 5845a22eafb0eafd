//! Registry logins in docker's config.json (`auths`), and the `X-Registry-Auth` header
//! the daemon takes them in. Credential helpers (credsStore) are not supported: berth
//! reads and writes the `auth` entries only.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// `--config`, else `$DOCKER_CONFIG`, else `~/.docker` (shared with docker, so one login
/// serves both).
pub fn config_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(d) = flag {
        return d.to_path_buf();
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".docker")
}

pub struct Config {
    path: PathBuf,
    doc: Value,
}

impl Config {
    pub fn load(dir: &Path) -> Result<Config> {
        let path = dir.join("config.json");
        let doc = match std::fs::read(&path) {
            Ok(b) if !b.iter().all(u8::is_ascii_whitespace) => {
                serde_json::from_slice(&b).map_err(|e| Error::msg(format!("read {}: {e}", path.display())))?
            }
            Ok(_) => json!({}),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
            Err(e) => return Err(Error::msg(format!("read {}: {e}", path.display()))),
        };
        Ok(Config { path, doc })
    }

    /// (user, password) stored for `server`.
    pub fn credentials(&self, server: &str) -> Option<(String, String)> {
        let entry = &self.doc["auths"][server];
        if let Some(t) = entry["identitytoken"].as_str().filter(|t| !t.is_empty()) {
            return Some(("<token>".into(), t.to_string()));
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(entry["auth"].as_str()?.trim())
            .ok()?;
        let s = String::from_utf8(raw).ok()?;
        let (u, p) = s.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    }

    pub fn has(&self, server: &str) -> bool {
        !self.doc["auths"][server].is_null()
    }

    pub fn set(&mut self, server: &str, user: &str, password: &str) {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        if !self.doc["auths"].is_object() {
            self.doc["auths"] = json!({});
        }
        self.doc["auths"][server] = json!({ "auth": auth });
    }

    pub fn remove(&mut self, server: &str) {
        if let Some(a) = self.doc["auths"].as_object_mut() {
            a.remove(server);
        }
    }

    /// Written whole to a temporary file and renamed, mode 0600 (it holds passwords).
    pub fn save(&self) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::msg(format!("create {}: {e}", dir.display())))?;
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&self.doc).unwrap_or_default();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::msg(format!("write {}: {e}", tmp.display())))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::msg(format!("write {}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::msg(format!("replace {}: {e}", self.path.display())))
    }
}

/// docker's encoding of an AuthConfig for `X-Registry-Auth`: base64url of its JSON.
pub fn header_value(user: &str, password: &str, server: &str) -> String {
    let doc = json!({"username": user, "password": password, "serveraddress": server});
    base64::engine::general_purpose::URL_SAFE.encode(doc.to_string())
}

/// The header for `server` from the stored logins (`e30=`, i.e. `{}`, when none).
pub fn registry_header(dir: &Path, server: &str) -> String {
    match Config::load(dir).ok().and_then(|c| c.credentials(server)) {
        Some((u, p)) => header_value(&u, &p, server),
        None => base64::engine::general_purpose::URL_SAFE.encode("{}"),
    }
}
