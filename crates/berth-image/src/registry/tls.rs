//! TLS for registry connections: the ureq agents a client uses (proxied or direct,
//! verified or not), and per-registry CAs and client certificates from Docker's
//! `certs.d` directories.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

use super::auth::lock;
use super::client::Client;
use super::endpoint::{is_loopback, HookResolver, ResolveFn};
use super::error::{RegistryError, Result};

/// What every agent of a client shares.
pub(super) struct AgentSettings {
    pub user_agent: String,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub read_timeout: Duration,
    pub system_roots: Vec<Certificate<'static>>,
    pub resolver: Option<Arc<ResolveFn>>,
}

impl AgentSettings {
    pub fn agent(
        &self,
        extra_cas: &[Certificate<'static>],
        client_cert: Option<ClientCert>,
        proxy: bool,
        verify: bool,
    ) -> ureq::Agent {
        let mut roots = self.system_roots.clone();
        roots.extend(extra_cas.iter().cloned());
        let roots = if roots.is_empty() {
            RootCerts::WebPki
        } else {
            RootCerts::from(roots)
        };
        let builder = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(self.user_agent.as_str())
            .timeout_connect(Some(self.connect_timeout))
            .timeout_recv_response(Some(self.response_timeout))
            .timeout_per_read(Some(self.read_timeout))
            .timeout_per_write(Some(self.read_timeout))
            .tls_config(
                TlsConfig::builder()
                    .root_certs(roots)
                    .client_cert(client_cert)
                    .disable_verification(!verify)
                    .build(),
            );
        let builder = if proxy { builder } else { builder.proxy(None) };
        match &self.resolver {
            Some(r) => ureq::Agent::with_parts(
                builder.build(),
                ureq::unversioned::transport::DefaultConnector::new(),
                HookResolver(r.clone()),
            ),
            None => ureq::Agent::new_with_config(builder.build()),
        }
    }
}

/// The CAs (`*.crt`) and client certificate pairs (`<name>.cert` + `<name>.key`) of one
/// registry's certs.d directory. Only the first pair (by name) is used, as Go's TLS
/// client presents one certificate.
fn load_certs_dir(registry: &str, dir: &Path) -> Result<(Vec<Certificate<'static>>, Option<ClientCert>)> {
    let bad = |path: &Path, reason: String| RegistryError::Certs {
        registry: registry.to_string(),
        path: path.to_path_buf(),
        reason,
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad(dir, format!("reading: {e}")))?
        .map(|e| e.map(|e| e.path()).map_err(|e| bad(dir, format!("reading: {e}"))))
        .collect::<Result<_>>()?;
    names.sort();
    let mut cas = Vec::new();
    let mut client = None;
    for path in &names {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        match ext {
            "crt" => {
                let pem = std::fs::read(path).map_err(|e| bad(path, format!("reading: {e}")))?;
                let before = cas.len();
                for item in ureq::tls::parse_pem(&pem) {
                    if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| bad(path, format!("parsing: {e}")))? {
                        cas.push(c);
                    }
                }
                if cas.len() == before {
                    return Err(bad(path, "has no PEM certificate".to_string()));
                }
            }
            "cert" if client.is_none() => {
                let key_path = path.with_extension("key");
                if !key_path.exists() {
                    return Err(bad(
                        path,
                        format!("client certificate without its key {}", key_path.display()),
                    ));
                }
                let pem = std::fs::read(path).map_err(|e| bad(path, format!("reading: {e}")))?;
                let mut chain = Vec::new();
                for item in ureq::tls::parse_pem(&pem) {
                    if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| bad(path, format!("parsing: {e}")))? {
                        chain.push(c);
                    }
                }
                if chain.is_empty() {
                    return Err(bad(path, "has no PEM certificate".to_string()));
                }
                let key_pem = std::fs::read(&key_path).map_err(|e| bad(&key_path, format!("reading: {e}")))?;
                let key = PrivateKey::from_pem(&key_pem).map_err(|e| bad(&key_path, format!("parsing: {e}")))?;
                client = Some(ClientCert::new_with_certs(&chain, key));
            }
            "key" if !path.with_extension("cert").exists() => {
                return Err(bad(path, "client key without its certificate (.cert)".to_string()));
            }
            _ => {}
        }
    }
    Ok((cas, client))
}

impl Client {
    /// `<certs_dir>/<registry>/`, if it exists.
    pub(super) fn registry_certs_dir(&self, registry: &str) -> Option<PathBuf> {
        let dir = self.certs_dir.as_ref()?.join(registry);
        dir.is_dir().then_some(dir)
    }

    /// The agent for requests to `host` (`host[:port]` of the URL).
    pub(super) fn agent_for(&self, host: &str) -> Result<ureq::Agent> {
        let loopback = is_loopback(host);
        let security = self.security(host);
        let dir = self.registry_certs_dir(host).filter(|_| !security.is_insecure());
        let Some(dir) = dir else {
            return Ok(match (security.is_insecure(), loopback) {
                (true, true) => self.insecure_direct.clone(),
                (true, false) => self.insecure_agent.clone(),
                (false, true) => self.direct.clone(),
                (false, false) => self.agent.clone(),
            });
        };
        let mut agents = lock(&self.tls_agents);
        if let Some(agent) = agents.get(host) {
            return Ok(agent.clone());
        }
        let (cas, client_cert) = load_certs_dir(host, &dir)?;
        let agent = self.settings.agent(&cas, client_cert, !loopback, true);
        agents.insert(host.to_string(), agent.clone());
        Ok(agent)
    }
}
