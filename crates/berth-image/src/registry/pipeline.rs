//! Pull and unpack at once: [`Client::pull_and_unpack`].
//!
//! Unpacking a layer after its download means waiting for the whole blob, then reading
//! it back. Here each layer's bytes, as they arrive, go both to the blob store (hashed,
//! as in a plain pull) and through a bounded channel to a decompressing thread, which
//! feeds a thread extracting the tar into a snapshot. Download, gunzip and extraction
//! (with its diffID hash) run in parallel, and memory stays bounded by the channels.
//!
//! Safety of the overlap: the unpacking side sees the end of a layer's stream only
//! after the blob's digest was verified (a failed or lying download ends it with an
//! error, and the half-made snapshot is removed), and the snapshot is committed only if
//! the extracted tar has the diffID the image config (verified first) names.
//!
//! Layers are unpacked in order (a snapshot needs its parent). Only the layer being
//! unpacked holds its download back when the unpacking is slower; a later layer's
//! download never waits for its turn: once its channel is full it stops passing bytes
//! on, and its unpacking later reads the rest from the stored blob. A layer that is
//! already stored, or whose download resumes an interrupted one, is unpacked from the
//! stored blob when its turn comes.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::io::{Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::auth::lock;
use super::client::{Client, Repo};
use super::error::{RegistryError, Result};
use super::pull::{blob_error, Descriptor, PullOptions, Pulled};
use crate::digest::Digest;
use crate::reference::Reference;
use crate::snapshots::{self, SnapshotError, Snapshots};
use crate::store::BlobStore;
use crate::unpack::{Compression, UnpackError};

/// Bytes per message between the threads.
const CHUNK: usize = 256 * 1024;
/// Messages a channel holds before its writer waits: bounds memory to a few MiB.
const DEPTH: usize = 8;
/// How often written data is pushed towards the disk while unpacking (see `Writeback`).
const WRITEBACK_EVERY: Duration = Duration::from_millis(200);

/// What travels from a layer's download to its unpacking.
pub(crate) enum Msg {
    Data(Vec<u8>),
    /// The bytes sent were the whole blob, verified.
    End,
    /// The download failed (why).
    Fail(String),
    /// The blob is stored, verified: read it (from where the stream stopped, if any).
    Stored,
}

/// The sending side of one layer's stream, used by the thread downloading it.
pub(crate) struct Tee {
    tx: Mutex<Option<SyncSender<Msg>>>,
    /// Some bytes went through the channel.
    started: AtomicBool,
    /// Bytes stopped going through it; the rest is to be read from the store.
    detached: AtomicBool,
    /// This layer's place in the unpacking order, and the one being unpacked now.
    slot: usize,
    active: Arc<AtomicUsize>,
}

impl Tee {
    fn new(tx: SyncSender<Msg>, slot: usize, active: Arc<AtomicUsize>) -> Tee {
        Tee {
            tx: Mutex::new(Some(tx)),
            started: AtomicBool::new(false),
            detached: AtomicBool::new(false),
            slot,
            active,
        }
    }

    fn send(&self, msg: Msg) {
        let mut tx = lock(&self.tx);
        // The unpacking side gave up (it failed): stop passing bytes on.
        if tx.as_ref().is_some_and(|t| t.send(msg).is_err()) {
            *tx = None;
        }
    }

    fn data(&self, chunk: Vec<u8>) {
        if self.detached.load(Ordering::Relaxed) {
            return;
        }
        if self.active.load(Ordering::Acquire) == self.slot {
            self.started.store(true, Ordering::Relaxed);
            self.send(Msg::Data(chunk));
            return;
        }
        // Not its turn yet: never hold the download back (the network is usually the
        // slower side, and the other downloads would wait behind this one).
        let mut tx = lock(&self.tx);
        match tx.as_ref().map(|t| t.try_send(Msg::Data(chunk))) {
            Some(Ok(())) => self.started.store(true, Ordering::Relaxed),
            Some(Err(TrySendError::Full(_))) => self.detached.store(true, Ordering::Relaxed),
            Some(Err(TrySendError::Disconnected(_))) => *tx = None,
            None => {}
        }
    }

    /// The blob's fetch is over: end the stream, or say where the rest is.
    pub(crate) fn finish(&self, result: std::result::Result<(), String>) {
        let msg = match result {
            Ok(()) if self.started.load(Ordering::Relaxed) && !self.detached.load(Ordering::Relaxed) => Msg::End,
            Ok(()) => Msg::Stored,
            Err(why) => Msg::Fail(why),
        };
        self.send(msg);
        lock(&self.tx).take();
    }
}

/// Passes what it reads on to a [`Tee`], in chunks of [`CHUNK`] bytes.
pub(crate) struct TeeReader<'a, R> {
    inner: R,
    tee: Option<&'a Tee>,
    buf: Vec<u8>,
}

impl<'a, R: Read> TeeReader<'a, R> {
    pub fn new(inner: R, tee: Option<&'a Tee>) -> Self {
        TeeReader {
            inner,
            tee,
            buf: Vec::new(),
        }
    }

    /// Send what is buffered (call once the reader is exhausted).
    pub fn flush(&mut self) {
        if let Some(t) = self.tee.filter(|_| !self.buf.is_empty()) {
            t.data(std::mem::take(&mut self.buf));
        }
    }
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        if self.tee.is_some() {
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(CHUNK);
            }
            self.buf.extend_from_slice(&out[..n]);
            if self.buf.len() >= CHUNK {
                self.flush();
            }
        }
        Ok(n)
    }
}

/// The receiving side of a stream, as a reader: EOF at `End`, an error at `Fail` or
/// when the sender went away without ending; at `Stored`, the rest comes from the
/// stored blob (`source`), from the offset the stream had reached.
struct ChannelReader<'a> {
    rx: Receiver<Msg>,
    cur: Vec<u8>,
    pos: usize,
    /// Bytes handed out so far.
    consumed: u64,
    done: bool,
    source: Option<(&'a BlobStore, &'a Digest)>,
    file: Option<File>,
}

impl<'a> ChannelReader<'a> {
    fn new(rx: Receiver<Msg>, first: Vec<u8>, source: Option<(&'a BlobStore, &'a Digest)>) -> Self {
        ChannelReader {
            rx,
            cur: first,
            pos: 0,
            consumed: 0,
            done: false,
            source,
            file: None,
        }
    }

    fn open_rest(&mut self) -> io::Result<()> {
        let (store, digest) = self
            .source
            .ok_or_else(|| io::Error::other("the stream stopped early"))?;
        let mut file = store.open_blob(digest).map_err(io::Error::other)?;
        file.seek(SeekFrom::Start(self.consumed))?;
        self.file = Some(file);
        Ok(())
    }
}

impl Read for ChannelReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = &mut self.file {
            return f.read(out);
        }
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Msg::Data(v)) => (self.cur, self.pos) = (v, 0),
                Ok(Msg::End) => self.done = true,
                Ok(Msg::Stored) => {
                    self.open_rest()?;
                    return self.read(out);
                }
                Ok(Msg::Fail(why)) => return Err(io::Error::other(format!("download failed: {why}"))),
                Err(_) => return Err(io::Error::other("the download stopped")),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        self.consumed += n as u64;
        Ok(n)
    }
}

/// What [`Client::pull_and_unpack`] did.
#[derive(Debug, Clone)]
pub struct PulledUnpacked {
    pub pulled: Pulled,
    /// chainIDs of the image's layers, bottom first; every one is a complete snapshot.
    pub chain_ids: Vec<Digest>,
    /// Layers unpacked by this call (the others had snapshots already).
    pub unpacked: Vec<Digest>,
}

#[derive(serde::Deserialize)]
struct ConfigDoc {
    rootfs: RootFs,
}

#[derive(serde::Deserialize)]
struct RootFs {
    diff_ids: Vec<Digest>,
}

impl Client {
    /// [`pull`](Self::pull) `reference` into `store` and unpack its layers into
    /// `snapshots` while they download (see the [module documentation](self)). Blobs end
    /// up stored exactly as by `pull`; layers that have a snapshot are not unpacked again.
    pub fn pull_and_unpack(
        &self,
        reference: &Reference,
        store: &BlobStore,
        snapshots: &Snapshots,
        options: &PullOptions,
    ) -> Result<PulledUnpacked> {
        self.via_pull_endpoints(reference, |repo| {
            self.pull_unpack_from(repo, reference, store, snapshots, options)
        })
    }

    fn pull_unpack_from(
        &self,
        repo: &Repo,
        reference: &Reference,
        store: &BlobStore,
        snapshots: &Snapshots,
        options: &PullOptions,
    ) -> Result<PulledUnpacked> {
        let image = self.resolve_image(repo, reference, options)?;
        let progress = options.progress.as_deref();
        // The config first: its diffIDs are what every unpacked layer is checked against.
        let mut downloaded = Vec::new();
        if self.fetch_blob(repo, &image.config, store, progress, None)? {
            downloaded.push(image.config.digest.clone());
        }
        let diff_ids = read_diff_ids(repo, store, &image.config.digest)?;
        if diff_ids.len() != image.layers.len() {
            return Err(RegistryError::BadManifest {
                registry: repo.registry.clone(),
                reference: image.label.clone(),
                what: format!(
                    "{} layers but its config lists {} diffIDs",
                    image.layers.len(),
                    diff_ids.len()
                ),
            });
        }
        let chain_ids = snapshots::chain_ids(&diff_ids);
        let unpack_err = |layer: &Digest, source: SnapshotError| RegistryError::Unpack {
            registry: repo.registry.clone(),
            repository: repo.name.clone(),
            layer: layer.clone(),
            source: Box::new(source),
        };

        // A stream per blob of a layer still to unpack (to its first such layer; a blob
        // listed twice is fetched once, and its later layers are unpacked from the store).
        let active = Arc::new(AtomicUsize::new(0));
        let mut blobs: Vec<Descriptor> = Vec::new();
        let mut tees: Vec<Option<Tee>> = Vec::new();
        let mut work: Vec<(usize, Receiver<Msg>)> = Vec::new();
        for (i, layer) in image.layers.iter().enumerate() {
            let missing = snapshots
                .get(&chain_ids[i])
                .map_err(|e| unpack_err(&layer.digest, e))?
                .is_none();
            let at = match blobs.iter().position(|b| b.digest == layer.digest) {
                Some(at) => at,
                None => {
                    blobs.push(layer.clone());
                    tees.push(None);
                    blobs.len() - 1
                }
            };
            if !missing {
                continue;
            }
            let (tx, rx) = sync_channel(DEPTH);
            match &tees[at] {
                Some(_) => {
                    // Streamed to an earlier layer, hence stored before that one ends.
                    let _ = tx.send(Msg::Stored);
                }
                None => tees[at] = Some(Tee::new(tx, work.len(), active.clone())),
            }
            work.push((i, rx));
        }

        let writeback = Writeback::new(store.root());
        let (fetched, unpacked) = std::thread::scope(|scope| {
            let unpacker = scope.spawn(|| -> Result<Vec<Digest>> {
                let mut done = Vec::new();
                for (slot, (i, rx)) in work.into_iter().enumerate() {
                    active.store(slot, Ordering::Release);
                    let layer = &image.layers[i];
                    let parent = i.checked_sub(1).map(|p| &chain_ids[p]);
                    unpack_one(store, snapshots, layer, parent, &diff_ids[i], rx)
                        .map_err(|e| unpack_err(&layer.digest, e))?;
                    done.push(layer.digest.clone());
                }
                Ok(done)
            });
            let flusher = scope.spawn(|| writeback.run());
            let fetched = self.download_all(repo, store, &blobs, progress, &tees);
            // Streams of layers never started end here, so the unpacker cannot wait forever.
            drop(tees);
            // A panic in the unpacker is a bug: let it propagate as one.
            let unpacked = unpacker.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            writeback.stop();
            let _ = flusher.join();
            (fetched, unpacked)
        });
        downloaded.extend(fetched?);
        let unpacked = unpacked?;
        let pulled = self.finish_pull(repo, store, image, downloaded)?;
        Ok(PulledUnpacked {
            pulled,
            chain_ids,
            unpacked,
        })
    }
}

fn read_diff_ids(repo: &Repo, store: &BlobStore, config: &Digest) -> Result<Vec<Digest>> {
    let file = store.open_blob(config).map_err(|e| blob_error(repo, config, e))?;
    let mut bytes = Vec::new();
    file.take(super::MANIFEST_SIZE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| {
            blob_error(
                repo,
                config,
                crate::store::StoreError::Read {
                    blob: config.to_string(),
                    source,
                },
            )
        })?;
    let bad = |what: String| RegistryError::BadManifest {
        registry: repo.registry.clone(),
        reference: format!("{}@{config}", repo.name),
        what,
    };
    if bytes.len() as u64 > super::MANIFEST_SIZE_LIMIT {
        return Err(bad("image config is too large".into()));
    }
    let doc: ConfigDoc = serde_json::from_slice(&bytes).map_err(|e| bad(format!("image config: {e}")))?;
    Ok(doc.rootfs.diff_ids)
}

/// Unpack one layer as the snapshot on `parent`, from its stream or the stored blob.
fn unpack_one(
    store: &BlobStore,
    snapshots: &Snapshots,
    layer: &Descriptor,
    parent: Option<&Digest>,
    diff_id: &Digest,
    rx: Receiver<Msg>,
) -> std::result::Result<(), SnapshotError> {
    let stream_failed = |why: String| SnapshotError::Unpack(UnpackError::Read(io::Error::other(why)));
    match rx.recv() {
        Ok(Msg::Data(first)) => {
            let reader = ChannelReader::new(rx, first, Some((store, &layer.digest)));
            decompress_into(snapshots, parent, diff_id, layer, reader)
        }
        Ok(Msg::End) => decompress_into(snapshots, parent, diff_id, layer, io::empty()),
        Ok(Msg::Stored) => {
            let blob = store
                .open_blob(&layer.digest)
                .map_err(|e| stream_failed(e.to_string()))?;
            decompress_into(snapshots, parent, diff_id, layer, blob)
        }
        Ok(Msg::Fail(why)) => Err(stream_failed(format!("download failed: {why}"))),
        Err(_) => Err(stream_failed("the download did not start".into())),
    }
}

/// Extract `raw` (the layer as stored) into a snapshot, decompressing in a thread of
/// its own so that gunzip and extraction overlap.
fn decompress_into(
    snapshots: &Snapshots,
    parent: Option<&Digest>,
    diff_id: &Digest,
    layer: &Descriptor,
    mut raw: impl Read + Send,
) -> std::result::Result<(), SnapshotError> {
    let media_type = Some(layer.media_type.as_str()).filter(|m| !m.is_empty());
    let declared = media_type.map(Compression::from_media_type).transpose()?;
    let mut head = Vec::with_capacity(4);
    (&mut raw)
        .take(4)
        .read_to_end(&mut head)
        .map_err(|e| SnapshotError::Unpack(UnpackError::Read(e)))?;
    let found = Compression::from_magic(&head);
    if let (Some(mt), Some(declared)) = (media_type, declared) {
        // As in unpack: "uncompressed" over a compressed stream is tolerated.
        if declared != found && declared != Compression::None {
            return Err(UnpackError::CompressionMismatch {
                media_type: mt.to_string(),
                declared,
                found,
            }
            .into());
        }
    }
    let raw = io::Cursor::new(head).chain(raw);
    if found == Compression::None {
        return snapshots.apply_layer(parent, raw, None, Some(diff_id)).map(|_| ());
    }
    let (tx, rx) = sync_channel(DEPTH);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let input = BufReader::with_capacity(CHUNK, raw);
            let decoder: io::Result<Box<dyn Read>> = match found {
                Compression::Gzip => Ok(Box::new(flate2::bufread::MultiGzDecoder::new(input))),
                _ => zstd::stream::read::Decoder::with_buffer(input).map(|d| Box::new(d) as Box<dyn Read>),
            };
            let result = decoder.and_then(|mut d| pump(&mut d, &tx));
            let _ = tx.send(match result {
                Ok(()) => Msg::End,
                Err(e) => Msg::Fail(format!("decompressing: {e}")),
            });
        });
        let tar = ChannelReader::new(rx, Vec::new(), None);
        // Dropping `tar` on an early error tells the decompressor to stop.
        snapshots.apply_layer(parent, tar, None, Some(diff_id)).map(|_| ())
    })
}

/// Read `input` to its end in chunks sent to `tx`.
fn pump(input: &mut dyn Read, tx: &SyncSender<Msg>) -> io::Result<()> {
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match input.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        chunk.truncate(filled);
        if tx.send(Msg::Data(chunk)).is_err() {
            return Err(io::Error::other("the unpacking side stopped"));
        }
    }
}

/// Pushes dirty data of the store's file system to the disk while a pull writes it, so
/// that the durability barriers at the end (the blob's fsync, the snapshot's syncfs)
/// find little left to write, instead of all of it.
struct Writeback {
    root: Option<File>,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Writeback {
    fn new(root: &Path) -> Writeback {
        Writeback {
            // Without the directory there is simply no early writeback.
            root: File::open(root).ok(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    fn run(&self) {
        let Some(root) = &self.root else { return };
        let mut stopped = lock(&self.stop);
        loop {
            let (guard, _) = self
                .wake
                .wait_timeout(stopped, WRITEBACK_EVERY)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            stopped = guard;
            if *stopped {
                return;
            }
            drop(stopped);
            // Errors here are reported by the barriers that matter, at the end.
            let _ = nix::unistd::syncfs(root.as_fd());
            stopped = lock(&self.stop);
        }
    }

    fn stop(&self) {
        *lock(&self.stop) = true;
        self.wake.notify_all();
    }
}
