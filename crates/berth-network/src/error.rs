//! The network crate's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Refused by rule (a pre-defined network, one with active endpoints): Docker's 403.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Exhausted(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("netlink: {what}: {message}")]
    Netlink { what: String, message: String },
    #[error("nftables: {0}")]
    Firewall(String),
    #[error("{path}: {source}")]
    State { path: PathBuf, source: serde_json::Error },
}

pub type Result<T> = std::result::Result<T, NetworkError>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
    let what = what.into();
    move |source| NetworkError::Io { what, source }
}
