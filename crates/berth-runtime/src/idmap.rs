//! Idmapped bind mounts, made by the runtime in the host's user namespace (only there may
//! a host file system's mount be idmapped) and handed to the init as detached mounts.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::unistd::ForkResult;
use oci_spec::runtime::{LinuxIdMapping, Spec};

use crate::{mountopts, rootfs};

fn map_text(m: &[LinuxIdMapping]) -> String {
    m.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// A user namespace holding the given mappings, as an fd (for MOUNT_ATTR_IDMAP).
fn userns_with(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd, String> {
    let (ready_r, ready_w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let (hold_r, hold_w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the runtime is single-threaded; the child only makes syscalls and exits.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(ready_r);
            drop(hold_w);
            let ok = nix::sched::unshare(CloneFlags::CLONE_NEWUSER).is_ok();
            let mut w = ready_w;
            let _ = w.write_all(if ok { b"1" } else { b"0" });
            drop(w);
            let mut r = hold_r;
            let _ = r.read(&mut [0u8; 1]);
            // SAFETY: leave the forked child without running the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(ready_w);
            drop(hold_r);
            let mut b = [0u8; 1];
            let mut r = ready_r;
            let res = (|| {
                r.read_exact(&mut b)
                    .map_err(|e| format!("user namespace helper: {e}"))?;
                if b[0] != b'1' {
                    return Err("cannot create a user namespace for the idmapping".to_string());
                }
                let pid = child.as_raw();
                std::fs::write(format!("/proc/{pid}/uid_map"), map_text(uid))
                    .map_err(|e| format!("uidMappings: {e}"))?;
                std::fs::write(format!("/proc/{pid}/gid_map"), map_text(gid))
                    .map_err(|e| format!("gidMappings: {e}"))?;
                std::fs::File::open(format!("/proc/{pid}/ns/user"))
                    .map(OwnedFd::from)
                    .map_err(|e| format!("open user namespace: {e}"))
            })();
            drop(hold_w);
            let _ = nix::sys::wait::waitpid(child, None);
            res
        }
    }
}

/// The detached idmapped mount for spec mount `index`. Its mappings are the mount's own
/// uidMappings/gidMappings, else those of the container's user namespace (of `init_pid`).
pub fn mount_fd(spec: &Spec, bundle: &Path, index: usize, init_pid: i32) -> Result<OwnedFd, String> {
    let m = spec
        .mounts()
        .as_deref()
        .and_then(|ms| ms.get(index))
        .ok_or_else(|| format!("no mount #{index}"))?;
    let dest = m.destination().display().to_string();
    let opts = mountopts::parse(m.options().as_deref().unwrap_or_default(), &dest).map_err(|e| e.to_string())?;
    let src = m
        .source()
        .as_ref()
        .ok_or_else(|| format!("idmapped mount on {dest}: no source"))?;
    let src = if src.is_absolute() {
        src.clone()
    } else {
        bundle.join(src)
    };
    let own = m.uid_mappings().as_ref().is_some_and(|v| !v.is_empty());
    let userns: OwnedFd = if own {
        let gid = m.gid_mappings().clone().unwrap_or_default();
        userns_with(m.uid_mappings().as_deref().unwrap_or_default(), &gid)?
    } else {
        let new_userns = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| {
                ns.iter()
                    .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User && n.path().is_none())
            });
        if !new_userns {
            return Err(format!(
                "idmapped mount on {dest}: give the mount uidMappings/gidMappings or the container a user namespace"
            ));
        }
        std::fs::File::open(format!("/proc/{init_pid}/ns/user"))
            .map(OwnedFd::from)
            .map_err(|e| format!("open the container's user namespace: {e}"))?
    };
    let tree = rootfs::clone_tree(&src, opts.recursive_bind || opts.recursive_idmap)
        .map_err(|e| format!("idmapped mount on {dest}: clone {}: {e}", src.display()))?;
    rootfs::setattr_userns(
        &tree,
        opts.recursive_idmap,
        mountopts::attr::IDMAP,
        0,
        Some(userns.as_raw_fd()),
    )
    .map_err(|e| {
        format!(
            "idmapped mount on {dest}: {e} (does the file system of {} support idmapped mounts?)",
            src.display()
        )
    })?;
    Ok(tree)
}
