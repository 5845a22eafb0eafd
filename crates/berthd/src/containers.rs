//! Container endpoints that answer with one document (streams are in `streams`).

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;

use berth_engine::engine::{ExecConfig, ListOptions};
use berth_engine::types::CreateBody;

use crate::http::{self, error, json_resp, ok_json, parse_json, read_body, status, Resp, MAX_JSON_BODY};
use crate::routes::{blocking, Ctx};

macro_rules! try_resp {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}
pub(crate) use try_resp;

pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let bytes = try_resp!(read_body(req.into_body(), MAX_JSON_BODY).await);
    let body: CreateBody = try_resp!(parse_json(&bytes));
    let name = ctx.query.get("name").map(String::from);
    let engine = ctx.daemon.engine.clone();
    let (id, warnings) = try_resp!(blocking(move || engine.create(name.as_deref(), body)).await);
    json_resp(StatusCode::CREATED, &json!({"Id": id, "Warnings": warnings}))
}

pub async fn list(ctx: &Ctx) -> Resp {
    let q = &ctx.query;
    let filters = match ListOptions::parse_filters(q.get("filters").unwrap_or("")) {
        Ok(f) => f,
        Err(e) => return http::engine_error(&e),
    };
    let limit = try_resp!(q.int("limit")).filter(|l| *l > 0).map(|l| l as usize);
    let opts = ListOptions {
        all: q.bool("all"),
        limit,
        latest: q.bool("latest"),
        filters,
    };
    let engine = ctx.daemon.engine.clone();
    let with_size = q.bool("size");
    ok_json(&try_resp!(
        blocking(move || {
            let mut list = engine.list(&opts)?;
            if with_size {
                for c in &mut list {
                    add_sizes(&engine, c);
                }
            }
            Ok(list)
        })
        .await
    ))
}

/// `SizeRw` and `SizeRootFs`, which Docker computes only when asked (`size=1`).
fn add_sizes(engine: &berth_engine::engine::Engine, c: &mut serde_json::Value) {
    let id = c["Id"].as_str().unwrap_or("").to_string();
    if let Ok((rw, root)) = engine.container_sizes(&id) {
        c["SizeRw"] = rw.into();
        c["SizeRootFs"] = root.into();
    }
}

pub async fn inspect(ctx: &Ctx, id: &str) -> Resp {
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    let with_size = ctx.query.bool("size");
    let mut v = try_resp!(
        blocking(move || {
            let mut v = engine.inspect(&id)?;
            if with_size {
                add_sizes(&engine, &mut v);
            }
            Ok(v)
        })
        .await
    );
    if !ctx.at_least("1.44") {
        legacy_aliases(&mut v);
    }
    ok_json(&v)
}

/// Before API 1.44 Docker listed the container's short ID among each user network's
/// `Aliases` and had no `DNSNames`.
fn legacy_aliases(v: &mut serde_json::Value) {
    let short = v["Id"]
        .as_str()
        .map(|i| i[..12.min(i.len())].to_string())
        .unwrap_or_default();
    if let Some(nets) = v["NetworkSettings"]["Networks"].as_object_mut() {
        for ep in nets.values_mut() {
            let Some(obj) = ep.as_object_mut() else { continue };
            let user_net = obj.get("DNSNames").is_some_and(|d| !d.is_null());
            obj.remove("DNSNames");
            if user_net {
                let mut aliases: Vec<serde_json::Value> = vec![short.clone().into()];
                if let Some(a) = obj.get("Aliases").and_then(|a| a.as_array()) {
                    aliases.extend(a.iter().cloned());
                }
                obj.insert("Aliases".into(), aliases.into());
            }
        }
    }
}

pub async fn start(ctx: &Ctx, id: &str) -> Resp {
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    try_resp!(blocking(move || engine.start(&id)).await);
    status(StatusCode::NO_CONTENT)
}

pub async fn stop(ctx: &Ctx, id: &str, restart: bool) -> Resp {
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    let t = try_resp!(ctx.query.int("t"));
    let signal = ctx.query.get("signal").map(String::from);
    try_resp!(
        blocking(move || {
            if restart {
                engine.restart(&id, t, signal.as_deref())
            } else {
                engine.stop(&id, t, signal.as_deref())
            }
        })
        .await
    );
    status(StatusCode::NO_CONTENT)
}

pub async fn kill(ctx: &Ctx, id: &str) -> Resp {
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    let signal = ctx.query.get("signal").map(String::from);
    try_resp!(blocking(move || engine.kill(&id, signal.as_deref())).await);
    status(StatusCode::NO_CONTENT)
}

pub async fn pause(ctx: &Ctx, id: &str, pause: bool) -> Resp {
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    try_resp!(blocking(move || if pause { engine.pause(&id) } else { engine.unpause(&id) }).await);
    status(StatusCode::NO_CONTENT)
}

pub async fn rename(ctx: &Ctx, id: &str) -> Resp {
    let Some(name) = ctx.query.get("name").map(String::from) else {
        return error(
            StatusCode::BAD_REQUEST,
            "rename: missing the new name (query parameter \"name\")",
        );
    };
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    try_resp!(blocking(move || engine.rename(&id, &name)).await);
    status(StatusCode::NO_CONTENT)
}

pub async fn remove(ctx: &Ctx, id: &str) -> Resp {
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    let force = ctx.query.bool("force");
    let volumes = ctx.query.bool("v");
    try_resp!(blocking(move || engine.remove_with(&id, force, volumes)).await);
    status(StatusCode::NO_CONTENT)
}

fn size(ctx: &Ctx) -> Result<(u16, u16), Resp> {
    let h = ctx.query.int("h")?.unwrap_or(0);
    let w = ctx.query.int("w")?.unwrap_or(0);
    if !(0..=u16::MAX as i64).contains(&h) || !(0..=u16::MAX as i64).contains(&w) {
        return Err(error(StatusCode::BAD_REQUEST, "invalid terminal size"));
    }
    Ok((h as u16, w as u16))
}

pub async fn resize(ctx: &Ctx, id: &str) -> Resp {
    let (h, w) = try_resp!(size(ctx));
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    try_resp!(blocking(move || engine.resize(&id, h, w, None)).await);
    status(StatusCode::OK)
}

pub async fn exec_create(ctx: &Ctx, req: Request<Incoming>, id: &str) -> Resp {
    let bytes = try_resp!(read_body(req.into_body(), MAX_JSON_BODY).await);
    let cfg: ExecConfig = try_resp!(parse_json(&bytes));
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    let exec = try_resp!(blocking(move || engine.exec_create(&id, cfg)).await);
    json_resp(StatusCode::CREATED, &json!({ "Id": exec }))
}

pub async fn exec_inspect(ctx: &Ctx, id: &str) -> Resp {
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    ok_json(&try_resp!(blocking(move || engine.exec_inspect(&id)).await))
}

pub async fn exec_resize(ctx: &Ctx, id: &str) -> Resp {
    let (h, w) = try_resp!(size(ctx));
    let (engine, id) = (ctx.daemon.engine.clone(), id.to_string());
    try_resp!(blocking(move || engine.exec_resize(&id, h, w)).await);
    status(StatusCode::OK)
}
