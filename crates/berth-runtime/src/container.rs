//! The runtime side of a container's life: create, start, state, kill, delete, pause,
//! resume, update. Used by the `berth-runtime` CLI and, in-process, by the engine.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Spec};

use crate::channel::{self, Channel, Msg};
use crate::init::{self, Role, Setup};
use crate::namespaces::Plan;
use crate::state::{self, ContainerDir, State, Status};
use crate::{fsutil, hooks, rootfs, spec};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::Error),
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    #[error("container {id}: {msg}")]
    Container { id: String, msg: String },
    #[error("container {id} is {status}: {msg}")]
    WrongState { id: String, status: Status, msg: String },
}

pub type Result<T> = std::result::Result<T, Error>;

fn cerr(id: &str, msg: impl std::fmt::Display) -> Error {
    Error::Container {
        id: id.into(),
        msg: msg.to_string(),
    }
}

/// Options of `create` (runc's flags).
#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub root: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Where cgroup hierarchies are mounted (tests point it elsewhere).
    pub cgroup_root: Option<PathBuf>,
    /// linux.seccomp already compiled by the caller (from this very spec: the caller
    /// vouches for that); None: compiled here.
    pub seccomp: Option<crate::seccomp::Program>,
}

pub fn cgroup_root(o: &Option<PathBuf>) -> PathBuf {
    o.clone().unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"))
}

/// Undo a half-made container on any failure: kill the init, drop its cgroup and state.
struct Rollback {
    dir: Option<ContainerDir>,
    cgroup: Option<berth_cgroups::Cgroup>,
    pids: Vec<i32>,
}

impl Drop for Rollback {
    fn drop(&mut self) {
        for &p in &self.pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(p), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(p), None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.destroy();
        }
        if let Some(d) = self.dir.take() {
            let _ = d.remove();
        }
    }
}

/// The device cgroup rules every container gets before its own (as runc adds them).
fn default_device_rules() -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    let rule = |t: &str, ma: Option<i64>, mi: Option<i64>, acc: &str, allow: bool| {
        serde_json::from_value::<oci_spec::runtime::LinuxDeviceCgroup>(serde_json::json!({
            "allow": allow, "type": t, "major": ma, "minor": mi, "access": acc
        }))
        .unwrap_or_default()
    };
    vec![
        rule("c", None, None, "m", true),
        rule("b", None, None, "m", true),
        rule("c", Some(1), Some(3), "rwm", true),
        rule("c", Some(1), Some(5), "rwm", true),
        rule("c", Some(1), Some(7), "rwm", true),
        rule("c", Some(1), Some(8), "rwm", true),
        rule("c", Some(1), Some(9), "rwm", true),
        rule("c", Some(5), Some(0), "rwm", true),
        rule("c", Some(5), Some(1), "rwm", true),
        rule("c", Some(5), Some(2), "rwm", true),
        rule("c", Some(136), None, "rwm", true),
    ]
}

fn resources_with_defaults(spec: &Spec) -> LinuxResources {
    let mut res = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    // The spec's rules first (usually "deny all"), then what every container needs, as runc does.
    let mut devs = res.devices().clone().unwrap_or_default();
    devs.extend(default_device_rules());
    // linux.devices are allowed too, so the nodes we create are usable.
    for d in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default()
    {
        let t = match d.typ() {
            oci_spec::runtime::LinuxDeviceType::B => "b",
            oci_spec::runtime::LinuxDeviceType::P => continue,
            _ => "c",
        };
        devs.push(
            serde_json::from_value(serde_json::json!({
                "allow": true, "type": t, "major": d.major(), "minor": d.minor(), "access": "rwm"
            }))
            .unwrap_or_default(),
        );
    }
    res.set_devices(Some(devs));
    res
}

fn write_pid_file(path: &Path, pid: i32) -> std::result::Result<(), fsutil::FsError> {
    fsutil::atomic_write(path, pid.to_string().as_bytes())
}

fn connect_console(path: &Path) -> std::io::Result<OwnedFd> {
    let s = std::os::unix::net::UnixStream::connect(path)?;
    Ok(s.into())
}

/// `create`: everything up to the init waiting for `start`. Returns the init's pid.
pub fn create(o: &CreateOpts) -> Result<i32> {
    let id = o.id.as_str();
    let bundle = std::path::absolute(&o.bundle).map_err(|e| cerr(id, format!("bundle {}: {e}", o.bundle.display())))?;
    let spec = spec::load(&bundle)?;
    spec::validate(&spec, &bundle)?;
    let rootfs = spec::rootfs(&spec, &bundle)?;
    let process = spec
        .process()
        .clone()
        .ok_or_else(|| cerr(id, "config.json has no process"))?;
    let linux = spec.linux().clone().unwrap_or_default();
    // Compiled once, here (unless the caller did); the child only loads it.
    let seccomp = match linux.seccomp() {
        Some(sc) if crate::seccomp::uses_notify(sc) => None,
        Some(_) if o.seccomp.is_some() => o.seccomp.clone(),
        Some(sc) => crate::seccomp::program(sc).map_err(|e| cerr(id, e))?,
        None => None,
    };
    let dir = ContainerDir::create(&o.root, id)?;
    let mut rb = Rollback {
        dir: Some(dir),
        cgroup: None,
        pids: vec![],
    };
    let cgroups_path = linux.cgroups_path().as_ref().map(|p| p.to_string_lossy().into_owned());
    let cgroup = berth_cgroups::Cgroup::new(&cgroup_root(&o.cgroup_root), cgroups_path.as_deref(), id)?;
    cgroup.create()?;
    rb.cgroup = Some(cgroup.clone());
    cgroup.apply(&resources_with_defaults(&spec))?;

    let dir = rb.dir.as_ref().ok_or_else(|| cerr(id, "internal: no state dir"))?;
    let fifo = dir.fifo();
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(|e| cerr(id, format!("mkfifo {}: {e}", fifo.display())))?;
    // mkfifo is filtered by the umask; the init writes to it after dropping to process.user.
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .map_err(|e| cerr(id, format!("chmod {}: {e}", fifo.display())))?;
    let console = match &o.console_socket {
        Some(p) => Some(connect_console(p).map_err(|e| cerr(id, format!("console socket {}: {e}", p.display())))?),
        None if process.terminal().unwrap_or(false) => {
            return Err(cerr(id, "process.terminal is true but no --console-socket was given"))
        }
        None => None,
    };
    let plan = Plan::new(linux.namespaces().as_deref().unwrap_or_default());
    let unified = cgroup.mode() == berth_cgroups::Mode::Unified;
    let cgroup_mounts = rootfs::CgroupMounts {
        unified,
        new_cgroupns: plan.has_new(LinuxNamespaceType::Cgroup),
        sources: cgroup.mount_sources(),
    };
    let created = state::now_rfc3339();
    let mut st = State {
        id: id.into(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created,
        owner: "root".into(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: cgroup.clone(),
        config: spec.clone(),
    };
    let hook_state = st.oci_state(Status::Creating);
    let setup = Setup {
        id,
        spec: &spec,
        process: &process,
        cgroup: &cgroup,
        plan,
        console,
        preserve_fds: o.preserve_fds,
        close_fds: vec![dir.lock_fd()],
        in_cgroup: false,
        join_cgroup: true,
        seccomp: seccomp.as_ref(),
        role: Role::Init {
            bundle: &bundle,
            rootfs: &rootfs,
            fifo: &fifo,
            no_pivot: o.no_pivot,
            no_new_keyring: o.no_new_keyring,
            cgroup_mounts,
            state: hook_state.clone(),
        },
    };
    let (pid, _chan) = launch(setup, &spec, &hook_state, &mut rb, |msg, pid, chan| match msg {
        Msg::RunHooks => {
            let mut s = hook_state.clone();
            s["pid"] = pid.into();
            let h = spec.hooks().clone().unwrap_or_default();
            hooks::run("prestart", h.prestart().as_deref().unwrap_or_default(), &s)?;
            hooks::run("createRuntime", h.create_runtime().as_deref().unwrap_or_default(), &s)?;
            chan.send(&Msg::Ack).map_err(|e| cerr(id, e))?;
            Ok(())
        }
        Msg::IdmapMount(i) => match crate::idmap::mount_fd(&spec, &bundle, i, pid) {
            Ok(fd) => chan.send_with_fd(&Msg::Ack, Some(fd.as_raw_fd())),
            Err(e) => chan.send(&Msg::Error(e)),
        }
        .map_err(|e| cerr(id, e)),
        other => Err(cerr(id, format!("unexpected message {other:?}"))),
    })?;
    st.pid = pid;
    st.pid_start = state::pid_start_time(pid).ok_or_else(|| cerr(id, "the container's init died during create"))?;
    let dir = rb.dir.as_ref().ok_or_else(|| cerr(id, "internal: no state dir"))?;
    dir.save(&st)?;
    if let Some(p) = &o.pid_file {
        write_pid_file(p, pid).map_err(|e| cerr(id, e))?;
    }
    // Success: keep everything.
    rb.pids.clear();
    rb.cgroup = None;
    drop(rb.dir.take());
    Ok(pid)
}

/// Fork stage 1 and serve the setup conversation until the container is ready.
/// `extra` handles role-specific messages. Returns the pid of the container process.
fn launch<F>(
    setup: Setup,
    spec: &Spec,
    state: &serde_json::Value,
    rb: &mut Rollback,
    mut extra: F,
) -> Result<(i32, Channel)>
where
    F: FnMut(Msg, i32, &Channel) -> Result<()>,
{
    let id = setup.id.to_string();
    let (parent, child) = channel::pair().map_err(|e| cerr(&id, e))?;
    let new_user = setup.plan.new_user;
    // A new container's setup process is born in its cgroup2 cgroup (CLONE_INTO_CGROUP;
    // on hybrid hosts the cgroup2 mount's): moving a process there afterwards takes the
    // cgroup threadgroup lock for writing, which waits for an RCU grace period.
    let mut setup = setup;
    let born_in = match (setup.join_cgroup, setup.cgroup.mode(), setup.cgroup.unified_path()) {
        (true, berth_cgroups::Mode::Unified | berth_cgroups::Mode::Hybrid, Some(dir)) => std::fs::File::open(dir).ok(),
        _ => None,
    };
    let forked = match &born_in {
        Some(cg) => match fork_into_cgroup(cg) {
            Ok(r) => {
                setup.in_cgroup = true;
                Ok(r)
            }
            Err(e) => {
                crate::log::debug(&format!(
                    "clone3(CLONE_INTO_CGROUP) failed ({e}); fork and join instead"
                ));
                plain_fork()
            }
        },
        None => plain_fork(),
    };
    let stage1 = match forked.map_err(|e| cerr(&id, format!("fork: {e}")))? {
        ForkResult::Child => {
            drop(parent);
            init::stage1(setup, child)
        }
        ForkResult::Parent { child: pid } => pid,
    };
    drop(child);
    drop(setup);
    rb.pids.push(stage1.as_raw());
    let mut init_pid = 0;
    loop {
        let (msg, fd) = match parent.recv() {
            Ok(m) => m,
            Err(channel::ChannelError::Closed) if init_pid == 0 => {
                let st = waitpid(stage1, None);
                return Err(cerr(&id, format!("container setup process died ({st:?})")));
            }
            Err(channel::ChannelError::Closed) => return Err(cerr(&id, "the container's init died during setup")),
            Err(e) => return Err(cerr(&id, e)),
        };
        match msg {
            Msg::MapIds if new_user => {
                write_id_maps(stage1.as_raw(), spec).map_err(|e| cerr(&id, e))?;
                parent.send(&Msg::Ack).map_err(|e| cerr(&id, e))?;
            }
            Msg::InitPid(p) => {
                init_pid = p;
                rb.pids.push(p);
                match waitpid(stage1, None) {
                    Ok(WaitStatus::Exited(_, 0)) => {}
                    other => return Err(cerr(&id, format!("container setup process failed: {other:?}"))),
                }
                rb.pids.retain(|&x| x != stage1.as_raw());
            }
            Msg::SeccompFd => {
                let fd = fd.ok_or_else(|| cerr(&id, "seccomp notify: no fd received"))?;
                let mut st = state.clone();
                st["pid"] = init_pid.into();
                send_seccomp_fd(spec, &fd, &st).map_err(|e| cerr(&id, e))?;
                parent.send(&Msg::Ack).map_err(|e| cerr(&id, e))?;
            }
            Msg::Ready => return Ok((init_pid, parent)),
            Msg::Error(e) => {
                return Err(cerr(&id, e));
            }
            other => extra(other, init_pid, &parent)?,
        }
    }
}

fn plain_fork() -> nix::Result<ForkResult> {
    // SAFETY: the runtime is single-threaded when it forks; the child only runs stage 1.
    unsafe { nix::unistd::fork() }
}

/// fork(), with the child placed in the cgroup v2 directory `cg` (clone3 CLONE_INTO_CGROUP).
fn fork_into_cgroup(cg: &std::fs::File) -> nix::Result<ForkResult> {
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cg.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without a new stack behaves like fork(); the runtime is single-threaded
    // here and the child only runs stage 1.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        -1 => Err(nix::Error::last()),
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}

fn write_id_maps(pid: i32, spec: &Spec) -> std::result::Result<(), String> {
    let linux = spec.linux().as_ref().ok_or("no linux section")?;
    let fmt = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let uid = fmt(linux.uid_mappings());
    let gid = fmt(linux.gid_mappings());
    std::fs::write(format!("/proc/{pid}/uid_map"), &uid).map_err(|e| format!("linux.uidMappings {uid:?}: {e}"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), &gid).map_err(|e| format!("linux.gidMappings {gid:?}: {e}"))?;
    Ok(())
}

/// SCMP_ACT_NOTIFY: hand the listener fd, with the container's state, to listenerPath.
fn send_seccomp_fd(spec: &Spec, fd: &OwnedFd, state: &serde_json::Value) -> std::result::Result<(), String> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let sc = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .ok_or("no seccomp")?;
    let path = sc
        .listener_path()
        .as_ref()
        .ok_or("linux.seccomp.listenerPath missing")?;
    let sock = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("linux.seccomp.listenerPath {}: {e}", path.display()))?;
    // The runtime-spec's containerProcessState.
    let payload = serde_json::json!({
        "ociVersion": state::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": state["pid"],
        "metadata": sc.listener_metadata().clone().unwrap_or_default(),
        "state": state,
    })
    .to_string();
    let iov = [std::io::IoSlice::new(payload.as_bytes())];
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("send seccomp fd to {}: {e}", path.display()))?;
    Ok(())
}

/// `start`: release the init waiting on the exec fifo, then run poststart hooks.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    if status != Status::Created {
        return Err(Error::WrongState {
            id: id.into(),
            status,
            msg: "cannot start a container that is not created".into(),
        });
    }
    let fifo = dir.fifo();
    let f = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| cerr(id, format!("open {}: {e}", fifo.display())))?;
    // The init opens the other end and writes one byte; give up if it dies instead.
    let mut buf = [0u8; 1];
    loop {
        match nix::unistd::read(&f, &mut buf) {
            Ok(1) => break,
            Ok(_) | Err(nix::Error::EAGAIN) => {
                if !st.init_alive() {
                    // A short-lived program may have run and exited between our read and
                    // this check: its byte is then in the fifo, and start did succeed.
                    if matches!(nix::unistd::read(&f, &mut buf), Ok(1)) {
                        break;
                    }
                    return Err(cerr(id, "the container's init exited before start"));
                }
                let mut pfd = [nix::poll::PollFd::new(
                    std::os::fd::AsFd::as_fd(&f),
                    nix::poll::PollFlags::POLLIN,
                )];
                let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(10u16));
            }
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(cerr(id, format!("read exec fifo: {e}"))),
        }
    }
    std::fs::remove_file(&fifo).map_err(|e| cerr(id, format!("remove {}: {e}", fifo.display())))?;
    if let Some(h) = st.config.hooks().as_ref().and_then(|h| h.poststart().clone()) {
        // A failing poststart hook is logged, not fatal (runtime-spec).
        if let Err(e) = hooks::run("poststart", &h, &st.oci_state(Status::Running)) {
            crate::log::warn(&e.to_string());
        }
    }
    Ok(())
}

/// `state`: the runtime-spec state JSON.
pub fn state(root: &Path, id: &str) -> Result<serde_json::Value> {
    let dir = ContainerDir::open(root, id)?;
    let st = dir.load()?;
    Ok(st.oci_state(st.status(&dir.path)))
}

/// Load a container's state and status (holding its lock while `f` runs).
pub fn with_container<T>(
    root: &Path,
    id: &str,
    f: impl FnOnce(&ContainerDir, &State, Status) -> Result<T>,
) -> Result<T> {
    let dir = ContainerDir::open(root, id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    f(&dir, &st, status)
}

/// `kill`: a signal to the init, or with `all` to every process of the container.
pub fn kill(root: &Path, id: &str, sig: Signal, all: bool) -> Result<()> {
    with_container(root, id, |_, st, status| {
        if status == Status::Stopped {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                msg: "container not running".into(),
            });
        }
        if all {
            if status == Status::Paused && sig == Signal::SIGKILL {
                let _ = st.cgroup.freeze(berth_cgroups::FreezerState::Thawed);
            }
            st.cgroup.kill_all(sig as i32)?;
            return Ok(());
        }
        nix::sys::signal::kill(Pid::from_raw(st.pid), sig).map_err(|e| cerr(id, format!("kill {sig}: {e}")))
    })
}

/// `delete`: remove a stopped container (or, with `force`, kill it first).
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let dir = match ContainerDir::open(root, id) {
        Ok(d) => d,
        Err(state::StateError::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let st = dir.load()?;
    let status = st.status(&dir.path);
    // A created container never ran anything of the user's: runc deletes it without --force.
    if status != Status::Stopped {
        if !force && status != Status::Created {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                msg: "cannot delete a container that is not stopped (use --force)".into(),
            });
        }
        if status == Status::Paused {
            let _ = st.cgroup.freeze(berth_cgroups::FreezerState::Thawed);
        }
        let _ = st.cgroup.kill_all(libc::SIGKILL);
        let _ = nix::sys::signal::kill(Pid::from_raw(st.pid), Signal::SIGKILL);
        wait_gone(&st, Duration::from_secs(10));
    }
    let _ = st.cgroup.kill_all(libc::SIGKILL);
    st.cgroup.destroy()?;
    if let Some(h) = st.config.hooks().as_ref().and_then(|h| h.poststop().clone()) {
        if let Err(e) = hooks::run("poststop", &h, &st.oci_state(Status::Stopped)) {
            crate::log::warn(&e.to_string());
        }
    }
    dir.remove()?;
    Ok(())
}

fn wait_gone(st: &State, limit: Duration) {
    let t = Instant::now();
    while st.init_alive() && t.elapsed() < limit {
        // Reap it if it is our child (run, or the in-process engine).
        let _ = waitpid(Pid::from_raw(st.pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn pause(root: &Path, id: &str) -> Result<()> {
    with_container(root, id, |_, st, status| {
        if status != Status::Running && status != Status::Created {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                msg: "cannot pause a container that is not running".into(),
            });
        }
        Ok(st.cgroup.freeze(berth_cgroups::FreezerState::Frozen)?)
    })
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    with_container(root, id, |_, st, status| {
        if status != Status::Paused {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                msg: "cannot resume a container that is not paused".into(),
            });
        }
        Ok(st.cgroup.freeze(berth_cgroups::FreezerState::Thawed)?)
    })
}

/// `update`: new resource limits, merged into the recorded config.
pub fn update(root: &Path, id: &str, res: &LinuxResources) -> Result<()> {
    with_container(root, id, |dir, st, status| {
        if status == Status::Stopped {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                msg: "cannot update a stopped container".into(),
            });
        }
        st.cgroup.apply(res)?;
        let mut st = st.clone();
        let mut linux = st.config.linux().clone().unwrap_or_default();
        let merged = merge_resources(linux.resources().clone().unwrap_or_default(), res);
        linux.set_resources(Some(merged));
        st.config.set_linux(Some(linux));
        dir.save(&st)?;
        Ok(())
    })
}

fn merge_resources(old: LinuxResources, new: &LinuxResources) -> LinuxResources {
    let mut a = serde_json::to_value(old).unwrap_or_default();
    let b = serde_json::to_value(new).unwrap_or_default();
    if let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object()) {
        for (k, v) in b {
            match (a.get_mut(k), v) {
                (Some(serde_json::Value::Object(ao)), serde_json::Value::Object(bo)) => {
                    for (k2, v2) in bo {
                        ao.insert(k2.clone(), v2.clone());
                    }
                }
                _ => {
                    a.insert(k.clone(), v.clone());
                }
            }
        }
    }
    serde_json::from_value(a).unwrap_or_default()
}

/// Options of `exec`.
pub struct ExecOpts {
    pub root: PathBuf,
    pub id: String,
    pub process: oci_spec::runtime::Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    /// Exec into a paused container too (the process runs once it is resumed).
    pub ignore_paused: bool,
    /// The container's linux.seccomp already compiled by the caller (see CreateOpts).
    pub seccomp: Option<crate::seccomp::Program>,
}

/// `exec`: start a process in a running container. Returns its pid; it is our child.
pub fn exec(o: &ExecOpts) -> Result<i32> {
    let id = o.id.as_str();
    let dir = ContainerDir::open(&o.root, id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    let allowed = matches!(status, Status::Running | Status::Created) || (status == Status::Paused && o.ignore_paused);
    if !allowed {
        return Err(Error::WrongState {
            id: id.into(),
            status,
            msg: "cannot exec in a container that is not running".into(),
        });
    }
    let console = match &o.console_socket {
        Some(p) => Some(connect_console(p).map_err(|e| cerr(id, format!("console socket {}: {e}", p.display())))?),
        None if o.process.terminal().unwrap_or(false) => {
            return Err(cerr(id, "process.terminal is true but no --console-socket was given"))
        }
        None => None,
    };
    // Not held while the process is set up: joining a paused container's cgroup blocks
    // until `resume`, which needs the lock.
    drop(dir);
    let nss = init::namespaces_of(st.pid, &st.config);
    let plan = Plan::new(&nss);
    let seccomp = match st.config.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(sc) if crate::seccomp::uses_notify(sc) => None,
        Some(_) if o.seccomp.is_some() => o.seccomp.clone(),
        Some(sc) => crate::seccomp::program(sc).map_err(|e| cerr(id, e))?,
        None => None,
    };
    let setup = Setup {
        id,
        spec: &st.config,
        process: &o.process,
        cgroup: &st.cgroup,
        plan,
        console,
        preserve_fds: o.preserve_fds,
        close_fds: vec![],
        in_cgroup: false,
        join_cgroup: status != Status::Paused,
        seccomp: seccomp.as_ref(),
        role: Role::Exec,
    };
    let mut rb = Rollback {
        dir: None,
        cgroup: None,
        pids: vec![],
    };
    let joined = setup.join_cgroup;
    let (pid, chan) = launch(setup, &st.config, &st.oci_state(status), &mut rb, |m, _, _| {
        Err(cerr(id, format!("unexpected message {m:?}")))
    })?;
    if !joined {
        st.cgroup.add_pid(pid)?;
    }
    chan.send(&Msg::Ack).map_err(|e| cerr(id, e))?;
    // The channel closes when execve succeeds (close-on-exec); an error arrives otherwise.
    // In a paused container that happens only after `resume`: do not wait for it.
    let result = if status == Status::Paused {
        Err(channel::ChannelError::Closed)
    } else {
        chan.recv()
    };
    match result {
        Err(channel::ChannelError::Closed) => {}
        Ok((Msg::Error(e), _)) => return Err(cerr(id, e)),
        Ok((m, _)) => return Err(cerr(id, format!("unexpected message {m:?}"))),
        Err(e) => return Err(cerr(id, e)),
    }
    rb.pids.clear();
    if let Some(p) = &o.pid_file {
        write_pid_file(p, pid).map_err(|e| cerr(id, e))?;
    }
    Ok(pid)
}

/// Every container under `root` with its status, for `list`.
pub fn list(root: &Path) -> Vec<(State, Status)> {
    state::list_ids(root)
        .into_iter()
        .filter_map(|id| {
            let dir = ContainerDir::open(root, &id).ok()?;
            let st = dir.load().ok()?;
            let status = st.status(&dir.path);
            Some((st, status))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CLONE_INTO_CGROUP puts the child straight into the given cgroup v2 directory (the
    /// hybrid host's cgroup2 mount works for this too); the parent stays where it was.
    #[test]
    fn fork_into_cgroup_places_the_child() {
        let unified = Path::new("/sys/fs/cgroup/unified");
        let base = if unified.join("cgroup.procs").exists() {
            unified
        } else {
            Path::new("/sys/fs/cgroup")
        };
        let name = format!("berth-test-clone3-{}", std::process::id());
        let dir = base.join(&name);
        std::fs::create_dir(&dir).unwrap();
        let cg = std::fs::File::open(&dir).unwrap();
        // Made before the fork: the child of a multi-threaded process must not allocate
        // (another thread may hold the allocator's lock, which the child would wait on forever).
        let want = format!("0::/{name}\n");
        let r = fork_into_cgroup(&cg);
        if let Ok(ForkResult::Child) = r {
            // Only raw syscalls in the child of a multi-threaded test process.
            let mut buf = [0u8; 4096];
            // SAFETY: open/read/close on a NUL-terminated literal path and a stack buffer.
            let n = unsafe {
                let fd = libc::open(c"/proc/self/cgroup".as_ptr(), libc::O_RDONLY);
                let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                libc::close(fd);
                n
            };
            let text = &buf[..n.max(0) as usize];
            let ok = text.windows(want.len()).any(|w| w == want.as_bytes());
            // SAFETY: leave the forked child at once.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let res = match r {
            Ok(ForkResult::Parent { child }) => waitpid(child, None),
            _ => Err(nix::Error::EINVAL),
        };
        let _ = std::fs::remove_dir(&dir);
        match res {
            Ok(WaitStatus::Exited(_, code)) => assert_eq!(code, 0, "child not in {name}"),
            other => panic!("clone3 into cgroup: {other:?} (fork result {r:?})"),
        }
        // Positive control: we, the parent, are not in that cgroup.
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        assert!(!own.contains(&name));
    }
}
