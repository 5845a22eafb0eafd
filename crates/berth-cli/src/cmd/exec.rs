//! `exec` and `logs`.

use std::io::IsTerminal;

use serde_json::{json, Value};

use super::Ctx;
use crate::api::{query_escape, Query};
use crate::cli::{ExecArgs, LogsArgs};
use crate::error::{Error, Result};
use crate::format::api_timestamp;
use crate::stdio::{self, check_tty, detach_keys, Ended, RawTerminal, Relay, SignalTarget};
use crate::units::read_kv_file;

pub fn exec(ctx: &Ctx, a: ExecArgs) -> Result<()> {
    let api = &ctx.api;
    let (container, cmd) = a
        .container_and_cmd
        .split_first()
        .ok_or_else(|| Error::usage("requires at least 2 arguments"))?;
    let keys = detach_keys(a.detach_keys.as_deref().unwrap_or(""))?;
    if !a.detach {
        check_tty(a.interactive, a.tty)?;
    }
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(read_kv_file(f, true)?);
    }
    for e in &a.env {
        env.push(match e.split_once('=') {
            Some(_) => e.clone(),
            None => std::env::var(e)
                .map(|v| format!("{e}={v}"))
                .unwrap_or_else(|_| e.clone()),
        });
    }
    let console = if a.tty { stdio::terminal_size() } else { None };
    let attach = !a.detach;
    let mut body = json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": attach && a.interactive,
        "AttachStderr": attach,
        "AttachStdout": attach,
        "Detach": a.detach,
        "DetachKeys": a.detach_keys.clone().unwrap_or_default(),
        "Env": if env.is_empty() { Value::Null } else { json!(env) },
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": cmd,
    });
    if let Some((h, w)) = console {
        body["ConsoleSize"] = json!([h, w]);
    }
    let created: Value = api.json(
        "POST",
        &format!("/containers/{}/exec", query_escape(container)),
        Some(&body),
    )?;
    let eid = created["Id"]
        .as_str()
        .ok_or_else(|| Error::msg(format!("exec in container {container}: the daemon sent no exec ID")))?
        .to_string();
    let mut start = json!({"Detach": a.detach, "Tty": a.tty});
    if let Some((h, w)) = console {
        start["ConsoleSize"] = json!([h, w]);
    }
    if a.detach {
        return api.call("POST", &format!("/exec/{eid}/start"), Some(&start));
    }
    let resize_path = format!("/exec/{eid}/resize");
    stdio::handle_signals(
        api,
        SignalTarget {
            resize: a.tty.then(|| resize_path.clone()),
            proxy_to: None,
        },
    )?;
    let (out, sock) = api.upgrade(
        "POST",
        &format!("/exec/{eid}/start"),
        Some(&start),
        &format!("start exec {eid} in container {container}"),
    )?;
    let raw = if a.tty && a.interactive {
        RawTerminal::enter()?
    } else {
        None
    };
    if a.tty && std::io::stdout().is_terminal() {
        stdio::resize(api, &resize_path);
    }
    let ended = stdio::relay(
        out,
        sock,
        &Relay {
            stdin: a.interactive,
            tty: a.tty,
            keys,
        },
    );
    drop(raw);
    if ended? == Ended::Detached {
        return Ok(());
    }
    let info: Value = api.get(&format!("/exec/{eid}/json"))?;
    match info["ExitCode"].as_i64().unwrap_or(0) as i32 {
        0 => Ok(()),
        c => Err(Error::Exit(c)),
    }
}

pub fn logs(ctx: &Ctx, a: LogsArgs) -> Result<()> {
    let api = &ctx.api;
    let c: Value = api.get(&format!("/containers/{}/json", query_escape(&a.container)))?;
    let id = c["Id"].as_str().unwrap_or(&a.container).to_string();
    let tty = c["Config"]["Tty"] == true;
    let mut q = Query::new();
    q.flag("details", a.details).flag("follow", a.follow);
    if let Some(s) = &a.since {
        q.opt("since", &api_timestamp(s)?);
    }
    q.add("stderr", "1").add("stdout", "1");
    if a.tail != "all" && !a.tail.is_empty() {
        q.add("tail", &a.tail);
    }
    q.flag("timestamps", a.timestamps);
    if let Some(u) = &a.until {
        q.opt("until", &api_timestamp(u)?);
    }
    let mut r = api.request(
        "GET",
        &format!("/containers/{id}/logs{}", q.as_str()),
        crate::http::Body::Empty,
        &[],
    )?;
    stdio::demux_to(&mut r, tty)
}
