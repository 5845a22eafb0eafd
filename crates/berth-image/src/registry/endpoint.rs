//! Where and how a registry is reached, as Docker's daemon decides it.
//!
//! - [`RegistryConfig`]: `registry-mirrors` and `insecure-registries`, spelled as in
//!   `daemon.json` so the engine can deserialise that file's keys straight into it.
//! - Mirrors serve Docker Hub (`docker.io`) images only, for pulls only: they are tried
//!   in order, then Docker Hub itself. A mirror URL is the root of a host (`https://h`,
//!   `http://h:5000/`), as Docker requires.
//! - A registry is *insecure* when it is listed by name (`host[:port]`), or when an
//!   address it resolves to lies in a listed CIDR or in the ones Docker always adds,
//!   `127.0.0.0/8` and `::1/128`. Docker Hub never is. An insecure registry is reached
//!   over HTTPS without certificate verification and, when it does not speak TLS, over
//!   plain HTTP (Docker's order); every other registry over verified HTTPS only.
//! - Berth departs from Docker in one way: a registry with a `certs.d` directory and not
//!   listed by name is secure even on a loopback address, so the CAs and client
//!   certificates an administrator put there are used (Docker would skip verification).

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;

use ipnet::IpNet;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use super::error::{RegistryError, Result};

/// Docker Hub's name in references, and where its registry API is.
pub const DOCKER_HUB: &str = "docker.io";
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// The registries Docker treats as insecure whatever the configuration says.
pub const DEFAULT_INSECURE_CIDRS: [&str; 2] = ["127.0.0.0/8", "::1/128"];

/// Registry settings of the engine, as `daemon.json` spells them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RegistryConfig {
    /// `registry-mirrors`: URLs of Docker Hub mirrors (`https://mirror.example`).
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    /// `insecure-registries`: `host[:port]` names and CIDRs (`10.0.0.0/8`).
    #[serde(default)]
    pub insecure_registries: Vec<String>,
}

/// Turns a host name into addresses, for the insecure-CIDR check and for connecting.
/// Tests give one that maps names to loopback addresses (or refuses them), so that no
/// traffic can leave the machine; the default asks the system resolver.
pub type ResolveFn = dyn Fn(&str) -> std::io::Result<Vec<IpAddr>> + Send + Sync;

/// Whether TLS is required of a registry, and why not when it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    /// HTTPS with verified certificates only.
    Secure,
    /// Listed by name in `insecure-registries`.
    InsecureListed,
    /// Resolves to `addr`, inside the insecure range `cidr`.
    InsecureCidr { addr: IpAddr, cidr: IpNet },
}

impl Security {
    pub fn is_insecure(&self) -> bool {
        !matches!(self, Security::Secure)
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Security::Secure => write!(f, "secure"),
            Security::InsecureListed => write!(f, "insecure (listed in insecure-registries)"),
            Security::InsecureCidr { addr, cidr } => write!(f, "insecure ({addr} is in {cidr})"),
        }
    }
}

/// Where a registry is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The registry as named in references (`docker.io`, `localhost:5000`), or for a
    /// mirror its `host[:port]` (credentials and tokens are the mirror's own).
    pub registry: String,
    /// `https://registry-1.docker.io`, `http://localhost:5000`.
    pub base_url: String,
    /// A Docker Hub mirror from `registry-mirrors`.
    pub mirror: bool,
}

/// The parsed, validated form of a [`RegistryConfig`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    /// Mirror base URLs without a trailing slash.
    pub mirrors: Vec<String>,
    pub insecure_names: Vec<String>,
    pub insecure_cidrs: Vec<IpNet>,
}

impl Policy {
    pub fn new(config: &RegistryConfig) -> Result<Policy> {
        let bad = |setting: &'static str, value: &str, reason: &str| RegistryError::Config {
            setting,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let mut policy = Policy::default();
        for m in &config.registry_mirrors {
            let url = m.trim();
            let uri: Uri = url
                .parse()
                .map_err(|e| bad("registry-mirrors", m, &format!("not a URL: {e}")))?;
            match uri.scheme_str() {
                Some("http" | "https") => {}
                _ => return Err(bad("registry-mirrors", m, "must start with http:// or https://")),
            }
            let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
                return Err(bad("registry-mirrors", m, "has no host"));
            };
            if authority.as_str().contains('@') {
                return Err(bad("registry-mirrors", m, "must not contain credentials"));
            }
            if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
                return Err(bad(
                    "registry-mirrors",
                    m,
                    "must be the root of a host (no path or query), as Docker requires",
                ));
            }
            let base = format!("{}://{}", uri.scheme_str().unwrap_or("https"), authority.as_str());
            if !policy.mirrors.contains(&base) {
                policy.mirrors.push(base);
            }
        }
        for entry in &config.insecure_registries {
            let mut r = entry.trim();
            // Docker drops a scheme here (with a warning) rather than refusing it.
            for scheme in ["http://", "https://"] {
                if r.len() >= scheme.len() && r[..scheme.len()].eq_ignore_ascii_case(scheme) {
                    r = &r[scheme.len()..];
                }
            }
            let r = r.trim_end_matches('/');
            if r.contains("://") {
                return Err(bad("insecure-registries", entry, "must not contain a scheme"));
            }
            if let Ok(net) = r.parse::<IpNet>() {
                policy.insecure_cidrs.push(net.trunc());
            } else if r.is_empty() || r.contains(['/', ' ', '@', '?', '#']) {
                return Err(bad("insecure-registries", entry, "is neither host[:port] nor a CIDR"));
            } else {
                policy.insecure_names.push(r.to_string());
            }
        }
        for cidr in DEFAULT_INSECURE_CIDRS {
            let net: IpNet = cidr.parse().expect("valid built-in CIDR");
            if !policy.insecure_cidrs.contains(&net) {
                policy.insecure_cidrs.push(net);
            }
        }
        Ok(policy)
    }

    /// Whether `registry` (`host[:port]`) must be reached with verified TLS. `resolve`
    /// is asked only for a name that is neither an address nor `localhost`, and only
    /// when the answer matters. `has_certs_dir`: Berth treats a registry with a certs.d
    /// directory as secure unless it is listed by name.
    pub fn security(&self, registry: &str, has_certs_dir: bool, resolve: &ResolveFn) -> Security {
        if is_docker_hub(registry) || registry == DOCKER_HUB_API {
            return Security::Secure;
        }
        if self.insecure_names.iter().any(|n| n == registry) {
            return Security::InsecureListed;
        }
        if has_certs_dir {
            return Security::Secure;
        }
        let host = host_of(registry);
        let addrs = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) if host.eq_ignore_ascii_case("localhost") => {
                vec![
                    IpAddr::from([127, 0, 0, 1]),
                    IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                ]
            }
            // Unresolvable names are secure: connecting will report the lookup failure.
            Err(_) => resolve(host).unwrap_or_default(),
        };
        for addr in addrs {
            let addr = canonical(addr);
            if let Some(cidr) = self.insecure_cidrs.iter().find(|n| n.contains(&addr)) {
                return Security::InsecureCidr { addr, cidr: *cidr };
            }
        }
        Security::Secure
    }
}

pub(crate) fn is_docker_hub(registry: &str) -> bool {
    matches!(registry, DOCKER_HUB | "index.docker.io")
}

/// `host` of `host[:port]` / `[v6]:port`.
pub(crate) fn host_of(registry: &str) -> &str {
    match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => match registry.rsplit_once(':') {
            // A bare IPv6 address has several colons and no port.
            Some((h, _)) if !h.contains(':') => h,
            Some(_) => registry,
            None => registry,
        },
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) compare as IPv4, as Go's do.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether connections to `host[:port]` skip proxies (loopback, as Go's
/// `ProxyFromEnvironment` does).
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| canonical(ip).is_loopback())
}

/// The system resolver.
pub(crate) fn system_resolve(host: &str) -> std::io::Result<Vec<IpAddr>> {
    Ok((host, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
}

/// Lets ureq connect through a [`ResolveFn`].
pub(crate) struct HookResolver(pub Arc<ResolveFn>);

impl fmt::Debug for HookResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HookResolver")
    }
}

impl Resolver for HookResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &Config,
        _timeout: NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("http") { 80 } else { 443 });
        let ips = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (self.0)(host)?,
        };
        let mut out = self.empty();
        for ip in ips.into_iter().take(16) {
            out.push(std::net::SocketAddr::new(ip, port));
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mirrors: &[&str], insecure: &[&str]) -> Result<Policy> {
        Policy::new(&RegistryConfig {
            registry_mirrors: mirrors.iter().map(|s| s.to_string()).collect(),
            insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// A resolver that never touches the network.
    fn fake(host: &str) -> std::io::Result<Vec<IpAddr>> {
        match host {
            "corp.example" => Ok(vec!["10.1.2.3".parse().expect("ip")]),
            "loop.example" => Ok(vec!["::ffff:127.0.0.9".parse().expect("ip")]),
            "public.example" => Ok(vec!["192.0.2.10".parse().expect("ip")]),
            _ => Err(std::io::ErrorKind::NotFound.into()),
        }
    }

    #[test]
    fn daemon_json_keys_deserialise() {
        let c: RegistryConfig = serde_json::from_str(
            r#"{"registry-mirrors":["https://m.example"],"insecure-registries":["r:5000"],"debug":true}"#,
        )
        .expect("json");
        assert_eq!(c.registry_mirrors, ["https://m.example"]);
        assert_eq!(c.insecure_registries, ["r:5000"]);
    }

    #[test]
    fn mirrors_are_validated_like_docker() {
        let p = policy(
            &["https://m.example/", "http://127.0.0.1:5000", "https://m.example"],
            &[],
        )
        .expect("ok");
        assert_eq!(p.mirrors, ["https://m.example", "http://127.0.0.1:5000"]);
        for bad in [
            "m.example",
            "ftp://m.example",
            "https://m.example/path",
            "https://m.example/?q=1",
            "https://u:p@m.example",
        ] {
            let err = policy(&[bad], &[]).expect_err(bad);
            assert!(
                err.to_string().contains(bad) && err.to_string().contains("registry-mirrors"),
                "{err}"
            );
        }
    }

    #[test]
    fn insecure_decisions_follow_docker() {
        let p = policy(&[], &["reg.internal:5000", "http://plain.example", "10.0.0.0/8"]).expect("ok");
        let sec = |r: &str| p.security(r, false, &fake);
        // Docker's defaults: loopback v4 and v6, whatever the name.
        assert!(matches!(sec("127.0.0.2:5000"), Security::InsecureCidr { .. }));
        assert!(matches!(sec("[::1]:5000"), Security::InsecureCidr { .. }));
        assert!(sec("localhost:5000").is_insecure());
        assert!(sec("loop.example:80").is_insecure(), "resolves to a mapped 127.0.0.9");
        // Listed names (a scheme is dropped, as Docker does) and CIDRs.
        assert_eq!(sec("reg.internal:5000"), Security::InsecureListed);
        assert_eq!(sec("plain.example"), Security::InsecureListed);
        assert_eq!(sec("reg.internal"), Security::Secure, "the port is part of the name");
        assert!(matches!(sec("corp.example:443"), Security::InsecureCidr { .. }));
        assert!(sec("10.9.9.9:5000").is_insecure());
        // Everything else, Docker Hub and unresolvable names are secure.
        assert_eq!(sec("public.example:5000"), Security::Secure);
        assert_eq!(sec("192.0.2.10:5000"), Security::Secure);
        assert_eq!(sec("nowhere.example"), Security::Secure);
        assert_eq!(sec("docker.io"), Security::Secure);
        // A certs.d directory makes a loopback registry secure, unless listed by name.
        assert_eq!(p.security("127.0.0.1:5000", true, &fake), Security::Secure);
        assert_eq!(p.security("reg.internal:5000", true, &fake), Security::InsecureListed);
        for bad in ["ftp://x", "a/b", ""] {
            assert!(policy(&[], &[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_of_registry_names() {
        assert_eq!(host_of("reg:5000"), "reg");
        assert_eq!(host_of("[::1]:5000"), "::1");
        assert_eq!(host_of("reg"), "reg");
        assert!(is_loopback("127.0.0.2:1") && is_loopback("[::1]:1") && is_loopback("localhost"));
        assert!(!is_loopback("10.0.0.1:1"));
    }
}
