//! IP address management: choosing a subnet for a new network from the address pools,
//! and handing out addresses inside a subnet (never twice; freed on release).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};

use crate::error::{NetworkError, Result};

/// One of daemon.json's `default-address-pools`: split `base` into subnets of `size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPool {
    pub base: IpNet,
    pub size: u8,
}

/// Docker's default pools; Berth's own default bridge avoids the subnets Docker and
/// Podman take by default (see `WELL_KNOWN`) so the three coexist on one host.
pub fn default_pools() -> Vec<AddressPool> {
    let mut v: Vec<AddressPool> = (17..=31)
        .map(|b| AddressPool {
            base: format!("172.{b}.0.0/16").parse().expect("pool"),
            size: 16,
        })
        .collect();
    v.push(AddressPool {
        base: "192.168.0.0/16".parse().expect("pool"),
        size: 20,
    });
    v
}

/// Docker's `docker0` (172.17.0.0/16) and Podman's `podman` network (10.88.0.0/16).
pub const WELL_KNOWN: [&str; 2] = ["172.17.0.0/16", "10.88.0.0/16"];

/// The first subnet of the family asked for (`v6`) from `pools` overlapping none of
/// `taken`.
pub fn choose_subnet(pools: &[AddressPool], taken: &[IpNet], v6: bool) -> Result<IpNet> {
    for pool in pools.iter().filter(|p| p.base.addr().is_ipv6() == v6) {
        if pool.size < pool.base.prefix_len() || pool.size > pool.base.max_prefix_len() {
            return Err(NetworkError::Invalid(format!(
                "address pool {}: size /{} does not fit in the base",
                pool.base, pool.size
            )));
        }
        let subnets = pool
            .base
            .subnets(pool.size)
            .map_err(|e| NetworkError::Invalid(format!("address pool {}: {e}", pool.base)))?;
        // Pools of IPv6 /64s are huge; a bounded scan is plenty.
        for s in subnets.take(1 << 16) {
            if !taken.iter().any(|t| overlaps(t, &s)) {
                return Ok(s);
            }
        }
    }
    Err(NetworkError::Exhausted(format!(
        "could not find an available, non-overlapping IPv{} address pool among the defaults to assign to the network",
        if v6 { 6 } else { 4 }
    )))
}

/// Whether `pools` has any IPv6 base.
pub fn has_v6_pool(pools: &[AddressPool]) -> bool {
    pools.iter().any(|p| p.base.addr().is_ipv6())
}

/// A unique local /64 (RFC 4193: fd00::/8, a random 40-bit global ID and a random
/// 16-bit subnet ID) for an IPv6 network when no IPv6 pool is configured, as Docker
/// picks one.
pub fn ula_subnet(random: [u8; 7]) -> IpNet {
    let mut b = [0u8; 16];
    b[0] = 0xfd;
    b[1..8].copy_from_slice(&random);
    IpNet::V6(ipnet::Ipv6Net::new(Ipv6Addr::from(b), 64).expect("/64 is a valid prefix"))
}

pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Subnets routed on the host (from /proc/net/route and /proc/net/ipv6_route), except
/// default routes: a new network must not shadow any of them.
pub fn host_routes() -> Vec<IpNet> {
    let mut out = Vec::new();
    if let Ok(t) = std::fs::read_to_string("/proc/net/route") {
        for line in t.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                continue;
            }
            let (Ok(dst), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16)) else {
                continue;
            };
            // The kernel prints the network-order word as a host (little-endian) integer.
            let dst = Ipv4Addr::from(dst.to_le_bytes());
            let prefix = mask.count_ones() as u8;
            if prefix == 0 {
                continue;
            }
            if let Ok(n) = Ipv4Net::new(dst, prefix) {
                out.push(IpNet::V4(n.trunc()));
            }
        }
    }
    if let Ok(t) = std::fs::read_to_string("/proc/net/ipv6_route") {
        for line in t.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 2 || f[0].len() != 32 {
                continue;
            }
            let (Ok(bits), Ok(prefix)) = (u128::from_str_radix(f[0], 16), u8::from_str_radix(f[1], 16)) else {
                continue;
            };
            let addr = Ipv6Addr::from(bits);
            // Link-local, multicast and host routes are always there.
            if prefix == 0 || prefix == 128 || addr.segments()[0] & 0xffc0 == 0xfe80 || addr.segments()[0] >> 8 == 0xff
            {
                continue;
            }
            if let Ok(n) = ipnet::Ipv6Net::new(addr, prefix) {
                out.push(IpNet::V6(n.trunc()));
            }
        }
    }
    out
}

/// The addresses of one subnet of a network. Serialised with the network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Allocator {
    pub subnet: IpNet,
    /// `--ip-range`: dynamic addresses come from here (static ones from the subnet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<IpNet>,
    pub gateway: IpAddr,
    #[serde(default)]
    pub allocated: BTreeSet<IpAddr>,
    /// Where the next search starts: Docker hands addresses out round-robin so a freed
    /// address is not reused at once.
    #[serde(default)]
    pub last: Option<IpAddr>,
}

impl Allocator {
    /// `gateway` defaults to the subnet's first host address.
    pub fn new(subnet: IpNet, range: Option<IpNet>, gateway: Option<IpAddr>) -> Result<Allocator> {
        let subnet = subnet.trunc();
        if let Some(r) = range {
            if !subnet.contains(&r) {
                return Err(NetworkError::Invalid(format!(
                    "ip-range {r} is not inside subnet {subnet}"
                )));
            }
        }
        let gateway = match gateway {
            Some(g) => {
                if !subnet.contains(&g) {
                    return Err(NetworkError::Invalid(format!(
                        "gateway {g} is not inside subnet {subnet}"
                    )));
                }
                g
            }
            None => nth(&subnet, 1)
                .ok_or_else(|| NetworkError::Invalid(format!("subnet {subnet} is too small for a gateway")))?,
        };
        Ok(Allocator {
            subnet,
            range: range.map(|r| r.trunc()),
            gateway,
            allocated: BTreeSet::new(),
            last: None,
        })
    }

    fn usable(&self, ip: &IpAddr) -> bool {
        if *ip == self.gateway || *ip == self.subnet.network() {
            return false;
        }
        // IPv4 broadcast is not a host address (IPv6 has none).
        !(matches!(self.subnet, IpNet::V4(_)) && *ip == self.subnet.broadcast())
    }

    /// A specific address (`--ip`), or the next free one.
    pub fn allocate(&mut self, want: Option<IpAddr>) -> Result<IpAddr> {
        if let Some(ip) = want {
            if !self.subnet.contains(&ip) {
                return Err(NetworkError::Invalid(format!(
                    "address {ip} is not in the network's subnet {}",
                    self.subnet
                )));
            }
            if !self.usable(&ip) || self.allocated.contains(&ip) {
                return Err(NetworkError::Conflict(format!("address {ip} is already in use")));
            }
            self.allocated.insert(ip);
            return Ok(ip);
        }
        let pool = self.range.unwrap_or(self.subnet);
        let size: u128 = match pool {
            IpNet::V4(n) => 1u128 << (32 - n.prefix_len()),
            IpNet::V6(n) => 1u128.checked_shl(128 - n.prefix_len() as u32).unwrap_or(u128::MAX),
        };
        let start = self
            .last
            .filter(|l| pool.contains(l))
            .map(|l| offset(&pool, &l) + 1)
            .unwrap_or(1);
        // Bounded: a /64 is never scanned to the end.
        for i in 0..size.min(1 << 20) {
            let off = (start + i) % size;
            let Some(ip) = nth(&pool, off) else { continue };
            if self.usable(&ip) && !self.allocated.contains(&ip) {
                self.allocated.insert(ip);
                self.last = Some(ip);
                return Ok(ip);
            }
        }
        Err(NetworkError::Exhausted(format!("no available IP addresses in {pool}")))
    }

    pub fn release(&mut self, ip: &IpAddr) {
        self.allocated.remove(ip);
    }
}

/// The `n`th address of a subnet.
fn nth(net: &IpNet, n: u128) -> Option<IpAddr> {
    match net {
        IpNet::V4(v) => {
            let base = u32::from(v.network()) as u128;
            let ip = base.checked_add(n)?;
            let ip = Ipv4Addr::from(u32::try_from(ip).ok()?);
            v.contains(&ip).then_some(IpAddr::V4(ip))
        }
        IpNet::V6(v) => {
            let ip = Ipv6Addr::from(u128::from(v.network()).checked_add(n)?);
            v.contains(&ip).then_some(IpAddr::V6(ip))
        }
    }
}

fn offset(net: &IpNet, ip: &IpAddr) -> u128 {
    match (net, ip) {
        (IpNet::V4(n), IpAddr::V4(i)) => (u32::from(*i) - u32::from(n.network())) as u128,
        (IpNet::V6(n), IpAddr::V6(i)) => u128::from(*i) - u128::from(n.network()),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_skip_taken_and_well_known() {
        let taken: Vec<IpNet> = WELL_KNOWN
            .iter()
            .map(|s| net(s))
            .chain([net("172.18.5.0/24")])
            .collect();
        assert_eq!(
            choose_subnet(&default_pools(), &taken, false).unwrap(),
            net("172.19.0.0/16")
        );
        // Control: with nothing taken the first subnet of the pool is chosen.
        assert_eq!(
            choose_subnet(&default_pools(), &[], false).unwrap(),
            net("172.17.0.0/16")
        );
        let tiny = [AddressPool {
            base: net("10.9.0.0/24"),
            size: 25,
        }];
        assert_eq!(
            choose_subnet(&tiny, &[net("10.9.0.0/25")], false).unwrap(),
            net("10.9.0.128/25")
        );
        let e = choose_subnet(&tiny, &[net("10.0.0.0/8")], false).unwrap_err();
        assert!(e.to_string().contains("non-overlapping"), "{e}");
        let bad = [AddressPool {
            base: net("10.9.0.0/24"),
            size: 16,
        }];
        assert!(choose_subnet(&bad, &[], false).is_err());
    }

    #[test]
    fn pools_are_chosen_by_family() {
        let pools = [
            AddressPool {
                base: net("fd10:1::/48"),
                size: 64,
            },
            AddressPool {
                base: net("10.7.0.0/16"),
                size: 24,
            },
        ];
        assert_eq!(choose_subnet(&pools, &[], false).unwrap(), net("10.7.0.0/24"));
        assert_eq!(
            choose_subnet(&pools, &[net("fd10:1::/64")], true).unwrap(),
            net("fd10:1:0:1::/64")
        );
        assert!(has_v6_pool(&pools) && !has_v6_pool(&default_pools()));
        let e = choose_subnet(&default_pools(), &[], true).unwrap_err();
        assert!(e.to_string().contains("IPv6"), "{e}");
        let u = ula_subnet([1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(u, net("fd01:203:405:607::/64"));
    }

    #[test]
    fn addresses_are_handed_out_once_and_round_robin() {
        let mut a = Allocator::new(net("10.1.0.0/29"), None, None).unwrap();
        assert_eq!(a.gateway, "10.1.0.1".parse::<IpAddr>().unwrap());
        let got: Vec<String> = (0..5).map(|_| a.allocate(None).unwrap().to_string()).collect();
        assert_eq!(got, ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"]);
        assert!(a.allocate(None).is_err(), "broadcast and gateway are never handed out");
        a.release(&"10.1.0.3".parse().unwrap());
        assert_eq!(a.allocate(None).unwrap().to_string(), "10.1.0.3");
        // Static addresses: inside, free, not the gateway.
        let mut b = Allocator::new(
            net("10.2.0.0/24"),
            Some(net("10.2.0.128/25")),
            Some("10.2.0.254".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(b.allocate(None).unwrap().to_string(), "10.2.0.129");
        assert_eq!(
            b.allocate(Some("10.2.0.7".parse().unwrap())).unwrap().to_string(),
            "10.2.0.7"
        );
        assert!(b.allocate(Some("10.2.0.7".parse().unwrap())).is_err());
        assert!(b.allocate(Some("10.2.0.254".parse().unwrap())).is_err());
        assert!(b.allocate(Some("10.3.0.1".parse().unwrap())).is_err());
        assert!(Allocator::new(net("10.2.0.0/24"), Some(net("10.3.0.0/25")), None).is_err());
        assert!(Allocator::new(net("10.2.0.0/24"), None, Some("10.5.0.1".parse().unwrap())).is_err());
    }

    #[test]
    fn ipv6_allocation() {
        let mut a = Allocator::new(net("fd00:b::/64"), None, None).unwrap();
        assert_eq!(a.gateway.to_string(), "fd00:b::1");
        assert_eq!(a.allocate(None).unwrap().to_string(), "fd00:b::2");
        assert_eq!(a.allocate(None).unwrap().to_string(), "fd00:b::3");
    }

    #[test]
    fn reads_host_routes() {
        // This machine has at least one non-default IPv4 route (its own subnet).
        let r = host_routes();
        assert!(r.iter().any(|n| matches!(n, IpNet::V4(_))), "{r:?}");
    }
}
