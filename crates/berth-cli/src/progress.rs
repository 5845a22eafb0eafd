//! Docker's JSON message streams (pull, push, load, import) shown as the docker CLI
//! shows them: on a terminal one line per layer, redrawn in place with a progress bar;
//! otherwise status lines only.

use std::io::{BufRead, BufReader, Read, Write};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::format::{human_size, write_to};

/// docker's `JSONProgress.String()` (without the time estimate).
fn bar(detail: &Value, width: u16) -> String {
    let current = detail["current"].as_i64().unwrap_or(0);
    let total = detail["total"].as_i64().unwrap_or(0);
    if current <= 0 && total <= 0 {
        return String::new();
    }
    if total <= 0 {
        return format!("{:>8}", human_size(current as f64));
    }
    let pct = (((current as f64 / total as f64) * 100.0) as i64 / 2).clamp(0, 50) as usize;
    let mut s = String::new();
    if width > 110 {
        s = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct));
    }
    if current > total {
        s.push_str(&format!("{:>8}", human_size(current as f64)));
    } else {
        s.push_str(&format!(
            "{:>8}/{}",
            human_size(current as f64),
            human_size(total as f64)
        ));
    }
    s
}

/// What a stream left behind besides its display.
#[derive(Default)]
pub struct Outcome {
    /// `aux` documents (push digests, build results).
    pub aux: Vec<Value>,
    /// The last `status` line (import reports the new image's ID there).
    pub last_status: String,
}

/// Show a JSON message stream on `out` (a terminal when `tty`). An `error` message ends it
/// with that error.
pub fn display(src: impl Read, out: &mut dyn Write, tty: bool, quiet: bool) -> Result<Outcome> {
    let width = crate::stdio::terminal_size().map(|s| s.1).unwrap_or(200);
    let mut ids: Vec<String> = Vec::new();
    let mut outcome = Outcome::default();
    for line in BufReader::new(src).lines() {
        let line = line.map_err(|e| Error::msg(format!("read the progress stream: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(m) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(e) = m["errorDetail"]["message"].as_str().or(m["error"].as_str()) {
            return Err(Error::msg(e.to_string()));
        }
        if !m["aux"].is_null() {
            outcome.aux.push(m["aux"].clone());
            continue;
        }
        if let Some(s) = m["status"].as_str() {
            outcome.last_status = s.to_string();
        }
        if quiet {
            continue;
        }
        let id = m["id"].as_str().unwrap_or("");
        let has_progress = m.get("progressDetail").is_some_and(|p| !p.is_null());
        let mut text = String::new();
        let mut diff = 0;
        if !id.is_empty() && has_progress {
            let line_no = match ids.iter().position(|i| i == id) {
                Some(n) => n,
                None => {
                    ids.push(id.to_string());
                    if tty {
                        text.push('\n');
                    }
                    ids.len() - 1
                }
            };
            diff = ids.len() - line_no;
            if tty && diff > 0 {
                text.push_str(&format!("\x1b[{diff}A"));
            }
        } else {
            // Anything else ends the block of lines being redrawn.
            ids.clear();
        }
        let stream = m["stream"].as_str().unwrap_or("");
        let progress = if has_progress {
            bar(&m["progressDetail"], width)
        } else {
            String::new()
        };
        let endl = if tty && stream.is_empty() && has_progress {
            text.push_str("\x1b[2K\r");
            "\r"
        } else if has_progress && !progress.is_empty() {
            // No progress bars off a terminal.
            continue;
        } else {
            ""
        };
        if !id.is_empty() {
            text.push_str(&format!("{id}: "));
        }
        let status = m["status"].as_str().unwrap_or("");
        if has_progress && tty {
            text.push_str(&format!("{status} {progress}{endl}"));
        } else if !stream.is_empty() {
            text.push_str(&format!("{stream}{endl}"));
        } else {
            text.push_str(&format!("{status}{endl}\n"));
        }
        if !id.is_empty() && tty && diff > 0 {
            text.push_str(&format!("\x1b[{diff}B"));
        }
        write_to(out, text.as_bytes())?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_stream() {
        let src = concat!(
            "{\"status\":\"Pulling from library/busybox\",\"id\":\"latest\"}\n",
            "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":5,\"total\":10},\"id\":\"abc\"}\n",
            "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"abc\"}\n",
            "{\"status\":\"Digest: sha256:1\"}\n"
        );
        let mut out = Vec::new();
        let o = display(src.as_bytes(), &mut out, false, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "latest: Pulling from library/busybox\nabc: Pull complete\nDigest: sha256:1\n"
        );
        assert_eq!(o.last_status, "Digest: sha256:1");
        let err = "{\"errorDetail\":{\"message\":\"no such repo\"},\"error\":\"no such repo\"}\n";
        assert!(display(err.as_bytes(), &mut Vec::new(), false, false).is_err());
    }

    #[test]
    fn bars() {
        let d = serde_json::json!({"current": 500_000, "total": 1_000_000});
        assert_eq!(
            bar(&d, 200),
            format!("[{}>{}]    500kB/1MB", "=".repeat(25), " ".repeat(25))
        );
    }
}
