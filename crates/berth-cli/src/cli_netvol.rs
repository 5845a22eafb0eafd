//! The `network` and `volume` groups' flags, as docker v28 has them. Positional
//! arguments are counted by the commands (docker's messages and exit code 1 for a wrong
//! count), so they are optional here and the usage lines are docker's.

use std::ffi::OsString;

use clap::{ArgAction, Args, Subcommand};

/// `berth network --help` (or `volume`): the group docker prints its own usage for, on
/// stdout (clap's help is kept for the subcommands).
pub fn group_help(argv: &[OsString]) -> Option<&'static str> {
    let group = match crate::cli::command_name(argv)? {
        "network" => "network",
        "volume" => "volume",
        _ => return None,
    };
    let mut rest = argv
        .iter()
        .filter_map(|a| a.to_str())
        .skip_while(|a| *a != group)
        .skip(1);
    matches!(rest.next(), Some("-h" | "--help")).then_some(group)
}

/// `berth network`: no subcommand prints the group's usage, as docker does.
#[derive(Args, Debug)]
#[command(disable_help_subcommand = true, override_usage = "berth network COMMAND")]
pub struct NetworkGroup {
    /// A word that names no subcommand (reported as docker reports it).
    #[arg(hide = true)]
    pub unknown: Vec<String>,
    #[command(subcommand)]
    pub cmd: Option<NetworkCmd>,
}

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Connect a container to a network
    #[command(override_usage = "berth network connect [OPTIONS] NETWORK CONTAINER")]
    Connect(NetConnectArgs),
    /// Create a network
    #[command(override_usage = "berth network create [OPTIONS] NETWORK")]
    Create(NetCreateArgs),
    /// Disconnect a container from a network
    #[command(override_usage = "berth network disconnect [OPTIONS] NETWORK CONTAINER")]
    Disconnect(NetDisconnectArgs),
    /// Display detailed information on one or more networks
    #[command(override_usage = "berth network inspect [OPTIONS] NETWORK [NETWORK...]")]
    Inspect(NetInspectArgs),
    /// List networks
    #[command(visible_alias = "list", override_usage = "berth network ls [OPTIONS]")]
    Ls(NetLsArgs),
    /// Remove all unused networks
    #[command(override_usage = "berth network prune [OPTIONS]")]
    Prune(NetPruneArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove", override_usage = "berth network rm NETWORK [NETWORK...]")]
    Rm(NetRmArgs),
}

#[derive(Args, Debug)]
pub struct NetCreateArgs {
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address", value_name = "map")]
    pub aux_address: Vec<String>,
    /// The network from which to copy the configuration
    #[arg(long = "config-from", value_name = "string")]
    pub config_from: Option<String>,
    /// Create a configuration only network
    #[arg(long = "config-only")]
    pub config_only: bool,
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge", value_name = "string")]
    pub driver: String,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long, value_delimiter = ',', value_name = "strings")]
    pub gateway: Vec<String>,
    /// Create swarm routing-mesh network
    #[arg(long)]
    pub ingress: bool,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_delimiter = ',', value_name = "strings")]
    pub ip_range: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", default_value = "default", value_name = "string")]
    pub ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt", value_name = "map")]
    pub ipam_opt: Vec<String>,
    /// Enable or disable IPv4 address assignment
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, action = ArgAction::Set)]
    pub ipv4: Option<bool>,
    /// Enable or disable IPv6 address assignment
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, action = ArgAction::Set)]
    pub ipv6: Option<bool>,
    /// Set metadata on a network
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long, value_name = "map")]
    pub opt: Vec<String>,
    /// Control the network's scope
    #[arg(long, default_value = "", hide_default_value = true, value_name = "string")]
    pub scope: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, value_delimiter = ',', value_name = "strings")]
    pub subnet: Vec<String>,
    #[arg(value_name = "NETWORK", hide = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NetLsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NetInspectArgs {
    /// Format output using a custom template ('json', 'TEMPLATE')
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[arg(value_name = "NETWORK", hide = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NetConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long, value_delimiter = ',', value_name = "strings")]
    pub alias: Vec<String>,
    /// driver options for the network
    #[arg(long = "driver-opt", value_delimiter = ',', value_name = "strings")]
    pub driver_opt: Vec<String>,
    /// Highest gw-priority provides the default gateway. Accepts positive and negative values.
    #[arg(
        long = "gw-priority",
        allow_hyphen_values = true,
        default_value_t = 0,
        value_name = "int"
    )]
    pub gw_priority: i64,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long, value_name = "string")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long, value_name = "string")]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long, value_name = "list")]
    pub link: Vec<String>,
    /// Add a link-local address for the container
    #[arg(long = "link-local-ip", value_delimiter = ',', value_name = "strings")]
    pub link_local_ip: Vec<String>,
    #[arg(value_name = "NETWORK", hide = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NetDisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "NETWORK", hide = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NetRmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "NETWORK", hide = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NetPruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

/// `berth volume`: no subcommand prints the group's usage, as docker does.
#[derive(Args, Debug)]
#[command(disable_help_subcommand = true, override_usage = "berth volume COMMAND")]
pub struct VolumeGroup {
    #[arg(hide = true)]
    pub unknown: Vec<String>,
    #[command(subcommand)]
    pub cmd: Option<VolumeCmd>,
}

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume
    #[command(override_usage = "berth volume create [OPTIONS] [VOLUME]")]
    Create(VolCreateArgs),
    /// Display detailed information on one or more volumes
    #[command(override_usage = "berth volume inspect [OPTIONS] VOLUME [VOLUME...]")]
    Inspect(VolInspectArgs),
    /// List volumes
    #[command(visible_alias = "list", override_usage = "berth volume ls [OPTIONS]")]
    Ls(VolLsArgs),
    /// Remove unused local volumes
    #[command(override_usage = "berth volume prune [OPTIONS]")]
    Prune(VolPruneArgs),
    /// Remove one or more volumes
    #[command(
        visible_alias = "remove",
        override_usage = "berth volume rm [OPTIONS] VOLUME [VOLUME...]",
        long_about = "Remove one or more volumes. You cannot remove a volume that is in use by a container."
    )]
    Rm(VolRmArgs),
}

#[derive(Args, Debug)]
pub struct VolCreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, default_value = "local", value_name = "string")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Specify volume name (deprecated: give it as the argument)
    #[arg(long, hide = true)]
    pub name: Option<String>,
    /// Set driver specific options
    #[arg(short = 'o', long, value_name = "map")]
    pub opt: Vec<String>,
    #[arg(value_name = "VOLUME", hide = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolLsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolInspectArgs {
    /// Format output using a custom template ('json', 'TEMPLATE')
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    #[arg(value_name = "VOLUME", hide = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolRmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "VOLUME", hide = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolPruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}
