//! `/volumes` endpoints over the engine's volume store (the `local` driver).

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;

use berth_engine::engine::ListOptions;

use crate::containers::try_resp;
use crate::http::{self, json_resp, ok_json, parse_json, read_body, status, Resp, MAX_JSON_BODY};
use crate::routes::{blocking, Ctx};

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    driver: String,
    #[serde(default)]
    driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let bytes = try_resp!(read_body(req.into_body(), MAX_JSON_BODY).await);
    let b: CreateBody = try_resp!(parse_json(&bytes));
    let engine = ctx.daemon.engine.clone();
    let v = try_resp!(
        blocking(move || {
            let name = (!b.name.is_empty()).then_some(b.name.as_str());
            engine.volume_create(
                name,
                &b.driver,
                b.labels.unwrap_or_default(),
                b.driver_opts.unwrap_or_default(),
            )
        })
        .await
    );
    json_resp(StatusCode::CREATED, &v)
}

pub async fn list(ctx: &Ctx) -> Resp {
    let filters = match ListOptions::parse_filters(ctx.query.get("filters").unwrap_or("")) {
        Ok(f) => f,
        Err(e) => return http::engine_error(&e),
    };
    let engine = ctx.daemon.engine.clone();
    let vols = try_resp!(blocking(move || engine.volume_list(&filters)).await);
    ok_json(&json!({"Volumes": vols, "Warnings": []}))
}

pub async fn inspect(ctx: &Ctx, name: &str) -> Resp {
    let (engine, name) = (ctx.daemon.engine.clone(), name.to_string());
    ok_json(&try_resp!(blocking(move || engine.volume_inspect(&name)).await))
}

pub async fn remove(ctx: &Ctx, name: &str) -> Resp {
    let (engine, name) = (ctx.daemon.engine.clone(), name.to_string());
    let force = ctx.query.bool("force");
    try_resp!(blocking(move || engine.volume_remove(&name, force)).await);
    status(StatusCode::NO_CONTENT)
}

pub async fn prune(ctx: &Ctx) -> Resp {
    let filters = match ListOptions::parse_filters(ctx.query.get("filters").unwrap_or("")) {
        Ok(f) => f,
        Err(e) => return http::engine_error(&e),
    };
    // API ≥ 1.42: only anonymous volumes unless `all=true`.
    let all = filters
        .get("all")
        .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"))
        || !ctx.at_least("1.42");
    let labels = filters.get("label").cloned().unwrap_or_default();
    let not_labels = filters.get("label!").cloned().unwrap_or_default();
    if let Some(k) = filters
        .keys()
        .find(|k| !matches!(k.as_str(), "label" | "label!" | "all"))
    {
        return http::error(StatusCode::BAD_REQUEST, format!("invalid filter '{k}'"));
    }
    let engine = ctx.daemon.engine.clone();
    let (deleted, space) = try_resp!(blocking(move || engine.volume_prune(all, &labels, &not_labels)).await);
    ok_json(&json!({"VolumesDeleted": deleted, "SpaceReclaimed": space}))
}
