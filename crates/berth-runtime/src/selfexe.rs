//! CVE-2019-5736: a container process must never be able to reach the runtime binary
//! through /proc/PID/exe and write to it. Before anything enters a container, the runtime
//! re-executes itself from a read-only view of its binary: a detached, read-only overlayfs
//! mount of the binary's directory (no copy: the page cache is shared), or, where overlayfs
//! is missing, a sealed memfd copy. Either way the only exe a container can see cannot be
//! written.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

const F_ADD_SEALS: libc::c_int = 1033;
const F_GET_SEALS: libc::c_int = 1034;
const SEALS: libc::c_int = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Whether our own executable already cannot be written: a sealed memfd, or a file on a
/// read-only mount.
pub fn is_sealed() -> bool {
    let Ok(f) = File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS on an fd we own; fails with EINVAL for non-memfd files.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return true;
    }
    nix::sys::statvfs::fstatvfs(&f).is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

fn sys_ret(r: libc::c_long) -> std::io::Result<OwnedFd> {
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: r is a new fd the kernel just returned to us.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// A detached, read-only mount of `fstype` configured with string options; returns its fd.
fn detached_mount(fstype: &CStr, opts: &[(&CStr, &CStr)]) -> std::io::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const MOUNT_ATTR_RDONLY: libc::c_uint = 1;
    const MOUNT_ATTR_NOSUID: libc::c_uint = 2;
    const MOUNT_ATTR_NODEV: libc::c_uint = 4;
    // SAFETY: fsopen with a NUL-terminated file-system name.
    let fs = sys_ret(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    for (k, v) in opts {
        // SAFETY: fsconfig with NUL-terminated key and value on our own fs context.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value.
    let r = unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), FSCONFIG_CMD_CREATE, null, null, 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID;
    // SAFETY: fsmount on our configured context.
    sys_ret(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })
}

/// A binary, opened through a detached read-only overlayfs of its directory (overlayfs
/// needs two lower layers when it has no upper one: the second is an empty detached tmpfs).
fn open_via_overlay(exe: &std::path::Path) -> std::io::Result<OwnedFd> {
    let (dir, name) = match (exe.parent(), exe.file_name()) {
        (Some(d), Some(n)) if exe.is_absolute() => (d.to_string_lossy().into_owned(), n.to_owned()),
        _ => return Err(std::io::Error::other("cannot split /proc/self/exe")),
    };
    // Overlay's option syntax reserves ':' and ',' and '\' escapes: fall back instead.
    if dir.contains([':', ',', '\\']) || exe.to_string_lossy().ends_with(" (deleted)") {
        return Err(std::io::Error::other("binary path unsuitable for overlayfs"));
    }
    let empty = detached_mount(c"tmpfs", &[(c"size", c"4k"), (c"nr_inodes", c"2")])?;
    let lower = CString::new(format!("{dir}:/proc/self/fd/{}", empty.as_raw_fd()))?;
    let ovl = detached_mount(c"overlay", &[(c"lowerdir", lower.as_c_str())])?;
    let cname = CString::new(name.as_bytes())?;
    // SAFETY: openat relative to the mount fd with a NUL-terminated name.
    let fd = unsafe { libc::openat(ovl.as_raw_fd(), cname.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    sys_ret(fd as libc::c_long)
}

/// A sealed memfd copy of a binary.
fn memfd_copy(exe: &std::path::Path) -> std::io::Result<OwnedFd> {
    let mut src = File::open(exe)?;
    let name = c"berth-runtime";
    // MFD_EXEC (6.3+) keeps the copy executable where memfd_noexec is enforced.
    const MFD_EXEC: libc::c_uint = 0x10;
    // SAFETY: memfd_create with a NUL-terminated name; we own the returned fd.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | MFD_EXEC) };
    if fd < 0 {
        // SAFETY: as above, for kernels without MFD_EXEC.
        fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    }
    let mut dst = File::from(sys_ret(fd as libc::c_long)?);
    std::io::copy(&mut src, &mut dst)?;
    // SAFETY: F_ADD_SEALS on our memfd.
    if unsafe { libc::fcntl(dst.as_raw_fd(), F_ADD_SEALS, SEALS) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(dst.into())
}

/// A read-only view of the binary at `exe` (overlayfs, else a sealed memfd copy): a
/// program that starts many processes of another binary (berthd its monitors) opens it
/// once and executes it through /proc/self/fd, so they need not re-execute themselves.
pub fn open_readonly(exe: &std::path::Path) -> std::io::Result<OwnedFd> {
    match open_via_overlay(exe) {
        Ok(fd) => Ok(fd),
        Err(_) => memfd_copy(exe),
    }
}

/// Re-execute from a read-only view of our binary (overlayfs, else a sealed memfd), with
/// the same argv and env. Returns only on failure. Disabled by the test-only feature
/// `unsafe-no-exe-seal`.
pub fn reexec_sealed() -> std::io::Result<()> {
    if cfg!(feature = "unsafe-no-exe-seal") || is_sealed() {
        return Ok(());
    }
    let dst = open_readonly(&std::fs::read_link("/proc/self/exe")?)?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut s = k.as_bytes().to_vec();
            s.push(b'=');
            s.extend_from_slice(v.as_bytes());
            CString::new(s).unwrap_or_default()
        })
        .collect();
    let e = nix::unistd::fexecve(&dst, &args, &env);
    Err(std::io::Error::from(e.err().unwrap_or(nix::Error::EINVAL)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Both read-only views refuse a write through a reopened /proc/self/fd path (what the
    /// CVE-2019-5736 attack does), while reading the same bytes as the binary (positive control).
    #[test]
    fn views_are_readable_and_refuse_writes() {
        let original = std::fs::read("/proc/self/exe").unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        for (what, fd) in [
            ("overlay", open_via_overlay(&exe).unwrap()),
            ("memfd", memfd_copy(&exe).unwrap()),
        ] {
            let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
            assert_eq!(std::fs::read(&p).unwrap(), original, "{what}");
            let w = std::fs::OpenOptions::new()
                .append(true)
                .open(&p)
                .and_then(|mut f| f.write_all(b"x"));
            assert!(w.is_err(), "{what}: write went through");
        }
    }
}
