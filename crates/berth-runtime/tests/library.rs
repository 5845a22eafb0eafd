//! The library used in-process, as the engine's per-container monitor will use it: the
//! caller becomes the parent of the container's init (it can wait for its exit status),
//! with no runtime CLI process in between. Runs single-threaded (harness = false).

mod common;

use berth_runtime::container::{self, CreateOpts};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

fn opts(c: &common::Ct) -> CreateOpts {
    CreateOpts {
        id: c.id.clone(),
        bundle: c.bundle.path().to_path_buf(),
        root: c.root.path().to_path_buf(),
        ..Default::default()
    }
}

fn init_is_our_child_and_reports_its_status() {
    let c = common::Ct::new(&["sh", "-c", "exit 9"]);
    let pid = container::create(&opts(&c)).expect("create");
    let st = container::state(c.root.path(), &c.id).expect("state");
    assert_eq!(st["status"], "created");
    container::start(c.root.path(), &c.id).expect("start");
    assert_eq!(
        waitpid(Pid::from_raw(pid), None).expect("waitpid"),
        WaitStatus::Exited(Pid::from_raw(pid), 9)
    );
    container::delete(c.root.path(), &c.id, false).expect("delete");
    common::assert_nothing_left(&c);
}

fn failed_create_leaves_nothing_and_no_child() {
    let c = common::Ct::new(&["/no/such/program"]);
    let err = container::create(&opts(&c)).expect_err("create must fail").to_string();
    assert!(err.contains("/no/such/program"), "{err}");
    common::assert_nothing_left(&c);
    // Every process we forked was reaped.
    assert_eq!(
        waitpid(Pid::from_raw(-1), Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
        Err(nix::Error::ECHILD)
    );
}

fn main() {
    let tests: [(&str, fn()); 2] = [
        (
            "init_is_our_child_and_reports_its_status",
            init_is_our_child_and_reports_its_status,
        ),
        (
            "failed_create_leaves_nothing_and_no_child",
            failed_create_leaves_nothing_and_no_child,
        ),
    ];
    let mut failed = 0;
    for (name, t) in tests {
        match std::panic::catch_unwind(t) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("library: {} passed, {failed} failed", tests.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
