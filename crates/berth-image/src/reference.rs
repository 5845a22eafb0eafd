//! Image references, normalised the way Docker's `distribution/reference` does
//! (`ParseNormalizedNamed` followed by `TagNameOnly`): `busybox` is
//! `docker.io/library/busybox:latest`.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

use crate::digest::{Digest, DigestError};

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

// Patterns transcribed from distribution/reference's regexp.go so that what Docker
// accepts, we accept (and `\w` is ASCII-only there, hence the explicit classes).
const DOMAIN_COMPONENT: &str = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const PATH_COMPONENT: &str = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";

static DOMAIN_RE: LazyLock<Regex> = LazyLock::new(|| {
    let name = format!(r"{DOMAIN_COMPONENT}(?:\.{DOMAIN_COMPONENT})*");
    let host = format!(r"(?:{name}|\[(?:[a-fA-F0-9:]+)\])");
    compile(&format!(r"^{host}(?::[0-9]+)?$"))
});
static PATH_RE: LazyLock<Regex> = LazyLock::new(|| compile(&format!(r"^{PATH_COMPONENT}(?:/{PATH_COMPONENT})*$")));
static TAG_RE: LazyLock<Regex> = LazyLock::new(|| compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"));
static DIGEST_RE: LazyLock<Regex> =
    LazyLock::new(|| compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$"));
static HEX64_RE: LazyLock<Regex> = LazyLock::new(|| compile(r"^[a-f0-9]{64}$"));

fn compile(pattern: &str) -> Regex {
    // The patterns are constants; a failure here is a bug caught by every test.
    Regex::new(pattern).expect("reference regex is valid")
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference {input:?}: repository name must have at least one component")]
    Empty { input: String },
    #[error("invalid reference {input:?}: repository name {name:?} must be lowercase")]
    Uppercase { input: String, name: String },
    #[error("invalid reference {input:?}: cannot specify 64-byte hexadecimal strings as a repository name")]
    HexName { input: String },
    #[error("invalid reference {input:?}: bad registry host {domain:?}")]
    BadDomain { input: String, domain: String },
    #[error("invalid reference {input:?}: bad repository path {path:?}")]
    BadPath { input: String, path: String },
    #[error("invalid reference {input:?}: repository name is {len} characters, more than 255")]
    NameTooLong { input: String, len: usize },
    #[error(
        "invalid reference {input:?}: bad tag {tag:?} (letters, digits, '_', '.', '-', not starting with '.' or '-')"
    )]
    BadTag { input: String, tag: String },
    #[error("invalid reference {input:?}: tag is {len} characters, more than 128")]
    TagTooLong { input: String, len: usize },
    #[error("invalid reference {input:?}: bad digest {digest:?}")]
    BadDigestFormat { input: String, digest: String },
    #[error("invalid reference {input:?}: {source}")]
    Digest {
        input: String,
        #[source]
        source: DigestError,
    },
}

/// A fully qualified image reference: registry domain, repository path, and a tag
/// and/or digest. A reference given with neither gets the tag `latest`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parse and normalise a reference as the Docker CLI does.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let err_input = || input.to_string();
        if input.is_empty() {
            return Err(ReferenceError::Empty { input: err_input() });
        }
        if HEX64_RE.is_match(input) {
            return Err(ReferenceError::HexName { input: err_input() });
        }
        let (domain, remainder) = split_docker_domain(input);

        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((left, d)) => (left, Some(d)),
            None => (remainder.as_str(), None),
        };
        let (path, tag) = match name_and_tag.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (name_and_tag, None),
        };

        if path.to_lowercase() != path {
            return Err(ReferenceError::Uppercase {
                input: err_input(),
                name: path.to_string(),
            });
        }
        if path.is_empty() || path == OFFICIAL_REPO_PREFIX {
            return Err(ReferenceError::Empty { input: err_input() });
        }
        if !DOMAIN_RE.is_match(&domain) {
            return Err(ReferenceError::BadDomain {
                input: err_input(),
                domain,
            });
        }
        if !PATH_RE.is_match(path) {
            return Err(ReferenceError::BadPath {
                input: err_input(),
                path: path.to_string(),
            });
        }
        let name_len = domain.len() + 1 + path.len();
        if name_len > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong {
                input: err_input(),
                len: name_len,
            });
        }
        if let Some(t) = tag {
            if !TAG_RE.is_match(t) {
                return Err(ReferenceError::BadTag {
                    input: err_input(),
                    tag: t.to_string(),
                });
            }
            if t.len() > TAG_LENGTH_MAX {
                return Err(ReferenceError::TagTooLong {
                    input: err_input(),
                    len: t.len(),
                });
            }
        }
        let digest = match digest {
            Some(d) if !DIGEST_RE.is_match(d) => {
                return Err(ReferenceError::BadDigestFormat {
                    input: err_input(),
                    digest: d.to_string(),
                })
            }
            Some(d) => Some(Digest::parse(d).map_err(|source| ReferenceError::Digest {
                input: err_input(),
                source,
            })?),
            None => None,
        };
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(Reference {
            domain,
            path: path.to_string(),
            tag,
            digest,
        })
    }

    /// Registry host (and port), e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path within the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short form Docker displays: `busybox:latest`, `user/x:1`, `localhost:5000/x:latest`.
    pub fn familiar(&self) -> String {
        let name = if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        };
        with_suffixes(name, self.tag.as_deref(), self.digest.as_ref())
    }
}

fn with_suffixes(mut s: String, tag: Option<&str>, digest: Option<&Digest>) -> String {
    if let Some(t) = tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(&d.to_string());
    }
    s
}

/// Docker's `splitDockerDomain`: the first component is a registry only if it looks like
/// a host (has '.' or ':', is `localhost`, or has uppercase, which no repository path may).
fn split_docker_domain(input: &str) -> (String, String) {
    let (mut domain, remainder) = match input.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first => {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), input.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    let remainder = if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        format!("{OFFICIAL_REPO_PREFIX}{remainder}")
    } else {
        remainder
    };
    (domain, remainder)
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&with_suffixes(self.name(), self.tag.as_deref(), self.digest.as_ref()))
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).to_string()
    }

    fn familiar(s: &str) -> String {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).familiar()
    }

    #[test]
    fn normalises_like_docker() {
        let cases: &[(&str, &str, &str)] = &[
            ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "docker.io/library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ("user/x", "docker.io/user/x:latest", "user/x:latest"),
            ("user/x:v1", "docker.io/user/x:v1", "user/x:v1"),
            ("library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
            ("localhost:5000/x:t", "localhost:5000/x:t", "localhost:5000/x:t"),
            (
                "registry.example.com/a/b:tag",
                "registry.example.com/a/b:tag",
                "registry.example.com/a/b:tag",
            ),
            (
                "example.com:443/a_b/c-d/e.f__g:T_1.x-y",
                "example.com:443/a_b/c-d/e.f__g:T_1.x-y",
                "",
            ),
            ("[::1]:5000/x", "[::1]:5000/x:latest", ""),
            ("192.168.1.1:5000/x/y", "192.168.1.1:5000/x/y:latest", ""),
            // Uppercase first component can only be a host (Docker's rule).
            ("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),
            ("a--b/c", "docker.io/a--b/c:latest", "a--b/c:latest"),
        ];
        for (input, want_full, want_familiar) in cases {
            assert_eq!(&full(input), want_full, "full form of {input}");
            if !want_familiar.is_empty() {
                assert_eq!(&familiar(input), want_familiar, "familiar form of {input}");
            }
        }
    }

    #[test]
    fn digests_and_tags() {
        let r = Reference::parse(&format!("busybox@sha256:{H}")).expect("valid");
        assert_eq!(r.tag(), None, "a digest reference gets no default tag");
        assert_eq!(r.digest().map(|d| d.hex()), Some(H));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@sha256:{H}"));
        assert_eq!(r.familiar(), format!("busybox@sha256:{H}"));

        let r = Reference::parse(&format!("busybox:1@sha256:{H}")).expect("valid");
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.familiar(), format!("busybox:1@sha256:{H}"));

        let r = Reference::parse(&format!("localhost:5000/a/b:t@sha256:{H}")).expect("valid");
        assert_eq!((r.domain(), r.path(), r.tag()), ("localhost:5000", "a/b", Some("t")));

        let tag128 = "a".repeat(128);
        assert_eq!(full(&format!("x:{tag128}")), format!("docker.io/library/x:{tag128}"));
        let name = format!("{}/{}", "a".repeat(120), "b".repeat(124)); // 255 with "docker.io/"
        assert_eq!(full(&name), format!("docker.io/{name}:latest"));
    }

    #[test]
    fn rejects_bad_references_naming_them() {
        let long_tag = format!("x:{}", "a".repeat(129));
        let long_name = format!("{}/{}", "a".repeat(120), "b".repeat(125));
        let bad_algo = format!("x@md5:{}", &H[..32]);
        let short_hex = format!("x@sha256:{}", &H[..40]);
        let upper_hex = format!("x@sha256:{}", H.to_uppercase());
        type Check = fn(&ReferenceError) -> bool;
        let cases: Vec<(&str, Check)> = vec![
            ("", |e| matches!(e, ReferenceError::Empty { .. })),
            ("Busybox", |e| matches!(e, ReferenceError::Uppercase { .. })),
            ("user/Repo", |e| matches!(e, ReferenceError::Uppercase { .. })),
            ("docker.io/Library/x", |e| matches!(e, ReferenceError::Uppercase { .. })),
            (H, |e| matches!(e, ReferenceError::HexName { .. })),
            ("x:", |e| matches!(e, ReferenceError::BadTag { .. })),
            ("x:-tag", |e| matches!(e, ReferenceError::BadTag { .. })),
            ("x:.tag", |e| matches!(e, ReferenceError::BadTag { .. })),
            ("x:ta/g", |e| matches!(e, ReferenceError::BadDomain { .. })),
            ("x:ta+g", |e| matches!(e, ReferenceError::BadTag { .. })),
            (&long_tag, |e| matches!(e, ReferenceError::TagTooLong { len: 129, .. })),
            (&long_name, |e| {
                matches!(e, ReferenceError::NameTooLong { len: 256, .. })
            }),
            ("x@", |e| matches!(e, ReferenceError::BadDigestFormat { .. })),
            ("x@sha256:abc", |e| matches!(e, ReferenceError::BadDigestFormat { .. })),
            (&bad_algo, |e| matches!(e, ReferenceError::Digest { .. })),
            (&short_hex, |e| matches!(e, ReferenceError::Digest { .. })),
            (&upper_hex, |e| matches!(e, ReferenceError::Digest { .. })),
            ("-x", |e| matches!(e, ReferenceError::BadPath { .. })),
            ("x-", |e| matches!(e, ReferenceError::BadPath { .. })),
            ("a//b", |e| matches!(e, ReferenceError::BadPath { .. })),
            ("a/b/", |e| matches!(e, ReferenceError::BadPath { .. })),
            ("a..b", |e| matches!(e, ReferenceError::BadPath { .. })),
            ("a___b", |e| matches!(e, ReferenceError::BadPath { .. })),
            ("my image", |e| matches!(e, ReferenceError::BadPath { .. })),
            ("example.com/", |e| matches!(e, ReferenceError::Empty { .. })),
            ("foo:bar/baz", |e| matches!(e, ReferenceError::BadDomain { .. })),
            ("-example.com/x", |e| matches!(e, ReferenceError::BadDomain { .. })),
            ("example.com:port/x", |e| matches!(e, ReferenceError::BadDomain { .. })),
        ];
        for (input, check) in cases {
            match Reference::parse(input) {
                Ok(r) => panic!("{input:?} should be rejected, parsed as {r}"),
                Err(e) => {
                    assert!(check(&e), "{input:?}: unexpected error {e:?}");
                    assert!(
                        e.to_string().contains(&format!("{input:?}")),
                        "{e} should name {input:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn parsing_the_full_form_is_idempotent() {
        for s in ["busybox", "user/x:1", "localhost:5000/a/b", "quay.io/a/b:c"] {
            let once = full(s);
            assert_eq!(full(&once), once);
        }
    }
}
