//! A container's writable layer through the image store: `docker diff`, `docker export`
//! and `docker commit` (with `--change` Dockerfile instructions and Docker's merge of
//! the committed config with the container's).

use std::collections::BTreeMap;
use std::io::Write;

use berth_image::containers::{CommitOptions, ConfigChanges};
use berth_image::overlay::{Change, ChangeKind};
use berth_image::Reference;
use serde_json::json;

use super::Engine;
use crate::error::{EngineError, Result};
use crate::types::ContainerConfig;

/// Mount points every container gets. Docker keeps them in an "init" layer under the
/// container's, so they never show in its diff; here the runtime creates them in the
/// writable layer, so they are taken out.
const INIT_PATHS: [&str; 10] = [
    "/dev/pts",
    "/dev/shm",
    "/proc",
    "/sys",
    "/.dockerenv",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/hostname",
    "/dev/console",
    "/etc/mtab",
];

fn is_under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// Drop the init paths, and the directories reported changed only because they hold one.
fn without_init_paths(changes: Vec<Change>) -> Vec<Change> {
    let (init, mut rest): (Vec<Change>, Vec<Change>) =
        changes.into_iter().partition(|c| INIT_PATHS.contains(&c.path.as_str()));
    let keep: Vec<bool> = rest
        .iter()
        .map(|c| {
            let only_for_init = c.kind == ChangeKind::Modified
                && init.iter().any(|i| is_under(&i.path, &c.path))
                && !rest.iter().any(|o| is_under(&o.path, &c.path));
            !only_for_init
        })
        .collect();
    let mut keep = keep.into_iter();
    rest.retain(|_| keep.next().unwrap_or(true));
    rest
}

/// What `docker commit` asks for.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    pub repo: String,
    pub tag: String,
    pub comment: String,
    pub author: String,
    pub pause: bool,
    /// Dockerfile instructions (`--change`).
    pub changes: Vec<String>,
    /// The body's config; None: the container's.
    pub config: Option<ContainerConfig>,
}

/// Words of a Dockerfile argument: whitespace-separated, quotes grouping and removed.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut started = false;
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (None, c) if c.is_whitespace() => {
                if started {
                    out.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(ch);
                started = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                cur.extend(chars.next());
                started = true;
            }
            (_, c) => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(cur);
    }
    out
}

/// `["a", "b"]` (exec form) or a shell command.
fn command_form(rest: &str, shell: &Option<Vec<String>>) -> Vec<String> {
    if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
        return v;
    }
    let mut cmd = shell
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
    cmd.push(rest.to_string());
    cmd
}

/// `k=v k2="v 2"`, or the old `k v` form.
fn pairs(rest: &str) -> Result<Vec<(String, String)>> {
    let first = rest.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words(rest)
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(EngineError::InvalidParameter(format!(
                "invalid change: {w:?} is not key=value"
            ))),
        })
        .collect()
}

/// Apply `--change` instructions to `c` as Docker's commit does.
fn apply_changes(c: &mut ContainerConfig, changes: &[String]) -> Result<()> {
    let mut cmd_set = false;
    for change in changes.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
        let (inst, rest) = change.split_once(char::is_whitespace).unwrap_or((change, ""));
        let rest = rest.trim();
        let inst = inst.to_ascii_lowercase();
        match inst.as_str() {
            "cmd" => {
                c.cmd = Some(command_form(rest, &c.shell));
                cmd_set = true;
            }
            "entrypoint" => {
                c.entrypoint = Some(command_form(rest, &c.shell));
                // As in a Dockerfile: a new ENTRYPOINT drops the CMD unless one was given.
                if !cmd_set {
                    c.cmd = None;
                }
            }
            "env" => {
                for (k, v) in pairs(rest)? {
                    c.env.retain(|e| e.split('=').next() != Some(k.as_str()));
                    c.env.push(format!("{k}={v}"));
                }
            }
            "label" => {
                for (k, v) in pairs(rest)? {
                    c.labels.insert(k, v);
                }
            }
            "expose" => {
                let ports = c.exposed_ports.get_or_insert_with(Default::default);
                for p in words(rest) {
                    let p = if p.contains('/') { p } else { format!("{p}/tcp") };
                    ports.insert(p, json!({}));
                }
            }
            "volume" => {
                let list = serde_json::from_str::<Vec<String>>(rest).unwrap_or_else(|_| words(rest));
                let vols = c.volumes.get_or_insert_with(Default::default);
                for v in list {
                    vols.insert(v, json!({}));
                }
            }
            "user" => c.user = rest.to_string(),
            "workdir" => {
                let wd = std::path::Path::new(if c.working_dir.is_empty() { "/" } else { &c.working_dir }).join(rest);
                c.working_dir = wd.to_string_lossy().into_owned();
            }
            "stopsignal" => c.stop_signal = Some(rest.to_string()),
            "healthcheck" | "onbuild" => {
                return Err(EngineError::InvalidParameter(format!(
                    "{} is not supported as a change command by Berth",
                    inst.to_ascii_uppercase()
                )))
            }
            _ => {
                return Err(EngineError::InvalidParameter(format!(
                    "{} is not a valid change command",
                    inst.to_ascii_uppercase()
                )))
            }
        }
    }
    Ok(())
}

/// Docker's `merge`: what the commit's config leaves empty comes from the container's.
fn merge(user: &mut ContainerConfig, ctr: &ContainerConfig) {
    if user.user.is_empty() {
        user.user = ctr.user.clone();
    }
    match (&mut user.exposed_ports, &ctr.exposed_ports) {
        (Some(u), Some(c)) if !u.is_empty() => c.iter().for_each(|(k, v)| {
            u.entry(k.clone()).or_insert(v.clone());
        }),
        (Some(u), None) if !u.is_empty() => {}
        (u, c) => *u = c.clone(),
    }
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    if user.env.is_empty() {
        user.env = ctr.env.clone();
    } else {
        for e in &ctr.env {
            if !user.env.iter().any(|u| key(u) == key(e)) {
                user.env.push(e.clone());
            }
        }
    }
    for (k, v) in &ctr.labels {
        user.labels.entry(k.clone()).or_insert(v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = ctr.cmd.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = ctr.entrypoint.clone();
        }
    }
    if user.working_dir.is_empty() {
        user.working_dir = ctr.working_dir.clone();
    }
    match (&mut user.volumes, &ctr.volumes) {
        (Some(u), Some(c)) if !u.is_empty() => u.extend(c.clone()),
        (Some(u), None) if !u.is_empty() => {}
        (u, c) => *u = c.clone(),
    }
    if user.stop_signal.as_deref().unwrap_or("").is_empty() {
        user.stop_signal = ctr.stop_signal.clone();
    }
}

impl Engine {
    /// `GET /containers/{id}/changes`.
    pub fn changes(&self, key: &str) -> Result<Vec<Change>> {
        let c = self.get(key)?;
        Ok(without_init_paths(self.images.diff(&c.id)?))
    }

    /// `GET /containers/{id}/export`: the container's whole filesystem as one tar.
    pub fn export(&self, key: &str, out: impl Write) -> Result<()> {
        let c = self.get(key)?;
        self.images.export(&c.id, out)?;
        self.emit(&c.record(), "export");
        Ok(())
    }

    /// `POST /commit`: a new image from the container's changes; returns its ID.
    pub fn commit(&self, key: &str, req: CommitRequest) -> Result<String> {
        let c = self.get(key)?;
        let rec = c.record();
        let reference = if req.repo.is_empty() {
            None
        } else {
            let tag = if req.tag.is_empty() { "latest" } else { &req.tag };
            let name = format!("{}:{tag}", req.repo);
            let r = Reference::parse(&name)
                .map_err(|e| EngineError::InvalidParameter(format!("invalid reference format {name:?}: {e}")))?;
            if r.digest().is_some() {
                return Err(EngineError::InvalidParameter(format!(
                    "invalid reference format {name:?}: a commit cannot be named by digest"
                )));
            }
            Some(r)
        };
        let mut config = req.config.unwrap_or_else(|| rec.config.clone());
        apply_changes(&mut config, &req.changes)?;
        merge(&mut config, &rec.config);
        let keys = |m: &Option<BTreeMap<String, serde_json::Value>>| m.as_ref().map(|m| m.keys().cloned().collect());
        let opts = CommitOptions {
            config: ConfigChanges {
                // Empty rather than absent, so the parent image's value is replaced too.
                cmd: Some(config.cmd.clone().unwrap_or_default()),
                entrypoint: Some(config.entrypoint.clone().unwrap_or_default()),
                env: Some(config.env.clone()),
                working_dir: Some(config.working_dir.clone()),
                user: Some(config.user.clone()),
                exposed_ports: keys(&config.exposed_ports),
                labels: Some(config.labels.clone()),
                volumes: keys(&config.volumes),
                stop_signal: config.stop_signal.clone(),
            },
            author: Some(req.author.clone()).filter(|a| !a.is_empty()),
            comment: Some(req.comment.clone()).filter(|a| !a.is_empty()),
            created_by: Some(rec.config.cmd.clone().unwrap_or_default().join(" ")),
            reference: reference.clone(),
        };
        // Paused, as Docker does by default, so the layer is read while nothing writes.
        let paused = req.pause && rec.state.running && !rec.state.paused && self.pause(&c.id).is_ok();
        let committed = self.images.commit(&c.id, &opts);
        if paused {
            let _ = self.unpause(&c.id);
        }
        let id = committed?.image_id.to_string();
        let image_ref = reference.map(|r| r.familiar()).unwrap_or_default();
        self.emit_with(
            &rec,
            "commit",
            &[
                ("comment", req.comment),
                ("imageID", id.clone()),
                ("imageRef", image_ref),
            ],
        );
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(path: &str, kind: ChangeKind) -> Change {
        Change {
            path: path.into(),
            kind,
        }
    }

    #[test]
    fn init_paths_hidden() {
        let got = without_init_paths(vec![
            ch("/etc", ChangeKind::Modified),
            ch("/etc/hostname", ChangeKind::Added),
            ch("/tmp", ChangeKind::Modified),
            ch("/tmp/x", ChangeKind::Added),
        ]);
        assert_eq!(
            got,
            vec![ch("/tmp", ChangeKind::Modified), ch("/tmp/x", ChangeKind::Added)]
        );
        // A real change under /etc keeps /etc.
        let got = without_init_paths(vec![
            ch("/etc", ChangeKind::Modified),
            ch("/etc/hosts", ChangeKind::Added),
            ch("/etc/passwd", ChangeKind::Modified),
        ]);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn change_commands() {
        let mut c = ContainerConfig {
            cmd: Some(vec!["sh".into()]),
            env: vec!["A=1".into()],
            ..Default::default()
        };
        apply_changes(
            &mut c,
            &[
                "ENV A=2 B=\"x y\"".into(),
                "CMD [\"cat\", \"/f\"]".into(),
                "LABEL k=v".into(),
                "EXPOSE 80".into(),
                "WORKDIR /srv".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.env, ["A=2", "B=x y"]);
        assert_eq!(c.cmd.as_deref().unwrap(), ["cat", "/f"]);
        assert_eq!(c.labels["k"], "v");
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert_eq!(c.working_dir, "/srv");
        apply_changes(&mut c, &["ENTRYPOINT echo hi".into()]).unwrap();
        assert_eq!(c.entrypoint.as_deref().unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert!(c.cmd.is_none());
        assert!(apply_changes(&mut c, &["RUN true".into()]).is_err());
    }

    #[test]
    fn merge_fills_from_the_container() {
        let ctr = ContainerConfig {
            cmd: Some(vec!["sleep".into()]),
            env: vec!["PATH=/bin".into(), "A=1".into()],
            working_dir: "/w".into(),
            ..Default::default()
        };
        let mut user = ContainerConfig {
            env: vec!["A=2".into()],
            ..Default::default()
        };
        merge(&mut user, &ctr);
        assert_eq!(user.env, ["A=2", "PATH=/bin"]);
        // What the change set is kept when the container has none of it (EXPOSE and
        // VOLUME were dropped before).
        let mut changed = ContainerConfig::default();
        apply_changes(&mut changed, &["EXPOSE 80".into(), "VOLUME /v".into()]).unwrap();
        merge(&mut changed, &ctr);
        assert!(changed.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert!(changed.volumes.as_ref().unwrap().contains_key("/v"));
        assert_eq!(user.cmd.as_deref().unwrap(), ["sleep"]);
        assert_eq!(user.working_dir, "/w");
    }
}
