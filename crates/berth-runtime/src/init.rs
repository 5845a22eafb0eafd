//! The processes that become a container: stage 1 joins and creates namespaces and
//! forks the init (as a sibling, CLONE_PARENT, so the runtime's caller is its parent);
//! stage 2 builds the container from the inside and execs the user's program.
//!
//! Everything here runs in forked children of a single-threaded parent; errors go back
//! to the parent over the sync channel.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::channel::{Channel, Msg};
use crate::fsutil::{self, ProcFs};
use crate::namespaces::Plan;
use crate::{caps, process, rootfs, seccomp};

/// What stage 2 does once the container exists.
pub enum Role<'a> {
    /// A new container: wait on the exec fifo for `start`.
    Init {
        bundle: &'a Path,
        rootfs: &'a Path,
        fifo: &'a Path,
        no_pivot: bool,
        no_new_keyring: bool,
        cgroup_mounts: rootfs::CgroupMounts,
        /// State JSON for hooks run inside the container (pid filled in by the init).
        state: serde_json::Value,
    },
    /// A process joining a running container.
    Exec,
}

pub struct Setup<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub process: &'a Process,
    pub cgroup: &'a berth_cgroups::Cgroup,
    pub plan: Plan,
    pub console: Option<OwnedFd>,
    pub preserve_fds: u32,
    /// Parent fds the child must close at once (the container's state lock).
    pub close_fds: Vec<std::os::fd::RawFd>,
    /// Stage 1 was born in the container's cgroup2 cgroup (CLONE_INTO_CGROUP): only v1
    /// hierarchies (hybrid hosts) are left to join.
    pub in_cgroup: bool,
    /// Stage 1 joins the container's cgroups itself, first thing (always for an init;
    /// for an exec unless the container is paused, when the parent places the ready
    /// process instead, so that setting it up is not frozen).
    pub join_cgroup: bool,
    /// linux.seccomp compiled by the parent (None: no filter, or a notify filter, which
    /// libseccomp loads itself for its listener fd).
    pub seccomp: Option<&'a crate::seccomp::Program>,
    pub role: Role<'a>,
}

type Res<T> = Result<T, String>;

fn e<E: std::fmt::Display>(ctx: &str) -> impl FnOnce(E) -> String + '_ {
    move |err| format!("{ctx}: {err}")
}

/// Stage 1, in the forked child. Never returns.
pub fn stage1(s: Setup, chan: Channel) -> ! {
    for fd in &s.close_fds {
        // SAFETY: closing our copy of a parent fd we will never use.
        unsafe { libc::close(*fd) };
    }
    let r = stage1_inner(&s, &chan);
    match r {
        Ok(Some(())) => exit(0),
        Ok(None) => {
            // We are the init (stage 2).
            let res = stage2(s, &chan);
            let msg = match res {
                Ok(never) => match never {},
                Err(m) => m,
            };
            let _ = chan.send(&Msg::Error(msg.clone()));
            let _ = writeln!(std::io::stderr(), "berth-runtime init: {msg}");
            exit(1)
        }
        Err(msg) => {
            let _ = chan.send(&Msg::Error(msg));
            exit(1)
        }
    }
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit skips the parent's atexit handlers and destructors, as a forked child must.
    unsafe { libc::_exit(code) }
}

/// Ok(Some) in stage 1 after forking the init; Ok(None) in the init itself.
fn stage1_inner(s: &Setup, chan: &Channel) -> Res<Option<()>> {
    if s.join_cgroup {
        s.cgroup.join_self(s.in_cgroup).map_err(e("join cgroup"))?;
    }
    s.plan.join_all().map_err(|x| x.to_string())?;
    if s.plan.new_user {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER).map_err(e("create user namespace"))?;
        chan.send(&Msg::MapIds).map_err(e("sync"))?;
        chan.expect(&Msg::Ack).map_err(e("id mappings"))?;
    }
    if !s.plan.create.is_empty() {
        nix::sched::unshare(s.plan.create).map_err(|err| format!("create namespaces {:?}: {err}", s.plan.create))?;
    }
    if s.plan.has_new(LinuxNamespaceType::Time) {
        write_time_offsets(s.spec)?;
    }
    // The init shares our channel: it waits until InitPid is sent, so that the parent
    // never sees its Ready (or Error) first.
    let (gate_r, gate_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(e("pipe"))?;
    // SAFETY: raw clone with CLONE_PARENT and no new stack behaves like fork(); this
    // process is single-threaded, so the child may keep running Rust code.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match pid {
        -1 => Err(format!("fork container init: {}", std::io::Error::last_os_error())),
        0 => {
            drop(gate_w);
            // EOF once stage 1 has sent InitPid (or died).
            let mut b = [0u8; 1];
            while let Err(nix::Error::EINTR) = nix::unistd::read(&gate_r, &mut b) {}
            Ok(None)
        }
        pid => {
            drop(gate_r);
            let r = chan.send(&Msg::InitPid(pid as i32)).map_err(e("sync"));
            drop(gate_w);
            r?;
            Ok(Some(()))
        }
    }
}

fn write_time_offsets(spec: &Spec) -> Res<()> {
    let offs = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().clone())
        .unwrap_or_default();
    let mut text = String::new();
    for (clock, o) in offs {
        text.push_str(&format!(
            "{clock} {} {}\n",
            o.secs().unwrap_or(0),
            o.nanosecs().unwrap_or(0)
        ));
    }
    if !text.is_empty() {
        std::fs::write("/proc/self/timens_offsets", text).map_err(e("linux.timeOffsets"))?;
    }
    Ok(())
}

fn stage2(s: Setup, chan: &Channel) -> Res<std::convert::Infallible> {
    if s.plan.new_user {
        let root = nix::unistd::Uid::from_raw(0);
        let rootg = nix::unistd::Gid::from_raw(0);
        nix::unistd::setresgid(rootg, rootg, rootg).map_err(e("become root in the user namespace"))?;
        nix::unistd::setresuid(root, root, root).map_err(e("become root in the user namespace"))?;
    }
    let _ = nix::unistd::setsid();
    match s.role {
        Role::Init { .. } => init_container(s, chan),
        Role::Exec => exec_process(s, chan),
    }
}

fn init_container(s: Setup, chan: &Channel) -> Res<std::convert::Infallible> {
    let Role::Init {
        bundle,
        rootfs: rootfs_path,
        fifo,
        no_pivot,
        no_new_keyring,
        ref cgroup_mounts,
        ref state,
    } = s.role
    else {
        return Err("internal: not an init".into());
    };
    let spec = s.spec;
    let p = s.process;
    let linux = spec.linux().as_ref();
    if !no_new_keyring {
        join_session_keyring(s.id);
    }
    // Our pid as the host sees it, for the hooks' state (the host /proc is still ours).
    let host_pid: i32 = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
        .unwrap_or(0);
    let mut state = state.clone();
    state["pid"] = host_pid.into();

    let in_userns = s.plan.has_new(LinuxNamespaceType::User);
    let rfs = rootfs::prepare(spec, rootfs_path, in_userns).map_err(|x| x.to_string())?;
    let mut idmapped = |i: usize| -> Result<OwnedFd, String> {
        chan.send(&Msg::IdmapMount(i)).map_err(e("sync"))?;
        match chan.recv().map_err(e("sync"))? {
            (Msg::Ack, Some(fd)) => Ok(fd),
            (Msg::Error(m), _) => Err(m),
            (m, _) => Err(format!("unexpected answer {m:?}")),
        }
    };
    rfs.mount_all(spec, bundle, cgroup_mounts, &mut idmapped)
        .map_err(|x| x.to_string())?;
    rfs.create_devices(spec).map_err(|x| x.to_string())?;

    let hooks = spec.hooks().as_ref();
    let has_runtime_hooks = hooks.is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    if has_runtime_hooks {
        chan.send(&Msg::RunHooks).map_err(e("sync"))?;
        chan.expect(&Msg::Ack).map_err(|x| x.to_string())?;
    }
    if let Some(h) = hooks.and_then(|h| h.create_container().as_ref()) {
        crate::hooks::run("createContainer", h, &state).map_err(|x| x.to_string())?;
    }

    // Handles opened while the host's view is still here; closed before exec.
    let fifo_fd =
        nix::fcntl::open(fifo, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(e("open exec fifo"))?;
    let procfs = ProcFs::open(Path::new("/proc")).map_err(|x| x.to_string())?;
    for (k, v) in linux.and_then(|l| l.sysctl().as_ref()).into_iter().flatten() {
        procfs
            .write(&format!("sys/{}", k.replace('.', "/")), v)
            .map_err(|x| format!("linux.sysctl[{k}]={v}: {x}"))?;
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|x| format!("hostname {h:?}: {x}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        // SAFETY: setdomainname reads len bytes from a valid buffer.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(format!("domainname {d:?}: {}", std::io::Error::last_os_error()));
        }
    }

    rfs.pivot(no_pivot).map_err(|x| x.to_string())?;
    drop(rfs);

    if p.terminal().unwrap_or(false) {
        let sock = s
            .console
            .as_ref()
            .ok_or("process.terminal is true but no --console-socket was given")?;
        let (master, slave) = process::open_console(p).map_err(|x| x.to_string())?;
        bind_console(&slave)?;
        process::send_console(sock, &master).map_err(|x| x.to_string())?;
        process::attach_console(&slave).map_err(|x| x.to_string())?;
    }
    rootfs::apply_root_propagation(spec).map_err(|x| x.to_string())?;
    if let Some(l) = linux {
        rootfs::mask_paths(l.masked_paths().as_deref().unwrap_or_default()).map_err(|x| x.to_string())?;
        rootfs::readonly_paths(l.readonly_paths().as_deref().unwrap_or_default()).map_err(|x| x.to_string())?;
        if let Some(pers) = l.personality() {
            set_personality(pers)?;
        }
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        rootfs::readonly_root().map_err(|x| x.to_string())?;
    }
    process::create_cwd(p).map_err(|x| x.to_string())?;
    let late_filter = finish_process(&s, &procfs, chan)?;
    let program = process::find_program(p).map_err(|x| x.to_string())?;
    chan.send(&Msg::Ready).map_err(e("sync"))?;

    // Wait for `start`: the open blocks until it opens the fifo for reading.
    let path = fsutil::fd_path(fifo_fd.as_raw_fd());
    let w = nix::fcntl::open(&path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(e("open exec fifo"))?;
    nix::unistd::write(&w, b"0").map_err(e("write exec fifo"))?;
    drop(w);
    drop(fifo_fd);
    if let Some(h) = spec.hooks().as_ref().and_then(|h| h.start_container().as_ref()) {
        crate::hooks::run("startContainer", h, &state).map_err(|x| x.to_string())?;
    }
    drop(procfs);
    exec_now(&s, p, &program, late_filter)
}

/// The common tail: rlimits, LSM labels, capabilities, user, no_new_privs, seccomp, cwd.
/// Returns whether a seccomp notify fd was handed to the parent.
/// Returns the seccomp filter still to be loaded when it must wait until just before
/// execve (no_new_privs set and no notify): then the fewest syscalls run under it.
fn finish_process<'a>(s: &Setup<'a>, procfs: &ProcFs, chan: &Channel) -> Res<Option<&'a crate::seccomp::Program>> {
    let p = s.process;
    process::set_rlimits(p).map_err(|x| x.to_string())?;
    process::set_oom_score_adj(p, procfs).map_err(|x| x.to_string())?;
    process::set_lsm_labels(p, procfs).map_err(|x| x.to_string())?;
    process::set_io_priority(p).map_err(|x| x.to_string())?;
    process::set_scheduler(p).map_err(|x| x.to_string())?;
    let sets = match p.capabilities() {
        Some(c) => Some(caps::Sets::from_spec(c).map_err(|x| x.to_string())?),
        None => None,
    };
    let nnp = p.no_new_privileges().unwrap_or(false);
    let sc = s.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: do it while we have it.
    // A notify filter is loaded early too, so the parent can pass its fd on.
    let early = sc.is_some_and(|sc| !nnp || seccomp::uses_notify(sc));
    if early {
        match (s.seccomp, sc) {
            (Some(prog), _) => prog.load().map_err(e("load seccomp filter"))?,
            (None, Some(sc)) => load_seccomp(sc, chan)?,
            (None, None) => {}
        }
    }
    if let Some(sets) = &sets {
        sets.drop_bounding().map_err(|x| x.to_string())?;
    }
    process::set_user(p).map_err(|x| x.to_string())?;
    if let Some(sets) = &sets {
        sets.apply().map_err(|x| x.to_string())?;
    }
    if nnp {
        // SAFETY: PR_SET_NO_NEW_PRIVS with constant arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!("process.noNewPrivileges: {}", std::io::Error::last_os_error()));
        }
    }
    process::enter_cwd(p).map_err(|x| x.to_string())?;
    // runtime-spec: execCPUAffinity "is not applicable to the container's init process".
    if matches!(s.role, Role::Exec) {
        process::set_final_affinity(p).map_err(|x| x.to_string())?;
    }
    Ok(if early { None } else { s.seccomp })
}

fn load_seccomp(sc: &oci_spec::runtime::LinuxSeccomp, chan: &Channel) -> Res<()> {
    match seccomp::load(sc).map_err(|x| x.to_string())? {
        Some(fd) => {
            chan.send_with_fd(&Msg::SeccompFd, Some(fd.as_raw_fd()))
                .map_err(e("sync"))?;
            chan.expect(&Msg::Ack).map_err(|x| x.to_string())
        }
        None => Ok(()),
    }
}

fn exec_now(
    s: &Setup,
    p: &Process,
    program: &Path,
    late_filter: Option<&crate::seccomp::Program>,
) -> Res<std::convert::Infallible> {
    process::check_cwd_inside().map_err(|x| x.to_string())?;
    fsutil::cloexec_from(3 + s.preserve_fds).map_err(e("close inherited fds"))?;
    process::reset_signals();
    if let Some(f) = late_filter {
        f.load().map_err(e("load seccomp filter"))?;
    }
    Err(process::exec(p, program).to_string())
}

fn exec_process(s: Setup, chan: &Channel) -> Res<std::convert::Infallible> {
    let p = s.process;
    if p.terminal().unwrap_or(false) {
        let sock = s
            .console
            .as_ref()
            .ok_or("process.terminal is true but no --console-socket was given")?;
        let (master, slave) = process::open_console(p).map_err(|x| x.to_string())?;
        process::send_console(sock, &master).map_err(|x| x.to_string())?;
        process::attach_console(&slave).map_err(|x| x.to_string())?;
    }
    let procfs = ProcFs::open(Path::new("/proc")).map_err(|x| x.to_string())?;
    let late_filter = finish_process(&s, &procfs, chan)?;
    drop(procfs);
    let program = process::find_program(p).map_err(|x| x.to_string())?;
    chan.send(&Msg::Ready).map_err(e("sync"))?;
    // The parent puts us in the container's cgroup, then lets us go.
    chan.expect(&Msg::Ack).map_err(|x| x.to_string())?;
    exec_now(&s, p, &program, late_filter)
}

fn bind_console(slave: &Path) -> Res<()> {
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(e("open /"))?;
    let target = fsutil::create_file_in_root(&root, Path::new("/dev/console")).map_err(|x| x.to_string())?;
    nix::mount::mount(
        Some(slave),
        &fsutil::fd_path(target.as_raw_fd()),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(e("bind /dev/console"))
}

fn set_personality(p: &oci_spec::runtime::LinuxPersonality) -> Res<()> {
    use oci_spec::runtime::LinuxPersonalityDomain;
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality(2) with a plain integer.
    if unsafe { libc::personality(persona) } == -1 {
        return Err(format!("linux.personality: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// A session keyring of the container's own, so it does not share the caller's.
fn join_session_keyring(id: &str) {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = std::ffi::CString::new(format!("_ses.{id}")).unwrap_or_default();
    // SAFETY: keyctl(JOIN_SESSION_KEYRING) reads a NUL-terminated name. Failure (e.g. keyctl
    // blocked where we run) is not fatal, as in runc.
    unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
}

/// /proc/PID/ns/* paths of a running container's init, user namespace first.
pub fn namespaces_of(pid: i32, spec: &Spec) -> Vec<oci_spec::runtime::LinuxNamespace> {
    let mut out = Vec::new();
    for ns in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
    {
        let mut n = ns.clone();
        n.set_path(Some(PathBuf::from(format!(
            "/proc/{pid}/ns/{}",
            crate::namespaces::proc_name(ns.typ())
        ))));
        out.push(n);
    }
    out
}
