//! The daemon and the client: info, version, events, system df/prune, login, logout.

use std::io::{BufRead, BufReader, IsTerminal, Write};

use serde_json::{json, Value};

use super::image::prune_images;
use super::lifecycle::{confirm, prune_containers};
use super::Ctx;
use crate::api::{filters_json, Query, CLIENT_API_VERSION};
use crate::auth;
use crate::cli::{DfArgs, EventsArgs, FormatOnly, LoginArgs, LogoutArgs, SystemPruneArgs};
use crate::error::{Error, Result};
use crate::format::{api_timestamp, bytes_size, human_size, print, println, write_to, Format};
use crate::http::Body;
use crate::reference::HUB_AUTH_KEY;
use crate::template::Template;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// A format given to a command whose output is no table: executed once on `data`.
fn templated(format: &str, data: &Value) -> Result<()> {
    let f = if format == "json" { "{{json .}}" } else { format };
    let t = Template::parse(f).map_err(|e| Error::usage(format!("template parsing error: {e}")))?;
    let out = t.execute(data).map_err(|e| Error::msg(format!("template: {e}")))?;
    println(&out)
}

pub fn version(ctx: &Ctx, a: FormatOnly) -> Result<()> {
    let api_version = ctx.api.version().unwrap_or_else(|_| CLIENT_API_VERSION.to_string());
    let client = json!({
        "Platform": {"Name": "Berth"},
        "Version": VERSION,
        "ApiVersion": api_version,
        "DefaultAPIVersion": CLIENT_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": go_arch(),
        "BuildTime": "",
        "Context": "default",
    });
    let server = ctx.api.get::<Value>("/version");
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let data = json!({"Client": client, "Server": server.as_ref().ok()});
        templated(f, &data)?;
        return server.map(|_| ());
    }
    let mut out = format!(
        "Client:\n Version:           {VERSION}\n API version:       {api_version}{}\n OS/Arch:           linux/{}\n Context:           default\n",
        if api_version != CLIENT_API_VERSION {
            format!(" (downgraded from {CLIENT_API_VERSION})")
        } else {
            String::new()
        },
        go_arch()
    );
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            print(&out)?;
            return Err(e);
        }
    };
    out.push_str(&format!(
        "\nServer: {}\n",
        server["Platform"]["Name"].as_str().unwrap_or("")
    ));
    for c in server["Components"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            " {}:\n  Version:          {}\n",
            c["Name"].as_str().unwrap_or(""),
            c["Version"].as_str().unwrap_or("")
        ));
        for (k, v) in c["Details"].as_object().into_iter().flatten() {
            let v = v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
            out.push_str(&format!("  {:<18}{v}\n", format!("{k}:")));
        }
    }
    print(&out)
}

pub fn info(ctx: &Ctx, a: FormatOnly) -> Result<()> {
    let mut info: Value = ctx.api.get("/info")?;
    let client =
        json!({"Version": VERSION, "Context": "default", "Debug": ctx.api.debug, "Plugins": [], "Warnings": null});
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        info["ClientInfo"] = client;
        return templated(f, &info);
    }
    let s = |k: &str| match &info[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    };
    let list = |v: &Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut o = format!(
        "Client:\n Version:    {VERSION}\n Context:    default\n Debug Mode: {}\n\nServer:\n",
        ctx.api.debug
    );
    o.push_str(&format!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n Server Version: {}\n Storage Driver: {}\n",
        s("Containers"),
        s("ContainersRunning"),
        s("ContainersPaused"),
        s("ContainersStopped"),
        s("Images"),
        s("ServerVersion"),
        s("Driver")
    ));
    for pair in info["DriverStatus"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (pair[0].as_str(), pair[1].as_str()) {
            o.push_str(&format!("  {k}: {v}\n"));
        }
    }
    o.push_str(&format!(
        " Logging Driver: {}\n Cgroup Driver: {}\n Cgroup Version: {}\n Plugins:\n  Volume: {}\n  Network: {}\n  Log: {}\n",
        s("LoggingDriver"),
        s("CgroupDriver"),
        s("CgroupVersion"),
        list(&info["Plugins"]["Volume"]),
        list(&info["Plugins"]["Network"]),
        list(&info["Plugins"]["Log"])
    ));
    let runtimes: Vec<String> = info["Runtimes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    o.push_str(&format!(
        " Swarm: {}\n Runtimes: {}\n Default Runtime: {}\n Security Options:\n",
        info["Swarm"]["LocalNodeState"].as_str().unwrap_or("inactive"),
        runtimes.join(" "),
        s("DefaultRuntime")
    ));
    for opt in info["SecurityOptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str())
    {
        let mut parts = opt.split(',');
        let name = parts.next().unwrap_or("").trim_start_matches("name=");
        o.push_str(&format!("  {name}\n"));
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                let mut k = k.to_string();
                if let Some(f) = k.get(..1) {
                    k = f.to_uppercase() + &k[1..];
                }
                o.push_str(&format!("   {k}: {v}\n"));
            }
        }
    }
    o.push_str(&format!(
        " Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n ID: {}\n Docker Root Dir: {}\n Debug Mode: {}\n Experimental: {}\n",
        s("KernelVersion"),
        s("OperatingSystem"),
        s("OSType"),
        s("Architecture"),
        s("NCPU"),
        bytes_size(info["MemTotal"].as_f64().unwrap_or(0.0)),
        s("Name"),
        s("ID"),
        s("DockerRootDir"),
        s("Debug"),
        s("ExperimentalBuild")
    ));
    let cidrs = list(&info["RegistryConfig"]["InsecureRegistryCIDRs"]);
    if !cidrs.is_empty() {
        o.push_str(&format!(" Insecure Registries:\n  {}\n", cidrs.replace(' ', "\n  ")));
    }
    let mirrors = list(&info["RegistryConfig"]["Mirrors"]);
    if !mirrors.is_empty() {
        o.push_str(&format!(" Registry Mirrors:\n  {}\n", mirrors.replace(' ', "\n  ")));
    }
    o.push_str(&format!(" Live Restore Enabled: {}\n", s("LiveRestoreEnabled")));
    for w in info["Warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str())
    {
        o.push_str(&format!("\n{w}"));
    }
    print(&o)
}

/// docker's `jsonmessage.RFC3339NanoFixed` in local time.
fn event_time(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let t = crate::format::go_time(secs);
    // go_time: "2006-01-02 15:04:05 -0700 MST"
    let mut p = t.split(' ');
    let (date, clock, off) = (
        p.next().unwrap_or(""),
        p.next().unwrap_or(""),
        p.next().unwrap_or("+0000"),
    );
    let zone = if off == "+0000" {
        "Z".to_string()
    } else {
        format!("{}:{}", &off[..3], &off[3..])
    };
    format!("{date}T{clock}.{frac:09}{zone}")
}

fn pretty_event(e: &Value) -> String {
    let nanos = e["timeNano"]
        .as_i64()
        .unwrap_or(e["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let mut line = format!(
        "{} {} {} {}",
        event_time(nanos),
        e["Type"].as_str().unwrap_or(""),
        e["Action"].as_str().unwrap_or(""),
        e["Actor"]["ID"].as_str().unwrap_or("")
    );
    if let Some(attrs) = e["Actor"]["Attributes"].as_object().filter(|m| !m.is_empty()) {
        let parts: Vec<String> = attrs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        line.push_str(&format!(" ({})", parts.join(", ")));
    }
    line.push('\n');
    line
}

pub fn events(ctx: &Ctx, a: EventsArgs) -> Result<()> {
    let mut q = Query::new();
    if !a.filter.is_empty() {
        q.add("filters", filters_json(&a.filter)?);
    }
    if let Some(s) = &a.since {
        q.opt("since", &api_timestamp(s)?);
    }
    if let Some(u) = &a.until {
        q.opt("until", &api_timestamp(u)?);
    }
    let tmpl = match a.format.as_deref().filter(|f| !f.is_empty()) {
        None => None,
        Some("json") => Some(Template::parse("{{json .}}").map_err(Error::usage)?),
        Some(f) => Some(Template::parse(f).map_err(|e| Error::usage(format!("template parsing error: {e}")))?),
    };
    let r = ctx
        .api
        .request("GET", &format!("/events{}", q.as_str()), Body::Empty, &[])?;
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(r).lines() {
        let Ok(line) = line else { break };
        let Ok(e) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let text = match &tmpl {
            Some(t) => t.execute(&e).map_err(|m| Error::msg(format!("template: {m}")))? + "\n",
            None => pretty_event(&e),
        };
        write_to(&mut out, text.as_bytes())?;
    }
    Ok(())
}

fn pct(part: i64, total: i64) -> String {
    if total > 0 {
        format!("{} ({}%)", human_size(part as f64), part * 100 / total)
    } else {
        human_size(part as f64)
    }
}

pub fn df(ctx: &Ctx, a: DfArgs) -> Result<()> {
    let d: Value = ctx.api.get("/system/df")?;
    let arr = |k: &str| d[k].as_array().cloned().unwrap_or_default();
    let (images, containers, volumes, cache) = (arr("Images"), arr("Containers"), arr("Volumes"), arr("BuildCache"));
    let i64_of = |v: &Value| v.as_i64().unwrap_or(0);
    let img_total = d["LayersSize"]
        .as_i64()
        .unwrap_or_else(|| images.iter().map(|i| i64_of(&i["Size"])).sum());
    let img_used: i64 = images
        .iter()
        .filter(|i| i64_of(&i["Containers"]) > 0)
        .filter(|i| i64_of(&i["SharedSize"]) >= 0)
        .map(|i| i64_of(&i["Size"]) - i64_of(&i["SharedSize"]))
        .sum();
    let c_size: i64 = containers.iter().map(|c| i64_of(&c["SizeRw"])).sum();
    let c_recl: i64 = containers
        .iter()
        .filter(|c| c["State"] != "running")
        .map(|c| i64_of(&c["SizeRw"]))
        .sum();
    let v_size: i64 = volumes.iter().map(|v| i64_of(&v["UsageData"]["Size"]).max(0)).sum();
    let v_recl: i64 = volumes
        .iter()
        .filter(|v| i64_of(&v["UsageData"]["RefCount"]) == 0)
        .map(|v| i64_of(&v["UsageData"]["Size"]).max(0))
        .sum();
    let b_size: i64 = cache.iter().map(|b| i64_of(&b["Size"])).sum();
    let rows = vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(),
               "Active": images.iter().filter(|i| i64_of(&i["Containers"]) > 0).count().to_string(),
               "Size": human_size(img_total as f64), "Reclaimable": pct((img_total - img_used).max(0), img_total)}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(),
               "Active": containers.iter().filter(|c| c["State"] == "running").count().to_string(),
               "Size": human_size(c_size as f64), "Reclaimable": pct(c_recl, c_size)}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(),
               "Active": volumes.iter().filter(|v| i64_of(&v["UsageData"]["RefCount"]) > 0).count().to_string(),
               "Size": human_size(v_size as f64), "Reclaimable": pct(v_recl, v_size)}),
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(),
               "Active": cache.iter().filter(|b| b["InUse"] == true).count().to_string(),
               "Size": human_size(b_size as f64), "Reclaimable": human_size(b_size as f64)}),
    ];
    let headers = json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                         "Reclaimable": "RECLAIMABLE"});
    let fmt = Format::new(
        a.format.as_deref().unwrap_or(""),
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
    )?;
    fmt.print(&headers, &rows)?;
    if a.verbose {
        let mut text = String::from("\nImages space usage:\n\n");
        let img_fmt = Format::new(
            "",
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.Containers}}",
        )?;
        let img_rows: Vec<Value> = images.iter().flat_map(|i| super::image::image_rows(i, true)).collect();
        text.push_str(&img_fmt.render(
            &json!({"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID",
            "CreatedSince": "CREATED", "Size": "SIZE", "Containers": "CONTAINERS"}),
            &img_rows,
        )?);
        text.push_str("\nContainers space usage:\n\n");
        let c_fmt = Format::new("", "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}")?;
        let c_rows: Vec<Value> = containers.iter().map(|c| super::ps::row(c, true)).collect();
        text.push_str(&c_fmt.render(&super::ps::headers(), &c_rows)?);
        print(&text)?;
    }
    Ok(())
}

pub fn prune(ctx: &Ctx, a: SystemPruneArgs) -> Result<()> {
    let images = if a.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    let volumes = if a.volumes {
        "\n  - all anonymous volumes not used by at least one container"
    } else {
        ""
    };
    let warning = format!(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container{volumes}\n  - {images}"
    );
    if !a.force && !confirm(&warning)? {
        return Ok(());
    }
    let mut space = prune_containers(ctx, &a.filter)?;
    let mut q = crate::api::Query::new();
    if !a.filter.is_empty() {
        q.add("filters", crate::api::filters_json(&a.filter)?);
    }
    super::network::prune_networks(ctx, &q)?;
    if a.volumes {
        space += super::volume::prune_volumes(ctx, &q)?;
    }
    space += prune_images(ctx, a.all, &a.filter)?;
    println(&format!("Total reclaimed space: {}", human_size(space as f64)))
}

/// `https://localhost:5000/` → `localhost:5000`; Docker Hub's names → its login key.
fn server_key(s: Option<&str>) -> String {
    let s = s.unwrap_or("").trim();
    if s.is_empty() {
        return HUB_AUTH_KEY.into();
    }
    let host = s
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let host = host.split('/').next().unwrap_or(host);
    if matches!(host, "docker.io" | "index.docker.io" | "registry-1.docker.io") {
        return HUB_AUTH_KEY.into();
    }
    host.to_string()
}

fn prompt(label: &str, echo: bool) -> Result<String> {
    let mut e = std::io::stderr();
    let _ = write!(e, "{label}");
    let _ = e.flush();
    let stdin = std::io::stdin();
    let saved = if !echo && stdin.is_terminal() {
        let t = nix::sys::termios::tcgetattr(&stdin).ok();
        if let Some(t) = &t {
            let mut quiet = t.clone();
            quiet.local_flags.remove(nix::sys::termios::LocalFlags::ECHO);
            let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &quiet);
        }
        t
    } else {
        None
    };
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &t);
        let _ = writeln!(e);
    }
    r.map_err(|err| Error::msg(format!("read {}: {err}", label.trim_end_matches([':', ' ']))))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn login(ctx: &Ctx, a: LoginArgs) -> Result<()> {
    let server = server_key(a.server.as_deref());
    if a.password_stdin && a.password.is_some() {
        return Err(Error::usage("--password and --password-stdin are mutually exclusive"));
    }
    if a.password_stdin && a.username.is_none() {
        return Err(Error::usage("Must provide --username with --password-stdin"));
    }
    let user = match &a.username {
        Some(u) => u.trim().to_string(),
        None => prompt("Username: ", true)?,
    };
    if user.is_empty() {
        return Err(Error::msg("Error: Non-null Username Required"));
    }
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Error::msg(format!("read the password from stdin: {e}")))?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = &a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else {
        prompt("Password: ", false)?
    };
    if password.is_empty() {
        return Err(Error::msg("Error: Password Required"));
    }
    let body = json!({"username": user, "password": password, "serveraddress": server});
    let v: Value = ctx.api.json("POST", "/auth", Some(&body))?;
    let dir = auth::config_dir(ctx.config_dir.as_deref());
    let mut cfg = auth::Config::load(&dir)?;
    match v["IdentityToken"].as_str().filter(|t| !t.is_empty()) {
        Some(t) => cfg.set(&server, "<token>", t)?,
        None => cfg.set(&server, &user, &password)?,
    }
    cfg.save()?;
    println(v["Status"].as_str().unwrap_or("Login Succeeded"))
}

pub fn logout(ctx: &Ctx, a: LogoutArgs) -> Result<()> {
    let server = server_key(a.server.as_deref());
    let dir = auth::config_dir(ctx.config_dir.as_deref());
    let mut cfg = auth::Config::load(&dir)?;
    if !cfg.has(&server) {
        return println(&format!("Not logged in to {server}"));
    }
    println(&format!("Removing login credentials for {server}"))?;
    cfg.remove(&server);
    cfg.save()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_servers() {
        let e = json!({"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"name": "x", "image": "b"}},
                       "timeNano": 1_795_353_201_000_000_001_i64});
        // The time is local, as docker prints it: its shape is checked, not the zone.
        let line = pretty_event(&e);
        assert!(
            line.starts_with("2026-11-2") && line.contains(":21.000000001"),
            "{line}"
        );
        assert!(line.ends_with(" container start abc (image=b, name=x)\n"), "{line}");
        assert_eq!(server_key(None), HUB_AUTH_KEY);
        assert_eq!(server_key(Some("https://localhost:5000/")), "localhost:5000");
        assert_eq!(server_key(Some("docker.io")), HUB_AUTH_KEY);
    }
}
