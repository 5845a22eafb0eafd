//! A logging proxy in front of berthd's socket: it passes every byte through and keeps
//! what clients sent, so a test can compare the requests two clients make.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

type Log = Arc<Mutex<Vec<Arc<Mutex<Vec<u8>>>>>>;

pub struct Proxy {
    pub sock: PathBuf,
    conns: Log,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// One request as sent: request line, headers (lower-cased names) and body.
pub struct Sent {
    pub line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn pump(mut from: UnixStream, mut to: UnixStream, log: Option<Arc<Mutex<Vec<u8>>>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(l) = &log {
            l.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

impl Proxy {
    pub fn start(dir: &Path, target: &Path) -> Proxy {
        let sock = dir.join("proxy.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        listener.set_nonblocking(true).unwrap();
        let conns: Log = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (c2, s2, target) = (conns.clone(), stop.clone(), target.to_path_buf());
        let thread = std::thread::spawn(move || {
            while !s2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = UnixStream::connect(&target) else {
                            continue;
                        };
                        let log = Arc::new(Mutex::new(Vec::new()));
                        c2.lock().unwrap().push(log.clone());
                        let (c_r, s_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                        std::thread::spawn(move || pump(c_r, s_w, Some(log)));
                        std::thread::spawn(move || pump(server, client, None));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy {
            sock,
            conns,
            stop,
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    pub fn clear(&self) {
        self.conns.lock().unwrap().clear();
    }

    /// Every request sent so far (requests after an upgrade are not parsed).
    pub fn sent(&self) -> Vec<Sent> {
        let mut out = Vec::new();
        for c in self.conns.lock().unwrap().iter() {
            let data = c.lock().unwrap().clone();
            let mut rest = &data[..];
            while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&rest[..end]).to_string();
                let mut lines = head.split("\r\n");
                let line = lines.next().unwrap_or("").to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let body_end = (end + 4 + len).min(rest.len());
                let body = rest[end + 4..body_end].to_vec();
                let upgrade = headers.iter().any(|(k, _)| k == "upgrade");
                out.push(Sent { line, headers, body });
                if upgrade {
                    break;
                }
                rest = &rest[body_end..];
            }
        }
        out
    }

    /// The JSON body of the one request whose line contains `needle`.
    pub fn body_of(&self, needle: &str) -> serde_json::Value {
        let sent = self.sent();
        let found: Vec<&Sent> = sent.iter().filter(|s| s.line.contains(needle)).collect();
        assert_eq!(
            found.len(),
            1,
            "requests matching {needle:?}: {:?}",
            sent.iter().map(|s| &s.line).collect::<Vec<_>>()
        );
        serde_json::from_slice(&found[0].body).unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.sock);
    }
}
