//! Host ports for published container ports. A published port is held by a bound
//! (never listening) socket of the daemon's: that is how a port already taken by
//! another program is refused, and how an ephemeral port is chosen. The traffic itself
//! is redirected by nftables before it could reach any socket.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;

use nix::sys::socket::{bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};
use serde::{Deserialize, Serialize};

use crate::error::{NetworkError, Result};
use crate::firewall::Proto;

/// `-p [ip:][hostPort[-end]:]containerPort[/proto]` as the API carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: Proto,
    pub ctr_port: u16,
    pub host_ip: Option<IpAddr>,
    /// 0: an ephemeral port.
    pub host_port: u16,
    /// Last port of a range (== host_port when no range).
    pub host_port_end: u16,
}

/// A port as published (what inspect and `docker port` report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub proto: String,
    pub ctr_port: u16,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
}

pub struct Reservation {
    pub port: PublishedPort,
    _sock: OwnedFd,
}

/// Parse Docker's `HostConfig.PortBindings` key ("80/tcp") and one binding.
pub fn parse_binding(key: &str, host_ip: &str, host_port: &str) -> Result<PortRequest> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = Proto::parse(proto).ok_or_else(|| NetworkError::Invalid(format!("invalid protocol in port {key}")))?;
    let ctr_port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| NetworkError::Invalid(format!("invalid container port {key}")))?;
    let host_ip = match host_ip.trim_start_matches('[').trim_end_matches(']') {
        "" => None,
        s => {
            let ip: IpAddr = s
                .parse()
                .map_err(|_| NetworkError::Invalid(format!("invalid host IP {host_ip:?} for port {key}")))?;
            (!ip.is_unspecified()).then_some(ip)
        }
    };
    let (start, end) = match host_port {
        "" | "0" => (0, 0),
        s => {
            let (a, b) = s.split_once('-').unwrap_or((s, s));
            let p = |x: &str| {
                x.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| NetworkError::Invalid(format!("invalid host port {s:?} for {key}")))
            };
            let (a, b) = (p(a)?, p(b)?);
            if b < a {
                return Err(NetworkError::Invalid(format!(
                    "invalid host port range {s:?} for {key}"
                )));
            }
            (a, b)
        }
    };
    Ok(PortRequest {
        proto,
        ctr_port,
        host_ip,
        host_port: start,
        host_port_end: end,
    })
}

fn bind_one(proto: Proto, ip: IpAddr, port: u16) -> std::result::Result<(OwnedFd, u16), nix::errno::Errno> {
    let (fam, ty) = (
        if ip.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        },
        match proto {
            Proto::Udp => SockType::Datagram,
            _ => SockType::Stream,
        },
    );
    let proto_arg = match proto {
        Proto::Sctp => Some(nix::sys::socket::SockProtocol::Sctp),
        _ => None,
    };
    let fd = socket(fam, ty, SockFlag::SOCK_CLOEXEC, proto_arg)?;
    if ip.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    let addr = SockaddrStorage::from(SocketAddr::new(ip, port));
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)?;
    let got: SockaddrStorage = nix::sys::socket::getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
    let p = got
        .as_sockaddr_in()
        .map(|a| a.port())
        .or_else(|| got.as_sockaddr_in6().map(|a| a.port()))
        .unwrap_or(port);
    Ok((fd, p))
}

/// Hold the host port for `req` on `family_ip`'s family (the wildcard address when the
/// request names none).
pub fn reserve(req: &PortRequest, v6: bool) -> Result<Reservation> {
    let ip = req.host_ip.unwrap_or(if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    let shown = |p: u16| match ip {
        IpAddr::V4(a) => format!("{a}:{p}/{}", req.proto.as_str()),
        IpAddr::V6(a) => format!("[{a}]:{p}/{}", req.proto.as_str()),
    };
    let mut last = nix::errno::Errno::EADDRINUSE;
    for p in req.host_port..=req.host_port_end {
        match bind_one(req.proto, ip, p) {
            Ok((fd, got)) => {
                return Ok(Reservation {
                    port: PublishedPort {
                        proto: req.proto.as_str().into(),
                        ctr_port: req.ctr_port,
                        host_ip: Some(ip),
                        host_port: got,
                    },
                    _sock: fd,
                })
            }
            Err(e) => last = e,
        }
    }
    let what = if req.host_port == req.host_port_end {
        shown(req.host_port)
    } else {
        format!(
            "{} (range {}-{})",
            shown(req.host_port),
            req.host_port,
            req.host_port_end
        )
    };
    Err(NetworkError::Conflict(format!(
        "Bind for {what} failed: port is already allocated ({})",
        last.desc()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_bindings() {
        let r = parse_binding("80/tcp", "", "8080").unwrap();
        assert_eq!(
            (r.ctr_port, r.host_port, r.host_port_end, r.host_ip),
            (80, 8080, 8080, None)
        );
        let r = parse_binding("53/udp", "127.0.0.1", "").unwrap();
        assert_eq!(r.proto, Proto::Udp);
        assert_eq!(r.host_port, 0);
        assert_eq!(r.host_ip, Some("127.0.0.1".parse().unwrap()));
        let r = parse_binding("80", "0.0.0.0", "9000-9005").unwrap();
        assert_eq!((r.host_port, r.host_port_end, r.host_ip), (9000, 9005, None));
        assert!(parse_binding("80/tcp", "", "9005-9000").is_err());
        assert!(parse_binding("http/tcp", "", "1").is_err());
        assert!(parse_binding("80/icmp", "", "1").is_err());
        assert!(parse_binding("80/tcp", "localhost", "1").is_err());
    }

    #[test]
    fn ephemeral_and_conflicting_ports() {
        let req = parse_binding("80/tcp", "127.0.0.1", "").unwrap();
        let a = reserve(&req, false).unwrap();
        assert!(a.port.host_port > 0);
        // The same port again is refused with a message naming it...
        let again = PortRequest {
            host_port: a.port.host_port,
            host_port_end: a.port.host_port,
            ..req.clone()
        };
        let e = reserve(&again, false).err().unwrap().to_string();
        assert!(e.contains(&format!("127.0.0.1:{}/tcp", a.port.host_port)), "{e}");
        // ...a range skips it...
        let range = PortRequest {
            host_port_end: a.port.host_port.saturating_add(20),
            ..again.clone()
        };
        let b = reserve(&range, false).unwrap();
        assert_ne!(b.port.host_port, a.port.host_port);
        // ...and once released it can be had (positive control).
        let p = a.port.host_port;
        drop(a);
        assert_eq!(reserve(&again, false).unwrap().port.host_port, p);
    }
}
