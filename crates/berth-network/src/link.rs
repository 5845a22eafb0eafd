//! Links, addresses and routes of one network namespace over one rtnetlink socket.
//! A socket belongs to the namespace of the thread that opened it, so `Links::open`
//! is called after the thread has entered the namespace it is meant for.

use std::net::IpAddr;
use std::os::fd::RawFd;

use futures_util::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{NetworkError, Result};

const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const EADDRNOTAVAIL: i32 = 99;

pub(crate) struct Links {
    h: Handle,
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn nl_err(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
    let what = what.into();
    move |e| NetworkError::Netlink {
        what,
        message: match errno(&e) {
            Some(n) => std::io::Error::from_raw_os_error(n).to_string(),
            None => e.to_string(),
        },
    }
}

impl Links {
    /// Must run inside a tokio runtime (the connection task is spawned on it).
    pub(crate) fn open() -> Result<Links> {
        let (conn, h, _) = rtnetlink::new_connection().map_err(|e| NetworkError::Io {
            what: "open a netlink socket".into(),
            source: e,
        })?;
        tokio::spawn(conn);
        Ok(Links { h })
    }

    pub(crate) async fn index(&self, name: &str) -> Result<Option<u32>> {
        let mut s = self.h.link().get().match_name(name.to_string()).execute();
        match s.try_next().await {
            Ok(Some(m)) => Ok(Some(m.header.index)),
            Ok(None) => Ok(None),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(e) => Err(nl_err(format!("look up link {name}"))(e)),
        }
    }

    async fn must_index(&self, name: &str) -> Result<u32> {
        self.index(name).await?.ok_or_else(|| NetworkError::Netlink {
            what: format!("link {name}"),
            message: "no such device".into(),
        })
    }

    /// Create the bridge unless it exists; bring it up. Returns its index.
    pub(crate) async fn ensure_bridge(&self, name: &str, mtu: Option<u32>) -> Result<u32> {
        if self.index(name).await?.is_none() {
            let mut b = LinkBridge::new(name);
            if let Some(m) = mtu {
                b = b.mtu(m);
            }
            match self.h.link().add(b.build()).execute().await {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(EEXIST) => {}
                Err(e) => return Err(nl_err(format!("create bridge {name}"))(e)),
            }
        }
        let idx = self.must_index(name).await?;
        self.up(idx, name).await?;
        Ok(idx)
    }

    pub(crate) async fn up(&self, idx: u32, name: &str) -> Result<()> {
        self.h
            .link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(nl_err(format!("set {name} up")))
    }

    /// Add an address (already present is fine). `nodad`: usable at once (IPv6 would
    /// otherwise wait for duplicate address detection).
    pub(crate) async fn add_addr(&self, idx: u32, name: &str, net: IpNet) -> Result<()> {
        let mut req = self.h.address().add(idx, net.addr(), net.prefix_len());
        if net.addr().is_ipv6() {
            use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
            let m = req.message_mut();
            m.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            Err(e) => Err(nl_err(format!("add address {net} to {name}"))(e)),
        }
    }

    /// Remove addresses from a link (absent ones are fine).
    pub(crate) async fn del_addrs(&self, idx: u32, name: &str, gone: &[IpNet]) -> Result<()> {
        use rtnetlink::packet_route::address::AddressAttribute;
        let mut msgs = self.h.address().get().set_link_index_filter(idx).execute();
        let mut hits = Vec::new();
        while let Some(m) = msgs
            .try_next()
            .await
            .map_err(nl_err(format!("list addresses of {name}")))?
        {
            let ip = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => IpNet::new(*ip, m.header.prefix_len).ok(),
                _ => None,
            });
            if let Some(ip) = ip.filter(|ip| gone.contains(ip)) {
                hits.push((m, ip));
            }
        }
        for (m, ip) in hits {
            match self.h.address().del(m).execute().await {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(EADDRNOTAVAIL) => {}
                Err(e) => return Err(nl_err(format!("remove old address {ip} from {name}"))(e)),
            }
        }
        Ok(())
    }

    /// Delete a link by name; false if there was none.
    pub(crate) async fn delete(&self, name: &str) -> Result<bool> {
        let Some(idx) = self.index(name).await? else {
            return Ok(false);
        };
        match self.h.link().del(idx).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(false),
            Err(e) => Err(nl_err(format!("delete link {name}"))(e)),
        }
    }

    /// A veth pair: `host` stays here, enslaved to the bridge `bridge` and up; `peer` is
    /// created directly in the namespace `peer_ns` with the MAC address `mac`.
    pub(crate) async fn create_veth(
        &self,
        host: &str,
        peer: &str,
        peer_ns: RawFd,
        mac: [u8; 6],
        bridge: u32,
        mtu: Option<u32>,
    ) -> Result<()> {
        let mut peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_string())
            .address(mac.to_vec())
            .setns_by_fd(peer_ns);
        if let Some(m) = mtu {
            peer_msg = peer_msg.mtu(m);
        }
        let mut b = LinkVeth::new(host, peer).set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())));
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        self.h
            .link()
            .add(b.build())
            .execute()
            .await
            .map_err(nl_err(format!("create veth pair {host}/{peer}")))?;
        let idx = self.must_index(host).await?;
        let set = self
            .h
            .link()
            .set(LinkUnspec::new_with_index(idx).controller(bridge).up().build())
            .execute()
            .await
            .map_err(nl_err(format!("attach {host} to its bridge")));
        if let Err(e) = set {
            let _ = self.h.link().del(idx).execute().await;
            return Err(e);
        }
        // Hairpin: a container reaching its own published port through the host comes
        // back in on the port it left by.
        self.h
            .link()
            .set_port(LinkBridgePort::new(idx).hairpin(true).build())
            .execute()
            .await
            .map_err(nl_err(format!("set hairpin mode on {host}")))
    }

    /// Configure the container side: addresses, up, default routes via `gateways`.
    pub(crate) async fn configure(&self, ifname: &str, addrs: &[IpNet], gateways: &[IpAddr]) -> Result<()> {
        let idx = self.must_index(ifname).await?;
        for a in addrs {
            self.add_addr(idx, ifname, *a).await?;
        }
        self.up(idx, ifname).await?;
        for gw in gateways {
            let msg = match gw {
                IpAddr::V4(g) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                    .gateway(*g)
                    .output_interface(idx)
                    .build(),
                IpAddr::V6(g) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                    .gateway(*g)
                    .output_interface(idx)
                    .build(),
            };
            match self.h.route().add(msg).execute().await {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(EEXIST) => {}
                Err(e) => return Err(nl_err(format!("add default route via {gw} on {ifname}"))(e)),
            }
        }
        Ok(())
    }
}
