//! SCMP_ACT_NOTIFY: the runtime hands the listener fd, with the container's state, to
//! linux.seccomp.listenerPath; a supervisor then answers the container's syscalls.

mod common;

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;

use common::Ct;
use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;

#[test]
fn notify_listener_gets_fd_and_answers_syscalls() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("seccomp.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut c = Ct::new(&[
        "sh",
        "-c",
        "mkdir /tmp/a; echo rc=$?; ls -d /tmp/a 2>/dev/null || echo absent",
    ]);
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "listenerPath": sock,
        "listenerMetadata": "berth-test-meta",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    c.save();

    // The supervisor: take the fd, then refuse every notified syscall with EACCES.
    let sup = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut cbuf = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut cbuf), MsgFlags::empty()).unwrap();
        let mut fd = -1;
        for cm in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(fds) = cm {
                fd = fds[0];
            }
        }
        let n = msg.bytes;
        let payload: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        let mut answered = 0;
        while let Ok(req) = ScmpNotifReq::receive(fd) {
            ScmpNotifResp::new_error(req.id, -libc::EACCES, ScmpNotifRespFlags::empty())
                .respond(fd)
                .unwrap();
            answered += 1;
        }
        (payload, answered)
    });

    let (code, out, err) = c.run();
    let (payload, answered) = sup.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "rc=1\nabsent\n", "the supervisor's answer reached the container");
    assert!(answered >= 1);
    assert_eq!(payload["fds"], json!(["seccompFd"]));
    assert_eq!(payload["metadata"], "berth-test-meta");
    assert_eq!(payload["state"]["id"], c.id.as_str());
    assert!(payload["pid"].as_i64().unwrap() > 0);

    // Positive control: without the notify rule, mkdir succeeds.
    let c2 = Ct::new(&["sh", "-c", "mkdir /tmp/a; echo rc=$?"]);
    assert_eq!(c2.run().1, "rc=0\n");
}

#[test]
fn notify_without_listener_path_is_refused() {
    let mut c = Ct::new(&["true"]);
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    });
    c.save();
    let (ok, err) = c.create();
    assert!(!ok);
    assert!(err.contains("listenerPath"), "{err}");
    common::assert_nothing_left(&c);
}
