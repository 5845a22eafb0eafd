//! Network namespaces for containers ("sandboxes", bind-mounted at a path so the runtime
//! joins them by path and they outlive any one process) and the veth endpoints that
//! connect them to bridges. Every call runs on a fresh thread: entering a namespace
//! changes the calling thread, which must never be one of the caller's own.

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::Path;

use ipnet::IpNet;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::error::{io_err, NetworkError, Result};
use crate::link::Links;

/// One container interface to create.
#[derive(Debug, Clone)]
pub struct EndpointPlan {
    /// Host side of the veth pair (e.g. `veth1a2b3c4`).
    pub host_veth: String,
    /// Name inside the container (`eth0`, `eth1`, …).
    pub ifname: String,
    pub bridge: String,
    pub mac: [u8; 6],
    pub addrs: Vec<IpNet>,
    /// Default routes (none on internal networks, or for a second network).
    pub gateways: Vec<IpAddr>,
    pub mtu: Option<u32>,
}

/// Run `f` on a new thread with a current-thread tokio runtime.
fn on_thread<T: Send + 'static>(what: &str, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    std::thread::Builder::new()
        .name("berth-netns".into())
        .stack_size(256 << 10)
        .spawn(f)
        .map_err(io_err(format!("{what}: spawn thread")))?
        .join()
        .unwrap_or_else(|_| Err(NetworkError::Invalid(format!("{what}: thread panicked"))))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(io_err("start a netlink runtime"))
}

/// The bridge `name` exists, is up and has `addrs`; `old` addresses (the network's
/// subnets changed) are removed from it. No other address is touched: the bridge may
/// be one the host configured.
pub fn ensure_bridge(name: &str, addrs: &[IpNet], old: &[IpNet], mtu: Option<u32>) -> Result<()> {
    let (name, addrs) = (name.to_string(), addrs.to_vec());
    let old: Vec<IpNet> = old.iter().filter(|a| !addrs.contains(a)).copied().collect();
    on_thread("create bridge", move || {
        runtime()?.block_on(async {
            let l = Links::open()?;
            let idx = l.ensure_bridge(&name, mtu).await?;
            if !old.is_empty() {
                l.del_addrs(idx, &name, &old).await?;
            }
            for a in addrs {
                l.add_addr(idx, &name, a).await?;
            }
            Ok(())
        })
    })
}

/// Delete a link of the host namespace (a bridge, or a veth: its peer goes with it).
pub fn delete_link(name: &str) -> Result<bool> {
    let name = name.to_string();
    on_thread("delete link", move || {
        runtime()?.block_on(async { Links::open()?.delete(&name).await })
    })
}

/// Whether a host link exists.
pub fn link_exists(name: &str) -> Result<bool> {
    let name = name.to_string();
    on_thread("look up link", move || {
        runtime()?.block_on(async { Ok(Links::open()?.index(&name).await?.is_some()) })
    })
}

/// A new network namespace with `lo` up, bind-mounted at `path` (created).
pub fn create(path: &Path) -> Result<()> {
    std::fs::File::create(path).map_err(io_err(format!("create {}", path.display())))?;
    let p = path.to_path_buf();
    let r = on_thread("create network namespace", move || {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|e| NetworkError::Io {
            what: "unshare the network namespace".into(),
            source: e.into(),
        })?;
        runtime()?.block_on(async {
            let l = Links::open()?;
            let lo = l.index("lo").await?.unwrap_or(1);
            l.up(lo, "lo").await
        })?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| NetworkError::Io {
            what: format!("bind-mount the network namespace at {}", p.display()),
            source: e.into(),
        })
    });
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// Unmount and remove a namespace made by `create` (its interfaces go with it once no
/// process is left in it). Missing is fine.
pub fn destroy(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(NetworkError::Io {
                what: format!("unmount {}", path.display()),
                source: e.into(),
            })
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("remove {}", path.display()))(e)),
    }
}

/// The embedded DNS's sockets inside the namespace at `netns`: UDP and TCP on
/// 127.0.0.11 and one port the kernel picks, with 127.0.0.11:53 redirected to it
/// (nftables in that namespace). The sockets stay in that namespace wherever they are
/// served from.
pub fn dns_sockets(netns: &Path) -> Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let ns = std::fs::File::open(netns).map_err(io_err(format!("open {}", netns.display())))?;
    on_thread("embedded DNS sockets", move || {
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| NetworkError::Io {
            what: "enter the container's network namespace".into(),
            source: e.into(),
        })?;
        let addr = crate::firewall::DNS_ADDR;
        let mut last = None;
        for _ in 0..16 {
            let udp = std::net::UdpSocket::bind((addr, 0)).map_err(io_err(format!("bind {addr} (udp)")))?;
            let port = udp
                .local_addr()
                .map_err(io_err("local address of the DNS socket"))?
                .port();
            match std::net::TcpListener::bind((addr, port)) {
                Ok(tcp) => {
                    // nft runs as a child of this thread: in the container's namespace.
                    crate::firewall::run_script(&crate::firewall::dns_redirect_script(port))?;
                    return Ok((udp, tcp));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(io_err(format!("bind {addr} (tcp) on the port of its UDP socket"))(
            last.unwrap_or_else(|| std::io::ErrorKind::AddrInUse.into()),
        ))
    })
}

/// Create the veth pair of `ep` between the host and the namespace at `netns`, and
/// configure the container side. On error nothing is left behind.
pub fn connect(netns: &Path, ep: &EndpointPlan) -> Result<()> {
    let ns = std::fs::File::open(netns).map_err(io_err(format!("open {}", netns.display())))?;
    let ep = ep.clone();
    on_thread("connect endpoint", move || {
        let rt = runtime()?;
        let host = rt.block_on(async {
            let l = Links::open()?;
            let br = l.index(&ep.bridge).await?.ok_or_else(|| NetworkError::Netlink {
                what: format!("bridge {}", ep.bridge),
                message: "no such device".into(),
            })?;
            l.create_veth(&ep.host_veth, &ep.ifname, ns.as_raw_fd(), ep.mac, br, ep.mtu)
                .await?;
            Ok::<_, NetworkError>(l)
        })?;
        let inside = (|| {
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| NetworkError::Io {
                what: "enter the container's network namespace".into(),
                source: e.into(),
            })?;
            rt.block_on(async { Links::open()?.configure(&ep.ifname, &ep.addrs, &ep.gateways).await })
        })();
        if let Err(e) = inside {
            // `host`'s socket still speaks for the host namespace.
            let _ = rt.block_on(host.delete(&ep.host_veth));
            return Err(e);
        }
        Ok(())
    })
}
