//! CVE-2019-5736: a container process must never be able to reach the runtime binary
//! through /proc/PID/exe and write to it. Before anything enters a container, the runtime
//! re-executes itself from a sealed memfd copy, so the only exe a container can see is an
//! immutable anonymous file.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const F_ADD_SEALS: libc::c_int = 1033;
const F_GET_SEALS: libc::c_int = 1034;
const SEALS: libc::c_int = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Whether our own executable is already a sealed memfd.
pub fn is_sealed() -> bool {
    let Ok(f) = File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS on an fd we own; fails with EINVAL for non-memfd files.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// Copy /proc/self/exe into a sealed memfd and execve it with the same argv and env.
/// Returns only on failure. Disabled by the test-only feature `unsafe-no-exe-seal`.
pub fn reexec_sealed() -> std::io::Result<()> {
    if cfg!(feature = "unsafe-no-exe-seal") || is_sealed() {
        return Ok(());
    }
    let mut src = File::open("/proc/self/exe")?;
    let name = c"berth-runtime";
    // MFD_EXEC (6.3+) keeps the copy executable where memfd_noexec is enforced.
    const MFD_EXEC: libc::c_uint = 0x10;
    // SAFETY: memfd_create with a NUL-terminated name; we own the returned fd.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | MFD_EXEC) };
    if fd < 0 {
        // SAFETY: as above, for kernels without MFD_EXEC.
        fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    }
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just created and is owned by nobody else.
    let mut dst = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::io::copy(&mut src, &mut dst)?;
    // SAFETY: F_ADD_SEALS on our memfd.
    if unsafe { libc::fcntl(dst.as_raw_fd(), F_ADD_SEALS, SEALS) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str())).unwrap_or_default())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut s = std::os::unix::ffi::OsStrExt::as_bytes(k.as_os_str()).to_vec();
            s.push(b'=');
            s.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()));
            CString::new(s).unwrap_or_default()
        })
        .collect();
    let e = nix::unistd::fexecve(&dst, &args, &env);
    Err(std::io::Error::from(e.err().unwrap_or(nix::Error::EINVAL)))
}
