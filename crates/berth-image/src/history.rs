//! `GET /images/{name}/history`: an image's config history with layer sizes.

use std::io::{self, BufRead, BufReader, Read};

use crate::digest::Digest;
use crate::images::{familiar_name, ImageError, ImageStore, Result};
use crate::manifest;
use crate::snapshots;
use crate::timefmt;
use crate::unpack::Compression;

/// What Docker shows for history entries of layers it has no local image for.
pub const MISSING_ID: &str = "<missing>";

/// One entry of the Docker API's image history, newest first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// The image ID on the newest entry, [`MISSING_ID`] on the others (Docker keeps no
    /// parent images for pulled layers either).
    #[serde(rename = "Id")]
    pub id: String,
    /// Unix seconds (0 when the entry has no valid date).
    pub created: i64,
    pub created_by: String,
    /// The image's names on the newest entry; null elsewhere, as Docker sends it.
    #[serde(serialize_with = "null_if_empty")]
    pub tags: Vec<String>,
    /// Uncompressed size of the layer the entry created; 0 for empty layers.
    pub size: u64,
    pub comment: String,
}

fn null_if_empty<S: serde::Serializer>(v: &[String], s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::Serialize;
    match v.is_empty() {
        true => s.serialize_none(),
        false => v.serialize(s),
    }
}

impl ImageStore {
    /// The history of image `name` for this store's platform, newest first. Entries that
    /// are not `empty_layer` take the sizes of the image's layers in order. An image
    /// whose config has no history gets one entry per layer (Docker would show
    /// nothing; the sizes are more use).
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let image = self.resolve(name)?;
        let object = image.config_digest.to_string();
        let chains = snapshots::chain_ids(&image.diff_ids);
        let mut layer = 0usize;
        let next_size = |layer: &mut usize| -> Result<u64> {
            let i = *layer;
            let (Some(chain), Some(desc)) = (chains.get(i), image.manifest.layers().get(i)) else {
                return Err(ImageError::Invalid {
                    image: object.clone(),
                    problem: format!("history has more layer entries than the {} layers", chains.len()),
                });
            };
            *layer += 1;
            let snap = self.snapshots().get(chain).map_err(|source| ImageError::Snapshot {
                image: object.clone(),
                source: Box::new(source),
            })?;
            match snap {
                Some(info) => Ok(info.size),
                None => self.uncompressed_size(&manifest::descriptor_digest(desc, &object)?),
            }
        };

        let mut items = Vec::new();
        match image.config.history().as_deref() {
            Some(entries) if !entries.is_empty() => {
                for h in entries {
                    let size = match h.empty_layer().unwrap_or(false) {
                        true => 0,
                        false => next_size(&mut layer)?,
                    };
                    items.push(HistoryItem {
                        id: MISSING_ID.into(),
                        created: h.created().as_deref().and_then(timefmt::parse_rfc3339).unwrap_or(0),
                        created_by: h.created_by().clone().unwrap_or_default(),
                        tags: Vec::new(),
                        size,
                        comment: h.comment().clone().unwrap_or_default(),
                    });
                }
            }
            _ => {
                let created = image.config.created().as_deref().and_then(timefmt::parse_rfc3339);
                for _ in 0..chains.len() {
                    items.push(HistoryItem {
                        id: MISSING_ID.into(),
                        created: created.unwrap_or(0),
                        created_by: String::new(),
                        tags: Vec::new(),
                        size: next_size(&mut layer)?,
                        comment: String::new(),
                    });
                }
            }
        }
        items.reverse();
        if let Some(top) = items.first_mut() {
            top.id = image.config_digest.to_string();
            top.tags = self
                .records()?
                .into_iter()
                .filter(|(_, r)| r.target == image.target)
                .filter_map(|(k, _)| familiar_name(&k))
                .collect();
            top.tags.sort();
        }
        Ok(items)
    }

    /// Length of a layer blob once decompressed (for layers not unpacked yet).
    fn uncompressed_size(&self, blob: &Digest) -> Result<u64> {
        let path = self.blobs().blob_path(blob);
        let io_err = |source| ImageError::Io {
            op: "measure layer",
            path: path.clone(),
            source,
        };
        let mut input = BufReader::new(self.blobs().open_blob(blob)?);
        let head = input.fill_buf().map_err(io_err)?.to_vec();
        let mut plain: Box<dyn Read> = match Compression::from_magic(&head) {
            Compression::None => Box::new(input),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Compression::Zstd => Box::new(zstd::Decoder::with_buffer(input).map_err(io_err)?),
        };
        io::copy(&mut plain, &mut io::sink()).map_err(io_err)
    }
}
