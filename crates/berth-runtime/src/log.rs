//! runc-style logging: `--log FILE` with `--log-format text|json`, warnings to stderr otherwise.
//! containerd's shim reads the last `error` entry of the JSON log to report failures.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Debug, Clone)]
pub struct Config {
    pub file: Option<PathBuf>,
    pub json: bool,
    pub debug: bool,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

pub fn init(c: Config) {
    let _ = CONFIG.set(c);
}

fn write(level: &str, msg: &str) {
    let Some(c) = CONFIG.get() else {
        if level != "debug" {
            let _ = writeln!(std::io::stderr(), "berth-runtime: {level}: {msg}");
        }
        return;
    };
    if level == "debug" && !c.debug {
        return;
    }
    let time = crate::state::now_rfc3339();
    let line = if c.json {
        serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
    } else {
        format!("time=\"{time}\" level={level} msg={msg:?}")
    };
    match &c.file {
        Some(path) => {
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
                let _ = writeln!(f, "{line}");
            }
        }
        None => {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }
}

pub fn debug(msg: &str) {
    write("debug", msg);
}

pub fn info(msg: &str) {
    write("info", msg);
}

pub fn warn(msg: &str) {
    write("warning", msg);
}

/// Errors go to the log (if any) and always to stderr, as runc does.
pub fn error(msg: &str) {
    if CONFIG.get().is_some_and(|c| c.file.is_some()) {
        write("error", msg);
    }
    let _ = writeln!(std::io::stderr(), "berth-runtime: {msg}");
}
