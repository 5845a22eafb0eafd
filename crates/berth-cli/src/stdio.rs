//! A container's stdio over an attach or exec connection: Docker's 8-byte frames split to
//! stdout and stderr (or the raw stream of a tty), stdin forwarded with detach keys, the
//! local terminal in raw mode, window resizes and signals passed on to the daemon.

use std::io::{IsTerminal, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};

use crate::api::Api;
use crate::error::{Error, Result};
use crate::format::write_to;
use crate::http::Stream;

/// Docker's detach keys (`ctrl-p,ctrl-q` by default) as bytes.
pub fn detach_keys(spec: &str) -> Result<Vec<u8>> {
    let spec = if spec.is_empty() { "ctrl-p,ctrl-q" } else { spec };
    spec.split(',')
        .map(|k| {
            let k = k.trim();
            let bad = || Error::usage(format!("invalid detach keys {spec:?}: unknown key {k:?}"));
            if let Some(c) = k.strip_prefix("ctrl-") {
                let b = *c.as_bytes().first().ok_or_else(bad)?;
                if c.len() != 1 {
                    return Err(bad());
                }
                match b {
                    b'a'..=b'z' => Ok(b - b'a' + 1),
                    b'@' => Ok(0),
                    b'[' => Ok(27),
                    b'\\' => Ok(28),
                    b']' => Ok(29),
                    b'^' => Ok(30),
                    b'_' => Ok(31),
                    _ => Err(bad()),
                }
            } else if k.len() == 1 {
                Ok(k.as_bytes()[0])
            } else {
                Err(bad())
            }
        })
        .collect()
}

/// Withholds a possible detach sequence from the input: bytes are passed on as soon as
/// they can no longer start one (docker's escape proxy).
struct Escape {
    keys: Vec<u8>,
    held: usize,
}

impl Escape {
    /// The bytes to send, and whether the whole sequence was typed.
    fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return (out, false);
        }
        for &b in input {
            if b == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.held]);
                self.held = 0;
                if b == self.keys[0] {
                    self.held = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

pub struct Relay {
    pub stdin: bool,
    pub tty: bool,
    /// Detach keys watched for on stdin (with `stdin`).
    pub keys: Vec<u8>,
}

#[derive(Debug, PartialEq)]
pub enum Ended {
    /// The container's (or exec's) output ended.
    Eof,
    /// The user typed the detach keys.
    Detached,
}

/// Copy output to stdout/stderr until it ends, forwarding stdin meanwhile.
pub fn relay(mut output: Box<dyn Read + Send>, sock: Stream, r: &Relay) -> Result<Ended> {
    let detached = Arc::new(AtomicBool::new(false));
    if r.stdin {
        let (mut sock, flag) = (sock, detached.clone());
        let mut esc = Escape {
            keys: r.keys.clone(),
            held: 0,
        };
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let (out, detach) = esc.feed(&buf[..n]);
                if !out.is_empty() && sock.write_all(&out).is_err() {
                    return;
                }
                if detach {
                    flag.store(true, Ordering::SeqCst);
                    // Unblocks the output side, which then reports the detach.
                    let _ = sock.shutdown(Shutdown::Both);
                    return;
                }
            }
            // End of our input: the container's stdin closes (its output goes on).
            let _ = sock.shutdown(Shutdown::Write);
        });
    }
    let res = if r.tty {
        copy_raw(&mut output)
    } else {
        demux(&mut output)
    };
    if detached.load(Ordering::SeqCst) {
        return Ok(Ended::Detached);
    }
    res.map(|_| Ended::Eof)
}

fn copy_raw(src: &mut dyn Read) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => write_to(&mut out, &buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // The connection going away ends the stream (the daemon closes it at exit).
            Err(_) => return Ok(()),
        }
    }
}

/// Docker's multiplexed stream: [stream, 0, 0, 0, size (big-endian u32)] + payload.
fn demux(src: &mut dyn Read) -> Result<()> {
    let mut hdr = [0u8; 8];
    let mut buf = Vec::new();
    loop {
        if read_full(src, &mut hdr)? < 8 {
            return Ok(());
        }
        let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
        buf.resize(len, 0);
        if read_full(src, &mut buf)? < len {
            return Ok(());
        }
        match hdr[0] {
            2 => write_to(&mut std::io::stderr().lock(), &buf)?,
            0 | 1 => write_to(&mut std::io::stdout().lock(), &buf)?,
            s => return Err(Error::msg(format!("unknown stream {s} in the multiplexed output"))),
        }
    }
}

/// Read until `buf` is full or the stream ends; how much was read.
fn read_full(src: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match src.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    Ok(got)
}

/// Split a whole multiplexed (or raw, with `tty`) body into stdout and stderr bytes.
pub fn demux_to(src: &mut dyn Read, tty: bool) -> Result<()> {
    if tty {
        copy_raw(src)
    } else {
        demux(src)
    }
}

/// The local terminal in raw mode while attached with a tty; restored on drop.
pub struct RawTerminal {
    orig: Termios,
}

impl RawTerminal {
    /// Only when stdin is a terminal (nothing to do otherwise).
    pub fn enter() -> Result<Option<RawTerminal>> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let orig = termios::tcgetattr(&stdin).map_err(|e| Error::msg(format!("read the terminal's mode: {e}")))?;
        let mut raw = orig.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw)
            .map_err(|e| Error::msg(format!("put the terminal in raw mode: {e}")))?;
        Ok(Some(RawTerminal { orig }))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.orig);
    }
}

/// The terminal's size (rows, columns) on stdout, when it is one.
pub fn terminal_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    for fd in [1, 0] {
        // SAFETY: TIOCGWINSZ only writes the winsize we pass.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        if rc == 0 && ws.ws_row > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// Where resizes and proxied signals go.
pub struct SignalTarget {
    /// `/containers/{id}/resize` or `/exec/{id}/resize`, with a tty.
    pub resize: Option<String>,
    /// The container to send the signals the CLI receives to (docker's --sig-proxy).
    pub proxy_to: Option<String>,
}

const PROXIED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Block the signals handled here in this thread (call before any other thread starts, so
/// they all inherit the mask) and serve them on a thread of their own.
pub fn handle_signals(api: &Api, t: SignalTarget) -> Result<()> {
    let mut set = SigSet::empty();
    if t.resize.is_some() {
        set.add(Signal::SIGWINCH);
    }
    if t.proxy_to.is_some() {
        for s in PROXIED {
            set.add(s);
        }
    }
    if t.resize.is_none() && t.proxy_to.is_none() {
        return Ok(());
    }
    set.thread_block()
        .map_err(|e| Error::msg(format!("block signals for forwarding: {e}")))?;
    let api = api.clone();
    std::thread::spawn(move || loop {
        let Ok(sig) = set.wait() else { return };
        match (sig, &t.resize, &t.proxy_to) {
            (Signal::SIGWINCH, Some(path), _) => resize(&api, path),
            (s, _, Some(id)) => {
                let name = s.as_str().trim_start_matches("SIG");
                let _ = api.call("POST", &format!("/containers/{id}/kill?signal={name}"), None);
            }
            _ => {}
        }
    });
    Ok(())
}

/// Tell the daemon the terminal's size (nothing when stdout is no terminal).
pub fn resize(api: &Api, path: &str) {
    if let Some((h, w)) = terminal_size() {
        let _ = api.call("POST", &format!("{path}?h={h}&w={w}"), None);
    }
}

/// docker's `CheckTty`: a tty with stdin attached needs a terminal on stdin.
pub fn check_tty(attach_stdin: bool, tty: bool) -> Result<()> {
    if tty && attach_stdin && !std::io::stdin().is_terminal() {
        return Err(Error::msg("the input device is not a TTY"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_escape() {
        assert_eq!(detach_keys("").unwrap(), vec![16, 17]);
        assert_eq!(detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert!(detach_keys("ctrl-ab").is_err());
        let mut e = Escape {
            keys: vec![16, 17],
            held: 0,
        };
        assert_eq!(e.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(e.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(e.feed(b"\x10\x17"), (b"\x10\x17".to_vec(), false));
        assert_eq!(e.feed(b"\x10\x11rest"), (b"".to_vec(), true));
    }

    #[test]
    fn demux_frames() {
        let mut data = vec![1, 0, 0, 0, 0, 0, 0, 0];
        data.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
        let mut r: &[u8] = &data;
        demux(&mut r).unwrap();
    }
}
