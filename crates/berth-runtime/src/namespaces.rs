//! Namespaces of linux.namespaces: which to join (by path) and which to create.

use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("join {kind} namespace {path}: {source}")]
    Join {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("create namespaces ({what}): {source}")]
    Create {
        what: String,
        #[source]
        source: nix::Error,
    },
}

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The /proc/PID/ns/ file name of each type.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

pub struct Plan {
    /// Namespaces to join, user namespace first, mount namespace last.
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
    /// Namespaces to create, without CLONE_NEWUSER (handled on its own for the id maps).
    pub create: CloneFlags,
    pub new_user: bool,
}

impl Plan {
    pub fn new(list: &[LinuxNamespace]) -> Plan {
        let mut join = Vec::new();
        let mut create = CloneFlags::empty();
        let mut new_user = false;
        for ns in list {
            match ns.path() {
                Some(p) => join.push((ns.typ(), p.clone())),
                None if ns.typ() == LinuxNamespaceType::User => new_user = true,
                None => create |= flag(ns.typ()),
            }
        }
        let rank = |t: &LinuxNamespaceType| match t {
            LinuxNamespaceType::User => 0,
            LinuxNamespaceType::Mount => 2,
            _ => 1,
        };
        join.sort_by_key(|(t, _)| rank(t));
        Plan { join, create, new_user }
    }

    pub fn has_new(&self, t: LinuxNamespaceType) -> bool {
        if t == LinuxNamespaceType::User {
            return self.new_user;
        }
        self.create.contains(flag(t))
    }

    /// setns into each namespace given by path.
    pub fn join_all(&self) -> Result<(), NsError> {
        for (t, path) in &self.join {
            let kind = crate::spec::ns_name(*t);
            let f = std::fs::File::open(path).map_err(|e| NsError::Join {
                kind,
                path: path.clone(),
                source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL)),
            })?;
            nix::sched::setns(&f, flag(*t)).map_err(|source| NsError::Join {
                kind,
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// Namespace types this runtime knows (for `features`).
pub fn all_names() -> Vec<&'static str> {
    vec!["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]
}
