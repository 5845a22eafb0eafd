//! Container endpoints beyond the lifecycle: top, stats, the archive (`docker cp`),
//! changes, export, commit, update, prune, and `/system/df`.

use std::io::BufWriter;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use berth_engine::engine::{CommitRequest, ListOptions, PathStat, StatsSample, UpdateConfig};
use berth_engine::types::ContainerConfig;

use crate::containers::try_resp;
use crate::http::{self, channel, error, json_resp, ok_json, parse_json, read_body, status, Resp, MAX_JSON_BODY};
use crate::routes::{blocking, Ctx};

const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// Every value of a query key that may repeat (`changes`, `type`); `Ctx::query` keeps the last.
fn all_values(query: Option<&str>, key: &str) -> Vec<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// Docker's booleans that default to true when absent (`stream`, `pause`).
fn bool_or_true(ctx: &Ctx, key: &str) -> bool {
    ctx.query.get(key).is_none_or(|v| v.is_empty() || ctx.query.bool(key))
}

fn stream_response(content_type: &str, body: http::Body) -> Resp {
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", content_type)
        .body(body)
        .expect("valid response")
}

pub async fn top(ctx: &Ctx, id: &str) -> Resp {
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    let args = ctx.query.get("ps_args").unwrap_or("").to_string();
    ok_json(&try_resp!(blocking(move || engine.top(&id, &args)).await))
}

/// `GET /containers/{id}/stats`: one document per second while streaming; otherwise one,
/// made of two readings a second apart (one reading with `one-shot`), as Docker does.
pub async fn stats(ctx: &Ctx, id: &str) -> Resp {
    let engine = ctx.daemon.engine.clone();
    let c = match engine.get(id) {
        Ok(c) => c,
        Err(e) => return http::engine_error(&e),
    };
    let stream = bool_or_true(ctx, "stream");
    let one_shot = ctx.at_least("1.41") && ctx.query.bool("one-shot");
    if stream && one_shot {
        return error(StatusCode::BAD_REQUEST, "cannot have stream=true and one-shot=true");
    }
    let (tx, body) = channel();
    tokio::spawn(async move {
        let mut pre: Option<StatsSample> = None;
        loop {
            let (e, c2, prev) = (engine.clone(), c.clone(), pre.clone());
            let step = tokio::task::spawn_blocking(move || {
                let cur = e.stats_sample(&c2);
                // Without a stream the first reading only primes the CPU deltas.
                let prime = !stream && !one_shot && prev.is_none() && cur.is_some();
                let doc = (!prime).then(|| e.stats_document(&c2, cur.as_ref(), prev.as_ref()));
                (cur, doc)
            })
            .await;
            let Ok((cur, doc)) = step else { return };
            if let Some(doc) = doc {
                let mut line = serde_json::to_vec(&doc).unwrap_or_default();
                line.push(b'\n');
                // A stopped container's (zeroed) document is the last.
                if tx.send(Bytes::from(line)).await.is_err() || !stream || cur.is_none() {
                    return;
                }
            }
            pre = cur;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tx.closed() => return,
            }
        }
    });
    stream_response("application/json", body)
}

fn archive_path(ctx: &Ctx) -> Result<String, Resp> {
    match ctx.query.get("path").filter(|p| !p.is_empty()) {
        Some(p) => Ok(p.to_string()),
        None => Err(error(StatusCode::BAD_REQUEST, "bad parameter: path cannot be empty")),
    }
}

fn stat_header(stat: &PathStat) -> String {
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(stat).unwrap_or_default())
}

/// `HEAD /containers/{id}/archive`: the path's stat in a header.
pub async fn archive_head(ctx: &Ctx, id: &str) -> Resp {
    let path = try_resp!(archive_path(ctx));
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    let stat = try_resp!(blocking(move || engine.archive_stat(&id, &path)).await);
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/x-tar")
        .header(PATH_STAT_HEADER, stat_header(&stat))
        .body(http::empty())
        .expect("valid response")
}

/// `GET /containers/{id}/archive`: the path as a tar stream, its stat in a header.
pub async fn archive_get(ctx: &Ctx, id: &str) -> Resp {
    let path = try_resp!(archive_path(ctx));
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    let (stat_tx, stat_rx) = oneshot::channel();
    let (tx, body) = channel();
    let task = tokio::task::spawn_blocking(move || {
        engine.archive_get(&id, &path, move |stat| {
            let _ = stat_tx.send(stat.clone());
            BufWriter::with_capacity(64 << 10, http::ChanWriter(tx))
        })
    });
    let Ok(stat) = stat_rx.await else {
        // The path was never resolved: the task's error is the answer.
        return match task.await {
            Ok(Err(e)) => http::engine_error(&e),
            Ok(Ok(())) => error(StatusCode::INTERNAL_SERVER_ERROR, "archive ended before it started"),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}")),
        };
    };
    tokio::spawn(async move {
        // Headers are sent: a failure now can only cut the stream short.
        if let Ok(Err(e)) = task.await {
            eprintln!("berthd: archive: {e}");
        }
    });
    let mut resp = stream_response("application/x-tar", body);
    if let Ok(v) = stat_header(&stat).parse() {
        resp.headers_mut().insert(PATH_STAT_HEADER, v);
    }
    resp
}

/// `PUT /containers/{id}/archive`: extract the body (a tar) into the directory `path`.
pub async fn archive_put(ctx: &Ctx, req: Request<Incoming>, id: &str) -> Resp {
    let path = try_resp!(archive_path(ctx));
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    let no_overwrite = ctx.query.bool("noOverwriteDirNonDir");
    let copy_uid_gid = ctx.query.bool("copyUIDGID");
    let input = http::body_reader(req.into_body());
    try_resp!(blocking(move || engine.archive_put(&id, &path, no_overwrite, copy_uid_gid, input)).await);
    status(StatusCode::OK)
}

pub async fn changes(ctx: &Ctx, id: &str) -> Resp {
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    ok_json(&try_resp!(blocking(move || engine.changes(&id)).await))
}

/// `GET /containers/{id}/export`: the container's filesystem as a tar stream.
pub async fn export(ctx: &Ctx, id: &str) -> Resp {
    let engine = ctx.daemon.engine.clone();
    let id = match engine.get(id) {
        Ok(c) => c.id.clone(),
        Err(e) => return http::engine_error(&e),
    };
    let (tx, body) = channel();
    tokio::task::spawn_blocking(move || {
        let out = BufWriter::with_capacity(64 << 10, http::ChanWriter(tx));
        if let Err(e) = engine.export(&id, out) {
            eprintln!("berthd: export: {e}");
        }
    });
    stream_response("application/x-tar", body)
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`, the body an
/// optional `Config`.
pub async fn commit(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let q = &ctx.query;
    let changes = all_values(req.uri().query(), "changes")
        .iter()
        .flat_map(|c| c.lines().map(String::from).collect::<Vec<_>>())
        .collect();
    let bytes = try_resp!(read_body(req.into_body(), MAX_JSON_BODY).await);
    let config: Option<ContainerConfig> = try_resp!(parse_json(&bytes));
    let get = |k: &str| q.get(k).unwrap_or("").to_string();
    let container = get("container");
    let creq = CommitRequest {
        repo: get("repo"),
        tag: get("tag"),
        comment: get("comment"),
        author: get("author"),
        pause: bool_or_true(ctx, "pause"),
        changes,
        config,
    };
    let engine = ctx.daemon.engine.clone();
    let id = try_resp!(blocking(move || engine.commit(&container, creq)).await);
    json_resp(StatusCode::CREATED, &json!({ "Id": id }))
}

pub async fn update(ctx: &Ctx, req: Request<Incoming>, id: &str) -> Resp {
    let bytes = try_resp!(read_body(req.into_body(), MAX_JSON_BODY).await);
    let u: UpdateConfig = try_resp!(parse_json(&bytes));
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    let warnings = try_resp!(blocking(move || engine.update(&id, &u)).await);
    ok_json(&json!({ "Warnings": warnings }))
}

pub async fn prune(ctx: &Ctx) -> Resp {
    let filters = match ListOptions::parse_filters(ctx.query.get("filters").unwrap_or("")) {
        Ok(f) => f,
        Err(e) => return http::engine_error(&e),
    };
    let engine = ctx.daemon.engine.clone();
    let (deleted, reclaimed) = try_resp!(blocking(move || engine.prune_containers(&filters)).await);
    ok_json(&json!({"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}))
}

/// `GET /system/df?type=`: only the kinds asked for are filled (all without `type`).
pub async fn disk_usage(ctx: &Ctx, req: &Request<Incoming>) -> Resp {
    let kinds = all_values(req.uri().query(), "type");
    let sections = [
        ("container", "Containers"),
        ("image", "Images"),
        ("volume", "Volumes"),
        ("build-cache", "BuildCache"),
    ];
    if let Some(bad) = kinds.iter().find(|k| !sections.iter().any(|(s, _)| s == k)) {
        return error(StatusCode::BAD_REQUEST, format!("unknown object type: {bad}"));
    }
    let engine = ctx.daemon.engine.clone();
    let mut doc = try_resp!(blocking(move || engine.disk_usage()).await);
    if !kinds.is_empty() {
        for (kind, field) in sections {
            if !kinds.iter().any(|k| k == kind) {
                doc[field] = Value::Null;
            }
        }
        if !kinds.iter().any(|k| k == "image") {
            doc["LayersSize"] = json!(0);
        }
    }
    ok_json(&doc)
}
