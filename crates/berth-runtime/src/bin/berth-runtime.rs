//! `berth-runtime`: runc's command line over the berth-runtime library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use berth_runtime::console::ConsoleListener;
use berth_runtime::container::{self, CreateOpts, ExecOpts};
use berth_runtime::state::Status;
use berth_runtime::{log, ops, selfexe, state};
use clap::{Args, Parser, Subcommand};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

#[derive(Parser)]
#[command(
    name = "berth-runtime",
    version,
    about = "Berth's OCI runtime (runc-compatible command line)"
)]
struct Cli {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd for cgroups (not supported yet).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility (checkpointing is not supported).
    #[arg(long, hide = true)]
    criu: Option<String>,
    /// Accepted for runc compatibility: true, false or auto.
    #[arg(long, hide = true)]
    rootless: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct CreateArgs {
    /// Path to the bundle (default: current directory).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass N extra fds (from 3) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a container (it waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create and start a container, and (unless detached) wait for it.
    Run {
        #[command(flatten)]
        c: CreateArgs,
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Print the state of a container.
    State { id: String },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Send a signal (default SIGTERM) to the container's init.
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Delete containers.
    Delete {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Run a process in a running container.
    Exec(Box<ExecArgs>),
    /// Processes of a container.
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change resource limits.
    Update(Box<UpdateArgs>),
    /// Statistics and OOM events.
    Events {
        #[arg(long, default_value = "5s")]
        interval: String,
        #[arg(long)]
        stats: bool,
        id: String,
    },
    /// Write a default config.json.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        rootless: bool,
    },
    /// Print the runtime's features (runtime-spec features document).
    Features,
}

#[derive(Args)]
struct ExecArgs {
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long)]
    cwd: Option<PathBuf>,
    #[arg(short, long)]
    env: Vec<String>,
    #[arg(short, long)]
    tty: bool,
    /// uid[:gid]
    #[arg(short, long)]
    user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// A process.json to run instead of the arguments.
    #[arg(short, long)]
    process: Option<PathBuf>,
    #[arg(short, long)]
    detach: bool,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "process-label")]
    process_label: Option<String>,
    #[arg(long)]
    apparmor: Option<String>,
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Add a capability (bounding, effective, permitted; never inheritable).
    #[arg(short, long)]
    cap: Vec<String>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args)]
struct UpdateArgs {
    /// LinuxResources JSON file ("-" for stdin).
    #[arg(short, long)]
    resources: Option<PathBuf>,
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
    #[arg(long = "cpu-share")]
    cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    #[arg(long)]
    memory: Option<String>,
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    memory_swap: Option<String>,
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    id: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    log::init(log::Config {
        file: cli.log.clone(),
        json: cli.log_format == "json",
        debug: cli.debug,
    });
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            log::error(&format!("{e:#}"));
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    if cli.systemd_cgroup {
        bail!(
            "--systemd-cgroup: the systemd cgroup driver is not supported yet; use the cgroupfs driver (omit the flag)"
        );
    }
    if !matches!(cli.log_format.as_str(), "text" | "json") {
        bail!("--log-format {:?}: must be text or json", cli.log_format);
    }
    let root = cli.root.clone();
    match cli.cmd {
        Cmd::Create(a) => {
            seal()?;
            container::create(&create_opts(&a, &root))?;
            Ok(0)
        }
        Cmd::Start { id } => {
            container::start(&root, &id)?;
            Ok(0)
        }
        Cmd::Run { c, detach, keep } => {
            seal()?;
            run_container(&c, &root, detach, keep)
        }
        Cmd::State { id } => {
            let v = container::state(&root, &id)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(0)
        }
        Cmd::List { format, quiet } => list(&root, &format, quiet),
        Cmd::Kill { all, id, signal } => {
            let sig = parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            container::kill(&root, &id, sig, all)?;
            Ok(0)
        }
        Cmd::Delete { force, ids } => {
            let mut failed = None;
            for id in ids {
                if let Err(e) = container::delete(&root, &id, force) {
                    log::error(&e.to_string());
                    failed = Some(e);
                }
            }
            Ok(if failed.is_some() { 1 } else { 0 })
        }
        Cmd::Exec(a) => {
            seal()?;
            exec(*a, &root)
        }
        Cmd::Ps { format, id, ps_args } => ps(&root, &id, &format, &ps_args),
        Cmd::Pause { id } => {
            container::pause(&root, &id)?;
            Ok(0)
        }
        Cmd::Resume { id } => {
            container::resume(&root, &id)?;
            Ok(0)
        }
        Cmd::Update(a) => {
            let res = update_resources(&a)?;
            container::update(&root, &a.id, &res)?;
            Ok(0)
        }
        Cmd::Events { interval, stats, id } => events(&root, &id, &interval, stats),
        Cmd::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("File {} exists. Remove it first", path.display());
            }
            let v = ops::default_spec(rootless);
            std::fs::write(&path, serde_json::to_string_pretty(&v)?)
                .with_context(|| format!("write {}", path.display()))?;
            Ok(0)
        }
        Cmd::Features => {
            println!("{}", serde_json::to_string_pretty(&ops::features())?);
            Ok(0)
        }
    }
}

/// CVE-2019-5736 defence for the commands that put processes into containers.
fn seal() -> Result<()> {
    selfexe::reexec_sealed().context("re-exec from a sealed copy of the runtime binary")
}

fn create_opts(a: &CreateArgs, root: &std::path::Path) -> CreateOpts {
    CreateOpts {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        root: root.to_path_buf(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        cgroup_root: None,
        seccomp: None,
    }
}

/// Signals `run` and `exec` pass on to the container's process.
fn forwarded() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
    ] {
        s.add(sig);
    }
    s
}

/// Wait for our child `pid`, forwarding signals; returns its exit code as a shell would.
fn wait_forwarding(pid: i32, set: &SigSet) -> Result<u8> {
    let target = Pid::from_raw(pid);
    loop {
        match waitpid(target, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(c as u8),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as u8),
            Ok(_) => {}
            Err(nix::Error::ECHILD) => return Ok(0),
            Err(e) => return Err(anyhow!("wait for {pid}: {e}")),
        }
        let sig = set.wait().context("wait for signals")?;
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(target, sig);
        }
    }
}

/// Whether the bundle's process wants a terminal (for `run` without a console socket).
fn wants_terminal(c: &CreateArgs) -> bool {
    berth_runtime::spec::load(&c.bundle)
        .ok()
        .and_then(|s| s.process().as_ref().and_then(|p| p.terminal()))
        .unwrap_or(false)
}

fn run_container(c: &CreateArgs, root: &std::path::Path, detach: bool, keep: bool) -> Result<u8> {
    let set = forwarded();
    // A terminal without a console socket: we hold the pty and relay it, as runc does.
    let console = if c.console_socket.is_none() && wants_terminal(c) {
        if detach {
            bail!("cannot allocate a terminal for a detached container without --console-socket");
        }
        Some(ConsoleListener::bind(root, &c.id).context("console socket")?)
    } else {
        None
    };
    if !detach {
        set.thread_block().context("block signals")?;
    }
    let mut opts = create_opts(c, root);
    if let Some(l) = &console {
        opts.console_socket = Some(l.path().to_path_buf());
    }
    let pid = container::create(&opts)?;
    let master = match &console {
        Some(l) => Some(l.accept_master().context("receive the container's pty")?),
        None => None,
    };
    if let Err(e) = container::start(root, &c.id) {
        let _ = container::delete(root, &c.id, true);
        return Err(e.into());
    }
    if detach {
        return Ok(0);
    }
    let code = match master {
        Some(m) => berth_runtime::console::relay(m, pid, &set).context("relay the terminal")?,
        None => wait_forwarding(pid, &set)?,
    };
    if !keep {
        container::delete(root, &c.id, true)?;
    }
    Ok(code)
}

fn list(root: &std::path::Path, format: &str, quiet: bool) -> Result<u8> {
    let all = container::list(root);
    if quiet {
        for (st, _) in &all {
            println!("{}", st.id);
        }
        return Ok(0);
    }
    match format {
        "json" => {
            let v: Vec<serde_json::Value> = all
                .iter()
                .map(|(st, status)| {
                    serde_json::json!({
                        "ociVersion": state::OCI_VERSION,
                        "id": st.id,
                        "pid": if *status == Status::Stopped { 0 } else { st.pid },
                        "status": status.as_str(),
                        "bundle": st.bundle,
                        "rootfs": st.rootfs,
                        "created": st.created,
                        "owner": st.owner,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            println!(
                "{:<12} {:<10} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for (st, status) in &all {
                let pid = if *status == Status::Stopped { 0 } else { st.pid };
                println!(
                    "{:<12} {:<10} {:<10} {:<40} {:<32} {}",
                    st.id,
                    pid,
                    status,
                    st.bundle.display(),
                    st.created,
                    st.owner
                );
            }
        }
        f => bail!("--format {f:?}: must be table or json"),
    }
    Ok(0)
}

fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow!("unknown signal number {n}"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<Signal>().map_err(|_| anyhow!("unknown signal {s:?}"))
}

fn exec(a: ExecArgs, root: &std::path::Path) -> Result<u8> {
    let (config, status) = container::with_container(root, &a.id, |_, st, status| Ok((st.config.clone(), status)))?;
    if status == Status::Paused && !a.ignore_paused {
        bail!("container {} is paused; resume it first (or --ignore-paused)", a.id);
    }
    let mut process = match &a.process {
        Some(p) => {
            let data = std::fs::read(p).with_context(|| format!("read process file {}", p.display()))?;
            serde_json::from_slice::<oci_spec::runtime::Process>(&data)
                .with_context(|| format!("invalid process file {}", p.display()))?
        }
        None => {
            if a.command.is_empty() {
                bail!("exec: no command given (arguments or --process)");
            }
            let mut p = config.process().clone().unwrap_or_default();
            p.set_args(Some(a.command.clone()));
            p.set_terminal(Some(a.tty));
            p
        }
    };
    if a.process.is_none() || !a.env.is_empty() {
        let mut env = process.env().clone().unwrap_or_default();
        env.extend(a.env.iter().cloned());
        process.set_env(Some(env));
    }
    if a.tty {
        process.set_terminal(Some(true));
    }
    if let Some(cwd) = &a.cwd {
        process.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let mut user = process.user().clone();
        let (uid, gid) = u.split_once(':').map_or((u.as_str(), None), |(a, b)| (a, Some(b)));
        user.set_uid(uid.parse().with_context(|| format!("--user {u:?}: bad uid"))?);
        if let Some(g) = gid {
            user.set_gid(g.parse().with_context(|| format!("--user {u:?}: bad gid"))?);
        }
        process.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = process.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        process.set_user(user);
    }
    if a.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if let Some(l) = &a.apparmor {
        process.set_apparmor_profile(Some(l.clone()));
    }
    if let Some(l) = &a.process_label {
        process.set_selinux_label(Some(l.clone()));
    }
    if !a.cap.is_empty() {
        add_caps(&mut process, &a.cap)?;
    }
    let set = forwarded();
    let console = if a.console_socket.is_none() && process.terminal().unwrap_or(false) {
        if a.detach {
            bail!("cannot allocate a terminal for a detached exec without --console-socket");
        }
        Some(ConsoleListener::bind(root, &a.id).context("console socket")?)
    } else {
        None
    };
    if !a.detach {
        set.thread_block().context("block signals")?;
    }
    let pid = container::exec(&ExecOpts {
        root: root.to_path_buf(),
        id: a.id.clone(),
        process,
        console_socket: console
            .as_ref()
            .map(|l| l.path().to_path_buf())
            .or(a.console_socket.clone()),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        seccomp: None,
    })?;
    if a.detach {
        return Ok(0);
    }
    match console {
        Some(l) => {
            let m = l.accept_master().context("receive the exec's pty")?;
            Ok(berth_runtime::console::relay(m, pid, &set).context("relay the terminal")?)
        }
        None => wait_forwarding(pid, &set),
    }
}

/// `exec --cap`: added to bounding, effective and permitted — never inheritable or
/// ambient (CVE-2022-29162).
fn add_caps(process: &mut oci_spec::runtime::Process, names: &[String]) -> Result<()> {
    let mut caps = process.capabilities().clone().unwrap_or_default();
    let mut add = std::collections::HashSet::new();
    for n in names {
        let name = if n.starts_with("CAP_") {
            n.clone()
        } else {
            format!("CAP_{n}")
        };
        let c: oci_spec::runtime::Capability =
            serde_json::from_value(name.into()).map_err(|_| anyhow!("--cap {n:?}: unknown capability"))?;
        add.insert(c);
    }
    let merge = |s: &Option<oci_spec::runtime::Capabilities>| {
        let mut s = s.clone().unwrap_or_default();
        s.extend(add.iter().copied());
        Some(s)
    };
    caps.set_bounding(merge(caps.bounding()));
    caps.set_effective(merge(caps.effective()));
    caps.set_permitted(merge(caps.permitted()));
    if cfg!(feature = "unsafe-exec-cap-inheritable") {
        caps.set_inheritable(merge(caps.inheritable()));
        caps.set_ambient(merge(caps.ambient()));
    }
    process.set_capabilities(Some(caps));
    Ok(())
}

fn ps(root: &std::path::Path, id: &str, format: &str, args: &[String]) -> Result<u8> {
    let pids = container::with_container(root, id, |_, st, _| Ok(st.cgroup.pids()?))?;
    match format {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => print!("{}", ops::ps_table(&pids, args).map_err(|e| anyhow!(e))?),
        f => bail!("--format {f:?}: must be table or json"),
    }
    Ok(0)
}

fn parse_bytes(s: &str, flag: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = match t.trim_end_matches('b').chars().last() {
        Some('k') => (&t[..t.trim_end_matches('b').len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.trim_end_matches('b').len() - 1], 1 << 20),
        Some('g') => (&t[..t.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (t.trim_end_matches('b'), 1),
    };
    let n: i64 = num.parse().with_context(|| format!("--{flag} {s:?}: not a size"))?;
    Ok(n * mult)
}

fn update_resources(a: &UpdateArgs) -> Result<oci_spec::runtime::LinuxResources> {
    if let Some(p) = &a.resources {
        let data = if p.as_os_str() == "-" {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
            v
        } else {
            std::fs::read(p).with_context(|| format!("read {}", p.display()))?
        };
        return serde_json::from_slice(&data).with_context(|| format!("--resources {}: invalid JSON", p.display()));
    }
    let mut v = serde_json::json!({});
    if let Some(w) = a.blkio_weight {
        v["blockIO"] = serde_json::json!({"weight": w});
    }
    let mut cpu = serde_json::Map::new();
    let mut put = |k: &str, val: serde_json::Value| {
        cpu.insert(k.into(), val);
    };
    if let Some(x) = a.cpu_period {
        put("period", x.into());
    }
    if let Some(x) = a.cpu_quota {
        put("quota", x.into());
    }
    if let Some(x) = a.cpu_share {
        put("shares", x.into());
    }
    if let Some(x) = a.cpu_rt_period {
        put("realtimePeriod", x.into());
    }
    if let Some(x) = a.cpu_rt_runtime {
        put("realtimeRuntime", x.into());
    }
    if let Some(x) = &a.cpuset_cpus {
        put("cpus", x.clone().into());
    }
    if let Some(x) = &a.cpuset_mems {
        put("mems", x.clone().into());
    }
    if !cpu.is_empty() {
        v["cpu"] = serde_json::Value::Object(cpu);
    }
    let mut mem = serde_json::Map::new();
    if let Some(x) = &a.memory {
        mem.insert("limit".into(), parse_bytes(x, "memory")?.into());
    }
    if let Some(x) = &a.memory_reservation {
        mem.insert("reservation".into(), parse_bytes(x, "memory-reservation")?.into());
    }
    if let Some(x) = &a.memory_swap {
        mem.insert("swap".into(), parse_bytes(x, "memory-swap")?.into());
    }
    if !mem.is_empty() {
        v["memory"] = serde_json::Value::Object(mem);
    }
    if let Some(x) = a.pids_limit {
        v["pids"] = serde_json::json!({"limit": x});
    }
    Ok(serde_json::from_value(v)?)
}

fn parse_duration(s: &str) -> Result<Duration> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
    let n: f64 = num
        .parse()
        .with_context(|| format!("--interval {s:?}: not a duration"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        u => bail!("--interval {s:?}: unknown unit {u:?}"),
    };
    Ok(Duration::from_secs_f64(secs.max(0.001)))
}

fn events(root: &std::path::Path, id: &str, interval: &str, once: bool) -> Result<u8> {
    let every = parse_duration(interval)?;
    let cg = container::with_container(root, id, |_, st, status| {
        if status == Status::Stopped {
            return Err(container::Error::WrongState {
                id: id.into(),
                status,
                msg: "container is not running".into(),
            });
        }
        Ok(st.cgroup.clone())
    })?;
    if once {
        println!("{}", ops::stats_event(id, &cg.stats()?));
        return Ok(0);
    }
    let mut ooms = cg.oom_kill_count().unwrap_or(0);
    let tick = every.min(Duration::from_millis(200));
    let mut last = std::time::Instant::now() - every;
    loop {
        // OOM first: the kill may be what just stopped the container.
        let n = cg.oom_kill_count().unwrap_or(ooms);
        if n > ooms {
            println!("{}", serde_json::json!({"type": "oom", "id": id}));
            ooms = n;
        }
        let alive = container::with_container(root, id, |_, _, s| Ok(s != Status::Stopped)).unwrap_or(false);
        if !alive {
            return Ok(0);
        }
        if last.elapsed() >= every {
            if let Ok(s) = cg.stats() {
                println!("{}", ops::stats_event(id, &s));
            }
            last = std::time::Instant::now();
        }
        std::thread::sleep(tick);
    }
}
