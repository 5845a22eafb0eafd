//! Registry endpoints: pull (`POST /images/create?fromImage=`), push, and `POST /auth`,
//! with Docker's JSON progress stream and credentials from `X-Registry-Auth`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use berth_image::registry::{BlobProgress, Client, Credentials, PullOptions, PushOptions, RegistryConfig};
use berth_image::Reference;

use crate::containers::try_resp;
use crate::http::{channel, error, ok_json, parse_json, read_body, Resp, MAX_JSON_BODY};
use crate::routes::Ctx;

/// `X-Registry-Auth` / `POST /auth` body (Docker's AuthConfig).
#[derive(serde::Deserialize, Default, Debug)]
struct AuthConfig {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: String,
    #[serde(default, rename = "serveraddress")]
    server_address: String,
    #[serde(default, rename = "identitytoken")]
    identity_token: String,
}

impl AuthConfig {
    fn credentials(&self) -> Option<Credentials> {
        if !self.identity_token.is_empty() {
            return Some(Credentials::new("<token>", self.identity_token.clone()));
        }
        if !self.username.is_empty() {
            return Some(Credentials::new(self.username.clone(), self.password.clone()));
        }
        // `auth` is base64("user:password").
        let raw = base64::engine::general_purpose::STANDARD
            .decode(self.auth.trim())
            .ok()?;
        let s = String::from_utf8(raw).ok()?;
        let (u, p) = s.split_once(':')?;
        Some(Credentials::new(u, p))
    }
}

/// Docker clients send base64url (padded or not) JSON; an empty or `{}` header is anonymous.
fn registry_auth(headers: &HeaderMap) -> Option<AuthConfig> {
    let v = headers.get("X-Registry-Auth")?.to_str().ok()?.trim();
    if v.is_empty() {
        return None;
    }
    let engines = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD,
    ];
    let raw = engines.iter().find_map(|e| e.decode(v).ok())?;
    serde_json::from_slice(&raw).ok()
}

fn client(ctx: &Ctx, registry: &str, auth: Option<&AuthConfig>) -> Result<Client, String> {
    let cfg = &ctx.daemon.engine.cfg;
    let mut b = Client::builder().docker_config(None).registry_config(RegistryConfig {
        registry_mirrors: cfg.registry_mirrors.clone(),
        insecure_registries: cfg.insecure_registries.clone(),
    });
    if let Some(c) = auth.and_then(AuthConfig::credentials) {
        b = b.credentials(registry, c);
    }
    b.build().map_err(|e| e.to_string())
}

fn line(v: Value) -> Bytes {
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

fn error_line(msg: &str) -> Bytes {
    line(json!({"errorDetail": {"message": msg}, "error": msg}))
}

/// `busybox`, `localhost:5000/x`: the familiar repository, without tag or digest.
fn familiar_repo(r: &Reference) -> String {
    let f = r.familiar();
    let f = f.split('@').next().unwrap_or(&f).to_string();
    match f.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
        _ => f,
    }
}

fn short(d: &berth_image::Digest) -> String {
    d.hex().chars().take(12).collect()
}

fn stream_response(body: crate::http::Body) -> Resp {
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(body)
        .expect("valid response")
}

/// `docker pull`: progress per layer, then the image is named.
pub async fn pull(ctx: &Ctx, req: Request<Incoming>, image: &str) -> Resp {
    let tag = ctx.query.get("tag").unwrap_or("").to_string();
    let full = if tag.is_empty() {
        image.to_string()
    } else if tag.starts_with("sha256:") {
        format!("{image}@{tag}")
    } else {
        format!("{image}:{tag}")
    };
    let reference = match Reference::parse(&full) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid reference format: {full}: {e}"),
            )
        }
    };
    let platform = ctx.query.get("platform").filter(|p| !p.is_empty()).map(String::from);
    let auth = registry_auth(req.headers());
    let client = match client(ctx, reference.domain(), auth.as_ref()) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let engine = ctx.daemon.engine.clone();
    let daemon = ctx.daemon.clone();
    let (tx, body) = channel();
    tokio::task::spawn_blocking(move || {
        let send = |b: Bytes| {
            let _ = tx.blocking_send(b);
        };
        let what = reference
            .tag()
            .map(String::from)
            .unwrap_or_else(|| reference.digest().map(|d| d.to_string()).unwrap_or_default());
        send(line(
            json!({"status": format!("Pulling from {}", reference.path()), "id": what}),
        ));
        let mut options = PullOptions::default();
        if let Some(p) = &platform {
            match berth_image::registry::Platform::parse(p) {
                Some(p) => options.platform = Some(p),
                None => return send(error_line(&format!("invalid platform {p:?}"))),
            }
        }
        options.progress = Some(progress_fn(tx.clone()));
        let store = &engine.images;
        let result = client
            .pull_and_unpack(&reference, store.blobs(), store.snapshots(), &options)
            .map_err(|e| e.to_string())
            .and_then(|done| {
                let target = done.pulled.index.clone().unwrap_or(done.pulled.digest.clone());
                store.set_image(Some(&reference), &target).map_err(|e| e.to_string())?;
                let repo = format!("{}/{}", reference.domain(), reference.path());
                let familiar_repo = Reference::parse(&repo).map(|r| r.familiar()).unwrap_or(repo);
                daemon
                    .repo_digests
                    .add(&target.to_string(), &familiar_repo, &target.to_string());
                Ok((target, !done.pulled.fetched.is_empty()))
            });
        match result {
            Ok((digest, fetched)) => {
                send(line(json!({"status": format!("Digest: {digest}")})));
                let status = if fetched {
                    "Downloaded newer image for"
                } else {
                    "Image is up to date for"
                };
                send(line(
                    json!({"status": format!("Status: {status} {}", reference.familiar())}),
                ));
                engine
                    .events
                    .emit("image", "pull", &reference.familiar(), Default::default());
            }
            Err(e) => send(error_line(&e)),
        }
    });
    stream_response(body)
}

/// Per-layer progress lines, at most ten a second per layer.
fn progress_fn(tx: mpsc::Sender<Bytes>) -> Arc<berth_image::registry::pull::ProgressFn> {
    let last: Mutex<HashMap<String, Instant>> = Mutex::new(HashMap::new());
    Arc::new(move |p: &BlobProgress| {
        let id = short(&p.digest);
        let msg = if p.cached {
            json!({"status": "Already exists", "progressDetail": {}, "id": id})
        } else if p.done >= p.total && p.total > 0 {
            json!({"status": "Pull complete", "progressDetail": {}, "id": id})
        } else {
            let mut l = last.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if l.get(&id)
                .is_some_and(|t| now.duration_since(*t) < Duration::from_millis(100))
            {
                return;
            }
            l.insert(id.clone(), now);
            json!({"status": "Downloading", "progressDetail": {"current": p.done, "total": p.total}, "id": id})
        };
        let _ = tx.blocking_send(line(msg));
    })
}

/// `docker push`.
pub async fn push(ctx: &Ctx, req: Request<Incoming>, name: &str) -> Resp {
    let tag = ctx.query.get("tag").filter(|t| !t.is_empty()).unwrap_or("latest");
    let full = if name.contains('@') || name.rsplit('/').next().unwrap_or("").contains(':') {
        name.to_string()
    } else {
        format!("{name}:{tag}")
    };
    let reference = match Reference::parse(&full) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid reference format: {full}: {e}"),
            )
        }
    };
    let engine = ctx.daemon.engine.clone();
    let image = match engine.images.resolve(&reference.to_string()) {
        Ok(i) => i,
        Err(_) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("No such image: {}", reference.familiar()),
            )
        }
    };
    let auth = registry_auth(req.headers());
    let client = match client(ctx, reference.domain(), auth.as_ref()) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let daemon = ctx.daemon.clone();
    let (tx, body) = channel();
    tokio::task::spawn_blocking(move || {
        let send = |b: Bytes| {
            let _ = tx.blocking_send(b);
        };
        let repo = format!("{}/{}", reference.domain(), reference.path());
        send(line(
            json!({"status": format!("The push refers to repository [{repo}]")}),
        ));
        match client.push(
            &reference,
            engine.images.blobs(),
            &image.target,
            &PushOptions::default(),
        ) {
            Ok(report) => {
                for d in &report.uploaded {
                    send(line(json!({"status": "Pushed", "progressDetail": {}, "id": short(d)})));
                }
                for d in &report.mounted {
                    send(line(
                        json!({"status": "Mounted from another repository", "progressDetail": {}, "id": short(d)}),
                    ));
                }
                for d in &report.skipped {
                    send(line(
                        json!({"status": "Layer already exists", "progressDetail": {}, "id": short(d)}),
                    ));
                }
                let size = engine
                    .images
                    .read_document(&report.digest)
                    .map(|b| b.len())
                    .unwrap_or(0);
                let tag = reference.tag().unwrap_or("latest").to_string();
                send(line(
                    json!({"status": format!("{tag}: digest: {} size: {size}", report.digest)}),
                ));
                send(line(
                    json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": report.digest.to_string(), "Size": size}}),
                ));
                daemon.repo_digests.add(
                    &image.target.to_string(),
                    &familiar_repo(&reference),
                    &report.digest.to_string(),
                );
                engine
                    .events
                    .emit("image", "push", &reference.familiar(), Default::default());
            }
            Err(e) => send(error_line(&e.to_string())),
        }
    });
    stream_response(body)
}

/// `POST /auth` (`docker login`): check the credentials against the registry.
pub async fn auth(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let bytes = try_resp!(read_body(req.into_body(), MAX_JSON_BODY).await);
    let cfg: AuthConfig = try_resp!(parse_json(&bytes));
    let server = if cfg.server_address.is_empty() {
        "docker.io".to_string()
    } else {
        cfg.server_address
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .trim_end_matches("/v1")
            .trim_end_matches("/v2")
            .to_string()
    };
    let Some(creds) = cfg.credentials() else {
        return error(StatusCode::BAD_REQUEST, "login: no user name or identity token given");
    };
    let client = match client(ctx, &server, None) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let r = tokio::task::spawn_blocking(move || client.check_login(&server, &creds)).await;
    match r {
        Ok(Ok(())) => ok_json(&json!({"Status": "Login Succeeded", "IdentityToken": ""})),
        Ok(Err(e)) => error(StatusCode::UNAUTHORIZED, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
