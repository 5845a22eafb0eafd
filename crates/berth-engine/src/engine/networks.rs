//! The `/networks` operations that need the engine (events, containers' records).

use std::collections::BTreeMap;

use berth_network::store::Network;
use berth_network::CreateRequest;

use super::Engine;
use crate::error::{EngineError, Result};

impl Engine {
    /// `POST /networks/create`.
    pub fn network_create(&self, req: CreateRequest) -> Result<Network> {
        let n = self.networks.create(req)?;
        self.network_event(&n, "create", "");
        Ok(n)
    }

    /// `DELETE /networks/{id}`: refused for the pre-defined networks and while
    /// containers are attached (403, as Docker).
    pub fn network_remove(&self, key: &str) -> Result<()> {
        let n = self.networks.get(key)?;
        self.networks.remove(&n.id)?;
        self.network_event(&n, "destroy", "");
        Ok(())
    }

    /// `POST /networks/prune`: user networks without endpoints, filtered by `label`
    /// (`key`, `key=value`, `label!=`) and `until`; returns the removed names.
    pub fn network_prune(&self, filters: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>> {
        if let Some(k) = filters
            .keys()
            .find(|k| !matches!(k.as_str(), "until" | "label" | "label!"))
        {
            return Err(EngineError::InvalidParameter(format!("invalid filter '{k}'")));
        }
        let until = match filters.get("until").map(Vec::as_slice) {
            None | Some([]) => None,
            Some([v]) => Some(super::prune::parse_until(v)?),
            Some(_) => {
                return Err(EngineError::InvalidParameter(
                    "more than one until filter specified".into(),
                ))
            }
        };
        let mut out = Vec::new();
        for n in self.networks.list() {
            if n.predefined() || !n.endpoints.is_empty() || !network_matches(&n, filters) {
                continue;
            }
            let created = crate::logs::parse_rfc3339(&n.created).map_or(0.0, |(s, ns)| s as f64 + f64::from(ns) / 1e9);
            if until.is_some_and(|u| created >= u) {
                continue;
            }
            if self.network_remove(&n.id).is_ok() {
                out.push(n.name);
            }
        }
        Ok(out)
    }
}

fn label_match(n: &Network, f: &str) -> bool {
    match f.split_once('=') {
        Some((k, v)) => n.labels.get(k).is_some_and(|x| x == v),
        None => n.labels.contains_key(f),
    }
}

/// The filters `GET /networks` knows (others are refused, as Docker does).
pub fn network_filter_known(key: &str) -> bool {
    matches!(
        key,
        "name" | "id" | "label" | "label!" | "driver" | "scope" | "type" | "dangling"
    )
}

/// Docker's network filters: name (substring), id (prefix), label, label!, driver,
/// type (builtin/custom), scope, dangling.
pub fn network_matches(n: &Network, filters: &BTreeMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(k, vals)| match k.as_str() {
        "name" => vals.iter().any(|v| n.name.contains(v.as_str())),
        "id" => vals.iter().any(|v| n.id.starts_with(v.as_str())),
        "label" => vals.iter().all(|v| label_match(n, v)),
        "label!" => vals.iter().all(|v| !label_match(n, v)),
        "driver" => vals.contains(&n.driver),
        "scope" => vals.iter().any(|v| v == "local"),
        "type" => vals.iter().any(|v| (v == "builtin") == n.predefined()),
        "dangling" => vals
            .iter()
            .any(|v| (v == "true" || v == "1") == (n.endpoints.is_empty() && !n.predefined())),
        "until" => true,
        _ => true,
    })
}
