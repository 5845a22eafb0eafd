//! Driver tests against fake cgroup trees (regular files in a tempdir): what `apply` writes on
//! each driver, create/destroy, path resolution, hybrid placement, and the errors.

mod tree;
mod v1;
mod v2;

use oci_spec::runtime::{LinuxResources, LinuxResourcesBuilder};

/// Resources from the spec's JSON, the form the runtime gets them in.
pub fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test JSON {json}: {e}"))
}

pub fn empty() -> LinuxResources {
    LinuxResourcesBuilder::default().build().unwrap()
}

/// Asserts that `r` failed and its message contains every needle.
#[track_caller]
pub fn err_contains<T: std::fmt::Debug>(r: berth_cgroups::Result<T>, needles: &[&str]) -> berth_cgroups::Error {
    let e = r.expect_err("expected an error");
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} lacks {n:?}");
    }
    e
}
