//! Docker's `json-file` log driver: one JSON object a line,
//! `{"log":"text\n","stream":"stdout","time":"RFC3339Nano"}`, with `max-size`/`max-file`
//! rotation (`name`, `name.1`, … oldest last). The monitor writes; berthd reads.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

pub struct JsonLogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
    partial: [Vec<u8>; 2],
}

impl JsonLogWriter {
    pub fn open(path: &Path, max_size: Option<u64>, max_file: u32) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(JsonLogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_file: max_file.max(1),
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
        let text = String::from_utf8_lossy(line);
        let time = berth_runtime::state::now_rfc3339();
        let mut out = serde_json::to_vec(&Record {
            log: &text,
            stream: stream.name(),
            time: &time,
        })
        .map_err(std::io::Error::other)?;
        out.push(b'\n');
        if let Some(max) = self.max_size {
            if self.size > 0 && self.size + out.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.file.write_all(&out)?;
        self.size += out.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.max_file <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for i in (1..self.max_file).rev() {
            let from = rotated(&self.path, i - 1);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, i))?;
            }
        }
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = 0;
        Ok(())
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

/// Parse the RFC 3339 UTC times we write (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`).
pub fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut nanos = 0u32;
    if b.get(19) == Some(&b'.') {
        let frac: String = s[20..].chars().take_while(|c| c.is_ascii_digit()).collect();
        let padded = format!("{frac:0<9}");
        nanos = padded[..9].parse().ok()?;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86400 + h * 3600 + mi * 60 + se, nanos))
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

/// Read a log (with its rotated files, oldest first) up to its current end; returns the
/// entries and a `Follower` positioned at the end for `follow`.
pub fn read(path: &Path, max_file: u32, filter: &LogFilter) -> std::io::Result<(Vec<Entry>, Follower)> {
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
    for n in (1..max_file.max(1)).rev() {
        if let Ok(f) = File::open(rotated(path, n)) {
            for line in BufReader::new(f).lines() {
                if let Ok(e) = serde_json::from_str::<Entry>(&line?) {
                    push(e);
                }
            }
        }
    }
    let mut follower = Follower {
        path: path.to_path_buf(),
        reader: None,
        inode: 0,
        pending: String::new(),
    };
    for e in follower.poll()? {
        push(e);
    }
    Ok((out.into(), follower))
}

/// Reads what a log gains, following it across rotation.
pub struct Follower {
    path: PathBuf,
    reader: Option<BufReader<File>>,
    inode: u64,
    pending: String,
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
                        self.reader = Some(BufReader::new(f));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                    Err(e) => return Err(e),
                }
            }
            let r = self.reader.as_mut().expect("reader opened above");
            loop {
                let n = r.read_line(&mut self.pending)?;
                if n == 0 {
                    break;
                }
                if !self.pending.ends_with('\n') {
                    break;
                }
                if let Ok(e) = serde_json::from_str::<Entry>(&self.pending) {
                    out.push(e);
                }
                self.pending.clear();
            }
            // Rotated (renamed away) or truncated: start over on the new file.
            let rotated = std::fs::metadata(&self.path)
                .map(|m| m.ino() != self.inode)
                .unwrap_or(false);
            let pos = r.stream_position()?;
            let truncated = std::fs::metadata(&self.path).map(|m| m.len() < pos).unwrap_or(false);
            if rotated || truncated {
                self.reader = None;
                self.pending.clear();
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
        let mut w = JsonLogWriter::open(&p, Some(200), 3).unwrap();
        w.write(Stream::Stdout, b"hello\nwor").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"ld\n").unwrap();
        let all = LogFilter {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let (e, _) = read(&p, 3, &all).unwrap();
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
            3,
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
        assert!(read(&p, 3, &stderr_only).unwrap().0.is_empty());
    }

    #[test]
    fn follower_sees_appends() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l");
        let mut w = JsonLogWriter::open(&p, None, 1).unwrap();
        w.write(Stream::Stdout, b"a\n").unwrap();
        let (e, mut f) = read(&p, 1, &LogFilter::default()).unwrap();
        assert!(e.is_empty(), "filter without streams accepts nothing");
        w.write(Stream::Stdout, b"b\n").unwrap();
        assert_eq!(f.poll().unwrap()[0].log, "b\n");
        assert!(f.poll().unwrap().is_empty());
    }

    #[test]
    fn rfc3339_round_trip() {
        let s = berth_runtime::state::rfc3339(1_700_000_000, 123_456_789);
        assert_eq!(parse_rfc3339(&s), Some((1_700_000_000, 123_456_789)));
    }
}
