//! Container logs on disk, in the formats of Docker's drivers: `json-file` (one JSON
//! object a line, `{"log":"text\n","stream":"stdout","time":"RFC3339Nano"}`) and
//! `local` (length-framed protobuf records, `local`), with `max-size`/`max-file`
//! rotation (`name`, `name.1`, … oldest last; `name.N.gz` with `compress`). The monitor
//! writes; berthd reads.

pub mod local;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How records are written: Docker's `json-file` or `local` driver format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    #[default]
    JsonFile,
    Local,
}

/// Where and how a container's log is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    #[serde(default)]
    pub format: Format,
    pub max_size: Option<u64>,
    pub max_file: u32,
    /// gzip rotated files (`name.N.gz`).
    #[serde(default)]
    pub compress: bool,
}

/// Docker splits lines longer than this into several records.
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
    /// The stream byte of Docker's multiplexed framing.
    pub fn frame_id(self) -> u8 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }
}

#[derive(Serialize)]
struct Record<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    opts: LogOptions,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(path: &Path, opts: &LogOptions) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            opts: LogOptions {
                max_file: opts.max_file.max(1),
                ..opts.clone()
            },
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Log a chunk of a stream's output; complete lines are written at once.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> std::io::Result<()> {
        let idx = (stream == Stream::Stderr) as usize;
        self.partial[idx].extend_from_slice(data);
        loop {
            let buf = &self.partial[idx];
            let cut = match buf.iter().position(|&b| b == b'\n') {
                Some(p) if p < MAX_LINE => p + 1,
                _ if buf.len() >= MAX_LINE => MAX_LINE,
                _ => break,
            };
            let line: Vec<u8> = self.partial[idx].drain(..cut).collect();
            self.record(stream, &line)?;
        }
        Ok(())
    }

    /// Write out unterminated text (at the end of the stream).
    pub fn flush_partial(&mut self) -> std::io::Result<()> {
        for (idx, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
            if !self.partial[idx].is_empty() {
                let line = std::mem::take(&mut self.partial[idx]);
                self.record(stream, &line)?;
            }
        }
        Ok(())
    }

    fn record(&mut self, stream: Stream, line: &[u8]) -> std::io::Result<()> {
        let out = match self.opts.format {
            Format::JsonFile => {
                let text = String::from_utf8_lossy(line);
                let time = berth_runtime::state::now_rfc3339();
                let mut out = serde_json::to_vec(&Record {
                    log: &text,
                    stream: stream.name(),
                    time: &time,
                })
                .map_err(std::io::Error::other)?;
                out.push(b'\n');
                out
            }
            Format::Local => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let (text, partial) = match line.strip_suffix(b"\n") {
                    Some(t) => (t, false),
                    None => (line, true),
                };
                local::encode(stream, text, partial, now.as_nanos() as i64)
            }
        };
        if let Some(max) = self.opts.max_size {
            if self.size > 0 && self.size + out.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.file.write_all(&out)?;
        self.size += out.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.opts.max_file <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let gz = self.opts.compress;
        for i in (2..self.opts.max_file).rev() {
            let from = rotated_file(&self.path, i - 1, gz);
            if from.exists() {
                std::fs::rename(&from, rotated_file(&self.path, i, gz))?;
            }
        }
        let first = rotated(&self.path, 1);
        std::fs::rename(&self.path, &first)?;
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = 0;
        if gz {
            // Compressed here, between two reads of the container's output: the monitor
            // has no other thread, and a fast level keeps the pause short (~50 MB/s).
            compress(&first, &rotated_file(&self.path, 1, true))?;
        }
        Ok(())
    }
}

/// gzip `from` into `to` (through a temporary file, then renamed), removing `from`.
fn compress(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut tmp = to.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut src = File::open(from)?;
    let mut enc = flate2::write::GzEncoder::new(File::create(&tmp)?, flate2::Compression::fast());
    std::io::copy(&mut src, &mut enc)?;
    enc.finish()?;
    std::fs::rename(&tmp, to)?;
    std::fs::remove_file(from)
}

/// The n-th rotated file as written: `path.N`, or `path.N.gz` compressed.
fn rotated_file(path: &Path, n: u32, gz: bool) -> PathBuf {
    let p = rotated(path, n);
    if gz && n > 0 {
        let mut s = p.into_os_string();
        s.push(".gz");
        PathBuf::from(s)
    } else {
        p
    }
}

/// `path` for 0, `path.N` for the N-th older file.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

impl Entry {
    pub fn stream(&self) -> Stream {
        if self.stream == "stderr" {
            Stream::Stderr
        } else {
            Stream::Stdout
        }
    }
    /// Seconds and nanoseconds since the epoch.
    pub fn timestamp(&self) -> Option<(i64, u32)> {
        parse_rfc3339(&self.time)
    }
}

/// Seconds and nanoseconds of an RFC 3339 time (the ones we write, and clients'
/// filters).
pub fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    berth_image::timefmt::parse_rfc3339_nanos(s)
}

/// Which records `logs` wants.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub stdout: bool,
    pub stderr: bool,
    /// Only records at or after this time (seconds, nanos).
    pub since: Option<(i64, u32)>,
    /// Only records before this time.
    pub until: Option<(i64, u32)>,
    /// Only the last N records (after the other filters).
    pub tail: Option<usize>,
}

impl LogFilter {
    pub fn accepts(&self, e: &Entry) -> bool {
        let s = match e.stream() {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        };
        if !s {
            return false;
        }
        let t = e.timestamp();
        if let (Some(since), Some(t)) = (self.since, t) {
            if t < since {
                return false;
            }
        }
        if let (Some(until), Some(t)) = (self.until, t) {
            if t >= until {
                return false;
            }
        }
        true
    }
}

/// Read a log (with its rotated files, oldest first, compressed or not) up to its
/// current end; returns the entries and a `Follower` positioned at the end for `follow`.
pub fn read(path: &Path, opts: &LogOptions, filter: &LogFilter) -> std::io::Result<(Vec<Entry>, Follower)> {
    let mut out: VecDeque<Entry> = VecDeque::new();
    let keep = filter.tail;
    let mut push = |e: Entry| {
        if filter.accepts(&e) {
            out.push_back(e);
            if let Some(n) = keep {
                while out.len() > n {
                    out.pop_front();
                }
            }
        }
    };
    for n in (1..opts.max_file.max(1)).rev() {
        let gz = rotated_file(path, n, true);
        let src: Box<dyn Read> = if let Ok(f) = File::open(&gz) {
            Box::new(flate2::read::GzDecoder::new(f))
        } else if let Ok(f) = File::open(rotated(path, n)) {
            Box::new(f)
        } else {
            continue;
        };
        let mut d = Decoder::new(opts.format);
        let mut r = BufReader::new(src);
        loop {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let n = buf.len();
            d.feed(buf, &mut push)?;
            r.consume(n);
        }
    }
    let mut follower = Follower {
        path: path.to_path_buf(),
        reader: None,
        inode: 0,
        decoder: Decoder::new(opts.format),
    };
    for e in follower.poll()? {
        push(e);
    }
    Ok((out.into(), follower))
}

/// Records out of a byte stream of either format, across reads that cut them anywhere.
struct Decoder {
    format: Format,
    pending: Vec<u8>,
}

impl Decoder {
    fn new(format: Format) -> Decoder {
        Decoder {
            format,
            pending: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.pending.clear();
    }

    fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(Entry)) -> std::io::Result<()> {
        self.pending.extend_from_slice(data);
        let mut used = 0;
        match self.format {
            Format::JsonFile => {
                while let Some(nl) = self.pending[used..].iter().position(|&b| b == b'\n') {
                    if let Ok(e) = serde_json::from_slice::<Entry>(&self.pending[used..used + nl]) {
                        out(e);
                    }
                    used += nl + 1;
                }
            }
            Format::Local => loop {
                match local::decode(&self.pending[used..]) {
                    Ok(local::Decoded::Entry(e, n)) => {
                        out(e);
                        used += n;
                    }
                    Ok(local::Decoded::Incomplete) => break,
                    Err(e) => {
                        self.pending.clear();
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("damaged log record: {e}"),
                        ));
                    }
                }
            },
        }
        self.pending.drain(..used);
        Ok(())
    }
}

/// Reads what a log gains, following it across rotation.
pub struct Follower {
    path: PathBuf,
    reader: Option<File>,
    inode: u64,
    decoder: Decoder,
}

impl Follower {
    /// Every complete record appended since the last call.
    pub fn poll(&mut self) -> std::io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        loop {
            if self.reader.is_none() {
                match File::open(&self.path) {
                    Ok(f) => {
                        self.inode = f.metadata()?.ino();
                        self.reader = Some(f);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                    Err(e) => return Err(e),
                }
            }
            let r = self.reader.as_mut().expect("reader opened above");
            let mut buf = [0u8; 16 * 1024];
            loop {
                let n = r.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                self.decoder.feed(&buf[..n], &mut |e| out.push(e))?;
            }
            // Rotated (renamed away) or truncated: start over on the new file.
            let rotated = std::fs::metadata(&self.path)
                .map(|m| m.ino() != self.inode)
                .unwrap_or(false);
            let pos = r.stream_position()?;
            let truncated = std::fs::metadata(&self.path).map(|m| m.len() < pos).unwrap_or(false);
            if rotated || truncated {
                self.reader = None;
                self.decoder.clear();
                continue;
            }
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_partial_and_rotation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let opts = LogOptions {
            format: Format::JsonFile,
            max_size: Some(200),
            max_file: 3,
            compress: false,
        };
        let mut w = LogWriter::open(&p, &opts).unwrap();
        w.write(Stream::Stdout, b"hello\nwor").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"ld\n").unwrap();
        let all = LogFilter {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let (e, _) = read(&p, &opts, &all).unwrap();
        let logs: Vec<_> = e.iter().map(|e| (e.stream.as_str(), e.log.as_str())).collect();
        assert_eq!(
            logs,
            [("stdout", "hello\n"), ("stderr", "oops\n"), ("stdout", "world\n")]
        );
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes()).unwrap();
        }
        w.write(Stream::Stdout, b"end").unwrap();
        w.flush_partial().unwrap();
        assert!(rotated(&p, 1).exists() && rotated(&p, 2).exists() && !rotated(&p, 3).exists());
        let (e, _) = read(
            &p,
            &opts,
            &LogFilter {
                tail: Some(2),
                ..all.clone()
            },
        )
        .unwrap();
        assert_eq!(
            e.iter().map(|e| e.log.as_str()).collect::<Vec<_>>(),
            ["line 19\n", "end"]
        );
        let stderr_only = LogFilter { stdout: false, ..all };
        assert!(read(&p, &opts, &stderr_only).unwrap().0.is_empty());
    }

    #[test]
    fn follower_sees_appends() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l");
        let opts = LogOptions {
            format: Format::JsonFile,
            max_size: None,
            max_file: 1,
            compress: false,
        };
        let mut w = LogWriter::open(&p, &opts).unwrap();
        w.write(Stream::Stdout, b"a\n").unwrap();
        let (e, mut f) = read(&p, &opts, &LogFilter::default()).unwrap();
        assert!(e.is_empty(), "filter without streams accepts nothing");
        w.write(Stream::Stdout, b"b\n").unwrap();
        assert_eq!(f.poll().unwrap()[0].log, "b\n");
        assert!(f.poll().unwrap().is_empty());
    }

    /// The `local` format with compressed rotation: records across three files (two
    /// gzipped), the newest in order, partial lines kept partial, and a follower that
    /// sees appends and follows a rotation.
    #[test]
    fn local_format_with_compressed_rotation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("local-logs/container.log");
        let opts = LogOptions {
            format: Format::Local,
            max_size: Some(300),
            max_file: 3,
            compress: true,
        };
        let mut w = LogWriter::open(&p, &opts).unwrap();
        for i in 0..40 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes()).unwrap();
        }
        w.write(Stream::Stderr, b"tail").unwrap();
        w.flush_partial().unwrap();
        assert!(rotated_file(&p, 1, true).exists() && rotated_file(&p, 2, true).exists());
        assert!(!rotated(&p, 1).exists() && !rotated_file(&p, 3, true).exists());
        let all = LogFilter {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let (e, mut f) = read(&p, &opts, &all).unwrap();
        let logs: Vec<&str> = e.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(logs.last(), Some(&"tail"));
        assert_eq!(e.last().unwrap().stream, "stderr");
        // What is left is the newest records, in order, with nothing lost in between.
        let nums: Vec<usize> = logs
            .iter()
            .filter_map(|l| l.strip_prefix("line ")?.trim_end().parse().ok())
            .collect();
        assert!(
            nums.len() >= 10 && nums.windows(2).all(|w| w[1] == w[0] + 1),
            "{nums:?}"
        );
        assert_eq!(nums.last(), Some(&39));
        // Control: the json-file reader finds nothing it understands in these files.
        let json = LogOptions {
            format: Format::JsonFile,
            ..opts.clone()
        };
        assert!(read(&p, &json, &all).unwrap().0.is_empty());
        // Polled as often as rotations happen (a file rotated twice between two polls
        // would be skipped, as with json-file).
        let mut more: Vec<String> = Vec::new();
        for i in 40..60 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes()).unwrap();
            more.extend(f.poll().unwrap().into_iter().map(|e| e.log));
        }
        assert_eq!(more.first().map(String::as_str), Some("line 40\n"), "{more:?}");
        assert_eq!(more.last().map(String::as_str), Some("line 59\n"), "{more:?}");
        assert_eq!(more.len(), 20, "{more:?}");
    }

    #[test]
    fn rfc3339_round_trip() {
        let s = berth_runtime::state::rfc3339(1_700_000_000, 123_456_789);
        assert_eq!(parse_rfc3339(&s), Some((1_700_000_000, 123_456_789)));
    }
}
