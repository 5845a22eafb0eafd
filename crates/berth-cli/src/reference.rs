//! Docker image references: `busybox` → `docker.io/library/busybox:latest`, with the
//! familiar form docker prints and the registry a login belongs to.

use crate::error::{Error, Result};

pub const DOCKER_HUB: &str = "docker.io";
/// The key docker stores Docker Hub logins under.
pub const HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

#[derive(Debug, Clone, PartialEq)]
pub struct Ref {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Ref {
    pub fn parse(s: &str) -> Result<Ref> {
        let bad = |why: &str| Error::usage(format!("invalid reference format: {why}: {s:?}"));
        if s.is_empty() {
            return Err(bad("empty reference"));
        }
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (s, None),
        };
        let slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match name[slash..].rfind(':') {
            Some(i) => (&name[..slash + i], Some(name[slash + i + 1..].to_string())),
            None => (name, None),
        };
        let (domain, path) = match name.split_once('/') {
            Some((d, rest)) if d.contains(['.', ':']) || d == "localhost" || d.chars().any(|c| c.is_uppercase()) => {
                (d.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.is_empty() || path.split('/').any(str::is_empty) {
            return Err(bad("empty path component"));
        }
        if path.chars().any(|c| c.is_uppercase()) {
            return Err(Error::usage(format!(
                "invalid reference format: repository name ({path}) must be lowercase"
            )));
        }
        if !path
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        {
            return Err(bad("invalid character in the repository name"));
        }
        if let Some(t) = &tag {
            if t.is_empty() || t.len() > 128 || !t.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                return Err(bad("invalid tag"));
            }
        }
        Ok(Ref {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `docker.io/library/busybox`
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `busybox`, `user/app`, `localhost:5000/app`
    pub fn familiar_name(&self) -> String {
        if self.domain == DOCKER_HUB {
            self.path.strip_prefix("library/").unwrap_or(&self.path).to_string()
        } else {
            self.name()
        }
    }

    fn suffix(&self, default_tag: bool) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), Some(d)) => format!(":{t}@{d}"),
            (Some(t), None) => format!(":{t}"),
            (None, Some(d)) => format!("@{d}"),
            (None, None) if default_tag => ":latest".into(),
            (None, None) => String::new(),
        }
    }

    /// `busybox:latest` (the tag made explicit).
    pub fn familiar(&self) -> String {
        format!("{}{}", self.familiar_name(), self.suffix(true))
    }

    /// `docker.io/library/busybox:latest`
    pub fn full(&self) -> String {
        format!("{}{}", self.name(), self.suffix(true))
    }

    /// The `tag` query value of a pull: the digest, the tag, or latest.
    pub fn api_tag(&self) -> String {
        self.digest
            .clone()
            .or_else(|| self.tag.clone())
            .unwrap_or_else(|| "latest".into())
    }

    /// Where logins for this image are stored.
    pub fn auth_key(&self) -> String {
        if self.domain == DOCKER_HUB {
            HUB_AUTH_KEY.into()
        } else {
            self.domain.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        let r = Ref::parse("busybox").unwrap();
        assert_eq!(r.full(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar(), "busybox:latest");
        let r = Ref::parse("localhost:5000/a/b:1").unwrap();
        assert_eq!(
            (r.domain.as_str(), r.path.as_str(), r.api_tag().as_str()),
            ("localhost:5000", "a/b", "1")
        );
        assert_eq!(r.auth_key(), "localhost:5000");
        let r = Ref::parse("user/app@sha256:abc").unwrap();
        assert_eq!(r.name(), "docker.io/user/app");
        assert_eq!(r.api_tag(), "sha256:abc");
        assert!(Ref::parse("Busybox").is_err());
    }
}
