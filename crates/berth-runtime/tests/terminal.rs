//! process.terminal: the pty master over --console-socket, and the relay of `run`/`exec`.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_runtime::console::ConsoleListener;
use common::Ct;

fn terminal_ct(args: &[&str]) -> Ct {
    let mut c = Ct::new(args);
    c.config["process"]["terminal"] = true.into();
    c.config["process"]["consoleSize"] = serde_json::json!({"height": 30, "width": 100});
    c.save();
    c
}

/// Read from `f` until `want` shows up or time runs out.
fn read_until(f: &mut std::fs::File, want: &str, limit: Duration) -> String {
    let mut got = Vec::new();
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    while t.elapsed() < limit && !String::from_utf8_lossy(&got).contains(want) {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn console_socket_receives_a_working_pty() {
    let c = terminal_ct(&["sh", "-c", "stty size; read x; echo got:$x; exit 4"]);
    let dir = tempfile::tempdir().unwrap();
    let l = ConsoleListener::bind(dir.path(), &c.id).unwrap();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let sock = l.path().to_str().unwrap().to_string();
    let (ok, err) = c.rt_detached(&["create", "--console-socket", &sock, "--bundle", &b, &c.id]);
    assert!(ok, "{err}");
    let mut master = std::fs::File::from(l.accept_master().unwrap());
    assert!(c.rt(&["start", &c.id]).status.success());
    let out = read_until(&mut master, "30 100", Duration::from_secs(5));
    assert!(out.contains("30 100"), "consoleSize not applied: {out:?}");
    master.write_all(b"hello\n").unwrap();
    let out = read_until(&mut master, "got:hello", Duration::from_secs(5));
    assert!(out.contains("got:hello"), "{out:?}");
    assert!(c.wait_status("stopped", Duration::from_secs(5)));
}

#[test]
fn terminal_without_console_socket_refused_for_create() {
    let c = terminal_ct(&["true"]);
    let (ok, err) = c.create();
    assert!(!ok);
    assert!(err.contains("console-socket"), "{err}");
    common::assert_nothing_left(&c);
}

/// Run `cmdline` under script(1), which gives it a terminal: (exit code, output).
fn under_script(cmdline: &str) -> (Option<i32>, String) {
    let out = Command::new("script")
        .args(["-qec", cmdline, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `run` in the foreground relays the pty (under `script`, which gives us a terminal).
#[test]
fn run_and_exec_relay_the_terminal() {
    let c = terminal_ct(&["sh", "-c", "tty; test -t 1 && echo stdout-is-tty; exit 3"]);
    let b = c.bundle.path().to_str().unwrap().to_string();
    let cmdline = format!(
        "{} --root {} run --bundle {b} {}",
        c.bin.display(),
        c.root.path().display(),
        c.id
    );
    let (code, text) = under_script(&cmdline);
    assert!(text.contains("/dev/pts/0") && text.contains("stdout-is-tty"), "{text}");
    assert_eq!(code, Some(3), "{text}");

    // exec -t into a running container.
    let mut c2 = Ct::new(&["sleep", "30"]);
    c2.save();
    let b2 = c2.bundle.path().to_str().unwrap().to_string();
    assert!(c2.rt_detached(&["run", "-d", "--bundle", &b2, &c2.id]).0);
    let cmdline = format!(
        "{} --root {} exec -t {} sh -c 'test -t 0 && echo exec-tty'",
        c2.bin.display(),
        c2.root.path().display(),
        c2.id
    );
    let (_, text) = under_script(&cmdline);
    assert!(text.contains("exec-tty"), "{text}");
}
