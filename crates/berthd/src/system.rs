//! `/_ping`, `/version`, `/info`, `/events`.

use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use crate::http::{self, channel, error, full, ok_json, Resp, API_VERSION, MIN_API_VERSION};
use crate::routes::Ctx;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn ping(head: bool) -> Resp {
    Response::builder()
        .status(StatusCode::OK)
        .header("Api-Version", API_VERSION)
        .header("Ostype", "linux")
        .header("Docker-Experimental", "false")
        .header("Builder-Version", "1")
        .header("Cache-Control", "no-cache, no-store, must-revalidate")
        .header("Pragma", "no-cache")
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(if head { http::empty() } else { full("OK") })
        .expect("valid response")
}

fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

pub async fn version(_ctx: &Ctx) -> Resp {
    ok_json(&json!({
        "Platform": {"Name": "Berth Engine"},
        "Components": [{
            "Name": "Berth",
            "Version": VERSION,
            "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
                        "Arch": go_arch(), "KernelVersion": kernel()},
        }],
        "Version": VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel(),
        "BuildTime": "",
    }))
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map(|k| k * 1024)
        .unwrap_or(0)
}

pub async fn info(ctx: &Ctx) -> Resp {
    let e = &ctx.daemon.engine;
    let recs: Vec<_> = e.all().iter().map(|c| c.record()).collect();
    let running = recs.iter().filter(|r| r.state.running && !r.state.paused).count();
    let paused = recs.iter().filter(|r| r.state.paused).count();
    let images = e.images.list().map(|l| l.len()).unwrap_or(0);
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cfg = &e.cfg;
    let mut doc = json!({
        "ID": "",
        "Containers": recs.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": recs.len() - running - paused,
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"]],
        "Plugins": {"Volume": ["local"], "Network": ["none", "host"], "Log": ["json-file", "local", "none"]},
        "MemoryLimit": true,
        "SwapLimit": true,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": true,
    });
    let mid = json!({
        "Debug": cfg.debug,
        "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
        "NGoroutines": 0,
        "SystemTime": berth_runtime::state::now_rfc3339(),
        "LoggingDriver": cfg.log_driver,
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": if v2 { "2" } else { "1" },
        "NEventsListener": 0,
        "KernelVersion": kernel(),
        "OperatingSystem": os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "IndexConfigs": {},
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "Mirrors": cfg.registry_mirrors,
        },
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem_total(),
    });
    if let (Some(d), Some(m)) = (doc.as_object_mut(), mid.as_object()) {
        d.extend(m.clone());
    }
    let tail = json!({
        "DockerRootDir": cfg.data_root,
        "Name": hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": format!("{VERSION}-berth"),
        "Runtimes": {"berth-runtime": {"path": "berth-runtime"}},
        "DefaultRuntime": "berth-runtime",
    });
    if let (Some(d), Some(m)) = (doc.as_object_mut(), tail.as_object()) {
        d.extend(m.clone());
    }
    let more = json!({
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false,
                  "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": cfg.live_restore,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "ProductLicense": "Berth (Apache-2.0)",
        "Warnings": [],
    });
    if let (Some(d), Some(m)) = (doc.as_object_mut(), more.as_object()) {
        d.extend(m.clone());
    }
    ok_json(&doc)
}

/// Parse Docker's times: unix seconds with optional fraction, or RFC 3339.
pub fn parse_time(s: &str) -> Option<(i64, u32)> {
    if let Some((a, b)) = s.split_once('.') {
        if let (Ok(sec), true) = (a.parse::<i64>(), b.chars().all(|c| c.is_ascii_digit())) {
            let nanos = format!("{b:0<9}")[..9].parse().unwrap_or(0);
            return Some((sec, nanos));
        }
    }
    if let Ok(sec) = s.parse::<i64>() {
        return Some((sec, 0));
    }
    berth_engine::logs::parse_rfc3339(s)
}

fn event_matches(ev: &Value, filters: &std::collections::BTreeMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(k, vals)| {
        if vals.is_empty() {
            return true;
        }
        let attr = |n: &str| ev["Actor"]["Attributes"][n].as_str().unwrap_or("").to_string();
        match k.as_str() {
            "type" => vals.iter().any(|v| ev["Type"] == v.as_str()),
            "event" => vals.iter().any(|v| {
                let a = ev["Action"].as_str().unwrap_or("");
                a == v || a.split(':').next() == Some(v.as_str())
            }),
            "container" => {
                ev["Type"] == "container"
                    && vals.iter().any(|v| {
                        ev["Actor"]["ID"].as_str().is_some_and(|id| id.starts_with(v.as_str())) || attr("name") == *v
                    })
            }
            "image" => vals
                .iter()
                .any(|v| attr("image") == *v || ev["Actor"]["ID"] == v.as_str()),
            "label" => vals.iter().all(|v| match v.split_once('=') {
                Some((k, want)) => attr(k) == want,
                None => !ev["Actor"]["Attributes"][v.as_str()].is_null(),
            }),
            _ => true,
        }
    })
}

pub async fn events(ctx: &Ctx) -> Resp {
    let q = &ctx.query;
    let since = q.get("since").filter(|s| !s.is_empty()).map(parse_time);
    let until = q.get("until").filter(|s| !s.is_empty()).map(parse_time);
    if matches!(since, Some(None)) || matches!(until, Some(None)) {
        return error(StatusCode::BAD_REQUEST, "invalid since/until time");
    }
    let (since, until) = (since.flatten(), until.flatten());
    let filters = match berth_engine::engine::ListOptions::parse_filters(q.get("filters").unwrap_or("")) {
        Ok(f) => f,
        Err(e) => return http::engine_error(&e),
    };
    let (past, mut rx) = ctx.daemon.engine.events.subscribe();
    let (tx, body) = channel();
    let to_ns = |t: (i64, u32)| t.0 * 1_000_000_000 + t.1 as i64;
    // A whole-second `until` (older clients send those) includes that second's events.
    let until = until.map(|u| if u.1 == 0 { (u.0, 999_999_999) } else { u });
    tokio::spawn(async move {
        let send = |ev: &berth_engine::events::Event| {
            let v = serde_json::to_value(ev).unwrap_or_default();
            if !event_matches(&v, &filters) {
                return None;
            }
            let mut line = serde_json::to_vec(&v).unwrap_or_default();
            line.push(b'\n');
            Some(Bytes::from(line))
        };
        if let Some(s) = since {
            for ev in past.iter().filter(|e| e.time_nano >= to_ns(s)) {
                if until.is_some_and(|u| ev.time_nano > to_ns(u)) {
                    continue;
                }
                if let Some(b) = send(ev) {
                    if tx.send(b).await.is_err() {
                        return;
                    }
                }
            }
        }
        loop {
            let deadline = until.map(|u| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos() as i64;
                std::time::Duration::from_nanos((to_ns(u) - now).max(0) as u64)
            });
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout(d, rx.recv()).await.ok(),
                    None => Some(rx.recv().await),
                }
            };
            tokio::select! {
                ev = next => match ev {
                    Some(Ok(ev)) => {
                        if let Some(b) = send(&ev) {
                            if tx.send(b).await.is_err() { return; }
                        }
                    }
                    Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                    _ => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(body)
        .expect("valid response")
}
