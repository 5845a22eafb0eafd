//! berthd: the Docker Engine API on a unix socket (and optionally TCP on loopback),
//! over berth-engine. Containers outlive it: each has its own monitor process.

// Handlers return the ready error response as `Err`; it is made once per failed request.
#![allow(clippy::result_large_err)]

mod containers;
mod extras;
mod http;
mod images;
mod networks;
mod registry;
mod repodigests;
mod routes;
mod streams;
mod system;
mod volumes;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use berth_engine::{DaemonConfig, Engine};
use clap::Parser;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

#[derive(Parser)]
#[command(name = "berthd", version, about = "Berth's daemon: the Docker Engine API")]
struct Args {
    /// daemon.json (Docker's key names).
    #[arg(long = "config-file", default_value = "/etc/berth/daemon.json")]
    config_file: PathBuf,
    /// Where to listen: unix:///path or tcp://127.0.0.1:PORT (repeatable).
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    #[arg(long = "data-root")]
    data_root: Option<PathBuf>,
    #[arg(long = "exec-root")]
    exec_root: Option<PathBuf>,
    #[arg(long = "cgroup-parent")]
    cgroup_parent: Option<String>,
    /// Group owning the unix socket (default: `berth` when it exists).
    #[arg(short = 'G', long = "group")]
    group: Option<String>,
    #[arg(long = "monitor-path")]
    monitor_path: Option<PathBuf>,
    #[arg(short = 'D', long)]
    debug: bool,
    /// The default bridge's interface (default berth0).
    #[arg(short = 'b', long = "bridge")]
    bridge: Option<String>,
    /// The default bridge's address and prefix, e.g. 10.20.0.1/16.
    #[arg(long = "bip")]
    bip: Option<String>,
    /// Berth's nftables table (default berth).
    #[arg(long = "firewall-table")]
    firewall_table: Option<String>,
    /// Manage the firewall (nftables): NAT, isolation, port publishing (Docker's flag).
    #[arg(long = "iptables", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    iptables: Option<bool>,
    /// Turn on the host's IP forwarding for bridges (Docker's flag; default true).
    #[arg(long = "ip-forward", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    ip_forward: Option<bool>,
    /// Masquerade the default bridge's outbound traffic (Docker's flag; default true).
    #[arg(long = "ip-masq", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    ip_masq: Option<bool>,
    /// Accepted for Docker's command lines: Berth forwards published ports in the kernel.
    #[arg(long = "userland-proxy", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    userland_proxy: Option<bool>,
    /// IPv6 on the default bridge (Docker's flag).
    #[arg(long = "ipv6", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    ipv6: Option<bool>,
    /// The default bridge's IPv4 allocation range, inside its subnet (Docker's flag).
    #[arg(long = "fixed-cidr")]
    fixed_cidr: Option<String>,
    /// The default bridge's IPv6 subnet (Docker's flag).
    #[arg(long = "fixed-cidr-v6")]
    fixed_cidr_v6: Option<String>,
    /// Address pool for new networks, as Docker's flag: base=CIDR,size=N (repeatable).
    #[arg(long = "default-address-pool")]
    default_address_pool: Vec<String>,
}

pub struct Daemon {
    pub engine: Arc<Engine>,
    pub repo_digests: repodigests::RepoDigests,
}

fn config(args: &Args) -> Result<DaemonConfig> {
    let explicit = args.config_file != std::path::Path::new("/etc/berth/daemon.json");
    let mut cfg = DaemonConfig::load(&args.config_file, explicit)?;
    if !args.hosts.is_empty() {
        if !cfg.hosts.is_empty() {
            bail!("hosts are given both as flags and in {}", args.config_file.display());
        }
        cfg.hosts = args.hosts.clone();
    }
    if let Some(d) = &args.data_root {
        cfg.data_root = d.clone();
    }
    if let Some(d) = &args.exec_root {
        cfg.exec_root = d.clone();
    }
    if let Some(c) = &args.cgroup_parent {
        cfg.cgroup_parent = c.clone();
    }
    if let Some(g) = &args.group {
        cfg.group = Some(g.clone());
    }
    if let Some(m) = &args.monitor_path {
        cfg.monitor_path = Some(m.clone());
    }
    if let Some(b) = &args.bridge {
        cfg.bridge = b.clone();
    }
    if let Some(b) = &args.bip {
        cfg.bip = Some(b.clone());
    }
    if let Some(t) = &args.firewall_table {
        cfg.firewall_table = t.clone();
    }
    if let Some(i) = args.iptables {
        cfg.iptables = i;
    }
    if let Some(v) = args.ip_forward {
        cfg.ip_forward = v;
    }
    if let Some(v) = args.ip_masq {
        cfg.ip_masq = v;
    }
    if let Some(v) = args.userland_proxy {
        cfg.userland_proxy = v;
    }
    if let Some(v) = args.ipv6 {
        cfg.ipv6 = v;
    }
    if let Some(v) = &args.fixed_cidr {
        cfg.fixed_cidr = Some(v.clone());
    }
    if let Some(v) = &args.fixed_cidr_v6 {
        cfg.fixed_cidr_v6 = Some(v.clone());
    }
    if !args.default_address_pool.is_empty() {
        cfg.default_address_pools = args
            .default_address_pool
            .iter()
            .map(|p| {
                let mut v = serde_json::Map::new();
                for kv in p.split(',') {
                    let (k, val) = kv.split_once('=').unwrap_or((kv, ""));
                    let val = match k {
                        "size" => serde_json::Value::from(val.parse::<u64>().unwrap_or(0)),
                        _ => serde_json::Value::from(val),
                    };
                    v.insert(k.to_string(), val);
                }
                serde_json::Value::Object(v)
            })
            .collect();
    }
    cfg.debug |= args.debug;
    cfg.validate()?;
    Ok(cfg)
}

fn group_id(name: &str) -> Option<u32> {
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

async fn serve_unix(path: PathBuf, group: Option<String>, daemon: Arc<Daemon>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).with_context(|| format!("listen on {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
    let explicit = group.is_some();
    let group = group.unwrap_or_else(|| "berth".into());
    match group_id(&group) {
        Some(gid) => nix::unistd::chown(&path, None, Some(nix::unistd::Gid::from_raw(gid)))?,
        None if explicit => bail!("group {group:?} does not exist"),
        None => {}
    }
    loop {
        let (stream, _) = listener.accept().await?;
        let d = daemon.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| routes::handle(d.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}

async fn serve_tcp(addr: String, daemon: Arc<Daemon>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("listen on {addr}"))?;
    loop {
        let (stream, _) = listener.accept().await?;
        let d = daemon.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| routes::handle(d.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let cfg = config(&args)?;
    // Two workers are plenty for an API server; blocking engine calls go to the blocking pool.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(256 << 10)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let hosts = if cfg.hosts.is_empty() {
            vec![format!("unix://{}", cfg.default_socket().display())]
        } else {
            cfg.hosts.clone()
        };
        let group = cfg.group.clone();
        let engine = tokio::task::spawn_blocking(move || Engine::open(cfg)).await??;
        let repo_digests = repodigests::RepoDigests::open(&engine.cfg.data_root);
        let daemon = Arc::new(Daemon { engine, repo_digests });
        let mut tasks = Vec::new();
        for h in hosts {
            if let Some(p) = h.strip_prefix("unix://") {
                tasks.push(tokio::spawn(serve_unix(p.into(), group.clone(), daemon.clone())));
            } else if let Some(a) = h.strip_prefix("tcp://") {
                tasks.push(tokio::spawn(serve_tcp(a.into(), daemon.clone())));
            } else {
                bail!("unsupported host {h:?} (unix:///path or tcp://127.0.0.1:PORT)");
            }
        }
        eprintln!(
            "berthd: API listening; data root {}",
            daemon.engine.cfg.data_root.display()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
            r = futures_first(tasks) => { r?; }
        }
        // Containers keep running under their monitors; a restarted berthd re-attaches.
        eprintln!("berthd: shutting down");
        Ok(())
    })
}

/// The first listener to fail ends the daemon.
async fn futures_first(tasks: Vec<tokio::task::JoinHandle<Result<()>>>) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(tasks.len().max(1));
    for t in tasks {
        let tx = tx.clone();
        tokio::spawn(async move {
            let r = match t.await {
                Ok(r) => r,
                Err(e) => Err(e.into()),
            };
            let _ = tx.send(r).await;
        });
    }
    drop(tx);
    rx.recv().await.unwrap_or(Ok(()))
}
