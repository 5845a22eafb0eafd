//! Registry logins in docker's config.json, and the `X-Registry-Auth` header the daemon
//! takes them in. As docker: a login goes to the credential helper named by `credHelpers`
//! (per registry) or `credsStore` (`docker-credential-<name>` on PATH, with its
//! store/get/erase protocol), and `auths` then keeps an empty entry for it; without a
//! helper, `auths` holds the base64 `auth` itself.

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

    /// The credential helper for `server`, if config.json names one.
    fn helper(&self, server: &str) -> Option<String> {
        let named = |v: &Value| v.as_str().filter(|h| !h.is_empty()).map(String::from);
        named(&self.doc["credHelpers"][server]).or_else(|| named(&self.doc["credsStore"]))
    }

    /// (user, password) stored for `server`.
    pub fn credentials(&self, server: &str) -> Option<(String, String)> {
        if let Some(h) = self.helper(server) {
            // A helper that has nothing for the server says so with a failure.
            let out = run_helper(&h, "get", server).ok()?;
            let v: Value = serde_json::from_str(&out).ok()?;
            let (user, secret) = (v["Username"].as_str()?, v["Secret"].as_str()?);
            return (!secret.is_empty()).then(|| (user.to_string(), secret.to_string()));
        }
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
        !self.doc["auths"][server].is_null() || (self.helper(server).is_some() && self.credentials(server).is_some())
    }

    /// Store a login: in the helper (config.json keeps an empty `auths` entry), or as
    /// `auth` in config.json.
    pub fn set(&mut self, server: &str, user: &str, password: &str) -> Result<()> {
        let entry = match self.helper(server) {
            Some(h) => {
                let input = json!({"ServerURL": server, "Username": user, "Secret": password}).to_string();
                run_helper(&h, "store", &input)?;
                json!({})
            }
            None => {
                let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                json!({ "auth": auth })
            }
        };
        if !self.doc["auths"].is_object() {
            self.doc["auths"] = json!({});
        }
        self.doc["auths"][server] = entry;
        Ok(())
    }

    /// Forget a login (a helper that cannot erase it is a warning, as in docker).
    pub fn remove(&mut self, server: &str) {
        if let Some(h) = self.helper(server) {
            if let Err(e) = run_helper(&h, "erase", server) {
                eprintln!("WARNING: could not erase credentials: {server}: {e}");
            }
        }
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

/// `docker-credential-<helper> <action>` with `input` on stdin: its stdout, or what it
/// said when it failed.
fn run_helper(helper: &str, action: &str, input: &str) -> Result<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let prog = format!("docker-credential-{helper}");
    let mut child = Command::new(&prog)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::msg(format!("credential helper {prog}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::msg(format!("credential helper {prog}: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        return Ok(text);
    }
    let why = if text.is_empty() {
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    } else {
        text
    };
    Err(Error::msg(format!("credential helper {prog} {action}: {why}")))
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
