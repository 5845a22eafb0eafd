//! berthd's own test daemon (crates/berthd/tests/common, one copy), driven by `berth` (and
//! by the docker CLI where a test compares the two): `d.ok(...)` runs berth here.
//!
//! berthd is not a dependency of berth-cli (the CLI speaks only the API), so its binaries
//! are found at run time: `$BERTHD` and `$BERTH_MONITOR`, else next to this test's own
//! target directory (a workspace build), else the workspace's target/debug.
#![allow(dead_code)]

#[path = "../../../berthd/tests/common/mod.rs"]
mod base;
pub mod proxy;

use std::process::{Command, Output, Stdio};

#[allow(unused_imports)]
pub use base::{busybox_tar, registry, veths_on};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// berthd's test daemon with berth-CLI helpers; everything else of it through Deref.
pub struct Daemon(base::Daemon);

impl std::ops::Deref for Daemon {
    type Target = base::Daemon;
    fn deref(&self) -> &base::Daemon {
        &self.0
    }
}

impl Daemon {
    pub fn start() -> Daemon {
        let d = Daemon(base::Daemon::start());
        d.assert_is_berth();
        d
    }

    /// A command for `bin` aimed at this daemon, with a config dir of the test's own.
    pub fn command(&self, bin: &str, args: &[&str]) -> Command {
        let mut c = Command::new(bin);
        c.args(args)
            .env("BERTH_HOST", self.host())
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env_remove("DOCKER_API_VERSION")
            .env_remove("BERTH_API_VERSION")
            .stdin(Stdio::null());
        c
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        self.command(BERTH, args).output().unwrap()
    }

    pub fn berth_in(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut c = self.command(BERTH, args);
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut ch = c.spawn().unwrap();
        let mut sin = ch.stdin.take().unwrap();
        let data = input.to_vec();
        let w = std::thread::spawn(move || {
            let _ = sin.write_all(&data);
        });
        let o = ch.wait_with_output().unwrap();
        w.join().unwrap();
        o
    }

    fn must(&self, what: &str, args: &[&str], o: Output) -> String {
        assert!(
            o.status.success(),
            "{what} {args:?} failed ({}): {}\n{}\n--- berthd log (tail):\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            tail(&self.log(), 40)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Run berth, require success, return trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        self.must("berth", args, o)
    }

    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        self.must("docker", args, o)
    }

    /// Run berth, require failure with `code`, return stderr.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let o = self.berth(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "berth {args:?}: stdout {}\nstderr {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stderr).to_string()
    }

    /// Import busybox with berth (the base imports with docker).
    pub fn import_busybox(&self, name: &str) {
        let tar = busybox_tar(self.dir.path());
        self.ok(&["import", tar.to_str().unwrap(), name]);
    }

    /// Whether the daemon serves `method path` yet (some endpoints are still being added).
    pub fn serves(&self, method: &str, path: &str) -> bool {
        let (code, body) = self.http(method, path, "");
        !(code == 404 && body.contains("page not found"))
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
