//! HTTP plumbing: bodies (whole or streamed), Docker's error shape, query strings, JSON
//! bodies with field-naming errors, and the API version prefix.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use berth_engine::EngineError;

pub type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;
pub type Resp = Response<Body>;

/// API versions this daemon speaks.
pub const API_VERSION: &str = "1.45";
pub const MIN_API_VERSION: &str = "1.24";
/// JSON request bodies larger than this are refused.
pub const MAX_JSON_BODY: usize = 8 << 20;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never: Infallible| match never {}).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// A body fed from a channel: the handler keeps the sender and streams.
struct ChanBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChanBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

pub fn channel() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel(64);
    (tx, ChanBody(rx).boxed())
}

/// A request body as a blocking `Read` (fed by an async task), for the blocking image
/// and archive code.
pub struct BodyReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// How much of a request body is still read (and discarded) after its consumer stopped.
/// A tar reader stops at the first end-of-archive block; a client still sending the
/// rest would otherwise see the connection closed ("broken pipe") instead of our answer.
const DRAIN_LIMIT: usize = 16 << 20;

pub fn body_reader(mut body: hyper::body::Incoming) -> BodyReader {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut drained = 0usize;
        while let Some(Ok(f)) = body.frame().await {
            let Ok(d) = f.into_data() else { continue };
            if tx.is_closed() {
                drained += d.len();
                if drained > DRAIN_LIMIT {
                    return;
                }
            } else if let Err(e) = tx.send(d).await {
                drained += e.0.len();
            }
        }
    });
    BodyReader { rx, cur: Bytes::new() }
}

/// A blocking `Write` into a streamed response body (see `channel`).
pub struct ChanWriter(pub mpsc::Sender<Bytes>);

impl std::io::Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(b))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn json_resp(status: StatusCode, v: &impl serde::Serialize) -> Resp {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(full(body))
        .expect("valid response")
}

pub fn ok_json(v: &impl serde::Serialize) -> Resp {
    json_resp(StatusCode::OK, v)
}

pub fn status(code: StatusCode) -> Resp {
    Response::builder().status(code).body(empty()).expect("valid response")
}

/// Docker's error body: `{"message": "..."}`.
pub fn error(code: StatusCode, message: impl std::fmt::Display) -> Resp {
    json_resp(code, &serde_json::json!({ "message": message.to_string() }))
}

pub fn engine_error(e: &EngineError) -> Resp {
    let code = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if code == StatusCode::NOT_MODIFIED {
        return status(code);
    }
    error(code, e)
}

/// The query string as a map (last value wins, as Go's `FormValue` does for one key).
pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    /// Docker's boolean query values: "1", "true", "True"; absent or "0"/"false" is false.
    pub fn bool(&self, k: &str) -> bool {
        matches!(self.get(k), Some(v) if !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    }
    pub fn int(&self, k: &str) -> Result<Option<i64>, Resp> {
        match self.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| error(StatusCode::BAD_REQUEST, format!("invalid value for {k}: {v:?}"))),
        }
    }
}

/// Read a whole request body (refusing bodies over `limit`).
pub async fn read_body(body: hyper::body::Incoming, limit: usize) -> Result<Bytes, Resp> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                Err(error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body larger than {limit} bytes"),
                ))
            } else {
                Err(error(StatusCode::BAD_REQUEST, format!("reading request body: {e}")))
            }
        }
    }
}

/// Parse JSON, naming the field at fault (`HostConfig.Memory: invalid type ...`).
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Resp> {
    let text: &[u8] = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        b"{}"
    } else {
        bytes
    };
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = if path == "." || path.is_empty() {
            format!("invalid JSON: {inner}")
        } else {
            format!("invalid JSON: field {path}: {inner}")
        };
        error(StatusCode::BAD_REQUEST, msg)
    })
}

/// Split `/v1.41/containers/json` into (Some("1.41"), "/containers/json").
pub fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(slash) = rest.find('/') {
            let v = &rest[..slash];
            if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return (Some(v), &rest[slash..]);
            }
        }
    }
    (None, path)
}

/// Compare dotted versions numerically.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| s.split('.').map(|p| p.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>();
    parse(a).cmp(&parse(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_queries() {
        assert_eq!(
            split_version("/v1.41/containers/json"),
            (Some("1.41"), "/containers/json")
        );
        assert_eq!(split_version("/containers/json"), (None, "/containers/json"));
        assert_eq!(split_version("/volumes/x"), (None, "/volumes/x"));
        assert!(version_cmp("1.9", "1.41").is_lt());
        let q = Query::parse(Some("all=1&force=false&t=5&filters=%7B%22a%22%3A1%7D"));
        assert!(q.bool("all") && !q.bool("force") && !q.bool("missing"));
        assert_eq!(q.get("filters"), Some(r#"{"a":1}"#));
        assert_eq!(q.int("t").ok().flatten(), Some(5));
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Hc {
            #[serde(rename = "Memory")]
            memory: i64,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct B {
            #[serde(rename = "HostConfig")]
            hc: Hc,
        }
        let Err(r) = parse_json::<B>(br#"{"HostConfig":{"Memory":"lots"}}"#) else {
            panic!("must fail")
        };
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
}
