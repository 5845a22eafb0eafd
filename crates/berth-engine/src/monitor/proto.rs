//! What berthd and a container's monitor say to each other over the monitor's unix
//! socket. A connection opens with one JSON request line and gets one JSON reply line.
//! `attach` and `exec` connections then carry the process's output from the monitor in
//! Docker's multiplexed frames (8-byte header: stream, 0, 0, 0, big-endian length;
//! stream 1 stdout, 2 stderr, 3 a final JSON status), and raw stdin bytes to it
//! (shutting down the write side closes the process's stdin).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything the monitor needs, written by berthd to `monitor.json` in the container's
/// exec-root directory before the monitor starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub id: String,
    pub bundle: PathBuf,
    /// The runtime's state root.
    pub runtime_root: PathBuf,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    /// Initial terminal size (height, width).
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
    pub log: LogTarget,
    /// Where the exit status is recorded (in the data root: survives reboots).
    pub exit_file: PathBuf,
    /// Bring up the loopback of the container's new network namespace.
    #[serde(default)]
    pub loopback_up: bool,
    /// The container's linux.seccomp compiled by berthd (berth_runtime::seccomp::Program
    /// bytes), shared by every container with the same profile.
    #[serde(default)]
    pub seccomp_program: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogTarget {
    /// `json-file`, `local` or `none`.
    pub driver: String,
    pub path: PathBuf,
    pub max_size: Option<u64>,
    pub max_file: u32,
    /// gzip rotated files.
    #[serde(default)]
    pub compress: bool,
}

impl LogTarget {
    /// How the log is written; None: not kept (`none`).
    pub fn options(&self) -> Option<crate::logs::LogOptions> {
        let format = match self.driver.as_str() {
            "none" => return None,
            "local" => crate::logs::Format::Local,
            _ => crate::logs::Format::JsonFile,
        };
        Some(crate::logs::LogOptions {
            format,
            max_size: self.max_size,
            max_file: self.max_file,
            compress: self.compress,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the created container.
    Start,
    /// Stream the main process's output (and take stdin).
    Attach { stdin: bool, stdout: bool, stderr: bool },
    /// Reply once the main process has exited.
    Wait,
    /// Resize the main process's terminal, or an exec's.
    Resize {
        height: u16,
        width: u16,
        #[serde(default)]
        exec_id: Option<String>,
    },
    /// Run a process in the container; the connection becomes its stdio.
    Exec {
        exec_id: String,
        process: serde_json::Value,
        stdin: bool,
        #[serde(default)]
        console_size: Option<(u16, u16)>,
    },
}

/// How the main process ended, as recorded in the exit file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ExitInfo {
    pub exit_code: i32,
    pub oom_killed: bool,
    /// RFC 3339.
    pub finished_at: String,
    #[serde(default)]
    pub error: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitInfo>,
}

/// Stream byte of the final status frame on attach/exec connections.
pub const STATUS_STREAM: u8 = 3;

pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

pub fn write_line<T: Serialize>(w: &mut impl Write, msg: &T) -> std::io::Result<()> {
    let mut b = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    b.push(b'\n');
    w.write_all(&b)
}

pub fn read_line<T: for<'de> Deserialize<'de>>(r: &mut impl BufRead) -> std::io::Result<T> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "monitor closed the connection",
        ));
    }
    serde_json::from_str(&line).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The compiled seccomp program berthd left for this container, if any (a missing or
/// bad file only means the runtime compiles the profile itself).
pub fn load_program(cfg: &MonitorConfig) -> Option<berth_runtime::seccomp::Program> {
    let b = std::fs::read(cfg.seccomp_program.as_ref()?).ok()?;
    berth_runtime::seccomp::Program::from_bytes(&b).ok()
}

/// The file (in the container's exec-root directory) where the monitor records an
/// exec's exit code: a restarted berthd learns from it how execs ended while it was away.
pub fn exec_exit_file(exec_id: &str) -> String {
    format!("exec-{exec_id}.exit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format() {
        let r: Request = serde_json::from_str(r#"{"op":"attach","stdin":true,"stdout":true,"stderr":false}"#).unwrap();
        assert_eq!(
            r,
            Request::Attach {
                stdin: true,
                stdout: true,
                stderr: false
            }
        );
        assert_eq!(frame_header(2, 258), [2, 0, 0, 0, 0, 0, 1, 2]);
    }
}
