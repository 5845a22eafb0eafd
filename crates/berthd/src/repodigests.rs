//! RepoDigests: the `repo@sha256:…` references Docker records for images pulled from or
//! pushed to a registry (`docker images --digests`, inspect). Kept in
//! `<data-root>/image/repodigests.json` (written atomically): target digest → references.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

pub struct RepoDigests {
    path: PathBuf,
    map: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl RepoDigests {
    pub fn open(data_root: &std::path::Path) -> RepoDigests {
        let path = data_root.join("image").join("repodigests.json");
        let map = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        RepoDigests {
            path,
            map: Mutex::new(map),
        }
    }

    /// Record `repo@digest` for the image whose name points at `target`.
    pub fn add(&self, target: &str, repo: &str, digest: &str) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(target.to_string())
            .or_default()
            .insert(format!("{repo}@{digest}"));
        if let Ok(b) = serde_json::to_vec(&*m) {
            let _ = berth_runtime::fsutil::atomic_write(&self.path, &b);
        }
    }

    /// The references of `target` whose repository still names it (`names`: its tags).
    pub fn of(&self, target: &str, names: &[String]) -> Vec<String> {
        let m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let repos: BTreeSet<&str> = names
            .iter()
            .map(|n| n.rsplit_once(':').map_or(n.as_str(), |(r, _)| r))
            .collect();
        m.get(target)
            .map(|refs| {
                refs.iter()
                    .filter(|r| r.split_once('@').is_some_and(|(repo, _)| repos.contains(repo)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_per_target_and_shown_while_the_repo_names_it() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("image")).unwrap();
        let r = RepoDigests::open(d.path());
        r.add("sha256:t", "localhost:5000/x", "sha256:m");
        assert_eq!(
            r.of("sha256:t", &["localhost:5000/x:1".into()]),
            ["localhost:5000/x@sha256:m"]
        );
        assert!(r.of("sha256:t", &["other:1".into()]).is_empty());
        let again = RepoDigests::open(d.path());
        assert_eq!(again.of("sha256:t", &["localhost:5000/x:2".into()]).len(), 1);
    }
}
