//! Image endpoints over berth-image: list, inspect, import, load, save, tag, delete.

use std::io::Write;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use berth_engine::EngineError;
use berth_image::images::{Image, ImageStore};

use crate::http::{self, channel, error, ok_json, status, Resp};
use crate::routes::{blocking, Ctx};

fn img_err(e: impl std::fmt::Display, not_found: bool) -> EngineError {
    if not_found {
        EngineError::NoSuchImage(e.to_string())
    } else {
        EngineError::InvalidParameter(e.to_string())
    }
}

fn resolve(store: &ImageStore, name: &str) -> Result<Image, EngineError> {
    store.resolve(name).map_err(|e| match e {
        berth_image::images::ImageError::NotFound(_) => EngineError::NoSuchImage(name.into()),
        e => e.into(),
    })
}

fn created_secs(img: &Image) -> i64 {
    img.config
        .created()
        .as_deref()
        .and_then(berth_engine::logs::parse_rfc3339)
        .map(|t| t.0)
        .unwrap_or(0)
}

fn size(img: &Image) -> u64 {
    img.manifest.layers().iter().map(|l| l.size()).sum()
}

fn names_of(store: &ImageStore, img: &Image) -> Vec<String> {
    store
        .list()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.target == img.target)
        .flat_map(|s| s.names)
        .collect()
}

/// Docker's reference filter: a familiar name, with `*` matching any run of characters
/// (`busy*`, `*:latest`); a pattern without a tag matches every tag of that repository.
fn reference_matches(pattern: &str, name: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let repo = name.rsplit_once(':').map_or(name, |(r, _)| r);
    glob(pattern.as_bytes(), name.as_bytes()) || (!pattern.contains(':') && glob(pattern.as_bytes(), repo.as_bytes()))
}

pub async fn list(ctx: &Ctx) -> Resp {
    let filters = match berth_engine::engine::ListOptions::parse_filters(ctx.query.get("filters").unwrap_or("")) {
        Ok(f) => f,
        Err(e) => return http::engine_error(&e),
    };
    // Older clients send `filter=<reference>`.
    let mut filters = filters;
    if let Some(r) = ctx.query.get("filter").filter(|r| !r.is_empty()) {
        filters.entry("reference".into()).or_default().push(r.to_string());
    }
    let engine = ctx.daemon.engine.clone();
    let daemon = ctx.daemon.clone();
    let out = match blocking(move || {
        let store = &engine.images;
        let mut out = Vec::new();
        for s in store.list()? {
            let Ok(img) = store.resolve(&s.target.to_string()) else {
                continue;
            };
            let labels = img
                .config
                .config()
                .as_ref()
                .and_then(|c| c.labels().clone())
                .unwrap_or_default();
            let keep = filters.iter().all(|(k, vals)| match k.as_str() {
                "dangling" => vals.iter().any(|v| (v == "true" || v == "1") == s.names.is_empty()),
                "reference" => vals.iter().any(|p| s.names.iter().any(|n| reference_matches(p, n))),
                "label" => vals.iter().all(|v| match v.split_once('=') {
                    Some((k, want)) => labels.get(k).is_some_and(|x| x == want),
                    None => labels.contains_key(v),
                }),
                _ => true,
            });
            if !keep {
                continue;
            }
            // As Docker: with a reference filter, only the matching names are listed.
            let names: Vec<&String> = match filters.get("reference") {
                Some(pats) => s
                    .names
                    .iter()
                    .filter(|n| pats.iter().any(|p| reference_matches(p, n)))
                    .collect(),
                None => s.names.iter().collect(),
            };
            out.push(json!({
                "Id": img.config_digest.to_string(),
                "ParentId": "",
                "RepoDigests": daemon.repo_digests.of(&s.target.to_string(), &s.names),
                "RepoTags": names,
                "Created": created_secs(&img),
                "Size": size(&img),
                "SharedSize": -1,
                "VirtualSize": size(&img),
                "Labels": labels,
                "Containers": -1,
            }));
        }
        Ok(out)
    })
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    ok_json(&out)
}

fn inspect_doc(store: &ImageStore, img: &Image) -> Value {
    let cfg = serde_json::to_value(&img.config).unwrap_or_default();
    let c = &cfg["config"];
    let pascal = json!({
        "Hostname": "", "Domainname": "", "User": c["User"].as_str().unwrap_or(""),
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "ExposedPorts": c["ExposedPorts"], "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": c["Env"], "Cmd": c["Cmd"], "Image": "", "Volumes": c["Volumes"],
        "WorkingDir": c["WorkingDir"].as_str().unwrap_or(""), "Entrypoint": c["Entrypoint"],
        "OnBuild": null, "Labels": c["Labels"], "StopSignal": c["StopSignal"],
    });
    json!({
        "Id": img.config_digest.to_string(),
        "RepoTags": names_of(store, img),
        "RepoDigests": [],
        "Parent": "",
        // Docker's extension field, which oci-spec's type does not keep: from the blob.
        "Comment": store
            .read_document(&img.config_digest)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["comment"].as_str().map(str::to_string))
            .unwrap_or_default(),
        "Created": cfg["created"],
        "DockerVersion": "",
        "Author": cfg["author"].as_str().unwrap_or(""),
        "Config": pascal,
        "Architecture": cfg["architecture"],
        "Os": cfg["os"],
        "Size": size(img),
        "GraphDriver": {"Name": "overlay2", "Data": null},
        "RootFS": {"Type": "layers", "Layers": img.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    })
}

/// `/images/{name}/...`: names may contain '/', so the verb is the last segment.
pub async fn route(ctx: &Ctx, m: &Method, req: Request<Incoming>, seg: &[&str]) -> Resp {
    let engine = ctx.daemon.engine.clone();
    let last = seg.last().copied().unwrap_or("");
    let name_without_last = seg[..seg.len().saturating_sub(1)].join("/");
    match (m, last) {
        (&Method::GET, "json") if seg.len() > 1 => {
            let daemon = ctx.daemon.clone();
            let doc = blocking(move || {
                let img = resolve(&engine.images, &name_without_last)?;
                let mut doc = inspect_doc(&engine.images, &img);
                let names = names_of(&engine.images, &img);
                doc["RepoDigests"] = json!(daemon.repo_digests.of(&img.target.to_string(), &names));
                Ok(doc)
            })
            .await;
            match doc {
                Ok(d) => ok_json(&d),
                Err(r) => r,
            }
        }
        (&Method::GET, "get") if seg.len() > 1 => save(ctx, "", Some(name_without_last)).await,
        (&Method::POST, "prune") if seg.len() == 1 => prune(ctx).await,
        (&Method::POST, "push") if seg.len() > 1 => crate::registry::push(ctx, req, &name_without_last).await,
        (&Method::POST, "tag") if seg.len() > 1 => {
            let repo = ctx.query.get("repo").unwrap_or("").to_string();
            let tag = ctx
                .query
                .get("tag")
                .filter(|t| !t.is_empty())
                .unwrap_or("latest")
                .to_string();
            if repo.is_empty() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "tag: missing repository name (query parameter \"repo\")",
                );
            }
            let target = format!("{repo}:{tag}");
            let r = blocking(move || {
                resolve(&engine.images, &name_without_last)?;
                engine
                    .images
                    .tag(&name_without_last, &target)
                    .map_err(|e| img_err(e, false))
            })
            .await;
            match r {
                Ok(()) => status(StatusCode::CREATED),
                Err(r) => r,
            }
        }
        (&Method::DELETE, _) => {
            let name = seg.join("/");
            let force = ctx.query.bool("force");
            let r = blocking(move || {
                let img = resolve(&engine.images, &name)?;
                let id = img.config_digest.to_string();
                let by_id = name.starts_with("sha256:") || id.trim_start_matches("sha256:").starts_with(&name);
                // A name removes that name (the content goes with the last one); an ID
                // removes every name. Refused while a container uses it, unless forced.
                let removed = if by_id {
                    engine.images.remove_image(&name, force)
                } else {
                    engine.images.untag(&name)
                }
                .map_err(|e| match e {
                    e @ berth_image::images::ImageError::InUse { .. } => {
                        EngineError::Conflict(format!("conflict: {e}"))
                    }
                    e => img_err(e, false),
                })?;
                let mut out: Vec<Value> = removed.names.iter().map(|n| json!({"Untagged": n})).collect();
                if !removed.blobs.is_empty() {
                    out.push(json!({"Deleted": id}));
                }
                for n in &removed.names {
                    engine
                        .events
                        .emit("image", "untag", &id, [("name".to_string(), n.clone())].into());
                }
                if !removed.blobs.is_empty() {
                    engine.events.emit("image", "delete", &id, Default::default());
                }
                Ok(out)
            })
            .await;
            match r {
                Ok(v) => ok_json(&v),
                Err(r) => r,
            }
        }
        (&Method::GET, "history") if seg.len() > 1 => {
            let r = blocking(move || {
                let img = resolve(&engine.images, &name_without_last)?;
                let created = created_secs(&img);
                let hist = img.config.history().clone().unwrap_or_default();
                let out: Vec<Value> = hist
                    .iter()
                    .rev()
                    .enumerate()
                    .map(|(i, h)| {
                        json!({
                            "Id": if i == 0 { img.config_digest.to_string() } else { "<missing>".into() },
                            "Created": h.created().as_deref().and_then(berth_engine::logs::parse_rfc3339).map(|t| t.0).unwrap_or(created),
                            "CreatedBy": h.created_by().clone().unwrap_or_default(),
                            "Tags": if i == 0 { names_of(&engine.images, &img) } else { vec![] },
                            "Size": 0,
                            "Comment": h.comment().clone().unwrap_or_default(),
                        })
                    })
                    .collect();
                Ok(out)
            })
            .await;
            match r {
                Ok(v) => ok_json(&v),
                Err(r) => r,
            }
        }
        _ => {
            drop(req);
            error(
                StatusCode::NOT_FOUND,
                format!("page not found: {m} /images/{}", seg.join("/")),
            )
        }
    }
}

/// `POST /images/prune`: dangling images (or, with `dangling=false`, every unused one),
/// then unreferenced blobs and snapshots.
pub async fn prune(ctx: &Ctx) -> Resp {
    let filters = match berth_engine::engine::ListOptions::parse_filters(ctx.query.get("filters").unwrap_or("")) {
        Ok(f) => f,
        Err(e) => return http::engine_error(&e),
    };
    let all = filters
        .get("dangling")
        .is_some_and(|v| v.iter().any(|x| x == "false" || x == "0"));
    let labels: Vec<String> = filters
        .iter()
        .filter(|(k, _)| k.as_str() == "label" || k.as_str() == "label!")
        .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}")))
        .collect();
    let engine = ctx.daemon.engine.clone();
    let r = blocking(move || {
        let opts = berth_image::prune::PruneOptions {
            all,
            filters: labels,
            ..Default::default()
        };
        let rep = engine.images.prune(&opts).map_err(|e| img_err(e, false))?;
        let mut deleted: Vec<Value> = rep.untagged.iter().map(|n| json!({"Untagged": n})).collect();
        deleted.extend(rep.deleted.iter().map(|d| json!({"Deleted": d.to_string()})));
        engine.events.emit("image", "prune", "", Default::default());
        Ok(
            json!({"ImagesDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) },
                  "SpaceReclaimed": rep.gc.space_reclaimed}),
        )
    })
    .await;
    match r {
        Ok(v) => ok_json(&v),
        Err(r) => r,
    }
}

/// `POST /images/create`: `fromSrc=-` imports the body; `fromImage` pulls.
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let q = &ctx.query;
    let engine = ctx.daemon.engine.clone();
    if let Some(src) = q.get("fromSrc") {
        if src != "-" {
            return error(
                StatusCode::BAD_REQUEST,
                "fromSrc: only \"-\" (the request body) is supported; Berth does not fetch URLs",
            );
        }
        let repo = q.get("repo").unwrap_or("").to_string();
        let tag = q.get("tag").filter(|t| !t.is_empty()).unwrap_or("latest").to_string();
        let reader = http::body_reader(req.into_body());
        let r = blocking(move || {
            let name = if repo.is_empty() {
                None
            } else {
                let full = if repo.contains('@') || repo.rsplit('/').next().unwrap_or("").contains(':') {
                    repo.clone()
                } else {
                    format!("{repo}:{tag}")
                };
                Some(berth_image::Reference::parse(&full).map_err(|e| EngineError::InvalidParameter(e.to_string()))?)
            };
            let imported = berth_image::archive::import(&engine.images, reader, name.as_ref())
                .map_err(|e| EngineError::InvalidParameter(format!("import: {e}")))?;
            engine.events.emit(
                "image",
                "import",
                &imported.config_digest.to_string(),
                Default::default(),
            );
            Ok(imported.config_digest.to_string())
        })
        .await;
        return match r {
            Ok(id) => ok_json(&json!({ "status": id })),
            Err(r) => r,
        };
    }
    if let Some(image) = q.get("fromImage").filter(|i| !i.is_empty()) {
        let image = image.to_string();
        return crate::registry::pull(ctx, req, &image).await;
    }
    error(StatusCode::BAD_REQUEST, "images/create: give fromImage or fromSrc")
}

pub async fn load(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let engine = ctx.daemon.engine.clone();
    let reader = http::body_reader(req.into_body());
    let r = blocking(move || {
        let loaded = berth_image::archive::load(&engine.images, reader)
            .map_err(|e| EngineError::InvalidParameter(format!("load: {e}")))?;
        let mut out = Vec::new();
        for l in loaded {
            let line = match &l.name {
                Some(n) => format!("Loaded image: {n}\n"),
                None => format!("Loaded image ID: {}\n", l.target),
            };
            engine
                .events
                .emit("image", "load", &l.target.to_string(), Default::default());
            let mut b = serde_json::to_vec(&json!({ "stream": line })).unwrap_or_default();
            b.push(b'\n');
            out.extend(b);
        }
        Ok(out)
    })
    .await;
    match r {
        Ok(b) => Response::builder()
            .status(StatusCode::OK)
            .header("Content-Type", "application/json")
            .body(http::full(b))
            .expect("valid response"),
        Err(r) => r,
    }
}

/// `GET /images/get?names=…` and `GET /images/{name}/get`: one tar (OCI layout + docker-archive).
pub async fn save(ctx: &Ctx, query: &str, one: Option<String>) -> Resp {
    let names: Vec<String> = match one {
        Some(n) => vec![n],
        None => form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k == "names")
            .map(|(_, v)| v.into_owned())
            .collect(),
    };
    if names.is_empty() {
        return error(StatusCode::BAD_REQUEST, "save: no image names given");
    }
    let engine = ctx.daemon.engine.clone();
    // Check the names first, so a bad one gets a 404 rather than a broken stream.
    let check = {
        let (engine, names) = (engine.clone(), names.clone());
        blocking(move || {
            for n in &names {
                resolve(&engine.images, n)?;
            }
            Ok(())
        })
        .await
    };
    if let Err(r) = check {
        return r;
    }
    let (tx, body) = channel();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut w = std::io::BufWriter::with_capacity(256 << 10, http::ChanWriter(tx));
        if berth_image::archive::save(&engine.images, &refs, &mut w).is_ok() {
            let _ = w.flush();
        }
    });
    let _ = ctx;
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/x-tar")
        .body(body)
        .expect("valid response")
}

#[cfg(test)]
mod tests {
    use super::reference_matches;

    #[test]
    fn reference_patterns() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:1"));
        assert!(reference_matches("*:latest", "busybox:latest"));
        assert!(!reference_matches("busybox:1", "busybox:latest"));
        assert!(!reference_matches("other", "busybox:latest"));
    }
}
