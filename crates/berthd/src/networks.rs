//! `/networks` endpoints in Docker's shapes, over the engine's network manager.

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use berth_engine::engine::{network_filter_known, network_matches, ListOptions};
use berth_engine::types::EndpointConfig;
use berth_engine::EngineError;
use berth_network::store::Network;
use berth_network::{CreateRequest, SubnetRequest};

use crate::containers::try_resp;
use crate::http::{self, json_resp, ok_json, parse_json, read_body, status, Resp, MAX_JSON_BODY};
use crate::routes::{blocking, Ctx};

fn network_json(n: &Network, with_containers: bool) -> Value {
    let config: Vec<Value> = n
        .ipam
        .iter()
        .map(|a| {
            let mut c = json!({"Subnet": a.subnet.to_string(), "Gateway": a.gateway.to_string()});
            if let Some(r) = a.range {
                c["IPRange"] = json!(r.to_string());
            }
            c
        })
        .collect();
    let containers: serde_json::Map<String, Value> = if with_containers {
        n.endpoints
            .iter()
            .map(|(id, e)| {
                (
                    id.clone(),
                    json!({
                        "Name": e.name, "EndpointID": e.id, "MacAddress": e.mac,
                        "IPv4Address": e.ipv4.map(|a| a.to_string()).unwrap_or_default(),
                        "IPv6Address": e.ipv6.map(|a| a.to_string()).unwrap_or_default(),
                    }),
                )
            })
            .collect()
    } else {
        Default::default()
    };
    json!({
        "Name": n.name, "Id": n.id, "Created": n.created, "Scope": "local", "Driver": n.driver,
        "EnableIPv4": true, "EnableIPv6": n.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": if n.ipam_options.is_empty() { Value::Null } else { json!(n.ipam_options) }, "Config": config},
        "Internal": n.internal, "Attachable": n.attachable, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": containers, "Options": n.options, "Labels": n.labels,
    })
}

fn filters(ctx: &Ctx) -> Result<BTreeMap<String, Vec<String>>, Resp> {
    ListOptions::parse_filters(ctx.query.get("filters").unwrap_or("")).map_err(|e| http::engine_error(&e))
}

pub async fn list(ctx: &Ctx) -> Resp {
    let f = try_resp!(filters(ctx));
    if let Some(k) = f.keys().find(|k| !network_filter_known(k)) {
        return http::error(StatusCode::BAD_REQUEST, format!("invalid filter '{k}'"));
    }
    let engine = ctx.daemon.engine.clone();
    let nets = try_resp!(blocking(move || Ok(engine.networks.list())).await);
    let out: Vec<Value> = nets
        .iter()
        .filter(|n| network_matches(n, &f))
        .map(|n| network_json(n, false))
        .collect();
    ok_json(&json!(out))
}

pub async fn inspect(ctx: &Ctx, key: &str) -> Resp {
    let (engine, key) = (ctx.daemon.engine.clone(), key.to_string());
    let n = try_resp!(blocking(move || Ok(engine.networks.get(&key)?)).await);
    ok_json(&network_json(&n, true))
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct IpamConfig {
    #[serde(default)]
    subnet: String,
    #[serde(default, rename = "IPRange")]
    ip_range: String,
    #[serde(default)]
    gateway: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Ipam {
    #[serde(default)]
    driver: String,
    #[serde(default)]
    config: Option<Vec<IpamConfig>>,
    #[serde(default)]
    options: Option<BTreeMap<String, String>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    name: String,
    #[serde(default)]
    driver: String,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    attachable: bool,
    #[serde(default, rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(default, rename = "IPAM")]
    ipam: Option<Ipam>,
    #[serde(default)]
    options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

fn parse_net(s: &str, what: &str) -> Result<Option<ipnet::IpNet>, EngineError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<ipnet::IpNet>()
        .map(Some)
        .map_err(|_| EngineError::InvalidParameter(format!("invalid {what} {s:?}: want a CIDR like 10.1.0.0/16")))
}

fn create_request(b: CreateBody) -> Result<CreateRequest, EngineError> {
    let ipam = b.ipam.unwrap_or_default();
    if !matches!(ipam.driver.as_str(), "" | "default") {
        return Err(EngineError::InvalidParameter(format!(
            "IPAM driver {:?} is not supported (default)",
            ipam.driver
        )));
    }
    let mut subnets = Vec::new();
    for c in ipam.config.unwrap_or_default() {
        let gateway = if c.gateway.is_empty() {
            None
        } else {
            Some(
                c.gateway
                    .parse()
                    .map_err(|_| EngineError::InvalidParameter(format!("invalid gateway address {:?}", c.gateway)))?,
            )
        };
        subnets.push(SubnetRequest {
            subnet: parse_net(&c.subnet, "subnet")?,
            ip_range: parse_net(&c.ip_range, "ip-range")?,
            gateway,
        });
    }
    Ok(CreateRequest {
        name: b.name,
        driver: b.driver,
        internal: b.internal,
        enable_ipv6: b.enable_ipv6.unwrap_or(false),
        attachable: b.attachable,
        labels: b.labels.unwrap_or_default(),
        options: b.options.unwrap_or_default(),
        subnets,
        ipam_options: ipam.options.unwrap_or_default(),
    })
}

pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let bytes = try_resp!(read_body(req.into_body(), MAX_JSON_BODY).await);
    let b: CreateBody = try_resp!(parse_json(&bytes));
    let engine = ctx.daemon.engine.clone();
    let n = try_resp!(blocking(move || engine.network_create(create_request(b)?)).await);
    json_resp(StatusCode::CREATED, &json!({"Id": n.id, "Warning": ""}))
}

pub async fn remove(ctx: &Ctx, key: &str) -> Resp {
    let (engine, key) = (ctx.daemon.engine.clone(), key.to_string());
    try_resp!(blocking(move || engine.network_remove(&key)).await);
    status(StatusCode::NO_CONTENT)
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ConnectBody {
    container: String,
    #[serde(default)]
    endpoint_config: Option<EndpointConfig>,
    #[serde(default)]
    force: bool,
}

pub async fn connect(ctx: &Ctx, req: Request<Incoming>, key: &str, on: bool) -> Resp {
    let bytes = try_resp!(read_body(req.into_body(), MAX_JSON_BODY).await);
    let b: ConnectBody = try_resp!(parse_json(&bytes));
    let (engine, key) = (ctx.daemon.engine.clone(), key.to_string());
    try_resp!(
        blocking(move || {
            if on {
                engine.network_connect(&b.container, &key, b.endpoint_config.unwrap_or_default())
            } else {
                engine.network_disconnect(&b.container, &key, b.force)
            }
        })
        .await
    );
    status(StatusCode::OK)
}

pub async fn prune(ctx: &Ctx) -> Resp {
    let f = try_resp!(filters(ctx));
    let engine = ctx.daemon.engine.clone();
    let gone = try_resp!(blocking(move || engine.network_prune(&f)).await);
    ok_json(&json!({"NetworksDeleted": gone}))
}
