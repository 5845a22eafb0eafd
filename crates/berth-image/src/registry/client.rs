//! [`Client`]: configuration, endpoint resolution and the authenticated request loop
//! (anonymous, basic, or bearer tokens obtained from the registry's challenge).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ureq::http::Response;
use ureq::tls::Certificate;
use ureq::{Body, SendBody};

use super::auth::{self, lock, AuthState, Challenge, Credentials, DockerConfig};
use super::credentials::CredentialHelper;
use super::endpoint::{self, Endpoint, Policy, RegistryConfig, ResolveFn, Security};
use super::error::{error_detail, read_limited, transport_error, RegistryError, Result};
use super::tls::AgentSettings;
use crate::digest::Digest;

const DEFAULT_UPLOAD_CHUNK: u64 = 16 * 1024 * 1024;
/// Where Docker reads per-registry CAs and client certificates.
pub const DEFAULT_CERTS_DIR: &str = "/etc/docker/certs.d";

/// Builds a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    registry_config: RegistryConfig,
    resolver: Option<Arc<ResolveFn>>,
    credentials: HashMap<String, Credentials>,
    docker_config: Option<PathBuf>,
    credential_helper_dir: Option<PathBuf>,
    certs_dir: Option<PathBuf>,
    connect_timeout: Duration,
    response_timeout: Duration,
    read_timeout: Duration,
    parallel: usize,
    upload_chunk: u64,
    user_agent: String,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            registry_config: RegistryConfig::default(),
            resolver: None,
            credentials: HashMap::new(),
            docker_config: auth::default_docker_config_path(),
            credential_helper_dir: None,
            certs_dir: Some(PathBuf::from(DEFAULT_CERTS_DIR)),
            connect_timeout: Duration::from_secs(30),
            response_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(60),
            parallel: 3,
            upload_chunk: DEFAULT_UPLOAD_CHUNK,
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

impl ClientBuilder {
    /// Add an `insecure-registries` entry: `host[:port]` (as in image references) or a
    /// CIDR. Such registries are reached over HTTPS without certificate verification, or
    /// plain HTTP when they do not speak TLS. Loopback registries (`127.0.0.0/8`, `::1`)
    /// always are insecure, as in Docker.
    pub fn insecure(mut self, registry: impl Into<String>) -> Self {
        self.registry_config.insecure_registries.push(registry.into());
        self
    }

    /// Mirrors and insecure registries, as the engine reads them from `daemon.json`
    /// (replacing any [`insecure`](Self::insecure) entries given before). See
    /// [`endpoint`](super::endpoint) for what they do.
    pub fn registry_config(mut self, config: RegistryConfig) -> Self {
        self.registry_config = config;
        self
    }

    /// How host names become addresses, both to connect and to match insecure CIDRs
    /// (default: the system resolver). Tests use this to keep all traffic on loopback.
    pub fn resolver(mut self, resolve: Arc<ResolveFn>) -> Self {
        self.resolver = Some(resolve);
        self
    }

    /// Credentials for `registry` (`docker.io`, `host:port`), taking precedence over
    /// the Docker config file.
    pub fn credentials(mut self, registry: &str, credentials: Credentials) -> Self {
        self.credentials
            .insert(auth::normalize_registry_key(registry), credentials);
        self
    }

    /// Docker `config.json` to read `auths` from (default `~/.docker/config.json`);
    /// `None` reads none.
    pub fn docker_config(mut self, path: Option<PathBuf>) -> Self {
        self.docker_config = path;
        self
    }

    /// The directory `docker-credential-<name>` helpers (named by the Docker config's
    /// `credsStore` / `credHelpers`) are run from; `None` (the default) finds them on `PATH`.
    pub fn credential_helper_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.credential_helper_dir = dir;
        self
    }

    /// Docker's per-registry certificates directory (default `/etc/docker/certs.d`;
    /// `None` reads none). For a registry `host[:port]`, `<dir>/<host[:port]>/` holds
    /// `*.crt` CA certificates (trusted besides the system roots) and `<name>.cert` +
    /// `<name>.key` client certificate pairs, as Docker reads them. A registry with such
    /// a directory is reached over HTTPS even on a loopback address.
    pub fn certs_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.certs_dir = dir;
        self
    }

    /// Time allowed to open a connection (TLS handshake included). Default 30 s.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Time allowed from sending a request to receiving the response headers. Default 60 s.
    pub fn response_timeout(mut self, t: Duration) -> Self {
        self.response_timeout = t;
        self
    }

    /// Longest a single read or write may stall (a large layer may take any time as long
    /// as bytes keep flowing). Default 60 s.
    pub fn read_timeout(mut self, t: Duration) -> Self {
        self.read_timeout = t;
        self
    }

    /// How many blobs a pull downloads at once. Default 3 (as Docker).
    pub fn parallel_downloads(mut self, n: usize) -> Self {
        self.parallel = n.max(1);
        self
    }

    /// Blobs larger than this are uploaded in `PATCH` chunks of this size; smaller ones
    /// with one `PUT`. Default 16 MiB.
    pub fn upload_chunk_size(mut self, bytes: u64) -> Self {
        self.upload_chunk = bytes.max(1);
        self
    }

    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    pub fn build(self) -> Result<Client> {
        let policy = Policy::new(&self.registry_config)?;
        let docker_config = match &self.docker_config {
            Some(path) => auth::read_docker_config(path)?,
            None => DockerConfig::default(),
        };
        // System roots, so that a host's own CAs work; per-registry CAs from the certs
        // directory extend them (see `agent_for`). Unreadable system certificates are
        // skipped, as every TLS client does.
        let native = rustls_native_certs::load_native_certs();
        let system_roots: Vec<Certificate<'static>> = native
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let settings = AgentSettings {
            user_agent: self.user_agent.clone(),
            connect_timeout: self.connect_timeout,
            response_timeout: self.response_timeout,
            read_timeout: self.read_timeout,
            system_roots,
            resolver: self.resolver.clone(),
        };
        // Proxies come from HTTP(S)_PROXY / NO_PROXY, as for Docker; like Go's
        // ProxyFromEnvironment, loopback registries are never proxied.
        Ok(Client {
            agent: settings.agent(&[], None, true, true),
            direct: settings.agent(&[], None, false, true),
            insecure_agent: settings.agent(&[], None, true, false),
            insecure_direct: settings.agent(&[], None, false, false),
            settings,
            tls_agents: Mutex::new(HashMap::new()),
            certs_dir: self.certs_dir,
            policy,
            resolve: self.resolver.unwrap_or_else(|| Arc::new(endpoint::system_resolve)),
            security: Mutex::new(HashMap::new()),
            schemes: Mutex::new(HashMap::new()),
            explicit_credentials: self.credentials,
            docker_config,
            credential_helper_dir: self.credential_helper_dir,
            credential_cache: Mutex::new(HashMap::new()),
            auth: AuthState::default(),
            inflight: Mutex::new(HashSet::new()),
            inflight_done: Condvar::new(),
            sources: Mutex::new(HashMap::new()),
            parallel: self.parallel,
            upload_chunk: self.upload_chunk,
        })
    }
}

/// One repository of one registry: what every request is about.
#[derive(Debug, Clone)]
pub(crate) struct Repo {
    pub registry: String,
    pub name: String,
    pub base_url: String,
}

impl Repo {
    pub fn at(endpoint: &Endpoint, name: &str) -> Repo {
        Repo {
            registry: endpoint.registry.clone(),
            name: name.to_string(),
            base_url: endpoint.base_url.clone(),
        }
    }

    pub fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base_url, self.name)
    }

    /// Resolve an upload `Location` (absolute, or relative to the registry).
    pub fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base_url)
        } else {
            format!("{}/{location}", self.base_url)
        }
    }
}

/// The access a request needs, which decides the token scope.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Access<'a> {
    Pull,
    Push { mount_from: Option<&'a str> },
}

impl Access<'_> {
    fn scopes(&self, name: &str) -> Vec<String> {
        match self {
            Access::Pull => vec![format!("repository:{name}:pull")],
            Access::Push { mount_from } => {
                let mut v = vec![format!("repository:{name}:pull,push")];
                v.extend(mount_from.map(|from| format!("repository:{from}:pull")));
                v
            }
        }
    }

    fn action(&self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push { .. } => "push",
        }
    }
}

/// A request body.
pub(crate) enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A stream of exactly this many bytes (sent with `Content-Length`).
    Stream(&'a mut dyn Read, u64),
}

impl Payload<'_> {
    fn replayable(&self) -> bool {
        !matches!(self, Payload::Stream(..))
    }
}

/// A registry client. Cheap to share between threads (`&Client` is all pulls and pushes
/// need); it caches tokens, challenges and which repository each blob was seen in.
pub struct Client {
    pub(super) agent: ureq::Agent,
    /// The same configuration without a proxy, for loopback hosts.
    pub(super) direct: ureq::Agent,
    /// Both without certificate verification, for insecure registries.
    pub(super) insecure_agent: ureq::Agent,
    pub(super) insecure_direct: ureq::Agent,
    pub(super) settings: AgentSettings,
    /// Agents for registries with a certs.d directory, by registry.
    pub(super) tls_agents: Mutex<HashMap<String, ureq::Agent>>,
    pub(super) certs_dir: Option<PathBuf>,
    policy: Policy,
    resolve: Arc<ResolveFn>,
    /// Decisions of `security`, by registry (they may cost a name lookup).
    security: Mutex<HashMap<String, Security>>,
    /// `http` or `https` for insecure registries, once known.
    schemes: Mutex<HashMap<String, &'static str>>,
    explicit_credentials: HashMap<String, Credentials>,
    docker_config: DockerConfig,
    credential_helper_dir: Option<PathBuf>,
    /// What credential helpers answered, per registry.
    credential_cache: Mutex<HashMap<String, Option<Credentials>>>,
    auth: AuthState,
    inflight: Mutex<HashSet<Digest>>,
    inflight_done: Condvar,
    sources: Mutex<HashMap<(String, Digest), String>>,
    pub(crate) parallel: usize,
    pub(crate) upload_chunk: u64,
}

impl Client {
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client with the default configuration (`~/.docker/config.json` credentials).
    pub fn new() -> Result<Client> {
        ClientBuilder::default().build()
    }

    /// Whether `registry` (`host[:port]`) must be reached over verified HTTPS, as Docker
    /// decides it (see [`endpoint`](super::endpoint)). No network traffic, except a name
    /// lookup through the resolver when a CIDR has to be matched.
    pub fn security(&self, registry: &str) -> Security {
        if let Some(s) = lock(&self.security).get(registry) {
            return s.clone();
        }
        let has_certs = self.registry_certs_dir(registry).is_some();
        let decided = self.policy.security(registry, has_certs, &*self.resolve);
        lock(&self.security).insert(registry.to_string(), decided.clone());
        decided
    }

    /// The Docker Hub mirrors a pull of an image of `registry` tries first (none unless
    /// it is `docker.io`), in order.
    pub fn mirror_endpoints(&self, registry: &str) -> Vec<Endpoint> {
        if !endpoint::is_docker_hub(registry) {
            return Vec::new();
        }
        self.policy
            .mirrors
            .iter()
            .map(|base| Endpoint {
                registry: base.split_once("://").map_or(base.as_str(), |(_, h)| h).to_string(),
                base_url: base.clone(),
                mirror: true,
            })
            .collect()
    }

    /// Where `registry` itself is reached: Docker Hub (`docker.io`) is
    /// `https://registry-1.docker.io`; a secure registry `https://host`; an insecure one
    /// `https://host` if it answers over TLS (unverified), else `http://host`, which the
    /// first call finds out with a `GET /v2/` (Docker's order) and the client remembers.
    pub fn endpoint(&self, registry: &str) -> Endpoint {
        let host = if endpoint::is_docker_hub(registry) {
            endpoint::DOCKER_HUB_API
        } else {
            registry
        };
        let scheme = if self.security(registry).is_insecure() {
            self.insecure_scheme(registry)
        } else {
            "https"
        };
        Endpoint {
            registry: registry.to_string(),
            base_url: format!("{scheme}://{host}"),
            mirror: false,
        }
    }

    fn insecure_scheme(&self, registry: &str) -> &'static str {
        if let Some(s) = lock(&self.schemes).get(registry) {
            return s;
        }
        let url = format!("https://{registry}/v2/");
        match self.raw("GET", &url, &[], None, &mut Payload::Empty) {
            Ok(_) => {
                lock(&self.schemes).insert(registry.to_string(), "https");
                "https"
            }
            // It does not speak TLS: plain HTTP from now on.
            Err(RegistryError::Tls { .. }) => {
                lock(&self.schemes).insert(registry.to_string(), "http");
                "http"
            }
            // Unreachable for now (refused, timed out): try HTTP this time and decide
            // again next time; the request itself reports what is wrong.
            Err(_) => "http",
        }
    }

    /// The directory credential helpers are run from (`None`: `PATH`).
    pub fn credential_helper_dir(&self) -> Option<&Path> {
        self.credential_helper_dir.as_deref()
    }

    /// The credentials used for `registry`: given to the builder, else from the
    /// credential helper the Docker config names for it (`credHelpers`, else
    /// `credsStore`; asked once per client), else its `auths` entry.
    pub fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>> {
        let registry = auth::normalize_registry_key(registry);
        if let Some(c) = self.explicit_credentials.get(&registry) {
            return Ok(Some(c.clone()));
        }
        if let Some(name) = self.docker_config.helper_for(&registry) {
            if let Some(cached) = lock(&self.credential_cache).get(&registry) {
                return Ok(cached
                    .clone()
                    .or_else(|| self.docker_config.auths.get(&registry).cloned()));
            }
            let found = CredentialHelper::new(name, self.credential_helper_dir()).get(&registry)?;
            lock(&self.credential_cache).insert(registry.clone(), found.clone());
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(self.docker_config.auths.get(&registry).cloned())
    }

    /// Use `credentials` for `registry` from now on (after a login).
    pub(crate) fn remember_credentials(&self, registry: &str, credentials: Credentials) {
        lock(&self.credential_cache).insert(auth::normalize_registry_key(registry), Some(credentials));
    }

    pub(crate) fn repo(&self, registry: &str, name: &str) -> Repo {
        Repo::at(&self.endpoint(registry), name)
    }

    /// Remember that `digest` exists in `repo` (a later push elsewhere may mount it).
    pub(crate) fn record_source(&self, repo: &Repo, digest: &Digest) {
        lock(&self.sources).insert((repo.registry.clone(), digest.clone()), repo.name.clone());
    }

    pub(crate) fn known_source(&self, repo: &Repo, digest: &Digest) -> Option<String> {
        lock(&self.sources)
            .get(&(repo.registry.clone(), digest.clone()))
            .filter(|name| **name != repo.name)
            .cloned()
    }

    /// Wait until no other thread of this client works on `digest`, then claim it until
    /// the guard drops: concurrent requests for one blob fetch it once.
    pub(crate) fn claim(&self, digest: &Digest) -> Claim<'_> {
        let mut set = lock(&self.inflight);
        while set.contains(digest) {
            set = self
                .inflight_done
                .wait(set)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        set.insert(digest.clone());
        Claim {
            client: self,
            digest: digest.clone(),
        }
    }

    /// Send a request, authenticating as the registry asks: on a 401 the challenge is
    /// remembered and the request retried once with basic credentials or a bearer token
    /// for `access` (streamed bodies cannot be replayed, so they are sent only after an
    /// earlier request of the same operation has settled authentication).
    pub(crate) fn send(
        &self,
        repo: &Repo,
        access: Access<'_>,
        method: &'static str,
        url: &str,
        headers: &[(&str, String)],
        mut payload: Payload<'_>,
    ) -> Result<Response<Body>> {
        let scope = access.scopes(&repo.name).join(" ");
        let mut retried = false;
        loop {
            let authorization = self.authorization(repo, access, &scope)?;
            let resp = self.raw(method, url, headers, authorization.as_deref(), &mut payload)?;
            let status = resp.status().as_u16();
            if status == 401 && !retried && payload.replayable() {
                let challenge = resp
                    .headers()
                    .get_all("www-authenticate")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(auth::parse_challenge);
                if let Some(challenge) = challenge {
                    let retry = match &challenge {
                        Challenge::Basic => self.credentials_for(&repo.registry)?.is_some(),
                        Challenge::Bearer { .. } => true,
                    };
                    self.auth.forget_token(&repo.registry, &scope);
                    self.auth.set_challenge(&repo.registry, challenge);
                    if retry {
                        retried = true;
                        continue;
                    }
                }
            }
            if status == 401 || status == 403 {
                let detail = error_detail(resp);
                return Err(RegistryError::Denied {
                    registry: repo.registry.clone(),
                    repository: repo.name.clone(),
                    action: access.action().to_string(),
                    status,
                    detail,
                });
            }
            return Ok(resp);
        }
    }

    /// The `Authorization` header for a request, fetching a token if the registry wants one.
    fn authorization(&self, repo: &Repo, access: Access<'_>, scope: &str) -> Result<Option<String>> {
        let Some(challenge) = self.auth.challenge(&repo.registry) else {
            return Ok(None);
        };
        if matches!(challenge, Challenge::Bearer { .. }) {
            if let Some(token) = self.auth.token(&repo.registry, scope) {
                return Ok(Some(format!("Bearer {token}")));
            }
        }
        let creds = self.credentials_for(&repo.registry)?;
        let creds = creds.as_ref();
        match challenge {
            Challenge::Basic => Ok(creds.filter(|c| !c.is_identity_token()).map(Credentials::basic_header)),
            Challenge::Bearer { realm, service, .. } => {
                let mut url = realm.clone();
                url.push(if realm.contains('?') { '&' } else { '?' });
                let mut params: Vec<String> = service.iter().map(|s| format!("service={}", encode(s))).collect();
                params.extend(access.scopes(&repo.name).iter().map(|s| format!("scope={}", encode(s))));
                url.push_str(&params.join("&"));
                let token_err = |reason: String| RegistryError::Token {
                    registry: repo.registry.clone(),
                    realm: realm.clone(),
                    reason,
                };
                let resp = match creds.filter(|c| c.is_identity_token()) {
                    // An identity token is an OAuth refresh token: trade it for an access
                    // token with the OAuth2 form POST, as Docker does.
                    Some(c) => {
                        let mut form = vec![
                            "grant_type=refresh_token".to_string(),
                            format!("refresh_token={}", encode(&c.password)),
                            "client_id=berth".to_string(),
                        ];
                        form.extend(service.iter().map(|s| format!("service={}", encode(s))));
                        form.push(format!("scope={}", encode(scope)));
                        let form = form.join("&");
                        let headers = [("Content-Type", "application/x-www-form-urlencoded".to_string())];
                        self.raw("POST", &realm, &headers, None, &mut Payload::Bytes(form.as_bytes()))?
                    }
                    None => {
                        let basic = creds.map(Credentials::basic_header);
                        self.raw("GET", &url, &[], basic.as_deref(), &mut Payload::Empty)?
                    }
                };
                let status = resp.status().as_u16();
                if status != 200 {
                    let who = if creds.is_some() {
                        "credentials"
                    } else {
                        "anonymous access"
                    };
                    return Err(token_err(format!("HTTP {status} for {who}{}", error_detail(resp))));
                }
                let body = read_limited(resp, 1024 * 1024).map_err(|e| token_err(format!("reading response: {e}")))?;
                let (token, lifetime) = auth::parse_token_response(&body).map_err(token_err)?;
                self.auth.set_token(&repo.registry, scope, token.clone(), lifetime);
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    pub(super) fn raw(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&str, String)],
        authorization: Option<&str>,
        payload: &mut Payload<'_>,
    ) -> Result<Response<Body>> {
        let transport = |source: ureq::Error| transport_error(method, url, source);
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, v.as_str());
        }
        if let Some(a) = authorization {
            builder = builder.header("Authorization", a);
        }
        let run = |builder: ureq::http::request::Builder, body: SendBody<'_>| {
            let request = builder.body(body).map_err(|e| transport(ureq::Error::from(e)))?;
            let host = url
                .split_once("://")
                .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(rest));
            self.agent_for(host)?.run(request).map_err(transport)
        };
        match payload {
            Payload::Empty if matches!(method, "GET" | "HEAD" | "DELETE") => run(builder, SendBody::none()),
            Payload::Empty => run(builder.header("Content-Length", "0"), SendBody::none()),
            Payload::Bytes(b) => {
                let mut slice: &[u8] = b;
                let builder = builder.header("Content-Length", slice.len().to_string());
                run(builder, SendBody::from_reader(&mut slice))
            }
            Payload::Stream(reader, len) => {
                let builder = builder.header("Content-Length", len.to_string());
                run(builder, SendBody::from_reader(&mut **reader))
            }
        }
    }

    /// The error for an unexpected response status (its OCI error codes included).
    pub(crate) fn status_error(&self, repo: &Repo, method: &str, url: &str, resp: Response<Body>) -> RegistryError {
        let status = resp.status().as_u16();
        RegistryError::Status {
            registry: repo.registry.clone(),
            method: method.to_string(),
            url: url.to_string(),
            status,
            detail: error_detail(resp),
        }
    }
}

/// A claim on one digest, released on drop (see [`Client::claim`]).
pub(crate) struct Claim<'a> {
    client: &'a Client,
    digest: Digest,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        lock(&self.client.inflight).remove(&self.digest);
        self.client.inflight_done.notify_all();
    }
}

/// Percent-encode a query parameter value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names resolve without the network: `public.example` to a TEST-NET address.
    fn client() -> Client {
        Client::builder()
            .docker_config(None)
            .certs_dir(None)
            .insecure("reg.internal:5000")
            .resolver(Arc::new(|host: &str| match host {
                "public.example" => Ok(vec!["192.0.2.1".parse().expect("ip")]),
                _ => Err(std::io::ErrorKind::NotFound.into()),
            }))
            .build()
            .expect("client")
    }

    #[test]
    fn endpoints_follow_docker() {
        let c = client();
        assert_eq!(c.endpoint("docker.io").base_url, "https://registry-1.docker.io");
        assert_eq!(c.endpoint("reg.internal").base_url, "https://reg.internal");
        assert_eq!(c.endpoint("quay.io").base_url, "https://quay.io");
        assert_eq!(
            c.endpoint("public.example:5000").base_url,
            "https://public.example:5000"
        );
        for insecure in ["localhost:5000", "127.0.0.1:8080", "[::1]:5000", "reg.internal:5000"] {
            assert!(c.security(insecure).is_insecure(), "{insecure}");
        }
        assert_eq!(c.security("public.example:5000"), Security::Secure);
        assert!(c.mirror_endpoints("docker.io").is_empty());
    }

    #[test]
    fn encodes_scopes() {
        assert_eq!(encode("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
    }
}
