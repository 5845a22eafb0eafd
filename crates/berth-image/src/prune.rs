//! `docker image prune` and garbage collection of content no image or container uses.
//!
//! Crash safety: image records are removed first, in one transaction; content is deleted
//! only after, and only when nothing recorded reaches it, each deletion on its own
//! atomic (a snapshot's record goes before its directory, see [`Snapshots::remove`]). A
//! crash anywhere leaves every remaining image and container complete, plus some garbage
//! that the next collection (or, for snapshot directories, the next open) removes.
//!
//! Concurrency: pulls, loads, imports and commits store blobs and snapshots before they
//! name the image that uses them. Content younger than [`PruneOptions::grace`] is
//! therefore never collected; the grace must outlast the longest such operation.
//!
//! [`Snapshots::remove`]: crate::snapshots::Snapshots::remove

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::digest::Digest;
use crate::images::{familiar_name, ImageError, ImageStore, Result};
use crate::reach::{self, Content};

/// Default [`PruneOptions::grace`].
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneOptions {
    /// Every image no container uses, not only dangling (untagged) ones.
    pub all: bool,
    /// Docker's `label=<key>[=<value>]` and `label!=<key>[=<value>]` filters; all must hold.
    pub filters: Vec<String>,
    /// Content stored more recently than this is kept (see the module docs).
    pub grace: Duration,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            all: false,
            filters: Vec::new(),
            grace: DEFAULT_GRACE,
        }
    }
}

/// What garbage collection deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs: Vec<Digest>,
    pub snapshots: Vec<Digest>,
    /// Bytes of blob files and snapshot files deleted.
    pub space_reclaimed: u64,
}

/// What a prune removed (Docker's `ImagesDeleted` + `SpaceReclaimed`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Names removed (familiar form).
    pub untagged: Vec<String>,
    /// Targets (manifest or index digests) of the images removed.
    pub deleted: Vec<Digest>,
    pub gc: GcReport,
}

enum LabelFilter {
    Has {
        key: String,
        value: Option<String>,
        want: bool,
    },
}

fn parse_filters(filters: &[String]) -> Result<Vec<LabelFilter>> {
    filters
        .iter()
        .map(|f| {
            let (want, rest) = match (f.strip_prefix("label!="), f.strip_prefix("label=")) {
                (Some(r), _) => (false, r),
                (None, Some(r)) => (true, r),
                _ => {
                    return Err(ImageError::Invalid {
                        image: "<prune>".into(),
                        problem: format!("unsupported filter {f:?} (label=… and label!=… are)"),
                    })
                }
            };
            let (key, value) = match rest.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (rest.to_string(), None),
            };
            Ok(LabelFilter::Has { key, value, want })
        })
        .collect()
}

impl ImageStore {
    /// Remove dangling images (with `all`, every image) that no container's rootfs uses
    /// and that match the label filters, then collect garbage.
    pub fn prune(&self, opts: &PruneOptions) -> Result<PruneReport> {
        let filters = parse_filters(&opts.filters)?;
        let _guard = self.guard();
        let used: BTreeSet<Digest> = self.rootfs_records()?.into_values().map(|r| r.manifest).collect();
        let mut by_target: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
        for (key, rec) in self.records()? {
            by_target.entry(rec.target).or_default().push(key);
        }
        let mut report = PruneReport::default();
        let mut keys = Vec::new();
        let mut theirs = Content::default();
        for (target, names) in by_target {
            let dangling = names.iter().all(|k| familiar_name(k).is_none());
            if !(dangling || opts.all)
                || reach::manifests_of(self.blobs(), &target)
                    .iter()
                    .any(|m| used.contains(m))
            {
                continue;
            }
            if !filters.is_empty() && !self.labels_match(&target, &filters) {
                continue;
            }
            report.untagged.extend(names.iter().filter_map(|k| familiar_name(k)));
            theirs.extend(reach::content_of(self.blobs(), &target, false).unwrap_or_default());
            report.deleted.push(target);
            keys.extend(names);
        }
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.remove_records(&keys)?;
        // The pruned images' own content goes regardless of age, as with `remove`.
        report.gc = self.gc_locked(opts.grace, &theirs)?;
        Ok(report)
    }

    fn labels_match(&self, target: &Digest, filters: &[LabelFilter]) -> bool {
        // An image whose config cannot be read matches no label filter.
        let Ok(image) = self.resolve(&target.to_string()) else {
            return false;
        };
        let labels = image.config.labels_of_config().cloned().unwrap_or_default();
        filters.iter().all(|LabelFilter::Has { key, value, want }| {
            let has = match (labels.get(key), value) {
                (Some(v), Some(want_v)) => v == want_v,
                (Some(_), None) => true,
                (None, _) => false,
            };
            has == *want
        })
    }

    /// Delete every blob and snapshot that no image and no container rootfs reaches and
    /// that is older than `grace`, and leftovers of crashed ingests.
    pub fn gc(&self, grace: Duration) -> Result<GcReport> {
        let _guard = self.guard();
        self.gc_locked(grace, &Content::default())
    }

    /// Collect garbage; what `exempt` lists is collected even when younger than `grace`.
    fn gc_locked(&self, grace: Duration, exempt: &Content) -> Result<GcReport> {
        let live = self.live_content()?;
        let cutoff = SystemTime::now().checked_sub(grace).unwrap_or(SystemTime::UNIX_EPOCH);
        let old_enough = |path: &Path| {
            std::fs::symlink_metadata(path)
                .ok()
                .and_then(|m| {
                    let changed = Duration::new(m.ctime().max(0) as u64, m.ctime_nsec().clamp(0, 999_999_999) as u32);
                    SystemTime::UNIX_EPOCH.checked_add(changed)
                })
                .is_some_and(|t| t <= cutoff)
        };
        let mut report = GcReport::default();
        let snap_err = |source| ImageError::Snapshot {
            image: "<gc>".into(),
            source: Box::new(source),
        };
        for info in self.snapshots().list().map_err(snap_err)? {
            let path = self.snapshots().path(&info.chain_id);
            if live.snapshots.contains(&info.chain_id)
                || !(exempt.snapshots.contains(&info.chain_id) || old_enough(&path))
            {
                continue;
            }
            let size = tree_size(&path);
            if self.snapshots().remove(&info.chain_id).map_err(snap_err)? {
                report.space_reclaimed += size;
                report.snapshots.push(info.chain_id);
            }
        }
        for blob in self.blobs().list()? {
            let path = self.blobs().blob_path(&blob);
            if live.blobs.contains(&blob) || !(exempt.blobs.contains(&blob) || old_enough(&path)) {
                continue;
            }
            let size = std::fs::symlink_metadata(&path).map_or(0, |m| m.len());
            match self.blobs().delete(&blob) {
                Ok(()) => {
                    report.space_reclaimed += size;
                    report.blobs.push(blob);
                }
                Err(crate::store::StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.blobs().cleanup_ingest()?;
        Ok(report)
    }

    /// Everything named images and container rootfs reach. Strict: an image whose
    /// documents cannot be read stops the collection rather than losing its layers.
    fn live_content(&self) -> Result<Content> {
        let mut live = Content::default();
        let strict = |key: &str, target: &Digest| {
            reach::content_of(self.blobs(), target, true).map_err(|e| ImageError::Invalid {
                image: key.to_string(),
                problem: format!("cannot tell what content it uses ({e}); remove or re-pull it before collecting"),
            })
        };
        for (key, rec) in self.records()? {
            live.extend(strict(&key, &rec.target)?);
        }
        for (id, rec) in self.rootfs_records()? {
            live.extend(strict(&format!("of container {id}"), &rec.manifest)?);
            live.snapshots.extend(rec.chain_ids);
        }
        Ok(live)
    }
}

/// Bytes in the regular files and symlinks under `path` (best effort: for the report).
fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}
