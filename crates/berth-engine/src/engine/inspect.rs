//! Docker's JSON for `GET /containers/{id}/json` and `GET /containers/json` (with its
//! filters), from container records.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::Engine;
use crate::error::{EngineError, Result};
use crate::logs::parse_rfc3339;
use crate::ocispec;
use crate::record::Record;

/// Query of `GET /containers/json`.
#[derive(Debug, Default, Clone)]
pub struct ListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    pub latest: bool,
    /// Docker's `filters` JSON: `{"key": {"value": true}}` or `{"key": ["value"]}`.
    pub filters: BTreeMap<String, Vec<String>>,
}

impl ListOptions {
    pub fn parse_filters(json_text: &str) -> Result<BTreeMap<String, Vec<String>>> {
        let bad = |e: String| EngineError::InvalidParameter(format!("invalid filters: {e}"));
        if json_text.trim().is_empty() {
            return Ok(BTreeMap::new());
        }
        let v: Value = serde_json::from_str(json_text).map_err(|e| bad(e.to_string()))?;
        let obj = v.as_object().ok_or_else(|| bad("not a JSON object".into()))?;
        let mut out = BTreeMap::new();
        for (k, val) in obj {
            let vals: Vec<String> = match val {
                Value::Object(m) => m.keys().cloned().collect(),
                Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
                _ => return Err(bad(format!("{k}: expected an object or a list"))),
            };
            out.insert(k.clone(), vals);
        }
        Ok(out)
    }
}

fn secs(t: &str) -> i64 {
    parse_rfc3339(t).map(|(s, _)| s).unwrap_or(0)
}

/// Go's `units.HumanDuration`, as `docker ps` prints it.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if d < 14 => format!("{d} days"),
        _ if d < 90 => format!("{} weeks", d / 7),
        _ if d < 730 => format!("{} months", d / 30),
        _ => format!("{} years", d / 365),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `docker ps`'s STATUS column.
pub fn status_text(r: &Record) -> String {
    let st = &r.state;
    let health = st
        .health
        .as_ref()
        .map(|h| {
            format!(
                " ({})",
                if h.status == "starting" {
                    "health: starting"
                } else {
                    &h.status
                }
            )
        })
        .unwrap_or_default();
    if st.restarting {
        return format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            human_duration(now() - secs(&st.finished_at))
        );
    }
    if st.running {
        let paused = if st.paused { " (Paused)" } else { "" };
        return format!("Up {}{paused}{health}", human_duration(now() - secs(&st.started_at)));
    }
    if st.status == "created" || !r.has_been_started {
        return "Created".into();
    }
    format!(
        "Exited ({}) {} ago",
        st.exit_code,
        human_duration(now() - secs(&st.finished_at))
    )
}

fn mounts(r: &Record, volumes_root: &std::path::Path) -> Vec<Value> {
    let mut out = Vec::new();
    for v in &r.volumes {
        out.push(
            json!({"Type": "volume", "Name": v.name, "Source": volumes_root.join(&v.name).join("_data"),
                        "Destination": v.destination, "Driver": "local", "Mode": if v.read_only { "ro" } else { "z" },
                        "RW": !v.read_only, "Propagation": ""}),
        );
    }
    for b in &r.host_config.binds {
        let p: Vec<&str> = b.split(':').collect();
        if p.len() < 2 || !p[0].starts_with('/') {
            continue;
        }
        let mode = p.get(2).copied().unwrap_or("");
        out.push(
            json!({"Type": "bind", "Source": p[0], "Destination": p[1], "Mode": mode,
                        "RW": !mode.split(',').any(|o| o == "ro"), "Propagation": "rprivate"}),
        );
    }
    for m in r.host_config.mounts.iter().filter(|m| m.kind != "volume") {
        out.push(
            json!({"Type": m.kind, "Source": m.source, "Destination": m.target, "Mode": "",
                        "RW": !m.read_only, "Propagation": if m.kind == "bind" { "rprivate" } else { "" }}),
        );
    }
    out
}

fn network_mode(r: &Record) -> String {
    match r.host_config.network_mode.as_str() {
        "" | "default" => "bridge".into(),
        m => m.into(),
    }
}

impl Engine {
    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, key: &str) -> Result<Value> {
        let c = self.get(key)?;
        let r = c.record();
        let args = ocispec::command(&r.config);
        let dir = self.container_dir(&r.id);
        let upper_work = |k: &str| {
            r.rootfs_mount
                .split(',')
                .find_map(|o| o.strip_prefix(&format!("{k}=")).map(String::from))
                .unwrap_or_default()
        };
        let mut host_config = serde_json::to_value(&r.host_config).unwrap_or_default();
        if matches!(r.host_config.network_mode.as_str(), "" | "default") {
            host_config["NetworkMode"] = json!("bridge");
        }
        Ok(json!({
            "Id": r.id,
            "Created": r.created,
            "Path": args.first().cloned().unwrap_or_default(),
            "Args": args.get(1..).unwrap_or_default(),
            "State": r.state,
            "Image": r.image,
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            // As Docker: only json-file has a path clients may read.
            "LogPath": match self.log_target(&r) {
                t if t.driver == "json-file" => t.path.display().to_string(),
                _ => String::new(),
            },
            "Name": r.name,
            "RestartCount": r.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": if r.exec_ids.is_empty() { Value::Null } else { json!(r.exec_ids) },
            "HostConfig": host_config,
            "GraphDriver": {"Name": "overlay2", "Data": {
                "LowerDir": upper_work("lowerdir"), "UpperDir": upper_work("upperdir"),
                "WorkDir": upper_work("workdir"), "MergedDir": dir.join("rootfs"),
            }},
            "Mounts": mounts(&r, &self.cfg.data_root.join("volumes")),
            "Config": r.config,
            "NetworkSettings": self.network_settings(&r),
        }))
    }

    fn matches(&self, r: &Record, f: &BTreeMap<String, Vec<String>>, order: &BTreeMap<String, i64>) -> Result<bool> {
        for (k, vals) in f {
            if vals.is_empty() {
                continue;
            }
            let ok = match k.as_str() {
                // Every label filter must hold.
                "label" => vals.iter().all(|v| match v.split_once('=') {
                    Some((k, want)) => r.config.labels.get(k).is_some_and(|x| x == want),
                    None => r.config.labels.contains_key(v),
                }),
                "name" => vals.iter().any(|v| r.short_name().contains(v.trim_start_matches('/'))),
                "id" => vals.iter().any(|v| r.id.starts_with(v.as_str())),
                "status" => {
                    for v in vals {
                        if !matches!(
                            v.as_str(),
                            "created" | "restarting" | "running" | "removing" | "paused" | "exited" | "dead"
                        ) {
                            return Err(EngineError::InvalidParameter(format!("invalid filter 'status={v}'")));
                        }
                    }
                    vals.contains(&r.state.status)
                }
                "exited" => {
                    !r.state.running
                        && r.has_been_started
                        && vals.iter().any(|v| v.parse::<i32>().ok() == Some(r.state.exit_code))
                }
                "ancestor" => vals.iter().any(|v| {
                    *v == r.image_name
                        || r.image
                            .trim_start_matches("sha256:")
                            .starts_with(v.trim_start_matches("sha256:"))
                        || self
                            .images
                            .resolve(v)
                            .is_ok_and(|i| i.config_digest.to_string() == r.image)
                }),
                "before" | "since" => {
                    let mine = order.get(&r.id).copied().unwrap_or(0);
                    vals.iter().all(|v| {
                        let Ok(other) = self.get(v) else { return false };
                        let theirs = order.get(&other.id).copied().unwrap_or(0);
                        if k == "before" {
                            mine < theirs
                        } else {
                            mine > theirs
                        }
                    })
                }
                "health" => vals
                    .iter()
                    .any(|v| r.state.health.as_ref().map_or("none", |h| h.status.as_str()) == v),
                "volume" | "network" | "publish" | "expose" | "is-task" => true,
                other => return Err(EngineError::InvalidParameter(format!("invalid filter '{other}'"))),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `GET /containers/json`, newest first.
    pub fn list(&self, o: &ListOptions) -> Result<Vec<Value>> {
        let mut recs: Vec<Record> = self.all().iter().map(|c| c.record()).collect();
        // Creation order: by creation time, id as tie-break.
        recs.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        let order: BTreeMap<String, i64> = recs
            .iter()
            .rev()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i as i64))
            .collect();
        let show_all = o.all || o.limit.is_some() || o.latest;
        let mut out = Vec::new();
        for r in &recs {
            if !show_all && !r.state.running {
                continue;
            }
            if !self.matches(r, &o.filters, &order)? {
                continue;
            }
            let cmd = ocispec::command(&r.config).join(" ");
            out.push(json!({
                "Id": r.id,
                "Names": [r.name],
                "Image": r.image_name,
                "ImageID": r.image,
                "Command": cmd,
                "Created": secs(&r.created),
                "Ports": self.list_ports(r),
                "Labels": r.config.labels,
                "State": r.state.status,
                "Status": status_text(r),
                "HostConfig": {"NetworkMode": network_mode(r)},
                "NetworkSettings": {"Networks": self.network_settings(r)["Networks"].clone()},
                "Mounts": mounts(r, &self.cfg.data_root.join("volumes")),
            }));
            let limit = if o.latest { Some(1) } else { o.limit };
            if limit.is_some_and(|l| l > 0 && out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_filters() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(7200), "2 hours");
        let f = ListOptions::parse_filters(r#"{"status":{"running":true},"label":["a=b","c"]}"#).unwrap();
        assert_eq!(f["status"], ["running"]);
        assert_eq!(f["label"], ["a=b", "c"]);
        assert!(ListOptions::parse_filters("[1]").is_err());
    }
}
