//! Small helpers of the engine: Docker's signal and size syntax, image names in errors,
//! mounts, the container's /etc files.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::sys::signal::Signal;

use crate::error::{io_err, EngineError, Result};

/// Docker's signal names (`SIGTERM`, `TERM`, `15`).
pub fn parse_signal(s: &str) -> Result<Signal> {
    let bad = || EngineError::InvalidParameter(format!("invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<Signal>().map_err(|_| bad())
}

pub(crate) fn is_mounted(p: &Path) -> bool {
    match (std::fs::metadata(p), p.parent().map(std::fs::metadata)) {
        (Ok(a), Some(Ok(b))) => a.dev() != b.dev(),
        _ => false,
    }
}

pub(crate) fn unmount(p: &Path) {
    if is_mounted(p) {
        let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// /etc/resolv.conf for a container: the host's, without loopback name servers.
pub(crate) fn resolv_conf() -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out = String::new();
    let mut servers = 0;
    for l in host.lines() {
        if let Some(ns) = l.trim().strip_prefix("nameserver") {
            let ns = ns.trim();
            if ns.starts_with("127.") || ns == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(l);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

pub(crate) fn write_file(p: &Path, s: &str) -> Result<()> {
    std::fs::write(p, s).map_err(io_err(format!("write {}", p.display())))
}

/// `busybox` → `busybox:latest`, as Docker names a missing image.
pub(crate) fn familiar(name: &str) -> String {
    match berth_image::Reference::parse(name) {
        Ok(r) => r.familiar(),
        Err(_) => name.to_string(),
    }
}

pub use crate::config::parse_size;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_and_sizes() {
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("SIGKILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("10").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(familiar("busybox"), "busybox:latest");
    }
}
