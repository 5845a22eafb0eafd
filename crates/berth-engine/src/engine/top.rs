//! `docker top`: the container's processes, from its cgroup, as the host's `ps` shows
//! them (what Docker does).

use std::process::Command;

use berth_runtime::container as rt;
use serde::Serialize;

use super::Engine;
use crate::error::{EngineError, Result};

/// `GET /containers/{id}/top`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Top {
    #[serde(rename = "Titles")]
    pub titles: Vec<String>,
    #[serde(rename = "Processes")]
    pub processes: Vec<Vec<String>>,
}

/// Docker refuses `-o x=PID...` for any x but `pid`: the PID column must stay findable.
fn validate_ps_args(args: &str) -> Result<()> {
    let b = args.as_bytes();
    for (eq, _) in args.match_indices('=') {
        let key_start = b[..eq].iter().rposition(|c| c.is_ascii_whitespace()).map(|p| p + 1);
        let Some(start) = key_start else { continue };
        let value = args[eq + 1..].trim_start();
        let value = value.split(|c: char| c.is_ascii_whitespace()).next().unwrap_or("");
        let key = &args[start..eq];
        if value.starts_with("PID") && key != "pid" {
            return Err(EngineError::InvalidParameter(format!(
                "specifying \"{key}={value}\" is not allowed"
            )));
        }
    }
    Ok(())
}

/// Keep the lines of `ps` output whose PID is one of `pids` (and the thread lines, PID
/// `-`, that follow one of them), the last column holding the rest of the line.
fn parse_ps(output: &str, pids: &[i32]) -> Result<Top> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(String::from)
        .collect();
    let pid_col = titles.iter().position(|t| t == "PID").ok_or_else(|| EngineError::Io {
        what: "ps".into(),
        source: std::io::Error::other("Couldn't find PID field in ps output"),
    })?;
    let mut top = Top {
        titles,
        processes: Vec::new(),
    };
    let mut after_ours = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(pid) = fields.get(pid_col) else { continue };
        let ours = if *pid == "-" {
            after_ours
        } else {
            let p: i32 = pid.parse().map_err(|_| EngineError::Io {
                what: "ps".into(),
                source: std::io::Error::other(format!("Unexpected pid '{pid}'")),
            })?;
            after_ours = pids.contains(&p);
            after_ours
        };
        if ours {
            let n = top.titles.len().saturating_sub(1).min(fields.len());
            let mut row: Vec<String> = fields[..n].iter().map(|s| s.to_string()).collect();
            row.push(fields[n..].join(" "));
            top.processes.push(row);
        }
    }
    Ok(top)
}

fn ps(args: &[&str]) -> std::result::Result<String, String> {
    let out = Command::new("ps").args(args).output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().next().unwrap_or("ps failed").to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Engine {
    /// `GET /containers/{id}/top?ps_args=`: `ps <ps_args or -ef>` on the host, limited to
    /// the container's processes.
    pub fn top(&self, key: &str, ps_args: &str) -> Result<Top> {
        let ps_args = if ps_args.is_empty() { "-ef" } else { ps_args };
        validate_ps_args(ps_args)?;
        let c = self.get(key)?;
        let rec = c.record();
        if rec.state.restarting {
            return Err(EngineError::Conflict(format!(
                "Container {} is restarting, wait until the container is running",
                rec.id
            )));
        }
        if !rec.state.running {
            return Err(EngineError::Conflict(format!("Container {} is not running", rec.id)));
        }
        let pids = rt::with_container(&self.cfg.runtime_root(), &rec.id, |_, st, _| Ok(st.cgroup.pids()?)).map_err(
            |source| match source {
                // Its main process exited just now; the record is being updated.
                rt::Error::State(berth_runtime::state::StateError::NotFound(_)) => {
                    EngineError::Conflict(format!("Container {} is not running", rec.id))
                }
                source => EngineError::Runtime {
                    id: rec.id.clone(),
                    source,
                },
            },
        )?;
        let mut args: Vec<&str> = ps_args.split(' ').filter(|a| !a.is_empty()).collect();
        let only = format!("-q{}", pids.iter().map(i32::to_string).collect::<Vec<_>>().join(","));
        args.push(&only);
        // Some ps options (such as f) cannot be combined with -q: then all of ps, filtered here.
        let out = ps(&args)
            .or_else(|_| ps(&args[..args.len() - 1]))
            .map_err(|e| EngineError::Io {
                what: "ps".into(),
                source: std::io::Error::other(e),
            })?;
        parse_ps(&out, &pids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_filtered_to_the_container() {
        let out = "UID PID PPID C STIME TTY TIME CMD\n\
                   root 10 1 0 10:00 ? 00:00:00 sleep 300\n\
                   root - - 0 10:00 ? 00:00:00 thread of 10\n\
                   root 11 1 0 10:00 ? 00:00:00 other\n\
                   root - - 0 10:00 ? 00:00:00 thread of 11\n";
        let top = parse_ps(out, &[10]).unwrap();
        assert_eq!(top.titles.len(), 8);
        assert_eq!(top.processes.len(), 2);
        assert_eq!(top.processes[0][7], "sleep 300");
        assert_eq!(top.processes[1][7], "thread of 10");
        assert!(parse_ps("UID CMD\nroot x\n", &[1]).is_err());
    }

    #[test]
    fn ps_args_keep_the_pid_column() {
        assert!(validate_ps_args("-o pid=PID,comm").is_ok());
        assert!(validate_ps_args("-o user=PID").is_err());
        assert!(validate_ps_args("aux").is_ok());
    }
}
