//! Commands that act on containers one after another: stop, restart, kill, rm, wait,
//! rename, pause, unpause, update, and container prune.

use std::io::{BufRead, Write};

use serde_json::{json, Map, Value};

use super::Ctx;
use crate::api::{filters_json, query_escape, Query};
use crate::cli::{KillArgs, Names, PruneArgs, RenameArgs, RmArgs, StopArgs, UpdateArgs};
use crate::error::{Error, Result};
use crate::format::{human_size, println};
use crate::opts::parse_restart;
use crate::units::{cpus_to_nano, parse_bytes};

/// Run `f` on each name, printing the name on success and the error otherwise; docker's
/// exit status 1 when any failed.
fn each(names: &[String], mut f: impl FnMut(&str) -> Result<Option<String>>) -> Result<()> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(Some(out)) => println(&out)?,
            Ok(None) => {}
            Err(Error::Exit(c)) => return Err(Error::Exit(c)),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(Error::Exit(1))
    } else {
        Ok(())
    }
}

pub fn stop(ctx: &Ctx, a: StopArgs, restart: bool) -> Result<()> {
    let verb = if restart { "restart" } else { "stop" };
    each(&a.containers, |c| {
        let mut q = Query::new();
        if let Some(s) = &a.signal {
            q.add("signal", s);
        }
        if let Some(t) = a.timeout {
            q.add("t", t.to_string());
        }
        ctx.api.call(
            "POST",
            &format!("/containers/{}/{verb}{}", query_escape(c), q.as_str()),
            None,
        )?;
        Ok(Some(c.to_string()))
    })
}

pub fn kill(ctx: &Ctx, a: KillArgs) -> Result<()> {
    each(&a.containers, |c| {
        let mut q = Query::new();
        if let Some(s) = &a.signal {
            q.add("signal", s);
        }
        ctx.api.call(
            "POST",
            &format!("/containers/{}/kill{}", query_escape(c), q.as_str()),
            None,
        )?;
        Ok(Some(c.to_string()))
    })
}

pub fn rm(ctx: &Ctx, a: RmArgs) -> Result<()> {
    each(&a.containers, |c| {
        let mut q = Query::new();
        q.flag("force", a.force).flag("link", a.link).flag("v", a.volumes);
        let c = c.trim_start_matches('/');
        ctx.api.call(
            "DELETE",
            &format!("/containers/{}{}", query_escape(c), q.as_str()),
            None,
        )?;
        Ok(Some(c.to_string()))
    })
}

pub fn wait(ctx: &Ctx, a: Names) -> Result<()> {
    each(&a.containers, |c| {
        let v: Value = ctx
            .api
            .json("POST", &format!("/containers/{}/wait", query_escape(c)), None)?;
        if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
            return Err(Error::msg(format!("wait for container {c}: {m}")));
        }
        Ok(Some(v["StatusCode"].as_i64().unwrap_or(-1).to_string()))
    })
}

pub fn rename(ctx: &Ctx, a: RenameArgs) -> Result<()> {
    let new = a.new_name.trim();
    if new.is_empty() {
        return Err(Error::usage("Error: neither old nor new names may be empty"));
    }
    let path = format!(
        "/containers/{}/rename?name={}",
        query_escape(&a.container),
        query_escape(new)
    );
    ctx.api.call("POST", &path, None).map_err(|e| {
        eprintln!("{e}");
        Error::msg(format!("Error: failed to rename container named {}", a.container))
    })
}

pub fn pause(ctx: &Ctx, a: Names, pause: bool) -> Result<()> {
    let verb = if pause { "pause" } else { "unpause" };
    each(&a.containers, |c| {
        ctx.api
            .call("POST", &format!("/containers/{}/{verb}", query_escape(c)), None)?;
        Ok(Some(c.to_string()))
    })
}

pub fn update(ctx: &Ctx, a: UpdateArgs) -> Result<()> {
    let bad = |flag: &str, v: &str, e: String| Error::usage(format!("invalid argument {v:?} for \"{flag}\" flag: {e}"));
    let mut body = Map::new();
    let mut set = |k: &str, v: Value| {
        body.insert(k.to_string(), v);
    };
    if let Some(v) = a.blkio_weight {
        set("BlkioWeight", json!(v));
    }
    if let Some(v) = a.cpu_period {
        set("CpuPeriod", json!(v));
    }
    if let Some(v) = a.cpu_quota {
        set("CpuQuota", json!(v));
    }
    if let Some(v) = a.cpu_shares {
        set("CpuShares", json!(v));
    }
    if let Some(v) = &a.cpus {
        set("NanoCpus", json!(cpus_to_nano(v).map_err(|e| bad("--cpus", v, e))?));
    }
    if let Some(v) = &a.cpuset_cpus {
        set("CpusetCpus", json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        set("CpusetMems", json!(v));
    }
    for (key, flag, v) in [
        ("Memory", "--memory", &a.memory),
        ("MemoryReservation", "--memory-reservation", &a.memory_reservation),
        ("MemorySwap", "--memory-swap", &a.memory_swap),
    ] {
        if let Some(v) = v {
            let n = if v == "-1" {
                -1
            } else {
                parse_bytes(v).map_err(|e| bad(flag, v, e))?
            };
            set(key, json!(n));
        }
    }
    if let Some(v) = a.pids_limit {
        set("PidsLimit", json!(v));
    }
    if let Some(r) = &a.restart {
        set("RestartPolicy", parse_restart(r)?);
    }
    if body.is_empty() {
        return Err(Error::usage(
            "you must provide one or more flags when using this command",
        ));
    }
    let body = Value::Object(body);
    let mut warnings = Vec::new();
    let r = each(&a.containers, |c| {
        let v: Value = ctx
            .api
            .json("POST", &format!("/containers/{}/update", query_escape(c)), Some(&body))?;
        warnings.extend(
            v["Warnings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|w| w.as_str().map(String::from)),
        );
        Ok(Some(c.to_string()))
    });
    for w in warnings {
        eprintln!("WARNING: {w}");
    }
    r
}

/// docker's `[y/N]` prompt on stderr; the answer is a line of stdin (none means no).
pub fn confirm(warning: &str) -> Result<bool> {
    let mut e = std::io::stderr();
    let _ = write!(e, "{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = e.flush();
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::msg(format!("read the answer to the prompt: {e}")))?;
    Ok(n > 0 && matches!(line.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// Prune containers; the space reclaimed.
pub fn prune_containers(ctx: &Ctx, filters: &[String]) -> Result<u64> {
    let mut q = Query::new();
    if !filters.is_empty() {
        q.add("filters", filters_json(filters)?);
    }
    super::prune_and_list(ctx, "/containers/prune", &q, "ContainersDeleted", "Containers")
}

pub fn prune(ctx: &Ctx, a: PruneArgs) -> Result<()> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(());
    }
    let space = prune_containers(ctx, &a.filter)?;
    println(&format!("Total reclaimed space: {}", human_size(space as f64)))
}
