//! Looking at containers and images: inspect, top, port, stats.

use std::io::IsTerminal;

use serde_json::{json, Value};

use super::Ctx;
use crate::api::{query_escape, Query};
use crate::cli::{InspectArgs, PortArgs, StatsArgs, TopArgs};
use crate::error::{Error, Result};
use crate::format::{bytes_size, human_size_prec, indent_json, print, println, short_id, tabwrite, Format};
use crate::template::Template;

/// One object's raw JSON: a container or an image (`kind` narrows it).
fn fetch(ctx: &Ctx, name: &str, kind: Option<&str>, size: bool) -> Result<Vec<u8>> {
    let get = |path: String| -> Result<Vec<u8>> {
        let mut r = ctx.api.request("GET", &path, crate::http::Body::Empty, &[])?;
        let b = r
            .read_body()
            .map_err(|e| Error::msg(format!("read the inspect document of {name}: {e}")))?;
        ctx.api.recycle(r);
        Ok(b)
    };
    let container = || {
        get(format!(
            "/containers/{}/json{}",
            query_escape(name),
            if size { "?size=1" } else { "" }
        ))
    };
    let image = || get(format!("/images/{name}/json"));
    match kind {
        Some("container") => container(),
        Some("image") => image(),
        Some(k) => Err(Error::usage(format!("\"{k}\" is not a valid value for --type"))),
        None => match container() {
            Err(e) if e.is_not_found() => match image() {
                Err(e) if e.is_not_found() => Err(Error::msg(format!("Error: No such object: {name}"))),
                r => r,
            },
            r => r,
        },
    }
}

pub fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<()> {
    let tmpl = match a.format.as_deref().filter(|f| !f.is_empty()) {
        Some("json") | None => None,
        Some(f) => Some(Template::parse(f).map_err(|e| Error::usage(format!("template parsing error: {e}")))?),
    };
    let mut docs = Vec::new();
    let mut failed = false;
    for n in &a.names {
        match fetch(ctx, n, a.kind.as_deref(), a.size) {
            Ok(raw) => docs.push(raw),
            Err(e @ Error::Usage(_)) => return Err(e),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    match &tmpl {
        None if !docs.is_empty() => {
            let parts: Vec<String> = docs.iter().map(|d| format!("    {}", indent_json(d, "    "))).collect();
            println(&format!("[\n{}\n]", parts.join(",\n")))?;
        }
        None => print("[]\n")?,
        Some(t) => {
            let mut out = String::new();
            for d in &docs {
                let v: Value =
                    serde_json::from_slice(d).map_err(|e| Error::msg(format!("decode an inspect document: {e}")))?;
                out.push_str(
                    &t.execute(&v)
                        .map_err(|e| Error::msg(format!("template parsing error: {e}")))?,
                );
                out.push('\n');
            }
            print(&out)?;
        }
    }
    if failed {
        Err(Error::Exit(1))
    } else {
        Ok(())
    }
}

pub fn top(ctx: &Ctx, a: TopArgs) -> Result<()> {
    let mut q = Query::new();
    if !a.ps_args.is_empty() {
        q.add("ps_args", a.ps_args.join(" "));
    }
    let v: Value = ctx
        .api
        .get(&format!("/containers/{}/top{}", query_escape(&a.container), q.as_str()))?;
    let mut text = String::new();
    let line = |cells: &Value| {
        cells
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c.as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join("\t")
    };
    text.push_str(&line(&v["Titles"]));
    text.push('\n');
    for p in v["Processes"].as_array().into_iter().flatten() {
        text.push_str(&line(p));
        text.push('\n');
    }
    print(&tabwrite(&text))
}

pub fn port(ctx: &Ctx, a: PortArgs) -> Result<()> {
    let c: Value = ctx
        .api
        .get(&format!("/containers/{}/json", query_escape(&a.container)))?;
    let ports = c["NetworkSettings"]["Ports"].as_object().cloned().unwrap_or_default();
    let addr = |b: &Value| {
        let ip = b["HostIp"].as_str().unwrap_or("");
        let ip = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        format!("{ip}:{}", b["HostPort"].as_str().unwrap_or(""))
    };
    if let Some(p) = &a.port {
        let key = if p.contains('/') { p.clone() } else { format!("{p}/tcp") };
        let found: Vec<String> = ports
            .get(&key)
            .and_then(|b| b.as_array())
            .into_iter()
            .flatten()
            .map(addr)
            .collect();
        if found.is_empty() {
            return Err(Error::msg(format!(
                "Error: No public port '{key}' published for {}",
                a.container
            )));
        }
        return println(&found.join("\n"));
    }
    let mut lines = Vec::new();
    for (k, binds) in &ports {
        for b in binds.as_array().into_iter().flatten() {
            lines.push(format!("{k} -> {}", addr(b)));
        }
    }
    lines.sort();
    if lines.is_empty() {
        return Ok(());
    }
    println(&lines.join("\n"))
}

const STATS_DEFAULT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn stats_headers() -> Value {
    json!({"ID": "CONTAINER ID", "Name": "NAME", "Container": "CONTAINER", "CPUPerc": "CPU %",
           "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
           "PIDs": "PIDS"})
}

/// docker's stats columns from one `/containers/{id}/stats` document.
pub fn stats_row(s: &Value, given: &str, trunc: bool) -> Value {
    let u = |v: &Value| v.as_f64().unwrap_or(0.0);
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let cpu_delta = u(&cpu["cpu_usage"]["total_usage"]) - u(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = u(&cpu["system_cpu_usage"]) - u(&pre["system_cpu_usage"]);
    let online = match cpu["online_cpus"].as_f64().filter(|n| *n > 0.0) {
        Some(n) => n,
        None => cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map(|a| a.len() as f64)
            .unwrap_or(0.0),
    };
    let cpu_pct = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let mem = &s["memory_stats"];
    let usage = u(&mem["usage"]);
    // Page cache that can be dropped is not counted, as docker.
    let inactive = mem["stats"]["total_inactive_file"]
        .as_f64()
        .or(mem["stats"]["inactive_file"].as_f64())
        .filter(|v| *v < usage)
        .unwrap_or(0.0);
    let used = usage - inactive;
    let limit = u(&mem["limit"]);
    let mem_pct = if limit > 0.0 { used / limit * 100.0 } else { 0.0 };
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in s["networks"].as_object().into_iter().flat_map(|m| m.values()) {
        rx += u(&n["rx_bytes"]);
        tx += u(&n["tx_bytes"]);
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().unwrap_or("").to_lowercase().as_str() {
            "read" => rd += u(&e["value"]),
            "write" => wr += u(&e["value"]),
            _ => {}
        }
    }
    let id = s["id"].as_str().unwrap_or("");
    let h3 = |v: f64| human_size_prec(v, 3);
    json!({
        "Container": given,
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Name": s["name"].as_str().unwrap_or("").trim_start_matches('/'),
        "CPUPerc": format!("{cpu_pct:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(used), bytes_size(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": format!("{} / {}", h3(rx), h3(tx)),
        "BlockIO": format!("{} / {}", h3(rd), h3(wr)),
        "PIDs": s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    })
}

pub fn stats(ctx: &Ctx, a: StatsArgs) -> Result<()> {
    let fmt = Format::new(a.format.as_deref().unwrap_or(""), STATS_DEFAULT)?;
    let names = |ctx: &Ctx| -> Result<Vec<String>> {
        if !a.containers.is_empty() {
            return Ok(a.containers.clone());
        }
        let list: Vec<Value> = ctx.api.get(if a.all {
            "/containers/json?all=1"
        } else {
            "/containers/json"
        })?;
        Ok(list.iter().filter_map(|c| c["Id"].as_str().map(short_id)).collect())
    };
    let clear = !a.no_stream && std::io::stdout().is_terminal();
    loop {
        let started = std::time::Instant::now();
        let mut rows = Vec::new();
        for n in names(ctx)? {
            match ctx
                .api
                .get::<Value>(&format!("/containers/{}/stats?stream=0", query_escape(&n)))
            {
                Ok(s) => rows.push(stats_row(&s, &n, !a.no_trunc)),
                Err(e) if a.no_stream || !a.containers.is_empty() => return Err(e),
                // A container that went away between the listing and its stats.
                Err(_) => {}
            }
        }
        let text = fmt.render(&stats_headers(), &rows)?;
        if clear {
            print(&format!("\x1b[2J\x1b[H{text}"))?;
        } else {
            print(&text)?;
        }
        if a.no_stream {
            return Ok(());
        }
        if let Some(rest) = std::time::Duration::from_secs(1).checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_columns() {
        let s = json!({"id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 2048, "limit": 4096, "stats": {"inactive_file": 1024}},
            "pids_stats": {"current": 3}});
        let r = stats_row(&s, "web", true);
        assert_eq!(r["CPUPerc"], "40.00%");
        assert_eq!(r["MemUsage"], "1KiB / 4KiB");
        assert_eq!(r["MemPerc"], "25.00%");
        assert_eq!(r["PIDs"], "3");
        assert_eq!(r["Name"], "web");
    }
}
