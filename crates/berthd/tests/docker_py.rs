//! The Python docker SDK (docker-py, from PyPI) against berthd, at API 1.41 and
//! negotiated ("auto"): tests/clients/docker_py_scenarios.py.

mod common;

use common::Daemon;

fn scenarios(version: &str) {
    let d = Daemon::start();
    d.assert_is_berth();
    d.import_busybox("busybox:latest");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/docker_py_scenarios.py");
    let o = std::process::Command::new("python3")
        .arg(script)
        .arg(&d.sock)
        .arg(version)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker-py at {version}:\n{}\n{}\n--- berthd log:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        d.log()
    );
}

#[test]
fn docker_py_at_api_1_41() {
    scenarios("1.41");
}

#[test]
fn docker_py_negotiated() {
    scenarios("auto");
}
