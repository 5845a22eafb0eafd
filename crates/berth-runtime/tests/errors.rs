//! Bad input: a clear error naming what is wrong, and nothing left behind.

mod common;

use common::{assert_nothing_left, Ct};
use serde_json::json;

fn assert_refused(c: &Ct, want: &[&str]) {
    let (ok, err) = c.create();
    assert!(!ok, "create should fail");
    for w in want {
        assert!(err.contains(w), "expected {w:?} in error: {err}");
    }
    assert_nothing_left(c);
    // No process of ours survived either.
    let out = std::process::Command::new("pgrep")
        .args(["-f", &c.id])
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "leftover processes: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn missing_config() {
    let c = Ct::new(&["true"]);
    std::fs::remove_file(c.bundle.path().join("config.json")).unwrap();
    assert_refused(&c, &["config.json"]);
}

#[test]
fn unknown_namespace_type() {
    let mut c = Ct::new(&["true"]);
    c.config["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pidd"}]);
    c.save();
    assert_refused(&c, &["pidd"]);
}

#[test]
fn malformed_json() {
    let c = Ct::new(&["true"]);
    std::fs::write(c.bundle.path().join("config.json"), "{ not json").unwrap();
    assert_refused(&c, &["config.json"]);
}

#[test]
fn relative_cwd_and_missing_program() {
    let mut c = Ct::new(&["true"]);
    c.config["process"]["cwd"] = "relative".into();
    c.save();
    assert_refused(&c, &["process.cwd", "relative"]);

    let c = Ct::new(&["/bin/no-such-binary"]);
    assert_refused(&c, &["no-such-binary"]);
}

#[test]
fn impossible_resources() {
    let mut c = Ct::new(&["true"]);
    c.config["linux"]["resources"] = json!({"memory": {"limit": 64 * 1024 * 1024, "swap": 1024}});
    c.save();
    assert_refused(&c, &["swap"]);
}

#[test]
fn bad_mount_source() {
    let mut c = Ct::new(&["true"]);
    let mut mounts = c.config["mounts"].as_array().unwrap().clone();
    mounts.push(
        json!({"destination": "/data", "type": "bind", "source": "/nonexistent-berth-src", "options": ["rbind"]}),
    );
    c.config["mounts"] = mounts.into();
    c.save();
    assert_refused(&c, &["/nonexistent-berth-src", "/data"]);
}

#[test]
fn duplicate_id_and_unknown_container() {
    let c = Ct::new(&["sleep", "10"]);
    assert!(c.create().0);
    let (ok, err) = c.create();
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    // The first one is untouched.
    assert_eq!(c.status(), "created");
    let out = c.rt(&["state", "nope-not-here"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let out = c.rt(&["kill", "nope-not-here"]);
    assert!(!out.status.success());
}

#[test]
fn systemd_cgroup_flag_is_a_clear_error() {
    let c = Ct::new(&["true"]);
    let out = c.rt(&["--systemd-cgroup", "state", &c.id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("systemd"));
}

#[test]
fn json_log_records_the_error() {
    let c = Ct::new(&["true"]);
    let log = c.bundle.path().join("log.json");
    let out = c.rt(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "start",
        "missing-ctr",
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("missing-ctr"));
}
