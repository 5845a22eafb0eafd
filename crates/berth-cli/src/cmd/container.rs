//! `run`, `create`, `start` and `attach`: containers made and joined, as the docker CLI
//! does it (create, attach + wait before start, then stream until the exit).

use std::io::{IsTerminal, Read};

use serde_json::Value;

use super::image::pull_image;
use super::Ctx;
use crate::api::{Api, Query};
use crate::cli::{AttachArgs, CreateArgs, RunArgs, StartArgs};
use crate::error::{Error, Result};
use crate::format::println;
use crate::http::Conn;
use crate::opts::{ContainerOpts, Mode};
use crate::reference::Ref;
use crate::stdio::{self, check_tty, detach_keys, Ended, RawTerminal, Relay, SignalTarget};

/// Create the container (pulling the image first if it is missing); its ID.
fn create_container(ctx: &Ctx, o: &ContainerOpts, image: &str, cmd: &[String], mode: &Mode) -> Result<(String, Value)> {
    if image.starts_with('-') {
        return Err(Error::usage(format!("unknown flag: {image}")));
    }
    let body = o.body(image, cmd, mode)?;
    if !matches!(o.pull.as_str(), "missing" | "always" | "never") {
        return Err(Error::usage(format!(
            "invalid pull option: '{}': must be one of \"always\", \"missing\" or \"never\"",
            o.pull
        )));
    }
    let cidfile = o.cidfile.as_deref().filter(|c| !c.is_empty());
    if let Some(f) = cidfile {
        if std::path::Path::new(f).exists() {
            return Err(Error::msg(format!(
                "container ID file found, make sure the other container isn't running or delete {f}"
            )));
        }
    }
    let mut q = Query::new();
    q.opt("name", o.name.as_deref().unwrap_or(""));
    q.opt("platform", o.platform.as_deref().unwrap_or(""));
    let path = format!("/containers/create{}", q.as_str());
    let platform = o.platform.as_deref().unwrap_or("");
    if o.pull == "always" {
        pull_image(ctx, &Ref::parse(image)?, platform, true, o.quiet)?;
    }
    let created: Value = match ctx.api.json("POST", &path, Some(&body)) {
        Err(e) if e.is_not_found() && o.pull != "never" && e.daemon_message().is_some_and(|m| m.contains("image")) => {
            let r = Ref::parse(image)?;
            eprintln!("Unable to find image '{}' locally", r.familiar());
            pull_image(ctx, &r, platform, true, o.quiet)?;
            ctx.api.json("POST", &path, Some(&body))?
        }
        r => r?,
    };
    let id = created["Id"]
        .as_str()
        .ok_or_else(|| Error::msg(format!("create of a container from {image}: the daemon sent no ID")))?
        .to_string();
    for w in created["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str().filter(|w| !w.is_empty()) {
            eprintln!("WARNING: {w}");
        }
    }
    if let Some(f) = cidfile {
        std::fs::write(f, &id).map_err(|e| Error::msg(format!("write the container ID to {f}: {e}")))?;
    }
    Ok((id, body))
}

pub fn create(ctx: &Ctx, a: CreateArgs) -> Result<()> {
    let (image, cmd) = a
        .image_and_cmd
        .split_first()
        .ok_or_else(|| Error::usage("requires at least 1 argument"))?;
    let console = if a.opts.tty { stdio::terminal_size() } else { None };
    let mode = Mode { detach: false, console };
    let (id, _) = create_container(ctx, &a.opts, image, cmd, &mode)?;
    println(&id)
}

/// docker's mapping of a failed start to an exit code: 127 when the command was not
/// found, 126 when it could not be invoked, 125 otherwise.
fn start_error_code(e: &Error) -> i32 {
    let m = e.to_string();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied") || m.contains("is a directory") {
        126
    } else {
        125
    }
}

/// The `StatusCode` of a wait answer (`Error` in it is a daemon-side failure).
fn wait_status(mut r: crate::http::Response, id: &str) -> Result<i32> {
    let mut body = Vec::new();
    r.read_to_end(&mut body)
        .map_err(|e| Error::msg(format!("wait for container {id}: {e}")))?;
    let v: Value = serde_json::from_slice(&body).map_err(|_| {
        Error::msg(format!(
            "wait for container {id}: the daemon closed the connection without an exit status"
        ))
    })?;
    if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        eprintln!("Error waiting for container: {m}");
        return Ok(125);
    }
    Ok(v["StatusCode"].as_i64().unwrap_or(125) as i32)
}

/// Streams of an attach query.
fn attach_path(id: &str, stdin: bool, stdout: bool, stderr: bool, keys: Option<&str>) -> String {
    let mut q = Query::new();
    if let Some(k) = keys.filter(|k| !k.is_empty()) {
        q.add("detachKeys", k);
    }
    q.flag("stderr", stderr)
        .flag("stdin", stdin)
        .flag("stdout", stdout)
        .add("stream", "1");
    format!("/containers/{id}/attach{}", q.as_str())
}

pub fn run(ctx: &Ctx, a: RunArgs) -> Result<()> {
    let (image, cmd) = a
        .image_and_cmd
        .split_first()
        .ok_or_else(|| Error::usage("requires at least 1 argument"))?;
    let o = &a.opts;
    let api = &ctx.api;
    let keys = detach_keys(a.detach_keys.as_deref().unwrap_or(""))?;
    let console = if o.tty && !a.detach {
        stdio::terminal_size()
    } else {
        None
    };
    let mode = Mode {
        detach: a.detach,
        console,
    };
    if !a.detach {
        let stdin_attached = if o.attach.is_empty() {
            o.interactive
        } else {
            o.attach.iter().any(|s| s.eq_ignore_ascii_case("stdin"))
        };
        check_tty(stdin_attached, o.tty)?;
    }
    let (id, body) = create_container(ctx, o, image, cmd, &mode)?;
    if a.detach {
        if let Err(e) = api.call("POST", &format!("/containers/{id}/start"), None) {
            eprintln!("berth: {e}");
            return Err(Error::Exit(start_error_code(&e)));
        }
        return println(&id);
    }
    let (a_in, a_out, a_err) = (
        body["AttachStdin"] == true,
        body["AttachStdout"] == true,
        body["AttachStderr"] == true,
    );
    // Attach and wait go out together, each on its own connection; both are registered
    // with the daemon once their answers' heads are back, so no output or exit is missed.
    let attach = if a_in || a_out || a_err {
        let path = attach_path(&id, a_in, a_out, a_err, a.detach_keys.as_deref());
        Some(api.send("POST", &path, None, true)?)
    } else {
        None
    };
    let condition = if o.rm { "removed" } else { "next-exit" };
    let wait = api.send(
        "POST",
        &format!("/containers/{id}/wait?condition={condition}"),
        None,
        false,
    )?;
    let streams = match attach {
        Some(c) => Some(api.finish_upgrade(c, &format!("attach to container {id}"))?),
        None => None,
    };
    let wait = api.answer(wait, &format!("wait for container {id}"))?;
    let resize_path = format!("/containers/{id}/resize");
    stdio::handle_signals(
        api,
        SignalTarget {
            resize: o.tty.then(|| resize_path.clone()),
            proxy_to: (a.sig_proxy && !o.tty).then(|| id.clone()),
        },
    )?;
    let raw = if o.tty && a_in { RawTerminal::enter()? } else { None };
    if let Err(e) = api.call("POST", &format!("/containers/{id}/start"), None) {
        drop(raw);
        eprintln!("berth: {e}");
        return Err(Error::Exit(start_error_code(&e)));
    }
    if o.tty && std::io::stdout().is_terminal() {
        stdio::resize(api, &resize_path);
    }
    if let Some((out, sock)) = streams {
        let ended = stdio::relay(
            out,
            sock,
            &Relay {
                stdin: a_in,
                tty: o.tty,
                keys,
            },
        );
        drop(raw);
        if ended? == Ended::Detached {
            return Ok(());
        }
    }
    match wait_status(wait, &id)? {
        0 => Ok(()),
        c => Err(Error::Exit(c)),
    }
}

/// Inspect a container for attaching: (ID, tty, open stdin, running, paused).
fn attach_info(api: &Api, name: &str) -> Result<(String, bool, bool, bool, bool)> {
    let c: Value = api.get(&format!("/containers/{}/json", crate::api::query_escape(name)))?;
    Ok((
        c["Id"].as_str().unwrap_or(name).to_string(),
        c["Config"]["Tty"] == true,
        c["Config"]["OpenStdin"] == true,
        c["State"]["Running"] == true,
        c["State"]["Paused"] == true,
    ))
}

struct Session {
    id: String,
    tty: bool,
    stdin: bool,
    keys: Vec<u8>,
    sig_proxy: bool,
}

/// Relay an attached session until it ends; the exit code read from `wait`.
fn hold(
    api: &Api,
    s: Session,
    streams: (Box<dyn Read + Send>, crate::http::Stream),
    wait: Conn,
    start: bool,
) -> Result<()> {
    let resize_path = format!("/containers/{}/resize", s.id);
    stdio::handle_signals(
        api,
        SignalTarget {
            resize: s.tty.then(|| resize_path.clone()),
            proxy_to: (s.sig_proxy && !s.tty).then(|| s.id.clone()),
        },
    )?;
    let raw = if s.tty && s.stdin { RawTerminal::enter()? } else { None };
    let wait = api.answer(wait, &format!("wait for container {}", s.id))?;
    if start {
        if let Err(e) = api.call("POST", &format!("/containers/{}/start", s.id), None) {
            drop(raw);
            return Err(e);
        }
    }
    if s.tty && std::io::stdout().is_terminal() {
        stdio::resize(api, &resize_path);
    }
    let ended = stdio::relay(
        streams.0,
        streams.1,
        &Relay {
            stdin: s.stdin,
            tty: s.tty,
            keys: s.keys,
        },
    );
    drop(raw);
    if ended? == Ended::Detached {
        return Err(Error::msg("read escape sequence"));
    }
    match wait_status(wait, &s.id)? {
        0 => Ok(()),
        c => Err(Error::Exit(c)),
    }
}

pub fn start(ctx: &Ctx, a: StartArgs) -> Result<()> {
    let api = &ctx.api;
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(Error::usage("you cannot start and attach multiple containers at once"));
        }
        let (id, tty, open_stdin, running, _) = attach_info(api, &a.containers[0])?;
        if running {
            return Err(Error::msg(format!("container {} is already running", a.containers[0])));
        }
        let stdin = a.interactive && open_stdin;
        check_tty(stdin, tty)?;
        let keys = detach_keys(a.detach_keys.as_deref().unwrap_or(""))?;
        let path = attach_path(&id, stdin, true, true, a.detach_keys.as_deref());
        let attach = api.send("POST", &path, None, true)?;
        let wait = api.send(
            "POST",
            &format!("/containers/{id}/wait?condition=next-exit"),
            None,
            false,
        )?;
        let streams = api.finish_upgrade(attach, &format!("attach to container {id}"))?;
        let s = Session {
            id,
            tty,
            stdin,
            keys,
            sig_proxy: true,
        };
        return hold(api, s, streams, wait, true);
    }
    let mut failed = Vec::new();
    for c in &a.containers {
        match api.call(
            "POST",
            &format!("/containers/{}/start", crate::api::query_escape(c)),
            None,
        ) {
            Ok(()) => println(c)?,
            Err(e) => {
                eprintln!("{e}");
                failed.push(c.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "Error: failed to start containers: {}",
            failed.join(", ")
        )))
    }
}

pub fn attach(ctx: &Ctx, a: AttachArgs) -> Result<()> {
    let api = &ctx.api;
    let (id, tty, open_stdin, running, paused) = attach_info(api, &a.container)?;
    if !running {
        return Err(Error::msg("You cannot attach to a stopped container, start it first"));
    }
    if paused {
        return Err(Error::msg("You cannot attach to a paused container, unpause it first"));
    }
    let stdin = open_stdin && !a.no_stdin;
    check_tty(stdin, tty)?;
    let keys = detach_keys(a.detach_keys.as_deref().unwrap_or(""))?;
    let path = attach_path(&id, stdin, true, true, a.detach_keys.as_deref());
    let streams = api.upgrade("POST", &path, None, &format!("attach to container {id}"))?;
    // Sent now, while the container runs: answered with its exit status when it stops.
    let wait = api.send("POST", &format!("/containers/{id}/wait"), None, false)?;
    let s = Session {
        id,
        tty,
        stdin,
        keys,
        sig_proxy: a.sig_proxy,
    };
    hold(api, s, streams, wait, false)
}
