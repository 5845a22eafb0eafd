//! `ps`: docker's container table and its `--format` fields.

use serde_json::{json, Value};

use super::Ctx;
use crate::api::{filters_json, Query};
use crate::cli::PsArgs;
use crate::error::Result;
use crate::format::{ago, colour_on_stdout, go_time, human_size_prec, paint, short_id, Format};

const DEFAULT: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub fn headers() -> Value {
    json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
        "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
        "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM",
    })
}

/// docker's `formatter.Ellipsis`: at most `max` characters, the last one "…" when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `0.0.0.0:8080->80/tcp, 90/udp`
fn ports(list: &Value) -> String {
    let mut out: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let private = p["PrivatePort"].as_u64().unwrap_or(0);
            let kind = p["Type"].as_str().unwrap_or("tcp");
            match p["PublicPort"].as_u64().filter(|n| *n > 0) {
                Some(public) => {
                    let ip = p["IP"].as_str().unwrap_or("");
                    let ip = if ip.contains(':') {
                        format!("[{ip}]")
                    } else {
                        ip.to_string()
                    };
                    format!("{ip}:{public}->{private}/{kind}")
                }
                None => format!("{private}/{kind}"),
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out.join(", ")
}

fn joined_labels(labels: &Value) -> String {
    labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// One container of `/containers/json` as docker's ContainerContext shows it.
pub fn row(c: &Value, trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let image = c["Image"].as_str().unwrap_or("");
    let image = if trunc && image.starts_with("sha256:") {
        short_id(image)
    } else {
        image.to_string()
    };
    let command = c["Command"].as_str().unwrap_or("");
    let command = if trunc {
        ellipsis(command, 20)
    } else {
        command.to_string()
    };
    let names: Vec<String> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .map(|n| n.trim_start_matches('/').to_string())
        // Link names (`other/alias`) only with --no-trunc, as docker.
        .filter(|n| !trunc || !n.contains('/'))
        .collect();
    let created = c["Created"].as_i64().unwrap_or(0);
    let size_rw = c["SizeRw"].as_i64().unwrap_or(0);
    let size_root = c["SizeRootFs"].as_i64().unwrap_or(0);
    let size = if size_root > 0 {
        format!(
            "{} (virtual {})",
            human_size_prec(size_rw as f64, 3),
            human_size_prec(size_root as f64, 3)
        )
    } else {
        human_size_prec(size_rw as f64, 3)
    };
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let n = m["Name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .or(m["Source"].as_str())
                .unwrap_or("");
            if trunc {
                ellipsis(n, 15)
            } else {
                n.to_string()
            }
        })
        .collect();
    let local = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Driver"] == "local")
        .count();
    let networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    json!({
        "Command": Value::String(command).to_string(),
        "CreatedAt": go_time(created),
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Image": image,
        "Labels": joined_labels(&c["Labels"]),
        "LocalVolumes": local.to_string(),
        "Mounts": mounts.join(","),
        "Names": names.join(","),
        "Networks": networks.join(","),
        "Platform": null,
        "Ports": ports(&c["Ports"]),
        "RunningFor": ago(created),
        "Size": size,
        "State": c["State"].as_str().unwrap_or(""),
        "Status": c["Status"].as_str().unwrap_or(""),
        "__labels": c["Labels"].clone(),
    })
}

fn coloured_status(s: &str) -> String {
    let code = if s.starts_with("Up") && s.contains("(Paused)") {
        "33"
    } else if s.starts_with("Up") {
        "32"
    } else if s.starts_with("Exited (0)") || s == "Created" {
        return s.to_string();
    } else {
        "31"
    };
    paint(true, code, s)
}

pub fn ps(ctx: &Ctx, a: PsArgs) -> Result<()> {
    let mut q = Query::new();
    let limit = if a.latest { Some(1) } else { a.last.filter(|n| *n > 0) };
    q.flag("all", a.all || limit.is_some());
    if !a.filter.is_empty() {
        q.add("filters", filters_json(&a.filter)?);
    }
    if let Some(n) = limit {
        q.add("limit", n.to_string());
    }
    let format_given = a.format.as_deref().unwrap_or("");
    let wants_size = a.size || format_given.contains(".Size");
    q.flag("size", wants_size);
    let list: Vec<Value> = ctx.api.get(&format!("/containers/json{}", q.as_str()))?;
    let default = if a.size {
        format!("{DEFAULT}\t{{{{.Size}}}}")
    } else {
        DEFAULT.to_string()
    };
    let fmt = if a.quiet {
        Format::new("{{.ID}}", &default)?
    } else {
        Format::new(format_given, &default)?
    };
    let colour = !a.quiet && format_given.is_empty() && colour_on_stdout();
    let rows: Vec<Value> = list
        .iter()
        .map(|c| {
            let mut r = row(c, !a.no_trunc);
            if colour {
                let s = coloured_status(r["Status"].as_str().unwrap_or(""));
                r["Status"] = Value::String(s);
            }
            r
        })
        .collect();
    fmt.print(&headers(), &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_as_docker_shows_them() {
        let c = json!({"Id": "0123456789abcdef", "Image": "busybox", "Command": "sleep 1000 and a long tail",
                       "Created": 0, "Names": ["/web", "/other/alias"], "Labels": {"a": "b"},
                       "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
                       "State": "running", "Status": "Up 5 seconds", "Mounts": [], "SizeRw": 0});
        let r = row(&c, true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Command"], "\"sleep 1000 and a lo…\"");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Ports"], "0.0.0.0:8080->80/tcp");
        assert_eq!(r["Labels"], "a=b");
        let f = Format::new("", DEFAULT).unwrap();
        let out = f.render(&headers(), &[r]).unwrap();
        assert!(
            out.starts_with("CONTAINER ID   IMAGE     COMMAND                  CREATED  "),
            "{out}"
        );
    }
}
