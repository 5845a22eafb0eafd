//! Image commands: images, pull, push, tag, rmi, save, load, import, history, prune.

use std::io::IsTerminal;

use serde_json::{json, Value};

use super::lifecycle::confirm;
use super::Ctx;
use crate::api::{filters_json, query_escape, Query};
use crate::auth;
use crate::cli::{
    HistoryArgs, ImagePruneArgs, ImagesArgs, ImportArgs, LoadArgs, PullArgs, PushArgs, RmiArgs, SaveArgs, TagArgs,
};
use crate::error::{Error, Result};
use crate::format::{ago, go_time, human_size, human_size_prec, println, rfc3339_nano, short_id, Format};
use crate::http::Body;
use crate::progress;
use crate::reference::Ref;

fn auth_header(ctx: &Ctx, r: &Ref) -> (&'static str, String) {
    let dir = auth::config_dir(ctx.config_dir.as_deref());
    ("X-Registry-Auth", auth::registry_header(&dir, &r.auth_key()))
}

/// Pull `r`, showing progress on stderr (`to_stderr`, as run does) or stdout.
pub fn pull_image(ctx: &Ctx, r: &Ref, platform: &str, to_stderr: bool, quiet: bool) -> Result<()> {
    pull_with(ctx, r, platform, to_stderr, quiet, false)
}

fn pull_with(ctx: &Ctx, r: &Ref, platform: &str, to_stderr: bool, quiet: bool, all_tags: bool) -> Result<()> {
    let mut q = Query::new();
    q.add("fromImage", r.name());
    q.opt("platform", platform);
    if !all_tags {
        q.add("tag", r.api_tag());
    }
    let hdr = [auth_header(ctx, r)];
    let resp = ctx
        .api
        .request("POST", &format!("/images/create{}", q.as_str()), Body::Empty, &hdr)?;
    let wrap = |e: Error| match e {
        Error::Msg(m) => Error::msg(format!("pull of {}: {m}", r.familiar())),
        e => e,
    };
    if to_stderr {
        let tty = std::io::stderr().is_terminal();
        progress::display(resp, &mut std::io::stderr().lock(), tty, quiet).map_err(wrap)?;
    } else {
        let tty = std::io::stdout().is_terminal();
        progress::display(resp, &mut std::io::stdout().lock(), tty, quiet).map_err(wrap)?;
    }
    Ok(())
}

pub fn pull(ctx: &Ctx, a: PullArgs) -> Result<()> {
    let r = Ref::parse(&a.name)?;
    if a.all_tags && (r.tag.is_some() || r.digest.is_some()) {
        return Err(Error::usage("tag can't be used with --all-tags/-a"));
    }
    pull_with(ctx, &r, a.platform.as_deref().unwrap_or(""), false, a.quiet, a.all_tags)?;
    println(&if a.all_tags { r.name() } else { r.full() })
}

pub fn push(ctx: &Ctx, a: PushArgs) -> Result<()> {
    let r = Ref::parse(&a.name)?;
    let mut q = Query::new();
    if !a.all_tags {
        q.add("tag", r.tag.as_deref().unwrap_or("latest"));
    }
    let hdr = [auth_header(ctx, &r)];
    let resp = ctx.api.request(
        "POST",
        &format!("/images/{}/push{}", r.name(), q.as_str()),
        Body::Empty,
        &hdr,
    )?;
    let tty = std::io::stdout().is_terminal();
    progress::display(resp, &mut std::io::stdout().lock(), tty, a.quiet)
        .map_err(|e| Error::msg(format!("push of {}: {e}", r.familiar())))?;
    if a.quiet {
        println(&r.familiar())?;
    }
    Ok(())
}

pub fn tag(ctx: &Ctx, a: TagArgs) -> Result<()> {
    let t = Ref::parse(&a.target)?;
    if t.digest.is_some() {
        return Err(Error::usage(format!(
            "refusing to create a tag with a digest reference: {}",
            a.target
        )));
    }
    let mut q = Query::new();
    q.add("repo", t.name()).add("tag", t.tag.as_deref().unwrap_or("latest"));
    ctx.api
        .call("POST", &format!("/images/{}/tag{}", a.source, q.as_str()), None)
}

pub fn rmi(ctx: &Ctx, a: RmiArgs) -> Result<()> {
    let mut failed = false;
    for name in &a.images {
        let mut q = Query::new();
        q.flag("force", a.force).flag("noprune", a.no_prune);
        match ctx
            .api
            .json::<Value>("DELETE", &format!("/images/{name}{}", q.as_str()), None)
        {
            Ok(v) => {
                let mut out = String::new();
                for d in v.as_array().into_iter().flatten() {
                    if let Some(u) = d["Untagged"].as_str() {
                        out.push_str(&format!("Untagged: {u}\n"));
                    }
                    if let Some(x) = d["Deleted"].as_str() {
                        out.push_str(&format!("Deleted: {x}\n"));
                    }
                }
                crate::format::print(&out)?;
            }
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

pub fn save(ctx: &Ctx, a: SaveArgs) -> Result<()> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Error::usage(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut q = Query::new();
    for n in &a.images {
        q.add("names", n);
    }
    let r = ctx
        .api
        .request("GET", &format!("/images/get{}", q.as_str()), Body::Empty, &[])?;
    super::files::save_stream(r, a.output.as_deref(), &format!("the images {}", a.images.join(", ")))
}

/// `-i FILE` or stdin (which must not be a terminal).
fn input(path: Option<&str>, what: &str) -> Result<Box<dyn std::io::Read>> {
    match path.filter(|p| !p.is_empty() && *p != "-") {
        Some(p) => Ok(Box::new(
            std::fs::File::open(p).map_err(|e| Error::msg(format!("open {p}: {e}")))?,
        )),
        None => {
            if std::io::stdin().is_terminal() {
                return Err(Error::usage(format!("requested {what} from stdin, but stdin is empty")));
            }
            Ok(Box::new(std::io::stdin()))
        }
    }
}

pub fn load(ctx: &Ctx, a: LoadArgs) -> Result<()> {
    let mut src = input(a.input.as_deref(), "load")?;
    let q = if a.quiet { "?quiet=1" } else { "?quiet=0" };
    let resp = ctx.api.request(
        "POST",
        &format!("/images/load{q}"),
        Body::Reader(&mut src, "application/x-tar"),
        &[],
    )?;
    let tty = std::io::stdout().is_terminal();
    progress::display(resp, &mut std::io::stdout().lock(), tty, false)?;
    Ok(())
}

pub fn import(ctx: &Ctx, a: ImportArgs) -> Result<()> {
    let mut q = Query::new();
    for c in &a.change {
        q.add("changes", c);
    }
    let url = a.source.starts_with("http://") || a.source.starts_with("https://");
    q.add("fromSrc", if url { a.source.as_str() } else { "-" });
    q.opt("message", a.message.as_deref().unwrap_or(""));
    q.opt("platform", a.platform.as_deref().unwrap_or(""));
    if let Some(r) = a.reference.as_deref().filter(|r| !r.is_empty()) {
        let r = Ref::parse(r)?;
        q.add("repo", r.familiar_name())
            .add("tag", r.tag.as_deref().unwrap_or(""));
    }
    let path = format!("/images/create{}", q.as_str());
    let resp = if url {
        ctx.api.request("POST", &path, Body::Empty, &[])?
    } else {
        let mut src = input(Some(&a.source), "import")?;
        ctx.api
            .request("POST", &path, Body::Reader(&mut src, "application/x-tar"), &[])?
    };
    let tty = std::io::stdout().is_terminal();
    progress::display(resp, &mut std::io::stdout().lock(), tty, false)
        .map_err(|e| Error::msg(format!("import of {}: {e}", a.source)))?;
    Ok(())
}

fn image_headers() -> Value {
    json!({"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
           "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
           "VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE"})
}

fn na(v: &Value) -> String {
    match v.as_i64() {
        Some(n) if n >= 0 => n.to_string(),
        _ => "N/A".into(),
    }
}

/// Rows of `docker images`: one per repository:tag of each image.
pub fn image_rows(img: &Value, trunc: bool) -> Vec<Value> {
    let id = img["Id"].as_str().unwrap_or("");
    let created = img["Created"].as_i64().unwrap_or(0);
    let strs = |k: &str| -> Vec<String> {
        img[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .filter(|v| v != "<none>:<none>" && v != "<none>@<none>")
            .collect()
    };
    let (tags, digests) = (strs("RepoTags"), strs("RepoDigests"));
    let digest_of = |repo: &str| {
        digests
            .iter()
            .find_map(|d| {
                d.split_once('@')
                    .filter(|(r, _)| *r == repo)
                    .map(|(_, h)| h.to_string())
            })
            .unwrap_or_else(|| "<none>".into())
    };
    let mut pairs: Vec<(String, String, String)> = tags
        .iter()
        .map(|t| {
            let slash = t.rfind('/').map(|i| i + 1).unwrap_or(0);
            match t[slash..].rfind(':') {
                Some(i) => (
                    t[..slash + i].to_string(),
                    t[slash + i + 1..].to_string(),
                    digest_of(&t[..slash + i]),
                ),
                None => (t.clone(), "<none>".into(), digest_of(t)),
            }
        })
        .collect();
    if pairs.is_empty() {
        pairs = digests
            .iter()
            .filter_map(|d| d.split_once('@'))
            .map(|(r, h)| (r.to_string(), "<none>".into(), h.to_string()))
            .collect();
    }
    if pairs.is_empty() {
        pairs.push(("<none>".into(), "<none>".into(), "<none>".into()));
    }
    let size = img["Size"].as_f64().unwrap_or(0.0);
    pairs
        .into_iter()
        .map(|(repo, tag, digest)| {
            json!({
                "Containers": na(&img["Containers"]),
                "CreatedAt": go_time(created),
                "CreatedSince": ago(created),
                "Digest": digest,
                "ID": if trunc { short_id(id) } else { id.to_string() },
                "Repository": repo,
                "SharedSize": na(&img["SharedSize"]),
                "Size": human_size_prec(size, 3),
                "Tag": tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(img["VirtualSize"].as_f64().unwrap_or(size)),
                "__labels": img["Labels"].clone(),
            })
        })
        .collect()
}

pub fn images(ctx: &Ctx, a: ImagesArgs) -> Result<()> {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let mut q = Query::new();
    q.flag("all", a.all);
    if !filters.is_empty() {
        q.add("filters", filters_json(&filters)?);
    }
    let list: Vec<Value> = ctx.api.get(&format!("/images/json{}", q.as_str()))?;
    let default = if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let fmt = if a.quiet {
        Format::new("{{.ID}}", default)?
    } else {
        Format::new(a.format.as_deref().unwrap_or(""), default)?
    };
    let mut rows: Vec<Value> = list.iter().flat_map(|i| image_rows(i, !a.no_trunc)).collect();
    // The daemon filters too when it can; this keeps `images NAME` right when it cannot.
    let patterns: Vec<&str> = filters.iter().filter_map(|f| f.strip_prefix("reference=")).collect();
    if !patterns.is_empty() {
        rows.retain(|r| {
            let repo = r["Repository"].as_str().unwrap_or("");
            let full = format!("{repo}:{}", r["Tag"].as_str().unwrap_or(""));
            patterns.iter().any(|p| glob(p, repo) || glob(p, &full))
        });
    }
    fmt.print(&image_headers(), &rows)
}

/// Go's `path.Match` for reference filters: `*` (not across `/`) and `?`.
fn glob(pat: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    fn m(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != '/')
                .any(|i| m(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && t[0] != '/' && m(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && m(&p[1..], &t[1..]),
        }
    }
    m(&p, &t)
}

pub fn history(ctx: &Ctx, a: HistoryArgs) -> Result<()> {
    let list: Vec<Value> = ctx.api.get(&format!("/images/{}/history", a.image))?;
    let default = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
    let fmt = if a.quiet {
        Format::new("{{.ID}}", default)?
    } else {
        Format::new(a.format.as_deref().unwrap_or(""), default)?
    };
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = list
        .iter()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("");
            let created = h["Created"].as_i64().unwrap_or(0);
            let by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
            let by = if trunc { super::ps::ellipsis(&by, 45) } else { by };
            let size = h["Size"].as_i64().unwrap_or(0);
            json!({
                "ID": if trunc && id.starts_with("sha256:") { short_id(id) } else { id.to_string() },
                "CreatedSince": if a.human { ago(created) } else { rfc3339_nano(created, 0) },
                "CreatedAt": if a.human { go_time(created) } else { rfc3339_nano(created, 0) },
                "CreatedBy": by,
                "Size": if a.human { human_size_prec(size as f64, 3) } else { size.to_string() },
                "Comment": h["Comment"].as_str().unwrap_or(""),
                "Tags": h["Tags"].as_array().map(|t| t.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
            })
        })
        .collect();
    let headers = json!({"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                         "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT", "Tags": "TAGS"});
    fmt.print(&headers, &rows)
}

/// Prune images; the space reclaimed.
pub fn prune_images(ctx: &Ctx, all: bool, filters: &[String]) -> Result<u64> {
    let mut f = filters.to_vec();
    f.push(format!("dangling={}", !all));
    let v: Value = ctx.api.json(
        "POST",
        &format!("/images/prune?filters={}", query_escape(&filters_json(&f)?)),
        None,
    )?;
    let mut out = String::new();
    for d in v["ImagesDeleted"].as_array().into_iter().flatten() {
        if let Some(u) = d["Untagged"].as_str() {
            out.push_str(&format!("untagged: {u}\n"));
        }
        if let Some(x) = d["Deleted"].as_str() {
            out.push_str(&format!("deleted: {x}\n"));
        }
    }
    if !out.is_empty() {
        println(&format!("Deleted Images:\n{out}"))?;
    }
    Ok(v["SpaceReclaimed"].as_u64().unwrap_or(0))
}

pub fn prune(ctx: &Ctx, a: ImagePruneArgs) -> Result<()> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning)? {
        return Ok(());
    }
    let space = prune_images(ctx, a.all, &a.filter)?;
    println(&format!("Total reclaimed space: {}", human_size(space as f64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_globs() {
        assert!(glob("busybox", "busybox"));
        assert!(glob("busy*", "busybox"));
        assert!(glob("busybox:*", "busybox:latest"));
        assert!(!glob("busybox", "busybox2"));
        assert!(!glob("*", "a/b"));
        assert!(glob("*/*", "a/b"));
    }
}
