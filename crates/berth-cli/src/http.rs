//! A small blocking HTTP/1.1 client for the Docker Engine API on a unix socket or a TCP
//! address: keep-alive, chunked bodies both ways, and connection upgrades (attach, exec).
//!
//! Blocking I/O and no async runtime on purpose: `berth` makes a handful of requests in a
//! row, and building a runtime and a client stack would cost more than the requests
//! themselves (the `berth run` latency target is 25 ms end to end).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// Where a daemon listens.
#[derive(Clone, Debug)]
pub enum Addr {
    Unix(PathBuf),
    Tcp(String),
}

impl Addr {
    /// `unix:///path`, `tcp://host:port`, `host:port` or a bare socket path.
    pub fn parse(s: &str) -> Result<Addr, String> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(format!("invalid host {s:?}: no socket path"));
            }
            return Ok(Addr::Unix(PathBuf::from(p)));
        }
        if let Some(rest) = s.strip_prefix("tcp://").or_else(|| s.strip_prefix("http://")) {
            let hostport = rest.trim_end_matches('/');
            if hostport.is_empty() {
                return Err(format!("invalid host {s:?}: no address"));
            }
            let hostport = if hostport.contains(':') {
                hostport.to_string()
            } else {
                format!("{hostport}:2375")
            };
            return Ok(Addr::Tcp(hostport));
        }
        if s.starts_with('/') {
            return Ok(Addr::Unix(PathBuf::from(s)));
        }
        if let Some(scheme) = s.split_once("://").map(|p| p.0) {
            return Err(format!(
                "invalid host {s:?}: the {scheme}:// scheme is not supported (use unix:// or tcp://)"
            ));
        }
        Err(format!("invalid host {s:?}: give unix:///path or tcp://host:port"))
    }

    pub fn connect(&self) -> io::Result<Stream> {
        match self {
            Addr::Unix(p) => UnixStream::connect(p).map(Stream::Unix),
            Addr::Tcp(a) => {
                let s = TcpStream::connect(a)?;
                // Requests are small and each waits for its answer: no Nagle delay.
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Unix(p) => write!(f, "unix://{}", p.display()),
            Addr::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// One connection to the daemon.
#[derive(Debug)]
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tcp(s) => s.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub type Conn = BufReader<Stream>;

pub fn open(addr: &Addr) -> io::Result<Conn> {
    Ok(BufReader::with_capacity(64 * 1024, addr.connect()?))
}

/// A request body.
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8], &'a str),
    /// Sent chunked, as the docker CLI sends import and load bodies.
    Reader(&'a mut dyn Read, &'a str),
}

/// `'b` apart from `'a`: a reader body is borrowed mutably (so invariantly).
pub struct Request<'a, 'b> {
    pub method: &'a str,
    /// Path and query.
    pub target: &'a str,
    pub headers: &'a [(&'a str, String)],
    pub body: Body<'b>,
    pub upgrade: bool,
}

const USER_AGENT: &str = concat!("Berth-Client/", env!("CARGO_PKG_VERSION"), " (linux)");

/// Write one request; the response is read by `read_response`.
pub fn send(conn: &mut Conn, req: Request<'_, '_>) -> io::Result<()> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: {USER_AGENT}\r\n",
        req.method, req.target
    );
    for (k, v) in req.headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    if req.upgrade {
        head.push_str("Connection: Upgrade\r\nUpgrade: tcp\r\n");
    }
    let w = conn.get_mut();
    match req.body {
        Body::Empty => {
            if req.method != "GET" && req.method != "HEAD" {
                head.push_str("Content-Length: 0\r\n");
            }
            head.push_str("\r\n");
            w.write_all(head.as_bytes())
        }
        Body::Bytes(b, ct) => {
            head.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n", b.len()));
            // One write for head and body: one segment, one wakeup of the server.
            let mut all = head.into_bytes();
            all.extend_from_slice(b);
            w.write_all(&all)
        }
        Body::Reader(r, ct) => {
            head.push_str(&format!("Content-Type: {ct}\r\nTransfer-Encoding: chunked\r\n\r\n"));
            w.write_all(head.as_bytes())?;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                w.write_all(format!("{n:x}\r\n").as_bytes())?;
                w.write_all(&buf[..n])?;
                w.write_all(b"\r\n")?;
            }
            w.write_all(b"0\r\n\r\n")
        }
    }
}

#[derive(Debug)]
enum BodyKind {
    None,
    Length(u64),
    /// Bytes left in the current chunk; `done` after the last one.
    Chunked {
        left: u64,
        done: bool,
    },
    UntilEof,
}

/// A response whose body is read through `Read`.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    conn: Conn,
    kind: BodyKind,
    keep_alive: bool,
}

fn bad(m: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m.into())
}

/// Read a response's head. `head_request`: no body follows whatever the headers say.
pub fn read_response(mut conn: Conn, head_request: bool) -> io::Result<Response> {
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the daemon closed the connection before answering",
        ));
    }
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or("").to_string();
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("not an HTTP response: {:?}", line.trim_end())));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {:?}", line.trim_end())))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Err(bad("connection closed in the response headers"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let mut keep_alive = version != "HTTP/1.0";
    if get("Connection").is_some_and(|c| c.eq_ignore_ascii_case("close")) {
        keep_alive = false;
    }
    let kind = if head_request || status == 101 || status == 204 || status == 304 || (100..200).contains(&status) {
        BodyKind::None
    } else if get("Transfer-Encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) {
        BodyKind::Chunked { left: 0, done: false }
    } else if let Some(n) = get("Content-Length") {
        BodyKind::Length(n.parse().map_err(|_| bad(format!("bad Content-Length {n:?}")))?)
    } else {
        keep_alive = false;
        BodyKind::UntilEof
    };
    Ok(Response {
        status,
        headers,
        conn,
        kind,
        keep_alive,
    })
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn read_body(&mut self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.read_to_end(&mut v)?;
        Ok(v)
    }

    /// The connection, when its body is fully read and the server keeps it open.
    pub fn reusable(self) -> Option<Conn> {
        let done = match self.kind {
            BodyKind::None | BodyKind::Length(0) => true,
            BodyKind::Chunked { done, .. } => done,
            _ => false,
        };
        (done && self.keep_alive).then_some(self.conn)
    }

    /// A second handle on the socket (to write while the body is read elsewhere).
    pub fn socket(&self) -> io::Result<Stream> {
        self.conn.get_ref().try_clone()
    }

    /// After `101 Switching Protocols`: the raw connection (with whatever the server sent
    /// after its headers still buffered).
    pub fn upgraded(self) -> Conn {
        self.conn
    }

    fn read_chunk_size(&mut self) -> io::Result<u64> {
        let mut line = String::new();
        if self.conn.read_line(&mut line)? == 0 {
            return Err(bad("connection closed inside a chunked body"));
        }
        let hex = line.trim().split(';').next().unwrap_or("");
        u64::from_str_radix(hex, 16).map_err(|_| bad(format!("bad chunk size {:?}", line.trim())))
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.kind {
            BodyKind::None => Ok(0),
            BodyKind::UntilEof => self.conn.read(buf),
            BodyKind::Length(left) => {
                if left == 0 {
                    return Ok(0);
                }
                let max = buf.len().min(left as usize);
                let n = self.conn.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(bad("connection closed before the end of the body"));
                }
                self.kind = BodyKind::Length(left - n as u64);
                Ok(n)
            }
            BodyKind::Chunked { done: true, .. } => Ok(0),
            BodyKind::Chunked { left, .. } => {
                let mut left = left;
                if left == 0 {
                    left = self.read_chunk_size()?;
                    if left == 0 {
                        // Trailers (none expected) up to the empty line.
                        let mut line = String::new();
                        while self.conn.read_line(&mut line)? > 0 && !line.trim().is_empty() {
                            line.clear();
                        }
                        self.kind = BodyKind::Chunked { left: 0, done: true };
                        return Ok(0);
                    }
                }
                let max = buf.len().min(left as usize);
                let n = self.conn.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(bad("connection closed inside a chunk"));
                }
                left -= n as u64;
                if left == 0 {
                    let mut crlf = [0u8; 2];
                    self.conn.read_exact(&mut crlf)?;
                }
                self.kind = BodyKind::Chunked { left, done: false };
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(raw: &[u8]) -> Response {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(raw).unwrap();
        drop(b);
        read_response(BufReader::new(Stream::Unix(a)), false).unwrap()
    }

    #[test]
    fn chunked_and_length_bodies() {
        let mut r = resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n");
        assert_eq!(r.read_body().unwrap(), b"abcde");
        assert!(r.reusable().is_some());
        let mut r = resp(b"HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\n\r\nhello");
        assert_eq!(r.status, 404);
        assert_eq!(r.read_body().unwrap(), b"hello");
        let mut r = resp(b"HTTP/1.0 200 OK\r\n\r\nuntil eof");
        assert_eq!(r.read_body().unwrap(), b"until eof");
        assert!(r.reusable().is_none());
    }

    #[test]
    fn host_addresses() {
        assert!(matches!(Addr::parse("unix:///run/x.sock"), Ok(Addr::Unix(_))));
        assert!(matches!(Addr::parse("tcp://127.0.0.1"), Ok(Addr::Tcp(a)) if a == "127.0.0.1:2375"));
        assert!(Addr::parse("ssh://h").unwrap_err().contains("not supported"));
    }
}
