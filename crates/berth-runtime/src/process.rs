//! Process attributes of config.json's `process`, applied by the container's init (or an
//! exec'd process) on itself, just before it becomes the user's program.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxSchedulerPolicy, PosixRlimitType, Process};

use crate::fsutil::{self, ProcFs};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("process.{field}: {msg}")]
    Field { field: String, msg: String },
    #[error(transparent)]
    Fs(#[from] fsutil::FsError),
}

pub type Result<T> = std::result::Result<T, ProcessError>;

fn field(f: impl Into<String>, msg: impl std::fmt::Display) -> ProcessError {
    ProcessError::Field {
        field: f.into(),
        msg: msg.to_string(),
    }
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn set_rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().as_deref().unwrap_or_default() {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads a valid rlimit struct.
        if unsafe { libc::setrlimit(rlimit_resource(r.typ()), &lim) } != 0 {
            return Err(field(
                "rlimits",
                format!(
                    // Display is the spec's name (RLIMIT_NOFILE), not the Rust variant.
                    "{} soft={} hard={}: {}",
                    r.typ(),
                    r.soft(),
                    r.hard(),
                    std::io::Error::last_os_error()
                ),
            ));
        }
    }
    Ok(())
}

pub fn set_oom_score_adj(p: &Process, proc: &ProcFs) -> Result<()> {
    if let Some(adj) = p.oom_score_adj() {
        proc.write("self/oom_score_adj", &adj.to_string())
            .map_err(|e| field("oomScoreAdj", format!("{adj}: {e}")))?;
    }
    Ok(())
}

/// apparmorProfile and selinuxLabel: applied on exec; a clear error where the host lacks them.
pub fn set_lsm_labels(p: &Process, proc: &ProcFs) -> Result<()> {
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        let enabled =
            std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.starts_with('Y'));
        if !enabled {
            return Err(field(
                "apparmorProfile",
                format!("{profile:?}: AppArmor is not enabled on this host"),
            ));
        }
        let attr = if proc.open_file("self/attr/apparmor/exec", OFlag::O_WRONLY).is_ok() {
            "self/attr/apparmor/exec"
        } else {
            "self/attr/exec"
        };
        proc.write(attr, &format!("exec {profile}"))
            .map_err(|e| field("apparmorProfile", format!("{profile:?}: {e}")))?;
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        if !Path::new("/sys/fs/selinux/enforce").exists() {
            return Err(field(
                "selinuxLabel",
                format!("{label:?}: SELinux is not enabled on this host"),
            ));
        }
        proc.write("self/attr/exec", label)
            .map_err(|e| field("selinuxLabel", format!("{label:?}: {e}")))?;
    }
    Ok(())
}

pub fn set_io_priority(p: &Process) -> Result<()> {
    let Some(io) = p.io_priority() else {
        return Ok(());
    };
    let class: i64 = match io.class() {
        oci_spec::runtime::IOPriorityClass::IoprioClassRt => 1,
        oci_spec::runtime::IOPriorityClass::IoprioClassBe => 2,
        oci_spec::runtime::IOPriorityClass::IoprioClassIdle => 3,
    };
    let prio = io.priority();
    if !(0..=7).contains(&prio) {
        return Err(field("ioPriority.priority", format!("{prio} outside 0..7")));
    }
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: ioprio_set on ourselves with plain integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, (class << 13) | prio) };
    if r != 0 {
        return Err(field("ioPriority", std::io::Error::last_os_error()));
    }
    Ok(())
}

pub fn set_scheduler(p: &Process) -> Result<()> {
    let Some(s) = p.scheduler() else {
        return Ok(());
    };
    #[repr(C)]
    #[derive(Default)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().as_deref().unwrap_or_default() {
        use oci_spec::runtime::LinuxSchedulerFlag as F;
        flags |= match f {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    let a = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    };
    // SAFETY: sched_setattr reads `a`, whose size field says how much.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a as *const SchedAttr, 0) };
    if r != 0 {
        return Err(field(
            "scheduler",
            format!("{:?}: {}", s.policy(), std::io::Error::last_os_error()),
        ));
    }
    Ok(())
}

/// Parse a cpu list ("0-3,7") into a cpu set.
pub fn parse_cpu_list(s: &str) -> Option<nix::sched::CpuSet> {
    let mut set = nix::sched::CpuSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?),
            None => {
                let a = part.parse::<usize>().ok()?;
                (a, a)
            }
        };
        for c in a..=b {
            set.set(c).ok()?;
        }
    }
    Some(set)
}

/// execCPUAffinity: `final` applies to the process that execs the user's program.
pub fn set_final_affinity(p: &Process) -> Result<()> {
    let Some(aff) = p.exec_cpu_affinity() else {
        return Ok(());
    };
    if let Some(cpus) = aff.cpu_affinity_final().as_deref() {
        let set = parse_cpu_list(cpus)
            .ok_or_else(|| field("execCPUAffinity.final", format!("{cpus:?} is not a cpu list")))?;
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
            .map_err(|e| field("execCPUAffinity.final", format!("{cpus}: {e}")))?;
    }
    Ok(())
}

/// Supplementary groups, gid, uid (keeping capabilities across the uid change), umask.
pub fn set_user(p: &Process) -> Result<()> {
    let u = p.user();
    let gids: Vec<nix::unistd::Gid> = u
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    // setgroups is denied in a user namespace with setgroups=deny; only fail if groups were asked for.
    if let Err(e) = nix::unistd::setgroups(&gids) {
        if !gids.is_empty() {
            return Err(field("user.additionalGids", format!("{:?}: {e}", u.additional_gids())));
        }
    }
    let gid = nix::unistd::Gid::from_raw(u.gid());
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| field("user.gid", format!("{}: {e}", u.gid())))?;
    // SAFETY: PR_SET_KEEPCAPS with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let uid = nix::unistd::Uid::from_raw(u.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| field("user.uid", format!("{}: {e}", u.uid())))?;
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    if let Some(m) = u.umask() {
        nix::sys::stat::umask(Mode::from_bits_truncate(m));
    }
    Ok(())
}

/// Create a missing cwd (as runc does), while still root.
pub fn create_cwd(p: &Process) -> Result<()> {
    let cwd = p.cwd();
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| field("cwd", e))?;
    match fsutil::open_in_root(&root, cwd, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()) {
        Err(fsutil::FsError::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {
            fsutil::mkdir_all_in_root(&root, cwd, 0o755)?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// chdir into process.cwd, resolved inside the (already pivoted) root, then check that the
/// kernel agrees we are inside it (CVE-2024-21626: a cwd through a leaked fd is outside).
pub fn enter_cwd(p: &Process) -> Result<()> {
    if cfg!(feature = "unsafe-no-fd-cleanup") {
        return nix::unistd::chdir(p.cwd()).map_err(|e| field("cwd", e));
    }
    let cwd = p.cwd();
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| field("cwd", e))?;
    let fd = fsutil::open_in_root(&root, cwd, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
        .map_err(|e| field("cwd", format!("{}: {e}", cwd.display())))?;
    nix::unistd::fchdir(&fd).map_err(|e| field("cwd", format!("{}: {e}", cwd.display())))?;
    check_cwd_inside()
}

pub fn check_cwd_inside() -> Result<()> {
    if cfg!(feature = "unsafe-no-fd-cleanup") {
        return Ok(());
    }
    match std::env::current_dir() {
        Ok(d) if d.is_absolute() => Ok(()),
        Ok(d) => Err(field("cwd", format!("{} is outside the container's root", d.display()))),
        Err(e) => Err(field(
            "cwd",
            format!("the working directory is outside the container's root ({e})"),
        )),
    }
}

/// Find the program of args[0] in the container's PATH, as execvp would.
///
/// The error texts are runc's (`exec: "x": executable file not found in $PATH`,
/// `... no such file or directory`, `... permission denied`): clients classify a failed
/// start by them (Podman and Docker exit 127 for a missing command, 126 for one that
/// cannot be run), so they must not be reworded.
pub fn find_program(p: &Process) -> Result<PathBuf> {
    let args = p.args().as_deref().unwrap_or_default();
    let prog = args.first().ok_or_else(|| field("args", "empty"))?;
    let runnable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        if !runnable(&p) {
            let why = match std::fs::metadata(&p) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!("stat {prog}: no such file or directory"),
                _ => "permission denied".to_string(),
            };
            return Err(field("args", format!("exec: {prog:?}: {why}")));
        }
        return Ok(p);
    }
    let path = p
        .env()
        .iter()
        .flatten()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .to_string();
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(prog);
        if runnable(&cand) {
            return Ok(cand);
        }
    }
    Err(field(
        "args",
        format!("exec: {prog:?}: executable file not found in $PATH"),
    ))
}

/// Replace this process with the user's program. Returns only on failure.
pub fn exec(p: &Process, program: &Path) -> ProcessError {
    let to_c = |s: &str| CString::new(s.as_bytes()).unwrap_or_default();
    let args: Vec<CString> = p.args().iter().flatten().map(|a| to_c(a)).collect();
    let env: Vec<CString> = p.env().iter().flatten().map(|e| to_c(e)).collect();
    let prog = CString::new(program.as_os_str().as_bytes()).unwrap_or_default();
    match nix::unistd::execve(&prog, &args, &env) {
        Err(e) => field("args", format!("exec {}: {e}", program.display())),
        Ok(never) => match never {},
    }
}

/// Reset what a Rust program changes and execve does not undo: ignored SIGPIPE, blocked signals.
pub fn reset_signals() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for s in Signal::iterator() {
        if s != Signal::SIGKILL && s != Signal::SIGSTOP {
            // SAFETY: installing SIG_DFL is always sound.
            let _ = unsafe { sigaction(s, &dfl) };
        }
    }
    let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// A pty for process.terminal: returns (master, slave path). The slave becomes our stdio
/// and controlling terminal.
pub fn open_console(p: &Process) -> Result<(OwnedFd, PathBuf)> {
    use nix::pty::{grantpt, posix_openpt, unlockpt};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).map_err(|e| field("terminal", e))?;
    grantpt(&master).map_err(|e| field("terminal", e))?;
    unlockpt(&master).map_err(|e| field("terminal", e))?;
    let name = nix::pty::ptsname_r(&master).map_err(|e| field("terminal", e))?;
    if let Some(sz) = p.console_size() {
        let ws = libc::winsize {
            ws_row: sz.height() as u16,
            ws_col: sz.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize struct from a valid pointer.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let master: OwnedFd = master.into();
    Ok((master, PathBuf::from(name)))
}

/// Make the pty slave our stdin/stdout/stderr and controlling terminal.
pub fn attach_console(slave: &Path) -> Result<()> {
    let fd =
        nix::fcntl::open(slave, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| field("terminal", e))?;
    let _ = nix::unistd::setsid();
    // SAFETY: TIOCSCTTY on a tty fd we own.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(field("terminal", std::io::Error::last_os_error()));
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors.
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            return Err(field("terminal", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Send the pty master to the console socket (SCM_RIGHTS), as runc does.
pub fn send_console(sock: &OwnedFd, master: &OwnedFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| field("terminal", format!("send to console socket: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        let s = parse_cpu_list("0-2,5").unwrap();
        assert!(s.is_set(0).unwrap() && s.is_set(2).unwrap() && s.is_set(5).unwrap());
        assert!(!s.is_set(3).unwrap());
        assert!(parse_cpu_list("a-b").is_none());
    }

    #[test]
    fn program_lookup() {
        let p: Process = serde_json::from_value(serde_json::json!({
            "args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/nonexistent:/bin"]
        }))
        .unwrap();
        assert_eq!(find_program(&p).unwrap(), PathBuf::from("/bin/sh"));
        let p: Process = serde_json::from_value(serde_json::json!({
            "args": ["no-such-prog-xyz"], "cwd": "/", "user": {"uid": 0, "gid": 0}
        }))
        .unwrap();
        assert!(find_program(&p).unwrap_err().to_string().contains("no-such-prog-xyz"));
    }
}
