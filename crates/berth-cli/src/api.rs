//! The Docker Engine API as the CLI uses it: finding the daemon, negotiating the API
//! version, versioned paths, errors as docker prints them, and keep-alive reuse.

use std::cell::{OnceCell, RefCell};
use std::io::Read;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{self, Addr, Body, Conn, Request, Response, Stream};

/// The newest API version this CLI speaks; older daemons are met at theirs.
pub const CLIENT_API_VERSION: &str = "1.47";
/// Below this the daemon's API lacks what the CLI relies on (Docker's own floor).
pub const MIN_API_VERSION: &str = "1.24";
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// One place the daemon may listen, and where we learnt of it.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: Addr,
    pub origin: &'static str,
}

/// `-H` alone when given (the user named the daemon: never fall back); otherwise
/// `BERTH_HOST`, `DOCKER_HOST` and the default socket, tried in that order.
pub fn targets(flag: Option<&str>) -> Result<Vec<Target>> {
    let parse = |s: &str, origin: &'static str| {
        Addr::parse(s)
            .map(|addr| Target { addr, origin })
            .map_err(|e| Error::usage(format!("{e} (from {origin})")))
    };
    if let Some(h) = flag {
        return Ok(vec![parse(h, "-H")?]);
    }
    let mut out = Vec::new();
    for var in ["BERTH_HOST", "DOCKER_HOST"] {
        if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
            out.push(parse(&v, var)?);
        }
    }
    out.push(Target {
        addr: Addr::Unix(DEFAULT_SOCKET.into()),
        origin: "the default",
    });
    Ok(out)
}

/// Compare dotted versions numerically ("1.9" < "1.10").
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| s.split('.').map(|p| p.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>();
    parse(a).cmp(&parse(b))
}

/// Percent-encoding for query values, as Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A query string built in order (`?a=1&b=2`; empty when nothing was added).
#[derive(Default)]
pub struct Query(String);

impl Query {
    pub fn new() -> Query {
        Query::default()
    }

    pub fn add(&mut self, k: &str, v: impl AsRef<str>) -> &mut Query {
        self.0.push(if self.0.is_empty() { '?' } else { '&' });
        self.0.push_str(k);
        self.0.push('=');
        self.0.push_str(&query_escape(v.as_ref()));
        self
    }

    pub fn flag(&mut self, k: &str, on: bool) -> &mut Query {
        if on {
            self.add(k, "1");
        }
        self
    }

    pub fn opt(&mut self, k: &str, v: &str) -> &mut Query {
        if !v.is_empty() {
            self.add(k, v);
        }
        self
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Docker's filter encoding: `{"key":{"value":true}}`.
pub fn filters_json(pairs: &[String]) -> Result<String> {
    let mut m = serde_json::Map::new();
    for f in pairs {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| Error::usage(format!("bad format of filter (expected name=value): {f:?}")))?;
        let e = m
            .entry(k.trim().to_lowercase())
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(o) = e {
            o.insert(v.to_string(), Value::Bool(true));
        }
    }
    Ok(Value::Object(m).to_string())
}

pub struct Api {
    targets: Vec<Target>,
    addr: OnceCell<Addr>,
    version: OnceCell<String>,
    idle: RefCell<Option<Conn>>,
    pub debug: bool,
}

impl Clone for Api {
    /// A copy for another thread: same daemon and version, connections of its own.
    fn clone(&self) -> Api {
        Api {
            targets: self.targets.clone(),
            addr: self.addr.clone(),
            version: self.version.clone(),
            idle: RefCell::new(None),
            debug: self.debug,
        }
    }
}

impl Api {
    pub fn new(targets: Vec<Target>, debug: bool) -> Api {
        let api = Api {
            targets,
            addr: OnceCell::new(),
            version: OnceCell::new(),
            idle: RefCell::new(None),
            debug,
        };
        // A pinned version skips the /_ping round trip (as the docker CLI does).
        for var in ["BERTH_API_VERSION", "DOCKER_API_VERSION"] {
            if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
                let _ = api.version.set(v.trim_start_matches('v').to_string());
                break;
            }
        }
        api
    }

    /// The address that answered (after the first request).
    pub fn host(&self) -> String {
        self.addr
            .get()
            .map(|a| a.to_string())
            .unwrap_or_else(|| self.targets[0].addr.to_string())
    }

    fn dial(&self) -> Result<Conn> {
        if let Some(a) = self.addr.get() {
            return http::open(a).map_err(|e| self.connect_error(&[(a.to_string(), "", e.to_string())]));
        }
        let mut tried = Vec::new();
        for t in &self.targets {
            match http::open(&t.addr) {
                Ok(c) => {
                    let _ = self.addr.set(t.addr.clone());
                    return Ok(c);
                }
                Err(e) => tried.push((t.addr.to_string(), t.origin, e.to_string())),
            }
        }
        Err(self.connect_error(&tried))
    }

    fn connect_error(&self, tried: &[(String, &str, String)]) -> Error {
        let list: Vec<String> = tried
            .iter()
            .map(|(a, o, e)| {
                if o.is_empty() {
                    format!("{a}: {e}")
                } else {
                    format!("{a} ({o}): {e}")
                }
            })
            .collect();
        Error::Connect(format!(
            "Cannot connect to the Berth daemon at {}. Is berthd running? Start it with `berthd` \
             (as root; it listens on unix://{DEFAULT_SOCKET}), or point -H, BERTH_HOST or DOCKER_HOST at it.",
            list.join("; ")
        ))
    }

    fn conn(&self) -> Result<(Conn, bool)> {
        if let Some(c) = self.idle.borrow_mut().take() {
            return Ok((c, true));
        }
        Ok((self.dial()?, false))
    }

    /// Keep a fully read connection for the next request.
    pub fn recycle(&self, r: Response) {
        if let Some(c) = r.reusable() {
            *self.idle.borrow_mut() = Some(c);
        }
    }

    /// The negotiated API version (a `/_ping` on first use unless pinned).
    pub fn version(&self) -> Result<String> {
        if let Some(v) = self.version.get() {
            return Ok(v.clone());
        }
        let r = self.raw("HEAD", "/_ping", Body::Empty, &[])?;
        let server = r.header("Api-Version").map(str::to_string);
        let status = r.status;
        self.recycle(r);
        let v = match server {
            Some(s) if version_cmp(&s, CLIENT_API_VERSION).is_lt() => s,
            Some(_) => CLIENT_API_VERSION.to_string(),
            None if status < 400 => MIN_API_VERSION.to_string(),
            None => {
                return Err(Error::msg(format!(
                    "ping of the daemon at {} failed: HTTP {status}",
                    self.host()
                )))
            }
        };
        if version_cmp(&v, MIN_API_VERSION).is_lt() {
            return Err(Error::msg(format!(
                "the daemon at {} speaks API {v}; berth needs at least {MIN_API_VERSION}",
                self.host()
            )));
        }
        let _ = self.version.set(v.clone());
        Ok(v)
    }

    /// One request, unversioned path, no status check. A kept-alive connection that the
    /// server closed meanwhile is retried once on a new one (when the body can be resent).
    fn raw(&self, method: &str, target: &str, body: Body<'_>, headers: &[(&str, String)]) -> Result<Response> {
        if self.debug {
            eprintln!("berth: {method} {target}");
        }
        let attempt = |conn: Conn, body: Body<'_>| attempt(conn, method, target, headers, body);
        let io_err = |e: std::io::Error| Error::msg(format!("{method} {target} on {}: {e}", self.host()));
        let r = match body {
            // A body read as it goes cannot be sent twice: a new connection for it.
            Body::Reader(..) => attempt(self.dial()?, body),
            Body::Empty => {
                let (c, reused) = self.conn()?;
                match attempt(c, Body::Empty) {
                    Err(_) if reused => attempt(self.dial()?, Body::Empty),
                    r => r,
                }
            }
            Body::Bytes(b, ct) => {
                let (c, reused) = self.conn()?;
                match attempt(c, Body::Bytes(b, ct)) {
                    Err(_) if reused => attempt(self.dial()?, Body::Bytes(b, ct)),
                    r => r,
                }
            }
        };
        r.map_err(io_err)
    }

    /// A request on `/vNN<path>`; an error status becomes `Error::Daemon`.
    pub fn request(&self, method: &str, path: &str, body: Body<'_>, headers: &[(&str, String)]) -> Result<Response> {
        let target = format!("/v{}{path}", self.version()?);
        let r = self.raw(method, &target, body, headers)?;
        if r.status >= 400 {
            return Err(daemon_error(r));
        }
        Ok(r)
    }

    /// A request whose answer is JSON.
    pub fn json<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<&Value>) -> Result<T> {
        let bytes = body.map(|b| b.to_string());
        let b = match &bytes {
            Some(s) => Body::Bytes(s.as_bytes(), "application/json"),
            None => Body::Empty,
        };
        let mut r = self.request(method, path, b, &[])?;
        let data = r
            .read_body()
            .map_err(|e| Error::msg(format!("read the answer to {method} {path}: {e}")))?;
        self.recycle(r);
        let data = if data.is_empty() { b"null".to_vec() } else { data };
        serde_json::from_slice(&data).map_err(|e| Error::msg(format!("decode the answer to {method} {path}: {e}")))
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.json("GET", path, None)
    }

    /// A request whose answer (if any) is not needed.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<()> {
        let bytes = body.map(|b| b.to_string());
        let b = match &bytes {
            Some(s) => Body::Bytes(s.as_bytes(), "application/json"),
            None => Body::Empty,
        };
        let mut r = self.request(method, path, b, &[])?;
        let _ = std::io::copy(&mut r, &mut std::io::sink());
        self.recycle(r);
        Ok(())
    }

    /// Send a request without waiting for its answer (read it with `answer`), so several
    /// requests can be in flight at once, each on its own connection.
    pub fn send(&self, method: &str, path: &str, body: Option<&Value>, upgrade: bool) -> Result<Conn> {
        let target = format!("/v{}{path}", self.version()?);
        if self.debug {
            eprintln!("berth: {method} {target}");
        }
        let mut conn = self.dial()?;
        let bytes = body.map(|b| b.to_string());
        let (b, hdr) = match &bytes {
            Some(s) => (Body::Bytes(s.as_bytes(), "application/json"), vec![]),
            None if upgrade => (Body::Empty, vec![("Content-Type", "text/plain".to_string())]),
            None => (Body::Empty, vec![]),
        };
        let req = Request {
            method,
            target: &target,
            headers: &hdr,
            body: b,
            upgrade,
        };
        http::send(&mut conn, req).map_err(|e| Error::msg(format!("{method} {path} on {}: {e}", self.host())))?;
        Ok(conn)
    }

    /// The answer to `send`; an error status becomes `Error::Daemon`.
    pub fn answer(&self, conn: Conn, what: &str) -> Result<Response> {
        let r = http::read_response(conn, false).map_err(|e| Error::msg(format!("{what}: {e}")))?;
        if r.status >= 400 {
            return Err(daemon_error(r));
        }
        Ok(r)
    }

    /// The answer to an upgrade `send`: the stream to read the output from and the socket
    /// to write input to.
    pub fn finish_upgrade(&self, conn: Conn, what: &str) -> Result<(Box<dyn Read + Send>, Stream)> {
        let r = self.answer(conn, what)?;
        let sock = r.socket().map_err(|e| Error::msg(format!("{what}: {e}")))?;
        if r.status == 101 {
            return Ok((Box::new(r.upgraded()), sock));
        }
        // An old-style answer (200 and a streamed body): output only.
        Ok((Box::new(r), sock))
    }

    /// A request with an upgrade, answered at once.
    pub fn upgrade(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<(Box<dyn Read + Send>, Stream)> {
        let c = self.send(method, path, body, true)?;
        self.finish_upgrade(c, what)
    }
}

/// One request and the head of its answer.
fn attempt(
    mut conn: Conn,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: Body<'_>,
) -> std::io::Result<Response> {
    let req = Request {
        method,
        target,
        headers,
        body,
        upgrade: false,
    };
    http::send(&mut conn, req)?;
    http::read_response(conn, method == "HEAD")
}

/// Docker's error body `{"message": "..."}` (or plain text) as an error.
pub fn daemon_error(mut r: Response) -> Error {
    let status = r.status;
    let mut body = Vec::new();
    let _ = r.by_ref().take(1 << 20).read_to_end(&mut body);
    let text = String::from_utf8_lossy(&body);
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.trim().to_string());
    let message = if message.is_empty() {
        format!("HTTP {status}")
    } else {
        message
    };
    Error::Daemon { status, message }
}
