//! The CLI's errors and the exit codes docker gives them.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// Bad flags or arguments (docker exits 125).
    Usage(String),
    /// The daemon answered with an error status.
    Daemon { status: u16, message: String },
    /// No daemon answered at any address we tried.
    Connect(String),
    /// Something failed on this side (what, and on which object).
    Msg(String),
    /// Nothing to print: exit with this code (a container's or an exec's).
    Exit(i32),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn msg(m: impl Into<String>) -> Error {
        Error::Msg(m.into())
    }

    pub fn usage(m: impl Into<String>) -> Error {
        Error::Usage(m.into())
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Daemon { status: 404, .. })
    }

    pub fn daemon_message(&self) -> Option<&str> {
        match self {
            Error::Daemon { message, .. } => Some(message),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Connect(m) | Error::Msg(m) => f.write_str(m),
            Error::Daemon { message, .. } => write!(f, "Error response from daemon: {message}"),
            Error::Exit(c) => write!(f, "exit status {c}"),
        }
    }
}

/// A flag's value that does not parse, named as docker names it.
pub fn flag_err(flag: &str, v: &str, e: impl fmt::Display) -> Error {
    Error::usage(format!("invalid argument {v:?} for \"{flag}\" flag: {e}"))
}
