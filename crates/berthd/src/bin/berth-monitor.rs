//! `berth-monitor DIR READY_FD`: a container's monitor, started by berthd (see
//! `berth_engine::monitor`). It detaches at once (berthd reaps the first process) and
//! reports on READY_FD when the container is created or failed to be.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), Some(fd)) = (args.next(), args.next()) else {
        eprintln!("usage: berth-monitor DIR READY_FD (started by berthd)");
        std::process::exit(2);
    };
    let Some(fd) = fd.to_str().and_then(|s| s.parse::<RawFd>().ok()).filter(|&f| f > 2) else {
        eprintln!("berth-monitor: READY_FD must be a file descriptor number above 2");
        std::process::exit(2);
    };
    // CVE-2019-5736: exec'd processes start as copies of us; make our binary unwritable first.
    if let Err(e) = berth_runtime::selfexe::reexec_sealed() {
        eprintln!("berth-monitor: cannot seal own binary: {e}");
        std::process::exit(1);
    }
    // SAFETY: berthd passes this fd number open for us; nothing else in this process owns it.
    let ready = unsafe { OwnedFd::from_raw_fd(fd) };
    // Keep it from the container's processes.
    let _ = nix::fcntl::fcntl(&ready, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    // Detach: the first process exits so berthd can reap it; the child lives on in its own session.
    // SAFETY: single-threaded here; the child only continues this program.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            eprintln!("berth-monitor: fork: {e}");
            std::process::exit(1);
        }
    }
    let _ = nix::unistd::setsid();
    std::process::exit(berth_engine::monitor::run(&PathBuf::from(dir), ready));
}
