//! Container networking for Berth: Linux bridges with a veth pair per container,
//! addresses from IPAM, NAT and port publishing in nftables, and an embedded DNS
//! server for user-defined networks.

pub mod dns;
pub mod error;
pub mod firewall;
pub mod ipam;
mod link;
pub mod manager;
pub mod ports;
mod resolver;
pub mod sandbox;
pub mod store;

pub use error::{NetworkError, Result};
pub use manager::{CreateRequest, EndpointRequest, NetConfig, NetworkManager, SubnetRequest};
