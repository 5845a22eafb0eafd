//! Streaming container endpoints: wait, logs, and attach / exec start as HTTP upgrades
//! (`101 UPGRADED`, then raw or multiplexed stdio both ways).

use std::sync::atomic::Ordering;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use berth_engine::engine::Attached;
use berth_engine::logs::{self, LogFilter};
use berth_engine::monitor::proto::{frame_header, STATUS_STREAM};

use crate::containers::try_resp;
use crate::http::{self, channel, error, parse_json, read_body, Resp, MAX_JSON_BODY};
use crate::routes::{blocking, Ctx};
use crate::system::parse_time;

type OnStatus = Box<dyn FnOnce(Option<i32>) + Send>;

const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
const RAW: &str = "application/vnd.docker.raw-stream";

fn stream_type(ctx: &Ctx, tty: bool) -> &'static str {
    // Before API 1.42 both were announced as raw-stream.
    if tty || !ctx.at_least("1.42") {
        RAW
    } else {
        MULTIPLEXED
    }
}

pub async fn wait(ctx: &Ctx, id: &str) -> Resp {
    let condition = ctx.query.get("condition").unwrap_or("not-running").to_string();
    if !matches!(condition.as_str(), "" | "not-running" | "next-exit" | "removed") {
        return error(StatusCode::BAD_REQUEST, format!("invalid condition: {condition:?}"));
    }
    let c = match ctx.daemon.engine.get(id) {
        Ok(c) => c,
        Err(e) => return http::engine_error(&e),
    };
    let initial = c.exits.load(Ordering::SeqCst);
    let mut rx = c.subscribe();
    let (tx, body) = channel();
    tokio::spawn(async move {
        loop {
            let rec = c.record();
            let done = match condition.as_str() {
                "next-exit" => c.exits.load(Ordering::SeqCst) > initial,
                "removed" => c.removed.load(Ordering::SeqCst),
                _ => !rec.state.running && !rec.state.restarting,
            };
            if done {
                let err = if rec.state.error.is_empty() {
                    serde_json::Value::Null
                } else {
                    json!({"Message": rec.state.error})
                };
                let mut b =
                    serde_json::to_vec(&json!({"StatusCode": rec.state.exit_code, "Error": err})).unwrap_or_default();
                b.push(b'\n');
                let _ = tx.send(Bytes::from(b)).await;
                return;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
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

fn frame(stream: u8, payload: &[u8], raw: bool) -> Bytes {
    if raw {
        return Bytes::copy_from_slice(payload);
    }
    let mut v = frame_header(stream, payload.len()).to_vec();
    v.extend_from_slice(payload);
    Bytes::from(v)
}

pub async fn logs(ctx: &Ctx, id: &str) -> Resp {
    let engine = ctx.daemon.engine.clone();
    let c = match engine.get(id) {
        Ok(c) => c,
        Err(e) => return http::engine_error(&e),
    };
    let q = &ctx.query;
    let rec = c.record();
    let filter = LogFilter {
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        since: q
            .get("since")
            .filter(|s| !s.is_empty() && *s != "0")
            .and_then(parse_time),
        until: q
            .get("until")
            .filter(|s| !s.is_empty() && *s != "0")
            .and_then(parse_time),
        tail: q.get("tail").and_then(|t| t.parse::<usize>().ok()),
    };
    if !filter.stdout && !filter.stderr {
        return error(
            StatusCode::BAD_REQUEST,
            "Bad parameters: you must choose at least one stream",
        );
    }
    let target = engine.log_target(&rec);
    let Some(opts) = target.options() else {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            "configured logging driver does not support reading",
        );
    };
    let follow = q.bool("follow");
    let timestamps = q.bool("timestamps");
    let raw = rec.config.tty;
    let path = target.path;
    let f2 = filter.clone();
    let read = tokio::task::spawn_blocking(move || logs::read(&path, &opts, &f2)).await;
    let (entries, mut follower) = match read {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("read log of {}: {e}", rec.id),
            )
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let render = move |e: &logs::Entry| {
        let mut payload = Vec::new();
        if timestamps {
            payload.extend_from_slice(e.time.as_bytes());
            payload.push(b' ');
        }
        payload.extend_from_slice(e.log.as_bytes());
        frame(e.stream().frame_id(), &payload, raw)
    };
    let (tx, body) = channel();
    tokio::spawn(async move {
        for e in &entries {
            if tx.send(render(e)).await.is_err() {
                return;
            }
        }
        if !follow {
            return;
        }
        let mut rx = c.subscribe();
        loop {
            // Following ends when the container stops, or at `until` (a time in the past
            // of the record stream).
            let past_until = filter.until.is_some_and(|u| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                (now.as_secs() as i64, now.subsec_nanos()) >= u
            });
            let stopped = !c.record().state.running || c.removed.load(Ordering::SeqCst) || past_until;
            let new = follower.poll().unwrap_or_default();
            for e in new.iter().filter(|e| filter.accepts(e)) {
                if tx.send(render(e)).await.is_err() {
                    return;
                }
            }
            if stopped {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                _ = rx.changed() => {}
                _ = tx.closed() => return,
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", stream_type(ctx, raw))
        .body(body)
        .expect("valid response")
}

fn wants_upgrade<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(hyper::header::UPGRADE)
        .is_some_and(|v| v.to_str().unwrap_or("").eq_ignore_ascii_case("tcp"))
}

fn upgrade_response(content_type: &str) -> Resp {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("Content-Type", content_type)
        .header("Connection", "Upgrade")
        .header("Upgrade", "tcp")
        .body(http::empty())
        .expect("valid response")
}

/// Docker's detach keys (`ctrl-p,ctrl-q` by default) as bytes.
fn detach_keys(spec: &str) -> Option<Vec<u8>> {
    let spec = if spec.is_empty() { "ctrl-p,ctrl-q" } else { spec };
    spec.split(',')
        .map(|k| {
            let k = k.trim();
            if let Some(c) = k.strip_prefix("ctrl-") {
                let b = c.bytes().next()?;
                match b {
                    b'a'..=b'z' => Some(b - b'a' + 1),
                    b'@' => Some(0),
                    b'[' => Some(27),
                    b'\\' => Some(28),
                    b']' => Some(29),
                    b'^' => Some(30),
                    b'_' => Some(31),
                    _ => None,
                }
            } else if k.len() == 1 {
                Some(k.as_bytes()[0])
            } else {
                None
            }
        })
        .collect()
}

/// Copy the monitor's frames to the client (raw or multiplexed) and the client's bytes to
/// the monitor, until the monitor's final status frame. Returns the exit code it carried.
/// `on_status` runs before the client's stream closes, so what the client asks next
/// (an exec's exit code) is already recorded.
async fn relay<C>(
    client: C,
    mon: std::os::unix::net::UnixStream,
    raw: bool,
    keys: Option<Vec<u8>>,
    on_status: Option<OnStatus>,
) -> Option<i32>
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    if mon.set_nonblocking(true).is_err() {
        return None;
    }
    let Ok(mon) = tokio::net::UnixStream::from_std(mon) else {
        return None;
    };
    let (mut mr, mut mw) = mon.into_split();
    let (mut cr, mut cw) = tokio::io::split(client);
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        let mut matched = 0usize;
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(k) = keys.as_ref().filter(|k| !k.is_empty()) {
                for &b in &buf[..n] {
                    if b == k[matched] {
                        matched += 1;
                        if matched == k.len() {
                            // Detach: stop relaying without touching the process.
                            return true;
                        }
                    } else {
                        matched = usize::from(b == k[0]);
                    }
                }
            }
            if mw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = mw.shutdown().await;
        false
    });
    let output = async {
        let mut hdr = [0u8; 8];
        let mut code = None;
        while mr.read_exact(&mut hdr).await.is_ok() {
            let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
            let mut body = vec![0u8; len];
            if mr.read_exact(&mut body).await.is_err() {
                break;
            }
            if hdr[0] == STATUS_STREAM {
                code = berth_engine::engine::exec_status_code(&body);
                break;
            }
            if cw.write_all(&frame(hdr[0], &body, raw)).await.is_err() {
                break;
            }
        }
        let _ = cw.flush().await;
        if let Some(f) = on_status {
            let _ = tokio::task::spawn_blocking(move || f(code)).await;
        }
        let _ = cw.shutdown().await;
        code
    };
    tokio::pin!(output);
    let mut input = input;
    tokio::select! {
        code = &mut output => { input.abort(); code }
        detached = &mut input => {
            if matches!(detached, Ok(true)) {
                None
            } else {
                output.await
            }
        }
    }
}

pub async fn attach(ctx: &Ctx, mut req: Request<Incoming>, id: &str) -> Resp {
    let q = &ctx.query;
    let engine = ctx.daemon.engine.clone();
    let rec = match engine.get(id) {
        Ok(c) => c.record(),
        Err(e) => return http::engine_error(&e),
    };
    let (stdin, stdout, stderr) = (q.bool("stdin"), q.bool("stdout"), q.bool("stderr"));
    let keys = detach_keys(q.get("detachKeys").unwrap_or(""));
    let id = rec.id.clone();
    let attached = try_resp!(blocking(move || engine.attach(&id, stdin, stdout, stderr)).await);
    let raw = rec.config.tty;
    let content_type = stream_type(ctx, raw);
    let keys = if stdin { keys } else { None };
    if !wants_upgrade(&req) {
        // No upgrade asked: output only, as a plain streamed body.
        let (tx, body) = channel();
        tokio::spawn(async move {
            let Some(mon) = resolve(attached).await else { return };
            let (client, mut rd) = tokio::io::duplex(64 * 1024);
            tokio::spawn(relay(client, mon, raw, None, None));
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0 || tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                    break;
                }
            }
        });
        return Response::builder()
            .status(StatusCode::OK)
            .header("Content-Type", content_type)
            .body(body)
            .expect("valid response");
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(up) = on_upgrade.await else { return };
        let Some(mon) = resolve(attached).await else { return };
        relay(TokioIo::new(up), mon, raw, keys, None).await;
    });
    upgrade_response(content_type)
}

async fn resolve(a: Attached) -> Option<std::os::unix::net::UnixStream> {
    match a {
        Attached::Now(s) => Some(s),
        Attached::Later(rx) => rx.await.ok()?.ok(),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ExecStart {
    #[serde(default)]
    detach: bool,
    #[serde(default)]
    tty: Option<bool>,
    #[serde(default)]
    console_size: Option<[u16; 2]>,
}

pub async fn exec_start(ctx: &Ctx, mut req: Request<Incoming>, id: &str) -> Resp {
    let upgrade = wants_upgrade(&req);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let bytes = try_resp!(read_body(req.into_body(), MAX_JSON_BODY).await);
    let body: ExecStart = try_resp!(parse_json(&bytes));
    let engine = ctx.daemon.engine.clone();
    let inspect = {
        let (e, id) = (engine.clone(), id.to_string());
        try_resp!(blocking(move || e.exec_inspect(&id)).await)
    };
    let tty = body
        .tty
        .unwrap_or(inspect["ProcessConfig"]["tty"].as_bool().unwrap_or(false));
    let keys = detach_keys(inspect["DetachKeys"].as_str().unwrap_or(""));
    let stdin = inspect["OpenStdin"].as_bool().unwrap_or(false);
    let detach = body.detach;
    let content_type = stream_type(ctx, tty);
    let id = id.to_string();
    let keys = if stdin { keys } else { None };
    let start = {
        let (e, id) = (engine.clone(), id.clone());
        move || e.exec_start(&id, detach, Some(tty), body.console_size)
    };
    if upgrade && !detach {
        // As Docker: the 101 goes out before the process starts, so no output can arrive
        // in the same read as the headers (clients switch to the raw socket after them);
        // a failure to start goes down the stream.
        tokio::spawn(async move {
            let Ok(up) = on_upgrade.await else { return };
            let mut io = TokioIo::new(up);
            match tokio::task::spawn_blocking(start).await {
                Ok(Ok(Some(stream))) => {
                    let done: OnStatus = Box::new(move |code| engine.exec_finished(&id, code));
                    relay(io, stream, tty, keys, Some(done)).await;
                }
                Ok(Err(err)) => {
                    let _ = io.write_all(&frame(1, format!("{err}\r\n").as_bytes(), tty)).await;
                    let _ = io.shutdown().await;
                }
                _ => {
                    let _ = io.shutdown().await;
                }
            }
        });
        return upgrade_response(content_type);
    }
    let stream = match tokio::task::spawn_blocking(start).await {
        Ok(Ok(Some(s))) => s,
        Ok(Ok(None)) => return http::status(StatusCode::OK),
        Ok(Err(err)) => return http::engine_error(&err),
        Err(err) => return error(StatusCode::INTERNAL_SERVER_ERROR, err),
    };
    let (tx, body) = channel();
    tokio::spawn(async move {
        let (client, mut rd) = tokio::io::duplex(64 * 1024);
        let done: OnStatus = Box::new(move |code| engine.exec_finished(&id, code));
        tokio::spawn(relay(client, stream, tty, None, Some(done)));
        let mut buf = vec![0u8; 32 * 1024];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 || tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                break;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", content_type)
        .body(body)
        .expect("valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_key_specs() {
        assert_eq!(detach_keys(""), Some(vec![16, 17]));
        assert_eq!(detach_keys("ctrl-a,x"), Some(vec![1, b'x']));
        assert_eq!(detach_keys("ctrl-é"), None);
    }
}
