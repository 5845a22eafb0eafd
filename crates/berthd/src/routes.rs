//! Request dispatch: API version check, then method + path to a handler.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use crate::http::{self, error, split_version, version_cmp, Query, Resp, API_VERSION, MIN_API_VERSION};
use crate::{containers, extras, images, networks, streams, system, volumes, Daemon};

/// What a handler knows about the request beyond its own arguments.
pub struct Ctx {
    pub daemon: Arc<Daemon>,
    /// The API version the client asked for (the newest we speak when unversioned).
    pub version: String,
    pub query: Query,
}

impl Ctx {
    /// Behaviour that changed in API `v` applies.
    pub fn at_least(&self, v: &str) -> bool {
        version_cmp(&self.version, v).is_ge()
    }
}

pub async fn handle(daemon: Arc<Daemon>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let path = req.uri().path().to_string();
    if daemon.engine.cfg.debug {
        eprintln!("berthd: {} {}", req.method(), req.uri());
    }
    let (version, rest) = split_version(&path);
    if let Some(v) = version {
        if version_cmp(v, API_VERSION).is_gt() {
            return Ok(with_server(error(
                StatusCode::BAD_REQUEST,
                format!("client version {v} is too new. Maximum supported API version is {API_VERSION}"),
            )));
        }
        if version_cmp(v, MIN_API_VERSION).is_lt() {
            return Ok(with_server(error(
                StatusCode::BAD_REQUEST,
                format!(
                    "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, \
                     please upgrade your client to a newer version"
                ),
            )));
        }
    }
    let ctx = Ctx {
        daemon,
        version: version.unwrap_or(API_VERSION).to_string(),
        query: Query::parse(req.uri().query()),
    };
    let rest = rest.to_string();
    let resp = route(ctx, req, &rest).await;
    Ok(with_server(resp))
}

fn with_server(mut r: Resp) -> Resp {
    let h = r.headers_mut();
    h.insert(
        "Server",
        concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)")
            .parse()
            .expect("header"),
    );
    h.insert("Api-Version", API_VERSION.parse().expect("header"));
    h.insert("Ostype", "linux".parse().expect("header"));
    r
}

async fn route(ctx: Ctx, req: Request<Incoming>, path: &str) -> Resp {
    let method = req.method().clone();
    let seg: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let m = &method;
    match (m, seg.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => system::ping(m == Method::HEAD),
        (&Method::GET, ["version"]) => system::version(&ctx).await,
        (&Method::GET, ["info"]) => system::info(&ctx).await,
        (&Method::POST, ["auth"]) => crate::registry::auth(&ctx, req).await,
        (&Method::GET, ["events"]) => system::events(&ctx).await,

        (&Method::GET, ["system", "df"]) => extras::disk_usage(&ctx, &req).await,
        // `docker system prune` / `builder prune`: Berth has no build cache yet, so there
        // is nothing to delete (Docker's answer for an empty cache).
        (&Method::POST, ["build", "prune"]) => {
            crate::http::ok_json(&serde_json::json!({"CachesDeleted": null, "SpaceReclaimed": 0}))
        }

        (&Method::POST, ["containers", "create"]) => containers::create(&ctx, req).await,
        (&Method::POST, ["containers", "prune"]) => extras::prune(&ctx).await,
        (&Method::GET, ["containers", "json"]) => containers::list(&ctx).await,
        (&Method::GET, ["containers", id, "json"]) => containers::inspect(&ctx, id).await,
        (&Method::POST, ["containers", id, "start"]) => containers::start(&ctx, id).await,
        (&Method::POST, ["containers", id, "stop"]) => containers::stop(&ctx, id, false).await,
        (&Method::POST, ["containers", id, "restart"]) => containers::stop(&ctx, id, true).await,
        (&Method::POST, ["containers", id, "kill"]) => containers::kill(&ctx, id).await,
        (&Method::POST, ["containers", id, "pause"]) => containers::pause(&ctx, id, true).await,
        (&Method::POST, ["containers", id, "unpause"]) => containers::pause(&ctx, id, false).await,
        (&Method::POST, ["containers", id, "rename"]) => containers::rename(&ctx, id).await,
        (&Method::DELETE, ["containers", id]) => containers::remove(&ctx, id).await,
        (&Method::POST, ["containers", id, "resize"]) => containers::resize(&ctx, id).await,
        (&Method::POST, ["containers", id, "wait"]) => streams::wait(&ctx, id).await,
        (&Method::GET, ["containers", id, "logs"]) => streams::logs(&ctx, id).await,
        (&Method::POST, ["containers", id, "attach"]) => streams::attach(&ctx, req, id).await,
        (&Method::POST, ["containers", id, "exec"]) => containers::exec_create(&ctx, req, id).await,
        (&Method::POST, ["exec", id, "start"]) => streams::exec_start(&ctx, req, id).await,
        (&Method::POST, ["exec", id, "resize"]) => containers::exec_resize(&ctx, id).await,
        (&Method::GET, ["exec", id, "json"]) => containers::exec_inspect(&ctx, id).await,
        (&Method::GET, ["containers", id, "top"]) => extras::top(&ctx, id).await,
        (&Method::GET, ["containers", id, "stats"]) => extras::stats(&ctx, id).await,
        (&Method::HEAD, ["containers", id, "archive"]) => extras::archive_head(&ctx, id).await,
        (&Method::GET, ["containers", id, "archive"]) => extras::archive_get(&ctx, id).await,
        (&Method::PUT, ["containers", id, "archive"]) => extras::archive_put(&ctx, req, id).await,
        (&Method::GET, ["containers", id, "changes"]) => extras::changes(&ctx, id).await,
        (&Method::GET, ["containers", id, "export"]) => extras::export(&ctx, id).await,
        (&Method::POST, ["containers", id, "update"]) => extras::update(&ctx, req, id).await,
        (&Method::POST, ["commit"]) => extras::commit(&ctx, req).await,

        (&Method::GET, ["volumes"]) => volumes::list(&ctx).await,
        (&Method::POST, ["volumes", "create"]) => volumes::create(&ctx, req).await,
        (&Method::POST, ["volumes", "prune"]) => volumes::prune(&ctx).await,
        (&Method::GET, ["volumes", name]) => volumes::inspect(&ctx, name).await,
        (&Method::DELETE, ["volumes", name]) => volumes::remove(&ctx, name).await,

        (&Method::GET, ["networks"]) => networks::list(&ctx).await,
        (&Method::POST, ["networks", "create"]) => networks::create(&ctx, req).await,
        (&Method::POST, ["networks", "prune"]) => networks::prune(&ctx).await,
        (&Method::GET, ["networks", id]) => networks::inspect(&ctx, id).await,
        (&Method::DELETE, ["networks", id]) => networks::remove(&ctx, id).await,
        (&Method::POST, ["networks", id, "connect"]) => networks::connect(&ctx, req, id, true).await,
        (&Method::POST, ["networks", id, "disconnect"]) => networks::connect(&ctx, req, id, false).await,

        (&Method::GET, ["images", "json"]) => images::list(&ctx).await,
        (&Method::POST, ["images", "create"]) => images::create(&ctx, req).await,
        (&Method::POST, ["images", "load"]) => images::load(&ctx, req).await,
        (&Method::GET, ["images", "get"]) => images::save(&ctx, req.uri().query().unwrap_or(""), None).await,
        (_, ["images", ..]) => images::route(&ctx, m, req, &seg[1..]).await,

        _ => error(StatusCode::NOT_FOUND, format!("page not found: {method} {path}")),
    }
}

/// Run a blocking engine call off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, berth_engine::EngineError> + Send + 'static,
) -> Result<T, Resp> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(http::engine_error(&e)),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"))),
    }
}
